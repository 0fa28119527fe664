//! How a lab gets the privileges its devices need: root, or, for an ordinary user, a user namespace with a
//! full id mapping (raw libc; with `ns` and `embedded`, the only lab files with `unsafe`).
//!
//! Owns deciding how a lab runs ([`check_privileges`]: as root; else in a user namespace built from the user's
//! subordinate id range, which needs `/etc/subuid` + `/etc/subgid` entries and the setuid helpers `newuidmap` /
//! `newgidmap`; else a refusal that names the one-line fix), parsing the subordinate id files, and the mapped user
//! namespace itself ([`UserNs`]). Inside it the caller is root and ids 1..=65536 are the caller's subordinate ids,
//! so device files belong to `aziotks`, `aziotcs`, `sshd`, ... the way they do on a real device, and device
//! programs can `chown` and `setuid` to them.
//!
//! How the namespace is built (the standard way, as rootless container engines do it): a holder (`sleep
//! infinity`) unshares a user namespace in `pre_exec` and execs; once it runs, the setuid helpers write its maps
//! (`newuidmap PID 0 UID 1 1 SUBUID 65536`, the same for gids; they check the ranges against the files above).
//! Other processes join it with `setns` in their own `pre_exec` (the supervisor, provisioning's chowns, handing a
//! lab's files back when it is down); the holder is killed when the [`UserNs`] is dropped, and the namespace
//! lives on as long as a process is in it. It must not know about devices, SSH or lab files.
//!
//! `pre_exec` closures only make system calls on data prepared before `fork` (async-signal-safe).

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Ids a lab's user namespace maps above root: device users go up to 65534 (`nobody`).
pub const NS_IDS: u32 = 65536;
/// Where `useradd` starts allocating subordinate ids (Debian's and Fedora's SUB_UID_MIN): the lowest range this
/// file suggests.
const SUB_MIN: u64 = 100_000;

/// The ids of an unprivileged lab's user namespace: root is the caller, 1..=[`NS_IDS`] the subordinate ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    /// The caller's uid (root inside).
    pub uid: u32,
    /// The caller's gid (root's group inside).
    pub gid: u32,
    /// First subordinate uid (uid 1 inside).
    pub sub_uid: u32,
    /// First subordinate gid (gid 1 inside).
    pub sub_gid: u32,
}

/// How the lab gets its privileges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// Running as root.
    Root,
    /// Not root: the lab runs as root inside a user namespace with this mapping.
    UserNs(IdMap),
}

/// The first range of at least [`NS_IDS`] ids that `text` (the format of `/etc/subuid` and `/etc/subgid`:
/// `OWNER:START:COUNT` lines, OWNER a name or a uid) gives to the user `name` with uid `uid`.
pub fn subordinate_range(text: &str, name: &str, uid: u32) -> Option<u32> {
    text.lines().find_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let mut f = line.split(':');
        let (owner, start, count) = (f.next()?, f.next()?, f.next()?);
        if f.next().is_some() || !(owner == name || owner.parse::<u32>().ok() == Some(uid)) {
            return None;
        }
        let start: u32 = start.trim().parse().ok()?;
        let count: u64 = count.trim().parse().ok()?;
        let fits = u64::from(start) + u64::from(NS_IDS) <= u64::from(u32::MAX);
        (count >= u64::from(NS_IDS) && start > 0 && fits).then_some(start)
    })
}

/// The start of a block of [`NS_IDS`] ids above every range in `texts` (at least 100000): the range to suggest,
/// so that the suggested command gives no two users the same ids.
pub fn free_range(texts: &[&str]) -> u64 {
    texts
        .iter()
        .flat_map(|t| t.lines())
        .filter_map(|l| {
            let mut f = l.trim().split(':').skip(1);
            let start: u64 = f.next()?.trim().parse().ok()?;
            let count: u64 = f.next()?.trim().parse().ok()?;
            Some(start + count)
        })
        .fold(SUB_MIN, u64::max)
}

/// The login name of `uid`, through NSS (so LDAP and similar users count).
fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 16384];
    // SAFETY: an all-zero passwd is a valid value to be filled in.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r fills `pw` with pointers into `buf`, both alive for the reads below.
    let r = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pw,
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            &mut out,
        )
    };
    if r != 0 || out.is_null() || pw.pw_name.is_null() {
        return None;
    }
    // SAFETY: pw_name points to a NUL-terminated string in `buf`.
    let name = unsafe { CStr::from_ptr(pw.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// Where a helper program is: on PATH, or in the system directories a user's PATH may lack.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| super::ns::executable(p))
}

/// Can an unprivileged process create a user namespace and mount inside it here?
fn userns_works() -> bool {
    let mut c = Command::new("/bin/true");
    // SAFETY: async-signal-safe system calls only.
    unsafe {
        c.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) != 0
                || libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c.status().map(|s| s.success()).unwrap_or(false)
}

/// Why an ordinary user's lab cannot run, and the commands that fix it: `no_range` says which of the uid and gid
/// ranges `who` lacks, `no_helpers` that newuidmap/newgidmap are missing, `start` where a free range begins.
pub fn refusal(who: &str, no_range: (bool, bool), no_helpers: bool, start: u64) -> String {
    let mut missing = Vec::new();
    let mut fixes = Vec::new();
    let end = start + u64::from(NS_IDS) - 1;
    let (files, opts) = match no_range {
        (true, true) => (
            "/etc/subuid and /etc/subgid",
            format!("--add-subuids {start}-{end} --add-subgids {start}-{end}"),
        ),
        (true, false) => ("/etc/subuid", format!("--add-subuids {start}-{end}")),
        (false, true) => ("/etc/subgid", format!("--add-subgids {start}-{end}")),
        (false, false) => ("", String::new()),
    };
    if !files.is_empty() {
        missing.push(format!(
            "user {who} has no range of {NS_IDS} subordinate ids in {files}"
        ));
        fixes.push(format!("`sudo usermod {opts} {who}`"));
    }
    if no_helpers {
        missing.push("newuidmap and newgidmap (which map those ids) are not installed".to_string());
        fixes.insert(0, "`sudo apt-get install uidmap`".to_string());
    }
    format!(
        "not running as root, so the lab runs in a user namespace, where its devices need {NS_IDS} user and group \
         ids of their own (device files belong to aziotks, aziotcs, iotedge, sshd, ... as on a real device); but \
         {}. Fix it once with {}, then run the lab again (or run it as root)",
        missing.join(", and "),
        fixes.join(" and "),
    )
}

/// Can this process run a lab, and how? `Err` says exactly what is missing and the command that fixes it.
pub fn check_privileges() -> Result<Privilege, String> {
    // SAFETY: these getters have no preconditions.
    let (euid, uid, gid) = unsafe { (libc::geteuid(), libc::getuid(), libc::getgid()) };
    if euid == 0 {
        return Ok(Privilege::Root);
    }
    let name = user_name(uid);
    let who = name.clone().unwrap_or_else(|| uid.to_string());
    let subuid = fs::read_to_string("/etc/subuid").unwrap_or_default();
    let subgid = fs::read_to_string("/etc/subgid").unwrap_or_default();
    let sub_uid = subordinate_range(&subuid, &who, uid);
    let sub_gid = subordinate_range(&subgid, &who, uid);
    let helpers = find_program("newuidmap").is_some() && find_program("newgidmap").is_some();
    if sub_uid.is_none() || sub_gid.is_none() || !helpers {
        let start = free_range(&[&subuid, &subgid]);
        return Err(refusal(
            &who,
            (sub_uid.is_none(), sub_gid.is_none()),
            !helpers,
            start,
        ));
    }
    if !userns_works() {
        let max = fs::read_to_string("/proc/sys/user/max_user_namespaces")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let mut msg = format!(
            "edgefleet lab needs root or unprivileged user namespaces, and has neither (euid {euid}): every \
             device needs its own mount and UTS namespace. Run it as root (`sudo edgefleet lab ...`)"
        );
        if max == 0 {
            msg.push_str(
                ", or enable user namespaces (`sudo sysctl user.max_user_namespaces=15000`)",
            );
        } else {
            msg.push_str(
                ", or allow unprivileged user namespaces (user.max_user_namespaces is set, but creating one and \
                 mounting in it failed here: check kernel.unprivileged_userns_clone, or \
                 kernel.apparmor_restrict_unprivileged_userns on Ubuntu)",
            );
        }
        msg.push('.');
        return Err(msg);
    }
    Ok(Privilege::UserNs(IdMap {
        uid,
        gid,
        sub_uid: sub_uid.unwrap_or_default(),
        sub_gid: sub_gid.unwrap_or_default(),
    }))
}

/// A user namespace with an [`IdMap`], held by a `sleep` process until dropped.
#[derive(Debug)]
pub struct UserNs {
    holder: Child,
    ns: File,
}

/// Run `newuidmap` or `newgidmap` for `pid`: 0 is `own`, 1..=NS_IDS start at `sub`.
fn write_map(helper: &str, pid: u32, own: u32, sub: u32) -> io::Result<()> {
    let prog = find_program(helper).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{helper} is not installed (`sudo apt-get install uidmap`)"),
        )
    })?;
    let args = [pid, 0, own, 1, 1, sub, NS_IDS].map(|n| n.to_string());
    let o = Command::new(&prog)
        .args(&args)
        .stdin(Stdio::null())
        .output()?;
    if o.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "`{} {}` failed ({}): {}",
        prog.display(),
        args.join(" "),
        o.status,
        String::from_utf8_lossy(&o.stderr).trim()
    )))
}

impl UserNs {
    /// Create the namespace and map `map` into it.
    pub fn create(map: &IdMap) -> io::Result<UserNs> {
        let mut c = Command::new("sleep");
        c.arg("infinity")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: async-signal-safe system calls only.
        unsafe {
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // spawn() returns once the holder has exec'ed, so it has unshared: its maps can be written now.
        let mut holder = c.spawn()?;
        let pid = holder.id();
        let r = write_map("newuidmap", pid, map.uid, map.sub_uid)
            .and_then(|()| write_map("newgidmap", pid, map.gid, map.sub_gid))
            .and_then(|()| File::open(format!("/proc/{pid}/ns/user")));
        match r {
            Ok(ns) => Ok(UserNs { holder, ns }),
            Err(e) => {
                let _ = holder.kill();
                let _ = holder.wait();
                Err(e)
            }
        }
    }

    /// Make `cmd` start inside the namespace, as its root (with every capability there).
    pub fn enter(&self, cmd: &mut Command) -> io::Result<()> {
        // SAFETY: F_DUPFD_CLOEXEC on a valid fd returns a new fd we own.
        let n = unsafe { libc::fcntl(self.ns.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: n is a fresh fd.
        let fd = unsafe { OwnedFd::from_raw_fd(n) };
        // SAFETY: setns is async-signal-safe; the fd is owned by the closure.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd.as_raw_fd(), libc::CLONE_NEWUSER) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(())
    }

    /// Run `cmd` inside the namespace as its root; its output is captured.
    pub fn output(&self, mut cmd: Command) -> io::Result<Output> {
        self.enter(&mut cmd)?;
        cmd.stdin(Stdio::null()).output()
    }

    /// Give each path (not following symlinks) the owner and group it is listed with, as ids inside the
    /// namespace.
    pub fn chown(&self, items: &[(PathBuf, u32, u32)]) -> io::Result<()> {
        let mut by_owner: BTreeMap<(u32, u32), Vec<&Path>> = BTreeMap::new();
        for (p, u, g) in items {
            by_owner.entry((*u, *g)).or_default().push(p);
        }
        for ((u, g), paths) in by_owner {
            // Bounded argument lists (ARG_MAX).
            for chunk in paths.chunks(1000) {
                let mut c = Command::new("chown");
                c.arg("--no-dereference").arg(format!("{u}:{g}")).arg("--");
                c.args(chunk);
                check(self.output(c)?, "chown")?;
            }
        }
        Ok(())
    }

    /// Give everything under `dir` (not following symlinks) to the namespace's root, i.e. to the caller.
    pub fn chown_tree_to_root(&self, dir: &Path) -> io::Result<()> {
        let mut c = Command::new("chown");
        c.args(["--recursive", "--no-dereference", "0:0", "--"])
            .arg(dir);
        check(self.output(c)?, "chown --recursive")
    }
}

fn check(o: Output, what: &str) -> io::Result<()> {
    if o.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{what} in the lab's user namespace failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr).trim()
    )))
}

impl Drop for UserNs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_are_found_by_name_or_uid_and_must_be_big_enough() {
        let t =
            "# comment\nalice:100000:65536\nbob:165536:1000\n1002:300000:70000\nbob:400000:65536\n";
        assert_eq!(subordinate_range(t, "alice", 1000), Some(100000));
        // bob's first range is too small; the second one fits.
        assert_eq!(subordinate_range(t, "bob", 1001), Some(400000));
        assert_eq!(subordinate_range(t, "carol", 1002), Some(300000));
        assert_eq!(subordinate_range(t, "dave", 1003), None);
        assert_eq!(subordinate_range("", "alice", 1000), None);
        assert_eq!(
            subordinate_range("alice:x:65536\nalice:5", "alice", 1000),
            None
        );
        // A range that would run past the last uid does not count.
        assert_eq!(
            subordinate_range("alice:4294967000:65536", "alice", 1),
            None
        );
    }

    #[test]
    fn the_refusal_names_exactly_the_missing_pieces_and_their_fix() {
        let both = refusal("alice", (true, true), false, 100000);
        assert!(both.contains(
            "user alice has no range of 65536 subordinate ids in /etc/subuid and /etc/subgid. "
        ));
        assert!(both.contains(
            "Fix it once with `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice`, then"
        ));
        assert!(!both.contains("uidmap"));
        let gid = refusal("bob", (false, true), false, 231072);
        assert!(gid.contains("in /etc/subgid. "), "{gid}");
        assert!(
            gid.contains("`sudo usermod --add-subgids 231072-296607 bob`"),
            "{gid}"
        );
        let tools = refusal("carol", (false, false), true, 100000);
        assert!(
            tools.contains(
                "but newuidmap and newgidmap (which map those ids) are not installed. Fix it once \
                                with `sudo apt-get install uidmap`, then"
            ),
            "{tools}"
        );
        let all = refusal("dave", (true, true), true, 100000);
        assert!(
            all.contains(
                "Fix it once with `sudo apt-get install uidmap` and `sudo usermod --add-subuids"
            ),
            "{all}"
        );
    }

    #[test]
    fn the_suggested_range_is_above_every_existing_one() {
        assert_eq!(free_range(&["", ""]), 100_000);
        assert_eq!(
            free_range(&["a:100000:65536\nb:165536:65536\n", "a:100000:65536\n"]),
            231_072
        );
        assert_eq!(free_range(&["a:1000:10\n", "garbage\n"]), 100_000);
    }
}
