//! `iotedge check`: the identity-service checks (run by `aziotctl check` on a real device) followed by the
//! IoT Edge checks, with the real ids, descriptions, messages, text layout, JSON shape and exit codes.
//!
//! What is evaluated locally, as the real tool does: the applied `config.d` files (well-formedness, mtimes
//! against `/etc/aziot/config.toml`), the hostname rule, preloaded certificates (`file://`, readable by
//! `aziotcs` including every parent directory, expiry: expired = error, < 7 days = warning), preloaded keys
//! (readable by `aziotks`; RSA < 2048 or EC other than P-256 warn; certificate/key match), daemon.json
//! (`container-engine-dns`, `-logrotate`, `-ipv6`), the module containers (`*-storage-mounted-from-host`), and
//! the services' states (`*-running`, which succeed when the service or its socket is up, as socket activation
//! would start it).
//!
//! Decisions for what a lab device cannot know (documented, deterministic):
//! - Network checks (`host-connect-*`, `container-*-connect-upstream-*`, `connect-management-uri`,
//!   `container-local-time`, `container-resolve-parent-hostname`, `check-agent-image`'s pull) report `ok` when
//!   their prerequisites hold (the lab network is healthy; network faults are the lab infrastructure's job),
//!   `skipped` when an earlier check they depend on failed, `ignored` when not applicable (e.g. the DPS
//!   endpoint for manual provisioning, MQTT upstream in nested mode, IoT Hub checks for DPS devices without
//!   `--iothub-hostname`).
//! - Version checks compare against `--expected-aziot-version` / `--expected-aziot-edged-version` when given;
//!   otherwise the "latest version" lookup is simulated as returning the installed version (the lab has no
//!   internet), so they pass; nested devices without an expected version are `ignored`, as on a device.
//! - The `check-error` fault forces an error on the check id named in the fault file (default
//!   `certs-preloaded`).
//!
//! It must not modify device files (only reading; counters are updated by the caller).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::applied::{self, CertEntry, CertdSettings, EdgedSettings, IdentitySettings, LoadError};
use super::config::Url;
use super::edged;
use super::pki::{self, KeyInfo, KeyKind};
use super::state::{State, StateError, AZIOT_VERSION, IOTEDGE_VERSION};
use super::time;
use super::users::{self, Accounts, Cred};
use super::Io;

/// Options of `iotedge check`.
#[derive(Debug, Clone, Default)]
pub struct CheckOpts {
    /// `--output json`.
    pub json: bool,
    /// `--verbose`.
    pub verbose: bool,
    /// `--warnings-as-errors`.
    pub warnings_as_errors: bool,
    /// `--dont-run ID...`.
    pub dont_run: Vec<String>,
    /// `--container-engine-config-file`.
    pub container_engine_config: Option<String>,
    /// `--expected-aziot-edged-version`.
    pub expected_aziot_edged_version: Option<String>,
    /// `--expected-aziot-version`.
    pub expected_aziot_version: Option<String>,
    /// `--iothub-hostname`.
    pub iothub_hostname: Option<String>,
    /// `--proxy-uri`.
    pub proxy_uri: Option<String>,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq)]
pub enum Res {
    /// `ok`.
    Ok,
    /// `warning` with its message chain.
    Warning(Vec<String>),
    /// `ignored`.
    Ignored,
    /// `skipped`.
    Skipped,
    /// `fatal` (stops all further checks).
    Fatal(Vec<String>),
    /// `error`.
    Failed(Vec<String>),
}

fn chain(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[derive(Default)]
struct Ctx {
    keyd: Option<toml::Table>,
    certd: Option<CertdSettings>,
    identityd: Option<IdentitySettings>,
    keyd_running: bool,
    certd_running: bool,
    keys: BTreeMap<String, (String, KeyInfo)>,
    settings: Option<EdgedSettings>,
    docker_ok: bool,
    docker_version: Option<String>,
    iothub_hostname: Option<String>,
    parent_hostname: Option<String>,
}

type CheckFn = fn(&mut State, &CheckOpts, &mut Ctx, &mut Value) -> Result<Res, StateError>;

/// A section: its title and its checks (id, description, function).
type Section = (
    &'static str,
    &'static [(&'static str, &'static str, CheckFn)],
);

const IDENTITY_CONFIG: &[(&str, &str, CheckFn)] = &[
    (
        "keyd-config-well-formed",
        "keyd configuration is well-formed",
        |s, o, c, _| well_formed_daemon(s, o, c, "keyd"),
    ),
    (
        "certd-config-well-formed",
        "certd configuration is well-formed",
        |s, o, c, _| well_formed_daemon(s, o, c, "certd"),
    ),
    (
        "tpmd-config-well-formed",
        "tpmd configuration is well-formed",
        |s, o, c, _| well_formed_daemon(s, o, c, "tpmd"),
    ),
    (
        "identityd-config-well-formed",
        "identityd configuration is well-formed",
        |s, o, c, _| well_formed_daemon(s, o, c, "identityd"),
    ),
    (
        "configs-up-to-date",
        "daemon configurations up-to-date with config.toml",
        |s, _, _, _| Ok(up_to_date(s, &["keyd", "certd", "identityd", "tpmd"])),
    ),
    (
        "hostname",
        "identityd config toml file specifies a valid hostname",
        hostname_check,
    ),
    (
        "aziot-version",
        "aziot-identity-service package is up-to-date",
        aziot_version,
    ),
    (
        "host-local-time",
        "host time is close to reference time",
        |_, _, _, info| {
            *info = json!({"offset": 0});
            Ok(Res::Ok)
        },
    ),
    (
        "identity-certificate-expiry",
        "production readiness: identity certificates expiry",
        identity_cert_expiry,
    ),
    (
        "est-identity-and-bootstrap-certificate-expiry",
        "production readiness: EST identity and bootstrap certificates expiry",
        |_, _, c, _| {
            Ok(if c.certd.is_none() {
                Res::Skipped
            } else {
                Res::Ignored
            })
        },
    ),
    (
        "local-ca-certificate-expiry",
        "production readiness: Local CA certificates expiry",
        local_ca_expiry,
    ),
    (
        "certs-preloaded",
        "preloaded certificates are valid",
        certs_preloaded,
    ),
    ("keyd-running", "keyd is running", |s, _, c, _| {
        daemon_running(s, c, "keyd")
    }),
    ("certd-running", "certd is running", |s, _, c, _| {
        daemon_running(s, c, "certd")
    }),
    ("tpmd-running", "tpmd is running", |s, _, c, _| {
        daemon_running(s, c, "tpmd")
    }),
    ("identityd-running", "identityd is running", |s, _, c, _| {
        daemon_running(s, c, "identityd")
    }),
    (
        "certs-read",
        "read all preloaded certificates from the Certificates Service",
        certs_read,
    ),
    (
        "key-pairs-read",
        "read all preloaded key pairs from the Keys Service",
        key_pairs_read,
    ),
    (
        "est-server-https",
        "check all EST server URLs utilize HTTPS",
        |_, _, c, _| {
            Ok(if c.certd.is_none() {
                Res::Skipped
            } else {
                Res::Ok
            })
        },
    ),
    (
        "certs-match-private-keys",
        "ensure all preloaded certificates match preloaded private keys with the same ID",
        certs_match_keys,
    ),
];

const IDENTITY_CONNECTIVITY: &[(&str, &str, CheckFn)] = &[
    (
        "host-connect-iothub-amqp",
        "host can connect to and perform TLS handshake with iothub AMQP port",
        |_, _, c, i| host_connect_iothub(c, i, 5671),
    ),
    (
        "host-connect-iothub-https",
        "host can connect to and perform TLS handshake with iothub HTTPS / WebSockets port",
        |_, _, c, i| host_connect_iothub(c, i, 443),
    ),
    (
        "host-connect-iothub-mqtt",
        "host can connect to and perform TLS handshake with iothub MQTT port",
        |_, _, c, i| host_connect_iothub(c, i, 8883),
    ),
    (
        "host-connect-dps-endpoint",
        "host can connect to and perform TLS handshake with DPS endpoint",
        |_, _, c, i| {
            Ok(match &c.identityd {
                None => Res::Skipped,
                Some(id) if id.source == "dps" => {
                    *i = json!({"dps_endpoint": id.global_endpoint});
                    Res::Ok
                }
                Some(_) => Res::Ignored,
            })
        },
    ),
];

const EDGE_CONFIG: &[(&str, &str, CheckFn)] = &[
    ("aziot-edged-config-well-formed", "aziot-edged configuration is well-formed", edged_well_formed),
    ("config-up-to-date", "configuration up-to-date with config.toml", |s, _, _, _| Ok(up_to_date(s, &["edged"]))),
    ("container-engine-uri", "container engine is installed and functional", container_engine),
    ("parent_hostname", "configuration has correct parent_hostname", parent_hostname),
    ("container-resolve-parent-hostname", "config.toml parent hostname is resolvable from inside container", |_, _, c, _| {
        Ok(match (&c.settings, &c.parent_hostname) {
            (None, _) => Res::Skipped,
            (Some(_), None) => Res::Ignored,
            (Some(_), Some(p)) if p.parse::<std::net::IpAddr>().is_ok() => Res::Ignored,
            _ if !c.docker_ok => Res::Skipped,
            _ => Res::Ok,
        })
    }),
    ("connect-management-uri", "configuration has correct URIs for daemon mgmt endpoint", |_, _, c, i| {
        Ok(if c.settings.is_none() || !c.docker_ok {
            Res::Skipped
        } else {
            *i = json!({"mgmt_uri": "unix:///var/run/iotedge/mgmt.sock"});
            Res::Ok
        })
    }),
    ("aziot-edge-version", "aziot-edge package is up-to-date", aziot_edge_version),
    ("container-local-time", "container time is close to host time", |_, _, c, _| Ok(if c.docker_ok { Res::Ok } else { Res::Skipped })),
    ("container-engine-dns", "DNS server", container_engine_dns),
    ("container-engine-ipv6", "IPv6 network configuration", container_engine_ipv6),
    ("container-engine-logrotate", "production readiness: logs policy", container_engine_logrotate),
    ("edge-agent-storage-mounted-from-host", "production readiness: Edge Agent's storage directory is persisted on the host filesystem", |s, _, c, i| storage_mounted(s, c, i, "edgeAgent")),
    ("edge-hub-storage-mounted-from-host", "production readiness: Edge Hub's storage directory is persisted on the host filesystem", |s, _, c, i| storage_mounted(s, c, i, "edgeHub")),
    ("check-agent-image", "Agent image is valid and can be pulled from upstream", check_agent_image),
    ("proxy-settings", "proxy settings are consistent in aziot-edged, aziot-identityd, moby daemon and config.toml", |_, _, c, _| Ok(if c.settings.is_none() { Res::Skipped } else { Res::Ok })),
];

const EDGE_CONNECTIVITY: &[(&str, &str, CheckFn)] = &[
    (
        "container-default-connect-upstream-amqp",
        "container on the default network can connect to upstream AMQP port",
        |_, _, c, _| upstream(c, false),
    ),
    (
        "container-default-connect-upstream-https",
        "container on the default network can connect to upstream HTTPS / WebSockets port",
        |_, _, c, _| upstream(c, false),
    ),
    (
        "container-default-connect-upstream-mqtt",
        "container on the default network can connect to upstream MQTT port",
        |_, _, c, _| upstream(c, true),
    ),
    (
        "container-connect-upstream-amqp",
        "container on the IoT Edge module network can connect to upstream AMQP port",
        |_, _, c, _| upstream(c, false),
    ),
    (
        "container-connect-upstream-https",
        "container on the IoT Edge module network can connect to upstream HTTPS / WebSockets port",
        |_, _, c, _| upstream(c, false),
    ),
    (
        "container-connect-upstream-mqtt",
        "container on the IoT Edge module network can connect to upstream MQTT port",
        |_, _, c, _| upstream(c, true),
    ),
];

/// Every check id in execution order, with its section.
pub fn all_checks() -> Vec<(&'static str, &'static str, &'static str)> {
    let mut v = Vec::new();
    for (section, list) in sections() {
        for (id, desc, _) in list {
            v.push((section, *id, *desc));
        }
    }
    v
}

fn sections() -> [Section; 4] {
    [
        (
            "Configuration checks (aziot-identity-service)",
            IDENTITY_CONFIG,
        ),
        (
            "Connectivity checks (aziot-identity-service)",
            IDENTITY_CONNECTIVITY,
        ),
        ("Configuration checks", EDGE_CONFIG),
        ("Connectivity checks", EDGE_CONNECTIVITY),
    ]
}

fn caller_cred(st: &State) -> Cred {
    Accounts::load(&st.env).cred_for_uid(st.env.euid)
}

fn well_formed_daemon(
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

fn up_to_date(st: &mut State, services: &[&str]) -> Res {
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

fn hostname_check(
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

fn aziot_version(
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

fn identity_cert_expiry(
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

fn local_ca_expiry(
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

fn certs_preloaded(
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
    let mut visited = Vec::new();
    for id in certd.preloaded_certs.keys() {
        match walk_preloaded(st, certd, id, &cred, &mut visited) {
            Res::Ok => {}
            other => return Ok(other),
        }
    }
    Ok(Res::Ok)
}

fn daemon_running(st: &mut State, ctx: &mut Ctx, svc: &str) -> Result<Res, StateError> {
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

fn certs_read(
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

fn key_pairs_read(
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

fn certs_match_keys(
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

fn host_connect_iothub(ctx: &mut Ctx, info: &mut Value, port: u16) -> Result<Res, StateError> {
    let Some(id) = &ctx.identityd else {
        return Ok(Res::Skipped);
    };
    let target = ctx
        .parent_hostname
        .clone()
        .or_else(|| ctx.iothub_hostname.clone());
    Ok(match target {
        Some(h) => {
            *info = json!({"iothub_hostname": h, "port": port, "proxy": null});
            Res::Ok
        }
        None if id.source == "none" => Res::Ignored,
        None => Res::Ignored,
    })
}

fn edged_well_formed(
    st: &mut State,
    opts: &CheckOpts,
    ctx: &mut Ctx,
    _: &mut Value,
) -> Result<Res, StateError> {
    let sup = applied::super_path("edged");
    if st.env.euid != 0 && st.env.path(&sup).exists() {
        if let Err(users::Denied::NoRead(_) | users::Denied::NoSearch(_)) =
            users::check_readable(&st.env, &sup, &caller_cred(st))
        {
            return Ok(Res::Fatal(vec![
                "Could not open IoT Edge configuration. You might need to run this command as root.".into(),
                "Permission denied (os error 13)".into(),
            ]));
        }
    }
    let err = |detail: String| {
        if opts.verbose {
            Res::Failed(vec![format!(
                "The IoT Edge configuration is not well-formed.\nNote: In case of syntax errors, the error may not be exactly at the reported line number and position.\n{detail}"
            )])
        } else {
            Res::Failed(vec![
                "The IoT Edge daemon's configuration file is not well-formed.".into(),
            ])
        }
    };
    let table = match applied::load(&st.env, "edged") {
        Ok(t) => t,
        Err(LoadError::Missing(p)) => return Ok(err(format!("could not read config from {p}"))),
        Err(LoadError::PermissionDenied(_)) => {
            return Ok(Res::Fatal(vec![
            "Could not open IoT Edge configuration. You might need to run this command as root."
                .into(),
            "Permission denied (os error 13)".into(),
        ]))
        }
        Err(LoadError::Parse(p, e)) => return Ok(err(format!("{p}: {e}"))),
    };
    match applied::edged_settings(&table) {
        Ok(s) => {
            if ctx.parent_hostname.is_none() {
                ctx.parent_hostname = s.parent_hostname.clone();
            }
            ctx.settings = Some(s);
            Ok(Res::Ok)
        }
        Err(e) => Ok(err(e)),
    }
}

fn container_engine(
    st: &mut State,
    _: &CheckOpts,
    ctx: &mut Ctx,
    info: &mut Value,
) -> Result<Res, StateError> {
    let Some(settings) = &ctx.settings else {
        return Ok(Res::Skipped);
    };
    let uri = settings.moby_uri.clone();
    let scheme = uri.split(':').next().unwrap_or("").to_string();
    if scheme != "unix" {
        return Ok(Res::Failed(vec![format!(
            "Could not communicate with container engine at {uri}. The scheme {scheme} is invalid."
        )]));
    }
    let message = format!(
        "Could not communicate with container engine at {uri}.\nPlease check your moby-engine installation and ensure the service is running."
    );
    let acc = Accounts::load(&st.env);
    let permitted = st.env.euid == 0
        || acc
            .by_uid(st.env.euid)
            .map(|u| acc.in_group(&u.name, "docker"))
            .unwrap_or(false);
    if !permitted {
        return Ok(Res::Fatal(vec![
            format!("{message}\nYou might need to run this command as root."),
            "docker returned exit status: 1, stderr = Got permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock".into(),
        ]));
    }
    if !edged::engine_up(st)? {
        return Ok(Res::Failed(vec![
            message,
            "docker returned exit status: 1, stderr = Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n".into(),
        ]));
    }
    let version = st.docker()?.engine.version.clone();
    *info = json!({"docker_host_arg": uri, "docker_server_version": version});
    ctx.docker_ok = true;
    ctx.docker_version = Some(version);
    Ok(Res::Ok)
}

fn parent_hostname(
    _: &mut State,
    _: &CheckOpts,
    ctx: &mut Ctx,
    info: &mut Value,
) -> Result<Res, StateError> {
    if ctx.settings.is_none() {
        return Ok(Res::Skipped);
    }
    let Some(p) = &ctx.parent_hostname else {
        return Ok(Res::Ignored);
    };
    *info = json!({"config_parent_hostname": p});
    if p.parse::<std::net::IpAddr>().is_ok() || is_rfc_1035_valid(p) {
        Ok(Res::Ok)
    } else {
        Ok(Res::Failed(vec![format!(
            "configuration has parent_hostname {p} which does not comply with RFC 1035."
        )]))
    }
}

fn aziot_edge_version(
    _: &mut State,
    opts: &CheckOpts,
    ctx: &mut Ctx,
    info: &mut Value,
) -> Result<Res, StateError> {
    if !ctx.docker_ok {
        return Ok(Res::Skipped);
    }
    let expected = match &opts.expected_aziot_edged_version {
        Some(v) => v.clone(),
        None if ctx.parent_hostname.is_some() => return Ok(Res::Ignored),
        None => IOTEDGE_VERSION.to_string(),
    };
    *info = json!({"actual_edged_version": IOTEDGE_VERSION, "expected_edged_version": expected});
    if expected != IOTEDGE_VERSION {
        return Ok(Res::Warning(vec![format!(
            "Installed IoT Edge daemon has version {IOTEDGE_VERSION} but {expected} is the latest stable version available.\nPlease see https://aka.ms/iotedge-update-runtime for update instructions."
        )]));
    }
    Ok(Res::Ok)
}

const DNS_MESSAGE: &str = "Container engine is not configured with DNS server setting, which may impact connectivity to IoT Hub.\nPlease see https://aka.ms/iotedge-prod-checklist-dns for best practices.\nYou can ignore this warning if you are setting DNS server per module in the Edge deployment.";
const LOGS_MESSAGE: &str = "Container engine is not configured to rotate module logs which may cause it run out of disk space.\nPlease see https://aka.ms/iotedge-prod-checklist-logs for best practices.\nYou can ignore this warning if you are setting log policy per module in the Edge deployment.";
const IPV6_MESSAGE: &str = "Container engine is not configured for IPv6 communication.\nPlease see https://aka.ms/iotedge-docker-ipv6 for a guide on how to enable IPv6 support.";

fn engine_config_path(opts: &CheckOpts) -> String {
    opts.container_engine_config
        .clone()
        .unwrap_or_else(|| "/etc/docker/daemon.json".into())
}

/// Read the engine config file: `Err((open-error chain))` when it cannot be opened.
fn read_engine_config(st: &State, opts: &CheckOpts) -> Result<String, Vec<String>> {
    let p = engine_config_path(opts);
    let host = if p.starts_with('/') {
        st.env.path(&p)
    } else {
        PathBuf::from(&p)
    };
    fs::read_to_string(host).map_err(|e| {
        vec![
            format!("Could not open container engine config file {p}"),
            e.to_string(),
        ]
    })
}

fn with_message(msg: &str, mut chain: Vec<String>) -> Vec<String> {
    chain.insert(0, msg.to_string());
    chain
}

fn container_engine_dns(
    st: &mut State,
    opts: &CheckOpts,
    _: &mut Ctx,
    info: &mut Value,
) -> Result<Res, StateError> {
    #[derive(serde::Deserialize)]
    struct DaemonConfig {
        dns: Option<Vec<String>>,
    }
    let p = engine_config_path(opts);
    *info = json!({"container_engine_config_path": p, "dns": null});
    let text = match read_engine_config(st, opts) {
        Ok(t) => t,
        Err(c) => return Ok(Res::Warning(with_message(DNS_MESSAGE, c))),
    };
    let cfg: DaemonConfig = match serde_json::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            return Ok(Res::Failed(vec![
                DNS_MESSAGE.into(),
                format!("Could not parse container engine config file {p}"),
                e.to_string(),
            ]))
        }
    };
    info["dns"] = json!(cfg.dns);
    if cfg.dns.map(|d| d.is_empty()).unwrap_or(true) {
        return Ok(Res::Warning(chain(&[DNS_MESSAGE])));
    }
    Ok(Res::Ok)
}

fn container_engine_ipv6(
    st: &mut State,
    opts: &CheckOpts,
    ctx: &mut Ctx,
    info: &mut Value,
) -> Result<Res, StateError> {
    #[derive(serde::Deserialize)]
    struct DaemonConfig {
        ipv6: Option<bool>,
    }
    let expected = ctx
        .settings
        .as_ref()
        .map(|s| s.network_ipv6)
        .unwrap_or(false);
    *info = json!({"expected_use_ipv6": expected, "actual_use_ipv6": null});
    let p = engine_config_path(opts);
    let text = match read_engine_config(st, opts) {
        Ok(t) => t,
        Err(c) => {
            return Ok(if expected {
                Res::Failed(with_message(IPV6_MESSAGE, c))
            } else {
                Res::Ignored
            })
        }
    };
    let cfg: DaemonConfig = match serde_json::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            return Ok(Res::Failed(vec![
                IPV6_MESSAGE.into(),
                format!("Could not parse container engine config file {p}"),
                e.to_string(),
            ]))
        }
    };
    info["actual_use_ipv6"] = json!(cfg.ipv6);
    Ok(if cfg.ipv6.unwrap_or(false) {
        Res::Ok
    } else if expected {
        Res::Failed(chain(&[IPV6_MESSAGE]))
    } else {
        Res::Ignored
    })
}

fn container_engine_logrotate(
    st: &mut State,
    opts: &CheckOpts,
    _: &mut Ctx,
    info: &mut Value,
) -> Result<Res, StateError> {
    #[derive(serde::Deserialize, serde::Serialize)]
    struct LogOpts {
        #[serde(rename = "max-file")]
        max_file: Option<String>,
        #[serde(rename = "max-size")]
        max_size: Option<String>,
    }
    #[derive(serde::Deserialize, serde::Serialize)]
    struct DaemonConfig {
        #[serde(rename = "log-driver")]
        log_driver: Option<String>,
        #[serde(rename = "log-opts")]
        log_opts: Option<LogOpts>,
    }
    *info = json!({"daemon_config": null});
    let p = engine_config_path(opts);
    let text = match read_engine_config(st, opts) {
        Ok(t) => t,
        Err(c) => return Ok(Res::Warning(with_message(LOGS_MESSAGE, c))),
    };
    let cfg: DaemonConfig = match serde_json::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            return Ok(Res::Failed(vec![
                LOGS_MESSAGE.into(),
                format!("Could not parse container engine config file {p}"),
                e.to_string(),
            ]))
        }
    };
    info["daemon_config"] = serde_json::to_value(&cfg).unwrap_or(Value::Null);
    let Some(driver) = &cfg.log_driver else {
        return Ok(Res::Warning(chain(&[LOGS_MESSAGE])));
    };
    if driver == "journald" {
        return Ok(Res::Ok);
    }
    match &cfg.log_opts {
        Some(LogOpts {
            max_file: Some(_),
            max_size: Some(_),
        }) => Ok(Res::Ok),
        _ => Ok(Res::Warning(chain(&[LOGS_MESSAGE]))),
    }
}

fn storage_mounted(
    st: &mut State,
    ctx: &mut Ctx,
    info: &mut Value,
    name: &str,
) -> Result<Res, StateError> {
    if !ctx.docker_ok {
        return Ok(Res::Skipped);
    }
    *info = json!({"storage_directory": null, "container_directories": null});
    let d = st.docker()?;
    let Some(i) = d.find(name) else {
        return Ok(Res::Failed(vec![
            format!("Could not check current state of {name} container"),
            format!("docker returned exit status: 1, stderr = Error: No such object: {name}\n"),
        ]));
    };
    let c = &d.containers[i];
    let re_prefix = "storagefolder=";
    let temp = c
        .env
        .iter()
        .find_map(|e| {
            (e.len() >= re_prefix.len() && e[..re_prefix.len()].eq_ignore_ascii_case(re_prefix))
                .then(|| e[re_prefix.len()..].to_string())
        })
        .unwrap_or_else(|| "/tmp".into());
    let storage = Path::new(&temp).join(name);
    let mut dirs: Vec<PathBuf> = c
        .binds
        .iter()
        .filter_map(|b| b.split(':').nth(1).map(PathBuf::from))
        .collect();
    if let Some(vols) = c.create_options.get("Volumes").and_then(|v| v.as_object()) {
        dirs.extend(vols.keys().map(PathBuf::from));
    }
    *info = json!({"storage_directory": storage, "container_directories": dirs});
    if !dirs.iter().any(|d| storage.starts_with(d)) {
        return Ok(Res::Warning(vec![format!(
            "The {name} module is not configured to persist its {} directory on the host filesystem.\nData might be lost if the module is deleted or updated.\nPlease see https://aka.ms/iotedge-storage-host for best practices.",
            storage.display()
        )]));
    }
    Ok(Res::Ok)
}

fn check_agent_image(
    _: &mut State,
    _: &CheckOpts,
    ctx: &mut Ctx,
    _: &mut Value,
) -> Result<Res, StateError> {
    let Some(settings) = &ctx.settings else {
        return Ok(Res::Skipped);
    };
    if ctx.parent_hostname.is_none() && ctx.iothub_hostname.is_none() {
        return Ok(Res::Skipped);
    }
    if !ctx.docker_ok {
        return Ok(Res::Skipped);
    }
    if ctx.parent_hostname.is_some() {
        if let Some(rest) = settings.agent_image.split("/azureiotedge-agent:").nth(1) {
            let mut it = rest.split(['.', '-']);
            let major = it.next().and_then(|x| x.parse::<u32>().ok());
            let minor = it.next().and_then(|x| x.parse::<u32>().ok());
            if let (Some(ma), Some(mi)) = (major, minor) {
                if ma < 1 || (ma == 1 && mi < 2) {
                    return Ok(Res::Failed(chain(&[
                        "In nested Edge, edgeAgent version need to be 1.2 or above",
                    ])));
                }
            }
        }
    }
    Ok(Res::Ok)
}

fn upstream(ctx: &Ctx, mqtt: bool) -> Result<Res, StateError> {
    if ctx.settings.is_none() || !ctx.docker_ok {
        return Ok(Res::Skipped);
    }
    if ctx.parent_hostname.is_none() && ctx.iothub_hostname.is_none() {
        return Ok(Res::Skipped);
    }
    if mqtt && ctx.parent_hostname.is_some() {
        return Ok(Res::Ignored);
    }
    Ok(Res::Ok)
}

fn write_lines(io: &mut Io, first: &str, other: &str, text: &str) {
    for (i, l) in text.lines().enumerate() {
        io.outln(format!("{}{l}", if i == 0 { first } else { other }));
    }
}

/// Run `iotedge check`; returns the exit code.
pub fn run_check(st: &mut State, opts: &CheckOpts, io: &mut Io) -> Result<i32, StateError> {
    st.bump("iotedge_check")?;
    // Like every simulator invocation, first let the (lazy) aziot-edged watchdog recreate missing modules.
    if st.services()?.is_active("aziot-edged")
        && st.env.fault("docker-down").is_none()
        && st.services()?.is_active("docker")
    {
        edged::reconcile(st)?;
    }
    let forced = st.env.fault("check-error").map(|c| {
        let c = c.lines().next().unwrap_or("").trim().to_string();
        if c.is_empty() {
            "certs-preloaded".to_string()
        } else {
            c
        }
    });
    let mut ctx = Ctx {
        iothub_hostname: opts.iothub_hostname.clone(),
        ..Default::default()
    };
    let mut checks: BTreeMap<String, Value> = BTreeMap::new();
    let (mut ok, mut warn, mut skipped, mut fatal, mut errors) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    'all: for (section, list) in sections() {
        if !opts.json {
            io.outln("");
            io.outln(section);
            io.outln("-".repeat(section.len()));
        }
        for (id, desc, f) in list {
            let mut info = json!({});
            let mut res = if opts.dont_run.iter().any(|d| d == id) {
                Res::Ignored
            } else {
                f(st, opts, &mut ctx, &mut info)?
            };
            if forced.as_deref() == Some(*id) && res != Res::Ignored {
                res = Res::Failed(vec![format!(
                    "(lab fault) check {id} forced to fail by /var/lib/edgefleet-lab/faults/check-error"
                )]);
            }
            if let Res::Warning(w) = &res {
                if opts.warnings_as_errors {
                    res = Res::Failed(w.clone());
                }
            }
            let result = match &res {
                Res::Ok => {
                    ok += 1;
                    if !opts.json {
                        io.outln(format!("\u{221a} {desc} - OK"));
                    }
                    json!({"result": "ok"})
                }
                Res::Warning(d) => {
                    warn += 1;
                    if !opts.json {
                        io.outln(format!("\u{203c} {desc} - Warning"));
                        write_lines(io, "    ", "    ", &d[0]);
                        if opts.verbose {
                            for c in &d[1..] {
                                write_lines(io, "        caused by: ", "                   ", c);
                            }
                        }
                    }
                    json!({"result": "warning", "details": d})
                }
                Res::Ignored => json!({"result": "ignored"}),
                Res::Skipped => {
                    skipped += 1;
                    if opts.verbose && !opts.json {
                        io.outln(format!("\u{203c} {desc} - Warning"));
                        io.outln("    skipping because of previous failures");
                    }
                    json!({"result": "skipped"})
                }
                Res::Fatal(d) | Res::Failed(d) => {
                    let is_fatal = matches!(res, Res::Fatal(_));
                    if is_fatal {
                        fatal += 1;
                    } else {
                        errors += 1;
                    }
                    if !opts.json {
                        io.outln(format!("\u{00d7} {desc} - Error"));
                        write_lines(io, "    ", "    ", &d[0]);
                        if opts.verbose {
                            for c in &d[1..] {
                                write_lines(io, "        caused by: ", "                   ", c);
                            }
                        }
                    }
                    json!({"result": if is_fatal { "fatal" } else { "error" }, "details": d})
                }
            };
            checks.insert(
                id.to_string(),
                json!({"result": result, "additional_info": info}),
            );
            if fatal > 0 {
                break 'all;
            }
        }
    }
    if !opts.json {
        io.outln(format!("{ok} check(s) succeeded."));
        let suffix = if opts.verbose {
            ""
        } else {
            " Re-run with --verbose for more details."
        };
        if warn > 0 {
            io.outln(format!("{warn} check(s) raised warnings.{suffix}"));
        }
        if fatal + errors > 0 {
            io.outln(format!(
                "{} check(s) raised errors.{suffix}",
                fatal + errors
            ));
        }
        if skipped > 0 {
            io.outln(format!(
                "{skipped} check(s) were skipped due to errors from other checks.{suffix}"
            ));
        }
    } else {
        let mut checks_obj = serde_json::Map::new();
        for (k, v) in checks {
            checks_obj.insert(k, v);
        }
        let out = json!({
            "additional_info": {
                "aziot_edged_version": IOTEDGE_VERSION,
                "docker_version": ctx.docker_version,
                "iothub_hostname": ctx.iothub_hostname,
                "local_gateway_hostname": ctx.parent_hostname,
                "now": time::rfc3339(st.env.now_ms),
                "os": {"id": "debian", "version_id": "12", "arch": "x86_64", "bitness": 64},
                "system_info": {
                    "kernel": "Linux",
                    "kernel_release": "6.1.0-18-amd64",
                    "kernel_version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)",
                    "os_name": "Debian GNU/Linux",
                    "os_version": "12",
                    "os_variant": null,
                    "os_build_id": null,
                    "cpu_architecture": "x86_64",
                    "product_name": "edgefleet lab device",
                    "system_vendor": "edgefleet"
                }
            },
            "checks": Value::Object(checks_obj)
        });
        io.outln(serde_json::to_string(&out).unwrap_or_default());
    }
    Ok(if fatal + errors > 0 { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_check_id_is_present_once() {
        let ids: Vec<&str> = all_checks().iter().map(|(_, id, _)| *id).collect();
        for expected in [
            "keyd-config-well-formed",
            "certd-config-well-formed",
            "tpmd-config-well-formed",
            "identityd-config-well-formed",
            "configs-up-to-date",
            "hostname",
            "aziot-version",
            "host-local-time",
            "identity-certificate-expiry",
            "est-identity-and-bootstrap-certificate-expiry",
            "local-ca-certificate-expiry",
            "certs-preloaded",
            "keyd-running",
            "certd-running",
            "tpmd-running",
            "identityd-running",
            "certs-read",
            "key-pairs-read",
            "est-server-https",
            "certs-match-private-keys",
            "host-connect-iothub-amqp",
            "host-connect-iothub-https",
            "host-connect-iothub-mqtt",
            "host-connect-dps-endpoint",
            "aziot-edged-config-well-formed",
            "config-up-to-date",
            "container-engine-uri",
            "parent_hostname",
            "container-resolve-parent-hostname",
            "connect-management-uri",
            "aziot-edge-version",
            "container-local-time",
            "container-engine-dns",
            "container-engine-ipv6",
            "container-engine-logrotate",
            "edge-agent-storage-mounted-from-host",
            "edge-hub-storage-mounted-from-host",
            "check-agent-image",
            "proxy-settings",
            "container-default-connect-upstream-amqp",
            "container-default-connect-upstream-https",
            "container-default-connect-upstream-mqtt",
            "container-connect-upstream-amqp",
            "container-connect-upstream-https",
            "container-connect-upstream-mqtt",
        ] {
            assert_eq!(
                ids.iter().filter(|i| **i == expected).count(),
                1,
                "{expected}"
            );
        }
        assert_eq!(ids.len(), 45);
    }

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
