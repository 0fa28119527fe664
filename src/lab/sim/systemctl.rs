//! The simulated `systemctl` program: argument handling, real-looking output and exit codes (`is-active`:
//! `active` 0 / `inactive` 3; `status` 0/3/4; unknown units 5 on start), and root-only mutations ("Interactive
//! authentication required").
//!
//! What starting, stopping or restarting a unit MEANS is the services model's (`services`); unit names and
//! descriptions are `units`'s; the journal tail of `status` is read from `state`. It must not import another
//! program: `iotedge` runs it as a child process through the dispatcher.

use super::gotmpl::tabwrite;
use super::pkgdb;
use super::program::Io;
use super::services::{restart_unit, start_unit, stop_unit};
use super::state::{self, State, StateError};
use super::time;
use super::unitenv;
use super::units::{self, description, full_name, unit_file};

/// `systemctl ...`.
pub fn run(st: &mut State, args: &[String], io: &mut Io) -> Result<i32, StateError> {
    // A unit exists only once the package that ships it is installed (a `--bare` lab device has none).
    let pkgs = st.packages()?;
    let canonical =
        |u: &str| units::canonical(u).filter(|c| pkgs.contains_key(pkgdb::unit_package(c)));
    let mut verb: Option<String> = None;
    let mut units: Vec<String> = Vec::new();
    let mut quiet = false;
    let mut now_flag = false;
    let mut property: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-p" | "--property" => property = it.next().cloned(),
            s if s.starts_with("--property=") => {
                property = Some(s["--property=".len()..].to_string())
            }
            "--no-pager" | "--no-block" | "--no-legend" | "--full" | "-l" | "--system"
            | "--no-ask-password" => {}
            "-q" | "--quiet" => quiet = true,
            "--now" => now_flag = true,
            s if s.starts_with('-') => {}
            s if verb.is_none() => verb = Some(s.to_string()),
            s => units.push(s.to_string()),
        }
    }
    let Some(verb) = verb else {
        // `systemctl` alone lists units; keep it short.
        let svcs = st.services()?.clone();
        let mut rows = vec!["UNIT\tLOAD\tACTIVE\tSUB\tDESCRIPTION".to_string()];
        for (u, s) in svcs.units.iter().filter(|(u, _)| canonical(u).is_some()) {
            let sub = match (s.state.as_str(), u.ends_with(".socket")) {
                ("active", true) => "listening",
                ("active", false) => "running",
                ("failed", _) => "failed",
                _ => "dead",
            };
            rows.push(format!(
                "{}\tloaded\t{}\t{sub}\t{}",
                full_name(u),
                s.state,
                description(u)
            ));
        }
        io.out(tabwrite(&rows, 1, 0));
        return Ok(0);
    };
    let mutating = matches!(
        verb.as_str(),
        "start"
            | "stop"
            | "restart"
            | "try-restart"
            | "reload-or-restart"
            | "enable"
            | "disable"
            | "daemon-reload"
            | "reset-failed"
    );
    if mutating && st.env.euid != 0 {
        let what = units
            .first()
            .map(|u| canonical(u).map(|c| full_name(&c)).unwrap_or(u.clone()));
        match what {
            Some(u) => io.errln(format!(
                "Failed to {verb} {u}: Interactive authentication required.\nSee system logs and 'systemctl status {u}' for details."
            )),
            None => io.errln(format!("Failed to {verb}: Interactive authentication required.")),
        }
        return Ok(1);
    }
    match verb.as_str() {
        "daemon-reload" | "reset-failed" => {
            if verb == "daemon-reload" {
                unitenv::reload(st)?;
            }
            if verb == "reset-failed" {
                let now = st.env.now_ms;
                let svcs = st.services_mut()?;
                let failed: Vec<String> = svcs
                    .units
                    .iter()
                    .filter(|(_, s)| s.state == "failed")
                    .map(|(u, _)| u.clone())
                    .collect();
                for u in failed {
                    svcs.set(&u, "inactive", now);
                }
            }
            Ok(0)
        }
        "start" | "stop" | "restart" | "try-restart" | "reload-or-restart" => {
            if units.is_empty() {
                io.errln("Too few arguments.");
                return Ok(1);
            }
            let mut code = 0;
            for u in &units {
                let Some(c) = canonical(u) else {
                    let name = if u.contains('.') {
                        u.clone()
                    } else {
                        format!("{u}.service")
                    };
                    io.errln(format!("Failed to {verb} {name}: Unit {name} not found."));
                    code = 5;
                    continue;
                };
                let res = match verb.as_str() {
                    "start" => start_unit(st, &c)?,
                    "stop" => {
                        let socket_up = c == "docker"
                            && st.services()?.is_active("docker.socket")
                            && !units.iter().any(|u| u == "docker.socket");
                        stop_unit(st, &c)?;
                        if socket_up {
                            io.errln("Warning: Stopping docker.service, but it can still be activated by:\n  docker.socket");
                        }
                        Ok(())
                    }
                    "try-restart" if !st.services()?.is_active(&c) => Ok(()),
                    _ => restart_unit(st, &c)?,
                };
                if let Err(e) = res {
                    io.errln(e);
                    code = 1;
                }
            }
            Ok(code)
        }
        "is-active" | "is-failed" => {
            let mut all = true;
            for u in &units {
                let state = match canonical(u) {
                    Some(c) => st.services()?.state(&c).to_string(),
                    None => "inactive".to_string(),
                };
                let ok = if verb == "is-active" {
                    state == "active"
                } else {
                    state == "failed"
                };
                all &= ok;
                if !quiet {
                    io.outln(&state);
                }
            }
            Ok(if all && !units.is_empty() {
                0
            } else if verb == "is-active" {
                3
            } else {
                1
            })
        }
        "is-enabled" => {
            let mut code = 0;
            for u in &units {
                match canonical(u) {
                    Some(c) => {
                        let enabled = if c.ends_with(".socket") || c == "containerd" {
                            true
                        } else {
                            st.services()?
                                .units
                                .get(&c)
                                .map(|s| s.enabled)
                                .unwrap_or(false)
                        };
                        if !quiet {
                            io.outln(if enabled { "enabled" } else { "disabled" });
                        }
                        if !enabled {
                            code = 1;
                        }
                    }
                    None => {
                        io.errln(format!(
                            "Failed to get unit file state for {}: No such file or directory",
                            if u.contains('.') {
                                u.clone()
                            } else {
                                format!("{u}.service")
                            }
                        ));
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        "enable" | "disable" => {
            let mut code = 0;
            for u in &units {
                let Some(c) = canonical(u) else {
                    io.errln(format!(
                        "Failed to {verb} unit: Unit file {} does not exist.",
                        if u.contains('.') {
                            u.clone()
                        } else {
                            format!("{u}.service")
                        }
                    ));
                    code = 1;
                    continue;
                };
                let want = verb == "enable";
                let was = st
                    .services()?
                    .units
                    .get(&c)
                    .map(|s| s.enabled)
                    .unwrap_or(false);
                if was != want {
                    let target = if c.ends_with(".socket") {
                        "sockets.target"
                    } else {
                        "multi-user.target"
                    };
                    if want {
                        io.errln(format!(
                            "Created symlink /etc/systemd/system/{target}.wants/{} → {}.",
                            full_name(&c),
                            unit_file(&c)
                        ));
                    } else {
                        io.errln(format!(
                            "Removed \"/etc/systemd/system/{target}.wants/{}\".",
                            full_name(&c)
                        ));
                    }
                    let now = st.env.now_ms;
                    let svcs = st.services_mut()?;
                    if !svcs.units.contains_key(&c) {
                        svcs.set(&c, "inactive", now);
                    }
                    if let Some(s) = svcs.units.get_mut(&c) {
                        s.enabled = want;
                    }
                }
                if now_flag {
                    let res = if want {
                        start_unit(st, &c)?
                    } else {
                        stop_unit(st, &c).map(|_| Ok(()))?
                    };
                    if let Err(e) = res {
                        io.errln(e);
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        // Only what `iotedge check` asks: `show --property=Environment UNIT` (the environment systemd loaded).
        "show" if property.as_deref() == Some("Environment") => {
            for u in &units {
                let c = canonical(u).unwrap_or_else(|| u.trim_end_matches(".service").to_string());
                let env = unitenv::loaded(&st.env, &c)?;
                let words: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                io.outln(format!("Environment={}", words.join(" ")));
            }
            Ok(0)
        }
        "status" => {
            let mut code = 0;
            let now = st.env.now_ms;
            for u in &units {
                let Some(c) = canonical(u) else {
                    io.errln(format!(
                        "Unit {} could not be found.",
                        if u.contains('.') {
                            u.clone()
                        } else {
                            format!("{u}.service")
                        }
                    ));
                    code = 4;
                    continue;
                };
                let s = st.services()?.units.get(&c).cloned();
                let (state, since, enabled, pid) = match &s {
                    Some(s) => (s.state.clone(), s.since_ms, s.enabled, s.pid),
                    None => ("inactive".to_string(), now, false, 0),
                };
                let bullet = match state.as_str() {
                    "active" => "●",
                    "failed" => "×",
                    _ => "○",
                };
                let active_line = match state.as_str() {
                    "active" if c.ends_with(".socket") => format!(
                        "active (listening) since {}; {} ago",
                        time::systemd_ts(since),
                        ago(now, since)
                    ),
                    "active" => format!(
                        "active (running) since {}; {} ago",
                        time::systemd_ts(since),
                        ago(now, since)
                    ),
                    "failed" => format!(
                        "failed (Result: exit-code) since {}; {} ago",
                        time::systemd_ts(since),
                        ago(now, since)
                    ),
                    _ => "inactive (dead)".to_string(),
                };
                io.outln(format!("{bullet} {} - {}", full_name(&c), description(&c)));
                io.outln(format!(
                    "     Loaded: loaded ({}; {}; preset: enabled)",
                    unit_file(&c),
                    if enabled || c.ends_with(".socket") {
                        "enabled"
                    } else {
                        "disabled"
                    }
                ));
                io.outln(format!("     Active: {active_line}"));
                if state == "active" && !c.ends_with(".socket") {
                    io.outln(format!("   Main PID: {pid} ({})", main_process(&c)));
                }
                let journal = state::journal_lines(&st.env, std::slice::from_ref(&c));
                let tail: Vec<&String> = journal.iter().rev().take(10).collect();
                if !tail.is_empty() {
                    io.outln("");
                    for l in tail.into_iter().rev() {
                        io.outln(l);
                    }
                }
                if state != "active" {
                    code = 3;
                }
            }
            Ok(code)
        }
        other => {
            io.errln(format!("Unknown command verb {other}."));
            Ok(1)
        }
    }
}

fn main_process(unit: &str) -> &'static str {
    match unit {
        "docker" => "dockerd",
        "containerd" => "containerd",
        "aziot-edged" => "aziot-edged",
        "aziot-identityd" => "aziot-identity",
        "aziot-keyd" => "aziot-keyd",
        "aziot-certd" => "aziot-certd",
        "aziot-tpmd" => "aziot-tpmd",
        _ => "",
    }
}

fn ago(now: u64, since: u64) -> String {
    let s = now.saturating_sub(since) / 1000;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}min {}s", s / 60, s % 60)
    } else {
        format!("{}h {}min", s / 3600, (s % 3600) / 60)
    }
}
