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

use edgefleet::lab::sim::iotedge::apply as sim;
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
