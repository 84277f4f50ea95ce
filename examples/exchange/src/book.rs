//! The limit order books: one per instrument, price-time priority, integer
//! prices and quantities. Pure data structures with no I/O, so the matching
//! rules can be unit-tested exhaustively and so primary and backup, applying
//! the same requests in the same order, end up with identical books.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;

/// Which side of the book an order is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }

    /// Case-insensitive, so both the wire (`BUY`) and the CLI (`buy`) parse.
    pub fn parse(s: &str) -> Option<Side> {
        if s.eq_ignore_ascii_case("BUY") {
            Some(Side::Buy)
        } else if s.eq_ignore_ascii_case("SELL") {
            Some(Side::Sell)
        } else {
            None
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new limit order as submitted by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub id: String,
    pub side: Side,
    pub symbol: String,
    pub qty: u64,
    pub price: u64,
}

/// One execution between an incoming order and a resting one. The price is
/// always the resting order's price (the maker sets the price).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    pub buy_id: String,
    pub sell_id: String,
    pub symbol: String,
    pub qty: u64,
    pub price: u64,
}

/// Why an order or cancel was refused. The wire spelling is [`Reject::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    UnknownSymbol,
    DuplicateId,
    UnknownId,
    NotActive,
    /// Quantity above the engine's `max_order_qty`.
    Limit,
}

impl Reject {
    pub fn code(self) -> &'static str {
        match self {
            Reject::UnknownSymbol => "UNKNOWN_SYMBOL",
            Reject::DuplicateId => "DUPLICATE_ID",
            Reject::UnknownId => "UNKNOWN_ID",
            Reject::NotActive => "NOT_ACTIVE",
            Reject::Limit => "LIMIT",
        }
    }

    pub fn parse(s: &str) -> Option<Reject> {
        [
            Reject::UnknownSymbol,
            Reject::DuplicateId,
            Reject::UnknownId,
            Reject::NotActive,
            Reject::Limit,
        ]
        .into_iter()
        .find(|r| r.code() == s)
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A resting order inside a price level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resting {
    pub id: String,
    pub qty: u64,
}

/// A fill of a resting order, as seen by the single-instrument book.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fill {
    resting_id: String,
    qty: u64,
    price: u64,
    /// The resting order is fully consumed and left the book.
    resting_done: bool,
}

/// The order book of one instrument. Each price level is a FIFO queue, which
/// is what gives time priority within a price.
#[derive(Debug, Default, Clone)]
pub struct Book {
    bids: BTreeMap<u64, VecDeque<Resting>>,
    asks: BTreeMap<u64, VecDeque<Resting>>,
}

impl Book {
    /// Matches an incoming order against the opposite side and returns the
    /// fills plus the unfilled quantity (which the caller may rest).
    fn match_incoming(&mut self, side: Side, mut qty: u64, limit: u64) -> (Vec<Fill>, u64) {
        let mut fills = Vec::new();
        while qty > 0 {
            // Best opposite price: lowest ask for a buy, highest bid for a sell.
            let (levels, best) = match side {
                Side::Buy => {
                    let best = self.asks.keys().next().copied();
                    (&mut self.asks, best.filter(|p| *p <= limit))
                }
                Side::Sell => {
                    let best = self.bids.keys().next_back().copied();
                    (&mut self.bids, best.filter(|p| *p >= limit))
                }
            };
            let Some(price) = best else { break };
            let Some(queue) = levels.get_mut(&price) else {
                break;
            };
            while qty > 0 {
                let Some(front) = queue.front_mut() else {
                    break;
                };
                let take = qty.min(front.qty);
                front.qty -= take;
                qty -= take;
                let done = front.qty == 0;
                fills.push(Fill {
                    resting_id: front.id.clone(),
                    qty: take,
                    price,
                    resting_done: done,
                });
                if done {
                    queue.pop_front();
                }
            }
            if queue.is_empty() {
                levels.remove(&price);
            }
        }
        (fills, qty)
    }

    fn rest(&mut self, side: Side, id: String, qty: u64, price: u64) {
        let levels = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        levels
            .entry(price)
            .or_default()
            .push_back(Resting { id, qty });
    }

    fn remove(&mut self, side: Side, price: u64, id: &str) -> bool {
        let levels = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let Some(queue) = levels.get_mut(&price) else {
            return false;
        };
        let Some(pos) = queue.iter().position(|r| r.id == id) else {
            return false;
        };
        queue.remove(pos);
        if queue.is_empty() {
            levels.remove(&price);
        }
        true
    }

    /// Bids in priority order: best (highest) price first, FIFO within a price.
    pub fn bids(&self) -> impl Iterator<Item = (u64, &Resting)> {
        self.bids
            .iter()
            .rev()
            .flat_map(|(p, q)| q.iter().map(move |r| (*p, r)))
    }

    /// Asks in priority order: best (lowest) price first, FIFO within a price.
    pub fn asks(&self) -> impl Iterator<Item = (u64, &Resting)> {
        self.asks
            .iter()
            .flat_map(|(p, q)| q.iter().map(move |r| (*p, r)))
    }
}

/// Where a resting order lives, so cancel and HAS need no scan.
#[derive(Debug, Clone)]
struct Location {
    symbol: String,
    side: Side,
    price: u64,
}

/// All books of an engine plus an index of resting order ids. Order ids are
/// unique across instruments among resting orders.
#[derive(Debug, Clone)]
pub struct Books {
    books: BTreeMap<String, Book>,
    index: HashMap<String, Location>,
}

impl Books {
    pub fn new<S: AsRef<str>>(instruments: &[S]) -> Books {
        Books {
            books: instruments
                .iter()
                .map(|s| (s.as_ref().to_string(), Book::default()))
                .collect(),
            index: HashMap::new(),
        }
    }

    pub fn instruments(&self) -> impl Iterator<Item = &str> {
        self.books.keys().map(String::as_str)
    }

    pub fn book(&self, symbol: &str) -> Option<&Book> {
        self.books.get(symbol)
    }

    pub fn has(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    pub fn resting_count(&self) -> usize {
        self.index.len()
    }

    /// Matches the order and rests any remainder. Returns the trades in
    /// execution order.
    pub fn submit(&mut self, order: &NewOrder) -> Result<Vec<Trade>, Reject> {
        let Some(book) = self.books.get_mut(&order.symbol) else {
            return Err(Reject::UnknownSymbol);
        };
        if self.index.contains_key(&order.id) {
            return Err(Reject::DuplicateId);
        }
        let (fills, remaining) = book.match_incoming(order.side, order.qty, order.price);
        let mut trades = Vec::with_capacity(fills.len());
        for fill in fills {
            if fill.resting_done {
                self.index.remove(&fill.resting_id);
            }
            let (buy_id, sell_id) = match order.side {
                Side::Buy => (order.id.clone(), fill.resting_id),
                Side::Sell => (fill.resting_id, order.id.clone()),
            };
            trades.push(Trade {
                buy_id,
                sell_id,
                symbol: order.symbol.clone(),
                qty: fill.qty,
                price: fill.price,
            });
        }
        if remaining > 0 {
            book.rest(order.side, order.id.clone(), remaining, order.price);
            self.index.insert(
                order.id.clone(),
                Location {
                    symbol: order.symbol.clone(),
                    side: order.side,
                    price: order.price,
                },
            );
        }
        Ok(trades)
    }

    pub fn cancel(&mut self, id: &str) -> Result<(), Reject> {
        let Some(loc) = self.index.remove(id) else {
            return Err(Reject::UnknownId);
        };
        if let Some(book) = self.books.get_mut(&loc.symbol) {
            book.remove(loc.side, loc.price, id);
        }
        Ok(())
    }

    /// Every resting order, per instrument bids then asks, each in priority
    /// order. Submitting these to an empty `Books` with the same instruments
    /// rebuilds identical books (nothing crosses, and FIFO order is kept),
    /// which is how the replication snapshot works.
    pub fn resting_orders(&self) -> Vec<NewOrder> {
        let mut out = Vec::with_capacity(self.index.len());
        for (symbol, book) in &self.books {
            let mk = |side: Side, price: u64, r: &Resting| NewOrder {
                id: r.id.clone(),
                side,
                symbol: symbol.clone(),
                qty: r.qty,
                price,
            };
            out.extend(book.bids().map(|(p, r)| mk(Side::Buy, p, r)));
            out.extend(book.asks().map(|(p, r)| mk(Side::Sell, p, r)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(id: &str, side: Side, qty: u64, price: u64) -> NewOrder {
        NewOrder {
            id: id.into(),
            side,
            symbol: "DEMO".into(),
            qty,
            price,
        }
    }

    fn books() -> Books {
        Books::new(&["DEMO", "ACME"])
    }

    fn ids(book: &Book, side: Side) -> Vec<(String, u64, u64)> {
        let v: Vec<_> = match side {
            Side::Buy => book.bids().collect(),
            Side::Sell => book.asks().collect(),
        };
        v.into_iter()
            .map(|(p, r)| (r.id.clone(), r.qty, p))
            .collect()
    }

    #[test]
    fn non_crossing_orders_rest() {
        let mut b = books();
        assert!(b.submit(&o("b1", Side::Buy, 5, 99)).unwrap().is_empty());
        assert!(b.submit(&o("s1", Side::Sell, 5, 101)).unwrap().is_empty());
        assert!(b.has("b1") && b.has("s1"));
        assert_eq!(b.resting_count(), 2);
    }

    #[test]
    fn price_priority_then_time_priority() {
        let mut b = books();
        b.submit(&o("s1", Side::Sell, 1, 102)).unwrap();
        b.submit(&o("s2", Side::Sell, 1, 101)).unwrap();
        b.submit(&o("s3", Side::Sell, 1, 101)).unwrap();
        let trades = b.submit(&o("b1", Side::Buy, 3, 102)).unwrap();
        let order: Vec<_> = trades.iter().map(|t| t.sell_id.as_str()).collect();
        // Best price first (101), FIFO within it (s2 before s3), then 102.
        assert_eq!(order, ["s2", "s3", "s1"]);
        assert_eq!(
            trades.iter().map(|t| t.price).collect::<Vec<_>>(),
            [101, 101, 102]
        );
        assert_eq!(b.resting_count(), 0);
    }

    #[test]
    fn bids_priority_for_incoming_sell() {
        let mut b = books();
        b.submit(&o("b1", Side::Buy, 1, 99)).unwrap();
        b.submit(&o("b2", Side::Buy, 1, 100)).unwrap();
        let trades = b.submit(&o("s1", Side::Sell, 1, 98)).unwrap();
        assert_eq!(trades.len(), 1);
        assert_eq!(trades[0].buy_id, "b2");
        assert_eq!(trades[0].sell_id, "s1");
        // The resting order's price is the trade price.
        assert_eq!(trades[0].price, 100);
    }

    #[test]
    fn partial_fill_of_resting_order_keeps_its_place() {
        let mut b = books();
        b.submit(&o("s1", Side::Sell, 10, 100)).unwrap();
        b.submit(&o("s2", Side::Sell, 10, 100)).unwrap();
        let t = b.submit(&o("b1", Side::Buy, 4, 100)).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].sell_id.as_str(), t[0].qty), ("s1", 4));
        let asks = ids(b.book("DEMO").unwrap(), Side::Sell);
        assert_eq!(
            asks,
            [("s1".into(), 6, 100), ("s2".to_string(), 10, 100)].to_vec()
        );
        assert!(!b.has("b1"));
    }

    #[test]
    fn partial_fill_of_incoming_order_rests_remainder() {
        let mut b = books();
        b.submit(&o("s1", Side::Sell, 3, 100)).unwrap();
        let t = b.submit(&o("b1", Side::Buy, 10, 101)).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].qty, 3);
        assert!(!b.has("s1"));
        assert!(b.has("b1"));
        let bids = ids(b.book("DEMO").unwrap(), Side::Buy);
        assert_eq!(bids, [("b1".to_string(), 7, 101)].to_vec());
    }

    #[test]
    fn limit_price_is_respected() {
        let mut b = books();
        b.submit(&o("s1", Side::Sell, 1, 105)).unwrap();
        assert!(b.submit(&o("b1", Side::Buy, 1, 104)).unwrap().is_empty());
        assert!(b.has("s1") && b.has("b1"));
    }

    #[test]
    fn cancel_removes_and_unknown_is_rejected() {
        let mut b = books();
        b.submit(&o("b1", Side::Buy, 1, 100)).unwrap();
        b.submit(&o("b2", Side::Buy, 1, 100)).unwrap();
        assert_eq!(b.cancel("b1"), Ok(()));
        assert!(!b.has("b1"));
        assert_eq!(b.cancel("b1"), Err(Reject::UnknownId));
        let t = b.submit(&o("s1", Side::Sell, 1, 100)).unwrap();
        assert_eq!(t[0].buy_id, "b2");
        assert!(b.book("DEMO").unwrap().bids().next().is_none());
    }

    #[test]
    fn rejects_unknown_symbol_and_duplicate_id() {
        let mut b = books();
        let mut x = o("x", Side::Buy, 1, 1);
        x.symbol = "NOPE".into();
        assert_eq!(b.submit(&x), Err(Reject::UnknownSymbol));
        b.submit(&o("b1", Side::Buy, 1, 100)).unwrap();
        assert_eq!(
            b.submit(&o("b1", Side::Buy, 1, 100)),
            Err(Reject::DuplicateId)
        );
        // The same id on another instrument is also a duplicate.
        let mut y = o("b1", Side::Sell, 1, 100);
        y.symbol = "ACME".into();
        assert_eq!(b.submit(&y), Err(Reject::DuplicateId));
    }

    #[test]
    fn instruments_are_independent() {
        let mut b = books();
        b.submit(&o("b1", Side::Buy, 1, 100)).unwrap();
        let mut s = o("s1", Side::Sell, 1, 100);
        s.symbol = "ACME".into();
        assert!(b.submit(&s).unwrap().is_empty());
    }

    #[test]
    fn snapshot_rebuilds_identical_books() {
        let mut b = books();
        for (i, (side, qty, price)) in [
            (Side::Buy, 5, 99),
            (Side::Buy, 3, 100),
            (Side::Buy, 2, 99),
            (Side::Sell, 4, 103),
            (Side::Sell, 1, 101),
            (Side::Sell, 7, 101),
            (Side::Buy, 2, 101),
        ]
        .into_iter()
        .enumerate()
        {
            b.submit(&o(&format!("o{i}"), side, qty, price)).unwrap();
        }
        let snap = b.resting_orders();
        let mut copy = books();
        for order in &snap {
            assert!(copy.submit(order).unwrap().is_empty(), "snapshot crossed");
        }
        assert_eq!(copy.resting_orders(), snap);
        // And both continue identically.
        let next = o("z", Side::Buy, 9, 103);
        assert_eq!(b.submit(&next), copy.submit(&next));
        assert_eq!(b.resting_orders(), copy.resting_orders());
    }
}
