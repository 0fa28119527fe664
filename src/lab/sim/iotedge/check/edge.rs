//! The IoT Edge checks (`iotedge check` proper): aziot-edged's applied config, the container engine and its
//! daemon.json (DNS, IPv6, log rotation), the parent hostname, the package version, the modules' storage, the
//! agent image and the upstream connectivity rules.
//!
//! Each check only reads device state and fills `Ctx` for later checks; it must not print or write files.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::identity::is_rfc_1035_valid;
use super::model::{caller_cred, chain, offline, CheckOpts, Ctx, Res};
use crate::lab::sim::applied::{self, LoadError};
use crate::lab::sim::engine;
use crate::lab::sim::state::{State, StateError, IOTEDGE_VERSION};
use crate::lab::sim::users::{self, Accounts};

pub(super) fn edged_well_formed(
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

pub(super) fn container_engine(
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
    if !engine::engine_up(st)? {
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

pub(super) fn parent_hostname(
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

pub(super) fn aziot_edge_version(
    st: &mut State,
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
        None if ctx.airgapped => {
            return Ok(offline(
                "Error while fetching latest versions of edge components",
                "aka.ms",
            ))
        }
        None => IOTEDGE_VERSION.to_string(),
    };
    let actual = st.iotedge_version();
    *info = json!({"actual_edged_version": actual, "expected_edged_version": expected});
    if expected != actual {
        return Ok(Res::Warning(vec![format!(
            "Installed IoT Edge daemon has version {actual} but {expected} is the latest stable version available.\nPlease see https://aka.ms/iotedge-update-runtime for update instructions."
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

pub(super) fn container_engine_dns(
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

pub(super) fn container_engine_ipv6(
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

pub(super) fn container_engine_logrotate(
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

pub(super) fn storage_mounted(
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

pub(super) fn check_agent_image(
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
    if ctx.airgapped && ctx.parent_hostname.is_none() {
        let registry = settings
            .agent_image
            .split('/')
            .next()
            .unwrap_or("")
            .to_string();
        return Ok(offline(
            &format!("Failed to get edge Agent image {}", settings.agent_image),
            &registry,
        ));
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

/// `proxy-settings`: edgeAgent's `https_proxy` (config.toml `[agent.env]`) must equal the one systemd gives
/// Moby, aziot-edged and aziot-identityd (their loaded drop-in environments; unset counts as empty), else a
/// warning naming all four, as 1.5 words it.
pub(super) fn proxy_settings(
    st: &mut State,
    _o: &CheckOpts,
    ctx: &mut Ctx,
    _i: &mut Value,
) -> Result<Res, StateError> {
    let Some(s) = &ctx.settings else {
        return Ok(Res::Skipped);
    };
    let agent = s.agent_env.get("https_proxy").cloned().unwrap_or_default();
    let of = |unit: &str| -> Result<String, StateError> {
        Ok(crate::lab::sim::unitenv::loaded(&st.env, unit)?
            .get("https_proxy")
            .cloned()
            .unwrap_or_default())
    };
    let (edged, identityd, moby) = (of("aziot-edged")?, of("aziot-identityd")?, of("docker")?);
    if agent == edged && agent == identityd && agent == moby {
        return Ok(Res::Ok);
    }
    Ok(Res::Warning(vec![format!(
        "The proxy setting for IoT Edge Agent {agent:?}, IoT Edge Daemon {edged:?}, IoT Identity Daemon {identityd:?}, and Moby {moby:?} may need to be identical."
    )]))
}

pub(super) fn upstream(ctx: &Ctx, mqtt: bool) -> Result<Res, StateError> {
    if ctx.settings.is_none() || !ctx.docker_ok {
        return Ok(Res::Skipped);
    }
    if ctx.parent_hostname.is_none() && ctx.iothub_hostname.is_none() {
        return Ok(Res::Skipped);
    }
    if mqtt && ctx.parent_hostname.is_some() {
        return Ok(Res::Ignored);
    }
    if ctx.airgapped {
        let host = ctx
            .parent_hostname
            .clone()
            .or_else(|| ctx.iothub_hostname.clone())
            .unwrap_or_default();
        return Ok(offline(
            "Container on the default network could not connect to upstream",
            &host,
        ));
    }
    Ok(Res::Ok)
}
