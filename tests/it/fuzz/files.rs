//! Operator files outside the language: config.toml (parse, validate, render-then-parse identity), daemon.json
//! (parse, merge, write-then-parse identity), the deployment-manifest lint (with waivers), known_hosts,
//! ssh_config, and the offline bundle's manifest and Debian metadata.

use std::path::{Path, PathBuf};

use edgefleet::bundle::{closure, control, manifest, relation, signing, version};
use edgefleet::iotedge::config::{from_value, parse_toml, render, validate};
use edgefleet::iotedge::daemon::{self, DaemonSettings};
use edgefleet::iotedge::manifest::{lint, Input, WaiverFile};
use edgefleet::transport::known_hosts::{KnownHosts, KnownHostsFile};
use edgefleet::transport::ssh_config::{resolve, SshArgs, SshConfig};

use super::{fuzz_bytes, fuzz_text};

const TOML_TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "=",
    "\"",
    "'''",
    "\"\"\"",
    "hostname = ",
    "[provisioning]",
    "source = \"manual\"",
    "[edge_ca]",
    "[agent]",
    "[agent.config]",
    "[agent.env]",
    "[moby_runtime]",
    "[connect]",
    "[listen]",
    "file://",
    "unix://",
    "1979-05-27T07:32:00Z",
    "inf",
    "nan",
    "0x",
    "1_000",
    ".",
    "\n",
];

#[test]
fn config_toml() {
    fuzz_text("config-toml", TOML_TOKENS, |s| {
        let Ok(v) = parse_toml(s) else { return };
        let Ok(c) = from_value(&v) else { return };
        let _ = validate(&c);
        // What we write must read back as the same config.
        if let Ok(text) = render(&c) {
            let back = parse_toml(&text)
                .unwrap_or_else(|e| panic!("rendered config.toml does not parse: {e}\n{text}"));
            let back = from_value(&back)
                .unwrap_or_else(|e| panic!("rendered config.toml does not load: {e:?}\n{text}"));
            assert_eq!(back, c, "render-then-parse changed the config:\n{text}");
        }
    });
}

const JSON_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\u0000",
    "\\ud800",
    "1e999",
    "-0",
    "true",
    "null",
    "//",
    "/*",
    "*/",
    "\"log-driver\"",
    "\"log-opts\"",
    "\"dns\"",
    "\"max-size\"",
    "\"$edgeAgent\"",
    "\"$edgeHub\"",
    "\"modulesContent\"",
    "\"properties.desired\"",
    "\"createOptions\"",
    "\"{\\\"HostConfig\\\":{}}\"",
    "\"env\"",
    "\"routes\"",
    "\"FROM /messages/* INTO $upstream\"",
    "{{",
    "}}",
];

#[test]
fn daemon_json() {
    let settings = DaemonSettings {
        dns: vec!["10.0.0.53".into()],
        log_driver: "local".into(),
        max_size: "10m".into(),
        max_file: "3".into(),
    };
    fuzz_text("daemon-json", JSON_TOKENS, |s| {
        let Ok(existing) = daemon::parse(s) else {
            return;
        };
        let merged = daemon::merge(&existing, &settings);
        let text =
            serde_json::to_string_pretty(&serde_json::Value::Object(merged.clone())).unwrap();
        assert_eq!(
            daemon::parse(&text).as_ref(),
            Ok(&merged),
            "write-then-parse changed daemon.json"
        );
        // Merging is idempotent: a second run changes nothing.
        assert_eq!(daemon::merge(&merged, &settings), merged);
    });
}

#[test]
fn manifest_lint() {
    fuzz_text("manifest", JSON_TOKENS, |s| {
        let inputs = [
            Input {
                path: PathBuf::from("deployment.json"),
                text: s.to_string(),
            },
            Input {
                path: PathBuf::from("deployment.template.json"),
                text: s.to_string(),
            },
        ];
        let _ = lint(&inputs, &[]);
    });
}

#[test]
fn lint_config_daemon_and_waivers() {
    let deployment = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint/good/deployment.json"),
    )
    .unwrap();
    fuzz_text("lint-files", TOML_TOKENS, |s| {
        let inputs = [
            Input {
                path: PathBuf::from("deployment.json"),
                text: deployment.clone(),
            },
            Input {
                path: PathBuf::from("config.toml"),
                text: s.to_string(),
            },
            Input {
                path: PathBuf::from("daemon.json"),
                text: s.to_string(),
            },
        ];
        let waivers = [WaiverFile {
            path: PathBuf::from(".edgefleet-lint.yml"),
            text: s.to_string(),
        }];
        let _ = lint(&inputs, &waivers);
    });
}

const KNOWN_HOSTS_TOKENS: &[&str] = &[
    "@cert-authority ",
    "@revoked ",
    "|1|",
    "|",
    "*",
    "?",
    "!",
    ",",
    "[127.0.0.1]:2222",
    "ssh-ed25519 ",
    "ecdsa-sha2-nistp256 ",
    "ssh-rsa ",
    "AAAA",
    "=",
    " ",
    "\n",
    "#",
];

#[test]
fn known_hosts() {
    let names = vec!["[127.0.0.1]:2222".to_string(), "edge-01".to_string()];
    fuzz_text("known-hosts", KNOWN_HOSTS_TOKENS, |s| {
        let f = KnownHostsFile::parse("known_hosts", s);
        let _ = (f.known_types(&names), f.has_cert_authority(&names));
        let f = KnownHosts {
            files: vec![std::sync::Arc::new(f)],
        };
        let _ = f.check_key(
            &names,
            b"\0\0\0\x0bssh-ed25519\0\0\0\x20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        );
        let _ = f.known_types(&names);
        let _ = f.has_cert_authority(&names);
    });
}

const SSH_CONFIG_TOKENS: &[&str] = &[
    "Host ",
    "Match ",
    "Match host ",
    "Match all",
    "exec ",
    "Include ",
    "HostName ",
    "Port ",
    "User ",
    "IdentityFile ",
    "ProxyJump ",
    "ProxyCommand ",
    "StrictHostKeyChecking ",
    "=",
    "\"",
    "*",
    "!",
    "%h",
    "%p",
    "%%",
    "~",
    "\n  ",
    "\t",
];

#[test]
fn ssh_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    fuzz_text("ssh-config", SSH_CONFIG_TOKENS, |s| {
        // `Include` reads files relative to the config's directory: an empty temp directory here.
        if let Ok(cfg) = SshConfig::parse(&path, s) {
            let _ = resolve("edge-01", &[], &SshArgs::default(), &cfg);
        }
        let words: Vec<String> = s.split_whitespace().take(32).map(String::from).collect();
        let _ = SshArgs::parse(&words);
    });
}

const BUNDLE_TOKENS: &[&str] = &[
    "\"format_version\"",
    "\"entries\"",
    "\"sha256\"",
    "\"path\"",
    "\"../\"",
    "\"/\"",
    "Package: ",
    "Version: ",
    "Depends: ",
    "Pre-Depends: ",
    "Provides: ",
    " (>= ",
    ")",
    " | ",
    ",",
    ":any",
    "~",
    "1:",
    "-",
    "[amd64]",
    "<arm64>",
];

#[test]
fn bundle_manifest() {
    fuzz_bytes("bundle-manifest", BUNDLE_TOKENS, |b| {
        if let Ok(m) = manifest::parse_manifest(b) {
            let again = manifest::parse_manifest(&manifest::manifest_bytes(&m));
            assert_eq!(
                again.as_ref().ok(),
                Some(&m),
                "write-then-parse changed the manifest"
            );
        }
    });
}

#[test]
fn debian_metadata() {
    fuzz_text("debian-control", BUNDLE_TOKENS, |s| {
        let _ = control::parse_paragraph(s);
        let _ = control::Control::parse(s);
        let _ = closure::parse_base_system(s);
        let _ = signing::parse_allowed_signers(s);
        let _ = signing::parse_signature(s.as_bytes());
        for line in s.lines().take(64) {
            let _ = relation::parse_relations(line);
            if let Ok(v) = version::DebVersion::parse(line.trim()) {
                // A version compares equal to itself (the closure's ordering relies on it).
                assert_eq!(v.cmp(&v), std::cmp::Ordering::Equal);
            }
        }
    });
}
