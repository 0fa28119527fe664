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
//! This module is an independent oracle: it must NOT import anything from `crate::iotedge` (edgefleet's own,
//! stricter validator) so that a bug in one cannot hide the same bug in the other.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Unexpected};
use serde::Deserialize;

/// A URL as `url::Url` accepts it (enough of the WHATWG rules for config values: scheme required, special
/// schemes need a host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url(pub String);

impl Url {
    /// Parse like `url::Url::parse`, with its error texts for the cases that matter here.
    pub fn parse(s: &str) -> Result<Url, String> {
        let s = s.trim();
        let Some(colon) = s.find(':') else {
            return Err("relative URL without a base".into());
        };
        let scheme = &s[..colon];
        let valid_scheme = scheme
            .chars()
            .next()
            .map(|c| c.is_ascii_alphabetic())
            .unwrap_or(false)
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.');
        if !valid_scheme {
            return Err("relative URL without a base".into());
        }
        let rest = &s[colon + 1..];
        let scheme_l = scheme.to_ascii_lowercase();
        if matches!(scheme_l.as_str(), "http" | "https" | "ws" | "wss" | "ftp") {
            let after = rest.trim_start_matches(['/', '\\']);
            let host = after
                .split(['/', '?', '#'])
                .next()
                .unwrap_or("")
                .rsplit('@')
                .next()
                .unwrap_or("");
            let host_only = if host.starts_with('[') {
                host
            } else {
                host.split(':').next().unwrap_or("")
            };
            if host_only.is_empty() {
                return Err("empty host".into());
            }
            if let Some(port) = host
                .strip_prefix(host_only)
                .and_then(|p| p.strip_prefix(':'))
            {
                if !port.is_empty() && port.parse::<u16>().is_err() {
                    return Err("invalid port number".into());
                }
            }
        }
        Ok(Url(format!("{scheme_l}:{rest}")))
    }

    /// The scheme, lowercased.
    pub fn scheme(&self) -> &str {
        self.0.split(':').next().unwrap_or("")
    }

    /// For a `file:` URL, the path (`file:///a/b` -> `/a/b`, percent-decoding `%20` style escapes).
    pub fn file_path(&self) -> Option<String> {
        if self.scheme() != "file" {
            return None;
        }
        let rest = &self.0[5..];
        let path = if let Some(r) = rest.strip_prefix("//") {
            // file://host/path: only an empty host or localhost names a local path.
            let (host, path) = match r.find('/') {
                Some(i) => (&r[..i], &r[i..]),
                None => (r, "/"),
            };
            if !host.is_empty() && host != "localhost" {
                return None;
            }
            path
        } else {
            rest
        };
        if !path.starts_with('/') {
            return None;
        }
        Some(percent_decode(path))
    }

    /// The URL as written (normalised scheme).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Url {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Url;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string representing an URL")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Url, E> {
                Url::parse(s).map_err(|e| E::custom(format!("{e}: {s:?}")))
            }
        }
        d.deserialize_str(V)
    }
}

/// A key location (`aziot_keys_common::PreloadedKeyLocation`): `file:` or `pkcs11:` URIs only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLocation {
    /// A key file.
    Filesystem {
        /// Absolute path on the device.
        path: String,
    },
    /// A PKCS#11 object.
    Pkcs11 {
        /// The URI as written.
        uri: String,
    },
}

impl KeyLocation {
    /// Parse like `PreloadedKeyLocation::from_str`, with its error texts.
    pub fn parse(s: &str) -> Result<KeyLocation, String> {
        let Some(i) = s.find(':') else {
            return Err("missing scheme".into());
        };
        match &s[..i] {
            "file" => {
                let u = Url::parse(s)?;
                let path = u
                    .file_path()
                    .ok_or_else(|| "cannot convert to file path".to_string())?;
                Ok(KeyLocation::Filesystem { path })
            }
            "pkcs11" => Ok(KeyLocation::Pkcs11 { uri: s.to_string() }),
            _ => Err("unrecognized scheme".into()),
        }
    }

    /// The location as a URI string (as written to keyd's config).
    pub fn uri(&self) -> String {
        match self {
            KeyLocation::Filesystem { path } => format!("file://{path}"),
            KeyLocation::Pkcs11 { uri } => uri.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for KeyLocation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyLocation, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = KeyLocation;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("preloaded key location URI")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<KeyLocation, E> {
                KeyLocation::parse(s).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

fn default_cloud_timeout() -> u64 {
    70
}
fn default_cloud_retries() -> u32 {
    1
}

fn deserialize_cloud_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v: u64 = Deserialize::deserialize(d)?;
    if v < 70 {
        return Err(de::Error::custom(
            "cloud_timeout_sec must be at least 70 seconds",
        ));
    }
    Ok(v)
}

fn deserialize_expiry_days<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let v: Option<u32> = Deserialize::deserialize(d)?;
    if v == Some(0) {
        return Err(de::Error::custom("expiry_days must be greater than 0"));
    }
    Ok(v)
}

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

/// The identity-service part of the super config.
#[derive(Debug, Deserialize)]
pub struct AziotConfig {
    /// `hostname`; the machine hostname when absent.
    pub hostname: Option<String>,
    /// `parent_hostname` (alias `local_gateway_hostname`).
    #[serde(alias = "local_gateway_hostname")]
    pub parent_hostname: Option<String>,
    /// `cloud_timeout_sec` (>= 70).
    #[serde(
        default = "default_cloud_timeout",
        deserialize_with = "deserialize_cloud_timeout"
    )]
    pub cloud_timeout_sec: u64,
    /// `cloud_retries`.
    #[serde(default = "default_cloud_retries")]
    pub cloud_retries: u32,
    /// `[provisioning]` (required).
    pub provisioning: Provisioning,
    /// `[localid]`.
    pub localid: Option<toml::Value>,
    /// `[aziot_keys]`.
    #[serde(default)]
    pub aziot_keys: BTreeMap<String, String>,
    /// `[preloaded_keys]`.
    #[serde(default)]
    pub preloaded_keys: BTreeMap<String, KeyLocation>,
    /// `[cert_issuance]`.
    #[serde(default)]
    pub cert_issuance: CertIssuance,
    /// `[preloaded_certs]`.
    #[serde(default)]
    pub preloaded_certs: BTreeMap<String, PreloadedCert>,
}

/// `[provisioning]`.
#[derive(Debug, Deserialize)]
pub struct Provisioning {
    /// The provisioning source (flattened tagged enum).
    #[serde(flatten)]
    pub provisioning: ProvisioningType,
}

/// `[provisioning] source = ...`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum ProvisioningType {
    /// `source = "manual"`.
    Manual {
        /// Connection string or explicit identity.
        #[serde(flatten)]
        inner: ManualProvisioning,
    },
    /// `source = "dps"`.
    Dps {
        /// `global_endpoint`.
        global_endpoint: Url,
        /// `id_scope`.
        id_scope: String,
        /// `[provisioning.attestation]`.
        attestation: DpsAttestationMethod,
        /// `[provisioning.payload]`.
        payload: Option<toml::Value>,
    },
    /// `source = "none"`.
    None,
}

/// Manual provisioning: a connection string or an explicit identity.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ManualProvisioning {
    /// `connection_string = "HostName=..;DeviceId=..;SharedAccessKey=.."` (validated while deserializing, so a
    /// bad one only yields "data did not match any variant of untagged enum ManualProvisioning", as on a device).
    ConnectionString {
        /// The validated connection string.
        connection_string: ConnectionString,
    },
    /// `iothub_hostname`, `device_id`, `[provisioning.authentication]`.
    Explicit {
        /// `iothub_hostname`.
        iothub_hostname: String,
        /// `device_id`.
        device_id: String,
        /// `[provisioning.authentication]`.
        authentication: ManualAuthMethod,
    },
}

/// A connection string whose parts were validated.
#[derive(Debug, Clone)]
pub struct ConnectionString {
    /// `HostName`.
    pub hostname: String,
    /// `DeviceId`.
    pub device_id: String,
    /// The decoded `SharedAccessKey`.
    pub key: Vec<u8>,
}

/// Parse a connection string like aziotctl's `parse_manual_connection_string`.
pub fn parse_connection_string(s: &str) -> Result<ConnectionString, String> {
    let mut hostname = None;
    let mut device_id = None;
    let mut key = None;
    for section in s.split(';') {
        let mut parts = section.split('=');
        match parts.next().unwrap_or("") {
            "HostName" => hostname = parts.next(),
            "DeviceId" => device_id = parts.next(),
            // A base64 key may end with '=' padding: keep everything after the first '='.
            "SharedAccessKey" => key = section.split_once('=').map(|(_, v)| v),
            _ => {}
        }
    }
    let hostname = hostname.ok_or(r#"required parameter "HostName" is missing"#)?;
    let device_id = device_id.ok_or(r#"required parameter "DeviceId" is missing"#)?;
    let key = key.ok_or(r#"required parameter "SharedAccessKey" is missing"#)?;
    let key = decode_base64(key).map_err(|e| {
        format!(
            r#"connection string's "SharedAccessKey" parameter could not be decoded from base64: {e}"#
        )
    })?;
    Ok(ConnectionString {
        hostname: hostname.to_string(),
        device_id: device_id.to_string(),
        key,
    })
}

/// Decode base64 like the device does: standard alphabet, padding optional.
fn decode_base64(s: &str) -> Result<Vec<u8>, String> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine;
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(s).map_err(|e| e.to_string())
}

impl<'de> Deserialize<'de> for ConnectionString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ConnectionString, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ConnectionString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("connection string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ConnectionString, E> {
                parse_connection_string(s).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// `[provisioning.authentication]` for manual provisioning.
#[derive(Debug, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum ManualAuthMethod {
    /// `method = "sas"`.
    #[serde(rename = "sas")]
    SharedPrivateKey {
        /// `device_id_pk = { value = ".." }` or `{ uri = ".." }`.
        device_id_pk: SymmetricKey,
    },
    /// `method = "x509"`.
    X509 {
        /// Preloaded or issued identity certificate.
        #[serde(flatten)]
        identity: X509Identity,
    },
}

/// `[provisioning.attestation]` for DPS.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum DpsAttestationMethod {
    /// `method = "symmetric_key"`.
    #[serde(rename = "symmetric_key")]
    SymmetricKey {
        /// `registration_id`.
        registration_id: String,
        /// `symmetric_key`.
        symmetric_key: SymmetricKey,
    },
    /// `method = "x509"`.
    X509 {
        /// `registration_id` (optional: the cert CN is used).
        registration_id: Option<String>,
        /// Preloaded or issued identity certificate.
        #[serde(flatten)]
        identity: X509Identity,
    },
    /// `method = "tpm"`.
    Tpm {
        /// `registration_id`.
        registration_id: String,
    },
}

/// A symmetric key: inline base64 or a key location.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SymmetricKey {
    /// `{ value = "<base64>" }`.
    Inline {
        /// The decoded key.
        #[serde(deserialize_with = "deserialize_base64")]
        value: Vec<u8>,
    },
    /// `{ uri = "file:///..." }`.
    Preloaded {
        /// Where the key is.
        uri: KeyLocation,
    },
}

fn deserialize_base64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct V;
    impl de::Visitor<'_> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("base64-encoded byte array")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<u8>, E> {
            decode_base64(s).map_err(E::custom)
        }
    }
    d.deserialize_str(V)
}

/// An X.509 identity: preloaded files or issued by a CA.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum X509Identity {
    /// `identity_cert = { method = "est", ... }`.
    Issued {
        /// Issuance options.
        identity_cert: CertIssuanceOptions,
    },
    /// `identity_cert = "file:///..."`, `identity_pk = "file:///..."`.
    Preloaded {
        /// The certificate URL.
        identity_cert: Url,
        /// The private key location.
        identity_pk: KeyLocation,
    },
}

/// `[cert_issuance]`.
#[derive(Debug, Default, Deserialize)]
pub struct CertIssuance {
    /// `[cert_issuance.est]`.
    pub est: Option<Est>,
    /// `[cert_issuance.local_ca]`.
    pub local_ca: Option<LocalCa>,
}

/// `[cert_issuance.est]`.
#[derive(Debug, Deserialize)]
pub struct Est {
    /// `trusted_certs`.
    #[serde(default)]
    pub trusted_certs: Vec<Url>,
    /// `[cert_issuance.est.auth]`.
    pub auth: Option<toml::Value>,
    /// `[cert_issuance.est.urls]`.
    pub urls: BTreeMap<String, Url>,
}

/// `[cert_issuance.local_ca]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum LocalCa {
    /// Issued.
    Issued {
        /// Issuance options.
        cert: CertIssuanceOptions,
    },
    /// Preloaded.
    Preloaded {
        /// Certificate URL.
        cert: Url,
        /// Key location.
        pk: KeyLocation,
    },
}

/// A preloaded certificate: one URL or a list of other IDs.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PreloadedCert {
    /// A URL.
    Uri(Url),
    /// A bundle of other preloaded certificate IDs.
    Ids(Vec<String>),
}

/// Certificate issuance options (`method`, `expiry_days`, `common_name`, `subject`, `auto_renew`).
#[derive(Debug, Clone, Deserialize)]
pub struct CertIssuanceOptions {
    /// `common_name`.
    pub common_name: Option<String>,
    /// `expiry_days` (> 0).
    #[serde(default, deserialize_with = "deserialize_expiry_days")]
    pub expiry_days: Option<u32>,
    /// `subject`.
    pub subject: Option<toml::Value>,
    /// `[... .auto_renew]`.
    pub auto_renew: Option<AutoRenewConfig>,
    /// `method` (flattened tagged enum).
    #[serde(flatten)]
    pub method: CertIssuanceMethod,
}

/// `auto_renew` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct AutoRenewConfig {
    /// `rotate_key`.
    #[serde(default)]
    pub rotate_key: bool,
    /// `threshold` (e.g. `"80%"`).
    pub threshold: Option<String>,
    /// `retry` (e.g. `"4%"`).
    pub retry: Option<String>,
}

/// `method = "est" | "local_ca" | "self_signed"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum CertIssuanceMethod {
    /// `est`.
    #[serde(rename = "est")]
    Est {
        /// `url`.
        url: Option<Url>,
    },
    /// `local_ca`.
    LocalCa,
    /// `self_signed`.
    SelfSigned,
}

/// `[edge_ca]`: one of three shapes; any mismatch is "data did not match any variant of untagged enum EdgeCa".
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum EdgeCa {
    /// `method = "est" | "local_ca" | "self_signed"` plus its fields.
    Issued {
        /// Issuance options.
        #[serde(flatten)]
        cert: CertIssuanceOptions,
    },
    /// `cert = "file:///..."`, `pk = "file:///..."`.
    Preloaded {
        /// Certificate (full chain) URL.
        cert: Url,
        /// Private key URL.
        pk: Url,
    },
    /// `auto_generated_edge_ca_expiry_days = N`.
    Quickstart {
        /// Validity of the generated CA.
        auto_generated_edge_ca_expiry_days: u32,
        /// `auto_renew`.
        auto_renew: Option<AutoRenewConfig>,
        /// `subject`.
        subject: Option<toml::Value>,
    },
}

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

struct HumantimeVisitor;

impl de::Visitor<'_> for HumantimeVisitor {
    type Value = Duration;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
    }
}

fn deserialize_humantime<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_str(HumantimeVisitor)
}

fn deserialize_recurrence<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    const DAY_NANOS: u128 = 86_400 * 1_000_000_000;
    let r = d.deserialize_str(HumantimeVisitor)?;
    if r.as_nanos() % DAY_NANOS != 0 {
        return Err(de::Error::invalid_value(
            Unexpected::Other(&format!("{r:?}")),
            &"duration that is a multiple of days",
        ));
    }
    Ok(r)
}

fn deserialize_hhmm<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = String::deserialize(d)?;
    parse_hhmm(&v).map_err(de::Error::custom)
}

/// Parse `HH:MM` like chrono's `NaiveTime::parse_from_str(v, "%H:%M")`, with chrono's error texts.
pub fn parse_hhmm(v: &str) -> Result<u64, &'static str> {
    fn num(s: &[u8], i: &mut usize) -> Result<u32, &'static str> {
        if *i >= s.len() {
            return Err("premature end of input");
        }
        let start = *i;
        while *i < s.len() && *i - start < 2 && s[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i == start {
            return Err("input contains invalid characters");
        }
        std::str::from_utf8(&s[start..*i])
            .ok()
            .and_then(|x| x.parse().ok())
            .ok_or("input contains invalid characters")
    }
    let s = v.as_bytes();
    let mut i = 0;
    let h = num(s, &mut i)?;
    if i >= s.len() {
        return Err("premature end of input");
    }
    if s[i] != b':' {
        return Err("input contains invalid characters");
    }
    i += 1;
    let m = num(s, &mut i)?;
    if h > 23 || m > 59 {
        return Err("input is out of range");
    }
    if i != s.len() {
        return Err("trailing input");
    }
    Ok(u64::from(h * 60 + m))
}

/// Parse a duration like `humantime::parse_duration` (`1d`, `7d`, `12h 30m`, `10s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("value was empty".into());
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: u128 = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!("expected number at {start}"));
        }
        let n: u128 = s[start..i]
            .parse()
            .map_err(|_| "number is too large".to_string())?;
        let us = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[us..i];
        let nanos: u128 = match unit {
            "nsec" | "ns" => 1,
            "usec" | "us" => 1_000,
            "msec" | "ms" => 1_000_000,
            "seconds" | "second" | "sec" | "s" => 1_000_000_000,
            "minutes" | "minute" | "min" | "m" => 60_000_000_000,
            "hours" | "hour" | "hr" | "h" => 3_600_000_000_000,
            "days" | "day" | "d" => 86_400_000_000_000,
            "weeks" | "week" | "w" => 604_800_000_000_000,
            "months" | "month" | "M" => 2_630_016_000_000_000,
            "years" | "year" | "y" => 31_557_600_000_000_000,
            "" => return Err("time unit needed, for example 10sec or 10ms".into()),
            other => {
                return Err(format!(
                    "unknown time unit {other:?}, supported units: ns, us, ms, sec, min, hours, days, weeks, months, years (and few variations)"
                ))
            }
        };
        total = total
            .checked_add(n.checked_mul(nanos).ok_or("number is too large")?)
            .ok_or("number is too large")?;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| "number is too large")?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
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

    #[test]
    fn urls_and_key_locations() {
        assert_eq!(
            Url::parse("/var/aziot/x.pem").unwrap_err(),
            "relative URL without a base"
        );
        assert_eq!(
            Url::parse("file:///var/aziot/certs/a%20b.pem")
                .unwrap()
                .file_path()
                .unwrap(),
            "/var/aziot/certs/a b.pem"
        );
        assert_eq!(Url::parse("https://").unwrap_err(), "empty host");
        assert_eq!(KeyLocation::parse("/k.pem").unwrap_err(), "missing scheme");
        assert_eq!(
            KeyLocation::parse("https://vault/k").unwrap_err(),
            "unrecognized scheme"
        );
        assert!(matches!(
            KeyLocation::parse("pkcs11:token=t;object=o").unwrap(),
            KeyLocation::Pkcs11 { .. }
        ));
    }

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(
            parse_duration("1h 30m").unwrap(),
            Duration::from_secs(5_400)
        );
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("3x")
            .unwrap_err()
            .contains("unknown time unit"));
        assert_eq!(parse_hhmm("00:00"), Ok(0));
        assert_eq!(parse_hhmm("23:59"), Ok(23 * 60 + 59));
        assert_eq!(parse_hhmm("9:05"), Ok(9 * 60 + 5));
        assert_eq!(parse_hhmm("24:00"), Err("input is out of range"));
        assert_eq!(parse_hhmm("12"), Err("premature end of input"));
        assert_eq!(parse_hhmm("12:30:00"), Err("trailing input"));
        assert_eq!(parse_hhmm("noon"), Err("input contains invalid characters"));
    }

    #[test]
    fn connection_string_parts() {
        assert_eq!(
            parse_connection_string("HostName=h;DeviceId=d").unwrap_err(),
            r#"required parameter "SharedAccessKey" is missing"#
        );
        let cs = parse_connection_string("HostName=h;DeviceId=d;SharedAccessKey=QUJD").unwrap();
        assert_eq!(cs.key, b"ABC");
        let cs = parse_connection_string("HostName=h;DeviceId=d;SharedAccessKey=QUI=").unwrap();
        assert_eq!(cs.key, b"AB");
    }
}
