//! The executor: runs plays against hosts, each host independently, at most `--forks` at a time.
//!
//! Owns scheduling (forks, serial batches, failure isolation), the per-host task loop (conditions, loops,
//! register, handlers, blocks), and the plan-then-apply discipline: modules only say what would change; only the
//! executor applies. It must not print (it emits events) and must not know module internals.
