//! The vocabulary of `iotedge check`: its options, a check's outcome, the context earlier checks leave for later
//! ones, and the signature every check has.
//!
//! A leaf of `check`: it must not run checks or print.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::lab::sim::applied::{CertdSettings, EdgedSettings, IdentitySettings};
use crate::lab::sim::pki::KeyInfo;
use crate::lab::sim::state::{State, StateError};
use crate::lab::sim::users::{Accounts, Cred};

/// Options of `iotedge check`.
#[derive(Debug, Clone, Default)]
pub struct CheckOpts {
    /// `--output json`.
    pub json: bool,
    /// `--verbose`.
    pub verbose: bool,
    /// `--warnings-as-errors`.
    pub warnings_as_errors: bool,
    /// `--dont-run ID...`.
    pub dont_run: Vec<String>,
    /// `--container-engine-config-file`.
    pub container_engine_config: Option<String>,
    /// `--expected-aziot-edged-version`.
    pub expected_aziot_edged_version: Option<String>,
    /// `--expected-aziot-version`.
    pub expected_aziot_version: Option<String>,
    /// `--iothub-hostname`.
    pub iothub_hostname: Option<String>,
    /// `--proxy-uri`.
    pub proxy_uri: Option<String>,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq)]
pub enum Res {
    /// `ok`.
    Ok,
    /// `warning` with its message chain.
    Warning(Vec<String>),
    /// `ignored`.
    Ignored,
    /// `skipped`.
    Skipped,
    /// `fatal` (stops all further checks).
    Fatal(Vec<String>),
    /// `error`.
    Failed(Vec<String>),
}

/// A message chain from string slices.
pub(super) fn chain(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// What earlier checks learned, for the later ones.
#[derive(Default)]
pub(super) struct Ctx {
    pub(super) keyd: Option<toml::Table>,
    pub(super) certd: Option<CertdSettings>,
    pub(super) identityd: Option<IdentitySettings>,
    pub(super) keyd_running: bool,
    pub(super) certd_running: bool,
    pub(super) keys: BTreeMap<String, (String, KeyInfo)>,
    pub(super) settings: Option<EdgedSettings>,
    pub(super) docker_ok: bool,
    pub(super) docker_version: Option<String>,
    pub(super) iothub_hostname: Option<String>,
    pub(super) parent_hostname: Option<String>,
    /// The device has no route out (`lab up --airgapped`): every check that needs the internet fails.
    pub(super) airgapped: bool,
}

/// What a check that needs the internet says on a device with no route out (`host` could not be resolved).
pub(super) fn offline(what: &str, host: &str) -> Res {
    Res::Failed(vec![
        what.to_string(),
        format!("error trying to connect: dns error: failed to lookup address information for {host}: Temporary failure in name resolution"),
    ])
}

/// One check: (device state, options, context, `additional_info` to fill) -> its outcome.
pub(super) type CheckFn =
    fn(&mut State, &CheckOpts, &mut Ctx, &mut Value) -> Result<Res, StateError>;

/// The credentials of the caller (`iotedge check` runs as whoever called it).
pub(super) fn caller_cred(st: &State) -> Cred {
    Accounts::load(&st.env).cred_for_uid(st.env.euid)
}
