//! Twilio's side of a phone call: the webhook signature ([`signature`]), the TwiML that connects a call to a
//! bidirectional Media Stream ([`twiml`]) and the stream's JSON messages ([`stream`]). Pure code, shared by
//! the phone transport (`crate::session::twilio`), its routes and the fake caller emulator.

pub mod signature;
pub mod stream;
pub mod twiml;
