//! The manifest rules on what lab devices really run (issue 16 item 2): every device runs the production
//! deployment of `tests/fixtures/verify/deployment.json` (which `edgefleet lint` passes), then devices get one
//! module fault each; `playbooks/verify.yml` reports, per device, exactly the rule rows the fault breaks (same
//! ids as the linter's), the healthy device passes every row, a device whose engine cannot list containers gets
//! one clear error row instead of the rule rows, the report's matrix lists the devices behind every row, and the
//! verify round trip is still one per device. `none` puts the deployment's containers back.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use edgefleet::lab::{FaultKind, Lab, LabConfig};
use serde_json::Value;

use crate::support::{self, fixture, repo};

/// The rule rows verify reports for running containers, and the row of the inspection itself.
const RUNNING_ROWS: &[&str] = &[
    "edgefleet-running-modules",
    "EF101",
    "EF103",
    "EF401",
    "EF402",
    "EF501",
    "EF503",
    "EF504",
    "EF505",
    "EF506",
];

fn out(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn play(lab: &Lab, playbook: &str, extra: &[&str]) -> Output {
    support::edgefleet()
        .current_dir(repo())
        .args(["play", playbook, "--progress", "plain", "-i"])
        .arg(lab.inventory_path())
        .arg("--identity")
        .arg(lab.age_identity_path())
        .args(extra)
        .output()
        .unwrap()
}

/// Deploy the production deployment on a device, as IoT Hub would: edgeAgent recreates edgeHub and creates the
/// custom module from it.
fn deploy(lab: &Lab, dev: &str, manifest: &str) {
    let cmd = format!(
        "cat > /var/lib/edgefleet-lab/deployment.json <<'EOF'\n{manifest}EOF\ndocker rm -f edgeHub >/dev/null && docker ps --format '{{{{.Names}}}}'"
    );
    let o = lab.run_on(dev, &cmd).unwrap();
    assert!(o.status.success(), "{dev}: {}", out(&o));
    let names = String::from_utf8_lossy(&o.stdout);
    for m in ["edgeAgent", "edgeHub", "SimulatedTemperatureSensor"] {
        assert!(
            names.lines().any(|l| l == m),
            "{dev}: {m} not running: {names}"
        );
    }
}

/// Per device: the running rows that are not ok, with their result.
fn running(j: &Value) -> BTreeMap<String, Vec<(String, String)>> {
    j["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let rows = d["verify"]["checks"]
                .as_array()
                .unwrap_or_else(|| panic!("no verify for {d}"))
                .iter()
                .filter(|c| RUNNING_ROWS.contains(&c["id"].as_str().unwrap_or("")))
                .filter(|c| c["result"] != "ok")
                .map(|c| {
                    (
                        c["id"].as_str().unwrap().to_string(),
                        c["result"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (d["name"].as_str().unwrap().to_string(), rows)
        })
        .collect()
}

fn row<'a>(j: &'a Value, dev: &str, id: &str) -> &'a Value {
    support::report_device(j, dev)["verify"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{dev}: no {id} row"))
}

fn verify(lab: &Lab, dir: &Path, extra: &[&str]) -> (Option<i32>, Value, String) {
    let report = dir.join("verify.json");
    let mut args = vec![
        "-e",
        r#"{"verify_fail_on_warnings": ["EF101", "EF401", "EF402", "EF501", "EF503", "EF504", "EF505", "EF506"], "verify_expect_edge_hub": true}"#,
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = play(lab, "playbooks/verify.yml", &args);
    let text = out(&o);
    let j: Value = serde_json::from_str(
        &std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("no report ({e}): {text}")),
    )
    .unwrap();
    (o.status.code(), j, text)
}

#[test]
fn verify_reports_the_manifest_rules_each_device_breaks_on_what_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = LabConfig::new(dir.path().join("lab"), 7);
    cfg.exe = Some(support::bin());
    let lab = Lab::up(&cfg).unwrap_or_else(|e| panic!("lab up failed: {e}"));
    let o = play(&lab, "playbooks/provision.yml", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));

    // The deployment the devices run passes the linter's rules: the same rules must pass on the devices.
    let manifest = fixture("verify/deployment.json");
    let lint = support::edgefleet()
        .arg("lint")
        .arg(&manifest)
        .output()
        .unwrap();
    assert_eq!(lint.status.code(), Some(0), "{}", out(&lint));
    let manifest = std::fs::read_to_string(&manifest).unwrap();
    for n in 1..=7 {
        deploy(&lab, &format!("edge-00{n}"), &manifest);
    }
    let faults = [
        ("edge-002", FaultKind::ModuleUnpinned),
        ("edge-003", FaultKind::ModuleNoLogLimits),
        ("edge-004", FaultKind::ModulePrivileged),
        ("edge-005", FaultKind::EdgehubNoStorageBind),
        ("edge-006", FaultKind::ContainerListFails),
        ("edge-007", FaultKind::ModuleNoMemoryLimit),
    ];
    for (d, k) in faults {
        lab.fault(d, k, None).unwrap();
    }

    let (code, j, text) = verify(&lab, dir.path(), &[]);
    let w = |id: &str| (id.to_string(), "warning".to_string());
    let want: BTreeMap<String, Vec<(String, String)>> = [
        ("edge-001", vec![]),
        ("edge-002", vec![w("EF101")]),
        ("edge-003", vec![w("EF503")]),
        ("edge-004", vec![w("EF504")]),
        ("edge-005", vec![w("EF402")]),
        (
            "edge-006",
            vec![("edgefleet-running-modules".into(), "error".into())],
        ),
        ("edge-007", vec![w("EF501")]),
    ]
    .into_iter()
    .map(|(d, v)| (d.to_string(), v))
    .collect();
    assert_eq!(running(&j), want, "{text}");
    // Every rule row is there on every device whose modules could be read (ok or not): one row per rule.
    for n in [1, 2, 3, 4, 5, 7] {
        let dev = format!("edge-00{n}");
        for id in RUNNING_ROWS {
            row(&j, &dev, id);
        }
    }
    // The faulty devices fail (their rows are listed in fail_on_warnings), the healthy one passes.
    let failed: Vec<&str> = j["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["verify"]["passed"] == false)
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        ["edge-002", "edge-003", "edge-004", "edge-005", "edge-006", "edge-007"],
        "{text}"
    );
    assert_eq!(code, Some(2), "{text}");
    // The recap's matrix names the devices behind each rule.
    for (id, dev) in [
        ("EF101", "edge-002"),
        ("EF503", "edge-003"),
        ("EF504", "edge-004"),
        ("EF402", "edge-005"),
        ("EF501", "edge-007"),
    ] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no {id} row in the recap:\n{text}"));
        assert!(line.ends_with(&format!("warning: {dev}")), "{line}");
    }
    // The details name the offending module and what is wrong.
    assert_eq!(
        row(&j, "edge-002", "EF101")["details"][0],
        "runtime-image-unpinned: edgeHub"
    );
    assert!(row(&j, "edge-002", "EF101")["details"][1]
        .as_str()
        .unwrap()
        .contains("`mcr.microsoft.com/azureiotedge-hub:1.5` uses a rolling tag"));
    assert_eq!(
        row(&j, "edge-003", "EF503")["details"][0],
        "log-limits-missing: SimulatedTemperatureSensor"
    );
    assert_eq!(
        row(&j, "edge-004", "EF504")["details"][0],
        "privileged: SimulatedTemperatureSensor"
    );
    assert!(row(&j, "edge-005", "EF402")["details"][1]
        .as_str()
        .unwrap()
        .contains("storageFolder `/tmp/edgeHub` is not on a host directory"));
    let e = row(&j, "edge-006", "edgefleet-running-modules")["details"][0]
        .as_str()
        .unwrap();
    assert!(
        e.starts_with("could not read the running modules with `docker inspect`: docker failed (exit code 1): Error response from daemon: failed to list containers"),
        "{e}"
    );
    assert_eq!(
        row(&j, "edge-001", "edgefleet-running-modules")["details"][0],
        "3 module containers running: SimulatedTemperatureSensor, edgeAgent, edgeHub"
    );
    // The fleet matrix: the devices behind every row.
    let matrix = |id: &str| -> Value {
        j["verify"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no {id} in the matrix"))
    };
    assert_eq!(matrix("EF101")["warning"], serde_json::json!(["edge-002"]));
    assert_eq!(matrix("EF101")["ok"].as_array().unwrap().len(), 5);
    assert_eq!(
        matrix("edgefleet-running-modules")["error"],
        serde_json::json!(["edge-006"])
    );
    // Still one round trip for the verify task per device (the drift check's gather is the other one).
    for d in j["devices"].as_array().unwrap() {
        assert_eq!(d["round_trips"], 2, "{d}");
    }

    // `none` has the changed containers recreated from the deployment: every device passes the rules again.
    for (d, _) in faults {
        lab.fault(d, FaultKind::None, None).unwrap();
    }
    let (code, j, text) = verify(&lab, dir.path(), &["--output", "jsonl"]);
    let clean: BTreeMap<String, Vec<(String, String)>> =
        (1..=7).map(|n| (format!("edge-00{n}"), vec![])).collect();
    assert_eq!(running(&j), clean, "{text}");
    assert_eq!(code, Some(0), "{text}");
    // The jsonl stream carries the same rows in each device's verify event.
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "verify")
        .collect();
    assert_eq!(events.len(), 7, "{text}");
    for e in &events {
        let ids: Vec<&str> = e["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["result"] == "ok")
            .filter_map(|c| c["id"].as_str())
            .filter(|id| RUNNING_ROWS.contains(id))
            .collect();
        assert_eq!(ids, RUNNING_ROWS, "{e}");
    }
}
