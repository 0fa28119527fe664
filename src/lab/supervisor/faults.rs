//! The faults a device can be given and what applying each does: network faults and the wrong host key change
//! the device's desired endpoint (`device`), `reboot` kills every process in the device and keeps its server
//! down for a while, `disk-full` mounts full tmpfs copies over /etc/aziot and /etc/docker, `apply-fails` /
//! `check-error` create the simulator's fault files, `none` clears everything. Also the faults' CLI spelling.
//!
//! It must not speak the control protocol (that is `control`).

use std::collections::HashSet;
use std::io::{self};
use std::path::PathBuf;
use std::time::Duration;

use crate::lab::ns::{self};

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
    /// The SSH server dies and comes back after a delay.
    Reboot,
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
        FaultKind::Reboot,
    ];
}

/// Default added round-trip latency of `slow-link`.
pub const DEFAULT_SLOW_MS: u64 = 200;
/// Default downtime of `reboot`.
pub const DEFAULT_REBOOT_MS: u64 = 2000;

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
        FaultKind::Reboot => "reboot",
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

async fn disk_script(dev: &Dev, script: &'static str) -> Result<(), String> {
    let (pid, ino) = (dev.host.holder_pid, dev.host.mnt_ns);
    let out = tokio::task::spawn_blocking(move || ns::run_as_root(pid, ino, script))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: disk-full script failed ({}): {}",
            dev.spec.name,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

pub(super) async fn apply_fault(
    sh: &Shared,
    dev: &Dev,
    kind: FaultKind,
    ms: Option<u64>,
) -> Result<(), String> {
    let name = fault_name(kind).to_string();
    let io_err = |e: io::Error| format!("{}: {e}", dev.spec.name);
    match kind {
        FaultKind::None => {
            for f in ["apply-fails", "check-error"] {
                match std::fs::remove_file(sim_fault_file(sh, dev, f)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(e)),
                    _ => {}
                }
            }
            disk_script(dev, DISK_FULL_OFF).await?;
            set_desired(dev, |d| {
                d.net = Net::Normal;
                d.wrong_key = false;
                d.down_until = None;
            })
            .await?;
            if let Ok(mut f) = dev.faults.lock() {
                f.clear();
            }
            return Ok(());
        }
        FaultKind::Unreachable => set_desired(dev, |d| d.net = Net::Unreachable).await?,
        FaultKind::BlackHole => set_desired(dev, |d| d.net = Net::BlackHole).await?,
        FaultKind::SlowLink => {
            let ms = ms.unwrap_or(DEFAULT_SLOW_MS);
            set_desired(dev, |d| d.net = Net::Slow(ms)).await?
        }
        FaultKind::WrongHostKey => set_desired(dev, |d| d.wrong_key = true).await?,
        FaultKind::ApplyFails | FaultKind::CheckError => {
            let p = sim_fault_file(sh, dev, &name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(io_err)?;
            }
            std::fs::write(&p, b"").map_err(io_err)?;
        }
        FaultKind::DiskFull => disk_script(dev, DISK_FULL_ON).await?,
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
        if kind == FaultKind::SlowLink {
            f.insert(format!("slow-link({}ms)", ms.unwrap_or(DEFAULT_SLOW_MS)));
        } else {
            f.insert(name);
        }
    }
    Ok(())
}
