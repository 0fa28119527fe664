//! The IoT Edge 1.5 super config (`/etc/aziot/config.toml`): typed model, validation, deterministic rendering.
//!
//! Owns every rule from the 1.5 sources that `iotedge config apply` enforces (so a bad config is refused before
//! any device is contacted, naming the key), plus what the device does NOT catch: unknown keys are silently
//! ignored by the real `iotedge`, so here every table is `deny_unknown_fields` and a typo gets a "did you mean";
//! likewise known keys the device drops (another provisioning source's or `[edge_ca]` shape's, half an EST
//! credential) are refused. Checked against the device's verdicts by `tests/it/config_variants.rs`. Also the
//! production-checklist warnings (rolling or debug runtime images, quickstart Edge CA, bad UpstreamProtocol,
//! certificates certd cannot read). Pure: no I/O.
//!
//! By concern: `model` (the serde types of the top level and the identity-service tables, and each table's
//! keys) and `runtime` (the IoT Edge runtime tables), `values` (how the device reads URLs, key locations,
//! policies, durations), `problems` (deserializing with errors that name the key, did-you-mean), `validate`
//! and `validate_runtime` (the 1.5 rules), `checklist` (production findings), `text` (render, parse with the
//! device's TOML 1.0 grammar, compare). Everything callers use is re-exported here: use
//! `crate::iotedge::config::X`. This file must hold no logic of its own.

mod checklist;
mod model;
mod problems;
mod runtime;
mod text;
mod validate;
mod validate_runtime;
mod values;

pub use checklist::{image_finding, production_findings, UPSTREAM_PROTOCOLS};
pub use model::{
    connection_string_parts, edge_ca_shape, Agent, AgentConfig, Auth, AutoRenew, AziotMaxRequests,
    CertIssuance, CertIssue, Connect, ContentTrust, EdgeCa, EdgeCaShape, Est, EstAuth, ImageGc,
    IotedgeMaxRequests, KeySource, Listen, LocalCa, LocalId, MobyRuntime, Payload, Provisioning,
    RegistryAuth, SuperConfig, Tpm, TpmAuth, Watchdog,
};
pub use problems::{from_value, ConfigProblem, Problems};
pub use text::{parse_toml, render, same_meaning};
pub use validate::validate;

#[cfg(test)]
mod testing {
    //! Configs the concern tests share.

    use serde_json::{json, Value};

    use super::{from_value, validate, SuperConfig};

    pub(super) fn cfg(v: Value) -> SuperConfig {
        from_value(&v).unwrap()
    }

    pub(super) fn problems(v: Value) -> Vec<String> {
        match from_value(&v) {
            Ok(c) => validate(&c).iter().map(|p| p.to_string()).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    pub(super) fn base() -> Value {
        json!({
            "hostname": "edge-001",
            "provisioning": {"source": "manual", "connection_string": "HostName=h.azure-devices.net;DeviceId=edge-001;SharedAccessKey=YWJj"},
            "edge_ca": {"cert": "file:///var/aziot/certs/edge-ca.pem", "pk": "file:///var/aziot/secrets/edge-ca.key.pem"},
            "agent": {"name": "edgeAgent", "type": "docker", "config": {"image": "mcr.microsoft.com/azureiotedge-agent:1.5.21"}}
        })
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{base, cfg};
    use super::*;

    #[test]
    fn good_config_has_no_problems_and_renders_deterministically() {
        let c = cfg(base());
        assert!(validate(&c).is_empty());
        assert!(production_findings(&c).is_empty());
        let a = render(&c).unwrap();
        assert_eq!(a, render(&cfg(base())).unwrap());
        assert!(
            a.contains("[agent]\nname = \"edgeAgent\"\ntype = \"docker\""),
            "{a}"
        );
        assert!(a.contains("[edge_ca]"));
        // The rendered file parses back to the same config.
        let back = from_value(&parse_toml(&a).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
