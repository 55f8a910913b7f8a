// The history panel: the user's sessions (GET /api/sessions, a page at a time), each labelled by the first
// words the user said, the messages of one (GET /api/history) with their recordings (signed links the server
// made, played as they come, each showing its duration before it plays: the server's figure from
// GET /api/recordings, and the player's own from the file's metadata) and ratings, and a way to continue any
// of them. A reply the listener did not hear to the end shows what was heard, says it was cut off, and keeps
// the whole generated text behind a disclosure. A reply with nothing in it has no rating buttons.

import { getHistory, listRecordings, listSessions } from "./api.js";
import { el } from "./dom.js";
import { explainRefusal } from "./errors.js";
import { feedbackWidget } from "./feedback.js";

const PAGE = 10;

/** How a cut-off reply is announced: why, and after how much of it when known. */
function cutOff(m) {
  if (m.outcome === "partial") return "Cut off by an error";
  if (typeof m.heardMs !== "number") return "Cut off";
  return `Cut off after ${m.heardSource === "estimate" ? "about " : ""}${(m.heardMs / 1000).toFixed(1)} s`;
}

/** Seconds as m:ss (a recording's length). */
export function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** What a listed session is called: the user's first words, else what it was (a call, a greeting only). */
function label(s) {
  if (typeof s.firstWords === "string" && s.firstWords) return s.firstWords;
  if (s.call && s.call.from) return `Call from ${s.call.from}`;
  return s.messageCount ? "(nothing said by you)" : "(empty conversation)";
}

function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "unknown time" : d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

export class HistoryPanel {
  /**
   * @param {{list:HTMLElement, more:HTMLButtonElement, status:HTMLElement}} els
   * @param {{userId:()=>string, onResume:(sessionId:string)=>void}} hooks
   */
  constructor(els, hooks) {
    this.els = els;
    this.hooks = hooks;
    this.cursor = null;
    this.loading = false;
    /** Bumped by every fresh load: an answer for an older generation (another user id) is dropped. */
    this.generation = 0;
    /** What the panel shows, for the page's state: sessions listed, and messages of the open ones. */
    this.state = { sessions: [], open: {}, loading: false };
    /** The user id the list belongs to. */
    this.shownFor = null;
    this.items = new Map(); // sessionId → {toggle, count, body}
    els.more.addEventListener("click", () => this.load(false));
  }

  /** Reloads from the first page (a new user id, or the Refresh button). */
  refresh() {
    return this.load(true);
  }

  /**
   * Brings the first page up to date without disturbing the panel: new sessions appear on top, counts
   * change in place, and an open session reloads its messages (after a turn of the live conversation).
   */
  async update() {
    const userId = this.hooks.userId();
    if (!userId || this.loading) return;
    const generation = this.generation;
    try {
      const page = await listSessions(userId, null, PAGE);
      if (generation !== this.generation || this.loading) return;
      const fresh = (page.sessions || []).filter((s) => !this.items.has(s.sessionId));
      for (const s of fresh.reverse()) this.addSession(s, true);
      for (const s of page.sessions || []) {
        const item = this.items.get(s.sessionId);
        if (!item) continue;
        item.count.textContent = `${s.messageCount} messages`;
        item.title.textContent = label(s);
        if (item.toggle.getAttribute("aria-expanded") === "true") this.openSession(s.sessionId, item.body);
      }
      if (this.state.sessions.length) this.els.status.textContent = "";
    } catch {
      // The next update or a Refresh tries again; the panel keeps what it shows.
    }
  }

  async load(fresh) {
    const userId = this.hooks.userId();
    if (!userId || (!fresh && this.loading)) return;
    const generation = fresh ? ++this.generation : this.generation;
    this.loading = this.state.loading = true;
    this.els.more.disabled = true;
    this.els.status.textContent = "Loading…";
    try {
      const page = await listSessions(userId, fresh ? null : this.cursor, PAGE);
      if (generation !== this.generation) return; // superseded by a fresher load
      // A refresh keeps open what the person had open.
      const reopen = fresh && userId === this.shownFor ? Object.keys(this.state.open) : [];
      if (fresh) {
        this.els.list.replaceChildren();
        this.items.clear();
        this.state.sessions = [];
        this.state.open = {};
        this.shownFor = userId;
      }
      for (const s of page.sessions || []) if (!this.items.has(s.sessionId)) this.addSession(s, false);
      for (const id of reopen) if (this.items.has(id)) this.toggle(id, true);
      this.cursor = page.nextCursor || null;
      this.els.more.hidden = !this.cursor;
      this.els.status.textContent = this.state.sessions.length ? "" : "No conversations yet.";
    } catch (e) {
      if (generation === this.generation) {
        // A refused credential is the page's notice to explain; the panel says what it means here.
        const refusal = explainRefusal(e.code);
        this.els.status.textContent = refusal
          ? `History cannot be shown. ${refusal.message}`
          : `History could not be loaded: ${e.message}. Press Refresh to try again.`;
      }
    } finally {
      if (generation === this.generation) {
        this.loading = this.state.loading = false;
        this.els.more.disabled = false;
      }
    }
  }

  addSession(s, onTop) {
    if (onTop) this.state.sessions.unshift(s.sessionId);
    else this.state.sessions.push(s.sessionId);
    const li = el("li", "session");
    li.dataset.sessionId = s.sessionId;
    const head = el("div", "session-head");
    const toggle = el("button", "session-toggle");
    toggle.type = "button";
    toggle.setAttribute("aria-expanded", "false");
    const count = el("span", "count", `${s.messageCount} messages`);
    const title = el("span", "title", label(s));
    const line = el("span", "when-line");
    line.append(el("span", "when", when(s.lastActivityAt)), " · ", count);
    toggle.append(title, line);
    const resume = el("button", "resume secondary", "Continue");
    resume.type = "button";
    resume.setAttribute("aria-label", `Continue “${label(s)}” (${when(s.lastActivityAt)})`);
    resume.addEventListener("click", () => this.hooks.onResume(s.sessionId));
    head.append(toggle, resume);
    const body = el("div", "session-body");
    body.hidden = true;
    toggle.addEventListener("click", () => this.toggle(s.sessionId, toggle.getAttribute("aria-expanded") !== "true"));
    li.append(head, body);
    if (onTop) this.els.list.prepend(li);
    else this.els.list.appendChild(li);
    this.items.set(s.sessionId, { toggle, count, title, body });
  }

  /** Opens (loading its messages) or closes a listed session. */
  toggle(sessionId, open) {
    const item = this.items.get(sessionId);
    item.toggle.setAttribute("aria-expanded", String(open));
    item.body.hidden = !open;
    if (open) {
      this.state.open[sessionId] = this.state.open[sessionId] || [];
      this.openSession(sessionId, item.body);
    } else delete this.state.open[sessionId];
  }

  async openSession(sessionId, body) {
    body.replaceChildren(el("p", "muted", "Loading…"));
    try {
      const userId = this.hooks.userId();
      // The recordings' durations are a nicety: without them the players still work.
      const [h, recordings] = await Promise.all([
        getHistory(sessionId, userId),
        listRecordings(sessionId, userId).catch(() => ({ recordings: [] })),
      ]);
      const durations = new Map();
      for (const r of recordings.recordings || []) {
        if (Number.isInteger(r.messageId) && Number.isFinite(r.durationSeconds)) durations.set(r.messageId, r.durationSeconds);
      }
      const list = el("ol", "messages");
      for (const m of h.messages || []) list.appendChild(this.message(m, durations.get(m.id)));
      body.replaceChildren(list.childNodes.length ? list : el("p", "muted", "No messages in this conversation."));
      this.state.open[sessionId] = (h.messages || []).map((m) => ({
        id: m.id,
        role: m.role,
        content: m.content,
        audioUrl: m.audioUrl,
        feedback: m.feedback,
        outcome: m.outcome ?? null,
        generatedContent: m.generatedContent ?? null,
        heardMs: m.heardMs ?? null,
        heardSource: m.heardSource ?? null,
        durationSeconds: durations.get(m.id) ?? null,
      }));
    } catch (e) {
      const refusal = explainRefusal(e.code);
      const why = refusal ? `. ${refusal.message}` : `: ${e.message}.`;
      body.replaceChildren(el("p", "error-text", `Could not load this conversation${why}`));
    }
  }

  /** One message; `seconds` is its recording's duration when the server knows it. */
  message(m, seconds) {
    const li = el("li", `message ${m.role === "assistant" ? "assistant" : "user"}`);
    li.dataset.messageId = String(m.id);
    li.appendChild(el("span", "who", m.role === "assistant" ? "parley" : "You"));
    const cut = typeof m.generatedContent === "string" && typeof m.content === "string";
    if (cut && !m.content) li.appendChild(el("p", "text muted", "Nothing of this answer was heard."));
    else if (typeof m.content === "string") li.appendChild(el("p", cut ? "text cut" : "text", m.content));
    else li.appendChild(el("p", "text error-text", `This message cannot be read (${m.contentError || "unknown error"}).`));
    if (cut) {
      // What was heard is the message; what the LLM went on to generate is one click away.
      const generated = el("details", "generated");
      generated.append(el("summary", "", `${cutOff(m)} — show what was generated`), el("p", "generated-text", m.generatedContent));
      li.appendChild(generated);
    } else if (m.interrupted) li.appendChild(el("span", "badge", "interrupted"));
    if (typeof m.audioUrl === "string" && m.audioUrl) {
      const audio = el("audio");
      audio.controls = true;
      // The player reads the length from the file's head (a ranged request), so it shows it before playing.
      audio.preload = "metadata";
      audio.src = m.audioUrl;
      const what = m.role === "assistant" ? "answer" : "message";
      const length = Number.isFinite(seconds) ? clock(seconds) : null;
      audio.setAttribute("aria-label", `Recording of this ${what}${length ? `, ${length} long` : ""}`);
      const row = el("div", "recording");
      row.appendChild(audio);
      if (length) {
        const d = el("span", "duration", length);
        d.title = "Length of the recording";
        row.appendChild(d);
      }
      li.appendChild(row);
    }
    // A reply with nothing in it (it failed before its first word) has nothing to rate.
    const answered = (typeof m.content === "string" && m.content) || (typeof m.generatedContent === "string" && m.generatedContent);
    if (m.role === "assistant" && answered) li.appendChild(feedbackWidget(m.id, m.feedback ?? null));
    return li;
  }
}
