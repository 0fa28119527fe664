//! The faults a device can be given and what applying each does: network faults and the wrong host key change
//! the device's desired endpoint (`device`), `reboot` kills every process in the device and keeps its server
//! down for a while, `disk-full` mounts full tmpfs copies over /etc/aziot and /etc/docker, `store-full` mounts a
//! [`STORE_FULL_KIB`] KiB tmpfs over the bundle store /var/lib/edgefleet/blobs (what was there is copied in; `none`
//! copies what the tmpfs holds back before unmounting, so partial files survive as on a device where space was
//! freed), `apply-fails` /
//! `check-error` create the simulator's fault files, `edge-ca-expiring` / `edge-ca-expired` replace the
//! installed Edge CA certificate with one for the same key that expires in 10 days / expired 5 days ago (the
//! original is kept on the host, outside the device, and put back by `none`), `clock-skew` shifts what the
//! device's `date` prints (the lab's `date` wrapper reads the offset), `edge-ca-rejected` records the installed
//! Edge CA certificate in the simulator's fault file (its `iotedge check` then fails `certs-preloaded` for any
//! other Edge CA: a renewal is installed, then rejected), `locked` starts a process inside the device that holds
//! edgefleet's run lock (`/run/lock/edgefleet.lock`, see `transport::runlock`; the lab never imports it, so the
//! path and the owner record's shape are written here again) with an owner record naming run
//! `lab-fault-locked`, as another run would; the maintenance states `dangling-images`, `unused-volumes` and
//! `old-runtime` change the simulator's engine and package database (`sim::lab_states`, with real volume data on
//! disk), `low-disk` mounts a small, nearly full tmpfs on the Docker root, `container-list-fails` creates the
//! simulator's fault file; the network states `dns-fails`, `ports-blocked` (5671 and 8883) and `behind-proxy`
//! (only the lab site proxy gets out) create the fault files the simulated `curl` answers from (lab devices never
//! touch a real network); `unreachable-after-dns` (with a value, an IP address) makes the embedded server close
//! every new connection while the configuration the device's dockerd loaded at its last start names that
//! address as a DNS server or proxy (`DeviceHost::cut_off`: a change cuts the device off only once applied, and
//! the restart that reverts it lets connections in again); `none` clears everything (and releases that lock).
//! The module faults `module-unpinned`, `module-no-log-limits`, `module-privileged`, `module-no-memory-limit`
//! and `edgehub-no-storage-bind` change a running module container (`sim::lab_states::ModuleFault`; `none`
//! recreates changed containers). `crashloop-after-change` creates its fault file empty (armed: the device's next
//! successful `iotedge config apply` sets edgeHub crash-looping, its restart count rising every second). Also
//! the faults' CLI spelling.
//!
//! It must not speak the control protocol (that is `control`).

use std::collections::HashSet;
use std::io::{self};
use std::path::PathBuf;
use std::time::Duration;

use crate::lab::ns::{self};
use crate::lab::sim::curl::{DEFAULT_BLOCKED_PORTS, LAB_PROXY_URL};
use crate::lab::sim::lab_states::{self, set_module_fault as module_fault, ModuleFault};

use super::device::{set_desired, Dev, Net};
use super::shared::Shared;

/// Faults a lab device can be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Clear every fault.
    None,
    /// Nothing listens.
    Unreachable,
    /// Accepts TCP, never answers.
    BlackHole,
    /// Added latency per round trip.
    SlowLink,
    /// Presents a different host key.
    WrongHostKey,
    /// `iotedge config apply` fails.
    ApplyFails,
    /// `iotedge check` reports an error.
    CheckError,
    /// Writes under /etc fail with "No space left on device".
    DiskFull,
    /// The bundle store (/var/lib/edgefleet/blobs) has room for only [`STORE_FULL_KIB`] KiB.
    StoreFull,
    /// The SSH server dies and comes back after a delay.
    Reboot,
    /// The installed Edge CA certificate expires in 10 days.
    EdgeCaExpiring,
    /// The installed Edge CA certificate expired 5 days ago.
    EdgeCaExpired,
    /// The device clock is off (default: 3 years ahead).
    ClockSkew,
    /// Another run holds the device's run lock.
    Locked,
    /// The simulated `iotedge check` rejects every Edge CA but the one installed when the fault was set.
    EdgeCaRejected,
    /// Untagged images no container uses.
    DanglingImages,
    /// Volumes no container mounts (plus one a stopped container mounts, and edgeHub's store).
    UnusedVolumes,
    /// The Docker root is nearly full.
    LowDisk,
    /// Older aziot-edge / identity service / Moby packages.
    OldRuntime,
    /// Listing containers fails (everything else answers).
    ContainerListFails,
    /// No host name resolves on the device (its `curl` says so).
    DnsFails,
    /// A firewall drops the device's direct connections to the AMQP and MQTT ports (5671, 8883).
    PortsBlocked,
    /// The device reaches the internet only through the lab site proxy ([`LAB_PROXY_URL`]).
    BehindProxy,
    /// New connections are refused while the device's running dockerd uses a given DNS server or proxy (set
    /// by a change and a docker restart; cleared by the restart that reverts it). Embedded backend only.
    UnreachableAfterDns,
    /// edgeHub runs a rolling image tag.
    ModuleUnpinned,
    /// A custom module (or edgeHub) logs without limits.
    ModuleNoLogLimits,
    /// A custom module (or edgeHub) runs privileged.
    ModulePrivileged,
    /// A custom module runs without a memory limit.
    ModuleNoMemoryLimit,
    /// edgeHub's storageFolder is not on a host directory.
    EdgehubNoStorageBind,
    /// edgeHub crash-loops (its restart count rises) once a config change is applied.
    CrashloopAfterChange,
}

impl FaultKind {
    /// Every fault kind.
    pub const ALL: &'static [FaultKind] = &[
        FaultKind::None,
        FaultKind::Unreachable,
        FaultKind::BlackHole,
        FaultKind::SlowLink,
        FaultKind::WrongHostKey,
        FaultKind::ApplyFails,
        FaultKind::CheckError,
        FaultKind::DiskFull,
        FaultKind::StoreFull,
        FaultKind::Reboot,
        FaultKind::EdgeCaExpiring,
        FaultKind::EdgeCaExpired,
        FaultKind::ClockSkew,
        FaultKind::Locked,
        FaultKind::EdgeCaRejected,
        FaultKind::DanglingImages,
        FaultKind::UnusedVolumes,
        FaultKind::LowDisk,
        FaultKind::OldRuntime,
        FaultKind::ContainerListFails,
        FaultKind::DnsFails,
        FaultKind::PortsBlocked,
        FaultKind::BehindProxy,
        FaultKind::UnreachableAfterDns,
        FaultKind::ModuleUnpinned,
        FaultKind::ModuleNoLogLimits,
        FaultKind::ModulePrivileged,
        FaultKind::ModuleNoMemoryLimit,
        FaultKind::EdgehubNoStorageBind,
        FaultKind::CrashloopAfterChange,
    ];
}

/// Default added round-trip latency of `slow-link`.
pub const DEFAULT_SLOW_MS: u64 = 200;
/// Default downtime of `reboot`.
pub const DEFAULT_REBOOT_MS: u64 = 2000;
/// Default offset of `clock-skew`: three years ahead.
pub const DEFAULT_CLOCK_SKEW_MS: u64 = 3 * 365 * 86_400_000;
/// Days left of the Edge CA after `edge-ca-expiring`.
pub const EXPIRING_DAYS: i64 = 10;
/// Days since the Edge CA expired after `edge-ca-expired`.
pub const EXPIRED_DAYS_AGO: i64 = 5;
/// Where the lab's provisioning installs the Edge CA (roles/edge_ca's defaults).
const EDGE_CA_CERT: &str = "/var/aziot/certs/edge-ca.cert.pem";
const EDGE_CA_KEY: &str = "/var/aziot/secrets/edge-ca.key.pem";

/// The CLI spelling of a fault kind.
pub fn fault_name(k: FaultKind) -> &'static str {
    match k {
        FaultKind::None => "none",
        FaultKind::Unreachable => "unreachable",
        FaultKind::BlackHole => "black-hole",
        FaultKind::SlowLink => "slow-link",
        FaultKind::WrongHostKey => "wrong-host-key",
        FaultKind::ApplyFails => "apply-fails",
        FaultKind::CheckError => "check-error",
        FaultKind::DiskFull => "disk-full",
        FaultKind::StoreFull => "store-full",
        FaultKind::Reboot => "reboot",
        FaultKind::EdgeCaExpiring => "edge-ca-expiring",
        FaultKind::EdgeCaExpired => "edge-ca-expired",
        FaultKind::ClockSkew => "clock-skew",
        FaultKind::Locked => "locked",
        FaultKind::EdgeCaRejected => "edge-ca-rejected",
        FaultKind::DanglingImages => "dangling-images",
        FaultKind::UnusedVolumes => "unused-volumes",
        FaultKind::LowDisk => "low-disk",
        FaultKind::OldRuntime => "old-runtime",
        FaultKind::ContainerListFails => "container-list-fails",
        FaultKind::DnsFails => "dns-fails",
        FaultKind::PortsBlocked => "ports-blocked",
        FaultKind::BehindProxy => "behind-proxy",
        FaultKind::UnreachableAfterDns => "unreachable-after-dns",
        FaultKind::ModuleUnpinned => "module-unpinned",
        FaultKind::ModuleNoLogLimits => "module-no-log-limits",
        FaultKind::ModulePrivileged => "module-privileged",
        FaultKind::ModuleNoMemoryLimit => "module-no-memory-limit",
        FaultKind::EdgehubNoStorageBind => "edgehub-no-storage-bind",
        FaultKind::CrashloopAfterChange => "crashloop-after-change",
    }
}

pub(super) fn fault_from_name(s: &str) -> Option<FaultKind> {
    FaultKind::ALL.iter().copied().find(|k| fault_name(*k) == s)
}

fn sim_fault_file(sh: &Shared, dev: &Dev, name: &str) -> PathBuf {
    sh.paths
        .device_root(&dev.spec.name)
        .join("var/lib/edgefleet-lab/faults")
        .join(name)
}

const DISK_FULL_ON: &str = r#"set -e
for d in /etc/aziot /etc/docker; do
  if grep -q "^edgefleet-diskfull $d " /proc/self/mounts; then continue; fi
  src=$(mktemp -d /run/edgefleet-diskfull.XXXXXX)
  mount --bind "$d" "$src"
  mode=$(stat -c %a "$d"); uid=$(stat -c %u "$d"); gid=$(stat -c %g "$d")
  mount -t tmpfs -o "size=16m,mode=$mode,uid=$uid,gid=$gid" edgefleet-diskfull "$d"
  # (ownership cannot always be kept in an unprivileged lab: files the host's root wrote show as unmapped)
  cp -a "$src/." "$d/" 2>/dev/null || cp -R --preserve=mode,timestamps "$src/." "$d/"
  umount "$src"; rmdir "$src"
  used=$(df -k --output=used "$d" | tail -n 1 | tr -d ' ')
  inodes=$(df --output=iused "$d" | tail -n 1 | tr -d ' ')
  [ "$used" -gt 0 ] || used=4
  mount -o "remount,size=${used}k,nr_inodes=$inodes" edgefleet-diskfull "$d"
done
"#;

const DISK_FULL_OFF: &str = r#"for d in /etc/aziot /etc/docker; do
  while grep -q "^edgefleet-diskfull $d " /proc/self/mounts; do umount "$d" || exit 1; done
done
"#;

/// The run ID in the owner record of the `locked` fault.
pub const LOCKED_FAULT_RUN: &str = "lab-fault-locked";

/// Take edgefleet's run lock inside the device and leave it held by a background process (its fd 9 shares the
/// locked open file), with an owner record like a run's. Idempotent; fails if a real run holds the lock.
const LOCKED_ON: &str = r#"set -e
L=/run/lock/edgefleet.lock P=/run/edgefleet-lab-locked.pid
if [ -e "$P" ] && [ "$(tr '\0' ' ' <"/proc/$(cat "$P")/cmdline" 2>/dev/null)" = "sleep 2147483647 " ]; then exit 0; fi
[ -e "$L" ] || (umask 0; : >>"$L")
exec 9<"$L"
flock -n 9 || { echo "a run holds the device's lock already" >&2; exit 1; }
sleep 2147483647 </dev/null >/dev/null 2>&1 &
(umask 0; printf '%s	%s	%s	%s
' lab-fault-locked "edgefleet-lab@$(hostname)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$!" >"$L.owner")
echo "$!" >"$P"
"#;

/// Stop the `locked` fault's holder (only if the pid file still names it) and wait until the lock is free.
const LOCKED_OFF: &str = r#"P=/run/edgefleet-lab-locked.pid
[ -e "$P" ] || exit 0
p=$(cat "$P"); rm -f "$P"
[ "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" = "sleep 2147483647 " ] || exit 0
kill "$p"
# The kernel drops the lock as the holder exits; a run may take it at once, which is fine too.
flock -w 10 /run/lock/edgefleet.lock true || true
"#;

/// `low-disk`: a 32 MiB tmpfs on the Docker root, filled but for 32 KiB (`df` and the maintenance gather see a
/// real file system that is 100% full, above any threshold). Only inside the device's mount namespace.
const LOW_DISK_ON: &str = r#"set -e
d=/var/lib/docker
if ! grep -q "^edgefleet-lowdisk $d " /proc/self/mounts; then
  mkdir -p "$d"
  mount -t tmpfs -o size=32m,mode=0711 edgefleet-lowdisk "$d"
  mkdir -p "$d/volumes"
  head -c 33521664 /dev/zero > "$d/.lab-low-disk"
fi
"#;

const LOW_DISK_OFF: &str = r#"while grep -q "^edgefleet-lowdisk /var/lib/docker " /proc/self/mounts; do umount /var/lib/docker || exit 1; done
"#;

/// Run a `sim::lab_states` function on the device root (off the async runtime: it writes files).
async fn sim_state(
    sh: &Shared,
    dev: &Dev,
    f: fn(&std::path::Path) -> io::Result<()>,
) -> Result<(), String> {
    let root = sh.paths.device_root(&dev.spec.name);
    let name = dev.spec.name.clone();
    tokio::task::spawn_blocking(move || f(&root))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{name}: {e}"))
}

/// Room in the bundle store under `store-full`.
pub const STORE_FULL_KIB: u64 = 1024;

const STORE_FULL_ON: &str = r#"set -e
d=/var/lib/edgefleet/blobs under=/run/edgefleet-storefull-under
mkdir -p "$d"
if ! grep -q "^edgefleet-storefull $d " /proc/self/mounts; then
  mkdir -p "$under"
  mount --bind "$d" "$under"
  mount -t tmpfs -o "size=${STORE_FULL_KIB}k,mode=0755" edgefleet-storefull "$d"
  cp -a "$under/." "$d/" 2>/dev/null || true
fi
"#;

const STORE_FULL_OFF: &str = r#"d=/var/lib/edgefleet/blobs under=/run/edgefleet-storefull-under
if grep -q "^edgefleet-storefull $d " /proc/self/mounts; then
  cp -a "$d/." "$under/" && umount "$d" && umount "$under" && rmdir "$under" || exit 1
fi
"#;

async fn store_script(dev: &Dev, script: &'static str) -> Result<(), String> {
    let script = format!("STORE_FULL_KIB={STORE_FULL_KIB}\n{script}");
    root_script(dev, script, "store-full").await.map(|_| ())
}

async fn disk_script(dev: &Dev, script: &'static str) -> Result<(), String> {
    root_script(dev, script.to_string(), "disk-full")
        .await
        .map(|_| ())
}

/// Run `script` as root inside the device; its stdout.
async fn root_script(dev: &Dev, script: String, what: &str) -> Result<Vec<u8>, String> {
    let (pid, ino) = (dev.host.holder_pid, dev.host.mnt_ns);
    let out = tokio::task::spawn_blocking(move || ns::run_as_root(pid, ino, &script))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "{}: {what} script failed ({}): {}",
            dev.spec.name,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The host-side copy of the device's Edge CA certificate from before the first certificate fault.
fn edge_ca_backup(sh: &Shared, dev: &Dev) -> PathBuf {
    sh.paths
        .device(&dev.spec.name)
        .join("edge-ca.cert.pem.before-fault")
}

/// Replace the device's Edge CA certificate file in place (owner and mode kept, atomic rename).
async fn write_edge_ca(dev: &Dev, pem: &str) -> Result<(), String> {
    if pem.contains("EDGEFLEET_PEM") || !pem.is_ascii() {
        return Err(format!(
            "{}: refusing to write an odd certificate",
            dev.spec.name
        ));
    }
    let script = format!(
        "set -e\np={EDGE_CA_CERT}\ncat > \"$p.lab-tmp\" <<'EDGEFLEET_PEM'\n{}\nEDGEFLEET_PEM\nchown --reference=\"$p\" \"$p.lab-tmp\"\nchmod 644 \"$p.lab-tmp\"\nmv -f \"$p.lab-tmp\" \"$p\"\n",
        pem.trim_end()
    );
    root_script(dev, script, "Edge CA").await.map(|_| ())
}

/// Re-sign the device's Edge CA (same key, same name) so that it ends `days_left` days from now, by a throwaway
/// root (the lab's root key is not kept after `lab up`). The first time, the original is saved on the host.
async fn edge_ca_fault(sh: &Shared, dev: &Dev, days_left: i64) -> Result<(), String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let name = &dev.spec.name;
    let missing = |what: &str| {
        format!("{name}: no Edge CA {what} is installed yet: provision the device first (`lab run --keep`, or play playbooks/provision.yml)")
    };
    let cert = root_script(dev, format!("cat {EDGE_CA_CERT}"), "Edge CA")
        .await
        .map_err(|_| missing("certificate"))?;
    let key = root_script(dev, format!("cat {EDGE_CA_KEY}"), "Edge CA")
        .await
        .map_err(|_| missing("key"))?;
    let backup = edge_ca_backup(sh, dev);
    if !backup.exists() {
        std::fs::write(&backup, &cert).map_err(|e| format!("{name}: {e}"))?;
    }
    let key = KeyPair::from_pem(&String::from_utf8_lossy(&key))
        .map_err(|e| format!("{name}: the installed Edge CA key cannot be read: {e}"))?;
    let err = |e: rcgen::Error| format!("{name}: {e}");
    let now = time::OffsetDateTime::now_utc();
    let root_key = KeyPair::generate().map_err(err)?;
    let mut rp = CertificateParams::default();
    rp.distinguished_name
        .push(DnType::CommonName, "edgefleet lab fault root CA");
    rp.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    rp.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    rp.not_before = now - time::Duration::days(400);
    rp.not_after = now + time::Duration::days(3650);
    let root = rp.self_signed(&root_key).map_err(err)?;
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::CommonName, format!("edgefleet lab Edge CA {name}"));
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.use_authority_key_identifier_extension = true;
    // An hour past the whole day, so "days left" reads exactly `days_left` for the next hour.
    p.not_after = now + time::Duration::days(days_left) + time::Duration::hours(1);
    p.not_before = p.not_after - time::Duration::days(365);
    let leaf = p
        .signed_by(&key, &rcgen::Issuer::new(rp, root_key))
        .map_err(err)?;
    write_edge_ca(dev, &format!("{}{}", leaf.pem(), root.pem())).await
}

/// Put back the Edge CA saved by the first certificate fault, if any.
async fn restore_edge_ca(sh: &Shared, dev: &Dev) -> Result<(), String> {
    let backup = edge_ca_backup(sh, dev);
    let Ok(orig) = std::fs::read_to_string(&backup) else {
        return Ok(());
    };
    write_edge_ca(dev, &orig).await?;
    std::fs::remove_file(&backup).map_err(|e| format!("{}: {e}", dev.spec.name))
}

pub(super) async fn apply_fault(
    sh: &Shared,
    dev: &Dev,
    kind: FaultKind,
    ms: Option<u64>,
    value: Option<String>,
) -> Result<(), String> {
    let mut name = fault_name(kind).to_string();
    let io_err = |e: io::Error| format!("{}: {e}", dev.spec.name);
    match kind {
        FaultKind::None => {
            restore_edge_ca(sh, dev).await?;
            for f in [
                "apply-fails",
                "check-error",
                "clock-skew",
                "edge-ca-rejected",
                "container-list-fails",
                "dns-fails",
                "ports-blocked",
                "behind-proxy",
                "crashloop-after-change",
            ] {
                match std::fs::remove_file(sim_fault_file(sh, dev, f)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(e)),
                    _ => {}
                }
            }
            disk_script(dev, DISK_FULL_OFF).await?;
            root_script(dev, LOCKED_OFF.to_string(), "locked").await?;
            root_script(dev, LOW_DISK_OFF.to_string(), "low-disk").await?;
            sim_state(sh, dev, lab_states::clear).await?;
            store_script(dev, STORE_FULL_OFF).await?;
            set_desired(dev, |d| {
                d.net = Net::Normal;
                d.wrong_key = false;
                d.down_until = None;
            })
            .await?;
            if let Ok(mut c) = dev.host.cut_off_when.lock() {
                *c = None;
            }
            if let Ok(mut f) = dev.faults.lock() {
                f.clear();
            }
            return Ok(());
        }
        FaultKind::Unreachable => set_desired(dev, |d| d.net = Net::Unreachable).await?,
        FaultKind::UnreachableAfterDns => {
            if sh.openssh {
                return Err(format!("{}: unreachable-after-dns needs the embedded backend (it refuses connections as they arrive)", dev.spec.name));
            }
            let v = value.unwrap_or_default();
            if v.parse::<std::net::IpAddr>().is_err() {
                return Err(format!(
                    "{}: unreachable-after-dns needs an IP address (`--value 192.0.2.53`), not `{v}`",
                    dev.spec.name
                ));
            }
            if let Ok(mut c) = dev.host.cut_off_when.lock() {
                *c = Some(v.clone());
            }
            name = format!("unreachable-after-dns({v})");
        }
        FaultKind::BlackHole => set_desired(dev, |d| d.net = Net::BlackHole).await?,
        FaultKind::SlowLink => {
            let ms = ms.unwrap_or(DEFAULT_SLOW_MS);
            set_desired(dev, |d| d.net = Net::Slow(ms)).await?
        }
        FaultKind::WrongHostKey => set_desired(dev, |d| d.wrong_key = true).await?,
        FaultKind::DanglingImages => sim_state(sh, dev, lab_states::add_dangling_images).await?,
        FaultKind::UnusedVolumes => sim_state(sh, dev, lab_states::add_unused_volumes).await?,
        FaultKind::OldRuntime => sim_state(sh, dev, lab_states::set_old_runtime).await?,
        FaultKind::ModuleUnpinned => {
            sim_state(sh, dev, |r| module_fault(r, ModuleFault::Unpinned)).await?
        }
        FaultKind::ModuleNoLogLimits => {
            sim_state(sh, dev, |r| module_fault(r, ModuleFault::NoLogLimits)).await?
        }
        FaultKind::ModulePrivileged => {
            sim_state(sh, dev, |r| module_fault(r, ModuleFault::Privileged)).await?
        }
        FaultKind::ModuleNoMemoryLimit => {
            sim_state(sh, dev, |r| module_fault(r, ModuleFault::NoMemoryLimit)).await?
        }
        FaultKind::EdgehubNoStorageBind => {
            sim_state(sh, dev, |r| module_fault(r, ModuleFault::HubNoStorageBind)).await?
        }
        FaultKind::LowDisk => {
            root_script(dev, LOW_DISK_ON.to_string(), "low-disk").await?;
        }
        FaultKind::ApplyFails
        | FaultKind::CheckError
        | FaultKind::ContainerListFails
        | FaultKind::DnsFails
        | FaultKind::CrashloopAfterChange => {
            let p = sim_fault_file(sh, dev, &name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(io_err)?;
            }
            std::fs::write(&p, b"").map_err(io_err)?;
        }
        FaultKind::PortsBlocked | FaultKind::BehindProxy => {
            // The simulator's `curl` reads what is blocked, or which proxy the site has, from the file.
            let text = if kind == FaultKind::PortsBlocked {
                DEFAULT_BLOCKED_PORTS
            } else {
                LAB_PROXY_URL
            };
            let p = sim_fault_file(sh, dev, &name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(io_err)?;
            }
            std::fs::write(&p, format!("{text}\n")).map_err(io_err)?;
        }
        FaultKind::DiskFull => disk_script(dev, DISK_FULL_ON).await?,
        FaultKind::StoreFull => store_script(dev, STORE_FULL_ON).await?,
        FaultKind::EdgeCaExpiring => edge_ca_fault(sh, dev, EXPIRING_DAYS).await?,
        FaultKind::EdgeCaExpired => edge_ca_fault(sh, dev, -EXPIRED_DAYS_AGO).await?,
        FaultKind::EdgeCaRejected => {
            // The simulator accepts only this certificate as the Edge CA from now on.
            let cert = root_script(dev, format!("cat {EDGE_CA_CERT}"), "Edge CA")
                .await
                .map_err(|_| {
                    format!("{}: no Edge CA is installed yet: provision the device first (`lab run --keep`, or play playbooks/provision.yml)", dev.spec.name)
                })?;
            let p = sim_fault_file(sh, dev, &name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(io_err)?;
            }
            std::fs::write(&p, cert).map_err(io_err)?;
        }
        FaultKind::ClockSkew => {
            // Seconds the device's `date` adds to the real clock (the lab's `date` wrapper reads this file).
            let secs = ms.unwrap_or(DEFAULT_CLOCK_SKEW_MS) / 1000;
            let p = sim_fault_file(sh, dev, &name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(io_err)?;
            }
            std::fs::write(&p, format!("{secs}\n")).map_err(io_err)?;
        }
        FaultKind::Locked => {
            root_script(dev, LOCKED_ON.to_string(), "locked").await?;
        }
        FaultKind::Reboot => {
            let ms = ms.unwrap_or(DEFAULT_REBOOT_MS);
            let until = tokio::time::Instant::now() + Duration::from_millis(ms);
            set_desired(dev, |d| d.down_until = Some(until)).await?;
            dev.host.conns.drop_all();
            let (ino, holder) = (dev.host.mnt_ns, dev.host.holder_pid);
            let marker = ns::lab_marker(&sh.spec.id);
            let _ = tokio::task::spawn_blocking(move || {
                ns::kill_all(
                    &HashSet::from([ino]),
                    None,
                    &HashSet::from([holder]),
                    Duration::from_secs(10),
                    &marker,
                )
            })
            .await;
            // "reboot" is an event, not a lasting fault: it is not listed afterwards.
            return Ok(());
        }
    }
    if let Ok(mut f) = dev.faults.lock() {
        if matches!(
            kind,
            FaultKind::Unreachable | FaultKind::BlackHole | FaultKind::SlowLink
        ) {
            f.retain(|x| {
                !matches!(x.as_str(), "unreachable" | "black-hole") && !x.starts_with("slow-link")
            });
        }
        if matches!(kind, FaultKind::EdgeCaExpiring | FaultKind::EdgeCaExpired) {
            f.retain(|x| !matches!(x.as_str(), "edge-ca-expiring" | "edge-ca-expired"));
        }
        if kind == FaultKind::SlowLink {
            f.insert(format!("slow-link({}ms)", ms.unwrap_or(DEFAULT_SLOW_MS)));
        } else {
            f.insert(name);
        }
    }
    Ok(())
}
