//! A rollout wave's health verdict for one device: what the probe (`facts::health`: the verify gather plus the
//! modules' restart state) read when the soak began and when it ended, judged by the verification policy.
//!
//! A device is healthy when, at the end of the soak, verification passes by the policy (`check::evaluate`, with
//! edgeAgent and edgeHub required to run), no module restarted during the soak (its restart count rose, or it
//! started again), no module disappeared, and no check that was ok when the soak began is anything but ok at its
//! end (a new warning counts, even one the policy lets pass). Pure functions of gathered data; each reason is one
//! line an operator can act on.

use crate::facts::health::{parse_restarts, ModuleRestarts};
use crate::facts::iotedge::{parse_gathered, Gathered};

use super::check::{evaluate, Policy, Status};

/// One probe's answers.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    /// The verify gather.
    pub gathered: Gathered,
    /// The modules' restart state.
    pub restarts: Vec<ModuleRestarts>,
}

impl Probe {
    /// Parse the probe's output.
    pub fn parse(out: &str) -> Probe {
        Probe {
            gathered: parse_gathered(out),
            restarts: parse_restarts(out),
        }
    }
}

/// The policy the gate judges by: the verification's, with edgeHub required.
pub fn gate_policy(mut p: Policy) -> Policy {
    p.expect_edge_hub = true;
    p
}

/// Why the device is unhealthy (empty: healthy). `before` is the probe at the start of the soak (None when
/// there was no soak: only the end state is judged).
pub fn judge(before: Option<&Probe>, after: &Probe, policy: &Policy) -> Vec<String> {
    let policy = gate_policy(policy.clone());
    let verdict = evaluate(&after.gathered, &policy);
    let mut reasons: Vec<String> = verdict
        .failing()
        .map(|c| match c.details.first() {
            Some(d) => format!("check {} {}: {d}", c.id, c.status.as_str()),
            None => format!("check {} {}", c.id, c.status.as_str()),
        })
        .collect();
    let Some(before) = before else {
        return reasons;
    };
    for b in &before.restarts {
        match after.restarts.iter().find(|a| a.name == b.name) {
            None => reasons.push(format!("module {} disappeared during the soak", b.name)),
            Some(a) if a.restart_count > b.restart_count => reasons.push(format!(
                "module {} restarted {} times during the soak (restart count {} -> {})",
                a.name,
                a.restart_count - b.restart_count,
                b.restart_count,
                a.restart_count
            )),
            Some(a) if a.started_at != b.started_at => reasons.push(format!(
                "module {} restarted during the soak (started at {}, then at {})",
                a.name, b.started_at, a.started_at
            )),
            Some(_) => {}
        }
    }
    let was = evaluate(&before.gathered, &policy);
    let failing: Vec<&str> = verdict.failing().map(|c| c.id.as_str()).collect();
    for c in &verdict.checks {
        let newly_bad = !matches!(
            c.status,
            Status::Ok | Status::Skipped | Status::Ignored | Status::Waived
        ) && was
            .checks
            .iter()
            .any(|w| w.id == c.id && w.status == Status::Ok);
        if newly_bad && !failing.contains(&c.id.as_str()) {
            reasons.push(format!(
                "check {} was ok when the soak began and is {} now{}",
                c.id,
                c.status.as_str(),
                c.details
                    .first()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ));
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    /// A probe's output in the real shapes: services and both runtime modules running, `iotedge check` with
    /// one ok and one warning, a 1.5 config, Moby, a daemon.json with DNS and log limits, restart state.
    fn output(hub_restarts: u64, hub_started: &str, logrotate: &str) -> String {
        let cfg = base64::engine::general_purpose::STANDARD.encode(
            "hostname = \"edge-001\"\n[provisioning]\nsource = \"manual\"\nconnection_string = \"HostName=h;DeviceId=d;SharedAccessKey=a2V5\"\n[edge_ca]\ncert = \"file:///var/aziot/certs/edge-ca.cert.pem\"\npk = \"file:///var/aziot/secrets/edge-ca.key.pem\"\n[agent]\nname = \"edgeAgent\"\ntype = \"docker\"\n[agent.config]\nimage = \"mcr.microsoft.com/azureiotedge-agent:1.5.21\"\n",
        );
        format!(
            "\u{1e}EF:status\nSystem services:\n    aziot-edged             Running\n    aziot-identityd         Running\n    aziot-keyd              Running\n    aziot-certd             Running\n\
             \u{1e}EF:list 0\nNAME             STATUS           DESCRIPTION      Config\nedgeAgent        running          Up 2 minutes     mcr.microsoft.com/azureiotedge-agent:1.5.21\nedgeHub          running          Up 1 second      mcr.microsoft.com/azureiotedge-hub:1.5.21\n\
             \u{1e}EF:check 0\n{{\"checks\":{{\"config-up-to-date\":{{\"result\":{{\"result\":\"ok\"}}}},\"container-engine-logrotate\":{{\"result\":{{\"result\":\"{logrotate}\",\"details\":[\"Container engine is not configured to rotate module logs\"]}}}}}}}}\n\
             \u{1e}EF:docker\nServer:\n Engine:\n  Version: 24.0.9+azure-1\n\
             \u{1e}EF:daemon\n{{\"dns\":[\"10.0.0.53\"],\"log-driver\":\"local\",\"log-opts\":{{\"max-size\":\"10m\",\"max-file\":\"3\"}}}}\n\
             \u{1e}EF:config\n{cfg}\n\
             \u{1e}EF:running 0\n{inspect}\n\
             \u{1e}EF:restarts\n/edgeAgent 0 running 2026-12-03T18:00:00.000000000Z\n/edgeHub {hub_restarts} running {hub_started}\n",
            inspect = include_str!("../../tests/fixtures/facts/docker-inspect.json").trim_end()
        )
    }

    const T0: &str = "2026-12-03T18:00:00.000000000Z";

    #[test]
    fn a_steady_device_is_healthy() {
        let before = Probe::parse(&output(0, T0, "ok"));
        let after = Probe::parse(&output(0, T0, "ok"));
        assert_eq!(
            judge(Some(&before), &after, &Policy::default()),
            Vec::<String>::new()
        );
        assert_eq!(
            judge(None, &after, &Policy::default()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn rising_restart_counts_and_new_starts_are_unhealthy() {
        let before = Probe::parse(&output(0, T0, "ok"));
        let after = Probe::parse(&output(3, "2026-12-03T18:00:03.000000000Z", "ok"));
        assert_eq!(
            judge(Some(&before), &after, &Policy::default()),
            ["module edgeHub restarted 3 times during the soak (restart count 0 -> 3)"]
        );
        // A module its supervisor started again (same count, new start time) restarted too.
        let after = Probe::parse(&output(0, "2026-12-03T18:00:09.000000000Z", "ok"));
        let r = judge(Some(&before), &after, &Policy::default());
        assert_eq!(r.len(), 1);
        assert!(
            r[0].starts_with("module edgeHub restarted during the soak (started at "),
            "{r:?}"
        );
        // Without a soak there is nothing to compare: only the end state is judged.
        let after = Probe::parse(&output(3, T0, "ok"));
        assert!(judge(None, &after, &Policy::default()).is_empty());
    }

    #[test]
    fn a_check_that_turns_bad_during_the_soak_is_unhealthy_even_as_a_warning() {
        let before = Probe::parse(&output(0, T0, "ok"));
        let after = Probe::parse(&output(0, T0, "warning"));
        assert_eq!(
            judge(Some(&before), &after, &Policy::default()),
            ["check container-engine-logrotate was ok when the soak began and is warning now: Container engine is not configured to rotate module logs"]
        );
        // A warning that was there before is not new.
        let before = Probe::parse(&output(0, T0, "warning"));
        assert!(judge(Some(&before), &after, &Policy::default()).is_empty());
    }

    #[test]
    fn failing_verification_and_missing_modules_are_unhealthy() {
        let text = output(0, T0, "error");
        let after = Probe::parse(&text);
        let r = judge(None, &after, &Policy::default());
        assert_eq!(
            r,
            ["check container-engine-logrotate error: Container engine is not configured to rotate module logs"]
        );
        // edgeHub gone from `iotedge list` and from the restart state.
        let before = Probe::parse(&output(0, T0, "ok"));
        let gone = output(0, T0, "ok")
            .lines()
            .filter(|l| !l.starts_with("edgeHub") && !l.starts_with("/edgeHub"))
            .collect::<Vec<_>>()
            .join("\n");
        let r = judge(Some(&before), &Probe::parse(&gone), &Policy::default());
        assert!(
            r.iter()
                .any(|x| x
                    .starts_with("check edgefleet-modules-running error: not running: edgeHub")),
            "{r:?}"
        );
        assert!(
            r.contains(&"module edgeHub disappeared during the soak".to_string()),
            "{r:?}"
        );
    }
}
