//! Executor behaviour that is not about one feature of the language: failure accounting (a device fails unless it
//! finished ok), isolation of one device's failure or panic from the others.

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
    doc["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no device {name} in {doc}"))
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
