//! Proxies and outbound reachability (issue 16 items 3 and 4) against lab devices: a device behind the lab's
//! site proxy gets the systemd drop-ins, `[agent.env] https_proxy` and `AmqpWs`, systemd is reloaded and the
//! proxied units restarted once (a rerun changes and restarts nothing; a drop-in lost by hand is rewritten and
//! only its unit restarted), `iotedge check`'s `proxy-settings` passes, and warns when Moby's differs; the
//! verify matrix has one reachability row per endpoint: healthy devices pass, a device whose firewall drops
//! 5671 fails that row only, a device without DNS fails every row, the proxied device passes through the proxy,
//! and an air-gapped site waives them all with a reason; the proxy's password never reaches an output or a
//! device's argv; a proxy URL that does not parse is refused before any device is contacted (exit 4), naming
//! the host and the variable.

use std::path::Path;
use std::process::Output;

use edgefleet::lab::{FaultKind, Lab, LabConfig};
use serde_json::Value;

use crate::support::{self, repo};

const PASSWORD: &str = "lab-proxy-pw-5xq";
const HUB: &str = "lab-hub.azure-devices.net";

fn out(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn play(lab: &Lab, playbook: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    let o = support::edgefleet()
        .current_dir(repo())
        .args(["play", playbook, "--output", "json", "-i"])
        .arg(lab.inventory_path())
        .arg("--identity")
        .arg(lab.age_identity_path())
        .args(["-e", "verify_reach=true"])
        .args(extra)
        .output()
        .unwrap();
    let text = out(&o);
    let j: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (o.status.code(), j, text)
}

/// Per device: its reachability rows as (id, result, first detail).
fn reach_rows(j: &Value, dev: &str) -> Vec<(String, String, String)> {
    support::report_device(j, dev)["verify"]["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("{dev}: no verify checks"))
        .iter()
        .filter(|c| {
            c["id"]
                .as_str()
                .unwrap_or_default()
                .starts_with("edgefleet-reach-")
        })
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["result"].as_str().unwrap().to_string(),
                c["details"][0].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn check<'a>(j: &'a Value, dev: &str, id: &str) -> &'a Value {
    support::report_device(j, dev)["verify"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{dev}: no {id}"))
}

fn failed(j: &Value) -> Vec<String> {
    j["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "failed")
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect()
}

fn invocations(lab: &Lab, dev: &str, prefix: &str) -> Vec<String> {
    let log = std::fs::read_to_string(
        lab.device_root(dev)
            .join("var/lib/edgefleet-lab/invocations.log"),
    )
    .unwrap_or_default();
    log.lines()
        .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest.to_string()))
        .filter(|l| l.starts_with(prefix))
        .collect()
}

/// A drop-in as the device sees it (/etc/systemd/system is the device's own, not under its root directory).
fn dropin(lab: &Lab, dev: &str, unit: &str) -> Option<String> {
    let o = lab
        .run_on(
            dev,
            &format!("cat /etc/systemd/system/{unit}.service.d/proxy.conf"),
        )
        .unwrap();
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn write_host_vars(lab: &Lab, dev: &str, text: &str) {
    let d: &Path = &lab.dir().join("host_vars").join(dev);
    std::fs::create_dir_all(d).unwrap();
    std::fs::write(d.join("proxy.yml"), text).unwrap();
}

#[test]
fn proxy_dropins_and_reachability_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = LabConfig::new(dir.path().join("lab"), 5);
    cfg.exe = Some(support::bin());
    let lab = Lab::up(&cfg).unwrap_or_else(|e| panic!("lab up failed: {e}"));
    // Odd lab devices are provisioned manually (connection string), even ones by DPS.
    lab.fault("edge-003", FaultKind::PortsBlocked, None)
        .unwrap();
    lab.fault("edge-004", FaultKind::DnsFails, None).unwrap();
    lab.fault("edge-005", FaultKind::BehindProxy, None).unwrap();
    write_host_vars(
        &lab,
        "edge-005",
        &format!("edge_https_proxy: \"http://ops:{PASSWORD}@proxy.edgefleet.lab:3128\"\nedge_no_proxy: \"localhost,127.0.0.1\"\n"),
    );

    let (code, j, text) = play(&lab, "playbooks/provision.yml", &[]);
    assert_eq!(code, Some(2), "{text}");
    assert_eq!(failed(&j), ["edge-003", "edge-004"], "{text}");
    assert!(
        !text.contains(PASSWORD),
        "the proxy password leaked:\n{text}"
    );

    // Healthy devices: every endpoint their configuration needs, reached.
    let ok = |host: &str, why: &str| {
        (
            format!("edgefleet-reach-{host}"),
            "ok".to_string(),
            format!("{host} ({why}): TLS handshake completed in 4 ms"),
        )
    };
    assert_eq!(
        reach_rows(&j, "edge-001"),
        [
            ok(&format!("{HUB}:5671"), "IoT Hub (AMQP)"),
            ok(&format!("{HUB}:443"), "IoT Hub (HTTPS)"),
            ok("mcr.microsoft.com:443", "runtime image registry"),
        ]
    );
    assert_eq!(
        reach_rows(&j, "edge-002"),
        [
            ok("global.azure-devices-provisioning.net:443", "DPS"),
            ok("mcr.microsoft.com:443", "runtime image registry"),
        ]
    );
    // The firewall drops 5671: that row fails, naming the endpoint; the others pass.
    let r = reach_rows(&j, "edge-003");
    assert_eq!(
        r.iter()
            .map(|(id, res, _)| (id.as_str(), res.as_str()))
            .collect::<Vec<_>>(),
        [
            ("edgefleet-reach-lab-hub.azure-devices.net:5671", "error"),
            ("edgefleet-reach-lab-hub.azure-devices.net:443", "ok"),
            ("edgefleet-reach-mcr.microsoft.com:443", "ok"),
        ]
    );
    assert!(
        r[0].2.starts_with(
            "lab-hub.azure-devices.net:5671 (IoT Hub (AMQP)): TCP connection timed out"
        ),
        "{}",
        r[0].2
    );
    // No DNS: every row fails at DNS, each naming its host.
    let r = reach_rows(&j, "edge-004");
    assert_eq!(r.len(), 2);
    for (id, res, detail) in &r {
        assert_eq!(res, "error", "{id}");
        let host = id.trim_start_matches("edgefleet-reach-");
        assert!(detail.starts_with(host), "{detail}");
        assert!(detail.contains("DNS: cannot resolve the host"), "{detail}");
    }
    let f = &support::report_device(&j, "edge-004")["failed_task"];
    assert_eq!(f["module"], "iotedge_verify", "{f}");

    // Behind the proxy: drop-ins for the three units, https_proxy and AmqpWs in config.toml, reached through it.
    for unit in ["docker", "aziot-identityd", "aziot-edged"] {
        let t = dropin(&lab, "edge-005", unit).unwrap_or_else(|| panic!("no drop-in for {unit}"));
        assert!(
            t.contains(&format!(
                "Environment=\"https_proxy=http://ops:{PASSWORD}@proxy.edgefleet.lab:3128\"\n"
            )),
            "{t}"
        );
        assert!(
            t.contains("Environment=\"no_proxy=localhost,127.0.0.1\"\n"),
            "{t}"
        );
        assert!(
            dropin(&lab, "edge-001", unit).is_none(),
            "edge-001 has no proxy"
        );
    }
    let toml =
        std::fs::read_to_string(lab.device_root("edge-005").join("etc/aziot/config.toml")).unwrap();
    assert!(toml.contains("UpstreamProtocol = \"AmqpWs\""), "{toml}");
    assert!(toml.contains("https_proxy = \"http://ops:"), "{toml}");
    let via = "through the proxy http://***@proxy.edgefleet.lab:3128: TLS handshake completed";
    let r = reach_rows(&j, "edge-005");
    assert_eq!(
        r.iter()
            .map(|(id, res, _)| (id.as_str(), res.as_str()))
            .collect::<Vec<_>>(),
        [
            ("edgefleet-reach-lab-hub.azure-devices.net:443", "ok"),
            ("edgefleet-reach-mcr.microsoft.com:443", "ok"),
        ],
        "WebSockets: only 443"
    );
    assert!(r.iter().all(|(_, _, d)| d.contains(via)), "{r:?}");
    assert_eq!(check(&j, "edge-005", "proxy-settings")["result"], "ok");
    assert_eq!(check(&j, "edge-001", "proxy-settings")["result"], "ok");
    assert_eq!(
        invocations(&lab, "edge-005", "systemctl daemon-reload").len(),
        1
    );
    assert_eq!(
        invocations(&lab, "edge-005", "systemctl try-restart"),
        ["systemctl try-restart docker aziot-identityd aziot-edged"]
    );
    assert!(invocations(&lab, "edge-001", "systemctl daemon-reload").is_empty());
    let all = invocations(&lab, "edge-005", "");
    assert!(
        all.iter().any(|l| l.starts_with("curl ")),
        "probes ran on the device"
    );
    assert!(
        !all.iter().any(|l| l.contains(PASSWORD)),
        "the password was in a device argv"
    );

    // A rerun changes nothing and restarts nothing.
    let (code, j, text) = play(&lab, "playbooks/provision.yml", &[]);
    assert_eq!(code, Some(2), "{text}");
    assert_eq!(
        support::report_device(&j, "edge-005")["status"],
        "ok",
        "{text}"
    );
    assert_eq!(
        invocations(&lab, "edge-005", "systemctl daemon-reload").len(),
        1
    );
    assert_eq!(
        invocations(&lab, "edge-005", "systemctl try-restart").len(),
        1
    );

    // Moby's drop-in removed by hand (and loaded): `iotedge check` warns, without printing the password.
    let o = lab
        .run_on(
            "edge-005",
            "rm /etc/systemd/system/docker.service.d/proxy.conf && systemctl daemon-reload",
        )
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let (code, j, text) = play(&lab, "playbooks/verify.yml", &["--limit", "edge-005"]);
    assert_eq!(code, Some(0), "{text}");
    let c = check(&j, "edge-005", "proxy-settings");
    assert_eq!(c["result"], "warning", "{c}");
    let d = c["details"][0].as_str().unwrap();
    assert!(d.contains("and Moby \"\" may need to be identical"), "{d}");
    assert!(
        !text.contains(PASSWORD),
        "the proxy password leaked:\n{text}"
    );
    // The next provision rewrites only that drop-in and restarts only Moby.
    let (_, j, text) = play(&lab, "playbooks/provision.yml", &["--limit", "edge-005"]);
    assert_eq!(
        support::report_device(&j, "edge-005")["status"],
        "changed",
        "{text}"
    );
    assert_eq!(
        invocations(&lab, "edge-005", "systemctl try-restart")
            .last()
            .map(String::as_str),
        Some("systemctl try-restart docker")
    );
    assert_eq!(check(&j, "edge-005", "proxy-settings")["result"], "ok");

    // An air-gapped site waives every reachability row with one reason: reported, never silent.
    let (code, j, text) = play(
        &lab,
        "playbooks/verify.yml",
        &[
            "--limit",
            "edge-003:edge-004",
            "-e",
            r#"{"verify_waivers": {"edgefleet-reach-*": "air-gapped site: no cloud access by design"}}"#,
        ],
    );
    assert_eq!(code, Some(0), "{text}");
    for (dev, id) in [
        ("edge-003", "edgefleet-reach-lab-hub.azure-devices.net:5671"),
        ("edge-004", "edgefleet-reach-mcr.microsoft.com:443"),
    ] {
        let c = check(&j, dev, id);
        assert_eq!(c["result"], "waived", "{c}");
        assert_eq!(
            c["waiver"], "air-gapped site: no cloud access by design",
            "{c}"
        );
    }
    assert_eq!(
        check(
            &j,
            "edge-003",
            "edgefleet-reach-lab-hub.azure-devices.net:443"
        )["result"],
        "ok"
    );
}

#[test]
fn a_bad_proxy_url_is_refused_before_contact() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = LabConfig::new(dir.path().join("lab"), 1);
    cfg.exe = Some(support::bin());
    let lab = Lab::up(&cfg).unwrap_or_else(|e| panic!("lab up failed: {e}"));
    let before = lab.counters("edge-001").unwrap();
    for (url, want) in [
        ("proxy.corp:3128", "edge_https_proxy has no scheme"),
        (
            "http://ops:hunter2-bad-url@proxy.corp:3128/path",
            "edge_https_proxy has a path, query or fragment",
        ),
        (
            "socks5://proxy.corp:1080",
            "edge_https_proxy has scheme `socks5`",
        ),
    ] {
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
            .args(["-e", &format!("edge_https_proxy={url}")])
            .output()
            .unwrap();
        let text = out(&o);
        assert_eq!(o.status.code(), Some(4), "{text}");
        assert!(text.contains("edge-001: task 'iotedge_config"), "{text}");
        assert!(
            text.contains(&format!("`agent.env.https_proxy`: {want}")),
            "{text}"
        );
        assert!(
            text.contains("write it as http://[user:password@]host:port"),
            "{text}"
        );
        assert!(text.contains("nothing was contacted"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
    assert_eq!(
        lab.counters("edge-001").unwrap(),
        before,
        "no device was contacted"
    );
}

/// `edgefleet lint` quotes the source line of a finding: a proxy password in config.toml is masked there too.
#[test]
fn lint_masks_the_proxy_password() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "hostname = \"edge-1\"\n[provisioning]\nsource = \"manual\"\nconnection_string = \"HostName=h.example;DeviceId=d;SharedAccessKey=c2VjcmV0\"\n[agent]\nname = \"edgeAgent\"\ntype = \"docker\"\n[agent.config]\nimage = \"mcr.microsoft.com/azureiotedge-agent:1.5.21\"\n[agent.env]\nhttps_proxy = \"http://u:pw-lint-secret-7@proxy:3128/x\"\nUpstreamProtocol = \"Amqp\"\n",
    )
    .unwrap();
    for format in ["text", "json", "sarif"] {
        let o = support::edgefleet()
            .args(["lint", "--format", format])
            .arg(&cfg)
            .output()
            .unwrap();
        let text = out(&o);
        assert_eq!(o.status.code(), Some(30), "{text}");
        assert!(
            text.contains("edge_https_proxy has a path, query or fragment"),
            "{text}"
        );
        assert!(!text.contains("pw-lint-secret-7"), "{format}: {text}");
    }
}
