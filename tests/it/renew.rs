//! Edge CA renewal inside a playbook (`playbooks/renew-edge-ca.yml`, module `edge_ca_renew`) against lab devices
//! in a mix of certificate states: exactly the expiring and expired Edge CAs rotate and verify, a skewed clock
//! is reported and not renewed, a device that rejects its new Edge CA (`edge-ca-rejected`) is rolled back to
//! its previous files byte for byte and reported failed with the reason, check mode changes nothing, and a
//! second run renews nothing. Bad issuing CAs and thresholds stop the run before any device is contacted,
//! naming the file.

use std::path::{Path, PathBuf};
use std::process::Output;

use edgefleet::lab::{FaultKind, Lab};
use serde_json::Value;

use crate::certs::{issuing_ca, lab, out, provision};
use crate::support::{self, repo};

const CERT: &str = "var/aziot/certs/edge-ca.cert.pem";
const KEY: &str = "var/aziot/secrets/edge-ca.key.pem";

/// Run the renewal playbook with the issuing CA; returns the output and the JSON report.
fn renew(lab: &Lab, dir: &Path, ca: &str, key: &str, extra: &[&str]) -> (Output, Value) {
    let ca = format!("edge_ca_renew_ca_cert={ca}");
    let key = format!("edge_ca_renew_ca_pk={key}");
    let mut args = vec!["-e", ca.as_str(), "-e", key.as_str()];
    args.extend_from_slice(extra);
    play(lab, dir, "playbooks/renew-edge-ca.yml", &args)
}

/// Run a shipped playbook on the lab with a JSON report; returns the output and the report.
fn play(lab: &Lab, dir: &Path, playbook: &str, extra: &[&str]) -> (Output, Value) {
    let report = dir.join("play-report.json");
    let _ = std::fs::remove_file(&report);
    let o = support::edgefleet()
        .current_dir(repo())
        .args(["play", playbook, "--progress", "plain", "-i"])
        .arg(lab.inventory_path())
        .arg("--identity")
        .arg(lab.age_identity_path())
        .arg("--report")
        .arg(&report)
        .args(extra)
        .output()
        .unwrap();
    let doc: Value = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| panic!("no report\n{}", out(&o)));
    (o, doc)
}

fn device<'a>(doc: &'a Value, name: &str) -> &'a Value {
    crate::support::report_device(doc, name)
}

fn files(lab: &Lab, h: &str) -> (Vec<u8>, Vec<u8>) {
    let root = lab.device_root(h);
    (
        std::fs::read(root.join(CERT)).unwrap(),
        std::fs::read(root.join(KEY)).unwrap(),
    )
}

fn prev(lab: &Lab, h: &str, rel: &str) -> PathBuf {
    lab.device_root(h).join(format!("{rel}.prev"))
}

/// How many times the device ran `iotedge config apply` (the simulator's counter).
fn applies(lab: &Lab, h: &str) -> u64 {
    let p = lab
        .device_root(h)
        .join("var/lib/edgefleet-lab/counters.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    v["config_apply"].as_u64().unwrap_or(0)
}

fn subject(pem: &[u8]) -> String {
    edgefleet::iotedge::certs::pem_expiries(pem).unwrap()[0]
        .subject
        .clone()
}

#[test]
fn renewal_rotates_exactly_the_due_devices_and_rolls_back_a_rejected_one() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(dir.path(), 5);
    provision(&lab, &[]);
    lab.fault("edge-002", FaultKind::EdgeCaExpiring, None)
        .unwrap();
    lab.fault("edge-003", FaultKind::EdgeCaExpired, None)
        .unwrap();
    lab.fault("edge-004", FaultKind::ClockSkew, None).unwrap();
    lab.fault("edge-005", FaultKind::EdgeCaExpiring, None)
        .unwrap();
    lab.fault("edge-005", FaultKind::EdgeCaRejected, None)
        .unwrap();
    let hosts = ["edge-001", "edge-002", "edge-003", "edge-004", "edge-005"];
    let before: Vec<(Vec<u8>, Vec<u8>)> = hosts.iter().map(|h| files(&lab, h)).collect();
    let rcpt = lab.dir().join(".age-recipients");
    let (ca, key) = issuing_ca(dir.path(), &rcpt, true, 3650, false);

    // Check mode names the devices that would renew and touches nothing.
    let (o, doc) = renew(&lab, dir.path(), &ca, &key, &["--check", "-v"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    for h in ["edge-002", "edge-003", "edge-005"] {
        assert_eq!(device(&doc, h)["status"], "changed", "{h}: {doc:#}");
    }
    assert_eq!(device(&doc, "edge-001")["status"], "ok", "{doc:#}");
    assert_eq!(device(&doc, "edge-004")["status"], "failed", "{doc:#}");
    assert!(
        out(&o).contains("would renew the Edge CA /var/aziot/certs/edge-ca.cert.pem (10 days left <= renew_before 30)"),
        "{}",
        out(&o)
    );
    for (h, b) in hosts.iter().zip(&before) {
        assert_eq!(&files(&lab, h), b, "{h}: check mode changed nothing");
        assert!(!prev(&lab, h, CERT).exists(), "{h}");
    }

    // The real run.
    let applied: Vec<u64> = hosts.iter().map(|h| applies(&lab, h)).collect();
    let (o, doc) = renew(&lab, dir.path(), &ca, &key, &[]);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert_eq!(device(&doc, "edge-001")["status"], "ok", "{doc:#}");
    for (i, h) in hosts.iter().enumerate() {
        let (cert, k) = files(&lab, h);
        match *h {
            "edge-002" | "edge-003" => {
                assert_eq!(device(&doc, h)["status"], "changed", "{h}: {doc:#}");
                assert_ne!(cert, before[i].0, "{h}: renewed");
                assert_ne!(k, before[i].1, "{h}: a fresh key");
                assert_eq!(subject(&cert), format!("{h} Edge CA"));
                let left = edgefleet::iotedge::certs::days_left(
                    edgefleet::iotedge::certs::pem_expiries(&cert).unwrap()[0].not_after,
                    time::OffsetDateTime::now_utc().unix_timestamp(),
                );
                assert!((364..=365).contains(&left), "{h}: {left}");
                // The previous pair is kept beside, byte for byte.
                assert_eq!(std::fs::read(prev(&lab, h, CERT)).unwrap(), before[i].0);
                assert_eq!(std::fs::read(prev(&lab, h, KEY)).unwrap(), before[i].1);
                // The key keeps its mode.
                use std::os::unix::fs::PermissionsExt;
                let m = std::fs::metadata(lab.device_root(h).join(KEY))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(m & 0o777, 0o600, "{h}");
            }
            "edge-005" => {
                let d = device(&doc, h);
                assert_eq!(d["status"], "failed", "{doc:#}");
                let err = d["error"].as_str().unwrap_or_default();
                assert!(
                    err.contains("renewed, verification failed, rolled back: `iotedge check` fails: certs-preloaded: (lab fault)"),
                    "{err}"
                );
                assert!(err.contains("it has 10 days left"), "{err}");
                assert_eq!(cert, before[i].0, "{h}: the original certificate is back");
                assert_eq!(k, before[i].1, "{h}: the original key is back");
            }
            _ => {
                assert_eq!((&cert, &k), (&before[i].0, &before[i].1), "{h}: untouched");
                assert!(!prev(&lab, h, CERT).exists(), "{h}");
            }
        }
    }
    // Renewed devices applied once; the rejected one applied the new pair, then the restored one; the others
    // were not restarted.
    let now_applied: Vec<u64> = hosts.iter().map(|h| applies(&lab, h)).collect();
    let added: Vec<u64> = now_applied
        .iter()
        .zip(&applied)
        .map(|(a, b)| a - b)
        .collect();
    assert_eq!(added, [0, 1, 1, 0, 2], "config applies per device");
    let skew = device(&doc, "edge-004");
    assert_eq!(skew["status"], "failed", "{doc:#}");
    assert!(
        skew["error"].as_str().unwrap_or_default().contains(
            "the device clock is 1095 days ahead of the controller's: the Edge CA was not renewed"
        ),
        "{skew}"
    );
    // No private key in any output.
    assert!(!text.contains("PRIVATE KEY"), "{text}");

    // The renewed devices verify as a whole, and the expiry report sees the new certificates.
    let o = support::edgefleet()
        .current_dir(repo())
        .args(["play", "playbooks/verify.yml", "--progress", "plain", "-i"])
        .arg(lab.inventory_path())
        .arg("--identity")
        .arg(lab.age_identity_path())
        .args(["--limit", "edge-002:edge-003:edge-005"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));

    // A second run renews nothing: the new Edge CAs are a year from expiry. The rejected device is tried
    // again and rolled back again, still with its original files.
    let (o, doc) = renew(&lab, dir.path(), &ca, &key, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    for (i, h) in hosts.iter().enumerate() {
        let want = match *h {
            "edge-004" | "edge-005" => "failed",
            _ => "ok",
        };
        assert_eq!(device(&doc, h)["status"], want, "{h}: {doc:#}");
        if *h != "edge-002" && *h != "edge-003" {
            assert_eq!(files(&lab, h), before[i], "{h}");
        }
    }
    // Once the device accepts new Edge CAs again, it is renewed like the others (here with an RSA key).
    lab.fault("edge-005", FaultKind::None, None).unwrap();
    lab.fault("edge-005", FaultKind::EdgeCaExpiring, None)
        .unwrap();
    let (o, doc) = renew(
        &lab,
        dir.path(),
        &ca,
        &key,
        &[
            "--limit",
            "edge-005",
            "-e",
            "edge_ca_renew_key_type=rsa-2048",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(device(&doc, "edge-005")["status"], "changed", "{doc:#}");
    let (cert, k) = files(&lab, "edge-005");
    assert_eq!(subject(&cert), "edge-005 Edge CA");
    let info = edgefleet::iotedge::certs::check_edge_ca(&cert, &k, 300, &["edge-005"]).unwrap();
    assert_eq!(info.key_type, "RSA 2048");
    assert_eq!(info.chain_len, 2, "the issuing CA's certificate follows");
    lab.down().unwrap();
}

/// A one-host inventory whose device is never contacted (nothing listens on its port).
fn unreachable_inventory(dir: &Path) -> PathBuf {
    let inv = dir.join("hosts.yml");
    std::fs::write(
        &inv,
        "all:\n  hosts:\n    edge-9:\n      ansible_host: 127.0.0.1\n      ansible_port: 9\n",
    )
    .unwrap();
    inv
}

fn renew_offline(inv: &Path, id: &Path, ca: &str, key: &str, extra: &[&str]) -> Output {
    support::edgefleet()
        .current_dir(repo())
        .args(["play", "playbooks/renew-edge-ca.yml", "-i"])
        .arg(inv)
        .arg("--identity")
        .arg(id)
        .args(["-e", &format!("edge_ca_renew_ca_cert={ca}")])
        .args(["-e", &format!("edge_ca_renew_ca_pk={key}")])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn bad_issuing_cas_and_thresholds_stop_the_run_before_any_device_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let inv = unreachable_inventory(dir.path());
    let id = age::x25519::Identity::generate();
    use age::secrecy::ExposeSecret;
    let idf = dir.path().join("id.agekey");
    std::fs::write(&idf, format!("{}\n", id.to_string().expose_secret())).unwrap();
    let rcpt = dir.path().join(".age-recipients");
    std::fs::write(&rcpt, format!("{}\n", id.to_public())).unwrap();
    let cases: [(&str, bool, i64, bool, &str, &str); 3] = [
        (
            "not-a-ca",
            false,
            3650,
            false,
            "ca.cert.pem",
            "is not a CA (basicConstraints CA:TRUE is missing)",
        ),
        (
            "expired",
            true,
            -2,
            false,
            "ca.cert.pem",
            "renew the issuing CA first",
        ),
        (
            "other-key",
            true,
            3650,
            true,
            "ca.key.pem.age",
            "the key does not belong to `ops issuing CA`",
        ),
    ];
    for (name, is_ca, days, other_key, file, want) in cases {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        let (c, k) = issuing_ca(&d, &rcpt, is_ca, days, other_key);
        let o = renew_offline(&inv, &idf, &c, &k, &[]);
        let e = out(&o);
        assert_eq!(o.status.code(), Some(4), "{name}: {e}");
        assert!(
            e.contains(&format!("{name}/{file}")) && e.contains(want),
            "{name}: {e}"
        );
        assert!(
            !e.contains("unreachable") && !e.contains("Connection refused"),
            "{name}: {e}"
        );
    }
    let (c, k) = issuing_ca(dir.path(), &rcpt, true, 3650, false);
    let bad: [(&[&str], &str); 4] = [
        (
            &["-e", "edge_ca_renew_before=thirty"],
            "invalid type: string \"thirty\", expected i64 (at `renew_before`)",
        ),
        (
            &["-e", "edge_ca_renew_before=400"],
            "renew_before = 400 must be 0 or more and less than days = 365",
        ),
        (
            &["-e", "edge_ca_renew_key_type=dsa"],
            "unknown key type `dsa`",
        ),
        (
            &["-e", "edge_ca_renew_days=4000"],
            "days, before an Edge CA valid for days = 4000 would: lower days",
        ),
    ];
    for (extra, want) in bad {
        let o = renew_offline(&inv, &idf, &c, &k, extra);
        let e = out(&o);
        assert_eq!(o.status.code(), Some(4), "{extra:?}: {e}");
        assert!(e.contains(want), "{extra:?}: {e}");
    }
    // A key in clear is refused, naming it.
    let plain = dir.path().join("plain.key.pem");
    std::fs::write(&plain, "-----BEGIN PRIVATE KEY-----\n").unwrap();
    let o = renew_offline(&inv, &idf, &c, &plain.display().to_string(), &[]);
    assert_eq!(o.status.code(), Some(4), "{}", out(&o));
    assert!(
        out(&o).contains("plain.key.pem: the issuing CA's key must be age-encrypted"),
        "{}",
        out(&o)
    );
    // The control: a good issuing CA gets past pre-flight and reaches the (absent) device.
    let o = renew_offline(&inv, &idf, &c, &k, &[]);
    assert_ne!(o.status.code(), Some(4), "{}", out(&o));
    assert!(out(&o).contains("edge-9"), "{}", out(&o));
}

/// Run the maintenance playbook (optionally renewing); returns the output and the JSON report.
fn maintain(lab: &Lab, dir: &Path, extra: &[&str]) -> (Output, Value) {
    play(lab, dir, "playbooks/maintenance.yml", extra)
}

/// The Edge CA findings (`cert.edge_ca.*`) a device's maintenance reported, as `id severity`.
fn edge_ca_findings(doc: &Value, h: &str) -> Vec<String> {
    device(doc, h)["findings"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|f| {
            f["id"]
                .as_str()
                .unwrap_or_default()
                .starts_with("cert.edge_ca")
        })
        .map(|f| format!("{} {}", f["id"].as_str().unwrap_or_default(), f["severity"]))
        .collect()
}

#[test]
fn maintenance_renews_due_edge_cas_only_when_asked_and_then_reports_the_renewed_devices() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(dir.path(), 3);
    provision(&lab, &[]);
    lab.fault("edge-002", FaultKind::EdgeCaExpiring, None)
        .unwrap();
    lab.fault("edge-003", FaultKind::EdgeCaExpired, None)
        .unwrap();
    let hosts = ["edge-001", "edge-002", "edge-003"];
    let before: Vec<(Vec<u8>, Vec<u8>)> = hosts.iter().map(|h| files(&lab, h)).collect();
    let rcpt = lab.dir().join(".age-recipients");
    let (ca, key) = issuing_ca(dir.path(), &rcpt, true, 3650, false);
    let ca_args = [
        "-e".to_string(),
        format!("edge_ca_renew_ca_cert={ca}"),
        "-e".to_string(),
        format!("edge_ca_renew_ca_pk={key}"),
    ];
    let with = |more: &[&str]| -> Vec<String> {
        ca_args
            .iter()
            .cloned()
            .chain(more.iter().map(|s| s.to_string()))
            .collect()
    };

    // Without the switch the playbook stays read-only: it reports the due Edge CAs and renews nothing.
    let args = with(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (o, doc) = maintain(&lab, dir.path(), &args);
    assert_eq!(
        o.status.code(),
        Some(2),
        "the expired Edge CA is critical\n{}",
        out(&o)
    );
    assert!(!edge_ca_findings(&doc, "edge-002").is_empty(), "{doc:#}");
    assert!(!edge_ca_findings(&doc, "edge-003").is_empty(), "{doc:#}");
    assert!(edge_ca_findings(&doc, "edge-001").is_empty(), "{doc:#}");
    for (h, b) in hosts.iter().zip(&before) {
        assert_eq!(
            &files(&lab, h),
            b,
            "{h}: nothing renewed without maintenance_renew_edge_ca"
        );
    }

    // With it: exactly the due Edge CAs rotate, first, so the findings describe the renewed devices.
    let args = with(&["-e", "maintenance_renew_edge_ca=true"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (o, doc) = maintain(&lab, dir.path(), &args);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(device(&doc, "edge-001")["status"], "ok", "{doc:#}");
    for (i, h) in hosts.iter().enumerate() {
        assert!(edge_ca_findings(&doc, h).is_empty(), "{h}: {doc:#}");
        let now = files(&lab, h);
        if *h == "edge-001" {
            assert_eq!(now, before[i], "{h}: not due, untouched");
        } else {
            assert_eq!(device(&doc, h)["status"], "changed", "{h}: {doc:#}");
            assert_ne!(now.0, before[i].0, "{h}: renewed");
            assert_eq!(std::fs::read(prev(&lab, h, CERT)).unwrap(), before[i].0);
        }
    }

    // A second run renews nothing twice.
    let renewed: Vec<(Vec<u8>, Vec<u8>)> = hosts.iter().map(|h| files(&lab, h)).collect();
    let (o, doc) = maintain(&lab, dir.path(), &args);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    for (h, r) in hosts.iter().zip(&renewed) {
        assert_eq!(device(&doc, h)["status"], "ok", "{h}: {doc:#}");
        assert_eq!(&files(&lab, h), r, "{h}");
    }
    lab.down().unwrap();
}
