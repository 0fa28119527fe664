//! The IoT Edge tables of the super config: `[agent]` (the edgeAgent module spec with its Docker
//! `createOptions`, `imagePullPolicy`, `env` and `auth`), `[moby_runtime]` and `[image_garbage_collection]`.
//!
//! Serde types only, as aziot-edged's; value rules come from `values`. It must NOT import anything from
//! `crate::iotedge`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::values::{deserialize_hhmm, deserialize_humantime, deserialize_recurrence, Url};

/// `[agent]`: the edgeAgent module spec.
#[derive(Debug, Clone, Deserialize)]
pub struct ModuleSpec {
    /// `name` (required).
    pub name: String,
    /// `type` (required).
    #[serde(rename = "type")]
    pub kind: String,
    /// `imagePullPolicy`.
    #[serde(default, rename = "imagePullPolicy")]
    pub image_pull_policy: ImagePullPolicy,
    /// `[agent.config]` (required).
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
    /// `image` (required).
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
}

/// The subset of Docker's `ContainerCreateBody` the simulator uses (other keys are accepted and ignored, as
/// the generated Docker model ignores unknown fields).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerCreateBody {
    /// `Env`.
    #[serde(rename = "Env")]
    pub env: Option<Vec<String>>,
    /// `Labels`.
    #[serde(rename = "Labels")]
    pub labels: Option<BTreeMap<String, String>>,
    /// `HostConfig`.
    #[serde(rename = "HostConfig")]
    pub host_config: Option<HostConfig>,
}

/// The subset of Docker's `HostConfig` the simulator uses.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HostConfig {
    /// `Binds`.
    #[serde(rename = "Binds")]
    pub binds: Option<Vec<String>>,
    /// `Dns`.
    #[serde(rename = "Dns")]
    pub dns: Option<Vec<String>>,
    /// `LogConfig`.
    #[serde(rename = "LogConfig")]
    pub log_config: Option<HostLogConfig>,
    /// `ExtraHosts`.
    #[serde(rename = "ExtraHosts")]
    pub extra_hosts: Option<Vec<String>>,
    /// `Memory`.
    #[serde(rename = "Memory")]
    pub memory: Option<i64>,
}

/// `HostConfig.LogConfig`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HostLogConfig {
    /// `Type`.
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    /// `Config`.
    #[serde(rename = "Config")]
    pub config: Option<BTreeMap<String, String>>,
}

/// `[agent.config.auth]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthConfig {
    /// `username`.
    pub username: Option<String>,
    /// `password`.
    pub password: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `serveraddress`.
    pub serveraddress: Option<String>,
}

/// `[moby_runtime]`: if present, both `uri` and `network` are required.
#[derive(Debug, Clone, Deserialize)]
pub struct MobyRuntime {
    /// `uri`.
    pub uri: Url,
    /// `network`.
    pub network: MobyNetwork,
    /// `content_trust`.
    pub content_trust: Option<toml::Value>,
}

impl Default for MobyRuntime {
    fn default() -> Self {
        MobyRuntime {
            uri: Url("unix:///var/run/docker.sock".into()),
            network: MobyNetwork::Name("azure-iot-edge".into()),
            content_trust: None,
        }
    }
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
    /// `ipam`.
    pub ipam: Option<toml::Value>,
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
