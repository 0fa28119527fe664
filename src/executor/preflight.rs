//! Pre-flight: every task's arguments rendered for every host and validated by its module, before any
//! device is contacted.
//!
//! Owns grouping identical problems across hosts ("edge-001, edge-002 and 48 more: ..."). Tasks whose
//! arguments depend on values only known at run time (registered results, loop items, facts) are validated
//! when they run instead. Tasks render with the same variable stack as at run time (`layers.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::layers::{self, VarsFiles};
use super::{Executor, HostState, PlayRt};
use crate::diag::{Diagnostic, Diagnostics};
use crate::playbook::{Playbook, Task, TaskKind};
use crate::template::context::Context;
use crate::vars::Vars;

/// What pre-flight found.
#[derive(Debug, Default)]
pub struct Preflight {
    /// Problems that stop the run (exit 4).
    pub errors: Diagnostics,
    /// Warnings (grouped across hosts).
    pub warnings: Vec<String>,
}

fn group_hosts(hosts: &[String]) -> String {
    if hosts.len() <= 3 {
        hosts.join(", ")
    } else {
        format!("{}, {} and {} more", hosts[0], hosts[1], hosts.len() - 2)
    }
}

impl Executor {
    /// Validate every module task of every play for every host it will run on.
    pub fn preflight(self: &Arc<Self>, playbooks: &[Playbook]) -> Preflight {
        // (location, message) -> hosts
        let mut errors: BTreeMap<(String, u64, u64, String), Vec<String>> = BTreeMap::new();
        let mut warnings: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for pb in playbooks {
            let dir = pb
                .path
                .parent()
                .map(std::path::PathBuf::from)
                .unwrap_or_default();
            for (i, play) in pb.plays.iter().enumerate() {
                let (hosts, _) = self.play_hosts(play);
                if hosts.is_empty() {
                    continue;
                }
                let rt = self.prepare_play(play.clone(), i, dir.clone(), hosts.clone());
                let mut tasks: Vec<&Task> = rt
                    .sections
                    .iter()
                    .flat_map(|(_, ts)| crate::playbook::leaves(ts))
                    .collect();
                tasks.extend(crate::playbook::leaves(&rt.handlers));
                for h in &hosts {
                    let hs = self.host_state(h);
                    // A vars_files entry that cannot be loaded yet is left out: what needs it is checked when
                    // it runs (where a missing file fails the host).
                    let base = self
                        .host_play_layers(&hs, &rt, &hosts, VarsFiles::BestEffort, &Arc::default())
                        .unwrap_or_default();
                    for t in &tasks {
                        self.preflight_task(&hs, t, &rt, &base, &mut errors, &mut warnings);
                    }
                }
            }
        }
        let mut out = Preflight::default();
        for ((file, line, col, msg), hosts) in errors {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            out.errors.push(
                Diagnostic::at(file, line, col, format!("{}: {msg}", group_hosts(&hosts)))
                    .with_source(&text),
            );
        }
        for (msg, hosts) in warnings {
            out.warnings.push(format!("{}: {msg}", group_hosts(&hosts)));
        }
        out
    }

    fn preflight_task(
        &self,
        hs: &HostState,
        t: &Task,
        rt: &PlayRt,
        base: &[Arc<Vars>],
        errors: &mut BTreeMap<(String, u64, u64, String), Vec<String>>,
        warnings: &mut BTreeMap<String, Vec<String>>,
    ) {
        let host = hs.name.as_str();
        let TaskKind::Module { module, args } = &t.kind else {
            return;
        };
        if t.loop_.is_some() {
            return;
        }
        let Some(m) = self.registry.get(module) else {
            return;
        };
        // The same stack the task will run with (layers.rs), minus what only the run knows. What its renders
        // warn about (a lookup with errors='warn') is said when the task runs, once.
        let task = layers::task_layers(t, &rt.playbook_dir);
        let tcx = Context::new(&self.templar, self.layers(base, &[], &task, hs));
        // A task whose `when` is false for this host is not validated for it.
        for w in &t.when {
            match tcx.eval_condition(w, "when") {
                Ok(false) => return,
                Ok(true) => {}
                Err(_) => break,
            }
        }
        let rendered = match tcx.render_value(args, "args") {
            Ok(v) => crate::template::drop_omit(v),
            // Depends on something only known at run time (registered values, facts): checked then.
            Err(e) if e.undefined => return,
            Err(e) => {
                errors
                    .entry(key(t, format!("{}: {}", t.display_name(), e.message)))
                    .or_default()
                    .push(host.to_string());
                return;
            }
        };
        let search = rt.search_dirs(t);
        let acx = crate::modules::ArgCtx {
            host,
            vars: &tcx,
            search: &search,
        };
        match m.preflight(&rendered, &acx) {
            Ok(ws) => {
                for w in ws {
                    warnings.entry(w).or_default().push(host.to_string());
                }
            }
            Err(e) => errors
                .entry(key(
                    t,
                    format!("task '{}': {}", t.display_name(), e.message),
                ))
                .or_default()
                .push(host.to_string()),
        }
    }
}

fn key(t: &Task, msg: String) -> (String, u64, u64, String) {
    (t.loc.file.display().to_string(), t.loc.line, t.loc.col, msg)
}
