//! IoT Edge verify facts: the one read-only device script behind `iotedge_verify` and the pure parsers of
//! what it gathers (`iotedge system status`, `iotedge list`, `iotedge check --output json`, `docker version`,
//! daemon.json, config.toml, and last the running modules' `docker inspect`, whose script part and parser are
//! `facts::containers`'), tested on recorded output in the real formats.
//!
//! The script and its parser change together, so they live together. What the answers mean for a device's
//! verdict is `iotedge::check`'s business, not this file's.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::transport::Cmd;

/// Starts few processes on the device: the IoT Edge programs themselves, one `grep` per wait iteration, `cat`
/// and `base64`; service states are matched by the shell (`iotedge system status` pads names to 24 columns).
const SCRIPT: &str = r#"wait=$1; cfg=$2; daemon=$3; hub=$4; shift 4
end=
while :; do
  st=$(iotedge system status 2>&1)
  lst=$(iotedge list 2>&1); lrc=$?
  ready=0
  case $st in *"aziot-edged             Running"*) case $st in *"aziot-identityd         Running"*) case $st in *"aziot-keyd              Running"*) case $st in *"aziot-certd             Running"*)
    if [ "$hub" = 1 ]; then pat='^(edgeAgent|edgeHub)[[:space:]]+running'; want=2; else pat='^edgeAgent[[:space:]]+running'; want=1; fi
    [ "$(printf '%s\n' "$lst" | grep -cE "$pat")" -ge "$want" ] && ready=1 ;;
  esac ;; esac ;; esac ;; esac
  [ "$ready" = 1 ] && break
  now=$(date +%s); [ -n "$end" ] || end=$((now + wait))
  if [ "$now" -ge "$end" ]; then printf '\036EF:timeout\n'; break; fi
  sleep 2
done
printf '\036EF:status\n%s\n' "$st"
printf '\036EF:list %s\n%s\n' "$lrc" "$lst"
chk=$(iotedge check --output json "$@" 2>/dev/null); crc=$?
printf '\036EF:check %s\n%s\n' "$crc" "$chk"
printf '\036EF:docker\n'; docker version 2>&1
printf '\036EF:daemon\n'; cat -- "$daemon" 2>/dev/null; printf '\n'
printf '\036EF:config\n'; base64 -w0 < "$cfg" 2>/dev/null; printf '\n'; true"#;

/// The verify gather command: wait up to `wait` seconds for the services and runtime modules, then gather.
pub fn verify_cmd(
    wait: u64,
    config: &str,
    daemon_json: &str,
    expect_edge_hub: bool,
    dont_run: &[String],
) -> Cmd {
    let mut cmd = Cmd::new("set --")
        .arg(wait.to_string())
        .arg(config.to_string())
        .arg(daemon_json.to_string())
        .arg(if expect_edge_hub { "1" } else { "0" });
    if !dont_run.is_empty() {
        cmd = cmd.arg("--dont-run").args(dont_run.to_vec());
    }
    cmd.raw(";")
        .raw(SCRIPT)
        .raw("\n")
        .raw(super::containers::SCRIPT)
}

/// One entry of `iotedge check --output json`, as the device wrote it (what it means is `iotedge::check`'s
/// business).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckEntry {
    /// The check id.
    pub id: String,
    /// Its result as written (`ok`, `warning`, `error`, `fatal`, `skipped`, `ignored`; `unknown` when absent).
    pub result: String,
    /// Its detail lines.
    pub details: Vec<String>,
}

/// Parse `iotedge check --output json` (one compact JSON line) into per-id entries, in id order.
pub fn parse_check_json(text: &str) -> Result<Vec<CheckEntry>, String> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| "`iotedge check --output json` printed no JSON".to_string())?;
    let v: Value = serde_json::from_str(line)
        .map_err(|e| format!("`iotedge check` printed invalid JSON: {e}"))?;
    let checks = v
        .get("checks")
        .and_then(Value::as_object)
        .ok_or_else(|| "`iotedge check` JSON has no `checks` object".to_string())?;
    let mut out: Vec<CheckEntry> = checks
        .iter()
        .map(|(id, c)| {
            let r = c.get("result");
            let result = r
                .and_then(|r| r.get("result"))
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string();
            let details = r
                .and_then(|r| r.get("details"))
                .and_then(Value::as_array)
                .map(|d| {
                    d.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            CheckEntry {
                id: id.clone(),
                result,
                details,
            }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// `iotedge system status`: service name -> state ("Running", "Ready", "Down - ...").
pub fn parse_system_status(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let t = l.trim();
            let (name, rest) = t.split_once(char::is_whitespace)?;
            name.starts_with("aziot-")
                .then(|| (name.to_string(), rest.trim().to_string()))
        })
        .collect()
}

/// One row of `iotedge list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleRow {
    /// Module name.
    pub name: String,
    /// running | stopped | failed | dead | unknown.
    pub status: String,
    /// The image (last column).
    pub image: String,
}

/// `iotedge list` rows (header skipped).
pub fn parse_list(text: &str) -> Vec<ModuleRow> {
    text.lines()
        .skip_while(|l| !l.trim_start().starts_with("NAME"))
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if cols.len() < 3 {
                return None;
            }
            Some(ModuleRow {
                name: cols[0].to_string(),
                status: cols[1].to_string(),
                image: cols.last().map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// Is the container engine Moby (the only engine supported in production)? Judged from `docker version`.
pub fn is_moby(docker_version: &str) -> Option<bool> {
    let t = docker_version.trim();
    // The `Server:` header names the product for Docker's own builds ("Docker Engine - Community"); Microsoft's
    // moby-engine sets no platform name, so its header is bare. Azure builds also carry "+azure" versions.
    let server = t
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Server:"))?;
    let product = server.trim();
    if product.contains("Docker Engine") || product.contains("Docker Desktop") {
        return Some(false);
    }
    Some(
        product.is_empty() || product.to_ascii_lowercase().contains("moby") || t.contains("+azure"),
    )
}

/// Everything the verify script gathered from one device.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    /// `iotedge system status` output.
    pub status: String,
    /// `iotedge list` exit code and output.
    pub list: (i64, String),
    /// `iotedge check --output json` exit code and output.
    pub check: (i64, String),
    /// `docker version` output.
    pub docker: String,
    /// daemon.json content (may be empty).
    pub daemon: String,
    /// config.toml content (held in memory only; may contain secrets: never logged).
    pub config: String,
    /// sha256 of config.toml.
    pub config_sha256: String,
    /// Whether the wait loop timed out.
    pub timed_out: bool,
    /// The running modules' `docker inspect`: exit code and output (parsed by `facts::containers`).
    pub running: (i64, String),
}

/// Section marker the verify script prints before each part.
pub const MARK: &str = "\u{1e}EF:";

/// Split the verify script's output into its parts.
pub fn parse_gathered(out: &str) -> Gathered {
    let mut g = Gathered::default();
    let mut cur: Option<(String, String)> = None;
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in out.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix(MARK) {
            if let Some(c) = cur.take() {
                sections.push(c);
            }
            cur = Some((rest.trim_end().to_string(), String::new()));
        } else if let Some((_, body)) = cur.as_mut() {
            body.push_str(line);
        }
    }
    if let Some(c) = cur {
        sections.push(c);
    }
    for (head, body) in sections {
        let mut words = head.split_whitespace();
        let name = words.next().unwrap_or_default();
        let rc: i64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        match name {
            "status" => g.status = body,
            "list" => g.list = (rc, body),
            "check" => g.check = (rc, body),
            "docker" => g.docker = body,
            "daemon" => g.daemon = body,
            "config" => {
                use base64::Engine;
                let raw = body.trim();
                if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(raw) {
                    // The hash is computed here, from the bytes: one process less on every device.
                    if !b.is_empty() {
                        g.config_sha256 = super::sha256_hex(&b);
                    }
                    g.config = String::from_utf8_lossy(&b).into_owned();
                }
            }
            "timeout" => g.timed_out = true,
            "running" => g.running = (rc, body),
            _ => {}
        }
    }
    g
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// In the real shape: one compact line.
    pub(crate) const CHECK: &str = r#"{"additional_info":{"now":"2026-11-26T10:00:00Z"},"checks":{"container-engine-logrotate":{"result":{"result":"warning","details":["Container engine is not configured to rotate module logs which may cause it run out of disk space."]},"additional_info":{}},"config-up-to-date":{"result":{"result":"ok"},"additional_info":{}},"host-connect-iothub-amqp":{"result":{"result":"skipped"},"additional_info":{}},"certs-preloaded":{"result":{"result":"error","details":["the Edge CA has expired"]},"additional_info":{}}}}"#;

    #[test]
    fn parses_check_json() {
        let r = parse_check_json(&format!("noise\n{CHECK}\n")).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].id, "certs-preloaded");
        assert_eq!(r[0].result, "error");
        assert_eq!(r[1].result, "ok");
        assert_eq!(r[2].id, "container-engine-logrotate");
        assert_eq!(r[2].details.len(), 1);
        assert!(parse_check_json("Error: not json").is_err());
    }

    #[test]
    fn parses_status_and_list() {
        let st = "System services:\n    aziot-edged             Running\n    aziot-identityd         Running\n    aziot-keyd              Ready\n    aziot-certd             Down - activating\n    aziot-tpmd              Ready\n";
        let s = parse_system_status(st);
        assert_eq!(s["aziot-edged"], "Running");
        assert_eq!(s["aziot-certd"], "Down - activating");
        let l = "NAME             STATUS           DESCRIPTION      Config\nedgeAgent        running          Up 2 minutes     mcr.microsoft.com/azureiotedge-agent:1.5.21\nedgeHub          stopped          Stopped          mcr.microsoft.com/azureiotedge-hub:1.5.21\n";
        let rows = parse_list(l);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].status, "running");
        assert_eq!(rows[1].image, "mcr.microsoft.com/azureiotedge-hub:1.5.21");
    }

    #[test]
    fn moby_detection() {
        assert_eq!(
            is_moby("Server:\n Engine:\n  Version: 25.0.5+azure-2\n ... moby-engine"),
            Some(true)
        );
        assert_eq!(
            is_moby("Server: Docker Engine - Community\n Engine:\n  Version: 27.1.1"),
            Some(false)
        );
        assert_eq!(is_moby(""), None);
    }
}
