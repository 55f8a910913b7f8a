//! What every browser test sets up and tears down: the one-at-a-time lock, parley with its emulators, a
//! browser with a fake microphone and a tab on the page, opened at the address parley printed (with its
//! development credential); and at the end, no console errors and a clean stop.

use std::collections::HashMap;

use super::chromium::{Browser, Mic};
use super::page::Page;
use super::server::{self, Server};
use super::{ONE_AT_A_TIME, WAIT};

pub struct Rig {
    pub server: Server,
    pub browser: Browser,
    pub page: Page,
    _one_at_a_time: tokio::sync::MutexGuard<'static, ()>,
}

impl Rig {
    /// parley (its environment adjusted by `tweak`) and a tab on the page parley printed, with `query`
    /// (`a=b&c=d`) added to its address, the microphone playing `mic`.
    pub async fn start(mic: Mic, query: &str, tweak: impl FnOnce(&mut HashMap<String, String>)) -> Rig {
        Rig::at(mic, tweak, |server| server.page_url(query)).await
    }

    /// The default page and server.
    pub async fn default(mic: Mic) -> Rig {
        Rig::start(mic, "", |_| {}).await
    }

    /// parley (adjusted by `tweak`) and a tab at the `address` it gives, for tests of other ways in than the
    /// printed address (none at all, a token from an app).
    pub async fn at(
        mic: Mic,
        tweak: impl FnOnce(&mut HashMap<String, String>),
        address: impl FnOnce(&Server) -> String,
    ) -> Rig {
        let one = ONE_AT_A_TIME.lock().await;
        let server = server::start(tweak).await;
        let browser = Browser::launch(mic).await;
        let page = browser.open(&address(&server)).await;
        Rig { server, browser, page, _one_at_a_time: one }
    }

    /// Presses Start and waits for the session; returns its id.
    pub async fn connect(&self) -> String {
        self.page.click("#start").await;
        let id = self
            .page
            .wait_for("the session", "parley.connection.state === 'ready' && parley.connection.sessionId", WAIT)
            .await;
        id.as_str().expect("a session id").to_string()
    }

    /// Types a turn into the message box and sends it.
    pub async fn say(&self, text: &str) {
        self.page.fill("#message", text).await;
        self.page.click("#send").await;
    }

    /// Asserts the console stayed clean, then stops the browser and the server.
    pub async fn finish(self) {
        assert_eq!(self.page.console_errors(), Vec::<String>::new(), "no console errors");
        self.close().await;
    }

    /// Stops the browser and the server.
    pub async fn close(self) {
        self.browser.close().await;
        self.server.stop().await;
    }
}
