//! Certificate facts for `certs report`: the one read-only device script that collects, in a single round trip,
//! the device's clock, `/etc/aziot/config.toml` and every certificate file it names (Edge CA, trust bundle,
//! device identity certificate) plus the certificates aziot-certd keeps in its home directory, and the pure
//! parsers of what it prints, tested on recorded output.
//!
//! Only certificate files are read: the script picks the `file://` values of the `cert`, `trust_bundle_cert` and
//! `identity_cert` keys, never `pk`/`identity_pk`/`device_id_pk` (private keys). X.509 is parsed on the
//! controller (`iotedge::certs`), not here and not on the device. It must never change anything on a device.

use base64::Engine as _;

use crate::transport::Cmd;

/// Where aziot-certd keeps the certificates it issues or generates (`homedir_path` + `certs/`; file names are
/// `<id with only ASCII alphanumerics>-<sha256 of the id>.cer`).
pub const CERTD_CERTS_DIR: &str = "/var/lib/aziot/certd/certs";

/// `$1`: config.toml, `$2`: certd's cert directory. Prints `\x1eEF:` sections; file contents
/// and the config are base64 so no byte in them can look like a marker. Few processes (the devices' process
/// spawning is the cost of a fleet-wide read): `date`, one `base64` per file, one `sed`.
pub(super) const SCRIPT: &str = r#"cfg=$1; certd=$2
printf '\036EF:time %s\n' "$(date -u +%s)"
emit() {
  if [ ! -e "$2" ]; then printf '\036EF:file %s missing %s\n' "$1" "$2"
  elif [ ! -r "$2" ]; then printf '\036EF:file %s unreadable %s\n' "$1" "$2"
  else printf '\036EF:file %s ok %s\n' "$1" "$2"; base64 -w0 < "$2"; printf '\n'; fi
}
if [ -r "$cfg" ]; then
  printf '\036EF:config\n'; base64 -w0 < "$cfg"; printf '\n'
  sed -nE 's#^[[:space:]]*(cert|trust_bundle_cert|identity_cert)[[:space:]]*=[[:space:]]*"file://([^"]*)".*$#\1 \2#p' "$cfg" |
  while read -r key path; do emit "$key" "$path"; done
elif [ -e "$cfg" ]; then printf '\036EF:config-unreadable\n'
else printf '\036EF:config-missing\n'; fi
for f in "$certd"/*.cer; do [ -e "$f" ] && emit certd "$f"; done
true"#;

/// The certificate gather command for a device whose super config is `config`.
pub fn certs_cmd(config: &str) -> Cmd {
    Cmd::new("set --")
        .arg(config.to_string())
        .arg(CERTD_CERTS_DIR)
        .raw(";")
        .raw(SCRIPT)
}

/// What the config says a file is, or `certd` for aziot-certd's own files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatheredFile {
    /// The config key that named it (`cert` under `[edge_ca]`, `trust_bundle_cert`, `identity_cert`) or `certd`.
    pub key: String,
    /// The path on the device.
    pub path: String,
    /// Its bytes, or why they could not be read (`missing`, `unreadable`, or a decoding problem).
    pub content: Result<Vec<u8>, String>,
}

/// The state of the device's config.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigState {
    /// Its text.
    Present(String),
    /// It does not exist (the device is not provisioned).
    Missing,
    /// It exists but the login user cannot read it (become is needed).
    Unreadable,
}

/// Everything the certificate gather printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertsGather {
    /// The device clock (`date -u +%s`), when it printed a number.
    pub device_time: Option<i64>,
    /// config.toml.
    pub config: ConfigState,
    /// The certificate files, in the order the script found them.
    pub files: Vec<GatheredFile>,
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| format!("{what}: the device sent invalid base64 ({e})"))
}

/// Parse the gather's output. Errors only when it is not the script's output at all.
pub fn parse_certs(out: &str) -> Result<CertsGather, String> {
    let mut device_time = None;
    let mut config = None;
    let mut files = Vec::new();
    let mut saw_time = false;
    let mut lines = out.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(head) = line.strip_prefix("\u{1e}EF:") else {
            continue;
        };
        let (tag, rest) = head.split_once(' ').unwrap_or((head, ""));
        match tag {
            "time" => {
                saw_time = true;
                device_time = rest.trim().parse::<i64>().ok();
            }
            "config" => {
                let body = lines.next().unwrap_or_default();
                let bytes = b64(body, "config.toml")?;
                config = Some(ConfigState::Present(
                    String::from_utf8_lossy(&bytes).into_owned(),
                ));
            }
            "config-missing" => config = Some(ConfigState::Missing),
            "config-unreadable" => config = Some(ConfigState::Unreadable),
            "file" => {
                let mut parts = rest.splitn(3, ' ');
                let key = parts.next().unwrap_or_default().to_string();
                let state = parts.next().unwrap_or_default();
                let path = parts.next().unwrap_or_default().to_string();
                let content = match state {
                    "ok" => {
                        let body = lines.next().unwrap_or_default();
                        b64(body, &path)
                    }
                    "missing" => Err("the file does not exist".to_string()),
                    "unreadable" => {
                        Err("the file cannot be read by the login user (become root)".to_string())
                    }
                    other => Err(format!("unexpected state `{other}` from the gather")),
                };
                files.push(GatheredFile { key, path, content });
            }
            _ => {}
        }
    }
    if !saw_time {
        return Err(
            "the certificate gather printed nothing recognisable (is /bin/sh a POSIX shell with base64 and sed?)"
                .into(),
        );
    }
    Ok(CertsGather {
        device_time,
        config: config.unwrap_or(ConfigState::Missing),
        files,
    })
}

/// The role of a gathered file in IoT Edge terms, from the config key that named it and where it sits in
/// config.toml: `edge CA`, `trust bundle`, `device identity`, `certd <id>` (aziot-certd's file name up to the
/// hash), or the key itself for anything else.
pub fn role_of(file: &GatheredFile, config: &ConfigState) -> String {
    match file.key.as_str() {
        "trust_bundle_cert" => "trust bundle".into(),
        "identity_cert" => "device identity".into(),
        "cert" => {
            // `cert` under [edge_ca] is the Edge CA; under [cert_issuance.*] or elsewhere it is named by its table.
            let table = match config {
                ConfigState::Present(text) => table_of(text, &file.path),
                _ => None,
            };
            match table.as_deref() {
                None | Some("edge_ca") => "edge CA".into(),
                Some(t) => format!("{t} cert"),
            }
        }
        "certd" => {
            let name = file.path.rsplit('/').next().unwrap_or(&file.path);
            let stem = name.strip_suffix(".cer").unwrap_or(name);
            let id = stem.rsplit_once('-').map(|(a, _)| a).unwrap_or(stem);
            format!("certd {id}")
        }
        other => other.to_string(),
    }
}

/// The TOML table whose `cert = "file://PATH"` names `path` (the last `[header]` before that line).
fn table_of(config: &str, path: &str) -> Option<String> {
    let mut table = None;
    for line in config.lines() {
        let l = line.trim();
        if let Some(h) = l.strip_prefix('[') {
            table = Some(
                h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .trim()
                    .to_string(),
            );
        } else if l.starts_with("cert") && l.contains(&format!("file://{path}\"")) {
            return table;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    /// Output recorded from the script on a provisioned lab device (contents shortened to placeholders).
    fn recorded() -> String {
        let cfg = "hostname = \"edge-001\"\ntrust_bundle_cert = \"file:///var/aziot/certs/trust-bundle.pem\"\n\n[provisioning]\nsource = \"manual\"\n\n[edge_ca]\ncert = \"file:///var/aziot/certs/edge-ca.cert.pem\"\npk = \"file:///var/aziot/secrets/edge-ca.key.pem\"\n";
        format!(
            "\u{1e}EF:time 1796300000\n\u{1e}EF:config\n{}\n\u{1e}EF:file trust_bundle_cert ok /var/aziot/certs/trust-bundle.pem\n{}\n\u{1e}EF:file cert ok /var/aziot/certs/edge-ca.cert.pem\n{}\n\u{1e}EF:file identity_cert missing /var/aziot/certs/id.pem\n\u{1e}EF:file certd ok /var/lib/aziot/certd/certs/aziotedgedca-0a1b2c.cer\n{}\n",
            enc(cfg),
            enc("TB"),
            enc("EDGE"),
            enc("CERTD")
        )
    }

    #[test]
    fn the_recorded_gather_parses() {
        let g = parse_certs(&recorded()).unwrap();
        assert_eq!(g.device_time, Some(1_796_300_000));
        let ConfigState::Present(cfg) = &g.config else {
            panic!("{:?}", g.config)
        };
        assert!(cfg.contains("[edge_ca]"));
        assert_eq!(g.files.len(), 4);
        assert_eq!(g.files[0].content.as_deref(), Ok(&b"TB"[..]));
        assert_eq!(g.files[1].path, "/var/aziot/certs/edge-ca.cert.pem");
        assert!(g.files[2]
            .content
            .as_ref()
            .unwrap_err()
            .contains("does not exist"));
        let roles: Vec<String> = g.files.iter().map(|f| role_of(f, &g.config)).collect();
        assert_eq!(
            roles,
            [
                "trust bundle",
                "edge CA",
                "device identity",
                "certd aziotedgedca"
            ]
        );
    }

    #[test]
    fn missing_config_garbage_and_bad_clock_are_told_apart() {
        let g = parse_certs("\u{1e}EF:time abc\n\u{1e}EF:config-missing\n").unwrap();
        assert_eq!(g.device_time, None);
        assert_eq!(g.config, ConfigState::Missing);
        let g = parse_certs("\u{1e}EF:time 5\n\u{1e}EF:config-unreadable\n").unwrap();
        assert_eq!(g.config, ConfigState::Unreadable);
        assert!(parse_certs("sh: 1: syntax error").is_err());
        let e = parse_certs("\u{1e}EF:time 5\n\u{1e}EF:config\n%%%\n").unwrap_err();
        assert!(e.contains("config.toml"), "{e}");
    }

    #[test]
    fn a_cert_outside_edge_ca_is_named_by_its_table() {
        let cfg = "[cert_issuance.aziot-edged-ca]\ncert = \"file:///x/ca.pem\"\n";
        let f = GatheredFile {
            key: "cert".into(),
            path: "/x/ca.pem".into(),
            content: Ok(vec![]),
        };
        assert_eq!(
            role_of(&f, &ConfigState::Present(cfg.into())),
            "cert_issuance.aziot-edged-ca cert"
        );
    }

    #[test]
    fn the_script_reads_no_private_key() {
        // Only these keys are followed; `pk`, `identity_pk` and `device_id_pk` never are.
        assert!(SCRIPT.contains("(cert|trust_bundle_cert|identity_cert)[[:space:]]*="));
        assert!(!SCRIPT.contains("pk"));
        let cmd = certs_cmd("/etc/aziot/config.toml").to_shell();
        assert!(
            cmd.starts_with("set -- /etc/aziot/config.toml /var/lib/aziot/certd/certs ;"),
            "{cmd}"
        );
    }

    #[test]
    fn the_real_script_runs_under_sh_and_follows_only_certificate_keys() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        std::fs::write(dir.path().join("ca.pem"), "CA-PEM").unwrap();
        std::fs::write(dir.path().join("key.pem"), "PRIVATE").unwrap();
        let cfg = format!(
            "trust_bundle_cert = \"file://{d}/tb.pem\"\n[edge_ca]\ncert = \"file://{d}/ca.pem\"\npk = \"file://{d}/key.pem\"\n"
        );
        std::fs::write(dir.path().join("config.toml"), &cfg).unwrap();
        let cmd = certs_cmd(&format!("{d}/config.toml")).to_shell();
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&cmd)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            !text.contains(&enc("PRIVATE")),
            "a private key was read: {text}"
        );
        let g = parse_certs(&text).unwrap();
        assert_eq!(g.config, ConfigState::Present(cfg));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((g.device_time.unwrap() - now).abs() < 60);
        assert_eq!(g.files.len(), 2, "{:?}", g.files);
        assert_eq!(g.files[0].key, "trust_bundle_cert");
        assert!(g.files[0].content.is_err());
        assert_eq!(g.files[1].content.as_deref(), Ok(&b"CA-PEM"[..]));
        assert_eq!(role_of(&g.files[1], &g.config), "edge CA");
    }
}
