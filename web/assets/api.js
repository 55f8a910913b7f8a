// parley's REST API, as the page uses it. Every call carries `Authorization: Bearer` with a token of the user
// (see auth.js) and resolves to the parsed JSON, or throws an ApiError whose message is fit to show (the
// server's `message` when it sent one) and whose `code` is the server's `error`. A development token the
// server no longer takes is replaced once, then the refusal is reported to the page (`onRefused`).

import { AuthError, retryAfterMs } from "./auth.js";
import { isRefusal } from "./errors.js";

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfter;
  }
}

let credentials = null;
let currentUser = () => "";
let onRefused = () => {};

/**
 * Where the calls get their tokens.
 * @param {import("./auth.js").Credentials} creds
 * @param {()=>string} userId the user a call is for when it does not say (a rating)
 * @param {(e:ApiError|AuthError)=>void} refused told of every access refusal, after it is thrown
 */
export function authorize(creds, userId, refused) {
  credentials = creds;
  currentUser = userId;
  onRefused = refused;
}

async function call(path, init = {}, userId = currentUser(), renewed = false) {
  let token;
  try {
    token = await credentials.token(userId);
  } catch (e) {
    if (e instanceof AuthError && isRefusal(e.code)) onRefused(e);
    throw e;
  }
  let res;
  try {
    res = await fetch(path, {
      cache: "no-store",
      ...init,
      headers: { ...init.headers, authorization: `Bearer ${token}` },
    });
  } catch {
    throw new ApiError(0, "unreachable", "the server cannot be reached");
  }
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const code = (body && body.error) || `http_${res.status}`;
    if (res.status === 401 && credentials.renewable && !renewed) {
      credentials.discard();
      return call(path, init, userId, true);
    }
    const e = new ApiError(res.status, code, (body && body.message) || `HTTP ${res.status}`, retryAfterMs(res));
    if (isRefusal(code)) onRefused(e);
    throw e;
  }
  if (body === null) throw new ApiError(res.status, "not_json", "the server's answer was not JSON");
  return body;
}

/** A page of the user's sessions, newest first: `{sessions, nextCursor}`. */
export function listSessions(userId, cursor = null, limit = 10) {
  const q = new URLSearchParams({ userId, limit: String(limit) });
  if (cursor) q.set("cursor", cursor);
  return call(`/api/sessions?${q}`, {}, userId);
}

/** The messages of one of the user's sessions: `{messages: [...]}`, audio links signed by the server. */
export function getHistory(sessionId, userId) {
  return call(`/api/history?${new URLSearchParams({ sessionId, userId })}`, {}, userId);
}

/** A session's recordings: `{recordings: [{messageId, durationSeconds, ...}]}`, as the server registered them. */
export function listRecordings(sessionId, userId) {
  return call(`/api/recordings?${new URLSearchParams({ sessionId })}`, {}, userId);
}

/** Rates an assistant message: "positive", "negative" or null (clears). Resolves to the stored value. */
export async function setFeedback(messageId, feedback) {
  const body = await call("/api/feedback", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ message_id: messageId, feedback }),
  });
  return body.feedback === undefined ? feedback : body.feedback;
}
