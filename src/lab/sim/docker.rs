//! The simulated container engine (Microsoft's Moby build) and its `docker` CLI.
//!
//! Owns the engine's start/stop semantics — `/etc/docker/daemon.json` is read ONLY when the engine (re)starts,
//! a malformed or invalid daemon.json makes dockerd refuse to start (unit `failed`), and existing containers
//! keep the log/DNS configuration captured at their creation — and the CLI subset a verifier uses: `version`,
//! `info`, `inspect`, `ps`, `images`, `load`, `pull`, `volume ls|prune|rm`, `rm`, `start|stop|restart`, `logs`,
//! `login`, with `--format` templates. Moby vs Docker CE: `docker version` prints `Server:` for Moby and
//! `Server: Docker Engine - Community` for CE, `{{.Server.Platform.Name}}` is empty for Moby, and Moby's
//! `{{.Server.Version}}` carries a `+azure` suffix. This module never touches the aziot services.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;

use serde_json::{json, Map, Value};

use super::edged;
use super::gotmpl::{self, Template};
use super::state::{Container, Docker, Image, State, StateError, Volume};
use super::time;
use super::users::Accounts;
use super::Io;

const DOCKER_SOCK: &str = "unix:///var/run/docker.sock";
const NOT_RUNNING: &str =
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?";

/// dockerd's configuration directives (daemon.json keys it accepts).
const KNOWN_DIRECTIVES: &[&str] = &[
    "allow-nondistributable-artifacts",
    "api-cors-header",
    "authorization-plugins",
    "bip",
    "bip6",
    "bridge",
    "builder",
    "cdi-spec-dirs",
    "cgroup-parent",
    "containerd",
    "containerd-namespace",
    "containerd-plugins-namespace",
    "cri-containerd",
    "data-root",
    "debug",
    "default-address-pools",
    "default-cgroupns-mode",
    "default-gateway",
    "default-gateway-v6",
    "default-ipc-mode",
    "default-network-opts",
    "default-runtime",
    "default-shm-size",
    "default-ulimits",
    "dns",
    "dns-opts",
    "dns-search",
    "exec-opts",
    "exec-root",
    "experimental",
    "features",
    "fixed-cidr",
    "fixed-cidr-v6",
    "group",
    "host-gateway-ip",
    "hosts",
    "http-proxy",
    "https-proxy",
    "icc",
    "init",
    "init-path",
    "insecure-registries",
    "ip",
    "ip-forward",
    "ip-masq",
    "ip6tables",
    "iptables",
    "ipv6",
    "labels",
    "live-restore",
    "log-driver",
    "log-format",
    "log-level",
    "log-opts",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "max-download-attempts",
    "metrics-addr",
    "min-api-version",
    "mtu",
    "no-new-privileges",
    "no-proxy",
    "node-generic-resources",
    "oom-score-adjust",
    "pidfile",
    "proxies",
    "raw-logs",
    "registry-mirrors",
    "runtimes",
    "seccomp-profile",
    "selinux-enabled",
    "shutdown-timeout",
    "storage-driver",
    "storage-opts",
    "swarm-default-advertise-addr",
    "tls",
    "tlscacert",
    "tlscert",
    "tlskey",
    "tlsverify",
    "userland-proxy",
    "userland-proxy-path",
    "userns-remap",
];

const LOG_DRIVERS: &[&str] = &[
    "json-file",
    "local",
    "journald",
    "syslog",
    "none",
    "fluentd",
    "gelf",
    "awslogs",
    "splunk",
    "gcplogs",
    "logentries",
    "etwlogs",
];

/// Validate daemon.json as dockerd does at startup; returns the effective configuration.
pub fn validate_daemon_json(text: &str) -> Result<Map<String, Value>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| go_json_error(&e))?;
    let Value::Object(m) = v else {
        return Err(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            go_kind(&v)
        ));
    };
    let unknown: Vec<&String> = m
        .keys()
        .filter(|k| !KNOWN_DIRECTIVES.contains(&k.as_str()))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "the following directives don't match any configuration option: {}",
            unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(opts) = m.get("log-opts") {
        let Value::Object(o) = opts else {
            return Err(format!(
                "json: cannot unmarshal {} into Go struct field Config.log-opts of type map[string]string",
                go_kind(opts)
            ));
        };
        for v in o.values() {
            if !v.is_string() {
                return Err(format!(
                    "json: cannot unmarshal {} into Go struct field Config.log-opts of type string",
                    go_kind(v)
                ));
            }
        }
    }
    let driver = match m.get("log-driver") {
        None => "json-file".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(format!(
                "json: cannot unmarshal {} into Go struct field Config.log-driver of type string",
                go_kind(other)
            ))
        }
    };
    if !LOG_DRIVERS.contains(&driver.as_str()) {
        return Err(format!(
            "failed to set log opts: logger: no log driver named '{driver}' is registered"
        ));
    }
    if let Some(Value::Object(o)) = m.get("log-opts") {
        if matches!(driver.as_str(), "json-file" | "local") {
            for (k, v) in o {
                let v = v.as_str().unwrap_or_default();
                match k.as_str() {
                    "max-file" => {
                        let n: i64 = v
                            .parse()
                            .map_err(|_| format!("failed to set log opts: strconv.Atoi: parsing \"{v}\": invalid syntax"))?;
                        if n < 1 {
                            return Err(
                                "failed to set log opts: max-file cannot be less than 1".into()
                            );
                        }
                    }
                    "max-size" => {
                        if parse_size(v).is_none() {
                            return Err(format!("failed to set log opts: invalid size: '{v}'"));
                        }
                    }
                    "compress" | "labels" | "labels-regex" | "env" | "env-regex" | "tag"
                    | "mode" | "max-buffer-size" => {}
                    other => {
                        return Err(format!(
                        "failed to set log opts: unknown log opt '{other}' for {driver} log driver"
                    ))
                    }
                }
            }
        }
    }
    if let Some(dns) = m.get("dns") {
        let Value::Array(a) = dns else {
            return Err(format!(
                "json: cannot unmarshal {} into Go struct field Config.dns of type []net.IP",
                go_kind(dns)
            ));
        };
        for ip in a {
            let s = ip.as_str().unwrap_or_default();
            if s.parse::<std::net::IpAddr>().is_err() {
                return Err(format!("invalid IP address: {}", gotmpl::go_print(ip)));
            }
        }
    }
    Ok(m)
}

fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn go_json_error(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of JSON input".into(),
        _ => format!(
            "invalid character at line {} column {} ({e})",
            e.line(),
            e.column()
        ),
    }
}

/// Parse a docker size (`10m`, `1g`, `512k`, `100`).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = s[i..].to_ascii_lowercase();
            let m = match unit.trim_end_matches('b').trim_end_matches('i') {
                "" => 1,
                "k" => 1 << 10,
                "m" => 1 << 20,
                "g" => 1 << 30,
                "t" => 1u64 << 40,
                _ => return None,
            };
            (&s[..i], m)
        }
        None => (s, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    if n < 0.0 {
        return None;
    }
    Some((n * mult as f64) as u64)
}

/// Docker's `units.HumanSize` (decimal, 3 significant digits).
pub fn human_size(size: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = size as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let s = format!("{:.3}", v);
    let digits_before = s.find('.').unwrap_or(s.len());
    let keep = 3_usize.saturating_sub(digits_before);
    let mut out = format!("{:.*}", keep, v);
    if out.contains('.') {
        out = out.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{out}{}", units[i])
}

/// Start (or restart) dockerd: re-read daemon.json. `Ok(Err(reason))` when dockerd refuses to start.
pub fn start_engine(st: &mut State) -> Result<Result<(), String>, StateError> {
    let now = st.env.now_ms;
    let pid = 2000 + (now % 30000) as u32;
    let ident = format!("dockerd[{pid}]");
    st.journal(
        "docker",
        "systemd[1]",
        "Starting Docker Application Container Engine...",
    )?;
    let path = st.env.path("/etc/docker/daemon.json");
    let config = match fs::read_to_string(&path) {
        Ok(text) => validate_daemon_json(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(format!("open /etc/docker/daemon.json: {e}")),
    };
    match config {
        Ok(cfg) => {
            let d = st.docker_mut()?;
            d.daemon_config = cfg;
            d.last_start_error = None;
            st.journal(
                "docker",
                &ident,
                &format!(
                    "time=\"{}\" level=info msg=\"Starting up\"\ntime=\"{}\" level=info msg=\"Daemon has completed initialization\"\ntime=\"{}\" level=info msg=\"API listen on /run/docker.sock\"",
                    time::rfc3339(now), time::rfc3339(now), time::rfc3339(now)
                ),
            )?;
            st.journal(
                "docker",
                "systemd[1]",
                "Started Docker Application Container Engine.",
            )?;
            st.services_mut()?.set("docker", "active", now);
            Ok(Ok(()))
        }
        Err(reason) => {
            let msg = format!(
                "unable to configure the Docker daemon with file /etc/docker/daemon.json: {reason}"
            );
            st.docker_mut()?.last_start_error = Some(msg.clone());
            st.journal("docker", &ident, &msg)?;
            st.journal(
                "docker",
                "systemd[1]",
                "docker.service: Main process exited, code=exited, status=1/FAILURE\ndocker.service: Failed with result 'exit-code'.\nFailed to start Docker Application Container Engine.",
            )?;
            st.services_mut()?.set("docker", "failed", now);
            Ok(Err(msg))
        }
    }
}

/// Stop dockerd: every running container exits.
pub fn stop_engine(st: &mut State) -> Result<(), StateError> {
    let now = st.env.now_ms;
    let was_active = st.services()?.is_active("docker");
    if was_active {
        st.journal(
            "docker",
            "systemd[1]",
            "Stopping Docker Application Container Engine...",
        )?;
    }
    let d = st.docker_mut()?;
    for c in d.containers.iter_mut().filter(|c| c.status == "running") {
        c.status = "exited".into();
        c.finished_ms = now;
        c.exit_code = 0;
    }
    if was_active {
        st.journal(
            "docker",
            "systemd[1]",
            "docker.service: Deactivated successfully.\nStopped Docker Application Container Engine.",
        )?;
    }
    st.services_mut()?.set("docker", "inactive", now);
    Ok(())
}

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

struct Cli {
    args: Vec<String>,
}

impl Cli {
    fn flag(&mut self, names: &[&str]) -> bool {
        let mut found = false;
        self.args.retain(|a| {
            if names.contains(&a.as_str()) {
                found = true;
                false
            } else {
                true
            }
        });
        found
    }

    /// Remove every `--name VALUE` / `--name=VALUE` / `-n VALUE` occurrence; returns the values.
    fn values(&mut self, names: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.args.len() {
            let a = self.args[i].clone();
            if names.contains(&a.as_str()) && i + 1 < self.args.len() {
                out.push(self.args.remove(i + 1));
                self.args.remove(i);
                continue;
            }
            if let Some((k, v)) = a.split_once('=') {
                if names.contains(&k) {
                    out.push(v.to_string());
                    self.args.remove(i);
                    continue;
                }
            }
            i += 1;
        }
        out
    }

    /// Expand combined short flags (`-aq` -> `-a -q`).
    fn expand_short(&mut self, letters: &str) {
        let mut out = Vec::new();
        for a in self.args.drain(..) {
            if a.len() > 2
                && a.starts_with('-')
                && !a.starts_with("--")
                && a[1..].chars().all(|c| letters.contains(c))
            {
                for c in a[1..].chars() {
                    out.push(format!("-{c}"));
                }
            } else {
                out.push(a);
            }
        }
        self.args = out;
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
    if !edged::engine_up(st)? {
        io.errln(NOT_RUNNING);
        return Ok(1);
    }
    edged::reconcile(st)?;
    match cmd.as_str() {
        "info" => info(st, cli, io),
        "inspect" => inspect(st, cli, io),
        "ps" => ps(st, cli, io),
        "images" => images(st, cli, io),
        "load" => load(st, cli, io),
        "pull" => pull(st, cli, io),
        "volume" => volume(st, cli, io),
        "rm" => rm(st, cli, io),
        "rmi" => rmi(st, cli, io),
        "start" | "stop" | "restart" => lifecycle(st, &cmd, cli, io),
        "logs" => logs(st, cli, io),
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
                    &edged::digest(&n)[..12]
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
    let up = edged::engine_up(st)? && socket_permitted(st);
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
        "ID": edged::digest(&format!("engine-{hostname}"))[..36].to_string(),
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

fn render_one(format: &str, data: &Value, io: &mut Io) -> Result<i32, StateError> {
    match Template::parse(format).and_then(|t| t.render(data)) {
        Ok(s) => {
            io.outln(s);
            Ok(0)
        }
        Err(e) => {
            io.errln(e.0);
            Ok(64)
        }
    }
}

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
            "Networks": { c.network.clone(): {"NetworkID": edged::digest(&c.network), "Aliases": [c.name.clone()], "IPAddress": "172.18.0.2", "DNSNames": [c.name.clone(), &c.id[..12]]} }
        }
    }])
}

fn inspect(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
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

/// JSON with Go's `json.MarshalIndent(v, "", "    ")` layout.
pub fn go_indent(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let _ = serde::Serialize::serialize(v, &mut ser);
    String::from_utf8_lossy(&buf).into_owned()
}

fn find_image<'a>(d: &'a Docker, key: &str) -> Option<&'a Image> {
    let (repo, tag) = edged::split_image(key);
    d.images.iter().find(|im| {
        (im.repository == repo && im.tag == tag)
            || (key.len() >= 4
                && im
                    .id
                    .trim_start_matches("sha256:")
                    .starts_with(key.trim_start_matches("sha256:")))
    })
}

fn image_json(im: &Image) -> Value {
    json!({
        "Id": im.id,
        "RepoTags": [format!("{}:{}", im.repository, im.tag)],
        "RepoDigests": [format!("{}@sha256:{}", im.repository, edged::digest(&im.id))],
        "Created": time::rfc3339_nanos(im.created_ms),
        "Size": im.size,
        "Architecture": "amd64",
        "Os": "linux"
    })
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

fn ps(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
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

/// `--format` output of a listing: the template parsed (exit 64 if it does not), each row rendered (exit 1 on
/// the first that fails), and a `table` format aligned under its header, as the docker CLI prints them.
fn print_rows(
    io: &mut Io,
    format: &str,
    header: impl Fn(&Template) -> String,
    rows: impl IntoIterator<Item = Value>,
) -> i32 {
    let t = match Template::parse(format) {
        Ok(t) => t,
        Err(e) => {
            io.errln(e.0);
            return 64;
        }
    };
    let mut lines = Vec::new();
    if t.table {
        lines.push(header(&t));
    }
    for row in rows {
        match t.render(&row) {
            Ok(s) => lines.push(s),
            Err(e) => {
                io.errln(e.0);
                return 1;
            }
        }
    }
    if t.table {
        io.out(gotmpl::tabwrite(&lines, 3, 10));
    } else {
        for l in &lines {
            io.outln(l);
        }
    }
    0
}

fn images(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
    cli.expand_short("aq");
    let quiet = cli.flag(&["-q", "--quiet"]);
    let _ = cli.flag(&["-a", "--all", "--digests", "--no-trunc"]);
    let format = cli.values(&["--format"]).pop();
    let now = st.env.now_ms;
    let d = st.docker()?;
    let mut imgs: Vec<&Image> = d.images.iter().collect();
    if let Some(repo) = cli.args.first() {
        let (r, t) = edged::split_image(repo);
        let explicit_tag = repo
            .rsplit_once(':')
            .map(|(_, t)| !t.contains('/'))
            .unwrap_or(false);
        imgs.retain(|im| im.repository == r && (!explicit_tag || im.tag == t));
    }
    imgs.sort_by_key(|im| std::cmp::Reverse(im.created_ms));
    if quiet {
        for im in imgs {
            io.outln(&im.id.trim_start_matches("sha256:")[..12]);
        }
        return Ok(0);
    }
    let format = format.unwrap_or_else(|| {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into()
    });
    let rows = imgs.into_iter().map(|im| {
        json!({
            "Repository": im.repository,
            "Tag": im.tag,
            "ID": &im.id.trim_start_matches("sha256:")[..12],
            "CreatedSince": format!("{} ago", time::docker_human(now.saturating_sub(im.created_ms))),
            "CreatedAt": time::docker_created_at(im.created_ms),
            "Size": human_size(im.size),
            "Digest": "<none>"
        })
    });
    Ok(print_rows(io, &format, |t| t.header("IMAGE ID"), rows))
}

/// Image references in a `docker save` tarball (`manifest.json` RepoTags), or in a text file listing them.
pub fn image_refs_in(bytes: &[u8]) -> Result<Vec<String>, String> {
    if bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b {
        return Err("Error processing tar file(exit status 1): compressed archives are not supported by the lab engine; use an uncompressed `docker save` tarball".into());
    }
    if bytes.len() >= 512 && &bytes[257..262] == b"ustar" {
        let mut off = 0;
        while off + 512 <= bytes.len() {
            let hdr = &bytes[off..off + 512];
            if hdr.iter().all(|&b| b == 0) {
                break;
            }
            let name_end = hdr[..100].iter().position(|&b| b == 0).unwrap_or(100);
            let name = String::from_utf8_lossy(&hdr[..name_end]).into_owned();
            let size_field = String::from_utf8_lossy(&hdr[124..136]);
            let size =
                usize::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
                    .map_err(|_| {
                        "Error processing tar file(exit status 1): archive/tar: invalid tar header"
                            .to_string()
                    })?;
            let data_start = off + 512;
            let data_end = data_start + size;
            if data_end > bytes.len() {
                return Err("Error processing tar file(exit status 1): unexpected EOF".into());
            }
            if name.trim_start_matches("./") == "manifest.json" {
                let m: Value =
                    serde_json::from_slice(&bytes[data_start..data_end]).map_err(|e| {
                        format!(
                            "Error processing tar file(exit status 1): invalid manifest.json: {e}"
                        )
                    })?;
                let tags: Vec<String> = m
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|e| {
                        e.get("RepoTags")
                            .and_then(|t| t.as_array())
                            .cloned()
                            .unwrap_or_default()
                    })
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect();
                return Ok(tags);
            }
            off = data_start + size.div_ceil(512) * 512;
        }
        return Err(
            "open /var/lib/docker/tmp/docker-import/manifest.json: no such file or directory"
                .into(),
        );
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "Error processing tar file(exit status 1): unexpected EOF".to_string())?;
    let refs: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if refs.is_empty() || refs.iter().any(|r| r.contains(char::is_whitespace)) {
        return Err("Error processing tar file(exit status 1): unexpected EOF".into());
    }
    Ok(refs)
}

fn load(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
    let input = cli.values(&["-i", "--input"]).pop();
    let _ = cli.flag(&["-q", "--quiet"]);
    let bytes = match input {
        Some(p) => {
            let host = if p.starts_with('/') {
                st.env.path(&p)
            } else {
                std::path::PathBuf::from(&p)
            };
            match fs::read(&host) {
                Ok(b) => b,
                Err(e) => {
                    let reason = if e.kind() == std::io::ErrorKind::NotFound {
                        "no such file or directory".to_string()
                    } else {
                        e.to_string()
                    };
                    io.errln(format!("open {p}: {reason}"));
                    return Ok(1);
                }
            }
        }
        None => {
            let mut b = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut b);
            if b.is_empty() {
                io.errln("requested load from stdin, but stdin is empty");
                return Ok(1);
            }
            b
        }
    };
    let refs = match image_refs_in(&bytes) {
        Ok(r) => r,
        Err(e) => {
            io.errln(e);
            return Ok(1);
        }
    };
    let now = st.env.now_ms;
    let size = bytes.len() as u64;
    let d = st.docker_mut()?;
    for r in refs {
        let (repo, tag) = edged::split_image(&r);
        d.images
            .retain(|im| !(im.repository == repo && im.tag == tag));
        d.images.push(Image {
            repository: repo.clone(),
            tag: tag.clone(),
            id: format!("sha256:{}", edged::digest(&r)),
            created_ms: now,
            size: size.max(1),
        });
        io.outln(format!("Loaded image: {repo}:{tag}"));
    }
    Ok(0)
}

fn pull(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
    let _ = cli.flag(&["-q", "--quiet", "-a", "--all-tags"]);
    let _ = cli.values(&["--platform"]);
    let Some(r) = cli.args.first().cloned() else {
        io.errln("\"docker pull\" requires exactly 1 argument.\nSee 'docker pull --help'.");
        return Ok(1);
    };
    let now = st.env.now_ms;
    let (repo, tag) = edged::split_image(&r);
    let d = st.docker_mut()?;
    let had = d
        .images
        .iter()
        .any(|im| im.repository == repo && im.tag == tag);
    let digest = edged::digest(&r);
    io.outln(format!(
        "{tag}: Pulling from {}",
        repo.split_once('/').map(|x| x.1).unwrap_or(&repo)
    ));
    io.outln(format!("Digest: sha256:{digest}"));
    if had {
        io.outln(format!("Status: Image is up to date for {repo}:{tag}"));
    } else {
        d.images.push(Image {
            repository: repo.clone(),
            tag: tag.clone(),
            id: format!("sha256:{digest}"),
            created_ms: now,
            size: 150_000_000,
        });
        io.outln(format!("Status: Downloaded newer image for {repo}:{tag}"));
    }
    io.outln(format!("{repo}:{tag}"));
    Ok(0)
}

fn volume(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
    if cli.args.is_empty() {
        io.outln("\nUsage:  docker volume COMMAND\n\nManage volumes");
        return Ok(0);
    }
    let sub = cli.args.remove(0);
    match sub.as_str() {
        "ls" | "list" => {
            let quiet = cli.flag(&["-q", "--quiet"]);
            let format = cli.values(&["--format"]).pop();
            let d = st.docker()?;
            let mut vols: Vec<&Volume> = d.volumes.iter().collect();
            vols.sort_by(|a, b| a.name.cmp(&b.name));
            if quiet {
                for v in vols {
                    io.outln(&v.name);
                }
                return Ok(0);
            }
            let format = format.unwrap_or_else(|| "table {{.Driver}}\t{{.Name}}".into());
            let rows = vols.into_iter().map(|v| json!({"Driver": v.driver, "Name": v.name, "Mountpoint": format!("/var/lib/docker/volumes/{}/_data", v.name), "Scope": "local"}));
            Ok(print_rows(
                io,
                &format,
                |t| t.header("ID").replace("NAME", "VOLUME NAME"),
                rows,
            ))
        }
        "prune" => {
            cli.expand_short("fa");
            let force = cli.flag(&["-f", "--force"]);
            let all = cli.flag(&["-a", "--all"]);
            if !force {
                io.out(if all {
                    "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
                } else {
                    "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
                });
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                if !line.trim().eq_ignore_ascii_case("y") {
                    return Ok(0);
                }
            }
            let d = st.docker_mut()?;
            let used: Vec<String> = d
                .containers
                .iter()
                .flat_map(|c| {
                    c.binds
                        .iter()
                        .map(|b| b.split(':').next().unwrap_or("").to_string())
                })
                .collect();
            let anonymous = |n: &str| n.len() == 64 && n.chars().all(|c| c.is_ascii_hexdigit());
            let (gone, kept): (Vec<Volume>, Vec<Volume>) = d
                .volumes
                .drain(..)
                .partition(|v| !used.contains(&v.name) && (all || anonymous(&v.name)));
            d.volumes = kept;
            if !gone.is_empty() {
                io.outln("Deleted Volumes:");
                for v in &gone {
                    io.outln(&v.name);
                }
                io.outln("");
            }
            io.outln(format!(
                "Total reclaimed space: {}",
                human_size(gone.len() as u64 * 4096)
            ));
            Ok(0)
        }
        "rm" | "remove" => {
            let _ = cli.flag(&["-f", "--force"]);
            let mut code = 0;
            for name in cli.args.clone() {
                let d = st.docker_mut()?;
                let users: Vec<String> = d
                    .containers
                    .iter()
                    .filter(|c| {
                        c.binds
                            .iter()
                            .any(|b| b.split(':').next() == Some(name.as_str()))
                    })
                    .map(|c| c.id.clone())
                    .collect();
                if !users.is_empty() {
                    io.errln(format!(
                        "Error response from daemon: remove {name}: volume is in use - [{}]",
                        users.join(", ")
                    ));
                    code = 1;
                } else if let Some(i) = d.volumes.iter().position(|v| v.name == name) {
                    d.volumes.remove(i);
                    io.outln(&name);
                } else {
                    io.errln(format!(
                        "Error response from daemon: get {name}: no such volume"
                    ));
                    code = 1;
                }
            }
            Ok(code)
        }
        "create" => {
            let name = cli
                .args
                .first()
                .cloned()
                .unwrap_or_else(|| edged::digest(&st.env.now_ms.to_string()));
            let d = st.docker_mut()?;
            if !d.volumes.iter().any(|v| v.name == name) {
                d.volumes.push(Volume {
                    name: name.clone(),
                    driver: "local".into(),
                });
            }
            io.outln(name);
            Ok(0)
        }
        "inspect" => {
            let d = st.docker()?;
            let mut out = Vec::new();
            let mut code = 0;
            for name in &cli.args {
                match d.volumes.iter().find(|v| &v.name == name) {
                    Some(v) => out.push(json!({"Driver": v.driver, "Name": v.name, "Mountpoint": format!("/var/lib/docker/volumes/{}/_data", v.name), "Scope": "local", "Labels": null, "Options": null})),
                    None => {
                        io.errln(format!("Error response from daemon: get {name}: no such volume"));
                        code = 1;
                    }
                }
            }
            io.outln(go_indent(&Value::Array(out)));
            Ok(code)
        }
        other => {
            io.errln(format!(
                "docker: 'volume {other}' is not a docker command.\nSee 'docker --help'"
            ));
            Ok(1)
        }
    }
}

fn rm(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
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

fn rmi(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
    let force = cli.flag(&["-f", "--force"]);
    let mut code = 0;
    for name in cli.args.clone() {
        let d = st.docker_mut()?;
        let Some(im) = find_image(d, &name).cloned() else {
            io.errln(format!("Error response from daemon: No such image: {name}"));
            code = 1;
            continue;
        };
        let user = d
            .containers
            .iter()
            .find(|c| c.image_id == im.id)
            .map(|c| c.id[..12].to_string());
        match user {
            Some(cid) if !force => {
                io.errln(format!(
                    "Error response from daemon: conflict: unable to remove repository reference \"{name}\" (must force) - container {cid} is using its referenced image {}",
                    &im.id.trim_start_matches("sha256:")[..12]
                ));
                code = 1;
            }
            _ => {
                d.images.retain(|x| x != &im);
                io.outln(format!("Untagged: {}:{}", im.repository, im.tag));
                io.outln(format!("Deleted: {}", im.id));
            }
        }
    }
    Ok(code)
}

fn lifecycle(st: &mut State, verb: &str, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
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

fn logs(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_json_validation_matches_dockerd() {
        assert!(validate_daemon_json(r#"{"dns":["10.0.0.53"],"log-driver":"local","log-opts":{"max-size":"10m","max-file":"3"}}"#).is_ok());
        let e = validate_daemon_json(r#"{"log-opts":{"max-file":3}}"#).unwrap_err();
        assert!(
            e.contains(
                "cannot unmarshal number into Go struct field Config.log-opts of type string"
            ),
            "{e}"
        );
        let e = validate_daemon_json(r#"{"dnss":["1.1.1.1"]}"#).unwrap_err();
        assert!(
            e.contains("don't match any configuration option: dnss"),
            "{e}"
        );
        let e = validate_daemon_json("{\"dns\": [").unwrap_err();
        assert!(e.contains("unexpected end of JSON input"), "{e}");
        let e = validate_daemon_json(r#"{"dns":["not-an-ip"]}"#).unwrap_err();
        assert!(e.contains("invalid IP address"), "{e}");
        let e = validate_daemon_json(r#"{"log-driver":"jsonfile"}"#).unwrap_err();
        assert!(e.contains("no log driver named 'jsonfile'"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(human_size(180_000_000), "180MB");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(human_size(0), "0B");
    }

    #[test]
    fn image_refs_from_text_and_tar() {
        assert_eq!(
            image_refs_in(b"mcr.microsoft.com/azureiotedge-agent:1.5.21\n").unwrap(),
            vec!["mcr.microsoft.com/azureiotedge-agent:1.5.21".to_string()]
        );
        // A minimal ustar archive with one manifest.json entry.
        let manifest = br#"[{"Config":"c.json","RepoTags":["edge/agent:1.5"],"Layers":[]}]"#;
        let mut hdr = [0u8; 512];
        hdr[..13].copy_from_slice(b"manifest.json");
        let size = format!("{:011o}\0", manifest.len());
        hdr[124..136].copy_from_slice(size.as_bytes());
        hdr[257..262].copy_from_slice(b"ustar");
        let mut tar = hdr.to_vec();
        let mut data = manifest.to_vec();
        data.resize(512, 0);
        tar.extend(data);
        tar.extend([0u8; 1024]);
        assert_eq!(
            image_refs_in(&tar).unwrap(),
            vec!["edge/agent:1.5".to_string()]
        );
        assert!(image_refs_in(b"").is_err());
    }
}
