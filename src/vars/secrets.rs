//! Secrets: age-encrypted vars files and `src:` files, decrypted in memory once per run.
//!
//! Owns identities (from `--identity`, `EDGEFLEET_AGE_IDENTITY`, or the operator's SSH keys), passphrases for
//! protected identities, recipients (`-r`, `-R`, `.age-recipients`), age encryption and decryption, the
//! per-run plaintext cache, and registering every decrypted value with the redactor (`vars::redact`). It must
//! never write plaintext to disk (that is `vault`'s job, and only where the operator asked for it) and never
//! print a secret: no error, warning or `Debug` output here contains plaintext, identity or passphrase material.
//!
//! # Identities
//! In order, the first source that names anything wins:
//! 1. `--identity FILE` (repeatable), given to [`configure`];
//! 2. `EDGEFLEET_AGE_IDENTITY`: one path, or several separated by `:`;
//! 3. the operator's SSH keys `~/.ssh/id_ed25519` and `~/.ssh/id_rsa` (those that exist).
//!
//! An identity file is an age identity file (`AGE-SECRET-KEY-1...` lines, as `age-keygen` and
//! `edgefleet vault keygen` write), an age-encrypted identity file (`age -p`, `edgefleet vault keygen
//! --passphrase`), or an OpenSSH/PEM `ssh-ed25519` or `ssh-rsa` private key, with or without a passphrase.
//!
//! # Passphrases
//! A protected identity is unlocked only when a file could be for it (an SSH key whose tag appears in the
//! file's header; an age-encrypted identity when the file has X25519 recipients), and a passphrase that
//! worked once is tried first on every other protected identity, so a run asks at most once in the usual case.
//! The passphrase comes from, in order: `EDGEFLEET_AGE_PASSPHRASE_FILE` (a file holding it: the CI way),
//! `EDGEFLEET_AGE_PASSPHRASE` (the variable itself), or a prompt on the controlling terminal (`/dev/tty`, not
//! echoed, three tries). Without a terminal and without those variables, decryption fails with an error that
//! says so. Child processes edgefleet starts (the `vault edit` editor) do not inherit those variables.
//!
//! # Errors
//! Every failure names the file. "No identity can decrypt" also lists what the file is encrypted to (age's
//! X25519 stanzas are anonymous; SSH stanzas carry a 4-byte key tag, matched against `.age-recipients` when one
//! is found) and which identities were tried, each with its public key or tag.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, RwLock};

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::secrecy::zeroize::{Zeroize, Zeroizing};
use age::secrecy::{ExposeSecret, SecretSlice, SecretString};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::diag::Diagnostic;

/// The environment variable naming identity files (one path, or several separated by `:`).
pub const ENV_IDENTITY: &str = "EDGEFLEET_AGE_IDENTITY";
/// The environment variable naming a file that holds the passphrase of protected identities.
pub const ENV_PASSPHRASE_FILE: &str = "EDGEFLEET_AGE_PASSPHRASE_FILE";
/// The environment variable holding the passphrase of protected identities itself.
pub const ENV_PASSPHRASE: &str = "EDGEFLEET_AGE_PASSPHRASE";
/// The recipients file looked up from an encrypted file's directory upwards.
pub const RECIPIENTS_FILE: &str = ".age-recipients";

/// Largest encrypted file we read (secrets are small; this stops a mistaken multi-GB `src:` early).
const MAX_FILE: u64 = 64 << 20;
/// Largest identity or recipients file we read.
const MAX_KEY_FILE: u64 = 1 << 20;
const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";
const ARMOR_END: &str = "-----END AGE ENCRYPTED FILE-----";
const AGE_V1: &str = "age-encryption.org/v1";

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

/// What went wrong with secret material. None of the messages contains plaintext or key material.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is larger than anything a secret should be.
    #[error("{} is larger than {} MiB; age files here hold secrets, not bulk data", .path.display(), MAX_FILE >> 20)]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not an age file at all.
    #[error("{} is not an age-encrypted file (it starts with neither `{ARMOR_BEGIN}` nor `{AGE_V1}`); encrypt it with `edgefleet vault encrypt`", .path.display())]
    NotAge {
        /// The file.
        path: PathBuf,
    },
    /// The file is an age file of a version we do not know.
    #[error("{} uses an age format version this edgefleet does not support", .path.display())]
    UnknownVersion {
        /// The file.
        path: PathBuf,
    },
    /// The file ends too early.
    #[error("{} is truncated ({detail}); restore it from version control", .path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Where it ends.
        detail: String,
    },
    /// The file fails age's authentication: changed, corrupted or cut short after encryption.
    #[error("{} is damaged or was tampered with ({detail}); nothing was decrypted from it; restore it from version control", .path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// No identity is configured at all.
    #[error("no identity to decrypt {}: pass `--identity FILE`, set {ENV_IDENTITY}=FILE[:FILE...], or keep your SSH key in ~/.ssh/id_ed25519 or ~/.ssh/id_rsa", .path.display())]
    NoIdentities {
        /// The file.
        path: PathBuf,
    },
    /// None of the identities can decrypt the file.
    #[error("no identity can decrypt {}\n  {recipients}\n  tried {tried}\n  to fix: use an identity it is encrypted to, or ask someone who can decrypt it to add your public key to {RECIPIENTS_FILE} and run `edgefleet vault rekey`", .path.display())]
    NoMatch {
        /// The file.
        path: PathBuf,
        /// What the file is encrypted to.
        recipients: String,
        /// What was tried.
        tried: String,
    },
    /// An identity file is unusable.
    #[error("identity file {}: {message}", .path.display())]
    Identity {
        /// The identity file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The passphrase of a protected identity (or passphrase-encrypted file) is wrong.
    #[error("wrong passphrase for {what} (from {origin})")]
    WrongPassphrase {
        /// The identity or file.
        what: String,
        /// Where the passphrase came from.
        origin: String,
    },
    /// A passphrase is needed and there is no way to ask for one.
    #[error("{what} is passphrase-protected and there is no terminal to ask for the passphrase on: set {ENV_PASSPHRASE_FILE} to a file that holds it (or {ENV_PASSPHRASE} to the passphrase)")]
    NoPassphrase {
        /// The identity or file.
        what: String,
    },
    /// The operator cancelled the passphrase prompt.
    #[error("passphrase prompt cancelled")]
    Cancelled,
    /// A recipient is not valid.
    #[error("{origin}: {message}")]
    Recipient {
        /// `file:line` or `--recipient`.
        origin: String,
        /// What is wrong.
        message: String,
        /// The recipients file, when the recipient came from one.
        file: Option<PathBuf>,
        /// The line in it.
        line: u64,
    },
    /// Nobody to encrypt to.
    #[error("no recipients for {}: pass `-r RECIPIENT` / `-R FILE`, or create a {RECIPIENTS_FILE} file (one `age1...` or SSH public key per line) in its directory or above", .path.display())]
    NoRecipients {
        /// The file being encrypted.
        path: PathBuf,
    },
    /// Encryption failed.
    #[error("cannot encrypt {}: {message}", .path.display())]
    Encrypt {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl SecretError {
    /// The file the problem is in (the recipients file for recipient errors).
    pub fn file(&self) -> Option<&Path> {
        match self {
            SecretError::Read { path, .. }
            | SecretError::TooLarge { path }
            | SecretError::NotAge { path }
            | SecretError::UnknownVersion { path }
            | SecretError::Truncated { path, .. }
            | SecretError::Damaged { path, .. }
            | SecretError::NoIdentities { path }
            | SecretError::NoMatch { path, .. }
            | SecretError::Identity { path, .. }
            | SecretError::NoRecipients { path }
            | SecretError::Encrypt { path, .. } => Some(path),
            SecretError::Recipient { file, .. } => file.as_deref(),
            SecretError::WrongPassphrase { .. }
            | SecretError::NoPassphrase { .. }
            | SecretError::Cancelled => None,
        }
    }

    /// As a load-time diagnostic (exit code 4). The message already names the file, so the diagnostic carries
    /// it as plain text rather than as a `file:` prefix that would repeat it.
    pub fn into_diag(self) -> Diagnostic {
        match &self {
            SecretError::Recipient {
                file: Some(f),
                line,
                message,
                ..
            } => Diagnostic::at(f.clone(), *line, 0, message.clone()),
            _ => Diagnostic::plain(self.to_string()),
        }
    }
}

impl From<SecretError> for Diagnostic {
    fn from(e: SecretError) -> Self {
        e.into_diag()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Plaintext
// ---------------------------------------------------------------------------------------------------------------

/// Decrypted bytes, shared and zeroized when the last holder drops them. `Debug` shows only the length.
#[derive(Clone)]
pub struct Plaintext(Arc<SecretSlice<u8>>);

impl Plaintext {
    fn new(bytes: Zeroizing<Vec<u8>>) -> Self {
        // Boxing a Vec whose capacity exceeds its length reallocates and frees the old buffer un-zeroized:
        // copy into an exact-size buffer instead, and let `bytes` zeroize itself.
        let mut exact = Vec::with_capacity(bytes.len());
        exact.extend_from_slice(&bytes);
        if exact.capacity() != exact.len() {
            // Not expected for u8, but never leave a copy behind: pay for one more copy into a boxed slice.
            let boxed: Box<[u8]> = exact.as_slice().into();
            let mut exact = exact;
            exact.zeroize();
            return Plaintext(Arc::new(SecretSlice::from(boxed)));
        }
        Plaintext(Arc::new(SecretSlice::from(exact)))
    }
    /// The bytes. Do not copy them into long-lived buffers that are not zeroized.
    pub fn bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }
    /// The bytes as UTF-8 text, when they are.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(self.bytes()).ok()
    }
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.bytes().len()
    }
    /// Empty?
    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plaintext({} bytes, redacted)", self.len())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Header inspection (what a file is encrypted to, without any key)
// ---------------------------------------------------------------------------------------------------------------

/// One recipient stanza of an age header: its type and arguments (public data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaInfo {
    /// `X25519`, `ssh-ed25519`, `ssh-rsa`, `scrypt`, ...
    pub kind: String,
    /// The stanza arguments (for SSH stanzas the first is the key tag).
    pub args: Vec<String>,
}

impl StanzaInfo {
    /// The SSH key tag, for `ssh-ed25519` / `ssh-rsa` stanzas.
    pub fn ssh_tag(&self) -> Option<&str> {
        match self.kind.as_str() {
            "ssh-ed25519" | "ssh-rsa" => self.args.first().map(String::as_str),
            _ => None,
        }
    }
}

/// What an age file's header says, read without decrypting anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderInfo {
    /// ASCII-armored?
    pub armored: bool,
    /// The recipient stanzas (grease stanzas left out).
    pub stanzas: Vec<StanzaInfo>,
}

impl HeaderInfo {
    /// Encrypted with a passphrase (`age -p`) rather than to recipients?
    pub fn is_passphrase(&self) -> bool {
        self.stanzas.iter().any(|s| s.kind == "scrypt")
    }
    /// Has X25519 (native age) recipients?
    pub fn has_x25519(&self) -> bool {
        self.stanzas.iter().any(|s| s.kind == "X25519")
    }
    /// The SSH key tags in the header.
    pub fn ssh_tags(&self) -> HashSet<&str> {
        self.stanzas
            .iter()
            .filter_map(StanzaInfo::ssh_tag)
            .collect()
    }

    /// "encrypted to 3 recipients: 1 X25519 (age does not record which key), 1 ssh-ed25519 (tag AbC123: `ops`
    /// in ./.age-recipients), ..." — `known` maps SSH tags to a description of the matching recipient.
    pub fn describe(&self, known: &HashMap<String, String>) -> String {
        if self.is_passphrase() {
            return "it is encrypted with a passphrase (`age -p`), not to recipients".into();
        }
        let n = self.stanzas.len();
        let mut parts: Vec<String> = Vec::new();
        let x = self.stanzas.iter().filter(|s| s.kind == "X25519").count();
        if x > 0 {
            parts.push(format!(
                "{x} X25519 (age does not record which key{})",
                if x > 1 { "s" } else { "" }
            ));
        }
        for s in &self.stanzas {
            match s.ssh_tag() {
                Some(tag) => match known.get(tag) {
                    Some(who) => parts.push(format!("1 {} (tag {tag}: {who})", s.kind)),
                    None => parts.push(format!("1 {} (tag {tag})", s.kind)),
                },
                None if s.kind == "X25519" => {}
                None => parts.push(format!("1 {}", s.kind)),
            }
        }
        format!(
            "it is encrypted to {n} recipient{}: {}",
            if n == 1 { "" } else { "s" },
            parts.join(", ")
        )
    }
}

/// Does `data` look like an age file (armored or binary)?
pub fn looks_like_age(data: &[u8]) -> bool {
    let t = trim_ascii_start(data);
    t.starts_with(ARMOR_BEGIN.as_bytes()) || t.starts_with(b"age-encryption.org/")
}

fn trim_ascii_start(mut d: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = d {
        if first.is_ascii_whitespace() {
            d = rest;
        } else {
            break;
        }
    }
    d
}

/// Read an age header without any key: what the file is encrypted to, and whether it is cut short.
pub fn inspect(path: &Path, data: &[u8]) -> Result<HeaderInfo, SecretError> {
    let trimmed = trim_ascii_start(data);
    if trimmed.is_empty() {
        return Err(SecretError::Truncated {
            path: path.into(),
            detail: "the file is empty".into(),
        });
    }
    let armored = trimmed.starts_with(ARMOR_BEGIN.as_bytes());
    let binary: Vec<u8>;
    let raw: &[u8] = if armored {
        let text = String::from_utf8_lossy(trimmed);
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
        lines.next(); // the begin marker
        let mut b64 = String::new();
        let mut ended = false;
        for l in lines {
            if l == ARMOR_END {
                ended = true;
                break;
            }
            b64.push_str(l.trim());
        }
        if !ended {
            return Err(SecretError::Truncated {
                path: path.into(),
                detail: format!("the armor has no `{ARMOR_END}` line"),
            });
        }
        binary = STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| SecretError::Damaged {
                path: path.into(),
                detail: "the armor is not valid base64".into(),
            })?;
        &binary
    } else {
        trimmed
    };
    if !raw.starts_with(b"age-encryption.org/") {
        return Err(SecretError::NotAge { path: path.into() });
    }
    let mut lines = raw.split(|b| *b == b'\n');
    match lines.next() {
        Some(l) if l == AGE_V1.as_bytes() => {}
        _ => return Err(SecretError::UnknownVersion { path: path.into() }),
    }
    let mut stanzas = Vec::new();
    let mut ended = false;
    for l in lines {
        if l.starts_with(b"--- ") || l == b"---" {
            ended = true;
            break;
        }
        if let Some(rest) = l.strip_prefix(b"-> ") {
            let text = String::from_utf8_lossy(rest);
            let mut words = text.split(' ').map(str::to_string);
            let kind = words.next().unwrap_or_default();
            let args = words.collect();
            if !kind.ends_with("-grease") {
                stanzas.push(StanzaInfo { kind, args });
            }
        }
    }
    if !ended {
        return Err(SecretError::Truncated {
            path: path.into(),
            detail: "the header ends before its MAC line".into(),
        });
    }
    Ok(HeaderInfo { armored, stanzas })
}

// ---------------------------------------------------------------------------------------------------------------
// Recipients
// ---------------------------------------------------------------------------------------------------------------

/// One recipient to encrypt to.
pub struct RecipientEntry {
    /// The public key in canonical form (`age1...`, `ssh-ed25519 AAAA...`, `ssh-rsa AAAA...`), no comment.
    pub key: String,
    /// `X25519`, `ssh-ed25519` or `ssh-rsa` (the stanza type it produces).
    pub kind: &'static str,
    /// For SSH keys: the age key tag that appears in encrypted files' headers.
    pub ssh_tag: Option<String>,
    /// The SSH key comment, when there is one.
    pub comment: Option<String>,
    /// Where it came from (`FILE:LINE` or `--recipient`).
    pub origin: String,
    recipient: Box<dyn age::Recipient + Send>,
}

impl fmt::Debug for RecipientEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecipientEntry")
            .field("key", &self.key)
            .field("origin", &self.origin)
            .finish()
    }
}

impl RecipientEntry {
    /// A short human label: the comment, or the start of the key.
    pub fn label(&self) -> String {
        match &self.comment {
            Some(c) => format!("`{c}`"),
            None => {
                let short: String = self.key.chars().take(24).collect();
                format!("{short}...")
            }
        }
    }
}

/// The age key tag of an SSH public key blob (first 4 bytes of its SHA-256, base64 without padding).
fn ssh_tag_of_blob(blob: &[u8]) -> String {
    STANDARD_NO_PAD.encode(&Sha256::digest(blob)[..4])
}

/// Parse one recipient (`age1...`, `ssh-ed25519 AAAA... [comment]`, `ssh-rsa AAAA... [comment]`).
pub fn parse_recipient(s: &str, origin: &str) -> Result<RecipientEntry, String> {
    let s = s.trim();
    if s.starts_with("AGE-SECRET-KEY-") || s.contains("PRIVATE KEY-----") {
        // Never echo it: it is a private key.
        return Err(
            "this is a private key, not a recipient: put public keys here (`age-keygen -y FILE` or \
             `edgefleet vault keygen` prints one; for SSH keys use the `.pub` file)"
                .into(),
        );
    }
    if s.starts_with("age1") {
        let r: age::x25519::Recipient = s.parse().map_err(|e: &str| {
            format!("not a valid X25519 recipient ({e}); only `age1...` X25519 keys and SSH keys are supported")
        })?;
        return Ok(RecipientEntry {
            key: r.to_string(),
            kind: "X25519",
            ssh_tag: None,
            comment: None,
            origin: origin.to_string(),
            recipient: Box::new(r),
        });
    }
    if s.starts_with("ssh-") || s.starts_with("ecdsa-") || s.starts_with("sk-") {
        let r: age::ssh::Recipient = s.parse().map_err(|e| match e {
            age::ssh::ParseRecipientKeyError::Unsupported(t) => format!(
                "SSH key type `{t}` cannot be an age recipient; use an ssh-ed25519 or ssh-rsa key, or an age key"
            ),
            age::ssh::ParseRecipientKeyError::RsaModulusTooSmall => {
                "ssh-rsa key is shorter than 2048 bits; age refuses it as too weak".into()
            }
            age::ssh::ParseRecipientKeyError::RsaModulusTooLarge => {
                "ssh-rsa key is larger than age supports".into()
            }
            _ => "not a valid SSH public key".into(),
        })?;
        let canonical = r.to_string();
        let (kind, blob) = canonical
            .split_once(' ')
            .and_then(|(k, b)| STANDARD.decode(b).ok().map(|b| (k.to_string(), b)))
            .ok_or_else(|| "not a valid SSH public key".to_string())?;
        let words: Vec<&str> = s.split_whitespace().skip(2).collect();
        let comment =
            (!words.is_empty()).then(|| words.join(" ").chars().take(80).collect::<String>());
        return Ok(RecipientEntry {
            key: canonical,
            kind: if kind == "ssh-rsa" {
                "ssh-rsa"
            } else {
                "ssh-ed25519"
            },
            ssh_tag: Some(ssh_tag_of_blob(&blob)),
            comment,
            origin: origin.to_string(),
            recipient: Box::new(r),
        });
    }
    Err(
        "not a recipient: expected an age public key (`age1...`) or an SSH public key (`ssh-ed25519 ...`, \
         `ssh-rsa ...`)"
            .into(),
    )
}

/// Read a recipients file: one recipient per line, `#` comments and blank lines ignored.
pub fn read_recipients_file(path: &Path) -> Result<Vec<RecipientEntry>, SecretError> {
    let text = read_limited(path, MAX_KEY_FILE)?;
    let text = String::from_utf8(text.to_vec()).map_err(|_| SecretError::Recipient {
        origin: path.display().to_string(),
        message: "recipients file is not UTF-8 text".into(),
        file: Some(path.into()),
        line: 0,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let origin = format!("{}:{}", path.display(), i + 1);
        let r = parse_recipient(l, &origin).map_err(|message| SecretError::Recipient {
            origin: origin.clone(),
            message,
            file: Some(path.into()),
            line: (i + 1) as u64,
        })?;
        out.push(r);
    }
    Ok(out)
}

/// The `.age-recipients` file that applies to `file`: in its directory or the nearest one above.
pub fn find_recipients_file(file: &Path) -> Option<PathBuf> {
    let abs = absolute(file);
    let mut dir = abs.parent();
    while let Some(d) = dir {
        let candidate = d.join(RECIPIENTS_FILE);
        if candidate.is_file() {
            return Some(candidate);
        }
        dir = d.parent();
    }
    None
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|c| c.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// The recipients to encrypt `file` to: `-r` and `-R` when given, else the `.age-recipients` found upwards.
/// Duplicates are dropped. Returns the recipients and a description of where they came from.
pub fn resolve_recipients(
    flags: &[String],
    files: &[PathBuf],
    file: &Path,
) -> Result<(Vec<RecipientEntry>, String), SecretError> {
    let mut out = Vec::new();
    let source;
    if flags.is_empty() && files.is_empty() {
        let Some(found) = find_recipients_file(file) else {
            return Err(SecretError::NoRecipients { path: file.into() });
        };
        out = read_recipients_file(&found)?;
        source = found.display().to_string();
    } else {
        for r in flags {
            out.push(parse_recipient(r, "--recipient").map_err(|message| {
                SecretError::Recipient {
                    origin: "--recipient".into(),
                    message,
                    file: None,
                    line: 0,
                }
            })?);
        }
        for f in files {
            out.extend(read_recipients_file(f)?);
        }
        source = "the command line".into();
    }
    let mut seen = HashSet::new();
    out.retain(|r| seen.insert(r.key.clone()));
    if out.is_empty() {
        return Err(SecretError::NoRecipients { path: file.into() });
    }
    Ok((out, source))
}

/// Encrypt `plaintext` to `recipients` as an ASCII-armored age file.
pub fn encrypt_armored(
    path: &Path,
    plaintext: &[u8],
    recipients: &[RecipientEntry],
) -> Result<Vec<u8>, SecretError> {
    let err = |e: &dyn fmt::Display| SecretError::Encrypt {
        path: path.into(),
        message: e.to_string(),
    };
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| &*r.recipient as _))
        .map_err(|e| err(&e))?;
    let mut out = Vec::with_capacity(plaintext.len() * 4 / 3 + 1024);
    let armor = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(|e| err(&e))?;
    let mut w = encryptor.wrap_output(armor).map_err(|e| err(&e))?;
    w.write_all(plaintext).map_err(|e| err(&e))?;
    let armor = w.finish().map_err(|e| err(&e))?;
    armor.finish().map_err(|e| err(&e))?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------------------
// Identities
// ---------------------------------------------------------------------------------------------------------------

/// Where an identity file was named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityOrigin {
    /// `--identity`.
    Flag,
    /// `EDGEFLEET_AGE_IDENTITY`.
    Env,
    /// `~/.ssh/id_ed25519` or `~/.ssh/id_rsa`, looked up by default.
    DefaultSsh,
}

enum IdKind {
    /// A native age key.
    X25519 {
        id: age::x25519::Identity,
        public: String,
    },
    /// An SSH key, usable now.
    Ssh {
        id: age::ssh::Identity,
        key_type: String,
        tag: String,
    },
    /// A passphrase-protected SSH key, not unlocked (yet).
    SshLocked {
        id: age::ssh::Identity,
        key_type: String,
        tag: String,
    },
    /// An age-encrypted identity file, not unlocked (yet).
    AgeLocked { ciphertext: Vec<u8> },
    /// Known, but cannot be used (why).
    Unusable { reason: String },
}

struct LoadedIdentity {
    path: PathBuf,
    kind: IdKind,
    /// Unlocking was tried and failed: don't ask again this run.
    unlock_failed: bool,
}

impl LoadedIdentity {
    fn describe(&self) -> String {
        let p = crate::diag::display_path(&self.path);
        match &self.kind {
            IdKind::X25519 { public, .. } => format!("{p} ({public})"),
            IdKind::Ssh { key_type, tag, .. } => format!("{p} ({key_type}, tag {tag})"),
            IdKind::SshLocked { key_type, tag, .. } => {
                format!("{p} ({key_type}, tag {tag}, passphrase-protected)")
            }
            IdKind::AgeLocked { .. } => format!(
                "{p} (passphrase-protected age identity{})",
                if self.unlock_failed {
                    ", not unlocked"
                } else {
                    ", not unlocked: the file has no X25519 recipient it could be"
                }
            ),
            IdKind::Unusable { reason } => format!("{p} (unusable: {reason})"),
        }
    }
}

/// Which identity files to use, resolved from flags, environment and defaults.
fn identity_paths(explicit: &[PathBuf]) -> Vec<(PathBuf, IdentityOrigin)> {
    if !explicit.is_empty() {
        return explicit
            .iter()
            .map(|p| (p.clone(), IdentityOrigin::Flag))
            .collect();
    }
    if let Some(v) = std::env::var_os(ENV_IDENTITY) {
        let v = v.to_string_lossy().to_string();
        let list: Vec<_> = v
            .split(':')
            .filter(|s| !s.trim().is_empty())
            .map(|s| (PathBuf::from(s.trim()), IdentityOrigin::Env))
            .collect();
        if !list.is_empty() {
            return list;
        }
    }
    let Some(home) = std::env::var_os("HOME") else {
        return Vec::new();
    };
    let ssh = PathBuf::from(home).join(".ssh");
    ["id_ed25519", "id_rsa"]
        .iter()
        .map(|n| ssh.join(n))
        .filter(|p| p.is_file())
        .map(|p| (p, IdentityOrigin::DefaultSsh))
        .collect()
}

fn read_limited(path: &Path, limit: u64) -> Result<Zeroizing<Vec<u8>>, SecretError> {
    let f = fs::File::open(path).map_err(|source| SecretError::Read {
        path: path.into(),
        source,
    })?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len > limit {
        return Err(SecretError::TooLarge { path: path.into() });
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(len as usize + 1));
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|source| SecretError::Read {
            path: path.into(),
            source,
        })?;
    if buf.len() as u64 > limit {
        return Err(SecretError::TooLarge { path: path.into() });
    }
    Ok(buf)
}

fn ssh_public(id: &age::ssh::Identity) -> Option<(String, String)> {
    let r = age::ssh::Recipient::try_from(id.clone()).ok()?;
    let s = r.to_string();
    let (kt, b64) = s.split_once(' ')?;
    let blob = STANDARD.decode(b64).ok()?;
    Some((kt.to_string(), ssh_tag_of_blob(&blob)))
}

/// Parse the content of an identity file (plaintext age identities, or an SSH private key).
fn parse_identity_text(path: &Path, text: &str) -> Result<Vec<IdKind>, SecretError> {
    let bad = |message: String| SecretError::Identity {
        path: path.into(),
        message,
    };
    if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----")
        || text.contains("-----BEGIN RSA PRIVATE KEY-----")
    {
        let id = age::ssh::Identity::from_buffer(
            BufReader::new(text.as_bytes()),
            Some(path.display().to_string()),
        )
        .map_err(|_| bad("not a valid SSH private key".into()))?;
        return Ok(vec![match &id {
            age::ssh::Identity::Unencrypted(_) => match ssh_public(&id) {
                Some((key_type, tag)) => IdKind::Ssh { id, key_type, tag },
                None => IdKind::Unusable {
                    reason: "SSH key type not supported by age".into(),
                },
            },
            age::ssh::Identity::Encrypted(_) => match ssh_public(&id) {
                Some((key_type, tag)) => IdKind::SshLocked { id, key_type, tag },
                None => IdKind::Unusable {
                    reason: "SSH key type not supported by age".into(),
                },
            },
            age::ssh::Identity::Unsupported(u) => IdKind::Unusable {
                reason: match u {
                    age::ssh::UnsupportedKey::EncryptedPem => {
                        "passphrase-protected PEM keys are not supported; convert it with `ssh-keygen -p -f KEY` \
                         (writes the OpenSSH format)"
                            .into()
                    }
                    age::ssh::UnsupportedKey::EncryptedSsh(c) => {
                        format!("SSH key encrypted with unsupported cipher `{c}`")
                    }
                    age::ssh::UnsupportedKey::Hardware(t) => {
                        format!("hardware SSH key type `{t}` is not supported")
                    }
                    age::ssh::UnsupportedKey::Type(t) => {
                        format!("SSH key type `{t}` cannot decrypt age files (use ed25519 or rsa)")
                    }
                },
            },
        }]);
    }
    if text.contains("PRIVATE KEY-----") {
        return Err(bad(
            "unsupported private key format: use an age identity (`edgefleet vault keygen`) or an OpenSSH \
             ed25519/rsa key"
                .into(),
        ));
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l.starts_with("AGE-SECRET-KEY-1") {
            let id: age::x25519::Identity = l
                .parse()
                .map_err(|_| bad(format!("line {} is not a valid age secret key", i + 1)))?;
            let public = id.to_public().to_string();
            out.push(IdKind::X25519 { id, public });
        } else if l.starts_with("AGE-PLUGIN-") {
            return Err(bad(format!(
                "line {}: age plugin identities are not supported",
                i + 1
            )));
        } else if l.starts_with("age1") || l.starts_with("ssh-") {
            return Err(bad(format!(
                "line {} is a public key (a recipient), not an identity: pass the private key file",
                i + 1
            )));
        } else {
            // Never echo the line: it could be anything, including a secret.
            return Err(bad(format!(
                "line {} is not an age identity (`AGE-SECRET-KEY-1...`) and the file is not an SSH private key",
                i + 1
            )));
        }
    }
    if out.is_empty() {
        return Err(bad("contains no identities".into()));
    }
    Ok(out)
}

fn load_identity_file(
    path: &Path,
    origin: IdentityOrigin,
) -> Result<Vec<LoadedIdentity>, SecretError> {
    let data = read_limited(path, MAX_KEY_FILE).map_err(|e| match e {
        SecretError::Read { source, .. } => SecretError::Identity {
            path: path.into(),
            message: format!(
                "cannot read it: {source}{}",
                match origin {
                    IdentityOrigin::Env => format!(" (named by {ENV_IDENTITY})"),
                    _ => String::new(),
                }
            ),
        },
        other => other,
    })?;
    let mk = |kind| LoadedIdentity {
        path: path.into(),
        kind,
        unlock_failed: false,
    };
    if looks_like_age(&data) {
        return Ok(vec![mk(IdKind::AgeLocked {
            ciphertext: data.to_vec(),
        })]);
    }
    let text = std::str::from_utf8(&data).map_err(|_| SecretError::Identity {
        path: path.into(),
        message: "not a text file (expected an age identity or an SSH private key)".into(),
    })?;
    Ok(parse_identity_text(path, text)?
        .into_iter()
        .map(mk)
        .collect())
}

// ---------------------------------------------------------------------------------------------------------------
// Passphrases
// ---------------------------------------------------------------------------------------------------------------

/// Where passphrases come from.
#[derive(Clone)]
pub enum PassphraseSource {
    /// `EDGEFLEET_AGE_PASSPHRASE_FILE`, `EDGEFLEET_AGE_PASSPHRASE`, then a prompt on `/dev/tty`.
    Auto,
    /// This passphrase, and nothing else (for library callers and tests).
    Fixed(SecretString),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PassOrigin {
    File,
    Env,
    Tty,
    Fixed,
}

impl PassOrigin {
    fn describe(self) -> String {
        match self {
            PassOrigin::File => ENV_PASSPHRASE_FILE.to_string(),
            PassOrigin::Env => ENV_PASSPHRASE.to_string(),
            PassOrigin::Tty => "the terminal".to_string(),
            PassOrigin::Fixed => "the caller".to_string(),
        }
    }
}

struct Passphrases {
    source: PassphraseSource,
    /// Passphrases that unlocked something this run: tried first on every other protected identity.
    known: Vec<SecretString>,
    /// How many times the terminal was prompted (tests and `-v`).
    prompts: usize,
}

impl Passphrases {
    fn obtain(
        &mut self,
        what: &str,
        attempt: u32,
    ) -> Result<(SecretString, PassOrigin), SecretError> {
        match &self.source {
            PassphraseSource::Fixed(p) => {
                if attempt == 0 {
                    Ok((p.clone(), PassOrigin::Fixed))
                } else {
                    Err(SecretError::WrongPassphrase {
                        what: what.into(),
                        origin: PassOrigin::Fixed.describe(),
                    })
                }
            }
            PassphraseSource::Auto => {
                let wrong = |o: PassOrigin| SecretError::WrongPassphrase {
                    what: what.into(),
                    origin: o.describe(),
                };
                if let Some(f) = std::env::var_os(ENV_PASSPHRASE_FILE) {
                    if attempt > 0 {
                        return Err(wrong(PassOrigin::File));
                    }
                    let f = PathBuf::from(f);
                    let data = read_limited(&f, MAX_KEY_FILE).map_err(|e| SecretError::Identity {
                        path: f.clone(),
                        message: format!("cannot read the passphrase file named by {ENV_PASSPHRASE_FILE}: {e}"),
                    })?;
                    let s =
                        String::from_utf8(data.to_vec()).map_err(|_| SecretError::Identity {
                            path: f.clone(),
                            message: format!(
                                "the passphrase file named by {ENV_PASSPHRASE_FILE} is not UTF-8"
                            ),
                        })?;
                    let mut s = Zeroizing::new(s);
                    let p = s.trim_end_matches(['\n', '\r']).to_string();
                    s.zeroize();
                    return Ok((SecretString::from(p), PassOrigin::File));
                }
                if let Some(v) = std::env::var_os(ENV_PASSPHRASE) {
                    if attempt > 0 {
                        return Err(wrong(PassOrigin::Env));
                    }
                    return Ok((
                        SecretString::from(v.to_string_lossy().to_string()),
                        PassOrigin::Env,
                    ));
                }
                if attempt >= 3 {
                    return Err(wrong(PassOrigin::Tty));
                }
                let prompt = if attempt == 0 {
                    format!("Passphrase for {what}: ")
                } else {
                    format!("Wrong passphrase, try again. Passphrase for {what}: ")
                };
                match tty::prompt_hidden(&prompt) {
                    Ok(Some(p)) => {
                        self.prompts += 1;
                        Ok((p, PassOrigin::Tty))
                    }
                    Ok(None) => Err(SecretError::NoPassphrase { what: what.into() }),
                    Err(tty::PromptError::Cancelled) => Err(SecretError::Cancelled),
                    Err(tty::PromptError::Io(_)) => {
                        Err(SecretError::NoPassphrase { what: what.into() })
                    }
                }
            }
        }
    }

    /// Find a passphrase for which `try_one` succeeds: known ones first, then ask (up to three times on a TTY).
    fn unlock<T>(
        &mut self,
        what: &str,
        mut try_one: impl FnMut(&SecretString) -> Result<Option<T>, SecretError>,
    ) -> Result<T, SecretError> {
        for p in &self.known {
            if let Some(t) = try_one(p)? {
                return Ok(t);
            }
        }
        let mut attempt = 0;
        loop {
            let (p, origin) = self.obtain(what, attempt)?;
            if let Some(t) = try_one(&p)? {
                self.known.push(p);
                return Ok(t);
            }
            if origin != PassOrigin::Tty {
                return Err(SecretError::WrongPassphrase {
                    what: what.into(),
                    origin: origin.describe(),
                });
            }
            attempt += 1;
        }
    }
}

/// A passphrase to protect a new identity: `EDGEFLEET_AGE_PASSPHRASE_FILE`, `EDGEFLEET_AGE_PASSPHRASE`, or asked
/// twice on the terminal. Empty passphrases are refused.
pub fn new_passphrase(what: &str) -> Result<SecretString, SecretError> {
    let mut p = Passphrases {
        source: PassphraseSource::Auto,
        known: Vec::new(),
        prompts: 0,
    };
    let env_set = std::env::var_os(ENV_PASSPHRASE_FILE).is_some()
        || std::env::var_os(ENV_PASSPHRASE).is_some();
    let (first, _) = p.obtain(what, 0)?;
    if first.expose_secret().is_empty() {
        return Err(SecretError::NoPassphrase {
            what: format!("{what} (an empty passphrase was given)"),
        });
    }
    if !env_set {
        match tty::prompt_hidden(&format!("Confirm the passphrase for {what}: ")) {
            Ok(Some(again)) if again.expose_secret() == first.expose_secret() => {}
            Ok(Some(_)) => {
                return Err(SecretError::WrongPassphrase {
                    what: what.into(),
                    origin: "the terminal: the two passphrases differ".into(),
                })
            }
            Ok(None) | Err(tty::PromptError::Io(_)) => {
                return Err(SecretError::NoPassphrase { what: what.into() })
            }
            Err(tty::PromptError::Cancelled) => return Err(SecretError::Cancelled),
        }
    }
    Ok(first)
}

/// Encrypt `plaintext` with a passphrase (scrypt) as an ASCII-armored age file.
pub fn encrypt_with_passphrase(
    path: &Path,
    plaintext: &[u8],
    passphrase: SecretString,
) -> Result<Vec<u8>, SecretError> {
    let err = |e: &dyn fmt::Display| SecretError::Encrypt {
        path: path.into(),
        message: e.to_string(),
    };
    let encryptor = age::Encryptor::with_user_passphrase(passphrase);
    let mut out = Vec::with_capacity(plaintext.len() * 4 / 3 + 1024);
    let armor = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(|e| err(&e))?;
    let mut w = encryptor.wrap_output(armor).map_err(|e| err(&e))?;
    w.write_all(plaintext).map_err(|e| err(&e))?;
    let armor = w.finish().map_err(|e| err(&e))?;
    armor.finish().map_err(|e| err(&e))?;
    Ok(out)
}

/// The controlling terminal, for passphrase prompts (no echo, Ctrl-C cancels).
mod tty {
    use std::fs::OpenOptions;
    use std::io::{self, Read, Write};
    use std::os::fd::AsRawFd;

    use age::secrecy::zeroize::{Zeroize, Zeroizing};
    use age::secrecy::SecretString;

    /// Why a prompt produced no passphrase.
    pub(super) enum PromptError {
        /// Ctrl-C or Ctrl-D.
        Cancelled,
        /// Reading the terminal failed.
        Io(#[allow(dead_code)] io::Error),
    }

    struct Restore {
        fd: i32,
        orig: libc::termios,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: fd is an open terminal descriptor owned by the caller for the guard's lifetime; `orig` was
            // filled by tcgetattr on it.
            unsafe {
                libc::tcsetattr(self.fd, libc::TCSANOW, &self.orig);
            }
        }
    }

    /// Ask on `/dev/tty` without echo. `Ok(None)` when there is no controlling terminal.
    pub(super) fn prompt_hidden(prompt: &str) -> Result<Option<SecretString>, PromptError> {
        let Ok(mut tty) = OpenOptions::new().read(true).write(true).open("/dev/tty") else {
            return Ok(None);
        };
        let fd = tty.as_raw_fd();
        // SAFETY: termios is plain old data; tcgetattr fills it and reports failure via its return value.
        let mut term: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
            return Ok(None);
        }
        let guard = Restore { fd, orig: term };
        term.c_lflag &= !(libc::ECHO | libc::ICANON | libc::ISIG);
        term.c_cc[libc::VMIN] = 1;
        term.c_cc[libc::VTIME] = 0;
        // SAFETY: fd is the open terminal; term is a valid termios.
        if unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &term) } != 0 {
            return Ok(None);
        }
        tty.write_all(prompt.as_bytes()).map_err(PromptError::Io)?;
        tty.flush().map_err(PromptError::Io)?;
        let mut buf = Zeroizing::new(Vec::<u8>::with_capacity(256));
        let mut byte = [0u8; 1];
        loop {
            match tty.read(&mut byte) {
                Ok(0) => break,
                Ok(_) => match byte[0] {
                    b'\n' | b'\r' => break,
                    0x03 => {
                        let _ = tty.write_all(b"\n");
                        return Err(PromptError::Cancelled);
                    }
                    0x04 if buf.is_empty() => {
                        let _ = tty.write_all(b"\n");
                        return Err(PromptError::Cancelled);
                    }
                    0x7f | 0x08 => {
                        // Remove one whole UTF-8 character.
                        while let Some(b) = buf.pop() {
                            if b & 0xC0 != 0x80 {
                                break;
                            }
                        }
                    }
                    0x15 => buf.clear(),
                    b => {
                        if buf.len() < buf.capacity() {
                            buf.push(b);
                        }
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(PromptError::Io(e)),
            }
        }
        byte.zeroize();
        let _ = tty.write_all(b"\n");
        drop(guard);
        let s = String::from_utf8_lossy(&buf).to_string();
        Ok(Some(SecretString::from(s)))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The store: identities, passphrases and the per-run cache
// ---------------------------------------------------------------------------------------------------------------

struct Inner {
    explicit: Vec<PathBuf>,
    /// Loaded on first need, so a run that decrypts nothing never touches key files or prompts.
    keyring: Option<Vec<LoadedIdentity>>,
    passphrases: Passphrases,
    cache: HashMap<PathBuf, Plaintext>,
    /// Parsed vars files, so each is parsed (and warned about) once.
    vars: HashMap<PathBuf, Value>,
    decryptions: usize,
    /// Public keys (or SSH tags) of identities that decrypted something this run.
    used: Vec<String>,
}

/// Identities, passphrases and decrypted files for one run. The process has one ([`global`]); tests and
/// library callers may make their own.
pub struct SecretStore {
    inner: Mutex<Inner>,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretStore")
    }
}

/// A file's bytes decrypted, with what the header said.
pub struct Decrypted {
    /// The plaintext.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The header.
    pub header: HeaderInfo,
    /// What decrypted it: the identity's `age1...` public key, `ssh tag XXXXXX`, or `passphrase`.
    pub identity: String,
}

impl SecretStore {
    /// A store using these identity files (empty: `EDGEFLEET_AGE_IDENTITY`, then ~/.ssh keys).
    pub fn new(identities: &[PathBuf]) -> Self {
        SecretStore {
            inner: Mutex::new(Inner {
                explicit: identities.to_vec(),
                keyring: None,
                passphrases: Passphrases {
                    source: PassphraseSource::Auto,
                    known: Vec::new(),
                    prompts: 0,
                },
                cache: HashMap::new(),
                vars: HashMap::new(),
                decryptions: 0,
                used: Vec::new(),
            }),
        }
    }

    /// Use this passphrase source instead of the environment and terminal.
    pub fn with_passphrase_source(self, source: PassphraseSource) -> Self {
        self.lock().passphrases.source = source;
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many files this store actually decrypted (cache hits do not count).
    pub fn decryptions(&self) -> usize {
        self.lock().decryptions
    }

    /// How many times it prompted on the terminal for a passphrase.
    pub fn prompts(&self) -> usize {
        self.lock().passphrases.prompts
    }

    /// Public keys (`age1...`) and SSH key tags of the identities that decrypted something so far.
    pub fn used_identities(&self) -> Vec<String> {
        self.lock().used.clone()
    }

    /// Decrypt `path` once per run: later calls for the same file (by canonical path) return the cached bytes.
    /// Text content is registered with the redactor.
    pub fn decrypt_file(&self, path: &Path) -> Result<Plaintext, SecretError> {
        let canon = fs::canonicalize(path).map_err(|source| SecretError::Read {
            path: path.into(),
            source,
        })?;
        let mut inner = self.lock();
        if let Some(p) = inner.cache.get(&canon) {
            return Ok(p.clone());
        }
        let data = read_limited(path, MAX_FILE)?;
        let d = inner.decrypt(path, &data)?;
        let p = Plaintext::new(d.plaintext);
        if let Some(t) = p.text() {
            crate::redact::register(t);
        }
        inner.cache.insert(canon, p.clone());
        Ok(p)
    }

    /// Decrypt bytes read from `path` without caching (for `vault` commands that rewrite the file).
    pub fn decrypt_bytes(&self, path: &Path, data: &[u8]) -> Result<Decrypted, SecretError> {
        self.lock().decrypt(path, data)
    }

    /// Decrypt an age-encrypted YAML vars file (cached), parse it, register every value with the redactor.
    pub fn load_vars_file(&self, path: &Path) -> Result<Value, SecretError> {
        let canon = fs::canonicalize(path).map_err(|source| SecretError::Read {
            path: path.into(),
            source,
        })?;
        if let Some(v) = self.lock().vars.get(&canon) {
            return Ok(v.clone());
        }
        let p = self.decrypt_file(path)?;
        let Some(text) = p.text() else {
            return Err(SecretError::Damaged {
                path: path.into(),
                detail:
                    "it decrypts, but the content is not UTF-8 text, so it is not a YAML vars file"
                        .into(),
            });
        };
        let v = parse_secret_yaml(text, path)?;
        crate::redact::register_value(&v);
        let mut short = Vec::new();
        short_strings(&v, &mut String::new(), &mut short);
        if !short.is_empty() {
            eprintln!(
                "warning: {}: {} shorter than {} characters, so {} cannot be masked in output: {}",
                crate::diag::display_path(path),
                if short.len() == 1 {
                    "this secret value is"
                } else {
                    "these secret values are"
                },
                crate::redact::MIN_MASK_LEN,
                if short.len() == 1 { "it" } else { "they" },
                short.join(", ")
            );
        }
        self.lock().vars.insert(canon, v.clone());
        Ok(v)
    }
}

/// Parse decrypted YAML. A parse error keeps its line and column but never the source snippet or any quoted
/// fragment of it: the text is secret.
fn parse_secret_yaml(text: &str, path: &Path) -> Result<Value, SecretError> {
    crate::yaml::parse_value(text, path).map_err(|d| {
        let mut msg = String::new();
        let mut in_quote: Option<char> = None;
        for c in d.message.chars() {
            match in_quote {
                Some(q) if c == q => {
                    in_quote = None;
                    msg.push(q);
                }
                Some(_) => {}
                None if matches!(c, '"' | '\'' | '`') => {
                    in_quote = Some(c);
                    msg.push(c);
                    msg.push('…');
                }
                None => msg.push(c),
            }
        }
        let msg = crate::redact::redact(&msg).into_owned();
        let mut leaks = false;
        for word in msg.split(|c: char| !c.is_alphanumeric()) {
            // A long token from the plaintext in the parser's words: drop the message rather than risk it.
            if word.len() >= 12 && text.contains(word) {
                leaks = true;
            }
        }
        let at = if d.line > 0 {
            format!(" at line {}, column {}", d.line, d.col)
        } else {
            String::new()
        };
        SecretError::Damaged {
            path: path.into(),
            detail: format!(
                "it decrypts, but the content is not valid YAML{at}{}; content not shown because it is secret: \
                 fix it with `edgefleet vault edit`",
                if leaks || msg.is_empty() { String::new() } else { format!(": {msg}") }
            ),
        }
    })
}

/// Check that decrypted text is valid YAML; the error (if any) never shows the content.
pub fn check_secret_yaml(text: &str, path: &Path) -> Result<(), SecretError> {
    parse_secret_yaml(text, path).map(|_| ())
}

/// Key paths of string values too short to be masked by value.
fn short_strings(v: &Value, path: &mut String, out: &mut Vec<String>) {
    match v {
        Value::String(s) if !s.trim().is_empty() && !crate::redact::is_maskable(s) => {
            out.push(if path.is_empty() {
                "(top level)".into()
            } else {
                path.clone()
            })
        }
        Value::Object(m) => {
            for (k, v) in m {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                short_strings(v, path, out);
                path.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                short_strings(v, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// What went wrong inside age, sorted into our error kinds.
fn classify(path: &Path, e: age::DecryptError) -> SecretError {
    use age::DecryptError as D;
    match e {
        D::InvalidMac => SecretError::Damaged {
            path: path.into(),
            detail: "the header MAC does not match".into(),
        },
        D::InvalidHeader => SecretError::Damaged {
            path: path.into(),
            detail: "the header is malformed".into(),
        },
        D::DecryptionFailed => SecretError::Damaged {
            path: path.into(),
            detail: "a recipient stanza matched the key but does not decrypt".into(),
        },
        // `inspect` already checked the version line, so age not recognising the header means it is malformed.
        D::UnknownFormat => SecretError::Damaged {
            path: path.into(),
            detail: "the header is malformed".into(),
        },
        D::ExcessiveWork { required, target } => SecretError::Damaged {
            path: path.into(),
            detail: format!(
                "its passphrase work factor 2^{required} is far above this machine's 2^{target}; refusing"
            ),
        },
        D::Io(io) => classify_io(path, &io),
        D::KeyDecryptionFailed => SecretError::Damaged {
            path: path.into(),
            detail: "a key could not be decrypted".into(),
        },
        D::NoMatchingKeys => SecretError::Damaged {
            path: path.into(),
            detail: "no matching key".into(),
        },
        other => SecretError::Damaged {
            path: path.into(),
            detail: other.to_string(),
        },
    }
}

fn classify_io(path: &Path, io: &io::Error) -> SecretError {
    if io.kind() == io::ErrorKind::UnexpectedEof {
        SecretError::Truncated {
            path: path.into(),
            detail: "the encrypted payload ends early".into(),
        }
    } else {
        SecretError::Damaged {
            path: path.into(),
            detail: match io
                .get_ref()
                .and_then(|e| e.downcast_ref::<age::armor::ArmoredReadError>())
            {
                Some(a) => format!("bad armor: {a}"),
                None => {
                    "the encrypted payload fails authentication: it was changed or cut short".into()
                }
            },
        }
    }
}

/// Why one decryption attempt failed, before it is sorted into a [`SecretError`].
enum AttemptError {
    /// From age's header and key handling.
    Age(age::DecryptError),
    /// From reading the payload.
    Io(io::Error),
}

impl AttemptError {
    fn classify(self, path: &Path) -> SecretError {
        match self {
            AttemptError::Age(e) => classify(path, e),
            AttemptError::Io(e) => classify_io(path, &e),
        }
    }
}

/// Plaintext bytes being handled here, zeroized when dropped.
type SecretBuf = Zeroizing<Vec<u8>>;

/// One decryption attempt with the given identities: `Ok(None)` when none matches.
fn try_decrypt(
    data: &[u8],
    ids: &[&dyn age::Identity],
) -> Result<Option<Zeroizing<Vec<u8>>>, AttemptError> {
    let reader = ArmoredReader::new(BufReader::new(data));
    let dec = age::Decryptor::new_buffered(reader).map_err(AttemptError::Age)?;
    let mut stream = match dec.decrypt(ids.iter().copied()) {
        Ok(s) => s,
        Err(age::DecryptError::NoMatchingKeys) => return Ok(None),
        Err(e) => return Err(AttemptError::Age(e)),
    };
    // Plaintext is never longer than the ciphertext: with this capacity the buffer never reallocates, so no
    // un-zeroized copy is left behind.
    let mut out = Zeroizing::new(Vec::with_capacity(data.len()));
    stream.read_to_end(&mut out).map_err(AttemptError::Io)?;
    Ok(Some(out))
}

/// Decrypt a passphrase-encrypted (scrypt) age payload: `Ok(None)` when the passphrase is wrong.
fn try_passphrase(
    path: &Path,
    data: &[u8],
    p: &SecretString,
) -> Result<Option<Zeroizing<Vec<u8>>>, SecretError> {
    let id = age::scrypt::Identity::new(p.clone());
    match try_decrypt(data, &[&id as &dyn age::Identity]) {
        Ok(r) => Ok(r),
        Err(AttemptError::Age(age::DecryptError::DecryptionFailed)) => Ok(None),
        Err(e) => Err(e.classify(path)),
    }
}

impl Inner {
    fn keyring(&mut self) -> Result<&mut Vec<LoadedIdentity>, SecretError> {
        if self.keyring.is_none() {
            let mut ring = Vec::new();
            for (p, origin) in identity_paths(&self.explicit) {
                match load_identity_file(&p, origin) {
                    Ok(ids) => ring.extend(ids),
                    // The operator's default SSH keys are a guess: one we cannot parse is noted, not fatal.
                    Err(e) if origin == IdentityOrigin::DefaultSsh => ring.push(LoadedIdentity {
                        path: p.clone(),
                        kind: IdKind::Unusable {
                            reason: match e {
                                SecretError::Identity { message, .. } => message,
                                other => other.to_string(),
                            },
                        },
                        unlock_failed: false,
                    }),
                    Err(e) => return Err(e),
                }
            }
            self.keyring = Some(ring);
        }
        Ok(self.keyring.get_or_insert_with(Vec::new))
    }

    fn decrypt(&mut self, path: &Path, data: &[u8]) -> Result<Decrypted, SecretError> {
        let header = inspect(path, data)?;
        if header.is_passphrase() {
            let what = crate::diag::display_path(path);
            let plaintext = self
                .passphrases
                .unlock(&what, |p| try_passphrase(path, data, p))?;
            self.decryptions += 1;
            return Ok(Decrypted {
                plaintext,
                header,
                identity: "passphrase".into(),
            });
        }
        let tags: HashSet<String> = header.ssh_tags().into_iter().map(String::from).collect();
        let ring = self.keyring()?;
        if ring.is_empty() {
            return Err(SecretError::NoIdentities { path: path.into() });
        }
        // First the identities that need nothing from the operator.
        if let Some((pt, who)) = attempt_usable(path, data, ring)? {
            self.decryptions += 1;
            self.used.push(who.clone());
            return Ok(Decrypted {
                plaintext: pt,
                header,
                identity: who,
            });
        }
        // Then unlock protected identities that could be recipients of this file, one at a time. Unlocking
        // replaces an entry by the keys it held (maybe several), so look the next candidate up afresh each time.
        loop {
            let ring = self.keyring.get_or_insert_with(Vec::new);
            let next = ring.iter().position(|id| {
                !id.unlock_failed
                    && match &id.kind {
                        IdKind::SshLocked { tag, .. } => tags.contains(tag),
                        IdKind::AgeLocked { .. } => header.has_x25519(),
                        _ => false,
                    }
            });
            let Some(i) = next else { break };
            self.unlock(i)?;
            let ring = self.keyring.get_or_insert_with(Vec::new);
            if let Some((pt, who)) = attempt_usable(path, data, ring)? {
                self.decryptions += 1;
                self.used.push(who.clone());
                return Ok(Decrypted {
                    plaintext: pt,
                    header,
                    identity: who,
                });
            }
        }
        let ring = self.keyring.get_or_insert_with(Vec::new);
        let tried: Vec<String> = ring.iter().map(LoadedIdentity::describe).collect();
        let known = known_tags(path);
        Err(SecretError::NoMatch {
            path: path.into(),
            recipients: header.describe(&known),
            tried: format!(
                "{} identit{}:{}",
                tried.len(),
                if tried.len() == 1 { "y" } else { "ies" },
                tried
                    .iter()
                    .map(|t| format!("\n    - {t}"))
                    .collect::<String>()
            ),
        })
    }

    /// Unlock protected identity `i` (prompting if needed); the unlocked keys replace it in the keyring.
    fn unlock(&mut self, i: usize) -> Result<(), SecretError> {
        let Some(ring) = self.keyring.as_mut() else {
            return Ok(());
        };
        let what = format!("identity {}", crate::diag::display_path(&ring[i].path));
        let path = ring[i].path.clone();
        // `Ok(None)`: nothing to unlock after all; it is marked so the caller does not pick it again.
        let result: Result<Option<Vec<IdKind>>, SecretError> = match &ring[i].kind {
            IdKind::SshLocked { id, key_type, tag } => {
                let (id, key_type, tag) = (id.clone(), key_type.clone(), tag.clone());
                match id {
                    age::ssh::Identity::Encrypted(enc) => self
                        .passphrases
                        .unlock(&what, |p| match enc.decrypt(p.clone()) {
                            Ok(k) => Ok(Some(k)),
                            Err(_) => Ok(None),
                        })
                        .map(|k| {
                            Some(vec![IdKind::Ssh {
                                id: k.into(),
                                key_type,
                                tag,
                            }])
                        }),
                    _ => Ok(None),
                }
            }
            IdKind::AgeLocked { ciphertext } => {
                let ciphertext = ciphertext.clone();
                match inspect(&path, &ciphertext) {
                    Err(e) => Err(e),
                    Ok(h) if !h.is_passphrase() => Err(SecretError::Identity {
                        path: path.clone(),
                        message: "is an age file encrypted to recipients, not with a passphrase; decrypt it first \
                                  or pass the identity that can"
                            .into(),
                    }),
                    Ok(_) => self
                        .passphrases
                        .unlock(&what, |p| try_passphrase(&path, &ciphertext, p))
                        .and_then(|pt| {
                            let text =
                                std::str::from_utf8(&pt).map_err(|_| SecretError::Identity {
                                    path: path.clone(),
                                    message: "decrypts, but does not contain an age identity"
                                        .into(),
                                })?;
                            parse_identity_text(&path, text)
                        })
                        .map(Some),
                }
            }
            _ => Ok(None),
        };
        let ring = self.keyring.get_or_insert_with(Vec::new);
        match result {
            Ok(Some(kinds)) => {
                let mut new: Vec<LoadedIdentity> = kinds
                    .into_iter()
                    .map(|kind| LoadedIdentity {
                        path: path.clone(),
                        kind,
                        unlock_failed: false,
                    })
                    .collect();
                let rest = ring.split_off(i + 1);
                ring.pop();
                ring.append(&mut new);
                ring.extend(rest);
                Ok(())
            }
            Ok(None) => {
                ring[i].unlock_failed = true;
                Ok(())
            }
            Err(e) => {
                ring[i].unlock_failed = true;
                Err(e)
            }
        }
    }
}

/// Try every identity usable without a passphrase. Returns the plaintext and a label of the one that worked.
fn attempt_usable(
    path: &Path,
    data: &[u8],
    ring: &[LoadedIdentity],
) -> Result<Option<(SecretBuf, String)>, SecretError> {
    let usable: Vec<(&dyn age::Identity, String)> = ring
        .iter()
        .filter_map(|id| match &id.kind {
            IdKind::X25519 { id, public } => Some((id as &dyn age::Identity, public.clone())),
            IdKind::Ssh { id, tag, .. } => {
                Some((id as &dyn age::Identity, format!("ssh tag {tag}")))
            }
            _ => None,
        })
        .collect();
    if usable.is_empty() {
        // Still validate the file itself, so a damaged file says so rather than "no identity".
        try_decrypt(data, &[]).map_err(|e| e.classify(path))?;
        return Ok(None);
    }
    // One identity at a time, so we know which one worked (for the lock-out check of `vault edit`/`rekey`).
    for (id, who) in &usable {
        if let Some(pt) = try_decrypt(data, &[*id]).map_err(|e| e.classify(path))? {
            return Ok(Some((pt, who.clone())));
        }
    }
    Ok(None)
}

/// SSH key tags of the recipients in the `.age-recipients` that applies to `file` (best effort, for messages).
fn known_tags(file: &Path) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Some(rf) = find_recipients_file(file) {
        if let Ok(list) = read_recipients_file(&rf) {
            for r in list {
                if let Some(t) = &r.ssh_tag {
                    out.insert(
                        t.clone(),
                        format!("{} in {}", r.label(), crate::diag::display_path(&rf)),
                    );
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// The process-wide store and the loader API
// ---------------------------------------------------------------------------------------------------------------

static GLOBAL: LazyLock<RwLock<Arc<SecretStore>>> =
    LazyLock::new(|| RwLock::new(Arc::new(SecretStore::new(&[]))));

/// The process-wide store (what [`decrypt_file`] and [`load_vars_file`] use).
pub fn global() -> Arc<SecretStore> {
    GLOBAL
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Configure the identities used to decrypt for the rest of this process (empty: `EDGEFLEET_AGE_IDENTITY`,
/// then ~/.ssh keys). Call it once per run, before loading; a different list starts a fresh store (nothing
/// decrypted so far is kept), the same list again is a no-op.
pub fn configure(identities: &[PathBuf]) {
    let mut g = GLOBAL.write().unwrap_or_else(PoisonError::into_inner);
    // Configuring the same identities again (several loaders, one run) keeps what was decrypted.
    if g.lock().explicit == identities {
        return;
    }
    *g = Arc::new(SecretStore::new(identities));
}

/// Is this path an age-encrypted file by name (`*.age`)?
pub fn is_age_path(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "age")
}

/// Decrypt an age file (armored or binary) into memory, once per run; the text is registered with the
/// redactor. Prefer [`decrypt_file_secret`], whose bytes are zeroized when dropped; this copy is not.
pub fn decrypt_file(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    Ok(decrypt_file_secret(path)?.bytes().to_vec())
}

/// Decrypt an age file into memory, once per run (shared, zeroized on drop; registered with the redactor).
pub fn decrypt_file_secret(path: &Path) -> Result<Plaintext, Diagnostic> {
    global().decrypt_file(path).map_err(SecretError::into_diag)
}

/// Load an age-encrypted YAML vars file: decrypt (once per run), parse, and register every value with the
/// redactor. Parse errors give line and column but never show the content.
pub fn load_vars_file(path: &Path) -> Result<Value, Diagnostic> {
    global()
        .load_vars_file(path)
        .map_err(SecretError::into_diag)
}

/// How many files the process-wide store has decrypted (cache hits do not count).
pub fn decryption_count() -> usize {
    global().decryptions()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_key(dir: &Path) -> (SecretStore, age::x25519::Identity) {
        let id = age::x25519::Identity::generate();
        let p = dir.join("key.txt");
        fs::write(&p, format!("# test\n{}\n", id.to_string().expose_secret())).unwrap();
        (SecretStore::new(&[p]), id)
    }

    fn encrypt_to(dir: &Path, name: &str, text: &str, r: &str) -> PathBuf {
        let rec = parse_recipient(r, "test").unwrap();
        let ct = encrypt_armored(Path::new(name), text.as_bytes(), &[rec]).unwrap();
        let p = dir.join(name);
        fs::write(&p, ct).unwrap();
        p
    }

    #[test]
    fn roundtrip_and_decrypt_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, id) = store_with_key(dir.path());
        let f = encrypt_to(
            dir.path(),
            "v.yml.age",
            "db_password: unit-canary-9f3e2\n",
            &id.to_public().to_string(),
        );
        let text = fs::read_to_string(&f).unwrap();
        assert!(text.starts_with(ARMOR_BEGIN), "{text}");
        let v = store.load_vars_file(&f).unwrap();
        assert_eq!(v["db_password"], "unit-canary-9f3e2");
        assert_eq!(store.decryptions(), 1);
        // Same file again, also through another spelling of its path: cached.
        store.load_vars_file(&f).unwrap();
        let other = dir.path().join(".").join("v.yml.age");
        store.decrypt_file(&other).unwrap();
        assert_eq!(store.decryptions(), 1);
        assert_eq!(
            crate::redact::redact("x unit-canary-9f3e2 y"),
            "x ******** y"
        );
    }

    fn protected_identity_file(path: &Path, pass: &str, ids: &[&age::x25519::Identity]) {
        let content: String = ids
            .iter()
            .map(|i| format!("{}\n", i.to_string().expose_secret()))
            .collect();
        let mut r = age::scrypt::Recipient::new(SecretString::from(pass.to_string()));
        r.set_work_factor(10);
        let enc =
            age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
        let mut out = Vec::new();
        let mut w = enc.wrap_output(&mut out).unwrap();
        w.write_all(content.as_bytes()).unwrap();
        w.finish().unwrap();
        fs::write(path, out).unwrap();
    }

    #[test]
    fn unlocks_later_protected_identities_after_one_expands_into_several_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, k2, k3) = (
            age::x25519::Identity::generate(),
            age::x25519::Identity::generate(),
            age::x25519::Identity::generate(),
        );
        let a = dir.path().join("a.age");
        let b = dir.path().join("b.age");
        protected_identity_file(&a, "same pass", &[&k1, &k2]);
        protected_identity_file(&b, "same pass", &[&k3]);
        let f = encrypt_to(
            dir.path(),
            "f.age",
            "payload-xyz",
            &k3.to_public().to_string(),
        );
        let store = SecretStore::new(&[a, b]).with_passphrase_source(PassphraseSource::Fixed(
            SecretString::from("same pass".to_string()),
        ));
        let p = store.decrypt_file(&f).unwrap();
        assert_eq!(p.bytes(), b"payload-xyz");
        assert_eq!(store.used_identities(), vec![k3.to_public().to_string()]);
    }

    #[test]
    fn header_describes_recipients() {
        let dir = tempfile::tempdir().unwrap();
        let a = age::x25519::Identity::generate().to_public().to_string();
        let recs = vec![
            parse_recipient(&a, "t").unwrap(),
            parse_recipient(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN alice@rust",
                "t",
            )
            .unwrap(),
        ];
        let ct = encrypt_armored(Path::new("x"), b"hello", &recs).unwrap();
        let info = inspect(Path::new("x"), &ct).unwrap();
        assert!(info.armored);
        assert_eq!(info.stanzas.len(), 2);
        let tag = recs[1].ssh_tag.clone().unwrap();
        assert_eq!(info.stanzas[1].ssh_tag(), Some(tag.as_str()));
        let d = info.describe(&HashMap::new());
        assert!(d.contains("2 recipients"), "{d}");
        assert!(d.contains("1 X25519"), "{d}");
        assert!(d.contains(&format!("1 ssh-ed25519 (tag {tag})")), "{d}");
        let _ = dir;
    }

    #[test]
    fn yaml_errors_never_show_content() {
        let text = "a: 1\nsecret_value: \"unterminated-canary-5c1 \n  - [\n";
        let e = parse_secret_yaml(text, Path::new("s.yml.age")).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("not valid YAML"), "{m}");
        assert!(!m.contains("canary"), "{m}");
        assert!(!m.contains("secret_value"), "{m}");
    }

    #[test]
    fn recipients_reject_private_keys_without_echo() {
        let id = age::x25519::Identity::generate();
        let s = id.to_string();
        let e = parse_recipient(s.expose_secret(), "t").unwrap_err();
        assert!(e.contains("private key"), "{e}");
        assert!(!e.contains("AGE-SECRET-KEY"), "{e}");
    }

    #[test]
    fn identity_file_errors_do_not_echo_lines() {
        let e = parse_identity_text(Path::new("k"), "# c\nhunter2-canary-line\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn short_strings_are_reported_by_key() {
        let v = serde_json::json!({"a": {"pin": "12"}, "long": "long-enough", "l": ["x"]});
        let mut out = Vec::new();
        short_strings(&v, &mut String::new(), &mut out);
        assert_eq!(out, vec!["a.pin".to_string(), "l[0]".to_string()]);
    }
}
