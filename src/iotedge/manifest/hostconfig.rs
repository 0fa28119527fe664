//! The per-module predicates over a Docker `HostConfig`, shared by the lint rules on a manifest's createOptions
//! (`modules`, `storage`, `runtime`) and the verify rules on running containers (`iotedge::running`, which feeds
//! them the `HostConfig` that `docker inspect` reports: the same schema). One rule, one predicate: a rule id
//! means the same test wherever it is reported.
//!
//! Says what is wrong ([`HostIssue`]), never how to word it: each caller writes its own message. Pure: no I/O.

use serde_json::Value;

/// Something a module's `HostConfig` grants or lacks, with the lint rule it breaks ([`HostIssue::rule`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostIssue {
    /// No `Memory` limit (EF501; custom modules).
    NoMemoryLimit,
    /// No `NanoCpus`/`CpuQuota`/`CpuShares` limit (EF502; custom modules).
    NoCpuLimit,
    /// No `LogConfig` that limits the logs, and nothing else does (EF503).
    NoLogLimits,
    /// `Privileged` is true (EF504).
    Privileged,
    /// A host namespace: the key (`NetworkMode`, `PidMode`, `IpcMode`, `UsernsMode`) set to "host" (EF505).
    HostNamespace(&'static str),
    /// `CapAdd` grants these capabilities (EF506).
    CapAdd(Vec<String>),
    /// `Devices` maps this many host devices (EF506).
    Devices(usize),
}

impl HostIssue {
    /// The lint rule id.
    pub fn rule(&self) -> &'static str {
        match self {
            HostIssue::NoMemoryLimit => "EF501",
            HostIssue::NoCpuLimit => "EF502",
            HostIssue::NoLogLimits => "EF503",
            HostIssue::Privileged => "EF504",
            HostIssue::HostNamespace(_) => "EF505",
            HostIssue::CapAdd(_) | HostIssue::Devices(_) => "EF506",
        }
    }
}

fn positive(v: Option<&Value>) -> bool {
    v.and_then(Value::as_f64).is_some_and(|n| n > 0.0)
}

/// Does a `LogConfig` limit the logs (journald or none, or `max-size` and `max-file` given)?
pub fn log_config_limits(v: Option<&Value>) -> bool {
    let Some(lc) = v else {
        return false;
    };
    let ty = lc.get("Type").and_then(Value::as_str).unwrap_or("");
    if ty == "journald" || ty == "none" {
        return true;
    }
    let cfg = lc.get("Config");
    let has = |k: &str| {
        cfg.and_then(|c| c.get(k))
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    has("max-size") && has("max-file")
}

/// The issues of one module's `HostConfig` (None: it has none), in rule order. Memory and CPU limits are asked of
/// custom modules only (`custom`); `logs_limited_elsewhere`: the daemon's defaults limit every container's logs
/// that sets no `LogConfig` of its own.
pub fn host_issues(
    hc: Option<&Value>,
    custom: bool,
    logs_limited_elsewhere: bool,
) -> Vec<HostIssue> {
    let get = |k: &str| hc.and_then(|h| h.get(k));
    let mut out = Vec::new();
    if custom {
        if !positive(get("Memory")) {
            out.push(HostIssue::NoMemoryLimit);
        }
        if !["NanoCpus", "NanoCPUs", "CpuQuota", "CpuShares"]
            .iter()
            .any(|k| positive(get(k)))
        {
            out.push(HostIssue::NoCpuLimit);
        }
    }
    if !logs_limited_elsewhere && !log_config_limits(get("LogConfig")) {
        out.push(HostIssue::NoLogLimits);
    }
    if get("Privileged").and_then(Value::as_bool) == Some(true) {
        out.push(HostIssue::Privileged);
    }
    for k in ["NetworkMode", "PidMode", "IpcMode", "UsernsMode"] {
        if get(k).and_then(Value::as_str) == Some("host") {
            out.push(HostIssue::HostNamespace(k));
        }
    }
    let caps: Vec<String> = get("CapAdd")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if !caps.is_empty() {
        out.push(HostIssue::CapAdd(caps));
    }
    let devices = get("Devices")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    if devices > 0 {
        out.push(HostIssue::Devices(devices));
    }
    out
}

/// Is `folder` (a path inside the container) on a host directory? A bind (`Binds`: `/host:/target[:mode]`) or a
/// bind mount (`Mounts`: `{"Type": "bind", "Target": ..}`) of the folder or of a parent of it counts; a named
/// volume does not (EF402, the rule behind `iotedge check`'s edge-agent/edge-hub-storage-mounted-from-host).
pub fn storage_bound(folder: &str, hc: Option<&Value>) -> bool {
    let folder = folder.trim_end_matches('/');
    let covers = |t: &str| {
        let t = t.trim_end_matches('/');
        t == folder || folder.starts_with(&format!("{t}/"))
    };
    let get = |k: &str| hc.and_then(|h| h.get(k)).and_then(Value::as_array);
    let bind = get("Binds").is_some_and(|a| {
        a.iter().filter_map(Value::as_str).any(|b| {
            let parts: Vec<&str> = b.split(':').collect();
            parts.len() >= 2 && parts[0].starts_with('/') && covers(parts[1])
        })
    });
    bind || get("Mounts").is_some_and(|a| {
        a.iter().any(|x| {
            x.get("Type").and_then(Value::as_str) == Some("bind")
                && x.get("Target").and_then(Value::as_str).is_some_and(covers)
        })
    })
}

/// Is the image tag a debug build (`.debug`/`-debug`, EF103)?
pub fn is_debug_tag(image: &str) -> bool {
    let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
    tag.ends_with(".debug") || tag.ends_with("-debug")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn issues_in_rule_order() {
        let hc = json!({"Privileged": true, "NetworkMode": "host", "CapAdd": ["NET_ADMIN"], "Devices": [{}],
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m"}}});
        let got: Vec<&str> = host_issues(Some(&hc), true, false)
            .iter()
            .map(HostIssue::rule)
            .collect();
        assert_eq!(
            got,
            ["EF501", "EF502", "EF503", "EF504", "EF505", "EF506", "EF506"]
        );
        assert_eq!(
            host_issues(Some(&hc), false, true)[0],
            HostIssue::Privileged
        );
        let ok = json!({"Memory": 268435456, "NanoCpus": 500000000, "LogConfig": {"Type": "local", "Config": {"max-size": "10m", "max-file": "3"}}, "NetworkMode": "azure-iot-edge"});
        assert!(host_issues(Some(&ok), true, false).is_empty());
        assert_eq!(host_issues(None, false, false), [HostIssue::NoLogLimits]);
    }

    #[test]
    fn storage_binds_and_mounts() {
        let b = json!({"Binds": ["/srv/edgeHub:/tmp/edgeHub"]});
        assert!(storage_bound("/tmp/edgeHub/", Some(&b)));
        assert!(storage_bound("/tmp/edgeHub/store", Some(&b)));
        assert!(!storage_bound("/tmp/edgeHubX", Some(&b)));
        let vol = json!({"Binds": ["edgehub:/tmp/edgeHub"]});
        assert!(!storage_bound("/tmp/edgeHub", Some(&vol)));
        let m = json!({"Mounts": [{"Type": "bind", "Source": "/srv/a", "Target": "/tmp"}]});
        assert!(storage_bound("/tmp/edgeAgent", Some(&m)));
        assert!(!storage_bound("/tmp/edgeAgent", None));
        assert!(is_debug_tag("x/hub:1.5.21-linux-amd64.debug"));
        assert!(!is_debug_tag("x/debugger:1.0"));
    }
}
