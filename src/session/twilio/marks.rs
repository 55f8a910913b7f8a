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

#[cfg(test)]
mod tests {
    use super::*;

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
