//! Reading one keyword's value from YAML: booleans (Ansible's spellings), scalars as text, string lists,
//! conditions, variable mappings and `serial` (free-form `key=value` strings are `kv`'s).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn node(yaml: &str) -> Node {
        crate::yaml::parse_str(yaml, std::path::Path::new("t.yml")).unwrap()
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
