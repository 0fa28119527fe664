//! The identity-service tables of the super config, as aziotctl's serde types: `hostname`,
//! `parent_hostname`, `cloud_timeout_sec`, `[provisioning]` (manual / DPS / none, with their attestation and
//! authentication methods), `[aziot_keys]`, `[preloaded_keys]`, `[cert_issuance]`, `[preloaded_certs]` and
//! `[edge_ca]`.
//!
//! The serde shapes (tagged and untagged enums, no `deny_unknown_fields`) are what produce the device's error
//! texts; value rules come from `values`. It must NOT import anything from `crate::iotedge`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::values::{
    default_cloud_retries, default_cloud_timeout, deserialize_base64, deserialize_cloud_timeout,
    deserialize_expiry_days, ConnectionString, KeyLocation, Url,
};

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
