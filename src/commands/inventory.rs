//! `edgefleet inventory`: print an inventory like `ansible-inventory` does.
//!
//! Owns the command's flow: resolve sources (`-i` or `$EDGEFLEET_INVENTORY`), load, apply `--limit`, print
//! `--list` / `--host` JSON or the `--graph` tree, warnings on stderr (through [`super::print_warning`]). Every printed byte goes through the
//! secret redactor. It must not implement inventory semantics itself (`inventory/mod.rs` does).

use std::io::Write;
use std::path::PathBuf;

use crate::cli::InventoryArgs;
use crate::error::{AppError, ExitCode};
use crate::redact::redact;

use super::print_warning;

use crate::inventory::{ansible_json, Inventory, Secrets};

fn print(text: &str) -> Result<(), AppError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", redact(text))
        .and_then(|_| out.flush())
        .map_err(|e| AppError::Other(format!("cannot write output: {e}")))
}

/// Run `edgefleet inventory`.
pub fn run(args: InventoryArgs) -> Result<ExitCode, AppError> {
    let sources = Inventory::sources_from_env_or(&args.inv.inventory)?;
    crate::vars::secrets::configure(&args.identity);
    // Like ansible-inventory, the playbook directory defaults to the current one for host variables; its
    // group_vars only show on --graph group lines when --playbook-dir is given.
    let (pb_dirs, explicit): (Vec<PathBuf>, bool) = match &args.playbook_dir {
        Some(d) => (vec![d.clone()], true),
        None => (
            std::env::current_dir().map(|d| vec![d]).unwrap_or_default(),
            false,
        ),
    };
    // The group tree shows structure, not values: it needs no secret (and no age identity) unless --vars.
    let secrets = if args.graph.is_some() && !args.vars {
        Secrets::NotNeeded
    } else {
        Secrets::Required
    };
    let mut inv = Inventory::load_with(&sources, &pb_dirs, secrets)?;
    inv.set_graph_playbook_vars(explicit);
    for w in inv.warnings() {
        print_warning(w);
    }
    for w in super::run::secrets_warnings() {
        print_warning(&w);
    }
    if let Some(pattern) = &args.host {
        // --host ignores --limit, as in Ansible.
        let sel = inv.select(pattern)?;
        if sel.hosts.len() != 1 {
            return Err(AppError::Usage(format!(
                "You must pass a single valid host to --host parameter ('{pattern}' matches {} hosts)",
                sel.hosts.len()
            )));
        }
        let vars = inv.host_output_vars(&sel.hosts[0]);
        print(&ansible_json(&serde_json::Value::Object(vars)))?;
    } else if let Some(group) = &args.graph {
        // --graph ignores --limit, as in Ansible.
        let text = inv
            .graph(group, args.vars)
            .map_err(|d| AppError::Usage(d.message))?;
        print(&text)?;
    } else {
        let limited = match &args.inv.limit {
            Some(l) => {
                let sel = inv.select(l)?;
                for w in &sel.warnings {
                    print_warning(w);
                }
                Some(sel.hosts)
            }
            None => None,
        };
        print(&ansible_json(&inv.list_json(limited.as_deref())))?;
    }
    Ok(ExitCode::Ok)
}
