//! The simulated package tools over the device's package database (`pkgdb`): `dpkg -i FILE...` (reads the
//! real control data of each `.deb`, refuses a wrong architecture or an unmet `Pre-Depends` before unpacking,
//! leaves a package whose `Depends` are unmet unpacked but unconfigured, with dpkg's messages and exit codes),
//! `dpkg --print-architecture`, `dpkg-query -W [-f FORMAT] PACKAGE...` (`${Package}`, `${Version}`,
//! `${Architecture}`, `${db:Status-Abbrev}`, `${Status}` and the `\t`/`\n` escapes), and `apt-mark
//! hold|unhold|showhold`.
//!
//! Configuring `moby-engine` starts docker as its postinst does; the units and commands a package brings exist
//! only once it is configured (`pkgdb`). A device without `--bare` has the default runtime (the lab's
//! `old-runtime` state writes older versions). It must not import another program.

use std::collections::BTreeMap;

use super::debfile::{self, Alt, DebControl};
use super::pkgdb::{self, DpkgExtra};
use super::program::Io;
#[cfg(test)]
use super::state::IOTEDGE_VERSION;
use super::state::{State, StateError};

fn render(format: &str, name: &str, version: &str, arch: &str, status: (&str, &str)) -> String {
    format
        .replace("${Package}", name)
        .replace("${binary:Package}", name)
        .replace("${Version}", version)
        .replace("${Architecture}", arch)
        .replace("${db:Status-Abbrev}", status.0)
        .replace("${Status}", status.1)
        .replace("\\t", "\t")
        .replace("\\n", "\n")
}

/// `dpkg-query ...`.
pub fn query(st: &mut State, args: &[String], io: &mut Io) -> Result<i32, StateError> {
    let mut show = false;
    let mut format = "${binary:Package}\t${Version}\n".to_string();
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-W" || a == "--show" {
            show = true;
        } else if let Some(f) = a
            .strip_prefix("-f=")
            .or_else(|| a.strip_prefix("--showformat="))
        {
            format = f.to_string();
        } else if a == "-f" || a == "--showformat" {
            format = it.next().cloned().unwrap_or_default();
        } else if a.starts_with('-') {
            io.errln(format!("dpkg-query: error: unknown option {a}"));
            return Ok(2);
        } else {
            names.push(a.clone());
        }
    }
    if !show {
        io.errln("dpkg-query: error: need an action option\n\nType dpkg-query --help for help about querying packages.");
        return Ok(2);
    }
    let pkgs = st.packages()?;
    let x = pkgdb::extra(st)?;
    let arch = pkgdb::device_arch(st);
    let line = |n: &str| -> Option<String> {
        let hold = x.holds.contains(n);
        let (v, status) = match (pkgs.get(n), x.unpacked.get(n)) {
            (Some(v), _) if hold => (v, ("hi ", "hold ok installed")),
            (Some(v), _) => (v, ("ii ", "install ok installed")),
            (None, Some(v)) => (v, ("iU ", "install ok unpacked")),
            (None, None) => return None,
        };
        let a = x.architecture.get(n).map(String::as_str).unwrap_or(&arch);
        Some(render(&format, n, v, a, status))
    };
    let mut code = 0;
    if names.is_empty() {
        let mut all: Vec<&String> = pkgs.keys().chain(x.unpacked.keys()).collect();
        all.sort();
        all.dedup();
        for n in all {
            io.out(line(n).unwrap_or_default());
        }
        return Ok(0);
    }
    for n in names {
        match line(&n) {
            Some(l) => io.out(l),
            None => {
                io.errln(format!("dpkg-query: no packages found matching {n}"));
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `dpkg ...`: `-i`/`--install`, `--print-architecture`, `--compare-versions`.
pub fn dpkg(st: &mut State, args: &[String], io: &mut Io) -> Result<i32, StateError> {
    let Some(action) = args.first() else {
        io.errln("dpkg: error: need an action option\n\nType dpkg --help for help about installing and deinstalling packages [*];\nUse 'apt' or 'aptitude' for user-friendly package management;\nType dpkg -Dhelp for a list of dpkg debug flag values;\nType dpkg --force-help for a list of forcing options;\nType dpkg-deb --help for help about manipulating *.deb files;\n\nOptions marked [*] produce a lot of output - pipe it through 'less' or 'more' !");
        return Ok(2);
    };
    match action.as_str() {
        "--print-architecture" => {
            io.outln(pkgdb::device_arch(st));
            Ok(0)
        }
        "--compare-versions" if args.len() == 4 => {
            let o = debfile::compare_versions(&args[1], &args[3]);
            let ok = match args[2].as_str() {
                "lt" | "<<" => o.is_lt(),
                "le" | "<=" => o.is_le(),
                "eq" | "=" => o.is_eq(),
                "ne" => o.is_ne(),
                "ge" | ">=" => o.is_ge(),
                "gt" | ">>" => o.is_gt(),
                other => {
                    io.errln(format!("dpkg: error: unknown relation '{other}'"));
                    return Ok(2);
                }
            };
            Ok(if ok { 0 } else { 1 })
        }
        "-i" | "--install" => install(st, &args[1..], io),
        other => {
            io.errln(format!("dpkg: error: unknown option {other}"));
            Ok(2)
        }
    }
}

/// Whether a relation holds against the packages that count (name -> version), with `Provides`.
fn satisfied(
    alts: &[Alt],
    have: &BTreeMap<String, String>,
    provides: &BTreeMap<String, String>,
) -> bool {
    alts.iter().any(|a| {
        have.get(&a.name).is_some_and(|v| a.allows(v))
            || provides.iter().any(|(p, prov)| {
                have.contains_key(p)
                    && debfile::parse_relations(prov).iter().flatten().any(|x| {
                        // A versioned dependency is met only by a versioned provide (`name (= version)`).
                        x.name == a.name
                            && match (&a.constraint, &x.constraint) {
                                (None, _) => true,
                                (Some(_), Some((_, v))) => a.allows(v),
                                (Some(_), None) => false,
                            }
                    })
            })
    })
}

/// Why an alternative is unmet, dpkg's indented lines.
fn why_unmet(alts: &[Alt], have: &BTreeMap<String, String>) -> String {
    alts.iter()
        .map(|a| match have.get(&a.name) {
            Some(v) => format!("  Version of {} on system is {v}.", a.name),
            None => format!("  Package {} is not installed.", a.name),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn shown(alts: &[Alt]) -> String {
    alts.iter().map(Alt::shown).collect::<Vec<_>>().join(" | ")
}

/// `dpkg -i FILE...`.
fn install(st: &mut State, files: &[String], io: &mut Io) -> Result<i32, StateError> {
    if st.env.euid != 0 {
        io.errln("dpkg: error: requested operation requires superuser privilege");
        return Ok(2);
    }
    if files.is_empty() {
        io.errln("dpkg: error: --install needs at least one package archive file argument\n\nType dpkg --help for help about installing and deinstalling packages [*];");
        return Ok(2);
    }
    let arch = pkgdb::device_arch(st);
    let mut configured = st.packages()?;
    let mut x: DpkgExtra = pkgdb::extra(st)?;
    let mut errors: Vec<String> = Vec::new();
    let mut unpacked: Vec<DebControl> = Vec::new();
    for f in files {
        let host = if f.starts_with('/') {
            st.env.path(f)
        } else {
            std::path::PathBuf::from(f)
        };
        let c = match debfile::read_control(&host, f) {
            Ok(c) => c,
            Err(e) => {
                io.errln(format!(
                    "{e}\ndpkg: error processing archive {f} (--install):\n dpkg-deb --control subprocess returned error exit status 2"
                ));
                errors.push(f.clone());
                continue;
            }
        };
        if c.architecture != "all" && c.architecture != arch {
            io.errln(format!(
                "dpkg: error processing archive {f} (--install):\n package architecture ({}) does not match system ({arch})",
                c.architecture
            ));
            errors.push(f.clone());
            continue;
        }
        let unmet: Vec<Vec<Alt>> = debfile::parse_relations(&c.pre_depends)
            .into_iter()
            .filter(|r| !satisfied(r, &configured, &x.provides))
            .collect();
        if let Some(r) = unmet.first() {
            io.errln(format!(
                "dpkg: regarding {f} containing {p}, pre-dependency problem:\n {p} pre-depends on {}\n{}\n\ndpkg: error processing archive {f} (--install):\n pre-dependency problem - not installing {p}",
                shown(r),
                why_unmet(r, &configured),
                p = c.package
            ));
            errors.push(f.clone());
            continue;
        }
        let old = configured
            .get(&c.package)
            .or_else(|| x.unpacked.get(&c.package))
            .cloned();
        match &old {
            None => {
                io.outln(format!(
                    "Selecting previously unselected package {}.",
                    c.package
                ));
                io.outln(format!(
                    "(Reading database ... {} files and directories currently installed.)",
                    18_000 + configured.len() * 150
                ));
                io.outln(format!("Preparing to unpack {f} ..."));
                io.outln(format!("Unpacking {} ({}) ...", c.package, c.version));
            }
            Some(o) => {
                if debfile::compare_versions(&c.version, o).is_lt() {
                    io.errln(format!(
                        "dpkg: warning: downgrading {} from {o} to {}",
                        c.package, c.version
                    ));
                }
                io.outln(format!(
                    "(Reading database ... {} files and directories currently installed.)",
                    18_000 + configured.len() * 150
                ));
                io.outln(format!("Preparing to unpack {f} ..."));
                io.outln(format!(
                    "Unpacking {} ({}) over ({o}) ...",
                    c.package, c.version
                ));
            }
        }
        configured.remove(&c.package);
        x.unpacked.insert(c.package.clone(), c.version.clone());
        x.architecture
            .insert(c.package.clone(), c.architecture.clone());
        if c.provides.is_empty() {
            x.provides.remove(&c.package);
        } else {
            x.provides.insert(c.package.clone(), c.provides.clone());
        }
        unpacked.retain(|u| u.package != c.package);
        unpacked.push(c);
    }
    // Configure what can be: first drop, until nothing changes, every unpacked package whose Depends fail even
    // counting the other packages of this run; then configure the rest dependencies first (dpkg orders
    // configuration so packages installed together satisfy each other; a cycle is configured as it stands).
    let provides = x.provides.clone();
    let deps_hold = |c: &DebControl, have: &BTreeMap<String, String>| {
        debfile::parse_relations(&c.depends)
            .iter()
            .all(|r| satisfied(r, have, &provides))
    };
    let mut candidates: BTreeMap<String, String> = configured.clone();
    for c in &unpacked {
        candidates.insert(c.package.clone(), c.version.clone());
    }
    let (mut good, mut pending): (Vec<DebControl>, Vec<DebControl>) = (unpacked, Vec::new());
    loop {
        let (ok, bad): (Vec<DebControl>, Vec<DebControl>) =
            good.into_iter().partition(|c| deps_hold(c, &candidates));
        good = ok;
        if bad.is_empty() {
            break;
        }
        for c in &bad {
            candidates.remove(&c.package);
        }
        pending.extend(bad);
    }
    while !good.is_empty() {
        let next = good
            .iter()
            .position(|c| deps_hold(c, &configured))
            .unwrap_or(0);
        let c = good.remove(next);
        configure(st, &mut configured, &mut x, &c, io)?;
    }
    for c in &pending {
        let unmet: Vec<Vec<Alt>> = debfile::parse_relations(&c.depends)
            .into_iter()
            .filter(|r| !satisfied(r, &configured, &x.provides))
            .collect();
        let mut msg = format!(
            "dpkg: dependency problems prevent configuration of {}:",
            c.package
        );
        for r in &unmet {
            msg.push_str(&format!(
                "\n {} depends on {}; however:\n{}",
                c.package,
                shown(r),
                why_unmet(r, &configured)
            ));
        }
        msg.push_str(&format!(
            "\n\ndpkg: error processing package {} (--install):\n dependency problems - leaving unconfigured",
            c.package
        ));
        io.errln(msg);
        errors.push(c.package.clone());
    }
    pkgdb::store_packages(st, &configured)?;
    pkgdb::store_extra(st, &x)?;
    if errors.is_empty() {
        return Ok(0);
    }
    let mut msg = "Errors were encountered while processing:".to_string();
    for e in &errors {
        msg.push_str(&format!("\n {e}"));
    }
    io.errln(msg);
    Ok(1)
}

/// Configure one unpacked package: its postinst effects, then it counts as installed.
fn configure(
    st: &mut State,
    configured: &mut BTreeMap<String, String>,
    x: &mut DpkgExtra,
    c: &DebControl,
    io: &mut Io,
) -> Result<(), StateError> {
    io.outln(format!("Setting up {} ({}) ...", c.package, c.version));
    x.unpacked.remove(&c.package);
    configured.insert(c.package.clone(), c.version.clone());
    if c.package == "moby-engine" {
        let now = st.env.now_ms;
        let svcs = st.services_mut()?;
        for u in ["containerd", "docker.socket", "docker"] {
            svcs.set(u, "active", now);
        }
        st.journal(
            "docker",
            "systemd[1]",
            "Starting Docker Application Container Engine...",
        )?;
        st.journal(
            "docker",
            "systemd[1]",
            "Started Docker Application Container Engine.",
        )?;
    }
    Ok(())
}

/// `apt-mark hold|unhold|showhold [PACKAGE...]`.
pub fn apt_mark(st: &mut State, args: &[String], io: &mut Io) -> Result<i32, StateError> {
    let Some(cmd) = args.first() else {
        io.errln("E: No command given\nUsage: apt-mark [options] {auto|manual} pkg1 [pkg2 ...]");
        return Ok(100);
    };
    let names: Vec<&String> = args[1..].iter().filter(|a| !a.starts_with('-')).collect();
    let mut x = pkgdb::extra(st)?;
    match cmd.as_str() {
        "showhold" => {
            for h in &x.holds {
                if names.is_empty() || names.contains(&h) {
                    io.outln(h);
                }
            }
            Ok(0)
        }
        "hold" | "unhold" => {
            if st.env.euid != 0 {
                io.errln("E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)\nE: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), are you root?");
                return Ok(100);
            }
            if names.is_empty() {
                io.errln("E: No packages found");
                return Ok(100);
            }
            let pkgs = st.packages()?;
            for n in &names {
                if !pkgs.contains_key(*n) && !x.unpacked.contains_key(*n) {
                    io.errln(format!("E: Unable to locate package {n}"));
                    return Ok(100);
                }
            }
            for n in names {
                let msg = match (cmd.as_str(), x.holds.contains(n)) {
                    ("hold", true) => format!("{n} was already set on hold."),
                    ("hold", false) => {
                        x.holds.insert(n.clone());
                        format!("{n} set on hold.")
                    }
                    (_, true) => {
                        x.holds.remove(n);
                        format!("Canceled hold on {n}.")
                    }
                    (_, false) => format!("{n} was already not on hold."),
                };
                io.outln(msg);
            }
            pkgdb::store_extra(st, &x)?;
            Ok(0)
        }
        other => {
            io.errln(format!("E: Invalid operation {other}"));
            Ok(100)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::sim::state::Env;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn shows_installed_packages_like_dpkg_query() {
        let dir = tempfile::tempdir().unwrap();
        crate::lab::sim::init_device_state(dir.path()).unwrap();
        let mut st = State::open(Env::for_root(dir.path())).unwrap();
        let mut io = Io::default();
        let a = args(&[
            "-W",
            "-f=${Package}\\t${Version}\\t${db:Status-Abbrev}\\n",
            "aziot-edge",
            "nope",
        ]);
        assert_eq!(query(&mut st, &a, &mut io).unwrap(), 1);
        assert_eq!(io.out, format!("aziot-edge\t{IOTEDGE_VERSION}-1\tii \n"));
        assert!(io.err.contains("no packages found matching nope"));
    }

    /// A real .deb in the device root (ar: debian-binary, control.tar.gz with ./control, data.tar).
    fn deb(root: &std::path::Path, file: &str, control: &str) -> String {
        let mut ctar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(control.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        ctar.append_data(&mut h, "./control", control.as_bytes())
            .unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &ctar.into_inner().unwrap()).unwrap();
        let control_gz = gz.finish().unwrap();
        let data = tar::Builder::new(Vec::new()).into_inner().unwrap();
        let mut a = ar::Builder::new(Vec::new());
        for (name, bytes) in [
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.gz", control_gz),
            ("data.tar", data),
        ] {
            a.append(
                &ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64),
                &bytes[..],
            )
            .unwrap();
        }
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        std::fs::write(root.join("tmp").join(file), a.into_inner().unwrap()).unwrap();
        format!("/tmp/{file}")
    }

    fn bare() -> (tempfile::TempDir, State) {
        let dir = tempfile::tempdir().unwrap();
        crate::lab::sim::init_device_state(dir.path()).unwrap();
        crate::lab::sim::init_device_options(dir.path(), true, false).unwrap();
        let st = State::open(Env::for_root(dir.path())).unwrap();
        (dir, st)
    }

    #[test]
    fn dpkg_install_reads_real_control_data_and_orders_configuration() {
        let (dir, mut st) = bare();
        let edge = deb(
            dir.path(),
            "edge.deb",
            "Package: aziot-edge\nVersion: 1.5.21-1\nArchitecture: amd64\nDepends: moby-engine (>= 20.10), libc6 (>= 2.34)\n",
        );
        let engine = deb(
            dir.path(),
            "engine.deb",
            "Package: moby-engine\nVersion: 24.0.9-1\nArchitecture: amd64\nPre-Depends: adduser\n",
        );
        assert!(!pkgdb::unit_exists(&st, "docker").unwrap());
        let mut io = Io::default();
        // Given in the "wrong" order: dpkg configures the engine first, as the edge package needs it.
        assert_eq!(
            dpkg(&mut st, &args(&["-i", &edge, &engine]), &mut io).unwrap(),
            0,
            "{}",
            io.err
        );
        assert!(io
            .out
            .contains("Selecting previously unselected package aziot-edge."));
        let setup: Vec<&str> = io
            .out
            .lines()
            .filter(|l| l.starts_with("Setting up"))
            .collect();
        assert_eq!(
            setup,
            [
                "Setting up moby-engine (24.0.9-1) ...",
                "Setting up aziot-edge (1.5.21-1) ..."
            ]
        );
        assert!(pkgdb::unit_exists(&st, "docker").unwrap());
        assert!(
            st.services().unwrap().is_active("docker"),
            "postinst started docker"
        );

        // An older version is a downgrade, with dpkg's warning.
        let old = deb(
            dir.path(),
            "old.deb",
            "Package: aziot-edge\nVersion: 1.5.9-1\nArchitecture: amd64\n",
        );
        let mut io = Io::default();
        assert_eq!(dpkg(&mut st, &args(&["-i", &old]), &mut io).unwrap(), 0);
        assert!(
            io.err
                .contains("dpkg: warning: downgrading aziot-edge from 1.5.21-1 to 1.5.9-1"),
            "{}",
            io.err
        );
    }

    #[test]
    fn dpkg_refuses_wrong_architecture_and_leaves_unmet_depends_unconfigured() {
        let (dir, mut st) = bare();
        let arm = deb(
            dir.path(),
            "arm.deb",
            "Package: moby-cli\nVersion: 1\nArchitecture: arm64\n",
        );
        let mut io = Io::default();
        assert_eq!(dpkg(&mut st, &args(&["-i", &arm]), &mut io).unwrap(), 1);
        assert_eq!(
            io.err,
            format!("dpkg: error processing archive {arm} (--install):\n package architecture (arm64) does not match system (amd64)\nErrors were encountered while processing:\n {arm}\n")
        );
        assert!(!st.packages().unwrap().contains_key("moby-cli"));

        let edge = deb(
            dir.path(),
            "edge.deb",
            "Package: aziot-edge\nVersion: 1.5.21-1\nArchitecture: amd64\nDepends: aziot-identity-service (= 1.5.6-1)\n",
        );
        let mut io = Io::default();
        assert_eq!(dpkg(&mut st, &args(&["-i", &edge]), &mut io).unwrap(), 1);
        assert!(io.err.contains("dpkg: dependency problems prevent configuration of aziot-edge:\n aziot-edge depends on aziot-identity-service (= 1.5.6-1); however:\n  Package aziot-identity-service is not installed."), "{}", io.err);
        assert!(
            io.err
                .ends_with("Errors were encountered while processing:\n aziot-edge\n"),
            "{}",
            io.err
        );
        let mut io = Io::default();
        query(
            &mut st,
            &args(&["-W", "-f=${Package} ${db:Status-Abbrev}", "aziot-edge"]),
            &mut io,
        )
        .unwrap();
        assert_eq!(io.out, "aziot-edge iU ", "unpacked, not configured");
        assert!(
            !pkgdb::installed(&st, "aziot-edge").unwrap(),
            "iotedge does not exist yet"
        );

        let mut io = Io::default();
        assert_eq!(
            dpkg(&mut st, &args(&["-i", "/tmp/none.deb"]), &mut io).unwrap(),
            1
        );
        assert!(
            io.err.starts_with(
                "dpkg: error: cannot access archive '/tmp/none.deb': No such file or directory"
            ),
            "{}",
            io.err
        );
    }

    #[test]
    fn apt_mark_holds_installed_packages_only() {
        let dir = tempfile::tempdir().unwrap();
        crate::lab::sim::init_device_state(dir.path()).unwrap();
        let mut st = State::open(Env::for_root(dir.path())).unwrap();
        let mut io = Io::default();
        assert_eq!(
            apt_mark(&mut st, &args(&["hold", "aziot-edge"]), &mut io).unwrap(),
            0
        );
        assert_eq!(io.out, "aziot-edge set on hold.\n");
        let mut io = Io::default();
        assert_eq!(
            apt_mark(&mut st, &args(&["hold", "aziot-edge"]), &mut io).unwrap(),
            0
        );
        assert_eq!(io.out, "aziot-edge was already set on hold.\n");
        let mut io = Io::default();
        assert_eq!(
            apt_mark(&mut st, &args(&["hold", "nope"]), &mut io).unwrap(),
            100
        );
        assert!(io.err.contains("Unable to locate package nope"));
        let mut io = Io::default();
        apt_mark(&mut st, &args(&["showhold"]), &mut io).unwrap();
        assert_eq!(io.out, "aziot-edge\n");
        let mut io = Io::default();
        query(
            &mut st,
            &args(&["-W", "-f=${db:Status-Abbrev}", "aziot-edge"]),
            &mut io,
        )
        .unwrap();
        assert_eq!(io.out, "hi ");
    }
}
