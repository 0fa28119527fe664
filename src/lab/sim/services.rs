//! What starting, stopping and restarting a lab device's units does: the `docker` unit is the simulated
//! dockerd (`engine`), `aziot-edged` and the identity services are the IoT Edge daemons (`edged`), sockets
//! and containerd just become active.
//!
//! Owns the unit transitions, their journal lines and the counters `docker_restart` / `service_restart`. It is
//! the services model below the programs (`systemctl` presents it): it must not parse arguments or print
//! program output; a failed job is returned as systemctl's stderr text.

use super::edged;
use super::engine;
use super::state::{State, StateError};
use super::units::{description, full_name};

/// Start a unit. `Ok(Err(stderr))` when the job fails.
pub fn start_unit(st: &mut State, unit: &str) -> Result<Result<(), String>, StateError> {
    let job_failed = |unit: &str| {
        format!(
            "Job for {u} failed because the control process exited with error code.\nSee \"systemctl status {u}\" and \"journalctl -xeu {u}\" for details.",
            u = full_name(unit)
        )
    };
    if st.services()?.is_active(unit) {
        return Ok(Ok(()));
    }
    let now = st.env.now_ms;
    match unit {
        "docker" => Ok(engine::start_engine(st)?.map_err(|_| job_failed(unit))),
        "aziot-edged" => Ok(edged::start(st)?.map_err(|_| job_failed(unit))),
        s if s.ends_with(".socket") || s == "containerd" => {
            st.journal(
                s,
                "systemd[1]",
                &format!(
                    "{} {}.",
                    if s.ends_with(".socket") {
                        "Listening on"
                    } else {
                        "Started"
                    },
                    description(s)
                ),
            )?;
            st.services_mut()?.set(s, "active", now);
            Ok(Ok(()))
        }
        s => {
            if edged::activate_identity_service(st, s)? {
                Ok(Ok(()))
            } else {
                Ok(Err(job_failed(s)))
            }
        }
    }
}

/// Stop a unit.
pub fn stop_unit(st: &mut State, unit: &str) -> Result<(), StateError> {
    let now = st.env.now_ms;
    match unit {
        "docker" => engine::stop_engine(st),
        u => {
            if st.services()?.is_active(u) {
                let desc = description(u);
                st.journal(
                    u,
                    "systemd[1]",
                    &format!(
                        "Stopping {desc}...\n{}: Deactivated successfully.\nStopped {desc}.",
                        full_name(u)
                    ),
                )?;
            }
            st.services_mut()?.set(u, "inactive", now);
            Ok(())
        }
    }
}

/// Restart a unit, counting docker and aziot restarts.
pub fn restart_unit(st: &mut State, unit: &str) -> Result<Result<(), String>, StateError> {
    stop_unit(st, unit)?;
    if unit == "docker" {
        st.bump("docker_restart")?;
    } else if unit.starts_with("aziot-") && !unit.ends_with(".socket") {
        st.bump("service_restart")?;
    }
    start_unit(st, unit)
}
