//! Host storage for the runtime modules: EF401 `storageFolder` missing, EF402 not bound to a host directory (the
//! rule behind `iotedge check`'s edge-agent/edge-hub-storage-mounted-from-host). Binds (`HostConfig.Binds`) and
//! bind mounts (`HostConfig.Mounts`) count; a bind of a parent directory covers the folder.
//!
//! Layered deployments only partly describe a device: nothing is reported for them. Pure: no I/O.

use super::finding::{Ctx, Finding};
use super::source::is_placeholder;

/// storageFolder + a bind of it, for edgeAgent and edgeHub.
pub(super) fn check(ctx: &Ctx, out: &mut Vec<Finding>) {
    if ctx.dep.layered {
        return;
    }
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
