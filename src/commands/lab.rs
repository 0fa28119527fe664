//! `edgefleet lab ...`: the command-line face of the lab.
//!
//! Owns turning `LabCommand`s into calls on [`Lab`] and printing their results for people. It must not contain
//! lab logic (that lives in the library API, which tests and `lab run` use too).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use super::run::{load, parse_extra_vars, report_options, run_loaded, Mode};
use crate::cli::{LabArgs, LabCommand};
use crate::error::{AppError, ExitCode};
use crate::lab::{backend_name, supervisor, Lab, LabConfig, LabError};

fn app(e: LabError) -> AppError {
    match e {
        LabError::UnknownDevice(_) => AppError::Usage(e.to_string()),
        e => AppError::Other(e.to_string()),
    }
}

/// Run one `edgefleet lab` subcommand.
pub fn run(args: LabArgs) -> Result<ExitCode, AppError> {
    match args.command {
        LabCommand::Up { dir, opts } => {
            let t0 = Instant::now();
            let cfg = LabConfig {
                dir: dir.clone(),
                devices: opts.devices,
                backend: opts.backend,
                user: opts.user,
                exe: None,
                bastion: opts.bastion,
                bare: opts.bare,
                airgapped: opts.airgapped,
            };
            eprintln!(
                "lab: bringing up {} devices in {} ...",
                cfg.devices,
                dir.display()
            );
            let lab = Lab::up(&cfg).map_err(app)?;
            let d = lab.devices();
            let first = d
                .first()
                .map(|d| {
                    if d.port == 22 {
                        d.address.to_string()
                    } else {
                        format!("-p {} {}", d.port, d.address)
                    }
                })
                .unwrap_or_default();
            println!(
                "lab up: {} devices ({} backend, login {}) in {:.1}s",
                d.len(),
                backend_name(lab.backend()),
                lab.user(),
                t0.elapsed().as_secs_f64()
            );
            println!("  inventory:   {}", lab.inventory_path().display());
            println!("  known_hosts: {}", lab.known_hosts_path().display());
            println!("  client key:  {}", lab.client_key_path().display());
            println!("  age key:     {}", lab.age_identity_path().display());
            println!("  ssh config:  {}", lab.ssh_config_path().display());
            if lab.bastion().is_none() {
                println!(
                    "  try:         ssh -F {} {first} hostname",
                    lab.ssh_config_path().display(),
                );
            }
            if let Some(b) = lab.bastion() {
                println!(
                    "  bastion:     {b} (devices are reachable only through it: ssh -F {} -J root@{} {}@{} hostname)",
                    lab.ssh_config_path().display(),
                    b.ip(),
                    lab.user(),
                    first
                );
            }
            println!(
                "  provision:   edgefleet play playbooks/provision.yml -i {} --identity {}",
                lab.inventory_path().display(),
                lab.age_identity_path().display()
            );
            println!("  stop:        edgefleet lab down --dir {}", dir.display());
            lab.detach();
            Ok(ExitCode::Ok)
        }
        LabCommand::Status { dir } => status(&dir),
        LabCommand::Down { dir } => {
            match Lab::open(&dir) {
                Ok(lab) => {
                    let n = lab.devices().len();
                    lab.down().map_err(app)?;
                    println!("lab down: {n} devices stopped in {}", dir.display());
                }
                Err(LabError::NotRunning(msg)) => {
                    let n = Lab::cleanup(&dir).map_err(app)?;
                    if n > 0 {
                        println!(
                            "lab in {} was not running; killed {n} leftover device processes",
                            dir.display()
                        );
                    } else {
                        println!("{msg}");
                    }
                }
                Err(e) => return Err(app(e)),
            }
            Ok(ExitCode::Ok)
        }
        LabCommand::Fault {
            device,
            kind,
            dir,
            ms,
            value,
        } => {
            let lab = Lab::open(&dir).map_err(app)?;
            lab.fault_with(&device, kind, ms, value.as_deref())
                .map_err(app)?;
            println!("{device}: {}", supervisor::fault_name(kind));
            Ok(ExitCode::Ok)
        }
        LabCommand::Serve { dir } => match supervisor::serve(&dir) {
            Ok(0) => Ok(ExitCode::Ok),
            Ok(_) => Ok(ExitCode::Error),
            Err(e) => Err(app(e)),
        },
        LabCommand::Run {
            playbooks,
            dir,
            opts,
            keep,
            extra_vars,
            out,
        } => run_lab(playbooks, dir, opts, keep, extra_vars, out),
    }
}

fn status(dir: &Path) -> Result<ExitCode, AppError> {
    let lab = Lab::open(dir).map_err(app)?;
    let st = lab.status().map_err(app)?;
    let mut out = String::new();
    let up = st.iter().filter(|s| s.up).count();
    let _ = writeln!(
        out,
        "lab {}: {} devices, {} up, {} backend, login {}, supervisor pid {}",
        lab.dir().display(),
        st.len(),
        up,
        backend_name(lab.backend()),
        lab.user(),
        lab.supervisor_pid()
    );
    let _ = writeln!(
        out,
        "{:<10} {:<17} {:<5} {:<8} {:<24} COUNTERS",
        "DEVICE", "ADDRESS", "STATE", "PROV", "FAULTS"
    );
    for s in &st {
        let faults = if s.faults.is_empty() {
            "-".to_string()
        } else {
            s.faults.join(",")
        };
        let counters: Vec<String> = s
            .counters
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(
            out,
            "{:<10} {:<17} {:<5} {:<8} {:<24} {}",
            s.device.name,
            format!("{}:{}", s.device.address, s.device.port),
            if s.up { "up" } else { "down" },
            s.device.provisioning,
            faults,
            if counters.is_empty() {
                "-".to_string()
            } else {
                counters.join(" ")
            }
        );
    }
    // A closed pipe (`lab status | head`) is not an error.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
    Ok(ExitCode::Ok)
}

/// `edgefleet lab run`: bring a lab up (or reuse a running one), run the playbooks against it with the lab's
/// inventory and age identity, print the report, and take the lab down again (unless `--keep`, or the lab was
/// already running before).
fn run_lab(
    playbooks: Vec<std::path::PathBuf>,
    dir: std::path::PathBuf,
    opts: crate::cli::LabUpOptions,
    keep: bool,
    extra_vars: Vec<String>,
    out: crate::cli::OutputOptions,
) -> Result<ExitCode, AppError> {
    let playbooks = if playbooks.is_empty() {
        vec![std::path::PathBuf::from("playbooks/provision.yml")]
    } else {
        playbooks
    };
    for p in &playbooks {
        if !p.exists() {
            return Err(AppError::Usage(format!(
                "playbook {} not found (run from the edgefleet checkout, or name the playbook)",
                p.display()
            )));
        }
    }
    let out = report_options(&out);
    let human = out.output == crate::report::OutputFormat::Text;
    let (lab, started) = match Lab::open(&dir) {
        Ok(lab)
            if lab
                .devices()
                .iter()
                .all(|d| lab.is_up(&d.name).unwrap_or(false)) =>
        {
            (lab, false)
        }
        _ => {
            let cfg = LabConfig {
                dir: dir.clone(),
                devices: opts.devices,
                backend: opts.backend,
                user: opts.user,
                exe: None,
                bastion: opts.bastion,
                bare: opts.bare,
                airgapped: opts.airgapped,
            };
            let t0 = Instant::now();
            if human {
                eprintln!(
                    "lab: bringing up {} devices in {} ...",
                    cfg.devices,
                    dir.display()
                );
            }
            let lab = Lab::up(&cfg).map_err(app)?;
            if human {
                eprintln!(
                    "lab: {} devices up ({} backend) in {:.1}s",
                    lab.devices().len(),
                    backend_name(lab.backend()),
                    t0.elapsed().as_secs_f64()
                );
            }
            (lab, true)
        }
    };
    crate::vars::secrets::configure(&[lab.age_identity_path()]);
    let result = (|| {
        let extra = parse_extra_vars(&extra_vars)?;
        let loaded = load(&[lab.inventory_path()], None, &playbooks)?;
        let run_opts = crate::executor::RunOptions {
            extra_vars: extra,
            limit: loaded.limit.clone(),
            verbose: out.verbose,
            log_commands: out.log.is_some() || out.verbose >= 3,
            ..crate::executor::RunOptions::default()
        };
        let names: Vec<String> = playbooks.iter().map(|p| p.display().to_string()).collect();
        run_loaded(
            &loaded,
            run_opts,
            &out,
            crate::transport::ssh::SshOptions::default(),
            Mode::Run,
            &names,
            None,
        )
    })();
    if started && !keep {
        if human {
            eprintln!("lab: taking the devices down");
        }
        lab.down().map_err(app)?;
    } else {
        if human {
            eprintln!(
                "lab: left running in {} (edgefleet lab down --dir {} stops it)",
                dir.display(),
                dir.display()
            );
        }
        lab.detach();
    }
    result.map(|(code, _)| code)
}
