//! The `exchange` binary: a thin wrapper so the engine and its client tools
//! can run without the lowtouch runner (and so the integration tests can
//! start real processes).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(lowtouch_exchange::cli::main(&args));
}
