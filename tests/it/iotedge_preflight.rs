//! IoT Edge configuration is validated before any device is contacted: every rule from the 1.5 sources, the
//! unknown keys the device would silently ignore, production-checklist findings, and Edge CA problems.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use crate::support::{edgefleet, repo};

/// A listener that counts connection attempts: the device must never be contacted.
struct Tripwire {
    port: u16,
    /// The accept loop; it returns the count once it has accepted the stop connection.
    counter: Option<std::thread::JoinHandle<usize>>,
}

/// What the stop connection sends, so that the accept loop can tell it from a device connection.
const TRIPWIRE_STOP: &[u8] = b"tripwire: stop\n";

impl Tripwire {
    fn new() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let counter = std::thread::spawn(move || {
            let mut hits = 0;
            for s in l.incoming() {
                let Ok(mut s) = s else {
                    // A connection that went away before it was accepted still was an attempt.
                    hits += 1;
                    continue;
                };
                // Whatever a device connection sends (an SSH banner, or nothing before it closes) is not the stop
                // message. The timeout only bounds a client that connects and then says nothing.
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut b = Vec::new();
                let _ = (&mut s)
                    .take(TRIPWIRE_STOP.len() as u64)
                    .read_to_end(&mut b);
                if b == TRIPWIRE_STOP {
                    return hits;
                }
                hits += 1;
            }
            hits
        });
        Tripwire {
            port,
            counter: Some(counter),
        }
    }

    /// The final number of connection attempts; call once the client has exited. Every connection it made has
    /// been accepted or waits in the listen backlog, ahead of the stop connection made here: the accept loop
    /// drains them in order and counts each before it reaches the stop connection.
    fn hits(mut self) -> usize {
        self.stop().expect("the tripwire could not be stopped")
    }

    fn stop(&mut self) -> Option<usize> {
        let counter = self.counter.take()?;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.write_all(TRIPWIRE_STOP).ok()?;
        counter.join().ok()
    }
}

impl Drop for Tripwire {
    /// A test that failed before `hits` does not leave the accept loop behind.
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn the_tripwire_counts_connections_still_waiting_to_be_accepted() {
    let trip = Tripwire::new();
    // Connected and gone before the accept loop could have seen them: still counted.
    for _ in 0..3 {
        drop(std::net::TcpStream::connect(("127.0.0.1", trip.port)).unwrap());
    }
    let mut ssh = std::net::TcpStream::connect(("127.0.0.1", trip.port)).unwrap();
    ssh.write_all(b"SSH-2.0-x\r\n").unwrap();
    drop(ssh);
    assert_eq!(trip.hits(), 4);
    assert_eq!(Tripwire::new().hits(), 0);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Run `iotedge_config` with `args` (YAML, indented under the module) on one host behind the tripwire.
fn run_config(args: &str) -> (i32, String, usize) {
    let dir = tempfile::tempdir().unwrap();
    let trip = Tripwire::new();
    let inv = write(
        dir.path(),
        "inv.yml",
        &format!(
            "all:\n  hosts:\n    edge-1:\n      ansible_host: 127.0.0.1\n      ansible_port: {}\n      ansible_ssh_common_args: -o StrictHostKeyChecking=no\n",
            trip.port
        ),
    );
    let pb = write(
        dir.path(),
        "play.yml",
        &format!("- hosts: all\n  gather_facts: false\n  tasks:\n    - name: config\n      iotedge_config:\n{args}\n"),
    );
    let o = edgefleet()
        .arg("play")
        .arg(&pb)
        .arg("-i")
        .arg(&inv)
        .args(["--connect-timeout", "2"])
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        trip.hits(),
    )
}

const GOOD: &str = r#"        hostname: edge-1
        provisioning:
          source: manual
          connection_string: "HostName=h.azure-devices.net;DeviceId=edge-1;SharedAccessKey=YWJjZA=="
        edge_ca:
          cert: file:///var/aziot/certs/edge-ca.cert.pem
          pk: file:///var/aziot/secrets/edge-ca.key.pem
        agent:
          name: edgeAgent
          type: docker
          config:
            image: mcr.microsoft.com/azureiotedge-agent:1.5.21"#;

#[test]
fn every_invalid_case_is_refused_before_contact() {
    // (replace in GOOD, by, expected message)
    let cases: &[(&str, &str, &str)] = &[
        ("hostname: edge-1", "hostnme: edge-1", "unknown key `hostnme` at the top level (did you mean `hostname`?)"),
        ("cert: file:///", "crt: file:///", "unknown key `crt` in [edge_ca] (did you mean `cert`?)"),
        ("source: manual", "source: Manual", "unknown variant `Manual`"),
        (";SharedAccessKey=YWJjZA==", "", "is missing `SharedAccessKey=`"),
        ("pk: file:///var/aziot/secrets/edge-ca.key.pem", "pk: /var/aziot/secrets/edge-ca.key.pem", "bare path is rejected"),
        ("hostname: edge-1", "hostname: edge-1\n        cloud_timeout_sec: 30", "must be at least 70"),
        ("hostname: edge-1", "hostname: edge-1\n        auto_reprovisioning_mode: dynamic", "case-sensitive"),
        ("hostname: edge-1", "hostname: edge-1\n        parent_hostname: gw", "__skip__"),
        ("image: mcr.microsoft.com/azureiotedge-agent:1.5.21", "image: mcr.microsoft.com/azureiotedge-agent:1.5.21\n          env:\n            OptimizeForPerformance: false", "must be a string"),
        ("hostname: edge-1", "hostname: edge-1\n        image_garbage_collection:\n          cleanup_recurrence: 12h", "whole number of days"),
        ("hostname: edge-1", "hostname: edge-1\n        moby_runtime:\n          uri: unix:///var/run/docker.sock", "`moby_runtime.network`: is required"),
        ("        edge_ca:\n          cert: file:///var/aziot/certs/edge-ca.cert.pem\n          pk: file:///var/aziot/secrets/edge-ca.key.pem\n", "", "quickstart CA"),
        ("azureiotedge-agent:1.5.21", "azureiotedge-agent:1.5", "__warn__rolling tag"),
        ("hostname: edge-1", "hostname: edge-1\n        production: true\n        agent_x: 1", "unknown key `agent_x`"),
        ("          name: edgeAgent\n", "", "`agent.name`: is required"),
        ("hostname: edge-1", "hostname: edge-1\n        watchdog:\n          max_retries: -1", "`watchdog.max_retries`"),
        ("hostname: edge-1", "hostname: edge-1\n        listen:\n          min_tls_version: tls1.3", "`listen.workload_uri`: is required"),
    ];
    for (from, to, want) in cases {
        if *want == "__skip__" {
            continue;
        }
        let args = GOOD.replace(from, to);
        assert_ne!(args, GOOD, "case {want:?} did not change the config");
        let (code, out, hits) = run_config(&args);
        if let Some(w) = want.strip_prefix("__warn__") {
            // Without `production: true` a rolling tag is a warning; the run goes on (and finds no device).
            assert!(out.contains(w), "{want}: {out}");
            let (code, out, hits) = run_config(&format!("{args}\n        production: true"));
            assert_eq!((code, hits), (4, 0), "{out}");
            assert!(out.contains(w), "{out}");
            continue;
        }
        assert_eq!(hits, 0, "{want}: the device was contacted");
        assert_eq!(code, 4, "{want}: {out}");
        assert!(out.contains(want), "wanted {want:?} in:\n{out}");
        assert!(out.contains("nothing was contacted"), "{out}");
    }
}

#[test]
fn dps_in_nested_mode_is_refused() {
    let args = r#"        hostname: edge-1
        parent_hostname: gateway-1
        allow_quickstart_ca: true
        provisioning:
          source: dps
          global_endpoint: https://global.azure-devices-provisioning.net
          id_scope: 0ne00000001
          attestation:
            method: tpm
            registration_id: edge-1"#;
    let (code, out, hits) = run_config(args);
    assert_eq!((code, hits), (4, 0), "{out}");
    assert!(
        out.contains("DPS provisioning is not supported in nested mode"),
        "{out}"
    );
}

#[test]
fn expired_or_mismatched_edge_ca_is_refused_before_contact() {
    let dir = tempfile::tempdir().unwrap();
    let trip = Tripwire::new();
    // An expired Edge CA, and a key that belongs to another certificate.
    let mk = |name: &str, days: i64| {
        let root_key = rcgen::KeyPair::generate().unwrap();
        let mut rp = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        rp.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        rp.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        rp.distinguished_name
            .push(rcgen::DnType::CommonName, "root");
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        p.distinguished_name
            .push(rcgen::DnType::CommonName, format!("Edge CA {name}"));
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::days(400);
        p.not_after = now + time::Duration::days(days);
        let issuer = rcgen::Issuer::new(rp, root_key);
        let cert = p.signed_by(&key, &issuer).unwrap();
        write(dir.path(), &format!("{name}.cert.pem"), &cert.pem());
        write(dir.path(), &format!("{name}.key.pem"), &key.serialize_pem());
    };
    mk("expired", -1);
    mk("good", 365);
    mk("other", 365);
    let inv = write(
        dir.path(),
        "inv.yml",
        &format!(
            "all:\n  hosts:\n    expired-1: {{ca: expired, key: expired}}\n    mismatch-1: {{ca: good, key: other}}\n    good-1: {{ca: good, key: good}}\n  vars:\n    ansible_host: 127.0.0.1\n    ansible_port: {}\n",
            trip.port
        ),
    );
    let pb = write(
        dir.path(),
        "play.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - edge_ca:\n        cert: \"{{ playbook_dir }}/{{ ca }}.cert.pem\"\n        key: \"{{ playbook_dir }}/{{ key }}.key.pem\"\n",
    );
    let o = edgefleet()
        .arg("play")
        .arg(&pb)
        .arg("-i")
        .arg(&inv)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert_eq!(trip.hits(), 0, "a device was contacted");
    assert!(err.contains("expired-1: task"), "{err}");
    assert!(err.contains("expired on"), "{err}");
    assert!(err.contains("mismatch-1: task"), "{err}");
    assert!(
        err.contains("does not belong to the Edge CA certificate"),
        "{err}"
    );
    assert!(!err.contains("good-1"), "{err}");
}

#[test]
fn shipped_playbooks_pass_syntax_check_on_the_example_inventory() {
    let identity = repo().join("inventory/example-identity.agekey");
    for pb in ["playbooks/provision.yml", "playbooks/verify.yml"] {
        let o = edgefleet()
            .current_dir(repo())
            .args(["play", pb, "-i", "inventory/example", "--syntax-check"])
            .env("EDGEFLEET_AGE_IDENTITY", &identity)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{pb}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
