//! The human line formats: which events are worth a line, and how that line reads.
//!
//! Owns the per-event lines shared by the plain renderer (no terminal control: CI logs, pipes,
//! `--progress plain`) and the progress display (which prints the same lines above its bars). At the default
//! verbosity a line is printed for what an operator must see: failures, unreachable devices, warnings (each
//! distinct message once), diffs with `--diff`, and — in plain mode only, where there is no bar to count them —
//! changed tasks. `-v` adds every task result, `-vv` whole messages, `-vvv` every remote command. It must not
//! write anything itself, and every line it returns has been through the secret redactor.

use std::collections::HashMap;

use super::term::{first_line, human_duration, Paint};
use super::{Event, TaskStatus};
use crate::redact::redact;

/// Continuation lines of a failure message shown in plain mode without `-vv`.
pub const FAILURE_LINES: usize = 10;

/// Where the lines will be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineMode {
    /// Plain lines only: changed tasks get a line too.
    Plain,
    /// Above progress bars: the bar counts changes, so only what needs attention gets a line.
    Bars,
}

/// Turns events into human lines.
#[derive(Debug)]
pub struct LineFormatter {
    mode: LineMode,
    verbose: u8,
    paint: Paint,
    /// Warning message -> how many times it was seen (each message is printed once; the recap counts them).
    warnings: HashMap<String, usize>,
}

/// `WAVE 2/3 (2 devices) | gate FAILED: 2 of 2 unhealthy (tolerance 0%) after a 2s soak`.
pub fn wave_gate_line(w: &super::WaveResult) -> String {
    let head = format!("WAVE {}/{} ({} devices)", w.index, w.waves, w.hosts.len());
    match w.gate {
        super::GateStatus::Skipped => format!(
            "{head} | gate skipped: {}",
            w.skipped_because.as_deref().unwrap_or("not judged")
        ),
        g => format!(
            "{head} | gate {}: {} of {} unhealthy (tolerance {}%) after a {} soak",
            if g == super::GateStatus::Passed {
                "passed"
            } else {
                "FAILED"
            },
            w.unhealthy.len(),
            w.hosts.len(),
            w.max_fail_percentage,
            human_duration(w.soak)
        ),
    }
}

impl LineFormatter {
    /// A formatter for `mode` at `-v` level `verbose`.
    pub fn new(mode: LineMode, verbose: u8, paint: Paint) -> Self {
        LineFormatter {
            mode,
            verbose,
            paint,
            warnings: HashMap::new(),
        }
    }

    /// The lines `ev` deserves (often none). Every line is redacted.
    pub fn lines(&mut self, ev: &Event) -> Vec<String> {
        let p = self.paint;
        let mut out: Vec<String> = vec![];
        match ev {
            Event::PlayStarted { name, hosts } => {
                out.push(p.bold(&format!("PLAY [{name}] ({} devices)", hosts.len())));
            }
            Event::BatchStarted { index, hosts } => {
                out.push(p.bold(&format!("BATCH {index} ({} devices)", hosts.len())));
            }
            Event::WaveSoaking {
                index,
                waves,
                hosts,
                soak,
                ..
            } => {
                out.push(format!(
                    "WAVE {index}/{waves} ({hosts} devices) | soaking {} before its gate",
                    human_duration(*soak)
                ));
            }
            Event::WaveGate(w) => {
                let line = wave_gate_line(w);
                out.push(match w.gate {
                    super::GateStatus::Failed => p.bold_red(&line),
                    super::GateStatus::Passed => p.green(&line),
                    super::GateStatus::Skipped => line,
                });
                for u in &w.unhealthy {
                    out.push(format!(
                        "{} | {} | {}",
                        u.host,
                        p.red("UNHEALTHY"),
                        u.reasons.join("; ")
                    ));
                }
            }
            Event::RolloutStopped {
                wave,
                waves,
                untouched,
                ..
            } => {
                out.push(p.bold_red(&format!(
                    "ROLLOUT STOPPED after wave {wave}/{waves}: {} devices of the later waves untouched",
                    untouched.len()
                )));
            }
            Event::HostUnreachable { host, error } => {
                out.push(format!(
                    "{host} | {} | {}",
                    p.bold_red("UNREACHABLE"),
                    first_line(error)
                ));
                if self.verbose >= 2 {
                    out.extend(error.lines().skip(1).map(|l| format!("    {l}")));
                }
            }
            Event::TaskResult {
                host,
                task,
                status,
                msg,
                diff,
                item,
                handler,
                duration,
                ..
            } => {
                let label = match item {
                    Some(i) => format!("{task} (item={i})"),
                    None => task.clone(),
                };
                let kind = if *handler { "handler " } else { "" };
                let show = match status {
                    TaskStatus::Failed => true,
                    TaskStatus::Changed => self.mode == LineMode::Plain || self.verbose >= 1,
                    _ => self.verbose >= 1,
                };
                if show {
                    let st = match status {
                        TaskStatus::Ok => p.green("ok"),
                        TaskStatus::Changed => p.yellow("changed"),
                        TaskStatus::Skipped => p.cyan("skipping"),
                        TaskStatus::Failed => p.red("FAILED"),
                        TaskStatus::Ignored => p.cyan("failed (ignored)"),
                    };
                    let m = match (status, msg) {
                        (TaskStatus::Failed | TaskStatus::Ignored, Some(m)) => {
                            format!(" | {}", first_line(m))
                        }
                        (_, Some(m)) if self.verbose >= 1 && !m.is_empty() => {
                            format!(" | {}", first_line(m))
                        }
                        _ => String::new(),
                    };
                    let took = if self.verbose >= 2 {
                        p.dim(&format!(" ({})", human_duration(*duration)))
                    } else {
                        String::new()
                    };
                    out.push(format!("{host} | {st} | {kind}{label}{m}{took}"));
                    // Failures get more of their message in plain mode (CI logs are read later, often only
                    // there); above bars the first line is enough until -vv, which shows everything.
                    let limit = if self.verbose >= 2 {
                        usize::MAX
                    } else if *status == TaskStatus::Failed && self.mode == LineMode::Plain {
                        FAILURE_LINES
                    } else {
                        0
                    };
                    if let Some(m) = msg {
                        let rest = m.lines().skip(1);
                        let n = rest.clone().count();
                        out.extend(rest.take(limit).map(|l| format!("    {l}")));
                        if n > limit && limit > 0 {
                            out.push(p.dim(&format!(
                                "    ... {} more lines (-vv shows them)",
                                n - limit
                            )));
                        }
                    }
                }
                if let Some(d) = diff {
                    out.extend(d.lines().map(|l| {
                        let l = format!("    {l}");
                        if l.starts_with("    +") && !l.starts_with("    +++") {
                            p.green(&l)
                        } else if l.starts_with("    -") && !l.starts_with("    ---") {
                            p.red(&l)
                        } else {
                            l
                        }
                    }));
                }
            }
            Event::Warning { host, message } => {
                let n = self.warnings.entry(message.clone()).or_insert(0);
                *n += 1;
                if *n == 1 || self.verbose >= 1 {
                    let w = p.magenta("[WARNING]");
                    out.push(match host {
                        Some(h) => format!("{w} {h}: {message}"),
                        None => format!("{w} {message}"),
                    });
                }
            }
            Event::Verify {
                host,
                checks,
                passed,
            } if self.verbose >= 1 => {
                let bad: Vec<String> = checks
                    .iter()
                    .filter(|c| matches!(c.result.as_str(), "warning" | "error" | "fatal"))
                    .map(|c| format!("{}={}", c.id, c.result))
                    .collect();
                let verdict = if *passed {
                    p.green("production-ready")
                } else {
                    p.red("NOT production-ready")
                };
                let tail = if bad.is_empty() {
                    String::new()
                } else {
                    format!(": {}", bad.join(", "))
                };
                out.push(format!(
                    "{host} | verify | {verdict} ({} checks){tail}",
                    checks.len()
                ));
            }
            Event::Findings { host, findings } if self.verbose >= 1 => {
                let worst =
                    |s: super::Severity| findings.iter().filter(|f| f.severity == s).count();
                out.push(format!(
                    "{host} | findings | {} critical, {} warning, {} info",
                    worst(super::Severity::Critical),
                    worst(super::Severity::Warning),
                    worst(super::Severity::Info)
                ));
            }
            Event::HostFinished {
                host,
                status,
                stats,
                duration,
                ..
            } if self.verbose >= 2 => {
                out.push(p.dim(&format!(
                    "{host} | finished {} in {} ({} round trips)",
                    match status {
                        super::HostStatus::Ok => "ok",
                        super::HostStatus::Failed => "failed",
                        super::HostStatus::Unreachable => "unreachable",
                        super::HostStatus::Interrupted => "interrupted",
                    },
                    human_duration(*duration),
                    stats.execs
                )));
            }
            Event::Exec {
                host,
                command,
                stdin,
                status,
                duration,
            } if self.verbose >= 3 => {
                let stdin = if stdin.is_empty() {
                    String::new()
                } else {
                    format!(" (stdin {stdin})")
                };
                out.push(format!(
                    "{host} | exec | {} | {status} in {}ms{stdin}",
                    first_line(command),
                    duration.as_millis()
                ));
            }
            _ => {}
        }
        out.into_iter().map(|l| redact(&l).into_owned()).collect()
    }
}

/// The line the plain renderer prints when the run passes another tenth of the fleet (fleets of 20 or more).
pub fn milestone(c: &super::fleet::Counts, elapsed: std::time::Duration) -> Option<String> {
    if c.total < 20 || c.finished == 0 {
        return None;
    }
    // A line each time `finished` crosses a multiple of 10% (and at the end).
    let step = |n: usize| n * 10 / c.total;
    if step(c.finished) == step(c.finished - 1) && c.finished != c.total {
        return None;
    }
    Some(format!(
        "progress: {}/{} devices finished ({} changed, {} failed, {} unreachable), {} in flight, {}",
        c.finished,
        c.total,
        c.changed,
        c.failed,
        c.unreachable,
        c.in_flight,
        human_duration(elapsed)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tr(status: TaskStatus, msg: Option<&str>, diff: Option<&str>) -> Event {
        Event::TaskResult {
            host: "edge-1".into(),
            task: "write config".into(),
            module: "copy".into(),
            status,
            handler: false,
            msg: msg.map(String::from),
            diff: diff.map(String::from),
            duration: Duration::from_millis(3),
            item: None,
            applies_config: false,
        }
    }

    #[test]
    fn plain_shows_changes_bars_do_not() {
        let mut plain = LineFormatter::new(LineMode::Plain, 0, Paint::default());
        let mut bars = LineFormatter::new(LineMode::Bars, 0, Paint::default());
        let ev = tr(TaskStatus::Changed, None, None);
        assert_eq!(plain.lines(&ev), vec!["edge-1 | changed | write config"]);
        assert!(bars.lines(&ev).is_empty());
        assert!(plain.lines(&tr(TaskStatus::Ok, None, None)).is_empty());
        let mut v = LineFormatter::new(LineMode::Bars, 1, Paint::default());
        assert_eq!(
            v.lines(&tr(TaskStatus::Ok, Some("fine"), None)),
            vec!["edge-1 | ok | write config | fine"]
        );
    }

    #[test]
    fn failures_first_line_above_bars_whole_in_plain() {
        let ev = tr(TaskStatus::Failed, Some("disk full\nat /etc/aziot"), None);
        let mut bars = LineFormatter::new(LineMode::Bars, 0, Paint::default());
        assert_eq!(
            bars.lines(&ev),
            vec!["edge-1 | FAILED | write config | disk full"]
        );
        let mut plain = LineFormatter::new(LineMode::Plain, 0, Paint::default());
        assert_eq!(
            plain.lines(&ev),
            vec![
                "edge-1 | FAILED | write config | disk full",
                "    at /etc/aziot"
            ]
        );
    }

    #[test]
    fn each_warning_once() {
        let mut f = LineFormatter::new(LineMode::Plain, 0, Paint::default());
        let w = |h: &str| Event::Warning {
            host: Some(h.into()),
            message: "old kernel".into(),
        };
        assert_eq!(f.lines(&w("a")), vec!["[WARNING] a: old kernel"]);
        assert!(f.lines(&w("b")).is_empty());
    }

    #[test]
    fn lines_are_redacted() {
        crate::redact::register("s3cr3t-plain-canary");
        let mut f = LineFormatter::new(LineMode::Bars, 0, Paint::default());
        let l = f.lines(&tr(
            TaskStatus::Failed,
            Some("auth failed for s3cr3t-plain-canary"),
            Some("-pw=s3cr3t-plain-canary\n+pw=x"),
        ));
        assert!(
            l.iter().all(|l| !l.contains("s3cr3t-plain-canary")),
            "{l:?}"
        );
        assert!(l[0].ends_with("auth failed for ********"));
    }

    #[test]
    fn diff_lines_are_indented_and_coloured() {
        let mut f = LineFormatter::new(LineMode::Plain, 0, Paint { color: true });
        let l = f.lines(&tr(
            TaskStatus::Changed,
            None,
            Some("--- a\n+++ b\n-old\n+new"),
        ));
        assert_eq!(l[1], "    --- a");
        assert_eq!(l[3], "\x1b[31m    -old\x1b[0m");
        assert_eq!(l[4], "\x1b[32m    +new\x1b[0m");
    }

    #[test]
    fn milestones_every_tenth() {
        let mut c = super::super::fleet::Counts {
            total: 100,
            ..Default::default()
        };
        let mut lines = 0;
        for f in 1..=100 {
            c.finished = f;
            if milestone(&c, Duration::from_secs(1)).is_some() {
                lines += 1;
            }
        }
        assert_eq!(lines, 10);
        c.total = 5;
        c.finished = 5;
        assert!(milestone(&c, Duration::ZERO).is_none());
    }
}
