//! The typed playbook model the loader produces and the executor runs.
//!
//! Pure data: no parsing here (see `plays.rs`, `tasks.rs` and the files they use) and no execution (see
//! `executor/`). It imports no other loader file.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::vars::Vars;

/// Where something was written: file, line, column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loc {
    /// The file.
    pub file: Arc<PathBuf>,
    /// 1-based line (0 unknown).
    pub line: u64,
    /// 1-based column (0 unknown).
    pub col: u64,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            crate::diag::display_path(&self.file),
            self.line,
            self.col
        )
    }
}

/// A loaded playbook file.
#[derive(Debug, Clone)]
pub struct Playbook {
    /// The playbook file.
    pub path: PathBuf,
    /// Its plays, in order.
    pub plays: Vec<Play>,
}

/// One `serial` step: a number of hosts or a percentage of the play's hosts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Serial {
    /// This many hosts (0: all that are left).
    Count(usize),
    /// This percentage of the play's hosts (rounded down as Ansible does, at least 1).
    Percent(f64),
}

/// A play's `rollout:`: after each wave (`serial` batch) wait `soak`, then require every device of the wave to be
/// healthy before the next wave starts. The verification arguments are `iotedge_verify`'s, read here as plain
/// data (the executor hands them to the verify path).
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// How long to wait after a wave before judging it.
    pub soak: Soak,
    /// What judges the wave.
    pub gate: Gate,
    /// Seconds the verification waits for the services and runtime modules to come up.
    pub wait_timeout: u64,
    /// `iotedge check` ids not to run (`--dont-run`).
    pub dont_run: Vec<String>,
    /// Warnings that fail a device (`all`: every warning).
    pub fail_on_warnings: Vec<String>,
    /// Waived check ids and why.
    pub waivers: std::collections::BTreeMap<String, String>,
}

/// A rollout's soak time: fixed, or a template (rendered with the variables of the wave's first device, e.g.
/// `"{{ rollout_soak | default('5m') }}"`, so `-e rollout_soak=2s` shortens it).
#[derive(Debug, Clone, PartialEq)]
pub enum Soak {
    /// This long.
    Fixed(std::time::Duration),
    /// A template giving a duration.
    Template(String),
}

/// What judges a wave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// edgefleet's verification (`iotedge_verify`'s checks), edgeAgent and edgeHub running, module restart counts
    /// not rising during the soak, and no check that was ok when the soak began failing at its end.
    Verify,
}

/// A role as used by a play or task: the loaded role plus the parameters it was given.
#[derive(Debug, Clone)]
pub struct RoleUse {
    /// The role.
    pub role: Arc<Role>,
    /// Role parameters (`- role: x` + other keys, or `vars:`).
    pub params: Vars,
    /// `when` on the role.
    pub when: Vec<String>,
    /// `tags` on the role.
    pub tags: Vec<String>,
}

/// A loaded role.
#[derive(Debug)]
pub struct Role {
    /// Its name.
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// `defaults/main.yml`.
    pub defaults: Vars,
    /// `vars/main.yml`.
    pub vars: Vars,
    /// `tasks/main.yml`.
    pub tasks: Vec<Task>,
    /// `handlers/main.yml`.
    pub handlers: Vec<Task>,
    /// `meta/main.yml` dependencies, loaded, in order.
    pub dependencies: Vec<RoleUse>,
    /// `meta/main.yml` `allow_duplicates`: run each time it is listed, even with the same parameters.
    pub allow_duplicates: bool,
}

/// A play.
#[derive(Debug, Clone)]
pub struct Play {
    /// `name` (or the hosts pattern when unnamed).
    pub name: String,
    /// `hosts` pattern.
    pub hosts: String,
    /// `vars`.
    pub vars: Vars,
    /// `vars_files` (paths as written; templated at run time against the host's vars).
    pub vars_files: Vec<String>,
    /// Roles, in order, dependencies expanded (each dependency before its dependant); a role use equal to an
    /// earlier one (same role, parameters, `when` and tags) is left out unless the role allows duplicates.
    pub roles: Vec<RoleUse>,
    /// Roles brought in by `import_role`: their tasks are inlined where imported, their defaults and vars apply
    /// to the play like the others'.
    pub imported_roles: Vec<RoleUse>,
    /// `pre_tasks`.
    pub pre_tasks: Vec<Task>,
    /// `tasks`.
    pub tasks: Vec<Task>,
    /// `post_tasks`.
    pub post_tasks: Vec<Task>,
    /// `handlers` (play handlers plus every role's handlers).
    pub handlers: Vec<Task>,
    /// `serial` batches (empty: all hosts at once).
    pub serial: Vec<Serial>,
    /// `max_fail_percentage`.
    pub max_fail_percentage: Option<f64>,
    /// `rollout:` (health-gated waves), when given.
    pub rollout: Option<Rollout>,
    /// `any_errors_fatal`.
    pub any_errors_fatal: bool,
    /// `become`.
    pub become_: Option<bool>,
    /// `become_user`.
    pub become_user: Option<String>,
    /// `gather_facts` (we gather only what tasks need; the flag is accepted for compatibility).
    pub gather_facts: bool,
    /// `tags` on the play (inherited by every task).
    pub tags: Vec<String>,
    /// `ignore_unreachable`.
    pub ignore_unreachable: bool,
    /// The playbook's directory (relative paths, group_vars, roles/).
    pub dir: PathBuf,
    /// Where the play starts.
    pub loc: Loc,
}

/// `loop_control`.
#[derive(Debug, Clone, Default)]
pub struct LoopControl {
    /// `loop_var` (default `item`).
    pub loop_var: Option<String>,
    /// `index_var`.
    pub index_var: Option<String>,
    /// `label` (template).
    pub label: Option<String>,
    /// `pause` seconds between items.
    pub pause: Option<f64>,
    /// `extended`: each item sees `ansible_loop` (index, first, last, previtem, ...).
    pub extended: bool,
    /// `extended_allitems` (default true): `ansible_loop.allitems` holds the whole list.
    pub extended_allitems: bool,
}

/// A condition list or a fixed boolean (`changed_when: false`).
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// Always this.
    Fixed(bool),
    /// All expressions must be true.
    Exprs(Vec<String>),
}

/// What a task does.
#[derive(Debug, Clone)]
pub enum TaskKind {
    /// Run a module.
    Module {
        /// Canonical module name.
        module: String,
        /// Arguments as written (templated at run time).
        args: Value,
    },
    /// `block` / `rescue` / `always`.
    Block {
        /// `block`.
        block: Vec<Task>,
        /// `rescue`.
        rescue: Vec<Task>,
        /// `always`.
        always: Vec<Task>,
    },
    /// `include_tasks` (dynamic: loaded when reached, file name may be templated).
    IncludeTasks {
        /// The file as written.
        file: String,
        /// Directory relative paths resolve from.
        base: PathBuf,
        /// `apply:` keywords (tags, when, become, vars, ...) given to every included task.
        apply: Option<Box<Task>>,
    },
    /// `include_role` (dynamic).
    IncludeRole {
        /// Role name (may be templated).
        name: String,
        /// Role search dirs.
        search: Vec<PathBuf>,
        /// `tasks_from`.
        tasks_from: Option<String>,
        /// `public: true`: the role's defaults and vars stay visible to the rest of the play.
        public: bool,
    },
    /// `meta: flush_handlers` and friends.
    Meta(String),
}

/// A task (or handler, or block).
#[derive(Debug, Clone)]
pub struct Task {
    /// `name`.
    pub name: Option<String>,
    /// What it does.
    pub kind: TaskKind,
    /// `when` (all must hold).
    pub when: Vec<String>,
    /// `loop` / `with_items` / `with_list` value (a list, or a template producing one).
    pub loop_: Option<Value>,
    /// `with_items` flattens one level (Ansible).
    pub loop_flatten: bool,
    /// `loop_control`.
    pub loop_control: LoopControl,
    /// `register`.
    pub register: Option<String>,
    /// `notify` handler names/topics.
    pub notify: Vec<String>,
    /// `listen` topics (handlers).
    pub listen: Vec<String>,
    /// `changed_when`.
    pub changed_when: Option<Cond>,
    /// `failed_when`.
    pub failed_when: Option<Cond>,
    /// `ignore_errors`.
    pub ignore_errors: bool,
    /// `ignore_unreachable`.
    pub ignore_unreachable: bool,
    /// `tags` (own + inherited).
    pub tags: Vec<String>,
    /// `become`.
    pub become_: Option<bool>,
    /// `become_user`.
    pub become_user: Option<String>,
    /// `no_log`.
    pub no_log: bool,
    /// `retries` (with `until`).
    pub retries: Option<u32>,
    /// `until`.
    pub until: Option<Vec<String>>,
    /// `delay` seconds between retries.
    pub delay: Option<f64>,
    /// `timeout` seconds for the task's commands.
    pub timeout: Option<u64>,
    /// `run_once`.
    pub run_once: bool,
    /// `delegate_to` (only `localhost` / `127.0.0.1` are supported).
    pub delegate_to: Option<String>,
    /// Task `vars` (and block vars inherited).
    pub vars: Vars,
    /// `check_mode` override.
    pub check_mode: Option<bool>,
    /// `diff` override.
    pub diff: Option<bool>,
    /// `environment` (exported for command/shell).
    pub environment: Option<Value>,
    /// `any_errors_fatal` on the task.
    pub any_errors_fatal: bool,
    /// The role this task comes from, and the role's parameters.
    pub role: Option<Arc<RoleCtx>>,
    /// Directory relative `src:` paths and lookups resolve from (the task file's dir, or the role's).
    pub base_dir: PathBuf,
    /// Where it was written.
    pub loc: Loc,
}

/// The role a task belongs to, as seen at run time.
#[derive(Debug, Clone)]
pub struct RoleCtx {
    /// Role name.
    pub name: String,
    /// Role directory (for `templates/` and `files/`).
    pub dir: PathBuf,
    /// Role parameters (high precedence for this role's tasks).
    pub params: Vars,
}

impl Task {
    /// The display name: `name`, else `module` (+ role prefix like Ansible: `role : name`).
    pub fn display_name(&self) -> String {
        let base = match (&self.name, &self.kind) {
            (Some(n), _) => n.clone(),
            (None, TaskKind::Module { module, .. }) => module.clone(),
            (None, TaskKind::Block { .. }) => "block".into(),
            (None, TaskKind::IncludeTasks { file, .. }) => format!("include_tasks {file}"),
            (None, TaskKind::IncludeRole { name, .. }) => format!("include_role {name}"),
            (None, TaskKind::Meta(m)) => format!("meta: {m}"),
        };
        match &self.role {
            Some(r) => format!("{} : {base}", r.name),
            None => base,
        }
    }

    /// The tasks inside a block (block, rescue, always), for changes that apply to all of them.
    pub fn children_mut(&mut self) -> Box<dyn Iterator<Item = &mut Task> + '_> {
        match &mut self.kind {
            TaskKind::Block {
                block,
                rescue,
                always,
            } => Box::new(
                block
                    .iter_mut()
                    .chain(rescue.iter_mut())
                    .chain(always.iter_mut()),
            ),
            _ => Box::new(std::iter::empty()),
        }
    }

    /// The module name, when this is a module task.
    pub fn module(&self) -> Option<&str> {
        match &self.kind {
            TaskKind::Module { module, .. } => Some(module),
            _ => None,
        }
    }
}

impl Play {
    /// Every task section in execution order, as Ansible runs them: pre_tasks, then roles' tasks followed by
    /// tasks (one section: handlers are flushed after it, not between them), then post_tasks.
    pub fn sections(&self) -> Vec<(&'static str, Vec<Task>)> {
        let mut main = Vec::new();
        for r in &self.roles {
            main.extend(role_tasks_for(r));
        }
        main.extend(self.tasks.iter().cloned());
        vec![
            ("pre_tasks", self.pre_tasks.clone()),
            ("tasks", main),
            ("post_tasks", self.post_tasks.clone()),
        ]
    }
}

/// Every module/include/meta task in `tasks`, looking inside blocks (block, rescue, always), in order.
pub fn leaves(tasks: &[Task]) -> Vec<&Task> {
    fn walk<'a>(ts: &'a [Task], out: &mut Vec<&'a Task>) {
        for t in ts {
            match &t.kind {
                TaskKind::Block {
                    block,
                    rescue,
                    always,
                } => {
                    walk(block, out);
                    walk(rescue, out);
                    walk(always, out);
                }
                _ => out.push(t),
            }
        }
    }
    let mut out = Vec::new();
    walk(tasks, &mut out);
    out
}

/// A role's tasks with the role's `when` and `tags` applied.
pub fn role_tasks_for(r: &RoleUse) -> Vec<Task> {
    let mut out = r.role.tasks.clone();
    for t in &mut out {
        apply_inherited(t, &r.when, &r.tags, &r.params);
    }
    out
}

fn apply_inherited(t: &mut Task, when: &[String], tags: &[String], params: &Vars) {
    let mut w = when.to_vec();
    w.append(&mut t.when);
    t.when = w;
    for tag in tags {
        if !t.tags.contains(tag) {
            t.tags.push(tag.clone());
        }
    }
    if let Some(rc) = &t.role {
        if !params.is_empty() {
            let mut rc2 = (**rc).clone();
            for (k, v) in params {
                rc2.params.insert(k.clone(), v.clone());
            }
            t.role = Some(Arc::new(rc2));
        }
    }
    for x in t.children_mut() {
        apply_inherited(x, &[], tags, params);
    }
}

/// A problem with a task's arguments, found before contact.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ArgError {
    /// What is wrong, and what to do.
    pub message: String,
    /// The argument key concerned (to point at its line), when known.
    pub key: Option<String>,
}

impl ArgError {
    /// An error about the arguments as a whole.
    pub fn new(message: impl Into<String>) -> Self {
        ArgError {
            message: message.into(),
            key: None,
        }
    }
    /// An error about one key.
    pub fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        ArgError {
            message: message.into(),
            key: Some(key.into()),
        }
    }
}

/// What the loader needs to know about modules. The language sits below the modules, so it asks through this
/// trait; `modules::Registry` implements it.
pub trait ModuleCatalog: Sync {
    /// The canonical name of the module `name` refers to (a short name, an alias or an FQCN), if any.
    fn canonical_name(&self, name: &str) -> Option<&'static str>;
    /// Every module's canonical name (for "did you mean").
    fn canonical_names(&self) -> &[&'static str];
    /// For free-form arguments (`command: ls -l`): the key the raw string goes to; None when the string is
    /// parsed as `k=v` pairs.
    fn free_form_key(&self, name: &str) -> Option<&'static str>;
    /// Static validation of the arguments as written (they may still contain templates).
    fn validate(&self, name: &str, args: &serde_json::Value) -> Result<(), ArgError>;
}
