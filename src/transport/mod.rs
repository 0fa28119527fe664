//! Transports: how a command reaches a device and how its result comes back.
//!
//! Owns the [`Transport`] trait (exec with stdin, bytes or an [`Upload`] streamed from local files, exit status,
//! stdout/stderr), the [`Cmd`] builder that quotes
//! every dynamic part by construction, the framing that makes results immune to noisy shell rc files, the
//! `become` (sudo) wrapping, the connection parameters ([`ConnSpec`]) resolved from inventory variables, and the
//! per-device run lock (`runlock`: the request, the device script and its answer; SSH holds it on a channel).
//! It must not know about modules, plays or reporting. Only `ssh.rs` and its submodules (`ssh/`) may import
//! russh: they are the SSH client (the lab's embedded server, `lab/embedded.rs`, is the other russh user).
//!
//! Secrets never go into a [`Cmd`]: there is no way to put one there except as a quoted argument, and callers
//! pass secret material as [`Stdin`] instead (marked `secret`, so it is never logged).

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::report::StatsSnapshot;
use crate::shell::quote;

pub mod known_hosts;
pub mod local;
pub mod runlock;
pub mod ssh;
pub mod ssh_config;
pub mod ssh_target;

/// One part of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Trusted text written in our source code (program names, flags, our own scripts). Never user data.
    Raw(&'static str),
    /// Any dynamic value: always single-quoted for POSIX sh.
    Arg(String),
}

/// A remote command built from parts: dynamic parts are quoted by construction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmd {
    parts: Vec<Part>,
}

impl Cmd {
    /// Start a command with a trusted program name or script fragment.
    pub fn new(program: &'static str) -> Self {
        Cmd {
            parts: vec![Part::Raw(program)],
        }
    }

    /// A user-supplied shell script (the `shell` module): runs as `/bin/sh -c '<script>'`, the script quoted.
    pub fn shell(script: &str) -> Self {
        Cmd::new("/bin/sh").raw("-c").arg(script)
    }

    /// Append trusted text.
    pub fn raw(mut self, s: &'static str) -> Self {
        self.parts.push(Part::Raw(s));
        self
    }

    /// Append one quoted argument.
    pub fn arg(mut self, s: impl Into<String>) -> Self {
        self.parts.push(Part::Arg(s.into()));
        self
    }

    /// Append quoted arguments.
    pub fn args<I, S>(mut self, it: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for s in it {
            self.parts.push(Part::Arg(s.into()));
        }
        self
    }

    /// The parts.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The command line as the remote shell sees it.
    pub fn to_shell(&self) -> String {
        let mut out = String::new();
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            match p {
                Part::Raw(s) => out.push_str(s),
                Part::Arg(s) => out.push_str(&quote(s)),
            }
        }
        out
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_shell())
    }
}

/// Bytes sent to the command's standard input.
#[derive(Clone)]
pub struct Stdin {
    /// The bytes.
    pub data: Bytes,
    /// Secret material: never logged, never shown.
    pub secret: bool,
}

impl fmt::Debug for Stdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.secret {
            write!(f, "Stdin(<secret, {} bytes>)", self.data.len())
        } else {
            write!(f, "Stdin({} bytes)", self.data.len())
        }
    }
}

/// Standard input streamed from ranges of local files, after [`Exec::stdin`]'s bytes: read in bounded chunks
/// while the channel's flow control allows, never held whole in memory (bundle parts of hundreds of MiB). An
/// optional run-wide `gate` bounds how many such uploads run at once across the fleet: the transport takes a
/// permit before it opens the channel and holds it until the command ended.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    /// The ranges, sent in order.
    pub pieces: Vec<FileRange>,
    /// Run-wide bound on concurrent uploads, if any.
    pub gate: Option<Arc<tokio::sync::Semaphore>>,
}

/// `len` bytes of a local file from `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRange {
    /// The local file.
    pub path: PathBuf,
    /// Where the range starts.
    pub offset: u64,
    /// How many bytes.
    pub len: u64,
}

impl Upload {
    /// Total bytes streamed.
    pub fn len(&self) -> u64 {
        self.pieces.iter().map(|p| p.len).sum()
    }

    /// Nothing to stream?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wait for a slot of the run-wide gate (none without a gate).
    pub async fn permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        match &self.gate {
            Some(g) => g.clone().acquire_owned().await.ok(),
            None => None,
        }
    }
}

impl FileRange {
    /// The range as a reader: the file opened and positioned at `offset`, limited to `len` bytes. Errors name
    /// the file; a file shorter than the range is an error here (not a silently short stdin).
    pub async fn open(&self) -> Result<tokio::io::Take<tokio::fs::File>, TransportError> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let err = |e: std::io::Error| {
            TransportError::Other(format!("cannot read {}: {e}", self.path.display()))
        };
        let mut f = tokio::fs::File::open(&self.path).await.map_err(err)?;
        let size = f.metadata().await.map_err(err)?.len();
        if size < self.offset.saturating_add(self.len) {
            return Err(TransportError::Other(format!(
                "{}: {size} bytes, too short for {} bytes at offset {} (was the file changed during the run?)",
                self.path.display(),
                self.len,
                self.offset
            )));
        }
        f.seek(std::io::SeekFrom::Start(self.offset))
            .await
            .map_err(err)?;
        Ok(f.take(self.len))
    }
}

/// Run the command as another user through sudo.
#[derive(Clone, Default)]
pub struct Become {
    /// Target user (default root).
    pub user: String,
    /// sudo password, if sudo needs one. Sent over stdin, never in argv.
    pub password: Option<String>,
}

impl fmt::Debug for Become {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Become")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<secret>"))
            .finish()
    }
}

/// One remote execution.
#[derive(Debug, Clone)]
pub struct Exec {
    /// The command.
    pub cmd: Cmd,
    /// Its standard input.
    pub stdin: Option<Stdin>,
    /// Give up after this long (the command is then reported as timed out).
    pub timeout: Option<Duration>,
    /// Run through sudo.
    pub become_: Option<Become>,
    /// Stdin streamed from local files after `stdin` (see [`Upload`]).
    pub upload: Option<Upload>,
}

impl Exec {
    /// A command with no stdin, no timeout, no become.
    pub fn new(cmd: Cmd) -> Self {
        Exec {
            cmd,
            stdin: None,
            timeout: None,
            become_: None,
            upload: None,
        }
    }
    /// Stream `upload` after the stdin bytes (see [`Upload`]).
    pub fn upload(mut self, upload: Upload) -> Self {
        self.upload = Some(upload);
        self
    }
    /// Set stdin (not secret).
    pub fn stdin(mut self, data: impl Into<Bytes>) -> Self {
        self.stdin = Some(Stdin {
            data: data.into(),
            secret: false,
        });
        self
    }
    /// Set stdin holding secret material.
    pub fn secret_stdin(mut self, data: impl Into<Bytes>) -> Self {
        self.stdin = Some(Stdin {
            data: data.into(),
            secret: true,
        });
        self
    }
    /// Set the timeout.
    pub fn timeout(mut self, t: Option<Duration>) -> Self {
        self.timeout = t;
        self
    }
    /// Set become.
    pub fn become_(mut self, b: Option<Become>) -> Self {
        self.become_ = b;
        self
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Code(u32),
    /// Killed by this signal (e.g. "TERM").
    Signal(String),
    /// The channel closed without telling (server died).
    Unknown,
}

impl ExitStatus {
    /// Exit code 0?
    pub fn success(&self) -> bool {
        matches!(self, ExitStatus::Code(0))
    }
    /// The code, or -1 for signals/unknown.
    pub fn code(&self) -> i64 {
        match self {
            ExitStatus::Code(c) => *c as i64,
            _ => -1,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by signal {s}"),
            ExitStatus::Unknown => write!(f, "no exit status (connection lost?)"),
        }
    }
}

/// What a command produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Standard output (rc-file noise already removed).
    pub stdout: Vec<u8>,
    /// Standard error (rc-file noise already removed).
    pub stderr: Vec<u8>,
}

impl Output {
    /// stdout as text (lossy).
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// stderr as text (lossy).
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Why a transport operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// TCP connect failed, was refused, or timed out.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// host:port tried.
        addr: String,
        /// why.
        reason: String,
    },
    /// The server's host key is unknown or changed.
    #[error("{0}")]
    HostKey(String),
    /// No identity was accepted.
    #[error("authentication failed for {user}@{addr}: {reason}")]
    Auth {
        /// user tried.
        user: String,
        /// host:port.
        addr: String,
        /// what was tried and what to do.
        reason: String,
    },
    /// The command ran longer than its timeout.
    #[error("command timed out after {0:?}")]
    Timeout(Duration),
    /// The connection dropped.
    #[error("connection lost: {0}")]
    Disconnected(String),
    /// sudo refused (password required, user not in sudoers, ...).
    #[error("become failed: {0}")]
    Become(String),
    /// The run could not take (or lost) its lock on the device (`runlock`): another run holds it, or the device
    /// cannot be locked. Nothing may be changed there.
    #[error("{0}")]
    Locked(String),
    /// Anything else (channel open refused, local spawn failed, ...).
    #[error("{0}")]
    Other(String),
}

impl TransportError {
    /// Does this error mean the device cannot be reached at all (as opposed to a command failing)? A device
    /// locked by another run counts as unreachable: nothing was done on it, and a later run is the fix.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            TransportError::Connect { .. }
                | TransportError::HostKey(_)
                | TransportError::Auth { .. }
                | TransportError::Disconnected(_)
                | TransportError::Locked(_)
        )
    }
}

/// Counters a transport keeps (round trips are what the benchmarks measure).
#[derive(Debug, Default)]
pub struct Stats {
    /// Remote executions started (exec round trips).
    pub execs: AtomicU64,
    /// Bytes sent (command lines + stdin).
    pub bytes_sent: AtomicU64,
    /// Bytes received (stdout + stderr).
    pub bytes_received: AtomicU64,
    /// Connections opened (1 normally; more after reconnects).
    pub connects: AtomicU64,
}

impl Stats {
    /// Copy the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            execs: self.execs.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            connects: self.connects.load(Ordering::Relaxed),
        }
    }
    /// Count one exec of `sent` bytes.
    pub fn count_exec(&self, sent: usize) {
        self.execs.fetch_add(1, Ordering::Relaxed);
        self.bytes_sent.fetch_add(sent as u64, Ordering::Relaxed);
    }
    /// Count received bytes.
    pub fn count_received(&self, n: usize) {
        self.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A connection to one device. One per device per run; every task of the run uses it.
#[async_trait]
pub trait Transport: Send + Sync {
    /// The inventory name of the device.
    fn host(&self) -> &str;
    /// Run one command (one round trip).
    async fn exec(&self, req: Exec) -> Result<Output, TransportError>;
    /// Wait until this run holds its lock on the device (`runlock`): `Ok` at once when the run takes no lock
    /// (`ping`, `--check`, local connections), the [`TransportError::Locked`] reason when another run holds it
    /// or the lock was lost. Every `exec` waits for it too.
    async fn locked(&self) -> Result<(), TransportError> {
        Ok(())
    }
    /// Counters.
    fn stats(&self) -> StatsSnapshot;
    /// Close the connection (best effort).
    async fn close(&self);
}

/// A shared handle to a transport.
pub type SharedTransport = Arc<dyn Transport>;

/// Opens connections to devices. One per run, shared by every device (so bastions, agents and known_hosts
/// writers are shared too).
#[async_trait]
pub trait Connector: Send + Sync {
    /// Connect and authenticate to the device described by `spec`.
    async fn connect(&self, spec: &ConnSpec) -> Result<SharedTransport, TransportError>;

    /// Warnings collected since the last call (host, message): the executor reports them as events.
    fn take_warnings(&self) -> Vec<(Option<String>, String)> {
        Vec::new()
    }
}

/// The connector for `ansible_connection: local`.
pub struct LocalConnector;

#[async_trait]
impl Connector for LocalConnector {
    async fn connect(&self, spec: &ConnSpec) -> Result<SharedTransport, TransportError> {
        Ok(Arc::new(local::LocalTransport::new(spec.name.clone())))
    }
}

/// Connection parameters for one device, resolved from its inventory variables. `Debug` masks the secrets.
#[derive(Clone, Default)]
pub struct ConnSpec {
    /// Inventory name.
    pub name: String,
    /// `ansible_connection`: "ssh" (default) or "local".
    pub connection: String,
    /// `ansible_host` (default: the inventory name).
    pub address: String,
    /// `ansible_port`, when set.
    pub port: Option<u16>,
    /// `ansible_user`, when set.
    pub user: Option<String>,
    /// `ansible_password` (password auth), when set. Secret.
    pub password: Option<String>,
    /// `ansible_ssh_private_key_file`, when set.
    pub private_key_file: Option<PathBuf>,
    /// `ansible_ssh_private_key_passphrase`, when set. Secret.
    pub private_key_passphrase: Option<String>,
    /// `ansible_ssh_common_args` + `ansible_ssh_extra_args`, split like a shell would.
    pub ssh_args: Vec<String>,
    /// `ansible_ssh_jump` / ProxyJump given in vars, when set.
    pub jump: Option<String>,
    /// `ansible_ssh_timeout` / `timeout`: connect timeout.
    pub connect_timeout: Option<Duration>,
    /// `ansible_become`.
    pub become_: bool,
    /// `ansible_become_user` (default root).
    pub become_user: Option<String>,
    /// `ansible_become_password` / `ansible_become_pass`. Secret.
    pub become_password: Option<String>,
    /// `ansible_ssh_host_key_checking` / `ansible_host_key_checking`, when set.
    pub host_key_checking: Option<bool>,
}

impl fmt::Debug for ConnSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mask = |o: &Option<String>| o.as_ref().map(|_| "<secret>");
        f.debug_struct("ConnSpec")
            .field("name", &self.name)
            .field("connection", &self.connection)
            .field("address", &self.address)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &mask(&self.password))
            .field("private_key_file", &self.private_key_file)
            .field(
                "private_key_passphrase",
                &mask(&self.private_key_passphrase),
            )
            .field("ssh_args", &self.ssh_args)
            .field("jump", &self.jump)
            .field("connect_timeout", &self.connect_timeout)
            .field("become", &self.become_)
            .field("become_user", &self.become_user)
            .field("become_password", &mask(&self.become_password))
            .field("host_key_checking", &self.host_key_checking)
            .finish()
    }
}

/// The marker printed before a command's own output on both streams; anything before it came from rc files.
pub const FRAME_MARKER: &str = "\u{1e}EF-OUT\u{1e}";

/// The full command line sent to the remote login shell for `req`, and the stdin to send with it.
///
/// Layout: print the marker on stdout and stderr (so rc-file noise can be cut off), then run the command
/// under `/bin/sh -c` (through sudo when becoming another user). With a sudo password, the password is the
/// first line of stdin; a shell builtin reads it and pipes it to `sudo -v` so it never appears in argv.
pub fn frame(req: &Exec) -> (String, Option<Bytes>) {
    let inner = req.cmd.to_shell();
    let mut line = String::from("printf '\\036EF-OUT\\036'; printf '\\036EF-OUT\\036' >&2; ");
    let mut stdin = req.stdin.as_ref().map(|s| s.data.clone());
    if stdin.is_none() && req.upload.is_some() {
        // The upload follows the (possibly empty) stdin bytes; with a sudo password, after its line.
        stdin = Some(Bytes::new());
    }
    match &req.become_ {
        None => {
            line.push_str("exec /bin/sh -c ");
            line.push_str(&quote(&inner));
        }
        Some(b) => {
            let user = if b.user.is_empty() { "root" } else { &b.user };
            if let Some(pw) = &b.password {
                line.push_str(
                    // The password line is always consumed (it must never reach the command's stdin); it is
                    // only given to sudo when sudo needs one (`sudo -v` asks even under NOPASSWD).
                    "IFS= read -r __ef_pw; if sudo -n true 2>/dev/null || printf '%s\\n' \"$__ef_pw\" | sudo -S -p '' -v 2>/dev/null; then unset __ef_pw; \
                     else echo 'sudo: the become password was refused' >&2; exit 1; fi; ",
                );
                let mut buf =
                    Vec::with_capacity(pw.len() + 1 + stdin.as_ref().map_or(0, |s| s.len()));
                buf.extend_from_slice(pw.as_bytes());
                buf.push(b'\n');
                if let Some(s) = &stdin {
                    buf.extend_from_slice(s);
                }
                stdin = Some(Bytes::from(buf));
            }
            // With a password, not `exec`: without a terminal sudo keys its credential cache on the parent
            // PID, which must be this shell for both `sudo -v` and the command (measured against OpenSSH + sudo).
            line.push_str(if b.password.is_some() {
                "sudo -n -H -u "
            } else {
                "exec sudo -n -H -u "
            });
            line.push_str(&quote(user));
            line.push_str(" -- /bin/sh -c ");
            line.push_str(&quote(&inner));
        }
    }
    (line, stdin)
}

/// Cut everything up to and including the frame marker (rc-file noise) from one output stream.
pub fn unframe(buf: &mut Vec<u8>) {
    let m = FRAME_MARKER.as_bytes();
    if let Some(pos) = buf.windows(m.len()).position(|w| w == m) {
        buf.drain(..pos + m.len());
    }
}

/// Map sudo's own refusals (on stderr) to a clear error.
pub fn become_error(stderr: &str) -> Option<TransportError> {
    let s = stderr.trim();
    if s.contains("a password is required") || s.contains("a terminal is required") {
        return Some(TransportError::Become(
            "sudo needs a password: set ansible_become_password (from an age-encrypted vars file)"
                .into(),
        ));
    }
    if s.contains("the become password was refused") {
        return Some(TransportError::Become(
            "sudo refused the become password: check ansible_become_password for this host".into(),
        ));
    }
    if s.contains("is not in the sudoers file") || s.contains("is not allowed to execute") {
        return Some(TransportError::Become(format!(
            "sudo refused: {}",
            first_line(s)
        )));
    }
    if s.contains("sudo: command not found") || s.contains("sudo: not found") {
        return Some(TransportError::Become(
            "sudo is not installed on the device".into(),
        ));
    }
    None
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_is_by_construction() {
        let c = Cmd::new("stat")
            .raw("-c")
            .arg("%s")
            .arg("/etc/a b")
            .arg("x'; rm -rf / #");
        assert_eq!(c.to_shell(), r"stat -c %s '/etc/a b' 'x'\''; rm -rf / #'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(id)"), "'$(id)'");
        assert_eq!(quote("/etc/aziot/config.toml"), "/etc/aziot/config.toml");
    }

    #[test]
    fn frame_and_unframe() {
        let (line, stdin) = frame(&Exec::new(Cmd::new("echo").arg("hi")));
        assert!(line.ends_with("exec /bin/sh -c 'echo hi'"), "{line}");
        assert!(stdin.is_none());
        let mut out = b"Welcome to noisy rc\n\x1eEF-OUT\x1ehi\n".to_vec();
        unframe(&mut out);
        assert_eq!(out, b"hi\n");
    }

    #[test]
    fn become_password_goes_over_stdin_not_argv() {
        let req = Exec::new(Cmd::new("id"))
            .stdin("payload")
            .become_(Some(Become {
                user: "root".into(),
                password: Some("s3cr3t-pw".into()),
            }));
        let (line, stdin) = frame(&req);
        assert!(!line.contains("s3cr3t-pw"));
        assert_eq!(&stdin.unwrap()[..], b"s3cr3t-pw\npayload");
        assert!(
            line.contains("sudo -n -H -u root -- /bin/sh -c id"),
            "{line}"
        );
    }
}
