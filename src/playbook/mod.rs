//! Playbooks: plays, tasks, blocks, roles and handlers, from YAML to a typed model with file:line errors.
//!
//! Owns parsing and validating playbooks, task files and roles before anything is contacted: unknown keywords and
//! modules (with "did you mean"), module argument names (each module's typed arguments), template and condition
//! syntax, `serial`, role lookup. Every problem is reported at once as `file:line:col: message`. It must not
//! execute tasks or contact hosts.
//!
//! The files, and what each may import (arrows point down; no file imports one above it, so no cycles):
//! - `plays`    (playbooks, plays)                  -> tasks, keywords, ctx, model
//! - `tasks`    (task lists, blocks, includes, assembling a `Role`) -> action, keywords, role, values, ctx, model
//! - `action`   (a task's module and arguments, `meta`, role-include options) -> kv, keywords, values, ctx, model
//! - `kv`       (Ansible's free-form `key=value` arguments) -> values
//! - `keywords` (the play and task keyword tables)  -> values, ctx, model
//! - `role`     (roles on disk: lookup, vars, meta, entries) -> values, ctx, model
//! - `values`   (reading one value)                 -> model
//! - `ctx`      (`LoadCtx`, diagnostics)            -> model
//! - `model`    (the typed model)
//!
//! This file only declares them and re-exports the API the rest of the crate uses.

mod action;
mod ctx;
mod keywords;
mod kv;
mod loops;
pub mod model;
mod plays;
pub mod role;
mod tasks;
mod values;

pub use ctx::LoadCtx;
pub use kv::parse_kv;
pub use model::*;
pub use plays::{handler_names, load_playbook, load_playbook_text};
pub use tasks::{
    apply_to, load_handler_file, load_role, load_task_file, parse_role_use, parse_task_list,
};
pub use values::parse_duration;
