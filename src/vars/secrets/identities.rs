//! Identities: which key files decrypt, and what each one is.
//!
//! Owns resolving identity files (`--identity`, `EDGEFLEET_AGE_IDENTITY`, the operator's `~/.ssh` keys), reading
//! and parsing them (age identities, age-encrypted identity files, OpenSSH/PEM ed25519 and rsa keys), and
//! describing them by public key or tag for error messages. It must not ask for passphrases or unlock anything
//! (the store does, with `passphrases`), and never echo a line of an identity file.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::recipients::ssh_tag_of_blob;
use super::{looks_like_age, read_limited, SecretError, ENV_IDENTITY, MAX_KEY_FILE};

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

pub(super) enum IdKind {
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

pub(super) struct LoadedIdentity {
    pub(super) path: PathBuf,
    pub(super) kind: IdKind,
    /// Unlocking was tried and failed: don't ask again this run.
    pub(super) unlock_failed: bool,
}

impl LoadedIdentity {
    pub(super) fn describe(&self) -> String {
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
pub(super) fn identity_paths(explicit: &[PathBuf]) -> Vec<(PathBuf, IdentityOrigin)> {
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

fn ssh_public(id: &age::ssh::Identity) -> Option<(String, String)> {
    let r = age::ssh::Recipient::try_from(id.clone()).ok()?;
    let s = r.to_string();
    let (kt, b64) = s.split_once(' ')?;
    let blob = STANDARD.decode(b64).ok()?;
    Some((kt.to_string(), ssh_tag_of_blob(&blob)))
}

/// Parse the content of an identity file (plaintext age identities, or an SSH private key).
pub(super) fn parse_identity_text(path: &Path, text: &str) -> Result<Vec<IdKind>, SecretError> {
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

pub(super) fn load_identity_file(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_file_errors_do_not_echo_lines() {
        let e = parse_identity_text(Path::new("k"), "# c\nhunter2-canary-line\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}
