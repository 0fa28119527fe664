//! Shared helpers for integration tests.

#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture path under tests/fixtures.
pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures").join(rel)
}

/// The edgefleet binary built for this test run.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_edgefleet"))
}

/// A `Command` for the edgefleet binary, with a clean, deterministic environment.
pub fn edgefleet() -> std::process::Command {
    let mut c = std::process::Command::new(bin());
    c.env_remove("EDGEFLEET_INVENTORY")
        .env_remove("EDGEFLEET_AGE_IDENTITY")
        .env("NO_COLOR", "1")
        .env("COLUMNS", "120")
        // Run journals go to a scratch state dir, not the user's; tests that read them set their own.
        .env(
            "XDG_STATE_HOME",
            std::env::temp_dir().join("edgefleet-test-state"),
        );
    c
}

/// The device `name` in a JSON report (`devices[]`); panics naming it when it is missing.
pub fn report_device<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["devices"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == name))
        .unwrap_or_else(|| panic!("no device {name} in the report: {doc:#}"))
}
