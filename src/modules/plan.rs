//! What a module decides about a task ([`Plan`], [`Decision`]), the [`Step`]s the executor applies for it, and
//! what the module makes of the results ([`Ran`] -> [`Outcome`]).
//!
//! Owns the shape of a decision, so that invalid combinations cannot be written: a task that is skipped has no
//! steps, a failing task runs nothing, only a change can have unknown effects. It must not run anything:
//! applying is the executor's job.

use serde_json::{Map, Value};

use crate::report::{CheckMatrix, Finding};
use crate::transport::{Exec, Output};

/// One file to write atomically on the device.
#[derive(Clone)]
pub struct FileWrite {
    /// Destination path.
    pub path: String,
    /// Full content.
    pub content: bytes::Bytes,
    /// Content is secret: never shown in diffs or logs; travels only over stdin.
    pub secret: bool,
    /// Final mode (applied before the content is written, so it holds from the first byte).
    pub mode: Option<u32>,
    /// Owner (name or uid).
    pub owner: Option<String>,
    /// Group (name or gid).
    pub group: Option<String>,
    /// Keep a rollback copy of the previous version in edgefleet's state directory on the device (see
    /// [`rollback_name`]), never beside the file: in include directories (`sudoers.d`, `cron.d`, `conf.d`,
    /// systemd unit directories) a stray file is read by the service.
    pub backup: bool,
    /// Ansible's `backup: yes`: also a timestamped copy beside the file (`NAME.PID.YYYY-MM-DD@HH:MM:SS~`),
    /// named in the result as `backup_file`. Only when the task asks.
    pub backup_beside: bool,
    /// Create the parent directory with this spec if missing.
    pub parent: Option<DirSpec>,
}

impl std::fmt::Debug for FileWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWrite")
            .field("path", &self.path)
            .field("bytes", &self.content.len())
            .field("secret", &self.secret)
            .field("mode", &self.mode.map(|m| format!("{m:04o}")))
            .field("owner", &self.owner)
            .field("group", &self.group)
            .field("backup", &self.backup)
            .field("backup_beside", &self.backup_beside)
            .finish()
    }
}

/// Where rollback copies live on the device, as the word list of a shell `for` loop: the first of these
/// directories that can be used (the second for a login without root and without become). Created with mode
/// 0700: copies of secret files must stay private.
pub const ROLLBACK_DIRS_SH: &str =
    r#"/var/lib/edgefleet/backup "${HOME:-/root}/.edgefleet/backup""#;

/// How many rollback copies are kept per file: the newest (`NAME.1`, what a failed `iotedge config apply` is
/// restored from) and two older ones, so an operator can step back across the last runs by hand, while a
/// device with little flash never accumulates copies.
pub const ROLLBACK_KEEP: u32 = 3;

/// The name of a file's rollback copies in the state directory (without the `.N` suffix): the path with `%`
/// and `/` percent-encoded, so every managed file has its own flat, reversible name (`%2Fetc%2Faziot%2Fconfig.toml`).
/// Paths too long for one file name are shortened to a hash of the path plus the file name.
pub fn rollback_name(path: &str) -> String {
    let enc = path.replace('%', "%25").replace('/', "%2F");
    if enc.len() <= 200 {
        return enc;
    }
    let base = path.rsplit('/').next().unwrap_or(path);
    let base: String = base.chars().take(100).collect();
    format!(
        "{}-{}",
        &crate::facts::sha256_hex(path.as_bytes())[..16],
        base.replace('%', "%25")
    )
}

/// What the device must do to use its previous configuration again after a change that may cut it off is
/// undone (the dead-man revert, see [`CutOff`]), in a fixed vocabulary so that no module-made shell text is
/// stored on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reapply {
    /// `systemctl daemon-reload` (a systemd drop-in changed).
    DaemonReload,
    /// `systemctl restart UNIT` (`service UNIT restart` without systemd).
    Restart(String),
    /// `iotedge config apply` (config.toml changed).
    IotedgeConfigApply,
}

impl Reapply {
    /// The words stored on the device for the revert script (`restart docker`).
    pub fn words(&self) -> Vec<String> {
        match self {
            Reapply::DaemonReload => vec!["daemon-reload".into()],
            Reapply::Restart(u) => vec!["restart".into(), u.clone()],
            Reapply::IotedgeConfigApply => vec!["iotedge-config-apply".into()],
        }
    }
}

/// A change that may cut the device off the network (DNS or proxy settings, config.toml, systemd drop-ins):
/// the executor arms a revert on the device before the plan's file writes (the dead-man revert) holding the
/// previous versions of the files the plan writes, and disarms it from a new connection afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutOff {
    /// Why this change may cut the device off ("daemon.json DNS servers change").
    pub why: String,
    /// What restores the previous configuration's effect once its files are back, in order.
    pub reapply: Vec<Reapply>,
    /// The device has a previous version of the files (it ran with a configuration that can be gone back
    /// to). Without one — a first provisioning — the revert is armed only when the play asks for it.
    pub previous: bool,
}

/// A directory to ensure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSpec {
    /// Path.
    pub path: String,
    /// Mode.
    pub mode: Option<u32>,
    /// Owner.
    pub owner: Option<String>,
    /// Group.
    pub group: Option<String>,
}

/// What a change touches on the device besides the files it writes (those the executor knows), so that the
/// fact cache is brought up to date in the same round trip and later tasks see the effects of this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// This path (re-stated after the steps ran).
    Path(String),
    /// This path and everything under it (re-stated; what was known under it is forgotten).
    Tree(String),
    /// A command fact, by its cache key (forgotten: asked again when needed).
    Fact(String),
}

/// Something the executor does on the device to apply a plan.
#[derive(Debug, Clone)]
pub enum Step {
    /// Run a command. Its output goes to the module's `interpret`.
    Exec {
        /// The command.
        exec: Exec,
        /// What it does, for logs and error messages ("restart docker").
        what: String,
    },
    /// Write files atomically (one round trip for all of them).
    Write(Vec<FileWrite>),
    /// Ensure directories exist with a mode and owner (merged into the next `Write` when there is one, so
    /// it costs no extra round trip).
    EnsureDirs(Vec<DirSpec>),
    /// A change that proves itself, with its way back: run `exec`, let `judge` read its output on the
    /// controller, and when the judge refuses it run `rollback` at once (same connection, no other step in
    /// between). Both outputs go to `interpret` (the rollback's under `rollback_what`); running stops after a
    /// rollback. For changes that can break a device in ways only the device shows (a new certificate the
    /// runtime rejects).
    Guarded {
        /// The change and the evidence it gathers.
        exec: Exec,
        /// What it does ("renew the Edge CA").
        what: String,
        /// Reads the output: `Err(reason)` means the change did not hold and must be undone.
        judge: Judge,
        /// Undoes the change (idempotent: it must be safe however far `exec` got).
        rollback: Exec,
        /// What the rollback does, for logs and `interpret`.
        rollback_what: String,
    },
}

/// The controller-side judgment of a [`Step::Guarded`] change: `Err(reason)` when the change must be undone.
#[derive(Clone)]
pub struct Judge(std::sync::Arc<JudgeFn>);

/// The function behind a [`Judge`].
type JudgeFn = dyn Fn(&Output) -> Result<(), String> + Send + Sync;

impl Judge {
    /// Wrap a judgment.
    pub fn new(f: impl Fn(&Output) -> Result<(), String> + Send + Sync + 'static) -> Self {
        Judge(std::sync::Arc::new(f))
    }

    /// Judge an output.
    pub fn judge(&self, o: &Output) -> Result<(), String> {
        (self.0)(o)
    }
}

impl std::fmt::Debug for Judge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Judge")
    }
}

/// A diff of one file (before/after text), for `--diff`.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    /// Path shown in headers.
    pub path: String,
    /// Old content (None: file did not exist).
    pub before: Option<String>,
    /// New content (None: file removed).
    pub after: Option<String>,
    /// Secret content: show `<secret changed>` instead of lines.
    pub secret: bool,
    /// Attribute changes (mode/owner) as lines like "mode: 0644 -> 0600".
    pub attrs: Vec<String>,
}

/// Can the module say what its steps will change?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effects {
    /// Yes: the steps do what the plan (and its diffs) say.
    Predicted,
    /// No (arbitrary commands): skipped in check mode, and everything the fact cache knew is forgotten after.
    Unknown,
    /// The steps must run (never in check mode) but change nothing the task reports: the task is not
    /// "changed" (a bare systemd `daemon-reload`, as in Ansible).
    Unreported,
}

impl Effects {
    /// Is a task with these effects reported as changed?
    pub fn reported(self) -> bool {
        self != Effects::Unreported
    }
}

/// What a module decided about a task. `S` is the module's private state for interpreting the results.
#[derive(Debug)]
pub enum Decision<S> {
    /// Nothing to do: the device is as wanted.
    Unchanged,
    /// Change the device with these steps (never run in check mode: reported as "would change").
    Change {
        /// The steps (not empty).
        steps: Vec<Step>,
        /// For `interpret`.
        state: S,
        /// Predicted, or unknown (command/shell).
        effects: Effects,
    },
    /// Steps that only read (verification, waiting, probes): run in check mode too; not a change.
    ReadOnly {
        /// The steps.
        steps: Vec<Step>,
        /// For `interpret`.
        state: S,
    },
    /// The task is skipped, for this reason (`creates` exists, already applied).
    Skip(String),
    /// The task fails with this message (assert, fail).
    Fail(String),
}

/// What check mode does with a decision: the same path as a real run, stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InCheckMode {
    /// Run the steps (read-only ones).
    Run,
    /// Report the decision without running anything.
    Report,
    /// Skip the task: its effects cannot be predicted.
    Skip,
}

/// The reason given for a task skipped in check mode because its effects are unknown.
pub const UNPREDICTABLE_IN_CHECK: &str =
    "skipped in check mode (this module cannot predict its effect)";

impl<S> Decision<S> {
    /// What check mode does with this decision.
    pub fn in_check_mode(&self) -> InCheckMode {
        match self {
            Decision::ReadOnly { .. } => InCheckMode::Run,
            Decision::Change {
                effects: Effects::Unknown,
                ..
            } => InCheckMode::Skip,
            _ => InCheckMode::Report,
        }
    }

    /// The steps to run (none for a decision that runs nothing).
    pub fn steps(&self) -> &[Step] {
        match self {
            Decision::Change { steps, .. } | Decision::ReadOnly { steps, .. } => steps,
            _ => &[],
        }
    }

    /// The name used in fixtures and logs: `unchanged`, `change`, `read_only`, `skip`, `fail`.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Unchanged => "unchanged",
            Decision::Change {
                effects: Effects::Predicted,
                ..
            } => "change",
            Decision::Change {
                effects: Effects::Unknown,
                ..
            } => "change_unknown_effects",
            Decision::Change {
                effects: Effects::Unreported,
                ..
            } => "change_unreported",
            Decision::ReadOnly { .. } => "read_only",
            Decision::Skip(_) => "skip",
            Decision::Fail(_) => "fail",
        }
    }
}

/// What a module says about a task, before anything is applied: the decision, and what holds whatever it is.
#[derive(Debug)]
pub struct Plan<S> {
    /// What to do.
    pub decision: Decision<S>,
    /// Diffs for `--diff`.
    pub diffs: Vec<Diff>,
    /// Values for `register` (merged with changed/failed/msg by the executor).
    pub result: Map<String, Value>,
    /// A message for the result.
    pub msg: Option<String>,
    /// Warnings to show.
    pub warnings: Vec<String>,
    /// Variables to set on the host (set_fact, and facts modules leave for later tasks).
    pub set_facts: Option<Map<String, Value>>,
    /// What the steps touch besides the files they write (see [`Touched`]).
    pub touched: Vec<Touched>,
    /// The change may cut the device off: arm a dead-man revert with it (see [`CutOff`]).
    pub cut_off: Option<CutOff>,
}

impl<S> Plan<S> {
    fn of(decision: Decision<S>) -> Self {
        Plan {
            decision,
            diffs: Vec::new(),
            result: Map::new(),
            msg: None,
            warnings: Vec::new(),
            set_facts: None,
            touched: Vec::new(),
            cut_off: None,
        }
    }

    /// Nothing to do.
    pub fn unchanged() -> Self {
        Self::of(Decision::Unchanged)
    }

    /// Change the device with `steps` (predicted effects).
    pub fn change(steps: Vec<Step>, state: S) -> Self {
        Self::of(Decision::Change {
            steps,
            state,
            effects: Effects::Predicted,
        })
    }

    /// Run `steps` whose effects cannot be predicted (arbitrary commands).
    pub fn unknown_effects(steps: Vec<Step>, state: S) -> Self {
        Self::of(Decision::Change {
            steps,
            state,
            effects: Effects::Unknown,
        })
    }

    /// Run `steps` that must not run in check mode but change nothing the task reports.
    pub fn unreported(steps: Vec<Step>, state: S) -> Self {
        Self::of(Decision::Change {
            steps,
            state,
            effects: Effects::Unreported,
        })
    }

    /// Run read-only `steps` (in check mode too).
    pub fn read_only(steps: Vec<Step>, state: S) -> Self {
        Self::of(Decision::ReadOnly { steps, state })
    }

    /// Skip the task.
    pub fn skip(reason: impl Into<String>) -> Self {
        Self::of(Decision::Skip(reason.into()))
    }

    /// Fail the task.
    pub fn fail(msg: impl Into<String>) -> Self {
        Self::of(Decision::Fail(msg.into()))
    }

    /// With these `register` values.
    pub fn with_result(mut self, result: Map<String, Value>) -> Self {
        self.result = result;
        self
    }

    /// With this message.
    pub fn with_msg(mut self, msg: impl Into<String>) -> Self {
        self.msg = Some(msg.into());
        self
    }

    /// With these diffs.
    pub fn with_diffs(mut self, diffs: Vec<Diff>) -> Self {
        self.diffs = diffs;
        self
    }

    /// With these warnings.
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = warnings;
        self
    }

    /// Setting these host variables.
    pub fn with_facts(mut self, facts: Map<String, Value>) -> Self {
        self.set_facts = Some(facts);
        self
    }

    /// A change that may cut the device off (see [`CutOff`]).
    pub fn may_cut_off(mut self, c: CutOff) -> Self {
        self.cut_off = Some(c);
        self
    }

    /// Touching these paths or facts (see [`Touched`]).
    pub fn touching(mut self, touched: Vec<Touched>) -> Self {
        self.touched = touched;
        self
    }

    /// The same plan with its state turned into another type (the adapter erases module states this way).
    pub fn map_state<T>(self, f: impl FnOnce(S) -> T) -> Plan<T> {
        let decision = match self.decision {
            Decision::Unchanged => Decision::Unchanged,
            Decision::Change {
                steps,
                state,
                effects,
            } => Decision::Change {
                steps,
                state: f(state),
                effects,
            },
            Decision::ReadOnly { steps, state } => Decision::ReadOnly {
                steps,
                state: f(state),
            },
            Decision::Skip(r) => Decision::Skip(r),
            Decision::Fail(m) => Decision::Fail(m),
        };
        Plan {
            decision,
            diffs: self.diffs,
            result: self.result,
            msg: self.msg,
            warnings: self.warnings,
            set_facts: self.set_facts,
            touched: self.touched,
            cut_off: self.cut_off,
        }
    }
}

/// What the executor hands back to a module after running its steps.
#[derive(Debug, Clone)]
pub struct Ran {
    /// Was it a change (true) or read-only steps (false)?
    pub changed: bool,
    /// The plan's `register` values.
    pub result: Map<String, Value>,
    /// The plan's message.
    pub msg: Option<String>,
    /// One entry per `Step::Exec` (and per command of a `Step::Guarded`) that ran, in order: what it was for,
    /// and its output. Running stops after the first command that fails, and after a rollback.
    pub outputs: Vec<(String, Output)>,
}

impl Ran {
    /// The first command's output (most modules run one).
    pub fn output(&self) -> Option<&Output> {
        self.outputs.first().map(|(_, o)| o)
    }

    /// The default interpretation: changed as planned; the first non-zero exit fails the task.
    pub fn outcome(self) -> Outcome {
        let failed = self
            .outputs
            .iter()
            .find(|(_, o)| !o.status.success())
            .map(|(what, o)| {
                let err = o.stderr_str();
                let first = err.trim();
                format!(
                    "{what} failed ({}){}",
                    o.status,
                    if first.is_empty() {
                        String::new()
                    } else {
                        format!(": {first}")
                    }
                )
            });
        Outcome {
            changed: self.changed,
            failed,
            result: self.result,
            msg: self.msg,
            ..Outcome::default()
        }
    }
}

/// The final outcome of a task after its steps ran.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Changed?
    pub changed: bool,
    /// Failure message, if failed.
    pub failed: Option<String>,
    /// Values for `register`.
    pub result: Map<String, Value>,
    /// Message.
    pub msg: Option<String>,
    /// Warnings to show.
    pub warnings: Vec<String>,
    /// A verifying module's per-check results and verdict, passed to the report as they are.
    pub checks: Option<CheckMatrix>,
    /// A maintenance module's findings about the device (`Some(vec![])`: looked, found nothing), passed to the
    /// report as they are.
    pub findings: Option<Vec<Finding>>,
}

/// A module's `interpret`, with its state, waiting for the results (the executor's view of a plan's state).
pub struct Interpret(Box<dyn FnOnce(Ran) -> Outcome + Send + Sync>);

impl Interpret {
    /// Wrap a module's interpretation.
    pub fn new(f: impl FnOnce(Ran) -> Outcome + Send + Sync + 'static) -> Self {
        Interpret(Box::new(f))
    }

    /// Interpret the results.
    pub fn run(self, ran: Ran) -> Outcome {
        (self.0)(ran)
    }
}

impl std::fmt::Debug for Interpret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Interpret")
    }
}
