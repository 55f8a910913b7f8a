//! The web client (`web/`) in a real browser: Debian's headless Chromium, its microphone faked with a
//! committed speech recording, against parley and the provider emulators on loopback, opened at the address
//! parley printed (with its development credential; see `harness::server`). Each test asserts on the page's
//! own state (`window.parley`), its DOM, what the emulators received and what the REST API stored.
//! Screenshots go to `target/browser-screenshots/` (not committed).
//!
//! Needs `/usr/bin/chromium` (or `PARLEY_CHROMIUM`): the harness installs Debian's `chromium` when it is
//! missing and the tests run as root, and otherwise fails saying which package to install (see
//! `harness::provision`). The tests run one at a time (see `harness::ONE_AT_A_TIME`).

mod harness;

mod app_tokens;
mod assets;
mod bad_input;
mod client_tools;
mod conversation;
mod first_run;
mod history;
mod history_and_status;
mod in_page;
mod interrupt;
mod other_formats;
mod played;
mod reconnect;
mod signing_in;
