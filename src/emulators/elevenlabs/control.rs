//! The test-facing side of the ElevenLabs emulator: pacing and timeouts for the next connections and
//! requests, injected faults (each taken by the next WebSocket connection or HTTP request it applies to),
//! and the logs of both endpoints.

use std::collections::VecDeque;
use std::str::FromStr;
use std::time::Duration;

use crate::emulators::common::log::{Log, Trim, trim_front};
use crate::emulators::common::shared::Shared;
use crate::emulators::options::ElevenLabsOptions;

/// A failure the next connection or request suffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElevenLabsFault {
    /// HTTP: 401 `invalid_api_key`. WebSocket: the key is refused (error message, then Close 1008).
    Unauthorized,
    /// HTTP: 403 `only_for_creator+` (a plan-gated voice or format).
    Forbidden,
    /// HTTP: 422 with `detail` as an object (`array: false`) or a validation array (`array: true`).
    Unprocessable { array: bool },
    /// HTTP: 429 `too_many_concurrent_requests`.
    TooManyRequests,
    /// WebSocket: at the first text after the init message, the generic "something went wrong" + 1008.
    SomethingWentWrong,
    /// WebSocket: after `close_context`, one more audio frame for that context before its `isFinal`.
    LateAudioAfterClose,
    /// WebSocket: drop the connection without a Close frame right after the first audio frame.
    DropMidStream,
    /// WebSocket: drop the connection (no Close frame, FIN) right after the first text of a context
    /// arrives (the first message with non-blank text), before any audio. A client that reconnects and
    /// sends the text again gets its audio (the fault is taken by one connection).
    DropBeforeAudio,
    /// WebSocket: like `DropBeforeAudio`, but a policy close: the in-band `max_active_conversations` error,
    /// then Close 1008 (what the service sends when it counts too many open contexts).
    CloseBeforeAudio,
    /// HTTP: end the body after this many bytes, at a chunk boundary and without the terminating `0\r\n\r\n`
    /// chunk (the connection closes; the client sees a chunked body that never ended).
    CutBody { after_bytes: usize },
    /// HTTP: end the body after this many bytes *inside* a chunk: the chunk's full size is announced, fewer
    /// bytes follow, then the connection closes.
    CutInsideChunk { after_bytes: usize },
    /// HTTP: answer with a `Content-Length` of the whole body instead of chunks, and close the connection
    /// after this many bytes.
    CutContentLength { after_bytes: usize },
}

impl ElevenLabsFault {
    /// True when the fault makes sense on the WebSocket endpoints.
    pub fn applies_to_socket(&self) -> bool {
        matches!(
            self,
            Self::Unauthorized
                | Self::SomethingWentWrong
                | Self::LateAudioAfterClose
                | Self::DropMidStream
                | Self::DropBeforeAudio
                | Self::CloseBeforeAudio
        )
    }

    /// True when the fault makes sense on the HTTP endpoint.
    pub fn applies_to_http(&self) -> bool {
        matches!(
            self,
            Self::Unauthorized
                | Self::Forbidden
                | Self::Unprocessable { .. }
                | Self::TooManyRequests
                | Self::CutBody { .. }
                | Self::CutInsideChunk { .. }
                | Self::CutContentLength { .. }
        )
    }
}

/// Parses the CLI spelling: `401`, `403`, `422-object`, `422-array`, `429`, `1008`, `late-audio`, `drop`,
/// `drop-before-audio`, `1008-before-audio`, `cut-body:BYTES`, `cut-in-chunk:BYTES`, `cut-content-length:BYTES`.
impl FromStr for ElevenLabsFault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "401" => Self::Unauthorized,
            "403" => Self::Forbidden,
            "422-object" => Self::Unprocessable { array: false },
            "422-array" => Self::Unprocessable { array: true },
            "429" => Self::TooManyRequests,
            "1008" => Self::SomethingWentWrong,
            "late-audio" => Self::LateAudioAfterClose,
            "drop" => Self::DropMidStream,
            "drop-before-audio" => Self::DropBeforeAudio,
            "1008-before-audio" => Self::CloseBeforeAudio,
            _ => {
                let (name, bytes) = s.split_once(':').unwrap_or((s, ""));
                let after_bytes = bytes.parse().map_err(|_| format!("unknown ElevenLabs fault {s:?}"))?;
                match name {
                    "cut-body" => Self::CutBody { after_bytes },
                    "cut-in-chunk" => Self::CutInsideChunk { after_bytes },
                    "cut-content-length" => Self::CutContentLength { after_bytes },
                    _ => return Err(format!("unknown ElevenLabs fault {s:?}")),
                }
            }
        })
    }
}

/// One frame the socket sent, summarised (audio itself is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentFrame {
    pub context_id: Option<String>,
    pub audio_bytes: usize,
    pub is_final: bool,
    /// The `error` field of an error message.
    pub error: Option<String>,
    /// The chunk's character alignment, as sent (times relative to the chunk).
    pub alignment: Option<crate::providers::elevenlabs::Alignment>,
}

/// Everything one WebSocket connection did.
#[derive(Debug, Clone, PartialEq)]
pub struct TtsSocketLog {
    pub number: u64,
    pub path: String,
    pub voice_id: String,
    pub multi: bool,
    pub query: Vec<(String, String)>,
    /// The key arrived as the `xi-api-key` header.
    pub key_in_header: bool,
    /// Every text frame received, parsed when it was JSON (else as a JSON string).
    pub received: Vec<serde_json::Value>,
    pub contexts_opened: Vec<String>,
    pub contexts_closed: Vec<String>,
    pub sent: Vec<SentFrame>,
    pub audio_bytes_sent: usize,
    pub close_sent: Option<(u16, String)>,
    pub close_received: Option<(u16, String)>,
    /// Ended without a Close frame (dropped on purpose).
    pub dropped: bool,
    pub open: bool,
}

/// Everything one HTTP request did.
#[derive(Debug, Clone, PartialEq)]
pub struct TtsHttpLog {
    pub number: u64,
    pub voice_id: String,
    /// `POST .../stream/with-timestamps` (JSON lines) rather than `.../stream` (raw audio).
    pub with_timestamps: bool,
    pub query: Vec<(String, String)>,
    /// The body as JSON, or as a JSON string when it was not JSON.
    pub body: serde_json::Value,
    pub text: Option<String>,
    pub previous_text: Option<String>,
    pub next_text: Option<String>,
    pub previous_request_ids: Vec<String>,
    /// The `request-id` response header.
    pub request_id: String,
    pub status: u16,
    /// Body bytes written (audio, or JSON lines with timestamps).
    pub bytes_sent: usize,
    pub completed: bool,
    /// The body was aborted on purpose (fault).
    pub cut: bool,
    pub client_went_away: bool,
}

/// Settings a connection or request takes when it starts.
#[derive(Debug, Clone)]
pub struct ElevenLabsSettings {
    pub api_keys: Vec<String>,
    pub time_to_first_byte: Duration,
    pub realtime_pacing: bool,
    /// Overrides the `inactivity_timeout` query parameter (which is in whole seconds).
    pub inactivity_timeout: Option<Duration>,
}

#[derive(Debug)]
pub(crate) struct ElevenLabsState {
    pub settings: ElevenLabsSettings,
    pub faults: VecDeque<ElevenLabsFault>,
    pub sockets: Log<TtsSocketLog>,
    pub http: Log<TtsHttpLog>,
}

impl Trim for TtsSocketLog {
    fn trim(&mut self, limit: usize) {
        trim_front(&mut self.received, limit);
        trim_front(&mut self.contexts_opened, limit);
        trim_front(&mut self.contexts_closed, limit);
        trim_front(&mut self.sent, limit);
    }
}

impl Trim for TtsHttpLog {
    fn trim(&mut self, _: usize) {}
}

impl ElevenLabsState {
    /// Takes the first queued fault `applies` accepts.
    pub fn take_fault(&mut self, applies: impl Fn(&ElevenLabsFault) -> bool) -> Option<ElevenLabsFault> {
        let i = self.faults.iter().position(applies)?;
        self.faults.remove(i)
    }
}

/// A snapshot of both logs, for `wait_until`.
#[derive(Debug, Clone, Copy)]
pub struct TtsSnapshot<'a> {
    pub sockets: &'a [TtsSocketLog],
    pub http: &'a [TtsHttpLog],
}

/// Handle on the ElevenLabs emulator (cheap to clone, `Send + Sync`).
#[derive(Debug, Clone)]
pub struct ElevenLabsControl {
    pub(crate) shared: Shared<ElevenLabsState>,
}

impl ElevenLabsControl {
    pub(crate) fn new(opts: &ElevenLabsOptions) -> Self {
        let settings = ElevenLabsSettings {
            api_keys: opts.api_keys.clone(),
            time_to_first_byte: opts.time_to_first_byte,
            realtime_pacing: opts.realtime_pacing,
            inactivity_timeout: opts.inactivity_timeout,
        };
        ElevenLabsControl {
            shared: Shared::new(ElevenLabsState {
                settings,
                faults: opts.faults.clone().into(),
                sockets: Log::default(),
                http: Log::default(),
            }),
        }
    }

    /// Delay between a generation being triggered (or a request arriving) and its first audio. Open sockets
    /// use it from their next generation.
    pub fn set_time_to_first_byte(&self, ttfb: Duration) {
        self.shared.update(|s| s.settings.time_to_first_byte = ttfb);
    }

    /// `true`: audio leaves no faster than it plays, per socket context and per HTTP request, each on its own
    /// clock (and a context closed mid-reply stops after the chunk in flight); `false`: as fast as possible
    /// after the first byte. Open sockets use it from their next generation.
    pub fn set_realtime_pacing(&self, on: bool) {
        self.shared.update(|s| s.settings.realtime_pacing = on);
    }

    /// Inactivity timeout for the next sockets, overriding their `inactivity_timeout` query (for tests).
    pub fn set_inactivity_timeout(&self, timeout: Option<Duration>) {
        self.shared.update(|s| s.settings.inactivity_timeout = timeout);
    }

    /// A fault for the next connection or request it applies to.
    pub fn push_fault(&self, fault: ElevenLabsFault) {
        self.shared.update(|s| s.faults.push_back(fault));
    }

    /// Keep only about the last `limit` connections and requests, and of each connection the last `limit`
    /// messages (`None`: all).
    pub fn set_log_limit(&self, limit: Option<crate::emulators::common::log::LogLimit>) {
        self.shared.update(|s| {
            s.sockets.set_limit(limit);
            s.http.set_limit(limit);
        });
    }

    /// Every WebSocket connection so far.
    pub fn ws_connections(&self) -> Vec<TtsSocketLog> {
        self.shared.read(|s| s.sockets.entries().to_vec())
    }

    /// Every HTTP request so far.
    pub fn http_requests(&self) -> Vec<TtsHttpLog> {
        self.shared.read(|s| s.http.entries().to_vec())
    }

    /// Waits until `pred` holds for the logs, or `timeout` passes; true if it held.
    pub async fn wait_until(&self, pred: impl Fn(TtsSnapshot<'_>) -> bool, timeout: Duration) -> bool {
        self.shared
            .wait_until(|s| pred(TtsSnapshot { sockets: s.sockets.entries(), http: s.http.entries() }), timeout)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_fault_spellings_parse_and_faults_know_their_endpoint() {
        assert_eq!("cut-body:4000".parse(), Ok(ElevenLabsFault::CutBody { after_bytes: 4000 }));
        assert_eq!("422-array".parse(), Ok(ElevenLabsFault::Unprocessable { array: true }));
        assert!("cut-body:x".parse::<ElevenLabsFault>().is_err());
        assert_eq!("cut-in-chunk:10".parse(), Ok(ElevenLabsFault::CutInsideChunk { after_bytes: 10 }));
        assert_eq!("cut-content-length:9".parse(), Ok(ElevenLabsFault::CutContentLength { after_bytes: 9 }));
        assert_eq!("1008-before-audio".parse(), Ok(ElevenLabsFault::CloseBeforeAudio));
        assert!(ElevenLabsFault::DropBeforeAudio.applies_to_socket());
        assert!(ElevenLabsFault::CutInsideChunk { after_bytes: 1 }.applies_to_http());
        assert!(ElevenLabsFault::DropMidStream.applies_to_socket());
        assert!(!ElevenLabsFault::DropMidStream.applies_to_http());
        assert!(ElevenLabsFault::Unauthorized.applies_to_http() && ElevenLabsFault::Unauthorized.applies_to_socket());
    }

    #[test]
    fn a_socket_takes_the_first_fault_meant_for_sockets() {
        let mut s = ElevenLabsState {
            settings: ElevenLabsSettings {
                api_keys: vec![],
                time_to_first_byte: Duration::ZERO,
                realtime_pacing: false,
                inactivity_timeout: None,
            },
            faults: vec![ElevenLabsFault::TooManyRequests, ElevenLabsFault::DropMidStream].into(),
            sockets: Log::default(),
            http: Log::default(),
        };
        assert_eq!(s.take_fault(ElevenLabsFault::applies_to_socket), Some(ElevenLabsFault::DropMidStream));
        assert_eq!(s.faults.len(), 1);
    }
}
