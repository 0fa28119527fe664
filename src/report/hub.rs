//! Wiring the reporters for one run: decide, from the output options and the terminal, where human text goes
//! (stdout for `--output text`, stderr otherwise), whether it is a live display or plain lines, whether colour
//! is on; open `--report` and `--log` before any device is contacted; then fan every event out to the fleet
//! state, the log, the jsonl stream and the human renderer, and write the recap and documents at the end.
//!
//! Owns the [`Reporting`] lifecycle and the ticker thread that redraws the live display (and prints the
//! "still running" heartbeat in plain mode). Events are folded under one short lock and never wait for the
//! terminal: with bars, lines are queued and the ticker prints them. It must not render anything itself.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::fleet::Fleet;
use super::log::LogWriter;
use super::plain::{LineFormatter, LineMode};
use super::progress::{Display, Frame, TICK};
use super::recap::RecapOptions;
use super::term::ColorMode;
use super::term::{human_duration, Paint, Stream};
use super::RunSummary;
use super::{Event, EventSink, SharedSink};
use super::{OutputFormat, ProgressMode};

/// In plain mode, a "still running" line is printed after this long without any other line.
pub const HEARTBEAT: Duration = Duration::from_secs(60);

/// What the command line asks of the reporters (built by `commands/` from the flags).
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// `--output`: what goes to stdout.
    pub output: OutputFormat,
    /// `--report FILE`: the JSON report, whatever `--output` says.
    pub report: Option<PathBuf>,
    /// `--log FILE`: the detailed per-device log.
    pub log: Option<PathBuf>,
    /// `--progress`.
    pub progress: ProgressMode,
    /// `--color`.
    pub color: ColorMode,
    /// `-v` count.
    pub verbose: u8,
}

/// How human text is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HumanMode {
    /// Not at all.
    Off,
    /// Plain lines, then the recap.
    Plain,
    /// The live display, then the recap.
    Bars,
}

/// Everything that decides the reporters' behaviour (made from the options by [`ReportConfig::from_options`];
/// tests build it directly).
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// What goes to the machine output (stdout).
    pub output: OutputFormat,
    /// How human text is shown.
    pub human: HumanMode,
    /// Where human text goes.
    pub human_stream: Stream,
    /// Colour in human text.
    pub color: bool,
    /// `-v` level.
    pub verbose: u8,
    /// `--report FILE`.
    pub report: Option<PathBuf>,
    /// `--log FILE`.
    pub log: Option<PathBuf>,
    /// Plain mode: print a "still running" line after this long without output.
    pub heartbeat: Duration,
}

impl ReportConfig {
    /// Decide from the command line and the terminal: human text goes to stdout with `--output text` and to
    /// stderr otherwise (so stdout holds only JSON); bars when that stream is a terminal that can move the
    /// cursor (or `--progress bars`), plain lines otherwise (or `--progress plain`).
    pub fn from_options(out: &ReportOptions) -> Self {
        let human_stream = match out.output {
            OutputFormat::Text => Stream::Stdout,
            OutputFormat::Json | OutputFormat::Jsonl => Stream::Stderr,
        };
        // jsonl lines stream to stdout as they happen: on the same terminal as the display they would tear it.
        let jsonl_on_terminal = out.output == OutputFormat::Jsonl && Stream::Stdout.is_terminal();
        let human = match out.progress {
            ProgressMode::Plain => HumanMode::Plain,
            ProgressMode::Bars => HumanMode::Bars,
            ProgressMode::Auto => {
                if human_stream.is_terminal() && !super::term::term_is_dumb() && !jsonl_on_terminal
                {
                    HumanMode::Bars
                } else {
                    HumanMode::Plain
                }
            }
        };
        ReportConfig {
            output: out.output,
            human,
            human_stream,
            color: super::term::use_color(out.color, human_stream),
            verbose: out.verbose,
            report: out.report.clone(),
            log: out.log.clone(),
            heartbeat: HEARTBEAT,
        }
    }
}

/// Where the text goes (the process's stdout and stderr, or buffers in tests).
pub struct Outputs {
    /// Human text (plain lines and the recap).
    pub human: Box<dyn Write + Send>,
    /// Machine output: the JSON document or the jsonl lines.
    pub machine: Box<dyn Write + Send>,
}

impl Outputs {
    /// The process's streams for `cfg`.
    pub fn std(cfg: &ReportConfig) -> Self {
        Outputs {
            human: match cfg.human_stream {
                Stream::Stdout => Box::new(std::io::stdout()),
                Stream::Stderr => Box::new(std::io::stderr()),
            },
            machine: Box::new(std::io::stdout()),
        }
    }
}

/// Reporting failed: a file could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// `--report` / `--log` cannot be opened (checked before any device is contacted).
    #[error("{flag} {}: cannot open for writing: {source}; choose a writable path", path.display())]
    Open {
        /// The option.
        flag: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing failed (disk full, a closed pipe).
    #[error("{what}: write failed: {source}")]
    Write {
        /// What was being written.
        what: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A file given on the command line: checked at startup, removed again if the run never wrote it.
struct OutFile {
    flag: &'static str,
    path: PathBuf,
    created: bool,
}

fn open_file(path: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Reports and logs name devices and commands: not for every local user to read.
        o.mode(0o600);
    }
    o.open(path)
}

impl OutFile {
    fn check(flag: &'static str, path: &Path) -> Result<Self, ReportError> {
        let existed = path.exists();
        open_file(path, false).map_err(|source| ReportError::Open {
            flag,
            path: path.to_path_buf(),
            source,
        })?;
        Ok(OutFile {
            flag,
            path: path.to_path_buf(),
            created: !existed,
        })
    }

    /// Remove the file if this run created it and never wrote to it.
    fn discard_if_unused(&self) {
        if self.created
            && std::fs::metadata(&self.path)
                .map(|m| m.len() == 0)
                .unwrap_or(false)
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

enum Human {
    Off,
    Plain(Box<dyn Write + Send>),
    /// Lines wait here for the ticker, which prints them above the display; `out` gets the recap.
    Bars {
        pending: Vec<String>,
        out: Box<dyn Write + Send>,
    },
}

struct State {
    fleet: Fleet,
    lines: LineFormatter,
    human: Human,
    machine: Box<dyn Write + Send>,
    output: OutputFormat,
    log: Option<LogWriter>,
    /// When the last human line was written (for the heartbeat).
    last_line: Instant,
    machine_error: Option<std::io::Error>,
    human_error: bool,
    tick: u64,
    run_started: bool,
    verbose: u8,
    paint: Paint,
}

impl State {
    fn human_lines(&mut self, lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        self.last_line = Instant::now();
        match &mut self.human {
            Human::Off => {}
            Human::Bars { pending, .. } => pending.extend(lines),
            Human::Plain(out) => {
                if self.human_error {
                    return;
                }
                let mut text = String::new();
                for l in lines {
                    text.push_str(&l);
                    text.push('\n');
                }
                if out
                    .write_all(text.as_bytes())
                    .and_then(|_| out.flush())
                    .is_err()
                {
                    // A closed terminal or pipe: keep running the fleet, stop writing to it.
                    self.human_error = true;
                }
            }
        }
    }

    fn machine_line(&mut self, v: &serde_json::Value) {
        if self.machine_error.is_some() {
            return;
        }
        let mut s = v.to_string();
        s.push('\n');
        if let Err(e) = self
            .machine
            .write_all(s.as_bytes())
            .and_then(|_| self.machine.flush())
        {
            self.machine_error = Some(e);
        }
    }
}

struct Ticker {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<()>,
}

/// Receives every event and fans it out.
struct Hub {
    state: Arc<Mutex<State>>,
    display: Option<Arc<Display>>,
    ticker: Mutex<Option<Ticker>>,
    plain_mode: bool,
    heartbeat: Duration,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Hub {
    fn start_ticker(&self) {
        let Ok(mut slot) = self.ticker.lock() else {
            return;
        };
        if slot.is_some() || (self.display.is_none() && !self.plain_mode) {
            return;
        }
        let (tx, rx) = mpsc::channel::<()>();
        let state = self.state.clone();
        let display = self.display.clone();
        let heartbeat = self.heartbeat;
        let spawned = std::thread::Builder::new()
            .name("edgefleet-progress".into())
            .spawn(move || match display {
                Some(d) => bars_loop(&state, &d, &rx),
                None => heartbeat_loop(&state, &rx, heartbeat),
            });
        if let Ok(handle) = spawned {
            *slot = Some(Ticker { stop: tx, handle });
        }
    }

    fn stop_ticker(&self) {
        let t = self.ticker.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = t {
            drop(t.stop);
            let _ = t.handle.join();
        }
    }
}

fn bars_loop(state: &Mutex<State>, display: &Display, rx: &mpsc::Receiver<()>) {
    loop {
        match rx.recv_timeout(TICK) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let room = display.device_lines();
        let frame = {
            let mut st = lock(state);
            st.tick += 1;
            let now = Instant::now();
            Frame {
                above: match &mut st.human {
                    Human::Bars { pending, .. } => std::mem::take(pending),
                    _ => vec![],
                },
                counts: st.fleet.counts(),
                in_flight: st.fleet.in_flight(room, now),
                elapsed: now.saturating_duration_since(st.fleet.started),
                tick: st.tick,
            }
        };
        display.show(&frame);
    }
}

fn heartbeat_loop(state: &Mutex<State>, rx: &mpsc::Receiver<()>, every: Duration) {
    let tick = (every / 2).clamp(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        match rx.recv_timeout(tick) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let mut st = lock(state);
        let c = st.fleet.counts();
        if c.in_flight == 0 || st.last_line.elapsed() < every {
            continue;
        }
        let now = Instant::now();
        let longest = st.fleet.in_flight(3, now);
        let who: Vec<String> = longest
            .iter()
            .map(|d| {
                format!(
                    "{} ({} for {}, {} in all)",
                    d.name,
                    d.doing,
                    human_duration(d.doing_for),
                    human_duration(d.elapsed)
                )
            })
            .collect();
        let line = format!(
            "still running: {}/{} devices finished, {} in flight; longest: {}",
            c.finished,
            c.total,
            c.in_flight,
            who.join(", ")
        );
        let line = crate::redact::redact(&line).into_owned();
        st.human_lines(vec![line]);
    }
}

impl EventSink for Hub {
    fn emit(&self, ev: Event) {
        let first_run_start = {
            let mut st = lock(&self.state);
            let st = &mut *st;
            // Taken under the lock, so timestamps in the log and the jsonl stream never go backwards.
            let now = Instant::now();
            let ts = time::OffsetDateTime::now_utc();
            st.fleet.apply(&ev, now);
            if let Some(log) = &mut st.log {
                log.event(&ev, ts);
            }
            if st.output == OutputFormat::Jsonl {
                let v = super::json::event_line(&ev, ts);
                st.machine_line(&v);
            }
            let mut lines = st.lines.lines(&ev);
            if let (Event::HostFinished { .. }, Human::Plain(_)) = (&ev, &st.human) {
                let c = st.fleet.counts();
                if let Some(m) =
                    super::plain::milestone(&c, now.saturating_duration_since(st.fleet.started))
                {
                    lines.push(m);
                }
            }
            st.human_lines(lines);
            let first = matches!(ev, Event::RunStarted { .. }) && !st.run_started;
            if first {
                st.run_started = true;
            }
            first
        };
        if first_run_start {
            self.start_ticker();
        }
    }
}

/// The reporters for a run, per the output options.
pub struct Reporting {
    /// Where events go.
    pub sink: SharedSink,
    hub: Arc<Hub>,
    report: Option<OutFile>,
    log: Option<OutFile>,
    finished: std::sync::atomic::AtomicBool,
}

impl Reporting {
    /// Build from the command-line options, on the process's stdout and stderr. Fails (before anything is
    /// contacted) when `--report` or `--log` cannot be written.
    pub fn new(out: &ReportOptions) -> Result<Self, ReportError> {
        let cfg = ReportConfig::from_options(out);
        let outputs = Outputs::std(&cfg);
        Self::with_config(cfg, outputs)
    }

    /// Build from an explicit configuration and output streams.
    pub fn with_config(cfg: ReportConfig, outputs: Outputs) -> Result<Self, ReportError> {
        let report = cfg
            .report
            .as_deref()
            .map(|p| OutFile::check("--report", p))
            .transpose()?;
        let log_file = cfg
            .log
            .as_deref()
            .map(|p| OutFile::check("--log", p))
            .transpose()?;
        let log = match &log_file {
            Some(f) => Some(LogWriter::new(Box::new(open_file(&f.path, true).map_err(
                |source| ReportError::Open {
                    flag: "--log",
                    path: f.path.clone(),
                    source,
                },
            )?))),
            None => None,
        };
        let paint = Paint { color: cfg.color };
        let (human, display, mode) = match cfg.human {
            HumanMode::Off => (Human::Off, None, LineMode::Plain),
            HumanMode::Plain => (Human::Plain(outputs.human), None, LineMode::Plain),
            HumanMode::Bars => (
                Human::Bars {
                    pending: vec![],
                    out: outputs.human,
                },
                Some(Arc::new(Display::new(cfg.human_stream, paint))),
                LineMode::Bars,
            ),
        };
        if cfg.color {
            // indicatif and console follow these for their own styling.
            console::set_colors_enabled(true);
            console::set_colors_enabled_stderr(true);
        }
        let state = State {
            fleet: Fleet::new(),
            lines: LineFormatter::new(mode, cfg.verbose, paint),
            human,
            machine: outputs.machine,
            output: cfg.output,
            log,
            last_line: Instant::now(),
            machine_error: None,
            human_error: false,
            tick: 0,
            run_started: false,
            verbose: cfg.verbose,
            paint,
        };
        let hub = Arc::new(Hub {
            state: Arc::new(Mutex::new(state)),
            display,
            ticker: Mutex::new(None),
            plain_mode: cfg.human == HumanMode::Plain,
            heartbeat: cfg.heartbeat,
        });
        Ok(Reporting {
            sink: hub.clone(),
            hub,
            report,
            log: log_file,
            finished: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The end of the run: take the display down, print the recap, write the JSON document (stdout with
    /// `--output json`, the file with `--report`), end the jsonl stream with its summary line, close the log.
    /// Returns the first write failure (everything else is still attempted).
    pub fn finish(&self, summary: &RunSummary) -> Result<(), ReportError> {
        self.finished
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.hub.stop_ticker();
        let exit_code = summary.exit_code().code();
        let mut st = lock(&self.hub.state);
        let st = &mut *st;
        st.fleet.merge_summary(summary);
        let mut errors: Vec<ReportError> = vec![];
        // Human: take the display down (printing what was queued), then the recap.
        let recap = super::recap::render(
            &st.fleet,
            RecapOptions {
                verbose: st.verbose,
                paint: st.paint,
            },
        );
        let human_out: Option<&mut Box<dyn Write + Send>> = match &mut st.human {
            Human::Off => None,
            Human::Plain(out) => Some(out),
            Human::Bars { pending, out } => {
                if let Some(d) = &self.hub.display {
                    d.close(&std::mem::take(pending));
                }
                Some(out)
            }
        };
        if let Some(out) = human_out {
            let _ = out.write_all(recap.as_bytes()).and_then(|_| out.flush());
        }
        // Machine output: the document is streamed to each destination, never held in memory whole.
        let st = &mut *st;
        let doc = (st.output == OutputFormat::Json || self.report.is_some())
            .then(|| super::json::report(&st.fleet, exit_code));
        match st.output {
            OutputFormat::Text => {}
            OutputFormat::Json => {
                if let (None, Some(d)) = (&st.machine_error, &doc) {
                    if let Err(e) = super::json::write_document(d, &mut st.machine) {
                        st.machine_error = Some(e);
                    }
                }
            }
            OutputFormat::Jsonl => {
                let v = super::json::summary_line(&st.fleet, exit_code);
                if st.machine_error.is_none() {
                    let line = format!("{v}\n");
                    if let Err(e) = st
                        .machine
                        .write_all(line.as_bytes())
                        .and_then(|_| st.machine.flush())
                    {
                        st.machine_error = Some(e);
                    }
                }
            }
        }
        if let Some(e) = st.machine_error.take() {
            errors.push(ReportError::Write {
                what: "standard output".into(),
                source: e,
            });
        }
        if let (Some(f), Some(d)) = (&self.report, &doc) {
            if let Err(source) = open_file(&f.path, true).and_then(|file| {
                let mut w = std::io::BufWriter::new(file);
                super::json::write_document(d, &mut w)
            }) {
                errors.push(ReportError::Write {
                    what: format!("{} {}", f.flag, f.path.display()),
                    source,
                });
            }
        }
        if let (Some(log), Some(f)) = (&mut st.log, &self.log) {
            let t = st.fleet.totals();
            log.write(&format!(
                "{} - recap: {} devices: {} changed, {} ok, {} failed, {} unreachable, {} skipped; exit code {exit_code}\n",
                super::json::timestamp(time::OffsetDateTime::now_utc()),
                t.devices,
                t.changed,
                t.ok,
                t.failed,
                t.unreachable,
                t.skipped
            ));
            if let Some(source) = log.error.take() {
                errors.push(ReportError::Write {
                    what: format!("{} {}", f.flag, f.path.display()),
                    source,
                });
            }
        }
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Reporting {
    fn drop(&mut self) {
        if self.finished.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        // The run never finished (an early error, --syntax-check, --list-hosts): leave the screen clean and
        // no empty files behind.
        self.hub.stop_ticker();
        if let Some(d) = &self.hub.display {
            let pending = match &mut lock(&self.hub.state).human {
                Human::Bars { pending, .. } => std::mem::take(pending),
                _ => vec![],
            };
            d.close(&pending);
        }
        for f in [&self.report, &self.log].into_iter().flatten() {
            f.discard_if_unused();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::HostSummary;
    use crate::report::StatsSnapshot;
    use crate::report::{HostStatus, TaskStatus};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn config(output: OutputFormat, human: HumanMode) -> ReportConfig {
        ReportConfig {
            output,
            human,
            human_stream: Stream::Stderr,
            color: false,
            verbose: 0,
            report: None,
            log: None,
            heartbeat: HEARTBEAT,
        }
    }

    fn reporting(cfg: ReportConfig) -> (Reporting, Buf, Buf) {
        let (human, machine) = (Buf::default(), Buf::default());
        let r = Reporting::with_config(
            cfg,
            Outputs {
                human: Box::new(human.clone()),
                machine: Box::new(machine.clone()),
            },
        )
        .unwrap();
        (r, human, machine)
    }

    /// 1000 devices × 20 events, as a fleet run would send them: everything is counted, jsonl has every
    /// event, and the plain output stays a handful of lines (milestones and failures, not a wall of text).
    #[test]
    fn a_thousand_devices_twenty_events_each() {
        let (r, human, machine) = reporting(config(OutputFormat::Jsonl, HumanMode::Plain));
        let n = 1000;
        let hosts: Vec<String> = (0..n).map(|i| format!("edge-{i:04}")).collect();
        let mut events = 0;
        let mut emit = |ev: Event| {
            events += 1;
            r.sink.emit(ev);
        };
        emit(Event::RunStarted {
            playbooks: vec!["site.yml".into()],
            hosts: n,
            check: false,
        });
        emit(Event::PlayStarted {
            name: "provision".into(),
            hosts: hosts.clone(),
        });
        let mut summary = RunSummary::default();
        for (i, h) in hosts.iter().enumerate() {
            let failed = i % 100 == 7;
            emit(Event::HostConnecting { host: h.clone() });
            emit(Event::HostConnected {
                host: h.clone(),
                elapsed: Duration::from_millis(30),
            });
            for t in 0..8 {
                emit(Event::TaskStarted {
                    host: h.clone(),
                    task: format!("task {t}"),
                });
                let status = match t {
                    7 if failed => TaskStatus::Failed,
                    7 => TaskStatus::Changed,
                    _ => TaskStatus::Ok,
                };
                emit(Event::TaskResult {
                    host: h.clone(),
                    task: format!("task {t}"),
                    module: if t == 7 { "iotedge_apply" } else { "copy" }.into(),
                    status,
                    handler: false,
                    msg: failed.then(|| "apply failed".to_string()),
                    diff: None,
                    duration: Duration::from_millis(5),
                    item: None,
                    applies_config: t == 7,
                });
            }
            let status = if failed {
                HostStatus::Failed
            } else {
                HostStatus::Ok
            };
            emit(Event::HostFinished {
                host: h.clone(),
                status,
                stats: StatsSnapshot {
                    execs: 9,
                    ..Default::default()
                },
                duration: Duration::from_secs(2),
                error: None,
            });
            summary.hosts.push(HostSummary {
                name: h.clone(),
                status: Some(status),
                ..Default::default()
            });
        }
        emit(Event::RunFinished {
            duration: Duration::from_secs(60),
            interrupted: false,
        });
        r.finish(&summary).unwrap();
        let jsonl = machine.text();
        assert_eq!(jsonl.lines().count(), events + 1);
        let last: serde_json::Value = serde_json::from_str(jsonl.lines().last().unwrap()).unwrap();
        assert_eq!(last["totals"]["failed"], 10);
        assert_eq!(last["totals"]["changed"], 990);
        assert_eq!(last["totals"]["applies"], 990);
        assert_eq!(last["totals"]["round_trips"], 9000);
        assert_eq!(last["exit_code"], 2);
        let out = human.text();
        let progress = out.lines().filter(|l| l.starts_with("progress: ")).count();
        let failures = out.lines().filter(|l| l.contains("| FAILED |")).count();
        assert_eq!((progress, failures), (10, 10), "{out}");
        assert!(out.contains("progress: 1000/1000 devices finished (990 changed, 10 failed, 0 unreachable), 0 in flight"), "{out}");
        // Plain mode shows each change; the recap groups the failures into one line.
        assert!(out.contains("  FAILED  edge-0007, edge-0107, edge-0207, edge-0307, edge-0407 and 5 more: task 7: apply failed\n"), "{out}");
    }

    #[test]
    fn json_output_is_one_document_and_the_recap_goes_to_the_human_stream() {
        let (r, human, machine) = reporting(config(OutputFormat::Json, HumanMode::Plain));
        r.sink.emit(Event::RunStarted {
            playbooks: vec![],
            hosts: 1,
            check: false,
        });
        r.sink.emit(Event::HostFinished {
            host: "a".into(),
            status: HostStatus::Ok,
            stats: StatsSnapshot::default(),
            duration: Duration::ZERO,
            error: None,
        });
        r.finish(&RunSummary::default()).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&machine.text()).unwrap();
        assert_eq!(doc["devices"][0]["status"], "skipped");
        assert!(human.text().contains("RECAP"));
        assert!(!machine.text().contains("RECAP"));
    }

    #[test]
    fn plain_mode_says_which_devices_are_still_running_when_the_output_goes_quiet() {
        let mut cfg = config(OutputFormat::Text, HumanMode::Plain);
        cfg.heartbeat = Duration::from_millis(200);
        let (r, human, _) = reporting(cfg);
        r.sink.emit(Event::RunStarted {
            playbooks: vec![],
            hosts: 2,
            check: false,
        });
        r.sink.emit(Event::TaskStarted {
            host: "edge-stuck".into(),
            task: "apply configuration".into(),
        });
        // Wait (bounded) for the heartbeat; no assertion on how long it took.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !human.text().contains("still running") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = human.text();
        assert!(
            out.contains("still running: 0/2 devices finished, 1 in flight; longest: edge-stuck (apply configuration for "),
            "{out}"
        );
        r.finish(&RunSummary::default()).unwrap();
    }
}
