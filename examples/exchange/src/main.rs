//! The `exchange` binary: a thin wrapper so the engine and its client tools
//! can run without the lowtouch runner (and so the integration tests can
//! start real processes).

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // `exchange demo engine …` is `lowtouch demo engine …`: an environment swaps the
    // program (a freshly built `exchange` for the embedded one) and keeps its arguments.
    if args.first().is_some_and(|a| a == "demo") {
        args.remove(0);
    }
    std::process::exit(lowtouch_exchange::cli::main(&args));
}
