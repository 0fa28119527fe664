//! The `docker` CLI's image and volume commands: `images`, `load` (a `docker save` tarball or a list of
//! references), `pull`, `rmi`, `volume ls|create|inspect|rm|prune`, and the image lookup `inspect` uses.
//!
//! The engine holds no layers: an image is a name, an ID and a size. It must not import another program.

use std::fs;
use std::io::Read;

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

/// Image references in a `docker save` tarball (`manifest.json` RepoTags), or in a text file listing them.
pub fn image_refs_in(bytes: &[u8]) -> Result<Vec<String>, String> {
    if bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b {
        return Err("Error processing tar file(exit status 1): compressed archives are not supported by the lab engine; use an uncompressed `docker save` tarball".into());
    }
    if bytes.len() >= 512 && &bytes[257..262] == b"ustar" {
        let mut off = 0;
        while off + 512 <= bytes.len() {
            let hdr = &bytes[off..off + 512];
            if hdr.iter().all(|&b| b == 0) {
                break;
            }
            let name_end = hdr[..100].iter().position(|&b| b == 0).unwrap_or(100);
            let name = String::from_utf8_lossy(&hdr[..name_end]).into_owned();
            let size_field = String::from_utf8_lossy(&hdr[124..136]);
            let size =
                usize::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
                    .map_err(|_| {
                        "Error processing tar file(exit status 1): archive/tar: invalid tar header"
                            .to_string()
                    })?;
            let data_start = off + 512;
            let data_end = data_start + size;
            if data_end > bytes.len() {
                return Err("Error processing tar file(exit status 1): unexpected EOF".into());
            }
            if name.trim_start_matches("./") == "manifest.json" {
                let m: Value =
                    serde_json::from_slice(&bytes[data_start..data_end]).map_err(|e| {
                        format!(
                            "Error processing tar file(exit status 1): invalid manifest.json: {e}"
                        )
                    })?;
                let tags: Vec<String> = m
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|e| {
                        e.get("RepoTags")
                            .and_then(|t| t.as_array())
                            .cloned()
                            .unwrap_or_default()
                    })
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect();
                return Ok(tags);
            }
            off = data_start + size.div_ceil(512) * 512;
        }
        return Err(
            "open /var/lib/docker/tmp/docker-import/manifest.json: no such file or directory"
                .into(),
        );
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "Error processing tar file(exit status 1): unexpected EOF".to_string())?;
    let refs: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if refs.is_empty() || refs.iter().any(|r| r.contains(char::is_whitespace)) {
        return Err("Error processing tar file(exit status 1): unexpected EOF".into());
    }
    Ok(refs)
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
    let refs = match image_refs_in(&bytes) {
        Ok(r) => r,
        Err(e) => {
            io.errln(e);
            return Ok(1);
        }
    };
    let now = st.env.now_ms;
    let size = bytes.len() as u64;
    let d = st.docker_mut()?;
    for r in refs {
        let (repo, tag) = engine::split_image(&r);
        d.images
            .retain(|im| !(im.repository == repo && im.tag == tag));
        d.images.push(Image {
            repository: repo.clone(),
            tag: tag.clone(),
            id: format!("sha256:{}", engine::digest(&r)),
            created_ms: now,
            size: size.max(1),
        });
        io.outln(format!("Loaded image: {repo}:{tag}"));
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
    fn image_refs_from_text_and_tar() {
        assert_eq!(
            image_refs_in(b"mcr.microsoft.com/azureiotedge-agent:1.5.21\n").unwrap(),
            vec!["mcr.microsoft.com/azureiotedge-agent:1.5.21".to_string()]
        );
        // A minimal ustar archive with one manifest.json entry.
        let manifest = br#"[{"Config":"c.json","RepoTags":["edge/agent:1.5"],"Layers":[]}]"#;
        let mut hdr = [0u8; 512];
        hdr[..13].copy_from_slice(b"manifest.json");
        let size = format!("{:011o}\0", manifest.len());
        hdr[124..136].copy_from_slice(size.as_bytes());
        hdr[257..262].copy_from_slice(b"ustar");
        let mut tar = hdr.to_vec();
        let mut data = manifest.to_vec();
        data.resize(512, 0);
        tar.extend(data);
        tar.extend([0u8; 1024]);
        assert_eq!(
            image_refs_in(&tar).unwrap(),
            vec!["edge/agent:1.5".to_string()]
        );
        assert!(image_refs_in(b"").is_err());
    }
}
