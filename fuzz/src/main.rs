//! `lowtouch-fuzz`: the long fuzzing run of lowtouch's parsers and decoders.
//!
//! ```text
//! cargo run -p lowtouch-fuzz -- --runs 1000000                      # every target
//! cargo run -p lowtouch-fuzz -- frame --runs 1000000 --seed 7       # one, another seed
//! ```
//!
//! The debug build keeps overflow checks on (an overflow is a panic, so a finding). For
//! speed without rebuilding the dependencies in release, optimise only our two crates:
//! `--config 'profile.dev.package.lowtouch.opt-level=3' --config
//! 'profile.dev.package.lowtouch-fuzz.opt-level=3'` (2-15 times faster).
//!
//! A panic is printed as one line; the report lists each distinct one and its input is
//! written to `--crashes`. To keep it found, add that input to `fuzz/corpus/TARGET/`.
//!
//! Exit codes: 0 no panic, 1 a target panicked (its inputs are written to `--crashes`),
//! 2 bad arguments, 3 the corpus or the crash folder could not be read or written.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use lowtouch_fuzz::driver::{self, Config, Report};
use lowtouch_fuzz::targets::{self, TARGETS};

#[derive(Parser)]
#[command(about = "Fuzz lowtouch's parsers and decoders (stable Rust, seeded, reproducible)")]
struct Args {
    /// Targets to fuzz (default: all); see --list.
    targets: Vec<String>,
    /// Mutated inputs per target, after its seeds.
    #[arg(long, default_value_t = 100_000)]
    runs: u64,
    /// The random seed: the same seed and corpus give the same inputs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Inputs are cut to this many bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    max_len: usize,
    /// Where crashing inputs and each target's slowest input are written.
    #[arg(long, default_value = "fuzz/crashes")]
    crashes: PathBuf,
    /// List the targets and exit.
    #[arg(long)]
    list: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for t in TARGETS {
            println!("{:12} {}", t.name, t.about);
        }
        return ExitCode::SUCCESS;
    }
    let chosen: Vec<_> = if args.targets.is_empty() {
        TARGETS.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for name in &args.targets {
            match targets::target(name) {
                Some(t) => chosen.push(t),
                None => {
                    eprintln!("error: no target `{name}`; `--list` shows them");
                    return ExitCode::from(2);
                }
            }
        }
        chosen
    };
    // The default hook would print every caught panic with a backtrace hint; one line
    // each is enough, the report lists them again with their inputs.
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        eprintln!("panic at {}", place.unwrap_or_default());
    }));
    let config = Config {
        runs: args.runs,
        seed: args.seed,
        max_len: args.max_len,
        ..Config::default()
    };
    let mut crashed = false;
    println!("target       executions     seconds   exec/s  behaviours  slowest(ms)  panics");
    for target in chosen {
        let seeds = match driver::read_seeds(&targets::corpus_dir(target.name)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: reading the corpus of `{}`: {e}", target.name);
                return ExitCode::from(3);
            }
        };
        let report = driver::fuzz(target, &seeds, &config);
        print_row(&report);
        if let Err(e) = save(&args.crashes, &report) {
            eprintln!("error: writing to {}: {e}", args.crashes.display());
            return ExitCode::from(3);
        }
        crashed |= !report.crashes.is_empty();
    }
    if crashed {
        eprintln!("panics found; inputs in {}", args.crashes.display());
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_row(r: &Report) {
    let secs = r.elapsed.as_secs_f64();
    println!(
        "{:12} {:>10} {:>11.1} {:>8.0} {:>11} {:>12.1} {:>7}",
        r.target,
        r.executions,
        secs,
        r.executions as f64 / secs.max(1e-9),
        r.behaviours,
        r.slowest.0.as_secs_f64() * 1000.0,
        r.crashes.len()
    );
    for c in &r.crashes {
        println!("  panic: {}", c.message.lines().next().unwrap_or(""));
    }
}

/// Each crash as `TARGET-N`, and the slowest input as `TARGET-slowest`.
fn save(dir: &std::path::Path, r: &Report) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (i, c) in r.crashes.iter().enumerate() {
        std::fs::write(dir.join(format!("{}-{i}", r.target)), &c.input)?;
    }
    std::fs::write(dir.join(format!("{}-slowest", r.target)), &r.slowest.1)
}
