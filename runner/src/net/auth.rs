//! The monitoring network's secrets and ids. Pure: a daemon secret's minimum, and fresh
//! random ids (a daemon process's boot, a connection's session). How the secret
//! authenticates both ends and every frame is [`super::channel`]'s job.

use super::error::NetError;

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
        bytes.copy_from_slice(&sha2::Sha256::digest(seed.as_bytes()));
    }
    hex::encode(bytes)
}

/// A secret good enough to use: at least 16 bytes.
pub fn check_secret(secret: &[u8]) -> Result<(), NetError> {
    if secret.len() < 16 {
        return Err(NetError::ShortSecret { len: secret.len() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn nonces_are_fresh() {
        let (a, b) = (nonce(), nonce());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(
            check_secret(b"short")
                .unwrap_err()
                .to_string()
                .contains("at least 16")
        );
        assert!(check_secret(K).is_ok());
    }
}
