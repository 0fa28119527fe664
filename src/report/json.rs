//! Machine-readable output: the JSON report document (`--output json`, `--report FILE`) and the JSON lines
//! (`--output jsonl`). The format is documented in `docs/report.md` and `docs/report.schema.json`; bump
//! [`REPORT_VERSION`] on any change that is not purely additive.
//!
//! Owns the document's shape and the redaction of every string in it (values are masked before
//! serialization, so a secret with characters JSON escapes is still masked). It must not decide anything about
//! the run: it only shapes what the [`Fleet`] holds.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::fleet::{
    ChangedTask, Device, FailedTask, FindingTotals, Fleet, TaskCounts, Totals, VerifyResult,
};
use super::Event;
use super::Finding;
use crate::redact::redact;

/// The version of the report document and of the jsonl lines. Readers should refuse a major version they do
/// not know.
pub const REPORT_VERSION: u32 = 1;

/// RFC 3339 UTC timestamp with milliseconds: `2026-11-26T10:00:00.123Z`.
pub fn timestamp(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Mask every registered secret in every string (and key) of `v`.
pub fn redact_value(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let std::borrow::Cow::Owned(r) = redact(s) {
                *s = r;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact_value),
        Value::Object(o) => {
            let needs_key_change = o
                .keys()
                .any(|k| matches!(redact(k), std::borrow::Cow::Owned(_)));
            if needs_key_change {
                let old = std::mem::take(o);
                for (k, mut val) in old {
                    redact_value(&mut val);
                    o.insert(redact(&k).into_owned(), val);
                }
            } else {
                o.values_mut().for_each(redact_value);
            }
        }
        _ => {}
    }
}

/// One device in the report.
#[derive(Debug, Serialize)]
pub struct DeviceReport<'a> {
    /// Inventory name.
    pub name: &'a str,
    /// ok | changed | failed | unreachable | skipped | interrupted.
    pub status: &'static str,
    /// One line: what went wrong (null when the device is fine).
    pub error: Option<String>,
    /// The task that stopped the device.
    pub failed_task: Option<&'a FailedTask>,
    /// Why the device could not be reached.
    pub unreachable: Option<&'a str>,
    /// Task counts.
    pub tasks: TaskCounts,
    /// Tasks that changed something (would have, in check mode), in order.
    pub changed_tasks: &'a [ChangedTask],
    /// Changed tasks whose module applies configuration by restarting services (`iotedge_apply`).
    pub applies: usize,
    /// Verification results (null when no verify task ran).
    pub verify: Option<&'a VerifyResult>,
    /// Maintenance findings (absent when no maintenance task ran; `[]` when it found nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<&'a [Finding]>,
    /// Warnings about the device.
    pub warnings: &'a [String],
    /// Remote commands run (one SSH exec each).
    pub round_trips: u64,
    /// Bytes sent (commands, stdin, files).
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Connections opened.
    pub connects: u64,
    /// Connect + authenticate time.
    pub connect_ms: Option<u64>,
    /// Wall time on the device.
    pub duration_ms: u64,
}

impl<'a> DeviceReport<'a> {
    /// The report entry for `d`.
    pub fn of(d: &'a Device) -> Self {
        let status = match d.status() {
            // The run is over: a device that never finished was cut short.
            super::fleet::DeviceStatus::Running => super::fleet::DeviceStatus::Interrupted,
            s => s,
        };
        DeviceReport {
            name: &d.name,
            status: status.as_str(),
            error: if status.is_bad() {
                d.error_line()
                    .or_else(|| Some("interrupted before it finished".into()))
            } else {
                None
            },
            failed_task: if status == super::fleet::DeviceStatus::Failed {
                d.failed_task.as_ref()
            } else {
                None
            },
            unreachable: d.unreachable.as_deref(),
            tasks: d.tasks,
            changed_tasks: &d.changed_tasks,
            applies: d.applies,
            verify: d.verify.as_ref(),
            findings: d.maintained.then_some(d.findings.as_slice()),
            warnings: &d.warnings,
            round_trips: d.stats.execs,
            bytes_sent: d.stats.bytes_sent,
            bytes_received: d.stats.bytes_received,
            connects: d.stats.connects,
            connect_ms: d.connect.map(|c| c.as_millis() as u64),
            duration_ms: d.duration.as_millis() as u64,
        }
    }
}

/// The verify section: per-device verdict counts and the check matrix.
#[derive(Debug, Serialize)]
pub struct VerifySection {
    /// Devices with verify results.
    pub devices: usize,
    /// Devices that passed.
    pub passed: usize,
    /// Devices that did not.
    pub failed: usize,
    /// One entry per check: the devices for each result.
    pub checks: Vec<super::fleet::CheckRow>,
}

/// A warning and the devices it was about.
#[derive(Debug, Serialize)]
pub struct WarningEntry {
    /// The message.
    pub message: String,
    /// Devices (empty: about the run).
    pub hosts: Vec<String>,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// The edgefleet version that wrote it.
    pub edgefleet: &'static str,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// When the report was written.
    pub finished_at: String,
    /// Run wall time.
    pub duration_ms: u64,
    /// Playbooks, as given.
    pub playbooks: &'a [String],
    /// Plays started, in order.
    pub plays: &'a [String],
    /// Check mode (nothing changed; "changed" means "would change").
    pub check_mode: bool,
    /// Interrupted by Ctrl-C.
    pub interrupted: bool,
    /// Why the run stopped early (max_fail_percentage, any_errors_fatal), or null.
    pub aborted: Option<&'a str>,
    /// The process exit code (0 ok, 2 a device failed, 3 a device unreachable, 99 interrupted).
    pub exit_code: i32,
    /// Totals.
    pub totals: Totals,
    /// Every device, in inventory order.
    pub devices: Vec<DeviceReport<'a>>,
    /// Verification over the fleet (null when no device was verified).
    pub verify: Option<VerifySection>,
    /// Maintenance findings over the fleet by severity (absent when no maintenance task ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<FindingTotals>,
    /// Warnings, each distinct message once.
    pub warnings: Vec<WarningEntry>,
    /// The waves of a rollout and their gates (absent when no play has `rollout:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutSection<'a>>,
}

/// The waves of a rollout (`rollout:` plays): every gated wave in order, and where the rollout stopped.
#[derive(Debug, Serialize)]
pub struct RolloutSection<'a> {
    /// Every gated wave.
    pub waves: &'a [super::WaveResult],
    /// Where the rollout stopped and which devices it left untouched (null when it ran to the end).
    pub stopped: Option<&'a super::fleet::RolloutStop>,
}

/// Build the report document (redacted).
pub fn document(f: &Fleet, exit_code: i32) -> Value {
    let mut v = serde_json::to_value(report(f, exit_code))
        .unwrap_or_else(|e| json!({"version": REPORT_VERSION, "error": e.to_string()}));
    redact_value(&mut v);
    v
}

/// Write the report document as pretty JSON (redacted line by line) to `w`, serialized straight from the data:
/// no intermediate JSON tree or string, which for a thousand devices would cost tens of megabytes at the end
/// of a run.
pub fn write_document(r: &Report<'_>, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut lw = RedactLines {
        out: w,
        line: Vec::new(),
    };
    serde_json::to_writer_pretty(&mut lw, r).map_err(std::io::Error::other)?;
    lw.line.push(b'\n');
    lw.flush_line()?;
    lw.out.flush()
}

/// Buffers one line at a time and writes it redacted (pretty JSON never puts a newline inside a string, so a
/// secret never spans two lines).
struct RedactLines<'a> {
    out: &'a mut dyn std::io::Write,
    line: Vec<u8>,
}

impl RedactLines<'_> {
    fn flush_line(&mut self) -> std::io::Result<()> {
        let text = String::from_utf8_lossy(&self.line);
        self.out
            .write_all(crate::redact::redact(&text).as_bytes())?;
        self.line.clear();
        Ok(())
    }
}

impl std::io::Write for RedactLines<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &b in buf {
            self.line.push(b);
            if b == b'\n' {
                self.flush_line()?;
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The report document's data (written by [`write_document`], once per destination).
pub fn report(f: &Fleet, exit_code: i32) -> Report<'_> {
    let t = f.totals();
    Report {
        version: REPORT_VERSION,
        edgefleet: env!("CARGO_PKG_VERSION"),
        started_at: timestamp(f.started_at),
        finished_at: timestamp(time::OffsetDateTime::now_utc()),
        duration_ms: f.duration.unwrap_or_default().as_millis() as u64,
        playbooks: &f.playbooks,
        plays: &f.plays,
        check_mode: f.check,
        interrupted: f.interrupted,
        aborted: f.aborted.as_deref(),
        exit_code,
        totals: t,
        devices: f.devices().iter().map(DeviceReport::of).collect(),
        verify: (t.verified > 0).then(|| VerifySection {
            devices: t.verified,
            passed: t.verify_passed,
            failed: t.verified - t.verify_passed,
            checks: f.verify_matrix(),
        }),
        findings: f.findings_totals(),
        warnings: f
            .warnings_grouped()
            .into_iter()
            .map(|(message, hosts)| WarningEntry { message, hosts })
            .collect(),
        rollout: (!f.waves.is_empty() || f.rollout_stopped.is_some()).then(|| RolloutSection {
            waves: &f.waves,
            stopped: f.rollout_stopped.as_ref(),
        }),
    }
}

/// One jsonl line for an event: the event's own fields plus `ts` (RFC 3339, UTC). Redacted.
pub fn event_line(ev: &Event, ts: time::OffsetDateTime) -> Value {
    let mut v = serde_json::to_value(ev)
        .unwrap_or_else(|e| json!({"event": "error", "error": e.to_string()}));
    if let Value::Object(m) = &mut v {
        let mut out = Map::with_capacity(m.len() + 1);
        if let Some(e) = m.shift_remove("event") {
            out.insert("event".into(), e);
        }
        out.insert("ts".into(), Value::String(timestamp(ts)));
        out.extend(std::mem::take(m));
        v = Value::Object(out);
    }
    redact_value(&mut v);
    v
}

/// The last jsonl line: `{"event":"summary", ...}` with the version, exit code, totals, and every device that
/// is not ok with its error — so a jsonl reader needs nothing else to act on the run.
pub fn summary_line(f: &Fleet, exit_code: i32) -> Value {
    let not_ok: Vec<Value> = f
        .devices()
        .iter()
        .filter(|d| d.status().is_bad())
        .map(|d| json!({"name": d.name, "status": d.status().as_str(), "error": d.error_line()}))
        .collect();
    let mut v = json!({
        "event": "summary",
        "ts": timestamp(time::OffsetDateTime::now_utc()),
        "version": REPORT_VERSION,
        "exit_code": exit_code,
        "interrupted": f.interrupted,
        "aborted": f.aborted,
        "duration": f.duration.unwrap_or_default().as_millis() as u64,
        "totals": f.totals(),
        "not_ok": not_ok,
    });
    redact_value(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn redaction_reaches_every_string_even_escaped_ones() {
        crate::redact::register("pa\"ss\nword-json-canary");
        let mut v = json!({"a": ["x pa\"ss\nword-json-canary y"], "pa\"ss\nword-json-canary": 1});
        redact_value(&mut v);
        let s = v.to_string();
        assert!(!s.contains("word-json-canary"), "{s}");
        assert!(s.contains("x ******** y"), "{s}");
    }

    #[test]
    fn event_lines_carry_event_then_ts() {
        let ev = Event::HostConnected {
            host: "h".into(),
            elapsed: Duration::from_millis(12),
        };
        let t = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let v = event_line(&ev, t);
        assert_eq!(
            v.to_string(),
            r#"{"event":"host_connected","ts":"2027-01-15T08:00:00.000Z","host":"h","elapsed":12}"#
        );
    }

    #[test]
    fn document_has_every_device() {
        let mut f = Fleet::new();
        let t0 = Instant::now();
        f.apply(
            &Event::HostUnreachable {
                host: "u".into(),
                error: "refused".into(),
            },
            t0,
        );
        f.apply(
            &Event::HostFinished {
                host: "u".into(),
                status: crate::report::HostStatus::Unreachable,
                stats: Default::default(),
                duration: Duration::ZERO,
                error: None,
            },
            t0,
        );
        let d = document(&f, 3);
        assert_eq!(d["version"], 1);
        assert_eq!(d["exit_code"], 3);
        assert_eq!(d["devices"][0]["status"], "unreachable");
        assert_eq!(d["devices"][0]["error"], "refused");
        assert_eq!(d["totals"]["unreachable"], 1);
        assert!(d["verify"].is_null());
        let s = summary_line(&f, 3);
        assert_eq!(s["not_ok"][0]["name"], "u");
    }
}
