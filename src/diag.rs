//! Diagnostics: one problem found in a user's file, with its location and a source snippet.
//!
//! Owns the `file:line:col: message` format every load-time error uses, and the collection type that lets a
//! loader report all problems at once. It must not know about YAML, templates or modules: those layers build
//! `Diagnostic`s and hand them here.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a user-supplied file (or on the command line, when `file` is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in; empty for command-line problems.
    pub file: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub col: u64,
    /// What is wrong and, where possible, what to do.
    pub message: String,
    /// A few source lines with a caret under the problem, when the source is known.
    pub snippet: Option<String>,
}

impl Diagnostic {
    /// A problem at a known position; the snippet is filled from `source` when given.
    pub fn at(file: impl Into<PathBuf>, line: u64, col: u64, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            line,
            col,
            message: message.into(),
            snippet: None,
        }
    }

    /// A problem in a file without a known position.
    pub fn file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::at(file, 0, 0, message)
    }

    /// A problem that is not in any file (command line, environment).
    pub fn plain(message: impl Into<String>) -> Self {
        Self::at(PathBuf::new(), 0, 0, message)
    }

    /// Attach a snippet cut from `source` around this diagnostic's line.
    pub fn with_source(mut self, source: &str) -> Self {
        if self.line > 0 {
            self.snippet = Some(snippet(source, self.line, self.col));
        }
        self
    }

    /// Prefix the message (e.g. with the host it concerns).
    pub fn prefixed(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}{}", self.message);
        self
    }

    /// The `file:line:col` part, as much of it as is known.
    pub fn location(&self) -> String {
        let f = self.file.display().to_string();
        match (self.file.as_os_str().is_empty(), self.line, self.col) {
            (true, _, _) => String::new(),
            (false, 0, _) => f,
            (false, l, 0) => format!("{f}:{l}"),
            (false, l, c) => format!("{f}:{l}:{c}"),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loc = self.location();
        if loc.is_empty() {
            write!(f, "{}", self.message)?;
        } else {
            write!(f, "{loc}: {}", self.message)?;
        }
        if let Some(s) = &self.snippet {
            write!(f, "\n{s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Render up to two lines of context before `line` and a caret under `col`.
pub fn snippet(source: &str, line: u64, col: u64) -> String {
    let lines: Vec<&str> = source.lines().collect();
    let idx = (line as usize).saturating_sub(1);
    if idx >= lines.len() {
        return String::new();
    }
    let first = idx.saturating_sub(2);
    let width = (idx + 1).to_string().len();
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate().take(idx + 1).skip(first) {
        out.push_str(&format!("{:>width$} | {}\n", i + 1, l, width = width));
    }
    let pad = " ".repeat(width);
    let caret_col = (col as usize).max(1) - 1;
    out.push_str(&format!("{pad} | {}^", " ".repeat(caret_col)));
    out
}

/// Many diagnostics, reported together (load-time validation reports everything at once).
#[derive(Debug, Default, Clone)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }
    /// Add one.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    /// Add every diagnostic from another collection.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    /// Nothing reported?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// `Ok(v)` when nothing was reported, else `Err(self)`.
    pub fn into_result<T>(self, v: T) -> Result<T, Diagnostics> {
        if self.is_empty() {
            Ok(v)
        } else {
            Err(self)
        }
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                // A blank line between problems that carry a snippet keeps them readable.
                if self.0[i - 1].snippet.is_some() {
                    writeln!(f)?;
                }
                writeln!(f)?;
            }
            write!(f, "error: {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Show a path relative to the current directory when it is inside it (shorter, stable messages).
pub fn display_path(p: &Path) -> String {
    if let Ok(cwd) = std::env::current_dir() {
        if let Ok(rel) = p.strip_prefix(&cwd) {
            return rel.display().to_string();
        }
    }
    p.display().to_string()
}

/// Suggest the closest candidate for a misspelt name (Levenshtein distance <= 2, or a common prefix).
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(&str, usize)> = None;
    for c in candidates {
        let d = levenshtein(name, c);
        let limit = if name.len() <= 4 { 1 } else { 2 };
        if d <= limit && best.is_none_or(|(_, bd)| d < bd) {
            best = Some((c, d));
        }
    }
    best.map(|(c, _)| c)
}

/// Edit distance between two strings.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("hostnme", ["hostname", "hosts"]),
            Some("hostname")
        );
        assert_eq!(did_you_mean("crt", ["cert", "pk"]), Some("cert"));
        assert_eq!(did_you_mean("zzzzzz", ["cert", "pk"]), None);
    }

    #[test]
    fn formats_location_and_snippet() {
        let src = "a: 1\nb: [\nc: 3\n";
        let d = Diagnostic::at("play.yml", 2, 4, "bad").with_source(src);
        let s = d.to_string();
        assert!(s.starts_with("play.yml:2:4: bad\n"), "{s}");
        assert!(s.contains("2 | b: ["), "{s}");
        assert!(s.ends_with("  |    ^"), "{s:?}");
    }

    #[test]
    fn plain_has_no_location() {
        assert_eq!(Diagnostic::plain("oops").to_string(), "oops");
        assert_eq!(Diagnostic::file("x.yml", "oops").to_string(), "x.yml: oops");
    }
}
