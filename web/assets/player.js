// The assistant's voice: one playback queue (playback-worklet.js) fed by a decoding pipeline per turn
// (pipelines.js). Tracks what was actually heard: samples rendered per turn, from the worklet's own count.
//
// And tells the server (`opts.onPlayed`, the `played` message): how far a turn has played, every 250 ms while
// it plays; where it ended, once, when it has drained or been dropped (the position the audio thread reached
// at the drop). Positions never go back, a turn whose audio cannot be played here is never reported, and a
// turn is not reported again once it is over. The server stores an interrupted reply as far as it was heard,
// and times voice-to-voice from the first position.
//
// Barge-in contract: `drop(turnId)` (the server's `interrupt`, or the user's button) silences the turn within
// one render quantum, discards everything buffered for it, and any of its audio arriving later is counted in
// `lateFrames` and thrown away.

import { Mp3Pipeline, PcmPipeline, parseMime, webCodecsMp3 } from "./pipelines.js";
import { MsePlayer } from "./mse-player.js";

/** How often a playing turn's position goes to the server. */
const REPORT_EVERY_MS = 250;
/**
 * A dropped turn's final position comes from the audio thread within a render quantum or two; if it does not
 * come (the context is suspended), the last position known here is final.
 */
const DROP_CONFIRM_MS = 200;

export class Player {
  /**
   * @param {AudioContext} ctx
   * @param {{mp3:"auto"|"mse", onChange:()=>void, onError:(message:string)=>void,
   *          onPlayed:(turnId:number, ms:number)=>void}} opts
   */
  constructor(ctx, opts) {
    this.ctx = ctx;
    this.opts = opts;
    this.node = null;
    this.format = { kind: "unsupported", mime: "" };
    /**
     * turnId → {track, pipeline, ended, dropped, done, startedAt, told, over} for the current connection (turn
     * ids restart per connection). `told`: the last position sent; `over`: its final position was sent.
     */
    this.turns = new Map();
    this.nextTrack = 1;
    this.trackTurn = new Map(); // track → turnId of the current connection
    this.played = {}; // track → frames, from the worklet
    this.mse = null;
    this.reporter = null; // the interval reporting positions while a turn plays
    /** Exposed as `window.parley.playback`. */
    this.state = {
      /** "playing" while samples reach the output, else "idle". */
      state: "idle",
      /** "mp3-webcodecs", "mp3-mse", "pcm-worklet", or "none" (captions only). */
      mode: "none",
      /** The session's MIME type. */
      format: "",
      contextRate: ctx.sampleRate,
      /** Frames (at `contextRate`) of assistant audio that reached the output, all turns together. */
      samplesPlayed: 0,
      /** turnId → milliseconds of that turn actually played (current connection). */
      msPlayedByTurn: {},
      /** turnId → the last position (ms) sent to the server in `played` (current connection). */
      toldByTurn: {},
      /** Turns cut short here (interrupt, a newer turn, the Interrupt button). */
      interruptedTurns: [],
      /**
       * Per dropped turn (worklet path): frames heard when the drop reached the audio thread, and frames heard
       * in all.
       */
      drops: [],
      /** Binary frames thrown away: after their turn was dropped or ended, or outside any turn. */
      lateFrames: 0,
      /** Times the queue ran dry while a turn still expected audio. */
      underruns: 0,
      /** The audio clock (seconds rendered), advancing even in silence. */
      audioTime: 0,
    };
  }

  async init() {
    this.webCodecsMp3 = await webCodecsMp3();
    await this.ctx.audioWorklet.addModule("/assets/playback-worklet.js");
    this.node = new AudioWorkletNode(this.ctx, "parley-playback", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [this.ctx.destination.channelCount >= 2 ? 2 : 1],
    });
    this.node.port.onmessage = (e) => this.onWorklet(e.data);
    this.node.connect(this.ctx.destination);
  }

  /** The session's announced format; returns what will play it ("none": nothing can). */
  setFormat(mime) {
    this.format = parseMime(mime);
    this.state.format = mime;
    if (this.format.kind === "pcm") this.state.mode = "pcm-worklet";
    else if (this.format.kind === "mp3") {
      const useWebCodecs = this.opts.mp3 !== "mse" && this.webCodecsMp3;
      this.state.mode = useWebCodecs ? "mp3-webcodecs" : MsePlayer.supported() ? "mp3-mse" : "none";
    } else this.state.mode = "none";
    if (this.state.mode === "mp3-mse" && !this.mse) this.mse = new MsePlayer(() => this.fromMse());
    this.changed();
    return this.state.mode;
  }

  /** A new connection: turn ids start again at 1. */
  newConnection() {
    this.dropAll();
    for (const entry of this.turns.values()) clearTimeout(entry.confirmTimer);
    this.turns.clear();
    this.trackTurn.clear();
    this.state.msPlayedByTurn = {};
    this.state.toldByTurn = {};
    this.state.interruptedTurns = [];
    this.state.drops = [];
    this.changed();
  }

  startTurn(turnId) {
    if (this.turns.has(turnId)) return;
    const track = this.nextTrack++;
    const entry = { track, pipeline: null, ended: false, dropped: false, done: false, startedAt: null };
    Object.assign(entry, { told: 0, over: false, confirmTimer: null });
    const sink = (samples) => {
      if (!entry.dropped) this.node.port.postMessage({ type: "push", track, samples }, [samples.buffer]);
    };
    const fail = (e) => this.opts.onError(`The assistant's voice could not be played (${e.message || e}); the captions go on.`);
    if (this.state.mode === "pcm-worklet") entry.pipeline = new PcmPipeline(this.format.rate, this.ctx.sampleRate, sink);
    else if (this.state.mode === "mp3-webcodecs") entry.pipeline = new Mp3Pipeline(this.ctx.sampleRate, sink, fail);
    else if (this.state.mode === "mp3-mse") entry.pipeline = this.mse.pipeline(track);
    else entry.done = true; // nothing can play it: the captions are all there is
    this.turns.set(turnId, entry);
    this.trackTurn.set(track, turnId);
    this.state.msPlayedByTurn[turnId] = 0;
    if (entry.pipeline && !this.reporter) this.reporter = setInterval(() => this.report(), REPORT_EVERY_MS);
  }

  /** A binary frame of `turnId` (null: a frame outside any turn's audio, which is dropped). */
  audio(turnId, buffer) {
    const entry = turnId === null ? null : this.turns.get(turnId);
    if (!entry || entry.dropped || entry.ended) {
      this.state.lateFrames++;
      return;
    }
    if (entry.pipeline) entry.pipeline.push(new Uint8Array(buffer));
  }

  /** `audioEnd`: what is queued plays out, then the turn is done. */
  async endTurn(turnId) {
    const entry = this.turns.get(turnId);
    if (!entry || entry.ended || entry.dropped) return;
    entry.ended = true;
    if (entry.pipeline) await entry.pipeline.end();
    // The worklet reports the track drained once it has played it all (the MSE fallback tracks its own end).
    if (!entry.dropped && this.node && this.state.mode !== "mp3-mse") {
      this.node.port.postMessage({ type: "end", track: entry.track });
    }
  }

  /** Stops `turnId` now and discards all of it (server `interrupt`, a new user turn, the stop button). */
  drop(turnId) {
    const entry = this.turns.get(turnId);
    if (!entry || entry.dropped) return;
    entry.dropped = true;
    if (entry.pipeline) entry.pipeline.close();
    if (this.state.mode === "mp3-mse") {
      // The element stopped where it was: that is the final position.
      this.mse.drop(entry.track);
      this.tell(turnId, entry, this.msOf(this.mse.played(this.ctx.sampleRate)[entry.track] || 0), true);
    } else {
      // The worklet answers `dropped` with the exact position (onWorklet); this is in case it cannot.
      if (this.node) this.node.port.postMessage({ type: "drop", track: entry.track });
      const lastKnown = () => this.tell(turnId, entry, this.state.msPlayedByTurn[turnId] || 0, true);
      entry.confirmTimer = setTimeout(lastKnown, DROP_CONFIRM_MS);
    }
    if (!this.state.interruptedTurns.includes(turnId)) this.state.interruptedTurns.push(turnId);
    this.changed();
  }

  /** Drops every turn still playing or queued; returns the turn ids that were cut short. */
  dropAll() {
    const cut = [];
    for (const [turnId, entry] of this.turns) {
      if (!entry.dropped && !entry.done) {
        cut.push(turnId);
        this.drop(turnId);
      }
    }
    return cut;
  }

  /** Drops turns before `turnId`: the user has started a new turn, older answers must not talk over it. */
  dropBefore(turnId) {
    for (const [id, entry] of this.turns) if (id < turnId && !entry.dropped && !entry.done) this.drop(id);
  }

  /** True while some turn has audio queued or playing. */
  get busy() {
    for (const entry of this.turns.values()) if (!entry.dropped && !entry.done) return true;
    return false;
  }

  onWorklet(m) {
    if (m.type === "progress") {
      this.played = m.played;
      this.state.audioTime = m.frame / this.ctx.sampleRate;
      const before = this.state.state;
      this.state.state = m.state;
      if (before === "playing" && m.state === "idle") {
        // Ran dry while a turn still expected audio: the network or the decoder fell behind.
        for (const entry of this.turns.values()) if (!entry.ended && !entry.dropped && entry.startedAt !== null) this.state.underruns++;
      }
    } else {
      this.played[m.track] = m.played;
      const turnId = this.trackTurn.get(m.track);
      const entry = this.turns.get(turnId);
      if (entry && m.type === "started") entry.startedAt = m.frame / this.ctx.sampleRate;
      if (entry && m.type === "drained") {
        entry.done = true;
        this.tell(turnId, entry, this.msOf(m.played), true);
      }
      if (entry && m.type === "dropped") {
        entry.done = true;
        this.tell(turnId, entry, this.msOf(m.played), true);
        if (entry.startedAt !== null) this.state.drops.push({ turnId, track: m.track, framesAtDrop: m.played, frames: m.played });
      }
    }
    this.recount();
  }

  fromMse() {
    // Which tracks are over first: one heard to its end counts whole in what follows.
    const finished = this.mse.finished();
    // The MSE fallback reports played frames at the context rate, like the worklet.
    this.played = { ...this.played, ...this.mse.played(this.ctx.sampleRate) };
    this.state.state = this.mse.playing ? "playing" : "idle";
    this.state.mse = this.mse.diagnostics();
    this.recount();
    for (const [track, done] of finished) {
      const turnId = this.trackTurn.get(track);
      const entry = this.turns.get(turnId);
      if (!entry || !done || entry.done) continue;
      entry.done = true;
      this.tell(turnId, entry, this.state.msPlayedByTurn[turnId] || 0, true);
    }
  }

  msOf(frames) {
    return Math.round((frames / this.ctx.sampleRate) * 1000);
  }

  /** Every REPORT_EVERY_MS: the position of each turn still playing, if it moved; stops when none is left. */
  report() {
    let playing = false;
    for (const [turnId, entry] of this.turns) {
      if (!entry.pipeline || entry.over || entry.dropped) continue;
      playing = true;
      this.tell(turnId, entry, this.state.msPlayedByTurn[turnId] || 0, false);
    }
    if (!playing) {
      clearInterval(this.reporter);
      this.reporter = null;
    }
  }

  /**
   * Sends `turnId`'s position: a progress position only when it moved on, the `final` one always, and nothing
   * after that or for a turn of an earlier connection.
   */
  tell(turnId, entry, ms, final) {
    if (entry.over || !entry.pipeline || this.turns.get(turnId) !== entry) return;
    const at = Math.max(ms, entry.told);
    if (final) {
      entry.over = true;
      clearTimeout(entry.confirmTimer);
    } else if (at <= entry.told) return;
    entry.told = at;
    this.state.toldByTurn[turnId] = at;
    this.opts.onPlayed(turnId, at);
  }

  recount() {
    let total = 0;
    for (const [track, frames] of Object.entries(this.played)) {
      total += frames;
      const turnId = this.trackTurn.get(Number(track));
      if (turnId !== undefined) this.state.msPlayedByTurn[turnId] = this.msOf(frames);
    }
    for (const d of this.state.drops) d.frames = this.played[d.track] || d.frames;
    this.state.samplesPlayed = total;
    this.changed();
  }

  changed() {
    this.opts.onChange();
  }
}
