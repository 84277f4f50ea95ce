//! Authentication of a daemon to the router, and of the router to the daemon: an HMAC-
//! SHA256 challenge–response over a per-environment shared secret. Pure.
//!
//! ```text
//! daemon → router   Hello     { daemon, environment, nonce: Nd }
//! router → daemon   Challenge { nonce: Nr, proof: HMAC(K, "router" | env | daemon | Nd | Nr) }
//! daemon → router   Auth      { proof: HMAC(K, "daemon" | env | daemon | Nd | Nr) }
//! ```
//!
//! Each side proves it holds the secret for this environment and this daemon, over nonces
//! both sides chose, so a recorded exchange cannot be replayed and a proof cannot be
//! reflected (the roles are part of the MAC). Mutual, because daemons run commands such as
//! `kill -9`: a daemon obeys only a router that knows the secret. Why not TLS client
//! certificates (the other choice the issue allows): one secret per environment is what
//! test teams can hand out and rotate; certificates need a CA. The channel itself is not
//! encrypted — the commands and observations are not secret, and secrets never travel.
//! See ARCHITECTURE.md.

use hmac::{KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Which side a proof is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Router,
    Daemon,
}

/// A fresh nonce: 32 random bytes from the OS, as hex.
pub fn nonce() -> String {
    let mut bytes = [0u8; 32];
    // getrandom(2): blocks only before the kernel's pool is initialised at boot.
    // SAFETY: writes at most `bytes.len()` bytes into `bytes`.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        // Never weaker than the clock and the pid mixed through SHA-256.
        use sha2::Digest;
        let seed = format!(
            "{:?}{}{:?}",
            std::time::SystemTime::now(),
            std::process::id(),
            std::thread::current().id()
        );
        bytes.copy_from_slice(&Sha256::digest(seed.as_bytes()));
    }
    hex::encode(bytes)
}

fn mac(
    secret: &[u8],
    side: Side,
    environment: &str,
    daemon: &str,
    nd: &str,
    nr: &str,
) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    let label: &[u8] = match side {
        Side::Router => b"lowtouch-router-v1",
        Side::Daemon => b"lowtouch-daemon-v1",
    };
    // Length-prefixed fields: no two different inputs make the same byte string.
    for field in [
        label,
        environment.as_bytes(),
        daemon.as_bytes(),
        nd.as_bytes(),
        nr.as_bytes(),
    ] {
        m.update(&(field.len() as u32).to_be_bytes());
        m.update(field);
    }
    m
}

/// The proof `side` sends, as hex.
pub fn proof(
    secret: &[u8],
    side: Side,
    environment: &str,
    daemon: &str,
    nd: &str,
    nr: &str,
) -> String {
    hex::encode(
        mac(secret, side, environment, daemon, nd, nr)
            .finalize()
            .into_bytes(),
    )
}

/// Whether `given` (hex) is `side`'s proof; constant time.
pub fn verify(
    secret: &[u8],
    side: Side,
    environment: &str,
    daemon: &str,
    nd: &str,
    nr: &str,
    given: &str,
) -> bool {
    let Ok(bytes) = hex::decode(given) else {
        return false;
    };
    mac(secret, side, environment, daemon, nd, nr)
        .verify_slice(&bytes)
        .is_ok()
}

/// A secret good enough to use: at least 16 bytes.
pub fn check_secret(secret: &[u8]) -> Result<(), String> {
    if secret.len() < 16 {
        return Err(format!(
            "the daemon secret is {} bytes; use at least 16 (for example `openssl rand -hex 32`)",
            secret.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_proof_verifies_only_for_its_side_secret_and_nonces() {
        let (nd, nr) = (nonce(), nonce());
        assert_ne!(nd, nr);
        assert_eq!(nd.len(), 64);
        let p = proof(K, Side::Daemon, "uat-1", "matching", &nd, &nr);
        assert!(verify(K, Side::Daemon, "uat-1", "matching", &nd, &nr, &p));
        // Reflected as the router's proof: refused.
        assert!(!verify(K, Side::Router, "uat-1", "matching", &nd, &nr, &p));
        // Another secret, environment, daemon or nonce: refused.
        assert!(!verify(
            b"another secret of 32 bytes......",
            Side::Daemon,
            "uat-1",
            "matching",
            &nd,
            &nr,
            &p
        ));
        assert!(!verify(K, Side::Daemon, "uat-2", "matching", &nd, &nr, &p));
        assert!(!verify(
            K,
            Side::Daemon,
            "uat-1",
            "monitoring",
            &nd,
            &nr,
            &p
        ));
        assert!(!verify(
            K,
            Side::Daemon,
            "uat-1",
            "matching",
            &nd,
            &nonce(),
            &p
        ));
        assert!(!verify(
            K,
            Side::Daemon,
            "uat-1",
            "matching",
            &nd,
            &nr,
            "zz"
        ));
        // Fields cannot be shifted into each other.
        let a = proof(K, Side::Daemon, "ab", "c", &nd, &nr);
        let b = proof(K, Side::Daemon, "a", "bc", &nd, &nr);
        assert_ne!(a, b);
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(check_secret(b"short").unwrap_err().contains("at least 16"));
        assert!(check_secret(K).is_ok());
    }
}
