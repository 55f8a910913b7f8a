// The page's audio: one AudioContext for both directions (created inside the click that allows it to
// start), the capture worklet feeding the microphone's frames to the connection, and the player.

import { Microphone, explainMicrophoneError } from "./capture.js";
import { Player } from "./player.js";
import { showError, showLevel, showMic } from "./ui.js";

/** Microphone frames kept while the connection is not ready (sent once it is): 2 s of 20 ms frames. */
const MAX_PENDING_FRAMES = 100;

/**
 * Creates the audio context (synchronously, inside the click that allows it to start) and loads both
 * worklets. Resolves to false, with a notice, when this browser cannot do low-latency audio.
 */
export function ensureAudio(app) {
  if (app.audioReady) {
    if (app.ctx && app.ctx.state === "suspended") app.ctx.resume().catch(() => {});
    return app.audioReady;
  }
  const AC = window.AudioContext || window.webkitAudioContext;
  if (!AC || !window.isSecureContext || typeof AudioWorkletNode === "undefined") {
    showError(
      "This browser cannot play or record audio on this page.",
      window.isSecureContext
        ? "Use a recent Chrome, Edge, Firefox or Safari. You can still type."
        : "Open parley over https or at http://localhost. You can still type.",
    );
    app.audioReady = Promise.resolve(false);
    return app.audioReady;
  }
  app.ctx = new AC({ latencyHint: "interactive" });
  app.audioReady = (async () => {
    try {
      await app.ctx.audioWorklet.addModule("/assets/capture-worklet.js");
      app.player = new Player(app.ctx, {
        mp3: app.mp3Mode,
        onChange: () => app.onPlayback(),
        onError: (text) => showError(text),
        onPlayed: (turnId, ms) => app.conn.send({ type: "played", turnId, ms }),
      });
      await app.player.init();
      app.parley.playback = app.player.state;
      // The session may have been announced while the worklets were loading.
      if (app.parley.connection.mimeType) app.player.setFormat(app.parley.connection.mimeType);
      if (app.ctx.state === "suspended") await app.ctx.resume();
      return true;
    } catch (e) {
      showError(`Audio could not start (${e.message}).`, "Reload the page and try again. You can still type.");
      return false;
    }
  })();
  return app.audioReady;
}

/** The connection is ready: send what the microphone said meanwhile. */
export function flushPendingFrames(app) {
  for (const pcm of app.pendingFrames) sendFrame(app, pcm);
  app.pendingFrames = [];
  app.parley.mic.pending = 0;
}

function sendFrame(app, pcm) {
  const parley = app.parley;
  if (!parley.connection.canListen) return;
  if (app.conn.sendAudio(pcm)) {
    parley.mic.framesSent++;
    parley.mic.bytesSent += pcm.byteLength;
  } else {
    app.pendingFrames.push(pcm);
    if (app.pendingFrames.length > MAX_PENDING_FRAMES) app.pendingFrames.shift();
    parley.mic.pending = app.pendingFrames.length;
  }
}

/** Turns the microphone on (asking for permission the first time). */
export async function micOn(app) {
  const parley = app.parley;
  if (parley.mic.state === "starting") return;
  // The server cannot recognise speech: sending it audio would only waste the listener's data.
  if (!parley.connection.canListen) return micUnavailable(app);
  parley.mic.state = "starting";
  showMic("starting");
  if (!(await ensureAudio(app))) {
    parley.mic.state = "off";
    showMic("off");
    return;
  }
  if (!app.mic) {
    app.mic = new Microphone(app.ctx, {
      onFrame: (pcm) => sendFrame(app, pcm),
      onLevel: (level) => showLevel(level),
      onStopped: () => micStopped(app),
    });
  }
  try {
    await app.mic.start();
    parley.mic.state = "on";
    parley.mic.settings = app.mic.settings;
    showMic("on");
    // Turned off again while the browser was still opening the device.
    if (!app.micWanted) app.mic.stop();
  } catch (e) {
    parley.mic.state = "error";
    app.micWanted = false;
    showMic("off");
    showError(explainMicrophoneError(e));
  }
}

/** The session cannot take speech: the microphone is released and its button says why it is off. */
export function micUnavailable(app) {
  app.pendingFrames = [];
  app.parley.mic.pending = 0;
  if (app.mic && app.mic.on) app.mic.stop();
  app.parley.mic.state = "unavailable";
  showMic("unavailable");
}

function micStopped(app) {
  const parley = app.parley;
  parley.mic.state = "off";
  showMic("off");
  app.pendingFrames = [];
  // Whatever was said so far is a complete turn: tell the server not to wait for more.
  app.conn.send({ type: "closeMicrophone" });
}

export function toggleMic(app) {
  if (app.parley.mic.state === "starting") {
    app.micWanted = false; // micOn stops it as soon as it is open
  } else if (app.mic && app.mic.on) {
    app.micWanted = false;
    app.mic.stop();
  } else {
    app.micWanted = true;
    micOn(app);
  }
}

