//! A minimal Chrome DevTools Protocol client over awc's WebSocket: numbered commands matched to their
//! answers, and a log of the events a test asserts on (console messages, uncaught exceptions, log entries, and
//! once a test turns the Network domain on, the requests the page sends, the WebSockets it opens and their
//! text frames).
//! Commands to a page carry the page's `sessionId` (flat sessions, `Target.attachToTarget {flatten: true}`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use actix_http::ws::Item;
use awc::ws::{Frame, Message};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// How long any one command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Screenshots arrive as one base64 frame of a few megabytes.
const MAX_FRAME: usize = 64 << 20;

type Pending = Rc<RefCell<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;

/// Events kept for tests; everything else is dropped as it arrives.
const KEPT_EVENTS: [&str; 5] = [
    "Runtime.consoleAPICalled",
    "Runtime.exceptionThrown",
    "Log.entryAdded",
    "Network.requestWillBeSent",
    "Network.webSocketCreated",
];
/// WebSocket frames the page sent and received: kept when they are text (opcode 1), not audio.
const SOCKET_FRAMES: [&str; 2] = ["Network.webSocketFrameSent", "Network.webSocketFrameReceived"];

fn kept(event: &Value) -> bool {
    let Some(method) = event["method"].as_str() else { return false };
    KEPT_EVENTS.contains(&method)
        || (SOCKET_FRAMES.contains(&method) && event["params"]["response"]["opcode"].as_u64() == Some(1))
}

/// A connection to the browser's DevTools endpoint.
pub struct Cdp {
    out: mpsc::UnboundedSender<String>,
    pending: Pending,
    events: Rc<RefCell<Vec<Value>>>,
    next_id: Cell<u64>,
}

impl Cdp {
    /// Connects to `ws://127.0.0.1:PORT/devtools/browser/ID`.
    pub async fn connect(url: &str) -> Result<Cdp, String> {
        let (_, framed) = awc::Client::new()
            .ws(url)
            .max_frame_size(MAX_FRAME)
            .connect()
            .await
            .map_err(|e| format!("DevTools WebSocket {url}: {e}"))?;
        let (mut sink, mut stream) = framed.split();
        let (out, mut outbox) = mpsc::unbounded_channel::<String>();
        actix_web::rt::spawn(async move {
            while let Some(text) = outbox.recv().await {
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Rc::default();
        let events: Rc<RefCell<Vec<Value>>> = Rc::default();
        let (p, e) = (pending.clone(), events.clone());
        actix_web::rt::spawn(async move {
            let mut partial = Vec::new();
            while let Some(Ok(frame)) = stream.next().await {
                let whole = match frame {
                    Frame::Text(b) => b.to_vec(),
                    Frame::Continuation(Item::FirstText(b) | Item::Continue(b)) => {
                        partial.extend_from_slice(&b);
                        continue;
                    }
                    Frame::Continuation(Item::Last(b)) => {
                        partial.extend_from_slice(&b);
                        std::mem::take(&mut partial)
                    }
                    Frame::Close(_) => break,
                    _ => continue,
                };
                let Ok(v) = serde_json::from_slice::<Value>(&whole) else { continue };
                if let Some(id) = v["id"].as_u64() {
                    if let Some(tx) = p.borrow_mut().remove(&id) {
                        let answer = match v.get("error") {
                            Some(err) => Err(err.to_string()),
                            None => Ok(v["result"].clone()),
                        };
                        let _ = tx.send(answer);
                    }
                } else if kept(&v) {
                    e.borrow_mut().push(v);
                }
            }
            // The browser went away: every waiting command fails now rather than at its timeout.
            for (_, tx) in p.borrow_mut().drain() {
                let _ = tx.send(Err("the DevTools connection closed".into()));
            }
        });
        Ok(Cdp { out, pending, events, next_id: Cell::new(1) })
    }

    /// Sends a command (to the page `session`, or to the browser) and waits for its result.
    pub async fn call(&self, method: &str, params: Value, session: Option<&str>) -> Result<Value, String> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let (tx, rx) = oneshot::channel();
        self.pending.borrow_mut().insert(id, tx);
        self.out.send(msg.to_string()).map_err(|_| "the DevTools connection closed".to_string())?;
        match tokio::time::timeout(COMMAND_TIMEOUT, rx).await {
            Ok(Ok(answer)) => answer.map_err(|e| format!("{method}: {e}")),
            Ok(Err(_)) => Err(format!("{method}: the DevTools connection closed")),
            Err(_) => {
                self.pending.borrow_mut().remove(&id);
                Err(format!("{method}: no answer within {COMMAND_TIMEOUT:?}"))
            }
        }
    }

    /// The kept events received so far for `session`.
    pub fn events(&self, session: &str) -> Vec<Value> {
        self.events.borrow().iter().filter(|e| e["sessionId"] == session).cloned().collect()
    }
}
