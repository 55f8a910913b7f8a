// parley's web client: wires the connection, the microphone, the player and the views together, and keeps
// `window.parley`, the page's own state (what it is connected to, what it sent, what it played), which
// the browser test reads and which helps anyone debugging from the console.
//
// Query parameters: `?mp3=mse` plays MP3 through the Media Source fallback instead of WebCodecs; `?dev=` (the
// development credential parley prints) or `?token=` (a token from an app backend) signs the page in, and is
// taken out of the address at once (auth.js). `window.parley.setToken(token)` does the same from script.

import { authorize } from "./api.js";
import { ensureAudio, flushPendingFrames, micOn, micUnavailable, toggleMic } from "./audio.js";
import { Credentials } from "./auth.js";
import { Connection } from "./connection.js";
import { ConversationView } from "./conversation.js";
import { handleServerMessage } from "./dispatch.js";
import { explainRefusal } from "./errors.js";
import { HistoryPanel } from "./history.js";
import {
  dismissAllErrors,
  els,
  hideNotice,
  showConnection,
  showMic,
  showNotice,
  showSession,
  showStatus,
} from "./ui.js";

// First, before anything can be copied or shared: the credential leaves the address bar.
const auth = Credentials.fromPage({ onProblem: (e) => refused(e) });

const USER_KEY = "parley.userId";
const USER_ID = /^[A-Za-z0-9\-_.@:]{1,128}$/;
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
    /** What the `session` message said of the providers (`{stt, llm, tts}`), and whether speech can be sent. */
    providers: null,
    canListen: true,
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
  // Tool calls seen this page (client-side ones answered here, server-side ones as reported).
  tools: [],
  history: null,
  /** How the page is signed in: mode ("development", "token", "none"), the token's user, renewals. */
  auth: auth.state,
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
  /** "mse" plays MP3 through the Media Source fallback (`?mp3=mse`). */
  mp3Mode: params.get("mp3") === "mse" ? "mse" : "auto",
  micWanted: true,
  pendingFrames: [],
  /** The turn whose binary audio frames are arriving (between audioStart and audioEnd/interrupt). */
  audioTurn: null,
  view: new ConversationView(els.turns, els.interim),
  history: null,
  conn: null,
  sessionStarted: (msg) => sessionStarted(msg),
  messageStored: () => messageStored(),
  updateInterrupt: () => updateInterrupt(),
  onPlayback: () => onPlayback(),
};

app.history = new HistoryPanel(
  { list: els.historyList, more: els.historyMore, status: els.historyStatus },
  { userId: () => currentUserId(), onResume: (id) => start(id) },
);
parley.history = app.history.state;

/** Test seam: feeds `data` (a text or binary frame) to the page as if the server had sent it. */
parley.debug = { inject: (data) => app.conn.receive(data) };

/**
 * Signs the page in with a token an app backend minted for its user (and again with a fresh one before it
 * expires: the page cannot renew it). The user id becomes the token's.
 */
parley.setToken = (token) => {
  auth.setToken(token);
  applyIdentity();
  hideNotice();
  app.history.refresh();
};

authorize(auth, () => currentUserId(), (e) => refused(e));

app.conn = new Connection(auth, {
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

/** A refused credential (or none at all): say so plainly, with what to do. */
function refused(e) {
  const refusal = explainRefusal(e.code);
  if (!refusal) return;
  auth.state.problem = e.code;
  showNotice("error", refusal.message, refusal.advice, { reconnect: e.code === "too_many_sessions" });
  applyIdentity();
}

/** Which user id the page may use (a token names it), and whether there is a credential to start with. */
function applyIdentity() {
  const fixed = auth.fixedUser;
  if (fixed) {
    els.userId.value = fixed;
    parley.connection.userId = fixed;
  }
  els.userId.readOnly = !!fixed;
  els.start.disabled = auth.mode === "none";
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

/** Starts a conversation: a new one, or the stored session `sessionId`. */
async function start(sessionId = null) {
  if (auth.mode === "none") return refused({ code: "credential_missing" });
  const userId = currentUserId();
  if (!USER_ID.test(userId)) {
    els.userId.reportValidity();
    return;
  }
  if (!auth.fixedUser) saveUserId(userId); // a token's user is the app's, not this browser's choice
  parley.connection.userId = userId;
  hideNotice();
  const audio = ensureAudio(app);
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
    if (!c.canListen) micUnavailable(app);
    else {
      flushPendingFrames(app);
      if (app.micWanted && !(app.mic && app.mic.on)) micOn(app);
    }
  } else if (state === "reconnecting") {
    endAudioTurn();
    showNotice("info", detail.message || "Reconnecting…", detail.retryInMs ? `Trying again in ${Math.round(detail.retryInMs / 100) / 10} s.` : "", { reconnect: true });
  } else if (state === "failed") {
    endAudioTurn();
    // Nobody is listening: release the microphone (it comes back with the connection).
    if (app.mic && app.mic.on) app.mic.stop();
    if (explainRefusal(detail.code)) refused(detail);
    else showNotice("error", detail.message || "The connection failed.", "Press Reconnect to try again.", { reconnect: true });
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

/**
 * Stop button: ask the server to stop generating, and silence the assistant here at once. `interrupt` goes
 * first so that the final `played` position of each dropped turn reaches the server after it: a position
 * that follows the stop is the one the server stores the reply by.
 */
function interrupt() {
  app.conn.send({ type: "interrupt" });
  const cut = app.player ? app.player.dropAll() : [];
  for (const turnId of cut) {
    app.view.interrupted(turnId, true);
    if (parley.turns[turnId]) parley.turns[turnId].interruptedLocally = true;
  }
  app.audioTurn = null;
  updateInterrupt();
}

function updateInterrupt() {
  const active = Object.values(parley.turns).some((t) => !t.ended);
  els.interrupt.disabled = !(app.conn.ready && (active || (app.player && app.player.busy)));
}

/** Playback advanced: per turn, whether its voice has started or played out, and how much was heard. */
function onPlayback() {
  for (const [key, ms] of Object.entries(app.player.state.msPlayedByTurn)) {
    const turnId = Number(key);
    const t = parley.turns[turnId];
    const entry = app.player.turns.get(turnId);
    if (!t || !entry) continue;
    if (entry.startedAt !== null && !t.voiceStarted) {
      t.voiceStarted = true;
      app.view.speaking(turnId, true);
    }
    if (entry.done && !t.playedOut) {
      t.playedOut = true; // to the end, or cut short
      app.view.speaking(turnId, false);
    }
    if (t.shownMs !== ms) {
      t.shownMs = ms;
      app.view.heard(turnId, ms);
    }
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
els.mic.addEventListener("click", () => toggleMic(app));
els.interrupt.addEventListener("click", () => interrupt());
els.compose.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = els.message.value.trim();
  if (!text) return;
  ensureAudio(app);
  if (app.conn.send({ type: "text", text })) els.message.value = "";
});
els.reconnect.addEventListener("click", () => start(app.conn.sessionId));
els.dismiss.addEventListener("click", () => hideNotice());
els.errorsClear.addEventListener("click", () => dismissAllErrors());
els.copySession.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(parley.connection.sessionId || "");
    els.copySession.textContent = "Copied";
  } catch {
    els.copySession.textContent = "Select it to copy";
  }
});
els.historyRefresh.addEventListener("click", () => app.history.refresh());
document.addEventListener("keydown", (e) => {
  // Escape stops the assistant, from anywhere on the page.
  if (e.key === "Escape" && !els.interrupt.disabled) interrupt();
});
document.addEventListener("visibilitychange", () => {
  // Mobile browsers suspend audio in the background; pick up where it was when the page is back.
  if (document.visibilityState === "visible" && app.ctx && app.ctx.state === "suspended") app.ctx.resume().catch(() => {});
});

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
applyIdentity();
showConnection("idle");
showMic("off");
showSession(null);
app.history.refresh();
