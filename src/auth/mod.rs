//! Who may do what: client tokens for users, API keys for operators and app backends, signed links for audio,
//! and the development credential that keeps the zero-configuration start working.
//!
//! - A **user** holds a short-lived client token ([`jwt`]): HS256 under `PARLEY_AUTH_SECRET` (older secrets
//!   in `PARLEY_AUTH_OLD_SECRETS` still verify). It names the user (`sub`), may pin one session (`sid`) and
//!   limits what it allows (`scope`). A user sees and rates only their own sessions and messages.
//! - An **operator** (an app backend) presents one of `PARLEY_API_KEYS`: any user's data, and minting tokens.
//! - **Audio links** carry an expiry and an HMAC bound to the exact object ([`media`]), so they work in an
//!   `<audio>` tag, which cannot send a header.
//! - With no secret configured (the embedded default), a secret is generated into the data directory and a
//!   random **development credential** is printed at start-up; the bundled page exchanges it for user tokens.
//!
//! API keys and the development credential are compared in constant time (through HMAC tags, so not even
//! their lengths leak).

pub mod jwt;
pub mod media;

use ring::hmac;
use ring::rand::{SecureRandom as _, SystemRandom};

pub use jwt::{Claims, Scope, TokenError, TokenKeys};
pub use media::MediaSigner;

use crate::config::AuthConfig;
use crate::db::UserId;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A user with a verified client token.
    User(Claims),
    /// An operator's API key.
    Operator,
}

impl Caller {
    /// True when the caller may see `owner`'s data (operators see everyone's).
    pub fn may_see(&self, owner: &str) -> bool {
        match self {
            Caller::Operator => true,
            Caller::User(c) => c.user_id.as_str() == owner,
        }
    }

    pub fn user(&self) -> Option<&UserId> {
        match self {
            Caller::User(c) => Some(&c.user_id),
            Caller::Operator => None,
        }
    }
}

/// The secrets and keys of one running parley.
pub struct Auth {
    pub tokens: TokenKeys,
    pub media: MediaSigner,
    /// HMAC tags of the API keys under `compare_key`: a presented key is tagged and the tags compared.
    api_keys: Vec<hmac::Tag>,
    compare_key: hmac::Key,
    /// The development credential (only when no secret was configured), and its tag.
    dev: Option<(String, hmac::Tag)>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("api_keys", &self.api_keys.len())
            .field("development_credential", &self.dev.is_some())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// `secret` signs tokens and links (the configured one, or the one generated into the data directory);
    /// `development` asks for a development credential.
    pub fn new(config: &AuthConfig, secret: &[u8], development: bool) -> Auth {
        let rng = SystemRandom::new();
        let mut compare = [0u8; 32];
        // Without randomness the comparison key is fixed, which only weakens it against timing; never fatal.
        let _ = rng.fill(&mut compare);
        let compare_key = hmac::Key::new(hmac::HMAC_SHA256, &compare);
        let api_keys = config.api_keys.iter().map(|k| hmac::sign(&compare_key, k.expose().as_bytes())).collect();
        let dev = development.then(|| {
            let mut raw = [0u8; 16];
            let _ = rng.fill(&mut raw);
            let credential: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            let tag = hmac::sign(&compare_key, credential.as_bytes());
            (credential, tag)
        });
        Auth {
            tokens: TokenKeys::new(secret, &config.old_secrets),
            media: MediaSigner::new(secret),
            api_keys,
            compare_key,
            dev,
        }
    }

    /// True when `presented` is one of the operator API keys.
    pub fn is_api_key(&self, presented: &str) -> bool {
        let tag = hmac::sign(&self.compare_key, presented.as_bytes());
        // Checks every key, so the time taken does not say which matched.
        self.api_keys.iter().fold(false, |found, k| found | (k.as_ref() == tag.as_ref()))
    }

    /// The development credential, when there is one (printed at start-up).
    pub fn development_credential(&self) -> Option<&str> {
        self.dev.as_ref().map(|(c, _)| c.as_str())
    }

    /// True when `presented` is the development credential.
    pub fn is_development_credential(&self, presented: &str) -> bool {
        match &self.dev {
            Some((_, tag)) => hmac::verify(&self.compare_key, presented.as_bytes(), tag.as_ref()).is_ok(),
            None => false,
        }
    }

    /// Who presents `bearer` (an API key or a client token) at `now`.
    pub fn caller(&self, bearer: &str, now: i64) -> Result<Caller, TokenError> {
        if self.is_api_key(bearer) {
            return Ok(Caller::Operator);
        }
        self.tokens.verify(bearer, now).map(Caller::User)
    }
}

/// The current time in seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::Secret;

    fn config(keys: &[&str]) -> AuthConfig {
        AuthConfig { api_keys: keys.iter().map(|k| Secret::new(k.to_string())).collect(), ..AuthConfig::default() }
    }

    #[test]
    fn api_keys_and_tokens_name_the_caller() {
        let auth = Auth::new(&config(&["op-key-1", "op-key-2"]), &[3u8; 32], false);
        assert_eq!(auth.caller("op-key-2", 0), Ok(Caller::Operator));
        assert!(!auth.is_api_key("op-key-3") && !auth.is_api_key(""));
        let token = auth.tokens.mint(&Claims {
            user_id: "ada".parse().unwrap(),
            exp: now_secs() + 60,
            iat: None,
            nbf: None,
            session: None,
            scopes: vec![Scope::Voice],
            extra: Default::default(),
        });
        let caller = auth.caller(&token, now_secs()).unwrap();
        assert!(caller.may_see("ada") && !caller.may_see("bob"));
        assert_eq!(auth.caller("nonsense", 0).unwrap_err().code(), "token_invalid");
    }

    #[test]
    fn a_development_credential_exists_only_when_asked_for() {
        assert!(Auth::new(&config(&[]), &[3u8; 32], false).development_credential().is_none());
        let auth = Auth::new(&config(&[]), &[3u8; 32], true);
        let credential = auth.development_credential().unwrap().to_string();
        assert_eq!(credential.len(), 32);
        assert!(auth.is_development_credential(&credential));
        assert!(!auth.is_development_credential("0123"));
    }
}
