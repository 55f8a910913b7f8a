//! One browser tab: evaluate JavaScript, wait for a condition on the page's own state with a deadline, click
//! like a person (real mouse events at the element's centre, which count as user gestures), type, take
//! screenshots, list what went wrong in the console, and read what went over the network: the requests with
//! their headers, the WebSockets it opened and the JSON messages they carried (as the browser's network layer
//! saw them, not as the page says it sent them).

use std::rc::Rc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use super::cdp::Cdp;

/// How often a waiting test looks at the page again.
const POLL: Duration = Duration::from_millis(50);

/// Which way a WebSocket message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

/// A JSON text frame of one of the page's WebSockets.
#[derive(Debug, Clone)]
pub struct SocketMessage {
    pub direction: Direction,
    /// When the browser's network layer sent or received it, in seconds (a monotonic clock).
    pub at: f64,
    pub json: Value,
}

pub struct Page {
    cdp: Rc<Cdp>,
    session: String,
}

impl Page {
    /// A new tab at the web client (`window.parley` is there once it loaded).
    pub async fn open(cdp: Rc<Cdp>, url: &str) -> Page {
        Page::open_until(cdp, url, "!!window.parley").await
    }

    /// A new tab at `url`, loaded and with `ready` true.
    pub async fn open_until(cdp: Rc<Cdp>, url: &str, ready: &str) -> Page {
        let target = cdp.call("Target.createTarget", json!({"url": "about:blank"}), None).await.expect("new tab");
        let attached = cdp
            .call("Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true}), None)
            .await
            .expect("attach to the tab");
        let session = attached["sessionId"].as_str().expect("a session id").to_string();
        let page = Page { cdp, session };
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            page.call(domain, json!({})).await;
        }
        page.call("Page.navigate", json!({"url": url})).await;
        let loaded = format!("document.readyState === 'complete' && ({ready})");
        page.wait_for("the page to load", &loaded, Duration::from_secs(15)).await;
        page
    }

    /// Marks the document now shown, so that [`Page::wait_for_new_document`] can tell it from the next one.
    pub async fn mark_document(&self) {
        self.eval("window.__harnessOldDocument = true").await;
    }

    /// After [`Page::mark_document`] and a navigation: waits for a new document, loaded, where `ready` holds.
    pub async fn wait_for_new_document(&self, what: &str, ready: &str) -> Value {
        let condition = format!("!window.__harnessOldDocument && document.readyState === 'complete' && ({ready})");
        self.wait_for(what, &condition, Duration::from_secs(15)).await
    }

    /// Reloads the tab (as the browser's reload button does) and waits for the page again.
    pub async fn reload(&self) {
        self.mark_document().await;
        self.call("Page.reload", json!({})).await;
        self.wait_for_new_document("the page to load again", "!!window.parley").await;
    }

    async fn call(&self, method: &str, params: Value) -> Value {
        self.cdp.call(method, params, Some(&self.session)).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Evaluates an expression (awaiting it if it is a promise); panics with the page's exception.
    pub async fn eval(&self, expression: &str) -> Value {
        self.try_eval(expression).await.unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn try_eval(&self, expression: &str) -> Result<Value, String> {
        let r = self
            .cdp
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
                Some(&self.session),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(format!("`{expression}` threw: {}", ex["exception"]["description"].as_str().unwrap_or("?")));
        }
        Ok(r["result"]["value"].clone())
    }

    /// `window.parley.snapshot()`: everything the page knows about its state.
    pub async fn state(&self) -> Value {
        self.eval("window.parley.snapshot()").await
    }

    /// Polls `condition` (an expression) until it is truthy; returns its value. On timeout panics with
    /// `what` and the page's state.
    pub async fn wait_for(&self, what: &str, condition: &str, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let v = self.try_eval(condition).await;
            match &v {
                Ok(Value::Null | Value::Bool(false)) | Err(_) => {}
                Ok(Value::Number(n)) if n.as_f64() == Some(0.0) => {}
                Ok(Value::String(s)) if s.is_empty() => {}
                Ok(v) => return v.clone(),
            }
            if tokio::time::Instant::now() >= deadline {
                let state = self.try_eval("window.parley && window.parley.snapshot()").await;
                panic!(
                    "timed out after {timeout:?} waiting for {what} ({condition}): last {v:?}\npage state: {state:#?}\n\
                     console: {:#?}",
                    self.console_errors()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Clicks the element's centre with real mouse events.
    pub async fn click(&self, selector: &str) {
        let sel = serde_json::to_string(selector).expect("selector");
        let at = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({sel}); if (!e) throw new Error('no ' + {sel}); \
                 if (e.disabled) throw new Error({sel} + ' is disabled'); e.scrollIntoView({{block: 'center'}}); \
                 const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
            ))
            .await;
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": at[0], "y": at[1], "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }

    /// Replaces the text of an input with `text`, typed as a person would paste it, then leaves the field
    /// (which fires its `change`).
    pub async fn fill(&self, selector: &str, text: &str) {
        let sel = serde_json::to_string(selector).expect("selector");
        self.click(selector).await;
        self.eval(&format!("document.querySelector({sel}).select()")).await;
        self.call("Input.insertText", json!({"text": text})).await;
        self.eval(&format!("document.querySelector({sel}).blur()")).await;
    }

    /// Saves a PNG of the page (desktop size, then phone size) under `target/browser-screenshots/`; at phone
    /// size nothing may stick out sideways.
    pub async fn screenshots(&self, name: &str) {
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target")), Into::into)
            .join("browser-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        self.save_png(&dir.join(format!("{name}.png"))).await;
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
        )
        .await;
        let overflow = self.eval("document.documentElement.scrollWidth - window.innerWidth").await;
        assert_eq!(overflow, 0, "the page is wider than a phone's screen by {overflow} px");
        self.save_png(&dir.join(format!("{name}-phone.png"))).await;
        self.call("Emulation.clearDeviceMetricsOverride", json!({})).await;
    }

    /// Shows the page as a phone does (390 × 844 CSS pixels, touch-sized) until [`Page::desktop_size`].
    pub async fn phone_size(&self) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
        )
        .await;
    }

    /// Back to the browser's own window size.
    pub async fn desktop_size(&self) {
        self.call("Emulation.clearDeviceMetricsOverride", json!({})).await;
    }

    async fn save_png(&self, path: &std::path::Path) {
        // Scrolled to the end, a sticky element (the page's docked controls) sits where the layout puts it,
        // not over the middle of the full-page picture.
        self.eval("window.scrollTo(0, document.documentElement.scrollHeight); true").await;
        let shot = self.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true})).await;
        let png =
            base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().expect("data")).expect("base64");
        std::fs::write(path, png).expect("screenshot written");
    }

    /// Accessible basics: every control has a name (its label, `aria-label` or text), every field a label.
    pub async fn assert_controls_named(&self) {
        let unnamed = self
            .eval(
                "[...document.querySelectorAll('button, input, audio, meter, summary')].filter(e => \
                 !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()) \
                 .map(e => e.outerHTML.slice(0, 80))",
            )
            .await;
        assert_eq!(unnamed, json!([]), "controls without an accessible name");
    }

    /// From now on, keep the requests the page sends, the WebSockets it opens and their text frames (call it
    /// before the page does what the test looks at).
    pub async fn record_network(&self) {
        self.call("Network.enable", json!({})).await;
    }

    /// The HTTP requests recorded so far: their URL and the headers the page gave them.
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.cdp
            .events(&self.session)
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| {
                let r = &e["params"]["request"];
                Some((r["url"].as_str()?.to_string(), r["headers"].clone()))
            })
            .collect()
    }

    /// Waits until the page has sent a request whose URL starts with `prefix` (the browser may report it a
    /// little after the page acted on its answer).
    pub async fn wait_for_request(&self, prefix: &str, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.requests().iter().any(|(url, _)| url.starts_with(prefix)) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The addresses of the WebSockets the page opened since recording began.
    pub fn socket_urls(&self) -> Vec<String> {
        self.cdp
            .events(&self.session)
            .iter()
            .filter(|e| e["method"] == "Network.webSocketCreated")
            .filter_map(|e| e["params"]["url"].as_str().map(str::to_string))
            .collect()
    }

    /// The JSON text frames recorded so far, in the order the browser reported them.
    pub fn socket_messages(&self) -> Vec<SocketMessage> {
        self.cdp
            .events(&self.session)
            .iter()
            .filter_map(|e| {
                let direction = match e["method"].as_str()? {
                    "Network.webSocketFrameSent" => Direction::Sent,
                    "Network.webSocketFrameReceived" => Direction::Received,
                    _ => return None,
                };
                let p = &e["params"];
                let json = serde_json::from_str(p["response"]["payloadData"].as_str()?).ok()?;
                Some(SocketMessage { direction, at: p["timestamp"].as_f64()?, json })
            })
            .collect()
    }

    /// Waits until a recorded message satisfies `matches`; returns it. On timeout panics with `what` and every
    /// message recorded.
    pub async fn wait_for_message(
        &self,
        what: &str,
        matches: impl Fn(&SocketMessage) -> bool,
        timeout: Duration,
    ) -> SocketMessage {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(m) = self.socket_messages().into_iter().find(|m| matches(m)) {
                return m;
            }
            if tokio::time::Instant::now() >= deadline {
                let seen: Vec<_> = self.socket_messages().into_iter().map(|m| (m.direction, m.json)).collect();
                panic!("timed out after {timeout:?} waiting for {what}; messages: {seen:#?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Uncaught exceptions, `console.error`s and error log entries (failed loads, CSP violations), as text.
    pub fn console_errors(&self) -> Vec<String> {
        self.cdp
            .events(&self.session)
            .iter()
            .filter_map(|e| {
                let p = &e["params"];
                match e["method"].as_str()? {
                    "Runtime.exceptionThrown" => {
                        let d = &p["exceptionDetails"];
                        let what = d["exception"]["description"].as_str().or(d["text"].as_str()).unwrap_or("?");
                        Some(format!("exception: {what} ({}:{})", d["url"], d["lineNumber"]))
                    }
                    "Runtime.consoleAPICalled" if matches!(p["type"].as_str(), Some("error" | "assert")) => {
                        Some(format!("console.{}: {}", p["type"], p["args"]))
                    }
                    "Log.entryAdded" if p["entry"]["level"] == "error" => {
                        Some(format!("log: {} {}", p["entry"]["text"], p["entry"]["url"]))
                    }
                    _ => None,
                }
            })
            .collect()
    }
}
