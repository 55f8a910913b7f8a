// The voice WebSocket (`/ws/chat-audio?token=…`): opening it, telling apart the ways it fails, and coming back
// after a drop. Each attempt takes a fresh token of the user from the page's credentials (a browser cannot
// set headers on a WebSocket, so the token goes in the query; the user is the token's). A connection that was
// working and drops reconnects by itself with backoff, resuming the same stored session; one refused before
// it opened is diagnosed with a plain GET of the same URL, which the server answers with the JSON error it
// refused the upgrade for (a browser WebSocket never sees that body). A refused credential fails with its
// `code` (the page explains it); a development token the server no longer takes is replaced once.
//
// States: idle → connecting → ready (the `session` message arrived) → reconnecting → … → closed | failed.

import { retryAfterMs } from "./auth.js";
import { isRefusal } from "./errors.js";

const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000];
const SESSION_TIMEOUT_MS = 10000;
const PING_EVERY_MS = 15000;
/** Nothing at all from the server for this long (not even a pong): the link is dead. */
const SILENCE_LIMIT_MS = 40000;

export class Connection {
  /**
   * @param {import("./auth.js").Credentials} credentials where each attempt gets its token
   * @param {{onState:(state:string, detail:object)=>void, onMessage:(msg:object)=>void,
   *          onAudio:(buf:ArrayBuffer)=>void, onWarning:(text:string)=>void}} handlers
   *   onState's detail: `message`, and for a refusal its `code`
   */
  constructor(credentials, handlers) {
    this.credentials = credentials;
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
    /** A stale development token was already replaced since the last session began. */
    this.renewed = false;
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
    this.renewed = false;
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

  /** The socket's address (`ws:`/`wss:`), or over `http:`/`https:` the same for asking why it was refused. */
  url(scheme, token) {
    const q = new URLSearchParams({ token, sampleRate: "16000" });
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

  async open() {
    this.shutdown(1000, "reconnecting");
    if (this.attempt === 0) this.set("connecting");
    else this.set("reconnecting", { attempt: this.attempt, message: "Reconnecting…" });
    const generation = this.generation;
    let token;
    try {
      token = await this.credentials.token(this.userId);
    } catch (e) {
      if (generation === this.generation) this.cannot(e.code, e.status, e.message, e.retryAfterMs);
      return;
    }
    if (generation !== this.generation) return; // connect() or close() came meanwhile
    let ws;
    try {
      ws = new WebSocket(this.url(location.protocol === "https:" ? "wss:" : "ws:", token));
    } catch (e) {
      return this.set("failed", { message: `The connection could not be opened (${e.message}).` });
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
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
      else this.refused(generation, token);
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
      this.renewed = false;
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
  async refused(generation, token) {
    let status = 0;
    let body = null;
    let wait = null;
    try {
      const res = await fetch(this.url(location.protocol, token), { cache: "no-store" });
      status = res.status;
      wait = retryAfterMs(res);
      body = await res.json().catch(() => null);
    } catch {
      // Unreachable: retry below.
    }
    if (generation !== this.generation || this.ws !== null) return; // connect() or close() came meanwhile
    const said = body && body.message ? body.message : "";
    const code = body && typeof body.error === "string" ? body.error : "";
    if (code === "not_a_websocket") {
      // The server would have accepted: something between (a proxy, the network) broke the upgrade.
      return this.retry("The WebSocket could not be opened; a proxy or the network may be blocking it.");
    }
    if (status === 404 && this.sessionId) {
      this.h.onWarning(`That conversation could not be resumed (${said || "not found"}); starting a new one.`);
      this.sessionId = null;
      return this.retry("Starting a new conversation.");
    }
    this.cannot(code, status, said, wait);
  }

  /** An attempt was refused (or got no token) with `code` and HTTP `status` (0: no answer): retry or fail. */
  cannot(code, status, said, wait) {
    if ((code === "token_expired" || code === "token_invalid") && this.credentials.renewable && !this.renewed) {
      // The page's development token went stale (the computer slept past its expiry, say): get another.
      this.renewed = true;
      this.credentials.discard();
      return this.retry("Getting a new token.", 0);
    }
    if (code === "rate_limited") return this.retry("Too many connections in a short time.", wait);
    if (isRefusal(code)) return this.set("failed", { code, message: said || code });
    if (status === 400 || status === 404) {
      return this.set("failed", { message: `The server refused the connection: ${said || `HTTP ${status}`}.` });
    }
    if (status === 503) return this.retry(`The server is busy (${said || "at its limit"}).`);
    if (status === 0) return this.retry("The server cannot be reached.");
    return this.retry(`The connection failed (HTTP ${status}${said ? `: ${said}` : ""}).`);
  }

  /** Tries again after `delayMs`, or the next step of the backoff. */
  retry(why, delayMs = null) {
    if (this.attempt >= RETRY_DELAYS_MS.length) {
      return this.set("failed", { message: `${why} Gave up after ${this.attempt} attempts.` });
    }
    const delay = delayMs ?? RETRY_DELAYS_MS[this.attempt];
    this.attempt++;
    this.set("reconnecting", { message: why, retryInMs: delay, attempt: this.attempt });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }
}
