//! What the three provider clients share: one error type that says which provider failed, how, and whether
//! trying again can help (so policy and auth failures never loop), and the backoff schedule for retries.
//! Retries happen only before the first byte of a reply; a failure mid-stream ends the turn instead of
//! duplicating output.

use std::time::Duration;

/// Which upstream service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Deepgram,
    OpenAi,
    ElevenLabs,
}

impl Provider {
    /// Metrics label and error-code prefix.
    pub fn label(self) -> &'static str {
        match self {
            Provider::Deepgram => "deepgram",
            Provider::OpenAi => "openai",
            Provider::ElevenLabs => "elevenlabs",
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

    /// A sentence for the person using the client.
    pub fn user_message(&self) -> String {
        let what = self.provider.role();
        let hint = match self.kind {
            FailureKind::NotConfigured => "it is not configured on the server",
            FailureKind::Auth => "the server's API key was refused",
            FailureKind::BadRequest => "the server's settings for it were refused",
            FailureKind::Policy => "the provider refused the request",
            FailureKind::RateLimited => "the provider is busy; try again in a moment",
            FailureKind::Server => "the provider had an error; try again",
            FailureKind::Connect => "the provider could not be reached; try again",
            FailureKind::Timeout => "the provider did not answer in time; try again",
            FailureKind::Truncated => "the reply was cut off; try again",
            FailureKind::Protocol => "the provider's reply could not be understood",
        };
        format!("{} is unavailable: {hint} ({})", capitalise(what), self.message)
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

/// Exponential backoff: `base · 2^attempt`, capped, with up to 20 % jitter so sessions that failed together
/// do not retry together.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(16)).min(cap);
    let jitter = (exp.as_millis() as u64 * u64::from(jitter_percent())) / 100;
    exp + Duration::from_millis(jitter)
}

fn jitter_percent() -> u32 {
    let mut b = [0u8; 1];
    // A failed read only loses the jitter.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u32::from(b[0]) % 21
}

/// A `Retry-After` header value (seconds, possibly fractional) as a delay, if short enough to wait for.
pub fn retry_after(value: Option<&str>, max: Duration) -> Option<Duration> {
    let secs: f64 = value?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs)).filter(|d| *d <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn backoff_grows_and_stays_capped() {
        let b = |n| backoff(n, Duration::from_millis(100), Duration::from_secs(2));
        assert!(b(0) >= Duration::from_millis(100) && b(0) <= Duration::from_millis(120));
        assert!(b(3) >= Duration::from_millis(800));
        assert!(b(30) <= Duration::from_millis(2400));
    }

    #[test]
    fn retry_after_is_honoured_only_when_short() {
        assert_eq!(retry_after(Some("1.5"), Duration::from_secs(5)), Some(Duration::from_millis(1500)));
        assert_eq!(retry_after(Some("60"), Duration::from_secs(5)), None);
        assert_eq!(retry_after(Some("soon"), Duration::from_secs(5)), None);
        assert_eq!(retry_after(None, Duration::from_secs(5)), None);
    }
}
