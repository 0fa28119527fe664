//! Package relations as control files write them: `Depends`, `Pre-Depends`, `Provides`.
//!
//! Owns the dependency model (a list of relations, each a list of alternatives `a (>= 1) | b`, each a package
//! name with an optional architecture qualifier and version constraint) and its parser, with errors that quote
//! the offending piece. Build-profile (`<!nocheck>`) and architecture (`[amd64]`) restrictions, which only
//! source packages carry, are parsed and dropped. Must not decide what satisfies what (`closure.rs`).

use std::fmt;

use super::version::DebVersion;

/// A version operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<<`
    Lt,
    /// `<=` (also the obsolete `<`)
    Le,
    /// `=`
    Eq,
    /// `>=` (also the obsolete `>`)
    Ge,
    /// `>>`
    Gt,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }

    /// Does `have` satisfy `have OP want`?
    pub fn holds(self, have: &DebVersion, want: &DebVersion) -> bool {
        let o = have.cmp(want);
        match self {
            Op::Lt => o.is_lt(),
            Op::Le => o.is_le(),
            Op::Eq => o.is_eq(),
            Op::Ge => o.is_ge(),
            Op::Gt => o.is_gt(),
        }
    }
}

/// A version constraint: `(>= 1.5.0)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// The operator.
    pub op: Op,
    /// The version on its right.
    pub version: DebVersion,
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.as_str(), self.version)
    }
}

/// One alternative: `name[:arch] [(op version)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    /// The package name.
    pub name: String,
    /// The architecture qualifier (`any`, `native`, `amd64`), if any.
    pub arch: Option<String>,
    /// The version constraint, if any.
    pub constraint: Option<Constraint>,
}

impl fmt::Display for Alternative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(a) = &self.arch {
            write!(f, ":{a}")?;
        }
        if let Some(c) = &self.constraint {
            write!(f, " ({c})")?;
        }
        Ok(())
    }
}

/// One relation: alternatives separated by `|`, any one of which satisfies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation(pub Vec<Alternative>);

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

/// Is `name` a valid Debian package name (policy 5.6.1: lowercase letters, digits, `+ - .`, at least two
/// characters, starting with a letter or digit)?
pub fn valid_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

/// Parse a relation field (`Depends`, `Pre-Depends`, `Provides`, ...): comma-separated relations. An empty
/// field is an empty list. The error quotes the relation and says what is wrong.
pub fn parse_relations(field: &str) -> Result<Vec<Relation>, String> {
    let mut out = Vec::new();
    let text = field.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return Ok(out);
    }
    for rel in text.split(',') {
        let rel = rel.trim();
        if rel.is_empty() {
            return Err(format!("empty relation between commas in `{text}`"));
        }
        let mut alts = Vec::new();
        for alt in rel.split('|') {
            alts.push(parse_alternative(alt.trim()).map_err(|e| format!("in `{rel}`: {e}"))?);
        }
        out.push(Relation(alts));
    }
    Ok(out)
}

fn parse_alternative(s: &str) -> Result<Alternative, String> {
    if s.is_empty() {
        return Err("empty alternative around `|`".into());
    }
    let name_end = s
        .find(|c: char| c.is_whitespace() || "([<".contains(c))
        .unwrap_or(s.len());
    let (name_arch, mut rest) = (&s[..name_end], s[name_end..].trim_start());
    let (name, arch) = match name_arch.split_once(':') {
        Some((n, a))
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            (n, Some(a.to_string()))
        }
        Some((_, a)) => return Err(format!("bad architecture qualifier `:{a}`")),
        None => (name_arch, None),
    };
    if !valid_package_name(name) {
        return Err(format!(
            "`{name}` is not a package name (lowercase letters, digits, `+-.`, at least 2 characters)"
        ));
    }
    let mut constraint = None;
    if let Some(r) = rest.strip_prefix('(') {
        let close = r
            .find(')')
            .ok_or_else(|| format!("`({r}` has no closing `)`"))?;
        let inner = r[..close].trim();
        rest = r[close + 1..].trim_start();
        let (op, ver) = split_op(inner)?;
        let version = DebVersion::parse(ver)?;
        constraint = Some(Constraint { op, version });
    }
    // Source-package restrictions: `[arch ...]` and `<profile ...>` groups, dropped.
    while let Some(open) = rest.chars().next().filter(|c| *c == '[' || *c == '<') {
        let close = if open == '[' { ']' } else { '>' };
        let end = rest
            .find(close)
            .ok_or_else(|| format!("`{rest}` has no closing `{close}`"))?;
        rest = rest[end + 1..].trim_start();
    }
    if !rest.is_empty() {
        return Err(format!(
            "unexpected `{rest}` after `{}`",
            s[..s.len() - rest.len()].trim()
        ));
    }
    Ok(Alternative {
        name: name.to_string(),
        arch,
        constraint,
    })
}

fn split_op(inner: &str) -> Result<(Op, &str), String> {
    for (tok, op) in [
        ("<<", Op::Lt),
        ("<=", Op::Le),
        (">=", Op::Ge),
        (">>", Op::Gt),
        ("=", Op::Eq),
        ("<", Op::Le),
        (">", Op::Ge),
    ] {
        if let Some(v) = inner.strip_prefix(tok) {
            let v = v.trim();
            if v.is_empty() {
                return Err(format!("`({inner})` has an operator but no version"));
            }
            return Ok((op, v));
        }
    }
    Err(format!(
        "`({inner})` needs an operator: one of << <= = >= >>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_depends() {
        // aziot-edge 1.5's Depends, as packages.microsoft.com ships it, folded over two lines.
        let f = "adduser, ca-certificates, aziot-identity-service (= 1.5.6-1),\n libc6 (>= 2.34), \
                 libssl3 (>= 3.0.0) | libssl1.1:amd64, sed, perl:any <!nocheck> [amd64 arm64]";
        let rels = parse_relations(f).unwrap();
        assert_eq!(rels.len(), 7);
        assert_eq!(rels[2].to_string(), "aziot-identity-service (= 1.5.6-1)");
        assert_eq!(rels[4].0.len(), 2);
        assert_eq!(rels[4].0[1].arch.as_deref(), Some("amd64"));
        assert_eq!(rels[4].to_string(), "libssl3 (>= 3.0.0) | libssl1.1:amd64");
        assert_eq!(rels[6].0[0].name, "perl");
        assert_eq!(rels[6].0[0].arch.as_deref(), Some("any"));
        assert!(parse_relations("  ").unwrap().is_empty());
        let old = parse_relations("foo (< 2), bar (> 1)").unwrap();
        assert_eq!(old[0].0[0].constraint.as_ref().unwrap().op, Op::Le);
        assert_eq!(old[1].0[0].constraint.as_ref().unwrap().op, Op::Ge);
    }

    #[test]
    fn errors_quote_the_relation() {
        assert!(parse_relations("foo,,bar")
            .unwrap_err()
            .contains("empty relation"));
        assert!(parse_relations("Foo")
            .unwrap_err()
            .contains("`Foo` is not a package name"));
        assert!(parse_relations("foo (>= 1.0")
            .unwrap_err()
            .contains("no closing `)`"));
        assert!(parse_relations("foo (1.0)")
            .unwrap_err()
            .contains("needs an operator"));
        assert!(parse_relations("foo (>= )")
            .unwrap_err()
            .contains("no version"));
        assert!(parse_relations("foo bar")
            .unwrap_err()
            .contains("unexpected `bar`"));
        assert!(parse_relations("foo | ")
            .unwrap_err()
            .contains("empty alternative"));
    }

    #[test]
    fn operators_hold() {
        let v = |s| DebVersion::parse(s).unwrap();
        assert!(Op::Ge.holds(&v("1.5.21-1"), &v("1.5.3")));
        assert!(!Op::Lt.holds(&v("1.0"), &v("1.0")));
        assert!(Op::Le.holds(&v("1.0"), &v("1.0")));
        assert!(Op::Gt.holds(&v("1.0"), &v("1.0~rc1")));
        assert!(Op::Eq.holds(&v("0:1.0"), &v("1.0")));
    }
}
