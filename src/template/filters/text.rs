//! Text filters: `comment` (ansible-core's styles and options), `wordcount` (Jinja2's `\w+` count) and
//! `urlsplit` (Python's `urllib.parse.urlsplit`, whole or one component).
//!
//! Owns only these; errors name the filter and the option, never the value.

use minijinja::value::Kwargs;
use minijinja::{Error, State, Value};
use serde_json::{json, Map, Value as J};

use super::{err, from_j, text};

/// `comment(style='plain', **kw)`.
pub(super) fn comment(
    state: &State,
    v: &Value,
    style: Option<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let text = text(state, v)?;
    let style = style.unwrap_or_else(|| "plain".into());
    let (beginning, decoration, end) = match style.as_str() {
        "plain" => ("", "# ", ""),
        "erlang" => ("", "% ", ""),
        "c" => ("", "// ", ""),
        "cblock" => ("/*", " * ", " */"),
        "xml" => ("<!--", " - ", "-->"),
        other => {
            return Err(err(format!(
                "comment: invalid style {other:?}; available styles: plain, erlang, c, cblock, xml"
            )))
        }
    };
    let get = |k: &str, d: &str| -> Result<String, Error> {
        Ok(kwargs
            .get::<Option<Value>>(k)?
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .unwrap_or_else(|| d.to_string()))
    };
    let prepostfix = get("decoration", decoration)?;
    let newline = get("newline", "\n")?;
    let beginning = get("beginning", beginning)?;
    let prefix = get("prefix", prepostfix.trim_end())?;
    let postfix = get("postfix", prepostfix.trim_end())?;
    let decoration = get("decoration", decoration)?;
    let end = get("end", end)?;
    let count = |k: &str| -> Result<usize, Error> {
        Ok(kwargs.get::<Option<i64>>(k)?.unwrap_or(1).max(0) as usize)
    };
    let (prefix_count, postfix_count) = (count("prefix_count")?, count("postfix_count")?);
    kwargs.assert_all_used()?;
    let mut out = String::new();
    if !beginning.is_empty() {
        out.push_str(&beginning);
        out.push_str(&newline);
    }
    if !prefix.is_empty() {
        let one = if prefix != newline {
            format!("{prefix}{newline}")
        } else {
            newline.clone()
        };
        out.push_str(&one.repeat(prefix_count));
    }
    let body = format!(
        "{decoration}{}",
        text.replace(&newline, &format!("{newline}{decoration}"))
    )
    .replace(
        &format!("{decoration}{newline}"),
        &format!("{}{newline}", decoration.trim_end()),
    );
    out.push_str(&body);
    for _ in 0..postfix_count {
        out.push_str(&newline);
        out.push_str(&postfix);
    }
    if !end.is_empty() {
        out.push_str(&newline);
        out.push_str(&end);
    }
    Ok(Value::from(out))
}

/// `wordcount`: runs of word characters (Jinja2's `\w+`).
pub(super) fn wordcount(state: &State, v: &Value) -> Result<Value, Error> {
    let s = text(state, v)?;
    let mut n = 0;
    let mut in_word = false;
    for c in s.chars() {
        let w = c.is_alphanumeric() || c == '_';
        if w && !in_word {
            n += 1;
        }
        in_word = w;
    }
    Ok(Value::from(n))
}

/// `urlsplit(query='')`.
pub(super) fn urlsplit(state: &State, v: &Value, query: Option<String>) -> Result<Value, Error> {
    let url = text(state, v)?;
    let parts = split_url(&url)?;
    match query.filter(|q| !q.is_empty()) {
        None => Ok(from_j(&J::Object(parts))),
        Some(q) => parts
            .get(&q)
            .map(from_j)
            .ok_or_else(|| err(format!("urlsplit: unknown URL component: {q}"))),
    }
}

/// Python's `urlsplit` as the dict Ansible returns (keys sorted like `dir()`).
fn split_url(url: &str) -> Result<Map<String, J>, Error> {
    let mut rest = url;
    let mut scheme = String::new();
    if let Some(i) = rest.find(':') {
        let cand = &rest[..i];
        if !cand.is_empty()
            && cand.starts_with(|c: char| c.is_ascii_alphabetic())
            && cand
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            scheme = cand.to_ascii_lowercase();
            rest = &rest[i + 1..];
        }
    }
    let mut netloc = "";
    if let Some(r) = rest.strip_prefix("//") {
        let end = r.find(['/', '?', '#']).unwrap_or(r.len());
        netloc = &r[..end];
        rest = &r[end..];
    }
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (userinfo, hostport) = match netloc.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, netloc),
    };
    let (username, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((a, b)) => (json!(a), json!(b)),
            None => (json!(u), J::Null),
        },
        None => (J::Null, J::Null),
    };
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        match h.split_once(']') {
            Some((h6, p)) => (h6.to_string(), p.strip_prefix(':').unwrap_or("")),
            None => return Err(err("urlsplit: invalid IPv6 URL")),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (hostport.to_string(), ""),
        }
    };
    let port = if port.is_empty() {
        J::Null
    } else {
        match port.parse::<u16>() {
            Ok(p) => json!(p),
            Err(_) => return Err(err("urlsplit: the port is not a number in 0-65535")),
        }
    };
    let hostname = if host.is_empty() {
        J::Null
    } else {
        json!(host.to_lowercase())
    };
    let mut m = Map::new();
    m.insert("fragment".into(), json!(fragment));
    m.insert("hostname".into(), hostname);
    m.insert("netloc".into(), json!(netloc));
    m.insert("password".into(), password);
    m.insert("path".into(), json!(path));
    m.insert("port".into(), port);
    m.insert("query".into(), json!(query));
    m.insert("scheme".into(), json!(scheme));
    m.insert("username".into(), username);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::super::testing::r;

    /// Expected values from ansible-core 2.19.
    #[test]
    fn like_ansible() {
        assert_eq!(r("{{ 'a\nb' | comment }}"), "#\n# a\n# b\n#");
        assert_eq!(r("{{ 'a' | comment('cblock') }}"), "/*\n *\n * a\n *\n */");
        assert_eq!(r("{{ 'one two_3  x-y' | wordcount }}"), "4");
        assert_eq!(
            r("{{ 'https://u:p@Host.example:8443/p?q=1#f' | urlsplit('hostname') }} {{ 'https://h/x' | urlsplit('port') }}"),
            "host.example "
        );
        assert_eq!(r("{{ 'http://h:81/x' | urlsplit('port') + 1 }}"), "82");
    }
}
