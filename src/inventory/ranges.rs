//! Host entries: `host:port` addresses and `[a:b(:step)]` ranges, exactly as Ansible expands them.
//!
//! Owns Ansible's `parse_address` (hostname / IPv4 / IPv6 with optional port and ranges) and
//! `expand_hostname_range` (`edge-[01:50]`, `edge-[a:f]`, `[01:50:2]`, several ranges per name). It must not
//! know about groups or files: callers turn its error strings into diagnostics with a position.

use std::sync::OnceLock;

use regex::Regex;

/// The most hosts one range entry may expand to (a typo such as `[1:10000000]` should not eat all memory).
pub const MAX_RANGE_HOSTS: usize = 1_000_000;

struct Patterns {
    bracketed_hostport: Regex,
    hostport: Regex,
    ipv4: Regex,
    ipv6: Regex,
    hostname: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let numeric_range = r"\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]";
        let hex_range = r"\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]";
        let alnum_range = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]";
        let c6 = format!(r"(?:[0-9a-f]{{1,4}}|{hex_range})");
        let c4 = format!(r"(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{numeric_range})");
        // Python's label is `(?:\w|R)(?:[\w_-]|R)*(?<![_-])`; without look-behind: the last unit is not `_`/`-`.
        let label = format!(
            r"(?:(?:\w|{r})(?:[\w-]|{r})*(?:[\w&&[^_]]|{r})|[\w&&[^_]]|{r})",
            r = alnum_range
        );
        let ipv6 = format!(
            concat!(
                r"^(?:(?:{0}:){{7}}{0}|(?:{0}:){{1,6}}:|(?:{0}:)(?::{0}){{1,6}}|(?:{0}:){{2}}(?::{0}){{1,5}}|",
                r"(?:{0}:){{3}}(?::{0}){{1,4}}|(?:{0}:){{4}}(?::{0}){{1,3}}|(?:{0}:){{5}}(?::{0}){{1,2}}|",
                r"(?:{0}:){{6}}(?::{0})|:(?::{0}){{1,6}}|{0}?::|(?:0:){{6}}(?:{0}\.){{3}}{0}|",
                r"::(?:ffff:)?(?:{0}\.){{3}}{0}|(?:0:){{5}}ffff:(?:{0}\.){{3}}{0})$"
            ),
            c6
        );
        let re = |s: &str| Regex::new(s).unwrap_or_else(|e| panic!("built-in pattern {s}: {e}"));
        Patterns {
            bracketed_hostport: re(r"^\[(.+)\]:([0-9]+)$"),
            hostport: re(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$"),
            ipv4: re(&format!(r"(?i)^(?:{c4}\.){{3}}{c4}$")),
            ipv6: re(&format!("(?i){ipv6}")),
            hostname: re(&format!(r"(?i)^{label}(?:\.{label})*$")),
        }
    })
}

/// Ansible's `parse_address(address, allow_ranges)`: the host part and the port, if one was given.
pub fn parse_address(address: &str, allow_ranges: bool) -> Result<(String, Option<u64>), String> {
    let p = patterns();
    let mut address = address.to_string();
    let mut port = None;
    for re in [&p.bracketed_hostport, &p.hostport] {
        if let Some(c) = re.captures(&address) {
            let host = c[1].to_string();
            port = Some(
                c[2].parse::<u64>()
                    .map_err(|_| format!("port number too large in '{address}'"))?,
            );
            address = host;
        }
    }
    let valid =
        p.ipv4.is_match(&address) || p.ipv6.is_match(&address) || p.hostname.is_match(&address);
    if !valid {
        return Err(format!("Not a valid network hostname: {address}"));
    }
    if !allow_ranges && address.contains('[') {
        return Err("Detected range in host but was asked to ignore ranges".into());
    }
    Ok((address, port))
}

/// Ansible's `_expand_hostpattern`: split off a port when the entry parses as an address, then expand ranges.
pub fn expand_hostpattern(pattern: &str) -> Result<(Vec<String>, Option<u64>), String> {
    let (name, port) = match parse_address(pattern, true) {
        Ok(v) => v,
        Err(_) => (pattern.to_string(), None),
    };
    let names = if name.contains('[') {
        let mut out = Vec::new();
        expand_hostname_range(&name, &mut out)?;
        out
    } else {
        vec![name]
    };
    Ok((names, port))
}

const ASCII_LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Python's `int(s)` for decimal strings: surrounding whitespace, an optional sign, single underscores.
pub fn py_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let v: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -v } else { v })
}

/// Ansible's `expand_hostname_range`: expand the first `[..]` of `line`, recursively for the rest.
pub fn expand_hostname_range(line: &str, out: &mut Vec<String>) -> Result<(), String> {
    let replaced = line.replacen('[', "|", 1).replacen(']', "|", 1);
    let parts: Vec<&str> = replaced.split('|').collect();
    let [head, nrange, tail] = parts[..] else {
        return Err(format!(
            "invalid host range in '{line}': expected one '[begin:end]' or '[begin:end:step]' per bracket pair"
        ));
    };
    let bounds: Vec<&str> = nrange.split(':').collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err(format!(
            "host range must be begin:end or begin:end:step (in '{line}')"
        ));
    }
    let beg = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    let step = bounds.get(2).copied().unwrap_or("1");
    if end.is_empty() {
        return Err(format!("host range must specify end value (in '{line}')"));
    }
    let width = if beg.starts_with('0') && beg.len() > 1 {
        if beg.len() != end.len() {
            return Err(format!(
                "host range must specify equal-length begin and end formats (in '{line}')"
            ));
        }
        Some(beg.len())
    } else {
        None
    };
    let fill = |x: String| match width {
        // str.zfill: pad with zeros after an optional sign.
        Some(w) if x.len() < w => match x.strip_prefix('-') {
            Some(rest) => format!("-{}{}", "0".repeat(w - x.len()), rest),
            None => format!("{}{}", "0".repeat(w - x.len()), x),
        },
        _ => x,
    };
    let bad_number =
        || format!("invalid host range in '{line}': '{nrange}' is neither numeric nor alphabetic");
    let mut seq: Vec<String> = Vec::new();
    let alpha = match (ASCII_LETTERS.find(beg), ASCII_LETTERS.find(end)) {
        (Some(b), Some(e)) => {
            if b > e {
                return Err(format!("host range must have begin <= end (in '{line}')"));
            }
            match py_int(step) {
                Some(s) if s > 0 => {
                    seq = ASCII_LETTERS[b..=e]
                        .chars()
                        .step_by(s as usize)
                        .map(String::from)
                        .collect();
                    true
                }
                Some(s) if s < 0 => {
                    // A negative slice step over [b:e+1] yields nothing in Python.
                    true
                }
                _ => false,
            }
        }
        _ => false,
    };
    if !alpha {
        let b = py_int(beg).ok_or_else(bad_number)?;
        let e = py_int(end).ok_or_else(bad_number)?;
        let s = py_int(step).ok_or_else(bad_number)?;
        if s == 0 {
            return Err(format!("host range step must not be zero (in '{line}')"));
        }
        let count = if s > 0 {
            if e + 1 > b {
                ((e + 1 - b) + s - 1) / s
            } else {
                0
            }
        } else if b > e + 1 {
            (b - (e + 1) + (-s) - 1) / (-s)
        } else {
            0
        };
        if count as usize + out.len() > MAX_RANGE_HOSTS {
            return Err(format!(
                "host range in '{line}' expands to more than {MAX_RANGE_HOSTS} hosts"
            ));
        }
        let mut x = b;
        for _ in 0..count {
            seq.push(x.to_string());
            x += s;
        }
    }
    for item in seq {
        let name = format!("{head}{}{tail}", fill(item));
        if name.contains('[') {
            expand_hostname_range(&name, out)?;
        } else {
            if out.len() >= MAX_RANGE_HOSTS {
                return Err(format!(
                    "host range in '{line}' expands to more than {MAX_RANGE_HOSTS} hosts"
                ));
            }
            out.push(name);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(p: &str) -> Vec<String> {
        expand_hostpattern(p).unwrap().0
    }

    #[test]
    fn addresses_and_ports() {
        assert_eq!(
            parse_address("h1:2222", true).unwrap(),
            ("h1".into(), Some(2222))
        );
        assert_eq!(
            parse_address("10.0.0.1:22", false).unwrap(),
            ("10.0.0.1".into(), Some(22))
        );
        assert_eq!(
            parse_address("[::1]:2200", false).unwrap(),
            ("::1".into(), Some(2200))
        );
        assert_eq!(
            parse_address("fe80::1", false).unwrap(),
            ("fe80::1".into(), None)
        );
        assert_eq!(
            parse_address("edge-[01:03]:22", true).unwrap(),
            ("edge-[01:03]".into(), Some(22))
        );
        assert!(parse_address("bad_", true).is_err());
        assert!(parse_address("a b", true).is_err());
        assert!(parse_address("edge-[1:3]", false).is_err());
        // Not an address: the whole text is the host name and there is no port.
        assert_eq!(
            expand_hostpattern("we!rd:22").unwrap(),
            (vec!["we!rd:22".to_string()], None)
        );
    }

    #[test]
    fn ranges_expand_like_ansible() {
        assert_eq!(exp("edge-[01:03]"), ["edge-01", "edge-02", "edge-03"]);
        assert_eq!(exp("e[1:10:4]"), ["e1", "e5", "e9"]);
        assert_eq!(exp("e[01:09:4]"), ["e01", "e05", "e09"]);
        assert_eq!(exp("n[a:c]"), ["na", "nb", "nc"]);
        assert_eq!(exp("n[a:e:2]"), ["na", "nc", "ne"]);
        assert_eq!(exp("r[1:2]-[a:b]"), ["r1-a", "r1-b", "r2-a", "r2-b"]);
        assert_eq!(exp("x[:2]"), ["x0", "x1", "x2"]);
        assert_eq!(exp("x[3:1]"), Vec::<String>::new());
        assert_eq!(
            expand_hostpattern("db[1:2].example.com:2222").unwrap().1,
            Some(2222)
        );
    }

    #[test]
    fn bad_ranges_are_errors() {
        for bad in [
            "x[1:2:3:4]",
            "x[1:]",
            "x[01:100]",
            "x[c:a]",
            "x[a:5]",
            "x[1:3:0]",
            "x[1:2",
        ] {
            assert!(expand_hostpattern(bad).is_err(), "{bad}");
        }
        assert!(expand_hostpattern("x[0:99999999]").is_err());
    }
}
