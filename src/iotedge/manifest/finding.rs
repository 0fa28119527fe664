//! The vocabulary of a lint run: its inputs, findings, file kinds and outcome, and the context the rule groups
//! get. Every rule group and the run itself (`lint`) import it from here, so no rule file imports the run.
//! Pure: no I/O.

use std::path::{Path, PathBuf};

use super::deployment::Deployment;
use super::rules::{rule, Severity};
use super::source::Pos;

/// One input file.
#[derive(Debug, Clone)]
pub struct Input {
    /// Its path, as given (shown in findings).
    pub path: PathBuf,
    /// Its content.
    pub text: String,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Rule id (`EF101`).
    pub rule: &'static str,
    /// Severity (the rule's, or lower for near-misses).
    pub severity: Severity,
    /// The file.
    pub file: PathBuf,
    /// Where in it (line 0: the whole file).
    pub pos: Pos,
    /// What is wrong and what to do.
    pub message: String,
    /// The module it concerns, if any (for waivers).
    pub module: Option<String>,
    /// The waiver's reason, when waived (waived findings are still reported).
    pub waived: Option<String>,
}

impl Finding {
    /// A finding of rule `id` with the rule's severity.
    pub fn new(id: &'static str, file: &Path, pos: Pos, message: impl Into<String>) -> Self {
        Finding {
            rule: id,
            severity: rule(id).map(|r| r.severity).unwrap_or(Severity::Error),
            file: file.to_path_buf(),
            pos,
            message: message.into(),
            module: None,
            waived: None,
        }
    }

    /// The module it concerns.
    pub fn module(mut self, name: &str) -> Self {
        self.module = Some(name.to_string());
        self
    }

    /// With another severity.
    pub fn severity(mut self, s: Severity) -> Self {
        self.severity = s;
        self
    }
}

/// What a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A deployment manifest (`template`: a `*.template.json` that may hold comments and placeholders).
    Manifest {
        /// A template file.
        template: bool,
    },
    /// /etc/docker/daemon.json.
    Daemon,
    /// /etc/aziot/config.toml.
    Config,
    /// Not parseable or not recognised.
    Unknown,
}

/// The context of the rule groups for one manifest.
pub(super) struct Ctx<'a> {
    pub file: &'a Path,
    pub template: bool,
    pub dep: &'a Deployment<'a>,
    /// A daemon.json in this run sets log limits for every container.
    pub daemon_log_limits: bool,
}

/// The result of a run: findings (waived ones included, marked) and each file's kind.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Every finding, sorted by file and position.
    pub findings: Vec<Finding>,
    /// The kind of each input, in input order.
    pub kinds: Vec<(PathBuf, Kind)>,
}
