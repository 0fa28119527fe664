//! Linux namespace plumbing for lab devices (raw libc; every `unsafe` block of the lab is here, in `userns` or in
//! `embedded`).
//!
//! Owns: the per-device mount plan, the namespace *holder* (a `sleep infinity` started in a fresh mount + UTS
//! namespace after the plan was applied in `pre_exec`), commands that run *inside* a device (`pre_exec` joins the
//! holder's namespaces with `setns`, then drops to the login user), and finding / killing every process of a
//! device by its mount-namespace inode. It must not know about SSH or faults.
//!
//! The device's view (all done inside the new mount namespace, after making `/` recursively private so nothing
//! propagates to the host): a small tmpfs on `devices/NAME/ns` holds an overlay upper layer for `/etc`, so `/etc`
//! keeps the host's files (libraries, PAM, sudoers) while mount points such as `/etc/aziot` can exist without
//! touching the host; then the device root's paths are bind-mounted on their absolute paths (`/etc/aziot`,
//! `/etc/docker`, `/etc/passwd`, `/etc/group`, `/etc/shadow`, `/etc/hostname`, `/etc/hosts`, `/etc/sudoers.d`,
//! `/var`, `/root`, `/home`, `/srv`), the lab's `bin/` on `/usr/local/bin`, fresh tmpfs on `/tmp` and `/run` (with
//! `/run/sshd` for sshd's privilege separation), and the UTS hostname is the device name.
//!
//! `pre_exec` closures only make system calls on data prepared before `fork` (async-signal-safe).

use std::collections::HashSet;
use std::ffi::{CString, OsStr};
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::layout::Paths;

/// One mount operation of a device's plan.
#[derive(Debug)]
struct MountOp {
    /// Instead of mounting: open `target` (O_PATH) as this fd number, for a later bind from /proc/self/fd/N.
    open_as: Option<libc::c_int>,
    /// Create the target directory first (inside the namespace, e.g. in the /etc overlay).
    mkdir: Option<libc::mode_t>,
    src: Option<CString>,
    target: CString,
    fstype: Option<CString>,
    flags: libc::c_ulong,
    data: Option<CString>,
}

/// Everything the holder's `pre_exec` does, prepared before fork.
#[derive(Debug)]
pub struct NsPlan {
    hostname: CString,
    ops: Vec<MountOp>,
    /// Join this network namespace first (bastion mode).
    net: Option<File>,
}

fn cstr(p: impl AsRef<OsStr>) -> io::Result<CString> {
    CString::new(p.as_ref().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

impl NsPlan {
    /// The plan for device `name` of the lab in `paths`.
    ///
    /// `expose`: host directories the device must still see at their own path although they live under `/tmp`
    /// or `/run`, which the device gets fresh (the lab directory itself, the edgefleet binary's directory).
    pub fn for_device(
        paths: &Paths,
        name: &str,
        expose: &[&Path],
        marker: &str,
    ) -> io::Result<NsPlan> {
        let root = paths.device_root(name);
        let ns = paths.device_ns(name);
        let nss = ns.to_string_lossy();
        if nss.contains(',') || nss.contains(':') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the lab directory path must not contain ',' or ':' (overlayfs options): {nss}"
                ),
            ));
        }
        let mut ops = Vec::new();
        let mut op = |mkdir: Option<libc::mode_t>,
                      src: Option<&OsStr>,
                      target: &str,
                      fstype: Option<&str>,
                      flags: libc::c_ulong,
                      data: Option<String>|
         -> io::Result<()> {
            ops.push(MountOp {
                open_as: None,
                mkdir,
                src: src.map(cstr).transpose()?,
                target: cstr(target)?,
                fstype: fstype.map(cstr).transpose()?,
                flags,
                data: data.map(cstr).transpose()?,
            });
            Ok(())
        };
        let bind = libc::MS_BIND | libc::MS_REC;
        // 1. nothing we do propagates to the host.
        op(None, None, "/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
        // 2. scratch tmpfs for the /etc overlay's upper and work dirs.
        op(
            None,
            Some(OsStr::new(marker)),
            &nss,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some("size=8m,mode=0700".into()),
        )?;
        // The two directories are created by MountOp.mkdir on these pseudo-ops (no mount: fstype None, src None,
        // flags 0 means "mkdir only").
        op(Some(0o755), None, &format!("{nss}/etc-up"), None, 0, None)?;
        op(Some(0o700), None, &format!("{nss}/etc-work"), None, 0, None)?;
        op(
            None,
            Some(OsStr::new("overlay")),
            "/etc",
            Some("overlay"),
            0,
            Some(format!(
                "lowerdir=/etc,upperdir={nss}/etc-up,workdir={nss}/etc-work"
            )),
        )?;
        for d in ["/etc/aziot", "/etc/docker", "/etc/sudoers.d"] {
            op(
                Some(0o755),
                Some(root.join(&d[1..]).as_os_str()),
                d,
                None,
                bind,
                None,
            )?;
        }
        for f in ["passwd", "group", "shadow", "hostname", "hosts"] {
            let src = root.join("etc").join(f);
            op(
                None,
                Some(src.as_os_str()),
                &format!("/etc/{f}"),
                None,
                bind,
                None,
            )?;
        }
        // /srv too: the shipped roles keep edgeAgent's storage there (a host directory on a real device).
        for d in ["/var", "/root", "/home", "/srv"] {
            op(
                Some(0o755),
                Some(root.join(&d[1..]).as_os_str()),
                d,
                None,
                bind,
                None,
            )?;
        }
        op(
            None,
            Some(paths.bin().as_os_str()),
            "/usr/local/bin",
            None,
            bind,
            None,
        )?;
        op(
            None,
            Some(OsStr::new("tmpfs")),
            "/tmp",
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some("size=256m,mode=1777".into()),
        )?;
        op(
            None,
            Some(OsStr::new("tmpfs")),
            "/run",
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some("size=64m,mode=0755".into()),
        )?;
        op(Some(0o755), None, "/run/sshd", None, 0, None)?;
        op(Some(0o1777), None, "/run/lock", None, 0, None)?;
        // Re-expose host directories hidden by the fresh /tmp and /run: bind them back from an O_PATH handle
        // opened inside the new namespace before /tmp and /run were replaced (CLOEXEC: the holder never sees it).
        let mut exposed: Vec<&Path> = Vec::new();
        let mut late = Vec::new();
        for &dir in expose {
            let hidden = dir.starts_with("/tmp") || dir.starts_with("/run");
            if !hidden || exposed.iter().any(|e| dir.starts_with(e)) {
                continue;
            }
            // A number no inherited fd uses: just below the fd limit.
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit fills a local struct.
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
            let top = (lim.rlim_cur.min(1 << 20) as libc::c_int).max(64);
            let fdno = top - 1 - exposed.len() as libc::c_int;
            exposed.push(dir);
            ops.insert(
                0,
                MountOp {
                    open_as: Some(fdno),
                    mkdir: None,
                    src: None,
                    target: cstr(dir)?,
                    fstype: None,
                    flags: 0,
                    data: None,
                },
            );
            let src = format!("/proc/self/fd/{fdno}");
            late.push((dir, src));
        }
        let mut op = |mkdir: Option<libc::mode_t>,
                      src: Option<&OsStr>,
                      target: &str,
                      flags: libc::c_ulong|
         -> io::Result<()> {
            ops.push(MountOp {
                open_as: None,
                mkdir,
                src: src.map(cstr).transpose()?,
                target: cstr(target)?,
                fstype: None,
                flags,
                data: None,
            });
            Ok(())
        };
        for (dir, src) in late {
            let mut acc = std::path::PathBuf::from("/");
            for c in dir.components().skip(1) {
                acc.push(c);
                if acc == Path::new("/tmp") || acc == Path::new("/run") {
                    continue;
                }
                op(Some(0o755), None, &acc.to_string_lossy(), 0)?;
            }
            op(None, Some(OsStr::new(&src)), &dir.to_string_lossy(), bind)?;
        }
        Ok(NsPlan {
            hostname: cstr(name)?,
            ops,
            net: None,
        })
    }

    /// Make the device join the network namespace `net` (an open `/proc/PID/ns/net`).
    pub fn join_net(&mut self, net: File) {
        self.net = Some(net);
    }

    /// Describe step `i` of the plan (for error messages; `usize::MAX` is the final sethostname).
    pub fn describe(&self, i: usize) -> String {
        if i == 0 {
            return "setns(net) / unshare(CLONE_NEWNS|CLONE_NEWUTS)".into();
        }
        match self.ops.get(i - 1) {
            Some(op) if op.open_as.is_some() => format!("open {:?}", op.target),
            Some(op) if op.src.is_none() && op.fstype.is_none() && op.mkdir.is_some() => {
                format!("mkdir {:?}", op.target)
            }
            Some(op) => format!(
                "mount {:?} on {:?} (type {:?}, options {:?})",
                op.src, op.target, op.fstype, op.data
            ),
            None => format!("sethostname {:?}", self.hostname),
        }
    }

    /// Apply the plan in the current (forked, single-threaded) process. Async-signal-safe.
    /// On failure, the failing step's number is written to `report` (see [`NsPlan::describe`]).
    fn apply(&self, report: RawFd) -> io::Result<()> {
        let r = self.apply_steps();
        if let Err((i, _)) = &r {
            let b = (*i as u32).to_ne_bytes();
            // SAFETY: write(2) of a local buffer to a pipe we own.
            unsafe { libc::write(report, b.as_ptr() as *const libc::c_void, b.len()) };
        }
        r.map_err(|(_, e)| e)
    }

    fn apply_steps(&self) -> Result<(), (usize, io::Error)> {
        let fail = |i: usize| Err((i, io::Error::last_os_error()));
        // SAFETY: plain system calls on NUL-terminated strings owned by self.
        unsafe {
            if let Some(net) = &self.net {
                if libc::setns(net.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return fail(0);
                }
            }
            if libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWUTS) != 0 {
                return fail(0);
            }
            for (i, op) in self.ops.iter().enumerate() {
                let i = i + 1;
                if let Some(fdno) = op.open_as {
                    let fd = libc::open(
                        op.target.as_ptr(),
                        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                    );
                    if fd < 0 {
                        return fail(i);
                    }
                    if fd != fdno {
                        if libc::dup3(fd, fdno, libc::O_CLOEXEC) < 0 {
                            return fail(i);
                        }
                        libc::close(fd);
                    }
                    continue;
                }
                if let Some(mode) = op.mkdir {
                    if libc::mkdir(op.target.as_ptr(), mode) != 0 {
                        let e = io::Error::last_os_error();
                        if e.raw_os_error() != Some(libc::EEXIST) {
                            return Err((i, e));
                        }
                    }
                    // mkdir's mode is masked by the umask; sticky and group bits must be exact.
                    libc::chmod(op.target.as_ptr(), mode);
                    if op.src.is_none() && op.fstype.is_none() {
                        continue;
                    }
                }
                let r = libc::mount(
                    op.src.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                    op.target.as_ptr(),
                    op.fstype.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                    op.flags,
                    op.data
                        .as_ref()
                        .map_or(std::ptr::null(), |s| s.as_ptr() as *const libc::c_void),
                );
                if r != 0 {
                    return fail(i);
                }
            }
            let h = self.hostname.as_bytes();
            if libc::sethostname(h.as_ptr() as *const libc::c_char, h.len()) != 0 {
                return fail(self.ops.len() + 1);
            }
        }
        Ok(())
    }
}

/// A command for the namespace holder of a device: `sleep infinity` in a fresh mount + UTS namespace with the
/// plan applied. It dies with the thread that spawns it (PR_SET_PDEATHSIG), so spawn it from a thread that lives
/// as long as the supervisor.
///
/// Returns the command and the read end of a pipe that receives the failing step's number if the plan fails.
pub fn holder_command(plan: NsPlan) -> io::Result<(Command, File)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fds from pipe2.
    let (rd, wr) = unsafe {
        use std::os::fd::FromRawFd;
        (
            File::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    let mut c = Command::new("sleep");
    c.arg("infinity")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    // SAFETY: the closure only makes async-signal-safe system calls on pre-built data.
    unsafe {
        c.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            libc::setsid();
            plan.apply(wr.as_raw_fd())
        });
    }
    Ok((c, rd))
}

/// After a failed holder spawn: which step of `plan` failed (read from the holder's report pipe).
pub fn failed_step(report: &mut File) -> Option<usize> {
    use std::io::Read;
    let mut b = [0u8; 4];
    report.read_exact(&mut b).ok()?;
    Some(u32::from_ne_bytes(b) as usize)
}

/// The holder of a fresh network namespace with only `lo`, up (bastion mode): `sleep infinity` after
/// unshare(CLONE_NEWNET). Dies with the spawning thread, like the device holders.
pub fn net_holder_command() -> Command {
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    let mut c = Command::new("sleep");
    c.arg("infinity")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    // SAFETY: async-signal-safe system calls on stack data only.
    unsafe {
        c.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            libc::setsid();
            if libc::unshare(libc::CLONE_NEWNET) != 0 {
                return Err(io::Error::last_os_error());
            }
            let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if s < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut req = IfReq {
                name: [0; 16],
                flags: 0,
                _pad: [0; 22],
            };
            req.name[..2].copy_from_slice(b"lo");
            if libc::ioctl(s, libc::SIOCGIFFLAGS, &mut req) != 0 {
                return Err(io::Error::last_os_error());
            }
            req.flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(s, libc::SIOCSIFFLAGS, &req) != 0 {
                return Err(io::Error::last_os_error());
            }
            libc::close(s);
            Ok(())
        });
    }
    c
}

/// Make `cmd` run in the network namespace `net` only (mount namespace and user unchanged; bastion mode, which
/// needs root).
pub fn enter_net(cmd: &mut Command, net: &File) -> io::Result<()> {
    let net = dup_cloexec(net.as_raw_fd())?;
    // SAFETY: setns and prctl are async-signal-safe; the fd is owned by the closure.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(net.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// Move the calling thread into the network namespace `net` (for a thread that creates sockets there).
pub fn join_net_thread(net: &File) -> io::Result<()> {
    // SAFETY: setns on a valid fd; affects only the calling thread.
    if unsafe { libc::setns(net.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Open handles on a device's namespaces (taken from its holder).
#[derive(Debug)]
pub struct NsFds {
    mnt: File,
    uts: File,
    /// Only when it differs from the caller's (bastion mode).
    net: Option<File>,
    /// Only when it differs from the caller's (a lab run in an unprivileged user namespace, entered from outside).
    user: Option<File>,
}

fn ns_differs(f: &File, kind: &str) -> io::Result<bool> {
    Ok(f.metadata()?.ino() != fs::metadata(format!("/proc/self/ns/{kind}"))?.ino())
}

impl NsFds {
    /// Open the namespaces of `holder_pid`, checking that its mount namespace is still `mnt_ns` (pid reuse).
    pub fn open(holder_pid: i32, mnt_ns: u64) -> io::Result<NsFds> {
        let mnt = File::open(format!("/proc/{holder_pid}/ns/mnt"))?;
        let uts = File::open(format!("/proc/{holder_pid}/ns/uts"))?;
        let net = File::open(format!("/proc/{holder_pid}/ns/net"))?;
        let user = File::open(format!("/proc/{holder_pid}/ns/user"))?;
        if mnt.metadata()?.ino() != mnt_ns {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the device's namespace holder is gone (is the lab supervisor running?)",
            ));
        }
        let net = if ns_differs(&net, "net")? {
            Some(net)
        } else {
            None
        };
        let user = if ns_differs(&user, "user")? {
            Some(user)
        } else {
            None
        };
        Ok(NsFds {
            mnt,
            uts,
            net,
            user,
        })
    }
}

/// Credentials and home of the user a device command runs as.
#[derive(Debug, Clone)]
pub struct Creds {
    /// Uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Home directory (inside the device); the command starts there.
    pub home: CString,
}

/// Make `cmd` run inside the device whose namespaces `fds` holds, as `creds`, in a new session.
/// The fds are dup'ed into the closure, so `fds` may be dropped after this call.
pub fn enter(cmd: &mut Command, fds: &NsFds, creds: Creds) -> io::Result<()> {
    let mnt = dup_cloexec(fds.mnt.as_raw_fd())?;
    let uts = dup_cloexec(fds.uts.as_raw_fd())?;
    let net = fds
        .net
        .as_ref()
        .map(|f| dup_cloexec(f.as_raw_fd()))
        .transpose()?;
    let user = fds
        .user
        .as_ref()
        .map(|f| dup_cloexec(f.as_raw_fd()))
        .transpose()?;
    let groups: Vec<libc::gid_t> = creds.groups.clone();
    // SAFETY: async-signal-safe system calls only; fds stay valid (owned by the closure, CLOEXEC).
    unsafe {
        cmd.pre_exec(move || {
            // The user namespace first: it grants the capabilities needed to join the others.
            if let Some(u) = &user {
                if libc::setns(u.as_raw_fd(), libc::CLONE_NEWUSER) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(n) = &net {
                if libc::setns(n.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::setns(mnt.as_raw_fd(), libc::CLONE_NEWNS) != 0
                || libc::setns(uts.as_raw_fd(), libc::CLONE_NEWUTS) != 0
            {
                return Err(io::Error::last_os_error());
            }
            libc::setsid();
            libc::umask(0o022);
            // setgroups is denied in a user namespace whose maps were written without the setuid helpers
            // (/proc/PID/setgroups is "deny"); root needs none there.
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                && !(creds.uid == 0 && *libc::__errno_location() == libc::EPERM)
            {
                return Err(io::Error::last_os_error());
            }
            if libc::setgid(creds.gid) != 0 || libc::setuid(creds.uid) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::chdir(creds.home.as_ptr()) != 0 {
                libc::chdir(c"/".as_ptr());
            }
            Ok(())
        });
    }
    Ok(())
}

fn dup_cloexec(fd: RawFd) -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a valid fd returns a new fd we own.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: n is a fresh fd.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(n) })
}

/// Run a shell command as root inside a device, directly (no SSH): `/bin/sh -c CMD` with root's login
/// environment, cwd /root, stdin from /dev/null; output captured.
pub fn run_as_root(holder_pid: i32, mnt_ns: u64, script: &str) -> io::Result<std::process::Output> {
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(script)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .env("USER", "root")
        .env("LOGNAME", "root")
        .env("SHELL", "/bin/sh")
        .stdin(std::process::Stdio::null());
    let fds = NsFds::open(holder_pid, mnt_ns)?;
    enter(
        &mut c,
        &fds,
        Creds {
            uid: 0,
            gid: 0,
            groups: vec![0],
            home: c"/root".into(),
        },
    )?;
    c.output()
}

/// Mount-namespace inode of a process.
pub fn mnt_ns_of(pid: i32) -> io::Result<u64> {
    Ok(fs::metadata(format!("/proc/{pid}/ns/mnt"))?.ino())
}

/// Network-namespace inode of a process.
pub fn net_ns_of(pid: i32) -> io::Result<u64> {
    Ok(fs::metadata(format!("/proc/{pid}/ns/net"))?.ino())
}

/// Every live process whose mount namespace is one of `inodes` (pid, mount inode), plus, when `net` is given,
/// every process in that network namespace.
pub fn pids_in_any(inodes: &HashSet<u64>, net: Option<u64>) -> Vec<(i32, u64)> {
    let mut out = pids_in(inodes);
    if let Some(net) = net {
        let have: HashSet<i32> = out.iter().map(|(p, _)| *p).collect();
        if let Ok(rd) = fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                    continue;
                };
                if !have.contains(&pid) && net_ns_of(pid).ok() == Some(net) {
                    out.push((pid, 0));
                }
            }
        }
    }
    out
}

/// Every live process whose mount namespace is one of `inodes`: (pid, inode).
pub fn pids_in(inodes: &HashSet<u64>) -> Vec<(i32, u64)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(ino) = mnt_ns_of(pid) {
            if inodes.contains(&ino) {
                out.push((pid, ino));
            }
        }
    }
    out
}

/// The tmpfs source name that marks a lab's device mount namespaces (`edgefleet-lab.<lab id>`): a process
/// belongs to the lab only if its mount table shows it. Namespace inodes alone are not enough: once a namespace
/// is freed, its inode number can be reused by somebody else's new namespace.
pub fn lab_marker(lab_id: &str) -> String {
    format!("edgefleet-lab.{lab_id}")
}

/// Does process `pid`'s mount table contain `marker` (see [`lab_marker`])?
pub fn has_marker(pid: i32, marker: &str) -> bool {
    let needle = format!(" {marker} ");
    fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .map(|m| m.contains(&needle))
        .unwrap_or(false)
}

/// Every live process of the lab marked `marker` whose mount namespace is one of `inodes`.
pub fn lab_pids(inodes: &HashSet<u64>, marker: &str) -> Vec<i32> {
    pids_in(inodes)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| has_marker(*p, marker))
        .collect()
}

/// SIGKILL every process of the lab (`marker`) in the mount namespaces `inodes` except `keep`, until none is
/// left or `timeout` passes, then reap those that were (or became, through PR_SET_CHILD_SUBREAPER) our
/// children. With `net` (only while the lab's network namespace is certainly alive, i.e. from its supervisor),
/// the first pass also kills every process in that network namespace. Returns how many were signalled.
pub fn kill_all(
    inodes: &HashSet<u64>,
    net: Option<u64>,
    keep: &HashSet<i32>,
    timeout: Duration,
    marker: &str,
) -> usize {
    let killed = kill_all_in_inner(inodes, net, keep, timeout, marker);
    for &p in &killed {
        let mut st = 0;
        // SAFETY: waitpid on a specific pid; fails harmlessly with ECHILD if it is not our child.
        unsafe { libc::waitpid(p, &mut st, libc::WNOHANG) };
    }
    killed.len()
}

/// Reap every exited child (after a teardown): waits up to `timeout` while children remain.
pub fn reap_all(timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let mut st = 0;
        // SAFETY: waitpid(-1, WNOHANG) has no memory-safety preconditions.
        let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if r > 0 {
            continue;
        }
        if r < 0 || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn kill_all_in_inner(
    inodes: &HashSet<u64>,
    net: Option<u64>,
    keep: &HashSet<i32>,
    timeout: Duration,
    marker: &str,
) -> HashSet<i32> {
    let deadline = Instant::now() + timeout;
    let mut killed = HashSet::new();
    let mut first = true;
    loop {
        let mut pids = lab_pids(inodes, marker);
        if first {
            if let Some(net) = net {
                let have: HashSet<i32> = pids.iter().copied().collect();
                pids.extend(
                    pids_in_any(&HashSet::new(), Some(net))
                        .into_iter()
                        .map(|(p, _)| p)
                        .filter(|p| !have.contains(p)),
                );
            }
            first = false;
        }
        let pids: Vec<i32> = pids
            .into_iter()
            .filter(|p| !keep.contains(p) && *p != std::process::id() as i32)
            .collect();
        if pids.is_empty() || Instant::now() > deadline {
            return killed;
        }
        for p in pids {
            // SAFETY: kill(2) with a pid we found in /proc.
            unsafe { libc::kill(p, libc::SIGKILL) };
            killed.insert(p);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Does `path` exist and is it executable?
pub fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
