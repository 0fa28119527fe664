//! Secrets: age-encrypted vars files and `src:` files, decrypted in memory once per run.
//!
//! Owns identities (from `--identity`, `EDGEFLEET_AGE_IDENTITY`, or the operator's SSH keys), decryption, and
//! registering every decrypted value with the redactor (`vars::redact`). It must never write plaintext to disk
//! (except `vault edit`'s private, overwritten temp file) and never print a secret.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::diag::Diagnostic;

/// Configure the identities used to decrypt for the rest of this process.
pub fn configure(_identities: &[PathBuf]) {}

/// Decrypt an age file (armored or binary) into memory.
pub fn decrypt_file(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    Err(Diagnostic::file(
        path,
        "cannot decrypt: age support is not available yet",
    ))
}

/// Load an age-encrypted YAML vars file: decrypt, parse, and register every value with the redactor.
pub fn load_vars_file(path: &Path) -> Result<Value, Diagnostic> {
    let bytes = decrypt_file(path)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Diagnostic::file(path, "decrypted content is not UTF-8 text"))?;
    let v = crate::yaml::parse_value(&text, path)?;
    crate::vars::redact::register_value(&v);
    Ok(v)
}
