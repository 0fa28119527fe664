//! The control protocol of the supervisor (`run/ctl.sock`): one JSON request and one JSON reply per connection.
//! [`request`] is the client `Lab::fault` / `lab status` / `lab down` use; `control` serves one connection
//! (faults, status with an SSH probe per device, the `ps` switch, a probe, shutdown).
//!
//! It must not apply faults itself (`faults`) nor run device endpoints (`device`).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::lab::error::LabError;

use super::device::Dev;
use super::faults::{apply_fault, fault_from_name};
use super::shared::{banner_on, log, Shared};

/// A request on the control socket.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Inject or clear a fault.
    Fault {
        /// Device name.
        device: String,
        /// Fault kind, in its CLI spelling (`black-hole`, `none`, ...).
        kind: String,
        /// Milliseconds for slow-link / reboot.
        ms: Option<u64>,
        /// The value of `unreachable-after-dns` (an IP address).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
    },
    /// Current faults of every device.
    Status,
    /// Start (or stop) sampling every device's process list into `devices/NAME/ps.log`.
    Ps {
        /// On or off.
        enable: bool,
        /// Sampling interval (default 50 ms).
        interval_ms: Option<u64>,
    },
    /// Does one device answer SSH right now (probed from the devices' network)?
    Probe {
        /// Device name.
        device: String,
    },
    /// Tear the lab down and exit.
    Shutdown,
}

/// A reply on the control socket.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Reply {
    /// Did it work?
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Status: per device, its active faults and whether it answers SSH (probed from the devices' network).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceReport>,
}

/// One device in a status reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceReport {
    /// Device name.
    pub name: String,
    /// Active faults.
    pub faults: Vec<String>,
    /// Answered with an SSH banner within 5 s.
    pub up: bool,
}

/// Send one request to a running supervisor and read its reply.
pub fn request(socket: &Path, req: &Request) -> Result<Reply, LabError> {
    use std::io::{BufRead, BufReader};
    let mut s = std::os::unix::net::UnixStream::connect(socket).map_err(|e| {
        LabError::NotRunning(format!(
            "cannot reach the lab supervisor at {}: {e}",
            socket.display()
        ))
    })?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let mut line = serde_json::to_string(req).map_err(|e| LabError::Supervisor(e.to_string()))?;
    line.push('\n');
    s.write_all(line.as_bytes())
        .map_err(|e| LabError::Supervisor(format!("control socket: {e}")))?;
    let mut r = String::new();
    BufReader::new(s)
        .read_line(&mut r)
        .map_err(|e| LabError::Supervisor(format!("control socket: {e}")))?;
    serde_json::from_str(&r).map_err(|e| {
        LabError::Supervisor(format!("bad reply from the lab supervisor ({e}): {r:?}"))
    })
}

pub(super) async fn control(
    s: tokio::net::UnixStream,
    devs: Vec<Arc<Dev>>,
    sh: Arc<Shared>,
    shutdown: Arc<tokio::sync::Notify>,
) {
    let (r, mut w) = s.into_split();
    let mut line = String::new();
    if tokio::io::BufReader::new(r)
        .read_line(&mut line)
        .await
        .is_err()
    {
        return;
    }
    let reply = match serde_json::from_str::<Request>(&line) {
        Err(e) => Reply {
            ok: false,
            error: Some(format!("bad request: {e}")),
            ..Default::default()
        },
        Ok(Request::Shutdown) => {
            shutdown.notify_one();
            Reply {
                ok: true,
                ..Default::default()
            }
        }
        Ok(Request::Ps {
            enable,
            interval_ms,
        }) => {
            let every = Duration::from_millis(interval_ms.unwrap_or(50).max(5));
            sh.ps.send_replace(enable.then_some(every));
            Reply {
                ok: true,
                ..Default::default()
            }
        }
        Ok(Request::Probe { device }) => match devs.iter().find(|d| d.spec.name == device) {
            None => Reply {
                ok: false,
                error: Some(format!("no device named {device:?} in this lab")),
                ..Default::default()
            },
            Some(d) => {
                let addr = SocketAddr::new(d.spec.addr.into(), d.spec.port);
                let p = async { banner_on(sh.connect(addr).await?).await };
                let up = matches!(
                    tokio::time::timeout(Duration::from_secs(5), p).await,
                    Ok(Ok(()))
                );
                Reply {
                    ok: up,
                    error: (!up).then(|| format!("{device} does not answer")),
                    ..Default::default()
                }
            }
        },
        Ok(Request::Status) => {
            let sem = Arc::new(tokio::sync::Semaphore::new(64));
            let mut probes = Vec::new();
            for d in &devs {
                let (sh, sem) = (sh.clone(), sem.clone());
                let addr = SocketAddr::new(d.spec.addr.into(), d.spec.port);
                probes.push(tokio::spawn(async move {
                    let _p = sem.acquire().await;
                    let p = async { banner_on(sh.connect(addr).await?).await };
                    matches!(
                        tokio::time::timeout(Duration::from_secs(5), p).await,
                        Ok(Ok(()))
                    )
                }));
            }
            let mut devices = Vec::new();
            for (d, p) in devs.iter().zip(probes) {
                let mut f: Vec<String> = d
                    .faults
                    .lock()
                    .map(|f| f.iter().cloned().collect())
                    .unwrap_or_default();
                if d.desired.borrow().down_until.is_some() {
                    f.push("rebooting".into());
                }
                devices.push(DeviceReport {
                    name: d.spec.name.clone(),
                    faults: f,
                    up: p.await.unwrap_or(false),
                });
            }
            Reply {
                ok: true,
                devices,
                ..Default::default()
            }
        }
        Ok(Request::Fault {
            device,
            kind,
            ms,
            value,
        }) => {
            let r = match (
                devs.iter().find(|d| d.spec.name == device),
                fault_from_name(&kind),
            ) {
                (None, _) => Err(format!("no device named {device:?} in this lab")),
                (_, None) => Err(format!("unknown fault kind {kind:?}")),
                (Some(d), Some(k)) => apply_fault(&sh, d, k, ms, value).await,
            };
            if let Err(e) = &r {
                log(format!("fault {kind} on {device}: {e}"));
            } else {
                log(format!("fault {kind} on {device}: applied"));
            }
            Reply {
                ok: r.is_ok(),
                error: r.err(),
                ..Default::default()
            }
        }
    };
    let mut out = serde_json::to_string(&reply).unwrap_or_else(|_| "{\"ok\":false}".into());
    out.push('\n');
    let _ = w.write_all(out.as_bytes()).await;
}
