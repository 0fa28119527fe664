//! `iotedge check`: the identity-service checks (run by `aziotctl check` on a real device) followed by the
//! IoT Edge checks, with the real ids, descriptions, messages, text layout, JSON shape and exit codes.
//!
//! What is evaluated locally, as the real tool does: the applied `config.d` files (well-formedness, mtimes
//! against `/etc/aziot/config.toml`), the hostname rule, preloaded certificates (`file://`, readable by
//! `aziotcs` including every parent directory, expiry: expired = error, < 7 days = warning), preloaded keys
//! (readable by `aziotks`; RSA < 2048 or EC other than P-256 warn; certificate/key match), daemon.json
//! (`container-engine-dns`, `-logrotate`, `-ipv6`), the module containers (`*-storage-mounted-from-host`), and
//! the services' states (`*-running`, which succeed when the service or its socket is up, as socket activation
//! would start it).
//!
//! Decisions for what a lab device cannot know (documented, deterministic):
//! - Network checks (`host-connect-*`, `container-*-connect-upstream-*`, `connect-management-uri`,
//!   `container-local-time`, `container-resolve-parent-hostname`, `check-agent-image`'s pull) report `ok` when
//!   their prerequisites hold (the lab network is healthy; network faults are the lab infrastructure's job),
//!   `skipped` when an earlier check they depend on failed, `ignored` when not applicable (e.g. the DPS
//!   endpoint for manual provisioning, MQTT upstream in nested mode, IoT Hub checks for DPS devices without
//!   `--iothub-hostname`).
//! - On an `airgapped` device (`lab up --airgapped`) every check that needs the internet fails as it does on an
//!   isolated site (name resolution fails): `host-connect-*`, `container-*-connect-upstream-*`,
//!   `check-agent-image` (its pull) and the version checks' "latest version" lookup.
//! - Version checks compare against `--expected-aziot-version` / `--expected-aziot-edged-version` when given;
//!   otherwise the "latest version" lookup is simulated as returning the installed version (the lab has no
//!   internet), so they pass; nested devices without an expected version are `ignored`, as on a device.
//! - The `check-error` fault forces an error on the check id named in the fault file (default
//!   `certs-preloaded`); the `edge-ca-rejected` fault (its file holds a certificate) fails `certs-preloaded`
//!   while the installed Edge CA is any other one.
//!
//! Layout: this file runs the table and prints the text or JSON report; `table` lists the checks, `identity`
//! and `edge` evaluate them, `model` holds the shared types. It must not modify device files (it only reads;
//! the one write is the `iotedge_check` counter).

mod edge;
mod identity;
mod model;
mod table;

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::lab::sim::edged;
use crate::lab::sim::program::Io;
use crate::lab::sim::state::{State, StateError, IOTEDGE_VERSION};
use crate::lab::sim::time;
pub use model::CheckOpts;
use model::{Ctx, Res};
pub use table::all_checks;
use table::sections;

fn write_lines(io: &mut Io, first: &str, other: &str, text: &str) {
    for (i, l) in text.lines().enumerate() {
        io.outln(format!("{}{l}", if i == 0 { first } else { other }));
    }
}

/// Run `iotedge check`; returns the exit code.
pub fn run_check(st: &mut State, opts: &CheckOpts, io: &mut Io) -> Result<i32, StateError> {
    st.bump("iotedge_check")?;
    // Like every simulator invocation, first let the (lazy) aziot-edged watchdog recreate missing modules.
    if st.services()?.is_active("aziot-edged")
        && st.env.fault("docker-down").is_none()
        && st.services()?.is_active("docker")
    {
        edged::reconcile(st)?;
    }
    let forced = st.env.fault("check-error").map(|c| {
        let c = c.lines().next().unwrap_or("").trim().to_string();
        if c.is_empty() {
            "certs-preloaded".to_string()
        } else {
            c
        }
    });
    let mut ctx = Ctx {
        iothub_hostname: opts.iothub_hostname.clone(),
        airgapped: crate::lab::sim::pkgdb::airgapped(st),
        ..Default::default()
    };
    let mut checks: BTreeMap<String, Value> = BTreeMap::new();
    let (mut ok, mut warn, mut skipped, mut fatal, mut errors) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    'all: for (section, list) in sections() {
        if !opts.json {
            io.outln("");
            io.outln(section);
            io.outln("-".repeat(section.len()));
        }
        for (id, desc, f) in list {
            let mut info = json!({});
            let mut res = if opts.dont_run.iter().any(|d| d == id) {
                Res::Ignored
            } else {
                f(st, opts, &mut ctx, &mut info)?
            };
            if forced.as_deref() == Some(*id) && res != Res::Ignored {
                res = Res::Failed(vec![format!(
                    "(lab fault) check {id} forced to fail by /var/lib/edgefleet-lab/faults/check-error"
                )]);
            }
            if let Res::Warning(w) = &res {
                if opts.warnings_as_errors {
                    res = Res::Failed(w.clone());
                }
            }
            let result = match &res {
                Res::Ok => {
                    ok += 1;
                    if !opts.json {
                        io.outln(format!("\u{221a} {desc} - OK"));
                    }
                    json!({"result": "ok"})
                }
                Res::Warning(d) => {
                    warn += 1;
                    if !opts.json {
                        io.outln(format!("\u{203c} {desc} - Warning"));
                        write_lines(io, "    ", "    ", &d[0]);
                        if opts.verbose {
                            for c in &d[1..] {
                                write_lines(io, "        caused by: ", "                   ", c);
                            }
                        }
                    }
                    json!({"result": "warning", "details": d})
                }
                Res::Ignored => json!({"result": "ignored"}),
                Res::Skipped => {
                    skipped += 1;
                    if opts.verbose && !opts.json {
                        io.outln(format!("\u{203c} {desc} - Warning"));
                        io.outln("    skipping because of previous failures");
                    }
                    json!({"result": "skipped"})
                }
                Res::Fatal(d) | Res::Failed(d) => {
                    let is_fatal = matches!(res, Res::Fatal(_));
                    if is_fatal {
                        fatal += 1;
                    } else {
                        errors += 1;
                    }
                    if !opts.json {
                        io.outln(format!("\u{00d7} {desc} - Error"));
                        write_lines(io, "    ", "    ", &d[0]);
                        if opts.verbose {
                            for c in &d[1..] {
                                write_lines(io, "        caused by: ", "                   ", c);
                            }
                        }
                    }
                    json!({"result": if is_fatal { "fatal" } else { "error" }, "details": d})
                }
            };
            checks.insert(
                id.to_string(),
                json!({"result": result, "additional_info": info}),
            );
            if fatal > 0 {
                break 'all;
            }
        }
    }
    if !opts.json {
        io.outln(format!("{ok} check(s) succeeded."));
        let suffix = if opts.verbose {
            ""
        } else {
            " Re-run with --verbose for more details."
        };
        if warn > 0 {
            io.outln(format!("{warn} check(s) raised warnings.{suffix}"));
        }
        if fatal + errors > 0 {
            io.outln(format!(
                "{} check(s) raised errors.{suffix}",
                fatal + errors
            ));
        }
        if skipped > 0 {
            io.outln(format!(
                "{skipped} check(s) were skipped due to errors from other checks.{suffix}"
            ));
        }
    } else {
        let mut checks_obj = serde_json::Map::new();
        for (k, v) in checks {
            checks_obj.insert(k, v);
        }
        let out = json!({
            "additional_info": {
                "aziot_edged_version": IOTEDGE_VERSION,
                "docker_version": ctx.docker_version,
                "iothub_hostname": ctx.iothub_hostname,
                "local_gateway_hostname": ctx.parent_hostname,
                "now": time::rfc3339(st.env.now_ms),
                "os": {"id": "debian", "version_id": "12", "arch": "x86_64", "bitness": 64},
                "system_info": {
                    "kernel": "Linux",
                    "kernel_release": "6.1.0-18-amd64",
                    "kernel_version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)",
                    "os_name": "Debian GNU/Linux",
                    "os_version": "12",
                    "os_variant": null,
                    "os_build_id": null,
                    "cpu_architecture": "x86_64",
                    "product_name": "edgefleet lab device",
                    "system_vendor": "edgefleet"
                }
            },
            "checks": Value::Object(checks_obj)
        });
        io.outln(serde_json::to_string(&out).unwrap_or_default());
    }
    Ok(if fatal + errors > 0 { 1 } else { 0 })
}
