//! Host storage for the runtime modules: EF401 `storageFolder` missing, EF402 not bound to a host directory (the
//! rule behind `iotedge check`'s edge-agent/edge-hub-storage-mounted-from-host). Binds (`HostConfig.Binds`) and
//! bind mounts (`HostConfig.Mounts`) count; a bind of a parent directory covers the folder (`hostconfig::storage_bound`,
//! shared with the verify rules on running containers).
//!
//! Layered deployments only partly describe a device: nothing is reported for them. Pure: no I/O.

use super::finding::{Ctx, Finding};
use super::hostconfig::storage_bound;
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
        let bound = storage_bound(folder, m.create_at(&["HostConfig"]));
        if !bound {
            out.push(
                Finding::new("EF402", ctx.file, m.create_pos(), format!("{}: storageFolder `{folder}` is not bound to a host directory; add `\"/srv/{}:{folder}\"` to createOptions HostConfig.Binds (and create the directory for the module's user)", m.name, m.name))
                    .module(&m.name),
            );
        }
    }
}
