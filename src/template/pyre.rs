//! Python `re` syntax on top of the `regex` crate, for `regex_replace`, `regex_search`, `regex_findall` and the
//! `match`/`search`/`regex` tests.
//!
//! Owns translating a Python pattern into the `regex` crate's dialect (`\Z`, literal `{`, `{,n}`, `[` inside
//! classes, `(?#...)` comments) and Python replacement templates (`\1`, `\g<1>`, `\g<name>`, `\n`) into
//! expansions. What the `regex` crate cannot do (backreferences in patterns, lookaround, conditionals) is a
//! clear error, never a silently different match. Errors never quote the pattern or the text (either may come
//! from a variable holding a secret). Known difference: without `multiline`, Python's `$` also
//! matches before a final newline; ours matches only at the very end; and after an empty match Python retries
//! the same position for a non-empty one (`re.sub("|a", "-", "a")` is `---`), we step one character.

use regex::{Captures, Regex};

/// Compile a Python-syntax pattern with Python's `re.I` / `re.M` flags.
pub fn compile(pattern: &str, ignorecase: bool, multiline: bool) -> Result<Regex, String> {
    let mut p = String::with_capacity(pattern.len() + 8);
    if ignorecase || multiline {
        p.push_str("(?");
        if ignorecase {
            p.push('i');
        }
        if multiline {
            p.push('m');
        }
        p.push(')');
    }
    p.push_str(&translate(pattern)?);
    Regex::new(&p).map_err(|e| {
        let detail = e.to_string();
        let last = detail.lines().last().unwrap_or("").trim();
        format!(
            "invalid regular expression: {}",
            last.trim_start_matches("error: ")
        )
    })
}

/// Translate Python `re` pattern syntax into the `regex` crate's.
pub fn translate(p: &str) -> Result<String, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    let mut class_start = false;
    let unsupported = |what: &str| {
        Err(format!(
            "{what} in a regular expression is not supported here"
        ))
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&n) = chars.get(i + 1) else {
                return Err("the regular expression ends with a lone backslash".into());
            };
            match n {
                'Z' if !in_class => out.push_str("\\z"),
                '0' => out.push_str("\\x00"),
                '1'..='9' if !in_class => return unsupported("a backreference (\\1)"),
                _ => {
                    out.push('\\');
                    out.push(n);
                }
            }
            i += 2;
            class_start = false;
            continue;
        }
        if in_class {
            match c {
                ']' if !class_start => {
                    in_class = false;
                    out.push(']');
                }
                ']' => out.push_str("\\]"),
                '^' if class_start && out.ends_with('[') => {
                    out.push('^');
                    i += 1;
                    continue; // still at the start of the class
                }
                '[' => out.push_str("\\["),
                '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                _ => out.push(c),
            }
            class_start = false;
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                class_start = true;
                out.push('[');
            }
            '(' if chars.get(i + 1) == Some(&'?') => {
                let rest: String = chars[i + 2..chars.len().min(i + 5)].iter().collect();
                if rest.starts_with('#') {
                    // A comment group: drop it.
                    match chars[i..].iter().position(|&x| x == ')') {
                        Some(end) => {
                            i += end + 1;
                            continue;
                        }
                        None => {
                            return Err(
                                "unterminated (?#...) comment in the regular expression".into()
                            )
                        }
                    }
                }
                if rest.starts_with('=')
                    || rest.starts_with('!')
                    || rest.starts_with("<=")
                    || rest.starts_with("<!")
                {
                    return unsupported("lookahead/lookbehind");
                }
                if rest.starts_with("P=") {
                    return unsupported("a named backreference (?P=...)");
                }
                if rest.starts_with('(') {
                    return unsupported("a conditional group");
                }
                if rest.starts_with('>') {
                    return unsupported("an atomic group");
                }
                out.push('(');
            }
            '{' => {
                // A quantifier `{m}`, `{m,}`, `{m,n}`, `{,n}`; anything else is a literal brace in Python.
                let close = chars[i..].iter().position(|&x| x == '}').map(|e| i + e);
                let body: Option<String> = close.map(|e| chars[i + 1..e].iter().collect());
                match body {
                    Some(b) if is_quantifier(&b) && i > 0 => {
                        if let Some(rest) = b.strip_prefix(',') {
                            out.push_str("{0,");
                            out.push_str(rest);
                            out.push('}');
                        } else {
                            out.push('{');
                            out.push_str(&b);
                            out.push('}');
                        }
                        i = close.unwrap_or(i) + 1;
                        continue;
                    }
                    _ => out.push_str("\\{"),
                }
            }
            '}' => out.push_str("\\}"),
            _ => out.push(c),
        }
        i += 1;
    }
    Ok(out)
}

fn is_quantifier(b: &str) -> bool {
    let (lo, hi) = match b.split_once(',') {
        Some((lo, hi)) => (lo, Some(hi)),
        None => (b, None),
    };
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    match hi {
        None => !lo.is_empty() && digits(lo),
        Some(hi) => digits(lo) && digits(hi) && !(lo.is_empty() && hi.is_empty()),
    }
}

/// One piece of a parsed Python replacement template.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplPart {
    /// Text copied as is.
    Lit(String),
    /// A numbered group.
    Index(usize),
    /// A named group.
    Name(String),
}

/// Parse a Python `re.sub` replacement template and check its group references against `re`.
pub fn parse_replacement(repl: &str, re: &Regex) -> Result<Vec<ReplPart>, String> {
    let chars: Vec<char> = repl.chars().collect();
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    let bad = |what: String| Err(format!("invalid replacement string: {what}"));
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' {
            lit.push(c);
            i += 1;
            continue;
        }
        let Some(&n) = chars.get(i + 1) else {
            return bad("ends with a lone backslash".into());
        };
        i += 2;
        let group = match n {
            'g' => {
                if chars.get(i) != Some(&'<') {
                    return bad("missing < after \\g".into());
                }
                let Some(end) = chars[i..].iter().position(|&x| x == '>') else {
                    return bad("missing > after \\g<".into());
                };
                let name: String = chars[i + 1..i + end].iter().collect();
                i += end + 1;
                match name.parse::<usize>() {
                    Ok(ix) => Some(ReplPart::Index(ix)),
                    Err(_) if !name.is_empty() => Some(ReplPart::Name(name)),
                    Err(_) => return bad("empty group name".into()),
                }
            }
            '1'..='9' => {
                let mut num = n.to_digit(10).unwrap_or(0) as usize;
                if let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                    num = num * 10 + d as usize;
                    i += 1;
                }
                Some(ReplPart::Index(num))
            }
            '0' => {
                // Octal escape (up to three digits).
                let mut v = 0u32;
                let mut k = 0;
                while k < 2 {
                    match chars.get(i).and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            i += 1;
                            k += 1;
                        }
                        None => break,
                    }
                }
                lit.push(char::from_u32(v).unwrap_or('\0'));
                None
            }
            'n' => {
                lit.push('\n');
                None
            }
            't' => {
                lit.push('\t');
                None
            }
            'r' => {
                lit.push('\r');
                None
            }
            'a' => {
                lit.push('\x07');
                None
            }
            'b' => {
                lit.push('\x08');
                None
            }
            'f' => {
                lit.push('\x0c');
                None
            }
            'v' => {
                lit.push('\x0b');
                None
            }
            '\\' => {
                lit.push('\\');
                None
            }
            c if c.is_ascii_alphabetic() => return bad(format!("bad escape \\{c}")),
            c => {
                // Python keeps unknown non-letter escapes as they are.
                lit.push('\\');
                lit.push(c);
                None
            }
        };
        if let Some(g) = group {
            match &g {
                ReplPart::Index(ix) if *ix >= re.captures_len() => {
                    return bad(format!("invalid group reference {ix}"));
                }
                ReplPart::Name(nm) if !re.capture_names().flatten().any(|x| x == nm) => {
                    return bad(format!("unknown group name {nm:?}"));
                }
                _ => {}
            }
            if !lit.is_empty() {
                parts.push(ReplPart::Lit(std::mem::take(&mut lit)));
            }
            parts.push(g);
        }
    }
    if !lit.is_empty() {
        parts.push(ReplPart::Lit(lit));
    }
    Ok(parts)
}

/// Expand a parsed replacement for one match (a group that did not take part gives "", as in Python 3.5+).
pub fn expand(parts: &[ReplPart], caps: &Captures<'_>, out: &mut String) {
    for p in parts {
        match p {
            ReplPart::Lit(s) => out.push_str(s),
            ReplPart::Index(i) => out.push_str(caps.get(*i).map(|m| m.as_str()).unwrap_or("")),
            ReplPart::Name(n) => out.push_str(caps.name(n).map(|m| m.as_str()).unwrap_or("")),
        }
    }
}

/// Python's `re.subn`: replace the first `count` matches (all when 0); returns the text and the number made.
pub fn subn(re: &Regex, repl: &[ReplPart], text: &str, count: usize) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut n = 0;
    for caps in py_captures(re, text) {
        if count != 0 && n == count {
            break;
        }
        let Some(m) = caps.get(0) else { continue };
        out.push_str(&text[last..m.start()]);
        expand(repl, &caps, &mut out);
        last = m.end();
        n += 1;
    }
    out.push_str(&text[last..]);
    (out, n)
}

/// All matches with Python 3.7+'s rules for empty matches: an empty match right after a non-empty one counts
/// (`re.sub('x*', '-', 'abxd')` is `-a-b--d-`), only an empty match at the end of another empty one is skipped.
pub fn py_captures<'t>(re: &Regex, text: &'t str) -> Vec<Captures<'t>> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut prev_empty_end: Option<usize> = None;
    while pos <= text.len() {
        let Some(caps) = re.captures_at(text, pos) else {
            break;
        };
        let Some(m) = caps.get(0) else { break };
        if m.is_empty() && prev_empty_end == Some(m.start()) {
            // Step over one character and search again.
            match text[pos..].chars().next() {
                Some(c) => pos += c.len_utf8(),
                None => break,
            }
            continue;
        }
        prev_empty_end = m.is_empty().then_some(m.end());
        pos = m.end();
        out.push(caps);
    }
    out
}

/// Python's `re.escape`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii() {
            out.push(c);
        } else if c == '\0' {
            out.push_str("\\000");
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(p: &str, r: &str, s: &str) -> String {
        let re = compile(p, false, false).unwrap();
        let parts = parse_replacement(r, &re).unwrap();
        subn(&re, &parts, s, 0).0
    }

    #[test]
    fn ansible_doc_examples() {
        // Ansible docs, "Searching strings with regular expressions".
        assert_eq!(sub("^a.*i(.*)$", r"a\1", "ansible"), "able");
        assert_eq!(sub("^f.*o(.*)$", r"\1", "foobar"), "bar");
        assert_eq!(
            sub(
                r"^(?P<host>.+):(?P<port>\d+)$",
                r"\g<host>, \g<port>",
                "localhost:80"
            ),
            "localhost, 80"
        );
        assert_eq!(sub(r"(x)", r"\g<1>\g<1>", "x"), "xx");
        assert_eq!(sub(r"\.", r"\\", "a.b"), r"a\b");
        assert_eq!(sub("x*", "-", "abxd"), "-a-b--d-");
        assert_eq!(sub("(a)|b", r"[\1]", "ab"), "[a][]");
    }

    #[test]
    fn python_only_syntax_is_translated() {
        assert_eq!(sub(r"a{", "x", "a{b"), "xb");
        assert_eq!(sub(r"a{,2}", "x", "aaa"), "xxx");
        assert_eq!(sub(r"[[]", "x", "a[b"), "axb");
        assert_eq!(sub(r"[]a]", "x", "]a"), "xx");
        assert_eq!(sub(r"b\Z", "x", "abb"), "abx");
        assert_eq!(sub(r"a(?#comment)b", "x", "ab"), "x");
    }

    #[test]
    fn unsupported_syntax_is_an_error() {
        assert!(compile(r"(a)\1", false, false)
            .unwrap_err()
            .contains("backreference"));
        assert!(compile(r"a(?=b)", false, false)
            .unwrap_err()
            .contains("lookahead"));
        assert!(compile("(", false, false)
            .unwrap_err()
            .contains("invalid regular expression"));
        let re = compile("(a)", false, false).unwrap();
        assert!(parse_replacement(r"\2", &re)
            .unwrap_err()
            .contains("invalid group reference"));
        assert!(parse_replacement(r"\g<nope>", &re)
            .unwrap_err()
            .contains("unknown group"));
        assert!(parse_replacement(r"\q", &re)
            .unwrap_err()
            .contains("bad escape"));
    }

    #[test]
    fn flags_and_escape() {
        let re = compile("^b", true, true).unwrap();
        assert!(re.is_match("a\nB"));
        assert_eq!(escape("a.b*c d"), r"a\.b\*c\ d");
    }
}
