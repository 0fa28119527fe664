//! The running IoT Edge modules, as `docker inspect` describes them: the verify gather's part that lists the
//! module containers (`docker ps`, filtered by the label edgeAgent and aziot-edged put on every module they
//! create) and inspects them all in one command, and the pure parser of `docker inspect`'s JSON (the array, or
//! one object per line), tested on output in the engine's real format (`tests/fixtures/facts/docker-inspect.json`:
//! written key for key as Moby prints it, since no engine runs where this was built; replace it with a capture
//! from a real device when one is at hand).
//!
//! Kept of each container: what the verify rules on running containers read (name, image, labels, the
//! `HostConfig` as the engine reports it, mounts, restart count, state) and, of its environment, only
//! `storageFolder`: module environments may hold secrets, and nothing else of them is kept. What the answers mean
//! is `iotedge::running`'s business, not this file's.

use std::collections::BTreeMap;

use serde_json::Value;

/// The label on every module container (aziot-edged's and edgeAgent's owner label).
pub const OWNER_LABEL: &str = "net.azure-devices.edge.owner";

/// The verify script's part (appended to it, after everything else: it reuses the positional parameters). Lists
/// the running module containers by full ID and inspects them in one `docker inspect`, each container's whole
/// inspect object as one compact JSON line (`--format '{{json .}}'`: the same object, about half the bytes of the
/// indented array); no module running prints `[]`. Only words that are container IDs (hex) reach `docker
/// inspect`; a failing `docker` is reported with its exit code and message, never stops the script.
pub const SCRIPT: &str = r#"set -f; ids=$(docker ps -q --no-trunc --filter label=net.azure-devices.edge.owner 2>&1); rrc=$?
if [ "$rrc" = 0 ]; then
  set --; for i in $ids; do case $i in *[!0-9a-f]*) ;; *) set -- "$@" "$i" ;; esac; done
  if [ $# -gt 0 ]; then ins=$(docker inspect --format '{{json .}}' "$@" 2>&1); rrc=$?; else ins='[]'; fi
else ins=$ids; fi
printf '\036EF:running %s\n%s\n' "$rrc" "$ins"; true"#;

/// A mount of a container (`Mounts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `bind`, `volume`, `tmpfs`, ...
    pub kind: String,
    /// The host path (binds) or the volume's data directory.
    pub source: String,
    /// The path inside the container.
    pub destination: String,
}

/// A container's state (`State`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// `running`, `restarting`, `exited`, ...
    pub status: String,
    /// Running?
    pub running: bool,
    /// Killed for using too much memory?
    pub oom_killed: bool,
    /// The last exit code.
    pub exit_code: i64,
}

/// One running module container.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    /// The container (module) name, without docker's leading `/`.
    pub name: String,
    /// `Config.Image`: the reference it was created from.
    pub image: String,
    /// `Config.Labels`.
    pub labels: BTreeMap<String, String>,
    /// `HostConfig` as the engine reports it (the createOptions' schema, with the engine's defaults filled in;
    /// an empty object when absent).
    pub host_config: Value,
    /// `Mounts`: what is really mounted.
    pub mounts: Vec<Mount>,
    /// The `storageFolder` variable of `Config.Env`, when set (the rest of the environment is not kept).
    pub storage_folder: Option<String>,
    /// `RestartCount`.
    pub restart_count: u64,
    /// `State`.
    pub state: State,
}

fn text(v: &Value, path: &[&str]) -> String {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn container(i: usize, v: &Value) -> Result<Container, String> {
    if !v.is_object() {
        return Err(format!("`docker inspect` entry {} is not an object", i + 1));
    }
    let name = text(v, &["Name"]);
    let name = name.trim_start_matches('/').to_string();
    if name.is_empty() {
        return Err(format!("`docker inspect` entry {} has no `Name`", i + 1));
    }
    let config = v.get("Config");
    let labels = config
        .and_then(|c| c.get("Labels"))
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    // The last `storageFolder=` wins, as for any repeated variable.
    let storage_folder = config
        .and_then(|c| c.get("Env"))
        .and_then(Value::as_array)
        .and_then(|env| {
            env.iter()
                .filter_map(Value::as_str)
                .filter_map(|e| e.strip_prefix("storageFolder="))
                .next_back()
                .map(str::to_string)
        });
    let mounts = v
        .get("Mounts")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|m| Mount {
                    kind: text(m, &["Type"]),
                    source: text(m, &["Source"]),
                    destination: text(m, &["Destination"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let st = v.get("State").cloned().unwrap_or_default();
    Ok(Container {
        image: config.map(|c| text(c, &["Image"])).unwrap_or_default(),
        labels,
        host_config: v
            .get("HostConfig")
            .filter(|h| h.is_object())
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default())),
        mounts,
        storage_folder,
        restart_count: v.get("RestartCount").and_then(Value::as_u64).unwrap_or(0),
        state: State {
            status: text(&st, &["Status"]),
            running: st.get("Running").and_then(Value::as_bool).unwrap_or(false),
            oom_killed: st
                .get("OOMKilled")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            exit_code: st.get("ExitCode").and_then(Value::as_i64).unwrap_or(0),
        },
        name,
    })
}

/// Parse `docker inspect`'s output into containers, in its order: the JSON array it prints by default, or one
/// compact object per line (`--format '{{json .}}'`, what the verify script asks for). Text after the array, and
/// lines that are not objects, are docker's messages about a container that went away between `ps` and
/// `inspect`: ignored when something was read.
pub fn parse_inspect(out: &str) -> Result<Vec<Container>, String> {
    let t = out.trim_start();
    if t.starts_with('[') {
        let v: Value = serde_json::Deserializer::from_str(t)
            .into_iter::<Value>()
            .next()
            .unwrap_or(Ok(Value::Null))
            .map_err(|e| format!("`docker inspect` printed invalid JSON: {e}"))?;
        let items = v
            .as_array()
            .ok_or_else(|| "`docker inspect` printed JSON that is not an array".to_string())?;
        return items
            .iter()
            .enumerate()
            .map(|(i, v)| container(i, v))
            .collect();
    }
    let mut found = Vec::new();
    for (n, line) in out.lines().enumerate() {
        let l = line.trim();
        if !l.starts_with('{') {
            continue;
        }
        let v: Value = serde_json::from_str(l).map_err(|e| {
            format!(
                "`docker inspect` printed invalid JSON on line {}: {e}",
                n + 1
            )
        })?;
        found.push(container(found.len(), &v)?);
    }
    if found.is_empty() {
        return Err("`docker inspect` printed no JSON".to_string());
    }
    Ok(found)
}

/// The gathered section: its exit code and output. A failing `docker` (no JSON array: the engine is down, the
/// socket refused, listing failed) is an error carrying docker's first line of output.
pub fn parse_section(rc: i64, out: &str) -> Result<Vec<Container>, String> {
    match parse_inspect(out) {
        Ok(c) => Ok(c),
        Err(_) if rc != 0 => {
            let first = out
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no output");
            let first: String = first.chars().take(300).collect();
            Err(format!("docker failed (exit code {rc}): {first}"))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docker inspect` of an IoT Edge 1.5 device's edgeAgent, edgeHub and one custom module in Moby 25's (API
    /// 1.44) format: 4-space indentation, every key the engine prints, Go's `\u0026` escapes. Written key for key
    /// after that format, not captured from an engine (none runs on the build machine).
    const RECORDED: &str = include_str!("../../tests/fixtures/facts/docker-inspect.json");

    #[test]
    fn parses_recorded_inspect() {
        let c = parse_inspect(RECORDED).unwrap();
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["SimulatedTemperatureSensor", "edgeHub", "edgeAgent"]
        );
        let (sensor, hub, agent) = (&c[0], &c[1], &c[2]);
        assert_eq!(hub.image, "mcr.microsoft.com/azureiotedge-hub:1.5.21");
        assert_eq!(
            hub.labels[OWNER_LABEL],
            "Microsoft.Azure.Devices.Edge.Agent"
        );
        assert_eq!(hub.storage_folder.as_deref(), Some("/tmp/edgeHub"));
        assert_eq!(
            hub.host_config["Binds"][0],
            "/srv/iotedge/edgeHub:/tmp/edgeHub"
        );
        assert_eq!(hub.host_config["LogConfig"]["Type"], "local");
        assert_eq!(hub.host_config["LogConfig"]["Config"]["max-file"], "3");
        assert_eq!(
            hub.mounts[0],
            Mount {
                kind: "bind".into(),
                source: "/srv/iotedge/edgeHub".into(),
                destination: "/tmp/edgeHub".into()
            }
        );
        assert_eq!(
            hub.host_config["PortBindings"]["8883/tcp"][0]["HostPort"],
            "8883"
        );
        assert_eq!(agent.storage_folder.as_deref(), Some("/tmp/edgeAgent"));
        assert_eq!(agent.mounts.len(), 3);
        assert_eq!(sensor.host_config["Memory"], 268435456);
        assert_eq!(sensor.host_config["NanoCpus"], 500000000);
        assert_eq!(sensor.host_config["Privileged"], false);
        assert_eq!(sensor.host_config["NetworkMode"], "azure-iot-edge");
        assert!(sensor.host_config["CapAdd"].is_null());
        assert_eq!(sensor.storage_folder, None);
        assert_eq!(sensor.restart_count, 2);
        assert_eq!(
            sensor.state,
            State {
                status: "running".into(),
                running: true,
                oom_killed: false,
                exit_code: 0
            }
        );
    }

    /// What `--format '{{json .}}'` prints: the same objects, one compact line each.
    fn as_lines(array: &str) -> String {
        let v: Vec<Value> = serde_json::from_str(array).unwrap();
        v.iter().map(|o| format!("{o}\n")).collect()
    }

    #[test]
    fn the_array_and_the_json_lines_read_the_same() {
        let lines = as_lines(RECORDED);
        assert_eq!(lines.lines().count(), 3);
        assert!(
            lines.len() < RECORDED.len() * 3 / 4,
            "{} vs {}",
            lines.len(),
            RECORDED.len()
        );
        assert_eq!(
            parse_inspect(&lines).unwrap(),
            parse_inspect(RECORDED).unwrap()
        );
        // A container removed between `ps` and `inspect`: the others are still read.
        let gone = format!("{lines}Error: No such object: 0123abcd\n");
        assert_eq!(parse_section(1, &gone).unwrap().len(), 3);
        assert!(parse_section(0, "{\"Name\": \"/a\"}\n{oops\n")
            .unwrap_err()
            .contains("invalid JSON on line 2"));
    }

    #[test]
    fn tolerates_nothing_running_a_vanished_container_and_a_failing_docker() {
        assert_eq!(parse_section(0, "[]\n"), Ok(vec![]));
        // A container removed between `ps` and `inspect`: the others are still read.
        let one = format!("{}\nError: No such object: 0123abcd\n", RECORDED.trim_end());
        assert_eq!(parse_section(1, &one).unwrap().len(), 3);
        let down = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n";
        assert_eq!(
            parse_section(1, down).unwrap_err(),
            "docker failed (exit code 1): Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
        );
        assert_eq!(
            parse_section(127, "").unwrap_err(),
            "docker failed (exit code 127): no output"
        );
        assert!(parse_section(0, "nothing")
            .unwrap_err()
            .contains("printed no JSON"));
        assert!(parse_section(0, "[{\"Id\": \"x\"}]")
            .unwrap_err()
            .contains("entry 1 has no `Name`"));
        assert!(parse_section(0, "[1, ")
            .unwrap_err()
            .contains("invalid JSON"));
    }
}
