//! The Ansible filters and tests minijinja lacks (`default`/`d` aside, which minijinja has).
//!
//! Owns every filter, test and global function added to the environment. It must not read variables or
//! inventories; `lookup('file', ...)` reads files relative to the current directory or absolute paths.

use minijinja::Environment;

/// Add our filters, tests and functions to `env`.
pub fn register(_env: &mut Environment<'static>) {}
