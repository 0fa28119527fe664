//! edgefleet: fleet provisioning for Azure IoT Edge devices over SSH.
//!
//! The library behind the `edgefleet` binary, in layers; a file imports only from layers below it and there are
//! no import cycles (docs/architecture.md has the table with what each layer may import):
//!
//! 1. `main.rs` — calls [`commands::main`] and exits with its code.
//! 2. [`commands`] — one file per subcommand; `run.rs` loads and runs playbooks; errors become exit codes here.
//! 3. [`cli`] — clap definitions only; nothing below `commands` imports it.
//! 4. [`executor`] — scheduling, batches, failure isolation, the per-host task loop; applies plans.
//! 5. [`modules`] — one file per module (typed arguments, read-only plans), one registry.
//! 6. [`iotedge`] — the IoT Edge domain: config model and validation, daemon.json, certificates, verify policy.
//!    Beside it (6a), [`bundle`] — offline bundles: signed manifest, .deb control data, image archives, closure.
//! 7. [`facts`] — fact requests, the cache, device scripts with their parsers (tested on recorded output).
//! 8. the language: [`playbook`], [`inventory`], [`template`], [`vars`] — loaded and validated before contact.
//! 9. [`transport`] — commands to devices (SSH through russh, local); quoting by construction.
//! 10. [`report`] — events to progress, recap, JSON/jsonl reports and logs.
//! 11. [`lab`] — the simulated device fleet used by tests, demos and benchmarks.
//!
//! Leaves, importable from anywhere: [`diag`], [`error`], [`yaml`], [`shell`], [`redact`], [`pycompat`].

pub mod bundle;
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
