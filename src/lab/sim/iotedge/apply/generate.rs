//! What `iotedge config apply` writes for each service, from a parsed super config: the keyd, certd,
//! identityd, tpmd and edged `config.d/00-super.toml` tables (as aziotctl's `apply::run` plus iotedge's
//! additions build them: preloaded keys and certificates, issuance options for the Edge CA and identities, EST
//! settings, principals, the agent spec, sockets, watchdog, request limits), and the inline device-id key.
//!
//! Pure: it builds tables, `apply` writes them. It must not import a program.

use std::collections::BTreeMap;

use crate::lab::sim::config::{
    self, CertIssuanceMethod, CertSubject, DpsAttestationMethod, EdgeCa, EstAuth, EstAuthX509,
    LocalCa, ManualAuthMethod, ManualProvisioning, MaxRetries, MobyNetwork, PreloadedCert,
    ProvisioningType, SuperConfig, SymmetricKey, X509Identity,
};

/// The generated per-service configs.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// keyd config.
    pub keyd: toml::Table,
    /// certd config.
    pub certd: toml::Table,
    /// identityd config.
    pub identityd: toml::Table,
    /// tpmd config.
    pub tpmd: toml::Table,
    /// edged config.
    pub edged: toml::Table,
    /// Bytes of an inline device-id symmetric key, to be written to `/var/secrets/aziot/keyd/device-id`.
    pub device_id_key: Option<Vec<u8>>,
}

/// Uids of the service users, for the `[[principal]]` entries.
#[derive(Debug, Clone, Copy)]
pub struct Uids {
    /// aziotcs.
    pub aziotcs: u32,
    /// aziotid.
    pub aziotid: u32,
    /// iotedge.
    pub iotedge: u32,
}

pub(super) fn s(v: &str) -> toml::Value {
    toml::Value::String(v.to_string())
}

fn int(v: usize) -> toml::Value {
    toml::Value::Integer(i64::try_from(v).unwrap_or(i64::MAX))
}

fn arr(v: &[&str]) -> toml::Value {
    toml::Value::Array(v.iter().map(|x| s(x)).collect())
}

fn principal(uid: u32, key: &str, ids: &[String]) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert("uid".into(), toml::Value::Integer(i64::from(uid)));
    t.insert(
        key.into(),
        toml::Value::Array(ids.iter().map(|x| s(x)).collect()),
    );
    toml::Value::Table(t)
}

fn auto_renew_table(a: &config::AutoRenewConfig) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert("rotate_key".into(), toml::Value::Boolean(a.rotate_key));
    t.insert("threshold".into(), s(&a.policy.threshold.to_string()));
    t.insert("retry".into(), s(&a.policy.retry.to_string()));
    toml::Value::Table(t)
}

fn subject_into(t: &mut toml::Table, subject: Option<&CertSubject>, default_cn: Option<String>) {
    match subject {
        Some(CertSubject::CommonName(cn)) => {
            t.insert("common_name".into(), s(cn));
        }
        Some(CertSubject::Subject(fields)) => {
            let f = fields.iter().map(|(k, v)| (k.clone(), s(v))).collect();
            t.insert("subject".into(), toml::Value::Table(f));
        }
        None => {
            if let Some(cn) = default_cn {
                t.insert("common_name".into(), s(&cn));
            }
        }
    }
}

/// EST authentication as certd's config names it: basic auth inline, X.509 credentials by ID (their files
/// become preloaded certs and keys).
fn est_auth_into(
    t: &mut toml::Table,
    auth: &EstAuth,
    id: &str,
    keys: &mut Vec<(String, String)>,
    certs: &mut Vec<(String, toml::Value)>,
) {
    if let Some(b) = &auth.basic {
        t.insert("username".into(), s(&b.username));
        t.insert("password".into(), s(&b.password));
    }
    match &auth.x509 {
        Some(EstAuthX509::BootstrapIdentity {
            bootstrap_identity_cert,
            bootstrap_identity_pk,
        }) => {
            let boot = format!("{id}-bootstrap");
            certs.push((boot.clone(), s(bootstrap_identity_cert.as_str())));
            keys.push((boot.clone(), bootstrap_identity_pk.uri()));
            t.insert("bootstrap_identity_cert".into(), s(&boot));
            t.insert("bootstrap_identity_pk".into(), s(&boot));
            t.insert("identity_cert".into(), s(&format!("{id}-id")));
            t.insert("identity_pk".into(), s(&format!("{id}-id")));
        }
        Some(EstAuthX509::Identity {
            identity_cert,
            identity_pk,
        }) => {
            let ident = format!("{id}-id");
            certs.push((ident.clone(), s(identity_cert.as_str())));
            keys.push((ident.clone(), identity_pk.uri()));
            t.insert("identity_cert".into(), s(&ident));
            t.insert("identity_pk".into(), s(&ident));
        }
        None => {}
    }
}

fn cert_options(
    opts: &config::CertIssuanceOptions,
    default_cn: Option<String>,
    id: &str,
    keys: &mut Vec<(String, String)>,
    certs: &mut Vec<(String, toml::Value)>,
) -> toml::Table {
    let mut t = toml::Table::new();
    let method = match &opts.method {
        CertIssuanceMethod::Est { .. } => "est",
        CertIssuanceMethod::LocalCa => "local_ca",
        CertIssuanceMethod::SelfSigned => "self_signed",
    };
    t.insert("method".into(), s(method));
    subject_into(&mut t, opts.subject.as_ref(), default_cn);
    if let Some(d) = opts.expiry_days {
        t.insert("expiry_days".into(), toml::Value::Integer(i64::from(d)));
    }
    if let CertIssuanceMethod::Est { url, auth } = &opts.method {
        if let Some(u) = url {
            t.insert("url".into(), s(u.as_str()));
        }
        if let Some(a) = auth {
            est_auth_into(&mut t, a, id, keys, certs);
        }
    }
    t
}

/// Turn a parsed super config into the five service configs (aziotctl `apply::run` + iotedge's additions).
pub fn generate(
    cfg: &SuperConfig,
    raw: &toml::Table,
    additional_info: &BTreeMap<String, String>,
    hostname: &str,
    uids: Uids,
) -> Generated {
    const DEVICE_ID: &str = "device-id";
    const EDGE_CA: &str = "aziot-edged-ca";
    let mut preloaded_keys: Vec<(String, String)> = cfg
        .aziot
        .preloaded_keys
        .iter()
        .map(|(k, v)| (k.clone(), v.uri()))
        .collect();
    let mut preloaded_certs: Vec<(String, toml::Value)> = cfg
        .aziot
        .preloaded_certs
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                match v {
                    PreloadedCert::Uri(u) => s(u.as_str()),
                    PreloadedCert::Ids(ids) => {
                        toml::Value::Array(ids.iter().map(|x| s(x)).collect())
                    }
                },
            )
        })
        .collect();
    let mut issuance: Vec<(String, toml::Table)> = Vec::new();
    let mut aziotid_keys = vec!["aziot_identityd_master_id".to_string()];
    let mut aziotid_certs: Vec<String> = Vec::new();
    let mut aziotcs_keys: Vec<String> = Vec::new();
    let mut device_id_key = None;

    let mut prov = toml::Table::new();
    let mut inline_or_uri = |k: &SymmetricKey, keys: &mut Vec<(String, String)>| match k {
        SymmetricKey::Inline { value } => {
            device_id_key = Some(value.clone());
            keys.push((
                DEVICE_ID.into(),
                "file:///var/secrets/aziot/keyd/device-id".into(),
            ));
        }
        SymmetricKey::Preloaded { uri } => keys.push((DEVICE_ID.into(), uri.uri())),
    };
    match &cfg.aziot.provisioning.provisioning {
        ProvisioningType::Manual { inner } => {
            prov.insert("source".into(), s("manual"));
            match inner {
                ManualProvisioning::ConnectionString { connection_string } => {
                    prov.insert("iothub_hostname".into(), s(&connection_string.hostname));
                    prov.insert("device_id".into(), s(&connection_string.device_id));
                    inline_or_uri(
                        &SymmetricKey::Inline {
                            value: connection_string.key.clone(),
                        },
                        &mut preloaded_keys,
                    );
                    aziotid_keys.push(DEVICE_ID.into());
                    let mut a = toml::Table::new();
                    a.insert("method".into(), s("sas"));
                    a.insert("device_id_pk".into(), s(DEVICE_ID));
                    prov.insert("authentication".into(), toml::Value::Table(a));
                }
                ManualProvisioning::Explicit {
                    iothub_hostname,
                    device_id,
                    authentication,
                } => {
                    prov.insert("iothub_hostname".into(), s(iothub_hostname));
                    prov.insert("device_id".into(), s(device_id));
                    let mut a = toml::Table::new();
                    match authentication {
                        ManualAuthMethod::SharedPrivateKey { device_id_pk } => {
                            inline_or_uri(device_id_pk, &mut preloaded_keys);
                            aziotid_keys.push(DEVICE_ID.into());
                            a.insert("method".into(), s("sas"));
                            a.insert("device_id_pk".into(), s(DEVICE_ID));
                        }
                        ManualAuthMethod::X509 { identity } => {
                            x509_identity(
                                identity,
                                &mut preloaded_keys,
                                &mut preloaded_certs,
                                &mut issuance,
                                &mut aziotid_certs,
                            );
                            aziotid_keys.push(DEVICE_ID.into());
                            a.insert("method".into(), s("x509"));
                            a.insert("identity_cert".into(), s(DEVICE_ID));
                            a.insert("identity_pk".into(), s(DEVICE_ID));
                        }
                    }
                    prov.insert("authentication".into(), toml::Value::Table(a));
                }
            }
        }
        ProvisioningType::Dps {
            global_endpoint,
            id_scope,
            attestation,
            ..
        } => {
            prov.insert("source".into(), s("dps"));
            prov.insert("global_endpoint".into(), s(global_endpoint.as_str()));
            prov.insert("scope_id".into(), s(id_scope));
            let mut a = toml::Table::new();
            match attestation {
                DpsAttestationMethod::SymmetricKey {
                    registration_id,
                    symmetric_key,
                } => {
                    inline_or_uri(symmetric_key, &mut preloaded_keys);
                    aziotid_keys.push(DEVICE_ID.into());
                    a.insert("method".into(), s("symmetric_key"));
                    a.insert("registration_id".into(), s(registration_id));
                    a.insert("symmetric_key".into(), s(DEVICE_ID));
                }
                DpsAttestationMethod::X509 {
                    registration_id,
                    identity,
                } => {
                    x509_identity(
                        identity,
                        &mut preloaded_keys,
                        &mut preloaded_certs,
                        &mut issuance,
                        &mut aziotid_certs,
                    );
                    aziotid_keys.push(DEVICE_ID.into());
                    a.insert("method".into(), s("x509"));
                    if let Some(r) = registration_id {
                        a.insert("registration_id".into(), s(r));
                    }
                    a.insert("identity_cert".into(), s(DEVICE_ID));
                    a.insert("identity_pk".into(), s(DEVICE_ID));
                }
                DpsAttestationMethod::Tpm { registration_id } => {
                    a.insert("method".into(), s("tpm"));
                    a.insert("registration_id".into(), s(registration_id));
                }
            }
            prov.insert("attestation".into(), toml::Value::Table(a));
        }
        ProvisioningType::None => {
            prov.insert("source".into(), s("none"));
        }
    }
    if let Some(p) = &cfg.aziot.parent_hostname {
        prov.insert("local_gateway_hostname".into(), s(p));
    }

    // Local CA.
    let mut local_ca_table = None;
    if let Some(lc) = &cfg.aziot.cert_issuance.local_ca {
        let mut t = toml::Table::new();
        t.insert("cert".into(), s("local-ca"));
        t.insert("pk".into(), s("local-ca"));
        match lc {
            LocalCa::Issued { cert } => {
                let t = cert_options(
                    cert,
                    None,
                    "local-ca",
                    &mut preloaded_keys,
                    &mut preloaded_certs,
                );
                issuance.push(("local-ca".into(), t))
            }
            LocalCa::Preloaded { cert, pk } => {
                preloaded_certs.push(("local-ca".into(), s(cert.as_str())));
                preloaded_keys.push(("local-ca".into(), pk.uri()));
            }
        }
        aziotcs_keys.push("local-ca".into());
        local_ca_table = Some(t);
    }

    // Edge CA.
    let default_cn = format!("iotedged workload ca {hostname}");
    let mut edge_ca = toml::Table::new();
    let mut iotedge_certs = vec![EDGE_CA.to_string(), "aziot-edged/module/*".to_string()];
    let mut iotedge_keys = vec![
        EDGE_CA.to_string(),
        "iotedge_master_encryption_id".to_string(),
    ];
    match &cfg.edge_ca {
        None | Some(EdgeCa::Quickstart { .. }) => {
            let (days, subject) = match &cfg.edge_ca {
                Some(EdgeCa::Quickstart {
                    auto_generated_edge_ca_expiry_days,
                    subject,
                    ..
                }) => (*auto_generated_edge_ca_expiry_days, subject.as_ref()),
                _ => (90, None),
            };
            let mut t = toml::Table::new();
            t.insert("method".into(), s("self_signed"));
            subject_into(&mut t, subject, Some(default_cn.clone()));
            t.insert("expiry_days".into(), toml::Value::Integer(i64::from(days)));
            issuance.push((EDGE_CA.into(), t.clone()));
            issuance.push((format!("{EDGE_CA}-temp"), t));
            aziotcs_keys.push(EDGE_CA.into());
            aziotcs_keys.push(format!("{EDGE_CA}-temp"));
            iotedge_certs.push(format!("{EDGE_CA}-temp"));
            let renew = match &cfg.edge_ca {
                Some(EdgeCa::Quickstart { auto_renew, .. }) => auto_renew.clone(),
                _ => config::AutoRenewConfig::default(),
            };
            if renew.rotate_key {
                iotedge_keys.push(format!("{EDGE_CA}-temp"));
            }
            edge_ca.insert("auto_renew".into(), auto_renew_table(&renew));
        }
        Some(EdgeCa::Issued { cert }) => {
            let t = cert_options(
                cert,
                Some(default_cn),
                EDGE_CA,
                &mut preloaded_keys,
                &mut preloaded_certs,
            );
            issuance.push((EDGE_CA.into(), t.clone()));
            issuance.push((format!("{EDGE_CA}-temp"), t));
            aziotcs_keys.push(EDGE_CA.into());
            iotedge_certs.push(format!("{EDGE_CA}-temp"));
            let renew = cert.auto_renew.clone().unwrap_or_default();
            if renew.rotate_key {
                iotedge_keys.push(format!("{EDGE_CA}-temp"));
            }
            edge_ca.insert("cert".into(), s(EDGE_CA));
            edge_ca.insert("key".into(), s(EDGE_CA));
            edge_ca.insert("auto_renew".into(), auto_renew_table(&renew));
        }
        Some(EdgeCa::Preloaded { cert, pk }) => {
            preloaded_keys.push((EDGE_CA.into(), pk.as_str().to_string()));
            preloaded_certs.push((EDGE_CA.into(), s(cert.as_str())));
            edge_ca.insert("cert".into(), s(EDGE_CA));
            edge_ca.insert("key".into(), s(EDGE_CA));
        }
    }
    if let Some(ct) = cfg
        .moby_runtime
        .content_trust
        .as_ref()
        .and_then(|c| c.ca_certs.as_ref())
    {
        for (registry, url) in ct {
            preloaded_certs.push((format!("content-trust-{registry}"), s(url.as_str())));
        }
    }
    let mut bundle = vec![EDGE_CA];
    if let Some(tb) = &cfg.trust_bundle_cert {
        preloaded_certs.push(("trust-bundle-user".into(), s(tb.as_str())));
        bundle.push("trust-bundle-user");
    }
    preloaded_certs.push(("aziot-edged-trust-bundle".into(), arr(&bundle)));

    // certd.
    let mut certd = toml::Table::new();
    certd.insert("homedir_path".into(), s("/var/lib/aziot/certd"));
    let max = cfg.aziot.aziot_max_requests;
    if let Some(m) = max {
        certd.insert("max_requests".into(), int(m.certd));
    }
    let mut ci = toml::Table::new();
    if let Some(t) = local_ca_table {
        ci.insert("local_ca".into(), toml::Value::Table(t));
    }
    if let Some(est) = &cfg.aziot.cert_issuance.est {
        let mut t = toml::Table::new();
        let mut trusted = Vec::new();
        for (i, u) in est.trusted_certs.iter().enumerate() {
            let id = format!("est-server-ca-{}", i + 1);
            preloaded_certs.push((id.clone(), s(u.as_str())));
            trusted.push(s(&id));
        }
        if !trusted.is_empty() {
            t.insert("trusted_certs".into(), toml::Value::Array(trusted));
        }
        if let Some(a) = &est.auth {
            est_auth_into(&mut t, a, "est", &mut preloaded_keys, &mut preloaded_certs);
            if a.x509.is_some() {
                aziotcs_keys.push("est-id".into());
            }
        }
        t.insert(
            "identity_auto_renew".into(),
            auto_renew_table(&est.identity_auto_renew),
        );
        if !est.urls.is_empty() {
            let urls = est
                .urls
                .iter()
                .map(|(k, u)| (k.clone(), s(u.as_str())))
                .collect();
            t.insert("urls".into(), toml::Value::Table(urls));
        }
        ci.insert("est".into(), toml::Value::Table(t));
    }
    for (k, t) in issuance {
        ci.insert(k, toml::Value::Table(t));
    }
    certd.insert("cert_issuance".into(), toml::Value::Table(ci));
    let mut pc = toml::Table::new();
    for (k, v) in preloaded_certs {
        pc.insert(k, v);
    }
    certd.insert("preloaded_certs".into(), toml::Value::Table(pc));
    let mut cp = Vec::new();
    if !aziotid_certs.is_empty() {
        cp.push(principal(uids.aziotid, "certs", &aziotid_certs));
    }
    cp.push(principal(uids.iotedge, "certs", &iotedge_certs));
    certd.insert("principal".into(), toml::Value::Array(cp));

    // keyd.
    let mut keyd = toml::Table::new();
    let mut aziot_keys = toml::Table::new();
    for (k, v) in &cfg.aziot.aziot_keys {
        aziot_keys.insert(k.clone(), s(v));
    }
    aziot_keys.insert("homedir_path".into(), s("/var/lib/aziot/keyd"));
    keyd.insert("aziot_keys".into(), toml::Value::Table(aziot_keys));
    if let Some(m) = max {
        keyd.insert("max_requests".into(), int(m.keyd));
    }
    let mut pk = toml::Table::new();
    for (k, v) in &preloaded_keys {
        pk.insert(k.clone(), s(v));
    }
    keyd.insert("preloaded_keys".into(), toml::Value::Table(pk));
    let mut kp = vec![principal(uids.aziotid, "keys", &aziotid_keys)];
    if !aziotcs_keys.is_empty() {
        kp.push(principal(uids.aziotcs, "keys", &aziotcs_keys));
    }
    kp.push(principal(uids.iotedge, "keys", &iotedge_keys));
    keyd.insert("principal".into(), toml::Value::Array(kp));

    // identityd.
    let mut identityd = toml::Table::new();
    identityd.insert("hostname".into(), s(hostname));
    identityd.insert("homedir".into(), s("/var/lib/aziot/identityd"));
    if let Some(m) = max {
        identityd.insert("max_requests".into(), int(m.identityd));
    }
    if cfg.aziot.cloud_timeout_sec != 70 {
        identityd.insert(
            "cloud_timeout_sec".into(),
            toml::Value::Integer(cfg.aziot.cloud_timeout_sec as i64),
        );
    }
    if cfg.aziot.cloud_retries != 1 {
        identityd.insert(
            "cloud_retries".into(),
            toml::Value::Integer(i64::from(cfg.aziot.cloud_retries)),
        );
    }
    identityd.insert("provisioning".into(), toml::Value::Table(prov));
    if let Some(l) = &cfg.aziot.localid {
        let mut t = toml::Table::new();
        t.insert("domain".into(), s(&l.domain));
        identityd.insert("localid".into(), toml::Value::Table(t));
    }
    let mut ip = toml::Table::new();
    ip.insert("uid".into(), toml::Value::Integer(i64::from(uids.iotedge)));
    ip.insert("name".into(), s("aziot-edge"));
    identityd.insert(
        "principal".into(),
        toml::Value::Array(vec![toml::Value::Table(ip)]),
    );

    // tpmd.
    let mut tpmd = toml::Table::new();
    if let Some(m) = max {
        tpmd.insert("max_requests".into(), int(m.tpmd));
    }
    let tpm = &cfg.aziot.tpm;
    tpmd.insert("tcti".into(), s(&tpm.tcti.to_string_lossy()));
    tpmd.insert(
        "auth_key_index".into(),
        toml::Value::Integer(i64::from(tpm.auth_key_index)),
    );
    let mut ha = toml::Table::new();
    for (k, v) in [
        ("endorsement", &tpm.hierarchy_authorization.endorsement),
        ("owner", &tpm.hierarchy_authorization.owner),
    ] {
        if !v.as_bytes().is_empty() {
            ha.insert(k.into(), s(&v.to_string_lossy()));
        }
    }
    if !ha.is_empty() {
        tpmd.insert("hierarchy_authorization".into(), toml::Value::Table(ha));
    }

    // edged.
    let agent = cfg.agent_spec();
    let mut edged = toml::Table::new();
    edged.insert("hostname".into(), s(hostname));
    if let Some(p) = &cfg.aziot.parent_hostname {
        edged.insert("parent_hostname".into(), s(p));
    }
    edged.insert("trust_bundle_cert".into(), s("aziot-edged-trust-bundle"));
    edged.insert(
        "auto_reprovisioning_mode".into(),
        s(&format!("{:?}", cfg.auto_reprovisioning_mode)),
    );
    edged.insert("homedir".into(), s("/var/lib/aziot/edged"));
    edged.insert(
        "allow_elevated_docker_permissions".into(),
        toml::Value::Boolean(cfg.allow_elevated_docker_permissions.unwrap_or(true)),
    );
    if !edge_ca.is_empty() {
        edged.insert("edge_ca".into(), toml::Value::Table(edge_ca));
    }
    let mut agent_t = toml::Table::new();
    agent_t.insert("name".into(), s(&agent.name));
    agent_t.insert("type".into(), s(&agent.kind));
    agent_t.insert(
        "imagePullPolicy".into(),
        s(match agent.image_pull_policy {
            config::ImagePullPolicy::OnCreate => "on-create",
            config::ImagePullPolicy::Never => "never",
        }),
    );
    let mut agent_cfg = toml::Table::new();
    agent_cfg.insert("image".into(), s(&agent.config.image));
    if let Some(d) = &agent.config.digest {
        agent_cfg.insert("digest".into(), s(d));
    }
    let raw_agent_cfg = raw
        .get("agent")
        .and_then(|a| a.get("config"))
        .and_then(|c| c.as_table());
    if let Some(co) = raw_agent_cfg.and_then(|c| c.get("createOptions")) {
        agent_cfg.insert("createOptions".into(), co.clone());
    }
    if let Some(auth) = raw_agent_cfg.and_then(|c| c.get("auth")) {
        agent_cfg.insert("auth".into(), auth.clone());
    }
    agent_t.insert("config".into(), toml::Value::Table(agent_cfg));
    let mut env = toml::Table::new();
    for (k, v) in &agent.env {
        env.insert(k.clone(), s(v));
    }
    agent_t.insert("env".into(), toml::Value::Table(env));
    edged.insert("agent".into(), toml::Value::Table(agent_t));
    let (workload, management) = match &cfg.connect {
        Some(c) => (c.workload_uri.as_str(), c.management_uri.as_str()),
        None => (
            "unix:///var/run/iotedge/workload.sock",
            "unix:///var/run/iotedge/mgmt.sock",
        ),
    };
    let mut connect = toml::Table::new();
    connect.insert("workload_uri".into(), s(workload));
    connect.insert("management_uri".into(), s(management));
    edged.insert("connect".into(), toml::Value::Table(connect));
    let (workload, management, tls) = match &cfg.listen {
        Some(l) => (
            l.workload_uri.as_str(),
            l.management_uri.as_str(),
            l.min_tls_version,
        ),
        None => (
            "fd://aziot-edged.workload.socket",
            "fd://aziot-edged.mgmt.socket",
            config::MinTlsVersion::default(),
        ),
    };
    let mut listen = toml::Table::new();
    listen.insert("workload_uri".into(), s(workload));
    listen.insert("management_uri".into(), s(management));
    listen.insert("min_tls_version".into(), s(tls.as_str()));
    edged.insert("listen".into(), toml::Value::Table(listen));
    let mut watchdog = toml::Table::new();
    watchdog.insert(
        "max_retries".into(),
        match cfg.watchdog.max_retries {
            MaxRetries::Infinite => s("infinite"),
            MaxRetries::Num(n) => toml::Value::Integer(i64::from(n)),
        },
    );
    edged.insert("watchdog".into(), toml::Value::Table(watchdog));
    if let Some(m) = cfg.iotedge_max_requests {
        let mut t = toml::Table::new();
        t.insert("management".into(), int(m.management));
        t.insert("workload".into(), int(m.workload));
        edged.insert("iotedge_max_requests".into(), toml::Value::Table(t));
    }
    if !additional_info.is_empty() {
        let t = additional_info
            .iter()
            .map(|(k, v)| (k.clone(), s(v)))
            .collect();
        edged.insert("additional_info".into(), toml::Value::Table(t));
    }
    let mut moby = toml::Table::new();
    moby.insert("uri".into(), s(cfg.moby_runtime.uri.as_str()));
    match &cfg.moby_runtime.network {
        MobyNetwork::Name(n) => {
            moby.insert("network".into(), s(n));
        }
        MobyNetwork::Network(n) => {
            let mut t = toml::Table::new();
            t.insert("name".into(), s(&n.name));
            if let Some(v6) = n.ipv6 {
                t.insert("ipv6".into(), toml::Value::Boolean(v6));
            }
            moby.insert("network".into(), toml::Value::Table(t));
        }
    }
    edged.insert("moby_runtime".into(), toml::Value::Table(moby));
    if cfg.image_garbage_collection != config::ImagePruneSettings::default() {
        let g = &cfg.image_garbage_collection;
        let mut t = toml::Table::new();
        t.insert("enabled".into(), toml::Value::Boolean(g.enabled));
        t.insert(
            "cleanup_recurrence".into(),
            s(&format!("{}d", g.cleanup_recurrence.as_secs() / 86_400)),
        );
        t.insert(
            "image_age_cleanup_threshold".into(),
            s(&format!("{}s", g.image_age_cleanup_threshold.as_secs())),
        );
        t.insert(
            "cleanup_time".into(),
            s(&format!(
                "{:02}:{:02}",
                g.cleanup_time / 60,
                g.cleanup_time % 60
            )),
        );
        edged.insert("image_garbage_collection".into(), toml::Value::Table(t));
    }

    Generated {
        keyd,
        certd,
        identityd,
        tpmd,
        edged,
        device_id_key,
    }
}

fn x509_identity(
    identity: &X509Identity,
    keys: &mut Vec<(String, String)>,
    certs: &mut Vec<(String, toml::Value)>,
    issuance: &mut Vec<(String, toml::Table)>,
    aziotid_certs: &mut Vec<String>,
) {
    match identity {
        X509Identity::Preloaded {
            identity_cert,
            identity_pk,
        } => {
            keys.push(("device-id".into(), identity_pk.uri()));
            certs.push(("device-id".into(), s(identity_cert.as_str())));
        }
        X509Identity::Issued { identity_cert } => {
            let t = cert_options(identity_cert, None, "device-id", keys, certs);
            issuance.push(("device-id".into(), t));
            aziotid_certs.push("device-id".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::sim::applied;

    #[test]
    fn generates_service_configs_for_manual_connection_string() {
        let text = "hostname = \"edge-1\"\ntrust_bundle_cert = \"file:///var/aziot/certs/root.pem\"\n[provisioning]\nsource = \"manual\"\nconnection_string = \"HostName=hub.azure-devices.net;DeviceId=edge-1;SharedAccessKey=QUJD\"\n[edge_ca]\ncert = \"file:///var/aziot/certs/ca.pem\"\npk = \"file:///var/aziot/secrets/ca.key.pem\"\n[agent]\nname = \"edgeAgent\"\ntype = \"docker\"\n[agent.config]\nimage = \"mcr.microsoft.com/azureiotedge-agent:1.5.21\"\n[agent.config.createOptions.HostConfig]\nBinds = [\"/srv/a:/tmp/edgeAgent\"]\n[agent.env]\nstorageFolder = \"/tmp\"\n";
        let cfg = config::parse(text).unwrap().config;
        let raw: toml::Table = text.parse().unwrap();
        let g = generate(
            &cfg,
            &raw,
            &BTreeMap::new(),
            "edge-1",
            Uids {
                aziotcs: 991,
                aziotid: 992,
                iotedge: 994,
            },
        );
        assert_eq!(g.device_id_key.as_deref(), Some(&b"ABC"[..]));
        let keys = applied::keyd_preloaded_keys(&g.keyd);
        assert_eq!(
            keys["device-id"],
            "file:///var/secrets/aziot/keyd/device-id"
        );
        assert_eq!(
            keys["aziot-edged-ca"],
            "file:///var/aziot/secrets/ca.key.pem"
        );
        let certd = applied::certd_settings(&g.certd);
        assert_eq!(
            certd.preloaded_certs["aziot-edged-trust-bundle"],
            applied::CertEntry::Ids(vec!["aziot-edged-ca".into(), "trust-bundle-user".into()])
        );
        let id = applied::identity_settings(&g.identityd).unwrap();
        assert_eq!(id.iothub_hostname.as_deref(), Some("hub.azure-devices.net"));
        assert_eq!(id.method.as_deref(), Some("sas"));
        let e = applied::edged_settings(&g.edged).unwrap();
        assert_eq!(e.agent_env["storageFolder"], "/tmp");
        assert_eq!(e.edge_ca_cert.as_deref(), Some("aziot-edged-ca"));
        // The generated files are valid TOML that reads back identically.
        let text = toml::to_string(&g.edged).unwrap();
        let back: toml::Table = text.parse().unwrap();
        assert_eq!(back, g.edged);
    }
}
