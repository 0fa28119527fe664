//! Exit codes, mapped in one place (Ansible's numbering, plus 10/11 for `certs report`'s monitoring verdict and
//! 12 for `play --detailed-exitcode`'s drift verdict, 20-23 for `bundle`'s verdicts).
//!
//! Owns the translation from "how the run ended" to the process exit code. Every command returns a
//! `Result<ExitCode, AppError>` to `commands::main`, and `main` calls [`ExitCode::code`]; nothing else calls `std::process::exit`.

use crate::diag::Diagnostics;

/// The process exit codes edgefleet uses (Ansible's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitCode {
    /// 0: everything ok.
    Ok,
    /// 1: an error that is not about hosts (I/O, internal state, a lab that cannot start).
    Error,
    /// 2: one or more hosts failed.
    HostFailed,
    /// 3: one or more hosts were unreachable.
    Unreachable,
    /// 4: a parse or validation error in the user's files (nothing was contacted).
    Parse,
    /// 5: bad command-line options.
    BadOptions,
    /// 10: `certs report`: a certificate is within `--warn-days` of expiry (or a device clock is off).
    CertWarning,
    /// 11: `certs report`: a certificate is within `--critical-days` of expiry, or expired.
    CertCritical,
    /// 12: `play --detailed-exitcode`: every device finished ok, and at least one task changed something (in check
    /// mode: would change something, i.e. the devices drifted from the playbooks). Any failure code wins over it.
    Changed,
    /// 20: `bundle verify`: unsigned, or not signed by an allowed signer, or changed after signing.
    BundleSignature,
    /// 21: `bundle verify`: an entry's size or hash differs, an entry is missing or extra, or it is truncated.
    BundleIntegrity,
    /// 22: `bundle create|verify`: a dependency is satisfied neither by the bundle nor by the base system.
    BundleDependencies,
    /// 23: `bundle verify|inspect`: not a bundle, a bad manifest, or a newer format version.
    BundleFormat,
    /// 99: interrupted by the user (Ctrl-C).
    Interrupted,
    /// 250: an unexpected error (a bug).
    Unexpected,
}

impl ExitCode {
    /// The numeric code.
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Error => 1,
            ExitCode::HostFailed => 2,
            ExitCode::Unreachable => 3,
            ExitCode::Parse => 4,
            ExitCode::BadOptions => 5,
            ExitCode::CertWarning => 10,
            ExitCode::CertCritical => 11,
            ExitCode::Changed => 12,
            ExitCode::BundleSignature => 20,
            ExitCode::BundleIntegrity => 21,
            ExitCode::BundleDependencies => 22,
            ExitCode::BundleFormat => 23,
            ExitCode::Interrupted => 99,
            ExitCode::Unexpected => 250,
        }
    }

    /// The exit code for a run's host counts: unreachable beats failed (as in Ansible), both beat ok.
    pub fn from_counts(failed: usize, unreachable: usize) -> Self {
        if unreachable > 0 {
            ExitCode::Unreachable
        } else if failed > 0 {
            ExitCode::HostFailed
        } else {
            ExitCode::Ok
        }
    }
}

/// The top-level error of a command: each variant carries its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Problems in the user's files: reported all at once, exit 4.
    #[error("{0}")]
    Load(#[from] Diagnostics),
    /// Bad options: exit 5.
    #[error("{0}")]
    Usage(String),
    /// Anything else that stops the command: exit 1.
    #[error("{0}")]
    Other(String),
    /// Interrupted: exit 99.
    #[error("interrupted")]
    Interrupted,
    /// A failure with its own exit code (the `bundle` verdicts, 20-23).
    #[error("{1}")]
    Coded(ExitCode, String),
}

impl AppError {
    /// The exit code this error maps to.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            AppError::Load(_) => ExitCode::Parse,
            AppError::Usage(_) => ExitCode::BadOptions,
            AppError::Other(_) => ExitCode::Error,
            AppError::Interrupted => ExitCode::Interrupted,
            AppError::Coded(code, _) => *code,
        }
    }
}

impl From<crate::diag::Diagnostic> for AppError {
    fn from(d: crate::diag::Diagnostic) -> Self {
        AppError::Load(d.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_ansible() {
        let all = [
            (ExitCode::Ok, 0),
            (ExitCode::Error, 1),
            (ExitCode::HostFailed, 2),
            (ExitCode::Unreachable, 3),
            (ExitCode::Parse, 4),
            (ExitCode::BadOptions, 5),
            (ExitCode::CertWarning, 10),
            (ExitCode::CertCritical, 11),
            (ExitCode::Changed, 12),
            (ExitCode::BundleSignature, 20),
            (ExitCode::BundleIntegrity, 21),
            (ExitCode::BundleDependencies, 22),
            (ExitCode::BundleFormat, 23),
            (ExitCode::Interrupted, 99),
            (ExitCode::Unexpected, 250),
        ];
        for (c, n) in all {
            assert_eq!(c.code(), n);
        }
        assert_eq!(ExitCode::from_counts(1, 1), ExitCode::Unreachable);
        assert_eq!(ExitCode::from_counts(1, 0), ExitCode::HostFailed);
        assert_eq!(ExitCode::from_counts(0, 0), ExitCode::Ok);
    }
}
