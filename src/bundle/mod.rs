//! Offline bundles: one signed tar file holding `.deb` packages, `docker save` image archives and config
//! templates, for sites where neither the devices nor the operator's laptop reach the internet.
//!
//! A pure domain layer (like `iotedge/`): it reads and writes local files only, contacts no device, prints
//! nothing, and imports nothing of ours but leaves (it imports none today). Layout of a bundle (a plain
//! ustar/GNU tar, readable with `tar -tf`):
//!
//! ```text
//! manifest.json        what the bundle holds: format version, entries with kind, name, version,
//!                      architecture, size, sha256, and for debs Depends/Pre-Depends/Provides (manifest.rs)
//! manifest.json.sig    `ssh-keygen -Y sign -n edgefleet-bundle` signature of manifest.json (signing.rs)
//! debs/NAME_VERSION_ARCH.deb, images/FILE.tar, templates/FILE   the entries, in manifest order
//! ```
//!
//! The manifest and its signature come first, so a reader checks the signature before trusting anything,
//! then hashes every entry as it streams by (memory independent of entry size: `hash.rs`). Files:
//! `archive.rs` (create, verify, inspect), `manifest.rs`, `signing.rs`, `deb.rs` + `control.rs` (reading
//! `.deb` control data), `relation.rs` + `version.rs` (Debian relations and version order), `closure.rs`
//! (dependency closure against the bundle and a declared base system), `image.rs` (`docker save` archives).
//! Every failure is a [`BundleError`] whose [`Failure`] kind decides the exit code in `commands/bundle.rs`.

pub mod archive;
pub mod closure;
pub mod control;
pub mod deb;
pub mod hash;
pub mod image;
pub mod manifest;
pub mod relation;
pub mod signing;
pub mod version;

/// The kinds of failure, each with its own exit code (documented in `commands/bundle.rs` and the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// An input file given to `create` is unusable (a garbage .deb, a bad key, a bad base-system list).
    Input,
    /// Reading or writing failed for a reason outside the bundle (permissions, disk full).
    Io,
    /// Not a bundle, a manifest that does not parse, or a bundle from a newer format version.
    Format,
    /// Unsigned, bad signature, or a signer the allowed-signers file does not allow.
    Signature,
    /// An entry's size or hash differs from the manifest, an entry is missing or extra, or the file is cut.
    Integrity,
    /// A deb's `Depends`/`Pre-Depends` is satisfied neither inside the bundle nor by the base system.
    Dependencies,
}

/// A failure with the message that says what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BundleError {
    /// Which kind (decides the exit code).
    pub kind: Failure,
    /// The message.
    pub message: String,
}

impl BundleError {
    /// A new error.
    pub fn new(kind: Failure, message: impl Into<String>) -> Self {
        BundleError {
            kind,
            message: message.into(),
        }
    }
}
