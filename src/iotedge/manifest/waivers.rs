//! Waivers: a finding the operator accepts, with the reason. Waived findings are still reported (marked, with
//! the reason); they only stop counting towards the exit code.
//!
//! Two places:
//! - a file `.edgefleet-lint.yml` in the directory of the linted files:
//!   `waivers: [{rule: EF501, file: deployment.json, module: tempSensor, reason: "..."}]` (`rule` and `reason`
//!   required; `file` — a file name in that directory — and `module` narrow it);
//! - inline, in template files (the only manifests that may hold comments): a comment
//!   `// edgefleet-lint: waive EF501 -- reason` waives the rule (ids or names, comma-separated) for the JSON
//!   member that follows the comment (e.g. one module), everywhere inside it.
//!
//! A waiver without a reason is an error (EF020) and waives nothing; a waiver that matches no finding is a
//! warning (EF021); a waiver that cannot be read is an error (EF022). Pure: no I/O (the command reads the file).

use std::path::{Path, PathBuf};

use super::finding::Finding;
use super::rules::rule;
use super::source::{Member, Node, Parsed, Pos};

/// A `.edgefleet-lint.yml` file the command found next to a linted file.
#[derive(Debug, Clone)]
pub struct WaiverFile {
    /// Its path (its directory is the directory it covers).
    pub path: PathBuf,
    /// Its content.
    pub text: String,
}

/// The name of the waiver file.
pub const WAIVER_FILE: &str = ".edgefleet-lint.yml";

/// The inline marker in template comments.
const INLINE: &str = "edgefleet-lint:";

struct Waiver {
    rules: Vec<&'static str>,
    /// Where it is written (for EF02x findings).
    at_file: PathBuf,
    at: Pos,
    /// The file it applies to (the directory's files when `file` is not given).
    dir: PathBuf,
    file: Option<String>,
    module: Option<String>,
    /// Inline: the range of the member it covers, in `dir`/`file`.
    scope: Option<(Pos, Pos)>,
    reason: String,
}

fn within(p: Pos, (a, b): (Pos, Pos)) -> bool {
    let k = (p.line, p.col);
    k >= (a.line, a.col) && k < (b.line, b.col)
}

impl Waiver {
    fn matches(&self, f: &Finding) -> bool {
        self.rules.contains(&f.rule)
            && f.file.parent().unwrap_or(Path::new("")) == self.dir
            && self
                .file
                .as_deref()
                .is_none_or(|n| f.file.file_name().and_then(|x| x.to_str()) == Some(n))
            && self
                .module
                .as_deref()
                .is_none_or(|m| f.module.as_deref() == Some(m))
            && self.scope.is_none_or(|s| within(f.pos, s))
    }
}

fn rules_of(
    text: &str,
    at_file: &Path,
    at: Pos,
    out: &mut Vec<Finding>,
) -> Option<Vec<&'static str>> {
    let mut ids = Vec::new();
    for r in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match rule(r) {
            Some(x) => ids.push(x.id),
            None => {
                out.push(Finding::new("EF022", at_file, at, format!("waiver names rule `{r}`, which does not exist (see `edgefleet lint --explain`)")));
                return None;
            }
        }
    }
    if ids.is_empty() {
        out.push(Finding::new(
            "EF022",
            at_file,
            at,
            "waiver names no rule: give `rule: EF...`",
        ));
        return None;
    }
    Some(ids)
}

fn from_file(w: &WaiverFile, out: &mut Vec<Finding>) -> Vec<Waiver> {
    let dir = w.path.parent().unwrap_or(Path::new("")).to_path_buf();
    let bad = |out: &mut Vec<Finding>, line: u64, col: u64, msg: String| {
        out.push(Finding::new(
            "EF022",
            &w.path,
            Pos {
                line: line as u32,
                col: col as u32,
            },
            msg,
        ));
    };
    let root = match crate::yaml::parse_str(&w.text, &w.path) {
        Ok(n) => n,
        Err(d) => {
            bad(out, d.line, d.col, format!("not YAML: {}", d.message));
            return Vec::new();
        }
    };
    if root.is_null() {
        return Vec::new();
    }
    let Some(list) = root.get("waivers").and_then(|l| l.as_seq()) else {
        bad(
            out,
            root.line,
            root.col,
            "expected `waivers:` with a list of {rule, file, module, reason}".into(),
        );
        return Vec::new();
    };
    let mut ws = Vec::new();
    for item in list {
        let Some(map) = item.as_map() else {
            bad(
                out,
                item.line,
                item.col,
                "each waiver is a mapping: {rule, file, module, reason}".into(),
            );
            continue;
        };
        if let Some((k, _)) = map
            .iter()
            .find(|(k, _)| !matches!(k.as_str(), Some("rule" | "file" | "module" | "reason")))
        {
            bad(
                out,
                k.line,
                k.col,
                format!(
                    "unknown waiver key `{}`: use rule, file, module, reason",
                    k.as_str().unwrap_or("?")
                ),
            );
            continue;
        }
        let at = Pos {
            line: item.line as u32,
            col: item.col as u32,
        };
        let s = |k: &str| item.get(k).and_then(|n| n.as_str()).map(str::to_string);
        let Some(rules) = rules_of(&s("rule").unwrap_or_default(), &w.path, at, out) else {
            continue;
        };
        let reason = s("reason").unwrap_or_default();
        if reason.trim().is_empty() {
            out.push(Finding::new(
                "EF020",
                &w.path,
                at,
                format!(
                    "waiver of {} has no `reason`: say why the rule does not apply here",
                    rules.join(", ")
                ),
            ));
            continue;
        }
        ws.push(Waiver {
            rules,
            at_file: w.path.clone(),
            at,
            dir: dir.clone(),
            file: s("file"),
            module: s("module"),
            scope: None,
            reason: reason.trim().to_string(),
        });
    }
    ws
}

/// The member that starts first after `p`, at any depth.
fn next_member(n: &Node, p: Pos) -> Option<&Member> {
    let after = |q: Pos| (q.line, q.col) > (p.line, p.col);
    for m in n.members() {
        if after(m.key_pos) {
            return Some(m);
        }
        if within(p, (m.value.pos, m.value.end)) {
            return next_member(&m.value, p);
        }
    }
    for item in n.items() {
        if within(p, (item.pos, item.end)) {
            return next_member(item, p);
        }
    }
    None
}

fn inline(file: &Path, parsed: &Parsed, out: &mut Vec<Finding>) -> Vec<Waiver> {
    let mut ws = Vec::new();
    for c in &parsed.comments {
        let Some(rest) = c.text.strip_prefix(INLINE) else {
            continue;
        };
        let rest = rest.trim();
        let Some(rest) = rest.strip_prefix("waive") else {
            out.push(Finding::new(
                "EF022",
                file,
                c.pos,
                "an inline waiver reads `edgefleet-lint: waive RULE[,RULE] -- reason`",
            ));
            continue;
        };
        let (ids, reason) = rest.split_once("--").unwrap_or((rest, ""));
        let Some(rules) = rules_of(ids, file, c.pos, out) else {
            continue;
        };
        if reason.trim().is_empty() {
            out.push(Finding::new(
                "EF020",
                file,
                c.pos,
                format!(
                    "inline waiver of {} has no reason: write `-- why` after the rule",
                    rules.join(", ")
                ),
            ));
            continue;
        }
        let Some(m) = next_member(&parsed.root, c.pos) else {
            out.push(Finding::new(
                "EF022",
                file,
                c.pos,
                "an inline waiver must stand before the JSON member it waives",
            ));
            continue;
        };
        ws.push(Waiver {
            rules,
            at_file: file.to_path_buf(),
            at: c.pos,
            dir: file.parent().unwrap_or(Path::new("")).to_path_buf(),
            file: file
                .file_name()
                .and_then(|x| x.to_str())
                .map(str::to_string),
            module: None,
            scope: Some((m.key_pos, m.value.end)),
            reason: reason.trim().to_string(),
        });
    }
    ws
}

/// Read the waivers and mark the findings they cover; report bad and unused waivers.
pub(super) fn apply(files: &[WaiverFile], parsed: &[(PathBuf, &Parsed)], out: &mut Vec<Finding>) {
    let mut problems = Vec::new();
    let mut ws: Vec<Waiver> = Vec::new();
    for f in files {
        ws.extend(from_file(f, &mut problems));
    }
    for (file, p) in parsed {
        ws.extend(inline(file, p, &mut problems));
    }
    for w in &ws {
        let mut used = false;
        for f in out
            .iter_mut()
            .filter(|f| f.waived.is_none() && w.matches(f))
        {
            f.waived = Some(w.reason.clone());
            used = true;
        }
        if !used {
            problems.push(Finding::new("EF021", &w.at_file, w.at, format!("this waiver of {} matches no finding: remove it or correct its rule, file or module", w.rules.join(", "))));
        }
    }
    out.extend(problems);
}
