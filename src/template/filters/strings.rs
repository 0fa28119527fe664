//! Filters on text: the regex family (`regex_replace`, `regex_search`, `regex_findall`, `regex_escape`) and
//! `quote`.
//!
//! Owns the filters' arguments (flags, counts, group references) and [`shell_quote`] (Python's `shlex.quote`);
//! the regex dialect itself is [`crate::template::pyre`]'s. Errors name the filter and the pattern problem, never
//! the input text. It must not compile patterns any other way than through `pyre`.

use minijinja::value::{Kwargs, Rest};
use minijinja::{Error, State, Value};

use super::{err, require, text};
use crate::template::pyre;

fn flag(kwargs: &Kwargs, name: &str) -> Result<bool, Error> {
    Ok(kwargs
        .get::<Option<Value>>(name)?
        .is_some_and(|v| v.is_true()))
}

/// `regex_replace(pattern, replacement='', ignorecase=False, multiline=False, count=0, mandatory_count=0)`.
/// Ansible docs: `'ansible' | regex_replace('^a.*i(.*)$', 'a\\1')` -> `able`.
pub(super) fn regex_replace(
    state: &State,
    v: &Value,
    pattern: Option<String>,
    replacement: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let pattern = pattern.unwrap_or_default();
    let replacement = match replacement {
        Some(r) => r,
        None => kwargs
            .get::<Option<String>>("replacement")?
            .unwrap_or_default(),
    };
    let ignorecase = flag(&kwargs, "ignorecase")?;
    let multiline = flag(&kwargs, "multiline")?;
    let count = kwargs.get::<Option<usize>>("count")?.unwrap_or(0);
    let mandatory_count = kwargs.get::<Option<usize>>("mandatory_count")?.unwrap_or(0);
    kwargs.assert_all_used()?;
    let s = text(state, v)?;
    let re = pyre::compile(&pattern, ignorecase, multiline)
        .map_err(|m| err(format!("regex_replace: {m}")))?;
    let parts = pyre::parse_replacement(&replacement, &re)
        .map_err(|m| err(format!("regex_replace: {m}")))?;
    let (out, n) = pyre::subn(&re, &parts, &s, count);
    if mandatory_count != 0 && mandatory_count != n {
        return Err(err(format!(
            "regex_replace: the pattern should match {mandatory_count} times, but matches {n} times"
        )));
    }
    Ok(out)
}

/// `regex_search(regex, *groups, ignorecase=False, multiline=False)`: the match, the listed groups
/// (`'\\1'`, `'\\g<name>'`) as a list, or none when nothing matches.
pub(super) fn regex_search(
    state: &State,
    v: &Value,
    regex: String,
    args: Rest<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let ignorecase = flag(&kwargs, "ignorecase")?;
    let multiline = flag(&kwargs, "multiline")?;
    kwargs.assert_all_used()?;
    enum G {
        I(usize),
        N(String),
    }
    let mut groups = Vec::new();
    for a in args.iter() {
        if let Some(rest) = a.strip_prefix("\\g<") {
            let name = rest.split('>').next().unwrap_or("").to_string();
            groups.push(match name.parse::<usize>() {
                Ok(i) => G::I(i),
                Err(_) => G::N(name),
            });
        } else if let Some(rest) = a.strip_prefix('\\') {
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            groups.push(G::I(digits.parse().map_err(|_| {
                err("regex_search: group arguments look like '\\1' or '\\g<name>'")
            })?));
        } else {
            return Err(err(
                "regex_search: group arguments look like '\\1' or '\\g<name>'",
            ));
        }
    }
    let s = text(state, v)?;
    let re = pyre::compile(&regex, ignorecase, multiline)
        .map_err(|m| err(format!("regex_search: {m}")))?;
    let Some(caps) = re.captures(&s) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(caps.get(0).map(|m| m.as_str()).unwrap_or("")));
    }
    let mut out = Vec::new();
    for g in groups {
        let m = match &g {
            G::I(i) if *i < re.captures_len() => caps.get(*i),
            G::N(n) if re.capture_names().flatten().any(|x| x == n) => caps.name(n),
            G::I(i) => return Err(err(format!("regex_search: the pattern has no group {i}"))),
            G::N(n) => {
                return Err(err(format!(
                    "regex_search: the pattern has no group named {n:?}"
                )))
            }
        };
        out.push(
            m.map(|m| Value::from(m.as_str()))
                .unwrap_or(Value::from(())),
        );
    }
    Ok(Value::from(out))
}

/// `regex_findall(regex, multiline=False, ignorecase=False)`: Python's `re.findall` shape.
pub(super) fn regex_findall(
    state: &State,
    v: &Value,
    regex: String,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let ignorecase = flag(&kwargs, "ignorecase")?;
    let multiline = flag(&kwargs, "multiline")?;
    kwargs.assert_all_used()?;
    let s = text(state, v)?;
    let re = pyre::compile(&regex, ignorecase, multiline)
        .map_err(|m| err(format!("regex_findall: {m}")))?;
    let ngroups = re.captures_len() - 1;
    let out: Vec<Value> = pyre::py_captures(&re, &s)
        .into_iter()
        .map(|c| {
            let g = |i: usize| Value::from(c.get(i).map(|m| m.as_str()).unwrap_or(""));
            match ngroups {
                0 => g(0),
                1 => g(1),
                n => Value::from((1..=n).map(g).collect::<Vec<_>>()),
            }
        })
        .collect();
    Ok(Value::from(out))
}

/// `regex_escape(re_type='python')`.
pub(super) fn regex_escape(
    state: &State,
    v: &Value,
    re_type: Option<String>,
) -> Result<String, Error> {
    let s = text(state, v)?;
    match re_type.as_deref().unwrap_or("python") {
        "python" => Ok(pyre::escape(&s)),
        "posix_basic" => Ok(s
            .chars()
            .flat_map(|c| {
                let esc = matches!(c, ']' | '.' | '[' | '^' | '$' | '*' | '\\');
                esc.then_some('\\').into_iter().chain(std::iter::once(c))
            })
            .collect()),
        other => Err(err(format!(
            "regex_escape: regex type {other:?} is not supported"
        ))),
    }
}

/// Python's `shlex.quote` (None quotes as `''`).
pub fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    let safe = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

pub(super) fn quote(state: &State, v: &Value) -> Result<String, Error> {
    require(state, v)?;
    if v.is_none() {
        return Ok("''".into());
    }
    Ok(shell_quote(&text(state, v)?))
}

#[cfg(test)]
mod tests {
    use crate::template::filters::testing::{e, r};

    // Expected values below were produced by ansible-core 2.19.14 from the same expressions.

    #[test]
    fn regex_filters() {
        // Ansible docs examples (as written in YAML double quotes, i.e. one backslash reaches Jinja).
        assert_eq!(
            r(r"{{ 'ansible' | regex_replace('^a.*i(.*)$', 'a\1') }}"),
            "able"
        );
        assert_eq!(
            r(r"{{ 'foobar' | regex_replace('^f.*o(.*)$', '\1') }}"),
            "bar"
        );
        assert_eq!(
            r(
                r"{{ 'localhost:80' | regex_replace('^(?P<host>.+):(?P<port>\d+)$', '\g<host>, \g<port>') }}"
            ),
            "localhost, 80"
        );
        assert_eq!(
            r("{{ 'ABC' | regex_replace('b', 'x', ignorecase=true) }}"),
            "AxC"
        );
        assert_eq!(r("{{ 'aaa' | regex_replace('a', 'b', count=2) }}"), "bba");
        assert!(
            e("{{ 'aaa' | regex_replace('a', 'b', mandatory_count=2) }}")
                .contains("should match 2 times, but matches 3")
        );
        assert_eq!(
            r("{{ 'server1/database42' | regex_search('database[0-9]+') }}"),
            "database42"
        );
        assert_eq!(
            r("{{ 'ansible' | regex_search('foobar') is none }}"),
            "True"
        );
        assert_eq!(
            r(
                r"{{ 'server1/database42' | regex_search('server([0-9]+)/database([0-9]+)', '\1', '\2') }}"
            ),
            "['1', '42']"
        );
        assert_eq!(
            r(r"{{ 'ab' | regex_search('(?P<x>b)', '\g<x>') }}"),
            "['b']"
        );
        assert_eq!(
            r(
                "{{ text | regex_findall('^.ar$', multiline=True, ignorecase=True) }}"
                    .replace("text", "'CAR\ntar\nfoo\nbar\n'")
                    .as_str()
            ),
            "['CAR', 'tar', 'bar']"
        );
        assert_eq!(r("{{ 'a1b22' | regex_findall('[0-9]+') }}|{{ 'a1b2' | regex_findall('([a-z])([0-9])') }}"), "['1', '22']|[['a', '1'], ['b', '2']]");
        assert_eq!(r("{{ '1.2*' | regex_escape }}"), r"1\.2\*");
        assert!(e("{{ 'x' | regex_replace('(a)\\1', '') }}").contains("backreference"));
    }

    #[test]
    fn quote_like_shlex() {
        assert_eq!(
            r(
                r#"{{ 'a b' | quote }}|{{ "it's" | quote }}|{{ 'abc' | quote }}|{{ '' | quote }}|{{ 'a@b%+=:,./-_' | quote }}|{{ 5 | quote }}|{{ none | quote }}"#
            ),
            r#"'a b'|'it'"'"'s'|abc|''|a@b%+=:,./-_|5|''"#
        );
    }
}
