//! The simulated IoT Edge daemons: what `aziot-edged` (and the identity services it socket-activates) do when
//! they start, and how the runtime modules come to exist.
//!
//! When aziot-edged starts with a valid applied config and a running engine, it creates (or restarts) the
//! `edgeAgent` container from `[agent]`, with the engine's CURRENT daemon defaults (log driver/options, DNS);
//! the simulated edgeAgent then creates `edgeHub` (and any custom modules) from the simulated deployment,
//! `/var/lib/edgefleet-lab/deployment.json` (a real deployment manifest: `modulesContent.$edgeAgent
//! ["properties.desired"]`), or a default edgeHub when there is none. Existing containers are never modified:
//! like real Docker they keep the configuration they were created with until removed (`docker rm -f edgeAgent`),
//! after which the next simulator invocation recreates them (aziot-edged's watchdog).
//!
//! Part of the services model, below the programs: it asks `engine` whether the engine answers and takes unit
//! descriptions from `units`. It never restarts Docker, never reads `/etc/aziot/config.toml` (only what
//! `iotedge config apply` produced) and must not import a program.

use super::applied::{self, EdgedSettings};
use super::engine::{digest, engine_up, split_image};
use super::state::{string_map, Container, LogConfig, State, StateError, IOTEDGE_VERSION};
use super::units::description;

/// The label edgeAgent puts on every module it owns (apply's hostname check lists containers by it).
pub const OWNER_LABEL: &str = "net.azure-devices.edge.owner";
/// Its value.
pub const OWNER_VALUE: &str = "Microsoft.Azure.Devices.Edge.Agent";

/// Start aziot-edged (as systemd would). Returns `Ok(Err(reason))` when the daemon fails to start.
pub fn start(st: &mut State) -> Result<Result<(), String>, StateError> {
    let now = st.env.now_ms;
    let pid = 1000 + (now % 30000) as u32;
    let ident = format!("aziot-edged[{pid}]");
    st.journal(
        "aziot-edged",
        "systemd[1]",
        "Starting Azure IoT Edge daemon...",
    )?;
    let failure = match applied::load(&st.env, "edged") {
        Err(_) => Some("Could not load settings: could not read config from /etc/aziot/edged/config.toml".to_string()),
        Ok(t) => match applied::edged_settings(&t) {
            Err(e) => Some(format!("Could not load settings: {e}")),
            Ok(_) if !engine_up(st)? => Some(
                "Failed to connect to the container runtime at unix:///var/run/docker.sock: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
                    .to_string(),
            ),
            Ok(_) => None,
        },
    };
    if let Some(reason) = failure {
        st.journal(
            "aziot-edged",
            &ident,
            &format!(
                "{} [INFO] - Starting Azure IoT Edge Daemon\n{} [ERR!] - {reason}",
                log_ts(now),
                log_ts(now)
            ),
        )?;
        st.journal(
            "aziot-edged",
            "systemd[1]",
            "aziot-edged.service: Main process exited, code=exited, status=1/FAILURE\naziot-edged.service: Failed with result 'exit-code'.\nFailed to start Azure IoT Edge daemon.",
        )?;
        st.services_mut()?.set("aziot-edged", "failed", now);
        return Ok(Err(reason));
    }
    st.journal(
        "aziot-edged",
        &ident,
        &format!(
            "{ts} [INFO] - Starting Azure IoT Edge Daemon\n{ts} [INFO] - Version - {IOTEDGE_VERSION}\n{ts} [INFO] - Obtaining Edge device provisioning data...",
            ts = log_ts(now)
        ),
    )?;
    st.journal(
        "aziot-edged",
        "systemd[1]",
        "Started Azure IoT Edge daemon.",
    )?;
    st.services_mut()?.set("aziot-edged", "active", now);
    // aziot-edged talks to the identity, keys and certificates services, which socket activation starts.
    for svc in ["aziot-identityd", "aziot-keyd", "aziot-certd"] {
        activate_identity_service(st, svc)?;
    }
    if uses_tpm(st) {
        activate_identity_service(st, "aziot-tpmd")?;
    }
    reconcile(st)?;
    Ok(Ok(()))
}

fn uses_tpm(st: &State) -> bool {
    applied::load(&st.env, "identityd")
        .ok()
        .and_then(|t| applied::identity_settings(&t).ok())
        .map(|i| i.source == "dps" && i.method.as_deref() == Some("tpm"))
        .unwrap_or(false)
}

/// Start one of the identity services; it fails without its applied config.
pub fn activate_identity_service(st: &mut State, svc: &str) -> Result<bool, StateError> {
    let now = st.env.now_ms;
    if st.services()?.is_active(svc) {
        return Ok(true);
    }
    let short = svc.trim_start_matches("aziot-");
    let desc = description(svc);
    st.journal(svc, "systemd[1]", &format!("Starting {desc}..."))?;
    let ident = format!("{svc}[{}]", 1000 + (now % 29000) as u32);
    match applied::load(&st.env, short) {
        Ok(_) => {
            st.journal(
                svc,
                &ident,
                &format!(
                    "{} [INFO] - Starting {desc}\n{} [INFO] - Version - {}",
                    log_ts(now),
                    log_ts(now),
                    super::state::AZIOT_VERSION
                ),
            )?;
            st.journal(svc, "systemd[1]", &format!("Started {desc}."))?;
            st.services_mut()?.set(svc, "active", now);
            Ok(true)
        }
        Err(_) => {
            st.journal(
                svc,
                &ident,
                &format!(
                    "{} [ERR!] - could not read config from /etc/aziot/{short}/config.toml: No such file or directory (os error 2)",
                    log_ts(now)
                ),
            )?;
            st.journal(
                svc,
                "systemd[1]",
                &format!("{svc}.service: Main process exited, code=exited, status=1/FAILURE\n{svc}.service: Failed with result 'exit-code'.\nFailed to start {desc}."),
            )?;
            st.services_mut()?.set(svc, "failed", now);
            Ok(false)
        }
    }
}

/// The timestamp the aziot daemons prefix their log lines with.
fn log_ts(ms: u64) -> String {
    super::time::rfc3339(ms)
}

/// What a module container should look like when (re)created.
#[derive(Debug, Clone, Default)]
pub struct ModuleSpec {
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Full createOptions (Docker API JSON).
    pub create_options: serde_json::Value,
    /// Extra environment (`NAME=value` from the runtime), appended after createOptions.Env.
    pub env: Vec<String>,
    /// Network name.
    pub network: String,
}

/// Ensure the runtime modules exist and run, if aziot-edged is up and the engine answers.
pub fn reconcile(st: &mut State) -> Result<(), StateError> {
    if !st.services()?.is_active("aziot-edged") || !engine_up(st)? {
        return Ok(());
    }
    let Ok(table) = applied::load(&st.env, "edged") else {
        return Ok(());
    };
    let Ok(settings) = applied::edged_settings(&table) else {
        return Ok(());
    };
    let identity = applied::load(&st.env, "identityd")
        .ok()
        .and_then(|t| applied::identity_settings(&t).ok());
    let agent = agent_spec(&settings, identity.as_ref());
    let now = st.env.now_ms;
    let agent_ok = ensure_module(st, &agent, settings.pull_never)?;
    if !agent_ok {
        st.journal(
            "aziot-edged",
            &format!("aziot-edged[{}]", 1000 + (now % 30000) as u32),
            &format!(
                "{} [WARN] - Could not start module edgeAgent: image {} not found locally and imagePullPolicy is never",
                log_ts(now),
                settings.agent_image
            ),
        )?;
        return Ok(());
    }
    // edgeAgent runs: it creates the modules of the deployment.
    for m in deployment_modules(st, &settings, identity.as_ref()) {
        ensure_module(st, &m, false)?;
    }
    Ok(())
}

fn runtime_env(
    module_id: &str,
    settings: &EdgedSettings,
    identity: Option<&applied::IdentitySettings>,
) -> Vec<String> {
    let mut env = vec![
        format!(
            "IOTEDGE_IOTHUBHOSTNAME={}",
            identity
                .and_then(|i| i.iothub_hostname.clone())
                .unwrap_or_else(|| "lab-hub.azure-devices.net".into())
        ),
        format!(
            "IOTEDGE_DEVICEID={}",
            identity
                .and_then(|i| i.device_id.clone())
                .unwrap_or_else(|| settings.hostname.clone())
        ),
        format!("IOTEDGE_MODULEID={module_id}"),
        "IOTEDGE_WORKLOADURI=unix:///var/run/iotedge/workload.sock".into(),
        "IOTEDGE_APIVERSION=2019-01-30".into(),
        "IOTEDGE_AUTHSCHEME=sasToken".into(),
        format!("EdgeDeviceHostName={}", settings.hostname),
    ];
    if module_id == "$edgeAgent" {
        env.push("IOTEDGE_MANAGEMENTURI=unix:///var/run/iotedge/mgmt.sock".into());
        env.push("Mode=iotedged".into());
        env.push(format!("NetworkId={}", settings.network));
    }
    if let Some(p) = &settings.parent_hostname {
        env.push(format!("IOTEDGE_PARENTHOSTNAME={p}"));
    }
    env
}

fn agent_spec(
    settings: &EdgedSettings,
    identity: Option<&applied::IdentitySettings>,
) -> ModuleSpec {
    let mut env: Vec<String> = settings
        .agent_env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    env.extend(runtime_env("$edgeAgent", settings, identity));
    let mut co = settings.create_options.clone();
    if !co.is_object() {
        co = serde_json::json!({});
    }
    // aziot-edged mounts its sockets into edgeAgent.
    let hc = co
        .as_object_mut()
        .map(|o| o.entry("HostConfig").or_insert(serde_json::json!({})));
    if let Some(serde_json::Value::Object(hc)) = hc {
        let binds = hc.entry("Binds").or_insert(serde_json::json!([]));
        if let Some(a) = binds.as_array_mut() {
            a.push("/var/run/iotedge/mgmt.sock:/var/run/iotedge/mgmt.sock".into());
            a.push("/var/run/iotedge/workload.sock:/var/run/iotedge/workload.sock".into());
        }
    }
    ModuleSpec {
        name: settings.agent_name.clone(),
        image: resolve_upstream(&settings.agent_image, settings.parent_hostname.as_deref()),
        create_options: co,
        env,
        network: settings.network.clone(),
    }
}

fn resolve_upstream(image: &str, parent: Option<&str>) -> String {
    match (image.strip_prefix("$upstream"), parent) {
        (Some(rest), Some(p)) => format!("{p}{rest}"),
        _ => image.to_string(),
    }
}

/// The modules edgeAgent creates: from the simulated deployment, else a default edgeHub.
fn deployment_modules(
    st: &State,
    settings: &EdgedSettings,
    identity: Option<&applied::IdentitySettings>,
) -> Vec<ModuleSpec> {
    let path = st.env.state_file("deployment.json");
    let manifest: Option<serde_json::Value> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let desired = manifest.as_ref().and_then(|m| {
        m.pointer("/modulesContent/$edgeAgent/properties.desired")
            .or_else(|| m.pointer("/content/modulesContent/$edgeAgent/properties.desired"))
    });
    let mut out = Vec::new();
    match desired {
        Some(d) => {
            if let Some(hub) = d.pointer("/systemModules/edgeHub") {
                out.push(module_from_manifest(
                    "edgeHub", "$edgeHub", hub, settings, identity,
                ));
            }
            if let Some(mods) = d.get("modules").and_then(|m| m.as_object()) {
                for (name, m) in mods {
                    out.push(module_from_manifest(name, name, m, settings, identity));
                }
            }
        }
        None => {
            let image = if settings.agent_image.contains("azureiotedge-agent") {
                settings
                    .agent_image
                    .replace("azureiotedge-agent", "azureiotedge-hub")
            } else {
                "mcr.microsoft.com/azureiotedge-hub:1.5".to_string()
            };
            out.push(ModuleSpec {
                name: "edgeHub".into(),
                image: resolve_upstream(&image, settings.parent_hostname.as_deref()),
                create_options: serde_json::json!({
                    "HostConfig": {"PortBindings": {
                        "443/tcp": [{"HostPort": "443"}],
                        "5671/tcp": [{"HostPort": "5671"}],
                        "8883/tcp": [{"HostPort": "8883"}]
                    }}
                }),
                env: runtime_env("$edgeHub", settings, identity),
                network: settings.network.clone(),
            });
        }
    }
    out
}

fn module_from_manifest(
    name: &str,
    module_id: &str,
    m: &serde_json::Value,
    settings: &EdgedSettings,
    identity: Option<&applied::IdentitySettings>,
) -> ModuleSpec {
    let s = m.get("settings").cloned().unwrap_or_default();
    let image = s
        .get("image")
        .and_then(|v| v.as_str())
        .unwrap_or("mcr.microsoft.com/azureiotedge-hub:1.5")
        .to_string();
    // createOptions is a stringified JSON, possibly split into createOptions01..createOptions99.
    let mut co_text = s
        .get("createOptions")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    for i in 1..100 {
        match s
            .get(format!("createOptions{i:02}"))
            .and_then(|v| v.as_str())
        {
            Some(part) => co_text.push_str(part),
            None => break,
        }
    }
    let create_options = if co_text.trim().is_empty() {
        serde_json::json!({})
    } else {
        serde_json::from_str(&co_text).unwrap_or_else(|_| serde_json::json!({}))
    };
    let mut env: Vec<String> = m
        .get("env")
        .and_then(|e| e.as_object())
        .map(|e| {
            e.iter()
                .map(|(k, v)| {
                    let val = v.get("value").cloned().unwrap_or(serde_json::Value::Null);
                    let val = match val {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    format!("{k}={val}")
                })
                .collect()
        })
        .unwrap_or_default();
    env.extend(runtime_env(module_id, settings, identity));
    ModuleSpec {
        name: name.to_string(),
        image: resolve_upstream(&image, settings.parent_hostname.as_deref()),
        create_options,
        env,
        network: settings.network.clone(),
    }
}

/// Create the module's container if it is missing, or start it if it is stopped. Returns false when its image
/// is unavailable (not loaded, and imagePullPolicy never or an `airgapped` device that cannot pull).
fn ensure_module(st: &mut State, spec: &ModuleSpec, pull_never: bool) -> Result<bool, StateError> {
    let now = st.env.now_ms;
    let pull_never = pull_never || super::pkgdb::airgapped(st);
    let d = st.docker_mut()?;
    if let Some(i) = d.find(&spec.name) {
        let c = &mut d.containers[i];
        if c.status != "running" {
            c.status = "running".into();
            c.started_ms = now;
            c.restart_count += 1;
        }
        return Ok(true);
    }
    let (repo, tag) = split_image(&spec.image);
    let have_image = d
        .images
        .iter()
        .any(|im| im.repository == repo && im.tag == tag);
    if !have_image {
        if pull_never {
            return Ok(false);
        }
        d.images.push(super::state::Image {
            repository: repo.clone(),
            tag: tag.clone(),
            id: format!("sha256:{}", digest(&spec.image)),
            created_ms: now,
            size: 180_000_000 + (digest(&spec.image).as_bytes()[0] as u64) * 100_000,
        });
    }
    let c = new_container(d, spec, now);
    // Named volumes in Binds are created on demand, as dockerd does.
    for b in &c.binds {
        let src = b.split(':').next().unwrap_or("");
        if !src.is_empty() && !src.starts_with('/') && !d.volumes.iter().any(|v| v.name == src) {
            d.volumes.push(super::state::Volume {
                name: src.to_string(),
                driver: "local".into(),
            });
        }
    }
    d.containers.push(c);
    Ok(true)
}

/// Build a container as dockerd would create it NOW: unset log config and DNS come from the daemon defaults (and
/// the daemon's log-opts fill in the options of a container that names the default driver).
pub fn new_container(d: &super::state::Docker, spec: &ModuleSpec, now: u64) -> Container {
    let co = &spec.create_options;
    let hc = co.get("HostConfig");
    let mut env: Vec<String> = co
        .get("Env")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    env.extend(spec.env.iter().cloned());
    let binds: Vec<String> = hc
        .and_then(|h| h.get("Binds"))
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let log_config = match hc.and_then(|h| h.get("LogConfig")) {
        Some(lc)
            if lc
                .get("Type")
                .and_then(|t| t.as_str())
                .map(|t| !t.is_empty())
                .unwrap_or(false) =>
        {
            let kind = lc["Type"].as_str().unwrap_or_default().to_string();
            let mut config = string_map(lc.get("Config"));
            // dockerd fills in the daemon's log-opts the container leaves out when it uses the default driver.
            if kind == d.log_driver() {
                for (k, v) in d.log_opts() {
                    config.entry(k).or_insert(v);
                }
            }
            LogConfig { kind, config }
        }
        _ => LogConfig {
            kind: d.log_driver(),
            config: d.log_opts(),
        },
    };
    let dns = hc
        .and_then(|h| h.get("Dns"))
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| d.dns());
    let mut labels = string_map(co.get("Labels"));
    labels.insert(OWNER_LABEL.into(), OWNER_VALUE.into());
    Container {
        id: digest(&format!("{}-{}-{}", spec.name, now, d.containers.len())),
        name: spec.name.clone(),
        image: spec.image.clone(),
        image_id: format!("sha256:{}", digest(&spec.image)),
        status: "running".into(),
        created_ms: now,
        started_ms: now,
        finished_ms: 0,
        exit_code: 0,
        env,
        binds,
        labels,
        log_config,
        dns,
        network: spec.network.clone(),
        create_options: co.clone(),
        restart_count: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::sim::state::Docker;

    #[test]
    fn new_containers_take_the_daemon_defaults_now() {
        let mut d = Docker::default();
        let spec = ModuleSpec {
            name: "edgeAgent".into(),
            image: "img:1".into(),
            create_options: serde_json::json!({}),
            env: vec![],
            network: "azure-iot-edge".into(),
        };
        let c1 = new_container(&d, &spec, 1);
        assert_eq!(c1.log_config.kind, "json-file");
        d.daemon_config = serde_json::json!({"log-driver": "local", "log-opts": {"max-size": "10m", "max-file": "3"}, "dns": ["10.0.0.53"]})
            .as_object()
            .cloned()
            .unwrap();
        let c2 = new_container(&d, &spec, 2);
        assert_eq!(c2.log_config.kind, "local");
        assert_eq!(c2.log_config.config["max-file"], "3");
        assert_eq!(c2.dns, vec!["10.0.0.53".to_string()]);
        assert_eq!(c2.labels[OWNER_LABEL], OWNER_VALUE);
        assert_ne!(c1.id, c2.id);
        // The default driver named without options gets the daemon's; another driver keeps its own.
        let own = |t: &str| ModuleSpec {
            create_options: serde_json::json!({"HostConfig": {"LogConfig": {"Type": t, "Config": {"max-file": "5"}}}}),
            ..spec.clone()
        };
        let c3 = new_container(&d, &own("local"), 3);
        assert_eq!(
            (
                c3.log_config.config["max-file"].as_str(),
                c3.log_config.config["max-size"].as_str()
            ),
            ("5", "10m")
        );
        let c4 = new_container(&d, &own("json-file"), 4);
        assert_eq!(c4.log_config.config.len(), 1);
    }
}
