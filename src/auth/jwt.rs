//! Client tokens: JSON Web Tokens signed with HMAC-SHA256 (`HS256`, ring's HMAC), the form any app backend can
//! mint with a standard JWT library and a shared secret, no round trip to parley.
//!
//! Verification is strict: three base64url parts; a header whose `alg` is exactly `HS256` (`none` and every
//! other algorithm are refused before any key is touched); a signature that one of the configured secrets
//! produced (compared in constant time); claims of the right types — `sub` a valid userId, `exp` required,
//! `iat`/`nbf` numbers when present, `sid` a session id, `scope` a space-separated string or an array of
//! `voice`/`history`; and `exp`/`nbf` against the clock with [`LEEWAY_SECS`] of leeway. A failure says only
//! whether the token was missing, invalid or expired, never which part of it was wrong.

use base64::Engine as _;
use ring::hmac;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db::{SessionId, UserId};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: i64 = 30;
/// Longest token accepted at all (a header line or query string beyond this is not a token parley minted).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Voice sessions over the WebSocket.
    Voice,
    /// Reading history, sessions and recordings, and rating messages.
    History,
}

/// The verified claims of a client token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub user_id: UserId,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    pub iat: Option<i64>,
    pub nbf: Option<i64>,
    /// The one stored session this token may resume, if it is limited to one.
    pub session: Option<SessionId>,
    pub scopes: Vec<Scope>,
    /// Extra claims (agent profiles and their template variables read these), as sent.
    pub extra: serde_json::Map<String, Value>,
}

impl Claims {
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// Why a token was refused; the codes are what a client gets (`token_missing`, `token_invalid`,
/// `token_expired`), the detail only ever goes to the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(&'static str),
    #[error("token expired")]
    Expired,
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Missing => "token_missing",
            TokenError::Invalid(_) => "token_invalid",
            TokenError::Expired => "token_expired",
        }
    }

    /// The sentence a client gets: says what to do, never what was wrong inside the token.
    pub fn message(&self) -> &'static str {
        match self {
            TokenError::Missing => "a client token is required (Authorization: Bearer, or ?token= on the WebSocket)",
            TokenError::Invalid(_) => "the client token is not valid; get a new one from your app's backend",
            TokenError::Expired => "the client token has expired; get a new one from your app's backend",
        }
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// Signs and verifies tokens: the current secret signs, every secret (current and retired) verifies.
pub struct TokenKeys {
    signing: hmac::Key,
    verifying: Vec<hmac::Key>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys").field("verifying", &self.verifying.len()).finish_non_exhaustive()
    }
}

impl TokenKeys {
    pub fn new(current: &[u8], old: &[Vec<u8>]) -> TokenKeys {
        let signing = hmac::Key::new(hmac::HMAC_SHA256, current);
        let verifying = std::iter::once(current)
            .chain(old.iter().map(Vec::as_slice))
            .map(|s| hmac::Key::new(hmac::HMAC_SHA256, s))
            .collect();
        TokenKeys { signing, verifying }
    }

    /// A token for `claims` (`extra` claims included).
    pub fn mint(&self, claims: &Claims) -> String {
        let mut body = claims.extra.clone();
        body.insert("sub".into(), Value::from(claims.user_id.as_str()));
        body.insert("exp".into(), Value::from(claims.exp));
        if let Some(iat) = claims.iat {
            body.insert("iat".into(), Value::from(iat));
        }
        if let Some(nbf) = claims.nbf {
            body.insert("nbf".into(), Value::from(nbf));
        }
        if let Some(session) = &claims.session {
            body.insert("sid".into(), Value::from(session.as_str()));
        }
        let scope: Vec<&str> = claims
            .scopes
            .iter()
            .map(|s| match s {
                Scope::Voice => "voice",
                Scope::History => "history",
            })
            .collect();
        body.insert("scope".into(), Value::from(scope.join(" ")));
        let header = b64().encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = b64().encode(Value::Object(body).to_string());
        let signing_input = format!("{header}.{payload}");
        let tag = hmac::sign(&self.signing, signing_input.as_bytes());
        format!("{signing_input}.{}", b64().encode(tag.as_ref()))
    }

    /// Verifies `token` at `now` (seconds since the Unix epoch).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid("too long"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Invalid("not three parts"));
        };
        let header: Value = b64()
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(TokenError::Invalid("unreadable header"))?;
        if header.get("alg").and_then(Value::as_str) != Some("HS256") {
            return Err(TokenError::Invalid("algorithm is not HS256"));
        }
        let signature = b64().decode(signature).map_err(|_| TokenError::Invalid("unreadable signature"))?;
        let signed = &token[..header_payload_len(token)];
        if !self.verifying.iter().any(|key| hmac::verify(key, signed.as_bytes(), &signature).is_ok()) {
            return Err(TokenError::Invalid("signature"));
        }
        let claims: serde_json::Map<String, Value> = b64()
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(TokenError::Invalid("unreadable claims"))?;
        parse_claims(claims, now)
    }
}

/// Bytes of `header.payload` (the signed part) in a three-part token.
fn header_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}

fn parse_claims(mut map: serde_json::Map<String, Value>, now: i64) -> Result<Claims, TokenError> {
    let int = |v: Option<Value>, what: &'static str| -> Result<Option<i64>, TokenError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite() && f.abs() < 1e15).map(|f| f as i64))
                .map(Some)
                .ok_or(TokenError::Invalid(what)),
            Some(_) => Err(TokenError::Invalid(what)),
        }
    };
    let user_id: UserId = match map.remove("sub") {
        Some(Value::String(s)) => s.parse().map_err(|_| TokenError::Invalid("sub"))?,
        _ => return Err(TokenError::Invalid("sub")),
    };
    let exp = int(map.remove("exp"), "exp")?.ok_or(TokenError::Invalid("exp missing"))?;
    let iat = int(map.remove("iat"), "iat")?;
    let nbf = int(map.remove("nbf"), "nbf")?;
    let session = match map.remove("sid") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.parse().map_err(|_| TokenError::Invalid("sid"))?),
        Some(_) => return Err(TokenError::Invalid("sid")),
    };
    let scopes = match map.remove("scope") {
        None | Some(Value::Null) => vec![Scope::Voice, Scope::History],
        Some(Value::String(s)) => s.split_whitespace().map(parse_scope).collect::<Result<_, _>>()?,
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().ok_or(TokenError::Invalid("scope")).and_then(parse_scope))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(TokenError::Invalid("scope")),
    };
    if exp.saturating_add(LEEWAY_SECS) < now {
        return Err(TokenError::Expired);
    }
    if nbf.is_some_and(|nbf| nbf.saturating_sub(LEEWAY_SECS) > now) {
        return Err(TokenError::Invalid("not yet valid"));
    }
    Ok(Claims { user_id, exp, iat, nbf, session, scopes, extra: map })
}

fn parse_scope(s: &str) -> Result<Scope, TokenError> {
    match s {
        "voice" => Ok(Scope::Voice),
        "history" => Ok(Scope::History),
        _ => Err(TokenError::Invalid("unknown scope")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn keys() -> TokenKeys {
        TokenKeys::new(&[7u8; 32], &[vec![9u8; 32]])
    }

    fn claims(user: &str, exp: i64) -> Claims {
        Claims {
            user_id: user.parse().unwrap(),
            exp,
            iat: Some(NOW),
            nbf: None,
            session: None,
            scopes: vec![Scope::Voice, Scope::History],
            extra: Default::default(),
        }
    }

    /// A token signed with `key` over exactly this header and payload JSON.
    fn forge(header: &str, payload: &str, key: &[u8]) -> String {
        let input = format!("{}.{}", b64().encode(header), b64().encode(payload));
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), input.as_bytes());
        format!("{input}.{}", b64().encode(tag.as_ref()))
    }

    #[test]
    fn a_minted_token_verifies_with_its_claims_and_an_old_secret_still_verifies() {
        let token = keys().mint(&claims("alice", NOW + 600));
        let c = keys().verify(&token, NOW).unwrap();
        assert_eq!((c.user_id.as_str(), c.exp, c.scopes.len()), ("alice", NOW + 600, 2));
        let rotated = TokenKeys::new(&[1u8; 32], &[vec![7u8; 32]]);
        assert_eq!(rotated.verify(&token, NOW).unwrap().user_id.as_str(), "alice");
        let forgotten = TokenKeys::new(&[1u8; 32], &[]);
        assert_eq!(forgotten.verify(&token, NOW), Err(TokenError::Invalid("signature")));
    }

    #[test]
    fn expiry_and_not_before_allow_a_little_clock_skew() {
        let k = keys();
        assert!(k.verify(&k.mint(&claims("u", NOW - 10)), NOW).is_ok(), "within the leeway");
        assert_eq!(k.verify(&k.mint(&claims("u", NOW - 31)), NOW), Err(TokenError::Expired));
        let mut early = claims("u", NOW + 600);
        early.nbf = Some(NOW + 120);
        assert_eq!(k.verify(&k.mint(&early), NOW).unwrap_err().code(), "token_invalid");
    }

    #[test]
    fn algorithms_other_than_hs256_and_bad_claim_types_are_invalid() {
        let good = r#"{"sub":"u","exp":1900000000}"#;
        for header in [r#"{"alg":"none"}"#, r#"{"alg":"HS512"}"#, r#"{"alg":"RS256"}"#, r#"{}"#, "[]"] {
            let t = forge(header, good, &[7u8; 32]);
            assert_eq!(keys().verify(&t, NOW).unwrap_err().code(), "token_invalid", "{header}");
        }
        let none = format!("{}.{}.", b64().encode(r#"{"alg":"none"}"#), b64().encode(good));
        assert_eq!(keys().verify(&none, NOW).unwrap_err().code(), "token_invalid");
        for payload in [
            r#"{"exp":1900000000}"#,
            r#"{"sub":"u"}"#,
            r#"{"sub":5,"exp":1900000000}"#,
            r#"{"sub":"u","exp":"soon"}"#,
            r#"{"sub":"bad id!","exp":1900000000}"#,
            r#"{"sub":"u","exp":1900000000,"sid":"nope"}"#,
            r#"{"sub":"u","exp":1900000000,"scope":"admin"}"#,
            r#"{"sub":"u","exp":1900000000,"scope":7}"#,
        ] {
            let t = forge(r#"{"alg":"HS256","typ":"JWT"}"#, payload, &[7u8; 32]);
            assert_eq!(keys().verify(&t, NOW).unwrap_err().code(), "token_invalid", "{payload}");
        }
        let scoped = forge(r#"{"alg":"HS256"}"#, r#"{"sub":"u","exp":1900000000,"scope":["voice"]}"#, &[7u8; 32]);
        assert_eq!(keys().verify(&scoped, NOW).unwrap().scopes, vec![Scope::Voice]);
    }

    #[test]
    fn malformed_tokens_are_invalid_and_an_empty_one_is_missing() {
        for t in ["", "  "] {
            assert_eq!(keys().verify(t, NOW), Err(TokenError::Missing));
        }
        for t in ["a", "a.b", "a.b.c.d", "!!.??.**", &"x".repeat(MAX_TOKEN_BYTES + 1)] {
            assert_eq!(keys().verify(t, NOW).unwrap_err().code(), "token_invalid", "{t:.20}");
        }
        let mut t = keys().mint(&claims("alice", NOW + 60));
        t.push('A');
        assert_eq!(keys().verify(&t, NOW).unwrap_err().code(), "token_invalid", "an altered signature");
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic_the_parser(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = keys().verify(&text, NOW);
        }

        #[test]
        fn random_json_claims_never_panic_or_pass_without_the_key(payload in "\\{(\"[a-z]{1,4}\":(-?[0-9]{1,12}|\"[a-z0-9.-]{0,8}\"|null|\\[\\]),?){0,6}\\}") {
            let signed = forge(r#"{"alg":"HS256"}"#, &payload, &[7u8; 32]);
            let _ = keys().verify(&signed, NOW);
            let unsigned = forge(r#"{"alg":"HS256"}"#, &payload, &[8u8; 32]);
            proptest::prop_assert!(keys().verify(&unsigned, NOW).is_err());
        }
    }
}
