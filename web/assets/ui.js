// The page's fixed elements and the small pieces of UI around the conversation: the connection badge, the
// notice (the connection's state in plain words with what to do, and a Reconnect button when it helps), the
// list of errors (every one, each dismissable, a repeat counted rather than shown twice), the notes on how
// the server is set up (missing provider keys, emulated providers), the status line, the microphone button
// and level, and which controls are usable in which state.

const $ = (id) => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`index.html lacks #${id}`);
  return e;
};

export const els = {
  identity: $("identity"),
  userId: $("user-id"),
  start: $("start"),
  end: $("end"),
  badge: $("conn-state"),
  emulated: $("emulated"),
  sessionId: $("session-id"),
  copySession: $("copy-session"),
  notice: $("notice"),
  noticeText: $("notice-text"),
  noticeAdvice: $("notice-advice"),
  reconnect: $("reconnect"),
  dismiss: $("dismiss"),
  statusLine: $("status-line"),
  setup: $("setup"),
  setupNotes: $("setup-notes"),
  errors: $("errors"),
  errorList: $("error-list"),
  errorsClear: $("errors-clear"),
  turns: $("turns"),
  interim: $("interim"),
  mic: $("mic"),
  micLabel: $("mic-label"),
  micLevel: $("mic-level"),
  interrupt: $("interrupt"),
  compose: $("compose"),
  message: $("message"),
  send: $("send"),
  historyRefresh: $("history-refresh"),
  historyList: $("sessions"),
  historyMore: $("sessions-more"),
  historyStatus: $("history-status"),
};

const BADGE = {
  idle: ["Not connected", "idle"],
  connecting: ["Connecting…", "busy"],
  ready: ["Connected", "ok"],
  reconnecting: ["Reconnecting…", "busy"],
  closed: ["Ended", "idle"],
  failed: ["Disconnected", "bad"],
};

export function showConnection(state, detail = {}) {
  const [text, tone] = BADGE[state] || [state, "idle"];
  els.badge.textContent = detail.attempt ? `${text} (attempt ${detail.attempt})` : text;
  els.badge.dataset.tone = tone;
  const live = state === "ready";
  els.start.textContent = live || state === "reconnecting" ? "New conversation" : "Start conversation";
  els.end.disabled = !(live || state === "connecting" || state === "reconnecting");
  els.send.disabled = !live;
  els.message.disabled = !live;
  els.mic.disabled = !live;
}

/**
 * Shows a notice. `kind`: "error" (announced at once) or "info".
 * @param {{reconnect?:boolean}} opts reconnect: offer the Reconnect button
 */
export function showNotice(kind, text, advice = "", opts = {}) {
  els.notice.hidden = false;
  els.notice.dataset.kind = kind;
  els.notice.setAttribute("role", kind === "error" ? "alert" : "status");
  els.noticeText.textContent = text;
  els.noticeAdvice.textContent = advice;
  els.noticeAdvice.hidden = !advice;
  els.reconnect.hidden = !opts.reconnect;
}

export function hideNotice() {
  els.notice.hidden = true;
  els.reconnect.hidden = true;
}

/** Every error shown and not dismissed, in order: `{message, advice, count}` (also `window.parley.errorList`). */
export const shownErrors = [];

/**
 * Lists an error with what to do about it. The same error again (same message) counts up on its entry
 * instead of pushing the others away.
 */
export function showError(message, advice = "") {
  const same = shownErrors.find((e) => e.message === message && e.advice === advice);
  if (same) {
    same.count++;
    same.countEl.textContent = `×${same.count}`;
    same.countEl.hidden = false;
    els.errorList.appendChild(same.li); // the latest last
    return;
  }
  const li = document.createElement("li");
  li.className = "error";
  li.setAttribute("role", "alert");
  const text = document.createElement("p");
  text.className = "error-message";
  text.textContent = message;
  const countEl = document.createElement("span");
  countEl.className = "error-count";
  countEl.hidden = true;
  text.append(" ", countEl);
  li.appendChild(text);
  if (advice) {
    const a = document.createElement("p");
    a.className = "advice";
    a.textContent = advice;
    li.appendChild(a);
  }
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.className = "link dismiss";
  dismiss.textContent = "Dismiss";
  dismiss.setAttribute("aria-label", `Dismiss: ${message}`);
  const entry = { message, advice, count: 1, li, countEl };
  dismiss.addEventListener("click", () => dismissError(entry));
  li.appendChild(dismiss);
  shownErrors.push(entry);
  els.errorList.appendChild(li);
  els.errors.hidden = false;
  els.errorsClear.hidden = shownErrors.length < 2;
}

function dismissError(entry) {
  const i = shownErrors.indexOf(entry);
  if (i >= 0) shownErrors.splice(i, 1);
  entry.li.remove();
  els.errors.hidden = shownErrors.length === 0;
  els.errorsClear.hidden = shownErrors.length < 2;
}

export function dismissAllErrors() {
  for (const e of [...shownErrors]) dismissError(e);
}

/** The notes on how the server is set up: `[{kind: "missing"|"emulated", text}]`; none hides the panel. */
export function showSetup(notes) {
  els.setupNotes.replaceChildren(
    ...notes.map((n) => {
      const li = document.createElement("li");
      li.dataset.kind = n.kind;
      li.textContent = n.text;
      return li;
    }),
  );
  els.setup.hidden = notes.length === 0;
}

export function showStatus(text) {
  els.statusLine.textContent = text;
  els.statusLine.hidden = !text;
}

/** `state`: "on", "starting", "off", or "unavailable" (the server cannot recognise speech: nothing to send). */
export function showMic(state) {
  const on = state === "on";
  els.mic.setAttribute("aria-pressed", String(on));
  els.mic.dataset.state = state;
  const labels = { on: "Microphone on", starting: "Starting microphone…", unavailable: "Speech input unavailable" };
  els.micLabel.textContent = labels[state] || "Microphone off";
  if (state === "unavailable") els.mic.disabled = true;
  if (!on) els.micLevel.value = 0;
}

export function showLevel(level) {
  // RMS of speech sits around 0.05–0.3; a square root spreads it over the meter.
  els.micLevel.value = Math.min(1, Math.sqrt(level * 4));
}

export function showSession(id) {
  els.sessionId.textContent = id || "—";
  els.copySession.hidden = !id;
}
