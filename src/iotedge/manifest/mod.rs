//! Linting deployment manifests, config.toml and daemon.json against the IoT Edge production checklist
//! (`edgefleet lint`): findings with a stable rule id, a severity, the checklist item, a message saying what to
//! do, and `file:line:col` in the source.
//!
//! By concern: `source` (JSON with positions, duplicate keys, BOM, template comments), `deployment` (what a
//! manifest says, complete or layered), `rules` (the rule table: ids, severities, explanations), `lint` (one run
//! over several files, cross-file rules), one file per rule group (`runtime` images and upstream protocol,
//! `edgehub` settings, `storage` host storage, `modules` limits/logs/privileges, `size` createOptions and twin size,
//! `update` ModuleUpdateMode, `secrets` registry credentials and secrets in clear, `config` config.toml through
//! `iotedge::config`'s validator and daemon.json), `hostconfig` (the per-module predicates over a Docker
//! `HostConfig`, shared with the verify rules on running containers, `iotedge::running`), and `waivers`. Everything callers use is re-exported here.
//! Pure: no I/O (the command reads the files and renders the findings).

mod config;
mod deployment;
mod edgehub;
mod finding;
mod hostconfig;
mod lint;
mod modules;
mod rules;
mod runtime;
mod secrets;
mod size;
mod source;
mod storage;
mod update;
mod waivers;

pub use finding::{Finding, Input, Kind, Outcome};
pub use hostconfig::{host_issues, is_debug_tag, log_config_limits, storage_bound, HostIssue};
pub use lint::lint;
pub use rules::{rule, Rule, Severity, RULES};
pub use source::Pos;
pub use waivers::{WaiverFile, WAIVER_FILE};
