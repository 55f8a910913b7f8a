//! `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed with the account's Auth Token, over the full URL Twilio
//! requested followed by every POST parameter's name and value, sorted by name, with no separators. The
//! Media Streams WebSocket handshake is signed the same way over its `wss://` URL alone.

use base64::Engine as _;
use ring::hmac;

/// The string Twilio signs: the URL, then each parameter's name and value in name order.
fn signed_text(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Stable on equal names, so repeated parameters keep their order (as Twilio's own libraries do).
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut text = String::from(url);
    for (name, value) in sorted {
        text.push_str(name);
        text.push_str(value);
    }
    text
}

fn key(auth_token: &str) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes())
}

/// The signature Twilio would send for this request (for tests and the fake caller).
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let tag = hmac::sign(&key(auth_token), signed_text(url, params).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// True when `signature` is Twilio's for this request; the comparison takes the same time whatever the
/// signature holds.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    hmac::verify(&key(auth_token), signed_text(url, params).as_bytes(), &tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Twilio's documented example (the "Webhooks security" page), recomputed with Python's `hmac`:
    /// `base64.b64encode(hmac.new(b"12345", url + "".join(k + v for k, v in sorted(params)), sha1).digest())`.
    #[test]
    fn matches_twilios_documented_example() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params = p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        assert_eq!(sign("12345", url, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(verify("12345", url, &params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    }

    #[test]
    fn a_url_alone_is_signed_for_the_stream_handshake() {
        // python3: base64.b64encode(hmac.new(b"secret", b"wss://example.com/ws/twilio", hashlib.sha1).digest())
        assert_eq!(sign("secret", "wss://example.com/ws/twilio", &[]), "nbuzyEeGEMQezroIScllymxgdmk=");
    }

    #[test]
    fn anything_changed_is_refused() {
        let params = p(&[("To", "+15550001111"), ("From", "+15552223333")]);
        let good = sign("tok", "https://h/twilio/voice", &params);
        assert!(verify("tok", "https://h/twilio/voice", &params, &good));
        assert!(!verify("other", "https://h/twilio/voice", &params, &good));
        assert!(!verify("tok", "http://h/twilio/voice", &params, &good));
        assert!(!verify("tok", "https://h/twilio/voice", &p(&[("To", "+15550001112")]), &good));
        assert!(!verify("tok", "https://h/twilio/voice", &params, "not base64!"));
        assert!(!verify("tok", "https://h/twilio/voice", &params, ""));
    }
}
