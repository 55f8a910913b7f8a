//! The names of the marks parley puts after each chunk of a reply: `t<turn>:<ms>` says that the caller has
//! heard `ms` milliseconds of turn `turn`'s audio once Twilio echoes it; `end` follows the agent's goodbye.

use crate::db::TurnId;

/// The mark after the agent's goodbye: when it comes back, the call is hung up.
pub const GOODBYE: &str = "end";

/// `t3:1240`.
pub fn name(turn_id: TurnId, ms: u64) -> String {
    format!("t{turn_id}:{ms}")
}

/// The turn and position a mark stands for; `None` for any other name.
pub fn parse(name: &str) -> Option<(TurnId, u64)> {
    let (turn, ms) = name.strip_prefix('t')?.split_once(':')?;
    Some((turn.parse().ok()?, ms.parse().ok()?))
}

/// Milliseconds of 8 kHz μ-law in `bytes` (8 bytes a millisecond).
pub fn mulaw_ms(bytes: u64) -> u64 {
    bytes / 8
}

/// What the caller heard of each turn, from the marks Twilio echoes. A mark echoed while audio plays says
/// everything before it was heard. A `clear` makes Twilio echo every mark still queued at once: those name
/// audio never played, so once a turn is cleared its marks report the last position heard before.
///
/// A mark Twilio echoed because it was played, but that crossed the `clear` on the wire, cannot be told from
/// one the `clear` returned; it counts as not played. The heard position is then one mark (up to 200 ms)
/// earlier than the last one played, never past what the caller heard.
#[derive(Debug, Default)]
pub struct Heard {
    /// The position of the last mark echoed for a turn before it was cleared.
    last: Option<(TurnId, u64)>,
    /// A turn whose queued audio was cleared.
    cleared: Option<TurnId>,
}

impl Heard {
    /// A `clear` went out for `turn_id`'s audio.
    pub fn clear(&mut self, turn_id: TurnId) {
        self.cleared = Some(turn_id);
    }

    /// The milliseconds of `turn_id` the caller has heard, once its mark at `ms` came back.
    pub fn echoed(&mut self, turn_id: TurnId, ms: u64) -> u64 {
        if self.cleared == Some(turn_id) {
            return self.last.filter(|(t, _)| *t == turn_id).map_or(0, |(_, ms)| ms);
        }
        self.last = Some((turn_id, ms));
        ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_returned_by_a_clear_report_what_was_heard_before_it() {
        let mut h = Heard::default();
        assert_eq!(h.echoed(1, 200), 200);
        assert_eq!(h.echoed(1, 400), 400);
        h.clear(1);
        // The clear returns the marks of audio never played: the caller heard 400 ms.
        assert_eq!(h.echoed(1, 600), 400);
        assert_eq!(h.echoed(1, 800), 400);
        // The next turn is heard as it plays.
        assert_eq!(h.echoed(2, 200), 200);
        h.clear(2);
        assert_eq!(h.echoed(2, 400), 200);
        // A turn cleared before any of it was heard.
        h.clear(3);
        assert_eq!(h.echoed(3, 200), 0);
    }

    #[test]
    fn names_read_back_and_nothing_else_does() {
        assert_eq!(name(3, 1240), "t3:1240");
        assert_eq!(parse(&name(3, 1240)), Some((3, 1240)));
        for other in ["end", "t3", "t:5", "tx:5", "t3:-1", "3:1240", "t3:12:40", ""] {
            assert_eq!(parse(other), None, "{other}");
        }
        assert_eq!(mulaw_ms(160), 20);
    }
}
