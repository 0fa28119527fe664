//! IoT Edge domain logic: the 1.5 super config (config.toml) model and validation, daemon.json, Edge CA
//! certificates and their renewal verdicts, the verification policy over what `facts::iotedge` gathers, a rollout wave's health verdict (`health`), the
//! maintenance rules over what `facts::maintenance` gathers, and the `edgefleet lint` rules over deployment
//! manifests (`manifest`), some of which `running` judges on the containers a device really runs (for verify).
//!
//! No I/O to devices: modules in `modules/` call into here and the executor applies what they plan. Local files
//! named by the operator (certificates, templates) are read by the modules, not here.

pub mod certs;
pub mod check;
pub mod config;
pub mod daemon;
pub mod health;
pub mod maintenance;
pub mod manifest;
pub mod proxy;
pub mod reach;
pub mod renew;
pub mod running;
