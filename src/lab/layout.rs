//! The lab directory's layout and its two state files.
//!
//! Owns every path inside a lab directory, the static description of a lab written by `lab up`
//! (`lab.json`: devices, addresses, backend, login user), the runtime state written by the supervisor
//! (`run/state.json`: its pid, each device's namespace holder and mount-namespace inode, the control socket), and
//! the allocation of a free loopback address block per lab (an flock'ed slot file). It must not start processes
//! or touch namespaces.
//!
//! Addresses: lab slot S (1..=254) owns 127.S.0.0/16; device i gets 127.S.(1 + i/250).(1 + i%250), port 22.
//! Linux routes all of 127.0.0.0/8 to `lo`, so nothing is added to any interface: a lab leaves no address behind.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::LabError;

/// Devices per third octet of a lab's address block.
const PER_OCTET: usize = 250;
/// The largest lab one slot can hold.
pub const MAX_DEVICES: usize = PER_OCTET * 254;

/// The static description of a lab (`<dir>/lab.json`), written once by `lab up`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabSpec {
    /// Format version.
    pub version: u32,
    /// Absolute lab directory.
    pub dir: PathBuf,
    /// `embedded` or `openssh`.
    pub backend: String,
    /// `root` or `admin`.
    pub user: String,
    /// Address slot: the lab uses 127.slot.0.0/16.
    pub slot: u8,
    /// The edgefleet binary the wrappers and the supervisor run.
    pub exe: PathBuf,
    /// The devices, in order.
    pub devices: Vec<DeviceSpec>,
    /// Devices live in a private network namespace reachable only through a bastion sshd.
    #[serde(default)]
    pub bastion: bool,
    /// Devices start bare (empty package database: `lab up --bare`).
    #[serde(default)]
    pub bare: bool,
    /// Devices have no route out (`lab up --airgapped`).
    #[serde(default)]
    pub airgapped: bool,
    /// The lab runs unprivileged, inside a user namespace where the invoking user is root (and, since the
    /// subordinate id mapping, ids 1..=65536 are the user's subordinate ids).
    #[serde(default)]
    pub userns: bool,
    /// Random id of this lab instance: marks its mount namespaces (see `ns::lab_marker`).
    #[serde(default)]
    pub id: String,
}

/// One device in `lab.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceSpec {
    /// Device name (`edge-001`), also its hostname.
    pub name: String,
    /// Loopback address.
    pub addr: Ipv4Addr,
    /// SSH port.
    pub port: u16,
    /// `manual` or `dps`.
    pub provisioning: String,
}

/// The supervisor's runtime state (`<dir>/run/state.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RuntimeState {
    /// Supervisor pid.
    pub supervisor_pid: i32,
    /// True once every device accepted an SSH connection.
    pub ready: bool,
    /// Control socket path.
    pub socket: PathBuf,
    /// Per device: namespace holder pid and mount namespace inode.
    pub devices: Vec<DeviceRuntime>,
    /// Bastion mode: inode of the devices' private network namespace (its processes are lab processes too).
    #[serde(default)]
    pub net_ns: Option<u64>,
}

/// A device's namespaces, as recorded by the supervisor.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeviceRuntime {
    /// Device name.
    pub name: String,
    /// Pid of the process that holds the device's mount and UTS namespaces.
    pub holder_pid: i32,
    /// Inode of the device's mount namespace (identifies every process inside the device).
    pub mnt_ns: u64,
}

/// Paths inside a lab directory.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The lab directory (absolute).
    pub dir: PathBuf,
}

impl Paths {
    /// Paths for `dir` (made absolute against the current directory).
    pub fn new(dir: &Path) -> Result<Paths, LabError> {
        let dir = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| LabError::io("current directory", e))?
                .join(dir)
        };
        Ok(Paths { dir })
    }
    /// `lab.json`.
    pub fn spec(&self) -> PathBuf {
        self.dir.join("lab.json")
    }
    /// `run/` (supervisor runtime files).
    pub fn run(&self) -> PathBuf {
        self.dir.join("run")
    }
    /// `run/state.json`.
    pub fn state(&self) -> PathBuf {
        self.run().join("state.json")
    }
    /// `supervisor.log`.
    pub fn supervisor_log(&self) -> PathBuf {
        self.dir.join("supervisor.log")
    }
    /// `inventory.yml`.
    pub fn inventory(&self) -> PathBuf {
        self.dir.join("inventory.yml")
    }
    /// `known_hosts`.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }
    /// The client's private key (ed25519, OpenSSH format).
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client_ed25519")
    }
    /// The lab's age identity.
    pub fn age_identity(&self) -> PathBuf {
        self.dir.join("lab.agekey")
    }
    /// `bin/` (wrappers mounted on the devices' /usr/local/bin).
    pub fn bin(&self) -> PathBuf {
        self.dir.join("bin")
    }
    /// `pki/`.
    pub fn pki(&self) -> PathBuf {
        self.dir.join("pki")
    }
    /// `host_vars/`.
    pub fn host_vars(&self) -> PathBuf {
        self.dir.join("host_vars")
    }
    /// `ssh_config` for the plain OpenSSH client (key, known_hosts, strict checking; `-F` is passed on to jumps).
    pub fn ssh_config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }
    /// `bastion/` (bastion mode: its host key, authorized_keys, sshd configuration and log).
    pub fn bastion(&self) -> PathBuf {
        self.dir.join("bastion")
    }
    /// `devices/NAME/`: everything the lab keeps for one device.
    pub fn device(&self, name: &str) -> PathBuf {
        self.dir.join("devices").join(name)
    }
    /// `devices/NAME/root/`: the device's private files.
    pub fn device_root(&self, name: &str) -> PathBuf {
        self.device(name).join("root")
    }
    /// `devices/NAME/ns/`: mount point of the device's scratch tmpfs (only mounted inside the device).
    pub fn device_ns(&self, name: &str) -> PathBuf {
        self.device(name).join("ns")
    }
    /// `devices/NAME/ssh/`: host keys and sshd configuration.
    pub fn device_ssh(&self, name: &str) -> PathBuf {
        self.device(name).join("ssh")
    }
}

/// Where lab slot locks and (for long lab paths) control sockets live: `/run/edgefleet-lab` for root, else
/// `$XDG_RUNTIME_DIR/edgefleet-lab` or `/tmp/edgefleet-lab-UID`.
pub fn run_base() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        return PathBuf::from("/run/edgefleet-lab");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if Path::new(&d).is_dir() => PathBuf::from(d).join("edgefleet-lab"),
        _ => std::env::temp_dir().join(format!("edgefleet-lab-{euid}")),
    }
}

/// SSH port of every device: 22 as root; 2222 in an unprivileged lab (ports below 1024 need root).
pub fn device_port(userns: bool) -> u16 {
    if userns {
        2222
    } else {
        22
    }
}

/// The address of device number `i` (0-based) in slot `slot`.
pub fn device_addr(slot: u8, i: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        127,
        slot,
        (1 + i / PER_OCTET) as u8,
        (1 + i % PER_OCTET) as u8,
    )
}

/// The bastion's address (on the host, and inside the devices' network namespace) in slot `slot`.
pub fn bastion_addr(slot: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, slot, 0, 254)
}

/// Device name for index `i` (0-based): `edge-001`, ..., `edge-1000`.
pub fn device_name(i: usize) -> String {
    format!("edge-{:03}", i + 1)
}

/// Lock a free address slot; the returned file holds the lock for as long as it (or a process that inherited it)
/// stays open.
///
/// `probe_port` (an unprivileged lab's device port): also skip slots whose first device address already has a
/// listener on that port. Each ordinary user locks slots in a directory of their own (see [`run_base`]), so
/// without the probe two users' labs would both take slot 1.
pub fn lock_slot(probe_port: Option<u16>) -> Result<(u8, File), LabError> {
    let base = run_base();
    fs::create_dir_all(&base).map_err(|e| LabError::io(&base, e))?;
    let _ = fs::set_permissions(&base, fs::Permissions::from_mode(0o700));
    let mut taken = 0;
    for slot in 1..=254u8 {
        let p = base.join(format!("slot-{slot}.lock"));
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&p)
            .map_err(|e| LabError::io(&p, e))?;
        // SAFETY: flock on a valid fd we own.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            continue;
        }
        if let Some(port) = probe_port {
            if std::net::TcpListener::bind((device_addr(slot, 0), port)).is_err() {
                taken += 1;
                continue;
            }
        }
        return Ok((slot, f));
    }
    let why = if taken > 0 {
        format!(
            " ({taken} of them because port {} of their first address is taken, by another user's lab or another \
             program)",
            probe_port.unwrap_or_default()
        )
    } else {
        String::new()
    };
    Err(LabError::Invalid(format!(
        "all 254 lab address slots (127.1.0.0 .. 127.254.0.0) are in use{why}: take some labs down"
    )))
}

/// Write a file atomically (temp file + rename) with the given mode.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), LabError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let r = (|| {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    r.map_err(|e| LabError::io(path, e))
}

/// Read and parse a JSON file.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, LabError> {
    let b = fs::read(path).map_err(|e| LabError::io(path, e))?;
    serde_json::from_slice(&b)
        .map_err(|e| LabError::Invalid(format!("{}: not a valid lab file: {e}", path.display())))
}

/// Write a JSON file atomically.
pub fn write_json<T: Serialize>(path: &Path, v: &T, mode: u32) -> Result<(), LabError> {
    let b = serde_json::to_vec_pretty(v)
        .map_err(|e| LabError::Invalid(format!("{}: {e}", path.display())))?;
    write_atomic(path, &b, mode)
}

/// Is `pid` alive (and not a zombie)?
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => match s.rfind(')') {
            Some(i) => !matches!(
                s[i + 1..].trim_start().chars().next(),
                Some('Z') | Some('X')
            ),
            None => false,
        },
        Err(_) => false,
    }
}

/// Human form of an io error kind for messages.
pub fn not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_and_in_slot() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            let a = device_addr(7, i);
            assert_eq!(a.octets()[0], 127);
            assert_eq!(a.octets()[1], 7);
            assert_ne!(a.octets()[2], 0);
            assert_ne!(a.octets()[3], 0);
            assert!(seen.insert(a), "duplicate {a}");
        }
        assert_eq!(device_addr(3, 0), Ipv4Addr::new(127, 3, 1, 1));
        assert_eq!(device_addr(3, 250), Ipv4Addr::new(127, 3, 2, 1));
        assert_eq!(
            device_addr(3, MAX_DEVICES - 1),
            Ipv4Addr::new(127, 3, 254, 250)
        );
    }

    #[test]
    fn names_sort_naturally_up_to_999() {
        assert_eq!(device_name(0), "edge-001");
        assert_eq!(device_name(41), "edge-042");
        assert_eq!(device_name(999), "edge-1000");
    }

    #[test]
    fn pid_alive_sees_self_and_not_garbage() {
        assert!(pid_alive(std::process::id() as i32));
        assert!(!pid_alive(0));
        assert!(!pid_alive(-5));
    }
}
