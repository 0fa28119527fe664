//! Certificate facts for `certs report`: the one read-only device script that collects, in a single round trip,
//! the device's clock, `/etc/aziot/config.toml` and every certificate file it names (Edge CA, trust bundle,
//! device identity certificate) plus the certificates aziot-certd keeps in its home directory, and the pure
//! parsers of what it prints, tested on recorded output.
//!
//! Only certificate files are read: the script picks the `file://` values of the `cert`, `trust_bundle_cert` and
//! `identity_cert` keys, never `pk`/`identity_pk`/`device_id_pk` (private keys). X.509 is parsed on the
//! controller (`iotedge::certs`), not here and not on the device. It must never change anything on a device.

use crate::transport::Cmd;

/// Where aziot-certd keeps the certificates it issues or generates (`homedir_path` + `certs/`; file names are
/// `<id with only ASCII alphanumerics>-<sha256 of the id>.cer`).
pub const CERTD_CERTS_DIR: &str = "/var/lib/aziot/certd/certs";

/// `$1`: config.toml, `$2`: certd's cert directory (in a function, so the caller's positional parameters are
/// left for a script that runs after it). Prints `\x1eEF:` marker lines, a readable file's marker followed by its
/// lines, each prefixed with one space so no line of a file can look like a marker. Few processes, because the
/// devices' process spawning is the cost of a fleet-wide read (measured on the lab: 7 ms over `sh -c true`,
/// where one `base64` per file and a `sed` cost 17 ms): the shell follows the config's certificate keys and
/// tests each file with builtins, then `date` and ONE `awk` print the clock and every readable regular file (awk
/// is given only those: mawk aborts on a directory). Certificate files and config.toml are text (PEM, TOML), so
/// a line-based read loses nothing the controller parses; a file's last line always gets its newline.
pub(super) const SCRIPT: &str = r##"ef_add() {
  if [ -f "$2" ] && [ -r "$2" ]; then st="$st $1:ok"
  elif [ -e "$2" ]; then st="$st $1:unreadable"
  else st="$st $1:missing"; fi
}
ef_certs() {
cfg=$1; certd=$2; set --; st=
printf '\036EF:time '; date -u +%s || echo
if [ -f "$cfg" ] && [ -r "$cfg" ]; then
  set -- "$cfg"; st=config:ok
  while IFS= read -r l || [ -n "$l" ]; do
    case $l in *'"file://'*) ;; *) continue ;; esac
    k=${l%%=*}; k=${k#"${k%%[![:space:]]*}"}; k=${k%"${k##*[![:space:]]}"}
    case $k in cert|trust_bundle_cert|identity_cert) ;; *) continue ;; esac
    v=${l#*=}; v=${v#"${v%%[![:space:]]*}"}
    case $v in '"file://'*'"'*) ;; *) continue ;; esac
    p=${v#'"file://'}; p=${p%%'"'*}
    ef_add "$k" "$p"; set -- "$@" "$p"
  done < "$cfg"
elif [ -e "$cfg" ]; then printf '\036EF:config-unreadable\n'
else printf '\036EF:config-missing\n'; fi
for f in "$certd"/*.cer; do [ -e "$f" ] && ef_add certd "$f" && set -- "$@" "$f"; done
[ $# -eq 0 ] || LC_ALL=C awk -v st="$st" 'BEGIN {
  n = split(st, s, " ")
  for (i = 1; i <= n; i++) {
    p = ARGV[i]; c = index(s[i], ":"); k = substr(s[i], 1, c - 1); how = substr(s[i], c + 1)
    if (k == "config") print "\036EF:config"; else print "\036EF:file " k " " how " " p
    if (how != "ok") continue
    while ((getline l < p) > 0) print " " l
    close(p)
  }
}' "$@"
}
ef_certs "$@""##;

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

/// The lines after a marker that belong to it (each starts with the one space the script adds), as the file's text.
fn body<'a>(lines: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>) -> String {
    let mut text = String::new();
    while let Some(l) = lines.next_if(|l| l.starts_with(' ')) {
        text.push_str(&l[1..]);
        text.push('\n');
    }
    text
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
            "config" => config = Some(ConfigState::Present(body(&mut lines))),
            "config-missing" => config = Some(ConfigState::Missing),
            "config-unreadable" => config = Some(ConfigState::Unreadable),
            "file" => {
                let mut parts = rest.splitn(3, ' ');
                let key = parts.next().unwrap_or_default().to_string();
                let state = parts.next().unwrap_or_default();
                let path = parts.next().unwrap_or_default().to_string();
                let content = match state {
                    "ok" => Ok(body(&mut lines).into_bytes()),
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
            "the certificate gather printed nothing recognisable (is /bin/sh a POSIX shell with date and awk?)"
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

    /// Output recorded from the script on a provisioned lab device (contents shortened to placeholders).
    fn recorded() -> String {
        let cfg = "hostname = \"edge-001\"\ntrust_bundle_cert = \"file:///var/aziot/certs/trust-bundle.pem\"\n\n[provisioning]\nsource = \"manual\"\n\n[edge_ca]\ncert = \"file:///var/aziot/certs/edge-ca.cert.pem\"\npk = \"file:///var/aziot/secrets/edge-ca.key.pem\"\n";
        let indent = |t: &str| t.lines().map(|l| format!(" {l}\n")).collect::<String>();
        format!(
            "\u{1e}EF:time 1796300000\n\u{1e}EF:config\n{}\u{1e}EF:file trust_bundle_cert ok /var/aziot/certs/trust-bundle.pem\n TB\n\u{1e}EF:file cert ok /var/aziot/certs/edge-ca.cert.pem\n EDGE\n\u{1e}EF:file identity_cert missing /var/aziot/certs/id.pem\n\u{1e}EF:file certd ok /var/lib/aziot/certd/certs/aziotedgedca-0a1b2c.cer\n CERTD\n",
            indent(cfg),
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
        assert_eq!(g.files[0].content.as_deref(), Ok(&b"TB\n"[..]));
        assert_eq!(g.files[3].content.as_deref(), Ok(&b"CERTD\n"[..]));
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
        // A date that printed nothing still leaves the markers after it on their own lines.
        let g = parse_certs("\u{1e}EF:time \n\u{1e}EF:config\n a = 1\n").unwrap();
        assert_eq!(g.device_time, None);
        assert_eq!(g.config, ConfigState::Present("a = 1\n".into()));
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
        assert!(SCRIPT.contains("case $k in cert|trust_bundle_cert|identity_cert) ;;"));
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
        assert!(!text.contains("PRIVATE"), "a private key was read: {text}");
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
        assert_eq!(g.files[1].content.as_deref(), Ok(&b"CA-PEM\n"[..]));
        assert_eq!(role_of(&g.files[1], &g.config), "edge CA");
    }

    #[test]
    fn file_contents_cannot_forge_markers_and_odd_paths_stay_data() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        // A certificate whose text looks like a marker, a directory (opens but cannot be read as a file) whose
        // name has a quote, and a name that would run a command if the script interpolated it into a shell.
        std::fs::write(
            dir.path().join("ca.pem"),
            "\u{1e}EF:file cert ok /etc/shadow\nPEM\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("it's")).unwrap();
        let trip = dir.path().join("tripwire");
        let evil = format!("{d}/x'; touch {}; '", trip.display());
        let cfg = format!(
            "[edge_ca]\ncert = \"file://{d}/ca.pem\"\ntrust_bundle_cert = \"file://{d}/it's\"\nidentity_cert = \"file://{evil}\"\n"
        );
        std::fs::write(dir.path().join("config.toml"), &cfg).unwrap();
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(certs_cmd(&format!("{d}/config.toml")).to_shell())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let g = parse_certs(&String::from_utf8_lossy(&out.stdout)).unwrap();
        assert_eq!(g.files.len(), 3, "{:?}", g.files);
        assert_eq!(
            g.files[0].content.as_deref(),
            Ok(&b"\x1eEF:file cert ok /etc/shadow\nPEM\n"[..])
        );
        assert_eq!(g.files[1].path, format!("{d}/it's"));
        assert!(
            g.files[1]
                .content
                .as_ref()
                .unwrap_err()
                .contains("cannot be read"),
            "{:?}",
            g.files[1]
        );
        assert_eq!(g.files[2].path, evil);
        assert!(g.files[2]
            .content
            .as_ref()
            .unwrap_err()
            .contains("does not exist"));
        assert!(!trip.exists(), "a path from config.toml ran as a command");
    }
}
