//! INI inventories, parsed exactly as Ansible's `ini` inventory plugin parses them.
//!
//! Owns `[group]`, `[group:vars]`, `[group:children]` sections, host lines (`name[:port] key=value ...` split
//! with Python's shlex rules), forward references to groups declared later in the file, and the value typing
//! (every value, on host lines and in `:vars` sections alike, goes through `ast.literal_eval`, falling back to
//! the text: `port=22` is 22, `x=yes` is "yes", `y=True` is true, `z=0755` is "0755"). It must not read files
//! or apply group_vars/host_vars.

use std::path::Path;
use std::sync::OnceLock;

use indexmap::IndexMap;
use regex::Regex;
use serde_json::Value;

use super::data::{Data, UNGROUPED};
use super::py::{self, IniValue};
use super::ranges;
use crate::diag::Diagnostic;

struct Pending {
    line: u64,
    is_vars: bool,
    parents: Vec<String>,
}

fn section_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$").unwrap_or_else(|e| panic!("{e}"))
    })
}

fn groupname_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"^([^:\]\s]+)\s*(?:#.*)?$").unwrap_or_else(|e| panic!("{e}")))
}

/// Python's `str.splitlines()` for the line breaks that occur in text files.
fn split_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\n' => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                out.push(&text[start..i]);
                if b.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < b.len() {
        out.push(&text[start..]);
    }
    out
}

/// Parse INI inventory `text` (read from `path`) into `data`.
pub fn parse(data: &mut Data, text: &str, path: &Path) -> Result<(), Diagnostic> {
    let err = |line: u64, msg: String| Diagnostic::at(path, line, 1, msg).with_source(text);
    let mut pending: IndexMap<String, Pending> = IndexMap::new();
    let mut group = "ungrouped".to_string();
    let mut state = "hosts".to_string();
    for (i, raw) in split_lines(text).into_iter().enumerate() {
        let lineno = i as u64 + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(m) = section_re().captures(line) {
            group = m[1].to_string();
            state = m.get(2).map_or("hosts", |s| s.as_str()).to_string();
            if !matches!(state.as_str(), "hosts" | "children" | "vars") {
                return Err(err(
                    lineno,
                    format!(
                        "Section [{group}:{state}] has unknown type: {state} (use [{group}], [{group}:vars] or [{group}:children])"
                    ),
                ));
            }
            if !data.group_idx.contains_key(&group) {
                if state == "vars" && !pending.contains_key(&group) {
                    pending.insert(
                        group.clone(),
                        Pending {
                            line: lineno,
                            is_vars: true,
                            parents: Vec::new(),
                        },
                    );
                }
                data.add_group(&group).map_err(|e| err(lineno, e))?;
            }
            if state != "vars" {
                if let Some(p) = pending.get(&group) {
                    if p.is_vars {
                        pending.shift_remove(&group);
                    } else {
                        add_pending_children(data, &group, &mut pending)
                            .map_err(|e| err(lineno, e))?;
                    }
                }
            }
            continue;
        } else if line.starts_with('[') && line.ends_with(']') {
            return Err(err(
                lineno,
                format!(
                    "Invalid section entry: '{line}'. Please make sure that there are no spaces in the section entry, and that there are no other invalid characters"
                ),
            ));
        }
        match state.as_str() {
            "hosts" => host_line(data, line, &group, lineno, path, text)?,
            "vars" => {
                let Some((k, v)) = line.split_once('=') else {
                    return Err(err(lineno, format!("Expected key=value, got: {line}")));
                };
                let (k, v) = (k.trim(), v.trim());
                let value = typed(v).map_err(|e| err(lineno, format!("variable '{k}': {e}")))?;
                let g = data.group_idx[&group];
                data.set_group_var(g, k, value)
                    .map_err(|e| err(lineno, e))?;
            }
            _ => {
                let Some(m) = groupname_re().captures(line) else {
                    return Err(err(lineno, format!("Expected group name, got: {line}")));
                };
                let child = m[1].to_string();
                if let Some(&c) = data.group_idx.get(&child) {
                    let g = data.group_idx[&group];
                    data.add_child_group(g, c).map_err(|e| err(lineno, e))?;
                } else if let Some(p) = pending.get_mut(&child) {
                    p.parents.push(group.clone());
                } else {
                    pending.insert(
                        child,
                        Pending {
                            line: lineno,
                            is_vars: false,
                            parents: vec![group.clone()],
                        },
                    );
                }
            }
        }
    }
    if let Some((name, p)) = pending.first() {
        let msg = if p.is_vars {
            format!("Section [{name}:vars] not valid for undefined group '{name}' (declare it with [{name}] or [{name}:children])")
        } else {
            let parent = p.parents.last().map(String::as_str).unwrap_or("?");
            format!("Section [{parent}:children] includes undefined group '{name}' (declare it with [{name}] or [{name}:children])")
        };
        return Err(err(p.line, msg));
    }
    Ok(())
}

fn add_pending_children(
    data: &mut Data,
    group: &str,
    pending: &mut IndexMap<String, Pending>,
) -> Result<(), String> {
    let parents = pending
        .get(group)
        .map(|p| p.parents.clone())
        .unwrap_or_default();
    for parent in parents {
        let (Some(&pg), Some(&cg)) = (data.group_idx.get(&parent), data.group_idx.get(group))
        else {
            continue;
        };
        data.add_child_group(pg, cg)?;
        if pending.get(&parent).is_some_and(|p| !p.is_vars) {
            add_pending_children(data, &parent, pending)?;
        }
    }
    pending.shift_remove(group);
    Ok(())
}

/// `_parse_value`: literal_eval with the text as fallback.
fn typed(v: &str) -> Result<Value, String> {
    match py::ini_value(v) {
        IniValue::Value(v) => Ok(v),
        IniValue::Error(e) => Err(format!("cannot evaluate {v}: {e}")),
    }
}

fn host_line(
    data: &mut Data,
    line: &str,
    group: &str,
    lineno: u64,
    path: &Path,
    text: &str,
) -> Result<(), Diagnostic> {
    let err = |col: u64, msg: String| Diagnostic::at(path, lineno, col, msg).with_source(text);
    let tokens = py::shlex_split(line, true)
        .map_err(|e| err(1, format!("Error parsing host definition '{line}': {e}")))?;
    let Some(pattern) = tokens.first() else {
        return Err(err(1, format!("Expected a host name, got: {line}")));
    };
    let (hosts, port) = ranges::expand_hostpattern(pattern).map_err(|e| err(1, e))?;
    if pattern.trim().ends_with(':') && port.is_none() {
        return Err(err(
            1,
            format!("Invalid host pattern '{pattern}' supplied, ending in ':' is not allowed, this character is reserved to provide a port."),
        ));
    }
    if hosts.iter().any(|h| h.trim() == "---") {
        return Err(err(
            1,
            format!("Invalid host pattern '{pattern}' supplied, '---' is normally a sign this is a YAML file."),
        ));
    }
    let mut vars: Vec<(String, Value)> = Vec::new();
    for t in &tokens[1..] {
        let col = line.find(t.as_str()).map_or(1, |c| c as u64 + 1);
        let Some((k, v)) = t.split_once('=') else {
            return Err(err(
                col,
                format!("Expected key=value host variable assignment, got: {t}"),
            ));
        };
        let value = typed(v).map_err(|e| err(col, format!("variable '{k}': {e}")))?;
        match vars.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = value,
            None => vars.push((k.to_string(), value)),
        }
    }
    let g = data.group_idx.get(group).copied().unwrap_or(UNGROUPED);
    for h in hosts {
        let hi = data.add_host(&h, Some(g), port).map_err(|e| err(1, e))?;
        for (k, v) in &vars {
            data.set_host_var(hi, k, v.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::data::ALL;
    use serde_json::json;

    fn load(text: &str) -> Result<Data, Diagnostic> {
        let mut d = Data::new();
        parse(&mut d, text, Path::new("hosts.ini"))?;
        d.reconcile().map_err(Diagnostic::plain)?;
        Ok(d)
    }

    fn hvars(d: &Data, h: &str) -> Value {
        Value::Object(d.hosts[d.host_idx[h]].vars.clone())
    }

    #[test]
    fn host_line_typing() {
        let d = load("[web]\nh1 port=22 x=yes y=True z=0755 w='0755' f=1.5 s=\"hello world\" n=None l=[1,'a'] l2=[1,2] c=a#b\n").unwrap();
        assert_eq!(
            hvars(&d, "h1"),
            json!({"port": 22, "x": "yes", "y": true, "z": "0755", "w": "0755", "f": 1.5,
                   "s": "hello world", "n": null, "l": "[1,a]", "l2": [1, 2], "c": "a"})
        );
    }

    #[test]
    fn vars_section_typing() {
        let d = load("[g]\nh\n[g:vars]\nhttp_port=8080 # comment\nflag = FALSE\nb=True\nq=\"quoted\"\nsp = spaced value  \nc=x # kept\n").unwrap();
        let g = &d.groups[d.group_idx["g"]];
        assert_eq!(
            Value::Object(g.vars.clone()),
            json!({"http_port": 8080, "flag": "FALSE", "b": true, "q": "quoted", "sp": "spaced value", "c": "x # kept"})
        );
    }

    #[test]
    fn sections_children_and_forward_references() {
        let d = load(
            "u1\n[prod:children]\nweb\n[web]\nw[1:2]:2222\n[web:vars]\nv=1\n[all:vars]\na=1\n",
        )
        .unwrap();
        let prod = d.group_idx["prod"];
        let web = d.group_idx["web"];
        assert_eq!(d.groups[prod].children, vec![web]);
        assert_eq!(d.groups[ALL].children, vec![UNGROUPED, prod]);
        assert_eq!(d.groups[UNGROUPED].hosts, vec![d.host_idx["u1"]]);
        assert_eq!(hvars(&d, "w2"), json!({"ansible_port": 2222}));
        assert_eq!(d.groups[ALL].vars["a"], 1);
    }

    #[test]
    fn errors_have_lines() {
        let cases = [
            ("[web:vars]\na=1\n", 1, "undefined group 'web'"),
            (
                "[p:children]\nmissing\n",
                2,
                "includes undefined group 'missing'",
            ),
            (
                "[web]\nh1 novalue\n",
                2,
                "Expected key=value host variable assignment",
            ),
            ("[web:foo]\n", 1, "unknown type"),
            ("[web server]\n", 1, "Invalid section entry"),
            ("[g]\nh:\n", 2, "ending in ':'"),
            ("[g]\nh x='open\n", 2, "No closing quotation"),
            ("[g]\nh[1:2:3:4]\n", 2, "begin:end"),
            ("[g:vars]\nnoequals\n[g]\n", 2, "Expected key=value"),
            (
                "[a:children]\nb\n[b:children]\na\n",
                4,
                "recursive dependency loop",
            ),
            ("---\n", 1, "YAML"),
        ];
        for (text, line, want) in cases {
            let e = load(text).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.message.contains(want), "{text}: {e}");
            assert!(
                e.to_string().starts_with(&format!("hosts.ini:{line}:")),
                "{e}"
            );
        }
    }
}
