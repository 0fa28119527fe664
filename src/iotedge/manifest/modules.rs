//! Per-module resource and privilege rules, on the parsed createOptions: a memory limit (EF501) and a CPU limit
//! (EF502) on every custom module, log limits on every module (EF503: a `HostConfig.LogConfig` with max-size and
//! max-file, unless a daemon.json linted in the same run rotates every container's logs), and privilege grants
//! (EF504 privileged, EF505 host namespaces, EF506 added capabilities and devices).
//!
//! A module whose createOptions is a template placeholder or not JSON is skipped here (`size` reports the
//! latter). Pure: no I/O.

use serde_json::Value;

use super::finding::{Ctx, Finding};
use super::source::is_placeholder;

fn positive(v: Option<&Value>) -> bool {
    v.and_then(Value::as_f64).is_some_and(|n| n > 0.0)
}

/// Does a LogConfig limit the logs?
fn log_config_limits(v: Option<&Value>) -> bool {
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

/// The per-module rules.
pub(super) fn check(ctx: &Ctx, out: &mut Vec<Finding>) {
    for m in &ctx.dep.modules {
        let unknown = match &m.create_text {
            Some((t, _)) => m.create.is_none() || is_placeholder(t),
            None => false,
        };
        if unknown {
            continue;
        }
        let at = m.create_pos();
        let hc = |k: &str| m.create_at(&["HostConfig", k]);
        let f = |id: &'static str, msg: String| Finding::new(id, ctx.file, at, msg).module(&m.name);
        if !m.system {
            if !positive(hc("Memory")) {
                out.push(f("EF501", format!("module `{}` has no memory limit: set createOptions HostConfig.Memory (bytes, e.g. 268435456 for 256 MB)", m.name)));
            }
            if !positive(hc("NanoCpus"))
                && !positive(hc("NanoCPUs"))
                && !positive(hc("CpuQuota"))
                && !positive(hc("CpuShares"))
            {
                out.push(f("EF502", format!("module `{}` has no CPU limit: set createOptions HostConfig.NanoCpus (e.g. 500000000 for half a CPU)", m.name)));
            }
        }
        if !ctx.daemon_log_limits && !log_config_limits(hc("LogConfig")) {
            out.push(f("EF503", format!("module `{}` has no log limits: set createOptions HostConfig.LogConfig {{\"Type\": \"local\", \"Config\": {{\"max-size\": \"10m\", \"max-file\": \"3\"}}}}, or lint together with the daemon.json that sets log-opts", m.name)));
        }
        if hc("Privileged").and_then(Value::as_bool) == Some(true) {
            out.push(f("EF504", format!("module `{}` runs privileged (full root access to the host): grant only the devices and capabilities it needs", m.name)));
        }
        for k in ["NetworkMode", "PidMode", "IpcMode", "UsernsMode"] {
            if hc(k).and_then(Value::as_str) == Some("host") {
                out.push(f("EF505", format!("module `{}` shares the host's namespace ({k} = \"host\"): use the default unless it must, and waive this with the reason", m.name)));
            }
        }
        let caps: Vec<String> = hc("CapAdd")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if !caps.is_empty() {
            out.push(f("EF506", format!("module `{}` adds capabilities {}: keep the list minimal and waive this with the reason", m.name, caps.join(", "))));
        }
        let devices = hc("Devices")
            .and_then(Value::as_array)
            .map(Vec::len)
            .unwrap_or(0);
        if devices > 0 {
            out.push(f("EF506", format!("module `{}` maps {devices} host device(s): keep the list minimal and waive this with the reason", m.name)));
        }
    }
}
