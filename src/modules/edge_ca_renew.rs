//! `edge_ca_renew`: renews a device's Edge CA when it is due, signed on the controller by the operator's issuing
//! CA, and undoes the renewal by itself when the device does not accept it.
//!
//! Before contact: the issuing CA (certificate, and its age-encrypted key, decrypted in memory only) passes
//! `iotedge::certs`'s checks (a CA, valid, the key matches, outlives the new certificate), or the run stops
//! naming the file. Plan (read-only): one gather (`facts::certs`: the device clock, config.toml, the Edge CA
//! file it names); the Edge CA is due when days left (by the CONTROLLER's clock) <= `renew_before`; a device
//! clock more than `max_clock_skew` seconds off is reported as a failure and never renewed (no renewal loop);
//! the quickstart or an EST Edge CA is skipped. When due, a new Edge CA (`<device id> Edge CA`, CA:TRUE
//! pathlen:0) is signed here with a fresh key. Check mode says which devices would renew and signs nothing.
//!
//! Apply, one guarded step: one round trip keeps the installed pair as `CERT.prev` / `KEY.prev` beside it,
//! streams the new chain and key over stdin (the key never in argv) into temp files that have their final mode
//! and owner before the first byte, renames both into place, runs `iotedge config apply`, and runs the verify
//! gather (`facts::iotedge`: services and edgeAgent back, `iotedge check`). The controller judges the answer
//! (`iotedge::renew::judge_renewal`); when it refuses, the rollback restores the `.prev` pair byte for byte and
//! applies again, and the device is reported failed: "renewed, verification failed, rolled back: REASON".

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use bytes::BytesMut;
use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::facts::certs::{certs_cmd, parse_certs, ConfigState};
use crate::iotedge::certs::{self as x509, CaFile, EdgeCaKey, IssuingCa};
use crate::iotedge::renew::{self, EdgeCaPaths, Rollback};

/// The module.
pub struct EdgeCaRenew;

/// The arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The issuing CA's certificate (PEM; the chain above it may follow), a controller file.
    ca_cert: String,
    /// Its private key, age-encrypted (`*.age`), a controller file.
    ca_key: String,
    /// Validity of a new Edge CA, in days.
    #[serde(default = "validity")]
    days: i64,
    /// Renew when this many days or fewer are left.
    #[serde(default = "renew_before")]
    renew_before: i64,
    /// `ec-p256`, `rsa-2048`, `rsa-3072`, `rsa-4096`.
    #[serde(default = "key_type")]
    key_type: String,
    /// The super config that names the Edge CA files.
    #[serde(default = "config")]
    config: String,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default = "aziotcs")]
    cert_owner: String,
    #[serde(default = "aziotks")]
    key_owner: String,
    /// Seconds to wait for the services and edgeAgent after `iotedge config apply`.
    #[serde(default = "two_min")]
    wait_timeout: u64,
    /// `iotedge check --dont-run` ids (connectivity checks on air-gapped devices).
    #[serde(default)]
    dont_run: Vec<String>,
    #[serde(default = "daemon")]
    daemon_json: String,
    /// Seconds the device clock may differ from the controller's.
    #[serde(default = "max_skew")]
    max_clock_skew: i64,
}

fn validity() -> i64 {
    x509::DEFAULT_VALIDITY_DAYS
}
fn renew_before() -> i64 {
    x509::DEFAULT_RENEW_BEFORE_DAYS
}
fn key_type() -> String {
    "ec-p256".into()
}
fn config() -> String {
    "/etc/aziot/config.toml".into()
}
fn aziotcs() -> String {
    "aziotcs".into()
}
fn aziotks() -> String {
    "aziotks".into()
}
fn two_min() -> u64 {
    120
}
fn daemon() -> String {
    "/etc/docker/daemon.json".into()
}
fn max_skew() -> i64 {
    renew::DEFAULT_MAX_CLOCK_SKEW_SECS
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Issuing CAs already checked in this process, by (certificate, key) path: the key is decrypted and parsed
/// once per run, not once per device.
type Issuers = Mutex<HashMap<(PathBuf, PathBuf), Arc<IssuingCa>>>;

fn issuers() -> &'static Issuers {
    static CACHE: OnceLock<Issuers> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn shown(p: &Path) -> String {
    crate::diag::display_path(p)
}

/// Find, read, decrypt and check the issuing CA; every problem names the file it is about and what to do.
fn load_issuer(a: &Args, search: &[PathBuf]) -> Result<Arc<IssuingCa>, ArgError> {
    let cert = crate::template::search::find(search, "files", &a.ca_cert).map_err(|e| {
        ArgError::key(
            "ca_cert",
            format!("edge_ca_renew: the issuing CA certificate: {e}"),
        )
    })?;
    let key = crate::template::search::find(search, "files", &a.ca_key)
        .map_err(|e| ArgError::key("ca_key", format!("edge_ca_renew: the issuing CA key: {e}")))?;
    if !crate::vars::secrets::is_age_path(&key) {
        return Err(ArgError::key(
            "ca_key",
            format!(
                "edge_ca_renew: {}: the issuing CA's key must be age-encrypted: run `edgefleet vault encrypt FILE` and give FILE.age (it is then decrypted in memory only)",
                shown(&key)
            ),
        ));
    }
    let id = (cert.clone(), key.clone());
    if let Some(i) = issuers().lock().ok().and_then(|c| c.get(&id).cloned()) {
        return Ok(i);
    }
    let cert_pem = std::fs::read(&cert).map_err(|e| {
        ArgError::key(
            "ca_cert",
            format!("edge_ca_renew: cannot read {}: {e}", shown(&cert)),
        )
    })?;
    let key_pem = crate::vars::secrets::decrypt_file_secret(&key).map_err(|d| {
        ArgError::key(
            "ca_key",
            format!("edge_ca_renew: the issuing CA key: {}", d.message),
        )
    })?;
    let issuer =
        x509::issuing_ca_checked(&cert_pem, key_pem.bytes(), now()).map_err(|problems| {
            let about_key = problems.iter().all(|(f, _)| *f == CaFile::Key);
            let text: Vec<String> = problems
                .into_iter()
                .map(|(f, m)| {
                    let file = if f == CaFile::Key { &key } else { &cert };
                    format!("{}: {m}", shown(file))
                })
                .collect();
            ArgError::key(
                if about_key { "ca_key" } else { "ca_cert" },
                format!("edge_ca_renew: issuing CA: {}", text.join("; ")),
            )
        })?;
    drop(key_pem);
    let issuer = Arc::new(issuer);
    if let Ok(mut c) = issuers().lock() {
        c.insert(id, issuer.clone());
    }
    Ok(issuer)
}

/// The cache key of the certificate gather for a config path.
fn gather_key(config: &str) -> String {
    format!("edge_ca_renew:certs:{config}")
}

/// Keeps the pair as `*.prev`, installs the new one from stdin, applies, verifies. Arguments: config, cert,
/// key, cert size, key size, cert owner, key owner, the verify gather command. Prints `\x1eEF:` markers
/// (`prev`, `installed`, `apply RC` + its output, `verify` + the gather); exits non-zero only when the new
/// pair could not be put in place (the old one then still is, or is restored here).
const RENEW: &str = r#"cfg=$1; cert=$2; key=$3; csize=$4; ksize=$5; cown=$6; kown=$7; vcmd=$8
ct=; kt=
trap 'if [ -n "$ct" ]; then rm -f -- "$ct"; fi; if [ -n "$kt" ]; then rm -f -- "$kt"; fi' EXIT
trap 'exit 129' HUP
trap 'exit 143' TERM
fail() { echo "edgefleet: $*" >&2; exit 1; }
for f in "$cert" "$key"; do [ -f "$f" ] || fail "$f does not exist: there is no Edge CA to renew"; done
for f in "$cert" "$key"; do
  t=$(mktemp -- "$f.prev.XXXXXX") || fail "cannot keep a copy of $f"
  if ! { cp -p -- "$f" "$t" && mv -f -- "$t" "$f.prev"; }; then rm -f -- "$t"; fail "cannot keep $f as $f.prev"; fi
done
printf '\036EF:prev\n'
ct=$(mktemp -- "$(dirname -- "$cert")/.edgefleet.XXXXXX") || fail "cannot create a temporary file beside $cert"
kt=$(mktemp -- "$(dirname -- "$key")/.edgefleet.XXXXXX") || fail "cannot create a temporary file beside $key"
chmod 0644 "$ct" && chown -- "$cown" "$ct" || fail "cannot give the new certificate mode 0644 and owner $cown"
chmod 0600 "$kt" && chown -- "$kown" "$kt" || fail "cannot give the new key mode 0600 and owner $kown"
head -c "$csize" > "$ct" || fail "writing the new certificate failed"
head -c "$ksize" > "$kt" || fail "writing the new key failed"
[ "$(wc -c < "$ct")" -eq "$csize" ] && [ "$(wc -c < "$kt")" -eq "$ksize" ] || fail "incomplete write of the new pair (connection lost?)"
sync -- "$ct" "$kt" 2>/dev/null || sync
mv -f -- "$kt" "$key" || fail "cannot move the new key into place"
kt=
if ! mv -f -- "$ct" "$cert"; then
  cp -p -- "$key.prev" "$key"
  fail "cannot move the new certificate into place (the previous key was put back)"
fi
ct=
sync -- "$cert" "$key" 2>/dev/null || sync
printf '\036EF:installed\n'
out=$(iotedge config apply -c "$cfg" 2>&1); rc=$?
printf '\036EF:apply %s\n%s\n' "$rc" "$out"
[ "$rc" -eq 0 ] || exit 0
printf '\036EF:verify\n'
sh -c "$vcmd"
exit 0"#;

/// Puts the `.prev` pair back where it differs from what is installed (byte for byte; safe however far the
/// renewal got), then applies again. Arguments: config, key, cert. Prints `restored [PATH...]`, then
/// `reapply RC` and its output when something was restored, or `restorefailed PATH`.
const ROLLBACK: &str = r#"cfg=$1; shift
restored=
for f; do
  [ -f "$f.prev" ] || continue
  if cmp -s -- "$f.prev" "$f"; then continue; fi
  t=$(mktemp -- "$(dirname -- "$f")/.edgefleet.XXXXXX") || { printf '\036EF:restorefailed %s\n' "$f"; exit 1; }
  if ! { cp -p -- "$f.prev" "$t" && mv -f -- "$t" "$f"; }; then rm -f -- "$t"; printf '\036EF:restorefailed %s\n' "$f"; exit 1; fi
  restored="$restored $f"
done
sync
printf '\036EF:restored%s\n' "$restored"
[ -n "$restored" ] || exit 0
out=$(iotedge config apply -c "$cfg" 2>&1); rc=$?
printf '\036EF:reapply %s\n%s\n' "$rc" "$out"
exit $rc"#;

/// What `interpret` needs.
pub struct Renewal {
    cert: String,
    key: String,
    reason: String,
    days_left: i64,
    common_name: String,
    not_after: i64,
}

fn judge(o: &Output) -> Result<(), String> {
    renew::judge_renewal(
        &renew::parse_renew_output(&o.stdout_str()),
        o.status.success(),
        &o.stderr_str(),
    )
}

#[async_trait]
impl TypedModule for EdgeCaRenew {
    type Args = Args;
    type State = Renewal;

    fn name(&self) -> &'static str {
        "edge_ca_renew"
    }

    fn applies_config(&self) -> bool {
        true
    }

    fn check_args(&self, a: &Args) -> Result<(), ArgError> {
        for (k, v, what, var) in [
            (
                "ca_cert",
                &a.ca_cert,
                "certificate",
                "edge_ca_renew_ca_cert",
            ),
            (
                "ca_key",
                &a.ca_key,
                "age-encrypted private key",
                "edge_ca_renew_ca_pk",
            ),
        ] {
            if v.trim().is_empty() {
                return Err(ArgError::key(
                    k,
                    format!("edge_ca_renew: {k} is empty: give the issuing CA's {what} (role variable {var})"),
                ));
            }
        }
        if a.days < 1 {
            return Err(ArgError::key(
                "days",
                format!(
                    "edge_ca_renew: days = {}: a new Edge CA must be valid for at least a day",
                    a.days
                ),
            ));
        }
        if a.renew_before < 0 || a.renew_before >= a.days {
            return Err(ArgError::key(
                "renew_before",
                format!(
                    "edge_ca_renew: renew_before = {} must be 0 or more and less than days = {}: otherwise every new Edge CA is due at once and each run renews again",
                    a.renew_before, a.days
                ),
            ));
        }
        if a.max_clock_skew < 0 {
            return Err(ArgError::key(
                "max_clock_skew",
                "edge_ca_renew: max_clock_skew is a number of seconds, 0 or more",
            ));
        }
        EdgeCaKey::parse(&a.key_type)
            .map(|_| ())
            .map_err(|e| ArgError::key("key_type", format!("edge_ca_renew: {e}")))
    }

    fn preflight(&self, a: &Args, cx: &ArgCtx<'_>) -> Result<Vec<String>, ArgError> {
        let issuer = load_issuer(a, cx.search)?;
        let left = x509::days_left(issuer.not_after, now());
        if left < a.days {
            return Err(ArgError::key(
                "days",
                format!(
                    "edge_ca_renew: the issuing CA `{}` ({}) expires in {left} days, before an Edge CA valid for days = {} would: lower days to at most {left}, or renew the issuing CA",
                    issuer.common_name, a.ca_cert, a.days
                ),
            ));
        }
        Ok(vec![])
    }

    fn prefetch(&self, a: &Args, _c: &Context) -> Vec<FactReq> {
        vec![FactReq::Command {
            key: gather_key(&a.config),
            cmd: certs_cmd(&a.config),
        }]
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<Renewal>, ModuleError> {
        let out = cx
            .fact_command(&gather_key(&a.config), certs_cmd(&a.config))
            .await?;
        if !out.status.success() {
            return Ok(Plan::fail(format!(
                "the certificate gather failed ({}): {}",
                out.status,
                out.stderr_str().trim()
            )));
        }
        let g = parse_certs(&out.stdout_str()).map_err(ModuleError::Failed)?;
        let text = match &g.config {
            ConfigState::Present(t) => t,
            ConfigState::Missing => {
                return Ok(Plan::fail(format!(
                    "{} does not exist: the device is not provisioned, so it has no Edge CA to renew (play playbooks/provision.yml first)",
                    a.config
                )))
            }
            ConfigState::Unreadable => {
                return Ok(Plan::fail(format!(
                    "{} cannot be read by the login user: set `become: true`",
                    a.config
                )))
            }
        };
        let (cert, key) = match renew::edge_ca_paths(text)
            .map_err(|e| ModuleError::Failed(format!("{}: {e}", a.config)))?
        {
            EdgeCaPaths::Files { cert, key } => (cert, key),
            EdgeCaPaths::Quickstart => return Ok(Plan::skip(
                "the device uses IoT Edge's quickstart Edge CA, which aziot-edged renews itself",
            )),
            EdgeCaPaths::Other(why) => return Ok(Plan::skip(why)),
        };
        let t = now();
        if let Some(p) = renew::clock_problem(g.device_time, t, a.max_clock_skew) {
            return Ok(Plan::fail(p));
        }
        let Some(file) = g.files.iter().find(|f| f.key == "cert" && f.path == cert) else {
            return Ok(Plan::fail(format!(
                "the Edge CA {cert} that {} names was not read by the gather",
                a.config
            )));
        };
        let pem = match &file.content {
            Ok(b) => b,
            Err(e) => {
                return Ok(Plan::fail(format!(
                    "cannot read the installed Edge CA {cert}: {e}"
                )))
            }
        };
        let expiries = match x509::pem_expiries(pem) {
            Ok(x) => x,
            Err(e) => {
                return Ok(Plan::fail(format!(
                    "the installed Edge CA {cert} is not a certificate ({e}): install one with roles/edge_ca first"
                )))
            }
        };
        let days_left = x509::days_left(expiries[0].not_after, t);
        let mut result = Map::new();
        result.insert("cert".into(), json!(cert));
        result.insert("key".into(), json!(key));
        result.insert("days_left".into(), json!(days_left));
        result.insert("renew_before".into(), json!(a.renew_before));
        let Some(reason) = renew::renewal_due(days_left, a.renew_before) else {
            result.insert("renewed".into(), json!(false));
            return Ok(Plan::unchanged().with_result(result).with_msg(format!(
                "kept: {days_left} days left > renew_before {}",
                a.renew_before
            )));
        };
        result.insert("reason".into(), json!(reason));
        let device_id = a.device_id.clone().unwrap_or_else(|| cx.host.to_string());
        let hostname = a.hostname.clone().unwrap_or_else(|| cx.host.to_string());
        let common_name = renew::edge_ca_common_name(&device_id);
        result.insert("common_name".into(), json!(common_name));
        let mut state = Renewal {
            cert: cert.clone(),
            key: key.clone(),
            reason: reason.clone(),
            days_left,
            common_name: common_name.clone(),
            not_after: 0,
        };
        if cx.check {
            return Ok(Plan::change(vec![], state)
                .with_result(result)
                .with_msg(format!("would renew the Edge CA {cert} ({reason})")));
        }
        let issuer = load_issuer(a, cx.search)?;
        let kt = EdgeCaKey::parse(&a.key_type).map_err(ModuleError::Failed)?;
        // Key generation (RSA especially) is CPU work: off the async workers, so other devices keep moving.
        let (cn, days, names) = (
            common_name.clone(),
            a.days,
            [hostname.clone(), device_id.clone()],
        );
        let new = tokio::task::spawn_blocking(move || {
            let names = [names[0].as_str(), names[1].as_str()];
            let new = issuer.issue(&x509::EdgeCaRequest {
                common_name: &cn,
                names: &names,
                key: kt,
                days,
                now: t,
            })?;
            // The same check roles/edge_ca runs before contact, so what is installed is what a play accepts.
            x509::check_edge_ca(new.chain_pem.as_bytes(), new.key_pem.as_bytes(), 0, &names)
                .map_err(|p| {
                    format!(
                        "the new Edge CA fails the pre-flight check: {}",
                        p.join("; ")
                    )
                })?;
            Ok::<_, String>(new)
        })
        .await
        .map_err(|e| ModuleError::Failed(format!("signing the new Edge CA stopped: {e}")))?
        .map_err(ModuleError::Failed)?;
        state.not_after = new.not_after;
        result.insert("not_after".into(), json!(x509::rfc3339(new.not_after)));
        let mut stdin = BytesMut::with_capacity(new.chain_pem.len() + new.key_pem.len());
        stdin.extend_from_slice(new.chain_pem.as_bytes());
        stdin.extend_from_slice(new.key_pem.as_bytes());
        let verify = crate::facts::iotedge::verify_cmd(
            a.wait_timeout,
            &a.config,
            &a.daemon_json,
            false,
            &a.dont_run,
        );
        let cmd = Cmd::new("set --")
            .arg(a.config.clone())
            .arg(cert.clone())
            .arg(key.clone())
            .arg(new.chain_pem.len().to_string())
            .arg(new.key_pem.len().to_string())
            .arg(a.cert_owner.clone())
            .arg(a.key_owner.clone())
            .arg(verify.to_shell())
            .raw(";")
            .raw(RENEW);
        drop(new);
        let limit = Some(std::time::Duration::from_secs(a.wait_timeout + 300));
        let rollback = Cmd::new("set --")
            .arg(a.config.clone())
            .arg(key.clone())
            .arg(cert.clone())
            .raw(";")
            .raw(ROLLBACK);
        let diffs = vec![
            Diff {
                path: cert.clone(),
                before: Some("<previous Edge CA>\n".into()),
                after: Some(format!(
                    "<new Edge CA `{common_name}`, valid until {}>\n",
                    x509::rfc3339(state.not_after)
                )),
                secret: false,
                attrs: vec![],
            },
            Diff {
                path: key.clone(),
                before: Some("<previous key>\n".into()),
                after: Some("<new key>\n".into()),
                secret: true,
                attrs: vec![],
            },
        ];
        Ok(Plan::change(
            vec![Step::Guarded {
                exec: cx.exec(cmd).secret_stdin(stdin.freeze()).timeout(limit),
                what: "renew the Edge CA".into(),
                judge: Judge::new(judge),
                rollback: cx.exec(rollback).timeout(limit),
                rollback_what: "restore the previous Edge CA".into(),
            }],
            state,
        )
        .with_result(result)
        .with_diffs(diffs)
        .touching(vec![
            Touched::Fact(gather_key(&a.config)),
            Touched::Path(cert.clone()),
            Touched::Path(key.clone()),
        ]))
    }

    fn interpret(&self, s: Renewal, ran: Ran) -> Outcome {
        let mut result = ran.result.clone();
        let Some((_, main)) = ran.outputs.first() else {
            return ran.outcome();
        };
        let parsed = renew::parse_renew_output(&main.stdout_str());
        let verdict = judge(main);
        let mut outcome = Outcome {
            changed: parsed.installed,
            ..Outcome::default()
        };
        result.insert("renewed".into(), json!(parsed.installed));
        match (verdict, ran.outputs.get(1)) {
            (Ok(()), _) => {
                result.insert("verified".into(), json!(true));
                result.insert("rolled_back".into(), json!(false));
                outcome.msg = Some(format!(
                    "Edge CA renewed ({}): `{}` valid until {}; verified (edgeAgent running, certificate checks pass); the previous pair is kept as {}.prev and {}.prev",
                    s.reason,
                    s.common_name,
                    x509::rfc3339(s.not_after),
                    s.cert,
                    s.key
                ));
            }
            (Err(why), None) => {
                result.insert("verified".into(), json!(false));
                outcome.failed = Some(format!("the Edge CA renewal failed: {why}"));
            }
            (Err(why), Some((_, rb))) => {
                result.insert("verified".into(), json!(false));
                let back =
                    renew::parse_rollback(&rb.stdout_str(), rb.status.success(), &rb.stderr_str());
                let rolled = matches!(back, Rollback::Restored { reapply_rc: 0, .. });
                result.insert("rolled_back".into(), json!(rolled));
                result.insert("verification_error".into(), json!(why));
                outcome.failed = Some(if !parsed.installed {
                    format!(
                        "the Edge CA was not renewed: {why}; the device keeps its Edge CA ({} days left)",
                        s.days_left
                    )
                } else {
                    match back {
                        Rollback::Restored { reapply_rc: 0, .. } => format!(
                            "renewed, verification failed, rolled back: {why}. The previous Edge CA was restored and applied again; it has {} days left",
                            s.days_left
                        ),
                        Rollback::Restored { reapply_rc, output } => format!(
                            "renewed, verification failed, rolled back, but applying the previous Edge CA again failed (exit {reapply_rc}: {}): {why}. The device needs attention",
                            output.lines().next().unwrap_or_default().trim()
                        ),
                        Rollback::NothingToRestore => format!(
                            "renewed, verification failed: {why}; the installed files already were the previous pair"
                        ),
                        Rollback::Failed(m) => format!(
                            "renewed, verification failed, and the rollback failed ({m}): {why}. The device needs attention: the previous pair is {}.prev and {}.prev",
                            s.cert, s.key
                        ),
                    }
                });
            }
        }
        outcome.result = result;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FactCache;
    use crate::template::Templar;
    use crate::transport::{ExitStatus, SharedTransport};

    const CONFIG: &str = "hostname = \"edge-1\"\n[edge_ca]\ncert = \"file:///var/aziot/certs/edge-ca.cert.pem\"\npk = \"file:///var/aziot/secrets/edge-ca.key.pem\"\n";

    /// An Edge CA-like certificate that expires `days` days from now (an hour past, so days left read exact).
    fn cert(days: i64) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "edge-1 Edge CA");
        let now = ::time::OffsetDateTime::now_utc();
        p.not_after = now + ::time::Duration::days(days) + ::time::Duration::hours(1);
        p.not_before = p.not_after - ::time::Duration::days(365);
        p.self_signed(&key).unwrap().pem().into_bytes()
    }

    /// What the certificate gather prints (a file's lines each after one space).
    fn gather(device_time: i64, config: Option<&str>, cert: Option<&[u8]>) -> String {
        let b = |x: &[u8]| {
            String::from_utf8_lossy(x)
                .lines()
                .map(|l| format!(" {l}\n"))
                .collect::<String>()
        };
        let mut s = format!("\u{1e}EF:time {device_time}\n");
        if let Some(c) = config {
            s.push_str(&format!("\u{1e}EF:config\n{}", b(c.as_bytes())));
            match cert {
                Some(pem) => s.push_str(&format!(
                    "\u{1e}EF:file cert ok /var/aziot/certs/edge-ca.cert.pem\n{}",
                    b(pem)
                )),
                None => {
                    s.push_str("\u{1e}EF:file cert missing /var/aziot/certs/edge-ca.cert.pem\n")
                }
            }
        } else {
            s.push_str("\u{1e}EF:config-missing\n");
        }
        s
    }

    async fn plan(out: String, check: bool) -> Plan<Renewal> {
        let args: Args = parse_args(
            "edge_ca_renew",
            &json!({"ca_cert": "ca.cert.pem", "ca_key": "ca.key.pem.age"}),
        )
        .unwrap();
        let templar = Templar::new();
        let vars = Context::new(&templar, vec![]);
        let facts = FactCache::from_recorded(
            vec![],
            vec![(
                gather_key("/etc/aziot/config.toml"),
                Output {
                    status: ExitStatus::Code(0),
                    stdout: out.into_bytes(),
                    stderr: vec![],
                },
            )],
        );
        let transport: SharedTransport =
            Arc::new(crate::transport::local::LocalTransport::new("edge-1"));
        let cx = PlanCtx {
            host: "edge-1",
            vars: &vars,
            search: &[],
            check,
            diff: false,
            become_: None,
            timeout: None,
            environment: vec![],
            facts: &facts,
            transport: &transport,
        };
        EdgeCaRenew.plan(&args, &cx).await.unwrap()
    }

    #[tokio::test]
    async fn far_from_expiry_is_kept() {
        let p = plan(gather(now(), Some(CONFIG), Some(&cert(200))), false).await;
        assert_eq!(p.decision.kind(), "unchanged");
        assert_eq!(
            p.msg.as_deref(),
            Some("kept: 200 days left > renew_before 30")
        );
        assert_eq!(p.result["renewed"], json!(false));
    }

    #[tokio::test]
    async fn due_in_check_mode_says_so_and_signs_nothing() {
        let p = plan(gather(now(), Some(CONFIG), Some(&cert(10))), true).await;
        assert_eq!(p.decision.kind(), "change");
        assert!(p.decision.steps().is_empty());
        assert_eq!(
            p.msg.as_deref(),
            Some("would renew the Edge CA /var/aziot/certs/edge-ca.cert.pem (10 days left <= renew_before 30)")
        );
        let p = plan(gather(now(), Some(CONFIG), Some(&cert(-5))), true).await;
        assert_eq!(p.result["reason"], json!("expired 5 days ago"));
    }

    #[tokio::test]
    async fn a_skewed_clock_is_reported_never_renewed() {
        let p = plan(
            gather(now() + 3 * 365 * 86_400, Some(CONFIG), Some(&cert(10))),
            true,
        )
        .await;
        match p.decision {
            Decision::Fail(m) => {
                assert!(m.starts_with("the device clock is 1095 days ahead"), "{m}")
            }
            other => panic!("{}", other.kind()),
        }
    }

    #[tokio::test]
    async fn what_cannot_be_renewed_says_why() {
        let p = plan(gather(now(), Some("hostname = \"edge-1\"\n"), None), false).await;
        assert!(matches!(&p.decision, Decision::Skip(r) if r.contains("quickstart")));
        let p = plan(gather(now(), None, None), false).await;
        assert!(matches!(&p.decision, Decision::Fail(r) if r.contains("is not provisioned")));
        let p = plan(gather(now(), Some(CONFIG), None), false).await;
        assert!(
            matches!(&p.decision, Decision::Fail(r) if r.contains("cannot read the installed Edge CA /var/aziot/certs/edge-ca.cert.pem: the file does not exist"))
        );
        let p = plan(gather(now(), Some(CONFIG), Some(b"junk")), false).await;
        assert!(matches!(&p.decision, Decision::Fail(r) if r.contains("is not a certificate")));
    }
}
