//! One attempt of one task on one host: render the arguments, let the module plan (read-only), then apply the
//! plan's steps (unless in check mode) and hand the outputs back to the module to interpret.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::host::{HostRun, ItemResult};
use super::tasks::{failed, skipped, transport_failure};
use crate::modules::{Module, Outcome, Plan, PlanCtx, Step};
use crate::playbook::Task;
use crate::report::{Event, TaskStatus};
use crate::template::context::Context;
use crate::transport::{Become, Output, SharedTransport, TransportError};

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
        match m.preflight(&rendered, self.host(), cx) {
            Ok(warnings) => {
                for w in warnings {
                    self.ex.emit(Event::Warning {
                        host: Some(self.hs.name.clone()),
                        message: w,
                    });
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
        let search = self.search_dirs(t);
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
        let plan = match m.plan(&rendered, &pcx).await {
            Ok(p) => p,
            Err(crate::modules::ModuleError::Transport(e)) => return transport_failure(e),
            Err(e) => return failed(e.to_string()),
        };
        for w in &plan.warnings {
            self.ex.emit(Event::Warning {
                host: Some(self.hs.name.clone()),
                message: w.clone(),
            });
        }
        let diff = if diff_mode && !plan.diffs.is_empty() {
            let text: String = plan.diffs.iter().map(super::apply::render_diff).collect();
            (!text.is_empty()).then_some(text)
        } else {
            None
        };
        if let Some(msg) = &plan.failed {
            let mut result = plan.result.clone();
            result.insert("failed".into(), json!(true));
            result.insert("msg".into(), json!(msg));
            return ItemResult {
                status: TaskStatus::Failed,
                result,
                msg: Some(msg.clone()),
                diff,
                unreachable: None,
            };
        }
        if let Some(reason) = &plan.skip {
            let mut r = skipped(reason);
            r.result.extend(plan.result.clone());
            return r;
        }
        if check && plan.skip_in_check {
            return skipped("skipped in check mode (this module cannot predict its effect)");
        }
        let outcome = if check && !plan.read_only {
            Outcome {
                changed: plan.changed,
                result: plan.result.clone(),
                msg: plan.msg.clone(),
                ..Outcome::default()
            }
        } else {
            match self.apply(&plan, m, &transport, become_, t).await {
                Ok(o) => o,
                Err(e) => return transport_failure(e),
            }
        };
        for w in &outcome.warnings {
            self.ex.emit(Event::Warning {
                host: Some(self.hs.name.clone()),
                message: w.clone(),
            });
        }
        if let Some((checks, passed)) = &outcome.verify {
            self.ex.emit(Event::Verify {
                host: self.hs.name.clone(),
                checks: checks.clone(),
                passed: *passed,
            });
        }
        if let Some(f) = &plan.set_facts {
            for (k, v) in f {
                self.hs.set_runtime(k, v.clone());
            }
        }
        let mut result = outcome.result;
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

    /// Execute a plan's steps in order; stop at the first failing command.
    pub(super) async fn apply(
        &self,
        plan: &Plan,
        m: &Arc<dyn Module>,
        transport: &SharedTransport,
        become_: Option<Become>,
        t: &Task,
    ) -> Result<Outcome, TransportError> {
        let mut outputs: Vec<Output> = Vec::new();
        let mut pending_dirs: Vec<crate::modules::DirSpec> = Vec::new();
        let n = plan.steps.len();
        for (i, step) in plan.steps.iter().enumerate() {
            match step {
                Step::EnsureDirs(d) => {
                    pending_dirs.extend(d.iter().cloned());
                    // Folded into a following Write; otherwise run on their own.
                    if matches!(plan.steps.get(i + 1), Some(Step::Write(_))) {
                        continue;
                    }
                    let e = super::apply::dirs_and_write_exec(
                        &std::mem::take(&mut pending_dirs),
                        &[],
                        become_.clone(),
                        t.timeout.map(Duration::from_secs),
                    );
                    let o = transport.exec(e).await?;
                    if !o.status.success() {
                        return Ok(Outcome {
                            failed: Some(format!(
                                "preparing directories failed ({}): {}",
                                o.status,
                                o.stderr_str().trim()
                            )),
                            result: plan.result.clone(),
                            ..Outcome::default()
                        });
                    }
                    let _ = n;
                }
                Step::Exec { exec, .. } => {
                    let o = transport.exec(exec.clone()).await?;
                    let ok = o.status.success();
                    outputs.push(o);
                    if !ok {
                        break;
                    }
                }
                Step::Write(files) => {
                    let e = super::apply::dirs_and_write_exec(
                        &std::mem::take(&mut pending_dirs),
                        files,
                        become_.clone(),
                        t.timeout.map(Duration::from_secs),
                    );
                    let o = transport.exec(e).await?;
                    if !o.status.success() {
                        let err = o.stderr_str();
                        return Ok(Outcome {
                            changed: false,
                            failed: Some(format!(
                                "writing {} failed ({}): {}",
                                files
                                    .iter()
                                    .map(|f| f.path.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                o.status,
                                err.trim()
                            )),
                            result: plan.result.clone(),
                            msg: None,
                            ..Outcome::default()
                        });
                    }
                    for f in files {
                        self.hs.facts.wrote(
                            &f.path,
                            &f.content,
                            f.mode,
                            f.owner.as_deref(),
                            f.group.as_deref(),
                        );
                    }
                }
            }
        }
        if plan.invalidates_facts {
            self.hs.facts.forget_all();
        }
        Ok(m.interpret(plan, &outputs))
    }
}
