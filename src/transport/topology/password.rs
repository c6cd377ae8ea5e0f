//! RabbitMQ's password hash (`rabbit_password_hashing_sha256`, the default
//! since 3.6): a random 4-byte salt, then `base64(salt ‖ sha256(salt ‖
//! utf8(password)))`.
//!
//! Definitions carry this hash, never the password, so what `porter
//! topology` prints can be kept or shared without exposing a password.

use sha2::{Digest, Sha256};

/// The `hashing_algorithm` value of a hash made here.
pub const HASHING_ALGORITHM: &str = "rabbit_password_hashing_sha256";

/// The hash of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> String {
    hash_with_salt(rand::random(), password)
}

/// The hash of `password` with `salt`.
pub fn hash_with_salt(salt: [u8; 4], password: &str) -> String {
    let digest = Sha256::new()
        .chain_update(salt)
        .chain_update(password.as_bytes())
        .finalize();
    let mut bytes = salt.to_vec();
    bytes.extend_from_slice(&digest);
    data_encoding::BASE64.encode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors computed independently (Python: `base64.b64encode(salt +
    /// hashlib.sha256(salt + password).digest())`); the first is also the
    /// worked example of RabbitMQ's documentation.
    #[test]
    fn known_vectors() {
        assert_eq!(
            hash_with_salt([0x90, 0x8D, 0xC6, 0x0A], "test12"),
            "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"
        );
        assert_eq!(
            hash_with_salt([1, 2, 3, 4], "pässwörd"),
            "AQIDBPwtq5ZIwNBPpzi5rjcenzm3jkMbdjQ9/km2mOuj20ER"
        );
    }

    /// Each hash has its own salt, and the salt leads the decoded hash.
    #[test]
    fn random_salt() {
        let (a, b) = (hash_password("same"), hash_password("same"));
        assert_ne!(a, b);
        let decoded = data_encoding::BASE64.decode(a.as_bytes()).unwrap();
        assert_eq!(decoded.len(), 36);
        let salt: [u8; 4] = decoded[..4].try_into().unwrap();
        assert_eq!(hash_with_salt(salt, "same"), a);
    }
}
