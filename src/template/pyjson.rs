//! Python's `json.dumps` and float `repr`, byte for byte, for `to_json` / `to_nice_json`.
//!
//! Owns the output format of the JSON filters: Python's default separators (`", "`, `": "`), `indent`,
//! `sort_keys` and `ensure_ascii` (non-ASCII as `\uXXXX`, on by default like Python), and floats written like
//! Python's `repr` (`1e+16`, `1.5`, `1.0`). Files written by Ansible's `to_nice_json` therefore compare equal
//! to ours and do not show up as changed. It must not decide what to serialize (that is the filter's job).

use serde_json::Value;

/// Options of `json.dumps` that the filters expose.
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
                out.push_str(&float_repr(n.as_f64().unwrap_or(0.0)));
            } else {
                out.push_str(&n.to_string());
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

/// Python's `repr(float)`: shortest round-trip digits, scientific below 1e-4 and from 1e16 on.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits, e.g. "1.2345e-5".
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let s = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{s}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let es = if exp < 0 { "-" } else { "+" };
        format!("{sign}{m}e{es}{:02}", exp.abs())
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
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (-2.5, "-2.5"),
            (123456789.125, "123456789.125"),
            (1.2345678901234568e20, "1.2345678901234568e+20"),
        ] {
            assert_eq!(float_repr(f), s);
        }
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
}
