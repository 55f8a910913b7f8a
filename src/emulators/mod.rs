//! Local emulators of Deepgram live STT, OpenAI-compatible chat streaming and ElevenLabs TTS, speaking the
//! real wire protocols (see `providers`), for tests, offline development and load tests.

// Placeholder entry points, replaced when the emulators land (issue 3).
/// Runs the standalone emulators (`parley emulate`).
pub async fn run_cli(_args: Vec<String>) -> anyhow::Result<()> {
    anyhow::bail!("the provider emulators are not built yet")
}

/// Starts the emulators in-process and points `config` at them (`parley --emulate`).
pub async fn start_for(_config: &mut crate::config::Config) -> anyhow::Result<()> {
    anyhow::bail!("the provider emulators are not built yet")
}
