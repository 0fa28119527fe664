//! Dependency closure: is every `Depends`/`Pre-Depends` of every deb in a bundle satisfied by another deb of the
//! bundle or by the declared base system (the packages the target devices already have)?
//!
//! Owns the base-system list (its file format, read with file:line errors) and the check, whose messages name
//! the package, the relation with its constraint, what the bundle has instead, and what to do. Follows dpkg's
//! rules: a real package satisfies a constraint by its version; a `Provides` satisfies an unversioned relation,
//! or a versioned one through its own `(= version)`. Also the install order of the debs (`install_order`), which
//! the bootstrap playbook follows. Must not read files other than the base-system list.

use std::path::Path;

use super::manifest::{BasePackage, Entry, EntryKind};
use super::relation::{parse_relations, Alternative, Op};
use super::version::DebVersion;

/// Read a base-system list: one package per line, `NAME [VERSION [PROVIDES]]`, as printed by
/// `dpkg-query -W -f='${Package} ${Version} ${Provides}\n'` on a reference device; `#` comments and blank
/// lines are skipped, a `:arch` suffix on the name is dropped. Errors name `file:line`.
pub fn read_base_system(path: &Path) -> Result<Vec<BasePackage>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the base-system list: {e}", path.display()))?;
    parse_base_system(&text).map_err(|(line, e)| format!("{}:{line}: {e}", path.display()))
}

/// [`read_base_system`] on text; the error carries the 1-based line.
pub fn parse_base_system(text: &str) -> Result<Vec<BasePackage>, (usize, String)> {
    let mut out: Vec<BasePackage> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(3, char::is_whitespace);
        let raw_name = parts.next().unwrap_or_default();
        let name = raw_name.split(':').next().unwrap_or_default();
        if !super::relation::valid_package_name(name) {
            return Err((
                n,
                format!(
                    "`{raw_name}` is not a package name (expected `NAME [VERSION [PROVIDES]]`)"
                ),
            ));
        }
        let version = parts.next().map(str::trim).filter(|v| !v.is_empty());
        if let Some(v) = version {
            DebVersion::parse(v).map_err(|e| (n, format!("package `{name}`: {e}")))?;
        }
        let provides = parts.next().unwrap_or_default().trim().to_string();
        parse_relations(&provides).map_err(|e| (n, format!("package `{name}` provides: {e}")))?;
        if out.iter().any(|b| b.name == name) {
            return Err((n, format!("package `{name}` is listed twice")));
        }
        out.push(BasePackage {
            name: name.to_string(),
            version: version.map(str::to_string),
            provides,
        });
    }
    Ok(out)
}

/// Something that may satisfy a relation: a deb of the bundle or a base-system package.
struct Candidate<'a> {
    name: &'a str,
    version: Option<DebVersion>,
    provides: Vec<Alternative>,
    from_bundle: bool,
}

/// Check the closure; one message per unsatisfied relation (empty: all satisfied).
pub fn check_closure(entries: &[Entry], base: &[BasePackage]) -> Vec<String> {
    let mut cands = Vec::new();
    for e in entries.iter().filter(|e| e.kind == EntryKind::Deb) {
        cands.push(Candidate {
            name: &e.name,
            version: e.version.as_deref().and_then(|v| DebVersion::parse(v).ok()),
            provides: flat(&e.provides),
            from_bundle: true,
        });
    }
    for b in base {
        cands.push(Candidate {
            name: &b.name,
            version: b.version.as_deref().and_then(|v| DebVersion::parse(v).ok()),
            provides: flat(&b.provides),
            from_bundle: false,
        });
    }
    let mut problems = Vec::new();
    for e in entries.iter().filter(|e| e.kind == EntryKind::Deb) {
        if let Err(x) = e.relations() {
            problems.push(format!("{}: its relations do not parse: {x}", e.label()));
            continue;
        }
        for (field, text) in [("Pre-Depends", &e.pre_depends), ("Depends", &e.depends)] {
            let Ok(rels_of_field) = parse_relations(text) else {
                continue;
            };
            for rel in rels_of_field {
                if rel
                    .0
                    .iter()
                    .any(|alt| cands.iter().any(|c| satisfies(c, alt)))
                {
                    continue;
                }
                let mut have = Vec::new();
                for alt in &rel.0 {
                    for c in cands.iter().filter(|c| c.name == alt.name) {
                        let v = c
                            .version
                            .as_ref()
                            .map_or("no declared version".to_string(), |v| v.to_string());
                        have.push(format!(
                            "{} has {} {v}",
                            if c.from_bundle {
                                "the bundle"
                            } else {
                                "the base system"
                            },
                            c.name
                        ));
                    }
                }
                let found = if have.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", have.join("; "))
                };
                problems.push(format!(
                    "{}: {field} `{rel}` is not satisfied by the bundle or the base system{found}: add a \
                     matching .deb with --deb, or declare the package in --base-system if the devices already \
                     have it",
                    e.label()
                ));
            }
        }
    }
    problems
}

/// The bundle's debs in an order `dpkg -i` can take them one at a time: every deb after the bundle debs that
/// satisfy its Pre-Depends and Depends (ties by name, so the order is stable). A Depends cycle (which Debian
/// allows) is broken at the alphabetically first package still waiting; a Pre-Depends cycle cannot be
/// installed and is an error naming its packages.
pub fn install_order(entries: &[Entry]) -> Result<Vec<&Entry>, String> {
    let debs: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::Deb)
        .collect();
    let cands: Vec<Candidate<'_>> = debs
        .iter()
        .map(|e| Candidate {
            name: &e.name,
            version: e.version.as_deref().and_then(|v| DebVersion::parse(v).ok()),
            provides: flat(&e.provides),
            from_bundle: true,
        })
        .collect();
    // needs[i]: (j, pre) — deb i needs deb j first; `pre`: through Pre-Depends.
    let mut needs: Vec<Vec<(usize, bool)>> = vec![Vec::new(); debs.len()];
    for (i, e) in debs.iter().enumerate() {
        for (pre, text) in [(true, &e.pre_depends), (false, &e.depends)] {
            for rel in parse_relations(text).unwrap_or_default() {
                let first = rel.0.iter().find_map(|alt| {
                    (0..cands.len()).find(|&j| j != i && satisfies(&cands[j], alt))
                });
                if let Some(j) = first {
                    needs[i].push((j, pre));
                }
            }
        }
    }
    let mut done = vec![false; debs.len()];
    let mut order = Vec::new();
    // Can `start` reach itself through needs not yet installed (is it on a cycle)?
    let on_cycle = |start: usize, done: &[bool]| {
        let mut stack: Vec<usize> = needs[start]
            .iter()
            .map(|&(j, _)| j)
            .filter(|&j| !done[j])
            .collect();
        let mut seen = vec![false; debs.len()];
        while let Some(k) = stack.pop() {
            if k == start {
                return true;
            }
            if !std::mem::replace(&mut seen[k], true) {
                stack.extend(needs[k].iter().map(|&(j, _)| j).filter(|&j| !done[j]));
            }
        }
        false
    };
    while order.len() < debs.len() {
        let ready = (0..debs.len())
            .filter(|&i| !done[i] && needs[i].iter().all(|&(j, _)| done[j]))
            .min_by(|&a, &b| debs[a].name.cmp(&debs[b].name));
        // Nothing ready: a cycle. Break it at a package on it whose unmet needs are all Depends.
        let breaker = || {
            (0..debs.len())
                .filter(|&i| !done[i] && on_cycle(i, &done))
                .filter(|&i| needs[i].iter().all(|&(j, pre)| done[j] || !pre))
                .min_by(|&a, &b| debs[a].name.cmp(&debs[b].name))
        };
        let Some(i) = ready.or_else(breaker) else {
            let stuck: Vec<&str> = (0..debs.len())
                .filter(|&i| !done[i])
                .map(|i| debs[i].name.as_str())
                .collect();
            return Err(format!(
                "a Pre-Depends cycle among {}: dpkg cannot install these one after another",
                stuck.join(", ")
            ));
        };
        done[i] = true;
        order.push(debs[i]);
    }
    Ok(order)
}

fn flat(provides: &str) -> Vec<Alternative> {
    parse_relations(provides)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|r| r.0)
        .collect()
}

/// Does `c` satisfy the alternative `alt`?
fn satisfies(c: &Candidate<'_>, alt: &Alternative) -> bool {
    if c.name == alt.name {
        return match (&alt.constraint, &c.version) {
            (None, _) => true,
            (Some(k), Some(v)) => k.op.holds(v, &k.version),
            (Some(_), None) => false,
        };
    }
    c.provides.iter().any(|p| {
        p.name == alt.name
            && match (&alt.constraint, &p.constraint) {
                (None, _) => true,
                (Some(k), Some(pc)) if pc.op == Op::Eq => k.op.holds(&pc.version, &k.version),
                _ => false,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deb(name: &str, version: &str, depends: &str, provides: &str) -> Entry {
        Entry {
            kind: EntryKind::Deb,
            path: format!("debs/{name}.deb"),
            name: name.into(),
            version: Some(version.into()),
            architecture: Some("amd64".into()),
            size: 1,
            sha256: "0".repeat(64),
            depends: depends.into(),
            pre_depends: String::new(),
            provides: provides.into(),
            images: vec![],
        }
    }

    #[test]
    fn satisfied_by_bundle_base_and_provides() {
        let entries = vec![
            deb("aziot-edge", "1.5.21-1", "aziot-identity-service (= 1.5.6-1), libc6 (>= 2.34), docker-engine | moby-engine, iotedge-cli", ""),
            deb("aziot-identity-service", "1.5.6-1", "libc6 (>= 2.31)", ""),
            deb("moby-engine", "25.0.5-1", "", "docker-engine"),
            deb("cli-tools", "1.0", "", "iotedge-cli (= 1.5)"),
        ];
        let base =
            parse_base_system("# from dpkg-query\nlibc6:amd64 2.36-9+deb12u4\nadduser 3.134 \n")
                .unwrap();
        assert_eq!(check_closure(&entries, &base), Vec::<String>::new());
    }

    #[test]
    fn names_package_and_constraint() {
        let entries = vec![
            deb(
                "aziot-edge",
                "1.5.21-1",
                "aziot-identity-service (= 1.5.6-1), libc6 (>= 2.38), virt (>= 2)",
                "",
            ),
            deb("aziot-identity-service", "1.5.5-1", "", ""),
            deb("p", "1", "", "virt"),
        ];
        let base = parse_base_system("libc6 2.36-9\n").unwrap();
        let p = check_closure(&entries, &base);
        assert_eq!(p.len(), 3, "{p:#?}");
        assert!(p[0].starts_with("deb aziot-edge 1.5.21-1: Depends `aziot-identity-service (= 1.5.6-1)` is not satisfied"));
        assert!(
            p[0].contains("(the bundle has aziot-identity-service 1.5.5-1)"),
            "{}",
            p[0]
        );
        assert!(
            p[1].contains("`libc6 (>= 2.38)`") && p[1].contains("the base system has libc6 2.36-9")
        );
        assert!(
            p[2].contains("`virt (>= 2)`"),
            "an unversioned Provides cannot satisfy a versioned relation"
        );
    }

    #[test]
    fn install_order_follows_dependencies() {
        let entries = vec![
            deb(
                "aziot-edge",
                "1.5.21-1",
                "aziot-identity-service (= 1.5.6-1), docker-engine",
                "",
            ),
            deb("aziot-identity-service", "1.5.6-1", "libc6", ""),
            deb("moby-engine", "25.0.5-1", "moby-cli", "docker-engine"),
            deb("moby-cli", "25.0.5-1", "moby-engine", ""),
        ];
        let names = |v: Vec<&Entry>| v.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
        // moby-engine <-> moby-cli is a Depends cycle: broken at the first name.
        assert_eq!(
            names(install_order(&entries).unwrap()),
            [
                "aziot-identity-service",
                "moby-cli",
                "moby-engine",
                "aziot-edge"
            ]
        );
        let mut pre = vec![deb("aa", "1", "", ""), deb("bb", "1", "", "")];
        pre[0].pre_depends = "bb".into();
        pre[1].pre_depends = "aa".into();
        assert!(install_order(&pre)
            .unwrap_err()
            .contains("Pre-Depends cycle among aa, bb"));
        pre[1].pre_depends = String::new();
        assert_eq!(names(install_order(&pre).unwrap()), ["bb", "aa"]);
    }

    #[test]
    fn base_system_errors_name_the_line() {
        assert_eq!(parse_base_system("ok 1\nBad 1\n").unwrap_err().0, 2);
        assert!(parse_base_system("a1 x.y\n")
            .unwrap_err()
            .1
            .contains("start with a digit"));
        assert!(parse_base_system("a1\na1\n")
            .unwrap_err()
            .1
            .contains("twice"));
        let b = parse_base_system("a1\n").unwrap();
        let entries = vec![deb("zz", "1", "a1 (>= 1)", "")];
        assert!(
            check_closure(&entries, &b)[0].contains("the base system has a1 no declared version")
        );
    }
}
