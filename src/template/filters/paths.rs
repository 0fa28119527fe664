//! Filters on POSIX paths: `basename`, `dirname`, `splitext`, `path_join` (Python's `os.path` semantics).
//!
//! Pure string work on `/`-separated paths: it must not touch the file system.

use minijinja::{Error, State, Value};

use super::{require, text};

/// `os.path.basename`.
pub(super) fn basename(state: &State, v: &Value) -> Result<String, Error> {
    let s = text(state, v)?;
    Ok(s.rsplit('/').next().unwrap_or("").to_string())
}

/// `os.path.dirname` (trailing slashes of the head stripped unless it is all slashes).
pub(super) fn dirname(state: &State, v: &Value) -> Result<String, Error> {
    let s = text(state, v)?;
    let head = match s.rfind('/') {
        Some(i) => &s[..=i],
        None => "",
    };
    let trimmed = head.trim_end_matches('/');
    Ok(if trimmed.is_empty() {
        head.to_string()
    } else {
        trimmed.to_string()
    })
}

/// `os.path.splitext` as a two-item list.
pub(super) fn splitext(state: &State, v: &Value) -> Result<Value, Error> {
    let s = text(state, v)?;
    let base_start = s.rfind('/').map(|i| i + 1).unwrap_or(0);
    let base = &s[base_start..];
    let lead_dots = base.len() - base.trim_start_matches('.').len();
    let (root, ext) = match base.rfind('.') {
        Some(i) if i >= lead_dots => (&s[..base_start + i], &s[base_start + i..]),
        _ => (s.as_str(), ""),
    };
    Ok(Value::from(vec![Value::from(root), Value::from(ext)]))
}

/// `path_join`: `os.path.join` of a list (or a single string).
pub(super) fn path_join(state: &State, v: &Value) -> Result<String, Error> {
    require(state, v)?;
    if let Some(s) = v.as_str() {
        return Ok(s.to_string());
    }
    let mut out = String::new();
    for p in v.try_iter()? {
        let p = text(state, &p)?;
        if p.starts_with('/') || out.is_empty() {
            out = p;
        } else {
            if !out.ends_with('/') {
                out.push('/');
            }
            out.push_str(&p);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::template::filters::testing::r;

    // Expected values below were produced by ansible-core 2.19.14 from the same expressions.

    #[test]
    fn paths_like_os_path() {
        assert_eq!(
            r("{{ '/etc/aziot/config.toml' | basename }}|{{ '/etc/aziot/config.toml' | dirname }}|{{ '/etc/aziot/' | basename }}|{{ '/etc/aziot/' | dirname }}|{{ 'file' | dirname }}|{{ '/' | dirname }}|{{ 'a/b.tar.gz' | splitext }}|{{ '.bashrc' | splitext }}|{{ 'x' | splitext }}"),
            "config.toml|/etc/aziot||/etc/aziot||/|['a/b.tar', '.gz']|['.bashrc', '']|['x', '']"
        );
        assert_eq!(
            r("{{ ['/etc', 'aziot', 'config.toml'] | path_join }}|{{ ['a', '/b'] | path_join }}"),
            "/etc/aziot/config.toml|/b"
        );
    }
}
