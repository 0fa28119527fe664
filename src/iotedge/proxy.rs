//! The HTTPS proxy a device reaches the cloud through (production checklist: "communicate through a proxy"):
//! parsing and validating the proxy URL, with the same URL parser IoT Edge 1.5 is built with (`url` 2.4), and
//! its redacted spelling.
//!
//! A proxy URL may carry a user and password (`http://user:pass@proxy:3128`): the password is a secret. Parsing
//! registers it (raw and percent-decoded) with the process-wide redactor, so it is masked in every output of the
//! run; nothing here ever prints it, and errors name the variable and what to write, never the value. Pure but
//! for that registration: no I/O.

use url_24::Url;

/// The inventory variable the proxy URL comes from (named in every error, as the operator wrote it).
pub const PROXY_VAR: &str = "edge_https_proxy";

/// A validated proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// `http` or `https`.
    pub scheme: String,
    /// The proxy host.
    pub host: String,
    /// The proxy port (the scheme's default when not written).
    pub port: u16,
    /// Whether the URL carries a user (and maybe a password).
    pub has_credentials: bool,
}

impl Proxy {
    /// The URL without credentials (`http://proxy:3128`, with `***@` when it has some): safe to print.
    pub fn redacted(&self) -> String {
        let creds = if self.has_credentials { "***@" } else { "" };
        format!("{}://{creds}{}:{}", self.scheme, self.host, self.port)
    }
}

/// Parse and validate a proxy URL. The error says what is wrong and what to write, without the value.
pub fn parse(raw: &str) -> Result<Proxy, String> {
    const HOW: &str = "write it as http://[user:password@]host:port";
    let s = raw.trim();
    if s.is_empty() {
        return Err(format!("{PROXY_VAR} is empty: {HOW}"));
    }
    if s != raw {
        return Err(format!(
            "{PROXY_VAR} has leading or trailing whitespace, which the device would keep: {HOW}"
        ));
    }
    if !s.contains("://") {
        return Err(format!(
            "{PROXY_VAR} has no scheme: a proxy URL starts with http:// (or https://); {HOW}"
        ));
    }
    let u =
        Url::parse(s).map_err(|e| format!("{PROXY_VAR} does not parse as a URL ({e}): {HOW}"))?;
    // Register the secret before anything else can fail and print a message about this URL.
    if let Some(pw) = u.password() {
        crate::redact::register(pw);
        if let Ok(dec) = percent_decode(pw) {
            crate::redact::register(&dec);
        }
    }
    let scheme = u.scheme().to_string();
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "{PROXY_VAR} has scheme `{scheme}`: IoT Edge, Moby and the identity service speak to an HTTP proxy (http:// or https://); {HOW}"
        ));
    }
    let host = match u.host_str() {
        Some(h) if !h.is_empty() => h.to_string(),
        _ => return Err(format!("{PROXY_VAR} names no host: {HOW}")),
    };
    if !matches!(u.path(), "" | "/") || u.query().is_some() || u.fragment().is_some() {
        return Err(format!(
            "{PROXY_VAR} has a path, query or fragment, which a proxy URL cannot have: {HOW}"
        ));
    }
    let port = u
        .port_or_known_default()
        .ok_or_else(|| format!("{PROXY_VAR} has no port: {HOW}"))?;
    Ok(Proxy {
        scheme,
        host,
        port,
        has_credentials: !u.username().is_empty() || u.password().is_some(),
    })
}

/// Validate a `no_proxy` list (comma-separated host names, domains `.example.com`, IP addresses or CIDRs): no
/// whitespace inside entries, no empty entries, no URLs.
pub fn parse_no_proxy(raw: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for e in raw.split(',') {
        let e = e.trim();
        if e.is_empty() {
            continue;
        }
        if e.contains("://") || e.contains(char::is_whitespace) || e.contains('"') {
            return Err(format!(
                "edge_no_proxy entry `{e}` is not a host, domain, IP address or CIDR: write e.g. localhost,127.0.0.1,.corp.example"
            ));
        }
        out.push(e.to_string());
    }
    Ok(out)
}

/// Does `host` bypass the proxy by this `no_proxy` list (curl's and Go's rules: exact host, a `.domain` or
/// `domain` suffix on a label boundary, `*` for all)?
pub fn bypasses(no_proxy: &[String], host: &str) -> bool {
    let h = host.to_ascii_lowercase();
    no_proxy.iter().any(|e| {
        let e = e.to_ascii_lowercase();
        if e == "*" {
            return true;
        }
        let d = e.trim_start_matches('.');
        h == d || h.ends_with(&format!(".{d}"))
    })
}

fn percent_decode(s: &str) -> Result<String, ()> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_proxies() {
        let p = parse("http://proxy.corp.example:3128").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.has_credentials),
            ("proxy.corp.example", 3128, false)
        );
        assert_eq!(p.redacted(), "http://proxy.corp.example:3128");
        let p = parse("http://10.0.0.8").unwrap();
        assert_eq!(p.port, 80);
        let p = parse("https://proxy.example/").unwrap();
        assert_eq!(p.port, 443);
    }

    #[test]
    fn credentials_are_registered_and_never_printed() {
        let p = parse("http://ops:s3cr%40t-proxy-pw@proxy.example:8080").unwrap();
        assert!(p.has_credentials);
        assert_eq!(p.redacted(), "http://***@proxy.example:8080");
        assert!(crate::redact::contains_secret("x s3cr%40t-proxy-pw y"));
        assert!(crate::redact::contains_secret("x s3cr@t-proxy-pw y"));
    }

    #[test]
    fn bad_proxies_name_the_variable_not_the_value() {
        for (bad, want) in [
            ("", "is empty"),
            ("proxy.example:3128", "has no scheme"),
            ("http://", "does not parse as a URL (empty host)"),
            ("http//proxy:3128", "has no scheme"),
            (
                "http://proxy:99999",
                "does not parse as a URL (invalid port number)",
            ),
            ("socks5://proxy:1080", "scheme `socks5`"),
            ("http://proxy:3128/path", "path, query or fragment"),
            (" http://proxy:3128", "whitespace"),
            (
                "http://user:hunter2-secret@[::1:3128",
                "does not parse as a URL",
            ),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.starts_with(PROXY_VAR), "{bad}: {e}");
            assert!(e.contains(want), "{bad}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
            assert!(e.contains("http://[user:password@]host:port"), "{e}");
        }
    }

    #[test]
    fn no_proxy_lists() {
        let n = parse_no_proxy("localhost, 127.0.0.1,.corp.example,,").unwrap();
        assert_eq!(n, ["localhost", "127.0.0.1", ".corp.example"]);
        assert!(parse_no_proxy("http://x").is_err());
        assert!(bypasses(&n, "registry.corp.example"));
        assert!(bypasses(&n, "LOCALHOST"));
        assert!(!bypasses(&n, "notcorp.example"));
        assert!(!bypasses(&n, "mcr.microsoft.com"));
    }

    /// config.toml's `[agent.env] https_proxy` is validated with the rest of the config (before contact, and by
    /// `edgefleet lint`), and AMQP/MQTT without WebSockets cannot go through it.
    #[test]
    fn config_validation_checks_the_proxy_and_the_protocol() {
        let cfg = |env: serde_json::Value| {
            crate::iotedge::config::from_value(&serde_json::json!({
                "hostname": "edge-1",
                "provisioning": {"source": "manual", "connection_string": "HostName=h.example;DeviceId=d;SharedAccessKey=c2VjcmV0"},
                "agent": {"name": "edgeAgent", "type": "docker", "config": {"image": "mcr.microsoft.com/azureiotedge-agent:1.5.21"}, "env": env}
            }))
            .unwrap()
        };
        let keys = |env| -> Vec<String> {
            crate::iotedge::config::validate(&cfg(env))
                .iter()
                .map(|p| p.to_string())
                .collect()
        };
        assert!(keys(
            serde_json::json!({"https_proxy": "http://proxy:3128", "UpstreamProtocol": "AmqpWs"})
        )
        .is_empty());
        let bad = keys(serde_json::json!({"https_proxy": "proxy:3128"}));
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(
            bad[0].starts_with("`agent.env.https_proxy`: edge_https_proxy has no scheme"),
            "{bad:?}"
        );
        let amqp = keys(
            serde_json::json!({"https_proxy": "http://proxy:3128", "UpstreamProtocol": "Amqp"}),
        );
        assert_eq!(amqp.len(), 1, "{amqp:?}");
        assert!(amqp[0].contains("use `AmqpWs`"), "{amqp:?}");
    }
}
