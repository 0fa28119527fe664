//! Setup facts: the small set of `ansible_*` facts gathered when a playbook mentions them (folded into the
//! play's one gather round trip), and the pure parser of the script's `key=value` lines.

use serde_json::{json, Value};

use crate::transport::Cmd;

/// The minimal fact set gathered when a playbook mentions facts (folded into the prefetch round trip).
const SETUP: &str = r#"printf 'hostname=%s\n' "$(hostname 2>/dev/null || cat /etc/hostname)"; printf 'fqdn=%s\n' "$(hostname -f 2>/dev/null || hostname)"; printf 'kernel=%s\n' "$(uname -r)"; printf 'architecture=%s\n' "$(uname -m)"; if [ -r /etc/os-release ]; then . /etc/os-release; printf 'distribution=%s\n' "${NAME:-}"; printf 'distribution_version=%s\n' "${VERSION_ID:-}"; printf 'os_id=%s\n' "${ID:-}"; printf 'os_like=%s\n' "${ID_LIKE:-}"; fi"#;

pub fn parse(out: &str) -> Vec<(String, Value)> {
    let mut v = Vec::new();
    let mut id = String::new();
    let mut like = String::new();
    for line in out.lines() {
        let Some((k, val)) = line.split_once('=') else {
            continue;
        };
        match k {
            "os_id" => id = val.to_string(),
            "os_like" => like = val.to_string(),
            "distribution" => {
                let d = val.split_whitespace().next().unwrap_or(val).to_string();
                v.push(("ansible_distribution".to_string(), json!(d)));
            }
            _ => v.push((format!("ansible_{k}"), json!(val))),
        }
    }
    let family = if id == "debian" || id == "ubuntu" || like.contains("debian") {
        "Debian"
    } else if like.contains("rhel") || like.contains("fedora") || id == "rhel" || id == "centos" {
        "RedHat"
    } else {
        "Linux"
    };
    v.push(("ansible_os_family".to_string(), json!(family)));
    v.push(("ansible_system".to_string(), json!("Linux")));
    v
}

/// The command that prints the setup facts (read-only).
pub fn cmd() -> Cmd {
    Cmd::new(SETUP)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded on a Debian 12 device.
    const RECORDED: &str = "hostname=edge-001\nfqdn=edge-001.site-a.example\nkernel=6.1.0-18-amd64\narchitecture=x86_64\ndistribution=Debian GNU/Linux\ndistribution_version=12\nos_id=debian\nos_like=\n";

    #[test]
    fn parses_recorded_output() {
        let f: std::collections::BTreeMap<String, Value> = parse(RECORDED).into_iter().collect();
        assert_eq!(f["ansible_hostname"], json!("edge-001"));
        assert_eq!(f["ansible_fqdn"], json!("edge-001.site-a.example"));
        assert_eq!(f["ansible_distribution"], json!("Debian"));
        assert_eq!(f["ansible_distribution_version"], json!("12"));
        assert_eq!(f["ansible_os_family"], json!("Debian"));
        assert_eq!(f["ansible_architecture"], json!("x86_64"));
        assert!(!f.contains_key("ansible_os_id"));
    }
}
