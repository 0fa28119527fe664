//! Maintenance facts: the one read-only device script behind `iotedge_maintenance` and the pure parser of what
//! it prints, tested on recorded output; plus the clean-up script that removes exactly the images and volumes
//! the controller chose (run only when there is something to remove).
//!
//! The gather is the certificate gather of `certs report` ([`super::certs`], reused as it is: clock,
//! config.toml, the certificate files it names, aziot-certd's certificates) followed by: the installed package
//! versions (`dpkg-query`, or `rpm`), the Docker root directory, `df` (blocks and inodes) of the Docker root and
//! `/var/lib/aziot`, every container (name, image, image ID, state, the volumes it mounts), every image (ID, tags,
//! size in bytes), every volume with its disk use (`du -sk` of its mount point), daemon.json, the journald
//! settings (`journald.conf` and `journald.conf.d/*.conf`, in the order journald reads them) and, when asked,
//! `iotedge check --output json`. What any of it means is `iotedge::maintenance`'s business. It must never
//! change anything on a device; only [`prune_cmd`] removes, and only what it is given.

use base64::Engine as _;

use super::certs::{parse_certs, CertsGather, CERTD_CERTS_DIR};
use crate::transport::Cmd;

/// The packages whose versions are gathered (Debian/Ubuntu names; the RPM names are the same).
pub const PACKAGES: [&str; 4] = [
    "aziot-edge",
    "aziot-identity-service",
    "moby-engine",
    "moby-cli",
];

/// `$3`: daemon.json, `$4`: journald.conf, `$5`: run `iotedge check` (1/0), then `--dont-run` ids. Runs after the
/// certificate script in the same shell. Every section starts with a `\x1eEF:` line; free text that could hold
/// such a line is base64.
const SCRIPT: &str = r#"daemon=$3; jconf=$4; runcheck=$5; shift 5
printf '\036EF:pkgs\n'
if command -v dpkg-query >/dev/null 2>&1; then
  dpkg-query -W -f='${Package}\t${Version}\t${db:Status-Abbrev}\n' aziot-edge aziot-identity-service moby-engine moby-cli 2>/dev/null
elif command -v rpm >/dev/null 2>&1; then
  rpm -q --qf '%{NAME}\t%{VERSION}-%{RELEASE}\tii \n' aziot-edge aziot-identity-service moby-engine moby-cli 2>/dev/null | grep "$(printf '\t')"
fi
if root=$(docker info --format '{{.DockerRootDir}}' 2>&1); then printf '\036EF:docker-root %s\n' "$root"
else printf '\036EF:docker-error\n'; printf '%s' "$root" | head -n 1 | base64 -w0; printf '\n'; root=; fi
for p in "$root" /var/lib/aziot; do
  [ -n "$p" ] || continue
  printf '\036EF:df %s\n' "$p"
  df -P -k "$p" 2>/dev/null; df -P -i "$p" 2>/dev/null
done
if [ -n "$root" ]; then
  if ids=$(docker ps -aq --no-trunc 2>&1) && { [ -z "$ids" ] || out=$(docker inspect --type container --format '{{.Name}}	{{.Config.Image}}	{{.Image}}	{{.State.Status}}	{{json .Mounts}}' $ids 2>&1); }; then
    printf '\036EF:containers\n'; [ -z "$ids" ] || printf '%s\n' "$out"
  else printf '\036EF:containers-error\n'; printf '%s' "${out:-$ids}" | head -n 1 | base64 -w0; printf '\n'; fi
  if ids=$(docker image ls -aq --no-trunc 2>/dev/null); then
    printf '\036EF:images\n'
    [ -z "$ids" ] || docker image inspect --format '{{.Id}}	{{.Size}}	{{json .RepoTags}}' $ids 2>/dev/null
  fi
  if vols=$(docker volume ls -q 2>/dev/null); then
    printf '\036EF:volumes\n'
    [ -z "$vols" ] || { printf '%s\n' "$vols"; printf '\036EF:du\n'; (set --; for v in $vols; do set -- "$@" "$root/volumes/$v/_data"; done; du -sk "$@" 2>/dev/null); }
  fi
fi
if [ -r "$daemon" ]; then printf '\036EF:daemon\n'; base64 -w0 < "$daemon"; printf '\n'
elif [ -e "$daemon" ]; then printf '\036EF:daemon-unreadable\n'
else printf '\036EF:daemon-missing\n'; fi
printf '\036EF:journald\n'
for f in "$jconf" "$jconf.d"/*.conf; do
  [ -r "$f" ] && sed -nE "s#^[[:space:]]*(Storage|SystemMaxUse|SystemKeepFree|SystemMaxFileSize|RuntimeMaxUse)[[:space:]]*=[[:space:]]*(.*)\$#$f \\1=\\2#p" "$f"
done
if [ "$runcheck" = 1 ]; then
  chk=$(iotedge check --output json "$@" 2>/dev/null); crc=$?
  printf '\036EF:check %s\n' "$crc"; printf '%s' "$chk" | base64 -w0; printf '\n'
fi
printf '\036EF:end\n'; true"#;

/// What the maintenance gather needs to know about the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatherSpec {
    /// The super config (`/etc/aziot/config.toml`).
    pub config: String,
    /// daemon.json.
    pub daemon_json: String,
    /// journald.conf (its `.d` directory is read too).
    pub journald_conf: String,
    /// Run `iotedge check`?
    pub iotedge_check: bool,
    /// `iotedge check --dont-run` ids.
    pub dont_run: Vec<String>,
}

/// The maintenance gather: one round trip, read-only.
pub fn maintenance_cmd(spec: &GatherSpec) -> Cmd {
    let mut cmd = Cmd::new("set --")
        .arg(spec.config.clone())
        .arg(CERTD_CERTS_DIR)
        .arg(spec.daemon_json.clone())
        .arg(spec.journald_conf.clone())
        .arg(if spec.iotedge_check { "1" } else { "0" });
    if !spec.dont_run.is_empty() {
        cmd = cmd.arg("--dont-run").args(spec.dont_run.clone());
    }
    cmd.raw(";").raw(super::certs::SCRIPT).raw(";").raw(SCRIPT)
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Name.
    pub name: String,
    /// Version as the package manager prints it (`1.5.21-1`, `24.0.9+azure-ubuntu22.04u1`).
    pub version: String,
    /// Installed (dpkg status `ii`)?
    pub installed: bool,
}

/// Use of one file system, from `df -P`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Used, in 1024-byte blocks (or inodes).
    pub used: u64,
    /// Available to unprivileged users, in the same unit.
    pub available: u64,
}

impl Usage {
    /// Percent used as `df` counts it (`used / (used + available)`, rounded up); None when the file system
    /// reports no capacity (e.g. inodes on btrfs).
    pub fn percent(&self) -> Option<u64> {
        let total = self.used + self.available;
        (total > 0).then(|| (self.used * 100).div_ceil(total))
    }
}

/// `df` of one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// The directory asked about.
    pub path: String,
    /// The mount point `df` named.
    pub mount: String,
    /// Blocks (None: `df` printed nothing usable, e.g. the directory does not exist).
    pub blocks: Option<Usage>,
    /// Inodes.
    pub inodes: Option<Usage>,
}

/// One container (running or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// Name without the leading `/`.
    pub name: String,
    /// The image reference it was created from.
    pub image: String,
    /// The image ID (`sha256:...`).
    pub image_id: String,
    /// `running`, `exited`, `created`, ...
    pub state: String,
    /// The named volumes it mounts.
    pub volumes: Vec<String>,
}

/// One image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `sha256:...`.
    pub id: String,
    /// Size in bytes.
    pub size: u64,
    /// `repo:tag` names (empty: dangling).
    pub tags: Vec<String>,
}

/// One volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Name.
    pub name: String,
    /// Disk use of its data in bytes (None: `du` could not read it, e.g. without root).
    pub bytes: Option<u64>,
}

/// A file the device had or did not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Its text.
    Present(String),
    /// It does not exist.
    Missing,
    /// The login user cannot read it.
    Unreadable,
}

/// Everything the maintenance gather printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceGather {
    /// The certificate part (clock, config.toml, certificate files).
    pub certs: CertsGather,
    /// The packages found (only installed-or-known ones are listed by the package manager).
    pub packages: Vec<Package>,
    /// The Docker root directory, or why `docker info` failed.
    pub docker_root: Result<String, String>,
    /// `df` per directory.
    pub disks: Vec<Disk>,
    /// The containers, or why they could not be listed (then nothing may be pruned).
    pub containers: Result<Vec<Container>, String>,
    /// The images (None: not listed).
    pub images: Option<Vec<Image>>,
    /// The volumes (None: not listed).
    pub volumes: Option<Vec<Volume>>,
    /// daemon.json.
    pub daemon_json: FileState,
    /// journald settings in the order journald applies them: (file, key, value).
    pub journald: Vec<(String, String, String)>,
    /// `iotedge check --output json`: exit code and output, when it ran.
    pub check: Option<(i32, String)>,
}

fn b64_text(s: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|_| s.trim().to_string())
}

fn df_line(line: &str) -> Option<(Usage, String)> {
    // Filesystem, total, used, available, capacity, mount point (which may contain spaces). The header line
    // (`Filesystem 1024-blocks Used ...`) has no numbers and is skipped.
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 6 {
        return None;
    }
    let used = f[2].parse().ok()?;
    let available = f[3].parse().ok()?;
    Some((Usage { used, available }, f[5..].join(" ")))
}

fn mounts_volumes(json: &str) -> Vec<String> {
    let Ok(serde_json::Value::Array(mounts)) = serde_json::from_str::<serde_json::Value>(json)
    else {
        return Vec::new();
    };
    mounts
        .iter()
        .filter(|m| m.get("Type").and_then(|t| t.as_str()) == Some("volume"))
        .filter_map(|m| m.get("Name").and_then(|n| n.as_str()).map(str::to_string))
        .collect()
}

/// Parse the gather's output. Errors only when it is not the script's output at all.
pub fn parse_maintenance(out: &str) -> Result<MaintenanceGather, String> {
    let certs = parse_certs(out)?;
    let mut g = MaintenanceGather {
        certs,
        packages: Vec::new(),
        docker_root: Err("the gather did not reach `docker info`".into()),
        disks: Vec::new(),
        containers: Err("the container list was not gathered".into()),
        images: None,
        volumes: None,
        daemon_json: FileState::Missing,
        journald: Vec::new(),
        check: None,
    };
    let mut section = String::new();
    let mut lines = out.lines().peekable();
    let mut saw_end = false;
    while let Some(line) = lines.next() {
        if let Some(head) = line.strip_prefix("\u{1e}EF:") {
            let (tag, rest) = head.split_once(' ').unwrap_or((head, ""));
            section = tag.to_string();
            match tag {
                "docker-root" => g.docker_root = Ok(rest.trim().to_string()),
                "docker-error" => {
                    g.docker_root = Err(b64_text(lines.next().unwrap_or_default()));
                }
                "df" => g.disks.push(Disk {
                    path: rest.to_string(),
                    mount: String::new(),
                    blocks: None,
                    inodes: None,
                }),
                "containers" => g.containers = Ok(Vec::new()),
                "containers-error" => {
                    let why = b64_text(lines.next().unwrap_or_default());
                    g.containers = Err(if why.is_empty() {
                        "`docker ps` failed".into()
                    } else {
                        why
                    });
                }
                "images" => g.images = Some(Vec::new()),
                "volumes" => g.volumes = Some(Vec::new()),
                "daemon" => {
                    g.daemon_json = FileState::Present(b64_text(lines.next().unwrap_or_default()))
                }
                "daemon-unreadable" => g.daemon_json = FileState::Unreadable,
                "daemon-missing" => g.daemon_json = FileState::Missing,
                "check" => {
                    let rc = rest.trim().parse().unwrap_or(-1);
                    g.check = Some((rc, b64_text(lines.next().unwrap_or_default())));
                }
                "end" => saw_end = true,
                _ => {}
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        match section.as_str() {
            "pkgs" => {
                let f: Vec<&str> = line.split('\t').collect();
                if f.len() >= 2 && !f[1].is_empty() {
                    g.packages.push(Package {
                        name: f[0].to_string(),
                        version: f[1].to_string(),
                        installed: f.get(2).is_none_or(|s| s.starts_with("ii")),
                    });
                }
            }
            "df" => {
                if let (Some(d), Some((u, mount))) = (g.disks.last_mut(), df_line(line)) {
                    if d.blocks.is_none() {
                        d.blocks = Some(u);
                        d.mount = mount;
                    } else if d.inodes.is_none() {
                        d.inodes = Some(u);
                    }
                }
            }
            "containers" => {
                let f: Vec<&str> = line.splitn(5, '\t').collect();
                if let (Ok(list), true) = (g.containers.as_mut(), f.len() == 5) {
                    list.push(Container {
                        name: f[0].trim_start_matches('/').to_string(),
                        image: f[1].to_string(),
                        image_id: f[2].to_string(),
                        state: f[3].to_string(),
                        volumes: mounts_volumes(f[4]),
                    });
                }
            }
            "images" => {
                let f: Vec<&str> = line.splitn(3, '\t').collect();
                if let (Some(list), true) = (g.images.as_mut(), f.len() == 3) {
                    let tags: Vec<String> = serde_json::from_str::<Vec<String>>(f[2])
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|t| t != "<none>:<none>")
                        .collect();
                    list.push(Image {
                        id: f[0].to_string(),
                        size: f[1].trim().parse().unwrap_or(0),
                        tags,
                    });
                }
            }
            "volumes" => {
                if let Some(list) = g.volumes.as_mut() {
                    list.push(Volume {
                        name: line.trim().to_string(),
                        bytes: None,
                    });
                }
            }
            "du" => {
                // `KIB<TAB><docker root>/volumes/NAME/_data`, in any order; a volume `du` cannot read has none.
                let (Some((kb, path)), Some(list)) = (line.split_once('\t'), g.volumes.as_mut())
                else {
                    continue;
                };
                let name = path
                    .strip_suffix("/_data")
                    .and_then(|p| p.rsplit_once("/volumes/"))
                    .map(|(_, n)| n);
                if let (Some(v), Ok(kb)) = (
                    list.iter_mut().find(|v| Some(v.name.as_str()) == name),
                    kb.trim().parse::<u64>(),
                ) {
                    v.bytes = Some(kb * 1024);
                }
            }
            "journald" => {
                // `FILE KEY=VALUE` (the file name has no spaces on any real system; a value may).
                if let Some((file, kv)) = line.split_once(' ') {
                    if let Some((k, v)) = kv.split_once('=') {
                        g.journald
                            .push((file.to_string(), k.to_string(), v.trim().to_string()));
                    }
                }
            }
            _ => {}
        }
    }
    if !saw_end {
        return Err("the maintenance gather stopped before its end (the device's shell failed part-way; is /bin/sh a POSIX shell with base64, sed, df and du?)".into());
    }
    Ok(g)
}

/// The clean-up script: re-checks that the container list can be read (a device whose engine stopped answering
/// prunes nothing), then removes each image (`docker image rm`, never `-f`: the engine refuses an image a
/// container uses) and each volume (`docker volume rm`, which refuses a volume in use), printing one
/// `\x1eEF:removed KIND NAME` or `\x1eEF:kept KIND NAME\tWHY` line per item.
const PRUNE: &str = r#"rm_one() { if err=$(docker "$1" rm "$2" 2>&1 >/dev/null); then printf '\036EF:removed %s %s\n' "$1" "$2"; else printf '\036EF:kept %s %s\t%s\n' "$1" "$2" "$(printf '%s' "$err" | head -n 1)"; fi; }
if ! docker ps -aq >/dev/null 2>&1; then printf '\036EF:no-container-list\n'; exit 3; fi
"#;

/// Remove these images (by ID) and volumes (by name): one round trip. Every name is quoted.
pub fn prune_cmd(images: &[String], volumes: &[String]) -> Cmd {
    let mut cmd = Cmd::new(PRUNE);
    for id in images {
        cmd = cmd.raw("rm_one image").arg(id.clone()).raw(";");
    }
    for v in volumes {
        cmd = cmd.raw("rm_one volume").arg(v.clone()).raw(";");
    }
    cmd.raw("true")
}

/// What the clean-up did with one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// `image` or `volume`.
    pub kind: String,
    /// The image ID or volume name.
    pub name: String,
    /// Removed (Ok) or kept, with the engine's reason.
    pub result: Result<(), String>,
}

/// Parse the clean-up's output. `Err` when it removed nothing because the container list could not be read.
pub fn parse_prune(out: &str) -> Result<Vec<Pruned>, String> {
    let mut done = Vec::new();
    for line in out.lines() {
        let Some(head) = line.strip_prefix("\u{1e}EF:") else {
            continue;
        };
        if head == "no-container-list" {
            return Err("the container list could not be read just before the clean-up: nothing was removed".into());
        }
        let (tag, rest) = head.split_once(' ').unwrap_or((head, ""));
        let (item, why) = rest.split_once('\t').unwrap_or((rest, ""));
        let Some((kind, name)) = item.split_once(' ') else {
            continue;
        };
        let result = match tag {
            "removed" => Ok(()),
            "kept" => Err(why.trim().to_string()),
            _ => continue,
        };
        done.push(Pruned {
            kind: kind.to_string(),
            name: name.to_string(),
            result,
        });
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    /// Output recorded from the script on a lab device with a dangling image, an unused volume and a stopped
    /// container that uses another volume (certificate part shortened).
    fn recorded() -> String {
        let check = r#"{"checks":{"container-engine-logrotate":{"result":{"result":"warning","details":["no max-file"]}}}}"#;
        format!(
            "\u{1e}EF:time 1796300000\n\u{1e}EF:config-missing\n\u{1e}EF:pkgs\naziot-edge\t1.5.21-1\tii \naziot-identity-service\t1.5.6-1\tii \nmoby-engine\t24.0.9+azure-ubuntu22.04u1\tii \nmoby-cli\t\tun \n\
\u{1e}EF:docker-root /var/lib/docker\n\u{1e}EF:df /var/lib/docker\nFilesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/vda 264212084 60931520 34354368 64% /var\n/dev/vda 16384000 1200000 15184000 8% /var\n\
\u{1e}EF:df /var/lib/aziot\n/dev/vda 264212084 60931520 34354368 64% /var\n/dev/vda 16384000 1200000 15184000 8% /var\n\
\u{1e}EF:containers\n/edgeAgent\tmcr.microsoft.com/azureiotedge-agent:1.5.21\tsha256:aa\trunning\t[]\n/old\tbusybox:1\tsha256:bb\texited\t[{{\"Type\":\"volume\",\"Name\":\"used-vol\"}},{{\"Type\":\"bind\",\"Source\":\"/srv\"}}]\n\
\u{1e}EF:images\nsha256:aa\t190000000\t[\"mcr.microsoft.com/azureiotedge-agent:1.5.21\"]\nsha256:cc\t52428800\t[]\n\
\u{1e}EF:volumes\nused-vol\nspare\n\u{1e}EF:du\n1028\t/var/lib/docker/volumes/used-vol/_data\n\
\u{1e}EF:daemon\n{}\n\u{1e}EF:journald\n/etc/systemd/journald.conf SystemMaxUse=2G\n/etc/systemd/journald.conf.d/10.conf SystemMaxUse=500M\n\
\u{1e}EF:check 0\n{}\n\u{1e}EF:end\n",
            enc(r#"{"log-driver":"local"}"#),
            enc(check)
        )
    }

    #[test]
    fn the_recorded_gather_parses() {
        let g = parse_maintenance(&recorded()).unwrap();
        assert_eq!(g.certs.device_time, Some(1_796_300_000));
        assert_eq!(g.packages.len(), 3, "{:?}", g.packages);
        assert_eq!(g.packages[2].version, "24.0.9+azure-ubuntu22.04u1");
        assert!(g.packages.iter().all(|p| p.installed));
        assert_eq!(g.docker_root.as_deref(), Ok("/var/lib/docker"));
        assert_eq!(g.disks.len(), 2);
        let b = g.disks[0].blocks.unwrap();
        assert_eq!(
            (b.used, b.available, b.percent()),
            (60931520, 34354368, Some(64))
        );
        assert_eq!(g.disks[0].inodes.unwrap().percent(), Some(8));
        assert_eq!(g.disks[0].mount, "/var");
        let c = g.containers.as_ref().unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].name, "edgeAgent");
        assert_eq!(c[1].volumes, ["used-vol"]);
        let im = g.images.as_ref().unwrap();
        assert_eq!(im[1].size, 52_428_800);
        assert!(im[1].tags.is_empty());
        let v = g.volumes.as_ref().unwrap();
        assert_eq!(v[0].bytes, Some(1028 * 1024));
        assert_eq!(v[1].bytes, None);
        assert_eq!(
            g.daemon_json,
            FileState::Present(r#"{"log-driver":"local"}"#.into())
        );
        assert_eq!(g.journald.len(), 2);
        assert_eq!(g.journald[1].2, "500M");
        let (rc, text) = g.check.unwrap();
        assert_eq!(rc, 0);
        assert!(text.contains("container-engine-logrotate"));
    }

    #[test]
    fn an_unreadable_container_list_and_a_cut_gather_are_told_apart() {
        let out = format!(
            "\u{1e}EF:time 5\n\u{1e}EF:config-missing\n\u{1e}EF:pkgs\n\u{1e}EF:docker-root /d\n\u{1e}EF:containers-error\n{}\n\u{1e}EF:images\n\u{1e}EF:daemon-missing\n\u{1e}EF:journald\n\u{1e}EF:end\n",
            enc("permission denied while trying to connect to the Docker daemon socket")
        );
        let g = parse_maintenance(&out).unwrap();
        assert!(g.containers.unwrap_err().contains("permission denied"));
        assert_eq!(g.images, Some(vec![]));
        assert_eq!(g.volumes, None);
        assert_eq!(g.daemon_json, FileState::Missing);
        let cut = "\u{1e}EF:time 5\n\u{1e}EF:config-missing\n\u{1e}EF:pkgs\n";
        assert!(parse_maintenance(cut)
            .unwrap_err()
            .contains("stopped before its end"));
        assert!(parse_maintenance("sh: syntax error").is_err());
    }

    #[test]
    fn the_real_script_runs_under_sh_without_docker() {
        // A device without docker or IoT Edge: every section still answers and the gather reaches its end.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        std::fs::write(
            dir.path().join("journald.conf"),
            "[Journal]\n#SystemMaxUse=\nSystemMaxUse=1G\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("journald.conf.d")).unwrap();
        std::fs::write(
            dir.path().join("journald.conf.d/50-x.conf"),
            "[Journal]\nStorage=persistent\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("daemon.json"), "{\"log-driver\":\"local\"}").unwrap();
        let spec = GatherSpec {
            config: format!("{d}/config.toml"),
            daemon_json: format!("{d}/daemon.json"),
            journald_conf: format!("{d}/journald.conf"),
            iotedge_check: false,
            dont_run: vec!["a b".into()],
        };
        let cmd = maintenance_cmd(&spec).to_shell();
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&cmd)
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let g = parse_maintenance(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(g.journald.len(), 2, "{:?}", g.journald);
        assert_eq!(g.journald[0].1, "SystemMaxUse");
        assert_eq!(g.journald[1].1, "Storage");
        assert_eq!(
            g.daemon_json,
            FileState::Present("{\"log-driver\":\"local\"}".into())
        );
        assert!(g.check.is_none());
        // /var/lib/aziot may or may not exist here; the Docker root is unknown without docker.
        if std::process::Command::new("sh")
            .arg("-c")
            .arg("command -v docker")
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            assert!(g.docker_root.is_err());
        }
    }

    #[test]
    fn prune_quotes_names_and_parses_what_it_did() {
        let cmd = prune_cmd(&["sha256:cc".into()], &["odd name;rm -rf /".into()]).to_shell();
        assert!(cmd.contains("rm_one image sha256:cc ;"), "{cmd}");
        assert!(cmd.contains("rm_one volume 'odd name;rm -rf /' ;"), "{cmd}");
        let done = parse_prune("\u{1e}EF:removed image sha256:cc\n\u{1e}EF:kept volume v1\tError response from daemon: remove v1: volume is in use\n").unwrap();
        assert_eq!(done.len(), 2);
        assert_eq!(done[0].result, Ok(()));
        assert!(done[1].result.as_ref().unwrap_err().contains("in use"));
        assert!(parse_prune("\u{1e}EF:no-container-list\n").is_err());
    }
}
