//! The emulated voice: a 140 Hz voiced sound with five harmonics under a 4 Hz syllable envelope. Not speech,
//! but it sounds like someone talking behind a wall, so a person listening to a session hears that audio
//! flows, and its energy is well above any speech detector's threshold. A pure function of the absolute
//! sample index, so chunks rendered separately join without clicks. The MP3 assets encode the same signal
//! (see assets/generate.py).

use std::f64::consts::PI;

const F0_HZ: f64 = 140.0;
const HARMONICS: [f64; 5] = [1.0, 0.6, 0.45, 0.25, 0.15];
const SYLLABLE_S: f64 = 0.25;
const PEAK: f64 = 0.3 * 32767.0;

/// Sample number `n` of the tone at `rate` Hz.
pub fn sample(n: u64, rate: u32) -> i16 {
    let t = n as f64 / f64::from(rate);
    let env = 0.2 + 0.8 * (PI * t / SYLLABLE_S).sin().powi(2);
    let norm: f64 = HARMONICS.iter().sum();
    let v: f64 =
        HARMONICS.iter().enumerate().map(|(k, a)| a * (2.0 * PI * F0_HZ * (k as f64 + 1.0) * t).sin()).sum::<f64>()
            / norm;
    (v * env * PEAK).round() as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tone_is_loud_enough_to_hear_and_never_clips() {
        let samples: Vec<i16> = (0..16_000).map(|n| sample(n, 16_000)).collect();
        let rms = (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 16_000.0).sqrt();
        assert!(rms > 1000.0, "rms {rms}");
        assert!(samples.iter().all(|s| s.unsigned_abs() < 11_000));
    }
}
