//! The SSH transport against real OpenSSH `sshd` instances on 127.0.0.0/8.
//!
//! Each sshd runs in a private mount namespace (`unshare -m`) in which copies of /etc/passwd, /etc/shadow,
//! /etc/group and /etc/sudoers that add three test users are bind-mounted, so the host's files are never
//! modified. Every sshd (and each of its per-connection children) is killed by PID when its guard drops.
//! Test users: `efuser` (plain /bin/sh, passwordless sudo), `efnoisy` (a login shell that prints a banner on
//! stdout and stderr before running anything, not in sudoers), `efpw` (sudo with a password).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use edgefleet::transport::ssh::{HostKeyPolicy, SshConnector, SshOptions};
use edgefleet::transport::{Become, Cmd, ConnSpec, Exec, ExitStatus, Transport, TransportError};

const SUDO_PW: &str = "sudo-pw-4711-canary";
const KEY_PASSPHRASE: &str = "key-passphrase-0815";

/// Process-wide test environment: keys, users, files. Lives in CARGO_TARGET_TMPDIR, one directory per run.
struct Env {
    dir: PathBuf,
    /// `ssh-ed25519 AAAA...` of the shared sshd host key.
    host_pub: String,
}

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn keygen(path: &Path, args: &[&str], passphrase: &str) {
    let _ = std::fs::remove_file(path);
    sh(Command::new("ssh-keygen")
        .args(["-q", "-C", "edgefleet-test", "-N", passphrase])
        .args(args)
        .arg("-f")
        .arg(path));
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

impl Env {
    fn get() -> &'static Env {
        static ENV: OnceLock<Env> = OnceLock::new();
        ENV.get_or_init(Env::create)
    }

    fn create() -> Env {
        // The test users must be able to reach their homes and login shell: use the target dir only when
        // every ancestor is world-traversable (CI may clone into a private directory), else the system tmp.
        let target_tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let traversable = target_tmp.ancestors().all(|a| {
            std::fs::metadata(a)
                .map(|m| m.permissions().mode() & 0o001 != 0)
                .unwrap_or(false)
        });
        let base = if traversable {
            target_tmp
        } else {
            std::env::temp_dir()
        };
        // Remove directories left by earlier runs whose process is gone.
        if let Ok(rd) = std::fs::read_dir(&base) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = n
                    .strip_prefix("edgefleet-ssh-it-")
                    .and_then(|p| p.parse().ok())
                {
                    if !pid_alive(pid) {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        for tool in [
            "/usr/sbin/sshd",
            "/usr/bin/ssh-keygen",
            "/usr/bin/ssh-agent",
            "/usr/bin/sudo",
            "/usr/bin/unshare",
            "ssh",
            "ssh-add",
            "openssl",
        ] {
            crate::tools::require(tool);
        }
        let dir = base.join(format!("edgefleet-ssh-it-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("auth")).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        keygen(&dir.join("host_ed25519"), &["-t", "ed25519"], "");
        keygen(&dir.join("id_ed25519"), &["-t", "ed25519"], "");
        // russh's key parser (ssh-key 0.7.0-rc.11) refuses a P-256 key whose private scalar has a leading zero
        // byte (about 1 key in 256; OpenSSH uses it): draw until the key loads, or every run would have that
        // chance of failing all the tests that use it.
        loop {
            keygen(&dir.join("id_ecdsa"), &["-t", "ecdsa", "-b", "256"], "");
            let text = std::fs::read_to_string(dir.join("id_ecdsa")).unwrap();
            if russh::keys::decode_secret_key(&text, None).is_ok() {
                break;
            }
        }
        keygen(&dir.join("id_rsa"), &["-t", "rsa", "-b", "3072"], "");
        keygen(&dir.join("id_enc"), &["-t", "ed25519"], KEY_PASSPHRASE);
        keygen(&dir.join("id_wrong"), &["-t", "ed25519"], "");
        let mut authorized = String::new();
        for k in ["id_ed25519", "id_ecdsa", "id_rsa", "id_enc"] {
            authorized.push_str(&std::fs::read_to_string(dir.join(format!("{k}.pub"))).unwrap());
        }
        let users = [
            ("efuser", 60101, "/bin/sh".to_string()),
            (
                "efnoisy",
                60102,
                dir.join("noisy-shell").display().to_string(),
            ),
            ("efpw", 60103, "/bin/sh".to_string()),
        ];
        std::fs::write(
            dir.join("noisy-shell"),
            "#!/bin/sh\necho 'Welcome to a noisy device: rc banner on stdout'\necho 'rc noise on stderr' >&2\nexec /bin/sh \"$@\"\n",
        )
        .unwrap();
        std::fs::set_permissions(
            dir.join("noisy-shell"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let mut passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        let mut group = std::fs::read_to_string("/etc/group").unwrap();
        let mut shadow = std::fs::read_to_string("/etc/shadow").unwrap_or_default();
        let pw_hash =
            sh(Command::new("openssl").args(["passwd", "-6", "-salt", "edgefleetsalt", SUDO_PW]));
        for (u, id, shell) in &users {
            let home = dir.join("home").join(u);
            std::fs::create_dir_all(&home).unwrap();
            std::os::unix::fs::chown(&home, Some(*id), Some(*id)).unwrap();
            std::fs::write(dir.join("auth").join(u), &authorized).unwrap();
            passwd.push_str(&format!(
                "{u}:x:{id}:{id}:edgefleet test:{}:{shell}\n",
                home.display()
            ));
            group.push_str(&format!("{u}:x:{id}:\n"));
            let hash = if *u == "efpw" { pw_hash.trim() } else { "*" };
            shadow.push_str(&format!("{u}:{hash}:19000:0:99999:7:::\n"));
        }
        std::fs::write(dir.join("passwd"), passwd).unwrap();
        std::fs::write(dir.join("group"), group).unwrap();
        std::fs::write(dir.join("shadow"), shadow).unwrap();
        std::fs::set_permissions(dir.join("shadow"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        std::fs::write(
            dir.join("sudoers"),
            "Defaults env_reset\nDefaults lecture=never\nroot ALL=(ALL:ALL) ALL\nefuser ALL=(ALL) NOPASSWD: ALL\nefpw ALL=(ALL) ALL\n",
        )
        .unwrap();
        std::fs::set_permissions(dir.join("sudoers"), std::fs::Permissions::from_mode(0o440))
            .unwrap();
        std::fs::create_dir_all(dir.join("sudo-run")).unwrap();
        std::fs::create_dir_all(dir.join("sudo-lib")).unwrap();
        std::fs::write(dir.join("empty_config"), "").unwrap();
        let host_pub = std::fs::read_to_string(dir.join("host_ed25519.pub")).unwrap();
        let host_pub = host_pub
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        // A known_hosts file trusting the shared host key everywhere (a wildcard entry).
        std::fs::write(dir.join("kh_wild"), format!("* {host_pub}\n")).unwrap();
        Env { dir, host_pub }
    }

    fn key(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Connector options isolated from the user's ~/.ssh: explicit known_hosts, empty ssh_config, no agent.
    fn opts(&self, known_hosts: &Path) -> SshOptions {
        SshOptions {
            known_hosts: Some(known_hosts.to_path_buf()),
            host_key_policy: Some(HostKeyPolicy::Strict),
            ssh_config: Some(self.dir.join("empty_config")),
            system_ssh_config: None,
            connect_timeout: Duration::from_secs(30),
            use_agent: false,
            agent_socket: None,
            global_known_hosts: vec![],
            default_identities: vec![],
            prompt_passphrase: false,
            ..Default::default()
        }
    }
}

/// Loopback addresses handed out to sshd instances (127.0.x.y, never 127.0.0.1 twice).
fn next_addr() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let k = NEXT.fetch_add(1, Ordering::Relaxed) + (std::process::id() % 40) * 250;
    format!(
        "127.{}.{}.{}",
        10 + k / 62500 % 200,
        k / 250 % 250,
        1 + k % 250
    )
}

fn free_port(addr: &str) -> u16 {
    TcpListener::bind((addr, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private sshd; killed (with every child) on drop.
struct Sshd {
    child: Child,
    /// (address, port) it listens on.
    listen: Vec<(String, u16)>,
    log: PathBuf,
}

fn descendants(root: u32) -> Vec<u32> {
    let mut parent: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some(rest) = stat.rsplit_once(')').map(|x| x.1) else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parent.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for c in parent.get(&p).cloned().unwrap_or_default() {
            out.push(c);
            todo.push(c);
        }
    }
    out
}

/// Is a process with exactly this command line (NUL-separated) running?
fn proc_running(cmdline: &[u8]) -> bool {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten().any(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .map(|c| c == cmdline)
                    .unwrap_or(false)
            })
        })
        .unwrap_or(false)
}

fn kill(pid: u32, sig: i32) {
    // SAFETY: plain kill(2) on a PID we started (or a child of one).
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

impl Sshd {
    fn start(addrs: &[String], extra: &str) -> Sshd {
        Sshd::start_with(addrs, extra, "")
    }

    /// [`Sshd::start`], running the shell commands `ns_setup` in sshd's private mount namespace first.
    fn start_with(addrs: &[String], extra: &str, ns_setup: &str) -> Sshd {
        let env = Env::get();
        let listen: Vec<(String, u16)> = addrs.iter().map(|a| (a.clone(), free_port(a))).collect();
        let n = listen[0].0.replace('.', "_") + &format!("_{}", listen[0].1);
        let cfg_path = env.dir.join(format!("sshd_{n}.conf"));
        let log = env.dir.join(format!("sshd_{n}.log"));
        let mut cfg = String::new();
        for (a, p) in &listen {
            cfg.push_str(&format!("ListenAddress {a}:{p}\n"));
        }
        if !extra.contains("HostKey ") {
            cfg.push_str(&format!("HostKey {}\n", env.key("host_ed25519").display()));
        }
        if !extra.contains("AuthorizedKeysFile ") {
            cfg.push_str(&format!(
                "AuthorizedKeysFile {}/auth/%u\n",
                env.dir.display()
            ));
        }
        cfg.push_str(&format!(
            "PidFile none\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication yes\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin no\nPrintMotd no\nPrintLastLog no\nLogLevel VERBOSE\nMaxSessions 20\n\
             Subsystem sftp internal-sftp\n{extra}\n"
        ));
        if !extra.contains("MaxStartups") {
            cfg.push_str("MaxStartups 300:30:600\n");
        }
        std::fs::write(&cfg_path, cfg).unwrap();
        let d = env.dir.display();
        let script = format!(
            "set -e; mount --bind {d}/passwd /etc/passwd; mount --bind {d}/group /etc/group; \
             mount --bind {d}/shadow /etc/shadow; mount --bind {d}/sudoers /etc/sudoers; \
             mount --bind {d}/sudo-run /run/sudo 2>/dev/null || true; \
             mount --bind {d}/sudo-lib /var/lib/sudo 2>/dev/null || true; {ns_setup}\n\
             exec /usr/sbin/sshd -D -e -f {}",
            cfg_path.display()
        );
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("unshare/sshd");
        let mut s = Sshd { child, listen, log };
        s.wait_ready();
        s
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        for (a, p) in self.listen.clone() {
            loop {
                let addr: SocketAddr = format!("{a}:{p}").parse().unwrap();
                if let Ok(mut c) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = [0u8; 7];
                    if c.read_exact(&mut buf).is_ok() && &buf == b"SSH-2.0" {
                        break;
                    }
                }
                if let Ok(Some(st)) = self.child.try_wait() {
                    panic!(
                        "sshd exited ({st}): {}",
                        std::fs::read_to_string(&self.log).unwrap_or_default()
                    );
                }
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "sshd not ready: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn addr(&self) -> &str {
        &self.listen[0].0
    }

    fn port(&self) -> u16 {
        self.listen[0].1
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kill the per-connection sshd processes (the server drops every connection), keep the listener.
    fn drop_connections(&self) {
        for p in descendants(self.child.id()) {
            kill(p, libc::SIGKILL);
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        for p in descendants(self.child.id()) {
            kill(p, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A device spec for `efuser` (or `user`) on an sshd.
fn spec(name: &str, s: &Sshd, user: &str, key: Option<&str>) -> ConnSpec {
    ConnSpec {
        name: name.into(),
        connection: "ssh".into(),
        address: s.addr().into(),
        port: Some(s.port()),
        user: Some(user.into()),
        private_key_file: key.map(|k| Env::get().key(k)),
        ..Default::default()
    }
}

fn wild() -> PathBuf {
    Env::get().dir.join("kh_wild")
}

fn tmpfile(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    Env::get()
        .dir
        .join(format!("{name}-{}", N.fetch_add(1, Ordering::Relaxed)))
}

async fn connect(c: &SshConnector, sp: &ConnSpec) -> Arc<edgefleet::transport::ssh::SshTransport> {
    match c.connect_ssh(sp).await {
        Ok(t) => t,
        Err(e) => panic!("connect {}: {e}", sp.name),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_status_streams_stdin_signals_and_queued_channels() {
    let s = Sshd::start(&[next_addr()], "");
    let c = SshConnector::new(Env::get().opts(&wild()));
    let t = connect(&c, &spec("dev1", &s, "efuser", Some("id_ed25519"))).await;

    let out = t
        .exec(Exec::new(Cmd::shell("echo out; echo err >&2; exit 3")))
        .await
        .unwrap();
    assert_eq!(out.stdout_str(), "out\n");
    assert_eq!(out.stderr_str(), "err\n");
    assert_eq!(out.status, ExitStatus::Code(3));

    // 1 MiB of stdin through `data_bytes`, checked on the far side.
    let payload: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
    use sha2::Digest;
    let want = hex::encode(sha2::Sha256::digest(&payload));
    let out = t
        .exec(Exec::new(Cmd::shell("sha256sum | cut -d' ' -f1")).stdin(payload))
        .await
        .unwrap();
    assert_eq!(out.stdout_str().trim(), want);

    // Output that arrives after the exit status is still collected (stdout of a background child).
    let out = t
        .exec(Exec::new(Cmd::shell("(sleep 0.3; echo late) & exit 0")))
        .await
        .unwrap();
    assert_eq!(out.stdout_str(), "late\n");

    // `exec /bin/sh -c 'kill -TERM $$'`: the process sshd waits for dies by the signal.
    let out = t
        .exec(Exec::new(Cmd::new("kill").raw("-TERM").raw("$$")))
        .await
        .unwrap();
    assert_eq!(out.status, ExitStatus::Signal("TERM".into()));

    // A command that never reads its stdin does not hang us, even with more stdin than the window.
    let big = vec![b'x'; 8 * 1024 * 1024];
    let out = t
        .exec(Exec::new(Cmd::new("true")).stdin(big))
        .await
        .unwrap();
    assert!(out.status.success());

    // Arguments are quoted: nothing is interpreted by the remote shell.
    let out = t
        .exec(Exec::new(
            Cmd::new("printf")
                .arg("%s|")
                .arg("a b")
                .arg("$(id)")
                .arg("x'y"),
        ))
        .await
        .unwrap();
    assert_eq!(out.stdout_str(), "a b|$(id)|x'y|");

    // 30 concurrent commands on one connection: sshd allows 20 sessions, we keep <= 8 in flight.
    let mut handles = Vec::new();
    for i in 0..30 {
        let t = t.clone();
        handles.push(tokio::spawn(async move {
            t.exec(Exec::new(Cmd::shell(&format!("sleep 0.05; echo {i}"))))
                .await
        }));
    }
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.await.unwrap().unwrap().stdout_str(), format!("{i}\n"));
    }
    let st = t.stats();
    assert_eq!(st.execs, 36);
    assert_eq!(st.connects, 1);
    assert!(st.bytes_sent > 9 * 1024 * 1024, "{st:?}");
    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noisy_login_shell_does_not_corrupt_output() {
    let s = Sshd::start(&[next_addr()], "");
    let c = SshConnector::new(Env::get().opts(&wild()));
    let t = connect(&c, &spec("noisy", &s, "efnoisy", Some("id_ed25519"))).await;
    let out = t
        .exec(Exec::new(Cmd::shell("echo clean; echo clean-err >&2")))
        .await
        .unwrap();
    assert_eq!(out.stdout_str(), "clean\n");
    assert_eq!(out.stderr_str(), "clean-err\n");
    // The banner really is printed by that login shell (so the test can fail).
    let raw = Command::new("ssh")
        .args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
        ])
        .arg(format!("UserKnownHostsFile={}", wild().display()))
        .arg("-i")
        .arg(Env::get().key("id_ed25519"))
        .args([
            "-p",
            &s.port().to_string(),
            &format!("efnoisy@{}", s.addr()),
            "echo",
            "clean",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&raw.stdout).starts_with("Welcome to a noisy device"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_type_and_passphrases_and_a_wrong_key_fails_only_its_device() {
    let s = Sshd::start(&[next_addr()], "");
    let c = SshConnector::new(Env::get().opts(&wild()));
    for key in ["id_ed25519", "id_ecdsa", "id_rsa"] {
        let t = connect(&c, &spec(key, &s, "efuser", Some(key))).await;
        let out = t.exec(Exec::new(Cmd::new("id").raw("-un"))).await.unwrap();
        assert_eq!(out.stdout_str(), "efuser\n", "{key}");
    }
    let log = s.log();
    assert!(
        log.contains("Accepted publickey for efuser") && log.contains("RSA SHA256:"),
        "{log}"
    );

    // Encrypted key: the inventory passphrase decrypts it.
    let mut enc = spec("enc", &s, "efuser", Some("id_enc"));
    enc.private_key_passphrase = Some(KEY_PASSPHRASE.into());
    let t = connect(&c, &enc).await;
    assert!(t
        .exec(Exec::new(Cmd::new("true")))
        .await
        .unwrap()
        .status
        .success());
    // Without a passphrase (new connector: keys are cached per run) the error says how to supply one.
    let c2 = SshConnector::new(Env::get().opts(&wild()));
    let e = c2
        .connect(&spec("enc2", &s, "efuser", Some("id_enc")))
        .await
        .err()
        .unwrap();
    let msg = e.to_string();
    assert!(matches!(e, TransportError::Auth { .. }), "{msg}");
    assert!(
        msg.contains("ansible_ssh_private_key_passphrase")
            && msg.contains("EDGEFLEET_SSH_PASSPHRASE"),
        "{msg}"
    );
    assert!(!msg.contains(KEY_PASSPHRASE));

    // Three devices in parallel, one with a key the server does not know: only that one fails.
    let specs = [
        spec("good1", &s, "efuser", Some("id_ed25519")),
        spec("bad", &s, "efuser", Some("id_wrong")),
        spec("good2", &s, "efuser", Some("id_ecdsa")),
    ];
    let (r0, r1, r2) = tokio::join!(
        c.connect(&specs[0]),
        c.connect(&specs[1]),
        c.connect(&specs[2])
    );
    assert!(r0.is_ok() && r2.is_ok());
    let e = r1.as_ref().err().unwrap();
    let msg = e.to_string();
    assert!(
        matches!(e, TransportError::Auth { .. })
            && msg.contains("id_wrong (rejected)")
            && msg.contains("efuser@"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_authentication() {
    let s = Sshd::start(&[next_addr()], "");
    let env = Env::get();
    let sock = tmpfile("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let start = Instant::now();
    while !sock.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "agent did not start"
        );
        if let Ok(Some(st)) = agent.try_wait() {
            panic!("ssh-agent exited: {st}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _agent = Kill(agent);
    sh(Command::new("ssh-add")
        .env("SSH_AUTH_SOCK", &sock)
        .arg(env.key("id_rsa")));
    let mut o = env.opts(&wild());
    o.use_agent = true;
    o.agent_socket = Some(sock.clone());
    let c = SshConnector::new(o);
    // No identity file at all: only the agent can get us in (with rsa-sha2, as sshd 9 refuses ssh-rsa).
    let t = connect(&c, &spec("agent", &s, "efuser", None)).await;
    assert_eq!(
        t.exec(Exec::new(Cmd::new("whoami")))
            .await
            .unwrap()
            .stdout_str(),
        "efuser\n"
    );
    // Without the agent the same device is refused.
    let c2 = SshConnector::new(env.opts(&wild()));
    assert!(matches!(
        c2.connect(&spec("noagent", &s, "efuser", None)).await,
        Err(TransportError::Auth { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_refuses_unknown_and_changed_keys_naming_file_and_line() {
    let s = Sshd::start(&[next_addr()], "");
    let env = Env::get();
    let kh = tmpfile("kh_strict");
    std::fs::write(&kh, "# nothing for this host\n").unwrap();
    let c = SshConnector::new(env.opts(&kh));
    let e = c
        .connect(&spec("dev", &s, "efuser", Some("id_ed25519")))
        .await
        .err()
        .unwrap();
    let msg = e.to_string();
    assert!(matches!(e, TransportError::HostKey(_)), "{msg}");
    assert!(
        msg.contains("unknown host key")
            && msg.contains(&kh.display().to_string())
            && msg.contains("SHA256:"),
        "{msg}"
    );
    assert!(msg.contains("accept-new"), "{msg}");

    let other = std::fs::read_to_string(env.key("id_wrong.pub")).unwrap();
    let other = other
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    std::fs::write(
        &kh,
        format!(
            "# header\nelsewhere {}\n[{}]:{} {other}\n",
            env.host_pub,
            s.addr(),
            s.port()
        ),
    )
    .unwrap();
    for policy in [HostKeyPolicy::Strict, HostKeyPolicy::AcceptNew] {
        let mut o = env.opts(&kh);
        o.host_key_policy = Some(policy);
        let c = SshConnector::new(o);
        let e = c
            .connect(&spec("dev", &s, "efuser", Some("id_ed25519")))
            .await
            .err()
            .unwrap();
        let msg = e.to_string();
        assert!(
            msg.contains("HOST KEY CHANGED") && msg.contains(&format!("{}:3", kh.display())),
            "{msg}"
        );
    }
    // Nothing was appended by accept-new for a changed key.
    assert_eq!(std::fs::read_to_string(&kh).unwrap().lines().count(), 3);

    // Host key checking off for this host (inventory): connects, with one loud warning.
    let mut off = spec("dev-off", &s, "efuser", Some("id_ed25519"));
    off.host_key_checking = Some(false);
    let c = SshConnector::new(env.opts(&kh));
    let t = connect(&c, &off).await;
    assert!(t
        .exec(Exec::new(Cmd::new("true")))
        .await
        .unwrap()
        .status
        .success());
    let w = c.take_warnings();
    assert!(w.iter().any(|(h, m)| h.as_deref() == Some("dev-off") && m.contains("host key checking is OFF")), "{w:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_wildcard_negated_and_cert_authority_entries() {
    let env = Env::get();
    let ca = tmpfile("ca");
    keygen(&ca, &["-t", "ed25519"], "");
    let addr = next_addr();
    // The sshd presents a host certificate signed by our CA for its address.
    let hostcert_key = tmpfile("hk");
    keygen(&hostcert_key, &["-t", "ed25519"], "");
    sh(Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&ca)
        .args(["-h", "-I", "dev", "-n", &addr])
        .arg(format!("{}.pub", hostcert_key.display())));
    let cert_path = format!("{}-cert.pub", hostcert_key.display());
    let s = Sshd::start(
        std::slice::from_ref(&addr),
        &format!(
            "HostKey {}\nHostCertificate {cert_path}",
            hostcert_key.display()
        ),
    );
    let ca_pub = std::fs::read_to_string(format!("{}.pub", ca.display())).unwrap();
    let ca_pub = ca_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");

    let kh = tmpfile("kh_ca");
    std::fs::write(
        &kh,
        format!("@cert-authority [127.*]:*,127.99.*,!10.* {ca_pub}\n"),
    )
    .unwrap();
    let c = SshConnector::new(env.opts(&kh));
    let t = connect(&c, &spec("certdev", &s, "efuser", Some("id_ed25519"))).await;
    assert!(t
        .exec(Exec::new(Cmd::new("true")))
        .await
        .unwrap()
        .status
        .success());

    // Same CA, but the device is reached under a name the certificate does not list (HostKeyAlias):
    // the certificate is refused and, with no plain key recorded, so is the host.
    let mut alias = spec("aliased", &s, "efuser", Some("id_ed25519"));
    alias.ssh_args = vec!["-o".into(), "HostKeyAlias=127.99.99.99".into()];
    let e = c.connect(&alias).await.err().unwrap().to_string();
    assert!(e.contains("not for 127.99.99.99"), "{e}");

    // Hashed entries written by ssh-keygen -H, for the plain key of another sshd.
    let s2 = Sshd::start(&[next_addr()], "");
    let kh2 = tmpfile("kh_hashed");
    std::fs::write(
        &kh2,
        format!("[{}]:{} {}\n", s2.addr(), s2.port(), env.host_pub),
    )
    .unwrap();
    sh(Command::new("ssh-keygen")
        .arg("-q")
        .arg("-H")
        .arg("-f")
        .arg(&kh2));
    let text = std::fs::read_to_string(&kh2).unwrap();
    assert!(
        text.starts_with("|1|") && !text.contains(s2.addr()),
        "{text}"
    );
    let c = SshConnector::new(env.opts(&kh2));
    connect(&c, &spec("hashed", &s2, "efuser", Some("id_ed25519"))).await;

    // Wildcards with negation: `127.*` matches unless `!` excludes this address.
    let kh3 = tmpfile("kh_neg");
    std::fs::write(
        &kh3,
        format!("[127.*]:*,![{}]:* {}\n", s2.addr(), env.host_pub),
    )
    .unwrap();
    let c = SshConnector::new(env.opts(&kh3));
    assert!(matches!(
        c.connect(&spec("neg", &s2, "efuser", Some("id_ed25519")))
            .await,
        Err(TransportError::HostKey(_))
    ));
    let s3 = Sshd::start(&[next_addr()], "");
    connect(&c, &spec("pos", &s3, "efuser", Some("id_ed25519"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_new_records_200_hosts_exactly_once() {
    let env = Env::get();
    // 13 sshd with 16 listen addresses each: 208 distinct 127.x.y.z names, 200 used.
    let mut servers = Vec::new();
    for _ in 0..13 {
        let addrs: Vec<String> = (0..16).map(|_| next_addr()).collect();
        servers.push(Sshd::start(&addrs, "MaxStartups 100:30:200"));
    }
    let targets: Vec<(String, u16)> = servers
        .iter()
        .flat_map(|s| s.listen.clone())
        .take(200)
        .collect();
    let kh = tmpfile("kh_accept_new");
    std::fs::write(&kh, "# existing comment line\n").unwrap();
    let mut o = env.opts(&kh);
    o.host_key_policy = Some(HostKeyPolicy::AcceptNew);
    o.connect_timeout = Duration::from_secs(120);
    let c = SshConnector::new(o);
    let mut set = tokio::task::JoinSet::new();
    for (i, (a, p)) in targets.iter().enumerate() {
        let c = c.clone();
        let sp = ConnSpec {
            name: format!("d{i}"),
            address: a.clone(),
            port: Some(*p),
            user: Some("efuser".into()),
            private_key_file: Some(env.key("id_ed25519")),
            ..Default::default()
        };
        set.spawn(async move {
            let t = c
                .connect(&sp)
                .await
                .map_err(|e| format!("{}: {e}", sp.name))?;
            t.close().await;
            Ok::<_, String>(())
        });
    }
    let mut failures = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Err(e) = r.unwrap() {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
    let text = std::fs::read_to_string(&kh).unwrap();
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines.len(), 200);
    let names: HashSet<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names.len(), 200);
    for (a, p) in &targets {
        assert!(names.contains(format!("[{a}]:{p}").as_str()));
    }
    // The recorded keys are now trusted under the strict policy.
    let c = SshConnector::new(env.opts(&kh));
    let (a, p) = &targets[123];
    let sp = ConnSpec {
        name: "again".into(),
        address: a.clone(),
        port: Some(*p),
        user: Some("efuser".into()),
        private_key_file: Some(env.key("id_ed25519")),
        ..Default::default()
    };
    connect(&c, &sp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_jump_one_and_two_hops_share_one_bastion_connection() {
    let bastion = Sshd::start(&[next_addr()], "");
    let bastion2 = Sshd::start(&[next_addr()], "");
    let device = Sshd::start(&[next_addr()], "");
    let c = SshConnector::new(Env::get().opts(&wild()));
    let jump = format!("efuser@{}:{}", bastion.addr(), bastion.port());
    let mut set = tokio::task::JoinSet::new();
    for i in 0..6 {
        let mut sp = spec(&format!("behind{i}"), &device, "efuser", Some("id_ed25519"));
        sp.jump = Some(jump.clone());
        let c = c.clone();
        set.spawn(async move {
            let t = c.connect(&sp).await.map_err(|e| e.to_string())?;
            let out = t
                .exec(Exec::new(Cmd::shell("echo $SSH_CONNECTION")))
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(out.stdout_str())
        });
    }
    while let Some(r) = set.join_next().await {
        let conn = r.unwrap().unwrap();
        assert!(conn.contains(device.addr()), "{conn}");
    }
    let blog = bastion.log();
    assert_eq!(
        blog.matches("Accepted publickey for efuser").count(),
        1,
        "{blog}"
    );
    assert_eq!(
        device
            .log()
            .matches("Accepted publickey for efuser")
            .count(),
        6
    );

    // Two hops: bastion2 reached through bastion, the device through bastion2 (via ssh args, -J).
    let mut sp = spec("twohop", &device, "efuser", Some("id_ed25519"));
    sp.ssh_args = vec![
        "-J".into(),
        format!("{jump},efuser@{}:{}", bastion2.addr(), bastion2.port()),
    ];
    let t = connect(&c, &sp).await;
    assert!(t
        .exec(Exec::new(Cmd::new("true")))
        .await
        .unwrap()
        .status
        .success());
    assert_eq!(
        bastion2
            .log()
            .matches("Accepted publickey for efuser")
            .count(),
        1
    );
    // bastion2's connection came through the first bastion, which already had its one connection.
    assert_eq!(
        bastion
            .log()
            .matches("Accepted publickey for efuser")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn become_via_sudo() {
    let s = Sshd::start(&[next_addr()], "");
    let c = SshConnector::new(Env::get().opts(&wild()));
    let t = connect(&c, &spec("sudo", &s, "efuser", Some("id_ed25519"))).await;
    let f = format!("/tmp/edgefleet-become-{}", std::process::id());
    let root = Some(Become {
        user: "root".into(),
        password: None,
    });
    let out = t
        .exec(
            Exec::new(Cmd::shell(&format!(
                "id -un; echo hi > {f}; stat -c %U {f}; rm -f {f}"
            )))
            .become_(root.clone()),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout_str(), "root\nroot\n", "{}", out.stderr_str());
    // A user that is not in sudoers gets a Become error.
    let t2 = connect(&c, &spec("nosudo", &s, "efnoisy", Some("id_ed25519"))).await;
    let e = t2
        .exec(Exec::new(Cmd::new("true")).become_(root))
        .await
        .unwrap_err();
    assert!(matches!(e, TransportError::Become(_)), "{e}");
    // sudo with a password: the password travels on stdin only.
    let t3 = connect(&c, &spec("pwsudo", &s, "efpw", Some("id_ed25519"))).await;
    let out = t3
        .exec(Exec::new(Cmd::new("id").raw("-un")).become_(Some(Become {
            user: "root".into(),
            password: Some(SUDO_PW.into()),
        })))
        .await;
    match out {
        Ok(o) => assert_eq!(o.stdout_str(), "root\n", "{}", o.stderr_str()),
        Err(e) => panic!("sudo with password: {e}"),
    }
    let e = t3
        .exec(Exec::new(Cmd::new("id")).become_(Some(Become {
            user: "root".into(),
            password: Some("wrong-password".into()),
        })))
        .await
        .unwrap_err();
    assert!(matches!(e, TransportError::Become(_)), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_timeout_keeps_the_connection_and_reconnect_after_server_drop() {
    let s = Sshd::start(&[next_addr()], "");
    let c = SshConnector::new(Env::get().opts(&wild()));
    let t = connect(&c, &spec("slow", &s, "efuser", Some("id_ed25519"))).await;
    let e = t
        .exec(Exec::new(Cmd::new("sleep").arg("37.25")).timeout(Some(Duration::from_millis(500))))
        .await
        .unwrap_err();
    assert!(matches!(e, TransportError::Timeout(_)), "{e}");
    // The remote command does not outlive its timeout (the channel got a KILL signal and was closed).
    let alive = || proc_running(b"sleep\x0037.25\x00");
    let start = Instant::now();
    while alive() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!alive(), "the timed-out remote command is still running");
    let out = t
        .exec(Exec::new(Cmd::new("echo").arg("still here")))
        .await
        .unwrap();
    assert_eq!(out.stdout_str(), "still here\n");
    assert_eq!(t.stats().connects, 1);

    // The server drops the connection between two commands: the next exec reconnects once.
    s.drop_connections();
    let out = t
        .exec(Exec::new(Cmd::new("echo").arg("after drop")))
        .await
        .unwrap();
    assert_eq!(out.stdout_str(), "after drop\n");
    assert_eq!(t.stats().connects, 2);

    // A drop WHILE a command runs is reported, not retried.
    let t2 = t.clone();
    let run = tokio::spawn(async move { t2.exec(Exec::new(Cmd::new("sleep").arg("20.75"))).await });
    let running = || proc_running(b"sleep\x0020.75\x00");
    let start = Instant::now();
    while !running() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the remote command never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.drop_connections();
    let r = run.await.unwrap();
    assert!(matches!(r, Err(TransportError::Disconnected(_))), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_startups_drops_are_retried_until_every_device_is_in() {
    // sshd drops every new connection while one is still unauthenticated.
    let s = Sshd::start(&[next_addr()], "MaxStartups 1:100:1");
    let mut o = Env::get().opts(&wild());
    o.connect_timeout = Duration::from_secs(120);
    o.connect_attempts = 60;
    let c = SshConnector::new(o);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..16 {
        let c = c.clone();
        let sp = spec(&format!("ms{i}"), &s, "efuser", Some("id_ed25519"));
        set.spawn(async move { c.connect(&sp).await.map(|_| ()).map_err(|e| e.to_string()) });
    }
    while let Some(r) = set.join_next().await {
        if let Err(e) = r.unwrap() {
            panic!("{e}\n--- sshd log ---\n{}", s.log());
        }
    }
    assert!(
        s.log().contains("drop connection") || s.log().contains("beginning MaxStartups throttling"),
        "{}",
        s.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_during_authentication_is_retried_not_reported_as_a_rejected_key() {
    let env = Env::get();
    // sshd asks this AuthorizedKeysCommand about the offered key. Its first call kills its parent, the sshd
    // process authenticating this connection: the server drops the connection in the middle of publickey
    // authentication, the key itself is fine. Later calls print the authorized keys.
    let script = tmpfile("akc");
    let dropped = tmpfile("akc-dropped");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif mkdir {} 2>/dev/null; then kill -9 \"$PPID\"; exit 1; fi\n\
             exec cat {}/auth/\"$1\"\n",
            dropped.display(),
            env.dir.display()
        ),
    )
    .unwrap();
    // sshd runs the command only from a root-owned path no one else can write to: a tmpfs on /run/sshd in its
    // own mount namespace (still a valid privilege separation directory).
    let s = Sshd::start_with(
        &[next_addr()],
        "AuthorizedKeysFile none\nAuthorizedKeysCommand /run/sshd/akc %u\nAuthorizedKeysCommandUser root",
        &format!(
            "mount -t tmpfs -o mode=755 tmpfs /run/sshd; install -m 755 {} /run/sshd/akc",
            script.display()
        ),
    );
    let c = SshConnector::new(env.opts(&wild()));
    let sp = spec("dropped", &s, "efuser", Some("id_ed25519"));
    let t = match c.connect_ssh(&sp).await {
        Ok(t) => t,
        Err(e) => panic!("{e}\n--- sshd log ---\n{}", s.log()),
    };
    assert_eq!(
        t.exec(Exec::new(Cmd::new("whoami")))
            .await
            .unwrap()
            .stdout_str(),
        "efuser\n"
    );
    // The first connection really was dropped during authentication, and a second one got in.
    assert!(dropped.is_dir(), "the server never dropped a connection");
    let log = s.log();
    assert_eq!(
        log.matches("Accepted publickey for efuser").count(),
        1,
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_hole_and_refused_fail_within_the_timeout_without_delaying_others() {
    let s = Sshd::start(&[next_addr()], "");
    // Accepts TCP and never says anything.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_port = hole.local_addr().unwrap().port();
    let refused_port = free_port("127.0.0.1");
    let mut o = Env::get().opts(&wild());
    o.connect_timeout = Duration::from_secs(8);
    let c = SshConnector::new(o);
    let mk = |name: &str, port: u16| ConnSpec {
        name: name.into(),
        address: "127.0.0.1".into(),
        port: Some(port),
        user: Some("efuser".into()),
        private_key_file: Some(Env::get().key("id_ed25519")),
        ..Default::default()
    };
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let run = |name: &'static str, sp: ConnSpec| {
        let (c, order) = (c.clone(), order.clone());
        async move {
            let r = c.connect(&sp).await.map(|_| ());
            order.lock().unwrap().push(name);
            r
        }
    };
    let mut good_spec = spec("good", &s, "efuser", Some("id_ed25519"));
    good_spec.connect_timeout = Some(Duration::from_secs(30));
    let (h, r, g) = tokio::join!(
        run("hole", mk("hole", hole_port)),
        run("refused", mk("refused", refused_port)),
        run("good", good_spec)
    );
    drop(hole);
    g.unwrap();
    let he = h.unwrap_err();
    assert!(
        matches!(&he, TransportError::Connect { reason, .. } if reason.contains("timed out")),
        "{he}"
    );
    let re = r.unwrap_err();
    assert!(
        matches!(&re, TransportError::Connect { reason, .. } if reason.contains("refused")),
        "{re}"
    );
    assert!(he.is_unreachable() && re.is_unreachable());
    // Both bad ones end by their own timeout (never hang); the good one is not held up behind them.
    let order = order.lock().unwrap().clone();
    let pos = |n| order.iter().position(|x| *x == n).unwrap();
    assert!(pos("good") < pos("hole"), "{order:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_auth_ssh_config_alias_and_ignored_args() {
    let s = Sshd::start(&[next_addr()], "");
    let env = Env::get();
    let c = SshConnector::new(env.opts(&wild()));
    let mut pw = spec("pw", &s, "efpw", None);
    pw.password = Some(SUDO_PW.into());
    let t = connect(&c, &pw).await;
    assert_eq!(
        t.exec(Exec::new(Cmd::new("whoami")))
            .await
            .unwrap()
            .stdout_str(),
        "efpw\n"
    );
    let mut bad = spec("badpw", &s, "efpw", None);
    bad.password = Some("not-the-password-xyz".into());
    let e = c.connect(&bad).await.err().unwrap();
    let msg = e.to_string();
    assert!(
        matches!(e, TransportError::Auth { .. }) && msg.contains("password (rejected)"),
        "{msg}"
    );
    assert!(!msg.contains("not-the-password-xyz"), "{msg}");

    // An ssh_config Host alias given with -F in the inventory's ssh args: HostName, Port, User, IdentityFile.
    let cfg = tmpfile("ssh_config");
    std::fs::write(
        &cfg,
        format!(
            "Host mydevice\n  HostName {}\n  Port {}\n  User efuser\n  IdentityFile {}\nMatch user nobody\n  User nobody\nHost *\n  ServerAliveInterval 5\n  User ignored\n",
            s.addr(),
            s.port(),
            env.key("id_ecdsa").display()
        ),
    )
    .unwrap();
    let alias = ConnSpec {
        name: "alias".into(),
        address: "mydevice".into(),
        ssh_args: vec!["-F".into(), cfg.display().to_string(), "-C".into()],
        ..Default::default()
    };
    let t = connect(&c, &alias).await;
    assert_eq!(t.target().hostname, s.addr());
    // Without --known-hosts, `-o UserKnownHostsFile=` from the inventory's args is the file consulted.
    let mut o = env.opts(&wild());
    o.known_hosts = None;
    let c_args = SshConnector::new(o);
    let mut via_args = spec("kh-args", &s, "efuser", Some("id_ed25519"));
    via_args.ssh_args = vec![
        "-o".into(),
        format!("UserKnownHostsFile={}", wild().display()),
    ];
    connect(&c_args, &via_args).await;
    via_args.ssh_args = vec![
        "-o".into(),
        format!("UserKnownHostsFile={}", tmpfile("kh_empty").display()),
    ];
    let e = c_args.connect(&via_args).await.err().unwrap().to_string();
    assert!(
        e.contains("unknown host key") && e.contains("kh_empty"),
        "{e}"
    );
    assert_eq!(
        t.exec(Exec::new(Cmd::new("whoami")))
            .await
            .unwrap()
            .stdout_str(),
        "efuser\n"
    );
    let w = c.take_warnings();
    assert!(
        w.iter()
            .any(|(_, m)| m.contains("`Match` blocks are not supported")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|(h, m)| h.as_deref() == Some("alias") && m.contains("-C")),
        "{w:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_certificates_from_a_file_and_from_the_agent() {
    let env = Env::get();
    // A user CA the sshd trusts; the key itself is NOT in authorized_keys, only its certificate gets in.
    let ca = tmpfile("user_ca");
    keygen(&ca, &["-t", "ed25519"], "");
    let key = tmpfile("id_certonly");
    keygen(&key, &["-t", "ed25519"], "");
    sh(Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&ca)
        .args(["-I", "efuser-cert", "-n", "efuser"])
        .arg(format!("{}.pub", key.display())));
    let s = Sshd::start(
        &[next_addr()],
        &format!("TrustedUserCAKeys {}.pub", ca.display()),
    );
    let c = SshConnector::new(env.opts(&wild()));
    let mut sp = spec("usercert", &s, "efuser", None);
    sp.private_key_file = Some(key.clone());
    let t = connect(&c, &sp).await;
    assert!(t
        .exec(Exec::new(Cmd::new("true")))
        .await
        .unwrap()
        .status
        .success());
    assert!(
        s.log().contains("Accepted publickey for efuser") && s.log().contains("CA ED25519"),
        "{}",
        s.log()
    );

    // Without the certificate file the bare key is refused.
    let bare = tmpfile("id_bare");
    std::fs::copy(&key, &bare).unwrap();
    std::fs::set_permissions(&bare, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut sp2 = spec("bare", &s, "efuser", None);
    sp2.private_key_file = Some(bare);
    assert!(matches!(
        c.connect(&sp2).await,
        Err(TransportError::Auth { .. })
    ));

    // The same certificate held by ssh-agent (ssh-add loads <key>-cert.pub with the key).
    let sock = tmpfile("agent-cert.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !sock.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let added = Command::new("ssh-add")
        .env("SSH_AUTH_SOCK", &sock)
        .arg(&key)
        .output()
        .unwrap();
    let mut o = env.opts(&wild());
    o.use_agent = true;
    o.agent_socket = Some(sock.clone());
    let c = SshConnector::new(o);
    let r = c.connect(&spec("agentcert", &s, "efuser", None)).await;
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(
        String::from_utf8_lossy(&added.stderr).contains("Certificate added"),
        "{added:?}"
    );
    assert!(r.is_ok(), "{:?}", r.err());
}
