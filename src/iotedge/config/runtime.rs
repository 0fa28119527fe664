//! The IoT Edge runtime tables of the super config's typed model: `[agent]` (with `[agent.config]`, its
//! Docker `createOptions`, `[agent.config.auth]` and `[agent.env]`), `[moby_runtime]` (with `content_trust`),
//! `[connect]`, `[listen]`, `[watchdog]`, `[iotedge_max_requests]` and `[image_garbage_collection]`, and
//! their keys for "did you mean" ([`fields_of`], used by the model's).
//!
//! Same rules as `model`: every table `deny_unknown_fields` (except `createOptions`, which Docker receives
//! as given), the device's types, field order = rendering order. It must not validate values nor word
//! problems. Pure: no I/O.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `[agent.config.auth]`: registry credentials for the runtime images (every key optional).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryAuth {
    /// Registry host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serveraddress: Option<String>,
    /// User.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// E-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// `[agent.config]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The edgeAgent image (required; the device does not check that it is non-empty).
    pub image: String,
    /// Image ID pinned by the device.
    #[serde(default, rename = "imageHash", skip_serializing_if = "Option::is_none")]
    pub image_hash: Option<String>,
    /// Docker create options: a TOML table (NOT a JSON string); the typed keys (`Env`, `Labels`,
    /// `HostConfig.Binds`, ...) are checked by `validate`, the rest goes to Docker as given.
    #[serde(
        default,
        rename = "createOptions",
        skip_serializing_if = "Option::is_none"
    )]
    pub create_options: Option<serde_json::Map<String, Value>>,
    /// Image digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Registry credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RegistryAuth>,
    /// Let edgeAgent create modules with elevated permissions (default true).
    #[serde(
        default,
        rename = "allowElevatedDockerPermissions",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_elevated_docker_permissions: Option<bool>,
}

/// `[agent]`: if present, `name`, `type` and `[agent.config]` are required (as on the device).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// Module name (`edgeAgent`).
    pub name: String,
    /// Module type (`docker`).
    #[serde(rename = "type")]
    pub kind: String,
    /// on-create (default) | never.
    #[serde(
        default,
        rename = "imagePullPolicy",
        skip_serializing_if = "Option::is_none"
    )]
    pub image_pull_policy: Option<String>,
    /// `[agent.config]`.
    pub config: AgentConfig,
    /// `[agent.env]`: string values only.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub env: serde_json::Map<String, Value>,
}

/// `[connect]`: both URIs required when present.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Connect {
    /// Workload socket URI.
    pub workload_uri: String,
    /// Management socket URI.
    pub management_uri: String,
}

/// `[listen]`: both URIs required when present.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// Workload socket URI.
    pub workload_uri: String,
    /// Management socket URI.
    pub management_uri: String,
    /// tls1.0 (default) | tls1.1 | tls1.2, case-insensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tls_version: Option<String>,
}

/// `[watchdog]`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Watchdog {
    /// `"infinite"` (default, any case) or a u32.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<Value>,
}

/// `[iotedge_max_requests]`: simultaneous requests per module; both required when present.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IotedgeMaxRequests {
    /// Management API.
    pub management: usize,
    /// Workload API.
    pub workload: usize,
}

/// `[moby_runtime]`: if present, both `uri` and `network` are required.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MobyRuntime {
    /// Docker socket URI.
    pub uri: String,
    /// Network: a name, or `{ name, ipv6, ipam }`.
    pub network: Value,
    /// `[moby_runtime.content_trust]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_trust: Option<ContentTrust>,
}

/// `[moby_runtime.content_trust]`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContentTrust {
    /// Registry -> root CA URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certs: Option<indexmap::IndexMap<String, String>>,
}

/// `[image_garbage_collection]`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageGc {
    /// Enabled (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// A duration that is a whole number of days ("1d", "2days", "48h").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_recurrence: Option<String>,
    /// A duration ("7d", "90min").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_age_cleanup_threshold: Option<String>,
    /// "HH:MM" (24h; the hour may be one digit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_time: Option<String>,
}

/// The keys of the runtime tables (for "did you mean").
pub(super) fn fields_of(path: &str) -> &'static [&'static str] {
    match path {
        "agent" => &["name", "type", "imagePullPolicy", "config", "env"],
        "agent.config" => &[
            "image",
            "imageHash",
            "createOptions",
            "digest",
            "auth",
            "allowElevatedDockerPermissions",
        ],
        "agent.config.auth" => &["serveraddress", "username", "password", "email"],
        "moby_runtime" => &["uri", "network", "content_trust"],
        "moby_runtime.content_trust" => &["ca_certs"],
        "image_garbage_collection" => &[
            "enabled",
            "cleanup_recurrence",
            "image_age_cleanup_threshold",
            "cleanup_time",
        ],
        "connect" => &["workload_uri", "management_uri"],
        "listen" => &["workload_uri", "management_uri", "min_tls_version"],
        "watchdog" => &["max_retries"],
        "iotedge_max_requests" => &["management", "workload"],
        _ => &[],
    }
}
