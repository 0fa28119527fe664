//! The SSH transport: one russh connection per device per run, a new channel per command.
//!
//! `ssh.rs` and its submodules are edgefleet's only SSH client, and with the lab's embedded server
//! (`lab/embedded.rs`, the server side) the only russh users. This file owns the connector, the run-wide state,
//! connecting (TCP or through a shared jump-host connection, see `jump`) with retries and jittered backoff for
//! refused/reset connects and for connections dropped before authentication got an answer (sshd MaxStartups,
//! an overloaded server), keepalives, and a transparent reconnect when a connection dropped between commands.
//! Host-key checking is in `hostkey` (the file logic in `transport::known_hosts`), authentication in `auth`,
//! running commands in `exec`. It must not know about modules or plays, never re-runs a command that may have
//! started, and never puts a secret in a log, an error or a command line. Warnings (ssh_config lines ignored,
//! host key checking off, an unusable agent...) are collected once each for [`SshConnector::take_warnings`].
//!
//! Identities, in order: ssh-agent keys and certificates (`SSH_AUTH_SOCK` or [`SshOptions::agent_socket`]),
//! then identity files (`ansible_ssh_private_key_file`, `-i`, ssh_config `IdentityFile`; only when none is named,
//! `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`), each preceded by its `<file>-cert.pub` when present, then
//! `ansible_password` (password, then keyboard-interactive). RSA signs with rsa-sha2-512/256 as the server
//! announces. A passphrase-protected key file is decrypted with, in order: `ansible_ssh_private_key_passphrase`,
//! the `EDGEFLEET_SSH_PASSPHRASE` environment variable, or a prompt on the terminal (once per key file per run);
//! without any of them the device fails with an error saying exactly that. Decrypted keys are cached per run.
//! Each device has at most [`SshOptions::max_channels`] commands in flight per connection. When the run takes
//! a lock ([`SshOptions::run_lock`]), one more channel holds it for the connection's lifetime (`lock`), and no
//! command runs before the lock is held.

mod auth;
mod exec;
mod hostkey;
mod jump;
mod lock;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex as StdMutex, RwLock};
use std::time::{Duration, Instant};

use russh::client::{self, Handle};
use russh::Disconnect;
use tokio::sync::{Mutex as AsyncMutex, OnceCell, OwnedSemaphorePermit, Semaphore};

use self::auth::{Agent, KeyCell};
use self::hostkey::{ClientHandler, HandlerError};
use self::jump::Bastion;
use super::known_hosts::KnownHostsFile;
use super::ssh_config::SshConfig;
use super::ssh_target::Resolver;
pub use super::ssh_target::{HostKeyPolicy, SshOptions, Target};
use super::{ConnSpec, Stats, Transport, TransportError};

/// The environment variable holding a passphrase for encrypted identity files when no inventory variable does.
pub const PASSPHRASE_ENV: &str = "EDGEFLEET_SSH_PASSPHRASE";

type Conn = Handle<ClientHandler>;

/// Run-wide state shared by every connection.
struct Shared {
    opts: SshOptions,
    configs: StdMutex<HashMap<PathBuf, Arc<SshConfig>>>,
    known: RwLock<HashMap<PathBuf, Arc<KnownHostsFile>>>,
    keys: StdMutex<HashMap<PathBuf, KeyCell>>,
    agent: OnceCell<Option<Arc<Agent>>>,
    bastions: StdMutex<HashMap<String, Arc<Bastion>>>,
    warnings: StdMutex<Vec<(Option<String>, String)>>,
    warned: StdMutex<HashSet<String>>,
    /// Run-wide bound on handshakes in progress (see `SshOptions::max_handshakes`).
    handshake_slots: Arc<Semaphore>,
}

/// Creates SSH connections for a run. Create once from the run-wide options and share it by all devices.
#[derive(Clone)]
pub struct SshConnector {
    shared: Arc<Shared>,
}

/// A live SSH connection to one device (see [`Transport`]).
pub struct SshTransport {
    name: String,
    target: Arc<Target>,
    shared: Arc<Shared>,
    conn: AsyncMutex<Option<Arc<Conn>>>,
    /// The run lock held on the current connection (see `lock`), when the run takes one.
    lock: AsyncMutex<Option<lock::Hold>>,
    slots: Semaphore,
    stats: Stats,
}

/// How one connection attempt ended when it did not give a connection.
enum Attempt {
    /// Worth retrying (refused, reset during banner/kex: sshd MaxStartups; dropped before authentication got an
    /// answer).
    Retry(String),
    /// Final.
    Fatal(TransportError),
}

fn io_retryable(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionReset | ConnectionAborted | UnexpectedEof | BrokenPipe
    )
}

fn classify(t: &Target, e: HandlerError) -> Attempt {
    match e {
        HandlerError::HostKey(m) => Attempt::Fatal(TransportError::HostKey(m)),
        HandlerError::Ssh(e) => match &e {
            russh::Error::Disconnect | russh::Error::HUP => Attempt::Retry(
                "the server closed the connection during the handshake (sshd MaxStartups, or not an SSH server?)"
                    .into(),
            ),
            russh::Error::IO(io) if io_retryable(io) => Attempt::Retry(io.to_string()),
            russh::Error::NoCommonAlgo { .. } => Attempt::Fatal(TransportError::Connect {
                addr: t.addr(),
                reason: format!("no algorithm in common with the server: {e}"),
            }),
            _ => Attempt::Fatal(TransportError::Connect {
                addr: t.addr(),
                reason: format!("SSH handshake failed: {e}"),
            }),
        },
    }
}

impl Shared {
    fn warn_once(&self, key: String, host: Option<&str>, msg: String) {
        let first = self
            .warned
            .lock()
            .map(|mut w| w.insert(key))
            .unwrap_or(false);
        if first {
            if let Ok(mut w) = self.warnings.lock() {
                w.push((host.map(str::to_string), msg));
            }
        }
    }

    fn load_config(
        &self,
        files: &[(PathBuf, bool)],
    ) -> Result<Arc<SshConfig>, super::ssh_config::SshConfigError> {
        let key: PathBuf = files
            .iter()
            .map(|(p, _)| p.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("\n")
            .into();
        if let Some(c) = self.configs.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(c);
        }
        let mut merged = SshConfig::default();
        for (path, system) in files {
            let c = if *system {
                SshConfig::load_system(path)?
            } else {
                SshConfig::load(path)?
            };
            merged.extend(c);
        }
        for w in &merged.warnings {
            self.warn_once(format!("cfg:{w}"), None, w.clone());
        }
        let c = Arc::new(merged);
        if let Ok(mut m) = self.configs.lock() {
            m.insert(key, c.clone());
        }
        Ok(c)
    }

    /// One TCP/tunnel + SSH handshake (host key checked). The permit, for jumps, bounds handshakes per bastion.
    async fn handshake(
        self: &Arc<Self>,
        t: &Arc<Target>,
    ) -> Result<(Conn, Option<OwnedSemaphorePermit>), Attempt> {
        let config = self.client_config(t);
        let handler = ClientHandler {
            shared: self.clone(),
            target: t.clone(),
        };
        match &t.jump {
            None => {
                let tcp = tokio::net::TcpStream::connect((t.hostname.as_str(), t.port))
                    .await
                    .map_err(|e| {
                        if io_retryable(&e) {
                            Attempt::Retry(e.to_string())
                        } else {
                            Attempt::Fatal(TransportError::Connect {
                                addr: t.addr(),
                                reason: e.to_string(),
                            })
                        }
                    })?;
                let _ = tcp.set_nodelay(true);
                let h = client::connect_stream(config, tcp, handler)
                    .await
                    .map_err(|e| classify(t, e))?;
                Ok((h, None))
            }
            Some(j) => {
                let (stream, permit) = self.tunnel(j, t).await?;
                let h = client::connect_stream(config, stream, handler)
                    .await
                    .map_err(|e| classify(t, e))?;
                Ok((h, Some(permit)))
            }
        }
    }

    /// Connect and authenticate, retrying refused/reset attempts and connections dropped before authentication
    /// got an answer, with jittered backoff inside the timeout.
    fn open<'a>(
        self: &'a Arc<Self>,
        t: &'a Arc<Target>,
    ) -> Pin<Box<dyn Future<Output = Result<Conn, TransportError>> + Send + 'a>> {
        Box::pin(async move {
            // Held until authentication is over; the connect timeout starts once a slot is ours.
            let _slot = self.handshake_slots.clone().acquire_owned().await.ok();
            let deadline = Instant::now() + t.connect_timeout;
            let mut attempt = 0u32;
            loop {
                attempt += 1;
                let remaining = deadline.saturating_duration_since(Instant::now());
                let why = match tokio::time::timeout(remaining, self.handshake(t)).await {
                    Err(_) => {
                        return Err(TransportError::Connect {
                            addr: t.addr(),
                            reason: format!(
                                "timed out after {:?} (no answer to the SSH handshake: is the device up, and is \
                                 {} its SSH port?)",
                                t.connect_timeout, t.port
                            ),
                        })
                    }
                    Ok(Err(Attempt::Fatal(e))) => return Err(e),
                    Ok(Err(Attempt::Retry(why))) => why,
                    Ok(Ok((mut h, permit))) => {
                        let auth =
                            tokio::time::timeout(t.connect_timeout, self.authenticate(&mut h, t))
                                .await;
                        drop(permit);
                        match auth {
                            Ok(Ok(())) => return Ok(h),
                            Ok(Err(Attempt::Retry(why))) => why,
                            Ok(Err(Attempt::Fatal(e))) => {
                                let _ = h.disconnect(Disconnect::ByApplication, "", "en").await;
                                return Err(e);
                            }
                            Err(_) => {
                                return Err(TransportError::Auth {
                                    user: t.user.clone(),
                                    addr: t.addr(),
                                    reason: format!(
                                        "authentication did not finish within {:?}",
                                        t.connect_timeout
                                    ),
                                })
                            }
                        }
                    }
                };
                let backoff_ms = (100u64 << attempt.min(5)).min(2000);
                let jittered = Duration::from_millis(
                    backoff_ms / 2 + rand::random::<u64>() % (backoff_ms / 2 + 1),
                );
                // A refused connection means nothing listens (device down or rebooting): a couple of quick
                // retries, not the full budget that sshd's MaxStartups resets deserve.
                let max_attempts = if why.to_ascii_lowercase().contains("refused") {
                    self.opts.connect_attempts.clamp(1, 3)
                } else {
                    self.opts.connect_attempts.max(1)
                };
                if attempt >= max_attempts || Instant::now() + jittered >= deadline {
                    return Err(TransportError::Connect {
                        addr: t.addr(),
                        reason: format!("{why} (gave up after {attempt} attempts)"),
                    });
                }
                tokio::time::sleep(jittered).await;
            }
        })
    }
}

/// One open connection per device for the whole run means thousands of sockets: lift the soft
/// `RLIMIT_NOFILE` (often 1024) to the hard limit, once per process.
fn raise_nofile_limit() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        // SAFETY: getrlimit/setrlimit on a plain struct we own.
        unsafe {
            let mut r: libc::rlimit = std::mem::zeroed();
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
                r.rlim_cur = r.rlim_max.min(1 << 20);
                let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &r);
            }
        }
    });
}

impl SshConnector {
    /// A connector for one run. Nothing is read or contacted until the first [`SshConnector::connect`].
    pub fn new(opts: SshOptions) -> Self {
        raise_nofile_limit();
        let slots = opts.max_handshakes.max(1);
        SshConnector {
            shared: Arc::new(Shared {
                opts,
                configs: StdMutex::new(HashMap::new()),
                known: RwLock::new(HashMap::new()),
                keys: StdMutex::new(HashMap::new()),
                agent: OnceCell::new(),
                bastions: StdMutex::new(HashMap::new()),
                warnings: StdMutex::new(Vec::new()),
                warned: StdMutex::new(HashSet::new()),
                handshake_slots: Arc::new(Semaphore::new(slots)),
            }),
        }
    }

    /// Resolve where and how `spec` is reached (ssh_config, args, options), without connecting.
    pub fn resolve(&self, spec: &ConnSpec) -> Result<Target, TransportError> {
        let load = |f: &[(PathBuf, bool)]| self.shared.load_config(f);
        let r = Resolver {
            opts: &self.shared.opts,
            config: &load,
        };
        r.device(spec).map_err(TransportError::Other)
    }

    /// Connect to and authenticate with one device. Errors say what to do; they never contain secrets.
    pub async fn connect(&self, spec: &ConnSpec) -> Result<Arc<dyn Transport>, TransportError> {
        Ok(self.connect_ssh(spec).await?)
    }

    /// [`SshConnector::connect`], returning the concrete type.
    pub async fn connect_ssh(&self, spec: &ConnSpec) -> Result<Arc<SshTransport>, TransportError> {
        for s in [
            &spec.password,
            &spec.private_key_passphrase,
            &spec.become_password,
        ]
        .into_iter()
        .flatten()
        {
            crate::redact::register(s);
        }
        let target = Arc::new(self.resolve(spec)?);
        if !target.ignored_args.is_empty() {
            let a = target.ignored_args.join(" ");
            self.shared.warn_once(
                format!("args:{a}"),
                Some(&spec.name),
                format!("ignoring ssh arguments edgefleet does not use: {a}"),
            );
        }
        let h = Arc::new(self.shared.open(&target).await?);
        let mut t = SshTransport {
            name: spec.name.clone(),
            target,
            shared: self.shared.clone(),
            conn: AsyncMutex::new(Some(h.clone())),
            lock: AsyncMutex::new(None),
            slots: Semaphore::new(self.shared.opts.max_channels.max(1)),
            stats: Stats::default(),
        };
        // Start taking the run lock now; the first command waits for it (`lock`).
        *t.lock.get_mut() = t.start_lock(&h);
        t.stats.connects.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(t))
    }

    /// Warnings collected so far (host, message), each reported once per run; drains the list.
    pub fn take_warnings(&self) -> Vec<(Option<String>, String)> {
        self.shared
            .warnings
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl super::Connector for SshConnector {
    async fn connect(&self, spec: &ConnSpec) -> Result<super::SharedTransport, TransportError> {
        SshConnector::connect(self, spec).await
    }

    fn take_warnings(&self) -> Vec<(Option<String>, String)> {
        SshConnector::take_warnings(self)
    }
}

impl SshTransport {
    /// The resolved target (address, user, jump chain...).
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The current connection; reconnects (once per call) when the previous one was dropped.
    async fn handle(&self) -> Result<Arc<Conn>, TransportError> {
        let mut g = self.conn.lock().await;
        if let Some(h) = &*g {
            if !h.is_closed() {
                return Ok(h.clone());
            }
        }
        *g = None;
        let h = Arc::new(self.shared.open(&self.target).await?);
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        *g = Some(h.clone());
        Ok(h)
    }
}
