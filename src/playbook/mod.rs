//! Playbooks: plays, tasks, blocks, roles and handlers, from YAML to a typed model with file:line errors.
//!
//! Owns parsing and validating playbooks, task files and roles before anything is contacted: unknown keywords and
//! modules (with "did you mean"), module argument names (each module's typed arguments), template and condition
//! syntax, `serial`, role lookup. Every problem is reported at once as `file:line:col: message`. It must not
//! execute tasks or contact hosts.

pub mod load;
pub mod model;
pub mod role;

pub use load::{load_playbook, load_playbook_text, load_task_file, LoadCtx};
pub use model::*;

/// Suggest the closest candidate for a misspelt name (Levenshtein distance <= 2, or a common prefix).
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(&str, usize)> = None;
    for c in candidates {
        let d = levenshtein(name, c);
        let limit = if name.len() <= 4 { 1 } else { 2 };
        if d <= limit && best.is_none_or(|(_, bd)| d < bd) {
            best = Some((c, d));
        }
    }
    best.map(|(c, _)| c)
}

/// Edit distance between two strings.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("hostnme", ["hostname", "hosts"]),
            Some("hostname")
        );
        assert_eq!(did_you_mean("crt", ["cert", "pk"]), Some("cert"));
        assert_eq!(did_you_mean("zzzzzz", ["cert", "pk"]), None);
    }
}
