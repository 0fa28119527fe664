//! Parsers for what IoT Edge prints (`iotedge check --output json`, `iotedge system status`, `iotedge list`,
//! `docker version`) and the verification policy that turns results into a per-device verdict.
//!
//! Pure functions of command output, tested on recorded output in the real formats. The checklist items the
//! 1.5 CLI no longer checks (quickstart CA, Moby engine, pinned runtime image, daemon.json DNS and log limits,
//! config drift) are computed here too, with ids prefixed `edgefleet-`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::report::CheckResult;

/// Parse `iotedge check --output json` (one compact JSON line) into per-id results, in id order.
pub fn parse_check_json(text: &str) -> Result<Vec<CheckResult>, String> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| "`iotedge check --output json` printed no JSON".to_string())?;
    let v: Value = serde_json::from_str(line)
        .map_err(|e| format!("`iotedge check` printed invalid JSON: {e}"))?;
    let checks = v
        .get("checks")
        .and_then(Value::as_object)
        .ok_or_else(|| "`iotedge check` JSON has no `checks` object".to_string())?;
    let mut out: Vec<CheckResult> = checks
        .iter()
        .map(|(id, c)| {
            let r = c.get("result");
            let result = r
                .and_then(|r| r.get("result"))
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string();
            let details = r
                .and_then(|r| r.get("details"))
                .and_then(Value::as_array)
                .map(|d| {
                    d.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            CheckResult {
                id: id.clone(),
                result,
                details,
                waiver: None,
            }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// `iotedge system status`: service name -> state ("Running", "Ready", "Down - ...").
pub fn parse_system_status(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let t = l.trim();
            let (name, rest) = t.split_once(char::is_whitespace)?;
            name.starts_with("aziot-")
                .then(|| (name.to_string(), rest.trim().to_string()))
        })
        .collect()
}

/// One row of `iotedge list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleRow {
    /// Module name.
    pub name: String,
    /// running | stopped | failed | dead | unknown.
    pub status: String,
    /// The image (last column).
    pub image: String,
}

/// `iotedge list` rows (header skipped).
pub fn parse_list(text: &str) -> Vec<ModuleRow> {
    text.lines()
        .skip_while(|l| !l.trim_start().starts_with("NAME"))
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if cols.len() < 3 {
                return None;
            }
            Some(ModuleRow {
                name: cols[0].to_string(),
                status: cols[1].to_string(),
                image: cols.last().map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// Is the container engine Moby (the only engine supported in production)? Judged from `docker version`.
pub fn is_moby(docker_version: &str) -> Option<bool> {
    let t = docker_version.trim();
    // The `Server:` header names the product for Docker's own builds ("Docker Engine - Community"); Microsoft's
    // moby-engine sets no platform name, so its header is bare. Azure builds also carry "+azure" versions.
    let server = t
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Server:"))?;
    let product = server.trim();
    if product.contains("Docker Engine") || product.contains("Docker Desktop") {
        return Some(false);
    }
    Some(
        product.is_empty() || product.to_ascii_lowercase().contains("moby") || t.contains("+azure"),
    )
}

/// Everything the verify script gathered from one device.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    /// `iotedge system status` output.
    pub status: String,
    /// `iotedge list` exit code and output.
    pub list: (i64, String),
    /// `iotedge check --output json` exit code and output.
    pub check: (i64, String),
    /// `docker version` output.
    pub docker: String,
    /// daemon.json content (may be empty).
    pub daemon: String,
    /// config.toml content (held in memory only; may contain secrets: never logged).
    pub config: String,
    /// sha256 of config.toml.
    pub config_sha256: String,
    /// Whether the wait loop timed out.
    pub timed_out: bool,
}

/// Section marker the verify script prints before each part.
pub const MARK: &str = "\u{1e}EF:";

/// Split the verify script's output into its parts.
pub fn parse_gathered(out: &str) -> Gathered {
    let mut g = Gathered::default();
    let mut cur: Option<(String, String)> = None;
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in out.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix(MARK) {
            if let Some(c) = cur.take() {
                sections.push(c);
            }
            cur = Some((rest.trim_end().to_string(), String::new()));
        } else if let Some((_, body)) = cur.as_mut() {
            body.push_str(line);
        }
    }
    if let Some(c) = cur {
        sections.push(c);
    }
    for (head, body) in sections {
        let mut words = head.split_whitespace();
        let name = words.next().unwrap_or_default();
        let rc: i64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        match name {
            "status" => g.status = body,
            "list" => g.list = (rc, body),
            "check" => g.check = (rc, body),
            "docker" => g.docker = body,
            "daemon" => g.daemon = body,
            "config" => {
                use base64::Engine;
                let raw = body.trim();
                if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(raw) {
                    // The hash is computed here, from the bytes: one process less on every device.
                    if !b.is_empty() {
                        g.config_sha256 = crate::executor::facts::sha256_hex(&b);
                    }
                    g.config = String::from_utf8_lossy(&b).into_owned();
                }
            }
            "timeout" => g.timed_out = true,
            _ => {}
        }
    }
    g
}

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
    const CHECK: &str = r#"{"additional_info":{"now":"2026-11-26T10:00:00Z"},"checks":{"container-engine-logrotate":{"result":{"result":"warning","details":["Container engine is not configured to rotate module logs which may cause it run out of disk space."]},"additional_info":{}},"config-up-to-date":{"result":{"result":"ok"},"additional_info":{}},"host-connect-iothub-amqp":{"result":{"result":"skipped"},"additional_info":{}},"certs-preloaded":{"result":{"result":"error","details":["the Edge CA has expired"]},"additional_info":{}}}}"#;

    #[test]
    fn parses_check_json() {
        let r = parse_check_json(&format!("noise\n{CHECK}\n")).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].id, "certs-preloaded");
        assert_eq!(r[0].result, "error");
        assert_eq!(r[1].result, "ok");
        assert_eq!(r[2].id, "container-engine-logrotate");
        assert_eq!(r[2].details.len(), 1);
        assert!(parse_check_json("Error: not json").is_err());
    }

    #[test]
    fn parses_status_and_list() {
        let st = "System services:\n    aziot-edged             Running\n    aziot-identityd         Running\n    aziot-keyd              Ready\n    aziot-certd             Down - activating\n    aziot-tpmd              Ready\n";
        let s = parse_system_status(st);
        assert_eq!(s["aziot-edged"], "Running");
        assert_eq!(s["aziot-certd"], "Down - activating");
        let l = "NAME             STATUS           DESCRIPTION      Config\nedgeAgent        running          Up 2 minutes     mcr.microsoft.com/azureiotedge-agent:1.5.21\nedgeHub          stopped          Stopped          mcr.microsoft.com/azureiotedge-hub:1.5.21\n";
        let rows = parse_list(l);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].status, "running");
        assert_eq!(rows[1].image, "mcr.microsoft.com/azureiotedge-hub:1.5.21");
    }

    #[test]
    fn policy_waives_and_fails() {
        let r = parse_check_json(CHECK).unwrap();
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
    fn moby_detection() {
        assert_eq!(
            is_moby("Server:\n Engine:\n  Version: 25.0.5+azure-2\n ... moby-engine"),
            Some(true)
        );
        assert_eq!(
            is_moby("Server: Docker Engine - Community\n Engine:\n  Version: 27.1.1"),
            Some(false)
        );
        assert_eq!(is_moby(""), None);
    }

    #[test]
    fn gathered_sections() {
        use base64::Engine;
        let cfg =
            base64::engine::general_purpose::STANDARD.encode("[provisioning]\nsource = \"none\"\n");
        let out = format!("\u{1e}EF:status\nSystem services:\n\u{1e}EF:list 1\nA module runtime error occurred\n\u{1e}EF:check 0\n{{}}\n\u{1e}EF:config\n{cfg}\n");
        let g = parse_gathered(&out);
        assert_eq!(g.list.0, 1);
        assert_eq!(g.config, "[provisioning]\nsource = \"none\"\n");
        assert_eq!(
            g.config_sha256,
            crate::executor::facts::sha256_hex(b"[provisioning]\nsource = \"none\"\n")
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
