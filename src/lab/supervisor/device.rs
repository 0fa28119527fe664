//! One device's SSH endpoint as the supervisor runs it: the desired state (network mode, wrong host key, down
//! until), the controller loop that (re)starts the server to match it — embedded russh listener or a supervised
//! `sshd -D` inside the device's namespaces — and the slow-link proxy and black-hole listener; plus the
//! bastion sshd and its forwarder.
//!
//! It must not decide which fault means what (that is `faults`) nor speak the control protocol.

use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::lab::embedded::{self, DeviceHost};
use crate::lab::layout::{self, DeviceSpec};
use crate::lab::ns::{self, Creds, NsFds};
use crate::lab::provision;

use super::shared::{log, Shared};

/// Port the real SSH server moves to while a slow-link proxy owns port 22.
pub const SLOW_INNER_PORT: u16 = 22022;

/// Network-level state of a device's SSH endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Net {
    #[default]
    Normal,
    Unreachable,
    BlackHole,
    Slow(u64),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Desired {
    pub(super) net: Net,
    pub(super) wrong_key: bool,
    pub(super) down_until: Option<tokio::time::Instant>,
    pub(super) gen: u64,
}

pub(super) struct Dev {
    pub(super) spec: DeviceSpec,
    pub(super) host: Arc<DeviceHost>,
    pub(super) desired: watch::Sender<Desired>,
    pub(super) applied: watch::Sender<u64>,
    pub(super) faults: Mutex<BTreeSet<String>>,
    pub(super) cfg: OnceLock<Arc<embedded::ServerConfig>>,
    pub(super) alt_cfg: OnceLock<Arc<embedded::ServerConfig>>,
}

/// What is running for a device right now.
#[derive(Default)]
pub(super) struct Running {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    sshd: Option<tokio::process::Child>,
}

impl Running {
    async fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
        if let Some(mut c) = self.sshd.take() {
            if let Some(pid) = c.id() {
                // SAFETY: kill(2) on our own child (the listener only; sessions live on, as with a real sshd).
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            if tokio::time::timeout(Duration::from_secs(5), c.wait())
                .await
                .is_err()
            {
                let _ = c.kill().await;
            }
        }
    }

    async fn server_exit(&mut self) -> String {
        match self.sshd.as_mut() {
            Some(c) => match c.wait().await {
                Ok(s) => s.to_string(),
                Err(e) => e.to_string(),
            },
            None => std::future::pending().await,
        }
    }
}

pub(super) async fn start(dev: &Arc<Dev>, sh: &Arc<Shared>, want: &Desired) -> io::Result<Running> {
    let mut run = Running::default();
    let ip = std::net::IpAddr::V4(dev.spec.addr);
    let public = SocketAddr::new(ip, dev.spec.port);
    let server_at = match want.net {
        Net::Normal => Some(public),
        Net::Slow(_) => Some(SocketAddr::new(ip, SLOW_INNER_PORT)),
        Net::Unreachable | Net::BlackHole => None,
    };
    if let Some(at) = server_at {
        if sh.openssh {
            let ssh = sh.paths.device_ssh(&dev.spec.name);
            let cfg = ssh.join("sshd_config");
            std::fs::write(
                &cfg,
                provision::sshd_config(&sh.paths, &dev.spec, at, want.wrong_key),
            )?;
            let logf = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(sh.paths.device(&dev.spec.name).join("sshd.log"))?;
            let mut c = std::process::Command::new("/usr/sbin/sshd");
            c.arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&cfg)
                .stdin(std::process::Stdio::null())
                .stdout(logf.try_clone()?)
                .stderr(logf);
            let fds = NsFds::open(dev.host.holder_pid, dev.host.mnt_ns)?;
            ns::enter(
                &mut c,
                &fds,
                Creds {
                    uid: 0,
                    gid: 0,
                    groups: vec![0],
                    home: c"/".into(),
                },
            )?;
            // SAFETY: prctl is async-signal-safe.
            unsafe {
                c.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                    Ok(())
                });
            }
            let mut child = sh.spawner.spawn(c).await?;
            // Wait until it listens, so a fault change is complete when it is acknowledged.
            let mut ok = false;
            for _ in 0..250 {
                if sh.connect(at).await.is_ok() {
                    ok = true;
                    break;
                }
                if let Ok(Some(st)) = child.try_wait() {
                    return Err(io::Error::other(format!(
                        "sshd exited at start ({st}); see {}",
                        sh.paths.device(&dev.spec.name).join("sshd.log").display()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if !ok {
                let _ = child.kill().await;
                return Err(io::Error::other(format!("sshd does not listen on {at}")));
            }
            run.sshd = Some(child);
        } else {
            let key_cell = if want.wrong_key {
                &dev.alt_cfg
            } else {
                &dev.cfg
            };
            let cfg = match key_cell.get() {
                Some(c) => c.clone(),
                None => {
                    let ssh = sh.paths.device_ssh(&dev.spec.name);
                    let f = if want.wrong_key {
                        ssh.join("ssh_host_ed25519_key.alt")
                    } else {
                        ssh.join("ssh_host_ed25519_key")
                    };
                    let c =
                        embedded::server_config(&f).map_err(|e| io::Error::other(e.to_string()))?;
                    let _ = key_cell.set(c.clone());
                    c
                }
            };
            let l = sh.bind(at).await?;
            run.tasks
                .push(tokio::spawn(embedded::serve(l, cfg, dev.host.clone())));
        }
    }
    match want.net {
        Net::BlackHole => {
            let l = sh.bind(public).await?;
            run.tasks.push(tokio::spawn(async move {
                let mut held = Vec::new();
                while let Ok((s, _)) = l.accept().await {
                    held.push(s);
                }
            }));
        }
        Net::Slow(ms) => {
            let l = sh.bind(public).await?;
            let inner = SocketAddr::new(ip, SLOW_INNER_PORT);
            let conns = dev.host.conns.clone();
            let sh = sh.clone();
            run.tasks.push(tokio::spawn(async move {
                while let Ok((s, _)) = l.accept().await {
                    let conns = conns.clone();
                    let sh = sh.clone();
                    tokio::spawn(async move {
                        let Ok(up) = sh.connect(inner).await else {
                            return;
                        };
                        let _g1 = conns.track(&s);
                        let _g2 = conns.track(&up);
                        let _ = s.set_nodelay(true);
                        let _ = up.set_nodelay(true);
                        let half = Duration::from_micros(ms * 500);
                        let (cr, cw) = s.into_split();
                        let (ur, uw) = up.into_split();
                        tokio::join!(delayed_copy(cr, uw, half), delayed_copy(ur, cw, half));
                    });
                }
            }));
        }
        Net::Normal | Net::Unreachable => {}
    }
    Ok(run)
}

/// Copy `r` to `w`, delivering every chunk `delay` after it was read (latency without a bandwidth limit).
pub(super) async fn delayed_copy(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(256);
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((tokio::time::Instant::now() + delay, buf[..n].to_vec()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if w.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = w.shutdown().await;
    };
    tokio::join!(reader, writer);
}

pub(super) async fn device_loop(dev: Arc<Dev>, sh: Arc<Shared>) {
    let mut rx = dev.desired.subscribe();
    loop {
        let want = rx.borrow_and_update().clone();
        if let Some(t) = want.down_until {
            dev.applied.send_replace(want.gen);
            tokio::select! {
                _ = tokio::time::sleep_until(t) => {
                    dev.desired.send_modify(|d| d.down_until = None);
                }
                r = rx.changed() => if r.is_err() { return },
            }
            continue;
        }
        let mut run = match start(&dev, &sh, &want).await {
            Ok(r) => r,
            Err(e) => {
                log(format!(
                    "{}: cannot start its SSH endpoint: {e}",
                    dev.spec.name
                ));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    r = rx.changed() => if r.is_err() { return },
                }
                continue;
            }
        };
        dev.applied.send_replace(want.gen);
        tokio::select! {
            r = rx.changed() => {
                run.stop().await;
                if r.is_err() { return; }
            }
            st = run.server_exit() => {
                log(format!("{}: sshd exited ({st}); restarting it", dev.spec.name));
                run.stop().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Change a device's desired endpoint state and wait until the controller applied it.
pub(super) async fn set_desired(dev: &Dev, f: impl FnOnce(&mut Desired)) -> Result<(), String> {
    let mut gen = 0;
    dev.desired.send_modify(|d| {
        f(d);
        d.gen += 1;
        gen = d.gen;
    });
    let mut rx = dev.applied.subscribe();
    let r = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if *rx.borrow_and_update() == gen {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    r.map_err(|_| format!("{}: the fault was not applied within 20s", dev.spec.name))
}

/// Bastion mode: start the bastion sshd inside the devices' network namespace and a forwarder on the host that
/// is the only way in. Returns the sshd child and the forwarder task.
pub(super) async fn start_bastion(
    sh: &Arc<Shared>,
    net: &std::fs::File,
) -> io::Result<(tokio::process::Child, tokio::task::JoinHandle<()>)> {
    let dir = sh.paths.bastion();
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("sshd.log"))?;
    let mut c = std::process::Command::new("/usr/sbin/sshd");
    c.arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(dir.join("sshd_config"))
        .stdin(std::process::Stdio::null())
        .stdout(logf.try_clone()?)
        .stderr(logf);
    ns::enter_net(&mut c, net)?;
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            Ok(())
        });
    }
    let mut child = sh.spawner.spawn(c).await?;
    let at = SocketAddr::new(layout::bastion_addr(sh.spec.slot).into(), 22);
    let mut ok = false;
    for _ in 0..250 {
        if sh.connect(at).await.is_ok() {
            ok = true;
            break;
        }
        if let Ok(Some(st)) = child.try_wait() {
            return Err(io::Error::other(format!(
                "sshd exited at start ({st}); see {}",
                dir.join("sshd.log").display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if !ok {
        let _ = child.kill().await;
        return Err(io::Error::other(format!(
            "the bastion sshd does not listen on {at}"
        )));
    }
    let l = TcpListener::bind(at).await?;
    let sh = sh.clone();
    let fwd = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let sh = sh.clone();
            tokio::spawn(async move {
                if let Ok(mut up) = sh.connect(at).await {
                    let _ = s.set_nodelay(true);
                    let _ = up.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut s, &mut up).await;
                }
            });
        }
    });
    Ok((child, fwd))
}
