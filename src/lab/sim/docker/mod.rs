//! The simulated `docker` CLI, talking to the simulated engine (`engine`): global options, subcommand
//! dispatch, `version`, `info`, `network ls`, `login`/`logout`; containers live in `containers`, images and
//! volumes in `images`, `--format` printing in `print`.
//!
//! The CLI subset a verifier uses: `version`, `info`, `inspect`, `ps`, `images`, `load`, `pull`, `rmi`,
//! `volume ls|create|inspect|prune|rm`, `rm`, `start|stop|restart`, `logs`, `login`, `network`, with `--format`
//! templates. Moby vs Docker CE: `docker version` prints `Server:` for Moby and `Server: Docker Engine -
//! Community` for CE, `{{.Server.Platform.Name}}` is empty for Moby, and Moby's `{{.Server.Version}}` carries a
//! `+azure` suffix. Only root and members of `docker` may use the engine socket. Every engine command first lets
//! the IoT Edge daemons reconcile their modules (`edged`). It must not import another program, and never
//! touches the aziot services.

mod args;
mod containers;
mod images;
mod print;

use std::io::Read;

use serde_json::{json, Value};

use super::edged;
use super::engine;
use super::gotmpl::{self, Template};
use super::program::Io;
use super::state::{State, StateError};
use super::users::Accounts;
use args::Cli;
use print::render_one;

const DOCKER_SOCK: &str = "unix:///var/run/docker.sock";
const NOT_RUNNING: &str =
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?";

/// Can the caller talk to the engine socket (root or a member of `docker`)?
fn socket_permitted(st: &State) -> bool {
    if st.env.euid == 0 {
        return true;
    }
    let acc = Accounts::load(&st.env);
    match acc.by_uid(st.env.euid) {
        Some(u) => acc.in_group(&u.name, "docker"),
        None => false,
    }
}

/// `docker ...`.
pub fn run(st: &mut State, args: &[String], io: &mut Io) -> Result<i32, StateError> {
    let mut cli = Cli {
        args: args.to_vec(),
    };
    // Global options.
    let hosts = cli.values(&["-H", "--host"]);
    let _ = cli.values(&["--context", "-c", "--config", "-l", "--log-level"]);
    let _ = cli.flag(&["-D", "--debug"]);
    if let Some(h) = hosts.first() {
        if h != DOCKER_SOCK && h != "unix:///run/docker.sock" {
            io.errln(format!(
                "Cannot connect to the Docker daemon at {h}. Is the docker daemon running?"
            ));
            return Ok(1);
        }
    }
    if cli.args.is_empty() || cli.args[0] == "--help" || cli.args[0] == "help" {
        io.outln(
            "\nUsage:  docker [OPTIONS] COMMAND\n\nA self-sufficient runtime for containers\n",
        );
        return Ok(0);
    }
    if cli.args[0] == "--version" || cli.args[0] == "-v" {
        let v = st.docker()?.engine.version.clone();
        io.outln(format!("Docker version {v}, build 2936816"));
        return Ok(0);
    }
    let cmd = cli.args.remove(0);
    // `docker container ls` / `docker image ls` / `docker volume ...` style.
    let cmd = match (cmd.as_str(), cli.args.first().map(String::as_str)) {
        ("container", Some(sub)) => {
            let sub = sub.to_string();
            cli.args.remove(0);
            match sub.as_str() {
                "ls" | "list" => "ps".to_string(),
                other => other.to_string(),
            }
        }
        ("image", Some(sub)) => {
            let sub = sub.to_string();
            cli.args.remove(0);
            match sub.as_str() {
                "ls" | "list" => "images".to_string(),
                "rm" => "rmi".to_string(),
                other => other.to_string(),
            }
        }
        _ => cmd,
    };
    if cmd == "version" {
        return version(st, cli, io);
    }
    let known = [
        "info", "inspect", "ps", "images", "load", "pull", "volume", "rm", "rmi", "start", "stop",
        "restart", "logs", "login", "logout", "network",
    ];
    if !known.contains(&cmd.as_str()) {
        io.errln(format!(
            "docker: '{cmd}' is not a docker command.\nSee 'docker --help'"
        ));
        return Ok(1);
    }
    if !socket_permitted(st) {
        io.errln("permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get \"http://%2Fvar%2Frun%2Fdocker.sock/v1.24/containers/json\": dial unix /var/run/docker.sock: connect: permission denied");
        return Ok(1);
    }
    if !engine::engine_up(st)? {
        io.errln(NOT_RUNNING);
        return Ok(1);
    }
    edged::reconcile(st)?;
    // The lab's `container-list-fails` state: the engine answers everything but listing containers.
    let lists_containers = cmd == "ps"
        || (cmd == "inspect"
            && cli
                .args
                .windows(2)
                .any(|w| w[0] == "--type" && w[1] == "container"));
    if lists_containers && st.env.fault("container-list-fails").is_some() {
        io.errln(
            "Error response from daemon: failed to list containers: context deadline exceeded",
        );
        return Ok(1);
    }
    match cmd.as_str() {
        "info" => info(st, cli, io),
        "inspect" => containers::inspect(st, cli, io),
        "ps" => containers::ps(st, cli, io),
        "images" => images::images(st, cli, io),
        "load" => images::load(st, cli, io),
        "pull" => images::pull(st, cli, io),
        "volume" => images::volume(st, cli, io),
        "rm" => containers::rm(st, cli, io),
        "rmi" => images::rmi(st, cli, io),
        "start" | "stop" | "restart" => containers::lifecycle(st, &cmd, cli, io),
        "logs" => containers::logs(st, cli, io),
        "login" => {
            let mut cli = cli;
            let _ = cli.values(&["-u", "--username", "-p", "--password"]);
            if cli.flag(&["--password-stdin"]) {
                let mut s = String::new();
                let _ = std::io::stdin().read_to_string(&mut s);
            }
            io.outln("Login Succeeded");
            Ok(0)
        }
        "logout" => {
            io.outln("Removing login credentials for https://index.docker.io/v1/");
            Ok(0)
        }
        "network" => {
            let nets: Vec<String> = {
                let d = st.docker()?;
                let mut n: Vec<String> = d.containers.iter().map(|c| c.network.clone()).collect();
                n.extend(["bridge".to_string(), "host".to_string(), "none".to_string()]);
                n.sort();
                n.dedup();
                n
            };
            let mut rows = vec!["NETWORK ID\tNAME\tDRIVER\tSCOPE".to_string()];
            for n in nets {
                let driver = match n.as_str() {
                    "host" => "host",
                    "none" => "null",
                    _ => "bridge",
                };
                rows.push(format!(
                    "{}\t{n}\t{driver}\tlocal",
                    &engine::digest(&n)[..12]
                ));
            }
            io.out(gotmpl::tabwrite(&rows, 3, 10));
            Ok(0)
        }
        _ => Ok(1),
    }
}

fn version_data(st: &mut State) -> Result<Value, StateError> {
    let d = st.docker()?;
    let e = &d.engine;
    Ok(json!({
        "Client": {
            "Platform": {"Name": e.platform_name},
            "Version": e.version,
            "ApiVersion": e.api_version,
            "DefaultAPIVersion": e.api_version,
            "GitCommit": "2936816",
            "GoVersion": "go1.21.9",
            "Os": "linux",
            "Arch": "amd64",
            "BuildTime": "Mon Apr  1 22:02:05 2024",
            "Context": "default"
        },
        "Server": {
            "Platform": {"Name": e.platform_name},
            "Components": [
                {"Name": "Engine", "Version": e.version, "Details": {"ApiVersion": e.api_version, "Arch": "amd64", "Os": "linux", "MinAPIVersion": "1.12"}},
                {"Name": "containerd", "Version": "1.7.15+azure-1", "Details": {"GitCommit": "926c9586fe4a6236699318391cd44976a98e31f1"}},
                {"Name": "runc", "Version": "1.1.12", "Details": {"GitCommit": "51d5e94601ceffbbd85688df1c928ecccbfa4685"}},
                {"Name": "docker-init", "Version": "0.19.0", "Details": {"GitCommit": ""}}
            ],
            "Version": e.version,
            "ApiVersion": e.api_version,
            "MinAPIVersion": "1.12",
            "GitCommit": "fca702de7f71362c8d103073c7e4a1d0a467fadd",
            "GoVersion": "go1.21.9",
            "Os": "linux",
            "Arch": "amd64",
            "KernelVersion": "6.1.0-18-amd64",
            "BuildTime": "2024-04-01T22:02:05.000000000+00:00"
        }
    }))
}

fn version(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
    let format = cli.values(&["-f", "--format"]).pop();
    let data = version_data(st)?;
    let up = engine::engine_up(st)? && socket_permitted(st);
    if let Some(f) = format {
        let t = match Template::parse(&f) {
            Ok(t) => t,
            Err(e) => {
                io.errln(e.0);
                return Ok(64);
            }
        };
        let mut data = data;
        if !up {
            data["Server"] = Value::Null;
        }
        match t.render(&data) {
            Ok(s) => io.outln(s),
            Err(e) => {
                io.errln(e.0);
                return Ok(1);
            }
        }
        if !up {
            io.errln(NOT_RUNNING);
            return Ok(1);
        }
        return Ok(0);
    }
    let c = &data["Client"];
    io.out(format!(
        "Client:\n Version:           {}\n API version:       {}\n Go version:        {}\n Git commit:        {}\n Built:             {}\n OS/Arch:           linux/amd64\n Context:           default\n",
        c["Version"].as_str().unwrap_or(""),
        c["ApiVersion"].as_str().unwrap_or(""),
        c["GoVersion"].as_str().unwrap_or(""),
        c["GitCommit"].as_str().unwrap_or(""),
        c["BuildTime"].as_str().unwrap_or(""),
    ));
    if !up {
        if !socket_permitted(st) {
            io.errln("permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get \"http://%2Fvar%2Frun%2Fdocker.sock/v1.24/version\": dial unix /var/run/docker.sock: connect: permission denied");
        } else {
            io.errln(NOT_RUNNING);
        }
        return Ok(1);
    }
    let s = &data["Server"];
    let platform = s["Platform"]["Name"].as_str().unwrap_or("");
    let header = if platform.is_empty() {
        "Server:".to_string()
    } else {
        format!("Server: {platform}")
    };
    io.out(format!(
        "\n{header}\n Engine:\n  Version:          {}\n  API version:      {} (minimum version 1.12)\n  Go version:       go1.21.9\n  Git commit:       {}\n  Built:            Mon Apr  1 22:02:05 2024\n  OS/Arch:          linux/amd64\n  Experimental:     false\n containerd:\n  Version:          1.7.15+azure-1\n  GitCommit:        926c9586fe4a6236699318391cd44976a98e31f1\n runc:\n  Version:          1.1.12\n  GitCommit:        51d5e94601ceffbbd85688df1c928ecccbfa4685\n docker-init:\n  Version:          0.19.0\n  GitCommit:        \n",
        s["Version"].as_str().unwrap_or(""),
        s["ApiVersion"].as_str().unwrap_or(""),
        s["GitCommit"].as_str().unwrap_or(""),
    ));
    Ok(0)
}

fn info(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
    let format = cli.values(&["-f", "--format"]).pop();
    let hostname = st.env.hostname.clone();
    let d = st.docker()?;
    let running = d
        .containers
        .iter()
        .filter(|c| c.status == "running")
        .count();
    let total = d.containers.len();
    let mut data = json!({
        "ID": engine::digest(&format!("engine-{hostname}"))[..36].to_string(),
        "Containers": total,
        "ContainersRunning": running,
        "ContainersPaused": 0,
        "ContainersStopped": total - running,
        "Images": d.images.len(),
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"], ["Using metacopy", "false"], ["Native Overlay Diff", "true"], ["userxattr", "false"]],
        "LoggingDriver": d.log_driver(),
        "CgroupDriver": "systemd",
        "CgroupVersion": "2",
        "KernelVersion": "6.1.0-18-amd64",
        "OperatingSystem": "Debian GNU/Linux 12 (bookworm)",
        "OSVersion": "12",
        "OSType": "linux",
        "Architecture": "x86_64",
        "NCPU": 2,
        "Name": hostname,
        "ServerVersion": d.engine.version,
        "DockerRootDir": "/var/lib/docker",
        "Labels": [],
        "ExperimentalBuild": false,
        "LiveRestoreEnabled": d.daemon_config.get("live-restore").and_then(|v| v.as_bool()).unwrap_or(false),
        "DefaultRuntime": "runc",
        "Runtimes": {"runc": {"path": "runc"}, "io.containerd.runc.v2": {"path": "runc"}},
        "InitBinary": "docker-init",
        "Isolation": "",
        "Warnings": null
    });
    if !d.engine.platform_name.is_empty() {
        data["ProductLicense"] = json!("Community Engine");
    }
    if let Some(f) = format {
        return render_one(&f, &data, io);
    }
    let mut s = format!(
        "Client:\n Version:    {v}\n Context:    default\n Debug Mode: false\n\nServer:\n Containers: {total}\n  Running: {running}\n  Paused: 0\n  Stopped: {stopped}\n Images: {images}\n Server Version: {v}\n Storage Driver: overlay2\n  Backing Filesystem: extfs\n  Supports d_type: true\n  Using metacopy: false\n  Native Overlay Diff: true\n  userxattr: false\n Logging Driver: {log}\n Cgroup Driver: systemd\n Cgroup Version: 2\n Plugins:\n  Volume: local\n  Network: bridge host ipvlan macvlan null overlay\n  Log: awslogs fluentd gcplogs gelf journald json-file local logentries splunk syslog\n Swarm: inactive\n Runtimes: io.containerd.runc.v2 runc\n Default Runtime: runc\n Init Binary: docker-init\n Kernel Version: 6.1.0-18-amd64\n Operating System: Debian GNU/Linux 12 (bookworm)\n OSType: linux\n Architecture: x86_64\n CPUs: 2\n Name: {name}\n Docker Root Dir: /var/lib/docker\n Debug Mode: false\n Experimental: false\n Insecure Registries:\n  127.0.0.0/8\n Live Restore Enabled: false\n",
        v = data["ServerVersion"].as_str().unwrap_or(""),
        stopped = total - running,
        images = data["Images"],
        log = data["LoggingDriver"].as_str().unwrap_or(""),
        name = data["Name"].as_str().unwrap_or(""),
    );
    if data.get("ProductLicense").is_some() {
        s.push_str(" Product License: Community Engine\n");
    }
    io.out(s);
    Ok(0)
}
