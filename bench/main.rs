//! The benchmark runner: speed and memory at fleet scale, on lab fleets of both backends.
//!
//! `cargo run --release --bin bench` measures, for the shipped `playbooks/provision.yml` on fleets of
//! 10/100/1000 embedded devices and 10/100/200 OpenSSH devices: `ping` (the floor), run 1 (everything changes),
//! run 2 (nothing changes), run 3 (one group var changed: a subset re-applies), `playbooks/verify.yml` alone, and
//! for scheduled runs (issue 14's targets) the read-only `playbooks/maintenance.yml` (ratio to verify.yml, controller
//! CPU per device) and `certs report` (ratio to ping).
//! Each measurement is the median of `--repeat` runs (default 3) of a separate edgefleet process: wall time,
//! controller CPU (user+sys of that process only: the devices' own work runs in other processes), peak RSS,
//! exec round trips per device and bytes sent per device (from the run's JSON report). It prints a table and
//! writes `bench/results/latest.json`. Runs use edgefleet's default `--forks` (100) unless `--forks N` is given:
//! on 2 cores more concurrency only adds memory (about 55 KiB of russh state per open connection) and time.
//!
//! The binary is also edgefleet itself (`bench lab ...`, `bench __sim ...`), so the lab it starts runs the same
//! release build as the measured runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use edgefleet::lab::{Lab, LabConfig};
use edgefleet::lab::{LabBackend, LabUser};
use serde_json::{json, Value};

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Acting as edgefleet (for the lab's supervisor and device programs, and the measured runs).
    if let Some(first) = args.get(1).map(|a| a.to_string_lossy().into_owned()) {
        if first == "__sim" {
            std::process::exit(edgefleet::lab::sim::main(&args[2..]));
        }
        if ["lab", "play", "ping", "inventory", "vault", "certs"].contains(&first.as_str()) {
            let code = edgefleet::commands::main(args).code();
            edgefleet::commands::report_peak_rss();
            std::process::exit(code);
        }
    }
    let opts = match Opts::parse(&args[1..]) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench: {e}\n\n{USAGE}");
            std::process::exit(5);
        }
    };
    if let Err(e) = run(&opts) {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

const USAGE: &str = "usage: bench [--backend embedded|openssh|both] [--sizes 10,100,1000] [--openssh-sizes 10,100,200] [--repeat 3] [--forks N] [--out FILE]\n  --forks: passed to every measured run (default: edgefleet's own default, 100)";

struct Opts {
    backends: Vec<LabBackend>,
    sizes: Vec<usize>,
    openssh_sizes: Vec<usize>,
    repeat: usize,
    /// `--forks` for the measured runs; `None` measures what an operator gets by default.
    forks: Option<usize>,
    out: PathBuf,
}

impl Opts {
    fn parse(a: &[std::ffi::OsString]) -> Result<Opts, String> {
        let mut o = Opts {
            backends: vec![LabBackend::Embedded, LabBackend::Openssh],
            sizes: vec![10, 100, 1000],
            openssh_sizes: vec![10, 100, 200],
            repeat: 3,
            forks: None,
            out: PathBuf::from("bench/results/latest.json"),
        };
        let mut it = a.iter().map(|s| s.to_string_lossy().into_owned());
        let list = |s: Option<String>| -> Result<Vec<usize>, String> {
            s.ok_or("missing value")?
                .split(',')
                .map(|x| {
                    x.trim()
                        .parse::<usize>()
                        .map_err(|e| format!("bad size {x}: {e}"))
                })
                .collect()
        };
        while let Some(k) = it.next() {
            match k.as_str() {
                "--backend" => {
                    o.backends = match it.next().as_deref() {
                        Some("embedded") => vec![LabBackend::Embedded],
                        Some("openssh") => vec![LabBackend::Openssh],
                        Some("both") => vec![LabBackend::Embedded, LabBackend::Openssh],
                        other => return Err(format!("--backend {other:?}")),
                    }
                }
                "--sizes" => o.sizes = list(it.next())?,
                "--openssh-sizes" => o.openssh_sizes = list(it.next())?,
                "--repeat" => {
                    o.repeat = it
                        .next()
                        .and_then(|r| r.parse().ok())
                        .filter(|r| *r >= 1)
                        .ok_or("--repeat needs a number >= 1")?
                }
                "--forks" => {
                    o.forks = Some(
                        it.next()
                            .and_then(|r| r.parse().ok())
                            .filter(|r| *r >= 1)
                            .ok_or("--forks needs a number >= 1")?,
                    )
                }
                "--out" => o.out = PathBuf::from(it.next().ok_or("--out needs a file")?),
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => return Err(format!("unknown option {other}")),
            }
        }
        Ok(o)
    }
}

/// One measured process.
#[derive(Debug, Clone, Default)]
struct Sample {
    wall_ms: f64,
    cpu_ms: f64,
    rss_kib: u64,
    rt_per_device: f64,
    rt_max: u64,
    bytes_per_device: f64,
    exit: i32,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

fn summarize(samples: &[Sample]) -> Value {
    json!({
        "wall_ms": median(samples.iter().map(|s| s.wall_ms).collect()),
        "cpu_ms": median(samples.iter().map(|s| s.cpu_ms).collect()),
        "peak_rss_mib": median(samples.iter().map(|s| s.rss_kib as f64 / 1024.0).collect()),
        "round_trips_per_device": median(samples.iter().map(|s| s.rt_per_device).collect()),
        "round_trips_max": samples.iter().map(|s| s.rt_max).max().unwrap_or(0),
        "bytes_sent_per_device": median(samples.iter().map(|s| s.bytes_per_device).collect()),
        "runs": samples.len(),
        "all_exit_zero": samples.iter().all(|s| s.exit == 0),
    })
}

/// Run `exe args...`, measuring wall time and the child's own rusage; read the JSON report when given.
fn measure(
    exe: &Path,
    args: &[String],
    report: Option<&Path>,
    cwd: &Path,
) -> Result<Sample, String> {
    let rss_file = std::env::temp_dir().join(format!("edgefleet-bench-rss-{}", std::process::id()));
    let _ = std::fs::remove_file(&rss_file);
    let t0 = Instant::now();
    let child = Command::new(exe)
        .args(args)
        .env("EDGEFLEET_PEAK_RSS_FILE", &rss_file)
        .current_dir(cwd)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child with valid out-pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall_ms = t0.elapsed().as_secs_f64() * 1000.0;
    if r < 0 {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    let exit = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    let own_peak = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let _ = std::fs::remove_file(&rss_file);
    let mut s = Sample {
        wall_ms,
        cpu_ms: tv(ru.ru_utime) + tv(ru.ru_stime),
        rss_kib: own_peak.unwrap_or(ru.ru_maxrss as u64),
        exit,
        ..Sample::default()
    };
    if exit != 0 && exit != 2 {
        return Err(format!(
            "{} {} exited {exit}: {}",
            exe.display(),
            args.join(" "),
            err.trim()
        ));
    }
    if let Some(rp) = report {
        let v: Value =
            serde_json::from_slice(&std::fs::read(rp).map_err(|e| format!("report: {e}"))?)
                .map_err(|e| format!("report: {e}"))?;
        let devs = v["devices"].as_array().cloned().unwrap_or_default();
        let n = devs.len().max(1) as f64;
        s.rt_per_device = devs
            .iter()
            .map(|d| d["round_trips"].as_u64().unwrap_or(0) as f64)
            .sum::<f64>()
            / n;
        s.rt_max = devs
            .iter()
            .map(|d| d["round_trips"].as_u64().unwrap_or(0))
            .max()
            .unwrap_or(0);
        s.bytes_per_device = devs
            .iter()
            .map(|d| d["bytes_sent"].as_u64().unwrap_or(0) as f64)
            .sum::<f64>()
            / n;
    }
    Ok(s)
}

fn run(o: &Opts) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let work_dir = std::env::temp_dir().join(format!("edgefleet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work_dir).map_err(|e| e.to_string())?;
    let work = WorkDir(work_dir);
    let mut results = Vec::new();
    println!(
        "edgefleet bench: {} ({} CPUs), repeat {}, forks {}",
        machine(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        o.repeat,
        o.forks.map_or("default".to_string(), |f| f.to_string())
    );
    for &backend in &o.backends {
        let sizes = match backend {
            LabBackend::Embedded => &o.sizes,
            LabBackend::Openssh => &o.openssh_sizes,
        };
        for &n in sizes {
            let name = format!(
                "{}-{n}",
                if backend == LabBackend::Embedded {
                    "embedded"
                } else {
                    "openssh"
                }
            );
            eprintln!("bench: {name} ...");
            let r = bench_one(&exe, &repo, work.path(), backend, n, o.repeat, o.forks)?;
            print_row(&name, &r);
            results.push(json!({"fleet": name, "backend": if backend == LabBackend::Embedded {"embedded"} else {"openssh"}, "devices": n, "results": r}));
        }
    }
    let doc = json!({
        "version": 1,
        "machine": machine(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "repeat": o.repeat,
        "forks": o.forks,
        "edgefleet": env!("CARGO_PKG_VERSION"),
        "fleets": results,
    });
    if let Some(p) = o.out.parent() {
        let _ = std::fs::create_dir_all(p);
    }
    std::fs::write(
        &o.out,
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n",
    )
    .map_err(|e| format!("{}: {e}", o.out.display()))?;
    println!("\nwrote {}", o.out.display());
    Ok(())
}

/// The bench's scratch directory, removed at the end.
struct WorkDir(PathBuf);

impl WorkDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|k| format!("{} GiB", k / 1024 / 1024))
        .unwrap_or_default();
    format!("{model}, {mem}")
}

fn up(exe: &Path, dir: &Path, backend: LabBackend, n: usize) -> Result<Lab, String> {
    let _ = Lab::cleanup(dir);
    let _ = std::fs::remove_dir_all(dir);
    let mut cfg = LabConfig::new(dir, n);
    cfg.backend = backend;
    cfg.user = LabUser::Root;
    cfg.exe = Some(exe.to_path_buf());
    Lab::up(&cfg).map_err(|e| format!("lab up ({n} devices): {e}"))
}

/// The arguments of one measured edgefleet run: `command` (e.g. `["ping"]` or `["play", PLAYBOOK]`) against the
/// lab's inventory, with its age identity, plain progress and a JSON report to read the round trips from.
fn run_args(lab: &Lab, command: &[&str], report: &Path, forks: Option<usize>) -> Vec<String> {
    let mut a: Vec<String> = command.iter().map(|c| c.to_string()).collect();
    a.extend([
        "-i".into(),
        lab.inventory_path().display().to_string(),
        "--identity".into(),
        lab.age_identity_path().display().to_string(),
        "--progress".into(),
        "plain".into(),
        "--report".into(),
        report.display().to_string(),
    ]);
    if let Some(f) = forks {
        a.extend(["--forks".into(), f.to_string()]);
    }
    a
}

fn bench_one(
    exe: &Path,
    repo: &Path,
    work: &Path,
    backend: LabBackend,
    n: usize,
    repeat: usize,
    forks: Option<usize>,
) -> Result<Value, String> {
    let dir = work.join(format!("lab-{n}"));
    let report = work.join("report.json");
    let mut ping = Vec::new();
    let mut run1 = Vec::new();
    let mut run2 = Vec::new();
    let mut run3 = Vec::new();
    let mut verify = Vec::new();
    let mut maint = Vec::new();
    let mut certs = Vec::new();
    let mut lab_up_ms = Vec::new();
    for rep in 0..repeat {
        // Run 1 needs fresh devices each time.
        let t0 = Instant::now();
        let lab = up(exe, &dir, backend, n)?;
        lab_up_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        let ping_args = run_args(&lab, &["ping"], &report, forks);
        ping.push(measure(exe, &ping_args, Some(&report), repo)?);
        run1.push(measure(
            exe,
            &run_args(&lab, &["play", "playbooks/provision.yml"], &report, forks),
            Some(&report),
            repo,
        )?);
        run2.push(measure(
            exe,
            &run_args(&lab, &["play", "playbooks/provision.yml"], &report, forks),
            Some(&report),
            repo,
        )?);
        // Run 3: one group var changes (alternating values), so the `dps` half of the fleet re-applies.
        let gv = lab
            .inventory_path()
            .parent()
            .map(|p| p.join("group_vars"))
            .unwrap_or_default();
        let _ = std::fs::create_dir_all(&gv);
        std::fs::write(
            gv.join("dps.yml"),
            format!("iotedge_agent_env:\n  BenchRound: \"{rep}\"\n"),
        )
        .map_err(|e| e.to_string())?;
        run3.push(measure(
            exe,
            &run_args(&lab, &["play", "playbooks/provision.yml"], &report, forks),
            Some(&report),
            repo,
        )?);
        verify.push(measure(
            exe,
            &run_args(&lab, &["play", "playbooks/verify.yml"], &report, forks),
            Some(&report),
            repo,
        )?);
        // The nightly read-only maintenance run. Lab devices share this machine's disk, so the disk thresholds are
        // lifted (as in the README's lab example) and the lab deployment's edgeHub store waived.
        let mut maint_args = run_args(&lab, &["play", "playbooks/maintenance.yml"], &report, forks);
        maint_args.extend(["-e".into(), MAINTENANCE_LAB_VARS.into()]);
        maint.push(measure(exe, &maint_args, Some(&report), repo)?);
        let mut certs_args: Vec<String> = ["certs", "report", "--format", "json", "-i"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        certs_args.push(lab.inventory_path().display().to_string());
        certs_args.extend([
            "--identity".into(),
            lab.age_identity_path().display().to_string(),
        ]);
        if let Some(f) = forks {
            certs_args.extend(["--forks".into(), f.to_string()]);
        }
        certs.push(measure(exe, &certs_args, None, repo)?);
        lab.down().map_err(|e| e.to_string())?;
    }
    Ok(json!({
        "devices": n,
        "lab_up_ms": median(lab_up_ms),
        "ping": summarize(&ping),
        "run1_all_change": summarize(&run1),
        "run2_no_change": summarize(&run2),
        "run3_group_change": summarize(&run3),
        "verify_only": summarize(&verify),
        "maintenance_only": summarize(&maint),
        "certs_report": summarize(&certs),
    }))
}

fn print_row(name: &str, r: &Value) {
    println!(
        "\n{name} (lab up {:.1}s)",
        r["lab_up_ms"].as_f64().unwrap_or(0.0) / 1000.0
    );
    println!(
        "  {:<18} {:>9} {:>9} {:>9} {:>11} {:>8} {:>12}",
        "measurement", "wall s", "cpu s", "rss MiB", "rt/device", "rt max", "bytes/device"
    );
    for k in [
        "ping",
        "run1_all_change",
        "run2_no_change",
        "run3_group_change",
        "verify_only",
        "maintenance_only",
        "certs_report",
    ] {
        let m = &r[k];
        println!(
            "  {:<18} {:>9.2} {:>9.2} {:>9.1} {:>11.2} {:>8} {:>12.0}{}",
            k,
            m["wall_ms"].as_f64().unwrap_or(0.0) / 1000.0,
            m["cpu_ms"].as_f64().unwrap_or(0.0) / 1000.0,
            m["peak_rss_mib"].as_f64().unwrap_or(0.0),
            m["round_trips_per_device"].as_f64().unwrap_or(0.0),
            m["round_trips_max"].as_u64().unwrap_or(0),
            m["bytes_sent_per_device"].as_f64().unwrap_or(0.0),
            if m["all_exit_zero"].as_bool().unwrap_or(false) {
                ""
            } else {
                "  (some runs failed)"
            }
        );
    }
    // Issue 14's targets: maintenance within 1.3x of verify.yml's wall, certs report within 1.3x of ping's,
    // maintenance under 10 ms of controller CPU per device.
    let wall = |k: &str| r[k]["wall_ms"].as_f64().unwrap_or(0.0);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let n = r["devices"].as_f64().unwrap_or(0.0);
    println!(
        "  maintenance/verify wall {:.2}x (target <= 1.3), certs report/ping wall {:.2}x (target <= 1.3), maintenance cpu {:.1} ms/device (target < 10)",
        ratio(wall("maintenance_only"), wall("verify_only")),
        ratio(wall("certs_report"), wall("ping")),
        ratio(r["maintenance_only"]["cpu_ms"].as_f64().unwrap_or(0.0), n),
    );
}

/// Extra vars of the measured maintenance run on a lab (see `bench_one`).
const MAINTENANCE_LAB_VARS: &str = r#"{"maintenance_check_waivers": {"edge-hub-storage-mounted-from-host": "lab deployment"}, "maintenance_disk_warn_percent": 100, "maintenance_disk_critical_percent": 100}"#;
