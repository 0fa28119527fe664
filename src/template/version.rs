//! Version comparison for the `version` / `version_compare` test, as Ansible does it.
//!
//! Owns the three version schemes Ansible offers: `loose` (distutils' LooseVersion, the default: numbers and
//! lowercase words compared in order; comparing a number with a word is an error, as in Python), `strict`
//! (StrictVersion: `N.N[.N][{a|b}N]`) and `semver`/`semantic` (SemVer 2.0 precedence; build metadata ignored).
//! `pep440` needs Python's `packaging` and is refused with a clear message. Errors never quote the versions
//! (they may come from variables). It knows nothing about templates.

use std::cmp::Ordering;

/// Compare `value` with `version` using `operator` (`lt`/`<`, `le`/`<=`, `gt`/`>`, `ge`/`>=`, `eq`/`==`/`=`,
/// `ne`/`!=`/`<>`) and the scheme `version_type` (`loose`, `strict`, `semver`/`semantic`).
pub fn compare(
    value: &str,
    version: &str,
    operator: &str,
    version_type: &str,
) -> Result<bool, String> {
    if value.is_empty() {
        return Err("Input version value cannot be empty".into());
    }
    if version.is_empty() {
        return Err("Version parameter to compare against cannot be empty".into());
    }
    let op = match operator {
        "==" | "=" | "eq" => "eq",
        "<" | "lt" => "lt",
        "<=" | "le" => "le",
        ">" | "gt" => "gt",
        ">=" | "ge" => "ge",
        "!=" | "<>" | "ne" => "ne",
        other => return Err(format!("Invalid operator type ({other})")),
    };
    let ord = match version_type {
        "loose" => loose_cmp(value, version)?,
        "strict" => strict(value)?.cmp(&strict(version)?),
        "semver" | "semantic" => semver_cmp(&semver(value)?, &semver(version)?),
        "pep440" => {
            return Err(
                "version_type 'pep440' is not supported (it needs Python's packaging)".into(),
            )
        }
        other => {
            return Err(format!(
                "Invalid version type ({other}). Must be one of loose, strict, semver, semantic"
            ))
        }
    };
    Ok(match op {
        "eq" => ord == Ordering::Equal,
        "ne" => ord != Ordering::Equal,
        "lt" => ord == Ordering::Less,
        "le" => ord != Ordering::Greater,
        "gt" => ord == Ordering::Greater,
        _ => ord != Ordering::Less,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Num(u128),
    Word(String),
}

/// LooseVersion's components: runs of digits, runs of lowercase letters, and anything else between them; dots
/// dropped.
fn loose_parts(s: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut other = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let flush = |other: &mut String, parts: &mut Vec<Part>| {
        if !other.is_empty() {
            parts.push(Part::Word(std::mem::take(other)));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            flush(&mut other, &mut parts);
            let st = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let digits: String = chars[st..i].iter().collect();
            parts.push(match digits.parse() {
                Ok(n) => Part::Num(n),
                Err(_) => Part::Word(digits),
            });
        } else if c.is_ascii_lowercase() {
            flush(&mut other, &mut parts);
            let st = i;
            while i < chars.len() && chars[i].is_ascii_lowercase() {
                i += 1;
            }
            parts.push(Part::Word(chars[st..i].iter().collect()));
        } else if c == '.' {
            flush(&mut other, &mut parts);
            i += 1;
        } else {
            other.push(c);
            i += 1;
        }
    }
    flush(&mut other, &mut parts);
    parts
}

fn loose_cmp(a: &str, b: &str) -> Result<Ordering, String> {
    let (pa, pb) = (loose_parts(a), loose_parts(b));
    for (x, y) in pa.iter().zip(pb.iter()) {
        let o = match (x, y) {
            (Part::Num(x), Part::Num(y)) => x.cmp(y),
            (Part::Word(x), Part::Word(y)) => x.cmp(y),
            _ => {
                return Err("Version comparison failed: cannot compare a number with a word in the two versions \
                     (use version_type='semver' or 'strict', or make both versions alike)"
                    .into())
            }
        };
        if o != Ordering::Equal {
            return Ok(o);
        }
    }
    Ok(pa.len().cmp(&pb.len()))
}

/// StrictVersion: (major, minor, patch, prerelease) where no prerelease sorts after any prerelease.
/// (major, minor, patch, (has-no-prerelease, a|b, prerelease number)).
type StrictKey = (u64, u64, u64, (u8, char, u64));

fn strict(s: &str) -> Result<StrictKey, String> {
    let bad = || {
        "invalid version number for version_type='strict' (expected N.N[.N][{a|b}N])".to_string()
    };
    let (nums, pre) = match s.find(['a', 'b']) {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s, None),
    };
    let fields: Vec<&str> = nums.split('.').collect();
    if !(2..=3).contains(&fields.len()) {
        return Err(bad());
    }
    let num = |f: &str| -> Result<u64, String> {
        if f.is_empty() || !f.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        f.parse().map_err(|_| bad())
    };
    let major = num(fields[0])?;
    let minor = num(fields[1])?;
    let patch = if fields.len() == 3 {
        num(fields[2])?
    } else {
        0
    };
    let pre = match pre {
        None => (1, ' ', 0),
        Some(p) => {
            let kind = p.chars().next().unwrap_or('a');
            (0, kind, num(&p[1..])?)
        }
    };
    Ok((major, minor, patch, pre))
}

#[derive(Debug)]
struct SemVer {
    core: (u64, u64, u64),
    pre: Vec<Part>,
}

fn semver(s: &str) -> Result<SemVer, String> {
    let bad = || "invalid semantic version (expected MAJOR.MINOR.PATCH[-pre][+build])".to_string();
    let no_build = s.split_once('+').map(|(a, b)| {
        if b.is_empty()
            || b.split('.')
                .any(|x| x.is_empty() || !x.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            Err(bad())
        } else {
            Ok(a)
        }
    });
    let s2 = match no_build {
        Some(r) => r?,
        None => s,
    };
    let (core, pre) = match s2.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (s2, None),
    };
    let f: Vec<&str> = core.split('.').collect();
    if f.len() != 3 {
        return Err(bad());
    }
    let num = |x: &str| -> Result<u64, String> {
        if x.is_empty()
            || !x.bytes().all(|c| c.is_ascii_digit())
            || (x.len() > 1 && x.starts_with('0'))
        {
            return Err(bad());
        }
        x.parse().map_err(|_| bad())
    };
    let core = (num(f[0])?, num(f[1])?, num(f[2])?);
    let mut parts = Vec::new();
    if let Some(p) = pre {
        for id in p.split('.') {
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(bad());
            }
            if id.bytes().all(|c| c.is_ascii_digit()) {
                if id.len() > 1 && id.starts_with('0') {
                    return Err(bad());
                }
                parts.push(Part::Num(id.parse().map_err(|_| bad())?));
            } else {
                parts.push(Part::Word(id.to_string()));
            }
        }
    }
    Ok(SemVer { core, pre: parts })
}

fn semver_cmp(a: &SemVer, b: &SemVer) -> Ordering {
    a.core
        .cmp(&b.core)
        .then_with(|| match (a.pre.is_empty(), b.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => {
                for (x, y) in a.pre.iter().zip(b.pre.iter()) {
                    let o = match (x, y) {
                        (Part::Num(x), Part::Num(y)) => x.cmp(y),
                        (Part::Num(_), Part::Word(_)) => Ordering::Less,
                        (Part::Word(_), Part::Num(_)) => Ordering::Greater,
                        (Part::Word(x), Part::Word(y)) => x.cmp(y),
                    };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                a.pre.len().cmp(&b.pre.len())
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(a: &str, b: &str, op: &str, t: &str) -> bool {
        compare(a, b, op, t).unwrap()
    }

    #[test]
    fn loose_like_ansible() {
        // Results checked with ansible-core 2.19 (`x is version(y, op)`).
        assert!(c("1.5.0", "1.5.0", ">=", "loose"));
        assert!(c("1.10", "1.9", ">", "loose"));
        assert!(!c("1.5.0", "1.5", "eq", "loose"));
        assert!(c("1.2.3", "1.2.3", "eq", "loose"));
        assert!(c("2.0", "1.0", "ne", "loose"));
        assert!(!c("1.5.0-rc1", "1.5.0", "lt", "loose"));
        assert!(c("1.5.0a", "1.5.0", "gt", "loose"));
        assert!(c("1.5.0~rc1", "1.5.0", "gt", "loose"));
        assert!(compare("v1.5", "1.5", "eq", "loose")
            .unwrap_err()
            .contains("cannot compare"));
    }

    #[test]
    fn strict_and_semver() {
        assert!(c("1.5.0", "1.5", "==", "strict"));
        assert!(c("1.5a1", "1.5", "<", "strict"));
        assert!(c("1.5b1", "1.5a2", ">", "strict"));
        assert!(compare("1.5.0-rc1", "1.5", "<", "strict").is_err());
        // semver.org precedence example: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta
        // < 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0.
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for w in chain.windows(2) {
            assert!(c(w[0], w[1], "lt", "semver"), "{} < {}", w[0], w[1]);
        }
        assert!(c("1.0.0+build.5", "1.0.0", "eq", "semantic"));
        assert!(compare("1.0", "1.0.0", "eq", "semver")
            .unwrap_err()
            .contains("invalid semantic version"));
        assert!(compare("1.0.0", "1.0.0", "~", "semver").is_err());
        assert!(compare("", "1.0.0", "eq", "loose").is_err());
    }
}
