//! YAML loading, configured once for Ansible-compatible scalars.
//!
//! Owns the serde-saphyr options (legacy octal `0755` = 493, YAML 1.1 booleans `yes/no/on/off`, duplicate keys
//! are an error), the located [`Node`] tree every loader uses to report `file:line:col`, and the conversion of
//! parser errors into [`Diagnostic`]s. It must not interpret what the YAML means (plays, inventories): that
//! belongs to the loaders.
//!
//! Plain scalars resolve as PyYAML (what Ansible uses) resolves them, pinned by the golden test below: the few
//! cases where serde-saphyr differs (`y`/`n`, `0o17`, `1e3`, sexagesimal `1:20`) are corrected by looking at the
//! token as written. Mapping keys are always strings, spelled as written (`yes:` stays "yes"). Two deliberate
//! differences remain: duplicate keys are an error (Ansible warns and keeps the last), and keys merged with `<<`
//! keep serde-saphyr's order.

use std::fmt;
use std::path::Path;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::diag::Diagnostic;

/// The one option set used for every YAML file edgefleet reads.
pub fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        legacy_octal_numbers: true,
        duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::Error,
    }
}

/// A YAML value with the position it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub col: u64,
    /// The value.
    pub value: NodeValue,
}

/// The value of a [`Node`]. Mapping keys are strings, in source order.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    /// `~`, `null` or nothing.
    Null,
    /// `true`, `yes`, `on`, ...
    Bool(bool),
    /// Any integer that fits i64 (octal and hex included).
    Int(i64),
    /// Unsigned integers above i64::MAX.
    UInt(u64),
    /// Floats.
    Float(f64),
    /// Strings (quoted or plain).
    Str(String),
    /// Sequences.
    Seq(Vec<Node>),
    /// Mappings: (key node, value node), keys as written.
    Map(Vec<(Node, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: Spanned<NodeValue> = Spanned::deserialize(d)?;
        Ok(Node {
            line: s.referenced.line(),
            col: s.referenced.column(),
            value: s.value,
        })
    }
}

impl<'de> Deserialize<'de> for NodeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NodeValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<NodeValue, E> {
                Ok(NodeValue::Null)
            }
            fn visit_none<E>(self) -> Result<NodeValue, E> {
                Ok(NodeValue::Null)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<NodeValue, D2::Error> {
                NodeValue::deserialize(d)
            }
            fn visit_bool<E>(self, b: bool) -> Result<NodeValue, E> {
                Ok(NodeValue::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<NodeValue, E> {
                Ok(NodeValue::Int(n))
            }
            fn visit_u64<E>(self, n: u64) -> Result<NodeValue, E> {
                Ok(match i64::try_from(n) {
                    Ok(i) => NodeValue::Int(i),
                    Err(_) => NodeValue::UInt(n),
                })
            }
            fn visit_f64<E>(self, n: f64) -> Result<NodeValue, E> {
                Ok(NodeValue::Float(n))
            }
            fn visit_str<E>(self, s: &str) -> Result<NodeValue, E> {
                Ok(NodeValue::Str(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<NodeValue, E> {
                Ok(NodeValue::Str(s))
            }
            fn visit_bytes<E: serde::de::Error>(self, b: &[u8]) -> Result<NodeValue, E> {
                Ok(NodeValue::Str(String::from_utf8_lossy(b).into_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<NodeValue, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(NodeValue::Seq(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<NodeValue, A::Error> {
                let mut v = Vec::new();
                // Keys are requested as strings so that `yes:` or `0755:` keep their spelling, as PyYAML does
                // for the keys Ansible users write.
                while let Some(k) = a.next_key::<Spanned<String>>()? {
                    let val: Node = a.next_value()?;
                    let key = Node {
                        line: k.referenced.line(),
                        col: k.referenced.column(),
                        value: NodeValue::Str(k.value),
                    };
                    v.push((key, val));
                }
                Ok(NodeValue::Map(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl Node {
    /// A node without a meaningful position (synthesised values).
    pub fn synthetic(value: NodeValue) -> Self {
        Node {
            line: 0,
            col: 0,
            value,
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The mapping entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            NodeValue::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The sequence items, if this is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            NodeValue::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// Is this null (or an empty document)?
    pub fn is_null(&self) -> bool {
        matches!(self.value, NodeValue::Null)
    }

    /// Look a key up in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The key node for `key` in a mapping (its position is where the key is written).
    pub fn key_node(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, _)| k)
    }

    /// A short name of the node's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Int(_) | NodeValue::UInt(_) => "an integer",
            NodeValue::Float(_) => "a number",
            NodeValue::Str(_) => "a string",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }

    /// Convert to JSON (mapping order kept).
    pub fn to_json(&self) -> Value {
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Int(i) => Value::from(*i),
            NodeValue::UInt(u) => Value::from(*u),
            NodeValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                // NaN/inf have no JSON form; keep YAML's spelling.
                .unwrap_or_else(|| Value::String(f.to_string())),
            NodeValue::Str(s) => Value::String(s.clone()),
            NodeValue::Seq(s) => Value::Array(s.iter().map(Node::to_json).collect()),
            NodeValue::Map(m) => {
                let mut out = serde_json::Map::new();
                for (k, v) in m {
                    out.insert(k.as_str().unwrap_or_default().to_string(), v.to_json());
                }
                Value::Object(out)
            }
        }
    }
}

/// Parse one YAML document from `text` (read from `path`, used in messages).
pub fn parse_str(text: &str, path: &Path) -> Result<Node, Diagnostic> {
    let mut node = serde_saphyr::from_str_with_options::<Node>(text, options())
        .map_err(|e| error_to_diag(&e, text, path))?;
    let lines: Vec<&str> = text.lines().collect();
    pyyaml_fixups(&mut node, &lines);
    Ok(node)
}

/// The plain-scalar token written at a node's position (up to the next flow or comment delimiter).
fn token_at<'a>(lines: &[&'a str], line: u64, col: u64) -> Option<&'a str> {
    let l = lines.get((line as usize).checked_sub(1)?)?;
    let start = l
        .char_indices()
        .nth((col as usize).checked_sub(1)?)
        .map(|(i, _)| i)?;
    let rest = &l[start..];
    let end = rest
        .char_indices()
        .find(|&(i, c)| {
            matches!(c, ',' | ']' | '}')
                || (c == '#' && i > 0 && rest[..i].ends_with(' '))
                || (c == ':' && rest[i + 1..].starts_with(' '))
        })
        .map(|(i, _)| i)
        .unwrap_or(rest.len());
    Some(rest[..end].trim_end())
}

/// Align the few plain scalars where serde-saphyr's YAML 1.1 resolution differs from PyYAML's (which Ansible
/// uses), by looking at the token as written: `y`/`n` are strings, `0o17` is a string, `1e3` (no dot, or an
/// exponent without a sign) is a string, and sexagesimal `1:20` is the integer 80.
fn pyyaml_fixups(n: &mut Node, lines: &[&str]) {
    let tok = token_at(lines, n.line, n.col);
    match &mut n.value {
        NodeValue::Bool(_) => {
            if let Some(t) = tok {
                if matches!(t, "y" | "Y" | "n" | "N") {
                    n.value = NodeValue::Str(t.to_string());
                }
            }
        }
        NodeValue::Int(_) | NodeValue::UInt(_) => {
            if let Some(t) = tok {
                let u = t.trim_start_matches(['+', '-']);
                if u.starts_with("0o") || u.starts_with("0O") {
                    n.value = NodeValue::Str(t.to_string());
                }
            }
        }
        NodeValue::Float(_) => {
            if let Some(t) = tok {
                let lower = t.to_ascii_lowercase();
                let special = lower.contains("inf") || lower.contains("nan");
                let exp_unsigned = lower
                    .find('e')
                    .map(|i| !matches!(lower.as_bytes().get(i + 1), Some(b'+') | Some(b'-')))
                    .unwrap_or(false);
                if !special && (!t.contains('.') || exp_unsigned) {
                    n.value = NodeValue::Str(t.to_string());
                }
            }
        }
        NodeValue::Str(s) => {
            // Only plain scalars: the token at the position must be exactly the value (quoted text starts with
            // a quote character).
            if tok == Some(s.as_str()) {
                if let Some(v) = sexagesimal(s) {
                    n.value = NodeValue::Int(v);
                }
            }
        }
        NodeValue::Seq(items) => items.iter_mut().for_each(|i| pyyaml_fixups(i, lines)),
        NodeValue::Map(entries) => entries
            .iter_mut()
            .for_each(|(_, v)| pyyaml_fixups(v, lines)),
        NodeValue::Null => {}
    }
}

/// YAML 1.1 base-60 integers (`1:20` = 80, `-1:0:0` = -3600), as PyYAML resolves them.
fn sexagesimal(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let mut parts = body.split(':');
    let first = parts.next()?.replace('_', "");
    if first.is_empty()
        || !first.starts_with(|c: char| ('1'..='9').contains(&c))
        || !first.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let mut v: i64 = first.parse().ok()?;
    let mut any = false;
    for p in parts {
        any = true;
        if p.is_empty() || p.len() > 2 || !p.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let d: i64 = p.parse().ok()?;
        if d > 59 {
            return None;
        }
        v = v.checked_mul(60)?.checked_add(d)?;
    }
    if !any {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// Read and parse one YAML file.
pub fn parse_file(path: &Path) -> Result<(Node, String), Diagnostic> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Diagnostic::file(path, format!("cannot read file: {e}")))?;
    let node = parse_str(&text, path)?;
    Ok((node, text))
}

/// Parse YAML straight into a JSON value (for vars files and `-e @file`).
pub fn parse_value(text: &str, path: &Path) -> Result<Value, Diagnostic> {
    Ok(parse_str(text, path)?.to_json())
}

/// Turn a serde-saphyr error into a diagnostic with the file, line, column and our own snippet.
pub fn error_to_diag(e: &serde_saphyr::Error, text: &str, path: &Path) -> Diagnostic {
    let (line, col) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let msg = first_message(&e.to_string());
    Diagnostic::at(path, line, col, msg).with_source(text)
}

/// serde-saphyr renders `error: line L column C: message` plus its own snippet; keep just the message.
fn first_message(rendered: &str) -> String {
    let first = rendered.lines().next().unwrap_or(rendered);
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // Drop "line L column C: " which we print ourselves.
    if let Some(rest) = first.strip_prefix("line ") {
        if let Some(idx) = rest.find(": ") {
            let (pos, msg) = rest.split_at(idx);
            if pos.contains("column") {
                return msg[2..].to_string();
            }
        }
    }
    first.to_string()
}

/// Serialize a JSON value as YAML text (for `to_yaml`, `--list` and friends).
pub fn to_yaml_string(v: &Value) -> Result<String, String> {
    serde_saphyr::to_string(v).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn val(y: &str) -> Value {
        parse_value(y, Path::new("t.yml")).unwrap()
    }

    /// Golden: the Ansible-compatible scalar rules we rely on, and the known differences from PyYAML.
    #[test]
    fn golden_scalars() {
        let v = val(concat!(
            "yes_: yes\nno_: no\non_: on\noff_: Off\ntrue_: True\nnorway: NO\n",
            "octal: 0755\noctal_str: '0755'\nint: 42\nneg: -7\nhex: 0x1F\nfloat: 1.5\n",
            "underscore: 1_000\nnull1: ~\nnull2: null\nempty:\nstr: hello\nquoted_yes: 'yes'\n",
            "version: 1.5\nversion_str: '1.5'\ny_value: y\noctal_o: 0o17\nsexagesimal: 1:20\n",
            "flow: [x, y, n, 'y']\nexp: 1e3\nexp2: 1.0e+3\nquoted_sexa: '1:20'\nneg_sexa: -1:0:0\ntime: 12:30:61\n",
            "yes: key-is-string\n",
        ));
        assert_eq!(
            v,
            json!({
                "yes_": true, "no_": false, "on_": true, "off_": false, "true_": true, "norway": false,
                "octal": 493, "octal_str": "0755", "int": 42, "neg": -7, "hex": 31, "float": 1.5,
                "underscore": 1000, "null1": null, "null2": null, "empty": null, "str": "hello",
                "quoted_yes": "yes", "version": 1.5, "version_str": "1.5",
                // Where serde-saphyr alone differs from PyYAML, corrected to PyYAML's answer:
                "y_value": "y", "octal_o": "0o17", "sexagesimal": 80,
                "yes": "key-is-string",
                "flow": ["x", "y", "n", "y"], "exp": "1e3", "exp2": 1000.0, "quoted_sexa": "1:20",
                "neg_sexa": -3600, "time": "12:30:61",
            })
        );
    }

    #[test]
    fn duplicate_key_is_an_error_with_location() {
        let e = parse_str("a: 1\nb: 2\na: 3\n", Path::new("dup.yml")).unwrap_err();
        assert_eq!((e.line, e.col), (3, 1), "{e}");
        assert!(e.message.contains("duplicate"), "{e}");
        assert!(e.to_string().starts_with("dup.yml:3:1: "), "{e}");
    }

    #[test]
    fn syntax_error_has_location_and_snippet() {
        let e = parse_str("a: [1\nb: 2\n", Path::new("bad.yml")).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.snippet.as_deref().unwrap_or("").contains("2 | b: 2"),
            "{e}"
        );
    }

    #[test]
    fn nodes_carry_positions() {
        let n = parse_str("- name: x\n  copy:\n    dest: /tmp/a\n", Path::new("p.yml")).unwrap();
        let task = &n.as_seq().unwrap()[0];
        assert_eq!((task.line, task.col), (1, 3));
        let copy = task.get("copy").unwrap();
        assert_eq!(copy.get("dest").unwrap().line, 3);
        assert_eq!(task.key_node("copy").unwrap().line, 2);
    }

    #[test]
    fn merge_keys_are_applied() {
        let v = val("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n");
        assert_eq!(v["d"], json!({"x": 1, "y": 3}));
    }
}
