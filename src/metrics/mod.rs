//! Prometheus metrics: one [`Metrics`] value, built once at start-up and shared, owning its own
//! `prometheus::Registry` (no global default registry). Everything parley measures is declared here, with
//! the namespace `parley` and base units, so `/metrics` shows every family from the first scrape.
//!
//! Per-stage latency histograms (seconds) share [`LATENCY_BUCKETS`]: 50 ms steps through the range where a
//! cascaded voice agent lives (0.1–1 s per stage), then coarser steps to 10 s for outliers.

pub mod alloc;
mod http;
mod known;
pub mod system;

use std::sync::Mutex;
use std::time::Instant;

use prometheus::{
    CounterVec, Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

pub use http::track_requests;
pub use known::{KnownLabels, TOOL_OUTCOMES};
pub use system::{SystemSampler, SystemSnapshot};

use crate::db::PoolStatus;
use crate::providers::{Provider, ProviderError};

/// Buckets of the per-stage latency histograms, in seconds.
pub const LATENCY_BUCKETS: &[f64] =
    &[0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0];

/// Buckets of HTTP request durations, in seconds.
const HTTP_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Declares [`Metrics`] once: each family is a field whose name is the metric's name (under the `parley`
/// namespace) and whose doc comment is its help text; labels and buckets follow the type. Construction and
/// registration are generated, so a family is named in one place only (the crates.io pattern).
macro_rules! metrics {
    ($( $(#[doc = $doc:literal])+ $field:ident: $ty:ident $([$($label:literal),+])? $(buckets $buckets:expr)? ),+ $(,)?) => {
        /// Every metric parley exports.
        pub struct Metrics {
            registry: Registry,
            started: Instant,
            sampler: Mutex<SystemSampler>,
            last_collection: Mutex<Option<chrono::DateTime<chrono::Utc>>>,
            $( $(#[doc = $doc])+ pub $field: $ty, )+
        }

        impl Metrics {
            fn declare(registry: Registry) -> Result<Metrics, prometheus::Error> {
                $(
                    let $field = <$ty as Family>::build(
                        stringify!($field),
                        concat!($($doc),+).trim(),
                        &[$($($label),+)?],
                        None $(.or(Some($buckets)))?,
                    )?;
                    registry.register(Box::new($field.clone()))?;
                )+
                Ok(Metrics {
                    registry,
                    started: Instant::now(),
                    sampler: Mutex::new(SystemSampler::default()),
                    last_collection: Mutex::new(None),
                    $( $field, )+
                })
            }
        }
    };
}

/// A metric type the [`metrics!`] macro can build.
trait Family: prometheus::core::Collector + Clone + Sized + 'static {
    fn build(name: &str, help: &str, labels: &[&str], buckets: Option<&[f64]>) -> Result<Self, prometheus::Error>;
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace("parley")
}

fn histogram_opts(name: &str, help: &str, buckets: Option<&[f64]>) -> HistogramOpts {
    let o = HistogramOpts::new(name, help).namespace("parley");
    match buckets {
        Some(b) => o.buckets(b.to_vec()),
        None => o,
    }
}

impl Family for IntCounter {
    fn build(name: &str, help: &str, _: &[&str], _: Option<&[f64]>) -> Result<Self, prometheus::Error> {
        IntCounter::with_opts(opts(name, help))
    }
}

impl Family for IntGauge {
    fn build(name: &str, help: &str, _: &[&str], _: Option<&[f64]>) -> Result<Self, prometheus::Error> {
        IntGauge::with_opts(opts(name, help))
    }
}

impl Family for IntCounterVec {
    fn build(name: &str, help: &str, labels: &[&str], _: Option<&[f64]>) -> Result<Self, prometheus::Error> {
        IntCounterVec::new(opts(name, help), labels)
    }
}

impl Family for CounterVec {
    fn build(name: &str, help: &str, labels: &[&str], _: Option<&[f64]>) -> Result<Self, prometheus::Error> {
        CounterVec::new(opts(name, help), labels)
    }
}

impl Family for IntGaugeVec {
    fn build(name: &str, help: &str, labels: &[&str], _: Option<&[f64]>) -> Result<Self, prometheus::Error> {
        IntGaugeVec::new(opts(name, help), labels)
    }
}

impl Family for Histogram {
    fn build(name: &str, help: &str, _: &[&str], buckets: Option<&[f64]>) -> Result<Self, prometheus::Error> {
        Histogram::with_opts(histogram_opts(name, help, buckets))
    }
}

impl Family for HistogramVec {
    fn build(name: &str, help: &str, labels: &[&str], buckets: Option<&[f64]>) -> Result<Self, prometheus::Error> {
        HistogramVec::new(histogram_opts(name, help, buckets), labels)
    }
}

metrics! {
    /// Always 1; the labels say which build this instance runs (version, git_sha).
    build_info: IntGaugeVec["version", "git_sha"],
    /// 1 when the database answered a ping at this scrape, 0 when it did not (within 2 s).
    database_up: IntGauge,
    /// Live WebSocket sessions.
    connections_active: IntGauge,
    /// WebSocket sessions accepted since start.
    connections_total: IntCounter,
    /// HTTP requests by route pattern, method and status.
    http_requests_total: IntCounterVec["route", "method", "status"],
    /// HTTP request durations by route pattern.
    http_request_duration_seconds: HistogramVec["route"] buckets HTTP_BUCKETS,
    /// Database pool connections by state (max, open, idle, waiting), refreshed at scrape.
    db_pool_connections: IntGaugeVec["state"],

    /// End of the user's speech to the committed transcript.
    stt_finalization_seconds: Histogram buckets LATENCY_BUCKETS,
    /// LLM request sent to the first streamed token.
    llm_first_token_seconds: Histogram buckets LATENCY_BUCKETS,
    /// First text sent to TTS to the first audio byte received.
    tts_first_byte_seconds: Histogram buckets LATENCY_BUCKETS,
    /// End of the user's speech to the first audio frame sent to the client (what the user waits for).
    first_audio_seconds: Histogram buckets LATENCY_BUCKETS,
    /// End of the user's speech to the first audio the listener heard (from the client's playback
    /// acknowledgements): voice-to-voice latency at the listener.
    voice_to_voice_seconds: Histogram buckets LATENCY_BUCKETS,

    /// Assistant turns by outcome (completed, interrupted, failed).
    turns_total: IntCounterVec["outcome"],
    /// Assistant turns cut short by the user.
    interruptions_total: IntCounter,
    /// Replies started early (at `speech_final`, PARLEY_PREEMPTIVE) that became the turn.
    preemptive_used_total: IntCounter,
    /// Replies started early that were thrown away unheard and unstored: the user went on speaking, or the
    /// conversation changed before the commit.
    preemptive_discarded_total: IntCounter,
    /// Characters sent to speech synthesis for early replies that were thrown away (PARLEY_PREEMPTIVE_TTS): billed
    /// by the provider, never heard.
    preemptive_discarded_tts_characters_total: IntCounter,
    /// Turns answered by a fallback LLM, by the primary's name and the one that answered.
    llm_fallbacks_total: IntCounterVec["from", "to"],
    /// Tool calls by tool and outcome (ok, error, cancelled).
    tool_calls_total: IntCounterVec["tool", "outcome"],
    /// Seconds of user audio sent to speech recognition, by agent.
    usage_stt_seconds_total: CounterVec["agent"],
    /// LLM tokens by agent and kind (prompt, completion); estimated when a provider reports none.
    usage_llm_tokens_total: IntCounterVec["agent", "kind"],
    /// Characters sent to speech synthesis, by agent.
    usage_tts_characters_total: IntCounterVec["agent"],
    /// Upstream reconnects by provider.
    provider_reconnects_total: IntCounterVec["provider"],
    /// Upstream failures by provider and kind (auth, rate_limited, server, connect, protocol, ...).
    provider_errors_total: IntCounterVec["provider", "kind"],
    /// Database writes lost, by kind (session, message, activity, recording, link; journal for a journal
    /// record that could not be read back): the journal was full or could not be written, or the database
    /// refused the write.
    persist_writes_lost_total: IntCounterVec["kind"],
    /// Bytes in the write journal (writes waiting for the database); PARLEY_JOURNAL_MAX_BYTES bounds it.
    journal_bytes: IntGauge,
    /// Writes in the journal waiting for the database.
    journal_pending_writes: IntGauge,
    /// Journaled writes by outcome (appended, replayed).
    journal_writes_total: IntCounterVec["outcome"],
    /// Database writes retried after a transient failure.
    persist_retries_total: IntCounter,
    /// Transactions in which the sessions' persisters committed their writes: on PostgreSQL one for each write
    /// on its own or batch of a session's queued writes (a turn's message, recording and link); on the embedded
    /// database one for each group commit, which holds several sessions' batches and the uploader's marks.
    persist_transactions_total: IntCounter,
    /// Database writes queued but not yet done, across sessions.
    persist_pending_writes: IntGauge,
    /// Recordings waiting to be stored, including ones waiting to retry.
    recordings_pending: IntGauge,
    /// Recording storage attempts by outcome (uploaded, retried, failed).
    recording_uploads_total: IntCounterVec["outcome"],
    /// Recordings that could not be written or registered.
    recordings_lost_total: IntCounter,
    /// Spool files found at start-up with no recordings row, by what became of them (registered, quarantined,
    /// removed).
    recordings_orphaned_total: IntCounterVec["outcome"],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let m = Metrics::declare(Registry::new())?;
        // Label values known up front are exported at zero from the first scrape.
        known::export_fixed(&m);
        // Standard process_* families (CPU seconds, resident memory, open fds, threads, start time).
        m.registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        Ok(m)
    }

    /// Counts a provider failure under its provider and kind.
    pub fn provider_error(&self, error: &ProviderError) {
        self.provider_errors_total.with_label_values(&[error.provider.label(), error.kind.label()]).inc();
    }

    /// Counts a reconnect to `provider`.
    pub fn provider_reconnect(&self, provider: Provider) {
        self.provider_reconnects_total.with_label_values(&[provider.label()]).inc();
    }

    /// The Prometheus text exposition, with the pool gauges refreshed first.
    pub fn render(&self, pool: Option<PoolStatus>) -> String {
        if let Some(p) = pool {
            for (state, v) in [("max", p.max_size), ("open", p.size), ("idle", p.available), ("waiting", p.waiting)] {
                self.db_pool_connections.with_label_values(&[state]).set(v as i64);
            }
        }
        let mut out = Vec::new();
        let families = self.registry.gather();
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            log::error!("cannot encode metrics: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    pub fn uptime_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Samples the operating-system figures and records when that happened.
    pub fn sample_system(&self) -> (SystemSnapshot, chrono::DateTime<chrono::Utc>) {
        let snapshot = self.sampler.lock().map(|mut s| s.sample()).unwrap_or_default();
        let now = chrono::Utc::now();
        if let Ok(mut last) = self.last_collection.lock() {
            *last = Some(now);
        }
        (snapshot, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exported_from_the_first_scrape() {
        let m = Metrics::new().unwrap();
        m.first_audio_seconds.observe(0.7);
        let text = m.render(Some(PoolStatus { max_size: 25, size: 1, available: 1, waiting: 0 }));
        for family in [
            "parley_connections_active",
            "parley_connections_total",
            "parley_db_pool_connections{state=\"max\"} 25",
            "parley_stt_finalization_seconds_bucket",
            "parley_llm_first_token_seconds_bucket",
            "parley_tts_first_byte_seconds_bucket",
            "parley_first_audio_seconds_bucket{le=\"0.75\"} 1",
            "parley_recordings_orphaned_total{outcome=\"quarantined\"} 0",
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
        ] {
            assert!(text.contains(family), "missing {family} in\n{text}");
        }
    }
}
