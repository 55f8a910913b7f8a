//! OpenAI emulator transport torture and compatible-server quirks: each visible on the wire, each still
//! decoding to the same reply.

use super::*;

async fn torture_response(t: Torture) -> (RawResponse, Emulators) {
    let e = start().await;
    e.openai().set_torture(t);
    let r = chat(&e, STREAM_BODY).await;
    let (items, end) = decode(&r.body);
    assert!(end.is_ok(), "{t:?}: {end:?}");
    assert_eq!(content(&items), EXPECTED, "{t:?}");
    (r, e)
}

#[actix_web::test]
async fn split_utf8_torture_cuts_writes_inside_a_character() {
    let (r, e) = torture_response(Torture { split_utf8: true, ..Default::default() }).await;
    assert!(r.chunks.iter().any(|c| std::str::from_utf8(c).is_err()), "some write ends mid-character");
    e.stop().await;
}

#[actix_web::test]
async fn split_lines_torture_cuts_writes_mid_line() {
    let (r, e) = torture_response(Torture { split_lines: true, ..Default::default() }).await;
    assert!(r.chunks.iter().filter(|c| !c.ends_with(b"\n")).count() > 5);
    e.stop().await;
}

#[actix_web::test]
async fn crlf_and_lone_cr_tortures_change_every_line_ending() {
    let (r, e) = torture_response(Torture { crlf: true, ..Default::default() }).await;
    let text = String::from_utf8(r.body.clone()).unwrap();
    assert_eq!(text.matches("\r\n\r\n").count(), text.matches("data:").count());
    e.stop().await;
    let (r, e) = torture_response(Torture { cr: true, ..Default::default() }).await;
    assert!(!r.body.contains(&b'\n') && r.body.ends_with(b"[DONE]\r\r"));
    e.stop().await;
}

#[actix_web::test]
async fn comment_coalesce_no_space_and_extra_field_tortures_show_on_the_wire() {
    let t = Torture { comments: true, coalesce: true, no_space: true, extra_fields: true, ..Default::default() };
    let (r, e) = torture_response(t).await;
    let text = String::from_utf8(r.body.clone()).unwrap();
    assert!(text.contains(": keep-alive\n\n"));
    assert!(text.contains("data:{") && !text.contains("data: "));
    assert!(text.contains("\"obfuscation\""));
    assert!(
        r.chunks.iter().any(|c| String::from_utf8_lossy(c).matches("data:").count() == 2),
        "two events in one write"
    );
    let mut d = SseDecoder::new();
    d.push(&r.body);
    assert!(d.comments_seen() > 5);
    e.stop().await;
}

#[actix_web::test]
async fn every_torture_at_once_still_decodes_to_the_reply() {
    let (_, e) = torture_response(Torture { cr: false, ..Torture::all() }).await;
    e.stop().await;
}

#[actix_web::test]
async fn compatible_server_quirks_show_on_the_wire_and_still_decode() {
    let t = Torture { usage_every_chunk: true, finish_with_content: true, ..Default::default() };
    let (r, e) = torture_response(t).await;
    let text = String::from_utf8(r.body.clone()).unwrap();
    assert!(!text.contains("\"usage\":null"), "every chunk carries a usage object");
    let (items, _) = decode(&r.body);
    let last_delta = items.iter().rev().find_map(|i| match i {
        StreamItem::Chunk(c) if c.content().is_some() => Some(c.clone()),
        _ => None,
    });
    assert_eq!(last_delta.unwrap().finish_reason(), Some("stop"), "finish rides on the last delta");
    e.stop().await;
}
