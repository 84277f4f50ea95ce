//! The load generator: a steady, seeded stream of limit orders around a mid
//! price, paced at a fixed rate, that follows the active engine through a
//! failover. Its own resting orders are cancelled once too many are
//! outstanding, so a long demo does not grow the books (and the engine's
//! memory) without bound — memory growth must come from the leak knob only.
//!
//! With `--orders PATH` the stream is a replay of a CSV file instead (see
//! [`parse_orders`]), looped, with a loop suffix on the ids.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::book::{NewOrder, Side};
use crate::client::{Conn, find_active};
use crate::protocol::{self, Reply, Request, valid_id, valid_symbol};

/// Prices are drawn uniformly from `MID ± SPREAD`, so buys and sells cross
/// often and trades happen continuously.
const MID: u64 = 100;
const SPREAD: u64 = 5;
/// Outstanding resting orders of ours above which the oldest is cancelled.
const MAX_RESTING: usize = 100;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest id accepted in an order file: room is left for the `-<loop>`
/// suffix within the protocol's 64 characters.
pub const MAX_REPLAY_ID: usize = 48;
/// The order file's header line.
pub const ORDERS_HEADER: &str = "id,side,symbol,qty,price";

#[derive(Debug, Clone)]
pub struct LoadgenConfig {
    pub engines: Vec<String>,
    /// `Some`: replay these (from `--orders`) instead of random orders.
    pub orders: Option<Vec<NewOrder>>,
    /// Orders per second.
    pub rate: u64,
    pub symbols: Vec<String>,
    pub seed: u64,
    /// `None` = until the stop flag is raised.
    pub duration: Option<Duration>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// NEW requests written to an engine.
    pub sent: u64,
    pub acked: u64,
    pub rejected: u64,
    /// Requests that got no proper reply (connection lost, timeout, ERR).
    pub errors: u64,
    pub canceled: u64,
    pub trades: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent={} acked={} rejected={} errors={} canceled={} trades={}",
            self.sent, self.acked, self.rejected, self.errors, self.canceled, self.trades
        )
    }
}

/// SplitMix64: tiny, good enough for test traffic, and fully determined by
/// the seed, so a run can be reproduced.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The order stream itself, separate from the network so it can be tested.
pub struct OrderStream {
    rng: Rng,
    symbols: Vec<String>,
    prefix: String,
    n: u64,
}

impl OrderStream {
    pub fn new(seed: u64, symbols: Vec<String>, prefix: String) -> OrderStream {
        OrderStream {
            rng: Rng::new(seed),
            symbols,
            prefix,
            n: 0,
        }
    }

    pub fn next_order(&mut self) -> NewOrder {
        self.n += 1;
        let symbol = match self.symbols.len() {
            0 => "DEMO".to_string(),
            n => self.symbols[self.rng.below(n as u64) as usize].clone(),
        };
        let side = if self.rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let price = MID - SPREAD + self.rng.below(2 * SPREAD + 1);
        let qty = 1 + self.rng.below(10);
        NewOrder {
            id: format!("{}-{}", self.prefix, self.n),
            side,
            symbol,
            qty,
            price,
        }
    }
}

/// Parses an order file for replay. `origin` (the path) names it in errors,
/// which read `ORIGIN:LINE: message`.
///
/// Format: CSV, first line the header `id,side,symbol,qty,price` (spaces
/// around fields and case ignored), then one order per line: side `BUY` or
/// `SELL` in any case, qty and price positive integers, id 1-48 characters
/// of `A-Z a-z 0-9 _ . : -` and unique in the file. Blank lines are skipped;
/// no quoting (no field can contain a comma). At least one order.
pub fn parse_orders(text: &str, origin: &str) -> Result<Vec<NewOrder>, String> {
    let mut lines = text.lines().enumerate();
    let header: Vec<String> = match lines.next() {
        Some((_, h)) => h
            .split(',')
            .map(|f| f.trim().to_ascii_lowercase())
            .collect(),
        None => Vec::new(),
    };
    if header.join(",") != ORDERS_HEADER {
        return Err(format!(
            "{origin}:1: expected the header line {ORDERS_HEADER:?}"
        ));
    }
    let mut orders: Vec<NewOrder> = Vec::new();
    let mut first_line: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, raw) in lines {
        let line_no = i + 1;
        let at = |msg: String| format!("{origin}:{line_no}: {msg}");
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [id, side, symbol, qty, price] = fields[..] else {
            return Err(at(format!(
                "expected 5 fields ({ORDERS_HEADER}), got {}",
                fields.len()
            )));
        };
        if !valid_id(id) || id.len() > MAX_REPLAY_ID {
            return Err(at(format!(
                "bad id {id:?} (1-{MAX_REPLAY_ID} of A-Z a-z 0-9 _ . : -)"
            )));
        }
        if let Some(first) = first_line.get(id) {
            return Err(at(format!("duplicate id {id:?} (first on line {first})")));
        }
        let side = Side::parse(side)
            .ok_or_else(|| at(format!("side must be BUY or SELL, got {side:?}")))?;
        if !valid_symbol(symbol) {
            return Err(at(format!("bad symbol {symbol:?}")));
        }
        let qty = protocol::parse_positive(qty, "qty").map_err(at)?;
        let price = protocol::parse_positive(price, "price").map_err(at)?;
        first_line.insert(id.to_string(), line_no);
        orders.push(NewOrder {
            id: id.to_string(),
            side,
            symbol: symbol.to_string(),
            qty,
            price,
        });
    }
    if orders.is_empty() {
        return Err(format!("{origin}: no orders after the header"));
    }
    Ok(orders)
}

/// Replays a fixed list of orders in a loop; the ids get the loop number
/// (`<id>-0`, `<id>-1`, ...) so they stay unique across loops.
pub struct Replay {
    orders: Vec<NewOrder>,
    pos: usize,
    pass: u64,
}

impl Replay {
    /// `orders` must not be empty (as [`parse_orders`] guarantees).
    pub fn new(orders: Vec<NewOrder>) -> Replay {
        Replay {
            orders,
            pos: 0,
            pass: 0,
        }
    }

    pub fn next_order(&mut self) -> NewOrder {
        if self.pos >= self.orders.len() {
            self.pos = 0;
            self.pass += 1;
        }
        let mut order = self.orders[self.pos].clone();
        self.pos += 1;
        order.id = format!("{}-{}", order.id, self.pass);
        order
    }
}

/// Where the load generator's orders come from.
enum Source {
    Random(OrderStream),
    Replay(Replay),
}

impl Source {
    fn next_order(&mut self) -> NewOrder {
        match self {
            Source::Random(s) => s.next_order(),
            Source::Replay(r) => r.next_order(),
        }
    }
}

/// Runs until `stop` is raised or the duration elapses.
pub fn run(cfg: &LoadgenConfig, stop: &AtomicBool) -> Summary {
    let start = Instant::now();
    let end = cfg.duration.map(|d| start + d);
    let period = Duration::from_secs(1) / u32::try_from(cfg.rate.max(1)).unwrap_or(u32::MAX);
    // The pid in the ids keeps two concurrent load generators with the same
    // seed from colliding on order ids.
    let prefix = format!("lg{}", std::process::id());
    let mut orders = match &cfg.orders {
        Some(list) if !list.is_empty() => Source::Replay(Replay::new(list.clone())),
        _ => Source::Random(OrderStream::new(cfg.seed, cfg.symbols.clone(), prefix)),
    };
    let mut summary = Summary::default();
    let mut resting: VecDeque<String> = VecDeque::new();
    let mut conn: Option<Conn> = None;
    let mut next = start;
    let mut searching_reported = false;

    let keep_going = |now: Instant| !stop.load(Ordering::Relaxed) && end.is_none_or(|e| now < e);
    while keep_going(Instant::now()) {
        let now = Instant::now();
        if next > now {
            // Sleep in short slices so a stop request is honoured promptly.
            thread::sleep((next - now).min(Duration::from_millis(50)));
            continue;
        }
        // After a stall (failover), resume the rate instead of bursting to
        // catch up on everything missed.
        if now - next > Duration::from_secs(1) {
            next = now;
        }

        let Some(c) = conn.as_mut() else {
            match find_active(&cfg.engines, Instant::now() + Duration::from_millis(500)) {
                Ok(c) => {
                    let _ = c.set_timeout(REQUEST_TIMEOUT);
                    eprintln!("loadgen: sending to {}", c.addr());
                    searching_reported = false;
                    conn = Some(c);
                }
                Err(e) => {
                    if !searching_reported {
                        eprintln!("loadgen: searching for the active engine: {e}");
                        searching_reported = true;
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            }
            continue;
        };
        next += period;

        let order = orders.next_order();
        summary.sent += 1;
        let mut lost = false;
        match c.request(&Request::New(order.clone())) {
            Ok(replies) => {
                // Saturating: quantities come off the network.
                let filled = replies
                    .iter()
                    .filter_map(|r| match r {
                        Reply::Trade(t) => Some(t.qty),
                        _ => None,
                    })
                    .fold(0u64, u64::saturating_add);
                summary.trades += replies
                    .iter()
                    .filter(|r| matches!(r, Reply::Trade(_)))
                    .count() as u64;
                match replies.last() {
                    Some(Reply::Ack { .. }) => {
                        summary.acked += 1;
                        if filled < order.qty {
                            resting.push_back(order.id);
                        }
                    }
                    Some(Reply::Rej { reason, .. }) => {
                        summary.rejected += 1;
                        // This engine stopped serving: look for the new one.
                        lost = reason == "NOT_ACTIVE";
                    }
                    _ => summary.errors += 1,
                }
            }
            Err(e) => {
                summary.errors += 1;
                eprintln!("loadgen: {} failed: {e}", c.addr());
                lost = true;
            }
        }
        if !lost
            && resting.len() > MAX_RESTING
            && let Some(id) = resting.pop_front()
        {
            match c.request(&Request::Cancel { id }) {
                Ok(r) if matches!(r.last(), Some(Reply::Canceled { .. })) => {
                    summary.canceled += 1;
                }
                // Already filled: nothing to do.
                Ok(_) => {}
                Err(_) => lost = true,
            }
        }
        if lost {
            conn = None;
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_is_deterministic_per_seed() {
        let syms = vec!["DEMO".to_string(), "ACME".to_string()];
        let mut a = OrderStream::new(42, syms.clone(), "x".into());
        let mut b = OrderStream::new(42, syms.clone(), "x".into());
        let mut c = OrderStream::new(43, syms, "x".into());
        let va: Vec<_> = (0..50).map(|_| a.next_order()).collect();
        let vb: Vec<_> = (0..50).map(|_| b.next_order()).collect();
        let vc: Vec<_> = (0..50).map(|_| c.next_order()).collect();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
    }

    #[test]
    fn orders_are_valid_and_around_mid() {
        let mut s = OrderStream::new(1, vec!["DEMO".into(), "ACME".into()], "lg".into());
        let mut sides = [0, 0];
        for i in 1..=1000 {
            let o = s.next_order();
            assert_eq!(o.id, format!("lg-{i}"));
            assert!((MID - SPREAD..=MID + SPREAD).contains(&o.price));
            assert!((1..=10).contains(&o.qty));
            assert!(o.symbol == "DEMO" || o.symbol == "ACME");
            sides[usize::from(o.side == Side::Sell)] += 1;
            assert!(crate::protocol::parse_request(&Request::New(o).to_string()).is_ok());
        }
        assert!(sides[0] > 300 && sides[1] > 300, "{sides:?}");
    }

    #[test]
    fn order_file_parses_and_replays_in_loops() {
        let text =
            "ID, Side ,symbol,qty,price\r\na1,buy,DEMO,5,100\n\n b.2 , SELL , ACME , 3 , 99 \n";
        let orders = parse_orders(text, "o.csv").unwrap();
        assert_eq!(orders.len(), 2);
        assert_eq!(orders[1].id, "b.2");
        assert_eq!(orders[1].side, Side::Sell);
        assert_eq!((orders[1].qty, orders[1].price), (3, 99));
        let mut r = Replay::new(orders);
        let ids: Vec<String> = (0..5).map(|_| r.next_order().id).collect();
        assert_eq!(ids, ["a1-0", "b.2-0", "a1-1", "b.2-1", "a1-2"]);
        let o = r.next_order();
        assert_eq!(o.id, "b.2-2");
        assert!(crate::protocol::parse_request(&Request::New(o).to_string()).is_ok());
    }

    #[test]
    fn malformed_order_files_name_the_line() {
        let h = ORDERS_HEADER;
        for (text, line) in [
            (String::new(), 1),
            ("id,side,symbol,qty\na,BUY,DEMO,1,1\n".to_string(), 1),
            (format!("{h}\na,BUY,DEMO,1\n"), 2),
            (format!("{h}\na,BUY,DEMO,1,1\nb,HOLD,DEMO,1,1\n"), 3),
            (format!("{h}\na,BUY,DE$MO,1,1\n"), 2),
            (format!("{h}\na,BUY,DEMO,0,1\n"), 2),
            (format!("{h}\na,BUY,DEMO,1,-5\n"), 2),
            (format!("{h}\na b,BUY,DEMO,1,1\n"), 2),
            (format!("{h}\n{},BUY,DEMO,1,1\n", "x".repeat(49)), 2),
            (format!("{h}\na,BUY,DEMO,1,1\n\na,SELL,DEMO,1,1\n"), 4),
        ] {
            let e = parse_orders(&text, "o.csv").unwrap_err();
            assert!(e.starts_with(&format!("o.csv:{line}: ")), "{text:?}: {e}");
        }
        assert!(parse_orders(&format!("{h}\n\n"), "o.csv").is_err());
    }
}
