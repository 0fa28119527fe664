//! Host patterns (`--limit`, a play's `hosts:`), evaluated exactly as Ansible's `InventoryManager` does.
//!
//! Owns splitting (`a,b`, or the legacy `a:b` when the text is not an address or range), the evaluation order
//! (plain patterns, then `&` intersections, then `!` exclusions), matching one pattern against group names and
//! host names (exact, shell glob, or `~regex` anchored at the start), `[i]` / `[a:b]` subscripts and `@file`
//! lists. It must not know where the inventory came from.

use std::collections::HashSet;
use std::sync::OnceLock;

use regex::Regex;

use super::data::ALL;
use super::{ranges, Inventory, Selection};
use crate::diag::Diagnostic;

/// Ansible's `split_host_pattern`: commas separate patterns; without a comma, colons do too unless the whole
/// text parses as one address (IPv6, `host:port`, a `[a:b]` range).
pub fn split_host_pattern(pattern: &str) -> Vec<String> {
    let parts: Vec<String> = if pattern.contains(',') {
        pattern.split(',').map(str::to_string).collect()
    } else if ranges::parse_address(pattern, true).is_ok() {
        vec![pattern.to_string()]
    } else {
        static R: OnceLock<Regex> = OnceLock::new();
        let re = R.get_or_init(|| {
            Regex::new(r"(?:[^\s:\[\]]|\[[^\]]*\])+").unwrap_or_else(|e| panic!("{e}"))
        });
        re.find_iter(pattern)
            .map(|m| m.as_str().to_string())
            .collect()
    };
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Ansible's `order_patterns`: plain patterns first, then `&`, then `!`; only `&`/`!` means "from all".
pub fn order_patterns(patterns: &[String]) -> Vec<String> {
    let mut regular = Vec::new();
    let mut inter = Vec::new();
    let mut excl = Vec::new();
    for p in patterns.iter().filter(|p| !p.is_empty()) {
        if p.starts_with('!') {
            excl.push(p.clone());
        } else if p.starts_with('&') {
            inter.push(p.clone());
        } else {
            regular.push(p.clone());
        }
    }
    if regular.is_empty() {
        regular.push("all".into());
    }
    regular.into_iter().chain(inter).chain(excl).collect()
}

#[derive(Debug, Clone, PartialEq)]
enum GlobItem {
    Star,
    Any,
    Lit(char),
    /// (negated, ranges); an empty non-negated class never matches.
    Class(bool, Vec<(char, char)>),
}

/// A shell glob compiled the way Python's `fnmatch.translate` reads it (full match, case-sensitive).
#[derive(Debug, Clone)]
pub struct Glob(Vec<GlobItem>);

impl Glob {
    /// Compile `pat`.
    pub fn new(pat: &str) -> Self {
        let c: Vec<char> = pat.chars().collect();
        let n = c.len();
        let mut out: Vec<GlobItem> = Vec::new();
        let mut i = 0;
        while i < n {
            let ch = c[i];
            i += 1;
            match ch {
                '*' => {
                    if out.last() != Some(&GlobItem::Star) {
                        out.push(GlobItem::Star);
                    }
                }
                '?' => out.push(GlobItem::Any),
                '[' => {
                    let mut j = i;
                    if j < n && c[j] == '!' {
                        j += 1;
                    }
                    if j < n && c[j] == ']' {
                        j += 1;
                    }
                    while j < n && c[j] != ']' {
                        j += 1;
                    }
                    if j >= n {
                        out.push(GlobItem::Lit('['));
                        continue;
                    }
                    let stuff = &c[i..j];
                    i = j + 1;
                    if stuff == ['!'] {
                        out.push(GlobItem::Any);
                        continue;
                    }
                    let (neg, body) = match stuff.first() {
                        Some('!') => (true, &stuff[1..]),
                        _ => (false, stuff),
                    };
                    let mut items = Vec::new();
                    let mut k = 0;
                    while k < body.len() {
                        // `x-y` is a range (empty when x > y); a `-` first or last is itself.
                        if k + 2 < body.len() && body[k + 1] == '-' {
                            let (lo, hi) = (body[k], body[k + 2]);
                            if lo <= hi {
                                items.push((lo, hi));
                            }
                            k += 3;
                        } else {
                            items.push((body[k], body[k]));
                            k += 1;
                        }
                    }
                    out.push(GlobItem::Class(neg, items));
                }
                other => out.push(GlobItem::Lit(other)),
            }
        }
        Glob(out)
    }

    fn one(item: &GlobItem, ch: char) -> bool {
        match item {
            GlobItem::Any => true,
            GlobItem::Lit(l) => *l == ch,
            GlobItem::Class(neg, items) => {
                let inside = items.iter().any(|(lo, hi)| *lo <= ch && ch <= *hi);
                inside != *neg
            }
            GlobItem::Star => false,
        }
    }

    /// Does the whole of `s` match?
    pub fn matches(&self, s: &str) -> bool {
        let p = &self.0;
        let t: Vec<char> = s.chars().collect();
        let (mut pi, mut ti) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            if pi < p.len() && p[pi] == GlobItem::Star {
                star = Some((pi, ti));
                pi += 1;
            } else if pi < p.len() && Self::one(&p[pi], t[ti]) {
                pi += 1;
                ti += 1;
            } else if let Some((sp, st)) = star {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        while pi < p.len() && p[pi] == GlobItem::Star {
            pi += 1;
        }
        pi == p.len()
    }
}

enum Matcher {
    Glob(Glob),
    Re(Regex),
}

impl Matcher {
    /// Ansible's `_match_list` compilation: `~regex` (matched at the start) or an fnmatch glob.
    fn new(pattern: &str) -> Result<Self, Diagnostic> {
        match pattern.strip_prefix('~') {
            Some(re) => Regex::new(&format!("^(?:{re})"))
                .map(Matcher::Re)
                .map_err(|e| {
                    Diagnostic::plain(format!(
                        "Invalid host list pattern: {pattern}: {}",
                        e.to_string()
                            .lines()
                            .last()
                            .unwrap_or("bad regular expression")
                    ))
                }),
            None => Ok(Matcher::Glob(Glob::new(pattern))),
        }
    }

    fn is_match(&self, s: &str) -> bool {
        match self {
            Matcher::Glob(g) => g.matches(s),
            Matcher::Re(r) => r.is_match(s),
        }
    }
}

/// A subscript: `[i]` or `[a:b]` (`b` -1 means "to the end").
type Subscript = (i64, Option<i64>);

fn split_subscript(pattern: &str, warnings: &mut Vec<String>) -> (String, Option<Subscript>) {
    if pattern.starts_with('~') {
        return (pattern.to_string(), None);
    }
    static R: OnceLock<Regex> = OnceLock::new();
    let re = R.get_or_init(|| {
        Regex::new(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")
            .unwrap_or_else(|e| panic!("{e}"))
    });
    let Some(m) = re.captures(pattern) else {
        return (pattern.to_string(), None);
    };
    let base = m[1].to_string();
    let num = |s: &str| s.parse::<i64>().unwrap_or(i64::MAX);
    if let Some(idx) = m.get(2) {
        return (base, Some((num(idx.as_str()), None)));
    }
    let start = num(&m[3]);
    let end = match m.get(5).map(|e| e.as_str()).unwrap_or("") {
        "" => -1,
        e => num(e),
    };
    if &m[4] == "-" {
        warnings
            .push("Use [x:y] inclusive subscripts instead of [x-y] which has been removed".into());
    }
    (base, Some((start, Some(end))))
}

fn apply_subscript(hosts: Vec<usize>, sub: Option<Subscript>) -> Option<Vec<usize>> {
    let Some((start, end)) = sub else {
        return Some(hosts);
    };
    if hosts.is_empty() {
        return Some(hosts);
    }
    let len = hosts.len() as i64;
    match end {
        // Python: `if end:` -- an end of 0 means a single index.
        Some(e) if e != 0 => {
            let e = if e == -1 { len - 1 } else { e };
            let lo = start.clamp(0, len) as usize;
            let hi = (e.saturating_add(1)).clamp(0, len) as usize;
            Some(if lo < hi {
                hosts[lo..hi].to_vec()
            } else {
                Vec::new()
            })
        }
        _ => {
            let i = if start < 0 { len + start } else { start };
            if i < 0 || i >= len {
                None
            } else {
                Some(vec![hosts[i as usize]])
            }
        }
    }
}

impl Inventory {
    /// Ansible's `_enumerate_matches`: hosts of every matching group, plus matching host names when no group
    /// matched or the pattern is a glob/regex.
    fn enumerate_matches(
        &self,
        pattern: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<usize>, Diagnostic> {
        let m = Matcher::new(pattern)?;
        let mut results = Vec::new();
        let mut matched_group = false;
        for (g, group) in self.data.groups.iter().enumerate() {
            if m.is_match(&group.name) {
                matched_group = true;
                results.extend(self.group_hosts[g].iter().copied());
            }
        }
        if !matched_group || pattern.starts_with('~') || pattern.contains(['.', '?', '*', '[']) {
            for (h, host) in self.data.hosts.iter().enumerate() {
                if m.is_match(&host.name) {
                    results.push(h);
                }
            }
        }
        if results.is_empty() && !matched_group && pattern != "all" {
            warnings.push(format!(
                "Could not match supplied host pattern, ignoring: {pattern}"
            ));
        }
        Ok(results)
    }

    fn match_one_pattern(
        &self,
        pattern: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<usize>, Diagnostic> {
        let p = pattern.strip_prefix(['&', '!']).unwrap_or(pattern);
        let (expr, sub) = split_subscript(p, warnings);
        let hosts = self.enumerate_matches(&expr, warnings)?;
        apply_subscript(hosts, sub).ok_or_else(|| {
            Diagnostic::plain(format!(
                "No hosts matched the subscripted pattern '{p}' (the group has fewer hosts than the index)"
            ))
        })
    }

    /// Evaluate already-split patterns into host indices (deduplicated, in evaluation order).
    pub(crate) fn evaluate(
        &self,
        patterns: &[String],
        warnings: &mut Vec<String>,
    ) -> Result<Vec<usize>, Diagnostic> {
        // `hosts` never holds a host twice and `present` is its set, kept up to date: each pattern costs what it
        // matches, not what was selected before it (a long `--limit` list stays linear).
        let mut hosts: Vec<usize> = Vec::new();
        let mut present: HashSet<usize> = HashSet::new();
        for p in order_patterns(patterns) {
            if let Some(&h) = self.data.host_idx.get(&p) {
                if present.insert(h) {
                    hosts.push(h);
                }
                continue;
            }
            let that = self.match_one_pattern(&p, warnings)?;
            if p.starts_with('!') {
                let set: HashSet<usize> = that.into_iter().collect();
                hosts.retain(|h| !set.contains(h));
                present.retain(|h| !set.contains(h));
            } else if p.starts_with('&') {
                let set: HashSet<usize> = that.into_iter().collect();
                hosts.retain(|h| set.contains(h));
                present.retain(|h| set.contains(h));
            } else {
                for h in that {
                    if present.insert(h) {
                        hosts.push(h);
                    }
                }
            }
        }
        Ok(hosts)
    }

    /// Select hosts with a pattern (`all`, `web:&prod:!edge-03`, `edge-0*`, `~re`, `@file`, `web[0:2]`).
    ///
    /// A pattern that matches nothing is not an error: the selection is empty and `warnings` says why, as
    /// Ansible does. Invalid regexes, missing `@files` and out-of-range subscripts are errors.
    pub fn select(&self, pattern: &str) -> Result<Selection, Diagnostic> {
        let mut warnings = Vec::new();
        let mut pats = Vec::new();
        let mut empty_files = Vec::new();
        for p in split_host_pattern(pattern) {
            match p.strip_prefix('@') {
                Some(file) => {
                    let path = std::path::Path::new(file);
                    if path.is_dir() {
                        return Err(Diagnostic::file(
                            path,
                            "a pattern starting with '@' must name a file, not a directory",
                        ));
                    }
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        Diagnostic::file(path, format!("cannot read host list file: {e}"))
                    })?;
                    let before = pats.len();
                    pats.extend(
                        text.split('\n')
                            .map(|l| l.trim().to_string())
                            .filter(|l| !l.is_empty()),
                    );
                    if pats.len() == before {
                        empty_files.push(file.to_string());
                    }
                }
                None => pats.push(p),
            }
        }
        // An empty host list file (e.g. a retry file of a run where nothing failed) selects nothing. Ansible
        // selects every host here (its `order_patterns` falls back to `all`), which turns "re-run the failed
        // ones" into "run the whole fleet"; edgefleet refuses to widen a limit that way.
        if !empty_files.is_empty() && pats.iter().all(|p| p.starts_with(['&', '!'])) {
            return Ok(Selection {
                hosts: Vec::new(),
                warnings: vec![format!(
                    "the host list file '{}' names no hosts: nothing selected (an empty @file never means all hosts)",
                    empty_files.join("', '")
                )],
            });
        }
        let idx = self.evaluate(&pats, &mut warnings)?;
        if idx.is_empty() && warnings.is_empty() {
            warnings.push(format!("No hosts matched the pattern '{pattern}'"));
        }
        Ok(Selection {
            hosts: idx
                .into_iter()
                .map(|h| self.data.hosts[h].name.clone())
                .collect(),
            warnings,
        })
    }

    /// Hosts in the `all` group (what `all` selects).
    pub(crate) fn all_hosts(&self) -> &[usize] {
        &self.group_hosts[ALL]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting() {
        let s = |p: &str| split_host_pattern(p);
        assert_eq!(s("a,b[1], c[2:3] , d"), ["a", "b[1]", "c[2:3]", "d"]);
        assert_eq!(s("web:&prod:!edge-03"), ["web", "&prod", "!edge-03"]);
        assert_eq!(s("edge-[01:50]"), ["edge-[01:50]"]);
        assert_eq!(s("web:db[0:1]"), ["web", "db[0:1]"]);
        assert_eq!(s("fe80::1"), ["fe80::1"]);
        assert_eq!(s("h1:22"), ["h1:22"]);
        assert_eq!(s(" "), Vec::<String>::new());
        assert_eq!(order_patterns(&s("!a:&b:c:d")), ["c", "d", "&b", "!a"]);
        assert_eq!(order_patterns(&s("!a")), ["all", "!a"]);
    }

    #[test]
    fn globs_like_fnmatch() {
        let g = |p: &str, s: &str| Glob::new(p).matches(s);
        assert!(g("edge-0*", "edge-01"));
        assert!(g("edge-0*", "edge-0"));
        assert!(!g("edge-0*", "edge-10"));
        assert!(g("e?ge", "edge"));
        assert!(!g("e?ge", "eedge"));
        assert!(g("h[0-2]", "h1"));
        assert!(!g("h[!0-2]", "h1"));
        assert!(g("h[!0-2]", "h5"));
        assert!(g("a[]]b", "a]b"));
        assert!(g("x[", "x["));
        assert!(g("[a-]", "-"));
        assert!(!g("[z-a]", "m"));
        assert!(g("*a*b*", "xxaxxbxx"));
        assert!(!g("*a*b", "xxaxxbxx"));
        assert!(!g("Web", "web"));
        assert!(g("a.b", "a.b"));
        assert!(!g("a.b", "axb"));
    }

    #[test]
    fn subscripts() {
        let mut w = Vec::new();
        assert_eq!(
            split_subscript("web[1]", &mut w),
            ("web".into(), Some((1, None)))
        );
        assert_eq!(
            split_subscript("web[-1]", &mut w),
            ("web".into(), Some((-1, None)))
        );
        assert_eq!(
            split_subscript("web[1:3]", &mut w),
            ("web".into(), Some((1, Some(3))))
        );
        assert_eq!(
            split_subscript("web[1:]", &mut w),
            ("web".into(), Some((1, Some(-1))))
        );
        assert_eq!(split_subscript("~web[1]", &mut w), ("~web[1]".into(), None));
        assert!(w.is_empty());
        split_subscript("web[1-2]", &mut w);
        assert_eq!(w.len(), 1);
        let h = vec![10, 11, 12, 13];
        assert_eq!(
            apply_subscript(h.clone(), Some((1, Some(2)))),
            Some(vec![11, 12])
        );
        assert_eq!(
            apply_subscript(h.clone(), Some((2, Some(-1)))),
            Some(vec![12, 13])
        );
        assert_eq!(apply_subscript(h.clone(), Some((-1, None))), Some(vec![13]));
        assert_eq!(
            apply_subscript(h.clone(), Some((0, Some(0)))),
            Some(vec![10])
        );
        assert_eq!(apply_subscript(h.clone(), Some((5, Some(9)))), Some(vec![]));
        assert_eq!(apply_subscript(h.clone(), Some((4, None))), None);
        assert_eq!(apply_subscript(vec![], Some((4, None))), Some(vec![]));
    }
}
