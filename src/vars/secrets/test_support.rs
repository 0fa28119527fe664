//! Test helpers shared by the secrets unit tests: a store with a fresh key, files encrypted to it, protected
//! identity files. Test-only; nothing here is part of the API.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use age::secrecy::{ExposeSecret, SecretString};

use super::{encrypt_armored, parse_recipient, SecretStore};

/// A store whose only identity is a fresh X25519 key written to `dir/key.txt`.
pub(super) fn store_with_key(dir: &Path) -> (SecretStore, age::x25519::Identity) {
    let id = age::x25519::Identity::generate();
    let p = dir.join("key.txt");
    fs::write(&p, format!("# test\n{}\n", id.to_string().expose_secret())).unwrap();
    (SecretStore::new(&[p]), id)
}

/// Encrypt `text` to recipient `r` into `dir/name` (armored).
pub(super) fn encrypt_to(dir: &Path, name: &str, text: &str, r: &str) -> PathBuf {
    let rec = parse_recipient(r, "test").unwrap();
    let ct = encrypt_armored(Path::new(name), text.as_bytes(), &[rec]).unwrap();
    let p = dir.join(name);
    fs::write(&p, ct).unwrap();
    p
}

/// Write the identities `ids` to `path`, encrypted with passphrase `pass` (cheap work factor).
pub(super) fn protected_identity_file(path: &Path, pass: &str, ids: &[&age::x25519::Identity]) {
    let content: String = ids
        .iter()
        .map(|i| format!("{}\n", i.to_string().expose_secret()))
        .collect();
    let mut r = age::scrypt::Recipient::new(SecretString::from(pass.to_string()));
    r.set_work_factor(10);
    let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let mut w = enc.wrap_output(&mut out).unwrap();
    w.write_all(content.as_bytes()).unwrap();
    w.finish().unwrap();
    fs::write(path, out).unwrap();
}
