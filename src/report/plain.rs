//! Plain-text rendering of events (no terminal control): one line per event worth seeing, then the recap.
//!
//! Owns the line formats and the fleet recap. Every line passes the secret redactor.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use super::{CheckResult, Event, EventSink, HostStatus, TaskStatus};
use crate::vars::redact::redact;

#[derive(Default)]
struct HostTally {
    ok: usize,
    changed: usize,
    failed: usize,
    skipped: usize,
    ignored: usize,
    status: Option<HostStatus>,
    first_error: Option<String>,
    execs: u64,
}

#[derive(Default)]
struct State {
    hosts: BTreeMap<String, HostTally>,
    verify: BTreeMap<String, (Vec<CheckResult>, bool)>,
    warnings: Vec<String>,
    duration: Duration,
    interrupted: bool,
    check: bool,
}

/// Writes plain lines to `out` as events arrive; call [`PlainReporter::recap`] at the end.
pub struct PlainReporter {
    out: Mutex<Box<dyn Write + Send>>,
    verbose: u8,
    state: Mutex<State>,
}

impl PlainReporter {
    /// A reporter writing to `out` with `-v` level `verbose`.
    pub fn new(out: Box<dyn Write + Send>, verbose: u8) -> Self {
        PlainReporter {
            out: Mutex::new(out),
            verbose,
            state: Mutex::new(State::default()),
        }
    }

    fn line(&self, s: &str) {
        if let Ok(mut o) = self.out.lock() {
            let _ = writeln!(o, "{}", redact(s));
            let _ = o.flush();
        }
    }

    /// Print the recap.
    pub fn recap(&self) {
        let text = match self.state.lock() {
            Ok(st) => render_recap(&st),
            Err(_) => return,
        };
        if let Ok(mut o) = self.out.lock() {
            let _ = write!(o, "{}", redact(&text));
            let _ = o.flush();
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

impl EventSink for PlainReporter {
    fn emit(&self, ev: Event) {
        match &ev {
            Event::RunStarted { check, .. } => {
                if let Ok(mut s) = self.state.lock() {
                    s.check = *check;
                }
            }
            Event::PlayStarted { name, hosts } => {
                self.line(&format!("PLAY [{name}] ({} hosts)", hosts.len()));
            }
            Event::BatchStarted { index, hosts } => {
                self.line(&format!("BATCH {index} ({} hosts)", hosts.len()));
            }
            Event::HostUnreachable { host, error } => {
                self.line(&format!("{host} | UNREACHABLE | {}", first_line(error)));
                if let Ok(mut s) = self.state.lock() {
                    let h = s.hosts.entry(host.clone()).or_default();
                    h.first_error.get_or_insert_with(|| error.clone());
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
                ..
            } => {
                let label = match item {
                    Some(i) => format!("{task} (item={i})"),
                    None => task.clone(),
                };
                let kind = if *handler { "handler " } else { "" };
                let show =
                    matches!(status, TaskStatus::Changed | TaskStatus::Failed) || self.verbose >= 1;
                if show {
                    let st = match status {
                        TaskStatus::Ok => "ok",
                        TaskStatus::Changed => "changed",
                        TaskStatus::Skipped => "skipping",
                        TaskStatus::Failed => "FAILED",
                        TaskStatus::Ignored => "failed (ignored)",
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
                    self.line(&format!("{host} | {st} | {kind}{label}{m}"));
                    if self.verbose >= 2 {
                        if let Some(m) = msg {
                            for l in m.lines().skip(1) {
                                self.line(&format!("    {l}"));
                            }
                        }
                    }
                }
                if let Some(d) = diff {
                    for l in d.lines() {
                        self.line(&format!("    {l}"));
                    }
                }
                if let Ok(mut s) = self.state.lock() {
                    let h = s.hosts.entry(host.clone()).or_default();
                    match status {
                        TaskStatus::Ok => h.ok += 1,
                        TaskStatus::Changed => h.changed += 1,
                        TaskStatus::Skipped => h.skipped += 1,
                        TaskStatus::Failed => {
                            h.failed += 1;
                            if h.first_error.is_none() {
                                h.first_error = Some(format!(
                                    "{task}: {}",
                                    first_line(msg.as_deref().unwrap_or(""))
                                ));
                            }
                        }
                        TaskStatus::Ignored => h.ignored += 1,
                    }
                }
            }
            Event::Warning { host, message } => {
                let line = match host {
                    Some(h) => format!("[WARNING] {h}: {message}"),
                    None => format!("[WARNING] {message}"),
                };
                self.line(&line);
                if let Ok(mut s) = self.state.lock() {
                    s.warnings.push(message.clone());
                }
            }
            Event::Verify {
                host,
                checks,
                passed,
            } => {
                if let Ok(mut s) = self.state.lock() {
                    s.verify.insert(host.clone(), (checks.clone(), *passed));
                }
            }
            Event::HostFinished {
                host,
                status,
                stats,
                ..
            } => {
                if let Ok(mut s) = self.state.lock() {
                    let h = s.hosts.entry(host.clone()).or_default();
                    h.status = Some(*status);
                    h.execs = stats.execs;
                }
            }
            Event::RunFinished {
                duration,
                interrupted,
            } => {
                if let Ok(mut s) = self.state.lock() {
                    s.duration = *duration;
                    s.interrupted = *interrupted;
                }
            }
            Event::Exec {
                host,
                command,
                stdin,
                status,
                duration,
            } => {
                if self.verbose >= 3 {
                    let stdin = if stdin.is_empty() {
                        String::new()
                    } else {
                        format!(" (stdin {stdin})")
                    };
                    self.line(&format!(
                        "{host} | exec | {} | {status} in {}ms{stdin}",
                        first_line(command),
                        duration.as_millis()
                    ));
                }
            }
            Event::HostConnecting { .. }
            | Event::HostConnected { .. }
            | Event::TaskStarted { .. } => {}
        }
    }
}

fn render_recap(st: &State) -> String {
    let mut out = String::new();
    let n = st.hosts.len();
    let count = |f: &dyn Fn(&HostTally) -> bool| st.hosts.values().filter(|h| f(h)).count();
    let unreachable = count(&|h| h.status == Some(HostStatus::Unreachable));
    let failed = count(&|h| h.status == Some(HostStatus::Failed));
    let changed_hosts = count(&|h| h.changed > 0 && h.status == Some(HostStatus::Ok));
    let ok_hosts = count(&|h| h.status == Some(HostStatus::Ok));
    let tasks_changed: usize = st.hosts.values().map(|h| h.changed).sum();
    out.push_str("\nRECAP");
    if st.check {
        out.push_str(" (check mode: nothing was changed)");
    }
    out.push('\n');
    if n <= 20 {
        let w = st.hosts.keys().map(String::len).max().unwrap_or(4).max(4);
        for (name, h) in &st.hosts {
            out.push_str(&format!(
                "{name:<w$} : ok={} changed={} unreachable={} failed={} skipped={} ignored={} round_trips={}\n",
                h.ok,
                h.changed,
                usize::from(h.status == Some(HostStatus::Unreachable)),
                h.failed,
                h.skipped,
                h.ignored,
                h.execs,
            ));
        }
    }
    out.push_str(&format!(
        "devices: {n} total, {ok_hosts} ok ({changed_hosts} changed), {failed} failed, {unreachable} unreachable; tasks changed: {tasks_changed}; {:.1}s{}\n",
        st.duration.as_secs_f64(),
        if st.interrupted { " (interrupted)" } else { "" }
    ));
    let bad: Vec<(&String, &HostTally)> = st
        .hosts
        .iter()
        .filter(|(_, h)| {
            matches!(
                h.status,
                Some(HostStatus::Failed) | Some(HostStatus::Unreachable)
            )
        })
        .collect();
    for (name, h) in bad.iter().take(20) {
        let what = if h.status == Some(HostStatus::Unreachable) {
            "unreachable"
        } else {
            "failed"
        };
        out.push_str(&format!(
            "  {name}: {what}: {}\n",
            first_line(h.first_error.as_deref().unwrap_or(""))
        ));
    }
    if bad.len() > 20 {
        out.push_str(&format!("  ... and {} more\n", bad.len() - 20));
    }
    out
}
