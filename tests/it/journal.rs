//! Scheduled runs on lab fleets: the run journal survives `kill -9` of the controller and `--resume` contacts
//! exactly the devices not finished ok; `--limit @failed` and retry files; `--detailed-exitcode`; the
//! `--metrics` file parsed by a real Prometheus text-format parser; the systemd units pass `systemd-analyze
//! verify`. Every test keeps its journals in its own `XDG_STATE_HOME`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use edgefleet::lab::{FaultKind, Lab, LabBackend, LabConfig};
use serde_json::Value;

use crate::support::{self, repo};

fn lab(dir: &Path, n: usize) -> Lab {
    let mut cfg = LabConfig::new(dir.join("lab"), n);
    cfg.backend = LabBackend::Embedded;
    cfg.exe = Some(support::bin());
    Lab::up(&cfg).unwrap_or_else(|e| panic!("lab up failed: {e}"))
}

/// Records each contact in `/var/tmp/contacted` (one `run_tag` per line); edge-002 fails while `run_tag` is
/// `first`.
const PLAYBOOK: &str = r#"
- name: scheduled
  hosts: all
  gather_facts: false
  tasks:
    - name: record the contact
      shell: mkdir -p /var/tmp && echo {{ run_tag }} >> /var/tmp/contacted
    - name: drift
      copy:
        dest: /etc/edgefleet-drift.txt
        content: "v1\n"
    - name: edge-002 fails the first time
      fail:
        msg: boom
      when: inventory_hostname == 'edge-002' and run_tag == 'first'
"#;

struct Env {
    dir: tempfile::TempDir,
    lab: Lab,
    playbook: PathBuf,
}

impl Env {
    fn new(n: usize) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let lab = lab(dir.path(), n);
        let playbook = dir.path().join("scheduled.yml");
        std::fs::write(&playbook, PLAYBOOK).unwrap();
        Env { dir, lab, playbook }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn runs(&self) -> PathBuf {
        self.state().join("edgefleet/runs")
    }

    /// `edgefleet play` with this env's state dir and the lab's identity (no playbook or inventory: add them).
    fn cmd(&self) -> Command {
        let mut c = support::edgefleet();
        c.current_dir(repo())
            .env("XDG_STATE_HOME", self.state())
            .arg("play")
            .arg("--identity")
            .arg(self.lab.age_identity_path())
            .args(["--progress", "plain"]);
        c
    }

    /// `play` of the test playbook on the lab's inventory.
    fn play(&self, extra: &[&str]) -> Output {
        self.cmd()
            .arg(&self.playbook)
            .arg("-i")
            .arg(self.lab.inventory_path())
            .args(extra)
            .output()
            .unwrap()
    }

    fn contacted(&self, dev: &str) -> Vec<String> {
        let p = self.lab.device_root(dev).join("var/tmp/contacted");
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// The journals (not retry files), oldest first.
    fn journals(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.runs())
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.retain(|p| p.extension().is_none_or(|e| e != "retry" && e != "tmp"));
        v.sort();
        v
    }
}

fn out(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn lines(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn report_hosts(p: &Path) -> BTreeSet<String> {
    let r: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect()
}

fn set(xs: &[&str]) -> BTreeSet<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_controller_killed_mid_run_resumes_exactly_the_devices_not_finished_ok() {
    let env = Env::new(6);
    // Two devices behind a very slow link: still connecting when the controller dies.
    for d in ["edge-005", "edge-006"] {
        env.lab.fault(d, FaultKind::SlowLink, Some(5000)).unwrap();
    }
    let mut child = env
        .cmd()
        .arg(&env.playbook)
        .arg("-i")
        .arg(env.lab.inventory_path())
        .args(["-e", "run_tag=first", "--output", "jsonl"])
        .args(["--connect-timeout", "300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The marker: the jsonl events. Kill -9 once the four fast devices finished and both slow ones started.
    let stdout = child.stdout.take().unwrap();
    let mut finished = BTreeSet::new();
    let mut connecting = BTreeSet::new();
    let mut seen = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let ev: Value = serde_json::from_str(&line).unwrap();
        let host = ev["host"].as_str().unwrap_or_default().to_string();
        match ev["event"].as_str() {
            Some("host_finished") => {
                finished.insert(host);
            }
            Some("host_connecting") => {
                connecting.insert(host);
            }
            _ => {}
        }
        seen.push(line);
        if finished.len() == 4 && connecting.is_superset(&set(&["edge-005", "edge-006"])) {
            break;
        }
    }
    assert_eq!(
        finished,
        set(&["edge-001", "edge-002", "edge-003", "edge-004"]),
        "{seen:#?}"
    );
    child.kill().unwrap(); // SIGKILL: no chance to write anything more
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "killed by a signal");

    // The journal holds the header and exactly the four finished devices (fsynced before they were reported).
    let journals = env.journals();
    assert_eq!(journals.len(), 1, "{journals:?}");
    let j = lines(&journals[0]);
    assert_eq!(j[0]["edgefleet_journal"], 1);
    assert_eq!(
        j[0]["hosts"].as_array().unwrap().len(),
        6,
        "the header names every device of the run"
    );
    assert!(j[0]["argv"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a != "run_tag=first"));
    let statuses: Vec<(String, String)> = j[1..]
        .iter()
        .map(|e| {
            (
                e["host"].as_str().unwrap().to_string(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(statuses.len(), 4, "{statuses:?}");
    for (h, s) in &statuses {
        let want = if h == "edge-002" { "failed" } else { "ok" };
        assert_eq!(s, want, "{h}");
    }

    // Resume (no playbook, no inventory: the journal's): exactly edge-002 (failed) and the two unfinished ones.
    for d in ["edge-005", "edge-006"] {
        env.lab.fault(d, FaultKind::None, None).unwrap();
    }
    let report = env.dir.path().join("resume.json");
    let o = env
        .cmd()
        .args(["--resume", "last", "-e", "run_tag=second", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(
        report_hosts(&report),
        set(&["edge-002", "edge-005", "edge-006"])
    );
    for d in ["edge-001", "edge-003", "edge-004"] {
        assert_eq!(env.contacted(d), ["first"], "{d} was contacted again");
    }
    for d in ["edge-002", "edge-005", "edge-006"] {
        assert_eq!(
            env.contacted(d).last().map(String::as_str),
            Some("second"),
            "{d}"
        );
    }
    // The resumed run has its own journal, which ended normally; resuming it finds nothing to do.
    let journals = env.journals();
    assert_eq!(journals.len(), 2);
    let j2 = lines(&journals[1]);
    assert_eq!(j2.last().unwrap()["interrupted"], false);
    let o = env.cmd().args(["--resume", "last"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("nothing to resume"),
        "{}",
        out(&o)
    );
    // Resuming the killed run by id still names its three devices (a journal is never rewritten).
    let id = journals[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let report = env.dir.path().join("again.json");
    let o = env
        .cmd()
        .args(["--resume", &id, "-e", "run_tag=third", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(
        report_hosts(&report),
        set(&["edge-002", "edge-005", "edge-006"])
    );
    env.lab.down().unwrap();
}

#[test]
fn limit_at_failed_and_retry_files_select_the_last_runs_not_ok_devices() {
    let env = Env::new(3);
    let o = env.play(&["-e", "run_tag=first"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    let journal = env.journals().pop().unwrap();
    let mut retry = journal.clone().into_os_string();
    retry.push(".retry");
    let retry = PathBuf::from(retry);
    assert_eq!(std::fs::read_to_string(&retry).unwrap(), "edge-002\n");

    // `@failed` alone, and in a union with another pattern.
    let r1 = env.dir.path().join("r1.json");
    let o = env
        .cmd()
        .arg(&env.playbook)
        .arg("-i")
        .arg(env.lab.inventory_path())
        .args(["-e", "run_tag=first", "--limit", "@failed", "--report"])
        .arg(&r1)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert_eq!(report_hosts(&r1), set(&["edge-002"]));
    let r2 = env.dir.path().join("r2.json");
    let o = env
        .cmd()
        .arg(&env.playbook)
        .arg("-i")
        .arg(env.lab.inventory_path())
        .args(["-e", "run_tag=x", "--limit", "@failed:edge-003", "--report"])
        .arg(&r2)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(report_hosts(&r2), set(&["edge-002", "edge-003"]));
    // Now the last run was all ok: `@failed` selects nothing, and nothing runs.
    let o = env.play(&["-e", "run_tag=y", "--limit", "@failed"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("nothing to do"),
        "{}",
        out(&o)
    );
    assert!(!env.contacted("edge-001").contains(&"y".to_string()));
    // The first run's retry file works like Ansible's (`--limit @file.retry`).
    let r3 = env.dir.path().join("r3.json");
    let o = env
        .cmd()
        .arg(&env.playbook)
        .arg("-i")
        .arg(env.lab.inventory_path())
        .args(["-e", "run_tag=z", "--report"])
        .arg(&r3)
        .arg("--limit")
        .arg(format!("@{}", retry.display()))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(report_hosts(&r3), set(&["edge-002"]));
    env.lab.down().unwrap();
}

#[test]
fn resume_refuses_other_playbooks_and_missing_or_corrupt_journals() {
    let env = Env::new(1);
    // No journal yet.
    let o = env.cmd().args(["--resume", "last"]).output().unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", out(&o));
    assert!(out(&o).contains("no run to resume"), "{}", out(&o));
    let o = env
        .cmd()
        .args(["--resume", "20200101T000000.000Z-00000000"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", out(&o));
    assert!(out(&o).contains("no run journal"), "{}", out(&o));
    let o = env.play(&["-e", "run_tag=first"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    // Another playbook than the journal's is refused, naming both.
    let other = env.dir.path().join("other.yml");
    std::fs::write(&other, "- hosts: all\n  gather_facts: false\n  tasks: []\n").unwrap();
    let o = env
        .cmd()
        .arg(&other)
        .args(["--resume", "last"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", out(&o));
    let text = out(&o);
    assert!(
        text.contains("other.yml") && text.contains("scheduled.yml"),
        "{text}"
    );
    // A corrupt journal is refused with its file and line.
    let j = env.journals().pop().unwrap();
    let mut text = std::fs::read_to_string(&j).unwrap();
    text.push_str("garbage\n");
    std::fs::write(&j, text).unwrap();
    let o = env.cmd().args(["--resume", "last"]).output().unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", out(&o));
    let lines = std::fs::read_to_string(&j).unwrap().lines().count();
    assert!(
        out(&o).contains(&format!(
            "{}:{lines}: the run journal is corrupt",
            j.display()
        )),
        "{}",
        out(&o)
    );
    env.lab.down().unwrap();
}

#[test]
fn detailed_exitcode_says_drift_and_failures_win() {
    let env = Env::new(3);
    // Check mode on fresh devices: the copy would change them -> 12; nothing changed on the devices.
    let o = env.play(&["-e", "run_tag=x", "--check", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(12), "{}", out(&o));
    assert!(!env
        .lab
        .device_root("edge-001")
        .join("etc/edgefleet-drift.txt")
        .exists());
    // Without the flag the same run exits 0.
    let o = env.play(&["-e", "run_tag=x", "--check"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    // A failure wins over drift.
    let o = env.play(&["-e", "run_tag=first", "--check", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    // Apply (changes made: 12 without --check too), then no drift: 0.
    let o = env.play(&["-e", "run_tag=x", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(12), "{}", out(&o));
    let o = env.play(&["-e", "run_tag=x", "--check", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    env.lab.down().unwrap();
}

#[test]
fn the_metrics_file_parses_and_counts_a_run_with_failures() {
    let env = Env::new(4);
    env.lab
        .fault("edge-003", FaultKind::Unreachable, None)
        .unwrap();
    let metrics_dir = env.dir.path().join("textfile");
    std::fs::create_dir(&metrics_dir).unwrap();
    let path = metrics_dir.join("edgefleet.prom");
    let o = env
        .cmd()
        .arg(&env.playbook)
        .arg("-i")
        .arg(env.lab.inventory_path())
        .args(["-e", "run_tag=first", "--connect-timeout", "3", "--metrics"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    // Written atomically: only the file itself in the directory.
    let names: Vec<_> = std::fs::read_dir(&metrics_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["edgefleet.prom"]);
    let text = std::fs::read_to_string(&path).unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let value = |name: &str, lbl: Option<(&str, &str)>| -> f64 {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && lbl.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("{name} {lbl:?} missing:\n{text}"));
        match s.value {
            prometheus_parse::Value::Gauge(v) => v,
            ref v => panic!("{name}: not a gauge: {v:?}"),
        }
    };
    let dev = |o| value("edgefleet_devices", Some(("outcome", o)));
    assert_eq!(dev("ok"), 2.0, "{text}");
    assert_eq!(dev("failed"), 1.0, "{text}");
    assert_eq!(dev("unreachable"), 1.0, "{text}");
    assert_eq!(dev("locked"), 0.0, "{text}");
    // edge-001, -002 and -004 wrote the drift file (edge-002 before it failed).
    assert_eq!(value("edgefleet_devices_changed", None), 3.0, "{text}");
    assert_eq!(value("edgefleet_run_exit_code", None), 3.0);
    let duration = value("edgefleet_run_duration_seconds", None);
    assert!(duration > 0.0 && duration < 600.0, "{duration}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let end = value("edgefleet_run_end_timestamp_seconds", None);
    assert!(end <= now && end > now - 600.0, "{end} vs {now}");
    for s in &scrape.samples {
        assert!(
            scrape.docs.contains_key(&s.metric),
            "{} has no HELP",
            s.metric
        );
    }
    // The run id label names the run's journal.
    let id = env.journals().pop().unwrap();
    let id = id.file_name().unwrap().to_str().unwrap();
    assert_eq!(value("edgefleet_run_info", Some(("run_id", id))), 1.0);
    env.lab.down().unwrap();
}

/// The systemd units pass `systemd-analyze verify` (with the unit's /usr/bin/edgefleet pointed at the binary
/// under test, since verify checks that ExecStart's binary exists), and keep secrets out of the unit.
#[test]
fn the_systemd_units_verify() {
    crate::tools::require("systemd-analyze");
    let src = repo().join("contrib/systemd");
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "edgefleet-maintenance.service",
        "edgefleet-maintenance.timer",
    ] {
        let text = std::fs::read_to_string(src.join(name)).unwrap();
        for must in ["LoadCredential", "ProtectSystem=strict", "NoNewPrivileges"] {
            if name.ends_with(".service") {
                assert!(text.contains(must), "{name} lacks {must}");
            }
        }
        if name.ends_with(".timer") {
            assert!(text.contains("RandomizedDelaySec="), "{text}");
            assert!(text.contains("Persistent=true"), "{text}");
        }
        // The credentials come from $CREDENTIALS_DIRECTORY, never a path to a key in the unit itself.
        assert!(!text.contains("BEGIN"), "{name} holds key material");
        let text = text.replace("/usr/bin/edgefleet", &support::bin().display().to_string());
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("edgefleet-maintenance.service"))
        .arg(dir.path().join("edgefleet-maintenance.timer"))
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .unwrap();
    let text = out(&o);
    assert!(o.status.success(), "systemd-analyze verify failed:\n{text}");
    // verify exits 0 on some problems it only prints: none may concern our units.
    assert!(
        !text.contains("edgefleet-maintenance"),
        "systemd-analyze verify complained:\n{text}"
    );
    // verify does not know edgefleet's flags: the unit's command line must load and validate (--syntax-check)
    // in a project laid out as the unit expects, with %d (the credentials directory) filled in.
    let service = std::fs::read_to_string(src.join("edgefleet-maintenance.service")).unwrap();
    let exec = service
        .replace("\\\n", " ")
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=").map(String::from))
        .expect("ExecStart");
    let project = dir.path().join("srv");
    let creds = dir.path().join("credentials");
    std::fs::create_dir_all(project.join("playbooks")).unwrap();
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(
        project.join("playbooks/maintenance.yml"),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - ping:\n",
    )
    .unwrap();
    std::fs::write(
        project.join("inventory"),
        "all:\n  hosts:\n    edge-001:\n      ansible_host: 127.0.0.1\n",
    )
    .unwrap();
    let mut words = exec.split_whitespace().map(|w| {
        w.replace("%d", &creds.display().to_string())
            .replace("/srv/edgefleet", &project.display().to_string())
    });
    assert_eq!(words.next().as_deref(), Some("/usr/bin/edgefleet"));
    let o = support::edgefleet()
        .current_dir(&project)
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .args(words)
        .arg("--syntax-check")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{exec}\n{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("syntax check passed"),
        "{}",
        out(&o)
    );
}
