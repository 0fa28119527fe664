//! IoT Edge domain logic: the 1.5 super config (config.toml) model and validation, daemon.json, Edge CA
//! certificates, and parsing of `iotedge check` / `system status` / `list` output.
//!
//! Pure logic: no I/O to devices. Modules in `modules/` call into here.

use std::sync::Arc;

use crate::modules::Module;

pub mod certs;
pub mod check;
pub mod config;
pub mod daemon;

/// The IoT Edge modules (registered with the generic ones).
pub fn modules() -> Vec<Arc<dyn Module>> {
    use crate::modules::*;
    vec![
        Arc::new(iotedge_config::IotedgeConfig),
        Arc::new(iotedge_apply::IotedgeApply),
        Arc::new(docker_daemon::DockerDaemon),
        Arc::new(edge_ca::EdgeCa),
        Arc::new(iotedge_verify::IotedgeVerify),
    ]
}
