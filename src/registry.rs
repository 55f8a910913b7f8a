//! The Registry actor: the one place that knows which voice sessions are live (id, user, when they
//! connected, from where). It feeds the connection metrics, lets the history endpoints tell a live session
//! from a finished one, and on shutdown asks every session to drain.
//!
//! Parent: none (a singleton started by `startup`). Talks to: each session's `ClientSocket`, through a
//! [`WeakRecipient`] so a registration never keeps a dead session alive; entries whose session vanished
//! without unregistering are swept periodically.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::WeakRecipient;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::db::{SessionId, UserId};
use crate::metrics::Metrics;

/// How often entries of sessions that died without unregistering are removed.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// Identifies one registration (one WebSocket connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId(u64);

/// Sent to a live session when the server shuts down: finish within `grace`, then close.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Drain {
    pub grace: Duration,
}

/// What the registry knows about a live session.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveSession {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub connected_at: DateTime<Utc>,
    pub peer: Option<String>,
}

struct Entry {
    info: LiveSession,
    drain: WeakRecipient<Drain>,
}

/// Holds a place for a session about to open (asked before the WebSocket upgrade, so a burst of upgrades
/// cannot get past the limits between the check and the registration); unused places lapse after
/// [`RESERVATION_LIFETIME`].
#[derive(Message)]
#[rtype(result = "Result<Reservation, RegistryFull>")]
pub struct Reserve {
    pub user_id: UserId,
}

/// A place held for one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reservation(u64);

/// Admits a new session into its reserved place (or, without one, unless a limit is reached).
#[derive(Message)]
#[rtype(result = "Result<ConnectionId, RegistryFull>")]
pub struct Register {
    pub info: LiveSession,
    pub drain: WeakRecipient<Drain>,
    pub reservation: Option<Reservation>,
}

/// A session limit was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RegistryFull {
    #[error("the server is at its limit of {0} concurrent sessions")]
    Server(usize),
    #[error("this user already has {0} sessions open, the most allowed")]
    User(usize),
}

/// How long a reserved place waits for its session.
pub const RESERVATION_LIFETIME: Duration = Duration::from_secs(10);

#[derive(Message)]
#[rtype(result = "()")]
pub struct Unregister(pub ConnectionId);

/// Active and total counts.
#[derive(Message)]
#[rtype(result = "Counts")]
pub struct GetCounts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, MessageResponse)]
pub struct Counts {
    pub active: usize,
    pub total: u64,
}

/// Live sessions, optionally only one user's.
#[derive(Message)]
#[rtype(result = "Vec<LiveSession>")]
pub struct ListLive(pub Option<UserId>);

/// Asks every live session to drain; resolves to how many were asked.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct DrainAll {
    pub grace: Duration,
}

/// Resolves once no session is live (immediately if none is).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WaitUntilEmpty;

/// Tracks live sessions.
pub struct Registry {
    live: HashMap<ConnectionId, Entry>,
    /// Places held for sessions being opened: their user and when they lapse.
    reserved: HashMap<Reservation, (UserId, std::time::Instant)>,
    next_id: u64,
    total: u64,
    max_sessions: usize,
    max_per_user: usize,
    metrics: Arc<Metrics>,
    waiting_for_empty: Vec<oneshot::Sender<()>>,
}

impl Registry {
    pub fn new(metrics: Arc<Metrics>, max_sessions: usize, max_per_user: usize) -> Registry {
        Registry {
            live: HashMap::new(),
            reserved: HashMap::new(),
            next_id: 0,
            total: 0,
            max_sessions,
            max_per_user,
            metrics,
            waiting_for_empty: Vec::new(),
        }
    }

    /// Whether one more session of `user` fits, counting places held for sessions being opened.
    fn admit(&mut self, user: &UserId) -> Result<(), RegistryFull> {
        let now = std::time::Instant::now();
        self.reserved.retain(|_, (_, lapses)| *lapses > now);
        if self.live.len() + self.reserved.len() >= self.max_sessions {
            return Err(RegistryFull::Server(self.max_sessions));
        }
        let of_user = self.live.values().filter(|e| e.info.user_id == *user).count()
            + self.reserved.values().filter(|(u, _)| u == user).count();
        if of_user >= self.max_per_user {
            return Err(RegistryFull::User(self.max_per_user));
        }
        Ok(())
    }

    fn removed(&mut self) {
        self.metrics.connections_active.set(self.live.len() as i64);
        if self.live.is_empty() {
            for tx in self.waiting_for_empty.drain(..) {
                let _ = tx.send(());
            }
        }
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(SWEEP_INTERVAL, |this, _| {
            let before = this.live.len();
            this.live.retain(|_, e| e.drain.upgrade().is_some());
            if this.live.len() != before {
                log::warn!(
                    "registry: removed {} session(s) that ended without unregistering",
                    before - this.live.len()
                );
                this.removed();
            }
        });
    }
}

impl Handler<Reserve> for Registry {
    type Result = Result<Reservation, RegistryFull>;

    fn handle(&mut self, msg: Reserve, _: &mut Context<Self>) -> Self::Result {
        self.admit(&msg.user_id)?;
        self.next_id += 1;
        let reservation = Reservation(self.next_id);
        let lapses = std::time::Instant::now() + RESERVATION_LIFETIME;
        self.reserved.insert(reservation, (msg.user_id, lapses));
        Ok(reservation)
    }
}

impl Handler<Register> for Registry {
    type Result = Result<ConnectionId, RegistryFull>;

    fn handle(&mut self, msg: Register, _: &mut Context<Self>) -> Self::Result {
        let held = msg.reservation.and_then(|r| self.reserved.remove(&r)).is_some();
        if !held {
            self.admit(&msg.info.user_id)?;
        }
        self.next_id += 1;
        self.total += 1;
        let id = ConnectionId(self.next_id);
        self.live.insert(id, Entry { info: msg.info, drain: msg.drain });
        self.metrics.connections_total.inc();
        self.metrics.connections_active.set(self.live.len() as i64);
        Ok(id)
    }
}

impl Handler<Unregister> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Unregister, _: &mut Context<Self>) {
        if self.live.remove(&msg.0).is_some() {
            self.removed();
        }
    }
}

impl Handler<GetCounts> for Registry {
    type Result = Counts;

    fn handle(&mut self, _: GetCounts, _: &mut Context<Self>) -> Counts {
        Counts { active: self.live.len(), total: self.total }
    }
}

impl Handler<ListLive> for Registry {
    type Result = MessageResult<ListLive>;

    fn handle(&mut self, msg: ListLive, _: &mut Context<Self>) -> Self::Result {
        let mut out: Vec<LiveSession> = self
            .live
            .values()
            .filter(|e| msg.0.as_ref().is_none_or(|u| *u == e.info.user_id))
            .map(|e| e.info.clone())
            .collect();
        out.sort_by_key(|s| s.connected_at);
        MessageResult(out)
    }
}

impl Handler<DrainAll> for Registry {
    type Result = usize;

    fn handle(&mut self, msg: DrainAll, _: &mut Context<Self>) -> usize {
        let mut asked = 0;
        for entry in self.live.values() {
            if let Some(r) = entry.drain.upgrade() {
                r.do_send(Drain { grace: msg.grace });
                asked += 1;
            }
        }
        asked
    }
}

impl Handler<WaitUntilEmpty> for Registry {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: WaitUntilEmpty, _: &mut Context<Self>) -> Self::Result {
        if self.live.is_empty() {
            return Box::pin(async {});
        }
        let (tx, rx) = oneshot::channel();
        self.waiting_for_empty.push(tx);
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dummy(Option<oneshot::Sender<Duration>>);
    impl Actor for Dummy {
        type Context = Context<Self>;
    }
    impl Handler<Drain> for Dummy {
        type Result = ();
        fn handle(&mut self, msg: Drain, _: &mut Context<Self>) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(msg.grace);
            }
        }
    }

    fn info(user: &str) -> LiveSession {
        LiveSession {
            session_id: SessionId::generate(),
            user_id: user.parse().unwrap(),
            connected_at: Utc::now(),
            peer: None,
        }
    }

    #[actix::test]
    async fn registrations_are_counted_limited_listed_and_drained() {
        let metrics = Arc::new(Metrics::new().unwrap());
        let registry = Registry::new(metrics.clone(), 2, 10).start();
        let (tx, rx) = oneshot::channel();
        let alice = Dummy(Some(tx)).start();
        let bob = Dummy(None).start();
        let a = registry
            .send(Register { info: info("alice"), drain: alice.clone().recipient().downgrade(), reservation: None })
            .await
            .unwrap()
            .unwrap();
        registry
            .send(Register { info: info("bob"), drain: bob.clone().recipient().downgrade(), reservation: None })
            .await
            .unwrap()
            .unwrap();
        let third = registry
            .send(Register { info: info("carol"), drain: bob.clone().recipient().downgrade(), reservation: None })
            .await
            .unwrap();
        assert!(third.is_err(), "the limit of 2 sessions holds");
        assert_eq!(registry.send(GetCounts).await.unwrap(), Counts { active: 2, total: 2 });
        assert_eq!(metrics.connections_active.get(), 2);
        let only_alice = registry.send(ListLive(Some("alice".parse().unwrap()))).await.unwrap();
        assert_eq!(only_alice.len(), 1);

        assert_eq!(registry.send(DrainAll { grace: Duration::from_secs(3) }).await.unwrap(), 2);
        assert_eq!(rx.await.unwrap(), Duration::from_secs(3));

        registry.do_send(Unregister(a));
        assert_eq!(registry.send(GetCounts).await.unwrap(), Counts { active: 1, total: 2 });
        assert_eq!(metrics.connections_active.get(), 1);
    }

    #[actix::test]
    async fn wait_until_empty_resolves_when_the_last_session_leaves() {
        let registry = Registry::new(Arc::new(Metrics::new().unwrap()), 10, 10).start();
        registry.send(WaitUntilEmpty).await.unwrap();
        let d = Dummy(None).start();
        let id = registry
            .send(Register { info: info("u"), drain: d.recipient().downgrade(), reservation: None })
            .await
            .unwrap()
            .unwrap();
        let waiting = registry.send(WaitUntilEmpty);
        registry.do_send(Unregister(id));
        tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
    }

    #[actix::test]
    async fn reservations_count_against_both_limits_and_a_user_cannot_take_every_place() {
        let registry = Registry::new(Arc::new(Metrics::new().unwrap()), 3, 2).start();
        let user = |u: &str| Reserve { user_id: u.parse().unwrap() };
        let a1 = registry.send(user("ann")).await.unwrap().unwrap();
        registry.send(user("ann")).await.unwrap().unwrap();
        assert_eq!(registry.send(user("ann")).await.unwrap(), Err(RegistryFull::User(2)));
        registry.send(user("ben")).await.unwrap().unwrap();
        assert_eq!(registry.send(user("cat")).await.unwrap(), Err(RegistryFull::Server(3)), "places held count");
        let d = Dummy(None).start();
        let r = Register { info: info("ann"), drain: d.clone().recipient().downgrade(), reservation: Some(a1) };
        registry.send(r).await.unwrap().expect("its place was held");
        assert_eq!(registry.send(GetCounts).await.unwrap().active, 1);
    }
}
