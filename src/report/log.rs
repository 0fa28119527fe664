//! The `--log FILE` writer: a detailed, timestamped record of everything that happened on every device.
//!
//! One line per fact, each starting with an RFC 3339 UTC timestamp and the device name (`-` for the run), so
//! `grep ' edge-042 ' run.log` is that device's whole story: connection, every remote command with its stdin
//! described (never shown), exit status and duration, every task result with its whole message and diff,
//! verification, and how it finished. Lines are written as they happen, one `write` each, so a killed run
//! still leaves its log. Every line passes the secret redactor. It must not print to the terminal.

use std::io::Write;

use super::term::human_duration;
use super::{Event, HostStatus, TaskStatus};
use crate::redact::redact;

/// Writes the log.
pub struct LogWriter {
    out: Box<dyn Write + Send>,
    /// The first write error, reported once at the end.
    pub error: Option<std::io::Error>,
}

impl LogWriter {
    /// A log writing to `out` (unbuffered is best: one write per event).
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        LogWriter { out, error: None }
    }

    /// Log one event at time `ts`.
    pub fn event(&mut self, ev: &Event, ts: time::OffsetDateTime) {
        let lines = lines(ev);
        if lines.is_empty() {
            return;
        }
        let stamp = super::json::timestamp(ts);
        let mut buf = String::new();
        for (host, text) in lines {
            // Continuation lines carry the same prefix, so grep by device keeps them.
            for (i, l) in text.lines().enumerate() {
                let sep = if i == 0 { "" } else { "  | " };
                buf.push_str(&format!("{stamp} {host} {sep}{l}\n"));
            }
            if text.is_empty() {
                buf.push_str(&format!("{stamp} {host}\n"));
            }
        }
        self.write(&buf);
    }

    /// Write raw text (already formatted), redacted.
    pub fn write(&mut self, text: &str) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self
            .out
            .write_all(redact(text).as_bytes())
            .and_then(|_| self.out.flush())
        {
            self.error = Some(e);
        }
    }
}

fn status(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::Ok => "ok",
        TaskStatus::Changed => "changed",
        TaskStatus::Skipped => "skipped",
        TaskStatus::Failed => "FAILED",
        TaskStatus::Ignored => "failed (ignored)",
    }
}

/// The log lines for an event: (device or `-`, text; text may span lines).
fn lines(ev: &Event) -> Vec<(String, String)> {
    let run = || "-".to_string();
    match ev {
        Event::RunStarted {
            playbooks,
            hosts,
            check,
        } => vec![(
            run(),
            format!(
                "run started: edgefleet {} playbooks [{}], {hosts} devices{}",
                env!("CARGO_PKG_VERSION"),
                playbooks.join(", "),
                if *check { ", check mode" } else { "" }
            ),
        )],
        Event::PlayStarted { name, hosts } => vec![(
            run(),
            format!("play started: {name} ({} devices)", hosts.len()),
        )],
        Event::BatchStarted { index, hosts } => vec![(
            run(),
            format!("batch {index} started: {}", hosts.join(" ")),
        )],
        Event::WaveSoaking {
            play,
            index,
            waves,
            hosts,
            soak,
        } => vec![(
            run(),
            format!(
                "play {play}: wave {index}/{waves} ({hosts} devices) soaking {}",
                human_duration(*soak)
            ),
        )],
        Event::WaveGate(w) => {
            let mut v = vec![(run(), super::plain::wave_gate_line(w))];
            v.extend(
                w.unhealthy
                    .iter()
                    .map(|u| (u.host.clone(), format!("UNHEALTHY: {}", u.reasons.join("; ")))),
            );
            v
        }
        Event::RolloutStopped {
            play,
            wave,
            waves,
            reason,
            untouched,
        } => vec![(
            run(),
            format!(
                "play {play}: rollout stopped after wave {wave}/{waves} ({} devices untouched): {reason}",
                untouched.len()
            ),
        )],
        Event::HostConnecting { host } => vec![(host.clone(), "connecting".into())],
        Event::HostConnected { host, elapsed } => vec![(
            host.clone(),
            format!("connected in {}", human_duration(*elapsed)),
        )],
        Event::HostUnreachable { host, error } => {
            vec![(host.clone(), format!("UNREACHABLE: {error}"))]
        }
        Event::TaskStarted { host, task } => vec![(host.clone(), format!("task started: {task}"))],
        Event::TaskResult {
            host,
            task,
            module,
            status: st,
            handler,
            msg,
            diff,
            duration,
            item,
            ..
        } => {
            let mut text = format!(
                "{}{} [{module}]{}: {} in {}",
                if *handler { "handler " } else { "task " },
                task,
                item.as_ref().map(|i| format!(" (item={i})")).unwrap_or_default(),
                status(*st),
                human_duration(*duration),
            );
            if let Some(m) = msg.as_deref().filter(|m| !m.is_empty()) {
                text.push_str(&format!("\nmessage: {m}"));
            }
            if let Some(d) = diff {
                text.push_str(&format!("\ndiff:\n{d}"));
            }
            vec![(host.clone(), text)]
        }
        Event::Exec {
            host,
            command,
            stdin,
            status,
            duration,
        } => {
            let stdin = if stdin.is_empty() {
                String::new()
            } else {
                format!(" stdin={stdin}")
            };
            vec![(
                host.clone(),
                format!(
                    "exec: {command}{stdin} -> {status} in {}ms",
                    duration.as_millis()
                ),
            )]
        }
        Event::Warning { host, message } => vec![(
            host.clone().unwrap_or_else(run),
            format!("WARNING: {message}"),
        )],
        Event::Deadman {
            host,
            state,
            detail,
            ..
        } => vec![(
            host.clone(),
            format!(
                "dead-man {}: {detail}",
                match state {
                    super::DeadmanState::Armed => "armed",
                    super::DeadmanState::Disarmed => "disarmed",
                    super::DeadmanState::RolledBack => "ROLLED BACK BY THE DEVICE",
                }
            ),
        )],
        Event::Findings { host, findings } => findings
            .iter()
            .map(|f| {
                (
                    host.clone(),
                    format!("finding {} [{}]: {}", f.id, f.severity.as_str(), f.message),
                )
            })
            .collect(),
        Event::Verify {
            host,
            checks,
            passed,
        } => {
            let mut text = format!(
                "verify: {}",
                if *passed {
                    "production-ready"
                } else {
                    "NOT production-ready"
                }
            );
            for c in checks {
                text.push_str(&format!("\ncheck {}: {}", c.id, c.result));
                if let Some(w) = &c.waiver {
                    text.push_str(&format!(" (waived: {w})"));
                }
                for d in &c.details {
                    text.push_str(&format!(" - {d}"));
                }
            }
            vec![(host.clone(), text)]
        }
        Event::HostFinished {
            host,
            status,
            stats,
            duration,
            ..
        } => vec![(
            host.clone(),
            format!(
                "finished: {} in {}; {} round trips, {} bytes sent, {} bytes received, {} connections",
                match status {
                    HostStatus::Ok => "ok",
                    HostStatus::Failed => "FAILED",
                    HostStatus::Unreachable => "UNREACHABLE",
                    HostStatus::Interrupted => "interrupted",
                },
                human_duration(*duration),
                stats.execs,
                stats.bytes_sent,
                stats.bytes_received,
                stats.connects
            ),
        )],
        Event::RunFinished {
            duration,
            interrupted,
        } => vec![(
            run(),
            format!(
                "run finished in {}{}",
                human_duration(*duration),
                if *interrupted { " (interrupted)" } else { "" }
            ),
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

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

    #[test]
    fn every_line_has_time_and_device_and_secrets_are_masked() {
        crate::redact::register("log-secret-canary-42");
        let buf = Buf::default();
        let mut w = LogWriter::new(Box::new(buf.clone()));
        let t = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        w.event(
            &Event::Exec {
                host: "edge-1".into(),
                command: "sh -c 'echo log-secret-canary-42'".into(),
                stdin: "<secret, 12 bytes>".into(),
                status: "exit code 0".into(),
                duration: Duration::from_millis(7),
            },
            t,
        );
        w.event(
            &Event::TaskResult {
                host: "edge-1".into(),
                task: "t".into(),
                module: "command".into(),
                status: TaskStatus::Failed,
                handler: false,
                msg: Some("line one\nline two".into()),
                diff: None,
                duration: Duration::from_millis(7),
                item: None,
                applies_config: false,
            },
            t,
        );
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("log-secret-canary-42"), "{text}");
        for l in text.lines() {
            assert!(l.starts_with("2027-01-15T08:00:00.000Z edge-1 "), "{l}");
        }
        assert!(text.contains(
            "exec: sh -c 'echo ********' stdin=<secret, 12 bytes> -> exit code 0 in 7ms"
        ));
        assert!(text.contains("edge-1   | line two"), "{text}");
    }
}
