//! Task lists: task and handler files, one task from its mapping, blocks (`block`/`rescue`/`always` and the
//! attributes they pass down), static and dynamic includes (`import_tasks`, `include_tasks`, `import_role`,
//! `include_role`), and assembling a loaded `Role` (its tasks, handlers and dependencies).
//!
//! This is the one loader file that recurses through files — a task list imports a role whose tasks include
//! other files and roles — so everything that loads a task list lives here, and the files it uses (`ctx`,
//! `values`, `keywords`, `action`, `role`) never call back into it. It must not parse plays (see `plays.rs`)
//! nor execute anything.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Map;

use super::action::{self, Action};
use super::ctx::{absolute, loc, LoadCtx};
use super::keywords::{is_task_keyword, read_task_keywords};
use super::model::{role_tasks_for, LoopControl, Role, RoleCtx, RoleUse, Task, TaskKind};
use super::role::{self, RoleEntry};
use super::values::scalar_text;
use crate::diag::Diagnostic;
use crate::template::Templar;
use crate::yaml::{Node, NodeValue};

/// Load a task file (for `import_tasks`, `include_tasks` at run time, role task files).
pub fn load_task_file(
    path: &Path,
    role: Option<Arc<RoleCtx>>,
    ctx: &mut LoadCtx<'_>,
) -> Option<Vec<Task>> {
    load_tasks(path, role, ctx, false)
}

/// Load a handlers file (`listen:` is allowed there).
pub fn load_handler_file(
    path: &Path,
    role: Option<Arc<RoleCtx>>,
    ctx: &mut LoadCtx<'_>,
) -> Option<Vec<Task>> {
    load_tasks(path, role, ctx, true)
}

fn load_tasks(
    path: &Path,
    role: Option<Arc<RoleCtx>>,
    ctx: &mut LoadCtx<'_>,
    handlers: bool,
) -> Option<Vec<Task>> {
    let path = absolute(path);
    if ctx.import_stack.contains(&path) {
        ctx.diags.push(Diagnostic::file(
            &path,
            "task file includes itself (import cycle)",
        ));
        return None;
    }
    let node = ctx.read_yaml(&path)?;
    let file = Arc::new(path.clone());
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    ctx.import_stack.push(path.clone());
    let tasks = if node.is_null() {
        Vec::new()
    } else {
        parse_task_list(&node, &file, &base, role, ctx, handlers)
    };
    ctx.import_stack.pop();
    Some(tasks)
}

/// Find and load a role by name (once per directory per run), its dependencies first. Problems are reported
/// at `at` in `file`.
pub fn load_role(
    name: &str,
    search: &[PathBuf],
    ctx: &mut LoadCtx<'_>,
    file: &Arc<PathBuf>,
    at: &Node,
) -> Option<Arc<Role>> {
    let dir = role::locate(name, search, ctx, file, at)?;
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
    let role_name = role::role_name(&dir, name);
    let rc = Arc::new(RoleCtx {
        name: role_name.clone(),
        dir: dir.clone(),
        params: Map::new(),
    });
    let defaults = role::read_vars(&dir, "defaults", ctx);
    let vars = role::read_vars(&dir, "vars", ctx);
    let tasks = role::main_file(&dir.join("tasks"))
        .and_then(|p| load_task_file(&p, Some(rc.clone()), ctx))
        .unwrap_or_default();
    let handlers = role::main_file(&dir.join("handlers"))
        .and_then(|p| load_handler_file(&p, Some(rc.clone()), ctx))
        .unwrap_or_default();
    let mut dependencies = Vec::new();
    let mut allow_duplicates = false;
    if let Some((mfile, meta)) = role::read_meta(&dir, ctx) {
        allow_duplicates = role::allow_duplicates(&meta, &mfile, ctx);
        let deps = role::dependencies(&meta, &mfile, ctx);
        if !deps.is_empty() {
            let dsearch = role::dependency_search(&dir, search);
            for d in deps {
                if let Some(mut uses) = role_uses_in(d, &mfile, &dsearch, ctx) {
                    dependencies.append(&mut uses);
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
        allow_duplicates,
    });
    ctx.role_cache.insert(dir, role.clone());
    Some(role)
}

/// Load one entry of a play's `roles:` list; returns the role's dependencies first, then the role.
pub fn parse_role_use(
    n: &Node,
    file: &Arc<PathBuf>,
    dir: &Path,
    ctx: &mut LoadCtx<'_>,
) -> Option<Vec<RoleUse>> {
    let search = role::search_dirs(dir, ctx);
    role_uses_in(n, file, &search, ctx)
}

fn role_uses_in(
    n: &Node,
    file: &Arc<PathBuf>,
    search: &[PathBuf],
    ctx: &mut LoadCtx<'_>,
) -> Option<Vec<RoleUse>> {
    let entry: RoleEntry<'_> = role::parse_role_entry(n, file, ctx)?;
    let role = load_role(&entry.name, search, ctx, file, entry.name_node)?;
    Some(role::uses_of(role, entry))
}

/// Parse a list of tasks.
pub fn parse_task_list(
    node: &Node,
    file: &Arc<PathBuf>,
    base: &Path,
    role: Option<Arc<RoleCtx>>,
    ctx: &mut LoadCtx<'_>,
    handlers: bool,
) -> Vec<Task> {
    let Some(items) = node.as_seq() else {
        if !node.is_null() {
            ctx.err(
                file,
                node,
                format!("expected a list of tasks, found {}", node.type_name()),
            );
        }
        return vec![];
    };
    let mut out = Vec::new();
    for item in items {
        out.extend(parse_task(item, file, base, role.clone(), ctx, handlers));
    }
    out
}

fn new_task(
    kind: TaskKind,
    file: &Arc<PathBuf>,
    node: &Node,
    base: &Path,
    role: Option<Arc<RoleCtx>>,
) -> Task {
    Task {
        name: None,
        kind,
        when: vec![],
        loop_: None,
        loop_flatten: false,
        loop_control: LoopControl::default(),
        register: None,
        notify: vec![],
        listen: vec![],
        changed_when: None,
        failed_when: None,
        ignore_errors: false,
        ignore_unreachable: false,
        tags: vec![],
        become_: None,
        become_user: None,
        no_log: false,
        retries: None,
        until: None,
        delay: None,
        timeout: None,
        run_once: false,
        delegate_to: None,
        vars: Map::new(),
        check_mode: None,
        diff: None,
        environment: None,
        any_errors_fatal: false,
        role,
        base_dir: base.to_path_buf(),
        loc: loc(file, node),
    }
}

/// Where a task list is being read: its file, the directory relative paths resolve from, its role, and
/// whether it is a handler list.
struct At<'f> {
    file: &'f Arc<PathBuf>,
    base: &'f Path,
    role: Option<Arc<RoleCtx>>,
    handler: bool,
}

/// Parse one task; `import_tasks`/`import_role` expand into several.
fn parse_task(
    node: &Node,
    file: &Arc<PathBuf>,
    base: &Path,
    role: Option<Arc<RoleCtx>>,
    ctx: &mut LoadCtx<'_>,
    handler: bool,
) -> Vec<Task> {
    let Some(map) = node.as_map() else {
        ctx.err(
            file,
            node,
            format!("a task must be a mapping, found {}", node.type_name()),
        );
        return vec![];
    };
    let (action, errors) = action::find_action(map, file, ctx);
    let is_block = node.get("block").is_some();
    if action.is_none() && !is_block {
        if !errors {
            ctx.err(file, node, "this task has no module (what should it do?)");
        }
        return vec![];
    }
    if is_block && action.is_some() {
        ctx.err(file, node, "a block cannot also run a module");
        return vec![];
    }

    let mut task = new_task(
        TaskKind::Meta("noop".into()),
        file,
        node,
        base,
        role.clone(),
    );
    read_task_keywords(map, &mut task, file, ctx);
    if !handler && !task.listen.is_empty() {
        ctx.err(file, node, "`listen` is only meaningful on handlers");
    }
    if task.until.is_some() && task.retries.is_none() {
        task.retries = Some(3);
    }
    let at = At {
        file,
        base,
        role,
        handler,
    };
    if is_block {
        return vec![block(node, task, &at, ctx)];
    }
    let Some(action) = action else {
        return vec![];
    };
    match action.name.as_str() {
        "import_tasks" | "include_tasks" | "include" => include_tasks(task, &action, &at, ctx),
        "import_role" | "include_role" => include_role(task, &action, &at, ctx),
        "meta" => match action::meta(&action, file, ctx) {
            Some(m) => {
                task.kind = TaskKind::Meta(m);
                vec![task]
            }
            None => vec![],
        },
        "import_playbook" => {
            ctx.err(
                file,
                action.key,
                "import_playbook belongs at the top level of a playbook, not in a task list",
            );
            vec![]
        }
        _ => match action::module(node, &action, file, ctx) {
            Some(kind) => {
                task.kind = kind;
                vec![task]
            }
            None => vec![],
        },
    }
}

/// A block: its sections parsed, its attributes pushed down into them.
fn block(node: &Node, task: Task, at: &At<'_>, ctx: &mut LoadCtx<'_>) -> Task {
    let mut get = |name: &str| -> Vec<Task> {
        node.get(name)
            .map(|n| parse_task_list(n, at.file, at.base, at.role.clone(), ctx, at.handler))
            .unwrap_or_default()
    };
    let mut block = get("block");
    let mut rescue = get("rescue");
    let mut always = get("always");
    for t in block
        .iter_mut()
        .chain(rescue.iter_mut())
        .chain(always.iter_mut())
    {
        inherit(t, &task);
    }
    let mut b = task;
    b.kind = TaskKind::Block {
        block,
        rescue,
        always,
    };
    // The block's own conditions were pushed into its children.
    b.when.clear();
    b
}

/// `import_tasks` (the file's tasks, inlined now), `include_tasks` / `include` (loaded when reached; the
/// file is checked now when its name is not templated).
fn include_tasks(mut task: Task, a: &Action<'_>, at: &At<'_>, ctx: &mut LoadCtx<'_>) -> Vec<Task> {
    let (action, file, vnode) = (a.name.as_str(), at.file, a.value);
    let fname = match (&vnode.value, vnode.get("file")) {
        (NodeValue::Str(s), _) => s.clone(),
        (NodeValue::Map(_), Some(f)) => scalar_text(f),
        _ => {
            ctx.err(file, vnode, format!("{action} needs a file name"));
            return vec![];
        }
    };
    let dynamic = action != "import_tasks";
    if let (false, Some(n)) = (dynamic, vnode.get("apply")) {
        ctx.err(
            file,
            n,
            "import_tasks takes no `apply:` (it is static): put the keywords on the import_tasks task itself",
        );
        return vec![];
    }
    if Templar::is_template(&fname) {
        if !dynamic {
            ctx.err(
                file,
                vnode,
                "import_tasks cannot use a templated file name: use include_tasks",
            );
            return vec![];
        }
    } else {
        let target = resolve_task_file(&fname, at.base, at.role.as_deref());
        if !target.exists() {
            ctx.err(
                file,
                vnode,
                format!("{action}: file not found: {}", target.display()),
            );
            return vec![];
        }
        if !dynamic {
            let Some(mut tasks) = load_task_file(&target, at.role.clone(), ctx) else {
                return vec![];
            };
            if task.loop_.is_some() {
                ctx.err(file, a.key, "import_tasks cannot loop: use include_tasks");
            }
            for t in &mut tasks {
                inherit(t, &task);
            }
            return tasks;
        }
        // Dynamic: validate the file now too, so mistakes surface before contact.
        let _ = load_task_file(&target, at.role.clone(), ctx);
    }
    let apply = match vnode.get("apply") {
        None => None,
        Some(n) => match apply_keywords(n, at, ctx) {
            Some(t) => Some(Box::new(t)),
            None => return vec![],
        },
    };
    task.kind = TaskKind::IncludeTasks {
        file: fname,
        base: at
            .role
            .as_ref()
            .map(|r| r.dir.join("tasks"))
            .unwrap_or_else(|| at.base.to_path_buf()),
        apply,
    };
    vec![task]
}

/// `include_tasks: {file: ..., apply: {...}}`: the keywords given to every included task, read as a task's.
fn apply_keywords(n: &Node, at: &At<'_>, ctx: &mut LoadCtx<'_>) -> Option<Task> {
    let Some(map) = n.as_map() else {
        ctx.err(
            at.file,
            n,
            "apply must be a mapping of task keywords (tags, when, become, vars, ...)",
        );
        return None;
    };
    let mut t = new_task(
        TaskKind::Meta("noop".into()),
        at.file,
        n,
        at.base,
        at.role.clone(),
    );
    read_task_keywords(map, &mut t, at.file, ctx);
    for (k, _) in map {
        let key = k.as_str().unwrap_or_default();
        if !is_task_keyword(key) {
            ctx.err(
                at.file,
                k,
                format!("apply: `{key}` is not a task keyword (tags, when, become, vars, ...)"),
            );
        }
    }
    Some(t)
}

/// Give every task of an `include_tasks` the include's `apply:` keywords (at run time, once loaded).
pub fn apply_to(tasks: &mut [Task], apply: &Task) {
    for t in tasks {
        inherit(t, apply);
    }
}

/// `import_role` (the role's tasks, inlined now; its handlers, defaults and vars join the play) and
/// `include_role` (loaded when reached; the role is checked now when its name is not templated).
fn include_role(mut task: Task, a: &Action<'_>, at: &At<'_>, ctx: &mut LoadCtx<'_>) -> Vec<Task> {
    let Some(inc) = action::role_include(a, at.file, ctx) else {
        return vec![];
    };
    let is_import = a.name == "import_role";
    let search = role::search_dirs(at.base, ctx);
    if is_import || !Templar::is_template(&inc.name) {
        let Some(r) = load_role(&inc.name, &search, ctx, at.file, inc.name_node) else {
            return vec![];
        };
        if is_import {
            return import_role(&task, r, inc.tasks_from, inc.params, ctx);
        }
    }
    task.kind = TaskKind::IncludeRole {
        name: inc.name,
        search,
        tasks_from: inc.tasks_from,
        public: inc.public.unwrap_or(false),
    };
    task.vars.extend(inc.params);
    vec![task]
}

/// The tasks `import_role` inlines (the import's attributes and the role's params applied); the role's
/// handlers, defaults and vars are recorded for the play.
fn import_role(
    task: &Task,
    r: Arc<Role>,
    tasks_from: Option<String>,
    params: crate::vars::Vars,
    ctx: &mut LoadCtx<'_>,
) -> Vec<Task> {
    let mut tasks = match &tasks_from {
        Some(tf) => {
            let rc = Arc::new(RoleCtx {
                name: r.name.clone(),
                dir: r.dir.clone(),
                params: Map::new(),
            });
            load_task_file(&role::task_file(&r.dir, tf), Some(rc), ctx).unwrap_or_default()
        }
        None => r.tasks.clone(),
    };
    let use_ = RoleUse {
        role: r.clone(),
        params: params.clone(),
        when: vec![],
        tags: vec![],
    };
    for t in &mut tasks {
        inherit(t, task);
    }
    let use_tasks = role_tasks_for(&RoleUse {
        role: Arc::new(Role {
            name: r.name.clone(),
            dir: r.dir.clone(),
            defaults: Map::new(),
            vars: Map::new(),
            tasks,
            handlers: vec![],
            dependencies: vec![],
            allow_duplicates: r.allow_duplicates,
        }),
        params,
        when: vec![],
        tags: vec![],
    });
    ctx.extra_handlers.extend(r.handlers.iter().cloned());
    ctx.extra_roles.push(use_);
    use_tasks
}

fn resolve_task_file(name: &str, base: &Path, role: Option<&RoleCtx>) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    if let Some(r) = role {
        let c = r.dir.join("tasks").join(name);
        if c.exists() {
            return c;
        }
    }
    base.join(name)
}

/// Push a block's (or import's) attributes down to a child task.
fn inherit(t: &mut Task, parent: &Task) {
    let mut w = parent.when.clone();
    w.append(&mut t.when);
    t.when = w;
    for tag in &parent.tags {
        push_tag(t, tag);
    }
    if t.become_.is_none() {
        t.become_ = parent.become_;
    }
    if t.become_user.is_none() {
        t.become_user = parent.become_user.clone();
    }
    for (k, v) in &parent.vars {
        t.vars.entry(k.clone()).or_insert_with(|| v.clone());
    }
    t.ignore_errors |= parent.ignore_errors;
    t.ignore_unreachable |= parent.ignore_unreachable;
    t.no_log |= parent.no_log;
    t.any_errors_fatal |= parent.any_errors_fatal;
    if t.timeout.is_none() {
        t.timeout = parent.timeout;
    }
    if t.check_mode.is_none() {
        t.check_mode = parent.check_mode;
    }
    if t.diff.is_none() {
        t.diff = parent.diff;
    }
    if t.delegate_to.is_none() {
        t.delegate_to = parent.delegate_to.clone();
    }
    if t.environment.is_none() {
        t.environment = parent.environment.clone();
    }
    if t.notify.is_empty() && matches!(t.kind, TaskKind::Module { .. }) {
        t.notify = parent.notify.clone();
    }
    // Grandchildren already inherited from `t` when `t` was parsed; give them the new ancestor's too.
    for x in t.children_mut() {
        let mut p = parent.clone();
        p.when.clear();
        inherit(x, &p);
    }
}

/// Add `tag` to a task and everything inside it (once).
pub(super) fn push_tag(t: &mut Task, tag: &str) {
    if !t.tags.iter().any(|x| x == tag) {
        t.tags.push(tag.to_string());
    }
    for x in t.children_mut() {
        push_tag(x, tag);
    }
}
