//! The secrets canary: a unique string in age-encrypted secrets is provisioned to 20 lab devices with every
//! output turned up (`-vvv`, `--diff`, `--output jsonl`, `--log`, `--report`), and then searched for
//! everywhere it must not be — stdout, stderr, the report, the log, controller temp files, every device's process
//! list captured during the run — and found where it must be: the device files it was meant for.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::SystemTime;

use edgefleet::lab::{Lab, LabConfig};
use edgefleet::lab::{LabBackend, LabUser};

use crate::support::{self, repo};

fn files_newer_than(dir: &Path, since: SystemTime, skip: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.starts_with(skip) {
            continue;
        }
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            files_newer_than(&p, since, skip, out);
        } else if m.is_file()
            && m.modified().map(|t| t >= since).unwrap_or(false)
            && m.len() < 64 << 20
        {
            out.push(p);
        }
    }
}

#[test]
fn secrets_never_leak_and_land_only_where_intended() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = LabConfig::new(dir.path().join("lab"), 20);
    cfg.backend = LabBackend::Openssh;
    cfg.user = LabUser::Admin; // sudo with become: the password path must not leak either
    cfg.exe = Some(support::bin());
    let lab = Lab::up(&cfg).unwrap_or_else(|e| panic!("lab up failed: {e}"));

    let canary = format!("CANARY-{:016x}-secret", rand_u64());
    // Encrypt the secrets from stdin: the plaintext never touches the disk.
    let recipient = std::fs::read_to_string(lab.age_identity_path())
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_string))
        .expect("lab identity names its public key");
    let secrets = dir.path().join("canary.yml.age");
    let mut enc = support::edgefleet()
        .args(["vault", "encrypt", "-", "-r", &recipient, "-o"])
        .arg(&secrets)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(
        enc.stdin.take().unwrap(),
        "iotedge_registry_username: pull-user\niotedge_registry_password: \"{canary}\"\nansible_become_password: \"{canary}-sudo\""
    )
    .unwrap();
    assert!(enc.wait().unwrap().success());

    let log = dir.path().join("run.log");
    let report = dir.path().join("report.json");
    lab.ps_capture(true, Some(20)).unwrap();
    let started = SystemTime::now();
    let o = support::edgefleet()
        .current_dir(repo())
        .args(["play", "playbooks/provision.yml", "-i"])
        .arg(lab.inventory_path())
        .arg("--identity")
        .arg(lab.age_identity_path())
        .arg("-e")
        .arg(format!("@{}", secrets.display()))
        .args(["-vvv", "--diff", "--output", "jsonl", "--log"])
        .arg(&log)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    lab.ps_capture(false, None).unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    // The run really exercised the outputs the canary could leak through.
    assert!(
        stdout.lines().count() > 100,
        "jsonl output is too short to mean anything"
    );
    assert!(stdout.contains("\"diff\""), "--diff produced no diffs");
    assert!(
        std::fs::read_to_string(&log).unwrap().contains("exec"),
        "the log has no commands"
    );

    let needle = "CANARY-";
    assert!(!stdout.contains(needle), "canary on stdout");
    assert!(!stderr.contains(needle), "canary on stderr");
    assert!(
        !std::fs::read_to_string(&log).unwrap().contains(needle),
        "canary in the log"
    );
    assert!(
        !std::fs::read_to_string(&report).unwrap().contains(needle),
        "canary in the report"
    );

    // Controller temp files written during the run (outside this test's own directory).
    let mut tmp = Vec::new();
    files_newer_than(&std::env::temp_dir(), started, dir.path(), &mut tmp);
    for f in tmp {
        if let Ok(b) = std::fs::read(&f) {
            assert!(
                !String::from_utf8_lossy(&b).contains(&canary),
                "canary in a controller temp file: {}",
                f.display()
            );
        }
    }

    for d in lab.devices() {
        // Every process that ran on the device during the run, with its full argv.
        let ps = lab.ps_log(&d.name).unwrap();
        assert!(
            ps.lines().count() > 5,
            "{}: the ps hook captured nothing",
            d.name
        );
        assert!(
            !ps.contains(needle),
            "{}: canary in the device's process list",
            d.name
        );
        // It is where it belongs: the registry credentials in config.toml.
        let cfg = std::fs::read_to_string(d.root.join("etc/aziot/config.toml")).unwrap();
        assert!(
            cfg.contains(&canary),
            "{}: config.toml lacks the registry password",
            d.name
        );
    }
    lab.down().unwrap();
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .unwrap();
    u64::from_le_bytes(b)
}
