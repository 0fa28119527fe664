//! Health-gated waves (issue 17): a configuration change rolled out to a lab fleet in waves `[1, "10%", "100%"]`
//! with a `rollout:` gate. When the second wave's devices start crash-looping after the change (the lab's
//! `crashloop-after-change` fault: edgeHub's restart count rises), the rollout stops after that wave: exactly the
//! first 1 + 10% devices applied the change (the devices' own counters and config files say so), the rest were
//! never contacted, and the report names the unhealthy devices and why. A healthy rollout passes every gate, and
//! a rerun that changes nothing skips them. `--confirm` is refused without a terminal, and on a terminal (a pty)
//! it asks before each wave and stops the rollout on "no".

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

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

fn play(lab: &Lab, playbook: &str, extra: &[&str]) -> std::process::Command {
    let mut c = support::edgefleet();
    c.current_dir(repo())
        .env("EDGEFLEET_ROLES_PATH", repo().join("roles"))
        .args(["play", playbook, "--progress", "plain", "-i"])
        .arg(lab.inventory_path())
        .arg("--identity")
        .arg(lab.age_identity_path())
        .args(extra);
    c
}

const ROLLOUT: &str = "tests/fixtures/waves/rollout.yml";
/// The change rolled out: a new upstream protocol in every device's config.toml (so every device applies).
const CHANGE: &str = "iotedge_upstream_protocol=AmqpWs";

/// Run the rollout with the change: its exit code, the JSON report (checked against the report's schema), the
/// kinds of its jsonl events (each checked against the events' schema) and its output.
fn rollout_json(lab: &Lab, extra: &[&str]) -> (Option<i32>, Value, Vec<String>, String) {
    let report = lab.dir().join("rollout-report.json");
    let o = play(
        lab,
        ROLLOUT,
        &["--output", "jsonl", "-e", CHANGE, "--report"],
    )
    .arg(&report)
    .args(extra)
    .output()
    .unwrap();
    let text = out(&o);
    let events = crate::report::load_schema("events.schema.json");
    let mut kinds = vec![];
    for (i, line) in String::from_utf8_lossy(&o.stdout).lines().enumerate() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {text}", i + 1));
        crate::report::assert_valid(&events, &v, &format!("jsonl line {}", i + 1));
        kinds.push(v["event"].as_str().unwrap_or_default().to_string());
    }
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap())
        .unwrap_or_else(|e| panic!("the report is not JSON ({e}): {text}"));
    crate::report::assert_valid(
        &crate::report::load_schema("report.schema.json"),
        &j,
        "the report",
    );
    (o.status.code(), j, kinds, text)
}

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("edge-{i:03}")).collect()
}

/// Each device's `iotedge config apply` count.
fn applies(lab: &Lab, devices: &[String]) -> BTreeMap<String, u64> {
    devices
        .iter()
        .map(|d| {
            let c = lab.counters(d).unwrap();
            (d.clone(), c.get("config_apply").copied().unwrap_or(0))
        })
        .collect()
}

/// Does the device's config.toml carry the change?
fn changed_on_device(lab: &Lab, dev: &str) -> bool {
    let cfg = std::fs::read_to_string(lab.device_root(dev).join("etc/aziot/config.toml")).unwrap();
    cfg.contains("AmqpWs")
}

fn provision(lab: &Lab) {
    let o = play(lab, "playbooks/provision.yml", &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
}

#[test]
fn a_wave_that_starts_crash_looping_stops_the_rollout_and_leaves_the_rest_untouched() {
    // The issue's fleet: 100 devices in waves of 1, int(10% of 100) = 10, then the other 89.
    let n = 100;
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(dir.path(), n);
    provision(&lab);
    let devices = names(n);
    let before = applies(&lab, &devices);
    // The second wave's devices crash-loop once the change is applied; so would two devices of the third wave,
    // which must never get that far.
    let second: Vec<String> = devices[1..11].to_vec();
    for d in second
        .iter()
        .chain(&[devices[11].clone(), devices[99].clone()])
    {
        lab.fault(d, FaultKind::CrashloopAfterChange, None).unwrap();
    }
    let (code, j, kinds, text) = rollout_json(&lab, &[]);
    assert_eq!(code, Some(2), "{text}");
    assert_eq!(
        (
            count(&kinds, "wave_soaking"),
            count(&kinds, "wave_gate"),
            count(&kinds, "rollout_stopped")
        ),
        (2, 2, 1),
        "{kinds:?}"
    );

    // Device-side proof: the first 1 + 10 devices applied the change, the other 89 were never changed.
    let after = applies(&lab, &devices);
    for (i, d) in devices.iter().enumerate() {
        let applied = after[d] - before[d];
        if i < 11 {
            assert_eq!(
                applied, 1,
                "{d} should have applied the change once: {text}"
            );
            assert!(changed_on_device(&lab, d), "{d}");
        } else {
            assert_eq!(
                applied, 0,
                "{d} is in a later wave and must be untouched: {text}"
            );
            assert!(!changed_on_device(&lab, d), "{d}");
        }
    }

    // The report: wave 1 passed, wave 2 failed its gate naming both devices and why; the rollout stopped there.
    let waves = j["rollout"]["waves"]
        .as_array()
        .unwrap_or_else(|| panic!("{j:#}"));
    assert_eq!(waves.len(), 2, "{j:#}");
    assert_eq!(waves[0]["gate"], "passed", "{:#}", waves[0]);
    assert_eq!(waves[0]["hosts"], serde_json::json!(["edge-001"]));
    assert_eq!(waves[0]["healthy"], 1);
    assert!(waves[0]["soak_ms"].as_u64().unwrap() >= 2000);
    assert_eq!(waves[1]["gate"], "failed", "{:#}", waves[1]);
    assert_eq!(waves[1]["index"], 2);
    assert_eq!(waves[1]["waves"], 3);
    let unhealthy: Vec<&str> = waves[1]["unhealthy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["host"].as_str().unwrap())
        .collect();
    assert_eq!(unhealthy, second, "{:#}", waves[1]);
    for u in waves[1]["unhealthy"].as_array().unwrap() {
        let why = u["reasons"].to_string();
        assert!(
            why.contains("module edgeHub restarted"),
            "{}: {why}",
            u["host"]
        );
    }
    let stopped = &j["rollout"]["stopped"];
    assert_eq!(stopped["wave"], 2, "{j:#}");
    assert_eq!(
        stopped["untouched"].as_array().unwrap().len(),
        89,
        "{stopped:#}"
    );
    assert_eq!(stopped["untouched"][0], "edge-012");
    assert!(j["aborted"]
        .as_str()
        .unwrap()
        .contains("wave 2/3 failed its health gate"));
    for d in &second {
        let dev = support::report_device(&j, d);
        assert_eq!(dev["status"], "failed", "{dev:#}");
        assert!(dev["error"]
            .as_str()
            .unwrap_or_default()
            .contains("unhealthy after wave 2/3"));
    }
    assert_eq!(support::report_device(&j, "edge-001")["status"], "changed");
    // The untouched devices were never connected to.
    let d = support::report_device(&j, "edge-100");
    assert_eq!(
        (d["round_trips"].as_u64(), d["connects"].as_u64()),
        (Some(0), Some(0)),
        "{d:#}"
    );
}

#[test]
fn a_healthy_rollout_passes_every_gate_and_a_rerun_skips_them() {
    let n = 12;
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(dir.path(), n);
    provision(&lab);
    let devices = names(n);
    let before = applies(&lab, &devices);
    // Check mode changes nothing, so there is nothing to gate.
    let (code, j, kinds, text) = rollout_json(&lab, &["--check"]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(count(&kinds, "wave_soaking"), 0, "{kinds:?}");
    for w in j["rollout"]["waves"].as_array().unwrap() {
        assert_eq!(w["gate"], "skipped", "{w:#}");
        assert_eq!(w["skipped_because"], "check mode: nothing was changed");
    }
    assert_eq!(applies(&lab, &devices), before);

    let (code, j, kinds, text) = rollout_json(&lab, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        (count(&kinds, "wave_gate"), count(&kinds, "rollout_stopped")),
        (3, 0)
    );
    let waves = j["rollout"]["waves"].as_array().unwrap();
    let sizes: Vec<usize> = waves
        .iter()
        .map(|w| w["hosts"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [1, 1, 10], "{j:#}");
    for w in waves {
        assert_eq!(w["gate"], "passed", "{w:#}");
        assert_eq!(w["healthy"], w["hosts"].as_array().unwrap().len());
        assert_eq!(w["changed"], w["healthy"]);
    }
    assert!(j["rollout"]["stopped"].is_null(), "{j:#}");
    let after = applies(&lab, &devices);
    assert!(
        devices.iter().all(|d| after[d] == before[d] + 1),
        "{after:?}"
    );

    // Nothing left to change: no soak, no probe, every gate skipped saying why.
    let (code, j, kinds, text) = rollout_json(&lab, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(count(&kinds, "wave_soaking"), 0, "{kinds:?}");
    for w in j["rollout"]["waves"].as_array().unwrap() {
        assert_eq!(w["gate"], "skipped", "{w:#}");
        assert_eq!(w["skipped_because"], "no device of the wave changed");
        assert_eq!(w["soak_ms"], 0);
    }
    assert_eq!(applies(&lab, &devices), after);
}

#[test]
fn confirm_without_a_terminal_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    // No devices needed: the refusal comes first (the inventory is not even read).
    let o = support::edgefleet()
        .current_dir(repo())
        .args(["play", ROLLOUT, "--confirm", "-i"])
        .arg(dir.path().join("no-such-inventory.yml"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", out(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--confirm") && err.contains("stdin is not a terminal"),
        "{err}"
    );
    // --syntax-check runs nothing, so it asks nothing either: --confirm is no reason to refuse it.
    let inv = dir.path().join("inventory.yml");
    std::fs::write(&inv, "all:\n  hosts:\n    edge-001:\n").unwrap();
    let o = support::edgefleet()
        .current_dir(repo())
        .env("EDGEFLEET_ROLES_PATH", repo().join("roles"))
        .args(["play", ROLLOUT, "--confirm", "--syntax-check", "-i"])
        .arg(&inv)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
}

/// A pseudo-terminal: (controller, the terminal end for the child's stdin).
fn pty() -> (std::fs::File, OwnedFd) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two new descriptors into the given pointers; the name, termios and winsize
    // arguments may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are owned by nobody else.
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            OwnedFd::from_raw_fd(slave),
        )
    }
}

#[test]
fn confirm_asks_on_the_terminal_before_each_wave_and_no_stops_the_rollout() {
    let n = 3;
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(dir.path(), n);
    provision(&lab);
    let devices = names(n);
    let before = applies(&lab, &devices);
    let (mut term, stdin) = pty();
    let stdout_path = dir.path().join("stdout.txt");
    let mut child = play(&lab, ROLLOUT, &["--confirm", "-e", CHANGE])
        .stdin(Stdio::from(stdin))
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // stderr, line by line, to this thread; the question ends without a newline, so read by bytes up to '?'.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut r = std::io::BufReader::new(stderr);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b']', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(String::from_utf8_lossy(&buf).into_owned()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut seen = String::new();
    let wait_for = |seen: &mut String, marker: &str| {
        while !seen.contains(marker) {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok(s) => seen.push_str(&s),
                Err(e) => panic!("no {marker:?} ({e}); stderr so far:\n{seen}"),
            }
        }
    };
    // Wave 1 (1 device) ran and passed its gate: the summary, then the question for wave 2.
    wait_for(&mut seen, "Start wave 2/3 (1 devices)? [y/N]");
    assert!(
        seen.contains("WAVE 1/3 (1 devices) | gate passed"),
        "{seen}"
    );
    writeln!(term, "yes").unwrap();
    wait_for(&mut seen, "Start wave 3/3 (1 devices)? [y/N]");
    writeln!(term, "no").unwrap();
    let status = child.wait().unwrap();
    drop(term);
    let _ = reader.join();
    let rest: String = rx.try_iter().collect();
    assert_eq!(status.code(), Some(2), "{seen}{rest}");
    assert!(
        seen.contains("WAVE 2/3 (1 devices) | gate passed"),
        "{seen}"
    );
    // The recap says where the rollout stopped and why.
    let recap = std::fs::read_to_string(&stdout_path).unwrap();
    assert!(
        recap.contains("the operator did not confirm wave 3/3")
            && recap.contains("stopped after wave 2/3: 1 devices untouched (edge-003)"),
        "{recap}"
    );
    let after = applies(&lab, &devices);
    assert_eq!(after["edge-001"], before["edge-001"] + 1);
    assert_eq!(after["edge-002"], before["edge-002"] + 1);
    assert_eq!(after["edge-003"], before["edge-003"], "wave 3 was declined");
}

#[test]
fn a_soak_that_is_no_duration_stops_the_play_before_any_device_is_contacted() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory.yml");
    // Nothing listens on port 1: a contacted device would be unreachable (exit 3), not failed.
    std::fs::write(
        &inv,
        "all:\n  hosts:\n    edge-001: {ansible_host: 127.0.0.1, ansible_port: 1}\n    edge-002: {ansible_host: 127.0.0.1, ansible_port: 1}\n",
    )
    .unwrap();
    let pb = dir.path().join("rollout.yml");
    std::fs::write(
        &pb,
        "- hosts: all\n  gather_facts: false\n  serial: 1\n  rollout: {soak: \"{{ rollout_soak | default('5m') }}\"}\n  tasks:\n    - command: \"true\"\n",
    )
    .unwrap();
    let o = support::edgefleet()
        .args(["play", "--output", "json", "-e", "rollout_soak=soon", "-i"])
        .arg(&inv)
        .arg(&pb)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    let why = j["aborted"].as_str().unwrap_or_default();
    assert!(why.contains("'soon' is not a duration"), "{j:#}");
    for d in ["edge-001", "edge-002"] {
        let dev = support::report_device(&j, d);
        assert_eq!(dev["connects"], 0, "{dev:#}");
    }
}

#[test]
fn ctrl_c_ends_a_soak_at_once_and_no_later_wave_starts() {
    let n = 2;
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(dir.path(), n);
    provision(&lab);
    let devices = names(n);
    let before = applies(&lab, &devices);
    // The shipped playbook's soak, made long: only Ctrl-C can end it in time. The jsonl events are flushed as
    // they happen: the soak's begins the wait.
    let mut child = play(
        &lab,
        "playbooks/rollout.yml",
        &["-e", "rollout_soak=10m", "-e", CHANGE, "--output", "jsonl"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    loop {
        let l = lines
            .next()
            .unwrap_or_else(|| panic!("no soak began:\n{seen}"))
            .unwrap();
        seen.push_str(&l);
        seen.push('\n');
        if l.contains(r#""event":"wave_soaking""#) {
            break;
        }
    }
    let asked = std::time::Instant::now();
    // SAFETY: kill(2) on the child we spawned and still own (not yet waited for).
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(60),
        "the soak did not end on Ctrl-C"
    );
    assert_eq!(status.code(), Some(99), "{seen}{}", rest.join("\n"));
    let after = applies(&lab, &devices);
    assert_eq!(after["edge-001"], before["edge-001"] + 1);
    assert_eq!(
        after["edge-002"], before["edge-002"],
        "wave 2 must not start"
    );
}
