//! What devices send back: the batched gather and re-stat (stat/sha256 lines), setup facts, systemctl,
//! `iotedge check` JSON, `iotedge system status` / `iotedge list`, the verify gather, the certificate and
//! maintenance gathers, prune answers, the reachability probe, `iotedge cert renew` output, and the run lock's
//! answers. A device is not trusted: whatever it prints, the controller must not panic or hang.

use edgefleet::facts::{certs, gather, iotedge, maintenance, reach, setup, systemd, FactReq};
use edgefleet::iotedge::renew;
use edgefleet::transport::{runlock, Cmd};

use super::fuzz_text;

const GATHER_TOKENS: &[&str] = &[
    "X|",
    "M|",
    "S\n",
    "H\n",
    "C|",
    "|0|",
    "|1|",
    "regular file|",
    "directory|",
    "symbolic link|",
    "|644|",
    "|root|",
    "ZWRnZS0wMDE=",
    "=",
    "\u{1e}EF:",
    "\u{1e}EF:restat\n",
    "\n",
];

fn gather_reqs() -> Vec<FactReq> {
    vec![
        FactReq::File {
            path: "/etc/aziot/config.toml".into(),
            content: true,
        },
        FactReq::File {
            path: "/nope".into(),
            content: false,
        },
        FactReq::Checksum {
            path: "/etc".into(),
            content: false,
        },
        FactReq::Command {
            key: "hostname".into(),
            cmd: Cmd::new("hostname"),
        },
    ]
}

#[test]
fn batched_gather_and_restat() {
    let reqs = gather_reqs();
    let paths = vec![
        ("/etc/aziot/config.toml".to_string(), true),
        ("/nope".to_string(), false),
    ];
    fuzz_text("gather", GATHER_TOKENS, |s| {
        for (i, _) in gather::parse_gather(&reqs, s) {
            assert!(
                i < reqs.len(),
                "an answer for request {i} of {}",
                reqs.len()
            );
        }
        let _ = gather::parse_restat(&paths, s);
    });
}

const SETUP_TOKENS: &[&str] = &[
    "hostname=",
    "vcpus=",
    "memtotal_kb=",
    "memtotal_kb=99999999999999999999999",
    "env_hex=",
    "env_hex=4",
    "debian_version=",
    "distribution_version=",
    "os_like=",
    "pkg=",
    "=",
    "\n",
];

#[test]
fn setup_facts() {
    fuzz_text("setup", SETUP_TOKENS, |s| {
        let _ = setup::parse(s);
    });
}

#[test]
fn systemctl() {
    fuzz_text(
        "systemctl",
        &[
            "active", "inactive", "failed", "|", "enabled", "static", "\n",
        ],
        |s| {
            let st = systemd::parse(s);
            let _ = (st.is_active(), st.is_enabled());
        },
    );
}

const IOTEDGE_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"checks\"",
    "\"result\"",
    "\"details\"",
    "\"additional_info\"",
    "\"ok\"",
    "\"error\"",
    "System services:\n",
    "    aziot-edged             Running\n",
    "NAME",
    "STATUS",
    "\u{1e}EF:",
    "\n",
];

#[test]
fn iotedge_outputs() {
    fuzz_text("iotedge", IOTEDGE_TOKENS, |s| {
        let _ = iotedge::parse_check_json(s);
        let _ = iotedge::parse_system_status(s);
        let _ = iotedge::parse_list(s);
        let _ = iotedge::parse_gathered(s);
        let _ = iotedge::is_moby(s);
        let _ = edgefleet::iotedge::check::Status::parse(s);
    });
}

const MARKER_TOKENS: &[&str] = &[
    "\u{1e}EF:time ",
    "\u{1e}EF:config\n",
    "\u{1e}EF:config-missing\n",
    "\u{1e}EF:file ",
    " ok ",
    " missing ",
    "\u{1e}EF:pkgs\n",
    "\u{1e}EF:df ",
    "\u{1e}EF:containers\n",
    "\u{1e}EF:images\n",
    "\u{1e}EF:volumes\n",
    "\u{1e}EF:du\n",
    "\u{1e}EF:daemon\n",
    "\u{1e}EF:journald\n",
    "\u{1e}EF:check ",
    "\u{1e}EF:end\n",
    "\u{1e}EF:reach\n",
    "\t",
    "|",
    "%",
    "\n ",
    "99999999999999999999",
    "-1",
];

#[test]
fn certs_gather() {
    fuzz_text("certs", MARKER_TOKENS, |s| {
        if let Ok(g) = certs::parse_certs(s) {
            for f in &g.files {
                let _ = certs::role_of(f, &g.config);
            }
        }
    });
}

#[test]
fn maintenance_gather() {
    fuzz_text("maintenance", MARKER_TOKENS, |s| {
        if let Ok(g) = maintenance::parse_maintenance(s) {
            for d in &g.disks {
                let _ = d.blocks.map(|b| b.percent());
                let _ = d.inodes.map(|b| b.percent());
            }
        }
        let _ = maintenance::parse_prune(s);
    });
}

#[test]
fn reachability_probe() {
    fuzz_text("reach", MARKER_TOKENS, |s| {
        if let Some(Ok(probes)) = reach::parse(s) {
            for p in &probes {
                let _ = p.outcome();
            }
        }
    });
}

#[test]
fn renew_and_runlock_answers() {
    fuzz_text("renew", MARKER_TOKENS, |s| {
        let _ = renew::parse_renew_output(s);
        let _ = renew::parse_rollback(s, true, s);
        let _ = renew::parse_rollback(s, false, s);
        for line in s.lines().take(64) {
            let _ = runlock::parse_line(line);
            let _ = runlock::parse_owner(line);
        }
    });
}
