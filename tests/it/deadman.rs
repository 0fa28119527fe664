//! The dead-man revert on lab devices: a DNS change that cuts a device off (`unreachable-after-dns`) is undone
//! by the device itself within the window and the run says "rolled back by the device", while the same change
//! on a healthy device is confirmed from a new connection and disarmed (no timer process, no revert script
//! left); a rerun finds the cut-off device with its old configuration and reachable; a controller killed
//! between arm and disarm leaves a device that rolls back, and `--resume last` reports it; arming and
//! disarming cost an unchanged device no round trip and a changed one exactly one (a first provisioning is
//! not armed unless asked); twenty devices cut off in one run all come back on their previous configuration;
//! a service's systemd drop-in is guarded too; through sudo on OpenSSH devices the timer outlives the session.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use edgefleet::lab::{FaultKind, Lab, LabBackend, LabConfig, LabUser};
use serde_json::Value;

use crate::support::{self, repo};

/// The address whose use as a DNS server cuts a device off (TEST-NET-1: never routed).
const CUT_DNS: &str = "192.0.2.53";

const PLAYBOOK: &str = r#"
- name: dns
  hosts: all
  gather_facts: false
  tasks:
    - name: daemon.json DNS
      docker_daemon:
        dns: ["{{ dns }}"]
      notify: restart docker
    - name: hold between arm and disarm
      wait_for:
        path: /var/tmp/release
        timeout: 300
      when: hold | default(false) | bool
  handlers:
    - name: restart docker
      service:
        name: docker
        state: restarted
"#;

struct Env {
    dir: tempfile::TempDir,
    lab: Lab,
    playbook: PathBuf,
}

impl Env {
    fn new(n: usize) -> Env {
        Env::with(n, LabBackend::Embedded, LabUser::Root)
    }

    fn with(n: usize, backend: LabBackend, user: LabUser) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = LabConfig::new(dir.path().join("lab"), n);
        cfg.backend = backend;
        cfg.user = user;
        cfg.exe = Some(support::bin());
        let lab = Lab::up(&cfg).unwrap_or_else(|e| panic!("lab up failed: {e}"));
        let playbook = dir.path().join("dns.yml");
        std::fs::write(&playbook, PLAYBOOK).unwrap();
        Env { dir, lab, playbook }
    }

    fn cmd(&self) -> Command {
        let mut c = support::edgefleet();
        c.current_dir(repo())
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .arg("play")
            .arg("--identity")
            .arg(self.lab.age_identity_path())
            .args(["--progress", "plain"]);
        c
    }

    /// Play the DNS playbook with a JSON report: the output and the report.
    fn play(&self, extra: &[&str]) -> (Output, Value) {
        let report = self.dir.path().join("report.json");
        let _ = std::fs::remove_file(&report);
        let o = self
            .cmd()
            .arg(&self.playbook)
            .arg("-i")
            .arg(self.lab.inventory_path())
            .arg("--report")
            .arg(&report)
            .args(extra)
            .output()
            .unwrap();
        (o.clone(), read_report(&report, &o))
    }

    fn daemon_json(&self, dev: &str) -> Option<String> {
        std::fs::read_to_string(self.lab.device_root(dev).join("etc/docker/daemon.json")).ok()
    }

    /// What is left of dead-man reverts on the device: its state directory's entries.
    fn deadman_dirs(&self, dev: &str) -> Vec<String> {
        let d = self.lab.device_root(dev).join("var/lib/edgefleet/deadman");
        let mut v: Vec<String> = std::fs::read_dir(d)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Processes inside `dev` (same mount namespace) that are a dead-man timer.
    fn timers(&self, dev: &str) -> usize {
        let o = self
            .lab
            .run_on(
                dev,
                r#"me=$(readlink /proc/self/ns/mnt)
for p in /proc/[0-9]*; do
  [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$me" ] || continue
  tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q 'edgefleet[-]deadman' && echo "$p"
done; true"#,
            )
            .unwrap();
        assert!(o.status.success());
        String::from_utf8_lossy(&o.stdout).lines().count()
    }
}

fn read_report(p: &Path, o: &Output) -> Value {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| panic!("no report\n{}", out(o)))
}

fn out(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn device<'a>(doc: &'a Value, name: &str) -> &'a Value {
    support::report_device(doc, name)
}

/// Wait (polling a marker, up to two minutes) until `cond` holds.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_device_cut_off_by_a_dns_change_rolls_itself_back_and_a_healthy_one_is_confirmed() {
    let env = Env::new(2);
    let (cut, ok) = ("edge-001", "edge-002");
    env.lab
        .fault_with(cut, FaultKind::UnreachableAfterDns, None, Some(CUT_DNS))
        .unwrap();
    let before_cut = env.daemon_json(cut);
    let before_ok = env.daemon_json(ok);
    let dns = format!("dns={CUT_DNS}");
    let started = Instant::now();
    let (o, doc) = env.play(&["-e", &dns, "-e", "deadman_window=4"]);
    let took = started.elapsed();
    let text = out(&o);
    assert_ne!(o.status.code(), Some(0), "{text}");

    crate::report::assert_valid(
        &crate::report::load_schema("report.schema.json"),
        &doc,
        "the report",
    );
    assert_eq!(doc["totals"]["rolled_back"], 1);
    // The cut-off device: reported as rolled back by the device, its previous file back, reachable again.
    let d = device(&doc, cut);
    assert_eq!(d["status"], "rolled_back", "{d:#}\n{text}");
    let err = d["error"].as_str().unwrap();
    assert!(err.starts_with("rolled back by the device"), "{err}");
    assert!(
        err.contains("restored its previous configuration by itself at"),
        "{err}"
    );
    assert_eq!(
        env.daemon_json(cut),
        before_cut,
        "the previous daemon.json is back"
    );
    assert!(text.contains("rolled back by the device"), "{text}");
    assert!(
        took >= Duration::from_secs(4),
        "the device waited for its window: {took:?}"
    );
    // It reverted by itself: the revert's claim and record stay, no timer is left.
    let left = env.deadman_dirs(cut);
    assert_eq!(left.len(), 1, "{left:?}");
    let rec = env
        .lab
        .device_root(cut)
        .join("var/lib/edgefleet/deadman")
        .join(&left[0]);
    let log = std::fs::read_to_string(rec.join("revert.log")).unwrap();
    assert!(log.contains("restart docker: ok"), "{log}");
    assert!(rec.join("claim").is_dir());
    assert_eq!(env.timers(cut), 0);

    // The healthy device: changed, confirmed from a second connection, nothing left to fire later.
    let d = device(&doc, ok);
    assert_eq!(d["status"], "changed", "{d:#}\n{text}");
    assert_eq!(d["connects"], 2, "{d:#}");
    let now = env.daemon_json(ok).unwrap();
    assert!(now.contains(CUT_DNS), "{now}");
    assert_ne!(Some(now), before_ok);
    assert!(
        env.deadman_dirs(ok).is_empty(),
        "{:?}",
        env.deadman_dirs(ok)
    );
    assert_eq!(env.timers(ok), 0, "the timer process was stopped");

    // The rerun (check mode) reaches both: the cut-off one still has its old configuration.
    let (o, doc) = env.play(&["-e", &dns, "--check"]);
    let text = out(&o);
    assert_eq!(device(&doc, cut)["status"], "changed", "{text}");
    assert_eq!(device(&doc, ok)["status"], "ok", "{text}");
    assert_eq!(env.daemon_json(cut), before_cut);
}

#[test]
fn arming_and_disarming_cost_a_changed_device_one_round_trip_and_an_unchanged_one_none() {
    let env = Env::new(1);
    let dev = "edge-001";
    let play = |dns: &str, window: Option<&str>| {
        let dns = format!("dns={dns}");
        let mut args = vec!["-e", dns.as_str()];
        let w;
        if let Some(x) = window {
            w = format!("deadman_window={x}");
            args.extend(["-e", w.as_str()]);
        }
        let (o, doc) = env.play(&args);
        assert_eq!(o.status.code(), Some(0), "{}", out(&o));
        device(&doc, dev).clone()
    };
    // A first provisioning (no daemon.json yet) is not armed unless the play asks.
    assert!(env.daemon_json(dev).is_none());
    let first = play("10.0.0.1", None);
    assert_eq!(
        (&first["status"], &first["connects"]),
        (&"changed".into(), &1.into())
    );
    // Changes of a file the device ran with: off, then on by default (unset), then the same state both ways.
    let off_changed = play("10.0.0.2", Some("0"));
    let on_changed = play("10.0.0.3", None);
    let on_same = play("10.0.0.3", None);
    let off_same = play("10.0.0.3", Some("off"));
    for (d, status) in [
        (&off_changed, "changed"),
        (&on_changed, "changed"),
        (&on_same, "ok"),
        (&off_same, "ok"),
    ] {
        assert_eq!(d["status"], status, "{d:#}");
    }
    let rt = |d: &Value| d["round_trips"].as_u64().unwrap();
    assert_eq!(rt(&on_changed), rt(&off_changed) + 1, "{on_changed:#}");
    assert_eq!(on_changed["connects"], 2);
    assert_eq!(off_changed["connects"], 1);
    assert_eq!(rt(&on_same), rt(&off_same));
    assert_eq!(on_same["connects"], 1);
    assert!(env.deadman_dirs(dev).is_empty());
    assert_eq!(env.timers(dev), 0);
}

#[test]
fn a_controller_killed_between_arm_and_disarm_leaves_a_device_that_rolls_back_and_resume_says_so() {
    let env = Env::new(1);
    let dev = "edge-001";
    let before = env.daemon_json(dev);
    let mut child = env
        .cmd()
        .arg(&env.playbook)
        .arg("-i")
        .arg(env.lab.inventory_path())
        .args([
            "-e",
            "dns=10.0.0.9",
            "-e",
            "deadman_window=3",
            "-e",
            "hold=true",
        ])
        .args(["--output", "jsonl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The marker: the device armed its revert (the next task holds the run until the controller dies).
    let stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let events = crate::report::load_schema("events.schema.json");
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let ev: Value = serde_json::from_str(&line).unwrap();
        crate::report::assert_valid(&events, &ev, "a jsonl line");
        let armed = ev["event"] == "deadman" && ev["state"] == "armed";
        seen.push(line);
        if armed {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|l| l.contains("\"armed\"")),
        "{seen:#?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(env.daemon_json(dev).unwrap().contains("10.0.0.9"));

    // Nobody disarms: the device restores its previous daemon.json and restarts docker by itself.
    let base = env.lab.device_root(dev).join("var/lib/edgefleet/deadman");
    wait_for("the device's revert", || {
        env.deadman_dirs(dev)
            .iter()
            .any(|d| base.join(d).join("reverted").is_file())
    });
    assert_eq!(env.daemon_json(dev), before);
    assert_eq!(env.timers(dev), 0);

    // Resuming applies the change again, and says the device rolled the killed run's change back.
    let report = env.dir.path().join("resume.json");
    let o = env
        .cmd()
        .args([
            "--resume",
            "last",
            "-e",
            "hold=false",
            "-e",
            "dns=10.0.0.9",
            "-e",
            "deadman_window=30",
            "--report",
        ])
        .arg(&report)
        .output()
        .unwrap();
    let text = out(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let doc = read_report(&report, &o);
    let d = device(&doc, dev);
    assert_eq!(d["status"], "changed", "{d:#}");
    let warnings: Vec<&str> = d["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w.as_str())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("rolled back by the device: an earlier run's change")),
        "{warnings:?}\n{text}"
    );
    assert!(env.daemon_json(dev).unwrap().contains("10.0.0.9"));
    assert!(env.deadman_dirs(dev).iter().all(|d| d != "claim"));
    assert_eq!(env.timers(dev), 0);
}

#[test]
fn twenty_devices_cut_off_in_one_run_all_end_back_on_their_previous_configuration_and_reachable() {
    let env = Env::new(20);
    let names: Vec<String> = env.lab.devices().iter().map(|d| d.name.clone()).collect();
    assert_eq!(names.len(), 20);
    let before: Vec<Option<String>> = names.iter().map(|n| env.daemon_json(n)).collect();
    for n in &names {
        env.lab
            .fault_with(n, FaultKind::UnreachableAfterDns, None, Some(CUT_DNS))
            .unwrap();
    }
    let dns = format!("dns={CUT_DNS}");
    let (o, doc) = env.play(&["-e", &dns, "-e", "deadman_window=5"]);
    let text = out(&o);
    assert_ne!(o.status.code(), Some(0), "{text}");
    assert_eq!(doc["totals"]["rolled_back"], 20, "{:#}", doc["totals"]);
    assert!(
        text.contains("20 rolled back by the device"),
        "the recap says so: {text}"
    );
    for (n, b) in names.iter().zip(&before) {
        assert_eq!(device(&doc, n)["status"], "rolled_back", "{n}");
        assert_eq!(&env.daemon_json(n), b, "{n}: previous daemon.json");
        assert_eq!(env.timers(n), 0, "{n}");
    }
    // All reachable again, all still on the previous configuration (a check-mode rerun would change each).
    let (o, doc) = env.play(&["-e", &dns, "--check"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(doc["totals"]["changed"], 20, "{:#}", doc["totals"]);
    assert_eq!(doc["totals"]["unreachable"], 0);
}

#[test]
fn a_service_drop_in_change_is_guarded_and_confirmed() {
    let env = Env::new(1);
    let dev = "edge-001";
    let pb = env.dir.path().join("dropin.yml");
    std::fs::write(
        &pb,
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: drop-in directory
      file:
        path: /etc/systemd/system/docker.service.d
        state: directory
    - name: docker's proxy drop-in
      copy:
        dest: /etc/systemd/system/docker.service.d/http-proxy.conf
        content: "[Service]\nEnvironment=HTTPS_PROXY={{ proxy }}\n"
"#,
    )
    .unwrap();
    let play = |extra: &[&str]| {
        let report = env.dir.path().join("dropin.json");
        let o = env
            .cmd()
            .arg(&pb)
            .arg("-i")
            .arg(env.lab.inventory_path())
            .arg("--report")
            .arg(&report)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", out(&o));
        device(&read_report(&report, &o), dev).clone()
    };
    // Created (nothing to go back to: not armed), then changed (armed by default, confirmed, disarmed).
    let first = play(&["-e", "proxy=http://10.0.0.1:3128"]);
    assert_eq!(first["connects"], 1, "{first:#}");
    let second = play(&["-e", "proxy=http://10.0.0.2:3128"]);
    assert_eq!(second["status"], "changed", "{second:#}");
    assert_eq!(second["connects"], 2, "{second:#}");
    let o = env
        .lab
        .run_on(
            dev,
            "cat /etc/systemd/system/docker.service.d/http-proxy.conf",
        )
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("10.0.0.2"));
    assert!(
        env.deadman_dirs(dev).is_empty(),
        "{:?}",
        env.deadman_dirs(dev)
    );
    assert_eq!(env.timers(dev), 0);
}

#[test]
fn through_sudo_and_openssh_the_timer_outlives_the_session_and_is_stopped_or_fires() {
    let env = Env::with(1, LabBackend::Openssh, LabUser::Admin);
    let dev = "edge-001";
    // A daemon.json the device runs with, then a change armed by default (unset window) and confirmed.
    let (o, _) = env.play(&["-e", "dns=10.0.0.1"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let (o, doc) = env.play(&["-e", "dns=10.0.0.2"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(device(&doc, dev)["connects"], 2);
    assert!(env.deadman_dirs(dev).is_empty());
    assert_eq!(env.timers(dev), 0);
    let before = env.daemon_json(dev);

    // Killed between arm and disarm: the timer process sudo started in an sshd session that is gone fires.
    let mut child = env
        .cmd()
        .arg(&env.playbook)
        .arg("-i")
        .arg(env.lab.inventory_path())
        .args([
            "-e",
            "dns=10.0.0.3",
            "-e",
            "deadman_window=3",
            "-e",
            "hold=true",
        ])
        .args(["--output", "jsonl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let armed = BufReader::new(stdout).lines().any(|l| {
        let ev: Value = serde_json::from_str(&l.unwrap()).unwrap();
        ev["event"] == "deadman" && ev["state"] == "armed"
    });
    assert!(armed);
    child.kill().unwrap();
    child.wait().unwrap();
    let base = env.lab.device_root(dev).join("var/lib/edgefleet/deadman");
    wait_for("the device's revert", || {
        env.deadman_dirs(dev)
            .iter()
            .any(|d| base.join(d).join("reverted").is_file())
    });
    assert_eq!(env.daemon_json(dev), before, "10.0.0.2 is back");
    assert_eq!(env.timers(dev), 0);
}

#[test]
fn a_device_whose_clock_is_years_off_still_rolls_back_within_its_window() {
    let env = Env::new(1);
    let dev = "edge-001";
    // Its clock three years ahead, and a DNS server that cuts it off: the window is measured, not dated.
    env.lab.fault(dev, FaultKind::ClockSkew, None).unwrap();
    env.lab
        .fault_with(dev, FaultKind::UnreachableAfterDns, None, Some(CUT_DNS))
        .unwrap();
    let before = env.daemon_json(dev);
    let dns = format!("dns={CUT_DNS}");
    let started = Instant::now();
    let (o, doc) = env.play(&["-e", &dns, "-e", "deadman_window=3"]);
    assert_ne!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(device(&doc, dev)["status"], "rolled_back", "{}", out(&o));
    assert_eq!(env.daemon_json(dev), before);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}
