//! The task loop of one host: conditions, loops, retries, register, `changed_when`/`failed_when`, results and
//! their events, failure bookkeeping, `run_once`. Blocks, handlers and includes are their own files.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::host::{BoxFut, Flow, HostRun, ItemResult};
use crate::modules::Module;
use crate::playbook::{Cond, Task, TaskKind};
use crate::report::{Event, TaskStatus};
use crate::template::context::Context;
use crate::transport::TransportError;
use crate::vars::Vars;

impl HostRun {
    pub(super) fn run_list<'a>(&'a mut self, tasks: &'a [Task]) -> BoxFut<'a, Flow> {
        Box::pin(async move {
            for t in tasks {
                let flow = self.run_task(t).await;
                self.report_warnings();
                match flow {
                    Flow::Continue => {}
                    other => return other,
                }
            }
            Flow::Continue
        })
    }

    pub(super) fn run_task<'a>(&'a mut self, t: &'a Task) -> BoxFut<'a, Flow> {
        Box::pin(async move {
            if self.ex.interrupted.load(Ordering::SeqCst) {
                return Flow::Stopped;
            }
            if self.rt.abort.load(Ordering::SeqCst) || self.ex.stop.load(Ordering::SeqCst) {
                return Flow::Stopped;
            }
            if !matches!(t.kind, TaskKind::Block { .. }) {
                if !self.step().await {
                    return Flow::Stopped;
                }
                self.refresh_magic();
            }
            match &t.kind {
                TaskKind::Block {
                    block,
                    rescue,
                    always,
                } => self.run_block(t, block, rescue, always).await,
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
                            self.hs.clear_runtime();
                            Flow::Continue
                        }
                        _ => Flow::Continue,
                    }
                }
                TaskKind::IncludeTasks { file, base, apply } => {
                    if !self.ex.tags_allow(t) {
                        return Flow::Continue;
                    }
                    self.run_include(t, file, base, apply.as_deref()).await
                }
                TaskKind::IncludeRole {
                    name,
                    search,
                    tasks_from,
                    public,
                } => {
                    if !self.ex.tags_allow(t) {
                        return Flow::Continue;
                    }
                    self.run_include_role(t, name, search, tasks_from.as_deref(), *public)
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

    pub(super) fn when_holds(&self, t: &Task, cx: &Context) -> Result<bool, String> {
        for w in &t.when {
            match cx.eval_condition(w, &format!("when of task '{}'", t.display_name())) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => return Err(format!("when `{w}`: {}", e.message)),
            }
        }
        Ok(true)
    }

    pub(super) fn emit_result(
        &self,
        t: &Task,
        module: &str,
        r: &ItemResult,
        item: Option<String>,
        duration: Duration,
    ) {
        // What rendering this task warned about comes before its result.
        self.report_warnings();
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
            applies_config: self
                .ex
                .registry
                .get(module)
                .is_some_and(|m| m.applies_config()),
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

    pub(super) fn fail_task(&self, t: &Task, msg: &str, module: Option<&str>) -> Flow {
        let mut r = failed(msg.to_string());
        if t.ignore_errors {
            r.status = TaskStatus::Ignored;
        }
        self.emit_result(t, module.unwrap_or("-"), &r, None, Duration::ZERO);
        if t.ignore_errors {
            Flow::Continue
        } else {
            let msg = r.msg.clone().unwrap_or_default();
            self.note_failure(t, &msg, &r.result)
        }
    }

    /// Record a failure of `t` with its full `result` (what a rescue sees as `ansible_failed_result`).
    pub(super) fn note_failure(&self, t: &Task, msg: &str, result: &Map<String, Value>) -> Flow {
        if let Ok(mut l) = self.last_failed.lock() {
            *l = Some((t.display_name(), Value::Object(result.clone())));
        }
        let first = format!("{}: {}", t.display_name(), msg.lines().next().unwrap_or(""));
        self.hs.acc(|a| {
            if a.first_error.is_none() {
                a.first_error = Some(first.clone());
            }
        });
        if t.any_errors_fatal || self.rt.play.any_errors_fatal {
            self.rt.stop_play(format!(
                "play '{}' stopped: any_errors_fatal and task '{}' failed on {}",
                self.rt.play.name,
                t.display_name(),
                self.hs.name
            ));
        }
        Flow::Failed(first)
    }

    pub(super) async fn run_module_task(
        &mut self,
        t: &Task,
        m: Arc<dyn Module>,
        args: &Value,
    ) -> Flow {
        let start = Instant::now();
        let cx = self.task_context(t);
        let module = m.name();
        self.ex.emit(Event::TaskStarted {
            host: self.hs.name.clone(),
            task: t.display_name(),
        });
        if t.run_once {
            let (r, ran_here) = self.run_once(t, &m, args, &cx).await;
            if !ran_here {
                // What it set and registered applies to every host of the batch; the result was reported
                // once, by the host that ran it.
                for (k, v) in set_facts_of(&r.result) {
                    self.hs.set_runtime(&k, v);
                }
            }
            return self.finish_task(t, module, r, start, ran_here);
        }
        let r = self.run_items(t, &m, args, &cx).await;
        self.finish_task(t, module, r, start, true)
    }

    /// `run_once`: the batch's first host still in the play runs the task (as Ansible does), the others take
    /// its result. Returns the result and whether this host ran it. When that host leaves the play before it
    /// reaches the task, the next one in the batch runs it.
    async fn run_once(
        &mut self,
        t: &Task,
        m: &Arc<dyn Module>,
        args: &Value,
        cx: &Context,
    ) -> (ItemResult, bool) {
        let seen = {
            let n = self.run_once_seen.entry(t.loc.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        let first = self.batch.first().cloned().unwrap_or_default();
        let key = format!("{}:{first}:{}:{seen}", self.rt.idx, t.loc);
        let cell = {
            let mut all = match self.ex.run_once.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            all.entry(key)
                .or_insert_with(|| Arc::new(tokio::sync::OnceCell::new()))
                .clone()
        };
        let idx = self.rt.idx;
        let ex = self.ex.clone();
        let batch = self.batch.clone();
        let me = self.hs.name.clone();
        // The host that runs it: the first of the batch that has neither failed nor left the play.
        let runner = move || {
            batch
                .iter()
                .find(|h| {
                    let hs = ex.host_state(h);
                    !hs.is_out() && !hs.has_left(idx)
                })
                .cloned()
        };
        let wait = async {
            loop {
                let progress = self.ex.progress.notified();
                tokio::pin!(progress);
                progress.as_mut().enable();
                if let Some(r) = cell.get() {
                    return Some(r.clone());
                }
                if runner().as_deref() == Some(me.as_str()) {
                    return None;
                }
                progress.await;
            }
        };
        let waited = match &self.stepping {
            Some(s) => s.lockstep.clone().away(wait).await,
            None => wait.await,
        };
        if let Some(r) = waited {
            return (r, false);
        }
        let r = cell
            .get_or_init(|| async { self.run_items(t, m, args, cx).await })
            .await
            .clone();
        self.ex.progress.notify_waiters();
        (r, true)
    }

    pub(super) fn finish_task(
        &mut self,
        t: &Task,
        module: &str,
        r: ItemResult,
        start: Instant,
        report: bool,
    ) -> Flow {
        if let Some(reg) = &t.register {
            self.hs.set_runtime(reg, Value::Object(r.result.clone()));
        }
        let items_reported = r
            .result
            .get("results")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if items_reported || !report {
            // Loop: per-item events were emitted already. run_once: reported by the host that ran it.
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
        if r.status == TaskStatus::Changed && report {
            for n in &t.notify {
                if !self.notified.contains(n) {
                    self.notified.push(n.clone());
                }
            }
        }
        match r.status {
            TaskStatus::Failed => {
                self.note_failure(t, r.msg.as_deref().unwrap_or("failed"), &r.result)
            }
            _ => Flow::Continue,
        }
    }

    /// Run the task's items (or the task once), honouring when/loop/until/changed_when/failed_when.
    pub(super) async fn run_items(
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
        if items.is_empty() {
            // Ansible: the task is skipped as a whole (one result, no items, `when` not evaluated).
            let mut r = skipped("No items in the list");
            r.result.remove("skip_reason");
            r.result
                .insert("skipped_reason".into(), json!("No items in the list"));
            r.result.insert("results".into(), json!([]));
            return r;
        }
        let loop_var = t
            .loop_control
            .loop_var
            .clone()
            .unwrap_or_else(|| "item".into());
        let mut results = Vec::new();
        let (mut any_changed, mut any_failed, mut all_skipped) = (false, None, true);
        // What `set_fact` set in earlier items (Ansible updates the task's variables between items, so
        // `acc: "{{ acc + [item] }}"` accumulates).
        let mut loop_facts = Vars::new();
        for (i, item) in items.iter().enumerate() {
            if self.ex.interrupted.load(Ordering::SeqCst) {
                break;
            }
            let mut lv = loop_facts.clone();
            lv.insert(loop_var.clone(), item.clone());
            lv.insert("ansible_loop_var".into(), json!(loop_var));
            if let Some(iv) = &t.loop_control.index_var {
                lv.insert(iv.clone(), json!(i));
                lv.insert("ansible_index_var".into(), json!(iv));
            }
            let ansible_loop = t
                .loop_control
                .extended
                .then(|| extended_loop(&items, i, t.loop_control.extended_allitems));
            if let Some(al) = &ansible_loop {
                lv.insert("ansible_loop".into(), al.clone());
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
            loop_facts.extend(set_facts_of(&r.result));
            r.result.insert(loop_var.clone(), item.clone());
            r.result.insert("ansible_loop_var".into(), json!(loop_var));
            if let Some(iv) = &t.loop_control.index_var {
                r.result.insert(iv.clone(), json!(i));
                r.result.insert("ansible_index_var".into(), json!(iv));
            }
            if let Some(al) = ansible_loop {
                r.result.insert("ansible_loop".into(), al);
            }
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
        result.insert("skipped".into(), json!(all_skipped));
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
    pub(super) async fn run_one(
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
}

/// The variables a result sets on its host (`ansible_facts`, as `set_fact` returns them; of every item of a
/// loop's result).
pub(super) fn set_facts_of(result: &Map<String, Value>) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Some(Value::Object(f)) = result.get("ansible_facts") {
        out.extend(f.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(Value::Array(items)) = result.get("results") {
        for i in items {
            if let Some(Value::Object(f)) = i.get("ansible_facts") {
                out.extend(f.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
    }
    out
}

pub(super) fn eval_cond(cx: &Context, c: &Cond, what: &str) -> Result<bool, String> {
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

/// `ansible_loop` for item `i` of `items` under `loop_control.extended` (Ansible's keys: `nextitem` is absent
/// on the last item and `previtem` on the first).
fn extended_loop(items: &[Value], i: usize, allitems: bool) -> Value {
    let n = items.len();
    let mut m = Map::new();
    m.insert("index".into(), json!(i + 1));
    m.insert("index0".into(), json!(i));
    m.insert("first".into(), json!(i == 0));
    m.insert("last".into(), json!(i + 1 == n));
    m.insert("length".into(), json!(n));
    m.insert("revindex".into(), json!(n - i));
    m.insert("revindex0".into(), json!(n - i - 1));
    if allitems {
        m.insert("allitems".into(), Value::Array(items.to_vec()));
    }
    if let Some(next) = items.get(i + 1) {
        m.insert("nextitem".into(), next.clone());
    }
    if let Some(prev) = i.checked_sub(1).and_then(|p| items.get(p)) {
        m.insert("previtem".into(), prev.clone());
    }
    Value::Object(m)
}

pub(super) fn skipped(reason: &str) -> ItemResult {
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

pub(super) fn failed(msg: String) -> ItemResult {
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

pub(super) fn transport_failure(e: TransportError) -> ItemResult {
    let unreachable = e.is_unreachable();
    let mut r = failed(e.to_string());
    if unreachable {
        r.unreachable = r.msg.clone();
        r.result.insert("unreachable".into(), json!(true));
    }
    r
}

pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
