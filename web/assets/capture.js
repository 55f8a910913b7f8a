// The microphone: getUserMedia with the browser's echo cancellation (so the assistant's voice from the
// speakers is not heard as the user barging in), noise suppression and automatic gain, fed through the
// capture worklet (capture-worklet.js), which hands back 20 ms frames of 16 kHz 16-bit PCM.

/** Plain words for getUserMedia failures: what happened and what to do. */
export function explainMicrophoneError(err) {
  const name = err && err.name;
  if (!window.isSecureContext) {
    return "The microphone only works on a secure page: open parley over https, or at http://localhost. You can still type.";
  }
  switch (name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Microphone access was refused. Allow it in the browser's site settings (the icon left of the address), then turn the microphone on again. You can still type.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Plug one in and turn the microphone on again, or type instead.";
    case "NotReadableError":
    case "AbortError":
      return "The microphone is busy or failed to start (another application may be using it). Close the other application and try again.";
    default:
      return `The microphone could not start (${(err && err.message) || err}). Try again, or type instead.`;
  }
}

export class Microphone {
  /**
   * @param {AudioContext} ctx a running context with capture-worklet.js loaded
   * @param {{onFrame:(pcm:ArrayBuffer)=>void, onLevel:(level:number)=>void, onStopped:()=>void}} handlers
   *   onStopped runs whenever capture ends: turned off, or the device went away
   * @param {number} targetRate the rate parley expects (the session's `sampleRate`)
   */
  constructor(ctx, handlers, targetRate = 16000) {
    this.ctx = ctx;
    this.handlers = handlers;
    this.targetRate = targetRate;
    this.stream = null;
    this.source = null;
    this.node = null;
    /** Frames produced since the microphone was turned on. */
    this.frames = 0;
    /** Details of the device as the browser opened it (rate, processing), for the page's state. */
    this.settings = null;
  }

  get on() {
    return this.stream !== null;
  }

  async start() {
    if (this.stream) return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw Object.assign(new Error("getUserMedia is unavailable"), { name: "NotSupportedError" });
    }
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
    });
    this.stream = stream;
    const track = stream.getAudioTracks()[0];
    this.settings = track ? { ...track.getSettings(), label: track.label, contextRate: this.ctx.sampleRate } : null;
    if (track) track.addEventListener("ended", () => this.stop());
    this.source = this.ctx.createMediaStreamSource(stream);
    this.node = new AudioWorkletNode(this.ctx, "parley-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { targetRate: this.targetRate, frameMs: 20 },
    });
    this.node.port.onmessage = (e) => {
      if (e.data.type !== "frame") return;
      this.frames++;
      this.handlers.onFrame(e.data.pcm);
      this.handlers.onLevel(e.data.level);
    };
    this.source.connect(this.node);
    // The node writes silence; connecting it keeps the browser rendering it.
    this.node.connect(this.ctx.destination);
  }

  /** Releases the device (the browser's recording indicator goes off). */
  stop() {
    if (!this.stream) return;
    for (const t of this.stream.getTracks()) t.stop();
    this.stream = null;
    if (this.node) {
      this.node.port.postMessage({ type: "stop" });
      this.node.disconnect();
      this.node = null;
    }
    if (this.source) {
      this.source.disconnect();
      this.source = null;
    }
    this.handlers.onLevel(0);
    this.handlers.onStopped();
  }
}
