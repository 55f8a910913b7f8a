// Per-turn decoding pipelines: the bytes of one assistant turn in, mono Float32 samples at the audio
// context's rate out (through `sink`). One pipeline per turn, so dropping a turn is closing its pipeline:
// nothing it still had in flight comes out afterwards.
//
// MP3 goes through a WebCodecs AudioDecoder, one whole MPEG frame per chunk (mp3.js cuts them), straight into
// the same worklet queue as PCM. The alternative, Media Source Extensions on an <audio> element, started
// about as fast in Chromium (both under 25 ms from the first bytes, headless), but it cannot drop exactly one
// turn's samples, its played time is only as exact as `currentTime`, and it would be a second playback path;
// so MSE is the fallback for browsers whose AudioDecoder cannot decode MP3 (mse-player.js).

import { Mp3Framer } from "./mp3.js";
import { Resampler } from "./resampler.js";

/** What the announced MIME type means for playback. */
export function parseMime(mime) {
  const [type, ...params] = String(mime || "").toLowerCase().split(";").map((s) => s.trim());
  const rateParam = params.find((p) => p.startsWith("rate="));
  const rate = rateParam ? Number(rateParam.slice(5)) : NaN;
  if (type === "audio/mpeg" || type === "audio/mp3") return { kind: "mp3" };
  if ((type === "audio/pcm" || type === "audio/l16") && rate >= 8000 && rate <= 48000) return { kind: "pcm", rate };
  return { kind: "unsupported", mime };
}

let mp3Support = null;
/** Whether this browser's WebCodecs can decode MP3 (asked once). */
export function webCodecsMp3() {
  if (!mp3Support) {
    mp3Support =
      typeof AudioDecoder === "undefined"
        ? Promise.resolve(false)
        : AudioDecoder.isConfigSupported({ codec: "mp3", sampleRate: 44100, numberOfChannels: 1 })
            .then((r) => r.supported === true)
            .catch(() => false);
  }
  return mp3Support;
}

/** Mixes planar channels down to one. */
function toMono(planes) {
  if (planes.length === 1) return planes[0];
  const out = new Float32Array(planes[0].length);
  for (const p of planes) for (let i = 0; i < out.length; i++) out[i] += p[i] / planes.length;
  return out;
}

/** 16-bit little-endian PCM at `rate`. */
export class PcmPipeline {
  constructor(rate, contextRate, sink) {
    this.resampler = new Resampler(rate, contextRate);
    this.sink = sink;
    this.carry = null; // an odd byte left over from the previous frame
    this.closed = false;
  }

  push(bytes) {
    if (this.closed) return;
    let b = bytes;
    if (this.carry !== null) {
      b = new Uint8Array(bytes.length + 1);
      b[0] = this.carry;
      b.set(bytes, 1);
      this.carry = null;
    }
    const n = b.length >> 1;
    if (b.length & 1) this.carry = b[b.length - 1];
    const view = new DataView(b.buffer, b.byteOffset, n * 2);
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) f[i] = view.getInt16(2 * i, true) / 0x8000;
    const out = this.resampler.process(f);
    if (out.length) this.sink(out);
  }

  async end() {
    if (this.closed) return;
    const tail = this.resampler.flush();
    if (tail.length) this.sink(tail);
  }

  close() {
    this.closed = true;
  }
}

/** MP3 through WebCodecs. `onError` is told once if the decoder fails. */
export class Mp3Pipeline {
  constructor(contextRate, sink, onError) {
    this.contextRate = contextRate;
    this.sink = sink;
    this.onError = onError;
    this.framer = new Mp3Framer();
    this.decoder = null;
    this.resampler = null;
    this.timestamp = 0;
    this.closed = false;
  }

  configure(header) {
    this.decoder = new AudioDecoder({
      output: (data) => this.output(data),
      error: (e) => this.fail(e),
    });
    this.decoder.configure({ codec: "mp3", sampleRate: header.sampleRate, numberOfChannels: header.channels });
  }

  output(data) {
    try {
      if (this.closed) return;
      const planes = [];
      for (let c = 0; c < data.numberOfChannels; c++) {
        const plane = new Float32Array(data.numberOfFrames);
        data.copyTo(plane, { planeIndex: c, format: "f32-planar" });
        planes.push(plane);
      }
      if (!this.resampler) this.resampler = new Resampler(data.sampleRate, this.contextRate);
      const out = this.resampler.process(toMono(planes));
      if (out.length) this.sink(out);
    } catch (e) {
      this.fail(e);
    } finally {
      data.close();
    }
  }

  fail(e) {
    if (this.closed) return;
    this.close();
    this.onError(e);
  }

  push(bytes) {
    if (this.closed) return;
    try {
      for (const { header, data } of this.framer.push(bytes)) {
        if (!this.decoder) this.configure(header);
        const duration = Math.round((header.samples * 1e6) / header.sampleRate);
        this.decoder.decode(new EncodedAudioChunk({ type: "key", timestamp: this.timestamp, duration, data }));
        this.timestamp += duration;
      }
    } catch (e) {
      this.fail(e);
    }
  }

  async end() {
    if (this.closed || !this.decoder) return;
    try {
      await this.decoder.flush();
    } catch (e) {
      // Closed (dropped) while flushing: nothing more to play.
      return;
    }
    if (this.closed) return;
    const tail = this.resampler ? this.resampler.flush() : new Float32Array(0);
    if (tail.length) this.sink(tail);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
  }
}
