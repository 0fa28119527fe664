//! Secret errors: what can go wrong with secret material, and how it becomes a load-time diagnostic.
//!
//! Owns [`SecretError`] and its conversion into [`Diagnostic`]. It must not read files, touch keys or decide
//! anything; and no message built here may contain plaintext, identity or passphrase material (messages name
//! files, lines, key types and tags, never content).

use std::io;
use std::path::{Path, PathBuf};

use super::{
    AGE_V1, ARMOR_BEGIN, ENV_IDENTITY, ENV_PASSPHRASE, ENV_PASSPHRASE_FILE, MAX_FILE,
    RECIPIENTS_FILE,
};
use crate::diag::Diagnostic;

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
