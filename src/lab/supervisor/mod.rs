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
//! ENOSPC. `store-full` mounts a 1 MiB tmpfs over the bundle store /var/lib/edgefleet/blobs (files kept across
//! `none`). `apply-fails` / `check-error` create the simulator's fault files. `none` clears everything.
//!
//! Layout: this file starts and tears down the lab (`serve`); `control` is the control protocol, `device` the
//! devices' SSH endpoints (and the bastion), `faults` what each fault does, `ps` the process recorder, `shared`
//! what they all use.

mod control;
mod device;
mod faults;
mod ps;
mod shared;

use std::collections::{BTreeSet, HashSet};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::watch;

use crate::lab::embedded::{ConnRegistry, DeviceHost};
use crate::lab::error::LabError;
use crate::lab::layout::{self, DeviceRuntime, LabSpec, Paths, RuntimeState};
use crate::lab::ns::{self, NsPlan};
use control::control;
use device::{device_loop, start_bastion, Desired, Dev};
use ps::ps_sampler;
use shared::{banner_on, log, NetJoin, NetMode, Shared, Spawner};

pub use control::{request, DeviceReport, Reply, Request};
pub use device::SLOW_INNER_PORT;
pub use faults::{fault_name, FaultKind, DEFAULT_REBOOT_MS, DEFAULT_SLOW_MS, LOCKED_FAULT_RUN};
pub use shared::probe;

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
                        cut_off_when: Default::default(),
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
