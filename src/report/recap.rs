//! The end-of-run recap for humans: per-device lines for small runs, fleet totals, the devices that are not ok
//! with their error (identical errors grouped), the verify matrix, maintenance findings per device (grouped by
//! severity, with counts), and warnings.
//!
//! Owns the recap's layout and its truncation rules ("and N more": the JSON report always has everything). A
//! pure function of the [`Fleet`]; it must not print, and returns text already redacted.

use super::fleet::{Device, DeviceStatus, Fleet};
use super::term::{human_duration, Paint};
use crate::redact::redact;

/// Per-device recap lines are printed for runs up to this size (or always with `-v`).
pub const PER_DEVICE_LINES: usize = 20;
/// Groups of not-ok devices shown before "and N more".
pub const MAX_PROBLEM_GROUPS: usize = 20;
/// Device names listed per group or matrix cell before "and N more".
pub const MAX_NAMES: usize = 5;

/// How to render the recap.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecapOptions {
    /// `-v` level.
    pub verbose: u8,
    /// Colour.
    pub paint: Paint,
}

/// `a, b, c and 7 more`.
pub fn names(list: &[String], max: usize) -> String {
    if list.len() <= max {
        return list.join(", ");
    }
    format!("{} and {} more", list[..max].join(", "), list.len() - max)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn status_word(p: Paint, s: DeviceStatus) -> String {
    match s {
        DeviceStatus::Failed => p.red("FAILED"),
        DeviceStatus::Unreachable => p.bold_red("UNREACHABLE"),
        DeviceStatus::Interrupted => p.magenta("INTERRUPTED"),
        DeviceStatus::RolledBack => p.bold_red("ROLLED BACK"),
        DeviceStatus::Changed => p.yellow("changed"),
        DeviceStatus::Ok => p.green("ok"),
        DeviceStatus::Skipped => p.cyan("skipped"),
        DeviceStatus::Running => "running".to_string(),
    }
}

fn device_line(p: Paint, d: &Device, w: usize) -> String {
    let name = format!("{:<w$}", d.name);
    let name = match d.status() {
        DeviceStatus::Failed | DeviceStatus::Unreachable | DeviceStatus::RolledBack => p.red(&name),
        DeviceStatus::Changed => p.yellow(&name),
        DeviceStatus::Ok => p.green(&name),
        _ => name,
    };
    format!(
        "{name} : ok={} changed={} unreachable={} failed={} skipped={} ignored={} round_trips={}\n",
        d.tasks.ok,
        d.tasks.changed,
        usize::from(matches!(
            d.status(),
            DeviceStatus::Unreachable | DeviceStatus::RolledBack
        )),
        d.tasks.failed,
        d.tasks.skipped,
        d.tasks.ignored,
        d.stats.execs,
    )
}

/// Render the recap.
pub fn render(f: &Fleet, o: RecapOptions) -> String {
    let p = o.paint;
    let mut out = String::new();
    out.push('\n');
    out.push_str(&p.bold("RECAP"));
    if f.check {
        out.push_str(" (check mode: nothing was changed; \"changed\" means \"would change\")");
    }
    out.push('\n');
    let devices = f.devices();
    if devices.len() <= PER_DEVICE_LINES || o.verbose >= 1 {
        let w = devices
            .iter()
            .map(|d| d.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        for d in devices {
            out.push_str(&device_line(p, d, w));
        }
    }
    let t = f.totals();
    let mut parts = vec![
        format!("{} changed", t.changed),
        format!("{} ok", t.ok),
        format!("{} failed", t.failed),
        format!("{} unreachable", t.unreachable),
        format!("{} skipped", t.skipped),
    ];
    if t.interrupted > 0 {
        parts.push(format!("{} interrupted", t.interrupted));
    }
    if t.rolled_back > 0 {
        parts.push(format!("{} rolled back by the device", t.rolled_back));
    }
    out.push_str(&format!(
        "devices: {} total: {}\n",
        t.devices,
        parts.join(", ")
    ));
    out.push_str(&format!(
        "tasks changed: {}, applies run: {}, round trips: {}, duration: {}{}\n",
        t.tasks_changed,
        t.applies,
        t.round_trips,
        human_duration(f.duration.unwrap_or_default()),
        if f.interrupted {
            format!(" ({})", p.magenta("interrupted"))
        } else {
            String::new()
        }
    ));
    if let Some(a) = &f.aborted {
        out.push_str(&format!("{}: {a}\n", p.red("run stopped early")));
    }
    out.push_str(&rollout(f, p));
    out.push_str(&problems(f, p));
    out.push_str(&verify_matrix(f, o));
    out.push_str(&findings(f, o));
    out.push_str(&warnings(f, p));
    redact(&out).into_owned()
}

/// The waves of a rollout: one line per wave (its gate), each unhealthy device with why, and where the rollout
/// stopped with how many devices it left untouched.
fn rollout(f: &Fleet, p: Paint) -> String {
    if f.waves.is_empty() && f.rollout_stopped.is_none() {
        return String::new();
    }
    let mut out = format!("{}\n", p.bold("ROLLOUT"));
    for w in &f.waves {
        out.push_str(&format!("  {}\n", super::plain::wave_gate_line(w)));
        for u in &w.unhealthy {
            out.push_str(&format!(
                "    {} {}: {}\n",
                p.red("unhealthy"),
                u.host,
                u.reasons.join("; ")
            ));
        }
    }
    if let Some(s) = &f.rollout_stopped {
        out.push_str(&format!(
            "  {} after wave {}/{}: {} devices untouched{}\n",
            p.bold_red("stopped"),
            s.wave,
            s.waves,
            s.untouched.len(),
            if s.untouched.is_empty() {
                String::new()
            } else {
                format!(" ({})", names(&s.untouched, 5))
            }
        ));
    }
    out
}

/// The devices that are not ok, identical (status, error) pairs grouped.
fn problems(f: &Fleet, p: Paint) -> String {
    let mut groups: Vec<(DeviceStatus, String, Vec<String>)> = vec![];
    let mut at: std::collections::HashMap<(DeviceStatus, String), usize> = Default::default();
    for d in f.devices().iter().filter(|d| d.status().is_bad()) {
        let err = d.error_line().unwrap_or_default();
        let key = (d.status(), err.clone());
        let i = *at.entry(key).or_insert_with(|| {
            groups.push((d.status(), err, vec![]));
            groups.len() - 1
        });
        groups[i].2.push(d.name.clone());
    }
    if groups.is_empty() {
        return String::new();
    }
    // Failed, then unreachable, then interrupted; biggest groups first within each.
    groups.sort_by(|a, b| a.0.cmp(&b.0).then(b.2.len().cmp(&a.2.len())));
    let bad: usize = groups.iter().map(|g| g.2.len()).sum();
    let mut out = format!("not ok: {}\n", plural(bad, "device", "devices"));
    let w = groups.iter().map(|g| g.0.as_str().len()).max().unwrap_or(0);
    for (s, err, hosts) in groups.iter().take(MAX_PROBLEM_GROUPS) {
        let word = status_word(p, *s);
        let pad = " ".repeat(w.saturating_sub(s.as_str().len()));
        out.push_str(&format!(
            "  {word}{pad}  {}: {err}\n",
            names(hosts, MAX_NAMES)
        ));
    }
    if groups.len() > MAX_PROBLEM_GROUPS {
        let rest: usize = groups[MAX_PROBLEM_GROUPS..].iter().map(|g| g.2.len()).sum();
        out.push_str(&format!(
            "  ... and {} more (the JSON report, --report FILE, lists every device)\n",
            plural(rest, "device", "devices")
        ));
    }
    out
}

/// Maintenance findings: totals by severity, then each device with findings (most critical first), its findings
/// grouped by severity. Devices beyond [`MAX_PROBLEM_GROUPS`] (without `-v`) are counted, not listed.
fn findings(f: &Fleet, o: RecapOptions) -> String {
    use super::Severity;
    let p = o.paint;
    let Some(t) = f.findings_totals() else {
        return String::new();
    };
    let mut out = format!(
        "findings: {} critical, {} warning, {} info on {} of {}\n",
        t.critical,
        t.warning,
        t.info,
        t.devices_with_findings,
        plural(t.devices, "device", "devices")
    );
    let mut devs: Vec<&Device> = f
        .devices()
        .iter()
        .filter(|d| !d.findings.is_empty())
        .collect();
    let count = |d: &Device, s: Severity| d.findings.iter().filter(|x| x.severity == s).count();
    devs.sort_by_key(|d| {
        (
            std::cmp::Reverse(count(d, Severity::Critical)),
            std::cmp::Reverse(count(d, Severity::Warning)),
        )
    });
    let shown = if o.verbose >= 1 {
        devs.len()
    } else {
        devs.len().min(MAX_PROBLEM_GROUPS)
    };
    for d in &devs[..shown] {
        let counts: Vec<String> = [Severity::Critical, Severity::Warning, Severity::Info]
            .into_iter()
            .filter_map(|s| {
                let n = count(d, s);
                (n > 0).then(|| format!("{n} {}", s.as_str()))
            })
            .collect();
        out.push_str(&format!("  {}: {}\n", d.name, counts.join(", ")));
        for s in [Severity::Critical, Severity::Warning, Severity::Info] {
            for x in d.findings.iter().filter(|x| x.severity == s) {
                let word = match s {
                    Severity::Critical => p.red("critical"),
                    Severity::Warning => p.yellow("warning "),
                    Severity::Info => p.cyan("info    "),
                };
                out.push_str(&format!("    {word} {}: {}\n", x.id, x.message));
            }
        }
    }
    if shown < devs.len() {
        out.push_str(&format!(
            "  ... and {} more with findings (-v lists them; the JSON report has every finding)\n",
            plural(devs.len() - shown, "device", "devices")
        ));
    }
    out
}

/// Checks × results, with the devices behind every warning, error and waiver.
fn verify_matrix(f: &Fleet, o: RecapOptions) -> String {
    let p = o.paint;
    let t = f.totals();
    if t.verified == 0 {
        return String::new();
    }
    let rows = f.verify_matrix();
    let mut out = format!(
        "verify: {} of {} production-ready\n",
        t.verify_passed,
        plural(t.verified, "device", "devices")
    );
    let (mut shown, quiet): (Vec<_>, Vec<_>) = rows.iter().partition(|r| {
        o.verbose >= 1 || !r.warning.is_empty() || !r.error.is_empty() || !r.waived.is_empty()
    });
    // Errors first, then warnings, then waivers; the most widespread first in each (stable otherwise).
    shown.sort_by(|a, b| {
        (b.error.len(), b.warning.len(), b.waived.len()).cmp(&(
            a.error.len(),
            a.warning.len(),
            a.waived.len(),
        ))
    });
    if !shown.is_empty() {
        let w = shown
            .iter()
            .map(|r| r.id.len())
            .max()
            .unwrap_or(5)
            .clamp(5, 48);
        out.push_str(&format!(
            "  {:<w$}  {:>5}  {:>7}  {:>5}  {:>6}  {:>7}\n",
            "check", "ok", "warning", "error", "waived", "skipped"
        ));
        for r in &shown {
            let mut who = vec![];
            if !r.error.is_empty() {
                who.push(format!("{}: {}", p.red("error"), names(&r.error, 3)));
            }
            if !r.warning.is_empty() {
                who.push(format!("{}: {}", p.yellow("warning"), names(&r.warning, 3)));
            }
            if !r.waived.is_empty() {
                if r.waivers.is_empty() {
                    who.push(format!("waived: {}", names(&r.waived, 3)));
                } else {
                    who.push(format!(
                        "waived ({}): {}",
                        r.waivers.join("; "),
                        names(&r.waived, 3)
                    ));
                }
            }
            let id = super::term::fit(&r.id, w);
            out.push_str(&format!(
                "  {id:<w$}  {:>5}  {:>7}  {:>5}  {:>6}  {:>7}   {}\n",
                r.ok.len(),
                r.warning.len(),
                r.error.len(),
                r.waived.len(),
                r.skipped.len(),
                who.join("; ")
            ));
        }
    }
    if !quiet.is_empty() {
        out.push_str(&format!(
            "  ({} ok or skipped on every device; -v lists them)\n",
            plural(quiet.len(), "more check", "more checks")
        ));
    }
    out
}

fn warnings(f: &Fleet, p: Paint) -> String {
    let groups = f.warnings_grouped();
    if groups.is_empty() {
        return String::new();
    }
    let mut out = format!("{}\n", p.magenta("warnings:"));
    for (msg, hosts) in groups.iter().take(MAX_PROBLEM_GROUPS) {
        let first = super::term::first_line(msg);
        if hosts.is_empty() {
            out.push_str(&format!("  {first}\n"));
        } else {
            out.push_str(&format!(
                "  {first} ({}: {})\n",
                plural(hosts.len(), "device", "devices"),
                names(hosts, MAX_NAMES)
            ));
        }
    }
    if groups.len() > MAX_PROBLEM_GROUPS {
        out.push_str(&format!(
            "  ... and {} more distinct warnings\n",
            groups.len() - MAX_PROBLEM_GROUPS
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::StatsSnapshot;
    use crate::report::{Event, HostCheck, HostStatus, TaskStatus};
    use std::time::{Duration, Instant};

    fn fleet_of(n: usize, fail_every: usize) -> Fleet {
        let mut f = Fleet::new();
        let t0 = Instant::now();
        for i in 0..n {
            let host = format!("edge-{i:03}");
            let failed = fail_every > 0 && i % fail_every == 0;
            f.apply(
                &Event::TaskResult {
                    host: host.clone(),
                    task: "push config".into(),
                    module: "iotedge_config".into(),
                    status: if failed {
                        TaskStatus::Failed
                    } else {
                        TaskStatus::Changed
                    },
                    handler: false,
                    msg: failed.then(|| "No space left on device".to_string()),
                    diff: None,
                    duration: Duration::ZERO,
                    item: None,
                    applies_config: false,
                },
                t0,
            );
            f.apply(
                &Event::HostFinished {
                    host,
                    status: if failed {
                        HostStatus::Failed
                    } else {
                        HostStatus::Ok
                    },
                    stats: StatsSnapshot::default(),
                    duration: Duration::ZERO,
                    error: None,
                },
                t0,
            );
        }
        f.duration = Some(Duration::from_secs(3));
        f
    }

    #[test]
    fn names_truncate() {
        let l: Vec<String> = (1..=8).map(|i| format!("h{i}")).collect();
        assert_eq!(names(&l[..2], 5), "h1, h2");
        assert_eq!(names(&l, 3), "h1, h2, h3 and 5 more");
    }

    #[test]
    fn big_fleets_group_identical_errors_and_skip_per_device_lines() {
        let f = fleet_of(800, 4);
        let r = render(&f, RecapOptions::default());
        assert!(!r.contains("edge-001 :"), "{r}");
        assert!(
            r.contains(
                "devices: 800 total: 600 changed, 0 ok, 200 failed, 0 unreachable, 0 skipped"
            ),
            "{r}"
        );
        assert!(r.contains("not ok: 200 devices\n"), "{r}");
        assert!(
            r.contains("  FAILED  edge-000, edge-004, edge-008, edge-012, edge-016 and 195 more: push config: No space left on device\n"),
            "{r}"
        );
        assert!(r.lines().count() < 15, "{r}");
    }

    #[test]
    fn small_fleets_get_per_device_lines() {
        let f = fleet_of(3, 2);
        let r = render(&f, RecapOptions::default());
        assert!(
            r.contains("edge-001 : ok=0 changed=1 unreachable=0 failed=0"),
            "{r}"
        );
        assert!(
            r.contains("edge-000 : ok=0 changed=0 unreachable=0 failed=1"),
            "{r}"
        );
    }

    #[test]
    fn matrix_shows_problem_rows_and_collapses_the_rest() {
        let mut f = fleet_of(4, 0);
        let t0 = Instant::now();
        for (i, d) in ["edge-000", "edge-001", "edge-002", "edge-003"]
            .iter()
            .enumerate()
        {
            let c = |id: &str, r: &str| HostCheck {
                id: id.into(),
                result: r.into(),
                details: vec![],
                waiver: None,
            };
            f.apply(
                &Event::Verify {
                    host: d.to_string(),
                    checks: vec![
                        c("config-toml-well-formed", "ok"),
                        c("certs-preloaded", if i == 2 { "error" } else { "ok" }),
                        c(
                            "container-engine-logrotate",
                            if i < 2 { "warning" } else { "ok" },
                        ),
                    ],
                    passed: i != 2,
                },
                t0,
            );
        }
        let r = render(&f, RecapOptions::default());
        assert!(
            r.contains("verify: 3 of 4 devices production-ready\n"),
            "{r}"
        );
        assert!(
            r.contains("certs-preloaded                 3        0      1       0        0   error: edge-002\n"),
            "{r}"
        );
        assert!(r.contains("warning: edge-000, edge-001"), "{r}");
        assert!(
            r.contains("(1 more check ok or skipped on every device; -v lists them)"),
            "{r}"
        );
        let v = render(
            &f,
            RecapOptions {
                verbose: 1,
                ..Default::default()
            },
        );
        assert!(v.contains("config-toml-well-formed"), "{v}");
    }

    #[test]
    fn findings_are_listed_per_device_by_severity_with_counts() {
        use crate::report::{Finding, Severity};
        let mut f = fleet_of(3, 0);
        let t0 = Instant::now();
        let fd = |id: &str, severity| Finding {
            id: id.into(),
            severity,
            message: format!("about {id}"),
            days_left: None,
            bytes: None,
        };
        for (host, findings) in [
            ("edge-000", vec![]),
            (
                "edge-001",
                vec![
                    fd("image.dangling", Severity::Warning),
                    fd("prune.freed", Severity::Info),
                ],
            ),
            (
                "edge-002",
                vec![
                    fd("version.aziot_edge.mismatch", Severity::Warning),
                    fd("cert.edge_ca.expired", Severity::Critical),
                ],
            ),
        ] {
            f.apply(
                &Event::Findings {
                    host: host.into(),
                    findings,
                },
                t0,
            );
        }
        let r = render(&f, RecapOptions::default());
        let at = r.find("findings:").unwrap_or_else(|| panic!("{r}"));
        assert_eq!(
            &r[at..],
            "findings: 1 critical, 2 warning, 1 info on 2 of 3 devices\n  edge-002: 1 critical, 1 warning\n    critical cert.edge_ca.expired: about cert.edge_ca.expired\n    warning  version.aziot_edge.mismatch: about version.aziot_edge.mismatch\n  edge-001: 1 warning, 1 info\n    warning  image.dangling: about image.dangling\n    info     prune.freed: about prune.freed\n"
        );
        let t = f.findings_totals().unwrap();
        assert_eq!(
            (
                t.devices,
                t.devices_with_findings,
                t.critical,
                t.warning,
                t.info
            ),
            (3, 2, 1, 2, 1)
        );
        // Without a maintenance task, no section at all.
        assert!(!render(&fleet_of(3, 0), RecapOptions::default()).contains("findings:"));
    }
}
