//! The wire formats: parsing and formatting of every line exchanged over TCP,
//! both the client protocol (requests and replies) and the replication
//! protocol between primary and backup. Pure functions, no I/O, so malformed
//! input can be tested without sockets; nothing here panics on bad input.
//!
//! Every reply to a client request ends with exactly one *terminal* line
//! (see [`Reply::is_terminal`]); `TRADE`, `BID` and `ASK` lines are the only
//! non-terminal ones, so a client reads until the first terminal line.

use std::fmt;
use std::io::{self, BufRead, Read};

use crate::book::{NewOrder, Side, Trade};

/// Longest accepted request line, in bytes; longer lines are refused rather
/// than buffered without bound.
pub const MAX_LINE: usize = 1024;

/// A client request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `NEW <id> <BUY|SELL> <SYMBOL> <qty> <price>`
    New(NewOrder),
    /// `CANCEL <id>`
    Cancel { id: String },
    /// `HAS <id>`
    Has { id: String },
    /// `BOOK <SYMBOL>`
    Book { symbol: String },
    /// `STATUS`
    Status,
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::New(o) => write!(
                f,
                "NEW {} {} {} {} {}",
                o.id, o.side, o.symbol, o.qty, o.price
            ),
            Request::Cancel { id } => write!(f, "CANCEL {id}"),
            Request::Has { id } => write!(f, "HAS {id}"),
            Request::Book { symbol } => write!(f, "BOOK {symbol}"),
            Request::Status => f.write_str("STATUS"),
        }
    }
}

fn is_token_char(c: char, extra: &str) -> bool {
    c.is_ascii_alphanumeric() || extra.contains(c)
}

/// Order ids: 1-64 characters of `[A-Za-z0-9_.:-]`.
pub fn valid_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.chars().all(|c| is_token_char(c, "_.:-"))
}

/// Symbols: 1-16 characters of `[A-Za-z0-9_.-]`.
pub fn valid_symbol(s: &str) -> bool {
    (1..=16).contains(&s.len()) && s.chars().all(|c| is_token_char(c, "_.-"))
}

/// Strictly positive decimal integer (no sign, no spaces).
pub fn parse_positive(s: &str, what: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} must be a positive integer, got {s:?}"));
    }
    match s.parse::<u64>() {
        Ok(0) => Err(format!("{what} must be positive")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{what} is too large: {s}")),
    }
}

fn parse_u64(s: &str, what: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} must be an integer, got {s:?}"));
    }
    s.parse::<u64>()
        .map_err(|_| format!("{what} is too large: {s}"))
}

fn id_arg(s: &str) -> Result<String, String> {
    if valid_id(s) {
        Ok(s.to_string())
    } else {
        Err(format!("bad order id {s:?}"))
    }
}

fn symbol_arg(s: &str) -> Result<String, String> {
    if valid_symbol(s) {
        Ok(s.to_string())
    } else {
        Err(format!("bad symbol {s:?}"))
    }
}

fn expect_args(verb: &str, args: &[&str], n: usize, usage: &str) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!(
            "{verb} takes {n} argument(s): {usage} (got {})",
            args.len()
        ))
    }
}

/// Parses one request line (without the newline). Verbs and sides are
/// case-insensitive so a human with `nc` can type them; ids and symbols are
/// case-sensitive.
pub fn parse_request(line: &str) -> Result<Request, String> {
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    let Some((verb, args)) = words.split_first() else {
        return Err("empty request".into());
    };
    match verb.to_ascii_uppercase().as_str() {
        "NEW" => {
            expect_args("NEW", args, 5, "NEW <id> <BUY|SELL> <SYMBOL> <qty> <price>")?;
            let side = Side::parse(args[1])
                .ok_or_else(|| format!("side must be BUY or SELL, got {:?}", args[1]))?;
            Ok(Request::New(NewOrder {
                id: id_arg(args[0])?,
                side,
                symbol: symbol_arg(args[2])?,
                qty: parse_positive(args[3], "qty")?,
                price: parse_positive(args[4], "price")?,
            }))
        }
        "CANCEL" => {
            expect_args("CANCEL", args, 1, "CANCEL <id>")?;
            Ok(Request::Cancel {
                id: id_arg(args[0])?,
            })
        }
        "HAS" => {
            expect_args("HAS", args, 1, "HAS <id>")?;
            Ok(Request::Has {
                id: id_arg(args[0])?,
            })
        }
        "BOOK" => {
            expect_args("BOOK", args, 1, "BOOK <SYMBOL>")?;
            Ok(Request::Book {
                symbol: symbol_arg(args[0])?,
            })
        }
        "STATUS" => {
            expect_args("STATUS", args, 0, "STATUS")?;
            Ok(Request::Status)
        }
        _ => Err(format!("unknown request {verb:?}")),
    }
}

/// One reply line sent by the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `TRADE <buy_id> <sell_id> <SYMBOL> <qty> <price>` — non-terminal,
    /// precedes the `ACK` of the order that caused it.
    Trade(Trade),
    /// `ACK <id>` — the order was accepted (matched, rested, replicated).
    Ack { id: String },
    /// `REJ <id> <REASON>` — order or cancel refused.
    Rej { id: String, reason: String },
    /// `CANCELED <id>`
    Canceled { id: String },
    /// `HAS <id> YES|NO`
    Has { id: String, present: bool },
    /// `BID <id> <qty> <price>` / `ASK <id> <qty> <price>` — non-terminal
    /// lines of a `BOOK` dump, in priority order.
    Level {
        side: Side,
        id: String,
        qty: u64,
        price: u64,
    },
    /// `END` — ends a `BOOK` dump.
    End,
    /// `STATUS <name> <role> <state>`
    Status {
        name: String,
        role: String,
        state: String,
    },
    /// `ERR <reason...>` — the request was malformed; free text follows.
    Err(String),
}

impl Reply {
    /// Whether this line ends the reply to one request.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Reply::Trade(_) | Reply::Level { .. })
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Trade(t) => write!(
                f,
                "TRADE {} {} {} {} {}",
                t.buy_id, t.sell_id, t.symbol, t.qty, t.price
            ),
            Reply::Ack { id } => write!(f, "ACK {id}"),
            Reply::Rej { id, reason } => write!(f, "REJ {id} {reason}"),
            Reply::Canceled { id } => write!(f, "CANCELED {id}"),
            Reply::Has { id, present } => {
                write!(f, "HAS {id} {}", if *present { "YES" } else { "NO" })
            }
            Reply::Level {
                side,
                id,
                qty,
                price,
            } => {
                let tag = match side {
                    Side::Buy => "BID",
                    Side::Sell => "ASK",
                };
                write!(f, "{tag} {id} {qty} {price}")
            }
            Reply::End => f.write_str("END"),
            Reply::Status { name, role, state } => write!(f, "STATUS {name} {role} {state}"),
            // Reasons are single-line by construction; flatten just in case
            // so an ERR can never split into two lines on the wire.
            Reply::Err(reason) => write!(f, "ERR {}", reason.replace(['\r', '\n'], " ")),
        }
    }
}

/// Parses one reply line (client side).
pub fn parse_reply(line: &str) -> Result<Reply, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if let Some(rest) = line.strip_prefix("ERR")
        && (rest.is_empty() || rest.starts_with(' '))
    {
        return Ok(Reply::Err(rest.trim().to_string()));
    }
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    let bad = || format!("malformed reply {line:?}");
    let Some((verb, args)) = words.split_first() else {
        return Err("empty reply".into());
    };
    let reply = match (*verb, args) {
        ("TRADE", [b, s, sym, q, p]) => Reply::Trade(Trade {
            buy_id: b.to_string(),
            sell_id: s.to_string(),
            symbol: sym.to_string(),
            qty: parse_u64(q, "qty")?,
            price: parse_u64(p, "price")?,
        }),
        ("ACK", [id]) => Reply::Ack { id: id.to_string() },
        ("REJ", [id, reason]) => Reply::Rej {
            id: id.to_string(),
            reason: reason.to_string(),
        },
        ("CANCELED", [id]) => Reply::Canceled { id: id.to_string() },
        ("HAS", [id, yn]) => Reply::Has {
            id: id.to_string(),
            present: match *yn {
                "YES" => true,
                "NO" => false,
                _ => return Err(bad()),
            },
        },
        ("BID" | "ASK", [id, q, p]) => Reply::Level {
            side: if *verb == "BID" {
                Side::Buy
            } else {
                Side::Sell
            },
            id: id.to_string(),
            qty: parse_u64(q, "qty")?,
            price: parse_u64(p, "price")?,
        },
        ("END", []) => Reply::End,
        ("STATUS", [name, role, state]) => Reply::Status {
            name: name.to_string(),
            role: role.to_string(),
            state: state.to_string(),
        },
        _ => return Err(bad()),
    };
    Ok(reply)
}

/// A replication-channel line. The backup connects and sends `HELLO`; the
/// primary answers with `SNAPSHOT` followed by `count` `NEW` request lines
/// (the resting orders in priority order); the backup answers `SYNCED`. Then
/// the primary streams `OP` lines (each answered by `ACK` with the same
/// sequence number) and `HB` heartbeats (not answered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repl {
    /// backup → primary: `HELLO <name>`
    Hello { name: String },
    /// primary → backup: `SNAPSHOT <seq> <count> <SYM,SYM,...>`
    Snapshot {
        seq: u64,
        count: u64,
        instruments: Vec<String>,
    },
    /// backup → primary: `SYNCED <seq>`
    Synced { seq: u64 },
    /// primary → backup: `OP <seq> <NEW ...|CANCEL ...>`
    Op { seq: u64, request: Request },
    /// backup → primary: `ACK <seq>`
    Ack { seq: u64 },
    /// primary → backup: `HB <seq>`
    Heartbeat { seq: u64 },
}

impl fmt::Display for Repl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repl::Hello { name } => write!(f, "HELLO {name}"),
            Repl::Snapshot {
                seq,
                count,
                instruments,
            } => write!(f, "SNAPSHOT {seq} {count} {}", instruments.join(",")),
            Repl::Synced { seq } => write!(f, "SYNCED {seq}"),
            Repl::Op { seq, request } => write!(f, "OP {seq} {request}"),
            Repl::Ack { seq } => write!(f, "ACK {seq}"),
            Repl::Heartbeat { seq } => write!(f, "HB {seq}"),
        }
    }
}

pub fn parse_repl(line: &str) -> Result<Repl, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let bad = || format!("malformed replication line {line:?}");
    let (verb, rest) = line.split_once(' ').ok_or_else(bad)?;
    let msg = match verb {
        "HELLO" if !rest.is_empty() && !rest.contains(' ') => Repl::Hello {
            name: rest.to_string(),
        },
        "SNAPSHOT" => {
            let words: Vec<&str> = rest.split(' ').collect();
            let [seq, count, syms] = words.as_slice() else {
                return Err(bad());
            };
            let instruments: Vec<String> = syms.split(',').map(str::to_string).collect();
            if !instruments.iter().all(|s| valid_symbol(s)) {
                return Err(bad());
            }
            Repl::Snapshot {
                seq: parse_u64(seq, "seq")?,
                count: parse_u64(count, "count")?,
                instruments,
            }
        }
        "SYNCED" => Repl::Synced {
            seq: parse_u64(rest, "seq")?,
        },
        "ACK" => Repl::Ack {
            seq: parse_u64(rest, "seq")?,
        },
        "HB" => Repl::Heartbeat {
            seq: parse_u64(rest, "seq")?,
        },
        "OP" => {
            let (seq, req) = rest.split_once(' ').ok_or_else(bad)?;
            let request = parse_request(req)?;
            if !matches!(request, Request::New(_) | Request::Cancel { .. }) {
                return Err(bad());
            }
            Repl::Op {
                seq: parse_u64(seq, "seq")?,
                request,
            }
        }
        _ => return Err(bad()),
    };
    Ok(msg)
}

/// Reads one `\n`-terminated line of at most [`MAX_LINE`] bytes, without
/// the line ending. `Ok(None)` is a clean end of stream. Invalid UTF-8 is
/// replaced rather than refused, so the parser answers it with `ERR` and the
/// connection stays usable; an over-long line is an `InvalidData` error,
/// because the stream cannot be resynchronised without buffering it.
pub fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let limit = MAX_LINE as u64 + 1;
    let n = reader.by_ref().take(limit).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_LINE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("line longer than {MAX_LINE} bytes"),
        ));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_line_framing() {
        let long = "x".repeat(MAX_LINE + 10);
        let mut bytes = b"STATUS\r\nHAS a\n".to_vec();
        bytes.extend_from_slice(&[0xff, b'\n']);
        bytes.extend_from_slice(format!("{long}\n").as_bytes());
        let mut r = io::Cursor::new(bytes);
        assert_eq!(read_line(&mut r).unwrap().as_deref(), Some("STATUS"));
        assert_eq!(read_line(&mut r).unwrap().as_deref(), Some("HAS a"));
        assert_eq!(read_line(&mut r).unwrap().as_deref(), Some("\u{fffd}"));
        assert!(read_line(&mut r).is_err());
        let mut r = io::Cursor::new(b"tail".to_vec());
        assert_eq!(read_line(&mut r).unwrap().as_deref(), Some("tail"));
        assert_eq!(read_line(&mut r).unwrap(), None);
    }

    fn new(id: &str, side: Side, sym: &str, qty: u64, price: u64) -> Request {
        Request::New(NewOrder {
            id: id.into(),
            side,
            symbol: sym.into(),
            qty,
            price,
        })
    }

    #[test]
    fn parses_every_request() {
        assert_eq!(
            parse_request("NEW o1 BUY DEMO 10 100"),
            Ok(new("o1", Side::Buy, "DEMO", 10, 100))
        );
        assert_eq!(
            parse_request("  new o-2.x sell ACME 1 7 \r"),
            Ok(new("o-2.x", Side::Sell, "ACME", 1, 7))
        );
        assert_eq!(
            parse_request("CANCEL o1"),
            Ok(Request::Cancel { id: "o1".into() })
        );
        assert_eq!(
            parse_request("HAS o1"),
            Ok(Request::Has { id: "o1".into() })
        );
        assert_eq!(
            parse_request("BOOK DEMO"),
            Ok(Request::Book {
                symbol: "DEMO".into()
            })
        );
        assert_eq!(parse_request("STATUS"), Ok(Request::Status));
    }

    #[test]
    fn request_round_trips() {
        for r in [
            new("a", Side::Sell, "DEMO", 3, 4),
            Request::Cancel { id: "a".into() },
            Request::Has { id: "a".into() },
            Request::Book { symbol: "X".into() },
            Request::Status,
        ] {
            assert_eq!(parse_request(&r.to_string()), Ok(r));
        }
    }

    #[test]
    fn rejects_malformed_requests() {
        for bad in [
            "",
            "   ",
            "FOO",
            "NEW",
            "NEW o1 BUY DEMO 10",
            "NEW o1 BUY DEMO 10 100 extra",
            "NEW o1 HOLD DEMO 10 100",
            "NEW o1 BUY DEMO 0 100",
            "NEW o1 BUY DEMO 10 0",
            "NEW o1 BUY DEMO -1 100",
            "NEW o1 BUY DEMO +1 100",
            "NEW o1 BUY DEMO 1.5 100",
            "NEW o1 BUY DEMO 99999999999999999999999 100",
            "NEW o/1 BUY DEMO 1 100",
            "NEW o1 BUY DE$MO 1 100",
            "NEW o1 BUY WAYTOOLONGSYMBOLNAME 1 100",
            "CANCEL",
            "CANCEL a b",
            "HAS",
            "BOOK",
            "STATUS now",
            "NEW \u{e9}t\u{e9} BUY DEMO 1 1",
        ] {
            assert!(parse_request(bad).is_err(), "accepted {bad:?}");
        }
        let long_id = "x".repeat(65);
        assert!(parse_request(&format!("HAS {long_id}")).is_err());
    }

    #[test]
    fn reply_round_trips_and_terminality() {
        let replies = [
            Reply::Trade(Trade {
                buy_id: "b".into(),
                sell_id: "s".into(),
                symbol: "DEMO".into(),
                qty: 2,
                price: 100,
            }),
            Reply::Ack { id: "b".into() },
            Reply::Rej {
                id: "b".into(),
                reason: "NOT_ACTIVE".into(),
            },
            Reply::Canceled { id: "b".into() },
            Reply::Has {
                id: "b".into(),
                present: true,
            },
            Reply::Has {
                id: "b".into(),
                present: false,
            },
            Reply::Level {
                side: Side::Buy,
                id: "b".into(),
                qty: 1,
                price: 2,
            },
            Reply::Level {
                side: Side::Sell,
                id: "s".into(),
                qty: 1,
                price: 3,
            },
            Reply::End,
            Reply::Status {
                name: "p".into(),
                role: "primary".into(),
                state: "READY".into(),
            },
            Reply::Err("bad order id \"x/\"".into()),
        ];
        for r in replies {
            let line = r.to_string();
            assert!(!line.contains('\n'));
            assert_eq!(parse_reply(&line), Ok(r.clone()), "{line}");
        }
        assert!(!parse_reply("TRADE b s DEMO 1 1").unwrap().is_terminal());
        assert!(!parse_reply("BID b 1 1").unwrap().is_terminal());
        assert!(parse_reply("END").unwrap().is_terminal());
        assert!(parse_reply("ERR").unwrap().is_terminal());
    }

    #[test]
    fn err_reply_is_always_one_line() {
        let line = Reply::Err("a\nb".into()).to_string();
        assert_eq!(line, "ERR a b");
    }

    #[test]
    fn rejects_malformed_replies() {
        for bad in [
            "",
            "ACK",
            "ACK a b",
            "HAS a MAYBE",
            "TRADE a b C 1",
            "BID a x 1",
            "ERRX",
            "STATUS a b",
            "HELLO",
        ] {
            assert!(parse_reply(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn repl_round_trips() {
        for m in [
            Repl::Hello { name: "b".into() },
            Repl::Snapshot {
                seq: 7,
                count: 2,
                instruments: vec!["DEMO".into(), "ACME".into()],
            },
            Repl::Synced { seq: 7 },
            Repl::Op {
                seq: 8,
                request: new("o", Side::Buy, "DEMO", 1, 2),
            },
            Repl::Op {
                seq: 9,
                request: Request::Cancel { id: "o".into() },
            },
            Repl::Ack { seq: 9 },
            Repl::Heartbeat { seq: 9 },
        ] {
            assert_eq!(parse_repl(&m.to_string()), Ok(m.clone()));
        }
    }

    #[test]
    fn rejects_malformed_repl() {
        for bad in [
            "",
            "HB",
            "HB x",
            "OP 1 STATUS",
            "OP x NEW a BUY DEMO 1 1",
            "OP 1",
            "SNAPSHOT 1 2",
            "SNAPSHOT 1 2 DE$MO",
            "HELLO a b",
            "WHAT 1",
        ] {
            assert!(parse_repl(bad).is_err(), "accepted {bad:?}");
        }
    }
}
