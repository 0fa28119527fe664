//! Validation of a super config by the real IoT Edge 1.5 rules: what `iotedge config apply` would refuse
//! (provisioning shapes and methods, URLs and key locations, `cloud_timeout_sec`, `[edge_ca]` shapes,
//! certificate issuance and EST, TPM, renewal policies), so a bad config is refused before any device is
//! contacted; plus what the device silently IGNORES (keys of another provisioning source or `[edge_ca]`
//! shape, half an EST credential, a malformed subject), refused here because an ignored setting is a typo the
//! device never reports. The IoT Edge runtime tables are checked in `validate_runtime`.
//!
//! Each rule gives a `ConfigProblem` naming the key. It must not hold production-checklist advice (that is
//! `checklist`'s) nor deserialize the whole config. Pure: no I/O.

use serde_json::Value;

use super::model::{
    connection_string_parts, edge_ca_shape, Auth, AutoRenew, CertIssue, EdgeCa, EdgeCaShape,
    KeySource, SuperConfig,
};
use super::problems::{deserialize_at, p, Problems};
use super::validate_runtime::{self, check_url};
use super::values::{base64_error, file_path, key_location_error, policy_error, url_scheme};

/// A key location: a `file:` URL naming a local path, or a `pkcs11:` URI with a slot id or token.
fn check_key(key: &str, v: &str, out: &mut Problems) {
    if let Some(e) = key_location_error(v) {
        out.push(p(
            key,
            format!("`{v}` must be a `file:///...` or `pkcs11:` URI (a bare path is rejected by iotedge): {e}"),
        ));
    }
}

/// A setting the device reads past without a word.
pub(super) fn ignored(key: &str, why: &str, out: &mut Problems) {
    out.push(p(
        key,
        format!(
            "{why}; the device would silently ignore it (iotedge config apply does not report it)"
        ),
    ));
}

fn check_key_source(key: &str, ks: &KeySource, out: &mut Problems) {
    match (&ks.value, &ks.uri) {
        (Some(v), None) => {
            if base64_error(v).is_some() {
                out.push(p(&format!("{key}.value"), "must be base64"));
            }
        }
        (None, Some(u)) => check_key(&format!("{key}.uri"), u, out),
        (Some(_), Some(_)) => ignored(
            &format!("{key}.uri"),
            "give exactly one of `value` (base64) or `uri`: with both, `value` is used",
            out,
        ),
        (None, None) => out.push(p(
            key,
            "give exactly one of `value` (base64) or `uri` (file:///... or pkcs11:)",
        )),
    }
}

fn check_auto_renew(key: &str, a: &AutoRenew, out: &mut Problems) {
    for (k, v) in [("threshold", &a.threshold), ("retry", &a.retry)] {
        if let Some(e) = policy_error(v) {
            out.push(p(
                &format!("{key}.{k}"),
                format!("`{v}` {e} (e.g. \"80%\", \"90min\", \"3day\")"),
            ));
        }
    }
}

fn check_subject(key: &str, c: &CertIssue, out: &mut Problems) {
    if c.common_name.is_some() && c.subject.is_some() {
        ignored(
            &format!("{key}.subject"),
            "give `common_name` or `subject`, not both: only one is used",
            out,
        );
    }
}

/// Issuance options (`[edge_ca]` issued, an issued identity certificate, `[cert_issuance.local_ca.cert]`).
fn check_issue(key: &str, c: &CertIssue, out: &mut Problems) {
    let k = |f: &str| {
        if key.is_empty() {
            f.to_string()
        } else {
            format!("{key}.{f}")
        }
    };
    let method = match c.method.as_deref() {
        None => {
            out.push(p(
                &k("method"),
                "is required (est, local_ca or self_signed)",
            ));
            return;
        }
        Some(m @ ("est" | "local_ca" | "self_signed")) => m,
        Some(m) => {
            out.push(p(
                &k("method"),
                format!("unknown variant `{m}`, expected `est`, `local_ca` or `self_signed`"),
            ));
            return;
        }
    };
    if c.expiry_days == Some(0) {
        out.push(p(&k("expiry_days"), "must be greater than 0"));
    }
    check_subject(key, c, out);
    if let Some(a) = &c.auto_renew {
        check_auto_renew(&k("auto_renew"), a, out);
    }
    let est_keys = [
        ("url", c.url.is_some()),
        ("username", c.username.is_some()),
        ("password", c.password.is_some()),
        ("identity_cert", c.identity_cert.is_some()),
        ("identity_pk", c.identity_pk.is_some()),
        (
            "bootstrap_identity_cert",
            c.bootstrap_identity_cert.is_some(),
        ),
        ("bootstrap_identity_pk", c.bootstrap_identity_pk.is_some()),
    ];
    if method != "est" {
        for (f, present) in est_keys {
            if present {
                ignored(
                    &k(f),
                    &format!("only applies to method = \"est\" (not \"{method}\")"),
                    out,
                );
            }
        }
        return;
    }
    if let Some(u) = &c.url {
        check_url(&k("url"), u, out);
    }
    check_est_credentials(
        key,
        EstCredentials {
            username: c.username.as_deref(),
            password: c.password.as_deref(),
            identity_cert: c.identity_cert.as_deref(),
            identity_pk: c.identity_pk.as_deref(),
            bootstrap_identity_cert: c.bootstrap_identity_cert.as_deref(),
            bootstrap_identity_pk: c.bootstrap_identity_pk.as_deref(),
        },
        out,
    );
}

/// EST credentials, wherever they appear.
struct EstCredentials<'a> {
    username: Option<&'a str>,
    password: Option<&'a str>,
    identity_cert: Option<&'a str>,
    identity_pk: Option<&'a str>,
    bootstrap_identity_cert: Option<&'a str>,
    bootstrap_identity_pk: Option<&'a str>,
}

/// The device reads EST credentials as optional groups: a group that is incomplete or malformed is silently
/// dropped (no basic auth, no client certificate), so each group must be complete and well-formed.
fn check_est_credentials(key: &str, c: EstCredentials<'_>, out: &mut Problems) {
    let k = |f: &str| {
        if key.is_empty() {
            f.to_string()
        } else {
            format!("{key}.{f}")
        }
    };
    match (c.username, c.password) {
        (Some(_), None) => ignored(&k("username"), "needs `password` too", out),
        (None, Some(_)) => ignored(&k("password"), "needs `username` too", out),
        _ => {}
    }
    let pair = |cert: (&str, Option<&str>), pk: (&str, Option<&str>), out: &mut Problems| match (
        cert.1, pk.1,
    ) {
        (Some(c), Some(k2)) => {
            let mut local = Problems::new();
            check_url(&k(cert.0), c, &mut local);
            check_key(&k(pk.0), k2, &mut local);
            for prob in local {
                ignored(&prob.key, &prob.message, out);
            }
            true
        }
        (Some(_), None) => {
            ignored(&k(cert.0), &format!("needs `{}` too", pk.0), out);
            false
        }
        (None, Some(_)) => {
            ignored(&k(pk.0), &format!("needs `{}` too", cert.0), out);
            false
        }
        (None, None) => false,
    };
    let boot = pair(
        ("bootstrap_identity_cert", c.bootstrap_identity_cert),
        ("bootstrap_identity_pk", c.bootstrap_identity_pk),
        out,
    );
    let ident = pair(
        ("identity_cert", c.identity_cert),
        ("identity_pk", c.identity_pk),
        out,
    );
    if boot && ident {
        ignored(
            &k("identity_cert"),
            "give either the bootstrap identity or the EST identity: with both, the identity is not used",
            out,
        );
    }
}

/// An X.509 identity certificate: a URL with `identity_pk`, or a table of issuance options.
fn check_x509_identity(key: &str, a: &Auth, out: &mut Problems) {
    match &a.identity_cert {
        None => out.push(p(
            &format!("{key}.identity_cert"),
            "is required for method = \"x509\"",
        )),
        Some(Value::String(u)) => {
            check_url(&format!("{key}.identity_cert"), u, out);
            match &a.identity_pk {
                Some(k) => check_key(&format!("{key}.identity_pk"), k, out),
                None => out.push(p(
                    &format!("{key}.identity_pk"),
                    "is required for method = \"x509\"",
                )),
            }
        }
        Some(table @ Value::Object(_)) => {
            let at = format!("{key}.identity_cert");
            match deserialize_at::<CertIssue>(&at, table) {
                Ok(c) => check_issue(&at, &c, out),
                Err(e) => out.push(e),
            }
            if a.identity_pk.is_some() {
                ignored(
                    &format!("{key}.identity_pk"),
                    "only applies to a preloaded identity_cert (a URL), not issued ones",
                    out,
                );
            }
        }
        Some(other) => out.push(p(
            &format!("{key}.identity_cert"),
            format!("must be a URL or a table of issuance options (got {other})"),
        )),
    }
}

fn check_manual(c: &SuperConfig, out: &mut Problems) {
    let pr = &c.provisioning;
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
            if let Some(key) = parts.get("SharedAccessKey") {
                if base64_error(key).is_some() {
                    out.push(p(
                        "provisioning.connection_string",
                        "its SharedAccessKey is not base64",
                    ));
                }
            }
        }
        (None, Some(_), Some(_), Some(a)) => match a.method.as_str() {
            "sas" => {
                match &a.device_id_pk {
                    Some(ks) => check_key_source("provisioning.authentication.device_id_pk", ks, out),
                    None => out.push(p(
                        "provisioning.authentication.device_id_pk",
                        "is required for method = \"sas\"",
                    )),
                }
                for (f, present) in [
                    ("registration_id", a.registration_id.is_some()),
                    ("symmetric_key", a.symmetric_key.is_some()),
                    ("identity_cert", a.identity_cert.is_some()),
                    ("identity_pk", a.identity_pk.is_some()),
                ] {
                    if present {
                        ignored(&format!("provisioning.authentication.{f}"), "does not apply to method = \"sas\"", out);
                    }
                }
            }
            "x509" => {
                check_x509_identity("provisioning.authentication", a, out);
                for (f, present) in [
                    ("registration_id", a.registration_id.is_some()),
                    ("symmetric_key", a.symmetric_key.is_some()),
                    ("device_id_pk", a.device_id_pk.is_some()),
                ] {
                    if present {
                        ignored(&format!("provisioning.authentication.{f}"), "does not apply to method = \"x509\"", out);
                    }
                }
            }
            m => out.push(p(
                "provisioning.authentication.method",
                format!("unknown variant `{m}`, expected `sas` or `x509`"),
            )),
        },
        (Some(_), _, _, _) => ignored(
            "provisioning",
            "give either `connection_string` or `iothub_hostname` + `device_id` + `[provisioning.authentication]`, not both: with both, the connection string is used",
            out,
        ),
        (None, h, d, a) => {
            for (k, missing) in [
                ("iothub_hostname", h.is_none()),
                ("device_id", d.is_none()),
                ("authentication", a.is_none()),
            ] {
                if missing {
                    out.push(p(
                        &format!("provisioning.{k}"),
                        "is required for manual provisioning without a connection string",
                    ));
                }
            }
        }
    }
    for (k, present) in [
        ("global_endpoint", pr.global_endpoint.is_some()),
        ("id_scope", pr.id_scope.is_some()),
        ("attestation", pr.attestation.is_some()),
        ("payload", pr.payload.is_some()),
    ] {
        if present {
            ignored(
                &format!("provisioning.{k}"),
                "only applies to source = \"dps\"",
                out,
            );
        }
    }
}

fn check_dps(c: &SuperConfig, out: &mut Problems) {
    let pr = &c.provisioning;
    match &pr.global_endpoint {
        Some(u) => check_url("provisioning.global_endpoint", u, out),
        None => out.push(p(
            "provisioning.global_endpoint",
            "is required for source = \"dps\"",
        )),
    }
    if pr.id_scope.is_none() {
        out.push(p(
            "provisioning.id_scope",
            "is required for source = \"dps\"",
        ));
    }
    if let Some(pl) = &pr.payload {
        check_url("provisioning.payload.uri", &pl.uri, out);
    }
    match &pr.attestation {
        None => out.push(p(
            "provisioning.attestation",
            "is required for source = \"dps\"",
        )),
        Some(a) => {
            let key = "provisioning.attestation";
            let not_for = |f: &str, out: &mut Problems| {
                ignored(
                    &format!("{key}.{f}"),
                    &format!("does not apply to method = \"{}\"", a.method),
                    out,
                )
            };
            match a.method.as_str() {
                "symmetric_key" => {
                    if a.registration_id.is_none() {
                        out.push(p(
                            &format!("{key}.registration_id"),
                            "is required for method = \"symmetric_key\"",
                        ));
                    }
                    match &a.symmetric_key {
                        Some(ks) => check_key_source(&format!("{key}.symmetric_key"), ks, out),
                        None => out.push(p(
                            &format!("{key}.symmetric_key"),
                            "is required for method = \"symmetric_key\"",
                        )),
                    }
                    for (f, present) in [
                        ("device_id_pk", a.device_id_pk.is_some()),
                        ("identity_cert", a.identity_cert.is_some()),
                        ("identity_pk", a.identity_pk.is_some()),
                    ] {
                        if present {
                            not_for(f, out);
                        }
                    }
                }
                "x509" => {
                    check_x509_identity(key, a, out);
                    for (f, present) in [
                        ("device_id_pk", a.device_id_pk.is_some()),
                        ("symmetric_key", a.symmetric_key.is_some()),
                    ] {
                        if present {
                            not_for(f, out);
                        }
                    }
                }
                "tpm" => {
                    if a.registration_id.is_none() {
                        out.push(p(
                            &format!("{key}.registration_id"),
                            "is required for method = \"tpm\"",
                        ));
                    }
                    for (f, present) in [
                        ("device_id_pk", a.device_id_pk.is_some()),
                        ("symmetric_key", a.symmetric_key.is_some()),
                        ("identity_cert", a.identity_cert.is_some()),
                        ("identity_pk", a.identity_pk.is_some()),
                    ] {
                        if present {
                            not_for(f, out);
                        }
                    }
                }
                m => out.push(p(
                    &format!("{key}.method"),
                    format!("unknown variant `{m}`, expected `symmetric_key`, `x509` or `tpm`"),
                )),
            }
        }
    }
    if c.parent_hostname.is_some() || c.local_gateway_hostname.is_some() {
        out.push(p(
            if c.parent_hostname.is_some() { "parent_hostname" } else { "local_gateway_hostname" },
            "DPS provisioning is not supported in nested mode (remove parent_hostname or use manual provisioning)",
        ));
    }
    for (k, present) in [
        ("connection_string", pr.connection_string.is_some()),
        ("iothub_hostname", pr.iothub_hostname.is_some()),
        ("device_id", pr.device_id.is_some()),
        ("authentication", pr.authentication.is_some()),
    ] {
        if present {
            ignored(
                &format!("provisioning.{k}"),
                "only applies to source = \"manual\"",
                out,
            );
        }
    }
}

/// Validate by the real 1.5 rules (what `iotedge config apply` would refuse, and what it would ignore).
pub fn validate(c: &SuperConfig) -> Problems {
    let mut out = Problems::new();
    let pr = &c.provisioning;
    match pr.source.as_str() {
        "manual" => check_manual(c, &mut out),
        "dps" => check_dps(c, &mut out),
        "none" => {
            for (k, present) in [
                ("connection_string", pr.connection_string.is_some()),
                ("iothub_hostname", pr.iothub_hostname.is_some()),
                ("device_id", pr.device_id.is_some()),
                ("authentication", pr.authentication.is_some()),
                ("global_endpoint", pr.global_endpoint.is_some()),
                ("id_scope", pr.id_scope.is_some()),
                ("attestation", pr.attestation.is_some()),
                ("payload", pr.payload.is_some()),
            ] {
                if present {
                    ignored(
                        &format!("provisioning.{k}"),
                        "does not apply to source = \"none\"",
                        &mut out,
                    );
                }
            }
        }
        other => out.push(p(
            "provisioning.source",
            format!(
                "unknown variant `{other}`, expected one of `manual`, `dps`, `none` (lowercase)"
            ),
        )),
    }
    if c.parent_hostname.is_some() && c.local_gateway_hostname.is_some() {
        out.push(p(
            "local_gateway_hostname",
            "is another name for `parent_hostname`: give only one of them",
        ));
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
        check_url("trust_bundle_cert", t, &mut out);
    }
    if let Some(a) = &c.additional_info {
        check_url("additional_info", a, &mut out);
        match url_scheme(a).as_deref() {
            Some("file") if file_path(a).is_none() => out.push(p(
                "additional_info",
                format!("`{a}` does not name a local file (iotedge: additional_info is an invalid URI)"),
            )),
            Some("file") | None => {}
            Some(s) => out.push(p(
                "additional_info",
                format!("only `file:` URLs are supported (iotedge: unsupported additional_info scheme: {s})"),
            )),
        }
    }
    if let Some(ca) = &c.edge_ca {
        validate_edge_ca(ca, &mut out);
    }
    validate_identity_tables(c, &mut out);
    validate_runtime::validate(c, &mut out);
    validate_proxy(c, &mut out);
    out
}

/// `[agent.env] https_proxy` must be a proxy URL edgeAgent, Moby and the identity service can use (a device
/// accepts any string and then cannot reach the cloud), and the upstream protocol must be one a proxy carries.
/// Messages never contain the URL (it may hold a password).
fn validate_proxy(c: &SuperConfig, out: &mut Problems) {
    let Some(a) = &c.agent else { return };
    let Some(v) = a.env.get("https_proxy") else {
        return;
    };
    let Some(url) = v.as_str() else {
        return;
    };
    if let Err(e) = crate::iotedge::proxy::parse(url) {
        out.push(p("agent.env.https_proxy", e));
        return;
    }
    if let Some(up @ ("Amqp" | "Mqtt")) = a.env.get("UpstreamProtocol").and_then(|u| u.as_str()) {
        out.push(p(
            "agent.env.UpstreamProtocol",
            format!("`{up}` cannot go through the HTTPS proxy of `https_proxy`: use `{up}Ws` (iotedge_upstream_protocol)"),
        ));
    }
}

fn validate_identity_tables(c: &SuperConfig, out: &mut Problems) {
    if let Some(ci) = &c.cert_issuance {
        if let Some(est) = &ci.est {
            for (i, u) in est.trusted_certs.iter().flatten().enumerate() {
                check_url(&format!("cert_issuance.est.trusted_certs[{i}]"), u, out);
            }
            if let Some(a) = &est.auth {
                check_est_credentials(
                    "cert_issuance.est.auth",
                    EstCredentials {
                        username: a.username.as_deref(),
                        password: a.password.as_deref(),
                        identity_cert: a.identity_cert.as_deref(),
                        identity_pk: a.identity_pk.as_deref(),
                        bootstrap_identity_cert: a.bootstrap_identity_cert.as_deref(),
                        bootstrap_identity_pk: a.bootstrap_identity_pk.as_deref(),
                    },
                    out,
                );
            }
            if let Some(a) = &est.identity_auto_renew {
                check_auto_renew("cert_issuance.est.identity_auto_renew", a, out);
            }
            for (id, u) in est.urls.iter().flatten() {
                check_url(&format!("cert_issuance.est.urls.{id}"), u, out);
            }
        }
        if let Some(lc) = &ci.local_ca {
            match &lc.cert {
                Value::String(u) => {
                    check_url("cert_issuance.local_ca.cert", u, out);
                    match &lc.pk {
                        Some(k) => check_key("cert_issuance.local_ca.pk", k, out),
                        None => out.push(p(
                            "cert_issuance.local_ca.pk",
                            "is required with a preloaded local CA `cert`",
                        )),
                    }
                }
                table @ Value::Object(_) => {
                    let at = "cert_issuance.local_ca.cert";
                    match deserialize_at::<CertIssue>(at, table) {
                        Ok(ci) => check_issue(at, &ci, out),
                        Err(e) => out.push(e),
                    }
                    if lc.pk.is_some() {
                        ignored(
                            "cert_issuance.local_ca.pk",
                            "only applies to a preloaded local CA `cert` (a URL)",
                            out,
                        );
                    }
                }
                other => out.push(p(
                    "cert_issuance.local_ca.cert",
                    format!("must be a URL or a table of issuance options (got {other})"),
                )),
            }
        }
    }
    for (id, k) in c.preloaded_keys.iter().flatten() {
        check_key(&format!("preloaded_keys.{id}"), k, out);
    }
    for (id, v) in c.preloaded_certs.iter().flatten() {
        match v {
            Value::String(u) => check_url(&format!("preloaded_certs.{id}"), u, out),
            Value::Array(ids) if ids.iter().all(Value::is_string) => {}
            other => out.push(p(
                &format!("preloaded_certs.{id}"),
                format!("must be a URL or a list of other certificate IDs (got {other})"),
            )),
        }
    }
    if let Some(i) = c.tpm.as_ref().and_then(|t| t.auth_key_index) {
        if i > 0x7F_FF_FF {
            out.push(p(
                "tpm.auth_key_index",
                format!("{i:#x} is not a TPM persistent index: the largest is 0x7F_FF_FF"),
            ));
        }
    }
}

fn validate_edge_ca(ca: &EdgeCa, out: &mut Problems) {
    let issue = ca.issue();
    let issued_only = [
        ("url", issue.url.is_some()),
        ("expiry_days", issue.expiry_days.is_some()),
        ("username", issue.username.is_some()),
        ("password", issue.password.is_some()),
        ("identity_cert", issue.identity_cert.is_some()),
        ("identity_pk", issue.identity_pk.is_some()),
        (
            "bootstrap_identity_cert",
            issue.bootstrap_identity_cert.is_some(),
        ),
        (
            "bootstrap_identity_pk",
            issue.bootstrap_identity_pk.is_some(),
        ),
    ];
    match edge_ca_shape(Some(ca)) {
        None if ca == &EdgeCa::default() => out.push(p(
            "edge_ca",
            "is empty: give `cert` + `pk` (preloaded), or `method = ...` (issued), or `auto_generated_edge_ca_expiry_days` (quickstart), or remove [edge_ca]",
        )),
        None => ignored(
            "edge_ca",
            "mixes shapes: use either `cert` + `pk` (preloaded), or `method = ...` (issued), or `auto_generated_edge_ca_expiry_days` (quickstart); the device uses one and drops the others",
            out,
        ),
        Some(EdgeCaShape::Preloaded) => {
            match &ca.cert {
                Some(u) => check_url("edge_ca.cert", u, out),
                None => out.push(p("edge_ca.cert", "is required together with `pk`")),
            }
            match &ca.pk {
                Some(u) => check_url("edge_ca.pk", u, out),
                None => out.push(p("edge_ca.pk", "is required together with `cert`")),
            }
            let others = [
                ("common_name", issue.common_name.is_some()),
                ("subject", issue.subject.is_some()),
                ("auto_renew", issue.auto_renew.is_some()),
            ];
            for (f, present) in issued_only.into_iter().chain(others) {
                if present {
                    ignored(&format!("edge_ca.{f}"), "does not apply to a preloaded Edge CA (`cert` + `pk`)", out);
                }
            }
        }
        Some(EdgeCaShape::Issued) => check_issue("edge_ca", &issue, out),
        Some(EdgeCaShape::Quickstart) => {
            check_subject("edge_ca", &issue, out);
            if let Some(a) = &issue.auto_renew {
                check_auto_renew("edge_ca.auto_renew", a, out);
            }
            for (f, present) in issued_only {
                if present {
                    ignored(&format!("edge_ca.{f}"), "does not apply to a quickstart Edge CA", out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::iotedge::config::testing::problems;
    use serde_json::{json, Value};

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
                json!({"provisioning": {"source": "none"}, "agent": {"name": "edgeAgent", "type": "docker", "config": {"image": "i:1.5.1"}, "env": {"OptimizeForPerformance": false}}}),
                "must be a string",
            ),
            (
                json!({"provisioning": {"source": "none"}, "agent": {"name": "edgeAgent", "type": "docker", "env": {}}}),
                "agent.config`: is required",
            ),
            (
                json!({"provisioning": {"source": "none"}, "agent": {"config": {"image": "i:1.5.1"}}}),
                "agent.name`: is required",
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
            (
                json!({"provisioning": {"source": "none"}, "edge_ca": {"method": "est", "username": "u"}}),
                "silently ignore",
            ),
            (
                json!({"provisioning": {"source": "none"}, "watchdog": {"max_retries": -1}}),
                "watchdog.max_retries",
            ),
            (
                json!({"provisioning": {"source": "none"}, "tpm": {"auth_key_index": 8_388_608}}),
                "0x7F_FF_FF",
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
}
