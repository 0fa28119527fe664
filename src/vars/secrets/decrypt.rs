//! Decryption attempts: running age with given identities or a passphrase, and sorting its errors.
//!
//! Owns one decryption attempt (`try_decrypt`, [`try_passphrase`], [`attempt_usable`]) and turning age's
//! errors into [`SecretError`]s (damaged, truncated, ...). It must not choose, load or unlock identities, cache
//! anything, or leave un-zeroized copies of plaintext behind.

use std::io::{self, BufReader, Read};
use std::path::Path;

use age::armor::ArmoredReader;
use age::secrecy::zeroize::Zeroizing;
use age::secrecy::SecretString;

use super::identities::{IdKind, LoadedIdentity};
use super::SecretError;

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
pub(super) fn try_passphrase(
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

/// Try every identity usable without a passphrase. Returns the plaintext and a label of the one that worked.
pub(super) fn attempt_usable(
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
