//! A tiny stand-in for parley's phone transport, to drive the emulated caller over real sockets: the voice
//! webhook checks `X-Twilio-Signature` and answers TwiML pointing at its own `/ws`; the socket (also checking
//! the signature) greets with 200 ms of audio and a mark `m1`, echoes every media frame back, answers the
//! `m1` echo with 1 s of audio, a mark `m2` and a `clear`, and hangs up (close 1000) on dtmf `#`. Every
//! message it receives goes to the test through a channel.

use std::net::TcpListener;

use actix::{Actor, ActorContext as _, StreamHandler};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use actix_web_actors::ws;
use base64::Engine as _;
use parley::emulators::twilio::signature;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// What the test sees of the stand-in.
pub struct StandIn {
    pub port: u16,
    /// Every JSON message the caller sent on the socket, in order.
    pub received: mpsc::UnboundedReceiver<Value>,
    /// The webhook's form parameters, once per call.
    pub webhooks: mpsc::UnboundedReceiver<Vec<(String, String)>>,
}

#[derive(Clone)]
struct Shared {
    token: String,
    received: mpsc::UnboundedSender<Value>,
    webhooks: mpsc::UnboundedSender<Vec<(String, String)>>,
}

impl StandIn {
    /// Starts on a free loopback port; requests must be signed with `token`.
    pub fn start(token: &str) -> StandIn {
        let (received_tx, received) = mpsc::unbounded_channel();
        let (webhooks_tx, webhooks) = mpsc::unbounded_channel();
        let shared = Shared { token: token.to_string(), received: received_tx, webhooks: webhooks_tx };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .route("/twilio/voice", web::post().to(voice))
                .route("/ws", web::get().to(socket))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        StandIn { port, received, webhooks }
    }

    pub fn webhook_url(&self) -> String {
        format!("http://127.0.0.1:{}/twilio/voice", self.port)
    }
}

fn signed_by(req: &HttpRequest, token: &str, url: &str, params: &[(String, String)]) -> bool {
    let header = req.headers().get("X-Twilio-Signature").and_then(|v| v.to_str().ok());
    header == Some(signature(token, url, params).as_str())
}

async fn voice(req: HttpRequest, form: web::Form<Vec<(String, String)>>, shared: web::Data<Shared>) -> HttpResponse {
    let host = req.connection_info().host().to_string();
    let url = format!("http://{host}/twilio/voice");
    if !signed_by(&req, &shared.token, &url, &form) {
        return HttpResponse::Forbidden().body("bad signature");
    }
    let _ = shared.webhooks.send(form.into_inner());
    HttpResponse::Ok().content_type("text/xml").body(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="ws://{host}/ws?x=1&amp;y=2"><Parameter name="agent" value="support"/><Parameter name="note" value="a&amp;b &lt;c&gt;"/></Stream></Connect></Response>"#
    ))
}

async fn socket(req: HttpRequest, body: web::Payload, shared: web::Data<Shared>) -> actix_web::Result<HttpResponse> {
    let url = format!("ws://{}{}", req.connection_info().host(), req.uri());
    if !signed_by(&req, &shared.token, &url, &[]) {
        return Ok(HttpResponse::Forbidden().body("bad signature"));
    }
    ws::start(Agent { shared: shared.get_ref().clone(), sid: String::new() }, &req, body)
}

struct Agent {
    shared: Shared,
    sid: String,
}

impl Actor for Agent {
    type Context = ws::WebsocketContext<Self>;
}

impl Agent {
    fn send(&self, ctx: &mut ws::WebsocketContext<Self>, v: Value) {
        ctx.text(v.to_string());
    }

    fn audio(&self, ctx: &mut ws::WebsocketContext<Self>, byte: u8, frames: usize) {
        let payload = base64::engine::general_purpose::STANDARD.encode([byte; 160]);
        for _ in 0..frames {
            self.send(ctx, json!({"event": "media", "streamSid": self.sid, "media": {"payload": payload}}));
        }
    }

    fn mark(&self, ctx: &mut ws::WebsocketContext<Self>, name: &str) {
        self.send(ctx, json!({"event": "mark", "streamSid": self.sid, "mark": {"name": name}}));
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for Agent {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        let text = match msg {
            Ok(ws::Message::Text(t)) => t,
            Ok(ws::Message::Close(reason)) => {
                let _ = self.shared.received.send(json!({"close": reason.map(|r| u16::from(r.code))}));
                ctx.close(None);
                ctx.stop();
                return;
            }
            _ => return,
        };
        let v: Value = serde_json::from_str(&text).unwrap();
        let _ = self.shared.received.send(v.clone());
        match v["event"].as_str() {
            Some("start") => {
                self.sid = v["start"]["streamSid"].as_str().unwrap().to_string();
                self.audio(ctx, 0x11, 10);
                self.mark(ctx, "m1");
            }
            Some("media") => {
                let payload = v["media"]["payload"].clone();
                self.send(ctx, json!({"event": "media", "streamSid": self.sid, "media": {"payload": payload}}));
            }
            Some("mark") if v["mark"]["name"] == "m1" => {
                self.audio(ctx, 0x33, 50);
                self.mark(ctx, "m2");
                self.send(ctx, json!({"event": "clear", "streamSid": self.sid}));
            }
            Some("dtmf") if v["dtmf"]["digit"] == "#" => {
                ctx.close(Some(ws::CloseCode::Normal.into()));
                ctx.stop();
            }
            _ => {}
        }
    }
}
