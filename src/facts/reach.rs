//! The outbound reachability probe: the device script that resolves, connects and completes a TLS handshake to
//! each endpoint (all in parallel, through the proxy when one is given), and the pure parser of its answer,
//! tested on output recorded from real curl 7.88.
//!
//! The tool is `curl` (present on nearly every IoT Edge host: the install instructions use it; bash's /dev/tcp
//! cannot do TLS and `openssl s_client` cannot go through a proxy with credentials before OpenSSL 3): `curl -k
//! -sS -o /dev/null --connect-timeout 5 -m 10 https://HOST:PORT/` per endpoint. `-k` because the probe proves
//! the handshake, not the certificate chain (Moby, the identity service and edgeHub each trust differently, and a
//! TLS-inspecting proxy re-signs everything). After the handshake curl sends one HTTP request; on a non-HTTP
//! port (AMQP 5671, MQTT 8883) the server then closes or answers garbage, which is fine: `time_appconnect > 0`
//! means the handshake completed. Without curl, every endpoint is reported "not probed".
//!
//! Secrets: the proxy URL (which may carry a password) and `no_proxy` reach the device on the command's stdin
//! (never argv), and curl gets them from its environment (`https_proxy`), readable only by the process owner.
//! The script is appended to the verify gather, so verify stays one round trip. What the answers mean for the
//! verify matrix is `iotedge::reach`'s business.

use crate::transport::Cmd;

/// Seconds curl may take to connect (TCP, and the proxy's CONNECT).
pub const CONNECT_TIMEOUT_S: u32 = 5;
/// Seconds curl may take in all, per endpoint (probes run in parallel).
pub const MAX_TIME_S: u32 = 10;

/// Section marker line of the probe's answer inside the verify output.
pub const SECTION: &str = "\u{1e}EF:reach";

/// The probe script: stdin holds the proxy (line 1, may be empty), `no_proxy` (line 2), then one `host:port`
/// per line. Prints [`SECTION`], then `nocurl`, or one line per endpoint in input order:
/// `host:port rc namelookup connect appconnect http_connect [remote_ip]|last curl error line`.
const SCRIPT: &str = r#"printf '\036EF:reach\n'
ef_in=$(cat)
if ! command -v curl >/dev/null 2>&1; then printf 'nocurl\n'; else
ef_px=$(printf '%s\n' "$ef_in" | sed -n 1p); ef_np=$(printf '%s\n' "$ef_in" | sed -n 2p)
ef_d=$(mktemp -d 2>/dev/null) || { ef_d=/tmp/edgefleet-reach.$$; mkdir -p "$ef_d"; }
ef_n=0
for ef_ep in $(printf '%s\n' "$ef_in" | sed -n '3,$p'); do
  ef_n=$((ef_n + 1))
  ( unset ALL_PROXY all_proxy HTTPS_PROXY
    if [ -n "$ef_px" ]; then https_proxy=$ef_px; export https_proxy; else unset https_proxy; fi
    no_proxy=$ef_np; NO_PROXY=$ef_np; export no_proxy NO_PROXY
    w=$(curl -k -sS -o /dev/null --connect-timeout CONNECT_S -m MAX_S -w '%{time_namelookup} %{time_connect} %{time_appconnect} %{http_connect} %{remote_ip}' "https://$ef_ep/" 2>"$ef_d/$ef_n.err"); rc=$?
    e=$(grep '^curl: (' "$ef_d/$ef_n.err" | tail -n 1)
    printf '%s %s %s|%s\n' "$ef_ep" "$rc" "$w" "$e" > "$ef_d/$ef_n" ) &
done
wait
ef_i=1; while [ "$ef_i" -le "$ef_n" ]; do cat "$ef_d/$ef_i" 2>/dev/null; ef_i=$((ef_i + 1)); done
rm -rf "$ef_d"
fi; true"#;

/// The script with its timeouts filled in (built once).
fn script() -> &'static str {
    static S: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        SCRIPT
            .replace("CONNECT_S", &CONNECT_TIMEOUT_S.to_string())
            .replace("MAX_S", &MAX_TIME_S.to_string())
    })
}

/// Append the probe to a command (the verify gather), and return the stdin it needs: the proxy, `no_proxy` and
/// the endpoints (`host:port`). The stdin holds the proxy URL: send it as secret stdin.
pub fn append(
    cmd: Cmd,
    proxy: Option<&str>,
    no_proxy: &[String],
    endpoints: &[String],
) -> (Cmd, String) {
    let mut stdin = format!("{}\n{}\n", proxy.unwrap_or(""), no_proxy.join(","));
    for e in endpoints {
        stdin.push_str(e);
        stdin.push('\n');
    }
    (cmd.raw(";").raw(script()), stdin)
}

/// One endpoint's probe answer, as curl gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// `host:port`.
    pub endpoint: String,
    /// curl's exit code.
    pub rc: i64,
    /// Seconds until the name was resolved.
    pub namelookup: f64,
    /// Seconds until TCP connected (to the proxy when there is one); 0 when curl failed.
    pub connect: f64,
    /// Seconds until the TLS handshake completed; 0 when it did not.
    pub appconnect: f64,
    /// The proxy's answer to CONNECT (0: none).
    pub http_connect: u16,
    /// curl's last error line (`curl: (7) ...`), if any.
    pub error: String,
}

/// What a probe means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Reached: the TLS handshake completed (milliseconds).
    Ok(u64),
    /// Not proven either way.
    Warning(String),
    /// Not reachable: why, in words.
    Failed(String),
}

impl Probe {
    /// Judge the answer: what failed (DNS, proxy, TCP, TLS) in words, with curl's own message.
    pub fn outcome(&self) -> Outcome {
        if self.appconnect > 0.0 {
            return Outcome::Ok((self.appconnect * 1000.0).round() as u64);
        }
        let curl = if self.error.is_empty() {
            format!("curl exit {}", self.rc)
        } else {
            self.error.clone()
        };
        let tls_word = self.error.contains("SSL") || self.error.contains("TLS");
        let what = match self.rc {
            0 => {
                return Outcome::Warning(format!(
                    "curl succeeded but reported no TLS handshake ({curl})"
                ))
            }
            5 => "cannot resolve the proxy's name",
            6 => "DNS: cannot resolve the host",
            7 if self.error.contains("proxy") => "cannot connect to the proxy",
            7 => "TCP connection failed (refused or unreachable)",
            28 if tls_word => "TLS handshake timed out",
            28 => "TCP connection timed out (a firewall dropping the port?)",
            56 if self.http_connect != 0 && self.http_connect != 200 => {
                return Outcome::Failed(format!(
                    "the proxy refused to connect (CONNECT answered HTTP {}) ({curl})",
                    self.http_connect
                ))
            }
            35 => "TLS handshake failed",
            2 | 3 => {
                return Outcome::Warning(format!("the device's curl cannot run the probe ({curl})"))
            }
            _ => "failed",
        };
        Outcome::Failed(format!("{what} ({curl})"))
    }
}

/// Scrub `user:password@` from a line (curl never prints credentials, but a proxy's message might echo them).
fn scrub(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            out.push_str("***");
            rest = &rest[at..];
        }
    }
    out.push_str(rest);
    out
}

/// Parse the probe's section out of the verify output. `Ok(probes)`; `Err(why)` when nothing was probed (no
/// curl, or no section at all: `None`).
pub fn parse(out: &str) -> Option<Result<Vec<Probe>, String>> {
    let start = out.find(SECTION)?;
    let body = &out[start + SECTION.len()..];
    let body = body.split('\u{1e}').next().unwrap_or_default();
    let mut probes = Vec::new();
    for line in body.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        if line == "nocurl" {
            return Some(Err(
                "curl is not installed on the device (install it, or waive edgefleet-reach-* with a reason)"
                    .into(),
            ));
        }
        let (head, err) = line.split_once('|').unwrap_or((line, ""));
        let mut w = head.split_whitespace();
        let (Some(endpoint), Some(rc)) = (w.next(), w.next()) else {
            continue;
        };
        let Ok(rc) = rc.parse::<i64>() else { continue };
        let mut f = || w.next().and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
        let (namelookup, connect, appconnect) = (f(), f(), f());
        let http_connect = w.next().and_then(|x| x.parse::<u16>().ok()).unwrap_or(0);
        probes.push(Probe {
            endpoint: endpoint.to_string(),
            rc,
            namelookup,
            connect,
            appconnect,
            http_connect,
            error: scrub(err.trim()),
        });
    }
    Some(Ok(probes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from curl 7.88.1 (Debian 12) with the script's exact flags: a TLS server that answers HTTP, one
    /// that closes after the handshake (as an AMQP port does), a closed port, an unresolvable name, a proxy that
    /// tunnels, a proxy that refuses the port (403), an unreachable proxy, an unresolvable proxy, a server that
    /// never finishes the handshake.
    const RECORDED: &str = "noise before\n\u{1e}EF:reach\n\
hub.example:443 0 0.000016 0.000231 0.008169 000 127.0.0.1|\n\
hub.example:5671 52 0.000021 0.004834 0.013687 000 127.0.0.1|curl: (52) Empty reply from server\n\
hub.example:8883 7 0.000020 0.000000 0.000000 000 |curl: (7) Failed to connect to hub.example port 8883 after 0 ms: Couldn't connect to server\n\
nonexistent.example.com:443 6 0.000000 0.000000 0.000000 000 |curl: (6) Could not resolve host: nonexistent.example.com\n\
mcr.microsoft.com:443 0 0.000038 0.000170 0.023980 200 127.0.0.1|\n\
hub.example:5672 56 0.000023 0.000000 0.000000 403 127.0.0.1|curl: (56) CONNECT tunnel failed, response 403\n\
a.example:443 7 0.000022 0.000000 0.000000 000 |curl: (7) Failed to connect to 127.0.0.1 port 18081 after 0 ms: Couldn't connect to server\n\
b.example:443 5 0.000000 0.000000 0.000000 000 |curl: (5) Could not resolve proxy: proxy.nowhere.example\n\
c.example:443 28 0.000024 0.000000 0.000000 000 127.0.0.1|curl: (28) SSL connection timeout\n\
d.example:5671 28 0.000024 0.000000 0.000000 000 |curl: (28) Connection timed out after 5001 milliseconds\n";

    #[test]
    fn recorded_answers() {
        let p = parse(RECORDED).unwrap().unwrap();
        assert_eq!(p.len(), 10);
        let o: Vec<Outcome> = p.iter().map(Probe::outcome).collect();
        assert_eq!(o[0], Outcome::Ok(8));
        assert_eq!(
            o[1],
            Outcome::Ok(14),
            "a handshake, then the AMQP port closes: reachable"
        );
        let f = |i: usize| match &o[i] {
            Outcome::Failed(m) => m.clone(),
            other => panic!("{i}: {other:?}"),
        };
        assert!(f(2).starts_with("TCP connection failed (refused or unreachable) (curl: (7) Failed to connect to hub.example port 8883"), "{}", f(2));
        assert!(
            f(3).starts_with("DNS: cannot resolve the host (curl: (6)"),
            "{}",
            f(3)
        );
        assert_eq!(o[4], Outcome::Ok(24));
        assert_eq!(p[4].http_connect, 200);
        assert!(
            f(5).starts_with("the proxy refused to connect (CONNECT answered HTTP 403)"),
            "{}",
            f(5)
        );
        assert!(f(6).starts_with("TCP connection failed"), "{}", f(6));
        assert!(
            f(7).starts_with("cannot resolve the proxy's name"),
            "{}",
            f(7)
        );
        assert!(f(8).starts_with("TLS handshake timed out"), "{}", f(8));
        assert!(f(9).starts_with("TCP connection timed out"), "{}", f(9));
    }

    #[test]
    fn no_curl_no_section_and_scrubbing() {
        assert!(parse("\u{1e}EF:reach\nnocurl\n")
            .unwrap()
            .unwrap_err()
            .contains("curl is not installed"));
        assert!(parse("\u{1e}EF:config\nabc\n").is_none());
        assert_eq!(parse("\u{1e}EF:reach\n").unwrap().unwrap(), vec![]);
        assert_eq!(
            scrub("curl: (56) proxy http://u:pw@proxy:3128 said no"),
            "curl: (56) proxy http://***@proxy:3128 said no"
        );
        // A later section ends the probe's.
        let p = parse("\u{1e}EF:reach\nh:443 6 0 0 0 000 |x\n\u{1e}EF:other\nh:1 0 0 0 1 000 |\n")
            .unwrap()
            .unwrap();
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn append_sends_secrets_on_stdin_only() {
        let (cmd, stdin) = append(
            Cmd::new("true"),
            Some("http://u:pw-in-stdin@proxy:3128"),
            &["localhost".into()],
            &["h.example:443".into(), "mcr.microsoft.com:443".into()],
        );
        let line = cmd.to_shell();
        assert!(!line.contains("pw-in-stdin"));
        assert!(line.contains("--connect-timeout 5 -m 10"));
        assert_eq!(
            stdin,
            "http://u:pw-in-stdin@proxy:3128\nlocalhost\nh.example:443\nmcr.microsoft.com:443\n"
        );
    }

    /// The script itself, run by the local /bin/sh with a stand-in `curl` on PATH: parallel probes come back one
    /// line each, in input order, with the proxy from stdin in curl's environment.
    #[test]
    fn script_runs_under_sh() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("curl");
        std::fs::write(
            &fake,
            "#!/bin/sh\nfor a; do u=$a; done\ncase $u in *:1/) echo 'curl: (7) Failed to connect' >&2; printf '0.1 0 0 000 '; exit 7;; esac\nprintf '0.1 0.2 0.3 %s 127.0.0.1' \"${https_proxy:+200}\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (cmd, stdin) = append(
            Cmd::new("true"),
            Some("http://p:3128"),
            &[],
            &["a.example:443".into(), "b.example:1".into()],
        );
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd.to_shell())
            .env("PATH", path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let p = parse(&text).unwrap().unwrap();
        assert_eq!(p.len(), 2, "{text}");
        assert_eq!(
            (p[0].endpoint.as_str(), p[0].http_connect),
            ("a.example:443", 200)
        );
        assert_eq!(p[0].outcome(), Outcome::Ok(300));
        assert_eq!((p[1].endpoint.as_str(), p[1].rc), ("b.example:1", 7));
        assert_eq!(p[1].error, "curl: (7) Failed to connect");
    }
}
