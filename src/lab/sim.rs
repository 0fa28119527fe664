//! Simulated device programs (`iotedge`, `docker`, `systemctl`, `journalctl`), run on lab devices through
//! tiny wrappers that call `edgefleet __sim NAME ...`.

use std::ffi::OsString;

/// Entry point of the multi-call simulator; returns the exit code.
pub fn main(args: &[OsString]) -> i32 {
    let name = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    eprintln!("{name}: simulator not available");
    127
}
