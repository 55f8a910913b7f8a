//! The files under deploy/ against a running parley: every metric the Grafana dashboard and the Prometheus
//! alert rules name is exported by a real instance from its first scrape (label sets known in advance
//! included, at zero), the dashboard uses the provisioned datasource and covers what an operator watches,
//! `parley_database_up` follows the database, the rules pass `promtool check rules` and their own unit
//! tests (`promtool test rules`), every supervisor's stop timeout leaves room for parley's drain, and the
//! systemd unit passes `systemd-analyze verify`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::helpers::postgres::OwnServer;
use crate::helpers::{TEST_KEY, TestDb, prometheus, promtool, spawn_app_with};

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(deploy(path)).unwrap_or_else(|e| panic!("deploy/{path}: {e}"))
}

/// Every PromQL expression of the dashboard: panel targets and template variable queries.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push(target["expr"].as_str().expect("a target's expr").to_string());
        }
    }
    for var in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(q) = var["query"]["query"].as_str() {
            out.push(q.to_string());
        }
    }
    out
}

/// The `expr:` of every rule in alerts.yml (one line each, as the file is written).
fn alert_exprs(rules: &str) -> Vec<String> {
    rules.lines().filter_map(|l| l.trim().strip_prefix("expr:")).map(|e| e.trim().to_string()).collect()
}

/// parley's own and the process metric names an expression uses.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let word_start = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let rest = &expr[i..];
        if word_start && (rest.starts_with("parley_") || rest.starts_with("process_")) {
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            names.insert(rest[..end].to_string());
            i += end;
        } else {
            i += 1;
        }
    }
    names
}

/// Whether `/metrics` has at least one sample of `name` (a histogram's `_bucket` included).
fn has_sample(text: &str, name: &str) -> bool {
    text.lines().any(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' ')))
}

/// Families whose labels only requests create (route, method, status).
const AFTER_A_REQUEST: &[&str] = &["parley_http_requests_total", "parley_http_request_duration_seconds_bucket"];

const AGENTS: &str = r#"
[agents.support]
system_prompt = "You help with orders."
tools = ["lookup_order"]
[agents.support.llm]
name = "fast"
model = "m1"
[[agents.support.llm_fallback]]
name = "backup"
model = "m2"

[tools.lookup_order]
description = "Look up an order by its id."
url = "http://127.0.0.1:9/order"
parameters = { type = "object", properties = { order_id = { type = "string" } }, required = ["order_id"] }
"#;

#[actix_web::test]
async fn every_metric_the_dashboard_and_alerts_name_is_exported_from_the_first_scrape() {
    let dashboard: Value = serde_json::from_str(&read("grafana/dashboards/parley.json")).expect("dashboard JSON");
    let rules = read("prometheus/alerts.yml");
    let dir = tempfile::tempdir().unwrap();
    let agents = dir.path().join("agents.toml");
    std::fs::write(&agents, AGENTS).unwrap();
    let app = spawn_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_AGENTS_FILE".into(), agents.display().to_string());
    })
    .await;
    // The first scrape, before any session or request but this one.
    let (status, _, text) = app.get_text("/metrics").await;
    assert_eq!(status, 200);
    let families = prometheus::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    // HTTP request counts are labelled by what was requested, unknown before the first request: the second
    // scrape has them (the first one counted).
    let (_, _, second) = app.get_text("/metrics").await;
    let second_families = prometheus::parse(&second).unwrap_or_else(|e| panic!("{e}\n{second}"));

    let dashboard_names: BTreeSet<String> = dashboard_exprs(&dashboard).iter().flat_map(|e| metric_names(e)).collect();
    let alert_names: BTreeSet<String> = alert_exprs(&rules).iter().flat_map(|e| metric_names(e)).collect();
    assert!(alert_exprs(&rules).len() >= 8, "the rules' expressions were not found");
    for name in dashboard_names.iter().chain(&alert_names) {
        let (families, text) =
            if AFTER_A_REQUEST.contains(&name.as_str()) { (&second_families, &second) } else { (&families, &text) };
        let family = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| families.get(*f).is_some_and(|t| t == "histogram")))
            .unwrap_or(name);
        assert!(families.contains_key(family), "{name} is named by deploy/ but parley exports no {family}:\n{text}");
        assert!(has_sample(text, name), "{name} has no sample on the first scrape:\n{text}");
    }

    // What an operator watches, per issue 15: each is on the dashboard.
    for wanted in [
        "parley_connections_active",
        "parley_turns_total",
        "parley_first_audio_seconds_bucket",
        "parley_voice_to_voice_seconds_bucket",
        "parley_stt_finalization_seconds_bucket",
        "parley_llm_first_token_seconds_bucket",
        "parley_tts_first_byte_seconds_bucket",
        "parley_interruptions_total",
        "parley_provider_errors_total",
        "parley_llm_fallbacks_total",
        "parley_usage_stt_seconds_total",
        "parley_usage_llm_tokens_total",
        "parley_usage_tts_characters_total",
        "parley_db_pool_connections",
        "parley_database_up",
        "parley_persist_writes_lost_total",
        "parley_recordings_pending",
        "parley_recordings_lost_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "parley_build_info",
    ] {
        assert!(dashboard_names.contains(wanted), "the dashboard shows no {wanted}");
    }
    for wanted in [
        "parley_first_audio_seconds_bucket",
        "parley_provider_errors_total",
        "parley_persist_writes_lost_total",
        "parley_recordings_lost_total",
        "parley_database_up",
    ] {
        assert!(alert_names.contains(wanted), "no alert rule reads {wanted}");
    }

    // Label sets known in advance are there at zero: every provider × kind, the agents file's fallback,
    // tool and agents; and which build this is.
    for sample in [
        r#"parley_provider_errors_total{kind="auth",provider="deepgram"} 0"#,
        r#"parley_provider_errors_total{kind="server",provider="elevenlabs"} 0"#,
        r#"parley_provider_errors_total{kind="timeout",provider="openai"} 0"#,
        r#"parley_llm_fallbacks_total{from="fast",to="backup"} 0"#,
        r#"parley_tool_calls_total{outcome="error",tool="lookup_order"} 0"#,
        r#"parley_usage_llm_tokens_total{agent="support",kind="prompt"} 0"#,
        r#"parley_usage_tts_characters_total{agent="default"} 0"#,
        r#"parley_persist_writes_lost_total{kind="message"} 0"#,
        r#"parley_database_up 1"#,
    ] {
        assert!(text.contains(sample), "missing {sample} in\n{text}");
    }
    let info = format!(
        r#"parley_build_info{{git_sha="{}",version="{}"}} 1"#,
        parley::build_info::GIT_SHA,
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&info), "missing {info} in\n{text}");
    app.stop().await.unwrap();
}

#[test]
fn the_dashboard_reads_the_provisioned_datasource_and_its_panels_are_whole() {
    let dashboard: Value = serde_json::from_str(&read("grafana/dashboards/parley.json")).expect("dashboard JSON");
    let datasources = read("grafana/provisioning/datasources/prometheus.yaml");
    let uid = datasources
        .lines()
        .find_map(|l| l.trim().strip_prefix("uid:"))
        .map(str::trim)
        .expect("the provisioned datasource has a uid");
    let provider = read("grafana/provisioning/dashboards/parley.yaml");
    assert!(provider.contains("path: /var/lib/grafana/dashboards"), "{provider}");
    let compose = read("compose/compose.yaml");
    assert!(compose.contains("../grafana/dashboards:/var/lib/grafana/dashboards"), "compose mounts the dashboards");

    assert_eq!(dashboard["uid"], "parley");
    let mut ids = BTreeSet::new();
    let mut panels = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        let id = panel["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "panel id {id} twice");
        assert!(panel["gridPos"]["w"].as_u64().is_some_and(|w| (1..=24).contains(&w)), "{panel}");
        if panel["type"] == "row" {
            continue;
        }
        panels += 1;
        assert_eq!(panel["datasource"]["uid"], uid, "panel {} reads another datasource", panel["title"]);
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for t in targets {
            assert_eq!(t["datasource"]["uid"], uid, "{t}");
            let expr = t["expr"].as_str().unwrap();
            assert!(expr.matches('(').count() == expr.matches(')').count(), "unbalanced: {expr}");
        }
    }
    assert!(panels >= 20, "{panels} panels");
}

#[actix_web::test]
async fn database_up_is_zero_while_the_database_is_down() {
    let pg = OwnServer::start().await;
    let app = spawn_app_with(TestDb::Sqlite, |env| {
        env.insert("PG_DB_URL".into(), pg.url("parley"));
        env.insert("PARLEY_ENCRYPTION_KEY".into(), TEST_KEY.into());
    })
    .await;
    let scrape = |app: &crate::helpers::TestApp| {
        let url = app.url("/metrics");
        let client = app.client.clone();
        async move {
            let mut res = client.get(url).send().await.expect("scrape");
            String::from_utf8(res.body().limit(8 << 20).await.unwrap().to_vec()).unwrap()
        }
    };
    assert_eq!(prometheus::sample(&scrape(&app).await, "parley_database_up"), Some(1.0));
    pg.stop();
    assert_eq!(prometheus::sample(&scrape(&app).await, "parley_database_up"), Some(0.0));
    pg.resume();
    assert_eq!(prometheus::sample(&scrape(&app).await, "parley_database_up"), Some(1.0));
    app.stop().await.unwrap();
}

fn run_promtool(args: &[&str]) {
    let promtool = match promtool::promtool() {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIPPED: promtool {args:?} not run: {why}");
            return;
        }
    };
    let out = Command::new(&promtool).args(args).current_dir(deploy("prometheus")).output().expect("promtool runs");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?} failed:\n{said}");
    eprintln!("promtool {args:?}:\n{said}");
}

#[test]
fn alert_rules_and_scrape_config_pass_promtool() {
    run_promtool(&["check", "rules", "alerts.yml"]);
    run_promtool(&["check", "config", "prometheus.yml"]);
}

#[test]
fn alert_rules_fire_on_their_unit_test_series() {
    run_promtool(&["test", "rules", "alerts.test.yml"]);
}

/// The number after `key` (`key: 60`, `key=60s`, `KEY=30` inside a line), in the first line that has it.
fn number_after(text: &str, key: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.contains(key) && !l.trim_start().starts_with('#'))
        .unwrap_or_else(|| panic!("no {key}"));
    let rest = &line[line.find(key).unwrap() + key.len()..];
    let digits: String = rest.chars().skip_while(|c| !c.is_ascii_digit()).take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("no number after {key} in {line:?}"))
}

#[test]
fn every_stop_timeout_leaves_room_for_the_drain_and_the_last_writes() {
    let beyond = parley::startup::STOP_BEYOND_DRAIN.as_secs();
    // Kubernetes: preStop pause + drain + the rest, inside terminationGracePeriodSeconds.
    let k8s = read("kubernetes/deployment.yaml");
    let (grace, drain) =
        (number_after(&k8s, "terminationGracePeriodSeconds"), number_after(&k8s, "PARLEY_SHUTDOWN_DRAIN_SECS"));
    let pause = number_after(&k8s, r#"command: ["sleep","#);
    assert!(grace > pause + drain + beyond, "terminationGracePeriodSeconds {grace} <= {pause} + {drain} + {beyond}");
    assert!(k8s.contains("path: /readyz") && k8s.contains("path: /healthz"), "probes");
    assert!(read("kubernetes/pdb.yaml").contains("kind: PodDisruptionBudget"));
    assert!(read("kubernetes/service.yaml").contains("kind: Service"));
    // systemd.
    let unit = read("systemd/parley.service");
    let (stop, drain) = (number_after(&unit, "TimeoutStopSec="), number_after(&unit, "PARLEY_SHUTDOWN_DRAIN_SECS="));
    assert!(stop > drain + beyond, "TimeoutStopSec {stop} <= {drain} + {beyond}");
    // Compose, around the image's own drain time; plain `docker stop` (10 s) covers the drain itself.
    let image_drain = number_after(&read("Dockerfile"), "PARLEY_SHUTDOWN_DRAIN_SECS=");
    let compose = number_after(&read("compose/compose.yaml"), "stop_grace_period:");
    assert!(image_drain < 10, "the image's drain ({image_drain} s) fits in docker stop's default 10 s");
    assert!(compose > image_drain + beyond, "stop_grace_period {compose} <= {image_drain} + {beyond}");
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let Some(analyze) =
        ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].into_iter().find(|p| Path::new(p).is_file())
    else {
        eprintln!("SKIPPED: systemd-analyze is not installed (Debian package systemd)");
        return;
    };
    // verify wants ExecStart to exist: point it at the binary this test run built.
    let dir = tempfile::tempdir().unwrap();
    let unit = read("systemd/parley.service")
        .replace("ExecStart=/usr/local/bin/parley", &format!("ExecStart={}", env!("CARGO_BIN_EXE_parley")));
    let path = dir.path().join("parley.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new(analyze).arg("verify").arg(&path).output().expect("systemd-analyze runs");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // verify exits 0 on unknown keys and bad values too; a clean unit is one it says nothing about.
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify:\n{said}");
}
