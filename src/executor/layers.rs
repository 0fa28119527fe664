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
//! | 3 | magic variables | `inventory_hostname`, `group_names`, `playbook_dir`, `groups`, `hostvars`, ... |
//! | 4 | play vars | the play's `vars:` |
//! | 5 | play vars_files | in the order listed (file names rendered with layers 1-4) |
//! | 6 | role vars | the play's roles' `vars/` |
//! | 7 | scope | `include_tasks` vars and loop item; `include_role` defaults (only names not yet defined) and vars |
//! | 8 | role params | the role's parameters (`roles: [{role: x, param: ...}]`, `include_role` vars) |
//! | 9 | role identity | `role_name`, `role_path` |
//! | 10 | lookup search path | [`crate::template::SEARCH_PATH_VAR`]: role dir, task file dir, playbook dir |
//! | 11 | task vars | the task's (and its blocks') `vars:` |
//! | 12 | runtime | `set_fact`, registered results, gathered facts |
//! | 13 | extra vars | `-e` |
//!
//! Layers 1-6 are a host's play layers ([`play_layers`]), 7 is the task loop's scope, 8-11 a task's own
//! layers ([`task_layers`]), and [`stack`] puts them together with 12-13. The task loop adds per-item layers on
//! top of the whole stack: the loop variable (and `ansible_loop_var`, `loop_control.index_var`), and the
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

/// Layers 8-11: a task's own (role params, role identity, lookup search path, task vars).
pub(crate) fn task_layers(t: &Task, playbook_dir: &std::path::Path) -> Vec<Arc<Vars>> {
    own_layers(t.role.as_deref(), &search_dirs(t, playbook_dir), &t.vars)
}

fn own_layers(role: Option<&RoleCtx>, search: &[PathBuf], vars: &Vars) -> Vec<Arc<Vars>> {
    let mut out = Vec::new();
    if let Some(r) = role {
        if !r.params.is_empty() {
            out.push(Arc::new(r.params.clone()));
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
    out
}

/// The whole stack: play layers (1-6), scope (7), the task's layers (8-11), runtime (12), extra vars (13;
/// `None` or empty: left out).
pub(crate) fn stack(
    play: &[Arc<Vars>],
    scope: &[Arc<Vars>],
    task: &[Arc<Vars>],
    runtime: Arc<Vars>,
    extra: Option<&Arc<Vars>>,
) -> Vec<Arc<Vars>> {
    let mut layers = Vec::with_capacity(play.len() + scope.len() + task.len() + 2);
    layers.extend(play.iter().cloned());
    layers.extend(scope.iter().cloned());
    layers.extend(task.iter().cloned());
    layers.push(runtime);
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

    /// The stack for `play` layers, `scope` and a task's own layers, with the host's runtime variables and the
    /// extra vars on top.
    pub(crate) fn layers(
        &self,
        play: &[Arc<Vars>],
        scope: &[Arc<Vars>],
        task: &[Arc<Vars>],
        hs: &HostState,
    ) -> Vec<Arc<Vars>> {
        stack(play, scope, task, hs.runtime(), Some(&self.extra_vars))
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
            &[named("role_params"), named("task_vars")],
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
                "role_params",
                "task_vars",
                "runtime",
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
            &[],
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
        let layers = own_layers(Some(&role), &search, &named("task_vars"));
        // role params < role identity < search path < task vars
        assert_eq!(order(&layers), vec!["role_params", "?", "?", "task_vars"]);
        let cx = Context::new(&crate::template::Templar::new(), layers);
        assert_eq!(cx.get("who").unwrap(), Some(json!("task_vars")));
        assert_eq!(cx.get("role_name").unwrap(), Some(json!("edge")));
        assert_eq!(
            cx.get(crate::template::SEARCH_PATH_VAR).unwrap(),
            Some(json!(["/pb/roles/edge", "/pb/roles/edge/tasks", "/pb"]))
        );
        // No role, no task vars: only the search path.
        assert_eq!(own_layers(None, &search, &Vars::new()).len(), 1);
    }
}
