//! Modules: what each task means. One file per module behind one trait, and the registry.
//!
//! Every module first answers "what would change" (read-only, from facts gathered on the device), and only the
//! executor applies the steps it returns; check mode is the same path stopped early. Every argument struct is
//! `#[serde(deny_unknown_fields)]`. Modules never write to a device themselves.
