// parley's web client: wires the connection, the microphone, the player and the views together, and keeps
// `window.parley`, the page's own state (what it is connected to, what it sent, what it played), which
// the browser test reads and which helps anyone debugging from the console.
//
// Query parameters: `?mp3=mse` plays MP3 through the Media Source fallback instead of WebCodecs.

import { Microphone, explainMicrophoneError } from "./capture.js";
import { Connection } from "./connection.js";
import { ConversationView } from "./conversation.js";
import { handleServerMessage } from "./dispatch.js";
import { HistoryPanel } from "./history.js";
import { Player } from "./player.js";
import { els, hideNotice, showConnection, showLevel, showMic, showNotice, showSession, showStatus } from "./ui.js";

const USER_KEY = "parley.userId";
const USER_ID = /^[A-Za-z0-9\-_.@:]{1,128}$/;
/** Microphone frames kept while the connection is not ready (sent once it is): 2 s of 20 ms frames. */
const MAX_PENDING_FRAMES = 100;

const params = new URLSearchParams(location.search);

/** The page's state, read by tests and handy in the console. */
const parley = {
  connection: {
    state: "idle",
    /** Every state the connection went through, in order. */
    log: ["idle"],
    sessionId: null,
    userId: null,
    resumed: false,
    emulated: false,
    mimeType: null,
    detail: "",
  },
  mic: { state: "off", framesSent: 0, bytesSent: 0, pending: 0, settings: null },
  playback: { state: "idle", mode: "none", samplesPlayed: 0, msPlayedByTurn: {} },
  transcript: { text: "", isFinal: false },
  turns: {},
  errors: [],
  warnings: [],
  statuses: [],
  history: null,
  /** A plain copy of everything above. */
  snapshot() {
    return JSON.parse(JSON.stringify({ ...this, snapshot: undefined, debug: undefined }));
  },
};
window.parley = parley;

const app = {
  parley,
  ctx: null,
  player: null,
  mic: null,
  audioReady: null,
  micWanted: true,
  pendingFrames: [],
  /** The turn whose binary audio frames are arriving (between audioStart and audioEnd/interrupt). */
  audioTurn: null,
  userTurnAt: new Map(),
  view: new ConversationView(els.turns, els.interim),
  history: null,
  conn: null,
  sessionStarted: (msg) => sessionStarted(msg),
  messageStored: () => messageStored(),
  updateInterrupt: () => updateInterrupt(),
};

app.history = new HistoryPanel(
  { list: els.historyList, more: els.historyMore, status: els.historyStatus },
  { userId: () => currentUserId(), onResume: (id) => start(id) },
);
parley.history = app.history.state;

/** Test seam: feeds `data` (a text or binary frame) to the page as if the server had sent it. */
parley.debug = { inject: (data) => app.conn.receive(data) };

app.conn = new Connection({
  onState: (state, detail) => onConnectionState(state, detail),
  onMessage: (msg) => {
    try {
      handleServerMessage(app, msg);
    } catch (e) {
      warn(`A ${msg.type} message from the server could not be handled (${e.message}); carrying on.`);
    }
  },
  onAudio: (buf) => app.player && app.player.audio(app.audioTurn, buf),
  onWarning: (text) => warn(text),
});

function warn(text) {
  parley.warnings.push(text);
  showStatus(text);
}

function currentUserId() {
  return els.userId.value.trim();
}

function initUserId() {
  let id = null;
  try {
    id = localStorage.getItem(USER_KEY);
  } catch {
    // Storage blocked (private mode): a fresh id each visit.
  }
  if (!id || !USER_ID.test(id)) id = `guest-${Math.random().toString(36).slice(2, 8)}`;
  els.userId.value = id;
  parley.connection.userId = id;
}

function saveUserId(id) {
  try {
    localStorage.setItem(USER_KEY, id);
  } catch {
    // Not persisted; the id still works for this visit.
  }
}

/**
 * Creates the audio context (synchronously, inside the click that allows it to start) and loads both
 * worklets. Resolves to false, with a notice, when this browser cannot do low-latency audio.
 */
function ensureAudio() {
  if (app.audioReady) {
    if (app.ctx && app.ctx.state === "suspended") app.ctx.resume().catch(() => {});
    return app.audioReady;
  }
  const AC = window.AudioContext || window.webkitAudioContext;
  if (!AC || !window.isSecureContext || typeof AudioWorkletNode === "undefined") {
    showNotice(
      "error",
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
        mp3: params.get("mp3") === "mse" ? "mse" : "auto",
        onChange: () => onPlayback(),
        onError: (text) => showNotice("error", text),
      });
      await app.player.init();
      parley.playback = app.player.state;
      // The session may have been announced while the worklets were loading.
      if (parley.connection.mimeType) app.player.setFormat(parley.connection.mimeType);
      if (app.ctx.state === "suspended") await app.ctx.resume();
      return true;
    } catch (e) {
      showNotice("error", `Audio could not start (${e.message}).`, "Reload the page and try again. You can still type.");
      return false;
    }
  })();
  return app.audioReady;
}

/** Starts a conversation: a new one, or the stored session `sessionId`. */
async function start(sessionId = null) {
  const userId = currentUserId();
  if (!USER_ID.test(userId)) {
    els.userId.reportValidity();
    return;
  }
  saveUserId(userId);
  parley.connection.userId = userId;
  hideNotice();
  const audio = ensureAudio();
  app.conn.connect(userId, sessionId);
  await audio;
}

function onConnectionState(state, detail) {
  const c = parley.connection;
  c.state = state;
  c.log.push(state);
  c.detail = detail.message || "";
  showConnection(state, detail);
  if (state === "ready") {
    hideNotice();
    flushPendingFrames();
    if (app.micWanted && !(app.mic && app.mic.on)) micOn();
  } else if (state === "reconnecting") {
    endAudioTurn();
    showNotice("info", detail.message || "Reconnecting…", detail.retryInMs ? `Trying again in ${Math.round(detail.retryInMs / 100) / 10} s.` : "", { reconnect: true });
  } else if (state === "failed") {
    endAudioTurn();
    showNotice("error", detail.message || "The connection failed.", "Press Reconnect to try again.", { reconnect: true });
  } else if (state === "closed") {
    endAudioTurn();
  }
  updateInterrupt();
}

/** The connection went away mid-turn: its audio will never end properly, stop it. */
function endAudioTurn() {
  app.audioTurn = null;
  if (app.player) app.player.dropAll();
}

function flushPendingFrames() {
  for (const pcm of app.pendingFrames) sendFrame(pcm);
  app.pendingFrames = [];
  parley.mic.pending = 0;
}

function sendFrame(pcm) {
  if (app.conn.sendAudio(pcm)) {
    parley.mic.framesSent++;
    parley.mic.bytesSent += pcm.byteLength;
  } else {
    app.pendingFrames.push(pcm);
    if (app.pendingFrames.length > MAX_PENDING_FRAMES) app.pendingFrames.shift();
    parley.mic.pending = app.pendingFrames.length;
  }
}

async function micOn() {
  if (!(await ensureAudio())) return;
  if (!app.mic) {
    app.mic = new Microphone(app.ctx, {
      onFrame: (pcm) => sendFrame(pcm),
      onLevel: (level) => showLevel(level),
      onStopped: () => micStopped(),
    });
  }
  parley.mic.state = "starting";
  showMic("starting");
  try {
    await app.mic.start();
    parley.mic.state = "on";
    parley.mic.settings = app.mic.settings;
    showMic("on");
  } catch (e) {
    parley.mic.state = "error";
    app.micWanted = false;
    showMic("off");
    showNotice("error", explainMicrophoneError(e));
  }
}

function micStopped() {
  parley.mic.state = "off";
  showMic("off");
  app.pendingFrames = [];
  // Whatever was said so far is a complete turn: tell the server not to wait for more.
  app.conn.send({ type: "closeMicrophone" });
}

function toggleMic() {
  if (app.mic && app.mic.on) {
    app.micWanted = false;
    app.mic.stop();
  } else {
    app.micWanted = true;
    micOn();
  }
}

/** Stop button: silence the assistant here at once, and ask the server to stop generating. */
function interrupt() {
  const cut = app.player ? app.player.dropAll() : [];
  for (const turnId of cut) {
    app.view.interrupted(turnId, true);
    if (parley.turns[turnId]) parley.turns[turnId].interruptedLocally = true;
  }
  app.audioTurn = null;
  app.conn.send({ type: "interrupt" });
  updateInterrupt();
}

function updateInterrupt() {
  const active = Object.values(parley.turns).some((t) => !t.ended);
  els.interrupt.disabled = !(app.conn.ready && (active || (app.player && app.player.busy)));
}

function onPlayback() {
  for (const [turnId, ms] of Object.entries(app.player.state.msPlayedByTurn)) {
    const t = parley.turns[turnId];
    const started = app.player.turns.get(Number(turnId));
    if (t && started && started.startedAt !== null && t.voiceAfterMs === undefined && app.userTurnAt.has(Number(turnId))) {
      t.voiceAfterMs = Math.round(performance.now() - app.userTurnAt.get(Number(turnId)));
      app.view.speaking(Number(turnId), true);
    }
    if (t && started && started.done && !t.heardAll) {
      t.heardAll = true;
      app.view.speaking(Number(turnId), false);
    }
    app.view.heard(Number(turnId), ms, t && t.voiceAfterMs);
  }
  updateInterrupt();
}

els.identity.addEventListener("submit", (e) => {
  e.preventDefault();
  start(null);
});
els.userId.addEventListener("change", () => {
  if (USER_ID.test(currentUserId())) app.history.refresh();
});
els.end.addEventListener("click", () => {
  app.micWanted = true;
  if (app.mic) app.mic.stop();
  app.conn.close();
});
els.mic.addEventListener("click", () => toggleMic());
els.interrupt.addEventListener("click", () => interrupt());
els.compose.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = els.message.value.trim();
  if (!text) return;
  ensureAudio();
  if (app.conn.send({ type: "text", text })) els.message.value = "";
});
els.reconnect.addEventListener("click", () => start(app.conn.sessionId));
els.dismiss.addEventListener("click", () => hideNotice());
els.copySession.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(parley.connection.sessionId || "");
    els.copySession.textContent = "Copied";
  } catch {
    els.copySession.textContent = "Select it to copy";
  }
});
els.historyRefresh.addEventListener("click", () => app.history.refresh());

function sessionStarted(msg) {
  showSession(msg.sessionId);
}

let historyTimer = null;
/** A message was stored: the history panel catches up (once, after a burst). */
function messageStored() {
  clearTimeout(historyTimer);
  historyTimer = setTimeout(() => app.history.update(), 300);
}

initUserId();
showConnection("idle");
showMic("off");
showSession(null);
app.history.refresh();
