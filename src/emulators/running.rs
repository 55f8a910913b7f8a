//! The three emulators running together, each on its own loopback listener: their base URLs, the
//! environment a client needs to use them, their control handles, and `stop`.

use super::common::server::Running;
use super::deepgram::{self, DeepgramControl};
use super::elevenlabs::{self, ElevenLabsControl};
use super::openai::{self, OpenAiControl};
use super::options::EmulatorOptions;

/// The running emulators.
#[derive(Debug)]
pub struct Emulators {
    deepgram_server: Running,
    openai_server: Running,
    elevenlabs_server: Running,
    deepgram: DeepgramControl,
    openai: OpenAiControl,
    elevenlabs: ElevenLabsControl,
    keys: [String; 3],
}

impl Emulators {
    /// Starts all three services inside the current tokio (actix) runtime.
    pub async fn start(opts: EmulatorOptions) -> std::io::Result<Emulators> {
        // Bind all three first, so a taken port fails the start before anything runs.
        let listeners = [
            Running::bind(opts.host, opts.deepgram.port)?,
            Running::bind(opts.host, opts.openai.port)?,
            Running::bind(opts.host, opts.elevenlabs.port)?,
        ];
        let [dg_listener, oa_listener, el_listener] = listeners;
        let deepgram = DeepgramControl::new(&opts.deepgram);
        let openai = OpenAiControl::new(&opts.openai);
        let elevenlabs = ElevenLabsControl::new(&opts.elevenlabs);
        deepgram.set_log_limit(opts.log_limit);
        openai.set_log_limit(opts.log_limit);
        elevenlabs.set_log_limit(opts.log_limit);
        let deepgram_server = Running::serve(dg_listener, deepgram::configure(deepgram.clone()))?;
        let openai_server = Running::serve(oa_listener, openai::configure(openai.clone()))?;
        let elevenlabs_server = Running::serve(el_listener, elevenlabs::configure(elevenlabs.clone()))?;
        let first = |keys: &[String]| keys.first().cloned().unwrap_or_default();
        Ok(Emulators {
            deepgram_server,
            openai_server,
            elevenlabs_server,
            deepgram,
            openai,
            elevenlabs,
            keys: [first(&opts.deepgram.api_keys), first(&opts.openai.api_keys), first(&opts.elevenlabs.api_keys)],
        })
    }

    /// `ws://HOST:PORT/v1` (a client appends `/listen`).
    pub fn deepgram_base_url(&self) -> String {
        format!("ws://{}/v1", self.deepgram_server.addr())
    }

    /// `http://HOST:PORT/v1` (a client appends `/chat/completions`).
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.openai_server.addr())
    }

    /// `http://HOST:PORT/{prefix}/v1`: the same emulator under a path prefix, a base URL of its own that
    /// `OpenAiControl::set_down(prefix, ..)` can take down while the plain one keeps working.
    pub fn openai_prefixed_base_url(&self, prefix: &str) -> String {
        format!("http://{}/{}/v1", self.openai_server.addr(), prefix.trim_matches('/'))
    }

    /// `http://HOST:PORT/v1` (a client appends `/text-to-speech/...`, swapping http for ws on sockets).
    pub fn elevenlabs_base_url(&self) -> String {
        format!("http://{}/v1", self.elevenlabs_server.addr())
    }

    /// DEEPGRAM_BASE_URL, DEEPGRAM_API_KEY, OPENAI_BASE_URL, OPENAI_API_KEY, ELEVENLABS_BASE_URL,
    /// ELEVENLABS_API_KEY: what a client needs (and what `parley emulate` prints as `export` lines).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DEEPGRAM_BASE_URL", self.deepgram_base_url()),
            ("DEEPGRAM_API_KEY", self.keys[0].clone()),
            ("OPENAI_BASE_URL", self.openai_base_url()),
            ("OPENAI_API_KEY", self.keys[1].clone()),
            ("ELEVENLABS_BASE_URL", self.elevenlabs_base_url()),
            ("ELEVENLABS_API_KEY", self.keys[2].clone()),
        ]
    }

    /// The Deepgram control handle.
    pub fn deepgram(&self) -> DeepgramControl {
        self.deepgram.clone()
    }

    /// The OpenAI control handle.
    pub fn openai(&self) -> OpenAiControl {
        self.openai.clone()
    }

    /// The ElevenLabs control handle.
    pub fn elevenlabs(&self) -> ElevenLabsControl {
        self.elevenlabs.clone()
    }

    /// Stops every server, closing open sockets; after it returns nothing listens.
    pub async fn stop(self) {
        futures_util::future::join3(
            self.deepgram_server.stop(),
            self.openai_server.stop(),
            self.elevenlabs_server.stop(),
        )
        .await;
    }
}
