//! The device's package database as `dpkg` keeps it: configured packages and versions (`packages.json`, read
//! by [`State::packages`]), and beside it `dpkg.json`: each package's architecture and `Provides`, packages
//! unpacked but left unconfigured by a dependency problem (dpkg's `iU` state), and the `apt-mark` holds.
//!
//! Also owns what installing a package brings: which package provides which systemd unit and which command
//! (`moby-engine`: docker, containerd, docker.socket; `moby-cli`: `docker`; `aziot-identity-service`: the aziot
//! services and sockets; `aziot-edge`: aziot-edged and `iotedge`). A device made by `lab up` without `--bare`
//! has no `packages.json` and so every package ([`super::state::default_packages`]); a bare one starts with
//! an empty database. The device's architecture is `architecture` in the state directory (default `amd64`, a
//! knob for tests), and `airgapped` marks a device with no route out.
//! A device-model leaf under the programs: it never prints.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::state::{read_json, write_json, State, StateError};

/// The architecture of a lab device unless its `architecture` knob says otherwise.
pub const DEFAULT_ARCH: &str = "amd64";

/// `dpkg.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DpkgExtra {
    /// Package -> architecture.
    #[serde(default)]
    pub architecture: BTreeMap<String, String>,
    /// Package -> raw `Provides`.
    #[serde(default)]
    pub provides: BTreeMap<String, String>,
    /// Unpacked but not configured: package -> version.
    #[serde(default)]
    pub unpacked: BTreeMap<String, String>,
    /// Packages on hold.
    #[serde(default)]
    pub holds: BTreeSet<String>,
}

/// Load `dpkg.json` (missing = empty).
pub fn extra(st: &State) -> Result<DpkgExtra, StateError> {
    read_json(&st.env.state_file("dpkg.json"))
}

/// Store `dpkg.json`.
pub fn store_extra(st: &State, x: &DpkgExtra) -> Result<(), StateError> {
    if !st.writable() {
        return Ok(());
    }
    write_json(&st.env.state_file("dpkg.json"), x)
}

/// Store `packages.json` (the configured packages).
pub fn store_packages(st: &State, p: &BTreeMap<String, String>) -> Result<(), StateError> {
    if !st.writable() {
        return Ok(());
    }
    write_json(&st.env.state_file("packages.json"), p)
}

/// The device's dpkg architecture.
pub fn device_arch(st: &State) -> String {
    std::fs::read_to_string(st.env.state_file("architecture"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_ARCH.to_string())
}

/// Whether the device has no route out (`lab up --airgapped`).
pub fn airgapped(st: &State) -> bool {
    st.env.state_file("airgapped").exists()
}

/// The package whose installation brings a (canonical) systemd unit.
pub fn unit_package(unit: &str) -> &'static str {
    match unit {
        "docker" | "containerd" | "docker.socket" => "moby-engine",
        "aziot-edged" | "aziot-edged.mgmt.socket" | "aziot-edged.workload.socket" => "aziot-edge",
        _ => "aziot-identity-service",
    }
}

/// The package that installs a simulated command, if it is not part of the base system.
pub fn command_package(program: &str) -> Option<&'static str> {
    match program {
        "docker" => Some("moby-cli"),
        "iotedge" => Some("aziot-edge"),
        _ => None,
    }
}

/// Whether a package is installed and configured.
pub fn installed(st: &State, package: &str) -> Result<bool, StateError> {
    Ok(st.packages()?.contains_key(package))
}

/// Whether a (canonical) unit exists on the device: its package is installed.
pub fn unit_exists(st: &State, unit: &str) -> Result<bool, StateError> {
    installed(st, unit_package(unit))
}
