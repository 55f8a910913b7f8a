//! [`Liveness`]: whether the client of a session is still there, still reading, and still using it, decided
//! once a second from plain facts (frames seen, bytes sent, pongs back), so memory per session stays bounded
//! whatever the client does.
//!
//! - **Reading.** Every ping carries a sequence number (masked with a per-session secret, so a client cannot
//!   forge the pong of a ping it has not read: a pong claiming sequence 2^64-1 would otherwise confirm
//!   everything, and a client that never reads could make parley hold its output without limit); its pong says
//!   that everything sent before it was read.
//!   While output is waiting to be confirmed a probe goes out every second (otherwise every heartbeat). More
//!   than `max_unread` bytes unconfirmed, or a probe unanswered for `write_timeout`, ends the session (1008): a
//!   client that sends but never reads cannot make parley hold its output.
//! - **There.** No frame at all (not even a pong) for `client_timeout`: the session ends (1001).
//! - **Used.** No audio and no message for `idle_timeout`, or a session older than `max_session`: it ends, with
//!   a `status` saying why, then a close frame.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How often [`Liveness::tick`] runs.
pub const TICK: Duration = Duration::from_secs(1);
/// A ping goes out at least this often.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// No frame at all from the client for this long: it is gone.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

pub use crate::session::settings::LivenessLimits;

/// Why a session is ended by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The client stopped reading (1008).
    NotReading(String),
    /// The client stopped answering at all (1001).
    Silent,
    /// Nothing said for the idle timeout (1000), with the status to show.
    Idle(Duration),
    /// The session reached its longest allowed duration (1001).
    TooLong(Duration),
}

/// What a tick asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a ping with this payload.
    Ping(Vec<u8>),
    End(Ending),
}

/// The liveness of one client.
#[derive(Debug)]
pub struct Liveness {
    limits: LivenessLimits,
    started: Instant,
    last_frame: Instant,
    last_activity: Instant,
    /// Bytes put on the wire, and how many of them a pong has confirmed read.
    sent: u64,
    confirmed: u64,
    /// Probes not yet answered: (sequence, when sent, bytes sent before it).
    probes: VecDeque<(u64, Instant, u64)>,
    next_seq: u64,
    /// XORed into every probe's sequence number on the wire: a pong counts only if it echoes a real probe.
    mask: u64,
    last_probe: Instant,
}

impl Liveness {
    pub fn new(limits: LivenessLimits, now: Instant) -> Liveness {
        Liveness {
            limits,
            started: now,
            last_frame: now,
            last_activity: now,
            sent: 0,
            confirmed: 0,
            probes: VecDeque::new(),
            next_seq: 1,
            mask: uuid::Uuid::new_v4().as_u64_pair().0,
            last_probe: now,
        }
    }

    /// Any frame from the client.
    pub fn frame(&mut self, now: Instant) {
        self.last_frame = now;
    }

    /// Audio or a message: the client is using the session.
    pub fn activity(&mut self, now: Instant) {
        self.last_activity = now;
    }

    /// Bytes were put on the wire.
    pub fn sent(&mut self, bytes: usize) {
        self.sent += bytes as u64;
    }

    /// A pong: its probe, and everything sent before it, was read.
    pub fn pong(&mut self, payload: &[u8]) {
        let seq = match <[u8; 8]>::try_from(payload).map(|p| u64::from_be_bytes(p) ^ self.mask) {
            Ok(seq) if seq < self.next_seq => seq,
            // A pong to someone else's ping, unsolicited or forged: it proves presence only.
            _ => return,
        };
        while let Some(&(s, _, bytes)) = self.probes.front() {
            if s > seq {
                break;
            }
            self.confirmed = self.confirmed.max(bytes);
            self.probes.pop_front();
        }
    }

    /// Bytes sent and not yet confirmed read.
    pub fn unread(&self) -> u64 {
        self.sent.saturating_sub(self.confirmed)
    }

    /// What to do now.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let since = |t: Instant| now.saturating_duration_since(t);
        let l = self.limits;
        if self.unread() > l.max_unread {
            let why = format!("the client is not reading (over {} bytes waiting for it)", l.max_unread);
            return vec![Action::End(Ending::NotReading(why))];
        }
        if let Some(&(_, at, bytes)) = self.probes.front()
            && bytes > self.confirmed
            && since(at) > l.write_timeout
        {
            let why = format!("the client has not read for {} s", l.write_timeout.as_secs());
            return vec![Action::End(Ending::NotReading(why))];
        }
        if since(self.last_frame) > CLIENT_TIMEOUT {
            return vec![Action::End(Ending::Silent)];
        }
        if since(self.started) > l.max_session {
            return vec![Action::End(Ending::TooLong(l.max_session))];
        }
        if since(self.last_activity) > l.idle_timeout {
            return vec![Action::End(Ending::Idle(l.idle_timeout))];
        }
        // A probe each second while output waits to be confirmed, else one each heartbeat.
        let waiting = self.unread() > 0;
        if since(self.last_probe) >= HEARTBEAT || (waiting && since(self.last_probe) >= TICK) {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.last_probe = now;
            self.probes.push_back((seq, now, self.sent));
            // Unanswered probes beyond a minute's worth carry nothing the oldest does not.
            while self.probes.len() > 64 {
                self.probes.pop_back();
            }
            return vec![Action::Ping((seq ^ self.mask).to_be_bytes().to_vec())];
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LivenessLimits {
        LivenessLimits {
            write_timeout: Duration::from_secs(20),
            max_unread: 2 << 20,
            idle_timeout: Duration::from_secs(300),
            max_session: Duration::from_secs(4 * 3600),
        }
    }

    fn at(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    fn ping(actions: &[Action]) -> Vec<u8> {
        match actions {
            [Action::Ping(p)] => p.clone(),
            other => panic!("expected a ping, got {other:?}"),
        }
    }

    #[test]
    fn a_reading_client_confirms_what_it_read_and_stays() {
        let t0 = Instant::now();
        let mut l = Liveness::new(limits(), t0);
        l.sent(100_000);
        let p = ping(&l.tick(at(t0, 1)));
        l.sent(50_000);
        l.frame(at(t0, 1));
        l.pong(&p);
        assert_eq!(l.unread(), 50_000, "only what was sent before the probe is confirmed");
        for s in 2..120 {
            l.frame(at(t0, s));
            l.activity(at(t0, s));
            for a in l.tick(at(t0, s)) {
                match a {
                    Action::Ping(p) => l.pong(&p),
                    Action::End(e) => panic!("ended at {s}: {e:?}"),
                }
            }
        }
        assert_eq!(l.unread(), 0);
    }

    #[test]
    fn a_client_that_sends_but_never_reads_is_ended_by_bytes_or_by_time() {
        let t0 = Instant::now();
        let mut l = Liveness::new(limits(), t0);
        l.sent(1000);
        l.tick(at(t0, 1));
        for s in 2..=21 {
            l.frame(at(t0, s)); // it keeps sending audio
            l.activity(at(t0, s));
            assert!(!matches!(l.tick(at(t0, s)).as_slice(), [Action::End(_)]), "{s}");
        }
        assert!(matches!(l.tick(at(t0, 22)).as_slice(), [Action::End(Ending::NotReading(_))]));

        let mut flood = Liveness::new(limits(), t0);
        flood.sent((2 << 20) + 1);
        assert!(matches!(flood.tick(at(t0, 1)).as_slice(), [Action::End(Ending::NotReading(_))]));
    }

    #[test]
    fn silence_idleness_and_age_end_a_session() {
        let t0 = Instant::now();
        let mut silent = Liveness::new(limits(), t0);
        assert!(matches!(silent.tick(at(t0, 31)).as_slice(), [Action::End(Ending::Silent)]));
        let mut idle = Liveness::new(limits(), t0);
        for s in 1..=301 {
            idle.frame(at(t0, s)); // pongs keep coming, nothing is said
            let actions = idle.tick(at(t0, s));
            if let [Action::End(e)] = actions.as_slice() {
                assert_eq!((s, e), (301, &Ending::Idle(Duration::from_secs(300))));
                break;
            }
        }
        let mut old = Liveness::new(LivenessLimits { max_session: Duration::from_secs(60), ..limits() }, t0);
        old.frame(at(t0, 61));
        old.activity(at(t0, 61));
        assert!(matches!(old.tick(at(t0, 61)).as_slice(), [Action::End(Ending::TooLong(_))]));
    }

    #[test]
    fn stray_pongs_prove_presence_and_confirm_nothing() {
        let t0 = Instant::now();
        let mut l = Liveness::new(limits(), t0);
        l.sent(10);
        l.pong(b"");
        l.pong(&[1, 2, 3]);
        assert_eq!(l.unread(), 10);
    }

    #[test]
    fn a_forged_pong_confirms_nothing_and_the_client_is_still_cut() {
        let t0 = Instant::now();
        let mut l = Liveness::new(limits(), t0);
        l.sent(1000);
        let real = ping(&l.tick(at(t0, 1)));
        // Pongs a client could make up without reading its pings: the highest sequence, the first ones.
        for forged in [u64::MAX, 1, 2, 0] {
            l.pong(&forged.to_be_bytes());
        }
        assert_eq!(l.unread(), 1000);
        for s in 2..=21 {
            l.frame(at(t0, s));
            l.activity(at(t0, s));
            l.pong(&u64::MAX.to_be_bytes());
            assert!(!matches!(l.tick(at(t0, s)).as_slice(), [Action::End(_)]), "{s}");
        }
        assert!(matches!(l.tick(at(t0, 22)).as_slice(), [Action::End(Ending::NotReading(_))]));
        // The real pong still counts.
        let mut honest = Liveness::new(limits(), t0);
        honest.sent(1000);
        let p = ping(&honest.tick(at(t0, 1)));
        honest.pong(&p);
        assert_eq!(honest.unread(), 0);
        assert_ne!(real, p, "each session masks its probes with its own secret");
    }
}
