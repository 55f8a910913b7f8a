// parley's REST API, as the page uses it. Every call resolves to the parsed JSON or throws an Error whose
// message is fit to show (the server's `message` when it sent one).

async function call(path, init) {
  let res;
  try {
    res = await fetch(path, { cache: "no-store", ...init });
  } catch {
    throw new Error("the server cannot be reached");
  }
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error((body && body.message) || `HTTP ${res.status}`);
  if (body === null) throw new Error("the server's answer was not JSON");
  return body;
}

/** A page of the user's sessions, newest first: `{sessions, nextCursor}`. */
export function listSessions(userId, cursor = null, limit = 10) {
  const q = new URLSearchParams({ userId, limit: String(limit) });
  if (cursor) q.set("cursor", cursor);
  return call(`/api/sessions?${q}`);
}

/** The messages of one of the user's sessions: `{messages: [...]}`. */
export function getHistory(sessionId, userId) {
  return call(`/api/history?${new URLSearchParams({ sessionId, userId })}`);
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
