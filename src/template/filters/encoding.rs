//! Filters that encode and hash text: `b64encode`, `b64decode`, `hash`, `checksum`/`sha1`, `md5`.
//!
//! Owns the text encodings they accept (utf-8, utf-16-le, ascii) and [`hexdigest`] (hashlib algorithm names,
//! also used outside templates). Errors name the filter and the problem, never the input or decoded bytes. It
//! must not do anything beyond encoding and hashing.

use base64::Engine;
use minijinja::value::Kwargs;
use minijinja::{Error, State, Value};

use super::{err, text};

fn b64_engine(urlsafe: bool) -> base64::engine::GeneralPurpose {
    if urlsafe {
        base64::engine::general_purpose::URL_SAFE
    } else {
        base64::engine::general_purpose::STANDARD
    }
}

/// `b64encode(encoding='utf-8', urlsafe=False)`.
pub(super) fn b64encode(state: &State, v: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let urlsafe = kwargs.get::<Option<bool>>("urlsafe")?.unwrap_or(false);
    let encoding = kwargs
        .get::<Option<String>>("encoding")?
        .unwrap_or_else(|| "utf-8".into());
    kwargs.assert_all_used()?;
    let s = text(state, v)?;
    let bytes = encode_text(&s, &encoding)?;
    Ok(b64_engine(urlsafe).encode(bytes))
}

fn encode_text(s: &str, encoding: &str) -> Result<Vec<u8>, Error> {
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" => Ok(s.as_bytes().to_vec()),
        "utf-16-le" | "utf-16le" => Ok(s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()),
        "ascii" if s.is_ascii() => Ok(s.as_bytes().to_vec()),
        "ascii" => Err(err("b64encode: the text is not ASCII")),
        other => Err(err(format!(
            "b64encode: unsupported encoding {other:?} (use utf-8, utf-16-le or ascii)"
        ))),
    }
}

/// `b64decode(encoding='utf-8', urlsafe=False)`; like Python, characters outside the alphabet are ignored.
pub(super) fn b64decode(state: &State, v: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let urlsafe = kwargs.get::<Option<bool>>("urlsafe")?.unwrap_or(false);
    let encoding = kwargs
        .get::<Option<String>>("encoding")?
        .unwrap_or_else(|| "utf-8".into());
    kwargs.assert_all_used()?;
    let s = text(state, v)?;
    let (a, b) = if urlsafe { ('-', '_') } else { ('+', '/') };
    let clean: String = s
        .chars()
        .filter(|&c| c.is_ascii_alphanumeric() || c == a || c == b || c == '=')
        .collect();
    let bytes = b64_engine(urlsafe)
        .decode(clean.as_bytes())
        .map_err(|_| err("b64decode: the input is not valid base64 (check its padding)"))?;
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" | "ascii" => String::from_utf8(bytes)
            .map_err(|_| err("b64decode: the decoded bytes are not UTF-8 text")),
        "utf-16-le" | "utf-16le" => {
            if bytes.len() % 2 != 0 {
                return Err(err("b64decode: odd number of bytes for utf-16-le"));
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units)
                .map_err(|_| err("b64decode: the decoded bytes are not UTF-16 text"))
        }
        other => Err(err(format!("b64decode: unsupported encoding {other:?}"))),
    }
}

/// Hex digest of `data` with a hashlib algorithm name.
pub fn hexdigest(data: &[u8], algo: &str) -> Option<String> {
    use sha2::Digest;
    Some(match algo {
        "sha1" => hex::encode(sha1::Sha1::digest(data)),
        "md5" => format!("{:x}", md5::compute(data)),
        "sha224" => hex::encode(sha2::Sha224::digest(data)),
        "sha256" => hex::encode(sha2::Sha256::digest(data)),
        "sha384" => hex::encode(sha2::Sha384::digest(data)),
        "sha512" => hex::encode(sha2::Sha512::digest(data)),
        _ => return None,
    })
}

/// `hash(hashtype='sha1')`: md5, sha1, sha224, sha256, sha384, sha512.
pub(super) fn hash(state: &State, v: &Value, algo: Option<String>) -> Result<String, Error> {
    let algo = algo.unwrap_or_else(|| "sha1".into());
    let s = text(state, v)?;
    hexdigest(s.as_bytes(), &algo).ok_or_else(|| {
        err("hash: unsupported hash type (use md5, sha1, sha224, sha256, sha384 or sha512)")
    })
}

pub(super) fn checksum(state: &State, v: &Value) -> Result<String, Error> {
    hash(state, v, Some("sha1".into()))
}

pub(super) fn md5(state: &State, v: &Value) -> Result<String, Error> {
    hash(state, v, Some("md5".into()))
}

#[cfg(test)]
mod tests {
    use crate::template::filters::testing::{e, r};

    // Expected values below were produced by ansible-core 2.19.14 from the same expressions.

    #[test]
    fn base64_and_hash() {
        assert_eq!(
            r("{{ 'hello' | b64encode }}|{{ 'aGVsbG8=' | b64decode }}|{{ 'é' | b64encode }}"),
            "aGVsbG8=|hello|w6k="
        );
        assert_eq!(r("{{ 'aGVs\nbG8=' | b64decode }}"), "hello");
        assert!(e("{{ 'aGVsbG8' | b64decode }}").contains("not valid base64"));
        assert_eq!(
            r("{{ 'hello' | hash }}|{{ 'hello' | hash('md5') }}|{{ 'hello' | hash('sha256') }}|{{ 'hello' | checksum }}"),
            "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d|5d41402abc4b2a76b9719d911017c592|2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824|aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
        );
        assert_eq!(r("{{ 'hello' | hash('sha512') }}"), "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043");
        assert!(e("{{ 'x' | hash('whirlpool') }}").contains("unsupported hash type"));
    }
}
