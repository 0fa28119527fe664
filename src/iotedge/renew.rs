//! Edge CA renewal on a device, the controller's side of it: whether an installed Edge CA is due (days left
//! by the CONTROLLER's clock, and never when the device's clock is too far off to trust), where config.toml
//! says the Edge CA lives, and the verdict on a renewal from what the device printed after applying it
//! (edgeAgent back and running, the certificate checks of `iotedge check` not failing).
//!
//! Shared by `edgefleet certs issue` (which renews the controller's copies) and the `edge_ca_renew` module
//! (which renews on the device), so both decide "due" the same way. Pure: callers pass clocks and outputs.

use crate::facts::iotedge::{parse_check_json, parse_gathered, parse_list, Gathered, MARK};

/// How far the device clock may be from the controller's before a renewal is refused. A new Edge CA is valid
/// from an hour before it is signed (see `IssuingCa::issue`), so a device up to an hour behind accepts it.
pub const DEFAULT_MAX_CLOCK_SKEW_SECS: i64 = 3600;

/// The `iotedge check` ids whose failure after a renewal means the device rejects the new Edge CA: the
/// preloaded certificates are valid and readable, the keys load, certificates match their keys, and the
/// services that serve them run. Warnings (e.g. "expires within 7 days") do not count; errors and fatals do.
pub const EDGE_CA_CHECKS: &[&str] = &[
    "certs-preloaded",
    "certd-running",
    "keyd-running",
    "certs-read",
    "key-pairs-read",
    "certs-match-private-keys",
];

/// The common name of the Edge CA `certs issue` and `edge_ca_renew` sign for a device: `<device id> Edge
/// CA`, the id cut so the name stays within X.520's 64 characters. It differs from the hostname and id by
/// construction.
pub fn edge_ca_common_name(device_id: &str) -> String {
    let short: String = device_id.chars().take(56).collect();
    format!("{short} Edge CA")
}

/// Is a certificate with this notAfter due for renewal at `now` (controller clock)? `Some(reason)` when it is
/// (days left <= `renew_before`, or expired).
pub fn renewal_due(days_left: i64, renew_before: i64) -> Option<String> {
    if days_left < 0 {
        Some(format!("expired {} days ago", -days_left))
    } else if days_left <= renew_before {
        Some(format!(
            "{days_left} days left <= renew_before {renew_before}"
        ))
    } else {
        None
    }
}

/// A device clock too far from the controller's to renew safely, said so that an operator knows what to do.
/// `None` when the clocks agree within `max_skew` seconds.
pub fn clock_problem(device_time: Option<i64>, now: i64, max_skew: i64) -> Option<String> {
    let Some(t) = device_time else {
        return Some("the device did not report its clock (`date -u +%s` printed no number), so the Edge CA's expiry cannot be judged against it: check `date` on the device".into());
    };
    let skew = t - now;
    if skew.abs() <= max_skew {
        return None;
    }
    // To the nearest day: the device read its clock a moment before the controller did.
    let days = (skew.abs() + 43_200) / 86_400;
    let amount = if days > 0 {
        format!("{days} days")
    } else {
        format!("{} seconds", skew.abs())
    };
    Some(format!(
        "the device clock is {amount} {} the controller's: the Edge CA was not renewed (the device would judge any certificate by a wrong time, and a renewal would not hold); fix the device's time (NTP, `timedatectl`), then run again",
        if skew > 0 { "ahead of" } else { "behind" }
    ))
}

/// Where config.toml says the Edge CA is: `[edge_ca]` `cert` and `pk` as `file://` paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeCaPaths {
    /// Preloaded files: these can be renewed.
    Files {
        /// The certificate (chain) file.
        cert: String,
        /// The private key file.
        key: String,
    },
    /// No `[edge_ca]` files: the quickstart Edge CA, which aziot-edged renews itself.
    Quickstart,
    /// Something else (EST, a key in an HSM, a malformed file URI): not ours to renew.
    Other(String),
}

fn file_uri_path(v: &str) -> Option<String> {
    let p = v.strip_prefix("file://")?;
    p.starts_with('/').then(|| p.to_string())
}

/// Read `[edge_ca]` from config.toml's text. Errors when the text is not TOML.
pub fn edge_ca_paths(config_toml: &str) -> Result<EdgeCaPaths, String> {
    let t: toml::Table = config_toml
        .parse()
        .map_err(|e| format!("config.toml does not parse: {e}"))?;
    let Some(ca) = t.get("edge_ca").and_then(|v| v.as_table()) else {
        return Ok(EdgeCaPaths::Quickstart);
    };
    let cert = ca.get("cert").and_then(|v| v.as_str());
    let pk = ca.get("pk").and_then(|v| v.as_str());
    match (cert, pk) {
        (None, None) if ca.contains_key("method") => Ok(EdgeCaPaths::Other(
            "config.toml's [edge_ca] is issued by a service (EST), which renews it itself".into(),
        )),
        (None, None) => Ok(EdgeCaPaths::Quickstart),
        (Some(c), Some(k)) => match (file_uri_path(c), file_uri_path(k)) {
            (Some(cert), Some(key)) => Ok(EdgeCaPaths::Files { cert, key }),
            _ => Ok(EdgeCaPaths::Other(format!(
                "config.toml's [edge_ca] cert `{c}` / pk `{k}` are not both absolute file:// paths (a key in an HSM is renewed by whoever manages it)"
            ))),
        },
        _ => Ok(EdgeCaPaths::Other(
            "config.toml's [edge_ca] has only one of `cert` and `pk`".into(),
        )),
    }
}

/// What the renewal script printed: its own markers, then (after a good apply) the verify gather.
#[derive(Debug, Clone, Default)]
pub struct RenewOutput {
    /// The previous pair was kept as `*.prev`.
    pub kept_prev: bool,
    /// The new pair is in place.
    pub installed: bool,
    /// `iotedge config apply`'s exit code and output, when it ran.
    pub apply: Option<(i64, String)>,
    /// The verify gather, when it ran.
    pub verify: Option<Gathered>,
}

/// Parse the renewal script's output.
pub fn parse_renew_output(out: &str) -> RenewOutput {
    let mut r = RenewOutput::default();
    let (head, verify) = match out.split_once(&format!("{MARK}verify\n")) {
        Some((h, v)) => (h, Some(v)),
        None => (out, None),
    };
    let mut apply: Option<(i64, String)> = None;
    for line in head.split_inclusive('\n') {
        if let Some(m) = line.strip_prefix(MARK) {
            let m = m.trim_end();
            match m.split_whitespace().next().unwrap_or_default() {
                "prev" => r.kept_prev = true,
                "installed" => r.installed = true,
                "apply" => {
                    let rc = m
                        .split_whitespace()
                        .nth(1)
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(-1);
                    apply = Some((rc, String::new()));
                }
                _ => {}
            }
        } else if let Some((_, body)) = apply.as_mut() {
            body.push_str(line);
        }
    }
    r.apply = apply;
    r.verify = verify.map(parse_gathered);
    r
}

/// The first line worth showing from a command's output.
fn first_error(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| l.contains("rror") || l.contains("ailed"))
        .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("(no output)")
        .to_string()
}

/// Did the renewal hold? `Err(reason)` when the new pair was not installed, `iotedge config apply` failed,
/// edgeAgent did not come back within the wait, or a certificate check ([`EDGE_CA_CHECKS`]) failed.
/// `exit_ok` and `stderr` are the script's own (a failure before the new pair was in place).
pub fn judge_renewal(out: &RenewOutput, exit_ok: bool, stderr: &str) -> Result<(), String> {
    if !out.installed || !exit_ok {
        return Err(format!(
            "the new Edge CA could not be put in place: {}",
            first_error(stderr)
        ));
    }
    let Some((rc, text)) = &out.apply else {
        return Err("`iotedge config apply` did not run".into());
    };
    if *rc != 0 {
        return Err(format!(
            "`iotedge config apply` failed (exit {rc}): {}",
            first_error(text)
        ));
    }
    let Some(g) = &out.verify else {
        return Err("the verification did not run".into());
    };
    let agent_running = parse_list(&g.list.1)
        .iter()
        .any(|m| m.name == "edgeAgent" && m.status == "running");
    if g.timed_out || !agent_running {
        let row = g
            .list
            .1
            .lines()
            .find(|l| l.trim_start().starts_with("edgeAgent"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| first_error(&g.list.1));
        return Err(format!(
            "edgeAgent did not come back after `iotedge config apply` ({row})"
        ));
    }
    let checks = parse_check_json(&g.check.1).map_err(|e| format!("verification: {e}"))?;
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| EDGE_CA_CHECKS.contains(&c.id.as_str()))
        .filter(|c| c.result == "error" || c.result == "fatal")
        .map(|c| {
            format!(
                "{}: {}",
                c.id,
                c.details.first().map(String::as_str).unwrap_or(&c.result)
            )
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("`iotedge check` fails: {}", failed.join("; ")))
    }
}

/// What the rollback script did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollback {
    /// The previous pair was restored and `iotedge config apply` ran again with this exit code (and output).
    Restored {
        /// The re-apply's exit code.
        reapply_rc: i64,
        /// Its output.
        output: String,
    },
    /// The files on the device were already the previous pair: nothing to restore.
    NothingToRestore,
    /// The rollback itself failed.
    Failed(String),
}

/// Parse the rollback script's output (`exit_ok`, `stderr`: its own).
pub fn parse_rollback(out: &str, exit_ok: bool, stderr: &str) -> Rollback {
    let mut restored = None;
    let mut reapply: Option<(i64, String)> = None;
    for line in out.split_inclusive('\n') {
        if let Some(m) = line.strip_prefix(MARK) {
            let m = m.trim_end();
            let mut w = m.split_whitespace();
            match w.next().unwrap_or_default() {
                "restored" => restored = Some(w.next().is_some()),
                "reapply" => {
                    let rc = w.next().and_then(|x| x.parse().ok()).unwrap_or(-1);
                    reapply = Some((rc, String::new()));
                }
                "restorefailed" => {
                    return Rollback::Failed(format!(
                        "{} could not be restored from its .prev copy: {}",
                        m.split_once(' ').map(|x| x.1).unwrap_or_default(),
                        first_error(stderr)
                    ))
                }
                _ => {}
            }
        } else if let Some((_, body)) = reapply.as_mut() {
            body.push_str(line);
        }
    }
    match (restored, reapply) {
        (Some(true), Some((rc, output))) => Rollback::Restored {
            reapply_rc: rc,
            output,
        },
        (Some(false), _) if exit_ok => Rollback::NothingToRestore,
        _ => Rollback::Failed(format!(
            "the rollback did not finish: {}",
            first_error(stderr)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_by_days_left() {
        assert_eq!(renewal_due(31, 30), None);
        assert_eq!(
            renewal_due(30, 30).as_deref(),
            Some("30 days left <= renew_before 30")
        );
        assert_eq!(renewal_due(-5, 30).as_deref(), Some("expired 5 days ago"));
    }

    #[test]
    fn clock_skew_is_reported_not_renewed() {
        assert_eq!(clock_problem(Some(1000), 1000 + 3599, 3600), None);
        for read_earlier in [0, 2] {
            let p =
                clock_problem(Some(1000 + 3 * 365 * 86_400 - read_earlier), 1000, 3600).unwrap();
            assert!(
                p.starts_with("the device clock is 1095 days ahead of"),
                "{p}"
            );
        }
        let p = clock_problem(Some(0), 7200, 3600).unwrap();
        assert!(p.contains("7200 seconds behind"), "{p}");
        assert!(clock_problem(None, 0, 3600).unwrap().contains("date"));
    }

    #[test]
    fn common_name_fits_and_differs() {
        assert_eq!(edge_ca_common_name("edge-1"), "edge-1 Edge CA");
        let long = "x".repeat(100);
        assert_eq!(edge_ca_common_name(&long).chars().count(), 64);
    }

    #[test]
    fn edge_ca_paths_from_config() {
        let c = "hostname = \"h\"\n[edge_ca]\ncert = \"file:///var/aziot/certs/ca.pem\"\npk = \"file:///var/aziot/secrets/ca.key.pem\"\n";
        assert_eq!(
            edge_ca_paths(c).unwrap(),
            EdgeCaPaths::Files {
                cert: "/var/aziot/certs/ca.pem".into(),
                key: "/var/aziot/secrets/ca.key.pem".into()
            }
        );
        assert_eq!(
            edge_ca_paths("hostname = \"h\"\n").unwrap(),
            EdgeCaPaths::Quickstart
        );
        assert_eq!(
            edge_ca_paths("[edge_ca]\nauto_generated_edge_ca_expiry_days = 90\n").unwrap(),
            EdgeCaPaths::Quickstart
        );
        assert!(matches!(
            edge_ca_paths("[edge_ca]\ncert = \"file:///a\"\npk = \"pkcs11:object=ca\"\n").unwrap(),
            EdgeCaPaths::Other(_)
        ));
        assert!(edge_ca_paths("[edge_ca\n").is_err());
    }

    fn verify_part(list: &str, check: &str) -> String {
        format!("{MARK}verify\n{MARK}status\nSystem services:\n    aziot-edged             Running\n{MARK}list 0\n{list}{MARK}check 0\n{check}\n{MARK}docker\n")
    }

    const LIST_OK: &str = "NAME             STATUS           DESCRIPTION      Config\nedgeAgent        running          Up 2 seconds     mcr.microsoft.com/azureiotedge-agent:1.5.21\n";

    #[test]
    fn a_verified_renewal_holds() {
        let ok = r#"{"checks":{"certs-preloaded":{"result":{"result":"ok"}},"container-engine-dns":{"result":{"result":"error","details":["no dns"]}}}}"#;
        let out = format!(
            "{MARK}prev\n{MARK}installed\n{MARK}apply 0\nAzure IoT Edge has been configured successfully!\n{}",
            verify_part(LIST_OK, ok)
        );
        let r = parse_renew_output(&out);
        assert!(r.kept_prev && r.installed);
        assert_eq!(r.apply.as_ref().unwrap().0, 0);
        // An unrelated failing check does not undo a good renewal.
        assert_eq!(judge_renewal(&r, true, ""), Ok(()));
    }

    #[test]
    fn a_rejected_renewal_is_refused_with_the_reason() {
        let bad = r#"{"checks":{"certs-preloaded":{"result":{"result":"error","details":["(lab fault) rejected"]}}}}"#;
        let r = parse_renew_output(&format!(
            "{MARK}prev\n{MARK}installed\n{MARK}apply 0\nok\n{}",
            verify_part(LIST_OK, bad)
        ));
        assert_eq!(
            judge_renewal(&r, true, ""),
            Err("`iotedge check` fails: certs-preloaded: (lab fault) rejected".into())
        );
        let stopped = "NAME             STATUS           DESCRIPTION      Config\nedgeAgent        failed           Failed (1)       img\n";
        let r = parse_renew_output(&format!(
            "{MARK}prev\n{MARK}installed\n{MARK}apply 0\nok\n{}",
            verify_part(stopped, "{\"checks\":{}}")
        ));
        assert!(judge_renewal(&r, true, "").unwrap_err().starts_with(
            "edgeAgent did not come back after `iotedge config apply` (edgeAgent failed"
        ));
        let r = parse_renew_output(&format!(
            "{MARK}prev\n{MARK}installed\n{MARK}apply 1\nError: something broke\n"
        ));
        assert_eq!(
            judge_renewal(&r, true, ""),
            Err("`iotedge config apply` failed (exit 1): Error: something broke".into())
        );
        let r = parse_renew_output(&format!("{MARK}prev\n"));
        assert_eq!(
            judge_renewal(&r, false, "edgefleet: incomplete write\n"),
            Err("the new Edge CA could not be put in place: edgefleet: incomplete write".into())
        );
    }

    #[test]
    fn rollback_outcomes() {
        assert_eq!(
            parse_rollback(
                &format!("{MARK}restored /a /b\n{MARK}reapply 0\nconfigured\n"),
                true,
                ""
            ),
            Rollback::Restored {
                reapply_rc: 0,
                output: "configured\n".into()
            }
        );
        assert_eq!(
            parse_rollback(&format!("{MARK}restored\n"), true, ""),
            Rollback::NothingToRestore
        );
        assert!(matches!(
            parse_rollback(&format!("{MARK}restorefailed /a\n"), false, "cp: denied"),
            Rollback::Failed(m) if m.contains("/a could not be restored") && m.contains("cp: denied")
        ));
        assert!(matches!(parse_rollback("", false, ""), Rollback::Failed(_)));
    }
}
