//! The per-host task loop: connect, gather facts in one batch, run sections and handlers.
//!
//! A failure on this host is data: it ends this host's play and is counted; it never returns an error that
//! could stop other hosts.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::{Executor, HostState, PlayRt};
use crate::facts::FactReq;
use crate::modules::{Module, Outcome, Plan, PlanCtx, Step};
use crate::playbook::{Cond, Task, TaskKind};
use crate::report::{Event, HostStatus, TaskStatus};
use crate::template::context::Context;
use crate::transport::{Become, Output, SharedTransport, TransportError};
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

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub(crate) struct HostRun {
    ex: Arc<Executor>,
    hs: Arc<HostState>,
    rt: Arc<PlayRt>,
    base: Vec<Arc<Vars>>,
    scope: Vec<Arc<Vars>>,
    transport: SharedTransport,
    notified: Vec<String>,
    dyn_handlers: Vec<Task>,
    handler_mode: bool,
    /// The last task that failed on this host and its message (for `ansible_failed_task` in rescue).
    last_failed: std::sync::Mutex<Option<(String, String)>>,
}

impl Executor {
    /// Run one play on one host. Never fails: failures are recorded on the host.
    pub(crate) async fn run_host_play(
        self: Arc<Self>,
        hs: Arc<HostState>,
        rt: Arc<PlayRt>,
        batch: Arc<Vec<String>>,
    ) {
        if self.interrupted.load(Ordering::SeqCst) || hs.is_out() {
            return;
        }
        if let Ok(mut s) = hs.started.lock() {
            s.get_or_insert_with(Instant::now);
        }
        let fut = self.clone().run_host_play_inner(hs.clone(), rt, batch);
        let flow = match self.opts.device_timeout {
            Some(t) => match tokio::time::timeout(t, fut).await {
                Ok(f) => f,
                Err(_) => Flow::Failed(format!("device deadline of {}s exceeded", t.as_secs())),
            },
            None => fut.await,
        };
        match flow {
            Flow::Failed(msg) => {
                hs.acc(|a| {
                    a.status = Some(HostStatus::Failed);
                    if a.first_error.is_none() {
                        a.first_error = Some(msg);
                    }
                });
            }
            Flow::Unreachable(msg) => {
                hs.acc(|a| {
                    a.status = Some(HostStatus::Unreachable);
                    if a.first_error.is_none() {
                        a.first_error = Some(msg);
                    }
                });
            }
            _ => {}
        }
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
        self.emit(Event::HostConnecting {
            host: hs.name.clone(),
        });
        let start = Instant::now();
        let t = if spec.connection == "local" {
            self.local.connect(&spec).await?
        } else {
            self.connector.connect(&spec).await?
        };
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
    ) -> Flow {
        // Layers below task level: role defaults < inventory < magic < play vars < vars_files < role vars.
        let mut base = vec![
            rt.role_defaults.clone(),
            hs.inv_vars.clone(),
            Arc::new(self.magic_vars(&hs.name, &rt, &batch)),
            rt.play_vars.clone(),
        ];
        if !rt.play.vars_files.is_empty() {
            let cx = Context::new(&self.templar, base.clone());
            for vf in &rt.play.vars_files {
                match self.load_vars_file(vf, &rt, &cx) {
                    Ok(v) => base.push(v),
                    Err(e) => return Flow::Failed(e),
                }
            }
        }
        base.push(rt.role_vars.clone());
        let cx = self.context(&base, &[], &hs);
        let transport = match self.connect(&hs, &cx).await {
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
        };
        run.prefetch().await;
        let sections = rt.sections.clone();
        for (_name, tasks) in &sections {
            if tasks.is_empty() {
                continue;
            }
            match run.run_list(tasks).await {
                Flow::Continue => {}
                Flow::EndPlay | Flow::EndHost => return Flow::Continue,
                other => return other,
            }
            match run.flush_handlers().await {
                Flow::Continue => {}
                Flow::EndPlay | Flow::EndHost => return Flow::Continue,
                other => return other,
            }
        }
        Flow::Continue
    }

    pub(crate) fn load_vars_file_pub(
        &self,
        name: &str,
        rt: &PlayRt,
        cx: &Context,
    ) -> Result<Arc<Vars>, String> {
        self.load_vars_file(name, rt, cx)
    }

    fn load_vars_file(&self, name: &str, rt: &PlayRt, cx: &Context) -> Result<Arc<Vars>, String> {
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

    /// A context: base layers, scope layers, then runtime facts/registers and extra vars on top.
    pub(crate) fn context(
        &self,
        base: &[Arc<Vars>],
        scope: &[Arc<Vars>],
        hs: &HostState,
    ) -> Context {
        let mut layers: Vec<Arc<Vars>> = base.to_vec();
        layers.extend(scope.iter().cloned());
        layers.push(hs.runtime());
        if !self.opts.extra_vars.is_empty() {
            layers.push(Arc::new(self.opts.extra_vars.clone()));
        }
        Context::new(&self.templar, layers)
    }
}

impl HostRun {
    fn host(&self) -> &str {
        &self.hs.name
    }

    fn task_context(&self, t: &Task) -> Context {
        let mut scope = self.scope.clone();
        if let Some(r) = &t.role {
            if !r.params.is_empty() {
                scope.push(Arc::new(r.params.clone()));
            }
            let mut rv = Vars::new();
            rv.insert("role_name".into(), json!(r.name));
            rv.insert("role_path".into(), json!(r.dir.display().to_string()));
            scope.push(Arc::new(rv));
        }
        // Where `lookup('file', ...)` looks: the role, the task file's directory, the playbook's.
        let mut sp = Vars::new();
        sp.insert(
            crate::template::SEARCH_PATH_VAR.into(),
            crate::template::search_path_value(&self.search_dirs(t)),
        );
        scope.push(Arc::new(sp));
        if !t.vars.is_empty() {
            scope.push(Arc::new(t.vars.clone()));
        }
        self.ex.context(&self.base, &scope, &self.hs)
    }

    /// Gather, in one round trip, every fact the play's tasks will ask for.
    async fn prefetch(&mut self) {
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
            let cx = self.task_context(t);
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
                for r in m.prefetch(&drop_omit(rendered), &icx) {
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
            return;
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
    }

    fn play_become(&self) -> Option<Become> {
        let cx = self.ex.context(&self.base, &[], &self.hs);
        self.become_for(None, &cx)
    }

    /// The become settings for a task: task keyword > play keyword > `ansible_become` variable.
    fn become_for(&self, t: Option<&Task>, cx: &Context) -> Option<Become> {
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
            .or(self.rt.play.become_)
            .or_else(|| var_bool("ansible_become"))
            .unwrap_or(false);
        if !on {
            return None;
        }
        let user = t
            .and_then(|t| t.become_user.clone())
            .or_else(|| self.rt.play.become_user.clone())
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

    fn run_list<'a>(&'a mut self, tasks: &'a [Task]) -> BoxFut<'a, Flow> {
        Box::pin(async move {
            for t in tasks {
                match self.run_task(t).await {
                    Flow::Continue => {}
                    other => return other,
                }
            }
            Flow::Continue
        })
    }

    fn run_task<'a>(&'a mut self, t: &'a Task) -> BoxFut<'a, Flow> {
        Box::pin(async move {
            if self.ex.interrupted.load(Ordering::SeqCst) {
                return Flow::Stopped;
            }
            if self.rt.abort.load(Ordering::SeqCst) || self.ex.stop.load(Ordering::SeqCst) {
                return Flow::Stopped;
            }
            match &t.kind {
                TaskKind::Block {
                    block,
                    rescue,
                    always,
                } => {
                    let first_error_before = self.hs.acc(|a| a.first_error.clone()).flatten();
                    let mut flow = self.run_list(block).await;
                    if let Flow::Failed(msg) = &flow {
                        if !rescue.is_empty() {
                            let (name, m) = self
                                .last_failed
                                .lock()
                                .ok()
                                .and_then(|l| l.clone())
                                .unwrap_or_else(|| (t.display_name(), msg.clone()));
                            self.hs
                                .set_runtime("ansible_failed_task", json!({ "name": name }));
                            self.hs.set_runtime(
                                "ansible_failed_result",
                                json!({ "msg": m, "failed": true }),
                            );
                            self.hs.acc(|a| {
                                a.rescued += 1;
                                a.failed = a.failed.saturating_sub(1);
                            });
                            flow = self.run_list(rescue).await;
                            if flow == Flow::Continue {
                                // Rescued: the failure inside the block is not this host's error.
                                self.hs.acc(|a| a.first_error = first_error_before.clone());
                            }
                        }
                    }
                    if !always.is_empty() && !matches!(flow, Flow::Unreachable(_) | Flow::Stopped) {
                        let f2 = self.run_list(always).await;
                        if flow == Flow::Continue {
                            flow = f2;
                        }
                    }
                    flow
                }
                TaskKind::Meta(m) => {
                    if !self.ex.tags_allow(t) {
                        return Flow::Continue;
                    }
                    let cx = self.task_context(t);
                    match self.when_holds(t, &cx) {
                        Ok(true) => {}
                        Ok(false) => return Flow::Continue,
                        Err(e) => return self.fail_task(t, &e, None),
                    }
                    match m.as_str() {
                        "flush_handlers" => self.flush_handlers().await,
                        "end_host" => Flow::EndHost,
                        "end_play" | "end_batch" => Flow::EndPlay,
                        "clear_facts" => {
                            if let Ok(mut r) = self.hs.runtime.lock() {
                                *r = Arc::new(Vars::new());
                            }
                            Flow::Continue
                        }
                        _ => Flow::Continue,
                    }
                }
                TaskKind::IncludeTasks { file, base } => self.run_include(t, file, base).await,
                TaskKind::IncludeRole {
                    name,
                    search,
                    tasks_from,
                } => {
                    self.run_include_role(t, name, search, tasks_from.as_deref())
                        .await
                }
                TaskKind::Module { module, args } => {
                    if !self.ex.tags_allow(t) {
                        return Flow::Continue;
                    }
                    let Some(m) = self.ex.registry.get(module).cloned() else {
                        return self.fail_task(t, &format!("unknown module {module}"), None);
                    };
                    self.run_module_task(t, m, args).await
                }
            }
        })
    }

    fn when_holds(&self, t: &Task, cx: &Context) -> Result<bool, String> {
        for w in &t.when {
            match cx.eval_condition(w, &format!("when of task '{}'", t.display_name())) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => return Err(format!("when `{w}`: {}", e.message)),
            }
        }
        Ok(true)
    }

    fn emit_result(
        &self,
        t: &Task,
        module: &str,
        r: &ItemResult,
        item: Option<String>,
        duration: Duration,
    ) {
        let msg = if t.no_log {
            (r.status == TaskStatus::Failed)
                .then(|| "the output has been hidden due to `no_log: true`".to_string())
        } else {
            r.msg
                .clone()
                .map(|m| crate::redact::redact(&m).into_owned())
        };
        self.ex.emit(Event::TaskResult {
            host: self.hs.name.clone(),
            task: t.display_name(),
            module: module.to_string(),
            status: r.status,
            handler: self.handler_mode,
            msg,
            diff: if t.no_log { None } else { r.diff.clone() },
            duration,
            item,
        });
        self.hs.acc(|a| match r.status {
            TaskStatus::Ok => a.ok += 1,
            TaskStatus::Changed => {
                a.changed += 1;
                if self.handler_mode {
                    a.handlers += 1;
                }
            }
            TaskStatus::Skipped => a.skipped += 1,
            TaskStatus::Failed => a.failed += 1,
            TaskStatus::Ignored => a.ignored += 1,
        });
    }

    fn fail_task(&self, t: &Task, msg: &str, module: Option<&str>) -> Flow {
        let msg = crate::redact::redact(msg).into_owned();
        let r = ItemResult {
            status: if t.ignore_errors {
                TaskStatus::Ignored
            } else {
                TaskStatus::Failed
            },
            result: Map::new(),
            msg: Some(msg.clone()),
            diff: None,
            unreachable: None,
        };
        self.emit_result(t, module.unwrap_or("-"), &r, None, Duration::ZERO);
        if t.ignore_errors {
            Flow::Continue
        } else {
            self.note_failure(t, &msg)
        }
    }

    fn note_failure(&self, t: &Task, msg: &str) -> Flow {
        if let Ok(mut l) = self.last_failed.lock() {
            *l = Some((t.display_name(), msg.to_string()));
        }
        let first = format!("{}: {}", t.display_name(), msg.lines().next().unwrap_or(""));
        self.hs.acc(|a| {
            if a.first_error.is_none() {
                a.first_error = Some(first.clone());
            }
        });
        if t.any_errors_fatal {
            self.rt.abort.store(true, Ordering::SeqCst);
        }
        Flow::Failed(first)
    }

    async fn run_module_task(&mut self, t: &Task, m: Arc<dyn Module>, args: &Value) -> Flow {
        let start = Instant::now();
        let cx = self.task_context(t);
        let module = m.name();
        self.ex.emit(Event::TaskStarted {
            host: self.hs.name.clone(),
            task: t.display_name(),
        });
        // run_once: the first host to arrive runs it; everyone else takes its result.
        if t.run_once {
            let key = format!("{}:{}", self.rt.idx, t.loc);
            let cell = {
                let mut m2 = match self.ex.run_once.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                m2.entry(key)
                    .or_insert_with(|| Arc::new(tokio::sync::OnceCell::new()))
                    .clone()
            };
            let r = cell
                .get_or_init(|| async { self.run_items(t, &m, args, &cx).await })
                .await
                .clone();
            return self.finish_task(t, module, r, start);
        }
        let r = self.run_items(t, &m, args, &cx).await;
        self.finish_task(t, module, r, start)
    }

    fn finish_task(&mut self, t: &Task, module: &str, r: ItemResult, start: Instant) -> Flow {
        if let Some(reg) = &t.register {
            self.hs.set_runtime(reg, Value::Object(r.result.clone()));
        }
        if r.result.get("results").is_some() {
            // Loop: per-item events were emitted already; count the task once more only if it failed.
        } else {
            self.emit_result(t, module, &r, None, start.elapsed());
        }
        if let Some(u) = &r.unreachable {
            if t.ignore_unreachable || self.rt.play.ignore_unreachable {
                return Flow::Continue;
            }
            self.ex.emit(Event::HostUnreachable {
                host: self.hs.name.clone(),
                error: u.clone(),
            });
            return Flow::Unreachable(format!("{}: {u}", t.display_name()));
        }
        if r.status == TaskStatus::Changed {
            for n in &t.notify {
                if !self.notified.contains(n) {
                    self.notified.push(n.clone());
                }
            }
        }
        match r.status {
            TaskStatus::Failed => self.note_failure(t, r.msg.as_deref().unwrap_or("failed")),
            _ => Flow::Continue,
        }
    }

    /// Run the task's items (or the task once), honouring when/loop/until/changed_when/failed_when.
    async fn run_items(
        &self,
        t: &Task,
        m: &Arc<dyn Module>,
        args: &Value,
        cx: &Context,
    ) -> ItemResult {
        let Some(loop_v) = &t.loop_ else {
            match self.when_holds(t, cx) {
                Ok(true) => {}
                Ok(false) => return skipped("Conditional result was False"),
                Err(e) => return failed(e),
            }
            return self.run_one(t, m, args, cx).await;
        };
        let items = match cx.render_value(loop_v, "loop") {
            Ok(Value::Array(a)) => {
                if t.loop_flatten {
                    a.into_iter()
                        .flat_map(|x| match x {
                            Value::Array(inner) => inner,
                            other => vec![other],
                        })
                        .collect()
                } else {
                    a
                }
            }
            Ok(Value::Null) => vec![],
            Ok(other) => {
                return failed(format!("loop: expected a list, got {}", type_name(&other)))
            }
            Err(e) => return failed(format!("loop: {}", e.message)),
        };
        let loop_var = t
            .loop_control
            .loop_var
            .clone()
            .unwrap_or_else(|| "item".into());
        let mut results = Vec::new();
        let (mut any_changed, mut any_failed, mut all_skipped) = (false, None, true);
        for (i, item) in items.iter().enumerate() {
            if self.ex.interrupted.load(Ordering::SeqCst) {
                break;
            }
            let mut lv = Vars::new();
            lv.insert(loop_var.clone(), item.clone());
            lv.insert("ansible_loop_var".into(), json!(loop_var));
            if let Some(iv) = &t.loop_control.index_var {
                lv.insert(iv.clone(), json!(i));
            }
            let icx = cx.with_layer(Arc::new(lv));
            let label = match &t.loop_control.label {
                Some(l) => icx
                    .render_str(l, "loop label")
                    .unwrap_or_else(|_| l.clone()),
                None => match item {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            };
            let start = Instant::now();
            let mut r = match self.when_holds(t, &icx) {
                Ok(true) => self.run_one(t, m, args, &icx).await,
                Ok(false) => skipped("Conditional result was False"),
                Err(e) => failed(e),
            };
            r.result.insert(loop_var.clone(), item.clone());
            r.result.insert("ansible_loop_var".into(), json!(loop_var));
            let label = if t.no_log {
                "(item hidden: no_log)".to_string()
            } else {
                label
            };
            self.emit_result(t, m.name(), &r, Some(label), start.elapsed());
            any_changed |= r.status == TaskStatus::Changed;
            all_skipped &= r.status == TaskStatus::Skipped;
            if r.status == TaskStatus::Failed && any_failed.is_none() {
                any_failed = Some(r.msg.clone().unwrap_or_else(|| "an item failed".into()));
            }
            if r.unreachable.is_some() {
                return r;
            }
            results.push(Value::Object(r.result));
            if let Some(p) = t.loop_control.pause {
                tokio::time::sleep(Duration::from_secs_f64(p)).await;
            }
        }
        let mut result = Map::new();
        result.insert("results".into(), Value::Array(results));
        result.insert("changed".into(), json!(any_changed));
        result.insert("failed".into(), json!(any_failed.is_some()));
        result.insert("skipped".into(), json!(all_skipped && !items.is_empty()));
        result.insert(
            "msg".into(),
            json!(if any_failed.is_some() {
                "One or more items failed"
            } else {
                "All items completed"
            }),
        );
        let status = if any_failed.is_some() {
            if t.ignore_errors {
                TaskStatus::Ignored
            } else {
                TaskStatus::Failed
            }
        } else if any_changed {
            TaskStatus::Changed
        } else if all_skipped {
            TaskStatus::Skipped
        } else {
            TaskStatus::Ok
        };
        ItemResult {
            status,
            result,
            msg: any_failed,
            diff: None,
            unreachable: None,
        }
    }

    /// One item, with retries/until and changed_when/failed_when.
    async fn run_one(
        &self,
        t: &Task,
        m: &Arc<dyn Module>,
        args: &Value,
        cx: &Context,
    ) -> ItemResult {
        let attempts = t.retries.map(|r| r + 1).unwrap_or(1).max(1);
        let mut last = failed("not run".into());
        for attempt in 1..=attempts {
            let mut r = self.attempt(t, m, args, cx).await;
            if r.unreachable.is_some() || r.status == TaskStatus::Skipped {
                return r;
            }
            // The registered name is visible to changed_when / failed_when / until, as in Ansible.
            let rcx = match &t.register {
                Some(reg) => {
                    let mut l = Vars::new();
                    l.insert(reg.clone(), Value::Object(r.result.clone()));
                    cx.with_layer(Arc::new(l))
                }
                None => cx.clone(),
            };
            if let Some(c) = &t.changed_when {
                match eval_cond(&rcx, c, "changed_when") {
                    Ok(ch) => {
                        r.result.insert("changed".into(), json!(ch));
                        if r.status != TaskStatus::Failed {
                            r.status = if ch {
                                TaskStatus::Changed
                            } else {
                                TaskStatus::Ok
                            };
                        }
                    }
                    Err(e) => return failed(e),
                }
            }
            if let Some(c) = &t.failed_when {
                match eval_cond(&rcx, c, "failed_when") {
                    Ok(true) => {
                        r.status = TaskStatus::Failed;
                        r.result.insert("failed".into(), json!(true));
                        if r.msg.is_none() {
                            r.msg = Some("failed_when condition is true".into());
                        }
                    }
                    Ok(false) => {
                        if r.status == TaskStatus::Failed {
                            r.status = if r.result.get("changed") == Some(&json!(true)) {
                                TaskStatus::Changed
                            } else {
                                TaskStatus::Ok
                            };
                            r.msg = None;
                        }
                        r.result.insert("failed".into(), json!(false));
                    }
                    Err(e) => return failed(e),
                }
            }
            r.result.insert("attempts".into(), json!(attempt));
            let done = match &t.until {
                Some(conds) => {
                    let mut l = Vars::new();
                    if let Some(reg) = &t.register {
                        l.insert(reg.clone(), Value::Object(r.result.clone()));
                    }
                    let ucx = cx.with_layer(Arc::new(l));
                    match eval_cond(&ucx, &Cond::Exprs(conds.clone()), "until") {
                        Ok(b) => b,
                        Err(e) => return failed(e),
                    }
                }
                None => true,
            };
            if r.status == TaskStatus::Failed && t.ignore_errors {
                r.status = TaskStatus::Ignored;
            }
            if done {
                return r;
            }
            last = r;
            if attempt < attempts {
                tokio::time::sleep(Duration::from_secs_f64(t.delay.unwrap_or(5.0))).await;
            }
        }
        last.status = if t.ignore_errors {
            TaskStatus::Ignored
        } else {
            TaskStatus::Failed
        };
        last.msg = Some(format!(
            "retries exhausted ({attempts} attempts) and `until` is still false{}",
            last.msg.map(|m| format!(": {m}")).unwrap_or_default()
        ));
        last
    }

    /// Render, plan and (unless checking) apply once.
    async fn attempt(
        &self,
        t: &Task,
        m: &Arc<dyn Module>,
        args: &Value,
        cx: &Context,
    ) -> ItemResult {
        let name = format!("task '{}' ({})", t.display_name(), t.loc);
        let rendered = match cx.render_value(args, &name) {
            Ok(v) => drop_omit(v),
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
    async fn apply(
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

    fn search_dirs(&self, t: &Task) -> Vec<PathBuf> {
        let mut v = Vec::new();
        if let Some(r) = &t.role {
            v.push(r.dir.clone());
        }
        v.push(t.base_dir.clone());
        v.push(self.rt.playbook_dir.clone());
        v
    }

    /// Run notified handlers, in definition order, once each; handlers may notify later handlers.
    pub(crate) async fn flush_handlers(&mut self) -> Flow {
        if self.notified.is_empty() {
            return Flow::Continue;
        }
        let handlers: Vec<Task> = self
            .rt
            .handlers
            .iter()
            .chain(self.dyn_handlers.iter())
            .cloned()
            .collect();
        let mut ran = vec![false; handlers.len()];
        loop {
            let mut progress = false;
            for (i, h) in handlers.iter().enumerate() {
                if ran[i] {
                    continue;
                }
                let hit = h.name.as_ref().is_some_and(|n| self.notified.contains(n))
                    || h.listen.iter().any(|l| self.notified.contains(l));
                if !hit {
                    continue;
                }
                ran[i] = true;
                progress = true;
                self.handler_mode = true;
                let f = self.run_task(h).await;
                self.handler_mode = false;
                if f != Flow::Continue {
                    self.notified.clear();
                    return f;
                }
            }
            if !progress {
                break;
            }
        }
        let unknown: Vec<String> = self
            .notified
            .iter()
            .filter(|n| {
                !handlers
                    .iter()
                    .any(|h| h.name.as_ref() == Some(n) || h.listen.contains(n))
            })
            .cloned()
            .collect();
        for n in unknown {
            self.ex.emit(Event::Warning {
                host: Some(self.hs.name.clone()),
                message: format!(
                    "a task notified `{n}`, but no handler has that name or listens to it"
                ),
            });
        }
        self.notified.clear();
        Flow::Continue
    }

    async fn run_include(&mut self, t: &Task, file: &str, base: &std::path::Path) -> Flow {
        let cx = self.task_context(t);
        match self.when_holds(t, &cx) {
            Ok(true) => {}
            Ok(false) => return Flow::Continue,
            Err(e) => return self.fail_task(t, &e, None),
        }
        let items: Vec<Option<Value>> = match &t.loop_ {
            None => vec![None],
            Some(l) => match cx.render_value(l, "loop") {
                Ok(Value::Array(a)) => a.into_iter().map(Some).collect(),
                Ok(_) => return self.fail_task(t, "loop: expected a list", None),
                Err(e) => return self.fail_task(t, &e.message, None),
            },
        };
        let loop_var = t
            .loop_control
            .loop_var
            .clone()
            .unwrap_or_else(|| "item".into());
        for item in items {
            let mut layer = t.vars.clone();
            if let Some(i) = &item {
                layer.insert(loop_var.clone(), i.clone());
            }
            let icx = cx.with_layer(Arc::new(layer.clone()));
            let name = match icx.render_str(file, "include_tasks") {
                Ok(n) => n,
                Err(e) => return self.fail_task(t, &e.message, None),
            };
            let path = {
                let p = PathBuf::from(&name);
                if p.is_absolute() {
                    p
                } else {
                    base.join(p)
                }
            };
            let tasks = {
                let registry = self.ex.registry.clone();
                let mut lctx = crate::playbook::LoadCtx::new(registry.as_ref(), &self.ex.templar);
                let ts = crate::playbook::load_task_file(&path, t.role.clone(), &mut lctx);
                if !lctx.diags.is_empty() {
                    return self.fail_task(t, &lctx.diags.to_string(), None);
                }
                ts.unwrap_or_default()
            };
            self.scope.push(Arc::new(layer));
            let f = self.run_list(&tasks).await;
            self.scope.pop();
            if f != Flow::Continue {
                return f;
            }
        }
        Flow::Continue
    }

    async fn run_include_role(
        &mut self,
        t: &Task,
        name: &str,
        search: &[PathBuf],
        tasks_from: Option<&str>,
    ) -> Flow {
        let cx = self.task_context(t);
        match self.when_holds(t, &cx) {
            Ok(true) => {}
            Ok(false) => return Flow::Continue,
            Err(e) => return self.fail_task(t, &e, None),
        }
        let name = match cx.render_str(name, "include_role") {
            Ok(n) => n,
            Err(e) => return self.fail_task(t, &e.message, None),
        };
        let registry = self.ex.registry.clone();
        let mut lctx = crate::playbook::LoadCtx::new(registry.as_ref(), &self.ex.templar);
        let file = Arc::new(t.loc.file.as_ref().clone());
        let at = crate::yaml::Node::synthetic(crate::yaml::NodeValue::Null);
        let role = crate::playbook::role::load_role(&name, search, &mut lctx, &file, &at);
        let Some(role) = role else {
            return self.fail_task(t, &lctx.diags.to_string(), None);
        };
        let tasks = match tasks_from {
            Some(tf) => {
                let rc = Arc::new(crate::playbook::RoleCtx {
                    name: role.name.clone(),
                    dir: role.dir.clone(),
                    params: t.vars.clone(),
                });
                crate::playbook::load_task_file(
                    &crate::playbook::role::task_file(&role.dir, tf),
                    Some(rc),
                    &mut lctx,
                )
                .unwrap_or_default()
            }
            None => crate::playbook::role_tasks_for(&crate::playbook::RoleUse {
                role: role.clone(),
                params: t.vars.clone(),
                when: vec![],
                tags: vec![],
            }),
        };
        if !lctx.diags.is_empty() {
            return self.fail_task(t, &lctx.diags.to_string(), None);
        }
        self.dyn_handlers.extend(role.handlers.iter().cloned());
        // The role's defaults sit below what is already defined; its vars above.
        let mut defaults = Vars::new();
        for (k, v) in &role.defaults {
            if !cx.contains(k) {
                defaults.insert(k.clone(), v.clone());
            }
        }
        self.scope.push(Arc::new(defaults));
        self.scope.push(Arc::new(role.vars.clone()));
        let f = self.run_list(&tasks).await;
        self.scope.pop();
        self.scope.pop();
        f
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

fn eval_cond(cx: &Context, c: &Cond, what: &str) -> Result<bool, String> {
    match c {
        Cond::Fixed(b) => Ok(*b),
        Cond::Exprs(es) => {
            for e in es {
                if !cx
                    .eval_condition(e, what)
                    .map_err(|err| format!("{what} `{e}`: {}", err.message))?
                {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }
}

fn skipped(reason: &str) -> ItemResult {
    let mut result = Map::new();
    result.insert("changed".into(), json!(false));
    result.insert("skipped".into(), json!(true));
    result.insert("skip_reason".into(), json!(reason));
    ItemResult {
        status: TaskStatus::Skipped,
        result,
        msg: Some(reason.to_string()),
        diff: None,
        unreachable: None,
    }
}

fn failed(msg: String) -> ItemResult {
    let msg = crate::redact::redact(&msg).into_owned();
    let mut result = Map::new();
    result.insert("changed".into(), json!(false));
    result.insert("failed".into(), json!(true));
    result.insert("msg".into(), json!(msg));
    ItemResult {
        status: TaskStatus::Failed,
        result,
        msg: Some(msg),
        diff: None,
        unreachable: None,
    }
}

fn transport_failure(e: TransportError) -> ItemResult {
    let unreachable = e.is_unreachable();
    let mut r = failed(e.to_string());
    if unreachable {
        r.unreachable = r.msg.clone();
        r.result.insert("unreachable".into(), json!(true));
    }
    r
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Remove arguments whose value is the `omit` placeholder.
pub(crate) fn drop_omit(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(_, x)| x.as_str() != Some(crate::template::omit_marker()))
                .map(|(k, x)| (k, drop_omit(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.into_iter()
                .filter(|x| x.as_str() != Some(crate::template::omit_marker()))
                .map(drop_omit)
                .collect(),
        ),
        other => other,
    }
}
