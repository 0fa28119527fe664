//! The lab layer's error type.
//!
//! A leaf of `lab`: every lab file reports through [`LabError`]; it must not import another lab file.

use std::io;
use std::path::Path;

/// Errors of the lab layer.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A file or system call failed.
    #[error("{path}: {source}")]
    Io {
        /// What was being accessed.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// Not enough privileges; the message says exactly what is missing.
    #[error("{0}")]
    Privileges(String),
    /// A program the lab needs is not installed.
    #[error("{0}")]
    Missing(String),
    /// `lab up` on a directory whose lab is running.
    #[error("a lab is already running in {0} (supervisor pid {1}); run `edgefleet lab down --dir {0}` first")]
    AlreadyRunning(String, i32),
    /// No running lab where one was expected.
    #[error("{0}")]
    NotRunning(String),
    /// A device name that is not in the lab.
    #[error("no device named {0:?} in this lab (devices are edge-001, edge-002, ...; see `edgefleet lab status`)")]
    UnknownDevice(String),
    /// The supervisor failed or refused.
    #[error("lab supervisor: {0}")]
    Supervisor(String),
    /// Certificate, key or encryption failure.
    #[error("lab PKI: {0}")]
    Pki(String),
    /// Bad input or lab files.
    #[error("{0}")]
    Invalid(String),
}

impl LabError {
    /// An I/O error about `path`.
    pub fn io(path: impl AsRef<Path>, source: io::Error) -> LabError {
        LabError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}
