//! edgeHub settings (EF301-EF303): `OptimizeForPerformance` left on (a note: it matters on small devices),
//! every protocol head left enabled, and the store-and-forward `timeToLiveSecs` left implicit; plus host storage
//! for both runtime modules (EF401 `storageFolder` missing, EF402 not bound to a host directory, the rule behind
//! `iotedge check`'s edge-agent/edge-hub-storage-mounted-from-host).
//!
//! Layered deployments only partly describe a device: nothing absent is reported for them. Pure: no I/O.

use super::lint::{Ctx, Finding};
use super::source::is_placeholder;

const HEADS: &[&str] = &[
    "amqpSettings__enabled",
    "mqttSettings__enabled",
    "httpSettings__enabled",
];

/// The edgeHub and storage rules.
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
    storage(ctx, out);
}

/// storageFolder + a bind of it, for edgeAgent and edgeHub.
fn storage(ctx: &Ctx, out: &mut Vec<Finding>) {
    for m in ctx.dep.modules.iter().filter(|m| m.system) {
        let Some(folder) = m.env("storageFolder") else {
            out.push(
                Finding::new("EF401", ctx.file, m.pos, format!("{} has no env `storageFolder`: its state is lost when the container is recreated; set it (e.g. /tmp/{}) and bind a host directory there", m.name, m.name))
                    .module(&m.name),
            );
            continue;
        };
        let Some(folder) = folder.as_str().filter(|s| !is_placeholder(s)) else {
            continue;
        };
        if m.create.is_none() && m.create_text.as_ref().is_some_and(|t| is_placeholder(&t.0)) {
            continue;
        }
        let folder = folder.trim_end_matches('/');
        let binds: Vec<String> = m
            .create_at(&["HostConfig", "Binds"])
            .and_then(|b| b.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mounts_target = |t: &str| {
            t.trim_end_matches('/') == folder
                || folder.starts_with(&format!("{}/", t.trim_end_matches('/')))
        };
        let bound = binds.iter().any(|b| {
            let parts: Vec<&str> = b.split(':').collect();
            parts.len() >= 2 && parts[0].starts_with('/') && mounts_target(parts[1])
        }) || m
            .create_at(&["HostConfig", "Mounts"])
            .and_then(|v| v.as_array())
            .is_some_and(|a| {
                a.iter().any(|x| {
                    x.get("Type").and_then(|t| t.as_str()) == Some("bind")
                        && x.get("Target")
                            .and_then(|t| t.as_str())
                            .is_some_and(mounts_target)
                })
            });
        if !bound {
            out.push(
                Finding::new("EF402", ctx.file, m.create_pos(), format!("{}: storageFolder `{folder}` is not bound to a host directory; add `\"/srv/{}:{folder}\"` to createOptions HostConfig.Binds (and create the directory for the module's user)", m.name, m.name))
                    .module(&m.name),
            );
        }
    }
}
