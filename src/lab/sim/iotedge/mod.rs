//! The simulated `iotedge` CLI: argument handling and the small commands (`version`, `list`, `system
//! status|logs|restart|stop`, `logs`, `restart`, `check-list`); `config apply` lives in `apply`, `check` in
//! `check`.
//!
//! Output layouts follow IoT Edge 1.5 (`system status` rows are `"    {:24}{}"` with `Running` / `Ready` /
//! `Down - ...`; `list` uses the `tabwriter` crate with minimum width 15 and padding 2, i.e. 17-column cells,
//! and the header `NAME STATUS DESCRIPTION Config`). Usage errors are reported clap-style with exit code 2.
//! Like the real binary it runs `systemctl` and `journalctl` as child processes (through the [`Spawn`] the
//! dispatcher gives it), so it must not import another program; it must not implement config parsing or checks
//! itself.

pub mod apply;
pub mod check;

use crate::lab::sim::edged;
use crate::lab::sim::engine;
use crate::lab::sim::gotmpl::{tabwrite, tabwrite_rust};
use crate::lab::sim::program::{spawn_child, Io, Spawn};
use crate::lab::sim::state::{Container, State, StateError, AZIOT_SERVICES};
use crate::lab::sim::time;
use check::CheckOpts;

fn usage_error(io: &mut Io, arg: &str, usage: &str) -> i32 {
    io.errln(format!(
        "error: unexpected argument '{arg}' found\n\nUsage: {usage}\n\nFor more information, try '--help'."
    ));
    2
}

fn missing_value(io: &mut Io, flag: &str, usage: &str) -> i32 {
    io.errln(format!(
        "error: a value is required for '{flag}' but none was supplied\n\nUsage: {usage}\n\nFor more information, try '--help'."
    ));
    2
}

/// `iotedge ...`.
pub fn run(st: &mut State, args: &[String], io: &mut Io, spawn: Spawn) -> Result<i32, StateError> {
    let Some(cmd) = args.first().map(String::as_str) else {
        io.errln("iotedge \nProvides a command-line interface to manage the Azure IoT Edge runtime.\n\nUsage: iotedge <COMMAND>\n\nCommands:\n  check         Check for common config and deployment issues\n  check-list    List the checks that are run for 'iotedge check'\n  config        Manage Azure IoT Edge system configuration\n  list          List modules\n  logs          Fetch the logs of a module\n  restart       Restart a module\n  support-bundle  Bundles troubleshooting information\n  system        Manage system services for IoT Edge\n  version       Show the version information\n  help          Print this message or the help of the given subcommand(s)");
        return Ok(2);
    };
    let rest = &args[1..];
    match cmd {
        "version" | "--version" | "-V" => {
            io.outln(format!("iotedge {}", st.iotedge_version()));
            Ok(0)
        }
        "config" => config(st, rest, io, spawn),
        "check" => check_cmd(st, rest, io),
        "check-list" => {
            let rows: Vec<String> = std::iter::once("CATEGORY\tID\tDESCRIPTION".to_string())
                .chain(
                    check::all_checks()
                        .into_iter()
                        .map(|(s, id, d)| format!("{s}\t{id}\t{d}")),
                )
                .collect();
            io.out(tabwrite(&rows, 1, 0));
            Ok(0)
        }
        "list" => list(st, rest, io),
        "system" => system(st, rest, io, spawn),
        "logs" | "restart" => module_cmd(st, cmd, rest, io),
        "support-bundle" => {
            io.errln("Command failed: support-bundle is not available on a simulated lab device");
            Ok(1)
        }
        other => {
            io.errln(format!(
                "error: unrecognized subcommand '{other}'\n\nUsage: iotedge <COMMAND>\n\nFor more information, try '--help'."
            ));
            Ok(2)
        }
    }
}

fn config(st: &mut State, args: &[String], io: &mut Io, spawn: Spawn) -> Result<i32, StateError> {
    match args.first().map(String::as_str) {
        Some("apply") => {
            const USAGE: &str = "iotedge config apply [OPTIONS]";
            let mut file = apply::DEFAULT_CONFIG.to_string();
            let mut i = 1;
            while i < args.len() {
                let a = &args[i];
                if a == "-c" || a == "--config-file" {
                    match args.get(i + 1) {
                        Some(v) => file = v.clone(),
                        None => return Ok(missing_value(io, "--config-file <FILE>", USAGE)),
                    }
                    i += 2;
                    continue;
                }
                if let Some(v) = a.strip_prefix("--config-file=") {
                    file = v.to_string();
                } else if let Some(v) = a.strip_prefix("-c").filter(|v| !v.is_empty()) {
                    file = v.trim_start_matches('=').to_string();
                } else {
                    return Ok(usage_error(io, a, USAGE));
                }
                i += 1;
            }
            apply::config_apply(st, &file, io, spawn)
        }
        Some("import" | "mp") => {
            io.errln("Command failed: this subcommand is not supported on a simulated lab device");
            Ok(1)
        }
        Some(other) => {
            io.errln(format!(
                "error: unrecognized subcommand '{other}'\n\nUsage: iotedge config <COMMAND>\n\nFor more information, try '--help'."
            ));
            Ok(2)
        }
        None => {
            io.errln("Manage Azure IoT Edge system configuration\n\nUsage: iotedge config <COMMAND>\n\nCommands:\n  apply   Apply the configuration to the system\n  import  Import an existing configuration file\n  mp      Quick-create a configuration file");
            Ok(2)
        }
    }
}

fn check_cmd(st: &mut State, args: &[String], io: &mut Io) -> Result<i32, StateError> {
    const USAGE: &str = "iotedge check [OPTIONS]";
    let mut o = CheckOpts::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a, None),
        };
        let value = |i: &mut usize| -> Option<String> {
            if let Some(v) = &inline {
                return Some(v.clone());
            }
            *i += 1;
            args.get(*i).cloned()
        };
        match flag {
            "-o" | "--output" => match value(&mut i).as_deref() {
                Some("json") => o.json = true,
                Some("text") => o.json = false,
                Some(other) => {
                    io.errln(format!(
                        "error: invalid value '{other}' for '--output <FORMAT>'\n  [possible values: json, text]\n\nFor more information, try '--help'."
                    ));
                    return Ok(2);
                }
                None => return Ok(missing_value(io, "--output <FORMAT>", USAGE)),
            },
            "--verbose" => o.verbose = true,
            "--warnings-as-errors" => o.warnings_as_errors = true,
            "--dont-run" => {
                // Space-separated ids, possibly as several arguments until the next flag.
                match inline {
                    Some(v) => o.dont_run.extend(v.split_whitespace().map(str::to_string)),
                    None => {
                        while i + 1 < args.len() && !args[i + 1].starts_with('-') {
                            i += 1;
                            o.dont_run
                                .extend(args[i].split_whitespace().map(str::to_string));
                        }
                    }
                }
            }
            "--container-engine-config-file"
            | "-c"
            | "--config-file"
            | "--diagnostics-image-name"
            | "--expected-aziot-edged-version"
            | "--expected-aziot-version"
            | "--iothub-hostname"
            | "--proxy-uri"
            | "--ntp-server"
            | "--aziot-edged"
            | "--aziot-bin" => {
                let Some(v) = value(&mut i) else {
                    return Ok(missing_value(io, flag, USAGE));
                };
                match flag {
                    "--container-engine-config-file" => o.container_engine_config = Some(v),
                    "--expected-aziot-edged-version" => o.expected_aziot_edged_version = Some(v),
                    "--expected-aziot-version" => o.expected_aziot_version = Some(v),
                    "--iothub-hostname" => o.iothub_hostname = Some(v),
                    "--proxy-uri" => o.proxy_uri = Some(v),
                    _ => {}
                }
            }
            other => return Ok(usage_error(io, other, USAGE)),
        }
        i += 1;
    }
    check::run_check(st, &o, io)
}

fn module_status(c: &Container, now: u64) -> (String, String) {
    match c.status.as_str() {
        "running" => (
            "running".into(),
            format!("Up {}", time::humanize(now.saturating_sub(c.started_ms))),
        ),
        "exited" if c.exit_code == 0 => (
            "stopped".into(),
            format!(
                "Stopped {} ago",
                time::humanize(now.saturating_sub(c.finished_ms))
            ),
        ),
        "exited" => (
            "failed".into(),
            format!(
                "Failed ({}) {} ago",
                c.exit_code,
                time::humanize(now.saturating_sub(c.finished_ms))
            ),
        ),
        "dead" => ("dead".into(), "Dead".into()),
        "created" => ("stopped".into(), "Stopped".into()),
        _ => ("unknown".into(), "Unknown".into()),
    }
}

fn list(st: &mut State, args: &[String], io: &mut Io) -> Result<i32, StateError> {
    if let Some(a) = args.first() {
        return Ok(usage_error(io, a, "iotedge list"));
    }
    if !engine::engine_up(st)? || !st.services()?.is_active("aziot-edged") {
        io.errln("A module runtime error occurred");
        return Ok(1);
    }
    edged::reconcile(st)?;
    let now = st.env.now_ms;
    let d = st.docker()?;
    let mut mods: Vec<&Container> = d
        .containers
        .iter()
        .filter(|c| {
            c.labels.get(edged::OWNER_LABEL).map(String::as_str) == Some(edged::OWNER_VALUE)
        })
        .collect();
    mods.sort_by_key(|c| {
        (
            match c.name.as_str() {
                "edgeAgent" => 0,
                "edgeHub" => 1,
                _ => 2,
            },
            c.name.clone(),
        )
    });
    let mut rows = vec!["NAME\tSTATUS\tDESCRIPTION\tConfig".to_string()];
    for c in mods {
        let (status, desc) = module_status(c, now);
        rows.push(format!("{}\t{status}\t{desc}\t{}", c.name, c.image));
    }
    io.out(tabwrite_rust(&rows, 15, 2));
    Ok(0)
}

fn module_cmd(st: &mut State, cmd: &str, args: &[String], io: &mut Io) -> Result<i32, StateError> {
    let Some(name) = args.iter().find(|a| !a.starts_with('-')).cloned() else {
        io.errln(format!(
            "error: the following required arguments were not provided:\n  <MODULE>\n\nUsage: iotedge {cmd} <MODULE>\n\nFor more information, try '--help'."
        ));
        return Ok(2);
    };
    if !engine::engine_up(st)? || !st.services()?.is_active("aziot-edged") {
        io.errln("A module runtime error occurred");
        return Ok(1);
    }
    edged::reconcile(st)?;
    let now = st.env.now_ms;
    let d = st.docker_mut()?;
    let Some(i) = d.find(&name) else {
        io.errln(format!(
            "A module runtime error occurred\n\tcaused by: No such container: {name}"
        ));
        return Ok(1);
    };
    let c = &mut d.containers[i];
    if cmd == "restart" {
        c.status = "running".into();
        c.started_ms = now;
        c.restart_count += 1;
        io.outln(&name);
    } else {
        io.outln(format!(
            "<6> {} [INF] - Module {name} started",
            time::rfc3339(c.started_ms)
        ));
    }
    Ok(0)
}

fn system(st: &mut State, args: &[String], io: &mut Io, spawn: Spawn) -> Result<i32, StateError> {
    match args.first().map(String::as_str) {
        Some("status") => status(st, io, spawn),
        Some("logs") => {
            let mut jargs: Vec<String> = Vec::new();
            for svc in AZIOT_SERVICES {
                jargs.push("-u".into());
                jargs.push(svc.to_string());
            }
            jargs.push("--no-pager".into());
            // Extra arguments after `--` are passed to journalctl, as the real command does.
            if let Some(pos) = args.iter().position(|a| a == "--") {
                jargs.extend(args[pos + 1..].iter().cloned());
            }
            let (code, child) = spawn(st, "journalctl", &jargs)?;
            io.out(child.out);
            io.err.push_str(&child.err);
            Ok(code)
        }
        Some("restart") => {
            if st.env.euid != 0 {
                io.errln("Command failed: this command must be run as root");
                return Ok(1);
            }
            apply::restart_services(st, io, spawn)?;
            Ok(0)
        }
        Some("stop") => {
            if st.env.euid != 0 {
                io.errln("Command failed: this command must be run as root");
                return Ok(1);
            }
            for svc in AZIOT_SERVICES {
                io.out(format!("Stopping {svc}.service..."));
                let (code, child) =
                    spawn_child(st, spawn, "systemctl", &["stop", &format!("{svc}.service")])?;
                if code == 0 {
                    io.outln("Stopped!");
                } else {
                    io.errln(child.err.trim_end());
                }
            }
            Ok(0)
        }
        Some("set-log-level" | "reprovision") => {
            if st.env.euid != 0 {
                io.errln("Command failed: this command must be run as root");
                return Ok(1);
            }
            apply::restart_services(st, io, spawn)?;
            Ok(0)
        }
        Some(other) => {
            io.errln(format!(
                "error: unrecognized subcommand '{other}'\n\nUsage: iotedge system <COMMAND>\n\nFor more information, try '--help'."
            ));
            Ok(2)
        }
        None => {
            io.errln("Manage system services for IoT Edge\n\nUsage: iotedge system <COMMAND>\n\nCommands:\n  logs           Provides a combined view of logs for IoT Edge services\n  restart        Restarts aziot-edged and all of its dependencies\n  stop           Stops aziot-edged and all of its dependencies\n  status         Reports the status for IoT Edge services\n  set-log-level  Sets the log level of aziot-edged and all of its dependencies\n  reprovision    Reprovision device with IoT Hub");
            Ok(2)
        }
    }
}

fn unit_state(
    st: &mut State,
    spawn: Spawn,
    unit: &str,
) -> Result<(String, Option<String>), StateError> {
    let (code, child) = spawn_child(st, spawn, "systemctl", &["is-active", unit])?;
    let (out, err) = (child.out, child.err);
    let _ = code;
    let o = out.trim().to_string();
    Ok(match o.as_str() {
        "active" => ("Running".into(), None),
        "inactive" => ("Ready".into(), None),
        _ => {
            let msg = format!("{} {}", o, err.trim());
            (format!("Down - {msg}"), Some(msg))
        }
    })
}

fn status(st: &mut State, io: &mut Io, spawn: Spawn) -> Result<i32, StateError> {
    let mut failed: Vec<(String, String)> = Vec::new();
    io.outln("System services:");
    for svc in AZIOT_SERVICES {
        let unit = format!("{svc}.service");
        let (mut display, mut fail) = unit_state(st, spawn, &unit)?;
        let sockets: Vec<String> = if svc == "aziot-edged" {
            vec![
                "aziot-edged.mgmt.socket".into(),
                "aziot-edged.workload.socket".into(),
            ]
        } else {
            vec![format!("{svc}.socket")]
        };
        if display == "Running" {
            for s in &sockets {
                if !st.services()?.is_active(s) {
                    display = "Down - socket error".into();
                    fail = Some("socket error".into());
                }
            }
        }
        io.outln(format!("    {svc:24}{display}"));
        if let Some(f) = fail {
            failed.push((svc.to_string(), f));
        }
    }
    io.outln("");
    for (svc, msg) in failed {
        io.outln(format!("{svc} is in a bad state because:"));
        io.outln(format!(
            "{svc}.service: Down - {msg}: Printing the last 10 log lines."
        ));
        let jargs: Vec<String> = [
            "-u",
            &format!("{svc}.service"),
            "--no-pager",
            "-e",
            "-n",
            "10",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (_, child) = spawn(st, "journalctl", &jargs)?;
        io.out(child.out);
        io.err.push_str(&child.err);
        io.outln("");
    }
    io.outln("Use 'iotedge system logs' to check for non-fatal errors.");
    io.outln("Use 'iotedge check' to diagnose connectivity and configuration issues.");
    Ok(0)
}
