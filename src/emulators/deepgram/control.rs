//! The test-facing side of the Deepgram emulator: settings and faults that apply to the next connection,
//! queued scripts, and the log of every connection (what it was opened with, what it sent and received, how
//! it ended). Cloned into every connection actor; all state sits behind one `Shared` lock.

use std::collections::VecDeque;
use std::str::FromStr;
use std::time::Duration;

use crate::emulators::common::log::{Log, Trim, trim_front};
use crate::emulators::common::shared::Shared;
use crate::emulators::options::DeepgramOptions;
use crate::providers::deepgram::ListenOptions;

/// A failure the next connection suffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeepgramFault {
    /// Refuse the upgrade with this HTTP status (JSON body, `dg-error`).
    RefuseUpgrade(u16),
    /// Close 1011 (NET-0000) once this much audio has arrived.
    Close1011AfterAudio(Duration),
    /// Drop the TCP connection without a Close frame (FIN; the client sees 1006) after this much audio.
    /// Results due before the drop still go out first, so with speech from the start and
    /// `interim_results=true`, a drop after more than 0.5 s of audio cuts an utterance whose first interim
    /// (with words) was sent and whose final never will be.
    DropAfterAudio(Duration),
    /// Like `DropAfterAudio`, but the connection ends with a TCP reset (RST), as when a server crashes or a
    /// load balancer cuts it: the client reads a "connection reset" error rather than an end of stream.
    ResetAfterAudio(Duration),
    /// Close 1008 DATA-0000 at the first audio frame, as for undecodable audio.
    UndecodableAudio,
    /// Send an in-band `Error` frame at the first audio frame, then carry on.
    ErrorFrame,
    /// Send a frame of a `type` no client knows at the first audio frame, then carry on.
    UnknownType,
    /// Every final carries an empty transcript (interims keep their text).
    EmptyFinals,
}

/// Parses the CLI spelling: `refuse:503`, `close1011:2000` (ms of audio), `drop:1500`, `reset:1500`,
/// `data0000`, `error-frame`, `unknown-type`, `empty-finals`.
impl FromStr for DeepgramFault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, arg) = s.split_once(':').unwrap_or((s, ""));
        let num = || arg.parse::<u64>().map_err(|_| format!("fault {s:?} needs a number after ':'"));
        Ok(match name {
            "refuse" => DeepgramFault::RefuseUpgrade(num()? as u16),
            "close1011" => DeepgramFault::Close1011AfterAudio(Duration::from_millis(num()?)),
            "drop" => DeepgramFault::DropAfterAudio(Duration::from_millis(num()?)),
            "reset" => DeepgramFault::ResetAfterAudio(Duration::from_millis(num()?)),
            "data0000" => DeepgramFault::UndecodableAudio,
            "error-frame" => DeepgramFault::ErrorFrame,
            "unknown-type" => DeepgramFault::UnknownType,
            "empty-finals" => DeepgramFault::EmptyFinals,
            _ => return Err(format!("unknown Deepgram fault {s:?}")),
        })
    }
}

/// How a connection answers `Finalize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalizeReply {
    /// A `from_finalize: true` final of the audio buffered since the last final, after the reply latency;
    /// nothing when no audio is buffered (as documented).
    Immediate,
    /// The same final, computed when the `Finalize` arrives (the words buffered then), sent only after this
    /// extra delay, as Deepgram answers under load. Results of audio sent after the `Finalize` queue behind
    /// it: the service answers in order.
    Late(Duration),
    /// No reply at all, and the buffered words are kept: they come out in the next final once audio
    /// resumes (a final after `endpointing` silence, or the one `CloseStream` produces), as when Deepgram
    /// ignores a `Finalize`.
    Ignored,
}

/// Parses the CLI spelling: `reply`, `late:MS`, `ignore`.
impl FromStr for FinalizeReply {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "reply" => Ok(FinalizeReply::Immediate),
            None if s == "ignore" => Ok(FinalizeReply::Ignored),
            Some(("late", ms)) => ms
                .parse::<u64>()
                .map(|ms| FinalizeReply::Late(Duration::from_millis(ms)))
                .map_err(|_| format!("Finalize mode {s:?} needs a number of ms after 'late:'")),
            _ => Err(format!("unknown Finalize mode {s:?} (reply, late:MS, ignore)")),
        }
    }
}

/// How a connection authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// `Authorization: <scheme> <key>`; the scheme as sent (`Token`, `token`, `Bearer`).
    Header(String),
    /// `Sec-WebSocket-Protocol: token, <key>`.
    Subprotocol,
    /// No credentials at all.
    None,
}

/// A text frame the connection received, with the audio time at which it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedText {
    pub text: String,
    pub audio_time: f64,
}

/// Everything one connection did.
#[derive(Debug, Clone, PartialEq)]
pub struct DeepgramConnectionLog {
    /// 1-based, in order of arrival (the default transcript names it).
    pub number: u64,
    pub request_id: String,
    /// The raw query pairs.
    pub query: Vec<(String, String)>,
    pub options: ListenOptions,
    pub auth: AuthMethod,
    /// `Some(status)` when the upgrade was refused.
    pub refused: Option<u16>,
    pub audio_bytes: u64,
    pub audio_frames: u64,
    /// Binary frames that held a JSON control message (a KeepAlive sent as binary): not audio, no keepalive.
    pub binary_control_frames: Vec<String>,
    pub texts_received: Vec<ReceivedText>,
    /// Every text frame sent, in order.
    pub sent: Vec<String>,
    pub close_sent: Option<(u16, String)>,
    /// Ended without a Close frame (dropped or reset on purpose).
    pub dropped: bool,
    pub close_received: Option<(u16, String)>,
    pub open: bool,
}

/// Settings a connection takes when it opens.
#[derive(Debug, Clone)]
pub struct DeepgramSettings {
    pub api_keys: Vec<String>,
    pub idle_timeout: Duration,
    pub finalize: FinalizeReply,
    pub reply_latency: Duration,
}

#[derive(Debug)]
pub(crate) struct DeepgramState {
    pub settings: DeepgramSettings,
    pub scripts: VecDeque<Vec<String>>,
    pub faults: VecDeque<DeepgramFault>,
    pub connections: Log<DeepgramConnectionLog>,
}

impl Trim for DeepgramConnectionLog {
    fn trim(&mut self, limit: usize) {
        trim_front(&mut self.binary_control_frames, limit);
        trim_front(&mut self.texts_received, limit);
        trim_front(&mut self.sent, limit);
    }
}

/// Handle on the Deepgram emulator (cheap to clone, `Send + Sync`).
#[derive(Debug, Clone)]
pub struct DeepgramControl {
    pub(crate) shared: Shared<DeepgramState>,
}

impl DeepgramControl {
    pub(crate) fn new(opts: &DeepgramOptions) -> Self {
        let settings = DeepgramSettings {
            api_keys: opts.api_keys.clone(),
            idle_timeout: opts.idle_timeout,
            finalize: opts.finalize,
            reply_latency: opts.reply_latency,
        };
        DeepgramControl {
            shared: Shared::new(DeepgramState {
                settings,
                scripts: VecDeque::new(),
                faults: opts.faults.clone().into(),
                connections: Log::default(),
            }),
        }
    }

    /// The utterances the next connection will hear, in order (then the default transcript).
    pub fn push_script(&self, utterances: Vec<String>) {
        self.shared.update(|s| s.scripts.push_back(utterances));
    }

    /// Silence window after which a connection is closed with 1011 NET-0001 (default 10 s).
    pub fn set_idle_timeout(&self, timeout: Duration) {
        self.shared.update(|s| s.settings.idle_timeout = timeout);
    }

    /// `false`: `Finalize` gets no reply at all (a real, documented possibility) and its words are kept
    /// (`FinalizeReply::Ignored`); `true`: the immediate reply (the default).
    pub fn set_finalize_reply(&self, reply: bool) {
        self.set_finalize(if reply { FinalizeReply::Immediate } else { FinalizeReply::Ignored });
    }

    /// How the next connections answer `Finalize`: at once, late, or not at all.
    pub fn set_finalize(&self, mode: FinalizeReply) {
        self.shared.update(|s| s.settings.finalize = mode);
    }

    /// Delay of each result after the audio that caused it.
    pub fn set_reply_latency(&self, latency: Duration) {
        self.shared.update(|s| s.settings.reply_latency = latency);
    }

    /// A fault for the next connection (one fault per connection, in order).
    pub fn push_fault(&self, fault: DeepgramFault) {
        self.shared.update(|s| s.faults.push_back(fault));
    }

    /// Every connection so far, refused ones included.
    pub fn connections(&self) -> Vec<DeepgramConnectionLog> {
        self.shared.read(|s| s.connections.entries().to_vec())
    }

    /// Waits until `pred` holds for the connection log, or `timeout` passes; true if it held.
    pub async fn wait_until(&self, pred: impl Fn(&[DeepgramConnectionLog]) -> bool, timeout: Duration) -> bool {
        self.shared.wait_until(|s| pred(s.connections.entries()), timeout).await
    }

    /// Keep only about the last `limit` connections, and of each the last `limit` frames (`None`: all).
    pub fn set_log_limit(&self, limit: Option<crate::emulators::common::log::LogLimit>) {
        self.shared.update(|s| s.connections.set_limit(limit));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_fault_spellings_parse() {
        assert_eq!("refuse:503".parse(), Ok(DeepgramFault::RefuseUpgrade(503)));
        assert_eq!("drop:1500".parse(), Ok(DeepgramFault::DropAfterAudio(Duration::from_millis(1500))));
        assert_eq!("reset:900".parse(), Ok(DeepgramFault::ResetAfterAudio(Duration::from_millis(900))));
        assert_eq!("empty-finals".parse(), Ok(DeepgramFault::EmptyFinals));
        assert!("close1011".parse::<DeepgramFault>().is_err());
        assert!("nonsense".parse::<DeepgramFault>().is_err());
    }

    #[test]
    fn cli_finalize_modes_parse() {
        assert_eq!("reply".parse(), Ok(FinalizeReply::Immediate));
        assert_eq!("late:2500".parse(), Ok(FinalizeReply::Late(Duration::from_millis(2500))));
        assert_eq!("ignore".parse(), Ok(FinalizeReply::Ignored));
        assert!("late".parse::<FinalizeReply>().is_err());
        assert!("late:soon".parse::<FinalizeReply>().is_err());
    }
}
