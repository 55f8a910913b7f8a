//! The phone transport: a Twilio bidirectional Media Stream at `/ws/twilio` (set up by the `POST
//! /twilio/voice` webhook's TwiML), as a [`Wire`] over the same conversation as the browser's. It translates
//! and nothing more:
//!
//! - `start` says who the session is (the call, the caller, the agent: the TwiML `<Parameter>`s the webhook
//!   wrote, echoed by Twilio); the session opens then (see [`Wire::open`]), not at the upgrade.
//! - `media` frames (base64 μ-law, 8 kHz) are microphone audio, given to speech recognition as they are.
//! - Reply audio (`ulaw_8000` from the TTS) goes out in 20 ms `media` frames, each chunk followed by a `mark`
//!   named after the turn and the milliseconds sent so far (`marks`); Twilio echoes a mark when the caller has
//!   heard everything before it, which becomes `Input::Played`. On a barge-in (`Event::Interrupt`) a `clear`
//!   drops the queued audio; Twilio then echoes the pending marks at once. Those marks name audio the caller
//!   never heard: the first one back is taken as the listener's last word on the turn, at the position of the
//!   last mark echoed before the `clear` (what was really played; see [`marks::Heard`] for a mark that
//!   crosses the `clear` on the wire).
//! - `dtmf` digits go to the conversation, which turns them into a user turn after a pause.
//! - `stop` ends the session; the agent's goodbye (`Event::End`) is followed by a `GOODBYE` mark and the
//!   stream is closed when it comes back (the call then hangs up: no TwiML follows `<Connect>`).
//!
//! Events a phone cannot show (transcripts, latency, saved messages, statuses) are logged, not sent.

pub mod call;
pub mod marks;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web_actors::ws;
use bytes::Bytes;

use super::client_socket::{Wire, WireContext, close};
use super::conversation::{EndReason, Event, Input};
use super::settings::{AgentSettings, SessionParams};
use crate::db::{PhoneCall, TurnId};
use crate::providers::twilio::stream::{FromTwilio, Start, ToTwilio, decode_payload};

/// 20 ms of 8 kHz μ-law: the frame size Twilio streams in.
pub const FRAME_BYTES: usize = 160;
/// Reply audio between two marks: 200 ms of μ-law.
pub const MARK_EVERY_BYTES: usize = 1600;

/// The most a goodbye may take to play out before the stream is closed anyway.
const GOODBYE_AT_MOST: Duration = Duration::from_secs(15);

/// The stream parameters the webhook writes into its TwiML (and Twilio echoes in `start`).
pub mod parameter {
    pub const AGENT: &str = "agent";
    pub const FROM: &str = "from";
    pub const TO: &str = "to";
    pub const CALL_SID: &str = "callSid";
    pub const USER_ID: &str = "userId";
    /// parley's own seal over the others (see [`super::seal`]).
    pub const SEAL: &str = "parleySeal";
}

/// Who the call is, learnt from `start`, waiting for the session to take it.
#[derive(Debug)]
struct Opening {
    agent: Option<String>,
    user_id: crate::db::UserId,
    call: PhoneCall,
}

/// The Twilio Media Streams protocol of one call.
#[derive(Debug)]
pub struct TwilioWire {
    agents: Arc<AgentSettings>,
    /// `TWILIO_AUTH_TOKEN`: keys the seal on the stream parameters.
    token: String,
    max_text_frame_bytes: usize,
    /// Known from `start`; every message to Twilio carries it.
    stream_sid: Option<String>,
    opening: Option<Opening>,
    /// The turn whose audio is going out and how many bytes of it were sent.
    sending: Option<(TurnId, u64)>,
    /// The goodbye's mark was sent: the stream closes when it comes back.
    saying_goodbye: bool,
    /// What the caller heard of each turn, from the marks echoed (and the clears sent).
    heard: marks::Heard,
}

impl TwilioWire {
    pub fn new(agents: Arc<AgentSettings>, token: String, max_text_frame_bytes: usize) -> TwilioWire {
        TwilioWire {
            agents,
            token,
            max_text_frame_bytes,
            stream_sid: None,
            opening: None,
            sending: None,
            saying_goodbye: false,
            heard: marks::Heard::default(),
        }
    }

    fn write(&self, message: &ToTwilio, ctx: &mut WireContext<Self>) -> usize {
        let json = message.to_json();
        let n = json.len();
        ctx.text(json);
        n
    }

    fn on_start(&mut self, stream_sid: String, start: Start, ctx: &mut WireContext<Self>) {
        if self.stream_sid.is_some() {
            log::info!("twilio stream {stream_sid}: a second start message was ignored");
            return;
        }
        if !start.media_format.is_mulaw_8k_mono() {
            log::warn!("twilio stream {stream_sid}: unsupported media format {:?}", start.media_format);
            return close(ctx, ws::CloseCode::Unsupported, "expected audio/x-mulaw at 8000 Hz, mono");
        }
        let p = &start.custom_parameters;
        if !sealed(&self.token, p) {
            log::warn!("twilio stream {stream_sid}: start parameters without a valid seal; refused");
            return close(ctx, ws::CloseCode::Policy, "call parameters not written by this server");
        }
        let get = |name: &str| p.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let from = get(parameter::FROM).unwrap_or_default().to_string();
        let to = get(parameter::TO).unwrap_or_default().to_string();
        let call_sid = get(parameter::CALL_SID).unwrap_or(&start.call_sid).to_string();
        let opening = Opening {
            agent: get(parameter::AGENT).map(str::to_string),
            user_id: call::user_id(get(parameter::USER_ID), &from, &call_sid),
            call: PhoneCall { call_sid, from, to },
        };
        log::info!(
            "twilio stream {stream_sid}: call {} from {} to {} for {}",
            opening.call.call_sid,
            opening.call.from,
            opening.call.to,
            opening.user_id
        );
        self.stream_sid = Some(stream_sid);
        self.opening = Some(opening);
    }

    /// The agent of a call: the stream's `agent` parameter, else the called number's, else the default.
    fn agent_for(&self, named: Option<&str>, to: &str) -> Arc<crate::session::settings::SessionSettings> {
        match named.and_then(|name| self.agents.get(name)) {
            Some(settings) => settings.clone(),
            None => call::agent_for_number(&self.agents, to).clone(),
        }
    }

    /// Reply audio: 20 ms frames, with a mark saying how much of the turn has been sent every
    /// [`MARK_EVERY_BYTES`] and at the end of the chunk (so the heard position is known to within 200 ms).
    fn audio(&mut self, turn_id: TurnId, bytes: &Bytes, ctx: &mut WireContext<Self>) -> usize {
        let Some(sid) = self.stream_sid.clone() else {
            return 0;
        };
        let mut sent = match self.sending {
            Some((turn, sent)) if turn == turn_id => sent,
            _ => 0,
        };
        let mut n = 0;
        let mut since_mark = 0;
        for frame in bytes.chunks(FRAME_BYTES) {
            n += self.write(&ToTwilio::media(&sid, frame), ctx);
            sent += frame.len() as u64;
            since_mark += frame.len();
            if since_mark >= MARK_EVERY_BYTES {
                n += self.write(&ToTwilio::mark(&sid, marks::name(turn_id, marks::mulaw_ms(sent))), ctx);
                since_mark = 0;
            }
        }
        self.sending = Some((turn_id, sent));
        if since_mark > 0 {
            n += self.write(&ToTwilio::mark(&sid, marks::name(turn_id, marks::mulaw_ms(sent))), ctx);
        }
        n
    }

    fn on_mark(&mut self, name: &str, ctx: &mut WireContext<Self>) -> Option<Input> {
        if name == marks::GOODBYE && self.saying_goodbye {
            close(ctx, ws::CloseCode::Normal, "call ended by the agent");
            return None;
        }
        match marks::parse(name) {
            Some((turn_id, ms)) => Some(Input::Played { turn_id, ms: self.heard.echoed(turn_id, ms) }),
            None => {
                log::debug!("twilio stream: unknown mark {name:?} ignored");
                None
            }
        }
    }
}

impl Wire for TwilioWire {
    fn text(&mut self, text: &str, ctx: &mut WireContext<Self>) -> Option<Input> {
        if text.len() > self.max_text_frame_bytes {
            log::info!("twilio stream: a message of {} bytes is over the limit; ignored", text.len());
            return None;
        }
        let message = match serde_json::from_str::<FromTwilio>(text) {
            Ok(m) => m,
            Err(e) => {
                log::info!("twilio stream: unreadable message ignored: {e}");
                return None;
            }
        };
        let started = self.stream_sid.is_some();
        match message {
            FromTwilio::Connected { .. } => None,
            FromTwilio::Start { stream_sid, start } => {
                self.on_start(stream_sid, start, ctx);
                None
            }
            FromTwilio::Media { media, .. } if started => {
                if media.track.as_deref().is_some_and(|t| t != "inbound" && t != "inbound_track") {
                    return None;
                }
                match decode_payload(&media.payload) {
                    Some(audio) if !audio.is_empty() => Some(Input::Audio(Bytes::from(audio))),
                    Some(_) => None,
                    None => {
                        log::info!("twilio stream: a media payload is not base64; dropped");
                        None
                    }
                }
            }
            FromTwilio::Dtmf { dtmf, .. } if started => {
                let mut digits = dtmf.digit.chars();
                match (digits.next(), digits.next()) {
                    (Some(d), None) if d.is_ascii_digit() || matches!(d, '*' | '#' | 'A'..='D') => Some(Input::Dtmf(d)),
                    _ => None,
                }
            }
            FromTwilio::Mark { mark, .. } if started => self.on_mark(&mark.name, ctx),
            FromTwilio::Stop { .. } => {
                close(ctx, ws::CloseCode::Normal, "call ended");
                None
            }
            FromTwilio::Media { .. } | FromTwilio::Dtmf { .. } | FromTwilio::Mark { .. } => {
                log::debug!("twilio stream: a message before start ignored");
                None
            }
        }
    }

    fn binary(&mut self, _bytes: Bytes, _ctx: &mut WireContext<Self>) -> Option<Input> {
        log::debug!("twilio stream: binary frame ignored (Twilio sends JSON text)");
        None
    }

    fn continuation(&mut self, _ctx: &mut WireContext<Self>) -> Option<Input> {
        None
    }

    fn send(&mut self, event: Event, ctx: &mut WireContext<Self>) -> usize {
        let sid = self.stream_sid.clone().unwrap_or_default();
        match event {
            Event::Audio { turn_id, bytes } => self.audio(turn_id, &bytes, ctx),
            Event::AudioStart { turn_id } => {
                self.sending = Some((turn_id, 0));
                0
            }
            Event::Interrupt { turn_id } => {
                log::debug!("twilio stream {sid}: turn {turn_id} interrupted; clearing the caller's queue");
                self.heard.clear(turn_id);
                self.write(&ToTwilio::Clear { stream_sid: sid }, ctx)
            }
            Event::End(EndReason::AgentEnded) => {
                self.saying_goodbye = true;
                self.write(&ToTwilio::mark(&sid, marks::GOODBYE), ctx)
            }
            Event::Error { code, message, .. } => {
                log::info!("twilio stream {sid}: {code}: {message}");
                0
            }
            Event::ToolCall { name, .. } => {
                // A phone has no client to run it; the LLM worker's timeout answers it.
                log::warn!("twilio stream {sid}: client-side tool {name:?} cannot run on a phone call");
                0
            }
            _ => 0,
        }
    }

    fn overflow_reason(&self) -> String {
        format!("frame larger than {} bytes", self.max_text_frame_bytes * 4)
    }

    fn open(&mut self, params: &mut SessionParams) -> bool {
        let Some(opening) = self.opening.take() else {
            return false;
        };
        params.settings = self.agent_for(opening.agent.as_deref(), &opening.call.to);
        params.user_id = opening.user_id;
        params.call = Some(opening.call);
        true
    }

    fn close_after_goodbye(&self) -> Option<Duration> {
        Some(GOODBYE_AT_MOST)
    }
}

/// The stream parameters the webhook writes for a call, sealed with `token`.
pub fn stream_parameters(
    token: &str,
    call_sid: &str,
    from: &str,
    to: &str,
    agent: &str,
) -> BTreeMap<&'static str, String> {
    let mut p = BTreeMap::from([
        (parameter::CALL_SID, call_sid.to_string()),
        (parameter::FROM, from.to_string()),
        (parameter::TO, to.to_string()),
        (parameter::AGENT, agent.to_string()),
    ]);
    let fields: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let seal = seal(token, &fields);
    p.insert(parameter::SEAL, seal);
    p
}

/// parley's seal over stream parameters: HMAC-SHA256 keyed with the Auth Token over each `name=value`, sorted
/// by name. The handshake's `X-Twilio-Signature` covers only the stream URL (the same for every call, so it
/// could be replayed with other parameters); the seal binds who the call is to what the signed webhook said.
pub fn seal(token: &str, fields: &[(&str, &str)]) -> String {
    use base64::Engine as _;
    let tag = ring::hmac::sign(&seal_key(token), &sealed_message(fields));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
}

fn seal_key(token: &str) -> ring::hmac::Key {
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, token.as_bytes())
}

/// What the seal covers: every field but the seal, sorted, each name and value length-prefixed.
fn sealed_message(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut sorted: Vec<&(&str, &str)> = fields.iter().filter(|(k, _)| *k != parameter::SEAL).collect();
    sorted.sort();
    let mut message = b"parley.twilio.v1\n".to_vec();
    for (k, v) in sorted {
        message.extend_from_slice(format!("{}:{k}\n{}:{v}\n", k.len(), v.len()).as_bytes());
    }
    message
}

/// True when `params` carry a valid seal (checked by ring in constant time).
fn sealed(token: &str, params: &BTreeMap<String, String>) -> bool {
    use base64::Engine as _;
    let Some(tag) =
        params.get(parameter::SEAL).and_then(|t| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t).ok())
    else {
        return false;
    };
    let fields: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    ring::hmac::verify(&seal_key(token), &sealed_message(&fields), &tag).is_ok()
}

#[cfg(test)]
mod seal_tests {
    use super::*;

    fn echoed(p: &BTreeMap<&'static str, String>) -> BTreeMap<String, String> {
        p.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn only_the_parameters_the_webhook_wrote_carry_a_valid_seal() {
        let p = stream_parameters("token", "CA1", "+15550100001", "+15550100002", "support");
        assert!(sealed("token", &echoed(&p)));
        assert!(!sealed("another token", &echoed(&p)), "keyed with the Auth Token");
        let mut forged = echoed(&p);
        forged.insert("from".into(), "+15559999999".into());
        assert!(!sealed("token", &forged), "another caller");
        let mut added = echoed(&p);
        added.insert("userId".into(), "alice".into());
        assert!(!sealed("token", &added), "a parameter the webhook did not write");
        let mut unsealed = echoed(&p);
        unsealed.remove("parleySeal");
        assert!(!sealed("token", &unsealed));
    }
}
