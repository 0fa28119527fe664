//! The documentation works when pasted: every command block of README.md and inventory/example/README.md, run in
//! order in a fresh copy of the repository (against a lab where a command needs devices).
