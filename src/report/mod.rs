//! Reporting: the engine's typed events, and everything that turns them into output.
//!
//! Owns the [`Event`] vocabulary and the [`EventSink`] trait. The engine emits events and never prints; only
//! this module (and its renderers) writes to the terminal, report files and logs. Every string that leaves
//! through a renderer passes the secret redactor first.
//!
//! Layout: [`Reporting`] (in `hub.rs`) wires the renderers for a run from the output options and fans every
//! event out to them: [`fleet`] folds events into per-device state that every view reads; [`plain`] formats
//! the human lines; [`progress`] is the live terminal display; [`recap`] the end-of-run summary; [`json`] the
//! report document and the jsonl lines; [`log`] the `--log` file; [`term`] colour and terminal facts;
//! [`journal`] the run journal behind `--resume` and `--limit @failed`; [`metrics`] the `--metrics` file;
//! `totals` the fleet's sums (totals, findings, verify matrix rows); [`merge`] one report from a sharded run's.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub mod fleet;
mod hub;
pub mod journal;
pub mod json;
pub mod log;
pub mod merge;
pub mod metrics;
pub mod plain;
pub mod progress;
pub mod recap;
mod summary;
pub mod term;
mod totals;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON document at the end.
    Json,
    /// One JSON event per line as they happen.
    Jsonl,
}

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// Bars on a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// Always bars.
    Bars,
    /// Never bars.
    Plain,
}

/// A device connection's counters (filled in by the transport).
#[derive(Debug, Default, Clone, Copy, serde::Serialize, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Exec round trips.
    pub execs: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Connections opened.
    pub connects: u64,
}

/// How a task ended on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Nothing needed changing.
    Ok,
    /// Something was (or, in check mode, would be) changed.
    Changed,
    /// `when` was false, or tags excluded it.
    Skipped,
    /// Failed; the host stops here.
    Failed,
    /// Failed, but `ignore_errors` let the host continue.
    Ignored,
}

/// How a host ended the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostStatus {
    /// Every task ok (possibly changed).
    Ok,
    /// A task failed.
    Failed,
    /// The host could not be reached.
    Unreachable,
    /// The run was interrupted before the host finished.
    Interrupted,
}

/// What happened to a dead-man revert (see [`Event::Deadman`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadmanState {
    /// Armed on the device together with the change.
    Armed,
    /// A new connection reached the device after the change and disarmed it: the change stays.
    Disarmed,
    /// The device restored its previous files and re-applied them by itself (or is doing so).
    RolledBack,
}

/// One check's result on one host, as a verifying module reports it. Generic: the ids, results and details are
/// the module's; the report only groups them (`ok`, `warning`, `error`/`fatal`, `waived`, `skipped`/`ignored`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostCheck {
    /// The check id.
    pub id: String,
    /// ok | warning | error | fatal | skipped | ignored | waived (or what the module said)
    pub result: String,
    /// Details (first lines of what the check said).
    pub details: Vec<String>,
    /// Why it was waived, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiver: Option<String>,
}

/// A verifying module's check matrix for one host: every check, and whether the host passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckMatrix {
    /// Per-check results, in the module's order.
    pub checks: Vec<HostCheck>,
    /// Did the host pass?
    pub passed: bool,
}

/// How serious a maintenance finding is. Ordered: `Info < Warning < Critical`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing (e.g. a certificate's days left, bytes freed); nothing to do.
    Info,
    /// Needs attention before it becomes a problem.
    Warning,
    /// Needs attention now (expired, out of space, a failing check).
    Critical,
}

impl Severity {
    /// The lowercase name used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One finding a maintenance module reports about one device: a stable id (e.g. `cert.edge_ca.expiring`,
/// `disk.docker_root.low`), a severity, and what to do. Generic: the report groups and counts them, never
/// interprets ids (except that `days_left` feeds the "min certificate days left" metric).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Finding {
    /// Stable id (dotted, lowercase).
    pub id: String,
    /// How serious.
    pub severity: Severity,
    /// One line: what was found and what to do.
    pub message: String,
    /// For certificate findings: whole days until expiry (negative: expired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
    /// For clean-up findings: bytes freed (or that would be freed in check mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// One device a wave's health gate found unhealthy, and why (each reason one line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unhealthy {
    /// Device.
    pub host: String,
    /// Why: failing checks, services or modules down, module restarts during the soak, new failing checks.
    pub reasons: Vec<String>,
}

/// How a wave's gate came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GateStatus {
    /// Unhealthy devices within the tolerance: the rollout goes on.
    Passed,
    /// More unhealthy devices than the tolerance: the rollout stops.
    Failed,
    /// Not judged (check mode, or no device of the wave changed).
    Skipped,
}

impl GateStatus {
    /// The lowercase name used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            GateStatus::Passed => "passed",
            GateStatus::Failed => "failed",
            GateStatus::Skipped => "skipped",
        }
    }
}

/// How one wave (a `serial` batch of a play with `rollout:`) came out: what changed, the soak, the gate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WaveResult {
    /// The play.
    pub play: String,
    /// 1-based wave number.
    pub index: usize,
    /// Waves in the play.
    pub waves: usize,
    /// The wave's devices.
    pub hosts: Vec<String>,
    /// Devices of the wave on which something changed.
    pub changed: usize,
    /// Devices of the wave that failed (or were unreachable) before the gate.
    pub failed: usize,
    /// How long the wave soaked (zero when the gate was skipped).
    #[serde(rename = "soak_ms", with = "duration_ms")]
    pub soak: Duration,
    /// The gate's verdict.
    pub gate: GateStatus,
    /// Why the gate was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_because: Option<String>,
    /// Devices the gate found healthy.
    pub healthy: usize,
    /// Devices the gate found unhealthy (failed devices included), with why.
    pub unhealthy: Vec<Unhealthy>,
    /// The tolerance: the percentage of the wave that may be unhealthy (`max_fail_percentage`, else 0).
    pub max_fail_percentage: f64,
}

/// Something the engine did or saw. Serialized as one JSON line per event in `--output jsonl`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run begins.
    RunStarted {
        /// The playbooks, as given.
        playbooks: Vec<String>,
        /// Hosts matched by the first play (after `--limit`).
        hosts: usize,
        /// Check mode?
        check: bool,
    },
    /// A play begins.
    PlayStarted {
        /// The play's name.
        name: String,
        /// Hosts in the play.
        hosts: Vec<String>,
    },
    /// A batch of a rolling (`serial`) play begins.
    BatchStarted {
        /// 1-based batch number.
        index: usize,
        /// Hosts in the batch.
        hosts: Vec<String>,
    },
    /// A wave of a rollout finished its tasks and soaks before its gate.
    WaveSoaking {
        /// The play.
        play: String,
        /// 1-based wave number.
        index: usize,
        /// Waves in the play.
        waves: usize,
        /// Devices in the wave.
        hosts: usize,
        /// How long it soaks.
        #[serde(rename = "soak_ms", with = "duration_ms")]
        soak: Duration,
    },
    /// A wave's gate has judged it.
    WaveGate(WaveResult),
    /// A rollout stopped: the waves after `wave` did not start.
    RolloutStopped {
        /// The play.
        play: String,
        /// The last wave that ran (1-based).
        wave: usize,
        /// Waves in the play.
        waves: usize,
        /// Why.
        reason: String,
        /// Devices of the later waves, untouched.
        untouched: Vec<String>,
    },
    /// Connecting to a host.
    HostConnecting {
        /// Host.
        host: String,
    },
    /// Connected and authenticated.
    HostConnected {
        /// Host.
        host: String,
        /// Connect + auth time.
        #[serde(with = "duration_ms")]
        elapsed: Duration,
    },
    /// The host cannot be reached; it takes no further part.
    HostUnreachable {
        /// Host.
        host: String,
        /// Why.
        error: String,
    },
    /// A task starts on a host.
    TaskStarted {
        /// Host.
        host: String,
        /// Task name (as displayed).
        task: String,
    },
    /// A task finished on a host.
    TaskResult {
        /// Host.
        host: String,
        /// Task name (as displayed).
        task: String,
        /// Module name.
        module: String,
        /// How it ended.
        status: TaskStatus,
        /// Is this a handler?
        handler: bool,
        /// A short message (error text for failures). Already redacted for `no_log` tasks.
        #[serde(skip_serializing_if = "Option::is_none")]
        msg: Option<String>,
        /// Unified diff (only with `--diff`; secrets masked).
        #[serde(skip_serializing_if = "Option::is_none")]
        diff: Option<String>,
        /// Time spent.
        #[serde(with = "duration_ms")]
        duration: Duration,
        /// Loop item label, when the task loops.
        #[serde(skip_serializing_if = "Option::is_none")]
        item: Option<String>,
        /// A change by this task's module applies configuration by restarting services (counted as an
        /// "apply" in the report). Not in the jsonl event.
        #[serde(skip)]
        applies_config: bool,
    },
    /// One remote command (emitted for logs and `-vvv`; the command line never holds secrets, and stdin is
    /// described, never shown).
    Exec {
        /// Host.
        host: String,
        /// The command line as sent (after framing is removed), redacted.
        command: String,
        /// `<N bytes>` / `<secret, N bytes>` / empty for stdin.
        stdin: String,
        /// How it ended ("exit code 0", "timed out", an error).
        status: String,
        /// Time spent.
        #[serde(with = "duration_ms")]
        duration: Duration,
    },
    /// A warning about a host (or the run, when `host` is None).
    Warning {
        /// Host, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        /// The warning.
        message: String,
    },
    /// A verifying module's check matrix for a host (see [`CheckMatrix`]).
    Verify {
        /// Host.
        host: String,
        /// Per-check results.
        checks: Vec<HostCheck>,
        /// Did the host pass?
        passed: bool,
    },
    /// A maintenance module's findings for a host (see [`Finding`]).
    Findings {
        /// Host.
        host: String,
        /// The findings, in the module's order.
        findings: Vec<Finding>,
    },
    /// A dead-man revert on a host (see `executor::deadman`): armed on the device with a change that may cut
    /// it off, disarmed by a new connection after the change, or run by the device itself because no
    /// connection came within the window ("rolled back by the device").
    Deadman {
        /// Host.
        host: String,
        /// What happened.
        state: DeadmanState,
        /// The confirm window, in seconds.
        window_s: u64,
        /// One line: what was armed, what the device said, why it rolled back.
        detail: String,
    },
    /// A host finished the run.
    HostFinished {
        /// Host.
        host: String,
        /// How it ended.
        status: HostStatus,
        /// Counters from its transport (round trips).
        stats: StatsSnapshot,
        /// Wall time on this host.
        #[serde(with = "duration_ms")]
        duration: Duration,
        /// Why it failed or was unreachable (also for failures no task reported, e.g. a device deadline).
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The run is over.
    RunFinished {
        /// Total wall time.
        #[serde(with = "duration_ms")]
        duration: Duration,
        /// Interrupted by Ctrl-C?
        interrupted: bool,
    },
}

pub use hub::{Outputs, ReportConfig, ReportError, ReportOptions, Reporting};
pub use summary::{HostSummary, RunSummary};
pub use term::ColorMode;

/// Receives the engine's events. Implementations must be cheap and must not block.
pub trait EventSink: Send + Sync {
    /// One event.
    fn emit(&self, ev: Event);
}

/// A shared sink.
pub type SharedSink = Arc<dyn EventSink>;

/// Records every event (tests, and the JSON report builder).
#[derive(Default)]
pub struct Recorder {
    events: std::sync::Mutex<Vec<Event>>,
}

impl Recorder {
    /// The events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl EventSink for Recorder {
    fn emit(&self, ev: Event) {
        if let Ok(mut e) = self.events.lock() {
            e.push(ev);
        }
    }
}

/// Sends every event to several sinks.
pub struct Tee(pub Vec<SharedSink>);

impl EventSink for Tee {
    fn emit(&self, ev: Event) {
        if let Some((last, rest)) = self.0.split_last() {
            for s in rest {
                s.emit(ev.clone());
            }
            last.emit(ev);
        }
    }
}

/// Serialize durations as integer milliseconds.
pub mod duration_ms {
    use serde::Serializer;
    use std::time::Duration;

    /// Serialize a duration as whole milliseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}
