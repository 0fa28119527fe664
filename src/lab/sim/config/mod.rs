//! The simulated device's reading of `/etc/aziot/config.toml`: IoT Edge 1.5's "super config", parsed by the
//! same rules and with the same crates the real `iotedge config apply` uses (`toml` 0.7.6 for TOML 1.0, `url`
//! 2.4.0), so that a device's verdict and error text come out for any file.
//!
//! The serde types mirror the 1.5 sources (iotedge's `super_config.rs` with aziotctl-common's config flattened
//! into it: `#[serde(tag = "source")]` provisioning, untagged `ManualProvisioning`/`SymmetricKey`/
//! `X509Identity`/`LocalCa`/`EdgeCa`/`MobyNetwork`/`PreloadedCert`, flattened `Option`s that swallow errors,
//! custom deserializers for key locations, URLs, `cloud_timeout_sec`, `expiry_days`, renewal policies, GC
//! durations and `HH:MM`), so that `serde` + `toml` produce the real texts (``missing field `name` ``, `data did
//! not match any variant of untagged enum EdgeCa`, the TOML excerpt with its caret line). Unknown keys are
//! silently ignored at every level: there is deliberately no `deny_unknown_fields` anywhere, exactly like the
//! device. The one difference of the serde in this tree (1.0.229) from the device's (1.0.183), the spelling of
//! whole floats in "invalid type: floating point", is undone in [`parse`].
//!
//! Layout: this file holds the whole config (`SuperConfig`) and `parse`; `identity` the identity-service
//! tables, `edge` the IoT Edge tables, `docker` the agent's `createOptions`, `values` the scalar rules and
//! their messages. Every type is re-exported here, so callers say `config::X`.
//!
//! This module is an independent oracle: it must NOT import anything from `crate::iotedge` (edgefleet's own,
//! stricter validator) so that a bug in one cannot hide the same bug in the other.

mod docker;
mod edge;
mod identity;
mod values;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

pub use docker::*;
pub use edge::*;
pub use identity::*;
pub use values::{
    parse_connection_string, parse_duration, parse_hhmm, ConnectionString, KeyLocation, MaxRetries,
    MinTlsVersion, Pkcs11Uri, Policy, Url,
};

/// The whole `/etc/aziot/config.toml` as IoT Edge 1.5 reads it.
#[derive(Debug, Deserialize)]
pub struct SuperConfig {
    /// `trust_bundle_cert`.
    pub trust_bundle_cert: Option<Url>,
    /// `allow_elevated_docker_permissions`.
    pub allow_elevated_docker_permissions: Option<bool>,
    /// `auto_reprovisioning_mode`.
    #[serde(default)]
    pub auto_reprovisioning_mode: AutoReprovisioningMode,
    /// `imported_master_encryption_key` (a path; apply reads the file).
    pub imported_master_encryption_key: Option<PathBuf>,
    /// `additional_info` (a `file://` URL of a TOML file; apply reads it).
    pub additional_info: Option<Url>,
    /// `[iotedge_max_requests]`.
    pub iotedge_max_requests: Option<IotedgeMaxRequests>,
    /// The identity-service part (flattened, as in the real type).
    #[serde(flatten)]
    pub aziot: AziotConfig,
    /// `[agent]`: absent means the default edgeAgent spec.
    pub agent: Option<ModuleSpec>,
    /// `[connect]`.
    pub connect: Option<Connect>,
    /// `[listen]`.
    pub listen: Option<Listen>,
    /// `[watchdog]`.
    #[serde(default)]
    pub watchdog: Watchdog,
    /// `[edge_ca]`: absent means quickstart (90 days).
    pub edge_ca: Option<EdgeCa>,
    /// `[moby_runtime]`.
    #[serde(default)]
    pub moby_runtime: MobyRuntime,
    /// `[image_garbage_collection]`.
    #[serde(default)]
    pub image_garbage_collection: ImagePruneSettings,
}

/// `auto_reprovisioning_mode` (case-sensitive variants).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum AutoReprovisioningMode {
    /// Default.
    #[default]
    Dynamic,
    /// Reprovision on every start.
    AlwaysOnStartup,
    /// Reprovision only on errors.
    OnErrorOnly,
}

/// A parsed config with the warnings the device prints on stderr while parsing it.
#[derive(Debug)]
pub struct Parsed {
    /// The config.
    pub config: SuperConfig,
    /// `Warning: ...` lines (plain-HTTP EST URLs), in order.
    pub warnings: Vec<String>,
}

/// Parse the super config from text: `Err` carries the exact text the device prints after
/// `could not parse config file: ` (the TOML excerpt, its caret line and the serde message).
pub fn parse(text: &str) -> Result<Parsed, String> {
    let _ = values::take_warnings();
    let res = toml_07::from_str::<SuperConfig>(text);
    let warnings = values::take_warnings();
    match res {
        Ok(config) => Ok(Parsed { config, warnings }),
        Err(e) => Err(whole_floats_as_serde_1_0_183(&e.to_string())),
    }
}

/// serde 1.0.183 printed a whole float as `120` in "invalid type: floating point `120`"; later serde prints
/// `120.0`. Undo that one difference.
fn whole_floats_as_serde_1_0_183(msg: &str) -> String {
    const MARK: &str = "floating point `";
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(MARK) {
        let (head, tail) = rest.split_at(i + MARK.len());
        out.push_str(head);
        let end = tail.find('`').unwrap_or(tail.len());
        let num = &tail[..end];
        let trimmed = match num.strip_suffix(".0") {
            Some(n)
                if !n.is_empty()
                    && n.trim_start_matches('-')
                        .bytes()
                        .all(|b| b.is_ascii_digit()) =>
            {
                n
            }
            _ => num,
        };
        out.push_str(trimmed);
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The agent image `iotedge config apply` uses when `[agent]` is absent.
pub const DEFAULT_AGENT_IMAGE: &str = "mcr.microsoft.com/azureiotedge-agent:1.5";

impl SuperConfig {
    /// The effective agent spec (`[agent]` or the default one).
    pub fn agent_spec(&self) -> ModuleSpec {
        self.agent.clone().unwrap_or_else(|| ModuleSpec {
            name: "edgeAgent".into(),
            kind: "docker".into(),
            image_pull_policy: ImagePullPolicy::OnCreate,
            config: DockerConfig {
                image: DEFAULT_AGENT_IMAGE.into(),
                image_hash: None,
                create_options: ContainerCreateBody::default(),
                digest: None,
                auth: None,
                allow_elevated_docker_permissions: true,
            },
            env: BTreeMap::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANUAL: &str = "[provisioning]\nsource = \"manual\"\nconnection_string = \"HostName=h.azure-devices.net;DeviceId=d1;SharedAccessKey=AAAA\"\n";

    #[test]
    fn minimal_manual_config_parses_with_defaults() {
        let c = parse(MANUAL).unwrap().config;
        assert_eq!(c.aziot.cloud_timeout_sec, 70);
        assert!(c.edge_ca.is_none());
        assert_eq!(c.moby_runtime.uri.as_str(), "unix:///var/run/docker.sock");
        assert_eq!(c.agent_spec().config.image, DEFAULT_AGENT_IMAGE);
        match c.aziot.provisioning.provisioning {
            ProvisioningType::Manual {
                inner: ManualProvisioning::ConnectionString { connection_string },
            } => {
                assert_eq!(connection_string.device_id, "d1");
                assert_eq!(connection_string.key, vec![0, 0, 0]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_keys_are_ignored_everywhere() {
        let text = format!("hostnme = \"typo\"\n{MANUAL}bogus = 1\n[edge_ca]\ncert = \"file:///c.pem\"\npk = \"file:///k.pem\"\ncrt = \"x\"\n");
        let c = parse(&text).unwrap().config;
        assert!(matches!(c.edge_ca, Some(EdgeCa::Preloaded { .. })));
        assert!(c.aziot.hostname.is_none());
    }

    #[test]
    fn real_error_texts() {
        let e = parse("[provisioning]\nsource = \"manual\"\nconnection_string = \"a\"\n[agent.config]\nimage = \"x\"\n").unwrap_err();
        assert!(e.contains("missing field `name`"), "{e}");
        // `[agent]` exists only implicitly (through `[agent.config]`): toml 0.7 points at the document start.
        assert!(e.starts_with("TOML parse error at line 1, column 1"), "{e}");
        let e = parse(&format!("{MANUAL}[edge_ca]\ncert = \"file:///c.pem\"\n")).unwrap_err();
        assert!(
            e.contains("data did not match any variant of untagged enum EdgeCa"),
            "{e}"
        );
        let e = parse("[provisioning]\nsource = \"manul\"\n").unwrap_err();
        assert!(
            e.contains("unknown variant `manul`, expected one of `manual`, `dps`, `none`"),
            "{e}"
        );
        let e = parse(&format!("auto_reprovisioning_mode = \"dynamic\"\n{MANUAL}")).unwrap_err();
        assert!(e.contains("unknown variant `dynamic`"), "{e}");
        let e = parse(&format!("cloud_timeout_sec = 120.0\n{MANUAL}")).unwrap_err();
        assert!(
            e.ends_with("invalid type: floating point `120`, expected u64\n"),
            "{e}"
        );
        let e = parse(&format!("[watchdog]\nmax_retries = 1.5\n{MANUAL}")).unwrap_err();
        assert!(e.contains("floating point `1.5`"), "{e}");
    }
}
