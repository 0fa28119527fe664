//! The process-wide redactor: every secret value known to this run is masked in every output.
//!
//! Owns the list of secret values and the one function every output path calls to mask them ([`redact`]).
//! Values are registered when secret material is loaded (age-encrypted vars files, `no_log` results, passwords
//! from connection variables). It must never log or print a secret itself.
//!
//! A secret rarely reaches an output byte for byte: JSON output escapes quotes, backslashes and newlines, a
//! shell command line quotes it, a template may base64-encode it, a tool may print one line of a PEM key or trim
//! the trailing newline. [`register`] therefore also registers those derived forms, so the leak paths they open
//! are closed in every output that calls [`redact`]. Matching uses one Aho-Corasick automaton (leftmost-longest,
//! so a secret that contains another is masked whole) built lazily after registrations: a fleet of thousands of
//! devices, each with its own connection string, must not make every output line cost thousands of scans.
//!
//! The registry fails closed: a poisoned lock (a panic elsewhere while registering) still masks.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::Engine as _;

/// What a masked secret looks like in any output.
pub const MASK: &str = "********";

/// Secrets shorter than this are not masked by value (masking "1" everywhere would destroy every message);
/// they are still never logged by the paths that know a value is secret, and the age loader warns (by key name,
/// never by value) when a secret file holds such a short string.
pub const MIN_MASK_LEN: usize = 4;

/// Lines of a multi-line secret shorter than this are not masked on their own (they would be too generic).
const MIN_LINE_LEN: usize = 16;

struct Registry {
    /// Every pattern to mask, in registration order.
    patterns: Vec<String>,
    /// The same, for de-duplication.
    seen: HashSet<String>,
    /// The automaton over the first `built` patterns. Patterns registered since are scanned one by one until
    /// they are more than [`pending_limit`] of them; then the automaton is rebuilt over all. A fleet registers
    /// one secret per device while outputs are already being masked: rebuilding after every registration
    /// cost O(devices^2) (118 ms of controller CPU per device at 1000 devices); this way the rebuilds cost
    /// O(devices) in all and a scan at most a bounded number of extra substring searches.
    matcher: Option<Arc<AhoCorasick>>,
    /// How many of `patterns` the automaton covers.
    built: usize,
}

/// How many patterns may wait outside the automaton.
fn pending_limit(built: usize) -> usize {
    (built / 8).max(32)
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| {
    Mutex::new(Registry {
        patterns: Vec::new(),
        seen: HashSet::new(),
        matcher: None,
        built: 0,
    })
});

fn lock() -> MutexGuard<'static, Registry> {
    // Fail closed: a panic in another thread while it held the lock must not turn masking off.
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    fn add(&mut self, pattern: &str) {
        if pattern.len() >= MIN_MASK_LEN && !self.seen.contains(pattern) {
            self.seen.insert(pattern.to_string());
            self.patterns.push(pattern.to_string());
        }
    }
}

/// Every form of `value` that can reach an output and must be masked (the value itself first).
fn derived_forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_string()];
    let trimmed = value.trim();
    if trimmed != value {
        forms.push(trimmed.to_string());
    }
    // JSON (and YAML double-quoted) output escapes `"`, `\` and control characters.
    if let Ok(json) = serde_json::to_string(value) {
        let inner = &json[1..json.len() - 1];
        if inner != value {
            forms.push(inner.to_string());
        }
    }
    // Python's json.dumps (ansible-inventory compatible output) also escapes every non-ASCII character.
    if !value.is_ascii() {
        if let Ok(json) = serde_json::to_string(value) {
            let mut ascii = String::with_capacity(json.len() * 2);
            for c in json[1..json.len() - 1].chars() {
                if c.is_ascii() {
                    ascii.push(c);
                } else {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        ascii.push_str(&format!("\\u{u:04x}"));
                    }
                }
            }
            forms.push(ascii);
        }
    }
    // A shell command line quotes it (`'it'\''s'`), YAML single-quotes it (`'it''s'`): the quoted forms no
    // longer contain the value.
    if value.contains('\'') {
        forms.push(crate::shell::quote(value));
        forms.push(value.replace('\'', "''"));
    }
    // PEM material (keys, certificates) is masked line by line: that covers the whole value wherever it
    // appears, raw or JSON-escaped, so the whole-value forms are not kept (a fleet of keys would make the
    // matcher many megabytes larger for nothing).
    if value.trim_start().starts_with("-----BEGIN") {
        let lines: Vec<String> = value
            .lines()
            .map(str::trim)
            .filter(|l| l.len() >= MIN_MASK_LEN && !l.starts_with("-----"))
            .map(str::to_string)
            .collect();
        if !lines.is_empty() {
            return lines;
        }
    }
    // Templates may base64-encode it (`b64encode`); so do many config formats.
    forms.push(base64::engine::general_purpose::STANDARD.encode(value.as_bytes()));
    // Other multi-line secrets are also masked line by line, in case a tool prints one line of them.
    if value.contains('\n') {
        for line in value.lines().map(str::trim) {
            if line.len() >= MIN_LINE_LEN && !line.starts_with("-----") {
                forms.push(line.to_string());
            }
        }
    }
    forms
}

/// Register a secret value so every later output masks it (and its escaped, quoted and base64 forms).
pub fn register(value: &str) {
    if !is_maskable(value) {
        return;
    }
    let forms = derived_forms(value);
    let mut reg = lock();
    for f in &forms {
        reg.add(f);
    }
}

/// Can `value` be masked by value (is it at least [`MIN_MASK_LEN`] bytes once trimmed)?
pub fn is_maskable(value: &str) -> bool {
    value.trim().len() >= MIN_MASK_LEN
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
    !lock().patterns.is_empty()
}

/// What matches the registered patterns now: the automaton (over most of them) and the patterns registered
/// since it was built.
struct Snapshot {
    automaton: Option<Arc<AhoCorasick>>,
    pending: Vec<String>,
}

/// The current [`Snapshot`], or `Err(patterns)` when the automaton cannot be built (then callers scan
/// naively: slower, never less safe). `Ok(None)` when nothing is registered.
fn matcher() -> Result<Option<Snapshot>, Vec<String>> {
    let mut reg = lock();
    if reg.patterns.is_empty() {
        return Ok(None);
    }
    let pending = reg.patterns.len() - reg.built;
    if reg.matcher.is_none() || pending > pending_limit(reg.built) {
        match AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            // The contiguous NFA is several times smaller than a DFA over thousands of device secrets, and
            // still matches in one pass.
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(&reg.patterns)
        {
            Ok(m) => {
                reg.matcher = Some(Arc::new(m));
                reg.built = reg.patterns.len();
            }
            Err(_) => {
                let mut p = reg.patterns.clone();
                p.sort_by_key(|x| std::cmp::Reverse(x.len()));
                return Err(p);
            }
        }
    }
    Ok(Some(Snapshot {
        automaton: reg.matcher.clone(),
        pending: reg.patterns[reg.built..].to_vec(),
    }))
}

/// Does `text` contain a registered secret?
pub fn contains_secret(text: &str) -> bool {
    match matcher() {
        Ok(None) => false,
        Ok(Some(s)) => {
            s.automaton.as_ref().is_some_and(|m| m.is_match(text))
                || s.pending.iter().any(|p| text.contains(p.as_str()))
        }
        Err(patterns) => patterns.iter().any(|p| text.contains(p.as_str())),
    }
}

/// Mask every registered secret in `text`.
pub fn redact(text: &str) -> Cow<'_, str> {
    match matcher() {
        Ok(None) => Cow::Borrowed(text),
        Ok(Some(s)) => {
            // Every match of either part, on the original text; overlapping ones are masked as one, so a
            // pattern of one part can never leave part of an overlapping pattern of the other unmasked.
            let mut spans: Vec<(usize, usize)> = Vec::new();
            if let Some(m) = &s.automaton {
                spans.extend(m.find_iter(text).map(|x| (x.start(), x.end())));
            }
            for p in &s.pending {
                spans.extend(
                    text.match_indices(p.as_str())
                        .map(|(i, _)| (i, i + p.len())),
                );
            }
            if spans.is_empty() {
                return Cow::Borrowed(text);
            }
            spans.sort_unstable();
            let mut out = String::with_capacity(text.len());
            let mut at = 0;
            let mut i = 0;
            while i < spans.len() {
                let (start, mut end) = spans[i];
                i += 1;
                while i < spans.len() && spans[i].0 < end {
                    end = end.max(spans[i].1);
                    i += 1;
                }
                let start = start.max(at);
                out.push_str(&text[at..start]);
                out.push_str(MASK);
                at = end.max(at);
            }
            out.push_str(&text[at..]);
            Cow::Owned(out)
        }
        Err(patterns) => {
            let mut out: Cow<'_, str> = Cow::Borrowed(text);
            for s in &patterns {
                if out.contains(s.as_str()) {
                    out = Cow::Owned(out.replace(s.as_str(), MASK));
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_registered_between_outputs_are_masked_without_rebuilding_each_time() {
        // One secret per device, registered while outputs are masked (as a fleet run does).
        for i in 0..300 {
            let secret = format!("fleet-secret-{i:04}-zq");
            register(&secret);
            let line = format!("device {i}: key={secret}; tail");
            assert_eq!(redact(&line), format!("device {i}: key={MASK}; tail"));
            assert!(contains_secret(&line));
        }
        // Between rebuilds only a bounded number waits outside the automaton.
        let reg = lock();
        assert!(reg.patterns.len() - reg.built <= pending_limit(reg.built));
        drop(reg);
        // A pattern in the automaton and an overlapping one registered later are masked as one span.
        register("overlap-AAAA-BBBB");
        register("BBBB-CCCC-overlap");
        let out = redact("x overlap-AAAA-BBBB-CCCC-overlap y");
        assert_eq!(out, format!("x {MASK} y"));
        assert!(!out.contains("CCCC"), "{out}");
    }

    #[test]
    fn masks_registered_values() {
        register("hunter2-canary-xyz");
        register("abc"); // too short: ignored
        assert_eq!(redact("pw=hunter2-canary-xyz!"), "pw=********!");
        assert_eq!(redact("abc"), "abc");
        assert!(contains_secret("..hunter2-canary-xyz.."));
        assert!(!contains_secret("nothing secret here"));
    }

    #[test]
    fn masks_pem_lines() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";
        register(pem);
        assert_eq!(
            redact("line: MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg"),
            "line: ********"
        );
        // The whole key, raw or JSON-escaped, keeps only its (public) BEGIN/END lines.
        let whole = redact(&format!("<{pem}>")).into_owned();
        assert_eq!(
            whole,
            "<-----BEGIN PRIVATE KEY-----\n********\n-----END PRIVATE KEY-----\n>"
        );
        let escaped = serde_json::to_string(pem).unwrap();
        assert!(
            !redact(&escaped).contains("MIGHAgEA"),
            "{}",
            redact(&escaped)
        );
    }

    #[test]
    fn masks_json_escaped_form() {
        let secret = "pa\"ss\\word-canary\nline2";
        register(secret);
        let json = serde_json::to_string(&serde_json::json!({ "pw": secret })).unwrap();
        let out = redact(&json);
        assert!(!out.contains("canary"), "{out}");
        assert_eq!(out, r#"{"pw":"********"}"#);
    }

    #[test]
    fn masks_python_ascii_json_form() {
        let secret = "pässwörd-canary-😀";
        register(secret);
        // What Python's json.dumps (ensure_ascii) prints.
        let py = r#"{"pw": "p\u00e4ssw\u00f6rd-canary-\ud83d\ude00"}"#;
        assert_eq!(redact(py), r#"{"pw": "********"}"#);
    }

    #[test]
    fn masks_shell_quoted_form() {
        let secret = "it's-a-canary-pw";
        register(secret);
        let cmd = format!("echo {}", crate::shell::quote(secret));
        assert_eq!(redact(&cmd), "echo ********");
    }

    #[test]
    fn masks_base64_form() {
        let secret = "SharedAccessKey=b64-canary-0123";
        register(secret);
        let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
        assert_eq!(redact(&format!("x {b64} y")), "x ******** y");
    }

    #[test]
    fn longest_match_wins() {
        register("inner-canary-1");
        register("outer-inner-canary-1-outer");
        assert_eq!(redact("[outer-inner-canary-1-outer]"), "[********]");
    }

    #[test]
    fn masks_after_many_registrations() {
        for i in 0..2000 {
            register(&format!("device-key-{i:05}-canary"));
        }
        assert_eq!(
            redact("a device-key-01999-canary b device-key-00000-canary"),
            "a ******** b ********"
        );
    }

    #[test]
    fn still_masks_after_a_poisoned_lock() {
        register("poison-canary-value");
        let _ = std::thread::spawn(|| {
            let _g = REGISTRY.lock();
            panic!("poison the registry lock");
        })
        .join();
        assert_eq!(redact("poison-canary-value"), MASK);
    }
}
