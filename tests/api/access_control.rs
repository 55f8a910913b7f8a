//! Access control as an attacker and as an operator meet it: every route against every kind of credential,
//! one user's data against another user's token, signed audio links, Range requests, browser origins, the
//! limits per user, address, session and token, and provider error text that must never reach a client.

use std::time::Duration;

use base64::Engine as _;
use parley::emulators::{OpenAiFault, Reply};
use serde_json::{Value, json};

use crate::helpers::voice::{Event, VoiceApp, spawn_voice_app, spawn_voice_app_with, wait_for_live_sessions};
use crate::helpers::{AUTH_SECRET, OPERATOR_KEY, TestApp, TestDb, token_for};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT with exactly this header and payload, signed with `secret` (or not at all).
fn forge(header: &str, payload: &Value, secret: Option<&[u8]>) -> String {
    let input = format!("{}.{}", b64(header), b64(payload.to_string()));
    match secret {
        Some(s) => {
            let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, s), input.as_bytes());
            format!("{input}.{}", b64(tag.as_ref()))
        }
        None => format!("{input}."),
    }
}

fn secret() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(AUTH_SECRET).unwrap()
}

/// The credentials every route is tried with, and what each stands for.
fn credentials(owner: &str) -> Vec<(&'static str, Option<String>)> {
    let now = chrono::Utc::now().timestamp();
    vec![
        ("none", None),
        ("malformed", Some("not-a-token".into())),
        (
            "wrong signature",
            Some(forge(r#"{"alg":"HS256"}"#, &json!({"sub": owner, "exp": now + 600}), Some(&[9u8; 32]))),
        ),
        ("alg none", Some(forge(r#"{"alg":"none","typ":"JWT"}"#, &json!({"sub": owner, "exp": now + 600}), None))),
        ("expired", Some(forge(r#"{"alg":"HS256"}"#, &json!({"sub": owner, "exp": now - 3600}), Some(&secret())))),
        ("other user", Some(token_for("mallory"))),
        ("operator key", Some(OPERATOR_KEY.into())),
        ("right token", Some(token_for(owner))),
    ]
}

/// A request with `credential` as the bearer (and nothing else): status and JSON body.
async fn call(app: &TestApp, method: &str, path: &str, body: Option<&Value>, credential: Option<&str>) -> (u16, Value) {
    let client = awc::Client::default();
    let mut req = match method {
        "POST" => client.post(app.url(path)),
        _ => client.get(app.url(path)),
    };
    if let Some(c) = credential {
        req = req.insert_header(("Authorization", format!("Bearer {c}")));
    }
    let mut res = match body {
        Some(b) => req.send_json(b).await.unwrap(),
        None => req.send().await.unwrap(),
    };
    let bytes = res.body().limit(8 << 20).await.unwrap();
    (res.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A stored conversation of `owner` with one assistant message and its recordings.
async fn owned_session(v: &VoiceApp, owner: &str) -> (String, i64) {
    let mut c = v.connect(&format!("userId={owner}")).await;
    c.say("Remember my secret: blue.").await;
    c.expect("turnEnd").await;
    let saved = c
        .until(
            "the reply stored",
            |e| matches!(e, Event::Json(v) if v["type"] == "messageSaved" && v["role"] == "assistant"),
        )
        .await;
    let Event::Json(saved) = saved else { unreachable!() };
    let session = c.session_id();
    c.close().await;
    wait_for_live_sessions(&v.app, 0).await;
    crate::recordings::wait_for_uploaded(&v.app, &session, 1).await; // a typed turn: the reply's
    (session, saved["messageId"].as_i64().unwrap())
}

#[actix_web::test]
async fn every_route_answers_every_kind_of_credential_as_it_should() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    let (session, message) = owned_session(&v, "olive").await;
    let feedback = json!({"message_id": message, "feedback": "positive"});
    let mint = json!({"userId": "olive", "ttlSeconds": 60});
    // (method, route, body, and what the right token, the operator key and another user's token get)
    type Route<'a> = (&'a str, String, Option<&'a Value>, u16, u16, u16);
    let routes: Vec<Route> = vec![
        ("GET", format!("/api/history?sessionId={session}"), None, 200, 200, 404),
        ("GET", format!("/api/recordings?sessionId={session}"), None, 200, 200, 404),
        ("GET", "/api/sessions?userId=olive".into(), None, 200, 200, 404),
        ("POST", "/api/feedback".into(), Some(&feedback), 200, 200, 404),
        ("GET", "/api/metrics".into(), None, 200, 200, 200),
        ("POST", "/api/tokens".into(), Some(&mint), 401, 200, 401),
    ];
    let mut table = Vec::new();
    for (method, path, body, right, operator, other) in &routes {
        for (kind, credential) in credentials("olive") {
            let (status, answer) = call(&v.app, method, path, *body, credential.as_deref()).await;
            let expected = match kind {
                "none" => 401,
                "malformed" | "wrong signature" | "alg none" | "expired" => 401,
                "other user" => *other,
                "operator key" => *operator,
                _ => *right,
            };
            assert_eq!(status, expected, "{method} {path} with {kind}: {answer}");
            let code = answer["error"].as_str().unwrap_or("");
            match kind {
                "none" if *path != "/api/tokens" => assert_eq!(code, "token_missing"),
                "expired" if *path != "/api/tokens" => assert_eq!(code, "token_expired", "{path}"),
                "malformed" | "wrong signature" | "alg none" if *path != "/api/tokens" => {
                    assert_eq!(code, "token_invalid", "{path} {kind}");
                    // Never which part of the token was wrong.
                    let message = answer["message"].as_str().unwrap();
                    assert!(!message.contains("signature") && !message.contains("alg"), "{message}");
                }
                _ => {}
            }
            table.push(format!("{method} {path} × {kind}: {status}"));
        }
    }
    // The voice WebSocket: resuming the stored session.
    for (kind, credential) in credentials("olive") {
        let query = match &credential {
            None => format!("sessionId={session}"),
            Some(c) if kind == "operator key" => format!("token={c}&userId=olive&sessionId={session}"),
            Some(c) => format!("token={c}&sessionId={session}"),
        };
        let result = v.try_connect(&query).await;
        let expected = match kind {
            "operator key" | "right token" => "accepted",
            "other user" => "404",
            _ => "401",
        };
        match (&result, expected) {
            (Ok(_), "accepted") => {}
            (Err(e), code) if e.contains(code) => {}
            _ => panic!("WebSocket with {kind}: {:?}", result.as_ref().err()),
        }
        table.push(format!("WS resume × {kind}: {expected}"));
    }
    // The probes, metrics and page need nothing.
    for path in ["/healthz", "/readyz", "/metrics", "/", "/status"] {
        let (status, _) = call(&v.app, "GET", path, None, None).await;
        assert_eq!(status, 200, "{path}");
    }
    eprintln!("{} route × credential combinations checked", table.len());
    v.stop().await;
}

#[actix_web::test]
async fn one_users_token_reaches_nothing_of_another_user() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    let (session, message) = owned_session(&v, "victim").await;
    let attacker = token_for("mallory");
    let (_, history) = v.app.get_json(&format!("/api/history?sessionId={session}")).await;
    let victim_audio = history["messages"][1]["audioUrl"].as_str().unwrap().to_string();
    let unsigned_audio = victim_audio.split('?').next().unwrap().to_string();
    let mut refused = 0;
    let attempts: Vec<(&str, String, Option<Value>)> = vec![
        ("history", format!("/api/history?sessionId={session}"), None),
        ("history by userId", format!("/api/history?sessionId={session}&userId=victim"), None),
        ("recordings", format!("/api/recordings?sessionId={session}"), None),
        ("sessions list", "/api/sessions?userId=victim".into(), None),
        ("feedback", "/api/feedback".into(), Some(json!({"message_id": message, "feedback": null}))),
        ("audio without its signature", unsigned_audio.clone(), None),
    ];
    for (what, path, body) in &attempts {
        let method = if body.is_some() { "POST" } else { "GET" };
        let (status, answer) = call(&v.app, method, path, body.as_ref(), Some(&attacker)).await;
        assert!(matches!(status, 403 | 404), "{what}: {status} {answer}");
        assert!(!answer.to_string().contains("blue"), "{what} leaked content");
        refused += 1;
    }
    // Sequential message ids do not help: every other id is as unknown as the victim's.
    for id in (message - 1).max(1)..(message + 4) {
        let (status, _) = call(
            &v.app,
            "POST",
            "/api/feedback",
            Some(&json!({"message_id": id, "feedback": "negative"})),
            Some(&attacker),
        )
        .await;
        assert_eq!(status, 404, "message {id}");
    }
    let (_, history) = v.app.get_json(&format!("/api/history?sessionId={session}")).await;
    assert_eq!(history["messages"][1]["feedback"], Value::Null, "the victim's rating was not touched");
    // Resuming the victim's session over the WebSocket, with or without naming them.
    for query in [format!("sessionId={session}"), format!("sessionId={session}&userId=victim")] {
        let err = v.try_connect(&format!("token={attacker}&{query}")).await.err().expect("refused");
        assert!(err.contains("404") || err.contains("403"), "{query}: {err}");
        refused += 1;
    }
    eprintln!("cross-user attempts: {} attempted, {refused} refused", attempts.len() + 2);
    assert_eq!(refused, attempts.len() + 2);
    v.stop().await;
}

#[actix_web::test]
async fn audio_links_are_signed_for_one_object_until_they_expire_and_answer_range_requests() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    let (session, _) = owned_session(&v, "linda").await;
    let (_, history) = v.app.get_json(&format!("/api/history?sessionId={session}")).await;
    let link = history["messages"][1]["audioUrl"].as_str().unwrap().to_string();
    let path = link.split('?').next().unwrap().to_string();
    let other = format!("/audio_recordings/linda/{session}/user_0_other.wav");
    let fetch = |url: String, range: Option<&'static str>| {
        let app = &v.app;
        async move {
            let mut req = awc::Client::default().get(app.url(&url)); // no credential: the link is its own
            if let Some(r) = range {
                req = req.insert_header(("Range", r));
            }
            let mut res = req.send().await.unwrap();
            let body = res.body().limit(8 << 20).await.unwrap();
            (res.status().as_u16(), res.headers().clone(), body)
        }
    };
    let (status, headers, whole) = fetch(link.clone(), None).await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("accept-ranges").unwrap(), "bytes");
    let (status, headers, part) = fetch(link.clone(), Some("bytes=0-99")).await;
    assert_eq!(status, 206);
    assert_eq!(part.as_ref(), &whole[..100]);
    assert_eq!(headers.get("content-range").unwrap().to_str().unwrap(), format!("bytes 0-99/{}", whole.len()));
    let (status, _, tail) = fetch(link.clone(), Some("bytes=-10")).await;
    assert_eq!((status, tail.as_ref()), (206, &whole[whole.len() - 10..]));
    let (status, _, _) = fetch(link.clone(), Some("bytes=999999999-")).await;
    assert_eq!(status, 416);

    let signer = parley::auth::MediaSigner::new(&secret());
    let now = chrono::Utc::now().timestamp();
    let expired = signer.sign(&path, now - 10);
    let other_object = format!("{other}?{}", link.split('?').nth(1).unwrap());
    let altered = format!("{path}?{}", link.split('?').nth(1).unwrap().replace("exp=", "exp=9"));
    for (what, url) in
        [("unsigned", path.clone()), ("expired", expired), ("another object", other_object), ("altered", altered)]
    {
        let (status, _, body) = fetch(url, None).await;
        assert_eq!(status, 403, "{what}");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], "link_invalid", "{what}");
    }
    v.stop().await;
}

#[actix_web::test]
async fn only_allowed_origins_may_open_sessions_or_call_the_api_from_a_browser() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_ALLOWED_ORIGINS".into(), "https://app.example".into());
    })
    .await;
    let port: u16 = v.app.address.rsplit(':').next().unwrap().parse().unwrap();
    let token = token_for("orla");
    let upgrade = |origin: String| {
        let url = format!("ws://127.0.0.1:{port}/ws/chat-audio?token={token}");
        async move {
            match awc::Client::new().ws(url).origin(origin.as_str()).connect().await {
                Ok(_) => 101,
                Err(awc::error::WsClientError::InvalidResponseStatus(s)) => s.as_u16(),
                Err(e) => panic!("{e}"),
            }
        }
    };
    assert_eq!(upgrade("https://evil.example".into()).await, 403, "refused before the upgrade");
    assert_eq!(upgrade("https://app.example".into()).await, 101, "a listed origin");
    assert_eq!(upgrade(format!("http://127.0.0.1:{port}")).await, 101, "the server's own origin");

    let rest = |origin: &'static str, method: actix_web::http::Method| {
        let app = &v.app;
        let token = token_for("orla");
        async move {
            let res = awc::Client::default()
                .request(method, app.url("/api/sessions"))
                .insert_header(("Origin", origin))
                .insert_header(("Authorization", format!("Bearer {token}")))
                .send()
                .await
                .unwrap();
            (
                res.status().as_u16(),
                res.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_string()),
            )
        }
    };
    assert_eq!(rest("https://evil.example", actix_web::http::Method::GET).await, (403, None));
    assert_eq!(
        rest("https://app.example", actix_web::http::Method::GET).await,
        (200, Some("https://app.example".into()))
    );
    assert_eq!(
        rest("https://app.example", actix_web::http::Method::OPTIONS).await,
        (204, Some("https://app.example".into())),
        "a preflight is answered"
    );
    v.stop().await;
}

#[actix_web::test]
async fn each_limit_is_reached_refused_clearly_and_recovers() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_MAX_SESSIONS_PER_USER".into(), "2".into());
        env.insert("PARLEY_TURNS_PER_MINUTE".into(), "3".into());
        env.insert("PARLEY_REST_RATE".into(), "3/min".into());
        env.insert("PARLEY_REST_BURST".into(), "3".into());
    })
    .await;
    // Sessions per user: the third is refused before the upgrade, a closed one frees its place.
    let mut first = v.connect("userId=limit").await;
    let _second = v.connect("userId=limit").await;
    let third = v.try_connect("userId=limit").await.err().expect("over the limit");
    assert!(third.contains("429"), "{third}");
    assert!(v.try_connect("userId=someone-else").await.is_ok(), "other users are not affected");
    first.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while v.try_connect("userId=limit").await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the place was never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Turns per minute: a typed flood gets rate_limited errors, not LLM requests.
    let mut flood = v.connect("userId=flooder").await;
    let before = v.emulators.openai().requests().len();
    for i in 0..6 {
        flood.say(&format!("question {i}")).await;
    }
    flood.send_json(json!({"type": "ping"})).await;
    flood.expect("pong").await;
    let limited = flood.events("error").iter().filter(|e| e["code"] == "rate_limited").count();
    assert_eq!(limited, 3, "{:?}", flood.summary());
    assert!(v.emulators.openai().requests().len() - before <= 3);
    // REST requests per token: the fourth in a minute is 429 with Retry-After.
    let token = token_for("rester");
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let res = awc::Client::default()
            .get(v.app.url("/api/sessions"))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        retry_after = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert!(retry_after.unwrap().parse::<u64>().unwrap() >= 1);
    let (status, _) = call(&v.app, "GET", "/api/sessions", None, Some(&token_for("another-rester"))).await;
    assert_eq!(status, 200, "per token, not global");
    v.stop().await;
}

#[actix_web::test]
async fn session_openings_are_limited_per_address_and_a_trusted_proxy_names_the_address() {
    let v = spawn_voice_app_with(TestDb::Sqlite, |env| {
        env.insert("PARLEY_CONNECT_RATE".into(), "2/min".into());
        env.insert("PARLEY_CONNECT_BURST".into(), "2".into());
        env.insert("PARLEY_TRUSTED_PROXIES".into(), "127.0.0.1".into());
    })
    .await;
    let port: u16 = v.app.address.rsplit(':').next().unwrap().parse().unwrap();
    let open = |forwarded: &'static str| async move {
        let url = format!("ws://127.0.0.1:{port}/ws/chat-audio?token={}", token_for("proxied"));
        match awc::Client::new().ws(url).header("X-Forwarded-For", forwarded).connect().await {
            Ok(_) => 101,
            Err(awc::error::WsClientError::InvalidResponseStatus(s)) => s.as_u16(),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(open("203.0.113.1").await, 101);
    assert_eq!(open("203.0.113.1").await, 101);
    assert_eq!(open("203.0.113.1").await, 429, "the third opening from one address in a minute");
    assert_eq!(open("203.0.113.2").await, 101, "another address behind the same proxy has its own");
    v.stop().await;
}

#[actix_web::test]
async fn a_providers_own_error_text_never_reaches_the_client() {
    let v = spawn_voice_app(TestDb::Sqlite).await;
    v.emulators.openai().push_fault(OpenAiFault::Unauthorized);
    v.emulators.openai().push_reply(Reply::Text("unused".into()));
    let mut c = v.connect("userId=hygiene").await;
    c.say("hello").await;
    let error = c.expect("error").await;
    assert_eq!(error["code"], "openai_auth");
    let text = error["error"].as_str().unwrap();
    assert_eq!(
        text,
        "The language model is unavailable: it refused parley's API key; the operator must fix OPENAI_API_KEY."
    );
    let provider_said = v.emulators.openai().requests()[0].clone();
    assert_eq!(provider_said.status, 401);
    for fragment in ["Incorrect", "sk-", "http", "/tmp", "platform.openai"] {
        assert!(!text.contains(fragment), "{fragment} in {text}");
    }
    v.stop().await;
}

#[actix_web::test]
async fn tokens_are_minted_for_operators_with_a_capped_lifetime() {
    let app = crate::helpers::spawn_app(TestDb::Sqlite).await;
    let (status, minted) =
        app.post_raw("/api/tokens", "application/json", r#"{"userId":"mint","ttlSeconds":999999}"#).await;
    assert_eq!(status, 200, "{minted}");
    assert_eq!(minted["ttlSeconds"], 3600, "capped at PARLEY_TOKEN_MAX_TTL_SECS");
    let token = minted["token"].as_str().unwrap();
    let (status, page) = call(&app, "GET", "/api/sessions", None, Some(token)).await;
    assert_eq!((status, page["userId"].as_str()), (200, Some("mint")));
    let (status, body) = call(&app, "POST", "/api/tokens", Some(&json!({"userId": "x"})), Some(token)).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("api_key_invalid")), "a user cannot mint");
    let (status, _) = app.post_raw("/api/tokens", "application/json", r#"{"userId":"bad id!"}"#).await;
    assert_eq!(status, 400);
    let (status, _) =
        call(&app, "POST", "/api/dev/token", Some(&json!({"credential": "x", "userId": "y"})), None).await;
    assert_eq!(status, 404, "no development credential on a server with a secret");
    app.stop().await.unwrap();
}
