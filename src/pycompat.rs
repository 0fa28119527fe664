//! Python compatibility of values: how Python (and so Ansible) spells a value as text, byte for byte.
//!
//! Owns `json.dumps` (separators, `indent`, `sort_keys`, `ensure_ascii`), `repr()` of floats, complex numbers
//! and strings, and `str()`/`repr()` of variable values (`{'k': [1, None, True]}`). Both siblings of the
//! language use it: the inventory (`ansible-inventory --list`/`--graph --vars` output) and templates
//! (`to_json`/`to_nice_json`, printing floats, `to_yaml`'s float spelling). It is a leaf: it imports nothing of
//! ours and must not decide what to print (which value, which options): that is the caller's job.

use serde_json::{Number, Value};

// ---------------------------------------------------------------------------------------------------------------
// json.dumps
// ---------------------------------------------------------------------------------------------------------------

/// Options of `json.dumps`.
#[derive(Debug, Clone)]
pub struct DumpOptions {
    /// `indent=`: `None` for one line.
    pub indent: Option<usize>,
    /// `sort_keys=`.
    pub sort_keys: bool,
    /// `ensure_ascii=` (Python's default is true).
    pub ensure_ascii: bool,
    /// Separator between items (Python: `", "` on one line, `","` with an indent).
    pub item_separator: String,
    /// Separator between a key and its value.
    pub key_separator: String,
}

impl DumpOptions {
    /// Python's defaults for the given indent.
    pub fn python(indent: Option<usize>, sort_keys: bool) -> Self {
        DumpOptions {
            indent,
            sort_keys,
            ensure_ascii: true,
            item_separator: if indent.is_some() { "," } else { ", " }.to_string(),
            key_separator: ": ".to_string(),
        }
    }

    /// `json.dumps(v, sort_keys=True, indent=4, ensure_ascii=False)`: what ansible-inventory 2.19 prints
    /// (UTF-8 text, Python's float spelling).
    pub fn ansible_inventory() -> Self {
        DumpOptions {
            ensure_ascii: false,
            ..DumpOptions::python(Some(4), true)
        }
    }
}

/// `json.dumps(v, **opts)`.
pub fn dumps(v: &Value, o: &DumpOptions) -> String {
    let mut out = String::new();
    write_value(v, o, 0, &mut out);
    out
}

fn newline(o: &DumpOptions, level: usize, out: &mut String) {
    if let Some(n) = o.indent {
        out.push('\n');
        for _ in 0..n * level {
            out.push(' ');
        }
    }
}

fn write_value(v: &Value, o: &DumpOptions, level: usize, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_f64() {
                out.push_str(&json_float(n.as_f64().unwrap_or(f64::NAN)));
            } else {
                out.push_str(&number_repr(n));
            }
        }
        Value::String(s) => write_string(s, o.ensure_ascii, out),
        Value::Array(a) => {
            if a.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(&o.item_separator);
                }
                newline(o, level + 1, out);
                write_value(x, o, level + 1, out);
            }
            newline(o, level, out);
            out.push(']');
        }
        Value::Object(m) => {
            if m.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            if o.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (i, (k, x)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(&o.item_separator);
                }
                newline(o, level + 1, out);
                write_string(k, o.ensure_ascii, out);
                out.push_str(&o.key_separator);
                write_value(x, o, level + 1, out);
            }
            newline(o, level, out);
            out.push('}');
        }
    }
}

fn write_string(s: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ensure_ascii && (c as u32) > 0x7e) => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// How `json.dumps` writes a float: like `repr`, with `NaN`/`Infinity`/`-Infinity` for the non-finite.
fn json_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        float_repr(f)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// repr() of numbers
// ---------------------------------------------------------------------------------------------------------------

/// Shortest round-trip digits and decimal exponent of a finite, non-zero `f` (`d.ddd × 10^exp`).
fn shortest_digits(f: f64) -> (String, i32) {
    // `{:e}` gives the shortest round-trip digits, e.g. "1.2345e-5".
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    (digits, exp.parse().unwrap_or(0))
}

/// Python's `format(x, 'r')`: shortest round-trip digits, scientific below 1e-4 and from 1e16 on, with `.0`
/// added to integral values when `add_dot_0` (`repr(float)` adds it, `repr(complex)` does not).
fn float_fmt(f: f64, add_dot_0: bool) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0{}", if add_dot_0 { ".0" } else { "" });
    }
    let (digits, exp) = shortest_digits(f);
    let decpt = exp + 1; // digits before the decimal point
    if !(-4 < decpt && decpt <= 16) {
        let mut m = digits[..1].to_string();
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{esign}{:02}", exp.abs());
    }
    let n = digits.len() as i32;
    let body = if decpt <= 0 {
        format!("0.{}{}", "0".repeat((-decpt) as usize), digits)
    } else if decpt >= n {
        let mut b = format!("{}{}", digits, "0".repeat((decpt - n) as usize));
        if add_dot_0 {
            b.push_str(".0");
        }
        b
    } else {
        format!(
            "{}.{}",
            &digits[..decpt as usize],
            &digits[decpt as usize..]
        )
    };
    format!("{sign}{body}")
}

/// Python's `repr(float)` (`1.5`, `1.0`, `1e+16`, `1e-05`, `nan`, `inf`, `-inf`).
pub fn float_repr(f: f64) -> String {
    float_fmt(f, true)
}

/// Python's `repr(complex)` (`1j`, `(1+2j)`, `(-0-1j)`).
pub fn complex_repr(re: f64, im: f64) -> String {
    if re == 0.0 && re.is_sign_positive() {
        return format!("{}j", float_fmt(im, false));
    }
    let im_s = float_fmt(im, false);
    let im_s = if im_s.starts_with('-') {
        im_s
    } else {
        format!("+{im_s}")
    };
    format!("({}{}j)", float_fmt(re, false), im_s)
}

fn number_repr(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        float_repr(n.as_f64().unwrap_or(f64::NAN))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// str() / repr() of strings and values
// ---------------------------------------------------------------------------------------------------------------

/// `str.isprintable()` for one character, as far as `repr` needs it.
fn printable(c: char) -> bool {
    let u = c as u32;
    if u < 0x20 || u == 0x7f {
        return false;
    }
    if u < 0x7f {
        return true;
    }
    !((0x80..=0xa0).contains(&u)
        || u == 0xad
        || (0x2000..=0x200f).contains(&u)
        || (0x2028..=0x202f).contains(&u)
        || (0x205f..=0x206f).contains(&u)
        || u == 0x3000
        || u == 0xfeff
        || (0xe000..=0xf8ff).contains(&u)
        || (0xfff9..=0xfffb).contains(&u))
}

/// Python's `repr(str)`.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if printable(c) => out.push(c),
            c => {
                let u = c as u32;
                if u < 0x100 {
                    out.push_str(&format!("\\x{u:02x}"));
                } else if u < 0x10000 {
                    out.push_str(&format!("\\u{u:04x}"));
                } else {
                    out.push_str(&format!("\\U{u:08x}"));
                }
            }
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of a variable value (dicts as `{'k': v}`, booleans as `True`, null as `None`).
pub fn repr_value(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => number_repr(n),
        Value::String(s) => str_repr(s),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(repr_value).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", str_repr(k), repr_value(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// Python's `str()` of a variable value (strings as they are, everything else as `repr`).
pub fn str_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => repr_value(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_like_python_repr() {
        // Values checked with CPython 3.11 `repr()`.
        for (f, s) in [
            (1.0, "1.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1000.0, "1000.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e-5, "1.5e-05"),
            (0.00001, "1e-05"),
            (0.0001, "0.0001"),
            (-2.5, "-2.5"),
            (-2.5e-7, "-2.5e-07"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (123456789.125, "123456789.125"),
            (1.2345678901234568e20, "1.2345678901234568e+20"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(float_repr(f), s);
        }
        assert_eq!(json_float(f64::NAN), "NaN");
        assert_eq!(json_float(f64::INFINITY), "Infinity");
        assert_eq!(json_float(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(json_float(1e16), "1e+16");
    }

    #[test]
    fn complex_like_python_repr() {
        assert_eq!(complex_repr(0.0, 1.0), "1j");
        assert_eq!(complex_repr(1.0, 2.0), "(1+2j)");
        assert_eq!(complex_repr(-0.0, -1.0), "(-0-1j)");
        assert_eq!(complex_repr(0.0, 1.5), "1.5j");
    }

    #[test]
    fn reprs_match_python() {
        assert_eq!(str_repr("a"), "'a'");
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("a'\"b"), "'a\\'\"b'");
        assert_eq!(str_repr("t\tn\n\x01é"), "'t\\tn\\n\\x01é'");
        assert_eq!(
            repr_value(&json!({"a": [1, "x", null, true, 1.0]})),
            "{'a': [1, 'x', None, True, 1.0]}"
        );
        assert_eq!(str_value(&json!("plain")), "plain");
        assert_eq!(str_value(&json!([false, 2])), "[False, 2]");
    }

    #[test]
    fn dumps_like_python() {
        let v = json!({"z": 1, "a": [1, 2.0], "m": {"s": "é\"\n"}, "e": {}, "l": []});
        // json.dumps(v)
        assert_eq!(
            dumps(&v, &DumpOptions::python(None, false)),
            r#"{"z": 1, "a": [1, 2.0], "m": {"s": "\u00e9\"\n"}, "e": {}, "l": []}"#
        );
        // json.dumps(v, indent=4, sort_keys=True, separators=(',', ': '))
        assert_eq!(
            dumps(&v, &DumpOptions::python(Some(4), true)),
            "{\n    \"a\": [\n        1,\n        2.0\n    ],\n    \"e\": {},\n    \"l\": [],\n    \"m\": {\n        \"s\": \"\\u00e9\\\"\\n\"\n    },\n    \"z\": 1\n}"
        );
        let astral = json!("😀");
        assert_eq!(
            dumps(&astral, &DumpOptions::python(None, false)),
            r#""\ud83d\ude00""#
        );
    }

    #[test]
    fn dumps_like_ansible_inventory() {
        // json.dumps(v, sort_keys=True, indent=4, ensure_ascii=False)
        let v = json!({"b": [1, 2.5, 1e20], "a": {}, "c": [], "d": "é\u{1F600}\"\n\u{1}\u{7f}"});
        assert_eq!(
            dumps(&v, &DumpOptions::ansible_inventory()),
            "{\n    \"a\": {},\n    \"b\": [\n        1,\n        2.5,\n        1e+20\n    ],\n    \"c\": [],\n    \"d\": \"é\u{1F600}\\\"\\n\\u0001\u{7f}\"\n}"
        );
    }
}
