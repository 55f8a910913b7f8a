//! Who a phone call is, from the stream's `start`: the caller's number normalised, the user id, the agent.

use std::sync::Arc;

use crate::db::UserId;
use crate::session::settings::{AgentSettings, SessionSettings};

/// The agent that answers calls to `to`: the agents file's `[phone_numbers]`, else the default agent.
pub fn agent_for_number<'a>(agents: &'a AgentSettings, to: &str) -> &'a Arc<SessionSettings> {
    e164(to)
        .and_then(|number| agents.phone_numbers.get(&number))
        .and_then(|name| agents.get(name))
        .unwrap_or_else(|| agents.default_agent())
}

/// `+1 (555) 123-4567` → `+15551234567`; `None` when it is not an E.164 number (a withheld caller's
/// `anonymous`, a SIP address).
pub fn e164(raw: &str) -> Option<String> {
    let kept: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.')).collect();
    let digits = kept.strip_prefix('+')?;
    let ok = (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
    ok.then(|| format!("+{digits}"))
}

/// The user a call belongs to: the `userId` stream parameter when the TwiML names one, else the caller's
/// number as `tel:` and its E.164 digits (user ids cannot hold `+`). A caller without a number is
/// `tel:unknown:<CallSid>`, one user per call, so that withheld numbers do not share one user's session
/// limit (or history).
pub fn user_id(named: Option<&str>, from: &str, call_sid: &str) -> UserId {
    if let Some(user) = named.and_then(|u| u.parse::<UserId>().ok()) {
        return user;
    }
    let id = match e164(from) {
        Some(number) => format!("tel:{}", number.trim_start_matches('+')),
        None => format!("tel:unknown:{call_sid}"),
    };
    id.parse().unwrap_or_else(|_| unknown())
}

fn unknown() -> UserId {
    // A constant of allowed characters: always a valid id.
    "tel:unknown".parse().unwrap_or_else(|_| unreachable!("tel:unknown is a valid user id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_normalised_and_anything_else_is_unknown() {
        assert_eq!(e164("+1 (555) 123-4567").as_deref(), Some("+15551234567"));
        assert_eq!(e164("+44.20.7946.0018").as_deref(), Some("+442079460018"));
        for bad in ["anonymous", "15551234567", "+0123", "+1", "+1234567890123456", "sip:a@b"] {
            assert_eq!(e164(bad), None, "{bad}");
        }
        assert_eq!(user_id(None, "+1 555 123 4567", "CA1").as_str(), "tel:15551234567");
        assert_eq!(user_id(None, "anonymous", "CA1").as_str(), "tel:unknown:CA1");
        assert_eq!(user_id(None, "anonymous", "not a sid").as_str(), "tel:unknown");
        assert_eq!(user_id(Some("alice"), "+15551234567", "CA1").as_str(), "alice");
        assert_eq!(user_id(Some("bad id!"), "+15551234567", "CA1").as_str(), "tel:15551234567");
    }
}
