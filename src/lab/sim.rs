//! Simulated device programs (`iotedge`, `docker`, `systemctl`, `journalctl`), run on lab devices through
//! tiny wrappers that call `edgefleet __sim NAME ...`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::Path;

/// Entry point of the multi-call simulator; returns the exit code.
pub fn main(args: &[OsString]) -> i32 {
    let name = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    eprintln!("{name}: simulator not available");
    127
}

/// Create a fresh device's simulator state under the device root (`<root>/var/lib/edgefleet-lab/...`).
pub fn init_device_state(root: &Path) -> io::Result<()> {
    std::fs::create_dir_all(root.join("var/lib/edgefleet-lab"))
}

/// Read a device's counters (`<root>/var/lib/edgefleet-lab/counters.json`); missing file = all zero.
pub fn read_counters(root: &Path) -> io::Result<BTreeMap<String, u64>> {
    let p = root.join("var/lib/edgefleet-lab/counters.json");
    match std::fs::read(&p) {
        Ok(b) => {
            serde_json::from_slice(&b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e),
    }
}
