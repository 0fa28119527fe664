//! `--metrics FILE`: the run's outcome in the Prometheus text format, for node_exporter's textfile collector
//! (`--collector.textfile.directory`), so existing monitoring can alert on a scheduled run.
//!
//! [`MetricsSink`] folds the run's events (how each device finished, which devices changed, the maintenance
//! findings' severities and certificate `days_left`); [`MetricsSink::write`] renders them with `# HELP` and
//! `# TYPE` lines and writes the file atomically (a temp file in the same directory, renamed over the old one),
//! so the collector never reads half a file. A device counts as `locked` when its error says `locked by ...`
//! (another run holds it). Never names a module; knows findings only through the shared [`Finding`] contract.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::{Event, EventSink, Finding, HostStatus, Severity, TaskStatus};

/// How a device finished, as the metrics name it.
const OUTCOMES: [&str; 5] = ["ok", "failed", "unreachable", "locked", "interrupted"];

#[derive(Default)]
struct State {
    /// Device -> outcome (one of [`OUTCOMES`]).
    outcome: BTreeMap<String, &'static str>,
    changed: HashMap<String, ()>,
    findings: BTreeMap<Severity, u64>,
    min_days_left: Option<i64>,
}

/// Folds a run's events into the numbers of the metrics file.
#[derive(Default)]
pub struct MetricsSink {
    state: Mutex<State>,
}

/// What the run itself says at the end (not in the events).
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// The run id (a label of `edgefleet_run_info`).
    pub run_id: String,
    /// Check mode?
    pub check: bool,
    /// Wall time.
    pub duration: Duration,
    /// When the run ended.
    pub ended: SystemTime,
    /// The process exit code.
    pub exit_code: i32,
}

fn outcome(status: HostStatus, error: Option<&str>) -> &'static str {
    if status != HostStatus::Ok && error.is_some_and(|e| e.starts_with("locked by")) {
        return "locked";
    }
    match status {
        HostStatus::Ok => "ok",
        HostStatus::Failed => "failed",
        HostStatus::Unreachable => "unreachable",
        HostStatus::Interrupted => "interrupted",
    }
}

/// A label value, escaped as the text format asks (backslash, double quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl MetricsSink {
    /// A sink with nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The metrics file's text.
    pub fn render(&self, facts: &RunFacts) -> String {
        let st = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let mut o = String::new();
        let head = |o: &mut String, name: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} gauge");
        };
        head(
            &mut o,
            "edgefleet_devices",
            "Devices of the last run by how they finished (locked: another run held the device).",
        );
        for k in OUTCOMES {
            let n = st.outcome.values().filter(|v| **v == k).count();
            let _ = writeln!(o, "edgefleet_devices{{outcome=\"{k}\"}} {n}");
        }
        head(
            &mut o,
            "edgefleet_devices_changed",
            "Devices on which the last run changed something (in check mode: would change something).",
        );
        let _ = writeln!(o, "edgefleet_devices_changed {}", st.changed.len());
        head(
            &mut o,
            "edgefleet_findings",
            "Maintenance findings of the last run by severity.",
        );
        for s in [Severity::Info, Severity::Warning, Severity::Critical] {
            let n = st.findings.get(&s).copied().unwrap_or(0);
            let _ = writeln!(o, "edgefleet_findings{{severity=\"{}\"}} {n}", s.as_str());
        }
        if let Some(d) = st.min_days_left {
            head(
                &mut o,
                "edgefleet_certificate_min_days_left",
                "Fewest whole days until a certificate expires, over every device of the last run (negative: expired).",
            );
            let _ = writeln!(o, "edgefleet_certificate_min_days_left {d}");
        }
        head(
            &mut o,
            "edgefleet_run_duration_seconds",
            "Wall time of the last run.",
        );
        let _ = writeln!(
            o,
            "edgefleet_run_duration_seconds {:.3}",
            facts.duration.as_secs_f64()
        );
        head(
            &mut o,
            "edgefleet_run_end_timestamp_seconds",
            "When the last run ended (Unix time).",
        );
        let end = facts
            .ended
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "edgefleet_run_end_timestamp_seconds {:.3}",
            end.as_secs_f64()
        );
        head(
            &mut o,
            "edgefleet_run_exit_code",
            "Exit code of the last run (0 ok, 2 failed, 3 unreachable, 12 changes; see edgefleet's README).",
        );
        let _ = writeln!(o, "edgefleet_run_exit_code {}", facts.exit_code);
        head(
            &mut o,
            "edgefleet_run_info",
            "The last run: its id (the run journal's name) and whether it was in check mode.",
        );
        let _ = writeln!(
            o,
            "edgefleet_run_info{{run_id=\"{}\",check=\"{}\"}} 1",
            label(&facts.run_id),
            facts.check
        );
        o
    }

    /// Render and write `path` atomically (temp file in the same directory, then rename).
    pub fn write(&self, path: &Path, facts: &RunFacts) -> Result<(), String> {
        super::journal::write_atomic(path, self.render(facts).as_bytes()).map_err(|e| {
            format!(
                "cannot write the metrics file {}: {e} (its directory must exist and be writable)",
                path.display()
            )
        })
    }

    fn add_findings(st: &mut State, findings: &[Finding]) {
        for f in findings {
            *st.findings.entry(f.severity).or_insert(0) += 1;
            if let Some(d) = f.days_left {
                st.min_days_left = Some(st.min_days_left.map_or(d, |m| m.min(d)));
            }
        }
    }
}

impl EventSink for MetricsSink {
    fn emit(&self, ev: Event) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        match ev {
            Event::TaskResult {
                host,
                status: TaskStatus::Changed,
                ..
            } => {
                st.changed.insert(host, ());
            }
            Event::Findings { findings, .. } => Self::add_findings(&mut st, &findings),
            Event::HostFinished {
                host,
                status,
                error,
                ..
            } => {
                st.outcome.insert(host, outcome(status, error.as_deref()));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::StatsSnapshot;

    fn fin(host: &str, status: HostStatus, error: Option<&str>) -> Event {
        Event::HostFinished {
            host: host.into(),
            status,
            stats: StatsSnapshot::default(),
            duration: Duration::ZERO,
            error: error.map(String::from),
        }
    }

    fn finding(id: &str, severity: Severity, days_left: Option<i64>) -> Finding {
        Finding {
            id: id.into(),
            severity,
            message: "m".into(),
            days_left,
            bytes: None,
        }
    }

    /// The file parses with a real text-format parser (prometheus-parse) and holds the folded numbers.
    #[test]
    fn the_file_parses_and_counts_outcomes_findings_and_days_left() {
        let m = MetricsSink::new();
        m.emit(fin("a", HostStatus::Ok, None));
        m.emit(fin("b", HostStatus::Failed, Some("task x: boom")));
        m.emit(fin(
            "c",
            HostStatus::Failed,
            Some("locked by run 2026 (root@ctl since 10:00)"),
        ));
        m.emit(fin("d", HostStatus::Unreachable, Some("timed out")));
        m.emit(Event::TaskResult {
            host: "a".into(),
            task: "t".into(),
            module: "copy".into(),
            status: TaskStatus::Changed,
            handler: false,
            msg: None,
            diff: None,
            duration: Duration::ZERO,
            item: None,
            applies_config: false,
        });
        m.emit(Event::Findings {
            host: "a".into(),
            findings: vec![
                finding("cert.edge_ca.expiring", Severity::Warning, Some(12)),
                finding("cert.identity.ok", Severity::Info, Some(300)),
            ],
        });
        m.emit(Event::Findings {
            host: "b".into(),
            findings: vec![
                finding("cert.edge_ca.expired", Severity::Critical, Some(-3)),
                finding("disk.low", Severity::Critical, None),
            ],
        });
        let facts = RunFacts {
            run_id: "20260101T000000.000Z-00abcdef".into(),
            check: true,
            duration: Duration::from_millis(1500),
            ended: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            exit_code: 3,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edgefleet.prom");
        std::fs::write(&path, "old").unwrap();
        m.write(&path, &facts).unwrap();
        // Atomic: no temp file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let text = std::fs::read_to_string(&path).unwrap();
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let value = |name: &str, lbl: Option<(&str, &str)>| -> f64 {
            let s = scrape
                .samples
                .iter()
                .find(|s| s.metric == name && lbl.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
                .unwrap_or_else(|| panic!("{name} {lbl:?} missing\n{text}"));
            match s.value {
                prometheus_parse::Value::Gauge(v) => v,
                ref other => panic!("{name} is not a gauge: {other:?}"),
            }
        };
        let dev = |o| value("edgefleet_devices", Some(("outcome", o)));
        assert_eq!(
            (dev("ok"), dev("failed"), dev("locked"), dev("unreachable")),
            (1.0, 1.0, 1.0, 1.0)
        );
        assert_eq!(dev("interrupted"), 0.0);
        assert_eq!(value("edgefleet_devices_changed", None), 1.0);
        let sev = |s| value("edgefleet_findings", Some(("severity", s)));
        assert_eq!(
            (sev("info"), sev("warning"), sev("critical")),
            (1.0, 1.0, 2.0)
        );
        assert_eq!(value("edgefleet_certificate_min_days_left", None), -3.0);
        assert_eq!(value("edgefleet_run_duration_seconds", None), 1.5);
        assert_eq!(
            value("edgefleet_run_end_timestamp_seconds", None),
            1_800_000_000.0
        );
        assert_eq!(value("edgefleet_run_exit_code", None), 3.0);
        assert_eq!(
            value(
                "edgefleet_run_info",
                Some(("run_id", "20260101T000000.000Z-00abcdef"))
            ),
            1.0
        );
        // Every metric has its HELP and TYPE.
        for s in &scrape.samples {
            assert!(
                scrape.docs.contains_key(&s.metric),
                "{} has no HELP",
                s.metric
            );
            assert!(
                text.contains(&format!("# TYPE {} gauge", s.metric)),
                "{}",
                s.metric
            );
        }
    }

    #[test]
    fn no_certificate_no_days_left_metric() {
        let m = MetricsSink::new();
        m.emit(fin("a", HostStatus::Ok, None));
        let text = m.render(&RunFacts {
            run_id: "1".into(),
            check: false,
            duration: Duration::ZERO,
            ended: SystemTime::now(),
            exit_code: 0,
        });
        assert!(!text.contains("min_days_left"), "{text}");
        assert!(
            text.contains("edgefleet_devices{outcome=\"ok\"} 1"),
            "{text}"
        );
    }
}
