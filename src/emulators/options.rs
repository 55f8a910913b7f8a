//! How the emulators start: bind host, a port per service (0 = any free port), accepted keys, latencies,
//! timeouts, torture and faults queued from the start. The CLI maps its flags onto these; tests mostly take
//! the defaults and steer each emulator through its control handle instead.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::deepgram::{DeepgramFault, FinalizeReply};
use super::elevenlabs::ElevenLabsFault;
use super::openai::{OpenAiFault, Reply, Torture};

/// The key the Deepgram emulator accepts by default.
pub const DEEPGRAM_KEY: &str = "emulated-deepgram-key";
/// The key the OpenAI emulator accepts by default.
pub const OPENAI_KEY: &str = "emulated-openai-key";
/// The key the ElevenLabs emulator accepts by default.
pub const ELEVENLABS_KEY: &str = "emulated-elevenlabs-key";

/// Options of all three emulators.
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// Address every listener binds (default 127.0.0.1).
    pub host: IpAddr,
    pub deepgram: DeepgramOptions,
    pub openai: OpenAiOptions,
    pub elevenlabs: ElevenLabsOptions,
    /// Keep only about this many connections and requests in each emulator's log, and this many frames of
    /// each (`parley emulate`: [`CLI_LOG_LIMIT`](super::common::log::CLI_LOG_LIMIT)); `None`: everything (tests
    /// read the logs).
    pub log_limit: Option<crate::emulators::common::log::LogLimit>,
}

/// Deepgram live STT emulator options.
#[derive(Debug, Clone)]
pub struct DeepgramOptions {
    pub port: u16,
    /// Accepted keys; empty accepts any credentials (and none).
    pub api_keys: Vec<String>,
    /// No audio or text for this long closes with 1011 NET-0001 (Deepgram: 10 s).
    pub idle_timeout: Duration,
    /// Delay of each result after the audio that caused it.
    pub reply_latency: Duration,
    /// How `Finalize` is answered (default: at once).
    pub finalize: FinalizeReply,
    /// Faults for the first connections, one each, in order.
    pub faults: Vec<DeepgramFault>,
}

/// OpenAI-compatible emulator options.
#[derive(Debug, Clone)]
pub struct OpenAiOptions {
    pub port: u16,
    /// Accepted keys; empty accepts any.
    pub api_keys: Vec<String>,
    pub time_to_first_token: Duration,
    pub inter_token_delay: Duration,
    pub torture: Torture,
    /// Faults for the first requests, one each, in order.
    pub faults: Vec<OpenAiFault>,
    /// Replies for the first requests, one each, in order (then the default reply).
    pub replies: Vec<Reply>,
    /// Path prefixes that are down from the start, with the fault every request under each gets.
    pub down: Vec<(String, OpenAiFault)>,
}

/// ElevenLabs emulator options.
#[derive(Debug, Clone)]
pub struct ElevenLabsOptions {
    pub port: u16,
    /// Accepted keys; empty accepts any.
    pub api_keys: Vec<String>,
    pub time_to_first_byte: Duration,
    /// Audio leaves no faster than it plays, per socket context and per HTTP request.
    pub realtime_pacing: bool,
    /// Overrides every socket's `inactivity_timeout` query (default: the query, else 20 s).
    pub inactivity_timeout: Option<Duration>,
    /// Faults for the first connections/requests they apply to.
    pub faults: Vec<ElevenLabsFault>,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            deepgram: DeepgramOptions {
                port: 0,
                api_keys: vec![DEEPGRAM_KEY.to_string()],
                idle_timeout: Duration::from_secs(10),
                reply_latency: Duration::ZERO,
                finalize: FinalizeReply::Immediate,
                faults: Vec::new(),
            },
            openai: OpenAiOptions {
                port: 0,
                api_keys: vec![OPENAI_KEY.to_string()],
                time_to_first_token: Duration::ZERO,
                inter_token_delay: Duration::ZERO,
                torture: Torture::default(),
                faults: Vec::new(),
                replies: Vec::new(),
                down: Vec::new(),
            },
            elevenlabs: ElevenLabsOptions {
                port: 0,
                api_keys: vec![ELEVENLABS_KEY.to_string()],
                time_to_first_byte: Duration::ZERO,
                realtime_pacing: false,
                inactivity_timeout: None,
                faults: Vec::new(),
            },
            log_limit: None,
        }
    }
}

impl EmulatorOptions {
    /// Latencies like the real services (for trying parley by hand): 100 ms STT replies, 300 ms to the
    /// first token then 30 ms a token, 150 ms to the first audio byte, audio at real-time pace.
    pub fn realistic(mut self) -> Self {
        self.deepgram.reply_latency = Duration::from_millis(100);
        self.openai.time_to_first_token = Duration::from_millis(300);
        self.openai.inter_token_delay = Duration::from_millis(30);
        self.elevenlabs.time_to_first_byte = Duration::from_millis(150);
        self.elevenlabs.realtime_pacing = true;
        self
    }
}
