//! The verification policy: what the device's answers (gathered and parsed by `facts::iotedge`) mean for a
//! per-device verdict.
//!
//! Owns the checklist items the 1.5 CLI no longer checks (quickstart CA, Moby engine, pinned runtime image,
//! daemon.json DNS and log limits, config drift), with ids prefixed `edgefleet-`, and the waiver /
//! fail-on-warnings policy. Pure functions of gathered data.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::facts::iotedge::{is_moby, parse_list, parse_system_status, Gathered};
use crate::report::CheckResult;

/// The verification policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Warnings with these ids fail the device.
    pub fail_on_warnings: Vec<String>,
    /// Waived check ids and why.
    pub waivers: BTreeMap<String, String>,
    /// The config.toml hash edgefleet rendered (drift check), when known.
    pub expected_config_sha256: Option<String>,
    /// Expect edgeHub to be running too.
    pub expect_edge_hub: bool,
}

fn ok(id: &str) -> CheckResult {
    CheckResult {
        id: id.into(),
        result: "ok".into(),
        details: vec![],
        waiver: None,
    }
}

fn bad(id: &str, result: &str, detail: impl Into<String>) -> CheckResult {
    CheckResult {
        id: id.into(),
        result: result.into(),
        details: vec![detail.into()],
        waiver: None,
    }
}

/// The checklist items the 1.5 CLI no longer checks, plus service/module health and config drift.
pub fn edgefleet_checks(g: &Gathered, policy: &Policy) -> Vec<CheckResult> {
    let mut out = Vec::new();
    // Services and modules.
    let services = parse_system_status(&g.status);
    let down: Vec<String> = [
        "aziot-edged",
        "aziot-identityd",
        "aziot-keyd",
        "aziot-certd",
    ]
    .iter()
    .filter(|s| services.get(**s).map(|st| st != "Running").unwrap_or(true))
    .map(|s| {
        format!(
            "{s}: {}",
            services
                .get(*s)
                .cloned()
                .unwrap_or_else(|| "not reported".into())
        )
    })
    .collect();
    out.push(if down.is_empty() {
        ok("edgefleet-services-running")
    } else {
        let mut c = bad(
            "edgefleet-services-running",
            "error",
            format!("not running: {}", down.join(", ")),
        );
        if g.timed_out {
            c.details
                .push("waited for the services to start and gave up".into());
        }
        c
    });
    let modules = parse_list(&g.list.1);
    let running = |name: &str| {
        modules
            .iter()
            .any(|m| m.name == name && m.status == "running")
    };
    let mut missing = vec![];
    if !running("edgeAgent") {
        missing.push("edgeAgent");
    }
    if policy.expect_edge_hub && !running("edgeHub") {
        missing.push("edgeHub");
    }
    out.push(if missing.is_empty() {
        ok("edgefleet-modules-running")
    } else {
        bad(
            "edgefleet-modules-running",
            "error",
            format!(
                "not running: {} ({})",
                missing.join(", "),
                g.list.1.lines().next().unwrap_or("no output").trim()
            ),
        )
    });
    // Config-derived checklist items.
    match crate::iotedge::config::parse_toml(&g.config)
        .and_then(|v| crate::iotedge::config::from_value(&v).map_err(|e| e.to_string()))
    {
        Ok(cfg) => {
            use crate::iotedge::config::{edge_ca_shape, image_finding, EdgeCaShape};
            out.push(match edge_ca_shape(cfg.edge_ca.as_ref()) {
                Some(EdgeCaShape::Quickstart) => bad(
                    "edgefleet-edge-ca-not-quickstart",
                    "error",
                    "the Edge CA is a quickstart certificate (development only per the production checklist)",
                ),
                _ => ok("edgefleet-edge-ca-not-quickstart"),
            });
            out.push(match cfg.agent.as_ref().map(|a| a.config.image.clone()) {
                Some(img) => match image_finding(&img) {
                    Some(f) => bad("edgefleet-runtime-image-pinned", "warning", f),
                    None => ok("edgefleet-runtime-image-pinned"),
                },
                None => bad(
                    "edgefleet-runtime-image-pinned",
                    "warning",
                    "config.toml has no [agent]: the runtime image is the package default, not pinned",
                ),
            });
        }
        Err(e) => out.push(bad(
            "edgefleet-config-readable",
            "error",
            if g.config.trim().is_empty() {
                "/etc/aziot/config.toml is missing or unreadable".to_string()
            } else {
                format!("/etc/aziot/config.toml does not parse as a 1.5 config: {e}")
            },
        )),
    }
    if let Some(want) = &policy.expected_config_sha256 {
        out.push(if &g.config_sha256 == want {
            ok("edgefleet-config-matches-rendered")
        } else {
            bad(
                "edgefleet-config-matches-rendered",
                "error",
                "the deployed config.toml differs from the one edgefleet renders for this device (edited by hand, or not yet applied)",
            )
        });
    }
    // Engine.
    out.push(match is_moby(&g.docker) {
        Some(true) => ok("edgefleet-moby-engine"),
        Some(false) => bad(
            "edgefleet-moby-engine",
            "warning",
            "the container engine is not Moby (the only engine supported in production)",
        ),
        None => bad(
            "edgefleet-moby-engine",
            "error",
            "`docker version` gave no answer: is the container engine running?",
        ),
    });
    // daemon.json.
    match crate::iotedge::daemon::parse(&g.daemon) {
        Ok(m) => {
            let dns_ok = m
                .get("dns")
                .and_then(Value::as_array)
                .map(|a| !a.is_empty())
                .unwrap_or(false);
            out.push(if dns_ok {
                ok("edgefleet-daemon-dns")
            } else {
                bad(
                    "edgefleet-daemon-dns",
                    "warning",
                    "daemon.json sets no DNS servers (`dns`)",
                )
            });
            let driver = m
                .get("log-driver")
                .and_then(Value::as_str)
                .unwrap_or("json-file");
            let opts = m.get("log-opts").and_then(Value::as_object);
            let limited = driver == "journald"
                || opts
                    .map(|o| {
                        o.get("max-size").map(Value::is_string).unwrap_or(false)
                            && o.get("max-file").map(Value::is_string).unwrap_or(false)
                    })
                    .unwrap_or(false);
            out.push(if limited {
                ok("edgefleet-daemon-log-limits")
            } else {
                bad(
                    "edgefleet-daemon-log-limits",
                    "warning",
                    format!("log driver `{driver}` without string `max-size` and `max-file` log-opts: container logs can fill the disk"),
                )
            });
        }
        Err(e) => out.push(bad("edgefleet-daemon-json", "error", e)),
    }
    out
}

/// Apply the policy: returns the results (with waivers marked) and whether the device passes.
pub fn apply_policy(mut results: Vec<CheckResult>, policy: &Policy) -> (Vec<CheckResult>, bool) {
    let mut passed = true;
    for r in &mut results {
        if let Some(reason) = policy.waivers.get(&r.id) {
            if r.result != "ok" {
                r.waiver = Some(reason.clone());
                r.result = "waived".into();
            }
            continue;
        }
        match r.result.as_str() {
            "error" | "fatal" => passed = false,
            "warning"
                if policy
                    .fail_on_warnings
                    .iter()
                    .any(|w| w == &r.id || w == "all") =>
            {
                passed = false
            }
            _ => {}
        }
    }
    (results, passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In the real shape: one compact line.
    const CHECK: &str = crate::facts::iotedge::tests::CHECK;

    #[test]
    fn policy_waives_and_fails() {
        let r = crate::facts::iotedge::parse_check_json(CHECK).unwrap();
        let (_, passed) = apply_policy(r.clone(), &Policy::default());
        assert!(!passed, "an error fails the device");
        let mut p = Policy::default();
        p.waivers
            .insert("certs-preloaded".into(), "lab device".into());
        let (r2, passed) = apply_policy(r.clone(), &p);
        assert!(passed);
        assert_eq!(r2[0].result, "waived");
        p.fail_on_warnings.push("container-engine-logrotate".into());
        let (_, passed) = apply_policy(r, &p);
        assert!(!passed, "a listed warning fails the device");
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
                .map(|c| c.result.clone())
                .unwrap_or_default()
        };
        assert_eq!(by("edgefleet-services-running"), "error");
        assert_eq!(by("edgefleet-edge-ca-not-quickstart"), "error");
        assert_eq!(by("edgefleet-moby-engine"), "error");
        assert_eq!(by("edgefleet-daemon-dns"), "warning");
    }
}
