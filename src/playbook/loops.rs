//! The `with_<lookup>:` loop keywords beyond `with_items`/`with_list`/`with_dict`/`with_indexed_items` (which
//! the keyword table reads itself): `with_sequence`, `with_nested`, `with_together`, `with_subelements`,
//! `with_fileglob`, `with_lines`, `with_first_found`, `with_file`, `with_env`, `with_pipe`, `with_template`.
//!
//! Owns turning such a keyword's value (as written, possibly with templates inside) into the task's `loop:`
//! expression `{{ __ef_with('<lookup>', <value>, '<module>') }}`, evaluated per host at run time like any loop;
//! the lookup itself is `template::lookup_plugins`. The value is written back as a Jinja literal: plain
//! strings quoted, `{{ expr }}` strings as `(expr)`, text around expressions joined with `~`. It must not
//! evaluate anything.

use serde_json::Value;

use crate::template::{single_expression, Templar, WITH_LOOP_FN};

/// The lookups a `with_<name>:` keyword may name here.
const SUPPORTED: &[&str] = &[
    "sequence",
    "nested",
    "together",
    "subelements",
    "fileglob",
    "lines",
    "first_found",
    "file",
    "env",
    "pipe",
    "template",
];

/// The loop expression for `with_<name>: value` in a task whose module is `module`.
pub(super) fn with_lookup(
    name: &str,
    value: &Value,
    module: Option<&str>,
) -> Result<Value, String> {
    if !SUPPORTED.contains(&name) {
        return Err(format!(
            "`with_{name}` is not supported; use `loop:` (with_items, with_list, with_dict, with_indexed_items \
             and with_{} are supported)",
            SUPPORTED.join(", with_")
        ));
    }
    let lit = literal(value).map_err(|e| format!("with_{name}: {e}"))?;
    Ok(Value::String(format!(
        "{{{{ {WITH_LOOP_FN}({}, {lit}, {}) }}}}",
        quote(name),
        quote(module.unwrap_or(""))
    )))
}

/// A Jinja string literal (task-argument expressions keep backslashes verbatim, so only quotes need care).
fn quote(s: &str) -> String {
    if !s.contains('\'') {
        format!("'{s}'")
    } else if !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!(
            "({})",
            s.split('\'')
                .map(|p| format!("'{p}'"))
                .collect::<Vec<_>>()
                .join(" ~ \"'\" ~ ")
        )
    }
}

/// A value as a Jinja expression.
fn literal(v: &Value) -> Result<String, String> {
    Ok(match v {
        Value::Null => "none".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s)?,
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(literal)
                .collect::<Result<Vec<_>, _>>()?
                .join(", ")
        ),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, x)| Ok(format!("{}: {}", quote(k), literal(x)?)))
                .collect::<Result<Vec<_>, String>>()?
                .join(", ")
        ),
    })
}

fn string(s: &str) -> Result<String, String> {
    if !Templar::is_template(s) {
        return Ok(quote(s));
    }
    if let Some(e) = single_expression(s) {
        return Ok(format!("({e})"));
    }
    if s.contains("{%") || s.contains("{#") {
        return Err(
            "a value with `{% %}` or `{# #}` cannot be looped over here; use `loop:` with query()"
                .into(),
        );
    }
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("{{") {
        if i > 0 {
            parts.push(quote(&rest[..i]));
        }
        let after = &rest[i + 2..];
        let j = after.find("}}").ok_or("an unclosed `{{` in the value")?;
        parts.push(format!("({})", after[..j].trim()));
        rest = &after[j + 2..];
    }
    if !rest.is_empty() {
        parts.push(quote(rest));
    }
    Ok(format!("({})", parts.join(" ~ ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_become_jinja_literals() {
        assert_eq!(
            with_lookup("sequence", &json!("start=1 end={{ n }}"), Some("copy")).unwrap(),
            json!("{{ __ef_with('sequence', ('start=1 end=' ~ (n)), 'copy') }}")
        );
        assert_eq!(
            literal(&json!(["{{ users }}", "groups", {"skip_missing": true}, null, 1])).unwrap(),
            "[(users), 'groups', {'skip_missing': true}, none, 1]"
        );
        assert_eq!(quote("it's"), "\"it's\"");
        assert!(with_lookup("random_choice", &json!([1]), None)
            .unwrap_err()
            .contains("with_sequence"));
        assert!(literal(&json!("{% if x %}a{% endif %}")).is_err());
    }
}
