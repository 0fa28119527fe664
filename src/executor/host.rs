//! The per-host run of a play: connect (once per device per run), take the host's variable layers (ordered by
//! `layers.rs`, never here), gather every fact the play needs in one batch, make sure the run holds its lock on
//! the device (a device locked by another run is reported unreachable, with the holder), then run the sections
//! and flush handlers. A play that armed a dead-man revert on the host ends by confirming it from a new
//! connection (`deadman.rs`); a device that rolled back by itself leaves the play unreachable, with that reason.
//!
//! A failure on this host is data: it ends this host's play and is counted; it never returns an error that
//! could stop other hosts. The task loop is in `tasks.rs`, blocks in `blocks.rs`, handlers in `handlers.rs`,
//! includes in `includes.rs`, and planning/applying one task in `attempt.rs`.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use super::layers::{TaskLayers, VarsFiles};
use super::{Executor, HostState, PlayRt};
use crate::facts::FactReq;
use crate::playbook::{Task, TaskKind};
use crate::report::{Event, HostStatus, TaskStatus};
use crate::template::context::{Context, Warnings};
use crate::transport::{Become, SharedTransport, TransportError};
use crate::vars::Vars;

/// How running a list of tasks ended for this host.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Flow {
    Continue,
    Failed(String),
    Unreachable(String),
    EndHost,
    EndPlay,
    Stopped,
}

/// The result of one module run (one loop item).
#[derive(Debug, Clone)]
pub(crate) struct ItemResult {
    pub status: TaskStatus,
    pub result: Map<String, Value>,
    pub msg: Option<String>,
    pub diff: Option<String>,
    pub unreachable: Option<String>,
}

pub(super) type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a host of a lockstep play moves: it waits for its batch before each task, and holds a fork only while
/// it runs one.
pub(crate) struct Stepping {
    pub lockstep: Arc<super::lockstep::Lockstep>,
    pub forks: Arc<tokio::sync::Semaphore>,
    /// Which serial batch (0-based), for messages.
    pub batch_index: usize,
}

pub(crate) struct HostRun {
    pub(super) ex: Arc<Executor>,
    pub(super) hs: Arc<HostState>,
    pub(super) rt: Arc<PlayRt>,
    pub(super) base: Vec<Arc<Vars>>,
    pub(super) scope: Vec<Arc<Vars>>,
    pub(super) transport: SharedTransport,
    pub(super) notified: Vec<String>,
    pub(super) dyn_handlers: Vec<Task>,
    pub(super) handler_mode: bool,
    /// The last task that failed on this host and its full result (`ansible_failed_task` and
    /// `ansible_failed_result` in a rescue).
    pub(super) last_failed: std::sync::Mutex<Option<(String, Value)>>,
    /// Lockstep plays: the batch's barrier and the forks, and the fork this host holds while it runs a task.
    pub(super) stepping: Option<Stepping>,
    pub(super) permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// How many times this host reached each `run_once` task in this play (a task file included twice
    /// runs its `run_once` tasks twice).
    pub(super) run_once_seen: std::collections::HashMap<String, usize>,
    /// This host's serial batch.
    pub(super) batch: Arc<Vec<String>>,
    /// The run's `fail_gen` when the magic variables in `base` were built.
    pub(super) magic_gen: u64,
    /// What this host's renders want to tell the operator (`lookup(..., errors='warn')`), reported as
    /// warnings about the host by [`HostRun::report_warnings`].
    pub(super) warnings: Arc<Warnings>,
}

impl Executor {
    /// Run one play on one host. Never fails: failures are recorded on the host. Returns whether the host went
    /// through the play to its end (false: it failed, or the run stopped before it was done).
    pub(crate) async fn run_host_play(
        self: Arc<Self>,
        hs: Arc<HostState>,
        rt: Arc<PlayRt>,
        batch: Arc<Vec<String>>,
        stepping: Option<Stepping>,
    ) -> bool {
        if self.interrupted.load(Ordering::SeqCst) || hs.is_out() {
            return false;
        }
        #[cfg(debug_assertions)]
        super::debug_hooks::maybe_panic(&hs);
        if let Ok(mut s) = hs.started.lock() {
            s.get_or_insert_with(Instant::now);
        }
        let fut = self
            .clone()
            .run_host_play_inner(hs.clone(), rt, batch, stepping);
        let flow = match self.opts.device_timeout {
            Some(t) => match tokio::time::timeout(t, fut).await {
                Ok(f) => f,
                Err(_) => Flow::Failed(format!("device deadline of {}s exceeded", t.as_secs())),
            },
            None => fut.await,
        };
        match flow {
            Flow::Failed(msg) => hs.mark_out(HostStatus::Failed, msg, &self.fail_gen),
            Flow::Unreachable(msg) => hs.mark_out(HostStatus::Unreachable, msg, &self.fail_gen),
            Flow::Continue | Flow::EndHost | Flow::EndPlay => return true,
            Flow::Stopped => {}
        }
        false
    }

    async fn connect(
        &self,
        hs: &HostState,
        cx: &Context,
    ) -> Result<SharedTransport, TransportError> {
        let mut guard = hs.transport.lock().await;
        if let Some(t) = guard.as_ref() {
            return Ok(t.clone());
        }
        // Connection variables may be templates ("{{ ip }}"): render them with the host's variables.
        let mut conn = Vars::new();
        for (k, _) in cx.flatten() {
            if k.starts_with("ansible_") {
                if let Ok(Some(v)) = cx.get(&k) {
                    conn.insert(k, v);
                }
            }
        }
        for key in [
            "ansible_password",
            "ansible_ssh_pass",
            "ansible_become_password",
            "ansible_become_pass",
            "ansible_ssh_private_key_passphrase",
        ] {
            if let Some(Value::String(s)) = conn.get(key) {
                crate::redact::register(s);
            }
        }
        let spec = crate::inventory::conn_spec(&hs.name, &conn)
            .map_err(|d| TransportError::Other(d.message))?;
        hs.deadman.set_spec(&spec);
        self.emit(Event::HostConnecting {
            host: hs.name.clone(),
        });
        let start = Instant::now();
        let t = if spec.connection == "local" {
            self.local.connect(&spec).await
        } else {
            self.connector.connect(&spec).await
        };
        self.report_connector_warnings();
        let t = t?;
        self.emit(Event::HostConnected {
            host: hs.name.clone(),
            elapsed: start.elapsed(),
        });
        let t = if self.opts.log_commands {
            super::logged::Logged::wrap(t, self.sink.clone())
        } else {
            t
        };
        *guard = Some(t.clone());
        Ok(t)
    }

    async fn run_host_play_inner(
        self: Arc<Self>,
        hs: Arc<HostState>,
        rt: Arc<PlayRt>,
        batch: Arc<Vec<String>>,
        stepping: Option<Stepping>,
    ) -> Flow {
        // Lockstep: connecting takes a fork too (given back at the first task's step).
        let permit = match &stepping {
            Some(s) => s.forks.clone().acquire_owned().await.ok(),
            None => None,
        };
        let warnings = Arc::new(Warnings::default());
        let magic_gen = self.fail_gen.load(Ordering::SeqCst);
        let base = self.host_play_layers(&hs, &rt, &batch, VarsFiles::Required, &warnings);
        self.report_warnings(&hs.name, &warnings);
        let base = match base {
            Ok(b) => b,
            Err(e) => return Flow::Failed(e),
        };
        let cx = Context::collecting(
            &self.templar,
            self.layers(&base, &[], &TaskLayers::default(), &hs),
            warnings.clone(),
        );
        let connected = self.connect(&hs, &cx).await;
        self.report_warnings(&hs.name, &warnings);
        let transport = match connected {
            Ok(t) => t,
            Err(e) => {
                let msg = crate::redact::redact(&e.to_string()).into_owned();
                self.emit(Event::HostUnreachable {
                    host: hs.name.clone(),
                    error: msg.clone(),
                });
                if rt.play.ignore_unreachable {
                    return Flow::Continue;
                }
                return Flow::Unreachable(msg);
            }
        };
        let mut run = HostRun {
            ex: self.clone(),
            hs: hs.clone(),
            rt: rt.clone(),
            base,
            scope: vec![],
            transport,
            notified: vec![],
            dyn_handlers: vec![],
            handler_mode: false,
            last_failed: std::sync::Mutex::new(None),
            stepping,
            permit,
            run_once_seen: Default::default(),
            batch,
            magic_gen,
            warnings,
        };
        let gathered = run.prefetch().await;
        // The run lock (taken while connecting, waited for by the first command, here the gather's): a device
        // another run holds is left alone, whatever `ignore_unreachable` says, since every command would be
        // refused anyway. Without a gather the first task's command waits for it and fails the same way
        // (waiting here would cost that command a round trip: it could not open its channel meanwhile).
        let lock = if gathered {
            run.transport.locked().await
        } else {
            Ok(())
        };
        if let Err(e) = lock {
            let msg = crate::redact::redact(&e.to_string()).into_owned();
            self.emit(Event::HostUnreachable {
                host: hs.name.clone(),
                error: msg.clone(),
            });
            return Flow::Unreachable(msg);
        }
        let flow = run.run_sections().await;
        // A change that may have cut the device off is kept only once a new connection reaches it.
        if hs.deadman.is_armed() {
            if let Some(msg) = self.deadman_confirm(&hs.name, &hs.deadman).await {
                self.emit(Event::HostUnreachable {
                    host: hs.name.clone(),
                    error: msg.clone(),
                });
                return Flow::Unreachable(msg);
            }
        }
        flow
    }

    pub(super) fn load_vars_file(
        &self,
        name: &str,
        rt: &PlayRt,
        cx: &Context,
    ) -> Result<Arc<Vars>, String> {
        let rendered = cx.render_str(name, "vars_files").map_err(|e| e.message)?;
        let p = PathBuf::from(&rendered);
        let path = if p.is_absolute() {
            p
        } else {
            rt.playbook_dir.join(p)
        };
        if let Some(v) = self
            .vars_files
            .lock()
            .ok()
            .and_then(|m| m.get(&path).cloned())
        {
            return Ok(v);
        }
        let value = if path.extension().map(|e| e == "age").unwrap_or(false) {
            crate::vars::secrets::load_vars_file(&path).map_err(|d| d.to_string())?
        } else {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("vars_files: cannot read {}: {e}", path.display()))?;
            crate::yaml::parse_value(&text, &path).map_err(|d| d.to_string())?
        };
        let vars = match value {
            Value::Object(m) => Arc::new(m),
            Value::Null => Arc::new(Vars::new()),
            _ => {
                return Err(format!(
                    "vars_files: {} must contain a mapping of variables",
                    path.display()
                ))
            }
        };
        if let Ok(mut m) = self.vars_files.lock() {
            m.insert(path, vars.clone());
        }
        Ok(vars)
    }

    /// Report what renders collected, as warnings about `host`.
    pub(super) fn report_warnings(&self, host: &str, warnings: &Warnings) {
        for message in warnings.take() {
            self.emit(Event::Warning {
                host: Some(host.to_string()),
                message,
            });
        }
    }

    /// A context over play layers and scope layers, with runtime variables and extra vars on top (see
    /// `layers.rs` for the order).
    pub(crate) fn context(
        &self,
        base: &[Arc<Vars>],
        scope: &[Arc<Vars>],
        hs: &HostState,
    ) -> Context {
        Context::new(
            &self.templar,
            self.layers(base, scope, &TaskLayers::default(), hs),
        )
    }
}

impl HostRun {
    /// The play's sections, each followed by its handlers.
    async fn run_sections(&mut self) -> Flow {
        let sections = self.rt.sections.clone();
        for (_name, tasks) in &sections {
            if tasks.is_empty() {
                continue;
            }
            match self.run_list(tasks).await {
                Flow::Continue => {}
                Flow::EndPlay | Flow::EndHost => return Flow::Continue,
                other => return other,
            }
            match self.flush_handlers().await {
                Flow::Continue => {}
                Flow::EndPlay | Flow::EndHost => return Flow::Continue,
                other => return other,
            }
        }
        Flow::Continue
    }

    pub(super) fn host(&self) -> &str {
        &self.hs.name
    }

    /// The context a task renders in: the whole precedence stack (`layers.rs`) for this host and task. Its
    /// renders' warnings are the host's ([`HostRun::report_warnings`]).
    pub(super) fn task_context(&self, t: &Task) -> Context {
        self.task_context_into(t, self.warnings.clone())
    }

    fn task_context_into(&self, t: &Task, warnings: Arc<Warnings>) -> Context {
        let task = super::layers::task_layers(t, &self.rt.playbook_dir);
        Context::collecting(
            &self.ex.templar,
            self.ex.layers(&self.base, &self.scope, &task, &self.hs),
            warnings,
        )
    }

    /// Lockstep plays: give back the fork, wait until every host of the batch finished the task under way,
    /// take a fork again. Returns false when the play was stopped meanwhile (`any_errors_fatal`,
    /// `max_fail_percentage`): this host starts no other task.
    pub(super) async fn step(&mut self) -> bool {
        let Some(s) = &self.stepping else {
            return true;
        };
        self.permit = None;
        s.lockstep.step().await;
        let (forks, bi) = (s.forks.clone(), s.batch_index);
        // Every host that failed the task has left the barrier by now, failure recorded.
        let failed = self
            .batch
            .iter()
            .filter(|h| self.ex.host_state(h).is_out())
            .count();
        if let Some(reason) = self.rt.over_max_fail(failed, self.batch.len(), bi) {
            self.rt.stop_play(reason);
        }
        if self.rt.abort.load(Ordering::SeqCst) {
            return false;
        }
        self.permit = forks.acquire_owned().await.ok();
        true
    }

    /// Rebuild the magic variables when a host failed since they were built, so `ansible_play_hosts` and
    /// `ansible_play_batch` leave it out (only when a template uses them).
    pub(super) fn refresh_magic(&mut self) {
        if !self.ex.refs.play_hosts {
            return;
        }
        let gen = self.ex.fail_gen.load(Ordering::SeqCst);
        if gen == self.magic_gen {
            return;
        }
        self.magic_gen = gen;
        let magic = Arc::new(self.ex.magic_vars(&self.hs.name, &self.rt, &self.batch));
        if let Some(l) = self.base.get_mut(super::layers::MAGIC_LAYER) {
            *l = magic;
        }
    }

    /// Report the warnings this host's renders raised so far (before a task's result, and after each task).
    pub(super) fn report_warnings(&self) {
        self.ex.report_warnings(&self.hs.name, &self.warnings);
    }

    /// Gather, in one round trip, every fact the play's tasks will ask for. Returns whether it contacted the
    /// device.
    pub(super) async fn prefetch(&mut self) -> bool {
        let mut reqs: Vec<FactReq> = Vec::new();
        let sections = self.rt.sections.clone();
        let handlers = self.rt.handlers.clone();
        let mut tasks: Vec<&Task> = sections
            .iter()
            .flat_map(|(_, ts)| crate::playbook::leaves(ts))
            .collect();
        tasks.extend(crate::playbook::leaves(&handlers));
        for t in tasks {
            let TaskKind::Module { module, args } = &t.kind else {
                continue;
            };
            if t.delegate_to.is_some() || !self.ex.tags_allow(t) {
                continue;
            }
            let Some(m) = self.ex.registry.get(module) else {
                continue;
            };
            if m.local_only() {
                continue;
            }
            // A look ahead: what its renders would warn about is said when the task itself renders.
            let cx = self.task_context_into(t, Arc::default());
            // Loop items too, when the loop list is already known.
            let contexts: Vec<Context> = match &t.loop_ {
                None => vec![cx],
                Some(l) => match cx.render_value(l, "prefetch") {
                    Ok(Value::Array(items)) if items.len() <= 256 => {
                        let var = t
                            .loop_control
                            .loop_var
                            .clone()
                            .unwrap_or_else(|| "item".into());
                        items
                            .into_iter()
                            .map(|i| {
                                let mut v = Vars::new();
                                v.insert(var.clone(), i);
                                cx.with_layer(Arc::new(v))
                            })
                            .collect()
                    }
                    _ => vec![],
                },
            };
            for icx in contexts {
                let Ok(rendered) = icx.render_value(args, "prefetch") else {
                    continue;
                };
                for r in m.prefetch(&crate::template::drop_omit(rendered), &icx) {
                    if !reqs.contains(&r) {
                        reqs.push(r);
                    }
                }
            }
        }
        if self.ex.refs.facts {
            reqs.push(FactReq::Command {
                key: "__setup".into(),
                cmd: crate::facts::setup::cmd(),
            });
        }
        if reqs.is_empty() {
            return false;
        }
        let become_ = self.play_become();
        // A failed prefetch is not fatal: each module fetches what it needs itself.
        let _ = self
            .hs
            .facts
            .gather(&self.transport, &reqs, become_.clone())
            .await;
        if self.ex.refs.facts {
            if let Ok(o) = self
                .hs
                .facts
                .command(
                    &self.transport,
                    "__setup",
                    crate::facts::setup::cmd(),
                    become_,
                )
                .await
            {
                let facts = crate::facts::setup::parse(&o.stdout_str());
                for (k, v) in &facts {
                    self.hs.set_runtime(k, v.clone());
                }
                self.hs.set_runtime(
                    "ansible_facts",
                    Value::Object(
                        facts
                            .into_iter()
                            .map(|(k, v)| (k.trim_start_matches("ansible_").to_string(), v))
                            .collect(),
                    ),
                );
            }
        }
        true
    }

    pub(super) fn play_become(&self) -> Option<Become> {
        let cx = self.ex.context(&self.base, &[], &self.hs);
        self.become_for(None, &cx)
    }

    /// The become settings for a task: task keyword > play keyword > `ansible_become` variable.
    pub(super) fn become_for(&self, t: Option<&Task>, cx: &Context) -> Option<Become> {
        become_for(&self.rt.play, t, cx)
    }

    pub(super) fn search_dirs(&self, t: &Task) -> Vec<PathBuf> {
        self.rt.search_dirs(t)
    }
}

impl Executor {
    /// Does `--tags` / `--skip-tags` allow this task?
    pub(crate) fn tags_allow(&self, t: &Task) -> bool {
        let has = |x: &str| t.tags.iter().any(|g| g == x);
        if self.opts.skip_tags.iter().any(|s| has(s) || (s == "all")) {
            return false;
        }
        if has("never") && !self.opts.tags.iter().any(|s| has(s) && s != "never") {
            return false;
        }
        if self.opts.tags.is_empty() || self.opts.tags.iter().any(|s| s == "all") {
            return true;
        }
        if has("always") {
            return true;
        }
        self.opts.tags.iter().any(|s| {
            has(s)
                || (s == "tagged" && !t.tags.is_empty())
                || (s == "untagged" && t.tags.is_empty())
        })
    }
}

/// The become settings for a task (None: the play's): task keyword > play keyword > `ansible_become` variable.
pub(super) fn become_for(
    play: &crate::playbook::Play,
    t: Option<&Task>,
    cx: &Context,
) -> Option<Become> {
    let var_bool = |k: &str| -> Option<bool> {
        match cx.get(k).ok().flatten()? {
            Value::Bool(b) => Some(b),
            Value::String(s) => Some(matches!(
                s.to_ascii_lowercase().as_str(),
                "yes" | "true" | "on" | "1"
            )),
            Value::Number(n) => Some(n.as_i64() != Some(0)),
            _ => None,
        }
    };
    let on = t
        .and_then(|t| t.become_)
        .or(play.become_)
        .or_else(|| var_bool("ansible_become"))
        .unwrap_or(false);
    if !on {
        return None;
    }
    let user = t
        .and_then(|t| t.become_user.clone())
        .or_else(|| play.become_user.clone())
        .or_else(|| {
            cx.get("ansible_become_user")
                .ok()
                .flatten()
                .and_then(|v| v.as_str().map(String::from))
        })
        .unwrap_or_else(|| "root".into());
    let password = ["ansible_become_password", "ansible_become_pass"]
        .iter()
        .find_map(|k| {
            cx.get(k)
                .ok()
                .flatten()
                .and_then(|v| v.as_str().map(String::from))
        });
    if let Some(p) = &password {
        crate::redact::register(p);
    }
    Some(Become { user, password })
}
