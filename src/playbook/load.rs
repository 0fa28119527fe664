//! Loading playbooks and task files: located YAML → typed model, with every problem collected at once.
//!
//! Owns the keyword tables (play and task keywords), free-form argument parsing (`copy: src=a dest=b`),
//! static imports (`import_tasks`, `import_role`), block attribute inheritance, and the load-time checks:
//! unknown keyword/module with "did you mean", module argument names and shapes, template and `when`
//! syntax, `serial`, registers. It must not execute anything.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::diag::{Diagnostic, Diagnostics};
use crate::playbook::model::*;
use crate::playbook::role;
use crate::shell::split_words;
use crate::template::Templar;
use crate::vars::Vars;
use crate::yaml::{Node, NodeValue};

/// Play keywords we accept.
pub const PLAY_KEYS: &[&str] = &[
    "name",
    "hosts",
    "vars",
    "vars_files",
    "roles",
    "pre_tasks",
    "tasks",
    "post_tasks",
    "handlers",
    "serial",
    "max_fail_percentage",
    "any_errors_fatal",
    "become",
    "become_user",
    "become_method",
    "gather_facts",
    "tags",
    "ignore_unreachable",
    "ignore_errors",
    "strategy",
    "collections",
    "connection",
    "remote_user",
    "order",
    "force_handlers",
    "check_mode",
    "diff",
    "no_log",
    "environment",
    "module_defaults",
    "timeout",
];

/// Task keywords we accept (besides the module key).
pub const TASK_KEYS: &[&str] = &[
    "name",
    "when",
    "loop",
    "loop_control",
    "register",
    "notify",
    "listen",
    "changed_when",
    "failed_when",
    "ignore_errors",
    "ignore_unreachable",
    "tags",
    "become",
    "become_user",
    "become_method",
    "become_flags",
    "no_log",
    "retries",
    "until",
    "delay",
    "timeout",
    "run_once",
    "delegate_to",
    "vars",
    "args",
    "check_mode",
    "diff",
    "environment",
    "any_errors_fatal",
    "block",
    "rescue",
    "always",
    "collections",
    "debugger",
    "throttle",
    "delegate_facts",
    "local_action",
];

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

/// Everything the loader needs, plus what it collects.
pub struct LoadCtx<'a> {
    /// Modules, for names and argument validation.
    pub registry: &'a dyn ModuleCatalog,
    /// For template and expression syntax checks.
    pub templar: &'a Templar,
    /// Extra role directories (`EDGEFLEET_ROLES_PATH`).
    pub roles_path: Vec<PathBuf>,
    /// Problems found so far.
    pub diags: Diagnostics,
    /// Roles loaded so far (by directory).
    pub role_cache: HashMap<PathBuf, Arc<Role>>,
    /// The text of every file loaded (to find which magic variables are referenced at all).
    pub texts: Vec<String>,
    /// Handlers brought in by `import_role` while loading the current play.
    pub(crate) extra_handlers: Vec<Task>,
    /// Roles brought in by `import_role` (their defaults and vars apply to the play).
    pub(crate) extra_roles: Vec<RoleUse>,
    import_stack: Vec<PathBuf>,
    pub(crate) role_stack: Vec<String>,
}

impl<'a> LoadCtx<'a> {
    /// A loader using `registry` and `templar`; roles are also searched in `EDGEFLEET_ROLES_PATH`.
    pub fn new(registry: &'a dyn ModuleCatalog, templar: &'a Templar) -> Self {
        let roles_path = std::env::var("EDGEFLEET_ROLES_PATH")
            .map(|s| {
                s.split(':')
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        LoadCtx {
            registry,
            templar,
            roles_path,
            diags: Diagnostics::new(),
            role_cache: HashMap::new(),
            texts: Vec::new(),
            extra_handlers: Vec::new(),
            extra_roles: Vec::new(),
            import_stack: Vec::new(),
            role_stack: Vec::new(),
        }
    }

    /// Record a problem at a node.
    pub(crate) fn err(&mut self, file: &Path, node: &Node, msg: impl Into<String>) {
        let text = self.source_of(file);
        let mut d = Diagnostic::at(file, node.line, node.col, msg);
        if let Some(t) = text {
            d = d.with_source(&t);
        }
        self.diags.push(d);
    }

    fn source_of(&self, file: &Path) -> Option<String> {
        std::fs::read_to_string(file).ok()
    }

    /// Does any loaded file mention `name`?
    pub fn references(&self, name: &str) -> bool {
        self.texts.iter().any(|t| t.contains(name))
    }

    /// Read and parse a YAML file, recording its text.
    pub(crate) fn read_yaml(&mut self, path: &Path) -> Option<Node> {
        match crate::yaml::parse_file(path) {
            Ok((n, text)) => {
                self.texts.push(text);
                Some(n)
            }
            Err(d) => {
                self.diags.push(d);
                None
            }
        }
    }
}

/// Load a playbook file (and everything it imports). Problems are collected in `ctx.diags`.
pub fn load_playbook(path: &Path, ctx: &mut LoadCtx<'_>) -> Option<Playbook> {
    let path = absolute(path);
    let root = ctx.read_yaml(&path)?;
    playbook_from_node(root, path, ctx)
}

/// Load a playbook from text (built-in playbooks such as `edgefleet ping`); `path` names it in messages and
/// anchors relative paths.
pub fn load_playbook_text(text: &str, path: &Path, ctx: &mut LoadCtx<'_>) -> Option<Playbook> {
    let path = absolute(path);
    match crate::yaml::parse_str(text, &path) {
        Ok(root) => playbook_from_node(root, path, ctx),
        Err(d) => {
            ctx.diags.push(d);
            None
        }
    }
}

fn playbook_from_node(root: Node, path: PathBuf, ctx: &mut LoadCtx<'_>) -> Option<Playbook> {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let file = Arc::new(path.clone());
    let Some(items) = root.as_seq() else {
        if root.is_null() {
            ctx.err(
                &path,
                &root,
                "the playbook is empty: expected a list of plays",
            );
        } else {
            ctx.err(
                &path,
                &root,
                format!(
                    "a playbook must be a list of plays, found {}",
                    root.type_name()
                ),
            );
        }
        return None;
    };
    let mut plays = Vec::new();
    for item in items {
        if let Some(imp) = item
            .get("import_playbook")
            .or_else(|| item.get("ansible.builtin.import_playbook"))
        {
            match imp.as_str() {
                Some(p) if !Templar::is_template(p) => {
                    let target = dir.join(p);
                    if ctx.import_stack.contains(&target) {
                        ctx.err(&path, imp, format!("import_playbook cycle through {p}"));
                        continue;
                    }
                    if !target.exists() {
                        ctx.err(
                            &path,
                            imp,
                            format!("imported playbook not found: {}", target.display()),
                        );
                        continue;
                    }
                    ctx.import_stack.push(target.clone());
                    if let Some(pb) = load_playbook(&target, ctx) {
                        plays.extend(pb.plays);
                    }
                    ctx.import_stack.pop();
                }
                _ => ctx.err(&path, imp, "import_playbook needs a plain file name"),
            }
            continue;
        }
        if let Some(play) = parse_play(item, &file, &dir, ctx) {
            plays.push(play);
        }
    }
    Some(Playbook { path, plays })
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|c| c.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

fn loc(file: &Arc<PathBuf>, n: &Node) -> Loc {
    Loc {
        file: file.clone(),
        line: n.line,
        col: n.col,
    }
}

/// A string list from a string ("a,b" when `split`), a list of strings, or null.
fn str_list(n: &Node, split_commas: bool) -> Result<Vec<String>, String> {
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

fn scalar_text(n: &Node) -> String {
    match &n.value {
        NodeValue::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        NodeValue::Int(i) => i.to_string(),
        NodeValue::UInt(u) => u.to_string(),
        NodeValue::Float(f) => f.to_string(),
        NodeValue::Str(s) => s.clone(),
        _ => String::new(),
    }
}

/// A boolean keyword: YAML booleans, or Ansible's spellings in strings.
fn bool_of(n: &Node) -> Result<bool, String> {
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

fn vars_of(n: &Node) -> Result<Vars, String> {
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

fn parse_serial(n: &Node) -> Result<Vec<Serial>, String> {
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

fn parse_play(node: &Node, file: &Arc<PathBuf>, dir: &Path, ctx: &mut LoadCtx<'_>) -> Option<Play> {
    let Some(map) = node.as_map() else {
        ctx.err(
            file,
            node,
            format!("a play must be a mapping, found {}", node.type_name()),
        );
        return None;
    };
    let mut play = Play {
        name: String::new(),
        hosts: String::new(),
        vars: Map::new(),
        vars_files: vec![],
        roles: vec![],
        imported_roles: vec![],
        pre_tasks: vec![],
        tasks: vec![],
        post_tasks: vec![],
        handlers: vec![],
        serial: vec![],
        max_fail_percentage: None,
        any_errors_fatal: false,
        become_: None,
        become_user: None,
        gather_facts: true,
        tags: vec![],
        ignore_unreachable: false,
        dir: dir.to_path_buf(),
        loc: loc(file, node),
    };
    let mut have_hosts = false;
    let before = ctx.diags.len();
    ctx.extra_handlers.clear();
    ctx.extra_roles.clear();
    // Keywords other sections depend on come first.
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default();
        let r: Result<(), String> = match key {
            "name" => {
                play.name = scalar_text(v);
                Ok(())
            }
            "hosts" => {
                have_hosts = true;
                str_list(v, false).map(|l| play.hosts = l.join(","))
            }
            "vars" => vars_of(v).map(|m| play.vars = m),
            "vars_files" => str_list(v, false).map(|l| play.vars_files = l),
            "serial" => parse_serial(v).map(|s| play.serial = s),
            "max_fail_percentage" => match v.to_json().as_f64() {
                Some(p) if (0.0..=100.0).contains(&p) => {
                    play.max_fail_percentage = Some(p);
                    Ok(())
                }
                _ => Err("max_fail_percentage must be a number from 0 to 100".into()),
            },
            "any_errors_fatal" => bool_of(v).map(|b| play.any_errors_fatal = b),
            "become" => bool_of(v).map(|b| play.become_ = Some(b)),
            "become_user" => {
                play.become_user = Some(scalar_text(v));
                Ok(())
            }
            "become_method" => match v.as_str() {
                Some("sudo") | None => Ok(()),
                Some(m) => Err(format!("become_method '{m}' is not supported; edgefleet uses sudo")),
            },
            "gather_facts" => bool_of(v).map(|b| play.gather_facts = b),
            "tags" => str_list(v, true).map(|t| play.tags = t),
            "ignore_unreachable" => bool_of(v).map(|b| play.ignore_unreachable = b),
            "strategy" => match v.as_str() {
                Some("linear") | Some("free") | Some("host_pinned") => Ok(()),
                _ => Err("strategy: edgefleet runs every host independently (like `free`); use linear, free or host_pinned".into()),
            },
            "roles" | "pre_tasks" | "tasks" | "post_tasks" | "handlers" => Ok(()),
            "collections" | "order" | "force_handlers" | "check_mode" | "diff" | "no_log" | "environment"
            | "module_defaults" | "timeout" | "ignore_errors" | "connection" | "remote_user" => Ok(()),
            "vars_prompt" => Err("vars_prompt is not supported: pass values with -e or vars files".into()),
            other => Err(match crate::diag::did_you_mean(other, PLAY_KEYS.iter().copied()) {
                Some(s) => format!("unknown play keyword `{other}` (did you mean `{s}`?)"),
                None => format!("unknown play keyword `{other}`"),
            }),
        };
        if let Err(m) = r {
            ctx.err(file, k, m);
        }
    }
    if !have_hosts {
        ctx.err(
            file,
            node,
            "this play has no `hosts:` (which hosts should it run on?)",
        );
    }
    if play.name.is_empty() {
        play.name = play.hosts.clone();
    }
    for (k, v) in map {
        match k.as_str().unwrap_or_default() {
            "connection" => {
                if let Some(c) = v.as_str() {
                    play.vars
                        .insert("ansible_connection".into(), Value::String(c.into()));
                }
            }
            "remote_user" => {
                play.vars
                    .insert("ansible_user".into(), Value::String(scalar_text(v)));
            }
            _ => {}
        }
    }
    // Roles.
    if let Some(roles) = node.get("roles") {
        match roles.as_seq() {
            Some(items) => {
                for r in items {
                    if let Some(uses) = role::parse_role_use(r, file, dir, ctx) {
                        play.roles.extend(uses);
                    }
                }
            }
            None if roles.is_null() => {}
            None => ctx.err(file, roles, "roles must be a list"),
        }
    }
    let base = dir.to_path_buf();
    let sections: [(&str, &mut Vec<Task>); 4] = [
        ("pre_tasks", &mut play.pre_tasks),
        ("tasks", &mut play.tasks),
        ("post_tasks", &mut play.post_tasks),
        ("handlers", &mut play.handlers),
    ];
    for (name, target) in sections {
        if let Some(n) = node.get(name) {
            *target = parse_task_list(n, file, &base, None, ctx, name == "handlers");
        }
    }
    for t in play
        .pre_tasks
        .iter_mut()
        .chain(play.tasks.iter_mut())
        .chain(play.post_tasks.iter_mut())
    {
        for tag in &play.tags {
            push_tag(t, tag);
        }
    }
    for r in &play.roles {
        play.handlers.extend(r.role.handlers.iter().cloned());
    }
    play.handlers.append(&mut ctx.extra_handlers);
    play.imported_roles.append(&mut ctx.extra_roles);
    if play.roles.iter().any(|r| {
        r.role.tasks.is_empty() && r.role.handlers.is_empty() && r.role.defaults.is_empty()
    }) {
        // An empty role is legal (Ansible allows it).
    }
    if ctx.diags.len() > before {
        // Still return the play so later plays are checked too; the caller stops on any diagnostic.
    }
    Some(play)
}

fn push_tag(t: &mut Task, tag: &str) {
    if !t.tags.iter().any(|x| x == tag) {
        t.tags.push(tag.to_string());
    }
    for x in t.children_mut() {
        push_tag(x, tag);
    }
}

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

fn cond_of(n: &Node) -> Result<Cond, String> {
    match &n.value {
        NodeValue::Bool(b) => Ok(Cond::Fixed(*b)),
        _ => str_list(n, false).map(Cond::Exprs),
    }
}

fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
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
    // Find the action.
    let mut action: Option<(&Node, &Node, String)> = None;
    let mut errors = false;
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default();
        if TASK_KEYS.contains(&key) || key.starts_with("with_") {
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
                .chain(TASK_KEYS.iter().copied())
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
        if let Some((prev, _, _)) = &action {
            ctx.err(
                file,
                k,
                format!(
                    "conflicting actions in one task: `{}` and `{key}` (a task runs exactly one module)",
                    prev.as_str().unwrap_or_default()
                ),
            );
            errors = true;
            continue;
        }
        action = Some((k, v, short.to_string()));
    }
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
    // Keywords.
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default();
        let r: Result<(), String> = match key {
            "name" => {
                let s = scalar_text(v);
                if Templar::is_template(&s) {
                    if let Err(e) = ctx.templar.check_syntax(&s, "name") {
                        Err(format!("name: {}", e.message))
                    } else {
                        task.name = Some(s);
                        Ok(())
                    }
                } else {
                    task.name = Some(s);
                    Ok(())
                }
            }
            "when" => match &v.value {
                NodeValue::Bool(b) => {
                    task.when = vec![if *b { "True".into() } else { "False".into() }];
                    Ok(())
                }
                _ => str_list(v, false).and_then(|l| {
                    for w in &l {
                        ctx.templar
                            .check_expr(w, "when")
                            .map_err(|e| format!("when: `{w}` is not a valid expression: {}", e.message))?;
                    }
                    task.when = l;
                    Ok(())
                }),
            },
            "loop" | "with_items" | "with_list" | "with_dict" | "with_indexed_items" => {
                if task.loop_.is_some() {
                    Err("a task can have only one loop".into())
                } else {
                    let val = v.to_json();
                    task.loop_flatten = key == "with_items";
                    task.loop_ = Some(match key {
                        "with_dict" => match val {
                            Value::String(s) => Value::String(format!(
                                "{{{{ ({}) | dict2items }}}}",
                                crate::template::single_expression(&s).unwrap_or(&s)
                            )),
                            Value::Object(o) => Value::Array(
                                o.into_iter()
                                    .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
                                    .collect(),
                            ),
                            other => other,
                        },
                        _ => val,
                    });
                    Ok(())
                }
            }
            k2 if k2.starts_with("with_") => Err(format!(
                "`{k2}` is not supported; use `loop:` (with_items, with_list and with_dict are supported)"
            )),
            "loop_control" => match v.as_map() {
                Some(m) => {
                    let mut lc = LoopControl::default();
                    let mut bad = None;
                    for (lk, lv) in m {
                        match lk.as_str().unwrap_or_default() {
                            "loop_var" => lc.loop_var = Some(scalar_text(lv)),
                            "index_var" => lc.index_var = Some(scalar_text(lv)),
                            "label" => lc.label = Some(scalar_text(lv)),
                            "pause" => lc.pause = lv.to_json().as_f64(),
                            "extended" | "extended_allitems" => {}
                            other => bad = Some(format!("unknown loop_control key `{other}`")),
                        }
                    }
                    if let Some(b) = bad {
                        Err(b)
                    } else {
                        task.loop_control = lc;
                        Ok(())
                    }
                }
                None => Err("loop_control must be a mapping".into()),
            },
            "register" => {
                let s = scalar_text(v);
                if is_identifier(&s) {
                    task.register = Some(s);
                    Ok(())
                } else {
                    Err(format!("register: `{s}` is not a valid variable name"))
                }
            }
            "notify" => str_list(v, false).map(|l| task.notify = l),
            "listen" => str_list(v, false).map(|l| task.listen = l),
            "changed_when" => cond_of(v).map(|c| task.changed_when = Some(c)),
            "failed_when" => cond_of(v).map(|c| task.failed_when = Some(c)),
            "until" => str_list(v, false).map(|l| task.until = Some(l)),
            "ignore_errors" => bool_of(v).map(|b| task.ignore_errors = b),
            "ignore_unreachable" => bool_of(v).map(|b| task.ignore_unreachable = b),
            "tags" => str_list(v, true).map(|t| task.tags = t),
            "become" => bool_of(v).map(|b| task.become_ = Some(b)),
            "become_user" => {
                task.become_user = Some(scalar_text(v));
                Ok(())
            }
            "become_method" => match v.as_str() {
                Some("sudo") => Ok(()),
                _ => Err("become_method: only sudo is supported".into()),
            },
            "no_log" => bool_of(v).map(|b| task.no_log = b),
            "retries" => match &v.value {
                NodeValue::Int(i) if *i >= 0 => {
                    task.retries = Some(*i as u32);
                    Ok(())
                }
                _ => Err("retries must be a non-negative integer".into()),
            },
            "delay" => match v.to_json().as_f64() {
                Some(d) if d >= 0.0 => {
                    task.delay = Some(d);
                    Ok(())
                }
                _ => Err("delay must be a number of seconds".into()),
            },
            "timeout" => match &v.value {
                NodeValue::Int(i) if *i > 0 => {
                    task.timeout = Some(*i as u64);
                    Ok(())
                }
                _ => Err("timeout must be a positive number of seconds".into()),
            },
            "run_once" => bool_of(v).map(|b| task.run_once = b),
            "delegate_to" => {
                let s = scalar_text(v);
                if matches!(s.as_str(), "localhost" | "127.0.0.1" | "::1") {
                    task.delegate_to = Some(s);
                    Ok(())
                } else {
                    Err(format!("delegate_to: only `localhost` is supported, not `{s}`"))
                }
            }
            "vars" => vars_of(v).map(|m| task.vars = m),
            "check_mode" => bool_of(v).map(|b| task.check_mode = Some(b)),
            "diff" => bool_of(v).map(|b| task.diff = Some(b)),
            "environment" => {
                task.environment = Some(v.to_json());
                Ok(())
            }
            "any_errors_fatal" => bool_of(v).map(|b| task.any_errors_fatal = b),
            "local_action" => Err("local_action is not supported: use `delegate_to: localhost`".into()),
            _ => Ok(()),
        };
        if let Err(m) = r {
            ctx.err(file, k, m);
        }
    }
    if !handler && !task.listen.is_empty() {
        ctx.err(file, node, "`listen` is only meaningful on handlers");
    }
    if task.until.is_some() && task.retries.is_none() {
        task.retries = Some(3);
    }

    if is_block {
        let get = |name: &str, ctx: &mut LoadCtx<'_>| -> Vec<Task> {
            node.get(name)
                .map(|n| parse_task_list(n, file, base, role.clone(), ctx, handler))
                .unwrap_or_default()
        };
        let mut block = get("block", ctx);
        let mut rescue = get("rescue", ctx);
        let mut always = get("always", ctx);
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
        return vec![b];
    }

    let Some((knode, vnode, action)) = action else {
        return vec![];
    };
    match action.as_str() {
        "import_tasks" | "include_tasks" | "include" => {
            let (fname, apply_node) = match (&vnode.value, vnode.get("file")) {
                (NodeValue::Str(s), _) => (s.clone(), None),
                (NodeValue::Map(_), Some(f)) => (scalar_text(f), vnode.get("apply")),
                _ => {
                    ctx.err(file, vnode, format!("{action} needs a file name"));
                    return vec![];
                }
            };
            let _ = apply_node;
            let dynamic = action != "import_tasks";
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
                let target = resolve_task_file(&fname, base, role.as_deref());
                if !target.exists() {
                    ctx.err(
                        file,
                        vnode,
                        format!("{action}: file not found: {}", target.display()),
                    );
                    return vec![];
                }
                if !dynamic {
                    let Some(mut tasks) = load_task_file(&target, role.clone(), ctx) else {
                        return vec![];
                    };
                    if task.loop_.is_some() {
                        ctx.err(file, knode, "import_tasks cannot loop: use include_tasks");
                    }
                    for t in &mut tasks {
                        inherit(t, &task);
                    }
                    return tasks;
                }
                // Dynamic: validate the file now too, so mistakes surface before contact.
                let _ = load_task_file(&target, role.clone(), ctx);
            }
            task.kind = TaskKind::IncludeTasks {
                file: fname,
                base: role
                    .as_ref()
                    .map(|r| r.dir.join("tasks"))
                    .unwrap_or_else(|| base.to_path_buf()),
            };
            vec![task]
        }
        "import_role" | "include_role" => {
            let Some(name_node) = vnode.get("name") else {
                ctx.err(file, vnode, format!("{action} needs `name:`"));
                return vec![];
            };
            let name = scalar_text(name_node);
            let tasks_from = vnode.get("tasks_from").map(scalar_text);
            let params = match vnode.get("vars").map(vars_of).transpose() {
                Ok(p) => p.unwrap_or_default(),
                Err(m) => {
                    ctx.err(file, vnode, m);
                    return vec![];
                }
            };
            for (k, _) in vnode.as_map().unwrap_or_default() {
                let kk = k.as_str().unwrap_or_default();
                if ![
                    "name",
                    "tasks_from",
                    "vars",
                    "handlers_from",
                    "defaults_from",
                    "vars_from",
                    "public",
                    "apply",
                    "allow_duplicates",
                ]
                .contains(&kk)
                {
                    ctx.err(file, k, format!("{action}: unknown option `{kk}`"));
                }
            }
            let search = role::search_dirs(base, ctx);
            if action == "import_role" || !Templar::is_template(&name) {
                let Some(r) = role::load_role(&name, &search, ctx, file, name_node) else {
                    return vec![];
                };
                if action == "import_role" {
                    let mut tasks = match &tasks_from {
                        Some(tf) => {
                            let rc = Arc::new(RoleCtx {
                                name: r.name.clone(),
                                dir: r.dir.clone(),
                                params: Map::new(),
                            });
                            load_task_file(&role::task_file(&r.dir, tf), Some(rc), ctx)
                                .unwrap_or_default()
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
                        inherit(t, &task);
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
                        }),
                        params,
                        when: vec![],
                        tags: vec![],
                    });
                    ctx.extra_handlers.extend(r.handlers.iter().cloned());
                    ctx.extra_roles.push(use_);
                    return use_tasks;
                }
            }
            task.kind = TaskKind::IncludeRole {
                name,
                search,
                tasks_from,
            };
            task.vars.extend(params);
            vec![task]
        }
        "meta" => {
            let m = scalar_text(vnode);
            if !META_KINDS.contains(&m.as_str()) {
                ctx.err(
                    file,
                    vnode,
                    format!(
                        "meta: unknown action `{m}` (supported: {})",
                        META_KINDS.join(", ")
                    ),
                );
                return vec![];
            }
            task.kind = TaskKind::Meta(m);
            vec![task]
        }
        "import_playbook" => {
            ctx.err(
                file,
                knode,
                "import_playbook belongs at the top level of a playbook, not in a task list",
            );
            vec![]
        }
        _ => {
            let Some(module) = ctx
                .registry
                .canonical_name(knode.as_str().unwrap_or_default())
            else {
                return vec![];
            };
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
                            return vec![];
                        }
                    },
                },
                _ => {
                    ctx.err(
                        file,
                        vnode,
                        format!("{action}: arguments must be a mapping or a `key=value` string, found {}", vnode.type_name()),
                    );
                    return vec![];
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
            task.kind = TaskKind::Module {
                module: module.to_string(),
                args,
            };
            vec![task]
        }
    }
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
    {
        for x in t.children_mut() {
            let mut p = parent.clone();
            p.when.clear();
            inherit(x, &p);
        }
    }
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

/// Parse Ansible's free-form `key=value key2="quoted value"` arguments.
pub fn parse_kv(s: &str) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for word in split_words(s)? {
        let Some((k, v)) = word.split_once('=') else {
            return Err(format!("expected key=value arguments, found `{word}`"));
        };
        if !is_identifier(k) {
            return Err(format!("`{k}` is not a valid argument name"));
        }
        out.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(out)
}

/// Names of all handlers and their `listen` topics in a play (for notify checks).
pub fn handler_names(play: &Play) -> HashSet<String> {
    let mut s = HashSet::new();
    for h in &play.handlers {
        if let Some(n) = &h.name {
            s.insert(n.clone());
        }
        for l in &h.listen {
            s.insert(l.clone());
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_parsing() {
        let m = parse_kv("src=a.txt dest='/tmp/x y' mode=0644 msg=\"{{ a b }}\"").unwrap();
        assert_eq!(m["dest"], "/tmp/x y");
        assert_eq!(m["mode"], "0644");
        assert_eq!(m["msg"], "{{ a b }}");
        assert!(parse_kv("justaword").is_err());
        assert!(parse_kv("a='open").is_err());
    }
}
