//! The one retry policy of parley: everything that retries (the LLM and TTS HTTP requests, provider socket
//! reconnects, database writes, recording uploads) asks a [`RetryPolicy`] whether and when to try again.
//!
//! A policy is exponential backoff with jitter (so sessions that failed together do not retry together),
//! bounded by a number of attempts and/or a deadline, that honours a server's `Retry-After` when it asks for
//! a wait the deadline allows and gives up when it asks for more. Whether a failure may pass at all is the
//! failure's own call ([`Retryable`]): auth and policy refusals never loop. `Retry-After` is parsed by
//! [`parse_retry_after`], which no header value can make panic.
//!
//! Two ways to use it: [`RetryPolicy::run`] drives an async operation to success or a [`Failure`]; actors that
//! schedule their own attempts (socket reconnects, the uploader) ask [`RetryPolicy::next_delay`].

use std::future::Future;
use std::time::{Duration, SystemTime};

/// Whether a failure may pass if the same thing is tried again.
pub trait Retryable {
    fn retryable(&self) -> bool;
}

/// Exponential backoff: `first · 2^attempt`, capped at `max`, plus up to 20 % jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait before retry number `attempt` (0 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.first.saturating_mul(1u32 << attempt.min(16)).min(self.max);
        exp.saturating_add((exp / 100).saturating_mul(jitter_percent()))
    }
}

fn jitter_percent() -> u32 {
    let mut b = [0u8; 1];
    // A failed read only loses the jitter.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u32::from(b[0]) % 21
}

/// When to try again and when to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub backoff: Backoff,
    /// Attempts in all, the first included; `None` = only the deadline limits them.
    pub max_attempts: Option<u32>,
    /// Time from the first attempt after which no new attempt starts; `None` = only the count limits them.
    pub deadline: Option<Duration>,
    /// The longest server-requested wait (`Retry-After`) worth honouring; a longer one ends the retries.
    pub max_retry_after: Duration,
}

/// One failed attempt, as the operation reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptError<E> {
    pub error: E,
    /// The server asked to wait this long before the next attempt.
    pub retry_after: Option<Duration>,
    /// Output had already been delivered (a token, an audio byte): trying again would repeat it, so this
    /// attempt is final whatever the error.
    pub output_started: bool,
}

impl<E> AttemptError<E> {
    /// A failure before any output, with no server-requested wait.
    pub fn new(error: E) -> AttemptError<E> {
        AttemptError { error, retry_after: None, output_started: false }
    }

    pub fn after_output(error: E) -> AttemptError<E> {
        AttemptError { error, retry_after: None, output_started: true }
    }

    pub fn with_retry_after(mut self, wait: Option<Duration>) -> AttemptError<E> {
        self.retry_after = wait;
        self
    }
}

impl<E> From<E> for AttemptError<E> {
    fn from(error: E) -> Self {
        AttemptError::new(error)
    }
}

/// The operation finally failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure<E> {
    pub error: E,
    /// Attempts made, the last included.
    pub attempts: u32,
    /// Output had been delivered before the failure.
    pub output_started: bool,
}

impl RetryPolicy {
    /// After `attempts` failed attempts (the first being 1), `elapsed` since the first started, the wait before
    /// the next attempt; `None` to give up.
    pub fn next_delay(
        &self,
        attempts: u32,
        elapsed: Duration,
        retryable: bool,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if !retryable || self.max_attempts.is_some_and(|max| attempts >= max) {
            return None;
        }
        let delay = match retry_after {
            Some(wait) if wait > self.max_retry_after => return None,
            Some(wait) => wait,
            None => self.backoff.delay(attempts.saturating_sub(1)),
        };
        match self.deadline {
            Some(deadline) if elapsed.saturating_add(delay) >= deadline => None,
            _ => Some(delay),
        }
    }

    /// Runs `attempt` (given the attempt number, from 1) until it succeeds or the policy gives up.
    /// `on_retry` hears about each failure that is retried and the wait before the next attempt.
    pub async fn run<T, E, F, Fut>(
        &self,
        mut attempt: F,
        mut on_retry: impl FnMut(&E, u32, Duration),
    ) -> Result<T, Failure<E>>
    where
        E: Retryable,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, AttemptError<E>>>,
    {
        let started = tokio::time::Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let e = match attempt(attempts).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let retryable = e.error.retryable() && !e.output_started;
            match self.next_delay(attempts, started.elapsed(), retryable, e.retry_after) {
                Some(delay) => {
                    on_retry(&e.error, attempts, delay);
                    tokio::time::sleep(delay).await;
                }
                None => return Err(Failure { error: e.error, attempts, output_started: e.output_started }),
            }
        }
    }
}

/// A `Retry-After` header value as a wait: delay-seconds (integer or, as some providers send, fractional) or
/// an HTTP-date, relative to `now`. Negative values and dates in the past mean "now"; values too large for a
/// `Duration` are [`Duration::MAX`]; anything unreadable (including `NaN`) is `None`. Never panics.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_nan() {
            return None;
        }
        return Some(Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(date.timestamp()).ok()?))?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// [`parse_retry_after`] of an HTTP response's `Retry-After` (or OpenAI's `retry-after-ms`) header.
pub fn retry_after_header(headers: &actix_http::header::HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| !v.is_nan()) {
        return Some(Duration::try_from_secs_f64(ms.max(0.0) / 1000.0).unwrap_or(Duration::MAX));
    }
    parse_retry_after(text("retry-after")?, SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct E(bool);
    impl Retryable for E {
        fn retryable(&self) -> bool {
            self.0
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            backoff: Backoff { first: Duration::from_millis(10), max: Duration::from_millis(40) },
            max_attempts: Some(3),
            deadline: None,
            max_retry_after: Duration::from_secs(5),
        }
    }

    #[test]
    fn backoff_grows_and_stays_capped_with_at_most_a_fifth_of_jitter() {
        let b = Backoff { first: Duration::from_millis(100), max: Duration::from_secs(2) };
        assert!(b.delay(0) >= Duration::from_millis(100) && b.delay(0) <= Duration::from_millis(120));
        assert!(b.delay(3) >= Duration::from_millis(800));
        assert!(b.delay(30) <= Duration::from_millis(2400));
        assert!(b.delay(u32::MAX) <= Duration::from_millis(2400));
        let huge = Backoff { first: Duration::MAX, max: Duration::MAX };
        assert_eq!(huge.delay(5), Duration::MAX, "saturates instead of overflowing");
    }

    #[test]
    fn retry_after_values_never_panic_and_mean_what_they_say() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(parse_retry_after("1.5", now), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after(" 2 ", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("1e20", now), Some(Duration::MAX));
        assert_eq!(parse_retry_after("inf", now), Some(Duration::MAX));
        assert_eq!(parse_retry_after("-1", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-inf", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("NaN", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
        // HTTP-dates: in the past means now; in the future, the time until then.
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Some(Duration::ZERO));
        let later = chrono::DateTime::from_timestamp(1_800_000_090, 0).unwrap().to_rfc2822();
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(90)));
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now).map(|d| d > Duration::from_secs(1 << 37)),
            Some(true)
        );
    }

    #[test]
    fn a_server_wait_is_honoured_when_short_and_ends_the_retries_when_long() {
        let p = policy();
        assert_eq!(p.next_delay(1, Duration::ZERO, true, Some(Duration::from_secs(2))), Some(Duration::from_secs(2)));
        assert_eq!(p.next_delay(1, Duration::ZERO, true, Some(Duration::MAX)), None);
        assert_eq!(p.next_delay(1, Duration::ZERO, false, None), None, "not retryable");
        assert_eq!(p.next_delay(3, Duration::ZERO, true, None), None, "attempts used up");
        let d = RetryPolicy { deadline: Some(Duration::from_secs(1)), max_attempts: None, ..p };
        assert!(d.next_delay(50, Duration::from_millis(500), true, None).is_some());
        assert_eq!(d.next_delay(2, Duration::from_millis(999), true, None), None, "past the deadline");
    }

    #[actix::test]
    async fn run_retries_what_may_pass_and_stops_on_what_cannot_or_after_output() {
        let p = policy();
        let mut seen = Vec::new();
        let ok = p
            .run(|n| async move { if n < 3 { Err(AttemptError::new(E(true))) } else { Ok(n) } }, |_, n, _| seen.push(n))
            .await;
        assert_eq!(ok, Ok(3));
        assert_eq!(seen, [1, 2]);

        let refused = p.run(|_| async { Err::<(), _>(AttemptError::new(E(false))) }, |_, _, _| {}).await;
        assert_eq!(refused, Err(Failure { error: E(false), attempts: 1, output_started: false }));

        let cut = p.run(|_| async { Err::<(), _>(AttemptError::after_output(E(true))) }, |_, _, _| {}).await;
        assert_eq!(cut, Err(Failure { error: E(true), attempts: 1, output_started: true }));

        let exhausted = p.run(|_| async { Err::<(), _>(AttemptError::new(E(true))) }, |_, _, _| {}).await;
        assert_eq!(exhausted.map_err(|f| f.attempts), Err(3));
    }
}
