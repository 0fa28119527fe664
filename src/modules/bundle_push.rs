//! `bundle_push`: put the parts of a signed offline bundle into a content-addressed store on the device,
//! resumably (issue 15, item 2).
//!
//! The bundle is verified on the controller once per run, before any device is contacted (signature against
//! `allowed_signers`, every entry's size and SHA-256, the dependency closure: `bundle::archive::verify`); a bad,
//! tampered or unsigned bundle fails every device with the same message and nothing is sent. The part offsets
//! come from the tar headers (read by seeking, not by reading the parts). The outcome is cached for the run
//! ([`BundlePush`] lives as long as the registry: one per run), so the controller hashes each part once for the
//! whole fleet.
//!
//! Plan (read-only, one round trip): for each part's sha256 the device says whether `<store>/<sha>` is there
//! (complete: only ever created by renaming a partial file whose hash matched, so its presence with the right
//! size means verified) or `<store>/<sha>.partial` holds N bytes (resume from N). Apply: one command per missing
//! part, its stdin streamed from the bundle file at the part's offset + N in bounded chunks (a
//! [`transport::Upload`](crate::transport::Upload), never a whole part in memory) and appended to the partial
//! file; then `sha256sum`, and a rename to `<sha>`. A short stdin (connection cut) or a failed write (disk full)
//! keeps the partial file for the next run; a hash mismatch deletes it. Every upload takes a slot of one
//! run-wide semaphore (`bundle_upload_concurrency`, default [`DEFAULT_CONCURRENCY`]). The result reports the
//! bytes the device received (`bytes_sent`), per device.
//!
//! It must not write to the device itself (the executor runs its steps), nor read a part into memory.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{Mutex as AsyncMutex, Semaphore};

use super::*;
use crate::bundle::archive;
use crate::bundle::manifest::EntryKind;
use crate::bundle::signing::read_allowed_signers;
use crate::transport::{FileRange, Upload};

/// Where parts land on the device unless `store:` says otherwise.
pub const DEFAULT_STORE: &str = "/var/lib/edgefleet/blobs";
/// Concurrent uploads across the whole fleet unless `bundle_upload_concurrency` says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// The variable that sets the run-wide upload bound (read by the first task that uploads).
pub const CONCURRENCY_VAR: &str = "bundle_upload_concurrency";

/// Verification outcomes of the run, by (bundle, allowed-signers) path.
type Verifications = HashMap<(PathBuf, PathBuf), Result<Arc<Parts>, String>>;

/// The module, with its run-wide state: verified bundles and the upload gate.
#[derive(Default)]
pub struct BundlePush {
    verified: AsyncMutex<Verifications>,
    gate: OnceLock<Arc<Semaphore>>,
}

/// The arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    bundle: String,
    allowed_signers: String,
    #[serde(default = "default_store")]
    store: String,
    #[serde(default)]
    only: Vec<String>,
}

fn default_store() -> String {
    DEFAULT_STORE.to_string()
}

/// One part of a verified bundle and where its bytes are in the bundle file.
#[derive(Debug, Clone)]
struct Part {
    path: String,
    name: String,
    kind: EntryKind,
    label: String,
    sha256: String,
    size: u64,
    offset: u64,
}

/// A verified bundle: the file and its parts in manifest order.
#[derive(Debug)]
struct Parts {
    file: PathBuf,
    parts: Vec<Part>,
}

/// What the plan found, for `interpret`.
pub struct State {
    sent_planned: u64,
    skipped: usize,
    resumed: usize,
    parts: usize,
}

/// Lists, for each sha256 argument, whether the store holds it complete, partially, or not at all.
const PROBE_SH: &str = r#"store=$1; shift
for h in "$@"; do
  if [ -f "$store/$h" ]; then echo "$h full $(wc -c < "$store/$h")"
  elif [ -f "$store/$h.partial" ]; then echo "$h partial $(wc -c < "$store/$h.partial")"
  else echo "$h none"; fi
done"#;

/// Appends stdin to `<sha>.partial` from offset `off`, then checks the hash and renames. Prints
/// `received N` (bytes that landed) in every case past the start.
const UPLOAD_SH: &str = r#"store=$1 h=$2 off=$3 size=$4
p="$store/$h.partial"
mkdir -p "$store" || exit 1
if [ "$off" -eq 0 ]; then : > "$p" || exit 1; fi
have=$(wc -c < "$p") || exit 1
if [ "$have" -ne "$off" ]; then
  echo "$p holds $have bytes, not the $off planned (is another run writing it?): rerun" >&2; exit 1
fi
cat >> "$p"; wrote=$?
got=$(wc -c < "$p")
echo "received $((got - off))"
if [ "$wrote" -ne 0 ]; then
  echo "writing $p failed after $got of $size bytes (the partial file is kept: free space on the device and rerun to resume)" >&2; exit 1
fi
if [ "$got" -ne "$size" ]; then
  echo "$p: $got of $size bytes received (connection cut?); the partial file is kept: rerun to resume" >&2; exit 1
fi
sum=$(sha256sum "$p") || exit 1
sum=${sum%% *}
if [ "$sum" != "$h" ]; then
  rm -f "$p"
  echo "the received bytes hash to $sum, not $h: the partial file was deleted; check the bundle with edgefleet bundle verify and rerun" >&2; exit 1
fi
mv -f "$p" "$store/$h""#;

fn now_compact() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// Verify the bundle (signature, sizes, hashes, closure) and find each part's data offset in the tar.
fn load(bundle: &Path, signers: &Path) -> Result<Parts, String> {
    let allowed = read_allowed_signers(signers)?;
    let v = archive::verify(bundle, &allowed, None, &now_compact()).map_err(|e| e.message)?;
    if v.failure().is_some() {
        let mut lines = v.integrity.clone();
        lines.extend(v.dependencies.iter().cloned());
        return Err(format!(
            "the bundle failed verification ({}):\n  {}",
            bundle.display(),
            lines.join("\n  ")
        ));
    }
    let f = std::fs::File::open(bundle)
        .map_err(|e| format!("{}: cannot open: {e}", bundle.display()))?;
    let mut ar = tar::Archive::new(f);
    let mut offsets: HashMap<String, (u64, u64)> = HashMap::new();
    let entries = ar
        .entries_with_seek()
        .map_err(|e| format!("{}: not a tar file: {e}", bundle.display()))?;
    for e in entries {
        let e = e.map_err(|e| format!("{}: damaged tar: {e}", bundle.display()))?;
        let name = e
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        offsets.insert(name, (e.raw_file_position(), e.size()));
    }
    let mut parts = Vec::new();
    for en in &v.head.manifest.entries {
        let Some(&(offset, size)) = offsets.get(&en.path) else {
            return Err(format!(
                "{}: `{}` vanished from the bundle after verification: copy the bundle again",
                bundle.display(),
                en.path
            ));
        };
        if size != en.size {
            return Err(format!(
                "{}: `{}` changed size after verification: copy the bundle again",
                bundle.display(),
                en.path
            ));
        }
        parts.push(Part {
            path: en.path.clone(),
            name: en.name.clone(),
            kind: en.kind,
            label: en.label(),
            sha256: en.sha256.clone(),
            size,
            offset,
        });
    }
    Ok(Parts {
        file: bundle.to_path_buf(),
        parts,
    })
}

fn kind_name(k: EntryKind) -> &'static str {
    match k {
        EntryKind::Deb => "deb",
        EntryKind::Image => "image",
        EntryKind::Template => "template",
    }
}

/// Keep the parts `only` names (a kind, an entry name or its path); every word must select something.
fn select<'a>(parts: &'a [Part], only: &[String]) -> Result<Vec<&'a Part>, String> {
    if only.is_empty() {
        return Ok(parts.iter().collect());
    }
    let matches = |p: &Part, w: &str| kind_name(p.kind) == w || p.name == w || p.path == w;
    for w in only {
        if !parts.iter().any(|p| matches(p, w)) {
            let names: BTreeSet<&str> = parts.iter().map(|p| p.name.as_str()).collect();
            return Err(format!(
                "only: `{w}` selects no part of the bundle (use deb, image, template, or one of: {})",
                names.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    Ok(parts
        .iter()
        .filter(|p| only.iter().any(|w| matches(p, w)))
        .collect())
}

/// What the store holds of one part.
#[derive(Debug, PartialEq, Eq)]
enum Held {
    Full(u64),
    Partial(u64),
    None,
}

fn parse_probe(out: &str) -> Result<HashMap<String, Held>, String> {
    let mut m = HashMap::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let w: Vec<&str> = line.split_whitespace().collect();
        let num = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| format!("unexpected answer from the store probe: `{line}`"))
        };
        let held = match w.as_slice() {
            [_, "full", n] => Held::Full(num(n)?),
            [_, "partial", n] => Held::Partial(num(n)?),
            [_, "none"] => Held::None,
            _ => return Err(format!("unexpected answer from the store probe: `{line}`")),
        };
        m.insert(w[0].to_string(), held);
    }
    Ok(m)
}

/// An error about one argument, prefixed with the module name.
fn bad(key: &str, msg: impl std::fmt::Display) -> ArgError {
    ArgError::key(key, format!("bundle_push: {key}: {msg}"))
}

fn store_ok(store: &str) -> Result<(), ArgError> {
    if !store.starts_with('/') || store.split('/').any(|c| c == "..") {
        return Err(bad(
            "store",
            format!("`{store}`: must be an absolute path without `..`"),
        ));
    }
    Ok(())
}

impl BundlePush {
    async fn parts(&self, bundle: PathBuf, signers: PathBuf) -> Result<Arc<Parts>, String> {
        let key = (bundle.clone(), signers.clone());
        let mut g = self.verified.lock().await;
        if let Some(r) = g.get(&key) {
            return r.clone();
        }
        // Held across the verification: the other devices wait for this one result.
        let r = tokio::task::spawn_blocking(move || load(&bundle, &signers))
            .await
            .map_err(|e| format!("bundle verification stopped: {e}"))
            .and_then(|r| r.map(Arc::new));
        g.insert(key, r.clone());
        r
    }

    fn gate(&self, vars: &Context) -> Result<Arc<Semaphore>, String> {
        if let Some(g) = self.gate.get() {
            return Ok(g.clone());
        }
        let n = match vars.get(CONCURRENCY_VAR).map_err(|e| e.to_string())? {
            None => DEFAULT_CONCURRENCY,
            Some(v) => match v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            {
                Some(n) if n >= 1 => n as usize,
                _ => {
                    return Err(format!(
                        "{CONCURRENCY_VAR}: `{v}` is not a positive whole number"
                    ))
                }
            },
        };
        Ok(self
            .gate
            .get_or_init(|| Arc::new(Semaphore::new(n)))
            .clone())
    }
}

#[async_trait]
impl TypedModule for BundlePush {
    type Args = Args;
    type State = State;

    fn name(&self) -> &'static str {
        "bundle_push"
    }

    fn check_args(&self, a: &Args) -> Result<(), ArgError> {
        store_ok(&a.store)?;
        if a.bundle.is_empty() {
            return Err(bad("bundle", "must name the bundle file"));
        }
        if a.allowed_signers.is_empty() {
            return Err(bad(
                "allowed_signers",
                "must name the allowed-signers file the bundle is checked against",
            ));
        }
        if let Some(w) = a.only.iter().find(|w| w.trim().is_empty()) {
            return Err(bad("only", format!("`{w}`: an empty name")));
        }
        Ok(())
    }

    fn preflight(&self, a: &Args, cx: &ArgCtx<'_>) -> Result<Vec<String>, ArgError> {
        cx.find_src(&a.bundle, "files")
            .map_err(|e| bad("bundle", e))?;
        cx.find_src(&a.allowed_signers, "files")
            .map_err(|e| bad("allowed_signers", e))?;
        Ok(Vec::new())
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<State>, ModuleError> {
        let bundle = cx.find_src(&a.bundle, "files")?;
        let signers = cx.find_src(&a.allowed_signers, "files")?;
        // Before any contact: a bundle that does not verify fails every device with the same message.
        let parts = match self.parts(bundle, signers).await {
            Ok(p) => p,
            Err(m) => {
                return Ok(Plan::fail(format!(
                    "{m}\n(refused on the controller: nothing was sent to any device)"
                )))
            }
        };
        let chosen = match select(&parts.parts, &a.only) {
            Ok(c) => c,
            Err(m) => return Ok(Plan::fail(m)),
        };
        let gate = self.gate(cx.vars).map_err(ModuleError::Failed)?;
        let probe = Cmd::new("/bin/sh")
            .raw("-c")
            .arg(PROBE_SH)
            .arg("edgefleet-bundle-probe")
            .arg(a.store.as_str())
            .args(chosen.iter().map(|p| p.sha256.clone()));
        let out = cx.probe(probe).await?;
        if !out.status.success() {
            return Ok(Plan::fail(format!(
                "cannot look into the store {} ({}): {}",
                a.store,
                out.status,
                out.stderr_str().trim()
            )));
        }
        let held = parse_probe(&out.stdout_str()).map_err(ModuleError::Failed)?;
        let mut steps = Vec::new();
        let (mut skipped, mut resumed, mut planned) = (0usize, 0usize, 0u64);
        for p in &chosen {
            let from = match held.get(&p.sha256).unwrap_or(&Held::None) {
                Held::Full(n) if *n == p.size => {
                    skipped += 1;
                    continue;
                }
                // A complete file of the wrong size cannot come from us: send it again (renamed over it).
                Held::Full(_) | Held::None => 0,
                Held::Partial(n) if *n <= p.size => *n,
                Held::Partial(_) => 0,
            };
            if from > 0 {
                resumed += 1;
            }
            planned += p.size - from;
            let cmd = Cmd::new("/bin/sh")
                .raw("-c")
                .arg(UPLOAD_SH)
                .arg("edgefleet-bundle-upload")
                .arg(a.store.as_str())
                .arg(p.sha256.as_str())
                .arg(from.to_string())
                .arg(p.size.to_string());
            let upload = Upload {
                pieces: vec![FileRange {
                    path: parts.file.clone(),
                    offset: p.offset + from,
                    len: p.size - from,
                }],
                gate: Some(gate.clone()),
            };
            steps.push(Step::Exec {
                exec: cx.exec(cmd).upload(upload),
                what: format!(
                    "upload {} ({}, {} of {} bytes{})",
                    p.path,
                    p.label,
                    p.size - from,
                    p.size,
                    if from > 0 {
                        format!(", resuming at {from}")
                    } else {
                        String::new()
                    }
                ),
            });
        }
        let mut result = serde_json::Map::new();
        result.insert("store".into(), json!(a.store));
        result.insert("parts".into(), json!(chosen.len()));
        result.insert("parts_present".into(), json!(skipped));
        result.insert("parts_resumed".into(), json!(resumed));
        result.insert("bytes_to_send".into(), json!(planned));
        if steps.is_empty() {
            result.insert("bytes_sent".into(), json!(0));
            return Ok(Plan::unchanged().with_result(result).with_msg(format!(
                "all {} parts already in {}",
                chosen.len(),
                a.store
            )));
        }
        Ok(Plan::change(
            steps,
            State {
                sent_planned: planned,
                skipped,
                resumed,
                parts: chosen.len(),
            },
        )
        .with_result(result))
    }

    fn interpret(&self, st: State, ran: Ran) -> Outcome {
        let received: u64 = ran
            .outputs
            .iter()
            .flat_map(|(_, o)| {
                o.stdout_str()
                    .lines()
                    .filter_map(|l| l.strip_prefix("received ")?.trim().parse::<u64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum();
        let sent_parts = ran
            .outputs
            .iter()
            .filter(|(_, o)| o.status.success())
            .count();
        let mut out = ran.outcome();
        out.result
            .insert("bytes_sent".into(), Value::from(received));
        out.result
            .insert("parts_sent".into(), Value::from(sent_parts));
        if out.failed.is_none() {
            out.msg = Some(format!(
                "sent {received} bytes ({sent_parts} parts, {} resumed); {} of {} parts were already there",
                st.resumed, st.skipped, st.parts
            ));
            if received != st.sent_planned {
                out.warnings.push(format!(
                    "the device received {received} bytes, {} were planned",
                    st.sent_planned
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_answers_parse_and_garbage_is_refused() {
        let m = parse_probe("aa full 10\nbb partial 3\ncc none\n").unwrap();
        assert_eq!(m["aa"], Held::Full(10));
        assert_eq!(m["bb"], Held::Partial(3));
        assert_eq!(m["cc"], Held::None);
        assert!(parse_probe("aa full x\n")
            .unwrap_err()
            .contains("aa full x"));
        assert!(parse_probe("aa maybe\n").is_err());
    }

    #[test]
    fn store_must_be_absolute() {
        assert!(store_ok("/var/lib/edgefleet/blobs").is_ok());
        assert!(store_ok("blobs").is_err());
        assert!(store_ok("/var/../etc").is_err());
    }

    #[test]
    fn only_selects_by_kind_name_or_path_and_refuses_strays() {
        let part = |kind, name: &str, path: &str| Part {
            path: path.into(),
            name: name.into(),
            kind,
            label: name.into(),
            sha256: "0".repeat(64),
            size: 1,
            offset: 0,
        };
        let parts = vec![
            part(EntryKind::Deb, "aziot-edge", "debs/aziot-edge_1_amd64.deb"),
            part(EntryKind::Image, "edgeAgent", "images/agent.tar"),
        ];
        assert_eq!(select(&parts, &[]).unwrap().len(), 2);
        assert_eq!(
            select(&parts, &["image".into()]).unwrap()[0].name,
            "edgeAgent"
        );
        assert_eq!(
            select(&parts, &["debs/aziot-edge_1_amd64.deb".into()]).unwrap()[0].name,
            "aziot-edge"
        );
        let e = select(&parts, &["moby".into()]).unwrap_err();
        assert!(
            e.contains("`moby` selects no part") && e.contains("aziot-edge"),
            "{e}"
        );
    }
}
