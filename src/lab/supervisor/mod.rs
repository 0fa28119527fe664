//! The lab supervisor (`edgefleet lab serve --dir DIR`): one daemon per lab that owns every lab resource.
//!
//! Owns, for the lifetime of a lab: the namespace holder of each device (spawned from one long-lived thread with
//! PR_SET_PDEATHSIG, so they die with the supervisor even on SIGKILL), each device's SSH server (embedded russh
//! listener or a supervised `sshd -D` started inside the device's namespaces and restarted if it dies), the
//! fault machinery (black-hole listeners, slow-link proxies, wrong host key, reboot, disk full, simulator fault
//! files), and the control socket (`run/ctl.sock`, one JSON request and one JSON reply per connection) that
//! `Lab::fault` / `lab status` / `lab down` use. On SIGTERM, SIGINT or a `shutdown` request it kills every process
//! inside every device (found by mount-namespace inode), which also releases every mount, and exits.
//! It must not write inventory or PKI (that is `provision`, run by `lab up` before the supervisor starts).
//!
//! Faults are per device. Network faults replace each other (`unreachable`: nothing listens; `black-hole`: a
//! listener that accepts and never answers; `slow-link`: the SSH server moves to port 22022 on the device address
//! and a proxy on port 22 delays every chunk by half the round-trip latency in each direction). `wrong-host-key`
//! restarts the server with the device's alternate host key. `reboot` stops the server, drops every established
//! connection, kills every process in the device (except its namespace holder, so files and mounts stay), and
//! starts the server again after `--ms` (default 2000). `disk-full` mounts a tmpfs holding a copy of the current
//! files over /etc/aziot and /etc/docker, shrunk to exactly its content (blocks and inodes), so writes fail with
//! ENOSPC. `apply-fails` / `check-error` create the simulator's fault files. `none` clears everything.

use std::collections::{BTreeSet, HashSet};
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::watch;

use super::embedded::{self, ConnRegistry, DeviceHost};
use super::layout::{self, DeviceRuntime, DeviceSpec, LabSpec, Paths, RuntimeState};
use super::ns::{self, Creds, NsFds, NsPlan};
use super::FaultKind;
use super::{provision, LabError};

/// Port the real SSH server moves to while a slow-link proxy owns port 22.
pub const SLOW_INNER_PORT: u16 = 22022;
/// Default added round-trip latency of `slow-link`.
pub const DEFAULT_SLOW_MS: u64 = 200;
/// Default downtime of `reboot`.
pub const DEFAULT_REBOOT_MS: u64 = 2000;

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

fn fault_from_name(s: &str) -> Option<FaultKind> {
    FaultKind::ALL.iter().copied().find(|k| fault_name(*k) == s)
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

/// Network-level state of a device's SSH endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Net {
    #[default]
    Normal,
    Unreachable,
    BlackHole,
    Slow(u64),
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Desired {
    net: Net,
    wrong_key: bool,
    down_until: Option<tokio::time::Instant>,
    gen: u64,
}

struct Dev {
    spec: DeviceSpec,
    host: Arc<DeviceHost>,
    desired: watch::Sender<Desired>,
    applied: watch::Sender<u64>,
    faults: Mutex<BTreeSet<String>>,
    cfg: OnceLock<Arc<embedded::ServerConfig>>,
    alt_cfg: OnceLock<Arc<embedded::ServerConfig>>,
}

/// Spawns long-lived children from one thread that lives as long as the supervisor (PR_SET_PDEATHSIG is per
/// thread), inside the tokio runtime so their exit can be awaited.
#[derive(Clone)]
struct Spawner {
    tx: std::sync::mpsc::Sender<(
        std::process::Command,
        tokio::sync::oneshot::Sender<io::Result<tokio::process::Child>>,
    )>,
}

impl Spawner {
    fn start(rt: tokio::runtime::Handle) -> Spawner {
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

    async fn spawn(&self, cmd: std::process::Command) -> io::Result<tokio::process::Child> {
        let (t, r) = tokio::sync::oneshot::channel();
        self.tx
            .send((cmd, t))
            .map_err(|_| io::Error::other("spawner thread is gone"))?;
        r.await
            .map_err(|_| io::Error::other("spawner thread is gone"))?
    }
}

struct Shared {
    paths: Paths,
    spec: LabSpec,
    spawner: Spawner,
    openssh: bool,
    ps: watch::Sender<Option<Duration>>,
    net: NetMode,
}

/// Where the supervisor's device-side sockets live: the host's network, or (bastion mode) the devices'
/// private network namespace, reached through a thread that joined it (sockets belong to the namespace they
/// are created in).
enum NetMode {
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

struct NetJoin {
    tx: Mutex<std::sync::mpsc::Sender<(NetOp, NetReply)>>,
}

impl NetJoin {
    fn start(net: std::fs::File) -> io::Result<NetJoin> {
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
    async fn bind_once(&self, a: SocketAddr) -> io::Result<TcpListener> {
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
    async fn connect(&self, a: SocketAddr) -> io::Result<TcpStream> {
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
    async fn bind(&self, addr: SocketAddr) -> io::Result<TcpListener> {
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

fn log(msg: impl AsRef<str>) {
    let t = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    eprintln!("{t} {}", msg.as_ref());
}

/// Run the supervisor in the foreground until told to stop. Returns the process exit code.
pub fn serve(dir: &Path) -> Result<i32, LabError> {
    let paths = Paths::new(dir)?;
    let spec: LabSpec = layout::read_json(&paths.spec())?;
    // Orphans of device processes (e.g. sshd session children killed by a reboot) are reparented to us, so
    // we can reap them instead of leaving zombies to an init that may not reap promptly.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) };
    std::fs::create_dir_all(paths.run()).map_err(|e| LabError::io(paths.run(), e))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| LabError::io("tokio runtime", e))?;
    let spawner = Spawner::start(rt.handle().clone());
    // Bastion mode: the devices' private network namespace, held by its own process.
    let mut netns = None;
    let mut net = NetMode::Host;
    if spec.bastion {
        let holder = rt
            .block_on(spawner.spawn(ns::net_holder_command()))
            .map_err(|e| LabError::io("network namespace holder (unshare CLONE_NEWNET)", e))?;
        let pid = holder.id().map(|p| p as i32).unwrap_or(0);
        let f = std::fs::File::open(format!("/proc/{pid}/ns/net"))
            .map_err(|e| LabError::io("network namespace holder", e))?;
        let ino = ns::net_ns_of(pid).map_err(|e| LabError::io("network namespace holder", e))?;
        let join = f
            .try_clone()
            .and_then(NetJoin::start)
            .map_err(|e| LabError::io("network namespace thread", e))?;
        net = NetMode::Ns(join);
        netns = Some((holder, f, ino));
    }
    let sh = Arc::new(Shared {
        ps: watch::channel(None).0,
        openssh: spec.backend == "openssh",
        paths,
        spec,
        spawner,
        net,
    });
    rt.block_on(run(sh, netns))
}

fn socket_path(paths: &Paths, slot: u8) -> PathBuf {
    let p = paths.run().join("ctl.sock");
    if p.as_os_str().len() < 100 {
        p
    } else {
        layout::run_base().join(format!("slot-{slot}.sock"))
    }
}

async fn run(
    sh: Arc<Shared>,
    netns: Option<(tokio::process::Child, std::fs::File, u64)>,
) -> Result<i32, LabError> {
    let t0 = std::time::Instant::now();
    let mut state = RuntimeState {
        supervisor_pid: std::process::id() as i32,
        ready: false,
        socket: socket_path(&sh.paths, sh.spec.slot),
        devices: Vec::new(),
        net_ns: netns.as_ref().map(|n| n.2),
    };
    // 1. Namespace holders (recorded as soon as they exist, so `lab down` can always clean up).
    let mut holders = Vec::new();
    let mut net_file = None;
    if let Some((h, f, _)) = netns {
        holders.push(h);
        net_file = Some(f);
    }
    let mut devs: Vec<Arc<Dev>> = Vec::new();
    let mut startup_error = None;
    for d in &sh.spec.devices {
        let r = async {
            let exe_dir = sh.spec.exe.parent().unwrap_or(Path::new("/"));
            let marker = ns::lab_marker(&sh.spec.id);
            let mut plan =
                NsPlan::for_device(&sh.paths, &d.name, &[&sh.paths.dir, exe_dir], &marker)?;
            if let Some(f) = &net_file {
                plan.join_net(f.try_clone()?);
            }
            let descr = NsPlan::for_device(&sh.paths, &d.name, &[&sh.paths.dir, exe_dir], &marker)?;
            let (cmd, mut report) = ns::holder_command(plan)?;
            let child = match sh.spawner.spawn(cmd).await {
                Ok(c) => c,
                Err(e) => {
                    let step = ns::failed_step(&mut report)
                        .map(|i| descr.describe(i))
                        .unwrap_or_else(|| "exec sleep".into());
                    return Err(io::Error::new(e.kind(), format!("{step}: {e}")));
                }
            };
            let pid = child.id().map(|p| p as i32).unwrap_or(0);
            let ino = ns::mnt_ns_of(pid)?;
            io::Result::Ok((child, pid, ino))
        }
        .await;
        match r {
            Ok((child, pid, ino)) => {
                holders.push(child);
                state.devices.push(DeviceRuntime {
                    name: d.name.clone(),
                    holder_pid: pid,
                    mnt_ns: ino,
                });
                devs.push(Arc::new(Dev {
                    spec: d.clone(),
                    host: Arc::new(DeviceHost {
                        root: sh.paths.device_root(&d.name),
                        holder_pid: pid,
                        mnt_ns: ino,
                        conns: Arc::new(ConnRegistry::default()),
                    }),
                    desired: watch::channel(Desired::default()).0,
                    applied: watch::channel(u64::MAX).0,
                    faults: Mutex::new(BTreeSet::new()),
                    cfg: OnceLock::new(),
                    alt_cfg: OnceLock::new(),
                }));
            }
            Err(e) => {
                startup_error = Some(format!(
                    "device {}: cannot create its namespaces: {e}",
                    d.name
                ));
                break;
            }
        }
    }
    layout::write_json(&sh.paths.state(), &state, 0o644)?;
    if let Some(e) = startup_error {
        log(&e);
        teardown(&sh, &state, holders).await;
        return Err(LabError::Supervisor(e));
    }
    log(format!(
        "{} namespace holders up in {:.1}s",
        devs.len(),
        t0.elapsed().as_secs_f64()
    ));

    // 2. Servers.
    let mut controllers = Vec::new();
    for d in &devs {
        controllers.push(tokio::spawn(device_loop(d.clone(), sh.clone())));
    }
    if let Some(f) = &net_file {
        match start_bastion(&sh, f).await {
            Ok((child, fwd)) => {
                holders.push(child);
                controllers.push(fwd);
            }
            Err(e) => {
                let e = format!("bastion: {e}");
                log(&e);
                for c in controllers {
                    c.abort();
                }
                teardown(&sh, &state, holders).await;
                return Err(LabError::Supervisor(e));
            }
        }
    }

    let sampler = tokio::spawn(ps_sampler(
        sh.clone(),
        devs.iter()
            .map(|d| (d.host.mnt_ns, sh.paths.device(&d.spec.name).join("ps.log")))
            .collect(),
    ));

    // 3. Control socket.
    let _ = std::fs::remove_file(&state.socket);
    let listener = UnixListener::bind(&state.socket).map_err(|e| LabError::io(&state.socket, e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&state.socket, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| LabError::io(&state.socket, e))?;
    }
    let shutdown = Arc::new(tokio::sync::Notify::new());
    let ctl = {
        let devs = devs.clone();
        let sh = sh.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    continue;
                };
                let devs = devs.clone();
                let sh = sh.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move { control(s, devs, sh, shutdown).await });
            }
        })
    };

    // 4. Ready when every device answers with an SSH banner.
    let deadline = Duration::from_secs(60 + devs.len() as u64 / 10);
    let ready = tokio::time::timeout(deadline, all_ready(&sh, &devs)).await;
    match ready {
        Ok(Ok(())) => {
            state.ready = true;
            layout::write_json(&sh.paths.state(), &state, 0o644)?;
            log(format!(
                "{} devices ({}) ready in {:.1}s",
                devs.len(),
                sh.spec.backend,
                t0.elapsed().as_secs_f64()
            ));
        }
        Ok(Err(e)) => {
            log(format!("startup failed: {e}"));
            ctl.abort();
            for c in controllers {
                c.abort();
            }
            teardown(&sh, &state, holders).await;
            return Ok(1);
        }
        Err(_) => {
            log(format!(
                "startup failed: not every device answered within {}s",
                deadline.as_secs()
            ));
            ctl.abort();
            for c in controllers {
                c.abort();
            }
            teardown(&sh, &state, holders).await;
            return Ok(1);
        }
    }

    // 5. Serve until told to stop.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| LabError::io("SIGTERM handler", e))?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| LabError::io("SIGINT handler", e))?;
    tokio::select! {
        _ = term.recv() => log("SIGTERM: tearing down"),
        _ = int.recv() => log("SIGINT: tearing down"),
        _ = shutdown.notified() => log("shutdown requested: tearing down"),
    }
    ctl.abort();
    sampler.abort();
    for c in controllers {
        c.abort();
    }
    teardown(&sh, &state, holders).await;
    let _ = std::fs::remove_file(&state.socket);
    let _ = std::fs::remove_file(sh.paths.state());
    log("lab down");
    Ok(0)
}

async fn teardown(sh: &Shared, state: &RuntimeState, holders: Vec<tokio::process::Child>) {
    let inodes: HashSet<u64> = state.devices.iter().map(|d| d.mnt_ns).collect();
    let net = state.net_ns;
    let marker = ns::lab_marker(&sh.spec.id);
    let n = tokio::task::spawn_blocking(move || {
        ns::kill_all(
            &inodes,
            net,
            &HashSet::new(),
            Duration::from_secs(20),
            &marker,
        )
    })
    .await
    .unwrap_or(0);
    for mut h in holders {
        let _ = h.kill().await;
    }
    let _ = tokio::task::spawn_blocking(|| ns::reap_all(Duration::from_secs(5))).await;
    log(format!("killed {n} device processes"));
}

async fn banner_on(mut s: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 8];
    s.read_exact(&mut buf).await?;
    if &buf[..4] == b"SSH-" {
        Ok(())
    } else {
        Err(io::Error::other("no SSH banner"))
    }
}

async fn banner(addr: SocketAddr) -> io::Result<()> {
    banner_on(TcpStream::connect(addr).await?).await
}

/// Check that `addr` answers with an SSH banner within `timeout`.
pub async fn probe(addr: SocketAddr, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, banner(addr)).await,
        Ok(Ok(()))
    )
}

async fn all_ready(sh: &Arc<Shared>, devs: &[Arc<Dev>]) -> Result<(), String> {
    if sh.spec.bastion {
        let b = SocketAddr::new(layout::bastion_addr(sh.spec.slot).into(), 22);
        if !probe(b, Duration::from_secs(10)).await {
            return Err(format!("the bastion ({b}) does not answer"));
        }
    }
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut set = tokio::task::JoinSet::new();
    for d in devs {
        let d = d.clone();
        let sem = sem.clone();
        let sh = sh.clone();
        set.spawn(async move {
            let _p = sem.acquire().await;
            let addr = SocketAddr::new(d.spec.addr.into(), d.spec.port);
            let mut last = String::new();
            for _ in 0..600 {
                let probe = async { banner_on(sh.connect(addr).await?).await };
                match tokio::time::timeout(Duration::from_secs(5), probe).await {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(e)) => last = e.to_string(),
                    Err(_) => last = "timed out".into(),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(format!("{} ({addr}) never answered: {last}", d.spec.name))
        });
    }
    while let Some(r) = set.join_next().await {
        if let Ok(Err(e)) = r {
            return Err(e);
        }
    }
    Ok(())
}

/// What is running for a device right now.
#[derive(Default)]
struct Running {
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

async fn start(dev: &Arc<Dev>, sh: &Arc<Shared>, want: &Desired) -> io::Result<Running> {
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
async fn delayed_copy(
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

async fn device_loop(dev: Arc<Dev>, sh: Arc<Shared>) {
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
async fn set_desired(dev: &Dev, f: impl FnOnce(&mut Desired)) -> Result<(), String> {
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

async fn apply_fault(
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

async fn control(
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
        Ok(Request::Fault { device, kind, ms }) => {
            let r = match (
                devs.iter().find(|d| d.spec.name == device),
                fault_from_name(&kind),
            ) {
                (None, _) => Err(format!("no device named {device:?} in this lab")),
                (_, None) => Err(format!("unknown fault kind {kind:?}")),
                (Some(d), Some(k)) => apply_fault(&sh, d, k, ms).await,
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

/// The `ps` hook's log writer: each process of a device seen for the first time (pid + args) is appended to
/// `devices/NAME/ps.log` as `<unix_ms> <pid> <args>`.
struct PsLog {
    seen: HashSet<(i32, String)>,
    index: std::collections::HashMap<u64, usize>,
    files: Vec<PathBuf>,
}

impl PsLog {
    fn record(&mut self, pid: i32, ino: u64) {
        let Some(&i) = self.index.get(&ino) else {
            return;
        };
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            return;
        };
        let args = String::from_utf8_lossy(&raw)
            .trim_end_matches('\0')
            .replace('\0', " ");
        if args.is_empty() || !self.seen.insert((pid, args.clone())) {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.files[i])
        {
            let _ = writeln!(f, "{now} {pid} {args}");
        }
    }
}

/// While enabled, record every device's processes: from kernel exec events as they happen (the proc connector,
/// so short-lived processes are caught) and from a periodic scan of /proc (which also catches processes that
/// were already running).
async fn ps_sampler(sh: Arc<Shared>, devs: Vec<(u64, PathBuf)>) {
    let mut rx = sh.ps.subscribe();
    let inodes: HashSet<u64> = devs.iter().map(|(ino, _)| *ino).collect();
    let pslog = Arc::new(Mutex::new(PsLog {
        seen: HashSet::new(),
        index: devs
            .iter()
            .enumerate()
            .map(|(i, (ino, _))| (*ino, i))
            .collect(),
        files: devs.into_iter().map(|(_, p)| p).collect(),
    }));
    let enabled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut events_started = false;
    loop {
        let every = *rx.borrow_and_update();
        enabled.store(every.is_some(), std::sync::atomic::Ordering::SeqCst);
        let Some(every) = every else {
            if rx.changed().await.is_err() {
                return;
            }
            continue;
        };
        if !events_started {
            events_started = true;
            match super::procmon::ExecEvents::subscribe() {
                Ok(ev) => {
                    let (pslog, enabled) = (pslog.clone(), enabled.clone());
                    let _ = std::thread::Builder::new()
                        .name("lab-exec-events".into())
                        .spawn(move || loop {
                            let Ok(pids) = ev.next_execs() else { continue };
                            if !enabled.load(std::sync::atomic::Ordering::SeqCst) {
                                continue;
                            }
                            for pid in pids {
                                if let Ok(ino) = ns::mnt_ns_of(pid) {
                                    if let Ok(mut l) = pslog.lock() {
                                        l.record(pid, ino);
                                    }
                                }
                            }
                        });
                }
                Err(e) => log(format!(
                    "ps hook: no exec events ({e}); sampling /proc only"
                )),
            }
        }
        let (inodes, l) = (inodes.clone(), pslog.clone());
        let _ = tokio::task::spawn_blocking(move || {
            for (pid, ino) in ns::pids_in(&inodes) {
                if let Ok(mut l) = l.lock() {
                    l.record(pid, ino);
                }
            }
        })
        .await;
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            r = rx.changed() => if r.is_err() { return },
        }
    }
}

/// Bastion mode: start the bastion sshd inside the devices' network namespace and a forwarder on the host that
/// is the only way in. Returns the sshd child and the forwarder task.
async fn start_bastion(
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
