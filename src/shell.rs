//! Shell words: quoting for POSIX sh, and splitting a command line into words.
//!
//! Owns the two string functions every layer that builds or reads a command line shares: [`quote`] (everything
//! interpolated into a remote shell goes through it, via `transport::Cmd`) and [`split_words`] (free-form task
//! arguments and `command:` lines). Pure functions; it imports nothing of ours.

/// Quote a string for POSIX sh: plain words stay as they are, everything else is single-quoted.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'/' | b'.' | b'_' | b'-' | b'=' | b':' | b',' | b'+' | b'@' | b'%'
                )
        })
    {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Split like a shell: whitespace separates, quotes group (and are removed), a backslash outside quotes escapes
/// the next character, `{{ }}` groups.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            } else if c == '\\' && q == '"' && i + 1 < chars.len() {
                i += 1;
                cur.push(chars[i]);
            } else {
                cur.push(c);
            }
        } else if c == '{' && chars.get(i + 1) == Some(&'{') {
            depth += 1;
            cur.push_str("{{");
            in_word = true;
            i += 1;
        } else if c == '}' && chars.get(i + 1) == Some(&'}') && depth > 0 {
            depth -= 1;
            cur.push_str("}}");
            i += 1;
        } else if depth > 0 {
            cur.push(c);
        } else if c == '"' || c == '\'' {
            quote = Some(c);
            in_word = true;
        } else if c == '\\' && i + 1 < chars.len() {
            // Outside quotes a backslash takes the next character literally (POSIX sh, Python's shlex that
            // Ansible's `command` uses): `'it'\''s'`, which `quote` writes, is the one word `it's`.
            i += 1;
            cur.push(chars[i]);
            in_word = true;
        } else if c.is_whitespace() {
            if in_word {
                words.push(std::mem::take(&mut cur));
                in_word = false;
            }
        } else {
            cur.push(c);
            in_word = true;
        }
        i += 1;
    }
    if quote.is_some() {
        return Err("unbalanced quotes".into());
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(
            split_words("echo {{ x | default('a b') }} 'c d'").unwrap(),
            vec!["echo", "{{ x | default('a b') }}", "c d"]
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("plain/path-1.txt"), "plain/path-1.txt");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("$(x)"), "'$(x)'");
    }

    #[test]
    fn a_quoted_word_splits_back_to_itself() {
        // Found by tests/it/fuzz/shell.rs: the quote of `'` did not split back (unbalanced quotes).
        for w in ["'", "it's", "a\\b", "\\'", "x y"] {
            assert_eq!(split_words(&quote(w)).unwrap(), [w]);
        }
        assert_eq!(split_words(r"a\ b c\\d").unwrap(), ["a b", "c\\d"]);
    }
}
