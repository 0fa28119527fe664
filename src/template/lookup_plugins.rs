//! The lookup plugins beyond `file`/`env`/`vars` and the `with_items` family: `template`, `pipe`, `lines`,
//! `fileglob`, `first_found`, `sequence`, `nested`, `together`, `subelements`; and [`with_loop`], the function a
//! `with_<lookup>:` task keyword becomes (Ansible's `listify` of the value, then the lookup as a list).
//!
//! Each follows ansible-core 2.19's plugin: `pipe` and `lines` run `sh -c` on the controller in the playbook's
//! directory (the last search-path directory), like Ansible; `template` renders with the task's variables;
//! `fileglob` and `first_found` resolve through the search path ([`super::search`]). Errors name the plugin and
//! the file or the exit status, never command output that may hold a secret unredacted. It must not touch
//! devices.

use std::path::{Path, PathBuf};

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Error, ErrorKind, State, Value};

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

fn term_text(t: &Value) -> String {
    t.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| t.to_string())
}

/// Run one of this file's plugins; `None` if `name` is not one of them.
pub(super) fn run(
    state: &State,
    name: &str,
    terms: &[Value],
    kwargs: &Kwargs,
    search: &[PathBuf],
) -> Option<Result<Vec<Value>, Error>> {
    Some(match name {
        "template" => template(state, terms, kwargs, search),
        "pipe" => terms
            .iter()
            .map(|t| sh(&term_text(t), search, "pipe").map(|o| Value::from(o.trim_end())))
            .collect(),
        "lines" => {
            let mut out = Vec::new();
            for t in terms {
                match sh(&term_text(t), search, "lines") {
                    Ok(o) => out.extend(py_splitlines(&o).into_iter().map(Value::from)),
                    Err(e) => return Some(Err(e)),
                }
            }
            Ok(out)
        }
        "fileglob" => fileglob(terms, search),
        "first_found" => first_found(terms, kwargs, search, None),
        "sequence" => terms.iter().try_fold(Vec::new(), |mut acc, t| {
            acc.extend(sequence(&term_text(t))?);
            Ok(acc)
        }),
        "nested" => nested(terms),
        "together" => together(terms),
        "subelements" => subelements(terms),
        _ => return None,
    })
}

fn basedir(search: &[PathBuf]) -> PathBuf {
    search
        .last()
        .cloned()
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."))
}

fn sh(cmd: &str, search: &[PathBuf], plugin: &str) -> Result<String, Error> {
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(basedir(search))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| err(format!("lookup('{plugin}'): cannot run /bin/sh: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().next().unwrap_or("").trim();
        return Err(err(format!(
            "lookup('{plugin}'): the command exited with {}{}",
            out.status
                .code()
                .map_or("a signal".to_string(), |c| c.to_string()),
            if first.is_empty() {
                String::new()
            } else {
                format!(": {}", crate::redact::redact(first))
            }
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Python's `str.splitlines()` for the usual line ends.
fn py_splitlines(s: &str) -> Vec<String> {
    let mut out: Vec<String> = s
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect();
    if s.ends_with('\n') || s.is_empty() {
        out.pop();
    }
    out
}

fn template(
    state: &State,
    terms: &[Value],
    kwargs: &Kwargs,
    search: &[PathBuf],
) -> Result<Vec<Value>, Error> {
    let extra = kwargs.get::<Option<Value>>("template_vars")?;
    for k in ["convert_data", "jinja2_native"] {
        let _ = kwargs.get::<Option<Value>>(k)?;
    }
    // The lookup's own settings (a template's `#jinja2:` line overrides them).
    let mut ov = super::Overrides::default();
    for k in [
        "variable_start_string",
        "variable_end_string",
        "comment_start_string",
        "comment_end_string",
    ] {
        if let Some(v) = kwargs.get::<Option<String>>(k)? {
            ov.set(k, super::overrides::Setting::Str(v))
                .map_err(|e| err(format!("lookup('template'): {e}")))?;
        }
    }
    if let Some(v) = kwargs.get::<Option<bool>>("trim_blocks")? {
        ov.trim_blocks = v;
    }
    // `vars` is the whole render context (see context.rs): the task's variables, loop items included.
    let base = state.lookup("vars").unwrap_or_default();
    let ctx = match extra.filter(|e| e.kind() == ValueKind::Map) {
        Some(e) => minijinja::context! { ..e, ..base },
        None => base,
    };
    terms
        .iter()
        .map(|t| {
            let name = term_text(t);
            let path = super::search::find(search, "templates", &name)
                .map_err(|e| err(format!("lookup('template'): {e}")))?;
            let src = std::fs::read_to_string(&path).map_err(|e| {
                err(format!(
                    "lookup('template'): cannot read {}: {e}",
                    path.display()
                ))
            })?;
            let shown = path.display().to_string();
            let p = super::context::Prepared::new(&src, &ov)
                .map_err(|e| err(format!("lookup('template'): {e} (in {shown})")))?;
            // Like Ansible: a template that is one expression gives its value, text gets its newlines back.
            if let Some(expr) = p.single() {
                let v = state
                    .env()
                    .compile_expression_owned(
                        super::rewrite::rewrite_expression(expr, false).into_owned(),
                    )?
                    .eval(ctx.clone())?;
                return Ok(match v.as_str() {
                    Some(s) => Value::from(p.ov.restore_newlines(p.body, s.to_string())),
                    None => v,
                });
            }
            let source = p.rewritten(false);
            let text = if p.ov == super::Overrides::default() {
                state.env().render_named_str(&shown, &source, ctx.clone())?
            } else {
                super::variant_env(&p.ov, || super::Templar::new().env().clone())
                    .map_err(|e| err(format!("lookup('template'): {e} (in {shown})")))?
                    .render_named_str(&shown, &source, ctx.clone())?
            };
            Ok(Value::from(p.ov.restore_newlines(p.body, text)))
        })
        .collect()
}

/// Shell-style wildcard match of one file name (`*`, `?`, `[...]`; a leading dot is not special, as in
/// Python's fnmatch used by glob... except glob hides dot files unless the pattern starts with a dot).
fn fnmatch(pat: &[char], name: &[char]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some('*') => (0..=name.len()).any(|i| fnmatch(&pat[1..], &name[i..])),
        Some('?') => !name.is_empty() && fnmatch(&pat[1..], &name[1..]),
        Some('[') => {
            let Some(close) = pat.iter().skip(2).position(|c| *c == ']').map(|p| p + 2) else {
                return name.first() == Some(&'[') && fnmatch(&pat[1..], &name[1..]);
            };
            let Some(c) = name.first() else { return false };
            let set = &pat[1..close];
            let (neg, set) = match set.first() {
                Some('!') => (true, &set[1..]),
                _ => (false, set),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == '-' {
                    hit |= set[i] <= *c && *c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == *c;
                    i += 1;
                }
            }
            hit != neg && fnmatch(&pat[close + 1..], &name[1..])
        }
        Some(p) => name.first() == Some(p) && fnmatch(&pat[1..], &name[1..]),
    }
}

fn fileglob(terms: &[Value], search: &[PathBuf]) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for t in terms {
        let term = term_text(t);
        let p = Path::new(&term);
        let file_pat = p
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = p
            .parent()
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_default();
        if dir.contains(['*', '?', '[']) {
            return Err(err(
                "lookup('fileglob'): wildcards are supported in the file name only",
            ));
        }
        let found = if Path::new(&dir).is_absolute() {
            Some(PathBuf::from(&dir))
        } else {
            super::search::candidates(search, "files", &dir)
                .into_iter()
                .find(|c| c.is_dir())
        };
        let Some(d) = found else { continue };
        let pat: Vec<char> = file_pat.chars().collect();
        let mut hits: Vec<String> = std::fs::read_dir(&d)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_file())
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                let visible = !n.starts_with('.') || file_pat.starts_with('.');
                let chars: Vec<char> = n.chars().collect();
                (visible && fnmatch(&pat, &chars)).then(|| d.join(&n).display().to_string())
            })
            .collect();
        hits.sort();
        out.extend(hits.into_iter().map(Value::from));
    }
    Ok(out)
}

fn split_on(s: &str, seps: &[char]) -> Vec<String> {
    s.split(seps)
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn strings(v: &Value, seps: &[char]) -> Result<Vec<String>, Error> {
    if let Some(s) = v.as_str() {
        return Ok(split_on(s, seps));
    }
    if v.is_none() || v.is_undefined() {
        return Ok(vec![]);
    }
    let mut out = Vec::new();
    for x in v.try_iter()? {
        out.extend(strings(&x, seps)?);
    }
    Ok(out)
}

/// `first_found`: `subdir` is None for `lookup()`/`query()` (names relative to the search directories), and
/// `files`/`templates`/`vars` for `with_first_found` (Ansible decides by the task's action).
pub(super) fn first_found(
    terms: &[Value],
    kwargs: &Kwargs,
    search: &[PathBuf],
    subdir: Option<&str>,
) -> Result<Vec<Value>, Error> {
    let mut skip = kwargs.get::<Option<bool>>("skip")?.unwrap_or(false);
    let kw_files = kwargs.get::<Option<Value>>("files")?;
    let kw_paths = kwargs.get::<Option<Value>>("paths")?;
    let mut wanted: Vec<String> = Vec::new();
    let add = |files: &[String], paths: &[String], out: &mut Vec<String>| {
        if paths.is_empty() {
            out.extend(files.iter().cloned());
        } else {
            for p in paths {
                for f in files {
                    out.push(Path::new(p).join(f).display().to_string());
                }
            }
        }
    };
    let kw_paths_l = match &kw_paths {
        Some(p) => strings(p, &[',', ':', ';'])?,
        None => vec![],
    };
    let mut flat: Vec<Value> = Vec::new();
    fn walk(v: &Value, out: &mut Vec<Value>) -> Result<(), Error> {
        if v.kind() == ValueKind::Seq {
            for x in v.try_iter()? {
                walk(&x, out)?;
            }
        } else {
            out.push(v.clone());
        }
        Ok(())
    }
    for t in terms {
        walk(t, &mut flat)?;
    }
    if flat.is_empty() {
        if let Some(f) = &kw_files {
            flat.push(f.clone());
        }
    }
    for t in &flat {
        if t.kind() == ValueKind::Map {
            let files = strings(&t.get_attr("files").unwrap_or_default(), &[',', ';'])?;
            let paths = match t
                .get_attr("paths")
                .ok()
                .filter(|p| !p.is_undefined() && !p.is_none())
            {
                Some(p) => strings(&p, &[',', ':', ';'])?,
                None => kw_paths_l.clone(),
            };
            if let Ok(s) = t.get_attr("skip") {
                if !s.is_undefined() {
                    skip = s.is_true();
                }
            }
            add(&files, &paths, &mut wanted);
        } else if let Some(s) = t.as_str() {
            add(&split_on(s, &[',', ';']), &kw_paths_l, &mut wanted);
        } else {
            return Err(err(format!(
                "lookup('first_found'): a term must be a string, dict or list, not {}",
                t.kind()
            )));
        }
    }
    for f in &wanted {
        let p = Path::new(f);
        let cands: Vec<PathBuf> = if p.is_absolute() {
            vec![p.to_path_buf()]
        } else {
            let mut c = Vec::new();
            let dirs: Vec<PathBuf> = if search.is_empty() {
                vec![std::env::current_dir().unwrap_or_default()]
            } else {
                search.to_vec()
            };
            for d in dirs {
                if let Some(s) = subdir {
                    c.push(d.join(s).join(p));
                }
                c.push(d.join(p));
            }
            c
        };
        if let Some(hit) = cands.into_iter().find(|c| c.exists()) {
            return Ok(vec![Value::from(hit.display().to_string())]);
        }
    }
    if skip {
        return Ok(vec![]);
    }
    Err(err(
        "lookup('first_found'): no file was found (none of the names exists in the search path)",
    ))
}

/// Python `%`-formatting of one integer with a printf-style spec (`%d`, `%02d`, `%x`, `%5s`, ...), for
/// `sequence`'s `format=`.
fn format_int(fmt: &str, n: i64) -> Result<String, Error> {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut used = false;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek() {
            if "-0+ #".contains(f) {
                flags.push(f);
                chars.next();
            } else {
                break;
            }
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let conv = chars
            .next()
            .ok_or_else(|| err("sequence: incomplete format"))?;
        if used {
            return Err(err("sequence: the format takes one value"));
        }
        used = true;
        let body = match conv {
            'd' | 'i' | 'u' | 's' => n.abs().to_string(),
            'x' => format!("{:x}", n.abs()),
            'X' => format!("{:X}", n.abs()),
            'o' => format!("{:o}", n.abs()),
            _ => {
                return Err(err(format!(
                    "sequence: unsupported format character {conv:?}"
                )))
            }
        };
        let sign = if n < 0 {
            "-"
        } else if flags.contains('+') {
            "+"
        } else {
            ""
        };
        let w: usize = width.parse().unwrap_or(0);
        let len = sign.len() + body.len();
        let s = if len >= w {
            format!("{sign}{body}")
        } else if flags.contains('-') {
            format!("{sign}{body}{}", " ".repeat(w - len))
        } else if flags.contains('0') && conv != 's' {
            format!("{sign}{}{body}", "0".repeat(w - len))
        } else {
            format!("{}{sign}{body}", " ".repeat(w - len))
        };
        out.push_str(&s);
    }
    Ok(out)
}

/// `sequence`: `start=1 end=10 stride=1 format=%d` or `count=N`, or the shortcut `[start-]end[/stride][:format]`.
fn sequence(term: &str) -> Result<Vec<Value>, Error> {
    let (mut start, mut end, mut stride, mut count, mut format) =
        (1i64, None, 1i64, None, "%d".to_string());
    let parse = |k: &str, v: &str| -> Result<i64, Error> {
        let v = v.trim();
        let r = if let Some(h) = v.strip_prefix("0x") {
            i64::from_str_radix(h, 16)
        } else if let Some(o) = v.strip_prefix("0o") {
            i64::from_str_radix(o, 8)
        } else {
            v.parse()
        };
        r.map_err(|_| err(format!("sequence: can't parse {k}={v}")))
    };
    if term.contains('=') {
        for kv in term.split_whitespace() {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| err(format!("sequence: expected key=value, got {kv:?}")))?;
            match k {
                "start" => start = parse(k, v)?,
                "end" => end = Some(parse(k, v)?),
                "stride" => stride = parse(k, v)?,
                "count" => count = Some(parse(k, v)?),
                "format" => format = v.to_string(),
                other => return Err(err(format!("sequence: unrecognized argument {other:?}"))),
            }
        }
    } else {
        let re = regex::Regex::new(
            r"^(?:(0?x?[0-9a-f]+)-)?(0?x?[0-9a-f]+)(?:/(0?x?[0-9a-f]+))?(?::(.+))?$",
        )
        .map_err(|e| err(e.to_string()))?;
        let c = re
            .captures(term.trim())
            .ok_or_else(|| err(format!("sequence: can't parse arguments {term:?}")))?;
        if let Some(s) = c.get(1) {
            start = parse("start", s.as_str())?;
        }
        end = Some(parse("end", &c[2])?);
        if let Some(s) = c.get(3) {
            stride = parse("stride", s.as_str())?;
        }
        if let Some(f) = c.get(4) {
            format = f.as_str().to_string();
        }
    }
    let end = match (end, count) {
        (Some(_), Some(_)) => return Err(err("sequence: can't specify both count and end")),
        (None, None) => return Err(err("sequence: must specify count or end")),
        (Some(e), None) => e,
        (None, Some(c)) => {
            if c == 0 {
                return Ok(vec![]);
            }
            start + c * stride - 1
        }
    };
    if stride > 0 && end < start {
        return Err(err("sequence: to count backwards make stride negative"));
    }
    if stride < 0 && end > start {
        return Err(err("sequence: to count forward don't make stride negative"));
    }
    let mut out = Vec::new();
    if stride == 0 {
        return Ok(out);
    }
    let mut i = start;
    while (stride > 0 && i <= end) || (stride < 0 && i >= end) {
        out.push(Value::from(format_int(&format, i)?));
        i += stride;
        if out.len() > 1_000_000 {
            return Err(err("sequence: more than a million items"));
        }
    }
    Ok(out)
}

fn lists(terms: &[Value], plugin: &str) -> Result<Vec<Vec<Value>>, Error> {
    terms
        .iter()
        .map(|t| {
            if t.kind() == ValueKind::Seq {
                Ok(t.try_iter()?.collect())
            } else {
                Err(err(format!(
                    "lookup('{plugin}'): each term must be a list, got {}",
                    t.kind()
                )))
            }
        })
        .collect()
}

fn nested(terms: &[Value]) -> Result<Vec<Value>, Error> {
    let pools = lists(terms, "nested")?;
    if pools.is_empty() {
        return Err(err(
            "lookup('nested'): with_nested requires at least one element in the nested list",
        ));
    }
    let mut out: Vec<Vec<Value>> = vec![vec![]];
    for pool in &pools {
        let mut next = Vec::new();
        for prefix in &out {
            for x in pool {
                let mut p = prefix.clone();
                p.push(x.clone());
                next.push(p);
            }
        }
        out = next;
    }
    Ok(out.into_iter().map(Value::from).collect())
}

fn together(terms: &[Value]) -> Result<Vec<Value>, Error> {
    let pools = lists(terms, "together")?;
    if pools.is_empty() {
        return Err(err(
            "lookup('together'): with_together requires at least one element in each list",
        ));
    }
    let n = pools.iter().map(Vec::len).max().unwrap_or(0);
    Ok((0..n)
        .map(|i| {
            Value::from(
                pools
                    .iter()
                    .map(|p| p.get(i).cloned().unwrap_or(Value::from(())))
                    .collect::<Vec<_>>(),
            )
        })
        .collect())
}

fn subelements(terms: &[Value]) -> Result<Vec<Value>, Error> {
    let to_j =
        |v: &Value| serde_json::to_value(v).map_err(|e| err(format!("lookup('subelements'): {e}")));
    if terms.len() < 2 || terms.len() > 3 {
        return Err(err(
            "lookup('subelements'): expects a list, a key and optionally {'skip_missing': bool}",
        ));
    }
    let skip = match terms.get(2) {
        Some(f) if f.kind() == ValueKind::Map => f
            .get_attr("skip_missing")
            .map(|v| v.is_true())
            .unwrap_or(false),
        Some(_) => {
            return Err(err(
                "lookup('subelements'): the third term must be a dict of flags",
            ))
        }
        None => false,
    };
    let pairs = super::filters::subelements_j(&to_j(&terms[0])?, &to_j(&terms[1])?, skip)?;
    Ok(pairs
        .iter()
        .map(|p| Value::from(minijinja::value::Serde(p)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_like_ansible() {
        let s = |t: &str| -> Vec<String> {
            sequence(t).unwrap().iter().map(|v| v.to_string()).collect()
        };
        assert_eq!(
            s("start=1 end=3 format=node%02d"),
            ["node01", "node02", "node03"]
        );
        assert_eq!(s("start=0 end=10 stride=5"), ["0", "5", "10"]);
        assert_eq!(s("count=2"), ["1", "2"]);
        assert_eq!(s("4-6/2:x%d"), ["x4", "x6"]);
        assert!(sequence("start=3 end=1").is_err());
    }

    #[test]
    fn fnmatch_and_splitlines() {
        let m = |p: &str, n: &str| {
            fnmatch(
                &p.chars().collect::<Vec<_>>(),
                &n.chars().collect::<Vec<_>>(),
            )
        };
        assert!(
            m("*.conf", "a.conf")
                && !m("*.conf", "a.txt")
                && m("[ab]?.c", "bx.c")
                && !m("[!ab]*", "a")
        );
        assert_eq!(py_splitlines("a\nb\n\nc\n"), ["a", "b", "", "c"]);
    }
}
