//! `iotedge_maintenance`: a device's maintenance findings in one read-only round trip, and (only with
//! `prune: true`) the clean-up of dangling images and unused volumes in one more, only when there is something
//! to remove.
//!
//! Glue only: the gather and its parser are `facts::maintenance`, the rules (findings, what a clean-up may
//! remove) are `iotedge::maintenance`; this module checks the thresholds (a threshold that is not a number is
//! a clear error naming the argument and the role variable), runs the gather while planning, and hands the
//! findings to the report through [`Outcome::findings`]. Whether findings fail the task is `fail_on`
//! (`critical` by default, `warning`, or `never`). In check mode the clean-up is not run and a finding says
//! what it would free.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;
use crate::facts::maintenance::{
    maintenance_cmd, parse_maintenance, parse_prune, prune_cmd, GatherSpec,
};
use crate::iotedge::maintenance::{
    evaluate, human_bytes, journald_size, Cleanup, Policy, TARGET_KEYS,
};
use crate::report::{Finding, Severity};

/// The module.
pub struct IotedgeMaintenance;

/// The fact-cache key of the gather: asked once (`__`), so a later batched gather in the same play never runs
/// it again; a clean-up forgets it.
const GATHER_KEY: &str = "__iotedge_maintenance";

/// The arguments. Thresholds are numbers (or strings holding one, as templates render them).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default = "d30")]
    warn_days: Value,
    #[serde(default = "d7")]
    critical_days: Value,
    #[serde(default = "d80")]
    disk_warn_percent: Value,
    #[serde(default = "d90")]
    disk_critical_percent: Value,
    #[serde(default = "d80")]
    inode_warn_percent: Value,
    #[serde(default = "d90")]
    inode_critical_percent: Value,
    #[serde(default = "one_g")]
    journald_max_use: Value,
    #[serde(default)]
    target: BTreeMap<String, Value>,
    #[serde(default = "yes")]
    iotedge_check: bool,
    #[serde(default)]
    dont_run: Vec<String>,
    #[serde(default)]
    check_waivers: BTreeMap<String, String>,
    #[serde(default = "edgehub")]
    protected_volumes: Vec<String>,
    #[serde(default)]
    prune: bool,
    #[serde(default = "critical")]
    fail_on: String,
    #[serde(default = "cfg")]
    config: String,
    #[serde(default = "daemon")]
    daemon_json: String,
    #[serde(default = "journald")]
    journald_conf: String,
}

fn d30() -> Value {
    json!(30)
}
fn d7() -> Value {
    json!(7)
}
fn d80() -> Value {
    json!(80)
}
fn d90() -> Value {
    json!(90)
}
fn one_g() -> Value {
    json!("1G")
}
fn yes() -> bool {
    true
}
fn edgehub() -> Vec<String> {
    vec!["edgehub".into()]
}
fn critical() -> String {
    "critical".into()
}
fn cfg() -> String {
    "/etc/aziot/config.toml".into()
}
fn daemon() -> String {
    "/etc/docker/daemon.json".into()
}
fn journald() -> String {
    "/etc/systemd/journald.conf".into()
}

/// A whole number argument; the error names the argument and the role variable that feeds it.
fn whole(key: &str, v: &Value, percent: bool) -> Result<i64, ArgError> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let shown = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match n {
        Some(n) if n >= 0 && (!percent || n <= 100) => Ok(n),
        _ => Err(ArgError::key(
            key,
            format!(
                "iotedge_maintenance: {key} must be a whole number{}, got `{shown}` (the maintenance role sets it from the variable maintenance_{key})",
                if percent { " from 0 to 100" } else { " of days" }
            ),
        )),
    }
}

/// Check every threshold and the target; the policy the device is judged by.
fn policy(a: &Args) -> Result<Policy, ArgError> {
    let warn_days = whole("warn_days", &a.warn_days, false)?;
    let critical_days = whole("critical_days", &a.critical_days, false)?;
    let pct = |k: &str, v: &Value| whole(k, v, true).map(|n| n as u64);
    let disk_warn_percent = pct("disk_warn_percent", &a.disk_warn_percent)?;
    let disk_critical_percent = pct("disk_critical_percent", &a.disk_critical_percent)?;
    let inode_warn_percent = pct("inode_warn_percent", &a.inode_warn_percent)?;
    let inode_critical_percent = pct("inode_critical_percent", &a.inode_critical_percent)?;
    if critical_days > warn_days {
        return Err(ArgError::key(
            "critical_days",
            format!("iotedge_maintenance: critical_days ({critical_days}) must not be more than warn_days ({warn_days})"),
        ));
    }
    let journald_text = match &a.journald_max_use {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let journald_max_use = journald_size(&journald_text).ok_or_else(|| {
        ArgError::key(
            "journald_max_use",
            format!("iotedge_maintenance: journald_max_use must be a size like 500M or 1G, got `{journald_text}` (the maintenance role sets it from the variable maintenance_journald_max_use)"),
        )
    })?;
    let mut target = BTreeMap::new();
    for (k, v) in &a.target {
        if !TARGET_KEYS.iter().any(|(key, _)| key == k) {
            let keys: Vec<&str> = TARGET_KEYS.iter().map(|(k, _)| *k).collect();
            return Err(ArgError::key(
                "target",
                format!(
                    "iotedge_maintenance: unknown key `{k}` in target (maintenance_target): use {}",
                    keys.join(", ")
                ),
            ));
        }
        let text = match v {
            Value::Null => continue,
            Value::String(s) if s.trim().is_empty() => continue,
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(ArgError::key(
                    "target",
                    format!(
                        "iotedge_maintenance: target.{k} must be a version like 1.5.x, got {other}"
                    ),
                ))
            }
        };
        target.insert(k.clone(), text);
    }
    if !["critical", "warning", "never"].contains(&a.fail_on.as_str()) {
        return Err(ArgError::key(
            "fail_on",
            format!("iotedge_maintenance: fail_on must be critical, warning or never, got `{}` (maintenance_fail_on)", a.fail_on),
        ));
    }
    Ok(Policy {
        warn_days,
        critical_days,
        disk_warn_percent,
        disk_critical_percent,
        inode_warn_percent,
        inode_critical_percent,
        journald_max_use,
        target,
        check_waivers: a.check_waivers.clone(),
        protected_volumes: a.protected_volumes.clone(),
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What `interpret` needs: the findings so far, the clean-up that was planned, and the failure policy.
pub struct State {
    findings: Vec<Finding>,
    cleanup: Cleanup,
    fail_on: Option<Severity>,
}

fn finish(mut s: State, changed: bool, extra_failure: Option<String>) -> Outcome {
    let count = |sev: Severity| s.findings.iter().filter(|f| f.severity == sev).count();
    let (crit, warn) = (count(Severity::Critical), count(Severity::Warning));
    let summary = format!("{crit} critical, {warn} warning finding(s)");
    let failed = extra_failure.or_else(|| {
        let over: Vec<&str> = s
            .findings
            .iter()
            .filter(|f| s.fail_on.is_some_and(|t| f.severity >= t))
            .map(|f| f.id.as_str())
            .collect();
        (!over.is_empty()).then(|| format!("{summary}: {}", over.join(", ")))
    });
    let mut result = Map::new();
    result.insert(
        "findings".into(),
        serde_json::to_value(&s.findings).unwrap_or_default(),
    );
    Outcome {
        changed,
        failed,
        msg: Some(summary),
        result,
        findings: Some(std::mem::take(&mut s.findings)),
        ..Outcome::default()
    }
}

#[async_trait]
impl TypedModule for IotedgeMaintenance {
    type Args = Args;
    type State = State;

    fn name(&self) -> &'static str {
        "iotedge_maintenance"
    }

    fn check_args(&self, a: &Args) -> Result<(), ArgError> {
        policy(a).map(|_| ())
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<State>, ModuleError> {
        let policy = policy(a)?;
        let spec = GatherSpec {
            config: a.config.clone(),
            daemon_json: a.daemon_json.clone(),
            journald_conf: a.journald_conf.clone(),
            iotedge_check: a.iotedge_check,
            dont_run: a.dont_run.clone(),
        };
        let out = cx.fact_command(GATHER_KEY, maintenance_cmd(&spec)).await?;
        let g = parse_maintenance(&out.stdout_str()).map_err(ModuleError::Failed)?;
        let eval = evaluate(&g, &policy, now());
        let mut findings = eval.findings;
        let fail_on = match a.fail_on.as_str() {
            "warning" => Some(Severity::Warning),
            "never" => None,
            _ => Some(Severity::Critical),
        };
        let cleanup = eval.cleanup;
        if a.prune {
            if let Some(why) = &cleanup.blocked {
                findings.push(Finding {
                    id: "prune.skipped".into(),
                    severity: Severity::Warning,
                    message: format!("maintenance_prune: nothing was removed: {why}"),
                    days_left: None,
                    bytes: None,
                });
            } else if !cleanup.is_empty() && cx.check {
                findings.push(Finding {
                    id: "prune.would_free".into(),
                    severity: Severity::Info,
                    message: format!(
                        "check mode: would remove {} image(s) and {} volume(s), freeing {}",
                        cleanup.images.len(),
                        cleanup.volumes.len(),
                        human_bytes(cleanup.bytes())
                    ),
                    days_left: None,
                    bytes: Some(cleanup.bytes()),
                });
            }
        }
        let state = State {
            findings,
            cleanup: cleanup.clone(),
            fail_on,
        };
        if a.prune && cleanup.blocked.is_none() && !cleanup.is_empty() && !cx.check {
            let images: Vec<String> = cleanup.images.iter().map(|(i, _)| i.clone()).collect();
            let volumes: Vec<String> = cleanup.volumes.iter().map(|(v, _)| v.clone()).collect();
            return Ok(Plan::change(
                vec![Step::Exec {
                    exec: cx.exec(prune_cmd(&images, &volumes)),
                    what: "prune".into(),
                }],
                state,
            )
            .touching(vec![Touched::Fact(GATHER_KEY.into())]));
        }
        // Read-only: no step runs; `interpret` hands the findings on (in check mode too). A clean-up check
        // mode would run is reported as a change.
        Ok(Plan::read_only(vec![], state))
    }

    fn interpret(&self, mut s: State, ran: Ran) -> Outcome {
        if ran.outputs.is_empty() {
            // Nothing ran: the findings as gathered (check mode reports a pending clean-up as a change).
            let would = s.findings.iter().any(|f| f.id == "prune.would_free");
            return finish(s, would, None);
        }
        let Some(o) = ran.output() else {
            return finish(s, false, None);
        };
        let pruned = parse_prune(&o.stdout_str());
        let done = match pruned {
            Err(why) => {
                s.findings.push(Finding {
                    id: "prune.skipped".into(),
                    severity: Severity::Warning,
                    message: format!("maintenance_prune: {why}"),
                    days_left: None,
                    bytes: None,
                });
                return finish(s, false, None);
            }
            Ok(d) => d,
        };
        let mut freed = 0u64;
        let mut removed_images = 0usize;
        let mut removed_volumes = 0usize;
        let mut kept: Vec<String> = Vec::new();
        for p in &done {
            let size = if p.kind == "image" {
                s.cleanup
                    .images
                    .iter()
                    .find(|(i, _)| *i == p.name)
                    .map(|(_, b)| *b)
            } else {
                s.cleanup
                    .volumes
                    .iter()
                    .find(|(v, _)| *v == p.name)
                    .and_then(|(_, b)| *b)
            };
            match &p.result {
                Ok(()) => {
                    freed += size.unwrap_or(0);
                    if p.kind == "image" {
                        removed_images += 1;
                    } else {
                        removed_volumes += 1;
                    }
                }
                Err(why) => kept.push(format!("{} {} ({why})", p.kind, p.name)),
            }
        }
        // What was removed is no longer a finding; what the engine refused stays one.
        let kept_images = done.iter().any(|p| p.kind == "image" && p.result.is_err());
        let kept_volumes = done.iter().any(|p| p.kind == "volume" && p.result.is_err());
        s.findings.retain(|f| match f.id.as_str() {
            "image.dangling" => kept_images,
            "volume.unused" => kept_volumes,
            _ => true,
        });
        s.findings.push(Finding {
            id: "prune.freed".into(),
            severity: Severity::Info,
            message: format!(
                "removed {removed_images} image(s) and {removed_volumes} volume(s), freeing {}{}",
                human_bytes(freed),
                if kept.is_empty() {
                    String::new()
                } else {
                    format!("; the engine kept {}", kept.join(", "))
                }
            ),
            days_left: None,
            bytes: Some(freed),
        });
        finish(s, removed_images + removed_volumes > 0, None)
    }
}
