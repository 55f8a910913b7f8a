//! Prometheus metrics: one [`Metrics`] value, built once at start-up and shared, owning its own
//! `prometheus::Registry` (no global default registry). Everything parley measures is declared here, with
//! the namespace `parley` and base units, so `/metrics` shows every family from the first scrape.
//!
//! Per-stage latency histograms (seconds) share [`LATENCY_BUCKETS`]: 50 ms steps through the range where a
//! cascaded voice agent lives (0.1–1 s per stage), then coarser steps to 10 s for outliers.

pub mod alloc;
mod http;
pub mod system;

use std::sync::Mutex;
use std::time::Instant;

use prometheus::{
    Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub use http::track_requests;
pub use system::{SystemSampler, SystemSnapshot};

use crate::db::PoolStatus;

/// Buckets of the per-stage latency histograms, in seconds.
pub const LATENCY_BUCKETS: &[f64] =
    &[0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0];

/// Buckets of HTTP request durations, in seconds.
const HTTP_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Every metric parley exports.
pub struct Metrics {
    registry: Registry,
    started: Instant,
    sampler: Mutex<SystemSampler>,
    last_collection: Mutex<Option<chrono::DateTime<chrono::Utc>>>,

    /// Live WebSocket sessions.
    pub connections_active: IntGauge,
    /// WebSocket sessions accepted since start.
    pub connections_total: IntCounter,
    /// HTTP requests by route pattern, method and status.
    pub http_requests: IntCounterVec,
    /// HTTP request durations by route pattern.
    pub http_request_duration: HistogramVec,
    /// Database pool connections by state (`max`, `open`, `idle`, `waiting`), refreshed at scrape.
    db_pool: IntGaugeVec,

    /// End of the user's speech → utterance committed (text known).
    pub stt_finalization: Histogram,
    /// LLM request sent → first token.
    pub llm_first_token: Histogram,
    /// First text sent to TTS → first audio byte back.
    pub tts_first_byte: Histogram,
    /// End of the user's speech → first audio frame sent to the client (what the user waits for).
    pub first_audio: Histogram,

    /// Assistant turns by outcome (`completed`, `interrupted`, `failed`).
    pub turns: IntCounterVec,
    /// Assistant turns cut short by the user.
    pub interruptions: IntCounter,
    /// Upstream reconnects by provider (`deepgram`, `elevenlabs`).
    pub provider_reconnects: IntCounterVec,
    /// Upstream failures by provider and kind (`auth`, `rate_limited`, `server`, `connect`, `protocol`, ...).
    pub provider_errors: IntCounterVec,
    /// Database writes of sessions given up on after retries, by kind (`session`, `message`, `activity`,
    /// `recording`, `link`).
    pub persist_lost: IntCounterVec,
    /// Database writes retried after a transient failure.
    pub persist_retries: IntCounter,
    /// Database writes queued but not yet done, across sessions.
    pub persist_pending: IntGauge,
    /// Recordings waiting to be stored (including ones waiting to retry).
    pub recordings_pending: IntGauge,
    /// Storage attempts by outcome (`uploaded`, `retried`, `failed`).
    pub recording_uploads: IntCounterVec,
    /// Recordings that could not be written or registered.
    pub recordings_lost: IntCounter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace("parley")
}

fn latency(name: &str, help: &str) -> HistogramOpts {
    HistogramOpts::new(name, help).namespace("parley").buckets(LATENCY_BUCKETS.to_vec())
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let m = Metrics {
            started: Instant::now(),
            sampler: Mutex::new(SystemSampler::default()),
            last_collection: Mutex::new(None),
            connections_active: IntGauge::with_opts(opts("connections_active", "Live WebSocket sessions."))?,
            connections_total: IntCounter::with_opts(opts(
                "connections_total",
                "WebSocket sessions accepted since start.",
            ))?,
            http_requests: IntCounterVec::new(
                opts("http_requests_total", "HTTP requests by route pattern, method and status."),
                &["route", "method", "status"],
            )?,
            http_request_duration: HistogramVec::new(
                HistogramOpts::new("http_request_duration_seconds", "HTTP request durations by route pattern.")
                    .namespace("parley")
                    .buckets(HTTP_BUCKETS.to_vec()),
                &["route"],
            )?,
            db_pool: IntGaugeVec::new(
                opts("db_pool_connections", "Database pool connections by state (max, open, idle, waiting)."),
                &["state"],
            )?,
            stt_finalization: Histogram::with_opts(latency(
                "stt_finalization_seconds",
                "End of the user's speech to the committed transcript.",
            ))?,
            llm_first_token: Histogram::with_opts(latency(
                "llm_first_token_seconds",
                "LLM request sent to the first streamed token.",
            ))?,
            tts_first_byte: Histogram::with_opts(latency(
                "tts_first_byte_seconds",
                "First text sent to TTS to the first audio byte received.",
            ))?,
            first_audio: Histogram::with_opts(latency(
                "first_audio_seconds",
                "End of the user's speech to the first audio frame sent to the client.",
            ))?,
            turns: IntCounterVec::new(opts("turns_total", "Assistant turns by outcome."), &["outcome"])?,
            interruptions: IntCounter::with_opts(opts(
                "interruptions_total",
                "Assistant turns cut short by the user.",
            ))?,
            provider_reconnects: IntCounterVec::new(
                opts("provider_reconnects_total", "Upstream reconnects by provider."),
                &["provider"],
            )?,
            provider_errors: IntCounterVec::new(
                opts("provider_errors_total", "Upstream failures by provider and kind."),
                &["provider", "kind"],
            )?,
            persist_lost: IntCounterVec::new(
                opts("persist_writes_lost_total", "Database writes given up on after retries, by kind."),
                &["kind"],
            )?,
            persist_retries: IntCounter::with_opts(opts(
                "persist_retries_total",
                "Database writes retried after a transient failure.",
            ))?,
            persist_pending: IntGauge::with_opts(opts(
                "persist_pending_writes",
                "Database writes queued but not yet done, across sessions.",
            ))?,
            recordings_pending: IntGauge::with_opts(opts(
                "recordings_pending",
                "Recordings waiting to be stored, including ones waiting to retry.",
            ))?,
            recording_uploads: IntCounterVec::new(
                opts("recording_uploads_total", "Recording storage attempts by outcome."),
                &["outcome"],
            )?,
            recordings_lost: IntCounter::with_opts(opts(
                "recordings_lost_total",
                "Recordings that could not be written or registered.",
            ))?,
            registry,
        };
        m.register_all()?;
        Ok(m)
    }

    fn register_all(&self) -> Result<(), prometheus::Error> {
        let r = &self.registry;
        r.register(Box::new(self.connections_active.clone()))?;
        r.register(Box::new(self.connections_total.clone()))?;
        r.register(Box::new(self.http_requests.clone()))?;
        r.register(Box::new(self.http_request_duration.clone()))?;
        r.register(Box::new(self.db_pool.clone()))?;
        r.register(Box::new(self.stt_finalization.clone()))?;
        r.register(Box::new(self.llm_first_token.clone()))?;
        r.register(Box::new(self.tts_first_byte.clone()))?;
        r.register(Box::new(self.first_audio.clone()))?;
        r.register(Box::new(self.turns.clone()))?;
        r.register(Box::new(self.interruptions.clone()))?;
        r.register(Box::new(self.provider_reconnects.clone()))?;
        r.register(Box::new(self.provider_errors.clone()))?;
        r.register(Box::new(self.persist_lost.clone()))?;
        r.register(Box::new(self.persist_retries.clone()))?;
        r.register(Box::new(self.persist_pending.clone()))?;
        r.register(Box::new(self.recordings_pending.clone()))?;
        r.register(Box::new(self.recording_uploads.clone()))?;
        r.register(Box::new(self.recordings_lost.clone()))?;
        // Label values known up front are exported at zero from the first scrape.
        for outcome in ["completed", "interrupted", "failed"] {
            self.turns.with_label_values(&[outcome]);
        }
        for provider in ["deepgram", "elevenlabs", "openai"] {
            self.provider_reconnects.with_label_values(&[provider]);
        }
        for kind in ["session", "message", "activity", "recording", "link"] {
            self.persist_lost.with_label_values(&[kind]);
        }
        for outcome in ["uploaded", "retried", "failed"] {
            self.recording_uploads.with_label_values(&[outcome]);
        }
        // Standard process_* families (CPU seconds, resident memory, open fds, threads, start time).
        r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        Ok(())
    }

    /// Registers a collector declared elsewhere (session and recorder counters).
    pub fn register(&self, c: Box<dyn prometheus::core::Collector>) -> Result<(), prometheus::Error> {
        self.registry.register(c)
    }

    /// The Prometheus text exposition, with the pool gauges refreshed first.
    pub fn render(&self, pool: Option<PoolStatus>) -> String {
        if let Some(p) = pool {
            for (state, v) in [("max", p.max_size), ("open", p.size), ("idle", p.available), ("waiting", p.waiting)] {
                self.db_pool.with_label_values(&[state]).set(v as i64);
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
        m.first_audio.observe(0.7);
        let text = m.render(Some(PoolStatus { max_size: 25, size: 1, available: 1, waiting: 0 }));
        for family in [
            "parley_connections_active",
            "parley_connections_total",
            "parley_db_pool_connections{state=\"max\"} 25",
            "parley_stt_finalization_seconds_bucket",
            "parley_llm_first_token_seconds_bucket",
            "parley_tts_first_byte_seconds_bucket",
            "parley_first_audio_seconds_bucket{le=\"0.75\"} 1",
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
        ] {
            assert!(text.contains(family), "missing {family} in\n{text}");
        }
    }
}
