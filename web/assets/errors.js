// Server `error` events in plain words, with what the person can do about them. The server's own sentence
// (`error`) already says what failed; this adds the next step, chosen by `code` (see README, "You receive").

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
