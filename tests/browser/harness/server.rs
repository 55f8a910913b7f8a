//! parley on port 0 with embedded SQLite in a temporary directory, pointed at the three provider emulators,
//! as the API tests start it (tests/api/helpers), plus a restart on the same port for reconnect tests.

use std::collections::HashMap;
use std::sync::Arc;

use parley::config::Config;
use parley::emulators::{EmulatorOptions, Emulators};
use parley::startup::{Application, ShutdownHandle};
use serde_json::Value;

/// parley and its emulators.
pub struct Server {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub emulators: Emulators,
    env: HashMap<String, String>,
    data_dir: Arc<tempfile::TempDir>,
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
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(emulators.env().into_iter().map(|(k, v)| (k.to_string(), v)))
    .collect();
    tweak(&mut env);
    let (address, shutdown, running) = run(&env).await;
    Server { address, emulators, env, data_dir, shutdown, running }
}

async fn run(
    env: &HashMap<String, String>,
) -> (String, ShutdownHandle, actix_web::rt::task::JoinHandle<anyhow::Result<()>>) {
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("test configuration is valid");
    let app = Application::build(config).await.expect("application starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_handle();
    (address, shutdown, actix_web::rt::spawn(app.run_until_stopped()))
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// GET `path` → (status, JSON body or Null).
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let client = awc::Client::new();
        let mut res = client.get(self.url(path)).send().await.expect("request sent");
        let body = res.body().await.expect("body read");
        (res.status().as_u16(), serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Stops parley (as on SIGTERM: sessions are told and closed with 1001) and starts it again on the same
    /// port with the same database, as a deployment would.
    pub async fn restart(&mut self) {
        self.shutdown.shutdown();
        (&mut self.running).await.expect("app task").expect("app stopped cleanly");
        let port = self.address.rsplit(':').next().expect("a port").to_string();
        self.env.insert("PORT".into(), port);
        let (address, shutdown, running) = run(&self.env).await;
        assert_eq!(address, self.address, "restarted on the same port");
        (self.shutdown, self.running) = (shutdown, running);
    }

    pub async fn stop(self) {
        self.shutdown.shutdown();
        self.running.await.expect("app task").expect("app stopped cleanly");
        self.emulators.stop().await;
        drop(self.data_dir);
    }
}
