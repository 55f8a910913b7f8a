//! The part of a TwiML answer the emulated caller acts on: the `<Stream url="...">` and its
//! `<Parameter name=".." value=".."/>` children, and whether the stream sits inside `<Connect>`
//! (bidirectional) or `<Start>` (listen-only). A tiny tag scanner, not a general XML parser: enough for what a
//! voice webhook answers, with the five named entities and numeric character references decoded.

/// The stream a TwiML answer asks Twilio to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTarget {
    /// The `url` attribute, entities decoded.
    pub url: String,
    /// `<Parameter>` name/value pairs, in document order (they become `customParameters`).
    pub parameters: Vec<(String, String)>,
    /// True when the `<Stream>` is inside `<Connect>`: a bidirectional stream that holds the call.
    pub connect: bool,
}

/// Why a TwiML answer gives no stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwimlError {
    #[error("the TwiML has no <Stream> element")]
    NoStream,
    #[error("the <Stream> element has no url attribute")]
    NoUrl,
    #[error("a <{0}> tag is not closed")]
    Unterminated(&'static str),
}

/// Finds the first `<Stream>` of a TwiML document.
pub fn parse(twiml: &str) -> Result<StreamTarget, TwimlError> {
    let mut connect = false;
    let mut rest = twiml;
    loop {
        let Some(open) = rest.find('<') else { return Err(TwimlError::NoStream) };
        rest = &rest[open + 1..];
        let Some(end) = rest.find('>') else { return Err(TwimlError::Unterminated("tag")) };
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        let name = tag_name(tag);
        match name {
            "Connect" => connect = true,
            "/Connect" | "Start" => connect = false,
            "Stream" => {
                let url = attribute(tag, "url").ok_or(TwimlError::NoUrl)?;
                let parameters = if tag.trim_end().ends_with('/') { Vec::new() } else { parameters(rest)? };
                return Ok(StreamTarget { url, parameters, connect });
            }
            _ => {}
        }
    }
}

/// The `<Parameter>` tags before `</Stream>`.
fn parameters(mut rest: &str) -> Result<Vec<(String, String)>, TwimlError> {
    let mut out = Vec::new();
    loop {
        let Some(open) = rest.find('<') else { return Err(TwimlError::Unterminated("Stream")) };
        rest = &rest[open + 1..];
        let Some(end) = rest.find('>') else { return Err(TwimlError::Unterminated("Parameter")) };
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        match tag_name(tag) {
            "/Stream" => return Ok(out),
            "Parameter" => {
                if let (Some(n), Some(v)) = (attribute(tag, "name"), attribute(tag, "value")) {
                    out.push((n, v));
                }
            }
            _ => {}
        }
    }
}

fn tag_name(tag: &str) -> &str {
    let tag = tag.trim_start();
    let end = tag.find(|c: char| c.is_whitespace() || c == '/' && !tag.starts_with('/')).unwrap_or(tag.len());
    tag[..end].trim_end_matches('/')
}

/// The decoded value of attribute `name` (single or double quotes).
fn attribute(tag: &str, name: &str) -> Option<String> {
    let mut rest = tag;
    while let Some(at) = rest.find(name) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + name.len()..].trim_start();
        rest = &rest[at + name.len()..];
        if !before.is_some_and(char::is_whitespace) {
            continue;
        }
        let Some(after_eq) = after.strip_prefix('=') else { continue };
        let after_eq = after_eq.trim_start();
        let quote = after_eq.chars().next().filter(|q| *q == '"' || *q == '\'')?;
        let value = &after_eq[1..];
        let close = value.find(quote)?;
        return Some(decode_entities(&value[..close]));
    }
    None
}

/// `&amp;` `&lt;` `&gt;` `&quot;` `&apos;` `&#NN;` `&#xHH;`; anything else is left as written.
pub fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').and_then(|semi| {
            let ch = match &rest[1..semi] {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                e => match e.strip_prefix("#x").or_else(|| e.strip_prefix("#X")) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok().and_then(char::from_u32),
                    None => e.strip_prefix('#').and_then(|d| d.parse().ok()).and_then(char::from_u32),
                },
            };
            ch.map(|c| (c, semi))
        });
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_connect_stream_and_its_parameters() {
        let twiml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Connect>
    <Stream url="wss://example.com/ws/twilio?a=1&amp;b=2">
      <Parameter name="agent" value="support"/>
      <Parameter value="t&lt;1&#x41;&#66;" name='token' />
    </Stream>
  </Connect>
</Response>"#;
        let s = parse(twiml).unwrap();
        assert_eq!(s.url, "wss://example.com/ws/twilio?a=1&b=2");
        assert_eq!(
            s.parameters,
            [("agent".to_string(), "support".to_string()), ("token".to_string(), "t<1AB".to_string())]
        );
        assert!(s.connect);
    }

    #[test]
    fn a_start_stream_is_not_bidirectional_and_a_self_closed_stream_has_no_parameters() {
        let s = parse(r#"<Response><Start><Stream url="wss://x/y"/></Start><Pause length="60"/></Response>"#).unwrap();
        assert_eq!(s.url, "wss://x/y");
        assert!(s.parameters.is_empty());
        assert!(!s.connect);
        let s = parse(r#"<Response><Connect><Stream name="s" url="wss://x/z" /></Connect></Response>"#).unwrap();
        assert!(s.connect && s.url == "wss://x/z");
    }

    #[test]
    fn missing_or_broken_streams_are_errors_not_panics() {
        assert_eq!(parse("<Response><Say>hi</Say></Response>"), Err(TwimlError::NoStream));
        assert_eq!(parse("<Response><Connect><Stream track=\"x\"/>"), Err(TwimlError::NoUrl));
        assert_eq!(parse("<Response><Connect><Stream url=\"wss://x\">"), Err(TwimlError::Unterminated("Stream")));
        assert_eq!(parse("<Response"), Err(TwimlError::Unterminated("tag")));
        assert!(parse("").is_err());
        assert!(parse("<Stream url=\"é&#xFFFFFFFF;&bogus;&\">").is_err());
    }

    #[test]
    fn entities_decode_and_unknown_ones_stay() {
        assert_eq!(decode_entities("a&amp;b&quot;c&apos;&#233;&nope;&"), "a&b\"c'é&nope;&");
    }
}
