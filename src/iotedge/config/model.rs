//! The IoT Edge 1.5 super config's typed model: the top level and the identity-service tables (provisioning,
//! certificate issuance, keys and certificates, TPM, `[edge_ca]`); the IoT Edge runtime tables are in
//! `runtime`. One struct per table, field order = rendering order.
//!
//! Owns the shape of `/etc/aziot/config.toml` as serde types with the device's integer types (`u64`
//! `cloud_timeout_sec`, `u32` `cloud_retries`/`expiry_days`/`auth_key_index`, `usize` request limits) and
//! every table `deny_unknown_fields`, so a typo is an error rather than a key the device silently ignores;
//! [`fields_of`] (each table's keys, for "did you mean"; kept in sync with the structs by a test), and the
//! model-level readings of a value ([`edge_ca_shape`], [`connection_string_parts`]). Values the device accepts
//! in more than one shape (a certificate given as a URL or as issuance options, a preloaded certificate as a URL
//! or a list of IDs, `max_retries` as a word or a number) are kept as JSON values and judged by `validate`.
//! It must not validate values or word problems (see `validate` and `problems`). Pure: no I/O.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::runtime::{
    Agent, AgentConfig, Connect, ContentTrust, ImageGc, IotedgeMaxRequests, Listen, MobyRuntime,
    RegistryAuth, Watchdog,
};

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
    /// X.509 identity certificate: a URL (preloaded) or a table of issuance options ([`CertIssue`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_cert: Option<Value>,
    /// X.509 identity key (file: or pkcs11: URI), for a preloaded certificate.
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
    /// dps: payload file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
}

/// `[provisioning.payload]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// URL of the JSON payload (not read at apply time).
    pub uri: String,
}

/// Certificate issuance options: `[edge_ca]` (issued shape), an issued X.509 identity
/// (`[provisioning.*.identity_cert]`) and `[cert_issuance.local_ca.cert]`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CertIssue {
    /// est | local_ca | self_signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// est: EST server URL (else `[cert_issuance.est.urls]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Validity in days (> 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_days: Option<u32>,
    /// Subject common name (or `subject`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    /// est: basic auth user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// est: basic auth password (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// est: existing EST identity certificate URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_cert: Option<String>,
    /// est: existing EST identity key location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_pk: Option<String>,
    /// est: bootstrap identity certificate URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_identity_cert: Option<String>,
    /// est: bootstrap identity key location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_identity_pk: Option<String>,
    /// Subject as a table of RDNs (or `common_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<IndexMap<String, String>>,
    /// Renewal policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_renew: Option<AutoRenew>,
}

/// `[edge_ca]`: preloaded (`cert` + `pk`), issued (`method` + the [`CertIssue`] options), or quickstart
/// (`auto_generated_edge_ca_expiry_days`, optionally with `auto_renew` and a subject).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeCa {
    /// preloaded: certificate chain URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    /// preloaded: private key URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pk: Option<String>,
    /// quickstart: validity of the generated CA (a u32; 0 is accepted by the device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_generated_edge_ca_expiry_days: Option<u32>,
    /// issued: est | local_ca | self_signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// issued (est): EST server URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// issued: validity in days (> 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_days: Option<u32>,
    /// issued or quickstart: subject common name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    /// issued (est): basic auth user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// issued (est): basic auth password (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// issued (est): EST identity certificate URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_cert: Option<String>,
    /// issued (est): EST identity key location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_pk: Option<String>,
    /// issued (est): bootstrap identity certificate URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_identity_cert: Option<String>,
    /// issued (est): bootstrap identity key location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_identity_pk: Option<String>,
    /// issued or quickstart: subject as a table of RDNs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<IndexMap<String, String>>,
    /// issued or quickstart: renewal policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_renew: Option<AutoRenew>,
}

impl EdgeCa {
    /// The issuance options of this table (the issued shape's keys).
    pub fn issue(&self) -> CertIssue {
        CertIssue {
            method: self.method.clone(),
            url: self.url.clone(),
            expiry_days: self.expiry_days,
            common_name: self.common_name.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            identity_cert: self.identity_cert.clone(),
            identity_pk: self.identity_pk.clone(),
            bootstrap_identity_cert: self.bootstrap_identity_cert.clone(),
            bootstrap_identity_pk: self.bootstrap_identity_pk.clone(),
            subject: self.subject.clone(),
            auto_renew: self.auto_renew.clone(),
        }
    }
}

/// `auto_renew` / `identity_auto_renew`: all three keys required.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AutoRenew {
    /// Rotate the key on renewal.
    pub rotate_key: bool,
    /// When to renew: `N%` (1..99), `Nmin` or `Nday`.
    pub threshold: String,
    /// Retry period, same units.
    pub retry: String,
}

/// `[cert_issuance]`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CertIssuance {
    /// `[cert_issuance.est]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub est: Option<Est>,
    /// `[cert_issuance.local_ca]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_ca: Option<LocalCa>,
}

/// `[cert_issuance.est]`: every key optional.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Est {
    /// Root CA URLs trusted for the EST server's TLS certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_certs: Option<Vec<String>>,
    /// `[cert_issuance.est.auth]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<EstAuth>,
    /// `[cert_issuance.est.identity_auto_renew]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_auto_renew: Option<AutoRenew>,
    /// `[cert_issuance.est.urls]`: certificate ID (or `default`) -> EST URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<IndexMap<String, String>>,
}

/// `[cert_issuance.est.auth]`: basic and/or X.509 (bootstrap identity or identity).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EstAuth {
    /// Basic auth user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Basic auth password (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Bootstrap identity certificate URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_identity_cert: Option<String>,
    /// Bootstrap identity key location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_identity_pk: Option<String>,
    /// EST identity certificate URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_cert: Option<String>,
    /// EST identity key location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_pk: Option<String>,
}

/// `[cert_issuance.local_ca]`: `cert` (URL) + `pk` (key location), or `[cert_issuance.local_ca.cert]`
/// issuance options.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LocalCa {
    /// A URL (preloaded) or a table of issuance options ([`CertIssue`]).
    pub cert: Value,
    /// Key location (preloaded only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pk: Option<String>,
}

/// `[tpm]`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tpm {
    /// TCTI loader string (default `device`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcti: Option<String>,
    /// Persistent index of the auth key (at most 0x7F_FF_FF; default 0x00_01_00).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_key_index: Option<u32>,
    /// `[tpm.hierarchy_authorization]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hierarchy_authorization: Option<TpmAuth>,
}

/// `[tpm.hierarchy_authorization]`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TpmAuth {
    /// Endorsement hierarchy password (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endorsement: Option<String>,
    /// Owner hierarchy password (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// `[localid]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LocalId {
    /// Domain of local identities.
    pub domain: String,
}

/// `[aziot_max_requests]`: simultaneous requests per user for each identity service; all four required.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
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
    /// The identity service's name for `parent_hostname` (an alias: give one of the two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_gateway_hostname: Option<String>,
    /// Trust bundle URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_bundle_cert: Option<String>,
    /// Dynamic | AlwaysOnStartup | OnErrorOnly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_reprovisioning_mode: Option<String>,
    /// Seconds, >= 70.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_timeout_sec: Option<u64>,
    /// Retries for cloud operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_retries: Option<u32>,
    /// Allow modules elevated docker permissions (checklist: keep false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_elevated_docker_permissions: Option<bool>,
    /// `file:` URL of a TOML table of extra device information (read by apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_info: Option<String>,
    /// Path of an IoT Edge 1.1 master encryption key to import (read by apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_master_encryption_key: Option<String>,
    /// `[provisioning]` (the only required table).
    pub provisioning: Provisioning,
    /// `[localid]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localid: Option<LocalId>,
    /// `[aziot_max_requests]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aziot_max_requests: Option<AziotMaxRequests>,
    /// `[iotedge_max_requests]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iotedge_max_requests: Option<IotedgeMaxRequests>,
    /// `[edge_ca]` (absent: quickstart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_ca: Option<EdgeCa>,
    /// `[cert_issuance]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_issuance: Option<CertIssuance>,
    /// `[moby_runtime]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moby_runtime: Option<MobyRuntime>,
    /// `[agent]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
    /// `[connect]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<Connect>,
    /// `[listen]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<Listen>,
    /// `[watchdog]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchdog: Option<Watchdog>,
    /// `[image_garbage_collection]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_garbage_collection: Option<ImageGc>,
    /// `[tpm]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<Tpm>,
    /// `[aziot_keys]`: string values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aziot_keys: Option<IndexMap<String, String>>,
    /// `[preloaded_keys]`: key ID -> key location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preloaded_keys: Option<IndexMap<String, String>>,
    /// `[preloaded_certs]`: cert ID -> URL, or a list of other cert IDs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preloaded_certs: Option<IndexMap<String, Value>>,
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

/// Which shape an `[edge_ca]` has (None: no recognisable shape, or several).
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
        _ => None,
    }
}

/// Parse a connection string into its parts as the device does: sections split on `;`, each on `=` (the
/// value is the text up to the next `=`, so base64 padding is dropped).
pub fn connection_string_parts(cs: &str) -> std::collections::BTreeMap<String, String> {
    cs.split(';')
        .filter_map(|section| {
            let mut parts = section.split('=');
            let key = parts.next()?;
            parts.next().map(|v| (key.to_string(), v.to_string()))
        })
        .collect()
}

/// The fields each table accepts (for "did you mean" on unknown keys).
pub(super) fn fields_of(path: &str) -> &'static [&'static str] {
    const CERT_ISSUE: &[&str] = &[
        "method",
        "url",
        "expiry_days",
        "common_name",
        "username",
        "password",
        "identity_cert",
        "identity_pk",
        "bootstrap_identity_cert",
        "bootstrap_identity_pk",
        "subject",
        "auto_renew",
    ];
    match path {
        "" => &[
            "hostname",
            "parent_hostname",
            "local_gateway_hostname",
            "trust_bundle_cert",
            "auto_reprovisioning_mode",
            "cloud_timeout_sec",
            "cloud_retries",
            "allow_elevated_docker_permissions",
            "additional_info",
            "imported_master_encryption_key",
            "provisioning",
            "localid",
            "aziot_max_requests",
            "iotedge_max_requests",
            "edge_ca",
            "cert_issuance",
            "moby_runtime",
            "agent",
            "connect",
            "listen",
            "watchdog",
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
        "provisioning.payload" => &["uri"],
        "edge_ca" => &[
            "cert",
            "pk",
            "auto_generated_edge_ca_expiry_days",
            "method",
            "url",
            "expiry_days",
            "common_name",
            "username",
            "password",
            "identity_cert",
            "identity_pk",
            "bootstrap_identity_cert",
            "bootstrap_identity_pk",
            "subject",
            "auto_renew",
        ],
        p if p.ends_with("auto_renew") => &["rotate_key", "threshold", "retry"],
        "cert_issuance" => &["est", "local_ca"],
        "cert_issuance.est" => &["trusted_certs", "auth", "identity_auto_renew", "urls"],
        "cert_issuance.est.auth" => &[
            "username",
            "password",
            "bootstrap_identity_cert",
            "bootstrap_identity_pk",
            "identity_cert",
            "identity_pk",
        ],
        "cert_issuance.local_ca" => &["cert", "pk"],
        "tpm" => &["tcti", "auth_key_index", "hierarchy_authorization"],
        "tpm.hierarchy_authorization" => &["endorsement", "owner"],
        "localid" => &["domain"],
        "aziot_max_requests" => &["keyd", "certd", "tpmd", "identityd"],
        p if p.ends_with("identity_cert") || p.ends_with("local_ca.cert") => CERT_ISSUE,
        p => super::runtime::fields_of(p),
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
            "provisioning.payload",
            "edge_ca",
            "edge_ca.auto_renew",
            "cert_issuance",
            "cert_issuance.est",
            "cert_issuance.est.auth",
            "cert_issuance.est.identity_auto_renew",
            "cert_issuance.local_ca",
            "tpm",
            "tpm.hierarchy_authorization",
            "localid",
            "aziot_max_requests",
            "agent",
            "agent.config",
            "agent.config.auth",
            "moby_runtime",
            "moby_runtime.content_trust",
            "image_garbage_collection",
            "connect",
            "listen",
            "watchdog",
            "iotedge_max_requests",
        ];
        for table in tables {
            let mut v = base();
            v["provisioning"]["authentication"] = json!({"method": "sas"});
            v["provisioning"]["payload"] = json!({"uri": "file:///p.json"});
            v["edge_ca"]["auto_renew"] =
                json!({"rotate_key": true, "threshold": "80%", "retry": "4%"});
            v["agent"]["config"]["auth"] =
                json!({"serveraddress": "r", "username": "u", "password": "p"});
            v["cert_issuance"] = json!({"est": {"auth": {}, "identity_auto_renew": {"rotate_key": true, "threshold": "80%", "retry": "4%"}}, "local_ca": {"cert": "file:///c"}});
            v["tpm"] = json!({"hierarchy_authorization": {}});
            v["localid"] = json!({"domain": "d"});
            v["aziot_max_requests"] = json!({"keyd": 1, "certd": 1, "tpmd": 1, "identityd": 1});
            v["iotedge_max_requests"] = json!({"management": 1, "workload": 1});
            v["moby_runtime"] = json!({"uri": "unix:///s", "network": "n", "content_trust": {}});
            v["connect"] = json!({"workload_uri": "unix:///w", "management_uri": "unix:///m"});
            v["listen"] = json!({"workload_uri": "unix:///w", "management_uri": "unix:///m"});
            for t in ["image_garbage_collection", "watchdog"] {
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
        assert_eq!(fields_of("listen")[..2], fields_of("connect")[..]);
        assert_eq!(
            fields_of("provisioning.attestation"),
            fields_of("provisioning.authentication")
        );
        assert_eq!(
            fields_of("provisioning.attestation.identity_cert")[..],
            fields_of("edge_ca")[3..]
        );
    }
}
