// What the page does with each server message (see README, "The voice WebSocket protocol"). Unknown types
// are counted and ignored (a newer server may send more); a known type with a malformed turn id is refused
// before it can touch any state.

import { explainServerError } from "./errors.js";
import { canListen, setupNotes } from "./setup.js";
import { els, showError, showSetup, showStatus } from "./ui.js";

const TURN_MESSAGES = new Set([
  "userTurn",
  "assistantText",
  "audioStart",
  "audioEnd",
  "turnEnd",
  "interrupt",
  "messageSaved",
  "latency",
]);

const str = (v) => (typeof v === "string" ? v : "");

function turn(app, id) {
  const turns = app.parley.turns;
  if (!turns[id]) turns[id] = { user: "", captions: [], audio: false, ended: false, interrupted: false };
  return turns[id];
}

const HANDLERS = {
  session(app, m) {
    const c = app.parley.connection;
    Object.assign(c, {
      sessionId: str(m.sessionId),
      resumed: !!m.resumed,
      emulated: !!m.emulated,
      mimeType: str(m.mimeType),
      outputFormat: str(m.outputFormat),
      providers: m.providers && typeof m.providers === "object" ? m.providers : null,
      canListen: canListen(m.providers),
    });
    showSetup(setupNotes(m.providers));
    app.parley.turns = {};
    app.audioTurn = null;
    app.view.newConnection({ resumed: !!m.resumed, historyMessages: Number(m.historyMessages) || 0 });
    els.emulated.hidden = !m.emulated;
    if (app.player) {
      app.player.newConnection();
      if (app.player.setFormat(c.mimeType) === "none") {
        showError(`This server sends its voice as ${c.mimeType}, which this browser cannot play here.`, "The answers still appear as text.");
      }
    }
    app.sessionStarted(m);
  },

  transcript(app, m) {
    app.parley.transcript = { text: str(m.text), isFinal: !!m.isFinal };
    app.view.interim(str(m.text), !!m.isFinal);
  },

  userTurn(app, m) {
    // A new turn: any earlier answer still playing must not talk over it.
    if (app.player) app.player.dropBefore(m.turnId);
    turn(app, m.turnId).user = str(m.text);
    app.parley.transcript = { text: "", isFinal: false };
    app.view.userTurn(m.turnId, str(m.text));
  },

  assistantText(app, m) {
    turn(app, m.turnId).captions.push(str(m.text));
    app.view.assistantText(m.turnId, str(m.text));
  },

  audioStart(app, m) {
    app.audioTurn = m.turnId;
    turn(app, m.turnId).audio = true;
    if (app.player) app.player.startTurn(m.turnId);
  },

  audioEnd(app, m) {
    if (app.audioTurn === m.turnId) app.audioTurn = null;
    if (app.player) app.player.endTurn(m.turnId);
  },

  interrupt(app, m) {
    if (app.audioTurn === m.turnId) app.audioTurn = null;
    if (app.player) app.player.drop(m.turnId);
    turn(app, m.turnId).interrupted = true;
    app.view.interrupted(m.turnId, false);
  },

  turnEnd(app, m) {
    const t = turn(app, m.turnId);
    t.ended = true;
    t.interrupted = t.interrupted || !!m.interrupted;
    if (m.interrupted && app.player) app.player.drop(m.turnId);
    if (app.audioTurn === m.turnId) app.audioTurn = null;
    app.view.turnEnd(m.turnId, !!m.interrupted);
  },

  messageSaved(app, m) {
    if (!Number.isInteger(m.messageId)) throw new Error("messageId is not an integer");
    const t = turn(app, m.turnId);
    if (m.role === "assistant") t.assistantMessageId = m.messageId;
    else t.userMessageId = m.messageId;
    app.view.messageSaved(m.turnId, m.role, m.messageId);
    app.messageStored();
  },

  // A turn's figures; a second event for the same turn (once the first `played` position completed
  // voice-to-voice after the turn's end) carries them all again and replaces the first.
  latency(app, m) {
    const figure = (v) => (Number.isFinite(v) ? v : null);
    const l = {
      sttMs: figure(m.sttMs),
      llmFirstTokenMs: figure(m.llmFirstTokenMs),
      ttsFirstByteMs: figure(m.ttsFirstByteMs),
      firstAudioMs: figure(m.firstAudioMs),
      heardAfterMs: figure(m.heardAfterMs),
    };
    turn(app, m.turnId).latency = l;
    app.view.latency(m.turnId, l);
  },

  status(app, m) {
    app.parley.statuses.push(str(m.message));
    showStatus(str(m.message));
  },

  error(app, m) {
    const { message, advice } = explainServerError(m);
    app.parley.errors.push({ code: str(m.code), message, advice, retryable: !!m.retryable });
    showError(message, advice);
  },

  // A client-side tool: this page runs it and answers within the tool's timeout. The built-in demo tool is
  // `client_time` (the listener's local time and time zone); any other name is answered with an error the
  // model is given.
  toolCall(app, m) {
    const callId = str(m.callId);
    const name = str(m.name);
    if (!callId) return;
    app.parley.tools.push({ callId, name, arguments: m.arguments, runsOn: "client" });
    const run = CLIENT_TOOLS[name];
    let answer;
    try {
      answer = run ? { result: run(m.arguments || {}) } : { error: `this page has no tool named ${name}` };
    } catch (e) {
      answer = { error: String(e && e.message ? e.message : e) };
    }
    app.conn.send({ type: "toolResult", callId, ...answer });
    showStatus(run ? `The assistant used ${name} on this page.` : `The assistant asked for ${name}, which this page does not have.`);
  },

  // A server-side tool call's progress (running, done, failed, cancelled).
  tool(app, m) {
    const entry = { callId: str(m.callId), name: str(m.name), status: str(m.status), runsOn: "server" };
    app.parley.tools.push(entry);
    const words = { running: "is looking something up", done: "got an answer", failed: "could not get an answer", cancelled: "stopped looking" };
    if (words[entry.status]) showStatus(`The assistant ${words[entry.status]} (${entry.name}).`);
  },

  // The agent ended the conversation; the server closes the socket normally next.
  end(app) {
    app.parley.ended = true;
    showStatus("The assistant ended the conversation.");
  },

  pong() {},
};

const CLIENT_TOOLS = {
  client_time() {
    return {
      localTime: new Date().toString(),
      timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone || "unknown",
    };
  },
};

/** Applies one server message to the page. Throws (and changes nothing) on a malformed turn message. */
export function handleServerMessage(app, m) {
  const handler = HANDLERS[m.type];
  if (!handler) {
    app.parley.ignoredMessages = (app.parley.ignoredMessages || 0) + 1;
    return;
  }
  // Turn 0 is an agent's greeting, spoken before the user says anything.
  if (TURN_MESSAGES.has(m.type) && !(Number.isInteger(m.turnId) && m.turnId >= 0)) {
    throw new Error("turnId is not a non-negative integer");
  }
  handler(app, m);
  app.updateInterrupt();
}
