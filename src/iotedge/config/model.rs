//! The IoT Edge 1.5 super config's typed model: one struct per table, field order = rendering order.
//!
//! Owns the shape of `/etc/aziot/config.toml` as serde types (every table `deny_unknown_fields`, so a typo is
//! an error rather than a key the device silently ignores), [`fields_of`] (each table's keys, for "did you
//! mean"; kept in sync with the structs by a test), and the model-level readings of a value
//! ([`edge_ca_shape`], [`connection_string_parts`]). Extending the model to more keys of 1.5 happens here (and
//! in `fields_of`). It must not validate values or word problems (see `validate` and `problems`). Pure: no I/O.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A key location in the config: `{ value = "<base64>" }` or `{ uri = "file:///..." }`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeySource {
    /// Inline base64 key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Key URI (file: or pkcs11:).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

/// `[provisioning.authentication]` (manual) or `[provisioning.attestation]` (DPS).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// sas | x509 (manual); symmetric_key | x509 | tpm (DPS).
    pub method: String,
    /// DPS registration id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_id: Option<String>,
    /// DPS symmetric key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symmetric_key: Option<KeySource>,
    /// Manual SAS key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id_pk: Option<KeySource>,
    /// X.509 identity certificate (file URI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_cert: Option<String>,
    /// X.509 identity key (file: or pkcs11: URI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_pk: Option<String>,
}

/// `[provisioning]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Provisioning {
    /// manual | dps | none.
    pub source: String,
    /// manual: the whole connection string (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<String>,
    /// manual explicit: IoT hub host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iothub_hostname: Option<String>,
    /// manual explicit: device id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// manual explicit: authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Auth>,
    /// dps: global endpoint URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_endpoint: Option<String>,
    /// dps: id scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_scope: Option<String>,
    /// dps: attestation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Auth>,
    /// Re-provision policy (also accepted here for older configs? no: top level only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_reprovision_on_startup: Option<bool>,
    /// dps: payload file URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
}

/// `[provisioning.payload]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// file URI of the JSON payload.
    pub uri: String,
}

/// `[edge_ca]`: preloaded, issued, or quickstart.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeCa {
    /// preloaded: certificate chain file URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    /// preloaded: private key URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pk: Option<String>,
    /// issued: est | local_ca | self_signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// issued (est): EST server URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// issued: validity in days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_days: Option<i64>,
    /// issued: common name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    /// issued: EST username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// issued: EST password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// issued (est): bootstrap identity cert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_identity_cert: Option<String>,
    /// issued (est): bootstrap identity key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_identity_pk: Option<String>,
    /// issued: renewal policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_renew: Option<AutoRenew>,
    /// quickstart: validity of the generated CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_generated_edge_ca_expiry_days: Option<i64>,
}

/// `[edge_ca.auto_renew]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AutoRenew {
    /// e.g. "80%".
    pub rotate_key: Option<bool>,
    /// e.g. "80%".
    pub threshold: Option<String>,
    /// e.g. "4%".
    pub retry: Option<String>,
}

/// `[agent.config.auth]`: registry credentials for the runtime images.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryAuth {
    /// Registry host.
    pub serveraddress: String,
    /// User.
    pub username: String,
    /// Password (secret).
    pub password: String,
}

/// `[agent.config]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The edgeAgent image.
    pub image: String,
    /// Docker create options: a TOML table (NOT a JSON string).
    #[serde(
        default,
        rename = "createOptions",
        skip_serializing_if = "Option::is_none"
    )]
    pub create_options: Option<serde_json::Map<String, Value>>,
    /// Registry credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RegistryAuth>,
}

/// `[agent]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// Must be present in the real config; edgefleet fills `edgeAgent` when omitted.
    #[serde(default = "agent_name")]
    pub name: String,
    /// Must be present; edgefleet fills `docker` when omitted.
    #[serde(default = "agent_type", rename = "type")]
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

fn agent_name() -> String {
    "edgeAgent".into()
}
fn agent_type() -> String {
    "docker".into()
}

/// `[connect]` / `[listen]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sockets {
    /// workload socket URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_uri: Option<String>,
    /// management socket URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_uri: Option<String>,
    /// listen only: minimum TLS version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tls_version: Option<String>,
}

/// `[moby_runtime]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MobyRuntime {
    /// Docker socket URI.
    pub uri: Option<String>,
    /// Network name.
    pub network: Option<Value>,
    /// Content trust settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_trust: Option<Value>,
}

/// `[image_garbage_collection]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageGc {
    /// Enabled (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// "1d" etc.: whole days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_recurrence: Option<String>,
    /// "7d" etc.: whole days, "0d" allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_age_cleanup_threshold: Option<String>,
    /// "HH:MM".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_time: Option<String>,
}

/// `[tpm]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tpm {
    /// TCTI loader string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcti: Option<String>,
    /// Auth key index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_key_index: Option<String>,
}

/// The super config. Field order is the rendering order.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SuperConfig {
    /// Device host name (must match the machine's, or start with it plus a dot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Parent gateway (nested edge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_hostname: Option<String>,
    /// Trust bundle file URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_bundle_cert: Option<String>,
    /// Dynamic | AlwaysOnStartup | OnErrorOnly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_reprovisioning_mode: Option<String>,
    /// >= 70.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_timeout_sec: Option<i64>,
    /// Retries for cloud operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_retries: Option<i64>,
    /// Local gateway host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_gateway_hostname: Option<String>,
    /// Allow modules elevated docker permissions (checklist: keep false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_elevated_docker_permissions: Option<bool>,
    /// Prefer the module identity cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefer_module_identity_cache: Option<bool>,
    /// `[provisioning]` (the only required table).
    pub provisioning: Provisioning,
    /// `[edge_ca]` (absent: quickstart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_ca: Option<EdgeCa>,
    /// `[moby_runtime]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moby_runtime: Option<MobyRuntime>,
    /// `[agent]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
    /// `[connect]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<Sockets>,
    /// `[listen]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<Sockets>,
    /// `[image_garbage_collection]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_garbage_collection: Option<ImageGc>,
    /// `[tpm]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<Tpm>,
    /// `[aziot_keys]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aziot_keys: Option<serde_json::Map<String, Value>>,
    /// `[preloaded_keys]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preloaded_keys: Option<serde_json::Map<String, Value>>,
    /// `[preloaded_certs]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preloaded_certs: Option<serde_json::Map<String, Value>>,
}

/// The shape of an `[edge_ca]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeCaShape {
    /// `cert` + `pk`.
    Preloaded,
    /// `method = ...`.
    Issued,
    /// `auto_generated_edge_ca_expiry_days`, or no `[edge_ca]` at all.
    Quickstart,
}

/// Which shape an `[edge_ca]` has (None: no recognisable shape).
pub fn edge_ca_shape(ca: Option<&EdgeCa>) -> Option<EdgeCaShape> {
    let Some(ca) = ca else {
        return Some(EdgeCaShape::Quickstart);
    };
    let preloaded = ca.cert.is_some() || ca.pk.is_some();
    let issued = ca.method.is_some();
    let quick = ca.auto_generated_edge_ca_expiry_days.is_some();
    match (preloaded, issued, quick) {
        (true, false, false) => Some(EdgeCaShape::Preloaded),
        (false, true, false) => Some(EdgeCaShape::Issued),
        (false, false, true) => Some(EdgeCaShape::Quickstart),
        (false, false, false) => Some(EdgeCaShape::Quickstart),
        _ => None,
    }
}

/// Parse a connection string into its parts.
pub fn connection_string_parts(cs: &str) -> std::collections::BTreeMap<String, String> {
    cs.split(';')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The fields each table accepts (for "did you mean" on unknown keys).
pub(super) fn fields_of(path: &str) -> &'static [&'static str] {
    match path {
        "" => &[
            "hostname",
            "parent_hostname",
            "trust_bundle_cert",
            "auto_reprovisioning_mode",
            "cloud_timeout_sec",
            "cloud_retries",
            "local_gateway_hostname",
            "allow_elevated_docker_permissions",
            "prefer_module_identity_cache",
            "provisioning",
            "edge_ca",
            "moby_runtime",
            "agent",
            "connect",
            "listen",
            "image_garbage_collection",
            "tpm",
            "aziot_keys",
            "preloaded_keys",
            "preloaded_certs",
        ],
        "provisioning" => &[
            "source",
            "connection_string",
            "iothub_hostname",
            "device_id",
            "authentication",
            "global_endpoint",
            "id_scope",
            "attestation",
            "always_reprovision_on_startup",
            "payload",
        ],
        "provisioning.authentication" | "provisioning.attestation" => &[
            "method",
            "registration_id",
            "symmetric_key",
            "device_id_pk",
            "identity_cert",
            "identity_pk",
        ],
        "edge_ca" => &[
            "cert",
            "pk",
            "method",
            "url",
            "expiry_days",
            "common_name",
            "username",
            "password",
            "bootstrap_identity_cert",
            "bootstrap_identity_pk",
            "auto_renew",
            "auto_generated_edge_ca_expiry_days",
        ],
        "agent" => &["name", "type", "imagePullPolicy", "config", "env"],
        "agent.config" => &["image", "createOptions", "auth"],
        "agent.config.auth" => &["serveraddress", "username", "password"],
        "moby_runtime" => &["uri", "network", "content_trust"],
        "image_garbage_collection" => &[
            "enabled",
            "cleanup_recurrence",
            "image_age_cleanup_threshold",
            "cleanup_time",
        ],
        "connect" | "listen" => &["workload_uri", "management_uri", "min_tls_version"],
        "tpm" => &["tcti", "auth_key_index"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iotedge::config::testing::base;
    use serde_json::json;

    /// `fields_of` must list exactly the keys serde accepts for each table (serde's own "expected one of").
    #[test]
    fn fields_of_matches_the_structs() {
        let tables = [
            "",
            "provisioning",
            "provisioning.authentication",
            "edge_ca",
            "agent",
            "agent.config",
            "agent.config.auth",
            "moby_runtime",
            "image_garbage_collection",
            "connect",
            "tpm",
        ];
        for table in tables {
            let mut v = base();
            v["provisioning"]["authentication"] = json!({"method": "sas"});
            v["agent"]["config"]["auth"] =
                json!({"serveraddress": "r", "username": "u", "password": "p"});
            for t in ["moby_runtime", "image_garbage_collection", "connect", "tpm"] {
                v[t] = json!({});
            }
            let mut at = &mut v;
            for seg in table.split('.').filter(|s| !s.is_empty()) {
                at = &mut at[seg];
            }
            at["zzz_unknown"] = json!(1);
            let err = serde_path_to_error::deserialize::<_, SuperConfig>(v)
                .unwrap_err()
                .into_inner()
                .to_string();
            // serde: "expected `a`", "expected `a` or `b`", "expected one of `a`, `b`, `c`".
            let list = err
                .split_once(", expected ")
                .map(|(_, l)| l.trim_start_matches("one of "))
                .unwrap_or_else(|| panic!("{table}: {err}"));
            let expected: Vec<&str> = list
                .split(", ")
                .flat_map(|s| s.split(" or "))
                .map(|s| s.trim_matches('`'))
                .collect();
            assert_eq!(expected, fields_of(table), "[{table}]");
        }
        assert_eq!(fields_of("listen"), fields_of("connect"));
        assert_eq!(
            fields_of("provisioning.attestation"),
            fields_of("provisioning.authentication")
        );
    }
}
