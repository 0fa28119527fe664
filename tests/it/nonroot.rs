//! The README's first command run by an ordinary user, not root (issue 13): `edgefleet lab run --devices 5` gives
//! a full lab when the user has a subordinate id range, and names the one-line fix when not.
//!
//! Each test creates a throwaway user (`useradd` with a fresh HOME in a temp dir and no subordinate ids unless the
//! test adds them), runs a world-readable copy of the built binary as that user through `runuser`, from a working
//! directory of the user's own holding a copy of `playbooks/` and `roles/` (where `lab run` finds them), and
//! removes the user at the end, even on failure (a Drop guard that first takes the user's lab down).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use edgefleet::lab::userns::{free_range, NS_IDS};
use edgefleet::lab::{ns, FaultKind, Lab};

use crate::{support, tools};

/// One ordinary user's lab at a time: each user picks its lab's address slot in a lock directory of its own, so
/// two users' labs would both take 127.1.0.0/16 port 2222. (Root labs use port 22: no conflict with them.)
static ONE_LAB: Mutex<()> = Mutex::new(());
/// useradd, usermod and userdel lock /etc/passwd and fail rather than wait: one at a time in this process.
static USERDB: Mutex<()> = Mutex::new(());

fn lock(m: &'static Mutex<()>) -> std::sync::MutexGuard<'static, ()> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn run_ok(c: &mut Command) -> Output {
    let o = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        o.status.success(),
        "{c:?}: {}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A throwaway user, deleted on drop.
struct TestUser {
    name: String,
    uid: u32,
    /// The temp dir (root's, mode 0755): `home/`, `run/` (XDG_RUNTIME_DIR), `bin/edgefleet`, `work/`.
    base: PathBuf,
    _tmp: tempfile::TempDir,
}

impl TestUser {
    fn new(tag: &str) -> TestUser {
        for t in [
            "useradd",
            "usermod",
            "userdel",
            "runuser",
            "newuidmap",
            "newgidmap",
        ] {
            tools::require(t);
        }
        let tmp = tempfile::Builder::new()
            .prefix("edgefleet-nonroot-")
            .tempdir()
            .unwrap();
        let base = tmp.path().to_path_buf();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let name = format!("ef{tag}{}", std::process::id());
        {
            let _db = lock(&USERDB);
            // No subordinate ids (useradd gives new users a range by default): the tests add them themselves.
            run_ok(
                Command::new("useradd")
                    .args(["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0"])
                    .args(["--create-home", "--shell", "/bin/sh", "--home-dir"])
                    .arg(base.join("home"))
                    .arg(&name),
            );
        }
        let o = run_ok(Command::new("id").args(["-u", &name]));
        let uid: u32 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
        let user = TestUser {
            name,
            uid,
            base,
            _tmp: tmp,
        };
        std::fs::create_dir(user.base.join("bin")).unwrap();
        std::fs::copy(support::bin(), user.base.join("bin/edgefleet")).unwrap();
        let work = user.work();
        std::fs::create_dir(&work).unwrap();
        for d in ["playbooks", "roles"] {
            run_ok(
                Command::new("cp")
                    .arg("-R")
                    .arg(support::repo().join(d))
                    .arg(&work),
            );
        }
        std::fs::create_dir(user.base.join("run")).unwrap();
        std::fs::set_permissions(
            user.base.join("run"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        for d in [work, user.base.join("run")] {
            run_ok(Command::new("chown").arg("-R").arg(&user.name).arg(d));
        }
        user
    }

    /// Where the user runs edgefleet: holds `playbooks/`, `roles/` and then the default lab directory `lab/`.
    fn work(&self) -> PathBuf {
        self.base.join("work")
    }

    /// `argv` as the user, in `work/`, with a login-like environment.
    fn command(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", &self.name, "--", "env", "-i"])
            .arg(format!("HOME={}", self.base.join("home").display()))
            .arg(format!("USER={}", self.name))
            .arg(format!("LOGNAME={}", self.name))
            .arg("PATH=/usr/local/bin:/usr/bin:/bin")
            .arg(format!(
                "XDG_RUNTIME_DIR={}",
                self.base.join("run").display()
            ))
            .args(["NO_COLOR=1", "COLUMNS=120"])
            .args(argv)
            .current_dir(self.work())
            .stdin(Stdio::null());
        c
    }

    /// The copied edgefleet binary, as the user.
    fn edgefleet(&self, args: &[&str]) -> Output {
        let exe = self.base.join("bin/edgefleet");
        let mut argv = vec![exe.to_str().unwrap()];
        argv.extend_from_slice(args);
        self.command(&argv).output().unwrap()
    }

    /// Give the user a range of subordinate uids and gids that nobody else has.
    fn add_subordinate_ids(&self) -> u64 {
        let _db = lock(&USERDB);
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let start = free_range(&[&read("/etc/subuid"), &read("/etc/subgid")]);
        let range = format!("{start}-{}", start + u64::from(NS_IDS) - 1);
        run_ok(
            Command::new("usermod")
                .args(["--add-subuids", &range, "--add-subgids", &range])
                .arg(&self.name),
        );
        start
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // A lab left by a failed assertion: take it down (as the user), so no process of the user remains.
        if self.work().join("lab/lab.json").exists() {
            let _ = self.edgefleet(&["lab", "down"]);
        }
        let _db = lock(&USERDB);
        let _ = Command::new("userdel")
            .arg("--force")
            .arg(&self.name)
            .stdout(Stdio::null())
            .status();
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file under `dir` belongs to `uid`, and `uid` can delete the lot.
fn owned_and_removable_by(u: &TestUser, dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        assert_eq!(m.uid(), u.uid, "{} is not the user's", p.display());
        if m.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    let o = u
        .command(&["rm", "-rf", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(!dir.exists());
}

#[test]
fn the_readme_first_command_works_for_an_ordinary_user() {
    let _one = lock(&ONE_LAB);
    let u = TestUser::new("run");
    u.add_subordinate_ids();
    let o = u.edgefleet(&["lab", "run", "--devices", "5"]);
    let out = text(&o);
    assert!(o.status.success(), "{}\n{out}", o.status);
    for i in 1..=5 {
        let d = format!("edge-00{i}");
        let recap = out
            .lines()
            .find(|l| l.starts_with(&format!("{d} : ok=")))
            .unwrap_or_else(|| panic!("no recap line for {d}:\n{out}"));
        assert!(recap.contains(" unreachable=0 failed=0 "), "{recap}\n{out}");
        assert!(
            out.contains(&format!(
                "{d} | changed | edge_ca : Edge CA certificate and key"
            )),
            "{d}: edge_ca not changed:\n{out}"
        );
    }
    assert!(
        out.contains("devices: 5 total: 5 changed, 0 ok, 0 failed, 0 unreachable, 0 skipped"),
        "{out}"
    );
    assert!(
        out.contains("verify: 5 of 5 devices production-ready"),
        "{out}"
    );
    // The lab is down and its files are the user's again: `rm -rf lab` works.
    owned_and_removable_by(&u, &u.work().join("lab"));
}

#[test]
fn without_a_subordinate_range_lab_run_names_the_fix() {
    let u = TestUser::new("norange");
    let o = u.edgefleet(&["lab", "run", "--devices", "5"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        err.contains(&format!(
            "user {} has no range of 65536 subordinate ids in /etc/subuid and /etc/subgid",
            u.name
        )),
        "{err}"
    );
    // Refused before anything was created.
    assert!(!u.work().join("lab").exists());
    // The message names one command, and that command is the fix.
    let fix = err
        .split('`')
        .find(|s| s.starts_with("sudo usermod --add-subuids "))
        .unwrap_or_else(|| panic!("no usermod command in: {err}"));
    assert!(fix.ends_with(&format!(" {}", u.name)), "{fix}");
    assert!(fix.contains(" --add-subgids "), "{fix}");
    let argv: Vec<&str> = fix.split_whitespace().skip(1).collect();
    {
        let _db = lock(&USERDB);
        run_ok(Command::new(argv[0]).args(&argv[1..]));
    }
    let _one = lock(&ONE_LAB);
    let o = u.edgefleet(&["lab", "up", "--devices", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = u.edgefleet(&["lab", "down"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn an_ordinary_users_devices_own_files_as_their_users() {
    let _one = lock(&ONE_LAB);
    let u = TestUser::new("own");
    let sub = u.add_subordinate_ids();
    // Still refused, with the reason: sudo is setuid root, and the host's root is not in the lab.
    let o = u.edgefleet(&["lab", "up", "--devices", "1", "--user", "admin"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--user admin (sudo is setuid root"),
        "{}",
        text(&o)
    );
    // Another user's lab on slot 1 (this user's slot locks cannot see it): a listener on its first address.
    let other = std::net::TcpListener::bind("127.1.1.1:2222").unwrap();
    // The openssh backend works: sshd's privilege-separation user is mapped.
    let o = u.edgefleet(&["lab", "up", "--devices", "2", "--backend", "openssh"]);
    drop(other);
    assert!(o.status.success(), "{}", text(&o));
    let dir = u.work().join("lab");
    let lab = Lab::open(&dir).unwrap();
    assert!(lab.devices().iter().all(|d| d.port == 2222));
    assert!(
        lab.devices().iter().all(|d| d.address.octets()[1] == 2),
        "slot 1 was taken: {:?}",
        lab.devices()
    );
    let d = &lab.devices()[1];
    let script = "hostname; id -u; cat /proc/self/uid_map; \
                  install -d -o aziotcs -g aziotcs -m 0750 /var/aziot/t && stat -c %U:%G /var/aziot/t /etc/shadow; \
                  setpriv --reuid aziotks --regid aziotks --clear-groups id -un";
    let ssh = u
        .command(&[
            "ssh",
            "-F",
            dir.join("ssh_config").to_str().unwrap(),
            "-p",
            "2222",
            &d.address.to_string(),
            script,
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&ssh.stdout).into_owned();
    assert!(ssh.status.success(), "{}", text(&ssh));
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let want: Vec<Vec<String>> = vec![
        vec!["edge-002".into()],
        vec!["0".into()],
        vec!["0".into(), u.uid.to_string(), "1".into()],
        vec!["1".into(), sub.to_string(), "65536".into()],
        vec!["aziotcs:aziotcs".into()],
        vec!["root:shadow".into()],
        vec!["aziotks".into()],
    ];
    assert_eq!(lines, want, "{out}");
    // On the host, the device's aziotcs (uid 991) is the user's subordinate uid 991.
    let m = std::fs::metadata(d.root.join("var/aziot/t")).unwrap();
    assert_eq!(u64::from(m.uid()), sub + 990);
    assert_eq!(u64::from(m.gid()), sub + 990);
    // Entering a device from outside joins its user namespace first.
    let o = lab.run_on("edge-001", "hostname; id -u").unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "edge-001\n0\n");
    // Faults work too (disk-full mounts inside the user namespace).
    lab.fault("edge-001", FaultKind::DiskFull, None).unwrap();
    let o = lab.run_on("edge-001", "echo x > /etc/aziot/new").unwrap();
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("No space left on device"),
        "{o:?}"
    );
    let inodes = lab.namespace_inodes().into_iter().collect();
    let marker = lab.marker();
    let o = u.edgefleet(&["lab", "down"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(ns::lab_pids(&inodes, &marker).is_empty());
    owned_and_removable_by(&u, &dir);
}
