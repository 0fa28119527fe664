//! `iotedge_verify`: proves a device is healthy and production-ready, in one round trip.
//!
//! On the device (POSIX sh): wait (bounded) until `iotedge system status` shows the services running and
//! `iotedge list` shows edgeAgent (and edgeHub when expected) running; then run `iotedge check --output json`
//! (with `--dont-run` ids, e.g. connectivity checks on air-gapped devices) and collect what our own checklist
//! items need. On the controller: parse, add the checklist items the 1.5 CLI no longer checks, apply the
//! policy (errors fail; listed warnings fail; waivers with reasons), and report per-check results for the
//! fleet matrix. Read-only: runs in check mode too.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;
use crate::facts;
use crate::iotedge::check::{self, Policy};

/// The module.
pub struct IotedgeVerify;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default = "two_min")]
    wait_timeout: u64,
    #[serde(default)]
    dont_run: Vec<String>,
    #[serde(default)]
    fail_on_warnings: Vec<String>,
    #[serde(default)]
    waivers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    expect_edge_hub: bool,
    #[serde(default)]
    config_sha256: Option<String>,
    #[serde(default = "cfg")]
    config: String,
    #[serde(default = "daemon")]
    daemon_json: String,
}

fn two_min() -> u64 {
    120
}
fn cfg() -> String {
    "/etc/aziot/config.toml".into()
}
fn daemon() -> String {
    "/etc/docker/daemon.json".into()
}

#[async_trait]
impl Module for IotedgeVerify {
    fn name(&self) -> &'static str {
        "iotedge_verify"
    }

    fn validate(&self, v: &Value) -> Result<(), ArgError> {
        validate_args::<Args>("iotedge_verify", v)
    }

    async fn plan(&self, v: &Value, cx: &PlanCtx<'_>) -> Result<Plan, ModuleError> {
        let a: Args = parse_args("iotedge_verify", v)?;
        let cmd = facts::iotedge::verify_cmd(
            a.wait_timeout,
            &a.config,
            &a.daemon_json,
            a.expect_edge_hub,
            &a.dont_run,
        );
        // Default the drift check to what iotedge_config computed earlier in this run.
        let expected = a.config_sha256.clone().or_else(|| {
            cx.vars
                .raw("iotedge_config_sha256")
                .and_then(Value::as_str)
                .map(String::from)
        });
        let exec = cx
            .exec(cmd)
            .timeout(Some(std::time::Duration::from_secs(a.wait_timeout + 120)));
        Ok(Plan {
            steps: vec![Step::Exec {
                exec,
                what: "verify".into(),
            }],
            read_only: true,
            state: json!({
                "fail_on_warnings": a.fail_on_warnings,
                "waivers": a.waivers,
                "expected": expected,
                "hub": a.expect_edge_hub,
            }),
            ..Plan::default()
        })
    }

    fn interpret(&self, plan: &Plan, outputs: &[Output]) -> Outcome {
        let Some(o) = outputs.first() else {
            return default_interpret(plan, outputs);
        };
        let policy = Policy {
            fail_on_warnings: serde_json::from_value(plan.state["fail_on_warnings"].clone())
                .unwrap_or_default(),
            waivers: serde_json::from_value(plan.state["waivers"].clone()).unwrap_or_default(),
            expected_config_sha256: plan.state["expected"].as_str().map(String::from),
            expect_edge_hub: plan.state["hub"].as_bool().unwrap_or(false),
        };
        let g = facts::iotedge::parse_gathered(&o.stdout_str());
        let mut results = match facts::iotedge::parse_check_json(&g.check.1) {
            Ok(r) => r,
            Err(e) => vec![crate::report::CheckResult {
                id: "iotedge-check".into(),
                result: "error".into(),
                details: vec![e],
                waiver: None,
            }],
        };
        results.extend(check::edgefleet_checks(&g, &policy));
        let (results, passed) = check::apply_policy(results, &policy);
        let count = |r: &str| results.iter().filter(|c| c.result == r).count();
        let summary = format!(
            "{} ok, {} warnings, {} errors{}",
            count("ok"),
            count("warning"),
            count("error") + count("fatal"),
            if count("waived") > 0 {
                format!(", {} waived", count("waived"))
            } else {
                String::new()
            }
        );
        let mut result = Map::new();
        result.insert("passed".into(), json!(passed));
        result.insert(
            "checks".into(),
            serde_json::to_value(&results).unwrap_or_default(),
        );
        let failing: Vec<String> = results
            .iter()
            .filter(|c| {
                matches!(c.result.as_str(), "error" | "fatal")
                    || (c.result == "warning"
                        && policy
                            .fail_on_warnings
                            .iter()
                            .any(|w| w == &c.id || w == "all"))
            })
            .map(|c| {
                format!(
                    "{} ({})",
                    c.id,
                    c.details.first().cloned().unwrap_or_default()
                )
            })
            .collect();
        Outcome {
            changed: false,
            failed: (!passed).then(|| format!("not production-ready: {}", failing.join("; "))),
            msg: Some(summary),
            result,
            verify: Some((results, passed)),
            warnings: vec![],
        }
    }
}
