//! [`AppState`]: what request handlers are given, one value per worker thread, the one way handlers reach
//! state (`web::Data<AppState>`). The singletons inside are built once by `startup` ([`Singletons`]) and shared
//! by every worker; only the outbound HTTP client is per worker (awc clients are not `Send`, and one per
//! worker keeps one connection pool per thread).

use std::net::IpAddr;
use std::sync::Arc;

use actix::Addr;

use crate::auth::Auth;
use crate::config::Config;
use crate::db::{InstanceId, Store};
use crate::http_client::HttpClients;
use crate::limits::Limiter;
use crate::metrics::Metrics;
use crate::recording::Storage;
use crate::registry::Registry;
use crate::session::settings::SessionDeps;

/// The process-wide singletons, built once at start-up.
#[derive(Clone)]
pub struct Singletons {
    pub config: Arc<Config>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub registry: Addr<Registry>,
    /// This instance (the holder of the data directory's spool), told apart from others sharing the database.
    pub instance: InstanceId,
    /// Where recordings are stored (read back by the audio route).
    pub recordings: Arc<Storage>,
    /// What each voice session is given.
    pub session: SessionDeps,
    pub http: HttpClients,
    pub auth: Arc<Auth>,
    /// Set when a graceful shutdown begins: new sessions are refused.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// Session openings per client address.
    pub connects: Arc<Limiter<IpAddr>>,
    /// REST requests per credential (keyed by a digest of the bearer).
    pub requests: Arc<Limiter<u64>>,
}

/// A worker's view of the application.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub registry: Addr<Registry>,
    pub instance: InstanceId,
    pub recordings: Arc<Storage>,
    pub session: SessionDeps,
    /// This worker's client for the providers.
    pub http: awc::Client,
    pub auth: Arc<Auth>,
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    pub connects: Arc<Limiter<IpAddr>>,
    pub requests: Arc<Limiter<u64>>,
}

impl Singletons {
    /// The state of one worker (call it inside the `HttpServer::new` factory, once per worker).
    pub fn for_worker(&self) -> AppState {
        AppState {
            config: self.config.clone(),
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            registry: self.registry.clone(),
            instance: self.instance.clone(),
            recordings: self.recordings.clone(),
            session: self.session.clone(),
            http: self.http.build(),
            auth: self.auth.clone(),
            draining: self.draining.clone(),
            connects: self.connects.clone(),
            requests: self.requests.clone(),
        }
    }
}
