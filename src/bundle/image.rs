//! Container image archives in `docker save` format: a tar with `manifest.json` (`[{Config, RepoTags,
//! Layers}]`), each image's config JSON and its layer tars (the legacy `<id>/layer.tar` layout, or the OCI
//! `blobs/sha256/<hex>` layout Docker 25+ writes beside it, where legacy paths may be symlinks into blobs).
//!
//! Owns reading such an archive in one pass in bounded memory (every member is hashed as it streams by; only
//! small JSON members are kept), and checking it the way `docker load` will: every config and layer named is
//! present, every `blobs/sha256/<hex>` member has that hash, every uncompressed layer's hash is its config's
//! `diff_id`, and the image ID is the SHA-256 of the config.
//! Must not know about bundles (`archive.rs`).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::hash::HashingReader;

/// JSON members kept in memory for the checks after the pass (configs and manifest.json are a few KiB); a
/// member is kept only if it is at most this big and starts like JSON, so layers are never kept.
const MAX_JSON: u64 = 1024 * 1024;

/// One image of an archive, as `docker load` will see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageInfo {
    /// The image ID: `sha256:` + the SHA-256 of its config (what `docker image inspect` shows as `Id`).
    pub id: String,
    /// Its tags (`mcr.microsoft.com/azureiotedge-agent:1.5`); may be empty.
    pub repo_tags: Vec<String>,
    /// The config's `architecture` (`amd64`, `arm64`, ...).
    pub architecture: String,
    /// The config's `os`.
    pub os: String,
    /// How many layers it has.
    pub layers: usize,
}

#[derive(Deserialize)]
struct ManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct ConfigHead {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    rootfs: Option<RootFs>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// What one pass over the archive saw.
#[derive(Default)]
struct Seen {
    /// Regular files: normalized path -> sha256.
    files: HashMap<PathBuf, String>,
    /// Symlinks: normalized path -> normalized target.
    links: HashMap<PathBuf, PathBuf>,
    /// Small JSON members, by normalized path.
    json: HashMap<PathBuf, Vec<u8>>,
    /// Files that start with a gzip, zstd or xz header (a compressed layer's hash is not its diff_id).
    compressed: std::collections::HashSet<PathBuf>,
}

/// Does `head` start with a gzip, zstd or xz magic number?
fn is_compressed(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
}

impl Seen {
    /// Follow symlinks (at most 8) to a regular file.
    fn resolve(&self, p: &Path) -> Option<PathBuf> {
        let mut p = p.to_path_buf();
        for _ in 0..8 {
            if self.files.contains_key(&p) {
                return Some(p);
            }
            p = self.links.get(&p)?.clone();
        }
        None
    }
}

/// Lexically normalize a member path (drop `.`, apply `..`); `None` if it escapes the archive root.
fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Read a `docker save` archive from `r` (one pass) and return its images. The error says what is wrong
/// without naming the file (the caller does).
pub fn read_image_archive(r: impl Read) -> Result<Vec<ImageInfo>, String> {
    let mut archive = tar::Archive::new(r);
    let mut seen = Seen::default();
    let entries = archive
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("not a readable tar archive (truncated?): {e}"))?;
        let raw_path = entry
            .path()
            .map_err(|e| format!("a member has a bad path: {e}"))?
            .into_owned();
        let Some(path) = normalize(&raw_path) else {
            return Err(format!(
                "member `{}` points outside the archive",
                raw_path.display()
            ));
        };
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| format!("member `{}`: bad link target: {e}", path.display()))?
                .ok_or_else(|| format!("member `{}`: link without a target", path.display()))?;
            let base = if kind.is_symlink() {
                path.parent().unwrap_or(Path::new("")).join(&target)
            } else {
                target.into_owned()
            };
            let t = normalize(&base)
                .ok_or_else(|| format!("link `{}` points outside the archive", path.display()))?;
            seen.links.insert(path, t);
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        let keep = size <= MAX_JSON
            && (path.extension().is_some_and(|e| e == "json") || path.starts_with("blobs"));
        let mut hr = HashingReader::new(entry);
        let mut kept = Vec::new();
        (&mut hr)
            .take(6)
            .read_to_end(&mut kept)
            .and_then(|_| {
                if keep {
                    hr.read_to_end(&mut kept).map(drop)
                } else {
                    std::io::copy(&mut hr, &mut std::io::sink()).map(drop)
                }
            })
            .map_err(|e| {
                format!(
                    "member `{}` is cut short (truncated archive?): {e}",
                    path.display()
                )
            })?;
        let (sha, _) = hr.finish();
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
            if dir.parent() == Some(Path::new("blobs"))
                && dir.file_name().is_some_and(|a| a == "sha256")
            {
                let name = name.to_string_lossy();
                if name != sha {
                    return Err(format!(
                        "blob `{}` has SHA-256 {sha}: its content does not match its name (damaged archive)",
                        path.display()
                    ));
                }
            }
        }
        if is_compressed(&kept) {
            seen.compressed.insert(path.clone());
        }
        let head = kept.trim_ascii_start();
        if keep && (head.starts_with(b"{") || head.starts_with(b"[")) {
            seen.json.insert(path.clone(), kept);
        }
        seen.files.insert(path, sha);
    }
    images_of(&seen)
}

fn images_of(seen: &Seen) -> Result<Vec<ImageInfo>, String> {
    let manifest = seen
        .json
        .get(Path::new("manifest.json"))
        .ok_or("no `manifest.json`: not a `docker save` archive (make one with `docker save IMAGE -o FILE.tar`)")?;
    let items: Vec<ManifestItem> = serde_json::from_slice(manifest)
        .map_err(|e| format!("manifest.json is not a docker save manifest: {e}"))?;
    if items.is_empty() {
        return Err("manifest.json lists no image".into());
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let what = format!("image {} in manifest.json", i + 1);
        let cfg_path = normalize(Path::new(&item.config))
            .and_then(|p| seen.resolve(&p))
            .ok_or_else(|| format!("{what}: its config `{}` is not in the archive", item.config))?;
        let id = format!("sha256:{}", seen.files[&cfg_path]);
        let cfg = seen.json.get(&cfg_path).ok_or_else(|| {
            format!(
                "{what}: its config `{}` is too big to be a config",
                item.config
            )
        })?;
        let head: ConfigHead = serde_json::from_slice(cfg)
            .map_err(|e| format!("{what}: its config `{}` is not JSON: {e}", item.config))?;
        let diff_ids = head.rootfs.as_ref().map(|r| &r.diff_ids);
        if let Some(ids) = diff_ids.filter(|ids| ids.len() != item.layers.len()) {
            return Err(format!(
                "{what}: manifest.json lists {} layers but its config has {} diff_ids: docker load would refuse it",
                item.layers.len(),
                ids.len()
            ));
        }
        for (i, layer) in item.layers.iter().enumerate() {
            let p = normalize(Path::new(layer))
                .and_then(|p| seen.resolve(&p))
                .ok_or_else(|| format!("{what}: its layer `{layer}` is not in the archive"))?;
            // An uncompressed layer's SHA-256 is its diff_id: what `docker load` checks.
            let want = diff_ids.and_then(|ids| ids.get(i));
            if let Some(want) = want.filter(|_| !seen.compressed.contains(&p)) {
                let have = format!("sha256:{}", seen.files[&p]);
                if *want != have {
                    return Err(format!(
                        "{what}: layer `{layer}` has {have}, but its config says diff_id {want}: the archive is \
                         damaged (docker load would refuse it); export it again"
                    ));
                }
            }
        }
        out.push(ImageInfo {
            id,
            repo_tags: item.repo_tags.clone().unwrap_or_default(),
            architecture: head.architecture,
            os: head.os,
            layers: item.layers.len(),
        });
    }
    Ok(out)
}
