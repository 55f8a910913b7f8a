//! Encryption at rest for message content and recording links: AES-256-GCM (ring) with a fresh random nonce
//! per value and additional authenticated data that binds a value to its column and session, so a ciphertext
//! copied into another session's row fails to open instead of leaking.
//!
//! Sealed layout: `[key id: 1 byte][nonce: 12 bytes][ciphertext || tag: 16 bytes]`. The key id selects the key
//! on reading, so keys rotate by setting a new `PARLEY_ENCRYPTION_KEY`/`_KEY_ID` and moving the old one to
//! `PARLEY_ENCRYPTION_OLD_KEYS`.
//!
//! Without a configured key the embedded (SQLite) deployment generates one on first start into
//! `<data dir>/encryption.key` (mode 0600) and reuses it; PostgreSQL deployments must configure one (checked in
//! `config`).

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};

use crate::config::{EncryptionConfig, KeyBytes};

/// File name of the generated key inside the data directory.
pub const KEY_FILE: &str = "encryption.key";

const HEADER_LEN: usize = 1 + NONCE_LEN;

/// Why a value could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("value is too short to be an encrypted value")]
    Truncated,
    #[error("value was sealed with key id {0}, which is not configured")]
    UnknownKey(u8),
    #[error("value cannot be decrypted: wrong key, or the stored value was altered")]
    Rejected,
    #[error("decrypted value is not UTF-8 text")]
    NotText,
    #[error("the system random number generator failed")]
    Random,
}

/// Seals and opens values with the configured keys. Cheap to share behind an `Arc`.
pub struct Cipher {
    current_id: u8,
    keys: HashMap<u8, LessSafeKey>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cipher").field("current_id", &self.current_id).finish_non_exhaustive()
    }
}

impl Cipher {
    /// A cipher sealing with `current` (under `current_id`) and also opening values sealed with `old` keys.
    pub fn new(current_id: u8, current: &KeyBytes, old: &[(u8, KeyBytes)]) -> Cipher {
        let mut keys = HashMap::new();
        for (id, key) in old.iter().chain(std::iter::once(&(current_id, current.clone()))) {
            // AES-256 accepts any 32-byte key, and KeyBytes is always 32 bytes: this cannot fail.
            let unbound = UnboundKey::new(&AES_256_GCM, &key.0).expect("32-byte AES-256 key");
            keys.insert(*id, LessSafeKey::new(unbound));
        }
        Cipher { current_id, keys, rng: SystemRandom::new() }
    }

    /// Builds the cipher from configuration, generating or reusing the embedded key file when no key is
    /// configured.
    pub fn from_config(config: &EncryptionConfig, data_dir: &Path) -> Result<Cipher, KeyFileError> {
        let key = match &config.key {
            Some(key) => key.clone(),
            None => load_or_create_key_file(&data_dir.join(KEY_FILE), "message encryption key")?,
        };
        Ok(Cipher::new(config.key_id, &key, &config.old_keys))
    }

    /// Encrypts `plaintext`, binding it to `context` (e.g. `"messages.content:<session id>"`).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, CryptoError> {
        let key = &self.keys[&self.current_id];
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| CryptoError::Random)?;
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + AES_256_GCM.tag_len());
        out.push(self.current_id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let mut body = out.split_off(HEADER_LEN);
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut body)
            .map_err(|_| CryptoError::Rejected)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decrypts a value sealed by [`Cipher::seal`] with the same `context`.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < HEADER_LEN + AES_256_GCM.tag_len() {
            return Err(CryptoError::Truncated);
        }
        let key = self.keys.get(&sealed[0]).ok_or(CryptoError::UnknownKey(sealed[0]))?;
        let nonce = Nonce::try_assume_unique_for_key(&sealed[1..HEADER_LEN]).map_err(|_| CryptoError::Truncated)?;
        let mut body = sealed[HEADER_LEN..].to_vec();
        let plain =
            key.open_in_place(nonce, Aad::from(context.as_bytes()), &mut body).map_err(|_| CryptoError::Rejected)?;
        Ok(plain.to_vec())
    }

    pub fn seal_str(&self, plaintext: &str, context: &str) -> Result<Vec<u8>, CryptoError> {
        self.seal(plaintext.as_bytes(), context)
    }

    pub fn open_str(&self, sealed: &[u8], context: &str) -> Result<String, CryptoError> {
        String::from_utf8(self.open(sealed, context)?).map_err(|_| CryptoError::NotText)
    }
}

/// Why the embedded key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read or create the key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "key file {path} does not hold base64 of 32 bytes; restore it, or remove it to start afresh (messages sealed or tokens signed with it become unreadable)"
    )]
    Malformed { path: String },
}

/// Reads the 32-byte secret `what` from `path` (base64), or creates it there (mode 0600) on first use.
pub fn load_or_create_key_file(path: &Path, what: &str) -> Result<KeyBytes, KeyFileError> {
    let shown = path.display().to_string();
    let io = |source| KeyFileError::Io { path: shown.clone(), source };
    match fs::read_to_string(path) {
        Ok(text) => {
            let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                log::warn!("{what} file {shown} is readable by others (mode {mode:o}); chmod 600 it");
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| KeyFileError::Malformed { path: shown.clone() })?;
            let key: [u8; 32] = bytes.try_into().map_err(|_| KeyFileError::Malformed { path: shown.clone() })?;
            Ok(KeyBytes(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(io)?;
            }
            let mut key = [0u8; 32];
            SystemRandom::new()
                .fill(&mut key)
                .map_err(|_| io(std::io::Error::other("system random number generator failed")))?;
            // create_new: two processes racing to create the key must not both win with different keys.
            let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
            let encoded = base64::engine::general_purpose::STANDARD.encode(key);
            file.write_all(format!("{encoded}\n").as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            log::info!("generated a new {what} in {shown}; back it up with the database");
            Ok(KeyBytes(key))
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> KeyBytes {
        KeyBytes([b; 32])
    }

    #[test]
    fn sealed_text_round_trips_and_never_repeats() {
        let c = Cipher::new(1, &key(7), &[]);
        let a = c.seal_str("hello", "ctx").unwrap();
        let b = c.seal_str("hello", "ctx").unwrap();
        assert_ne!(a, b, "a fresh nonce per value");
        assert_eq!(a[0], 1, "key id in front");
        assert_eq!(c.open_str(&a, "ctx").unwrap(), "hello");
        assert!(!a.windows(5).any(|w| w == b"hello"), "no plaintext in the sealed value");
    }

    #[test]
    fn tampering_a_single_bit_anywhere_is_rejected() {
        let c = Cipher::new(1, &key(7), &[]);
        let sealed = c.seal_str("transfer 100", "ctx").unwrap();
        for i in 1..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(c.open(&bad, "ctx"), Err(CryptoError::Rejected), "byte {i}");
        }
    }

    #[test]
    fn a_value_moved_to_another_context_does_not_open() {
        let c = Cipher::new(1, &key(7), &[]);
        let sealed = c.seal_str("secret", "messages.content:session-a").unwrap();
        assert_eq!(c.open(&sealed, "messages.content:session-b"), Err(CryptoError::Rejected));
    }

    #[test]
    fn wrong_key_unknown_key_and_truncation_are_distinct_errors() {
        let sealed = Cipher::new(1, &key(7), &[]).seal_str("x", "c").unwrap();
        assert_eq!(Cipher::new(1, &key(8), &[]).open(&sealed, "c"), Err(CryptoError::Rejected));
        assert_eq!(Cipher::new(2, &key(7), &[]).open(&sealed, "c"), Err(CryptoError::UnknownKey(1)));
        assert_eq!(Cipher::new(1, &key(7), &[]).open(&sealed[..10], "c"), Err(CryptoError::Truncated));
        assert_eq!(Cipher::new(1, &key(7), &[]).open(&[], "c"), Err(CryptoError::Truncated));
    }

    #[test]
    fn rotated_keys_still_open_old_values_and_seal_with_the_new_one() {
        let old = Cipher::new(1, &key(1), &[]);
        let sealed_old = old.seal_str("before rotation", "c").unwrap();
        let rotated = Cipher::new(2, &key(2), &[(1, key(1))]);
        assert_eq!(rotated.open_str(&sealed_old, "c").unwrap(), "before rotation");
        assert_eq!(rotated.seal_str("after", "c").unwrap()[0], 2);
    }

    #[test]
    fn the_generated_key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join(KEY_FILE);
        let first = load_or_create_key_file(&path, "test key").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create_key_file(&path, "test key").unwrap(), first);
    }

    #[test]
    fn a_corrupt_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        fs::write(&path, "not a key").unwrap();
        let err = load_or_create_key_file(&path, "test key").unwrap_err();
        assert!(err.to_string().contains("does not hold base64 of 32 bytes"), "{err}");
    }
}
