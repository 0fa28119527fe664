//! One attempt of one task on one host: render the arguments, parse them once into the module's types, let the
//! module plan (read-only), then apply the plan's steps and hand the results back to the module to interpret.
//!
//! Every task sees the effects of the tasks before it: the paths a change writes or touches are re-stated in the
//! same round trip as the change (the fact cache learns their new state for free), command facts it touched are
//! forgotten, and after steps whose effects are unknown (`command`, `shell`) the whole cache is invalidated, so
//! the next question re-gathers everything the play asks about in one round trip.
//!
//! A plan that may cut the device off ([`CutOff`](crate::modules::CutOff)) arms the dead-man revert in its first
//! write's round trip, before the files are replaced (`deadman.rs`; the window comes from `deadman_window`).
//!
//! Check mode is the same path stopped early ([`Decision::in_check_mode`]): read-only steps still run, a
//! change is reported without running, and steps whose effects are unknown are skipped. A module's check
//! matrix (verification results) and findings (maintenance) go to the report as they are: this file does not
//! know what they mean.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::deadman::{self, ArmRequest};
use super::host::{HostRun, ItemResult};
use super::tasks::{failed, skipped, transport_failure};
use crate::facts::gather::{parse_restat, split_restat, with_restat};
use crate::modules::{
    ArgCtx, Decision, Effects, InCheckMode, Interpret, Module, Outcome, Plan, PlanCtx, Ran, Step,
    Touched, UNPREDICTABLE_IN_CHECK,
};
use crate::playbook::Task;
use crate::report::{Event, TaskStatus};
use crate::template::context::Context;
use crate::transport::{Become, Output, SharedTransport, TransportError};

/// What applying a plan's steps gave: the commands' outputs, or a failure of the executor's own steps.
enum Applied {
    /// One entry per command that ran (stops after the first that failed), and the backups made beside
    /// files (`backup: yes`).
    Ran(Vec<(String, Output)>, Vec<String>),
    /// A write or directory step failed: the message.
    Failed(String),
}

impl HostRun {
    /// Render, plan and (unless checking) apply once.
    pub(super) async fn attempt(
        &self,
        t: &Task,
        m: &Arc<dyn Module>,
        args: &Value,
        cx: &Context,
    ) -> ItemResult {
        let name = format!("task '{}' ({})", t.display_name(), t.loc);
        let rendered = match cx.render_value(args, &name) {
            Ok(v) => crate::template::drop_omit(v),
            Err(e) => return failed(e.message),
        };
        let search = self.search_dirs(t);
        // Parsed once for this attempt: pre-flight and plan share the typed arguments.
        let prepared = match m.prepare(&rendered) {
            Ok(p) => p,
            Err(e) => return failed(e.message),
        };
        let acx = ArgCtx {
            host: self.host(),
            vars: cx,
            search: &search,
        };
        match prepared.preflight(&acx) {
            Ok(warnings) => {
                for w in warnings {
                    self.warn(w);
                }
            }
            Err(e) => return failed(e.message),
        }
        let local;
        let transport = if t.delegate_to.is_some() {
            local = crate::transport::local::LocalTransport::new("localhost");
            let lt: SharedTransport = Arc::new(local);
            lt
        } else {
            self.transport.clone()
        };
        let become_ = self.become_for(Some(t), cx);
        let check = t.check_mode.unwrap_or(self.ex.opts.check);
        let diff_mode = t.diff.unwrap_or(self.ex.opts.diff);
        let pcx = PlanCtx {
            host: &self.hs.name,
            vars: cx,
            search: &search,
            check,
            diff: diff_mode,
            become_: become_.clone(),
            timeout: t.timeout.map(Duration::from_secs),
            environment: match &t.environment {
                Some(env) => match cx.render_value(env, &name) {
                    Ok(Value::Object(m)) => m
                        .into_iter()
                        .map(|(k, v)| {
                            let v = match v {
                                Value::String(s) => s,
                                other => other.to_string(),
                            };
                            (k, v)
                        })
                        .collect(),
                    Ok(_) => return failed("environment must be a mapping of NAME: value".into()),
                    Err(e) => return failed(format!("environment: {}", e.message)),
                },
                None => Vec::new(),
            },
            facts: &self.hs.facts,
            transport: &transport,
        };
        let plan = match prepared.plan(&pcx).await {
            Ok(p) => p,
            Err(crate::modules::ModuleError::Transport(e)) => return transport_failure(e),
            Err(e) => return failed(e.to_string()),
        };
        let Plan {
            decision,
            diffs,
            result,
            msg,
            warnings,
            set_facts,
            touched,
            cut_off,
        } = plan;
        // A change that may cut the device off arms the dead-man revert with its write (not for the controller
        // itself: a local connection or a delegated task).
        let arm = match cut_off {
            Some(c) if t.delegate_to.is_none() && self.hs.deadman.remote() => {
                let v = match cx.get(deadman::WINDOW_VAR) {
                    Ok(Some(Value::String(s))) if s.contains("{{") => {
                        match cx.render_value(&Value::String(s), &name) {
                            Ok(v) => Some(v),
                            Err(e) => return failed(e.message),
                        }
                    }
                    Ok(v) => v,
                    Err(e) => return failed(e.message),
                };
                match deadman::window(v.as_ref(), c.previous) {
                    Ok(Some(window)) => Some(ArmRequest { cut_off: c, window }),
                    Ok(None) => None,
                    Err(e) => return failed(e),
                }
            }
            _ => None,
        };
        for w in warnings {
            self.warn(w);
        }
        // Under --diff the registered result carries the diffs as Ansible's do: before/after with headers.
        let result_diff = (diff_mode && !diffs.is_empty()).then(|| {
            Value::Array(
                diffs
                    .iter()
                    .map(|d| {
                        let text = |t: &Option<String>| {
                            if d.secret {
                                json!("<secret>")
                            } else {
                                json!(t.clone().unwrap_or_default())
                            }
                        };
                        json!({
                            "before_header": d.path,
                            "after_header": d.path,
                            "before": text(&d.before),
                            "after": text(&d.after),
                        })
                    })
                    .collect(),
            )
        });
        let diff = if diff_mode && !diffs.is_empty() {
            let text: String = diffs.iter().map(super::apply::render_diff).collect();
            (!text.is_empty()).then_some(text)
        } else {
            None
        };
        if check && decision.in_check_mode() == InCheckMode::Skip {
            return skipped(UNPREDICTABLE_IN_CHECK);
        }
        let stop_here = check && decision.in_check_mode() == InCheckMode::Report;
        let outcome = match decision {
            Decision::Fail(msg) => {
                let mut result = result;
                result.insert("failed".into(), json!(true));
                result.insert("msg".into(), json!(msg));
                return ItemResult {
                    status: TaskStatus::Failed,
                    result,
                    msg: Some(msg),
                    diff,
                    unreachable: None,
                };
            }
            Decision::Skip(reason) => {
                let mut r = skipped(&reason);
                r.result.extend(result);
                return r;
            }
            Decision::Unchanged => Outcome {
                changed: false,
                result,
                msg,
                ..Outcome::default()
            },
            Decision::Change { effects, .. } if stop_here => Outcome {
                changed: effects.reported(),
                result,
                msg,
                ..Outcome::default()
            },
            Decision::Change {
                steps,
                state,
                effects,
            } => {
                let o = self
                    .run_steps(
                        steps,
                        state,
                        effects.reported(),
                        result,
                        msg,
                        &transport,
                        become_,
                        t,
                        &touched,
                        arm.as_ref(),
                    )
                    .await;
                if effects == Effects::Unknown {
                    self.hs.facts.invalidate();
                }
                match o {
                    Ok(o) => o,
                    Err(e) => return transport_failure(e),
                }
            }
            Decision::ReadOnly { steps, state } => {
                match self
                    .run_steps(
                        steps, state, false, result, msg, &transport, become_, t, &touched, None,
                    )
                    .await
                {
                    Ok(o) => o,
                    Err(e) => return transport_failure(e),
                }
            }
        };
        for w in &outcome.warnings {
            self.warn(w.clone());
        }
        if let Some(m) = &outcome.checks {
            self.ex.emit(Event::Verify {
                host: self.hs.name.clone(),
                checks: m.checks.clone(),
                passed: m.passed,
            });
        }
        if let Some(findings) = &outcome.findings {
            self.ex.emit(Event::Findings {
                host: self.hs.name.clone(),
                findings: findings.clone(),
            });
        }
        if let Some(f) = &set_facts {
            for (k, v) in f {
                self.hs.set_runtime(k, v.clone());
            }
        }
        let mut result = outcome.result;
        if let Some(d) = result_diff {
            result.entry("diff").or_insert(d);
        }
        result.insert("changed".into(), json!(outcome.changed));
        result.insert("failed".into(), json!(outcome.failed.is_some()));
        if let Some(msg) = outcome.msg.as_ref().or(outcome.failed.as_ref()) {
            result.entry("msg").or_insert(json!(msg));
        }
        let status = if outcome.failed.is_some() {
            TaskStatus::Failed
        } else if outcome.changed {
            TaskStatus::Changed
        } else {
            TaskStatus::Ok
        };
        ItemResult {
            status,
            result,
            msg: outcome.failed.or(outcome.msg),
            diff,
            unreachable: None,
        }
    }

    fn warn(&self, message: String) {
        self.ex.emit(Event::Warning {
            host: Some(self.hs.name.clone()),
            message,
        });
    }

    /// Apply the steps, then let the module interpret what they printed. A failed write or directory step
    /// fails the task without asking the module.
    #[allow(clippy::too_many_arguments)]
    async fn run_steps(
        &self,
        steps: Vec<Step>,
        interpret: Interpret,
        changed: bool,
        result: serde_json::Map<String, Value>,
        msg: Option<String>,
        transport: &SharedTransport,
        become_: Option<Become>,
        t: &Task,
        touched: &[Touched],
        arm: Option<&ArmRequest>,
    ) -> Result<Outcome, TransportError> {
        let applied = self
            .apply(&steps, transport, become_, t, touched, arm)
            .await;
        for touch in touched {
            if let Touched::Fact(key) = touch {
                self.hs.facts.forget_command(key);
            }
        }
        Ok(match applied? {
            Applied::Ran(outputs, backups) => {
                let mut o = interpret.run(Ran {
                    changed,
                    result,
                    msg,
                    outputs,
                });
                if let Some(b) = backups.into_iter().next() {
                    o.result.insert("backup_file".into(), json!(b));
                }
                o
            }
            Applied::Failed(failed) => Outcome {
                failed: Some(failed),
                result,
                ..Outcome::default()
            },
        })
    }

    /// Execute steps in order; stop at the first failing command. A guarded step's output is judged at once and,
    /// when the judge refuses it, its rollback runs next and nothing after it. The device step that runs last also re-states
    /// the paths the plan touched; each write re-states what it wrote (and the directories it made).
    async fn apply(
        &self,
        steps: &[Step],
        transport: &SharedTransport,
        become_: Option<Become>,
        t: &Task,
        touched: &[Touched],
        mut arm: Option<&ArmRequest>,
    ) -> Result<Applied, TransportError> {
        let facts = &self.hs.facts;
        let touched_paths: Vec<(String, bool)> = touched
            .iter()
            .filter_map(|x| match x {
                Touched::Path(p) | Touched::Tree(p) => Some((p.clone(), true)),
                Touched::Fact(_) => None,
            })
            .collect();
        let last = steps.len().checked_sub(1);
        let mut restated_touched = touched_paths.is_empty();
        let mut outputs: Vec<(String, Output)> = Vec::new();
        let mut backups: Vec<String> = Vec::new();
        let mut pending_dirs: Vec<crate::modules::DirSpec> = Vec::new();
        let timeout = t.timeout.map(Duration::from_secs);
        for (i, step) in steps.iter().enumerate() {
            let with_touched = Some(i) == last && !touched_paths.is_empty();
            match step {
                Step::EnsureDirs(d) => {
                    pending_dirs.extend(d.iter().cloned());
                    // Folded into a following Write; otherwise run on their own.
                    if matches!(steps.get(i + 1), Some(Step::Write(_))) {
                        continue;
                    }
                    let dirs = std::mem::take(&mut pending_dirs);
                    let mut restat: Vec<(String, bool)> =
                        dirs.iter().map(|d| (d.path.clone(), false)).collect();
                    if with_touched {
                        restat.extend(touched_paths.iter().cloned());
                        restated_touched = true;
                    }
                    let mut e =
                        super::apply::dirs_and_write_exec(&dirs, &[], become_.clone(), timeout);
                    if !restat.is_empty() {
                        e.cmd = with_restat(e.cmd, &restat);
                    }
                    let mut o = transport.exec(e).await?;
                    self.absorb_restat(&mut o, &restat, false);
                    if !o.status.success() {
                        return Ok(Applied::Failed(format!(
                            "preparing directories failed ({}): {}",
                            o.status,
                            o.stderr_str().trim()
                        )));
                    }
                }
                Step::Exec { exec, what } => {
                    let mut e = exec.clone();
                    if with_touched {
                        e.cmd = with_restat(e.cmd, &touched_paths);
                        restated_touched = true;
                    }
                    let mut o = transport.exec(e).await?;
                    if with_touched {
                        self.absorb_restat(&mut o, &touched_paths, false);
                    }
                    let ok = o.status.success();
                    outputs.push((what.clone(), o));
                    if !ok {
                        break;
                    }
                }
                Step::Guarded {
                    exec,
                    what,
                    judge,
                    rollback,
                    rollback_what,
                } => {
                    // Touched paths are re-stated with the rollback when one runs; otherwise forgotten below.
                    let o = transport.exec(exec.clone()).await?;
                    if judge.judge(&o).is_ok() {
                        let ok = o.status.success();
                        outputs.push((what.clone(), o));
                        if !ok {
                            break;
                        }
                        continue;
                    }
                    outputs.push((what.clone(), o));
                    let mut e = rollback.clone();
                    if with_touched {
                        e.cmd = with_restat(e.cmd, &touched_paths);
                        restated_touched = true;
                    }
                    let mut r = transport.exec(e).await?;
                    if with_touched {
                        self.absorb_restat(&mut r, &touched_paths, false);
                    }
                    outputs.push((rollback_what.clone(), r));
                    break;
                }
                Step::Write(files) => {
                    let dirs = std::mem::take(&mut pending_dirs);
                    let mut e =
                        super::apply::dirs_and_write_exec(&dirs, files, become_.clone(), timeout);
                    // The dead-man revert is armed in the same round trip, before the files are written.
                    let arming = arm.take();
                    if let Some(req) = arming {
                        let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
                        e.cmd = match deadman::with_arm(&self.hs.deadman, req, &paths, e.cmd) {
                            Ok(c) => c,
                            Err(m) => return Ok(Applied::Failed(m)),
                        };
                    }
                    let mut restat: Vec<(String, bool)> = Vec::new();
                    for f in files {
                        if let Some(p) = &f.parent {
                            restat.push((p.path.clone(), false));
                        }
                    }
                    restat.extend(dirs.iter().map(|d| (d.path.clone(), false)));
                    // A file whose owner or group was not given belongs to whoever wrote it: ask.
                    restat.extend(
                        files
                            .iter()
                            .filter(|f| f.owner.is_none() || f.group.is_none())
                            .map(|f| (f.path.clone(), false)),
                    );
                    if with_touched {
                        restat.extend(touched_paths.iter().cloned());
                        restated_touched = true;
                    }
                    if !restat.is_empty() {
                        e.cmd = with_restat(e.cmd, &restat);
                    }
                    let mut o = transport.exec(e).await?;
                    if o.status.success() {
                        for f in files {
                            facts.wrote(
                                &f.path,
                                &f.content,
                                f.mode,
                                f.owner.as_deref(),
                                f.group.as_deref(),
                            );
                        }
                    }
                    self.absorb_restat(&mut o, &restat, true);
                    if let Some(req) = arming {
                        self.ex.deadman_armed(
                            &self.hs.name,
                            &self.hs.deadman,
                            req,
                            become_.clone(),
                            &o.stdout,
                        );
                    }
                    backups.extend(
                        super::apply::backups_made(files, &o.stdout)
                            .into_iter()
                            .map(|(_, b)| b),
                    );
                    if !o.status.success() {
                        let err = o.stderr_str();
                        return Ok(Applied::Failed(format!(
                            "writing {} failed ({}): {}",
                            files
                                .iter()
                                .map(|f| f.path.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                            o.status,
                            err.trim()
                        )));
                    }
                }
            }
        }
        if !restated_touched {
            for (p, _) in &touched_paths {
                facts.forget(p);
            }
        }
        for touch in touched {
            if let Touched::Tree(p) = touch {
                facts.forget_under(p);
            }
        }
        Ok(Applied::Ran(outputs, backups))
    }

    /// Take the re-stat off a step's output and into the fact cache; without one (the step's shell exited
    /// early), forget the paths instead. `written`: the files' content is what the step wrote.
    fn absorb_restat(&self, o: &mut Output, paths: &[(String, bool)], written: bool) {
        let facts = &self.hs.facts;
        let (own, restat) = split_restat(&o.stdout);
        let found = restat
            .map(|r| parse_restat(paths, &String::from_utf8_lossy(r)))
            .unwrap_or_default();
        let own = own.to_vec();
        for (p, _) in paths {
            if !found.iter().any(|f| &f.path == p) {
                facts.forget(p);
            }
        }
        facts.restated(found, written);
        o.stdout = own;
    }
}
