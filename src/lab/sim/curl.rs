//! The simulated `curl`: a lab device's way out to "the internet", which it never really reaches. It answers
//! the HTTPS requests edgefleet's reachability probe makes (`curl -k -sS -o FILE --connect-timeout N -m N -w FMT
//! https://HOST:PORT/`, proxy from `https_proxy`/`HTTPS_PROXY`, bypass list from `no_proxy`/`NO_PROXY`) with
//! curl 7.88's exit codes, error lines and `--write-out` values, decided by the device's network faults:
//!
//! - no fault: every name resolves (but `*.invalid`, RFC 6761), every port accepts and completes TLS (443
//!   answers HTTP: exit 0; other ports close after the handshake: exit 52, as an AMQP or MQTT port does);
//! - `dns-fails`: no name resolves (exit 6), the proxy's name neither (exit 5);
//! - `ports-blocked` (content: ports, default `5671 8883`): a firewall drops direct connections to those ports
//!   (exit 28 after the connect timeout, reported at once: the simulator never sleeps);
//! - `behind-proxy` (content: the site proxy's URL, default [`LAB_PROXY_URL`]): direct connections time out;
//!   through that proxy (same host and port; same credentials when the URL has some, else 407) CONNECT to 443
//!   succeeds and to any other port is refused with 403, as Squid's default `SSL_ports` does. Any other proxy
//!   does not exist: its name does not resolve (exit 5).
//!
//! It must not import another program, nor anything of edgefleet outside the simulator.

use super::program::Io;
use super::state::{State, StateError};

/// The lab site proxy's URL when `behind-proxy` names none.
pub const LAB_PROXY_URL: &str = "http://proxy.edgefleet.lab:3128";
/// Ports `ports-blocked` blocks when it names none.
pub const DEFAULT_BLOCKED_PORTS: &str = "5671 8883";

struct Req {
    write_out: Option<String>,
    connect_timeout_s: f64,
    url: String,
}

fn parse_args(args: &[String], io: &mut Io) -> Result<Req, i32> {
    let mut r = Req {
        write_out: None,
        connect_timeout_s: 300.0,
        url: String::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-k" | "--insecure" | "-s" | "--silent" | "-S" | "--show-error" | "-sS" | "-ksS"
            | "-L" | "--location" | "-f" | "--fail" => {}
            "-o" | "--output" | "-m" | "--max-time" => {
                if it.next().is_none() {
                    io.errln(format!("curl: option {a}: requires parameter"));
                    return Err(2);
                }
            }
            "--connect-timeout" => match it.next().and_then(|v| v.parse::<f64>().ok()) {
                Some(v) => r.connect_timeout_s = v,
                None => {
                    io.errln(
                        "curl: option --connect-timeout: expected a proper numerical parameter",
                    );
                    return Err(2);
                }
            },
            "-w" | "--write-out" => r.write_out = it.next().cloned(),
            s if s.starts_with('-') => {
                io.errln(format!("curl: option {s}: is unknown\ncurl: try 'curl --help' or 'curl --manual' for more information"));
                return Err(2);
            }
            s => r.url = s.to_string(),
        }
    }
    if r.url.is_empty() {
        io.errln("curl: no URL specified!\ncurl: try 'curl --help' or 'curl --manual' for more information");
        return Err(2);
    }
    Ok(r)
}

/// (host, port) of a URL or proxy spelling; `default` when no port is written.
fn host_port(authority: &str, default: u16) -> (String, u16) {
    let a = authority.rsplit('@').next().unwrap_or(authority);
    match a.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => {
            (h.to_ascii_lowercase(), p.parse().unwrap_or(default))
        }
        _ => (a.to_ascii_lowercase(), default),
    }
}

/// Split `scheme://[userinfo@]authority/...` into (scheme, userinfo, authority).
fn split_url(u: &str) -> (String, Option<String>, String) {
    let (scheme, rest) = u.split_once("://").unwrap_or(("http", u));
    let auth = rest.split(['/', '?', '#']).next().unwrap_or_default();
    match auth.rsplit_once('@') {
        Some((ui, a)) => (
            scheme.to_ascii_lowercase(),
            Some(ui.to_string()),
            a.to_string(),
        ),
        None => (scheme.to_ascii_lowercase(), None, auth.to_string()),
    }
}

/// The answer: exit code, error line, and the `--write-out` variables.
struct Answer {
    rc: i32,
    err: Option<String>,
    connect: f64,
    appconnect: f64,
    http_connect: u16,
    remote_ip: &'static str,
}

impl Answer {
    fn fail(rc: i32, err: String, http_connect: u16, remote_ip: &'static str) -> Answer {
        Answer {
            rc,
            err: Some(format!("curl: ({rc}) {err}")),
            connect: 0.0,
            appconnect: 0.0,
            http_connect,
            remote_ip,
        }
    }
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

fn no_proxy_bypasses(host: &str) -> bool {
    let list = env("no_proxy")
        .or_else(|| env("NO_PROXY"))
        .unwrap_or_default();
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|e| {
            let d = e.trim_start_matches('.').to_ascii_lowercase();
            e == "*" || host == d || host.ends_with(&format!(".{d}"))
        })
}

fn answer(st: &State, r: &Req) -> Answer {
    let (scheme, _, auth) = split_url(&r.url);
    let (host, port) = host_port(&auth, if scheme == "https" { 443 } else { 80 });
    let dns_fails = st.env.fault("dns-fails").is_some();
    let resolves = |h: &str| !dns_fails && !h.ends_with(".invalid") && !h.is_empty();
    let site_proxy = st.env.fault("behind-proxy").map(|c| {
        if c.is_empty() {
            LAB_PROXY_URL.to_string()
        } else {
            c
        }
    });
    let blocked: Vec<u16> = st
        .env
        .fault("ports-blocked")
        .map(|c| {
            let c = if c.is_empty() {
                DEFAULT_BLOCKED_PORTS.to_string()
            } else {
                c
            };
            c.split([' ', ',', '\n'])
                .filter_map(|p| p.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let timeout_ms = (r.connect_timeout_s * 1000.0) as u64 + 1;
    let proxy = if scheme == "https" {
        env("https_proxy").or_else(|| env("HTTPS_PROXY"))
    } else {
        env("http_proxy")
    }
    .filter(|_| !no_proxy_bypasses(&host));
    let ok = |tls: bool, http_connect: u16| Answer {
        rc: if !tls || port == 443 { 0 } else { 52 },
        err: (tls && port != 443).then(|| "curl: (52) Empty reply from server".to_string()),
        connect: 0.000_412,
        appconnect: if tls { 0.004_318 } else { 0.0 },
        http_connect,
        remote_ip: "192.0.2.10",
    };
    let tls = scheme == "https";
    match proxy {
        None => {
            if !resolves(&host) {
                return Answer::fail(6, format!("Could not resolve host: {host}"), 0, "");
            }
            if site_proxy.is_some() || blocked.contains(&port) {
                return Answer::fail(
                    28,
                    format!("Connection timed out after {timeout_ms} milliseconds"),
                    0,
                    "",
                );
            }
            ok(tls, 0)
        }
        Some(p) => {
            let (_, creds, pauth) = split_url(&p);
            let (phost, pport) = host_port(&pauth, 1080);
            let Some(site) = site_proxy else {
                // The lab's internet has no proxy but the site's.
                return Answer::fail(5, format!("Could not resolve proxy: {phost}"), 0, "");
            };
            let (_, site_creds, sauth) = split_url(&site);
            let (shost, sport) = host_port(&sauth, 3128);
            if !resolves(&phost) || phost != shost {
                return Answer::fail(5, format!("Could not resolve proxy: {phost}"), 0, "");
            }
            if pport != sport {
                return Answer::fail(
                    7,
                    format!("Failed to connect to {phost} port {pport} after 0 ms: Couldn't connect to server"),
                    0,
                    "",
                );
            }
            if site_creds.is_some() && site_creds != creds {
                return Answer::fail(
                    56,
                    "CONNECT tunnel failed, response 407".into(),
                    407,
                    "192.0.2.3",
                );
            }
            if port != 443 {
                return Answer::fail(
                    56,
                    "CONNECT tunnel failed, response 403".into(),
                    403,
                    "192.0.2.3",
                );
            }
            let mut a = ok(tls, 200);
            a.remote_ip = "192.0.2.3";
            a
        }
    }
}

/// curl's `--write-out`: `%{var}` replaced, `\n` and `%%` as curl reads them; unknown variables are empty.
fn write_out(fmt: &str, a: &Answer) -> String {
    let mut out = String::new();
    let mut rest = fmt;
    while let Some(i) = rest.find(['%', '\\']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("%{") {
            if let Some(end) = after.find('}') {
                let v = match &after[..end] {
                    "time_namelookup" => "0.000012".to_string(),
                    "time_connect" => format!("{:.6}", a.connect),
                    "time_appconnect" => format!("{:.6}", a.appconnect),
                    "http_connect" => format!("{:03}", a.http_connect),
                    "remote_ip" => a.remote_ip.to_string(),
                    "exitcode" => a.rc.to_string(),
                    "http_code" | "response_code" => if a.rc == 0 && a.appconnect > 0.0 {
                        "404"
                    } else {
                        "000"
                    }
                    .to_string(),
                    _ => String::new(),
                };
                out.push_str(&v);
                rest = &after[end + 1..];
                continue;
            }
        }
        let (lit, skip) = match tail.get(..2) {
            Some("%%") => ("%", 2),
            Some("\\n") => ("\n", 2),
            Some("\\t") => ("\t", 2),
            _ => (&tail[..1], 1),
        };
        out.push_str(lit);
        rest = &tail[skip..];
    }
    out.push_str(rest);
    out
}

/// `curl ...`.
pub fn run(st: &mut State, args: &[String], io: &mut Io) -> Result<i32, StateError> {
    let r = match parse_args(args, io) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let a = answer(st, &r);
    if let Some(w) = &r.write_out {
        io.out(write_out(w, &a));
    }
    if let Some(e) = &a.err {
        io.errln(e);
    }
    Ok(a.rc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::sim::state::Env;
    use crate::lab::sim::{init_device_state, run_program};

    const PROBE: [&str; 11] = [
        "curl",
        "-k",
        "-sS",
        "-o",
        "/dev/null",
        "--connect-timeout",
        "5",
        "-m",
        "10",
        "-w",
        "%{time_connect} %{time_appconnect} %{http_connect}",
    ];

    fn probe(root: &std::path::Path, url: &str) -> (i32, String, String) {
        let mut args: Vec<String> = PROBE.iter().map(|s| s.to_string()).collect();
        args.push(url.to_string());
        let (code, io) = run_program(Env::for_root(root), &args);
        (code, io.out, io.err)
    }

    /// The network states, as the probe sees them (no proxy in this process's environment).
    #[test]
    fn faults_decide_the_answers() {
        if std::env::var_os("https_proxy").is_some() || std::env::var_os("HTTPS_PROXY").is_some() {
            return; // a proxy in the test runner's environment would change every answer
        }
        let dir = tempfile::tempdir().unwrap();
        init_device_state(dir.path()).unwrap();
        assert_eq!(
            probe(dir.path(), "https://hub.example:443/"),
            (0, "0.000412 0.004318 000".into(), String::new())
        );
        let (code, _, err) = probe(dir.path(), "https://hub.example:5671/");
        assert_eq!(
            (code, err.as_str()),
            (52, "curl: (52) Empty reply from server\n")
        );
        let (code, out, err) = probe(dir.path(), "https://nowhere.invalid:443/");
        assert_eq!((code, out.as_str()), (6, "0.000000 0.000000 000"));
        assert_eq!(err, "curl: (6) Could not resolve host: nowhere.invalid\n");
        let faults = dir.path().join("var/lib/edgefleet-lab/faults");
        std::fs::write(faults.join("ports-blocked"), "5671 8883\n").unwrap();
        let (code, _, err) = probe(dir.path(), "https://hub.example:8883/");
        assert_eq!(code, 28);
        assert_eq!(
            err,
            "curl: (28) Connection timed out after 5001 milliseconds\n"
        );
        assert_eq!(probe(dir.path(), "https://hub.example:443/").0, 0);
        std::fs::write(faults.join("dns-fails"), "").unwrap();
        assert_eq!(probe(dir.path(), "https://hub.example:443/").0, 6);
        std::fs::write(faults.join("behind-proxy"), format!("{LAB_PROXY_URL}\n")).unwrap();
        std::fs::remove_file(faults.join("dns-fails")).unwrap();
        assert_eq!(
            probe(dir.path(), "https://hub.example:443/").0,
            28,
            "only the proxy gets out"
        );
        let (code, io) = run_program(
            Env::for_root(dir.path()),
            &["curl".into(), "--bogus".into(), "https://x/".into()],
        );
        assert_eq!(code, 2, "{:?}", io.err);
    }

    #[test]
    fn write_out_and_urls() {
        let a = Answer::fail(56, "x".into(), 403, "192.0.2.3");
        assert_eq!(
            write_out("%{time_namelookup} %{time_connect} %{time_appconnect} %{http_connect} %{remote_ip}\\n%%", &a),
            "0.000012 0.000000 0.000000 403 192.0.2.3\n%"
        );
        assert_eq!(
            split_url("http://u:p@proxy.lab:3128"),
            ("http".into(), Some("u:p".into()), "proxy.lab:3128".into())
        );
        assert_eq!(
            host_port("Hub.Example:5671", 443),
            ("hub.example".into(), 5671)
        );
        assert_eq!(host_port("hub.example", 443), ("hub.example".into(), 443));
    }
}
