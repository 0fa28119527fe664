//! What one task does, as written: finding its action key among its keywords (unknown module or keyword with
//! "did you mean", conflicting actions), a module's arguments (mapping, free-form string, the whole mapping
//! from a variable, `args:`), their template syntax and the module's own validation, `meta:` actions, and the
//! options of `import_role`/`include_role`.
//!
//! It must not load other files (includes, imports and roles are followed by `tasks.rs`) nor read task
//! keywords (see `keywords.rs`).

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::ctx::LoadCtx;
use super::keywords::{is_task_keyword, suggestions, TASK_KEYWORDS};
use super::kv::parse_kv;
use super::model::TaskKind;
use super::values::{scalar_text, vars_of};
use crate::template::Templar;
use crate::vars::Vars;
use crate::yaml::{Node, NodeValue};

/// Actions handled by the loader/executor itself rather than a module.
const SPECIAL_ACTIONS: &[&str] = &[
    "import_tasks",
    "include_tasks",
    "include",
    "import_role",
    "include_role",
    "meta",
    "import_playbook",
];

const META_KINDS: &[&str] = &[
    "flush_handlers",
    "noop",
    "end_host",
    "end_play",
    "end_batch",
    "clear_host_errors",
    "refresh_inventory",
    "reset_connection",
    "clear_facts",
];

/// Options `import_role` / `include_role` accept.
const ROLE_OPTIONS: &[&str] = &[
    "name",
    "tasks_from",
    "vars",
    "handlers_from",
    "defaults_from",
    "vars_from",
    "public",
    "apply",
    "allow_duplicates",
];

/// A task's action key and value.
pub(super) struct Action<'n> {
    /// The key as written (`ansible.builtin.copy`).
    pub key: &'n Node,
    /// Its value (the module's arguments, the file to include, ...).
    pub value: &'n Node,
    /// The key without `ansible.builtin.` / `ansible.legacy.`.
    pub name: String,
}

/// Find the one action among a task's keys. Reports unknown keys (with "did you mean") and a second action;
/// the flag says whether anything was reported.
pub(super) fn find_action<'n>(
    map: &'n [(Node, Node)],
    file: &Arc<PathBuf>,
    ctx: &mut LoadCtx<'_>,
) -> (Option<Action<'n>>, bool) {
    let mut action: Option<Action<'n>> = None;
    let mut errors = false;
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default();
        if is_task_keyword(key) {
            continue;
        }
        let short = key
            .strip_prefix("ansible.builtin.")
            .or_else(|| key.strip_prefix("ansible.legacy."))
            .unwrap_or(key);
        let known = ctx.registry.canonical_name(key).is_some() || SPECIAL_ACTIONS.contains(&short);
        if !known {
            let candidates: Vec<&str> = ctx
                .registry
                .canonical_names()
                .iter()
                .copied()
                .chain(suggestions(TASK_KEYWORDS))
                .chain(SPECIAL_ACTIONS.iter().copied())
                .collect();
            let hint = crate::diag::did_you_mean(short, candidates)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            ctx.err(
                file,
                k,
                format!("unknown module or task keyword `{key}`{hint}"),
            );
            errors = true;
            continue;
        }
        if let Some(prev) = &action {
            ctx.err(
                file,
                k,
                format!(
                    "conflicting actions in one task: `{}` and `{key}` (a task runs exactly one module)",
                    prev.key.as_str().unwrap_or_default()
                ),
            );
            errors = true;
            continue;
        }
        action = Some(Action {
            key: k,
            value: v,
            name: short.to_string(),
        });
    }
    (action, errors)
}

/// `meta: ACTION`, checked against the actions we know.
pub(super) fn meta(a: &Action<'_>, file: &Arc<PathBuf>, ctx: &mut LoadCtx<'_>) -> Option<String> {
    let m = scalar_text(a.value);
    if !META_KINDS.contains(&m.as_str()) {
        ctx.err(
            file,
            a.value,
            format!(
                "meta: unknown action `{m}` (supported: {})",
                META_KINDS.join(", ")
            ),
        );
        return None;
    }
    Some(m)
}

/// The options of `import_role` / `include_role`, read and checked.
pub(super) struct RoleInclude<'n> {
    /// Where the role's name is written.
    pub name_node: &'n Node,
    /// The role's name (may be templated for `include_role`).
    pub name: String,
    /// `tasks_from`.
    pub tasks_from: Option<String>,
    /// `vars`: the role's parameters.
    pub params: Vars,
    /// `public` as written (None: the default, public for `import_role`, private for `include_role`).
    pub public: Option<bool>,
}

/// Read `import_role` / `include_role` options. None when the role cannot be loaded at all (no name, bad
/// vars); unknown options are reported but do not stop it.
pub(super) fn role_include<'n>(
    a: &Action<'n>,
    file: &Arc<PathBuf>,
    ctx: &mut LoadCtx<'_>,
) -> Option<RoleInclude<'n>> {
    let (action, vnode) = (&a.name, a.value);
    // `include_role: name=x tasks_from=y`: Ansible reads a string as `key=value` options.
    if let NodeValue::Str(s) = &vnode.value {
        return role_include_kv(action, s, vnode, file, ctx);
    }
    let Some(name_node) = vnode.get("name") else {
        ctx.err(file, vnode, format!("{action} needs `name:`"));
        return None;
    };
    let params = match vnode.get("vars").map(vars_of).transpose() {
        Ok(p) => p.unwrap_or_default(),
        Err(m) => {
            ctx.err(file, vnode, m);
            return None;
        }
    };
    for (k, _) in vnode.as_map().unwrap_or_default() {
        let kk = k.as_str().unwrap_or_default();
        if !ROLE_OPTIONS.contains(&kk) {
            ctx.err(file, k, format!("{action}: unknown option `{kk}`"));
        }
    }
    Some(RoleInclude {
        name_node,
        name: scalar_text(name_node),
        tasks_from: vnode.get("tasks_from").map(scalar_text),
        params,
        public: vnode.get("public").and_then(|p| match &p.value {
            NodeValue::Bool(b) => Some(*b),
            NodeValue::Str(s) => public_of(s),
            _ => None,
        }),
    })
}

/// `public` written as text.
fn public_of(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// The free-form `name=x tasks_from=y public=yes` options (`vars` needs the mapping form).
fn role_include_kv<'n>(
    action: &str,
    s: &str,
    vnode: &'n Node,
    file: &Arc<PathBuf>,
    ctx: &mut LoadCtx<'_>,
) -> Option<RoleInclude<'n>> {
    let kv = match parse_kv(s) {
        Ok(kv) => kv,
        Err(e) => {
            ctx.err(file, vnode, format!("{action}: {e}"));
            return None;
        }
    };
    let text = |k: &str| kv.get(k).and_then(Value::as_str).map(String::from);
    for k in kv.keys() {
        if k == "vars" {
            ctx.err(
                file,
                vnode,
                format!(
                    "{action}: `vars` cannot be given as key=value; write the options as a mapping"
                ),
            );
            return None;
        }
        if !ROLE_OPTIONS.contains(&k.as_str()) {
            ctx.err(file, vnode, format!("{action}: unknown option `{k}`"));
        }
    }
    let Some(name) = text("name") else {
        ctx.err(file, vnode, format!("{action} needs `name=`"));
        return None;
    };
    Some(RoleInclude {
        name_node: vnode,
        name,
        tasks_from: text("tasks_from"),
        params: Vars::new(),
        public: text("public").as_deref().and_then(public_of),
    })
}

/// A module task's kind: the canonical module and its arguments, validated. `node` is the whole task (for
/// `args:`). None when there is no such module or the arguments cannot be read; a validation problem is
/// reported at the argument concerned and the task is still returned.
pub(super) fn module(
    node: &Node,
    a: &Action<'_>,
    file: &Arc<PathBuf>,
    ctx: &mut LoadCtx<'_>,
) -> Option<TaskKind> {
    let (action, knode, vnode) = (&a.name, a.key, a.value);
    let module = ctx
        .registry
        .canonical_name(knode.as_str().unwrap_or_default())?;
    // Arguments: a mapping, or a free-form string.
    let mut args = match &vnode.value {
        NodeValue::Map(_) => vnode.to_json(),
        NodeValue::Null => Value::Object(Map::new()),
        // The whole argument mapping from a variable: `iotedge_config: "{{ spec }}"` (checked per host
        // before contact, once rendered).
        NodeValue::Str(s)
            if crate::template::single_expression(s.trim()).is_some()
                && ctx.registry.free_form_key(module).is_none() =>
        {
            Value::String(s.trim().to_string())
        }
        NodeValue::Str(s) => match ctx.registry.free_form_key(module) {
            Some(key) => {
                let mut m = Map::new();
                m.insert(key.to_string(), Value::String(s.clone()));
                Value::Object(m)
            }
            None => match parse_kv(s) {
                Ok(m) => Value::Object(m),
                Err(e) => {
                    ctx.err(file, vnode, format!("{action}: {e}"));
                    return None;
                }
            },
        },
        _ => {
            ctx.err(
                file,
                vnode,
                format!(
                    "{action}: arguments must be a mapping or a `key=value` string, found {}",
                    vnode.type_name()
                ),
            );
            return None;
        }
    };
    if let Some(extra) = node.get("args") {
        match (extra.to_json(), &mut args) {
            (Value::Object(e), Value::Object(a)) => {
                for (k, v) in e {
                    a.entry(k).or_insert(v);
                }
            }
            _ => ctx.err(file, extra, "args must be a mapping"),
        }
    }
    // Template syntax of every string, at its own line.
    check_templates(vnode, file, ctx);
    let validated = if args.is_string() {
        Ok(())
    } else {
        ctx.registry.validate(module, &args)
    };
    if let Err(e) = validated {
        let at = e
            .key
            .as_deref()
            .and_then(|k| {
                vnode
                    .key_node(k)
                    .or_else(|| node.get("args").and_then(|a| a.key_node(k)))
            })
            .unwrap_or(knode);
        ctx.err(file, at, e.message);
    }
    Some(TaskKind::Module {
        module: module.to_string(),
        args,
    })
}

/// Check the template syntax of every string inside a node, reporting at the string's position.
fn check_templates(n: &Node, file: &Arc<PathBuf>, ctx: &mut LoadCtx<'_>) {
    match &n.value {
        NodeValue::Str(s) if Templar::is_template(s) => {
            if let Err(e) = ctx.templar.check_syntax(s, "task argument") {
                let mut msg = e.message.clone();
                if let Some(idx) = msg.find(" (in task argument") {
                    msg.truncate(idx);
                }
                let line = n.line + e.line.unwrap_or(1).saturating_sub(1) as u64;
                let at = Node {
                    line,
                    col: n.col,
                    value: NodeValue::Null,
                };
                ctx.err(file, &at, format!("template error: {msg}"));
            }
        }
        NodeValue::Seq(items) => items.iter().for_each(|i| check_templates(i, file, ctx)),
        NodeValue::Map(m) => m.iter().for_each(|(_, v)| check_templates(v, file, ctx)),
        _ => {}
    }
}
