//! The IoT Edge 1.5 super config (`/etc/aziot/config.toml`): typed model, validation, deterministic rendering.
//!
//! Owns every rule from the 1.5 sources that `iotedge config apply` enforces (so a bad config is refused before
//! any device is contacted, naming the key), plus what the device does NOT catch: unknown keys are silently
//! ignored by the real `iotedge`, so here every table is `deny_unknown_fields` and a typo gets a "did you mean".
//! Also the production-checklist warnings (rolling or debug runtime images, quickstart Edge CA, bad
//! UpstreamProtocol). Pure: no I/O.

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

/// One problem with a config, naming the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key, e.g. `provisioning.attestation.method`.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "`{}`: {}", self.key, self.message)
        }
    }
}

fn p(key: &str, message: impl Into<String>) -> ConfigProblem {
    ConfigProblem {
        key: key.to_string(),
        message: message.into(),
    }
}

/// The fields each table accepts (for "did you mean" on unknown keys).
fn fields_of(path: &str) -> &'static [&'static str] {
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

/// Deserialize a config from JSON-like data (module arguments, or a parsed TOML file), with a precise error
/// for unknown keys and wrong types.
pub fn from_value(v: &Value) -> Result<SuperConfig, ConfigProblem> {
    let de = v.clone();
    serde_path_to_error::deserialize::<_, SuperConfig>(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        describe_serde_error(&path, &inner)
    })
}

fn describe_serde_error(path: &str, inner: &str) -> ConfigProblem {
    // Paths look like `edge_ca.crt` for unknown fields (the unknown key is the last segment) and
    // `agent.config` for missing fields.
    let path = if path == "." { "" } else { path };
    if let Some(rest) = inner.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        let table = path
            .strip_suffix(field)
            .map(|t| t.trim_end_matches('.'))
            .unwrap_or(path)
            .to_string();
        let candidates = fields_of(&table);
        let hint = crate::diag::did_you_mean(field, candidates.iter().copied())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        let where_ = if table.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in [{table}]")
        };
        return p(
            &if table.is_empty() { field.to_string() } else { format!("{table}.{field}") },
            format!(
                "unknown key `{field}` {where_}{hint}. The device would silently ignore it (iotedge config apply does not report unknown keys)"
            ),
        );
    }
    if let Some(rest) = inner.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        let key = if path.is_empty() {
            field.to_string()
        } else {
            format!("{path}.{field}")
        };
        return p(&key, "is required");
    }
    p(path, inner.to_string())
}

/// A problem list.
pub type Problems = Vec<ConfigProblem>;

fn is_file_uri(s: &str) -> bool {
    s.starts_with("file:///")
}

fn check_key_uri(key: &str, v: &str, out: &mut Problems) {
    if !(v.starts_with("file:") || v.starts_with("pkcs11:")) {
        out.push(p(
            key,
            format!("`{v}` must be a `file:///...` or `pkcs11:` URI (a bare path is rejected by iotedge)"),
        ));
    }
}

fn check_cert_uri(key: &str, v: &str, out: &mut Problems) {
    if !is_file_uri(v) {
        out.push(p(
            key,
            format!("`{v}` must be a `file:///...` URI (a bare path is rejected by iotedge)"),
        ));
    }
}

fn check_key_source(key: &str, ks: &KeySource, out: &mut Problems) {
    match (&ks.value, &ks.uri) {
        (Some(v), None) => {
            use base64::Engine;
            if base64::engine::general_purpose::STANDARD.decode(v).is_err() {
                out.push(p(&format!("{key}.value"), "must be base64"));
            }
        }
        (None, Some(u)) => check_key_uri(&format!("{key}.uri"), u, out),
        _ => out.push(p(
            key,
            "give exactly one of `value` (base64) or `uri` (file:///... or pkcs11:)",
        )),
    }
}

/// Parse a connection string into its parts.
pub fn connection_string_parts(cs: &str) -> std::collections::BTreeMap<String, String> {
    cs.split(';')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn days(key: &str, v: &str, min: u32, out: &mut Problems) {
    let ok = v
        .strip_suffix('d')
        .and_then(|n| n.parse::<u32>().ok())
        .map(|n| n >= min)
        .unwrap_or(false);
    if !ok {
        out.push(p(
            key,
            format!(
                "`{v}` must be a whole number of days like \"{}d\" (minimum {min}d)",
                min.max(1)
            ),
        ));
    }
}

/// Validate by the real 1.5 rules (what `iotedge config apply` would refuse, plus the URI rules).
pub fn validate(c: &SuperConfig) -> Problems {
    let mut out = Problems::new();
    let pr = &c.provisioning;
    match pr.source.as_str() {
        "manual" => {
            match (&pr.connection_string, &pr.iothub_hostname, &pr.device_id, &pr.authentication) {
                (Some(cs), None, None, None) => {
                    let parts = connection_string_parts(cs);
                    for need in ["HostName", "DeviceId", "SharedAccessKey"] {
                        if !parts.contains_key(need) {
                            out.push(p(
                                "provisioning.connection_string",
                                format!("is missing `{need}=` (a device connection string has HostName, DeviceId and SharedAccessKey)"),
                            ));
                        }
                    }
                }
                (None, Some(_), Some(_), Some(a)) => match a.method.as_str() {
                    "sas" => match &a.device_id_pk {
                        Some(ks) => check_key_source("provisioning.authentication.device_id_pk", ks, &mut out),
                        None => out.push(p("provisioning.authentication.device_id_pk", "is required for method = \"sas\"")),
                    },
                    "x509" => {
                        match &a.identity_cert {
                            Some(u) => check_cert_uri("provisioning.authentication.identity_cert", u, &mut out),
                            None => out.push(p("provisioning.authentication.identity_cert", "is required for method = \"x509\"")),
                        }
                        match &a.identity_pk {
                            Some(u) => check_key_uri("provisioning.authentication.identity_pk", u, &mut out),
                            None => out.push(p("provisioning.authentication.identity_pk", "is required for method = \"x509\"")),
                        }
                    }
                    m => out.push(p(
                        "provisioning.authentication.method",
                        format!("unknown variant `{m}`, expected `sas` or `x509`"),
                    )),
                },
                (Some(_), _, _, _) => out.push(p(
                    "provisioning",
                    "give either `connection_string` or `iothub_hostname` + `device_id` + `[provisioning.authentication]`, not both",
                )),
                (None, h, d, a) => {
                    for (k, missing) in [("iothub_hostname", h.is_none()), ("device_id", d.is_none()), ("authentication", a.is_none())] {
                        if missing {
                            out.push(p(
                                &format!("provisioning.{k}"),
                                "is required for manual provisioning without a connection string",
                            ));
                        }
                    }
                }
            }
            for k in ["global_endpoint", "id_scope", "attestation"] {
                let present = match k {
                    "global_endpoint" => pr.global_endpoint.is_some(),
                    "id_scope" => pr.id_scope.is_some(),
                    _ => pr.attestation.is_some(),
                };
                if present {
                    out.push(p(
                        &format!("provisioning.{k}"),
                        "only applies to source = \"dps\"",
                    ));
                }
            }
        }
        "dps" => {
            match &pr.global_endpoint {
                Some(u) if u.starts_with("https://") || u.starts_with("http://") => {}
                Some(u) => out.push(p(
                    "provisioning.global_endpoint",
                    format!("`{u}` is not a URL"),
                )),
                None => out.push(p(
                    "provisioning.global_endpoint",
                    "is required for source = \"dps\"",
                )),
            }
            if pr.id_scope.as_deref().map(str::is_empty).unwrap_or(true) {
                out.push(p(
                    "provisioning.id_scope",
                    "is required for source = \"dps\"",
                ));
            }
            match &pr.attestation {
                None => out.push(p(
                    "provisioning.attestation",
                    "is required for source = \"dps\"",
                )),
                Some(a) => match a.method.as_str() {
                    "symmetric_key" => {
                        if a.registration_id.is_none() {
                            out.push(p(
                                "provisioning.attestation.registration_id",
                                "is required for method = \"symmetric_key\"",
                            ));
                        }
                        match &a.symmetric_key {
                            Some(ks) => check_key_source(
                                "provisioning.attestation.symmetric_key",
                                ks,
                                &mut out,
                            ),
                            None => out.push(p(
                                "provisioning.attestation.symmetric_key",
                                "is required for method = \"symmetric_key\"",
                            )),
                        }
                    }
                    "x509" => {
                        match &a.identity_cert {
                            Some(u) => check_cert_uri(
                                "provisioning.attestation.identity_cert",
                                u,
                                &mut out,
                            ),
                            None => out.push(p(
                                "provisioning.attestation.identity_cert",
                                "is required for method = \"x509\"",
                            )),
                        }
                        match &a.identity_pk {
                            Some(u) => {
                                check_key_uri("provisioning.attestation.identity_pk", u, &mut out)
                            }
                            None => out.push(p(
                                "provisioning.attestation.identity_pk",
                                "is required for method = \"x509\"",
                            )),
                        }
                    }
                    "tpm" => {
                        if a.registration_id.is_none() {
                            out.push(p(
                                "provisioning.attestation.registration_id",
                                "is required for method = \"tpm\"",
                            ));
                        }
                    }
                    m => out.push(p(
                        "provisioning.attestation.method",
                        format!("unknown variant `{m}`, expected `symmetric_key`, `x509` or `tpm`"),
                    )),
                },
            }
            if c.parent_hostname.is_some() {
                out.push(p("parent_hostname", "DPS provisioning is not supported in nested mode (remove parent_hostname or use manual provisioning)"));
            }
            if pr.connection_string.is_some() {
                out.push(p(
                    "provisioning.connection_string",
                    "only applies to source = \"manual\"",
                ));
            }
        }
        "none" => {}
        other => out.push(p(
            "provisioning.source",
            format!(
                "unknown variant `{other}`, expected one of `manual`, `dps`, `none` (lowercase)"
            ),
        )),
    }
    if let Some(t) = c.cloud_timeout_sec {
        if t < 70 {
            out.push(p(
                "cloud_timeout_sec",
                format!("must be at least 70 (got {t})"),
            ));
        }
    }
    if let Some(m) = &c.auto_reprovisioning_mode {
        if !["Dynamic", "AlwaysOnStartup", "OnErrorOnly"].contains(&m.as_str()) {
            out.push(p(
                "auto_reprovisioning_mode",
                format!("unknown variant `{m}`, expected `Dynamic`, `AlwaysOnStartup` or `OnErrorOnly` (case-sensitive)"),
            ));
        }
    }
    if let Some(t) = &c.trust_bundle_cert {
        check_cert_uri("trust_bundle_cert", t, &mut out);
    }
    if let Some(ca) = &c.edge_ca {
        validate_edge_ca(ca, &mut out);
    }
    if let Some(m) = &c.moby_runtime {
        if m.uri.is_none() {
            out.push(p(
                "moby_runtime.uri",
                "is required when [moby_runtime] is present (default unix:///var/run/docker.sock)",
            ));
        }
        if m.network.is_none() {
            out.push(p(
                "moby_runtime.network",
                "is required when [moby_runtime] is present (default \"azure-iot-edge\")",
            ));
        }
    }
    if let Some(a) = &c.agent {
        if a.name.is_empty() {
            out.push(p("agent.name", "is required"));
        }
        if a.kind != "docker" {
            out.push(p(
                "agent.type",
                format!("must be \"docker\" (got \"{}\")", a.kind),
            ));
        }
        if a.config.image.trim().is_empty() {
            out.push(p("agent.config.image", "is required"));
        }
        if let Some(pp) = &a.image_pull_policy {
            if pp != "on-create" && pp != "never" {
                out.push(p(
                    "agent.imagePullPolicy",
                    format!("must be \"on-create\" or \"never\" (got \"{pp}\")"),
                ));
            }
        }
        for (k, v) in &a.env {
            if !v.is_string() {
                out.push(p(
                    &format!("agent.env.{k}"),
                    format!(
                        "must be a string: write {k} = \"{}\" (iotedge rejects {} values)",
                        plain(v),
                        kind(v)
                    ),
                ));
            }
        }
    }
    if let Some(gc) = &c.image_garbage_collection {
        if let Some(r) = &gc.cleanup_recurrence {
            days(
                "image_garbage_collection.cleanup_recurrence",
                r,
                1,
                &mut out,
            );
        }
        if let Some(t) = &gc.image_age_cleanup_threshold {
            days(
                "image_garbage_collection.image_age_cleanup_threshold",
                t,
                0,
                &mut out,
            );
        }
        if let Some(t) = &gc.cleanup_time {
            let ok = t.len() == 5
                && t.as_bytes()[2] == b':'
                && t[..2].parse::<u32>().map(|h| h < 24).unwrap_or(false)
                && t[3..].parse::<u32>().map(|m| m < 60).unwrap_or(false);
            if !ok {
                out.push(p(
                    "image_garbage_collection.cleanup_time",
                    format!("`{t}` must be a time like \"03:30\" (HH:MM, 24h)"),
                ));
            }
        }
    }
    out
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::Array(_) => "list",
        Value::Object(_) => "table",
        _ => "non-string",
    }
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

fn validate_edge_ca(ca: &EdgeCa, out: &mut Problems) {
    match edge_ca_shape(Some(ca)) {
        None => out.push(p(
            "edge_ca",
            "mixes shapes: use either `cert` + `pk` (preloaded), or `method = ...` (issued), or `auto_generated_edge_ca_expiry_days` (quickstart)",
        )),
        Some(EdgeCaShape::Preloaded) => {
            match &ca.cert {
                Some(u) => check_cert_uri("edge_ca.cert", u, out),
                None => out.push(p("edge_ca.cert", "is required together with `pk`")),
            }
            match &ca.pk {
                Some(u) => check_key_uri("edge_ca.pk", u, out),
                None => out.push(p("edge_ca.pk", "is required together with `cert`")),
            }
        }
        Some(EdgeCaShape::Issued) => {
            let m = ca.method.as_deref().unwrap_or_default();
            if !["est", "local_ca", "self_signed"].contains(&m) {
                out.push(p("edge_ca.method", format!("unknown variant `{m}`, expected `est`, `local_ca` or `self_signed`")));
            }
            if m == "est" && ca.url.is_none() {
                out.push(p("edge_ca.url", "is required for method = \"est\" (or configure [cert_issuance.est])"));
            }
            if let Some(d) = ca.expiry_days {
                if d <= 0 {
                    out.push(p("edge_ca.expiry_days", "must be greater than 0"));
                }
            }
        }
        Some(EdgeCaShape::Quickstart) => {
            if let Some(d) = ca.auto_generated_edge_ca_expiry_days {
                if d <= 0 {
                    out.push(p("edge_ca.auto_generated_edge_ca_expiry_days", "must be greater than 0"));
                }
            }
        }
    }
}

/// The four valid `UpstreamProtocol` values.
pub const UPSTREAM_PROTOCOLS: &[&str] = &["Amqp", "AmqpWs", "Mqtt", "MqttWs"];

/// Production-checklist findings (warnings, or errors under `production: true`).
pub fn production_findings(c: &SuperConfig) -> Vec<String> {
    let mut out = Vec::new();
    if edge_ca_shape(c.edge_ca.as_ref()) == Some(EdgeCaShape::Quickstart) {
        out.push("the Edge CA is a quickstart (auto-generated, 90-day, self-signed) certificate: the production checklist requires your own Edge CA (edge_ca cert + pk, or issued)".to_string());
    }
    if let Some(a) = &c.agent {
        if let Some(f) = image_finding(&a.config.image) {
            out.push(format!("agent.config.image: {f}"));
        }
        if let Some(Value::String(up)) = a.env.get("UpstreamProtocol") {
            if !UPSTREAM_PROTOCOLS.contains(&up.as_str()) {
                out.push(format!(
                    "agent.env.UpstreamProtocol: `{up}` is not one of {} (case-sensitive)",
                    UPSTREAM_PROTOCOLS.join(", ")
                ));
            }
        }
    }
    if c.allow_elevated_docker_permissions == Some(true) {
        out.push("allow_elevated_docker_permissions = true lets modules gain root on the device; the production checklist says keep it false".to_string());
    }
    out
}

/// Is a runtime image tag pinned to a full version, and not a debug build? Returns the finding if not.
pub fn image_finding(image: &str) -> Option<String> {
    let (repo, tag) = match image.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (image, "latest"),
    };
    if tag.ends_with(".debug") || tag.ends_with("-debug") {
        return Some(format!(
            "`{image}` is a debug image; use the release image in production"
        ));
    }
    if tag.contains('@') || repo.contains('@') {
        return None;
    }
    let parts: Vec<&str> = tag.split('-').next().unwrap_or(tag).split('.').collect();
    let pinned = parts.len() >= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if !pinned {
        return Some(format!(
            "`{image}` uses a rolling tag (`{tag}`); pin a full version like `1.5.21` so every device runs the same runtime"
        ));
    }
    None
}

/// Render deterministically as TOML, with a header saying who manages the file.
pub fn render(c: &SuperConfig) -> Result<String, String> {
    let body = toml::to_string(c).map_err(|e| format!("cannot render config.toml: {e}"))?;
    Ok(format!(
        "# Managed by edgefleet. Local edits are replaced on the next run.\n# IoT Edge 1.5 configuration: apply with `iotedge config apply`.\n\n{body}"
    ))
}

/// Parse TOML text into JSON-like data (for semantic comparison and for validating `src:` templates).
pub fn parse_toml(text: &str) -> Result<Value, String> {
    let t: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    serde_json::to_value(t).map_err(|e| e.to_string())
}

/// Do two config.toml texts mean the same thing (comments, order and whitespace don't count)?
pub fn same_meaning(a: &str, b: &str) -> bool {
    match (parse_toml(a), parse_toml(b)) {
        (Ok(x), Ok(y)) => json_eq_unordered(&x, &y),
        _ => false,
    }
}

fn json_eq_unordered(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).map(|w| json_eq_unordered(v, w)).unwrap_or(false))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_eq_unordered(v, w))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: Value) -> SuperConfig {
        from_value(&v).unwrap()
    }

    fn problems(v: Value) -> Vec<String> {
        match from_value(&v) {
            Ok(c) => validate(&c).iter().map(|p| p.to_string()).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    fn base() -> Value {
        json!({
            "hostname": "edge-001",
            "provisioning": {"source": "manual", "connection_string": "HostName=h.azure-devices.net;DeviceId=edge-001;SharedAccessKey=YWJj"},
            "edge_ca": {"cert": "file:///var/aziot/certs/edge-ca.pem", "pk": "file:///var/aziot/secrets/edge-ca.key.pem"},
            "agent": {"config": {"image": "mcr.microsoft.com/azureiotedge-agent:1.5.21"}}
        })
    }

    #[test]
    fn good_config_has_no_problems_and_renders_deterministically() {
        let c = cfg(base());
        assert!(validate(&c).is_empty());
        assert!(production_findings(&c).is_empty());
        let a = render(&c).unwrap();
        assert_eq!(a, render(&cfg(base())).unwrap());
        assert!(
            a.contains("[agent]\nname = \"edgeAgent\"\ntype = \"docker\""),
            "{a}"
        );
        assert!(a.contains("[edge_ca]"));
        // The rendered file parses back to the same config.
        let back = from_value(&parse_toml(&a).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn unknown_keys_are_errors_with_suggestions() {
        let mut v = base();
        v["hostnme"] = json!("x");
        let e = from_value(&v).unwrap_err();
        assert_eq!(e.key, "hostnme");
        assert!(e.message.contains("did you mean `hostname`"), "{e}");
        let mut v = base();
        v["edge_ca"] = json!({"crt": "file:///a", "pk": "file:///b"});
        let e = from_value(&v).unwrap_err();
        assert_eq!(e.key, "edge_ca.crt");
        assert!(e.message.contains("did you mean `cert`"), "{e}");
        assert!(e.message.contains("in [edge_ca]"), "{e}");
        let mut v = base();
        v["agent"]["config"]["imag"] = json!("x");
        let e = from_value(&v).unwrap_err();
        assert!(
            e.message.contains("did you mean `image`") || e.key.contains("image"),
            "{e}"
        );
    }

    #[test]
    fn rules_from_the_1_5_sources() {
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"provisioning": {"source": "Manual", "connection_string": "x"}}),
                "unknown variant `Manual`",
            ),
            (
                json!({"provisioning": {"source": "manual", "connection_string": "HostName=h;DeviceId=d"}}),
                "missing `SharedAccessKey=`",
            ),
            (
                json!({"provisioning": {"source": "manual", "iothub_hostname": "h", "device_id": "d", "authentication": {"method": "sas"}}}),
                "device_id_pk`: is required",
            ),
            (
                json!({"provisioning": {"source": "manual", "iothub_hostname": "h", "device_id": "d", "authentication": {"method": "x509", "identity_cert": "/var/c.pem", "identity_pk": "file:///k"}}}),
                "bare path",
            ),
            (
                json!({"provisioning": {"source": "dps", "id_scope": "0ne", "attestation": {"method": "tpm", "registration_id": "r"}}}),
                "global_endpoint`: is required",
            ),
            (
                json!({"parent_hostname": "p", "provisioning": {"source": "dps", "global_endpoint": "https://g", "id_scope": "0ne", "attestation": {"method": "tpm", "registration_id": "r"}}}),
                "nested mode",
            ),
            (
                json!({"provisioning": {"source": "dps", "global_endpoint": "https://g", "id_scope": "0ne", "attestation": {"method": "symmetric_key", "registration_id": "r", "symmetric_key": {"value": "not base64!"}}}}),
                "must be base64",
            ),
            (
                json!({"cloud_timeout_sec": 30, "provisioning": {"source": "none"}}),
                "at least 70",
            ),
            (
                json!({"auto_reprovisioning_mode": "dynamic", "provisioning": {"source": "none"}}),
                "case-sensitive",
            ),
            (
                json!({"trust_bundle_cert": "/etc/tb.pem", "provisioning": {"source": "none"}}),
                "bare path",
            ),
            (
                json!({"provisioning": {"source": "none"}, "agent": {"config": {"image": "i:1.5.1"}, "env": {"OptimizeForPerformance": false}}}),
                "must be a string",
            ),
            (
                json!({"provisioning": {"source": "none"}, "agent": {"env": {}}}),
                "agent.config`: is required",
            ),
            (
                json!({"provisioning": {"source": "none"}, "moby_runtime": {"uri": "unix:///var/run/docker.sock"}}),
                "moby_runtime.network`: is required",
            ),
            (
                json!({"provisioning": {"source": "none"}, "image_garbage_collection": {"cleanup_recurrence": "12h"}}),
                "whole number of days",
            ),
            (
                json!({"provisioning": {"source": "none"}, "image_garbage_collection": {"cleanup_time": "25:00"}}),
                "HH:MM",
            ),
            (
                json!({"provisioning": {"source": "none"}, "edge_ca": {"cert": "file:///c"}}),
                "edge_ca.pk`: is required",
            ),
            (
                json!({"provisioning": {"source": "none"}, "edge_ca": {"cert": "file:///c", "pk": "file:///k", "method": "est"}}),
                "mixes shapes",
            ),
            (
                json!({"provisioning": {"source": "none"}, "edge_ca": {"method": "self_signed", "expiry_days": 0}}),
                "greater than 0",
            ),
            (json!({"hostname": "x"}), "provisioning`: is required"),
        ];
        for (v, want) in cases {
            let ps = problems(v.clone());
            assert!(
                ps.iter().any(|p| p.contains(want)),
                "{v}: wanted {want:?}, got {ps:?}"
            );
        }
    }

    #[test]
    fn production_findings_are_reported() {
        let mut v = base();
        v["agent"]["config"]["image"] = json!("mcr.microsoft.com/azureiotedge-agent:1.5");
        v["agent"]["env"] = json!({"UpstreamProtocol": "amqpws"});
        v.as_object_mut().unwrap().remove("edge_ca");
        let f = production_findings(&cfg(v));
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(image_finding("x/azureiotedge-hub:1.5.21-linux-arm32v7.debug").is_some());
        assert!(image_finding("x/azureiotedge-hub:1.5.21").is_none());
        assert!(image_finding("x/azureiotedge-hub").is_some());
    }

    #[test]
    fn semantic_comparison_ignores_comments_order_and_whitespace() {
        let a = "hostname = \"a\"\n[provisioning]\nsource = \"none\"\n";
        let b = "# comment\n[provisioning]\n  source   = \"none\"\n\n";
        assert!(!same_meaning(a, b));
        let b = "hostname=\"a\" # c\n\n[provisioning]\nsource = 'none'\n";
        assert!(same_meaning(a, b));
    }
}
