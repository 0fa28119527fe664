//! The embedded SSH server (russh 0.65 server side): one listener per device inside the lab supervisor.
//!
//! Owns everything russh in the lab (the only other russh user in edgefleet is `transport/ssh.rs`): SSH key
//! generation for the lab, public-key authentication against the device's own `~/.ssh/authorized_keys` (user and
//! home from the device's `/etc/passwd`), and `exec` / `shell` channels that run `$SHELL -c CMD` inside the device
//! (setns into the holder's namespaces, drop to the user's uid/gid/groups, sshd's environment: HOME, USER, LOGNAME,
//! SHELL, PATH, MAIL, SSH_CLIENT, SSH_CONNECTION, plus accepted LANG/LC_*; cwd = home; new session), streaming
//! stdin/stdout/stderr with SSH flow control and reporting `exit-status` or `exit-signal` like OpenSSH. Like
//! Debian's sshd it allows at most [`MAX_SESSIONS`] open session channels per connection. It has no PTY, no
//! SFTP, no forwarding (edgefleet uses none of them; the openssh backend has them). It must not decide
//! faults: the supervisor starts and stops listeners and drops connections through [`ConnRegistry`].

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rand::RngCore;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::LineEnding;
use russh::keys::{PrivateKey, PublicKey};
use russh::server::{self, Auth, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelMsg, ChannelOpenFailure, MethodKind, MethodSet, Sig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::error::LabError;
use super::ns::{self, Creds, NsFds};

/// The server configuration (a russh type; other lab modules name it through this alias).
pub type ServerConfig = server::Config;

/// Debian sshd's default `MaxSessions`.
pub const MAX_SESSIONS: usize = 10;
/// The identification string of the embedded server.
pub const SERVER_ID: &str = "SSH-2.0-edgefleet-lab";

/// Generate an ed25519 key pair: (OpenSSH private key text, `ssh-ed25519 AAAA... comment` public line).
pub fn ed25519_keypair(comment: &str) -> Result<(String, String), LabError> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment(comment);
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| LabError::Pki(format!("cannot encode an ed25519 key: {e}")))?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| LabError::Pki(format!("cannot encode an ed25519 key: {e}")))?;
    Ok((pem.to_string(), public))
}

/// Live TCP connections of one device (dup'ed fds), so that a "reboot" can drop them all at once.
#[derive(Debug, Default)]
pub struct ConnRegistry {
    next: AtomicU64,
    fds: Mutex<HashMap<u64, OwnedFd>>,
}

/// Removes its connection from the registry when dropped.
pub struct ConnGuard {
    reg: Arc<ConnRegistry>,
    id: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.reg.fds.lock() {
            m.remove(&self.id);
        }
    }
}

impl ConnRegistry {
    /// Track `s` until the guard is dropped.
    pub fn track(self: &Arc<Self>, s: &TcpStream) -> Option<ConnGuard> {
        let fd = std::os::fd::AsFd::as_fd(s).try_clone_to_owned().ok()?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.fds.lock().ok()?.insert(id, fd);
        Some(ConnGuard {
            reg: self.clone(),
            id,
        })
    }

    /// Shut down every tracked connection (both directions): peers see the connection drop.
    pub fn drop_all(&self) -> usize {
        let Ok(m) = self.fds.lock() else { return 0 };
        for fd in m.values() {
            // SAFETY: shutdown(2) on a socket fd we own.
            unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR) };
        }
        m.len()
    }
}

/// What the embedded server needs to know about its device.
pub struct DeviceHost {
    /// The device's state root on the host (its `/etc/passwd`, homes).
    pub root: PathBuf,
    /// Namespace holder pid.
    pub holder_pid: i32,
    /// Mount namespace inode.
    pub mnt_ns: u64,
    /// Live connections.
    pub conns: Arc<ConnRegistry>,
    /// The `unreachable-after-dns` fault's value: new connections are refused while the device's running
    /// dockerd uses it (see [`DeviceHost::cut_off`]).
    pub cut_off_when: std::sync::Mutex<Option<String>>,
}

impl DeviceHost {
    /// Is the device cut off by the `unreachable-after-dns` fault right now: does the configuration its
    /// (simulated) dockerd loaded at its last start — not merely the file on disk — name the fault's value as
    /// a DNS server or in a proxy setting? Read at every accept, so the first connection after the restart that
    /// applied the change is already refused, and the first one after a restart that reverted it gets in.
    pub fn cut_off(&self) -> bool {
        let Some(v) = self.cut_off_when.lock().ok().and_then(|g| g.clone()) else {
            return false;
        };
        let Ok(text) = std::fs::read_to_string(self.root.join("var/lib/edgefleet-lab/docker.json"))
        else {
            return false;
        };
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) else {
            return false;
        };
        let cfg = &doc["daemon_config"];
        let dns = cfg["dns"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(v.as_str())));
        let proxy = |p: &serde_json::Value| p.as_str().is_some_and(|s| s.contains(v.as_str()));
        let proxies = cfg["proxies"]
            .as_object()
            .is_some_and(|m| m.values().any(proxy))
            || proxy(&cfg["http-proxy"])
            || proxy(&cfg["https-proxy"]);
        dns || proxies
    }
}

/// Load an OpenSSH private key file and build the server configuration around it.
pub fn server_config(host_key: &Path) -> Result<Arc<server::Config>, LabError> {
    let text = std::fs::read_to_string(host_key).map_err(|e| LabError::io(host_key, e))?;
    let key = PrivateKey::from_openssh(text.as_bytes())
        .map_err(|e| LabError::Pki(format!("{}: {e}", host_key.display())))?;
    let mut methods = MethodSet::empty();
    methods.push(MethodKind::PublicKey);
    Ok(Arc::new(server::Config {
        server_id: russh::SshId::Standard(SERVER_ID.into()),
        methods,
        auth_rejection_time: std::time::Duration::from_millis(300),
        auth_rejection_time_initial: Some(std::time::Duration::ZERO),
        keys: vec![key],
        inactivity_timeout: None,
        keepalive_interval: None,
        nodelay: true,
        ..Default::default()
    }))
}

/// Accept connections forever (until the task is aborted), one russh session each.
pub async fn serve(listener: TcpListener, config: Arc<server::Config>, dev: Arc<DeviceHost>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let local = match stream.local_addr() {
            Ok(a) => a,
            Err(_) => continue,
        };
        if dev.cut_off() {
            // Closed at once: the client sees its handshake cut, as when nothing routes to the device.
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let guard = dev.conns.track(&stream);
        let handler = Conn {
            dev: dev.clone(),
            peer,
            local,
            user: None,
            open: Arc::new(AtomicUsize::new(0)),
        };
        let config = config.clone();
        tokio::spawn(async move {
            let _guard = guard;
            if let Ok(s) = server::run_stream(config, stream, handler).await {
                let _ = s.await;
            }
        });
    }
}

/// A login user from the device's /etc/passwd.
#[derive(Debug, Clone)]
struct User {
    name: String,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    home: String,
    shell: String,
}

fn lookup_user(root: &Path, name: &str) -> Option<User> {
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).ok()?;
    let f: Vec<&str> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 7 && f[0] == name)?;
    let uid = f[2].parse().ok()?;
    let gid: u32 = f[3].parse().ok()?;
    let mut groups = vec![gid];
    if let Ok(g) = std::fs::read_to_string(root.join("etc/group")) {
        for l in g.lines() {
            let gf: Vec<&str> = l.split(':').collect();
            if gf.len() >= 4 && gf[3].split(',').any(|m| m == name) {
                if let Ok(n) = gf[2].parse::<u32>() {
                    if !groups.contains(&n) {
                        groups.push(n);
                    }
                }
            }
        }
    }
    let shell = if f[6].is_empty() { "/bin/sh" } else { f[6] };
    Some(User {
        name: name.to_string(),
        uid,
        gid,
        groups,
        home: f[5].to_string(),
        shell: shell.to_string(),
    })
}

/// Is `key` listed in the user's `~/.ssh/authorized_keys` (read through the device root)?
fn authorized(root: &Path, user: &User, key: &PublicKey) -> bool {
    let p = root
        .join(user.home.trim_start_matches('/'))
        .join(".ssh/authorized_keys");
    let Ok(text) = std::fs::read_to_string(p) else {
        return false;
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| PublicKey::from_openssh(l).ok())
        .any(|k| k.key_data() == key.key_data())
}

struct Conn {
    dev: Arc<DeviceHost>,
    peer: SocketAddr,
    local: SocketAddr,
    user: Option<User>,
    open: Arc<AtomicUsize>,
}

impl Conn {
    fn check(&self, user: &str, key: &PublicKey) -> Option<User> {
        let u = lookup_user(&self.dev.root, user)?;
        authorized(&self.dev.root, &u, key).then_some(u)
    }
}

impl server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(match self.check(user, offer.public_key) {
            Some(_) => Auth::Accept,
            None => Auth::reject(),
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(match self.check(user, key.public_key) {
            Some(u) => {
                self.user = Some(u);
                Auth::Accept
            }
            None => Auth::reject(),
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(user) = self.user.clone() else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        if self.open.fetch_add(1, Ordering::SeqCst) >= MAX_SESSIONS {
            self.open.fetch_sub(1, Ordering::SeqCst);
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        reply.accept().await;
        let slot = Slot(self.open.clone());
        let ctx = ChanCtx {
            dev: self.dev.clone(),
            user,
            peer: self.peer,
            local: self.local,
        };
        let handle = session.handle();
        tokio::spawn(async move {
            run_channel(channel, handle, ctx).await;
            drop(slot);
        });
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        variable_name: &str,
        _variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Like sshd with `AcceptEnv LANG LC_*`: a reply is only sent if the client asked for one.
        if accepted_env(variable_name) {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }
}

/// One open session channel (released when dropped).
struct Slot(Arc<AtomicUsize>);
impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct ChanCtx {
    dev: Arc<DeviceHost>,
    user: User,
    peer: SocketAddr,
    local: SocketAddr,
}

fn accepted_env(name: &str) -> bool {
    name == "LANG" || name.starts_with("LC_")
}

/// Build the user's `$SHELL -c CMD` (or a login shell when `command` is None) inside the device.
fn command(
    ctx: &ChanCtx,
    command: Option<&[u8]>,
    env: &[(String, String)],
) -> io::Result<std::process::Command> {
    let u = &ctx.user;
    let base = Path::new(&u.shell)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sh".into());
    let mut c = std::process::Command::new(&u.shell);
    match command {
        Some(cmd) => {
            c.arg0(&base).arg("-c").arg(OsStr::from_bytes(cmd));
        }
        None => {
            c.arg0(format!("-{base}"));
        }
    }
    let path = if u.uid == 0 {
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    } else {
        "/usr/local/bin:/usr/bin:/bin:/usr/games"
    };
    c.env_clear();
    for (k, v) in env {
        c.env(k, v);
    }
    c.env("USER", &u.name)
        .env("LOGNAME", &u.name)
        .env("HOME", &u.home)
        .env("SHELL", &u.shell)
        .env("PATH", path)
        .env("MAIL", format!("/var/mail/{}", u.name))
        .env(
            "SSH_CLIENT",
            format!("{} {} {}", ctx.peer.ip(), ctx.peer.port(), ctx.local.port()),
        )
        .env(
            "SSH_CONNECTION",
            format!(
                "{} {} {} {}",
                ctx.peer.ip(),
                ctx.peer.port(),
                ctx.local.ip(),
                ctx.local.port()
            ),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let fds = NsFds::open(ctx.dev.holder_pid, ctx.dev.mnt_ns)?;
    let home = std::ffi::CString::new(u.home.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "home contains NUL"))?;
    ns::enter(
        &mut c,
        &fds,
        Creds {
            uid: u.uid,
            gid: u.gid,
            groups: u.groups.clone(),
            home,
        },
    )?;
    Ok(c)
}

fn sig_of(n: i32) -> Sig {
    match n {
        libc::SIGABRT => Sig::ABRT,
        libc::SIGALRM => Sig::ALRM,
        libc::SIGFPE => Sig::FPE,
        libc::SIGHUP => Sig::HUP,
        libc::SIGILL => Sig::ILL,
        libc::SIGINT => Sig::INT,
        libc::SIGKILL => Sig::KILL,
        libc::SIGPIPE => Sig::PIPE,
        libc::SIGQUIT => Sig::QUIT,
        libc::SIGSEGV => Sig::SEGV,
        libc::SIGTERM => Sig::TERM,
        libc::SIGUSR1 => Sig::USR1,
        libc::SIGUSR2 => Sig::Custom("USR2".into()),
        n => Sig::Custom(format!("SIG{n}")),
    }
}

fn signo(s: &Sig) -> Option<i32> {
    Some(match s {
        Sig::ABRT => libc::SIGABRT,
        Sig::ALRM => libc::SIGALRM,
        Sig::FPE => libc::SIGFPE,
        Sig::HUP => libc::SIGHUP,
        Sig::ILL => libc::SIGILL,
        Sig::INT => libc::SIGINT,
        Sig::KILL => libc::SIGKILL,
        Sig::PIPE => libc::SIGPIPE,
        Sig::QUIT => libc::SIGQUIT,
        Sig::SEGV => libc::SIGSEGV,
        Sig::TERM => libc::SIGTERM,
        Sig::USR1 => libc::SIGUSR1,
        Sig::Custom(n) if n == "USR2" => libc::SIGUSR2,
        Sig::Custom(_) => return None,
    })
}

async fn run_channel(channel: Channel<Msg>, handle: server::Handle, ctx: ChanCtx) {
    let id = channel.id();
    let (mut rd, wr) = channel.split();
    let mut env = Vec::new();
    let cmd = loop {
        match rd.wait().await {
            Some(ChannelMsg::SetEnv {
                variable_name,
                variable_value,
                ..
            }) if accepted_env(&variable_name) => env.push((variable_name, variable_value)),
            Some(ChannelMsg::Exec { command, .. }) => break Some(command),
            Some(ChannelMsg::RequestShell { .. }) => break None,
            None | Some(ChannelMsg::Close) => return,
            Some(_) => {}
        }
    };
    let spawned =
        command(&ctx, cmd.as_deref(), &env).and_then(|c| tokio::process::Command::from(c).spawn());
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let msg = format!(
                "edgefleet lab: cannot start {} on this device: {e}\n",
                ctx.user.shell
            );
            let _ = wr.extended_data_bytes(1, Bytes::from(msg)).await;
            let _ = wr.eof().await;
            let _ = wr.exit_status(255).await;
            let _ = wr.close().await;
            return;
        }
    };
    let pid = child.id().map(|p| p as i32);
    let (Some(stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return;
    };
    let (closed_tx, mut closed_rx) = tokio::sync::oneshot::channel::<()>();
    let input = tokio::spawn(async move {
        let mut stdin = Some(stdin);
        loop {
            match rd.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    if let Some(s) = stdin.as_mut() {
                        if s.write_all(&data).await.is_err() {
                            stdin = None;
                        }
                    }
                }
                Some(ChannelMsg::Eof) => {
                    if let Some(mut s) = stdin.take() {
                        let _ = s.shutdown().await;
                    }
                }
                Some(ChannelMsg::Signal { signal }) => {
                    if let (Some(p), Some(n)) = (pid, signo(&signal)) {
                        // SAFETY: kill(2) on our own child.
                        unsafe { libc::kill(p, n) };
                    }
                }
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            }
        }
        let _ = closed_tx.send(());
    });

    let mut ob = vec![0u8; 32 * 1024];
    let mut eb = vec![0u8; 32 * 1024];
    let (mut out_done, mut err_done) = (false, false);
    let mut client_gone = false;
    while !(out_done && err_done) {
        tokio::select! {
            r = stdout.read(&mut ob), if !out_done => match r {
                Ok(0) | Err(_) => out_done = true,
                Ok(n) => if wr.data_bytes(Bytes::copy_from_slice(&ob[..n])).await.is_err() {
                    client_gone = true;
                    break;
                },
            },
            r = stderr.read(&mut eb), if !err_done => match r {
                Ok(0) | Err(_) => err_done = true,
                Ok(n) => if wr.extended_data_bytes(1, Bytes::copy_from_slice(&eb[..n])).await.is_err() {
                    client_gone = true;
                    break;
                },
            },
            _ = &mut closed_rx => {
                client_gone = true;
                break;
            }
        }
    }
    if client_gone {
        // Like sshd: the pipes close; the command sees EOF / SIGPIPE and is reaped in the background.
        input.abort();
        drop((stdout, stderr));
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        return;
    }
    let status = child.wait().await;
    let _ = wr.eof().await;
    match status {
        Ok(st) => match (st.code(), st.signal()) {
            (Some(c), _) => {
                let _ = wr.exit_status(c as u32).await;
            }
            (None, Some(s)) => {
                let _ = handle
                    .exit_signal_request(
                        id,
                        sig_of(s),
                        st.core_dumped(),
                        String::new(),
                        String::new(),
                    )
                    .await;
            }
            _ => {
                let _ = wr.exit_status(255).await;
            }
        },
        Err(_) => {
            let _ = wr.exit_status(255).await;
        }
    }
    let _ = wr.close().await;
    // The client may still send data or EOF after the close; the input task ends on Close/None.
    input.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back_and_differ() {
        let (k1, p1) = ed25519_keypair("a").unwrap();
        let (_, p2) = ed25519_keypair("b").unwrap();
        assert_ne!(p1, p2);
        let key = PrivateKey::from_openssh(k1.as_bytes()).unwrap();
        assert_eq!(key.public_key().to_openssh().unwrap(), p1);
        assert!(p1.starts_with("ssh-ed25519 "));
        assert!(p1.ends_with(" a"));
    }

    #[test]
    fn users_come_from_the_device_passwd_and_group() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000::/home/admin:/bin/bash\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nsudo:x:27:admin\nadmin:x:1000:\ndocker:x:995:iotedge,admin\n",
        )
        .unwrap();
        let u = lookup_user(d.path(), "admin").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.groups, vec![1000, 27, 995]);
        assert_eq!(u.home, "/home/admin");
        assert!(lookup_user(d.path(), "nobody").is_none());
    }

    #[test]
    fn authorized_keys_match_by_key_not_comment() {
        let d = tempfile::tempdir().unwrap();
        let (_, p) = ed25519_keypair("client").unwrap();
        let (_, other) = ed25519_keypair("other").unwrap();
        std::fs::create_dir_all(d.path().join("root/.ssh")).unwrap();
        let line: Vec<&str> = p.split_whitespace().take(2).collect();
        std::fs::write(
            d.path().join("root/.ssh/authorized_keys"),
            format!("# comment\n{} renamed\n", line.join(" ")),
        )
        .unwrap();
        let u = User {
            name: "root".into(),
            uid: 0,
            gid: 0,
            groups: vec![0],
            home: "/root".into(),
            shell: "/bin/sh".into(),
        };
        assert!(authorized(
            d.path(),
            &u,
            &PublicKey::from_openssh(&p).unwrap()
        ));
        assert!(!authorized(
            d.path(),
            &u,
            &PublicKey::from_openssh(&other).unwrap()
        ));
    }

    #[test]
    fn signals_map_both_ways() {
        for n in [libc::SIGTERM, libc::SIGKILL, libc::SIGHUP, libc::SIGUSR2] {
            assert_eq!(signo(&sig_of(n)), Some(n));
        }
    }
}

/// The embedded server against russh's own client, in-process: the protocol layer (auth, exec, stdin/EOF,
/// stdout/stderr, exit status, exit signal, signals, MaxSessions). The "device" is this process's own
/// namespaces, so no namespace setup is needed (but setns still requires root, as the lab does).
#[cfg(test)]
mod russh_client_tests {
    use super::*;
    use russh::client;
    use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
    use std::os::unix::fs::MetadataExt;

    struct Client(PublicKey);

    impl client::Handler for Client {
        type Error = russh::Error;

        async fn check_server_key(
            &mut self,
            k: &PublicKeyOrCertificate,
        ) -> Result<bool, Self::Error> {
            Ok(
                matches!(k, PublicKeyOrCertificate::PublicKey { key, .. } if key.key_data() == self.0.key_data()),
            )
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        addr: SocketAddr,
        client_key: PrivateKey,
        host_pub: PublicKey,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("root/.ssh")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
        let (ck, cp) = ed25519_keypair("client").unwrap();
        std::fs::write(root.join("root/.ssh/authorized_keys"), format!("{cp}\n")).unwrap();
        let (hk, hp) = ed25519_keypair("host").unwrap();
        std::fs::write(dir.path().join("hostkey"), hk).unwrap();
        let me = std::process::id() as i32;
        let host = Arc::new(DeviceHost {
            root,
            holder_pid: me,
            mnt_ns: std::fs::metadata("/proc/self/ns/mnt").unwrap().ino(),
            conns: Arc::new(ConnRegistry::default()),
            cut_off_when: Default::default(),
        });
        let cfg = server_config(&dir.path().join("hostkey")).unwrap();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(serve(l, cfg, host));
        Fixture {
            _dir: dir,
            addr,
            client_key: PrivateKey::from_openssh(ck.as_bytes()).unwrap(),
            host_pub: PublicKey::from_openssh(&hp).unwrap(),
        }
    }

    async fn connect(f: &Fixture, user: &str) -> (client::Handle<Client>, bool) {
        let cfg = Arc::new(client::Config::default());
        let mut h = client::connect(cfg, f.addr, Client(f.host_pub.clone()))
            .await
            .unwrap();
        let ok = h
            .authenticate_publickey(
                user,
                PrivateKeyWithHashAlg::new(Arc::new(f.client_key.clone()), None),
            )
            .await
            .unwrap()
            .success();
        (h, ok)
    }

    #[derive(Default, Debug)]
    struct Res {
        out: Vec<u8>,
        err: Vec<u8>,
        status: Option<u32>,
        signal: Option<Sig>,
    }

    async fn collect(ch: &mut Channel<client::Msg>) -> Res {
        let mut r = Res::default();
        while let Some(m) = ch.wait().await {
            match m {
                ChannelMsg::Data { data } => r.out.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, ext: 1 } => r.err.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => r.status = Some(exit_status),
                ChannelMsg::ExitSignal { signal_name, .. } => r.signal = Some(signal_name),
                _ => {}
            }
        }
        r
    }

    #[tokio::test]
    async fn exec_streams_and_statuses_like_sshd() {
        let f = fixture().await;
        let (_bad, ok) = connect(&f, "nobody").await;
        assert!(!ok, "unknown users are refused");
        let (h, ok) = connect(&f, "root").await;
        assert!(ok);

        let mut ch = h.channel_open_session().await.unwrap();
        ch.set_env(true, "LANG", "C.UTF-8").await.unwrap();
        ch.set_env(true, "SECRET_THING", "x").await.unwrap();
        ch.exec(true, "echo $LANG ${SECRET_THING:-unset}")
            .await
            .unwrap();
        let r = collect(&mut ch).await;
        assert_eq!(String::from_utf8_lossy(&r.out), "C.UTF-8 unset\n");

        let mut ch = h.channel_open_session().await.unwrap();
        ch.exec(true, "echo out; echo err >&2; echo $USER $HOME; exit 3")
            .await
            .unwrap();
        let r = collect(&mut ch).await;
        assert_eq!(String::from_utf8_lossy(&r.out), "out\nroot /root\n");
        assert_eq!(r.err, b"err\n");
        assert_eq!(r.status, Some(3));

        let mut ch = h.channel_open_session().await.unwrap();
        ch.exec(true, "cat; echo end").await.unwrap();
        let data = vec![b'x'; 300_000];
        ch.data_bytes(Bytes::from(data.clone())).await.unwrap();
        ch.eof().await.unwrap();
        let r = collect(&mut ch).await;
        assert_eq!(r.out.len(), data.len() + 4);
        assert_eq!(r.status, Some(0));

        let mut ch = h.channel_open_session().await.unwrap();
        ch.exec(true, "kill -TERM $$").await.unwrap();
        let r = collect(&mut ch).await;
        assert_eq!(r.status, None);
        assert!(matches!(r.signal, Some(Sig::TERM)), "{:?}", r.signal);

        // A client-sent signal reaches the command.
        let mut ch = h.channel_open_session().await.unwrap();
        ch.exec(true, "echo ready; read x").await.unwrap();
        loop {
            if let Some(ChannelMsg::Data { .. }) = ch.wait().await {
                break;
            }
        }
        ch.signal(Sig::KILL).await.unwrap();
        let r = collect(&mut ch).await;
        assert!(matches!(r.signal, Some(Sig::KILL)), "{:?}", r.signal);
    }

    #[tokio::test]
    async fn at_most_ten_sessions_per_connection_like_debian_sshd() {
        let f = fixture().await;
        let (h, ok) = connect(&f, "root").await;
        assert!(ok);
        let mut open = Vec::new();
        for i in 0..MAX_SESSIONS {
            let mut ch = h.channel_open_session().await.unwrap();
            ch.exec(true, format!("echo {i}; read x; echo got $x"))
                .await
                .unwrap();
            loop {
                if let Some(ChannelMsg::Data { .. }) = ch.wait().await {
                    break;
                }
            }
            open.push(ch);
        }
        assert!(
            h.channel_open_session().await.is_err(),
            "the 11th is refused"
        );
        for ch in &open {
            ch.data_bytes(Bytes::from_static(b"y\n")).await.unwrap();
            ch.eof().await.unwrap();
        }
        for mut ch in open {
            let r = collect(&mut ch).await;
            assert_eq!(String::from_utf8_lossy(&r.out), "got y\n");
            assert_eq!(r.status, Some(0));
        }
        // Slots are released once channels end.
        let mut ch = h.channel_open_session().await.unwrap();
        ch.exec(true, "true").await.unwrap();
        assert_eq!(collect(&mut ch).await.status, Some(0));
    }
}
