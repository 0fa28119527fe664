//! Docker's container-create body as IoT Edge 1.5's `docker` crate models it: the `createOptions` of
//! `[agent.config]`. Only some fields are typed (a wrong type there is an error, e.g. `Binds` must be a list and
//! `Memory` an i64); every other key is kept in a flattened map and passed to Docker unchanged, as on the device.
//!
//! Serde types only. It must NOT import anything from `crate::iotedge`.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

/// `createOptions`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerCreateBody {
    /// `Hostname`.
    #[serde(rename = "Hostname")]
    pub hostname: Option<String>,
    /// `Env`: `["NAME=value", ...]`.
    #[serde(rename = "Env")]
    pub env: Option<Vec<String>>,
    /// `Cmd`.
    #[serde(rename = "Cmd")]
    pub cmd: Option<Vec<String>>,
    /// `Image`.
    #[serde(rename = "Image")]
    pub image: Option<String>,
    /// `Volumes`.
    #[serde(rename = "Volumes")]
    pub volumes: Option<HashMap<String, Value>>,
    /// `Entrypoint`.
    #[serde(rename = "Entrypoint")]
    pub entrypoint: Option<Vec<String>>,
    /// `Labels`: string values.
    #[serde(rename = "Labels")]
    pub labels: Option<HashMap<String, String>>,
    /// `HostConfig`.
    #[serde(rename = "HostConfig")]
    pub host_config: Option<HostConfig>,
    /// Every other key, passed to Docker as given.
    #[serde(flatten)]
    pub other_properties: HashMap<String, Value>,
}

/// `HostConfig`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HostConfig {
    /// `Memory` (bytes).
    #[serde(rename = "Memory")]
    pub memory: Option<i64>,
    /// `Binds`.
    #[serde(rename = "Binds")]
    pub binds: Option<Vec<String>>,
    /// `PortBindings`.
    #[serde(rename = "PortBindings")]
    pub port_bindings: Option<HashMap<String, Vec<PortBinding>>>,
    /// `Mounts`.
    #[serde(rename = "Mounts")]
    pub mounts: Option<Vec<Mount>>,
    /// `Privileged`.
    #[serde(rename = "Privileged")]
    pub privileged: Option<bool>,
    /// Every other key (`Dns`, `LogConfig`, `ExtraHosts`, ...), passed to Docker as given.
    #[serde(flatten)]
    pub other_properties: HashMap<String, Value>,
}

/// One `PortBindings` entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PortBinding {
    /// `HostIp`.
    #[serde(rename = "HostIp")]
    pub host_ip: Option<String>,
    /// `HostPort` (a string).
    #[serde(rename = "HostPort")]
    pub host_port: Option<String>,
}

/// One `Mounts` entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Mount {
    /// `Target`.
    #[serde(rename = "Target")]
    pub target: Option<String>,
    /// `Source`.
    #[serde(rename = "Source")]
    pub source: Option<String>,
    /// `Type`.
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    /// `ReadOnly`.
    #[serde(rename = "ReadOnly")]
    pub read_only: Option<bool>,
    /// Every other key.
    #[serde(flatten)]
    pub other_properties: HashMap<String, Value>,
}

/// `[agent.config.auth]`: every field optional.
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
