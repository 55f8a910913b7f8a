// The live conversation on screen: each turn's user text, the assistant's captions sentence by sentence,
// its latency figures ("—" for a stage that did not happen), how much of it was heard, whether it was cut
// short, and its rating buttons (once there is an answer to rate: a turn that produced none has none). Also
// the interim transcript line. Rendering only; app.js decides what happens.

import { el } from "./dom.js";
import { attach, feedbackWidget } from "./feedback.js";

/** A figure in milliseconds; "—" for one that is not known (null). */
function ms(v) {
  return typeof v === "number" ? `${v} ms` : "—";
}

export class ConversationView {
  /** @param {HTMLOListElement} list  @param {HTMLElement} interim */
  constructor(list, interim) {
    this.list = list;
    this.interimEl = interim;
    this.epoch = 0;
    this.turns = new Map(); // turnId → elements, for the current connection
  }

  /** A new connection: turn ids start again at 1; a divider says what this is. */
  newConnection(session) {
    this.epoch++;
    this.turns.clear();
    const note = session.resumed
      ? `Resumed conversation (${session.historyMessages} earlier messages remembered)`
      : "New conversation";
    const li = el("li", "divider", note);
    this.list.appendChild(li);
    this.interim("", false);
  }

  turn(turnId) {
    let t = this.turns.get(turnId);
    if (t) return t;
    const li = el("li", "turn");
    li.dataset.turn = String(turnId);
    li.dataset.epoch = String(this.epoch);
    const user = el("div", "bubble user");
    user.append(el("span", "who", "You"), el("p", "text"));
    const assistant = el("div", "bubble assistant");
    const captions = el("p", "text captions");
    const meta = el("div", "meta");
    const status = el("span", "status", "thinking…");
    const latency = el("span", "latency");
    const heard = el("span", "heard");
    meta.append(status, latency, heard);
    const feedback = feedbackWidget();
    feedback.hidden = true; // until there is an answer to rate
    assistant.append(el("span", "who", "parley"), captions, meta, feedback);
    // Turn 0 is the agent's greeting: nobody spoke before it.
    if (turnId === 0) li.append(assistant);
    else li.append(user, assistant);
    this.list.appendChild(li);
    t = { li, user, captions, status, latency, heard, feedback, interrupted: false };
    this.turns.set(turnId, t);
    return t;
  }

  userTurn(turnId, text) {
    const t = this.turn(turnId);
    t.user.querySelector(".text").textContent = text;
    this.interim("", false);
    this.scroll(t.li);
  }

  assistantText(turnId, text) {
    const t = this.turn(turnId);
    const s = el("span", "sentence", text);
    if (t.captions.childNodes.length) t.captions.appendChild(document.createTextNode(" "));
    t.captions.appendChild(s);
    t.feedback.hidden = false;
    if (t.status.textContent === "thinking…") t.status.textContent = "";
    this.scroll(t.li);
  }

  speaking(turnId, on) {
    const t = this.turn(turnId);
    t.li.classList.toggle("speaking", on);
    if (!t.interrupted) t.status.textContent = on ? "speaking…" : "";
  }

  interrupted(turnId, byUser) {
    const t = this.turn(turnId);
    if (t.interrupted && !byUser) return; // the server confirming the user's own stop
    t.interrupted = true;
    t.li.classList.add("interrupted");
    t.li.classList.remove("speaking");
    t.status.textContent = byUser ? "stopped" : "interrupted";
  }

  turnEnd(turnId, interrupted) {
    const t = this.turn(turnId);
    t.li.classList.add("ended");
    if (interrupted) this.interrupted(turnId, false);
    else if (!t.captions.childNodes.length) {
      t.status.textContent = "no answer";
      t.feedback.remove(); // nothing to rate
    }
    else if (t.status.textContent === "thinking…") t.status.textContent = "";
  }

  /** The turn's figures; called again when a later `latency` event completes them. */
  latency(turnId, l) {
    const t = this.turn(turnId);
    const figures = [
      `STT ${ms(l.sttMs)}`,
      `LLM ${ms(l.llmFirstTokenMs)}`,
      `TTS ${ms(l.ttsFirstByteMs)}`,
      `voice-to-voice ${ms(l.heardAfterMs)}`,
    ];
    // One span per figure, so that a narrow screen wraps between figures, never inside one.
    t.latency.replaceChildren();
    figures.forEach((f, i) => t.latency.append(i ? " · " : "", el("span", "figure", f)));
    t.latency.title =
      "end of speech → committed · LLM first token · TTS first audio byte · end of speech → first audio heard here";
  }

  /** How much of the turn was heard. */
  heard(turnId, playedMs) {
    const t = this.turns.get(turnId);
    if (!t) return;
    t.heard.textContent = playedMs > 0 ? `heard ${(playedMs / 1000).toFixed(1)} s` : "";
  }

  messageSaved(turnId, role, messageId) {
    if (role !== "assistant") return;
    attach(this.turn(turnId).feedback, messageId, undefined);
  }

  interim(text, isFinal) {
    this.interimEl.textContent = text;
    this.interimEl.classList.toggle("final", isFinal);
    this.interimEl.hidden = !text;
  }

  scroll(node) {
    node.scrollIntoView({ block: "nearest" });
  }
}
