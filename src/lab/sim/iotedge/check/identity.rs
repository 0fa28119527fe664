//! The identity-service checks (`aziotctl check` on a real device): the applied `config.d` files, the hostname
//! rule, the package version, certificate and key files (readability by the service users, expiry, key
//! strength, certificate/key match), the services' states and the IoT Hub / DPS endpoints.
//!
//! Each check only reads device state and fills `Ctx` for later checks; it must not print or write files.

use std::fs;

use serde_json::{json, Value};

use super::model::{caller_cred, offline, CheckOpts, Ctx, Res};
use crate::lab::sim::applied::{self, CertEntry, CertdSettings, LoadError};
use crate::lab::sim::config::Url;
use crate::lab::sim::pki::{self, KeyKind};
use crate::lab::sim::state::{State, StateError, AZIOT_VERSION};
use crate::lab::sim::time;
use crate::lab::sim::users::{self, Accounts, Cred};

pub(super) fn well_formed_daemon(
    st: &mut State,
    opts: &CheckOpts,
    ctx: &mut Ctx,
    svc: &str,
) -> Result<Res, StateError> {
    let sup = applied::super_path(svc);
    if st.env.euid != 0 && st.env.path(&sup).exists() {
        if let Err(users::Denied::NoRead(_) | users::Denied::NoSearch(_)) =
            users::check_readable(&st.env, &sup, &caller_cred(st))
        {
            return Ok(Res::Fatal(vec![
                "Could not open file. You might need to run this command as root.".into(),
                format!("error in file {sup}"),
                "Permission denied (os error 13)".into(),
            ]));
        }
    }
    let message = if opts.verbose {
        format!("{svc}'s configuration is not well-formed.\nNote: In case of syntax errors, the error may not be exactly at the reported line number and position.")
    } else {
        format!("{svc}'s configuration file is not well-formed.")
    };
    let table = match applied::load(&st.env, svc) {
        Ok(t) => t,
        Err(LoadError::Missing(_)) => {
            return Ok(Res::Failed(vec![
                message,
                format!("error in file /etc/aziot/{svc}/config.toml"),
                "No such file or directory (os error 2)".into(),
            ]))
        }
        Err(LoadError::PermissionDenied(p)) => {
            return Ok(Res::Fatal(vec![
                "Could not open file. You might need to run this command as root.".into(),
                format!("error in file {p}"),
                "Permission denied (os error 13)".into(),
            ]))
        }
        Err(LoadError::Parse(p, e)) => {
            return Ok(Res::Failed(vec![message, format!("error in file {p}"), e]))
        }
    };
    match svc {
        "keyd" => ctx.keyd = Some(table),
        "certd" => ctx.certd = Some(applied::certd_settings(&table)),
        "identityd" => match applied::identity_settings(&table) {
            Ok(i) => {
                if ctx.iothub_hostname.is_none() {
                    ctx.iothub_hostname = i.iothub_hostname.clone();
                }
                ctx.parent_hostname = i.local_gateway_hostname.clone();
                ctx.identityd = Some(i);
            }
            Err(e) => {
                return Ok(Res::Failed(vec![
                    message,
                    format!("error in file {sup}"),
                    e,
                ]))
            }
        },
        _ => {}
    }
    Ok(Res::Ok)
}

pub(super) fn up_to_date(st: &mut State, services: &[&str]) -> Res {
    let config = st.env.path("/etc/aziot/config.toml");
    let Ok(cm) = fs::metadata(&config) else {
        return Res::Ignored;
    };
    let Ok(config_mtime) = cm.modified() else {
        return Res::Ignored;
    };
    for svc in services {
        let p = applied::super_path(svc);
        let meta = match fs::metadata(st.env.path(&p)) {
            Ok(m) => m,
            Err(_) => {
                return Res::Warning(vec![format!(
                    "{p} does not exist.\nDid you run 'iotedge config apply'?"
                )])
            }
        };
        if let Ok(m) = meta.modified() {
            if config_mtime > m {
                return Res::Warning(vec![format!(
                    "/etc/aziot/config.toml was modified after {svc}'s config\nYou must run 'iotedge config apply' to update {svc}'s config with the latest config.toml"
                )]);
            }
        }
    }
    Res::Ok
}

/// RFC 1035 hostname rule used by the hostname check.
pub fn is_rfc_1035_valid(name: &str) -> bool {
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    name.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_alphabetic()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    })
}

pub(super) fn hostname_check(
    st: &mut State,
    _: &CheckOpts,
    ctx: &mut Ctx,
    info: &mut Value,
) -> Result<Res, StateError> {
    let Some(id) = &ctx.identityd else {
        return Ok(Res::Skipped);
    };
    let config_hostname = id.hostname.clone();
    if config_hostname.parse::<std::net::IpAddr>().is_ok() {
        *info = json!({"config_hostname": config_hostname, "machine_hostname": config_hostname});
        return Ok(Res::Ok);
    }
    let machine = st.env.hostname.clone();
    *info = json!({"config_hostname": config_hostname, "machine_hostname": machine});
    let c = config_hostname.to_lowercase();
    let m = machine.to_lowercase();
    if c != m && !c.starts_with(&format!("{m}.")) {
        return Ok(Res::Failed(vec![format!(
            "identityd config has hostname {c} but device reports hostname {m}.\nHostname in identityd config must either be identical to the device hostname or be a fully-qualified domain name that has the device hostname as the first component."
        )]));
    }
    if !is_rfc_1035_valid(&config_hostname) {
        return Ok(Res::Warning(vec![format!(
            "identityd config has hostname {config_hostname} which does not comply with RFC 1035.\n\n- Hostname must be between 1 and 255 octets inclusive.\n- Each label in the hostname (component separated by \".\") must be between 1 and 63 octets inclusive.\n- Each label must start with an ASCII alphabet character (a-z, A-Z), end with an ASCII alphanumeric character (a-z, A-Z, 0-9), and must contain only ASCII alphanumeric characters or hyphens (a-z, A-Z, 0-9, \"-\").\n\nNot complying with RFC 1035 may cause errors during the TLS handshake with modules and downstream devices."
        )]));
    }
    if config_hostname.len() > 64 {
        return Ok(Res::Warning(vec![format!(
            "identityd config hostname {config_hostname} is too long to be used as a certificate issuer"
        )]));
    }
    Ok(Res::Ok)
}

pub(super) fn aziot_version(
    _: &mut State,
    opts: &CheckOpts,
    ctx: &mut Ctx,
    info: &mut Value,
) -> Result<Res, StateError> {
    let expected = match &opts.expected_aziot_version {
        Some(v) => v.clone(),
        None => {
            let Some(id) = &ctx.identityd else {
                return Ok(Res::Skipped);
            };
            if id.local_gateway_hostname.is_some() {
                return Ok(Res::Ignored);
            }
            if ctx.airgapped {
                return Ok(offline(
                    "Error while fetching latest versions of identity service components",
                    "aka.ms",
                ));
            }
            AZIOT_VERSION.to_string()
        }
    };
    *info = json!({"expected_version": expected, "actual_version": AZIOT_VERSION});
    if expected != AZIOT_VERSION {
        return Ok(Res::Warning(vec![format!(
            "Installed aziot-identity-service package has version {AZIOT_VERSION} but {expected} is the latest stable version available.\nPlease see https://aka.ms/aziot-update-runtime for update instructions."
        )]));
    }
    Ok(Res::Ok)
}

struct Validity {
    not_before: i64,
    not_after: i64,
}

fn validity_result(name: &str, id: &str, v: &Validity, now: i64) -> Res {
    let label = format!("{name} '{id}'");
    let label = label.trim_start();
    if v.not_before > now {
        Res::Failed(vec![format!(
            "{label} has not-before time {} which is in the future",
            time::chrono_display(v.not_before)
        )])
    } else if v.not_after < now {
        Res::Failed(vec![format!(
            "{label} expired at {}",
            time::chrono_display(v.not_after)
        )])
    } else if v.not_after < now + 7 * 86_400 {
        Res::Warning(vec![format!(
            "{label} will expire soon ({}, in {} days)",
            time::chrono_display(v.not_after),
            (v.not_after - now) / 86_400
        )])
    } else {
        Res::Ok
    }
}

fn file_path_of(uri: &str) -> Option<String> {
    Url::parse(uri).ok().and_then(|u| u.file_path())
}

fn cert_validity_info(name: &str, id: &str, v: &Validity) -> Value {
    json!({
        "cert_name": name,
        "cert_id": id,
        "not_after": time::rfc3339(v.not_after.max(0) as u64 * 1000),
        "not_before": time::rfc3339(v.not_before.max(0) as u64 * 1000),
    })
}

fn validate_cert(
    st: &State,
    certd: &CertdSettings,
    id: &str,
    name: &str,
    info_key: &str,
    info: &mut Value,
) -> Res {
    let now = (st.env.now_ms / 1000) as i64;
    match certd.preloaded_certs.get(id) {
        Some(CertEntry::Uri(u)) => {
            let Some(p) = file_path_of(u) else {
                return Res::Ok;
            };
            match fs::read(st.env.path(&p)) {
                Ok(b) => match pki::parse_cert_pem(&b) {
                    Ok(c) => {
                        let v = Validity {
                            not_before: c.not_before,
                            not_after: c.not_after,
                        };
                        info[info_key] = cert_validity_info(name, id, &v);
                        validity_result(name, id, &v, now)
                    }
                    Err(e) => Res::Failed(vec![e]),
                },
                Err(_) => Res::Ok,
            }
        }
        Some(CertEntry::Ids(_)) => Res::Ok,
        None if certd.issued.iter().any(|i| i == id) => Res::Ok,
        None => Res::Failed(vec![format!(
            "{name} certificate is neither preloaded nor configured to be dynamically issued, and thus cannot be used."
        )]),
    }
}

pub(super) fn identity_cert_expiry(
    st: &mut State,
    _: &CheckOpts,
    ctx: &mut Ctx,
    info: &mut Value,
) -> Result<Res, StateError> {
    let Some(id) = &ctx.identityd else {
        return Ok(Res::Skipped);
    };
    let (mode, name) = match (id.source.as_str(), id.method.as_deref()) {
        ("dps", Some("x509")) => ("dps-x509", Some("DPS identity")),
        ("manual", Some("x509")) => ("manual-x509", Some("Manual identity")),
        ("dps", _) => ("dps-other", None),
        ("manual", _) => ("manual-other", None),
        _ => ("none", None),
    };
    *info = json!({"provisioning_mode": mode, "certificate_info": null});
    let Some(name) = name else {
        return Ok(Res::Ignored);
    };
    let Some(certd) = &ctx.certd else {
        return Ok(Res::Skipped);
    };
    Ok(validate_cert(
        st,
        certd,
        "device-id",
        name,
        "certificate_info",
        info,
    ))
}

pub(super) fn local_ca_expiry(
    st: &mut State,
    _: &CheckOpts,
    ctx: &mut Ctx,
    info: &mut Value,
) -> Result<Res, StateError> {
    let Some(certd) = &ctx.certd else {
        return Ok(Res::Skipped);
    };
    let Some(id) = certd.local_ca.clone() else {
        return Ok(Res::Ignored);
    };
    *info = json!({"certificate_info": null});
    Ok(validate_cert(
        st,
        certd,
        &id,
        "Local CA",
        "certificate_info",
        info,
    ))
}

fn service_cred(st: &State, user: &str) -> Result<Cred, String> {
    let acc = Accounts::load(&st.env);
    let u = acc
        .user(user)
        .ok_or_else(|| format!("could not query {user} user information"))?;
    Ok(Cred {
        uid: u.uid,
        gids: acc.gids_of(u),
    })
}

fn walk_preloaded(
    st: &State,
    certd: &CertdSettings,
    id: &str,
    cred: &Cred,
    visited: &mut Vec<String>,
) -> Res {
    match certd.preloaded_certs.get(id) {
        Some(CertEntry::Uri(uri)) => {
            if visited.iter().any(|v| v == id) {
                return Res::Ok;
            }
            visited.push(id.to_string());
            let Ok(url) = Url::parse(uri) else {
                return Res::Failed(vec![format!(
                    "preloaded cert {id:?} has an invalid URI: {uri}"
                )]);
            };
            if url.scheme() != "file" {
                return Res::Failed(vec![format!(
                    "preloaded cert {id:?} has a scheme other than `file://`"
                )]);
            }
            let Some(path) = url.file_path() else {
                return Res::Failed(vec![format!(
                    "preloaded cert {id:?} has an invalid file URI: {uri}"
                )]);
            };
            if let Err(d) = users::check_readable(&st.env, &path, cred) {
                return Res::Failed(vec![
                    format!("preloaded cert {id:?} at {path} is not readable by user aziotcs"),
                    d.to_string(),
                ]);
            }
            let bytes = match fs::read(st.env.path(&path)) {
                Ok(b) => b,
                Err(e) => {
                    return Res::Failed(vec![format!("could not read {path}"), e.to_string()])
                }
            };
            match pki::parse_cert_pem(&bytes) {
                Ok(c) => validity_result(
                    "",
                    id,
                    &Validity {
                        not_before: c.not_before,
                        not_after: c.not_after,
                    },
                    (st.env.now_ms / 1000) as i64,
                ),
                Err(e) => Res::Failed(vec![
                    format!("could not parse preloaded cert {id:?} at {path}"),
                    e,
                ]),
            }
        }
        Some(CertEntry::Ids(ids)) => {
            for i in ids {
                match walk_preloaded(st, certd, i, cred, visited) {
                    Res::Ok => {}
                    other => return other,
                }
            }
            Res::Ok
        }
        None => Res::Ok,
    }
}

/// The certd id aziot-edged's Edge CA is preloaded under.
const EDGE_CA_ID: &str = "aziot-edged-ca";

/// The `edge-ca-rejected` lab fault: the fault file holds the Edge CA certificate the device accepts; any
/// other (another key or another validity) fails `certs-preloaded`, as a device whose trust rules refuse a new
/// CA would. `None` when the installed one is the accepted one (or there is no preloaded Edge CA).
fn rejected_edge_ca(st: &State, certd: &CertdSettings, accepted: &str) -> Option<Res> {
    let Some(CertEntry::Uri(uri)) = certd.preloaded_certs.get(EDGE_CA_ID) else {
        return None;
    };
    let path = file_path_of(uri)?;
    let installed = fs::read(st.env.path(&path))
        .ok()
        .and_then(|b| pki::parse_cert_pem(&b).ok());
    let accepted = pki::parse_cert_pem(accepted.as_bytes()).ok();
    let same = match (&installed, &accepted) {
        (Some(i), Some(a)) => {
            i.public_key == a.public_key
                && i.not_after == a.not_after
                && i.not_before == a.not_before
        }
        _ => false,
    };
    (!same).then(|| {
        Res::Failed(vec![format!(
            "(lab fault) preloaded cert {EDGE_CA_ID:?} at {path} is not the Edge CA this device accepts (the edge-ca-rejected fault in /var/lib/edgefleet-lab/faults)"
        )])
    })
}

pub(super) fn certs_preloaded(
    st: &mut State,
    _: &CheckOpts,
    ctx: &mut Ctx,
    _: &mut Value,
) -> Result<Res, StateError> {
    let Some(certd) = &ctx.certd else {
        return Ok(Res::Skipped);
    };
    let cred = match service_cred(st, "aziotcs") {
        Ok(c) => c,
        Err(e) => return Ok(Res::Failed(vec![e])),
    };
    if let Some(accepted) = st.env.fault("edge-ca-rejected") {
        if let Some(r) = rejected_edge_ca(st, certd, &accepted) {
            return Ok(r);
        }
    }
    let mut visited = Vec::new();
    for id in certd.preloaded_certs.keys() {
        match walk_preloaded(st, certd, id, &cred, &mut visited) {
            Res::Ok => {}
            other => return Ok(other),
        }
    }
    Ok(Res::Ok)
}

pub(super) fn daemon_running(st: &mut State, ctx: &mut Ctx, svc: &str) -> Result<Res, StateError> {
    if svc == "tpmd" {
        let using_tpm = match &ctx.identityd {
            Some(id) => id.source == "dps" && id.method.as_deref() == Some("tpm"),
            None => true,
        };
        if !using_tpm {
            return Ok(Res::Ignored);
        }
    }
    let unit = format!("aziot-{svc}");
    let socket = format!("aziot-{svc}.socket");
    let services = st.services()?;
    let state = services.state(&unit).to_string();
    let socket_up = services.is_active(&socket);
    let up = state == "active" || (state == "inactive" && socket_up);
    if up {
        match svc {
            "keyd" => ctx.keyd_running = true,
            "certd" => ctx.certd_running = true,
            _ => {}
        }
        return Ok(Res::Ok);
    }
    Ok(Res::Failed(vec![
        format!("Could not connect to {svc} on unix:///run/aziot/{svc}.sock"),
        if socket_up {
            "Connection refused (os error 111)".into()
        } else {
            "No such file or directory (os error 2)".into()
        },
    ]))
}

pub(super) fn certs_read(
    st: &mut State,
    _: &CheckOpts,
    ctx: &mut Ctx,
    _: &mut Value,
) -> Result<Res, StateError> {
    let Some(certd) = &ctx.certd else {
        return Ok(Res::Skipped);
    };
    if !ctx.certd_running {
        return Ok(Res::Skipped);
    }
    let cred = match service_cred(st, "aziotcs") {
        Ok(c) => c,
        Err(e) => return Ok(Res::Failed(vec![e])),
    };
    let mut errors = Vec::new();
    for (id, e) in &certd.preloaded_certs {
        let CertEntry::Uri(uri) = e else { continue };
        let Some(path) = file_path_of(uri) else {
            continue;
        };
        let res = users::check_readable(&st.env, &path, &cred)
            .map_err(|d| d.to_string())
            .and_then(|_| fs::read(st.env.path(&path)).map_err(|e| e.to_string()))
            .and_then(|b| pki::parse_cert_pem(&b).map(|_| ()));
        if let Err(e) = res {
            errors.push(format!(
                "could not read certificate {id:?} from the Certificates Service: {e}"
            ));
        }
    }
    Ok(if errors.is_empty() {
        Res::Ok
    } else {
        Res::Failed(vec![errors.join("\n")])
    })
}

pub(super) fn key_pairs_read(
    st: &mut State,
    _: &CheckOpts,
    ctx: &mut Ctx,
    _: &mut Value,
) -> Result<Res, StateError> {
    let Some(keyd) = &ctx.keyd else {
        return Ok(Res::Skipped);
    };
    if !ctx.keyd_running {
        return Ok(Res::Skipped);
    }
    let cred = match service_cred(st, "aziotks") {
        Ok(c) => c,
        Err(e) => return Ok(Res::Failed(vec![e])),
    };
    let mut errs = Vec::new();
    let mut warns = Vec::new();
    for (id, uri) in applied::keyd_preloaded_keys(keyd) {
        let Some(path) = file_path_of(&uri) else {
            continue;
        };
        if let Err(d) = users::check_readable(&st.env, &path, &cred) {
            errs.push(format!(
                "could not load preloaded private key with ID {id:?}\n\nCaused by:\n    {d}"
            ));
            continue;
        }
        let Ok(bytes) = fs::read(st.env.path(&path)) else {
            continue;
        };
        if !bytes.starts_with(b"-----") && !String::from_utf8_lossy(&bytes).contains("-----BEGIN") {
            // A symmetric key (device-id for SAS): not a key pair; keyd's load_key_pair fails and is ignored.
            continue;
        }
        match pki::parse_key_pem(&bytes) {
            Ok(k) => {
                match &k.kind {
                    KeyKind::Rsa(bits) if *bits < 2048 => warns.push(format!(
                        "RSA key {id} has length {bits} (min recommended: 2048)"
                    )),
                    KeyKind::Rsa(_) => {}
                    KeyKind::Ec(_, size) if *size != 256 => warns.push(format!(
                        "EC key {id} not using recommended curve (recommended: P-256)"
                    )),
                    KeyKind::Ec(..) => {}
                    _ => warns.push(format!(
                        "Key {id} not using recommended algorithm (recommended: RSA, EC)"
                    )),
                }
                ctx.keys.insert(
                    id.clone(),
                    (String::from_utf8_lossy(&bytes).into_owned(), k),
                );
            }
            Err(e) => errs.push(format!(
                "could not load preloaded private key with ID {id:?}\n\nCaused by:\n    {e}"
            )),
        }
    }
    Ok(if !errs.is_empty() {
        Res::Failed(vec![errs.join("\n")])
    } else if !warns.is_empty() {
        Res::Warning(vec![warns.join("\n")])
    } else {
        Res::Ok
    })
}

pub(super) fn certs_match_keys(
    st: &mut State,
    _: &CheckOpts,
    ctx: &mut Ctx,
    _: &mut Value,
) -> Result<Res, StateError> {
    let (Some(certd), Some(_)) = (&ctx.certd, &ctx.keyd) else {
        return Ok(Res::Skipped);
    };
    let mut errs = Vec::new();
    for (id, (pem, key)) in &ctx.keys {
        let Some(CertEntry::Uri(uri)) = certd.preloaded_certs.get(id) else {
            continue;
        };
        let Some(path) = file_path_of(uri) else {
            continue;
        };
        let Ok(bytes) = fs::read(st.env.path(&path)) else {
            continue;
        };
        let Ok(cert) = pki::parse_cert_pem(&bytes) else {
            continue;
        };
        if pki::key_matches_cert(pem, key, &cert) == Some(false) {
            errs.push(format!(
                "Preloaded certificate {id:?} does not match the preloaded private key with the same ID"
            ));
        }
    }
    Ok(if errs.is_empty() {
        Res::Ok
    } else {
        Res::Failed(vec![errs.join("\n")])
    })
}

pub(super) fn host_connect_iothub(
    ctx: &mut Ctx,
    info: &mut Value,
    port: u16,
) -> Result<Res, StateError> {
    let Some(id) = &ctx.identityd else {
        return Ok(Res::Skipped);
    };
    let target = ctx
        .parent_hostname
        .clone()
        .or_else(|| ctx.iothub_hostname.clone());
    Ok(match target {
        Some(h) if ctx.airgapped => {
            *info = json!({"iothub_hostname": h, "port": port, "proxy": null});
            offline(
                &format!("Could not connect to {h} : could not complete TLS handshake"),
                &h,
            )
        }
        Some(h) => {
            *info = json!({"iothub_hostname": h, "port": port, "proxy": null});
            Res::Ok
        }
        None if id.source == "none" => Res::Ignored,
        None => Res::Ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1035() {
        assert!(is_rfc_1035_valid("edge-001"));
        assert!(is_rfc_1035_valid("edge-001.lab.example"));
        assert!(!is_rfc_1035_valid("edge_001"));
        assert!(!is_rfc_1035_valid("1edge"));
        assert!(!is_rfc_1035_valid("edge-"));
    }

    #[test]
    fn validity_rules() {
        let now = 1_700_000_000;
        let v = |nb: i64, na: i64| Validity {
            not_before: nb,
            not_after: na,
        };
        assert_eq!(
            validity_result("", "x", &v(now - 10, now + 30 * 86_400), now),
            Res::Ok
        );
        assert!(matches!(
            validity_result("", "x", &v(now - 10, now + 3 * 86_400), now),
            Res::Warning(_)
        ));
        match validity_result("", "aziot-edged-ca", &v(now - 100, now - 10), now) {
            Res::Failed(d) => assert!(
                d[0].starts_with("'aziot-edged-ca' expired at 2023-11-14"),
                "{d:?}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            validity_result("Local CA", "x", &v(now + 100, now + 1000), now),
            Res::Failed(_)
        ));
    }
}
