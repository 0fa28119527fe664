//! The store: identities, passphrases and the per-run plaintext cache behind every decryption.
//!
//! Owns [`SecretStore`] (one per run: the keyring loaded on first need, the passphrases, the cache of decrypted
//! files by canonical path, the warnings not yet taken), [`Decrypted`], and the order in which identities are
//! tried and protected ones unlocked. It must not print (warnings are collected and handed out by
//! [`SecretStore::take_warnings`]), must not parse vars files (`vars_file`) and never writes plaintext anywhere.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use age::secrecy::zeroize::Zeroizing;
use serde_json::Value;

use super::decrypt::{attempt_usable, try_passphrase};
use super::identities::{
    identity_paths, load_identity_file, parse_identity_text, IdKind, LoadedIdentity,
};
use super::passphrases::Passphrases;
use super::recipients::known_tags;
use super::{
    inspect, read_limited, HeaderInfo, IdentityOrigin, PassphraseSource, Plaintext, SecretError,
    MAX_FILE,
};

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
    /// Warnings not yet taken (never containing secret material), oldest first.
    warnings: Vec<String>,
}

/// Identities, passphrases and decrypted files for one run. The process has one ([`global`](super::global)); tests and
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
                warnings: Vec::new(),
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

    /// Was this store made for exactly these identity files?
    pub(super) fn configured_with(&self, identities: &[PathBuf]) -> bool {
        self.lock().explicit == identities
    }

    /// The parsed vars file at canonical path `canon`, when it was loaded before.
    pub(super) fn cached_vars(&self, canon: &Path) -> Option<Value> {
        self.lock().vars.get(canon).cloned()
    }

    /// Note a warning for the command layer to report. It must not contain secret material.
    pub(super) fn warn(&self, message: String) {
        self.lock().warnings.push(message);
    }

    /// Take the warnings noted so far, oldest first (each is handed out once). This layer never prints them:
    /// the command layer reports them.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().warnings)
    }

    /// Remember the parsed vars file at canonical path `canon`.
    pub(super) fn cache_vars(&self, canon: PathBuf, v: Value) {
        self.lock().vars.insert(canon, v);
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

#[cfg(test)]
mod tests {
    use age::secrecy::SecretString;

    use super::*;
    use crate::vars::secrets::test_support::{encrypt_to, protected_identity_file};

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
}
