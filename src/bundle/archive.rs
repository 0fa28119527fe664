//! The bundle file itself: creating it (read every input once for its metadata and hash, sign the manifest,
//! write the tar atomically, checking each input again as it is copied) and reading it back (signature first,
//! then every entry hashed as it streams by, then the dependency closure).
//!
//! Owns the layout described in `mod.rs` and every message about a bundle's content: each names the entry
//! (path and package/image) and what to do. Must not print or decide exit codes (`commands/bundle.rs`).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ssh_key::{HashAlg, PrivateKey, SshSig};

use super::closure::{check_closure, install_order};
use super::deb::read_deb;
use super::hash::{sha256_reader, HashingReader};
use super::image::read_image_archive;
use super::manifest::{
    manifest_bytes, parse_manifest, BasePackage, Entry, EntryKind, Manifest, ManifestError,
    FORMAT_VERSION,
};
use super::signing::{self, AllowedSigner, Signer};
use super::{BundleError, Failure};

/// The manifest's name inside the bundle.
pub const MANIFEST_NAME: &str = "manifest.json";
/// The signature's name inside the bundle.
pub const SIGNATURE_NAME: &str = "manifest.json.sig";
/// The largest manifest or signature read (a manifest of thousands of entries is well under this).
const MAX_HEAD: u64 = 16 * 1024 * 1024;

/// What `create` is given.
#[derive(Debug, Clone, Default)]
pub struct CreateSpec {
    /// `.deb` files.
    pub debs: Vec<PathBuf>,
    /// `docker save` archives.
    pub images: Vec<PathBuf>,
    /// Config templates.
    pub templates: Vec<PathBuf>,
    /// The declared base system.
    pub base_system: Vec<BasePackage>,
    /// Creation time (RFC 3339).
    pub created: String,
    /// Unix time of `created`, for the tar headers.
    pub mtime: u64,
    /// `edgefleet VERSION`.
    pub creator: String,
}

/// Debian's and Docker's names for the same architecture differ for 32-bit ARM.
fn docker_arch(debian: &str) -> &str {
    match debian {
        "armhf" | "armel" => "arm",
        "i386" => "386",
        other => other,
    }
}

fn input(path: &Path, what: &str, e: impl std::fmt::Display) -> BundleError {
    BundleError::new(Failure::Input, format!("{}: {what}: {e}", path.display()))
}

fn file_name(path: &Path) -> Result<String, BundleError> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && !n.contains(['/', '\\']))
        .ok_or_else(|| input(path, "not a usable file name", "it must not start with `.`"))
}

fn hash_file(path: &Path) -> Result<(String, u64), BundleError> {
    let mut f = File::open(path).map_err(|e| input(path, "cannot open", e))?;
    sha256_reader(&mut f).map_err(|e| input(path, "cannot read", e))
}

/// Read every input once, check the set (architectures, duplicates, dependency closure) and build the
/// entries; the paths on disk come back beside them, in the same order.
pub fn plan(spec: &CreateSpec) -> Result<(Manifest, Vec<PathBuf>), BundleError> {
    let mut entries = Vec::new();
    let mut sources = Vec::new();
    let mut arch: Option<(String, PathBuf)> = None;
    for p in &spec.debs {
        let c = read_deb(p).map_err(|e| input(p, "not a usable .deb", e))?;
        if c.architecture != "all" {
            match &arch {
                Some((a, first)) if *a != c.architecture => {
                    return Err(input(
                        p,
                        "wrong architecture",
                        format!(
                            "{} {} is for {}, but {} is for {a}: a bundle serves one architecture (make one per \
                             architecture)",
                            c.package,
                            c.version,
                            c.architecture,
                            first.display()
                        ),
                    ))
                }
                Some(_) => {}
                None => arch = Some((c.architecture.clone(), p.clone())),
            }
        }
        let (sha256, size) = hash_file(p)?;
        let version = c.version.to_string();
        if let Some(prev) = entries
            .iter()
            .find(|e: &&Entry| e.kind == EntryKind::Deb && e.name == c.package)
        {
            return Err(input(
                p,
                "duplicate package",
                format!(
                    "{} is already in the bundle as {}: keep one version",
                    c.package,
                    prev.label()
                ),
            ));
        }
        entries.push(Entry {
            kind: EntryKind::Deb,
            path: format!(
                "debs/{}_{}_{}.deb",
                c.package,
                version.replace(':', "%3a"),
                c.architecture
            ),
            name: c.package,
            version: Some(version),
            architecture: Some(c.architecture),
            size,
            sha256,
            depends: c.depends,
            pre_depends: c.pre_depends,
            provides: c.provides,
            images: vec![],
        });
        sources.push(p.clone());
    }
    for p in &spec.images {
        let f = File::open(p).map_err(|e| input(p, "cannot open", e))?;
        let mut hr = HashingReader::new(BufReader::new(f));
        let images =
            read_image_archive(&mut hr).map_err(|e| input(p, "not a usable image archive", e))?;
        io::copy(&mut hr, &mut io::sink()).map_err(|e| input(p, "cannot read", e))?;
        let (sha256, size) = hr.finish();
        if let Some((a, first)) = &arch {
            if let Some(img) = images
                .iter()
                .find(|i| !i.architecture.is_empty() && i.architecture != docker_arch(a))
            {
                return Err(input(
                    p,
                    "wrong architecture",
                    format!(
                        "image {} is for {}, but the debs (e.g. {}) are for {a}",
                        img.repo_tags
                            .first()
                            .map_or(img.id.as_str(), String::as_str),
                        img.architecture,
                        first.display()
                    ),
                ));
            }
        }
        let (name, version) = match images[0].repo_tags.first() {
            Some(tag) => match tag
                .rsplit_once(':')
                .filter(|(n, t)| !t.contains('/') && !n.is_empty())
            {
                Some((n, t)) => (n.to_string(), Some(t.to_string())),
                None => (tag.clone(), None),
            },
            None => (images[0].id.clone(), None),
        };
        entries.push(Entry {
            kind: EntryKind::Image,
            path: format!("images/{}", file_name(p)?),
            name,
            version,
            architecture: Some(images[0].architecture.clone()).filter(|a| !a.is_empty()),
            size,
            sha256,
            depends: String::new(),
            pre_depends: String::new(),
            provides: String::new(),
            images,
        });
        sources.push(p.clone());
    }
    for p in &spec.templates {
        let (sha256, size) = hash_file(p)?;
        let name = file_name(p)?;
        entries.push(Entry {
            kind: EntryKind::Template,
            path: format!("templates/{name}"),
            name,
            version: None,
            architecture: None,
            size,
            sha256,
            depends: String::new(),
            pre_depends: String::new(),
            provides: String::new(),
            images: vec![],
        });
        sources.push(p.clone());
    }
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    for (e, src) in entries.iter().zip(&sources) {
        if let Some(other) = seen.insert(&e.path, src) {
            return Err(input(
                src,
                "name clash",
                format!(
                    "{} would be stored as `{}` like {}: rename one",
                    src.display(),
                    e.path,
                    other.display()
                ),
            ));
        }
    }
    let mut problems = check_closure(&entries, &spec.base_system);
    if let Err(e) = install_order(&entries) {
        problems.push(e);
    }
    if !problems.is_empty() {
        return Err(BundleError::new(Failure::Dependencies, problems.join("\n")));
    }
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        created: spec.created.clone(),
        creator: spec.creator.clone(),
        architecture: arch.map(|(a, _)| a),
        base_system: spec.base_system.clone(),
        entries,
    };
    Ok((manifest, sources))
}

fn tar_header(size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// Create the bundle at `out`: plan, sign, write to `out` + `.partial`, then rename (a failed run leaves no
/// half bundle under the final name).
pub fn create(spec: &CreateSpec, key: &PrivateKey, out: &Path) -> Result<Manifest, BundleError> {
    let (manifest, sources) = plan(spec)?;
    let bytes = manifest_bytes(&manifest);
    let sig = signing::sign(key, &bytes).map_err(|e| BundleError::new(Failure::Input, e))?;
    let mut tmp_name = out.as_os_str().to_owned();
    tmp_name.push(".partial");
    let tmp = PathBuf::from(tmp_name);
    let io_err = |what: &str, e: io::Error| {
        BundleError::new(Failure::Io, format!("{}: {what}: {e}", out.display()))
    };
    let result = (|| {
        let file = File::create(&tmp).map_err(|e| io_err("cannot create", e))?;
        let mut b = tar::Builder::new(BufWriter::new(file));
        b.mode(tar::HeaderMode::Deterministic);
        for (name, data) in [
            (MANIFEST_NAME, &bytes[..]),
            (SIGNATURE_NAME, sig.as_bytes()),
        ] {
            let mut h = tar_header(data.len() as u64, spec.mtime);
            b.append_data(&mut h, name, data)
                .map_err(|e| io_err("cannot write", e))?;
        }
        for (e, src) in manifest.entries.iter().zip(&sources) {
            let f = File::open(src).map_err(|x| input(src, "cannot open", x))?;
            let mut hr = HashingReader::new(BufReader::new(f).take(e.size));
            let mut h = tar_header(e.size, spec.mtime);
            b.append_data(&mut h, &e.path, &mut hr)
                .map_err(|x| input(src, "changed or unreadable while bundling", x))?;
            let (sha, n) = hr.finish();
            if sha != e.sha256 || n != e.size {
                return Err(input(
                    src,
                    "changed while bundling",
                    "its hash differs from the first read; run again",
                ));
            }
        }
        let mut w = b.into_inner().map_err(|e| io_err("cannot write", e))?;
        w.flush().map_err(|e| io_err("cannot write", e))?;
        let file = w
            .into_inner()
            .map_err(|e| io_err("cannot write", e.into_error()))?;
        file.sync_all().map_err(|e| io_err("cannot sync", e))?;
        std::fs::rename(&tmp, out).map_err(|e| io_err("cannot rename into place", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| manifest)
}

/// The head of a bundle: the manifest (its exact bytes and parsed) and the signature, if any.
#[derive(Debug)]
pub struct Head {
    /// The parsed manifest.
    pub manifest: Manifest,
    /// Its bytes, as signed.
    pub bytes: Vec<u8>,
    /// The signature (None: unsigned).
    pub signature: Option<SshSig>,
}

impl Head {
    /// The signing key's SHA-256 fingerprint, unverified.
    pub fn signer_fingerprint(&self) -> Option<String> {
        self.signature
            .as_ref()
            .map(|s| s.public_key().fingerprint(HashAlg::Sha256).to_string())
    }
}

fn format_err(path: &Path, m: impl std::fmt::Display) -> BundleError {
    BundleError::new(Failure::Format, format!("{}: {m}", path.display()))
}

fn read_small(entry: &mut impl Read, path: &Path, name: &str) -> Result<Vec<u8>, BundleError> {
    let mut v = Vec::new();
    entry.take(MAX_HEAD + 1).read_to_end(&mut v).map_err(|e| {
        BundleError::new(
            Failure::Integrity,
            format!(
                "{}: {name} is cut short (truncated bundle: copy it again): {e}",
                path.display()
            ),
        )
    })?;
    if v.len() as u64 > MAX_HEAD {
        return Err(format_err(path, format!("{name} is over {MAX_HEAD} bytes")));
    }
    Ok(v)
}

type Entries<'a> = tar::Entries<'a, BufReader<File>>;

/// Read the head from the start of the entries.
fn read_head(path: &Path, entries: &mut Entries<'_>) -> Result<Head, BundleError> {
    let not_bundle = |why: String| {
        format_err(
            path,
            format!("not an edgefleet bundle ({why}); make one with `edgefleet bundle create`"),
        )
    };
    let mut first = match entries.next() {
        Some(Ok(e)) => e,
        Some(Err(e)) => return Err(not_bundle(format!("not a tar file: {e}"))),
        None => return Err(not_bundle("an empty tar file".into())),
    };
    let name = first
        .path()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name != MANIFEST_NAME {
        return Err(not_bundle(format!(
            "its first entry is `{name}`, not `{MANIFEST_NAME}`"
        )));
    }
    let bytes = read_small(&mut first, path, MANIFEST_NAME)?;
    drop(first);
    let manifest = parse_manifest(&bytes).map_err(|e| match e {
        ManifestError::Newer(v) => format_err(
            path,
            format!(
                "bundle format version {v} is newer than this edgefleet reads (up to {FORMAT_VERSION}): upgrade \
                 edgefleet to use this bundle"
            ),
        ),
        ManifestError::Invalid(m) => format_err(path, m),
    })?;
    let mut signature = None;
    match entries.next() {
        Some(Ok(mut e)) => {
            let name = e
                .path()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name == SIGNATURE_NAME {
                let raw = read_small(&mut e, path, SIGNATURE_NAME)?;
                signature = Some(signing::parse_signature(&raw).map_err(|m| {
                    BundleError::new(
                        Failure::Signature,
                        format!("{}: {SIGNATURE_NAME}: {m}", path.display()),
                    )
                })?);
            }
        }
        Some(Err(e)) => {
            return Err(BundleError::new(
                Failure::Integrity,
                format!(
                    "{}: damaged after {MANIFEST_NAME} (truncated bundle? copy it again): {e}",
                    path.display()
                ),
            ))
        }
        None => {}
    }
    Ok(Head {
        manifest,
        bytes,
        signature,
    })
}

/// Read only the head (for `inspect`): fast, whatever the bundle's size.
pub fn inspect(path: &Path) -> Result<Head, BundleError> {
    let f = File::open(path).map_err(|e| {
        BundleError::new(Failure::Io, format!("{}: cannot open: {e}", path.display()))
    })?;
    let mut ar = tar::Archive::new(BufReader::new(f));
    let mut entries = ar
        .entries()
        .map_err(|e| format_err(path, format!("not a tar file: {e}")))?;
    read_head(path, &mut entries)
}

/// The outcome of a verification that got past the signature.
#[derive(Debug)]
pub struct Verified {
    /// The head.
    pub head: Head,
    /// Who signed.
    pub signer: Signer,
    /// Integrity problems (each names the entry), in bundle order.
    pub integrity: Vec<String>,
    /// Unsatisfied dependencies (each names the package and the constraint).
    pub dependencies: Vec<String>,
}

impl Verified {
    /// The most serious failure kind found, if any.
    pub fn failure(&self) -> Option<Failure> {
        if !self.integrity.is_empty() {
            Some(Failure::Integrity)
        } else if !self.dependencies.is_empty() {
            Some(Failure::Dependencies)
        } else {
            None
        }
    }
}

/// Verify a bundle in one pass: signature (fatal when bad), then every entry's size and hash and the set of
/// entries, then the dependency closure against `base` (or the manifest's base system when `None`). `now` is
/// the UTC time as `YYYYMMDDHHMMSS` (for `valid-after`/`valid-before`).
pub fn verify(
    path: &Path,
    signers: &[AllowedSigner],
    base: Option<&[BasePackage]>,
    now: &str,
) -> Result<Verified, BundleError> {
    let f = File::open(path).map_err(|e| {
        BundleError::new(Failure::Io, format!("{}: cannot open: {e}", path.display()))
    })?;
    let mut ar = tar::Archive::new(BufReader::new(f));
    let mut entries = ar
        .entries()
        .map_err(|e| format_err(path, format!("not a tar file: {e}")))?;
    let head = read_head(path, &mut entries)?;
    let sig = head.signature.as_ref().ok_or_else(|| {
        BundleError::new(
            Failure::Signature,
            format!(
                "{}: the bundle is unsigned (no {SIGNATURE_NAME} after {MANIFEST_NAME}): refuse it, or re-create \
                 it with `edgefleet bundle create --sign-key KEY`",
                path.display()
            ),
        )
    })?;
    let signer = signing::verify(&head.bytes, sig, signers, now)
        .map_err(|m| BundleError::new(Failure::Signature, format!("{}: {m}", path.display())))?;
    let mut integrity = Vec::new();
    let by_path: HashMap<&str, &Entry> = head
        .manifest
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e))
        .collect();
    let mut found: HashSet<String> = HashSet::new();
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                integrity.push(format!(
                    "the bundle is damaged or truncated after {} entries ({e}): copy it again",
                    found.len()
                ));
                break;
            }
        };
        let name = entry
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !entry.header().entry_type().is_file() {
            integrity.push(format!(
                "`{name}`: not a regular file (a bundle holds only files); re-create the bundle"
            ));
            continue;
        }
        let Some(want) = by_path.get(name.as_str()) else {
            integrity.push(format!("`{name}`: not listed in the signed manifest (added after signing?): refuse the bundle or re-create it"));
            continue;
        };
        if !found.insert(name.clone()) {
            integrity.push(format!(
                "`{name}` ({}): appears twice in the bundle",
                want.label()
            ));
            continue;
        }
        let declared = entry.header().size().unwrap_or(0);
        let mut hr = HashingReader::new(entry);
        if let Err(e) = io::copy(&mut hr, &mut io::sink()) {
            integrity.push(format!(
                "`{name}` ({}): cut short ({e}): the bundle is truncated; copy it again",
                want.label()
            ));
            break;
        }
        let (sha, n) = hr.finish();
        if n != want.size || declared != want.size {
            integrity.push(format!(
                "`{name}` ({}): {n} bytes, but the manifest says {}: the bundle was changed or damaged; copy it \
                 again from the original",
                want.label(),
                want.size
            ));
        } else if sha != want.sha256 {
            integrity.push(format!(
                "`{name}` ({}): SHA-256 {sha}, but the manifest says {}: the entry was changed after signing; do \
                 not install from this bundle, copy it again from the original",
                want.label(),
                want.sha256
            ));
        }
    }
    for e in &head.manifest.entries {
        if !found.contains(&e.path) {
            integrity.push(format!(
                "`{}` ({}): listed in the manifest but missing from the bundle (truncated or incomplete copy?): copy \
                 it again",
                e.path,
                e.label()
            ));
        }
    }
    let base = base.unwrap_or(&head.manifest.base_system);
    let mut dependencies = check_closure(&head.manifest.entries, base);
    if let Err(e) = install_order(&head.manifest.entries) {
        dependencies.push(e);
    }
    Ok(Verified {
        head,
        signer,
        integrity,
        dependencies,
    })
}
