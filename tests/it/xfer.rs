//! `bundle_push` end to end (issue 15, item 2): a real bundle (debs built here with `dpkg-deb --build`, blobs of
//! pseudo-random bytes as config templates, signed with a key made by `ssh-keygen`) pushed through `edgefleet
//! play` to lab devices. What the devices hold is read from their roots on the host and hashed here; bytes and
//! round trips come from the run's own jsonl events (`task_result` messages, `host_finished` stats).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use edgefleet::lab::{FaultKind, Lab, LabConfig};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{self, edgefleet};
use crate::tools;

const STORE: &str = "var/lib/edgefleet/blobs";

/// A scratch site: a signing key, its allowed-signers file, a bundle, and the playbook pushing it.
struct Site {
    dir: tempfile::TempDir,
}

/// One part of the bundle as the test knows it.
#[derive(Debug, Clone)]
struct Part {
    sha: String,
    size: u64,
}

fn sha_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic, incompressible bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

impl Site {
    fn new() -> Site {
        tools::require("dpkg-deb");
        tools::require("ssh-keygen");
        let s = Site {
            dir: tempfile::tempdir().unwrap(),
        };
        for key in ["key", "other"] {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-C", key, "-N", "", "-f"])
                .arg(s.p(key))
                .status()
                .unwrap()
                .success();
            assert!(ok, "ssh-keygen failed");
        }
        for (file, key) in [("allowed_signers", "key"), ("other_signers", "other")] {
            let text = fs::read_to_string(s.p(&format!("{key}.pub"))).unwrap();
            let pk: Vec<&str> = text.split_whitespace().take(2).collect();
            fs::write(
                s.p(file),
                format!(
                    "ops@example.com namespaces=\"edgefleet-bundle\" {}\n",
                    pk.join(" ")
                ),
            )
            .unwrap();
        }
        s
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A real .deb (no dependencies).
    fn deb(&self, name: &str, version: &str) -> PathBuf {
        let root = self.p(&format!("src/{name}"));
        fs::create_dir_all(root.join("DEBIAN")).unwrap();
        fs::create_dir_all(root.join("usr/share/doc").join(name)).unwrap();
        fs::write(
            root.join("usr/share/doc").join(name).join("README"),
            noise(20_000, name.len() as u64),
        )
        .unwrap();
        fs::write(
            root.join("DEBIAN/control"),
            format!(
                "Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: Test <t@example.com>\n\
                 Description: test package\n built by tests/it/xfer.rs\n"
            ),
        )
        .unwrap();
        let out = self.p(&format!("{name}_{version}_amd64.deb"));
        let ok = Command::new("dpkg-deb")
            .args(["-Zxz", "--root-owner-group", "--build"])
            .arg(&root)
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "dpkg-deb --build failed");
        out
    }

    /// Build `name` with two debs and blobs of the given sizes; returns its parts.
    fn bundle(&self, name: &str, blobs: &[usize]) -> Vec<Part> {
        let mut files: Vec<(String, PathBuf)> = vec![
            ("--deb".into(), self.deb("aa-runtime", "1.0-1")),
            ("--deb".into(), self.deb("bb-tools", "2.3-4")),
        ];
        for (i, len) in blobs.iter().enumerate() {
            let p = self.p(&format!("{name}-blob{i}.bin"));
            fs::write(&p, noise(*len, i as u64 + 7)).unwrap();
            files.push(("--config-template".into(), p));
        }
        let mut c = edgefleet();
        c.current_dir(self.dir.path())
            .args(["bundle", "create", "-o", name, "--sign-key", "key"]);
        for (flag, p) in &files {
            c.arg(flag).arg(p);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "bundle create: {}", text(&o));
        files
            .iter()
            .map(|(_, p)| {
                let data = fs::read(p).unwrap();
                Part {
                    sha: sha_hex(&data),
                    size: data.len() as u64,
                }
            })
            .collect()
    }

    /// The playbook: one `bundle_push` task.
    fn playbook(&self, bundle: &str, signers: &str) -> PathBuf {
        let p = self.p(&format!("push-{bundle}-{signers}.yml"));
        fs::write(
            &p,
            format!(
                "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: push the bundle\n      bundle_push:\n        \
                 bundle: {}\n        allowed_signers: {}\n",
                self.p(bundle).display(),
                self.p(signers).display()
            ),
        )
        .unwrap();
        p
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn lab(dir: &Path, n: usize) -> Lab {
    let mut cfg = LabConfig::new(dir.join("lab"), n);
    cfg.exe = Some(support::bin());
    Lab::up(&cfg).unwrap_or_else(|e| panic!("lab up failed: {e}"))
}

fn play_cmd(lab: &Lab, playbook: &Path, extra: &[&str]) -> Command {
    let mut c = edgefleet();
    c.arg("play")
        .arg(playbook)
        .arg("-i")
        .arg(lab.inventory_path())
        .arg("--identity")
        .arg(lab.age_identity_path())
        .args(["--output", "jsonl"])
        .args(extra);
    c
}

/// Per host: the task's status and message, and the connection's stats.
#[derive(Debug, Default, Clone)]
struct HostRun {
    status: String,
    msg: String,
    execs: u64,
    bytes_sent: u64,
}

fn play(lab: &Lab, playbook: &Path, extra: &[&str]) -> (BTreeMap<String, HostRun>, String) {
    let o = play_cmd(lab, playbook, extra).output().unwrap();
    let all = text(&o);
    (parse_events(&String::from_utf8_lossy(&o.stdout)), all)
}

fn parse_events(stdout: &str) -> BTreeMap<String, HostRun> {
    let mut hosts: BTreeMap<String, HostRun> = BTreeMap::new();
    for line in stdout.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let host = v["host"].as_str().unwrap_or_default().to_string();
        match v["event"].as_str() {
            Some("task_result") => {
                let h = hosts.entry(host).or_default();
                h.status = v["status"].as_str().unwrap_or_default().to_string();
                h.msg = v["msg"].as_str().unwrap_or_default().to_string();
            }
            Some("host_finished") => {
                let h = hosts.entry(host).or_default();
                h.execs = v["stats"]["execs"].as_u64().unwrap_or(0);
                h.bytes_sent = v["stats"]["bytes_sent"].as_u64().unwrap_or(0);
            }
            _ => {}
        }
    }
    hosts
}

/// `sent N bytes` from the task message.
fn sent(h: &HostRun) -> u64 {
    h.msg
        .strip_prefix("sent ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `sent N bytes` in {h:?}"))
}

/// What a device's store holds of each part: Some(len) of the complete file (hash checked) or partial file.
fn store_state(lab: &Lab, dev: &str, parts: &[Part]) -> Vec<(Option<u64>, Option<u64>)> {
    let store = lab.device_root(dev).join(STORE);
    parts
        .iter()
        .map(|p| {
            let full = fs::read(store.join(&p.sha)).ok().map(|d| {
                assert_eq!(sha_hex(&d), p.sha, "{dev}: stored part has the wrong hash");
                d.len() as u64
            });
            let partial = fs::metadata(store.join(format!("{}.partial", p.sha)))
                .ok()
                .map(|m| m.len());
            (full, partial)
        })
        .collect()
}

fn remaining(state: &[(Option<u64>, Option<u64>)], parts: &[Part]) -> u64 {
    state
        .iter()
        .zip(parts)
        .map(|(s, p)| match s {
            (Some(_), _) => 0,
            (None, Some(n)) => p.size - n,
            (None, None) => p.size,
        })
        .sum()
}

/// Three devices get every part (hashes checked on the device roots); a rerun sends nothing, in one round trip.
#[test]
fn push_to_three_devices_then_rerun_sends_nothing() {
    let s = Site::new();
    let parts = s.bundle("b.tar", &[3 << 20, 700_000]);
    let total: u64 = parts.iter().map(|p| p.size).sum();
    let lab = lab(s.dir.path(), 3);
    let pb = s.playbook("b.tar", "allowed_signers");
    let (run, out) = play(&lab, &pb, &[]);
    assert_eq!(run.len(), 3, "{out}");
    for (dev, h) in &run {
        assert_eq!(h.status, "changed", "{dev}: {out}");
        assert_eq!(sent(h), total, "{dev}: {h:?}");
        assert!(h.bytes_sent >= total, "{dev}: transport counted {h:?}");
        let st = store_state(&lab, dev, &parts);
        assert!(
            st.iter().all(|(f, p)| f.is_some() && p.is_none()),
            "{dev}: {st:?}"
        );
    }
    let (rerun, out) = play(&lab, &pb, &[]);
    for (dev, h) in &rerun {
        assert_eq!(h.status, "ok", "{dev}: {out}");
        assert!(h.msg.contains("already"), "{dev}: {h:?}");
        assert_eq!(h.execs, 1, "{dev}: the rerun is one round trip: {h:?}");
        assert!(h.bytes_sent < 4096, "{dev}: no payload on a rerun: {h:?}");
    }
}

/// A part changed after signing, or a signer the allowed-signers file does not know: every device fails with
/// the verification message and nothing is run on any device.
#[test]
fn bad_bundle_is_refused_before_any_device_is_contacted() {
    let s = Site::new();
    let parts = s.bundle("good.tar", &[100_000]);
    let mut data = fs::read(s.p("good.tar")).unwrap();
    let blob = noise(100_000, 7);
    let at = data
        .windows(64)
        .position(|w| w == &blob[..64])
        .expect("blob in the tar");
    data[at + 1000] ^= 0xff;
    fs::write(s.p("tampered.tar"), &data).unwrap();
    let lab = lab(s.dir.path(), 3);
    for (bundle, signers, words) in [
        (
            "tampered.tar",
            "allowed_signers",
            "the entry was changed after signing",
        ),
        (
            "good.tar",
            "other_signers",
            "is not in the allowed-signers file",
        ),
    ] {
        let (run, out) = play(&lab, &s.playbook(bundle, signers), &[]);
        assert_eq!(run.len(), 3, "{out}");
        for (dev, h) in &run {
            assert_eq!(h.status, "failed", "{dev}: {out}");
            assert_eq!(h.execs, 0, "{dev}: nothing may run: {h:?}");
            let st = store_state(&lab, dev, &parts);
            assert!(st.iter().all(|s| *s == (None, None)), "{dev}: {st:?}");
        }
        for h in run.values() {
            assert!(
                h.msg.contains(words) && h.msg.contains("nothing was sent"),
                "{bundle}: {h:?}"
            );
        }
        assert!(out.contains(bundle), "the message names the bundle: {out}");
    }
}

/// The store fills up mid-part: the task fails saying so, the partial file is kept; with room again, the rerun
/// sends exactly what is missing.
#[test]
fn store_full_mid_transfer_keeps_the_partial_and_resumes() {
    let s = Site::new();
    let parts = s.bundle("b.tar", &[3 << 20]);
    let lab = lab(s.dir.path(), 1);
    let pb = s.playbook("b.tar", "allowed_signers");
    lab.fault("edge-001", FaultKind::StoreFull, None).unwrap();
    let (run, out) = play(&lab, &pb, &[]);
    let h = &run["edge-001"];
    assert_eq!(h.status, "failed", "{out}");
    assert!(
        h.msg.contains("No space left on device") && h.msg.contains("partial file is kept"),
        "{h:?}"
    );
    // `none` copies what the full store held back, as freeing space on a device would leave it.
    lab.fault("edge-001", FaultKind::None, None).unwrap();
    let st = store_state(&lab, "edge-001", &parts);
    let partial = st[2].1.expect("the big part is partial");
    assert!(partial > 0 && partial < parts[2].size, "{st:?}");
    let want = remaining(&st, &parts);
    let (rerun, out) = play(&lab, &pb, &[]);
    let h = &rerun["edge-001"];
    assert_eq!(h.status, "changed", "{out}");
    assert_eq!(sent(h), want, "only the missing bytes: {h:?} {st:?}");
    assert!(h.msg.contains("1 resumed"), "{h:?}");
    let st = store_state(&lab, "edge-001", &parts);
    assert!(st.iter().all(|(f, p)| f.is_some() && p.is_none()), "{st:?}");
}

/// The controller is killed mid-part (the connection drops): the rerun sends only the remainder.
#[test]
fn cut_mid_transfer_then_rerun_sends_the_remainder() {
    let s = Site::new();
    let parts = s.bundle("b.tar", &[96 << 20]);
    let big = parts[2].clone();
    let lab = lab(s.dir.path(), 1);
    let pb = s.playbook("b.tar", "allowed_signers");
    let mut child = play_cmd(&lab, &pb, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = lab
        .device_root("edge-001")
        .join(STORE)
        .join(format!("{}.partial", big.sha));
    let deadline = Instant::now() + Duration::from_secs(120);
    // Wait for the marker: the big part is on its way (at least 4 MiB landed).
    loop {
        let n = fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        if n >= 4 << 20 {
            break;
        }
        assert!(Instant::now() < deadline, "the transfer never started");
        assert!(child.try_wait().unwrap().is_none(), "the run ended first");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The device's upload command ends once it sees the connection gone (stdin EOF).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let o = crate::lab::ssh(
            &lab,
            "edge-001",
            "pgrep -f '[e]dgefleet-bundle-upload' || echo gone",
        );
        if String::from_utf8_lossy(&o.stdout).trim() == "gone" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the upload never ended on the device"
        );
    }
    let st = store_state(&lab, "edge-001", &parts);
    let got = st[2].1.expect("the big part is partial");
    assert!(got >= 4 << 20 && got < big.size, "{st:?}");
    let want = remaining(&st, &parts);
    let (rerun, out) = play(&lab, &pb, &[]);
    let h = &rerun["edge-001"];
    assert_eq!(h.status, "changed", "{out}");
    assert_eq!(sent(h), want, "{h:?} {st:?}");
    assert!(
        want < big.size,
        "only the remainder: {want} of {}",
        big.size
    );
    eprintln!(
        "cut after {got} of {} bytes; the rerun sent {want}",
        big.size
    );
    let st = store_state(&lab, "edge-001", &parts);
    assert!(st.iter().all(|(f, p)| f.is_some() && p.is_none()), "{st:?}");
}

/// Controller memory does not grow with part size: pushing a 128 MiB part to 3 devices peaks at about the same
/// RSS as a 1 MiB part.
#[test]
fn controller_memory_is_flat_in_part_size() {
    let s = Site::new();
    s.bundle("small.tar", &[1 << 20]);
    s.bundle("big.tar", &[128 << 20]);
    let lab = lab(s.dir.path(), 3);
    let rss = s.p("rss");
    let mut peaks = Vec::new();
    for b in ["small.tar", "big.tar"] {
        let o = play_cmd(&lab, &s.playbook(b, "allowed_signers"), &[])
            .env("EDGEFLEET_PEAK_RSS_FILE", &rss)
            .output()
            .unwrap();
        let run = parse_events(&String::from_utf8_lossy(&o.stdout));
        assert!(
            run.values().all(|h| h.status == "changed"),
            "{b}: {}",
            text(&o)
        );
        let kib: u64 = fs::read_to_string(&rss).unwrap().trim().parse().unwrap();
        peaks.push(kib);
    }
    eprintln!(
        "controller peak RSS KiB: 1 MiB part {}, 128 MiB part {}",
        peaks[0], peaks[1]
    );
    assert!(
        peaks[1] < peaks[0] + 16 * 1024,
        "memory grows with the part: {peaks:?}"
    );
}
