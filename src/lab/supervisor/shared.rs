//! What every part of the supervisor shares: the lab's paths and spec, the spawner thread (children with
//! PR_SET_PDEATHSIG), the devices' network (the host's, or in bastion mode a private namespace reached through
//! a thread that joined it), the `ps` switch, the log, and the SSH banner probe.
//!
//! A leaf of the supervisor: it must not know devices, faults or the control protocol.

use std::io::{self};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::lab::layout::{LabSpec, Paths};
use crate::lab::ns::{self};

/// Spawns long-lived children from one thread that lives as long as the supervisor (PR_SET_PDEATHSIG is per
/// thread), inside the tokio runtime so their exit can be awaited.
#[derive(Clone)]
pub(super) struct Spawner {
    tx: std::sync::mpsc::Sender<(
        std::process::Command,
        tokio::sync::oneshot::Sender<io::Result<tokio::process::Child>>,
    )>,
}

impl Spawner {
    pub(super) fn start(rt: tokio::runtime::Handle) -> Spawner {
        let (tx, rx) = std::sync::mpsc::channel::<(
            std::process::Command,
            tokio::sync::oneshot::Sender<io::Result<tokio::process::Child>>,
        )>();
        std::thread::Builder::new()
            .name("lab-spawner".into())
            .spawn(move || {
                let _g = rt.enter();
                while let Ok((cmd, reply)) = rx.recv() {
                    let _ = reply.send(tokio::process::Command::from(cmd).spawn());
                }
                // Keep the thread (and so every child's parent-death signal) alive until the process exits.
                loop {
                    std::thread::park();
                }
            })
            .ok();
        Spawner { tx }
    }

    pub(super) async fn spawn(
        &self,
        cmd: std::process::Command,
    ) -> io::Result<tokio::process::Child> {
        let (t, r) = tokio::sync::oneshot::channel();
        self.tx
            .send((cmd, t))
            .map_err(|_| io::Error::other("spawner thread is gone"))?;
        r.await
            .map_err(|_| io::Error::other("spawner thread is gone"))?
    }
}

pub(super) struct Shared {
    pub(super) paths: Paths,
    pub(super) spec: LabSpec,
    pub(super) spawner: Spawner,
    pub(super) openssh: bool,
    pub(super) ps: watch::Sender<Option<Duration>>,
    pub(super) net: NetMode,
}

/// Where the supervisor's device-side sockets live: the host's network, or (bastion mode) the devices'
/// private network namespace, reached through a thread that joined it (sockets belong to the namespace they
/// are created in).
pub(super) enum NetMode {
    Host,
    Ns(NetJoin),
}

enum NetOp {
    Bind(SocketAddr),
    Connect(SocketAddr),
}

enum NetOut {
    Listener(std::net::TcpListener),
    Stream(std::net::TcpStream),
}

type NetReply = tokio::sync::oneshot::Sender<io::Result<NetOut>>;

pub(super) struct NetJoin {
    tx: Mutex<std::sync::mpsc::Sender<(NetOp, NetReply)>>,
}

impl NetJoin {
    pub(super) fn start(net: std::fs::File) -> io::Result<NetJoin> {
        let (tx, rx) = std::sync::mpsc::channel::<(NetOp, NetReply)>();
        let (ok_tx, ok_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("lab-netns".into())
            .spawn(move || {
                if let Err(e) = ns::join_net_thread(&net) {
                    let _ = ok_tx.send(Err(e));
                    return;
                }
                let _ = ok_tx.send(Ok(()));
                while let Ok((op, reply)) = rx.recv() {
                    let r = match op {
                        NetOp::Bind(a) => std::net::TcpListener::bind(a).map(NetOut::Listener),
                        NetOp::Connect(a) => {
                            std::net::TcpStream::connect_timeout(&a, Duration::from_secs(5))
                                .map(NetOut::Stream)
                        }
                    };
                    let _ = reply.send(r);
                }
            })?;
        ok_rx
            .recv()
            .map_err(|_| io::Error::other("network namespace thread died"))??;
        Ok(NetJoin { tx: Mutex::new(tx) })
    }

    async fn call(&self, op: NetOp) -> io::Result<NetOut> {
        let (t, r) = tokio::sync::oneshot::channel();
        self.tx
            .lock()
            .map_err(|_| io::Error::other("network namespace thread lock"))?
            .send((op, t))
            .map_err(|_| io::Error::other("network namespace thread is gone"))?;
        r.await
            .map_err(|_| io::Error::other("network namespace thread is gone"))?
    }
}

impl Shared {
    /// Bind a listener on the devices' network.
    pub(super) async fn bind_once(&self, a: SocketAddr) -> io::Result<TcpListener> {
        match &self.net {
            NetMode::Host => TcpListener::bind(a).await,
            NetMode::Ns(j) => match j.call(NetOp::Bind(a)).await? {
                NetOut::Listener(l) => {
                    l.set_nonblocking(true)?;
                    TcpListener::from_std(l)
                }
                NetOut::Stream(_) => Err(io::Error::other("unexpected stream")),
            },
        }
    }

    /// Connect to an address on the devices' network.
    pub(super) async fn connect(&self, a: SocketAddr) -> io::Result<TcpStream> {
        match &self.net {
            NetMode::Host => TcpStream::connect(a).await,
            NetMode::Ns(j) => match j.call(NetOp::Connect(a)).await? {
                NetOut::Stream(s) => {
                    s.set_nonblocking(true)?;
                    TcpStream::from_std(s)
                }
                NetOut::Listener(_) => Err(io::Error::other("unexpected listener")),
            },
        }
    }

    /// Bind, retrying while a previous listener on the same address is still closing.
    pub(super) async fn bind(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        let mut last = None;
        for _ in 0..100 {
            match self.bind_once(addr).await {
                Ok(l) => return Ok(l),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("bind failed")))
    }
}

pub(super) fn log(msg: impl AsRef<str>) {
    let t = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    eprintln!("{t} {}", msg.as_ref());
}

pub(super) async fn banner_on(mut s: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 8];
    s.read_exact(&mut buf).await?;
    if &buf[..4] == b"SSH-" {
        Ok(())
    } else {
        Err(io::Error::other("no SSH banner"))
    }
}

pub(super) async fn banner(addr: SocketAddr) -> io::Result<()> {
    banner_on(TcpStream::connect(addr).await?).await
}

/// Check that `addr` answers with an SSH banner within `timeout`.
pub async fn probe(addr: SocketAddr, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, banner(addr)).await,
        Ok(Ok(()))
    )
}
