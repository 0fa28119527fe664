//! `edgefleet certs`: `issue` signs a new Edge CA per device from the operator's issuing CA and writes each chain
//! and age-encrypted key where the device's `edge_ca_cert` / `edge_ca_key` variables point (what roles/edge_ca
//! pushes), or under `--out-dir`; `report` reads every device's certificates in one round trip and prints the
//! fleet's expiry table (text, JSON or CSV) with an exit code for monitoring.
//!
//! Everything is checked before anything is written or contacted: thresholds, the issuing CA (`iotedge::certs`),
//! every host's target paths and recipients. The issuing CA's key and the new keys exist in clear only in memory
//! (zeroized on drop); keys land on disk only age-encrypted, and never reach argv, logs or errors. For `report`,
//! each device gets its own task under `--forks` with a deadline: one that fails or does not answer is a row of
//! the report and never holds up the others. Parsing X.509 and deciding warn/critical happen here, on the
//! controller; the device script and its parser are `facts::certs`, the rows, order, exit code and renderings
//! are `certs/table.rs`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::run::{load_with, runtime, ssh_options, Loaded};
use crate::cli::{CertsArgs, CertsCommand, CertsIssueArgs, CertsReportArgs, InventorySource};
use crate::diag::{display_path, Diagnostic, Diagnostics};
use crate::error::{AppError, ExitCode};
use crate::facts::certs::{certs_cmd, parse_certs};
use crate::inventory::Secrets;
use crate::iotedge::certs as x509;
use crate::template::context::Context;
use crate::transport::{Become, ConnSpec, Connector, Exec, SharedTransport};
use crate::vars::Vars;
use table::{
    device_row, exit_for, render_csv, render_json, render_text, rows_for, sort_rows, Answer, Row,
};

/// Per-device deadline of `report` when `--device-timeout` is 0.
const DEFAULT_DEVICE_DEADLINE: Duration = Duration::from_secs(120);
/// The super config when the inventory does not set `iotedge_config_file`.
const DEFAULT_CONFIG: &str = "/etc/aziot/config.toml";

mod table;

/// Run `edgefleet certs`.
pub fn run(a: CertsArgs) -> Result<ExitCode, AppError> {
    match a.command {
        CertsCommand::Issue(x) => issue(x),
        CertsCommand::Report(x) => report(x),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A number of days given on the command line.
fn days(flag: &str, v: &str) -> Result<i64, AppError> {
    match v.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(AppError::Usage(format!(
            "{flag} `{v}` is not a number of days: give a whole number of 0 or more, e.g. {flag} 30"
        ))),
    }
}

/// The inventory, loaded as `ping` does (encrypted vars files opened when an identity can), and the selected
/// hosts in inventory order.
fn load_fleet(inv: &InventorySource) -> Result<(Loaded, Vec<String>), AppError> {
    let mut loaded = load_with(
        &inv.inventory,
        inv.limit.as_deref(),
        &[],
        None,
        Secrets::IfAvailable,
    )?;
    super::run::apply_shard(&mut loaded, inv.shard);
    for w in &loaded.warnings {
        super::print_warning(w);
    }
    let hosts: Vec<String> = loaded
        .inventory
        .host_names()
        .into_iter()
        .filter(|h| loaded.limit.as_ref().is_none_or(|l| l.contains(h)))
        .collect();
    if hosts.is_empty() {
        return Err(AppError::Usage(
            "no host matches: check -i and --limit (`edgefleet inventory -i INV --graph`)".into(),
        ));
    }
    Ok((loaded, hosts))
}

/// A host's variables with the magic ones a path template may use, rendered on demand.
fn host_context(loaded: &Loaded, host: &str) -> Context {
    let inv = &loaded.inventory;
    let mut magic = Vars::new();
    magic.insert("inventory_hostname".into(), json!(host));
    magic.insert(
        "inventory_hostname_short".into(),
        json!(host.split('.').next().unwrap_or(host)),
    );
    magic.insert("group_names".into(), json!(inv.group_names(host)));
    if let Some(f) = inv.inventory_file(host) {
        magic.insert("inventory_file".into(), json!(f.display().to_string()));
        if let Some(d) = f.parent() {
            magic.insert("inventory_dir".into(), json!(d.display().to_string()));
        }
    }
    Context::new(
        &loaded.templar,
        vec![inv.host_vars_shared(host), Arc::new(magic)],
    )
}

/// A host variable rendered to a string (`None` when unset or empty).
fn host_str(cx: &Context, host: &str, name: &str) -> Result<Option<String>, String> {
    match cx.get(name) {
        Ok(Some(Value::String(s))) if !s.trim().is_empty() => Ok(Some(s)),
        Ok(Some(Value::String(_))) | Ok(Some(Value::Null)) | Ok(None) => Ok(None),
        Ok(Some(other)) => Ok(Some(other.to_string())),
        Err(e) => Err(format!("{host}: `{name}`: {e}")),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// certs issue
// ---------------------------------------------------------------------------------------------------------------

/// Where one host's new Edge CA goes, and what it is called.
struct Target {
    host: String,
    cert: PathBuf,
    key: PathBuf,
    common_name: String,
    names: Vec<String>,
    recipients: Vec<crate::vars::secrets::RecipientEntry>,
}

fn target_for(a: &CertsIssueArgs, loaded: &Loaded, host: &str) -> Result<Target, String> {
    let cx = host_context(loaded, host);
    let (cert, key) = match &a.out_dir {
        Some(d) => (
            d.join(host).join("edge-ca.cert.pem"),
            d.join(host).join("edge-ca.key.pem.age"),
        ),
        None => {
            let c = host_str(&cx, host, "edge_ca_cert")?;
            let k = host_str(&cx, host, "edge_ca_key")?;
            let (Some(c), Some(k)) = (c, k) else {
                return Err(format!(
                    "{host}: `edge_ca_cert` and `edge_ca_key` are not both set, so there is nowhere to write its Edge CA: set them in the inventory (as roles/edge_ca expects) or give --out-dir"
                ));
            };
            for (name, p) in [("edge_ca_cert", &c), ("edge_ca_key", &k)] {
                if !Path::new(p).is_absolute() {
                    return Err(format!(
                        "{host}: `{name}` is the relative path `{p}`: certs issue writes only to absolute paths; use `{{{{ inventory_dir }}}}/...` as inventory/example does"
                    ));
                }
            }
            (PathBuf::from(c), PathBuf::from(k))
        }
    };
    if !crate::vars::secrets::is_age_path(&key) {
        return Err(format!(
            "{host}: `edge_ca_key` is {}, not an `.age` file: certs issue writes private keys only age-encrypted; name it `*.key.pem.age` (roles/edge_ca decrypts it in memory)",
            display_path(&key)
        ));
    }
    let hostname = host_str(&cx, host, "iotedge_hostname")?.unwrap_or_else(|| host.to_string());
    let device_id = host_str(&cx, host, "iotedge_device_id")?.unwrap_or_else(|| host.to_string());
    let common_name = crate::iotedge::renew::edge_ca_common_name(&device_id);
    let (recipients, _) =
        crate::vars::secrets::resolve_recipients(&a.rcpt.recipient, &a.rcpt.recipients_file, &key)
            .map_err(|e| format!("{host}: {}", e.into_diag()))?;
    Ok(Target {
        host: host.to_string(),
        cert,
        key,
        common_name,
        names: vec![hostname, device_id],
        recipients,
    })
}

/// Does the host's current Edge CA (the controller's copy, which the playbook pushes) still have more than
/// `renew_before` days? `Some(reason)` when it must be renewed.
fn renewal_reason(cert: &Path, renew_before: i64, now: i64) -> Option<String> {
    let bytes = match std::fs::read(cert) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some("no Edge CA yet".into()),
        Err(e) => return Some(format!("the current file cannot be read ({e})")),
    };
    match x509::pem_expiries(&bytes) {
        Ok(certs) => crate::iotedge::renew::renewal_due(
            x509::days_left(certs[0].not_after, now),
            renew_before,
        ),
        Err(e) => Some(format!("the current file is not a certificate ({e})")),
    }
}

/// Write `data` to `path` through a temp file in the same directory (fsync, rename), keeping the previous file
/// as `path.prev`.
fn replace_file(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.edgefleet-tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    if path.exists() {
        let mut prev = path.as_os_str().to_owned();
        prev.push(".prev");
        std::fs::rename(path, PathBuf::from(prev))?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn issue(a: CertsIssueArgs) -> Result<ExitCode, AppError> {
    crate::vars::secrets::configure(&a.identity);
    let validity = days("--days", &a.days)?;
    let renew_before = days("--renew-before", &a.renew_before)?;
    if validity == 0 {
        return Err(AppError::Usage(
            "--days 0: an Edge CA must be valid for at least a day".into(),
        ));
    }
    if renew_before >= validity {
        return Err(AppError::Usage(format!(
            "--renew-before {renew_before} is not less than --days {validity}: every new Edge CA would be due for renewal at once, and each run would renew again; lower --renew-before"
        )));
    }
    let key_type = x509::EdgeCaKey::parse(&a.key_type).map_err(AppError::Usage)?;
    let t = now();

    // The issuing CA: certificate, age-encrypted key (decrypted in memory), every rule at once.
    let ca_pem = std::fs::read(&a.ca_cert).map_err(|e| {
        Diagnostic::file(
            &a.ca_cert,
            format!("cannot read the issuing CA certificate: {e}"),
        )
    })?;
    if !crate::vars::secrets::is_age_path(&a.ca_key) {
        return Err(Diagnostic::file(
            &a.ca_key,
            "the issuing CA's key must be age-encrypted: run `edgefleet vault encrypt FILE` and pass FILE.age (the key is then decrypted in memory only)",
        )
        .into());
    }
    let ca_key = crate::vars::secrets::decrypt_file_secret(&a.ca_key)?;
    let issuer = x509::issuing_ca_checked(&ca_pem, ca_key.bytes(), t).map_err(|problems| {
        let mut d = Diagnostics::new();
        for (about, p) in problems {
            let file = match about {
                x509::CaFile::Key => &a.ca_key,
                x509::CaFile::Cert => &a.ca_cert,
            };
            d.push(Diagnostic::file(file, format!("issuing CA: {p}")));
        }
        AppError::Load(d)
    })?;
    drop(ca_key);

    // Every host's target, before anything is written.
    let (loaded, hosts) = load_fleet(&a.inv)?;
    let mut targets = Vec::new();
    let mut problems = Diagnostics::new();
    for h in &hosts {
        match target_for(&a, &loaded, h) {
            Ok(x) => targets.push(x),
            Err(m) => problems.push(Diagnostic::plain(m)),
        }
    }
    if !problems.is_empty() {
        return Err(AppError::Load(problems));
    }

    let (mut issued, mut kept) = (0usize, 0usize);
    let mut out = std::io::stdout().lock();
    for tg in &targets {
        let reason = if a.force {
            Some("--force".to_string())
        } else {
            renewal_reason(&tg.cert, renew_before, t)
        };
        let Some(reason) = reason else {
            kept += 1;
            let left = std::fs::read(&tg.cert)
                .ok()
                .and_then(|b| x509::pem_expiries(&b).ok())
                .map(|c| x509::days_left(c[0].not_after, t))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{}: kept ({left} days left > --renew-before {renew_before})",
                tg.host
            );
            continue;
        };
        let names: Vec<&str> = tg.names.iter().map(String::as_str).collect();
        let new = issuer
            .issue(&x509::EdgeCaRequest {
                common_name: &tg.common_name,
                names: &names,
                key: key_type,
                days: validity,
                now: t,
            })
            .map_err(|e| AppError::Other(format!("{}: {e}", tg.host)))?;
        // The same pre-flight check roles/edge_ca runs, so what we write is what a play accepts.
        x509::check_edge_ca(new.chain_pem.as_bytes(), new.key_pem.as_bytes(), 0, &names).map_err(
            |p| {
                AppError::Other(format!(
                    "{}: the new Edge CA fails the pre-flight check: {}",
                    tg.host,
                    p.join("; ")
                ))
            },
        )?;
        let sealed =
            crate::vars::secrets::encrypt_armored(&tg.key, new.key_pem.as_bytes(), &tg.recipients)
                .map_err(|e| AppError::Other(e.to_string()))?;
        drop(new.key_pem);
        // Key first: a crash in between leaves a pair that fails pre-flight and is renewed by the next run.
        replace_file(&tg.key, &sealed, 0o600).map_err(|e| {
            AppError::Other(format!(
                "{}: cannot write {}: {e}",
                tg.host,
                display_path(&tg.key)
            ))
        })?;
        replace_file(&tg.cert, new.chain_pem.as_bytes(), 0o644).map_err(|e| {
            AppError::Other(format!(
                "{}: cannot write {}: {e}",
                tg.host,
                display_path(&tg.cert)
            ))
        })?;
        issued += 1;
        let _ = writeln!(
            out,
            "{}: issued `{}` ({reason}), valid until {} -> {} + {}",
            tg.host,
            tg.common_name,
            x509::rfc3339(new.not_after),
            display_path(&tg.cert),
            display_path(&tg.key)
        );
    }
    let _ = writeln!(
        out,
        "{issued} issued by `{}`, {kept} kept; push them with `edgefleet play playbooks/provision.yml` (roles/edge_ca)",
        issuer.common_name
    );
    Ok(ExitCode::Ok)
}

// ---------------------------------------------------------------------------------------------------------------
// certs report
// ---------------------------------------------------------------------------------------------------------------

async fn gather_one(
    connector: Arc<crate::transport::ssh::SshConnector>,
    spec: Result<ConnSpec, String>,
    config: String,
    deadline: Duration,
) -> Answer {
    let spec = match spec {
        Ok(s) => s,
        Err(m) => return Answer::Failed(m),
    };
    let work = async {
        let t: SharedTransport = if spec.connection == "local" {
            crate::transport::LocalConnector
                .connect(&spec)
                .await
                .map_err(|e| Answer::Unreachable(e.to_string()))?
        } else {
            connector
                .connect(&spec)
                .await
                .map_err(|e| Answer::Unreachable(e.to_string()))?
        };
        let become_ = spec.become_.then(|| Become {
            user: spec.become_user.clone().unwrap_or_else(|| "root".into()),
            password: spec.become_password.clone(),
        });
        let r = t.exec(Exec::new(certs_cmd(&config)).become_(become_)).await;
        t.close().await;
        let out = r.map_err(|e| {
            if e.is_unreachable() {
                Answer::Unreachable(e.to_string())
            } else {
                Answer::Failed(e.to_string())
            }
        })?;
        let at = now();
        if !out.status.success() {
            return Err(Answer::Failed(format!(
                "the certificate gather ended with {}: {}",
                out.status,
                out.stderr_str().trim()
            )));
        }
        parse_certs(&out.stdout_str())
            .map(|gather| Answer::Gathered { gather, at })
            .map_err(Answer::Failed)
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(Ok(a)) | Ok(Err(a)) => a,
        Err(_) => Answer::Unreachable(format!(
            "no answer within {}s (--device-timeout)",
            deadline.as_secs()
        )),
    }
}

/// Connection parameters from a host's (rendered) `ansible_*` variables.
fn conn_for(loaded: &Loaded, host: &str) -> (Result<ConnSpec, String>, String) {
    let cx = host_context(loaded, host);
    let mut conn = Vars::new();
    for (k, _) in cx.flatten() {
        if k.starts_with("ansible_") {
            match cx.get(&k) {
                Ok(Some(v)) => {
                    conn.insert(k, v);
                }
                Ok(None) => {}
                Err(e) => return (Err(format!("`{k}`: {e}")), DEFAULT_CONFIG.into()),
            }
        }
    }
    let config = host_str(&cx, host, "iotedge_config_file")
        .ok()
        .flatten()
        .unwrap_or_else(|| DEFAULT_CONFIG.into());
    (
        crate::inventory::conn_spec(host, &conn).map_err(|d| d.message),
        config,
    )
}

fn report(a: CertsReportArgs) -> Result<ExitCode, AppError> {
    crate::vars::secrets::configure(&a.identity);
    let warn = days("--warn-days", &a.warn_days)?;
    let critical = days("--critical-days", &a.critical_days)?;
    if critical > warn {
        return Err(AppError::Usage(format!(
            "--critical-days {critical} is more than --warn-days {warn}: critical must be the nearer threshold"
        )));
    }
    let (loaded, hosts) = load_fleet(&a.inv)?;
    let deadline = if a.conn.device_timeout > 0 {
        Duration::from_secs(a.conn.device_timeout)
    } else {
        DEFAULT_DEVICE_DEADLINE
    };
    let rt = runtime()?;
    let connector = {
        let _g = rt.enter();
        Arc::new(crate::transport::ssh::SshConnector::new(ssh_options(
            &a.conn,
        )))
    };
    let plans: Vec<(String, Result<ConnSpec, String>, String)> = hosts
        .iter()
        .map(|h| {
            let (spec, cfg) = conn_for(&loaded, h);
            (h.clone(), spec, cfg)
        })
        .collect();
    let forks = Arc::new(tokio::sync::Semaphore::new(a.conn.forks.max(1)));
    let answers: Vec<(String, String, Answer)> = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (i, (host, spec, cfg)) in plans.into_iter().enumerate() {
            let (c, forks) = (connector.clone(), forks.clone());
            set.spawn(async move {
                let _permit = forks.acquire_owned().await;
                let ans = gather_one(c, spec, cfg.clone(), deadline).await;
                (i, host, cfg, ans)
            });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(x) = r {
                out.push(x);
            }
        }
        out.sort_by_key(|x| x.0);
        out.into_iter().map(|(_, h, c, a)| (h, c, a)).collect()
    });
    for (host, message) in connector.take_warnings() {
        let prefix = host.map(|h| format!("{h}: ")).unwrap_or_default();
        super::print_warning(&format!("{prefix}{message}"));
    }
    let mut rows: Vec<Row> = answers
        .iter()
        .flat_map(|(h, cfg, ans)| rows_for(h, ans, cfg, warn, critical))
        .collect();
    // A task that panicked leaves no answer: report the device rather than drop it.
    for h in &hosts {
        if !answers.iter().any(|(x, _, _)| x == h) {
            rows.push(device_row(
                h,
                "failed",
                "internal error while reading this device".into(),
            ));
        }
    }
    sort_rows(&mut rows);
    let code = exit_for(&rows);
    let text = match a.format.as_str() {
        "json" => render_json(&rows, hosts.len(), warn, critical, code, now()),
        "csv" => render_csv(&rows),
        _ => render_text(&rows, hosts.len(), warn, critical),
    };
    let text = crate::redact::redact(&text);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_must_be_numbers() {
        let e = days("--warn-days", "thirty").unwrap_err().to_string();
        assert!(
            e.contains("--warn-days `thirty` is not a number of days"),
            "{e}"
        );
        assert!(days("--critical-days", "-1").is_err());
        assert_eq!(days("--critical-days", " 7 ").unwrap(), 7);
    }
}
