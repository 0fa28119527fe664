//! The catalogue of a lab device's systemd units: docker (+ containerd, docker.socket) and the IoT Edge
//! services aziot-edged, aziot-identityd, aziot-keyd, aziot-certd, aziot-tpmd with their sockets.
//!
//! Owns unit naming (canonical names, full names, unit files) and each unit's `Description=`. Pure data over
//! `state`'s unit lists: it must not read or change device state, nor print anything.

use super::state::{AZIOT_SERVICES, AZIOT_SOCKETS};

/// Normalise a unit argument: `docker.service` -> `docker`, sockets keep `.socket`. `None` if unknown.
pub fn canonical(unit: &str) -> Option<String> {
    let u = unit.strip_suffix(".service").unwrap_or(unit);
    if matches!(u, "docker" | "containerd") || AZIOT_SERVICES.contains(&u) {
        return Some(u.to_string());
    }
    if u == "docker.socket" || AZIOT_SOCKETS.contains(&u) {
        return Some(u.to_string());
    }
    None
}

/// The unit's full name as systemd prints it.
pub fn full_name(unit: &str) -> String {
    if unit.ends_with(".socket") {
        unit.to_string()
    } else {
        format!("{unit}.service")
    }
}

/// The unit's `Description=`.
pub fn description(unit: &str) -> &'static str {
    match unit {
        "docker" => "Docker Application Container Engine",
        "containerd" => "containerd container runtime",
        "docker.socket" => "Docker Socket for the API",
        "aziot-edged" => "Azure IoT Edge daemon",
        "aziot-identityd" => "Azure IoT Identity Service",
        "aziot-keyd" => "Azure IoT Keys Service",
        "aziot-certd" => "Azure IoT Certificates Service",
        "aziot-tpmd" => "Azure IoT TPM Service",
        "aziot-edged.mgmt.socket" => "Azure IoT Edge daemon management socket",
        "aziot-edged.workload.socket" => "Azure IoT Edge daemon workload socket",
        "aziot-identityd.socket" => "Azure IoT Identity Service API socket",
        "aziot-keyd.socket" => "Azure IoT Keys Service API socket",
        "aziot-certd.socket" => "Azure IoT Certificates Service API socket",
        "aziot-tpmd.socket" => "Azure IoT TPM Service API socket",
        _ => "",
    }
}

/// The unit's file under `/lib/systemd/system`.
pub fn unit_file(unit: &str) -> String {
    format!("/lib/systemd/system/{}", full_name(unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names() {
        assert_eq!(canonical("docker.service").as_deref(), Some("docker"));
        assert_eq!(
            canonical("aziot-keyd.socket").as_deref(),
            Some("aziot-keyd.socket")
        );
        assert_eq!(canonical("nginx"), None);
        assert_eq!(full_name("aziot-edged"), "aziot-edged.service");
    }
}
