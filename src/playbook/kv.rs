//! Ansible's free-form `key=value` arguments (`copy: src=a dest="/x y"`), read exactly as ansible-core's
//! `parse_kv`/`split_args` read them.
//!
//! Owns: splitting at spaces while keeping quoted runs and `{{ }}`/`{% %}`/`{# #}` blocks together, decoding
//! the escapes Ansible decodes in every word (`\n`, `\t`, `\\`, `\"`, `\'`, `\a\b\f\r\v`, `\xHH`, `\uHHHH`,
//! `\UHHHHHHHH`; not `\N{name}`, which is refused), splitting each word at its first unescaped `=` and removing
//! one pair of matching outer quotes from the value. Quotes inside a word stay as written (`a=x"y"` is `x"y"`),
//! as in Ansible. It must not evaluate templates.

use serde_json::{Map, Value};

use super::values::is_identifier;

/// Parse Ansible's free-form `key=value key2="quoted value"` arguments.
pub fn parse_kv(s: &str) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for orig in split_args(s)? {
        let word = decode_escapes(&orig)?;
        let Some(pos) = unescaped_eq(&word) else {
            return Err(format!("expected key=value arguments, found `{orig}`"));
        };
        let k = word[..pos].trim();
        if !is_identifier(k) {
            return Err(format!("`{k}` is not a valid argument name"));
        }
        out.insert(
            k.to_string(),
            Value::String(unquote(word[pos + 1..].trim()).to_string()),
        );
    }
    Ok(out)
}

/// The first `=` after the first character that is not preceded by a backslash (Ansible's search).
fn unescaped_eq(w: &str) -> Option<usize> {
    let b = w.as_bytes();
    (1..b.len()).find(|&i| b[i] == b'=' && b[i - 1] != b'\\')
}

/// One pair of matching outer quotes removed (unless the closing one is escaped).
fn unquote(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() > 1
        && b[0] == b[b.len() - 1]
        && (b[0] == b'"' || b[0] == b'\'')
        && b[b.len() - 2] != b'\\'
    {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// Ansible's `_decode_escapes`: the Python escapes it recognizes, decoded; any other backslash stays.
fn decode_escapes(s: &str) -> Result<String, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' || i + 1 >= chars.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let single = match chars[i + 1] {
            '\\' => Some('\\'),
            '\'' => Some('\''),
            '"' => Some('"'),
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            _ => None,
        };
        if let Some(d) = single {
            out.push(d);
            i += 2;
            continue;
        }
        let digits = match chars[i + 1] {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            'N' if chars.get(i + 2) == Some(&'{') => {
                return Err(format!(
                "`{s}`: named escapes (\\N{{...}}) are not supported; write the character itself"
            ))
            }
            _ => 0,
        };
        let hex: String = chars.iter().skip(i + 2).take(digits).collect();
        if digits > 0 && hex.len() == digits && hex.chars().all(|h| h.is_ascii_hexdigit()) {
            let code = u32::from_str_radix(&hex, 16).map_err(|e| e.to_string())?;
            let Some(d) = char::from_u32(code) else {
                return Err(format!(
                    "`{s}`: \\{}{hex} is not a valid character",
                    chars[i + 1]
                ));
            };
            out.push(d);
            i += 2 + digits;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

/// The quote left open at the end of `token`, given the one open before it (Ansible's `_get_quote_state`).
fn quote_state(token: &str, mut quote: Option<char>) -> Option<char> {
    let mut prev = None;
    for c in token.chars() {
        if (c == '"' || c == '\'') && prev != Some('\\') {
            match quote {
                Some(q) if q == c => quote = None,
                Some(_) => {}
                None => quote = Some(c),
            }
        }
        prev = Some(c);
    }
    quote
}

/// The new depth of one kind of Jinja block after `token`.
fn block_depth(token: &str, depth: usize, open: &str, close: &str) -> usize {
    let (o, c) = (token.matches(open).count(), token.matches(close).count());
    (depth + o).saturating_sub(c)
}

/// Ansible's `split_args`: words at spaces, with quoted runs and Jinja blocks kept whole (spacing inside them
/// kept as written) and newlines kept at the end of the word before them.
fn split_args(args: &str) -> Result<Vec<String>, String> {
    let mut params: Vec<String> = Vec::new();
    if args.is_empty() {
        return Ok(params);
    }
    let lines: Vec<&str> = args.split('\n').collect();
    let (mut quote, mut print, mut block, mut comment) = (None, 0usize, 0usize, 0usize);
    for (li, line) in lines.iter().enumerate() {
        let mut continuation = false;
        for (idx, token) in line.split(' ').enumerate() {
            if token.is_empty() && idx != 0 {
                match params.last_mut() {
                    Some(p) => p.push(' '),
                    None => params.push(" ".into()),
                }
                continue;
            }
            let was_inside = quote.is_some();
            if token == "\\" && !was_inside {
                continuation = true;
                continue;
            }
            quote = quote_state(token, quote);
            let inside = quote.is_some();
            let in_block = print > 0 || block > 0 || comment > 0;
            let mut appended = false;
            if inside && !was_inside && !in_block {
                params.push(token.to_string());
                appended = true;
            } else if in_block || inside || was_inside {
                match params.last_mut() {
                    Some(p) => {
                        if idx > 0 {
                            p.push(' ');
                        }
                        p.push_str(token);
                    }
                    None => params.push(token.to_string()),
                }
                appended = true;
            }
            for (depth, open, close) in [
                (&mut print, "{{", "}}"),
                (&mut block, "{%", "%}"),
                (&mut comment, "{#", "#}"),
            ] {
                let before = *depth;
                *depth = block_depth(token, *depth, open, close);
                if *depth != before && !appended {
                    params.push(token.to_string());
                    appended = true;
                }
            }
            if print == 0 && block == 0 && comment == 0 && !inside && !appended && !token.is_empty()
            {
                params.push(token.to_string());
            }
        }
        if lines.len() > 1 && li != lines.len() - 1 && !continuation {
            match params.last_mut() {
                Some(p) => p.push('\n'),
                None => params.push("\n".into()),
            }
        }
    }
    if print > 0 || block > 0 || comment > 0 || quote.is_some() {
        return Err(format!(
            "unbalanced quotes or Jinja block in `{args}`; close every quote, {{{{ }}}} and {{% %}}"
        ));
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_parsing_as_the_template_work_expected() {
        let m = parse_kv("src=a.txt dest='/tmp/x y' mode=0644 msg=\"{{ a b }}\"").unwrap();
        assert_eq!(m["dest"], "/tmp/x y");
        assert_eq!(m["mode"], "0644");
        assert_eq!(m["msg"], "{{ a b }}");
        assert!(parse_kv("justaword").is_err());
        // Ansible decodes escapes and keeps what is inside templates together.
        let m =
            parse_kv(r#"content="{{ n }}\n" path=C:\\x re='a\.b' msg={{ a | b('x y') }}"#).unwrap();
        assert_eq!(m["content"], "{{ n }}\n");
        assert_eq!(m["path"], "C:\\x");
        assert_eq!(m["re"], "a\\.b");
        assert_eq!(m["msg"], "{{ a | b('x y') }}");
        assert!(parse_kv("a='open").is_err());
    }

    #[test]
    fn kv_parsing() {
        let m = parse_kv("src=a.txt dest='/tmp/x y' mode=0644 msg=\"{{ a b }}\"").unwrap();
        assert_eq!(m["src"], "a.txt");
        assert_eq!(m["dest"], "/tmp/x y");
        assert_eq!(m["mode"], "0644");
        assert_eq!(m["msg"], "{{ a b }}");
        assert!(parse_kv("justaword").is_err());
        assert!(parse_kv("a='open").is_err());
        assert!(parse_kv("a={{ open").is_err());
    }

    #[test]
    fn escapes_are_decoded_as_ansible_does() {
        let m = parse_kv(r#"content="a\nb\tc\\d\x41\u00e9" other=x\qy"#).unwrap();
        assert_eq!(m["content"], "a\nb\tc\\dAé");
        assert_eq!(m["other"], "x\\qy");
        let m = parse_kv(r#"msg="say \"hi\"" dest=/tmp/x"#).unwrap();
        assert_eq!(m["msg"], "say \"hi\"");
        assert_eq!(m["dest"], "/tmp/x");
        assert!(parse_kv(r"a=\N{BULLET}").is_err());
    }

    #[test]
    fn words_keep_templates_and_inner_quotes() {
        let m = parse_kv("dest={{ root }}/f content={{ 'a b' | upper }} x=a\"b c\"").unwrap();
        assert_eq!(m["dest"], "{{ root }}/f");
        assert_eq!(m["content"], "{{ 'a b' | upper }}");
        assert_eq!(m["x"], "a\"b c\"");
    }

    #[test]
    fn spacing_inside_quotes_is_kept() {
        let m = parse_kv("a='x  y' b=1").unwrap();
        assert_eq!(m["a"], "x  y");
        assert_eq!(m["b"], "1");
    }
}
