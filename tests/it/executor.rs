//! Executor behaviour that is not about one feature of the language: failure accounting (a device fails unless it
//! finished ok), isolation of one device's failure or panic from the others, warnings reaching every output, and
//! what ties hosts together (a lockstep batch with fewer forks than hosts, which host a `run_once` runs on).

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::support::edgefleet;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Three local devices, each writing `<name>.done` into `dir`.
fn three_local_devices(dir: &Path) -> (String, String) {
    let inv = dir.join("inv.yml");
    std::fs::write(
        &inv,
        format!(
            "all:\n  vars:\n    out: {}\n  hosts:\n    local1:\n      ansible_connection: local\n    local2:\n      ansible_connection: local\n    local3:\n      ansible_connection: local\n",
            dir.display()
        ),
    )
    .unwrap();
    let pb = dir.join("play.yml");
    std::fs::write(
        &pb,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - copy: {content: done, dest: \"{{ out }}/{{ inventory_hostname }}.done\"}\n",
    )
    .unwrap();
    (pb.display().to_string(), inv.display().to_string())
}

fn play(dir: &Path, panic_host: Option<&str>) -> (Output, Value) {
    let (pb, inv) = three_local_devices(dir);
    let report = dir.join("report.json");
    let mut c = edgefleet();
    c.args(["play", &pb, "-i", &inv, "--report"]).arg(&report);
    match panic_host {
        Some(h) => c.env("EDGEFLEET_TEST_PANIC_HOST", h),
        None => c.env_remove("EDGEFLEET_TEST_PANIC_HOST"),
    };
    let o = c.output().expect("run edgefleet");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap())
        .unwrap_or_else(|e| panic!("report: {e}\n{}", text(&o.stderr)));
    (o, doc)
}

fn device<'a>(doc: &'a Value, name: &str) -> &'a Value {
    crate::support::report_device(doc, name)
}

#[test]
fn a_panic_in_one_device_fails_that_device_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (o, doc) = play(dir.path(), Some("local2"));
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "{out}\n{}", text(&o.stderr));
    // The others finished, and ok.
    for h in ["local1", "local3"] {
        assert!(dir.path().join(format!("{h}.done")).exists(), "{h}: {out}");
        assert_eq!(device(&doc, h)["status"], "changed", "{h}: {doc}");
    }
    // The panicking one is failed, with an error that says it is a bug, never ok.
    assert!(!dir.path().join("local2.done").exists());
    let d = device(&doc, "local2");
    assert_eq!(d["status"], "failed", "{doc}");
    let err = d["error"].as_str().unwrap_or_default();
    assert!(
        err.contains(
            "internal error on this device: injected by EDGEFLEET_TEST_PANIC_HOST for local2; this is a bug"
        ),
        "{err}"
    );
    assert_eq!(doc["exit_code"], 2);
    assert!(out.contains("local2"), "{out}");
}

#[test]
fn without_the_hook_every_device_is_ok() {
    // The control for the test above: the same play, no injected panic, exit 0.
    let dir = tempfile::tempdir().unwrap();
    let (o, doc) = play(dir.path(), None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    for h in ["local1", "local2", "local3"] {
        assert_eq!(device(&doc, h)["status"], "changed", "{h}: {doc}");
    }
}

/// Run `play` on two local devices with `--report` and the given output; returns (output, report document).
fn play_with(dir: &Path, playbook: &str, args: &[&str]) -> (Output, Value) {
    let inv = dir.join("inv.yml");
    std::fs::write(
        &inv,
        "all:\n  hosts:\n    local1:\n      ansible_connection: local\n    local2:\n      ansible_connection: local\n",
    )
    .unwrap();
    let pb = dir.join("play.yml");
    std::fs::write(&pb, playbook).unwrap();
    let report = dir.join("report.json");
    let o = edgefleet()
        .arg("play")
        .arg(&pb)
        .arg("-i")
        .arg(&inv)
        .arg("--report")
        .arg(&report)
        .args(args)
        .output()
        .expect("run edgefleet");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap())
        .unwrap_or_else(|e| panic!("report: {e}\n{}", text(&o.stderr)));
    (o, doc)
}

/// The report's warnings that contain `needle`: (message, hosts).
fn report_warnings(doc: &Value, needle: &str) -> Vec<(String, Vec<String>)> {
    doc["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no warnings in {doc}"))
        .iter()
        .filter(|w| w["message"].as_str().unwrap_or_default().contains(needle))
        .map(|w| {
            (
                w["message"].as_str().unwrap_or_default().to_string(),
                w["hosts"]
                    .as_array()
                    .map(|h| {
                        h.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        })
        .collect()
}

const LOOKUP_WARN: &str = "- hosts: local1\n  gather_facts: false\n  tasks:\n    - name: read what is not there\n      debug:\n        msg: \"[{{ lookup('file', 'surely-missing.txt', errors='warn') }}]\"\n";

#[test]
fn a_lookup_warning_reaches_the_text_output_and_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let (o, doc) = play_with(dir.path(), LOOKUP_WARN, &[]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", text(&o.stderr));
    assert!(
        out.lines()
            .any(|l| l.contains("[WARNING] local1: lookup('file') failed")
                && l.contains("surely-missing.txt")),
        "{out}"
    );
    let w = report_warnings(&doc, "surely-missing.txt");
    assert_eq!(w.len(), 1, "{doc}");
    assert_eq!(w[0].1, vec!["local1".to_string()], "{doc}");
    let d = device(&doc, "local1");
    assert!(
        d["warnings"].to_string().contains("surely-missing.txt"),
        "{d}"
    );
}

#[test]
fn a_lookup_warning_reaches_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let (o, doc) = play_with(dir.path(), LOOKUP_WARN, &["--output", "jsonl"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let warnings: Vec<Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a jsonl line"))
        .filter(|v| v["event"] == "warning")
        .collect();
    assert!(
        warnings.iter().any(|w| w["host"] == "local1"
            && w["message"]
                .as_str()
                .unwrap_or_default()
                .contains("surely-missing.txt")),
        "{warnings:?}"
    );
    assert_eq!(report_warnings(&doc, "surely-missing.txt").len(), 1);
}

#[test]
fn a_limit_warning_reaches_the_report() {
    // Found while loading, before any reporter exists: it must still reach every output.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let (o, doc) = play_with(
        dir.path(),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - ping:\n",
        &["--limit", "local1,nomatch", "--log", log.to_str().unwrap()],
    );
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", text(&o.stderr));
    let w = report_warnings(&doc, "nomatch");
    assert_eq!(w.len(), 1, "{doc}");
    assert!(w[0].1.is_empty(), "about the run, not a device: {doc}");
    assert!(
        out.contains("[WARNING]") && out.contains("nomatch"),
        "{out}"
    );
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("nomatch"), "{log}");
    // Only local1 ran.
    assert!(
        doc["devices"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["name"] == "local1"),
        "{doc}"
    );
}

/// Three local devices (`local1`..`local3`, `out` = `dir`) running `playbook` with `args`.
fn play_three(dir: &Path, playbook: &str, args: &[&str]) -> Output {
    let (_, inv) = three_local_devices(dir);
    let pb = dir.join("three.yml");
    std::fs::write(&pb, playbook).unwrap();
    edgefleet()
        .arg("play")
        .arg(&pb)
        .args(["-i", &inv])
        .args(args)
        .output()
        .expect("run edgefleet")
}

#[test]
fn any_errors_fatal_stops_every_host_before_its_next_task_even_with_fewer_forks_than_hosts() {
    // One fork for three hosts: the batch still moves task by task (no host runs ahead, none waits forever).
    let dir = tempfile::tempdir().unwrap();
    let o = play_three(
        dir.path(),
        "- hosts: all\n  gather_facts: false\n  any_errors_fatal: true\n  tasks:\n    - copy: {content: one, dest: \"{{ out }}/{{ inventory_hostname }}.one\"}\n    - fail: {msg: broken}\n      when: inventory_hostname == 'local2'\n    - copy: {content: three, dest: \"{{ out }}/{{ inventory_hostname }}.three\"}\n",
        &["--forks", "1"],
    );
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "{out}\n{}", text(&o.stderr));
    for h in ["local1", "local2", "local3"] {
        assert!(dir.path().join(format!("{h}.one")).exists(), "{h}: {out}");
        assert!(
            !dir.path().join(format!("{h}.three")).exists(),
            "{h}: {out}"
        );
    }
    assert!(out.contains("any_errors_fatal"), "{out}");
}

#[test]
fn run_once_falls_to_the_next_host_when_the_first_has_failed() {
    let dir = tempfile::tempdir().unwrap();
    let o = play_three(
        dir.path(),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - fail: {msg: first one down}\n      when: inventory_hostname == 'local1'\n    - shell: echo {{ inventory_hostname }} > {{ out }}/{{ inventory_hostname }}.once; echo {{ inventory_hostname }}\n      run_once: true\n      register: once\n    - copy: {content: \"{{ once.stdout }}\", dest: \"{{ out }}/{{ inventory_hostname }}.seen\"}\n",
        &[],
    );
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "{out}\n{}", text(&o.stderr));
    let once: Vec<String> = ["local1", "local2", "local3"]
        .iter()
        .filter(|h| dir.path().join(format!("{h}.once")).exists())
        .map(|h| h.to_string())
        .collect();
    assert_eq!(once, vec!["local2".to_string()], "{out}");
    for h in ["local2", "local3"] {
        let seen = std::fs::read_to_string(dir.path().join(format!("{h}.seen"))).unwrap();
        assert_eq!(seen, "local2", "{h}: {out}");
    }
    assert!(!dir.path().join("local1.seen").exists());
}
