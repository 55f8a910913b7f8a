// The playback queue, on the audio rendering thread. The main thread pushes mono Float32 samples at the
// context's rate, tagged with the track they belong to (one track per assistant turn; track ids never repeat,
// unlike turn ids, which restart with every connection); this processor plays them back to back and counts,
// per track, the samples that actually reached the output. A `drop` message removes every queued sample of a
// track before the next render quantum (128 frames, under 3 ms at 48 kHz): what is playing fades out within
// that quantum (no click) and nothing of the track is heard after it.
//
// Messages in:  {type:"push", track, samples}  {type:"end", track}  {type:"drop", track}  (track null: all)
// Messages out: {type:"progress", frame, played:{track:frames}, queued, state}
//               {type:"started"|"drained"|"dropped", track, frame, played}

const FADE_FRAMES = 128;
/** Progress reports while playing, in render quanta (8 × 128 frames ≈ 21 ms at 48 kHz). */
const REPORT_EVERY = 8;
/** Heartbeats while idle, so the main thread sees the audio clock advance. */
const IDLE_REPORT_EVERY = 64;

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    /** @type {{track:number, data:Float32Array, at:number}[]} */
    this.queue = [];
    this.played = new Map();
    this.ended = new Set();
    this.dropped = new Set();
    this.started = new Set();
    this.quanta = 0;
    this.wasPlaying = false;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(m) {
    if (m.type === "push") {
      if (!this.dropped.has(m.track) && m.samples.length) this.queue.push({ track: m.track, data: m.samples, at: 0 });
    } else if (m.type === "end") {
      this.ended.add(m.track);
      this.reportDrained(m.track);
    } else if (m.type === "drop") {
      this.drop(m.track);
    }
  }

  queuedOf(track) {
    let n = 0;
    for (const c of this.queue) if (c.track === track) n += c.data.length - c.at;
    return n;
  }

  drop(track) {
    const tracks = track === null ? [...new Set(this.queue.map((c) => c.track))] : [track];
    for (const t of tracks) {
      this.dropped.add(t);
      const head = this.queue[0];
      let fade = null;
      if (head && head.track === t && head.at > 0) {
        // Mid-sound: ramp the next few samples down instead of cutting to silence.
        const n = Math.min(FADE_FRAMES, head.data.length - head.at);
        fade = new Float32Array(n);
        for (let i = 0; i < n; i++) fade[i] = head.data[head.at + i] * (1 - (i + 1) / n);
      }
      this.queue = this.queue.filter((c) => c.track !== t);
      if (fade) this.queue.unshift({ track: t, data: fade, at: 0 });
      this.port.postMessage({ type: "dropped", track: t, frame: currentFrame, played: this.played.get(t) || 0 });
    }
  }

  reportDrained(track) {
    if (this.ended.has(track) && this.queuedOf(track) === 0) {
      this.ended.delete(track);
      this.port.postMessage({ type: "drained", track, frame: currentFrame, played: this.played.get(track) || 0 });
    }
  }

  process(_inputs, outputs) {
    const out = outputs[0];
    const ch0 = out[0];
    let i = 0;
    while (i < ch0.length && this.queue.length) {
      const c = this.queue[0];
      if (!this.started.has(c.track)) {
        this.started.add(c.track);
        this.port.postMessage({ type: "started", track: c.track, frame: currentFrame + i, played: 0 });
      }
      const n = Math.min(ch0.length - i, c.data.length - c.at);
      ch0.set(c.data.subarray(c.at, c.at + n), i);
      c.at += n;
      i += n;
      this.played.set(c.track, (this.played.get(c.track) || 0) + n);
      if (c.at === c.data.length) {
        this.queue.shift();
        this.reportDrained(c.track);
      }
    }
    for (let k = 1; k < out.length; k++) out[k].set(ch0);
    const playing = i > 0;
    this.quanta++;
    if (playing !== this.wasPlaying || this.quanta % (playing ? REPORT_EVERY : IDLE_REPORT_EVERY) === 0) {
      this.port.postMessage({
        type: "progress",
        frame: currentFrame + ch0.length,
        played: Object.fromEntries(this.played),
        queued: this.queue.reduce((n, c) => n + c.data.length - c.at, 0),
        state: playing ? "playing" : "idle",
      });
    }
    this.wasPlaying = playing;
    return true;
  }
}

registerProcessor("parley-playback", PlaybackProcessor);
