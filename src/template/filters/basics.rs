//! Filters for defaults, truthiness, numbers and types.
//!
//! Owns Jinja's own filters that Ansible (or Jinja2 itself) defines differently from minijinja (`default`/`d`
//! understanding the chained-undefined marker, `int` and `float` parsing strings like Python), Ansible's `bool`,
//! `mandatory`, `ternary` and `type_debug`, and the `__ef_chain` function the undefined rewrite
//! ([`crate::template::rewrite`]) calls. It must not serialize values or work on text beyond Python's
//! `int()`/`float()` parsing.

use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Error, ErrorKind, State, Value};

use super::{err, require};
use crate::template::values::{is_missing, Missing};

/// `__ef_chain(path, base, *keys)`: look `keys` up one after the other; a missing link gives [`Missing`].
pub(super) fn chain(path: String, base: &Value, keys: Rest<Value>) -> Value {
    let missing = || Value::from_object(Missing { path: path.clone() });
    if is_missing(base) {
        return missing();
    }
    let mut cur = base.clone();
    for k in keys.iter() {
        if cur.is_none() {
            return missing();
        }
        cur = match cur.get_item(k) {
            Ok(v) if !v.is_undefined() => v,
            _ => return missing(),
        };
    }
    cur
}

/// Jinja's `default(default_value='', boolean=False)`; also accepts the chained-undefined marker.
/// Jinja2 docs: `{{ my_variable|default('my_variable is not defined') }}`.
pub(super) fn default(value: &Value, args: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    // `Rest` (not `Option<Value>`) so that an explicit `default(none)` gives none, not ''.
    if args.len() > 2 {
        return Err(Error::from(ErrorKind::TooManyArguments));
    }
    let other = match args.first() {
        Some(o) => o.clone(),
        None => kwargs
            .get::<Option<Value>>("default_value")?
            .unwrap_or(Value::from("")),
    };
    let boolean = match args.get(1) {
        Some(b) => b.is_true(),
        None => kwargs.get::<Option<bool>>("boolean")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    if is_missing(value) || (boolean && !value.is_true()) {
        Ok(other)
    } else {
        Ok(value.clone())
    }
}

/// Ansible's `mandatory(msg=None)`: fail when undefined, naming the variable (or with `msg`).
pub(super) fn mandatory(
    state: &State,
    value: &Value,
    msg: Option<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let msg = match msg {
        Some(m) => Some(m),
        None => kwargs.get::<Option<String>>("msg")?,
    };
    kwargs.assert_all_used()?;
    if !is_missing(value) {
        return Ok(value.clone());
    }
    if let Some(m) = msg {
        return Err(Error::new(ErrorKind::UndefinedError, m));
    }
    match value.downcast_object_ref::<Missing>() {
        Some(m) => Err(Error::new(
            ErrorKind::UndefinedError,
            format!("Mandatory variable '{}' not defined.", m.path),
        )),
        None => {
            // minijinja names the undefined expression itself.
            require(state, value)?;
            Err(Error::new(
                ErrorKind::UndefinedError,
                "Mandatory variable not defined.",
            ))
        }
    }
}

/// Ansible's `bool`: `yes`/`on`/`true`/`1` (any case) are true; everything else is false.
pub fn ansible_bool(v: &Value) -> bool {
    match v.kind() {
        ValueKind::Bool => v.is_true(),
        ValueKind::Number => match v.as_i64() {
            Some(i) => i == 1,
            None => f64::try_from(v.clone()).map(|f| f == 1.0).unwrap_or(false),
        },
        ValueKind::String => matches!(
            v.as_str().unwrap_or("").to_lowercase().as_str(),
            "yes" | "on" | "true" | "1"
        ),
        _ => false,
    }
}

pub(super) fn bool_filter(state: &State, v: &Value) -> Result<bool, Error> {
    require(state, v)?;
    Ok(ansible_bool(v))
}

/// Python's `int(s, base)` for strings (whitespace, sign, `_` between digits, `0x`/`0o`/`0b` prefixes).
fn parse_py_int(s: &str, base: u32) -> Option<i128> {
    let s = s.trim();
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = s.to_ascii_lowercase();
    let prefixed = |p: &str| lower.starts_with(p);
    let (base, digits) = match base {
        0 if prefixed("0x") => (16, &s[2..]),
        0 if prefixed("0o") => (8, &s[2..]),
        0 if prefixed("0b") => (2, &s[2..]),
        0 => {
            // Base 0 refuses leading zeros on non-zero decimals.
            if s.len() > 1
                && s.starts_with('0')
                && s.chars().any(|c| c.is_ascii_digit() && c != '0')
            {
                return None;
            }
            (10, s)
        }
        16 if prefixed("0x") => (16, &s[2..]),
        8 if prefixed("0o") => (8, &s[2..]),
        2 if prefixed("0b") => (2, &s[2..]),
        b => (b, s),
    };
    let digits = digits
        .strip_prefix('_')
        .filter(|_| digits.len() != s.len())
        .unwrap_or(digits);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    let v = i128::from_str_radix(&clean, base).ok()?;
    if clean.starts_with(['+', '-']) {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// Python's `float(s)` for strings.
fn parse_py_float(s: &str) -> Option<f64> {
    let s = s.trim();
    let l = s.to_ascii_lowercase();
    let body = l.trim_start_matches(['+', '-']);
    if matches!(body, "inf" | "infinity" | "nan") {
        let f = if body == "nan" {
            f64::NAN
        } else {
            f64::INFINITY
        };
        return Some(if l.starts_with('-') { -f } else { f });
    }
    if s.is_empty() || s.contains("__") || s.starts_with('_') || s.ends_with('_') {
        return None;
    }
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    if !clean
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    clean.parse().ok()
}

/// Jinja2's `int(value, default=0, base=10)`: strings are parsed like Python's `int(s, base)`, then like
/// `int(float(s))`; anything that fails gives `default`. (Jinja2 docs: `{{ '0x4d32'|int(0, 16) }}` -> 19762.)
pub(super) fn int(
    state: &State,
    value: &Value,
    default: Option<Value>,
    base: Option<u32>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let default = match default {
        Some(d) => d,
        None => kwargs
            .get::<Option<Value>>("default")?
            .unwrap_or(Value::from(0)),
    };
    let base = match base {
        Some(b) => b,
        None => kwargs.get::<Option<u32>>("base")?.unwrap_or(10),
    };
    kwargs.assert_all_used()?;
    require(state, value)?;
    if base == 1 || base > 36 {
        return Err(err("int: base must be 0 or between 2 and 36"));
    }
    let from_float = |f: f64| -> Result<Value, Error> {
        if f.is_nan() {
            Ok(default.clone())
        } else if f.is_infinite() {
            Err(err("int: cannot convert float infinity to integer"))
        } else {
            Ok(Value::from(f.trunc() as i128))
        }
    };
    match value.kind() {
        ValueKind::Bool => Ok(Value::from(value.is_true() as i64)),
        ValueKind::Number => {
            if value.is_integer() {
                Ok(value.clone())
            } else {
                from_float(f64::try_from(value.clone()).unwrap_or(f64::NAN))
            }
        }
        ValueKind::String => {
            let s = value.as_str().unwrap_or("");
            if let Some(i) = parse_py_int(s, base) {
                return Ok(Value::from(i));
            }
            match parse_py_float(s) {
                Some(f) => from_float(f),
                None => Ok(default),
            }
        }
        _ => Ok(default),
    }
}

/// Jinja2's `float(value, default=0.0)`.
pub(super) fn float(
    state: &State,
    value: &Value,
    default: Option<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let default = match default {
        Some(d) => d,
        None => kwargs
            .get::<Option<Value>>("default")?
            .unwrap_or(Value::from(0.0)),
    };
    kwargs.assert_all_used()?;
    require(state, value)?;
    Ok(match value.kind() {
        ValueKind::Bool => Value::from(if value.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => Value::from(f64::try_from(value.clone()).unwrap_or(0.0)),
        ValueKind::String => parse_py_float(value.as_str().unwrap_or(""))
            .map(Value::from)
            .unwrap_or(default),
        _ => default,
    })
}

/// `ternary(true_val, false_val, none_val=None)`.
pub(super) fn ternary(
    state: &State,
    v: &Value,
    t: Value,
    f: Value,
    none_val: Option<Value>,
) -> Result<Value, Error> {
    require(state, v)?;
    if v.is_none() {
        if let Some(n) = none_val.filter(|n| !n.is_none()) {
            return Ok(n);
        }
    }
    Ok(if v.is_true() { t } else { f })
}

/// `type_debug`: the Python type name Ansible would print.
pub(super) fn type_debug(v: &Value) -> &'static str {
    if is_missing(v) {
        return "AnsibleUndefined";
    }
    match v.kind() {
        ValueKind::Undefined => "AnsibleUndefined",
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if v.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq => "list",
        ValueKind::Map => "dict",
        _ => "object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::template::filters::testing::{e, r, r_with};

    // Expected values below were produced by ansible-core 2.19.14 from the same expressions.

    #[test]
    fn default_and_mandatory() {
        assert_eq!(r("{{ x | d('q') }}"), "q");
        assert_eq!(r("{{ '' | d('q', true) }}"), "q");
        assert_eq!(r("{{ 0 | d('q', true) }}"), "q");
        assert_eq!(r("{{ none | d('q') }}"), "");
        assert_eq!(r("{{ none | d('q', true) }}"), "q");
        assert_eq!(r("{{ x | default(boolean=true) }}"), "");
        assert_eq!(r("{{ x | default(none) is none }}"), "True");
        assert!(e("{{ x | mandatory }}").contains("Mandatory variable 'x' not defined."));
        assert!(e("{{ x.y | mandatory }}").contains("Mandatory variable 'x.y' not defined."));
        assert!(e("{{ x | mandatory('need x') }}").contains("need x"));
        assert_eq!(r_with("{{ a.k | mandatory }}", json!({"a": {"k": 1}})), "1");
    }

    #[test]
    fn bool_like_ansible_filter() {
        // 'yes'|bool ... ' yes '|bool on ansible-core 2.19:
        assert_eq!(
            r("{{ 'yes'|bool }}|{{ 'Y'|bool }}|{{ 't'|bool }}|{{ 'on'|bool }}|{{ '1'|bool }}|{{ 1|bool }}|{{ 2|bool }}|{{ 0|bool }}|{{ 'no'|bool }}|{{ ''|bool }}|{{ none|bool }}|{{ 1.0|bool }}|{{ 'TRUE'|bool }}|{{ ' yes '|bool }}"),
            "True|False|False|True|True|True|False|False|False|False|False|True|True|False"
        );
        assert_eq!(
            crate::template::values::module_bool(&json!("y")),
            Some(true)
        );
        assert_eq!(crate::template::values::module_bool(&json!("maybe")), None);
    }

    #[test]
    fn int_and_float_like_jinja() {
        assert_eq!(
            r("{{ 'x'|int }}|{{ '42'|int }}|{{ '0x1F'|int(base=16) }}|{{ '1F'|int(0, 16) }}|{{ '3.7'|int }}|{{ 3.7|int }}|{{ -3.7|int }}|{{ true|int }}|{{ none|int }}|{{ 'x'|int(5) }}|{{ '0b101'|int(0, 2) }}|{{ '0755'|int(base=8) }}|{{ ' 42 '|int }}|{{ '1_000'|int }}|{{ '+5'|int }}|{{ '1e3'|int }}"),
            "0|42|31|31|3|3|-3|1|0|5|5|493|42|1000|5|1000"
        );
        // Jinja2 docs: {{ '0x4d32'|int(0, 16) }} -> 19762.
        assert_eq!(r("{{ '0x4d32'|int(0, 16) }}"), "19762");
        assert_eq!(
            r("{{ '1.5'|float }}|{{ 'x'|float }}|{{ 'x'|float(2.5) }}|{{ 3|float }}"),
            "1.5|0.0|2.5|3.0"
        );
    }

    #[test]
    fn ternary_and_type_debug() {
        assert_eq!(r("{{ true | ternary('a','b') }}|{{ false | ternary('a','b') }}|{{ none | ternary('a','b','c') }}|{{ none | ternary('a','b') }}|{{ '' | ternary('a','b') }}"), "a|b|c|b|b");
        assert_eq!(
            r("{{ 1 | type_debug }}|{{ 'a' | type_debug }}|{{ [1] | type_debug }}|{{ {} | type_debug }}|{{ none | type_debug }}|{{ 1.5 | type_debug }}|{{ true | type_debug }}"),
            "int|str|list|dict|NoneType|float|bool"
        );
    }
}
