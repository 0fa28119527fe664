//! Header inspection: what an age file is encrypted to, read without any key.
//!
//! Owns [`looks_like_age`], [`inspect`] and the [`HeaderInfo`] / [`StanzaInfo`] it returns (public header data
//! only: stanza types, SSH key tags). It must not decrypt anything, hold keys, or read files (callers hand it
//! the bytes).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::{SecretError, AGE_V1, ARMOR_BEGIN, ARMOR_END};

/// One recipient stanza of an age header: its type and arguments (public data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaInfo {
    /// `X25519`, `ssh-ed25519`, `ssh-rsa`, `scrypt`, ...
    pub kind: String,
    /// The stanza arguments (for SSH stanzas the first is the key tag).
    pub args: Vec<String>,
}

impl StanzaInfo {
    /// The SSH key tag, for `ssh-ed25519` / `ssh-rsa` stanzas.
    pub fn ssh_tag(&self) -> Option<&str> {
        match self.kind.as_str() {
            "ssh-ed25519" | "ssh-rsa" => self.args.first().map(String::as_str),
            _ => None,
        }
    }
}

/// What an age file's header says, read without decrypting anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderInfo {
    /// ASCII-armored?
    pub armored: bool,
    /// The recipient stanzas (grease stanzas left out).
    pub stanzas: Vec<StanzaInfo>,
}

impl HeaderInfo {
    /// Encrypted with a passphrase (`age -p`) rather than to recipients?
    pub fn is_passphrase(&self) -> bool {
        self.stanzas.iter().any(|s| s.kind == "scrypt")
    }
    /// Has X25519 (native age) recipients?
    pub fn has_x25519(&self) -> bool {
        self.stanzas.iter().any(|s| s.kind == "X25519")
    }
    /// The SSH key tags in the header.
    pub fn ssh_tags(&self) -> HashSet<&str> {
        self.stanzas
            .iter()
            .filter_map(StanzaInfo::ssh_tag)
            .collect()
    }

    /// "encrypted to 3 recipients: 1 X25519 (age does not record which key), 1 ssh-ed25519 (tag AbC123: `ops`
    /// in ./.age-recipients), ..." — `known` maps SSH tags to a description of the matching recipient.
    pub fn describe(&self, known: &HashMap<String, String>) -> String {
        if self.is_passphrase() {
            return "it is encrypted with a passphrase (`age -p`), not to recipients".into();
        }
        let n = self.stanzas.len();
        let mut parts: Vec<String> = Vec::new();
        let x = self.stanzas.iter().filter(|s| s.kind == "X25519").count();
        if x > 0 {
            parts.push(format!(
                "{x} X25519 (age does not record which key{})",
                if x > 1 { "s" } else { "" }
            ));
        }
        for s in &self.stanzas {
            match s.ssh_tag() {
                Some(tag) => match known.get(tag) {
                    Some(who) => parts.push(format!("1 {} (tag {tag}: {who})", s.kind)),
                    None => parts.push(format!("1 {} (tag {tag})", s.kind)),
                },
                None if s.kind == "X25519" => {}
                None => parts.push(format!("1 {}", s.kind)),
            }
        }
        format!(
            "it is encrypted to {n} recipient{}: {}",
            if n == 1 { "" } else { "s" },
            parts.join(", ")
        )
    }
}

/// Does `data` look like an age file (armored or binary)?
pub fn looks_like_age(data: &[u8]) -> bool {
    let t = trim_ascii_start(data);
    t.starts_with(ARMOR_BEGIN.as_bytes()) || t.starts_with(b"age-encryption.org/")
}

fn trim_ascii_start(mut d: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = d {
        if first.is_ascii_whitespace() {
            d = rest;
        } else {
            break;
        }
    }
    d
}

/// Read an age header without any key: what the file is encrypted to, and whether it is cut short.
pub fn inspect(path: &Path, data: &[u8]) -> Result<HeaderInfo, SecretError> {
    let trimmed = trim_ascii_start(data);
    if trimmed.is_empty() {
        return Err(SecretError::Truncated {
            path: path.into(),
            detail: "the file is empty".into(),
        });
    }
    let armored = trimmed.starts_with(ARMOR_BEGIN.as_bytes());
    let binary: Vec<u8>;
    let raw: &[u8] = if armored {
        let text = String::from_utf8_lossy(trimmed);
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
        lines.next(); // the begin marker
        let mut b64 = String::new();
        let mut ended = false;
        for l in lines {
            if l == ARMOR_END {
                ended = true;
                break;
            }
            b64.push_str(l.trim());
        }
        if !ended {
            return Err(SecretError::Truncated {
                path: path.into(),
                detail: format!("the armor has no `{ARMOR_END}` line"),
            });
        }
        binary = STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| SecretError::Damaged {
                path: path.into(),
                detail: "the armor is not valid base64".into(),
            })?;
        &binary
    } else {
        trimmed
    };
    if !raw.starts_with(b"age-encryption.org/") {
        return Err(SecretError::NotAge { path: path.into() });
    }
    let mut lines = raw.split(|b| *b == b'\n');
    match lines.next() {
        Some(l) if l == AGE_V1.as_bytes() => {}
        _ => return Err(SecretError::UnknownVersion { path: path.into() }),
    }
    let mut stanzas = Vec::new();
    let mut ended = false;
    for l in lines {
        if l.starts_with(b"--- ") || l == b"---" {
            ended = true;
            break;
        }
        if let Some(rest) = l.strip_prefix(b"-> ") {
            let text = String::from_utf8_lossy(rest);
            let mut words = text.split(' ').map(str::to_string);
            let kind = words.next().unwrap_or_default();
            let args = words.collect();
            if !kind.ends_with("-grease") {
                stanzas.push(StanzaInfo { kind, args });
            }
        }
    }
    if !ended {
        return Err(SecretError::Truncated {
            path: path.into(),
            detail: "the header ends before its MAC line".into(),
        });
    }
    Ok(HeaderInfo { armored, stanzas })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vars::secrets::{encrypt_armored, parse_recipient};

    #[test]
    fn header_describes_recipients() {
        let dir = tempfile::tempdir().unwrap();
        let a = age::x25519::Identity::generate().to_public().to_string();
        let recs = vec![
            parse_recipient(&a, "t").unwrap(),
            parse_recipient(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN alice@rust",
                "t",
            )
            .unwrap(),
        ];
        let ct = encrypt_armored(Path::new("x"), b"hello", &recs).unwrap();
        let info = inspect(Path::new("x"), &ct).unwrap();
        assert!(info.armored);
        assert_eq!(info.stanzas.len(), 2);
        let tag = recs[1].ssh_tag.clone().unwrap();
        assert_eq!(info.stanzas[1].ssh_tag(), Some(tag.as_str()));
        let d = info.describe(&HashMap::new());
        assert!(d.contains("2 recipients"), "{d}");
        assert!(d.contains("1 X25519"), "{d}");
        assert!(d.contains(&format!("1 ssh-ed25519 (tag {tag})")), "{d}");
        let _ = dir;
    }
}
