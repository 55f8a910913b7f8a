//! What a session is given, and nothing more: [`SessionSettings`] (the configuration of one agent, taken from
//! `Config` and the agent's profile once at start-up; [`AgentSettings`] holds every agent's), [`SessionDeps`] (the singletons a session talks to, built and
//! injected by `startup`) and [`SessionParams`] (who this one session is, decided by its transport before it
//! starts). A session never sees the whole application state.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use actix::{Addr, ArbiterHandle, Recipient};

use super::deepgram_link::SttSettings;
use super::llm_worker::{Breakers, LlmProvider, LlmSettings};
use super::tts_link::TtsSettings;
use crate::agents::{AgentProfile, Agents, DEFAULT_AGENT, LlmEndpoint};
use crate::audio::OutputFormat;
use crate::audio::level::InputEncoding;
use crate::config::{Config, TurnTuning};
use crate::db::{InstanceId, PhoneCall, Role, SessionId, Store, ToolRecord, UserId};
use crate::metrics::Metrics;
use crate::persistence::{PendingWrites, RecordingStored};
use crate::registry::{Registry, Reservation};

/// Configuration of the sessions of one agent.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// The agent profile these settings are (`default` without an agents file).
    pub agent: String,
    /// Spoken first, as turn 0, in a new session.
    pub greeting: Option<String>,
    pub turns: TurnTuning,
    /// Conversation memory budget sent to the LLM.
    pub history_max_chars: usize,
    pub system_prompt: String,
    /// Speech recognition, before a session sets its own sample rate and encoding.
    pub stt: SttSettings,
    pub llm: LlmSettings,
    /// Speech synthesis in the configured output format (a transport may ask for another).
    pub tts: TtsSettings,
    /// MIME type of the configured output format, as announced to browser clients.
    pub mime_type: String,
    pub max_audio_frame_bytes: usize,
    pub max_text_frame_bytes: usize,
    /// Assistant turns one session may start per minute.
    pub turns_per_minute: u32,
    /// When a client counts as gone, not reading, idle, or too long connected.
    pub liveness: LivenessLimits,
    /// The providers are parley's own emulators (`--emulate`).
    pub emulated: bool,
}

impl SessionSettings {
    /// The `default` agent of the environment (no agents file, or one that does not define `default`).
    pub fn from_config(config: &Config) -> SessionSettings {
        SessionSettings {
            agent: DEFAULT_AGENT.to_string(),
            greeting: None,
            turns: config.turns.clone(),
            history_max_chars: config.limits.history_max_chars,
            system_prompt: config.openai.system_prompt.clone(),
            stt: SttSettings::from_config(config),
            llm: LlmSettings::from_config(config),
            tts: TtsSettings::from_config(config),
            mime_type: config.elevenlabs.mime_type.clone(),
            max_audio_frame_bytes: config.limits.max_audio_frame_bytes,
            max_text_frame_bytes: config.limits.max_text_frame_bytes,
            turns_per_minute: config.limits.turns_per_minute,
            liveness: LivenessLimits {
                write_timeout: config.limits.client_write_timeout,
                max_unread: config.limits.max_client_buffer_bytes,
                idle_timeout: config.limits.idle_timeout,
                max_session: config.limits.max_session,
            },
            emulated: config.emulated,
        }
    }

    /// The settings of `agent`: what its profile leaves out is the environment's.
    pub fn for_agent(config: &Config, agent: &AgentProfile) -> SessionSettings {
        let base = SessionSettings::from_config(config);
        let or = |value: &Option<String>, default: &String| value.clone().unwrap_or_else(|| default.clone());
        let mut providers = vec![provider(config, &agent.llm)];
        providers.extend(agent.llm_fallback.iter().map(|l| provider(config, l)));
        SessionSettings {
            agent: agent.name.clone(),
            greeting: agent.greeting.clone(),
            system_prompt: agent.system_prompt.clone(),
            stt: SttSettings {
                model: or(&agent.stt_model, &base.stt.model),
                language: or(&agent.stt_language, &base.stt.language),
                ..base.stt
            },
            llm: LlmSettings {
                providers,
                tools: Arc::new(agent.tools.clone()),
                max_tool_steps: agent.max_tool_steps,
                breakers: Arc::new(Breakers::default()),
            },
            tts: TtsSettings {
                voice_id: or(&agent.voice_id, &base.tts.voice_id),
                model_id: or(&agent.tts_model, &base.tts.model_id),
                ..base.tts
            },
            ..base
        }
    }
}

/// One LLM endpoint of a profile, the environment's `OPENAI_*` filling what it leaves out.
fn provider(config: &Config, endpoint: &LlmEndpoint) -> LlmProvider {
    let model = endpoint.model.clone().unwrap_or_else(|| config.openai.model.clone());
    let (api_key, api_key_env) = match &endpoint.api_key_env {
        Some(var) => (endpoint.api_key.clone(), var.clone()),
        None => (config.openai.api_key.clone(), "OPENAI_API_KEY".to_string()),
    };
    LlmProvider {
        name: endpoint.name.clone().unwrap_or_else(|| model.clone()),
        base_url: endpoint.base_url.clone().unwrap_or_else(|| config.openai.base_url.clone()),
        api_key,
        api_key_env,
        model,
        first_token_timeout: endpoint.first_token_timeout,
    }
}

/// Every agent's settings by name, built once at start-up; a transport picks one per session.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    by_name: BTreeMap<String, Arc<SessionSettings>>,
    /// The agent of a session that names none.
    default_agent: Arc<SessionSettings>,
    /// Phone number (E.164) → agent name, from the agents file.
    pub phone_numbers: BTreeMap<String, String>,
}

impl AgentSettings {
    /// The environment's `default` agent, then the file's agents (which may replace it).
    pub fn new(config: &Config, agents: &Agents) -> AgentSettings {
        let env_default = Arc::new(SessionSettings::from_config(config));
        let mut by_name = BTreeMap::from([(DEFAULT_AGENT.to_string(), env_default.clone())]);
        for (name, profile) in &agents.profiles {
            by_name.insert(name.clone(), Arc::new(SessionSettings::for_agent(config, profile)));
        }
        // `Agents::load` checked that the default agent exists.
        let default_agent = by_name.get(&agents.default_agent).cloned().unwrap_or(env_default);
        AgentSettings { by_name, default_agent, phone_numbers: agents.phone_numbers.clone() }
    }

    /// Only the environment's `default` agent (no agents file).
    pub fn from_config(config: &Config) -> AgentSettings {
        AgentSettings::new(config, &Agents { default_agent: DEFAULT_AGENT.to_string(), ..Agents::default() })
    }

    /// The agents' names, LLM fallback pairs and tools, for the metrics to export at zero from the start.
    pub fn metric_labels(&self) -> crate::metrics::KnownLabels {
        let mut known = crate::metrics::KnownLabels::default();
        for settings in self.by_name.values() {
            known.agents.push(settings.agent.clone());
            let providers = &settings.llm.providers;
            if let Some(primary) = providers.first() {
                for fallback in &providers[1..] {
                    known.fallbacks.push((primary.name.clone(), fallback.name.clone()));
                }
            }
            known.tools.extend(settings.llm.tools.iter().map(|t| t.name.clone()));
        }
        for list in [&mut known.agents, &mut known.tools] {
            list.sort();
            list.dedup();
        }
        known.fallbacks.sort();
        known.fallbacks.dedup();
        known
    }

    /// The settings of agent `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&Arc<SessionSettings>> {
        self.by_name.get(name)
    }

    /// The agent of a session that names none (`default`, or the file's `default_agent`).
    pub fn default_agent(&self) -> &Arc<SessionSettings> {
        &self.default_agent
    }
}

/// When a client counts as not reading, idle or connected too long (see `client_socket::Liveness`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessLimits {
    pub write_timeout: std::time::Duration,
    pub max_unread: u64,
    pub idle_timeout: std::time::Duration,
    pub max_session: std::time::Duration,
}

/// Where a session's recordings go.
#[derive(Clone)]
pub struct RecordingDeps {
    /// Directory of the files being written.
    pub spool_dir: PathBuf,
    /// `local` or `gcs`, as recorded on each row.
    pub backend: &'static str,
    /// This instance, recorded on each row as the holder of its spool file.
    pub instance: InstanceId,
    /// Hears about each registered recording and stores its file.
    pub uploader: Recipient<RecordingStored>,
    /// The lanes in use (the recorders' and the uploader's).
    pub lanes: Arc<crate::recording::spool::SpoolLanes>,
}

/// The singletons a session talks to.
#[derive(Clone)]
pub struct SessionDeps {
    /// Every agent's settings; a transport picks one per session (into `SessionParams::settings`).
    pub agents: Arc<AgentSettings>,
    pub metrics: Arc<Metrics>,
    pub registry: Addr<Registry>,
    pub store: Store,
    /// The thread the Persister and Recorder run on: it outlives the HTTP workers, so their queues can still
    /// be flushed after the server stops.
    pub storage: ArbiterHandle,
    pub recordings: RecordingDeps,
    /// Database writes queued by sessions, awaited at shutdown.
    pub pending: Arc<PendingWrites>,
    /// Where writes wait while the database is unavailable.
    pub journal: Arc<crate::persistence::Journal>,
    /// The embedded database's group commit (on the storage arbiter); none on PostgreSQL.
    pub committer: Option<actix::Addr<crate::persistence::Committer>>,
}

/// The audio a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioIn {
    pub encoding: InputEncoding,
    pub sample_rate: u32,
}

impl AudioIn {
    /// Seconds of audio in `bytes`.
    pub fn seconds(&self, bytes: usize) -> f64 {
        bytes as f64 / (f64::from(self.sample_rate) * self.encoding.bytes_per_sample() as f64)
    }
}

/// One message of the conversation as the LLM remembers it (loaded from the stored history on resume).
#[derive(Debug, Clone, PartialEq)]
pub struct Remembered {
    pub role: Role,
    pub text: String,
    /// For an assistant reply: the tool calls made while it was generated, with their results (the LLM sees
    /// them before the reply's text).
    pub tools: Vec<ToolRecord>,
}

/// Who one session is, decided (and validated) by its transport before the session starts.
#[derive(Debug, Clone)]
pub struct SessionParams {
    /// The agent this session talks to, its system prompt already rendered with the session's variables.
    pub settings: Arc<SessionSettings>,
    pub session_id: SessionId,
    pub user_id: UserId,
    /// Continuing a stored session; `history` holds its messages.
    pub resumed: bool,
    pub history: Vec<Remembered>,
    pub audio_in: AudioIn,
    /// The audio the client gets (the configured one for browsers, `ulaw_8000` on a phone).
    pub output_format: OutputFormat,
    /// The client's address, for the registry.
    pub peer: Option<String>,
    /// The place the registry holds for this session (taken before the upgrade).
    pub reservation: Option<Reservation>,
    /// The phone call this session is (stored on its row), if it is one.
    pub call: Option<PhoneCall>,
}

#[cfg(test)]
impl SessionParams {
    /// A browser session of `alice` (16 kHz PCM in, the default voice out), resumed when `history` has
    /// messages: what the conversation's unit tests drive.
    pub fn for_tests(settings: SessionSettings, history: Vec<Remembered>) -> SessionParams {
        SessionParams {
            settings: Arc::new(settings),
            session_id: SessionId::generate(),
            user_id: "alice".parse().expect("a valid user id"),
            resumed: !history.is_empty(),
            history,
            audio_in: AudioIn { encoding: InputEncoding::Linear16, sample_rate: 16_000 },
            output_format: OutputFormat::ELEVENLABS_DEFAULT,
            peer: None,
            reservation: None,
            call: None,
        }
    }
}
