//! A small circuit breaker per LLM provider of an agent: after [`TRIP_AFTER`] failures in a row a provider is
//! put at the back of the order for [`COOL_DOWN`], so a provider that is down costs one failed attempt per
//! cool-down instead of one per turn. After the cool-down it is tried in its place again; one success closes it.
//! Shared by every session of the agent.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures in a row that open a provider's breaker.
pub const TRIP_AFTER: u32 = 3;
/// How long an open provider is tried last.
pub const COOL_DOWN: Duration = Duration::from_secs(30);

#[derive(Debug, Default, Clone, Copy)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
}

/// The breakers of one agent's providers, by index.
#[derive(Debug, Default)]
pub struct Breakers {
    states: Mutex<Vec<State>>,
}

impl Breakers {
    fn with<T>(&self, i: usize, f: impl FnOnce(&mut State) -> T) -> T {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        if states.len() <= i {
            states.resize(i + 1, State::default());
        }
        f(&mut states[i])
    }

    /// The order to try `n` providers in at `now`: those closed in their configured order, then the open ones.
    pub fn order(&self, n: usize, now: Instant) -> Vec<usize> {
        let open: Vec<bool> = (0..n).map(|i| self.with(i, |s| s.open_until.is_some_and(|t| now < t))).collect();
        let mut order: Vec<usize> = (0..n).filter(|&i| !open[i]).collect();
        order.extend((0..n).filter(|&i| open[i]));
        order
    }

    /// Provider `i` answered.
    pub fn success(&self, i: usize) {
        self.with(i, |s| *s = State::default());
    }

    /// Provider `i` failed at `now`; true when this opened its breaker.
    pub fn failure(&self, i: usize, now: Instant) -> bool {
        self.with(i, |s| {
            s.failures += 1;
            if s.failures >= TRIP_AFTER && s.open_until.is_none_or(|t| t <= now) {
                s.open_until = Some(now + COOL_DOWN);
                return true;
            }
            false
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_failing_three_times_goes_last_until_its_cool_down_ends() {
        let b = Breakers::default();
        let t = Instant::now();
        assert_eq!(b.order(2, t), [0, 1]);
        assert!(!b.failure(0, t));
        assert!(!b.failure(0, t));
        assert!(b.failure(0, t));
        assert_eq!(b.order(2, t), [1, 0]);
        assert_eq!(b.order(2, t + COOL_DOWN), [0, 1]);
        b.success(0);
        assert_eq!(b.order(2, t + Duration::from_secs(1)), [0, 1]);
    }
}
