//! `edgefleet bundle create|verify|inspect` against real inputs: `.deb` files built here with `dpkg-deb
//! --build` (every compression dpkg offers), image archives in the `docker save` layout built here from real
//! layer tars (legacy and OCI/Docker 25 layouts; no Docker engine), SSH keys made by `ssh-keygen`, and
//! signatures checked both ways with the real `ssh-keygen -Y sign|verify`. Each bad input has its test, with
//! its exit code and the words of its message.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::support::edgefleet;
use crate::tools;

/// A scratch directory with a signing key, its allowed-signers file and a base-system list.
struct Site {
    dir: tempfile::TempDir,
}

/// What one run of edgefleet gave.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Site {
    fn new() -> Site {
        tools::require("dpkg-deb");
        tools::require("ssh-keygen");
        let s = Site {
            dir: tempfile::tempdir().unwrap(),
        };
        s.keygen("key", "");
        s.write(
            "allowed_signers",
            &format!(
                "ops@example.com namespaces=\"edgefleet-bundle\" {}\n",
                s.pubkey("key")
            ),
        );
        s.write("base.txt", "# dpkg-query -W -f='${Package} ${Version} ${Provides}\\n'\nlibc6:amd64 2.36-9+deb12u4\nadduser 3.134\n");
        s
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.p(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        p
    }

    fn keygen(&self, name: &str, passphrase: &str) {
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-C", name, "-N", passphrase, "-f"])
            .arg(self.p(name))
            .status()
            .unwrap()
            .success();
        assert!(ok, "ssh-keygen failed");
    }

    /// `keytype base64` of a key's .pub file.
    fn pubkey(&self, name: &str) -> String {
        let text = fs::read_to_string(self.p(&format!("{name}.pub"))).unwrap();
        text.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Build a real .deb with dpkg-deb. `extra` holds more control lines (`Depends: ...`).
    fn deb(
        &self,
        name: &str,
        version: &str,
        arch: &str,
        extra: &str,
        compression: &str,
    ) -> PathBuf {
        let root = self.p(&format!("src/{name}-{version}"));
        fs::create_dir_all(root.join("DEBIAN")).unwrap();
        fs::create_dir_all(root.join("usr/share/doc").join(name)).unwrap();
        fs::write(
            root.join("usr/share/doc").join(name).join("README"),
            format!("{name} {version}\n"),
        )
        .unwrap();
        let mut control = format!(
            "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: Test <test@example.com>\n"
        );
        control.push_str(extra);
        control.push_str("Description: a test package\n built by tests/it/bundle.rs\n");
        fs::write(root.join("DEBIAN/control"), control).unwrap();
        let out = self.p(&format!("{name}_{version}_{arch}.deb"));
        let st = Command::new("dpkg-deb")
            .arg(format!("-Z{compression}"))
            .arg("--root-owner-group")
            .arg("--build")
            .arg(&root)
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "dpkg-deb --build failed");
        out
    }

    /// The IoT Edge-like set: aziot-edge depends on aziot-identity-service (exact), a virtual package provided
    /// by moby-engine, and libc6 from the base system; moby-engine pre-depends on adduser (base).
    fn edge_debs(&self) -> Vec<PathBuf> {
        vec![
            self.deb(
                "aziot-identity-service",
                "1.5.6-1",
                "amd64",
                "Depends: libc6 (>= 2.34)\n",
                "xz",
            ),
            self.deb(
                "aziot-edge",
                "1.5.21-1",
                "amd64",
                "Depends: aziot-identity-service (= 1.5.6-1), docker-engine | moby-engine (>= 20.10),\n libc6 (>= 2.34)\n",
                "gzip",
            ),
            self.deb(
                "moby-engine",
                "1:25.0.5-1",
                "amd64",
                "Pre-Depends: adduser\nProvides: docker-engine (= 25.0.5)\n",
                "zstd",
            ),
            self.deb("edge-docs", "1.0", "all", "", "none"),
        ]
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = edgefleet();
        c.current_dir(self.dir.path())
            .args(args)
            .env_remove("EDGEFLEET_BUNDLE_KEY_PASSPHRASE");
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.stdin(Stdio::null()).output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Create `out` from the edge debs, one image archive and a template; must succeed.
    fn good_bundle(&self, out: &str) -> PathBuf {
        let debs = self.edge_debs();
        let image = image_archive(
            &self.p("agent.tar"),
            "mcr.microsoft.com/azureiotedge-agent:1.5",
            false,
        );
        let tmpl = self.write(
            "config.toml.j2",
            "hostname = \"{{ inventory_hostname }}\"\n",
        );
        let mut args: Vec<String> = vec!["bundle".into(), "create".into(), "-o".into(), out.into()];
        for d in &debs {
            args.push("--deb".into());
            args.push(d.display().to_string());
        }
        for a in [
            "--image-tar",
            image.to_str().unwrap(),
            "--config-template",
            tmpl.to_str().unwrap(),
            "--sign-key",
            "key",
            "--base-system",
            "base.txt",
        ] {
            args.push(a.into());
        }
        let r = self.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(r.code, 0, "create failed: {}", r.stderr);
        self.p(out)
    }

    fn verify(&self, bundle: &str) -> Run {
        self.run(&[
            "bundle",
            "verify",
            bundle,
            "--allowed-signers",
            "allowed_signers",
        ])
    }
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A tar member for building archives in tests.
fn append(b: &mut tar::Builder<fs::File>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, data).unwrap();
}

/// A real `docker save` archive: one layer tar holding a file, its config (with the layer's diff_id, as
/// Docker writes it) and manifest.json. `oci`: the Docker 25+ layout (blobs/sha256/<hex>, index.json,
/// oci-layout) with the legacy layer path as a symlink into blobs. Returns the path; the image ID is the
/// SHA-256 of the config.
fn image_archive(path: &Path, tag: &str, oci: bool) -> PathBuf {
    let mut layer = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    let body = b"#!/bin/sh\necho edge agent\n";
    h.set_size(body.len() as u64);
    h.set_mode(0o755);
    h.set_entry_type(tar::EntryType::Regular);
    layer
        .append_data(&mut h, "app/agent.sh", &body[..])
        .unwrap();
    let layer = layer.into_inner().unwrap();
    let diff_id = sha256_hex(&layer);
    let config = format!(
        "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{{\"Entrypoint\":[\"/app/agent.sh\"]}},\
         \"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"sha256:{diff_id}\"]}}}}"
    );
    let config_id = sha256_hex(config.as_bytes());
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    let (config_path, layer_path) = if oci {
        append(&mut b, "oci-layout", b"{\"imageLayoutVersion\":\"1.0.0\"}");
        append(&mut b, &format!("blobs/sha256/{diff_id}"), &layer);
        append(
            &mut b,
            &format!("blobs/sha256/{config_id}"),
            config.as_bytes(),
        );
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(
            &mut h,
            format!("{diff_id}/layer.tar"),
            format!("../blobs/sha256/{diff_id}"),
        )
        .unwrap();
        (
            format!("blobs/sha256/{config_id}"),
            format!("blobs/sha256/{diff_id}"),
        )
    } else {
        append(&mut b, &format!("{diff_id}/VERSION"), b"1.0");
        append(&mut b, &format!("{diff_id}/layer.tar"), &layer);
        append(&mut b, &format!("{config_id}.json"), config.as_bytes());
        (format!("{config_id}.json"), format!("{diff_id}/layer.tar"))
    };
    let manifest = format!(
        "[{{\"Config\":\"{config_path}\",\"RepoTags\":[\"{tag}\"],\"Layers\":[\"{layer_path}\"]}}]"
    );
    append(&mut b, "manifest.json", manifest.as_bytes());
    b.into_inner().unwrap().flush().unwrap();
    path.to_path_buf()
}

/// The members of a tar, in order, with their content (test-sized archives only).
fn members(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut ar = tar::Archive::new(fs::File::open(path).unwrap());
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((name, data));
    }
    out
}

/// Write members as a new tar.
fn write_tar(path: &Path, members: &[(String, Vec<u8>)]) {
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    for (n, d) in members {
        append(&mut b, n, d);
    }
    b.into_inner().unwrap().flush().unwrap();
}

#[test]
fn create_verify_inspect_real_debs_and_images() {
    let s = Site::new();
    let bundle = s.good_bundle("site.tar");

    let v = s.verify("site.tar");
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
    assert!(
        v.stdout.contains("signature ok: signed by ops@example.com"),
        "{}",
        v.stdout
    );
    assert!(v.stdout.contains("6 entries"), "{}", v.stdout);
    assert!(
        v.stdout
            .contains("every Depends and Pre-Depends of 4 debs is satisfied"),
        "{}",
        v.stdout
    );

    let i = s.run(&["bundle", "inspect", "site.tar", "--output", "json"]);
    assert_eq!(i.code, 0, "{}", i.stderr);
    let j: serde_json::Value = serde_json::from_str(&i.stdout).unwrap();
    let m = &j["manifest"];
    assert_eq!(m["format_version"], 1);
    assert_eq!(m["architecture"], "amd64");
    let entries = m["entries"].as_array().unwrap();
    let by_name = |n: &str| entries.iter().find(|e| e["name"] == n).unwrap().clone();
    let edge = by_name("aziot-edge");
    assert_eq!(edge["path"], "debs/aziot-edge_1.5.21-1_amd64.deb");
    assert_eq!(
        edge["depends"],
        "aziot-identity-service (= 1.5.6-1), docker-engine | moby-engine (>= 20.10), libc6 (>= 2.34)",
        "Depends comes from the real control file, continuation line folded"
    );
    let moby = by_name("moby-engine");
    assert_eq!(moby["version"], "1:25.0.5-1");
    assert_eq!(moby["path"], "debs/moby-engine_1%3a25.0.5-1_amd64.deb");
    assert_eq!(moby["pre_depends"], "adduser");
    assert_eq!(moby["provides"], "docker-engine (= 25.0.5)");
    assert_eq!(by_name("edge-docs")["architecture"], "all");
    // Sizes and hashes are those of the files given.
    let deb = fs::read(s.p("aziot-edge_1.5.21-1_amd64.deb")).unwrap();
    assert_eq!(edge["sha256"], sha256_hex(&deb));
    assert_eq!(edge["size"], deb.len());
    // The image: its ID is the SHA-256 of its config, as `docker image inspect` reports it.
    let img = by_name("mcr.microsoft.com/azureiotedge-agent");
    assert_eq!(img["version"], "1.5");
    let arch = members(&s.p("agent.tar"));
    let (_, cfg) = arch
        .iter()
        .find(|(n, d)| n.ends_with(".json") && n != "manifest.json" && d.starts_with(b"{"))
        .unwrap();
    assert_eq!(
        img["images"][0]["id"],
        format!("sha256:{}", sha256_hex(cfg))
    );
    assert_eq!(img["images"][0]["architecture"], "amd64");
    assert_eq!(img["images"][0]["layers"], 1);
    assert_eq!(
        by_name("config.toml.j2")["path"],
        "templates/config.toml.j2"
    );
    assert_eq!(j["signature"]["namespace"], "edgefleet-bundle");
    assert_eq!(
        j["install_order"],
        serde_json::json!([
            "aziot-identity-service",
            "edge-docs",
            "moby-engine",
            "aziot-edge"
        ]),
        "each deb after the debs it depends on"
    );

    let t = s.run(&["bundle", "inspect", "site.tar"]);
    assert_eq!(t.code, 0);
    assert!(
        t.stdout
            .contains("Depends: aziot-identity-service (= 1.5.6-1)"),
        "{}",
        t.stdout
    );

    // The layout: manifest, signature, then the entries in manifest order.
    let names: Vec<String> = members(&bundle).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names[0], "manifest.json");
    assert_eq!(names[1], "manifest.json.sig");
    let listed: Vec<&str> = entries
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(&names[2..], &listed[..]);
}

#[test]
fn ssh_keygen_verifies_our_signature() {
    let s = Site::new();
    let bundle = s.good_bundle("b.tar");
    let m = members(&bundle);
    fs::write(s.p("manifest.json"), &m[0].1).unwrap();
    fs::write(s.p("manifest.json.sig"), &m[1].1).unwrap();
    let out = Command::new("ssh-keygen")
        .args([
            "-Y",
            "verify",
            "-f",
            "allowed_signers",
            "-I",
            "ops@example.com",
            "-n",
            "edgefleet-bundle",
            "-s",
            "manifest.json.sig",
        ])
        .current_dir(s.dir.path())
        .stdin(fs::File::open(s.p("manifest.json")).unwrap())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ssh-keygen -Y verify refused: {said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("Good \"edgefleet-bundle\" signature for ops@example.com"),
        "{said}"
    );
}

#[test]
fn we_verify_ssh_keygen_signatures_and_refuse_other_namespaces() {
    let s = Site::new();
    let bundle = s.good_bundle("b.tar");
    let mut m = members(&bundle);
    fs::write(s.p("manifest.json"), &m[0].1).unwrap();
    for (ns, file, expect) in [("edgefleet-bundle", "ok.tar", 0), ("file", "ns.tar", 20)] {
        let _ = fs::remove_file(s.p("manifest.json.sig"));
        let st = Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-f", "key", "-n", ns, "manifest.json"])
            .current_dir(s.dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "ssh-keygen -Y sign failed");
        m[1].1 = fs::read(s.p("manifest.json.sig")).unwrap();
        write_tar(&s.p(file), &m);
        let v = s.verify(file);
        assert_eq!(v.code, expect, "{ns}: {}{}", v.stdout, v.stderr);
        if expect == 20 {
            assert!(
                v.stderr
                    .contains("namespace `file`, not `edgefleet-bundle`"),
                "{}",
                v.stderr
            );
        }
    }
}

#[test]
fn tampered_entry_is_named_with_its_hash() {
    let s = Site::new();
    let bundle = s.good_bundle("b.tar");
    // Flip one byte inside aziot-edge's .deb, in place (same size: only the hash can tell).
    let mut ar = tar::Archive::new(fs::File::open(&bundle).unwrap());
    let mut pos = None;
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        if e.path()
            .unwrap()
            .to_string_lossy()
            .starts_with("debs/aziot-edge_")
        {
            pos = Some(e.raw_file_position() + e.header().size().unwrap() / 2);
        }
    }
    let mut bytes = fs::read(&bundle).unwrap();
    let at = usize::try_from(pos.expect("the deb is in the bundle")).unwrap();
    bytes[at] ^= 0xff;
    fs::write(&bundle, &bytes).unwrap();
    let v = s.verify("b.tar");
    assert_eq!(v.code, 21, "{}{}", v.stdout, v.stderr);
    assert!(
        v.stderr
            .contains("`debs/aziot-edge_1.5.21-1_amd64.deb` (deb aziot-edge 1.5.21-1): SHA-256 "),
        "{}",
        v.stderr
    );
    assert!(v.stderr.contains("changed after signing"), "{}", v.stderr);
    assert!(
        v.stdout.contains("signature ok"),
        "the manifest itself is intact: {}",
        v.stdout
    );
    let j = s.run(&[
        "bundle",
        "verify",
        "b.tar",
        "--allowed-signers",
        "allowed_signers",
        "--output",
        "json",
    ]);
    assert_eq!(j.code, 21);
    let j: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(j["ok"], false);
    assert_eq!(j["exit_code"], 21);
    assert_eq!(j["signer"]["principals"], "ops@example.com");
    assert_eq!(
        j["integrity"].as_array().unwrap().len(),
        1,
        "only the tampered entry: {j}"
    );
    assert!(j["integrity"][0]
        .as_str()
        .unwrap()
        .starts_with("`debs/aziot-edge_1.5.21-1_amd64.deb`"));
    assert_eq!(j["dependencies"], serde_json::json!([]));
}

#[test]
fn truncated_bundle_is_refused() {
    let s = Site::new();
    let bundle = s.good_bundle("b.tar");
    let bytes = fs::read(&bundle).unwrap();
    for (name, cut) in [
        ("half.tar", bytes.len() / 2),
        ("tail.tar", bytes.len() - 2000),
    ] {
        fs::write(s.p(name), &bytes[..cut]).unwrap();
        let v = s.verify(name);
        assert_eq!(v.code, 21, "{name}: {}{}", v.stdout, v.stderr);
        assert!(v.stderr.contains("truncated"), "{name}: {}", v.stderr);
        assert!(v.stderr.contains("copy it again"), "{name}: {}", v.stderr);
    }
    fs::write(s.p("head.tar"), &bytes[..300]).unwrap();
    let v = s.verify("head.tar");
    assert_ne!(v.code, 0);
    assert!(
        v.stderr.contains("truncated") || v.stderr.contains("not an edgefleet bundle"),
        "{}",
        v.stderr
    );
}

#[test]
fn wrong_signer_and_unsigned_are_refused() {
    let s = Site::new();
    s.good_bundle("b.tar");
    s.keygen("other", "");
    s.write(
        "other_signers",
        &format!("someone@else {}\n", s.pubkey("other")),
    );
    let v = s.run(&[
        "bundle",
        "verify",
        "b.tar",
        "--allowed-signers",
        "other_signers",
    ]);
    assert_eq!(v.code, 20, "{}{}", v.stdout, v.stderr);
    assert!(
        v.stderr
            .contains("which is not in the allowed-signers file"),
        "{}",
        v.stderr
    );
    // Right key, but its line does not allow this namespace.
    s.write(
        "ns_signers",
        &format!("ops@example.com namespaces=\"git\" {}\n", s.pubkey("key")),
    );
    let v = s.run(&[
        "bundle",
        "verify",
        "b.tar",
        "--allowed-signers",
        "ns_signers",
    ]);
    assert_eq!(v.code, 20);
    assert!(
        v.stderr.contains("does not include edgefleet-bundle"),
        "{}",
        v.stderr
    );
    // Expired signer.
    s.write(
        "old_signers",
        &format!(
            "ops@example.com valid-before=20200101 {}\n",
            s.pubkey("key")
        ),
    );
    let v = s.run(&[
        "bundle",
        "verify",
        "b.tar",
        "--allowed-signers",
        "old_signers",
    ]);
    assert_eq!(v.code, 20);
    assert!(
        v.stderr.contains("expired at 20200101000000"),
        "{}",
        v.stderr
    );

    let mut m = members(&s.p("b.tar"));
    m.remove(1);
    write_tar(&s.p("unsigned.tar"), &m);
    let v = s.verify("unsigned.tar");
    assert_eq!(v.code, 20, "{}{}", v.stdout, v.stderr);
    assert!(v.stderr.contains("the bundle is unsigned"), "{}", v.stderr);
    m.insert(
        1,
        (
            "manifest.json.sig".into(),
            b"-----BEGIN SSH SIGNATURE-----\ngarbage\n".to_vec(),
        ),
    );
    write_tar(&s.p("garbled.tar"), &m);
    let v = s.verify("garbled.tar");
    assert_eq!(v.code, 20, "{}{}", v.stdout, v.stderr);
    assert!(
        v.stderr.contains("manifest.json.sig: not an SSH signature"),
        "{}",
        v.stderr
    );
    m.remove(1);
    let i = s.run(&["bundle", "inspect", "unsigned.tar"]);
    assert!(i.stdout.contains("signature: none"), "{}", i.stdout);
}

#[test]
fn manifest_changed_after_signing_is_refused() {
    let s = Site::new();
    s.good_bundle("b.tar");
    let mut m = members(&s.p("b.tar"));
    let text = String::from_utf8(m[0].1.clone())
        .unwrap()
        .replace("1.5.21-1", "1.5.22-1");
    m[0].1 = text.into_bytes();
    write_tar(&s.p("edited.tar"), &m);
    let v = s.verify("edited.tar");
    assert_eq!(v.code, 20, "{}{}", v.stdout, v.stderr);
    assert!(
        v.stderr
            .contains("does not match manifest.json: the manifest was changed after signing"),
        "{}",
        v.stderr
    );
}

#[test]
fn extra_entry_is_refused() {
    let s = Site::new();
    s.good_bundle("b.tar");
    let mut m = members(&s.p("b.tar"));
    m.push(("debs/evil_1_amd64.deb".into(), b"not signed".to_vec()));
    write_tar(&s.p("extra.tar"), &m);
    let v = s.verify("extra.tar");
    assert_eq!(v.code, 21);
    assert!(
        v.stderr
            .contains("`debs/evil_1_amd64.deb`: not listed in the signed manifest"),
        "{}",
        v.stderr
    );
}

#[test]
fn missing_dependency_names_package_and_constraint() {
    let s = Site::new();
    s.good_bundle("b.tar");
    // At verify time, against a site whose base system has an older libc6 and no adduser.
    s.write("old-base.txt", "libc6 2.31-13\n");
    let v = s.run(&[
        "bundle",
        "verify",
        "b.tar",
        "--allowed-signers",
        "allowed_signers",
        "--base-system",
        "old-base.txt",
    ]);
    assert_eq!(v.code, 22, "{}{}", v.stdout, v.stderr);
    assert!(
        v.stderr.contains("deb aziot-edge 1.5.21-1: Depends `libc6 (>= 2.34)` is not satisfied by the bundle or the base system (the base system has libc6 2.31-13)"),
        "{}",
        v.stderr
    );
    assert!(
        v.stderr
            .contains("deb moby-engine 1:25.0.5-1: Pre-Depends `adduser`"),
        "{}",
        v.stderr
    );
    assert!(
        v.stdout.contains("every size and SHA-256 matches"),
        "integrity is still reported: {}",
        v.stdout
    );

    // At create time: a bundle without aziot-identity-service is refused.
    let debs = s.edge_debs();
    let r = s.run(&[
        "bundle",
        "create",
        "-o",
        "partial.tar",
        "--deb",
        debs[1].to_str().unwrap(),
        "--deb",
        debs[2].to_str().unwrap(),
        "--sign-key",
        "key",
        "--base-system",
        "base.txt",
    ]);
    assert_eq!(r.code, 22, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Depends `aziot-identity-service (= 1.5.6-1)`"),
        "{}",
        r.stderr
    );
    assert!(!s.p("partial.tar").exists() && !s.p("partial.tar.partial").exists());
}

/// A .deb dpkg-deb would never build: the ar layout is right, the control file is garbage.
fn garbage_deb(path: &Path, control: &[u8]) {
    let mut ctl = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(control.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    ctl.append_data(&mut h, "./control", control).unwrap();
    let ctl = ctl.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&ctl).unwrap();
    let ctl_gz = gz.finish().unwrap();
    let mut b = ar::Builder::new(fs::File::create(path).unwrap());
    for (name, data) in [
        ("debian-binary", &b"2.0\n"[..]),
        ("control.tar.gz", &ctl_gz[..]),
        ("data.tar.gz", &ctl_gz[..]),
    ] {
        b.append(
            &ar::Header::new(name.as_bytes().to_vec(), data.len() as u64),
            data,
        )
        .unwrap();
    }
}

#[test]
fn garbage_control_file_is_refused_with_file_and_line() {
    let s = Site::new();
    garbage_deb(
        &s.p("bad.deb"),
        b"Package: bad\nVersion: 1.0\n\x7fELF garbage here\n",
    );
    let r = s.run(&[
        "bundle",
        "create",
        "-o",
        "x.tar",
        "--deb",
        "bad.deb",
        "--sign-key",
        "key",
    ]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("bad.deb: not a usable .deb: its control file: line 3: `\u{7f}ELF garbage here` is not a `Field: value` line"),
        "{}",
        r.stderr
    );
    fs::write(s.p("text.deb"), "this is not a deb\n").unwrap();
    let r = s.run(&[
        "bundle",
        "create",
        "-o",
        "x.tar",
        "--deb",
        "text.deb",
        "--sign-key",
        "key",
    ]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr
            .contains("text.deb: not a usable .deb: not a Debian package"),
        "{}",
        r.stderr
    );
    garbage_deb(&s.p("nover.deb"), b"Package: nover\nArchitecture: all\n");
    let r = s.run(&[
        "bundle",
        "create",
        "-o",
        "x.tar",
        "--deb",
        "nover.deb",
        "--sign-key",
        "key",
    ]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr.contains("the control file has no `Version` field"),
        "{}",
        r.stderr
    );
    garbage_deb(
        &s.p("baddep.deb"),
        b"Package: baddep\nVersion: 1\nArchitecture: all\nDepends: libc6 (>= )\n",
    );
    let r = s.run(&[
        "bundle",
        "create",
        "-o",
        "x.tar",
        "--deb",
        "baddep.deb",
        "--sign-key",
        "key",
    ]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr
            .contains("Depends: in `libc6 (>= )`: `(>=)` has an operator but no version"),
        "{}",
        r.stderr
    );
    // A real .deb cut short (an interrupted download).
    let real = fs::read(s.deb("cut", "1.0", "all", "", "none")).unwrap();
    fs::write(s.p("cut.deb"), &real[..real.len() - 100]).unwrap();
    let r = s.run(&[
        "bundle",
        "create",
        "-o",
        "x.tar",
        "--deb",
        "cut.deb",
        "--sign-key",
        "key",
    ]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("cut.deb: not a usable .deb: member `data.tar`"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("download it again"), "{}", r.stderr);
    assert!(!s.p("x.tar").exists());
}

#[test]
fn unknown_manifest_fields_and_newer_formats_are_refused() {
    let s = Site::new();
    s.good_bundle("b.tar");
    let m = members(&s.p("b.tar"));
    let text = String::from_utf8(m[0].1.clone()).unwrap();
    for (file, edited, expect) in [
        ("unknown.tar", text.replacen("\"creator\"", "\"install_script\": \"rm -rf /\",\n  \"creator\"", 1), "unknown field `install_script`"),
        ("newer.tar", text.replacen("\"format_version\": 1", "\"format_version\": 2", 1), "bundle format version 2 is newer than this edgefleet reads (up to 1): upgrade edgefleet"),
        ("entry.tar", text.replacen("\"kind\": \"deb\"", "\"kind\": \"deb\", \"postinst\": \"x\"", 1), "unknown field `postinst`"),
    ] {
        assert_ne!(edited, text, "{file}: the edit applies");
        let mut mm = m.clone();
        mm[0].1 = edited.into_bytes();
        write_tar(&s.p(file), &mm);
        for cmd in ["verify", "inspect"] {
            let r = if cmd == "verify" { s.verify(file) } else { s.run(&["bundle", "inspect", file]) };
            assert_eq!(r.code, 23, "{file} {cmd}: {}{}", r.stdout, r.stderr);
            assert!(r.stderr.contains(expect), "{file} {cmd}: {}", r.stderr);
        }
    }
    let r = s.run(&[
        "bundle",
        "verify",
        "config.toml.j2",
        "--allowed-signers",
        "allowed_signers",
    ]);
    assert_eq!(r.code, 23, "{}", r.stderr);
    assert!(r.stderr.contains("not an edgefleet bundle"), "{}", r.stderr);
}

#[test]
fn encrypted_signing_key_needs_its_passphrase_from_the_environment() {
    let s = Site::new();
    s.keygen("enc", "correct horse");
    let deb = s.deb("solo", "1.0", "all", "", "xz");
    let args = [
        "bundle",
        "create",
        "-o",
        "e.tar",
        "--deb",
        deb.to_str().unwrap(),
        "--sign-key",
        "enc",
    ];
    let r = s.run(&args);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("the signing key is encrypted: put its passphrase in the environment variable EDGEFLEET_BUNDLE_KEY_PASSPHRASE"), "{}", r.stderr);
    let r = s.run_env(&args, &[("EDGEFLEET_BUNDLE_KEY_PASSPHRASE", "wrong")]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr
            .contains("does not open this key (wrong passphrase?)"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("wrong\n") && !r.stderr.contains("correct horse"));
    let r = s.run_env(
        &args,
        &[("EDGEFLEET_BUNDLE_KEY_PASSPHRASE", "correct horse")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    s.write("enc_signers", &format!("ops {}\n", s.pubkey("enc")));
    let v = s.run(&[
        "bundle",
        "verify",
        "e.tar",
        "--allowed-signers",
        "enc_signers",
    ]);
    assert_eq!(v.code, 0, "{}", v.stderr);
}

#[test]
fn mixed_architectures_are_refused() {
    let s = Site::new();
    let a = s.deb("aa-one", "1", "amd64", "", "xz");
    let b = s.deb("aa-two", "1", "arm64", "", "xz");
    let r = s.run(&[
        "bundle",
        "create",
        "-o",
        "x.tar",
        "--deb",
        a.to_str().unwrap(),
        "--deb",
        b.to_str().unwrap(),
        "--sign-key",
        "key",
    ]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr
            .contains("wrong architecture: aa-two 1 is for arm64, but"),
        "{}",
        r.stderr
    );
    let img = image_archive(&s.p("img.tar"), "example/app:2", false);
    let c = s.deb("aa-three", "1", "arm64", "", "xz");
    let r = s.run(&[
        "bundle",
        "create",
        "-o",
        "x.tar",
        "--deb",
        c.to_str().unwrap(),
        "--image-tar",
        img.to_str().unwrap(),
        "--sign-key",
        "key",
    ]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr
            .contains("image example/app:2 is for amd64, but the debs"),
        "{}",
        r.stderr
    );
}

#[test]
fn docker_25_oci_layout_archives_are_read() {
    let s = Site::new();
    let img = image_archive(&s.p("oci.tar"), "registry.local:5000/edge/hub:1.5.3", true);
    let r = s.run(&[
        "bundle",
        "create",
        "-o",
        "o.tar",
        "--image-tar",
        img.to_str().unwrap(),
        "--sign-key",
        "key",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let i = s.run(&["bundle", "inspect", "o.tar", "--output", "json"]);
    let j: serde_json::Value = serde_json::from_str(&i.stdout).unwrap();
    let e = &j["manifest"]["entries"][0];
    assert_eq!(
        e["name"], "registry.local:5000/edge/hub",
        "a registry port is not a tag"
    );
    assert_eq!(e["version"], "1.5.3");
    let cfg = members(&img)
        .into_iter()
        .find(|(n, d)| n.starts_with("blobs/") && d.starts_with(b"{\"arch"))
        .unwrap();
    assert_eq!(
        e["images"][0]["id"],
        format!("sha256:{}", sha256_hex(&cfg.1))
    );
    assert_eq!(s.verify("o.tar").code, 0);

    // A blob whose content does not match its name, and a manifest naming a missing layer.
    let mut m = members(&img);
    let blob = m
        .iter_mut()
        .find(|(n, d)| n.starts_with("blobs/") && !d.starts_with(b"{"))
        .unwrap();
    blob.1[0] ^= 1;
    write_tar(&s.p("badblob.tar"), &m);
    let r = s.run(&[
        "bundle",
        "create",
        "-o",
        "x.tar",
        "--image-tar",
        "badblob.tar",
        "--sign-key",
        "key",
    ]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr.contains("its content does not match its name"),
        "{}",
        r.stderr
    );
    // A legacy layer changed in place (same size): its hash is no longer the config's diff_id.
    let mut m = members(&image_archive(&s.p("legacy.tar"), "a/b:1", false));
    let layer = m
        .iter_mut()
        .find(|(n, _)| n.ends_with("layer.tar"))
        .unwrap();
    let at = layer.1.len() / 3;
    layer.1[at] ^= 1;
    write_tar(&s.p("badlayer.tar"), &m);
    let r = s.run(&[
        "bundle",
        "create",
        "-o",
        "x.tar",
        "--image-tar",
        "badlayer.tar",
        "--sign-key",
        "key",
    ]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr.contains("but its config says diff_id sha256:"),
        "{}",
        r.stderr
    );
    let m: Vec<_> = members(&image_archive(&s.p("legacy.tar"), "a/b:1", false))
        .into_iter()
        .filter(|(n, _)| !n.ends_with("layer.tar"))
        .collect();
    write_tar(&s.p("nolayer.tar"), &m);
    let r = s.run(&[
        "bundle",
        "create",
        "-o",
        "x.tar",
        "--image-tar",
        "nolayer.tar",
        "--sign-key",
        "key",
    ]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr.contains("image 1 in manifest.json: its layer `")
            && r.stderr.contains("is not in the archive"),
        "{}",
        r.stderr
    );
}

/// Memory does not grow with entry size: bundling and verifying a 256 MiB entry peaks at the same RSS (within
/// 8 MiB) as a 1 MiB one.
#[test]
fn memory_is_independent_of_entry_size() {
    let s = Site::new();
    let rss = s.p("rss");
    let peak = |args: &[&str]| -> u64 {
        let r = s.run_env(args, &[("EDGEFLEET_PEAK_RSS_FILE", rss.to_str().unwrap())]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        fs::read_to_string(&rss).unwrap().trim().parse().unwrap()
    };
    let mut figures = Vec::new();
    for (name, len) in [("small", 1024 * 1024), ("big", 256 * 1024 * 1024)] {
        let f = fs::File::create(s.p(&format!("{name}.img"))).unwrap();
        f.set_len(len).unwrap();
        drop(f);
        let (img, tar) = (format!("{name}.img"), format!("{name}.tar"));
        let c = peak(&[
            "bundle",
            "create",
            "-o",
            &tar,
            "--config-template",
            &img,
            "--sign-key",
            "key",
        ]);
        let v = peak(&[
            "bundle",
            "verify",
            &tar,
            "--allowed-signers",
            "allowed_signers",
        ]);
        figures.push((c, v));
    }
    eprintln!(
        "peak RSS KiB (create, verify): 1 MiB entry {:?}, 256 MiB entry {:?}",
        figures[0], figures[1]
    );
    assert!(
        figures[1].0 < figures[0].0 + 8 * 1024,
        "create: memory grows with the entry: {figures:?}"
    );
    assert!(
        figures[1].1 < figures[0].1 + 8 * 1024,
        "verify: memory grows with the entry: {figures:?}"
    );
}

/// `--apt NAME=VERSION` runs the real `apt-get download`, here against a local flat repository (no network):
/// the operator's apt configuration (`APT_CONFIG`) is honoured, the downloaded .deb is bundled like a local one.
#[test]
fn apt_download_from_a_local_repository() {
    tools::require("apt-get");
    let s = Site::new();
    let deb = s.deb(
        "aa-fetched",
        "2.1-3",
        "amd64",
        "Depends: libc6 (>= 2.30)\n",
        "xz",
    );
    let repo = s.p("repo");
    fs::create_dir_all(&repo).unwrap();
    let bytes = fs::read(&deb).unwrap();
    fs::write(repo.join("aa-fetched_2.1-3_amd64.deb"), &bytes).unwrap();
    let fields = Command::new("dpkg-deb")
        .arg("--field")
        .arg(&deb)
        .output()
        .unwrap();
    assert!(fields.status.success());
    let mut packages = String::from_utf8(fields.stdout).unwrap();
    packages.push_str(&format!(
        "Filename: ./aa-fetched_2.1-3_amd64.deb\nSize: {}\nSHA256: {}\n\n",
        bytes.len(),
        sha256_hex(&bytes)
    ));
    fs::write(repo.join("Packages"), packages).unwrap();
    for d in ["empty", "state/lists/partial", "cache/archives/partial"] {
        fs::create_dir_all(s.p(d)).unwrap();
    }
    fs::write(s.p("status"), "").unwrap();
    fs::write(
        s.p("sources.list"),
        format!("deb [trusted=yes] file:{} ./\n", repo.display()),
    )
    .unwrap();
    let root = s.dir.path().display().to_string();
    let conf = s.write(
        "apt.conf",
        &format!(
            "Dir::Etc::SourceList \"{root}/sources.list\";\nDir::Etc::SourceParts \"{root}/empty\";\n\
             Dir::Etc::Preferences \"{root}/empty/prefs\";\nDir::Etc::PreferencesParts \"{root}/empty\";\n\
             Dir::State \"{root}/state\";\nDir::State::status \"{root}/status\";\nDir::Cache \"{root}/cache\";\n\
             APT::Sandbox::User \"root\";\nDebug::NoLocking \"true\";\n"
        ),
    );
    let conf = conf.to_str().unwrap();
    let up = Command::new("apt-get")
        .arg("update")
        .env("APT_CONFIG", conf)
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "apt-get update: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let r = s.run_env(
        &[
            "bundle",
            "create",
            "-o",
            "apt.tar",
            "--apt",
            "aa-fetched=2.1-3",
            "--sign-key",
            "key",
            "--base-system",
            "base.txt",
        ],
        &[("APT_CONFIG", conf)],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let i = s.run(&["bundle", "inspect", "apt.tar", "--output", "json"]);
    let j: serde_json::Value = serde_json::from_str(&i.stdout).unwrap();
    let e = &j["manifest"]["entries"][0];
    assert_eq!(e["name"], "aa-fetched");
    assert_eq!(e["sha256"], sha256_hex(&bytes));
    assert_eq!(e["depends"], "libc6 (>= 2.30)");
    // A version the repository does not have: apt-get's own words, and what to do.
    let r = s.run_env(
        &[
            "bundle",
            "create",
            "-o",
            "none.tar",
            "--apt",
            "aa-fetched=9.9",
            "--sign-key",
            "key",
        ],
        &[("APT_CONFIG", conf)],
    );
    assert_eq!(r.code, 4);
    assert!(
        r.stderr.contains("apt-get download aa-fetched=9.9 failed"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("'9.9' for 'aa-fetched' was not found"),
        "{}",
        r.stderr
    );
    assert!(!s.p("none.tar").exists());
    let r = s.run(&[
        "bundle",
        "create",
        "-o",
        "x.tar",
        "--apt",
        "aa-fetched",
        "--sign-key",
        "key",
    ]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr
            .contains("--apt `aa-fetched`: expected NAME=VERSION"),
        "{}",
        r.stderr
    );
}

/// `--docker IMAGE` needs a Docker engine on the operator's machine; without one (as here) it fails saying
/// which command failed and what to check, and writes no bundle.
#[test]
fn docker_save_failure_is_explained() {
    let s = Site::new();
    let r = s.run(&[
        "bundle",
        "create",
        "-o",
        "d.tar",
        "--docker",
        "example.com/none:1",
        "--sign-key",
        "key",
    ]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("docker save example.com/none:1"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("is the image pulled on this machine (`docker pull`)?"),
        "{}",
        r.stderr
    );
    assert!(!s.p("d.tar").exists());
    // An option smuggled in as an image name never reaches docker's command line.
    let r = s.run(&[
        "bundle",
        "create",
        "-o",
        "d.tar",
        "--docker=--output=/etc/passwd",
        "--sign-key",
        "key",
    ]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr
            .contains("--docker `--output=/etc/passwd`: not an image name"),
        "{}",
        r.stderr
    );
}

/// ECDSA and RSA keys sign too, and `ssh-keygen -Y verify` accepts their signatures.
#[test]
fn ecdsa_and_rsa_signatures_interoperate() {
    let s = Site::new();
    let deb = s.deb("solo", "1.0", "all", "", "gzip");
    for (name, kind) in [("ec", "ecdsa"), ("rsa", "rsa")] {
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
            .arg(s.p(name))
            .status()
            .unwrap();
        assert!(st.success());
        let out = format!("{name}.tar");
        let r = s.run(&[
            "bundle",
            "create",
            "-o",
            &out,
            "--deb",
            deb.to_str().unwrap(),
            "--sign-key",
            name,
        ]);
        assert_eq!(r.code, 0, "{kind}: {}", r.stderr);
        let signers = s.write(
            &format!("{name}_signers"),
            &format!("ops {}\n", s.pubkey(name)),
        );
        let v = s.run(&[
            "bundle",
            "verify",
            &out,
            "--allowed-signers",
            signers.to_str().unwrap(),
        ]);
        assert_eq!(v.code, 0, "{kind}: {}", v.stderr);
        let m = members(&s.p(&out));
        fs::write(s.p("m.json"), &m[0].1).unwrap();
        fs::write(s.p("m.sig"), &m[1].1).unwrap();
        let o = Command::new("ssh-keygen")
            .args([
                "-Y",
                "verify",
                "-I",
                "ops",
                "-n",
                "edgefleet-bundle",
                "-s",
                "m.sig",
                "-f",
            ])
            .arg(&signers)
            .current_dir(s.dir.path())
            .stdin(fs::File::open(s.p("m.json")).unwrap())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{kind}: ssh-keygen refused: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
