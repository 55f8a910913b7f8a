//! What the three provider clients share: one error type that says which provider failed, how, and whether
//! trying again can help (so policy and auth failures never loop). When to try again is `crate::retry`'s
//! business; retries happen only before the first byte of a reply, since a failure mid-stream ends the turn
//! instead of duplicating output.

/// Which upstream service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Deepgram,
    OpenAi,
    ElevenLabs,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Deepgram, Provider::OpenAi, Provider::ElevenLabs];

    /// Metrics label and error-code prefix.
    pub fn label(self) -> &'static str {
        match self {
            Provider::Deepgram => "deepgram",
            Provider::OpenAi => "openai",
            Provider::ElevenLabs => "elevenlabs",
        }
    }

    /// The variable holding parley's key for it.
    pub fn key_variable(self) -> &'static str {
        match self {
            Provider::Deepgram => "DEEPGRAM_API_KEY",
            Provider::OpenAi => "OPENAI_API_KEY",
            Provider::ElevenLabs => "ELEVENLABS_API_KEY",
        }
    }

    /// What the provider does for the user, for messages.
    pub fn role(self) -> &'static str {
        match self {
            Provider::Deepgram => "speech recognition",
            Provider::OpenAi => "the language model",
            Provider::ElevenLabs => "speech synthesis",
        }
    }
}

/// How an upstream call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No API key configured.
    NotConfigured,
    /// 401/403: the key is wrong or lacks permission.
    Auth,
    /// 400/404/422: the request (model, voice, parameters) is wrong.
    BadRequest,
    /// A policy close (WebSocket 1008) or other refusal that repeating will not fix.
    Policy,
    /// 429: too many requests or too much concurrency.
    RateLimited,
    /// 5xx, or a 1011 close.
    Server,
    /// Could not connect, or the connection dropped (1006).
    Connect,
    /// No answer in time.
    Timeout,
    /// The reply ended early (no `[DONE]`, a cut body).
    Truncated,
    /// The reply could not be understood.
    Protocol,
}

impl FailureKind {
    /// Every kind, so `provider_errors_total` can export each provider × kind at zero from the start.
    pub const ALL: [FailureKind; 10] = [
        FailureKind::NotConfigured,
        FailureKind::Auth,
        FailureKind::BadRequest,
        FailureKind::Policy,
        FailureKind::RateLimited,
        FailureKind::Server,
        FailureKind::Connect,
        FailureKind::Timeout,
        FailureKind::Truncated,
        FailureKind::Protocol,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FailureKind::NotConfigured => "not_configured",
            FailureKind::Auth => "auth",
            FailureKind::BadRequest => "bad_request",
            FailureKind::Policy => "policy",
            FailureKind::RateLimited => "rate_limited",
            FailureKind::Server => "server",
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::Truncated => "truncated",
            FailureKind::Protocol => "protocol",
        }
    }

    /// Whether the same request may succeed later.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            FailureKind::RateLimited
                | FailureKind::Server
                | FailureKind::Connect
                | FailureKind::Timeout
                | FailureKind::Truncated
        )
    }

    /// The kind an HTTP status (of a refused request or upgrade) stands for.
    pub fn from_status(status: u16) -> FailureKind {
        match status {
            401..=403 => FailureKind::Auth,
            408 => FailureKind::Timeout,
            429 => FailureKind::RateLimited,
            500..=599 => FailureKind::Server,
            _ => FailureKind::BadRequest,
        }
    }

    /// The kind a WebSocket close code stands for.
    pub fn from_close_code(code: u16) -> FailureKind {
        match code {
            1008 => FailureKind::Policy,
            1011..=1014 => FailureKind::Server,
            1002 | 1003 | 1007 | 1009 => FailureKind::Protocol,
            _ => FailureKind::Connect,
        }
    }
}

/// A failed call to a provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} failed ({}): {message}", provider.label(), kind.label())]
pub struct ProviderError {
    pub provider: Provider,
    pub kind: FailureKind,
    pub message: String,
}

impl crate::retry::Retryable for ProviderError {
    fn retryable(&self) -> bool {
        self.kind.retryable()
    }
}

impl ProviderError {
    pub fn new(provider: Provider, kind: FailureKind, message: impl Into<String>) -> ProviderError {
        ProviderError { provider, kind, message: message.into() }
    }

    pub fn not_configured(provider: Provider, variable: &str) -> ProviderError {
        ProviderError::new(provider, FailureKind::NotConfigured, format!("{variable} is not set on the server"))
    }

    pub fn retryable(&self) -> bool {
        self.kind.retryable()
    }

    /// The stable `code` of the client error event, e.g. `openai_rate_limited`.
    pub fn code(&self) -> String {
        format!("{}_{}", self.provider.label(), self.kind.label())
    }

    /// A sentence for the person using the client, written by parley: the provider's own message (which can
    /// hold key fragments and URLs) goes to the server log only.
    pub fn user_message(&self) -> String {
        let what = self.provider.role();
        let var = self.provider.key_variable();
        let hint = match self.kind {
            FailureKind::NotConfigured => format!("the server has no key for it; the operator must set {var}"),
            FailureKind::Auth => format!("it refused parley's API key; the operator must fix {var}"),
            FailureKind::BadRequest => {
                "it refused parley's settings (model, voice or language); the operator must check them".into()
            }
            FailureKind::Policy => "the provider refused the request".into(),
            FailureKind::RateLimited => "the provider is busy; try again in a moment".into(),
            FailureKind::Server => "the provider had an error; try again".into(),
            FailureKind::Connect => "the provider could not be reached; try again".into(),
            FailureKind::Timeout => "the provider did not answer in time; try again".into(),
            FailureKind::Truncated => "the reply was cut off; try again".into(),
            FailureKind::Protocol => "the provider's reply could not be understood".into(),
        };
        format!("{} is unavailable: {hint}.", capitalise(what))
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_kinds_all_lists_every_kind_once() {
        // A new variant breaks this match until it is added here and to ALL.
        let index = |k: FailureKind| match k {
            FailureKind::NotConfigured => 0,
            FailureKind::Auth => 1,
            FailureKind::BadRequest => 2,
            FailureKind::Policy => 3,
            FailureKind::RateLimited => 4,
            FailureKind::Server => 5,
            FailureKind::Connect => 6,
            FailureKind::Timeout => 7,
            FailureKind::Truncated => 8,
            FailureKind::Protocol => 9,
        };
        let indexes: Vec<usize> = FailureKind::ALL.iter().map(|k| index(*k)).collect();
        assert_eq!(indexes, (0..FailureKind::ALL.len()).collect::<Vec<_>>());
    }

    #[test]
    fn auth_and_policy_never_retry_but_busy_and_broken_do() {
        assert!(!FailureKind::from_status(401).retryable());
        assert!(!FailureKind::from_status(403).retryable());
        assert!(!FailureKind::from_status(422).retryable());
        assert!(!FailureKind::from_close_code(1008).retryable());
        assert!(FailureKind::from_status(429).retryable());
        assert!(FailureKind::from_status(503).retryable());
        assert!(FailureKind::from_close_code(1011).retryable());
        assert!(FailureKind::from_close_code(1006).retryable());
    }

    #[test]
    fn errors_carry_a_stable_code_and_a_readable_message() {
        let e = ProviderError::new(Provider::OpenAi, FailureKind::RateLimited, "429 rate_limit_exceeded");
        assert_eq!(e.code(), "openai_rate_limited");
        assert!(e.user_message().starts_with("The language model is unavailable"), "{}", e.user_message());
        assert!(e.retryable());
        let leaky = ProviderError::new(
            Provider::OpenAi,
            FailureKind::Auth,
            "Incorrect API key provided: sk-fake***1234. You can find your API key at https://platform.openai.com/",
        );
        let sentence = leaky.user_message();
        assert_eq!(
            sentence,
            "The language model is unavailable: it refused parley's API key; the operator must fix OPENAI_API_KEY."
        );
        assert!(!sentence.contains("sk-") && !sentence.contains("https://"));
    }
}
