//! Air-gapped bootstrap (issue 15, items 3 and 5), end to end on `lab up --bare --airgapped` fleets: a bundle of
//! real `.deb` packages (built with `dpkg-deb`: moby-cli, moby-engine, aziot-identity-service, aziot-edge with
//! real Depends/Pre-Depends) and real `docker save` archives (edgeAgent, edgeHub) takes every bare device to
//! verified IoT Edge in one `bootstrap-airgap.yml` run, with the offline waivers shown; a rerun changes nothing;
//! a tampered or newer-format bundle, a wrong architecture, a missing dependency and a newer installed version
//! are refused before anything is installed on the device concerned.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use edgefleet::lab::{Lab, LabConfig};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{self, repo};
use crate::tools;

const AGENT: &str = "mcr.microsoft.com/azureiotedge-agent:1.5.21";
const HUB: &str = "mcr.microsoft.com/azureiotedge-hub:1.5.21";
const STORE: &str = "var/lib/edgefleet/blobs";

fn sha_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A scratch directory with a signing key, its allowed-signers file, the packages and image archives.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        tools::require("dpkg-deb");
        tools::require("ssh-keygen");
        let s = Site {
            dir: tempfile::tempdir().unwrap(),
        };
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-C", "ops", "-N", "", "-f"])
            .arg(s.p("key"))
            .status()
            .unwrap()
            .success();
        assert!(ok, "ssh-keygen failed");
        let pubkey = fs::read_to_string(s.p("key.pub")).unwrap();
        let pubkey: Vec<&str> = pubkey.split_whitespace().take(2).collect();
        fs::write(
            s.p("allowed_signers"),
            format!(
                "ops@example.com namespaces=\"edgefleet-bundle\" {}\n",
                pubkey.join(" ")
            ),
        )
        .unwrap();
        // The devices' declared base system (a bare lab device has these, see sim::BARE_BASE_SYSTEM).
        fs::write(
            s.p("base.txt"),
            "adduser 3.134\nlibc6 2.36-9+deb12u4\niptables 1.8.9-2\nopenssl 3.0.11-1~deb12u2\n",
        )
        .unwrap();
        s
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A real .deb built with dpkg-deb; `extra` holds more control lines.
    fn deb(&self, name: &str, version: &str, arch: &str, extra: &str) -> PathBuf {
        let root = self.p(&format!("src/{name}-{version}-{arch}"));
        fs::create_dir_all(root.join("DEBIAN")).unwrap();
        fs::create_dir_all(root.join("usr/share/doc").join(name)).unwrap();
        fs::write(
            root.join("usr/share/doc").join(name).join("README"),
            format!("{name} {version}\n"),
        )
        .unwrap();
        fs::write(
            root.join("DEBIAN/control"),
            format!(
                "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: Test <test@example.com>\n{extra}Description: a test package\n built by tests/it/airgap.rs\n"
            ),
        )
        .unwrap();
        let out = self.p(&format!("{name}_{version}_{arch}.deb"));
        let st = Command::new("dpkg-deb")
            .args(["-Zxz", "--root-owner-group", "--build"])
            .arg(&root)
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "dpkg-deb --build failed");
        out
    }

    /// The IoT Edge runtime packages with their real relations: aziot-edge needs the identity service
    /// exactly and an engine; moby-engine needs moby-cli, iptables and libc6 and pre-depends on adduser.
    fn runtime_debs(&self, edge_version: &str, arch: &str) -> Vec<PathBuf> {
        vec![
            self.deb("moby-cli", "24.0.9-1", arch, "Depends: libc6 (>= 2.34)\n"),
            self.deb(
                "moby-engine",
                "24.0.9-1",
                arch,
                "Pre-Depends: adduser\nDepends: moby-cli (= 24.0.9-1), iptables, libc6 (>= 2.34)\n",
            ),
            self.deb(
                "aziot-identity-service",
                "1.5.6-1",
                arch,
                "Depends: libc6 (>= 2.34), openssl\n",
            ),
            self.deb(
                "aziot-edge",
                edge_version,
                arch,
                "Depends: aziot-identity-service (= 1.5.6-1), moby-engine | docker-ce\n",
            ),
        ]
    }

    /// A real `docker save` archive (legacy layout): one layer, its config, manifest.json. Returns the path and
    /// the image ID (the config's SHA-256).
    fn image(&self, file: &str, tag: &str) -> (PathBuf, String) {
        let mut layer = tar::Builder::new(Vec::new());
        let body = format!("#!/bin/sh\necho {tag}\n");
        let mut h = tar::Header::new_ustar();
        h.set_size(body.len() as u64);
        h.set_mode(0o755);
        h.set_cksum();
        layer
            .append_data(&mut h, "app/run.sh", body.as_bytes())
            .unwrap();
        let layer = layer.into_inner().unwrap();
        let diff = sha_hex(&layer);
        let config = format!(
            "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"sha256:{diff}\"]}}}}"
        );
        let id = sha_hex(config.as_bytes());
        let manifest = format!(
            "[{{\"Config\":\"{id}.json\",\"RepoTags\":[\"{tag}\"],\"Layers\":[\"{diff}/layer.tar\"]}}]"
        );
        let path = self.p(file);
        let mut b = tar::Builder::new(fs::File::create(&path).unwrap());
        for (name, data) in [
            (format!("{diff}/VERSION"), b"1.0".to_vec()),
            (format!("{diff}/layer.tar"), layer),
            (format!("{id}.json"), config.into_bytes()),
            ("manifest.json".to_string(), manifest.into_bytes()),
        ] {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, &name, &data[..]).unwrap();
        }
        b.into_inner().unwrap().flush().unwrap();
        (path, format!("sha256:{id}"))
    }

    /// `edgefleet bundle create` of these debs and images, signed with the site key; must succeed.
    fn bundle(&self, out: &str, debs: &[PathBuf], images: &[PathBuf]) -> PathBuf {
        let mut c = support::edgefleet();
        c.current_dir(self.dir.path())
            .args(["bundle", "create", "-o", out, "--sign-key", "key"])
            .args(["--base-system", "base.txt"]);
        for d in debs {
            c.arg("--deb").arg(d);
        }
        for i in images {
            c.arg("--image-tar").arg(i);
        }
        let o = c.stdin(Stdio::null()).output().unwrap();
        assert!(o.status.success(), "bundle create failed: {}", text(&o));
        self.p(out)
    }

    /// The standard site bundle: the runtime debs and the agent and hub images. Returns it and the image IDs.
    fn site_bundle(&self) -> (PathBuf, String, String) {
        let debs = self.runtime_debs("1.5.21-1", "amd64");
        let (agent, agent_id) = self.image("agent.tar", AGENT);
        let (hub, hub_id) = self.image("hub.tar", HUB);
        (
            self.bundle("site.tar", &debs, &[agent, hub]),
            agent_id,
            hub_id,
        )
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn bare_lab(dir: &Path, n: usize) -> Lab {
    let mut cfg = LabConfig::new(dir.join("lab"), n);
    cfg.bare = true;
    cfg.airgapped = true;
    cfg.exe = Some(support::bin());
    Lab::up(&cfg).unwrap_or_else(|e| panic!("lab up failed: {e}"))
}

/// Run bootstrap-airgap.yml against the lab; the JSON report lands in `report`.
fn bootstrap(lab: &Lab, site: &Site, bundle: &Path, report: &Path, extra: &[&str]) -> Output {
    support::edgefleet()
        .current_dir(repo())
        .arg("play")
        .arg("playbooks/bootstrap-airgap.yml")
        .arg("-i")
        .arg(lab.inventory_path())
        .arg("--identity")
        .arg(lab.age_identity_path())
        .arg("-e")
        .arg(format!("bundle={}", bundle.display()))
        .arg("-e")
        .arg(format!(
            "allowed_signers={}",
            site.p("allowed_signers").display()
        ))
        .arg("--report")
        .arg(report)
        .args(["--progress", "plain"])
        .args(extra)
        .output()
        .expect("run edgefleet")
}

fn report(p: &Path) -> Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

/// Run a shell command on a device (as root, no SSH); returns (exit code, stdout).
fn on(lab: &Lab, dev: &str, cmd: &str) -> (i32, String) {
    let o = lab.run_on(dev, cmd).unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// `name version status` of the device's packages among `names`.
fn packages(lab: &Lab, dev: &str) -> String {
    on(
        lab,
        dev,
        "dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\\n' moby-cli moby-engine aziot-identity-service aziot-edge 2>/dev/null",
    )
    .1
}

/// Nothing of the runtime is on the device: no package, no command, no part installed.
fn assert_untouched(lab: &Lab, dev: &str) {
    assert_eq!(packages(lab, dev), "", "{dev}: packages were installed");
    assert_eq!(on(lab, dev, "docker ps").0, 127, "{dev}: docker exists");
    let log = fs::read_to_string(
        lab.device_root(dev)
            .join("var/lib/edgefleet-lab/invocations.log"),
    )
    .unwrap_or_default();
    assert!(
        !log.contains(" dpkg -i") && !log.contains(" apt-mark hold"),
        "{dev}: dpkg -i or apt-mark hold ran:\n{log}"
    );
}

fn set_packages(lab: &Lab, dev: &str, edit: impl Fn(&mut serde_json::Map<String, Value>)) {
    let p = lab
        .device_root(dev)
        .join("var/lib/edgefleet-lab/packages.json");
    let mut m: serde_json::Map<String, Value> =
        serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
    edit(&mut m);
    fs::write(&p, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

/// The fleet of 20 bare, air-gapped devices: one run takes each to verified IoT Edge with the offline checks waived and
/// shown with their reason; the packages are installed, held, the images loaded by their real IDs; a rerun
/// changes nothing in four round trips per device.
#[test]
fn bare_airgapped_fleet_bootstraps_to_verified_and_a_rerun_changes_nothing() {
    let site = Site::new();
    let (bundle, agent_id, hub_id) = site.site_bundle();
    let dir = tempfile::tempdir().unwrap();
    let lab = bare_lab(dir.path(), 20);
    // Bare: no engine, no IoT Edge, no units.
    assert_eq!(on(&lab, "edge-001", "docker ps").0, 127);
    assert_eq!(on(&lab, "edge-001", "iotedge version").0, 127);
    assert_eq!(on(&lab, "edge-001", "systemctl status docker").0, 4);
    assert_eq!(packages(&lab, "edge-001"), "");

    let r1 = dir.path().join("r1.json");
    let o = bootstrap(&lab, &site, &bundle, &r1, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rep = report(&r1);
    assert_eq!(rep["verify"]["passed"], 20, "{}", rep["verify"]);
    let out = text(&o);
    assert!(
        out.contains("verify: 20 of 20 devices production-ready"),
        "{out}"
    );
    assert!(
        out.contains("waived (offline site: the device has no route to IoT Hub): edge-001"),
        "the recap shows the offline waivers with their reason: {out}"
    );
    let mut manual = 0;
    for d in lab.devices() {
        let dev = &d.name;
        assert_eq!(
            packages(&lab, dev),
            "moby-cli 24.0.9-1 hi \nmoby-engine 24.0.9-1 hi \naziot-identity-service 1.5.6-1 hi \naziot-edge 1.5.21-1 hi \n",
            "{dev}: installed and held"
        );
        let (rc, ids) = on(
            &lab,
            dev,
            &format!("docker image inspect --format '{{{{.Id}}}}' {AGENT} {HUB}"),
        );
        assert_eq!(rc, 0, "{dev}");
        assert_eq!(ids, format!("{agent_id}\n{hub_id}\n"), "{dev}: image IDs");
        let config =
            fs::read_to_string(lab.device_root(dev).join("etc/aziot/config.toml")).unwrap();
        assert!(
            config.contains("imagePullPolicy = \"never\""),
            "{dev}: {config}"
        );
        let dv = support::report_device(&rep, dev);
        let checks = dv["verify"]["checks"].as_array().unwrap();
        let amqp = checks
            .iter()
            .find(|c| c["id"] == "host-connect-iothub-amqp")
            .unwrap_or_else(|| panic!("{dev}: no host-connect-iothub-amqp in {dv}"));
        // DPS devices without a hub name do not run the IoT Hub checks (ignored, not waived).
        if d.provisioning == "dps" {
            assert_eq!(amqp["result"], "ignored", "{dev}: {amqp}");
            continue;
        }
        manual += 1;
        assert_eq!(amqp["result"], "waived", "{dev}: {amqp}");
        assert_eq!(
            amqp["waiver"], "offline site: the device has no route to IoT Hub",
            "{dev}"
        );
        assert!(
            amqp["details"][1]
                .as_str()
                .unwrap_or("")
                .contains("Temporary failure in name resolution"),
            "{dev}: the device really could not connect: {amqp}"
        );
    }
    assert!(manual > 0, "no manually provisioned device in the lab");
    // Air-gapped: with the engine installed, a registry is still out of reach.
    let pull = lab
        .run_on(
            "edge-001",
            "docker pull mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5",
        )
        .unwrap();
    assert_eq!(pull.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&pull.stderr).contains("lookup mcr.microsoft.com"),
        "{}",
        text(&pull)
    );

    // Rerun: nothing changes, one probe per task that reads the device.
    let r2 = dir.path().join("r2.json");
    let o = bootstrap(&lab, &site, &bundle, &r2, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rep = report(&r2);
    assert_eq!(rep["totals"]["tasks_changed"], 0, "{}", text(&o));
    assert_eq!(rep["verify"]["passed"], 20);
    for d in lab.devices() {
        let dv = support::report_device(&rep, &d.name);
        assert_eq!(
            dv["round_trips"], 4,
            "{}: store probe, package probe, daemon.json/CA/config facts, verify",
            d.name
        );
        let c = lab.counters(&d.name).unwrap();
        assert_eq!(c.get("config_apply").copied(), Some(1), "{}", d.name);
    }
    lab.down().unwrap();
}

/// One lab, four devices, each with its own problem: a newer aziot-edge already installed (kept, the rest
/// installed; `bundle_allow_downgrade` then downgrades it), an arm64 device (wrong architecture), a device
/// without iptables (missing dependency), and a good one. The refused devices have nothing installed; the
/// others finish.
#[test]
fn wrong_architecture_missing_dependency_and_newer_version_are_handled_per_device() {
    let site = Site::new();
    let (bundle, _, _) = site.site_bundle();
    let dir = tempfile::tempdir().unwrap();
    let lab = bare_lab(dir.path(), 4);
    set_packages(&lab, "edge-001", |m| {
        m.insert("aziot-edge".into(), "1.5.22-1".into());
    });
    fs::write(
        lab.device_root("edge-002")
            .join("var/lib/edgefleet-lab/architecture"),
        "arm64\n",
    )
    .unwrap();
    set_packages(&lab, "edge-003", |m| {
        m.remove("iptables");
    });

    let r1 = dir.path().join("r1.json");
    let o = bootstrap(&lab, &site, &bundle, &r1, &["-v"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let rep = report(&r1);
    let status = |d: &str| support::report_device(&rep, d)["status"].clone();
    let message = |d: &str| {
        support::report_device(&rep, d)["failed_task"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    assert_eq!(status("edge-002"), "failed");
    assert!(
        message("edge-002").starts_with("wrong architecture: the bundle's deb ")
            && message("edge-002")
                .contains(" is for amd64, this device is arm64: nothing was installed"),
        "{}",
        message("edge-002")
    );
    assert_untouched(&lab, "edge-002");

    assert_eq!(status("edge-003"), "failed");
    assert!(
        message("edge-003")
            .contains("missing dependency: deb moby-engine 24.0.9-1 needs `iptables`"),
        "{}",
        message("edge-003")
    );
    assert_untouched(&lab, "edge-003");

    for d in ["edge-001", "edge-004"] {
        assert_ne!(status(d), "failed", "{d}: {}", message(d));
    }
    assert_eq!(
        packages(&lab, "edge-001"),
        "moby-cli 24.0.9-1 hi \nmoby-engine 24.0.9-1 hi \naziot-identity-service 1.5.6-1 hi \naziot-edge 1.5.22-1 hi \n",
        "edge-001 keeps its newer aziot-edge"
    );
    assert!(
        text(&o).contains("kept newer (not downgraded; allow_downgrade: true to downgrade): aziot-edge 1.5.22-1 (bundle has 1.5.21-1)"),
        "{}",
        text(&o)
    );

    // Asked to: the newer version is downgraded to the bundle's.
    let r2 = dir.path().join("r2.json");
    let o = bootstrap(
        &lab,
        &site,
        &bundle,
        &r2,
        &["--limit", "edge-001", "-e", "bundle_allow_downgrade=true"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        packages(&lab, "edge-001").contains("aziot-edge 1.5.21-1 hi"),
        "{}",
        packages(&lab, "edge-001")
    );
    lab.down().unwrap();
}

/// A bundle with a part changed after signing, and a bundle from a newer format version: every device fails
/// on the controller; nothing is sent to a store and nothing is installed.
#[test]
fn tampered_and_newer_format_bundles_are_refused_before_install() {
    let site = Site::new();
    let (bundle, _, _) = site.site_bundle();
    // Flip one byte inside aziot-edge's .deb (same size: only the hash can tell).
    let mut ar = tar::Archive::new(fs::File::open(&bundle).unwrap());
    let mut pos = None;
    let mut manifest = None;
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name.starts_with("debs/aziot-edge_") {
            pos = Some(e.raw_file_position() + e.header().size().unwrap() / 2);
        }
        if name == "manifest.json" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            manifest = Some((e.raw_file_position(), s));
        }
    }
    let original = fs::read(&bundle).unwrap();
    let mut tampered = original.clone();
    let at = usize::try_from(pos.expect("the deb is in the bundle")).unwrap();
    tampered[at] ^= 0xff;
    fs::write(site.p("tampered.tar"), &tampered).unwrap();
    // Same length edit of the manifest in place: format_version 1 -> 9.
    let (mpos, mtext) = manifest.expect("manifest.json is in the bundle");
    let edited = mtext.replacen("\"format_version\": 1", "\"format_version\": 9", 1);
    assert_ne!(edited, mtext, "the edit applies");
    let mut newer = original.clone();
    let mpos = usize::try_from(mpos).unwrap();
    newer[mpos..mpos + edited.len()].copy_from_slice(edited.as_bytes());
    fs::write(site.p("newer.tar"), &newer).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let lab = bare_lab(dir.path(), 2);
    for (file, expect) in [
        ("tampered.tar", "the bundle failed verification"),
        (
            "newer.tar",
            "bundle format version 9 is newer than this edgefleet reads",
        ),
    ] {
        let r = dir.path().join(format!("{file}.json"));
        let o = bootstrap(&lab, &site, &site.p(file), &r, &[]);
        assert_eq!(o.status.code(), Some(2), "{file}: {}", text(&o));
        let rep = report(&r);
        for d in lab.devices() {
            let dv = support::report_device(&rep, &d.name);
            assert_eq!(dv["status"], "failed", "{file} {}", d.name);
            let msg = dv["failed_task"]["message"].as_str().unwrap_or_default();
            assert!(msg.contains(expect), "{file} {}: {msg}", d.name);
            assert_untouched(&lab, &d.name);
            let store = lab.device_root(&d.name).join(STORE);
            let held = fs::read_dir(&store).map(|r| r.count()).unwrap_or(0);
            assert_eq!(held, 0, "{file} {}: parts reached the store", d.name);
        }
    }
    lab.down().unwrap();
}

/// Item 4: `upgrade.yml` moves a bootstrapped fleet to a newer bundle's runtime; the device whose verification
/// fails after the upgrade gets the previous packages and configuration back from its store and fails saying
/// so; the others keep the upgrade, and a rerun changes nothing on them.
#[test]
fn upgrade_moves_the_fleet_and_rolls_back_only_the_device_that_fails_verification() {
    let site = Site::new();
    let (old, _, _) = site.site_bundle();
    let debs = site.runtime_debs("1.5.22-1", "amd64");
    let (agent, agent_id) = site.image(
        "agent-22.tar",
        "mcr.microsoft.com/azureiotedge-agent:1.5.22",
    );
    let (hub, _) = site.image("hub-22.tar", "mcr.microsoft.com/azureiotedge-hub:1.5.22");
    let new = site.bundle("site-22.tar", &debs, &[agent, hub]);
    let dir = tempfile::tempdir().unwrap();
    let lab = bare_lab(dir.path(), 3);
    let o = bootstrap(&lab, &site, &old, &dir.path().join("b.json"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    lab.fault("edge-002", edgefleet::lab::FaultKind::CheckError, None)
        .unwrap();

    let upgrade = |report: &Path| {
        support::edgefleet()
            .current_dir(repo())
            .arg("play")
            .arg("playbooks/upgrade.yml")
            .arg("-i")
            .arg(lab.inventory_path())
            .arg("--identity")
            .arg(lab.age_identity_path())
            .args(["-e", &format!("bundle={}", new.display())])
            .args(["-e", &format!("previous_bundle={}", old.display())])
            .args([
                "-e",
                &format!("allowed_signers={}", site.p("allowed_signers").display()),
            ])
            .args([
                "-e",
                "iotedge_version=1.5.22",
                "-e",
                "previous_iotedge_version=1.5.21",
            ])
            .arg("--report")
            .arg(report)
            .args(["--progress", "plain"])
            .output()
            .expect("run edgefleet")
    };
    let agent_in_config = |dev: &str| {
        let c = fs::read_to_string(lab.device_root(dev).join("etc/aziot/config.toml")).unwrap();
        c.lines()
            .find(|l| l.contains("azureiotedge-agent:"))
            .unwrap_or_default()
            .to_string()
    };
    let r1 = dir.path().join("u1.json");
    let o = upgrade(&r1);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let rep = report(&r1);
    for dev in ["edge-001", "edge-003"] {
        assert_eq!(
            support::report_device(&rep, dev)["status"],
            "changed",
            "{dev}"
        );
        assert!(
            packages(&lab, dev).contains("aziot-edge 1.5.22-1 hi"),
            "{dev}: {}",
            packages(&lab, dev)
        );
        assert!(
            agent_in_config(dev).contains("azureiotedge-agent:1.5.22"),
            "{dev}"
        );
        let (_, id) = on(
            &lab,
            dev,
            "docker image inspect --format '{{.Id}}' mcr.microsoft.com/azureiotedge-agent:1.5.22",
        );
        assert_eq!(id.trim(), agent_id, "{dev}");
    }
    let bad = support::report_device(&rep, "edge-002");
    assert_eq!(bad["status"], "failed");
    let msg = bad["failed_task"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("the upgrade to 1.5.22 failed verification; the previous packages and configuration (1.5.21) were restored from the device store"),
        "{msg}"
    );
    assert!(
        packages(&lab, "edge-002").contains("aziot-edge 1.5.21-1 hi"),
        "{}",
        packages(&lab, "edge-002")
    );
    assert!(agent_in_config("edge-002").contains("azureiotedge-agent:1.5.21"));

    // Rerun: the upgraded devices change nothing (two store probes, the package probe, the config facts, verify).
    let r2 = dir.path().join("u2.json");
    let o = upgrade(&r2);
    assert_eq!(
        o.status.code(),
        Some(2),
        "edge-002 still fails verification: {}",
        text(&o)
    );
    let rep = report(&r2);
    for dev in ["edge-001", "edge-003"] {
        let d = support::report_device(&rep, dev);
        assert_eq!(d["status"], "ok", "{dev}: {d}");
        assert_eq!(d["round_trips"], 5, "{dev}");
    }
    lab.down().unwrap();
}
