//! Run summaries: what happened to each host over a whole run, and the run's exit code. The executor fills
//! them in; the reporters and the commands read them.

use std::time::Duration;

use super::{HostStatus, StatsSnapshot};

/// What happened to one host over the whole run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HostSummary {
    /// Host name.
    pub name: String,
    /// ok | failed | unreachable | interrupted.
    pub status: Option<HostStatus>,
    /// Tasks ok (unchanged).
    pub ok: usize,
    /// Tasks changed.
    pub changed: usize,
    /// Tasks failed.
    pub failed: usize,
    /// Tasks skipped.
    pub skipped: usize,
    /// Failures ignored.
    pub ignored: usize,
    /// Blocks rescued.
    pub rescued: usize,
    /// Handlers run.
    pub handlers: usize,
    /// The first error (task and message).
    pub first_error: Option<String>,
    /// Transport counters.
    pub stats: StatsSnapshot,
    /// Wall time.
    #[serde(with = "super::duration_ms")]
    pub duration: Duration,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Per host, in first-seen order.
    pub hosts: Vec<HostSummary>,
    /// Ctrl-C?
    pub interrupted: bool,
    /// Stopped early (max_fail_percentage / any_errors_fatal)?
    pub aborted: Option<String>,
    /// Wall time.
    pub duration: Duration,
}

impl RunSummary {
    /// Hosts that failed.
    pub fn failed(&self) -> usize {
        self.hosts
            .iter()
            .filter(|h| h.status == Some(HostStatus::Failed))
            .count()
    }
    /// Hosts that were unreachable.
    pub fn unreachable(&self) -> usize {
        self.hosts
            .iter()
            .filter(|h| h.status == Some(HostStatus::Unreachable))
            .count()
    }
    /// The exit code for this run.
    pub fn exit_code(&self) -> crate::error::ExitCode {
        if self.interrupted {
            return crate::error::ExitCode::Interrupted;
        }
        let c = crate::error::ExitCode::from_counts(self.failed(), self.unreachable());
        if c == crate::error::ExitCode::Ok && self.aborted.is_some() {
            return crate::error::ExitCode::HostFailed;
        }
        c
    }
}
