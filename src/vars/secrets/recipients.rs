//! Recipients and encryption to them: `-r`, `-R`, `.age-recipients` files, and [`encrypt_armored`].
//!
//! Owns parsing recipients (`age1...`, `ssh-ed25519`, `ssh-rsa` public keys), finding the `.age-recipients` that
//! applies to a file, resolving which recipients a file is encrypted to, and encrypting to them. It must not
//! write files (callers do, `vault` only) and must never echo a private key pasted where a recipient belongs.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use age::armor::{ArmoredWriter, Format};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{read_limited, SecretError, MAX_KEY_FILE, RECIPIENTS_FILE};

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
pub(super) fn ssh_tag_of_blob(blob: &[u8]) -> String {
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

/// SSH key tags of the recipients in the `.age-recipients` that applies to `file` (best effort, for messages).
pub(super) fn known_tags(file: &Path) -> HashMap<String, String> {
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

#[cfg(test)]
mod tests {
    use age::secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn recipients_reject_private_keys_without_echo() {
        let id = age::x25519::Identity::generate();
        let s = id.to_string();
        let e = parse_recipient(s.expose_secret(), "t").unwrap_err();
        assert!(e.contains("private key"), "{e}");
        assert!(!e.contains("AGE-SECRET-KEY"), "{e}");
    }
}
