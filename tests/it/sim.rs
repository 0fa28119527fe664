//! Behaviour of the simulated device programs, through the real binary (`edgefleet __sim PROGRAM ...`) on a
//! device root confined by `EDGEFLEET_SIM_ROOT`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use edgefleet::lab::sim::{init_device_state, read_counters};
use serde_json::Value;

use crate::support::{edgefleet, fixture};

/// A simulated device on a temporary root.
struct Dev {
    dir: tempfile::TempDir,
    hostname: String,
}

impl Dev {
    fn new(hostname: &str) -> Dev {
        let dir = tempfile::tempdir().unwrap();
        init_device_state(dir.path()).unwrap();
        Dev {
            dir,
            hostname: hostname.to_string(),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, device_path: &str) -> PathBuf {
        self.root().join(device_path.trim_start_matches('/'))
    }

    fn write(&self, device_path: &str, text: impl AsRef<[u8]>) {
        let p = self.path(device_path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn run_as(&self, euid: Option<u32>, args: &[&str]) -> Output {
        let mut c = edgefleet();
        c.arg("__sim")
            .args(args)
            .env("EDGEFLEET_SIM_ROOT", self.root())
            .env("EDGEFLEET_SIM_HOSTNAME", &self.hostname)
            .env_remove("EDGEFLEET_SIM_EUID");
        if let Some(u) = euid {
            c.env("EDGEFLEET_SIM_EUID", u.to_string());
        }
        c.output().unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_as(None, args)
    }

    /// Run and require a given exit code; returns (stdout, stderr).
    fn expect(&self, code: i32, args: &[&str]) -> (String, String) {
        let o = self.run(args);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(
            o.status.code(),
            Some(code),
            "{args:?}\n--- stdout\n{out}\n--- stderr\n{err}"
        );
        (out, err)
    }

    fn counters(&self) -> std::collections::BTreeMap<String, u64> {
        read_counters(self.root()).unwrap()
    }

    fn docker_state(&self) -> Value {
        serde_json::from_slice(&fs::read(self.path("/var/lib/edgefleet-lab/docker.json")).unwrap())
            .unwrap()
    }

    fn check_json(&self, extra: &[&str]) -> (i32, Value) {
        let mut args = vec!["iotedge", "check", "--output", "json"];
        args.extend_from_slice(extra);
        let o = self.run(&args);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(
            out.lines().count(),
            1,
            "JSON output must be ONE line:\n{out}"
        );
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        (o.status.code().unwrap(), v)
    }
}

fn result_of(v: &Value, id: &str) -> String {
    v["checks"][id]["result"]["result"]
        .as_str()
        .unwrap_or_else(|| panic!("no check {id} in {v}"))
        .to_string()
}

fn details_of(v: &Value, id: &str) -> String {
    v["checks"][id]["result"]["details"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or("").to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

const MANUAL_CS: &str = "[provisioning]\nsource = \"manual\"\nconnection_string = \"HostName=lab-hub.azure-devices.net;DeviceId=edge-001;SharedAccessKey=c2VjcmV0a2V5MTIzNDU2Nzg5MDEyMzQ1Ng==\"\n";

#[test]
fn config_apply_fixture_table() {
    let dir = fixture("sim/config");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().map(|e| e == "toml").unwrap_or(false))
        .collect();
    files.sort();
    assert!(files.len() >= 25, "only {} fixtures", files.len());
    let (mut ok, mut bad) = (0, 0);
    for f in files {
        let text = fs::read_to_string(&f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let mut exit = None;
        let mut want_out = Vec::new();
        let mut not_out = Vec::new();
        let mut want_err = Vec::new();
        for line in text.lines().take_while(|l| l.starts_with('#')) {
            if let Some(v) = line.strip_prefix("# exit: ") {
                exit = Some(v.trim().parse::<i32>().unwrap());
            } else if let Some(v) = line.strip_prefix("# stdout: ") {
                want_out.push(v.to_string());
            } else if let Some(v) = line.strip_prefix("# !stdout: ") {
                not_out.push(v.to_string());
            } else if let Some(v) = line.strip_prefix("# stderr: ") {
                want_err.push(v.to_string());
            }
        }
        let exit = exit.unwrap_or_else(|| panic!("{name}: no `# exit:` header"));
        let dev = Dev::new("edge-001");
        dev.write("/etc/aziot/config.toml", &text);
        let o = dev.run(&["iotedge", "config", "apply"]);
        let out = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.code(),
            Some(exit),
            "{name}\n--- stdout\n{out}\n--- stderr\n{err}"
        );
        for w in &want_out {
            assert!(
                out.contains(w.as_str()),
                "{name}: stdout lacks {w:?}\n{out}"
            );
        }
        for w in &not_out {
            assert!(!out.contains(w.as_str()), "{name}: stdout has {w:?}\n{out}");
        }
        for w in &want_err {
            assert!(
                err.contains(w.as_str()),
                "{name}: stderr lacks {w:?}\n{err}"
            );
        }
        let c = dev.counters();
        if exit == 0 {
            ok += 1;
            assert_eq!(c.get("config_apply"), Some(&1), "{name}");
            for (svc, owner_uid) in [
                ("keyd", 990),
                ("certd", 991),
                ("identityd", 992),
                ("tpmd", 993),
                ("edged", 994),
            ] {
                let p = dev.path(&format!("/etc/aziot/{svc}/config.d/00-super.toml"));
                let meta = fs::metadata(&p).unwrap_or_else(|e| panic!("{name}: {svc}: {e}"));
                assert_eq!(meta.mode() & 0o777, 0o600, "{name}: {svc} mode");
                assert_eq!(meta.uid(), owner_uid, "{name}: {svc} owner");
                let body = fs::read_to_string(&p).unwrap();
                assert!(
                    body.starts_with("# This file is auto-generated by `iotedge config apply`\n"),
                    "{name}: {svc} header"
                );
                body.parse::<toml::Table>()
                    .unwrap_or_else(|e| panic!("{name}: {svc} not TOML: {e}"));
            }
        } else {
            bad += 1;
            assert_eq!(c.get("config_apply_failed"), Some(&1), "{name}");
            assert!(
                !dev.path("/etc/aziot/edged/config.d/00-super.toml").exists(),
                "{name}: a failed apply must not write configs"
            );
        }
    }
    assert!(ok >= 10 && bad >= 15, "ok={ok} bad={bad}");
}

#[test]
fn apply_writes_the_device_key_restarts_services_and_never_docker() {
    let dev = Dev::new("edge-001");
    dev.write(
        "/etc/aziot/config.toml",
        format!("{MANUAL_CS}[agent]\nname = \"edgeAgent\"\ntype = \"docker\"\n[agent.config]\nimage = \"mcr.microsoft.com/azureiotedge-agent:1.5.21\"\n[agent.env]\nUpstreamProtocol = \"AmqpWs\"\n"),
    );
    let docker_since = |d: &Dev| -> Value {
        let s: Value = serde_json::from_slice(
            &fs::read(d.path("/var/lib/edgefleet-lab/services.json")).unwrap(),
        )
        .unwrap();
        s["units"]["docker"]["since_ms"].clone()
    };
    let before = docker_since(&dev);
    let (out, _) = dev.expect(0, &["iotedge", "config", "apply"]);
    assert!(out.contains("Warning: the previous identity config file is unreadable"));
    assert!(out.contains("Stopping aziot-edged.service...Stopped!"));
    assert!(out.contains("Starting aziot-edged.service...Started!"));
    let key = dev.path("/var/secrets/aziot/keyd/device-id");
    assert_eq!(fs::read(&key).unwrap(), b"secretkey1234567890123456");
    assert_eq!(fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
    assert_eq!(fs::metadata(&key).unwrap().uid(), 990);

    // An unchanged re-apply still restarts everything (as the device does), without the first-apply warning.
    let (out, _) = dev.expect(0, &["iotedge", "config", "apply"]);
    assert!(!out.contains("previous identity config file is unreadable"));
    let c = dev.counters();
    assert_eq!(c.get("config_apply"), Some(&2));
    assert_eq!(c.get("service_restart"), Some(&2));
    assert_eq!(
        c.get("docker_restart"),
        None,
        "apply must never restart docker"
    );
    assert_eq!(docker_since(&dev), before, "docker was not touched");

    // The restart went through systemctl, visible in the invocation log; no secret in any argv.
    let log = fs::read_to_string(dev.path("/var/lib/edgefleet-lab/invocations.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.ends_with(" systemctl stop aziot-edged.service")),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.ends_with(" iotedge config apply")),
        "{log}"
    );
    assert!(
        !log.contains("c2VjcmV0"),
        "secret leaked into invocations.log"
    );
    for l in log.lines() {
        let mut parts = l.splitn(2, ' ');
        assert!(
            parts.next().unwrap().parse::<u64>().is_ok(),
            "bad line {l:?}"
        );
    }

    // edgeAgent runs the configured image with the configured env.
    let (out, _) = dev.expect(
        0,
        &[
            "docker",
            "inspect",
            "--format",
            "{{.Config.Image}} {{json .Config.Env}}",
            "edgeAgent",
        ],
    );
    assert!(
        out.starts_with("mcr.microsoft.com/azureiotedge-agent:1.5.21 "),
        "{out}"
    );
    assert!(out.contains("\"UpstreamProtocol=AmqpWs\""), "{out}");
    let (out, _) = dev.expect(0, &["iotedge", "list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("STATUS") && lines[0].ends_with("Config"),
        "{out}"
    );
    assert_eq!(
        lines[0],
        "NAME             STATUS           DESCRIPTION      Config"
    );
    assert!(
        lines[1].starts_with("edgeAgent") && lines[1].contains("running"),
        "{out}"
    );
    assert!(lines[2].starts_with("edgeHub"), "{out}");
    let (out, _) = dev.expect(0, &["iotedge", "system", "status"]);
    assert!(
        out.contains("    aziot-edged             Running\n"),
        "{out}"
    );
    assert!(out.contains("    aziot-tpmd              Ready\n"), "{out}");
}

#[test]
fn apply_requires_root_and_the_service_users() {
    let dev = Dev::new("edge-001");
    dev.write("/etc/aziot/config.toml", MANUAL_CS);
    let o = dev.run_as(Some(1000), &["iotedge", "config", "apply"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "Command failed: this command must be run as root\n"
    );
    let passwd = fs::read_to_string(dev.path("/etc/passwd")).unwrap();
    dev.write(
        "/etc/passwd",
        passwd
            .lines()
            .filter(|l| !l.starts_with("aziotcs:"))
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    );
    let (_, err) = dev.expect(1, &["iotedge", "config", "apply"]);
    assert_eq!(
        err,
        "Command failed: could not query aziotcs user information\n"
    );
    let (_, err) = dev.expect(
        1,
        &["iotedge", "config", "apply", "-c", "/etc/aziot/nope.toml"],
    );
    assert!(
        err.contains("could not query aziotcs"),
        "the user check comes first: {err}"
    );
}

#[test]
fn apply_fails_fault_and_missing_file() {
    let dev = Dev::new("edge-001");
    let (_, err) = dev.expect(1, &["iotedge", "config", "apply"]);
    assert_eq!(
        err,
        "Command failed: could not read config file /etc/aziot/config.toml: No such file or directory (os error 2)\n"
    );
    dev.write("/etc/aziot/config.toml", MANUAL_CS);
    dev.write("/var/lib/edgefleet-lab/faults/apply-fails", "");
    let (_, err) = dev.expect(1, &["iotedge", "config", "apply"]);
    assert!(err.contains("No space left on device"), "{err}");
    dev.write(
        "/var/lib/edgefleet-lab/faults/apply-fails",
        "could not create /etc/aziot/keyd/config.d/00-super.toml: lab says no\n",
    );
    let (_, err) = dev.expect(1, &["iotedge", "config", "apply"]);
    assert_eq!(
        err,
        "Command failed: could not create /etc/aziot/keyd/config.d/00-super.toml: lab says no\n"
    );
    assert_eq!(dev.counters().get("config_apply_failed"), Some(&3));
    assert!(!dev.path("/etc/aziot/edged/config.d/00-super.toml").exists());
    fs::remove_file(dev.path("/var/lib/edgefleet-lab/faults/apply-fails")).unwrap();
    dev.expect(
        0,
        &[
            "iotedge",
            "config",
            "apply",
            "--config-file",
            "/etc/aziot/config.toml",
        ],
    );
}

#[test]
fn a_failing_systemctl_inside_apply_is_printed_but_apply_succeeds() {
    let dev = Dev::new("edge-001");
    dev.write("/etc/aziot/config.toml", MANUAL_CS);
    // The engine is down: aziot-edged cannot start, so `systemctl start aziot-edged.service` fails.
    dev.write("/var/lib/edgefleet-lab/faults/docker-down", "");
    let (out, err) = dev.expect(0, &["iotedge", "config", "apply"]);
    assert!(
        out.contains("Azure IoT Edge has been configured successfully!"),
        "{out}"
    );
    assert!(
        out.contains("Starting aziot-edged.service...Job for aziot-edged.service failed"),
        "{out}"
    );
    assert!(out.ends_with("Done.\n"), "{out}");
    assert!(
        err.contains(
            "systemctl exited with non-zero status code.\nstdout:\n=======\nstderr:\n=======\n"
        ),
        "{err}"
    );
    let (out, _) = dev.expect(0, &["iotedge", "system", "status"]);
    assert!(
        out.contains("    aziot-edged             Down - failed"),
        "{out}"
    );
    let (out, _) = dev.expect(
        0,
        &["journalctl", "-u", "aziot-edged.service", "--no-pager"],
    );
    assert!(
        out.contains("Failed to connect to the container runtime"),
        "{out}"
    );
    // Verification afterwards catches it: check reports the engine as unusable.
    let (code, v) = dev.check_json(&[]);
    assert_eq!(code, 1);
    assert_eq!(result_of(&v, "container-engine-uri"), "error");
    assert_eq!(
        result_of(&v, "edge-agent-storage-mounted-from-host"),
        "skipped"
    );
}

#[test]
fn hostname_change_is_refused_while_modules_exist() {
    let dev = Dev::new("edge-001");
    dev.write(
        "/etc/aziot/config.toml",
        format!("hostname = \"edge-001\"\n{MANUAL_CS}"),
    );
    dev.expect(0, &["iotedge", "config", "apply"]);
    dev.write(
        "/etc/aziot/config.toml",
        format!("hostname = \"edge-001.lab\"\n{MANUAL_CS}"),
    );
    let (_, err) = dev.expect(1, &["iotedge", "config", "apply"]);
    // The real binary names the previous hostname first (its format arguments are swapped).
    assert!(
        err.starts_with("Command failed: Cannot apply config because the hostname in the config edge-001 is different from the previous hostname edge-001.lab. To update the hostname, run the following command which deletes all IoT Edge modules"),
        "{err}"
    );
    assert!(err.contains("sudo iotedge system stop && sudo docker rm -f $(sudo docker ps -aq -f \"label=net.azure-devices.edge.owner=Microsoft.Azure.Devices.Edge.Agent\") && sudo iotedge config apply"));
    // The documented way out: stop, remove the modules, apply.
    dev.expect(0, &["iotedge", "system", "stop"]);
    let (ids, _) = dev.expect(
        0,
        &[
            "docker",
            "ps",
            "-aq",
            "-f",
            "label=net.azure-devices.edge.owner=Microsoft.Azure.Devices.Edge.Agent",
        ],
    );
    assert_eq!(ids.lines().count(), 2, "{ids}");
    let mut rm = vec!["docker", "rm", "-f"];
    rm.extend(ids.lines());
    dev.expect(0, &rm);
    dev.expect(0, &["iotedge", "config", "apply"]);
    let (out, _) = dev.expect(0, &["docker", "ps", "--format", "{{.Names}}"]);
    assert!(
        out.contains("edgeAgent"),
        "modules come back after the apply: {out}"
    );
}

/// PKI for a well-provisioned device: a root CA, an Edge CA (CA:TRUE, keyCertSign) signed by it.
struct Pki {
    root_pem: String,
    ca_pem: String,
    ca_key_pem: String,
}

fn make_pki(expired: bool, alg: &'static rcgen::SignatureAlgorithm) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut root = CertificateParams::new(Vec::<String>::new()).unwrap();
    root.distinguished_name
        .push(DnType::CommonName, "edgefleet test root");
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root_cert = root.self_signed(&root_key).unwrap();
    let ca_key = KeyPair::generate_for(alg).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "edgefleet test Edge CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    if expired {
        ca.not_before = rcgen::date_time_ymd(2020, 1, 1);
        ca.not_after = rcgen::date_time_ymd(2021, 1, 1);
    } else {
        ca.not_before = rcgen::date_time_ymd(2024, 1, 1);
        ca.not_after = rcgen::date_time_ymd(2999, 1, 1);
    }
    let issuer = Issuer::new(root, root_key);
    let ca_cert = ca.signed_by(&ca_key, &issuer).unwrap();
    Pki {
        root_pem: root_cert.pem(),
        ca_pem: format!("{}{}", ca_cert.pem(), root_cert.pem()),
        ca_key_pem: ca_key.serialize_pem(),
    }
}

fn chown_mode(p: &Path, uid: u32, gid: u32, mode: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Lay out certs the way the docs recommend: /var/aziot/certs (0755, aziotcs) + /var/aziot/secrets (0700, aziotks).
fn install_pki(dev: &Dev, pki: &Pki) {
    dev.write("/var/aziot/certs/edge-ca.cert.pem", &pki.ca_pem);
    dev.write("/var/aziot/certs/root-ca.cert.pem", &pki.root_pem);
    dev.write("/var/aziot/secrets/edge-ca.key.pem", &pki.ca_key_pem);
    chown_mode(&dev.path("/var/aziot/certs"), 991, 991, 0o755);
    chown_mode(
        &dev.path("/var/aziot/certs/edge-ca.cert.pem"),
        991,
        991,
        0o644,
    );
    chown_mode(
        &dev.path("/var/aziot/certs/root-ca.cert.pem"),
        991,
        991,
        0o644,
    );
    chown_mode(&dev.path("/var/aziot/secrets"), 990, 990, 0o700);
    chown_mode(
        &dev.path("/var/aziot/secrets/edge-ca.key.pem"),
        990,
        990,
        0o600,
    );
    fs::set_permissions(dev.path("/var/aziot"), fs::Permissions::from_mode(0o755)).unwrap();
}

const PRODUCTION_CONFIG: &str = r#"hostname = "edge-001"
trust_bundle_cert = "file:///var/aziot/certs/root-ca.cert.pem"

[provisioning]
source = "manual"
connection_string = "HostName=lab-hub.azure-devices.net;DeviceId=edge-001;SharedAccessKey=c2VjcmV0a2V5MTIzNDU2Nzg5MDEyMzQ1Ng=="

[edge_ca]
cert = "file:///var/aziot/certs/edge-ca.cert.pem"
pk = "file:///var/aziot/secrets/edge-ca.key.pem"

[agent]
name = "edgeAgent"
type = "docker"

[agent.config]
image = "mcr.microsoft.com/azureiotedge-agent:1.5.21"

[agent.config.createOptions.HostConfig]
Binds = ["/srv/iotedge/edgeAgent:/iotedge/storage/edgeAgent"]

[agent.env]
storageFolder = "/iotedge/storage"
"#;

const DEPLOYMENT: &str = r#"{"modulesContent": {"$edgeAgent": {"properties.desired": {
  "schemaVersion": "1.1",
  "runtime": {"type": "docker", "settings": {}},
  "systemModules": {
    "edgeAgent": {"type": "docker", "settings": {"image": "mcr.microsoft.com/azureiotedge-agent:1.5.21", "createOptions": "{}"}},
    "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always",
      "settings": {"image": "mcr.microsoft.com/azureiotedge-hub:1.5.21",
        "createOptions": "{\"HostConfig\":{\"Binds\":[\"/srv/iotedge/edgeHub:/iotedge/storage/edgeHub\"],",
        "createOptions01": "\"PortBindings\":{\"443/tcp\":[{\"HostPort\":\"443\"}]}}}"},
      "env": {"storageFolder": {"value": "/iotedge/storage"}}}
  },
  "modules": {}
}}}}"#;

fn provision_well(dev: &Dev) {
    install_pki(dev, &make_pki(false, &rcgen::PKCS_ECDSA_P256_SHA256));
    dev.write("/etc/aziot/config.toml", PRODUCTION_CONFIG);
    dev.write(
        "/etc/docker/daemon.json",
        r#"{"dns": ["10.0.0.53"], "log-driver": "local", "log-opts": {"max-size": "10m", "max-file": "3"}}"#,
    );
    dev.write("/var/lib/edgefleet-lab/deployment.json", DEPLOYMENT);
    dev.expect(0, &["systemctl", "restart", "docker"]);
    dev.expect(0, &["iotedge", "config", "apply"]);
}

#[test]
fn check_on_a_fresh_device() {
    let dev = Dev::new("edge-001");
    let (code, v) = dev.check_json(&[]);
    assert_eq!(code, 1);
    assert_eq!(result_of(&v, "keyd-config-well-formed"), "error");
    assert_eq!(result_of(&v, "aziot-edged-config-well-formed"), "error");
    assert_eq!(
        details_of(&v, "aziot-edged-config-well-formed"),
        "The IoT Edge daemon's configuration file is not well-formed."
    );
    assert_eq!(result_of(&v, "hostname"), "skipped");
    assert_eq!(result_of(&v, "config-up-to-date"), "ignored");
    assert_eq!(result_of(&v, "container-engine-dns"), "warning");
    assert_eq!(result_of(&v, "container-engine-logrotate"), "warning");
    assert_eq!(result_of(&v, "container-engine-uri"), "skipped");
    // The real shape: result before additional_info, details only on warning/error.
    let dns = v["checks"]["container-engine-dns"].to_string();
    assert!(
        dns.starts_with("{\"result\":{\"result\":\"warning\",\"details\":["),
        "{dns}"
    );
    assert!(v["checks"]["host-local-time"]["result"]
        .get("details")
        .is_none());
    assert_eq!(v["additional_info"]["aziot_edged_version"], "1.5.21");
    let (out, _) = dev.expect(0, &["iotedge", "version"]);
    assert_eq!(out, "iotedge 1.5.21\n");
    assert_eq!(dev.counters().get("iotedge_check"), Some(&1));
}

#[test]
fn check_on_a_well_provisioned_device() {
    let dev = Dev::new("edge-001");
    provision_well(&dev);
    let (code, v) = dev.check_json(&[]);
    let checks = v["checks"].as_object().unwrap();
    let not_ok: Vec<String> = checks
        .iter()
        .filter(|(_, c)| !matches!(c["result"]["result"].as_str(), Some("ok" | "ignored")))
        .map(|(id, c)| format!("{id}: {}", c["result"]))
        .collect();
    assert!(not_ok.is_empty(), "{not_ok:#?}");
    assert_eq!(code, 0);
    for id in [
        "certs-preloaded",
        "key-pairs-read",
        "certs-match-private-keys",
        "certs-read",
        "hostname",
        "container-engine-dns",
        "container-engine-logrotate",
        "edge-agent-storage-mounted-from-host",
        "edge-hub-storage-mounted-from-host",
        "configs-up-to-date",
        "config-up-to-date",
        "container-engine-uri",
        "aziot-version",
        "aziot-edge-version",
        "identityd-running",
    ] {
        assert_eq!(result_of(&v, id), "ok", "{id}");
    }
    assert_eq!(checks.len(), 45);
    assert_eq!(
        v["checks"]["edge-hub-storage-mounted-from-host"]["additional_info"]["storage_directory"],
        "/iotedge/storage/edgeHub"
    );
    assert_eq!(v["additional_info"]["docker_version"], "24.0.9+azure-1");

    // Text output: sections, marks, summary.
    let (out, _) = dev.expect(0, &["iotedge", "check"]);
    assert!(out.starts_with("\nConfiguration checks (aziot-identity-service)\n---------------------------------------------\n√ keyd configuration is well-formed - OK\n"), "{out}");
    assert!(
        out.contains("\nConnectivity checks\n-------------------\n"),
        "{out}"
    );
    assert!(out.ends_with(" check(s) succeeded.\n"), "{out}");

    // Expected versions: a different expected version warns, warnings-as-errors turns it into an error.
    let (code, v) = dev.check_json(&["--expected-aziot-edged-version", "1.5.99"]);
    assert_eq!(code, 0);
    assert_eq!(result_of(&v, "aziot-edge-version"), "warning");
    assert!(details_of(&v, "aziot-edge-version").contains("Installed IoT Edge daemon has version 1.5.21 but 1.5.99 is the latest stable version available."));
    let (code, v) = dev.check_json(&[
        "--expected-aziot-edged-version",
        "1.5.99",
        "--warnings-as-errors",
    ]);
    assert_eq!(code, 1);
    assert_eq!(result_of(&v, "aziot-edge-version"), "error");
    let (code, v) = dev.check_json(&["--dont-run", "aziot-edge-version", "hostname"]);
    assert_eq!(code, 0);
    assert_eq!(result_of(&v, "aziot-edge-version"), "ignored");
    assert_eq!(result_of(&v, "hostname"), "ignored");

    // The check-error fault forces an error on the named check.
    dev.write(
        "/var/lib/edgefleet-lab/faults/check-error",
        "container-engine-dns\n",
    );
    let (code, v) = dev.check_json(&[]);
    assert_eq!(code, 1);
    assert_eq!(result_of(&v, "container-engine-dns"), "error");
    dev.write("/var/lib/edgefleet-lab/faults/check-error", "");
    let (_, v) = dev.check_json(&[]);
    assert_eq!(result_of(&v, "certs-preloaded"), "error");
    fs::remove_file(dev.path("/var/lib/edgefleet-lab/faults/check-error")).unwrap();

    // config.toml edited after apply: both up-to-date checks warn.
    let cfg = dev.path("/etc/aziot/config.toml");
    let f = fs::File::options().append(true).open(&cfg).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .unwrap();
    let (_, v) = dev.check_json(&[]);
    assert_eq!(result_of(&v, "configs-up-to-date"), "warning");
    assert!(details_of(&v, "config-up-to-date").contains("You must run 'iotedge config apply'"));

    // Wrong machine hostname: the hostname rule fails.
    let other = Dev {
        dir: tempfile::tempdir().unwrap(),
        hostname: "edge-999".into(),
    };
    init_device_state(other.root()).unwrap();
    provision_well(&other);
    let (code, v) = other.check_json(&[]);
    assert_eq!(code, 1);
    assert_eq!(result_of(&v, "hostname"), "error");
    assert!(details_of(&v, "hostname")
        .contains("identityd config has hostname edge-001 but device reports hostname edge-999"));
}

#[test]
fn check_on_a_misconfigured_device() {
    let dev = Dev::new("edge-001");
    install_pki(&dev, &make_pki(true, &rcgen::PKCS_ECDSA_P256_SHA256));
    // The key is unreadable by aziotks: owned by root, 0600.
    chown_mode(&dev.path("/var/aziot/secrets/edge-ca.key.pem"), 0, 0, 0o600);
    dev.write("/etc/aziot/config.toml", PRODUCTION_CONFIG);
    dev.write(
        "/etc/docker/daemon.json",
        r#"{"log-driver": "local", "log-opts": {"max-size": "10m", "max-file": 3}}"#,
    );
    dev.expect(0, &["iotedge", "config", "apply"]);
    let (code, v) = dev.check_json(&[]);
    assert_eq!(code, 1);
    assert_eq!(result_of(&v, "container-engine-dns"), "warning");
    assert_eq!(result_of(&v, "container-engine-logrotate"), "error");
    assert!(details_of(&v, "container-engine-logrotate")
        .contains("invalid type: integer `3`, expected a string"));
    assert_eq!(result_of(&v, "certs-preloaded"), "error");
    assert!(
        details_of(&v, "certs-preloaded")
            .contains("'aziot-edged-ca' expired at 2021-01-01 00:00:00 UTC"),
        "{}",
        details_of(&v, "certs-preloaded")
    );
    assert_eq!(result_of(&v, "key-pairs-read"), "error");
    assert!(details_of(&v, "key-pairs-read")
        .contains("could not load preloaded private key with ID \"aziot-edged-ca\""));
    assert_eq!(result_of(&v, "edge-agent-storage-mounted-from-host"), "ok");
    assert_eq!(
        result_of(&v, "edge-hub-storage-mounted-from-host"),
        "warning"
    );

    let (out, _) = dev.expect(1, &["iotedge", "check"]);
    assert!(out.contains("× preloaded certificates are valid - Error\n    'aziot-edged-ca' expired at 2021-01-01 00:00:00 UTC\n"), "{out}");
    assert!(out.contains("‼ DNS server - Warning\n    Container engine is not configured with DNS server setting"), "{out}");
    assert!(
        out.contains("check(s) raised errors. Re-run with --verbose for more details."),
        "{out}"
    );

    // A cert directory aziotcs cannot enter is reported even when the file itself is world-readable.
    let dev2 = Dev::new("edge-001");
    install_pki(&dev2, &make_pki(false, &rcgen::PKCS_ECDSA_P384_SHA384));
    chown_mode(&dev2.path("/var/aziot/certs"), 0, 0, 0o700);
    dev2.write("/etc/aziot/config.toml", PRODUCTION_CONFIG);
    dev2.expect(0, &["iotedge", "config", "apply"]);
    let (_, v) = dev2.check_json(&[]);
    assert_eq!(result_of(&v, "certs-preloaded"), "error");
    assert!(details_of(&v, "certs-preloaded").contains("is not readable by user aziotcs"));
    assert_eq!(result_of(&v, "key-pairs-read"), "warning");
    assert!(details_of(&v, "key-pairs-read")
        .contains("EC key aziot-edged-ca not using recommended curve (recommended: P-256)"));
}

#[test]
fn check_reports_weak_rsa_keys_and_mismatched_pairs() {
    let dev = Dev::new("edge-001");
    install_pki(&dev, &make_pki(false, &rcgen::PKCS_ECDSA_P256_SHA256));
    // Replace the key with a 1024-bit RSA key (a committed test-only fixture): too weak, and not the cert's key.
    let rsa = fs::read(fixture("sim/keys/rsa1024.key.pem")).unwrap();
    dev.write("/var/aziot/secrets/edge-ca.key.pem", rsa);
    chown_mode(
        &dev.path("/var/aziot/secrets/edge-ca.key.pem"),
        990,
        990,
        0o600,
    );
    dev.write("/etc/aziot/config.toml", PRODUCTION_CONFIG);
    dev.expect(0, &["iotedge", "config", "apply"]);
    let (_, v) = dev.check_json(&[]);
    assert_eq!(result_of(&v, "key-pairs-read"), "warning");
    assert!(details_of(&v, "key-pairs-read")
        .contains("RSA key aziot-edged-ca has length 1024 (min recommended: 2048)"));
    assert_eq!(result_of(&v, "certs-match-private-keys"), "error");
}

#[test]
fn running_check_as_non_root_is_fatal() {
    let dev = Dev::new("edge-001");
    dev.write("/etc/aziot/config.toml", MANUAL_CS);
    dev.expect(0, &["iotedge", "config", "apply"]);
    let o = dev.run_as(Some(1000), &["iotedge", "check", "-o", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(result_of(&v, "keyd-config-well-formed"), "fatal");
    assert_eq!(
        v["checks"].as_object().unwrap().len(),
        1,
        "a fatal result stops all checks"
    );
}

#[test]
fn docker_engine_and_daemon_json_lifecycle() {
    let dev = Dev::new("edge-001");
    // Moby, as Microsoft ships it.
    let (out, _) = dev.expect(0, &["docker", "version"]);
    assert!(
        out.contains("\nServer:\n Engine:\n  Version:          24.0.9+azure-1\n"),
        "{out}"
    );
    let (out, _) = dev.expect(
        0,
        &[
            "docker",
            "version",
            "--format",
            "[{{.Server.Platform.Name}}] {{.Server.Version}}",
        ],
    );
    assert_eq!(out, "[] 24.0.9+azure-1\n");
    let (out, _) = dev.expect(0, &["docker", "info", "--format", "{{json .}}"]);
    let info: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["LoggingDriver"], "json-file");
    assert_eq!(info["Name"], "edge-001");
    assert!(info.get("ProductLicense").is_none());

    // daemon.json is read only when the engine restarts; a malformed one makes the restart fail.
    dev.write(
        "/etc/docker/daemon.json",
        r#"{"dns": ["10.0.0.53"], "log-driver": "local""#,
    );
    let (out, _) = dev.expect(0, &["docker", "info", "--format", "{{.LoggingDriver}}"]);
    assert_eq!(out, "json-file\n");
    let (_, err) = dev.expect(1, &["systemctl", "restart", "docker"]);
    assert!(
        err.starts_with(
            "Job for docker.service failed because the control process exited with error code."
        ),
        "{err}"
    );
    let (out, _) = dev.expect(3, &["systemctl", "is-active", "docker"]);
    assert_eq!(out, "failed\n");
    let (_, err) = dev.expect(1, &["docker", "ps"]);
    assert_eq!(err, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n");
    let (out, _) = dev.expect(0, &["journalctl", "-u", "docker", "--no-pager", "-n", "4"]);
    assert!(
        out.contains("unable to configure the Docker daemon with file /etc/docker/daemon.json"),
        "{out}"
    );
    dev.write("/etc/docker/daemon.json", r#"{"dns": ["10.0.0.53"], "log-driver": "local", "log-opts": {"max-size": "10m", "max-file": "3"}}"#);
    dev.expect(0, &["systemctl", "restart", "docker"]);
    let (out, _) = dev.expect(0, &["systemctl", "is-active", "docker"]);
    assert_eq!(out, "active\n");
    assert_eq!(dev.counters().get("docker_restart"), Some(&2));
    assert_eq!(dev.docker_state()["daemon_config"]["log-driver"], "local");

    // Stopping docker: docker.socket restarts it on the next API call, like systemd socket activation.
    let (_, err) = dev.expect(0, &["systemctl", "stop", "docker"]);
    assert!(err.contains("docker.socket"), "{err}");
    dev.expect(3, &["systemctl", "is-active", "docker"]);
    dev.expect(0, &["docker", "ps"]);
    dev.expect(0, &["systemctl", "is-active", "docker"]);
    dev.expect(0, &["systemctl", "stop", "docker.socket", "docker"]);
    dev.expect(1, &["docker", "ps"]);
    dev.expect(0, &["systemctl", "start", "docker.socket", "docker"]);

    // The docker-down fault: every engine call fails.
    dev.write("/var/lib/edgefleet-lab/faults/docker-down", "");
    let (_, err) = dev.expect(1, &["docker", "images"]);
    assert!(err.contains("Is the docker daemon running?"));
    fs::remove_file(dev.path("/var/lib/edgefleet-lab/faults/docker-down")).unwrap();

    // Docker CE identifies itself differently.
    let mut d = dev.docker_state();
    d["engine"]["platform_name"] = "Docker Engine - Community".into();
    d["engine"]["version"] = "26.1.3".into();
    dev.write(
        "/var/lib/edgefleet-lab/docker.json",
        serde_json::to_vec(&d).unwrap(),
    );
    let (out, _) = dev.expect(0, &["docker", "version"]);
    assert!(
        out.contains("\nServer: Docker Engine - Community\n"),
        "{out}"
    );
}

#[test]
fn containers_keep_their_creation_config_until_removed() {
    let dev = Dev::new("edge-001");
    dev.write("/etc/aziot/config.toml", format!("{MANUAL_CS}[agent]\nname = \"edgeAgent\"\ntype = \"docker\"\n[agent.config]\nimage = \"mcr.microsoft.com/azureiotedge-agent:1.5.21\"\n[agent.env]\nA = \"1\"\n"));
    dev.expect(0, &["iotedge", "config", "apply"]);
    let log_cfg = |d: &Dev| {
        d.expect(0, &["docker", "inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}} {{json .HostConfig.Dns}}", "edgeAgent"]).0
    };
    assert_eq!(log_cfg(&dev), "json-file {} []\n");
    dev.write("/etc/docker/daemon.json", r#"{"dns": ["10.0.0.53"], "log-driver": "local", "log-opts": {"max-size": "10m", "max-file": "3"}}"#);
    dev.expect(0, &["systemctl", "restart", "docker"]);
    // New env in config.toml and a new daemon config: the existing container keeps its creation config.
    dev.write("/etc/aziot/config.toml", format!("{MANUAL_CS}[agent]\nname = \"edgeAgent\"\ntype = \"docker\"\n[agent.config]\nimage = \"mcr.microsoft.com/azureiotedge-agent:1.5.21\"\n[agent.env]\nA = \"2\"\n"));
    dev.expect(0, &["iotedge", "config", "apply"]);
    assert_eq!(log_cfg(&dev), "json-file {} []\n");
    let env = dev
        .expect(
            0,
            &[
                "docker",
                "inspect",
                "-f",
                "{{json .Config.Env}}",
                "edgeAgent",
            ],
        )
        .0;
    assert!(env.contains("\"A=1\""), "{env}");
    let old_id = dev
        .expect(0, &["docker", "inspect", "-f", "{{.Id}}", "edgeAgent"])
        .0;
    // Removing it lets aziot-edged recreate it with the current daemon defaults and config.
    let (out, _) = dev.expect(0, &["docker", "rm", "-f", "edgeAgent"]);
    assert_eq!(out, "edgeAgent\n");
    assert_eq!(
        log_cfg(&dev),
        "local {\"max-file\":\"3\",\"max-size\":\"10m\"} [\"10.0.0.53\"]\n"
    );
    let env = dev
        .expect(
            0,
            &[
                "docker",
                "inspect",
                "-f",
                "{{json .Config.Env}}",
                "edgeAgent",
            ],
        )
        .0;
    assert!(env.contains("\"A=2\""), "{env}");
    assert_ne!(
        dev.expect(0, &["docker", "inspect", "-f", "{{.Id}}", "edgeAgent"])
            .0,
        old_id
    );
    let (_, err) = dev.expect(1, &["docker", "inspect", "nosuch"]);
    assert_eq!(err, "Error: No such object: nosuch\n");
    let (_, err) = dev.expect(1, &["docker", "rm", "-f", "nosuch"]);
    assert_eq!(
        err,
        "Error response from daemon: No such container: nosuch\n"
    );
    // Raw inspect is Go-indented JSON.
    let (out, _) = dev.expect(0, &["docker", "inspect", "edgeHub"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["Name"], "/edgeHub");
    assert_eq!(v[0]["State"]["Status"], "running");
    assert!(out.starts_with("[\n    {\n        \"Id\": "), "{out}");
}

#[test]
fn edged_down_and_systemctl_semantics() {
    let dev = Dev::new("edge-001");
    let (_, err) = dev.expect(1, &["iotedge", "list"]);
    assert_eq!(err, "A module runtime error occurred\n");
    let (out, _) = dev.expect(3, &["systemctl", "is-active", "aziot-edged"]);
    assert_eq!(out, "inactive\n");
    // aziot-edged cannot start without its applied config.
    let (_, err) = dev.expect(1, &["systemctl", "start", "aziot-edged"]);
    assert!(err.contains("Job for aziot-edged.service failed"), "{err}");
    let (out, _) = dev.expect(0, &["iotedge", "system", "status"]);
    assert!(
        out.contains("    aziot-edged             Down - failed"),
        "{out}"
    );
    assert!(
        out.contains("aziot-edged is in a bad state because:"),
        "{out}"
    );
    let (out, _) = dev.expect(0, &["systemctl", "is-enabled", "aziot-edged"]);
    assert_eq!(out, "enabled\n");
    let (_, err) = dev.expect(5, &["systemctl", "start", "nginx"]);
    assert_eq!(
        err,
        "Failed to start nginx.service: Unit nginx.service not found.\n"
    );
    let (_, err) = dev.expect(4, &["systemctl", "status", "nginx"]);
    assert_eq!(err, "Unit nginx.service could not be found.\n");
    let o = dev.run_as(Some(1000), &["systemctl", "restart", "docker"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Interactive authentication required"));
    let o = dev.run_as(Some(1000), &["docker", "ps"]);
    assert_eq!(o.status.code(), Some(1), "admin is not in group docker");

    dev.write("/etc/aziot/config.toml", MANUAL_CS);
    dev.expect(0, &["iotedge", "config", "apply"]);
    let (out, _) = dev.expect(0, &["systemctl", "status", "aziot-edged"]);
    assert!(
        out.starts_with("● aziot-edged.service - Azure IoT Edge daemon\n"),
        "{out}"
    );
    assert!(
        out.contains("     Active: active (running) since "),
        "{out}"
    );
    let (out, _) = dev.expect(
        0,
        &["journalctl", "-u", "aziot-edged", "--no-pager", "-n", "1"],
    );
    assert!(
        out.ends_with("systemd[1]: Started Azure IoT Edge daemon.\n"),
        "{out}"
    );
    let (out, _) = dev.expect(0, &["iotedge", "system", "logs"]);
    assert!(
        out.contains("Azure IoT Identity Service") && out.contains("Azure IoT Edge daemon"),
        "{out}"
    );
    let (out, _) = dev.expect(0, &["journalctl", "-u", "nosuch"]);
    assert_eq!(out, "-- No entries --\n");
    dev.expect(0, &["iotedge", "system", "restart"]);
    assert_eq!(dev.counters().get("service_restart"), Some(&2));
    dev.expect(0, &["systemctl", "restart", "aziot-keyd"]);
    assert_eq!(dev.counters().get("service_restart"), Some(&3));
}

/// Run a simulator as a real unprivileged uid (setpriv), as a non-sudo SSH user would on a lab device.
fn run_as_nobody(dev: &Dev, args: &[&str]) -> Output {
    std::process::Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(crate::support::bin())
        .arg("__sim")
        .args(args)
        .env("EDGEFLEET_SIM_ROOT", dev.root())
        .env("EDGEFLEET_SIM_HOSTNAME", &dev.hostname)
        .env_remove("EDGEFLEET_SIM_EUID")
        .output()
        .unwrap()
}

#[test]
fn unprivileged_callers_are_recorded_and_refused_like_on_a_device() {
    let dev = Dev::new("edge-001");
    fs::set_permissions(dev.root(), fs::Permissions::from_mode(0o755)).unwrap();
    dev.write("/etc/aziot/config.toml", MANUAL_CS);
    dev.expect(0, &["iotedge", "config", "apply"]);
    let o = run_as_nobody(&dev, &["docker", "ps"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr)
        .starts_with("permission denied while trying to connect to the Docker daemon socket"));
    let o = run_as_nobody(&dev, &["iotedge", "check", "-o", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(result_of(&v, "keyd-config-well-formed"), "fatal");
    let log = fs::read_to_string(dev.path("/var/lib/edgefleet-lab/invocations.log")).unwrap();
    assert!(
        log.lines().any(|l| l.ends_with(" docker ps")),
        "unprivileged calls are recorded too: {log}"
    );
    // Without write access to the state, programs still run (read-only, unrecorded).
    fs::set_permissions(
        dev.path("/var/lib/edgefleet-lab"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::set_permissions(
        dev.path("/var/lib/edgefleet-lab/counters.lock"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let before = fs::read_to_string(dev.path("/var/lib/edgefleet-lab/invocations.log")).unwrap();
    let o = run_as_nobody(&dev, &["iotedge", "version"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "iotedge 1.5.21\n");
    assert_eq!(
        fs::read_to_string(dev.path("/var/lib/edgefleet-lab/invocations.log")).unwrap(),
        before
    );
}

#[test]
fn docker_images_load_and_volumes() {
    let dev = Dev::new("edge-001");
    dev.write(
        "/tmp/agent.tar",
        "mcr.microsoft.com/azureiotedge-agent:1.5.21\nmcr.microsoft.com/azureiotedge-hub:1.5.21\n",
    );
    let (out, _) = dev.expect(0, &["docker", "load", "-i", "/tmp/agent.tar"]);
    assert_eq!(out, "Loaded image: mcr.microsoft.com/azureiotedge-agent:1.5.21\nLoaded image: mcr.microsoft.com/azureiotedge-hub:1.5.21\n");
    let (out, _) = dev.expect(
        0,
        &["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
    );
    assert!(
        out.contains("mcr.microsoft.com/azureiotedge-agent:1.5.21\n"),
        "{out}"
    );
    let (_, err) = dev.expect(1, &["docker", "load", "-i", "/tmp/nope.tar"]);
    assert_eq!(err, "open /tmp/nope.tar: no such file or directory\n");
    // An air-gapped agent (imagePullPolicy never) runs from the loaded image.
    dev.write(
        "/etc/aziot/config.toml",
        format!("{MANUAL_CS}[agent]\nname = \"edgeAgent\"\ntype = \"docker\"\nimagePullPolicy = \"never\"\n[agent.config]\nimage = \"mcr.microsoft.com/azureiotedge-agent:1.5.21\"\n[agent.config.createOptions.HostConfig]\nBinds = [\"edgeAgentData:/tmp/edgeAgent\"]\n"),
    );
    dev.expect(0, &["iotedge", "config", "apply"]);
    let (out, _) = dev.expect(0, &["docker", "ps", "--format", "{{.Names}} {{.Image}}"]);
    assert!(
        out.contains("edgeAgent mcr.microsoft.com/azureiotedge-agent:1.5.21"),
        "{out}"
    );
    let (out, _) = dev.expect(0, &["docker", "volume", "ls"]);
    assert_eq!(out, "DRIVER    VOLUME NAME\nlocal     edgeAgentData\n");
    let (out, _) = dev.expect(0, &["docker", "ps"]);
    assert!(out.starts_with("CONTAINER ID   IMAGE"), "{out}");
    assert!(out.contains("   edgeAgent\n"), "{out}");
    let (out, _) = dev.expect(
        0,
        &["docker", "images", "--format", "table {{.ID}}\t{{.Tag}}"],
    );
    assert!(out.starts_with("IMAGE ID       TAG\n"), "{out}");
    let (_, err) = dev.expect(64, &["docker", "images", "--format", "{{.Tag"]);
    assert!(!err.is_empty());
    // Named volumes in use are never pruned; an unused one goes with --all.
    let (out, _) = dev.expect(0, &["docker", "volume", "prune", "-f", "--all"]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    dev.expect(0, &["iotedge", "system", "stop"]);
    dev.expect(0, &["docker", "rm", "-f", "edgeAgent"]);
    let (out, _) = dev.expect(0, &["docker", "volume", "prune", "-f", "-a"]);
    assert!(
        out.starts_with("Deleted Volumes:\nedgeAgentData\n"),
        "{out}"
    );
}
