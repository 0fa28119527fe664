//! The simulated `dpkg-query`: the package database of a Debian/Ubuntu IoT Edge device, as far as a verifier
//! asks (`dpkg-query -W [-f FORMAT] PACKAGE...`, `--showformat`, `${Package}`, `${Version}`,
//! `${db:Status-Abbrev}`, `${Status}` and the `\t`/`\n` escapes dpkg-query expands).
//!
//! The installed versions are [`State::packages`] (`packages.json`, or the runtime the lab simulates); the lab's
//! `old-runtime` state writes older ones. It must not import another program.

use super::program::Io;
#[cfg(test)]
use super::state::IOTEDGE_VERSION;
use super::state::{State, StateError};

fn render(format: &str, name: &str, version: &str) -> String {
    format
        .replace("${Package}", name)
        .replace("${binary:Package}", name)
        .replace("${Version}", version)
        .replace("${db:Status-Abbrev}", "ii ")
        .replace("${Status}", "install ok installed")
        .replace("\\t", "\t")
        .replace("\\n", "\n")
}

/// `dpkg-query ...`.
pub fn run(st: &mut State, args: &[String], io: &mut Io) -> Result<i32, StateError> {
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
    let mut code = 0;
    if names.is_empty() {
        for (n, v) in &pkgs {
            io.out(render(&format, n, v));
        }
        return Ok(0);
    }
    for n in names {
        match pkgs.get(&n) {
            Some(v) => io.out(render(&format, &n, v)),
            None => {
                io.errln(format!("dpkg-query: no packages found matching {n}"));
                code = 1;
            }
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::sim::state::Env;

    #[test]
    fn shows_installed_packages_like_dpkg_query() {
        let dir = tempfile::tempdir().unwrap();
        crate::lab::sim::init_device_state(dir.path()).unwrap();
        let mut st = State::open(Env::for_root(dir.path())).unwrap();
        let mut io = Io::default();
        let args: Vec<String> = [
            "-W",
            "-f=${Package}\\t${Version}\\t${db:Status-Abbrev}\\n",
            "aziot-edge",
            "nope",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(run(&mut st, &args, &mut io).unwrap(), 1);
        assert_eq!(io.out, format!("aziot-edge\t{IOTEDGE_VERSION}-1\tii \n"));
        assert!(io.err.contains("no packages found matching nope"));
    }
}
