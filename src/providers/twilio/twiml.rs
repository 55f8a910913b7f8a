//! The TwiML answer to a call webhook: `<Connect><Stream>` makes the Media Stream bidirectional and keeps the
//! call up while the stream's WebSocket is open; `<Parameter>`s come back in the stream's `start` message.

/// `<Response><Connect><Stream url="…"><Parameter …/>…</Stream></Connect></Response>`.
pub fn connect_stream(url: &str, parameters: &[(&str, &str)]) -> String {
    let mut xml = String::from(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url=""#);
    xml.push_str(&escape(url));
    xml.push_str(r#"">"#);
    for (name, value) in parameters {
        xml.push_str(&format!(r#"<Parameter name="{}" value="{}"/>"#, escape(name), escape(value)));
    }
    xml.push_str("</Stream></Connect></Response>");
    xml
}

/// `text` as an XML attribute value.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_escaped_inside_the_stream() {
        let xml = connect_stream("wss://h.example/ws/twilio", &[("agent", "support"), ("from", "<+1 & \"2\">")]);
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect><Stream url=\"wss://h.example/ws/twilio\">\
             <Parameter name=\"agent\" value=\"support\"/>\
             <Parameter name=\"from\" value=\"&lt;+1 &amp; &quot;2&quot;&gt;\"/>\
             </Stream></Connect></Response>"
        );
    }
}
