//! Secrets: age-encrypted vars files and `src:` files, decrypted in memory once per run.
//!
//! Owns identities (from `--identity`, `EDGEFLEET_AGE_IDENTITY`, or the operator's SSH keys), passphrases for
//! protected identities, recipients (`-r`, `-R`, `.age-recipients`), age encryption and decryption, the
//! per-run plaintext cache, and registering every decrypted value with the redactor (`crate::redact`). It must
//! never write plaintext to disk (that is `vault`'s job, and only where the operator asked for it) and never
//! print: warnings (a secret too short to be masked) are collected and drained by the command layer with
//! [`take_warnings`]; the only thing it writes is a passphrase prompt, to `/dev/tty`. No error, warning or
//! `Debug` output here contains plaintext, identity or passphrase material.
//!
//! # Layout
//! This file is the public API (everything callers use is re-exported here, so paths stay
//! `crate::vars::secrets::...`), the process-wide store and the loader functions. The parts:
//! - `error`: [`SecretError`] and its diagnostic;
//! - `plaintext`: [`Plaintext`], decrypted bytes zeroized on drop;
//! - `header`: [`inspect`] and [`looks_like_age`], reading a header without any key;
//! - `recipients`: parsing and resolving recipients, [`encrypt_armored`];
//! - `identities`: finding and parsing identity files;
//! - `passphrases`: where passphrases come from, the `/dev/tty` prompt, [`encrypt_with_passphrase`];
//! - `decrypt`: one decryption attempt and sorting age's errors;
//! - `store`: [`SecretStore`], the keyring, unlock order and per-run cache;
//! - `vars_file`: decrypting and parsing YAML vars files, the short-secret warning.
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

mod decrypt;
mod error;
mod header;
mod identities;
mod passphrases;
mod plaintext;
mod recipients;
mod store;
#[cfg(test)]
mod test_support;
mod vars_file;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use age::secrecy::zeroize::Zeroizing;
use serde_json::Value;

use crate::diag::Diagnostic;

pub use error::SecretError;
pub use header::{inspect, looks_like_age, HeaderInfo, StanzaInfo};
pub use identities::IdentityOrigin;
pub use passphrases::{encrypt_with_passphrase, new_passphrase, PassphraseSource};
pub use plaintext::Plaintext;
pub use recipients::{
    encrypt_armored, find_recipients_file, parse_recipient, read_recipients_file,
    resolve_recipients, RecipientEntry,
};
pub use store::{Decrypted, SecretStore};
pub use vars_file::check_secret_yaml;

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

/// Read at most `limit` bytes of `path` into a zeroized buffer; larger files are refused, not cut.
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
/// decrypted so far is kept, but warnings not yet taken are), the same list again is a no-op.
pub fn configure(identities: &[PathBuf]) {
    let mut g = GLOBAL.write().unwrap_or_else(PoisonError::into_inner);
    // Configuring the same identities again (several loaders, one run) keeps what was decrypted.
    if g.configured_with(identities) {
        return;
    }
    let fresh = SecretStore::new(identities);
    for w in g.take_warnings() {
        fresh.warn(w);
    }
    *g = Arc::new(fresh);
}

/// Take the warnings the process-wide store noted since the last call, oldest first: secret values too
/// short to be masked in output (`FILE: this secret value is shorter than 4 characters, so it cannot be
/// masked in output: KEY`), naming keys, never values. This layer never prints; the command layer drains
/// this and reports each as a warning.
pub fn take_warnings() -> Vec<String> {
    global().take_warnings()
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
/// redactor. Parse errors give line and column but never show the content. Values too short to be masked are
/// noted as a warning for [`take_warnings`].
pub fn load_vars_file(path: &Path) -> Result<Value, Diagnostic> {
    global()
        .load_vars_file(path)
        .map_err(SecretError::into_diag)
}

/// How many files the process-wide store has decrypted (cache hits do not count).
pub fn decryption_count() -> usize {
    global().decryptions()
}
