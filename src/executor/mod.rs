//! The executor: runs plays against hosts, each host independently, at most `--forks` at a time.
//!
//! Owns scheduling (forks, serial batches and what happens between them — a rollout's health gate and
//! `--confirm`, in `waves.rs` —, max_fail_percentage, any_errors_fatal, failure isolation, Ctrl-C,
//! per-device deadlines), connections (one per device per run, reused by every play and task; plus one per play
//! that armed a dead-man revert, to confirm it: `deadman.rs`), and the
//! per-host task loop in `host.rs` (conditions, loops, register, retries, handlers, blocks) with the
//! plan-then-apply discipline: modules only say what would change; only the executor applies. It must not print
//! (it emits events) and must not know module internals.
//!
//! **Host accounting fails closed.** A host is ok only when it finished its last play without a failure; a
//! host whose status is still unset when it is finished is failed (or interrupted, after Ctrl-C). A panic in
//! one host's task is caught and fails that host alone ("internal error on this device: ...; this is a bug");
//! a poisoned accounting lock marks the host failed, never ok.
//!
//! **Test hook (debug builds only).** In builds with `debug_assertions` (never in release builds),
//! `EDGEFLEET_TEST_PANIC_HOST=<name>` makes that host's task panic while it holds its accounting lock, so the
//! integration tests can prove the above. See `debug_hooks`.

pub mod apply;

mod attempt;
mod blocks;
mod deadman;
mod handlers;
mod host;
mod includes;
mod layers;
mod lockstep;
pub mod logged;
pub mod preflight;
mod tasks;
pub mod waves;

pub use waves::{batches, ConfirmWave};

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::inventory::Inventory;
use crate::modules::Registry;
use crate::playbook::{Play, Playbook, Task};
use crate::report::{Event, HostStatus, SharedSink};
use crate::report::{HostSummary, RunSummary, StatsSnapshot};
use crate::template::Templar;
use crate::transport::{Connector, SharedTransport};
use crate::vars::Vars;

use crate::facts::FactCache;

/// `--forks` when not given: hosts in flight at once.
pub const DEFAULT_FORKS: usize = 100;

/// Run-wide options.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Check mode: change nothing.
    pub check: bool,
    /// Produce diffs.
    pub diff: bool,
    /// Hosts in flight at once.
    pub forks: usize,
    /// `-e` variables (highest precedence).
    pub extra_vars: Vars,
    /// `--tags`.
    pub tags: Vec<String>,
    /// `--skip-tags`.
    pub skip_tags: Vec<String>,
    /// Hosts allowed by `--limit` (None: all).
    pub limit: Option<HashSet<String>>,
    /// Give up on a device after this long.
    pub device_timeout: Option<Duration>,
    /// Verbosity (`-v` count).
    pub verbose: u8,
    /// Report every remote command as an event (for `--log`, `-vvv`).
    pub log_commands: bool,
    /// `--confirm`: asked before each wave after the first.
    pub confirm: Option<Arc<dyn ConfirmWave>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            check: false,
            diff: false,
            forks: DEFAULT_FORKS,
            extra_vars: Vars::new(),
            tags: vec![],
            skip_tags: vec![],
            limit: None,
            device_timeout: None,
            verbose: 0,
            log_commands: false,
            confirm: None,
        }
    }
}

/// Per-host state that lives for the whole run.
pub(crate) struct HostState {
    pub name: String,
    pub inv_vars: Arc<Vars>,
    pub transport: tokio::sync::Mutex<Option<SharedTransport>>,
    pub runtime: Mutex<Arc<Vars>>,
    pub facts: FactCache,
    pub acc: Mutex<HostSummary>,
    pub started: Mutex<Option<Instant>>,
    pub done: AtomicBool,
    /// Bumped (run-wide) whenever some host's runtime variables change, so `hostvars` is rebuilt only then.
    pub runtime_gen: Arc<AtomicU64>,
    /// The index of the last play this host left (ran to its end, failed or stopped), plus one (0: none).
    pub left: AtomicU64,
    /// The dead-man revert armed on the device, if any (see `deadman.rs`).
    pub deadman: deadman::Slot,
}

impl HostState {
    pub fn runtime(&self) -> Arc<Vars> {
        self.runtime.lock().map(|r| r.clone()).unwrap_or_default()
    }
    pub fn set_runtime(&self, k: &str, v: Value) {
        if let Ok(mut r) = self.runtime.lock() {
            Arc::make_mut(&mut r).insert(k.to_string(), v);
        }
        self.runtime_gen.fetch_add(1, Ordering::SeqCst);
    }
    /// This host is out of play `idx`.
    pub fn left_play(&self, idx: usize) {
        self.left.store(idx as u64 + 1, Ordering::SeqCst);
    }
    /// Has this host left play `idx`?
    pub fn has_left(&self, idx: usize) -> bool {
        self.left.load(Ordering::SeqCst) > idx as u64
    }
    /// Forget every runtime variable (`meta: clear_facts`, a finished host).
    pub fn clear_runtime(&self) {
        if let Ok(mut r) = self.runtime.lock() {
            *r = Arc::new(Vars::new());
        }
        self.runtime_gen.fetch_add(1, Ordering::SeqCst);
    }
    /// Mark this host failed (or unreachable) with its first error, telling the run that the set of hosts
    /// still in the play changed.
    pub fn mark_out(&self, status: HostStatus, msg: String, fail_gen: &AtomicU64) {
        self.acc(|a| {
            a.status = Some(status);
            if a.first_error.is_none() {
                a.first_error = Some(msg);
            }
        });
        fail_gen.fetch_add(1, Ordering::SeqCst);
    }
    /// Read or update the host's accounting. A poisoned lock (a panic while it was held) is recovered, and the
    /// host is then marked failed: an accounting that cannot be trusted never says ok.
    pub fn acc<R>(&self, f: impl FnOnce(&mut HostSummary) -> R) -> R {
        match self.acc.lock() {
            Ok(mut a) => f(&mut a),
            Err(poisoned) => {
                let mut a = poisoned.into_inner();
                let r = f(&mut a);
                mark_internal_error(&mut a, "its accounting lock was poisoned by a panic");
                r
            }
        }
    }
    /// Fail this host because of a bug (a panic in its task).
    pub fn fail_internal(&self, what: &str) {
        self.acc(|a| mark_internal_error(a, what));
    }
    pub fn is_out(&self) -> bool {
        self.acc(|a| {
            matches!(
                a.status,
                Some(HostStatus::Failed) | Some(HostStatus::Unreachable)
            )
        })
    }
}

/// Mark a host failed by an internal error (kept when it had already failed or was unreachable: the first
/// error stays the one shown).
fn mark_internal_error(a: &mut HostSummary, what: &str) {
    if !matches!(
        a.status,
        Some(HostStatus::Failed) | Some(HostStatus::Unreachable)
    ) {
        a.status = Some(HostStatus::Failed);
        a.first_error = Some(internal_error(what));
    } else if a.first_error.is_none() {
        a.first_error = Some(internal_error(what));
    }
}

/// The error a device gets when edgefleet itself went wrong on it.
fn internal_error(what: &str) -> String {
    format!("internal error on this device: {what}; this is a bug")
}

/// The text of a panic payload.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic".to_string()
    }
}

/// A future that turns a panic while it is polled into an error (the payload), so one host's bug is that
/// host's failure and never the run's.
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let fut = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(payload) => std::task::Poll::Ready(Err(payload)),
        }
    }
}

/// Hooks for the integration tests, compiled only into builds with `debug_assertions`: a release build has
/// no way to trigger them.
#[cfg(debug_assertions)]
pub(crate) mod debug_hooks {
    /// `EDGEFLEET_TEST_PANIC_HOST=<name>`: that host's task panics (holding its accounting lock, so the lock
    /// is poisoned too) when it starts a play.
    pub(crate) fn maybe_panic(hs: &super::HostState) {
        if std::env::var_os("EDGEFLEET_TEST_PANIC_HOST").is_some_and(|h| h == hs.name.as_str()) {
            hs.acc(|_| panic!("injected by EDGEFLEET_TEST_PANIC_HOST for {}", hs.name));
        }
    }
}

/// A play prepared for running.
pub(crate) struct PlayRt {
    pub play: Play,
    pub idx: usize,
    pub playbook_dir: PathBuf,
    pub role_defaults: Arc<Vars>,
    pub role_vars: Arc<Vars>,
    pub play_vars: Arc<Vars>,
    pub sections: Vec<(&'static str, Vec<Task>)>,
    pub handlers: Vec<Task>,
    pub hosts: Vec<String>,
    pub abort: AtomicBool,
    /// Why `abort` was set.
    pub abort_reason: Mutex<Option<String>>,
    /// The hosts of a batch start each task together (`any_errors_fatal`, `max_fail_percentage`, `hostvars`,
    /// `ansible_play_hosts`).
    pub lockstep: bool,
}

impl PlayRt {
    /// Where a task's `src:`-like files are found (the same path in pre-flight and at run time).
    pub(crate) fn search_dirs(&self, t: &Task) -> Vec<PathBuf> {
        layers::search_dirs(t, &self.playbook_dir)
    }

    /// Stop the play (every host stops before its next task), saying why; the first reason stays.
    pub(crate) fn stop_play(&self, reason: String) {
        if let Ok(mut r) = self.abort_reason.lock() {
            r.get_or_insert(reason);
        }
        self.abort.store(true, Ordering::SeqCst);
    }

    /// Why the play was stopped, if it was.
    pub(crate) fn abort_reason(&self) -> Option<String> {
        if !self.abort.load(Ordering::SeqCst) {
            return None;
        }
        self.abort_reason.lock().ok().and_then(|r| r.clone())
    }

    /// `max_fail_percentage`: why the play must stop when `failed` of the `size` hosts of batch `bi` failed.
    pub(crate) fn over_max_fail(&self, failed: usize, size: usize, bi: usize) -> Option<String> {
        let max = self.play.max_fail_percentage?;
        let pct = failed as f64 * 100.0 / size.max(1) as f64;
        (pct > max).then(|| {
            format!(
                "play '{}' stopped: {failed} of {size} hosts in batch {} failed ({pct:.0}% > max_fail_percentage {max})",
                self.play.name,
                bi + 1
            )
        })
    }
}

/// Which magic variables some template mentions (the expensive ones are only built when needed).
#[derive(Debug, Clone, Default)]
pub struct Refs {
    /// `groups`.
    pub groups: bool,
    /// `hostvars`.
    pub hostvars: bool,
    /// `play_hosts` / `ansible_play_hosts` / `ansible_play_batch`.
    pub play_hosts: bool,
    /// `ansible_facts` / gathered fact names.
    pub facts: bool,
}

impl Refs {
    /// Scan source texts.
    pub fn scan<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut r = Refs::default();
        for t in texts {
            r.groups |= t.contains("groups");
            r.hostvars |= t.contains("hostvars");
            r.play_hosts |= t.contains("play_hosts") || t.contains("ansible_play_batch");
            r.facts |= crate::facts::setup::mentioned(t);
        }
        r
    }
}

/// The executor for one run.
pub struct Executor {
    pub(crate) inv: Arc<Inventory>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) templar: Templar,
    pub(crate) sink: SharedSink,
    pub(crate) connector: Arc<dyn Connector>,
    pub(crate) local: Arc<dyn Connector>,
    pub(crate) opts: RunOptions,
    /// `opts.extra_vars`, shared by every context (the top layer).
    pub(crate) extra_vars: Arc<Vars>,
    pub(crate) interrupted: Arc<AtomicBool>,
    pub(crate) stop: AtomicBool,
    /// Why the run stopped early (any_errors_fatal, max_fail_percentage), once it has.
    abort_reason: Mutex<Option<String>>,
    pub(crate) refs: Refs,
    hosts: Mutex<HashMap<String, Arc<HostState>>>,
    order: Mutex<Vec<String>>,
    pub(crate) run_once: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<host::ItemResult>>>>,
    pub(crate) vars_files: Mutex<HashMap<PathBuf, Arc<Vars>>>,
    /// Bumped whenever some host's runtime variables change (shared with every [`HostState`]).
    runtime_gen: Arc<AtomicU64>,
    /// `hostvars` as last built, with the `runtime_gen` it was built at.
    hostvars_cache: Mutex<Option<(u64, Arc<Vars>)>>,
    /// Every inventory host's variables (with `inventory_hostname`): the base of `hostvars`, built once.
    hostvars_base: std::sync::OnceLock<serde_json::Map<String, Value>>,
    /// Bumped whenever a host fails or becomes unreachable (`ansible_play_hosts` and `ansible_play_batch`
    /// leave it out from then on).
    pub(crate) fail_gen: AtomicU64,
    /// Woken when a `run_once` result is ready or a host leaves a play (what `run_once` waiters wait for).
    pub(crate) progress: tokio::sync::Notify,
}

/// Everything needed to build an executor.
pub struct ExecutorParts {
    /// The inventory.
    pub inventory: Arc<Inventory>,
    /// Modules.
    pub registry: Arc<Registry>,
    /// Templates.
    pub templar: Templar,
    /// Where events go.
    pub sink: SharedSink,
    /// SSH (or other) connections.
    pub connector: Arc<dyn Connector>,
    /// Options.
    pub opts: RunOptions,
    /// Set on Ctrl-C.
    pub interrupted: Arc<AtomicBool>,
    /// Which magic variables are referenced.
    pub refs: Refs,
}

impl Executor {
    /// Build an executor.
    pub fn new(p: ExecutorParts) -> Arc<Self> {
        Arc::new(Executor {
            inv: p.inventory,
            registry: p.registry,
            templar: p.templar,
            sink: p.sink,
            connector: p.connector,
            local: Arc::new(crate::transport::LocalConnector),
            extra_vars: Arc::new(p.opts.extra_vars.clone()),
            opts: p.opts,
            interrupted: p.interrupted,
            stop: AtomicBool::new(false),
            abort_reason: Mutex::new(None),
            refs: p.refs,
            hosts: Mutex::new(HashMap::new()),
            order: Mutex::new(Vec::new()),
            run_once: Mutex::new(HashMap::new()),
            vars_files: Mutex::new(HashMap::new()),
            runtime_gen: Arc::new(AtomicU64::new(0)),
            hostvars_cache: Mutex::new(None),
            hostvars_base: std::sync::OnceLock::new(),
            fail_gen: AtomicU64::new(0),
            progress: tokio::sync::Notify::new(),
        })
    }

    pub(crate) fn emit(&self, ev: Event) {
        self.sink.emit(ev);
    }

    /// The connector's once-per-run warnings (host keys recorded, agent problems, reconnects) as events.
    pub(crate) fn report_connector_warnings(&self) {
        for (host, message) in self.connector.take_warnings() {
            self.emit(Event::Warning { host, message });
        }
    }

    pub(crate) fn host_state(&self, name: &str) -> Arc<HostState> {
        let mut m = match self.hosts.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(h) = m.get(name) {
            return h.clone();
        }
        let h = Arc::new(HostState {
            name: name.to_string(),
            inv_vars: self.inv.host_vars_shared(name),
            transport: tokio::sync::Mutex::new(None),
            runtime: Mutex::new(Arc::new(Vars::new())),
            facts: FactCache::new(),
            acc: Mutex::new(HostSummary {
                name: name.to_string(),
                ..Default::default()
            }),
            started: Mutex::new(None),
            done: AtomicBool::new(false),
            runtime_gen: self.runtime_gen.clone(),
            left: AtomicU64::new(0),
            deadman: deadman::Slot::default(),
        });
        m.insert(name.to_string(), h.clone());
        if let Ok(mut o) = self.order.lock() {
            o.push(name.to_string());
        }
        h
    }

    /// The hosts a play runs on: its pattern, within `--limit`.
    pub fn play_hosts(&self, play: &Play) -> (Vec<String>, Vec<String>) {
        match self.inv.select(&play.hosts) {
            Ok(sel) => {
                let hosts = sel
                    .hosts
                    .into_iter()
                    .filter(|h| {
                        self.opts
                            .limit
                            .as_ref()
                            .map(|l| l.contains(h))
                            .unwrap_or(true)
                    })
                    .collect();
                (hosts, sel.warnings)
            }
            Err(d) => (vec![], vec![d.to_string()]),
        }
    }

    /// Run every play of every playbook.
    pub async fn run(self: &Arc<Self>, playbooks: &[Playbook]) -> RunSummary {
        let start = Instant::now();
        let plays: Vec<(PathBuf, Play)> = playbooks
            .iter()
            .flat_map(|pb| {
                let dir = pb.path.parent().map(PathBuf::from).unwrap_or_default();
                pb.plays.iter().map(move |p| (dir.clone(), p.clone()))
            })
            .collect();
        // Which play is each host's last (so it can be finished and disconnected as early as possible).
        let mut play_hosts = Vec::new();
        let mut last_play: HashMap<String, usize> = HashMap::new();
        for (i, (_, p)) in plays.iter().enumerate() {
            let (hosts, warnings) = self.play_hosts(p);
            for w in warnings {
                self.emit(Event::Warning {
                    host: None,
                    message: w,
                });
            }
            for h in &hosts {
                last_play.insert(h.clone(), i);
            }
            play_hosts.push(hosts);
        }
        self.emit(Event::RunStarted {
            playbooks: playbooks
                .iter()
                .map(|p| crate::diag::display_path(&p.path))
                .collect(),
            hosts: play_hosts.iter().flatten().collect::<HashSet<_>>().len(),
            check: self.opts.check,
        });
        let last_play = Arc::new(last_play);
        let mut aborted = None;
        for (i, ((dir, play), hosts)) in plays.into_iter().zip(play_hosts).enumerate() {
            if self.interrupted.load(Ordering::SeqCst) || self.stop.load(Ordering::SeqCst) {
                break;
            }
            let hosts: Vec<String> = hosts
                .into_iter()
                .filter(|h| !self.host_state(h).is_out())
                .collect();
            if hosts.is_empty() {
                self.emit(Event::Warning {
                    host: None,
                    message: format!(
                        "play '{}': no hosts matched (or all have failed); skipping",
                        play.name
                    ),
                });
                continue;
            }
            let rt = Arc::new(self.prepare_play(play, i, dir, hosts));
            self.emit(Event::PlayStarted {
                name: rt.play.name.clone(),
                hosts: rt.hosts.clone(),
            });
            if let Some(reason) = self.run_play(&rt, &last_play).await {
                if let Ok(mut r) = self.abort_reason.lock() {
                    *r = Some(reason.clone());
                }
                aborted = Some(reason);
                self.stop.store(true, Ordering::SeqCst);
            }
        }
        // Finish every host that has not been finished yet (a stopped run, or hosts in no later play).
        let names: Vec<String> = self.order.lock().map(|o| o.clone()).unwrap_or_default();
        for n in &names {
            let hs = self.host_state(n);
            self.finish_host(&hs).await;
        }
        let interrupted = self.interrupted.load(Ordering::SeqCst);
        let duration = start.elapsed();
        self.emit(Event::RunFinished {
            duration,
            interrupted,
        });
        let hosts = names
            .iter()
            .map(|n| self.host_state(n).acc(|a| a.clone()))
            .collect();
        RunSummary {
            hosts,
            interrupted,
            aborted,
            duration,
        }
    }

    fn prepare_play(&self, play: Play, idx: usize, dir: PathBuf, hosts: Vec<String>) -> PlayRt {
        let mut defaults = Vars::new();
        let mut rvars = Vars::new();
        for r in play.roles.iter().chain(play.imported_roles.iter()) {
            for (k, v) in &r.role.defaults {
                defaults.insert(k.clone(), v.clone());
            }
            for (k, v) in &r.role.vars {
                rvars.insert(k.clone(), v.clone());
            }
        }
        let sections = play.sections();
        let handlers = play.handlers.clone();
        // What depends on what the other hosts did needs the hosts in step: failure semantics, reading another
        // host's variables (`hostvars[...]` sees what it set or registered in an earlier task), and reading which
        // hosts are still in the play (a host that failed an earlier task has left `ansible_play_hosts`).
        let leaves: Vec<&Task> = sections
            .iter()
            .flat_map(|(_, ts)| crate::playbook::leaves(ts))
            .chain(crate::playbook::leaves(&handlers))
            .collect();
        let mut needles = Vec::new();
        if self.refs.hostvars {
            needles.push("hostvars");
        }
        if self.refs.play_hosts {
            needles.extend(["play_hosts", "ansible_play_batch"]);
        }
        let reads_others = needles.iter().any(|n| {
            leaves.iter().any(|t| mentions(t, n))
                || [&play.vars, &defaults, &rvars]
                    .iter()
                    .any(|v| Value::Object((*v).clone()).to_string().contains(n))
        });
        let lockstep = play.any_errors_fatal
            || play.max_fail_percentage.is_some()
            || reads_others
            || leaves.iter().any(|t| t.any_errors_fatal);
        PlayRt {
            lockstep,
            play_vars: Arc::new(play.vars.clone()),
            play,
            idx,
            playbook_dir: dir,
            role_defaults: Arc::new(defaults),
            role_vars: Arc::new(rvars),
            sections,
            handlers,
            hosts,
            abort: AtomicBool::new(false),
            abort_reason: Mutex::new(None),
        }
    }

    /// Run one play over its hosts, batch by batch. Returns why the run must stop, if it must.
    async fn run_play(
        self: &Arc<Self>,
        rt: &Arc<PlayRt>,
        last_play: &Arc<HashMap<String, usize>>,
    ) -> Option<String> {
        let batches = batches(&rt.hosts, &rt.play.serial);
        let sem = Arc::new(tokio::sync::Semaphore::new(self.opts.forks.max(1)));
        if let Some(reason) = waves::check_soak(self, rt) {
            return Some(reason);
        }
        // A rollout's devices keep their connection until their wave's gate has run.
        let hold = waves::holds_connections(self, rt);
        for (bi, batch) in batches.iter().cloned().enumerate() {
            if self.interrupted.load(Ordering::SeqCst) {
                return None;
            }
            if !rt.play.serial.is_empty() {
                self.emit(Event::BatchStarted {
                    index: bi + 1,
                    hosts: batch.clone(),
                });
            }
            let changed_before = waves::changed_counts(self, &batch);
            let batch = Arc::new(batch);
            let lockstep = rt.lockstep.then(|| lockstep::Lockstep::new(batch.len()));
            let mut set = tokio::task::JoinSet::new();
            let mut spawned: HashMap<tokio::task::Id, Arc<HostState>> = HashMap::new();
            for h in batch.iter() {
                let ex = self.clone();
                let rt = rt.clone();
                let batch = batch.clone();
                let sem = sem.clone();
                let hs = self.host_state(h);
                let last = last_play.get(h).copied() == Some(rt.idx);
                let task_hs = hs.clone();
                let lockstep = lockstep.clone();
                let handle = set.spawn(async move {
                    // In lockstep, a host holds a fork only while it runs a task (as Ansible's forks), so a
                    // batch larger than --forks still moves task by task.
                    let member = lockstep.as_ref().map(|l| l.member());
                    let step = lockstep.map(|l| host::Stepping {
                        lockstep: l,
                        forks: sem.clone(),
                        batch_index: bi,
                    });
                    let permit = if step.is_none() {
                        match sem.acquire_owned().await {
                            Ok(p) => Some(p),
                            Err(_) => return,
                        }
                    } else {
                        None
                    };
                    let play = CatchPanic(Box::pin(ex.clone().run_host_play(
                        hs.clone(),
                        rt.clone(),
                        batch,
                        step,
                    )));
                    let completed = match play.await {
                        Ok(completed) => completed,
                        Err(payload) => {
                            // A panic in one host's task is a bug; it fails that host and no other.
                            hs.fail_internal(&panic_message(payload.as_ref()));
                            false
                        }
                    };
                    // Out of the play: a run_once waiting for this host learns it, the batch goes on without
                    // it.
                    hs.left_play(rt.idx);
                    ex.progress.notify_waiters();
                    drop(member);
                    drop(permit);
                    if last && completed {
                        hs.acc(|a| {
                            a.status.get_or_insert(HostStatus::Ok);
                        });
                    }
                    // A host that stopped short (Ctrl-C, another host's any_errors_fatal) is finished with the
                    // run, when the reason is known.
                    if (last && completed && !hold) || hs.is_out() {
                        ex.finish_host(&hs).await;
                    }
                });
                spawned.insert(handle.id(), task_hs);
            }
            while let Some(r) = set.join_next_with_id().await {
                if let Err(e) = r {
                    // Panics are caught inside the task; this is a panic while finishing, or a cancelled task.
                    if let Some(hs) = spawned.get(&e.id()) {
                        let what = if e.is_panic() {
                            panic_message(e.into_panic().as_ref())
                        } else {
                            e.to_string()
                        };
                        hs.fail_internal(&what);
                    }
                }
            }
            let stop = waves::after_wave(self, rt, &batches, bi, &changed_before).await;
            if hold {
                for h in batch.iter().filter(|h| last_play.get(*h) == Some(&rt.idx)) {
                    self.finish_host(&self.host_state(h)).await;
                }
            }
            if stop.is_some() {
                return stop;
            }
            let failed = batch.iter().filter(|h| self.host_state(h).is_out()).count();
            if let Some(reason) = rt.abort_reason() {
                return Some(reason);
            }
            if failed > 0 && rt.play.any_errors_fatal {
                return Some(format!(
                    "play '{}' stopped: any_errors_fatal and {failed} host(s) failed",
                    rt.play.name
                ));
            }
            if let Some(reason) = rt.over_max_fail(failed, batch.len(), bi) {
                return Some(reason);
            }
            // As Ansible: a batch in which every host failed ends the run (no later batch or play).
            if failed == batch.len() {
                return Some(format!(
                    "play '{}' stopped: every host of batch {} failed",
                    rt.play.name,
                    bi + 1
                ));
            }
        }
        None
    }

    /// Close a host's connection and report it finished (once).
    async fn finish_host(&self, hs: &Arc<HostState>) {
        if hs.done.swap(true, Ordering::SeqCst) {
            return;
        }
        // What the connection noticed while this host ran (a reconnect, say) is reported before it finishes.
        self.report_connector_warnings();
        let t = hs.transport.lock().await.take();
        // The host runs nothing more: its facts and registered results can go (a thousand devices' worth adds
        // up); the summary below is all that is kept.
        hs.facts.forget_all();
        hs.clear_runtime();
        let stats = match &t {
            Some(t) => {
                let s = t.stats();
                t.close().await;
                s
            }
            None => StatsSnapshot::default(),
        };
        let stats = deadman::add_stats(stats, hs.deadman.extra_stats());
        let duration = hs
            .started
            .lock()
            .ok()
            .and_then(|s| s.map(|i| i.elapsed()))
            .unwrap_or_default();
        let interrupted = self.interrupted.load(Ordering::SeqCst);
        let abort_reason = self.abort_reason.lock().ok().and_then(|r| r.clone());
        let (status, error) = hs.acc(|a| {
            a.stats = stats;
            a.duration = duration;
            // Fail closed: a host is ok only when it finished ok (its status says so).
            if a.status.is_none() {
                if interrupted {
                    a.status = Some(HostStatus::Interrupted);
                } else {
                    a.status = Some(HostStatus::Failed);
                    a.first_error = Some(match &abort_reason {
                        Some(r) => format!("not finished: {r}"),
                        None => internal_error("it stopped without a result"),
                    });
                }
            }
            (
                a.status.unwrap_or(HostStatus::Failed),
                a.first_error.clone(),
            )
        });
        self.emit(Event::HostFinished {
            host: hs.name.clone(),
            status,
            stats,
            duration,
            error: if status == HostStatus::Ok {
                None
            } else {
                error
            },
        });
    }

    /// Magic variables for a host in a play.
    pub(crate) fn magic_vars(&self, host: &str, rt: &PlayRt, batch: &[String]) -> Vars {
        let mut m = Vars::new();
        m.insert("inventory_hostname".into(), json!(host));
        m.insert(
            "inventory_hostname_short".into(),
            json!(host.split('.').next().unwrap_or(host)),
        );
        m.insert("group_names".into(), json!(self.inv.group_names(host)));
        m.insert(
            "playbook_dir".into(),
            json!(rt.playbook_dir.display().to_string()),
        );
        if let Some(f) = self.inv.inventory_file(host) {
            m.insert("inventory_file".into(), json!(f.display().to_string()));
            if let Some(d) = f.parent() {
                m.insert("inventory_dir".into(), json!(d.display().to_string()));
            }
        }
        m.insert("ansible_play_name".into(), json!(rt.play.name));
        m.insert("ansible_check_mode".into(), json!(self.opts.check));
        m.insert("ansible_diff_mode".into(), json!(self.opts.diff));
        m.insert("omit".into(), json!(crate::template::omit_marker()));
        m.insert(
            "ansible_version".into(),
            json!({"full": "2.17.0", "major": 2, "minor": 17, "revision": 0, "string": "2.17.0 (edgefleet)"}),
        );
        m.insert("edgefleet_version".into(), json!(env!("CARGO_PKG_VERSION")));
        if self.refs.groups {
            let g: serde_json::Map<String, Value> = self
                .inv
                .groups_map()
                .into_iter()
                .map(|(k, v)| (k, json!(v)))
                .collect();
            m.insert("groups".into(), Value::Object(g));
        }
        // `ansible_run_tags` is `['all']` without `--tags`, as in Ansible.
        let run_tags = if self.opts.tags.is_empty() {
            vec!["all".to_string()]
        } else {
            self.opts.tags.clone()
        };
        m.insert("ansible_run_tags".into(), json!(run_tags));
        m.insert("ansible_skip_tags".into(), json!(self.opts.skip_tags));
        if self.refs.play_hosts {
            // The play's hosts still in it (failed and unreachable ones leave; `_all` keeps them).
            let active = |hs: &[String]| -> Vec<String> {
                hs.iter()
                    .filter(|h| !self.host_state(h).is_out())
                    .cloned()
                    .collect()
            };
            m.insert("ansible_play_hosts_all".into(), json!(rt.hosts));
            let hosts = active(&rt.hosts);
            m.insert("ansible_play_hosts".into(), json!(hosts));
            m.insert("play_hosts".into(), json!(hosts));
            m.insert("ansible_play_batch".into(), json!(active(batch)));
        }
        m
    }

    /// `hostvars` (only when a template mentions it): every inventory host's variables with its runtime
    /// variables (`set_fact`, registered results, facts) over them, rebuilt only after some host's runtime
    /// variables changed.
    pub(crate) fn hostvars_layer(&self) -> Option<Arc<Vars>> {
        if !self.refs.hostvars {
            return None;
        }
        let gen = self.runtime_gen.load(Ordering::SeqCst);
        let mut cache = match self.hostvars_cache.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        if let Some((g, layer)) = cache.as_ref() {
            if *g == gen {
                return Some(layer.clone());
            }
        }
        let base = self.hostvars_base.get_or_init(|| {
            self.inv
                .host_names()
                .into_iter()
                .map(|h| {
                    let mut v = self.inv.host_vars(&h);
                    v.insert("inventory_hostname".into(), json!(h));
                    (h, Value::Object(v))
                })
                .collect()
        });
        let states = match self.hosts.lock() {
            Ok(m) => m.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let mut hv = base.clone();
        for (name, hs) in &states {
            let runtime = hs.runtime();
            if runtime.is_empty() {
                continue;
            }
            if let Some(Value::Object(v)) = hv.get_mut(name) {
                for (k, x) in runtime.iter() {
                    v.insert(k.clone(), x.clone());
                }
            }
        }
        let mut layer = Vars::new();
        layer.insert("hostvars".into(), Value::Object(hv));
        let layer = Arc::new(layer);
        *cache = Some((gen, layer.clone()));
        Some(layer)
    }
}

/// Does a task's text mention `needle` (its arguments, conditions, loop, vars)? A dynamic include might bring
/// anything, so it counts as mentioning everything.
fn mentions(t: &Task, needle: &str) -> bool {
    use crate::playbook::{Cond, TaskKind};
    let cond = |c: &Option<Cond>| match c {
        Some(Cond::Exprs(es)) => es.iter().any(|e| e.contains(needle)),
        _ => false,
    };
    match &t.kind {
        TaskKind::IncludeTasks { .. } | TaskKind::IncludeRole { .. } => return true,
        TaskKind::Module { args, .. } if args.to_string().contains(needle) => return true,
        _ => {}
    }
    t.when.iter().any(|w| w.contains(needle))
        || t.loop_
            .as_ref()
            .is_some_and(|l| l.to_string().contains(needle))
        || Value::Object(t.vars.clone()).to_string().contains(needle)
        || t.role
            .as_ref()
            .is_some_and(|r| Value::Object(r.params.clone()).to_string().contains(needle))
        || cond(&t.changed_when)
        || cond(&t.failed_when)
}
