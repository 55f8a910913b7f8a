//! A tool endpoint as an operator would run one: a real HTTP server on port 0 that records every call (body and
//! headers) and answers each tool by its script (a JSON result, an HTTP status, a delay). Tools without a script
//! answer `{"ok": true}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

/// How one tool answers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub delay: Duration,
    pub status: u16,
    /// The body (JSON text, or anything else to test a non-JSON answer).
    pub body: String,
}

impl Answer {
    pub fn json(v: Value) -> Answer {
        Answer { delay: Duration::ZERO, status: 200, body: v.to_string() }
    }
}

/// One call the endpoint received.
#[derive(Debug, Clone)]
pub struct Call {
    pub body: Value,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct State {
    script: HashMap<String, Answer>,
    calls: Vec<Call>,
}

/// The running endpoint.
#[derive(Clone)]
pub struct ToolServer {
    pub url: String,
    state: Arc<Mutex<State>>,
    handle: actix_web::dev::ServerHandle,
}

impl ToolServer {
    pub async fn start() -> ToolServer {
        let state: Arc<Mutex<State>> = Arc::default();
        let data = web::Data::from(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(handle)))
            .workers(1)
            .listen(listener)
            .unwrap()
            .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        ToolServer { url: format!("http://127.0.0.1:{port}/hooks"), state, handle }
    }

    /// How `tool` answers from now on.
    pub fn script(&self, tool: &str, answer: Answer) {
        self.state.lock().unwrap().script.insert(tool.to_string(), answer);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Waits until `n` calls have arrived.
    pub async fn wait_for_calls(&self, n: usize, within: Duration) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let calls = self.calls();
            if calls.len() >= n || tokio::time::Instant::now() > deadline {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

async fn handle(req: HttpRequest, body: web::Bytes, state: web::Data<Mutex<State>>) -> HttpResponse {
    let body: Value = serde_json::from_slice(&body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&body)));
    let tool = body["name"].as_str().unwrap_or_default().to_string();
    let authorization = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let answer = {
        let mut s = state.lock().unwrap();
        s.calls.push(Call { body, authorization });
        s.script.get(&tool).cloned().unwrap_or_else(|| Answer::json(json!({"ok": true})))
    };
    tokio::time::sleep(answer.delay).await;
    HttpResponse::build(actix_web::http::StatusCode::from_u16(answer.status).unwrap())
        .content_type("application/json")
        .body(answer.body)
}
