//! `GET /api/openapi.json`: a valid OpenAPI 3.1 document (checked against the official schema, vendored in
//! tests/fixtures/openapi), describing exactly the REST routes parley registers, and telling the truth: live
//! responses of every route, successes and errors, have a status the description lists and a body that its
//! schema accepts.

use std::collections::BTreeSet;

use parley::db::{Feedback, InstanceId, NewRecording, Role};
use parley::routes::{Kind, ROUTES};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDb, spawn_app, token_for};
use crate::persistence::{add, new_session};

async fn document(app: &TestApp) -> Value {
    let mut res = awc::Client::new().get(app.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200, "served without a credential");
    assert_eq!(res.headers().get("content-type").unwrap(), "application/json");
    res.json::<Value>().limit(1 << 20).await.unwrap()
}

#[actix_web::test]
async fn the_description_is_a_valid_openapi_3_1_document() {
    let app = spawn_app(TestDb::Sqlite).await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."), "{}", doc["openapi"]);
    let schema: Value =
        serde_json::from_str(include_str!("../fixtures/openapi/oas-3.1-schema-2022-10-07.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the OpenAPI 3.1 schema compiles");
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| format!("{e} at {}", e.instance_path)).collect();
    assert!(errors.is_empty(), "not valid OpenAPI 3.1: {errors:#?}");
    let mut broken = doc.clone();
    broken["paths"]["/healthz"]["get"]["responses"] = json!([200]);
    assert!(!validator.is_valid(&broken), "the schema check can fail");
    // Every security requirement names a scheme the document defines.
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for requirement in op["security"].as_array().into_iter().flatten() {
                for name in requirement.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(name), "{method} {path} names the undefined scheme {name}");
                }
            }
        }
    }
    app.stop().await.unwrap();
}

#[actix_web::test]
async fn every_rest_route_is_described_and_nothing_else() {
    let app = spawn_app(TestDb::Sqlite).await;
    let doc = document(&app).await;
    let described: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |m| (m.clone(), path.clone())))
        .collect();
    let served: BTreeSet<(String, String)> =
        ROUTES.iter().filter(|r| r.kind == Kind::Rest).map(|r| (r.method.to_string(), r.path.to_string())).collect();
    assert_eq!(described, served, "the description and routes::ROUTES differ");
    assert!(served.iter().filter(|(_, p)| p.starts_with("/api/")).count() >= 8, "{served:?}");
    app.stop().await.unwrap();
}

/// A response as it came over the wire.
struct Live {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

async fn send(req: awc::ClientRequest, body: Option<Value>) -> Live {
    let mut res = match body {
        Some(b) => req.send_json(&b).await.unwrap(),
        None => req.send().await.unwrap(),
    };
    let content_type = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    Live { status: res.status().as_u16(), content_type, body: res.body().limit(1 << 20).await.unwrap().to_vec() }
}

/// Checks one live response of `method path` against the description: its status is listed, its content type is
/// one the description gives for it, and a JSON body validates against that response's schema.
fn check(doc: &Value, method: &str, path: &str, live: &Live) {
    let what = format!("{method} {path} answered {}", live.status);
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is described");
    let response = &op["responses"][live.status.to_string()];
    assert!(response.is_object(), "{what}, a status the description does not list: {}", op["responses"]);
    let Some(content) = response["content"].as_object() else {
        assert!(live.body.is_empty(), "{what} with a body the description does not mention");
        return;
    };
    let essence = live.content_type.split(';').next().unwrap().trim();
    let (media, described) = content
        .iter()
        .find(|(media, _)| {
            let media = media.split(';').next().unwrap().trim();
            media == essence || media.strip_suffix("/*").is_some_and(|top| essence.starts_with(&format!("{top}/")))
        })
        .unwrap_or_else(|| panic!("{what} as {:?}; described: {:?}", live.content_type, content.keys()));
    if media.starts_with("application/json") {
        let body: Value = serde_json::from_slice(&live.body).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
        if described.get("schema").is_none() {
            return; // any JSON (this document itself)
        }
        // The response's schema, with the document's components beside it so that its $refs resolve.
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": doc["components"],
            "allOf": [described["schema"]],
        });
        let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{what}: schema: {e}"));
        let errors: Vec<String> = validator.iter_errors(&body).map(|e| format!("{e} at {}", e.instance_path)).collect();
        assert!(errors.is_empty(), "{what} with a body its schema refuses: {errors:#?}\n{body:#}");
    }
}

/// A request to make: method, the described path it falls under, the path itself, the `Authorization` header,
/// the JSON body, and the status it must get.
type Case<'a> = (&'a str, &'a str, String, Option<&'a str>, Option<Value>, u16);

#[actix_web::test]
async fn live_responses_of_every_route_match_the_description() {
    let app = spawn_app(TestDb::Sqlite).await;
    let doc = document(&app).await;
    let op = awc::Client::new(); // no credential; requests add their own
    let key = format!("Bearer {}", crate::helpers::OPERATOR_KEY);
    let user = format!("Bearer {}", token_for("olga"));
    let mut covered = BTreeSet::new();

    // A conversation with a rated reply, a tool call and usage, and a recording in this instance's spool.
    let s = new_session("olga", 0);
    app.store.create_session(&s).await.unwrap();
    add(&app.store, &s.id, Role::User, "What's the capital of France?").await;
    let reply = add(&app.store, &s.id, Role::Assistant, "Paris.").await;
    app.store.set_feedback(reply, Some(Feedback::Positive)).await.unwrap();
    let spool = app.data_dir.path().join("openapi-test.wav");
    std::fs::write(&spool, b"RIFF....WAVEfmt ").unwrap();
    let instance: InstanceId =
        std::fs::read_to_string(app.data_dir.path().join("instance-id")).unwrap().trim().parse().unwrap();
    let object_key = format!("audio_recordings/olga/{}/assistant_1.wav", s.id);
    let recording = app
        .store
        .insert_recording(&NewRecording {
            session_id: s.id.clone(),
            role: Role::Assistant,
            turn_id: 1,
            object_key: object_key.clone(),
            content_type: "audio/wav".into(),
            size_bytes: 16,
            duration_seconds: Some(0.5),
            backend: "local",
            spool_path: spool.display().to_string(),
            spool_offset: None,
            created_at: parley::db::now(),
            instance_id: instance,
        })
        .await
        .unwrap();
    app.store.link_recording(recording, reply, &format!("/{object_key}")).await.unwrap();

    let sid = s.id.to_string();
    let history = format!("/api/history?sessionId={sid}");
    let recordings = format!("/api/recordings?sessionId={sid}");
    let unknown = parley::db::SessionId::generate();
    let mut cases: Vec<Case> = vec![
        ("get", "/healthz", "/healthz".into(), None, None, 200),
        ("get", "/readyz", "/readyz".into(), None, None, 200),
        ("get", "/metrics", "/metrics".into(), None, None, 200),
        ("get", "/api/openapi.json", "/api/openapi.json".into(), None, None, 200),
        ("get", "/api/metrics", "/api/metrics".into(), Some(&key), None, 200),
        ("get", "/api/metrics", "/api/metrics".into(), None, None, 401),
        ("get", "/api/history", history.clone(), Some(&user), None, 200),
        ("get", "/api/history", history.clone(), Some(&key), None, 200),
        ("get", "/api/history", "/api/history".into(), Some(&key), None, 400),
        ("get", "/api/history", format!("/api/history?sessionId={unknown}"), Some(&key), None, 404),
        ("get", "/api/history", history.clone(), Some("Bearer not-a-token"), None, 401),
        ("get", "/api/sessions", "/api/sessions".into(), Some(&user), None, 200),
        ("get", "/api/sessions", "/api/sessions?userId=olga&limit=1".into(), Some(&key), None, 200),
        ("get", "/api/sessions", "/api/sessions?userId=olga&limit=0".into(), Some(&key), None, 400),
        ("get", "/api/sessions", "/api/sessions?userId=someone-else".into(), Some(&user), None, 404),
        ("get", "/api/recordings", recordings.clone(), Some(&user), None, 200),
        ("get", "/api/recordings", format!("/api/recordings?sessionId={unknown}"), Some(&user), None, 404),
        ("get", "/api/recordings", "/api/recordings?sessionId=x".into(), Some(&user), None, 400),
        ("post", "/api/tokens", "/api/tokens".into(), Some(&key), Some(json!({"userId": "olga"})), 200),
        ("post", "/api/tokens", "/api/tokens".into(), Some(&key), Some(json!({"userId": "olga", "scope": "x"})), 400),
        ("post", "/api/tokens", "/api/tokens".into(), Some(&key), Some(json!({"userId": "o", "agent": "nope"})), 404),
        ("post", "/api/tokens", "/api/tokens".into(), Some(&user), Some(json!({"userId": "olga"})), 401),
        ("post", "/api/dev/token", "/api/dev/token".into(), None, Some(json!({"credential": "x", "userId": "a"})), 404),
        ("post", "/twilio/voice", "/twilio/voice".into(), None, None, 404),
        ("get", "/audio_recordings/{user}/{session}/{file}", format!("/{object_key}"), None, None, 403),
    ];
    for (body, status) in [
        (json!({"message_id": reply.0, "feedback": "negative"}), 200),
        (json!({"message_id": reply.0, "feedback": null}), 200),
        (json!({"message_id": reply.0, "feedback": "meh"}), 400),
        (json!({"message_id": 999_999, "feedback": "positive"}), 404),
    ] {
        cases.push(("post", "/api/feedback", "/api/feedback".into(), Some(user.as_str()), Some(body), status));
    }
    // The signed links the history gives play (whole and in part), an altered one is refused.
    let (_, listed) = app.get_json(&recordings).await;
    let link = listed["recordings"][0]["url"].as_str().expect("a signed recording link").to_string();
    for (path, status) in [(link.clone(), 200), (link.replace("sig=", "sig=0"), 403)] {
        cases.push(("get", "/audio_recordings/{user}/{session}/{file}", path, None, None, status));
    }

    for (method, template, path, credential, body, expected) in cases {
        let mut req = if method == "get" { op.get(app.url(&path)) } else { op.post(app.url(&path)) };
        if let Some(credential) = credential {
            req = req.insert_header(("Authorization", credential));
        }
        let live = send(req, body).await;
        assert_eq!(live.status, expected, "{method} {path}: {}", String::from_utf8_lossy(&live.body));
        check(&doc, method, template, &live);
        covered.insert((method.to_string(), template.to_string()));
    }
    let ranged = send(op.get(app.url(&link)).insert_header(("Range", "bytes=0-3")), None).await;
    assert_eq!(ranged.status, 206);
    check(&doc, "get", "/audio_recordings/{user}/{session}/{file}", &ranged);

    let rest: BTreeSet<(String, String)> =
        ROUTES.iter().filter(|r| r.kind == Kind::Rest).map(|r| (r.method.to_string(), r.path.to_string())).collect();
    assert_eq!(covered, rest, "every REST route was exercised");
    app.stop().await.unwrap();
}

#[actix_web::test]
async fn the_check_refuses_answers_the_description_does_not_allow() {
    let app = spawn_app(TestDb::Sqlite).await;
    let doc = document(&app).await;
    let live = |status: u16, content_type: &str, body: &str| Live {
        status,
        content_type: content_type.to_string(),
        body: body.as_bytes().to_vec(),
    };
    check(&doc, "get", "/healthz", &live(200, "application/json", r#"{"status": "ok"}"#));
    for (what, answer) in [
        ("a wrong type", live(200, "application/json", r#"{"status": 5}"#)),
        ("a missing field", live(200, "application/json", "{}")),
        ("an undescribed status", live(418, "application/json", r#"{"status": "ok"}"#)),
        ("an undescribed content type", live(200, "text/html", "<p>ok</p>")),
        ("an error without its code", live(404, "application/json", r#"{"message": "no"}"#)),
    ] {
        let path = if answer.status == 404 { "/api/history" } else { "/healthz" };
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&doc, "get", path, &answer)));
        assert!(refused.is_err(), "{what} must be refused");
    }
    app.stop().await.unwrap();
}
