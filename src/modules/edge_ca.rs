//! `edge_ca`: installs the Edge CA certificate chain, its private key, and optionally a trust bundle.
//!
//! Before contact: the chain and key are checked on the controller (see `iotedge::certs`). The key normally
//! comes from an age-encrypted file and is decrypted in memory only; it travels to the device over stdin and
//! lands with mode 0600 (owner aziotks) from the first byte. Layout: `/var/aziot/certs` 0755 aziotcs with
//! certs 0644, `/var/aziot/secrets` 0700 aziotks with keys 0600 (all configurable). The result gives the
//! `file://` URIs to reference from config.toml.

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::facts::sha256_hex;

/// The module.
pub struct EdgeCa;

/// The arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    cert: String,
    key: String,
    #[serde(default)]
    trust_bundle: Option<String>,
    #[serde(default = "certs_dir")]
    certs_dir: String,
    #[serde(default = "secrets_dir")]
    secrets_dir: String,
    #[serde(default = "cert_name")]
    cert_name: String,
    #[serde(default = "key_name")]
    key_name: String,
    #[serde(default = "tb_name")]
    trust_bundle_name: String,
    #[serde(default = "aziotcs")]
    cert_owner: String,
    #[serde(default = "aziotks")]
    key_owner: String,
    #[serde(default = "thirty")]
    min_days_left: i64,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    device_id: Option<String>,
    /// Optional device identity certificate (DPS or manual X.509 provisioning), installed beside the CA.
    #[serde(default)]
    identity_cert: Option<String>,
    /// Its private key (normally `.age`).
    #[serde(default)]
    identity_key: Option<String>,
    #[serde(default = "id_cert_name")]
    identity_cert_name: String,
    #[serde(default = "id_key_name")]
    identity_key_name: String,
}

fn id_cert_name() -> String {
    "device-identity.cert.pem".into()
}
fn id_key_name() -> String {
    "device-identity.key.pem".into()
}

fn certs_dir() -> String {
    "/var/aziot/certs".into()
}
fn secrets_dir() -> String {
    "/var/aziot/secrets".into()
}
fn cert_name() -> String {
    "edge-ca.cert.pem".into()
}
fn key_name() -> String {
    "edge-ca.key.pem".into()
}
fn tb_name() -> String {
    "trust-bundle.pem".into()
}
fn aziotcs() -> String {
    "aziotcs".into()
}
fn aziotks() -> String {
    "aziotks".into()
}
fn thirty() -> i64 {
    30
}

struct Material {
    chain: Vec<u8>,
    key: Vec<u8>,
    trust_bundle: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

fn read_local(path: &str, search: &[std::path::PathBuf]) -> Result<Vec<u8>, String> {
    let found = crate::template::search::find(search, "files", path).map_err(|e| e.to_string())?;
    if found.extension().map(|e| e == "age").unwrap_or(false) {
        let b = crate::vars::secrets::decrypt_file(&found).map_err(|d| d.to_string())?;
        crate::redact::register(&String::from_utf8_lossy(&b));
        Ok(b)
    } else {
        std::fs::read(&found).map_err(|e| format!("cannot read {}: {e}", found.display()))
    }
}

fn load(a: &Args, search: &[std::path::PathBuf]) -> Result<Material, String> {
    let chain = read_local(&a.cert, search).map_err(|e| format!("edge_ca: cert: {e}"))?;
    let key = read_local(&a.key, search).map_err(|e| format!("edge_ca: key: {e}"))?;
    let trust_bundle = match &a.trust_bundle {
        Some(t) => Some(read_local(t, search).map_err(|e| format!("edge_ca: trust_bundle: {e}"))?),
        None => None,
    };
    let identity = match (&a.identity_cert, &a.identity_key) {
        (Some(c), Some(k)) => Some((
            read_local(c, search).map_err(|e| format!("edge_ca: identity_cert: {e}"))?,
            read_local(k, search).map_err(|e| format!("edge_ca: identity_key: {e}"))?,
        )),
        (None, None) => None,
        _ => return Err(IDENTITY_PAIR.into()),
    };
    Ok(Material {
        chain,
        key,
        trust_bundle,
        identity,
    })
}

const IDENTITY_PAIR: &str = "edge_ca: give both identity_cert and identity_key, or neither";

fn verify(
    a: &Args,
    m: &Material,
    host: &str,
) -> Result<crate::iotedge::certs::EdgeCaInfo, ArgError> {
    let names: Vec<&str> = [a.hostname.as_deref(), a.device_id.as_deref(), Some(host)]
        .into_iter()
        .flatten()
        .collect();
    let info = crate::iotedge::certs::check_edge_ca(&m.chain, &m.key, a.min_days_left, &names)
        .map_err(|problems| {
            ArgError::new(format!("edge_ca ({}): {}", a.cert, problems.join("; ")))
        })?;
    if let Some(tb) = &m.trust_bundle {
        crate::iotedge::certs::pem_certs(tb)
            .map_err(|e| ArgError::key("trust_bundle", format!("edge_ca: trust_bundle: {e}")))?;
    }
    if let Some((cert, key)) = &m.identity {
        crate::iotedge::certs::check_identity(cert, key).map_err(|e| {
            ArgError::key(
                "identity_cert",
                format!("edge_ca: identity certificate: {e}"),
            )
        })?;
    }
    Ok(info)
}

fn join(dir: &str, name: &str) -> String {
    format!("{}/{}", dir.trim_end_matches('/'), name)
}

#[async_trait]
impl TypedModule for EdgeCa {
    type Args = Args;
    type State = ();

    fn name(&self) -> &'static str {
        "edge_ca"
    }

    fn check_args(&self, a: &Args) -> Result<(), ArgError> {
        if a.identity_cert.is_some() != a.identity_key.is_some() {
            return Err(ArgError::key(
                if a.identity_cert.is_some() {
                    "identity_cert"
                } else {
                    "identity_key"
                },
                IDENTITY_PAIR,
            ));
        }
        Ok(())
    }

    fn preflight(&self, a: &Args, cx: &ArgCtx<'_>) -> Result<Vec<String>, ArgError> {
        let m = load(a, cx.search).map_err(ArgError::new)?;
        let info = verify(a, &m, cx.host)?;
        Ok(if info.days_left < 90 {
            vec![format!("edge_ca: the Edge CA expires in {} days; plan its renewal (preloaded CAs are not renewed automatically)", info.days_left)]
        } else {
            vec![]
        })
    }

    fn prefetch(&self, a: &Args, _c: &Context) -> Vec<FactReq> {
        let mut r = vec![
            FactReq::File {
                path: a.certs_dir.clone(),
                content: false,
            },
            FactReq::File {
                path: a.secrets_dir.clone(),
                content: false,
            },
            FactReq::File {
                path: join(&a.certs_dir, &a.cert_name),
                content: false,
            },
            FactReq::File {
                path: join(&a.secrets_dir, &a.key_name),
                content: false,
            },
        ];
        if a.trust_bundle.is_some() {
            r.push(FactReq::File {
                path: join(&a.certs_dir, &a.trust_bundle_name),
                content: false,
            });
        }
        if a.identity_cert.is_some() {
            r.push(FactReq::File {
                path: join(&a.certs_dir, &a.identity_cert_name),
                content: false,
            });
            r.push(FactReq::File {
                path: join(&a.secrets_dir, &a.identity_key_name),
                content: false,
            });
        }
        r
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<()>, ModuleError> {
        let m = load(a, cx.search).map_err(ModuleError::Failed)?;
        let info = verify(a, &m, cx.host)?;
        let certs_dir = DirSpec {
            path: a.certs_dir.clone(),
            mode: Some(0o755),
            owner: Some(a.cert_owner.clone()),
            group: None,
        };
        let secrets_dir = DirSpec {
            path: a.secrets_dir.clone(),
            mode: Some(0o700),
            owner: Some(a.key_owner.clone()),
            group: None,
        };
        let mut files: Vec<(String, Vec<u8>, u32, String, bool, DirSpec)> = vec![
            (
                join(&a.certs_dir, &a.cert_name),
                m.chain.clone(),
                0o644,
                a.cert_owner.clone(),
                false,
                certs_dir.clone(),
            ),
            (
                join(&a.secrets_dir, &a.key_name),
                m.key.clone(),
                0o600,
                a.key_owner.clone(),
                true,
                secrets_dir.clone(),
            ),
        ];
        if let Some(tb) = &m.trust_bundle {
            files.push((
                join(&a.certs_dir, &a.trust_bundle_name),
                tb.clone(),
                0o644,
                a.cert_owner.clone(),
                false,
                certs_dir.clone(),
            ));
        }
        if let Some((c, k)) = &m.identity {
            files.push((
                join(&a.certs_dir, &a.identity_cert_name),
                c.clone(),
                0o644,
                a.cert_owner.clone(),
                false,
                certs_dir.clone(),
            ));
            files.push((
                join(&a.secrets_dir, &a.identity_key_name),
                k.clone(),
                0o600,
                a.key_owner.clone(),
                true,
                secrets_dir.clone(),
            ));
        }
        // Directories with the wrong mode/owner make the files unreadable to the services: fix them too.
        let mut dirs_ok = true;
        for d in [&certs_dir, &secrets_dir] {
            let f = cx.file(&d.path, false).await?;
            if !f.is_dir()
                || Some(f.mode) != d.mode
                || !d.owner.as_deref().map(|o| f.owner_is(o)).unwrap_or(true)
            {
                dirs_ok = false;
            }
        }
        let mut writes = Vec::new();
        let mut diffs = Vec::new();
        for (path, content, mode, owner, secret, dir) in files {
            let f = cx.file(&path, false).await?;
            let same = f.is_file()
                && f.sha256.as_deref() == Some(sha256_hex(&content).as_str())
                && f.mode == mode
                && f.owner_is(&owner);
            if same && dirs_ok {
                continue;
            }
            diffs.push(Diff {
                path: path.clone(),
                before: f
                    .exists
                    .then(|| "<previous certificate material>\n".to_string()),
                after: Some(if secret {
                    "<new key>\n".into()
                } else {
                    String::from_utf8_lossy(&content).into_owned()
                }),
                secret,
                attrs: vec![],
            });
            writes.push(FileWrite {
                path,
                content: Bytes::from(content),
                secret,
                mode: Some(mode),
                owner: Some(owner),
                group: None,
                backup: true,
                backup_beside: false,
                parent: Some(dir),
            });
        }
        let mut result = Map::new();
        result.insert(
            "cert_uri".into(),
            json!(format!("file://{}", join(&a.certs_dir, &a.cert_name))),
        );
        result.insert(
            "pk_uri".into(),
            json!(format!("file://{}", join(&a.secrets_dir, &a.key_name))),
        );
        if a.trust_bundle.is_some() {
            result.insert(
                "trust_bundle_uri".into(),
                json!(format!(
                    "file://{}",
                    join(&a.certs_dir, &a.trust_bundle_name)
                )),
            );
        }
        if m.identity.is_some() {
            result.insert(
                "identity_cert_uri".into(),
                json!(format!(
                    "file://{}",
                    join(&a.certs_dir, &a.identity_cert_name)
                )),
            );
            result.insert(
                "identity_pk_uri".into(),
                json!(format!(
                    "file://{}",
                    join(&a.secrets_dir, &a.identity_key_name)
                )),
            );
        }
        result.insert("common_name".into(), json!(info.common_name));
        result.insert("days_left".into(), json!(info.days_left));
        result.insert("key_type".into(), json!(info.key_type));
        if writes.is_empty() {
            return Ok(Plan::unchanged().with_result(result));
        }
        Ok(Plan::change(vec![Step::Write(writes)], ())
            .with_diffs(diffs)
            .with_result(result)
            .with_msg("Edge CA installed; IoT Edge picks it up on the next `iotedge config apply`"))
    }
}
