// The voice WebSocket (`/ws/chat-audio`): opening it, telling apart the ways it fails, and coming back after a
// drop. A connection that was working and drops reconnects by itself with backoff, resuming the same stored
// session; one refused before it opened is diagnosed with a plain GET of the same URL, which the server
// answers with the JSON error it refused the upgrade for (a browser WebSocket never sees that body).
//
// States: idle → connecting → ready (the `session` message arrived) → reconnecting → … → closed | failed.

const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000];
const SESSION_TIMEOUT_MS = 10000;
const PING_EVERY_MS = 15000;
/** Nothing at all from the server for this long (not even a pong): the link is dead. */
const SILENCE_LIMIT_MS = 40000;

export class Connection {
  /**
   * @param {{onState:(state:string, detail:object)=>void, onMessage:(msg:object)=>void,
   *          onAudio:(buf:ArrayBuffer)=>void, onWarning:(text:string)=>void}} handlers
   */
  constructor(handlers) {
    this.h = handlers;
    this.ws = null;
    this.state = "idle";
    this.userId = null;
    this.sessionId = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.sessionTimer = null;
    this.lastHeard = 0;
    /** Bumped by every attempt, so the diagnosis of an old attempt cannot act on a newer one. */
    this.generation = 0;
    window.addEventListener("online", () => {
      if (this.state === "reconnecting") this.open();
    });
  }

  /** A session is running and the socket can take a frame (not closing). */
  get ready() {
    return this.state === "ready" && this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Opens a new connection: a new session, or the stored session `sessionId`. */
  connect(userId, sessionId = null) {
    this.shutdown(1000, "reconnecting");
    this.userId = userId;
    this.sessionId = sessionId;
    this.attempt = 0;
    this.open();
  }

  /** Ends the conversation on purpose: no reconnect. */
  close() {
    this.shutdown(1000, "user closed");
    this.set("closed", { message: "Conversation ended." });
  }

  send(message) {
    if (!this.ready) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  sendAudio(pcm) {
    if (!this.ready) return false;
    this.ws.send(pcm);
    return true;
  }

  url(scheme) {
    const q = new URLSearchParams({ userId: this.userId, sampleRate: "16000" });
    if (this.sessionId) q.set("sessionId", this.sessionId);
    return `${scheme}//${location.host}/ws/chat-audio?${q}`;
  }

  set(state, detail = {}) {
    this.state = state;
    this.h.onState(state, detail);
  }

  shutdown(code, reason) {
    this.generation++;
    clearTimeout(this.retryTimer);
    clearTimeout(this.sessionTimer);
    clearInterval(this.pingTimer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState <= WebSocket.OPEN) ws.close(code, reason);
    }
  }

  open() {
    this.shutdown(1000, "reconnecting");
    if (this.attempt === 0) this.set("connecting");
    else this.set("reconnecting", { attempt: this.attempt, message: "Reconnecting…" });
    let ws;
    try {
      ws = new WebSocket(this.url(location.protocol === "https:" ? "wss:" : "ws:"));
    } catch (e) {
      return this.set("failed", { message: `The connection could not be opened (${e.message}).` });
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    const generation = ++this.generation;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.lastHeard = Date.now();
      this.sessionTimer = setTimeout(() => ws.close(4000, "no session message"), SESSION_TIMEOUT_MS);
    };
    ws.onmessage = (e) => this.receive(e.data);
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.pingTimer);
      clearTimeout(this.sessionTimer);
      if (opened) this.dropped(e);
      else this.refused(generation);
    };
  }

  receive(data) {
    this.lastHeard = Date.now();
    if (typeof data !== "string") return this.h.onAudio(data);
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return this.h.onWarning("The server sent a message that is not JSON; it was ignored.");
    }
    if (!msg || typeof msg.type !== "string") {
      return this.h.onWarning("The server sent a message without a type; it was ignored.");
    }
    if (msg.type === "session") {
      clearTimeout(this.sessionTimer);
      if (typeof msg.sessionId === "string") this.sessionId = msg.sessionId;
      this.attempt = 0;
      this.state = "ready";
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.heartbeat(), PING_EVERY_MS);
    }
    this.h.onMessage(msg);
    if (msg.type === "session") this.set("ready", { resumed: !!msg.resumed });
  }

  heartbeat() {
    if (Date.now() - this.lastHeard > SILENCE_LIMIT_MS) return this.ws && this.ws.close(4001, "server silent");
    this.send({ type: "ping" });
  }

  /** A working connection ended without our asking. */
  dropped(e) {
    const why =
      e.code === 1001
        ? "The server is restarting."
        : e.code === 1009
          ? "A message was too large for the server."
          : `The connection was lost (code ${e.code}${e.reason ? `: ${e.reason}` : ""}).`;
    if (e.code === 1008 || e.code === 1003) return this.set("failed", { message: `${why} Start again to continue.` });
    this.retry(why);
  }

  /** The upgrade never completed: ask the server why over plain HTTP. */
  async refused(generation) {
    let status = 0;
    let body = null;
    try {
      const res = await fetch(this.url(location.protocol), { cache: "no-store" });
      status = res.status;
      body = await res.json().catch(() => null);
    } catch {
      // Unreachable: retry below.
    }
    if (generation !== this.generation || this.ws !== null) return; // connect() or close() came meanwhile
    const said = body && body.message ? body.message : "";
    if (body && body.error === "not_a_websocket") {
      // The server would have accepted: something between (a proxy, the network) broke the upgrade.
      return this.retry("The WebSocket could not be opened; a proxy or the network may be blocking it.");
    }
    if (status === 404 && this.sessionId) {
      this.h.onWarning(`That conversation could not be resumed (${said || "not found"}); starting a new one.`);
      this.sessionId = null;
      return this.retry("Starting a new conversation.");
    }
    if (status === 400 || status === 404) {
      return this.set("failed", { message: `The server refused the connection: ${said || `HTTP ${status}`}.` });
    }
    if (status === 503) return this.retry(`The server is busy (${said || "at its limit"}).`);
    if (status === 0) return this.retry("The server cannot be reached.");
    return this.retry(`The connection failed (HTTP ${status}${said ? `: ${said}` : ""}).`);
  }

  retry(why) {
    if (this.attempt >= RETRY_DELAYS_MS.length) {
      return this.set("failed", { message: `${why} Gave up after ${this.attempt} attempts.` });
    }
    const delay = RETRY_DELAYS_MS[this.attempt++];
    this.set("reconnecting", { message: why, retryInMs: delay, attempt: this.attempt });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }
}
