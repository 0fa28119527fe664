//! The fleet's sums as the reports show them: device and task totals, maintenance findings by severity, and the
//! rows of the verify matrix. Plain data: `fleet::Fleet` computes them, the renderers and `merge` read them.

/// Device and task totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Devices in the run.
    pub devices: usize,
    /// Devices where nothing needed changing.
    pub ok: usize,
    /// Devices where something changed.
    pub changed: usize,
    /// Devices that failed.
    pub failed: usize,
    /// Devices that could not be reached.
    pub unreachable: usize,
    /// Devices where nothing ran.
    pub skipped: usize,
    /// Devices the interruption caught.
    pub interrupted: usize,
    /// Devices a change cut off that restored their previous configuration by themselves.
    pub rolled_back: usize,
    /// Devices still running (only in live views).
    #[serde(skip)]
    pub running: usize,
    /// Tasks that changed something, over all devices.
    pub tasks_changed: usize,
    /// Tasks that failed, over all devices.
    pub tasks_failed: usize,
    /// Configuration applies: changed tasks whose module applies configuration by restarting services
    /// (`iotedge config apply` runs).
    pub applies: usize,
    /// Remote round trips (execs), over all devices.
    pub round_trips: u64,
    /// Devices with verification results.
    pub verified: usize,
    /// Devices that passed verification.
    pub verify_passed: usize,
}

/// Maintenance findings over the fleet, by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FindingTotals {
    /// Devices a maintenance module reported on.
    pub devices: usize,
    /// ... of which with at least one finding.
    pub devices_with_findings: usize,
    /// Critical findings.
    pub critical: usize,
    /// Warnings.
    pub warning: usize,
    /// Informational findings (bytes freed, what check mode would free).
    pub info: usize,
}

/// One row of the verify matrix.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CheckRow {
    /// Check id.
    pub id: String,
    /// Devices where it passed.
    pub ok: Vec<String>,
    /// Devices with a warning.
    pub warning: Vec<String>,
    /// Devices with an error (or fatal).
    pub error: Vec<String>,
    /// Devices where a failing result was waived by policy.
    pub waived: Vec<String>,
    /// Devices where it was skipped or ignored.
    pub skipped: Vec<String>,
    /// The distinct reasons it was waived (for the recap; the JSON report has each device's reason).
    #[serde(skip)]
    pub waivers: Vec<String>,
}
