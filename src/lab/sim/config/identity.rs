//! The identity-service part of the super config, as aziotctl-common's serde types (release 1.5): `hostname`,
//! `parent_hostname` (alias `local_gateway_hostname`), `cloud_timeout_sec`, `cloud_retries`,
//! `[aziot_max_requests]`, `[provisioning]` (manual / DPS / none, with their attestation and authentication
//! methods), `[localid]`, `[aziot_keys]`, `[preloaded_keys]`, `[cert_issuance]` (EST and local CA),
//! `[preloaded_certs]` and `[tpm]`; plus the certificate issuance options shared with `[edge_ca]`.
//!
//! The serde shapes (tagged and untagged enums, flattened `Option`s that swallow errors, no
//! `deny_unknown_fields`) are what produce the device's verdicts and error texts; value rules come from
//! `values`. It must NOT import anything from `crate::iotedge`.

use std::collections::BTreeMap;
use std::ffi::CString;

use serde::Deserialize;

use super::values::{
    default_auth_key_index, default_cloud_retries, default_cloud_timeout, deserialize_base64,
    deserialize_cloud_timeout, deserialize_expiry_days, deserialize_persistent_index,
    deserialize_url_check_https, deserialize_url_map_check_https, ConnectionString, KeyLocation,
    Policy, Url,
};

/// The identity-service part of the super config (flattened into the whole config, as on the device).
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
    /// `[aziot_max_requests]`.
    pub aziot_max_requests: Option<AziotMaxRequests>,
    /// `[provisioning]` (required).
    pub provisioning: Provisioning,
    /// `[localid]`.
    pub localid: Option<LocalId>,
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
    /// `[tpm]`.
    #[serde(default)]
    pub tpm: TpmConfig,
}

/// `[aziot_max_requests]`: per-service request limits, all four required.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct AziotMaxRequests {
    /// keyd.
    pub keyd: usize,
    /// certd.
    pub certd: usize,
    /// tpmd.
    pub tpmd: usize,
    /// identityd.
    pub identityd: usize,
}

/// `[localid]`.
#[derive(Debug, Clone, Deserialize)]
pub struct LocalId {
    /// `domain`.
    pub domain: String,
}

/// `[tpm]` (aziot-tpmd's shared config).
#[derive(Debug, Clone, Deserialize)]
pub struct TpmConfig {
    /// `tcti` (default `device`).
    #[serde(default = "default_tcti")]
    pub tcti: CString,
    /// `auth_key_index` (a TPM persistent index, at most 0x7F_FF_FF).
    #[serde(
        default = "default_auth_key_index",
        deserialize_with = "deserialize_persistent_index"
    )]
    pub auth_key_index: u32,
    /// `[tpm.hierarchy_authorization]`.
    #[serde(default)]
    pub hierarchy_authorization: TpmAuthConfig,
}

impl Default for TpmConfig {
    fn default() -> Self {
        TpmConfig {
            tcti: default_tcti(),
            auth_key_index: default_auth_key_index(),
            hierarchy_authorization: TpmAuthConfig::default(),
        }
    }
}

fn default_tcti() -> CString {
    CString::new("device").unwrap_or_default()
}

/// `[tpm.hierarchy_authorization]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TpmAuthConfig {
    /// `endorsement`.
    #[serde(default)]
    pub endorsement: CString,
    /// `owner`.
    #[serde(default)]
    pub owner: CString,
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
        payload: Option<Payload>,
    },
    /// `source = "none"`.
    None,
}

/// `[provisioning.payload]`.
#[derive(Debug, Deserialize)]
pub struct Payload {
    /// The JSON payload file (not read at apply time).
    pub uri: Url,
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
#[allow(clippy::large_enum_variant)]
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

/// An X.509 identity: issued by a CA, or preloaded files.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum X509Identity {
    /// `[... .identity_cert] method = "est" | "local_ca" | "self_signed", ...`.
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

/// `[cert_issuance.est]`: every key optional.
#[derive(Debug, Deserialize)]
pub struct Est {
    /// `trusted_certs`.
    #[serde(default)]
    pub trusted_certs: Vec<Url>,
    /// `[cert_issuance.est.auth]`.
    pub auth: Option<EstAuth>,
    /// `[cert_issuance.est.identity_auto_renew]`.
    #[serde(default)]
    pub identity_auto_renew: AutoRenewConfig,
    /// `[cert_issuance.est.urls]` (a plain-HTTP URL is accepted with a warning).
    #[serde(default, deserialize_with = "deserialize_url_map_check_https")]
    pub urls: BTreeMap<String, Url>,
}

/// EST authentication: basic and/or X.509 (each flattened `Option`: a malformed one is silently `None`).
#[derive(Debug, Clone, Deserialize)]
pub struct EstAuth {
    /// `username` + `password`.
    #[serde(flatten)]
    pub basic: Option<EstAuthBasic>,
    /// `bootstrap_identity_*` or `identity_*`.
    #[serde(flatten)]
    pub x509: Option<EstAuthX509>,
}

/// EST basic authentication.
#[derive(Debug, Clone, Deserialize)]
pub struct EstAuthBasic {
    /// `username`.
    pub username: String,
    /// `password`.
    pub password: String,
}

/// EST TLS client authentication.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EstAuthX509 {
    /// A bootstrap identity that requests the EST identity.
    BootstrapIdentity {
        /// Certificate URL.
        bootstrap_identity_cert: Url,
        /// Key location.
        bootstrap_identity_pk: KeyLocation,
    },
    /// An existing EST identity.
    Identity {
        /// Certificate URL.
        identity_cert: Url,
        /// Key location.
        identity_pk: KeyLocation,
    },
}

/// `[cert_issuance.local_ca]`.
#[allow(clippy::large_enum_variant)]
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

/// Certificate issuance options (`method` and its fields, `expiry_days`, `common_name` or `subject`,
/// `auto_renew`).
#[derive(Debug, Clone, Deserialize)]
pub struct CertIssuanceOptions {
    /// `method` (flattened tagged enum).
    #[serde(flatten)]
    pub method: CertIssuanceMethod,
    /// `expiry_days` (> 0).
    #[serde(default, deserialize_with = "deserialize_expiry_days")]
    pub expiry_days: Option<u32>,
    /// `common_name = ".."` or `subject = { .. }` (a flattened `Option`: a malformed one is `None`).
    #[serde(flatten)]
    pub subject: Option<CertSubject>,
    /// `[... .auto_renew]`.
    pub auto_renew: Option<AutoRenewConfig>,
}

/// A certificate subject.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertSubject {
    /// `common_name = ".."`.
    CommonName(String),
    /// `subject = { CN = "..", O = ".." }`.
    Subject(BTreeMap<String, String>),
}

/// `auto_renew` settings (`cert_renewal::AutoRenewConfig`).
#[derive(Debug, Clone, Deserialize)]
pub struct AutoRenewConfig {
    /// `rotate_key` (required).
    pub rotate_key: bool,
    /// `threshold` and `retry`.
    #[serde(flatten)]
    pub policy: RenewalPolicy,
}

impl Default for AutoRenewConfig {
    fn default() -> Self {
        AutoRenewConfig {
            rotate_key: true,
            policy: RenewalPolicy {
                threshold: Policy::Percentage(80),
                retry: Policy::Percentage(4),
            },
        }
    }
}

/// `threshold` / `retry`.
#[derive(Debug, Clone, Deserialize)]
pub struct RenewalPolicy {
    /// When to renew.
    pub threshold: Policy,
    /// How often to retry.
    pub retry: Policy,
}

/// `method = "est" | "local_ca" | "self_signed"`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum CertIssuanceMethod {
    /// `est`.
    #[serde(rename = "est")]
    Est {
        /// `url` (a plain-HTTP URL is accepted with a warning).
        #[serde(default, deserialize_with = "deserialize_url_check_https")]
        url: Option<Url>,
        /// Authentication (flattened `Option`).
        #[serde(flatten)]
        auth: Option<EstAuth>,
    },
    /// `local_ca`.
    LocalCa,
    /// `self_signed`.
    SelfSigned,
}
