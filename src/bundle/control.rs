//! A binary package's `control` file (deb822: `Field: value` lines, continuation lines start with a space or a
//! tab) and the fields a bundle needs from it.
//!
//! Owns the paragraph parser (errors name the line) and [`Control`], the checked view of one package: name,
//! version, architecture, `Depends`, `Pre-Depends`, `Provides`. Must not read archives (`deb.rs`).

use super::relation::{parse_relations, valid_package_name, Relation};
use super::version::DebVersion;

/// The fields of one binary package that a bundle records and checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// `Package`.
    pub package: String,
    /// `Version`, parsed.
    pub version: DebVersion,
    /// `Architecture` (`amd64`, `arm64`, `all`, ...).
    pub architecture: String,
    /// `Depends`, as written (whitespace folded); empty when absent.
    pub depends: String,
    /// `Pre-Depends`, as written; empty when absent.
    pub pre_depends: String,
    /// `Provides`, as written; empty when absent.
    pub provides: String,
    /// `Depends` and `Pre-Depends`, parsed.
    pub relations: Vec<Relation>,
}

/// Parse one control paragraph into its fields, in order (names as written, values with continuation lines
/// joined by `\n`). The error names the 1-based line.
pub fn parse_paragraph(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            if fields.is_empty() {
                continue;
            }
            if text.lines().skip(n).any(|l| !l.trim().is_empty()) {
                return Err(format!(
                    "line {n}: a blank line ends the paragraph but more fields follow (a binary package's \
                     control file has one paragraph)"
                ));
            }
            break;
        }
        if line.starts_with([' ', '\t']) {
            let Some(last) = fields.last_mut() else {
                return Err(format!("line {n}: a continuation line before any field"));
            };
            last.1.push('\n');
            last.1.push_str(line.trim());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!(
                "line {n}: `{}` is not a `Field: value` line",
                truncate(line)
            ));
        };
        if name.is_empty()
            || name.starts_with(['#', '-'])
            || !name.chars().all(|c| c.is_ascii_graphic() && c != ':')
        {
            return Err(format!(
                "line {n}: `{}` is not a field name",
                truncate(name)
            ));
        }
        if fields.iter().any(|(f, _)| f.eq_ignore_ascii_case(name)) {
            return Err(format!("line {n}: field `{name}` appears twice"));
        }
        fields.push((name.to_string(), value.trim().to_string()));
    }
    if fields.is_empty() {
        return Err("the control file is empty".into());
    }
    Ok(fields)
}

fn truncate(s: &str) -> String {
    let mut t: String = s.chars().take(60).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

impl Control {
    /// The checked fields of a control file's text.
    pub fn parse(text: &str) -> Result<Control, String> {
        let fields = parse_paragraph(text)?;
        let get = |name: &str| {
            fields
                .iter()
                .find(|(f, _)| f.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        };
        let need = |name: &str| {
            get(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("the control file has no `{name}` field"))
        };
        let package = need("Package")?;
        if !valid_package_name(&package) {
            return Err(format!("Package `{package}` is not a valid package name"));
        }
        let version_text = need("Version")?;
        let version = DebVersion::parse(&version_text).map_err(|e| format!("Version: {e}"))?;
        let architecture = need("Architecture")?;
        if !architecture
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(format!(
                "Architecture `{architecture}` is not one architecture name"
            ));
        }
        let depends = get("Depends").unwrap_or_default();
        let pre_depends = get("Pre-Depends").unwrap_or_default();
        let provides = get("Provides").unwrap_or_default();
        let mut relations =
            parse_relations(&pre_depends).map_err(|e| format!("Pre-Depends: {e}"))?;
        relations.extend(parse_relations(&depends).map_err(|e| format!("Depends: {e}"))?);
        parse_relations(&provides).map_err(|e| format!("Provides: {e}"))?;
        Ok(Control {
            package,
            version,
            architecture,
            depends,
            pre_depends,
            provides,
            relations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AZIOT_EDGE: &str = "Package: aziot-edge\nVersion: 1.5.21-1\nArchitecture: amd64\n\
Maintainer: Azure IoT Edge Devs\nInstalled-Size: 31251\n\
Pre-Depends: adduser\n\
Depends: aziot-identity-service (= 1.5.6-1), moby-engine | docker-ce,\n libc6 (>= 2.34)\n\
Provides: iotedge\n\
Description: Azure IoT Edge Module Runtime\n Azure IoT Edge is a fully managed service\n .\n second paragraph\n";

    #[test]
    fn reads_the_fields() {
        let c = Control::parse(AZIOT_EDGE).unwrap();
        assert_eq!(c.package, "aziot-edge");
        assert_eq!(c.version.to_string(), "1.5.21-1");
        assert_eq!(c.architecture, "amd64");
        assert_eq!(
            c.depends,
            "aziot-identity-service (= 1.5.6-1), moby-engine | docker-ce, libc6 (>= 2.34)"
        );
        assert_eq!(c.relations.len(), 4);
        assert_eq!(c.relations[0].to_string(), "adduser");
        assert_eq!(c.provides, "iotedge");
        let fields = parse_paragraph(AZIOT_EDGE).unwrap();
        assert_eq!(
            fields.last().unwrap().1,
            "Azure IoT Edge Module Runtime\nAzure IoT Edge is a fully managed service\n.\nsecond paragraph"
        );
    }

    #[test]
    fn garbage_is_refused_with_its_line() {
        let e = Control::parse("Package: x1\nthis is not a field\n").unwrap_err();
        assert_eq!(
            e,
            "line 2: `this is not a field` is not a `Field: value` line"
        );
        assert!(Control::parse(" leading\n")
            .unwrap_err()
            .contains("continuation line before"));
        assert!(Control::parse("Package: ab\nPackage: cd\n")
            .unwrap_err()
            .contains("appears twice"));
        assert!(Control::parse("Package: ab\nVersion: 1\n")
            .unwrap_err()
            .contains("`Architecture`"));
        assert!(
            Control::parse("Package: ab\nVersion: x\nArchitecture: all\n")
                .unwrap_err()
                .contains("Version: version `x`")
        );
        assert!(
            Control::parse("Package: ab\nVersion: 1\nArchitecture: all\nDepends: Foo\n")
                .unwrap_err()
                .starts_with("Depends: ")
        );
        assert!(Control::parse("\u{0}\u{1}\u{2}").is_err());
        assert!(Control::parse("").unwrap_err().contains("empty"));
        assert!(Control::parse("Package: ab\n\nVersion: 1\n")
            .unwrap_err()
            .contains("one paragraph"));
    }
}
