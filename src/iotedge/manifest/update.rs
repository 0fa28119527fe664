//! Module update order (EF701): when modules declare a `startupOrder`, edgeAgent must run with
//! `ModuleUpdateMode` = `WaitForAllPulls`, or it starts each module as soon as its image arrives and the order is
//! not kept. An invalid `ModuleUpdateMode` is reported too. Pure: no I/O.

use super::finding::{Ctx, Finding};
use super::source::is_placeholder;

const MODES: &[&str] = &["NonBlocking", "WaitForAllPulls"];

/// The update-mode rule.
pub(super) fn check(ctx: &Ctx, out: &mut Vec<Finding>) {
    let Some(agent) = ctx
        .dep
        .modules
        .iter()
        .find(|m| m.system && m.name == "edgeAgent")
    else {
        return;
    };
    let mode = agent.env("ModuleUpdateMode");
    if let Some(n) = mode {
        match n.as_str() {
            Some(s) if is_placeholder(s) => return,
            Some(s) if MODES.contains(&s) => {}
            _ => {
                out.push(
                    Finding::new(
                        "EF701",
                        ctx.file,
                        n.pos,
                        format!(
                            "edgeAgent ModuleUpdateMode must be one of {} (case-sensitive)",
                            MODES.join(", ")
                        ),
                    )
                    .module("edgeAgent"),
                );
                return;
            }
        }
    }
    let ordered: Vec<&str> = ctx
        .dep
        .modules
        .iter()
        .filter(|m| m.node.get("startupOrder").is_some())
        .map(|m| m.name.as_str())
        .collect();
    if !ordered.is_empty() && mode.and_then(|n| n.as_str()) != Some("WaitForAllPulls") {
        out.push(
            Finding::new("EF701", ctx.file, mode.map(|n| n.pos).unwrap_or(agent.pos), format!("modules declare a startupOrder ({}), but edgeAgent's ModuleUpdateMode is not `WaitForAllPulls`: set env `ModuleUpdateMode` to \"WaitForAllPulls\" so the order is kept", ordered.join(", ")))
                .module("edgeAgent"),
        );
    }
}
