//! Reading one keyword's value from YAML: booleans (Ansible's spellings), scalars as text, string lists,
//! conditions, variable mappings, `serial`, and free-form `key=value` strings.
//!
//! Owns the shapes a value may take and the message when it takes another. Every reader is pure: a node in,
//! a value or a message out (the caller places the message at the keyword). It must not record diagnostics,
//! look at other keywords, or import any other loader file but the model.

use serde_json::{Map, Value};

use super::model::{Cond, Serial};
use crate::vars::Vars;
use crate::yaml::{Node, NodeValue};

/// A string list from a string ("a,b" when `split_commas`), a list of strings, or null.
pub(super) fn str_list(n: &Node, split_commas: bool) -> Result<Vec<String>, String> {
    match &n.value {
        NodeValue::Null => Ok(vec![]),
        NodeValue::Str(s) => Ok(if split_commas {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        } else {
            vec![s.clone()]
        }),
        NodeValue::Bool(_) | NodeValue::Int(_) | NodeValue::Float(_) | NodeValue::UInt(_) => {
            Ok(vec![scalar_text(n)])
        }
        NodeValue::Seq(items) => items
            .iter()
            .map(|i| match &i.value {
                NodeValue::Str(s) => Ok(s.clone()),
                NodeValue::Bool(_)
                | NodeValue::Int(_)
                | NodeValue::Float(_)
                | NodeValue::UInt(_) => Ok(scalar_text(i)),
                _ => Err(format!(
                    "expected a list of strings, found {} in it",
                    i.type_name()
                )),
            })
            .collect(),
        _ => Err(format!(
            "expected a string or a list of strings, found {}",
            n.type_name()
        )),
    }
}

/// A scalar as text (booleans as Python spells them); empty for null, lists and mappings.
pub(super) fn scalar_text(n: &Node) -> String {
    match &n.value {
        NodeValue::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        NodeValue::Int(i) => i.to_string(),
        NodeValue::UInt(u) => u.to_string(),
        NodeValue::Float(f) => f.to_string(),
        NodeValue::Str(s) => s.clone(),
        _ => String::new(),
    }
}

/// A scalar as written, or its JSON text when it is not a string (role names).
pub(super) fn scalar(n: &Node) -> String {
    n.as_str()
        .map(String::from)
        .unwrap_or_else(|| n.to_json().to_string())
}

/// A boolean keyword: YAML booleans, or Ansible's spellings in strings.
pub(super) fn bool_of(n: &Node) -> Result<bool, String> {
    match &n.value {
        NodeValue::Bool(b) => Ok(*b),
        NodeValue::Int(i) => Ok(*i != 0),
        NodeValue::Str(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" | "y" | "t" => Ok(true),
            "no" | "false" | "off" | "0" | "n" | "f" | "" => Ok(false),
            _ => Err(format!(
                "expected a boolean (yes/no, true/false), found '{s}'"
            )),
        },
        _ => Err(format!("expected a boolean, found {}", n.type_name())),
    }
}

/// A mapping of variables (or Ansible's list of single-key mappings; null is empty).
pub(super) fn vars_of(n: &Node) -> Result<Vars, String> {
    match n.to_json() {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        Value::Array(items) if items.iter().all(Value::is_object) => {
            // Ansible also accepts a list of single-key mappings.
            let mut m = Map::new();
            for i in items {
                if let Value::Object(o) = i {
                    m.extend(o);
                }
            }
            Ok(m)
        }
        _ => Err(format!("vars must be a mapping, found {}", n.type_name())),
    }
}

/// A condition: a fixed boolean (`changed_when: false`) or expressions.
pub(super) fn cond_of(n: &Node) -> Result<Cond, String> {
    match &n.value {
        NodeValue::Bool(b) => Ok(Cond::Fixed(*b)),
        _ => str_list(n, false).map(Cond::Exprs),
    }
}

/// `serial`: a number, a percentage, or a list of those.
pub(super) fn parse_serial(n: &Node) -> Result<Vec<Serial>, String> {
    let one = |n: &Node| -> Result<Serial, String> {
        match &n.value {
            NodeValue::Int(i) if *i >= 0 => Ok(Serial::Count(*i as usize)),
            NodeValue::Str(s) => {
                let t = s.trim();
                if let Some(p) = t.strip_suffix('%') {
                    match p.trim().parse::<f64>() {
                        Ok(v) if v > 0.0 && v <= 100.0 => Ok(Serial::Percent(v)),
                        _ => Err(format!(
                            "serial: '{s}' is not a percentage between 1% and 100%"
                        )),
                    }
                } else {
                    t.parse::<usize>()
                        .map(Serial::Count)
                        .map_err(|_| format!("serial: '{s}' is neither a number of hosts nor a percentage like '30%'"))
                }
            }
            _ => Err(format!(
                "serial must be a number, a percentage like '30%', or a list of those; found {}",
                n.type_name()
            )),
        }
    };
    match &n.value {
        NodeValue::Seq(items) if items.is_empty() => Err("serial: the list is empty".into()),
        NodeValue::Seq(items) => items.iter().map(one).collect(),
        NodeValue::Null => Ok(vec![]),
        _ => one(n).map(|s| vec![s]),
    }
}

/// A valid variable name (`register:`, free-form argument names).
pub(super) fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// Parse Ansible's free-form `key=value key2="quoted value"` arguments, as its `parse_kv` does: words split at
/// whitespace outside quotes and `{{ }}`/`{% %}`/`{# #}`, escape sequences (`\n`, `\t`, `\"`, `\x41`, ...)
/// decoded, the key/value split at the first unescaped `=`, one pair of outer quotes removed from the value.
pub fn parse_kv(s: &str) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for word in split_kv_words(s)? {
        let word = decode_escapes(&word);
        let pos = word
            .char_indices()
            .skip(1)
            .find(|&(i, c)| c == '=' && !word[..i].ends_with('\\'))
            .map(|(i, _)| i);
        let Some(pos) = pos else {
            return Err(format!("expected key=value arguments, found `{word}`"));
        };
        let (k, v) = (word[..pos].trim(), word[pos + 1..].trim());
        if !is_identifier(k) {
            return Err(format!("`{k}` is not a valid argument name"));
        }
        out.insert(k.to_string(), Value::String(unquote(v).to_string()));
    }
    Ok(out)
}

/// Split free-form arguments into words, keeping quotes and backslashes (Ansible's `split_args`).
fn split_kv_words(s: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\\' && (quote.is_some() || depth == 0) {
            cur.push(c);
            if let Some(n) = next {
                cur.push(n);
            }
            i += 2;
            continue;
        }
        if quote.is_none() && c == '{' && matches!(next, Some('{' | '%' | '#')) {
            depth += 1;
            cur.push(c);
            cur.extend(next);
            i += 2;
            continue;
        }
        if quote.is_none() && depth > 0 && matches!(c, '}' | '%' | '#') && next == Some('}') {
            depth -= 1;
            cur.push(c);
            cur.push('}');
            i += 2;
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            None if depth == 0 && (c == '"' || c == '\'') => quote = Some(c),
            None if depth == 0 && c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                i += 1;
                continue;
            }
            _ => {}
        }
        cur.push(c);
        i += 1;
    }
    if quote.is_some() {
        return Err("unbalanced quotes".into());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

/// Python's `unicode-escape` decoding of the escapes Ansible's `parse_kv` decodes.
fn decode_escapes(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '\\' || i + 1 >= chars.len() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let hex = |n: usize| -> Option<char> {
            let digits: String = chars.get(i + 2..i + 2 + n)?.iter().collect();
            if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            char::from_u32(u32::from_str_radix(&digits, 16).ok()?)
        };
        let (decoded, used) = match chars[i + 1] {
            '\\' => (Some('\\'), 2),
            '\'' => (Some('\''), 2),
            '"' => (Some('"'), 2),
            'a' => (Some('\u{7}'), 2),
            'b' => (Some('\u{8}'), 2),
            'f' => (Some('\u{c}'), 2),
            'n' => (Some('\n'), 2),
            'r' => (Some('\r'), 2),
            't' => (Some('\t'), 2),
            'v' => (Some('\u{b}'), 2),
            'x' => (hex(2), 4),
            'u' => (hex(4), 6),
            'U' => (hex(8), 10),
            _ => (None, 0),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                i += used;
            }
            None => {
                out.push('\\');
                i += 1;
            }
        }
    }
    out
}

/// Remove one pair of matching outer quotes (Ansible's `unquote`).
fn unquote(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2
        && (b[0] == b'"' || b[0] == b'\'')
        && b[b.len() - 1] == b[0]
        && b[b.len() - 2] != b'\\'
    {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(yaml: &str) -> Node {
        crate::yaml::parse_str(yaml, std::path::Path::new("t.yml")).unwrap()
    }

    #[test]
    fn kv_parsing() {
        let m = parse_kv("src=a.txt dest='/tmp/x y' mode=0644 msg=\"{{ a b }}\"").unwrap();
        assert_eq!(m["dest"], "/tmp/x y");
        assert_eq!(m["mode"], "0644");
        assert_eq!(m["msg"], "{{ a b }}");
        assert!(parse_kv("justaword").is_err());
        // Ansible decodes escapes and keeps what is inside templates together.
        let m =
            parse_kv(r#"content="{{ n }}\n" path=C:\\x re='a\.b' msg={{ a | b('x y') }}"#).unwrap();
        assert_eq!(m["content"], "{{ n }}\n");
        assert_eq!(m["path"], "C:\\x");
        assert_eq!(m["re"], "a\\.b");
        assert_eq!(m["msg"], "{{ a | b('x y') }}");
        assert!(parse_kv("a='open").is_err());
    }

    #[test]
    fn booleans_take_ansible_spellings() {
        assert_eq!(bool_of(&node("yes")), Ok(true));
        assert_eq!(bool_of(&node("'off'")), Ok(false));
        assert!(bool_of(&node("maybe")).unwrap_err().contains("'maybe'"));
        assert!(bool_of(&node("[1]")).is_err());
    }

    #[test]
    fn lists_split_commas_only_when_asked() {
        assert_eq!(str_list(&node("a, b"), true).unwrap(), ["a", "b"]);
        assert_eq!(str_list(&node("a, b"), false).unwrap(), ["a, b"]);
        assert_eq!(
            str_list(&node("[x, 1, true]"), false).unwrap(),
            ["x", "1", "True"]
        );
        assert!(str_list(&node("[[x]]"), false).is_err());
    }

    #[test]
    fn serial_steps() {
        assert_eq!(parse_serial(&node("2")).unwrap(), [Serial::Count(2)]);
        assert_eq!(
            parse_serial(&node("[1, '50%']")).unwrap(),
            [Serial::Count(1), Serial::Percent(50.0)]
        );
        assert!(parse_serial(&node("[]")).is_err());
        assert!(parse_serial(&node("'150%'")).is_err());
    }
}
