//! Debian's Chromium, headless, with a fake microphone that plays a committed speech recording and a fake
//! permission prompt that says yes; driven over the DevTools protocol (`cdp`). One fresh profile per browser.
//!
//! The binary is `PARLEY_CHROMIUM`, else Debian's `/usr/bin/chromium`, installed on first use when missing
//! (package `chromium`, see `provision`). A browser that cannot be found or installed fails the test saying
//! why: the browser tests never skip.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::rc::Rc;
use std::time::Duration;

use serde_json::json;
use tokio::process::{Child, Command};

use super::cdp::Cdp;
use super::page::Page;

const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What the fake microphone plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mic {
    /// tests/fixtures/audio/speech_16k.wav once (`%noloop`): 2.3 s of speech, then silence.
    Speech,
    /// The same file over and over: the user speaks again every 3.8 s (1.5 s after each utterance ends).
    SpeechOnRepeat,
    /// Silence, for tests whose turns are typed: the microphone streams, but nothing in it is speech.
    Silence,
}

const SPEECH_WAV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/audio/speech_16k.wav");

/// A second of digital silence as a WAV file in `dir`.
fn silent_wav(dir: &Path) -> String {
    let path = dir.join("silence.wav");
    let data_len: u32 = 16_000 * 2;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&16_000u32.to_le_bytes());
    wav.extend_from_slice(&32_000u32.to_le_bytes()); // bytes per second
    wav.extend_from_slice(&2u16.to_le_bytes()); // block align
    wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    wav.resize(44 + data_len as usize, 0);
    std::fs::write(&path, wav).expect("silence.wav written");
    path.display().to_string()
}

fn chromium_path() -> PathBuf {
    if let Some(path) = std::env::var_os("PARLEY_CHROMIUM").map(PathBuf::from) {
        assert!(path.exists(), "PARLEY_CHROMIUM names {}, which does not exist", path.display());
        return path;
    }
    // Once per test process: a failed installation is reported by every test, not retried by each.
    static PROVISIONED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let provisioned = PROVISIONED.get_or_init(|| {
        super::provision::ensure("chromium", "the browser tests", || Path::new(DEFAULT_CHROMIUM).exists())
    });
    if let Err(e) = provisioned {
        panic!("{e} (or set PARLEY_CHROMIUM to a Chromium binary)");
    }
    PathBuf::from(DEFAULT_CHROMIUM)
}

/// A running headless Chromium.
pub struct Browser {
    child: Child,
    pub cdp: Rc<Cdp>,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium with the fake microphone playing `mic`.
    pub async fn launch(mic: Mic) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let wav = match mic {
            Mic::Speech => format!("{SPEECH_WAV}%noloop"),
            Mic::SpeechOnRepeat => SPEECH_WAV.to_string(),
            Mic::Silence => format!("{}%noloop", silent_wav(profile.path())),
        };
        let log = std::fs::File::create(profile.path().join("chromium.log")).expect("log file");
        let mut cmd = Command::new(chromium_path());
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
            "--remote-debugging-port=0",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            "--autoplay-policy=no-user-gesture-required",
            // Timers run on time even when the machine is busy or the tab counts as hidden: a page's own
            // schedule (token renewal, playback reports) is what several tests check.
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--disable-backgrounding-occluded-windows",
        ])
        .arg(format!("--user-data-dir={}", profile.path().join("profile").display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .arg(format!("--use-file-for-fake-audio-capture={wav}"))
        .kill_on_drop(true);
        let mut child = cmd.spawn().expect("Chromium starts");
        let url = wait_for_devtools(&mut child, profile.path()).await;
        let cdp = Cdp::connect(&url).await.expect("DevTools connection");
        Browser { child, cdp: Rc::new(cdp), profile }
    }

    /// A new tab at the web client's `url`, with console and exception reporting on.
    pub async fn open(&self, url: &str) -> Page {
        Page::open(self.cdp.clone(), url).await
    }

    /// A new tab at `url`, once it loaded and `ready` (an expression) is true.
    pub async fn open_until(&self, url: &str, ready: &str) -> Page {
        Page::open_until(self.cdp.clone(), url, ready).await
    }

    /// Closes the browser and waits for it to exit.
    pub async fn close(mut self) {
        let _ = self.cdp.call("Browser.close", json!({}), None).await;
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
        drop(self.profile);
    }
}

/// Chromium writes `DevToolsActivePort` (port, then path) into the profile once it listens.
async fn wait_for_devtools(child: &mut Child, profile: &Path) -> String {
    let file = profile.join("profile").join("DevToolsActivePort");
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                return format!("ws://127.0.0.1:{port}{path}");
            }
        }
        let log = || std::fs::read_to_string(profile.join("chromium.log")).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            panic!("Chromium exited ({status}) before it listened; its log:\n{}", log());
        }
        assert!(tokio::time::Instant::now() < deadline, "Chromium did not listen within {START_TIMEOUT:?}:\n{}", log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
