//! The three emulators running together, each on its own loopback listener: their base URLs, the
//! environment a client needs to use them, their control handles, and `stop`.

use super::common::server::Running;
use super::deepgram::{self, DeepgramControl, control::DeepgramSettings};
use super::elevenlabs::{self, ElevenLabsControl, control::ElevenLabsSettings};
use super::openai::{self, OpenAiControl, control::OpenAiSettings};
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
        let dg = opts.deepgram;
        let deepgram = DeepgramControl::new(
            DeepgramSettings {
                api_keys: dg.api_keys.clone(),
                idle_timeout: dg.idle_timeout,
                finalize_reply: dg.finalize_reply,
                reply_latency: dg.reply_latency,
            },
            dg.faults,
        );
        let oa = opts.openai;
        let openai = OpenAiControl::new(
            OpenAiSettings {
                api_keys: oa.api_keys.clone(),
                time_to_first_token: oa.time_to_first_token,
                inter_token_delay: oa.inter_token_delay,
                torture: oa.torture,
            },
            oa.faults,
        );
        let el = opts.elevenlabs;
        let elevenlabs = ElevenLabsControl::new(
            ElevenLabsSettings {
                api_keys: el.api_keys.clone(),
                time_to_first_byte: el.time_to_first_byte,
                realtime_pacing: el.realtime_pacing,
                inactivity_timeout: el.inactivity_timeout,
            },
            el.faults,
        );
        let deepgram_server =
            Running::start(opts.host, dg.port, deepgram::configure(deepgram.clone()))?;
        let openai_server =
            match Running::start(opts.host, oa.port, openai::configure(openai.clone())) {
                Ok(s) => s,
                Err(e) => {
                    deepgram_server.stop().await;
                    return Err(e);
                }
            };
        let elevenlabs_server = match Running::start(
            opts.host,
            el.port,
            elevenlabs::configure(elevenlabs.clone()),
        ) {
            Ok(s) => s,
            Err(e) => {
                deepgram_server.stop().await;
                openai_server.stop().await;
                return Err(e);
            }
        };
        let first = |keys: &[String]| keys.first().cloned().unwrap_or_default();
        Ok(Emulators {
            deepgram_server,
            openai_server,
            elevenlabs_server,
            deepgram,
            openai,
            elevenlabs,
            keys: [
                first(&dg.api_keys),
                first(&oa.api_keys),
                first(&el.api_keys),
            ],
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
