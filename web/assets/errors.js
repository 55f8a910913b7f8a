// Errors in plain words, with what the person can do about them:
// - server `error` events: the server's own sentence (`error`) already says what failed; this adds the next
//   step, chosen by `code` (see README, "You receive");
// - refusals of this page's credential (a REST call, the WebSocket upgrade, the development token exchange),
//   by the `error` code of the JSON body, or a code of the page's own when there was nothing to send.

const PROVIDER_ADVICE = {
  deepgram: "Speech recognition is off for now; you can still type your message.",
  openai: "The assistant could not answer.",
  elevenlabs: "The assistant's voice is unavailable; its answers still appear as text.",
};

const KIND_ADVICE = {
  not_configured: "The server has no API key for this service: whoever runs parley needs to set it (or start it with --emulate).",
  auth: "The server's API key was refused: whoever runs parley needs to check it.",
  bad_request: "The server's settings for this service were refused: whoever runs parley needs to check them.",
  policy: "The provider refused the request.",
  rate_limited: "The provider is busy. Wait a moment and try again.",
  server: "The provider had a problem. Try again.",
  connect: "The provider could not be reached. Check the server's network, then try again.",
  timeout: "The provider took too long. Try again.",
  truncated: "The answer was cut off. Ask again.",
  protocol: "The provider's answer could not be understood. Try again.",
};

const CODE_ADVICE = {
  not_ready: "The connection was still starting. Try again in a second.",
  frame_too_large: "This page sent too much audio at once; it will recover by itself. Reload the page if it persists.",
  message_too_large: "That message is too long. Shorten it and send it again.",
  server_busy: "The server has too many conversations right now. Try again in a minute.",
  invalid_json: "This page sent something the server did not understand. Reload the page.",
  unknown_message_type: "This page and the server disagree about the protocol. Reload the page.",
  invalid_message: "The server could not use the last message. Check it and send it again.",
  unsupported_frame: "This page sent something the server did not understand. Reload the page.",
};

/**
 * @param {{error?:string, code?:string, retryable?:boolean}} e the server's error event
 * @returns {{message:string, advice:string}}
 */
export function explainServerError(e) {
  const code = typeof e.code === "string" ? e.code : "";
  const message = typeof e.error === "string" && e.error ? e.error : "Something went wrong on the server.";
  let advice = CODE_ADVICE[code];
  if (!advice) {
    const [provider, ...rest] = code.split("_");
    const kind = rest.join("_");
    if (PROVIDER_ADVICE[provider]) advice = `${PROVIDER_ADVICE[provider]} ${KIND_ADVICE[kind] || ""}`.trim();
  }
  if (!advice) advice = e.retryable ? "Try again." : "If this keeps happening, tell whoever runs parley.";
  return { message, advice };
}

const OPEN_PRINTED = "Open the page through the address parley printed when it started (it ends in ?dev=…).";

/** Access refusals: what happened, and what to do. Codes are the server's, except where noted. */
const REFUSALS = {
  // The page's own: no credential in the address, in this tab, or from window.parley.setToken.
  credential_missing: ["This page was opened without a credential.", `${OPEN_PRINTED} An app that embeds parley passes a token instead.`],
  credential_invalid: ["parley did not accept this page's development credential.", `${OPEN_PRINTED} It changes every time parley starts.`],
  // The page's own: POST /api/dev/token is 404, the server has a configured secret.
  development_off: ["This parley is not a development server: the page needs a token from the app that embeds it.", "Open parley through that app."],
  token_missing: ["The server asked for a token this page did not send.", "Reload the page."],
  token_invalid: ["Your session token was not accepted.", "Reload the page, or open it again from the app that gave you the token."],
  token_expired: ["Your session token has expired.", "Reload the page (or the app that opened it) to get a new one."],
  token_scope: ["Your session token does not allow this.", "Ask the app that gave you the token for one that allows voice and history."],
  user_mismatch: ["Your session token belongs to another user id.", "Use the user id of the token, or reload the page."],
  origin_not_allowed: ["The server does not accept requests from this page's address.", "Whoever runs parley can allow it with PARLEY_ALLOWED_ORIGINS."],
  rate_limited: ["Too many requests in a short time.", "Wait a moment, then try again."],
  too_many_sessions: ["You already have as many conversations open as the server allows.", "End one (in another tab or device), then try again."],
};

/** True when `code` is an access refusal: the credential, not the request, is what needs attention. */
export function isRefusal(code) {
  return Object.hasOwn(REFUSALS, code);
}

/**
 * @param {string} code the `error` code of the refusal's JSON body (or a page code, see REFUSALS)
 * @returns {{message:string, advice:string}|null} null for a code that is not an access refusal
 */
export function explainRefusal(code) {
  if (!isRefusal(code)) return null;
  const [message, advice] = REFUSALS[code];
  return { message, advice };
}
