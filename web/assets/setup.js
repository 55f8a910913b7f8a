// How the server is set up, from the `session` message's `providers` (README, "The voice WebSocket
// protocol"), in plain words: a stage whose key is not set says what the operator must set, and emulated
// providers (`parley --emulate`) say what they do instead of listening, thinking and speaking, so that a
// transcript of words nobody said is not a surprise.

/** What the emulated Deepgram transcribes, whatever it hears (src/emulators/deepgram/script.rs). */
const EMULATED_SCRIPT = "This is caller 1, turn 1, speaking.";

const MISSING = {
  stt: (v) => `Speech recognition is not set up on this server, so the microphone stays off: whoever runs parley must set ${v} (or start it with --emulate). You can type instead.`,
  llm: (v) => `The assistant cannot answer: whoever runs parley must set ${v} (or start it with --emulate).`,
  tts: (v) => `The assistant's voice is not set up, so answers come as text only: whoever runs parley must set ${v} (or start it with --emulate).`,
};

const EMULATED = {
  stt: `the speech recogniser does not listen to you: whatever you say, it returns a fixed script such as “${EMULATED_SCRIPT}”`,
  llm: "the assistant only repeats what it received (“You said: …”)",
  tts: "the voice is a synthetic tone, not speech",
};

const STAGES = ["stt", "llm", "tts"];

function state(providers, stage) {
  const p = providers && providers[stage];
  return p && typeof p === "object" ? p : null;
}

/** Whether the session can take microphone audio (a server that does not say is assumed able). */
export function canListen(providers) {
  const stt = state(providers, "stt");
  return !stt || stt.status !== "missing";
}

/** The notes to show: `[{kind: "missing"|"emulated", text}]`, none when everything is configured. */
export function setupNotes(providers) {
  const notes = [];
  for (const stage of STAGES) {
    const p = state(providers, stage);
    if (p && p.status === "missing") {
      const variable = typeof p.keyVariable === "string" && p.keyVariable ? p.keyVariable : "its API key";
      notes.push({ kind: "missing", text: MISSING[stage](variable) });
    }
  }
  const emulated = STAGES.filter((stage) => state(providers, stage)?.status === "emulated");
  if (emulated.length) {
    const what = emulated.map((stage) => EMULATED[stage]).join("; ");
    notes.push({
      kind: "emulated",
      text: `This server runs parley's emulated providers (--emulate), not the real services: ${what}. Set the providers' keys and start parley without --emulate to talk for real.`,
    });
  }
  return notes;
}
