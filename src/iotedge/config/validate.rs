//! Validation of a super config by the real IoT Edge 1.5 rules: what `iotedge config apply` would refuse
//! (provisioning shapes and methods, key and certificate URIs, `cloud_timeout_sec`, `[edge_ca]` shapes, agent
//! settings, image garbage collection), so a bad config is refused before any device is contacted.
//!
//! Each rule gives a `ConfigProblem` naming the key. It must not hold production-checklist advice (that is
//! `checklist`'s) nor deserialize. Pure: no I/O.

use serde_json::Value;

use super::model::{
    connection_string_parts, edge_ca_shape, EdgeCa, EdgeCaShape, KeySource, SuperConfig,
};
use super::problems::{p, Problems};

fn is_file_uri(s: &str) -> bool {
    s.starts_with("file:///")
}

fn check_key_uri(key: &str, v: &str, out: &mut Problems) {
    if !(v.starts_with("file:") || v.starts_with("pkcs11:")) {
        out.push(p(
            key,
            format!("`{v}` must be a `file:///...` or `pkcs11:` URI (a bare path is rejected by iotedge)"),
        ));
    }
}

fn check_cert_uri(key: &str, v: &str, out: &mut Problems) {
    if !is_file_uri(v) {
        out.push(p(
            key,
            format!("`{v}` must be a `file:///...` URI (a bare path is rejected by iotedge)"),
        ));
    }
}

fn check_key_source(key: &str, ks: &KeySource, out: &mut Problems) {
    match (&ks.value, &ks.uri) {
        (Some(v), None) => {
            use base64::Engine;
            if base64::engine::general_purpose::STANDARD.decode(v).is_err() {
                out.push(p(&format!("{key}.value"), "must be base64"));
            }
        }
        (None, Some(u)) => check_key_uri(&format!("{key}.uri"), u, out),
        _ => out.push(p(
            key,
            "give exactly one of `value` (base64) or `uri` (file:///... or pkcs11:)",
        )),
    }
}

fn days(key: &str, v: &str, min: u32, out: &mut Problems) {
    let ok = v
        .strip_suffix('d')
        .and_then(|n| n.parse::<u32>().ok())
        .map(|n| n >= min)
        .unwrap_or(false);
    if !ok {
        out.push(p(
            key,
            format!(
                "`{v}` must be a whole number of days like \"{}d\" (minimum {min}d)",
                min.max(1)
            ),
        ));
    }
}

/// Validate by the real 1.5 rules (what `iotedge config apply` would refuse, plus the URI rules).
pub fn validate(c: &SuperConfig) -> Problems {
    let mut out = Problems::new();
    let pr = &c.provisioning;
    match pr.source.as_str() {
        "manual" => {
            match (&pr.connection_string, &pr.iothub_hostname, &pr.device_id, &pr.authentication) {
                (Some(cs), None, None, None) => {
                    let parts = connection_string_parts(cs);
                    for need in ["HostName", "DeviceId", "SharedAccessKey"] {
                        if !parts.contains_key(need) {
                            out.push(p(
                                "provisioning.connection_string",
                                format!("is missing `{need}=` (a device connection string has HostName, DeviceId and SharedAccessKey)"),
                            ));
                        }
                    }
                }
                (None, Some(_), Some(_), Some(a)) => match a.method.as_str() {
                    "sas" => match &a.device_id_pk {
                        Some(ks) => check_key_source("provisioning.authentication.device_id_pk", ks, &mut out),
                        None => out.push(p("provisioning.authentication.device_id_pk", "is required for method = \"sas\"")),
                    },
                    "x509" => {
                        match &a.identity_cert {
                            Some(u) => check_cert_uri("provisioning.authentication.identity_cert", u, &mut out),
                            None => out.push(p("provisioning.authentication.identity_cert", "is required for method = \"x509\"")),
                        }
                        match &a.identity_pk {
                            Some(u) => check_key_uri("provisioning.authentication.identity_pk", u, &mut out),
                            None => out.push(p("provisioning.authentication.identity_pk", "is required for method = \"x509\"")),
                        }
                    }
                    m => out.push(p(
                        "provisioning.authentication.method",
                        format!("unknown variant `{m}`, expected `sas` or `x509`"),
                    )),
                },
                (Some(_), _, _, _) => out.push(p(
                    "provisioning",
                    "give either `connection_string` or `iothub_hostname` + `device_id` + `[provisioning.authentication]`, not both",
                )),
                (None, h, d, a) => {
                    for (k, missing) in [("iothub_hostname", h.is_none()), ("device_id", d.is_none()), ("authentication", a.is_none())] {
                        if missing {
                            out.push(p(
                                &format!("provisioning.{k}"),
                                "is required for manual provisioning without a connection string",
                            ));
                        }
                    }
                }
            }
            for k in ["global_endpoint", "id_scope", "attestation"] {
                let present = match k {
                    "global_endpoint" => pr.global_endpoint.is_some(),
                    "id_scope" => pr.id_scope.is_some(),
                    _ => pr.attestation.is_some(),
                };
                if present {
                    out.push(p(
                        &format!("provisioning.{k}"),
                        "only applies to source = \"dps\"",
                    ));
                }
            }
        }
        "dps" => {
            match &pr.global_endpoint {
                Some(u) if u.starts_with("https://") || u.starts_with("http://") => {}
                Some(u) => out.push(p(
                    "provisioning.global_endpoint",
                    format!("`{u}` is not a URL"),
                )),
                None => out.push(p(
                    "provisioning.global_endpoint",
                    "is required for source = \"dps\"",
                )),
            }
            if pr.id_scope.as_deref().map(str::is_empty).unwrap_or(true) {
                out.push(p(
                    "provisioning.id_scope",
                    "is required for source = \"dps\"",
                ));
            }
            match &pr.attestation {
                None => out.push(p(
                    "provisioning.attestation",
                    "is required for source = \"dps\"",
                )),
                Some(a) => match a.method.as_str() {
                    "symmetric_key" => {
                        if a.registration_id.is_none() {
                            out.push(p(
                                "provisioning.attestation.registration_id",
                                "is required for method = \"symmetric_key\"",
                            ));
                        }
                        match &a.symmetric_key {
                            Some(ks) => check_key_source(
                                "provisioning.attestation.symmetric_key",
                                ks,
                                &mut out,
                            ),
                            None => out.push(p(
                                "provisioning.attestation.symmetric_key",
                                "is required for method = \"symmetric_key\"",
                            )),
                        }
                    }
                    "x509" => {
                        match &a.identity_cert {
                            Some(u) => check_cert_uri(
                                "provisioning.attestation.identity_cert",
                                u,
                                &mut out,
                            ),
                            None => out.push(p(
                                "provisioning.attestation.identity_cert",
                                "is required for method = \"x509\"",
                            )),
                        }
                        match &a.identity_pk {
                            Some(u) => {
                                check_key_uri("provisioning.attestation.identity_pk", u, &mut out)
                            }
                            None => out.push(p(
                                "provisioning.attestation.identity_pk",
                                "is required for method = \"x509\"",
                            )),
                        }
                    }
                    "tpm" => {
                        if a.registration_id.is_none() {
                            out.push(p(
                                "provisioning.attestation.registration_id",
                                "is required for method = \"tpm\"",
                            ));
                        }
                    }
                    m => out.push(p(
                        "provisioning.attestation.method",
                        format!("unknown variant `{m}`, expected `symmetric_key`, `x509` or `tpm`"),
                    )),
                },
            }
            if c.parent_hostname.is_some() {
                out.push(p("parent_hostname", "DPS provisioning is not supported in nested mode (remove parent_hostname or use manual provisioning)"));
            }
            if pr.connection_string.is_some() {
                out.push(p(
                    "provisioning.connection_string",
                    "only applies to source = \"manual\"",
                ));
            }
        }
        "none" => {}
        other => out.push(p(
            "provisioning.source",
            format!(
                "unknown variant `{other}`, expected one of `manual`, `dps`, `none` (lowercase)"
            ),
        )),
    }
    if let Some(t) = c.cloud_timeout_sec {
        if t < 70 {
            out.push(p(
                "cloud_timeout_sec",
                format!("must be at least 70 (got {t})"),
            ));
        }
    }
    if let Some(m) = &c.auto_reprovisioning_mode {
        if !["Dynamic", "AlwaysOnStartup", "OnErrorOnly"].contains(&m.as_str()) {
            out.push(p(
                "auto_reprovisioning_mode",
                format!("unknown variant `{m}`, expected `Dynamic`, `AlwaysOnStartup` or `OnErrorOnly` (case-sensitive)"),
            ));
        }
    }
    if let Some(t) = &c.trust_bundle_cert {
        check_cert_uri("trust_bundle_cert", t, &mut out);
    }
    if let Some(ca) = &c.edge_ca {
        validate_edge_ca(ca, &mut out);
    }
    if let Some(m) = &c.moby_runtime {
        if m.uri.is_none() {
            out.push(p(
                "moby_runtime.uri",
                "is required when [moby_runtime] is present (default unix:///var/run/docker.sock)",
            ));
        }
        if m.network.is_none() {
            out.push(p(
                "moby_runtime.network",
                "is required when [moby_runtime] is present (default \"azure-iot-edge\")",
            ));
        }
    }
    if let Some(a) = &c.agent {
        if a.name.is_empty() {
            out.push(p("agent.name", "is required"));
        }
        if a.kind != "docker" {
            out.push(p(
                "agent.type",
                format!("must be \"docker\" (got \"{}\")", a.kind),
            ));
        }
        if a.config.image.trim().is_empty() {
            out.push(p("agent.config.image", "is required"));
        }
        if let Some(pp) = &a.image_pull_policy {
            if pp != "on-create" && pp != "never" {
                out.push(p(
                    "agent.imagePullPolicy",
                    format!("must be \"on-create\" or \"never\" (got \"{pp}\")"),
                ));
            }
        }
        for (k, v) in &a.env {
            if !v.is_string() {
                out.push(p(
                    &format!("agent.env.{k}"),
                    format!(
                        "must be a string: write {k} = \"{}\" (iotedge rejects {} values)",
                        plain(v),
                        kind(v)
                    ),
                ));
            }
        }
    }
    if let Some(gc) = &c.image_garbage_collection {
        if let Some(r) = &gc.cleanup_recurrence {
            days(
                "image_garbage_collection.cleanup_recurrence",
                r,
                1,
                &mut out,
            );
        }
        if let Some(t) = &gc.image_age_cleanup_threshold {
            days(
                "image_garbage_collection.image_age_cleanup_threshold",
                t,
                0,
                &mut out,
            );
        }
        if let Some(t) = &gc.cleanup_time {
            let ok = t.len() == 5
                && t.as_bytes()[2] == b':'
                && t[..2].parse::<u32>().map(|h| h < 24).unwrap_or(false)
                && t[3..].parse::<u32>().map(|m| m < 60).unwrap_or(false);
            if !ok {
                out.push(p(
                    "image_garbage_collection.cleanup_time",
                    format!("`{t}` must be a time like \"03:30\" (HH:MM, 24h)"),
                ));
            }
        }
    }
    out
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::Array(_) => "list",
        Value::Object(_) => "table",
        _ => "non-string",
    }
}

fn validate_edge_ca(ca: &EdgeCa, out: &mut Problems) {
    match edge_ca_shape(Some(ca)) {
        None => out.push(p(
            "edge_ca",
            "mixes shapes: use either `cert` + `pk` (preloaded), or `method = ...` (issued), or `auto_generated_edge_ca_expiry_days` (quickstart)",
        )),
        Some(EdgeCaShape::Preloaded) => {
            match &ca.cert {
                Some(u) => check_cert_uri("edge_ca.cert", u, out),
                None => out.push(p("edge_ca.cert", "is required together with `pk`")),
            }
            match &ca.pk {
                Some(u) => check_key_uri("edge_ca.pk", u, out),
                None => out.push(p("edge_ca.pk", "is required together with `cert`")),
            }
        }
        Some(EdgeCaShape::Issued) => {
            let m = ca.method.as_deref().unwrap_or_default();
            if !["est", "local_ca", "self_signed"].contains(&m) {
                out.push(p("edge_ca.method", format!("unknown variant `{m}`, expected `est`, `local_ca` or `self_signed`")));
            }
            if m == "est" && ca.url.is_none() {
                out.push(p("edge_ca.url", "is required for method = \"est\" (or configure [cert_issuance.est])"));
            }
            if let Some(d) = ca.expiry_days {
                if d <= 0 {
                    out.push(p("edge_ca.expiry_days", "must be greater than 0"));
                }
            }
        }
        Some(EdgeCaShape::Quickstart) => {
            if let Some(d) = ca.auto_generated_edge_ca_expiry_days {
                if d <= 0 {
                    out.push(p("edge_ca.auto_generated_edge_ca_expiry_days", "must be greater than 0"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::iotedge::config::testing::problems;
    use serde_json::{json, Value};

    #[test]
    fn rules_from_the_1_5_sources() {
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"provisioning": {"source": "Manual", "connection_string": "x"}}),
                "unknown variant `Manual`",
            ),
            (
                json!({"provisioning": {"source": "manual", "connection_string": "HostName=h;DeviceId=d"}}),
                "missing `SharedAccessKey=`",
            ),
            (
                json!({"provisioning": {"source": "manual", "iothub_hostname": "h", "device_id": "d", "authentication": {"method": "sas"}}}),
                "device_id_pk`: is required",
            ),
            (
                json!({"provisioning": {"source": "manual", "iothub_hostname": "h", "device_id": "d", "authentication": {"method": "x509", "identity_cert": "/var/c.pem", "identity_pk": "file:///k"}}}),
                "bare path",
            ),
            (
                json!({"provisioning": {"source": "dps", "id_scope": "0ne", "attestation": {"method": "tpm", "registration_id": "r"}}}),
                "global_endpoint`: is required",
            ),
            (
                json!({"parent_hostname": "p", "provisioning": {"source": "dps", "global_endpoint": "https://g", "id_scope": "0ne", "attestation": {"method": "tpm", "registration_id": "r"}}}),
                "nested mode",
            ),
            (
                json!({"provisioning": {"source": "dps", "global_endpoint": "https://g", "id_scope": "0ne", "attestation": {"method": "symmetric_key", "registration_id": "r", "symmetric_key": {"value": "not base64!"}}}}),
                "must be base64",
            ),
            (
                json!({"cloud_timeout_sec": 30, "provisioning": {"source": "none"}}),
                "at least 70",
            ),
            (
                json!({"auto_reprovisioning_mode": "dynamic", "provisioning": {"source": "none"}}),
                "case-sensitive",
            ),
            (
                json!({"trust_bundle_cert": "/etc/tb.pem", "provisioning": {"source": "none"}}),
                "bare path",
            ),
            (
                json!({"provisioning": {"source": "none"}, "agent": {"config": {"image": "i:1.5.1"}, "env": {"OptimizeForPerformance": false}}}),
                "must be a string",
            ),
            (
                json!({"provisioning": {"source": "none"}, "agent": {"env": {}}}),
                "agent.config`: is required",
            ),
            (
                json!({"provisioning": {"source": "none"}, "moby_runtime": {"uri": "unix:///var/run/docker.sock"}}),
                "moby_runtime.network`: is required",
            ),
            (
                json!({"provisioning": {"source": "none"}, "image_garbage_collection": {"cleanup_recurrence": "12h"}}),
                "whole number of days",
            ),
            (
                json!({"provisioning": {"source": "none"}, "image_garbage_collection": {"cleanup_time": "25:00"}}),
                "HH:MM",
            ),
            (
                json!({"provisioning": {"source": "none"}, "edge_ca": {"cert": "file:///c"}}),
                "edge_ca.pk`: is required",
            ),
            (
                json!({"provisioning": {"source": "none"}, "edge_ca": {"cert": "file:///c", "pk": "file:///k", "method": "est"}}),
                "mixes shapes",
            ),
            (
                json!({"provisioning": {"source": "none"}, "edge_ca": {"method": "self_signed", "expiry_days": 0}}),
                "greater than 0",
            ),
            (json!({"hostname": "x"}), "provisioning`: is required"),
        ];
        for (v, want) in cases {
            let ps = problems(v.clone());
            assert!(
                ps.iter().any(|p| p.contains(want)),
                "{v}: wanted {want:?}, got {ps:?}"
            );
        }
    }
}
