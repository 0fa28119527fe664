//! `iotedge_verify`: proves a device is healthy and production-ready, in one round trip.
//!
//! On the device (POSIX sh): wait (bounded) until `iotedge system status` shows the services running and
//! `iotedge list` shows edgeAgent (and edgeHub when expected) running; then run `iotedge check --output json`
//! (with `--dont-run` ids, e.g. connectivity checks on air-gapped devices) and collect what our own checklist
//! items need. On the controller, `iotedge::check::evaluate` judges the answers (the CLI's checks, the
//! checklist items the 1.5 CLI no longer checks, the policy: errors fail, listed warnings fail, waivers with
//! reasons); this module only hands the verdict on: the task fails with its failing checks, and the per-check
//! results go to the report as a generic check matrix. Read-only: runs in check mode too.
//!
//! The same checks gate a rollout's waves: [`HealthGate`] gives the executor the probe (this module's gather plus
//! the modules' restart state, one round trip) and the verdict (`iotedge::health`).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;
use crate::facts;
use crate::iotedge::check::{self, Policy};

/// The module.
pub struct IotedgeVerify;

/// The arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
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
impl TypedModule for IotedgeVerify {
    type Args = Args;
    /// The policy the gathered answers are judged by.
    type State = Policy;

    fn name(&self) -> &'static str {
        "iotedge_verify"
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<Policy>, ModuleError> {
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
        Ok(Plan::read_only(
            vec![Step::Exec {
                exec,
                what: "verify".into(),
            }],
            Policy {
                fail_on_warnings: a.fail_on_warnings.clone(),
                waivers: a.waivers.clone(),
                expected_config_sha256: expected,
                expect_edge_hub: a.expect_edge_hub,
            },
        ))
    }

    fn interpret(&self, policy: Policy, ran: Ran) -> Outcome {
        let Some(o) = ran.output() else {
            return ran.outcome();
        };
        let g = facts::iotedge::parse_gathered(&o.stdout_str());
        let verdict = check::evaluate(&g, &policy);
        let matrix = verdict.matrix();
        let mut result = Map::new();
        result.insert("passed".into(), json!(verdict.passed));
        result.insert(
            "checks".into(),
            serde_json::to_value(&matrix.checks).unwrap_or_default(),
        );
        Outcome {
            changed: false,
            failed: verdict.failure(),
            msg: Some(verdict.summary()),
            result,
            checks: Some(matrix),
            warnings: vec![],
            findings: None,
        }
    }
}

/// A rollout wave's health gate (run by the executor after a wave, see `executor::waves`): the same checks and
/// policy as this module, in one round trip per probe ([`facts::health::probe_cmd`]: this module's gather plus
/// the modules' restart state), judged by `iotedge::health`.
#[derive(Debug, Clone)]
pub struct HealthGate {
    wait_timeout: u64,
    dont_run: Vec<String>,
    policy: Policy,
}

pub use crate::iotedge::health::Probe;

impl HealthGate {
    /// A gate with `iotedge_verify`'s arguments; `expected_config_sha256` is the config.toml this run rendered
    /// for the device (the drift check), when it rendered one.
    pub fn new(
        wait_timeout: u64,
        dont_run: Vec<String>,
        fail_on_warnings: Vec<String>,
        waivers: std::collections::BTreeMap<String, String>,
        expected_config_sha256: Option<String>,
    ) -> Self {
        HealthGate {
            wait_timeout,
            dont_run,
            policy: crate::iotedge::health::gate_policy(Policy {
                fail_on_warnings,
                waivers,
                expected_config_sha256,
                expect_edge_hub: true,
            }),
        }
    }

    /// The probe command, and how long to give it.
    pub fn probe(&self) -> (crate::transport::Cmd, std::time::Duration) {
        (
            facts::health::probe_cmd(self.wait_timeout, &cfg(), &daemon(), &self.dont_run),
            std::time::Duration::from_secs(self.wait_timeout + 120),
        )
    }

    /// Why the device is unhealthy (empty: healthy), from the probes at the start (if any) and end of the soak.
    pub fn judge(&self, before: Option<&Probe>, after: &Probe) -> Vec<String> {
        crate::iotedge::health::judge(before, after, &self.policy)
    }
}
