//! The lab: a simulated fleet of IoT Edge devices on loopback, for tests, demos and benchmarks.
//!
//! Owns bringing devices up and down (namespaces, SSH servers, addresses), fault injection, and the simulated
//! device programs (`sim`, written separately). It must not be needed by the rest of edgefleet to talk to real
//! devices: to edgefleet a lab device is just an SSH host in an inventory.
//!
//! How it fits together:
//! - [`Lab::up`] (and `edgefleet lab up`) checks privileges, allocates an address block (`layout`), writes keys,
//!   PKI, device roots, `inventory.yml` and `known_hosts` (`provision`), then starts the supervisor daemon
//!   (`edgefleet lab serve`, `supervisor`) in its own session and waits until every device answers SSH.
//! - The supervisor gives each device its own mount + UTS namespace (`ns`) and an SSH server on its own
//!   loopback address, port 22: a real `sshd` per device (openssh backend) or a russh listener inside the
//!   supervisor (embedded backend, `embedded`). It applies faults on request through its control socket.
//! - [`Lab::down`] (and `edgefleet lab down`) asks the supervisor to tear down, waits until it is gone, then kills
//!   any process still inside a device's mount namespace (recorded in `run/state.json`), so no process, mount or
//!   address is left behind even if the supervisor was killed.
//!
//! Requirements: root (namespaces, setuid to device users, port 22), or, for an ordinary user, unprivileged
//! user namespaces plus a subordinate id range (`/etc/subuid`, `/etc/subgid`) and `newuidmap`/`newgidmap`
//! (`userns`): then the supervisor runs as root inside a user namespace where the invoking user is root and ids
//! 1..=65536 are the user's subordinate ids, so device users own their files as on a real device; devices listen
//! on port 2222 (ports below 1024 need root); both backends work, `--user admin` (sudo is setuid root on the
//! host) and `--bastion` (port 22 and /run/sshd on the host) are refused; when the lab is down its device files
//! are handed back to the invoking user. Without the id range or the helpers, `lab up` refuses and names the
//! commands that fix it. `/usr/sbin/sshd` is needed for the openssh backend and for `--bastion`, `sudo` for
//! `--user admin`. Missing pieces are reported by name.
//!
//! What a device is (both backends): its own loopback address 127.S.x.y port 22 (S = the lab's slot), its own
//! host key, key-only login as root or admin (authorized_keys in the device's home), its own hostname (UTS
//! namespace) and files (mount namespace, see `ns`), private /tmp and /run, the device's /etc/passwd, shadow,
//! group and sudoers.d, real sudo, the simulator wrappers on /usr/local/bin, and the login shell semantics of
//! sshd (`$SHELL -c CMD` with sshd's environment, cwd = home). Known differences from a real device: devices
//! share the host's PID and network namespaces (outside bastion mode), so `ps` inside a device lists host
//! processes (use [`Lab::ps_capture`], which attributes processes to devices by mount namespace); the
//! embedded backend has no PTY, SFTP or port forwarding and does not emulate `MaxStartups` (it does enforce
//! Debian's `MaxSessions 10`).
//!
//! Bare and air-gapped devices (`LabConfig::bare`, `LabConfig::airgapped`, `lab up --bare --airgapped`): a bare
//! device's package database holds only a Debian base system, so it has no engine, no IoT Edge, none of their
//! units or commands until `dpkg -i` installs the packages (the simulator reads each `.deb`'s real control data);
//! an air-gapped device has no route out: the simulated tools that would use the internet (`docker pull`,
//! edgeAgent's image pulls, `iotedge check`'s connectivity and version lookups) fail as on an isolated site. In
//! bastion mode the devices' network namespace has no default route either.
//!
//! Bastion mode (`LabConfig::bastion`): the devices share one private network namespace (only `lo`, their
//! 127.S.x.y addresses live there), an OpenSSH bastion runs in it on 127.S.0.254, and the supervisor forwards
//! the host's 127.S.0.254:22 to it: that forwarder is the only way in, so `ssh -F DIR/ssh_config -J
//! root@127.S.0.254 DEVICE` works and a direct connection is refused. No address outside 127.0.0.0/8 is used.
//!
//! The API is blocking (no async runtime needed or created on the normal paths); from async code, call it in
//! `spawn_blocking`.
//!
//! Measured on the 2-core / 24 GiB dev machine (debug build, shared with other builds, load average 2-10):
//! `lab up --devices 1000` (embedded) 7.6-26 s end to end (provisioning 1000 device roots, PKI and age files
//! is most of it; namespaces 5-7 s); `lab up --devices 200 --backend openssh` 4.9-5.2 s; `lab down` 0.3-0.5 s.
//! Idle memory per device: embedded ~125 KiB user space (PSS: the `sleep` namespace holder ~110 KiB plus the
//! supervisor's share) plus ~370 KiB kernel slab (mount namespace, tmpfs, overlay); openssh ~1.4 MiB (PSS of
//! its sshd and holder) plus ~440 KiB kernel.

pub mod embedded;
mod error;
pub mod layout;
pub mod ns;
pub mod procmon;
pub mod provision;
pub mod sim;
pub mod supervisor;
pub mod userns;

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use error::LabError;
use layout::{DeviceSpec, LabSpec, Paths, RuntimeState};
pub use supervisor::{FaultKind, LOCKED_FAULT_RUN};

/// Devices a lab has when nobody says how many.
pub const DEFAULT_DEVICES: usize = 20;

/// Lab backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LabBackend {
    /// An SSH server built into edgefleet (russh), for large N and machines without sshd.
    #[default]
    Embedded,
    /// A real OpenSSH sshd per device.
    Openssh,
}

/// The login user of lab devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LabUser {
    /// Log in as root.
    #[default]
    Root,
    /// Log in as `admin` and use sudo (become).
    Admin,
}

/// How to bring a lab up.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// Lab directory (created if missing; must be empty or a previous lab).
    pub dir: PathBuf,
    /// Number of devices.
    pub devices: usize,
    /// SSH server backend.
    pub backend: LabBackend,
    /// Login user.
    pub user: LabUser,
    /// The edgefleet binary for the supervisor and the device wrappers (default: `$EDGEFLEET_BIN`, else the
    /// current executable if it is edgefleet). Tests set it to the built `edgefleet` binary, since their own
    /// executable is the test harness.
    pub exe: Option<PathBuf>,
    /// Put the devices in a private network namespace reachable only through a bastion sshd (for ProxyJump).
    pub bastion: bool,
    /// Bare devices: an empty package database, so no IoT Edge, engine, units or `iotedge`/`docker` commands
    /// until packages are installed with `dpkg -i`.
    pub bare: bool,
    /// Devices with no route out (the simulator's network tools fail as on an isolated site; in bastion mode the
    /// devices' namespace has no default route either).
    pub airgapped: bool,
}

impl LabConfig {
    /// `devices` devices in `dir`, embedded backend, login as root.
    pub fn new(dir: impl Into<PathBuf>, devices: usize) -> LabConfig {
        LabConfig {
            dir: dir.into(),
            devices,
            backend: LabBackend::Embedded,
            user: LabUser::Root,
            exe: None,
            bastion: false,
            bare: false,
            airgapped: false,
        }
    }
}

/// One device of a running lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Name (also its hostname and inventory host name).
    pub name: String,
    /// Loopback address.
    pub address: Ipv4Addr,
    /// SSH port.
    pub port: u16,
    /// The device's state root on the host.
    pub root: PathBuf,
    /// `manual` or `dps`.
    pub provisioning: String,
}

/// What `status` reports per device.
#[derive(Debug, Clone)]
pub struct DeviceStatus {
    /// The device.
    pub device: DeviceInfo,
    /// Answers with an SSH banner right now.
    pub up: bool,
    /// Active faults.
    pub faults: Vec<String>,
    /// Simulator counters.
    pub counters: BTreeMap<String, u64>,
}

/// A running lab.
#[derive(Debug)]
pub struct Lab {
    paths: Paths,
    spec: LabSpec,
    state: RuntimeState,
    child: Option<std::process::Child>,
    teardown_on_drop: bool,
    is_down: bool,
}

/// The CLI spelling of a backend.
pub fn backend_name(b: LabBackend) -> &'static str {
    match b {
        LabBackend::Embedded => "embedded",
        LabBackend::Openssh => "openssh",
    }
}

/// Generated files and directories that `lab up` replaces in a previous lab's directory.
const GENERATED: [&str; 16] = [
    "bastion",
    "ssh_config",
    "devices",
    "pki",
    "host_vars",
    "bin",
    "run",
    "lab.json",
    "inventory.yml",
    "known_hosts",
    "client_ed25519",
    "client_ed25519.pub",
    "lab.agekey",
    ".age-recipients",
    "supervisor.log",
    ".gitignore",
];

fn prepare_dir(paths: &Paths, uns: Option<&userns::UserNs>) -> Result<(), LabError> {
    let dir = &paths.dir;
    if dir.exists() {
        if paths.spec().exists() {
            if let Ok(st) = layout::read_json::<RuntimeState>(&paths.state()) {
                if layout::pid_alive(st.supervisor_pid) {
                    return Err(LabError::AlreadyRunning(
                        dir.display().to_string(),
                        st.supervisor_pid,
                    ));
                }
            }
            cleanup_leftovers(paths, uns)?;
            for g in GENERATED {
                let p = dir.join(g);
                let r = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
                match r {
                    Err(e) if !layout::not_found(&e) => return Err(LabError::io(&p, e)),
                    _ => {}
                }
            }
        } else {
            let non_empty = std::fs::read_dir(dir)
                .map_err(|e| LabError::io(dir, e))?
                .next()
                .is_some();
            if non_empty {
                return Err(LabError::Invalid(format!(
                    "{} exists, is not empty and is not a lab directory (no lab.json): choose another --dir",
                    dir.display()
                )));
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| LabError::io(dir, e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| LabError::io(dir, e))?;
    std::fs::write(dir.join(".gitignore"), "*\n").map_err(|e| LabError::io(dir, e))?;
    Ok(())
}

/// Kill every process left in the namespaces recorded in `run/state.json` (after a supervisor crash), then,
/// for an unprivileged lab, give the device files back to the caller (see [`release_files`]).
/// Returns how many processes were killed.
fn cleanup_leftovers(paths: &Paths, uns: Option<&userns::UserNs>) -> Result<usize, LabError> {
    let Ok(spec) = layout::read_json::<LabSpec>(&paths.spec()) else {
        return Ok(0);
    };
    let killed = kill_leftovers(paths, &spec);
    release_files(paths, &spec, uns)?;
    Ok(killed)
}

/// An unprivileged lab's device files belong to the caller's subordinate ids (aziotcs, sshd, ... inside), which
/// the caller cannot delete or even read: once the lab is down, give every file under `devices/` to the
/// namespace's root, i.e. back to the caller, so that `rm -rf` of the lab directory and a new `lab up` work.
/// (As root, or for a lab that was not unprivileged, nothing to do.)
fn release_files(
    paths: &Paths,
    spec: &LabSpec,
    uns: Option<&userns::UserNs>,
) -> Result<(), LabError> {
    let devices = paths.dir.join("devices");
    // SAFETY: geteuid has no preconditions.
    if !spec.userns || unsafe { libc::geteuid() } == 0 || !devices.exists() {
        return Ok(());
    }
    let fresh;
    let uns = match uns {
        Some(u) => u,
        None => {
            let map = match userns::check_privileges().map_err(LabError::Privileges)? {
                userns::Privilege::UserNs(m) => m,
                userns::Privilege::Root => return Ok(()),
            };
            fresh = userns::UserNs::create(&map).map_err(|e| userns_err(&e))?;
            &fresh
        }
    };
    uns.chown_tree_to_root(&devices)
        .map_err(|e| LabError::io(&devices, e))
}

fn userns_err(e: &io::Error) -> LabError {
    LabError::Privileges(format!(
        "could not create the unprivileged lab's user namespace with the subordinate ids of /etc/subuid and          /etc/subgid: {e}"
    ))
}

/// Kill every process of the lab left in the namespaces recorded in `run/state.json`; returns how many.
fn kill_leftovers(paths: &Paths, spec: &LabSpec) -> usize {
    let Ok(st) = layout::read_json::<RuntimeState>(&paths.state()) else {
        return 0;
    };
    // Only processes whose mount table carries this lab's marker: the recorded inodes may have been reused.
    // The bastion's network namespace is not trusted here for the same reason (its holder and sshd die with
    // the supervisor anyway).
    let inodes = st.devices.iter().map(|d| d.mnt_ns).collect();
    let n = ns::kill_all(
        &inodes,
        None,
        &std::collections::HashSet::new(),
        Duration::from_secs(20),
        &ns::lab_marker(&spec.id),
    );
    let _ = std::fs::remove_file(paths.state());
    if st.socket.starts_with(layout::run_base()) {
        let _ = std::fs::remove_file(&st.socket);
    }
    n
}

fn log_tail(paths: &Paths) -> String {
    let text = std::fs::read_to_string(paths.supervisor_log()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl Lab {
    /// Bring a lab up: provision, start the supervisor, and return once every device accepts SSH connections.
    pub fn up(cfg: &LabConfig) -> Result<Lab, LabError> {
        let idmap = match userns::check_privileges().map_err(LabError::Privileges)? {
            userns::Privilege::Root => None,
            userns::Privilege::UserNs(m) => Some(m),
        };
        let userns = idmap.is_some();
        if userns {
            let mut missing = Vec::new();
            if cfg.user == LabUser::Admin {
                missing.push("--user admin (sudo is setuid root, and the host's root is not in the lab's user namespace)");
            }
            if cfg.bastion {
                missing.push("--bastion (its forwarder listens on the host's port 22, its sshd uses the host's /run/sshd)");
            }
            if !missing.is_empty() {
                return Err(LabError::Privileges(format!(
                    "not running as root, so the lab runs in an unprivileged user namespace, which cannot do {}: \
                     run as root, or use --user root without --bastion",
                    missing.join(", ")
                )));
            }
        }
        if cfg.devices == 0 || cfg.devices > layout::MAX_DEVICES {
            return Err(LabError::Invalid(format!(
                "--devices must be between 1 and {} (got {})",
                layout::MAX_DEVICES,
                cfg.devices
            )));
        }
        if cfg.backend == LabBackend::Openssh && !ns::executable(Path::new("/usr/sbin/sshd")) {
            return Err(LabError::Missing(
                "the openssh backend runs OpenSSH's sshd, but /usr/sbin/sshd is missing: install it \
                 (Debian/Ubuntu: apt-get install openssh-server) or use --backend embedded"
                    .into(),
            ));
        }
        if cfg.bastion && !ns::executable(Path::new("/usr/sbin/sshd")) {
            return Err(LabError::Missing(
                "--bastion runs OpenSSH's sshd as the jump host, but /usr/sbin/sshd is missing: install it \
                 (Debian/Ubuntu: apt-get install openssh-server)"
                    .into(),
            ));
        }
        if cfg.user == LabUser::Admin && !ns::executable(Path::new("/usr/bin/sudo")) {
            return Err(LabError::Missing(
                "--user admin devices become root with sudo, but /usr/bin/sudo is missing: install it \
                 (Debian/Ubuntu: apt-get install sudo) or use --user root"
                    .into(),
            ));
        }
        let exe = match (&cfg.exe, std::env::var_os("EDGEFLEET_BIN")) {
            (Some(e), _) => e.clone(),
            (None, Some(e)) => PathBuf::from(e),
            (None, None) => {
                let e =
                    std::env::current_exe().map_err(|e| LabError::io("current executable", e))?;
                let name = e
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !name.starts_with("edgefleet") {
                    return Err(LabError::Invalid(format!(
                        "this process ({name}) is not the edgefleet binary, which the lab runs as its supervisor and \
                         device programs: set LabConfig::exe (in integration tests: env!(\"CARGO_BIN_EXE_edgefleet\")) \
                         or EDGEFLEET_BIN"
                    )));
                }
                e
            }
        };
        if !ns::executable(&exe) {
            return Err(LabError::Missing(format!(
                "the edgefleet binary {} is not executable",
                exe.display()
            )));
        }
        let paths = Paths::new(&cfg.dir)?;
        let shown = paths.dir.to_string_lossy();
        if shown.contains(',') || shown.contains(':') || shown.contains('\n') {
            return Err(LabError::Invalid(format!(
                "the lab directory path must not contain ',', ':' or newlines (they break mount options): {shown}"
            )));
        }
        // The unprivileged lab's user namespace, for as long as this function needs it (the supervisor joins it
        // and keeps it alive).
        let uns = idmap
            .map(|m| userns::UserNs::create(&m))
            .transpose()
            .map_err(|e| userns_err(&e))?;
        prepare_dir(&paths, uns.as_ref())?;
        let (slot, lock) = layout::lock_slot(userns.then(|| layout::device_port(true)))?;
        let devices: Vec<DeviceSpec> = (0..cfg.devices)
            .map(|i| DeviceSpec {
                name: layout::device_name(i),
                addr: layout::device_addr(slot, i),
                port: layout::device_port(userns),
                provisioning: if i % 2 == 0 { "manual" } else { "dps" }.into(),
            })
            .collect();
        let spec = LabSpec {
            version: 1,
            dir: paths.dir.clone(),
            backend: backend_name(cfg.backend).into(),
            user: match cfg.user {
                LabUser::Root => "root",
                LabUser::Admin => "admin",
            }
            .into(),
            slot,
            exe: exe.clone(),
            devices,
            bastion: cfg.bastion,
            bare: cfg.bare,
            airgapped: cfg.airgapped,
            userns,
            id: {
                let mut b = [0u8; 8];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
                hex::encode(b)
            },
        };
        let keys = provision::lab_keys(&paths)?;
        let mut outs = provision_all(&paths, &spec, &keys)?;
        if spec.bastion {
            // sshd's privilege separation directory; the bastion runs in the host's mount namespace.
            std::fs::create_dir_all("/run/sshd").map_err(|e| LabError::io("/run/sshd", e))?;
            outs.push(provision::bastion(&paths, &spec, &keys)?);
        }
        provision::ssh_config(&paths, &spec)?;
        provision::wrappers(&paths, &exe)?;
        // lab.json first: once device files belong to device users, cleanup must know the lab is unprivileged.
        layout::write_json(&paths.spec(), &spec, 0o644)?;
        let owners: Vec<provision::Owner> =
            outs.iter_mut().flat_map(|o| o.owners.drain(..)).collect();
        match &uns {
            Some(u) => u
                .chown(&owners)
                .map_err(|e| LabError::io(paths.dir.join("devices"), e))?,
            None => provision::set_owners(&owners)?,
        }
        layout::write_atomic(
            &paths.inventory(),
            provision::inventory(&paths, &spec).as_bytes(),
            0o644,
        )?;
        layout::write_atomic(
            &paths.known_hosts(),
            provision::known_hosts(&outs).as_bytes(),
            0o644,
        )?;

        // Start the supervisor in its own session; it inherits the slot lock.
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(paths.supervisor_log())
            .map_err(|e| LabError::io(paths.supervisor_log(), e))?;
        let logf2 = logf
            .try_clone()
            .map_err(|e| LabError::io(paths.supervisor_log(), e))?;
        let lock_fd = lock.as_raw_fd();
        let mut c = std::process::Command::new(&exe);
        c.arg("lab")
            .arg("serve")
            .arg("--dir")
            .arg(&paths.dir)
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .stdout(logf)
            .stderr(logf2);
        // SAFETY: setsid and fcntl are async-signal-safe.
        unsafe {
            c.pre_exec(move || {
                libc::setsid();
                libc::fcntl(lock_fd, libc::F_SETFD, 0);
                Ok(())
            });
        }
        if let Some(u) = &uns {
            u.enter(&mut c).map_err(|e| userns_err(&e))?;
        }
        let child = c
            .spawn()
            .map_err(|e| LabError::io(format!("{} lab serve", exe.display()), e))?;
        drop(lock);
        drop(uns);
        let mut lab = Lab {
            paths,
            spec,
            state: RuntimeState::default(),
            child: Some(child),
            teardown_on_drop: true,
            is_down: false,
        };
        let limit = Duration::from_secs(120 + cfg.devices as u64 / 5);
        let t0 = Instant::now();
        loop {
            if let Ok(st) = layout::read_json::<RuntimeState>(&lab.paths.state()) {
                if st.ready {
                    lab.state = st;
                    return Ok(lab);
                }
            }
            if let Some(ch) = lab.child.as_mut() {
                if let Ok(Some(status)) = ch.try_wait() {
                    let tail = log_tail(&lab.paths);
                    lab.is_down = true;
                    let cleanup = match cleanup_leftovers(&lab.paths, None) {
                        Ok(_) => String::new(),
                        Err(e) => format!("\n(and cleaning up failed: {e})"),
                    };
                    return Err(LabError::Supervisor(format!(
                        "it exited ({status}) before every device was up; last lines of {}:\n{tail}{cleanup}",
                        lab.paths.supervisor_log().display()
                    )));
                }
            }
            if t0.elapsed() > limit {
                let tail = log_tail(&lab.paths);
                let _ = lab.shutdown();
                return Err(LabError::Supervisor(format!(
                    "devices not up after {}s; last lines of {}:\n{tail}",
                    limit.as_secs(),
                    lab.paths.supervisor_log().display()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Attach to the running lab in `dir`.
    pub fn open(dir: &Path) -> Result<Lab, LabError> {
        let paths = Paths::new(dir)?;
        if !paths.spec().exists() {
            return Err(LabError::NotRunning(format!(
                "no lab in {} (no lab.json): start one with `edgefleet lab up --dir {}`",
                paths.dir.display(),
                dir.display()
            )));
        }
        let spec: LabSpec = layout::read_json(&paths.spec())?;
        let state: RuntimeState = match layout::read_json(&paths.state()) {
            Ok(s) => s,
            Err(_) => {
                return Err(LabError::NotRunning(format!(
                    "the lab in {} is not running: start it with `edgefleet lab up --dir {}`",
                    paths.dir.display(),
                    dir.display()
                )))
            }
        };
        if !layout::pid_alive(state.supervisor_pid) {
            return Err(LabError::NotRunning(format!(
                "the lab in {} is not running (its supervisor, pid {}, is gone): run `edgefleet lab down --dir {}` \
                 to clean up, then `edgefleet lab up`",
                paths.dir.display(),
                state.supervisor_pid,
                dir.display()
            )));
        }
        Ok(Lab {
            paths,
            spec,
            state,
            child: None,
            teardown_on_drop: false,
            is_down: false,
        })
    }

    /// Clean up a lab directory whose supervisor is gone: kill leftover device processes. Returns how many.
    pub fn cleanup(dir: &Path) -> Result<usize, LabError> {
        let paths = Paths::new(dir)?;
        if let Ok(st) = layout::read_json::<RuntimeState>(&paths.state()) {
            if layout::pid_alive(st.supervisor_pid) {
                return Err(LabError::AlreadyRunning(
                    paths.dir.display().to_string(),
                    st.supervisor_pid,
                ));
            }
        }
        cleanup_leftovers(&paths, None)
    }

    /// Tear the lab down: every process, mount and listener goes away. Files stay for inspection.
    pub fn down(mut self) -> Result<(), LabError> {
        self.shutdown()
    }

    /// Keep the lab running after this handle is dropped (what `edgefleet lab up` does).
    pub fn detach(mut self) {
        self.teardown_on_drop = false;
        self.child = None;
    }

    fn shutdown(&mut self) -> Result<(), LabError> {
        if self.is_down {
            return Ok(());
        }
        self.is_down = true;
        let pid = self.state.supervisor_pid;
        if pid > 0 && layout::pid_alive(pid) {
            if supervisor::request(&self.state.socket, &supervisor::Request::Shutdown).is_err() {
                // SAFETY: kill(2) on the supervisor's pid.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        } else if let Some(c) = self.child.as_ref() {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        let t0 = Instant::now();
        let gone = loop {
            let alive = match self.child.as_mut() {
                Some(c) => matches!(c.try_wait(), Ok(None)),
                None => layout::pid_alive(pid),
            };
            if !alive {
                break true;
            }
            if t0.elapsed() > Duration::from_secs(60) {
                break false;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if !gone {
            let p = self.child.as_ref().map(|c| c.id() as i32).unwrap_or(pid);
            // SAFETY: kill(2) on the supervisor's pid.
            unsafe { libc::kill(p, libc::SIGKILL) };
            if let Some(c) = self.child.as_mut() {
                let _ = c.wait();
            }
        }
        cleanup_leftovers(&self.paths, None)?;
        if gone {
            Ok(())
        } else {
            Err(LabError::Supervisor(format!(
                "it did not stop within 60s and was killed; leftovers were cleaned up (see {})",
                self.paths.supervisor_log().display()
            )))
        }
    }

    /// The lab directory.
    pub fn dir(&self) -> &Path {
        &self.paths.dir
    }
    /// `inventory.yml`.
    pub fn inventory_path(&self) -> PathBuf {
        self.paths.inventory()
    }
    /// `known_hosts` with every device's host key.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.paths.known_hosts()
    }
    /// The client's private key (ed25519).
    pub fn client_key_path(&self) -> PathBuf {
        self.paths.client_key()
    }
    /// The lab's age identity (decrypts host_vars secrets and PKI keys).
    pub fn age_identity_path(&self) -> PathBuf {
        self.paths.age_identity()
    }
    /// An OpenSSH client configuration for this lab (`ssh -F PATH user@address`).
    pub fn ssh_config_path(&self) -> PathBuf {
        self.paths.ssh_config()
    }
    /// Bastion mode: the jump host's address (the only way to the devices).
    pub fn bastion(&self) -> Option<SocketAddr> {
        self.spec
            .bastion
            .then(|| SocketAddr::new(layout::bastion_addr(self.spec.slot).into(), 22))
    }
    /// The supervisor's log.
    pub fn log_path(&self) -> PathBuf {
        self.paths.supervisor_log()
    }
    /// The backend.
    pub fn backend(&self) -> LabBackend {
        if self.spec.backend == "openssh" {
            LabBackend::Openssh
        } else {
            LabBackend::Embedded
        }
    }
    /// The login user name (`root` or `admin`).
    pub fn user(&self) -> &str {
        &self.spec.user
    }
    /// Supervisor pid.
    pub fn supervisor_pid(&self) -> i32 {
        self.state.supervisor_pid
    }
    /// Mount-namespace inode of every device (with [`Lab::marker`], what identifies a device's processes).
    pub fn namespace_inodes(&self) -> Vec<u64> {
        self.state.devices.iter().map(|d| d.mnt_ns).collect()
    }

    /// The string in the mount table of every process inside this lab's devices (see `ns::lab_marker`).
    pub fn marker(&self) -> String {
        ns::lab_marker(&self.spec.id)
    }

    /// Every live process inside this lab's devices.
    pub fn processes(&self) -> Vec<i32> {
        ns::lab_pids(
            &self.namespace_inodes().into_iter().collect(),
            &self.marker(),
        )
    }

    /// The devices.
    pub fn devices(&self) -> Vec<DeviceInfo> {
        self.spec
            .devices
            .iter()
            .map(|d| DeviceInfo {
                name: d.name.clone(),
                address: d.addr,
                port: d.port,
                root: self.paths.device_root(&d.name),
                provisioning: d.provisioning.clone(),
            })
            .collect()
    }

    /// A device's state root on the host (`devices/NAME/root`).
    pub fn device_root(&self, name: &str) -> PathBuf {
        self.paths.device_root(name)
    }

    /// A device's simulator counters (all zero before anything ran).
    pub fn counters(&self, name: &str) -> io::Result<BTreeMap<String, u64>> {
        sim::read_counters(&self.paths.device_root(name))
    }

    fn check_device(&self, name: &str) -> Result<(), LabError> {
        if self.spec.devices.iter().any(|d| d.name == name) {
            Ok(())
        } else {
            Err(LabError::UnknownDevice(name.into()))
        }
    }

    /// Inject a fault into a device (`FaultKind::None` clears all its faults). Returns once it is in effect
    /// (for `Reboot`: once the device is down; it comes back after `ms`).
    pub fn fault(&self, name: &str, kind: FaultKind, ms: Option<u64>) -> Result<(), LabError> {
        self.fault_with(name, kind, ms, None)
    }

    /// [`Lab::fault`] with the value some faults take (`unreachable-after-dns`: the IP address whose use cuts
    /// the device off).
    pub fn fault_with(
        &self,
        name: &str,
        kind: FaultKind,
        ms: Option<u64>,
        value: Option<&str>,
    ) -> Result<(), LabError> {
        self.check_device(name)?;
        let r = supervisor::request(
            &self.state.socket,
            &supervisor::Request::Fault {
                device: name.into(),
                kind: supervisor::fault_name(kind).into(),
                ms,
                value: value.map(String::from),
            },
        )?;
        if r.ok {
            Ok(())
        } else {
            Err(LabError::Supervisor(
                r.error.unwrap_or_else(|| "fault not applied".into()),
            ))
        }
    }

    /// Start (`true`) or stop recording every device's processes into `devices/NAME/ps.log`: each process seen
    /// for the first time is logged as `<unix_ms> <pid> <args>`. Processes are caught at `execve` through the
    /// kernel's proc connector (most processes living even ~1 ms are caught; none is guaranteed) and by a scan
    /// of /proc every `interval_ms` (default 50 ms). Tests use it to check that no secret ever appears in a
    /// device's process arguments.
    pub fn ps_capture(&self, enable: bool, interval_ms: Option<u64>) -> Result<(), LabError> {
        let r = supervisor::request(
            &self.state.socket,
            &supervisor::Request::Ps {
                enable,
                interval_ms,
            },
        )?;
        if r.ok {
            Ok(())
        } else {
            Err(LabError::Supervisor(r.error.unwrap_or_default()))
        }
    }

    /// The process log of a device (see [`Lab::ps_capture`]); empty if nothing was captured.
    pub fn ps_log(&self, name: &str) -> io::Result<String> {
        match std::fs::read_to_string(self.paths.device(name).join("ps.log")) {
            Err(e) if layout::not_found(&e) => Ok(String::new()),
            r => r,
        }
    }

    /// Run `shell_cmd` as root inside the device's namespaces directly (no SSH): for tests to inspect or seed.
    pub fn run_on(&self, name: &str, shell_cmd: &str) -> io::Result<std::process::Output> {
        let d = self
            .state
            .devices
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("no device named {name:?}"))
            })?;
        ns::run_as_root(d.holder_pid, d.mnt_ns, shell_cmd)
    }

    /// Does the device answer with an SSH banner right now (within 5 s)?
    pub fn is_up(&self, name: &str) -> Result<bool, LabError> {
        self.check_device(name)?;
        let r = supervisor::request(
            &self.state.socket,
            &supervisor::Request::Probe {
                device: name.into(),
            },
        )?;
        Ok(r.ok)
    }

    /// Wait until the device answers SSH again (after a reboot or a cleared fault), up to `timeout`.
    pub fn wait_up(&self, name: &str, timeout: Duration) -> Result<(), LabError> {
        let t0 = Instant::now();
        loop {
            if self.is_up(name)? {
                return Ok(());
            }
            if t0.elapsed() > timeout {
                return Err(LabError::Supervisor(format!(
                    "{name} did not answer within {}s",
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every device: does it answer SSH now, its faults and counters.
    pub fn status(&self) -> Result<Vec<DeviceStatus>, LabError> {
        let devices = self.devices();
        if let Ok(r) = supervisor::request(&self.state.socket, &supervisor::Request::Status) {
            let by_name: BTreeMap<String, supervisor::DeviceReport> =
                r.devices.into_iter().map(|d| (d.name.clone(), d)).collect();
            return Ok(devices
                .into_iter()
                .map(|d| {
                    let rep = by_name.get(&d.name);
                    DeviceStatus {
                        faults: rep.map(|r| r.faults.clone()).unwrap_or_default(),
                        up: rep.map(|r| r.up).unwrap_or(false),
                        counters: sim::read_counters(&d.root).unwrap_or_default(),
                        device: d,
                    }
                })
                .collect());
        }
        // The supervisor does not answer: probe from here (outside bastion mode that is the same network), with
        // plain threads so that this also works when called from inside an async runtime.
        let addrs: Vec<SocketAddr> = devices
            .iter()
            .map(|d| SocketAddr::new(d.address.into(), d.port))
            .collect();
        let mut up = vec![false; addrs.len()];
        let chunk = addrs.len().div_ceil(16).max(1);
        std::thread::scope(|s| {
            for (addrs, up) in addrs.chunks(chunk).zip(up.chunks_mut(chunk)) {
                s.spawn(move || {
                    for (a, u) in addrs.iter().zip(up.iter_mut()) {
                        *u = banner_now(*a, Duration::from_secs(2));
                    }
                });
            }
        });
        Ok(devices
            .into_iter()
            .zip(up)
            .map(|(d, up)| DeviceStatus {
                faults: Vec::new(),
                counters: sim::read_counters(&d.root).unwrap_or_default(),
                device: d,
                up,
            })
            .collect())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.teardown_on_drop {
            let _ = self.shutdown();
        }
    }
}

/// Does `a` answer with an SSH banner within `timeout` (blocking)?
fn banner_now(a: SocketAddr, timeout: Duration) -> bool {
    use std::io::Read;
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&a, timeout) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let mut b = [0u8; 4];
    s.read_exact(&mut b).is_ok() && &b == b"SSH-"
}

fn provision_all(
    paths: &Paths,
    spec: &LabSpec,
    keys: &provision::LabKeys,
) -> Result<Vec<provision::DeviceOut>, LabError> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    let chunk = spec.devices.len().div_ceil(threads).max(1);
    let results: Vec<Result<Vec<provision::DeviceOut>, LabError>> = std::thread::scope(|s| {
        let hs: Vec<_> = spec
            .devices
            .chunks(chunk)
            .map(|ds| {
                s.spawn(move || {
                    ds.iter()
                        .map(|d| provision::device(paths, spec, keys, d))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(LabError::Invalid("provisioning thread panicked".into()))
                })
            })
            .collect()
    });
    let mut out = Vec::with_capacity(spec.devices.len());
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}
