//! Maintenance rules: what the maintenance gather (`facts::maintenance`) means for a device, as findings with
//! stable ids and severities, and which images and volumes a clean-up may remove.
//!
//! Pure (the controller's clock is passed in). Certificates are judged with the same X.509 code and rules as
//! `certs report` (`iotedge::certs`: the certificate of a file that expires first decides, days are counted from
//! the controller's clock, a device clock more than five minutes off is reported, never "fixed" by renewing).
//! Runtime versions are compared with a pinned target (only the keys the inventory sets). The clean-up never
//! offers an image with a tag or one any container (running or stopped) uses, nor a volume any container
//! mounts or that is protected by name (edgeHub's store); when the container list could not be read it offers
//! nothing at all.

use std::collections::BTreeMap;

use crate::facts::certs::{role_of, ConfigState};
use crate::facts::iotedge::parse_check_json;
use crate::facts::maintenance::{FileState, MaintenanceGather};
use crate::iotedge::certs as x509;
use crate::report::{Finding, Severity};

/// The keys `maintenance_target` may pin, and what each names (a package, or a runtime module's container).
pub const TARGET_KEYS: [(&str, &str); 6] = [
    ("aziot_edge", "aziot-edge"),
    ("aziot_identity_service", "aziot-identity-service"),
    ("moby_engine", "moby-engine"),
    ("moby_cli", "moby-cli"),
    ("edge_agent", "edgeAgent"),
    ("edge_hub", "edgeHub"),
];

/// Thresholds and targets a device is judged by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// A certificate with this many days left or fewer is a warning.
    pub warn_days: i64,
    /// ... and with this many or fewer, critical (expired is always critical).
    pub critical_days: i64,
    /// Disk use (percent) from which a warning is raised.
    pub disk_warn_percent: u64,
    /// ... and from which it is critical.
    pub disk_critical_percent: u64,
    /// Inode use (percent) from which a warning is raised.
    pub inode_warn_percent: u64,
    /// ... and from which it is critical.
    pub inode_critical_percent: u64,
    /// The most journald may keep on disk (bytes); a larger `SystemMaxUse=` is a warning.
    pub journald_max_use: u64,
    /// Pinned versions: [`TARGET_KEYS`] key -> pattern (`1.5`, `1.5.x`, `24.0.9`).
    pub target: BTreeMap<String, String>,
    /// `iotedge check` ids accepted as not ok, with the reason.
    pub check_waivers: BTreeMap<String, String>,
    /// Volumes never removed even when no container mounts them (edgeHub's store).
    pub protected_volumes: Vec<String>,
}

/// What a clean-up may remove on a device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cleanup {
    /// Dangling images no container uses: (ID, bytes).
    pub images: Vec<(String, u64)>,
    /// Volumes no container mounts and not protected: (name, bytes when known).
    pub volumes: Vec<(String, Option<u64>)>,
    /// Why nothing may be removed, when that is so (the container list could not be read).
    pub blocked: Option<String>,
}

impl Cleanup {
    /// Anything to remove?
    pub fn is_empty(&self) -> bool {
        self.images.is_empty() && self.volumes.is_empty()
    }

    /// Bytes the clean-up would free (volumes of unknown size count 0).
    pub fn bytes(&self) -> u64 {
        self.images.iter().map(|(_, b)| b).sum::<u64>()
            + self.volumes.iter().filter_map(|(_, b)| *b).sum::<u64>()
    }
}

/// The verdict on one device: its findings, and what a clean-up may remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Findings, in a stable order (certificates, clock, versions, disk, clean-up, logs, GC, checks).
    pub findings: Vec<Finding>,
    /// What a clean-up may remove.
    pub cleanup: Cleanup,
}

fn finding(id: impl Into<String>, severity: Severity, message: impl Into<String>) -> Finding {
    Finding {
        id: id.into(),
        severity,
        message: message.into(),
        days_left: None,
        bytes: None,
    }
}

/// `1.5 GB`-style size for messages (decimal units, as docker prints them).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// A lowercase id segment from a role (`edge CA` -> `edge_ca`, `certd aziot-edged-ca` -> `certd.aziot_edged_ca`).
fn slug(role: &str) -> String {
    let (head, rest) = match role.strip_prefix("certd ") {
        Some(id) => ("certd.", id),
        None => ("", role),
    };
    let s: String = rest
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let s = match s.as_str() {
        "device_identity" => "identity".to_string(),
        _ => s,
    };
    format!("{head}{s}")
}

/// Does an installed version match a pinned pattern? The epoch (`1:`) and the packaging suffix (from the first
/// `-`, `+` or `~`) are ignored; the pattern's dotted parts must equal the version's, `x` or `*` matching any
/// part, and a shorter pattern matching every version that starts with it (`1.5` matches `1.5.21`).
pub fn version_matches(installed: &str, pattern: &str) -> bool {
    let upstream = |v: &str| -> String {
        let v = v.split_once(':').map(|(_, r)| r).unwrap_or(v);
        v.split(['-', '+', '~']).next().unwrap_or(v).to_string()
    };
    let have = upstream(installed.trim());
    let want = pattern.trim().trim_start_matches('v');
    let have: Vec<&str> = have.split('.').collect();
    let want: Vec<&str> = want.split('.').collect();
    if want.len() > have.len() {
        return false;
    }
    want.iter()
        .zip(&have)
        .all(|(w, h)| *w == "x" || *w == "*" || w == h)
}

/// Parse a journald size (`500M`, `2G`, `1024`: bytes with optional K/M/G/T/P/E, base 1024).
pub fn journald_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1u64 << 10),
        'M' | 'm' => (&s[..s.len() - 1], 1 << 20),
        'G' | 'g' => (&s[..s.len() - 1], 1 << 30),
        'T' | 't' => (&s[..s.len() - 1], 1 << 40),
        'P' | 'p' => (&s[..s.len() - 1], 1 << 50),
        'E' | 'e' => (&s[..s.len() - 1], 1 << 60),
        _ => (s, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as u64)
}

fn certificates(g: &MaintenanceGather, p: &Policy, now: i64, out: &mut Vec<Finding>) {
    match &g.certs.config {
        ConfigState::Missing => out.push(finding(
            "config.missing",
            Severity::Critical,
            "config.toml does not exist: the device is not provisioned (run playbooks/provision.yml)",
        )),
        ConfigState::Unreadable => out.push(finding(
            "config.unreadable",
            Severity::Warning,
            "config.toml cannot be read by the login user, so its certificates cannot be checked: set ansible_become: true for this host",
        )),
        ConfigState::Present(_) => {}
    }
    for f in &g.certs.files {
        let role = role_of(f, &g.certs.config);
        let id = format!("cert.{}", slug(&role));
        let bytes = match &f.content {
            Ok(b) => b,
            Err(e) => {
                out.push(finding(
                    format!("{id}.unreadable"),
                    Severity::Warning,
                    format!("{role} certificate {}: {e}", f.path),
                ));
                continue;
            }
        };
        let first = match x509::earliest_expiry(bytes) {
            Ok(x) => x,
            Err(e) => {
                out.push(finding(
                    format!("{id}.invalid"),
                    Severity::Critical,
                    format!("{role} certificate {} is not a certificate: {e}", f.path),
                ));
                continue;
            }
        };
        let days = x509::days_left(first.cert.not_after, now);
        let (suffix, severity) = if days < 0 {
            ("expired", Severity::Critical)
        } else if days <= p.critical_days {
            ("expiring", Severity::Critical)
        } else if days <= p.warn_days {
            ("expiring", Severity::Warning)
        } else {
            continue;
        };
        let which = if first.index > 0 {
            format!(
                " (certificate #{} of {} in the file)",
                first.index + 1,
                first.count
            )
        } else {
            String::new()
        };
        let when = if days < 0 {
            format!("expired {} days ago", -days)
        } else {
            format!("expires in {days} days")
        };
        let mut fd = finding(
            format!("{id}.{suffix}"),
            severity,
            format!(
                "{role} certificate {} (`{}`){which} {when}, on {}: renew it (certs issue, then provision)",
                f.path,
                first.cert.subject,
                x509::rfc3339(first.cert.not_after)
            ),
        );
        fd.days_left = Some(days);
        out.push(fd);
    }
    match g.certs.device_time {
        Some(dt) => {
            if let Some(msg) = x509::clock_skew(dt, now) {
                let severity = if (dt - now).abs() >= 86_400 {
                    Severity::Critical
                } else {
                    Severity::Warning
                };
                out.push(finding("clock.skew", severity, msg));
            }
        }
        None => out.push(finding(
            "clock.unknown",
            Severity::Warning,
            "the device did not print its clock (`date -u +%s`)",
        )),
    }
}

fn versions(g: &MaintenanceGather, p: &Policy, out: &mut Vec<Finding>) {
    for (key, name) in TARGET_KEYS {
        let Some(want) = p.target.get(key) else {
            continue;
        };
        let have: Option<String> = if key.starts_with("edge_") {
            let Ok(containers) = &g.containers else {
                continue; // reported once as containers.unreadable
            };
            containers.iter().find(|c| c.name == name).map(|c| {
                c.image
                    .rsplit_once(':')
                    .map(|(_, t)| t)
                    .unwrap_or("latest")
                    .to_string()
            })
        } else {
            g.packages
                .iter()
                .find(|x| x.name == name && x.installed)
                .map(|x| x.version.clone())
        };
        match have {
            None => out.push(finding(
                format!("version.{key}.missing"),
                Severity::Warning,
                if key.starts_with("edge_") {
                    format!(
                        "no {name} container: cannot check its image tag against the target {want}"
                    )
                } else {
                    format!("package {name} is not installed (target {want})")
                },
            )),
            Some(v) if !version_matches(&v, want) => out.push(finding(
                format!("version.{key}.mismatch"),
                Severity::Warning,
                format!(
                    "{name} is {v}, the target is {want}: update it (or change maintenance_target)"
                ),
            )),
            Some(_) => {}
        }
    }
}

fn disks(g: &MaintenanceGather, p: &Policy, out: &mut Vec<Finding>) {
    let root = g.docker_root.as_deref().unwrap_or("");
    for d in &g.disks {
        let what = if d.path == root {
            "docker_root"
        } else {
            "aziot"
        };
        let Some(blocks) = d.blocks else {
            out.push(finding(
                format!("disk.{what}.unknown"),
                Severity::Warning,
                format!("`df {}` printed nothing: does the directory exist?", d.path),
            ));
            continue;
        };
        let checks = [
            (
                "disk",
                Some(blocks),
                p.disk_warn_percent,
                p.disk_critical_percent,
                "space",
            ),
            (
                "inodes",
                d.inodes,
                p.inode_warn_percent,
                p.inode_critical_percent,
                "inodes",
            ),
        ];
        for (kind, usage, warn, crit, noun) in checks {
            let Some(pct) = usage.and_then(|u| u.percent()) else {
                continue;
            };
            let severity = if pct >= crit {
                Severity::Critical
            } else if pct >= warn {
                Severity::Warning
            } else {
                continue;
            };
            let free = if kind == "disk" {
                format!(", {} free", human_bytes(blocks.available * 1024))
            } else {
                String::new()
            };
            out.push(finding(
                format!("{kind}.{what}.low"),
                severity,
                format!(
                    "{} ({}) is {pct}% full of {noun}{free} (warning at {warn}%, critical at {crit}%)",
                    d.path, d.mount
                ),
            ));
        }
    }
}

fn cleanup(g: &MaintenanceGather, p: &Policy, out: &mut Vec<Finding>) -> Cleanup {
    let mut c = Cleanup::default();
    if let Err(e) = &g.docker_root {
        out.push(finding(
            "docker.unreachable",
            Severity::Critical,
            format!("the container engine does not answer (`docker info`: {e})"),
        ));
        c.blocked = Some("the container engine does not answer".into());
        return c;
    }
    let containers = match &g.containers {
        Ok(list) => list,
        Err(e) => {
            out.push(finding(
                "containers.unreadable",
                Severity::Warning,
                format!("the container list cannot be read ({e}): unused images and volumes are not reported and nothing is pruned"),
            ));
            c.blocked = Some(format!("the container list cannot be read ({e})"));
            return c;
        }
    };
    if let Some(images) = &g.images {
        for im in images {
            if im.tags.is_empty() && !containers.iter().any(|x| x.image_id == im.id) {
                c.images.push((im.id.clone(), im.size));
            }
        }
    }
    if let Some(volumes) = &g.volumes {
        for v in volumes {
            let used = containers.iter().any(|x| x.volumes.contains(&v.name));
            if !used && !p.protected_volumes.contains(&v.name) {
                c.volumes.push((v.name.clone(), v.bytes));
            }
        }
    }
    if !c.images.is_empty() {
        let bytes: u64 = c.images.iter().map(|(_, b)| b).sum();
        let mut f = finding(
            "image.dangling",
            Severity::Warning,
            format!(
                "{} dangling image(s) no container uses ({}): set maintenance_prune: true to remove them",
                c.images.len(),
                human_bytes(bytes)
            ),
        );
        f.bytes = Some(bytes);
        out.push(f);
    }
    if !c.volumes.is_empty() {
        let bytes: u64 = c.volumes.iter().filter_map(|(_, b)| *b).sum();
        let names: Vec<&str> = c.volumes.iter().map(|(n, _)| n.as_str()).collect();
        let mut f = finding(
            "volume.unused",
            Severity::Warning,
            format!(
                "{} volume(s) no container mounts ({}; {}): set maintenance_prune: true to remove them",
                c.volumes.len(),
                names.join(", "),
                human_bytes(bytes)
            ),
        );
        f.bytes = Some(bytes);
        out.push(f);
    }
    c
}

fn logs(g: &MaintenanceGather, p: &Policy, out: &mut Vec<Finding>) {
    let unbounded = |why: String| finding("logs.docker.unbounded", Severity::Warning, why);
    match &g.daemon_json {
        FileState::Missing => out.push(unbounded(
            "daemon.json does not exist: containers log with json-file and no size limit; set log-driver local (or log-opts max-size) with playbooks/provision.yml".into(),
        )),
        FileState::Unreadable => out.push(finding(
            "logs.docker.unreadable",
            Severity::Warning,
            "daemon.json cannot be read by the login user: set ansible_become: true for this host",
        )),
        FileState::Present(text) => match super::daemon::parse(text) {
            Err(e) => out.push(finding("logs.docker.invalid", Severity::Critical, e)),
            Ok(m) => {
                let driver = m
                    .get("log-driver")
                    .and_then(|v| v.as_str())
                    .unwrap_or("json-file");
                let max_size = m.get("log-opts").and_then(|o| o.get("max-size")).is_some();
                if driver == "json-file" && !max_size {
                    out.push(unbounded(
                        "containers log with json-file and no log-opts max-size: logs grow until the disk is full; set log-driver local or max-size".into(),
                    ));
                }
            }
        },
    }
    // journald applies its files in order; the last setting wins.
    let storage = g
        .journald
        .iter()
        .rev()
        .find(|(_, k, _)| k == "Storage")
        .map(|(_, _, v)| v.as_str());
    if matches!(storage, Some("none") | Some("volatile")) {
        return;
    }
    if let Some((file, _, v)) = g
        .journald
        .iter()
        .rev()
        .find(|(_, k, _)| k == "SystemMaxUse")
    {
        match journald_size(v) {
            None => out.push(finding(
                "logs.journald.invalid",
                Severity::Warning,
                format!("{file}: SystemMaxUse={v} is not a size journald understands"),
            )),
            Some(n) if n > p.journald_max_use => out.push(finding(
                "logs.journald.too_large",
                Severity::Warning,
                format!(
                    "{file}: SystemMaxUse={v} lets the journal use more than maintenance_journald_max_use ({})",
                    human_bytes(p.journald_max_use)
                ),
            )),
            Some(_) => {}
        }
    }
}

fn image_gc(g: &MaintenanceGather, out: &mut Vec<Finding>) {
    let ConfigState::Present(text) = &g.certs.config else {
        return;
    };
    let Ok(doc) = text.parse::<toml::Table>() else {
        return; // iotedge check reports a config that does not parse
    };
    let enabled = doc
        .get("image_garbage_collection")
        .and_then(|t| t.get("enabled"))
        .and_then(|v| v.as_bool());
    if enabled == Some(false) {
        out.push(finding(
            "gc.images.disabled",
            Severity::Warning,
            "[image_garbage_collection] enabled = false in config.toml: images of removed modules are never cleaned up; enable it or prune with maintenance_prune: true",
        ));
    }
}

fn checks(g: &MaintenanceGather, p: &Policy, out: &mut Vec<Finding>) {
    let Some((rc, text)) = &g.check else {
        return;
    };
    match parse_check_json(text) {
        Err(e) => out.push(finding(
            "check.unusable",
            Severity::Warning,
            format!("`iotedge check` (exit {rc}) gave nothing usable: {e}"),
        )),
        Ok(entries) => {
            for e in entries {
                if p.check_waivers.contains_key(&e.id) {
                    continue;
                }
                let severity = match e.result.to_ascii_lowercase().as_str() {
                    "warning" => Severity::Warning,
                    "error" | "fatal" => Severity::Critical,
                    _ => continue,
                };
                let details = e
                    .details
                    .first()
                    .and_then(|d| d.lines().next())
                    .unwrap_or_default()
                    .to_string();
                out.push(finding(
                    format!("check.{}", e.id),
                    severity,
                    format!(
                        "iotedge check {}: {}{}",
                        e.id,
                        e.result,
                        if details.is_empty() {
                            String::new()
                        } else {
                            format!(": {details}")
                        }
                    ),
                ));
            }
        }
    }
}

/// Judge a device. `now` is the controller's clock (seconds since the epoch).
pub fn evaluate(g: &MaintenanceGather, p: &Policy, now: i64) -> Evaluation {
    let mut findings = Vec::new();
    certificates(g, p, now, &mut findings);
    versions(g, p, &mut findings);
    disks(g, p, &mut findings);
    let cleanup = cleanup(g, p, &mut findings);
    logs(g, p, &mut findings);
    image_gc(g, &mut findings);
    checks(g, p, &mut findings);
    Evaluation { findings, cleanup }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::certs::{CertsGather, GatheredFile};
    use crate::facts::maintenance::{Container, Disk, Image, Package, Usage, Volume};

    fn pem(days: i64, cn: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        let t = ::time::OffsetDateTime::now_utc();
        p.not_before = t - ::time::Duration::days(400);
        p.not_after = t + ::time::Duration::days(days) + ::time::Duration::hours(1);
        p.self_signed(&key).unwrap().pem().into_bytes()
    }

    fn now() -> i64 {
        ::time::OffsetDateTime::now_utc().unix_timestamp()
    }

    fn policy() -> Policy {
        Policy {
            warn_days: 30,
            critical_days: 7,
            disk_warn_percent: 80,
            disk_critical_percent: 90,
            inode_warn_percent: 80,
            inode_critical_percent: 90,
            journald_max_use: 1 << 30,
            target: BTreeMap::new(),
            check_waivers: BTreeMap::new(),
            protected_volumes: vec!["edgehub".into()],
        }
    }

    /// A healthy device as the gather records it.
    fn healthy() -> MaintenanceGather {
        let disk = |p: &str| Disk {
            path: p.into(),
            mount: "/var".into(),
            blocks: Some(Usage {
                used: 60,
                available: 40,
            }),
            inodes: Some(Usage {
                used: 5,
                available: 95,
            }),
        };
        MaintenanceGather {
            certs: CertsGather {
                device_time: Some(now()),
                config: ConfigState::Present("[edge_ca]\ncert = \"file:///e.pem\"\n[image_garbage_collection]\nenabled = true\n".into()),
                files: vec![GatheredFile {
                    key: "cert".into(),
                    path: "/e.pem".into(),
                    content: Ok(pem(300, "dev Edge CA")),
                }],
            },
            packages: vec![
                Package { name: "aziot-edge".into(), version: "1.5.21-1".into(), installed: true },
                Package { name: "moby-engine".into(), version: "24.0.9+azure-ubuntu22.04u1".into(), installed: true },
            ],
            docker_root: Ok("/var/lib/docker".into()),
            disks: vec![disk("/var/lib/docker"), disk("/var/lib/aziot")],
            containers: Ok(vec![
                Container { name: "edgeAgent".into(), image: "mcr.microsoft.com/azureiotedge-agent:1.5.21".into(), image_id: "sha256:a".into(), state: "running".into(), volumes: vec![] },
                Container { name: "old".into(), image: "busybox".into(), image_id: "sha256:old".into(), state: "exited".into(), volumes: vec!["used".into()] },
            ]),
            images: Some(vec![
                Image { id: "sha256:a".into(), size: 190, tags: vec!["mcr.microsoft.com/azureiotedge-agent:1.5.21".into()] },
                Image { id: "sha256:old".into(), size: 10, tags: vec![] },
            ]),
            volumes: Some(vec![
                Volume { name: "used".into(), bytes: Some(4096) },
                Volume { name: "edgehub".into(), bytes: Some(8192) },
            ]),
            daemon_json: FileState::Present(r#"{"log-driver":"local"}"#.into()),
            journald: vec![("/etc/systemd/journald.conf".into(), "SystemMaxUse".into(), "500M".into())],
            check: Some((0, r#"{"checks":{"a":{"result":{"result":"ok"}}}}"#.into())),
        }
    }

    #[test]
    fn a_healthy_device_has_no_findings_and_nothing_to_clean() {
        let mut p = policy();
        p.target.insert("aziot_edge".into(), "1.5".into());
        p.target.insert("moby_engine".into(), "24.0.x".into());
        p.target.insert("edge_agent".into(), "1.5.21".into());
        let e = evaluate(&healthy(), &p, now());
        assert_eq!(e.findings, vec![]);
        // A stopped container's image and volume, and edgeHub's store, are never offered.
        assert!(e.cleanup.is_empty(), "{:?}", e.cleanup);
    }

    #[test]
    fn certificates_and_clock_are_judged_like_certs_report() {
        let mut g = healthy();
        g.certs.files[0].content = Ok(pem(10, "dev Edge CA"));
        g.certs.files.push(GatheredFile {
            key: "trust_bundle_cert".into(),
            path: "/tb.pem".into(),
            content: Ok(pem(-5, "root")),
        });
        g.certs.files.push(GatheredFile {
            key: "identity_cert".into(),
            path: "/id.pem".into(),
            content: Ok(pem(3, "dev")),
        });
        g.certs.device_time = Some(now() + 3 * 365 * 86_400);
        let e = evaluate(&g, &policy(), now());
        let got: Vec<(&str, Severity, Option<i64>)> = e
            .findings
            .iter()
            .map(|f| (f.id.as_str(), f.severity, f.days_left))
            .collect();
        assert_eq!(
            got,
            [
                ("cert.edge_ca.expiring", Severity::Warning, Some(10)),
                ("cert.trust_bundle.expired", Severity::Critical, Some(-5)),
                ("cert.identity.expiring", Severity::Critical, Some(3)),
                ("clock.skew", Severity::Critical, None),
            ]
        );
        assert!(
            e.findings[3].message.contains("1095 days ahead"),
            "{}",
            e.findings[3].message
        );
    }

    #[test]
    fn versions_disk_cleanup_logs_gc_and_checks() {
        let mut g = healthy();
        g.packages[0].version = "1.4.27-1".into();
        g.disks[0].blocks = Some(Usage {
            used: 95,
            available: 5,
        });
        g.disks[1].inodes = Some(Usage {
            used: 85,
            available: 15,
        });
        if let Some(im) = g.images.as_mut() {
            im.push(Image {
                id: "sha256:dead".into(),
                size: 5_000_000,
                tags: vec![],
            });
        }
        if let Some(v) = g.volumes.as_mut() {
            v.push(Volume {
                name: "spare".into(),
                bytes: Some(1 << 20),
            });
        }
        g.daemon_json = FileState::Present(r#"{"log-driver":"json-file"}"#.into());
        g.journald.push((
            "/etc/systemd/journald.conf.d/x.conf".into(),
            "SystemMaxUse".into(),
            "4G".into(),
        ));
        if let ConfigState::Present(c) = &mut g.certs.config {
            *c = c.replace("enabled = true", "enabled = false");
        }
        g.check = Some((1, r#"{"checks":{"w":{"result":{"result":"warning","details":["why"]}},"x":{"result":{"result":"error"}},"waived":{"result":{"result":"warning"}}}}"#.into()));
        let mut p = policy();
        p.target.insert("aziot_edge".into(), "1.5.x".into());
        p.target
            .insert("aziot_identity_service".into(), "1.5".into());
        p.check_waivers.insert("waived".into(), "known".into());
        let e = evaluate(&g, &p, now());
        let ids: Vec<(&str, Severity)> = e
            .findings
            .iter()
            .map(|f| (f.id.as_str(), f.severity))
            .collect();
        assert_eq!(
            ids,
            [
                ("version.aziot_edge.mismatch", Severity::Warning),
                ("version.aziot_identity_service.missing", Severity::Warning),
                ("disk.docker_root.low", Severity::Critical),
                ("inodes.aziot.low", Severity::Warning),
                ("image.dangling", Severity::Warning),
                ("volume.unused", Severity::Warning),
                ("logs.docker.unbounded", Severity::Warning),
                ("logs.journald.too_large", Severity::Warning),
                ("gc.images.disabled", Severity::Warning),
                ("check.w", Severity::Warning),
                ("check.x", Severity::Critical),
            ]
        );
        assert_eq!(e.cleanup.images, [("sha256:dead".to_string(), 5_000_000)]);
        assert_eq!(e.cleanup.volumes, [("spare".to_string(), Some(1 << 20))]);
        assert_eq!(e.cleanup.bytes(), 5_000_000 + (1 << 20));
        assert_eq!(e.findings[4].bytes, Some(5_000_000));
    }

    #[test]
    fn an_unreadable_container_list_blocks_every_removal() {
        let mut g = healthy();
        g.containers = Err("permission denied".into());
        if let Some(v) = g.volumes.as_mut() {
            v.push(Volume {
                name: "spare".into(),
                bytes: Some(1),
            });
        }
        let e = evaluate(&g, &policy(), now());
        assert!(e.cleanup.is_empty());
        assert!(e
            .cleanup
            .blocked
            .as_deref()
            .unwrap()
            .contains("permission denied"));
        assert_eq!(
            e.findings.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
            ["containers.unreadable"]
        );
    }

    #[test]
    fn version_patterns_and_journald_sizes() {
        assert!(version_matches("1.5.21-1", "1.5"));
        assert!(version_matches("1.5.21-1", "1.5.x"));
        assert!(version_matches("1:24.0.9+azure-ubuntu22.04u1", "24.0.9"));
        assert!(!version_matches("1.4.27-1", "1.5.x"));
        assert!(!version_matches("1.5", "1.5.21"));
        assert!(version_matches("1.5.21", "*"));
        assert_eq!(journald_size("500M"), Some(500 << 20));
        assert_eq!(journald_size("1.5G"), Some(3 << 29));
        assert_eq!(journald_size("4096"), Some(4096));
        assert_eq!(journald_size("lots"), None);
        assert_eq!(slug("certd aziot-edged-ca"), "certd.aziot_edged_ca");
        assert_eq!(human_bytes(52_428_800), "52.4 MB");
    }
}
