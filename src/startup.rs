//! Building and running the application: [`Application::build`] binds the listener first (port 0 picks a free
//! one; a port in use is a clean error before anything starts), reads this instance's id from the data
//! directory (creating it on the first start), loads the agent profiles (a bad agents file stops here), creates the singletons once (database store, metrics, registry,
//! HTTP client settings, what sessions are given), deals with the recordings the last run left behind (orphan
//! spool files first, then the waiting rows, before a connection is accepted) and wires the routes;
//! [`Application::run_until_stopped`] serves until SIGINT/SIGTERM (or a [`ShutdownHandle`]) and then
//! shuts down gracefully:
//!
//! 1. stop accepting connections;
//! 2. ask live sessions to drain and wait up to `PARLEY_SHUTDOWN_DRAIN_SECS` for them to finish;
//! 3. stop the HTTP server (closing whatever is still open) and wait for pending database writes;
//! 4. close the database pool.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor as _;
use actix_web::body::BoxBody;
use actix_web::dev::{Server, ServerHandle, ServiceRequest};
use actix_web::middleware::{self, Next};
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use tokio::sync::Notify;

use crate::agents::Agents;
use crate::auth::Auth;
use crate::config::Config;
use crate::crypto::Cipher;
use crate::db::Store;
use crate::http_client::HttpClients;
use crate::limits::Limiter;
use crate::metrics::{Metrics, track_requests};
use crate::persistence::{Committer, Journal, PendingWrites};
use crate::recording::Storage;
use crate::recording::orphans::{OrphanScan, QUARANTINE_DIR};
use crate::recording::spool::{SPOOL_DIR, SpoolLanes};
use crate::recording::uploader::{ResumeWaiting, Uploader};
use crate::registry::{DrainAll, GetCounts, Registry, WaitUntilEmpty};
use crate::routes;
use crate::session::settings::{AgentSettings, RecordingDeps, SessionDeps};
use crate::state::Singletons;

/// File name of the generated auth secret inside the data directory (embedded defaults only).
pub const AUTH_KEY_FILE: &str = "auth.key";
/// Time the HTTP server gets, after draining, to close what is still open.
const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a finished connection lingers, reading what the client still sends, before the server closes its
/// TCP side. actix's default (1 s) keeps every closed WebSocket open a second after the closing handshake
/// (its request stream is never "drained"); RFC 6455 wants the server to close the TCP connection at once.
const LINGER: Duration = Duration::from_millis(100);
/// Time queued database writes get to finish once the server has stopped.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// After the drain time, how long sessions still get for their last saves and closes.
const DRAIN_SAVE_GRACE: Duration = Duration::from_secs(3);
/// The longest a graceful stop takes beyond `PARLEY_SHUTDOWN_DRAIN_SECS`: what a supervisor's stop timeout
/// (Docker, systemd, Kubernetes' terminationGracePeriodSeconds) must leave on top of the drain time.
pub const STOP_BEYOND_DRAIN: Duration =
    Duration::from_secs(DRAIN_SAVE_GRACE.as_secs() + SERVER_STOP_TIMEOUT.as_secs() + FLUSH_TIMEOUT.as_secs());

/// A built, listening application.
pub struct Application {
    port: u16,
    server: Server,
    state: Singletons,
    shutdown: Arc<Notify>,
    storage: actix::Arbiter,
    /// SIGTERM and SIGINT, taken over when the application is built: from the moment it says it is ready, a
    /// signal stops it gracefully rather than by the default action.
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

/// Triggers the same graceful shutdown as SIGTERM (tests use it; so could an admin endpoint).
#[derive(Clone)]
pub struct ShutdownHandle(Arc<Notify>);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.0.notify_one();
    }
}

impl Application {
    /// Binds the listener, connects the database (running migrations) and builds the singletons.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        // A bad agents file stops start-up before anything is bound or opened.
        let agents = Agents::load(config.agents_file.as_ref())?;
        if let Some(file) = &config.agents_file {
            let names: Vec<&str> = agents.profiles.keys().map(String::as_str).collect();
            log::info!(
                "agents from {}: {} (sessions that name none get {:?})",
                file.path.display(),
                names.join(", "),
                agents.default_agent
            );
        }
        // Bind before anything else starts: a port in use must be a clean error, not actors left running.
        let address = (config.server.host, config.server.port);
        let listener =
            TcpListener::bind(address).with_context(|| format!("cannot listen on {}:{}", address.0, address.1))?;
        let port = listener.local_addr()?.port();
        let config = Arc::new(config);
        let data_dir = &config.database.data_dir;
        let instance = crate::recording::instance::load_or_create(data_dir)?;
        log::info!("instance {instance} (data directory {})", data_dir.display());
        let cipher = Cipher::from_config(&config.encryption, &config.database.data_dir)?;
        let auth = Arc::new(build_auth(&config)?);
        let recordings = Arc::new(Storage::from_config(&config)?);
        let store = Store::connect(&config.database, cipher).await.context("cannot open the database")?;
        let metrics = Arc::new(Metrics::new().context("cannot register metrics")?);
        let registry =
            Registry::new(metrics.clone(), config.limits.max_sessions, config.limits.max_sessions_per_user).start();
        let journal = Arc::new(
            Journal::open(
                &config.database.data_dir.join("journal"),
                store.cipher(),
                config.database.journal_max_bytes,
                metrics.clone(),
            )
            .context("cannot open the write journal")?,
        );
        let spool_dir = data_dir.join(SPOOL_DIR);
        // Recordings whose rows wait in the journal are not orphans: the replay registers them.
        let journaled = journal.recording_keys();
        let lanes = Arc::new(SpoolLanes::default());
        OrphanScan {
            spool_dir: &spool_dir,
            quarantine_dir: &data_dir.join(QUARANTINE_DIR),
            store: &store,
            instance: &instance,
            backend: recordings.backend(),
            metrics: &metrics,
            journaled: &journaled,
            lanes: &lanes,
        }
        .run()
        .await;
        let storage = actix::Arbiter::new();
        storage.spawn(async {
            name_this_thread(c"parley-storage");
            // The Persister, Uploader and journal write from here: their statements run here, without a hop.
            crate::db::writer::run_writes_here();
        });
        // The embedded database's one writer commits the sessions' batches (and the uploader's marks) in groups;
        // PostgreSQL keeps its pool.
        let committer = matches!(store.backend(), crate::db::Backend::Sqlite).then(|| {
            let (store, metrics) = (store.clone(), metrics.clone());
            Committer::start_in_arbiter(&storage.handle(), move |_| Committer::new(store, metrics))
        });
        let uploader = {
            let (store, recordings, metrics) = (store.clone(), recordings.clone(), metrics.clone());
            let (instance, committer, lanes) = (instance.clone(), committer.clone(), lanes.clone());
            Uploader::start_in_arbiter(&storage.handle(), move |_| {
                Uploader::new(store, recordings, metrics, instance).with_committer(committer).with_lanes(lanes)
            })
        };
        // Awaited: by the time the server accepts a connection, everything this instance left waiting is queued.
        uploader.send(ResumeWaiting).await.context("the uploader did not start")?;
        {
            let (journal, store, uploader) = (journal.clone(), store.clone(), uploader.clone().recipient());
            // On the storage thread, which outlives the HTTP workers.
            storage.spawn(async move { journal.start(store, Some(uploader)) });
        }
        let agent_settings = Arc::new(AgentSettings::new(&config, &agents));
        metrics.export_known(&agent_settings.metric_labels());
        let session = SessionDeps {
            agents: agent_settings,
            metrics: metrics.clone(),
            registry: registry.clone(),
            store: store.clone(),
            storage: storage.handle(),
            recordings: RecordingDeps {
                spool_dir,
                backend: recordings.backend(),
                instance: instance.clone(),
                uploader: uploader.recipient(),
                lanes,
            },
            pending: Arc::new(PendingWrites::default()),
            journal,
            committer,
        };
        let state = Singletons {
            config: config.clone(),
            store,
            metrics,
            registry,
            instance,
            recordings,
            session,
            http: HttpClients::new(),
            auth,
            draining: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            connects: Arc::new(Limiter::new(config.limits.connect_rate)),
            requests: Arc::new(Limiter::new(config.limits.rest_rate)),
        };

        let server = {
            let state = state.clone();
            HttpServer::new(move || {
                let metrics = state.metrics.clone();
                App::new()
                    .wrap(middleware::from_fn(routes::guard::deadline))
                    // Inside the request counter (the later `wrap` is the outer one): refused origins count too.
                    .wrap(middleware::from_fn(routes::guard::check_origin))
                    .wrap(middleware::from_fn(move |req: ServiceRequest, next: Next<BoxBody>| {
                        track_requests(metrics.clone(), req, next)
                    }))
                    .app_data(web::Data::new(state.for_worker()))
                    .configure(routes::config)
            })
            .workers(config.server.workers)
            .disable_signals()
            .client_disconnect_timeout(LINGER)
            .client_request_timeout(config.limits.request_timeout)
            .shutdown_timeout(SERVER_STOP_TIMEOUT.as_secs())
            .listen(listener)?
            .run()
        };
        let signals = install_signal_handlers();
        Ok(Application { port, server, state, shutdown: Arc::new(Notify::new()), storage, signals })
    }

    /// Where the bundled web page can be opened, with the development credential when there is one.
    pub fn page_url(&self) -> String {
        let host = match self.state.config.server.host {
            h if h.is_unspecified() => "127.0.0.1".to_string(),
            std::net::IpAddr::V6(h) => format!("[{h}]"),
            h => h.to_string(),
        };
        match self.state.auth.development_credential() {
            Some(credential) => format!("http://{host}:{}/?dev={credential}", self.port),
            None => format!("http://{host}:{}/", self.port),
        }
    }

    /// The port actually bound (useful with `PORT=0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &Singletons {
        &self.state
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown.clone())
    }

    /// Serves until a signal or [`ShutdownHandle::shutdown`], then shuts down gracefully.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application { server, state, shutdown, storage, signals, .. } = self;
        let handle = server.handle();
        let mut serving = actix_web::rt::spawn(server);
        tokio::select! {
            result = &mut serving => {
                // The server ended on its own (it only does so on a fatal error).
                return result.context("server task failed")?.context("server failed");
            }
            signal = shutdown_signal(signals) => log::info!("{signal}: shutting down"),
            _ = shutdown.notified() => log::info!("shutdown requested"),
        }
        graceful_stop(&state, &handle).await;
        let _ = serving.await;
        let unwritten = state.session.pending.wait_idle(FLUSH_TIMEOUT).await;
        if unwritten > 0 {
            log::error!("{unwritten} database write(s) still pending at exit; they are lost");
        }
        storage.stop();
        // Spool and local recordings are not synced file by file; a clean stop puts them on disk.
        let data_dir = state.config.database.data_dir.clone();
        match tokio::task::spawn_blocking(move || crate::recording::spool::sync_filesystem(&data_dir)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!("could not sync recordings to disk: {e}"),
            Err(e) => log::warn!("could not sync recordings to disk: {e}"),
        }
        state.store.close();
        log::info!("stopped");
        Ok(())
    }
}

/// The auth secrets: the configured secret, or (embedded defaults) one generated into the data directory, with
/// a development credential for the bundled page.
pub fn build_auth(config: &Config) -> anyhow::Result<Auth> {
    match &config.auth.secret {
        Some(secret) => Ok(Auth::new(&config.auth, secret, false)),
        None => {
            let path = config.database.data_dir.join(AUTH_KEY_FILE);
            let secret = crate::crypto::load_or_create_key_file(&path, "client-token signing secret")?;
            Ok(Auth::new(&config.auth, &secret.0, true))
        }
    }
}

async fn graceful_stop(state: &Singletons, handle: &ServerHandle) {
    // New sessions are refused at once (503) rather than left waiting on a paused listener; requests in
    // flight and REST calls are still served while the live sessions finish.
    state.draining.store(true, std::sync::atomic::Ordering::SeqCst);
    let grace = state.config.server.shutdown_drain;
    let live = state.registry.send(GetCounts).await.map(|c| c.active).unwrap_or(0);
    if live > 0 {
        log::info!("draining {live} live session(s) for up to {}s", grace.as_secs());
        let _ = state.registry.send(DrainAll { grace }).await;
        // The grace, then a moment for the last messages to be saved and the closes to go out.
        let drained = tokio::time::timeout(grace + DRAIN_SAVE_GRACE, state.registry.send(WaitUntilEmpty)).await;
        if drained.is_err() {
            log::warn!("sessions still live after the drain time; closing them");
        }
    }
    handle.stop(true).await;
}

/// Takes over SIGTERM and SIGINT (`None`, logged, when the system refuses).
fn install_signal_handlers() -> Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)> {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(term), Ok(int)) => Some((term, int)),
        _ => {
            log::error!("cannot install signal handlers; stop parley with SIGKILL");
            None
        }
    }
}

/// Resolves on SIGINT or SIGTERM, naming which.
async fn shutdown_signal(signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>) -> &'static str {
    let Some((mut term, mut int)) = signals else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Names the calling thread as `top`, `ps -L` and /proc show it (the storage arbiter would otherwise look like an
/// HTTP worker). At most 15 bytes are kept.
fn name_this_thread(name: &std::ffi::CStr) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string, which `name` is, and changes only this thread's name.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, name.as_ptr());
    }
}
