//! The programs the tests need from the machine: a test that needs one calls [`require`] first, so that on a
//! machine without it the test fails with the command that installs it (`tests/run`), never passes silently.
//! Owns only that check; what to install, and how, is `tests/run`'s job.

#![allow(dead_code)]

use std::path::Path;

/// Panic unless `tool` can be run: an absolute path must be an executable file, a bare name must be an
/// executable file in a directory on PATH.
pub fn require(tool: &str) {
    assert!(
        found(tool),
        "`{tool}` is not installed: run `tests/run` (it installs what the tests need)"
    );
}

/// Is `tool` (an absolute path, or a name looked up on PATH) an executable file?
pub fn found(tool: &str) -> bool {
    if tool.contains('/') {
        return executable(Path::new(tool));
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| executable(&d.join(tool))))
        .unwrap_or(false)
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[test]
fn require_names_the_setup_command() {
    require("sh");
    require("/bin/sh");
    assert!(!found("edgefleet-no-such-tool"));
    assert!(!found("/nonexistent/edgefleet-no-such-tool"));
    let err = std::panic::catch_unwind(|| require("edgefleet-no-such-tool")).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert_eq!(
        msg,
        "`edgefleet-no-such-tool` is not installed: run `tests/run` (it installs what the tests need)"
    );
}
