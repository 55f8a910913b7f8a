//! The client's signal processing, run inside Chromium on the very modules the page loads: the capture
//! resampler's filter (a low-pass before decimation, not sample dropping) and the MP3 framer that feeds
//! WebCodecs whole frames out of arbitrarily cut network chunks.

use base64::Engine as _;
use serde_json::Value;

use crate::harness::chromium::Mic;
use crate::harness::rig::Rig;

/// Gain in dB of a 1 s full-scale tone at each frequency through `new Resampler(from, to)`, fed in render
/// quanta of 128 samples as the worklet feeds it.
const RESPONSE: &str = r#"(async (from, to, freqs) => {
  const { Resampler } = await import('/assets/resampler.js');
  const out = {};
  for (const f of freqs) {
    const r = new Resampler(from, to);
    const x = new Float32Array(from);
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(2 * Math.PI * f * i / from);
    const parts = [];
    for (let i = 0; i < x.length; i += 128) parts.push(r.process(x.subarray(i, i + 128)));
    const y = parts.flatMap(p => [...p]).slice(200, -200);
    const rms = Math.sqrt(y.reduce((s, v) => s + v * v, 0) / y.length);
    out[f] = 20 * Math.log10(rms / Math.SQRT1_2);
  }
  return out;
})"#;

#[actix_web::test]
async fn the_capture_resampler_keeps_speech_and_removes_what_would_alias() {
    let rig = Rig::default(Mic::Silence).await;
    let page = &rig.page;
    for from in [48_000, 44_100] {
        let gains = page
            .eval(&format!("{RESPONSE}({from}, 16000, [300, 1000, 3000, 6000, 8400, 10000, 12000, 15000, 20000])"))
            .await;
        let db = |f: u32| gains[f.to_string()].as_f64().unwrap();
        for f in [300, 1000, 3000, 6000] {
            assert!(db(f).abs() < 0.1, "{from} Hz → 16 kHz passes {f} Hz flat: {} dB", db(f));
        }
        for f in [8400, 10000, 12000, 15000, 20000] {
            // Dropping samples would fold these into the speech band at full strength.
            assert!(db(f) < -70.0, "{from} Hz → 16 kHz removes {f} Hz: {} dB", db(f));
        }
    }
    // Output length and alignment: 48 kHz → 16 kHz is exactly one sample in three, undelayed.
    let aligned = page
        .eval(
            "(async () => { const { Resampler } = await import('/assets/resampler.js'); \
             const r = new Resampler(48000, 16000); const x = new Float32Array(4800); x[300] = 1; \
             const y = [...r.process(x), ...r.flush()]; return [y.length, y.indexOf(Math.max(...y))]; })()",
        )
        .await;
    assert_eq!(aligned, serde_json::json!([1600, 100]));
    rig.finish().await;
}

#[actix_web::test]
async fn the_mp3_framer_cuts_whole_frames_out_of_arbitrary_chunks() {
    let rig = Rig::default(Mic::Silence).await;
    let page = &rig.page;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/audio");
    for name in ["mp3_id3v2.mp3", "mp3_vbr_xing_44k.mp3", "mp3_mpeg2_22k_mono.mp3", "mp3_mpeg25_11k_stereo.mp3"] {
        let bytes = std::fs::read(format!("{dir}/{name}")).unwrap();
        let exact =
            parley::audio::duration_seconds(Some("audio/mpeg"), std::io::Cursor::new(&bytes)).expect("a duration");
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        for chunk in [7, 333, 4096] {
            let secs: Value = page
                .eval(&format!(
                    "(async () => {{ const {{ Mp3Framer }} = await import('/assets/mp3.js'); \
                     const b = Uint8Array.from(atob('{b64}'), c => c.charCodeAt(0)); const f = new Mp3Framer(); \
                     let s = 0; for (let i = 0; i < b.length; i += {chunk}) for (const fr of f.push(b.subarray(i, i + {chunk}))) \
                     s += fr.header.samples / fr.header.sampleRate; return s; }})()"
                ))
                .await;
            let secs = secs.as_f64().unwrap();
            assert!((secs - exact).abs() < 1e-6, "{name} in {chunk}-byte chunks: {secs} s, exactly {exact} s");
        }
    }
    rig.finish().await;
}
