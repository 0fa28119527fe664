//! The `docker` CLI's image and volume commands: `images`, `load` (a `docker save` tarball or a list of
//! references), `pull`, `rmi`, `volume ls|create|inspect|rm|prune`, and the image lookup `inspect` uses.
//!
//! The engine holds no layers: an image is a name, an ID and a size; `load` takes the ID from the archive (the
//! SHA-256 of the image config, as dockerd). `pull` fails on an `airgapped` device as with no route out. It must
//! not import another program.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;

use sha2::{Digest, Sha256};

use serde_json::{json, Value};

use super::args::Cli;
use super::print::{go_indent, human_size, print_rows};
use crate::lab::sim::engine;
use crate::lab::sim::program::Io;
use crate::lab::sim::state::{Docker, Image, State, StateError, Volume};
use crate::lab::sim::time;

pub(super) fn find_image<'a>(d: &'a Docker, key: &str) -> Option<&'a Image> {
    let (repo, tag) = engine::split_image(key);
    d.images.iter().find(|im| {
        (im.repository == repo && im.tag == tag)
            || (key.len() >= 4
                && im
                    .id
                    .trim_start_matches("sha256:")
                    .starts_with(key.trim_start_matches("sha256:")))
    })
}

/// A dangling image (untagged: what a re-pulled tag leaves behind) is listed as `<none>`.
pub(crate) fn dangling(im: &Image) -> bool {
    im.repository == "<none>"
}

pub(super) fn image_json(im: &Image) -> Value {
    let (tags, digests) = if dangling(im) {
        (json!([]), json!([]))
    } else {
        (
            json!([format!("{}:{}", im.repository, im.tag)]),
            json!([format!(
                "{}@sha256:{}",
                im.repository,
                engine::digest(&im.id)
            )]),
        )
    };
    json!({
        "Id": im.id,
        "RepoTags": tags,
        "RepoDigests": digests,
        "Created": time::rfc3339_nanos(im.created_ms),
        "Size": im.size,
        "Architecture": "amd64",
        "Os": "linux"
    })
}

pub(super) fn images(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
    cli.expand_short("aq");
    let quiet = cli.flag(&["-q", "--quiet"]);
    let no_trunc = cli.flag(&["--no-trunc"]);
    let _ = cli.flag(&["-a", "--all", "--digests"]);
    let filters = cli.values(&["-f", "--filter"]);
    let format = cli.values(&["--format"]).pop();
    let now = st.env.now_ms;
    let d = st.docker()?;
    let mut imgs: Vec<&Image> = d.images.iter().collect();
    if let Some(repo) = cli.args.first() {
        let (r, t) = engine::split_image(repo);
        let explicit_tag = repo
            .rsplit_once(':')
            .map(|(_, t)| !t.contains('/'))
            .unwrap_or(false);
        imgs.retain(|im| im.repository == r && (!explicit_tag || im.tag == t));
    }
    for f in &filters {
        match f.as_str() {
            "dangling=true" => imgs.retain(|im| dangling(im)),
            "dangling=false" => imgs.retain(|im| !dangling(im)),
            _ => {}
        }
    }
    imgs.sort_by_key(|im| std::cmp::Reverse(im.created_ms));
    if quiet {
        for im in imgs {
            if no_trunc {
                io.outln(&im.id);
            } else {
                io.outln(&im.id.trim_start_matches("sha256:")[..12]);
            }
        }
        return Ok(0);
    }
    let format = format.unwrap_or_else(|| {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into()
    });
    let rows = imgs.into_iter().map(|im| {
        json!({
            "Repository": im.repository,
            "Tag": im.tag,
            "ID": &im.id.trim_start_matches("sha256:")[..12],
            "CreatedSince": format!("{} ago", time::docker_human(now.saturating_sub(im.created_ms))),
            "CreatedAt": time::docker_created_at(im.created_ms),
            "Size": human_size(im.size),
            "Digest": "<none>"
        })
    });
    Ok(print_rows(io, &format, |t| t.header("IMAGE ID"), rows))
}

/// One image a `docker load` input holds: its tags and, for an archive, its ID (`sha256:` + the SHA-256 of its
/// config, as dockerd computes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// `repo:tag` references (may be empty: dockerd then prints `Loaded image ID:`).
    pub tags: Vec<String>,
    /// The image ID, `None` for the lab's text-list input (a stable fake ID is derived from the reference).
    pub id: Option<String>,
}

/// The images of a `docker load` input: a `docker save` tarball (`manifest.json` `[{Config, RepoTags,
/// Layers}]`, or an OCI layout's `index.json` whose manifests name their config), or the lab's text file listing
/// references, one a line.
pub fn images_in(bytes: &[u8]) -> Result<Vec<LoadedImage>, String> {
    let tar_err = |what: &str| format!("Error processing tar file(exit status 1): {what}");
    if bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b {
        return Err(tar_err("compressed archives are not supported by the lab engine; use an uncompressed `docker save` tarball"));
    }
    if bytes.len() >= 512 && &bytes[257..262] == b"ustar" {
        // Small members only (manifest.json, index.json, configs, OCI manifests): layers are never kept.
        let mut small: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut a = tar::Archive::new(bytes);
        let entries = a
            .entries()
            .map_err(|e| tar_err(&format!("archive/tar: {e}")))?;
        for e in entries {
            let mut e = e.map_err(|e| tar_err(&format!("archive/tar: {e}")))?;
            let name = e
                .path()
                .map_err(|e| tar_err(&format!("archive/tar: {e}")))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            if e.size() <= 1024 * 1024 {
                let mut b = Vec::new();
                e.read_to_end(&mut b)
                    .map_err(|_| tar_err("unexpected EOF"))?;
                small.insert(name, b);
            }
        }
        let missing = |p: &str| {
            format!(
                "open /var/lib/docker/tmp/docker-import-1187046522/{p}: no such file or directory"
            )
        };
        let id_of = |config: &str| -> Result<String, String> {
            let b = small.get(config).ok_or_else(|| missing(config))?;
            Ok(format!("sha256:{}", hex::encode(Sha256::digest(b))))
        };
        if let Some(m) = small.get("manifest.json") {
            let m: Value = serde_json::from_slice(m)
                .map_err(|e| tar_err(&format!("invalid manifest.json: {e}")))?;
            let mut out = Vec::new();
            for item in m.as_array().into_iter().flatten() {
                let config = item.get("Config").and_then(Value::as_str).unwrap_or("");
                let tags = item
                    .get("RepoTags")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect();
                out.push(LoadedImage {
                    tags,
                    id: Some(id_of(config)?),
                });
            }
            return Ok(out);
        }
        if let Some(ix) = small.get("index.json") {
            let ix: Value = serde_json::from_slice(ix)
                .map_err(|e| tar_err(&format!("invalid index.json: {e}")))?;
            let mut out = Vec::new();
            for m in ix["manifests"].as_array().into_iter().flatten() {
                let blob =
                    |d: &Value| format!("blobs/{}", d.as_str().unwrap_or("").replacen(':', "/", 1));
                let mpath = blob(&m["digest"]);
                let manifest: Value = small
                    .get(&mpath)
                    .ok_or_else(|| missing(&mpath))
                    .and_then(|b| serde_json::from_slice(b).map_err(|e| tar_err(&e.to_string())))?;
                let tags = m["annotations"]["io.containerd.image.name"]
                    .as_str()
                    .map(|t| vec![t.to_string()])
                    .unwrap_or_default();
                out.push(LoadedImage {
                    tags,
                    id: Some(id_of(&blob(&manifest["config"]["digest"]))?),
                });
            }
            return Ok(out);
        }
        return Err(missing("manifest.json"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| tar_err("unexpected EOF"))?;
    let refs: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if refs.is_empty() || refs.iter().any(|r| r.contains(char::is_whitespace)) {
        return Err(tar_err("unexpected EOF"));
    }
    Ok(refs
        .into_iter()
        .map(|r| LoadedImage {
            tags: vec![r],
            id: None,
        })
        .collect())
}

pub(super) fn load(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
    let input = cli.values(&["-i", "--input"]).pop();
    let _ = cli.flag(&["-q", "--quiet"]);
    let bytes = match input {
        Some(p) => {
            let host = if p.starts_with('/') {
                st.env.path(&p)
            } else {
                std::path::PathBuf::from(&p)
            };
            match fs::read(&host) {
                Ok(b) => b,
                Err(e) => {
                    let reason = if e.kind() == std::io::ErrorKind::NotFound {
                        "no such file or directory".to_string()
                    } else {
                        e.to_string()
                    };
                    io.errln(format!("open {p}: {reason}"));
                    return Ok(1);
                }
            }
        }
        None => {
            let mut b = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut b);
            if b.is_empty() {
                io.errln("requested load from stdin, but stdin is empty");
                return Ok(1);
            }
            b
        }
    };
    let images = match images_in(&bytes) {
        Ok(r) => r,
        Err(e) => {
            io.errln(e);
            return Ok(1);
        }
    };
    let now = st.env.now_ms;
    let size = bytes.len() as u64;
    let d = st.docker_mut()?;
    for im in images {
        let Some(first) = im.tags.first() else {
            let id = im.id.unwrap_or_default();
            if !d.images.iter().any(|x| x.id == id) {
                d.images.push(Image {
                    repository: "<none>".into(),
                    tag: "<none>".into(),
                    id: id.clone(),
                    created_ms: now,
                    size: size.max(1),
                });
            }
            io.outln(format!("Loaded image ID: {id}"));
            continue;
        };
        let id = im
            .id
            .clone()
            .unwrap_or_else(|| format!("sha256:{}", engine::digest(first)));
        for r in &im.tags {
            let (repo, tag) = engine::split_image(r);
            if let Some(old) = d
                .images
                .iter_mut()
                .find(|x| x.repository == repo && x.tag == tag)
            {
                if old.id == id {
                    io.outln(format!("Loaded image: {repo}:{tag}"));
                    continue;
                }
                // dockerd keeps the old image, untagged.
                io.outln(format!(
                    "The image {repo}:{tag} already exists, renaming the old one with ID {} to empty string",
                    old.id
                ));
                old.repository = "<none>".into();
                old.tag = "<none>".into();
            }
            d.images.push(Image {
                repository: repo.clone(),
                tag: tag.clone(),
                id: id.clone(),
                created_ms: now,
                size: size.max(1),
            });
            io.outln(format!("Loaded image: {repo}:{tag}"));
        }
    }
    Ok(0)
}

pub(super) fn pull(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
    let _ = cli.flag(&["-q", "--quiet", "-a", "--all-tags"]);
    let _ = cli.values(&["--platform"]);
    let Some(r) = cli.args.first().cloned() else {
        io.errln("\"docker pull\" requires exactly 1 argument.\nSee 'docker pull --help'.");
        return Ok(1);
    };
    let now = st.env.now_ms;
    let (repo, tag) = engine::split_image(&r);
    if crate::lab::sim::pkgdb::airgapped(st) {
        // No route out: the registry's name does not even resolve (what an isolated device's dockerd says).
        let registry = match repo.split_once('/') {
            Some((host, _)) if host.contains('.') || host.contains(':') => host.to_string(),
            _ => "registry-1.docker.io".to_string(),
        };
        io.errln(format!(
            "Error response from daemon: Get \"https://{registry}/v2/\": dial tcp: lookup {registry} on 127.0.0.53:53: server misbehaving"
        ));
        return Ok(1);
    }
    let d = st.docker_mut()?;
    let had = d
        .images
        .iter()
        .any(|im| im.repository == repo && im.tag == tag);
    let digest = engine::digest(&r);
    io.outln(format!(
        "{tag}: Pulling from {}",
        repo.split_once('/').map(|x| x.1).unwrap_or(&repo)
    ));
    io.outln(format!("Digest: sha256:{digest}"));
    if had {
        io.outln(format!("Status: Image is up to date for {repo}:{tag}"));
    } else {
        d.images.push(Image {
            repository: repo.clone(),
            tag: tag.clone(),
            id: format!("sha256:{digest}"),
            created_ms: now,
            size: 150_000_000,
        });
        io.outln(format!("Status: Downloaded newer image for {repo}:{tag}"));
    }
    io.outln(format!("{repo}:{tag}"));
    Ok(0)
}

pub(super) fn volume(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
    if cli.args.is_empty() {
        io.outln("\nUsage:  docker volume COMMAND\n\nManage volumes");
        return Ok(0);
    }
    let sub = cli.args.remove(0);
    match sub.as_str() {
        "ls" | "list" => {
            let quiet = cli.flag(&["-q", "--quiet"]);
            let format = cli.values(&["--format"]).pop();
            let d = st.docker()?;
            let mut vols: Vec<&Volume> = d.volumes.iter().collect();
            vols.sort_by(|a, b| a.name.cmp(&b.name));
            if quiet {
                for v in vols {
                    io.outln(&v.name);
                }
                return Ok(0);
            }
            let format = format.unwrap_or_else(|| "table {{.Driver}}\t{{.Name}}".into());
            let rows = vols.into_iter().map(|v| json!({"Driver": v.driver, "Name": v.name, "Mountpoint": format!("/var/lib/docker/volumes/{}/_data", v.name), "Scope": "local"}));
            Ok(print_rows(
                io,
                &format,
                |t| t.header("ID").replace("NAME", "VOLUME NAME"),
                rows,
            ))
        }
        "prune" => {
            cli.expand_short("fa");
            let force = cli.flag(&["-f", "--force"]);
            let all = cli.flag(&["-a", "--all"]);
            if !force {
                io.out(if all {
                    "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
                } else {
                    "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
                });
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                if !line.trim().eq_ignore_ascii_case("y") {
                    return Ok(0);
                }
            }
            let d = st.docker_mut()?;
            let used: Vec<String> = d
                .containers
                .iter()
                .flat_map(|c| {
                    c.binds
                        .iter()
                        .map(|b| b.split(':').next().unwrap_or("").to_string())
                })
                .collect();
            let anonymous = |n: &str| n.len() == 64 && n.chars().all(|c| c.is_ascii_hexdigit());
            let (gone, kept): (Vec<Volume>, Vec<Volume>) = d
                .volumes
                .drain(..)
                .partition(|v| !used.contains(&v.name) && (all || anonymous(&v.name)));
            d.volumes = kept;
            for v in &gone {
                remove_volume_data(st, &v.name);
            }
            if !gone.is_empty() {
                io.outln("Deleted Volumes:");
                for v in &gone {
                    io.outln(&v.name);
                }
                io.outln("");
            }
            io.outln(format!(
                "Total reclaimed space: {}",
                human_size(gone.len() as u64 * 4096)
            ));
            Ok(0)
        }
        "rm" | "remove" => {
            let _ = cli.flag(&["-f", "--force"]);
            let mut code = 0;
            for name in cli.args.clone() {
                let d = st.docker_mut()?;
                let users: Vec<String> = d
                    .containers
                    .iter()
                    .filter(|c| {
                        c.binds
                            .iter()
                            .any(|b| b.split(':').next() == Some(name.as_str()))
                    })
                    .map(|c| c.id.clone())
                    .collect();
                if !users.is_empty() {
                    io.errln(format!(
                        "Error response from daemon: remove {name}: volume is in use - [{}]",
                        users.join(", ")
                    ));
                    code = 1;
                } else if let Some(i) = d.volumes.iter().position(|v| v.name == name) {
                    d.volumes.remove(i);
                    remove_volume_data(st, &name);
                    io.outln(&name);
                } else {
                    io.errln(format!(
                        "Error response from daemon: get {name}: no such volume"
                    ));
                    code = 1;
                }
            }
            Ok(code)
        }
        "create" => {
            let name = cli
                .args
                .first()
                .cloned()
                .unwrap_or_else(|| engine::digest(&st.env.now_ms.to_string()));
            let d = st.docker_mut()?;
            if !d.volumes.iter().any(|v| v.name == name) {
                d.volumes.push(Volume {
                    name: name.clone(),
                    driver: "local".into(),
                });
            }
            io.outln(name);
            Ok(0)
        }
        "inspect" => {
            let d = st.docker()?;
            let mut out = Vec::new();
            let mut code = 0;
            for name in &cli.args {
                match d.volumes.iter().find(|v| &v.name == name) {
                    Some(v) => out.push(json!({"Driver": v.driver, "Name": v.name, "Mountpoint": format!("/var/lib/docker/volumes/{}/_data", v.name), "Scope": "local", "Labels": null, "Options": null})),
                    None => {
                        io.errln(format!("Error response from daemon: get {name}: no such volume"));
                        code = 1;
                    }
                }
            }
            io.outln(go_indent(&Value::Array(out)));
            Ok(code)
        }
        other => {
            io.errln(format!(
                "docker: 'volume {other}' is not a docker command.\nSee 'docker --help'"
            ));
            Ok(1)
        }
    }
}

/// The engine deletes a volume's data with it (`<docker root>/volumes/NAME`).
fn remove_volume_data(st: &State, name: &str) {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return;
    }
    let _ = fs::remove_dir_all(st.env.path(&format!("/var/lib/docker/volumes/{name}")));
}

pub(super) fn rmi(st: &mut State, mut cli: Cli, io: &mut Io) -> Result<i32, StateError> {
    let force = cli.flag(&["-f", "--force"]);
    let mut code = 0;
    for name in cli.args.clone() {
        let d = st.docker_mut()?;
        let Some(im) = find_image(d, &name).cloned() else {
            io.errln(format!("Error response from daemon: No such image: {name}"));
            code = 1;
            continue;
        };
        let user = d
            .containers
            .iter()
            .find(|c| c.image_id == im.id)
            .map(|c| c.id[..12].to_string());
        match user {
            Some(cid) if !force => {
                io.errln(format!(
                    "Error response from daemon: conflict: unable to remove repository reference \"{name}\" (must force) - container {cid} is using its referenced image {}",
                    &im.id.trim_start_matches("sha256:")[..12]
                ));
                code = 1;
            }
            _ => {
                d.images.retain(|x| x != &im);
                if !dangling(&im) {
                    io.outln(format!("Untagged: {}:{}", im.repository, im.tag));
                }
                io.outln(format!("Deleted: {}", im.id));
            }
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_from_text_and_docker_save_tar() {
        assert_eq!(
            images_in(b"mcr.microsoft.com/azureiotedge-agent:1.5.21\n").unwrap(),
            vec![LoadedImage {
                tags: vec!["mcr.microsoft.com/azureiotedge-agent:1.5.21".to_string()],
                id: None
            }]
        );
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let manifest = br#"[{"Config":"c.json","RepoTags":["edge/agent:1.5"],"Layers":[]}]"#;
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [("c.json", &config[..]), ("manifest.json", &manifest[..])] {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, data).unwrap();
        }
        let tar = b.into_inner().unwrap();
        assert_eq!(
            images_in(&tar).unwrap(),
            vec![LoadedImage {
                tags: vec!["edge/agent:1.5".to_string()],
                id: Some(format!("sha256:{}", hex::encode(Sha256::digest(config))))
            }]
        );
        assert!(images_in(b"").is_err());
    }
}
