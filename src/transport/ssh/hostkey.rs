//! Host-key checking for the SSH client: the russh callback that verifies the server's key or host certificate
//! against known_hosts (OpenSSH's rules: hashed names, wildcards, negation, `@cert-authority`, `@revoked`), the
//! host-key algorithms asked for first, and `accept-new` recording. The file format and matching live in
//! `transport::known_hosts`; this module only feeds it russh's keys and certificates and words the refusals
//! (what changed, which file and line, how to fix it). It must not authenticate or open channels.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use russh::client;
use russh::keys::{Algorithm, Certificate, PublicKey, PublicKeyBase64};

use super::{HostKeyPolicy, Shared, Target};
use crate::transport::known_hosts::{
    self, Appended, CertInfo, KnownHosts, KnownHostsFile, Verdict,
};

/// What went wrong inside a russh callback (the host-key check is ours, the rest is russh's).
#[derive(Debug, thiserror::Error)]
pub(super) enum HandlerError {
    /// A protocol or I/O error.
    #[error(transparent)]
    Ssh(#[from] russh::Error),
    /// The host key was refused: the message says why and what to do.
    #[error("{0}")]
    HostKey(String),
}

/// The russh callbacks for one connection: host-key verification.
pub(super) struct ClientHandler {
    pub(super) shared: Arc<Shared>,
    pub(super) target: Arc<Target>,
}

impl client::Handler for ClientHandler {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        self.shared
            .check_host_key(&self.target, key)
            .await
            .map(|_| true)
            .map_err(HandlerError::HostKey)
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(super) fn key_blob(k: &PublicKey) -> Vec<u8> {
    k.public_key_bytes()
}

fn cert_info(cert: &Certificate) -> CertInfo {
    CertInfo {
        ca_blob: key_blob(&PublicKey::new(cert.signature_key().clone(), "")),
        key_blob: key_blob(&PublicKey::new(cert.public_key().clone(), "")),
        signature_valid: cert.verify_signature().is_ok(),
        is_host: cert.cert_type() == russh::keys::ssh_key::certificate::CertType::Host,
        principals: cert.valid_principals().to_vec(),
        valid_after: cert.valid_after(),
        valid_before: cert.valid_before(),
        critical_options: cert.critical_options().0.keys().cloned().collect(),
    }
}

impl Shared {
    fn known_file(&self, path: &Path) -> Arc<KnownHostsFile> {
        if let Some(f) = self.known.read().ok().and_then(|m| m.get(path).cloned()) {
            return f;
        }
        let f = match KnownHostsFile::load(path) {
            Ok(f) => f,
            Err(e) => {
                self.warn_once(format!("kh:{}", path.display()), None, e.to_string());
                KnownHostsFile::parse(path, "")
            }
        };
        for (line, why) in &f.skipped {
            self.warn_once(
                format!("khl:{}:{line}", path.display()),
                None,
                format!("{}:{line}: ignored known_hosts line: {why}", path.display()),
            );
        }
        let f = Arc::new(f);
        if let Ok(mut m) = self.known.write() {
            m.entry(path.to_path_buf()).or_insert_with(|| f.clone());
        }
        f
    }

    fn known_hosts(&self, t: &Target) -> KnownHosts {
        KnownHosts {
            files: t
                .user_known_hosts
                .iter()
                .chain(t.global_known_hosts.iter())
                .map(|p| self.known_file(p))
                .collect(),
        }
    }

    pub(super) fn client_config(&self, t: &Target) -> Arc<client::Config> {
        let kh = self.known_hosts(t);
        let names = t.known_hosts_names();
        let mut preferred = russh::Preferred::default();
        let known = kh.known_types(&names);
        if !known.is_empty() {
            // Like OpenSSH: ask first for the key types we already know for this host.
            let is_known = |a: &Algorithm| {
                known.iter().any(|k| {
                    (k == "ssh-rsa" && matches!(a, Algorithm::Rsa { .. })) || a.as_str() == k
                })
            };
            let mut keys: Vec<Algorithm> = preferred
                .key
                .iter()
                .filter(|a| is_known(a))
                .cloned()
                .collect();
            keys.extend(preferred.key.iter().filter(|a| !is_known(a)).cloned());
            preferred.key = Cow::Owned(keys);
        }
        if kh.has_cert_authority(&names) {
            preferred.host_key_certificates = Cow::Owned(preferred.key.to_vec());
        }
        Arc::new(client::Config {
            keepalive_interval: t.keepalive.0,
            keepalive_max: t.keepalive.1,
            nodelay: true,
            preferred,
            ..Default::default()
        })
    }

    async fn check_host_key(
        &self,
        t: &Target,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<(), String> {
        let names = t.known_hosts_names();
        let lookup = names.first().cloned().unwrap_or_default();
        if t.policy == HostKeyPolicy::Off {
            // Once per place that turned it off (an inventory group, a config line), not once per device.
            self.warn_once(
                format!("off:{}", t.policy_source.as_deref().unwrap_or("?")),
                Some(&t.name),
                format!(
                    "WARNING: host key checking is OFF for {} ({lookup}){} and every host configured the same way: \
                     edgefleet cannot tell these devices from impostors. Remove ansible_ssh_host_key_checking=false / \
                     StrictHostKeyChecking=no and use --host-key-policy accept-new instead.",
                    t.name,
                    t.policy_source
                        .as_deref()
                        .map(|s| format!(", set in {s}"))
                        .unwrap_or_default()
                ),
            );
            return Ok(());
        }
        let kh = self.known_hosts(t);
        let mut cert_note = None;
        let blob = match key {
            russh::keys::PublicKeyOrCertificate::Certificate(cert) => {
                let info = cert_info(cert);
                match kh.check_cert(&names, t.principal(), &info, unix_now()) {
                    Ok(Verdict::Trusted(_)) => return Ok(()),
                    Ok(Verdict::Revoked(l)) => {
                        return Err(format!(
                            "the host certificate of {} ({lookup}) or its CA is marked @revoked at {l}; refusing to connect",
                            t.name
                        ))
                    }
                    Ok(_) => {}
                    Err(why) => cert_note = Some(why),
                }
                info.key_blob
            }
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key_blob(key),
        };
        let ktype = known_hosts::blob_key_type(&blob).unwrap_or_default();
        let fp = known_hosts::fingerprint(&blob);
        let files = t
            .user_known_hosts
            .iter()
            .chain(t.global_known_hosts.iter())
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let cert_text = cert_note
            .map(|n| format!(" (its host certificate was not accepted: {n})"))
            .unwrap_or_default();
        match kh.check_key(&names, &blob) {
            Verdict::Trusted(_) => Ok(()),
            Verdict::Revoked(l) => Err(format!(
                "the host key of {} ({lookup}, {ktype} {fp}) is marked @revoked at {l}; refusing to connect",
                t.name
            )),
            Verdict::Changed(l) => Err(changed_message(t, &lookup, &ktype, &fp, &l)),
            Verdict::OtherTypes(l, types) => Err(format!(
                "host key for {} ({lookup}) not trusted: the server offered {ktype} {fp}, but {l} records only {} \
                 key(s) for it. If the device really changed its key type, remove the old line \
                 (ssh-keygen -R '{lookup}' -f {}) and connect again with --host-key-policy accept-new",
                t.name,
                types.join(", "),
                l.path.display()
            )),
            Verdict::Unknown => match t.policy {
                HostKeyPolicy::AcceptNew => self.record_new(t, &names, blob, &lookup, &ktype, &fp).await,
                _ => Err(format!(
                    "unknown host key for {} ({lookup}): {ktype} {fp}{cert_text}; it is not in {files}. \
                     Check the fingerprint on the device (ssh-keygen -lf /etc/ssh/ssh_host_{}_key.pub) and \
                     add it, or run with --host-key-policy accept-new to record new devices on first contact",
                    t.name,
                    ktype.trim_start_matches("ssh-").split('-').next().unwrap_or("ed25519")
                )),
            },
        }
    }

    async fn record_new(
        &self,
        t: &Target,
        names: &[String],
        blob: Vec<u8>,
        lookup: &str,
        ktype: &str,
        fp: &str,
    ) -> Result<(), String> {
        let Some(path) = t.user_known_hosts.first().cloned() else {
            return Err(format!(
                "unknown host key for {} and no known_hosts file to record it in",
                t.name
            ));
        };
        let (hashed, names2, path2) = (t.hash_known_hosts, names.to_vec(), path.clone());
        let res = tokio::task::spawn_blocking(move || {
            known_hosts::append_new(&path2, &names2, &blob, hashed)
        })
        .await
        .map_err(|e| format!("recording the host key failed: {e}"))?;
        let (appended, fresh) = res.map_err(|e| e.to_string())?;
        if let Ok(mut m) = self.known.write() {
            m.insert(path.clone(), Arc::new(fresh));
        }
        match appended {
            Appended::Added(l) => {
                // OpenSSH says "Permanently added ... to the list of known hosts" on every first contact.
                self.warn_once(
                    format!("recorded:{}:{fp}", t.name),
                    Some(&t.name),
                    format!(
                        "permanently added the host key of {} ({lookup}) {ktype} {fp} to {}:{l}",
                        t.name,
                        path.display()
                    ),
                );
                Ok(())
            }
            Appended::AlreadyThere(Verdict::Trusted(_)) => Ok(()),
            Appended::AlreadyThere(Verdict::Changed(l)) => {
                Err(changed_message(t, lookup, ktype, fp, &l))
            }
            Appended::AlreadyThere(v) => Err(format!(
                "host key for {} ({lookup}) not recorded: {} says {v:?}",
                t.name,
                path.display()
            )),
        }
    }
}

fn changed_message(
    t: &Target,
    lookup: &str,
    ktype: &str,
    fp: &str,
    l: &known_hosts::Location,
) -> String {
    format!(
        "HOST KEY CHANGED for {} ({lookup}): the server offered {ktype} {fp}, but {l} records a different key. \
         Someone may be intercepting the connection (man-in-the-middle), or the device was re-installed. \
         If you know why it changed, remove the old key with `ssh-keygen -R '{lookup}' -f {}` and connect again",
        t.name,
        l.path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ssh/keys");
    fn cert(name: &str) -> Certificate {
        Certificate::read_file(Path::new(&format!("{FIX}/{name}"))).unwrap()
    }

    fn kh(text: &str) -> KnownHosts {
        KnownHosts {
            files: vec![Arc::new(KnownHostsFile::parse("kh", text))],
        }
    }

    #[test]
    fn real_host_certificates_verify_against_cert_authority_lines() {
        let ca = std::fs::read_to_string(format!("{FIX}/ca.pub")).unwrap();
        let mut it = ca.split_whitespace();
        let line = format!(
            "@cert-authority *.example,127.0.0.1 {} {}",
            it.next().unwrap(),
            it.next().unwrap()
        );
        let set = kh(&line);
        let names = vec!["device1.example".to_string()];
        let good = cert_info(&cert("host_ed25519-cert.pub"));
        assert!(good.signature_valid && good.is_host);
        assert_eq!(good.principals, vec!["device1.example", "127.0.0.1"]);
        assert!(matches!(
            set.check_cert(&names, "device1.example", &good, unix_now()),
            Ok(Verdict::Trusted(_))
        ));
        // Certified key is the plain host key.
        let host = std::fs::read_to_string(format!("{FIX}/host_ed25519.pub")).unwrap();
        let hk =
            russh::keys::parse_public_key_base64(host.split_whitespace().nth(1).unwrap()).unwrap();
        assert_eq!(good.key_blob, key_blob(&hk));
        let expired = cert_info(&cert("host_ed25519-cert-expired.pub"));
        assert!(set
            .check_cert(&names, "device1.example", &expired, unix_now())
            .unwrap_err()
            .contains("expired"));
        let user = cert_info(&cert("host_ed25519-cert-user.pub"));
        assert!(!user.is_host);
        assert!(set
            .check_cert(&names, "device1.example", &user, unix_now())
            .is_err());
        // Tampering with the principals breaks the CA signature.
        let mut c = cert("host_ed25519-cert.pub");
        let tampered = {
            let mut bytes = c.to_bytes().unwrap();
            let pos = bytes.windows(7).position(|w| w == b"device1").unwrap();
            bytes[pos] = b'D';
            c = Certificate::from_bytes(&bytes).unwrap();
            cert_info(&c)
        };
        assert!(!tampered.signature_valid);
        assert!(set
            .check_cert(
                &["Device1.example".into()],
                "Device1.example",
                &tampered,
                unix_now()
            )
            .is_err());
    }
}
