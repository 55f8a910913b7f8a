//! OpenAI emulator errors and failures: 401/400 bodies, status faults with retry headers, a mid-stream
//! error, a cut stream, a stream that never ends and a client that leaves.

use super::*;

#[actix_web::test]
async fn a_bad_or_missing_key_is_a_401_json_error_not_sse() {
    let e = start().await;
    let host = authority(&e.openai_base_url());
    for headers in [vec![("Authorization", "Bearer nope")], vec![]] {
        let r = raw(&host, &post("/v1/chat/completions", &host, &headers, STREAM_BODY)).await;
        assert_eq!(r.status, 401);
        assert!(r.header("content-type").unwrap().starts_with("application/json"));
        assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    }
    e.openai().push_fault(OpenAiFault::Unauthorized);
    let r = chat(&e, STREAM_BODY).await;
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (401, Some("invalid_api_key")));
    e.stop().await;
}

#[actix_web::test]
async fn malformed_bodies_get_a_400_in_the_openai_error_shape() {
    let e = start().await;
    for body in ["{not json", r#"{"model":"m"}"#, r#"{"model":"m","messages":[]}"#, r#"{"model":"m","messages":"hi"}"#]
    {
        let r = chat(&e, body).await;
        assert_eq!(r.status, 400, "{body}");
        assert!(r.json()["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    e.stop().await;
}

#[actix_web::test]
async fn status_faults_are_plain_json_with_their_retry_headers() {
    let e = start().await;
    let c = e.openai();
    c.push_fault(OpenAiFault::RateLimited { retry_after: Duration::from_millis(1500) });
    c.push_fault(OpenAiFault::InsufficientQuota);
    c.push_fault(OpenAiFault::ServerError);
    c.push_fault(OpenAiFault::Overloaded);
    let r = chat(&e, STREAM_BODY).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1.5"));
    assert_eq!(r.header("retry-after-ms"), Some("1500"));
    assert_eq!(r.header("x-should-retry"), Some("true"));
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    let r = chat(&e, STREAM_BODY).await;
    assert_eq!((r.status, r.header("x-should-retry")), (429, Some("false")));
    assert_eq!(r.json()["error"]["code"], "insufficient_quota");
    let r = chat(&e, STREAM_BODY).await;
    assert_eq!((r.status, r.json()["error"]["type"].as_str()), (500, Some("server_error")));
    let r = chat(&e, STREAM_BODY).await;
    assert_eq!(r.status, 503);
    assert_eq!(chat(&e, STREAM_BODY).await.status, 200, "a fault applies to one request only");
    e.stop().await;
}

#[actix_web::test]
async fn an_error_mid_stream_comes_as_an_error_event_and_no_done() {
    let e = start().await;
    e.openai().push_fault(OpenAiFault::ErrorMidStream { after_deltas: 2 });
    let r = chat(&e, STREAM_BODY).await;
    assert_eq!(r.status, 200);
    let (items, end) = decode(&r.body);
    assert_eq!(content(&items), "You said:");
    assert!(matches!(items.last(), Some(StreamItem::Error(err)) if err.error.kind.as_deref() == Some("server_error")));
    assert!(end.is_err(), "no [DONE] after the error");
    e.stop().await;
}

#[actix_web::test]
async fn a_cut_stream_ends_without_done_and_a_client_reports_truncation() {
    let e = start().await;
    e.openai().push_fault(OpenAiFault::CutAfter { after_deltas: 3 });
    let r = chat(&e, STREAM_BODY).await;
    let (items, end) = decode(&r.body);
    assert_eq!(content(&items), "You said: \u{201c}book");
    assert!(matches!(end, Err(StreamEnd::Truncated(_))));
    assert!(!e.openai().requests()[0].done_sent);
    e.stop().await;
}

#[actix_web::test]
async fn a_never_ending_stream_stalls_and_the_emulator_notices_the_client_leave() {
    let e = start().await;
    e.openai().push_fault(OpenAiFault::NeverEnds { after_deltas: 2 });
    let (mut s, items) = read_deltas(&e, 2).await;
    assert_eq!(content(&items), "You said:");
    let mut buf = [0u8; 64];
    let more = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await;
    assert!(more.is_err(), "nothing more arrives");
    drop(s);
    assert!(e.openai().wait_until(|r| r[0].client_went_away && !r[0].completed, SOON).await);
    e.stop().await;
}

#[actix_web::test]
async fn a_client_leaving_mid_stream_stops_generation_and_is_logged() {
    let e = start().await;
    e.openai().set_timing(Duration::ZERO, Duration::from_millis(100));
    let (s, _) = read_deltas(&e, 2).await;
    drop(s);
    assert!(e.openai().wait_until(|r| r[0].client_went_away, SOON).await);
    let log = &e.openai().requests()[0];
    assert!(!log.completed && !log.done_sent && log.deltas_sent < 10, "{log:?}");
    e.stop().await;
}
