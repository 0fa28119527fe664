//! The simulated container engine (Microsoft's Moby build), as the services model sees it: dockerd's start and
//! stop, and whether it answers.
//!
//! Owns the engine's start/stop semantics — `/etc/docker/daemon.json` is read ONLY when the engine (re)starts,
//! and a malformed or invalid daemon.json makes dockerd refuse to start (unit `failed`) with dockerd's message —
//! its validation of daemon.json (directives, log drivers and options, DNS addresses), socket activation through
//! `docker.socket`, and the engine's identifiers (`digest` for stable fake IDs, `split_image` for image
//! references). Existing containers keep the log/DNS configuration captured at their creation (`edged` creates
//! them). It must not parse CLI arguments or print program output (the `docker` program does), and never
//! touches the aziot services.

use std::fs;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::gotmpl;
use super::state::{State, StateError};
use super::time;

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

/// Whether the simulated engine answers (no `docker-down` fault, and docker active — or startable through
/// `docker.socket`, as systemd socket activation starts a stopped dockerd on the first API call).
pub fn engine_up(st: &mut State) -> Result<bool, StateError> {
    if st.env.fault("docker-down").is_some() || !super::pkgdb::installed(st, "moby-engine")? {
        return Ok(false);
    }
    let services = st.services()?;
    if services.is_active("docker") {
        return Ok(true);
    }
    if !services.is_active("docker.socket") {
        return Ok(false);
    }
    st.journal(
        "docker",
        "systemd[1]",
        "docker.service: Triggered by docker.socket",
    )?;
    Ok(start_engine(st)?.is_ok())
}

/// `sha256:<hex>` of a string (stable fake digests for images and IDs).
pub fn digest(s: &str) -> String {
    let mut h = Sha256::new();
    h.update(s.as_bytes());
    hex::encode(h.finalize())
}

/// Split `repo[:tag]` (a registry port is not a tag).
pub fn split_image(image: &str) -> (String, String) {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => {
            (image[..i].to_string(), image[i + 1..].to_string())
        }
        _ => (image.to_string(), "latest".to_string()),
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
    }

    #[test]
    fn images_split_like_docker() {
        assert_eq!(
            split_image("mcr.microsoft.com/azureiotedge-agent:1.5"),
            ("mcr.microsoft.com/azureiotedge-agent".into(), "1.5".into())
        );
        assert_eq!(
            split_image("registry:5000/edge/agent"),
            ("registry:5000/edge/agent".into(), "latest".into())
        );
    }
}
