//! The simulated device's persistent state: where it lives, how it is locked, and its file formats.
//!
//! Owns the path mapping (`EDGEFLEET_SIM_ROOT` or `/`), the per-device lock (an `flock` on
//! `/var/lib/edgefleet-lab/counters.lock`, held for a whole invocation so concurrent programs on one device see a
//! consistent state), `counters.json`, `invocations.log`, `journal/<unit>.log` (written by [`State::journal`],
//! read back by [`journal_lines`]), `services.json`, `docker.json` and the fault files. Every write is atomic
//! (temp file + rename). It must not implement program behaviour: the services model and the programs decide
//! what changes; this module only loads and stores it.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The state directory inside a device (relative to the device root).
pub const STATE_DIR: &str = "/var/lib/edgefleet-lab";

/// The IoT Edge version of a fresh lab device (`aziot-edged --version`; `iotedge version` and check's
/// `aziot-edge-version` follow the installed package, see [`State::iotedge_version`]).
pub const IOTEDGE_VERSION: &str = "1.5.21";
/// The simulated aziot-identity-service version (check's `aziot-version`).
pub const AZIOT_VERSION: &str = "1.5.6";

/// Errors of the state layer: a state file that cannot be read, parsed or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// An I/O error on a state file.
    #[error("simulator state file {path}: {source}")]
    Io {
        /// The host path of the file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A state file that is not valid JSON for its format.
    #[error("simulator state file {path} is corrupt: {source}")]
    Json {
        /// The host path of the file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// The simulation environment of one invocation: the device root, its hostname, the caller's euid, the clock.
#[derive(Debug, Clone)]
pub struct Env {
    root: PathBuf,
    /// `EDGEFLEET_SIM_ROOT` was set: paths are confined under `root` (and `root` itself counts as `/`).
    pub confined: bool,
    /// The machine hostname (`EDGEFLEET_SIM_HOSTNAME` or `gethostname()`).
    pub hostname: String,
    /// The effective uid of the caller (`EDGEFLEET_SIM_EUID`, test-only, or `geteuid()`).
    pub euid: u32,
    /// Milliseconds since the Unix epoch when the invocation started.
    pub now_ms: u64,
}

impl Env {
    /// Build the environment from the process environment.
    ///
    /// `EDGEFLEET_SIM_EUID` is a TEST-ONLY override of the effective uid, so tests that run as root can exercise
    /// the "must be run as root" paths; the lab never sets it.
    pub fn from_process() -> Env {
        let (root, confined) = match std::env::var_os("EDGEFLEET_SIM_ROOT") {
            Some(r) if !r.is_empty() => (PathBuf::from(r), true),
            _ => (PathBuf::from("/"), false),
        };
        let hostname = match std::env::var("EDGEFLEET_SIM_HOSTNAME") {
            Ok(h) if !h.is_empty() => h,
            _ => machine_hostname(),
        };
        let euid = std::env::var("EDGEFLEET_SIM_EUID")
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            // SAFETY: geteuid has no preconditions and cannot fail.
            .unwrap_or_else(|| unsafe { libc::geteuid() });
        Env {
            root,
            confined,
            hostname,
            euid,
            now_ms: now_ms(),
        }
    }

    /// An environment for a device root, used by the library API (`init_device_state`, tests).
    pub fn for_root(root: &Path) -> Env {
        Env {
            root: root.to_path_buf(),
            confined: true,
            hostname: String::new(),
            euid: 0,
            now_ms: now_ms(),
        }
    }

    /// The host path of a device path (`/etc/aziot/config.toml` -> `<root>/etc/aziot/config.toml`).
    pub fn path(&self, device_path: &str) -> PathBuf {
        self.root.join(device_path.trim_start_matches('/'))
    }

    /// The device root on the host (`/` when not confined).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of a file in the simulator state directory.
    pub fn state_file(&self, name: &str) -> PathBuf {
        self.path(STATE_DIR).join(name)
    }

    /// Whether a fault file exists; returns its trimmed content (possibly empty) if it does.
    pub fn fault(&self, name: &str) -> Option<String> {
        let p = self.state_file("faults").join(name);
        match fs::read(&p) {
            Ok(b) => Some(String::from_utf8_lossy(&b).trim().to_string()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            // A fault file we cannot read still exists: treat it as set with default behaviour.
            Err(_) => p.exists().then(String::new),
        }
    }
}

/// The fault file of `crashloop-after-change`.
pub const CRASHLOOP_FAULT: &str = "crashloop-after-change";
/// A crash-looping edgeHub restarts this often (it shows `running`, `Up` less than this, its restart count rising).
pub const CRASHLOOP_PERIOD_MS: u64 = 1000;

/// A crash-looping edgeHub as it is now: one restart when the loop began and one per period since. A pure
/// function of the time, so it is the same whoever reads it, and saving it back changes nothing.
fn crashloop(env: &Env, d: &mut Docker) {
    let Some(t) = env.fault(CRASHLOOP_FAULT) else {
        return;
    };
    let mut w = t.split_whitespace().map(str::parse::<u64>);
    let (Some(Ok(start)), Some(Ok(base))) = (w.next(), w.next()) else {
        return;
    };
    let Some(i) = d.find("edgeHub") else {
        return;
    };
    let n = env.now_ms.saturating_sub(start) / CRASHLOOP_PERIOD_MS;
    let c = &mut d.containers[i];
    c.status = "running".into();
    c.restart_count = base + n + 1;
    c.started_ms = start + n * CRASHLOOP_PERIOD_MS;
}

/// The machine hostname from `gethostname(2)`.
/// A JSON object as a map of strings (non-string values in their JSON text, as Docker shows them); anything
/// else is an empty map.
pub fn string_map(v: Option<&serde_json::Value>) -> BTreeMap<String, String> {
    v.and_then(|v| v.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map(str::to_string).unwrap_or(v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn machine_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname NUL-terminates on success when it fits.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Mode of the simulator's state files and directories: every account on the device may run a simulated
/// program (e.g. `docker ps` as `admin`) and each invocation must be recorded, so the state is world-writable.
/// This is lab bookkeeping, not device data.
pub const STATE_FILE_MODE: u32 = 0o666;
/// See [`STATE_FILE_MODE`].
pub const STATE_DIR_MODE: u32 = 0o777;

/// Create a state directory (and its parents) with [`STATE_DIR_MODE`] when it does not exist yet.
pub fn ensure_state_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(STATE_DIR_MODE))
}

/// The per-device lock, held for the whole invocation (released on drop).
pub struct DeviceLock {
    _file: fs::File,
    /// Whether the caller can write the state (false: a read-only view, nothing is recorded).
    pub writable: bool,
}

impl DeviceLock {
    /// Take the exclusive device lock, creating the state directory if needed. A caller without write access
    /// to the state directory still gets the lock through a read-only descriptor, with `writable == false`.
    pub fn acquire(env: &Env) -> Result<Option<DeviceLock>, StateError> {
        let dir = env.path(STATE_DIR);
        let _ = ensure_state_dir(&dir);
        let p = dir.join("counters.lock");
        let existed = p.exists();
        let (file, writable) = match fs::OpenOptions::new().create(true).append(true).open(&p) {
            Ok(f) => {
                if !existed {
                    let _ = fs::set_permissions(&p, fs::Permissions::from_mode(STATE_FILE_MODE));
                }
                (f, true)
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => match fs::File::open(&p) {
                Ok(f) => (f, false),
                // No access to the state at all: an unlocked, read-only view.
                Err(_) => return Ok(None),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Io {
                    path: p.clone(),
                    source,
                })
            }
        };
        loop {
            // SAFETY: the fd is owned by `file`, which outlives this call.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                break;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(StateError::Io {
                    path: p,
                    source: err,
                });
            }
        }
        Ok(Some(DeviceLock {
            _file: file,
            writable,
        }))
    }
}

/// Write a file atomically: a temp file in the same directory, then rename over the target. The file gets
/// `mode` (independent of the umask).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    let io_err = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let res = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.flush()?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
        fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res.map_err(io_err)
}

/// Read a JSON state file; a missing file gives `T::default()`.
pub fn read_json<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> Result<T, StateError> {
    match fs::read(path) {
        Ok(b) if b.iter().all(|c| c.is_ascii_whitespace()) => Ok(T::default()),
        Ok(b) => serde_json::from_slice(&b).map_err(|source| StateError::Json {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(T::default()),
        Err(source) => Err(StateError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Write a JSON state file atomically (pretty-printed, trailing newline).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| StateError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes, STATE_FILE_MODE)
}

/// Append text to a file (created if missing).
pub fn append(path: &Path, text: &str) -> Result<(), StateError> {
    let io_err = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        ensure_state_dir(dir).map_err(io_err)?;
    }
    let existed = path.exists();
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err)?;
    if !existed {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(STATE_FILE_MODE));
    }
    f.write_all(text.as_bytes()).map_err(io_err)
}

/// The state of one systemd unit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UnitState {
    /// `active`, `inactive` or `failed`.
    pub state: String,
    /// When the unit entered `state` (ms since the epoch).
    pub since_ms: u64,
    /// Whether the unit is enabled.
    pub enabled: bool,
    /// The main PID while active (simulated).
    #[serde(default)]
    pub pid: u32,
}

/// `services.json`: the systemd units the simulators know about.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Services {
    /// Unit name (without `.service`; sockets keep their `.socket` suffix) to state.
    pub units: BTreeMap<String, UnitState>,
}

/// The services (without `.service`) the simulators manage, in `iotedge system` order.
pub const AZIOT_SERVICES: [&str; 5] = [
    "aziot-edged",
    "aziot-identityd",
    "aziot-keyd",
    "aziot-certd",
    "aziot-tpmd",
];

/// The socket units of the aziot services.
pub const AZIOT_SOCKETS: [&str; 6] = [
    "aziot-edged.mgmt.socket",
    "aziot-edged.workload.socket",
    "aziot-identityd.socket",
    "aziot-keyd.socket",
    "aziot-certd.socket",
    "aziot-tpmd.socket",
];

impl Services {
    /// A fresh device: docker active, the aziot services inactive (their sockets listening).
    pub fn fresh(now: u64) -> Services {
        let mut units = BTreeMap::new();
        units.insert(
            "docker".to_string(),
            UnitState {
                state: "active".into(),
                since_ms: now,
                enabled: true,
                pid: 612,
            },
        );
        units.insert(
            "docker.socket".to_string(),
            UnitState {
                state: "active".into(),
                since_ms: now,
                enabled: true,
                pid: 0,
            },
        );
        units.insert(
            "containerd".to_string(),
            UnitState {
                state: "active".into(),
                since_ms: now,
                enabled: true,
                pid: 598,
            },
        );
        for s in AZIOT_SERVICES {
            units.insert(
                s.to_string(),
                UnitState {
                    state: "inactive".into(),
                    since_ms: now,
                    enabled: s == "aziot-edged",
                    pid: 0,
                },
            );
        }
        for s in AZIOT_SOCKETS {
            units.insert(
                s.to_string(),
                UnitState {
                    state: "active".into(),
                    since_ms: now,
                    enabled: true,
                    pid: 0,
                },
            );
        }
        Services { units }
    }

    /// The state string of a unit (`inactive` when unknown).
    pub fn state(&self, unit: &str) -> &str {
        self.units
            .get(unit)
            .map(|u| u.state.as_str())
            .unwrap_or("inactive")
    }

    /// Whether a unit is active.
    pub fn is_active(&self, unit: &str) -> bool {
        self.state(unit) == "active"
    }

    /// Set a unit's state (recording the transition time when it changes).
    pub fn set(&mut self, unit: &str, state: &str, now: u64) {
        let entry = self.units.entry(unit.to_string()).or_insert(UnitState {
            state: "inactive".into(),
            since_ms: now,
            enabled: false,
            pid: 0,
        });
        if entry.state != state || state == "active" {
            entry.since_ms = now;
        }
        entry.state = state.to_string();
        entry.pid = if state == "active" {
            // A plausible PID that changes on every start and differs between units.
            let salt: u64 = unit.bytes().map(u64::from).sum::<u64>() * 7919;
            1000 + ((now + salt) % 30000) as u32
        } else {
            0
        };
    }
}

/// A container of the simulated engine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Container {
    /// 64 hex characters.
    pub id: String,
    /// The container name (no leading slash).
    pub name: String,
    /// The image reference it was created from.
    pub image: String,
    /// The image ID (`sha256:...`).
    pub image_id: String,
    /// `created`, `running`, `exited`, `dead`.
    pub status: String,
    /// Creation time (ms since the epoch).
    pub created_ms: u64,
    /// Last start time (ms), 0 if never started.
    pub started_ms: u64,
    /// Last stop time (ms), 0 if never stopped.
    pub finished_ms: u64,
    /// Exit code of the last run.
    pub exit_code: i64,
    /// `Config.Env` (`NAME=value`).
    pub env: Vec<String>,
    /// `HostConfig.Binds`.
    pub binds: Vec<String>,
    /// `Config.Labels`.
    pub labels: BTreeMap<String, String>,
    /// `HostConfig.LogConfig` as captured at creation (`Type`, `Config`).
    pub log_config: LogConfig,
    /// `HostConfig.Dns` as captured at creation (the daemon's `dns` when the container sets none).
    pub dns: Vec<String>,
    /// The network the container is attached to.
    pub network: String,
    /// The full createOptions the container was created with (for `docker inspect`).
    #[serde(default)]
    pub create_options: serde_json::Value,
    /// Restart count.
    #[serde(default)]
    pub restart_count: u64,
}

/// A container's log configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct LogConfig {
    /// The log driver (`json-file`, `local`, `journald`, ...).
    #[serde(rename = "Type")]
    pub kind: String,
    /// The driver options.
    #[serde(rename = "Config")]
    pub config: BTreeMap<String, String>,
}

/// An image of the simulated engine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Image {
    /// Repository (`mcr.microsoft.com/azureiotedge-agent`).
    pub repository: String,
    /// Tag (`1.5`).
    pub tag: String,
    /// `sha256:...`.
    pub id: String,
    /// When it was pulled or loaded (ms).
    pub created_ms: u64,
    /// Size in bytes.
    pub size: u64,
}

/// A volume of the simulated engine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Volume {
    /// Volume name.
    pub name: String,
    /// Driver (`local`).
    pub driver: String,
}

/// The engine's identity: how `docker version`/`docker info` describe it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Engine {
    /// `Server.Version`, e.g. `24.0.9+azure-1` for Microsoft's Moby build.
    pub version: String,
    /// `Server.Platform.Name`: empty for Moby, `Docker Engine - Community` for Docker CE.
    pub platform_name: String,
    /// The API version.
    pub api_version: String,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            version: "24.0.9+azure-1".into(),
            platform_name: String::new(),
            api_version: "1.43".into(),
        }
    }
}

/// `docker.json`: the simulated container engine.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Docker {
    /// Engine identity.
    #[serde(default)]
    pub engine: Engine,
    /// The effective daemon configuration as of the last successful (re)start (the parsed daemon.json, `{}` when
    /// there was none).
    #[serde(default)]
    pub daemon_config: serde_json::Map<String, serde_json::Value>,
    /// Why the last (re)start failed, if it did.
    #[serde(default)]
    pub last_start_error: Option<String>,
    /// Containers.
    #[serde(default)]
    pub containers: Vec<Container>,
    /// Images.
    #[serde(default)]
    pub images: Vec<Image>,
    /// Volumes.
    #[serde(default)]
    pub volumes: Vec<Volume>,
}

impl Docker {
    /// The daemon's effective log driver (`json-file` by default, as dockerd).
    pub fn log_driver(&self) -> String {
        self.daemon_config
            .get("log-driver")
            .and_then(|v| v.as_str())
            .unwrap_or("json-file")
            .to_string()
    }

    /// The daemon's effective log options.
    pub fn log_opts(&self) -> BTreeMap<String, String> {
        string_map(self.daemon_config.get("log-opts"))
    }

    /// The daemon's effective DNS servers.
    pub fn dns(&self) -> Vec<String> {
        self.daemon_config
            .get("dns")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Find a container by name or (prefix of) ID.
    pub fn find(&self, key: &str) -> Option<usize> {
        let key = key.trim_start_matches('/');
        if let Some(i) = self.containers.iter().position(|c| c.name == key) {
            return Some(i);
        }
        if key.len() >= 3 {
            let matches: Vec<usize> = self
                .containers
                .iter()
                .enumerate()
                .filter(|(_, c)| c.id.starts_with(key))
                .map(|(i, _)| i)
                .collect();
            if matches.len() == 1 {
                return Some(matches[0]);
            }
        }
        None
    }
}

/// The packages a fresh lab device has installed, with their versions (`dpkg-query`): the aziot-edge of
/// [`IOTEDGE_VERSION`], the moby-engine of [`Engine::default`].
pub fn default_packages() -> BTreeMap<String, String> {
    [
        ("aziot-edge", format!("{IOTEDGE_VERSION}-1")),
        ("aziot-identity-service", "1.5.6-1".to_string()),
        ("moby-engine", "24.0.9+azure-ubuntu22.04u1".to_string()),
        ("moby-cli", "24.0.9+azure-ubuntu22.04u1".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Everything an invocation may read or change, loaded lazily and written back once at the end.
pub struct State {
    /// The environment.
    pub env: Env,
    counters: Option<BTreeMap<String, u64>>,
    counters_dirty: bool,
    services: Option<Services>,
    services_dirty: bool,
    docker: Option<Docker>,
    docker_dirty: bool,
    lock: Option<DeviceLock>,
}

impl State {
    /// Open the state of the device described by `env`, taking the device lock.
    pub fn open(env: Env) -> Result<State, StateError> {
        let lock = DeviceLock::acquire(&env)?;
        Ok(State {
            env,
            counters: None,
            counters_dirty: false,
            services: None,
            services_dirty: false,
            docker: None,
            docker_dirty: false,
            lock,
        })
    }

    /// Whether this invocation can record state (false for a caller without write access).
    pub fn writable(&self) -> bool {
        self.lock.as_ref().map(|l| l.writable).unwrap_or(false)
    }

    /// Increment a counter.
    pub fn bump(&mut self, name: &str) -> Result<(), StateError> {
        if self.counters.is_none() {
            self.counters = Some(read_json(&self.env.state_file("counters.json"))?);
        }
        if let Some(c) = self.counters.as_mut() {
            *c.entry(name.to_string()).or_insert(0) += 1;
        }
        self.counters_dirty = true;
        Ok(())
    }

    /// The services, loaded on first use (a missing file is a fresh device).
    pub fn services(&mut self) -> Result<&Services, StateError> {
        self.load_services()?;
        Ok(self.services.get_or_insert_with(Services::default))
    }

    /// The services, for modification.
    pub fn services_mut(&mut self) -> Result<&mut Services, StateError> {
        self.load_services()?;
        self.services_dirty = true;
        Ok(self.services.get_or_insert_with(Services::default))
    }

    fn load_services(&mut self) -> Result<(), StateError> {
        if self.services.is_none() {
            let p = self.env.state_file("services.json");
            let s: Option<Services> = if p.exists() {
                Some(read_json(&p)?)
            } else {
                None
            };
            self.services = Some(s.unwrap_or_else(|| Services::fresh(self.env.now_ms)));
        }
        Ok(())
    }

    /// The engine, loaded on first use.
    pub fn docker(&mut self) -> Result<&Docker, StateError> {
        self.load_docker()?;
        Ok(self.docker.get_or_insert_with(Docker::default))
    }

    /// The engine, for modification.
    pub fn docker_mut(&mut self) -> Result<&mut Docker, StateError> {
        self.load_docker()?;
        self.docker_dirty = true;
        Ok(self.docker.get_or_insert_with(Docker::default))
    }

    fn load_docker(&mut self) -> Result<(), StateError> {
        if self.docker.is_none() {
            let mut d: Docker = read_json(&self.env.state_file("docker.json"))?;
            crashloop(&self.env, &mut d);
            self.docker = Some(d);
        }
        Ok(())
    }

    /// The `crashloop-after-change` fault: when it is armed (its file is empty), a successful `iotedge config
    /// apply` sets edgeHub crash-looping from now on (the file then holds `<start ms> <edgeHub's restart count
    /// then>`; see [`CRASHLOOP_PERIOD_MS`]).
    pub fn crashloop_after_change(&mut self) -> Result<(), StateError> {
        if self.env.fault(CRASHLOOP_FAULT).as_deref() != Some("") {
            return Ok(());
        }
        let d = self.docker()?;
        let base = d
            .find("edgeHub")
            .map(|i| d.containers[i].restart_count)
            .unwrap_or(0);
        let p = self.env.state_file("faults").join(CRASHLOOP_FAULT);
        fs::write(&p, format!("{} {base}\n", self.env.now_ms))
            .map_err(|source| StateError::Io { path: p, source })
    }

    /// The installed packages and versions (`packages.json`, or [`default_packages`]).
    pub fn packages(&self) -> Result<BTreeMap<String, String>, StateError> {
        let p = self.env.state_file("packages.json");
        if p.exists() {
            read_json(&p)
        } else {
            Ok(default_packages())
        }
    }

    /// The IoT Edge version installed (`iotedge version`): the aziot-edge package's, without its revision.
    pub fn iotedge_version(&self) -> String {
        self.packages()
            .ok()
            .and_then(|p| p.get("aziot-edge").cloned())
            .map(|v| v.split('-').next().unwrap_or(&v).to_string())
            .unwrap_or_else(|| IOTEDGE_VERSION.to_string())
    }

    /// Append one line to a unit's journal, in `journalctl`'s short format.
    pub fn journal(&self, unit: &str, ident: &str, msg: &str) -> Result<(), StateError> {
        if !self.writable() {
            return Ok(());
        }
        let ts = crate::lab::sim::time::journal_ts(self.env.now_ms);
        let host = if self.env.hostname.is_empty() {
            "localhost"
        } else {
            self.env.hostname.as_str()
        };
        let mut text = String::new();
        for line in msg.lines() {
            text.push_str(&format!("{ts} {host} {ident}: {line}\n"));
        }
        append(
            &self.env.state_file("journal").join(format!("{unit}.log")),
            &text,
        )
    }

    /// Record one program invocation in `invocations.log` and its per-program counter.
    pub fn log_invocation(&mut self, program: &str, args: &[String]) -> Result<(), StateError> {
        if !self.writable() {
            return Ok(());
        }
        let mut line = format!("{} {}", self.env.now_ms, program);
        for a in args {
            line.push(' ');
            line.push_str(&a.replace('\n', "\\n"));
        }
        line.push('\n');
        append(&self.env.state_file("invocations.log"), &line)?;
        self.bump(&format!("invoke_{program}"))
    }

    /// Write back everything that changed (nothing for a read-only caller).
    pub fn flush(&mut self) -> Result<(), StateError> {
        if !self.writable() {
            return Ok(());
        }
        if self.services_dirty {
            if let Some(s) = &self.services {
                write_json(&self.env.state_file("services.json"), s)?;
            }
            self.services_dirty = false;
        }
        if self.docker_dirty {
            if let Some(d) = &self.docker {
                write_json(&self.env.state_file("docker.json"), d)?;
            }
            self.docker_dirty = false;
        }
        if self.counters_dirty {
            if let Some(c) = &self.counters {
                write_json(&self.env.state_file("counters.json"), c)?;
            }
            self.counters_dirty = false;
        }
        Ok(())
    }
}

const JOURNAL_MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn journal_sort_key(line: &str) -> (usize, String) {
    let month = JOURNAL_MONTHS
        .iter()
        .position(|m| line.starts_with(m))
        .unwrap_or(0);
    (month, line.get(4..15).unwrap_or("").to_string())
}

/// The journal lines (`journal/<unit>.log`) of the given units (canonical names: `docker`, `aziot-edged`, ...),
/// merged in time order; every unit's journal when `units` is empty.
pub fn journal_lines(env: &Env, units: &[String]) -> Vec<String> {
    let dir = env.state_file("journal");
    let files: Vec<String> = if units.is_empty() {
        fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".log"))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        units.iter().map(|u| format!("{u}.log")).collect()
    };
    let mut lines: Vec<String> = Vec::new();
    for f in files {
        if let Ok(text) = fs::read_to_string(dir.join(&f)) {
            lines.extend(text.lines().map(str::to_string));
        }
    }
    if units.len() != 1 {
        lines.sort_by_key(|l| journal_sort_key(l));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_loop_is_a_function_of_time_since_it_began() {
        let dir = std::env::temp_dir().join(format!("ef-crashloop-{}", std::process::id()));
        let mut env = Env::for_root(&dir);
        let faults = env.state_file("faults");
        fs::create_dir_all(&faults).unwrap();
        let hub = |restarts| Container {
            name: "edgeHub".into(),
            status: "running".into(),
            restart_count: restarts,
            ..Default::default()
        };
        let mut d = Docker::default();
        d.containers.push(hub(4));
        // Armed but not set off: nothing changes.
        fs::write(faults.join(CRASHLOOP_FAULT), "").unwrap();
        crashloop(&env, &mut d);
        assert_eq!(d.containers[0].restart_count, 4);
        // Set off at t=10s with 4 restarts: one at once, one more every period; reading twice changes nothing.
        fs::write(faults.join(CRASHLOOP_FAULT), "10000 4\n").unwrap();
        env.now_ms = 10_000 + 2 * CRASHLOOP_PERIOD_MS + 500;
        crashloop(&env, &mut d);
        crashloop(&env, &mut d);
        assert_eq!(d.containers[0].restart_count, 7);
        assert_eq!(d.containers[0].started_ms, 10_000 + 2 * CRASHLOOP_PERIOD_MS);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn paths_are_confined_under_the_root() {
        let env = Env::for_root(Path::new("/tmp/dev1"));
        assert_eq!(
            env.path("/etc/aziot/config.toml"),
            PathBuf::from("/tmp/dev1/etc/aziot/config.toml")
        );
        assert_eq!(
            env.state_file("docker.json"),
            PathBuf::from("/tmp/dev1/var/lib/edgefleet-lab/docker.json")
        );
    }

    #[test]
    fn counters_and_services_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::for_root(dir.path());
        {
            let mut st = State::open(env.clone()).unwrap();
            st.bump("config_apply").unwrap();
            st.bump("config_apply").unwrap();
            st.services_mut().unwrap().set("aziot-edged", "active", 5);
            st.flush().unwrap();
        }
        let mut st = State::open(env).unwrap();
        assert!(st.services().unwrap().is_active("aziot-edged"));
        assert!(st.services().unwrap().is_active("docker"));
        let c: BTreeMap<String, u64> = read_json(&st.env.state_file("counters.json")).unwrap();
        assert_eq!(c.get("config_apply"), Some(&2));
    }

    #[test]
    fn daemon_defaults_match_dockerd() {
        let d = Docker::default();
        assert_eq!(d.log_driver(), "json-file");
        assert!(d.dns().is_empty());
        assert!(d.engine.version.contains("+azure"));
    }
}
