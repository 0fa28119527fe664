//! Per-device run locks on lab devices: two concurrent runs on overlapping devices never interleave on a device
//! (the second waits, or reports the device locked by the first and finishes the others), a controller killed
//! with SIGKILL leaves no stale lock (both SSH backends), the lab's `locked` fault, `--check` taking no lock,
//! a device without `flock(1)` left unchanged, two inventory names of one device in one run sharing the lock,
//! and `--lock-timeout` values refused.
//!
//! Every wait here is for a marker (a line in a device file, a process on a device), never a fixed sleep.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use edgefleet::lab::{FaultKind, Lab, LabBackend, LabConfig, LOCKED_FAULT_RUN};
use serde_json::Value;

use crate::support::{self, repo};

/// Each task appends to the device's `/var/tmp/lock-log`; with `gate=true` the middle task blocks reading the
/// device's FIFO `/var/tmp/gate-NAME` until the test writes to it.
const GATE_PLAYBOOK: &str = r#"- hosts: all
  gather_facts: false
  tasks:
    - name: mark start
      shell: echo "{{ tag }} start" >> /var/tmp/lock-log
    - name: wait for the gate
      shell: cat /var/tmp/gate-{{ inventory_hostname }}
      when: gate | default(false) | bool
    - name: mark end
      shell: echo "{{ tag }} end" >> /var/tmp/lock-log
"#;

fn lab(dir: &Path, n: usize, backend: LabBackend) -> Lab {
    let mut cfg = LabConfig::new(dir.join("lab"), n);
    cfg.backend = backend;
    cfg.exe = Some(support::bin());
    Lab::up(&cfg).unwrap_or_else(|e| panic!("lab up failed: {e}"))
}

fn play_cmd(lab: &Lab, inventory: &Path, playbook: &Path, report: &Path, args: &[&str]) -> Command {
    let mut c = support::edgefleet();
    c.current_dir(repo())
        .arg("play")
        .arg(playbook)
        .arg("-i")
        .arg(inventory)
        .arg("--identity")
        .arg(lab.age_identity_path())
        .arg("--report")
        .arg(report)
        .args(["--progress", "plain"])
        .args(args);
    c
}

fn spawn(mut c: Command, log: &Path) -> Child {
    let f = std::fs::File::create(log).unwrap();
    c.stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// name -> (status, error) from a JSON report.
fn outcomes(report: &Path) -> std::collections::BTreeMap<String, (String, String)> {
    let r: Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_string(),
                (
                    d["status"].as_str().unwrap().to_string(),
                    d["error"].as_str().unwrap_or("").to_string(),
                ),
            )
        })
        .collect()
}

/// The lines of a device's `/var/tmp/lock-log` (on the host, under the device root).
fn log_lines(lab: &Lab, dev: &str) -> Vec<String> {
    std::fs::read_to_string(lab.device_root(dev).join("var/tmp/lock-log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Wait (polling a marker, up to a minute) until `cond` holds.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_on(lab: &Lab, dev: &str, script: &str) -> String {
    let o = lab.run_on(dev, script).unwrap();
    assert!(o.status.success(), "{dev}: {script}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Processes inside `dev` (same mount namespace) running edgefleet's lock script: the run holding the lock (its
/// shell stays, reading the channel) and every run waiting for it.
fn lock_scripts(lab: &Lab, dev: &str) -> usize {
    run_on(
        lab,
        dev,
        r#"me=$(readlink /proc/self/ns/mnt)
for p in /proc/[0-9]*; do
  [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$me" ] || continue
  tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q 'edgefleet[-]lock' && echo "$p"
done; true"#,
    )
    .lines()
    .count()
}

fn open_gate(lab: &Lab, dev: &str) {
    // Blocks until the gated task reads it (its reader is there: the run is waiting at the gate).
    run_on(lab, dev, &format!("echo go > /var/tmp/gate-{dev}"));
}

/// The lab inventory plus `alias` for the device `of` (same address and credentials, another name).
fn inventory_with_alias(lab: &Lab, of: &str, alias: &str, out: &Path) -> PathBuf {
    let inv = std::fs::read_to_string(lab.inventory_path()).unwrap();
    let head = format!("        {of}:\n");
    let start = inv.find(&head).expect("device in the lab inventory");
    let body_start = start + head.len();
    let body_len = inv[body_start..]
        .lines()
        .take_while(|l| l.starts_with("          "))
        .map(|l| l.len() + 1)
        .sum::<usize>();
    let block = format!(
        "        {alias}:\n{}",
        &inv[body_start..body_start + body_len]
    );
    let mut new = inv.clone();
    new.insert_str(body_start + body_len, &block);
    std::fs::write(out, new).unwrap();
    out.to_path_buf()
}

#[test]
fn two_runs_on_overlapping_devices_never_interleave_on_a_device() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lab = lab(d, 3, LabBackend::Embedded);
    let pb = d.join("gate.yml");
    std::fs::write(&pb, GATE_PLAYBOOK).unwrap();
    let inv = lab.inventory_path();
    for dev in ["edge-001", "edge-002"] {
        run_on(&lab, dev, &format!("mkfifo /var/tmp/gate-{dev}"));
    }

    // Run A holds edge-001 and edge-002, stopped at the gate.
    let mut a = spawn(
        play_cmd(
            &lab,
            &inv,
            &pb,
            &d.join("a.json"),
            &[
                "-e",
                "tag=A",
                "-e",
                "gate=true",
                "--limit",
                "edge-001,edge-002",
            ],
        ),
        &d.join("a.log"),
    );
    wait_for("run A at the gate on both devices", || {
        ["edge-001", "edge-002"]
            .iter()
            .all(|dev| log_lines(&lab, dev) == ["A start"])
    });

    // Run B1 (no patience) on edge-002 (held by A) and edge-003 (free): edge-002 is reported locked by A, with
    // A's owner record, and left alone; edge-003 is done.
    let b1 = play_cmd(
        &lab,
        &inv,
        &pb,
        &d.join("b1.json"),
        &[
            "-e",
            "tag=B",
            "--limit",
            "edge-002,edge-003",
            "--lock-timeout",
            "1",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(b1.status.code(), Some(3), "{}", text(&b1));
    let o = outcomes(&d.join("b1.json"));
    assert_eq!(o["edge-003"].0, "changed", "{o:?}");
    let (status, err) = &o["edge-002"];
    assert_eq!(status, "unreachable");
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    assert!(
        err.starts_with("locked by run 20")
            && err.contains(&format!("({}@", user.trim()))
            && err.contains(" since 20")
            && err.contains(&format!(", pid {})", a.id()))
            && err.contains("waiting 1s (--lock-timeout)"),
        "{err}"
    );
    assert!(text(&b1).contains("locked by run 20"), "{}", text(&b1));
    assert_eq!(log_lines(&lab, "edge-002"), ["A start"]);
    assert_eq!(log_lines(&lab, "edge-003"), ["B start", "B end"]);

    // Two inventory names for one device in one run share its lock (they do not wait for each other): on the
    // free edge-003.
    let alias_inv = inventory_with_alias(&lab, "edge-003", "edge-003-alias", &d.join("alias.yml"));
    let c = play_cmd(
        &lab,
        &alias_inv,
        &pb,
        &d.join("c.json"),
        &[
            "-e",
            "tag=C",
            "--limit",
            "edge-003,edge-003-alias",
            "--lock-timeout",
            "0",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(c.status.code(), Some(0), "{}", text(&c));

    // Run B2 (patient) on edge-001: it waits for A; once A is through the gate and done, B2 runs there.
    let mut b2 = spawn(
        play_cmd(
            &lab,
            &inv,
            &pb,
            &d.join("b2.json"),
            &[
                "-e",
                "tag=B",
                "--limit",
                "edge-001",
                "--lock-timeout",
                "120",
            ],
        ),
        &d.join("b2.log"),
    );
    wait_for("run B2 waiting for the lock on edge-001", || {
        // A holds the lock (it waits at the gate), B2 waits for it.
        lock_scripts(&lab, "edge-001") == 2
    });
    assert_eq!(
        log_lines(&lab, "edge-001"),
        ["A start"],
        "B2 must not start"
    );
    open_gate(&lab, "edge-001");
    open_gate(&lab, "edge-002");
    assert!(
        a.wait().unwrap().success(),
        "{}",
        std::fs::read_to_string(d.join("a.log")).unwrap()
    );
    assert!(
        b2.wait().unwrap().success(),
        "{}",
        std::fs::read_to_string(d.join("b2.log")).unwrap()
    );
    assert_eq!(
        log_lines(&lab, "edge-001"),
        ["A start", "A end", "B start", "B end"],
        "the runs interleaved on edge-001"
    );
    assert_eq!(log_lines(&lab, "edge-002"), ["A start", "A end"]);
    lab.down().unwrap();
}

/// A controller killed mid-play (SIGKILL: nothing of it runs any more) leaves no lock behind: the next run,
/// which does not wait at all, gets the device. Then the lab's `locked` fault: reported with its owner record,
/// `--check` ignores it, `none` releases it.
fn killed_controller_and_locked_fault(backend: LabBackend) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lab = lab(d, 2, backend);
    let pb = d.join("gate.yml");
    std::fs::write(&pb, GATE_PLAYBOOK).unwrap();
    let inv = lab.inventory_path();
    run_on(&lab, "edge-001", "mkfifo /var/tmp/gate-edge-001");
    let mut a = spawn(
        play_cmd(
            &lab,
            &inv,
            &pb,
            &d.join("a.json"),
            &["-e", "tag=A", "-e", "gate=true", "--limit", "edge-001"],
        ),
        &d.join("a.log"),
    );
    wait_for("run A at the gate", || {
        log_lines(&lab, "edge-001") == ["A start"]
    });
    let owner = run_on(&lab, "edge-001", "cat /run/lock/edgefleet.lock.owner");
    assert!(owner.ends_with(&format!("\t{}\n", a.id())), "{owner:?}");
    a.kill().unwrap();
    a.wait().unwrap();
    let started = Instant::now();
    let b = play_cmd(
        &lab,
        &inv,
        &pb,
        &d.join("b.json"),
        &["-e", "tag=B", "--limit", "edge-001", "--lock-timeout", "0"],
    )
    .output()
    .unwrap();
    assert_eq!(b.status.code(), Some(0), "{}", text(&b));
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(log_lines(&lab, "edge-001"), ["A start", "B start", "B end"]);
    // The killed run's gated command may or may not still wait at the gate (sshd does not always end the
    // commands of a dropped session); `lab down` ends it with every other process of the device.

    lab.fault("edge-002", FaultKind::Locked, None).unwrap();
    assert!(lab
        .status()
        .unwrap()
        .iter()
        .any(|s| s.device.name == "edge-002" && s.faults.iter().any(|f| f == "locked")));
    let f = play_cmd(
        &lab,
        &inv,
        &pb,
        &d.join("f.json"),
        &["-e", "tag=F", "--lock-timeout", "0"],
    )
    .output()
    .unwrap();
    assert_eq!(f.status.code(), Some(3), "{}", text(&f));
    let o = outcomes(&d.join("f.json"));
    assert_eq!(o["edge-001"].0, "changed");
    assert_eq!(o["edge-002"].0, "unreachable");
    assert!(
        o["edge-002"].1.starts_with(&format!(
            "locked by run {LOCKED_FAULT_RUN} (edgefleet-lab@edge-002 since "
        )),
        "{o:?}"
    );
    assert!(log_lines(&lab, "edge-002").is_empty());
    // Check mode changes nothing, so it neither waits for nor takes the lock.
    let chk = play_cmd(
        &lab,
        &inv,
        &pb,
        &d.join("chk.json"),
        &["-e", "tag=K", "--check", "--lock-timeout", "0"],
    )
    .output()
    .unwrap();
    assert_eq!(chk.status.code(), Some(0), "{}", text(&chk));
    lab.fault("edge-002", FaultKind::None, None).unwrap();
    let g = play_cmd(
        &lab,
        &inv,
        &pb,
        &d.join("g.json"),
        &["-e", "tag=G", "--lock-timeout", "0"],
    )
    .output()
    .unwrap();
    assert_eq!(g.status.code(), Some(0), "{}", text(&g));
    assert_eq!(log_lines(&lab, "edge-002"), ["G start", "G end"]);

    // A device without flock(1) cannot be locked, so it is not changed at all (fail closed).
    run_on(&lab, "edge-002", "mount --bind /dev/null /usr/bin/flock");
    let n = play_cmd(&lab, &inv, &pb, &d.join("n.json"), &["-e", "tag=N"])
        .output()
        .unwrap();
    run_on(&lab, "edge-002", "umount /usr/bin/flock");
    assert_eq!(n.status.code(), Some(3), "{}", text(&n));
    let o = outcomes(&d.join("n.json"));
    assert_eq!(o["edge-001"].0, "changed");
    assert_eq!(o["edge-002"].0, "unreachable");
    assert!(o["edge-002"].1.contains("has no flock(1)"), "{o:?}");
    assert_eq!(log_lines(&lab, "edge-002"), ["G start", "G end"]);
    lab.down().unwrap();
}

#[test]
fn a_killed_controller_leaves_no_lock_and_the_locked_fault_works_embedded() {
    killed_controller_and_locked_fault(LabBackend::Embedded);
}

#[test]
fn a_killed_controller_leaves_no_lock_and_the_locked_fault_works_openssh() {
    crate::tools::require("/usr/sbin/sshd");
    killed_controller_and_locked_fault(LabBackend::Openssh);
}

#[test]
fn lock_timeout_must_be_whole_seconds_up_to_a_day() {
    for bad in ["abc", "-1", "1.5", "86401", ""] {
        let o = support::edgefleet()
            .args(["play", "nonexistent.yml"])
            .arg(format!("--lock-timeout={bad}"))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(5), "{bad:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("--lock-timeout"),
            "{bad:?}: {}",
            text(&o)
        );
    }
}
