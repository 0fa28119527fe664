//! The manifest rules that apply to running containers, judged on what the device really runs (`docker inspect`
//! of the module containers, parsed by `facts::containers`): runtime images pinned (EF101), debug images
//! (EF103), host storage for edgeAgent and edgeHub (EF401 `storageFolder`, EF402 bound to a host directory),
//! memory limits on custom modules (EF501), log limits in effect (EF503), privileges (EF504 privileged, EF505
//! host namespaces, EF506 capabilities and devices). Same ids, same predicates as `edgefleet lint`
//! (`manifest::host_issues`, `storage_bound`, `is_debug_tag`, `config::image_finding`): one row per rule per
//! device, listing the offending modules (by name); plus one row for the inspection itself
//! ([`INSPECT_CHECK`]), an error when docker could not be asked (then no rule rows). A CPU limit (EF502) is a
//! note that depends on the device, and is not judged here.
//!
//! Log limits: the engine fills a container's `LogConfig` from the daemon's defaults when it creates it, so
//! what `docker inspect` shows is what is in effect; the daemon's current defaults count only for a container
//! whose `LogConfig` names no driver. A daemon.json that limits logs now does not reach containers created
//! before it: the message says so. Severities are the lint rules'; `iotedge::check` turns the rows into check
//! results. Pure functions of gathered data.

use crate::facts::containers::Container;
use crate::iotedge::config::image_finding;
use crate::iotedge::manifest::{
    host_issues, is_debug_tag, rule, storage_bound, HostIssue, Severity,
};

/// The row that says whether the running modules could be read at all.
pub const INSPECT_CHECK: &str = "edgefleet-running-modules";

/// The lint rules judged on running containers, in report order.
pub const RUNNING_RULES: &[&str] = &[
    "EF101", "EF103", "EF401", "EF402", "EF501", "EF503", "EF504", "EF505", "EF506",
];

/// One row: a rule (or [`INSPECT_CHECK`]) on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningRow {
    /// The rule id (`EF503`) or [`INSPECT_CHECK`].
    pub id: &'static str,
    /// None: passed; else how bad (the rule's severity).
    pub severity: Option<Severity>,
    /// For a failed rule: `name: module, module`, then one line per offending module.
    pub details: Vec<String>,
}

fn is_runtime(c: &Container) -> bool {
    c.name == "edgeAgent" || c.name == "edgeHub"
}

/// What is wrong with one container, as (rule id, detail) pairs.
fn container_issues(c: &Container, daemon_log_limits: bool) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let n = &c.name;
    if is_debug_tag(&c.image) {
        out.push((
            "EF103",
            format!(
                "`{n}` runs the debug image `{}`: deploy the release image",
                c.image
            ),
        ));
    } else if is_runtime(c) {
        if let Some(f) = image_finding(&c.image) {
            out.push(("EF101", format!("`{n}`: {f}")));
        }
    }
    if is_runtime(c) {
        match &c.storage_folder {
            None => out.push((
                "EF401",
                format!("`{n}` has no env `storageFolder`: its state is lost when the container is recreated; set it in the deployment and bind a host directory there"),
            )),
            Some(folder) if !storage_bound(folder, Some(&c.host_config)) => out.push((
                "EF402",
                format!("`{n}`: storageFolder `{folder}` is not on a host directory (mounts: {}); add a bind `/srv/{n}:{folder}` to its createOptions HostConfig.Binds", mounts(c)),
            )),
            Some(_) => {}
        }
    }
    let lc = c.host_config.get("LogConfig");
    let no_driver = lc
        .and_then(|l| l.get("Type"))
        .and_then(|t| t.as_str())
        .is_none_or(str::is_empty);
    for issue in host_issues(
        Some(&c.host_config),
        !is_runtime(c),
        daemon_log_limits && no_driver,
    ) {
        let detail = match &issue {
            // A CPU limit is advice that depends on the device (a note): not judged on devices.
            HostIssue::NoCpuLimit => continue,
            HostIssue::NoMemoryLimit => format!("`{n}` runs without a memory limit (HostConfig.Memory): set one in its createOptions"),
            HostIssue::NoLogLimits => {
                let driver = lc
                    .and_then(|l| l.get("Type"))
                    .and_then(|t| t.as_str())
                    .filter(|t| !t.is_empty())
                    .unwrap_or("the default");
                let mut s = format!("`{n}` logs with {driver} driver without max-size and max-file: its logs can fill the disk; set a LogConfig in its createOptions");
                if daemon_log_limits {
                    s.push_str(" (daemon.json limits logs now, but only for containers created after it: remove the container so that it is recreated)");
                }
                s
            }
            HostIssue::Privileged => format!("`{n}` runs privileged (full root access to the host)"),
            HostIssue::HostNamespace(k) => format!("`{n}` shares the host's namespace ({k} = host)"),
            HostIssue::CapAdd(caps) => format!("`{n}` adds capabilities {}", caps.join(", ")),
            HostIssue::Devices(d) => format!("`{n}` maps {d} host device(s)"),
        };
        out.push((issue.rule(), detail));
    }
    out
}

fn mounts(c: &Container) -> String {
    if c.mounts.is_empty() {
        return "none".into();
    }
    c.mounts
        .iter()
        .map(|m| format!("{} {}:{}", m.kind, m.source, m.destination))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rows for one device: the inspection row, then one row per rule of [`RUNNING_RULES`] (none when the
/// modules could not be read). `daemon_log_limits`: the device's daemon.json limits every new container's logs.
pub fn running_rows(
    containers: &Result<Vec<Container>, String>,
    daemon_log_limits: bool,
) -> Vec<RunningRow> {
    let list = match containers {
        Err(e) => {
            return vec![RunningRow {
                id: INSPECT_CHECK,
                severity: Some(Severity::Error),
                details: vec![format!(
                    "could not read the running modules with `docker inspect`: {e}"
                )],
            }]
        }
        Ok(l) => l,
    };
    // By name: `docker ps` lists by creation time, which says nothing to a reader and differs between devices.
    let mut list: Vec<&Container> = list.iter().collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
    let mut rows = vec![RunningRow {
        id: INSPECT_CHECK,
        severity: None,
        details: vec![if names.is_empty() {
            "no module container is running".to_string()
        } else {
            format!(
                "{} module containers running: {}",
                names.len(),
                names.join(", ")
            )
        }],
    }];
    let issues: Vec<(&Container, Vec<(&'static str, String)>)> = list
        .iter()
        .map(|c| (*c, container_issues(c, daemon_log_limits)))
        .collect();
    for id in RUNNING_RULES {
        let mut names: Vec<&str> = Vec::new();
        let mut lines: Vec<String> = Vec::new();
        for (c, found) in &issues {
            for (rid, detail) in found.iter().filter(|(r, _)| r == id) {
                debug_assert_eq!(rid, id);
                if !names.contains(&c.name.as_str()) {
                    names.push(&c.name);
                }
                lines.push(detail.clone());
            }
        }
        let r = rule(id);
        rows.push(if lines.is_empty() {
            RunningRow {
                id,
                severity: None,
                details: vec![],
            }
        } else {
            let mut details = vec![format!(
                "{}: {}",
                r.map(|r| r.name).unwrap_or(id),
                names.join(", ")
            )];
            details.extend(lines);
            RunningRow {
                id,
                severity: Some(r.map(|r| r.severity).unwrap_or(Severity::Warning)),
                details,
            }
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::containers::parse_inspect;

    const RECORDED: &str = include_str!("../../tests/fixtures/facts/docker-inspect.json");

    fn failing(rows: &[RunningRow]) -> Vec<(&'static str, Vec<String>)> {
        rows.iter()
            .filter(|r| r.severity.is_some())
            .map(|r| (r.id, r.details.clone()))
            .collect()
    }

    #[test]
    fn the_recorded_device_passes_every_rule() {
        let c = parse_inspect(RECORDED).unwrap();
        let rows = running_rows(&Ok(c), false);
        assert_eq!(rows.len(), 1 + RUNNING_RULES.len());
        assert_eq!(failing(&rows), vec![]);
        assert_eq!(
            rows[0].details,
            ["3 module containers running: SimulatedTemperatureSensor, edgeAgent, edgeHub"]
        );
        // Every rule of the list is a lint rule.
        assert!(RUNNING_RULES.iter().all(|id| rule(id).is_some()));
    }

    #[test]
    fn each_rule_fails_on_its_change_and_names_the_modules() {
        let base = parse_inspect(RECORDED).unwrap();
        let with = |f: &dyn Fn(&mut Vec<Container>)| {
            let mut c = base.clone();
            f(&mut c);
            failing(&running_rows(&Ok(c), false))
        };
        let hub = 1;
        let r = with(&|c| c[hub].image = "mcr.microsoft.com/azureiotedge-hub:1.5".into());
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, "EF101");
        assert_eq!(r[0].1[0], "runtime-image-unpinned: edgeHub");
        let r = with(&|c| c[0].image = "x/sensor:1.0-debug".into());
        assert_eq!(r[0].0, "EF103");
        let r = with(&|c| c[hub].storage_folder = None);
        assert_eq!(r[0].0, "EF401");
        let r = with(&|c| {
            c[hub].host_config["Binds"] = serde_json::json!(["edgehub:/tmp/edgeHub"]);
        });
        assert_eq!(r[0].0, "EF402");
        assert!(
            r[0].1[1].contains("mounts: bind /srv/iotedge/edgeHub:/tmp/edgeHub"),
            "{r:?}"
        );
        let r = with(&|c| c[0].host_config["Memory"] = 0.into());
        assert_eq!(r[0], ("EF501", vec!["memory-limit-missing: SimulatedTemperatureSensor".to_string(), "`SimulatedTemperatureSensor` runs without a memory limit (HostConfig.Memory): set one in its createOptions".to_string()]));
        let r = with(&|c| {
            for x in c.iter_mut() {
                x.host_config["LogConfig"] = serde_json::json!({"Type": "json-file", "Config": {}});
            }
        });
        assert_eq!(r[0].0, "EF503");
        assert_eq!(
            r[0].1[0],
            "log-limits-missing: SimulatedTemperatureSensor, edgeAgent, edgeHub"
        );
        assert_eq!(r[0].1.len(), 4);
        let r = with(&|c| {
            c[0].host_config["Privileged"] = true.into();
            c[0].host_config["NetworkMode"] = "host".into();
            c[0].host_config["CapAdd"] = serde_json::json!(["NET_ADMIN"]);
        });
        let ids: Vec<&str> = r.iter().map(|x| x.0).collect();
        assert_eq!(ids, ["EF504", "EF505", "EF506"]);
        // A CPU limit is not judged on devices.
        assert_eq!(with(&|c| c[0].host_config["NanoCpus"] = 0.into()), vec![]);
    }

    #[test]
    fn log_limits_from_the_daemon_only_without_a_driver() {
        let mut c = parse_inspect(RECORDED).unwrap();
        c[0].host_config["LogConfig"] = serde_json::json!({"Type": "json-file", "Config": {}});
        let r = failing(&running_rows(&Ok(c.clone()), true));
        assert_eq!(r[0].0, "EF503");
        assert!(
            r[0].1[1].contains("only for containers created after it"),
            "{r:?}"
        );
        c[0].host_config["LogConfig"] = serde_json::json!({"Type": "", "Config": {}});
        assert_eq!(failing(&running_rows(&Ok(c.clone()), true)), vec![]);
        assert_eq!(failing(&running_rows(&Ok(c), false))[0].0, "EF503");
    }

    #[test]
    fn a_failing_docker_is_one_error_row_and_nothing_running_passes() {
        let rows = running_rows(
            &Err("docker failed (exit code 1): Cannot connect".into()),
            true,
        );
        assert_eq!(
            rows,
            [RunningRow {
                id: INSPECT_CHECK,
                severity: Some(Severity::Error),
                details: vec!["could not read the running modules with `docker inspect`: docker failed (exit code 1): Cannot connect".into()],
            }]
        );
        let rows = running_rows(&Ok(vec![]), false);
        assert_eq!(failing(&rows), vec![]);
        assert_eq!(rows[0].details, ["no module container is running"]);
    }
}
