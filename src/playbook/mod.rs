//! Playbooks: plays, tasks, blocks, roles and handlers, from YAML to a typed model with file:line errors.
//!
//! Owns parsing and validating playbooks, task files and roles before anything is contacted: unknown keywords and
//! modules (with "did you mean"), module argument names (each module's typed arguments), template and condition
//! syntax, `serial`, role lookup. Every problem is reported at once as `file:line:col: message`. It must not
//! execute tasks or contact hosts.

pub mod load;
pub mod model;
pub mod role;

pub use load::{load_playbook, load_playbook_text, load_task_file, LoadCtx};
pub use model::*;
