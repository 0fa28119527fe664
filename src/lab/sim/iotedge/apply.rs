//! `iotedge config apply [-c FILE]` as IoT Edge 1.5 does it.
//!
//! Order of events (as in `edgelet/iotedge/src/config/apply.rs`): root check; lookup of the five service users
//! in the device's `/etc/passwd`; read + parse the super config (serde errors verbatim); aziotctl's checks (DPS
//! in nested mode); the previous-hostname check against the engine's module containers (or "Warning: the
//! previous identity config file is unreadable" on first apply); then the writes — the inline device-id key
//! under `/var/secrets/aziot/keyd/` and the five `config.d/00-super.toml` files (header, mode 0600, owned by
//! each service user) — and finally a restart of the aziot services through `systemctl` (a failing systemctl
//! is printed but apply still exits 0). It ALWAYS restarts, even when nothing changed, and never restarts
//! Docker. The `apply-fails` fault makes it exit 1 before writing anything; a successful apply sets an armed
//! `crashloop-after-change` fault off (edgeHub crash-loops from then on, see `state`). `systemctl` runs as a child process
//! (the dispatcher's `Spawn`), so its calls show up in `invocations.log`; this module must not import a program.
//!
//! The device-independent steps are pure functions tests call in-process: [`parse_and_check`] (parse with
//! the device's crates, then aziotctl's checks; warnings such as plain-HTTP EST URLs go to stderr) and
//! [`read_inputs`] (the imported master encryption key, then `additional_info`, in the device's order); what
//! each service's file contains is built by the `generate` submodule.
//!
//! Messages: every failure is printed as `Command failed: <message>` on stderr with exit code 1. The hostname
//! refusal reproduces the real code's argument order, which names the PREVIOUS hostname first (`the hostname
//! in the config PREVIOUS is different from the previous hostname NEW`) — a quirk of the real binary.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::lab::sim::applied::{self, HEADER};
use crate::lab::sim::config::{self, ProvisioningType, SuperConfig};
use crate::lab::sim::edged;
use crate::lab::sim::engine;
use crate::lab::sim::program::{spawn_child, Io, Spawn};
use crate::lab::sim::state::{State, StateError, AZIOT_SERVICES, AZIOT_SOCKETS};
use crate::lab::sim::users::Accounts;

mod generate;

use generate::s;
pub use generate::{generate, Generated, Uids};

/// The default super-config location.
pub const DEFAULT_CONFIG: &str = "/etc/aziot/config.toml";

const SERVICE_USERS: [&str; 5] = ["aziotks", "aziotcs", "aziotid", "aziottpm", "iotedge"];

fn is_dps(cfg: &SuperConfig) -> bool {
    matches!(
        cfg.aziot.provisioning.provisioning,
        ProvisioningType::Dps { .. }
    )
}

/// `iotedge config apply`.
pub fn config_apply(
    st: &mut State,
    config_file: &str,
    io: &mut Io,
    spawn: Spawn,
) -> Result<i32, StateError> {
    match apply_inner(st, config_file, io, spawn)? {
        Ok(()) => {
            st.bump("config_apply")?;
            st.crashloop_after_change()?;
            Ok(0)
        }
        Err(msg) => {
            io.errln(format!("Command failed: {msg}"));
            st.bump("config_apply_failed")?;
            Ok(1)
        }
    }
}

fn host_path(st: &State, p: &str) -> PathBuf {
    if p.starts_with('/') {
        st.env.path(p)
    } else {
        PathBuf::from(p)
    }
}

fn io_text(e: &io::Error) -> String {
    e.to_string()
}

/// Parse a super config and run aziotctl's checks on it, as `iotedge config apply` does before it looks at the
/// device: `Err` is the message the device prints after `Command failed: `.
pub fn parse_and_check(text: &str) -> Result<config::Parsed, String> {
    let parsed = config::parse(text).map_err(|e| format!("could not parse config file: {e}"))?;
    if is_dps(&parsed.config) && parsed.config.aziot.parent_hostname.is_some() {
        return Err("DPS provisioning is not supported in nested mode".into());
    }
    Ok(parsed)
}

/// The device files a config makes apply read, once parsed and checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    /// The bytes of `imported_master_encryption_key`.
    pub master_encryption_key: Option<Vec<u8>>,
    /// The table `additional_info` names.
    pub additional_info: BTreeMap<String, String>,
}

/// Read what the config refers to, in the device's order (the imported master encryption key, then
/// `additional_info`), through `read` (a device path to its bytes). `Err` is the device's message.
pub fn read_inputs(
    cfg: &SuperConfig,
    read: &dyn Fn(&str) -> io::Result<Vec<u8>>,
) -> Result<Inputs, String> {
    let mut inputs = Inputs::default();
    if let Some(k) = &cfg.imported_master_encryption_key {
        let shown = k.display();
        let bytes = read(&k.to_string_lossy()).map_err(|e| {
            format!(
                "could not import master encryption key file {shown}: {}",
                io_text(&e)
            )
        })?;
        inputs.master_encryption_key = Some(bytes);
    }
    if let Some(ai) = &cfg.additional_info {
        if ai.scheme() != "file" {
            return Err(format!(
                "unsupported additional_info scheme: {}",
                ai.scheme()
            ));
        }
        let path = ai.file_path().ok_or("additional_info is an invalid URI")?;
        let bytes = read(&path)
            .map_err(|e| format!("failed to read additional_info from {path}: {e:?}"))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| format!("failed to parse additional_info: {e}"))?;
        inputs.additional_info =
            toml_07::from_str(text).map_err(|e| format!("invalid toml at {path}: {e:?}"))?;
    }
    Ok(inputs)
}

fn apply_inner(
    st: &mut State,
    config_file: &str,
    io: &mut Io,
    spawn: Spawn,
) -> Result<Result<(), String>, StateError> {
    if st.env.euid != 0 {
        return Ok(Err("this command must be run as root".into()));
    }
    let acc = Accounts::load(&st.env);
    for u in SERVICE_USERS {
        if acc.user(u).is_none() {
            return Ok(Err(format!("could not query {u} user information")));
        }
    }
    let user = |n: &str| acc.user(n).cloned().expect("checked above");
    let uids = Uids {
        aziotcs: user("aziotcs").uid,
        aziotid: user("aziotid").uid,
        iotedge: user("iotedge").uid,
    };
    let bytes = match fs::read(host_path(st, config_file)) {
        Ok(b) => b,
        Err(e) => {
            return Ok(Err(format!(
                "could not read config file {config_file}: {}",
                io_text(&e)
            )))
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => return Ok(Err(format!("error parsing config: {}", e.utf8_error()))),
    };
    let parsed = parse_and_check(&text);
    if let Ok(p) = &parsed {
        for w in &p.warnings {
            io.errln(w);
        }
    }
    let cfg = match parsed {
        Ok(p) => p.config,
        Err(e) => return Ok(Err(e)),
    };
    let raw: toml::Table = text.parse().unwrap_or_default();
    let hostname = cfg
        .aziot
        .hostname
        .clone()
        .unwrap_or_else(|| st.env.hostname.clone());

    // The previous identity config and the hostname check.
    let old = fs::read_to_string(st.env.path(&applied::super_path("identityd")))
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| {
            t.get("hostname")
                .and_then(|h| h.as_str())
                .map(str::to_string)
        });
    match old {
        Some(previous) => {
            if !engine::engine_up(st)? {
                return Ok(Err(format!(
                    "Error {{ kind: Connect, message: \"Cannot connect to the Docker daemon at {}. Is the docker daemon running?\" }}",
                    cfg.moby_runtime.uri
                )));
            }
            let modules = st.docker()?.containers.iter().any(|c| {
                c.labels.get(edged::OWNER_LABEL).map(String::as_str) == Some(edged::OWNER_VALUE)
            });
            if previous != hostname && modules {
                return Ok(Err(format!(
                    "Cannot apply config because the hostname in the config {previous} is different from the previous hostname {hostname}. To update the hostname, run the following command which deletes all IoT Edge modules and reapplies the configuration. Or, revert the hostname change in the config.toml file.\n                    sudo iotedge system stop && sudo docker rm -f $(sudo docker ps -aq -f \"label=net.azure-devices.edge.owner=Microsoft.Azure.Devices.Edge.Agent\") && sudo iotedge config apply\n                Warning: Data stored in the modules is lost when above command is executed."
                )));
            }
        }
        None => io.outln("Warning: the previous identity config file is unreadable"),
    }

    let env = st.env.clone();
    let inputs = match read_inputs(&cfg, &|p| fs::read(env.path(p))) {
        Ok(i) => i,
        Err(e) => return Ok(Err(e)),
    };

    if let Some(msg) = st.env.fault("apply-fails") {
        // The fault's content is printed as the failure message; the default mimics a full disk.
        return Ok(Err(if msg.is_empty() {
            "could not create /etc/aziot/keyd/config.d/00-super.toml\n\nCaused by:\n    No space left on device (os error 28)".to_string()
        } else {
            msg.strip_prefix("Command failed: ")
                .unwrap_or(&msg)
                .to_string()
        }));
    }

    let mut generated = generate(&cfg, &raw, &inputs.additional_info, &hostname, uids);
    if inputs.master_encryption_key.is_some() {
        if let Some(toml::Value::Table(pk)) = generated.keyd.get_mut("preloaded_keys") {
            pk.insert(
                "iotedge_master_encryption_id".into(),
                s("file:///var/secrets/aziot/keyd/imported-master-encryption-key"),
            );
        }
    }
    let text_of = |t: &toml::Table| format!("{HEADER}{}", toml::to_string(t).unwrap_or_default());

    if let Some(key) = &generated.device_id_key {
        io.outln("Note: Symmetric key will be written to /var/secrets/aziot/keyd/device-id");
        let ks = user("aziotks");
        let dir = st.env.path("/var/secrets/aziot/keyd");
        if let Err(e) = create_dir_owned(&dir, ks.uid, ks.gid, 0o700) {
            return Ok(Err(format!(
                "could not create /var/secrets/aziot/keyd directory\n\nCaused by:\n    {e}"
            )));
        }
        if let Err(e) = write_owned(&dir.join("device-id"), key, ks.uid, ks.gid, 0o600) {
            return Ok(Err(format!(
                "could not create /var/secrets/aziot/keyd/device-id\n\nCaused by:\n    {e}"
            )));
        }
    }
    if let Some(key) = &inputs.master_encryption_key {
        io.outln("Note: Imported master encryption key will be written to /var/secrets/aziot/keyd/imported-master-encryption-key");
        let ks = user("aziotks");
        let dir = st.env.path("/var/secrets/aziot/keyd");
        if let Err(e) = create_dir_owned(&dir, ks.uid, ks.gid, 0o700) {
            return Ok(Err(format!(
                "could not create /var/secrets/aziot/keyd directory\n\nCaused by:\n    {e}"
            )));
        }
        let path = dir.join("imported-master-encryption-key");
        if let Err(e) = write_owned(&path, key, ks.uid, ks.gid, 0o600) {
            return Ok(Err(format!(
                "could not create /var/secrets/aziot/keyd/imported-master-encryption-key\n\nCaused by:\n    {e}"
            )));
        }
    }
    for (svc, owner) in applied::SERVICE_FILES {
        let table = match svc {
            "keyd" => &generated.keyd,
            "certd" => &generated.certd,
            "identityd" => &generated.identityd,
            "tpmd" => &generated.tpmd,
            _ => &generated.edged,
        };
        let u = user(owner);
        let path = applied::super_path(svc);
        let host = st.env.path(&path);
        if let Some(parent) = host.parent() {
            let _ = fs::create_dir_all(parent);
        }
        if let Err(e) = write_owned(&host, text_of(table).as_bytes(), u.uid, u.gid, 0o600) {
            return Ok(Err(format!(
                "could not create {path}\n\nCaused by:\n    {e}"
            )));
        }
    }

    io.outln("Azure IoT Edge has been configured successfully!");
    io.outln("");
    io.outln("Restarting service for configuration to take effect...");
    restart_services(st, io, spawn)?;
    io.outln("Done.");
    Ok(Ok(()))
}

fn create_dir_owned(dir: &std::path::Path, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
}

fn write_owned(
    path: &std::path::Path,
    bytes: &[u8],
    uid: u32,
    gid: u32,
    mode: u32,
) -> io::Result<()> {
    fs::write(path, bytes)?;
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Run `systemctl ARGS` as a child process, as the real `iotedge` does: (exit code, stdout, stderr).
fn systemctl(
    st: &mut State,
    spawn: Spawn,
    args: &[&str],
) -> Result<(i32, String, String), StateError> {
    let (code, child) = spawn_child(st, spawn, "systemctl", args)?;
    Ok((code, child.out, child.err))
}

fn print_command_error(io: &mut Io, out: &str, err: &str) {
    io.errln("systemctl exited with non-zero status code.");
    io.errln("stdout:");
    io.errln("=======");
    io.out(out);
    io.errln("stderr:");
    io.errln("=======");
    io.out(err);
    io.errln("");
}

/// Restart the IoT Edge services as `iotedge system restart` / `config apply` do: stop every service, start
/// every socket, start aziot-edged (which activates the others). Failures are printed, never fatal.
pub fn restart_services(st: &mut State, io: &mut Io, spawn: Spawn) -> Result<(), StateError> {
    st.bump("service_restart")?;
    for svc in AZIOT_SERVICES {
        io.out(format!("Stopping {svc}.service..."));
        let (code, out, err) = systemctl(st, spawn, &["stop", &format!("{svc}.service")])?;
        if code == 0 {
            io.outln("Stopped!");
        } else {
            print_command_error(io, &out, &err);
        }
    }
    for sock in AZIOT_SOCKETS {
        io.out(format!("Starting {sock}..."));
        let (code, out, err) = systemctl(st, spawn, &["start", sock])?;
        if code == 0 {
            io.outln("Started!");
        } else {
            print_command_error(io, &out, &err);
        }
    }
    io.out("Starting aziot-edged.service...");
    let (code, out, err) = systemctl(st, spawn, &["start", "aziot-edged.service"])?;
    if code == 0 {
        io.outln("Started!");
    } else {
        print_command_error(io, &out, &err);
    }
    Ok(())
}
