//! `bundle_install`: install a signed offline bundle from the device's content-addressed store (issue 15,
//! item 3): its `.deb` packages with `dpkg -i` in dependency order, `apt-mark hold` on them, then `docker load`
//! of its image archives. The parts must already be in the store (`bundle_push`); packages are installed only
//! from `<store>/<sha256>` of the verified manifest, never from a path the device names.
//!
//! The bundle is verified on the controller once per run (signature, sizes, hashes, closure:
//! `bundle::archive::verify`), before any device is contacted. Plan (read-only, one round trip): the device's
//! architecture, the installed version of every bundle package and every package they depend on
//! (`dpkg-query`), the holds, which parts the store holds, and which image IDs the engine has. Then, per
//! device, before anything is installed: a deb for another architecture, a dependency that neither the
//! bundle nor the device satisfies, or a part missing from the store fails the device with nothing changed.
//! The same version installed is skipped; a newer one is kept (not downgraded) unless `allow_downgrade: true`.
//! An image archive whose image IDs are all present is not loaded again.
//!
//! It must not write to the device itself (the executor runs its steps).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex as AsyncMutex;

use super::*;
use crate::bundle::archive;
use crate::bundle::closure::install_order;
use crate::bundle::manifest::{Entry, EntryKind};
use crate::bundle::relation::{parse_relations, Alternative, Constraint, Relation};
use crate::bundle::signing::read_allowed_signers;
use crate::bundle::version::DebVersion;

/// Verified manifests of the run, by (bundle, allowed-signers) path.
type Verified = HashMap<(PathBuf, PathBuf), Result<Arc<Vec<Entry>>, String>>;

/// The module, with the run's verified manifests (one verification per bundle per run).
#[derive(Default)]
pub struct BundleInstall {
    verified: AsyncMutex<Verified>,
}

/// The arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    bundle: String,
    allowed_signers: String,
    #[serde(default = "default_store")]
    store: String,
    /// Install a bundle version older than the one installed.
    #[serde(default)]
    allow_downgrade: bool,
    /// `apt-mark hold` the bundle's packages (so no `apt upgrade` moves them).
    #[serde(default = "yes")]
    hold: bool,
    /// Load the bundle's image archives.
    #[serde(default = "yes")]
    images: bool,
}

fn default_store() -> String {
    super::bundle_push::DEFAULT_STORE.to_string()
}

fn yes() -> bool {
    true
}

/// What the plan decided, for the result.
pub struct State;

/// Answers, for the arguments `p:NAME`, `b:SHA256`, `i:IMAGE-ID`: the architecture, installed packages,
/// holds, parts in the store, images present. Exit 0 whatever is missing.
const PROBE_SH: &str = r#"store=$1; shift
names=; ids=
for a in "$@"; do
  case $a in
    p:*) names="$names ${a#p:}" ;;
    b:*) h=${a#b:}; [ -f "$store/$h" ] && echo "blob $h" ;;
    i:*) ids="$ids ${a#i:}" ;;
  esac
done
echo "arch $(dpkg --print-architecture)"
[ -n "$names" ] && dpkg-query -W -f='pkg ${Package} ${Version} ${db:Status-Abbrev}\n' $names 2>/dev/null
apt-mark showhold 2>/dev/null | sed 's/^/hold /'
if [ -n "$ids" ] && command -v docker >/dev/null 2>&1; then
  docker image inspect --format 'image {{.Id}}' $ids 2>/dev/null
fi
exit 0"#;

/// What the device said.
#[derive(Debug, Default)]
struct Device {
    arch: String,
    /// Configured packages (`ii`/`hi`): name -> version.
    installed: BTreeMap<String, String>,
    holds: BTreeSet<String>,
    blobs: BTreeSet<String>,
    images: BTreeSet<String>,
}

fn parse_probe(out: &str) -> Device {
    let mut d = Device::default();
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["arch", a] => d.arch = a.to_string(),
            ["pkg", n, v, status, ..]
                if status.starts_with(['i', 'h']) && status.ends_with('i') =>
            {
                d.installed.insert(n.to_string(), v.to_string());
            }
            ["blob", h] => {
                d.blobs.insert(h.to_string());
            }
            ["hold", n] => {
                d.holds.insert(n.to_string());
            }
            ["image", id] => {
                d.images.insert(id.to_string());
            }
            _ => {}
        }
    }
    d
}

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

fn load(bundle: &Path, signers: &Path) -> Result<Vec<Entry>, String> {
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
    Ok(v.head.manifest.entries)
}

/// The final package set: name -> (version, its `Provides`).
type After = BTreeMap<String, (String, Vec<Alternative>)>;

/// Does one relation hold against the final package set? By name and version, or by a `Provides` (a
/// versioned dependency only through a versioned provide, `name (= version)`, as dpkg does).
fn holds(rel: &Relation, have: &After) -> bool {
    let allows = |c: &Option<Constraint>, v: &str| match c {
        None => true,
        Some(c) => DebVersion::parse(v).is_ok_and(|v| c.op.holds(&v, &c.version)),
    };
    rel.0.iter().any(|alt| {
        have.get(&alt.name)
            .is_some_and(|(v, _)| allows(&alt.constraint, v))
            || have.values().flat_map(|(_, p)| p).any(|p| {
                p.name == alt.name
                    && match (&alt.constraint, &p.constraint) {
                        (None, _) => true,
                        (Some(_), Some(pc)) => allows(&alt.constraint, &pc.version.to_string()),
                        (Some(_), None) => false,
                    }
            })
    })
}

fn bad(key: &str, msg: impl std::fmt::Display) -> ArgError {
    ArgError::key(key, format!("bundle_install: {key}: {msg}"))
}

impl BundleInstall {
    async fn entries(&self, bundle: PathBuf, signers: PathBuf) -> Result<Arc<Vec<Entry>>, String> {
        let key = (bundle.clone(), signers.clone());
        let mut g = self.verified.lock().await;
        if let Some(r) = g.get(&key) {
            return r.clone();
        }
        let r = tokio::task::spawn_blocking(move || load(&bundle, &signers))
            .await
            .map_err(|e| format!("bundle verification stopped: {e}"))
            .and_then(|r| r.map(Arc::new));
        g.insert(key, r.clone());
        r
    }
}

fn version_of(e: &Entry) -> &str {
    e.version.as_deref().unwrap_or("")
}

#[async_trait]
impl TypedModule for BundleInstall {
    type Args = Args;
    type State = State;

    fn name(&self) -> &'static str {
        "bundle_install"
    }

    fn check_args(&self, a: &Args) -> Result<(), ArgError> {
        if !a.store.starts_with('/') || a.store.split('/').any(|c| c == "..") {
            return Err(bad(
                "store",
                format!("`{}`: must be an absolute path without `..`", a.store),
            ));
        }
        if a.bundle.is_empty() {
            return Err(bad("bundle", "must name the bundle file"));
        }
        if a.allowed_signers.is_empty() {
            return Err(bad(
                "allowed_signers",
                "must name the allowed-signers file the bundle is checked against",
            ));
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
        let entries = match self.entries(bundle, signers).await {
            Ok(e) => e,
            Err(m) => {
                return Ok(Plan::fail(format!(
                    "{m}\n(refused on the controller: nothing was installed on any device)"
                )))
            }
        };
        let debs = install_order(&entries).map_err(ModuleError::Failed)?;
        let images: Vec<&Entry> = if a.images {
            entries
                .iter()
                .filter(|e| e.kind == EntryKind::Image)
                .collect()
        } else {
            Vec::new()
        };
        // Every package the debs name: theirs and those they depend on.
        let mut names: BTreeSet<String> = BTreeSet::new();
        let mut relations: Vec<(&Entry, Vec<Relation>)> = Vec::new();
        for e in &debs {
            names.insert(e.name.clone());
            let mut rels = parse_relations(&e.pre_depends).map_err(ModuleError::Failed)?;
            rels.extend(parse_relations(&e.depends).map_err(ModuleError::Failed)?);
            for r in &rels {
                names.extend(r.0.iter().map(|alt| alt.name.clone()));
            }
            relations.push((e, rels));
        }
        let probe = Cmd::new("/bin/sh")
            .raw("-c")
            .arg(PROBE_SH)
            .arg("edgefleet-bundle-install-probe")
            .arg(a.store.as_str())
            .args(names.iter().map(|n| format!("p:{n}")))
            .args(
                debs.iter()
                    .copied()
                    .chain(images.iter().copied())
                    .map(|e| format!("b:{}", e.sha256)),
            )
            .args(
                images
                    .iter()
                    .flat_map(|e| e.images.iter().map(|i| format!("i:{}", i.id))),
            );
        let out = cx.probe(probe).await?;
        if !out.status.success() {
            return Ok(Plan::fail(format!(
                "cannot read the device's packages ({}): {}",
                out.status,
                out.stderr_str().trim()
            )));
        }
        let dev = parse_probe(&out.stdout_str());
        if dev.arch.is_empty() {
            return Ok(Plan::fail(
                "the device did not say its architecture (`dpkg --print-architecture` printed nothing): is it a Debian/Ubuntu system?",
            ));
        }

        // Decide per deb, refusing before anything is installed.
        let mut install: Vec<&Entry> = Vec::new();
        let mut kept_newer: Vec<String> = Vec::new();
        let mut same = 0usize;
        for e in &debs {
            let arch = e.architecture.as_deref().unwrap_or("all");
            if arch != "all" && arch != dev.arch {
                return Ok(Plan::fail(format!(
                    "wrong architecture: the bundle's {} is for {arch}, this device is {}: nothing was installed (use a bundle built for {})",
                    e.label(),
                    dev.arch,
                    dev.arch
                )));
            }
            let want = version_of(e);
            match dev.installed.get(&e.name) {
                Some(have) if have == want => same += 1,
                Some(have)
                    if !a.allow_downgrade
                        && matches!(
                            (DebVersion::parse(have), DebVersion::parse(want)),
                            (Ok(h), Ok(w)) if h > w
                        ) =>
                {
                    kept_newer.push(format!("{} {have} (bundle has {want})", e.name))
                }
                _ => install.push(e),
            }
        }
        // The package set after the install, to check every dependency of what is installed.
        let mut after: After = dev
            .installed
            .iter()
            .map(|(n, v)| (n.clone(), (v.clone(), Vec::new())))
            .collect();
        for e in &install {
            let provides = parse_relations(&e.provides)
                .unwrap_or_default()
                .into_iter()
                .flat_map(|r| r.0)
                .collect();
            after.insert(e.name.clone(), (version_of(e).to_string(), provides));
        }
        for (e, rels) in &relations {
            if !install.iter().any(|i| i.name == e.name) {
                continue;
            }
            if let Some(r) = rels.iter().find(|r| !holds(r, &after)) {
                let have =
                    r.0.iter()
                        .filter_map(|alt| {
                            dev.installed
                                .get(&alt.name)
                                .map(|v| format!("{} {v}", alt.name))
                        })
                        .collect::<Vec<_>>();
                return Ok(Plan::fail(format!(
                    "missing dependency: {} needs `{r}`, which neither the bundle nor this device provides{}: nothing was installed (add the package to the bundle or install it first)",
                    e.label(),
                    if have.is_empty() {
                        String::new()
                    } else {
                        format!(" (the device has {})", have.join(", "))
                    }
                )));
            }
        }
        for e in install.iter().chain(images.iter()) {
            if !dev.blobs.contains(&e.sha256) {
                return Ok(Plan::fail(format!(
                    "{} is not in the device store {} ({}): run bundle_push first; nothing was installed",
                    e.label(),
                    a.store,
                    e.sha256
                )));
            }
        }
        let load: Vec<&Entry> = images
            .iter()
            .copied()
            .filter(|e| !e.images.iter().all(|i| dev.images.contains(&i.id)))
            .collect();
        let to_hold: Vec<&str> = if a.hold {
            debs.iter()
                .filter(|e| !dev.holds.contains(&e.name))
                .map(|e| e.name.as_str())
                .collect()
        } else {
            Vec::new()
        };

        let blob = |e: &Entry| format!("{}/{}", a.store.trim_end_matches('/'), e.sha256);
        let mut steps = Vec::new();
        if !install.is_empty() {
            steps.push(Step::Exec {
                exec: cx.exec(
                    Cmd::new("dpkg")
                        .arg("-i")
                        .args(install.iter().map(|e| blob(e))),
                ),
                what: format!(
                    "dpkg -i {}",
                    install
                        .iter()
                        .map(|e| format!("{} {}", e.name, version_of(e)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        if !to_hold.is_empty() {
            steps.push(Step::Exec {
                exec: cx.exec(
                    Cmd::new("apt-mark")
                        .arg("hold")
                        .args(to_hold.iter().copied()),
                ),
                what: format!("apt-mark hold {}", to_hold.join(" ")),
            });
        }
        for e in &load {
            steps.push(Step::Exec {
                exec: cx.exec(Cmd::new("docker").arg("load").arg("-i").arg(blob(e))),
                what: format!("docker load {}", e.label()),
            });
        }
        let mut result = serde_json::Map::new();
        result.insert(
            "installed".into(),
            json!(install
                .iter()
                .map(|e| format!("{} {}", e.name, version_of(e)))
                .collect::<Vec<_>>()),
        );
        result.insert("already_installed".into(), json!(same));
        result.insert("kept_newer".into(), json!(kept_newer));
        result.insert("held".into(), json!(to_hold));
        result.insert(
            "images_loaded".into(),
            json!(load.iter().map(|e| e.label()).collect::<Vec<_>>()),
        );
        let mut msg = Vec::new();
        if !kept_newer.is_empty() {
            msg.push(format!(
                "kept newer (not downgraded; allow_downgrade: true to downgrade): {}",
                kept_newer.join(", ")
            ));
        }
        if steps.is_empty() {
            msg.insert(
                0,
                format!(
                    "all {} packages and {} image archives already installed",
                    debs.len(),
                    images.len()
                ),
            );
            return Ok(Plan::unchanged()
                .with_result(result)
                .with_msg(msg.join("; ")));
        }
        let plan = Plan::change(steps, State).with_result(result);
        Ok(if msg.is_empty() {
            plan
        } else {
            plan.with_msg(msg.join("; "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_answers_parse() {
        let d = parse_probe(
            "blob aa\narch amd64\npkg aziot-edge 1.5.21-1 ii \npkg moby-engine 24.0.9 iU \npkg x 1 hi \nhold x\nimage sha256:bb\n",
        );
        assert_eq!(d.arch, "amd64");
        assert_eq!(
            d.installed.keys().collect::<Vec<_>>(),
            vec!["aziot-edge", "x"],
            "an unpacked (iU) package is not installed"
        );
        assert!(d.blobs.contains("aa") && d.holds.contains("x") && d.images.contains("sha256:bb"));
    }
}
