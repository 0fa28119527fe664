//! `edgefleet completions SHELL` and the hidden `edgefleet __complete-hosts`: shell completion generated from the
//! clap definitions, plus inventory host and group names for `--limit`.
//!
//! Owns the scripts (clap_complete's, with a bash wrapper for `--limit`) and the candidates for a partly typed
//! limit pattern. Dynamic completion is this hidden subcommand, not clap_complete's `CompleteEnv` (it is behind
//! the `unstable-dynamic` feature in the pinned 4.6): the bash script calls `edgefleet __complete-hosts -i INV
//! -- TYPED`, which loads the inventory with the real loader, never opening encrypted vars files
//! ([`Secrets::NotNeeded`]), and prints one candidate per line. zsh and fish get clap_complete's static scripts.
//! It must not implement inventory semantics (`inventory/` does) nor know another command's flags beyond
//! `-i`/`--inventory` and `-l`/`--limit`.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompleteHostsArgs, CompletionShell, CompletionsArgs};
use crate::error::{AppError, ExitCode};
use crate::inventory::{Inventory, Secrets};

/// The bash part clap_complete cannot write: `--limit` (`-l`, `--limit=`) completes the host and group names
/// of the inventory given on the same line (`-i X`, `-iX`, `--inventory X`, `--inventory=X`; else
/// `$EDGEFLEET_INVENTORY`), through `__complete-hosts`; everything else goes to clap_complete's `_edgefleet`.
/// Pattern parts after `:` or `,` (and an `&` or `!` before a name) are completed too: bash splits words at `:`
/// (COMP_WORDBREAKS), so each candidate is trimmed to the part bash is completing.
const BASH_LIMIT: &str = r#"
# --limit: host and group names from the inventory on the command line (edgefleet __complete-hosts).
_edgefleet_limit() {
    local cur="$2" line="${COMP_LINE:0:COMP_POINT}"
    local full="${line##*[[:space:]]}"
    local before="${line%"$full"}"
    before="${before%"${before##*[![:space:]]}"}"
    local prev="${before##*[[:space:]]}" pre="" value
    case "$full" in
        --limit=*) pre="--limit=" value="${full#--limit=}" ;;
        *)
            case "$prev" in
                -l|--limit|--limit=) value="$full" ;;
                *) _edgefleet "$@"; return ;;
            esac ;;
    esac
    local -a inv=()
    local i w n=${#COMP_WORDS[@]}
    for ((i = 1; i < n; i++)); do
        ((i == COMP_CWORD)) && continue
        w="${COMP_WORDS[i]}"
        case "$w" in
            -i|--inventory)
                ((i + 1 < n)) && [[ "${COMP_WORDS[i+1]}" == "=" ]] && ((i++))
                ((i + 1 < n && i + 1 != COMP_CWORD)) || continue
                ((i++))
                w="${COMP_WORDS[i]}" ;;
            -i?*) w="${w#-i}" ;;
            *) continue ;;
        esac
        w="${w#[\"\']}" w="${w%[\"\']}"
        [[ "$w" == "~/"* ]] && w="$HOME/${w#"~/"}"
        inv+=(-i "$w")
    done
    local exe="${COMP_WORDS[0]}"
    [[ "$exe" == "~/"* ]] && exe="$HOME/${exe#"~/"}"
    local drop="${full%"$cur"}" c x
    local -a found=()
    mapfile -t found < <("$exe" __complete-hosts "${inv[@]}" -- "$value" 2>/dev/null)
    COMPREPLY=()
    for c in "${found[@]}"; do
        x="$pre$c"
        COMPREPLY+=("${x#"$drop"}")
    done
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _edgefleet_limit -o nosort -o bashdefault -o default edgefleet
else
    complete -F _edgefleet_limit -o bashdefault -o default edgefleet
fi
"#;

/// The completion script for `shell`.
pub fn script(shell: CompletionShell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    let generator = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    clap_complete::generate(generator, &mut cmd, "edgefleet", &mut out);
    if shell == CompletionShell::Bash {
        out.extend_from_slice(BASH_LIMIT.as_bytes());
    }
    out
}

/// Run `edgefleet completions SHELL`.
pub fn run(args: CompletionsArgs) -> Result<ExitCode, AppError> {
    write_stdout(&script(args.shell))?;
    Ok(ExitCode::Ok)
}

/// Run `edgefleet __complete-hosts`: the completions of a partly typed `--limit` pattern, one per line.
pub fn complete_hosts(args: CompleteHostsArgs) -> Result<ExitCode, AppError> {
    let sources = Inventory::sources_from_env_or(&args.inventory)?;
    // Names only: no playbook directory, and encrypted vars files stay closed (no identity is ever asked for).
    let inv = Inventory::load_with(&sources, &[], Secrets::NotNeeded)?;
    let mut names: Vec<String> = inv.groups_map().into_keys().collect();
    for h in inv.host_names() {
        if !names.contains(&h) {
            names.push(h);
        }
    }
    let mut text = String::new();
    for c in candidates(&args.current, &names) {
        text.push_str(&c);
        text.push('\n');
    }
    write_stdout(text.as_bytes())?;
    Ok(ExitCode::Ok)
}

/// The completions of the limit pattern `typed` from `names`: its last part (after the last `:` or `,`, and
/// an `&` or `!` operator) is completed, the rest kept. A `~regex` or `@file` part is not a name: nothing.
pub fn candidates(typed: &str, names: &[String]) -> Vec<String> {
    let cut = typed.rfind([':', ',']).map(|i| i + 1).unwrap_or(0);
    let (head, part) = typed.split_at(cut);
    let op_len = part
        .chars()
        .next()
        .filter(|c| *c == '&' || *c == '!')
        .map(char::len_utf8)
        .unwrap_or(0);
    let (op, word) = part.split_at(op_len);
    if word.starts_with('~') || word.starts_with('@') {
        return Vec::new();
    }
    names
        .iter()
        .filter(|n| n.starts_with(word))
        .map(|n| format!("{head}{op}{n}"))
        .collect()
}

fn write_stdout(bytes: &[u8]) -> Result<(), AppError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|_| out.flush())
        .map_err(|e| AppError::Other(format!("cannot write output: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        [
            "all",
            "ungrouped",
            "edge",
            "edge_eu",
            "db",
            "edge-01",
            "edge-02",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn completes_the_last_part_of_a_pattern() {
        assert_eq!(
            candidates("edge-", &names()),
            vec!["edge-01".to_string(), "edge-02".to_string()]
        );
        assert_eq!(candidates("", &names()).len(), names().len());
        assert_eq!(
            candidates("edge:&d", &names()),
            vec!["edge:&db".to_string()]
        );
        assert_eq!(
            candidates("db,!edge_", &names()),
            vec!["db,!edge_eu".to_string()]
        );
        assert_eq!(
            candidates("edge:", &names()),
            names()
                .iter()
                .map(|n| format!("edge:{n}"))
                .collect::<Vec<_>>()
        );
        assert!(candidates("nothing", &names()).is_empty());
        assert!(candidates("~edge", &names()).is_empty());
        assert!(candidates("@failed", &names()).is_empty());
    }

    #[test]
    fn every_shell_gets_a_script_naming_the_subcommands() {
        for shell in [
            CompletionShell::Bash,
            CompletionShell::Zsh,
            CompletionShell::Fish,
        ] {
            let s = String::from_utf8(script(shell)).unwrap();
            for sub in ["play", "inventory", "lab", "completions", "man"] {
                assert!(s.contains(sub), "{shell:?} script lacks {sub}");
            }
            // The internal subcommand is not offered (bash calls it from its --limit wrapper only).
            if shell != CompletionShell::Bash {
                assert!(
                    !s.contains("__complete-hosts"),
                    "{shell:?} offers __complete-hosts"
                );
            }
        }
    }
}
