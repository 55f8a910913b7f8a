//! parley on port 0 with embedded SQLite in a temporary directory, pointed at the three provider emulators,
//! as the API tests start it (tests/api/helpers), plus a restart on the same port for reconnect tests.
//!
//! It runs as the zero-configuration development server does: no `PARLEY_AUTH_SECRET`, so it generates its
//! signing secret into the data directory and a development credential, and the page is opened at the
//! address it prints ([`Server::page_url`], from `Application::page_url`). The test's own REST calls use an
//! operator key ([`OPERATOR_KEY`]), and [`Server::mint_token`] makes client tokens as an app backend would,
//! from the generated secret.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use parley::auth::{Claims, Scope, TokenKeys};
use parley::config::Config;
use parley::emulators::{EmulatorOptions, Emulators};
use parley::startup::{AUTH_KEY_FILE, Application, ShutdownHandle};
use serde_json::Value;

/// The operator API key the tests' own REST calls carry (the page never sees it).
pub const OPERATOR_KEY: &str = "browser-test-operator-key";

/// Set in a test's environment (any value) to start parley as `parley --emulate` does: the provider
/// settings already point at the emulators, and sessions say their providers are emulated. parley itself
/// never reads this name.
pub const EMULATE: &str = "HARNESS_EMULATE";

/// parley and its emulators.
pub struct Server {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    /// The address parley printed for the page, with its development credential (new at every start).
    page_url: String,
    pub emulators: Emulators,
    env: HashMap<String, String>,
    data_dir: Arc<tempfile::TempDir>,
    shutdown: ShutdownHandle,
    running: actix_web::rt::task::JoinHandle<anyhow::Result<()>>,
}

/// What one start of parley gives.
struct Running {
    address: String,
    page_url: String,
    shutdown: ShutdownHandle,
    running: actix_web::rt::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts the emulators, then parley pointed at them, after `tweak` adjusted parley's environment.
pub async fn start(tweak: impl FnOnce(&mut HashMap<String, String>)) -> Server {
    let _ =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).is_test(true).try_init();
    let emulators = Emulators::start(EmulatorOptions::default()).await.expect("emulators start");
    let data_dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut env: HashMap<String, String> = [
        ("HOST", "127.0.0.1".to_string()),
        ("PORT", "0".to_string()),
        ("PARLEY_WORKERS", "1".to_string()),
        ("PARLEY_SHUTDOWN_DRAIN_SECS", "1".to_string()),
        ("PARLEY_DATA_DIR", data_dir.path().display().to_string()),
        ("PARLEY_API_KEYS", OPERATOR_KEY.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(emulators.env().into_iter().map(|(k, v)| (k.to_string(), v)))
    .collect();
    tweak(&mut env);
    let Running { address, page_url, shutdown, running } = run(&env).await;
    Server { address, page_url, emulators, env, data_dir, shutdown, running }
}

async fn run(env: &HashMap<String, String>) -> Running {
    let mut config = Config::from_lookup(|k| env.get(k).cloned()).expect("test configuration is valid");
    config.emulated = env.contains_key(EMULATE);
    let app = Application::build(config).await.expect("application starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let page_url = app.page_url();
    assert!(page_url.starts_with(&format!("{address}/?dev=")), "a development server prints {page_url}");
    let shutdown = app.shutdown_handle();
    Running { address, page_url, shutdown, running: actix_web::rt::spawn(app.run_until_stopped()) }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The page's address as parley printed it (`/?dev=CREDENTIAL`), with `query` (`a=b&c=d`) added.
    pub fn page_url(&self, query: &str) -> String {
        if query.is_empty() { self.page_url.clone() } else { format!("{}&{query}", self.page_url) }
    }

    /// The development credential in the printed address.
    pub fn dev_credential(&self) -> &str {
        self.page_url.split_once("?dev=").expect("a credential in the page's address").1
    }

    /// GET `path` with the operator key → (status, JSON body or Null).
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let client = awc::Client::new();
        let mut res = client.get(self.url(path)).bearer_auth(OPERATOR_KEY).send().await.expect("request sent");
        let body = res.body().await.expect("body read");
        (res.status().as_u16(), serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// A client token for `user` expiring `ttl_secs` from now (negative: already expired), minted with the
    /// server's generated secret as an app backend would mint it with its own.
    pub fn mint_token(&self, user: &str, ttl_secs: i64) -> String {
        let raw = std::fs::read_to_string(self.data_dir.path().join(AUTH_KEY_FILE)).expect("the generated secret");
        let secret = base64::engine::general_purpose::STANDARD.decode(raw.trim()).expect("base64");
        let now = chrono::Utc::now().timestamp();
        TokenKeys::new(&secret, &[]).mint(&Claims {
            user_id: user.parse().expect("a valid user id"),
            exp: now + ttl_secs,
            iat: Some(now),
            nbf: None,
            session: None,
            scopes: vec![Scope::Voice, Scope::History],
            extra: Default::default(),
        })
    }

    /// Stops parley (as on SIGTERM: sessions are told and closed with 1001) and starts it again on the same
    /// port with the same database and secret, as a deployment would. The development credential is new.
    pub async fn restart(&mut self) {
        self.shutdown.shutdown();
        (&mut self.running).await.expect("app task").expect("app stopped cleanly");
        let port = self.address.rsplit(':').next().expect("a port").to_string();
        self.env.insert("PORT".into(), port);
        let Running { address, page_url, shutdown, running } = run(&self.env).await;
        assert_eq!(address, self.address, "restarted on the same port");
        (self.page_url, self.shutdown, self.running) = (page_url, shutdown, running);
    }

    pub async fn stop(self) {
        self.shutdown.shutdown();
        self.running.await.expect("app task").expect("app stopped cleanly");
        self.emulators.stop().await;
        drop(self.data_dir);
    }
}
