//! Inventories: hosts, groups, their variables, and host patterns (Ansible-compatible formats).
//!
//! Owns loading YAML and INI inventories, inventory directories, `group_vars/` and `host_vars/` (next to the
//! inventory and next to the playbook), Ansible's variable precedence between groups and hosts, the output of
//! `edgefleet inventory --list/--host/--graph`, `--limit` / `hosts:` patterns and the `--shard` partition
//! (`shard.rs`). It must not connect to hosts or render templates.
//!
//! Compatibility target: `ansible-inventory` of ansible-core 2.19 (checked by `tests/it/inventory.rs` against
//! the real tool). Deliberate differences, all stricter or simpler:
//! * a missing inventory source, an unparsable file, a YAML group that is not a mapping or an unknown key in a
//!   group (`host:`) are errors (exit 4) where Ansible warns and carries on with part of the inventory;
//! * no implicit `localhost`, no dynamic inventory scripts or plugins, no TOML inventories;
//! * `*.age` files in group_vars/host_vars are decrypted (Ansible has inline vault instead);
//! * within one level of a group tree Ansible orders grand-children by memory address (a Python set); here
//!   they keep definition order, so `groups['all']` is deterministic.
//!
//! Precedence (lowest first), as Ansible 2.15+ computes it with `hash_behaviour=replace`: `all` vars from
//! inventory files < other groups' vars from inventory files (sorted by depth, `ansible_group_priority`,
//! name) < `group_vars/all` next to each inventory source < `group_vars/all` next to the playbook <
//! `group_vars/<group>` next to each source < next to the playbook < host vars from inventory files <
//! `host_vars/<host>` next to each source < next to the playbook.

mod conn;
mod data;
mod ini;
mod patterns;
mod py;
mod ranges;
pub mod shard;
mod varsfiles;
mod yamlinv;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use crate::diag::{Diagnostic, Diagnostics};
use crate::pycompat;
use crate::vars::{overlay, Vars};
use data::{Data, ALL};
use varsfiles::{Kind, VarsDir};

pub use conn::conn_spec;
pub use patterns::split_host_pattern;

/// The environment variable naming the default inventory (comma-separated paths).
pub const ENV_INVENTORY: &str = "EDGEFLEET_INVENTORY";

/// Variables Ansible computes itself and `ansible-inventory` never prints (`C.INTERNAL_STATIC_VARS`).
pub const INTERNAL_VARS: &[&str] = &[
    "ansible_async_path",
    "ansible_collection_name",
    "ansible_config_file",
    "ansible_dependent_role_names",
    "ansible_diff_mode",
    "ansible_facts",
    "ansible_forks",
    "ansible_inventory_sources",
    "ansible_limit",
    "ansible_play_batch",
    "ansible_play_hosts",
    "ansible_play_hosts_all",
    "ansible_play_role_names",
    "ansible_playbook_python",
    "ansible_role_name",
    "ansible_role_names",
    "ansible_run_tags",
    "ansible_skip_tags",
    "ansible_verbosity",
    "ansible_version",
    "inventory_dir",
    "inventory_file",
    "inventory_hostname",
    "inventory_hostname_short",
    "groups",
    "group_names",
    "hostvars",
    "playbook_dir",
    "play_hosts",
    "role_name",
    "role_names",
    "role_path",
    "role_uuid",
];

/// The hosts a pattern selected, in inventory order, and what to tell the operator about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Selected host names.
    pub hosts: Vec<String>,
    /// Warnings in Ansible's words (a sub-pattern that matched nothing, a deprecated subscript form).
    pub warnings: Vec<String>,
}

/// The variables found in one directory's `group_vars/` and `host_vars/`.
#[derive(Default)]
struct DirVars {
    groups: HashMap<usize, Vars>,
    hosts: HashMap<usize, Vars>,
}

/// A loaded inventory: groups, hosts and every host's merged variables (computed once, at load).
///
/// `Debug` shows only counts: variables may hold secrets.
pub struct Inventory {
    data: Data,
    group_hosts: Vec<Vec<usize>>,
    merged: Vec<std::sync::Arc<Vars>>,
    src_bases: Vec<PathBuf>,
    pb_bases: Vec<PathBuf>,
    dir_vars: HashMap<PathBuf, DirVars>,
    graph_playbook_vars: bool,
    warnings: Vec<String>,
}

impl std::fmt::Debug for Inventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inventory")
            .field("groups", &self.data.groups.len())
            .field("hosts", &self.data.hosts.len())
            .field("sources", &self.src_bases)
            .field("playbook_dirs", &self.pb_bases)
            .finish_non_exhaustive()
    }
}

/// Ansible's `IGNORED` for entries of an inventory directory.
fn ignored_entry(name: &str) -> bool {
    const EXTS: [&str; 13] = [
        ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg",
        ".retry", ".age",
    ];
    name.starts_with('.')
        || matches!(name, "host_vars" | "group_vars" | "vars_plugins")
        || EXTS.iter().any(|e| name.ends_with(e))
}

/// `os.path.splitext(name)[1]`.
fn extension(name: &str) -> &str {
    let trimmed = name.trim_start_matches('.');
    match trimmed.rfind('.') {
        Some(i) => &trimmed[i..],
        None => "",
    }
}

fn expand_tilde(p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    p.to_path_buf()
}

/// `p` with `.` and `name/..` removed lexically, as Ansible's `unfrackpath` does before looking at the disk.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) | Some(Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// An absolute, lexically normalised path (Ansible's `unfrackpath(follow=False)`).
fn absolute(p: &Path) -> PathBuf {
    normalize(&std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
}

fn canonical(p: &Path) -> PathBuf {
    let p = if p.as_os_str().is_empty() {
        Path::new(".")
    } else {
        p
    };
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Parse one inventory file, choosing the format as Ansible's plugin chain does (YAML first for `.yml`,
/// `.yaml`, `.json` and extension-less files, INI as the fallback and for everything else).
fn parse_file(data: &mut Data, path: &Path) -> Result<(), Diagnostic> {
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostic::file(path, format!("cannot read inventory file: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Diagnostic::file(path, "inventory file is not UTF-8 text"))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = extension(&name);
    match ext {
        ".toml" => Err(Diagnostic::file(
            path,
            "TOML inventories are not supported: convert it to YAML or INI",
        )),
        ".yml" | ".yaml" | ".json" | "" => match crate::yaml::parse_str(&text, path) {
            Ok(root) if root.is_null() => Ok(()),
            Ok(root) if root.as_map().is_some() => yamlinv::parse(data, &root, &text, path),
            Ok(root) => match ini::parse(data, &text, path) {
                Ok(()) => Ok(()),
                Err(ini_err) if ext.is_empty() => Err(ini_err),
                Err(_) => yamlinv::parse(data, &root, &text, path),
            },
            Err(yaml_err) => match ini::parse(data, &text, path) {
                Ok(()) => Ok(()),
                Err(ini_err) if ext.is_empty() => Err(ini_err),
                Err(_) => Err(yaml_err),
            },
        },
        _ => ini::parse(data, &text, path),
    }
}

/// Ansible's `host_list` source: `-i 'a,b:2222,'`.
fn parse_host_list(data: &mut Data, list: &str) -> Result<(), Diagnostic> {
    for h in list.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        let (host, port) = ranges::parse_address(h, false).unwrap_or((h.to_string(), None));
        if !data.host_idx.contains_key(&host) {
            data.add_host(&host, Some(data::UNGROUPED), port)
                .map_err(Diagnostic::plain)?;
        }
    }
    Ok(())
}

fn parse_source(data: &mut Data, src: &Path, top: bool, diags: &mut Diagnostics) {
    if src.is_dir() {
        let mut names: Vec<String> = match std::fs::read_dir(src) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect(),
            Err(e) => {
                diags.push(Diagnostic::file(
                    src,
                    format!("cannot list inventory directory: {e}"),
                ));
                return;
            }
        };
        names.sort();
        for n in names.into_iter().filter(|n| !ignored_entry(n)) {
            parse_source(data, &src.join(n), false, diags);
        }
    } else if src.is_file() {
        data.current_source = Some(absolute(src));
        if let Err(d) = parse_file(data, src) {
            diags.push(d);
        }
        data.current_source = None;
    } else if src.exists() {
        // Sockets, fifos and the like inside an inventory directory are not inventories.
        if top {
            diags.push(Diagnostic::file(
                src,
                "inventory source is neither a file nor a directory",
            ));
        }
    } else {
        let s = src.to_string_lossy();
        if top && s.contains(',') {
            if let Err(d) = parse_host_list(data, &s) {
                diags.push(d);
            }
        } else {
            diags.push(Diagnostic::file(
                src,
                "inventory not found (no such file or directory): check the -i path or EDGEFLEET_INVENTORY",
            ));
        }
    }
}

/// Whether a command needs the values in age-encrypted vars files (`*.age` under group_vars/host_vars).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// Decrypt them; a file that cannot be decrypted is an error (plays, `--list`, `--host`, `--graph --vars`).
    Required,
    /// Decrypt them if an identity can; otherwise leave them out with a warning naming the files (`ping`: a
    /// connection needs no secret unless the inventory keeps connection variables in encrypted files).
    IfAvailable,
    /// Leave them closed: the command shows structure, not values (`--graph`, `--list-hosts`, `--list-tasks`).
    NotNeeded,
}

fn load_dir_vars(
    base: &Path,
    data: &Data,
    secrets: Secrets,
    diags: &mut Diagnostics,
    warnings: &mut Vec<String>,
) -> DirVars {
    let mut out = DirVars::default();
    // Encrypted files left closed, with why: one warning per reason, naming the files.
    let mut closed: Vec<(PathBuf, String)> = Vec::new();
    let mut load = |files: Vec<PathBuf>| -> Option<Vars> {
        if files.is_empty() {
            return None;
        }
        let mut acc = Vars::new();
        for f in files {
            let encrypted = varsfiles::is_encrypted(&f);
            if encrypted && secrets == Secrets::NotNeeded {
                continue;
            }
            match varsfiles::load_file(&f) {
                Ok(Some(v)) => overlay(&mut acc, &v),
                Ok(None) => {}
                Err(d) if encrypted && secrets == Secrets::IfAvailable => {
                    // The same reason for every file reads as one warning: the file is named after it.
                    let reason = d
                        .message
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .replace(&format!(" {}", f.display()), "")
                        .replace(&format!(" {}", crate::diag::display_path(&f)), "");
                    closed.push((f, reason))
                }
                Err(d) => diags.push(d),
            }
        }
        Some(acc)
    };
    let gdir = VarsDir::open(base, Kind::Group);
    if gdir.exists() {
        for (g, group) in data.groups.iter().enumerate() {
            if let Some(v) = load(gdir.find(&group.name)) {
                out.groups.insert(g, v);
            }
        }
    }
    let hdir = VarsDir::open(base, Kind::Host);
    if hdir.exists() {
        for (h, host) in data.hosts.iter().enumerate() {
            if let Some(v) = load(hdir.find(&host.name)) {
                out.hosts.insert(h, v);
            }
        }
    }
    let mut reasons: Vec<&str> = Vec::new();
    for (_, r) in &closed {
        if !reasons.contains(&r.as_str()) {
            reasons.push(r);
        }
    }
    for r in reasons {
        let files: Vec<String> = closed
            .iter()
            .filter(|(_, x)| x == r)
            .map(|(f, _)| crate::diag::display_path(f))
            .collect();
        warnings.push(format!(
            "{} encrypted vars file{} not decrypted, so {} variables are not used by this command ({r}): {}",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            if files.len() == 1 { "its" } else { "their" },
            files.join(", ")
        ));
    }
    out
}

impl Inventory {
    /// Load inventory sources (files, directories, or Ansible-style `a,b,` host lists) and the group_vars /
    /// host_vars next to them and in `playbook_dirs`; every problem found is reported.
    pub fn load(sources: &[PathBuf], playbook_dirs: &[PathBuf]) -> Result<Inventory, Diagnostics> {
        Self::load_with(sources, playbook_dirs, Secrets::Required)
    }

    /// Like [`Inventory::load`], decrypting the age-encrypted vars files only as far as `secrets` says.
    pub fn load_with(
        sources: &[PathBuf],
        playbook_dirs: &[PathBuf],
        secrets: Secrets,
    ) -> Result<Inventory, Diagnostics> {
        let mut diags = Diagnostics::new();
        let mut data = Data::new();
        if sources.is_empty() {
            diags.push(Diagnostic::plain(
                "no inventory given: pass -i INVENTORY (a file or directory) or set EDGEFLEET_INVENTORY",
            ));
        }
        let sources: Vec<PathBuf> = sources
            .iter()
            .map(|s| {
                let s = expand_tilde(s);
                if s.to_string_lossy().contains(',') {
                    s
                } else {
                    normalize(&s)
                }
            })
            .collect();
        for src in &sources {
            parse_source(&mut data, src, true, &mut diags);
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        if let Err(e) = data.reconcile() {
            return Err(Diagnostic::plain(e).into());
        }
        let mut warnings = Vec::new();
        for g in &data.groups {
            if data.host_idx.contains_key(&g.name) {
                warnings.push(format!(
                    "Found both group and host with same name: {}",
                    g.name
                ));
            }
        }
        let src_bases: Vec<PathBuf> = sources
            .iter()
            .filter(|s| s.exists())
            .map(|s| {
                if s.is_dir() {
                    canonical(s)
                } else {
                    canonical(s.parent().unwrap_or(Path::new(".")))
                }
            })
            .collect();
        let pb_bases: Vec<PathBuf> = playbook_dirs.iter().map(|p| canonical(p)).collect();
        let mut dir_vars = HashMap::new();
        for base in src_bases.iter().chain(pb_bases.iter()) {
            if !dir_vars.contains_key(base) {
                let dv = load_dir_vars(base, &data, secrets, &mut diags, &mut warnings);
                dir_vars.insert(base.clone(), dv);
            }
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        let group_hosts = (0..data.groups.len())
            .map(|g| data.group_hosts(g))
            .collect();
        let mut inv = Inventory {
            data,
            group_hosts,
            merged: Vec::new(),
            src_bases,
            pb_bases,
            dir_vars,
            graph_playbook_vars: true,
            warnings,
        };
        inv.merged = inv
            .compute_merged()
            .into_iter()
            .map(std::sync::Arc::new)
            .collect();
        Ok(inv)
    }

    /// The inventory sources: `args` (`-i`, repeatable) or else `$EDGEFLEET_INVENTORY` (comma-separated).
    pub fn sources_from_env_or(args: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostic> {
        if !args.is_empty() {
            return Ok(args.to_vec());
        }
        let env = std::env::var(ENV_INVENTORY).unwrap_or_default();
        let list: Vec<PathBuf> = env
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        if list.is_empty() {
            return Err(Diagnostic::plain(
                "no inventory given: pass -i INVENTORY (a file or directory) or set EDGEFLEET_INVENTORY",
            ));
        }
        Ok(list)
    }

    /// Warnings found while loading (in Ansible's words), for the caller to print.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Print group_vars from the playbook directories in `--graph --vars` group lines? `ansible-inventory` only
    /// does when `--playbook-dir` was given (its implicit playbook directory, the current one, applies to hosts
    /// only).
    pub(crate) fn set_graph_playbook_vars(&mut self, on: bool) {
        self.graph_playbook_vars = on;
    }

    /// Every group of host `h` (direct and inherited), `all` included.
    fn host_groups(&self, h: usize) -> Vec<usize> {
        let mut set: HashSet<usize> = HashSet::new();
        for &g in &self.data.hosts[h].groups {
            set.insert(g);
            set.extend(self.data.ancestors(g));
        }
        let mut v: Vec<usize> = set.into_iter().collect();
        v.sort_unstable();
        v
    }

    fn compute_merged(&self) -> Vec<Vars> {
        let depths = self.data.depths();
        let empty = DirVars::default();
        let dv = |base: &PathBuf| self.dir_vars.get(base).unwrap_or(&empty);
        (0..self.data.hosts.len())
            .map(|h| {
                let mut groups: Vec<usize> = self
                    .host_groups(h)
                    .into_iter()
                    .filter(|&g| g != ALL)
                    .collect();
                groups.sort_by(|&a, &b| {
                    let (ga, gb) = (&self.data.groups[a], &self.data.groups[b]);
                    (depths[a], ga.priority, &ga.name).cmp(&(depths[b], gb.priority, &gb.name))
                });
                let mut v = self.data.groups[ALL].vars.clone();
                for &g in &groups {
                    overlay(&mut v, &self.data.groups[g].vars);
                }
                for base in self.src_bases.iter().chain(self.pb_bases.iter()) {
                    if let Some(x) = dv(base).groups.get(&ALL) {
                        overlay(&mut v, x);
                    }
                }
                for base in self.src_bases.iter().chain(self.pb_bases.iter()) {
                    let d = dv(base);
                    for g in &groups {
                        if let Some(x) = d.groups.get(g) {
                            overlay(&mut v, x);
                        }
                    }
                }
                overlay(&mut v, &self.data.hosts[h].vars);
                for base in self.src_bases.iter().chain(self.pb_bases.iter()) {
                    if let Some(x) = dv(base).hosts.get(&h) {
                        overlay(&mut v, x);
                    }
                }
                v
            })
            .collect()
    }

    /// All host names, in inventory order (the order `all` selects them).
    pub fn host_names(&self) -> Vec<String> {
        self.all_hosts()
            .iter()
            .map(|&h| self.data.hosts[h].name.clone())
            .collect()
    }

    /// The inventory file `host` was first defined in (the `inventory_file` magic variable; its directory is
    /// `inventory_dir`). `None` for unknown hosts and hosts from `a,b,` host lists.
    pub fn inventory_file(&self, host: &str) -> Option<&Path> {
        let &h = self.data.host_idx.get(host)?;
        self.data.hosts[h].source.as_deref()
    }

    /// Is `host` in the inventory?
    pub fn has_host(&self, host: &str) -> bool {
        self.data.host_idx.contains_key(host)
    }

    /// A host's merged inventory variables (inventory files, group_vars, host_vars; no magic variables).
    /// Empty for an unknown host.
    pub fn host_vars(&self, host: &str) -> Vars {
        self.data
            .host_idx
            .get(host)
            .map(|&h| (*self.merged[h]).clone())
            .unwrap_or_default()
    }

    /// Like [`Inventory::host_vars`], shared instead of copied (the executor keeps one per host for a run).
    pub fn host_vars_shared(&self, host: &str) -> std::sync::Arc<Vars> {
        self.data
            .host_idx
            .get(host)
            .map(|&h| self.merged[h].clone())
            .unwrap_or_default()
    }

    /// The `group_names` magic variable: the host's groups, sorted, without `all` (`ungrouped` is kept, as in
    /// Ansible, for hosts that are in no other group).
    pub fn group_names(&self, host: &str) -> Vec<String> {
        let Some(&h) = self.data.host_idx.get(host) else {
            return Vec::new();
        };
        let mut names: Vec<String> = self
            .host_groups(h)
            .into_iter()
            .filter(|&g| g != ALL)
            .map(|g| self.data.groups[g].name.clone())
            .collect();
        names.sort();
        names
    }

    /// The `groups` magic variable: every group (definition order, `all` and `ungrouped` first) and its hosts,
    /// children's hosts included, in inventory order.
    pub fn groups_map(&self) -> IndexMap<String, Vec<String>> {
        self.data
            .groups
            .iter()
            .enumerate()
            .map(|(g, group)| {
                let hosts = self.group_hosts[g]
                    .iter()
                    .map(|&h| self.data.hosts[h].name.clone())
                    .collect();
                (group.name.clone(), hosts)
            })
            .collect()
    }

    fn output_vars(mut v: Vars) -> Vars {
        for k in INTERNAL_VARS {
            v.shift_remove(*k);
        }
        v
    }

    /// A host's variables as `ansible-inventory --host` prints them (internal variables removed).
    pub fn host_output_vars(&self, host: &str) -> Vars {
        Self::output_vars(self.host_vars(host))
    }

    fn group_output_vars(&self, g: usize) -> Vars {
        let mut v = self.data.groups[g].vars.clone();
        let mut bases: Vec<&PathBuf> = self.src_bases.iter().collect();
        if self.graph_playbook_vars {
            bases.extend(self.pb_bases.iter());
        }
        for base in bases {
            if let Some(x) = self.dir_vars.get(base).and_then(|d| d.groups.get(&g)) {
                overlay(&mut v, x);
            }
        }
        if self.data.groups[g].priority != 1 {
            v.insert(
                "ansible_group_priority".into(),
                Value::from(self.data.groups[g].priority),
            );
        }
        Self::output_vars(v)
    }

    /// The `ansible-inventory --list` document; with `hosts`, only those hosts (a `--limit`).
    pub fn list_json(&self, hosts: Option<&[String]>) -> Value {
        let available: Vec<usize> = match hosts {
            Some(list) => {
                let wanted: HashSet<&str> = list.iter().map(String::as_str).collect();
                self.all_hosts()
                    .iter()
                    .copied()
                    .filter(|&h| wanted.contains(self.data.hosts[h].name.as_str()))
                    .collect()
            }
            None => self.all_hosts().to_vec(),
        };
        let avail: HashSet<usize> = available.iter().copied().collect();
        let mut results = Map::new();
        let mut seen = HashSet::new();
        self.format_group(ALL, &avail, &mut seen, &mut results);
        let mut hostvars = Map::new();
        for h in available {
            let v = Self::output_vars((*self.merged[h]).clone());
            if !v.is_empty() {
                hostvars.insert(self.data.hosts[h].name.clone(), Value::Object(v));
            }
        }
        results.insert(
            "_meta".into(),
            json!({"hostvars": hostvars, "profile": "inventory_legacy"}),
        );
        Value::Object(results)
    }

    fn format_group(
        &self,
        g: usize,
        avail: &HashSet<usize>,
        seen: &mut HashSet<usize>,
        results: &mut Map<String, Value>,
    ) {
        let group = &self.data.groups[g];
        let mut entry = Map::new();
        if g != ALL {
            let hosts: Vec<Value> = group
                .hosts
                .iter()
                .filter(|h| avail.contains(h))
                .map(|&h| Value::from(self.data.hosts[h].name.clone()))
                .collect();
            if !hosts.is_empty() {
                entry.insert("hosts".into(), Value::Array(hosts));
            }
        }
        let children: Vec<Value> = group
            .children
            .iter()
            .map(|&c| Value::from(self.data.groups[c].name.clone()))
            .collect();
        for &c in &group.children {
            if !seen.contains(&c) {
                self.format_group(c, avail, seen, results);
                seen.insert(c);
            }
        }
        if !children.is_empty() {
            entry.insert("children".into(), Value::Array(children));
        }
        if !entry.is_empty() {
            results.insert(group.name.clone(), Value::Object(entry));
        }
    }

    /// The `ansible-inventory --graph [GROUP] [--vars]` text (no trailing newline).
    pub fn graph(&self, group: &str, with_vars: bool) -> Result<String, Diagnostic> {
        let Some(&g) = self.data.group_idx.get(group) else {
            return Err(Diagnostic::plain(format!(
                "Pattern must be valid group name when using --graph: no group named '{group}'"
            )));
        };
        let mut out = Vec::new();
        self.graph_group(g, 0, with_vars, &mut out);
        Ok(out.join("\n"))
    }

    fn graph_group(&self, g: usize, depth: usize, with_vars: bool, out: &mut Vec<String>) {
        let name = |s: String, d: usize| {
            if d == 0 {
                s
            } else {
                format!("{}--{}", "  |".repeat(d), s)
            }
        };
        let show = |v: Vars, d: usize, out: &mut Vec<String>| {
            let mut items: Vec<(String, Value)> = v.into_iter().collect();
            items.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, val) in items {
                out.push(name(format!("{{{k} = {}}}", pycompat::str_value(&val)), d));
            }
        };
        let group = &self.data.groups[g];
        out.push(name(format!("@{}:", group.name), depth));
        let depth = depth + 1;
        for &c in &group.children {
            self.graph_group(c, depth, with_vars, out);
        }
        if g != ALL {
            for &h in &group.hosts {
                out.push(name(self.data.hosts[h].name.clone(), depth));
                if with_vars {
                    show(Self::output_vars((*self.merged[h]).clone()), depth + 1, out);
                }
            }
        }
        if with_vars {
            show(self.group_output_vars(g), depth, out);
        }
    }
}

/// `json.dumps(v, sort_keys=True, indent=4)`, the text `ansible-inventory` prints.
pub fn ansible_json(v: &Value) -> String {
    pycompat::dumps(v, &pycompat::DumpOptions::ansible_inventory())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, s: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    }

    /// Precedence across inventory files, group depth/priority, and group_vars/host_vars next to the inventory
    /// and the playbook.
    #[test]
    fn precedence() {
        let t = tempfile::tempdir().unwrap();
        let inv = t.path().join("inv");
        let pb = t.path().join("pb");
        write(
            &inv.join("hosts.yml"),
            concat!(
                "all:\n  vars: {v: all_inv, a1: inv}\n  children:\n    parent:\n      vars: {v: parent_inv}\n",
                "      children:\n        child:\n          vars: {v: child_inv}\n          hosts:\n",
                "            h1: {v: host_inv, hv: inv}\n            h2:\n    zeta:\n",
                "      vars: {v: zeta_inv, ansible_group_priority: 10}\n      hosts: {h3: , h2: }\n",
            ),
        );
        write(&inv.join("group_vars/all.yml"), "a1: inv_gv\na2: inv_gv\n");
        write(&pb.join("group_vars/all.yml"), "a2: pb_gv\ng: pb_all\n");
        write(&inv.join("group_vars/parent.yml"), "g: inv_parent\n");
        write(&pb.join("group_vars/parent.yml"), "g: pb_parent\n");
        write(&inv.join("group_vars/child.yml"), "g: inv_child\n");
        write(&inv.join("host_vars/h1.yml"), "hv: inv_hv\n");
        write(&pb.join("host_vars/h1/x.yml"), "hv: pb_hv\n");
        let i = Inventory::load(&[inv.join("hosts.yml")], &[pb]).unwrap();
        let v = |h: &str, k: &str| i.host_vars(h)[k].clone();
        assert_eq!(v("h1", "v"), "host_inv");
        // h2: child (depth 2) beats zeta (depth 1, priority 10).
        assert_eq!(v("h2", "v"), "child_inv");
        assert_eq!(v("h3", "v"), "zeta_inv");
        assert_eq!(v("h1", "a1"), "inv_gv");
        assert_eq!(v("h1", "a2"), "pb_gv");
        // All of the inventory's group_vars/* < all of the playbook's, whatever the group depth.
        assert_eq!(v("h1", "g"), "pb_parent");
        assert_eq!(v("h3", "g"), "pb_all");
        assert_eq!(v("h1", "hv"), "pb_hv");
        assert_eq!(i.group_names("h2"), ["child", "parent", "zeta"]);
        assert!(!i.host_vars("h3").contains_key("ansible_group_priority"));
        // `all` walks zeta (a child of all) before child (a grandchild).
        assert_eq!(i.host_names(), ["h3", "h2", "h1"]);
    }

    #[test]
    fn priority_orders_same_depth_groups() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("hosts");
        write(
            &f,
            "[a]\nh\n[b]\nh\n[a:vars]\nx=a\nansible_group_priority=5\n[b:vars]\nx=b\n",
        );
        let i = Inventory::load(std::slice::from_ref(&f), &[]).unwrap();
        assert_eq!(i.host_vars("h")["x"], "a");
        write(&f, "[a]\nh\n[b]\nh\n[a:vars]\nx=a\n[b:vars]\nx=b\n");
        let i = Inventory::load(&[f], &[]).unwrap();
        assert_eq!(i.host_vars("h")["x"], "b");
    }

    #[test]
    fn missing_source_is_an_error() {
        let e = Inventory::load(&[PathBuf::from("/nonexistent/inv.yml")], &[]).unwrap_err();
        assert!(
            e.to_string()
                .contains("/nonexistent/inv.yml: inventory not found"),
            "{e}"
        );
    }

    #[test]
    fn inventory_file_is_where_a_host_was_first_defined() {
        let t = tempfile::tempdir().unwrap();
        write(&t.path().join("inv/a.ini"), "[g]\nh1\n");
        write(
            &t.path().join("inv/b.yml"),
            "g:\n  hosts:\n    h1:\n    h2:\n",
        );
        let i = Inventory::load(&[t.path().join("inv/./sub/../")], &[]).unwrap();
        let base = std::fs::canonicalize(t.path()).unwrap_or(t.path().to_path_buf());
        let f = |h: &str| {
            i.inventory_file(h)
                .map(|p| std::fs::canonicalize(p).unwrap())
        };
        assert_eq!(f("h1"), Some(base.join("inv/a.ini")));
        assert_eq!(f("h2"), Some(base.join("inv/b.yml")));
        assert_eq!(i.inventory_file("nope"), None);
    }

    #[test]
    fn paths_normalize_lexically() {
        let n = |p: &str| normalize(Path::new(p)).display().to_string();
        assert_eq!(n("a/./b/../c"), "a/c");
        assert_eq!(n("../x/.."), "..");
        assert_eq!(n("/../etc"), "/etc");
        assert_eq!(n("./"), ".");
        assert!(ignored_entry("hosts.retry") && ignored_entry("x~") && ignored_entry(".git"));
        assert!(
            ignored_entry("group_vars") && !ignored_entry("hosts") && !ignored_entry("prod.ini")
        );
    }

    #[test]
    fn host_list_source() {
        let i = Inventory::load(&[PathBuf::from("a,b:2222,")], &[]).unwrap();
        assert_eq!(i.host_names(), ["a", "b"]);
        assert_eq!(i.host_vars("b")["ansible_port"], 2222);
    }
}
