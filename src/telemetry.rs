//! Logging set-up: env_logger, `info` unless `RUST_LOG` says otherwise, timestamps in milliseconds.

/// Initialises the global logger once; later calls (tests) are ignored.
pub fn init_logger() {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .try_init();
}
