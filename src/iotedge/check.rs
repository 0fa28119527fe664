//! The verification policy: what the device's answers (gathered and parsed by `facts::iotedge`) mean for a
//! per-device verdict.
//!
//! Owns the IoT Edge check result type ([`CheckResult`]), the checklist items the 1.5 CLI no longer checks
//! (quickstart CA, Moby engine, pinned runtime image, daemon.json DNS and log limits, config drift) as one
//! table ([`EDGEFLEET_CHECKS`], ids prefixed `edgefleet-`), and the one policy function ([`apply_policy`]:
//! waivers, fail-on-warnings, the verdict and the failing checks). The manifest rules judged on the running
//! modules are `iotedge::running`'s; [`running_checks`] adds them (ids `EF...`, and `edgefleet-running-modules`).
//! Pure functions of gathered data. The report receives the results as a generic check matrix
//! ([`Verdict::matrix`]); it knows nothing of IoT Edge.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::facts::iotedge::{
    is_moby, parse_check_json, parse_list, parse_system_status, CheckEntry, Gathered, ModuleRow,
};
use crate::iotedge::config::SuperConfig;
use crate::iotedge::manifest::Severity;
use crate::iotedge::running::running_rows;
use crate::report::{CheckMatrix, HostCheck};

/// How one check came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Passed.
    Ok,
    /// A warning (fails the device only when listed in `fail_on_warnings`).
    Warning,
    /// Failed.
    Error,
    /// Failed so badly `iotedge check` stopped.
    Fatal,
    /// Not run (e.g. `--dont-run`).
    Skipped,
    /// Not applicable.
    Ignored,
    /// Not ok, but waived by the policy (the reason is in [`CheckResult::waiver`]).
    Waived,
    /// Anything else `iotedge check` said (kept as it was written).
    Other(String),
}

impl Status {
    /// From `iotedge check`'s lowercase spelling.
    pub fn parse(s: &str) -> Status {
        match s {
            "ok" => Status::Ok,
            "warning" => Status::Warning,
            "error" => Status::Error,
            "fatal" => Status::Fatal,
            "skipped" => Status::Skipped,
            "ignored" => Status::Ignored,
            "waived" => Status::Waived,
            other => Status::Other(other.to_string()),
        }
    }

    /// The lowercase spelling used in every output.
    pub fn as_str(&self) -> &str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Error => "error",
            Status::Fatal => "fatal",
            Status::Skipped => "skipped",
            Status::Ignored => "ignored",
            Status::Waived => "waived",
            Status::Other(s) => s,
        }
    }
}

/// One verification result for one check on one device (from `iotedge check` or our own checklist items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The check id (`container-engine-logrotate`, `edgefleet-edge-ca-not-quickstart`, ...).
    pub id: String,
    /// How it came out.
    pub status: Status,
    /// Details (first lines of what the check said).
    pub details: Vec<String>,
    /// Why it was waived, when it was.
    pub waiver: Option<String>,
}

impl CheckResult {
    fn new(id: &str, status: Status, details: Vec<String>) -> Self {
        CheckResult {
            id: id.to_string(),
            status,
            details,
            waiver: None,
        }
    }

    /// As a row of the report's check matrix.
    pub fn to_row(&self) -> HostCheck {
        HostCheck {
            id: self.id.clone(),
            result: self.status.as_str().to_string(),
            details: self.details.clone(),
            waiver: self.waiver.clone(),
        }
    }
}

impl From<CheckEntry> for CheckResult {
    fn from(e: CheckEntry) -> Self {
        CheckResult {
            id: e.id,
            status: Status::parse(&e.result),
            details: e.details,
            waiver: None,
        }
    }
}

/// The `iotedge check` ids that need the internet, with why they cannot pass on an offline (air-gapped) site.
/// With `offline: true` the policy waives them with that reason (shown as `waived`, never dropped); an
/// operator's own waiver for the same id wins.
pub const OFFLINE_CHECKS: &[(&str, &str)] = &[
    ("aziot-version", OFFLINE_VERSION),
    ("aziot-edge-version", OFFLINE_VERSION),
    ("host-connect-iothub-amqp", OFFLINE_HUB),
    ("host-connect-iothub-https", OFFLINE_HUB),
    ("host-connect-iothub-mqtt", OFFLINE_HUB),
    ("host-connect-dps-endpoint", "offline site: the device has no route to the DPS endpoint"),
    ("check-agent-image", "offline site: the agent image cannot be pulled; it comes from the bundle, imagePullPolicy never"),
    ("container-default-connect-upstream-amqp", OFFLINE_HUB),
    ("container-default-connect-upstream-https", OFFLINE_HUB),
    ("container-default-connect-upstream-mqtt", OFFLINE_HUB),
    ("container-connect-upstream-amqp", OFFLINE_HUB),
    ("container-connect-upstream-https", OFFLINE_HUB),
    ("container-connect-upstream-mqtt", OFFLINE_HUB),
    // Every outbound reachability row (`verify_reach`): nothing outside the site answers.
    ("edgefleet-reach-*", "offline site: the device has no route out of the site"),
];
const OFFLINE_VERSION: &str =
    "offline site: the latest-version lookup needs the internet; the bundle pins the versions";
const OFFLINE_HUB: &str = "offline site: the device has no route to IoT Hub";

/// `waivers` plus the [`OFFLINE_CHECKS`] it does not already waive.
pub fn with_offline_waivers(mut waivers: BTreeMap<String, String>) -> BTreeMap<String, String> {
    for (id, why) in OFFLINE_CHECKS {
        waivers
            .entry(id.to_string())
            .or_insert_with(|| why.to_string());
    }
    waivers
}

/// The verification policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Warnings with these ids fail the device (`all`: every warning).
    pub fail_on_warnings: Vec<String>,
    /// Waived check ids and why.
    pub waivers: BTreeMap<String, String>,
    /// The config.toml hash edgefleet rendered (drift check), when known.
    pub expected_config_sha256: Option<String>,
    /// Expect edgeHub to be running too.
    pub expect_edge_hub: bool,
}

impl Policy {
    /// The waiver of a check: by its id, or by a `prefix*` key (`edgefleet-reach-*` waives every reachability
    /// row; the longest matching prefix wins).
    pub fn waiver_for(&self, id: &str) -> Option<&String> {
        self.waivers.get(id).or_else(|| {
            self.waivers
                .iter()
                .filter(|(k, _)| k.strip_suffix('*').is_some_and(|pre| id.starts_with(pre)))
                .max_by_key(|(k, _)| k.len())
                .map(|(_, v)| v)
        })
    }

    /// Does this (already waived-or-not) result fail the device?
    fn fails(&self, c: &CheckResult) -> bool {
        match c.status {
            Status::Error | Status::Fatal => true,
            Status::Warning => self
                .fail_on_warnings
                .iter()
                .any(|w| w == &c.id || w == "all"),
            _ => false,
        }
    }
}

/// What a gathered section tells an edgefleet check, parsed once for every row of the table.
pub struct Inputs<'a> {
    /// Everything gathered.
    pub gathered: &'a Gathered,
    /// `iotedge system status`: service -> state.
    pub services: BTreeMap<String, String>,
    /// `iotedge list` rows.
    pub modules: Vec<ModuleRow>,
    /// config.toml as a 1.5 configuration, or why it is not one.
    pub config: Result<SuperConfig, String>,
    /// daemon.json, or why it does not parse.
    pub daemon: Result<Map<String, Value>, String>,
}

impl<'a> Inputs<'a> {
    /// Parse every section once.
    pub fn new(g: &'a Gathered) -> Self {
        Inputs {
            gathered: g,
            services: parse_system_status(&g.status),
            modules: parse_list(&g.list.1),
            config: crate::iotedge::config::parse_toml(&g.config)
                .and_then(|v| crate::iotedge::config::from_value(&v).map_err(|e| e.to_string())),
            daemon: crate::iotedge::daemon::parse(&g.daemon),
        }
    }
}

/// Which gathered section a check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `iotedge system status` (and whether the wait for it timed out).
    Status,
    /// `iotedge list`.
    List,
    /// `/etc/aziot/config.toml` (and its hash).
    Config,
    /// `docker version`.
    Docker,
    /// `/etc/docker/daemon.json`.
    Daemon,
}

/// What a check found: its status and details. `None` from a rule: the check does not apply (it is not
/// reported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding(Status, Vec<String>);

impl Finding {
    fn ok() -> Option<Finding> {
        Some(Finding(Status::Ok, vec![]))
    }
    fn warning(detail: impl Into<String>) -> Option<Finding> {
        Some(Finding(Status::Warning, vec![detail.into()]))
    }
    fn error(detail: impl Into<String>) -> Option<Finding> {
        Some(Finding(Status::Error, vec![detail.into()]))
    }
}

/// One row of the edgefleet checklist: its id, the section it reads, and how it decides.
pub struct EdgefleetCheck {
    /// The check id.
    pub id: &'static str,
    /// The gathered section it reads.
    pub reads: Section,
    /// The rule.
    pub decide: fn(&Inputs<'_>, &Policy) -> Option<Finding>,
}

/// The checklist items the 1.5 CLI no longer checks, plus service/module health and config drift, in report
/// order. Adding a check is one row (and its parser in `facts::iotedge` if it needs new data).
pub const EDGEFLEET_CHECKS: &[EdgefleetCheck] = &[
    EdgefleetCheck {
        id: "edgefleet-services-running",
        reads: Section::Status,
        decide: services_running,
    },
    EdgefleetCheck {
        id: "edgefleet-modules-running",
        reads: Section::List,
        decide: modules_running,
    },
    EdgefleetCheck {
        id: "edgefleet-config-readable",
        reads: Section::Config,
        decide: config_readable,
    },
    EdgefleetCheck {
        id: "edgefleet-edge-ca-not-quickstart",
        reads: Section::Config,
        decide: edge_ca_not_quickstart,
    },
    EdgefleetCheck {
        id: "edgefleet-runtime-image-pinned",
        reads: Section::Config,
        decide: runtime_image_pinned,
    },
    EdgefleetCheck {
        id: "edgefleet-config-matches-rendered",
        reads: Section::Config,
        decide: config_matches_rendered,
    },
    EdgefleetCheck {
        id: "edgefleet-moby-engine",
        reads: Section::Docker,
        decide: moby_engine,
    },
    EdgefleetCheck {
        id: "edgefleet-daemon-json",
        reads: Section::Daemon,
        decide: daemon_json,
    },
    EdgefleetCheck {
        id: "edgefleet-daemon-dns",
        reads: Section::Daemon,
        decide: daemon_dns,
    },
    EdgefleetCheck {
        id: "edgefleet-daemon-log-limits",
        reads: Section::Daemon,
        decide: daemon_log_limits,
    },
];

const SERVICES: [&str; 4] = [
    "aziot-edged",
    "aziot-identityd",
    "aziot-keyd",
    "aziot-certd",
];

fn services_running(i: &Inputs<'_>, _p: &Policy) -> Option<Finding> {
    let down: Vec<String> = SERVICES
        .iter()
        .filter(|s| {
            i.services
                .get(**s)
                .map(|st| st != "Running")
                .unwrap_or(true)
        })
        .map(|s| {
            format!(
                "{s}: {}",
                i.services
                    .get(*s)
                    .map(String::as_str)
                    .unwrap_or("not reported")
            )
        })
        .collect();
    if down.is_empty() {
        return Finding::ok();
    }
    let mut details = vec![format!("not running: {}", down.join(", "))];
    if i.gathered.timed_out {
        details.push("waited for the services to start and gave up".into());
    }
    Some(Finding(Status::Error, details))
}

fn modules_running(i: &Inputs<'_>, p: &Policy) -> Option<Finding> {
    let running = |name: &str| {
        i.modules
            .iter()
            .any(|m| m.name == name && m.status == "running")
    };
    let mut missing = vec![];
    if !running("edgeAgent") {
        missing.push("edgeAgent");
    }
    if p.expect_edge_hub && !running("edgeHub") {
        missing.push("edgeHub");
    }
    if missing.is_empty() {
        return Finding::ok();
    }
    Finding::error(format!(
        "not running: {} ({})",
        missing.join(", "),
        i.gathered
            .list
            .1
            .lines()
            .next()
            .unwrap_or("no output")
            .trim()
    ))
}

fn config_readable(i: &Inputs<'_>, _p: &Policy) -> Option<Finding> {
    let e = i.config.as_ref().err()?;
    Finding::error(if i.gathered.config.trim().is_empty() {
        "/etc/aziot/config.toml is missing or unreadable".to_string()
    } else {
        format!("/etc/aziot/config.toml does not parse as a 1.5 config: {e}")
    })
}

fn edge_ca_not_quickstart(i: &Inputs<'_>, _p: &Policy) -> Option<Finding> {
    use crate::iotedge::config::{edge_ca_shape, EdgeCaShape};
    let cfg = i.config.as_ref().ok()?;
    match edge_ca_shape(cfg.edge_ca.as_ref()) {
        Some(EdgeCaShape::Quickstart) => Finding::error(
            "the Edge CA is a quickstart certificate (development only per the production checklist)",
        ),
        _ => Finding::ok(),
    }
}

fn runtime_image_pinned(i: &Inputs<'_>, _p: &Policy) -> Option<Finding> {
    let cfg = i.config.as_ref().ok()?;
    match cfg.agent.as_ref().map(|a| a.config.image.clone()) {
        Some(img) => match crate::iotedge::config::image_finding(&img) {
            Some(f) => Finding::warning(f),
            None => Finding::ok(),
        },
        None => Finding::warning(
            "config.toml has no [agent]: the runtime image is the package default, not pinned",
        ),
    }
}

fn config_matches_rendered(i: &Inputs<'_>, p: &Policy) -> Option<Finding> {
    let want = p.expected_config_sha256.as_ref()?;
    if &i.gathered.config_sha256 == want {
        Finding::ok()
    } else {
        Finding::error(
            "the deployed config.toml differs from the one edgefleet renders for this device (edited by hand, or not yet applied)",
        )
    }
}

fn moby_engine(i: &Inputs<'_>, _p: &Policy) -> Option<Finding> {
    match is_moby(&i.gathered.docker) {
        Some(true) => Finding::ok(),
        Some(false) => Finding::warning(
            "the container engine is not Moby (the only engine supported in production)",
        ),
        None => Finding::error("`docker version` gave no answer: is the container engine running?"),
    }
}

fn daemon_json(i: &Inputs<'_>, _p: &Policy) -> Option<Finding> {
    Finding::error(i.daemon.as_ref().err()?.clone())
}

fn daemon_dns(i: &Inputs<'_>, _p: &Policy) -> Option<Finding> {
    let m = i.daemon.as_ref().ok()?;
    let dns_ok = m
        .get("dns")
        .and_then(Value::as_array)
        .map(|a| !a.is_empty())
        .unwrap_or(false);
    if dns_ok {
        Finding::ok()
    } else {
        Finding::warning("daemon.json sets no DNS servers (`dns`)")
    }
}

/// Does daemon.json limit the logs of every container created from now on?
fn daemon_limits_logs(m: &Map<String, Value>) -> bool {
    let driver = m
        .get("log-driver")
        .and_then(Value::as_str)
        .unwrap_or("json-file");
    driver == "journald"
        || m.get("log-opts")
            .and_then(Value::as_object)
            .map(|o| {
                o.get("max-size").map(Value::is_string).unwrap_or(false)
                    && o.get("max-file").map(Value::is_string).unwrap_or(false)
            })
            .unwrap_or(false)
}

fn daemon_log_limits(i: &Inputs<'_>, _p: &Policy) -> Option<Finding> {
    let m = i.daemon.as_ref().ok()?;
    let driver = m
        .get("log-driver")
        .and_then(Value::as_str)
        .unwrap_or("json-file");
    if daemon_limits_logs(m) {
        Finding::ok()
    } else {
        Finding::warning(format!("log driver `{driver}` without string `max-size` and `max-file` log-opts: container logs can fill the disk"))
    }
}

/// The edgefleet checklist on gathered data: one result per applicable row of [`EDGEFLEET_CHECKS`].
pub fn edgefleet_checks(g: &Gathered, policy: &Policy) -> Vec<CheckResult> {
    let inputs = Inputs::new(g);
    EDGEFLEET_CHECKS
        .iter()
        .filter_map(|c| {
            (c.decide)(&inputs, policy)
                .map(|Finding(status, details)| CheckResult::new(c.id, status, details))
        })
        .collect()
}

/// The manifest rules on the running modules (`iotedge::running`, from the gathered `docker inspect`), as check
/// results: a rule's error severity is an error, its warnings and notes are warnings.
pub fn running_checks(g: &Gathered) -> Vec<CheckResult> {
    let daemon_limits = crate::iotedge::daemon::parse(&g.daemon)
        .map(|m| daemon_limits_logs(&m))
        .unwrap_or(false);
    let containers = crate::facts::containers::parse_section(g.running.0, &g.running.1);
    running_rows(&containers, daemon_limits)
        .into_iter()
        .map(|r| {
            let status = match r.severity {
                None => Status::Ok,
                Some(Severity::Error) => Status::Error,
                Some(_) => Status::Warning,
            };
            CheckResult::new(r.id, status, r.details)
        })
        .collect()
}

/// A device's verdict: every check (waivers marked) and whether it passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Every check, in report order.
    pub checks: Vec<CheckResult>,
    /// Production-ready by the policy?
    pub passed: bool,
    /// The checks that fail the device (indices into `checks`).
    failing: Vec<usize>,
}

impl Verdict {
    /// The checks that fail the device, by the same rule as `passed`.
    pub fn failing(&self) -> impl Iterator<Item = &CheckResult> {
        self.failing.iter().map(|i| &self.checks[*i])
    }

    /// Why the device fails: `not production-ready: id (first detail); ...` (None when it passed).
    pub fn failure(&self) -> Option<String> {
        (!self.passed).then(|| {
            format!(
                "not production-ready: {}",
                self.failing()
                    .map(|c| format!(
                        "{} ({})",
                        c.id,
                        c.details.first().map(String::as_str).unwrap_or_default()
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
    }

    /// `N ok, N warnings, N errors[, N waived]`.
    pub fn summary(&self) -> String {
        let count =
            |f: &dyn Fn(&Status) -> bool| self.checks.iter().filter(|c| f(&c.status)).count();
        let waived = count(&|s| *s == Status::Waived);
        format!(
            "{} ok, {} warnings, {} errors{}",
            count(&|s| *s == Status::Ok),
            count(&|s| *s == Status::Warning),
            count(&|s| matches!(s, Status::Error | Status::Fatal)),
            if waived > 0 {
                format!(", {waived} waived")
            } else {
                String::new()
            }
        )
    }

    /// The generic check matrix the report receives.
    pub fn matrix(&self) -> CheckMatrix {
        CheckMatrix {
            checks: self.checks.iter().map(CheckResult::to_row).collect(),
            passed: self.passed,
        }
    }
}

/// Apply the policy: waive what is waived (a waived check that warned or failed becomes `waived`; one that
/// passed, was skipped or did not apply keeps its result, so a waiver never hides what really happened), then a device
/// fails on any error or fatal result, or a warning listed in `fail_on_warnings`.
pub fn apply_policy(mut results: Vec<CheckResult>, policy: &Policy) -> Verdict {
    for r in &mut results {
        if let Some(reason) = policy.waiver_for(&r.id) {
            if !matches!(r.status, Status::Ok | Status::Skipped | Status::Ignored) {
                r.waiver = Some(reason.clone());
                r.status = Status::Waived;
            }
        }
    }
    let failing: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, c)| policy.fails(c))
        .map(|(i, _)| i)
        .collect();
    Verdict {
        passed: failing.is_empty(),
        checks: results,
        failing,
    }
}

/// Everything `iotedge_verify` concludes from what it gathered: `iotedge check`'s results (or one error when
/// its output is unusable), then the edgefleet checklist, under the policy.
pub fn evaluate(g: &Gathered, policy: &Policy) -> Verdict {
    evaluate_with(g, policy, Vec::new())
}

/// [`evaluate`] with more results judged by the same policy (the reachability rows), after the others.
pub fn evaluate_with(g: &Gathered, policy: &Policy, extra: Vec<CheckResult>) -> Verdict {
    let mut results: Vec<CheckResult> = match parse_check_json(&g.check.1) {
        Ok(r) => r.into_iter().map(CheckResult::from).collect(),
        Err(e) => vec![CheckResult::new("iotedge-check", Status::Error, vec![e])],
    };
    results.extend(edgefleet_checks(g, policy));
    results.extend(running_checks(g));
    results.extend(extra);
    apply_policy(results, policy)
}

/// One `edgefleet-reach-<host>:<port>` row per endpoint of the plan, from the probe's section of the verify
/// output (`facts::reach`); a missing section makes every row an error (the probe never ran).
pub fn reach_results(plan: &crate::iotedge::reach::ReachPlan, out: &str) -> Vec<CheckResult> {
    let probes = crate::facts::reach::parse(out).unwrap_or_else(|| Ok(Vec::new()));
    crate::iotedge::reach::judge(plan, &probes)
        .into_iter()
        .map(|v| {
            CheckResult::new(
                &v.endpoint.check_id(),
                Status::parse(v.status),
                vec![v.detail],
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In the real shape: one compact line.
    const CHECK: &str = crate::facts::iotedge::tests::CHECK;

    fn parsed() -> Vec<CheckResult> {
        parse_check_json(CHECK)
            .unwrap()
            .into_iter()
            .map(CheckResult::from)
            .collect()
    }

    #[test]
    fn policy_waives_and_fails() {
        let r = parsed();
        let v = apply_policy(r.clone(), &Policy::default());
        assert!(!v.passed, "an error fails the device");
        assert_eq!(
            v.failing().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["certs-preloaded"]
        );
        let mut p = Policy::default();
        p.waivers
            .insert("certs-preloaded".into(), "lab device".into());
        let v = apply_policy(r.clone(), &p);
        assert!(v.passed);
        assert_eq!(v.checks[0].status, Status::Waived);
        assert_eq!(v.checks[0].waiver.as_deref(), Some("lab device"));
        assert!(v.failure().is_none());
        p.fail_on_warnings.push("container-engine-logrotate".into());
        let v = apply_policy(r, &p);
        assert!(!v.passed, "a listed warning fails the device");
        assert_eq!(
            v.failure().unwrap(),
            "not production-ready: container-engine-logrotate (Container engine is not configured to rotate module logs which may cause it run out of disk space.)"
        );
        assert_eq!(v.summary(), "1 ok, 1 warnings, 0 errors, 1 waived");
        let w = with_offline_waivers(p.waivers.clone());
        assert!(w["host-connect-iothub-amqp"].starts_with("offline site:"));
        assert_eq!(w.len(), p.waivers.len() + OFFLINE_CHECKS.len());
    }

    #[test]
    fn prefix_waivers_waive_a_family_with_its_reason() {
        let mut p = Policy::default();
        p.waivers
            .insert("edgefleet-reach-*".into(), "air-gapped site".into());
        p.waivers
            .insert("edgefleet-reach-mcr.*".into(), "mirror in the plant".into());
        let row = |id: &str| CheckResult::new(id, Status::Error, vec!["x".into()]);
        let v = apply_policy(
            vec![
                row("edgefleet-reach-hub.example:5671"),
                row("edgefleet-reach-mcr.microsoft.com:443"),
                row("edgefleet-daemon-dns"),
            ],
            &p,
        );
        assert_eq!(v.checks[0].waiver.as_deref(), Some("air-gapped site"));
        assert_eq!(v.checks[1].waiver.as_deref(), Some("mirror in the plant"));
        assert_eq!(v.checks[2].status, Status::Error, "no prefix matches it");
        assert_eq!(
            v.failing().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["edgefleet-daemon-dns"]
        );
    }

    #[test]
    fn reach_rows_from_the_probe_section() {
        let plan = crate::iotedge::reach::plan(
            &serde_json::json!({"provisioning": {"source": "manual", "iothub_hostname": "h.example"},
                                "agent": {"imagePullPolicy": "never", "env": {"UpstreamProtocol": "Mqtt"}}}),
            &[],
        )
        .unwrap();
        let out = "\u{1e}EF:config\nx\n\u{1e}EF:reach\nh.example:8883 28 0.000024 0 0 000 |curl: (28) Connection timed out after 5001 milliseconds\nh.example:443 0 0.1 0.2 0.3 000 1.2.3.4|\n";
        let r = reach_results(&plan, out);
        assert_eq!(
            r.iter()
                .map(|c| (c.id.as_str(), c.status.as_str()))
                .collect::<Vec<_>>(),
            [
                ("edgefleet-reach-h.example:8883", "error"),
                ("edgefleet-reach-h.example:443", "ok")
            ]
        );
        assert!(
            r[0].details[0]
                .starts_with("h.example:8883 (IoT Hub (MQTT)): TCP connection timed out"),
            "{:?}",
            r[0].details
        );
        // No section at all: the probe never ran, every row is an error.
        let r = reach_results(&plan, "\u{1e}EF:config\nx\n");
        assert!(r.iter().all(|c| c.status == Status::Error), "{r:?}");
    }

    #[test]
    fn waiving_an_ok_check_keeps_it_ok() {
        let mut p = Policy::default();
        p.waivers.insert("config-up-to-date".into(), "x".into());
        let v = apply_policy(parsed(), &p);
        let c = v
            .checks
            .iter()
            .find(|c| c.id == "config-up-to-date")
            .unwrap();
        assert_eq!((c.status.clone(), c.waiver.clone()), (Status::Ok, None));
    }

    #[test]
    fn table_ids_are_unique_and_prefixed() {
        let mut ids: Vec<&str> = EDGEFLEET_CHECKS.iter().map(|c| c.id).collect();
        assert!(ids.iter().all(|i| i.starts_with("edgefleet-")));
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), EDGEFLEET_CHECKS.len());
    }

    #[test]
    fn gathered_sections() {
        use base64::Engine;
        let cfg =
            base64::engine::general_purpose::STANDARD.encode("[provisioning]\nsource = \"none\"\n");
        let out = format!("\u{1e}EF:status\nSystem services:\n\u{1e}EF:list 1\nA module runtime error occurred\n\u{1e}EF:check 0\n{{}}\n\u{1e}EF:config\n{cfg}\n");
        let g = crate::facts::iotedge::parse_gathered(&out);
        assert_eq!(g.list.0, 1);
        assert_eq!(g.config, "[provisioning]\nsource = \"none\"\n");
        assert_eq!(
            g.config_sha256,
            crate::facts::sha256_hex(b"[provisioning]\nsource = \"none\"\n")
        );
        let checks = edgefleet_checks(&g, &Policy::default());
        let by = |id: &str| {
            checks
                .iter()
                .find(|c| c.id == id)
                .map(|c| c.status.as_str().to_string())
                .unwrap_or_default()
        };
        assert_eq!(by("edgefleet-services-running"), "error");
        assert_eq!(by("edgefleet-edge-ca-not-quickstart"), "error");
        assert_eq!(by("edgefleet-moby-engine"), "error");
        assert_eq!(by("edgefleet-daemon-dns"), "warning");
        // Rows that do not apply are not reported.
        assert_eq!(by("edgefleet-config-readable"), "");
        assert_eq!(by("edgefleet-daemon-json"), "");
        assert_eq!(by("edgefleet-config-matches-rendered"), "");
        assert_eq!(
            checks.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            [
                "edgefleet-services-running",
                "edgefleet-modules-running",
                "edgefleet-edge-ca-not-quickstart",
                "edgefleet-runtime-image-pinned",
                "edgefleet-moby-engine",
                "edgefleet-daemon-dns",
                "edgefleet-daemon-log-limits",
            ]
        );
        // An unreadable config replaces the config rows with one error; drift is checked when expected.
        let mut g2 = g.clone();
        g2.config.clear();
        g2.config_sha256.clear();
        let p = Policy {
            expected_config_sha256: Some("abc".into()),
            ..Policy::default()
        };
        let checks = edgefleet_checks(&g2, &p);
        let ids: Vec<&str> = checks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            &ids[2..4],
            [
                "edgefleet-config-readable",
                "edgefleet-config-matches-rendered"
            ]
        );
        assert_eq!(
            checks[2].details,
            ["/etc/aziot/config.toml is missing or unreadable"]
        );
    }
}
