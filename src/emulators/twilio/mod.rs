//! A Twilio emulator that is a fake caller: it places one inbound call against a voice webhook the way
//! Twilio does, then speaks Twilio's Media Streams protocol on the WebSocket the webhook's TwiML names, so
//! parley's phone transport can be tested (and tried by hand with `parley emulate --twilio-call URL`) without
//! a phone or a Twilio account.
//!
//! ```text
//! let call = place_call(CallOptions::new(format!("http://{addr}/twilio/voice"), "auth-token")).await?;
//! call.play(mulaw_8k).await;                         // the caller speaks (paced at 20 ms a frame)
//! call.press("1#").await;                            // dtmf events
//! let closed = call.wait_closed(Duration::from_secs(5)).await;   // the agent hung up?
//! let report = call.report();                        // heard audio, marks echoed, clears, every message
//! call.hang_up().await;                              // `stop`, then close 1000
//! ```
//!
//! What it does, per Twilio's published protocol (`/work/shared/reference/twilio-media-streams.md`):
//! 1. POSTs the webhook form-encoded (`CallSid`, `AccountSid`, `From`, `To`, `CallStatus=ringing`,
//!    `Direction=inbound`, `ApiVersion=2010-04-01`) with `X-Twilio-Signature` ([`signature`]).
//! 2. Reads `<Connect><Stream url=".."><Parameter name=".." value=".."/></Stream></Connect>` from the TwiML
//!    ([`twiml`]); a `<Start><Stream>` (listen-only) is refused as [`CallError::NotBidirectional`].
//! 3. Opens the WebSocket with `X-Twilio-Signature` over the stream URL (no parameters), sends `connected`,
//!    `start` (the `<Parameter>`s as `customParameters`), then the caller's audio as 160-byte (20 ms) µ-law
//!    `media` frames, then `trailing_silence_ms` of silence.
//! 4. Plays what the server sends in real time ([`playback`]): a `mark` is echoed when the audio queued
//!    before it has played; `clear` drops the queued audio and echoes every pending mark at once.
//!
//! Times in the report count from the moment the stream started (just before `connected` was sent). The
//! call's tasks run on the current actix/tokio local runtime (as every parley test does); dropping the
//! [`Call`] drops the line without a close frame.

mod call;
pub mod cli;
mod line;
pub mod messages;
mod place;
pub mod playback;
mod report;
pub mod signature;
pub mod twiml;
pub mod wav_input;

pub use call::Call;
pub use place::place_call;
pub use report::{CallReport, CloseInfo};
pub use signature::signature;

/// How the emulated caller places its call.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// What Twilio would POST to, e.g. `http://127.0.0.1:PORT/twilio/voice`.
    pub webhook_url: String,
    /// The account's Auth Token (`TWILIO_AUTH_TOKEN`): the key of every `X-Twilio-Signature`.
    pub auth_token: String,
    /// Caller, E.164.
    pub from: String,
    /// Called number, E.164.
    pub to: String,
    /// `CA` + 32 hex digits, generated when `None`.
    pub call_sid: Option<String>,
    /// `AC…`.
    pub account_sid: String,
    /// The public origin Twilio would have seen (`https://agent.example.com`) when the webhook is reached
    /// through a proxy: the webhook is signed over this origin plus `webhook_url`'s path and query, and a
    /// stream URL on this origin (`wss://agent.example.com/...`) is signed as written but connected to on
    /// `webhook_url`'s host. `None`: everything is signed as requested.
    pub signed_url_base: Option<String>,
    /// µ-law 8 kHz mono: what the caller says first (may be empty).
    pub audio: Vec<u8>,
    /// Pace the caller's media at 20 ms a frame (true), or send it as fast as possible (false).
    pub realtime: bool,
    /// Silence (0xFF) sent after `audio`, paced like it: lets the server's endpointing see the end of speech.
    pub trailing_silence_ms: u32,
    /// Sign with a wrong key, to test that the server refuses.
    pub bad_signature: bool,
}

impl CallOptions {
    /// A real-time call from +15550100001 to +15550100002 on a made-up account, saying nothing at first.
    pub fn new(webhook_url: impl Into<String>, auth_token: impl Into<String>) -> CallOptions {
        CallOptions {
            webhook_url: webhook_url.into(),
            auth_token: auth_token.into(),
            from: "+15550100001".into(),
            to: "+15550100002".into(),
            call_sid: None,
            account_sid: format!("AC{}", uuid::Uuid::new_v4().simple()),
            signed_url_base: None,
            audio: Vec::new(),
            realtime: true,
            trailing_silence_ms: 0,
            bad_signature: false,
        }
    }
}

/// Why a call could not be placed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// A URL (webhook, public base, stream) could not be parsed or used.
    #[error("bad URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    /// The webhook could not be reached or did not answer in time.
    #[error("the voice webhook could not be reached: {0}")]
    WebhookUnreachable(String),
    /// The webhook answered with an error status (403 for a refused signature, for example).
    #[error("the voice webhook answered HTTP {status}: {body}")]
    WebhookStatus { status: u16, body: String },
    /// The TwiML names no usable stream.
    #[error("the TwiML names no stream: {0}")]
    Twiml(#[from] twiml::TwimlError),
    /// The stream is `<Start><Stream>` (listen-only) instead of `<Connect><Stream>`.
    #[error("the TwiML starts a listen-only <Start><Stream>, not a bidirectional <Connect><Stream>")]
    NotBidirectional,
    /// The WebSocket upgrade was refused with this HTTP status.
    #[error("the stream WebSocket was refused with HTTP {0}")]
    StreamRefused(u16),
    /// The WebSocket could not be opened.
    #[error("the stream WebSocket could not be opened: {0}")]
    StreamUnreachable(String),
}
