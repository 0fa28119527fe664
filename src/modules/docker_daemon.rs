//! `docker_daemon`: owns the keys edgefleet manages in `/etc/docker/daemon.json` (dns, log-driver, log-opts
//! max-size/max-file), merged into the existing file with every other key kept in value and order.
//!
//! A malformed existing file is refused untouched. Notify `restart docker` from the playbook: the module only
//! reports a change when the meaning changes, so docker restarts only when needed.

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;
use crate::iotedge::daemon::{self, DaemonSettings};

/// The module.
pub struct DockerDaemon;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
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

fn settings(v: &Value) -> Result<(Args, DaemonSettings), ArgError> {
    let a: Args = parse_args("docker_daemon", v)?;
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
    let s = DaemonSettings {
        dns: a.dns.clone(),
        log_driver: a.log_driver.clone(),
        max_size: a.log_max_size.clone(),
        max_file,
    };
    Ok((a, s))
}

#[async_trait]
impl Module for DockerDaemon {
    fn name(&self) -> &'static str {
        "docker_daemon"
    }

    fn validate(&self, v: &Value) -> Result<(), ArgError> {
        validate_args::<Args>("docker_daemon", v)?;
        if !contains_template(v) {
            settings(v)?;
        }
        Ok(())
    }

    fn preflight(&self, v: &Value, _h: &str, _c: &Context) -> Result<Vec<String>, ArgError> {
        let (a, _) = settings(v)?;
        Ok(if a.dns.is_empty() {
            vec!["docker_daemon: no `dns` given; the production checklist asks for explicit DNS servers".into()]
        } else {
            vec![]
        })
    }

    fn prefetch(&self, v: &Value, _c: &Context) -> Vec<FactReq> {
        match settings(v) {
            Ok((a, _)) => vec![FactReq::File {
                path: a.dest,
                content: true,
            }],
            Err(_) => vec![],
        }
    }

    async fn plan(&self, v: &Value, cx: &PlanCtx<'_>) -> Result<Plan, ModuleError> {
        let (a, s) = settings(v)?;
        let cur = cx.file(&a.dest, true).await?;
        let text = cur.text().unwrap_or_default();
        let existing =
            daemon::parse(&text).map_err(|e| ModuleError::Failed(format!("{}: {e}", a.dest)))?;
        let merged = daemon::merge(&existing, &s);
        let mut result = Map::new();
        result.insert("dest".into(), json!(a.dest));
        result.insert("daemon".into(), Value::Object(merged.clone()));
        if cur.exists && daemon::same(&existing, &merged) {
            return Ok(Plan {
                result,
                ..Plan::default()
            });
        }
        let new_text = daemon::render(&merged);
        Ok(Plan {
            changed: true,
            steps: vec![Step::Write(vec![FileWrite {
                path: a.dest.clone(),
                content: Bytes::from(new_text.clone()),
                secret: false,
                mode: Some(if cur.exists { cur.mode } else { 0o644 }),
                owner: Some("root".into()),
                group: Some("root".into()),
                backup: true,
                parent: Some(DirSpec {
                    path: "/etc/docker".into(),
                    mode: None,
                    owner: None,
                    group: None,
                }),
            }])],
            diffs: vec![Diff {
                path: a.dest.clone(),
                before: cur.exists.then_some(text),
                after: Some(new_text),
                secret: false,
                attrs: vec![],
            }],
            msg: Some("daemon.json updated; docker must restart to use it, and running modules keep their old log/DNS settings until they are recreated".into()),
            result,
            ..Plan::default()
        })
    }
}
