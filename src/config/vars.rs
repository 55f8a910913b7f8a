//! Every environment variable parley reads, in one table: the configuration reads its variables through it
//! ([`super::Env`] refuses, in debug builds, a name that is not here), `parley --help` renders it, and the tests
//! check that what it documents as a default is what an unset variable gives. Add a variable here first.

use super::DEFAULT_SYSTEM_PROMPT;

/// An environment variable and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var {
    pub name: &'static str,
    /// What an unset (or empty) variable means.
    pub fallback: Fallback,
    /// What it is for, in a line.
    pub meaning: &'static str,
}

/// What parley does when a variable is not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Nothing: the feature it configures is off (or the alias is not used).
    Unset,
    /// This literal value: setting the variable to it changes nothing (a test holds the code to that).
    Value(&'static str),
    /// A value that depends on something else, described in words.
    Described(&'static str),
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fallback::Unset => f.write_str("unset"),
            Fallback::Value(v) => write!(f, "{v:?}"),
            Fallback::Described(d) => f.write_str(d),
        }
    }
}

/// The logger's filter variable (env_logger reads it; see `telemetry`).
pub const LOG_FILTER: &str = "RUST_LOG";

/// Every variable, in the order `--help` and the README list them.
pub const VARS: &[Var] = &[
    Var { name: "PORT", fallback: Fallback::Value("8080"), meaning: "HTTP port (0 picks a free one)" },
    Var {
        name: "HOST",
        fallback: Fallback::Described("0.0.0.0, or 127.0.0.1 without PARLEY_AUTH_SECRET"),
        meaning: "address to bind",
    },
    Var {
        name: "PARLEY_WORKERS",
        fallback: Fallback::Described("number of CPUs"),
        meaning: "actix-web worker threads",
    },
    Var {
        name: "PARLEY_SHUTDOWN_DRAIN_SECS",
        fallback: Fallback::Value("10"),
        meaning: "on SIGINT/SIGTERM, how long live sessions get to finish",
    },
    Var {
        name: "PG_DB_URL",
        fallback: Fallback::Unset,
        meaning: "PostgreSQL URL; unset = embedded SQLite in the data directory",
    },
    Var { name: "DATABASE_URL", fallback: Fallback::Unset, meaning: "alias of PG_DB_URL, read when that is unset" },
    Var { name: "PARLEY_DB_POOL_MAX", fallback: Fallback::Value("25"), meaning: "maximum database connections" },
    Var {
        name: "PARLEY_DATA_DIR",
        fallback: Fallback::Value("data"),
        meaning: "SQLite file, generated key, local recordings, write journal (relative to the working directory)",
    },
    Var {
        name: "PARLEY_JOURNAL_MAX_BYTES",
        fallback: Fallback::Value("67108864"),
        meaning: "most the write journal holds while the database is unavailable",
    },
    Var {
        name: "PARLEY_ENCRYPTION_KEY",
        fallback: Fallback::Described("generated (SQLite only)"),
        meaning: "base64 of 32 bytes: AES-256-GCM key for message content",
    },
    Var {
        name: "PARLEY_ENCRYPTION_KEY_ID",
        fallback: Fallback::Value("1"),
        meaning: "1–255: the id stamped on values sealed with the key above",
    },
    Var {
        name: "PARLEY_ENCRYPTION_OLD_KEYS",
        fallback: Fallback::Unset,
        meaning: "id:base64,id:base64: retired keys still accepted for reading",
    },
    Var {
        name: "DEEPGRAM_API_KEY",
        fallback: Fallback::Unset,
        meaning: "Deepgram key (sessions that need STT fail clearly without it)",
    },
    Var {
        name: "DEEPGRAM_BASE_URL",
        fallback: Fallback::Value("wss://api.deepgram.com/v1"),
        meaning: "Deepgram API root (/listen is appended)",
    },
    Var { name: "DEEPGRAM_MODEL", fallback: Fallback::Value("nova-3"), meaning: "STT model" },
    Var { name: "DEEPGRAM_LANGUAGE", fallback: Fallback::Value("en-US"), meaning: "STT language" },
    Var {
        name: "DEEPGRAM_ENDPOINTING_MS",
        fallback: Fallback::Value("300"),
        meaning: "silence before Deepgram marks speech_final",
    },
    Var {
        name: "DEEPGRAM_UTTERANCE_END_MS",
        fallback: Fallback::Value("1000"),
        meaning: "gap after the last word before UtteranceEnd",
    },
    Var { name: "OPENAI_API_KEY", fallback: Fallback::Unset, meaning: "key for the OpenAI-compatible LLM" },
    Var {
        name: "OPENAI_BASE_URL",
        fallback: Fallback::Value("https://api.cerebras.ai/v1"),
        meaning: "LLM API root (/chat/completions is appended)",
    },
    Var { name: "OPENAI_MODEL", fallback: Fallback::Value("llama-4-scout-17b-16e-instruct"), meaning: "LLM model" },
    Var {
        name: "OPENAI_SYSTEM_PROMPT",
        fallback: Fallback::Value(DEFAULT_SYSTEM_PROMPT),
        meaning: "system prompt of every conversation",
    },
    Var { name: "ELEVENLABS_API_KEY", fallback: Fallback::Unset, meaning: "ElevenLabs key" },
    Var {
        name: "ELEVENLABS_BASE_URL",
        fallback: Fallback::Value("https://api.elevenlabs.io/v1"),
        meaning: "ElevenLabs API root",
    },
    Var { name: "ELEVENLABS_VOICE_ID", fallback: Fallback::Value("ecp3DWciuUyW7BYM7II1"), meaning: "voice" },
    Var { name: "ELEVENLABS_MODEL_ID", fallback: Fallback::Value("eleven_flash_v2_5"), meaning: "TTS model" },
    Var {
        name: "ELEVENLABS_OUTPUT_FORMAT",
        fallback: Fallback::Value("mp3_44100_128"),
        meaning: "audio format sent to the client",
    },
    Var {
        name: "ELEVENLABS_MIME_TYPE",
        fallback: Fallback::Described("derived from the format"),
        meaning: "MIME type announced to the client",
    },
    Var {
        name: "ELEVENLABS_USE_WEBSOCKET",
        fallback: Fallback::Value("true"),
        meaning: "false = HTTP streaming per sentence",
    },
    Var {
        name: "FIREBASE_STORAGE_BUCKET",
        fallback: Fallback::Unset,
        meaning: "Google Cloud Storage bucket for recordings",
    },
    Var {
        name: "GCS_BUCKET",
        fallback: Fallback::Unset,
        meaning: "alias of FIREBASE_STORAGE_BUCKET, read when that is unset",
    },
    Var {
        name: "FIREBASE_SERVICE_ACCOUNT_KEY_PATH",
        fallback: Fallback::Unset,
        meaning: "service-account JSON for that bucket",
    },
    Var {
        name: "PARLEY_MAX_SESSIONS",
        fallback: Fallback::Value("1000"),
        meaning: "concurrent WebSocket sessions before new ones are refused",
    },
    Var {
        name: "PARLEY_MAX_AUDIO_FRAME_BYTES",
        fallback: Fallback::Value("65536"),
        meaning: "largest binary frame a client may send",
    },
    Var {
        name: "PARLEY_MAX_TEXT_FRAME_BYTES",
        fallback: Fallback::Value("16384"),
        meaning: "largest text frame a client may send",
    },
    Var {
        name: "PARLEY_HISTORY_MAX_CHARS",
        fallback: Fallback::Value("24000"),
        meaning: "conversation memory budget sent to the LLM (oldest turns go first)",
    },
    Var {
        name: "PARLEY_COMMIT_DELAY_MS",
        fallback: Fallback::Value("200"),
        meaning: "silence after Deepgram's speech_final before the utterance is committed",
    },
    Var {
        name: "PARLEY_PREEMPTIVE",
        fallback: Fallback::Value("true"),
        meaning: "ask the LLM at speech_final, during the commit window (a discarded early reply is never heard or stored)",
    },
    Var {
        name: "PARLEY_PREEMPTIVE_TTS",
        fallback: Fallback::Value("true"),
        meaning: "with PARLEY_PREEMPTIVE, also synthesize the early reply's first two pieces during the commit window, holding the audio until the commit",
    },
    Var {
        name: "PARLEY_FINALIZE_TIMEOUT_MS",
        fallback: Fallback::Value("1500"),
        meaning: "after closeMicrophone, how long to wait for Deepgram's finalize reply",
    },
    Var {
        name: "PARLEY_BARGE_IN_MIN_WORDS",
        fallback: Fallback::Value("1"),
        meaning: "words of user speech that interrupt the assistant",
    },
    Var {
        name: "PARLEY_BARGE_IN_MIN_SPEECH_MS",
        fallback: Fallback::Value("500"),
        meaning: "or this much continuous user speech",
    },
    Var {
        name: "PARLEY_STT_RESTART_MS",
        fallback: Fallback::Value("10000"),
        meaning: "after speech recognition gave up on an outage, when new audio restarts it",
    },
    Var {
        name: "PARLEY_STT_REPLAY_SECS",
        fallback: Fallback::Value("15"),
        meaning: "audio kept since Deepgram's last final result, replayed into a new connection after a drop",
    },
    Var {
        name: "PARLEY_AUDIO_LEAD_MS",
        fallback: Fallback::Value("500"),
        meaning: "how far ahead of real time reply audio is sent to the client",
    },
    Var {
        name: "PARLEY_AUTH_SECRET",
        fallback: Fallback::Described("generated (embedded only)"),
        meaning: "base64 of at least 32 bytes: signs client tokens and audio links",
    },
    Var {
        name: "PARLEY_AUTH_OLD_SECRETS",
        fallback: Fallback::Unset,
        meaning: "comma-separated base64 secrets still accepted for verifying (rotation)",
    },
    Var {
        name: "PARLEY_API_KEYS",
        fallback: Fallback::Unset,
        meaning: "comma-separated operator keys (server-to-server: minting tokens, any user's data)",
    },
    Var {
        name: "PARLEY_TOKEN_MAX_TTL_SECS",
        fallback: Fallback::Value("3600"),
        meaning: "longest lifetime of a token minted by POST /api/tokens",
    },
    Var {
        name: "PARLEY_MEDIA_URL_TTL_SECS",
        fallback: Fallback::Value("3600"),
        meaning: "lifetime of the signed audio links in history and recordings",
    },
    Var {
        name: "PARLEY_ALLOWED_ORIGINS",
        fallback: Fallback::Described("the server's own origin"),
        meaning: "comma-separated browser origins allowed to open sessions and call the API",
    },
    Var {
        name: "PARLEY_TRUSTED_PROXIES",
        fallback: Fallback::Unset,
        meaning: "comma-separated proxy addresses whose X-Forwarded-For names the client",
    },
    Var {
        name: "PARLEY_MAX_SESSIONS_PER_USER",
        fallback: Fallback::Value("3"),
        meaning: "concurrent sessions of one user",
    },
    Var {
        name: "PARLEY_CONNECT_RATE",
        fallback: Fallback::Value("10/min"),
        meaning: "session openings per client address (token bucket; N/sec, N/min or N/hour)",
    },
    Var { name: "PARLEY_CONNECT_BURST", fallback: Fallback::Value("20"), meaning: "burst of PARLEY_CONNECT_RATE" },
    Var {
        name: "PARLEY_TURNS_PER_MINUTE",
        fallback: Fallback::Value("20"),
        meaning: "assistant turns one session may start per minute",
    },
    Var {
        name: "PARLEY_REST_RATE",
        fallback: Fallback::Value("300/min"),
        meaning: "REST requests per token or API key (N/sec, N/min or N/hour)",
    },
    Var { name: "PARLEY_REST_BURST", fallback: Fallback::Value("60"), meaning: "burst of PARLEY_REST_RATE" },
    Var {
        name: "PARLEY_CLIENT_WRITE_TIMEOUT_SECS",
        fallback: Fallback::Value("20"),
        meaning: "a client that has not read for this long is closed (1008)",
    },
    Var {
        name: "PARLEY_MAX_CLIENT_BUFFER_BYTES",
        fallback: Fallback::Value("2097152"),
        meaning: "a client that lets more output than this wait unread is closed (1008)",
    },
    Var {
        name: "PARLEY_IDLE_TIMEOUT_SECS",
        fallback: Fallback::Value("300"),
        meaning: "a session with no audio and no message for this long is closed",
    },
    Var {
        name: "PARLEY_MAX_SESSION_SECS",
        fallback: Fallback::Value("14400"),
        meaning: "the longest a session may last",
    },
    Var {
        name: "PARLEY_REQUEST_TIMEOUT_SECS",
        fallback: Fallback::Value("10"),
        meaning: "how long a request's head and body may take to arrive (408 after)",
    },
    Var {
        name: "TWILIO_AUTH_TOKEN",
        fallback: Fallback::Unset,
        meaning: "Twilio account Auth Token: verifies X-Twilio-Signature; unset = phone routes answer 503",
    },
    Var {
        name: "PARLEY_PUBLIC_URL",
        fallback: Fallback::Described("derived from the request"),
        meaning: "https://host[:port] as Twilio sees parley (behind a proxy), for signatures and the stream URL",
    },
    Var {
        name: "PARLEY_DTMF_TIMEOUT_MS",
        fallback: Fallback::Value("1500"),
        meaning: "after the caller's last key press, when the digits become a user turn; 0 = keys ignored",
    },
    Var {
        name: "PARLEY_AGENTS_FILE",
        fallback: Fallback::Unset,
        meaning: "TOML file of agent profiles (see README \"Agents\"); unset = one default agent from the variables above",
    },
    Var {
        name: LOG_FILTER,
        fallback: Fallback::Value("info"),
        meaning: "log filter (env_logger syntax); read by the logger, not by Config",
    },
];

/// The variable named `name`, if parley reads it.
pub fn find(name: &str) -> Option<&'static Var> {
    VARS.iter().find(|v| v.name == name)
}

/// The table as `--help` prints it: one block per variable, its default, then its meaning indented.
pub fn help_text() -> String {
    let mut out = String::from("Environment variables (flags above override PORT, HOST and PARLEY_DATA_DIR):\n");
    for var in VARS {
        out.push_str(&format!("  {}  [default: {}]\n          {}\n", var.name, var.fallback, var.meaning));
    }
    out
}
