//! `edgefleet report merge`: one fleet report from the JSON reports of a run split in shards (`--shard K/N`), so
//! N controllers' results read like one run's: totals summed, the verify matrix and findings merged per check,
//! warnings merged per message, every device once.
//!
//! It works on the documents as JSON (the format of `docs/report.md`), so a merge never depends on the
//! in-memory fleet. Reports that are not one run's shards are refused with what differs: another report
//! version, other playbooks, check mode mixed with a changing run, a device in two reports. Devices the caller
//! expected (the inventory the shards ran against) that no report covers are added as failed: a shard whose
//! controller died cannot make the merged run pass. It must not read files or print: the command does.

use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use super::json::REPORT_VERSION;

/// Why reports cannot be merged (the message names the reports and what differs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MergeError(pub String);

fn err(m: impl Into<String>) -> MergeError {
    MergeError(m.into())
}

/// Merge `reports` (name for messages, document). `expected`: hosts the merged run must cover (missing ones
/// are added as failed devices); `None` when the caller does not know the fleet.
pub fn merge(
    reports: &[(String, Value)],
    expected: Option<&[String]>,
) -> Result<Value, MergeError> {
    let Some((first_name, first)) = reports.first() else {
        return Err(err("no report to merge"));
    };
    for (name, r) in reports {
        check_version(name, r)?;
    }
    let playbooks = &first["playbooks"];
    let check_mode = first["check_mode"].as_bool().unwrap_or(false);
    for (name, r) in &reports[1..] {
        if &r["playbooks"] != playbooks {
            return Err(err(format!(
                "{name} ran {} but {first_name} ran {}: only the shards of one run (the same playbooks) can be merged",
                r["playbooks"], playbooks
            )));
        }
        if r["check_mode"].as_bool().unwrap_or(false) != check_mode {
            return Err(err(format!(
                "{name} and {first_name} differ in check mode: a --check run and a changing run cannot be merged"
            )));
        }
    }

    let mut owner: IndexMap<String, &str> = IndexMap::new();
    let mut devices: Vec<Value> = Vec::new();
    for (name, r) in reports {
        let list = r["devices"].as_array().ok_or_else(|| {
            err(format!(
                "{name}: no `devices` list: not an edgefleet JSON report"
            ))
        })?;
        for d in list {
            let host = d["name"]
                .as_str()
                .ok_or_else(|| err(format!("{name}: a device without a name")))?;
            if let Some(other) = owner.insert(host.to_string(), name) {
                return Err(err(format!(
                    "{host} is in both {other} and {name}: the shards overlap (were they run with the same --shard N and inventory?)"
                )));
            }
            devices.push(d.clone());
        }
    }

    let mut totals = sum_objects(reports.iter().map(|(_, r)| &r["totals"]));
    let mut missing = Vec::new();
    for host in expected.unwrap_or_default() {
        if !owner.contains_key(host.as_str()) {
            missing.push(host.clone());
            devices.push(missing_device(host));
        }
    }
    if !missing.is_empty() {
        for key in ["devices", "failed"] {
            let n = totals.get(key).and_then(Value::as_u64).unwrap_or(0);
            totals.insert(key.into(), json!(n + missing.len() as u64));
        }
    }

    let interrupted = reports
        .iter()
        .any(|(_, r)| r["interrupted"].as_bool().unwrap_or(false));
    let aborted: Vec<String> = reports
        .iter()
        .filter_map(|(n, r)| r["aborted"].as_str().map(|a| format!("{n}: {a}")))
        .collect();
    let exit_code = exit_code(reports, &totals, interrupted, !aborted.is_empty());

    let mut warnings = merge_warnings(reports);
    let versions: Vec<&str> = unique(reports.iter().filter_map(|(_, r)| r["edgefleet"].as_str()));
    if versions.len() > 1 {
        warnings.push(json!({
            "message": format!("the shards ran different edgefleet versions: {}", versions.join(", ")),
            "hosts": [],
        }));
    }
    if !missing.is_empty() {
        warnings.push(json!({
            "message": format!(
                "{} device(s) of the inventory are in no shard report (a shard's controller did not finish): counted as failed",
                missing.len()
            ),
            "hosts": missing,
        }));
    }

    let mut out = Map::new();
    out.insert("version".into(), json!(REPORT_VERSION));
    out.insert("edgefleet".into(), first["edgefleet"].clone());
    out.insert("started_at".into(), extreme(reports, "started_at", false));
    out.insert("finished_at".into(), extreme(reports, "finished_at", true));
    out.insert(
        "duration_ms".into(),
        json!(reports
            .iter()
            .filter_map(|(_, r)| r["duration_ms"].as_u64())
            .max()
            .unwrap_or(0)),
    );
    out.insert("playbooks".into(), playbooks.clone());
    out.insert(
        "plays".into(),
        json!(unique(
            reports.iter().flat_map(|(_, r)| strings(&r["plays"]))
        )),
    );
    out.insert("check_mode".into(), json!(check_mode));
    out.insert("interrupted".into(), json!(interrupted));
    out.insert(
        "aborted".into(),
        if aborted.is_empty() {
            Value::Null
        } else {
            json!(aborted.join("; "))
        },
    );
    out.insert("exit_code".into(), json!(exit_code));
    out.insert("totals".into(), Value::Object(totals));
    out.insert("devices".into(), Value::Array(devices));
    out.insert("verify".into(), merge_verify(reports));
    let findings: Vec<&Value> = reports
        .iter()
        .map(|(_, r)| &r["findings"])
        .filter(|f| f.is_object())
        .collect();
    if !findings.is_empty() {
        out.insert(
            "findings".into(),
            Value::Object(sum_objects(findings.into_iter())),
        );
    }
    out.insert("warnings".into(), Value::Array(warnings));
    out.insert(
        "merged_from".into(),
        Value::Array(
            reports
                .iter()
                .map(|(n, r)| {
                    json!({
                        "report": n,
                        "devices": r["devices"].as_array().map_or(0, Vec::len),
                        "exit_code": r["exit_code"],
                    })
                })
                .collect(),
        ),
    );
    Ok(Value::Object(out))
}

fn check_version(name: &str, r: &Value) -> Result<(), MergeError> {
    match r.get("version").and_then(Value::as_u64) {
        Some(v) if v == u64::from(REPORT_VERSION) => Ok(()),
        Some(v) => Err(err(format!(
            "{name} is a version {v} report; this edgefleet reads version {REPORT_VERSION}: merge with the edgefleet that wrote it"
        ))),
        None => Err(err(format!(
            "{name} is not an edgefleet JSON report (no `version`): give the files written by `--report FILE`"
        ))),
    }
}

/// The merged run's exit code, with the run's own precedence: interrupted, then unreachable, then failed (or
/// stopped early), then the code of a shard that ended otherwise (e.g. 12, changes under --detailed-exitcode).
fn exit_code(
    reports: &[(String, Value)],
    totals: &Map<String, Value>,
    interrupted: bool,
    aborted: bool,
) -> i64 {
    let n = |k: &str| totals.get(k).and_then(Value::as_u64).unwrap_or(0);
    if interrupted {
        return crate::error::ExitCode::Interrupted.code().into();
    }
    let base = crate::error::ExitCode::from_counts(n("failed") as usize, n("unreachable") as usize);
    if base != crate::error::ExitCode::Ok {
        return base.code().into();
    }
    if aborted {
        return crate::error::ExitCode::HostFailed.code().into();
    }
    reports
        .iter()
        .filter_map(|(_, r)| r["exit_code"].as_i64())
        .find(|&c| c != 0)
        .unwrap_or(0)
}

/// A device of the fleet that no shard report covers.
fn missing_device(host: &str) -> Value {
    json!({
        "name": host,
        "status": "failed",
        "error": "no shard report covers this device: its shard's controller did not finish (rerun that shard)",
        "failed_task": null,
        "unreachable": null,
        "tasks": super::fleet::TaskCounts::default(),
        "changed_tasks": [],
        "applies": 0,
        "verify": null,
        "warnings": [],
        "round_trips": 0,
        "bytes_sent": 0,
        "bytes_received": 0,
        "connects": 0,
        "connect_ms": null,
        "duration_ms": 0,
    })
}

/// Field-wise sums of objects of counts (keys in first-seen order; non-numbers keep the first value).
fn sum_objects<'a>(objs: impl Iterator<Item = &'a Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for o in objs.filter_map(Value::as_object) {
        for (k, v) in o {
            match (out.get(k).and_then(Value::as_u64), v.as_u64()) {
                (Some(a), Some(b)) => {
                    out.insert(k.clone(), json!(a + b));
                }
                (None, _) if !out.contains_key(k) => {
                    out.insert(k.clone(), v.clone());
                }
                _ => {}
            }
        }
    }
    out
}

fn merge_verify(reports: &[(String, Value)]) -> Value {
    let sections: Vec<&Value> = reports
        .iter()
        .map(|(_, r)| &r["verify"])
        .filter(|v| v.is_object())
        .collect();
    if sections.is_empty() {
        return Value::Null;
    }
    let mut counts = Map::new();
    for key in ["devices", "passed", "failed"] {
        let n: u64 = sections.iter().filter_map(|s| s[key].as_u64()).sum();
        counts.insert(key.into(), json!(n));
    }
    let mut rows: IndexMap<String, Map<String, Value>> = IndexMap::new();
    for s in &sections {
        for row in s["checks"].as_array().into_iter().flatten() {
            let Some(id) = row["id"].as_str() else {
                continue;
            };
            let merged = rows.entry(id.to_string()).or_insert_with(|| {
                let mut m = Map::new();
                m.insert("id".into(), json!(id));
                m
            });
            for (k, v) in row.as_object().into_iter().flatten() {
                if let Value::Array(hosts) = v {
                    let entry = merged.entry(k.clone()).or_insert_with(|| json!([]));
                    if let Value::Array(a) = entry {
                        a.extend(hosts.iter().cloned());
                    }
                }
            }
        }
    }
    counts.insert(
        "checks".into(),
        Value::Array(rows.into_values().map(Value::Object).collect()),
    );
    Value::Object(counts)
}

fn merge_warnings(reports: &[(String, Value)]) -> Vec<Value> {
    let mut by_message: IndexMap<String, Vec<Value>> = IndexMap::new();
    for (_, r) in reports {
        for w in r["warnings"].as_array().into_iter().flatten() {
            let Some(m) = w["message"].as_str() else {
                continue;
            };
            let hosts = by_message.entry(m.to_string()).or_default();
            for h in w["hosts"].as_array().into_iter().flatten() {
                if !hosts.contains(h) {
                    hosts.push(h.clone());
                }
            }
        }
    }
    by_message
        .into_iter()
        .map(|(message, hosts)| json!({"message": message, "hosts": hosts}))
        .collect()
}

/// The earliest (or latest) RFC 3339 UTC timestamp of `key` (the format sorts as text).
fn extreme(reports: &[(String, Value)], key: &str, latest: bool) -> Value {
    let all = reports.iter().filter_map(|(_, r)| r[key].as_str());
    let pick = if latest { all.max() } else { all.min() };
    pick.map_or(Value::Null, |s| json!(s))
}

fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

fn unique<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(name: &str, status: &str) -> Value {
        json!({"name": name, "status": status, "error": null, "round_trips": 2})
    }

    fn report(devices: &[(&str, &str)], exit: i64) -> Value {
        let failed = devices.iter().filter(|d| d.1 == "failed").count();
        let unreachable = devices.iter().filter(|d| d.1 == "unreachable").count();
        json!({
            "version": 1, "edgefleet": "0.1.0",
            "started_at": "2026-12-03T10:00:00.000Z", "finished_at": "2026-12-03T10:01:00.000Z",
            "duration_ms": 60000, "playbooks": ["playbooks/verify.yml"], "plays": ["Verify"],
            "check_mode": false, "interrupted": false, "aborted": null, "exit_code": exit,
            "totals": {"devices": devices.len(), "ok": devices.len() - failed - unreachable, "failed": failed,
                       "unreachable": unreachable, "round_trips": 2 * devices.len()},
            "devices": devices.iter().map(|(n, s)| device(n, s)).collect::<Vec<_>>(),
            "verify": {"devices": devices.len(), "passed": devices.len() - failed, "failed": failed,
                       "checks": [{"id": "aziot-edged-running", "ok": devices.iter().map(|d| d.0).collect::<Vec<_>>(),
                                   "warning": [], "error": [], "waived": [], "skipped": []}]},
            "warnings": [{"message": "slow", "hosts": [devices[0].0]}],
        })
    }

    #[test]
    fn shards_merge_into_one_fleet() {
        let a = report(&[("edge-1", "ok"), ("edge-3", "ok")], 0);
        let mut b = report(&[("edge-2", "failed")], 2);
        b["started_at"] = json!("2026-12-03T09:59:00.000Z");
        let m = merge(&[("a.json".into(), a), ("b.json".into(), b)], None).unwrap();
        assert_eq!(m["totals"]["devices"], 3);
        assert_eq!(m["totals"]["failed"], 1);
        assert_eq!(m["totals"]["round_trips"], 6);
        assert_eq!(m["exit_code"], 2);
        assert_eq!(m["started_at"], "2026-12-03T09:59:00.000Z");
        assert_eq!(m["verify"]["devices"], 3);
        assert_eq!(m["verify"]["passed"], 2);
        assert_eq!(
            m["verify"]["checks"][0]["ok"],
            json!(["edge-1", "edge-3", "edge-2"])
        );
        assert_eq!(m["warnings"][0]["hosts"], json!(["edge-1", "edge-2"]));
        assert_eq!(m["devices"].as_array().unwrap().len(), 3);
        assert_eq!(m["merged_from"][1]["report"], "b.json");
    }

    #[test]
    fn a_lost_shard_fails_the_merged_run() {
        let a = report(&[("edge-1", "ok")], 0);
        let expected = vec!["edge-1".to_string(), "edge-2".to_string()];
        let m = merge(&[("a.json".into(), a)], Some(&expected)).unwrap();
        assert_eq!(m["exit_code"], 2);
        assert_eq!(m["totals"]["failed"], 1);
        assert_eq!(m["totals"]["devices"], 2);
        assert_eq!(m["devices"][1]["name"], "edge-2");
        assert_eq!(m["devices"][1]["status"], "failed");
        assert!(m["warnings"].to_string().contains("in no shard report"));
    }

    #[test]
    fn reports_of_different_runs_are_refused_saying_what_differs() {
        let a = report(&[("edge-1", "ok")], 0);
        let mut other = report(&[("edge-2", "ok")], 0);
        other["playbooks"] = json!(["playbooks/provision.yml"]);
        let e = merge(
            &[("a.json".into(), a.clone()), ("b.json".into(), other)],
            None,
        )
        .unwrap_err();
        assert!(e.0.contains("b.json ran"), "{e}");
        let mut check = report(&[("edge-2", "ok")], 0);
        check["check_mode"] = json!(true);
        let e = merge(
            &[("a.json".into(), a.clone()), ("c.json".into(), check)],
            None,
        )
        .unwrap_err();
        assert!(e.0.contains("check mode"), "{e}");
        let e = merge(
            &[("a.json".into(), a.clone()), ("a2.json".into(), a.clone())],
            None,
        )
        .unwrap_err();
        assert!(e.0.contains("edge-1 is in both a.json and a2.json"), "{e}");
        let e = merge(&[("x.json".into(), json!({"devices": []}))], None).unwrap_err();
        assert!(e.0.contains("not an edgefleet JSON report"), "{e}");
        let mut v2 = a;
        v2["version"] = json!(2);
        let e = merge(&[("v.json".into(), v2)], None).unwrap_err();
        assert!(e.0.contains("version 2"), "{e}");
    }

    #[test]
    fn exit_codes_keep_the_runs_precedence() {
        let ok = report(&[("edge-1", "ok")], 0);
        let unreachable = report(&[("edge-2", "unreachable")], 3);
        let failed = report(&[("edge-3", "failed")], 2);
        let m = merge(
            &[
                ("a".into(), ok.clone()),
                ("b".into(), failed),
                ("c".into(), unreachable),
            ],
            None,
        )
        .unwrap();
        assert_eq!(m["exit_code"], 3);
        let mut changed = report(&[("edge-4", "ok")], 12);
        changed["totals"]["changed"] = json!(1);
        let m = merge(&[("a".into(), ok), ("d".into(), changed)], None).unwrap();
        assert_eq!(m["exit_code"], 12);
    }
}
