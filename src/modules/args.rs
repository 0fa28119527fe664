//! Module arguments: typed parsing with Ansible's string coercion, helpful messages, deferral of checks that
//! wait for templates, and file modes.
//!
//! Owns [`parse_args`] (serde with `deny_unknown_fields` structs, errors turned into [`ArgError`]s that name the
//! key and suggest the right one), the rule for which errors static validation leaves to run time
//! ([`waits_for_templates`]), and [`Mode`] (octal strings, symbolic modes, and the refusal of unquoted numbers
//! that read like an octal mode written without its leading 0). It must not touch devices or files.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

pub use crate::playbook::ArgError;
use crate::template::Templar;

/// A parse failure: the error, and whether it is about the shape of the arguments (an unknown or missing
/// key), which no template can fix.
pub(crate) struct ParseFailure {
    pub error: ArgError,
    pub shape: bool,
}

/// Deserialize typed arguments, turning serde's messages into [`ArgError`]s with the key and a suggestion.
///
/// Like Ansible, a string where a number or a boolean is expected is converted when it spells one (`-e
/// timeout=30` gives the string "30"; `"{{ x }}"` renders to text inside larger strings).
pub fn parse_args<T: DeserializeOwned>(module: &str, args: &Value) -> Result<T, ArgError> {
    parse_detailed(module, args).map_err(|f| f.error)
}

pub(crate) fn parse_detailed<T: DeserializeOwned>(
    module: &str,
    args: &Value,
) -> Result<T, ParseFailure> {
    let mut v = if args.is_null() {
        Value::Object(Map::new())
    } else {
        args.clone()
    };
    for _ in 0..64 {
        match serde_path_to_error::deserialize::<_, T>(&v) {
            Ok(t) => return Ok(t),
            Err(e) => {
                let msg = e.inner().to_string();
                let path: Vec<String> = e
                    .path()
                    .iter()
                    .map(|seg| match seg {
                        serde_path_to_error::Segment::Map { key } => key.clone(),
                        serde_path_to_error::Segment::Seq { index } => index.to_string(),
                        other => other.to_string(),
                    })
                    .collect();
                if let Some(converted) = coerce(&v, &path, &msg) {
                    v = converted;
                    continue;
                }
                return Err(ParseFailure {
                    shape: msg.starts_with("unknown field") || msg.starts_with("missing field"),
                    error: arg_error(module, &msg, &path),
                });
            }
        }
    }
    Err(ParseFailure {
        error: ArgError::new(format!("{module}: arguments could not be read")),
        shape: false,
    })
}

/// Convert the string at `path` to the type the error says was expected, if it spells one.
fn coerce(root: &Value, path: &[String], msg: &str) -> Option<Value> {
    if !msg.starts_with("invalid type: string") {
        return None;
    }
    let mut v = root.clone();
    let mut cur = &mut v;
    for seg in path {
        cur = match cur {
            Value::Object(o) => o.get_mut(seg)?,
            Value::Array(a) => a.get_mut(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    let Value::String(s) = cur else { return None };
    let t = s.trim();
    let new = if msg.contains("expected a boolean") || msg.contains("expected bool") {
        match t.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" | "y" | "t" => Value::Bool(true),
            "no" | "false" | "off" | "0" | "n" | "f" => Value::Bool(false),
            _ => return None,
        }
    } else if msg.contains("expected u") || msg.contains("expected i") || msg.contains("integer") {
        Value::from(t.parse::<i64>().ok()?)
    } else if msg.contains("expected f") {
        Value::from(t.parse::<f64>().ok()?)
    } else {
        return None;
    };
    *cur = new;
    Some(v)
}

/// Static validation (arguments as written, before templates are rendered): may this error go away once the
/// templates are rendered? Yes when the key it is about holds a template, or, for an error about the arguments
/// as a whole (or about a key that is absent), when any argument does. Such errors are reported when the task
/// runs (pre-flight, or the attempt itself) instead.
pub fn waits_for_templates(e: &ArgError, args: &Value) -> bool {
    match e.key.as_deref().and_then(|k| args.get(k)) {
        Some(v) => contains_template(v),
        None => contains_template(args),
    }
}

/// Does any string inside `v` contain template syntax?
pub fn contains_template(v: &Value) -> bool {
    match v {
        Value::String(s) => Templar::is_template(s),
        Value::Array(a) => a.iter().any(contains_template),
        Value::Object(o) => o.values().any(contains_template),
        _ => false,
    }
}

/// Rewrite a serde error ("unknown field `x`, expected one of `a`, `b`") into a helpful message; `path` is where
/// in the arguments it happened.
pub fn arg_error(module: &str, msg: &str, path: &[String]) -> ArgError {
    let at = |m: String| -> String {
        if path.is_empty() {
            m
        } else {
            format!("{m} (at `{}`)", path.join("."))
        }
    };
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        if let Some(end) = rest.find('`') {
            let field = &rest[..end];
            let expected: Vec<&str> = rest[end + 1..]
                .split('`')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, s)| s)
                .collect();
            let hint = crate::diag::did_you_mean(field, expected.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return ArgError::key(
                path.first().cloned().unwrap_or_else(|| field.to_string()),
                format!(
                    "{module}: unknown argument `{field}`{hint}; valid arguments: {}",
                    expected.join(", ")
                ),
            );
        }
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        return ArgError::new(format!("{module}: missing required argument `{field}`"));
    }
    // A value's own message (a mode, say) already names what is wrong; the path says where.
    let text = if path.len() == 1 && msg.starts_with(&format!("{} ", path[0])) {
        format!("{module}: {msg}")
    } else {
        at(format!("{module}: {msg}"))
    };
    match path.first() {
        Some(k) => ArgError::key(k.clone(), text),
        None => ArgError::new(text),
    }
}

/// A file mode, from an octal string (`"0644"`, `"644"`), a symbolic one (`u=rwX,g=rX,o=`, `g+w,o-rwx`), or an
/// unquoted YAML number (see [`parse_mode`] for which numbers are refused). A symbolic mode depends on the
/// path's current mode and kind: [`Mode::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Absolute permission bits.
    Octal(u32),
    /// A symbolic mode as written (validated), applied like Ansible does (chmod's rules; the umask for clauses
    /// without a `who` is taken as 022, the usual one).
    Symbolic(String),
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        if let Value::String(s) = &v {
            let t = s.trim();
            if !t.is_empty() && !t.chars().all(|c| c.is_ascii_digit()) {
                return apply_symbolic(t, 0, false)
                    .map(|_| Mode::Symbolic(t.to_string()))
                    .ok_or_else(|| serde::de::Error::custom(format!("invalid mode '{s}'")));
            }
        }
        parse_mode(&v)
            .map(Mode::Octal)
            .map_err(serde::de::Error::custom)
    }
}

impl Mode {
    /// The bits for a path whose current mode is `current` (None: it does not exist yet and is created with
    /// the default mode, 0644 for a file and 0755 for a directory).
    pub fn resolve(&self, current: Option<u32>, is_dir: bool) -> u32 {
        match self {
            Mode::Octal(m) => *m,
            Mode::Symbolic(s) => {
                let base = current.unwrap_or(if is_dir { 0o755 } else { 0o644 });
                apply_symbolic(s, base, is_dir).unwrap_or(base)
            }
        }
    }

    /// The bits when they do not depend on the path (an octal mode).
    pub fn octal(&self) -> Option<u32> {
        match self {
            Mode::Octal(m) => Some(*m),
            Mode::Symbolic(_) => None,
        }
    }
}

/// The modes people mean: the owner can read; the group has no more than the owner, others no more than the
/// group; and group or others have either nothing or at least read (`0644`, `0600`, `0750`, `0444`).
fn ordinary(m: u32) -> bool {
    let (u, g, o) = ((m >> 6) & 7, (m >> 3) & 7, m & 7);
    m <= 0o777
        && u & 4 != 0
        && g & !u == 0
        && o & !g == 0
        && (g == 0 || g & 4 != 0)
        && (o == 0 || o & 4 != 0)
}

/// An unquoted number that reads like an octal mode written without its leading 0, with the mode it was
/// probably meant to be.
fn unquoted_octal(n: u64) -> Option<u32> {
    let s = n.to_string();
    if !(3..=4).contains(&s.len()) || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    let meant = u32::from_str_radix(&s, 8).ok()?;
    // YAML reads `0644` as the number 420 and `644` as 644. After parsing, the spelling is gone, so judge by
    // the result: a number whose digits spell an ordinary mode, or one that as a number would set the
    // setuid/setgid/sticky bits (above 0777), was almost certainly written without its leading 0.
    (n > 0o777 || ordinary(meant)).then_some(meant)
}

/// Parse a file mode: an octal string ("0644", "644"), symbolic (`u=rw,g=r,o=r`), or an integer as YAML gives
/// it (`mode: 0644` is already the number 420).
///
/// An unquoted integer whose decimal digits look like an octal mode written without the leading 0 is refused
/// with a hint to quote it: YAML reads `mode: 644` as the decimal number 644 (which would be mode 01204). The
/// rule, since the spelling is gone after parsing: a 3- or 4-digit number made only of the digits 0-7 is
/// refused when those digits, read as octal, are an ordinary mode (owner can read, group no more than owner,
/// others no more than group, group/others either nothing or at least read: `644`, `600`, `755`, `400`), or when
/// the number itself is above 0777 (`711`, `1777`, `2755`). Every ordinary mode written with its leading 0 is
/// accepted (`0644` = 420, `0640` = 416, `0400` = 256, `0777` = 511, `0711` = 457), except `0764` (= 500, which
/// is also `0500` written without its 0: ambiguous, so refused). Modes with setuid/setgid/sticky bits written
/// as unquoted numbers (`01777` = 1023) are refused too: quote them.
pub fn parse_mode(v: &Value) -> Result<u32, String> {
    match v {
        Value::Number(n) => {
            let m = n
                .as_u64()
                .ok_or_else(|| format!("mode {n} is not a valid mode"))?;
            if let Some(meant) = unquoted_octal(m) {
                return Err(format!(
                    "mode {m} is an unquoted number, which YAML reads as decimal (it would be mode {m:04o}); quote it: \"{meant:04o}\""
                ));
            }
            if m > 0o7777 {
                return Err(format!(
                    "mode {m} is not a valid mode; quote it as a string, e.g. \"0644\""
                ));
            }
            Ok(m as u32)
        }
        Value::String(s) => {
            let t = s.trim();
            if t.chars().all(|c| c.is_ascii_digit()) && !t.is_empty() {
                u32::from_str_radix(t, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| format!("invalid octal mode '{s}'"))
            } else {
                apply_symbolic(t, 0, false).ok_or_else(|| format!("invalid mode '{s}'"))
            }
        }
        _ => Err("mode must be an octal string like \"0644\"".into()),
    }
}

/// Apply a symbolic mode to `current` the way Ansible does (`AnsibleModule._symbolic_mode_to_octal`): clauses
/// separated by `,`, each `who` (`u`, `g`, `o`, `a`; empty is `a` limited by the umask, taken as 022) followed by
/// one or more `op perms` (`=`, `+`, `-`; `r w x X s t` or a copy of `u`, `g`, `o`). `X` is execute only for a
/// directory or when some execute bit is already set. None when it does not parse.
fn apply_symbolic(s: &str, current: u32, is_dir: bool) -> Option<u32> {
    const UMASK: u32 = 0o022;
    let rev_umask = UMASK ^ 0o7777;
    let mut mode = current & 0o7777;
    if s.is_empty() {
        return None;
    }
    for clause in s.split(',') {
        let start = clause.find(['=', '+', '-'])?;
        let who = &clause[..start];
        if !who.chars().all(|c| matches!(c, 'u' | 'g' | 'o' | 'a')) {
            return None;
        }
        let use_umask = who.is_empty();
        let users: Vec<char> = if who.is_empty() || who.contains('a') {
            vec!['u', 'g', 'o']
        } else {
            who.chars().collect()
        };
        // Pairs of operator and permissions.
        let mut rest = &clause[start..];
        while !rest.is_empty() {
            let op = rest.chars().next()?;
            let tail = &rest[1..];
            let end = tail.find(['=', '+', '-']).unwrap_or(tail.len());
            let perms = &tail[..end];
            rest = &tail[end..];
            if !perms
                .chars()
                .all(|c| matches!(c, 'r' | 'w' | 'x' | 'X' | 's' | 't' | 'u' | 'g' | 'o'))
            {
                return None;
            }
            for &user in &users {
                let prev = mode;
                let apply_x = is_dir || prev & 0o111 != 0;
                let mut bits = 0;
                for p in perms.chars() {
                    let shift = match user {
                        'u' => 6,
                        'g' => 3,
                        _ => 0,
                    };
                    let masked = |b: u32| if use_umask { b & rev_umask } else { b };
                    bits |= match p {
                        'r' => masked(4 << shift),
                        'w' => masked(2 << shift),
                        'x' => masked(1 << shift),
                        'X' if apply_x => 1 << shift,
                        'X' => 0,
                        's' => match user {
                            'u' => 0o4000,
                            'g' => 0o2000,
                            _ => 0,
                        },
                        't' if user == 'o' => 0o1000,
                        't' => 0,
                        'u' | 'g' | 'o' => {
                            let from = match p {
                                'u' => 6,
                                'g' => 3,
                                _ => 0,
                            };
                            ((prev >> from) & 7) << shift
                        }
                        _ => 0,
                    };
                }
                mode = match op {
                    '=' => {
                        let mask = match user {
                            'u' => 0o4700,
                            'g' => 0o2070,
                            _ => 0o1007,
                        };
                        (mode & !mask & 0o7777) | bits
                    }
                    '+' => mode | bits,
                    _ => mode & !bits,
                };
            }
        }
    }
    Some(mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn modes() {
        assert_eq!(parse_mode(&json!(420)), Ok(0o644)); // YAML `0644`
        assert_eq!(parse_mode(&json!(511)), Ok(0o777)); // YAML `0777`
        assert_eq!(parse_mode(&json!("0600")), Ok(0o600));
        assert_eq!(parse_mode(&json!("644")), Ok(0o644)); // a string is always octal
        assert_eq!(parse_mode(&json!("u=rw,g=r,o=r")), Ok(0o644));
        let sym = |s: &str, cur: Option<u32>, dir: bool| {
            let m: Mode = serde_json::from_value(json!(s)).unwrap();
            m.resolve(cur, dir)
        };
        assert_eq!(sym("u=rwX,g=rX,o=", Some(0o644), false), 0o640);
        assert_eq!(sym("u=rwX,g=rX,o=", Some(0o755), false), 0o750);
        assert_eq!(sym("u=rwX,g=rX,o=", None, true), 0o750);
        assert_eq!(sym("g+w,o-rwx", Some(0o644), false), 0o660);
        assert_eq!(sym("a=rx,u+w", Some(0o700), true), 0o755);
        assert_eq!(sym("+x", Some(0o644), false), 0o755);
        assert_eq!(sym("u+s,o+t", Some(0o755), true), 0o5755);
        assert_eq!(sym("g=u", Some(0o740), false), 0o770);
        assert!(serde_json::from_value::<Mode>(json!("u=rwq")).is_err());
        assert!(serde_json::from_value::<Mode>(json!("z=r")).is_err());
        assert!(parse_mode(&json!(99999)).is_err());
        assert!(parse_mode(&json!("0o644")).is_err());
    }

    #[test]
    fn unquoted_octal_looking_numbers_are_refused_with_the_fix() {
        let e = parse_mode(&json!(644)).unwrap_err();
        assert!(e.contains("quote it: \"0644\""), "{e}");
        assert!(e.contains("mode 1204"), "{e}");
        for n in [
            600, 640, 700, 750, 755, 777, 400, 440, 444, 555, 711, 1777, 2755,
        ] {
            assert!(parse_mode(&json!(n)).is_err(), "{n} must be refused");
        }
        // Ambiguous: 0764 (rwxrw-r--) or 500 meant as 0500.
        assert!(parse_mode(&json!(500)).is_err());
        // Not octal-looking: plain numbers pass as the mode they are.
        assert_eq!(parse_mode(&json!(384)), Ok(0o600)); // YAML `0600`
        assert_eq!(parse_mode(&json!(493)), Ok(0o755)); // YAML `0755`
    }

    #[test]
    fn every_ordinary_mode_is_accepted_with_its_leading_zero_and_refused_without() {
        for m in 0..=0o777u32 {
            if !ordinary(m) {
                continue;
            }
            // Written `0NNN` in YAML: the number m.
            if m != 0o764 {
                assert_eq!(parse_mode(&json!(m)), Ok(m), "0{m:o} must be accepted");
            }
            // Written `NNN` (no leading 0): the decimal number spelled like the octal digits.
            if m >= 0o100 {
                let n: u64 = format!("{m:o}").parse().unwrap();
                assert!(parse_mode(&json!(n)).is_err(), "{n} must be refused");
            }
        }
    }

    #[test]
    fn strings_are_coerced_like_ansible() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct A {
            n: u64,
            b: bool,
            l: Vec<i32>,
            s: String,
        }
        let a: A = parse_args(
            "m",
            &json!({"n": "30", "b": "yes", "l": ["1", 2], "s": "7"}),
        )
        .unwrap();
        assert_eq!((a.n, a.b, a.l, a.s.as_str()), (30, true, vec![1, 2], "7"));
        let e =
            parse_args::<A>("m", &json!({"n": "thirty", "b": true, "l": [], "s": ""})).unwrap_err();
        assert!(e.message.contains("(at `n`)"), "{}", e.message);
    }

    #[test]
    fn mode_errors_name_the_key() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct A {
            #[allow(dead_code)]
            mode: Option<Mode>,
        }
        let e = parse_args::<A>("file", &json!({"mode": 644})).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("mode"));
        assert!(
            e.message
                .starts_with("file: mode 644 is an unquoted number"),
            "{}",
            e.message
        );
    }

    #[test]
    fn unknown_field_message() {
        let e = arg_error(
            "copy",
            "unknown field `dst`, expected one of `src`, `dest`, `mode`",
            &["dst".to_string()],
        );
        assert_eq!(e.key.as_deref(), Some("dst"));
        assert!(e.message.contains("did you mean `dest`"), "{}", e.message);
    }

    #[test]
    fn template_deferral_is_per_key() {
        let args = json!({"path": "{{ p }}", "state": "gone"});
        assert!(!waits_for_templates(&ArgError::key("state", "x"), &args));
        assert!(waits_for_templates(&ArgError::key("path", "x"), &args));
        assert!(waits_for_templates(&ArgError::new("x"), &args));
        assert!(waits_for_templates(&ArgError::key("src", "x"), &args));
        assert!(!waits_for_templates(&ArgError::new("x"), &json!({"a": 1})));
    }
}
