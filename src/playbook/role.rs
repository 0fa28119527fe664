//! Roles: `roles/NAME/{tasks,handlers,templates,files,defaults,vars,meta}/main.yml`, the role search path and
//! `meta/main.yml` dependencies.
//!
//! Owns finding and loading roles (once per directory per run) and expanding dependencies. It must not run
//! anything.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::playbook::load::{load_task_file, LoadCtx};
use crate::playbook::model::*;
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

/// The main file of a role sub-directory (`main.yml`, `main.yaml` or `main`).
fn main_file(dir: &Path) -> Option<PathBuf> {
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

/// Find and load a role by name. Problems are reported at `at` in `file`.
pub fn load_role(
    name: &str,
    search: &[PathBuf],
    ctx: &mut LoadCtx<'_>,
    file: &Arc<PathBuf>,
    at: &Node,
) -> Option<Arc<Role>> {
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
    let dir = dir.canonicalize().unwrap_or(dir);
    if let Some(r) = ctx.role_cache.get(&dir) {
        return Some(r.clone());
    }
    if ctx.role_stack.iter().any(|n| n == name) {
        ctx.err(
            file,
            at,
            format!(
                "role dependency cycle: {} -> {name}",
                ctx.role_stack.join(" -> ")
            ),
        );
        return None;
    }
    ctx.role_stack.push(name.to_string());
    let role_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.to_string());
    let rc = Arc::new(RoleCtx {
        name: role_name.clone(),
        dir: dir.clone(),
        params: Map::new(),
    });
    let read_vars = |sub: &str, ctx: &mut LoadCtx<'_>| -> Map<String, Value> {
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
    };
    let defaults = read_vars("defaults", ctx);
    let vars = read_vars("vars", ctx);
    let tasks = main_file(&dir.join("tasks"))
        .and_then(|p| load_task_file(&p, Some(rc.clone()), ctx))
        .unwrap_or_default();
    let handlers = main_file(&dir.join("handlers"))
        .and_then(|p| crate::playbook::load::load_handler_file(&p, Some(rc.clone()), ctx))
        .unwrap_or_default();
    let mut dependencies = Vec::new();
    if let Some(meta) = main_file(&dir.join("meta")) {
        if let Some(n) = ctx.read_yaml(&meta) {
            let mfile = Arc::new(meta.clone());
            if let Some(deps) = n.get("dependencies") {
                match deps.as_seq() {
                    Some(items) => {
                        let dsearch = {
                            let mut s =
                                vec![dir.parent().map(Path::to_path_buf).unwrap_or_default()];
                            s.extend(search.iter().cloned());
                            s
                        };
                        for d in items {
                            if let Some(mut uses) = parse_role_use_in(d, &mfile, &dsearch, ctx) {
                                dependencies.append(&mut uses);
                            }
                        }
                    }
                    None if deps.is_null() => {}
                    None => ctx.err(&mfile, deps, "dependencies must be a list of roles"),
                }
            }
        }
    }
    ctx.role_stack.pop();
    let role = Arc::new(Role {
        name: role_name,
        dir: dir.clone(),
        defaults,
        vars,
        tasks,
        handlers,
        dependencies,
    });
    ctx.role_cache.insert(dir, role.clone());
    Some(role)
}

/// Parse one entry of a play's `roles:` list; returns the role's dependencies first, then the role.
pub fn parse_role_use(
    n: &Node,
    file: &Arc<PathBuf>,
    dir: &Path,
    ctx: &mut LoadCtx<'_>,
) -> Option<Vec<RoleUse>> {
    let search = search_dirs(dir, ctx);
    parse_role_use_in(n, file, &search, ctx)
}

fn parse_role_use_in(
    n: &Node,
    file: &Arc<PathBuf>,
    search: &[PathBuf],
    ctx: &mut LoadCtx<'_>,
) -> Option<Vec<RoleUse>> {
    let (name, name_node, params, when, tags) = match &n.value {
        NodeValue::Str(s) => (s.clone(), n, Map::new(), vec![], vec![]),
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
            (scalar(nn), nn, params, when, tags)
        }
        _ => {
            ctx.err(
                file,
                n,
                "a role entry must be a name or a mapping with `role:`",
            );
            return None;
        }
    };
    let role = load_role(&name, search, ctx, file, name_node)?;
    let mut out = Vec::new();
    for d in &role.dependencies {
        let mut d = d.clone();
        d.when.splice(0..0, when.iter().cloned());
        d.tags.extend(tags.iter().cloned());
        out.push(d);
    }
    out.push(RoleUse {
        role,
        params,
        when,
        tags,
    });
    Some(out)
}

fn scalar(n: &Node) -> String {
    n.as_str()
        .map(String::from)
        .unwrap_or_else(|| n.to_json().to_string())
}
