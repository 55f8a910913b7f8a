#!/usr/bin/env python3
"""Regenerates the MP3 loops the ElevenLabs emulator cuts its mp3_* audio from.

One file per documented mp3 output format: two seconds of the same speech-like tone the emulator synthesises
for pcm_* (a 140 Hz voiced sound with five harmonics under a 4 Hz syllable envelope, see
src/emulators/audio/tone.rs), encoded by LAME as mono constant bit rate with the bit reservoir disabled
(--nores) and no Xing/Info tag (-t). Without the reservoir every frame carries its own main data, so any run
of whole frames, in any order, is a valid MP3 stream a decoder accepts, and its duration is the frame count
times the frame length (1152 samples at 44.1 kHz, 576 at 22.05 kHz).

Needs: python3, lame (`apt-get install -y lame`). Run from anywhere: python3 src/emulators/assets/generate.py
"""
import math
import os
import struct
import subprocess
import tempfile
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
SECONDS = 2.0
VARIANTS = [(22050, 32), (44100, 32), (44100, 64), (44100, 96), (44100, 128), (44100, 192)]
HARMONICS = [1.0, 0.6, 0.45, 0.25, 0.15]


def tone(rate):
    """The samples of src/emulators/audio/tone.rs::sample, as 16-bit integers."""
    out = []
    norm = sum(HARMONICS)
    for n in range(int(SECONDS * rate)):
        t = n / rate
        env = 0.2 + 0.8 * math.sin(math.pi * t / 0.25) ** 2
        v = sum(a * math.sin(2 * math.pi * 140.0 * (k + 1) * t) for k, a in enumerate(HARMONICS)) / norm
        out.append(int(round(v * env * 0.3 * 32767)))
    return out


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for rate, kbps in VARIANTS:
            wav = os.path.join(tmp, f"tone_{rate}.wav")
            if not os.path.exists(wav):
                with wave.open(wav, "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(rate)
                    w.writeframes(struct.pack(f"<{int(SECONDS * rate)}h", *tone(rate)))
            out = os.path.join(HERE, f"tone_{rate}_{kbps}.mp3")
            subprocess.run(
                ["lame", "--quiet", "--nores", "-t", "--cbr", "-b", str(kbps), "-m", "m",
                 "--resample", str(rate / 1000), "--noreplaygain", wav, out],
                check=True,
            )
            print(out, os.path.getsize(out))


if __name__ == "__main__":
    main()
