//! Filters that write and read JSON and YAML text.
//!
//! Owns `to_json`/`to_nice_json` (their `json.dumps` options; the byte format is [`crate::pycompat`]'s),
//! `from_json`, `to_yaml`/`to_nice_yaml` (their `yaml.dump` options; the format is
//! [`crate::template::pyyaml`]'s), `from_yaml` and `from_yaml_all`. Parse errors give a position and a kind,
//! never the input text. It must not define the output formats themselves.

use minijinja::value::Kwargs;
use minijinja::{Error, State, Value};
use serde_json::Value as J;

use super::{err, from_j, require, text, to_j};
use crate::pycompat;
use crate::template::pyyaml;

fn json_opts(
    kwargs: &Kwargs,
    indent: Option<usize>,
    sort_keys: bool,
) -> Result<pycompat::DumpOptions, Error> {
    let indent = match kwargs.get::<Option<Value>>("indent")? {
        Some(v) if v.is_none() => None,
        Some(v) => Some(usize::try_from(v).map_err(|_| err("to_json: indent must be a number"))?),
        None => indent,
    };
    let sort_keys = kwargs
        .get::<Option<bool>>("sort_keys")?
        .unwrap_or(sort_keys);
    let mut o = pycompat::DumpOptions::python(indent, sort_keys);
    if let Some(a) = kwargs.get::<Option<bool>>("ensure_ascii")? {
        o.ensure_ascii = a;
    }
    if let Some(sep) = kwargs.get::<Option<Vec<String>>>("separators")? {
        if sep.len() != 2 {
            return Err(err("to_json: separators must be a pair"));
        }
        o.item_separator = sep[0].clone();
        o.key_separator = sep[1].clone();
    }
    Ok(o)
}

/// `to_json(**json.dumps options)`: Python's `json.dumps` output (`ensure_ascii`, `", "` separators).
pub(super) fn to_json(state: &State, v: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let o = json_opts(&kwargs, None, false)?;
    kwargs.assert_all_used()?;
    Ok(pycompat::dumps(&to_j(state, v)?, &o))
}

/// `to_nice_json(indent=4, sort_keys=True)`.
pub(super) fn to_nice_json(state: &State, v: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let mut o = json_opts(&kwargs, Some(4), true)?;
    o.item_separator = ",".into();
    o.key_separator = ": ".into();
    kwargs.assert_all_used()?;
    Ok(pycompat::dumps(&to_j(state, v)?, &o))
}

pub(super) fn from_json(state: &State, v: &Value) -> Result<Value, Error> {
    let s = text(state, v)?;
    let j: J = serde_json::from_str(&s).map_err(|e| {
        err(format!(
            "from_json: the input is not valid JSON (line {}, column {}: {})",
            e.line(),
            e.column(),
            json_error_kind(&e)
        ))
    })?;
    Ok(from_j(&j))
}

/// serde_json's message without the part that could quote the input.
fn json_error_kind(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Io => "read error",
        Category::Syntax => "syntax error",
        Category::Data => "unexpected data",
        Category::Eof => "unexpected end of input",
    }
}

fn yaml_opts(
    kwargs: &Kwargs,
    indent: usize,
    flow: Option<bool>,
) -> Result<pyyaml::YamlOptions, Error> {
    let mut o = pyyaml::YamlOptions {
        indent: kwargs.get::<Option<usize>>("indent")?.unwrap_or(indent),
        default_flow_style: flow,
        ..Default::default()
    };
    if let Some(v) = kwargs.get::<Option<Value>>("default_flow_style")? {
        o.default_flow_style = if v.is_none() { None } else { Some(v.is_true()) };
    }
    if let Some(w) = kwargs.get::<Option<usize>>("width")? {
        o.width = w;
    }
    if let Some(s) = kwargs.get::<Option<bool>>("sort_keys")? {
        o.sort_keys = s;
    }
    if let Some(s) = kwargs.get::<Option<bool>>("explicit_start")? {
        o.explicit_start = s;
    }
    // Accepted for compatibility; we always emit Unicode as is, like Ansible.
    let _ = kwargs.get::<Option<bool>>("allow_unicode")?;
    Ok(o)
}

/// `to_yaml`: PyYAML `yaml.dump` (flow style for collections of scalars).
pub(super) fn to_yaml(state: &State, v: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let o = yaml_opts(&kwargs, 2, None)?;
    kwargs.assert_all_used()?;
    Ok(pyyaml::dump(&to_j(state, v)?, &o))
}

/// `to_nice_yaml(indent=4)`: block style.
pub(super) fn to_nice_yaml(state: &State, v: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let o = yaml_opts(&kwargs, 4, Some(false))?;
    kwargs.assert_all_used()?;
    Ok(pyyaml::dump(&to_j(state, v)?, &o))
}

fn parse_yaml(s: &str) -> Result<J, Error> {
    crate::yaml::parse_value(s, std::path::Path::new("<from_yaml>")).map_err(|d| {
        // The diagnostic's snippet would quote the input: keep position and message only.
        err(format!(
            "from_yaml: the input is not valid YAML (line {}, column {}: {})",
            d.line, d.col, d.message
        ))
    })
}

pub(super) fn from_yaml(state: &State, v: &Value) -> Result<Value, Error> {
    require(state, v)?;
    if v.is_none() {
        return Ok(Value::from(()));
    }
    match v.as_str() {
        Some(s) => Ok(from_j(&parse_yaml(s)?)),
        None => Ok(v.clone()),
    }
}

pub(super) fn from_yaml_all(state: &State, v: &Value) -> Result<Value, Error> {
    require(state, v)?;
    if v.is_none() {
        return Ok(Value::from(Vec::<Value>::new()));
    }
    let Some(s) = v.as_str() else {
        return Ok(v.clone());
    };
    // Split on document markers at the start of a line.
    let mut docs = Vec::new();
    let mut cur = String::new();
    for line in s.split_inclusive('\n') {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") || t == "..." {
            if !cur.trim().is_empty() {
                docs.push(from_j(&parse_yaml(&cur)?));
            }
            cur.clear();
            if let Some(rest) = t.strip_prefix("--- ") {
                cur.push_str(rest);
                cur.push('\n');
            }
            continue;
        }
        cur.push_str(line);
    }
    if !cur.trim().is_empty() {
        docs.push(from_j(&parse_yaml(&cur)?));
    }
    Ok(Value::from(docs))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::template::filters::testing::{e, r, r_with};

    // Expected values below were produced by ansible-core 2.19.14 from the same expressions.

    #[test]
    fn json_yaml_roundtrips() {
        let v = json!({"d": {"z": 1, "a": [1, 2], "e": {}, "u": "é"}});
        assert_eq!(
            r_with("{{ d | to_json }}", v.clone()),
            r#"{"z": 1, "a": [1, 2], "e": {}, "u": "\u00e9"}"#
        );
        assert_eq!(
            r_with("{{ d | to_nice_json }}", v.clone()),
            "{\n    \"a\": [\n        1,\n        2\n    ],\n    \"e\": {},\n    \"u\": \"\\u00e9\",\n    \"z\": 1\n}"
        );
        assert_eq!(
            r_with(
                "{{ d | to_json(sort_keys=true, ensure_ascii=false) }}",
                v.clone()
            ),
            r#"{"a": [1, 2], "e": {}, "u": "é", "z": 1}"#
        );
        assert_eq!(
            r_with("{{ d | to_yaml }}", v.clone()),
            "a: [1, 2]\ne: {}\nu: é\nz: 1\n"
        );
        assert_eq!(
            r_with("{{ d | to_nice_yaml(indent=2) }}", v.clone()),
            "a:\n- 1\n- 2\ne: {}\nu: é\nz: 1\n"
        );
        assert_eq!(r("{{ ('{\"a\": [1, 2]}' | from_json).a[1] }}"), "2");
        assert_eq!(
            r("{{ ('a: 1\nb: [x, yes]' | from_yaml).b }}"),
            "['x', True]"
        );
        assert_eq!(
            r("{{ ('a: 1\n---\nb: 2\n' | from_yaml_all) | length }}"),
            "2"
        );
        // Round trip through our own loader.
        assert_eq!(
            r_with("{{ (d | to_nice_yaml | from_yaml) == d }}", v.clone()),
            "True"
        );
        assert_eq!(r_with("{{ (d | to_yaml | from_yaml) == d }}", v), "True");
        assert!(e("{{ 'hunter2-not-json' | from_json }}").contains("not valid JSON"));
        assert!(!e("{{ 'hunter2-not-json' | from_json }}").contains("hunter2"));
    }
}
