//! The `certs report` table: one device's answer into rows (pure; the clock comes with the answer), the order
//! (days left), the monitoring exit code, and the text, JSON and CSV renderings. No I/O.

use serde_json::{json, Value};

use crate::error::ExitCode;
use crate::facts::certs::{role_of, CertsGather, ConfigState};
use crate::iotedge::certs as x509;

/// How one device answered.
pub(super) enum Answer {
    Gathered { gather: CertsGather, at: i64 },
    Unreachable(String),
    Failed(String),
}

/// One row of the table: a certificate file, or a device-level problem (`days` is `None`).
#[derive(Debug, Clone)]
pub(super) struct Row {
    host: String,
    certificate: String,
    path: String,
    subject: String,
    not_after: Option<i64>,
    days: Option<i64>,
    status: &'static str,
    message: String,
}

fn cert_status(days: i64, warn: i64, critical: i64) -> &'static str {
    if days < 0 {
        "expired"
    } else if days <= critical {
        "critical"
    } else if days <= warn {
        "warn"
    } else {
        "ok"
    }
}

pub(super) fn device_row(host: &str, status: &'static str, message: String) -> Row {
    Row {
        host: host.to_string(),
        certificate: "-".into(),
        path: String::new(),
        subject: String::new(),
        not_after: None,
        days: None,
        status,
        message,
    }
}

/// Turn one device's answer into rows (pure: the clock is `now`).
pub(super) fn rows_for(
    host: &str,
    answer: &Answer,
    config: &str,
    warn: i64,
    critical: i64,
) -> Vec<Row> {
    let (g, at) = match answer {
        Answer::Unreachable(m) => return vec![device_row(host, "unreachable", m.clone())],
        Answer::Failed(m) => return vec![device_row(host, "failed", m.clone())],
        Answer::Gathered { gather, at } => (gather, *at),
    };
    let mut rows = Vec::new();
    match &g.config {
        ConfigState::Missing => rows.push(device_row(
            host,
            "failed",
            format!("{config} does not exist: the device is not provisioned (run playbooks/provision.yml)"),
        )),
        ConfigState::Unreadable => rows.push(device_row(
            host,
            "failed",
            format!("{config} cannot be read by the login user: set ansible_become: true for this host"),
        )),
        ConfigState::Present(_) => {}
    }
    match g.device_time {
        Some(dt) => {
            if let Some(msg) = x509::clock_skew(dt, at) {
                rows.push(device_row(host, "warn", msg));
            }
        }
        None => rows.push(device_row(
            host,
            "warn",
            "the device did not print its clock (`date -u +%s`)".into(),
        )),
    }
    for f in &g.files {
        let role = role_of(f, &g.config);
        let mut row = Row {
            host: host.to_string(),
            certificate: role,
            path: f.path.clone(),
            subject: String::new(),
            not_after: None,
            days: None,
            status: "failed",
            message: String::new(),
        };
        match &f.content {
            Err(e) => row.message = e.clone(),
            Ok(bytes) => match x509::earliest_expiry(bytes) {
                Err(e) => row.message = format!("not a certificate: {e}"),
                Ok(first) => {
                    let d = x509::days_left(first.cert.not_after, at);
                    row.subject = first.cert.subject.clone();
                    row.not_after = Some(first.cert.not_after);
                    row.days = Some(d);
                    row.status = cert_status(d, warn, critical);
                    if first.index > 0 {
                        row.message = format!(
                            "certificate #{} of {} in the file expires first",
                            first.index + 1,
                            first.count
                        );
                    }
                }
            },
        }
        rows.push(row);
    }
    rows
}

/// The exit code: critical beats unreachable, which beats failed, which beats warn.
pub(super) fn exit_for(rows: &[Row]) -> ExitCode {
    let any = |s: &[&str]| rows.iter().any(|r| s.contains(&r.status));
    if any(&["critical", "expired"]) {
        ExitCode::CertCritical
    } else if any(&["unreachable"]) {
        ExitCode::Unreachable
    } else if any(&["failed"]) {
        ExitCode::HostFailed
    } else if any(&["warn"]) {
        ExitCode::CertWarning
    } else {
        ExitCode::Ok
    }
}

/// Certificate rows by days left (then host, certificate); device-level rows after them, by host.
pub(super) fn sort_rows(rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        (a.days.is_none(), a.days, &a.host, &a.certificate).cmp(&(
            b.days.is_none(),
            b.days,
            &b.host,
            &b.certificate,
        ))
    });
}

fn counts(rows: &[Row], devices: usize) -> (usize, [usize; 5]) {
    // Per device, its worst status: unreachable, failed, critical (incl. expired), warn; the rest are ok.
    let mut hosts: Vec<&str> = rows.iter().map(|r| r.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    let mut c = [0usize; 5];
    for h in &hosts {
        let st: Vec<&str> = rows
            .iter()
            .filter(|r| r.host == *h)
            .map(|r| r.status)
            .collect();
        let i = if st.contains(&"unreachable") {
            0
        } else if st.contains(&"failed") {
            1
        } else if st.iter().any(|s| *s == "critical" || *s == "expired") {
            2
        } else if st.contains(&"warn") {
            3
        } else {
            4
        };
        c[i] += 1;
    }
    // Devices with no row at all (no certificate configured, nothing wrong) count as ok.
    c[4] += devices.saturating_sub(hosts.len());
    (devices, c)
}

pub(super) fn render_text(rows: &[Row], devices: usize, warn: i64, critical: i64) -> String {
    let head = [
        "HOST",
        "CERTIFICATE",
        "DAYS LEFT",
        "EXPIRES (UTC)",
        "STATUS",
        "SUBJECT / DETAIL",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let detail = match (r.subject.is_empty(), r.message.is_empty()) {
                (false, true) => r.subject.clone(),
                (false, false) => format!("{} ({})", r.subject, r.message),
                (true, _) if !r.path.is_empty() => format!("{}: {}", r.path, r.message),
                _ => r.message.clone(),
            };
            [
                r.host.clone(),
                r.certificate.clone(),
                r.days.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
                r.not_after.map(x509::rfc3339).unwrap_or_else(|| "-".into()),
                r.status.to_uppercase(),
                detail,
            ]
        })
        .collect();
    let mut w = head.map(str::len);
    for c in &cells {
        for (i, x) in c.iter().enumerate().take(5) {
            w[i] = w[i].max(x.chars().count());
        }
    }
    let line = |c: [&str; 6]| {
        format!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {:<w3$}  {:<w4$}  {}\n",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4]
        )
    };
    let mut s = line(head);
    for c in &cells {
        s.push_str(&line([&c[0], &c[1], &c[2], &c[3], &c[4], &c[5]]));
    }
    let (n, c) = counts(rows, devices);
    s.push_str(&format!(
        "\n{n} devices: {} ok, {} warning, {} critical, {} unreachable, {} failed (warn <= {warn} days, critical <= {critical} days)\n",
        c[4], c[3], c[2], c[0], c[1]
    ));
    s
}

pub(super) fn render_json(
    rows: &[Row],
    devices: usize,
    warn: i64,
    critical: i64,
    code: ExitCode,
    generated_at: i64,
) -> String {
    let (n, c) = counts(rows, devices);
    let certs: Vec<Value> = rows
        .iter()
        .filter(|r| r.certificate != "-")
        .map(|r| {
            json!({
                "host": r.host, "certificate": r.certificate, "path": r.path, "subject": r.subject,
                "not_after": r.not_after.map(x509::rfc3339), "days_left": r.days, "status": r.status,
                "message": if r.message.is_empty() { Value::Null } else { json!(r.message) },
            })
        })
        .collect();
    let problems: Vec<Value> = rows
        .iter()
        .filter(|r| r.certificate == "-")
        .map(|r| json!({"host": r.host, "status": r.status, "message": r.message}))
        .collect();
    let doc = json!({
        "generated_at": x509::rfc3339(generated_at),
        "warn_days": warn,
        "critical_days": critical,
        "summary": {"devices": n, "ok": c[4], "warn": c[3], "critical": c[2], "unreachable": c[0],
                    "failed": c[1], "exit_code": code.code()},
        "certificates": certs,
        "device_problems": problems,
    });
    format!(
        "{}\n",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    )
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub(super) fn render_csv(rows: &[Row]) -> String {
    let mut s = String::from("host,certificate,path,subject,not_after,days_left,status,message\n");
    for r in rows {
        let f = [
            r.host.clone(),
            r.certificate.clone(),
            r.path.clone(),
            r.subject.clone(),
            r.not_after.map(x509::rfc3339).unwrap_or_default(),
            r.days.map(|d| d.to_string()).unwrap_or_default(),
            r.status.to_string(),
            r.message.clone(),
        ];
        let line: Vec<String> = f.iter().map(|x| csv_field(x)).collect();
        s.push_str(&line.join(","));
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::certs::GatheredFile;

    fn pem(days: i64, cn: &str) -> Vec<u8> {
        use rcgen::{CertificateParams, DnType, KeyPair};
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        let t = ::time::OffsetDateTime::now_utc();
        p.not_before = t - ::time::Duration::days(400);
        p.not_after = t + ::time::Duration::days(days) + ::time::Duration::hours(1);
        p.self_signed(&key).unwrap().pem().into_bytes()
    }

    fn gathered(files: Vec<(&str, &str, Vec<u8>)>, skew: i64) -> Answer {
        let at = ::time::OffsetDateTime::now_utc().unix_timestamp();
        Answer::Gathered {
            at,
            gather: CertsGather {
                device_time: Some(at + skew),
                config: ConfigState::Present("[edge_ca]\n".into()),
                files: files
                    .into_iter()
                    .map(|(k, p, c)| GatheredFile {
                        key: k.into(),
                        path: p.into(),
                        content: Ok(c),
                    })
                    .collect(),
            },
        }
    }

    #[test]
    fn rows_statuses_order_and_exit_codes() {
        let mut rows = Vec::new();
        rows.extend(rows_for(
            "a",
            &gathered(vec![("cert", "/e", pem(200, "a Edge CA"))], 0),
            "/c",
            30,
            7,
        ));
        rows.extend(rows_for(
            "b",
            &gathered(vec![("cert", "/e", pem(20, "b Edge CA"))], 0),
            "/c",
            30,
            7,
        ));
        assert_eq!(exit_for(&rows), ExitCode::CertWarning);
        rows.extend(rows_for(
            "c",
            &Answer::Unreachable("refused".into()),
            "/c",
            30,
            7,
        ));
        assert_eq!(exit_for(&rows), ExitCode::Unreachable);
        rows.extend(rows_for(
            "d",
            &gathered(
                vec![("trust_bundle_cert", "/t", pem(-3, "root"))],
                3 * 365 * 86_400,
            ),
            "/c",
            30,
            7,
        ));
        assert_eq!(exit_for(&rows), ExitCode::CertCritical);
        sort_rows(&mut rows);
        let order: Vec<(&str, &str)> = rows.iter().map(|r| (r.host.as_str(), r.status)).collect();
        assert_eq!(
            order,
            [
                ("d", "expired"),
                ("b", "warn"),
                ("a", "ok"),
                ("c", "unreachable"),
                ("d", "warn")
            ]
        );
        assert!(
            rows[4].message.contains("1095 days ahead"),
            "{}",
            rows[4].message
        );
        assert_eq!(rows[1].days, Some(20));
        let text = render_text(&rows, 4, 30, 7);
        assert!(
            text.contains("4 devices: 1 ok, 1 warning, 1 critical, 1 unreachable, 0 failed"),
            "{text}"
        );
        let csv = render_csv(&rows);
        assert_eq!(csv.lines().count(), 6);
        assert!(
            csv.lines()
                .nth(1)
                .unwrap()
                .starts_with("d,trust bundle,/t,root,"),
            "{csv}"
        );
        let j: Value =
            serde_json::from_str(&render_json(&rows, 4, 30, 7, exit_for(&rows), 0)).unwrap();
        assert_eq!(j["summary"]["exit_code"], 11);
        assert_eq!(j["certificates"].as_array().unwrap().len(), 3);
        assert_eq!(j["device_problems"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn unreadable_files_and_configs_fail_the_device() {
        let mut a = gathered(vec![], 0);
        if let Answer::Gathered { gather, .. } = &mut a {
            gather.config = ConfigState::Unreadable;
            gather.files.push(GatheredFile {
                key: "cert".into(),
                path: "/e".into(),
                content: Ok(b"junk".to_vec()),
            });
        }
        let rows = rows_for("x", &a, "/etc/aziot/config.toml", 30, 7);
        assert_eq!(rows.len(), 2);
        assert!(rows[0].message.contains("ansible_become"), "{:?}", rows[0]);
        assert!(
            rows[1].message.contains("not a certificate"),
            "{:?}",
            rows[1]
        );
        assert_eq!(exit_for(&rows), ExitCode::HostFailed);
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
