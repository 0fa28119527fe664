//! Simulated device programs (`iotedge`, `docker`, `systemctl`, `journalctl`, `dpkg-query`, `dpkg`, `apt-mark`,
//! `curl`), run on lab devices through
//! tiny wrappers that call `edgefleet __sim NAME ...`.
//!
//! They are an independent oracle for edgefleet's own IoT Edge logic: they implement the device's rules from
//! the IoT Edge 1.5 facts (`/work/shared/reference/iotedge-1.5-facts.md`) and the real sources' texts, and they
//! must NOT use anything from `crate::iotedge`. State lives in the device (see `state`), so every program is a
//! short-lived process: no async runtime, no global initialisation beyond reading the few state files a command
//! needs, under one per-device `flock`.
//!
//! Layout, top to bottom (a file imports only from rows below it; programs never import each other):
//! - this file: the dispatcher (`run_program`, and the [`Spawn`](program::Spawn) through which `iotedge` runs
//!   `systemctl` and `journalctl` as child processes);
//! - `lab_states`: what the lab's maintenance states put on a device (dangling images, unused volumes with
//!   real data, an old runtime) and take away again, for the lab supervisor;
//! - the programs: `iotedge` (with `iotedge::apply` = `config apply` and `iotedge::check`), `docker`,
//!   `systemctl`, `journalctl`, `dpkg` (`dpkg -i`, `dpkg-query`, `apt-mark` over the package database), `curl`
//!   (the lab's "internet": answers the reachability probe from the network faults, never touching a network);
//! - the services model: `services` (what starting/stopping a unit does), `edged` (the IoT Edge daemons and
//!   their module containers), `engine` (dockerd, daemon.json, image references and IDs);
//! - the device model: `units` (unit names, descriptions), `unitenv` (unit environments from systemd drop-ins,
//!   loaded at daemon-reload), `applied` (generated service configs), `config` (the
//!   super config parser), `users` (accounts, permission checks), `pki`, `gotmpl` (`--format`), `pkgdb` (the
//!   package database, which units and commands exist, the device's architecture, `airgapped`), `debfile`
//!   (a `.deb`'s control data, Debian versions and relations), `state`
//!   (files, lock, counters, journal), `time`, and `program` (`Io`, `Spawn`).
//!
//! Environment: `EDGEFLEET_SIM_ROOT` confines every device path under a directory (tests); `EDGEFLEET_SIM_HOSTNAME`
//! overrides the machine hostname; `EDGEFLEET_SIM_EUID` (TEST-ONLY) overrides the effective uid so root-only
//! paths can be tested by a root test runner.
//!
//! State under `/var/lib/edgefleet-lab/` (world-writable, so non-root callers are recorded too):
//! `counters.json` (`config_apply`, `config_apply_failed`, `service_restart`, `docker_restart`, `iotedge_check`,
//! and `invoke_<program>` per program), `invocations.log` (`<unix_ms> <program> <args...>`; the systemctl calls
//! `iotedge` makes internally appear as their own lines, as real child processes would), `journal/<unit>.log`,
//! `services.json`, `docker.json`, `faults/{apply-fails,check-error,docker-down,edge-ca-rejected,container-list-fails,dns-fails,ports-blocked,behind-proxy,crashloop-after-change}`,
//! `unit-env.json` (the loaded drop-in environments),
//! `packages.json` and `dpkg.json` (the package database, see `pkgdb`). Knobs for the lab and tests:
//! `architecture` (the device's dpkg architecture, default amd64), `airgapped` (no route out),
//! `docker.json` → `engine` (`version`, `platform_name`: empty = Moby, `Docker Engine - Community` = Docker CE)
//! and `deployment.json` (a deployment manifest the simulated edgeAgent applies: edgeHub and custom modules,
//! with their createOptions and env; without it, a default edgeHub without host storage runs).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub mod applied;
pub mod config;
pub mod curl;
pub mod debfile;
pub mod docker;
pub mod dpkg;
pub mod edged;
pub mod engine;
pub mod gotmpl;
pub mod iotedge;
pub mod journalctl;
pub mod lab_states;
pub mod pkgdb;
pub mod pki;
pub mod program;
pub mod services;
pub mod state;
pub mod systemctl;
pub mod time;
pub mod unitenv;
pub mod units;
pub mod users;

pub use program::Io;
use state::{Env, Services, State, StateError};

/// The simulated programs.
const PROGRAMS: [&str; 8] = [
    "iotedge",
    "docker",
    "systemctl",
    "journalctl",
    "dpkg-query",
    "curl",
    "dpkg",
    "apt-mark",
];

/// Run one simulated program in-process: `args[0]` is the program name (`iotedge`, `docker`, `systemctl`,
/// `journalctl`). Returns the exit code and the captured output. Used by [`main`] and by tests.
pub fn run_program(env: Env, args: &[String]) -> (i32, Io) {
    let mut io = Io::default();
    let Some(program) = args.first().cloned() else {
        io.errln("edgefleet __sim: missing program name");
        return (127, io);
    };
    let rest = &args[1..];
    if !PROGRAMS.contains(&program.as_str()) {
        io.errln(format!("{program}: simulator not available"));
        return (127, io);
    }
    let res = (|| -> Result<i32, StateError> {
        let mut st = State::open(env)?;
        st.log_invocation(&program, rest)?;
        // A command a package brings does not exist before the package is installed (`lab up --bare`).
        if let Some(pkg) = pkgdb::command_package(&program) {
            if !pkgdb::installed(&st, pkg)? {
                io.errln(format!("sh: 1: {program}: not found"));
                return Ok(127);
            }
        }
        let code = dispatch(&mut st, &program, rest, &mut io)?;
        st.flush()?;
        Ok(code)
    })();
    match res {
        Ok(code) => (code, io),
        Err(e) => {
            io.errln(format!("{program}: {e}"));
            (1, io)
        }
    }
}

/// Run one program on an open state.
fn dispatch(
    st: &mut State,
    program: &str,
    args: &[String],
    io: &mut Io,
) -> Result<i32, StateError> {
    match program {
        "iotedge" => iotedge::run(st, args, io, spawn),
        "docker" => docker::run(st, args, io),
        "systemctl" => systemctl::run(st, args, io),
        "journalctl" => journalctl::run(st, args, io),
        "dpkg-query" => dpkg::query(st, args, io),
        "dpkg" => dpkg::dpkg(st, args, io),
        "apt-mark" => dpkg::apt_mark(st, args, io),
        "curl" => curl::run(st, args, io),
        other => {
            io.errln(format!("{other}: simulator not available"));
            Ok(127)
        }
    }
}

/// The [`Spawn`](program::Spawn) given to programs: a child program logged in `invocations.log` like a real
/// child process, run in-process on the same (locked) state, its output captured.
fn spawn(st: &mut State, program: &str, args: &[String]) -> Result<(i32, Io), StateError> {
    st.log_invocation(program, args)?;
    let mut io = Io::default();
    let code = dispatch(st, program, args, &mut io)?;
    Ok((code, io))
}

/// Entry point of the multi-call simulator; returns the exit code.
pub fn main(args: &[OsString]) -> i32 {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (code, io) = run_program(Env::from_process(), &args);
    let _ = io::stdout().write_all(io.out.as_bytes());
    let _ = io::stdout().flush();
    let _ = io::stderr().write_all(io.err.as_bytes());
    code
}

/// Create a fresh device's simulator state under the device root (`<root>/var/lib/edgefleet-lab/...`): docker
/// active, the aziot services inactive with their sockets listening, no containers, no daemon.json, no
/// config.toml. Also creates the directories the IoT Edge packages own (`/etc/aziot/<svc>/config.d`,
/// `/etc/docker`, `/var/lib/docker/volumes`, `/var/aziot`, `/var/lib/aziot/*`) and, only if missing, default `/etc/passwd` and
/// `/etc/group` with the IoT Edge service users. Existing state files are left untouched.
pub fn init_device_state(root: &Path) -> io::Result<()> {
    let env = Env::for_root(root);
    let to_io = |e: StateError| io::Error::other(e.to_string());
    let dir = env.path(state::STATE_DIR);
    for d in [dir.clone(), dir.join("journal")] {
        std::fs::create_dir_all(&d)?;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(state::STATE_DIR_MODE))?;
    }
    std::fs::create_dir_all(dir.join("faults"))?;
    for svc in ["keyd", "certd", "identityd", "tpmd", "edged"] {
        std::fs::create_dir_all(env.path(&format!("/etc/aziot/{svc}/config.d")))?;
        std::fs::create_dir_all(env.path(&format!("/var/lib/aziot/{svc}")))?;
    }
    std::fs::create_dir_all(env.path("/etc/docker"))?;
    // moby-engine's data root (the simulated engine keeps volume data under it; `df` and `du` read it).
    std::fs::create_dir_all(env.path("/var/lib/docker/volumes"))?;
    std::fs::create_dir_all(env.path("/var/aziot"))?;
    for (file, text) in [
        ("/etc/passwd", users::DEFAULT_PASSWD),
        ("/etc/group", users::DEFAULT_GROUP),
    ] {
        let p = env.path(file);
        if !p.exists() {
            state::write_atomic(&p, text.as_bytes(), 0o644).map_err(to_io)?;
        }
    }
    let now = env.now_ms;
    let services = env.state_file("services.json");
    if !services.exists() {
        state::write_json(&services, &Services::fresh(now)).map_err(to_io)?;
    }
    let docker = env.state_file("docker.json");
    if !docker.exists() {
        state::write_json(&docker, &state::Docker::default()).map_err(to_io)?;
        let st = State::open(env.clone()).map_err(to_io)?;
        st.journal(
            "docker",
            "systemd[1]",
            "Starting Docker Application Container Engine...",
        )
        .map_err(to_io)?;
        st.journal(
            "docker",
            "systemd[1]",
            "Started Docker Application Container Engine.",
        )
        .map_err(to_io)?;
    }
    let counters = env.state_file("counters.json");
    if !counters.exists() {
        state::write_json(&counters, &BTreeMap::<String, u64>::new()).map_err(to_io)?;
    }
    let log = env.state_file("invocations.log");
    if !log.exists() {
        state::write_atomic(&log, b"", state::STATE_FILE_MODE).map_err(to_io)?;
    }
    Ok(())
}

/// The packages of a bare device: a minimal Debian 12 base system (what a fresh install has before IoT Edge),
/// so a bundle's dependencies on it (libc6, adduser, iptables, ...) hold as on a real device.
pub const BARE_BASE_SYSTEM: [(&str, &str); 8] = [
    ("adduser", "3.134"),
    ("base-files", "12.4+deb12u5"),
    ("ca-certificates", "20230311"),
    ("iptables", "1.8.9-2"),
    ("libc6", "2.36-9+deb12u4"),
    ("libssl3", "3.0.11-1~deb12u2"),
    ("openssl", "3.0.11-1~deb12u2"),
    ("tar", "1.34+dfsg-1.2+deb12u1"),
];

/// Make a freshly initialised device bare (no IoT Edge or engine packages, only [`BARE_BASE_SYSTEM`]; the
/// engine's units stopped, which no longer exist until `moby-engine` is installed) and/or airgapped (the `airgapped` marker the network tools
/// honour). Only ever adds: a device made without the options is left as it is.
pub fn init_device_options(root: &Path, bare: bool, airgapped: bool) -> io::Result<()> {
    let env = Env::for_root(root);
    let to_io = |e: StateError| io::Error::other(e.to_string());
    if bare {
        state::write_json(
            &env.state_file("packages.json"),
            &BARE_BASE_SYSTEM
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect::<BTreeMap<String, String>>(),
        )
        .map_err(to_io)?;
        let mut services = Services::fresh(env.now_ms);
        for u in ["docker", "docker.socket", "containerd"] {
            services.set(u, "inactive", env.now_ms);
        }
        state::write_json(&env.state_file("services.json"), &services).map_err(to_io)?;
        let _ = std::fs::remove_file(env.state_file("journal").join("docker.log"));
    }
    if airgapped {
        state::write_atomic(&env.state_file("airgapped"), b"", state::STATE_FILE_MODE)
            .map_err(to_io)?;
    }
    Ok(())
}

/// Read a device's counters (`<root>/var/lib/edgefleet-lab/counters.json`); missing file = all zero.
pub fn read_counters(root: &Path) -> io::Result<BTreeMap<String, u64>> {
    let p = root.join("var/lib/edgefleet-lab/counters.json");
    match std::fs::read(&p) {
        Ok(b) => {
            serde_json::from_slice(&b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e),
    }
}
