//! edgefleet: fleet provisioning for Azure IoT Edge devices over SSH.
//!
//! The library behind the `edgefleet` binary. Layers, from the outside in:
//! `cli` (flags) → `app` (commands) → `inventory` / `playbook` / `vars` / `template` (the language, loaded and
//! validated before any device is contacted) → `executor` (plan, then apply, per device, in parallel) →
//! `modules` (what each task means) + `iotedge` (IoT Edge domain logic) → `transport` (SSH / local) →
//! `report` (events to output). `lab` is the simulated device fleet used by tests, demos and benchmarks.

pub mod cli;
pub mod commands;
pub mod diag;
pub mod error;
pub mod executor;
pub mod facts;
pub mod inventory;
pub mod iotedge;
pub mod lab;
pub mod modules;
pub mod playbook;
pub mod pycompat;
pub mod redact;
pub mod report;
pub mod shell;
pub mod template;
pub mod transport;
pub mod vars;
pub mod yaml;
