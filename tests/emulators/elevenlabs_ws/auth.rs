//! ElevenLabs socket authentication: the key as header, query or first-message field (both spellings), and
//! bad keys accepted at the upgrade then refused in-band with 1008.

use super::*;

#[actix_web::test]
async fn the_key_may_come_in_the_first_message_in_either_spelling() {
    let e = start().await;
    for field in ["xi_api_key", "xi-api-key"] {
        let mut ws = single(&e, "output_format=pcm_16000", false).await;
        ws.text(&format!(r#"{{"text":" ","{field}":"{ELEVENLABS_KEY}"}}"#)).await;
        ws.text(r#"{"text":"Hello. ","flush":true}"#).await;
        ws.text(r#"{"text":""}"#).await;
        let (_, end) = ws.texts_until_end(SOON).await;
        assert_eq!(end, Next::Close(Some((1000, String::new()))), "{field}");
    }
    e.stop().await;
}

#[actix_web::test]
async fn a_bad_key_is_accepted_at_the_upgrade_then_refused_in_band_with_1008() {
    let e = start().await;
    let mut ws = single(&e, "", false).await;
    ws.text(r#"{"text":" ","xi_api_key":"wrong"}"#).await;
    expect_policy_close(&mut ws, "invalid_api_key").await;
    let url = format!("{}/text-to-speech/v/stream-input", e.elevenlabs_base_url().replacen("http", "ws", 1));
    let mut ws = Ws::connect(&url, &[("xi-api-key", "wrong")]).await;
    expect_policy_close(&mut ws, "invalid_api_key").await;
    e.elevenlabs().push_fault(ElevenLabsFault::Unauthorized);
    let mut ws = single(&e, "", true).await;
    expect_policy_close(&mut ws, "invalid_api_key").await;
    e.stop().await;
}

#[actix_web::test]
async fn the_key_may_come_as_an_authorization_query_parameter() {
    let e = start().await;
    let query = format!("output_format=pcm_16000&authorization=Bearer%20{ELEVENLABS_KEY}");
    let mut ws = single(&e, &query, false).await;
    ws.text(r#"{"text":" "}"#).await;
    ws.text(r#"{"text":"Hi. ","flush":true}"#).await;
    ws.text(r#"{"text":""}"#).await;
    let (_, end) = ws.texts_until_end(SOON).await;
    assert_eq!(end, Next::Close(Some((1000, String::new()))));
    e.stop().await;
}
