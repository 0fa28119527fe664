//! Roles on disk: `roles/NAME/{tasks,handlers,templates,files,defaults,vars,meta}/main.yml`, the role search
//! path, a role entry (`- role: x` with params, `when`, `tags`), and `meta/main.yml` dependencies as written.
//!
//! Owns locating a role, reading its defaults, vars and meta (`dependencies`, `allow_duplicates`), reading a
//! role entry's parameters, and leaving out the role uses that repeat an earlier one. It must
//! not load task files nor assemble a `Role` (that is `tasks.rs`, which loads task lists: keeping it there
//! keeps the files free of an import cycle while "a role's tasks import roles" recurses), and must not run
//! anything.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::ctx::LoadCtx;
use super::model::{Role, RoleUse};
use super::values::scalar;
use crate::vars::Vars;
use crate::yaml::{Node, NodeValue};

/// Where roles are looked for, in order: `roles/` beside the playbook (or task file), `EDGEFLEET_ROLES_PATH`,
/// then the playbook's own directory.
pub fn search_dirs(base: &Path, ctx: &LoadCtx<'_>) -> Vec<PathBuf> {
    let mut v = vec![base.join("roles")];
    // A task file inside roles/x/tasks/ should still find sibling roles.
    for anc in base.ancestors().skip(1).take(3) {
        if anc.file_name().map(|n| n == "roles").unwrap_or(false) {
            v.push(anc.to_path_buf());
        }
    }
    v.extend(ctx.roles_path.iter().cloned());
    v.push(base.to_path_buf());
    // A project laid out as `playbooks/` beside `roles/` (like edgefleet's own) finds its roles too.
    if let Some(parent) = base.parent() {
        v.push(parent.join("roles"));
    }
    v
}

/// Where a role's dependencies are looked for: beside the role, then where the role was found.
pub(super) fn dependency_search(role_dir: &Path, search: &[PathBuf]) -> Vec<PathBuf> {
    let mut s = vec![role_dir.parent().map(Path::to_path_buf).unwrap_or_default()];
    s.extend(search.iter().cloned());
    s
}

/// The main file of a role sub-directory (`main.yml`, `main.yaml` or `main`).
pub(super) fn main_file(dir: &Path) -> Option<PathBuf> {
    ["main.yml", "main.yaml", "main"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// A role task file for `tasks_from`.
pub fn task_file(role_dir: &Path, name: &str) -> PathBuf {
    let t = role_dir.join("tasks");
    for c in [
        t.join(name),
        t.join(format!("{name}.yml")),
        t.join(format!("{name}.yaml")),
    ] {
        if c.is_file() {
            return c;
        }
    }
    t.join(name)
}

/// The directory of role `name` (canonical when possible); reported at `at` in `file` when not found.
pub(super) fn locate(
    name: &str,
    search: &[PathBuf],
    ctx: &mut LoadCtx<'_>,
    file: &Arc<PathBuf>,
    at: &Node,
) -> Option<PathBuf> {
    let dir = if name.contains('/') && Path::new(name).is_dir() {
        Some(PathBuf::from(name))
    } else {
        search.iter().map(|d| d.join(name)).find(|d| d.is_dir())
    };
    let Some(dir) = dir else {
        ctx.err(
            file,
            at,
            format!(
                "role `{name}` not found; looked in {}",
                search
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        return None;
    };
    Some(dir.canonicalize().unwrap_or(dir))
}

/// The role's name: its directory's name.
pub(super) fn role_name(dir: &Path, name: &str) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.to_string())
}

/// `defaults/main.yml` or `vars/main.yml` (`sub`): a mapping of variables, empty when absent.
pub(super) fn read_vars(dir: &Path, sub: &str, ctx: &mut LoadCtx<'_>) -> Map<String, Value> {
    let Some(p) = main_file(&dir.join(sub)) else {
        return Map::new();
    };
    let Some(n) = ctx.read_yaml(&p) else {
        return Map::new();
    };
    match n.to_json() {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        _ => {
            ctx.err(
                &Arc::new(p.clone()),
                &n,
                format!("{sub}/main.yml must be a mapping of variables"),
            );
            Map::new()
        }
    }
}

/// `meta/main.yml`, read: its file and its root node.
pub(super) fn read_meta(dir: &Path, ctx: &mut LoadCtx<'_>) -> Option<(Arc<PathBuf>, Node)> {
    let meta = main_file(&dir.join("meta"))?;
    let n = ctx.read_yaml(&meta)?;
    Some((Arc::new(meta), n))
}

/// The `dependencies:` entries of a meta file's root (none when absent; reported when not a list).
pub(super) fn dependencies<'n>(
    meta: &'n Node,
    file: &Arc<PathBuf>,
    ctx: &mut LoadCtx<'_>,
) -> &'n [Node] {
    let Some(deps) = meta.get("dependencies") else {
        return &[];
    };
    match deps.as_seq() {
        Some(items) => items,
        None if deps.is_null() => &[],
        None => {
            ctx.err(file, deps, "dependencies must be a list of roles");
            &[]
        }
    }
}

/// `allow_duplicates:` of a meta file's root (false when absent; reported when not a boolean).
pub(super) fn allow_duplicates(meta: &Node, file: &Arc<PathBuf>, ctx: &mut LoadCtx<'_>) -> bool {
    match meta.get("allow_duplicates").map(|n| &n.value) {
        None | Some(NodeValue::Null) => false,
        Some(NodeValue::Bool(b)) => *b,
        Some(NodeValue::Str(s)) if matches!(s.to_ascii_lowercase().as_str(), "yes" | "true") => {
            true
        }
        Some(NodeValue::Str(s)) if matches!(s.to_ascii_lowercase().as_str(), "no" | "false") => {
            false
        }
        Some(_) => {
            if let Some(n) = meta.get("allow_duplicates") {
                ctx.err(file, n, "allow_duplicates must be true or false");
            }
            false
        }
    }
}

/// A play's role uses without repeats, as Ansible runs them: a use equal to an earlier one (the same role with
/// the same parameters, `when` and tags; a dependency shared by two roles, say) runs once, unless the role's
/// meta says `allow_duplicates: true`.
pub(super) fn without_repeats(uses: Vec<RoleUse>) -> Vec<RoleUse> {
    let mut out: Vec<RoleUse> = Vec::with_capacity(uses.len());
    for u in uses {
        let seen = out.iter().any(|o| {
            o.role.dir == u.role.dir && o.params == u.params && o.when == u.when && o.tags == u.tags
        });
        if !seen || u.role.allow_duplicates {
            out.push(u);
        }
    }
    out
}

/// One entry of a play's `roles:` list or of a role's dependencies, read but not loaded.
pub(super) struct RoleEntry<'n> {
    /// The role's name as written.
    pub name: String,
    /// Where the name is written (role problems are reported there).
    pub name_node: &'n Node,
    /// Role parameters (other keys, `vars:`, `become*` as `ansible_become*`).
    pub params: Vars,
    /// `when` on the entry.
    pub when: Vec<String>,
    /// `tags` on the entry.
    pub tags: Vec<String>,
}

/// Read a role entry: a name, or a mapping with `role:` (or `name:`) and parameters.
pub(super) fn parse_role_entry<'n>(
    n: &'n Node,
    file: &Arc<PathBuf>,
    ctx: &mut LoadCtx<'_>,
) -> Option<RoleEntry<'n>> {
    match &n.value {
        NodeValue::Str(s) => Some(RoleEntry {
            name: s.clone(),
            name_node: n,
            params: Map::new(),
            when: vec![],
            tags: vec![],
        }),
        NodeValue::Map(m) => {
            let Some(nn) = n.get("role").or_else(|| n.get("name")) else {
                ctx.err(file, n, "a role entry needs `role:` (the role's name)");
                return None;
            };
            let mut params = Map::new();
            let mut when = vec![];
            let mut tags = vec![];
            for (k, v) in m {
                match k.as_str().unwrap_or_default() {
                    "role" | "name" => {}
                    "vars" => {
                        if let Value::Object(o) = v.to_json() {
                            params.extend(o);
                        } else {
                            ctx.err(file, v, "role vars must be a mapping");
                        }
                    }
                    "when" => match &v.value {
                        NodeValue::Str(s) => when.push(s.clone()),
                        NodeValue::Seq(items) => {
                            when.extend(items.iter().filter_map(|i| i.as_str().map(String::from)))
                        }
                        NodeValue::Bool(b) => {
                            when.push(if *b { "True".into() } else { "False".into() })
                        }
                        _ => ctx.err(file, v, "when must be a string or a list"),
                    },
                    "tags" => match v.to_json() {
                        Value::String(s) => tags.extend(s.split(',').map(|t| t.trim().to_string())),
                        Value::Array(a) => {
                            tags.extend(a.iter().filter_map(|t| t.as_str().map(String::from)))
                        }
                        _ => ctx.err(file, v, "tags must be a string or a list"),
                    },
                    "become" | "become_user" => {
                        // Keep as a role param; the executor reads `ansible_become*` from vars.
                        let key = if k.as_str() == Some("become") {
                            "ansible_become"
                        } else {
                            "ansible_become_user"
                        };
                        params.insert(key.into(), v.to_json());
                    }
                    other => {
                        params.insert(other.to_string(), v.to_json());
                    }
                }
            }
            Some(RoleEntry {
                name: scalar(nn),
                name_node: nn,
                params,
                when,
                tags,
            })
        }
        _ => {
            ctx.err(
                file,
                n,
                "a role entry must be a name or a mapping with `role:`",
            );
            None
        }
    }
}

/// The uses an entry makes of a loaded role: the role's dependencies first (with the entry's `when` before
/// theirs and its tags added), then the role itself.
pub(super) fn uses_of(role: Arc<Role>, entry: RoleEntry<'_>) -> Vec<RoleUse> {
    let mut out = Vec::new();
    for d in &role.dependencies {
        let mut d = d.clone();
        d.when.splice(0..0, entry.when.iter().cloned());
        d.tags.extend(entry.tags.iter().cloned());
        out.push(d);
    }
    out.push(RoleUse {
        role,
        params: entry.params,
        when: entry.when,
        tags: entry.tags,
    });
    out
}
