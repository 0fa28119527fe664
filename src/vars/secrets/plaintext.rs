//! Plaintext: decrypted bytes held in memory, shared and zeroized when the last holder drops them.
//!
//! Owns [`Plaintext`]. It must never expose the bytes through `Debug`/`Display` (only the length) and never copy
//! them into buffers that are not zeroized.

use std::fmt;
use std::sync::Arc;

use age::secrecy::zeroize::{Zeroize, Zeroizing};
use age::secrecy::{ExposeSecret, SecretSlice};

/// Decrypted bytes, shared and zeroized when the last holder drops them. `Debug` shows only the length.
#[derive(Clone)]
pub struct Plaintext(Arc<SecretSlice<u8>>);

impl Plaintext {
    pub(super) fn new(bytes: Zeroizing<Vec<u8>>) -> Self {
        // Boxing a Vec whose capacity exceeds its length reallocates and frees the old buffer un-zeroized:
        // copy into an exact-size buffer instead, and let `bytes` zeroize itself.
        let mut exact = Vec::with_capacity(bytes.len());
        exact.extend_from_slice(&bytes);
        if exact.capacity() != exact.len() {
            // Not expected for u8, but never leave a copy behind: pay for one more copy into a boxed slice.
            let boxed: Box<[u8]> = exact.as_slice().into();
            let mut exact = exact;
            exact.zeroize();
            return Plaintext(Arc::new(SecretSlice::from(boxed)));
        }
        Plaintext(Arc::new(SecretSlice::from(exact)))
    }
    /// The bytes. Do not copy them into long-lived buffers that are not zeroized.
    pub fn bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }
    /// The bytes as UTF-8 text, when they are.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(self.bytes()).ok()
    }
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.bytes().len()
    }
    /// Empty?
    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plaintext({} bytes, redacted)", self.len())
    }
}
