//! Test clients: start the emulators on port 0, a WebSocket client that reads and writes raw frames (`ws`),
//! a WebSocket client on a bare TCP stream that sees how the connection itself ends (`raw_ws`), a raw HTTP/1.1
//! client that keeps chunk boundaries (`http`), and audio to feed the Deepgram emulator.

mod http;
mod raw_ws;
mod ws;

pub use http::*;
pub use raw_ws::*;
pub use ws::*;

use std::time::Duration;

use parley::emulators::{EmulatorOptions, Emulators};

/// Generous bound for anything that should happen "soon".
pub const SOON: Duration = Duration::from_secs(5);

/// Emulators with default options on free ports.
pub async fn start() -> Emulators {
    start_with(EmulatorOptions::default()).await
}

/// Emulators with `opts`.
pub async fn start_with(opts: EmulatorOptions) -> Emulators {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Emulators::start(opts).await.expect("emulators start")
}

/// `host:port` of a base URL.
pub fn authority(base: &str) -> String {
    let u = url::Url::parse(base).expect("base url");
    format!("{}:{}", u.host_str().expect("host"), u.port().expect("port"))
}

/// `secs` of a 300 Hz tone (clearly speech-loud) as 16-bit little-endian PCM at `rate`.
pub fn tone(secs: f64, rate: u32) -> Vec<u8> {
    (0..(secs * f64::from(rate)).round() as u64)
        .flat_map(|n| {
            let v = (2.0 * std::f64::consts::PI * 300.0 * n as f64 / f64::from(rate)).sin() * 8000.0;
            (v as i16).to_le_bytes()
        })
        .collect()
}

/// `secs` of digital silence as 16-bit PCM at `rate`.
pub fn silence(secs: f64, rate: u32) -> Vec<u8> {
    vec![0; 2 * (secs * f64::from(rate)).round() as usize]
}

/// Sends `pcm` in 20 ms binary frames (as fast as the socket takes them: audio time, not wall clock).
pub async fn stream_audio(ws: &mut Ws, pcm: &[u8], rate: u32) {
    let frame = (rate as usize / 50) * 2;
    for chunk in pcm.chunks(frame) {
        ws.binary(chunk.to_vec()).await;
    }
}
