//! Outbound reachability (production checklist: "allow connections from IoT Edge devices"): which endpoints a
//! device's configuration needs, derived on the controller from the config it is given, and what a probe's
//! answer means for the verify matrix (one `edgefleet-reach-<host>:<port>` row per endpoint).
//!
//! The endpoints: the IoT Hub (or the parent device, nested) on 443 (the identity service's HTTPS, always) and
//! on the port of the upstream protocol (`Amqp` 5671, `Mqtt` 8883, the WebSocket variants 443; unset: edgeAgent's
//! default `Amqp`, so 5671 too); the DPS global endpoint on 443 when provisioned by DPS (the hub it assigns is
//! not known before provisioning, so a DPS device gets no hub rows); the runtime image registry (the
//! `[agent.config] image`'s registry) and the private registry of `[agent.config.auth]`, on 443, unless
//! `imagePullPolicy = "never"`; plus registries the caller adds (those of a deployment). With a proxy
//! (`[agent.env] https_proxy`), every probe goes through it (HTTP CONNECT) unless the host is in `no_proxy`.
//!
//! Pure functions; the probe script and its parser are `facts::reach`'s.

use serde_json::Value;

use super::proxy;
use crate::facts::reach::{Outcome, Probe};

/// One endpoint a device must reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name (or address).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// What needs it (`IoT Hub (AMQP)`, `DPS`, `runtime image registry`, ...).
    pub why: String,
}

impl Endpoint {
    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Its verify check id.
    pub fn check_id(&self) -> String {
        format!("{CHECK_PREFIX}{}", self.addr())
    }
}

/// Prefix of the reachability check ids (a waiver `edgefleet-reach-*` waives them all, with its reason).
pub const CHECK_PREFIX: &str = "edgefleet-reach-";

/// What the probes need: the endpoints, and the proxy (a secret when it carries a password).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReachPlan {
    /// The endpoints, in a stable order, each once.
    pub endpoints: Vec<Endpoint>,
    /// The proxy URL as written (`[agent.env] https_proxy`), when set.
    pub proxy: Option<String>,
    /// The proxy, parsed (for messages).
    pub proxy_shown: Option<String>,
    /// `no_proxy` entries.
    pub no_proxy: Vec<String>,
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for k in path {
        cur = cur.get(k)?;
    }
    cur.as_str().map(str::trim).filter(|x| !x.is_empty())
}

/// Is this a host name or IPv4 address we can probe (no spaces, quotes, schemes; IPv6 literals are not
/// supported)?
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// The registry host of an image reference (`mcr.microsoft.com/azureiotedge-agent:1.5.21` -> mcr.microsoft.com;
/// `myreg.azurecr.io:5000/x` -> (myreg.azurecr.io, 5000); no registry part -> Docker Hub's
/// `registry-1.docker.io`), as Docker decides: the first path component is a registry when it has a dot or a
/// port or is `localhost`.
pub fn image_registry(image: &str) -> Option<(String, u16)> {
    let image = image.trim();
    if image.is_empty() {
        return None;
    }
    let first = image.split('/').next()?;
    let has_registry =
        image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if !has_registry {
        return Some(("registry-1.docker.io".into(), 443));
    }
    Some(host_port(first, 443))
}

/// `host[:port]` (or a URL's authority) -> (host, port).
fn host_port(a: &str, default: u16) -> (String, u16) {
    let a = a
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let a = a.split('/').next().unwrap_or(a);
    match a.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || a.starts_with('[') => match p.parse::<u16>() {
            Ok(port) => (h.to_string(), port),
            Err(_) => (a.to_string(), default),
        },
        _ => (a.to_string(), default),
    }
}

/// The IoT Hub host of a connection string (`HostName=...;DeviceId=...;SharedAccessKey=...`): only that part
/// is read; the key is never copied.
fn connection_string_host(cs: &str) -> Option<String> {
    cs.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("HostName")
            .then(|| v.trim().to_string())
    })
}

/// Derive the endpoints a device needs from its configuration (the super config as JSON: `iotedge_config`'s
/// spec or a parsed config.toml), plus `extra_registries` (`host` or `host:port`). Errors name what is wrong.
pub fn plan(config: &Value, extra_registries: &[String]) -> Result<ReachPlan, String> {
    let mut out = ReachPlan::default();
    let mut add = |host: &str, port: u16, why: &str| -> Result<(), String> {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        if !valid_host(&host) {
            return Err(format!(
                "{why}: `{host}` is not a host name or address edgefleet can probe"
            ));
        }
        if !out
            .endpoints
            .iter()
            .any(|e| e.host == host && e.port == port)
        {
            out.endpoints.push(Endpoint {
                host,
                port,
                why: why.to_string(),
            });
        }
        Ok(())
    };
    let env = config.get("agent").and_then(|a| a.get("env"));
    let upstream = env
        .and_then(|e| e.get("UpstreamProtocol"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let hub_ports: &[(u16, &str)] = match upstream {
        "Amqp" => &[(5671, "AMQP"), (443, "HTTPS")],
        "Mqtt" => &[(8883, "MQTT"), (443, "HTTPS")],
        "AmqpWs" | "MqttWs" => &[(443, "HTTPS, WebSockets")],
        // edgeAgent's default is Amqp (falling back to AmqpWs).
        _ => &[(5671, "AMQP"), (443, "HTTPS")],
    };
    let prov = config.get("provisioning").cloned().unwrap_or(Value::Null);
    let source = s(&prov, &["source"]).unwrap_or("");
    let upstream_host = match s(config, &["parent_hostname"]) {
        Some(parent) => Some((parent.to_string(), "parent device")),
        None if source == "manual" => s(&prov, &["iothub_hostname"])
            .map(String::from)
            .or_else(|| s(&prov, &["connection_string"]).and_then(connection_string_host))
            .map(|h| (h, "IoT Hub")),
        None => None,
    };
    if let Some((h, what)) = upstream_host {
        for (port, proto) in hub_ports {
            add(&h, *port, &format!("{what} ({proto})"))?;
        }
    }
    if source == "dps" {
        let ge = s(&prov, &["global_endpoint"])
            .unwrap_or("https://global.azure-devices-provisioning.net");
        let (h, _) = host_port(ge, 443);
        add(&h, 443, "DPS")?;
    }
    let agent_cfg = config.get("agent").and_then(|a| a.get("config"));
    let pull_never = config
        .get("agent")
        .and_then(|a| a.get("imagePullPolicy"))
        .and_then(Value::as_str)
        == Some("never");
    if !pull_never {
        if let Some((h, p)) = agent_cfg
            .and_then(|c| c.get("image"))
            .and_then(Value::as_str)
            .and_then(image_registry)
        {
            add(&h, p, "runtime image registry")?;
        }
        if let Some(sa) = agent_cfg.and_then(|c| s(c, &["auth", "serveraddress"])) {
            let (h, p) = host_port(sa, 443);
            add(&h, p, "private registry")?;
        }
    }
    for r in extra_registries {
        let (h, p) = host_port(r, 443);
        add(&h, p, "registry")?;
    }
    if let Some(p) = env.and_then(|e| s(e, &["https_proxy"])) {
        let parsed = proxy::parse(p)?;
        out.proxy = Some(p.to_string());
        out.proxy_shown = Some(parsed.redacted());
    }
    if let Some(n) = env.and_then(|e| s(e, &["no_proxy"]).or_else(|| s(e, &["NO_PROXY"]))) {
        out.no_proxy = proxy::parse_no_proxy(n)?;
    }
    Ok(out)
}

/// One endpoint's verdict: ok, warning or error, with a detail naming the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// `ok`, `warning` or `error`.
    pub status: &'static str,
    /// What happened (names the endpoint).
    pub detail: String,
}

/// Judge the probes (by endpoint, `host:port`) against the plan: one verdict per endpoint, in plan order. An
/// endpoint without a probe answer is an error (the probe did not run); no curl on the device is a warning on
/// every endpoint (reachability not verified).
pub fn judge(plan: &ReachPlan, probes: &Result<Vec<Probe>, String>) -> Vec<Verdict> {
    plan.endpoints
        .iter()
        .map(|e| {
            let via = match (&plan.proxy_shown, proxy::bypasses(&plan.no_proxy, &e.host)) {
                (Some(p), false) => format!(" through the proxy {p}"),
                _ => String::new(),
            };
            let head = format!("{} ({}){via}", e.addr(), e.why);
            let (status, what) = match probes {
                Err(why) => ("warning", format!("not probed: {why}")),
                Ok(ps) => match ps.iter().find(|p| p.endpoint == e.addr()) {
                    None => (
                        "error",
                        "no probe answer (the probe did not finish)".to_string(),
                    ),
                    Some(p) => match p.outcome() {
                        Outcome::Ok(ms) => ("ok", format!("TLS handshake completed in {ms} ms")),
                        Outcome::Warning(m) => ("warning", m),
                        Outcome::Failed(m) => ("error", m),
                    },
                },
            };
            Verdict {
                endpoint: e.clone(),
                status,
                detail: format!("{head}: {what}"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn addrs(p: &ReachPlan) -> Vec<String> {
        p.endpoints.iter().map(Endpoint::addr).collect()
    }

    #[test]
    fn manual_connection_string_default_protocol() {
        let c = json!({
            "provisioning": {"source": "manual", "connection_string": "HostName=Hub-1.azure-devices.net;DeviceId=d1;SharedAccessKey=c2VjcmV0"},
            "agent": {"name": "edgeAgent", "type": "docker", "config": {"image": "mcr.microsoft.com/azureiotedge-agent:1.5.21"}}
        });
        let p = plan(&c, &[]).unwrap();
        assert_eq!(
            addrs(&p),
            [
                "hub-1.azure-devices.net:5671",
                "hub-1.azure-devices.net:443",
                "mcr.microsoft.com:443"
            ]
        );
        assert_eq!(p.endpoints[0].why, "IoT Hub (AMQP)");
        assert_eq!(
            p.endpoints[0].check_id(),
            "edgefleet-reach-hub-1.azure-devices.net:5671"
        );
        assert!(p.proxy.is_none());
    }

    #[test]
    fn protocols_pick_ports() {
        for (proto, want) in [
            ("Mqtt", vec!["h.example:8883", "h.example:443"]),
            ("AmqpWs", vec!["h.example:443"]),
            ("MqttWs", vec!["h.example:443"]),
        ] {
            let c = json!({
                "provisioning": {"source": "manual", "iothub_hostname": "h.example", "device_id": "d"},
                "agent": {"imagePullPolicy": "never", "config": {"image": "mcr.microsoft.com/azureiotedge-agent:1.5.21"}, "env": {"UpstreamProtocol": proto}}
            });
            assert_eq!(addrs(&plan(&c, &[]).unwrap()), want, "{proto}");
        }
    }

    #[test]
    fn dps_private_registry_proxy_and_extras() {
        let c = json!({
            "provisioning": {"source": "dps", "global_endpoint": "https://global.azure-devices-provisioning.net/", "id_scope": "0ne00"},
            "agent": {"config": {"image": "myreg.azurecr.io/azureiotedge-agent:1.5.21", "auth": {"serveraddress": "myreg.azurecr.io", "username": "u", "password": "p"}},
                      "env": {"UpstreamProtocol": "AmqpWs", "https_proxy": "http://u:pw-secret-1@proxy.corp:3128", "no_proxy": "localhost,.corp"}}
        });
        let p = plan(
            &c,
            &["registry.corp:5000".into(), "myreg.azurecr.io".into()],
        )
        .unwrap();
        assert_eq!(
            addrs(&p),
            [
                "global.azure-devices-provisioning.net:443",
                "myreg.azurecr.io:443",
                "registry.corp:5000"
            ]
        );
        assert_eq!(p.endpoints[1].why, "runtime image registry");
        assert_eq!(p.proxy_shown.as_deref(), Some("http://***@proxy.corp:3128"));
        assert_eq!(p.no_proxy, ["localhost", ".corp"]);
        let v = judge(&p, &Ok(vec![]));
        assert_eq!(v[0].status, "error");
        assert!(v[0].detail.starts_with("global.azure-devices-provisioning.net:443 (DPS) through the proxy http://***@proxy.corp:3128: "), "{}", v[0].detail);
        assert!(
            !v[2].detail.contains("through the proxy"),
            "no_proxy bypass: {}",
            v[2].detail
        );
    }

    #[test]
    fn nested_and_none_and_registries() {
        let c = json!({"parent_hostname": "gw.local", "provisioning": {"source": "manual", "iothub_hostname": "h.example"},
                       "agent": {"config": {"image": "gw.local:8000/azureiotedge-agent:1.5.21"}}});
        assert_eq!(
            addrs(&plan(&c, &[]).unwrap()),
            ["gw.local:5671", "gw.local:443", "gw.local:8000"]
        );
        let c = json!({"provisioning": {"source": "none"}});
        assert!(plan(&c, &[]).unwrap().endpoints.is_empty());
        assert_eq!(
            image_registry("edgeagent:1.5"),
            Some(("registry-1.docker.io".into(), 443))
        );
        assert_eq!(
            image_registry("library/x:1"),
            Some(("registry-1.docker.io".into(), 443))
        );
        assert_eq!(
            image_registry("localhost/x:1"),
            Some(("localhost".into(), 443))
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let c = json!({"provisioning": {"source": "manual", "iothub_hostname": "bad host;rm"}});
        assert!(plan(&c, &[]).unwrap_err().contains("not a host name"));
        let c = json!({"provisioning": {"source": "none"}, "agent": {"env": {"https_proxy": "proxy:3128"}}});
        assert!(plan(&c, &[]).unwrap_err().starts_with("edge_https_proxy"));
    }
}
