//! SHA-256 of a stream, in fixed memory: the hashes a bundle's manifest lists, and the checks against them.
//!
//! Owns the one buffered read loop every bundle entry goes through (64 KiB at a time, whatever the file's
//! size), and [`HashingReader`], which hashes what another reader (the tar writer) pulls through it. Must not
//! know what the bytes mean.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// The read buffer: memory use of hashing is this, independent of the file's size.
const BUF: usize = 64 * 1024;

/// The SHA-256 (lowercase hex) and length of everything `r` yields.
pub fn sha256_reader(r: &mut impl Read) -> io::Result<(String, u64)> {
    let mut h = HashingReader::new(r);
    io::copy(&mut h, &mut io::sink())?;
    Ok(h.finish())
}

/// A reader that hashes and counts the bytes read through it.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// The hex SHA-256 and the byte count of what was read so far.
    pub fn finish(self) -> (String, u64) {
        (hex::encode(self.hasher.finalize()), self.len)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let cap = buf.len().min(BUF);
        let n = self.inner.read(&mut buf[..cap])?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// Is `s` a SHA-256 in the form the manifest uses (64 lowercase hex digits)?
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_known_digests() {
        let (h, n) = sha256_reader(&mut &b"abc"[..]).unwrap();
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(n, 3);
        let (h, n) = sha256_reader(&mut io::repeat(b'a').take(1_000_000)).unwrap();
        assert_eq!(
            h,
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
        assert_eq!(n, 1_000_000);
    }

    #[test]
    fn sha256_form() {
        assert!(is_sha256_hex(&"a".repeat(64)));
        assert!(!is_sha256_hex(&"A".repeat(64)));
        assert!(!is_sha256_hex(&"a".repeat(63)));
        assert!(!is_sha256_hex(&"g".repeat(64)));
    }
}
