//! The production-checklist findings for a super config: quickstart Edge CA, rolling or debug runtime images,
//! an `UpstreamProtocol` that is not one of the four, elevated docker permissions, and certificates given as
//! URLs `iotedge config apply` accepts but the certificates service cannot read (anything but `file:`).
//!
//! Findings are advice (warnings, or errors under `production: true`); the caller decides which. It must not
//! hold the rules `iotedge config apply` enforces (that is `validate`'s). Pure: no I/O.

use serde_json::Value;

use super::model::{edge_ca_shape, EdgeCaShape, SuperConfig};

/// The four valid `UpstreamProtocol` values.
pub const UPSTREAM_PROTOCOLS: &[&str] = &["Amqp", "AmqpWs", "Mqtt", "MqttWs"];

/// Production-checklist findings (warnings, or errors under `production: true`).
pub fn production_findings(c: &SuperConfig) -> Vec<String> {
    let mut out = Vec::new();
    if edge_ca_shape(c.edge_ca.as_ref()) == Some(EdgeCaShape::Quickstart) {
        out.push("the Edge CA is a quickstart (auto-generated, 90-day, self-signed) certificate: the production checklist requires your own Edge CA (edge_ca cert + pk, or issued)".to_string());
    }
    if let Some(a) = &c.agent {
        if let Some(f) = image_finding(&a.config.image) {
            out.push(format!("agent.config.image: {f}"));
        }
        if let Some(Value::String(up)) = a.env.get("UpstreamProtocol") {
            if !UPSTREAM_PROTOCOLS.contains(&up.as_str()) {
                out.push(format!(
                    "agent.env.UpstreamProtocol: `{up}` is not one of {} (case-sensitive)",
                    UPSTREAM_PROTOCOLS.join(", ")
                ));
            }
        }
    }
    let certs = [
        ("trust_bundle_cert", c.trust_bundle_cert.as_deref()),
        (
            "edge_ca.cert",
            c.edge_ca.as_ref().and_then(|e| e.cert.as_deref()),
        ),
    ];
    for (key, url) in certs {
        if let Some(u) = url.filter(|u| !u.starts_with("file:")) {
            out.push(format!("{key}: `{u}` is accepted by `iotedge config apply` but aziot-certd reads only `file://` certificates; use a file:///... URL"));
        }
    }
    if c.allow_elevated_docker_permissions == Some(true) {
        out.push("allow_elevated_docker_permissions = true lets modules gain root on the device; the production checklist says keep it false".to_string());
    }
    out
}

/// Is a runtime image tag pinned to a full version, and not a debug build? Returns the finding if not.
pub fn image_finding(image: &str) -> Option<String> {
    let (repo, tag) = match image.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (image, "latest"),
    };
    if tag.ends_with(".debug") || tag.ends_with("-debug") {
        return Some(format!(
            "`{image}` is a debug image; use the release image in production"
        ));
    }
    if tag.contains('@') || repo.contains('@') {
        return None;
    }
    let parts: Vec<&str> = tag.split('-').next().unwrap_or(tag).split('.').collect();
    let pinned = parts.len() >= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if !pinned {
        return Some(format!(
            "`{image}` uses a rolling tag (`{tag}`); pin a full version like `1.5.21` so every device runs the same runtime"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iotedge::config::testing::{base, cfg};
    use serde_json::json;

    #[test]
    fn production_findings_are_reported() {
        let mut v = base();
        v["agent"]["config"]["image"] = json!("mcr.microsoft.com/azureiotedge-agent:1.5");
        v["agent"]["env"] = json!({"UpstreamProtocol": "amqpws"});
        v.as_object_mut().unwrap().remove("edge_ca");
        let f = production_findings(&cfg(v));
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(image_finding("x/azureiotedge-hub:1.5.21-linux-arm32v7.debug").is_some());
        assert!(image_finding("x/azureiotedge-hub:1.5.21").is_none());
        assert!(image_finding("x/azureiotedge-hub").is_some());
        let mut v = base();
        v["trust_bundle_cert"] = json!("https://example.com/root.pem");
        let f = production_findings(&cfg(v));
        assert!(f.len() == 1 && f[0].contains("only `file://`"), "{f:?}");
    }
}
