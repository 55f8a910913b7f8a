//! The three ways an ElevenLabs HTTP body is cut short, read byte for byte: at a chunk boundary without the
//! terminating chunk, inside a chunk whose announced size never arrives, and short of a `Content-Length`.
//! Each applies to the raw audio and to the timestamped stream, and to one request only.

use super::*;

/// 45 characters: 3 s of pcm_16000, 96 000 bytes in three 32 000-byte chunks.
const TEXT: &str = "Fifteen chars. Fifteen chars. Fifteen chars. ";
const FULL_BYTES: usize = 96_000;

/// A chunk as it arrived: the size its header announced and the data bytes that followed.
#[derive(Debug, PartialEq)]
struct RawChunk {
    announced: usize,
    present: usize,
}

/// The chunks of a raw chunked body, and whether its terminating zero-size chunk came.
fn chunks(body: &[u8]) -> (Vec<RawChunk>, bool) {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(eol) = body[at..].windows(2).position(|w| w == b"\r\n") {
        let announced = usize::from_str_radix(&String::from_utf8_lossy(&body[at..at + eol]), 16).expect("size");
        at += eol + 2;
        if announced == 0 {
            return (out, body[at..].starts_with(b"\r\n"));
        }
        let present = announced.min(body.len() - at);
        out.push(RawChunk { announced, present });
        at += present;
        if present < announced || !body[at..].starts_with(b"\r\n") {
            break;
        }
        at += 2;
    }
    (out, false)
}

async fn cut_response(e: &Emulators, endpoint: &str, fault: ElevenLabsFault) -> (RawResponse, Vec<u8>) {
    e.elevenlabs().push_fault(fault);
    let (host, req) = request(e, endpoint, "?output_format=pcm_16000", TEXT);
    split_head(&raw_bytes(&host, &req).await)
}

#[actix_web::test]
async fn a_cut_at_a_chunk_boundary_ends_after_whole_chunks_without_the_terminating_chunk() {
    let e = start().await;
    let (head, body) = cut_response(&e, "stream", ElevenLabsFault::CutBody { after_bytes: 40_000 }).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    let (chunks, terminated) = chunks(&body);
    assert!(!terminated, "no 0\\r\\n\\r\\n");
    assert!(chunks.iter().all(|c| c.present == c.announced), "every chunk is whole: {chunks:?}");
    assert_eq!(chunks.iter().map(|c| c.present).sum::<usize>(), 40_000);
    assert!(body.ends_with(b"\r\n"), "the body stops right after a whole chunk");
    assert!(e.elevenlabs().wait_until(|s| s.http[0].cut && s.http[0].bytes_sent == 40_000, SOON).await);
    e.stop().await;
}

#[actix_web::test]
async fn a_cut_inside_a_chunk_announces_the_whole_chunk_and_sends_less() {
    let e = start().await;
    let (head, body) = cut_response(&e, "stream", ElevenLabsFault::CutInsideChunk { after_bytes: 40_000 }).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(head.header("content-length"), None);
    let (chunks, terminated) = chunks(&body);
    assert!(!terminated);
    assert_eq!(
        chunks,
        [RawChunk { announced: 32_000, present: 32_000 }, RawChunk { announced: 32_000, present: 8_000 }],
        "the second chunk is announced whole and cut after 8 000 of its bytes"
    );
    assert!(e.elevenlabs().wait_until(|s| s.http[0].cut, SOON).await);
    e.stop().await;
}

#[actix_web::test]
async fn a_content_length_body_closes_short_of_its_announced_length() {
    let e = start().await;
    let (head, body) = cut_response(&e, "stream", ElevenLabsFault::CutContentLength { after_bytes: 40_000 }).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding"), None, "not chunked");
    assert_eq!(head.header("content-length"), Some(FULL_BYTES.to_string().as_str()));
    assert_eq!(body.len(), 40_000, "the connection closed 56 000 bytes short");
    assert!(e.elevenlabs().wait_until(|s| s.http[0].cut, SOON).await);
    e.stop().await;
}

#[actix_web::test]
async fn every_cut_applies_to_the_timestamped_stream_once_and_the_next_request_is_whole() {
    let e = start().await;
    for fault in [
        ElevenLabsFault::CutBody { after_bytes: 5_000 },
        ElevenLabsFault::CutInsideChunk { after_bytes: 5_000 },
        ElevenLabsFault::CutContentLength { after_bytes: 5_000 },
    ] {
        let (head, body) = cut_response(&e, "stream/with-timestamps", fault.clone()).await;
        assert_eq!(head.status, 200, "{fault:?}");
        let data: usize = match head.header("content-length") {
            Some(_) => body.len(),
            None => chunks(&body).0.iter().map(|c| c.present).sum(),
        };
        assert_eq!(data, 5_000, "{fault:?}: the JSON lines stop mid-line");
        let (host, req) = request(&e, "stream/with-timestamps", "?output_format=pcm_16000", TEXT);
        let whole = raw(&host, &req).await;
        assert!(whole.complete, "{fault:?}: the fault took one request only");
    }
    let log = e.elevenlabs().http_requests();
    assert!(log.iter().all(|r| r.with_timestamps));
    assert_eq!(log.iter().map(|r| r.cut).collect::<Vec<_>>(), [true, false, true, false, true, false]);
    e.stop().await;
}
