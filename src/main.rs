//! The `edgefleet` binary: parse the command line, run, map the result to an exit code.
//!
//! When invoked through a lab device's wrapper (`edgefleet __sim iotedge ...`), it acts as the simulated program
//! instead (see `lab::sim`).

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).map(|a| a == "__sim").unwrap_or(false) {
        std::process::exit(edgefleet::lab::sim::main(&args[2..]));
    }
    let code = edgefleet::app::main(args);
    std::process::exit(code.code());
}
