//! Command-line entry point: a deliberately tiny `--flag value` parser and
//! the dispatch to the subcommands. The runner embeds this as
//! `lowtouch demo <subcommand> ...`, so everything goes through
//! [`main`], which returns an exit code instead of exiting.
//!
//! Exit codes: 0 success, 1 the command ran and failed, 2 usage error.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::book::{NewOrder, Side};
use crate::engine::{self, EngineConfig, Role};
use crate::knobs::{KnobFlags, Knobs};
use crate::loadgen::{self, LoadgenConfig};
use crate::protocol::{self, valid_id, valid_symbol};
use crate::tools;

const USAGE: &str = "\
usage: exchange <subcommand> [--flag value ...]

subcommands:
  engine   run a matching engine (primary or backup)
  smoke    place a crossing pair of orders on the serving engine; prints PASS or FAIL
  order    place one order on the serving engine; prints its id when acknowledged
  book     ask the serving engine whether an order rests (--has ID); prints PRESENT or MISSING
  loadgen  send a steady seeded stream of orders to the serving engine

Run `exchange <subcommand> --help` for its flags.";

const ENGINE_USAGE: &str = "\
usage: exchange engine --name NAME --role primary|backup --listen ADDR --log PATH
         [--replication ADDR]        primary: where the backup connects
         [--primary ADDR]            backup: the primary's replication address
         [--instruments SYM,SYM]     default DEMO,ACME
         [--latency-us N]            fault: extra time per order   (env EXCHANGE_LATENCY_US)
         [--leak-kb-per-order N]     fault: KiB leaked per order   (env EXCHANGE_LEAK_KB_PER_ORDER)
         [--failover-delay-ms N]     fault: takeover delay, backup (env EXCHANGE_FAILOVER_DELAY_MS)
         [--heartbeat-ms N]          default 100
         [--heartbeat-timeout-ms N]  default 500
Runs until SIGTERM/SIGINT, then logs STATE: STOPPED and exits 0.";

const SMOKE_USAGE: &str = "\
usage: exchange smoke --engines ADDR,ADDR,... [--timeout-ms N (default 5000)] [--symbol SYM (default DEMO)]
Prints PASS (exit 0) or FAIL (exit 1) on stdout; details on stderr.";

const ORDER_USAGE: &str = "\
usage: exchange order --engines ADDR,... --id ID --side buy|sell --symbol SYM --qty N --price P
         [--timeout-ms N (default 5000)]
Prints the id (exit 0) when acknowledged; otherwise an error on stderr (exit 1).";

const BOOK_USAGE: &str = "\
usage: exchange book --engines ADDR,... --has ID [--timeout-ms N (default 5000)]
Prints PRESENT (exit 0) or MISSING (exit 1); errors on stderr (exit 1).";

const LOADGEN_USAGE: &str = "\
usage: exchange loadgen --engines ADDR,... [--rate N (orders/s, default 200)]
         [--symbols SYM,SYM (default DEMO,ACME)] [--seed N (default 1)]
         [--duration-ms N (default: until SIGTERM/SIGINT)]
Prints a one-line summary on stderr at the end and exits 0.";

/// Entry point. `args` excludes the program name; `args[0]` is the
/// subcommand.
pub fn main(args: &[String]) -> i32 {
    let Some((sub, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return 2;
    };
    let result = match sub.as_str() {
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            return 0;
        }
        "engine" => with_flags(rest, ENGINE_USAGE, ENGINE_FLAGS, cmd_engine),
        "smoke" => with_flags(rest, SMOKE_USAGE, SMOKE_FLAGS, cmd_smoke),
        "order" => with_flags(rest, ORDER_USAGE, ORDER_FLAGS, cmd_order),
        "book" => with_flags(rest, BOOK_USAGE, BOOK_FLAGS, cmd_book),
        "loadgen" => with_flags(rest, LOADGEN_USAGE, LOADGEN_FLAGS, cmd_loadgen),
        other => Err(format!("unknown subcommand {other:?}\n{USAGE}")),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("exchange: {message}");
            2
        }
    }
}

const ENGINE_FLAGS: &[&str] = &[
    "name",
    "role",
    "listen",
    "log",
    "replication",
    "primary",
    "instruments",
    "latency-us",
    "leak-kb-per-order",
    "failover-delay-ms",
    "heartbeat-ms",
    "heartbeat-timeout-ms",
];
const SMOKE_FLAGS: &[&str] = &["engines", "timeout-ms", "symbol"];
const ORDER_FLAGS: &[&str] = &[
    "engines",
    "id",
    "side",
    "symbol",
    "qty",
    "price",
    "timeout-ms",
];
const BOOK_FLAGS: &[&str] = &["engines", "has", "timeout-ms"];
const LOADGEN_FLAGS: &[&str] = &["engines", "rate", "symbols", "seed", "duration-ms"];

/// Parsed `--flag value` pairs.
#[derive(Debug, Default)]
pub struct Flags(HashMap<String, String>);

/// Result of flag parsing: either the flags or a request for help.
#[derive(Debug)]
pub enum Parsed {
    Help,
    Flags(Flags),
}

/// Parses `--flag value` pairs. Every flag takes a value; `--help` anywhere
/// wins. Unknown, repeated or value-less flags and stray words are errors.
pub fn parse_flags(args: &[String], allowed: &[&str]) -> Result<Parsed, String> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(Parsed::Help);
    }
    let mut map = HashMap::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(name) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        if !allowed.contains(&name) {
            return Err(format!("unknown flag --{name}"));
        }
        let Some(value) = it.next() else {
            return Err(format!("--{name} needs a value"));
        };
        if map.insert(name.to_string(), value.clone()).is_some() {
            return Err(format!("--{name} given twice"));
        }
    }
    Ok(Parsed::Flags(Flags(map)))
}

impl Flags {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn required(&self, name: &str) -> Result<&str, String> {
        self.get(name)
            .ok_or_else(|| format!("--{name} is required"))
    }

    pub fn u64(&self, name: &str) -> Result<Option<u64>, String> {
        self.get(name)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("--{name} must be a non-negative integer, got {v:?}"))
            })
            .transpose()
    }

    pub fn u64_or(&self, name: &str, default: u64) -> Result<u64, String> {
        Ok(self.u64(name)?.unwrap_or(default))
    }

    /// A comma-separated list; empty items are dropped.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        self.get(name).map(split_list)
    }

    fn engines(&self) -> Result<Vec<String>, String> {
        let engines = split_list(self.required("engines")?);
        if engines.is_empty() {
            return Err("--engines needs at least one ADDR".into());
        }
        Ok(engines)
    }

    fn timeout(&self) -> Result<Duration, String> {
        Ok(Duration::from_millis(self.u64_or("timeout-ms", 5000)?))
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn with_flags(
    args: &[String],
    usage: &str,
    allowed: &[&str],
    run: fn(&Flags) -> Result<i32, String>,
) -> Result<i32, String> {
    match parse_flags(args, allowed) {
        Ok(Parsed::Help) => {
            println!("{usage}");
            Ok(0)
        }
        Ok(Parsed::Flags(flags)) => run(&flags).map_err(|e| format!("{e}\n{usage}")),
        Err(e) => Err(format!("{e}\n{usage}")),
    }
}

fn symbols(flags: &Flags, name: &str) -> Result<Vec<String>, String> {
    let mut syms = flags
        .list(name)
        .unwrap_or_else(|| vec!["DEMO".into(), "ACME".into()]);
    if syms.is_empty() {
        return Err(format!("--{name} needs at least one symbol"));
    }
    if let Some(bad) = syms.iter().find(|s| !valid_symbol(s)) {
        return Err(format!("bad symbol {bad:?} in --{name}"));
    }
    let mut seen = std::collections::HashSet::new();
    syms.retain(|s| seen.insert(s.clone()));
    Ok(syms)
}

/// Parses an engine configuration (validation only, nothing is started).
pub fn engine_config(flags: &Flags) -> Result<EngineConfig, String> {
    let name = flags.required("name")?;
    // The name is one token of the STATUS reply and of every log line.
    if !valid_id(name) {
        return Err(format!("bad --name {name:?} (1-64 of A-Z a-z 0-9 _ . : -)"));
    }
    let role_s = flags.required("role")?;
    let role = Role::parse(role_s)
        .ok_or_else(|| format!("--role must be primary or backup, got {role_s:?}"))?;
    let replication = flags.get("replication").map(str::to_string);
    let primary = flags.get("primary").map(str::to_string);
    match role {
        Role::Primary if primary.is_some() => {
            return Err("--primary is for --role backup (a primary uses --replication)".into());
        }
        Role::Backup if replication.is_some() => {
            return Err("--replication is for --role primary (a backup uses --primary)".into());
        }
        Role::Backup if primary.is_none() => {
            return Err("--role backup needs --primary ADDR".into());
        }
        _ => {}
    }
    let heartbeat_ms = flags.u64_or("heartbeat-ms", 100)?;
    let timeout_ms = flags.u64_or("heartbeat-timeout-ms", 500)?;
    if heartbeat_ms == 0 {
        return Err("--heartbeat-ms must be positive".into());
    }
    if timeout_ms <= heartbeat_ms {
        return Err("--heartbeat-timeout-ms must be larger than --heartbeat-ms".into());
    }
    let knobs = Knobs::from_env(KnobFlags {
        latency_us: flags.u64("latency-us")?,
        leak_kb_per_order: flags.u64("leak-kb-per-order")?,
        failover_delay_ms: flags.u64("failover-delay-ms")?,
    })?;
    Ok(EngineConfig {
        name: name.to_string(),
        role,
        listen: flags.required("listen")?.to_string(),
        log: PathBuf::from(flags.required("log")?),
        replication,
        primary,
        instruments: symbols(flags, "instruments")?,
        knobs,
        heartbeat: Duration::from_millis(heartbeat_ms),
        heartbeat_timeout: Duration::from_millis(timeout_ms),
    })
}

fn cmd_engine(flags: &Flags) -> Result<i32, String> {
    Ok(engine::run(engine_config(flags)?))
}

fn cmd_smoke(flags: &Flags) -> Result<i32, String> {
    let engines = flags.engines()?;
    let symbol = flags.get("symbol").unwrap_or("DEMO");
    if !valid_symbol(symbol) {
        return Err(format!("bad --symbol {symbol:?}"));
    }
    let timeout = flags.timeout()?;
    match tools::smoke(&engines, symbol, timeout) {
        Ok(details) => {
            eprintln!("smoke: {details}");
            println!("PASS");
            Ok(0)
        }
        Err(e) => {
            eprintln!("smoke: {e}");
            println!("FAIL");
            Ok(1)
        }
    }
}

fn cmd_order(flags: &Flags) -> Result<i32, String> {
    let engines = flags.engines()?;
    let id = flags.required("id")?;
    if !valid_id(id) {
        return Err(format!("bad --id {id:?} (1-64 of A-Z a-z 0-9 _ . : -)"));
    }
    let side_s = flags.required("side")?;
    let side =
        Side::parse(side_s).ok_or_else(|| format!("--side must be buy or sell, got {side_s:?}"))?;
    let symbol = flags.required("symbol")?;
    if !valid_symbol(symbol) {
        return Err(format!("bad --symbol {symbol:?}"));
    }
    let order = NewOrder {
        id: id.to_string(),
        side,
        symbol: symbol.to_string(),
        qty: protocol::parse_positive(flags.required("qty")?, "--qty")?,
        price: protocol::parse_positive(flags.required("price")?, "--price")?,
    };
    match tools::place(&engines, &order, flags.timeout()?) {
        Ok(()) => {
            println!("{}", order.id);
            Ok(0)
        }
        Err(e) => {
            eprintln!("order {}: {e}", order.id);
            Ok(1)
        }
    }
}

fn cmd_book(flags: &Flags) -> Result<i32, String> {
    let engines = flags.engines()?;
    let id = flags.required("has")?;
    if !valid_id(id) {
        return Err(format!("bad --has {id:?}"));
    }
    match tools::has(&engines, id, flags.timeout()?) {
        Ok(true) => {
            println!("PRESENT");
            Ok(0)
        }
        Ok(false) => {
            println!("MISSING");
            Ok(1)
        }
        Err(e) => {
            eprintln!("book: {e}");
            Ok(1)
        }
    }
}

fn cmd_loadgen(flags: &Flags) -> Result<i32, String> {
    let rate = flags.u64_or("rate", 200)?;
    if rate == 0 || rate > 1_000_000 {
        return Err("--rate must be between 1 and 1000000".into());
    }
    let cfg = LoadgenConfig {
        engines: flags.engines()?,
        rate,
        symbols: symbols(flags, "symbols")?,
        seed: flags.u64_or("seed", 1)?,
        duration: flags.u64("duration-ms")?.map(Duration::from_millis),
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    let summary = loadgen::run(&cfg, &stop);
    eprintln!("loadgen: {summary}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn flags(s: &str, allowed: &[&str]) -> Result<Flags, String> {
        match parse_flags(&args(s), allowed)? {
            Parsed::Flags(f) => Ok(f),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn parses_flag_value_pairs() {
        let f = flags("--engines a,b --timeout-ms 10", SMOKE_FLAGS).unwrap();
        assert_eq!(f.get("engines"), Some("a,b"));
        assert_eq!(f.u64("timeout-ms"), Ok(Some(10)));
        assert_eq!(f.u64("symbol"), Ok(None));
        assert_eq!(f.list("engines").unwrap(), ["a", "b"]);
    }

    #[test]
    fn flag_errors() {
        assert!(flags("--nope 1", SMOKE_FLAGS).is_err());
        assert!(flags("--engines", SMOKE_FLAGS).is_err());
        assert!(flags("engines a", SMOKE_FLAGS).is_err());
        assert!(flags("--engines a --engines b", SMOKE_FLAGS).is_err());
        let f = flags("--timeout-ms soon", SMOKE_FLAGS).unwrap();
        assert!(f.u64("timeout-ms").is_err());
        assert!(matches!(
            parse_flags(&args("--engines a --help"), SMOKE_FLAGS),
            Ok(Parsed::Help)
        ));
    }

    #[test]
    fn main_exit_codes() {
        assert_eq!(main(&[]), 2);
        assert_eq!(main(&args("--help")), 0);
        assert_eq!(main(&args("frobnicate")), 2);
        assert_eq!(main(&args("smoke --help")), 0);
        assert_eq!(main(&args("smoke --bogus 1")), 2);
        assert_eq!(main(&args("smoke --engines")), 2);
        assert_eq!(main(&args("order --engines a --id x")), 2);
        assert_eq!(main(&args("engine --name p --role primary")), 2);
    }

    #[test]
    fn engine_config_validation() {
        let base = "--name p --listen 127.0.0.1:1 --log /tmp/x.log";
        let ok =
            |extra: &str| engine_config(&flags(&format!("{base} {extra}"), ENGINE_FLAGS).unwrap());
        let cfg = ok("--role primary --replication 127.0.0.1:2 --latency-us 5").unwrap();
        assert_eq!(cfg.role, Role::Primary);
        assert_eq!(cfg.instruments, ["DEMO", "ACME"]);
        assert_eq!(cfg.knobs.latency_us, 5);
        assert_eq!(cfg.heartbeat, Duration::from_millis(100));
        assert_eq!(cfg.heartbeat_timeout, Duration::from_millis(500));
        let cfg = ok("--role backup --primary 127.0.0.1:2 --instruments X,Y,X").unwrap();
        assert_eq!(cfg.instruments, ["X", "Y"]);
        assert!(ok("--role backup").is_err());
        assert!(ok("--role primary --primary a:1").is_err());
        assert!(ok("--role backup --primary a:1 --replication b:1").is_err());
        assert!(ok("--role leader").is_err());
        assert!(ok("--role primary --instruments BAD$").is_err());
        assert!(ok("--role primary --heartbeat-ms 100 --heartbeat-timeout-ms 100").is_err());
        assert!(ok("--role primary --heartbeat-ms 0").is_err());
    }
}
