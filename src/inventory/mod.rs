//! Inventories: hosts, groups, their variables, and host patterns (Ansible-compatible formats).
//!
//! TEMPORARY minimal implementation (YAML only, no group_vars) so the executor can be built; replaced by the
//! full implementation.

pub mod cli;

use std::path::PathBuf;

use indexmap::IndexMap;
use serde_json::Value;

use crate::diag::{Diagnostic, Diagnostics};
use crate::transport::ConnSpec;
use crate::vars::Vars;

/// Hosts selected by a pattern.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Hosts, inventory order.
    pub hosts: Vec<String>,
    /// Warnings (pattern matched nothing).
    pub warnings: Vec<String>,
}

/// An inventory.
#[derive(Debug, Default)]
pub struct Inventory {
    hosts: IndexMap<String, Vars>,
    groups: IndexMap<String, Vec<String>>,
}

impl Inventory {
    /// Load.
    pub fn load(sources: &[PathBuf], _playbook_dirs: &[PathBuf]) -> Result<Inventory, Diagnostics> {
        let mut inv = Inventory::default();
        for s in sources {
            let (n, _) = crate::yaml::parse_file(s).map_err(Diagnostics::from)?;
            inv.walk("all", &n.to_json(), &Vars::new());
        }
        Ok(inv)
    }
    fn walk(&mut self, group: &str, g: &Value, inherited: &Vars) {
        let Some(all) = g.get("all").or(Some(g)) else {
            return;
        };
        let mut vars = inherited.clone();
        if let Some(Value::Object(v)) = all.get("vars") {
            vars.extend(v.clone());
        }
        if let Some(Value::Object(h)) = all.get("hosts") {
            for (name, hv) in h {
                let mut v = vars.clone();
                if let Value::Object(o) = hv {
                    v.extend(o.clone());
                }
                self.hosts.entry(name.clone()).or_default().extend(v);
                self.groups
                    .entry(group.to_string())
                    .or_default()
                    .push(name.clone());
            }
        }
        if let Some(Value::Object(c)) = all.get("children") {
            for (cname, cg) in c {
                let sub = serde_json::json!({"all": cg});
                self.walk(cname, &sub, &vars);
            }
        }
    }
    /// -i or EDGEFLEET_INVENTORY.
    pub fn sources_from_env_or(args: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostic> {
        if !args.is_empty() {
            return Ok(args.to_vec());
        }
        match std::env::var("EDGEFLEET_INVENTORY") {
            Ok(v) if !v.is_empty() => Ok(v.split(',').map(PathBuf::from).collect()),
            _ => Err(Diagnostic::plain(
                "no inventory: give -i INVENTORY or set EDGEFLEET_INVENTORY",
            )),
        }
    }
    /// Host names.
    pub fn host_names(&self) -> Vec<String> {
        self.hosts.keys().cloned().collect()
    }
    /// Select.
    pub fn select(&self, pattern: &str) -> Result<Selection, Diagnostic> {
        let mut hosts = Vec::new();
        for p in pattern.split([',', ':']) {
            let p = p.trim();
            if p == "all" || p == "*" {
                hosts = self.host_names();
            } else if let Some(g) = self.groups.get(p) {
                hosts.extend(g.iter().cloned());
            } else if self.hosts.contains_key(p) {
                hosts.push(p.to_string());
            }
        }
        Ok(Selection {
            hosts,
            warnings: vec![],
        })
    }
    /// Host vars.
    pub fn host_vars(&self, host: &str) -> Vars {
        self.hosts.get(host).cloned().unwrap_or_default()
    }
    /// Group names.
    pub fn group_names(&self, host: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, h)| h.iter().any(|x| x == host))
            .map(|(g, _)| g.clone())
            .collect()
    }
    /// Groups map.
    pub fn groups_map(&self) -> IndexMap<String, Vec<String>> {
        self.groups.clone()
    }
}

/// Connection spec.
pub fn conn_spec(host: &str, vars: &Vars) -> Result<ConnSpec, Diagnostic> {
    let s = |k: &str| {
        vars.get(k)
            .and_then(|v| v.as_str().map(String::from).or_else(|| Some(v.to_string())))
    };
    Ok(ConnSpec {
        name: host.to_string(),
        connection: s("ansible_connection").unwrap_or_else(|| "ssh".into()),
        address: s("ansible_host").unwrap_or_else(|| host.to_string()),
        port: vars
            .get("ansible_port")
            .and_then(|v| v.as_u64())
            .map(|p| p as u16),
        user: s("ansible_user"),
        private_key_file: s("ansible_ssh_private_key_file").map(PathBuf::from),
        ..Default::default()
    })
}
