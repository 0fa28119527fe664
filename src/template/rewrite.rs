//! Source rewriting applied to every template and expression before minijinja compiles it.
//!
//! Owns the places where Ansible's templar differs from plain Jinja in ways minijinja has no switch for:
//!
//! 1. **Chained undefined.** Ansible's undefined is strict (printing, iterating or testing it fails) but
//!    *chainable*: `x.y | default(1)` and `x.y is defined` work when `x` itself is undefined. minijinja's
//!    `Strict` mode errors on the attribute lookup. We rewrite an attribute/subscript chain that is the direct
//!    operand of `default`/`d`/`mandatory` or of the `defined`/`undefined` tests into
//!    `__ef_chain('x.y', x, 'y')`, a function that walks the chain and yields a "missing" marker instead of
//!    failing. Everything else keeps minijinja's strict lookups, so a typo in a `when:` still fails loudly.
//! 2. **Backslashes in task arguments.** Strings in a task's YAML are already unescaped by YAML; Ansible
//!    therefore keeps backslashes in string literals inside `{{ }}` verbatim (`regex_replace('\.', '\1')` means
//!    what it says). minijinja would turn `'\1'` into `\x01`. With `escape_backslashes`, each such literal is
//!    re-encoded so that minijinja's unescaping yields exactly the characters written. Statements (`{% %}`),
//!    template files and conditions are left alone, as in Ansible.
//! 3. **Python operators.** A binary `%` becomes `__ef_mod(left, right)` (Python string formatting, or modulo)
//!    and a `-` with `to_datetime`/`now()` in an operand becomes `__ef_sub(left, right)` (datetime arithmetic),
//!    see pyops.rs. Operands are found as Jinja parses them (unary operand with postfix, filters, tests, `**`);
//!    an operator inside a left-associative chain (`a * b % c`) is left to minijinja.
//!
//! Templates written with other delimiters (`#jinja2:` lines, the `template` module's options) are rewritten
//! with those ([`rewrite_template_with`]); the newline after `{% raw %}` is kept as Jinja does.
//!
//! The rewriter never adds or removes line breaks, so error line numbers stay right. It must not evaluate
//! anything and must leave text it does not understand untouched (minijinja reports the syntax errors).

use std::borrow::Cow;

use crate::template::pyops::{MOD_FN, SUB_FN};

/// Name of the global function the chain rewrite calls.
pub const CHAIN_FN: &str = "__ef_chain";

/// The delimiters a template is written with (Ansible's defaults, or a `#jinja2:` header's / the `template`
/// module's `variable_start_string` and friends).
#[derive(Debug, Clone, Copy)]
pub struct Delims<'a> {
    /// `{{` `}}`
    pub var: (&'a str, &'a str),
    /// `{%` `%}`
    pub block: (&'a str, &'a str),
    /// `{#` `#}`
    pub comment: (&'a str, &'a str),
}

impl Delims<'static> {
    /// Jinja's.
    pub const DEFAULT: Delims<'static> = Delims {
        var: ("{{", "}}"),
        block: ("{%", "%}"),
        comment: ("{#", "#}"),
    };
}

/// Rewrite a whole template source (text with `{{ }}`, `{% %}`, `{# #}` blocks).
pub fn rewrite_template(src: &str, escape_backslashes: bool) -> Cow<'_, str> {
    rewrite_template_with(src, escape_backslashes, &Delims::DEFAULT)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Region {
    Var,
    Block,
    Comment,
}

/// Rewrite a whole template source written with the delimiters `d`.
pub fn rewrite_template_with<'s>(
    src: &'s str,
    escape_backslashes: bool,
    d: &Delims<'_>,
) -> Cow<'s, str> {
    if !src.contains(d.var.0) && !src.contains(d.block.0) {
        return Cow::Borrowed(src);
    }
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len() + 16);
    let mut changed = false;
    let mut i = 0;
    let mut text_start = 0;
    while i < b.len() {
        // The longest start delimiter that matches here.
        let Some(rest) = src.get(i..) else {
            i += 1;
            continue;
        };
        let region = [
            (Region::Var, d.var.0),
            (Region::Block, d.block.0),
            (Region::Comment, d.comment.0),
        ]
        .into_iter()
        .filter(|(_, s)| !s.is_empty() && rest.starts_with(s))
        .max_by_key(|(_, s)| s.len());
        let Some((region, open)) = region else {
            i += 1;
            continue;
        };
        out.push_str(&src[text_start..i]);
        let code_start = i + open.len();
        match region {
            Region::Comment => {
                let end = src[code_start..]
                    .find(d.comment.1)
                    .map(|p| code_start + p + d.comment.1.len())
                    .unwrap_or(b.len());
                out.push_str(&src[i..end]);
                i = end;
            }
            Region::Var | Region::Block => {
                let close = if region == Region::Var {
                    d.var.1
                } else {
                    d.block.1
                };
                let Some(code_end) = find_block_end(src, code_start, close) else {
                    // Unterminated: leave the rest alone, minijinja reports it.
                    out.push_str(&src[i..]);
                    return Cow::Owned(out);
                };
                let code = &src[code_start..code_end];
                out.push_str(&src[i..code_start]);
                if region == Region::Block && is_raw_tag(code) {
                    // `{% raw %}` ... `{% endraw %}` is copied verbatim. Jinja's `trim_blocks` does not apply to
                    // the `{% raw %}` tag itself (the newline after it is kept); minijinja's does, unless the
                    // tag says `+`: add it.
                    let after = code_end + close.len();
                    let end = find_endraw(src, after, d).unwrap_or(b.len());
                    if code.ends_with(['-', '+']) {
                        out.push_str(&src[code_start..end]);
                    } else {
                        out.push_str(code);
                        out.push('+');
                        out.push_str(&src[code_end..end]);
                        changed = true;
                    }
                    i = end;
                    text_start = i;
                    continue;
                }
                let rewritten = rewrite_code(code, region == Region::Var && escape_backslashes);
                if let Cow::Owned(_) = rewritten {
                    changed = true;
                }
                out.push_str(&rewritten);
                out.push_str(close);
                i = code_end + close.len();
            }
        }
        text_start = i;
    }
    if !changed {
        return Cow::Borrowed(src);
    }
    out.push_str(&src[text_start.min(src.len())..]);
    Cow::Owned(out)
}

/// Rewrite a bare expression (a `when:` condition or the inside of a single `{{ }}`).
pub fn rewrite_expression(src: &str, escape_backslashes: bool) -> Cow<'_, str> {
    rewrite_code(src, escape_backslashes)
}

/// Find the end delimiter (`}}`, `%}`) that closes a block starting at `from`, skipping strings and nested
/// brackets.
fn find_block_end(src: &str, from: usize, close: &str) -> Option<usize> {
    let b = src.as_bytes();
    let mut depth = 0usize;
    let mut i = from;
    while i < b.len() {
        if depth == 0 && src.get(i..).is_some_and(|r| r.starts_with(close)) {
            return Some(i);
        }
        match b[i] {
            q @ (b'\'' | b'"') => {
                i = skip_string(b, i, q);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Index just past the string literal starting at `i` (quote `q`), honouring backslash escapes.
fn skip_string(b: &[u8], mut i: usize, q: u8) -> usize {
    i += 1;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == q {
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

fn is_raw_tag(code: &str) -> bool {
    code.trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace()) == "raw"
}

/// Position just past the `{% endraw %}` tag at or after `from`.
fn find_endraw(src: &str, from: usize, d: &Delims<'_>) -> Option<usize> {
    let (open, close) = d.block;
    let mut pos = from;
    while let Some(p) = src[pos..].find(open) {
        let start = pos + p;
        let end = src[start + open.len()..]
            .find(close)
            .map(|e| start + open.len() + e + close.len())?;
        let inner = &src[start + open.len()..end - close.len()];
        if inner.trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace()) == "endraw" {
            return Some(end);
        }
        pos = start + open.len();
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ident,
    Int,
    Number,
    Str,
    Punct,
}

#[derive(Debug, Clone, Copy)]
struct Tok {
    kind: Kind,
    start: usize,
    end: usize,
}

fn tokenize(code: &str) -> Vec<Tok> {
    let b = code.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let kind = if c == b'\'' || c == b'"' {
            i = skip_string(b, i, c);
            Kind::Str
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                i += 1;
            }
            Kind::Ident
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                i += 1;
            }
            let mut kind = Kind::Int;
            // A fraction/exponent makes it a float; `x.0.1` style access is left alone anyway.
            if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                kind = Kind::Number;
            } else if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'+' | b'-')) {
                    i += 1;
                }
                kind = Kind::Number;
            }
            kind
        } else {
            let two = code.get(i..i + 2).unwrap_or("");
            i += if matches!(two, "**" | "//" | "==" | "!=" | "<=" | ">=") {
                2
            } else {
                // One (possibly multi-byte) character.
                code[i..].chars().next().map(char::len_utf8).unwrap_or(1)
            };
            Kind::Punct
        };
        toks.push(Tok {
            kind,
            start,
            end: i.min(b.len()),
        });
    }
    toks
}

#[derive(Debug)]
enum Accessor {
    /// `.name` (token index of the name).
    Attr(usize),
    /// `[ ... ]` (token indexes of the first and one-past-last inner token).
    Item(usize, usize),
}

#[derive(Debug)]
struct Edit {
    /// First token (the base name, or the left operand).
    start: usize,
    /// One past the last token of the chain (or of the right operand).
    end: usize,
    accessors: Vec<Accessor>,
    /// A binary operator rewritten into a call `f(left, right)`: the function and the operator's token.
    call: Option<(&'static str, usize)>,
}

/// Words that are operators, not operands.
const OPERATOR_WORDS: &[&str] = &["not", "and", "or", "in", "is", "if", "else"];

const KEYWORDS: &[&str] = &[
    "true", "false", "none", "True", "False", "None", "not", "and", "or", "in", "is", "if", "else",
];

struct Code<'a> {
    src: &'a str,
    toks: Vec<Tok>,
    escape_backslashes: bool,
}

impl Code<'_> {
    fn text(&self, t: usize) -> &str {
        &self.src[self.toks[t].start..self.toks[t].end]
    }
    fn is(&self, t: usize, s: &str) -> bool {
        t < self.toks.len() && self.text(t) == s
    }

    /// The filter or test name starting at token `t` (dotted names joined), and the token after it.
    fn dotted_name(&self, t: usize) -> Option<(String, usize)> {
        if t >= self.toks.len() || self.toks[t].kind != Kind::Ident {
            return None;
        }
        let mut name = self.text(t).to_string();
        let mut n = t + 1;
        while self.is(n, ".") && n + 1 < self.toks.len() && self.toks[n + 1].kind == Kind::Ident {
            name.push('.');
            name.push_str(self.text(n + 1));
            n += 2;
        }
        Some((name, n))
    }

    /// Is the operator at token `op` (a `|` or `is`) one whose operand we make chainable?
    fn wants_chain(&self, op: usize) -> Option<bool> {
        if self.is(op, "|") {
            let (name, _) = self.dotted_name(op + 1)?;
            let name = name.strip_prefix("ansible.builtin.").unwrap_or(&name);
            return match name {
                "default" | "d" => Some(false),
                "mandatory" => Some(true),
                _ => None,
            };
        }
        if self.is(op, "is") {
            let t = if self.is(op + 1, "not") {
                op + 2
            } else {
                op + 1
            };
            let (name, _) = self.dotted_name(t)?;
            let name = name.strip_prefix("ansible.builtin.").unwrap_or(&name);
            return matches!(name, "defined" | "undefined").then_some(false);
        }
        None
    }

    /// Walk back from the token before `op` over a postfix chain `name(.attr|[expr])*`.
    fn chain_before(&self, op: usize, allow_bare: bool) -> Option<Edit> {
        let end = op;
        let mut j = op.checked_sub(1)?;
        let mut accessors = Vec::new();
        loop {
            let t = self.toks[j];
            if self.is(j, "]") {
                let open = self.matching_open(j)?;
                // A subscript needs something to subscript; otherwise it is a list literal.
                let prev = open.checked_sub(1)?;
                let pk = self.toks[prev];
                if !(pk.kind == Kind::Ident || self.is(prev, "]")) {
                    return None;
                }
                accessors.push(Accessor::Item(open + 1, j));
                j = prev;
                continue;
            }
            if (t.kind == Kind::Ident || t.kind == Kind::Int) && j >= 1 && self.is(j - 1, ".") {
                accessors.push(Accessor::Attr(j));
                j = j.checked_sub(2)?;
                continue;
            }
            if t.kind == Kind::Ident {
                break;
            }
            return None;
        }
        let base = j;
        if KEYWORDS.contains(&self.text(base)) || self.text(base).starts_with("__ef_") {
            return None;
        }
        // `a | ns.filter | default` — the "chain" is a (dotted) filter or test name, not a variable.
        if base >= 1
            && (self.is(base - 1, "|") || self.is(base - 1, "is") || self.is(base - 1, "."))
        {
            return None;
        }
        if base >= 2 && self.is(base - 1, "not") && self.is(base - 2, "is") {
            return None;
        }
        if accessors.is_empty() && !allow_bare {
            return None;
        }
        accessors.reverse();
        Some(Edit {
            start: base,
            end,
            accessors,
            call: None,
        })
    }

    fn is_open(&self, t: usize) -> bool {
        matches!(self.text(t), "(" | "[" | "{")
    }

    /// Does token `t` end an operand (so a `-` after it is binary)?
    fn ends_operand(&self, t: usize) -> bool {
        let tok = self.toks[t];
        match tok.kind {
            Kind::Str | Kind::Int | Kind::Number => true,
            Kind::Ident => !OPERATOR_WORDS.contains(&self.text(t)),
            Kind::Punct => matches!(self.text(t), ")" | "]" | "}"),
        }
    }

    /// The bracket closing the one opened at `open`.
    fn matching_close(&self, open: usize) -> Option<usize> {
        let mut depth = 0usize;
        for j in open..self.toks.len() {
            match self.text(j) {
                "(" | "[" | "{" => depth += 1,
                ")" | "]" | "}" => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(j);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// The bracket opening the one closed at `close`.
    fn matching_open_any(&self, close: usize) -> Option<usize> {
        let mut depth = 0usize;
        let mut j = close;
        loop {
            match self.text(j) {
                ")" | "]" | "}" => depth += 1,
                "(" | "[" | "{" => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(j);
                    }
                }
                _ => {}
            }
            j = j.checked_sub(1)?;
        }
    }

    /// One past the end of the unary operand starting at `t` (Jinja's `parse_unary` with filters and tests,
    /// then `**`).
    fn operand_end(&self, mut t: usize) -> Option<usize> {
        let n = self.toks.len();
        while t < n && matches!(self.text(t), "-" | "+") {
            t += 1;
        }
        if t >= n {
            return None;
        }
        let tok = self.toks[t];
        t = match tok.kind {
            Kind::Str | Kind::Int | Kind::Number => t + 1,
            Kind::Ident if !OPERATOR_WORDS.contains(&self.text(t)) => t + 1,
            Kind::Punct if self.is_open(t) => self.matching_close(t)? + 1,
            _ => return None,
        };
        loop {
            if t + 1 < n
                && self.is(t, ".")
                && matches!(self.toks[t + 1].kind, Kind::Ident | Kind::Int)
            {
                t += 2;
            } else if t < n && (self.is(t, "[") || self.is(t, "(")) {
                t = self.matching_close(t)? + 1;
            } else if t < n && self.is(t, "|") {
                let (_, after) = self.dotted_name(t + 1)?;
                t = after;
            } else if t < n && self.is(t, "is") {
                let at = if self.is(t + 1, "not") { t + 2 } else { t + 1 };
                let (_, after) = self.dotted_name(at)?;
                t = after;
            } else {
                break;
            }
        }
        if t < n && self.is(t, "**") {
            return self.operand_end(t + 1);
        }
        Some(t)
    }

    /// The first token of the unary operand that ends with token `t`.
    fn operand_start(&self, mut t: usize) -> Option<usize> {
        loop {
            let start = if matches!(self.text(t), ")" | "]" | "}") {
                self.matching_open_any(t)?
            } else if self.ends_operand(t) {
                t
            } else {
                return None;
            };
            let Some(prev) = start.checked_sub(1) else {
                return Some(start);
            };
            let bracket = self.is(start, "(") || self.is(start, "[");
            let word = matches!(self.toks[start].kind, Kind::Ident | Kind::Int);
            if bracket && self.ends_operand(prev) {
                // A call or subscript of what precedes it.
                t = prev;
            } else if word && matches!(self.text(prev), "." | "|" | "is") && prev >= 1 {
                // An attribute, a filter or a test of what precedes it.
                t = prev - 1;
            } else if word && self.is(prev, "not") && prev >= 2 && self.is(prev - 1, "is") {
                t = prev - 2;
            } else if matches!(self.text(prev), "-" | "+")
                && (prev == 0 || !self.ends_operand(prev - 1))
            {
                return Some(prev);
            } else {
                return Some(start);
            }
        }
    }

    /// A binary `%` (always: Python formatting for strings) or a `-` with a datetime operand at token `op`,
    /// as a call edit. Operators in a left-associative chain (`a * b % c`) are left to minijinja.
    fn binop(&self, op: usize) -> Option<Edit> {
        let func = match self.text(op) {
            "%" => MOD_FN,
            "-" => SUB_FN,
            _ => return None,
        };
        if op == 0 || !self.ends_operand(op - 1) {
            return None;
        }
        let start = self.operand_start(op - 1)?;
        let mut end = self.operand_end(op + 1)?;
        if func == SUB_FN {
            // `a - b * c` subtracts the product.
            while end < self.toks.len() && matches!(self.text(end), "*" | "/" | "//" | "%") {
                end = self.operand_end(end + 1)?;
            }
            let text = &self.src[self.toks[start].start..self.toks[end - 1].end];
            if !(text.contains("to_datetime") || text.contains("now(")) {
                return None;
            }
        }
        if let Some(before) = start.checked_sub(1) {
            let chained: &[&str] = if func == MOD_FN {
                &["*", "/", "//", "%", "**"]
            } else {
                &["*", "/", "//", "%", "**", "+", "-", "~"]
            };
            if chained.contains(&self.text(before)) {
                return None;
            }
        }
        Some(Edit {
            start,
            end,
            accessors: Vec::new(),
            call: Some((func, op)),
        })
    }

    fn matching_open(&self, close: usize) -> Option<usize> {
        let mut depth = 0usize;
        let mut j = close;
        loop {
            match self.text(j) {
                "]" | ")" | "}" => depth += 1,
                "[" | "(" | "{" => {
                    depth -= 1;
                    if depth == 0 {
                        return if self.text(j) == "[" { Some(j) } else { None };
                    }
                }
                _ => {}
            }
            j = j.checked_sub(1)?;
        }
    }

    /// Render tokens `lo..hi` with the original spacing, applying string re-encoding and nested edits.
    fn render(&self, lo: usize, hi: usize, edits: &[Edit], out: &mut String) {
        let mut t = lo;
        while t < hi {
            if t > lo {
                out.push_str(&self.src[self.toks[t - 1].end..self.toks[t].start]);
            }
            if let Some(e) = edits.iter().find(|e| e.start == t && e.end <= hi) {
                self.render_edit(e, edits, out);
                t = e.end;
                continue;
            }
            self.render_tok(t, out);
            t += 1;
        }
    }

    fn render_tok(&self, t: usize, out: &mut String) {
        let tok = self.toks[t];
        let text = self.text(t);
        if tok.kind == Kind::Str
            && self.escape_backslashes
            && text.contains('\\')
            && text.len() >= 2
        {
            // Keep the characters as written: minijinja's unescaping must give back the raw content.
            let raw = &text[1..text.len() - 1];
            out.push('\'');
            for c in raw.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\'' => out.push_str("\\'"),
                    c => out.push(c),
                }
            }
            out.push('\'');
        } else {
            out.push_str(text);
        }
    }

    fn render_edit(&self, e: &Edit, edits: &[Edit], out: &mut String) {
        if let Some((func, op)) = e.call {
            out.push_str(func);
            out.push('(');
            self.render(e.start, op, edits, out);
            out.push_str(", ");
            out.push_str(self.src[self.toks[op].end..self.toks[op + 1].start].trim_start());
            self.render(op + 1, e.end, edits, out);
            out.push(')');
            return;
        }
        let last = e.end - 1;
        let path: String = self.src[self.toks[e.start].start..self.toks[last].end]
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .collect();
        out.push_str(CHAIN_FN);
        out.push_str("('");
        for c in path.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                c => out.push(c),
            }
        }
        out.push_str("', ");
        out.push_str(self.text(e.start));
        for a in &e.accessors {
            out.push_str(", ");
            match a {
                Accessor::Attr(t) => {
                    if self.toks[*t].kind == Kind::Int {
                        out.push_str(self.text(*t));
                    } else {
                        out.push('\'');
                        out.push_str(self.text(*t));
                        out.push('\'');
                    }
                }
                Accessor::Item(lo, hi) => {
                    out.push('(');
                    self.render(*lo, *hi, edits, out);
                    out.push(')');
                }
            }
        }
        out.push(')');
    }
}

/// Rewrite one code region (the inside of `{{ }}` / `{% %}`, or an expression).
fn rewrite_code(code: &str, escape_backslashes: bool) -> Cow<'_, str> {
    let toks = tokenize(code);
    let c = Code {
        src: code,
        toks,
        escape_backslashes,
    };
    let mut edits = Vec::new();
    for op in 0..c.toks.len() {
        if let Some(allow_bare) = c.wants_chain(op) {
            if let Some(e) = c.chain_before(op, allow_bare) {
                edits.push(e);
            }
        }
        if let Some(e) = c.binop(op) {
            edits.push(e);
        }
    }
    let needs_escape = escape_backslashes
        && c.toks
            .iter()
            .any(|t| t.kind == Kind::Str && code[t.start..t.end].contains('\\'));
    if edits.is_empty() && !needs_escape {
        return Cow::Borrowed(code);
    }
    // Outer edits first so `render` finds the enclosing one when chains nest.
    edits.sort_by_key(|e| (e.start, std::cmp::Reverse(e.end)));
    let mut out = String::with_capacity(code.len() + 32);
    if let Some(first) = c.toks.first() {
        out.push_str(&code[..first.start]);
        c.render(0, c.toks.len(), &edits, &mut out);
        out.push_str(&code[c.toks[c.toks.len() - 1].end..]);
    } else {
        out.push_str(code);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> String {
        rewrite_template(s, false).into_owned()
    }

    #[test]
    fn chains_before_default_and_defined_are_rewritten() {
        assert_eq!(
            t("{{ x.y | default(1) }}"),
            "{{ __ef_chain('x.y', x, 'y') | default(1) }}"
        );
        assert_eq!(
            t("{{ a.b['c'].d is not defined }}"),
            r"{{ __ef_chain('a.b[\'c\'].d', a, 'b', ('c'), 'd') is not defined }}"
        );
        assert_eq!(
            t("{{ l.0 | d('z') }}"),
            "{{ __ef_chain('l.0', l, 0) | d('z') }}"
        );
        // Bare names only for mandatory (to name them in the error).
        assert_eq!(t("{{ x | default(1) }}"), "{{ x | default(1) }}");
        assert_eq!(
            t("{{ x | mandatory }}"),
            "{{ __ef_chain('x', x) | mandatory }}"
        );
        assert_eq!(
            t("{% if cfg.proxy is defined %}p{% endif %}"),
            "{% if __ef_chain('cfg.proxy', cfg, 'proxy') is defined %}p{% endif %}"
        );
    }

    #[test]
    fn leaves_other_shapes_alone() {
        for s in [
            "{{ x.y | upper }}",
            "{{ f(1).y | default(2) }}",
            "{{ [1, 2] | default(3) }}",
            "{{ v | ansible.builtin.to_json | default('x') }}",
            "{# {{ x.y | default(1) }} #}",
            "plain text",
            "{{ 'a.b' | default(1) }}",
        ] {
            assert_eq!(t(s), s, "{s}");
        }
    }

    #[test]
    fn raw_tags_keep_their_newline() {
        assert_eq!(
            t("{% raw %}{{ x.y | default(1) }}{% endraw %}"),
            "{% raw +%}{{ x.y | default(1) }}{% endraw %}"
        );
        assert_eq!(
            t("{% raw -%}\n{{ x }}{% endraw %}"),
            "{% raw -%}\n{{ x }}{% endraw %}"
        );
        let env = minijinja::Environment::new();
        let mut env = env;
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .build()
                .unwrap(),
        );
        let src = t("a\n{% raw %}\n{{ x }}\n{% endraw %}\nb");
        assert_eq!(env.render_str(&src, ()).unwrap(), "a\n\n{{ x }}\nb");
    }

    #[test]
    fn nested_chains_and_lines_are_kept() {
        let s = "{{ m[k.a | default('z')].v\n | default(0) }}";
        let r = t(s);
        assert_eq!(r.lines().count(), 2);
        assert_eq!(
            r,
            "{{ __ef_chain('m[k.a | default(\\'z\\')].v', m, (__ef_chain('k.a', k, 'a') | default('z')), 'v')\n | default(0) }}"
        );
    }

    #[test]
    fn backslashes_kept_in_variable_blocks_only() {
        assert_eq!(
            rewrite_template(r"{{ s | regex_replace('\.', '\1') }}", true),
            r"{{ s | regex_replace('\\.', '\\1') }}"
        );
        assert_eq!(
            rewrite_template(r#"{{ "it\'s" }}"#, true),
            r"{{ 'it\\\'s' }}"
        );
        // Statements and template files keep Jinja's own escapes.
        assert_eq!(
            rewrite_template(r"{% set a = '\n' %}", true),
            r"{% set a = '\n' %}"
        );
        assert_eq!(rewrite_template(r"{{ '\n' }}", false), r"{{ '\n' }}");
    }

    #[test]
    fn percent_and_date_minus_become_calls() {
        assert_eq!(t("{{ '%03d' % n }}"), "{{ __ef_mod('%03d', n) }}");
        assert_eq!(
            t("{{ 'a' ~ '%s-%s' % ('x', n + 1) ~ 'b' }}"),
            "{{ 'a' ~ __ef_mod('%s-%s', ('x', n + 1)) ~ 'b' }}"
        );
        assert_eq!(
            t("{% if loop.index0 % 2 == 0 %}"),
            "{% if __ef_mod(loop.index0, 2) == 0 %}"
        );
        assert_eq!(
            t("{{ 'n%02d' % x.y | int }}"),
            "{{ __ef_mod('n%02d', x.y | int) }}"
        );
        assert_eq!(
            t("{{ (b | to_datetime - a | to_datetime('%Y')).days }}"),
            "{{ (__ef_sub(b | to_datetime, a | to_datetime(__ef_mod('%Y')))).days }}"
                .replace("__ef_mod('%Y')", "'%Y'")
        );
        assert_eq!(
            t("{{ (now() - d|to_datetime).seconds }}"),
            "{{ (__ef_sub(now(), d|to_datetime)).seconds }}"
        );
        // Other minus signs, whitespace control and chains are left alone.
        for s in [
            "{{ a - b }}",
            "{{ x -}}",
            "{%- if a -%}",
            "{{ [1, -2] }}",
            "{{ a * b % c }}",
            "{{ -1 }}",
        ] {
            assert_eq!(t(s), s, "{s}");
        }
    }

    #[test]
    fn dict_literals_do_not_end_blocks() {
        let s = "{{ {'a': {'b': x.y | default(1)}} }}";
        assert_eq!(
            t(s),
            "{{ {'a': {'b': __ef_chain('x.y', x, 'y') | default(1)}} }}"
        );
    }
}
