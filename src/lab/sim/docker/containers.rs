//! The `docker` CLI's container commands: `ps` (with filters and `--format`), `inspect` (containers, and
//! images through `images`), `rm`, `start|stop|restart` and `logs`, printed as the docker CLI prints them.
//!
//! Containers are created by the IoT Edge daemons (`edged`), never here. It must not import another program.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::args::Cli;
use super::images::{find_image, image_json};
use super::print::{go_indent, print_rows};
use crate::lab::sim::engine;
use crate::lab::sim::gotmpl::Template;
use crate::lab::sim::program::Io;
use crate::lab::sim::state::{Container, State, StateError};
use crate::lab::sim::time;

/// A container's `docker inspect` JSON.
pub fn inspect_json(c: &Container) -> Value {
    let running = c.status == "running";
    let mounts: Vec<Value> = c
        .binds
        .iter()
        .map(|b| {
            let parts: Vec<&str> = b.split(':').collect();
            let src = parts.first().copied().unwrap_or("");
            let dst = parts.get(1).copied().unwrap_or("");
            let mode = parts.get(2).copied().unwrap_or("");
            if src.starts_with('/') {
                json!({"Type": "bind", "Source": src, "Destination": dst, "Mode": mode, "RW": !mode.contains("ro"), "Propagation": "rprivate"})
            } else {
                json!({"Type": "volume", "Name": src, "Source": format!("/var/lib/docker/volumes/{src}/_data"), "Destination": dst, "Driver": "local", "Mode": if mode.is_empty() { "z" } else { mode }, "RW": !mode.contains("ro"), "Propagation": ""})
            }
        })
        .collect();
    // Mounts given as `HostConfig.Mounts` (the long form) are mounted too.
    let mut mounts = mounts;
    if let Some(Value::Array(long)) = c.create_options.pointer("/HostConfig/Mounts") {
        for m in long {
            let kind = m.get("Type").and_then(Value::as_str).unwrap_or("volume");
            let src = m.get("Source").and_then(Value::as_str).unwrap_or("");
            let dst = m.get("Target").and_then(Value::as_str).unwrap_or("");
            let rw = m.get("ReadOnly").and_then(Value::as_bool) != Some(true);
            mounts.push(if kind == "bind" {
                json!({"Type": "bind", "Source": src, "Destination": dst, "Mode": "", "RW": rw, "Propagation": "rprivate"})
            } else {
                json!({"Type": kind, "Name": src, "Source": format!("/var/lib/docker/volumes/{src}/_data"), "Destination": dst, "Driver": "local", "Mode": "z", "RW": rw, "Propagation": ""})
            });
        }
    }
    let mut host_config = c
        .create_options
        .get("HostConfig")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if !host_config.is_object() {
        host_config = json!({});
    }
    host_config["Binds"] = if c.binds.is_empty() {
        Value::Null
    } else {
        json!(c.binds)
    };
    // What the engine reports for what the create request left out (as `docker inspect` prints every key).
    for (k, v) in [
        ("Memory", json!(0)),
        ("MemoryReservation", json!(0)),
        ("MemorySwap", json!(0)),
        ("NanoCpus", json!(0)),
        ("CpuShares", json!(0)),
        ("CpuPeriod", json!(0)),
        ("CpuQuota", json!(0)),
        ("Privileged", json!(false)),
        ("PublishAllPorts", json!(false)),
        ("ReadonlyRootfs", json!(false)),
        ("CapAdd", Value::Null),
        ("CapDrop", Value::Null),
        ("Devices", Value::Null),
        ("PortBindings", json!({})),
        ("IpcMode", json!("private")),
        ("PidMode", json!("")),
        ("UsernsMode", json!("")),
        ("Runtime", json!("runc")),
        ("ShmSize", json!(67108864)),
    ] {
        if host_config.get(k).is_none() {
            host_config[k] = v;
        }
    }
    host_config["LogConfig"] = json!({"Type": c.log_config.kind, "Config": c.log_config.config});
    host_config["NetworkMode"] = json!(c.network);
    host_config["Dns"] = json!(c.dns);
    if host_config.get("RestartPolicy").is_none() {
        host_config["RestartPolicy"] = json!({"Name": "", "MaximumRetryCount": 0});
    }
    let config_volumes = c
        .create_options
        .get("Volumes")
        .cloned()
        .unwrap_or(Value::Null);
    json!([{
        "Id": c.id,
        "Created": time::rfc3339_nanos(c.created_ms),
        "Path": "dotnet",
        "Args": [if c.name == "edgeAgent" { "Microsoft.Azure.Devices.Edge.Agent.Service.dll" } else { "Microsoft.Azure.Devices.Edge.Hub.Service.dll" }],
        "State": {
            "Status": c.status,
            "Running": running,
            "Paused": false,
            "Restarting": false,
            "OOMKilled": false,
            "Dead": c.status == "dead",
            "Pid": if running { 3000 + (c.started_ms % 20000) } else { 0 },
            "ExitCode": c.exit_code,
            "Error": "",
            "StartedAt": if c.started_ms > 0 { time::rfc3339_nanos(c.started_ms) } else { "0001-01-01T00:00:00Z".into() },
            "FinishedAt": if c.finished_ms > 0 { time::rfc3339_nanos(c.finished_ms) } else { "0001-01-01T00:00:00Z".into() }
        },
        "Image": c.image_id,
        "ResolvConfPath": format!("/var/lib/docker/containers/{}/resolv.conf", c.id),
        "HostnamePath": format!("/var/lib/docker/containers/{}/hostname", c.id),
        "LogPath": if c.log_config.kind == "json-file" { format!("/var/lib/docker/containers/{}/{}-json.log", c.id, c.id) } else { String::new() },
        "Name": format!("/{}", c.name),
        "RestartCount": c.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "HostConfig": host_config,
        "Mounts": mounts,
        "Config": {
            "Hostname": &c.id[..12],
            "Domainname": "",
            "User": "",
            "Env": c.env,
            "Cmd": null,
            "Image": c.image,
            "Volumes": config_volumes,
            "WorkingDir": "/app",
            "Entrypoint": ["/bin/sh", "-c", "exec /app/agent"],
            "Labels": c.labels
        },
        "NetworkSettings": {
            "Networks": { c.network.clone(): {"NetworkID": engine::digest(&c.network), "Aliases": [c.name.clone()], "IPAddress": "172.18.0.2", "DNSNames": [c.name.clone(), &c.id[..12]]} }
        }
    }])
}

pub(super) fn inspect(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
    let format = cli.values(&["-f", "--format"]).pop();
    let kind = cli.values(&["--type"]).pop();
    let _ = cli.flag(&["-s", "--size"]);
    if cli.args.is_empty() {
        io.errln("\"docker inspect\" requires at least 1 argument.\nSee 'docker inspect --help'.\n\nUsage:  docker inspect [OPTIONS] NAME|ID [NAME|ID...]\n\nReturn low-level information on Docker objects");
        return Ok(1);
    }
    let tmpl = match &format {
        Some(f) => match Template::parse(f) {
            Ok(t) => Some(t),
            Err(e) => {
                io.errln(e.0);
                return Ok(64);
            }
        },
        None => None,
    };
    let d = st.docker()?;
    let mut found = Vec::new();
    let mut code = 0;
    for name in &cli.args {
        let c = if kind.as_deref() != Some("image") {
            d.find(name)
                .map(|i| inspect_json(&d.containers[i])[0].clone())
        } else {
            None
        };
        let im = if c.is_none() && kind.as_deref() != Some("container") {
            find_image(d, name).map(image_json)
        } else {
            None
        };
        match c.or(im) {
            Some(v) => found.push(v),
            None => {
                io.errln(format!("Error: No such object: {name}"));
                code = 1;
            }
        }
    }
    match tmpl {
        Some(t) => {
            for v in &found {
                match t.render(v) {
                    Ok(s) => io.outln(s),
                    Err(e) => {
                        io.errln(e.0);
                        return Ok(1);
                    }
                }
            }
        }
        None => {
            io.outln(go_indent(&Value::Array(found)));
        }
    }
    Ok(code)
}

fn container_status(c: &Container, now: u64) -> String {
    match c.status.as_str() {
        "running" => format!(
            "Up {}",
            time::docker_human(now.saturating_sub(c.started_ms))
        ),
        "created" => "Created".into(),
        "dead" => "Dead".into(),
        _ => format!(
            "Exited ({}) {} ago",
            c.exit_code,
            time::docker_human(now.saturating_sub(c.finished_ms))
        ),
    }
}

fn ps_row(c: &Container, now: u64, no_trunc: bool) -> Value {
    let cmd = if c.name == "edgeAgent" {
        "/bin/sh -c 'exec /app/agent'"
    } else {
        "/bin/sh -c 'echo \"$(date …'"
    };
    let command = if no_trunc {
        format!("\"{cmd}\"")
    } else {
        let short: String = cmd.chars().take(19).collect();
        format!("\"{short}…\"")
    };
    json!({
        "ID": if no_trunc { c.id.clone() } else { c.id[..12].to_string() },
        "Image": c.image,
        "Command": command,
        "CreatedAt": time::docker_created_at(c.created_ms),
        "RunningFor": format!("{} ago", time::docker_human(now.saturating_sub(c.created_ms))),
        "Ports": "",
        "State": c.status,
        "Status": container_status(c, now),
        "Size": "0B",
        "Names": c.name,
        "Labels": c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
        "Mounts": c.binds.iter().map(|b| b.split(':').next().unwrap_or("").to_string()).collect::<Vec<_>>().join(","),
        "Networks": c.network
    })
}

fn matches_filters(c: &Container, filters: &[String]) -> bool {
    // Filters with the same key are OR'ed, different keys AND'ed (as docker).
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for f in filters {
        let (k, v) = f.split_once('=').unwrap_or((f.as_str(), ""));
        by_key.entry(k).or_default().push(v);
    }
    by_key.iter().all(|(k, vals)| {
        vals.iter().any(|v| match *k {
            "name" => c.name.contains(v.trim_start_matches('/')),
            "id" => c.id.starts_with(v),
            "status" => c.status == *v,
            "ancestor" => c.image == *v || c.image.starts_with(&format!("{v}:")),
            "label" => match v.split_once('=') {
                Some((lk, lv)) => c.labels.get(lk).map(|x| x == lv).unwrap_or(false),
                None => c.labels.contains_key(*v),
            },
            _ => false,
        })
    })
}

pub(super) fn ps(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
    cli.expand_short("aqs");
    let all = cli.flag(&["-a", "--all"]);
    let quiet = cli.flag(&["-q", "--quiet"]);
    let no_trunc = cli.flag(&["--no-trunc"]);
    let _ = cli.flag(&["-s", "--size"]);
    let filters = cli.values(&["-f", "--filter"]);
    let format = cli.values(&["--format"]).pop();
    let now = st.env.now_ms;
    let d = st.docker()?;
    let mut rows: Vec<&Container> = d
        .containers
        .iter()
        .filter(|c| all || c.status == "running")
        .filter(|c| matches_filters(c, &filters))
        .collect();
    rows.sort_by_key(|c| std::cmp::Reverse(c.created_ms));
    if quiet {
        for c in rows {
            io.outln(if no_trunc {
                c.id.clone()
            } else {
                c.id[..12].to_string()
            });
        }
        return Ok(0);
    }
    let format = format.unwrap_or_else(|| {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}".into()
    });
    Ok(print_rows(
        io,
        &format,
        |t| t.header("CONTAINER ID"),
        rows.into_iter().map(|c| ps_row(c, now, no_trunc)),
    ))
}

pub(super) fn rm(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
    cli.expand_short("fv");
    let force = cli.flag(&["-f", "--force"]);
    let volumes = cli.flag(&["-v", "--volumes"]);
    if cli.args.is_empty() {
        io.errln("\"docker rm\" requires at least 1 argument.\nSee 'docker rm --help'.\n\nUsage:  docker rm [OPTIONS] CONTAINER [CONTAINER...]\n\nRemove one or more containers");
        return Ok(1);
    }
    let mut code = 0;
    for name in cli.args.clone() {
        let d = st.docker_mut()?;
        match d.find(&name) {
            None => {
                io.errln(format!(
                    "Error response from daemon: No such container: {name}"
                ));
                code = 1;
            }
            Some(i) if d.containers[i].status == "running" && !force => {
                io.errln(format!(
                    "Error response from daemon: You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    d.containers[i].id
                ));
                code = 1;
            }
            Some(i) => {
                let c = d.containers.remove(i);
                if volumes {
                    let anon: Vec<String> = c
                        .binds
                        .iter()
                        .filter_map(|b| b.split(':').next())
                        .filter(|s| s.len() == 64)
                        .map(str::to_string)
                        .collect();
                    d.volumes.retain(|v| !anon.contains(&v.name));
                }
                io.outln(&name);
            }
        }
    }
    Ok(code)
}

pub(super) fn lifecycle(
    st: &mut State,
    verb: &str,
    mut cli: Cli,
    io: &mut Io,
) -> Result<i32, StateError> {
    let _ = cli.values(&["-t", "--time", "-s", "--signal"]);
    let now = st.env.now_ms;
    let mut code = 0;
    for name in cli.args.clone() {
        let d = st.docker_mut()?;
        let Some(i) = d.find(&name) else {
            io.errln(format!(
                "Error response from daemon: No such container: {name}"
            ));
            code = 1;
            continue;
        };
        let c = &mut d.containers[i];
        match verb {
            "stop" => {
                if c.status == "running" {
                    c.status = "exited".into();
                    c.finished_ms = now;
                    c.exit_code = 0;
                }
            }
            _ => {
                if verb == "restart" || c.status != "running" {
                    c.status = "running".into();
                    c.started_ms = now;
                }
            }
        }
        io.outln(&name);
    }
    Ok(code)
}

pub(super) fn logs(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
    let _ = cli.flag(&["-f", "--follow", "-t", "--timestamps"]);
    let _ = cli.values(&["--tail", "-n", "--since", "--until"]);
    let Some(name) = cli.args.first().cloned() else {
        io.errln("\"docker logs\" requires exactly 1 argument.");
        return Ok(1);
    };
    let d = st.docker()?;
    match d.find(&name) {
        Some(i) => {
            let c = &d.containers[i];
            if matches!(
                c.log_config.kind.as_str(),
                "none" | "syslog" | "fluentd" | "gelf" | "awslogs" | "splunk"
            ) {
                io.errln("Error response from daemon: configured logging driver does not support reading");
                return Ok(1);
            }
            io.outln(format!(
                "<6> {} [INF] - Starting module management agent.",
                time::rfc3339(c.started_ms)
            ));
            Ok(0)
        }
        None => {
            io.errln(format!(
                "Error response from daemon: No such container: {name}"
            ));
            Ok(1)
        }
    }
}
