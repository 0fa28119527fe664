//! Encrypted vars files: decrypt, parse as YAML, register every value with the redactor, note what cannot be
//! masked.
//!
//! Owns [`SecretStore::load_vars_file`], parsing decrypted YAML so that errors never quote the content
//! ([`check_secret_yaml`]), and the warning about secret values too short to be masked. It must not print: the
//! warning goes to the store's warnings (drained by `take_warnings`) and names keys, never values.

use std::fs;
use std::path::Path;

use serde_json::Value;

use super::{SecretError, SecretStore};

impl SecretStore {
    /// Decrypt an age-encrypted YAML vars file (cached), parse it, register every value with the redactor.
    /// Values too short to be masked are noted once per file as a warning ([`SecretStore::take_warnings`]).
    pub fn load_vars_file(&self, path: &Path) -> Result<Value, SecretError> {
        let canon = fs::canonicalize(path).map_err(|source| SecretError::Read {
            path: path.into(),
            source,
        })?;
        if let Some(v) = self.cached_vars(&canon) {
            return Ok(v);
        }
        let p = self.decrypt_file(path)?;
        let Some(text) = p.text() else {
            return Err(SecretError::Damaged {
                path: path.into(),
                detail:
                    "it decrypts, but the content is not UTF-8 text, so it is not a YAML vars file"
                        .into(),
            });
        };
        let v = parse_secret_yaml(text, path)?;
        crate::redact::register_value(&v);
        let mut short = Vec::new();
        short_strings(&v, &mut String::new(), &mut short);
        if !short.is_empty() {
            self.warn(format!(
                "{}: {} shorter than {} characters, so {} cannot be masked in output: {}",
                crate::diag::display_path(path),
                if short.len() == 1 {
                    "this secret value is"
                } else {
                    "these secret values are"
                },
                crate::redact::MIN_MASK_LEN,
                if short.len() == 1 { "it" } else { "they" },
                short.join(", ")
            ));
        }
        self.cache_vars(canon, v.clone());
        Ok(v)
    }
}

/// Parse decrypted YAML. A parse error keeps its line and column but never the source snippet or any quoted
/// fragment of it: the text is secret.
fn parse_secret_yaml(text: &str, path: &Path) -> Result<Value, SecretError> {
    crate::yaml::parse_value(text, path).map_err(|d| {
        let mut msg = String::new();
        let mut in_quote: Option<char> = None;
        for c in d.message.chars() {
            match in_quote {
                Some(q) if c == q => {
                    in_quote = None;
                    msg.push(q);
                }
                Some(_) => {}
                None if matches!(c, '"' | '\'' | '`') => {
                    in_quote = Some(c);
                    msg.push(c);
                    msg.push('…');
                }
                None => msg.push(c),
            }
        }
        let msg = crate::redact::redact(&msg).into_owned();
        let mut leaks = false;
        for word in msg.split(|c: char| !c.is_alphanumeric()) {
            // A long token from the plaintext in the parser's words: drop the message rather than risk it.
            if word.len() >= 12 && text.contains(word) {
                leaks = true;
            }
        }
        let at = if d.line > 0 {
            format!(" at line {}, column {}", d.line, d.col)
        } else {
            String::new()
        };
        SecretError::Damaged {
            path: path.into(),
            detail: format!(
                "it decrypts, but the content is not valid YAML{at}{}; content not shown because it is secret: \
                 fix it with `edgefleet vault edit`",
                if leaks || msg.is_empty() { String::new() } else { format!(": {msg}") }
            ),
        }
    })
}

/// Check that decrypted text is valid YAML; the error (if any) never shows the content.
pub fn check_secret_yaml(text: &str, path: &Path) -> Result<(), SecretError> {
    parse_secret_yaml(text, path).map(|_| ())
}

/// Key paths of string values too short to be masked by value.
fn short_strings(v: &Value, path: &mut String, out: &mut Vec<String>) {
    match v {
        Value::String(s) if !s.trim().is_empty() && !crate::redact::is_maskable(s) => {
            out.push(if path.is_empty() {
                "(top level)".into()
            } else {
                path.clone()
            })
        }
        Value::Object(m) => {
            for (k, v) in m {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                short_strings(v, path, out);
                path.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                short_strings(v, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::vars::secrets::test_support::{encrypt_to, store_with_key};
    use crate::vars::secrets::ARMOR_BEGIN;

    #[test]
    fn roundtrip_and_decrypt_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, id) = store_with_key(dir.path());
        let f = encrypt_to(
            dir.path(),
            "v.yml.age",
            "db_password: unit-canary-9f3e2\n",
            &id.to_public().to_string(),
        );
        let text = fs::read_to_string(&f).unwrap();
        assert!(text.starts_with(ARMOR_BEGIN), "{text}");
        let v = store.load_vars_file(&f).unwrap();
        assert_eq!(v["db_password"], "unit-canary-9f3e2");
        assert_eq!(store.decryptions(), 1);
        // Same file again, also through another spelling of its path: cached.
        store.load_vars_file(&f).unwrap();
        let other = dir.path().join(".").join("v.yml.age");
        store.decrypt_file(&other).unwrap();
        assert_eq!(store.decryptions(), 1);
        assert_eq!(
            crate::redact::redact("x unit-canary-9f3e2 y"),
            "x ******** y"
        );
    }

    #[test]
    fn yaml_errors_never_show_content() {
        let text = "a: 1\nsecret_value: \"unterminated-canary-5c1 \n  - [\n";
        let e = parse_secret_yaml(text, Path::new("s.yml.age")).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("not valid YAML"), "{m}");
        assert!(!m.contains("canary"), "{m}");
        assert!(!m.contains("secret_value"), "{m}");
    }

    /// The warning a file with one short value `key` gets (the text it printed before it was collected).
    fn short_warning(file: &Path, key: &str) -> String {
        format!(
            "{}: this secret value is shorter than {} characters, so it cannot be masked in output: {key}",
            crate::diag::display_path(file),
            crate::redact::MIN_MASK_LEN
        )
    }

    #[test]
    fn short_values_warn_once_by_key_never_by_value() {
        let dir = tempfile::tempdir().unwrap();
        let (store, id) = store_with_key(dir.path());
        let f = encrypt_to(
            dir.path(),
            "short.yml.age",
            "site_pin: \"Zq\"\napi_token: long-enough-unit-token-7d1\n",
            &id.to_public().to_string(),
        );
        assert!(store.take_warnings().is_empty());
        store.load_vars_file(&f).unwrap();
        let w = store.take_warnings();
        assert_eq!(w, vec![short_warning(&f, "site_pin")]);
        // Beyond the file name (which is not secret), the warning holds no value.
        let rest = &w[0][crate::diag::display_path(&f).len()..];
        assert!(!rest.contains("Zq"), "{rest}");
        assert!(!rest.contains("long-enough-unit-token"), "{rest}");
        // Taken once; loading the same file again (cached) does not warn again.
        assert!(store.take_warnings().is_empty());
        store.load_vars_file(&f).unwrap();
        assert!(store.take_warnings().is_empty());
    }

    #[test]
    fn take_warnings_drains_the_process_wide_store() {
        let dir = tempfile::tempdir().unwrap();
        let (_, id) = store_with_key(dir.path());
        let f = encrypt_to(
            dir.path(),
            "global.yml.age",
            "pin: \"Xy\"\n",
            &id.to_public().to_string(),
        );
        crate::vars::secrets::configure(&[dir.path().join("key.txt")]);
        crate::vars::secrets::load_vars_file(&f).unwrap();
        // Only this test uses the process-wide store; other warnings would name other files.
        let w = crate::vars::secrets::take_warnings();
        assert!(w.contains(&short_warning(&f, "pin")), "{w:?}");
        assert!(!crate::vars::secrets::take_warnings().contains(&short_warning(&f, "pin")));
    }

    #[test]
    fn short_strings_are_reported_by_key() {
        let v = serde_json::json!({"a": {"pin": "12"}, "long": "long-enough", "l": ["x"]});
        let mut out = Vec::new();
        short_strings(&v, &mut String::new(), &mut out);
        assert_eq!(out, vec!["a.pin".to_string(), "l[0]".to_string()]);
    }
}
