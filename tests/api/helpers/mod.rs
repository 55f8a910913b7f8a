//! Test harness: starts the real application on port 0 with a fresh database (embedded SQLite in a temporary
//! directory, or a fresh PostgreSQL database from `postgres`) and talks to it over real sockets.

pub mod fuzz_frames;
pub mod fuzz_json;
pub mod gcs;
pub mod postgres;
pub mod process;
pub mod prometheus;
pub mod promtool;
#[path = "../../support/provision.rs"]
pub mod provision;
pub mod raw_db;
pub mod raw_ws;
pub mod voice;
pub mod webhook;

use std::collections::HashMap;

use parley::config::Config;
use parley::db::Store;
use parley::startup::{Application, ShutdownHandle};

/// Which backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestDb {
    Sqlite,
    Postgres,
}

/// A fixed 32-byte key (base64) for tests that need to know the key.
pub const TEST_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// A different valid key, for wrong-key tests.
pub const OTHER_KEY: &str = "HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4=";
/// The client-token secret of every test app (base64 of 32 bytes), so tests can mint tokens as an app
/// backend would.
pub const AUTH_SECRET: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
/// The operator API key of every test app; the test client sends it unless a test chooses a credential.
pub const OPERATOR_KEY: &str = "test-operator-key";

/// Waits until `spool` holds no file (the lanes of finished sessions go once all they hold is stored).
pub async fn spool_empties(spool: &std::path::Path) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left: Vec<String> = std::fs::read_dir(spool)
            .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        if left.is_empty() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the spool still holds {left:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A client token for `user`, valid for an hour, as an app backend would mint it.
pub fn token_for(user: &str) -> String {
    use base64::Engine as _;
    let secret = base64::engine::general_purpose::STANDARD.decode(AUTH_SECRET).unwrap();
    let now = chrono::Utc::now().timestamp();
    parley::auth::TokenKeys::new(&secret, &[]).mint(&parley::auth::Claims {
        user_id: user.parse().expect("a valid userId"),
        exp: now + 3600,
        iat: Some(now),
        nbf: None,
        session: None,
        scopes: vec![parley::auth::Scope::Voice, parley::auth::Scope::History],
        extra: Default::default(),
    })
}

/// A running application.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub store: Store,
    pub config: Config,
    pub env: HashMap<String, String>,
    /// Sends the operator API key with every request (tests of access control use their own clients).
    pub client: awc::Client,
    /// Keeps the data directory alive for the app's lifetime.
    pub data_dir: std::sync::Arc<tempfile::TempDir>,
    shutdown: ShutdownHandle,
    running: actix_web::rt::task::JoinHandle<anyhow::Result<()>>,
}

/// The environment a test app starts from: loopback, port 0, one worker, a fresh database.
pub async fn test_env(db: TestDb, data_dir: &std::path::Path) -> HashMap<String, String> {
    let mut env = HashMap::from([
        ("HOST".to_string(), "127.0.0.1".to_string()),
        ("PORT".to_string(), "0".to_string()),
        ("PARLEY_WORKERS".to_string(), "1".to_string()),
        ("PARLEY_SHUTDOWN_DRAIN_SECS".to_string(), "2".to_string()),
        ("PARLEY_DATA_DIR".to_string(), data_dir.display().to_string()),
        ("PARLEY_AUTH_SECRET".to_string(), AUTH_SECRET.to_string()),
        ("PARLEY_API_KEYS".to_string(), OPERATOR_KEY.to_string()),
        // Tests open many sessions and poll often from one address: the limits get their own tests.
        ("PARLEY_CONNECT_RATE".to_string(), "100000/sec".to_string()),
        ("PARLEY_CONNECT_BURST".to_string(), "100000".to_string()),
        ("PARLEY_REST_RATE".to_string(), "100000/sec".to_string()),
        ("PARLEY_REST_BURST".to_string(), "100000".to_string()),
        ("PARLEY_MAX_SESSIONS_PER_USER".to_string(), "1000".to_string()),
        ("PARLEY_TURNS_PER_MINUTE".to_string(), "10000".to_string()),
    ]);
    if db == TestDb::Postgres {
        env.insert("PG_DB_URL".into(), postgres::fresh_database().await);
        env.insert("PARLEY_ENCRYPTION_KEY".into(), TEST_KEY.into());
    }
    env
}

pub async fn spawn_app(db: TestDb) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

/// Starts an app after `tweak` has adjusted its environment.
pub async fn spawn_app_with(db: TestDb, tweak: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
    let data_dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut env = test_env(db, data_dir.path()).await;
    tweak(&mut env);
    start_with_env(env, data_dir).await
}

/// Starts an app with exactly this environment (e.g. a second app on the same database and data directory).
pub async fn start_with_env(env: HashMap<String, String>, data_dir: std::sync::Arc<tempfile::TempDir>) -> TestApp {
    // Captured per test (shown for failures); RUST_LOG=info shows more.
    let _ =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).is_test(true).try_init();
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("test configuration is valid");
    let app = Application::build(config.clone()).await.expect("application starts");
    let port = app.port();
    let store = app.state().store.clone();
    let shutdown = app.shutdown_handle();
    let running = actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        store,
        config,
        env,
        client: awc::Client::builder().add_default_header(("Authorization", format!("Bearer {OPERATOR_KEY}"))).finish(),
        data_dir,
        shutdown,
        running,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// GET `path`; returns status and JSON body (Null when the body is not JSON).
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let mut res = self.client.get(self.url(path)).send().await.expect("request sent");
        let body = res.body().await.expect("body read");
        (res.status().as_u16(), serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
    }

    /// POST a raw body with a content type; returns status and JSON body.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: &str) -> (u16, serde_json::Value) {
        let mut res = self
            .client
            .post(self.url(path))
            .insert_header(("content-type", content_type))
            .send_body(body.to_string())
            .await
            .expect("request sent");
        let body = res.body().await.expect("body read");
        (res.status().as_u16(), serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
    }

    pub async fn get_text(&self, path: &str) -> (u16, String, String) {
        let mut res = self.client.get(self.url(path)).send().await.expect("request sent");
        let content_type =
            res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let body = res.body().limit(8 << 20).await.expect("body read");
        (res.status().as_u16(), content_type, String::from_utf8_lossy(&body).into_owned())
    }

    /// Graceful shutdown, as on SIGTERM; returns what the app returned.
    pub async fn stop(self) -> anyhow::Result<()> {
        // Close the client's keep-alive connections first, or the server waits for them to time out.
        drop(self.client);
        self.shutdown.shutdown();
        // A shutdown that hangs must fail the test that caused it, not stall the whole run.
        tokio::time::timeout(std::time::Duration::from_secs(60), self.running)
            .await
            .expect("the app stops within a minute of the shutdown request")
            .expect("app task")
    }
}

/// Runs the test body once per backend: `mod name { fn sqlite(); fn postgres(); }`.
#[macro_export]
macro_rules! both_backends {
    ($(async fn $name:ident($db:ident: $ty:ty) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($db: $ty) $body

                #[actix_web::test]
                async fn sqlite() {
                    run($crate::helpers::TestDb::Sqlite).await
                }

                #[actix_web::test]
                async fn postgres() {
                    run($crate::helpers::TestDb::Postgres).await
                }
            }
        )*
    };
}
