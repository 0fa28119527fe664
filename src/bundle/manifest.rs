//! `manifest.json`: what a bundle holds, and the bytes its signature covers.
//!
//! Owns the model (serde, unknown fields refused everywhere), the format version and its check (a bundle from
//! a newer edgefleet is refused with that reason, before any other complaint), and the checks a manifest must
//! pass beyond its shape: safe entry paths under the directory of their kind, SHA-256 form, unique paths,
//! parseable versions and relations. Must not read the bundle file (`archive.rs`).

use serde::{Deserialize, Serialize};

use super::hash::is_sha256_hex;
use super::image::ImageInfo;
use super::relation::{parse_relations, Relation};
use super::version::DebVersion;

/// The format version this edgefleet writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The bundle format version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// When the bundle was made (RFC 3339, UTC).
    pub created: String,
    /// What made it (`edgefleet 0.1.0`).
    pub creator: String,
    /// The architecture of the bundle's architecture-specific debs (none if all are `all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// The packages the target devices are declared to have already (the base system).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub base_system: Vec<BasePackage>,
    /// The files, in the order they follow the manifest in the bundle.
    pub entries: Vec<Entry>,
}

/// One package of the declared base system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasePackage {
    /// The package name.
    pub name: String,
    /// Its version, if declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Its `Provides`, if declared.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provides: String,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A Debian package.
    Deb,
    /// A `docker save` image archive.
    Image,
    /// A configuration template.
    Template,
}

impl EntryKind {
    /// The bundle directory entries of this kind live in.
    pub fn dir(self) -> &'static str {
        match self {
            EntryKind::Deb => "debs",
            EntryKind::Image => "images",
            EntryKind::Template => "templates",
        }
    }
}

/// One file of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// What it is.
    pub kind: EntryKind,
    /// Its path inside the bundle (`debs/aziot-edge_1.5.21-1_amd64.deb`).
    pub path: String,
    /// Package name, image name (first tag without the tag), or template file name.
    pub name: String,
    /// Package version or image tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Package or image architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// Debs: `Depends` from the control file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub depends: String,
    /// Debs: `Pre-Depends` from the control file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pre_depends: String,
    /// Debs: `Provides` from the control file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provides: String,
    /// Image archives: the images in it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageInfo>,
}

impl Entry {
    /// `deb aziot-edge 1.5.21-1` / `image mcr.../azureiotedge-agent:1.5` / `template config.toml`: how messages
    /// name an entry.
    pub fn label(&self) -> String {
        match (self.kind, &self.version) {
            (EntryKind::Deb, Some(v)) => format!("deb {} {v}", self.name),
            (EntryKind::Image, Some(v)) => format!("image {}:{v}", self.name),
            (EntryKind::Image, None) => format!("image {}", self.name),
            (k, _) => format!("{} {}", format!("{k:?}").to_lowercase(), self.name),
        }
    }

    /// A deb's `Pre-Depends` and `Depends`, parsed (checked by [`parse_manifest`]).
    pub fn relations(&self) -> Result<Vec<Relation>, String> {
        let mut r = parse_relations(&self.pre_depends)?;
        r.extend(parse_relations(&self.depends)?);
        Ok(r)
    }
}

#[derive(Deserialize)]
struct VersionOnly {
    format_version: Option<serde_json::Value>,
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    /// Made by a newer edgefleet.
    Newer(u32),
    /// Anything else.
    Invalid(String),
}

/// Parse and check manifest bytes.
pub fn parse_manifest(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let bad = |m: String| ManifestError::Invalid(m);
    let head: VersionOnly = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("manifest.json is not valid JSON: {e}")))?;
    match head.format_version {
        None => return Err(bad("manifest.json has no `format_version`".into())),
        Some(v) => match v.as_u64() {
            Some(n) if n > u64::from(FORMAT_VERSION) => {
                return Err(ManifestError::Newer(u32::try_from(n).unwrap_or(u32::MAX)))
            }
            Some(n) if n >= 1 => {}
            _ => {
                return Err(bad(format!(
                    "manifest.json: `format_version` {v} is not a version number"
                )))
            }
        },
    }
    let m: Manifest =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("manifest.json: {e}")))?;
    check(&m).map_err(bad)?;
    Ok(m)
}

/// The checks beyond the shape.
fn check(m: &Manifest) -> Result<(), String> {
    let mut paths = std::collections::HashSet::new();
    for (i, e) in m.entries.iter().enumerate() {
        let at = format!("manifest.json entry {} (`{}`)", i + 1, e.path);
        let rest = e
            .path
            .strip_prefix(e.kind.dir())
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| {
                format!(
                    "{at}: a {:?} entry must be under `{}/`",
                    e.kind,
                    e.kind.dir()
                )
            })?;
        if rest.is_empty() || rest.contains('/') || rest.starts_with('.') || rest.contains('\\') {
            return Err(format!(
                "{at}: not a plain file name under `{}/`",
                e.kind.dir()
            ));
        }
        if !paths.insert(e.path.as_str()) {
            return Err(format!("{at}: the path appears twice"));
        }
        if !is_sha256_hex(&e.sha256) {
            return Err(format!("{at}: `sha256` is not 64 lowercase hex digits"));
        }
        if e.kind == EntryKind::Deb {
            let v = e
                .version
                .as_deref()
                .ok_or_else(|| format!("{at}: a deb entry needs `version`"))?;
            DebVersion::parse(v).map_err(|x| format!("{at}: {x}"))?;
            if e.architecture.is_none() {
                return Err(format!("{at}: a deb entry needs `architecture`"));
            }
            e.relations().map_err(|x| format!("{at}: {x}"))?;
            parse_relations(&e.provides).map_err(|x| format!("{at}: provides: {x}"))?;
        }
    }
    for b in &m.base_system {
        if let Some(v) = &b.version {
            DebVersion::parse(v)
                .map_err(|x| format!("manifest.json base_system `{}`: {x}", b.name))?;
        }
        parse_relations(&b.provides)
            .map_err(|x| format!("manifest.json base_system `{}`: {x}", b.name))?;
    }
    Ok(())
}

/// The bytes that are stored (and signed): pretty JSON and a final newline.
pub fn manifest_bytes(m: &Manifest) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(m).unwrap_or_default();
    v.push(b'\n');
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format_version: 1,
            created: "2026-12-03T00:00:00Z".into(),
            creator: "edgefleet test".into(),
            architecture: Some("amd64".into()),
            base_system: vec![BasePackage {
                name: "libc6".into(),
                version: Some("2.36-9".into()),
                provides: String::new(),
            }],
            entries: vec![Entry {
                kind: EntryKind::Deb,
                path: "debs/a_1_amd64.deb".into(),
                name: "aa".into(),
                version: Some("1".into()),
                architecture: Some("amd64".into()),
                size: 3,
                sha256: "a".repeat(64),
                depends: "libc6 (>= 2.34)".into(),
                pre_depends: String::new(),
                provides: String::new(),
                images: vec![],
            }],
        }
    }

    #[test]
    fn round_trips() {
        let m = sample();
        assert_eq!(parse_manifest(&manifest_bytes(&m)).unwrap(), m);
    }

    #[test]
    fn refuses_unknown_fields_newer_versions_and_unsafe_paths() {
        let text = String::from_utf8(manifest_bytes(&sample())).unwrap();
        let unknown = text.replacen("\"creator\"", "\"colour\": 1, \"creator\"", 1);
        match parse_manifest(unknown.as_bytes()) {
            Err(ManifestError::Invalid(e)) => assert!(e.contains("unknown field `colour`"), "{e}"),
            other => panic!("{other:?}"),
        }
        let newer = text.replacen(
            "\"format_version\": 1",
            "\"format_version\": 2, \"x\": 1",
            1,
        );
        assert_eq!(
            parse_manifest(newer.as_bytes()),
            Err(ManifestError::Newer(2))
        );
        for bad in ["debs/../x.deb", "images/a.deb", "debs/", "debs/.hidden"] {
            let t = text.replace("debs/a_1_amd64.deb", bad);
            assert!(
                matches!(parse_manifest(t.as_bytes()), Err(ManifestError::Invalid(_))),
                "{bad}"
            );
        }
        let t = text.replace("libc6 (>= 2.34)", "libc6 (>= )");
        assert!(
            matches!(parse_manifest(t.as_bytes()), Err(ManifestError::Invalid(e)) if e.contains("no version"))
        );
    }
}
