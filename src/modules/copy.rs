//! `copy` and `template`: put a file on the device, only when it differs.
//!
//! The content is produced on the controller (a local file, `content:`, or a rendered template; `.age`
//! sources are decrypted in memory), compared by sha256 with the device's file (no transfer when equal), and
//! written atomically with its final mode and owner. Attribute-only differences are fixed without re-sending
//! the content. Secret content never appears in diffs.

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::util::{file_result, Attrs};
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
    #[serde(default)]
    // Accepted for compatibility with Ansible playbooks; has no effect here.
    #[allow(dead_code)]
    backup: Option<bool>,
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
        vec![FactReq::File {
            path: self.dest(a),
            content: diff,
        }]
    }

    async fn plan(&self, a: &Args, cx: &PlanCtx<'_>) -> Result<Plan<()>, ModuleError> {
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
        let attrs = Attrs {
            mode: a.mode.map(|m| m.0),
            owner: a.owner.clone(),
            group: a.group.clone(),
        };
        let want_diff = cx.diff && !secret;
        let cur = cx.file(&dest, false).await?;
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
            .with_result(result));
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
        let dir_mode = a.directory_mode.map(|m| m.0);
        Ok(Plan::change(
            vec![Step::Write(vec![FileWrite {
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
                parent: dir_mode.map(|m| DirSpec {
                    path: dest
                        .rsplit_once('/')
                        .map(|(d, _)| d.to_string())
                        .unwrap_or_default(),
                    mode: Some(m),
                    owner: None,
                    group: None,
                }),
            }])],
            (),
        )
        .with_diffs(diffs)
        .with_result(result))
    }
}
