//! The variable-precedence stack: the one place that decides which variables win, for the run and for
//! pre-flight alike. Everything else (the task loop, pre-flight, includes) asks for layers here and never orders
//! them itself. [`crate::template::context::Context`] only reads a stack (highest last); inventory merges group
//! and host variables into one layer before they get here.
//!
//! Precedence, lowest first:
//!
//! | # | layer | where it comes from |
//! |---|-------|---------------------|
//! | 1 | role defaults | the play's roles' `defaults/` |
//! | 2 | inventory | group vars (all < parents < children) < host vars, merged by `inventory/` |
//! | 3 | magic variables | `inventory_hostname`, `group_names`, `playbook_dir`, `groups`, `ansible_play_hosts`, ... |
//! | 4 | play vars | the play's `vars:` |
//! | 5 | play vars_files | in the order listed (file names rendered with layers 1-4) |
//! | 6 | role vars | the play's roles' `vars/` |
//! | 7 | scope | `include_tasks` vars and loop item; `include_role` defaults (only names not yet defined) and vars; the vars of `public` roles included earlier |
//! | 8 | role identity | `role_name`, `role_path` |
//! | 9 | lookup search path | [`crate::template::SEARCH_PATH_VAR`]: role dir, task file dir, playbook dir |
//! | 10 | task vars | the task's (and its blocks') `vars:` |
//! | 11 | hostvars | `hostvars` (every host's inventory variables and runtime variables), when a template uses it |
//! | 12 | runtime | `set_fact`, registered results, gathered facts |
//! | 13 | role params | the role's parameters (`roles: [{role: x, param: ...}]`, `include_role` vars) |
//! | 14 | extra vars | `-e` |
//!
//! As in Ansible's table ("Variable precedence": task vars 17 < set_fact/registered 19 < role params 20 < extra
//! vars 22), `set_fact` beats task and block vars but not the parameters a role was given.
//!
//! Layers 1-6 are a host's play layers ([`play_layers`]), 7 is the task loop's scope, 8-10 and 13 a task's own
//! layers ([`task_layers`]), and [`stack`] puts them together with 11, 12 and 14. The task loop adds per-item
//! layers on top of the whole stack: the loop variable (and `ansible_loop_var`, `loop_control.index_var`), what
//! `set_fact` set in the loop's earlier items (Ansible updates the task's variables between items), and the
//! registered result while `changed_when` / `failed_when` / `until` are evaluated.
//!
//! Layers are shared (`Arc`), never copied or flattened. This module must not render templates itself (the
//! vars_files loader it is given does) or read files.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;

use super::{Executor, HostState, PlayRt};
use crate::playbook::{RoleCtx, Task};
use crate::template::context::{Context, Warnings};
use crate::vars::Vars;

/// The sources of a host's play layers (1-6), except the vars_files, which are loaded as the stack is built.
pub(crate) struct PlaySources {
    pub role_defaults: Arc<Vars>,
    pub inventory: Arc<Vars>,
    pub magic: Arc<Vars>,
    pub play_vars: Arc<Vars>,
    pub role_vars: Arc<Vars>,
}

/// Where the magic variables are in a host's play layers (rebuilt in place when hosts fail: see
/// `HostRun::refresh_magic`).
pub(crate) const MAGIC_LAYER: usize = 2;

/// Layers 1-6. Each vars_files name is handed to `load` with the layers below it (to render the name); `load`
/// returns the file's variables, `None` to leave it out, or an error that stops the build.
pub(crate) fn play_layers<E>(
    src: PlaySources,
    vars_files: &[String],
    mut load: impl FnMut(&str, &[Arc<Vars>]) -> Result<Option<Arc<Vars>>, E>,
) -> Result<Vec<Arc<Vars>>, E> {
    let mut layers = vec![src.role_defaults, src.inventory, src.magic, src.play_vars];
    for vf in vars_files {
        if let Some(v) = load(vf, &layers)? {
            layers.push(v);
        }
    }
    layers.push(src.role_vars);
    Ok(layers)
}

/// Where `lookup('file', ...)` and friends look for a task: the role, the task file's directory, the
/// playbook's.
pub(crate) fn search_dirs(t: &Task, playbook_dir: &std::path::Path) -> Vec<PathBuf> {
    crate::template::search::task_search_path(
        t.role.as_ref().map(|r| r.dir.as_path()),
        &t.base_dir,
        playbook_dir,
    )
}

/// A task's own layers: below the runtime variables (8-10) and above them (13, the role's parameters).
#[derive(Default)]
pub(crate) struct TaskLayers {
    /// Role identity, lookup search path, task vars.
    pub below: Vec<Arc<Vars>>,
    /// The role's parameters, when it has any.
    pub params: Option<Arc<Vars>>,
}

/// Layers 8-10 and 13: a task's own (role identity, lookup search path, task vars; role params).
pub(crate) fn task_layers(t: &Task, playbook_dir: &std::path::Path) -> TaskLayers {
    own_layers(t.role.as_deref(), &search_dirs(t, playbook_dir), &t.vars)
}

fn own_layers(role: Option<&RoleCtx>, search: &[PathBuf], vars: &Vars) -> TaskLayers {
    let mut out = Vec::new();
    let mut params = None;
    if let Some(r) = role {
        if !r.params.is_empty() {
            params = Some(Arc::new(r.params.clone()));
        }
        let mut rv = Vars::new();
        rv.insert("role_name".into(), json!(r.name));
        rv.insert("role_path".into(), json!(r.dir.display().to_string()));
        out.push(Arc::new(rv));
    }
    let mut sp = Vars::new();
    sp.insert(
        crate::template::SEARCH_PATH_VAR.into(),
        crate::template::search_path_value(search),
    );
    out.push(Arc::new(sp));
    if !vars.is_empty() {
        out.push(Arc::new(vars.clone()));
    }
    TaskLayers { below: out, params }
}

/// The whole stack: play layers (1-6), scope (7), the task's layers below the runtime (8-10), hostvars (11;
/// `None`: left out), runtime (12), role params (13), extra vars (14; `None` or empty: left out).
pub(crate) fn stack(
    play: &[Arc<Vars>],
    scope: &[Arc<Vars>],
    task: &TaskLayers,
    hostvars: Option<Arc<Vars>>,
    runtime: Arc<Vars>,
    extra: Option<&Arc<Vars>>,
) -> Vec<Arc<Vars>> {
    let mut layers = Vec::with_capacity(play.len() + scope.len() + task.below.len() + 4);
    layers.extend(play.iter().cloned());
    layers.extend(scope.iter().cloned());
    layers.extend(task.below.iter().cloned());
    layers.extend(hostvars);
    layers.push(runtime);
    layers.extend(task.params.iter().cloned());
    if let Some(e) = extra.filter(|e| !e.is_empty()) {
        layers.push(e.clone());
    }
    layers
}

/// What to do with a vars_files entry that cannot be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarsFiles {
    /// The host's play fails (the run).
    Required,
    /// Leave it out (pre-flight: whatever depends on it is checked when it runs).
    BestEffort,
}

impl Executor {
    /// A host's play layers (1-6). What rendering the vars_files names warns about goes to `warnings`.
    pub(crate) fn host_play_layers(
        &self,
        hs: &HostState,
        rt: &PlayRt,
        batch: &[String],
        vars_files: VarsFiles,
        warnings: &Arc<Warnings>,
    ) -> Result<Vec<Arc<Vars>>, String> {
        let src = PlaySources {
            role_defaults: rt.role_defaults.clone(),
            inventory: hs.inv_vars.clone(),
            magic: Arc::new(self.magic_vars(&hs.name, rt, batch)),
            play_vars: rt.play_vars.clone(),
            role_vars: rt.role_vars.clone(),
        };
        play_layers(src, &rt.play.vars_files, |vf, below| {
            let cx = Context::collecting(&self.templar, below.to_vec(), warnings.clone());
            match self.load_vars_file(vf, rt, &cx) {
                Ok(v) => Ok(Some(v)),
                Err(_) if vars_files == VarsFiles::BestEffort => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    /// The stack for `play` layers, `scope` and a task's own layers, with `hostvars` (when a template uses it),
    /// the host's runtime variables and the extra vars.
    pub(crate) fn layers(
        &self,
        play: &[Arc<Vars>],
        scope: &[Arc<Vars>],
        task: &TaskLayers,
        hs: &HostState,
    ) -> Vec<Arc<Vars>> {
        stack(
            play,
            scope,
            task,
            self.hostvars_layer(),
            hs.runtime(),
            Some(&self.extra_vars),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn named(who: &str) -> Arc<Vars> {
        let mut v = Vars::new();
        v.insert("who".into(), json!(who));
        v.insert(format!("only_{who}"), json!(true));
        Arc::new(v)
    }

    fn order(layers: &[Arc<Vars>]) -> Vec<String> {
        layers
            .iter()
            .map(|l| match l.get("who") {
                Some(Value::String(s)) => s.clone(),
                _ => "?".into(),
            })
            .collect()
    }

    fn sources() -> PlaySources {
        PlaySources {
            role_defaults: named("role_defaults"),
            inventory: named("inventory"),
            magic: named("magic"),
            play_vars: named("play_vars"),
            role_vars: named("role_vars"),
        }
    }

    #[test]
    fn the_order_lowest_first() {
        let files = vec!["a.yml".to_string(), "b.yml".to_string()];
        let mut seen_below = Vec::new();
        let play = play_layers::<String>(sources(), &files, |f, below| {
            seen_below.push(order(below));
            Ok(Some(named(&format!("vars_file {f}"))))
        })
        .unwrap();
        assert_eq!(order(&play[MAGIC_LAYER..=MAGIC_LAYER]), vec!["magic"]);
        // Each vars_files name is rendered with everything below it.
        assert_eq!(
            seen_below,
            vec![
                vec!["role_defaults", "inventory", "magic", "play_vars"],
                vec![
                    "role_defaults",
                    "inventory",
                    "magic",
                    "play_vars",
                    "vars_file a.yml"
                ],
            ]
        );
        let all = stack(
            &play,
            &[named("scope")],
            &TaskLayers {
                below: vec![named("task_vars")],
                params: Some(named("role_params")),
            },
            Some(named("hostvars")),
            named("runtime"),
            Some(&named("extra_vars")),
        );
        assert_eq!(
            order(&all),
            vec![
                "role_defaults",
                "inventory",
                "magic",
                "play_vars",
                "vars_file a.yml",
                "vars_file b.yml",
                "role_vars",
                "scope",
                "task_vars",
                "hostvars",
                "runtime",
                "role_params",
                "extra_vars",
            ]
        );
        // And the context reads it highest last: extra vars win over everything.
        let cx = Context::new(&crate::template::Templar::new(), all);
        assert_eq!(cx.get("who").unwrap(), Some(json!("extra_vars")));
        assert_eq!(cx.get("only_role_defaults").unwrap(), Some(json!(true)));
    }

    #[test]
    fn a_vars_file_left_out_or_failing() {
        let files = vec!["a.yml".to_string(), "b.yml".to_string()];
        let play = play_layers::<String>(sources(), &files, |f, _| {
            Ok((f == "b.yml").then(|| named("b")))
        })
        .unwrap();
        assert_eq!(
            order(&play),
            vec![
                "role_defaults",
                "inventory",
                "magic",
                "play_vars",
                "b",
                "role_vars"
            ]
        );
        let e = play_layers(sources(), &files, |f, _| Err(format!("cannot read {f}")));
        assert_eq!(e.unwrap_err(), "cannot read a.yml");
        // Empty extra vars add no layer.
        let s = stack(
            &play,
            &[],
            &TaskLayers::default(),
            None,
            named("runtime"),
            Some(&Arc::new(Vars::new())),
        );
        assert_eq!(order(&s).last().map(String::as_str), Some("runtime"));
    }

    #[test]
    fn a_tasks_own_layers() {
        let role = RoleCtx {
            name: "edge".into(),
            dir: PathBuf::from("/pb/roles/edge"),
            params: named("role_params").as_ref().clone(),
        };
        let search = [
            PathBuf::from("/pb/roles/edge"),
            PathBuf::from("/pb/roles/edge/tasks"),
            PathBuf::from("/pb"),
        ];
        let own = own_layers(Some(&role), &search, &named("task_vars"));
        // role identity < search path < task vars, and the role params apart (above the runtime variables)
        assert_eq!(order(&own.below), vec!["?", "?", "task_vars"]);
        assert_eq!(
            own.params.as_deref().map(|p| p["who"].clone()),
            Some(json!("role_params"))
        );
        let layers = stack(&[], &[], &own, None, named("runtime"), None);
        assert_eq!(
            order(&layers),
            vec!["?", "?", "task_vars", "runtime", "role_params"]
        );
        let cx = Context::new(&crate::template::Templar::new(), layers);
        assert_eq!(cx.get("who").unwrap(), Some(json!("role_params")));
        assert_eq!(cx.get("role_name").unwrap(), Some(json!("edge")));
        assert_eq!(
            cx.get(crate::template::SEARCH_PATH_VAR).unwrap(),
            Some(json!(["/pb/roles/edge", "/pb/roles/edge/tasks", "/pb"]))
        );
        // No role, no task vars: only the search path.
        let own = own_layers(None, &search, &Vars::new());
        assert_eq!((own.below.len(), own.params.is_none()), (1, true));
    }
}
