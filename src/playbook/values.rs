//! Reading one keyword's value from YAML: booleans (Ansible's spellings), scalars as text, string lists,
//! conditions, variable mappings, `serial` and `rollout` (free-form `key=value` strings are `kv`'s).
//!
//! Owns the shapes a value may take and the message when it takes another. Every reader is pure: a node in,
//! a value or a message out (the caller places the message at the keyword). It must not record diagnostics,
//! look at other keywords, or import any other loader file but the model.

use serde_json::{Map, Value};

use super::model::{Cond, Gate, Rollout, Serial, Soak};
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

/// `rollout:` as written: every key known (a misspelt one is refused, not ignored).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RolloutSpec {
    soak: Value,
    #[serde(default)]
    gate: Option<String>,
    #[serde(default)]
    wait_timeout: Option<u64>,
    #[serde(default)]
    dont_run: Vec<String>,
    #[serde(default)]
    fail_on_warnings: Vec<String>,
    #[serde(default)]
    waivers: std::collections::BTreeMap<String, String>,
}

/// The verification's wait when `rollout` does not say (`iotedge_verify`'s default).
pub const ROLLOUT_WAIT_TIMEOUT: u64 = 120;

/// `rollout:` — a mapping with `soak` (required) and optionally `gate: verify` and the verification's
/// `wait_timeout`, `dont_run`, `fail_on_warnings`, `waivers`; null means none.
pub(super) fn parse_rollout(n: &Node) -> Result<Option<Rollout>, String> {
    if n.is_null() {
        return Ok(None);
    }
    if n.as_map().is_none() {
        return Err(format!(
            "rollout must be a mapping like `{{soak: 30s, gate: verify}}`, found {}",
            n.type_name()
        ));
    }
    let spec: RolloutSpec = serde_json::from_value(n.to_json()).map_err(|e| {
        format!(
            "rollout: {e} (keys: soak, gate, wait_timeout, dont_run, fail_on_warnings, waivers)"
        )
    })?;
    let soak = match &spec.soak {
        Value::String(t) if crate::template::Templar::is_template(t) => Soak::Template(t.clone()),
        v => Soak::Fixed(parse_duration(v).map_err(|e| format!("rollout: soak: {e}"))?),
    };
    let gate = match spec.gate.as_deref() {
        None | Some("verify") => Gate::Verify,
        Some(other) => {
            return Err(format!(
                "rollout: gate: '{other}' is not a gate; the gate is `verify` (edgefleet's verification and module health)"
            ))
        }
    };
    Ok(Some(Rollout {
        soak,
        gate,
        wait_timeout: spec.wait_timeout.unwrap_or(ROLLOUT_WAIT_TIMEOUT),
        dont_run: spec.dont_run,
        fail_on_warnings: spec.fail_on_warnings,
        waivers: spec.waivers,
    }))
}

/// A duration: seconds as a number, or a string of number-unit parts (`500ms`, `30s`, `2m`, `1h`, `1m30s`).
pub fn parse_duration(v: &Value) -> Result<std::time::Duration, String> {
    let bad = |s: &str| {
        format!("'{s}' is not a duration: write seconds (30) or a number with a unit (500ms, 30s, 2m, 1h)")
    };
    let secs = |x: f64, s: &str| std::time::Duration::try_from_secs_f64(x).map_err(|_| bad(s));
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(-1.0);
            secs(x, &n.to_string())
        }
        Value::String(s) => {
            let t = s.trim();
            if let Ok(x) = t.parse::<f64>() {
                return secs(x, s);
            }
            let mut total = 0.0;
            let mut rest = t;
            while !rest.is_empty() {
                let num_end = rest
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .ok_or_else(|| bad(s))?;
                let x: f64 = rest[..num_end].parse().map_err(|_| bad(s))?;
                rest = &rest[num_end..];
                let unit_end = rest
                    .find(|c: char| c.is_ascii_digit() || c == '.')
                    .unwrap_or(rest.len());
                let mult = match rest[..unit_end].trim() {
                    "ms" => 0.001,
                    "s" => 1.0,
                    "m" => 60.0,
                    "h" => 3600.0,
                    _ => return Err(bad(s)),
                };
                total += x * mult;
                rest = &rest[unit_end..];
            }
            if t.is_empty() {
                return Err(bad(s));
            }
            secs(total, s)
        }
        other => Err(bad(&other.to_string())),
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
        assert_eq!(
            parse_serial(&node("[1, '10%', '100%']")).unwrap(),
            [
                Serial::Count(1),
                Serial::Percent(10.0),
                Serial::Percent(100.0)
            ]
        );
        assert_eq!(parse_serial(&node("'3'")).unwrap(), [Serial::Count(3)]);
        assert!(parse_serial(&node("'ten'")).unwrap_err().contains("'ten'"));
    }

    #[test]
    fn rollout_shapes() {
        let secs = |s| Soak::Fixed(std::time::Duration::from_secs(s));
        let r = parse_rollout(&node("{soak: 30s}")).unwrap().unwrap();
        assert_eq!(r.soak, secs(30));
        assert_eq!(
            (r.gate, r.wait_timeout),
            (Gate::Verify, ROLLOUT_WAIT_TIMEOUT)
        );
        let r = parse_rollout(&node(
            "{soak: 1m30s, gate: verify, wait_timeout: 5, dont_run: [a], fail_on_warnings: [all], waivers: {x: why}}",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(r.soak, secs(90));
        assert_eq!((r.wait_timeout, r.dont_run.len()), (5, 1));
        assert_eq!(r.waivers["x"], "why");
        assert_eq!(
            parse_rollout(&node("{soak: 250ms}")).unwrap().unwrap().soak,
            Soak::Fixed(std::time::Duration::from_millis(250))
        );
        assert_eq!(
            parse_rollout(&node("{soak: 2}")).unwrap().unwrap().soak,
            secs(2)
        );
        assert_eq!(
            parse_rollout(&node("{soak: \"{{ s | default('5m') }}\"}"))
                .unwrap()
                .unwrap()
                .soak,
            Soak::Template("{{ s | default('5m') }}".into())
        );
        assert!(parse_rollout(&node("null")).unwrap().is_none());
        let e = parse_rollout(&node("{soak: 30s, sok: 1}")).unwrap_err();
        assert!(e.contains("unknown field `sok`"), "{e}");
        let e = parse_rollout(&node("{gate: verify}")).unwrap_err();
        assert!(e.contains("missing field `soak`"), "{e}");
        let e = parse_rollout(&node("{soak: 30 seconds}")).unwrap_err();
        assert!(e.contains("'30 seconds' is not a duration"), "{e}");
        assert!(parse_rollout(&node("{soak: -1}")).is_err());
        assert!(parse_rollout(&node("{soak: 1s, gate: ping}"))
            .unwrap_err()
            .contains("'ping' is not a gate"));
        assert!(parse_rollout(&node("[1]")).unwrap_err().contains("mapping"));
    }
}
