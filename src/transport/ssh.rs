//! The SSH transport: one russh connection per device per run, a new channel per command.
//!
//! Owns everything that touches russh (this is the only module that imports it): connecting (TCP or through
//! shared ProxyJump connections), host-key verification (delegating the file logic to `known_hosts`),
//! authentication in OpenSSH's order (ssh-agent, identity files with passphrases, password), retries with
//! jittered backoff for refused/reset connects, keepalives, per-command timeouts, at most
//! [`SshOptions::max_channels`] commands in flight per connection, and a transparent reconnect when a
//! connection dropped between commands. It must not know about modules or plays, never re-runs a command
//! that may have started, and never puts a secret in a log, an error or a command line.
//!
//! Identities, in order: ssh-agent keys and certificates (`SSH_AUTH_SOCK` or [`SshOptions::agent_socket`]),
//! then identity files (`ansible_ssh_private_key_file`, `-i`, ssh_config `IdentityFile`; only when none is named,
//! `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`), each preceded by its `<file>-cert.pub` when present, then
//! `ansible_password` (password, then keyboard-interactive). RSA signs with rsa-sha2-512/256 as the server
//! announces. A passphrase-protected key file is decrypted with, in order: `ansible_ssh_private_key_passphrase`,
//! the `EDGEFLEET_SSH_PASSPHRASE` environment variable, or a prompt on the terminal (once per key file per run);
//! without any of them the device fails with an error saying exactly that. Decrypted keys are cached per run.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex as StdMutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use russh::client::{self, Handle};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{
    Algorithm, Certificate, HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyBase64,
};
use russh::{ChannelMsg, Disconnect, MethodKind, MethodSet, Sig};
use tokio::net::UnixStream;
use tokio::sync::{Mutex as AsyncMutex, OnceCell, OwnedSemaphorePermit, Semaphore};

use super::known_hosts::{self, Appended, CertInfo, KnownHosts, KnownHostsFile, Verdict};
use super::ssh_config::SshConfig;
use super::ssh_target::Resolver;
pub use super::ssh_target::{HostKeyPolicy, SshOptions, Target};
use super::{
    become_error, frame, unframe, ConnSpec, Exec, ExitStatus, Output, Stats, Transport,
    TransportError,
};
use crate::report::StatsSnapshot;

/// The environment variable holding a passphrase for encrypted identity files when no inventory variable does.
pub const PASSPHRASE_ENV: &str = "EDGEFLEET_SSH_PASSPHRASE";

/// What went wrong inside a russh callback (the host-key check is ours, the rest is russh's).
#[derive(Debug, thiserror::Error)]
enum HandlerError {
    /// A protocol or I/O error.
    #[error(transparent)]
    Ssh(#[from] russh::Error),
    /// The host key was refused: the message says why and what to do.
    #[error("{0}")]
    HostKey(String),
}

/// The russh callbacks for one connection: host-key verification.
struct ClientHandler {
    shared: Arc<Shared>,
    target: Arc<Target>,
}

impl client::Handler for ClientHandler {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        self.shared
            .check_host_key(&self.target, key)
            .await
            .map(|_| true)
            .map_err(HandlerError::HostKey)
    }
}

type Conn = Handle<ClientHandler>;

/// Why a key file could not be used.
#[derive(Debug, Clone)]
enum KeyProblem {
    Missing,
    NeedsPassphrase,
    WrongPassphrase,
    Invalid(String),
}

impl std::fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyProblem::Missing => write!(f, "file not found"),
            KeyProblem::NeedsPassphrase => write!(
                f,
                "passphrase-protected and no passphrase given: set ansible_ssh_private_key_passphrase (in an \
                 age-encrypted vars file), or export {PASSPHRASE_ENV}, or add the key to ssh-agent (ssh-add), \
                 or run from a terminal to be asked once"
            ),
            KeyProblem::WrongPassphrase => write!(f, "the passphrase does not decrypt it"),
            KeyProblem::Invalid(why) => write!(f, "not a usable private key ({why})"),
        }
    }
}

struct Agent {
    client: Arc<AsyncMutex<AgentClient<UnixStream>>>,
    /// Plain keys and OpenSSH user certificates, in the agent's order.
    ids: Vec<AgentIdentity>,
}

/// Signs through the shared agent connection, locking it only for the signature itself.
struct AgentSigner(Arc<AsyncMutex<AgentClient<UnixStream>>>);

#[derive(Debug, thiserror::Error)]
enum AgentSignError {
    #[error("the SSH connection closed during authentication")]
    Send(#[from] russh::SendError),
    #[error("ssh-agent refused to sign: {0}")]
    Agent(String),
}

impl russh::Signer for AgentSigner {
    type Error = AgentSignError;

    #[allow(clippy::manual_async_fn)]
    fn auth_sign(
        &mut self,
        key: &AgentIdentity,
        hash_alg: Option<HashAlg>,
        to_sign: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, Self::Error>> + Send {
        let client = self.0.clone();
        let key = key.clone();
        async move {
            let mut c = client.lock().await;
            c.sign_request(&key, hash_alg, to_sign)
                .await
                .map_err(|e| AgentSignError::Agent(e.to_string()))
        }
    }
}

/// One connection to a jump host, shared by every device behind it.
struct Bastion {
    target: Arc<Target>,
    conn: AsyncMutex<Option<Arc<Conn>>>,
    /// A recent failure, returned at once to the devices queued behind it.
    failed: StdMutex<Option<(Instant, TransportError)>>,
    handshakes: Arc<Semaphore>,
}

type KeyCell = Arc<OnceCell<Result<Arc<PrivateKey>, KeyProblem>>>;

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
    slots: Semaphore,
    stats: Stats,
}

enum Attempt {
    /// Worth retrying (refused, reset during banner/kex: sshd MaxStartups).
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

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn key_blob(k: &PublicKey) -> Vec<u8> {
    k.public_key_bytes()
}

fn cert_info(cert: &Certificate) -> CertInfo {
    CertInfo {
        ca_blob: key_blob(&PublicKey::new(cert.signature_key().clone(), "")),
        key_blob: key_blob(&PublicKey::new(cert.public_key().clone(), "")),
        signature_valid: cert.verify_signature().is_ok(),
        is_host: cert.cert_type() == russh::keys::ssh_key::certificate::CertType::Host,
        principals: cert.valid_principals().to_vec(),
        valid_after: cert.valid_after(),
        valid_before: cert.valid_before(),
        critical_options: cert.critical_options().0.keys().cloned().collect(),
    }
}

fn signal_name(s: &Sig) -> String {
    match s {
        Sig::ABRT => "ABRT",
        Sig::ALRM => "ALRM",
        Sig::FPE => "FPE",
        Sig::HUP => "HUP",
        Sig::ILL => "ILL",
        Sig::INT => "INT",
        Sig::KILL => "KILL",
        Sig::PIPE => "PIPE",
        Sig::QUIT => "QUIT",
        Sig::SEGV => "SEGV",
        Sig::TERM => "TERM",
        Sig::USR1 => "USR1",
        Sig::Custom(c) => return c.clone(),
    }
    .to_string()
}

fn methods_text(m: &MethodSet) -> String {
    if m.is_empty() {
        return "nothing more".into();
    }
    m.iter().map(<&str>::from).collect::<Vec<_>>().join(", ")
}

/// Ask on the controlling terminal without echo. `None` when there is no terminal.
fn prompt_tty(prompt: &str) -> Option<String> {
    use std::io::{BufRead, Write};
    static PROMPT: StdMutex<()> = StdMutex::new(());
    let _g = PROMPT.lock().unwrap_or_else(|p| p.into_inner());
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it for a descriptor we own.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
        return None;
    }
    let old = term;
    term.c_lflag &= !libc::ECHO;
    term.c_lflag |= libc::ECHONL;
    // SAFETY: valid descriptor and termios value.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) };
    let mut w = &tty;
    let _ = w.write_all(prompt.as_bytes());
    let _ = w.flush();
    let mut line = String::new();
    let r = std::io::BufReader::new(&tty).read_line(&mut line);
    // SAFETY: restores the settings read above.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &old) };
    r.ok()?;
    Some(line.trim_end_matches(['\n', '\r']).to_string())
}

fn decode_key(text: &str, pass: Option<&str>) -> Result<PrivateKey, KeyProblem> {
    match russh::keys::decode_secret_key(text, pass) {
        Ok(k) => Ok(k),
        Err(russh::keys::Error::KeyIsEncrypted) => Err(KeyProblem::NeedsPassphrase),
        Err(_) if pass.is_none() && text.contains("ENCRYPTED") => Err(KeyProblem::NeedsPassphrase),
        Err(_) if pass.is_some() => Err(KeyProblem::WrongPassphrase),
        Err(e) => Err(KeyProblem::Invalid(e.to_string())),
    }
}

/// Load (and decrypt) one private key file; blocking (bcrypt KDF), run on the blocking pool.
fn load_key_blocking(
    path: &Path,
    passphrase: Option<&str>,
    prompt: bool,
) -> Result<PrivateKey, KeyProblem> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(KeyProblem::Missing),
        Err(e) => return Err(KeyProblem::Invalid(e.to_string())),
    };
    match decode_key(&text, None) {
        Err(KeyProblem::NeedsPassphrase) => {}
        other => return other,
    }
    if let Some(p) = passphrase {
        return decode_key(&text, Some(p));
    }
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        crate::redact::register(&p);
        return decode_key(&text, Some(&p));
    }
    if prompt {
        for _ in 0..3 {
            let Some(p) = prompt_tty(&format!("Enter passphrase for key {}: ", path.display()))
            else {
                break;
            };
            crate::redact::register(&p);
            match decode_key(&text, Some(&p)) {
                Err(KeyProblem::WrongPassphrase) => continue,
                other => return other,
            }
        }
    }
    Err(KeyProblem::NeedsPassphrase)
}

impl Shared {
    fn warn_once(&self, key: String, host: Option<&str>, msg: String) {
        let first = self
            .warned
            .lock()
            .map(|mut w| w.insert(key))
            .unwrap_or(false);
        if first {
            tracing::warn!("{msg}");
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

    fn known_file(&self, path: &Path) -> Arc<KnownHostsFile> {
        if let Some(f) = self.known.read().ok().and_then(|m| m.get(path).cloned()) {
            return f;
        }
        let f = match KnownHostsFile::load(path) {
            Ok(f) => f,
            Err(e) => {
                self.warn_once(format!("kh:{}", path.display()), None, e.to_string());
                KnownHostsFile::parse(path, "")
            }
        };
        for (line, why) in &f.skipped {
            self.warn_once(
                format!("khl:{}:{line}", path.display()),
                None,
                format!("{}:{line}: ignored known_hosts line: {why}", path.display()),
            );
        }
        let f = Arc::new(f);
        if let Ok(mut m) = self.known.write() {
            m.entry(path.to_path_buf()).or_insert_with(|| f.clone());
        }
        f
    }

    fn known_hosts(&self, t: &Target) -> KnownHosts {
        KnownHosts {
            files: t
                .user_known_hosts
                .iter()
                .chain(t.global_known_hosts.iter())
                .map(|p| self.known_file(p))
                .collect(),
        }
    }

    fn client_config(&self, t: &Target) -> Arc<client::Config> {
        let kh = self.known_hosts(t);
        let names = t.known_hosts_names();
        let mut preferred = russh::Preferred::default();
        let known = kh.known_types(&names);
        if !known.is_empty() {
            // Like OpenSSH: ask first for the key types we already know for this host.
            let is_known = |a: &Algorithm| {
                known.iter().any(|k| {
                    (k == "ssh-rsa" && matches!(a, Algorithm::Rsa { .. })) || a.as_str() == k
                })
            };
            let mut keys: Vec<Algorithm> = preferred
                .key
                .iter()
                .filter(|a| is_known(a))
                .cloned()
                .collect();
            keys.extend(preferred.key.iter().filter(|a| !is_known(a)).cloned());
            preferred.key = Cow::Owned(keys);
        }
        if kh.has_cert_authority(&names) {
            preferred.host_key_certificates = Cow::Owned(preferred.key.to_vec());
        }
        Arc::new(client::Config {
            keepalive_interval: t.keepalive.0,
            keepalive_max: t.keepalive.1,
            nodelay: true,
            preferred,
            ..Default::default()
        })
    }

    async fn check_host_key(
        &self,
        t: &Target,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<(), String> {
        let names = t.known_hosts_names();
        let lookup = names.first().cloned().unwrap_or_default();
        if t.policy == HostKeyPolicy::Off {
            // Once per place that turned it off (an inventory group, a config line), not once per device.
            self.warn_once(
                format!("off:{}", t.policy_source.as_deref().unwrap_or("?")),
                Some(&t.name),
                format!(
                    "WARNING: host key checking is OFF for {} ({lookup}){} and every host configured the same way: \
                     edgefleet cannot tell these devices from impostors. Remove ansible_ssh_host_key_checking=false / \
                     StrictHostKeyChecking=no and use --host-key-policy accept-new instead.",
                    t.name,
                    t.policy_source
                        .as_deref()
                        .map(|s| format!(", set in {s}"))
                        .unwrap_or_default()
                ),
            );
            return Ok(());
        }
        let kh = self.known_hosts(t);
        let mut cert_note = None;
        let blob = match key {
            russh::keys::PublicKeyOrCertificate::Certificate(cert) => {
                let info = cert_info(cert);
                match kh.check_cert(&names, t.principal(), &info, unix_now()) {
                    Ok(Verdict::Trusted(_)) => return Ok(()),
                    Ok(Verdict::Revoked(l)) => {
                        return Err(format!(
                            "the host certificate of {} ({lookup}) or its CA is marked @revoked at {l}; refusing to connect",
                            t.name
                        ))
                    }
                    Ok(_) => {}
                    Err(why) => cert_note = Some(why),
                }
                info.key_blob
            }
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key_blob(key),
        };
        let ktype = known_hosts::blob_key_type(&blob).unwrap_or_default();
        let fp = known_hosts::fingerprint(&blob);
        let files = t
            .user_known_hosts
            .iter()
            .chain(t.global_known_hosts.iter())
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let cert_text = cert_note
            .map(|n| format!(" (its host certificate was not accepted: {n})"))
            .unwrap_or_default();
        match kh.check_key(&names, &blob) {
            Verdict::Trusted(_) => Ok(()),
            Verdict::Revoked(l) => Err(format!(
                "the host key of {} ({lookup}, {ktype} {fp}) is marked @revoked at {l}; refusing to connect",
                t.name
            )),
            Verdict::Changed(l) => Err(changed_message(t, &lookup, &ktype, &fp, &l)),
            Verdict::OtherTypes(l, types) => Err(format!(
                "host key for {} ({lookup}) not trusted: the server offered {ktype} {fp}, but {l} records only {} \
                 key(s) for it. If the device really changed its key type, remove the old line \
                 (ssh-keygen -R '{lookup}' -f {}) and connect again with --host-key-policy accept-new",
                t.name,
                types.join(", "),
                l.path.display()
            )),
            Verdict::Unknown => match t.policy {
                HostKeyPolicy::AcceptNew => self.record_new(t, &names, blob, &lookup, &ktype, &fp).await,
                _ => Err(format!(
                    "unknown host key for {} ({lookup}): {ktype} {fp}{cert_text}; it is not in {files}. \
                     Check the fingerprint on the device (ssh-keygen -lf /etc/ssh/ssh_host_{}_key.pub) and \
                     add it, or run with --host-key-policy accept-new to record new devices on first contact",
                    t.name,
                    ktype.trim_start_matches("ssh-").split('-').next().unwrap_or("ed25519")
                )),
            },
        }
    }

    async fn record_new(
        &self,
        t: &Target,
        names: &[String],
        blob: Vec<u8>,
        lookup: &str,
        ktype: &str,
        fp: &str,
    ) -> Result<(), String> {
        let Some(path) = t.user_known_hosts.first().cloned() else {
            return Err(format!(
                "unknown host key for {} and no known_hosts file to record it in",
                t.name
            ));
        };
        let (hashed, names2, path2) = (t.hash_known_hosts, names.to_vec(), path.clone());
        let res = tokio::task::spawn_blocking(move || {
            known_hosts::append_new(&path2, &names2, &blob, hashed)
        })
        .await
        .map_err(|e| format!("recording the host key failed: {e}"))?;
        let (appended, fresh) = res.map_err(|e| e.to_string())?;
        if let Ok(mut m) = self.known.write() {
            m.insert(path.clone(), Arc::new(fresh));
        }
        match appended {
            Appended::Added(l) => {
                tracing::info!(
                    "recorded new host key for {} ({lookup}) {ktype} {fp} at {l}",
                    t.name
                );
                Ok(())
            }
            Appended::AlreadyThere(Verdict::Trusted(_)) => Ok(()),
            Appended::AlreadyThere(Verdict::Changed(l)) => {
                Err(changed_message(t, lookup, ktype, fp, &l))
            }
            Appended::AlreadyThere(v) => Err(format!(
                "host key for {} ({lookup}) not recorded: {} says {v:?}",
                t.name,
                path.display()
            )),
        }
    }

    async fn agent(&self) -> Option<Arc<Agent>> {
        if !self.opts.use_agent {
            return None;
        }
        self.agent
            .get_or_init(|| async {
                let sock = self
                    .opts
                    .agent_socket
                    .clone()
                    .or_else(|| std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from))?;
                let mut c = match AgentClient::connect_uds(&sock).await {
                    Ok(c) => c,
                    Err(e) => {
                        self.warn_once(
                            "agent".into(),
                            None,
                            format!("cannot use ssh-agent (SSH_AUTH_SOCK): {e}"),
                        );
                        return None;
                    }
                };
                let ids = match c.request_identities().await {
                    Ok(ids) => ids,
                    Err(e) => {
                        self.warn_once(
                            "agent".into(),
                            None,
                            format!("ssh-agent did not list its keys: {e}"),
                        );
                        return None;
                    }
                };
                Some(Arc::new(Agent {
                    client: Arc::new(AsyncMutex::new(c)),
                    ids,
                }))
            })
            .await
            .clone()
    }

    async fn load_key(
        &self,
        path: &Path,
        passphrase: Option<&str>,
    ) -> Result<Arc<PrivateKey>, KeyProblem> {
        let cell = {
            let mut m = self
                .keys
                .lock()
                .map_err(|_| KeyProblem::Invalid("key cache poisoned".into()))?;
            m.entry(path.to_path_buf()).or_default().clone()
        };
        let prompt = self.opts.prompt_passphrase;
        cell.get_or_init(|| async {
            let (p, pass) = (path.to_path_buf(), passphrase.map(str::to_string));
            tokio::task::spawn_blocking(move || {
                load_key_blocking(&p, pass.as_deref(), prompt).map(Arc::new)
            })
            .await
            .unwrap_or_else(|e| Err(KeyProblem::Invalid(e.to_string())))
        })
        .await
        .clone()
    }

    async fn authenticate(&self, h: &mut Conn, t: &Target) -> Result<(), TransportError> {
        let auth_err = |reason: String| TransportError::Auth {
            user: t.user.clone(),
            addr: t.addr(),
            reason,
        };
        let lost = |e: &dyn std::fmt::Display| {
            TransportError::Disconnected(format!(
                "{} dropped the connection during authentication: {e} (too many keys offered? sshd's \
                 MaxAuthTries is 6 by default: set IdentitiesOnly yes in ssh_config, or name the key with \
                 ansible_ssh_private_key_file)",
                t.addr()
            ))
        };
        let mut tried: Vec<String> = Vec::new();
        let mut offered: Vec<Vec<u8>> = Vec::new();
        let mut methods: Option<MethodSet> = None;
        let mut rsa: Option<Option<HashAlg>> = None;
        async fn rsa_hash(h: &Conn, cache: &mut Option<Option<HashAlg>>) -> Option<HashAlg> {
            if cache.is_none() {
                // rsa-sha2-512/256 as the server announces (server-sig-algs); SHA-256 when it says nothing.
                let best = match h.best_supported_rsa_hash().await {
                    Ok(Some(alg)) => alg,
                    _ => Some(HashAlg::Sha256),
                };
                *cache = Some(best);
            }
            cache.flatten()
        }
        let file_pubs: Vec<Vec<u8>> = if t.identities_only {
            t.identities
                .iter()
                .filter_map(|p| {
                    let mut pubp = p.clone().into_os_string();
                    pubp.push(".pub");
                    russh::keys::load_public_key(PathBuf::from(pubp))
                        .ok()
                        .map(|k| key_blob(&k))
                })
                .collect()
        } else {
            vec![]
        };
        if let Some(agent) = self.agent().await {
            let mut n = 0;
            for id in &agent.ids {
                let (blob, is_rsa, cert) = match id {
                    AgentIdentity::PublicKey { key, .. } => {
                        (key_blob(key), key.algorithm().is_rsa(), None)
                    }
                    AgentIdentity::Certificate { certificate, .. } => (
                        key_blob(&PublicKey::new(certificate.public_key().clone(), "")),
                        certificate.algorithm().is_rsa(),
                        Some(certificate.clone()),
                    ),
                };
                if t.identities_only && !file_pubs.contains(&blob) {
                    continue;
                }
                let hash = if is_rsa {
                    rsa_hash(h, &mut rsa).await
                } else {
                    None
                };
                let mut signer = AgentSigner(agent.client.clone());
                n += 1;
                let res = match (cert, id) {
                    (Some(c), _) => {
                        h.authenticate_certificate_with(t.user.clone(), c, hash, &mut signer)
                            .await
                    }
                    (None, AgentIdentity::PublicKey { key, .. }) => {
                        offered.push(blob);
                        h.authenticate_publickey_with(
                            t.user.clone(),
                            key.clone(),
                            hash,
                            &mut signer,
                        )
                        .await
                    }
                    (None, AgentIdentity::Certificate { .. }) => continue,
                };
                match res {
                    Ok(russh::client::AuthResult::Success) => return Ok(()),
                    Ok(russh::client::AuthResult::Failure {
                        remaining_methods, ..
                    }) => methods = Some(remaining_methods),
                    Err(AgentSignError::Send(e)) => return Err(lost(&e)),
                    Err(e) => tried.push(e.to_string()),
                }
                if h.is_closed() {
                    return Err(lost(&"closed"));
                }
            }
            if n > 0 {
                tried.push(format!("{n} ssh-agent identit(y/ies) (rejected)"));
            }
        }
        for path in &t.identities {
            match self.load_key(path, t.passphrase.as_deref()).await {
                Ok(key) => {
                    // Like OpenSSH: `<key>-cert.pub` beside the key is offered first.
                    let mut cert_path = path.clone().into_os_string();
                    cert_path.push("-cert.pub");
                    if let Ok(cert) = russh::keys::load_openssh_certificate(Path::new(&cert_path)) {
                        match h
                            .authenticate_openssh_cert(t.user.clone(), key.clone(), cert)
                            .await
                        {
                            Ok(russh::client::AuthResult::Success) => return Ok(()),
                            Ok(russh::client::AuthResult::Failure {
                                remaining_methods, ..
                            }) => {
                                methods = Some(remaining_methods);
                                tried.push(format!(
                                    "{} (certificate rejected)",
                                    Path::new(&cert_path).display()
                                ));
                            }
                            Err(e) => return Err(lost(&e)),
                        }
                    }
                    let blob = key_blob(key.public_key());
                    if offered.contains(&blob) {
                        continue;
                    }
                    offered.push(blob);
                    let hash = if key.algorithm().is_rsa() {
                        rsa_hash(h, &mut rsa).await
                    } else {
                        None
                    };
                    match h
                        .authenticate_publickey(
                            t.user.clone(),
                            PrivateKeyWithHashAlg::new(key, hash),
                        )
                        .await
                    {
                        Ok(russh::client::AuthResult::Success) => return Ok(()),
                        Ok(russh::client::AuthResult::Failure {
                            remaining_methods, ..
                        }) => {
                            methods = Some(remaining_methods);
                            tried.push(format!("{} (rejected)", path.display()));
                        }
                        Err(e) => return Err(lost(&e)),
                    }
                }
                Err(KeyProblem::Missing) if !t.identities_explicit => {}
                Err(p) => tried.push(format!("{}: {p}", path.display())),
            }
        }
        if let Some(pw) = &t.password {
            let can =
                |m: &Option<MethodSet>, k: MethodKind| m.as_ref().is_none_or(|m| m.contains(&k));
            if can(&methods, MethodKind::Password) {
                match h.authenticate_password(t.user.clone(), pw.clone()).await {
                    Ok(russh::client::AuthResult::Success) => return Ok(()),
                    Ok(russh::client::AuthResult::Failure {
                        remaining_methods, ..
                    }) => {
                        methods = Some(remaining_methods);
                        tried.push("password (rejected)".into());
                    }
                    Err(e) => return Err(lost(&e)),
                }
            }
            if can(&methods, MethodKind::KeyboardInteractive) {
                use russh::client::KeyboardInteractiveAuthResponse as K;
                let mut r = h
                    .authenticate_keyboard_interactive_start(t.user.clone(), None)
                    .await
                    .map_err(|e| lost(&e))?;
                for _ in 0..4 {
                    match r {
                        K::Success => return Ok(()),
                        K::Failure {
                            remaining_methods, ..
                        } => {
                            methods = Some(remaining_methods);
                            tried.push("keyboard-interactive password (rejected)".into());
                            break;
                        }
                        K::InfoRequest { ref prompts, .. } => {
                            let answers = prompts
                                .iter()
                                .map(|p| if p.echo { String::new() } else { pw.clone() })
                                .collect();
                            r = h
                                .authenticate_keyboard_interactive_respond(answers)
                                .await
                                .map_err(|e| lost(&e))?;
                        }
                    }
                }
            }
        }
        if tried.is_empty() {
            tried.push(format!(
                "no identity: no ssh-agent keys and none of {} exist",
                t.identities
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Err(auth_err(format!(
            "tried {}; the server accepts {}. Install the public key in ~{}/.ssh/authorized_keys on the device, \
             or set ansible_ssh_private_key_file to the right key",
            tried.join(", "),
            methods.as_ref().map(methods_text).unwrap_or_else(|| "an unknown set of methods".into()),
            t.user
        )))
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
                let b = self.bastion(j);
                let permit =
                    b.handshakes.clone().acquire_owned().await.map_err(|_| {
                        Attempt::Fatal(TransportError::Other("bastion closed".into()))
                    })?;
                let bh = self.bastion_conn(&b).await.map_err(|e| {
                    Attempt::Fatal(TransportError::Connect {
                        addr: t.addr(),
                        reason: format!("through {}: {e}", j.name),
                    })
                })?;
                let ch = match bh
                    .channel_open_direct_tcpip(t.hostname.clone(), t.port as u32, "127.0.0.1", 0)
                    .await
                {
                    Ok(ch) => ch,
                    Err(russh::Error::ChannelOpenFailure(f)) => {
                        return Err(Attempt::Retry(format!(
                            "{} ({}) could not open a connection to it: {f:?}",
                            j.name,
                            j.addr()
                        )))
                    }
                    Err(e) => {
                        return Err(Attempt::Retry(format!(
                            "connection to {} lost: {e}",
                            j.name
                        )))
                    }
                };
                let h = client::connect_stream(config, ch.into_stream(), handler)
                    .await
                    .map_err(|e| classify(t, e))?;
                Ok((h, Some(permit)))
            }
        }
    }

    /// Connect and authenticate, retrying refused/reset attempts with jittered backoff inside the timeout.
    fn open<'a>(
        self: &'a Arc<Self>,
        t: &'a Arc<Target>,
    ) -> Pin<Box<dyn Future<Output = Result<Conn, TransportError>> + Send + 'a>> {
        Box::pin(async move {
            // Held until authentication is over; the connect timeout starts once a slot is ours.
            let _slot = self.handshake_slots.clone().acquire_owned().await.ok();
            let start = Instant::now();
            let deadline = start + t.connect_timeout;
            let mut attempt = 0u32;
            let (mut h, permit) = loop {
                attempt += 1;
                let remaining = deadline.saturating_duration_since(Instant::now());
                let timed_out = || {
                    TransportError::Connect {
                    addr: t.addr(),
                    reason: format!(
                        "timed out after {:?} (no answer to the SSH handshake: is the device up, and is {} its SSH port?)",
                        t.connect_timeout, t.port
                    ),
                }
                };
                match tokio::time::timeout(remaining, self.handshake(t)).await {
                    Err(_) => return Err(timed_out()),
                    Ok(Ok(x)) => break x,
                    Ok(Err(Attempt::Fatal(e))) => return Err(e),
                    Ok(Err(Attempt::Retry(why))) => {
                        let backoff_ms = (100u64 << attempt.min(5)).min(2000);
                        let jittered = Duration::from_millis(
                            backoff_ms / 2 + rand::random::<u64>() % (backoff_ms / 2 + 1),
                        );
                        // A refused connection means nothing listens (device down or rebooting): a couple of
                        // quick retries, not the full budget that sshd's MaxStartups resets deserve.
                        let max_attempts = if why.to_ascii_lowercase().contains("refused") {
                            self.opts.connect_attempts.clamp(1, 3)
                        } else {
                            self.opts.connect_attempts.max(1)
                        };
                        if attempt >= max_attempts || Instant::now() + jittered >= deadline {
                            let _ = start;
                            return Err(TransportError::Connect {
                                addr: t.addr(),
                                reason: format!("{why} (gave up after {attempt} attempts)"),
                            });
                        }
                        tokio::time::sleep(jittered).await;
                    }
                }
            };
            let auth = tokio::time::timeout(t.connect_timeout, self.authenticate(&mut h, t)).await;
            drop(permit);
            match auth {
                Ok(Ok(())) => Ok(h),
                Ok(Err(e)) => {
                    let _ = h.disconnect(Disconnect::ByApplication, "", "en").await;
                    Err(e)
                }
                Err(_) => Err(TransportError::Auth {
                    user: t.user.clone(),
                    addr: t.addr(),
                    reason: format!(
                        "authentication did not finish within {:?}",
                        t.connect_timeout
                    ),
                }),
            }
        })
    }

    fn bastion(&self, t: &Arc<Target>) -> Arc<Bastion> {
        let mut m = self.bastions.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(t.key())
            .or_insert_with(|| {
                Arc::new(Bastion {
                    target: t.clone(),
                    conn: AsyncMutex::new(None),
                    failed: StdMutex::new(None),
                    handshakes: Arc::new(Semaphore::new(self.opts.bastion_handshakes.max(1))),
                })
            })
            .clone()
    }

    async fn bastion_conn(self: &Arc<Self>, b: &Bastion) -> Result<Arc<Conn>, TransportError> {
        let mut g = b.conn.lock().await;
        if let Some(h) = &*g {
            if !h.is_closed() {
                return Ok(h.clone());
            }
        }
        if let Some((at, e)) = b.failed.lock().ok().and_then(|f| f.clone()) {
            if at.elapsed() < b.target.connect_timeout {
                return Err(e);
            }
        }
        match self.open(&b.target).await {
            Ok(h) => {
                let h = Arc::new(h);
                *g = Some(h.clone());
                Ok(h)
            }
            Err(e) => {
                if let Ok(mut f) = b.failed.lock() {
                    *f = Some((Instant::now(), e.clone()));
                }
                Err(e)
            }
        }
    }
}

fn changed_message(
    t: &Target,
    lookup: &str,
    ktype: &str,
    fp: &str,
    l: &known_hosts::Location,
) -> String {
    format!(
        "HOST KEY CHANGED for {} ({lookup}): the server offered {ktype} {fp}, but {l} records a different key. \
         Someone may be intercepting the connection (man-in-the-middle), or the device was re-installed. \
         If you know why it changed, remove the old key with `ssh-keygen -R '{lookup}' -f {}` and connect again",
        t.name,
        l.path.display()
    )
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
        let h = self.shared.open(&target).await?;
        let t = SshTransport {
            name: spec.name.clone(),
            target,
            shared: self.shared.clone(),
            conn: AsyncMutex::new(Some(Arc::new(h))),
            slots: Semaphore::new(self.shared.opts.max_channels.max(1)),
            stats: Stats::default(),
        };
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

    async fn open_channel(&self) -> Result<russh::Channel<client::Msg>, TransportError> {
        let mut retried = false;
        loop {
            let h = self.handle().await?;
            match h.channel_open_session().await {
                Ok(ch) => return Ok(ch),
                Err(russh::Error::ChannelOpenFailure(f)) => {
                    return Err(TransportError::Other(format!(
                        "{} refused a new session channel ({f:?}): is sshd's MaxSessions below {}?",
                        self.target.addr(),
                        self.shared.opts.max_channels
                    )))
                }
                Err(e) if !retried => {
                    // Nothing has run yet: the connection dropped between commands. Reconnect once.
                    tracing::debug!("{}: connection lost ({e}); reconnecting", self.name);
                    retried = true;
                    let mut g = self.conn.lock().await;
                    if g.as_ref().is_some_and(|c| Arc::ptr_eq(c, &h)) {
                        *g = None;
                    }
                }
                Err(e) => {
                    return Err(TransportError::Disconnected(format!(
                        "{}: cannot open a channel after reconnecting: {e}",
                        self.target.addr()
                    )))
                }
            }
        }
    }

    async fn run(&self, req: &Exec) -> Result<Output, TransportError> {
        let (line, stdin) = frame(req);
        let ch = self.open_channel().await?;
        self.stats
            .count_exec(line.len() + stdin.as_ref().map_or(0, |s| s.len()));
        ch.exec(true, line.into_bytes()).await.map_err(|e| {
            TransportError::Disconnected(format!("sending the command failed: {e}"))
        })?;
        let (mut read, write) = ch.split();
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut status = ExitStatus::Unknown;
        let mut closed = false;
        let mut refused = false;
        let io = async {
            let writer = async {
                if let Some(data) = stdin {
                    write.data_bytes(data).await?;
                }
                write.eof().await
            };
            tokio::pin!(writer);
            let mut writer_done = false;
            loop {
                tokio::select! {
                    msg = read.wait() => match msg {
                        Some(ChannelMsg::Data { data }) => stdout.extend_from_slice(&data),
                        Some(ChannelMsg::ExtendedData { data, ext: 1 }) => stderr.extend_from_slice(&data),
                        Some(ChannelMsg::ExitStatus { exit_status }) => status = ExitStatus::Code(exit_status),
                        Some(ChannelMsg::ExitSignal { signal_name: sig, .. }) => status = ExitStatus::Signal(signal_name(&sig)),
                        Some(ChannelMsg::Failure) => refused = true,
                        Some(ChannelMsg::Close) => { closed = true; break; }
                        None => break,
                        Some(_) => {}
                    },
                    _ = &mut writer, if !writer_done => { writer_done = true; }
                }
            }
        };
        let timed_out = match req.timeout {
            Some(t) => tokio::time::timeout(t, io).await.is_err(),
            None => {
                io.await;
                false
            }
        };
        if timed_out {
            let _ = write.signal(Sig::KILL).await;
            let _ = write.close().await;
            return Err(TransportError::Timeout(req.timeout.unwrap_or_default()));
        }
        self.stats.count_received(stdout.len() + stderr.len());
        if refused && status == ExitStatus::Unknown {
            return Err(TransportError::Other(format!(
                "{} refused to run the command (exec request denied)",
                self.target.addr()
            )));
        }
        if !closed && status == ExitStatus::Unknown {
            return Err(TransportError::Disconnected(format!(
                "{} dropped the connection while the command ran; it may or may not have completed",
                self.target.addr()
            )));
        }
        unframe(&mut stdout);
        unframe(&mut stderr);
        if req.become_.is_some() && !status.success() {
            if let Some(e) = become_error(&String::from_utf8_lossy(&stderr)) {
                return Err(e);
            }
        }
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

#[async_trait]
impl Transport for SshTransport {
    fn host(&self) -> &str {
        &self.name
    }

    async fn exec(&self, req: Exec) -> Result<Output, TransportError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| TransportError::Other("transport closed".into()))?;
        self.run(&req).await
    }

    fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    async fn close(&self) {
        self.slots.close();
        if let Some(h) = self.conn.lock().await.take() {
            let _ = h.disconnect(Disconnect::ByApplication, "", "en").await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ssh/keys");

    fn cert(name: &str) -> Certificate {
        Certificate::read_file(Path::new(&format!("{FIX}/{name}"))).unwrap()
    }

    fn kh(text: &str) -> KnownHosts {
        KnownHosts {
            files: vec![Arc::new(KnownHostsFile::parse("kh", text))],
        }
    }

    #[test]
    fn real_host_certificates_verify_against_cert_authority_lines() {
        let ca = std::fs::read_to_string(format!("{FIX}/ca.pub")).unwrap();
        let mut it = ca.split_whitespace();
        let line = format!(
            "@cert-authority *.example,127.0.0.1 {} {}",
            it.next().unwrap(),
            it.next().unwrap()
        );
        let set = kh(&line);
        let names = vec!["device1.example".to_string()];
        let good = cert_info(&cert("host_ed25519-cert.pub"));
        assert!(good.signature_valid && good.is_host);
        assert_eq!(good.principals, vec!["device1.example", "127.0.0.1"]);
        assert!(matches!(
            set.check_cert(&names, "device1.example", &good, unix_now()),
            Ok(Verdict::Trusted(_))
        ));
        // Certified key is the plain host key.
        let host = std::fs::read_to_string(format!("{FIX}/host_ed25519.pub")).unwrap();
        let hk =
            russh::keys::parse_public_key_base64(host.split_whitespace().nth(1).unwrap()).unwrap();
        assert_eq!(good.key_blob, key_blob(&hk));
        let expired = cert_info(&cert("host_ed25519-cert-expired.pub"));
        assert!(set
            .check_cert(&names, "device1.example", &expired, unix_now())
            .unwrap_err()
            .contains("expired"));
        let user = cert_info(&cert("host_ed25519-cert-user.pub"));
        assert!(!user.is_host);
        assert!(set
            .check_cert(&names, "device1.example", &user, unix_now())
            .is_err());
        // Tampering with the principals breaks the CA signature.
        let mut c = cert("host_ed25519-cert.pub");
        let tampered = {
            let mut bytes = c.to_bytes().unwrap();
            let pos = bytes.windows(7).position(|w| w == b"device1").unwrap();
            bytes[pos] = b'D';
            c = Certificate::from_bytes(&bytes).unwrap();
            cert_info(&c)
        };
        assert!(!tampered.signature_valid);
        assert!(set
            .check_cert(
                &["Device1.example".into()],
                "Device1.example",
                &tampered,
                unix_now()
            )
            .is_err());
    }

    #[test]
    fn key_problems_explain_what_to_do() {
        let m = KeyProblem::NeedsPassphrase.to_string();
        assert!(
            m.contains("ansible_ssh_private_key_passphrase") && m.contains(PASSPHRASE_ENV),
            "{m}"
        );
        assert_eq!(signal_name(&Sig::TERM), "TERM");
        assert_eq!(signal_name(&Sig::Custom("XCPU".into())), "XCPU");
    }

    #[test]
    fn encrypted_key_needs_the_right_passphrase() {
        let d = tempfile::tempdir().unwrap();
        let k = d.path().join("id");
        let st = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "correct horse", "-f"])
            .arg(&k)
            .status()
            .unwrap();
        assert!(st.success());
        assert!(matches!(
            load_key_blocking(&k, None, false),
            Err(KeyProblem::NeedsPassphrase)
        ));
        assert!(matches!(
            load_key_blocking(&k, Some("wrong"), false),
            Err(KeyProblem::WrongPassphrase)
        ));
        assert!(load_key_blocking(&k, Some("correct horse"), false).is_ok());
        assert!(matches!(
            load_key_blocking(&d.path().join("nope"), None, false),
            Err(KeyProblem::Missing)
        ));
    }
}
