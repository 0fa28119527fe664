//! The IoT Edge tables of the super config, as aziot-edged's serde types (release 1.5): `[agent]` (the
//! edgeAgent module spec with its Docker `createOptions`, `imagePullPolicy`, `env`, `auth` and `digest`),
//! `[connect]`, `[listen]`, `[watchdog]`, `[edge_ca]`, `[moby_runtime]` (with `content_trust`),
//! `[iotedge_max_requests]` and `[image_garbage_collection]`.
//!
//! Serde types only, as the device's; value rules come from `values`, the Docker body from `docker`, the
//! issuance options shared with the identity service from `identity`. It must NOT import anything from
//! `crate::iotedge`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::docker::{AuthConfig, ContainerCreateBody};
use super::identity::{AutoRenewConfig, CertIssuanceOptions, CertSubject};
use super::values::{
    deserialize_hhmm, deserialize_humantime, deserialize_recurrence, MaxRetries, MinTlsVersion, Url,
};

/// `[agent]`: the edgeAgent module spec (if present, `name`, `type` and `config` are required).
#[derive(Debug, Clone, Deserialize)]
pub struct ModuleSpec {
    /// `name`.
    pub name: String,
    /// `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `imagePullPolicy`.
    #[serde(default, rename = "imagePullPolicy")]
    pub image_pull_policy: ImagePullPolicy,
    /// `[agent.config]`.
    pub config: DockerConfig,
    /// `[agent.env]`: string values only.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// `imagePullPolicy`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum ImagePullPolicy {
    /// `on-create` (default).
    #[default]
    #[serde(rename = "on-create")]
    OnCreate,
    /// `never`: the image must already be on the device.
    #[serde(rename = "never")]
    Never,
}

/// `[agent.config]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerConfig {
    /// `image` (required; emptiness is not checked at apply).
    pub image: String,
    /// `imageHash`.
    pub image_hash: Option<String>,
    /// `createOptions`: a TOML table (a JSON string is rejected, as on the device).
    #[serde(default)]
    pub create_options: ContainerCreateBody,
    /// `digest`.
    pub digest: Option<String>,
    /// `[agent.config.auth]`.
    pub auth: Option<AuthConfig>,
    /// `allowElevatedDockerPermissions`.
    #[serde(default = "default_true")]
    pub allow_elevated_docker_permissions: bool,
}

/// `[connect]`: both URIs required when present.
#[derive(Debug, Clone, Deserialize)]
pub struct Connect {
    /// `workload_uri`.
    pub workload_uri: Url,
    /// `management_uri`.
    pub management_uri: Url,
}

/// `[listen]`: both URIs required when present.
#[derive(Debug, Clone, Deserialize)]
pub struct Listen {
    /// `workload_uri`.
    pub workload_uri: Url,
    /// `management_uri`.
    pub management_uri: Url,
    /// `min_tls_version` (`tls1.0` default, case-insensitive).
    #[serde(default)]
    pub min_tls_version: MinTlsVersion,
}

/// `[watchdog]`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Watchdog {
    /// `max_retries` (`"infinite"` default).
    #[serde(default)]
    pub max_retries: MaxRetries,
}

/// `[iotedge_max_requests]`: both required when present.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct IotedgeMaxRequests {
    /// `management`.
    pub management: usize,
    /// `workload`.
    pub workload: usize,
}

/// `[edge_ca]`: one of three shapes, tried in this order; any mismatch is "data did not match any variant of
/// untagged enum EdgeCa".
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum EdgeCa {
    /// `method = "est" | "local_ca" | "self_signed"` plus its fields.
    Issued {
        /// Issuance options.
        #[serde(flatten)]
        cert: CertIssuanceOptions,
    },
    /// `cert = "file:///..."`, `pk = "file:///..."` (both plain URLs here).
    Preloaded {
        /// Certificate (full chain) URL.
        cert: Url,
        /// Private key URL.
        pk: Url,
    },
    /// `auto_generated_edge_ca_expiry_days = N`.
    Quickstart {
        /// Validity of the generated CA (a u32; 0 is accepted).
        auto_generated_edge_ca_expiry_days: u32,
        /// `auto_renew`.
        #[serde(default)]
        auto_renew: AutoRenewConfig,
        /// `common_name` or `subject` (flattened `Option`).
        #[serde(flatten)]
        subject: Option<CertSubject>,
    },
}

/// `[moby_runtime]`: if present, both `uri` and `network` are required.
#[derive(Debug, Clone, Deserialize)]
pub struct MobyRuntime {
    /// `uri`.
    pub uri: Url,
    /// `network`.
    pub network: MobyNetwork,
    /// `[moby_runtime.content_trust]`.
    pub content_trust: Option<ContentTrust>,
}

impl Default for MobyRuntime {
    fn default() -> Self {
        MobyRuntime {
            uri: Url::parse("unix:///var/run/docker.sock")
                .unwrap_or_else(|e| unreachable!("a constant URL: {e}")),
            network: MobyNetwork::Name("azure-iot-edge".into()),
            content_trust: None,
        }
    }
}

/// `[moby_runtime.content_trust]`.
#[derive(Debug, Clone, Deserialize)]
pub struct ContentTrust {
    /// `[moby_runtime.content_trust.ca_certs]`: registry -> root CA URL.
    pub ca_certs: Option<BTreeMap<String, Url>>,
}

/// `network = "name"` or `[moby_runtime.network] name = ..., ipv6 = ...`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum MobyNetwork {
    /// The table form.
    Network(Network),
    /// The name form.
    Name(String),
}

impl MobyNetwork {
    /// The network name (`azure-iot-edge` when empty).
    pub fn name(&self) -> &str {
        match self {
            MobyNetwork::Name(n) if n.is_empty() => "azure-iot-edge",
            MobyNetwork::Name(n) => n,
            MobyNetwork::Network(n) => &n.name,
        }
    }

    /// Whether IPv6 is requested.
    pub fn ipv6(&self) -> bool {
        matches!(
            self,
            MobyNetwork::Network(Network {
                ipv6: Some(true),
                ..
            })
        )
    }
}

/// `[moby_runtime.network]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Network {
    /// `name`.
    pub name: String,
    /// `ipv6`.
    pub ipv6: Option<bool>,
    /// `[moby_runtime.network.ipam]`.
    pub ipam: Option<Ipam>,
}

/// `[moby_runtime.network.ipam]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Ipam {
    /// `[[moby_runtime.network.ipam.config]]`.
    pub config: Option<Vec<IpamConfig>>,
}

/// One IPAM pool.
#[derive(Debug, Clone, Deserialize)]
pub struct IpamConfig {
    /// `gateway`.
    pub gateway: Option<String>,
    /// `subnet`.
    pub subnet: Option<String>,
    /// `ip_range`.
    pub ip_range: Option<String>,
}

/// `[image_garbage_collection]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ImagePruneSettings {
    /// `cleanup_recurrence` (whole days).
    #[serde(
        default = "default_cleanup_recurrence",
        deserialize_with = "deserialize_recurrence"
    )]
    pub cleanup_recurrence: Duration,
    /// `image_age_cleanup_threshold`.
    #[serde(
        default = "default_image_age_threshold",
        deserialize_with = "deserialize_humantime"
    )]
    pub image_age_cleanup_threshold: Duration,
    /// `cleanup_time` (`HH:MM`), in minutes after midnight.
    #[serde(default, deserialize_with = "deserialize_hhmm")]
    pub cleanup_time: u64,
    /// `enabled`.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_cleanup_recurrence() -> Duration {
    Duration::from_secs(86_400)
}
fn default_image_age_threshold() -> Duration {
    Duration::from_secs(7 * 86_400)
}
fn default_true() -> bool {
    true
}

impl Default for ImagePruneSettings {
    fn default() -> Self {
        ImagePruneSettings {
            cleanup_recurrence: default_cleanup_recurrence(),
            image_age_cleanup_threshold: default_image_age_threshold(),
            cleanup_time: 0,
            enabled: true,
        }
    }
}
