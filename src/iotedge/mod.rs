//! IoT Edge domain logic: the 1.5 super config (config.toml) model and validation, daemon.json, Edge CA
//! certificates, and parsing of `iotedge check` / `system status` / `list` output.
//!
//! Pure logic: no I/O to devices. Modules in `modules/` call into here.

use std::sync::Arc;

use crate::modules::Module;

/// The IoT Edge modules (registered with the generic ones).
pub fn modules() -> Vec<Arc<dyn Module>> {
    Vec::new()
}
