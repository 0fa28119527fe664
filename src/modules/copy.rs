//! `copy` and `template`: put a file on the device, only when it differs.
//!
//! The content is produced on the controller (a local file, `content:`, or a rendered template; `.age`
//! sources are decrypted in memory), compared by sha256 with the device's file (no transfer when equal), and
//! written atomically with its final mode and owner. Attribute-only differences are fixed without re-sending
//! the content. Secret content never appears in diffs.
//!
//! Also as in Ansible: a local directory as `src` is copied recursively (`dir/` its contents, `dir` the directory
//! itself), in one round trip for all the facts and one for all the writes; `remote_src: yes` copies a file
//! that is already on the device (on the device, atomically). A single file that is a service's systemd
//! drop-in is declared as a change that may cut the device off ([`CutOff`]: the dead-man revert).

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::util::{ancestors, file_result, Attrs};
use super::*;
use crate::facts::sha256_hex;

/// `copy` (template = false) or `template` (template = true).
pub struct Copy {
    /// Render `src` as a template?
    pub template: bool,
}

/// The arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    src: Option<String>,
    #[serde(default)]
    content: Option<Value>,
    dest: String,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    group: Option<String>,
    /// Ansible's `backup: yes`: a timestamped copy beside the file when its content changes.
    #[serde(default)]
    backup: bool,
    #[serde(default = "yes")]
    force: bool,
    // The template module's rendering settings (`#jinja2:` in the file overrides them).
    #[serde(default)]
    trim_blocks: Option<bool>,
    #[serde(default)]
    lstrip_blocks: Option<bool>,
    #[serde(default)]
    newline_sequence: Option<String>,
    #[serde(default)]
    block_start_string: Option<String>,
    #[serde(default)]
    block_end_string: Option<String>,
    #[serde(default)]
    variable_start_string: Option<String>,
    #[serde(default)]
    variable_end_string: Option<String>,
    #[serde(default)]
    comment_start_string: Option<String>,
    #[serde(default)]
    comment_end_string: Option<String>,
    #[serde(default)]
    directory_mode: Option<Mode>,
    /// `src` is on the device.
    #[serde(default)]
    remote_src: bool,
    #[serde(default)]
    // Accepted for compatibility with Ansible playbooks; local links are always followed here.
    #[allow(dead_code)]
    local_follow: Option<bool>,
    #[serde(default)]
    // Accepted for compatibility with Ansible playbooks; links at `dest` are followed.
    #[allow(dead_code)]
    follow: Option<bool>,
}

fn yes() -> bool {
    true
}

impl Args {
    /// The template settings these arguments ask for.
    fn overrides(&self) -> Result<crate::template::Overrides, ModuleError> {
        use crate::template::overrides::Setting;
        let mut ov = crate::template::Overrides::default();
        let bad = |e: String| ModuleError::Failed(format!("template: {e}"));
        for (k, v) in [
            ("block_start_string", &self.block_start_string),
            ("block_end_string", &self.block_end_string),
            ("variable_start_string", &self.variable_start_string),
            ("variable_end_string", &self.variable_end_string),
            ("comment_start_string", &self.comment_start_string),
            ("comment_end_string", &self.comment_end_string),
            ("newline_sequence", &self.newline_sequence),
        ] {
            if let Some(v) = v {
                ov.set(k, Setting::Str(v.clone())).map_err(bad)?;
            }
        }
        ov.trim_blocks = self.trim_blocks.unwrap_or(true);
        ov.lstrip_blocks = self.lstrip_blocks.unwrap_or(false);
        ov.check().map_err(bad)?;
        Ok(ov)
    }
}

/// Content bigger than this is never fetched for a diff.
const DIFF_LIMIT: u64 = 256 * 1024;

impl Copy {
    fn dest(&self, a: &Args) -> String {
        if a.dest.ends_with('/') {
            let base = a
                .src
                .as_deref()
                .map(|s| s.trim_end_matches(".age"))
                .map(|s| {
                    let b = s.rsplit('/').next().unwrap_or(s);
                    if self.template {
                        b.trim_end_matches(".j2").to_string()
                    } else {
                        b.to_string()
                    }
                })
                .unwrap_or_default();
            format!("{}{base}", a.dest)
        } else {
            a.dest.clone()
        }
    }
}

#[async_trait]
impl TypedModule for Copy {
    type Args = Args;
    type State = ();

    fn name(&self) -> &'static str {
        if self.template {
            "template"
        } else {
            "copy"
        }
    }

    fn check_args(&self, a: &Args) -> Result<(), ArgError> {
        if self.template {
            if a.src.is_none() {
                return Err(ArgError::new("template: missing required argument `src`"));
            }
            if a.content.is_some() {
                return Err(ArgError::key(
                    "content",
                    "template: `content` is not an argument of template; use copy",
                ));
            }
        } else {
            match (&a.src, &a.content) {
                (None, None) => return Err(ArgError::new("copy: give `src` or `content`")),
                (Some(_), Some(_)) => {
                    return Err(ArgError::new("copy: give `src` or `content`, not both"))
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn prefetch(&self, a: &Args, vars: &Context) -> Vec<FactReq> {
        let diff = vars
            .raw("ansible_diff_mode")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let dest = self.dest(a);
        let mut reqs = vec![FactReq::File {
            path: dest.clone(),
            content: diff,
        }];
        // `dest/` creates missing directories: know which in the same gather.
        if a.dest.ends_with('/') && !a.remote_src {
            reqs.extend(ancestors(&dest).into_iter().map(FactReq::file));
        }
        reqs
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<()>, ModuleError> {
        if !self.template {
            if let Some(src) = &a.src {
                if a.remote_src {
                    return plan_remote(a, src, cx).await;
                }
                if let Some(dir) = local_dir(cx, src) {
                    return plan_tree(a, &dir, src.ends_with('/'), cx).await;
                }
            }
        }
        let dest = self.dest(a);
        // Produce the content on the controller.
        let (content, mut secret): (Vec<u8>, bool) = match (&a.src, &a.content) {
            (_, Some(c)) => {
                let text = match c {
                    Value::String(s) => s.clone(),
                    other => serde_json::to_string_pretty(other).unwrap_or_default(),
                };
                (text.into_bytes(), false)
            }
            (Some(src), None) => {
                let subdir = if self.template { "templates" } else { "files" };
                let path = cx.find_src(src, subdir)?;
                let encrypted = path.extension().map(|e| e == "age").unwrap_or(false);
                let raw = if encrypted {
                    crate::vars::secrets::decrypt_file(&path)
                        .map_err(|d| ModuleError::Failed(d.to_string()))?
                } else {
                    std::fs::read(&path).map_err(|e| {
                        ModuleError::Failed(format!("cannot read {}: {e}", path.display()))
                    })?
                };
                if self.template {
                    let text = String::from_utf8(raw).map_err(|_| {
                        ModuleError::Failed(format!(
                            "template {} is not UTF-8 text",
                            path.display()
                        ))
                    })?;
                    let rendered = if encrypted {
                        cx.vars.render_str(&text, &crate::diag::display_path(&path))
                    } else {
                        cx.vars.render_file_with(&path, &a.overrides()?)
                    }
                    .map_err(|e| ModuleError::Failed(format!("template error: {}", e.message)))?;
                    (rendered.into_bytes(), encrypted)
                } else {
                    (raw, encrypted)
                }
            }
            (None, None) => return Err(ArgError::new("copy: give `src` or `content`").into()),
        };
        if !secret {
            secret = crate::redact::contains_secret(&String::from_utf8_lossy(&content));
        }
        let cur = cx.file(&dest, false).await?;
        let attrs = Attrs {
            mode: a
                .mode
                .as_ref()
                .map(|m| m.resolve(cur.exists.then_some(cur.mode), false)),
            owner: a.owner.clone(),
            group: a.group.clone(),
        };
        let want_diff = cx.diff && !secret;
        if cur.is_dir() {
            return Err(ModuleError::Failed(format!(
                "{dest} is a directory; end `dest` with `/` to copy into it"
            )));
        }
        let new_sum = sha256_hex(&content);
        let same_content = cur.is_file() && cur.sha256.as_deref() == Some(new_sum.as_str());
        let attr_changes = if cur.exists { attrs.diff(&cur) } else { vec![] };
        let mut result = Map::new();
        result.insert("dest".into(), json!(dest));
        result.insert("checksum".into(), json!(new_sum));
        result.insert("size".into(), json!(content.len()));
        if same_content && attr_changes.is_empty() || (cur.exists && !a.force) {
            result.extend(file_result(&cur));
            result.insert("dest".into(), json!(dest));
            return Ok(Plan::unchanged().with_result(result));
        }
        let mut diffs = Vec::new();
        if same_content {
            // Only attributes differ: fix them in place, no content transfer.
            diffs.push(Diff {
                path: dest.clone(),
                attrs: attr_changes,
                ..Diff::default()
            });
            let cmd = attrs
                .fix_cmd(&dest)
                .ok_or_else(|| ModuleError::Failed("nothing to fix".into()))?;
            return Ok(Plan::change(
                vec![Step::Exec {
                    exec: cx.exec(cmd),
                    what: format!("set attributes of {dest}"),
                }],
                (),
            )
            .with_diffs(diffs)
            .with_result(result)
            .touching(vec![Touched::Path(dest.clone())]));
        }
        let before = if want_diff && cur.is_file() && cur.size <= DIFF_LIMIT {
            cx.file(&dest, true).await?.text()
        } else {
            None
        };
        diffs.push(Diff {
            path: dest.clone(),
            before: if cur.exists {
                Some(before.unwrap_or_else(|| "<not fetched>\n".into()))
            } else {
                None
            },
            after: Some(String::from_utf8_lossy(&content).into_owned()),
            secret,
            attrs: attr_changes,
        });
        // `dest/`: the missing directories are created (mode `directory_mode`, else the default), as Ansible
        // does; otherwise the directory must exist.
        let dir_mode = a.directory_mode.as_ref().map(|m| m.resolve(None, true));
        let mut steps = Vec::new();
        if a.dest.ends_with('/') {
            let mut missing = Vec::new();
            for d in ancestors(&dest) {
                if !cx.file(&d, false).await?.exists {
                    missing.push(DirSpec {
                        path: d,
                        mode: dir_mode,
                        owner: a.owner.clone(),
                        group: a.group.clone(),
                    });
                }
            }
            if !missing.is_empty() {
                steps.push(Step::EnsureDirs(missing));
            }
        }
        steps.push(Step::Write(vec![FileWrite {
            path: dest.clone(),
            content: Bytes::from(content),
            secret,
            // No mode given: keep the existing file's, else 0644 (0600 for secret content).
            mode: attrs
                .mode
                .or(cur.exists.then_some(cur.mode))
                .or(Some(if secret { 0o600 } else { 0o644 })),
            owner: attrs.owner.clone(),
            group: attrs.group.clone(),
            backup: true,
            backup_beside: a.backup,
            parent: None,
        }]));
        let plan = Plan::change(steps, ())
            .with_diffs(diffs)
            .with_result(result);
        Ok(match drop_in_cut_off(&dest, cur.exists) {
            Some(c) => plan.may_cut_off(c),
            None => plan,
        })
    }
}

/// A systemd drop-in of a service (`/etc/systemd/system/UNIT.service.d/NAME.conf`: a proxy for docker, say)
/// changes how the unit runs and may cut the device off: declared so, and the dead-man revert reloads systemd
/// and restarts the unit on the previous drop-in.
fn drop_in_cut_off(dest: &str, previous: bool) -> Option<CutOff> {
    let rest = dest.strip_prefix("/etc/systemd/system/")?;
    let (dir, file) = rest.split_once('/')?;
    if file.contains('/') || !file.ends_with(".conf") {
        return None;
    }
    let unit = dir.strip_suffix(".d")?;
    unit.ends_with(".service").then(|| CutOff {
        why: format!("systemd drop-in {dest} changes"),
        reapply: vec![Reapply::DaemonReload, Reapply::Restart(unit.to_string())],
        previous,
    })
}

/// A local directory named by `src` (when no file by that name is found), in the search path's order.
fn local_dir(cx: &PlanCtx<'_>, src: &str) -> Option<std::path::PathBuf> {
    if cx.find_src(src, "files").is_ok() {
        return None;
    }
    let name = src.trim_end_matches('/');
    crate::template::search::candidates(cx.search, "files", name)
        .into_iter()
        .find(|c| c.is_dir())
}

/// A local tree: its directories, and its files with their content (relative paths).
type Tree = (Vec<String>, Vec<(String, Vec<u8>)>);

/// Every directory and file under `root` (relative paths, sorted; directories before what they hold).
fn walk(root: &std::path::Path) -> Result<Tree, ModuleError> {
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| ModuleError::Failed(format!("cannot read {}: {e}", dir.display())))?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries.into_iter().rev() {
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let p = e.path();
            if p.is_dir() {
                dirs.push(r.clone());
                stack.push((p, r));
            } else {
                let b = std::fs::read(&p).map_err(|e| {
                    ModuleError::Failed(format!("cannot read {}: {e}", p.display()))
                })?;
                files.push((r, b));
            }
        }
    }
    dirs.sort();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((dirs, files))
}

/// `copy: src=<local dir>`: the directory (`contents`: only what it holds) under `dest`, only what differs.
async fn plan_tree(
    a: &Args,
    root: &std::path::Path,
    contents: bool,
    cx: &PlanCtx<'_>,
) -> Result<Plan<()>, ModuleError> {
    let base = a.dest.trim_end_matches('/').to_string();
    let top = if contents {
        base.clone()
    } else {
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{base}/{name}")
    };
    let (dirs, files) = walk(root)?;
    let at = |rel: &str| format!("{top}/{rel}");
    // Every fact in one round trip.
    let mut reqs = vec![FactReq::file(base.clone()), FactReq::file(top.clone())];
    reqs.extend(dirs.iter().map(|d| FactReq::file(at(d))));
    reqs.extend(files.iter().map(|(f, _)| FactReq::file(at(f))));
    cx.facts
        .gather(cx.transport, &reqs, cx.become_.clone())
        .await?;
    let dir_mode = a.directory_mode.as_ref().map(|m| m.resolve(None, true));
    let mut ensure = Vec::new();
    let mut diffs = Vec::new();
    let mut wanted_dirs = vec![base.clone()];
    if top != base {
        wanted_dirs.push(top.clone());
    }
    wanted_dirs.extend(dirs.iter().map(|d| at(d)));
    for d in wanted_dirs {
        let f = cx.file(&d, false).await?;
        if f.exists && !f.is_dir() {
            return Err(ModuleError::Failed(format!(
                "{d} exists and is not a directory"
            )));
        }
        if !f.exists {
            diffs.push(Diff {
                path: d.clone(),
                attrs: vec!["state: absent -> directory".into()],
                ..Diff::default()
            });
            ensure.push(DirSpec {
                path: d,
                mode: dir_mode,
                owner: a.owner.clone(),
                group: a.group.clone(),
            });
        }
    }
    let mut writes = Vec::new();
    for (rel, content) in files {
        let dest = at(&rel);
        let cur = cx.file(&dest, false).await?;
        let attrs = Attrs {
            mode: a
                .mode
                .as_ref()
                .map(|m| m.resolve(cur.exists.then_some(cur.mode), false)),
            owner: a.owner.clone(),
            group: a.group.clone(),
        };
        let same = cur.is_file() && cur.sha256.as_deref() == Some(sha256_hex(&content).as_str());
        let attr_changes = if cur.exists { attrs.diff(&cur) } else { vec![] };
        if same && attr_changes.is_empty() || (cur.exists && !a.force) {
            continue;
        }
        diffs.push(Diff {
            path: dest.clone(),
            before: None,
            after: Some(String::from_utf8_lossy(&content).into_owned()),
            secret: crate::redact::contains_secret(&String::from_utf8_lossy(&content)),
            attrs: attr_changes,
        });
        writes.push(FileWrite {
            path: dest,
            secret: crate::redact::contains_secret(&String::from_utf8_lossy(&content)),
            content: Bytes::from(content),
            mode: attrs
                .mode
                .or(cur.exists.then_some(cur.mode))
                .or(Some(0o644)),
            owner: attrs.owner,
            group: attrs.group,
            backup: true,
            backup_beside: a.backup,
            parent: None,
        });
    }
    let mut result = Map::new();
    result.insert("dest".into(), json!(format!("{base}/")));
    let mut steps = Vec::new();
    if !ensure.is_empty() {
        steps.push(Step::EnsureDirs(ensure));
    }
    if !writes.is_empty() {
        steps.push(Step::Write(writes));
    }
    if steps.is_empty() {
        return Ok(Plan::unchanged().with_result(result));
    }
    Ok(Plan::change(steps, ())
        .with_diffs(diffs)
        .with_result(result))
}

/// Copy a file that is on the device, on the device: into a temporary file beside `dest`, mode and owner set,
/// moved into place. Arguments: src dest mode owner group.
const REMOTE_COPY: &str = r#"src=$1; d=$2; mode=$3; owner=$4; group=$5
dir=$(dirname -- "$d")
tmp=$(mktemp -- "$dir/.edgefleet.XXXXXX") || { echo "edgefleet: cannot create a temporary file in $dir" >&2; exit 1; }
trap 'rm -f -- "$tmp"' EXIT
cp -- "$src" "$tmp" && chmod -- "$mode" "$tmp" || exit 1
if [ -n "$owner" ]; then chown -- "$owner" "$tmp" || exit 1; fi
if [ -n "$group" ]; then chgrp -- "$group" "$tmp" || exit 1; fi
mv -f -- "$tmp" "$d""#;

/// `copy: remote_src: yes`.
async fn plan_remote(a: &Args, src: &str, cx: &PlanCtx<'_>) -> Result<Plan<()>, ModuleError> {
    let s = cx.file(src, false).await?;
    if !s.exists {
        return Ok(Plan::fail(format!("Source {src} not found")));
    }
    if s.is_dir() {
        return Err(ModuleError::Failed(format!(
            "copy: remote_src of a directory ({src}) is not supported; copy its files one by one"
        )));
    }
    let base = src.rsplit('/').next().unwrap_or(src);
    let mut dest = a.dest.clone();
    if dest.ends_with('/') {
        dest.push_str(base);
    } else if cx.file(&dest, false).await?.is_dir() {
        dest = format!("{dest}/{base}");
    }
    let cur = cx.file(&dest, false).await?;
    let attrs = Attrs {
        mode: a
            .mode
            .as_ref()
            .map(|m| m.resolve(cur.exists.then_some(cur.mode), false)),
        owner: a.owner.clone(),
        group: a.group.clone(),
    };
    let mut result = Map::new();
    result.insert("dest".into(), json!(dest));
    result.insert("src".into(), json!(src));
    if let Some(sum) = &s.sha256 {
        result.insert("checksum".into(), json!(sum));
    }
    let same = cur.is_file() && cur.sha256.is_some() && cur.sha256 == s.sha256;
    let attr_changes = if cur.exists { attrs.diff(&cur) } else { vec![] };
    if same && attr_changes.is_empty() || (cur.exists && !a.force) {
        return Ok(Plan::unchanged().with_result(result));
    }
    let mode = attrs
        .mode
        .or(cur.exists.then_some(cur.mode))
        .unwrap_or(0o644);
    let cmd = Cmd::new("set --")
        .arg(src)
        .arg(dest.clone())
        .arg(format!("{mode:04o}"))
        .arg(a.owner.clone().unwrap_or_default())
        .arg(a.group.clone().unwrap_or_default())
        .raw(";")
        .raw(REMOTE_COPY);
    Ok(Plan::change(
        vec![Step::Exec {
            exec: cx.exec(cmd),
            what: format!("copy {src} to {dest} on the device"),
        }],
        (),
    )
    .with_diffs(vec![Diff {
        path: dest.clone(),
        attrs: attr_changes,
        ..Diff::default()
    }])
    .with_result(result)
    .touching(vec![Touched::Path(dest)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_drop_ins_may_cut_the_device_off() {
        let c =
            drop_in_cut_off("/etc/systemd/system/docker.service.d/http-proxy.conf", true).unwrap();
        assert_eq!(
            c.reapply,
            vec![
                Reapply::DaemonReload,
                Reapply::Restart("docker.service".into())
            ]
        );
        assert!(c.previous);
        for not in [
            "/etc/systemd/system/docker.service",
            "/etc/systemd/system/docker.service.d/notes.txt",
            "/etc/systemd/system/x.timer.d/a.conf",
            "/etc/docker/daemon.json",
        ] {
            assert!(drop_in_cut_off(not, true).is_none(), "{not}");
        }
    }
}
