//! `edgefleet bundle create|verify|inspect`: the offline bundle on the operator's machine.
//!
//! Owns turning flags into calls of the `bundle` domain layer, the `--apt`/`--docker` conveniences (they run
//! `apt-get download` / `docker save` on this machine into a private temp directory, argv only, no shell),
//! the printed results (text or JSON) and the mapping of each [`Failure`] to its exit code:
//! 0 ok, 1 I/O, 4 unusable input file, 20 signature, 21 integrity, 22 dependencies, 23 format.
//! Must not parse or check bundle content itself (`bundle/`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::bundle::archive::{self, CreateSpec, Head, Verified};
use crate::bundle::closure::{install_order, read_base_system};
use crate::bundle::manifest::EntryKind;
use crate::bundle::signing::{load_signing_key, read_allowed_signers};
use crate::bundle::{BundleError, Failure};
use crate::cli::{
    BundleArgs, BundleCommand, BundleCreateArgs, BundleInspectArgs, BundleOutput, BundleVerifyArgs,
};
use crate::error::{AppError, ExitCode};

/// Run `edgefleet bundle ...`.
pub fn run(args: BundleArgs) -> Result<ExitCode, AppError> {
    let res = match args.command {
        BundleCommand::Create(a) => create(a),
        BundleCommand::Verify(a) => verify(&a),
        BundleCommand::Inspect(a) => inspect(&a),
    };
    res.map_err(|e| AppError::Coded(exit_code(e.kind), e.message.replace('\n', "\nerror: ")))
}

/// The exit code of a failure kind.
fn exit_code(kind: Failure) -> ExitCode {
    match kind {
        Failure::Input => ExitCode::Parse,
        Failure::Io => ExitCode::Error,
        Failure::Format => ExitCode::BundleFormat,
        Failure::Signature => ExitCode::BundleSignature,
        Failure::Integrity => ExitCode::BundleIntegrity,
        Failure::Dependencies => ExitCode::BundleDependencies,
    }
}

/// Now (or `$SOURCE_DATE_EPOCH`, for reproducible bundles) as RFC 3339 and Unix time.
fn creation_time() -> Result<(String, u64), BundleError> {
    let now = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => {
            let secs: i64 = v.trim().parse().map_err(|_| {
                BundleError::new(
                    Failure::Input,
                    format!("SOURCE_DATE_EPOCH=`{v}` is not a number of seconds"),
                )
            })?;
            time::OffsetDateTime::from_unix_timestamp(secs)
                .map_err(|e| BundleError::new(Failure::Input, format!("SOURCE_DATE_EPOCH: {e}")))?
        }
        Err(_) => time::OffsetDateTime::now_utc(),
    };
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let text = now
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| BundleError::new(Failure::Io, format!("cannot format the time: {e}")))?;
    Ok((text, u64::try_from(now.unix_timestamp()).unwrap_or(0)))
}

/// A private temp directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, BundleError> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        for i in 0..100u32 {
            let p = base.join(format!("edgefleet-bundle-{}-{i}", std::process::id()));
            if std::fs::DirBuilder::new().mode(0o700).create(&p).is_ok() {
                return Ok(TempDir(p));
            }
        }
        Err(BundleError::new(
            Failure::Io,
            format!("cannot create a temp directory in {}", base.display()),
        ))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run a fetch tool; the error says which command failed and what it printed.
fn fetch(cmd: &mut Command, what: &str, hint: &str) -> Result<(), BundleError> {
    let out = cmd.output().map_err(|e| {
        BundleError::new(
            Failure::Input,
            format!("{what}: cannot run it: {e} ({hint})"),
        )
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(BundleError::new(
            Failure::Input,
            format!("{what} failed ({}): {} ({hint})", out.status, err.trim()),
        ));
    }
    Ok(())
}

/// `--apt NAME=VERSION` and `--docker IMAGE`: fetch into `tmp`, return the files made.
fn fetch_sources(
    a: &BundleCreateArgs,
    tmp: &Path,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>), BundleError> {
    let mut debs = Vec::new();
    let mut images = Vec::new();
    for (i, spec) in a.apt.iter().enumerate() {
        let Some((name, version)) = spec
            .split_once('=')
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        else {
            return Err(BundleError::new(
                Failure::Input,
                format!("--apt `{spec}`: expected NAME=VERSION"),
            ));
        };
        let dir = tmp.join(format!("apt-{i}"));
        std::fs::create_dir(&dir)
            .map_err(|e| BundleError::new(Failure::Io, format!("{}: {e}", dir.display())))?;
        fetch(
            Command::new("apt-get")
                .arg("download")
                .arg("--")
                .arg(format!("{name}={version}"))
                .current_dir(&dir),
            &format!("apt-get download {name}={version}"),
            "is the package in this machine's apt sources? run `apt-get update`",
        )?;
        let mut got: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| BundleError::new(Failure::Io, format!("{}: {e}", dir.display())))?
            .filter_map(|d| d.ok().map(|d| d.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "deb"))
            .collect();
        if got.len() != 1 {
            return Err(BundleError::new(
                Failure::Input,
                format!(
                    "apt-get download {name}={version} left {} .deb files, expected one",
                    got.len()
                ),
            ));
        }
        debs.append(&mut got);
    }
    for (i, image) in a.docker.iter().enumerate() {
        if image.starts_with('-') || image.is_empty() {
            return Err(BundleError::new(
                Failure::Input,
                format!("--docker `{image}`: not an image name"),
            ));
        }
        let safe: String = image
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let file = tmp.join(format!("{i}-{safe}.tar"));
        fetch(
            Command::new("docker")
                .arg("save")
                .arg("-o")
                .arg(&file)
                .arg(image),
            &format!("docker save {image}"),
            "is the image pulled on this machine (`docker pull`)?",
        )?;
        images.push(file);
    }
    Ok((debs, images))
}

fn create(a: BundleCreateArgs) -> Result<ExitCode, BundleError> {
    if a.debs.is_empty()
        && a.image_tars.is_empty()
        && a.templates.is_empty()
        && a.apt.is_empty()
        && a.docker.is_empty()
    {
        return Err(BundleError::new(
            Failure::Input,
            "nothing to bundle: give --deb, --image-tar, --config-template, --apt or --docker",
        ));
    }
    let key = load_signing_key(&a.sign_key).map_err(|m| BundleError::new(Failure::Input, m))?;
    let base_system = match &a.base_system {
        Some(p) => read_base_system(p).map_err(|m| BundleError::new(Failure::Input, m))?,
        None => Vec::new(),
    };
    let (created, mtime) = creation_time()?;
    let tmp = if a.apt.is_empty() && a.docker.is_empty() {
        None
    } else {
        Some(TempDir::new()?)
    };
    let (mut debs, mut images) = (a.debs.clone(), a.image_tars.clone());
    if let Some(t) = &tmp {
        let (d, i) = fetch_sources(&a, &t.0)?;
        debs.extend(d);
        images.extend(i);
    }
    let spec = CreateSpec {
        debs,
        images,
        templates: a.templates.clone(),
        base_system,
        created,
        mtime,
        creator: format!("edgefleet {}", env!("CARGO_PKG_VERSION")),
    };
    let m = archive::create(&spec, &key, &a.output)?;
    let total: u64 = m.entries.iter().map(|e| e.size).sum();
    let count = |k| m.entries.iter().filter(|e| e.kind == k).count();
    println!(
        "{}: {} debs, {} image archives, {} templates ({total} bytes), signed by {}",
        a.output.display(),
        count(EntryKind::Deb),
        count(EntryKind::Image),
        count(EntryKind::Template),
        key.public_key().fingerprint(ssh_key::HashAlg::Sha256)
    );
    Ok(ExitCode::Ok)
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

fn verify(a: &BundleVerifyArgs) -> Result<ExitCode, BundleError> {
    let signers = read_allowed_signers(&a.allowed_signers)
        .map_err(|m| BundleError::new(Failure::Input, m))?;
    let base = match &a.base_system {
        Some(p) => Some(read_base_system(p).map_err(|m| BundleError::new(Failure::Input, m))?),
        None => None,
    };
    let v = archive::verify(&a.bundle, &signers, base.as_deref(), &now_compact())?;
    let code = v.failure().map_or(ExitCode::Ok, exit_code);
    match a.output {
        BundleOutput::Json => println!(
            "{}",
            serde_json::to_string_pretty(&verify_json(a, &v, code)).unwrap_or_default()
        ),
        BundleOutput::Text => print_verify(&a.bundle, &v),
    }
    Ok(code)
}

fn verify_json(a: &BundleVerifyArgs, v: &Verified, code: ExitCode) -> serde_json::Value {
    json!({
        "bundle": a.bundle.display().to_string(),
        "ok": v.failure().is_none(),
        "exit_code": code.code(),
        "signer": {"principals": v.signer.principals, "fingerprint": v.signer.fingerprint, "line": v.signer.line},
        "entries": v.head.manifest.entries.len(),
        "integrity": v.integrity,
        "dependencies": v.dependencies,
    })
}

fn print_verify(path: &Path, v: &Verified) {
    let p = path.display();
    let m = &v.head.manifest;
    println!(
        "{p}: signature ok: signed by {} ({}, allowed-signers line {})",
        v.signer.principals, v.signer.fingerprint, v.signer.line
    );
    for e in &v.integrity {
        eprintln!("error: {p}: {e}");
    }
    for e in &v.dependencies {
        eprintln!("error: {p}: {e}");
    }
    if v.integrity.is_empty() {
        let total: u64 = m.entries.iter().map(|e| e.size).sum();
        println!(
            "{p}: {} entries, {total} bytes: every size and SHA-256 matches the manifest",
            m.entries.len()
        );
    }
    let debs = m
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Deb)
        .count();
    if v.dependencies.is_empty() {
        println!(
            "{p}: dependencies closed: every Depends and Pre-Depends of {debs} debs is satisfied"
        );
    }
    match v.failure() {
        None => println!("{p}: ok"),
        Some(_) => eprintln!(
            "{p}: verification failed: {} integrity problems, {} unsatisfied dependencies; do not install from it",
            v.integrity.len(),
            v.dependencies.len()
        ),
    }
}

fn inspect(a: &BundleInspectArgs) -> Result<ExitCode, BundleError> {
    let head = archive::inspect(&a.bundle)?;
    match a.output {
        BundleOutput::Json => println!(
            "{}",
            serde_json::to_string_pretty(&inspect_json(&head)).unwrap_or_default()
        ),
        BundleOutput::Text => print_inspect(&head),
    }
    Ok(ExitCode::Ok)
}

fn inspect_json(h: &Head) -> serde_json::Value {
    let sig = h.signature.as_ref().map(|s| {
        json!({
            "algorithm": s.algorithm().to_string(),
            "fingerprint": h.signer_fingerprint(),
            "namespace": s.namespace(),
            "verified": false,
        })
    });
    let order = install_order(&h.manifest.entries)
        .ok()
        .map(|o| o.iter().map(|e| e.name.clone()).collect::<Vec<_>>());
    json!({ "manifest": h.manifest, "signature": sig, "install_order": order })
}

fn print_inspect(h: &Head) {
    let m = &h.manifest;
    println!(
        "bundle format {}, created {} by {}{}",
        m.format_version,
        m.created,
        m.creator,
        m.architecture
            .as_deref()
            .map(|a| format!(", architecture {a}"))
            .unwrap_or_default()
    );
    match (&h.signature, h.signer_fingerprint()) {
        (Some(s), Some(fp)) => println!(
            "signature: {} key {fp}, namespace {} (not checked here: run `edgefleet bundle verify`)",
            s.algorithm(),
            s.namespace()
        ),
        _ => println!("signature: none (unsigned: `bundle verify` refuses it)"),
    }
    if !m.base_system.is_empty() {
        println!("base system: {} packages declared", m.base_system.len());
    }
    match install_order(&m.entries) {
        Ok(o) if !o.is_empty() => println!(
            "install order: {}",
            o.iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Ok(_) => {}
        Err(e) => println!("install order: none ({e})"),
    }
    for e in &m.entries {
        println!(
            "{:<8} {:<40} {:<24} {:<7} {:>12}  sha256:{}",
            format!("{:?}", e.kind).to_lowercase(),
            e.name,
            e.version.as_deref().unwrap_or("-"),
            e.architecture.as_deref().unwrap_or("-"),
            e.size,
            &e.sha256[..e.sha256.len().min(16)]
        );
        if !e.pre_depends.is_empty() {
            println!("         Pre-Depends: {}", e.pre_depends);
        }
        if !e.depends.is_empty() {
            println!("         Depends: {}", e.depends);
        }
        if !e.provides.is_empty() {
            println!("         Provides: {}", e.provides);
        }
        for i in &e.images {
            println!(
                "         image {} [{}] {}/{}, {} layers",
                i.id,
                i.repo_tags.join(", "),
                i.os,
                i.architecture,
                i.layers
            );
        }
    }
}
