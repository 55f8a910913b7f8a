// Microphone capture, on the audio rendering thread: mixes the input down to mono, resamples it from the
// context's rate to parley's rate through the windowed-sinc low-pass of resampler.js, and posts frames of
// 16-bit little-endian PCM (20 ms by default: 640 bytes at 16 kHz) to the main thread, which sends each as
// one binary WebSocket frame.
//
// processorOptions: {targetRate = 16000, frameMs = 20}
// Messages out: {type:"frame", pcm: ArrayBuffer, level}   (level: RMS of the frame, 0..1)
// Messages in:  {type:"stop"}   (the processor ends)

import { Resampler } from "./resampler.js";

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate = 16000, frameMs = 20 } = options.processorOptions || {};
    this.resampler = new Resampler(sampleRate, targetRate);
    this.frameLength = Math.round((targetRate * frameMs) / 1000);
    this.frame = new DataView(new ArrayBuffer(this.frameLength * 2));
    this.fill = 0;
    this.energy = 0;
    this.running = true;
    this.mono = new Float32Array(128);
    this.port.onmessage = (e) => {
      if (e.data && e.data.type === "stop") this.running = false;
    };
  }

  process(inputs) {
    const input = inputs[0];
    if (!this.running) return false;
    if (!input || input.length === 0) return true; // no source connected (yet)
    const n = input[0].length;
    if (this.mono.length !== n) this.mono = new Float32Array(n);
    const mono = this.mono;
    mono.set(input[0]);
    for (let c = 1; c < input.length; c++) for (let i = 0; i < n; i++) mono[i] += input[c][i];
    if (input.length > 1) for (let i = 0; i < n; i++) mono[i] /= input.length;
    const out = this.resampler.process(mono);
    for (let i = 0; i < out.length; i++) {
      const s = Math.max(-1, Math.min(1, out[i]));
      this.energy += s * s;
      // Little-endian whatever the platform's byte order (a DataView, not an Int16Array).
      this.frame.setInt16(2 * this.fill++, s < 0 ? Math.round(s * 0x8000) : Math.round(s * 0x7fff), true);
      if (this.fill === this.frameLength) {
        const pcm = this.frame.buffer;
        this.port.postMessage({ type: "frame", pcm, level: Math.sqrt(this.energy / this.frameLength) }, [pcm]);
        this.frame = new DataView(new ArrayBuffer(this.frameLength * 2));
        this.fill = 0;
        this.energy = 0;
      }
    }
    return true;
  }
}

registerProcessor("parley-capture", CaptureProcessor);
