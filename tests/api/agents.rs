//! Agent profiles over real sockets: an agents file chooses the greeting, the prompt and the agent a session
//! talks to (`?agent=`, the token's `agent` and `vars` claims); a bad file stops start-up naming the file, the
//! agent and the field.

use std::time::Duration;

use parley::emulators::Reply;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::process::{parley, wait_exit};
use crate::helpers::voice::{Event, VoiceApp, VoiceClient, spawn_voice_app_with};
use crate::helpers::{AUTH_SECRET, TestDb, token_for};

const AGENTS: &str = r#"
[agents.support]
system_prompt = "You help {{customer}} with order {{ order }}. Be brief."
greeting = "Hi, this is the support line. How can I help?"
tools = ["lookup_order", "end_conversation"]
max_tool_steps = 2

[agents.quiet]
system_prompt = "You are quiet."

[tools.lookup_order]
description = "Look up an order by its id."
url = "https://shop.example/hooks/order"
headers = { Authorization = "Bearer ${SHOP_TOKEN}" }
parameters = { type = "object", properties = { order_id = { type = "string" } }, required = ["order_id"] }
"#;

/// The voice app with `AGENTS` as its agents file (the providers are the environment's emulators).
async fn spawn_with_agents(db: TestDb) -> (VoiceApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agents.toml");
    std::fs::write(&file, AGENTS).unwrap();
    let v = spawn_voice_app_with(db, |env| {
        env.insert("PARLEY_AGENTS_FILE".into(), file.display().to_string());
        env.insert("SHOP_TOKEN".into(), "shop-secret".into());
    })
    .await;
    (v, dir)
}

/// A client token for `user` with extra claims, as an app backend would mint it.
fn token_with(user: &str, extra: Value) -> String {
    use base64::Engine as _;
    let secret = base64::engine::general_purpose::STANDARD.decode(AUTH_SECRET).unwrap();
    let now = chrono::Utc::now().timestamp();
    let Value::Object(extra) = extra else { panic!("claims are an object") };
    parley::auth::TokenKeys::new(&secret, &[]).mint(&parley::auth::Claims {
        user_id: user.parse().unwrap(),
        exp: now + 3600,
        iat: Some(now),
        nbf: None,
        session: None,
        scopes: vec![parley::auth::Scope::Voice, parley::auth::Scope::History],
        extra,
    })
}

/// A plain GET of the session route (refusals come before the upgrade): status and JSON body.
async fn refusal(v: &VoiceApp, query: &str) -> (u16, Value) {
    let mut res = awc::Client::new().get(v.app.url(&format!("/ws/chat-audio?{query}"))).send().await.unwrap();
    let body = res.body().await.unwrap();
    (res.status().as_u16(), serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Waits for `messageSaved` of (`turn`, `role`).
async fn saved(c: &mut VoiceClient, turn: u64, role: &str) {
    c.until(
        &format!("turn {turn}'s {role} message to be stored"),
        |e| matches!(e, Event::Json(v) if v["type"] == "messageSaved" && v["turnId"] == turn && v["role"] == role),
    )
    .await;
}

both_backends! {
    async fn an_agents_greeting_is_spoken_first_and_stored_as_turn_0(db: TestDb) {
        let (v, _dir) = spawn_with_agents(db).await;
        let mut c = v.connect("userId=gina&agent=support").await;
        assert_eq!(c.session["agent"], "support");
        let first = c.expect("assistantText").await;
        assert_eq!(first["turnId"], 0);
        let end = c.expect("turnEnd").await;
        assert_eq!((end["turnId"].as_u64(), end["interrupted"].as_bool()), (Some(0), Some(false)));
        let captions: Vec<String> =
            c.events("assistantText").iter().map(|e| e["text"].as_str().unwrap().into()).collect();
        assert_eq!(captions.join(" "), "Hi, this is the support line. How can I help?");
        assert!(!c.audio_of_turn(0).is_empty(), "the greeting is spoken");
        assert!(c.events("userTurn").is_empty(), "before the user says anything");
        saved(&mut c, 0, "assistant").await;
        assert!(v.emulators.openai().requests().is_empty(), "the greeting costs no LLM request");

        c.say("Where is my parcel?").await;
        let user = c.expect("userTurn").await;
        assert_eq!(user["turnId"], 1, "the user's first turn is turn 1");
        c.until("turn 1 to end", |e| matches!(e, Event::Json(j) if j["type"] == "turnEnd" && j["turnId"] == 1)).await;
        saved(&mut c, 1, "assistant").await;
        let request = v.emulators.openai().requests().last().unwrap().body.clone();
        assert_eq!(request["messages"][1]["role"], "assistant");
        assert_eq!(request["messages"][1]["content"], "Hi, this is the support line. How can I help?");

        let (status, history) = v.app.get_json(&format!("/api/history?sessionId={}", c.session_id())).await;
        assert_eq!(status, 200, "{history}");
        let m = history["messages"].as_array().unwrap();
        let shape: Vec<(&str, &str)> =
            m.iter().map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap())).collect();
        assert_eq!(shape[0], ("assistant", "Hi, this is the support line. How can I help?"));
        assert_eq!(shape[1], ("user", "Where is my parcel?"));
        let session_id = c.session_id();
        c.close().await;

        // Resuming does not greet again.
        let mut again = v.connect(&format!("userId=gina&agent=support&sessionId={session_id}")).await;
        assert_eq!(again.session["resumed"], true);
        assert!(again.next(Duration::from_millis(500)).await.is_none(), "no greeting on resume: {:?}", again.log);
        again.close().await;
        v.stop().await;
    }
}

#[actix_web::test]
async fn a_token_chooses_the_agent_and_fills_its_prompt() {
    let (v, _dir) = spawn_with_agents(TestDb::Sqlite).await;
    v.emulators.openai().push_reply(Reply::Text("Sure.".into()));
    let token = token_with("hana", json!({"agent": "support", "vars": {"customer": "Hana", "order": "A-17"}}));
    // Variables in the query are not trusted: only the token's fill the prompt.
    let mut c = v.connect(&format!("token={token}&customer=Mallory&vars=x")).await;
    assert_eq!(c.session["agent"], "support");
    c.expect("turnEnd").await; // the greeting
    c.say("Hello").await;
    c.until("turn 1 to end", |e| matches!(e, Event::Json(j) if j["type"] == "turnEnd" && j["turnId"] == 1)).await;
    let request = v.emulators.openai().requests().last().unwrap().body.clone();
    assert_eq!(request["messages"][0]["role"], "system");
    assert_eq!(request["messages"][0]["content"], "You help Hana with order A-17. Be brief.");
    let tools: Vec<&str> = request["tools"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["function"]["name"].as_str()).collect())
        .unwrap_or_default();
    // The agent's tools are offered, in its order.
    assert_eq!(tools, ["lookup_order", "end_conversation"]);
    c.close().await;

    // The same agent asked for explicitly agrees with the pin; without vars the placeholders render empty.
    let token = token_with("hana", json!({"agent": "support"}));
    let mut c = v.connect(&format!("token={token}&agent=support")).await;
    c.expect("turnEnd").await;
    c.say("Hi again").await;
    c.until("turn 1 to end", |e| matches!(e, Event::Json(j) if j["type"] == "turnEnd" && j["turnId"] == 1)).await;
    let request = v.emulators.openai().requests().last().unwrap().body.clone();
    assert_eq!(request["messages"][0]["content"], "You help  with order . Be brief.");
    c.close().await;

    // No agent named: the default agent, the environment's prompt, no greeting.
    let mut c = v.connect("userId=hana").await;
    assert_eq!(c.session["agent"], "default");
    c.say("Plain").await;
    let user = c.expect("userTurn").await;
    assert_eq!(user["turnId"], 1);
    c.expect("turnEnd").await;
    let request = v.emulators.openai().requests().last().unwrap().body.clone();
    assert_eq!(request["messages"][0]["content"], parley::config::DEFAULT_SYSTEM_PROMPT);
    c.close().await;
    v.stop().await;
}

#[actix_web::test]
async fn an_operator_mints_a_token_pinned_to_an_agent_with_its_variables() {
    let (v, _dir) = spawn_with_agents(TestDb::Sqlite).await;
    v.emulators.openai().push_reply(Reply::Text("Sure.".into()));
    let body = json!({"userId": "jo", "agent": "support", "vars": {"customer": "Jo", "order": "B-2"}});
    let (status, minted) = v.app.post_raw("/api/tokens", "application/json", &body.to_string()).await;
    assert_eq!(status, 200, "{minted}");
    let mut c = v.connect(&format!("token={}", minted["token"].as_str().unwrap())).await;
    assert_eq!(c.session["agent"], "support");
    c.expect("turnEnd").await;
    c.say("Hello").await;
    c.until("turn 1 to end", |e| matches!(e, Event::Json(j) if j["type"] == "turnEnd" && j["turnId"] == 1)).await;
    let request = v.emulators.openai().requests().last().unwrap().body.clone();
    assert_eq!(request["messages"][0]["content"], "You help Jo with order B-2. Be brief.");
    c.close().await;
    for (body, status, code) in [
        (json!({"userId": "jo", "agent": "ghost"}), 404, "agent_not_found"),
        (json!({"userId": "jo", "vars": {"order": 2}}), 400, "invalid_vars"),
        (json!({"userId": "jo", "vars": ["x"]}), 400, "invalid_vars"),
    ] {
        let (got, answer) = v.app.post_raw("/api/tokens", "application/json", &body.to_string()).await;
        assert_eq!((got, answer["error"].as_str()), (status, Some(code)), "{body}: {answer}");
    }
    v.stop().await;
}

#[actix_web::test]
async fn an_unknown_agent_is_404_and_a_token_pinned_to_another_is_403() {
    let (v, _dir) = spawn_with_agents(TestDb::Sqlite).await;
    let (status, body) = refusal(&v, &format!("token={}&agent=ghost", token_for("ivy"))).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("agent_not_found")), "{body}");
    let pinned = token_with("ivy", json!({"agent": "support"}));
    let (status, body) = refusal(&v, &format!("token={pinned}&agent=quiet")).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("agent_mismatch")), "{body}");
    let ghost = token_with("ivy", json!({"agent": "ghost"}));
    let (status, body) = refusal(&v, &format!("token={ghost}")).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("agent_not_found")), "{body}");
    for bad in [json!({"vars": {"order": 17}}), json!({"vars": "order"}), json!({"agent": 3})] {
        let token = token_with("ivy", bad.clone());
        let (status, body) = refusal(&v, &format!("token={token}&agent=support")).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("token_invalid")), "{bad}: {body}");
    }
    // Refused before the upgrade: nothing was opened.
    match v.try_connect(&format!("token={}&agent=ghost", token_for("ivy"))).await {
        Err(e) => assert!(e.contains("404"), "{e}"),
        Ok(_) => panic!("an unknown agent must not be upgraded"),
    }
    v.stop().await;
}

#[actix_web::test]
async fn a_bad_agents_file_stops_startup_naming_the_file_the_agent_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agents.toml");
    let cases = [
        (
            "[agents.sales]\nsystem_prompt = \"Sell.\"\ntools = [\"discount\"]",
            "agent \"sales\"",
            "tools: unknown tool \"discount\"",
        ),
        ("[agents.sales]\ngreeting = \"Hi\"", "agent \"sales\"", "system_prompt: missing"),
        (
            "[agents.sales]\nsystem_prompt = \"Sell.\"\n[agents.sales.llm]\napi_key_env = \"SALES_KEY\"",
            "agent \"sales\"",
            "llm.api_key_env: names the environment variable SALES_KEY, which is not set",
        ),
    ];
    for (text, agent, field) in cases {
        std::fs::write(&file, text).unwrap();
        // In process: the configuration loads, the application refuses to build.
        let data = tempfile::tempdir().unwrap();
        let env = std::collections::HashMap::from([
            ("HOST", "127.0.0.1".to_string()),
            ("PORT", "0".to_string()),
            ("PARLEY_DATA_DIR", data.path().display().to_string()),
            ("PARLEY_AGENTS_FILE", file.display().to_string()),
        ]);
        let config = parley::config::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
        let Err(err) = parley::startup::Application::build(config).await else { panic!("{text}: must not start") };
        let err = format!("{err:#}");
        for part in [file.display().to_string().as_str(), agent, field] {
            assert!(err.contains(part), "{err:?} should name {part:?}");
        }
    }
    // The binary says so on stderr and exits non-zero.
    std::fs::write(&file, cases[0].0).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut child = parley(&[("PARLEY_AGENTS_FILE", &file.display().to_string())], data.path()).spawn().unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(20)).expect("parley exits on a bad agents file");
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(err.contains(&format!("agents file {}: agent \"sales\"", file.display())), "{err}");
    assert!(err.contains("tools: unknown tool \"discount\""), "{err}");
    // A file that cannot be read is the variable's error.
    let mut child = parley(&[("PARLEY_AGENTS_FILE", "/nonexistent/agents.toml")], data.path()).spawn().unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(20)).expect("parley exits");
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains("PARLEY_AGENTS_FILE: cannot read the agents file /nonexistent/agents.toml"), "{err}");
}
