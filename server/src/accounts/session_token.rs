//! Session tokens: 256 random bits, given to the browser once (in a cookie)
//! and stored only as their SHA-256, so a copy of the database signs nobody in.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A fresh token, as the cookie carries it.
pub fn fresh() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// A fresh 128-bit code (an invite link's), URL-safe.
pub fn fresh_short() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// What the store keeps of `token`.
pub fn stored_form(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unguessable_and_stored_only_hashed() {
        let (a, b) = (fresh(), fresh());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "256 bits in URL-safe base64");
        assert_eq!(stored_form(&a).len(), 64);
        assert_ne!(stored_form(&a), a);
        assert_eq!(stored_form(&a), stored_form(&a.clone()));
    }
}
