//! What the lab's maintenance states put on a device, through the simulator's own state (so every program sees
//! it): `dangling-images` (untagged images with their sizes), `unused-volumes` (volumes with real data under
//! the Docker root, one of them mounted by a stopped container, one of them edgeHub's store that no container
//! mounts right now), `old-runtime` (older aziot-edge, identity service and Moby packages, which `iotedge
//! version` follows, and the engine version `docker version` prints); and the module faults ([`ModuleFault`]: a
//! running module container as a deployment with a rolling edgeHub tag, no log limits, privileges, no memory
//! limit or no storage bind would have created it). [`clear`] takes all of it away again (the changed containers are removed, so
//! the IoT Edge daemons recreate them from the deployment). It must not import a program.

use std::fs;
use std::io;
use std::path::Path;

use super::engine;
use super::state::{
    default_packages, write_json, Container, Engine, Env, Image, LogConfig, State, StateError,
    Volume,
};

/// Images `dangling-images` adds: (a seed for the ID, bytes).
pub const DANGLING_IMAGES: [(&str, u64); 2] = [
    ("lab-dangling-1", 52_428_800),
    ("lab-dangling-2", 31_457_280),
];
/// Volumes `unused-volumes` adds that no container mounts and nothing protects: (name, bytes of data).
pub const UNUSED_VOLUMES: [(&str, u64); 2] = [("lab-cache", 3 << 20), ("lab-scratch", 1 << 20)];
/// The volume a stopped container mounts (must survive a clean-up).
pub const USED_VOLUME: &str = "lab-data";
/// edgeHub's store as a named volume, not mounted while edgeHub is being recreated (must survive a clean-up).
pub const EDGE_HUB_STORE: &str = "edgehub";
/// The stopped container that mounts [`USED_VOLUME`].
pub const STOPPED_CONTAINER: &str = "lab-old-job";
const STOPPED_IMAGE: (&str, &str) = ("busybox", "1.36");
/// Versions `old-runtime` installs.
pub const OLD_PACKAGES: [(&str, &str); 4] = [
    ("aziot-edge", "1.4.27-1"),
    ("aziot-identity-service", "1.4.9-1"),
    ("moby-engine", "20.10.27+azure-ubuntu22.04u1"),
    ("moby-cli", "20.10.27+azure-ubuntu22.04u1"),
];
const OLD_ENGINE: &str = "20.10.27+azure-1";

fn err(e: StateError) -> io::Error {
    io::Error::other(e.to_string())
}

fn with_state(root: &Path, f: impl FnOnce(&mut State) -> Result<(), StateError>) -> io::Result<()> {
    let mut st = State::open(Env::for_root(root)).map_err(err)?;
    f(&mut st).map_err(err)?;
    st.flush().map_err(err)
}

fn write_volume_data(root: &Path, name: &str, bytes: u64) -> io::Result<()> {
    let dir = root.join("var/lib/docker/volumes").join(name).join("_data");
    fs::create_dir_all(&dir)?;
    let f = fs::File::create(dir.join("data.bin"))?;
    // Real blocks, not a sparse file: `du` counts what the disk holds.
    let chunk = vec![0x5au8; 64 * 1024];
    let mut w = io::BufWriter::new(f);
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        io::Write::write_all(&mut w, &chunk[..n])?;
        left -= n as u64;
    }
    io::Write::flush(&mut w)
}

/// `dangling-images`.
pub fn add_dangling_images(root: &Path) -> io::Result<()> {
    with_state(root, |st| {
        let now = st.env.now_ms;
        let d = st.docker_mut()?;
        for (seed, size) in DANGLING_IMAGES {
            let id = format!("sha256:{}", engine::digest(seed));
            if !d.images.iter().any(|i| i.id == id) {
                d.images.push(Image {
                    repository: "<none>".into(),
                    tag: "<none>".into(),
                    id,
                    created_ms: now.saturating_sub(30 * 86_400_000),
                    size,
                });
            }
        }
        Ok(())
    })
}

/// `unused-volumes`.
pub fn add_unused_volumes(root: &Path) -> io::Result<()> {
    for (name, bytes) in UNUSED_VOLUMES {
        write_volume_data(root, name, bytes)?;
    }
    write_volume_data(root, USED_VOLUME, 2 << 20)?;
    write_volume_data(root, EDGE_HUB_STORE, 2 << 20)?;
    with_state(root, |st| {
        let now = st.env.now_ms;
        let d = st.docker_mut()?;
        let names = UNUSED_VOLUMES
            .iter()
            .map(|(n, _)| *n)
            .chain([USED_VOLUME, EDGE_HUB_STORE]);
        for name in names {
            if !d.volumes.iter().any(|v| v.name == name) {
                d.volumes.push(Volume {
                    name: name.into(),
                    driver: "local".into(),
                });
            }
        }
        let (repo, tag) = STOPPED_IMAGE;
        let image_id = format!("sha256:{}", engine::digest(&format!("{repo}:{tag}")));
        if !d.images.iter().any(|i| i.id == image_id) {
            d.images.push(Image {
                repository: repo.into(),
                tag: tag.into(),
                id: image_id.clone(),
                created_ms: now,
                size: 4_270_000,
            });
        }
        if d.find(STOPPED_CONTAINER).is_none() {
            d.containers.push(Container {
                id: engine::digest(&format!("{STOPPED_CONTAINER}-{now}")),
                name: STOPPED_CONTAINER.into(),
                image: format!("{repo}:{tag}"),
                image_id,
                status: "exited".into(),
                created_ms: now,
                started_ms: now,
                finished_ms: now,
                exit_code: 0,
                binds: vec![format!("{USED_VOLUME}:/data")],
                log_config: LogConfig {
                    kind: "local".into(),
                    config: Default::default(),
                },
                network: "bridge".into(),
                ..Container::default()
            });
        }
        Ok(())
    })
}

/// `old-runtime`.
pub fn set_old_runtime(root: &Path) -> io::Result<()> {
    let env = Env::for_root(root);
    let mut pkgs = default_packages();
    for (n, v) in OLD_PACKAGES {
        pkgs.insert(n.into(), v.into());
    }
    write_json(&env.state_file("packages.json"), &pkgs).map_err(err)?;
    with_state(root, |st| {
        st.docker_mut()?.engine.version = OLD_ENGINE.into();
        Ok(())
    })
}

/// The lab's module faults: a running module container as a deployment with that setting would have created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleFault {
    /// edgeHub runs a rolling tag (`azureiotedge-hub:1.5`).
    Unpinned,
    /// A custom module (the first by name; edgeHub when there is none) logs without limits (json-file, no opts).
    NoLogLimits,
    /// A custom module (the first by name; edgeHub when there is none) runs privileged.
    Privileged,
    /// A custom module (the first by name) runs without a memory limit.
    NoMemoryLimit,
    /// edgeHub keeps `storageFolder`, but nothing binds a host directory there.
    HubNoStorageBind,
}

/// The state file naming the containers a module fault changed ([`clear`] removes them: edgeAgent and
/// aziot-edged recreate them from the deployment, as after a redeployment).
const MODULE_FAULTS: &str = "lab-module-faults.json";

fn target(d: &super::state::Docker, f: ModuleFault) -> Option<usize> {
    let custom = d
        .containers
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.labels.contains_key(super::edged::OWNER_LABEL)
                && c.name != "edgeAgent"
                && c.name != "edgeHub"
        })
        .min_by(|a, b| a.1.name.cmp(&b.1.name))
        .map(|(i, _)| i);
    match f {
        ModuleFault::NoLogLimits | ModuleFault::Privileged => custom.or_else(|| d.find("edgeHub")),
        ModuleFault::NoMemoryLimit => custom,
        ModuleFault::Unpinned | ModuleFault::HubNoStorageBind => d.find("edgeHub"),
    }
}

/// A container's createOptions `HostConfig`, made an object if it is not one.
fn host_config(c: &mut Container) -> Option<&mut serde_json::Map<String, serde_json::Value>> {
    if !c.create_options.is_object() {
        c.create_options = serde_json::json!({});
    }
    let o = c.create_options.as_object_mut()?;
    let h = o
        .entry("HostConfig")
        .or_insert_with(|| serde_json::json!({}));
    if !h.is_object() {
        *h = serde_json::json!({});
    }
    h.as_object_mut()
}

/// Apply a module fault to the device's running containers.
pub fn set_module_fault(root: &Path, f: ModuleFault) -> io::Result<()> {
    let env = Env::for_root(root);
    let mut changed: Vec<String> =
        super::state::read_json(&env.state_file(MODULE_FAULTS)).map_err(err)?;
    let mut missing = false;
    with_state(root, |st| {
        let d = st.docker_mut()?;
        let Some(i) = target(d, f) else {
            missing = true;
            return Ok(());
        };
        let c = &mut d.containers[i];
        match f {
            ModuleFault::Unpinned => {
                let (repo, tag) = engine::split_image(&c.image);
                let minor: Vec<&str> = tag.split('.').take(2).collect();
                c.image = format!("{repo}:{}", minor.join("."));
            }
            ModuleFault::NoLogLimits => {
                c.log_config = LogConfig {
                    kind: "json-file".into(),
                    config: Default::default(),
                };
                if let Some(h) = host_config(c) {
                    h.remove("LogConfig");
                }
            }
            ModuleFault::Privileged => {
                if let Some(h) = host_config(c) {
                    h.insert("Privileged".into(), true.into());
                }
            }
            ModuleFault::NoMemoryLimit => {
                if let Some(h) = host_config(c) {
                    h.remove("Memory");
                }
            }
            ModuleFault::HubNoStorageBind => {
                let folder = c
                    .env
                    .iter()
                    .rev()
                    .find_map(|e| e.strip_prefix("storageFolder="))
                    .map(str::to_string);
                let folder = match folder {
                    Some(f) => f,
                    None => {
                        c.env.push("storageFolder=/tmp/edgeHub".into());
                        "/tmp/edgeHub".into()
                    }
                };
                let folder = folder.trim_end_matches('/').to_string();
                c.binds.retain(|b| {
                    let dst = b.split(':').nth(1).unwrap_or("").trim_end_matches('/');
                    !(dst == folder || folder.starts_with(&format!("{dst}/")))
                });
                if let Some(h) = host_config(c) {
                    h.remove("Mounts");
                }
            }
        }
        if !changed.contains(&c.name) {
            changed.push(c.name.clone());
        }
        Ok(())
    })?;
    if missing {
        return Err(io::Error::other(
            "no module container to change yet: provision the device first (`lab run --keep`, or play playbooks/provision.yml), and deploy a custom module for module-no-memory-limit",
        ));
    }
    write_json(&env.state_file(MODULE_FAULTS), &changed).map_err(err)
}

/// Take away everything the states above added (the volumes' data too).
pub fn clear(root: &Path) -> io::Result<()> {
    let env = Env::for_root(root);
    let changed: Vec<String> =
        super::state::read_json(&env.state_file(MODULE_FAULTS)).map_err(err)?;
    match fs::remove_file(env.state_file(MODULE_FAULTS)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    match fs::remove_file(env.state_file("packages.json")) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let ours: Vec<&str> = UNUSED_VOLUMES
        .iter()
        .map(|(n, _)| *n)
        .chain([USED_VOLUME, EDGE_HUB_STORE])
        .collect();
    for v in &ours {
        match fs::remove_dir_all(root.join("var/lib/docker/volumes").join(v)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    with_state(root, |st| {
        let dangling: Vec<String> = DANGLING_IMAGES
            .iter()
            .map(|(s, _)| format!("sha256:{}", engine::digest(s)))
            .collect();
        let d = st.docker_mut()?;
        if d.engine.version == OLD_ENGINE {
            d.engine.version = Engine::default().version;
        }
        d.images
            .retain(|i| !dangling.contains(&i.id) && i.repository != STOPPED_IMAGE.0);
        d.volumes.retain(|v| !ours.contains(&v.name.as_str()));
        d.containers
            .retain(|c| c.name != STOPPED_CONTAINER && !changed.contains(&c.name));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_faults_change_the_running_containers_and_clear_removes_them() {
        let dir = tempfile::tempdir().unwrap();
        super::super::init_device_state(dir.path()).unwrap();
        assert!(set_module_fault(dir.path(), ModuleFault::Unpinned)
            .unwrap_err()
            .to_string()
            .contains("provision the device first"));
        with_state(dir.path(), |st| {
            let d = st.docker_mut()?;
            for (name, binds, env) in [
                ("edgeHub", vec!["/srv/iotedge/edgeHub:/tmp/edgeHub".to_string()], vec!["storageFolder=/tmp/edgeHub".to_string()]),
                ("sensor", vec![], vec![]),
            ] {
                let spec = super::super::edged::ModuleSpec {
                    name: name.into(),
                    image: format!("mcr.microsoft.com/azureiotedge-{name}:1.5.21"),
                    create_options: serde_json::json!({"HostConfig": {"Binds": binds, "LogConfig": {"Type": "local", "Config": {"max-size": "10m", "max-file": "3"}}}}),
                    env,
                    network: "azure-iot-edge".into(),
                };
                let c = super::super::edged::new_container(d, &spec, 1);
                d.containers.push(c);
            }
            Ok(())
        })
        .unwrap();
        for f in [
            ModuleFault::Unpinned,
            ModuleFault::NoLogLimits,
            ModuleFault::Privileged,
            ModuleFault::NoMemoryLimit,
            ModuleFault::HubNoStorageBind,
        ] {
            set_module_fault(dir.path(), f).unwrap();
        }
        let mut st = State::open(Env::for_root(dir.path())).unwrap();
        let d = st.docker().unwrap().clone();
        let hub = &d.containers[d.find("edgeHub").unwrap()];
        let sensor = &d.containers[d.find("sensor").unwrap()];
        assert_eq!(hub.image, "mcr.microsoft.com/azureiotedge-edgeHub:1.5");
        assert!(hub.binds.is_empty());
        assert_eq!(hub.log_config.kind, "local");
        assert_eq!(sensor.log_config.kind, "json-file");
        assert!(sensor.log_config.config.is_empty());
        assert_eq!(sensor.create_options["HostConfig"]["Privileged"], true);
        assert!(sensor.create_options["HostConfig"].get("Memory").is_none());
        assert!(sensor.create_options["HostConfig"]
            .get("LogConfig")
            .is_none());
        drop(st);
        clear(dir.path()).unwrap();
        let mut st = State::open(Env::for_root(dir.path())).unwrap();
        assert!(st.docker().unwrap().containers.is_empty());
    }

    #[test]
    fn states_are_added_with_real_data_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        super::super::init_device_state(dir.path()).unwrap();
        add_dangling_images(dir.path()).unwrap();
        add_unused_volumes(dir.path()).unwrap();
        set_old_runtime(dir.path()).unwrap();
        let data = dir
            .path()
            .join("var/lib/docker/volumes/lab-cache/_data/data.bin");
        assert_eq!(fs::metadata(&data).unwrap().len(), 3 << 20);
        let mut st = State::open(Env::for_root(dir.path())).unwrap();
        let d = st.docker().unwrap().clone();
        assert_eq!(
            d.images.iter().filter(|i| i.repository == "<none>").count(),
            2
        );
        assert_eq!(d.volumes.len(), 4);
        assert_eq!(d.containers[0].binds, ["lab-data:/data"]);
        assert_eq!(d.engine.version, OLD_ENGINE);
        assert_eq!(st.packages().unwrap()["aziot-edge"], "1.4.27-1");
        drop(st);
        clear(dir.path()).unwrap();
        let mut st = State::open(Env::for_root(dir.path())).unwrap();
        let d = st.docker().unwrap().clone();
        assert!(d.images.is_empty() && d.volumes.is_empty() && d.containers.is_empty());
        assert_eq!(d.engine.version, Engine::default().version);
        assert!(!data.exists());
        assert_eq!(st.packages().unwrap(), default_packages());
    }
}
