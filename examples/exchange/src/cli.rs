//! Command-line entry point: a deliberately tiny `--flag value` parser and
//! the dispatch to the subcommands. The runner embeds this as
//! `lowtouch demo <subcommand> ...`, so everything goes through
//! [`main`], which returns an exit code instead of exiting.
//!
//! Exit codes: 0 success, 1 the command ran and failed, 2 usage error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::book::{NewOrder, Side};
use crate::config::{self, ConfigFile};
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
usage: exchange engine --name NAME --role primary|backup --log PATH
         [--config PATH]             key = value settings file (flags override it)
         [--listen ADDR]             client address (required, here or in --config)
         [--replication ADDR]        primary: where the backup connects
         [--primary ADDR]            backup: the primary's replication address (required)
         [--instruments SYM,SYM]     default DEMO,ACME
         [--max-order-qty N]         larger orders get REJ <id> LIMIT (default: no limit)
         [--latency-us N]            fault: extra time per order   (env EXCHANGE_LATENCY_US)
         [--leak-kb-per-order N]     fault: KiB leaked per order   (env EXCHANGE_LEAK_KB_PER_ORDER)
         [--failover-delay-ms N]     fault: takeover delay, backup (env EXCHANGE_FAILOVER_DELAY_MS)
         [--cpu-us-per-order N]      fault: CPU burnt per order    (env EXCHANGE_CPU_US_PER_ORDER)
         [--heartbeat-ms N]          default 100
         [--heartbeat-timeout-ms N]  default 500
Precedence: flag > --config file > EXCHANGE_* environment variable > default.
Config keys: listen replication primary instruments instruments_file max_order_qty
  latency_us leak_kb_per_order failover_delay_ms cpu_us_per_order heartbeat_ms heartbeat_timeout_ms
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
         [--orders PATH]  replay a CSV file (header id,side,symbol,qty,price) in a loop,
                          ids sent as <id>-<loop>; --symbols and --seed are then unused
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
    "config",
    "replication",
    "primary",
    "instruments",
    "max-order-qty",
    "latency-us",
    "leak-kb-per-order",
    "failover-delay-ms",
    "cpu-us-per-order",
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
const LOADGEN_FLAGS: &[&str] = &[
    "engines",
    "rate",
    "symbols",
    "seed",
    "duration-ms",
    "orders",
];

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

/// A `--config` file as loaded: its path and its settings, with an
/// `instruments_file` already read into `instruments`.
#[derive(Debug, Clone, Default)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub file: ConfigFile,
}

/// Reads and parses a `--config` file and the `instruments_file` it names
/// (a relative path is taken from the config file's directory).
pub fn load_config(path: &str) -> Result<LoadedConfig, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read --config {path}: {e}"))?;
    let mut file = config::parse(&text, path)?;
    if let Some(name) = &file.instruments_file {
        let dir = Path::new(path).parent().unwrap_or(Path::new(""));
        let syms_path = dir.join(name);
        let shown = syms_path.display().to_string();
        let text = std::fs::read_to_string(&syms_path)
            .map_err(|e| format!("cannot read instruments_file {shown} (named in {path}): {e}"))?;
        file.instruments = Some(config::parse_instruments(&text, &shown)?);
    }
    Ok(LoadedConfig {
        path: PathBuf::from(path),
        file,
    })
}

/// Parses an engine configuration (validation only, nothing is started):
/// reads `--config` if given, and the knobs' environment variables.
pub fn engine_config(flags: &Flags) -> Result<EngineConfig, String> {
    let loaded = flags.get("config").map(load_config).transpose()?;
    engine_config_with(flags, loaded.as_ref(), |k| std::env::var(k).ok())
}

/// [`engine_config`] with the config file and the environment injected.
/// Each setting comes from its flag, else the config file, else (knobs
/// only) the environment, else its default.
pub fn engine_config_with(
    flags: &Flags,
    loaded: Option<&LoadedConfig>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<EngineConfig, String> {
    let empty = ConfigFile::default();
    let file = loaded.map_or(&empty, |l| &l.file);
    let name = flags.required("name")?;
    // The name is one token of the STATUS reply and of every log line.
    if !valid_id(name) {
        return Err(format!("bad --name {name:?} (1-64 of A-Z a-z 0-9 _ . : -)"));
    }
    let role_s = flags.required("role")?;
    let role = Role::parse(role_s)
        .ok_or_else(|| format!("--role must be primary or backup, got {role_s:?}"))?;
    // An explicit flag for the other role is a mistake; the same key in a
    // config file is ignored, so one rendered file can serve both roles.
    let (replication, primary) = match role {
        Role::Primary => {
            if flags.get("primary").is_some() {
                return Err("--primary is for --role backup (a primary uses --replication)".into());
            }
            let replication = flags
                .get("replication")
                .map(str::to_string)
                .or_else(|| file.replication.clone());
            (replication, None)
        }
        Role::Backup => {
            if flags.get("replication").is_some() {
                return Err("--replication is for --role primary (a backup uses --primary)".into());
            }
            let primary = flags
                .get("primary")
                .map(str::to_string)
                .or_else(|| file.primary.clone())
                .ok_or("--role backup needs --primary ADDR (or primary in the --config file)")?;
            (None, Some(primary))
        }
    };
    let listen = flags
        .get("listen")
        .map(str::to_string)
        .or_else(|| file.listen.clone())
        .ok_or("--listen is required (or listen in the --config file)")?;
    let heartbeat_ms = flags
        .u64("heartbeat-ms")?
        .or(file.heartbeat_ms)
        .unwrap_or(100);
    let timeout_ms = flags
        .u64("heartbeat-timeout-ms")?
        .or(file.heartbeat_timeout_ms)
        .unwrap_or(500);
    if heartbeat_ms == 0 {
        return Err("heartbeat-ms must be positive".into());
    }
    if timeout_ms <= heartbeat_ms {
        return Err("heartbeat-timeout-ms must be larger than heartbeat-ms".into());
    }
    let knobs = Knobs::resolve(
        KnobFlags {
            latency_us: flags.u64("latency-us")?.or(file.latency_us),
            leak_kb_per_order: flags.u64("leak-kb-per-order")?.or(file.leak_kb_per_order),
            failover_delay_ms: flags.u64("failover-delay-ms")?.or(file.failover_delay_ms),
            cpu_us_per_order: flags.u64("cpu-us-per-order")?.or(file.cpu_us_per_order),
        },
        env,
    )?;
    let max_order_qty = flags
        .get("max-order-qty")
        .map(|v| protocol::parse_positive(v, "--max-order-qty"))
        .transpose()?
        .or(file.max_order_qty);
    let instruments = match (flags.get("instruments"), &file.instruments) {
        (None, Some(syms)) => syms.clone(),
        _ => symbols(flags, "instruments")?,
    };
    Ok(EngineConfig {
        name: name.to_string(),
        role,
        listen,
        log: PathBuf::from(flags.required("log")?),
        replication,
        primary,
        instruments,
        max_order_qty,
        knobs,
        heartbeat: Duration::from_millis(heartbeat_ms),
        heartbeat_timeout: Duration::from_millis(timeout_ms),
        config: loaded.map(|l| l.path.clone()),
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
    let orders = match flags.get("orders") {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read --orders {path}: {e}"))?;
            Some(loadgen::parse_orders(&text, path)?)
        }
    };
    let cfg = LoadgenConfig {
        engines: flags.engines()?,
        orders,
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
        assert_eq!(
            main(&args(
                "engine --name p --role primary --log /tmp/x --config /nonexistent.conf"
            )),
            2
        );
        assert_eq!(
            main(&args("loadgen --engines a:1 --orders /nonexistent.csv")),
            2
        );
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

    #[test]
    fn config_file_precedence() {
        let text = "listen = f:1\nreplication = f:2\nprimary = f:3\ninstruments = F,G\n\
                    max_order_qty = 9\nlatency_us = 20\nleak_kb_per_order = 30\n\
                    heartbeat_ms = 40\nheartbeat_timeout_ms = 400\n";
        let loaded = LoadedConfig {
            path: "e.conf".into(),
            file: config::parse(text, "e.conf").unwrap(),
        };
        let env = |k: &str| k.starts_with("EXCHANGE_").then(|| "7".to_string());
        let base = "--name p --log /tmp/x.log";
        let cfg_of = |extra: &str| {
            let f = flags(&format!("{base} {extra}"), ENGINE_FLAGS).unwrap();
            engine_config_with(&f, Some(&loaded), env)
        };

        // The file over the environment over the defaults.
        let cfg = cfg_of("--role primary").unwrap();
        assert_eq!(cfg.listen, "f:1");
        assert_eq!(cfg.replication.as_deref(), Some("f:2"));
        assert_eq!(cfg.primary, None, "a primary ignores the file's primary");
        assert_eq!(cfg.instruments, ["F", "G"]);
        assert_eq!(cfg.max_order_qty, Some(9));
        assert_eq!(cfg.knobs.latency_us, 20);
        assert_eq!(cfg.knobs.leak_kb_per_order, 30);
        assert_eq!(cfg.knobs.failover_delay_ms, 7, "from the environment");
        assert_eq!(cfg.heartbeat, Duration::from_millis(40));
        assert_eq!(cfg.heartbeat_timeout, Duration::from_millis(400));
        assert_eq!(cfg.config, Some(PathBuf::from("e.conf")));

        // Flags over the file.
        let cfg = cfg_of(
            "--role primary --listen c:1 --replication c:2 --instruments C \
             --max-order-qty 3 --latency-us 1 --failover-delay-ms 2 --heartbeat-ms 10",
        )
        .unwrap();
        assert_eq!(cfg.listen, "c:1");
        assert_eq!(cfg.replication.as_deref(), Some("c:2"));
        assert_eq!(cfg.instruments, ["C"]);
        assert_eq!(cfg.max_order_qty, Some(3));
        assert_eq!(cfg.knobs.latency_us, 1);
        assert_eq!(cfg.knobs.failover_delay_ms, 2);
        assert_eq!(cfg.heartbeat, Duration::from_millis(10));
        assert_eq!(cfg.heartbeat_timeout, Duration::from_millis(400));

        // A backup takes primary from the file and ignores its replication;
        // explicit flags for the other role are still refused.
        let cfg = cfg_of("--role backup").unwrap();
        assert_eq!(cfg.primary.as_deref(), Some("f:3"));
        assert_eq!(cfg.replication, None);
        assert!(cfg_of("--role backup --replication x:1").is_err());
        assert!(cfg_of("--role primary --primary x:1").is_err());
        // The merged values are validated together.
        assert!(cfg_of("--role primary --heartbeat-timeout-ms 40").is_err());
        assert!(cfg_of("--role primary --max-order-qty 0").is_err());

        // Without a file the addresses are required as flags.
        let f = flags(&format!("{base} --role primary"), ENGINE_FLAGS).unwrap();
        let e = engine_config_with(&f, None, env).unwrap_err();
        assert!(e.contains("--listen"), "{e}");
        let f = flags(&format!("{base} --role backup --listen a:1"), ENGINE_FLAGS).unwrap();
        assert!(engine_config_with(&f, None, env).is_err());
        let f = flags(&format!("{base} --role primary --listen a:1"), ENGINE_FLAGS).unwrap();
        let cfg = engine_config_with(&f, None, |_| None).unwrap();
        assert_eq!((cfg.max_order_qty, cfg.config), (None, None));
    }

    #[test]
    fn load_config_reads_instruments_file_next_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("e.conf");
        std::fs::write(&conf, "listen = a:1\ninstruments_file = syms.txt\n").unwrap();
        std::fs::write(dir.path().join("syms.txt"), "# generated\nAAA\nBBB\n").unwrap();
        let loaded = load_config(conf.to_str().unwrap()).unwrap();
        assert_eq!(loaded.file.instruments.unwrap(), ["AAA", "BBB"]);

        std::fs::write(dir.path().join("syms.txt"), "AAA\nB$B\n").unwrap();
        let e = load_config(conf.to_str().unwrap()).unwrap_err();
        assert!(e.contains("syms.txt:2: "), "{e}");
        std::fs::remove_file(dir.path().join("syms.txt")).unwrap();
        assert!(load_config(conf.to_str().unwrap()).is_err());
        assert!(load_config(dir.path().join("none.conf").to_str().unwrap()).is_err());
    }
}
