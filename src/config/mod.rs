//! parley's configuration: one typed [`Config`], read once from the environment at start-up and passed down
//! by value (or inside an `Arc`). No other code reads the environment.
//!
//! Every variable, with its default and meaning, is listed once in [`vars::VARS`]: the configuration reads
//! through that table (see [`Env::listed`]), `parley --help` prints it, and README's "Configuration" repeats it
//! for readers of the repository.

mod agents_source;
mod env;
pub mod vars;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;

use crate::audio::OutputFormat;
pub use agents_source::{AgentsSource, placeholders};
pub use env::{ConfigError, Env, Secret};

/// The original system's system prompt.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful assistant. Respond clearly and concisely, and do not use markdown formatting. Also give short responses.";

/// Everything parley needs to know about its deployment.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub encryption: EncryptionConfig,
    pub deepgram: DeepgramConfig,
    pub openai: OpenAiConfig,
    pub elevenlabs: ElevenLabsConfig,
    pub storage: StorageConfig,
    pub limits: Limits,
    pub turns: TurnTuning,
    pub auth: AuthConfig,
    pub twilio: TwilioConfig,
    /// `PARLEY_AGENTS_FILE`, read with the variables it names (the `agents` module validates it).
    pub agents_file: Option<AgentsSource>,
    /// True when the providers are parley's own emulators (`--emulate`); sessions tell the client so.
    pub emulated: bool,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: IpAddr,
    pub port: u16,
    pub workers: usize,
    /// On SIGINT/SIGTERM, how long live sessions get to finish before they are closed.
    pub shutdown_drain: Duration,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// PostgreSQL URL; `None` selects the embedded SQLite file in `data_dir`.
    pub postgres_url: Option<String>,
    pub pool_max: usize,
    pub data_dir: PathBuf,
    /// The most the write journal (writes waiting out a database outage) may hold on disk.
    pub journal_max_bytes: u64,
}

/// A 256-bit key; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyBytes(pub [u8; 32]);

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBytes(..)")
    }
}

#[derive(Debug, Clone)]
pub struct EncryptionConfig {
    /// The current key; `None` means "generate or reuse one in the data directory" (SQLite only).
    pub key: Option<KeyBytes>,
    /// The id stamped in front of every value sealed with `key`.
    pub key_id: u8,
    /// Retired keys, still accepted when reading older rows.
    pub old_keys: Vec<(u8, KeyBytes)>,
}

#[derive(Debug, Clone)]
pub struct DeepgramConfig {
    pub api_key: Option<Secret>,
    /// `ws(s)://host/v1`; an `http(s)` root is accepted and mapped to `ws(s)`.
    pub base_url: String,
    pub model: String,
    pub language: String,
    pub endpointing_ms: u32,
    pub utterance_end_ms: u32,
}

#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    pub api_key: Option<Secret>,
    pub base_url: String,
    pub model: String,
    pub system_prompt: String,
}

#[derive(Debug, Clone)]
pub struct ElevenLabsConfig {
    pub api_key: Option<Secret>,
    pub base_url: String,
    pub voice_id: String,
    pub model_id: String,
    pub output_format: OutputFormat,
    pub mime_type: String,
    pub use_websocket: bool,
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Google Cloud Storage bucket; `None` stores recordings under the data directory.
    pub gcs_bucket: Option<String>,
    pub gcs_credentials_path: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_sessions: usize,
    pub max_audio_frame_bytes: usize,
    pub max_text_frame_bytes: usize,
    pub history_max_chars: usize,
    pub max_sessions_per_user: usize,
    /// Session openings per client address: per second, and the burst.
    pub connect_rate: Rate,
    pub turns_per_minute: u32,
    /// REST requests per token or API key.
    pub rest_rate: Rate,
    /// A client that has not read for this long is closed (1008).
    pub client_write_timeout: Duration,
    /// A client that lets more than this much output wait unread is closed (1008).
    pub max_client_buffer_bytes: u64,
    /// A session with no audio and no message for this long is closed.
    pub idle_timeout: Duration,
    /// The longest a session may last.
    pub max_session: Duration,
    /// How long a request (its head and body) may take to arrive.
    pub request_timeout: Duration,
}

/// A token-bucket rate: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

/// Access control: who may open sessions and read data (see `crate::auth`).
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// Signs client tokens and audio links; `None` = generate one into the data directory (embedded only).
    pub secret: Option<Vec<u8>>,
    /// Retired secrets, still verifying.
    pub old_secrets: Vec<Vec<u8>>,
    /// Operator (server-to-server) keys.
    pub api_keys: Vec<Secret>,
    pub token_max_ttl: Duration,
    pub media_url_ttl: Duration,
    /// Browser origins allowed besides the server's own (`scheme://host[:port]`, lower case).
    pub allowed_origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

/// Phone calls through Twilio (see README "Phone calls").
#[derive(Debug, Clone, Default)]
pub struct TwilioConfig {
    /// Verifies Twilio's signatures; without it the phone routes are off (503).
    pub auth_token: Option<Secret>,
    /// `scheme://host[:port]` as Twilio reaches parley; `None` = taken from each request's host and scheme.
    pub public_url: Option<String>,
}

/// How turns are taken: when an utterance is complete and what interrupts the assistant.
#[derive(Debug, Clone)]
pub struct TurnTuning {
    pub commit_delay: Duration,
    pub finalize_timeout: Duration,
    pub barge_in_min_words: usize,
    pub barge_in_min_speech: Duration,
    pub stt_restart_after: Duration,
    /// Most audio kept for replay into a new speech-recognition connection.
    pub stt_replay: Duration,
    /// How far ahead of real time reply audio is sent.
    pub audio_lead: Duration,
    /// After a phone caller's last key press, when the digits become a user turn; `None` = keys ignored.
    pub dtmf_timeout: Option<Duration>,
    /// Start the reply's LLM request at `speech_final`, while the commit window runs (`PARLEY_PREEMPTIVE`).
    pub preemptive: bool,
    /// With `preemptive`, also start speech synthesis of the early reply's first pieces, holding its audio
    /// until the turn is committed (`PARLEY_PREEMPTIVE_TTS`).
    pub preemptive_tts: bool,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_env_with(&[])
    }

    /// Reads the process environment, with `overrides` (the command line's flags) taking precedence over the
    /// variables they name; their values are checked like any other.
    pub fn from_env_with(overrides: &[(&'static str, String)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| {
            overrides.iter().find(|(var, _)| *var == k).map(|(_, v)| v.clone()).or_else(|| std::env::var(k).ok())
        })
    }

    /// Reads configuration through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env::listed(lookup);
        let output_format: OutputFormat = env.parse(
            "ELEVENLABS_OUTPUT_FORMAT",
            OutputFormat::ELEVENLABS_DEFAULT,
            "an ElevenLabs output format such as mp3_44100_128 or pcm_16000",
        )?;
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let auth = parse_auth(&env)?;
        // Without a secret of its own, parley is a development server: it listens on loopback only.
        let default_host =
            if auth.secret.is_some() { IpAddr::from([0, 0, 0, 0]) } else { IpAddr::from([127, 0, 0, 1]) };
        Ok(Config {
            server: ServerConfig {
                host: env.parse("HOST", default_host, "an IP address such as 0.0.0.0")?,
                port: env.int_in("PORT", 8080, 0..=65535)? as u16,
                workers: env.int_in("PARLEY_WORKERS", cpus as u64, 1..=256)? as usize,
                shutdown_drain: Duration::from_secs(env.int_in("PARLEY_SHUTDOWN_DRAIN_SECS", 10, 0..=600)?),
            },
            database: DatabaseConfig {
                postgres_url: match env.first(&["PG_DB_URL", "DATABASE_URL"]) {
                    None => None,
                    Some(_) => {
                        let var = if env.get("PG_DB_URL").is_some() { "PG_DB_URL" } else { "DATABASE_URL" };
                        Some(env.url(var, "", &["postgres", "postgresql"])?)
                    }
                },
                pool_max: env.int_in("PARLEY_DB_POOL_MAX", 25, 1..=1000)? as usize,
                data_dir: PathBuf::from(env.string("PARLEY_DATA_DIR", "data")),
                journal_max_bytes: env.int_in("PARLEY_JOURNAL_MAX_BYTES", 64 << 20, 64 << 10..=1 << 40)?,
            },
            encryption: EncryptionConfig {
                key: match env.get("PARLEY_ENCRYPTION_KEY") {
                    None => None,
                    Some(raw) => Some(parse_key("PARLEY_ENCRYPTION_KEY", &raw)?),
                },
                key_id: env.int_in("PARLEY_ENCRYPTION_KEY_ID", 1, 1..=255)? as u8,
                old_keys: parse_old_keys(&env)?,
            },
            deepgram: DeepgramConfig {
                api_key: env.get("DEEPGRAM_API_KEY").map(Secret::new),
                base_url: env.url("DEEPGRAM_BASE_URL", "wss://api.deepgram.com/v1", &["ws", "wss", "http", "https"])?,
                model: env.string("DEEPGRAM_MODEL", "nova-3"),
                language: env.string("DEEPGRAM_LANGUAGE", "en-US"),
                endpointing_ms: env.int_in("DEEPGRAM_ENDPOINTING_MS", 300, 10..=10_000)? as u32,
                utterance_end_ms: env.int_in("DEEPGRAM_UTTERANCE_END_MS", 1000, 1000..=10_000)? as u32,
            },
            openai: OpenAiConfig {
                api_key: env.get("OPENAI_API_KEY").map(Secret::new),
                base_url: env.url("OPENAI_BASE_URL", "https://api.cerebras.ai/v1", &["http", "https"])?,
                model: env.string("OPENAI_MODEL", "llama-4-scout-17b-16e-instruct"),
                system_prompt: env.string("OPENAI_SYSTEM_PROMPT", DEFAULT_SYSTEM_PROMPT),
            },
            elevenlabs: ElevenLabsConfig {
                api_key: env.get("ELEVENLABS_API_KEY").map(Secret::new),
                base_url: env.url("ELEVENLABS_BASE_URL", "https://api.elevenlabs.io/v1", &["http", "https"])?,
                voice_id: env.string("ELEVENLABS_VOICE_ID", "ecp3DWciuUyW7BYM7II1"),
                model_id: env.string("ELEVENLABS_MODEL_ID", "eleven_flash_v2_5"),
                mime_type: env.string("ELEVENLABS_MIME_TYPE", &output_format.mime_type()),
                output_format,
                use_websocket: env.bool("ELEVENLABS_USE_WEBSOCKET", true)?,
            },
            storage: StorageConfig {
                gcs_bucket: env.first(&["FIREBASE_STORAGE_BUCKET", "GCS_BUCKET"]),
                gcs_credentials_path: env.get("FIREBASE_SERVICE_ACCOUNT_KEY_PATH").map(PathBuf::from),
            },
            limits: Limits {
                max_sessions: env.int_in("PARLEY_MAX_SESSIONS", 1000, 1..=1_000_000)? as usize,
                max_audio_frame_bytes: env.int_in("PARLEY_MAX_AUDIO_FRAME_BYTES", 65536, 1024..=16 << 20)? as usize,
                max_text_frame_bytes: env.int_in("PARLEY_MAX_TEXT_FRAME_BYTES", 16384, 256..=1 << 20)? as usize,
                history_max_chars: env.int_in("PARLEY_HISTORY_MAX_CHARS", 24000, 500..=10_000_000)? as usize,
                max_sessions_per_user: env.int_in("PARLEY_MAX_SESSIONS_PER_USER", 3, 1..=100_000)? as usize,
                connect_rate: parse_rate(&env, "PARLEY_CONNECT_RATE", "10/min", "PARLEY_CONNECT_BURST", 20)?,
                turns_per_minute: env.int_in("PARLEY_TURNS_PER_MINUTE", 20, 1..=10_000)? as u32,
                rest_rate: parse_rate(&env, "PARLEY_REST_RATE", "300/min", "PARLEY_REST_BURST", 60)?,
                client_write_timeout: Duration::from_secs(env.int_in(
                    "PARLEY_CLIENT_WRITE_TIMEOUT_SECS",
                    20,
                    2..=3600,
                )?),
                max_client_buffer_bytes: env.int_in("PARLEY_MAX_CLIENT_BUFFER_BYTES", 2 << 20, 64 << 10..=1 << 30)?,
                idle_timeout: Duration::from_secs(env.int_in("PARLEY_IDLE_TIMEOUT_SECS", 300, 1..=86_400)?),
                max_session: Duration::from_secs(env.int_in("PARLEY_MAX_SESSION_SECS", 4 * 3600, 1..=7 * 86_400)?),
                request_timeout: Duration::from_secs(env.int_in("PARLEY_REQUEST_TIMEOUT_SECS", 10, 1..=600)?),
            },
            turns: TurnTuning {
                commit_delay: Duration::from_millis(env.int_in("PARLEY_COMMIT_DELAY_MS", 200, 0..=5000)?),
                finalize_timeout: Duration::from_millis(env.int_in(
                    "PARLEY_FINALIZE_TIMEOUT_MS",
                    1500,
                    100..=10_000,
                )?),
                barge_in_min_words: env.int_in("PARLEY_BARGE_IN_MIN_WORDS", 1, 1..=20)? as usize,
                barge_in_min_speech: Duration::from_millis(env.int_in(
                    "PARLEY_BARGE_IN_MIN_SPEECH_MS",
                    500,
                    50..=10_000,
                )?),
                stt_restart_after: Duration::from_millis(env.int_in("PARLEY_STT_RESTART_MS", 10_000, 100..=600_000)?),
                stt_replay: Duration::from_secs(env.int_in("PARLEY_STT_REPLAY_SECS", 15, 0..=120)?),
                audio_lead: Duration::from_millis(env.int_in("PARLEY_AUDIO_LEAD_MS", 500, 50..=60_000)?),
                dtmf_timeout: match env.int_in("PARLEY_DTMF_TIMEOUT_MS", 1500, 0..=60_000)? {
                    0 => None,
                    ms => Some(Duration::from_millis(ms)),
                },
                preemptive: env.bool("PARLEY_PREEMPTIVE", true)?,
                preemptive_tts: env.bool("PARLEY_PREEMPTIVE_TTS", true)?,
            },
            auth,
            twilio: TwilioConfig {
                auth_token: env.get("TWILIO_AUTH_TOKEN").filter(|t| !t.trim().is_empty()).map(Secret::new),
                public_url: match env.get("PARLEY_PUBLIC_URL") {
                    None => None,
                    Some(_) => {
                        Some(env.url("PARLEY_PUBLIC_URL", "", &["http", "https"])?.trim_end_matches('/').to_string())
                    }
                },
            },
            agents_file: AgentsSource::read(&env)?,
            emulated: false,
        })
        .and_then(Config::validated)
    }

    /// Cross-field rules that no single variable can express.
    fn validated(self) -> Result<Config, ConfigError> {
        if self.auth.secret.is_none() && !self.server.host.is_loopback() {
            return Err(ConfigError::new(
                "PARLEY_AUTH_SECRET",
                format!(
                    "required to listen on {} (beyond this machine): without it parley is a development server \
                     for 127.0.0.1; generate one with `openssl rand -base64 32`",
                    self.server.host
                ),
            ));
        }
        if self.database.postgres_url.is_some() && self.encryption.key.is_none() {
            return Err(ConfigError::new(
                "PARLEY_ENCRYPTION_KEY",
                "required with PostgreSQL: message content is encrypted and a generated key would live on one \
                 machine only; generate one with `openssl rand -base64 32`",
            ));
        }
        if self.database.postgres_url.is_some() && self.auth.secret.is_none() {
            return Err(ConfigError::new(
                "PARLEY_AUTH_SECRET",
                "required with PostgreSQL: client tokens from every instance must verify everywhere; generate one \
                 with `openssl rand -base64 32`",
            ));
        }
        if self.storage.gcs_bucket.is_some() && self.storage.gcs_credentials_path.is_none() {
            return Err(ConfigError::new(
                "FIREBASE_SERVICE_ACCOUNT_KEY_PATH",
                "required when FIREBASE_STORAGE_BUCKET (or GCS_BUCKET) is set",
            ));
        }
        if self.encryption.old_keys.iter().any(|(id, _)| *id == self.encryption.key_id) {
            return Err(ConfigError::new(
                "PARLEY_ENCRYPTION_OLD_KEYS",
                format!("key id {} is also the current PARLEY_ENCRYPTION_KEY_ID", self.encryption.key_id),
            ));
        }
        Ok(self)
    }

    /// Things that do not stop start-up but that an operator should see in the log.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (var, key) in [
            ("DEEPGRAM_API_KEY", &self.deepgram.api_key),
            ("OPENAI_API_KEY", &self.openai.api_key),
            ("ELEVENLABS_API_KEY", &self.elevenlabs.api_key),
        ] {
            if key.is_none() {
                out.push(format!(
                    "{var} is not set: voice sessions will report an error when they need this provider \
                     (run with --emulate to use local emulators)"
                ));
            }
        }
        out
    }
}

fn parse_auth(env: &Env<'_>) -> Result<AuthConfig, ConfigError> {
    let secret = |var: &'static str, raw: &str| -> Result<Vec<u8>, ConfigError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .map_err(|_| ConfigError::new(var, "not valid base64 (generate one with `openssl rand -base64 32`)"))?;
        if bytes.len() < 32 {
            return Err(ConfigError::new(var, format!("must decode to at least 32 bytes, got {}", bytes.len())));
        }
        Ok(bytes)
    };
    let list = |var: &str| -> Vec<String> {
        env.get(var)
            .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    };
    let origins = list("PARLEY_ALLOWED_ORIGINS")
        .into_iter()
        .map(|o| {
            let url = url::Url::parse(&o)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| {
                    ConfigError::new(
                        "PARLEY_ALLOWED_ORIGINS",
                        format!("{o:?} is not an origin such as https://app.example"),
                    )
                })?;
            Ok(url.origin().ascii_serialization())
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    let proxies = list("PARLEY_TRUSTED_PROXIES")
        .into_iter()
        .map(|p| {
            p.parse::<IpAddr>().map_err(|_| {
                ConfigError::new("PARLEY_TRUSTED_PROXIES", format!("{p:?} is not an IP address such as 10.0.0.5"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AuthConfig {
        secret: env.get("PARLEY_AUTH_SECRET").map(|raw| secret("PARLEY_AUTH_SECRET", &raw)).transpose()?,
        old_secrets: list("PARLEY_AUTH_OLD_SECRETS")
            .iter()
            .map(|raw| secret("PARLEY_AUTH_OLD_SECRETS", raw))
            .collect::<Result<_, _>>()?,
        api_keys: list("PARLEY_API_KEYS").into_iter().map(Secret::new).collect(),
        token_max_ttl: Duration::from_secs(env.int_in("PARLEY_TOKEN_MAX_TTL_SECS", 3600, 60..=30 * 86_400)?),
        media_url_ttl: Duration::from_secs(env.int_in("PARLEY_MEDIA_URL_TTL_SECS", 3600, 60..=30 * 86_400)?),
        allowed_origins: origins,
        trusted_proxies: proxies,
    })
}

/// `N/sec`, `N/min` or `N/hour` in `var`, with the burst in `burst_var`.
fn parse_rate(
    env: &Env<'_>,
    var: &'static str,
    default: &str,
    burst_var: &'static str,
    default_burst: u64,
) -> Result<Rate, ConfigError> {
    let raw = env.string(var, default);
    let bad = || ConfigError::new(var, format!("expected a rate such as 10/min (or /sec, /hour), got {raw:?}"));
    let (count, unit) = raw.split_once('/').ok_or_else(bad)?;
    let count: f64 = count.trim().parse().ok().filter(|c: &f64| c.is_finite() && *c > 0.0).ok_or_else(bad)?;
    let seconds = match unit.trim() {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        _ => return Err(bad()),
    };
    let burst = env.int_in(burst_var, default_burst, 1..=1_000_000)? as u32;
    Ok(Rate { per_second: count / seconds, burst })
}

fn parse_key(var: &'static str, raw: &str) -> Result<KeyBytes, ConfigError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .map_err(|_| ConfigError::new(var, "not valid base64 (generate one with `openssl rand -base64 32`)"))?;
    let len = bytes.len();
    let key: [u8; 32] =
        bytes.try_into().map_err(|_| ConfigError::new(var, format!("must decode to exactly 32 bytes, got {len}")))?;
    Ok(KeyBytes(key))
}

fn parse_old_keys(env: &Env<'_>) -> Result<Vec<(u8, KeyBytes)>, ConfigError> {
    const VAR: &str = "PARLEY_ENCRYPTION_OLD_KEYS";
    let Some(raw) = env.get(VAR) else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let (id, key) = entry
                .split_once(':')
                .ok_or_else(|| ConfigError::new(VAR, "expected entries of the form id:base64key"))?;
            let id: u8 = id
                .trim()
                .parse()
                .ok()
                .filter(|id| *id >= 1)
                .ok_or_else(|| ConfigError::new(VAR, format!("key id must be 1-255, got {id:?}")))?;
            Ok((id, parse_key(VAR, key)?))
        })
        .collect()
}

#[cfg(test)]
mod tests;
