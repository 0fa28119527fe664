//! YAML (and JSON) inventories, with the structure Ansible's `yaml` inventory plugin accepts.
//!
//! Owns the `group: {hosts:, children:, vars:}` tree (any group at top level, `all:` included), the shorthand
//! `hosts: name` for one host, falsy host entries meaning "no variables", and `host:port` / range keys. Where
//! Ansible only warns and silently drops part of the inventory (a group that is not a mapping, an unknown key
//! such as `host:`), this is an error with the position: the operator would otherwise lose hosts. It must not
//! read files or apply group_vars/host_vars.

use std::path::Path;

use super::data::Data;
use super::ranges;
use crate::diag::Diagnostic;
use crate::yaml::{Node, NodeValue};

const SECTIONS: [&str; 3] = ["vars", "children", "hosts"];

/// Parse a YAML inventory whose root is the mapping `root` (from `text`, read from `path`) into `data`.
pub fn parse(data: &mut Data, root: &Node, text: &str, path: &Path) -> Result<(), Diagnostic> {
    let Some(entries) = root.as_map() else {
        return Err(Diagnostic::at(
            path,
            root.line,
            root.col,
            format!(
                "a YAML inventory must be a mapping of group names (such as `all:`), found {}",
                root.type_name()
            ),
        )
        .with_source(text));
    };
    let p = Parser { path, text };
    if let Some(plugin) = root.get("plugin").filter(|v| truthy(v)) {
        return Err(p.at(
            plugin,
            "this is an inventory plugin configuration (`plugin:`), not an inventory; edgefleet reads only YAML and INI inventories".into(),
        ));
    }
    for (name, body) in entries {
        p.group(data, name, body)?;
    }
    Ok(())
}

/// Python truthiness of a YAML value.
fn truthy(n: &Node) -> bool {
    match &n.value {
        NodeValue::Null => false,
        NodeValue::Bool(b) => *b,
        NodeValue::Int(i) => *i != 0,
        NodeValue::UInt(u) => *u != 0,
        NodeValue::Float(f) => *f != 0.0,
        NodeValue::Str(s) => !s.is_empty(),
        NodeValue::Seq(s) => !s.is_empty(),
        NodeValue::Map(m) => !m.is_empty(),
    }
}

struct Parser<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Parser<'_> {
    fn at(&self, n: &Node, msg: String) -> Diagnostic {
        Diagnostic::at(self.path, n.line, n.col, msg).with_source(self.text)
    }

    fn group(&self, data: &mut Data, name: &Node, body: &Node) -> Result<usize, Diagnostic> {
        let gname = name.as_str().unwrap_or_default();
        if !matches!(body.value, NodeValue::Map(_) | NodeValue::Null) {
            return Err(self.at(
                body,
                format!(
                    "group '{gname}' must be a mapping with `hosts:`, `children:` and/or `vars:` (or empty), found {}",
                    body.type_name()
                ),
            ));
        }
        let g = data.add_group(gname).map_err(|e| self.at(name, e))?;
        let Some(entries) = body.as_map() else {
            return Ok(g);
        };
        for (key, value) in entries {
            let k = key.as_str().unwrap_or_default();
            if !SECTIONS.contains(&k) {
                let hint = match k {
                    "host" => " (did you mean `hosts:`?)",
                    "child" | "groups" => " (did you mean `children:`?)",
                    "var" | "variables" => " (did you mean `vars:`?)",
                    _ => "",
                };
                return Err(self.at(
                    key,
                    format!(
                        "unexpected key '{k}' in group '{gname}': only `hosts`, `children` and `vars` are valid{hint}"
                    ),
                ));
            }
            // A plain string is shorthand for a one-entry mapping (`hosts: edge-01`).
            let shorthand;
            let section: &Node = match &value.value {
                NodeValue::Str(s) => {
                    shorthand = Node {
                        line: value.line,
                        col: value.col,
                        value: NodeValue::Map(vec![(
                            Node {
                                line: value.line,
                                col: value.col,
                                value: NodeValue::Str(s.clone()),
                            },
                            Node {
                                line: value.line,
                                col: value.col,
                                value: NodeValue::Null,
                            },
                        )]),
                    };
                    &shorthand
                }
                NodeValue::Map(_) | NodeValue::Null => value,
                _ => {
                    let example = match k {
                        "hosts" => "`hosts:` then one `name:` per line",
                        "children" => "`children:` then one `group:` per line",
                        _ => "`vars:` then one `name: value` per line",
                    };
                    return Err(self.at(
                        value,
                        format!(
                            "invalid `{k}` entry for group '{gname}': it must be a mapping, found {} (write {example})",
                            value.type_name()
                        ),
                    ));
                }
            };
            let Some(items) = section.as_map() else {
                continue;
            };
            match k {
                "vars" => {
                    for (var, val) in items {
                        data.set_group_var(g, var.as_str().unwrap_or_default(), val.to_json())
                            .map_err(|e| self.at(val, e))?;
                    }
                }
                "children" => {
                    for (sub, subbody) in items {
                        let sg = self.group(data, sub, subbody)?;
                        data.add_child_group(g, sg).map_err(|e| self.at(sub, e))?;
                    }
                }
                _ => {
                    for (pattern, hvars) in items {
                        self.hosts(data, g, gname, pattern, hvars)?;
                    }
                }
            }
        }
        Ok(g)
    }

    fn hosts(
        &self,
        data: &mut Data,
        g: usize,
        gname: &str,
        pattern: &Node,
        hvars: &Node,
    ) -> Result<(), Diagnostic> {
        let pat = pattern.as_str().unwrap_or_default();
        let (names, port) = ranges::expand_hostpattern(pat).map_err(|e| self.at(pattern, e))?;
        let vars = if truthy(hvars) {
            match hvars.as_map() {
                Some(m) => m,
                None => {
                    return Err(self.at(
                        hvars,
                        format!(
                            "host '{pat}' in group '{gname}': host variables must be a mapping of `name: value`, found {}",
                            hvars.type_name()
                        ),
                    ))
                }
            }
        } else {
            &[]
        };
        for name in names {
            let h = data
                .add_host(&name, Some(g), port)
                .map_err(|e| self.at(pattern, e))?;
            for (k, v) in vars {
                data.set_host_var(h, k.as_str().unwrap_or_default(), v.to_json());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::data::{ALL, UNGROUPED};
    use serde_json::json;

    fn load(text: &str) -> Result<Data, Diagnostic> {
        let path = Path::new("inv.yml");
        let root = crate::yaml::parse_str(text, path)?;
        let mut d = Data::new();
        parse(&mut d, &root, text, path)?;
        d.reconcile().map_err(Diagnostic::plain)?;
        Ok(d)
    }

    #[test]
    fn structure_and_shorthands() {
        let d = load(concat!(
            "all:\n  hosts:\n    lonely:\n  vars:\n    x: 1\n  children:\n    prod:\n      children:\n",
            "        web:\n          hosts: w1\n    db:\n      hosts:\n        'db[1:2]:2222':\n          role: db\n",
            "        db3: 0\nother:\n"
        ))
        .unwrap();
        let names: Vec<&str> = d.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["all", "ungrouped", "prod", "web", "db", "other"]);
        assert_eq!(d.groups[ALL].children, vec![UNGROUPED, 2, 4, 5]);
        assert_eq!(d.groups[UNGROUPED].hosts, vec![d.host_idx["lonely"]]);
        let db2 = &d.hosts[d.host_idx["db2"]];
        assert_eq!(
            Value::Object(db2.vars.clone()),
            json!({"ansible_port": 2222, "role": "db"})
        );
        assert!(d.hosts[d.host_idx["db3"]].vars.is_empty());
        assert_eq!(d.groups[ALL].vars["x"], 1);
    }

    use serde_json::Value;

    #[test]
    fn errors_have_positions() {
        let cases = [
            ("web:\n  host:\n    a:\n", 2, 3, "did you mean `hosts:`"),
            ("web:\n  hosts: [a, b]\n", 2, 10, "must be a mapping"),
            ("web: [a]\n", 1, 6, "group 'web' must be a mapping"),
            (
                "web:\n  hosts:\n    a: 5\n",
                3,
                8,
                "host variables must be a mapping",
            ),
            (
                "a:\n  children:\n    b:\n      children:\n        a:\n",
                3,
                5,
                "recursive dependency loop",
            ),
            (
                "web:\n  vars:\n    ansible_group_priority: high\n",
                3,
                29,
                "must be an integer",
            ),
            ("web:\n  hosts:\n    'x[1:2:3:4]':\n", 3, 5, "begin:end"),
            ("plugin: aws_ec2\n", 1, 9, "plugin"),
            ("- a\n", 1, 1, "must be a mapping of group names"),
        ];
        for (text, line, col, want) in cases {
            let e = load(text).unwrap_err();
            assert_eq!((e.line, e.col), (line, col), "{text}: {e}");
            assert!(e.message.contains(want), "{text}: {e}");
        }
    }
}
