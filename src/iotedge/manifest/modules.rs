//! Per-module resource and privilege rules, on the parsed createOptions: a memory limit (EF501) and a CPU limit
//! (EF502) on every custom module, log limits on every module (EF503: a `HostConfig.LogConfig` with max-size and
//! max-file, unless a daemon.json linted in the same run rotates every container's logs), and privilege grants
//! (EF504 privileged, EF505 host namespaces, EF506 added capabilities and devices).
//!
//! The predicates are `hostconfig`'s (the verify rules on running containers use the same ones); this file words
//! the findings. A module whose createOptions is a template placeholder or not JSON is skipped here (`size`
//! reports the latter). Pure: no I/O.

use super::finding::{Ctx, Finding};
use super::hostconfig::{host_issues, HostIssue};
use super::source::is_placeholder;

/// The per-module rules (the predicates are `hostconfig`'s, shared with the verify rules on running containers).
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
        let f = |id: &'static str, msg: String| Finding::new(id, ctx.file, at, msg).module(&m.name);
        let hc = m.create_at(&["HostConfig"]);
        for issue in host_issues(hc, !m.system, ctx.daemon_log_limits) {
            let msg = match &issue {
                HostIssue::NoMemoryLimit => format!("module `{}` has no memory limit: set createOptions HostConfig.Memory (bytes, e.g. 268435456 for 256 MB)", m.name),
                HostIssue::NoCpuLimit => format!("module `{}` has no CPU limit: set createOptions HostConfig.NanoCpus (e.g. 500000000 for half a CPU)", m.name),
                HostIssue::NoLogLimits => format!("module `{}` has no log limits: set createOptions HostConfig.LogConfig {{\"Type\": \"local\", \"Config\": {{\"max-size\": \"10m\", \"max-file\": \"3\"}}}}, or lint together with the daemon.json that sets log-opts", m.name),
                HostIssue::Privileged => format!("module `{}` runs privileged (full root access to the host): grant only the devices and capabilities it needs", m.name),
                HostIssue::HostNamespace(k) => format!("module `{}` shares the host's namespace ({k} = \"host\"): use the default unless it must, and waive this with the reason", m.name),
                HostIssue::CapAdd(caps) => format!("module `{}` adds capabilities {}: keep the list minimal and waive this with the reason", m.name, caps.join(", ")),
                HostIssue::Devices(n) => format!("module `{}` maps {n} host device(s): keep the list minimal and waive this with the reason", m.name),
            };
            out.push(f(issue.rule(), msg));
        }
    }
}
