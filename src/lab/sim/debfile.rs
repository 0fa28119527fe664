//! What the simulated `dpkg` reads from a `.deb` and how it compares versions: the control data of a real
//! Debian package (an `ar` archive: `debian-binary`, `control.tar[.gz|.xz|.zst]` holding `./control`, then
//! `data.tar.*`), Debian version ordering (epoch, upstream, revision, `~` sorting first) and dependency
//! relations (`a (>= 1.0) | b, c:any`).
//!
//! Written for the lab independently of edgefleet's own bundle reader (`crate::bundle`), so the simulator stays
//! an oracle: a bug in one does not hide in the other. A pure device-model leaf: no state, no printing; errors
//! are the texts `dpkg-deb` prints.

use std::cmp::Ordering;
use std::io::{self, Read};
use std::path::Path;

/// The largest control member read; real ones are a few KiB.
const MAX_CONTROL: u64 = 16 * 1024 * 1024;

/// The fields of a package's control file that `dpkg -i` acts on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DebControl {
    /// `Package`.
    pub package: String,
    /// `Version`.
    pub version: String,
    /// `Architecture`.
    pub architecture: String,
    /// `Depends` (raw).
    pub depends: String,
    /// `Pre-Depends` (raw).
    pub pre_depends: String,
    /// `Provides` (raw).
    pub provides: String,
}

/// Read the control data of the package file at `path` (a device path already mapped to the host). The error
/// is `dpkg-deb`'s text, naming `shown` (the path the caller gave).
pub fn read_control(path: &Path, shown: &str) -> Result<DebControl, String> {
    let file = std::fs::File::open(path).map_err(|e| {
        let why = if e.kind() == io::ErrorKind::NotFound {
            "No such file or directory".to_string()
        } else {
            e.to_string()
        };
        format!("dpkg: error: cannot access archive '{shown}': {why}")
    })?;
    let not_deb = || format!("dpkg-deb: error: '{shown}' is not a Debian format archive");
    let mut ar = ar::Archive::new(io::BufReader::new(file));
    match ar.next_entry() {
        Some(Ok(e)) if e.header().identifier() == b"debian-binary" => {}
        _ => return Err(not_deb()),
    }
    while let Some(entry) = ar.next_entry() {
        let entry = entry.map_err(|_| not_deb())?;
        let name = String::from_utf8_lossy(entry.header().identifier()).into_owned();
        let Some(suffix) = name.strip_prefix("control.tar") else {
            continue;
        };
        let mut raw = Vec::new();
        entry.take(MAX_CONTROL).read_to_end(&mut raw).map_err(|_| {
            format!("dpkg-deb: error: unexpected end of file in archive member header in {shown}")
        })?;
        let tar = decompress(suffix, &raw).map_err(|e| {
            format!("dpkg-deb: error: could not decompress member {name} of '{shown}': {e}")
        })?;
        let text = control_file(&tar).ok_or_else(|| {
            format!("dpkg-deb: error: '{shown}' contains no control component 'control'")
        })?;
        return parse_control(&text).map_err(|e| {
            format!("dpkg-deb: error: parsing file 'control' near line 1 package '{shown}':\n {e}")
        });
    }
    Err(format!(
        "dpkg-deb: error: archive '{shown}' has premature member 'data.tar' before 'control.tar', giving up"
    ))
}

fn decompress(suffix: &str, raw: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match suffix {
        "" => out.extend_from_slice(raw),
        ".gz" => {
            flate2::read::GzDecoder::new(raw)
                .take(MAX_CONTROL * 4)
                .read_to_end(&mut out)?;
        }
        ".xz" => lzma_rs::xz_decompress(&mut io::BufReader::new(raw), &mut out)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}")))?,
        ".zst" => {
            ruzstd::decoding::StreamingDecoder::new(raw)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?
                .take(MAX_CONTROL * 4)
                .read_to_end(&mut out)?;
        }
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown compression for member control.tar{other}"),
            ))
        }
    }
    Ok(out)
}

/// `./control` from the control tar.
fn control_file(tar: &[u8]) -> Option<String> {
    let mut a = tar::Archive::new(tar);
    for e in a.entries().ok()? {
        let mut e = e.ok()?;
        let p = e.path().ok()?.to_string_lossy().into_owned();
        if p.trim_start_matches("./") == "control" {
            let mut s = String::new();
            e.read_to_string(&mut s).ok()?;
            return Some(s);
        }
    }
    None
}

/// Parse a control paragraph (continuation lines folded).
pub fn parse_control(text: &str) -> Result<DebControl, String> {
    let mut c = DebControl::default();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if last.is_none() {
                return Err("continuation line without a field".into());
            }
            continue;
        }
        if line.trim().is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(format!("line '{line}' is not a field"));
        };
        let v = v.trim().to_string();
        match k.to_ascii_lowercase().as_str() {
            "package" => c.package = v,
            "version" => c.version = v,
            "architecture" => c.architecture = v,
            "depends" => c.depends = v,
            "pre-depends" => c.pre_depends = v,
            "provides" => c.provides = v,
            _ => {}
        }
        last = Some(k.to_string());
    }
    for (f, v) in [
        ("Package", &c.package),
        ("Version", &c.version),
        ("Architecture", &c.architecture),
    ] {
        if v.is_empty() {
            return Err(format!("missing '{f}' field"));
        }
    }
    Ok(c)
}

/// Compare two Debian versions as `dpkg --compare-versions` does.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let split = |v: &str| -> (u64, String, String) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
            _ => (0, v),
        };
        match rest.rsplit_once('-') {
            Some((u, r)) => (epoch, u.to_string(), r.to_string()),
            None => (epoch, rest.to_string(), String::new()),
        }
    };
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(&ua, &ub))
        .then_with(|| verrevcmp(&ra, &rb))
}

/// dpkg's `order`: `~` before everything, then the end, digits are handled apart, letters before non-letters.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let mut first_diff = 0;
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied());
            let bc = order(b.get(j).copied());
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == 0 {
                first_diff = a[i] as i32 - b[j] as i32;
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
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}

/// One alternative of a relation: `name [(op version)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alt {
    /// Package name (any `:arch` qualifier removed).
    pub name: String,
    /// `(op, version)`, `op` one of `<<`, `<=`, `=`, `>=`, `>>`.
    pub constraint: Option<(String, String)>,
}

impl Alt {
    /// Whether `version` satisfies the constraint.
    pub fn allows(&self, version: &str) -> bool {
        let Some((op, want)) = &self.constraint else {
            return true;
        };
        let o = compare_versions(version, want);
        match op.as_str() {
            "<<" => o == Ordering::Less,
            "<=" | "<" => o != Ordering::Greater,
            "=" => o == Ordering::Equal,
            ">=" | ">" => o != Ordering::Less,
            ">>" => o == Ordering::Greater,
            _ => false,
        }
    }

    /// As dpkg prints it: `name (>= 1.0)`.
    pub fn shown(&self) -> String {
        match &self.constraint {
            Some((op, v)) => format!("{} ({op} {v})", self.name),
            None => self.name.clone(),
        }
    }
}

/// Parse a relation field into its comma-separated relations, each a list of `|` alternatives.
pub fn parse_relations(field: &str) -> Vec<Vec<Alt>> {
    field
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            r.split('|')
                .map(|alt| {
                    let alt = alt.trim();
                    let (name, constraint) = match alt.split_once('(') {
                        Some((n, c)) => {
                            let c = c.trim_end_matches(')').trim();
                            let op_end = c
                                .find(|ch: char| !matches!(ch, '<' | '>' | '='))
                                .unwrap_or(c.len());
                            (
                                n.trim(),
                                Some((c[..op_end].to_string(), c[op_end..].trim().to_string())),
                            )
                        }
                        None => (alt, None),
                    };
                    let name = name.split(':').next().unwrap_or(name).trim().to_string();
                    Alt { name, constraint }
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_like_dpkg() {
        use Ordering::*;
        for (a, b, o) in [
            ("1.5.21-1", "1.5.21-1", Equal),
            ("1.5.21-1", "1.5.9-1", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1:0.1", "2.0", Greater),
            (
                "24.0.9+azure-ubuntu22.04u1",
                "24.0.9+azure-ubuntu22.04u2",
                Less,
            ),
            ("1.0a", "1.0", Greater),
            ("1.0-1", "1.0-1~bpo1", Greater),
        ] {
            assert_eq!(compare_versions(a, b), o, "{a} vs {b}");
        }
    }

    #[test]
    fn relations_parse_with_alternatives_and_constraints() {
        let r = parse_relations(
            "libc6 (>= 2.34), moby-engine | docker-ce, aziot-identity-service (= 1.5.6-1), x:any",
        );
        assert_eq!(r.len(), 4);
        assert_eq!(r[0][0].shown(), "libc6 (>= 2.34)");
        assert_eq!(r[1].len(), 2);
        assert!(r[2][0].allows("1.5.6-1"));
        assert!(!r[2][0].allows("1.5.7-1"));
        assert_eq!(r[3][0].name, "x");
    }

    #[test]
    fn control_needs_package_version_architecture() {
        assert!(parse_control("Package: a\nVersion: 1\n").is_err());
        let c = parse_control("Package: a\nVersion: 1\nArchitecture: amd64\nDepends: b\n").unwrap();
        assert_eq!((c.package.as_str(), c.depends.as_str()), ("a", "b"));
    }
}
