//! `parley --emulate`: starts the provider emulators in this process and points the configuration at them,
//! so the whole voice loop runs with no API keys and no network. Sessions tell their clients the providers
//! are emulated.

use crate::config::{Config, Secret};
use crate::emulators::{EmulatorOptions, Emulators};

/// Starts the emulators on loopback and rewrites the provider URLs and keys of `config` to theirs. Keep the
/// returned value alive as long as the server runs. They run with the real services' typical latencies and
/// real-time audio pacing, so a person trying parley this way sees and hears realistic turn-taking.
pub async fn start(config: &mut Config) -> anyhow::Result<Emulators> {
    let emulators = Emulators::start(EmulatorOptions {
        log_limit: Some(crate::emulators::CLI_LOG_LIMIT),
        ..EmulatorOptions::default().realistic()
    })
    .await?;
    point_at(config, &emulators);
    for (name, value) in emulators.env() {
        if name.ends_with("_BASE_URL") {
            log::info!("emulated provider: {name}={value}");
        }
    }
    Ok(emulators)
}

/// Points `config` at running emulators.
pub fn point_at(config: &mut Config, emulators: &Emulators) {
    for (name, value) in emulators.env() {
        match name {
            "DEEPGRAM_BASE_URL" => config.deepgram.base_url = value,
            "DEEPGRAM_API_KEY" => config.deepgram.api_key = Some(Secret::new(value)),
            "OPENAI_BASE_URL" => config.openai.base_url = value,
            "OPENAI_API_KEY" => config.openai.api_key = Some(Secret::new(value)),
            "ELEVENLABS_BASE_URL" => config.elevenlabs.base_url = value,
            "ELEVENLABS_API_KEY" => config.elevenlabs.api_key = Some(Secret::new(value)),
            _ => {}
        }
    }
    config.emulated = true;
}
