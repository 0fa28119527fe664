//! `edgefleet man --dir DIR`: man pages generated from the clap definitions (clap_mangen), so they cannot drift
//! from `--help`.
//!
//! Owns which pages exist and their file names: `edgefleet.1`, and one page per visible subcommand at every
//! level, named by its path (`edgefleet-play.1`, `edgefleet-lab-up.1`, like `git-remote`). Hidden (internal)
//! subcommands get none. It must not edit the text clap_mangen renders.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};
use crate::error::{AppError, ExitCode};

/// Write every page into `dir` (created if missing); returns the files written, the top page first.
pub fn write_pages(dir: &Path) -> Result<Vec<PathBuf>, AppError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        AppError::Other(format!(
            "cannot create the man page directory {}: {e}",
            dir.display()
        ))
    })?;
    // `build` names every subcommand by its path (display name `edgefleet-lab-up`, bin name
    // `edgefleet lab up`): clap_mangen takes the page title and file name from the first, the synopsis from
    // the second.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    write_tree(&cmd, dir, &mut written)?;
    Ok(written)
}

fn write_tree(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<(), AppError> {
    let path = clap_mangen::Man::new(cmd.clone())
        .generate_to(dir)
        .map_err(|e| {
            AppError::Other(format!(
                "cannot write the man page of `{}` into {}: {e}",
                cmd.get_bin_name().unwrap_or(cmd.get_name()),
                dir.display()
            ))
        })?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_tree(sub, dir, written)?;
    }
    Ok(())
}

/// Run `edgefleet man`.
pub fn run(args: ManArgs) -> Result<ExitCode, AppError> {
    for p in write_pages(&args.dir)? {
        println!("{}", p.display());
    }
    Ok(ExitCode::Ok)
}
