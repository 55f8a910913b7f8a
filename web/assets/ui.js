// The page's fixed elements and the small pieces of UI around the conversation: the connection badge, the
// notice (errors in plain words with what to do, and a Reconnect button when it helps), the status line,
// the microphone button and level, and which controls are usable in which state.

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

export function showStatus(text) {
  els.statusLine.textContent = text;
  els.statusLine.hidden = !text;
}

export function showMic(state) {
  const on = state === "on";
  els.mic.setAttribute("aria-pressed", String(on));
  els.mic.dataset.state = state;
  els.micLabel.textContent =
    state === "on" ? "Microphone on" : state === "starting" ? "Starting microphone…" : "Microphone off";
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
