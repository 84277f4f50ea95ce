//! The encrypted, authenticated channel between a daemon and its router. Pure: bytes in,
//! bytes out, no socket — so it is tested and fuzzed alone.
//!
//! A Noise handshake (`NNpsk0`, X25519, ChaCha20-Poly1305, SHA-256, through the `snow`
//! crate) whose pre-shared key is derived from the environment's daemon secret, then every
//! frame sealed with keys bound to that handshake:
//!
//! ```text
//! daemon → router   PREFACE | record( -> psk, e        payload: Hello )
//! router → daemon   record( <- e, ee                    payload: Greeting )
//! then both ways    record( ChaCha20-Poly1305(frames) ), nonce = the record's number
//! record = length:u16 BE | Noise message (at most 65,535 bytes)
//! ```
//!
//! Why this and not the earlier HMAC challenge–response: proofs over nonces authenticate a
//! handshake, not the frames after it, so whoever relays a daemon's connection to the real
//! router could forward the proofs and then inject frames of its own. Here the session keys
//! come from a Diffie–Hellman between two fresh ephemeral keys mixed with the secret: a
//! relay without the secret cannot read the first message, and even one that forwards every
//! byte learns nothing and cannot seal a record the other side opens. Each record's nonce is
//! its position in the stream, so a replayed, reordered, dropped or altered record does not
//! open and ends the connection.
//!
//! Nothing identifying travels in the clear: the router finds the environment by trying
//! the pre-shared key of each environment it serves on the first message (no Diffie–Hellman
//! per try: a key derivation and one AEAD open of a small payload), so an unauthenticated
//! peer learns neither which environments exist nor whether its guess was near.

use std::sync::Arc;

use hmac::{KeyInit, Mac};

/// The Noise protocol: no static keys (the pre-shared key is what authenticates), the
/// pre-shared key mixed in before the first message so even its payload is sealed.
pub const PATTERN: &str = "Noise_NNpsk0_25519_ChaChaPoly_SHA256";
/// Bound into the handshake: a peer of another protocol or version cannot complete it.
const PROLOGUE: &[u8] = b"lowtouch monitoring network v2";
/// What a daemon sends before its first record: lowtouch's channel, version 2. A router
/// that reads anything else (an older daemon, a port scanner) closes without a word.
pub const PREFACE: [u8; 4] = *b"LTN\x02";
/// Noise's limit on one message, and the AEAD tag each record carries.
pub const MAX_RECORD: usize = 65_535;
const TAG: usize = 16;
/// The most plaintext one record carries.
pub const MAX_PLAIN: usize = MAX_RECORD - TAG;
/// A daemon's first record (its ephemeral key, a hello and a tag) is well under this; a
/// longer one is not tried against any key, so a stranger cannot make the router work
/// through 64 KiB per environment.
pub const MAX_FIRST_RECORD: usize = 4096;
/// The shortest a first record can be: an ephemeral key and a tag.
const MIN_FIRST_RECORD: usize = 32 + TAG;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error(
        "the peer does not speak lowtouch's channel version 2 (an older lowtouch, or not lowtouch)"
    )]
    Preface,
    #[error("the handshake did not verify: the peer does not hold this environment's secret")]
    Handshake,
    #[error("record {0} did not open: it was altered, replayed, reordered or forged")]
    Record(u64),
    #[error("a first record of {0} bytes is over the limit of {MAX_FIRST_RECORD}")]
    TooLong(usize),
    #[error("noise: {0}")]
    Noise(String),
}

fn noise(e: snow::Error) -> ChannelError {
    ChannelError::Noise(e.to_string())
}

/// The pre-shared key of an environment: its daemon secret and its name through
/// HMAC-SHA256, so one secret shared by two environments still gives two keys.
pub fn psk(secret: &[u8], environment: &str) -> [u8; 32] {
    let mut m =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(b"lowtouch-psk-v2");
    m.update(&(environment.len() as u32).to_be_bytes());
    m.update(environment.as_bytes());
    m.finalize().into_bytes().into()
}

fn builder(psk: &[u8; 32]) -> Result<snow::Builder<'_>, ChannelError> {
    let params: snow::params::NoiseParams = PATTERN.parse().map_err(noise)?;
    snow::Builder::new(params)
        .psk(0, psk)
        .map_err(noise)?
        .prologue(PROLOGUE)
        .map_err(noise)
}

/// Appends `message` as one record.
fn push_record(out: &mut Vec<u8>, message: &[u8]) {
    out.extend_from_slice(&(message.len() as u16).to_be_bytes());
    out.extend_from_slice(message);
}

/// Cuts a byte stream into records; holds at most one record's bytes it has not handed out.
#[derive(Debug, Default)]
pub struct Records {
    buf: Vec<u8>,
    start: usize,
}

impl Records {
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole record, `None` when more bytes are needed.
    pub fn next_record(&mut self) -> Option<&[u8]> {
        let rest = &self.buf[self.start..];
        if rest.len() < 2 {
            self.compact();
            return None;
        }
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        if rest.len() < 2 + len {
            self.compact();
            return None;
        }
        let at = self.start + 2;
        self.start = at + len;
        Some(&self.buf[at..at + len])
    }

    /// Drops what was handed out, so the buffer never grows past one record and a read.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Bytes received but not yet a whole record.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Those bytes (what arrived behind a handshake's record belongs to the channel).
    pub fn rest(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// The daemon's side of the handshake.
pub struct Initiator {
    state: snow::HandshakeState,
}

impl Initiator {
    /// Starts a handshake for `environment` with its daemon `secret`; returns the bytes to
    /// send first (the preface and the first record, `hello` sealed inside).
    pub fn start(
        secret: &[u8],
        environment: &str,
        hello: &[u8],
    ) -> Result<(Initiator, Vec<u8>), ChannelError> {
        let key = psk(secret, environment);
        let mut state = builder(&key)?.build_initiator().map_err(noise)?;
        let mut message = vec![0u8; MAX_RECORD];
        let n = state.write_message(hello, &mut message).map_err(noise)?;
        let mut out = PREFACE.to_vec();
        push_record(&mut out, &message[..n]);
        Ok((Initiator { state }, out))
    }

    /// Reads the router's answer: its payload, and the channel's keys. An answer that does
    /// not open comes from someone without the secret.
    pub fn finish(mut self, record: &[u8]) -> Result<(Vec<u8>, Sealer, Opener), ChannelError> {
        let mut payload = vec![0u8; MAX_RECORD];
        let n = self
            .state
            .read_message(record, &mut payload)
            .map_err(|_| ChannelError::Handshake)?;
        payload.truncate(n);
        let (sealer, opener) = keys(self.state)?;
        Ok((payload, sealer, opener))
    }
}

/// The router's side of the handshake, once the first record opened.
pub struct Responder {
    state: snow::HandshakeState,
}

impl Responder {
    /// Opens the daemon's first record with the key of each candidate environment in turn
    /// (`(name, pre-shared key)`); returns the one that opened it and the payload. `None`
    /// of them: the peer holds no secret served here.
    pub fn open<'a>(
        candidates: impl IntoIterator<Item = (&'a str, &'a [u8; 32])>,
        record: &[u8],
    ) -> Result<(&'a str, Vec<u8>, Responder), ChannelError> {
        if record.len() > MAX_FIRST_RECORD {
            return Err(ChannelError::TooLong(record.len()));
        }
        if record.len() < MIN_FIRST_RECORD {
            return Err(ChannelError::Handshake);
        }
        let mut payload = vec![0u8; MAX_RECORD];
        for (environment, key) in candidates {
            let mut state = builder(key)?.build_responder().map_err(noise)?;
            if let Ok(n) = state.read_message(record, &mut payload) {
                payload.truncate(n);
                return Ok((environment, payload, Responder { state }));
            }
        }
        Err(ChannelError::Handshake)
    }

    /// The answer to send (`greeting` sealed inside), and the channel's keys.
    pub fn answer(mut self, greeting: &[u8]) -> Result<(Vec<u8>, Sealer, Opener), ChannelError> {
        let mut message = vec![0u8; MAX_RECORD];
        let n = self
            .state
            .write_message(greeting, &mut message)
            .map_err(noise)?;
        let mut out = Vec::with_capacity(2 + n);
        push_record(&mut out, &message[..n]);
        let (sealer, opener) = keys(self.state)?;
        Ok((out, sealer, opener))
    }
}

fn keys(state: snow::HandshakeState) -> Result<(Sealer, Opener), ChannelError> {
    let transport = Arc::new(state.into_stateless_transport_mode().map_err(noise)?);
    Ok((
        Sealer {
            transport: transport.clone(),
            next: 0,
            scratch: Vec::new(),
        },
        Opener {
            transport,
            next: 0,
            records: Records::default(),
            scratch: Vec::new(),
        },
    ))
}

/// Seals what one side sends: records numbered from 0, in the order they are sealed (so
/// sealing and writing happen under one lock wherever two threads send).
pub struct Sealer {
    transport: Arc<snow::StatelessTransportState>,
    next: u64,
    scratch: Vec<u8>,
}

impl Sealer {
    /// Appends `plain` to `out` as sealed records (one per [`MAX_PLAIN`] bytes).
    pub fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), ChannelError> {
        self.scratch.resize(MAX_RECORD, 0);
        for chunk in plain.chunks(MAX_PLAIN) {
            let n = self
                .transport
                .write_message(self.next, chunk, &mut self.scratch)
                .map_err(noise)?;
            self.next += 1;
            push_record(out, &self.scratch[..n]);
        }
        Ok(())
    }

    /// `plain` as sealed records.
    pub fn sealed(&mut self, plain: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let mut out = Vec::with_capacity(plain.len() + 2 * (TAG + 2));
        self.seal(plain, &mut out)?;
        Ok(out)
    }
}

/// Opens what the other side sent, record by record, in order.
pub struct Opener {
    transport: Arc<snow::StatelessTransportState>,
    next: u64,
    records: Records,
    scratch: Vec<u8>,
}

impl Opener {
    /// Bytes that arrived after the handshake's last record (they may hold sealed records).
    pub fn feed(&mut self, bytes: &[u8]) {
        self.records.feed(bytes);
    }

    /// The plaintext of every whole record received, appended to `out`; how many records
    /// opened (only those prove the peer alive: bytes alone could be anyone's). After an
    /// error the connection is done.
    pub fn open(&mut self, out: &mut Vec<u8>) -> Result<usize, ChannelError> {
        self.scratch.resize(MAX_RECORD, 0);
        let mut opened = 0;
        while let Some(record) = self.records.next_record() {
            let n = self
                .transport
                .read_message(self.next, record, &mut self.scratch)
                .map_err(|_| ChannelError::Record(self.next))?;
            self.next += 1;
            opened += 1;
            out.extend_from_slice(&self.scratch[..n]);
        }
        Ok(opened)
    }

    /// Bytes received but not yet a whole record.
    pub fn pending(&self) -> usize {
        self.records.pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &[u8] = b"0123456789abcdef0123456789abcdef";

    /// One side's end of a channel.
    type End = (Sealer, Opener);

    /// A whole handshake; returns the daemon's and the router's channel ends.
    fn connect(
        daemon_secret: &[u8],
        router_secrets: &[(&str, &[u8])],
    ) -> Result<(End, End), ChannelError> {
        let (initiator, first) = Initiator::start(daemon_secret, "uat-1", b"hello")?;
        assert_eq!(&first[..4], &PREFACE);
        let mut records = Records::default();
        records.feed(&first[4..]);
        let record = records.next_record().unwrap().to_vec();
        let keys: Vec<(&str, [u8; 32])> = router_secrets
            .iter()
            .map(|(env, secret)| (*env, psk(secret, env)))
            .collect();
        let (env, hello, responder) = Responder::open(keys.iter().map(|(e, k)| (*e, k)), &record)?;
        assert_eq!((env, hello.as_slice()), ("uat-1", &b"hello"[..]));
        let (answer, router_sealer, router_opener) = responder.answer(b"greeting")?;
        let (greeting, daemon_sealer, daemon_opener) = initiator.finish(&answer[2..])?;
        assert_eq!(greeting, b"greeting");
        Ok((
            (daemon_sealer, daemon_opener),
            (router_sealer, router_opener),
        ))
    }

    #[test]
    fn both_sides_agree_and_records_open_in_order() {
        let ((mut ds, mut dop), (mut rs, mut rop)) = connect(
            K,
            &[("uat-2", b"another secret of 32 bytes......"), ("uat-1", K)],
        )
        .unwrap();
        // A frame bigger than one record is split and joined again.
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let wire = rs.sealed(&big).unwrap();
        assert!(wire.len() > big.len() && wire.len() < big.len() + 100);
        for piece in wire.chunks(1000) {
            dop.feed(piece);
        }
        let mut got = Vec::new();
        dop.open(&mut got).unwrap();
        assert_eq!(got, big);
        let wire = ds.sealed(b"auth").unwrap();
        rop.feed(&wire);
        let mut got = Vec::new();
        rop.open(&mut got).unwrap();
        assert_eq!(got, b"auth");
    }

    #[test]
    fn a_router_without_the_secret_cannot_open_the_hello() {
        let err = connect(K, &[("uat-1", b"not the daemon's secret, 32 byte")])
            .err()
            .unwrap();
        assert_eq!(err, ChannelError::Handshake);
        // The same secret under another environment's name is another key.
        let (_, first) = Initiator::start(K, "uat-1", b"hello").unwrap();
        let key = psk(K, "uat-2");
        assert!(Responder::open([("uat-2", &key)], &first[6..]).is_err());
    }

    #[test]
    fn a_daemon_refuses_an_answer_not_sealed_with_the_secret() {
        let (initiator, first) = Initiator::start(K, "uat-1", b"hello").unwrap();
        // An impostor answers its own handshake with a key it guessed.
        let guess = psk(b"guessed secret of 32 bytes......", "uat-1");
        assert!(Responder::open([("uat-1", &guess)], &first[6..]).is_err());
        let mut impostor = builder(&guess).unwrap().build_responder().unwrap();
        let mut scratch = vec![0u8; MAX_RECORD];
        // It cannot even read the hello; it answers blindly.
        let _ = impostor.read_message(&first[6..], &mut scratch);
        let forged = vec![7u8; 48];
        assert_eq!(
            initiator.finish(&forged).err(),
            Some(ChannelError::Handshake)
        );
    }

    #[test]
    fn altered_replayed_reordered_or_injected_records_do_not_open() {
        let ((_, mut dop), (mut rs, _)) = connect(K, &[("uat-1", K)]).unwrap();
        let first = rs.sealed(b"configure").unwrap();
        let second = rs.sealed(b"command").unwrap();
        // Reordered: the second record first.
        let mut out = Vec::new();
        dop.feed(&second);
        assert_eq!(dop.open(&mut out), Err(ChannelError::Record(0)));

        let ((_, mut dop), (mut rs, _)) = connect(K, &[("uat-1", K)]).unwrap();
        let first_again = rs.sealed(b"configure").unwrap();
        // A record of an earlier session (other keys) replayed into this one.
        dop.feed(&first);
        assert_eq!(dop.open(&mut out), Err(ChannelError::Record(0)));

        let ((_, mut dop), (mut rs, _)) = connect(K, &[("uat-1", K)]).unwrap();
        let mut wire = rs.sealed(b"configure").unwrap();
        dop.feed(&wire);
        dop.open(&mut out).unwrap();
        // The same record again: a replay within the session.
        dop.feed(&wire);
        assert_eq!(dop.open(&mut out), Err(ChannelError::Record(1)));

        let ((_, mut dop), (mut rs, _)) = connect(K, &[("uat-1", K)]).unwrap();
        wire = rs.sealed(b"configure").unwrap();
        // One bit flipped.
        wire[5] ^= 1;
        dop.feed(&wire);
        assert_eq!(dop.open(&mut out), Err(ChannelError::Record(0)));

        // A plaintext frame injected where a record is due.
        let ((_, mut dop), _) = connect(K, &[("uat-1", K)]).unwrap();
        let mut injected = Vec::new();
        push_record(&mut injected, br#"{"t":"command","id":1}"#);
        dop.feed(&injected);
        assert_eq!(dop.open(&mut out), Err(ChannelError::Record(0)));
        drop(first_again);
    }

    #[test]
    fn records_split_anywhere_are_joined() {
        let mut wire = Vec::new();
        push_record(&mut wire, b"one");
        push_record(&mut wire, &[]);
        push_record(&mut wire, &[9u8; 300]);
        for split in 0..wire.len() {
            let mut r = Records::default();
            let mut got: Vec<Vec<u8>> = Vec::new();
            r.feed(&wire[..split]);
            while let Some(x) = r.next_record() {
                got.push(x.to_vec());
            }
            r.feed(&wire[split..]);
            while let Some(x) = r.next_record() {
                got.push(x.to_vec());
            }
            assert_eq!(got, vec![b"one".to_vec(), vec![], vec![9u8; 300]]);
            assert_eq!(r.pending(), 0);
        }
    }

    proptest::proptest! {
        /// Whatever a stranger sends as a first record, the router answers without a panic
        /// and opens nothing.
        #[test]
        fn any_first_record_is_refused_without_panic(record in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let key = psk(K, "uat-1");
            proptest::prop_assert!(Responder::open([("uat-1", &key)], &record).is_err());
        }

        /// Whatever arrives on an established channel in place of its records, nothing
        /// opens and nothing panics.
        #[test]
        fn any_bytes_on_a_channel_open_nothing(chunks in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 0..8)) {
            let ((_, mut opener), _) = connect(K, &[("uat-1", K)]).unwrap();
            let mut out = Vec::new();
            for c in &chunks {
                opener.feed(c);
                if opener.open(&mut out).is_err() {
                    break;
                }
            }
            proptest::prop_assert!(out.is_empty());
        }
    }
}
