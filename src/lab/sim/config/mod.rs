//! The simulated device's reading of `/etc/aziot/config.toml`: IoT Edge 1.5's "super config", parsed by the
//! same rules the real `iotedge config apply` uses.
//!
//! The serde types mirror aziotctl's super-config (`#[serde(tag = "source")]` provisioning, untagged
//! `ManualProvisioning`/`SymmetricKey`/`X509Identity`/`EdgeCa`/`MobyNetwork`, custom deserializers for key
//! locations, URLs, `cloud_timeout_sec`, `expiry_days`, GC durations and `HH:MM`), so that `serde` + `toml`
//! produce the real error texts (``missing field `name` ``, `data did not match any variant of untagged enum
//! EdgeCa`, ``unknown variant `manul` ``...). Unknown keys are silently ignored at every level: there is
//! deliberately no `deny_unknown_fields` anywhere, exactly like the device.
//!
//! Layout: this file holds the whole config (`SuperConfig`) and `parse`; `identity` the identity-service
//! tables, `edge` the IoT Edge tables, `values` the scalar rules and their messages. Every type is re-exported
//! here, so callers say `config::X`.
//!
//! This module is an independent oracle: it must NOT import anything from `crate::iotedge` (edgefleet's own,
//! stricter validator) so that a bug in one cannot hide the same bug in the other.

mod edge;
mod identity;
mod values;

use std::collections::BTreeMap;

use serde::Deserialize;

pub use edge::*;
pub use identity::*;
pub use values::{
    parse_connection_string, parse_duration, parse_hhmm, ConnectionString, KeyLocation, Url,
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
    /// `imported_master_encryption_key` (a path).
    pub imported_master_encryption_key: Option<String>,
    /// `manifest_trust_bundle_cert`.
    pub manifest_trust_bundle_cert: Option<Url>,
    /// `additional_info` (a `file://` URL of a TOML file).
    pub additional_info: Option<Url>,
    /// `iotedge_max_requests`.
    pub iotedge_max_requests: Option<toml::Value>,
    /// The identity-service part (flattened, as in the real type).
    #[serde(flatten)]
    pub aziot: AziotConfig,
    /// `[agent]`: absent means the default edgeAgent spec.
    pub agent: Option<ModuleSpec>,
    /// `[connect]`.
    pub connect: Option<toml::Value>,
    /// `[listen]`.
    pub listen: Option<toml::Value>,
    /// `[watchdog]`.
    pub watchdog: Option<toml::Value>,
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

/// Parse the super config from text: `Err` carries the exact text the device prints after
/// `could not parse config file: `.
pub fn parse(text: &str) -> Result<SuperConfig, String> {
    toml::from_str::<SuperConfig>(text).map_err(|e| e.to_string())
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
        let c = parse(MANUAL).unwrap();
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
        let c = parse(&text).unwrap();
        assert!(matches!(c.edge_ca, Some(EdgeCa::Preloaded { .. })));
        assert!(c.aziot.hostname.is_none());
    }

    #[test]
    fn real_error_texts() {
        let e = parse("[provisioning]\nsource = \"manual\"\nconnection_string = \"a\"\n[agent.config]\nimage = \"x\"\n").unwrap_err();
        assert!(e.contains("missing field `name`"), "{e}");
        assert!(e.starts_with("TOML parse error at line 4, column 2"), "{e}");
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
    }
}
