//! Label values known before anything happens, exported at zero from the first scrape, so a dashboard panel or
//! an alert (`increase(parley_provider_errors_total[5m]) > 0`) has a series to read before the first event
//! instead of "no data". Fixed values (outcomes, providers × failure kinds) are exported by [`export_fixed`]
//! when [`Metrics`] is built; values that come from the configuration (agents, their LLM fallbacks and tools)
//! by [`Metrics::export_known`] once start-up has loaded it.

use super::Metrics;
use crate::build_info;
use crate::providers::{FailureKind, Provider};

/// Outcomes of `tool_calls_total`.
pub const TOOL_OUTCOMES: [&str; 3] = ["ok", "error", "cancelled"];

/// The configuration's label values (the `default` agent included).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KnownLabels {
    /// Agent names, the `agent` label of the usage counters.
    pub agents: Vec<String>,
    /// (primary, fallback) LLM names of every agent's chain, the `from`/`to` of `llm_fallbacks_total`.
    pub fallbacks: Vec<(String, String)>,
    /// Names of the tools the agents offer.
    pub tools: Vec<String>,
}

/// Exports the label sets fixed in the code, and `build_info`.
pub(super) fn export_fixed(m: &Metrics) {
    m.build_info.with_label_values(&[build_info::VERSION, build_info::GIT_SHA]).set(1);
    for outcome in ["completed", "interrupted", "failed"] {
        m.turns_total.with_label_values(&[outcome]);
    }
    for provider in Provider::ALL {
        m.provider_reconnects_total.with_label_values(&[provider.label()]);
        for kind in FailureKind::ALL {
            m.provider_errors_total.with_label_values(&[provider.label(), kind.label()]);
        }
    }
    for outcome in ["appended", "replayed"] {
        m.journal_writes_total.with_label_values(&[outcome]);
    }
    for kind in ["session", "message", "activity", "recording", "link", "journal"] {
        m.persist_writes_lost_total.with_label_values(&[kind]);
    }
    for outcome in ["uploaded", "retried", "failed"] {
        m.recording_uploads_total.with_label_values(&[outcome]);
    }
    for outcome in ["registered", "quarantined", "removed"] {
        m.recordings_orphaned_total.with_label_values(&[outcome]);
    }
}

impl Metrics {
    /// Exports the configuration's label sets at zero (idempotent: a series already counting keeps its value).
    pub fn export_known(&self, known: &KnownLabels) {
        for agent in &known.agents {
            self.usage_stt_seconds_total.with_label_values(&[agent]);
            self.usage_tts_characters_total.with_label_values(&[agent]);
            for kind in ["prompt", "completion"] {
                self.usage_llm_tokens_total.with_label_values(&[agent, kind]);
            }
        }
        for (from, to) in &known.fallbacks {
            self.llm_fallbacks_total.with_label_values(&[from, to]);
        }
        for tool in &known.tools {
            for outcome in TOOL_OUTCOMES {
                self.tool_calls_total.with_label_values(&[tool, outcome]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_label_sets_are_exported_at_zero() {
        let m = Metrics::new().unwrap();
        m.export_known(&KnownLabels {
            agents: vec!["support".into()],
            fallbacks: vec![("fast".into(), "backup".into())],
            tools: vec!["lookup_order".into()],
        });
        let text = m.render(None);
        for sample in [
            r#"parley_provider_errors_total{kind="rate_limited",provider="elevenlabs"} 0"#,
            r#"parley_provider_errors_total{kind="not_configured",provider="deepgram"} 0"#,
            r#"parley_usage_llm_tokens_total{agent="support",kind="completion"} 0"#,
            r#"parley_usage_stt_seconds_total{agent="support"} 0"#,
            r#"parley_usage_tts_characters_total{agent="support"} 0"#,
            r#"parley_llm_fallbacks_total{from="fast",to="backup"} 0"#,
            r#"parley_tool_calls_total{outcome="cancelled",tool="lookup_order"} 0"#,
            r#"parley_database_up 0"#,
        ] {
            assert!(text.contains(sample), "missing {sample} in\n{text}");
        }
        let info =
            format!(r#"parley_build_info{{git_sha="{}",version="{}"}} 1"#, build_info::GIT_SHA, build_info::VERSION);
        assert!(text.contains(&info), "missing {info} in\n{text}");
        assert_eq!(text.matches("parley_provider_errors_total{").count(), 3 * FailureKind::ALL.len());
    }
}
