//! Validation of the IoT Edge runtime tables by the real 1.5 rules: `[agent]` (pull policy, string env
//! values, the typed keys of Docker's `createOptions`), `[moby_runtime]` (socket URL, network shapes, content
//! trust CAs), `[connect]`/`[listen]` URLs and TLS version, `[watchdog] max_retries` (a u32 or "infinite"),
//! and `[image_garbage_collection]` durations and time of day.
//!
//! Called by `validate`; each rule gives a `ConfigProblem` naming the key. Pure: no I/O.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::model::SuperConfig;
use super::problems::{deserialize_at, p, Problems};
use super::values::{duration, is_hhmm, url_error};

/// A URL (certificates, endpoints, sockets): the device parses it with the `url` crate.
pub(super) fn check_url(key: &str, v: &str, out: &mut Problems) {
    if let Some(e) = url_error(v) {
        let hint = if v.starts_with('/') {
            format!(" (a bare path is rejected by iotedge: write `file://{v}`)")
        } else {
            String::new()
        };
        out.push(p(key, format!("`{v}` is not a URL: {e}{hint}")));
    }
}

/// The keys of Docker's create body that IoT Edge 1.5 types (everything else goes to Docker as given).
#[derive(Deserialize)]
#[allow(dead_code)]
struct CreateOptionsTypes {
    #[serde(rename = "Hostname")]
    hostname: Option<String>,
    #[serde(rename = "Env")]
    env: Option<Vec<String>>,
    #[serde(rename = "Cmd")]
    cmd: Option<Vec<String>>,
    #[serde(rename = "Image")]
    image: Option<String>,
    #[serde(rename = "Volumes")]
    volumes: Option<BTreeMap<String, Value>>,
    #[serde(rename = "Entrypoint")]
    entrypoint: Option<Vec<String>>,
    #[serde(rename = "Labels")]
    labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "HostConfig")]
    host_config: Option<HostConfigTypes>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct HostConfigTypes {
    #[serde(rename = "Memory")]
    memory: Option<i64>,
    #[serde(rename = "Binds")]
    binds: Option<Vec<String>>,
    #[serde(rename = "PortBindings")]
    port_bindings: Option<BTreeMap<String, Vec<PortBindingTypes>>>,
    #[serde(rename = "Mounts")]
    mounts: Option<Vec<MountTypes>>,
    #[serde(rename = "Privileged")]
    privileged: Option<bool>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PortBindingTypes {
    #[serde(rename = "HostIp")]
    host_ip: Option<String>,
    #[serde(rename = "HostPort")]
    host_port: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct MountTypes {
    #[serde(rename = "Target")]
    target: Option<String>,
    #[serde(rename = "Source")]
    source: Option<String>,
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "ReadOnly")]
    read_only: Option<bool>,
}

/// `[moby_runtime.network]` as a table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct NetworkTypes {
    name: String,
    ipv6: Option<bool>,
    ipam: Option<IpamTypes>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct IpamTypes {
    config: Option<Vec<IpamConfigTypes>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct IpamConfigTypes {
    gateway: Option<String>,
    subnet: Option<String>,
    ip_range: Option<String>,
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::Array(_) => "list",
        Value::Object(_) => "table",
        _ => "non-string",
    }
}

/// Check the runtime tables.
pub(super) fn validate(c: &SuperConfig, out: &mut Problems) {
    if let Some(m) = &c.moby_runtime {
        check_url("moby_runtime.uri", &m.uri, out);
        match &m.network {
            Value::String(_) => {}
            table @ Value::Object(_) => {
                if let Err(e) = deserialize_at::<NetworkTypes>("moby_runtime.network", table) {
                    out.push(e);
                }
            }
            other => out.push(p(
                "moby_runtime.network",
                format!("must be a network name or a table with `name` (got {other})"),
            )),
        }
        let cas = m.content_trust.as_ref().and_then(|t| t.ca_certs.as_ref());
        for (registry, u) in cas.into_iter().flatten() {
            check_url(
                &format!("moby_runtime.content_trust.ca_certs.{registry}"),
                u,
                out,
            );
        }
    }
    if let Some(a) = &c.agent {
        if let Some(pp) = &a.image_pull_policy {
            if pp != "on-create" && pp != "never" {
                out.push(p(
                    "agent.imagePullPolicy",
                    format!("must be \"on-create\" or \"never\" (got \"{pp}\", case-sensitive)"),
                ));
            }
        }
        if let Some(co) = &a.config.create_options {
            let v = Value::Object(co.clone());
            if let Err(e) = deserialize_at::<CreateOptionsTypes>("agent.config.createOptions", &v) {
                out.push(e);
            }
        }
        for (k, v) in &a.env {
            if !v.is_string() {
                out.push(p(
                    &format!("agent.env.{k}"),
                    format!(
                        "must be a string: write {k} = \"{}\" (iotedge rejects {} values)",
                        plain(v),
                        kind(v)
                    ),
                ));
            }
        }
    }
    if let Some(cn) = &c.connect {
        check_url("connect.workload_uri", &cn.workload_uri, out);
        check_url("connect.management_uri", &cn.management_uri, out);
    }
    if let Some(l) = &c.listen {
        check_url("listen.workload_uri", &l.workload_uri, out);
        check_url("listen.management_uri", &l.management_uri, out);
        if let Some(t) = &l.min_tls_version {
            let ok = matches!(
                t.to_lowercase().as_str(),
                "tls"
                    | "tls1"
                    | "tls10"
                    | "tls1.0"
                    | "tls1_0"
                    | "tlsv10"
                    | "tls11"
                    | "tls1.1"
                    | "tls1_1"
                    | "tlsv11"
                    | "tls12"
                    | "tls1.2"
                    | "tls1_2"
                    | "tlsv12"
            );
            if !ok {
                out.push(p(
                    "listen.min_tls_version",
                    format!("`{t}` must be one of \"tls1.0\", \"tls1.1\", \"tls1.2\""),
                ));
            }
        }
    }
    if let Some(r) = c.watchdog.as_ref().and_then(|w| w.max_retries.as_ref()) {
        let ok = match r {
            Value::String(s) => s.eq_ignore_ascii_case("infinite"),
            Value::Number(n) => n
                .as_u64()
                .map(|n| u32::try_from(n).is_ok())
                .unwrap_or(false),
            _ => false,
        };
        if !ok {
            out.push(p(
                "watchdog.max_retries",
                format!(
                    "`{r}` must be \"infinite\" or a whole number from 0 to {}",
                    u32::MAX
                ),
            ));
        }
    }
    if let Some(gc) = &c.image_garbage_collection {
        if let Some(r) = &gc.cleanup_recurrence {
            let whole_days = duration(r).map(|d| d.as_nanos() % (86_400 * 1_000_000_000) == 0);
            if whole_days != Some(true) {
                out.push(p(
                    "image_garbage_collection.cleanup_recurrence",
                    format!(
                        "`{r}` must be a whole number of days like \"1d\", \"2days\" or \"48h\""
                    ),
                ));
            }
        }
        if let Some(t) = &gc.image_age_cleanup_threshold {
            if duration(t).is_none() {
                out.push(p(
                    "image_garbage_collection.image_age_cleanup_threshold",
                    format!("`{t}` must be a duration like \"7d\" or \"90min\""),
                ));
            }
        }
        if let Some(t) = &gc.cleanup_time {
            if !is_hhmm(t) {
                out.push(p(
                    "image_garbage_collection.cleanup_time",
                    format!("`{t}` must be a time like \"03:30\" (HH:MM, 24h)"),
                ));
            }
        }
    }
}
