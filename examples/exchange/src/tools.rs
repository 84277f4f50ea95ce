//! The one-shot client commands used by the demo's checks: `smoke`, `order`
//! and `book --has`. Each talks to whichever engine is serving orders and
//! retries only where a retry cannot duplicate an order.

use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::book::{NewOrder, Side};
use crate::client::{Conn, find_active};
use crate::protocol::{Reply, Request};

/// Far above the load generator's prices, so the smoke sell rests instead
/// of trading with live bids and the smoke buy is sure to cross.
const SMOKE_PRICE: u64 = 1_000_000;

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Gives a found engine the rest of the deadline (at least one second) to
/// answer: a slow engine is a finding of its own, not a connection error.
fn connect_active(engines: &[String], deadline: Instant) -> Result<Conn, String> {
    let conn = find_active(engines, deadline)?;
    conn.set_timeout(remaining(deadline).max(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// What became of one order request.
enum Outcome {
    Acked(Vec<Reply>),
    /// The engine is no longer (or not yet) serving; safe to retry elsewhere.
    NotActive,
    /// Connection-level failure; whether the order was applied is unknown.
    Lost(String),
    /// A definite refusal or protocol error.
    Refused(String),
}

fn submit(conn: &mut Conn, order: &NewOrder) -> Outcome {
    match conn.request(&Request::New(order.clone())) {
        Err(e) => Outcome::Lost(format!("{}: {e}", conn.addr())),
        Ok(replies) => match replies.last() {
            Some(Reply::Ack { id }) if *id == order.id => Outcome::Acked(replies),
            Some(Reply::Rej { reason, .. }) if reason == "NOT_ACTIVE" => Outcome::NotActive,
            Some(Reply::Rej { reason, .. }) => Outcome::Refused(format!("rejected: {reason}")),
            Some(Reply::Err(e)) => Outcome::Refused(format!("engine said ERR {e}")),
            other => Outcome::Refused(format!("unexpected reply {other:?}")),
        },
    }
}

/// `smoke`: one resting sell and one crossing buy on the serving engine;
/// passes when both are acknowledged and the buy trades. Retries (with fresh
/// ids, so nothing is duplicated) while the engines are mid-failover.
pub fn smoke(engines: &[String], symbol: &str, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut last_problem = String::from("no attempt made");
    for attempt in 1.. {
        if attempt > 1 {
            if Instant::now() >= deadline {
                return Err(format!("gave up at the deadline: {last_problem}"));
            }
            thread::sleep(remaining(deadline).min(Duration::from_millis(100)));
        }
        let mut conn = connect_active(engines, deadline)?;
        let tag = format!("smoke-{}-{stamp}-{attempt}", std::process::id());
        let sell = NewOrder {
            id: format!("{tag}-s"),
            side: Side::Sell,
            symbol: symbol.to_string(),
            qty: 1,
            price: SMOKE_PRICE,
        };
        let buy = NewOrder {
            id: format!("{tag}-b"),
            side: Side::Buy,
            ..sell.clone()
        };
        match submit(&mut conn, &sell) {
            Outcome::Acked(_) => {}
            Outcome::NotActive => {
                last_problem = format!("{} is not active any more", conn.addr());
                continue;
            }
            Outcome::Lost(e) => {
                last_problem = e;
                continue;
            }
            Outcome::Refused(e) => return Err(format!("sell {}: {e}", sell.id)),
        }
        let replies = match submit(&mut conn, &buy) {
            Outcome::Acked(r) => r,
            Outcome::NotActive => {
                last_problem = format!("{} is not active any more", conn.addr());
                continue;
            }
            Outcome::Lost(e) => {
                last_problem = e;
                continue;
            }
            Outcome::Refused(e) => return Err(format!("buy {}: {e}", buy.id)),
        };
        let trade = replies.iter().find_map(|r| match r {
            Reply::Trade(t) if t.buy_id == buy.id => Some(t.clone()),
            _ => None,
        });
        let Some(trade) = trade else {
            return Err(format!(
                "crossing buy {} was acknowledged without a trade",
                buy.id
            ));
        };
        // Leave the book as found (best effort: the sell may have traded).
        let _ = conn.request(&Request::Cancel {
            id: sell.id.clone(),
        });
        return Ok(format!(
            "{}: {} and {} acknowledged, TRADE {} {} {} {} {}",
            conn.addr(),
            sell.id,
            buy.id,
            trade.buy_id,
            trade.sell_id,
            trade.symbol,
            trade.qty,
            trade.price
        ));
    }
    Err(last_problem)
}

/// `order`: places one order on the serving engine. Retried only on
/// `NOT_ACTIVE` (the order was certainly not applied); a lost connection is
/// reported, because a blind retry could place the order twice.
pub fn place(engines: &[String], order: &NewOrder, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut conn = connect_active(engines, deadline)?;
        match submit(&mut conn, order) {
            Outcome::Acked(_) => return Ok(()),
            Outcome::NotActive if Instant::now() < deadline => {
                thread::sleep(remaining(deadline).min(Duration::from_millis(50)));
            }
            Outcome::NotActive => return Err(format!("{} is not active", conn.addr())),
            Outcome::Lost(e) => {
                return Err(format!("{e} (the order may or may not have been accepted)"));
            }
            Outcome::Refused(e) => return Err(e),
        }
    }
}

/// `book --has`: whether the serving engine has the order resting. Read
/// only, so connection failures are simply retried until the deadline.
pub fn has(engines: &[String], id: &str, timeout: Duration) -> Result<bool, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut conn = connect_active(engines, deadline)?;
        let problem = match conn.request(&Request::Has { id: id.to_string() }) {
            Ok(replies) => match replies.last() {
                Some(Reply::Has { present, .. }) => return Ok(*present),
                Some(Reply::Err(e)) => return Err(format!("engine said ERR {e}")),
                other => format!("unexpected reply {other:?}"),
            },
            Err(e) => format!("{}: {e}", conn.addr()),
        };
        if Instant::now() >= deadline {
            return Err(problem);
        }
        thread::sleep(remaining(deadline).min(Duration::from_millis(50)));
    }
}
