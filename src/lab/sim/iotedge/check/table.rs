//! The table of `iotedge check`: its four sections in the real order, and in each the check ids, their
//! descriptions and the function that evaluates them.
//!
//! It must not evaluate anything itself beyond one-line rules for checks a lab device cannot really perform
//! (documented in `check`), nor print.

use serde_json::json;

use super::edge::{
    aziot_edge_version, check_agent_image, container_engine, container_engine_dns,
    container_engine_ipv6, container_engine_logrotate, edged_well_formed, parent_hostname,
    proxy_settings, storage_mounted, upstream,
};
use super::identity::{
    aziot_version, certs_match_keys, certs_preloaded, certs_read, daemon_running,
    host_connect_iothub, hostname_check, identity_cert_expiry, key_pairs_read, local_ca_expiry,
    up_to_date, well_formed_daemon,
};
use super::model::{CheckFn, Res};

/// A section: its title and its checks (id, description, function).
type Section = (
    &'static str,
    &'static [(&'static str, &'static str, CheckFn)],
);

const IDENTITY_CONFIG: &[(&str, &str, CheckFn)] = &[
    (
        "keyd-config-well-formed",
        "keyd configuration is well-formed",
        |s, o, c, _| well_formed_daemon(s, o, c, "keyd"),
    ),
    (
        "certd-config-well-formed",
        "certd configuration is well-formed",
        |s, o, c, _| well_formed_daemon(s, o, c, "certd"),
    ),
    (
        "tpmd-config-well-formed",
        "tpmd configuration is well-formed",
        |s, o, c, _| well_formed_daemon(s, o, c, "tpmd"),
    ),
    (
        "identityd-config-well-formed",
        "identityd configuration is well-formed",
        |s, o, c, _| well_formed_daemon(s, o, c, "identityd"),
    ),
    (
        "configs-up-to-date",
        "daemon configurations up-to-date with config.toml",
        |s, _, _, _| Ok(up_to_date(s, &["keyd", "certd", "identityd", "tpmd"])),
    ),
    (
        "hostname",
        "identityd config toml file specifies a valid hostname",
        hostname_check,
    ),
    (
        "aziot-version",
        "aziot-identity-service package is up-to-date",
        aziot_version,
    ),
    (
        "host-local-time",
        "host time is close to reference time",
        |_, _, _, info| {
            *info = json!({"offset": 0});
            Ok(Res::Ok)
        },
    ),
    (
        "identity-certificate-expiry",
        "production readiness: identity certificates expiry",
        identity_cert_expiry,
    ),
    (
        "est-identity-and-bootstrap-certificate-expiry",
        "production readiness: EST identity and bootstrap certificates expiry",
        |_, _, c, _| {
            Ok(if c.certd.is_none() {
                Res::Skipped
            } else {
                Res::Ignored
            })
        },
    ),
    (
        "local-ca-certificate-expiry",
        "production readiness: Local CA certificates expiry",
        local_ca_expiry,
    ),
    (
        "certs-preloaded",
        "preloaded certificates are valid",
        certs_preloaded,
    ),
    ("keyd-running", "keyd is running", |s, _, c, _| {
        daemon_running(s, c, "keyd")
    }),
    ("certd-running", "certd is running", |s, _, c, _| {
        daemon_running(s, c, "certd")
    }),
    ("tpmd-running", "tpmd is running", |s, _, c, _| {
        daemon_running(s, c, "tpmd")
    }),
    ("identityd-running", "identityd is running", |s, _, c, _| {
        daemon_running(s, c, "identityd")
    }),
    (
        "certs-read",
        "read all preloaded certificates from the Certificates Service",
        certs_read,
    ),
    (
        "key-pairs-read",
        "read all preloaded key pairs from the Keys Service",
        key_pairs_read,
    ),
    (
        "est-server-https",
        "check all EST server URLs utilize HTTPS",
        |_, _, c, _| {
            Ok(if c.certd.is_none() {
                Res::Skipped
            } else {
                Res::Ok
            })
        },
    ),
    (
        "certs-match-private-keys",
        "ensure all preloaded certificates match preloaded private keys with the same ID",
        certs_match_keys,
    ),
];

const IDENTITY_CONNECTIVITY: &[(&str, &str, CheckFn)] = &[
    (
        "host-connect-iothub-amqp",
        "host can connect to and perform TLS handshake with iothub AMQP port",
        |_, _, c, i| host_connect_iothub(c, i, 5671),
    ),
    (
        "host-connect-iothub-https",
        "host can connect to and perform TLS handshake with iothub HTTPS / WebSockets port",
        |_, _, c, i| host_connect_iothub(c, i, 443),
    ),
    (
        "host-connect-iothub-mqtt",
        "host can connect to and perform TLS handshake with iothub MQTT port",
        |_, _, c, i| host_connect_iothub(c, i, 8883),
    ),
    (
        "host-connect-dps-endpoint",
        "host can connect to and perform TLS handshake with DPS endpoint",
        |_, _, c, i| {
            Ok(match &c.identityd {
                None => Res::Skipped,
                Some(id) if id.source == "dps" => {
                    *i = json!({"dps_endpoint": id.global_endpoint});
                    if c.airgapped {
                        super::model::offline(
                            "Could not connect to DPS endpoint : could not complete TLS handshake",
                            id.global_endpoint
                                .as_deref()
                                .unwrap_or("global.azure-devices-provisioning.net")
                                .trim_start_matches("https://")
                                .trim_end_matches('/'),
                        )
                    } else {
                        Res::Ok
                    }
                }
                Some(_) => Res::Ignored,
            })
        },
    ),
];

const EDGE_CONFIG: &[(&str, &str, CheckFn)] = &[
    ("aziot-edged-config-well-formed", "aziot-edged configuration is well-formed", edged_well_formed),
    ("config-up-to-date", "configuration up-to-date with config.toml", |s, _, _, _| Ok(up_to_date(s, &["edged"]))),
    ("container-engine-uri", "container engine is installed and functional", container_engine),
    ("parent_hostname", "configuration has correct parent_hostname", parent_hostname),
    ("container-resolve-parent-hostname", "config.toml parent hostname is resolvable from inside container", |_, _, c, _| {
        Ok(match (&c.settings, &c.parent_hostname) {
            (None, _) => Res::Skipped,
            (Some(_), None) => Res::Ignored,
            (Some(_), Some(p)) if p.parse::<std::net::IpAddr>().is_ok() => Res::Ignored,
            _ if !c.docker_ok => Res::Skipped,
            _ => Res::Ok,
        })
    }),
    ("connect-management-uri", "configuration has correct URIs for daemon mgmt endpoint", |_, _, c, i| {
        Ok(if c.settings.is_none() || !c.docker_ok {
            Res::Skipped
        } else {
            *i = json!({"mgmt_uri": "unix:///var/run/iotedge/mgmt.sock"});
            Res::Ok
        })
    }),
    ("aziot-edge-version", "aziot-edge package is up-to-date", aziot_edge_version),
    ("container-local-time", "container time is close to host time", |_, _, c, _| Ok(if c.docker_ok { Res::Ok } else { Res::Skipped })),
    ("container-engine-dns", "DNS server", container_engine_dns),
    ("container-engine-ipv6", "IPv6 network configuration", container_engine_ipv6),
    ("container-engine-logrotate", "production readiness: logs policy", container_engine_logrotate),
    ("edge-agent-storage-mounted-from-host", "production readiness: Edge Agent's storage directory is persisted on the host filesystem", |s, _, c, i| storage_mounted(s, c, i, "edgeAgent")),
    ("edge-hub-storage-mounted-from-host", "production readiness: Edge Hub's storage directory is persisted on the host filesystem", |s, _, c, i| storage_mounted(s, c, i, "edgeHub")),
    ("check-agent-image", "Agent image is valid and can be pulled from upstream", check_agent_image),
    ("proxy-settings", "proxy settings are consistent in aziot-edged, aziot-identityd, moby daemon and config.toml", proxy_settings),
];

const EDGE_CONNECTIVITY: &[(&str, &str, CheckFn)] = &[
    (
        "container-default-connect-upstream-amqp",
        "container on the default network can connect to upstream AMQP port",
        |_, _, c, _| upstream(c, false),
    ),
    (
        "container-default-connect-upstream-https",
        "container on the default network can connect to upstream HTTPS / WebSockets port",
        |_, _, c, _| upstream(c, false),
    ),
    (
        "container-default-connect-upstream-mqtt",
        "container on the default network can connect to upstream MQTT port",
        |_, _, c, _| upstream(c, true),
    ),
    (
        "container-connect-upstream-amqp",
        "container on the IoT Edge module network can connect to upstream AMQP port",
        |_, _, c, _| upstream(c, false),
    ),
    (
        "container-connect-upstream-https",
        "container on the IoT Edge module network can connect to upstream HTTPS / WebSockets port",
        |_, _, c, _| upstream(c, false),
    ),
    (
        "container-connect-upstream-mqtt",
        "container on the IoT Edge module network can connect to upstream MQTT port",
        |_, _, c, _| upstream(c, true),
    ),
];

/// Every check id in execution order, with its section.
pub fn all_checks() -> Vec<(&'static str, &'static str, &'static str)> {
    let mut v = Vec::new();
    for (section, list) in sections() {
        for (id, desc, _) in list {
            v.push((section, *id, *desc));
        }
    }
    v
}

pub(super) fn sections() -> [Section; 4] {
    [
        (
            "Configuration checks (aziot-identity-service)",
            IDENTITY_CONFIG,
        ),
        (
            "Connectivity checks (aziot-identity-service)",
            IDENTITY_CONNECTIVITY,
        ),
        ("Configuration checks", EDGE_CONFIG),
        ("Connectivity checks", EDGE_CONNECTIVITY),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_check_id_is_present_once() {
        let ids: Vec<&str> = all_checks().iter().map(|(_, id, _)| *id).collect();
        for expected in [
            "keyd-config-well-formed",
            "certd-config-well-formed",
            "tpmd-config-well-formed",
            "identityd-config-well-formed",
            "configs-up-to-date",
            "hostname",
            "aziot-version",
            "host-local-time",
            "identity-certificate-expiry",
            "est-identity-and-bootstrap-certificate-expiry",
            "local-ca-certificate-expiry",
            "certs-preloaded",
            "keyd-running",
            "certd-running",
            "tpmd-running",
            "identityd-running",
            "certs-read",
            "key-pairs-read",
            "est-server-https",
            "certs-match-private-keys",
            "host-connect-iothub-amqp",
            "host-connect-iothub-https",
            "host-connect-iothub-mqtt",
            "host-connect-dps-endpoint",
            "aziot-edged-config-well-formed",
            "config-up-to-date",
            "container-engine-uri",
            "parent_hostname",
            "container-resolve-parent-hostname",
            "connect-management-uri",
            "aziot-edge-version",
            "container-local-time",
            "container-engine-dns",
            "container-engine-ipv6",
            "container-engine-logrotate",
            "edge-agent-storage-mounted-from-host",
            "edge-hub-storage-mounted-from-host",
            "check-agent-image",
            "proxy-settings",
            "container-default-connect-upstream-amqp",
            "container-default-connect-upstream-https",
            "container-default-connect-upstream-mqtt",
            "container-connect-upstream-amqp",
            "container-connect-upstream-https",
            "container-connect-upstream-mqtt",
        ] {
            assert_eq!(
                ids.iter().filter(|i| **i == expected).count(),
                1,
                "{expected}"
            );
        }
        assert_eq!(ids.len(), 45);
    }
}
