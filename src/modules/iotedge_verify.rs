//! `iotedge_verify`: proves a device is healthy and production-ready, in one round trip.
//!
//! On the device (POSIX sh): wait (bounded) until `iotedge system status` shows the services running and
//! `iotedge list` shows edgeAgent (and edgeHub when expected) running; then run `iotedge check --output json`
//! (with `--dont-run` ids, e.g. connectivity checks on air-gapped devices) and collect what our own checklist
//! items need, last the running modules' `docker inspect` (`facts::containers`). On the controller,
//! `iotedge::check::evaluate` judges the answers (the CLI's checks, the checklist items the 1.5 CLI no longer
//! checks, the lint rules that apply to running containers, the policy: errors fail, listed warnings fail,
//! waivers with reasons); this module only hands the verdict on: the task fails with its failing checks, and the
//! per-check results go to the report as a generic check matrix. Read-only: runs in check mode too.
//!
//! With `reach: true`, the same round trip also probes outbound reachability: the endpoints are derived on the
//! controller from `reach_config` (the super config, e.g. the iotedge_config role's spec) by `iotedge::reach`,
//! probed on the device by `facts::reach` (the proxy on secret stdin), and reported as one
//! `edgefleet-reach-<host>:<port>` row per endpoint.
//!
//! The same checks gate a rollout's waves: [`HealthGate`] gives the executor the probe (this module's gather plus
//! the modules' restart state, one round trip) and the verdict (`iotedge::health`).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::*;
use crate::facts;
use crate::iotedge::check::{self, Policy};
use crate::iotedge::reach::{self, ReachPlan};

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
    /// An offline (air-gapped) site: the checks that need the internet are waived with the reason.
    #[serde(default)]
    offline: bool,
    #[serde(default)]
    config_sha256: Option<String>,
    #[serde(default = "cfg")]
    config: String,
    #[serde(default = "daemon")]
    daemon_json: String,
    /// Probe outbound reachability in the same round trip.
    #[serde(default)]
    reach: bool,
    /// The super config the endpoints are derived from (JSON, as iotedge_config's spec).
    #[serde(default)]
    reach_config: Option<Value>,
    /// More registries to probe (`host` or `host:port`), e.g. those of the deployment.
    #[serde(default)]
    reach_registries: Vec<String>,
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
    type State = (Policy, Option<ReachPlan>);

    fn name(&self) -> &'static str {
        "iotedge_verify"
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<Self::State>, ModuleError> {
        let reach_plan = match (&a.reach, &a.reach_config) {
            (false, _) => None,
            (true, Some(c)) if c.is_object() => Some(
                reach::plan(c, &a.reach_registries)
                    .map_err(|e| ModuleError::Failed(format!("reach: {e}")))?,
            ),
            (true, _) => {
                return Err(ModuleError::Failed(
                    "reach: true needs `reach_config`, the device's super config (the iotedge_config role's `iotedge_config_spec`)".into(),
                ))
            }
        };
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
        let (cmd, stdin) = match &reach_plan {
            Some(rp) => {
                let eps: Vec<String> = rp.endpoints.iter().map(reach::Endpoint::addr).collect();
                let (c, s) = facts::reach::append(cmd, rp.proxy.as_deref(), &rp.no_proxy, &eps);
                (c, Some(s))
            }
            None => (cmd, None),
        };
        let mut exec = cx
            .exec(cmd)
            .timeout(Some(std::time::Duration::from_secs(a.wait_timeout + 120)));
        if let Some(s) = stdin {
            exec = exec.secret_stdin(s.into_bytes());
        }
        Ok(Plan::read_only(
            vec![Step::Exec {
                exec,
                what: "verify".into(),
            }],
            (
                Policy {
                    fail_on_warnings: a.fail_on_warnings.clone(),
                    waivers: if a.offline {
                        check::with_offline_waivers(a.waivers.clone())
                    } else {
                        a.waivers.clone()
                    },
                    expected_config_sha256: expected,
                    expect_edge_hub: a.expect_edge_hub,
                },
                reach_plan,
            ),
        ))
    }

    fn interpret(&self, (policy, reach_plan): Self::State, ran: Ran) -> Outcome {
        let Some(o) = ran.output() else {
            return ran.outcome();
        };
        let out = o.stdout_str();
        let g = facts::iotedge::parse_gathered(&out);
        let extra = reach_plan
            .map(|rp| check::reach_results(&rp, &out))
            .unwrap_or_default();
        let verdict = check::evaluate_with(&g, &policy, extra);
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
