//! Debian package versions (`[epoch:]upstream[-revision]`) and dpkg's ordering of them.
//!
//! Owns parsing (with the errors dpkg gives for a bad version) and comparison exactly as `dpkg
//! --compare-versions` does it (`~` sorts before everything, even the end; letters before other characters;
//! digit runs compare as numbers). Must not know about packages or relations (`relation.rs`).

use std::cmp::Ordering;
use std::fmt;

/// A parsed Debian version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebVersion {
    /// The epoch (0 when absent).
    pub epoch: u64,
    /// The upstream part.
    pub upstream: String,
    /// The Debian revision ("" when absent, which compares like "0").
    pub revision: String,
}

impl DebVersion {
    /// Parse a version as a control file writes it; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<DebVersion, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("the version is empty".into());
        }
        if let Some(c) = s.chars().find(|c| c.is_whitespace()) {
            return Err(format!("version `{s}` contains whitespace ({c:?})"));
        }
        let (epoch, rest) = match s.split_once(':') {
            Some((e, rest)) => {
                let epoch = e
                    .parse::<u64>()
                    .map_err(|_| format!("version `{s}`: epoch `{e}` is not a number"))?;
                (epoch, rest)
            }
            None => (0, s),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => (u, r),
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(format!("version `{s}` has an empty upstream part"));
        }
        if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!(
                "version `{s}`: the upstream part must start with a digit"
            ));
        }
        let ok_up = |c: char| c.is_ascii_alphanumeric() || ".+~-:".contains(c);
        if let Some(c) = upstream.chars().find(|&c| !ok_up(c)) {
            return Err(format!(
                "version `{s}` contains the character {c:?}, which Debian versions cannot"
            ));
        }
        let ok_rev = |c: char| c.is_ascii_alphanumeric() || ".+~".contains(c);
        if rest.contains('-') && revision.is_empty() {
            return Err(format!("version `{s}` has an empty revision after `-`"));
        }
        if let Some(c) = revision.chars().find(|&c| !ok_rev(c)) {
            return Err(format!("version `{s}`: revision contains {c:?}"));
        }
        Ok(DebVersion {
            epoch,
            upstream: upstream.to_string(),
            revision: revision.to_string(),
        })
    }
}

impl fmt::Display for DebVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch > 0 {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

impl Ord for DebVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(&self.upstream, &other.upstream))
            .then_with(|| verrevcmp(&self.revision, &other.revision))
    }
}

impl PartialOrd for DebVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// dpkg's weight of one non-digit character (`None`: the end of the string).
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: alternate non-digit runs (by [`order`]) and digit runs (as numbers).
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let bc = order(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            if i < a.len() && !a[i].is_ascii_digit() {
                i += 1;
            }
            if j < b.len() && !b[j].is_ascii_digit() {
                j += 1;
            }
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> DebVersion {
        DebVersion::parse(s).unwrap()
    }

    #[test]
    fn parses_the_parts() {
        let x = v("1:1.5.21-1~deb12u1");
        assert_eq!(
            (x.epoch, x.upstream.as_str(), x.revision.as_str()),
            (1, "1.5.21", "1~deb12u1")
        );
        let y = v("2.0-rc1-3");
        assert_eq!((y.upstream.as_str(), y.revision.as_str()), ("2.0-rc1", "3"));
        assert_eq!(y.to_string(), "2.0-rc1-3");
        assert!(DebVersion::parse("").is_err());
        assert!(DebVersion::parse("a1.0")
            .unwrap_err()
            .contains("start with a digit"));
        assert!(DebVersion::parse("x:1.0").unwrap_err().contains("epoch"));
        assert!(DebVersion::parse("1.0 2")
            .unwrap_err()
            .contains("whitespace"));
        assert!(DebVersion::parse("1.0_2").unwrap_err().contains("'_'"));
    }

    /// The cases of dpkg's own test suite (lib/dpkg/t/t-version.c) and Debian policy 5.6.12.
    #[test]
    fn orders_like_dpkg() {
        let lt = [
            ("1.0", "1.1"),
            ("1.0~rc1", "1.0"),
            ("1.0~~", "1.0~"),
            ("1.0~", "1.0"),
            ("1.0", "1.0a"),
            ("1.0a", "1.0+"),
            ("1.0-1", "1.0-2"),
            ("1.0", "1.0-0.1"),
            ("1.9", "1.10"),
            ("2:0.1", "10:0.0"),
            ("1.5.6-1", "1:0.1"),
            ("0.9", "1.0.0"),
            ("1.2.3", "1.2.3.0"),
            ("1.0.0-1~deb12u1", "1.0.0-1"),
        ];
        for (a, b) in lt {
            assert_eq!(v(a).cmp(&v(b)), Ordering::Less, "{a} < {b}");
            assert_eq!(v(b).cmp(&v(a)), Ordering::Greater, "{b} > {a}");
        }
        for (a, b) in [
            ("1.0", "1.0-"),
            ("0:1.0", "1.0"),
            ("1.01", "1.1"),
            ("1.0-0", "1.0"),
        ] {
            if let (Ok(x), Ok(y)) = (DebVersion::parse(a), DebVersion::parse(b)) {
                assert_eq!(x.cmp(&y), Ordering::Equal, "{a} = {b}");
            }
        }
    }

    /// Cross-check with the real `dpkg --compare-versions` on tricky pairs.
    #[test]
    fn agrees_with_dpkg_compare_versions() {
        if !std::path::Path::new("/usr/bin/dpkg").exists() {
            panic!("dpkg is not installed: run `tests/run` (it installs what the tests need)");
        }
        let vs = [
            "1.0",
            "1.0~rc1",
            "1.0+b1",
            "1.0a",
            "1:0.5",
            "1.0-1",
            "1.0-1.1",
            "1.0.0",
            "1.00",
            "1.0~~a",
            "1.5.21-1",
            "1.5.3-1",
            "20.10.27+azure-1",
            "20.10.3+azure-1",
        ];
        for a in vs {
            for b in vs {
                let lt = std::process::Command::new("dpkg")
                    .args(["--compare-versions", a, "lt", b])
                    .status()
                    .unwrap()
                    .success();
                assert_eq!(v(a) < v(b), lt, "{a} lt {b}: dpkg says {lt}");
            }
        }
    }
}
