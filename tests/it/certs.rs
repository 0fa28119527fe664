//! `edgefleet certs`: the fleet expiry report against lab devices in a mix of certificate states (it finds
//! exactly the near-expiry, expired, skewed and unreachable devices), issuance that renews exactly the devices
//! that are due and whose output the shipped playbook installs, and the bad inputs, each refused with what to do.

use std::path::Path;
use std::process::Output;

use edgefleet::lab::{FaultKind, Lab, LabConfig};
use serde_json::Value;

use crate::support::{self, repo};

pub(crate) fn lab(dir: &Path, n: usize) -> Lab {
    let mut cfg = LabConfig::new(dir.join("lab"), n);
    cfg.exe = Some(support::bin());
    Lab::up(&cfg).unwrap_or_else(|e| panic!("lab up failed: {e}"))
}

pub(crate) fn out(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub(crate) fn provision(lab: &Lab, extra: &[&str]) {
    let o = support::edgefleet()
        .current_dir(repo())
        .args([
            "play",
            "playbooks/provision.yml",
            "--progress",
            "plain",
            "-i",
        ])
        .arg(lab.inventory_path())
        .arg("--identity")
        .arg(lab.age_identity_path())
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
}

fn certs(lab: &Lab, args: &[&str]) -> Output {
    support::edgefleet()
        .current_dir(repo())
        .arg("certs")
        .args(args)
        .arg("-i")
        .arg(lab.inventory_path())
        .arg("--identity")
        .arg(lab.age_identity_path())
        .output()
        .unwrap()
}

#[test]
fn report_finds_exactly_the_expiring_expired_skewed_and_unreachable_devices() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(dir.path(), 6);
    provision(&lab, &[]);
    lab.fault("edge-002", FaultKind::EdgeCaExpiring, None)
        .unwrap();
    lab.fault("edge-003", FaultKind::EdgeCaExpired, None)
        .unwrap();
    lab.fault("edge-004", FaultKind::ClockSkew, None).unwrap();
    lab.fault("edge-005", FaultKind::Unreachable, None).unwrap();

    let o = certs(&lab, &["report", "--format", "json"]);
    assert_eq!(o.status.code(), Some(11), "{}", out(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = j["certificates"].as_array().unwrap();
    let not_ok: Vec<(String, String, String, i64)> = rows
        .iter()
        .filter(|r| r["status"] != "ok")
        .map(|r| {
            (
                r["host"].as_str().unwrap().into(),
                r["certificate"].as_str().unwrap().into(),
                r["status"].as_str().unwrap().into(),
                r["days_left"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        not_ok,
        [
            ("edge-003".into(), "edge CA".into(), "expired".into(), -5),
            ("edge-002".into(), "edge CA".into(), "warn".into(), 10),
        ],
        "{rows:#?}"
    );
    // Every reachable device reports its Edge CA and trust bundle (and DPS devices their identity), sorted by
    // days left.
    for h in ["edge-001", "edge-002", "edge-003", "edge-004", "edge-006"] {
        for c in ["edge CA", "trust bundle"] {
            assert!(
                rows.iter().any(|r| r["host"] == h && r["certificate"] == c),
                "{h} {c}: {rows:#?}"
            );
        }
    }
    let days: Vec<i64> = rows
        .iter()
        .map(|r| r["days_left"].as_i64().unwrap())
        .collect();
    assert!(days.windows(2).all(|w| w[0] <= w[1]), "{days:?}");
    let problems: Vec<(String, String)> = j["device_problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["host"].as_str().unwrap().into(),
                p["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        problems,
        [
            ("edge-004".into(), "warn".into()),
            ("edge-005".into(), "unreachable".into())
        ],
        "{j:#}"
    );
    let skew = j["device_problems"][0]["message"].as_str().unwrap();
    assert!(skew.contains("1095 days ahead"), "{skew}");
    assert_eq!(j["summary"]["ok"], 2, "{j:#}");
    assert_eq!(j["summary"]["critical"], 1);
    assert_eq!(j["summary"]["unreachable"], 1);

    // The text table starts with the expired Edge CA; CSV has one line per row plus the header.
    let o = certs(&lab, &["report"]);
    assert_eq!(o.status.code(), Some(11), "{}", out(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let first = text.lines().nth(1).unwrap();
    assert!(
        first.starts_with("edge-003") && first.contains("EXPIRED"),
        "{text}"
    );
    assert!(
        text.contains("6 devices: 2 ok, 2 warning, 1 critical, 1 unreachable, 0 failed"),
        "{text}"
    );
    let o = certs(&lab, &["report", "--format", "csv"]);
    let csv = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(csv.lines().count(), 1 + rows.len() + 2, "{csv}");

    // Thresholds decide: 10 days left is ok under --warn-days 5, critical under --critical-days 12.
    let o = certs(
        &lab,
        &[
            "report",
            "--limit",
            "edge-002",
            "--warn-days",
            "5",
            "--critical-days",
            "1",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let o = certs(
        &lab,
        &[
            "report",
            "--limit",
            "edge-002",
            "--warn-days",
            "20",
            "--critical-days",
            "12",
        ],
    );
    assert_eq!(o.status.code(), Some(11), "{}", out(&o));
    let o = certs(
        &lab,
        &["report", "--limit", "edge-002", "--warn-days", "thirty"],
    );
    assert_eq!(o.status.code(), Some(5), "{}", out(&o));
    assert!(
        out(&o).contains("--warn-days `thirty` is not a number of days"),
        "{}",
        out(&o)
    );

    // `none` restores the original Edge CA and the clock: the report is clean again.
    for d in ["edge-002", "edge-003", "edge-004", "edge-005"] {
        lab.fault(d, FaultKind::None, None).unwrap();
    }
    let o = certs(&lab, &["report"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    lab.down().unwrap();
}

/// An issuing CA made with rcgen; the key is written in clear, then encrypted with `edgefleet vault encrypt`.
pub(crate) fn issuing_ca(
    dir: &Path,
    recipients: &Path,
    ca: bool,
    days: i64,
    other_key: bool,
) -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::CommonName, "ops issuing CA");
    p.is_ca = if ca {
        IsCa::Ca(BasicConstraints::Unconstrained)
    } else {
        IsCa::ExplicitNoCa
    };
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1000);
    p.not_after = now + time::Duration::days(days);
    let cert = p.self_signed(&key).unwrap();
    let cert_path = dir.join("ca.cert.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    let key_pem = if other_key {
        KeyPair::generate().unwrap().serialize_pem()
    } else {
        key.serialize_pem()
    };
    let key_path = dir.join("ca.key.pem");
    std::fs::write(&key_path, key_pem).unwrap();
    let o = support::edgefleet()
        .args(["vault", "encrypt"])
        .arg(&key_path)
        .arg("-R")
        .arg(recipients)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", out(&o));
    assert!(!key_path.exists(), "vault encrypt removes the plaintext");
    (
        cert_path.display().to_string(),
        format!("{}.age", key_path.display()),
    )
}

#[test]
fn issue_renews_exactly_the_due_devices_and_the_playbook_installs_them() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(dir.path(), 3);
    let rcpt = lab.dir().join(".age-recipients");
    let (ca, key) = issuing_ca(dir.path(), &rcpt, true, 3650, false);
    let pki = lab.dir().join("pki");
    let cert = |h: &str| pki.join(h).join("edge-ca.cert.pem");
    let before: Vec<Vec<u8>> = ["edge-001", "edge-002", "edge-003"]
        .iter()
        .map(|h| std::fs::read(cert(h)).unwrap())
        .collect();

    // Lab Edge CAs have about a year left: not due under the default --renew-before 30.
    let o = certs(&lab, &["issue", "--ca-cert", &ca, "--ca-key", &key]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        out(&o).contains("0 issued by `ops issuing CA`, 3 kept"),
        "{}",
        out(&o)
    );

    // Due with --renew-before 400: only the --limit host is renewed.
    let args = [
        "issue",
        "--ca-cert",
        &ca,
        "--ca-key",
        &key,
        "--days",
        "700",
        "--renew-before",
        "400",
        "--limit",
        "edge-002",
    ];
    let o = certs(&lab, &args);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        out(&o).contains("edge-002: issued `edge-002 Edge CA`"),
        "{}",
        out(&o)
    );
    assert_eq!(std::fs::read(cert("edge-001")).unwrap(), before[0]);
    assert_eq!(std::fs::read(cert("edge-003")).unwrap(), before[2]);
    let new = std::fs::read(cert("edge-002")).unwrap();
    assert_ne!(new, before[1]);
    let prev = std::fs::read(pki.join("edge-002/edge-ca.cert.pem.prev")).unwrap();
    assert_eq!(prev, before[1], "the previous chain is kept");
    let sealed = std::fs::read_to_string(pki.join("edge-002/edge-ca.key.pem.age")).unwrap();
    assert!(
        sealed.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"),
        "{sealed}"
    );
    // No private key in clear anywhere on the controller side, nor in the output.
    // (The lab's own SSH client key and age identity are in clear by design; the PKI and our files are not.)
    let top = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file());
    for e in walk(&pki).into_iter().chain(top) {
        let b = std::fs::read(&e).unwrap_or_default();
        let t = String::from_utf8_lossy(&b);
        assert!(
            !t.contains("PRIVATE KEY-----"),
            "plaintext key in {}",
            e.display()
        );
    }
    assert!(!out(&o).contains("PRIVATE"));
    // The same run again renews nothing (699 or, within the same second, 700 days left > 400).
    let o = certs(&lab, &args);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        out(&o).contains("edge-002: kept (699 days left")
            || out(&o).contains("edge-002: kept (700 days left"),
        "{}",
        out(&o)
    );
    assert_eq!(std::fs::read(cert("edge-002")).unwrap(), new);

    // The shipped playbook installs it (its pre-flight re-checks chain, key and names) and the report sees it.
    provision(&lab, &[]);
    let on_device = std::fs::read(
        lab.device_root("edge-002")
            .join("var/aziot/certs/edge-ca.cert.pem"),
    )
    .unwrap();
    assert_eq!(on_device, new);
    let o = certs(&lab, &["report", "--format", "json", "--limit", "edge-002"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    let edge = j["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["certificate"] == "edge CA")
        .unwrap()
        .clone();
    assert_eq!(edge["subject"], "edge-002 Edge CA", "{edge}");
    assert!(
        (699..=700).contains(&edge["days_left"].as_i64().unwrap()),
        "{edge}"
    );
    lab.down().unwrap();
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                // Device roots hold installed keys in clear, as a real device does: only the controller side counts.
                if p.file_name().is_some_and(|n| n == "devices") {
                    continue;
                }
                stack.push(p);
            } else if ft.is_file() {
                out.push(p);
            }
        }
    }
    out
}

/// A one-host inventory (never contacted) whose Edge CA paths point into `dir`.
fn offline_inventory(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let id = age::x25519::Identity::generate();
    use age::secrecy::ExposeSecret;
    let idf = dir.join("id.agekey");
    std::fs::write(&idf, format!("{}\n", id.to_string().expose_secret())).unwrap();
    std::fs::write(dir.join(".age-recipients"), format!("{}\n", id.to_public())).unwrap();
    let inv = dir.join("hosts.yml");
    std::fs::write(
        &inv,
        format!(
            "all:\n  hosts:\n    edge-9:\n      ansible_host: 127.0.0.1\n      edge_ca_cert: \"{{{{ inventory_dir }}}}/pki/{{{{ inventory_hostname }}}}/edge-ca.cert.pem\"\n      edge_ca_key: \"{d}/pki/edge-9/edge-ca.key.pem.age\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    (inv, idf)
}

fn issue_offline(inv: &Path, id: &Path, ca: &str, key: &str, extra: &[&str]) -> Output {
    support::edgefleet()
        .args(["certs", "issue", "-i"])
        .arg(inv)
        .arg("--identity")
        .arg(id)
        .args(["--ca-cert", ca, "--ca-key", key])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn bad_issuing_cas_and_thresholds_are_refused_naming_the_file_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let (inv, id) = offline_inventory(dir.path());
    let rcpt = dir.path().join(".age-recipients");
    let cases: [(bool, i64, bool, &str, &str); 3] = [
        (
            false,
            3650,
            false,
            "ca.cert.pem",
            "is not a CA (basicConstraints CA:TRUE is missing)",
        ),
        (true, -2, false, "ca.cert.pem", "renew the issuing CA first"),
        (
            true,
            3650,
            true,
            "ca.key.pem.age",
            "the key does not belong to `ops issuing CA`",
        ),
    ];
    for (ca, days, other_key, file, want) in cases {
        let (c, k) = issuing_ca(dir.path(), &rcpt, ca, days, other_key);
        let o = issue_offline(&inv, &id, &c, &k, &[]);
        assert_eq!(o.status.code(), Some(4), "{}", out(&o));
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(e.contains(file) && e.contains(want), "{e}");
        assert!(
            !dir.path().join("pki/edge-9/edge-ca.cert.pem").exists(),
            "nothing written"
        );
        std::fs::remove_file(&k).unwrap();
    }
    let (c, k) = issuing_ca(dir.path(), &rcpt, true, 3650, false);
    for (flag, v) in [("--renew-before", "soon"), ("--days", "1y")] {
        let o = issue_offline(&inv, &id, &c, &k, &[flag, v]);
        assert_eq!(o.status.code(), Some(5), "{}", out(&o));
        assert!(
            out(&o).contains(&format!("{flag} `{v}` is not a number of days")),
            "{}",
            out(&o)
        );
    }
    let o = issue_offline(
        &inv,
        &id,
        &c,
        &k,
        &["--renew-before", "400", "--days", "365"],
    );
    assert_eq!(o.status.code(), Some(5), "{}", out(&o));
    assert!(out(&o).contains("lower --renew-before"), "{}", out(&o));
    // A key in clear is refused before anything else.
    let o = issue_offline(&inv, &id, &c, &c, &[]);
    assert_eq!(o.status.code(), Some(4), "{}", out(&o));
    assert!(out(&o).contains("must be age-encrypted"), "{}", out(&o));

    // And the good case writes where the inventory says, the key sealed to its recipients.
    let o = issue_offline(&inv, &id, &c, &k, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let chain = std::fs::read_to_string(dir.path().join("pki/edge-9/edge-ca.cert.pem")).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "{chain}");
    let v = support::edgefleet()
        .args(["vault", "view", "--identity"])
        .arg(&id)
        .arg(dir.path().join("pki/edge-9/edge-ca.key.pem.age"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&v.stdout).contains("BEGIN PRIVATE KEY"),
        "{}",
        out(&v)
    );
}
