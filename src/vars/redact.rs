//! The process-wide redactor: every secret value known to this run is masked in every output.
//!
//! Owns the list of secret values and the one function every output path calls to mask them ([`redact`]).
//! Values are registered when secret material is loaded (age-encrypted vars files, `no_log` results, passwords
//! from connection variables). It must never log or print a secret itself.

use std::borrow::Cow;
use std::sync::RwLock;

/// What a masked secret looks like in any output.
pub const MASK: &str = "********";

/// Secrets shorter than this are not masked by value (masking "1" everywhere would destroy every message);
/// they are still never logged by the paths that know a value is secret.
pub const MIN_MASK_LEN: usize = 4;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Register a secret value so every later output masks it.
pub fn register(value: &str) {
    if value.len() < MIN_MASK_LEN {
        return;
    }
    if let Ok(mut s) = SECRETS.write() {
        if !s.iter().any(|x| x == value) {
            s.push(value.to_string());
            // Longest first, so a secret that contains another is masked whole.
            s.sort_by_key(|x| std::cmp::Reverse(x.len()));
        }
        // Multi-line secrets (PEM keys) are also masked line by line, in case a tool prints one line of them.
        if value.contains('\n') {
            for line in value.lines().map(str::trim) {
                if line.len() >= 16 && !line.starts_with("-----") && !s.iter().any(|x| x == line) {
                    s.push(line.to_string());
                }
            }
            s.sort_by_key(|x| std::cmp::Reverse(x.len()));
        }
    }
}

/// Register every string inside a JSON value (all leaves of a secret vars file).
pub fn register_value(v: &serde_json::Value) {
    match v {
        serde_json::Value::String(s) => register(s),
        serde_json::Value::Array(a) => a.iter().for_each(register_value),
        serde_json::Value::Object(o) => o.values().for_each(register_value),
        serde_json::Value::Number(n) => register(&n.to_string()),
        _ => {}
    }
}

/// Is any secret registered?
pub fn any_registered() -> bool {
    SECRETS.read().map(|s| !s.is_empty()).unwrap_or(false)
}

/// Does `text` contain a registered secret?
pub fn contains_secret(text: &str) -> bool {
    SECRETS
        .read()
        .map(|s| s.iter().any(|x| text.contains(x.as_str())))
        .unwrap_or(false)
}

/// Mask every registered secret in `text`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let Ok(secrets) = SECRETS.read() else {
        return Cow::Borrowed(text);
    };
    let mut out: Cow<'_, str> = Cow::Borrowed(text);
    for s in secrets.iter() {
        if out.contains(s.as_str()) {
            out = Cow::Owned(out.replace(s.as_str(), MASK));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_registered_values() {
        register("hunter2-canary-xyz");
        register("abc"); // too short: ignored
        assert_eq!(redact("pw=hunter2-canary-xyz!"), "pw=********!");
        assert_eq!(redact("abc"), "abc");
        assert!(contains_secret("..hunter2-canary-xyz.."));
    }

    #[test]
    fn masks_pem_lines() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";
        register(pem);
        assert_eq!(
            redact("line: MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg"),
            "line: ********"
        );
    }
}
