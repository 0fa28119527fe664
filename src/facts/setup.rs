//! Setup facts: the `ansible_*` facts playbooks branch on, gathered when a playbook mentions facts (folded into
//! the play's one gather round trip), and the pure parser of the script's `key=value` lines. Names and values
//! follow Ansible's setup module (`ansible_distribution_version` is Debian's point release, `ansible_pkg_mgr`
//! is `apt` for apt-get, `ansible_memtotal_mb` is MemTotal in MiB rounded down, `ansible_env` the login
//! environment of the connection). It must not change anything on the device.

use serde_json::{json, Value};

use crate::transport::Cmd;

/// The minimal fact set gathered when a playbook mentions facts (folded into the prefetch round trip).
const SETUP: &str = r#"printf 'hostname=%s\n' "$(hostname 2>/dev/null || cat /etc/hostname)"; printf 'fqdn=%s\n' "$(hostname -f 2>/dev/null || hostname)"; printf 'kernel=%s\n' "$(uname -r)"; printf 'architecture=%s\n' "$(uname -m)"; printf 'nodename=%s\n' "$(uname -n)"; printf 'user_id=%s\n' "$(id -un)"; printf 'vcpus=%s\n' "$(grep -c '^processor' /proc/cpuinfo 2>/dev/null)"; printf 'memtotal_kb=%s\n' "$(awk '/^MemTotal:/{print $2}' /proc/meminfo 2>/dev/null)"; for p in apt-get dnf yum zypper apk pacman; do if command -v $p >/dev/null 2>&1; then printf 'pkg=%s\n' "$p"; break; fi; done; [ -r /etc/debian_version ] && printf 'debian_version=%s\n' "$(cat /etc/debian_version)"; printf 'env_hex=%s\n' "$(env -0 2>/dev/null | od -An -v -tx1 | tr -d ' \n')"; if [ -r /etc/os-release ]; then . /etc/os-release; printf 'distribution=%s\n' "${NAME:-}"; printf 'distribution_version=%s\n' "${VERSION_ID:-}"; printf 'codename=%s\n' "${VERSION_CODENAME:-}"; printf 'os_id=%s\n' "${ID:-}"; printf 'os_like=%s\n' "${ID_LIKE:-}"; fi"#;

/// Parse the script's output into `ansible_*` facts, named and shaped as Ansible's setup module reports them.
pub fn parse(out: &str) -> Vec<(String, Value)> {
    let mut v = Vec::new();
    let mut id = String::new();
    let mut like = String::new();
    let mut version_id = String::new();
    let mut debian_version = String::new();
    let mut codename = String::new();
    for line in out.lines() {
        let Some((k, val)) = line.split_once('=') else {
            continue;
        };
        match k {
            "os_id" => id = val.to_string(),
            "os_like" => like = val.to_string(),
            "distribution_version" => version_id = val.to_string(),
            "debian_version" => debian_version = val.trim().to_string(),
            "codename" => codename = val.to_string(),
            "distribution" => {
                let d = val.split_whitespace().next().unwrap_or(val).to_string();
                v.push(("ansible_distribution".to_string(), json!(d)));
            }
            "architecture" => {
                v.push(("ansible_architecture".to_string(), json!(val)));
                v.push(("ansible_machine".to_string(), json!(val)));
            }
            "vcpus" => {
                if let Ok(n) = val.trim().parse::<u64>() {
                    v.push(("ansible_processor_vcpus".to_string(), json!(n)));
                }
            }
            "memtotal_kb" => {
                if let Ok(kb) = val.trim().parse::<u64>() {
                    v.push(("ansible_memtotal_mb".to_string(), json!(kb / 1024)));
                }
            }
            "pkg" => {
                let m = match val {
                    "apt-get" => "apt",
                    other => other,
                };
                v.push(("ansible_pkg_mgr".to_string(), json!(m)));
            }
            "env_hex" => v.push(("ansible_env".to_string(), env_from_hex(val))),
            _ => v.push((format!("ansible_{k}"), json!(val))),
        }
    }
    // Debian's point release is in /etc/debian_version (12.11), os-release has only the major (12).
    let version = if id == "debian" && debian_version.starts_with(|c: char| c.is_ascii_digit()) {
        debian_version
    } else {
        version_id
    };
    let major = version.split('.').next().unwrap_or("").to_string();
    v.push(("ansible_distribution_version".to_string(), json!(version)));
    v.push((
        "ansible_distribution_major_version".to_string(),
        json!(major),
    ));
    v.push(("ansible_distribution_release".to_string(), json!(codename)));
    if !v.iter().any(|(k, _)| k == "ansible_pkg_mgr") {
        v.push(("ansible_pkg_mgr".to_string(), json!("unknown")));
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

/// `env -0`'s output, as hex, to a map (a line that is not `KEY=value` is skipped).
fn env_from_hex(hex: &str) -> Value {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    let mut m = serde_json::Map::new();
    for entry in bytes.split(|b| *b == 0) {
        let text = String::from_utf8_lossy(entry);
        if let Some((k, val)) = text.split_once('=') {
            if !k.is_empty() {
                m.insert(k.to_string(), json!(val));
            }
        }
    }
    Value::Object(m)
}

/// Every fact name this gather provides (what a playbook's text is scanned for to decide whether to gather).
pub const NAMES: &[&str] = &[
    "ansible_facts",
    "ansible_hostname",
    "ansible_nodename",
    "ansible_fqdn",
    "ansible_kernel",
    "ansible_architecture",
    "ansible_machine",
    "ansible_distribution",
    "ansible_os_family",
    "ansible_system",
    "ansible_user_id",
    "ansible_env",
    "ansible_processor_vcpus",
    "ansible_memtotal_mb",
    "ansible_pkg_mgr",
];

/// Does this text (a task, template or condition) use a setup fact? (`ansible_distribution` also covers its
/// `_version`, `_major_version` and `_release` forms.)
pub fn mentioned(text: &str) -> bool {
    NAMES.iter().any(|n| text.contains(n))
}

/// The command that prints the setup facts (read-only).
pub fn cmd() -> Cmd {
    Cmd::new(SETUP)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded on a Debian 12 device.
    const RECORDED: &str = "hostname=edge-001\nfqdn=edge-001.site-a.example\nkernel=6.1.0-18-amd64\narchitecture=x86_64\nnodename=edge-001\nuser_id=root\nvcpus=4\nmemtotal_kb=3995340\npkg=apt-get\ndebian_version=12.11\nenv_hex=484f4d453d2f726f6f7400504154483d2f62696e00\ndistribution=Debian GNU/Linux\ndistribution_version=12\ncodename=bookworm\nos_id=debian\nos_like=\n";

    #[test]
    fn parses_recorded_output() {
        let f: std::collections::BTreeMap<String, Value> = parse(RECORDED).into_iter().collect();
        assert_eq!(f["ansible_hostname"], json!("edge-001"));
        assert_eq!(f["ansible_fqdn"], json!("edge-001.site-a.example"));
        assert_eq!(f["ansible_distribution"], json!("Debian"));
        assert_eq!(f["ansible_os_family"], json!("Debian"));
        assert_eq!(f["ansible_architecture"], json!("x86_64"));
        assert!(!f.contains_key("ansible_os_id"));
        assert_eq!(f["ansible_distribution_version"], json!("12.11"));
        assert_eq!(f["ansible_distribution_major_version"], json!("12"));
        assert_eq!(f["ansible_distribution_release"], json!("bookworm"));
        assert_eq!(f["ansible_machine"], json!("x86_64"));
        assert_eq!(f["ansible_nodename"], json!("edge-001"));
        assert_eq!(f["ansible_user_id"], json!("root"));
        assert_eq!(f["ansible_processor_vcpus"], json!(4));
        assert_eq!(f["ansible_memtotal_mb"], json!(3901));
        assert_eq!(f["ansible_pkg_mgr"], json!("apt"));
        assert_eq!(f["ansible_env"], json!({"HOME": "/root", "PATH": "/bin"}));
    }
}
