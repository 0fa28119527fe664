//! `playbooks/maintenance.yml` against lab devices in a mix of states: the run finds every state (expiring and
//! expired Edge CAs, a clock years off, dangling images, unused volumes, a nearly full Docker root, an old
//! runtime) and nothing on the healthy devices, in one round trip per device; check mode finds the same and
//! changes nothing; a clean-up frees exactly the unused images' and volumes' bytes and never a volume a stopped
//! container mounts or edgeHub's store, and a second one changes nothing; a device whose container list
//! cannot be read prunes nothing; a threshold that is not a number is refused before any device is contacted
//! (exit 4), naming the variable.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use edgefleet::lab::{FaultKind, Lab, LabConfig};
use serde_json::Value;

use crate::support::{self, repo};

fn lab(dir: &Path, n: usize) -> Lab {
    let mut cfg = LabConfig::new(dir.join("lab"), n);
    cfg.exe = Some(support::bin());
    Lab::up(&cfg).unwrap_or_else(|e| panic!("lab up failed: {e}"))
}

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

/// The lab's default deployment keeps edgeHub's store in the container (a real `iotedge check` warning on
/// every lab device): waived, as an operator would for such a fleet. Versions pinned as an inventory would.
/// Lab devices share this machine's disk, whose fullness the test does not control: only a file system at
/// least 99.x% full (100% as `df` rounds) counts, as the `low-disk` state's is.
fn vars(dir: &Path) -> String {
    let p = dir.join("maintenance-vars.yml");
    std::fs::write(
        &p,
        "maintenance_check_waivers: {edge-hub-storage-mounted-from-host: \"lab: the default deployment keeps edgeHub's store in the container\"}\nmaintenance_target: {aziot_edge: \"1.5.x\", moby_engine: \"24.0\", edge_agent: \"1.5\"}\nmaintenance_disk_warn_percent: 100\nmaintenance_disk_critical_percent: 100\nmaintenance_inode_warn_percent: 100\nmaintenance_inode_critical_percent: 100\n",
    )
    .unwrap();
    format!("@{}", p.display())
}

fn maintenance(lab: &Lab, vars: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    let mut args = vec!["--output", "json", "-e", vars];
    args.extend_from_slice(extra);
    let o = play(lab, "playbooks/maintenance.yml", &args);
    let j: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", out(&o)));
    (o.status.code(), j, out(&o))
}

/// Per device: the ids of its findings.
fn ids(j: &Value) -> BTreeMap<String, Vec<String>> {
    j["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let ids = d["findings"]
                .as_array()
                .unwrap_or_else(|| panic!("no findings for {d}"))
                .iter()
                .map(|f| f["id"].as_str().unwrap().to_string())
                .collect();
            (d["name"].as_str().unwrap().to_string(), ids)
        })
        .collect()
}

fn device<'a>(j: &'a Value, name: &str) -> &'a Value {
    crate::support::report_device(j, name)
}

fn finding<'a>(j: &'a Value, dev: &str, id: &str) -> &'a Value {
    device(j, dev)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("{dev}: no {id} in {}", device(j, dev)["findings"]))
}

fn volumes(lab: &Lab, dev: &str) -> Vec<String> {
    let o = lab.run_on(dev, "docker volume ls -q").unwrap();
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_mixed_fleet_is_found_exactly_then_cleaned_up_once() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(dir.path(), 9);
    let o = play(&lab, "playbooks/provision.yml", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let states = [
        ("edge-002", FaultKind::EdgeCaExpiring),
        ("edge-003", FaultKind::EdgeCaExpired),
        ("edge-004", FaultKind::ClockSkew),
        ("edge-005", FaultKind::DanglingImages),
        ("edge-006", FaultKind::UnusedVolumes),
        ("edge-007", FaultKind::LowDisk),
        ("edge-008", FaultKind::OldRuntime),
    ];
    for (d, k) in states {
        lab.fault(d, k, None).unwrap();
    }
    let vars = vars(dir.path());
    let want: BTreeMap<String, Vec<String>> = [
        ("edge-001", vec![]),
        ("edge-002", vec!["cert.edge_ca.expiring"]),
        // The device's own `iotedge check` sees the expired Edge CA too.
        (
            "edge-003",
            vec!["cert.edge_ca.expired", "check.certs-preloaded"],
        ),
        ("edge-004", vec!["clock.skew"]),
        ("edge-005", vec!["image.dangling"]),
        ("edge-006", vec!["volume.unused"]),
        ("edge-007", vec!["disk.docker_root.low"]),
        (
            "edge-008",
            // ... and the device's own `iotedge check` says the old IoT Edge is not the latest.
            vec![
                "version.aziot_edge.mismatch",
                "version.moby_engine.mismatch",
                "check.aziot-edge-version",
            ],
        ),
        ("edge-009", vec![]),
    ]
    .into_iter()
    .map(|(d, v)| (d.to_string(), v.into_iter().map(String::from).collect()))
    .collect();

    // Read-only run: every state found, nothing else; critical ones fail their device (exit 2).
    let (code, j, text) = maintenance(&lab, &vars, &[]);
    assert_eq!(ids(&j), want, "{text}");
    assert_eq!(code, Some(2), "{text}");
    crate::report::assert_valid(
        &crate::report::load_schema("report.schema.json"),
        &j,
        "the report",
    );
    let failed: Vec<&str> = j["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "failed")
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["edge-003", "edge-004", "edge-007"], "{text}");
    assert_eq!(
        finding(&j, "edge-002", "cert.edge_ca.expiring")["days_left"],
        10
    );
    assert_eq!(
        finding(&j, "edge-002", "cert.edge_ca.expiring")["severity"],
        "warning"
    );
    assert_eq!(
        finding(&j, "edge-003", "cert.edge_ca.expired")["days_left"],
        -5
    );
    assert_eq!(
        finding(&j, "edge-005", "image.dangling")["bytes"],
        52_428_800u64 + 31_457_280
    );
    let unused = finding(&j, "edge-006", "volume.unused")["bytes"]
        .as_u64()
        .unwrap();
    assert!(
        (4 << 20..(4 << 20) + (64 << 10)).contains(&unused),
        "{unused}"
    );
    let t = &j["findings"];
    assert_eq!(
        (t["devices"].as_u64(), t["devices_with_findings"].as_u64()),
        (Some(9), Some(7)),
        "{t}"
    );
    assert_eq!(
        (
            t["critical"].as_u64(),
            t["warning"].as_u64(),
            t["info"].as_u64()
        ),
        (Some(4), Some(6), Some(0)),
        "{t}"
    );
    for d in j["devices"].as_array().unwrap() {
        assert_eq!(d["round_trips"], 1, "one gather per device: {d}");
        assert_eq!(d["tasks"]["changed"], 0);
    }

    // Check mode: the same findings, nothing changes.
    let (code_c, jc, text_c) = maintenance(&lab, &vars, &["--check"]);
    assert_eq!((code_c, ids(&jc)), (code, want.clone()), "{text_c}");

    // Clean-up in check mode: says what it would free, removes nothing.
    let (_, jc, text_c) = maintenance(
        &lab,
        &vars,
        &[
            "--check",
            "-e",
            "maintenance_prune=true",
            "--limit",
            "edge-005,edge-006",
        ],
    );
    assert_eq!(
        finding(&jc, "edge-006", "prune.would_free")["bytes"].as_u64(),
        Some(unused),
        "{text_c}"
    );
    assert_eq!(volumes(&lab, "edge-006").len(), 4);

    // Clean-up: frees exactly the dangling images and unused volumes, keeps the used volume and edgeHub's store.
    let (code_p, jp, text_p) = maintenance(
        &lab,
        &vars,
        &[
            "-e",
            "maintenance_prune=true",
            "--limit",
            "edge-001,edge-005,edge-006",
        ],
    );
    assert_eq!(code_p, Some(0), "{text_p}");
    assert_eq!(
        finding(&jp, "edge-005", "prune.freed")["bytes"],
        52_428_800u64 + 31_457_280
    );
    assert_eq!(
        finding(&jp, "edge-006", "prune.freed")["bytes"].as_u64(),
        Some(unused)
    );
    assert_eq!(ids(&jp)["edge-005"], ["prune.freed"]);
    assert_eq!(ids(&jp)["edge-006"], ["prune.freed"]);
    assert_eq!(ids(&jp)["edge-001"], Vec::<String>::new());
    assert_eq!(
        device(&jp, "edge-006")["round_trips"],
        2,
        "gather + one clean-up"
    );
    assert_eq!(
        device(&jp, "edge-001")["round_trips"],
        1,
        "nothing to remove: no second round trip"
    );
    let mut left = volumes(&lab, "edge-006");
    left.sort();
    assert_eq!(left, ["edgehub", "lab-data"]);
    let data = lab
        .run_on("edge-006", "ls /var/lib/docker/volumes")
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&data.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["edgehub", "lab-data"]
    );
    let imgs = lab
        .run_on("edge-005", "docker images -q --filter dangling=true")
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&imgs.stdout).trim(), "");

    // A second clean-up finds nothing to do.
    let (code_2, j2, text_2) = maintenance(
        &lab,
        &vars,
        &[
            "-e",
            "maintenance_prune=true",
            "--limit",
            "edge-005,edge-006",
        ],
    );
    assert_eq!(code_2, Some(0), "{text_2}");
    assert_eq!(ids(&j2)["edge-005"], Vec::<String>::new(), "{text_2}");
    assert_eq!(ids(&j2)["edge-006"], Vec::<String>::new(), "{text_2}");
    assert_eq!(j2["totals"]["tasks_changed"], 0);
    assert_eq!(j2["totals"]["round_trips"], 2);
}

#[test]
fn an_unreadable_container_list_prunes_nothing_and_bad_thresholds_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(dir.path(), 2);
    let o = play(&lab, "playbooks/provision.yml", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    lab.fault("edge-001", FaultKind::UnusedVolumes, None)
        .unwrap();
    lab.fault("edge-001", FaultKind::DanglingImages, None)
        .unwrap();
    lab.fault("edge-001", FaultKind::ContainerListFails, None)
        .unwrap();
    let vars = vars(dir.path());
    let (code, j, text) = maintenance(&lab, &vars, &["-e", "maintenance_prune=true"]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        ids(&j)["edge-001"],
        ["containers.unreadable", "prune.skipped"],
        "{text}"
    );
    assert!(finding(&j, "edge-001", "containers.unreadable")["message"]
        .as_str()
        .unwrap()
        .contains("failed to list containers"));
    assert_eq!(ids(&j)["edge-002"], Vec::<String>::new());
    assert_eq!(device(&j, "edge-001")["round_trips"], 1);
    assert_eq!(volumes(&lab, "edge-001").len(), 4, "nothing may be removed");
    let imgs = lab
        .run_on("edge-001", "docker images -q --filter dangling=true")
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&imgs.stdout).lines().count(), 2);

    // jsonl: one `findings` event per device (an empty list on a clean device), each valid by the schema.
    let o = play(
        &lab,
        "playbooks/maintenance.yml",
        &["-e", &vars, "--output", "jsonl"],
    );
    let schema = crate::report::load_schema("events.schema.json");
    let mut found = BTreeMap::new();
    for (i, line) in String::from_utf8_lossy(&o.stdout).lines().enumerate() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {i}: {e}: {line}"));
        crate::report::assert_valid(&schema, &v, &format!("jsonl line {}", i + 1));
        if v["event"] == "findings" {
            let n = v["findings"].as_array().unwrap().len();
            found.insert(v["host"].as_str().unwrap().to_string(), n);
        }
    }
    assert_eq!(
        found,
        BTreeMap::from([("edge-001".to_string(), 1), ("edge-002".to_string(), 0)]),
        "{}",
        out(&o)
    );

    // A threshold that is not a number: refused before any device is contacted (exit 4), naming the role's
    // variable, the task's file and line, and the devices.
    for (var, shown) in [
        (
            "maintenance_warn_days=soon",
            "warn_days must be a whole number of days, got `soon`",
        ),
        (
            "maintenance_disk_warn_percent=150",
            "disk_warn_percent must be a whole number from 0 to 100, got `150`",
        ),
    ] {
        let o = play(&lab, "playbooks/maintenance.yml", &["-e", &vars, "-e", var]);
        let text = out(&o);
        assert_eq!(o.status.code(), Some(4), "{text}");
        let name = var.split('=').next().unwrap();
        assert!(
            text.contains(shown) && text.contains(&format!("the variable {name}")),
            "{text}"
        );
        assert!(
            text.contains("roles/maintenance/tasks/main.yml:1:3: edge-001, edge-002"),
            "{text}"
        );
        assert!(text.contains("nothing was contacted"), "{text}");
    }
}
