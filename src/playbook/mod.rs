//! Playbooks: plays, tasks, blocks, roles and handlers, from YAML to a typed model with file:line errors.
//!
//! Owns parsing and validating playbooks and roles before anything is contacted. It must not execute tasks.
