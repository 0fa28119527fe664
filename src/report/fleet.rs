//! The fleet as the reporters see it: every device's state, folded from the engine's events.
//!
//! Owns the aggregation that the progress display, the recap, the JSON report and the jsonl summary all read,
//! so they can never disagree. Folding an event is O(1) (amortized) and reading the live counters is O(1); only
//! the end-of-run views walk every device. It must not print, and must not hold anything the events did not
//! say (plus the executor's [`RunSummary`] at the end).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

pub use super::totals::{CheckRow, FindingTotals, Totals};
use super::RunSummary;
use super::StatsSnapshot;
use super::{Event, HostCheck, HostStatus, TaskStatus};

/// How a device ended, as reported (finer than [`HostStatus`]: `ok` devices are split by what happened).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceStatus {
    /// A task failed and stopped the device.
    Failed,
    /// The device could not be reached.
    Unreachable,
    /// The run was interrupted before the device finished.
    Interrupted,
    /// A change cut the device off and the device restored its previous configuration by itself (the
    /// dead-man revert: no new connection reached it within the confirm window).
    RolledBack,
    /// At least one task changed something (or would have, in check mode).
    Changed,
    /// Tasks ran and nothing needed changing.
    Ok,
    /// Nothing ran on the device (every task skipped, or the run stopped before it started).
    Skipped,
    /// Still running (only seen in live views).
    Running,
}

impl DeviceStatus {
    /// The lowercase name used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Failed => "failed",
            DeviceStatus::Unreachable => "unreachable",
            DeviceStatus::Interrupted => "interrupted",
            DeviceStatus::RolledBack => "rolled_back",
            DeviceStatus::Changed => "changed",
            DeviceStatus::Ok => "ok",
            DeviceStatus::Skipped => "skipped",
            DeviceStatus::Running => "running",
        }
    }

    /// Is this a device the operator must look at?
    pub fn is_bad(self) -> bool {
        matches!(
            self,
            DeviceStatus::Failed
                | DeviceStatus::Unreachable
                | DeviceStatus::Interrupted
                | DeviceStatus::RolledBack
        )
    }
}

/// Task counts on one device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TaskCounts {
    /// Unchanged.
    pub ok: usize,
    /// Changed (or would change, in check mode).
    pub changed: usize,
    /// Failed (including failures a `rescue` later handled).
    pub failed: usize,
    /// Skipped (`when`, tags, check mode).
    pub skipped: usize,
    /// Failed but `ignore_errors`.
    pub ignored: usize,
}

/// A task that changed something on a device.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChangedTask {
    /// Task name.
    pub task: String,
    /// Module.
    pub module: String,
    /// Was it a handler?
    pub handler: bool,
    /// Loop item label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// Unified diff (with `--diff`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// The task that failed on a device.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedTask {
    /// Task name.
    pub task: String,
    /// Module (`-` when the task failed before a module ran).
    pub module: String,
    /// Loop item label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// The whole error message.
    pub message: String,
}

/// A device's verification results.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyResult {
    /// Production-ready by the policy?
    pub passed: bool,
    /// Per-check results.
    pub checks: Vec<HostCheck>,
}

/// Everything known about one device.
#[derive(Debug, Clone)]
pub struct Device {
    /// Inventory name.
    pub name: String,
    /// How it ended (None while running).
    pub host_status: Option<HostStatus>,
    /// Task counts.
    pub tasks: TaskCounts,
    /// Tasks that changed something, in order.
    pub changed_tasks: Vec<ChangedTask>,
    /// The last failure that was not ignored (the one that stopped the device, unless a rescue took it).
    pub failed_task: Option<FailedTask>,
    /// Why it was unreachable.
    pub unreachable: Option<String>,
    /// An error known only from the run summary (a device deadline, a vars file that failed to load).
    pub summary_error: Option<String>,
    /// The last check matrix a verifying module reported for it.
    pub verify: Option<VerifyResult>,
    /// Findings maintenance modules reported for it, in order.
    pub findings: Vec<super::Finding>,
    /// Did a maintenance module report on it (even with no findings)?
    pub maintained: bool,
    /// The last dead-man event about it: what happened and what the device said.
    pub deadman: Option<(super::DeadmanState, String)>,
    /// Warnings about this device.
    pub warnings: Vec<String>,
    /// Transport counters.
    pub stats: StatsSnapshot,
    /// Wall time on the device.
    pub duration: Duration,
    /// Connect + authenticate time.
    pub connect: Option<Duration>,
    /// Changed tasks whose module applies configuration by restarting services (`iotedge_apply`).
    pub applies: usize,
    /// When the reporters first heard of it.
    pub first_seen: Instant,
    /// The task running now, and since when.
    pub current: Option<(String, Instant)>,
    /// Connecting since.
    pub connecting: Option<Instant>,
}

impl Device {
    fn new(name: &str, now: Instant) -> Self {
        Device {
            name: name.to_string(),
            host_status: None,
            tasks: TaskCounts::default(),
            changed_tasks: vec![],
            failed_task: None,
            unreachable: None,
            summary_error: None,
            verify: None,
            findings: Vec::new(),
            maintained: false,
            deadman: None,
            warnings: vec![],
            stats: StatsSnapshot::default(),
            duration: Duration::ZERO,
            connect: None,
            applies: 0,
            first_seen: now,
            current: None,
            connecting: None,
        }
    }

    /// The reported status.
    pub fn status(&self) -> DeviceStatus {
        if matches!(self.deadman, Some((super::DeadmanState::RolledBack, _)))
            && self.host_status.is_some()
        {
            return DeviceStatus::RolledBack;
        }
        match self.host_status {
            None => DeviceStatus::Running,
            Some(HostStatus::Failed) => DeviceStatus::Failed,
            Some(HostStatus::Unreachable) => DeviceStatus::Unreachable,
            Some(HostStatus::Interrupted) => DeviceStatus::Interrupted,
            Some(HostStatus::Ok) => {
                if self.tasks.changed > 0 {
                    DeviceStatus::Changed
                } else if self.tasks.ok + self.tasks.ignored + self.tasks.failed == 0 {
                    DeviceStatus::Skipped
                } else {
                    DeviceStatus::Ok
                }
            }
        }
    }

    /// One line saying what went wrong, for devices that are not ok: `task: first line of the error`, the
    /// unreachable reason, or the executor's own reason.
    pub fn error_line(&self) -> Option<String> {
        let first = |s: &str| super::term::first_line(s).to_string();
        if let (Some((super::DeadmanState::RolledBack, detail)), Some(_)) =
            (&self.deadman, self.host_status)
        {
            return Some(format!("rolled back by the device: {}", first(detail)));
        }
        match self.host_status {
            Some(HostStatus::Unreachable) => self
                .unreachable
                .as_deref()
                .or(self.summary_error.as_deref())
                .map(first),
            // The failed task when an event named one; otherwise the executor's reason (a device deadline, a
            // vars file that did not load), which no event carries.
            Some(HostStatus::Failed) => match (&self.failed_task, &self.summary_error) {
                (Some(f), _) => Some(format!("{}: {}", f.task, first(&f.message))),
                (None, s) => s.as_deref().map(first),
            },
            Some(HostStatus::Interrupted) => Some("interrupted before it finished".into()),
            _ => None,
        }
    }
}

/// The live counters the progress display reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Devices the run expects (from `RunStarted`, grown if more appear).
    pub total: usize,
    /// Devices finished.
    pub finished: usize,
    /// Devices finished ok with at least one changed task.
    pub changed: usize,
    /// Devices finished failed.
    pub failed: usize,
    /// Devices finished unreachable.
    pub unreachable: usize,
    /// Devices in flight.
    pub in_flight: usize,
}

/// One device in flight, for the live display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// Device.
    pub name: String,
    /// Time since it started.
    pub elapsed: Duration,
    /// What it is doing: the current task, `connecting`, or `between tasks`.
    pub doing: String,
    /// Time spent on what it is doing.
    pub doing_for: Duration,
}

/// Where a rollout stopped, and what it left untouched.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RolloutStop {
    /// The play.
    pub play: String,
    /// The last wave that ran (1-based).
    pub wave: usize,
    /// Waves in the play.
    pub waves: usize,
    /// Why.
    pub reason: String,
    /// Devices of the later waves (never contacted).
    pub untouched: Vec<String>,
}

/// Every device, folded from events.
#[derive(Debug)]
pub struct Fleet {
    /// When the reporters were set up (wall clock, for reports).
    pub started_at: time::OffsetDateTime,
    /// The same moment, monotonic.
    pub started: Instant,
    /// Playbooks, as given.
    pub playbooks: Vec<String>,
    /// Check mode?
    pub check: bool,
    /// Plays started, in order.
    pub plays: Vec<String>,
    /// Run wall time (from `RunFinished`).
    pub duration: Option<Duration>,
    /// Interrupted?
    pub interrupted: bool,
    /// Why the run stopped early (from the summary).
    pub aborted: Option<String>,
    /// Warnings in order: (host, message).
    pub warnings: Vec<(Option<String>, String)>,
    /// Every gated wave of a rollout, in order.
    pub waves: Vec<super::WaveResult>,
    /// Where a rollout stopped: (play, last wave, waves, reason, untouched devices).
    pub rollout_stopped: Option<RolloutStop>,
    devices: Vec<Device>,
    index: HashMap<String, usize>,
    in_flight: BTreeSet<(Instant, usize)>,
    counts: Counts,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet::new()
    }
}

impl Fleet {
    /// An empty fleet, started now.
    pub fn new() -> Self {
        Fleet {
            started_at: time::OffsetDateTime::now_utc(),
            started: Instant::now(),
            playbooks: vec![],
            check: false,
            plays: vec![],
            duration: None,
            interrupted: false,
            aborted: None,
            warnings: vec![],
            waves: vec![],
            rollout_stopped: None,
            devices: vec![],
            index: HashMap::new(),
            in_flight: BTreeSet::new(),
            counts: Counts::default(),
        }
    }

    /// The devices, in first-seen order (inventory order after [`Fleet::merge_summary`]).
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// One device by name.
    pub fn device(&self, name: &str) -> Option<&Device> {
        self.index.get(name).map(|&i| &self.devices[i])
    }

    /// The live counters.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    fn idx(&mut self, name: &str, now: Instant) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.devices.len();
        self.devices.push(Device::new(name, now));
        self.index.insert(name.to_string(), i);
        if self.devices.len() > self.counts.total {
            self.counts.total = self.devices.len();
        }
        i
    }

    /// The device's index, marking it in flight if it has not finished.
    fn active(&mut self, name: &str, now: Instant) -> usize {
        let i = self.idx(name, now);
        let d = &self.devices[i];
        if d.host_status.is_none() && self.in_flight.insert((d.first_seen, i)) {
            self.counts.in_flight += 1;
        }
        i
    }

    /// Fold one event in, at time `now`.
    pub fn apply(&mut self, ev: &Event, now: Instant) {
        match ev {
            Event::RunStarted {
                playbooks,
                hosts,
                check,
            } => {
                self.playbooks = playbooks.clone();
                self.check = *check;
                // The run's clock starts here (not when the reporters were set up, before loading).
                self.started = now;
                self.started_at = time::OffsetDateTime::now_utc();
                self.counts.total = (*hosts).max(self.devices.len());
            }
            Event::PlayStarted { name, .. } => self.plays.push(name.clone()),
            Event::BatchStarted { .. } | Event::WaveSoaking { .. } => {}
            Event::WaveGate(w) => self.waves.push(w.clone()),
            Event::RolloutStopped {
                play,
                wave,
                waves,
                reason,
                untouched,
            } => {
                self.rollout_stopped = Some(RolloutStop {
                    play: play.clone(),
                    wave: *wave,
                    waves: *waves,
                    reason: reason.clone(),
                    untouched: untouched.clone(),
                })
            }
            Event::HostConnecting { host } => {
                let i = self.active(host, now);
                self.devices[i].connecting = Some(now);
            }
            Event::HostConnected { host, elapsed } => {
                let i = self.active(host, now);
                let d = &mut self.devices[i];
                d.connecting = None;
                d.connect = Some(*elapsed);
            }
            Event::HostUnreachable { host, error } => {
                let i = self.active(host, now);
                let d = &mut self.devices[i];
                d.connecting = None;
                d.current = None;
                if d.unreachable.is_none() {
                    d.unreachable = Some(error.clone());
                }
            }
            Event::TaskStarted { host, task } => {
                let i = self.active(host, now);
                self.devices[i].current = Some((task.clone(), now));
            }
            Event::TaskResult {
                host,
                task,
                module,
                status,
                handler,
                msg,
                diff,
                item,
                applies_config,
                ..
            } => {
                let i = self.active(host, now);
                let d = &mut self.devices[i];
                // A loop reports each item; the task is still running until its last item.
                if item.is_none() {
                    d.current = None;
                }
                match status {
                    TaskStatus::Ok => d.tasks.ok += 1,
                    TaskStatus::Changed => {
                        d.tasks.changed += 1;
                        if *applies_config {
                            d.applies += 1;
                        }
                        d.changed_tasks.push(ChangedTask {
                            task: task.clone(),
                            module: module.clone(),
                            handler: *handler,
                            item: item.clone(),
                            diff: diff.clone(),
                        });
                    }
                    TaskStatus::Skipped => d.tasks.skipped += 1,
                    TaskStatus::Failed => {
                        d.tasks.failed += 1;
                        d.failed_task = Some(FailedTask {
                            task: task.clone(),
                            module: module.clone(),
                            item: item.clone(),
                            message: msg.clone().unwrap_or_else(|| "failed".into()),
                        });
                    }
                    TaskStatus::Ignored => d.tasks.ignored += 1,
                }
            }
            Event::Exec { host, .. } => {
                self.active(host, now);
            }
            Event::Warning { host, message } => {
                if let Some(h) = host {
                    let i = self.idx(h, now);
                    self.devices[i].warnings.push(message.clone());
                }
                self.warnings.push((host.clone(), message.clone()));
            }
            Event::Verify {
                host,
                checks,
                passed,
            } => {
                let i = self.active(host, now);
                self.devices[i].verify = Some(VerifyResult {
                    passed: *passed,
                    checks: checks.clone(),
                });
            }
            Event::Deadman {
                host,
                state,
                detail,
                ..
            } => {
                let i = self.idx(host, now);
                self.devices[i].deadman = Some((*state, detail.clone()));
            }
            Event::Findings { host, findings } => {
                let i = self.active(host, now);
                self.devices[i].findings.extend(findings.iter().cloned());
                self.devices[i].maintained = true;
            }
            Event::HostFinished {
                host,
                status,
                stats,
                duration,
                error,
            } => {
                let i = self.idx(host, now);
                let d = &mut self.devices[i];
                if d.summary_error.is_none() {
                    d.summary_error = error.clone();
                }
                let was_finished = d.host_status.is_some();
                d.host_status = Some(*status);
                d.stats = *stats;
                d.duration = *duration;
                d.current = None;
                d.connecting = None;
                let key = (d.first_seen, i);
                if self.in_flight.remove(&key) {
                    self.counts.in_flight -= 1;
                }
                if !was_finished {
                    self.counts.finished += 1;
                    match status {
                        HostStatus::Failed => self.counts.failed += 1,
                        HostStatus::Unreachable => self.counts.unreachable += 1,
                        HostStatus::Ok if self.devices[i].tasks.changed > 0 => {
                            self.counts.changed += 1
                        }
                        _ => {}
                    }
                }
            }
            Event::RunFinished {
                duration,
                interrupted,
            } => {
                self.duration = Some(*duration);
                self.interrupted = *interrupted;
            }
        }
    }

    /// Up to `n` devices in flight, longest-running first (the stragglers surface as the run tails off).
    /// O(n): the in-flight set is kept ordered by start time.
    pub fn in_flight(&self, n: usize, now: Instant) -> Vec<InFlight> {
        self.in_flight
            .iter()
            .take(n)
            .map(|&(start, i)| {
                let d = &self.devices[i];
                let (doing, since) = match (&d.current, d.connecting) {
                    (Some((t, s)), _) => (t.clone(), *s),
                    (None, Some(s)) => ("connecting".to_string(), s),
                    (None, None) => ("between tasks".to_string(), start),
                };
                InFlight {
                    name: d.name.clone(),
                    elapsed: now.saturating_duration_since(start),
                    doing,
                    doing_for: now.saturating_duration_since(since),
                }
            })
            .collect()
    }

    /// Merge what only the executor's summary knows: the device order (inventory order), devices no event
    /// named, errors no event carried, and why the run stopped.
    pub fn merge_summary(&mut self, summary: &RunSummary) {
        let now = Instant::now();
        for h in &summary.hosts {
            let i = self.idx(&h.name, now);
            let d = &mut self.devices[i];
            if d.host_status.is_none() {
                d.host_status = h.status;
                d.stats = h.stats;
                d.duration = h.duration;
            }
            if d.summary_error.is_none() {
                d.summary_error = h.first_error.clone();
            }
        }
        // Summary order first, then anything only events named.
        let pos: HashMap<&str, usize> = summary
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.as_str(), i))
            .collect();
        let mut order: Vec<usize> = (0..self.devices.len()).collect();
        order.sort_by_key(|&i| {
            (
                pos.get(self.devices[i].name.as_str())
                    .copied()
                    .unwrap_or(usize::MAX),
                i,
            )
        });
        let mut old: Vec<Option<Device>> = std::mem::take(&mut self.devices)
            .into_iter()
            .map(Some)
            .collect();
        self.devices = order.iter().filter_map(|&i| old[i].take()).collect();
        self.index = self
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.clone(), i))
            .collect();
        self.in_flight = self
            .devices
            .iter()
            .enumerate()
            .filter(|(_, d)| d.host_status.is_none())
            .map(|(i, d)| (d.first_seen, i))
            .collect();
        if self.aborted.is_none() {
            self.aborted = summary.aborted.clone();
        }
        self.interrupted |= summary.interrupted;
        if self.duration.is_none() {
            self.duration = Some(summary.duration);
        }
    }

    /// Totals over every device.
    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            devices: self.devices.len(),
            ..Totals::default()
        };
        for d in &self.devices {
            match d.status() {
                DeviceStatus::Ok => t.ok += 1,
                DeviceStatus::Changed => t.changed += 1,
                DeviceStatus::Failed => t.failed += 1,
                DeviceStatus::Unreachable => t.unreachable += 1,
                DeviceStatus::Skipped => t.skipped += 1,
                DeviceStatus::Interrupted => t.interrupted += 1,
                DeviceStatus::RolledBack => t.rolled_back += 1,
                DeviceStatus::Running => t.running += 1,
            }
            t.tasks_changed += d.tasks.changed;
            t.tasks_failed += d.tasks.failed;
            t.applies += d.applies;
            t.round_trips += d.stats.execs;
            if let Some(v) = &d.verify {
                t.verified += 1;
                if v.passed {
                    t.verify_passed += 1;
                }
            }
        }
        t
    }

    /// Maintenance findings over the fleet (None when no maintenance module reported on any device).
    pub fn findings_totals(&self) -> Option<FindingTotals> {
        let mut t = FindingTotals::default();
        for d in self.devices.iter().filter(|d| d.maintained) {
            t.devices += 1;
            if !d.findings.is_empty() {
                t.devices_with_findings += 1;
            }
            for f in &d.findings {
                match f.severity {
                    super::Severity::Critical => t.critical += 1,
                    super::Severity::Warning => t.warning += 1,
                    super::Severity::Info => t.info += 1,
                }
            }
        }
        (t.devices > 0).then_some(t)
    }

    /// The verify matrix: per check, which devices had which result. Checks in first-seen order.
    pub fn verify_matrix(&self) -> Vec<CheckRow> {
        let mut rows: Vec<CheckRow> = vec![];
        let mut at: HashMap<String, usize> = HashMap::new();
        for d in &self.devices {
            let Some(v) = &d.verify else { continue };
            for c in &v.checks {
                let i = *at.entry(c.id.clone()).or_insert_with(|| {
                    rows.push(CheckRow {
                        id: c.id.clone(),
                        ..CheckRow::default()
                    });
                    rows.len() - 1
                });
                let r = &mut rows[i];
                let list = match c.result.as_str() {
                    "ok" => &mut r.ok,
                    "warning" => &mut r.warning,
                    "error" | "fatal" => &mut r.error,
                    "waived" => &mut r.waived,
                    _ => &mut r.skipped,
                };
                list.push(d.name.clone());
                if let Some(w) = &c.waiver {
                    if !r.waivers.contains(w) {
                        r.waivers.push(w.clone());
                    }
                }
            }
        }
        rows
    }

    /// Warnings grouped by message, in first-seen order: (message, hosts it was about).
    pub fn warnings_grouped(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = vec![];
        let mut at: HashMap<&str, usize> = HashMap::new();
        let mut seen: std::collections::HashSet<(usize, &str)> = Default::default();
        for (h, m) in &self.warnings {
            let i = *at.entry(m.as_str()).or_insert_with(|| {
                out.push((m.clone(), vec![]));
                out.len() - 1
            });
            if let Some(h) = h {
                if seen.insert((i, h.as_str())) {
                    out[i].1.push(h.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(host: &str, task: &str, module: &str, status: TaskStatus) -> Event {
        Event::TaskResult {
            host: host.into(),
            task: task.into(),
            module: module.into(),
            status,
            handler: false,
            msg: (status == TaskStatus::Failed).then(|| "boom\nsecond line".to_string()),
            diff: None,
            duration: Duration::from_millis(5),
            item: None,
            applies_config: module == "iotedge_apply",
        }
    }

    fn finished(host: &str, status: HostStatus) -> Event {
        Event::HostFinished {
            host: host.into(),
            status,
            stats: StatsSnapshot {
                execs: 3,
                ..Default::default()
            },
            duration: Duration::from_millis(10),
            error: None,
        }
    }

    #[test]
    fn folds_statuses_and_counts() {
        let mut f = Fleet::new();
        let t0 = Instant::now();
        f.apply(
            &Event::RunStarted {
                playbooks: vec!["p.yml".into()],
                hosts: 4,
                check: false,
            },
            t0,
        );
        f.apply(&result("a", "t1", "copy", TaskStatus::Changed), t0);
        f.apply(
            &result("a", "apply", "iotedge_apply", TaskStatus::Changed),
            t0,
        );
        f.apply(&result("b", "t1", "copy", TaskStatus::Ok), t0);
        f.apply(&result("c", "t1", "command", TaskStatus::Failed), t0);
        f.apply(&result("d", "t1", "copy", TaskStatus::Skipped), t0);
        assert_eq!(f.counts().in_flight, 4);
        assert_eq!(f.counts().changed, 0, "counted when the device finishes");
        for (h, s) in [
            ("a", HostStatus::Ok),
            ("b", HostStatus::Ok),
            ("c", HostStatus::Failed),
            ("d", HostStatus::Ok),
        ] {
            f.apply(&finished(h, s), t0);
        }
        let c = f.counts();
        assert_eq!((c.total, c.finished, c.failed, c.in_flight), (4, 4, 1, 0));
        assert_eq!(c.changed, 1);
        let t = f.totals();
        assert_eq!(
            (
                t.changed,
                t.ok,
                t.failed,
                t.skipped,
                t.applies,
                t.tasks_changed
            ),
            (1, 1, 1, 1, 1, 2)
        );
        assert_eq!(t.round_trips, 12);
        assert_eq!(
            f.device("c").unwrap().error_line().as_deref(),
            Some("t1: boom")
        );
        assert_eq!(f.device("a").unwrap().status(), DeviceStatus::Changed);
    }

    #[test]
    fn in_flight_oldest_first_and_bounded() {
        let mut f = Fleet::new();
        let t0 = Instant::now();
        for (k, h) in ["x", "y", "z"].iter().enumerate() {
            f.apply(
                &Event::TaskStarted {
                    host: h.to_string(),
                    task: format!("task {k}"),
                },
                t0 + Duration::from_secs(k as u64),
            );
        }
        let now = t0 + Duration::from_secs(10);
        let v = f.in_flight(2, now);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].name, "x");
        assert_eq!(v[0].elapsed, Duration::from_secs(10));
        assert_eq!(v[1].doing, "task 1");
        f.apply(&finished("x", HostStatus::Ok), now);
        let v = f.in_flight(5, now);
        assert_eq!(
            v.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
            vec!["y", "z"]
        );
    }

    #[test]
    fn unreachable_and_summary_errors() {
        let mut f = Fleet::new();
        let t0 = Instant::now();
        f.apply(&Event::HostConnecting { host: "u".into() }, t0);
        assert_eq!(f.in_flight(1, t0)[0].doing, "connecting");
        f.apply(
            &Event::HostUnreachable {
                host: "u".into(),
                error: "connect to 10.0.0.1:22: refused\nmore".into(),
            },
            t0,
        );
        f.apply(&finished("u", HostStatus::Unreachable), t0);
        f.apply(&finished("late", HostStatus::Failed), t0);
        let summary = RunSummary {
            hosts: vec![
                crate::report::HostSummary {
                    name: "late".into(),
                    status: Some(HostStatus::Failed),
                    first_error: Some("device deadline of 5s exceeded".into()),
                    ..Default::default()
                },
                crate::report::HostSummary {
                    name: "u".into(),
                    status: Some(HostStatus::Unreachable),
                    ..Default::default()
                },
            ],
            aborted: Some("stopped".into()),
            ..Default::default()
        };
        f.merge_summary(&summary);
        let names: Vec<&str> = f.devices().iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, vec!["late", "u"]);
        assert_eq!(
            f.device("u").unwrap().error_line().as_deref(),
            Some("connect to 10.0.0.1:22: refused")
        );
        assert_eq!(
            f.device("late").unwrap().error_line().as_deref(),
            Some("device deadline of 5s exceeded")
        );
        assert_eq!(f.aborted.as_deref(), Some("stopped"));
    }

    #[test]
    fn verify_matrix_groups_devices() {
        let mut f = Fleet::new();
        let t0 = Instant::now();
        let check = |id: &str, r: &str| HostCheck {
            id: id.into(),
            result: r.into(),
            details: vec![],
            waiver: None,
        };
        f.apply(
            &Event::Verify {
                host: "a".into(),
                checks: vec![check("c1", "ok"), check("c2", "warning")],
                passed: true,
            },
            t0,
        );
        f.apply(
            &Event::Verify {
                host: "b".into(),
                checks: vec![check("c1", "fatal"), check("c2", "waived")],
                passed: false,
            },
            t0,
        );
        let m = f.verify_matrix();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].ok, vec!["a"]);
        assert_eq!(m[0].error, vec!["b"]);
        assert_eq!(m[1].warning, vec!["a"]);
        assert_eq!(m[1].waived, vec!["b"]);
        let t = f.totals();
        assert_eq!((t.verified, t.verify_passed), (2, 1));
    }
}
