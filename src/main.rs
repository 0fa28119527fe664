//! The `edgefleet` binary: parse the command line, run, map the result to an exit code.
//!
//! When invoked through a lab device's wrapper (`edgefleet __sim iotedge ...`), it acts as the simulated program
//! instead (see `lab::sim`).

fn main() {
    // glibc gives every thread that allocates its own arena; with a thousand device tasks moving between the
    // runtime's threads that mostly buys fragmentation (measured: ~20% of peak RSS at N=1000). Two are plenty.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt is called once, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).map(|a| a == "__sim").unwrap_or(false) {
        std::process::exit(edgefleet::lab::sim::main(&args[2..]));
    }
    let code = edgefleet::commands::main(args);
    edgefleet::commands::report_peak_rss();
    std::process::exit(code.code());
}
