//! Signatures in the `ssh-keygen -Y sign` format (SSHSIG, namespace [`NAMESPACE`]) over `manifest.json`, and
//! their verification against an OpenSSH allowed-signers file, so `ssh-keygen -Y verify` and edgefleet accept
//! exactly the same bundles.
//!
//! Owns loading the signing key (an OpenSSH private key file; an encrypted one is opened with the passphrase
//! in [`PASSPHRASE_ENV`], never from argv, or refused saying so), signing, the allowed-signers parser
//! (principals, `namespaces=`, `valid-after=`/`valid-before=`, `cert-authority` lines, quoted options) and the
//! verdict. Secrets never reach an error message. Must not read the bundle (`archive.rs`).

use std::path::Path;

use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

/// The SSHSIG namespace of bundle signatures: `ssh-keygen -Y verify -n edgefleet-bundle`.
pub const NAMESPACE: &str = "edgefleet-bundle";

/// The environment variable holding the passphrase of an encrypted signing key.
pub const PASSPHRASE_ENV: &str = "EDGEFLEET_BUNDLE_KEY_PASSPHRASE";

/// Load a signing key; the error names the file and says what to do.
pub fn load_signing_key(path: &Path) -> Result<PrivateKey, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{shown}: cannot read the signing key: {e}"))?;
    let key = PrivateKey::from_openssh(text.trim()).map_err(|e| {
        format!(
            "{shown}: not an OpenSSH private key ({e}); make one with `ssh-keygen -t ed25519 -f {shown}` \
             (a PEM/PKCS#8 key can be converted with `ssh-keygen -p -f {shown}`)"
        )
    })?;
    if !key.is_encrypted() {
        return Ok(key);
    }
    let Some(pass) = std::env::var_os(PASSPHRASE_ENV) else {
        return Err(format!(
            "{shown}: the signing key is encrypted: put its passphrase in the environment variable \
             {PASSPHRASE_ENV} (it is never read from the command line), or use an unencrypted key"
        ));
    };
    key.decrypt(pass.as_encoded_bytes()).map_err(|_| {
        format!("{shown}: the passphrase in {PASSPHRASE_ENV} does not open this key (wrong passphrase?)")
    })
}

/// Sign `msg` and return the armored signature (`-----BEGIN SSH SIGNATURE-----`), as `ssh-keygen -Y sign`
/// writes it (SHA-512, as ssh-keygen defaults to).
pub fn sign(key: &PrivateKey, msg: &[u8]) -> Result<String, String> {
    let sig = key
        .sign(NAMESPACE, HashAlg::Sha512, msg)
        .map_err(|e| format!("signing failed ({} key): {e}", key.algorithm()))?;
    sig.to_pem(LineEnding::LF)
        .map_err(|e| format!("cannot encode the signature: {e}"))
}

/// One line of an allowed-signers file.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    /// 1-based line number.
    pub line: usize,
    /// The principals field as written (comma-separated patterns).
    pub principals: String,
    /// `namespaces="..."`: the namespaces this key may sign for (None: any).
    pub namespaces: Option<Vec<String>>,
    /// `cert-authority`: the key signs certificates, not messages.
    pub cert_authority: bool,
    /// `valid-after=`, as the number written (YYYYMMDD[HHMM[SS]][Z]), normalized to 14 digits.
    pub valid_after: Option<String>,
    /// `valid-before=`, likewise.
    pub valid_before: Option<String>,
    /// The key.
    pub key: PublicKey,
}

/// Parse an allowed-signers file (`ssh-keygen(1)`, ALLOWED SIGNERS): `principals [options] keytype base64
/// [comment]`. Errors name `file:line`.
pub fn read_allowed_signers(path: &Path) -> Result<Vec<AllowedSigner>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "{}: cannot read the allowed-signers file: {e}",
            path.display()
        )
    })?;
    parse_allowed_signers(&text).map_err(|(n, e)| format!("{}:{n}: {e}", path.display()))
}

/// [`read_allowed_signers`] on text.
pub fn parse_allowed_signers(text: &str) -> Result<Vec<AllowedSigner>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words = split_words(line).map_err(|e| (n, e))?;
        let mut it = words.iter().map(String::as_str);
        let principals = it.next().unwrap_or_default().to_string();
        let mut rest: Vec<&str> = it.collect();
        let mut namespaces = None;
        let mut cert_authority = false;
        let (mut valid_after, mut valid_before) = (None, None);
        if rest.first().is_some_and(|w| !is_key_type(w)) {
            let opts = rest.remove(0);
            for opt in split_options(opts).map_err(|e| (n, e))? {
                let (k, v) = match opt.split_once('=') {
                    Some((k, v)) => (
                        k.to_ascii_lowercase(),
                        Some(v.trim_matches('"').to_string()),
                    ),
                    None => (opt.to_ascii_lowercase(), None),
                };
                match (k.as_str(), v) {
                    ("cert-authority", None) => cert_authority = true,
                    ("namespaces", Some(v)) => {
                        namespaces = Some(v.split(',').map(|s| s.trim().to_string()).collect())
                    }
                    ("valid-after", Some(v)) => valid_after = Some(timespec(&v).map_err(|e| (n, e))?),
                    ("valid-before", Some(v)) => valid_before = Some(timespec(&v).map_err(|e| (n, e))?),
                    (other, _) => {
                        return Err((
                            n,
                            format!(
                                "unknown option `{other}` (allowed: cert-authority, namespaces=, valid-after=, \
                                 valid-before=)"
                            ),
                        ))
                    }
                }
            }
        }
        let (Some(kt), Some(b64)) = (rest.first(), rest.get(1)) else {
            return Err((
                n,
                "expected `principals [options] keytype base64-key [comment]`".into(),
            ));
        };
        let key = PublicKey::from_openssh(&format!("{kt} {b64}"))
            .map_err(|e| (n, format!("the `{kt}` key does not parse: {e}")))?;
        out.push(AllowedSigner {
            line: n,
            principals,
            namespaces,
            cert_authority,
            valid_after,
            valid_before,
            key,
        });
    }
    Ok(out)
}

fn is_key_type(w: &str) -> bool {
    w.starts_with("ssh-")
        || w.starts_with("ecdsa-")
        || w.starts_with("sk-")
        || w.starts_with("rsa-")
}

/// Split a line on whitespace outside double quotes (quotes kept).
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if c.is_whitespace() && !quoted {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if quoted {
        return Err("unterminated `\"`".into());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// Split an options field on commas outside double quotes.
fn split_options(opts: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in opts.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated `\"` in the options".into());
    }
    out.push(cur);
    Ok(out.into_iter().filter(|o| !o.is_empty()).collect())
}

/// `YYYYMMDD[HHMM[SS]]` with an optional `Z` (UTC; edgefleet compares in UTC) to 14 digits.
fn timespec(v: &str) -> Result<String, String> {
    let d = v.strip_suffix('Z').unwrap_or(v);
    if !d.chars().all(|c| c.is_ascii_digit()) || ![8, 12, 14].contains(&d.len()) {
        return Err(format!("`{v}` is not a time (YYYYMMDD[HHMM[SS]][Z])"));
    }
    Ok(format!("{d:0<14}"))
}

/// Who signed, when verification succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The principals of the matching allowed-signers line.
    pub principals: String,
    /// The line it was found on.
    pub line: usize,
    /// The key's SHA-256 fingerprint (as `ssh-keygen -l` prints it).
    pub fingerprint: String,
}

/// Parse an armored signature; the error says what is wrong.
pub fn parse_signature(armored: &[u8]) -> Result<SshSig, String> {
    SshSig::from_pem(armored)
        .map_err(|e| format!("not an SSH signature (`-----BEGIN SSH SIGNATURE-----`): {e}"))
}

/// Verify `msg` against the armored signature and the allowed signers, at `now` (UTC, `YYYYMMDDHHMMSS`).
pub fn verify(
    msg: &[u8],
    sig: &SshSig,
    signers: &[AllowedSigner],
    now: &str,
) -> Result<Signer, String> {
    if sig.namespace() != NAMESPACE {
        return Err(format!(
            "the signature is for namespace `{}`, not `{NAMESPACE}`: it was not made for a bundle",
            sig.namespace()
        ));
    }
    let fp = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
    if sig.public_key().is_certificate() {
        return Err(format!(
            "signed with an SSH certificate ({fp}): edgefleet verifies plain keys only"
        ));
    }
    let mut refusals = Vec::new();
    for s in signers
        .iter()
        .filter(|s| s.key.key_data() == sig.public_key())
    {
        if s.cert_authority {
            refusals.push(format!(
                "line {}: a cert-authority line, not a signer",
                s.line
            ));
            continue;
        }
        if let Some(ns) = &s.namespaces {
            if !ns.iter().any(|n| n == NAMESPACE) {
                refusals.push(format!(
                    "line {}: namespaces=\"{}\" does not include {NAMESPACE}",
                    s.line,
                    ns.join(",")
                ));
                continue;
            }
        }
        if s.valid_after.as_deref().is_some_and(|t| now < t) {
            refusals.push(format!(
                "line {}: not valid before {}",
                s.line,
                s.valid_after.as_deref().unwrap_or("")
            ));
            continue;
        }
        if s.valid_before.as_deref().is_some_and(|t| now >= t) {
            refusals.push(format!(
                "line {}: expired at {}",
                s.line,
                s.valid_before.as_deref().unwrap_or("")
            ));
            continue;
        }
        s.key
            .verify(NAMESPACE, msg, sig)
            .map_err(|_| format!("the signature by {fp} ({}) does not match manifest.json: the manifest was changed after signing", s.principals))?;
        return Ok(Signer {
            principals: s.principals.clone(),
            line: s.line,
            fingerprint: fp,
        });
    }
    if refusals.is_empty() {
        Err(format!(
            "signed by {} key {fp}, which is not in the allowed-signers file: if you trust it, add a line \
             `NAME namespaces=\"{NAMESPACE}\" <its public key>`",
            sig.algorithm()
        ))
    } else {
        Err(format!(
            "signed by {fp}, but the allowed-signers file does not allow it: {}",
            refusals.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    #[test]
    fn parses_options_and_principals() {
        let text = format!(
            "# comment\n\nops@example.com,ci {K1} laptop\n\"quoted name\" namespaces=\"edgefleet-bundle,file\",valid-after=20260101 {K1}\nca@x cert-authority {K1}\n"
        );
        let s = parse_allowed_signers(&text).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].principals, "ops@example.com,ci");
        assert_eq!(s[0].line, 3);
        assert_eq!(
            s[1].namespaces.as_deref().unwrap(),
            ["edgefleet-bundle", "file"]
        );
        assert_eq!(s[1].valid_after.as_deref(), Some("20260101000000"));
        assert!(s[2].cert_authority);
        let e = parse_allowed_signers(&format!("a frobnicate {K1}\n")).unwrap_err();
        assert_eq!(e.0, 1);
        assert!(e.1.contains("unknown option `frobnicate`"));
        assert!(parse_allowed_signers("a ssh-ed25519 AAAA\n")
            .unwrap_err()
            .1
            .contains("does not parse"));
        assert!(parse_allowed_signers("just-a-name\n")
            .unwrap_err()
            .1
            .contains("expected"));
        assert!(parse_allowed_signers(&format!("a valid-before=2026 {K1}"))
            .unwrap_err()
            .1
            .contains("not a time"));
    }
}
