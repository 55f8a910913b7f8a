//! What the browser tests stand on: parley and its provider emulators on loopback (`server`), a headless
//! Chromium with a fake microphone (`chromium`), its DevTools connection (`cdp`) and a tab (`page`).

pub mod cdp;
pub mod chromium;
pub mod page;
#[path = "../../support/provision.rs"]
pub mod provision;
pub mod rig;
pub mod server;

use std::time::Duration;

/// How long a test waits for any one thing the page should do.
pub const WAIT: Duration = Duration::from_secs(20);

/// One browser test at a time: each drives real-time audio through a browser and parley, and two cores
/// shared with a compiler would make them race each other's clocks.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
