//! The IoT Edge 1.5 super config, variant by variant: for each file of the truth table
//! (`tests/fixtures/iotedge/config-variants.json`, every provisioning method x every Edge CA shape x mutations,
//! each with the verdict and message a 1.5 device gives), the lab's `iotedge config apply` and edgefleet's own
//! validator must reach the device's verdict, and the lab must print the device's message.
//!
//! The simulator is run in-process on all variants (its parse + checks + the files apply reads, on a fresh
//! device where `additional_info` and the imported master key do not exist), and a handful through a real lab
//! device's `iotedge config apply` over SSH, to prove the wiring. The validator is edgefleet's pre-contact
//! check (`parse_toml` + `from_value` + `validate`): it must agree with the device's verdict everywhere except
//! on keys the device silently ignores, which it refuses (listed in [`IGNORED_BY_DEVICE`], each with why).
//! Each test reports every mismatching variant in one failure message.

use std::collections::BTreeSet;

use edgefleet::iotedge::config as ours;
use edgefleet::lab::sim::iotedge::apply as sim;
use edgefleet::lab::{Lab, LabBackend, LabConfig, LabUser};
use serde::Deserialize;

use crate::support::fixture;

#[derive(Debug, Deserialize)]
struct Variant {
    name: String,
    why: String,
    toml: String,
    device: String,
    message: Option<String>,
}

fn variants() -> Vec<Variant> {
    let path = fixture("iotedge/config-variants.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Vec<Variant> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(v.len(), 376, "the truth table has 376 variants");
    let names: BTreeSet<&str> = v.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names.len(), v.len(), "variant names are unique");
    v
}

/// The simulator's verdict and message for a config file on a fresh device (the message is what the device
/// prints: `Command failed: ...`).
fn sim_outcome(text: &str) -> Result<(), String> {
    let parsed = sim::parse_and_check(text).map_err(|e| format!("Command failed: {e}"))?;
    // A fresh device: no imported master key, no additional_info file.
    let missing =
        |_: &str| -> std::io::Result<Vec<u8>> { Err(std::io::Error::from_raw_os_error(2)) };
    sim::read_inputs(&parsed.config, &missing).map_err(|e| format!("Command failed: {e}"))?;
    Ok(())
}

#[test]
fn the_simulator_agrees_with_the_device_in_verdict_and_message() {
    let all = variants();
    let mut wrong = Vec::new();
    for v in &all {
        let got = sim_outcome(&v.toml);
        let agrees = match (&got, v.device.as_str()) {
            (Ok(()), "ok") => true,
            (Err(m), "error") => Some(m) == v.message.as_ref(),
            _ => false,
        };
        if !agrees {
            wrong.push(format!(
                "- {} ({})\n    device: {} {:?}\n    lab:    {:?}",
                v.name, v.why, v.device, v.message, got
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "the lab's `iotedge config apply` disagrees with the device on {}/{} variants:\n{}",
        wrong.len(),
        all.len(),
        wrong.join("\n")
    );
}

/// How edgefleet's validator may differ from the device, variant by variant: it refuses what the device
/// silently ignores (the device says ok), and it cannot see the device's files before contact.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Differs {
    /// A key no 1.5 table has: the device ignores it, we refuse it as an unknown key (with did-you-mean).
    UnknownKey,
    /// A known key the device drops (it belongs to another provisioning source or `[edge_ca]` shape, or is
    /// half of a credential pair): we refuse it, saying the device would silently ignore it.
    Ignored,
    /// A malformed value inside a flattened `Option` the device swallows (the setting is silently `None`).
    Swallowed,
    /// The device refuses because a file the config names is absent on it; edgefleet cannot see the device's
    /// files before contact, so its validator accepts.
    DeviceFile,
}

const IGNORED_BY_DEVICE: &[(&str, Differs)] = &[
    ("top/unknown-top-level-key", Differs::UnknownKey),
    ("top/manifest_trust_bundle_cert-bare", Differs::UnknownKey),
    ("top/prefer_module_identity_cache", Differs::UnknownKey),
    ("top/dps_trust_bundle-ignored", Differs::UnknownKey),
    ("top/endpoints-table-ignored", Differs::UnknownKey),
    ("edge_ca/table-misspelled", Differs::UnknownKey),
    ("cert_issuance/misspelled-table", Differs::UnknownKey),
    ("agent/image_pull_policy-snake-ignored", Differs::UnknownKey),
    ("toml/valid-date-ignored", Differs::UnknownKey),
    ("toml/windows-path-in-basic-string", Differs::UnknownKey),
    (
        "provisioning/always_reprovision_on_startup-ignored",
        Differs::UnknownKey,
    ),
    ("provisioning/source-none-with-extras", Differs::Ignored),
    ("provisioning/cs-and-explicit", Differs::Ignored),
    ("provisioning/sas-value-and-uri", Differs::Ignored),
    ("provisioning/dps-with-connection_string", Differs::Ignored),
    ("edge_ca/preloaded-plus-method", Differs::Ignored),
    ("edge_ca/preloaded-plus-quickstart", Differs::Ignored),
    ("edge_ca/issued-est-username-only", Differs::Ignored),
    ("edge_ca/issued-est-bootstrap-pk-bare", Differs::Ignored),
    ("cert_issuance/est-auth-password-missing", Differs::Ignored),
    ("edge_ca/issued-common_name-integer", Differs::Swallowed),
    (
        "top/imported_master_encryption_key-missing-file",
        Differs::DeviceFile,
    ),
    ("top/additional_info-missing-file", Differs::DeviceFile),
];

/// edgefleet's pre-contact verdict on a config file: every problem, or none.
fn validator_outcome(text: &str) -> Result<(), String> {
    let v = ours::parse_toml(text)?;
    let c = ours::from_value(&v).map_err(|e| e.to_string())?;
    let problems: Vec<String> = ours::validate(&c).iter().map(|p| p.to_string()).collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[test]
fn the_validator_agrees_with_the_device_except_where_the_device_ignores_keys() {
    let all = variants();
    let names: BTreeSet<&str> = all.iter().map(|v| v.name.as_str()).collect();
    for (n, _) in IGNORED_BY_DEVICE {
        assert!(names.contains(n), "{n} is not a variant of the table");
    }
    let mut wrong = Vec::new();
    let mut agree = 0;
    for v in &all {
        let got = validator_outcome(&v.toml);
        let differs = IGNORED_BY_DEVICE
            .iter()
            .find(|(n, _)| *n == v.name)
            .map(|(_, d)| *d);
        let ok = match (differs, &got, v.device.as_str()) {
            (None, Ok(()), "ok") | (None, Err(_), "error") => {
                agree += 1;
                true
            }
            (Some(Differs::UnknownKey), Err(m), "ok") => m.contains("unknown key"),
            (Some(Differs::Ignored), Err(m), "ok") => m.contains("silently ignore"),
            (Some(Differs::Swallowed), Err(_), "ok") => true,
            (Some(Differs::DeviceFile), Ok(()), "error") => true,
            _ => false,
        };
        if !ok {
            wrong.push(format!(
                "- {} ({}; expected difference: {:?})\n    device:    {} {:?}\n    edgefleet: {:?}",
                v.name, v.why, differs, v.device, v.message, got
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "edgefleet's validator disagrees with the device on {} variants ({agree}/{} agree exactly):\n{}",
        wrong.len(),
        all.len(),
        wrong.join("\n")
    );
    assert_eq!(agree + IGNORED_BY_DEVICE.len(), all.len());
}

/// A handful of variants through a real lab device's `iotedge config apply` over SSH: the in-process oracle
/// above is the program the device runs.
#[test]
fn a_lab_device_over_ssh_prints_the_device_messages() {
    crate::tools::require("ssh");
    let picks = [
        "combo/dps-x509-est/edge_ca-issued-est",
        "edge_ca/issued-est-url-http",
        "toml/bare-word-value",
        "watchdog/max_retries--1",
        "edge_ca/empty-table",
        "top/trust_bundle_cert-bare",
        "provisioning/dps-plus-parent_hostname",
        "top/additional_info-missing-file",
    ];
    let all = variants();
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = LabConfig::new(tmp.path().join("lab"), 1);
    cfg.backend = LabBackend::Embedded;
    cfg.user = LabUser::Root;
    cfg.exe = Some(crate::support::bin());
    let lab = Lab::up(&cfg).unwrap_or_else(|e| panic!("lab up failed: {e}"));
    let mut wrong = Vec::new();
    for name in picks {
        let v = all
            .iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("{name}"));
        let path = lab.device_root("edge-001").join("etc/aziot/config.toml");
        std::fs::write(&path, &v.toml).unwrap();
        let o = crate::lab::ssh(&lab, "edge-001", "iotedge config apply");
        let out = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        let agrees = match v.device.as_str() {
            "ok" => {
                o.status.code() == Some(0)
                    && out.contains("Azure IoT Edge has been configured successfully!")
                    && (!v.why.contains("Warning: EST server URL")
                        || err.contains("Warning: EST server URL \"http://"))
            }
            _ => {
                o.status.code() == Some(1)
                    && Some(err.trim_end_matches('\n'))
                        == v.message.as_deref().map(|m| m.trim_end_matches('\n'))
            }
        };
        if !agrees {
            wrong.push(format!(
                "- {name}: exit {:?}\n    device: {:?}\n    lab stdout: {out:?}\n    lab stderr: {err:?}",
                o.status.code(),
                v.message
            ));
        }
    }
    lab.down().unwrap();
    assert!(
        wrong.is_empty(),
        "over SSH, the lab disagrees with the device:\n{}",
        wrong.join("\n")
    );
}
