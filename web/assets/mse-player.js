// Fallback MP3 playback through Media Source Extensions, for browsers whose WebCodecs cannot decode MP3:
// one <audio> element, one SourceBuffer in "sequence" mode, the turns appended one after the other. Each
// track remembers where it starts and ends on the element's timeline, so the time heard per turn is
// `currentTime` minus the track's start. Dropping a track pauses the element at once and removes everything
// buffered from the current position on.
//
// Less exact than the worklet path (see pipelines.js): the played time is as fine as `currentTime`, and a
// drop also discards any later track already buffered (the server never overlaps two turns' audio, so in
// practice there is none).

const MS = () => window.ManagedMediaSource || window.MediaSource;
const POLL_MS = 50;
/** The element stops this close to the end of what is buffered; closer than this counts as the end. */
const END_SLACK_S = 0.15;

export class MsePlayer {
  static supported() {
    const M = MS();
    return !!M && M.isTypeSupported("audio/mpeg");
  }

  /** @param {() => void} onChange called as playback advances */
  constructor(onChange) {
    this.onChange = onChange;
    this.audio = new Audio();
    this.audio.disableRemotePlayback = true;
    this.source = new (MS())();
    this.audio.src = URL.createObjectURL(this.source);
    this.sb = null;
    this.pending = []; // {track, bytes}
    this.appendErrors = 0;
    /** track → {start, end, ended, dropped, whole} on the element's timeline (seconds); `whole`: played to its end */
    this.tracks = new Map();
    this.source.addEventListener("sourceopen", () => {
      this.sb = this.source.addSourceBuffer("audio/mpeg");
      this.sb.mode = "sequence";
      this.sb.addEventListener("updateend", () => this.pump());
      this.pump();
    });
    this.timer = setInterval(() => this.onChange(), POLL_MS);
  }

  bufferedEnd() {
    const b = this.sb ? this.sb.buffered : null;
    return b && b.length ? b.end(b.length - 1) : 0;
  }

  /** The pipeline interface of pipelines.js, writing into the shared SourceBuffer. */
  pipeline(track) {
    this.tracks.set(track, { start: null, end: null, ended: false, dropped: false, whole: false });
    return {
      push: (bytes) => {
        this.pending.push({ track, bytes });
        this.pump();
      },
      end: async () => {
        const t = this.tracks.get(track);
        if (t) t.ended = true;
      },
      close: () => this.drop(track),
    };
  }

  pump() {
    if (!this.sb || this.sb.updating || this.pending.length === 0) return;
    const { track, bytes } = this.pending.shift();
    const t = this.tracks.get(track);
    if (!t || t.dropped) return this.pump();
    if (t.start === null) {
      // Start where the audio is now if the element has run dry, else right after what is buffered.
      const now = this.audio.currentTime;
      if (this.bufferedEnd() < now) this.sb.timestampOffset = now;
      t.start = Math.max(now, this.bufferedEnd());
      // Earlier tracks end where this one starts.
      for (const o of this.tracks.values()) if (o !== t && o.start !== null && o.end === null) o.end = t.start;
    }
    try {
      this.sb.appendBuffer(bytes);
    } catch (e) {
      // QuotaExceeded or a closed source: this chunk is lost, playback goes on.
      this.appendErrors++;
      return;
    }
    if (this.audio.paused) this.audio.play().catch(() => {});
  }

  drop(track) {
    const t = this.tracks.get(track);
    if (!t || t.dropped) return;
    t.dropped = true;
    this.pending = this.pending.filter((p) => p.track !== track);
    const now = this.audio.currentTime;
    if (t.start !== null && now >= t.start) {
      this.audio.pause();
      t.end = now;
      const cut = () => {
        if (this.sb.updating) return void this.sb.addEventListener("updateend", cut, { once: true });
        try {
          if (this.bufferedEnd() > now) this.sb.remove(now, Infinity);
        } catch {
          // The source closed meanwhile: nothing left to remove.
        }
      };
      if (this.sb) cut();
    } else {
      t.end = t.start;
    }
  }

  /** Frames heard per track, at `rate` (all of a track that `finished` found played to its end). */
  played(rate) {
    const out = {};
    const now = this.audio.currentTime;
    const end = this.bufferedEnd();
    for (const [track, t] of this.tracks) {
      if (t.start === null) continue;
      const stop = t.end !== null ? t.end : end;
      out[track] = Math.round(Math.max(0, (t.whole ? stop : Math.min(now, stop)) - t.start) * rate);
    }
    return out;
  }

  get playing() {
    return !this.audio.paused && this.audio.readyState >= 3;
  }

  /** What the element and the source are doing, for the page's state. */
  diagnostics() {
    const a = this.audio;
    return {
      source: this.source.readyState,
      currentTime: a.currentTime,
      bufferedEnd: this.bufferedEnd(),
      paused: a.paused,
      readyState: a.readyState,
      error: a.error ? a.error.message || String(a.error.code) : null,
      appendErrors: this.appendErrors,
    };
  }

  /**
   * [track, done] pairs: a track is done once all of it has been heard (or it was dropped). The element stops
   * short of the very end of what is buffered, so a track within END_SLACK_S of its end counts as heard whole
   * from then on.
   */
  finished() {
    const now = this.audio.currentTime;
    const settled = this.sb !== null && !this.sb.updating; // appended bytes have landed in `buffered`
    return [...this.tracks].map(([track, t]) => {
      if (t.dropped || t.whole) return [track, true];
      const waiting = this.pending.some((p) => p.track === track);
      const end = t.end !== null ? t.end : this.bufferedEnd();
      t.whole = t.ended && settled && !waiting && now >= end - END_SLACK_S;
      return [track, t.whole];
    });
  }
}
