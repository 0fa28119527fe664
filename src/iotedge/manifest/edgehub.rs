//! edgeHub settings (EF301-EF303): `OptimizeForPerformance` left on (a note: it matters on small devices),
//! every protocol head left enabled, and the store-and-forward `timeToLiveSecs` left implicit; and a base
//! deployment's runtime modules and `$edgeHub` present (EF011).
//!
//! Layered deployments only partly describe a device: nothing absent is reported for them. Pure: no I/O.

use super::finding::{Ctx, Finding};
use super::source::is_placeholder;

const HEADS: &[&str] = &[
    "amqpSettings__enabled",
    "mqttSettings__enabled",
    "httpSettings__enabled",
];

/// The edgeHub rules.
pub(super) fn check(ctx: &Ctx, out: &mut Vec<Finding>) {
    if ctx.dep.layered {
        return;
    }
    let hub = ctx
        .dep
        .modules
        .iter()
        .find(|m| m.system && m.name == "edgeHub");
    if let Some(h) = hub {
        let opt = h.env("OptimizeForPerformance");
        let off = opt
            .and_then(|n| n.as_str())
            .is_some_and(|s| s.eq_ignore_ascii_case("false") || is_placeholder(s))
            || opt.is_some_and(|n| n.val == super::source::Json::Bool(false));
        if !off {
            out.push(
                Finding::new("EF301", ctx.file, opt.map(|n| n.pos).unwrap_or(h.pos), "edgeHub runs with OptimizeForPerformance on (the default): on a small device (under ~1 GB RAM, 32-bit ARM) set env `OptimizeForPerformance` to \"false\"")
                    .module("edgeHub"),
            );
        }
        if HEADS.iter().all(|k| h.env(k).is_none()) {
            out.push(
                Finding::new("EF302", ctx.file, h.pos, "every edgeHub protocol head (AMQP, MQTT, HTTP) is left enabled: set `amqpSettings__enabled`, `mqttSettings__enabled` or `httpSettings__enabled` to \"false\" for the protocols no module or downstream device uses")
                    .module("edgeHub"),
            );
        }
    } else {
        out.push(Finding::new(
            "EF011",
            ctx.file,
            ctx.dep.agent_pos,
            "no `systemModules.edgeHub` in `$edgeAgent`: a base deployment must define both runtime modules",
        ));
    }
    if !ctx
        .dep
        .modules
        .iter()
        .any(|m| m.system && m.name == "edgeAgent")
    {
        out.push(Finding::new(
            "EF011",
            ctx.file,
            ctx.dep.agent_pos,
            "no `systemModules.edgeAgent` in `$edgeAgent`: a base deployment must define both runtime modules",
        ));
    }
    match ctx.dep.hub {
        None => out.push(Finding::new(
            "EF011",
            ctx.file,
            ctx.dep.hub_pos,
            "no `$edgeHub` with `properties.desired` (routes, storeAndForwardConfiguration): a base deployment must have it",
        )),
        Some(hd) => {
            if hd.path(&["storeAndForwardConfiguration", "timeToLiveSecs"]).is_none() {
                out.push(Finding::new(
                    "EF303",
                    ctx.file,
                    hd.get("storeAndForwardConfiguration").map(|n| n.pos).unwrap_or(hd.pos),
                    "`storeAndForwardConfiguration.timeToLiveSecs` is not set (default 7200 s = 2 hours of offline buffering): set how long this device must keep messages during an outage",
                ));
            }
        }
    }
}
