//! Voice-session harness: the app plus the three provider emulators it is pointed at, a WebSocket client
//! that records every frame, and synthetic microphone audio.

use std::collections::HashMap;
use std::time::Duration;

use actix_codec::Framed;
use awc::BoxedSocket;
use awc::ws::{Codec, Frame as WsFrame, Message};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use parley::emulators::{EmulatorOptions, Emulators};
use serde_json::Value;

use super::{TestApp, TestDb, spawn_app_with};

/// How long a test waits for any one expected event.
pub const WAIT: Duration = Duration::from_secs(15);

/// The app and its emulated providers.
pub struct VoiceApp {
    pub app: TestApp,
    pub emulators: Emulators,
}

pub async fn spawn_voice_app(db: TestDb) -> VoiceApp {
    spawn_voice_app_with(db, |_| {}).await
}

/// Starts the emulators, then the app pointed at them (after `tweak` adjusted its environment).
pub async fn spawn_voice_app_with(db: TestDb, tweak: impl FnOnce(&mut HashMap<String, String>)) -> VoiceApp {
    let emulators = Emulators::start(EmulatorOptions::default()).await.expect("emulators start");
    let env = emulators.env();
    let app = spawn_app_with(db, |map| {
        for (k, v) in env {
            map.insert(k.to_string(), v);
        }
        // Tests send audio faster than real time; keep the commit snappy.
        map.insert("PARLEY_COMMIT_DELAY_MS".into(), "100".into());
        // Replies go out as fast as TTS makes them (a minute ahead of real time), so a turn does not last as
        // long as its audio; the pacing tests set the real lead.
        map.insert("PARLEY_AUDIO_LEAD_MS".into(), "60000".into());
        tweak(map);
    })
    .await;
    VoiceApp { app, emulators }
}

impl VoiceApp {
    /// Opens `/ws/chat-audio?{query}` and waits for the `session` message.
    pub async fn connect(&self, query: &str) -> VoiceClient {
        let mut client = self.try_connect(query).await.expect("WebSocket upgrade accepted");
        let session = client.expect("session").await;
        client.session = session;
        client
    }

    pub async fn try_connect(&self, query: &str) -> Result<VoiceClient, String> {
        let port: u16 = self.app.address.rsplit(':').next().unwrap().parse().unwrap();
        VoiceClient::try_open(port, query).await
    }

    pub async fn stop(self) {
        self.app.stop().await.expect("app stops cleanly");
        tokio::time::timeout(Duration::from_secs(30), self.emulators.stop())
            .await
            .expect("the emulators stop within 30 s");
    }
}

/// Something the server sent.
#[derive(Debug, Clone)]
pub enum Event {
    Json(Value),
    Audio(Bytes),
    Closed(Option<u16>),
}

impl Event {
    pub fn kind(&self) -> Option<&str> {
        match self {
            Event::Json(v) => v["type"].as_str(),
            _ => None,
        }
    }
}

/// A test's WebSocket client.
pub struct VoiceClient {
    framed: Framed<BoxedSocket, Codec>,
    /// Everything received so far, in order.
    pub log: Vec<Event>,
    /// The `session` message.
    pub session: Value,
}

impl VoiceClient {
    /// Opens `/ws/chat-audio?{query}` on a server at `port` and waits for the `session` message.
    pub async fn open(port: u16, query: &str) -> VoiceClient {
        let mut client = VoiceClient::try_open(port, query).await.expect("WebSocket upgrade accepted");
        client.session = client.expect("session").await;
        client
    }

    /// Opens `/ws/chat-audio?{query}`; a `userId=U` in the query becomes a client token for U (as the app's
    /// backend would hand one to its page), so tests name users the way they always did.
    pub async fn try_open(port: u16, query: &str) -> Result<VoiceClient, String> {
        let has_token = query.split('&').any(|p| p.starts_with("token="));
        let query: Vec<String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.strip_prefix("userId=") {
                Some(user) if !has_token && user.parse::<parley::db::UserId>().is_ok() => {
                    format!("token={}", super::token_for(user))
                }
                _ => p.to_string(),
            })
            .collect();
        let url = format!("ws://127.0.0.1:{port}/ws/chat-audio?{}", query.join("&"));
        // Nagle's algorithm off, as a browser has it (Chromium sets TCP_NODELAY on every socket): 20 ms frames
        // go out as they are written.
        let client = awc::Client::builder()
            .connector(awc::Connector::new().connector(parley::http_client::tcp_connector()))
            .finish();
        let (_, framed) = client.ws(url).max_frame_size(8 << 20).connect().await.map_err(|e| match e {
            awc::error::WsClientError::InvalidResponseStatus(status) => format!("refused with HTTP {status}"),
            other => other.to_string(),
        })?;
        Ok(VoiceClient { framed, log: Vec::new(), session: Value::Null })
    }

    pub fn session_id(&self) -> String {
        self.session["sessionId"].as_str().unwrap_or_default().to_string()
    }

    pub async fn send_json(&mut self, v: Value) {
        self.framed.send(Message::Text(v.to_string().into())).await.expect("send");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.framed.send(Message::Text(text.to_string().into())).await.expect("send");
    }

    pub async fn send_audio(&mut self, pcm: &[u8]) {
        self.framed.send(Message::Binary(Bytes::copy_from_slice(pcm))).await.expect("send");
    }

    /// Sends `pcm` in 20 ms frames (640 bytes at 16 kHz), as fast as the socket takes them.
    pub async fn stream_audio(&mut self, pcm: &[u8]) {
        for chunk in pcm.chunks(640) {
            self.send_audio(chunk).await;
        }
    }

    /// Sends `pcm` in 20 ms frames, one every 20 ms, as a microphone does.
    pub async fn stream_audio_in_real_time(&mut self, pcm: &[u8]) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for chunk in pcm.chunks(640) {
            tick.tick().await;
            self.send_audio(chunk).await;
        }
    }

    /// A typed turn.
    pub async fn say(&mut self, text: &str) {
        self.send_json(serde_json::json!({"type": "text", "text": text})).await;
    }

    pub async fn close(&mut self) {
        let _ = self.framed.send(Message::Close(None)).await;
    }

    /// Starts the closing handshake with code 1000 (which the server echoes).
    pub async fn close_normally(&mut self) {
        let _ = self.framed.send(Message::Close(Some(awc::ws::CloseCode::Normal.into()))).await;
    }

    /// The next event, or `None` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Event> {
        // One deadline for the whole call: pings answered on the way do not extend it.
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.framed.next()).await.ok()?;
            let event = match frame {
                None => Event::Closed(None),
                Some(Err(_)) => Event::Closed(None),
                Some(Ok(WsFrame::Text(t))) => Event::Json(serde_json::from_slice(&t).expect("server sends JSON text")),
                Some(Ok(WsFrame::Binary(b))) => Event::Audio(b),
                Some(Ok(WsFrame::Close(reason))) => Event::Closed(reason.map(|r| u16::from(r.code))),
                Some(Ok(WsFrame::Ping(p))) => {
                    let _ = self.framed.send(Message::Pong(p)).await;
                    continue;
                }
                Some(Ok(_)) => continue,
            };
            self.log.push(event.clone());
            return Some(event);
        }
    }

    /// Reads until an event matches; panics with the log if none does within [`WAIT`].
    pub async fn until(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(e) if pred(&e) => return e,
                Some(Event::Closed(code)) => {
                    panic!("closed ({code:?}) while waiting for {what}; log: {:#?}", self.summary())
                }
                Some(_) => {}
                None => panic!("timed out waiting for {what}; log: {:#?}", self.summary()),
            }
        }
    }

    /// Reads until a JSON event of `kind`; returns it.
    pub async fn expect(&mut self, kind: &str) -> Value {
        match self.until(kind, |e| e.kind() == Some(kind)).await {
            Event::Json(v) => v,
            _ => unreachable!(),
        }
    }

    /// The JSON events of `kind` received so far.
    pub fn events(&self, kind: &str) -> Vec<Value> {
        self.log
            .iter()
            .filter_map(|e| match e {
                Event::Json(v) if v["type"] == kind => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    /// The log with audio frames summarised, for failure messages.
    pub fn summary(&self) -> Vec<String> {
        self.log
            .iter()
            .map(|e| match e {
                Event::Json(v) => v.to_string(),
                Event::Audio(b) => format!("<audio {} bytes>", b.len()),
                Event::Closed(c) => format!("<closed {c:?}>"),
            })
            .collect()
    }

    /// Closes the socket and reads everything the server sent until its end, so the log holds all the session
    /// ever sent; panics with the log if the end does not come within [`WAIT`].
    pub async fn close_and_read_to_end(&mut self) {
        self.close().await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(Event::Closed(_)) => return,
                Some(_) => {}
                None => panic!("the socket did not end after the close; log: {:#?}", self.summary()),
            }
        }
    }

    /// Audio bytes received between `audioStart` of `turn` and its end or interruption.
    pub fn audio_of_turn(&self, turn: u64) -> Vec<u8> {
        let mut inside = false;
        let mut out = Vec::new();
        for e in &self.log {
            match e {
                Event::Json(v) if v["type"] == "audioStart" && v["turnId"] == turn => inside = true,
                Event::Json(v)
                    if matches!(v["type"].as_str(), Some("audioEnd" | "interrupt" | "turnEnd"))
                        && v["turnId"] == turn =>
                {
                    inside = false
                }
                Event::Audio(b) if inside => out.extend_from_slice(b),
                _ => {}
            }
        }
        out
    }
}

/// 16 kHz 16-bit PCM: `speech_ms` of a loud two-tone signal (speech to an energy detector), then `silence_ms`.
pub fn utterance_pcm(speech_ms: u32, silence_ms: u32) -> Vec<u8> {
    let rate = 16_000.0;
    let speech = (speech_ms as usize) * 16;
    let silence = (silence_ms as usize) * 16;
    let mut out = Vec::with_capacity((speech + silence) * 2);
    for i in 0..speech {
        let t = i as f64 / rate;
        let v = 6000.0 * (2.0 * std::f64::consts::PI * 180.0 * t).sin()
            + 3000.0 * (2.0 * std::f64::consts::PI * 730.0 * t).sin();
        out.extend_from_slice(&(v as i16).to_le_bytes());
    }
    out.resize(out.len() + silence * 2, 0);
    out
}

/// Waits until the registry reports `n` live sessions (through `/api/metrics`).
pub async fn wait_for_live_sessions(app: &TestApp, n: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, m) = app.get_json("/api/metrics").await;
        if m["active_connections"].as_u64() == Some(n) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "live sessions stayed at {}", m["active_connections"]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What ElevenLabs' HTTP endpoint was asked, request by request: (`previous_text`, `text`, `next_text`).
pub fn tts_sentence_windows(
    tts: &parley::emulators::ElevenLabsControl,
) -> Vec<(Option<String>, Option<String>, Option<String>)> {
    tts.http_requests().into_iter().map(|r| (r.previous_text, r.text, r.next_text)).collect()
}
