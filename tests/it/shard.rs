//! Beyond one machine: `--shard K/N` runs of one playbook over a 400-device lab cover every device exactly once,
//! `edgefleet report merge` of their reports gives each device the outcome an unsharded run gives it, a lost
//! shard fails the merged run, and the shipped Kubernetes manifests and CI example are what the docs say (the
//! manifests checked against the Kubernetes API schemas by `kubernetes-validate --strict`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use edgefleet::lab::{FaultKind, Lab, LabBackend, LabConfig};
use serde_json::Value;

use crate::support::{self, repo};

const SHARDS: u32 = 4;

/// Fails edge-007 and edge-123; the lab makes edge-200 unreachable.
const PLAYBOOK: &str = r#"
- name: sharded
  hosts: all
  gather_facts: false
  tasks:
    - name: contact
      shell: echo {{ run_tag }} >> /var/tmp/shard-contacts
    - name: some devices fail
      fail:
        msg: "this device fails on purpose"
      when: inventory_hostname in ['edge-007', 'edge-123']
"#;

fn play(lab: &Lab, dir: &Path, tag: &str, extra: &[&str]) -> Command {
    let playbook = dir.join("sharded.yml");
    std::fs::write(&playbook, PLAYBOOK).unwrap();
    let mut c = support::edgefleet();
    c.current_dir(repo())
        .env("XDG_STATE_HOME", dir.join("state"))
        .arg("play")
        .arg(&playbook)
        .arg("-i")
        .arg(lab.inventory_path())
        .arg("--identity")
        .arg(lab.age_identity_path())
        .args(["--progress", "plain", "--forks", "100", "-e"])
        .arg(format!("run_tag={tag}"))
        .args(extra);
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn read(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Device name -> (status, error) of a report.
fn outcomes(r: &Value) -> BTreeMap<String, (String, String)> {
    r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_string(),
                (
                    d["status"].as_str().unwrap().to_string(),
                    d["error"].as_str().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect()
}

fn merge(args: &[&Path], inventory: Option<&Path>, out: &Path) -> Output {
    let mut c = support::edgefleet();
    c.current_dir(repo()).args(["report", "merge"]).args(args);
    if let Some(i) = inventory {
        c.arg("-i").arg(i);
    }
    c.arg("-o").arg(out).output().unwrap()
}

#[test]
fn four_shards_cover_a_400_device_fleet_once_and_merge_into_the_unsharded_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut cfg = LabConfig::new(d.join("lab"), 400);
    cfg.backend = LabBackend::Embedded;
    cfg.exe = Some(support::bin());
    let lab = Lab::up(&cfg).unwrap_or_else(|e| panic!("lab up failed: {e}"));
    lab.fault("edge-200", FaultKind::Unreachable, None).unwrap();

    // The unsharded run: the reference outcome per device.
    let all = play(&lab, d, "all", &["--report"])
        .arg(d.join("all.json"))
        .output()
        .unwrap();
    assert_eq!(all.status.code(), Some(3), "{}", text(&all));
    let reference = read(&d.join("all.json"));

    // Four controllers at once, one shard each.
    let children: Vec<_> = (0..SHARDS)
        .map(|k| {
            let report = d.join(format!("shard-{k}.json"));
            let log = std::fs::File::create(d.join(format!("shard-{k}.log"))).unwrap();
            let child = play(
                &lab,
                d,
                &format!("s{k}"),
                &["--shard", &format!("{k}/{SHARDS}")],
            )
            .arg("--report")
            .arg(&report)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
            (report, child)
        })
        .collect();
    let mut reports: Vec<PathBuf> = Vec::new();
    for (report, mut child) in children {
        child.wait().unwrap();
        reports.push(report);
    }

    // Every device in exactly one shard, contacted once by its shard's run (edge-200 by none: unreachable).
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut sizes = Vec::new();
    for (k, r) in reports.iter().enumerate() {
        let names = outcomes(&read(r));
        sizes.push(names.len());
        for name in names.keys() {
            *seen.entry(name.clone()).or_default() += 1;
            if name != "edge-200" {
                let contacts =
                    std::fs::read_to_string(lab.device_root(name).join("var/tmp/shard-contacts"))
                        .unwrap_or_default();
                assert_eq!(contacts, format!("all\ns{k}\n"), "{name}");
            }
        }
    }
    assert_eq!(seen.len(), 400, "shards cover {} devices", seen.len());
    assert!(seen.values().all(|&n| n == 1), "a device in two shards");
    assert!(
        sizes.iter().all(|&n| (60..=140).contains(&n)),
        "uneven shards: {sizes:?}"
    );

    // The merged report is the unsharded run's, device by device.
    let refs: Vec<&Path> = reports.iter().map(PathBuf::as_path).collect();
    let merged_path = d.join("fleet.json");
    let m = merge(&refs, Some(&lab.inventory_path()), &merged_path);
    assert_eq!(m.status.code(), Some(3), "{}", text(&m));
    let merged = read(&merged_path);
    assert_eq!(outcomes(&merged), outcomes(&reference));
    for key in [
        "devices",
        "ok",
        "changed",
        "failed",
        "unreachable",
        "tasks_failed",
    ] {
        assert_eq!(
            merged["totals"][key], reference["totals"][key],
            "totals.{key}"
        );
    }
    assert_eq!(merged["exit_code"], 3);
    assert_eq!(
        merged["merged_from"].as_array().unwrap().len(),
        SHARDS as usize
    );
    crate::report::assert_valid(
        &crate::report::load_schema("report.schema.json"),
        &merged,
        "the merged report",
    );

    // A shard whose controller never reported: its devices count as failed, named.
    let lost = merge(
        &refs[..3],
        Some(&lab.inventory_path()),
        &d.join("lost.json"),
    );
    assert_eq!(lost.status.code(), Some(3), "{}", text(&lost));
    let lost_doc = read(&d.join("lost.json"));
    let missing: BTreeSet<String> = outcomes(&read(&reports[3])).into_keys().collect();
    let failed_missing: BTreeSet<String> = outcomes(&lost_doc)
        .into_iter()
        .filter(|(_, (s, e))| s == "failed" && e.contains("no shard report covers this device"))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(failed_missing, missing);
    assert_eq!(lost_doc["totals"]["devices"], 400);

    // The same shard twice is refused, naming the device and both files.
    let twice = merge(&[refs[0], refs[0]], None, &d.join("twice.json"));
    assert_eq!(twice.status.code(), Some(5), "{}", text(&twice));
    assert!(text(&twice).contains("is in both"), "{}", text(&twice));
    assert!(!d.join("twice.json").exists());
}

#[test]
fn bad_shard_arguments_are_refused_before_any_device() {
    let dir = tempfile::tempdir().unwrap();
    for (arg, says) in [("4/4", "K must be less than N"), ("x", "write K/N")] {
        let o = support::edgefleet()
            .current_dir(repo())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .args(["ping", "-i", "inventory/example", "--shard", arg])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(5), "{arg}: {}", text(&o));
        assert!(text(&o).contains(says), "{arg}: {}", text(&o));
    }
    let o = support::edgefleet()
        .current_dir(repo())
        .args(["report", "merge"])
        .arg(dir.path().join("missing.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(
        text(&o).contains("missing.json: cannot read the report"),
        "{}",
        text(&o)
    );
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_kubernetes_manifests_are_valid_objects_and_run_every_shard() {
    crate::tools::require("kubernetes-validate");
    let k8s = repo().join("contrib/kubernetes");
    let files: Vec<PathBuf> = [
        "job.yaml",
        "merge-job.yaml",
        "reports-pvc.yaml",
        "inventory-configmap.yaml",
    ]
    .iter()
    .map(|f| k8s.join(f))
    .collect();
    let o = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.30.0"])
        .args(&files)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        text(&o).matches("passed").count(),
        files.len(),
        "{}",
        text(&o)
    );

    // The validator does reject what Kubernetes would (a field the Job API does not have).
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let job = std::fs::read_to_string(&files[0]).unwrap();
    std::fs::write(
        &bad,
        job.replace(
            "completionMode: Indexed",
            "completionMode: Indexed\n  shards: 4",
        ),
    )
    .unwrap();
    let o = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.30.0"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!o.status.success(), "an unknown field passed: {}", text(&o));

    // The Job runs N pods, each `--shard $JOB_COMPLETION_INDEX/$SHARDS` with SHARDS = N, reporting to the volume
    // the merge reads.
    let j = yaml(&files[0]);
    let n = j["spec"]["completions"].as_u64().unwrap();
    assert_eq!(j["spec"]["parallelism"].as_u64(), Some(n));
    assert_eq!(j["spec"]["completionMode"], "Indexed");
    let c = &j["spec"]["template"]["spec"]["containers"][0];
    let shards = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "SHARDS")
        .unwrap();
    assert_eq!(shards["value"].as_str(), Some(n.to_string().as_str()));
    let script = c["args"][0].as_str().unwrap();
    assert!(
        script.contains(r#"--shard "$JOB_COMPLETION_INDEX/$SHARDS""#),
        "{script}"
    );
    assert!(
        script.contains("/reports/shard-$JOB_COMPLETION_INDEX.json"),
        "{script}"
    );
    let m = yaml(&files[1]);
    let merge = m["spec"]["template"]["spec"]["containers"][0]["args"][0]
        .as_str()
        .unwrap();
    assert!(
        merge.contains("edgefleet report merge /reports/shard-*.json -i"),
        "{merge}"
    );
}

#[test]
fn the_ci_example_runs_each_shard_once_and_merges_them() {
    let ci = yaml(&repo().join("contrib/ci/github-actions-shards.yml"));
    let matrix: Vec<u64> = ci["jobs"]["shard"]["strategy"]["matrix"]["shard"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let n = matrix.len() as u64;
    assert_eq!(matrix, (0..n).collect::<Vec<_>>());
    let steps = ci["jobs"]["shard"]["steps"].as_array().unwrap();
    let run = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.contains("edgefleet play"))
        .unwrap();
    assert!(
        run.contains(&format!("--shard ${{{{ matrix.shard }}}}/{n}")),
        "{run}"
    );
    let merge_steps = ci["jobs"]["merge"]["steps"].as_array().unwrap();
    assert!(merge_steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .any(|r| r.starts_with("edgefleet report merge shard-*.json -i")));
    assert_eq!(ci["jobs"]["merge"]["if"], "always()");
}
