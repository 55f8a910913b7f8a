//! `X-Twilio-Signature`: how Twilio signs its webhook requests and the Media Streams WebSocket handshake.
//! Pure code; the emulated caller signs with it and parley's verifier can be tested against it.

use base64::Engine as _;
use ring::hmac;

/// base64(HMAC-SHA1(`auth_token`, `url` followed by each parameter's name and value, sorted by name)), as
/// Twilio computes it. The WebSocket handshake is signed over the `wss://` URL with no parameters.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Stable: values of a repeated name keep their order, as Twilio's own validators do.
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut signed = String::from(url);
    for (name, value) in sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, signed.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn matches_twilios_documented_example() {
        // Twilio's security docs: token 12345, this URL and these parameters sign to this value (also
        // checked with Python's hmac).
        let params = pairs(&[
            ("To", "+18005551212"),
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("Caller", "+12349013030"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(signature("12345", url, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    }

    #[test]
    fn a_websocket_url_is_signed_without_parameters() {
        // Cross-checked with Python: hmac.new(b"12345", b"wss://example.com/ws/twilio", sha1).
        assert_eq!(signature("12345", "wss://example.com/ws/twilio", &[]), "UAB6CyYaIqjwuABy5XGywJDQcS0=");
    }

    #[test]
    fn the_url_the_key_and_every_parameter_matter() {
        let params = pairs(&[("CallSid", "CA1"), ("From", "+1555")]);
        let base = signature("tok", "https://a.example/v", &params);
        assert_ne!(base, signature("tok2", "https://a.example/v", &params));
        assert_ne!(base, signature("tok", "https://a.example/w", &params));
        assert_ne!(base, signature("tok", "https://a.example/v", &pairs(&[("CallSid", "CA1"), ("From", "+1556")])));
        let reordered = pairs(&[("From", "+1555"), ("CallSid", "CA1")]);
        assert_eq!(base, signature("tok", "https://a.example/v", &reordered));
    }
}
