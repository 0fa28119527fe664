//! Client authentication, in OpenSSH's order: ssh-agent keys and certificates, identity files (each after its
//! `<file>-cert.pub`), then the password (password, then keyboard-interactive). Owns loading and decrypting key
//! files (passphrase from the inventory, the environment or the terminal; cached per run), the agent connection,
//! and what an unsuccessful authentication means: refused (final, saying what was tried and what the server
//! accepts), or the connection dropped (retried like a handshake drop when the server had not answered yet;
//! final after a refusal, as sshd's MaxAuthTries does). It must not connect, check host keys or run commands,
//! and never puts a secret in a log or an error.

use std::future::Future;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use russh::client::AuthResult;
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::{MethodKind, MethodSet};
use tokio::net::UnixStream;
use tokio::sync::{Mutex as AsyncMutex, OnceCell};

use super::hostkey::key_blob;
use super::{Attempt, Conn, Shared, Target, PASSPHRASE_ENV};
use crate::transport::TransportError;

/// Why a key file could not be used.
#[derive(Debug, Clone)]
pub(super) enum KeyProblem {
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

pub(super) struct Agent {
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

/// A key file, loaded (and decrypted) at most once per run.
pub(super) type KeyCell = Arc<OnceCell<Result<Arc<PrivateKey>, KeyProblem>>>;

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

/// What one authentication request came back with.
#[derive(Debug)]
enum Reply {
    Accepted,
    /// Refused; the server lists the methods that can continue.
    Refused(MethodSet),
    /// No answer: the connection is gone, for the reason given.
    Closed(String),
}

/// russh 0.65 reports a connection that closed while it waited for the answer as a failure with no method left
/// (`Handle::wait_recv_reply`). A server that refuses always lists what can continue (sshd: at least the method
/// just tried, while MaxAuthTries allows), and one that lists nothing ends the connection: either way, closed.
fn reply(r: AuthResult) -> Reply {
    match r {
        AuthResult::Success => Reply::Accepted,
        AuthResult::Failure {
            remaining_methods, ..
        } if remaining_methods.is_empty() => {
            Reply::Closed("the connection closed without an answer".into())
        }
        AuthResult::Failure {
            remaining_methods, ..
        } => Reply::Refused(remaining_methods),
    }
}

/// The connection closed during authentication. Before the server answered anything this is a drop like the
/// handshake drops of an overloaded sshd (MaxStartups, LoginGraceTime, a killed session process): worth a new
/// connection. After it refused something it is the server giving up on us (MaxAuthTries): final.
fn closed_during_auth(addr: &str, answered: bool, why: &str) -> Attempt {
    if answered {
        Attempt::Fatal(TransportError::Disconnected(format!(
            "{addr} dropped the connection during authentication: {why} (too many keys offered? sshd's \
             MaxAuthTries is 6 by default: set IdentitiesOnly yes in ssh_config, or name the key with \
             ansible_ssh_private_key_file)"
        )))
    } else {
        Attempt::Retry(format!(
            "the server dropped the connection during authentication, before answering ({why})"
        ))
    }
}

/// [`closed_during_auth`], with the reason the connection ended when russh knows it.
async fn closed(h: &mut Conn, t: &Target, answered: bool, why: String) -> Attempt {
    // The session task has ended (or is ending): its result says why. Bounded, in case it has not.
    let why = match tokio::time::timeout(Duration::from_secs(2), &mut *h).await {
        Ok(Ok(())) => format!("{why}: the server disconnected"),
        Ok(Err(e)) => format!("{why}: {e}"),
        Err(_) => why,
    };
    closed_during_auth(&t.addr(), answered, &why)
}

impl Shared {
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

    /// Authenticate `h` as `t.user`. `Attempt::Retry` when the connection dropped before the server answered.
    pub(super) async fn authenticate(&self, h: &mut Conn, t: &Target) -> Result<(), Attempt> {
        let mut tried: Vec<String> = Vec::new();
        let mut offered: Vec<Vec<u8>> = Vec::new();
        // Some once the server has refused something (it answered).
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
                match res.map(reply) {
                    Ok(Reply::Accepted) => return Ok(()),
                    Ok(Reply::Refused(m)) => methods = Some(m),
                    Ok(Reply::Closed(why)) => {
                        return Err(closed(h, t, methods.is_some(), why).await)
                    }
                    Err(AgentSignError::Send(e)) => {
                        return Err(closed(h, t, methods.is_some(), e.to_string()).await)
                    }
                    Err(e) => tried.push(e.to_string()),
                }
                if h.is_closed() {
                    return Err(closed(h, t, methods.is_some(), "closed".into()).await);
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
                        let r = h
                            .authenticate_openssh_cert(t.user.clone(), key.clone(), cert)
                            .await;
                        match r.map(reply) {
                            Ok(Reply::Accepted) => return Ok(()),
                            Ok(Reply::Refused(m)) => {
                                methods = Some(m);
                                tried.push(format!(
                                    "{} (certificate rejected)",
                                    Path::new(&cert_path).display()
                                ));
                            }
                            Ok(Reply::Closed(why)) => {
                                return Err(closed(h, t, methods.is_some(), why).await)
                            }
                            Err(e) => {
                                return Err(closed(h, t, methods.is_some(), e.to_string()).await)
                            }
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
                    let r = h
                        .authenticate_publickey(
                            t.user.clone(),
                            PrivateKeyWithHashAlg::new(key, hash),
                        )
                        .await;
                    match r.map(reply) {
                        Ok(Reply::Accepted) => return Ok(()),
                        Ok(Reply::Refused(m)) => {
                            methods = Some(m);
                            tried.push(format!("{} (rejected)", path.display()));
                        }
                        Ok(Reply::Closed(why)) => {
                            return Err(closed(h, t, methods.is_some(), why).await)
                        }
                        Err(e) => return Err(closed(h, t, methods.is_some(), e.to_string()).await),
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
                let r = h.authenticate_password(t.user.clone(), pw.clone()).await;
                match r.map(reply) {
                    Ok(Reply::Accepted) => return Ok(()),
                    Ok(Reply::Refused(m)) => {
                        methods = Some(m);
                        tried.push("password (rejected)".into());
                    }
                    Ok(Reply::Closed(why)) => {
                        return Err(closed(h, t, methods.is_some(), why).await)
                    }
                    Err(e) => return Err(closed(h, t, methods.is_some(), e.to_string()).await),
                }
            }
            if can(&methods, MethodKind::KeyboardInteractive) {
                use russh::client::KeyboardInteractiveAuthResponse as K;
                let mut r = match h
                    .authenticate_keyboard_interactive_start(t.user.clone(), None)
                    .await
                {
                    Ok(r) => r,
                    Err(e) => return Err(closed(h, t, methods.is_some(), e.to_string()).await),
                };
                for _ in 0..4 {
                    match r {
                        K::Success => return Ok(()),
                        K::Failure {
                            remaining_methods, ..
                        } if remaining_methods.is_empty() => {
                            let why = "the connection closed without an answer".into();
                            return Err(closed(h, t, methods.is_some(), why).await);
                        }
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
                            r = match h.authenticate_keyboard_interactive_respond(answers).await {
                                Ok(r) => r,
                                Err(e) => {
                                    // It asked, so it answered.
                                    return Err(closed(h, t, true, e.to_string()).await);
                                }
                            };
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
        Err(Attempt::Fatal(TransportError::Auth {
            user: t.user.clone(),
            addr: t.addr(),
            reason: format!(
                "tried {}; the server accepts {}. Install the public key in ~{}/.ssh/authorized_keys on the \
                 device, or set ansible_ssh_private_key_file to the right key",
                tried.join(", "),
                methods
                    .as_ref()
                    .map(methods_text)
                    .unwrap_or_else(|| "an unknown set of methods".into()),
                t.user
            ),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_problems_explain_what_to_do() {
        let m = KeyProblem::NeedsPassphrase.to_string();
        assert!(
            m.contains("ansible_ssh_private_key_passphrase") && m.contains(PASSPHRASE_ENV),
            "{m}"
        );
    }

    #[test]
    fn a_connection_closed_during_authentication_is_a_drop_not_a_rejection() {
        let failure = |m: &[MethodKind]| AuthResult::Failure {
            remaining_methods: MethodSet::from(m),
            partial_success: false,
        };
        // What russh hands back when the connection closed while it waited for the answer.
        assert!(matches!(reply(failure(&[])), Reply::Closed(_)));
        assert!(matches!(
            reply(failure(&[MethodKind::PublicKey, MethodKind::Password])),
            Reply::Refused(m) if m.contains(&MethodKind::Password)
        ));
        assert!(matches!(reply(AuthResult::Success), Reply::Accepted));
        // Dropped before any answer: retried with the full budget (only "refused" connects get 3 attempts).
        match closed_during_auth("10.0.0.1:22", false, "EOF") {
            Attempt::Retry(why) => assert!(
                why.contains("during authentication")
                    && why.contains("EOF")
                    && !why.contains("refused"),
                "{why}"
            ),
            Attempt::Fatal(e) => panic!("not retried: {e}"),
        }
        // Dropped after a refusal: the server gave up on us (MaxAuthTries), final and not an Auth error.
        match closed_during_auth("10.0.0.1:22", true, "EOF") {
            Attempt::Fatal(TransportError::Disconnected(m)) => {
                assert!(
                    m.contains("10.0.0.1:22") && m.contains("MaxAuthTries"),
                    "{m}"
                )
            }
            Attempt::Fatal(e) => panic!("wrong error: {e}"),
            Attempt::Retry(why) => panic!("retried: {why}"),
        }
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
