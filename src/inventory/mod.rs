//! Inventories: hosts, groups, their variables, and host patterns (Ansible-compatible formats).
//!
//! Owns loading YAML and INI inventories, inventory directories, `group_vars/` and `host_vars/` (next to the
//! inventory and next to the playbook), Ansible's variable precedence between groups and hosts, the output of
//! `edgefleet inventory --list/--host/--graph`, and `--limit` / `hosts:` patterns. It must not connect to hosts
//! or render templates.

pub mod cli;
pub mod py;
pub mod ranges;
