//! Per-template settings, as Ansible 2.19 applies them around Jinja.
//!
//! Owns [`Overrides`]: the delimiters, `trim_blocks`, `lstrip_blocks`, `newline_sequence` and
//! `keep_trailing_newline` of one render, set by a template's `#jinja2:` first line (any template string or
//! file), the `template` module's arguments or the template lookup's options. Also owns what Ansible does
//! around Jinja's rendering of a string, which every render here follows:
//!
//! 1. a leading `#jinja2: key: value, ...` line (Python literals) is removed and overrides the settings;
//! 2. newlines in the source become `newline_sequence` (Jinja normalizes them);
//! 3. unless `keep_trailing_newline`, one trailing newline is dropped (Jinja's default) — so
//!    `"{{ n | int }}\n"` is a single expression and keeps its native type;
//! 4. a text result gets back the trailing newlines the source had and the result lacks.
//!
//! It must not render anything: callers (context.rs, the template lookup) do.

use std::borrow::Cow;

use minijinja::syntax::SyntaxConfig;

use crate::template::rewrite::Delims;

/// The first-line marker of template overrides.
pub const HEADER: &str = "#jinja2:";

/// The settings of one render. [`Default`] is Ansible's (note `trim_blocks` on).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Overrides {
    pub block_start_string: String,
    pub block_end_string: String,
    pub variable_start_string: String,
    pub variable_end_string: String,
    pub comment_start_string: String,
    pub comment_end_string: String,
    pub line_statement_prefix: Option<String>,
    pub line_comment_prefix: Option<String>,
    pub trim_blocks: bool,
    pub lstrip_blocks: bool,
    pub newline_sequence: String,
    pub keep_trailing_newline: bool,
}

impl Default for Overrides {
    fn default() -> Self {
        Overrides {
            block_start_string: "{%".into(),
            block_end_string: "%}".into(),
            variable_start_string: "{{".into(),
            variable_end_string: "}}".into(),
            comment_start_string: "{#".into(),
            comment_end_string: "#}".into(),
            line_statement_prefix: None,
            line_comment_prefix: None,
            trim_blocks: true,
            lstrip_blocks: false,
            newline_sequence: "\n".into(),
            keep_trailing_newline: false,
        }
    }
}

/// A value of an override: what `ast.literal_eval` gives for the ones Ansible accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    Bool(bool),
    Str(String),
    None,
}

const KEYS: &[&str] = &[
    "block_end_string",
    "block_start_string",
    "comment_end_string",
    "comment_start_string",
    "keep_trailing_newline",
    "line_comment_prefix",
    "line_statement_prefix",
    "lstrip_blocks",
    "newline_sequence",
    "trim_blocks",
    "variable_end_string",
    "variable_start_string",
];

impl Overrides {
    /// Set one setting by its Ansible name. Errors say what is accepted.
    pub fn set(&mut self, key: &str, value: Setting) -> Result<(), String> {
        let string = |v: Setting| match v {
            Setting::Str(s) if !s.is_empty() => Ok(s),
            _ => Err(format!("`{key}` must be a non-empty string")),
        };
        let boolean = |v: Setting| match v {
            Setting::Bool(b) => Ok(b),
            _ => Err(format!("`{key}` must be True or False")),
        };
        let optional = |v: Setting| match v {
            Setting::None => Ok(None),
            Setting::Str(s) if !s.is_empty() => Ok(Some(s)),
            _ => Err(format!("`{key}` must be a non-empty string or None")),
        };
        match key {
            "block_start_string" => self.block_start_string = string(value)?,
            "block_end_string" => self.block_end_string = string(value)?,
            "variable_start_string" => self.variable_start_string = string(value)?,
            "variable_end_string" => self.variable_end_string = string(value)?,
            "comment_start_string" => self.comment_start_string = string(value)?,
            "comment_end_string" => self.comment_end_string = string(value)?,
            "line_statement_prefix" => self.line_statement_prefix = optional(value)?,
            "line_comment_prefix" => self.line_comment_prefix = optional(value)?,
            "trim_blocks" => self.trim_blocks = boolean(value)?,
            "lstrip_blocks" => self.lstrip_blocks = boolean(value)?,
            "keep_trailing_newline" => self.keep_trailing_newline = boolean(value)?,
            "newline_sequence" => {
                let s = string(value)?;
                // The template module also accepts the escaped spellings.
                self.newline_sequence = match s.as_str() {
                    "\n" | "\\n" => "\n".into(),
                    "\r\n" | "\\r\\n" => "\r\n".into(),
                    "\r" | "\\r" => "\r".into(),
                    _ => return Err("`newline_sequence` must be one of \\n, \\r or \\r\\n".into()),
                };
            }
            _ => {
                return Err(format!(
                    "unknown template override `{key}`; valid: {}",
                    KEYS.join(", ")
                ))
            }
        }
        Ok(())
    }

    /// Split a `#jinja2:` first line off `src` and apply it on top of `self`. Without one, `src` and a copy of
    /// `self`. Errors say what is wrong with the line (the caller names the template).
    pub fn with_header<'a>(&self, src: &'a str) -> Result<(&'a str, Overrides), String> {
        let mut ov = self.clone();
        let Some(rest) = src.strip_prefix(HEADER) else {
            return Ok((src, ov));
        };
        let Some(eol) = rest.find('\n') else {
            return Err(format!("missing newline after the `{HEADER}` line"));
        };
        let line = rest[..eol].strip_suffix('\r').unwrap_or(&rest[..eol]);
        for pair in line.split(',') {
            if pair.trim().is_empty() {
                return Err(format!("empty pair in the `{HEADER}` line"));
            }
            let Some((k, v)) = pair.split_once(':') else {
                return Err(format!(
                    "missing `:` in the `{HEADER}` pair `{}` (write `key: value`)",
                    pair.trim()
                ));
            };
            let value = literal(v.trim())
                .map_err(|e| format!("`{HEADER}` value of `{}`: {e}", k.trim()))?;
            ov.set(k.trim(), value)
                .map_err(|e| format!("in the `{HEADER}` line: {e}"))?;
        }
        ov.check()?;
        Ok((&rest[eol + 1..], ov))
    }

    /// Are the three start strings different (as Ansible requires)?
    pub fn check(&self) -> Result<(), String> {
        let (b, v, c) = (
            &self.block_start_string,
            &self.variable_start_string,
            &self.comment_start_string,
        );
        if b == v || v == c || b == c {
            return Err("block, variable and comment start strings must be different".into());
        }
        Ok(())
    }

    /// The delimiters, for the rewriter.
    pub fn delims(&self) -> Delims<'_> {
        Delims {
            var: (&self.variable_start_string, &self.variable_end_string),
            block: (&self.block_start_string, &self.block_end_string),
            comment: (&self.comment_start_string, &self.comment_end_string),
        }
    }

    /// minijinja's syntax for these settings. The trailing newline is kept: [`Overrides::prepare`] drops it.
    pub fn syntax(&self) -> Result<SyntaxConfig, String> {
        let mut b = SyntaxConfig::builder();
        b.block_delimiters(
            self.block_start_string.clone(),
            self.block_end_string.clone(),
        )
        .variable_delimiters(
            self.variable_start_string.clone(),
            self.variable_end_string.clone(),
        )
        .comment_delimiters(
            self.comment_start_string.clone(),
            self.comment_end_string.clone(),
        )
        .trim_blocks(self.trim_blocks)
        .lstrip_blocks(self.lstrip_blocks)
        .keep_trailing_newline(true);
        if let Some(p) = &self.line_statement_prefix {
            b.line_statement_prefix(p.clone());
        }
        if let Some(p) = &self.line_comment_prefix {
            b.line_comment_prefix(p.clone());
        }
        b.build()
            .map_err(|e| format!("invalid template delimiters: {e}"))
    }

    /// Does `s` contain a start delimiter (is it a template at all)?
    pub fn is_template(&self, s: &str) -> bool {
        s.starts_with(HEADER)
            || s.contains(self.variable_start_string.as_str())
            || s.contains(self.block_start_string.as_str())
            || s.contains(self.comment_start_string.as_str())
    }

    /// The source minijinja compiles: newlines normalized, one trailing newline dropped unless kept.
    pub fn prepare<'a>(&self, src: &'a str) -> Cow<'a, str> {
        let mut out = if src.contains('\r') || self.newline_sequence != "\n" {
            Cow::Owned(normalize_newlines(src, &self.newline_sequence))
        } else {
            Cow::Borrowed(src)
        };
        if !self.keep_trailing_newline {
            let seq = self.newline_sequence.as_str();
            if out.ends_with(seq) {
                out = match out {
                    Cow::Borrowed(s) => Cow::Borrowed(&s[..s.len() - seq.len()]),
                    Cow::Owned(mut s) => {
                        s.truncate(s.len() - seq.len());
                        Cow::Owned(s)
                    }
                };
            }
        }
        out
    }

    /// Give a text result back the trailing newlines (`\n`) of the source it lacks, as Ansible does.
    pub fn restore_newlines(&self, source: &str, mut result: String) -> String {
        let want = trailing_newlines(source);
        let have = trailing_newlines(&result);
        for _ in have..want {
            result.push_str(&self.newline_sequence);
        }
        result
    }
}

/// How many `\n` end `s` (Ansible counts only those).
fn trailing_newlines(s: &str) -> usize {
    s.bytes().rev().take_while(|b| *b == b'\n').count()
}

fn normalize_newlines(s: &str, seq: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str(seq);
            }
            '\n' => out.push_str(seq),
            c => out.push(c),
        }
    }
    out
}

/// A Python literal as `ast.literal_eval` reads it, for the types settings have.
fn literal(v: &str) -> Result<Setting, String> {
    match v {
        "True" => return Ok(Setting::Bool(true)),
        "False" => return Ok(Setting::Bool(false)),
        "None" => return Ok(Setting::None),
        _ => {}
    }
    let mut chars = v.chars();
    let q = match chars.next() {
        Some(q @ ('\'' | '"')) if v.len() >= 2 && v.ends_with(q) => q,
        _ => {
            return Err(format!(
                "`{v}` is not a Python literal this accepts (True, False, None or a quoted string)"
            ))
        }
    };
    let inner = &v[1..v.len() - 1];
    let mut out = String::new();
    let mut it = inner.chars();
    while let Some(c) = it.next() {
        if c == q {
            return Err(format!("`{v}`: unescaped quote inside the string"));
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some('\'') => out.push('\''),
            Some('"') => out.push('"'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => return Err(format!("`{v}`: string ends in a backslash")),
        }
    }
    Ok(Setting::Str(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_overrides_settings_and_is_removed() {
        let (src, ov) = Overrides::default()
            .with_header("#jinja2: trim_blocks: False, lstrip_blocks: True\nbody\n")
            .unwrap();
        assert_eq!(src, "body\n");
        assert!(!ov.trim_blocks && ov.lstrip_blocks);
        let (src, ov) = Overrides::default()
            .with_header("#jinja2:variable_start_string:'[%', variable_end_string: \"%]\"\nx")
            .unwrap();
        assert_eq!(src, "x");
        assert_eq!(ov.delims().var, ("[%", "%]"));
        let (src, ov) = Overrides::default().with_header("no header\n").unwrap();
        assert_eq!((src, ov), ("no header\n", Overrides::default()));
        for bad in [
            "#jinja2: trim_blocks: False",
            "#jinja2: trim_blocks False\n",
            "#jinja2: trim_blocks: no\n",
            "#jinja2: bogus: True\n",
            "#jinja2: trim_blocks: True,\n",
            "#jinja2: variable_start_string: '{%'\n",
        ] {
            assert!(Overrides::default().with_header(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trailing_newlines_like_ansible() {
        let d = Overrides::default();
        assert_eq!(d.prepare("{{ x }}\n"), "{{ x }}");
        assert_eq!(d.prepare("{{ x }}\n\n"), "{{ x }}\n");
        assert_eq!(d.prepare("a\r\nb\r\n"), "a\nb");
        assert_eq!(d.restore_newlines("{{ x }}\n\n", "abc\n".into()), "abc\n\n");
        assert_eq!(d.restore_newlines("{{ x }}\n", "abc\n".into()), "abc\n");
        assert_eq!(d.restore_newlines("{{ x }}", "abc".into()), "abc");
        let keep = Overrides {
            keep_trailing_newline: true,
            ..Overrides::default()
        };
        assert_eq!(keep.prepare("x\n"), "x\n");
        let crlf = Overrides {
            newline_sequence: "\r\n".into(),
            ..Overrides::default()
        };
        assert_eq!(crlf.prepare("a\nb\n"), "a\r\nb");
        assert_eq!(
            crlf.restore_newlines("a\nb\n", "a\r\nb".into()),
            "a\r\nb\r\n"
        );
    }
}
