//! The inventory graph while sources are parsed: groups, hosts, membership, inventory-file variables.
//!
//! Owns the rules Ansible's `InventoryData`, `Group` and `Host` enforce while sources are added: implicit `all`
//! and `ungrouped`, first-definition order, no group may be its own ancestor, `ansible_group_priority` is a
//! property and not a variable, and the final reconciliation (orphan groups under `all`, hosts without a group
//! in `ungrouped`). It must not read files or merge group_vars/host_vars: parsers feed it, `mod.rs` reads it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use serde_json::Value;

use crate::vars::Vars;

/// Index of the implicit `all` group.
pub const ALL: usize = 0;
/// Index of the implicit `ungrouped` group.
pub const UNGROUPED: usize = 1;

/// One group.
#[derive(Debug, Clone)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Variables set in inventory files (not group_vars/).
    pub vars: Vars,
    /// Child groups, in the order they were added.
    pub children: Vec<usize>,
    /// Parent groups, in the order they were added.
    pub parents: Vec<usize>,
    /// Hosts that are direct members, in the order they were added.
    pub hosts: Vec<usize>,
    /// `ansible_group_priority` (default 1).
    pub priority: i64,
}

/// One host.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its inventory name.
    pub name: String,
    /// Variables set in inventory files (not host_vars/).
    pub vars: Vars,
    /// Groups it is a direct member of.
    pub groups: Vec<usize>,
    /// The inventory file it was first defined in (Ansible's `inventory_file`); none for host lists.
    pub source: Option<PathBuf>,
}

/// Groups and hosts, indexed by name, in first-definition order.
#[derive(Debug, Clone)]
pub struct Data {
    /// Groups; `ALL` and `UNGROUPED` first.
    pub groups: Vec<Group>,
    /// Name to index.
    pub group_idx: HashMap<String, usize>,
    /// Hosts in first-definition order.
    pub hosts: Vec<Host>,
    /// Name to index.
    pub host_idx: HashMap<String, usize>,
    /// The file being parsed: new hosts record it as their source.
    pub current_source: Option<PathBuf>,
}

impl Default for Data {
    fn default() -> Self {
        Self::new()
    }
}

impl Data {
    /// An inventory with only `all` and its child `ungrouped`.
    pub fn new() -> Self {
        let mut d = Data {
            groups: Vec::new(),
            group_idx: HashMap::new(),
            hosts: Vec::new(),
            host_idx: HashMap::new(),
            current_source: None,
        };
        d.add_group("all").ok();
        d.add_group("ungrouped").ok();
        d.add_child_group(ALL, UNGROUPED).ok();
        d
    }

    /// Add a group if it is new; its index either way.
    pub fn add_group(&mut self, name: &str) -> Result<usize, String> {
        if name.is_empty() {
            return Err("invalid empty group name".into());
        }
        if let Some(&i) = self.group_idx.get(name) {
            return Ok(i);
        }
        let i = self.groups.len();
        self.groups.push(Group {
            name: name.to_string(),
            vars: Vars::new(),
            children: Vec::new(),
            parents: Vec::new(),
            hosts: Vec::new(),
            priority: 1,
        });
        self.group_idx.insert(name.to_string(), i);
        Ok(i)
    }

    /// Add a host if it is new (with `ansible_port` from a `host:port` entry), and make it a member of `group`.
    ///
    /// As in Ansible, the port of an entry only applies when the host is first defined.
    pub fn add_host(
        &mut self,
        name: &str,
        group: Option<usize>,
        port: Option<u64>,
    ) -> Result<usize, String> {
        if name.is_empty() {
            return Err("invalid empty host name".into());
        }
        let h = match self.host_idx.get(name) {
            Some(&h) => h,
            None => {
                let h = self.hosts.len();
                let mut vars = Vars::new();
                if let Some(p) = port.filter(|p| *p != 0) {
                    vars.insert("ansible_port".into(), Value::from(p));
                }
                self.hosts.push(Host {
                    name: name.to_string(),
                    vars,
                    groups: Vec::new(),
                    source: self.current_source.clone(),
                });
                self.host_idx.insert(name.to_string(), h);
                h
            }
        };
        if let Some(g) = group {
            self.add_host_to_group(g, h);
        }
        Ok(h)
    }

    /// Make host `h` a direct member of group `g` (no-op when it already is).
    pub fn add_host_to_group(&mut self, g: usize, h: usize) {
        if !self.hosts[h].groups.contains(&g) {
            self.hosts[h].groups.push(g);
            self.groups[g].hosts.push(h);
        }
    }

    /// Every ancestor of group `g` (not `g` itself).
    pub fn ancestors(&self, g: usize) -> HashSet<usize> {
        let mut seen = HashSet::new();
        let mut stack: Vec<usize> = self.groups[g].parents.clone();
        while let Some(p) = stack.pop() {
            if seen.insert(p) {
                stack.extend(self.groups[p].parents.iter().copied());
            }
        }
        seen
    }

    /// Make `child` a child group of `parent`; refuses edges that would make a group its own ancestor.
    pub fn add_child_group(&mut self, parent: usize, child: usize) -> Result<(), String> {
        if parent == child {
            return Err(format!(
                "group '{}' cannot be a child of itself",
                self.groups[parent].name
            ));
        }
        if self.groups[parent].children.contains(&child) {
            return Ok(());
        }
        if child == ALL || self.ancestors(parent).contains(&child) {
            return Err(format!(
                "adding group '{}' as a child of '{}' creates a recursive dependency loop (a group cannot be its own ancestor)",
                self.groups[child].name, self.groups[parent].name
            ));
        }
        self.groups[parent].children.push(child);
        if !self.groups[child].parents.contains(&parent) {
            self.groups[child].parents.push(parent);
        }
        Ok(())
    }

    /// Set an inventory-file variable on a group (`ansible_group_priority` sets the priority instead).
    pub fn set_group_var(&mut self, g: usize, key: &str, value: Value) -> Result<(), String> {
        if key == "ansible_group_priority" {
            let p = python_int(&value).ok_or_else(|| {
                format!(
                    "ansible_group_priority of group '{}' must be an integer, got {}",
                    self.groups[g].name,
                    crate::pycompat::repr_value(&value)
                )
            })?;
            self.groups[g].priority = p;
            return Ok(());
        }
        self.groups[g].vars.insert(key.to_string(), value);
        Ok(())
    }

    /// Set an inventory-file variable on a host.
    pub fn set_host_var(&mut self, h: usize, key: &str, value: Value) {
        self.hosts[h].vars.insert(key.to_string(), value);
    }

    /// Ansible's `reconcile_inventory`: groups without a parent go under `all` (in definition order); a host in
    /// `ungrouped` that also has another group leaves `ungrouped`; a host with no group (or only `all`) joins it.
    pub fn reconcile(&mut self) -> Result<(), String> {
        for g in 0..self.groups.len() {
            if g != ALL && self.groups[g].parents.is_empty() {
                self.add_child_group(ALL, g)?;
            }
        }
        for h in 0..self.hosts.len() {
            let direct = self.hosts[h].groups.clone();
            let mut all_groups: HashSet<usize> = HashSet::new();
            for &g in &direct {
                all_groups.insert(g);
                all_groups.extend(self.ancestors(g));
            }
            if all_groups.contains(&UNGROUPED) {
                if all_groups.iter().any(|&g| g != ALL && g != UNGROUPED) {
                    self.hosts[h].groups.retain(|&g| g != UNGROUPED);
                    self.groups[UNGROUPED].hosts.retain(|&x| x != h);
                }
            } else if all_groups.is_empty() || (all_groups.len() == 1 && all_groups.contains(&ALL))
            {
                self.add_host_to_group(UNGROUPED, h);
            }
        }
        Ok(())
    }

    /// Depth of every group: the longest path from `all` (Ansible sorts group variables by it).
    pub fn depths(&self) -> Vec<u32> {
        fn depth(d: &Data, g: usize, memo: &mut Vec<Option<u32>>) -> u32 {
            if let Some(v) = memo[g] {
                return v;
            }
            // The graph is acyclic (add_child_group refuses cycles), so recursion terminates; an explicit
            // marker keeps a malformed graph from recursing forever.
            memo[g] = Some(0);
            let v = d.groups[g]
                .parents
                .iter()
                .map(|&p| depth(d, p, memo) + 1)
                .max()
                .unwrap_or(0);
            memo[g] = Some(v);
            v
        }
        let mut memo = vec![None; self.groups.len()];
        (0..self.groups.len())
            .map(|g| depth(self, g, &mut memo))
            .collect()
    }

    /// The groups in `g`'s subtree in Ansible's walk order: `g`, its children, then each further level.
    pub fn descendants_walk(&self, g: usize) -> Vec<usize> {
        let mut ordered = vec![g];
        ordered.extend(self.groups[g].children.iter().copied());
        let mut seen: HashSet<usize> = HashSet::new();
        let mut level: Vec<usize> = ordered.clone();
        while !level.is_empty() {
            seen.extend(level.iter().copied());
            let mut next: Vec<usize> = Vec::new();
            let mut in_next: HashSet<usize> = HashSet::new();
            for &lg in &level {
                for &c in &self.groups[lg].children {
                    if !seen.contains(&c) && in_next.insert(c) {
                        ordered.push(c);
                        next.push(c);
                    }
                }
            }
            level = next;
        }
        ordered
    }

    /// Every host in `g` or below it, in Ansible's order (direct members first, then by level), no repeats.
    pub fn group_hosts(&self, g: usize) -> Vec<usize> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for kid in self.descendants_walk(g) {
            for &h in &self.groups[kid].hosts {
                if seen.insert(h) {
                    out.push(h);
                }
            }
        }
        out
    }
}

/// Python's `int(value)` for the value types a variable can hold; `None` where Python raises.
pub fn python_int(v: &Value) -> Option<i64> {
    match v {
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().and_then(|u| i64::try_from(u).ok()))
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 9.2e18)
                    .map(|f| f.trunc() as i64)
            }),
        Value::String(s) => super::ranges::py_int(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_refused() {
        let mut d = Data::new();
        let a = d.add_group("a").unwrap();
        let b = d.add_group("b").unwrap();
        let c = d.add_group("c").unwrap();
        d.add_child_group(a, b).unwrap();
        d.add_child_group(b, c).unwrap();
        let e = d.add_child_group(c, a).unwrap_err();
        assert!(e.contains("recursive dependency loop"), "{e}");
        assert!(d.add_child_group(a, a).is_err());
        assert!(d.add_child_group(a, ALL).is_err());
    }

    #[test]
    fn reconcile_and_depths() {
        let mut d = Data::new();
        let web = d.add_group("web").unwrap();
        let prod = d.add_group("prod").unwrap();
        d.add_child_group(prod, web).unwrap();
        let h1 = d.add_host("h1", Some(UNGROUPED), None).unwrap();
        d.add_host("h1", Some(web), None).unwrap();
        let h2 = d.add_host("h2", Some(ALL), Some(2222)).unwrap();
        d.reconcile().unwrap();
        // prod has no parent: it goes under all; web is under prod, not all.
        assert_eq!(d.groups[ALL].children, vec![UNGROUPED, prod]);
        assert_eq!(d.groups[UNGROUPED].hosts, vec![h2]);
        assert!(!d.hosts[h1].groups.contains(&UNGROUPED));
        assert_eq!(d.hosts[h2].vars["ansible_port"], 2222);
        let depth = d.depths();
        assert_eq!((depth[ALL], depth[prod], depth[web]), (0, 1, 2));
        assert_eq!(d.group_hosts(ALL), vec![h2, h1]);
    }

    #[test]
    fn priority_is_not_a_variable() {
        let mut d = Data::new();
        let g = d.add_group("g").unwrap();
        d.set_group_var(g, "ansible_group_priority", Value::from("10"))
            .unwrap();
        assert_eq!(d.groups[g].priority, 10);
        assert!(d.groups[g].vars.is_empty());
        assert!(d
            .set_group_var(g, "ansible_group_priority", Value::from("high"))
            .is_err());
        assert!(d
            .set_group_var(g, "ansible_group_priority", Value::Null)
            .is_err());
    }
}
