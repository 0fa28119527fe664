//! `docker_daemon`: owns the keys edgefleet manages in `/etc/docker/daemon.json` (dns, log-driver, log-opts
//! max-size/max-file), merged into the existing file with every other key kept in value and order.
//!
//! A change of the DNS (or proxy) settings may cut the device off once docker restarts: it is declared so
//! ([`CutOff`]), and the executor arms the dead-man revert with it. A malformed existing file is refused untouched. Notify `restart docker` from the playbook: the module only
//! reports a change when the meaning changes, so docker restarts only when needed.

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;
use crate::iotedge::daemon::{self, DaemonSettings};

/// The module.
pub struct DockerDaemon;

/// The arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    dns: Vec<String>,
    #[serde(default = "local")]
    log_driver: String,
    #[serde(default = "ten_m")]
    log_max_size: String,
    #[serde(default = "three")]
    log_max_file: Value,
    #[serde(default = "dest")]
    dest: String,
}

fn local() -> String {
    "local".into()
}
fn ten_m() -> String {
    "10m".into()
}
fn three() -> Value {
    json!("3")
}
fn dest() -> String {
    "/etc/docker/daemon.json".into()
}

fn settings(a: &Args) -> Result<DaemonSettings, ArgError> {
    let max_file = match &a.log_max_file {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => {
            return Err(ArgError::key(
                "log_max_file",
                "docker_daemon: log_max_file must be a number like 3",
            ))
        }
    };
    if max_file.parse::<u32>().map(|n| n == 0).unwrap_or(true) {
        return Err(ArgError::key(
            "log_max_file",
            "docker_daemon: log_max_file must be a positive whole number",
        ));
    }
    if !daemon::valid_size(&a.log_max_size) {
        return Err(ArgError::key(
            "log_max_size",
            format!(
                "docker_daemon: log_max_size `{}` must look like 10m, 512k or 1g",
                a.log_max_size
            ),
        ));
    }
    if !["local", "json-file", "journald"].contains(&a.log_driver.as_str()) {
        return Err(ArgError::key(
            "log_driver",
            format!("docker_daemon: log_driver `{}`: use `local` (recommended), `json-file` or `journald`", a.log_driver),
        ));
    }
    for d in &a.dns {
        if d.parse::<std::net::IpAddr>().is_err() {
            return Err(ArgError::key(
                "dns",
                format!("docker_daemon: dns entry `{d}` is not an IP address"),
            ));
        }
    }
    Ok(DaemonSettings {
        dns: a.dns.clone(),
        log_driver: a.log_driver.clone(),
        max_size: a.log_max_size.clone(),
        max_file,
    })
}

#[async_trait]
impl TypedModule for DockerDaemon {
    type Args = Args;
    type State = ();

    fn name(&self) -> &'static str {
        "docker_daemon"
    }

    fn check_args(&self, a: &Args) -> Result<(), ArgError> {
        settings(a).map(|_| ())
    }

    fn preflight(&self, a: &Args, _cx: &ArgCtx<'_>) -> Result<Vec<String>, ArgError> {
        Ok(if a.dns.is_empty() {
            vec!["docker_daemon: no `dns` given; the production checklist asks for explicit DNS servers".into()]
        } else {
            vec![]
        })
    }

    fn prefetch(&self, a: &Args, _c: &Context) -> Vec<FactReq> {
        vec![FactReq::File {
            path: a.dest.clone(),
            content: true,
        }]
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let s = settings(a)?;
        let cur = cx.file(&a.dest, true).await?;
        let text = cur.text().unwrap_or_default();
        let existing =
            daemon::parse(&text).map_err(|e| ModuleError::Failed(format!("{}: {e}", a.dest)))?;
        let merged = daemon::merge(&existing, &s);
        let mut result = Map::new();
        result.insert("dest".into(), json!(a.dest));
        result.insert("daemon".into(), Value::Object(merged.clone()));
        if cur.exists && daemon::same(&existing, &merged) {
            return Ok(Plan::unchanged().with_result(result));
        }
        let new_text = daemon::render(&merged);
        // DNS and proxy settings decide whether the device still resolves and reaches anything once docker
        // restarts: such a change arms the dead-man revert (the log settings cannot cut a device off).
        let network_keys = ["dns", "dns-search", "dns-opts", "proxies"];
        let cut_off = network_keys
            .iter()
            .any(|k| existing.get(*k) != merged.get(*k))
            .then(|| CutOff {
                why: format!("{} DNS/proxy settings change", a.dest),
                reapply: vec![Reapply::Restart("docker".into())],
                previous: cur.exists,
            });
        let plan = Plan::change(
            vec![Step::Write(vec![FileWrite {
                path: a.dest.clone(),
                content: Bytes::from(new_text.clone()),
                secret: false,
                mode: Some(if cur.exists { cur.mode } else { 0o644 }),
                owner: Some("root".into()),
                group: Some("root".into()),
                backup: true,
                backup_beside: false,
                parent: Some(DirSpec {
                    path: "/etc/docker".into(),
                    mode: None,
                    owner: None,
                    group: None,
                }),
            }])],
            (),
        )
        .with_diffs(vec![Diff {
            path: a.dest.clone(),
            before: cur.exists.then_some(text),
            after: Some(new_text),
            secret: false,
            attrs: vec![],
        }])
        .with_msg("daemon.json updated; docker must restart to use it, and running modules keep their old log/DNS settings until they are recreated")
        .with_result(result);
        Ok(match cut_off {
            Some(c) => plan.may_cut_off(c),
            None => plan,
        })
    }
}
