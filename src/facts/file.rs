//! File facts: what edgefleet knows about one path on a device (existence, kind, mode, owner, size, hashes,
//! the symlink target, content when asked), and the hash functions that match what `sha256sum` and `sha1sum`
//! print on the device.
//!
//! Plain data and pure functions; gathered by [`super::gather`], cached by [`super::FactCache`].

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// What we know about one path on the device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileFact {
    /// The path.
    pub path: String,
    /// Does it exist?
    pub exists: bool,
    /// "file", "directory", "other" — of the path with symlinks followed (see `link`).
    pub kind: String,
    /// Permission bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
    /// Owner name (or the uid as text).
    pub owner: String,
    /// Group name (or the gid as text).
    pub group: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 (hex) of a readable regular file.
    pub sha256: Option<String>,
    /// Content, when it was asked for.
    pub content: Option<Vec<u8>>,
    /// sha1 (hex) of a readable regular file, when it was asked for (`stat`'s default checksum).
    pub sha1: Option<String>,
    /// The path itself is a symlink: its target as `readlink` prints it. The other fields describe what it
    /// points to (`exists` is false for a dangling link).
    pub link: Option<String>,
}

impl FileFact {
    /// A path that does not exist.
    pub fn missing(path: &str) -> Self {
        FileFact {
            path: path.to_string(),
            ..Default::default()
        }
    }

    /// Is it a regular file?
    pub fn is_file(&self) -> bool {
        self.exists && self.kind == "file"
    }

    /// Is it a directory?
    pub fn is_dir(&self) -> bool {
        self.exists && self.kind == "directory"
    }

    /// Does the owner match `want` (a name or a numeric id)?
    pub fn owner_is(&self, want: &str) -> bool {
        want == self.owner || want.parse::<u32>().map(|u| u == self.uid).unwrap_or(false)
    }

    /// Does the group match `want` (a name or a numeric id)?
    pub fn group_is(&self, want: &str) -> bool {
        want == self.group || want.parse::<u32>().map(|g| g == self.gid).unwrap_or(false)
    }

    /// The content as text (lossy), if fetched.
    pub fn text(&self) -> Option<String> {
        self.content
            .as_ref()
            .map(|c| String::from_utf8_lossy(c).into_owned())
    }
}

/// sha1 hex of bytes (what `sha1sum` prints).
pub fn sha1_hex(b: &[u8]) -> String {
    hex::encode(Sha1::digest(b))
}

/// sha256 hex of bytes (what `sha256sum` prints).
pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}
