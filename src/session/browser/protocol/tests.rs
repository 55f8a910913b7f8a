//! The client message parser and the server messages' JSON: examples of each, then properties over random
//! input. The parser is total (any text, any bytes, any JSON shape, nesting far past serde's recursion limit:
//! never a panic, always a message or an error with one of the four codes), every valid message a client can
//! write reads back as itself (unknown fields ignored), and every error names the problem: the type it did not
//! know, the field that was missing, what was not JSON.

use proptest::prelude::*;

use super::*;

#[test]
fn tool_results_parse_with_a_result_or_an_error() {
    assert_eq!(
        parse_client_message(r#"{"type":"toolResult","callId":"c1","result":{"shown":true}}"#),
        Ok(ClientMessage::ToolResult {
            call_id: "c1".into(),
            result: Some(serde_json::json!({"shown": true})),
            error: None
        })
    );
    assert_eq!(
        parse_client_message(r#"{"type":"toolResult","callId":"c1","error":"no map here"}"#),
        Ok(ClientMessage::ToolResult { call_id: "c1".into(), result: None, error: Some("no map here".into()) })
    );
    assert!(parse_client_message(r#"{"type":"toolResult","callId":""}"#).is_err());
    assert!(parse_client_message(r#"{"type":"toolResult","result":1}"#).is_err());
}

#[test]
fn client_messages_parse() {
    assert_eq!(parse_client_message(r#"{"type":"ping"}"#), Ok(ClientMessage::Ping));
    assert_eq!(parse_client_message(r#"{"type":"closeMicrophone"}"#), Ok(ClientMessage::CloseMicrophone));
    assert_eq!(parse_client_message(r#"{"type":"interrupt","extra":1}"#), Ok(ClientMessage::Interrupt));
    assert_eq!(parse_client_message(r#"{"type":"text","text":"hi"}"#), Ok(ClientMessage::Text { text: "hi".into() }));
    assert_eq!(
        parse_client_message(r#"{"type":"played","turnId":3,"ms":1250}"#),
        Ok(ClientMessage::Played { turn_id: 3, ms: 1250 })
    );
}

#[test]
fn bad_client_messages_are_told_apart() {
    assert_eq!(parse_client_message("{nope").unwrap_err().code(), "invalid_json");
    assert_eq!(parse_client_message(r#"{"type":"dance"}"#).unwrap_err().code(), "unknown_message_type");
    assert_eq!(parse_client_message(r#"{"kind":"ping"}"#).unwrap_err().code(), "missing_type");
    assert_eq!(parse_client_message(r#"{"type":7}"#).unwrap_err().code(), "missing_type");
    assert_eq!(parse_client_message(r#"{"type":"text"}"#).unwrap_err().code(), "invalid_message");
    assert_eq!(parse_client_message(r#"{"type":"text","text":5}"#).unwrap_err().code(), "invalid_message");
    assert_eq!(parse_client_message(r#"{"type":"text","text":"  "}"#).unwrap_err().code(), "invalid_message");
    assert_eq!(parse_client_message("[]").unwrap_err().code(), "missing_type");
    assert_eq!(parse_client_message(r#"{"type":"played","turnId":3}"#).unwrap_err().code(), "invalid_message");
    assert_eq!(parse_client_message(r#"{"type":"played","turnId":3,"ms":-5}"#).unwrap_err().code(), "invalid_message");
}

#[test]
fn server_messages_use_camel_case_fields_and_a_type_tag() {
    let m = ServerMessage::Latency {
        turn_id: 3,
        stt_ms: Some(120),
        llm_first_token_ms: None,
        tts_first_byte_ms: Some(90),
        first_audio_ms: Some(640),
        heard_after_ms: None,
    };
    let v: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"type":"latency","turnId":3,"sttMs":120,"llmFirstTokenMs":null,"ttsFirstByteMs":90,"firstAudioMs":640,"heardAfterMs":null})
    );
    let e: serde_json::Value =
        serde_json::from_str(&ServerMessage::error("llm_unavailable", "no key", false).to_json()).unwrap();
    assert_eq!(e, serde_json::json!({"type":"error","error":"no key","code":"llm_unavailable","retryable":false}));
    let t: serde_json::Value =
        serde_json::from_str(&ServerMessage::TurnEnd { turn_id: 1, interrupted: true }.to_json()).unwrap();
    assert_eq!(t, serde_json::json!({"type":"turnEnd","turnId":1,"interrupted":true}));
}

/// The codes a client can get back for a refused text frame.
const CODES: [&str; 4] = ["invalid_json", "unknown_message_type", "missing_type", "invalid_message"];

/// An error says what is wrong in words that match its code.
fn names_the_problem(input: &str, e: &ProtocolError) -> Result<(), TestCaseError> {
    let text = e.to_string();
    prop_assert!(CODES.contains(&e.code()), "{input:?}: code {}", e.code());
    match e {
        ProtocolError::Malformed(why) => {
            prop_assert!(!why.is_empty() && text.starts_with("message is not JSON"), "{input:?}: {text}");
        }
        ProtocolError::UnknownType(kind) => {
            prop_assert!(text.contains(&format!("{kind:?}")), "{input:?}: the type is named: {text}");
            prop_assert!(
                text.contains("expected closeMicrophone, text, interrupt, played, toolResult or ping"),
                "{text}"
            );
        }
        ProtocolError::MissingType => prop_assert!(text.contains("\"type\""), "{input:?}: {text}"),
        ProtocolError::Invalid { kind, reason } => {
            prop_assert!(!reason.is_empty(), "{input:?}: a reason");
            prop_assert!(text.starts_with(&format!("invalid {kind} message: ")), "{input:?}: {text}");
        }
    }
    Ok(())
}

/// Every message a client may send, with any values the protocol allows.
fn valid_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        Just(ClientMessage::CloseMicrophone),
        Just(ClientMessage::Interrupt),
        Just(ClientMessage::Ping),
        any::<String>()
            .prop_filter("not blank", |t| !t.trim().is_empty())
            .prop_map(|text| ClientMessage::Text { text }),
        (any::<u64>(), any::<u64>()).prop_map(|(turn_id, ms)| ClientMessage::Played { turn_id, ms }),
        (".{1,16}", any::<i64>(), any::<bool>()).prop_map(|(call_id, n, ok)| ClientMessage::ToolResult {
            call_id,
            result: ok.then(|| serde_json::json!({ "n": n })),
            error: (!ok).then(|| format!("failed {n}")),
        }),
    ]
}

/// The message as the README tells a client to write it (independent of the serde attributes).
fn as_readme_writes_it(m: &ClientMessage) -> serde_json::Value {
    use serde_json::json;
    match m {
        ClientMessage::CloseMicrophone => json!({"type": "closeMicrophone"}),
        ClientMessage::Interrupt => json!({"type": "interrupt"}),
        ClientMessage::Ping => json!({"type": "ping"}),
        ClientMessage::Text { text } => json!({"type": "text", "text": text}),
        ClientMessage::Played { turn_id, ms } => json!({"type": "played", "turnId": turn_id, "ms": ms}),
        ClientMessage::ToolResult { call_id, result: Some(result), .. } => {
            json!({"type": "toolResult", "callId": call_id, "result": result})
        }
        ClientMessage::ToolResult { call_id, error, .. } => {
            json!({"type": "toolResult", "callId": call_id, "error": error})
        }
    }
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN and infinities become null
        ".{0,12}".prop_map(Value::String),
        prop::sample::select(vec!["closeMicrophone", "text", "interrupt", "played", "toolResult", "ping"])
            .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (prop::sample::select(vec!["type", "text", "turnId", "ms", "extra", "Type", ""]), inner),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_text_gives_a_message_or_an_error_that_names_the_problem(input in any::<String>()) {
        if let Err(e) = parse_client_message(&input) {
            names_the_problem(&input, &e)?;
        }
    }

    #[test]
    fn any_bytes_read_as_text_never_panic_the_parser(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let input = String::from_utf8_lossy(&bytes);
        if let Err(e) = parse_client_message(&input) {
            names_the_problem(&input, &e)?;
        }
    }

    #[test]
    fn json_of_any_shape_is_told_apart_by_its_type_field(value in any_json()) {
        let input = value.to_string();
        match (parse_client_message(&input), value.get("type")) {
            (Ok(m), _) => {
                // What was accepted is exactly what the client meant: written back, it reads the same.
                prop_assert_eq!(parse_client_message(&serde_json::to_string(&m).unwrap()), Ok(m));
            }
            (Err(e), kind) => {
                names_the_problem(&input, &e)?;
                match kind {
                    Some(serde_json::Value::String(k))
                        if ["closeMicrophone", "text", "interrupt", "played", "toolResult", "ping"].contains(&k.as_str()) =>
                    {
                        prop_assert_eq!(e.code(), "invalid_message", "{}", input);
                    }
                    Some(serde_json::Value::String(k)) => {
                        prop_assert_eq!(e, ProtocolError::UnknownType(k.clone()));
                    }
                    _ => prop_assert_eq!(e, ProtocolError::MissingType, "{}", input),
                }
            }
        }
    }

    #[test]
    fn every_valid_message_round_trips(m in valid_message(), extra in any_json()) {
        let written = serde_json::to_string(&m).unwrap();
        prop_assert_eq!(parse_client_message(&written), Ok(m.clone()));
        // As the README writes it, and with an unknown field added: the same message.
        let mut readme = as_readme_writes_it(&m);
        prop_assert_eq!(parse_client_message(&readme.to_string()), Ok(m.clone()));
        readme["someFutureField"] = extra;
        prop_assert_eq!(parse_client_message(&readme.to_string()), Ok(m));
    }

    #[test]
    fn a_missing_or_mistyped_field_is_named_or_described(
        turn_id in any::<u64>(),
        bad in prop_oneof![
            Just("-1".to_string()),
            Just("1.5".to_string()),
            Just("18446744073709551616".to_string()),
            Just("\"3\"".to_string()),
            Just("null".to_string()),
            Just("[]".to_string()),
        ],
    ) {
        let missing = parse_client_message(&format!(r#"{{"type":"played","turnId":{turn_id}}}"#)).unwrap_err();
        prop_assert!(missing.to_string().contains("missing field `ms`"), "{}", missing);
        let mistyped = format!(r#"{{"type":"played","turnId":{turn_id},"ms":{bad}}}"#);
        let e = parse_client_message(&mistyped).unwrap_err();
        prop_assert_eq!(e.code(), "invalid_message", "{}", mistyped);
        prop_assert!(e.to_string().starts_with("invalid played message: invalid "), "{}: {}", mistyped, e);
    }

    #[test]
    fn nesting_far_past_the_recursion_limit_is_an_error_not_a_stack_overflow(
        depth in 1usize..12_000,
        shape in 0..3u8,
    ) {
        let input = match shape {
            0 => format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
            1 => format!("{}1{}", r#"{"type":"#.repeat(depth), "}".repeat(depth)),
            _ => format!(r#"{{"type":"text","text":{}"x"{}}}"#, "[".repeat(depth), "]".repeat(depth)),
        };
        let e = parse_client_message(&input).unwrap_err();
        names_the_problem(&input[..input.len().min(40)], &e)?;
        if depth > 200 {
            prop_assert_eq!(e.code(), "invalid_json", "serde_json's recursion limit refuses it");
        }
    }
}
