//! The `docker` CLI's argument reader: flags, `--name VALUE` / `--name=VALUE` options and combined short flags,
//! removed from the argument list as each subcommand consumes them.
//!
//! A leaf of the `docker` program: it knows no subcommand, state or output.

/// The docker CLI's remaining arguments, consumed option by option.
pub(super) struct Cli {
    /// What is left to parse.
    pub(super) args: Vec<String>,
}

impl Cli {
    /// Remove every occurrence of one of the flags `names`; returns whether there was one.
    pub(super) fn flag(&mut self, names: &[&str]) -> bool {
        let mut found = false;
        self.args.retain(|a| {
            if names.contains(&a.as_str()) {
                found = true;
                false
            } else {
                true
            }
        });
        found
    }

    /// Remove every `--name VALUE` / `--name=VALUE` / `-n VALUE` occurrence; returns the values.
    pub(super) fn values(&mut self, names: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.args.len() {
            let a = self.args[i].clone();
            if names.contains(&a.as_str()) && i + 1 < self.args.len() {
                out.push(self.args.remove(i + 1));
                self.args.remove(i);
                continue;
            }
            if let Some((k, v)) = a.split_once('=') {
                if names.contains(&k) {
                    out.push(v.to_string());
                    self.args.remove(i);
                    continue;
                }
            }
            i += 1;
        }
        out
    }

    /// Expand combined short flags (`-aq` -> `-a -q`).
    pub(super) fn expand_short(&mut self, letters: &str) {
        let mut out = Vec::new();
        for a in self.args.drain(..) {
            if a.len() > 2
                && a.starts_with('-')
                && !a.starts_with("--")
                && a[1..].chars().all(|c| letters.contains(c))
            {
                for c in a[1..].chars() {
                    out.push(format!("-{c}"));
                }
            } else {
                out.push(a);
            }
        }
        self.args = out;
    }
}
