// Thumbs up / down on assistant messages (POST /api/feedback). The same message can be on screen twice (in
// the live conversation and in the history panel); every widget of a message shows the stored value.

import { setFeedback } from "./api.js";
import { explainRefusal } from "./errors.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const THUMB_PATH = "M2 10h4v11H2zM8 21h9.4a2 2 0 0 0 2-1.7l1.2-7A2 2 0 0 0 18.6 10H14l.9-4.3A1.7 1.7 0 0 0 12 4.4L8 10z";

/** messageId → "positive" | "negative" | null, as last stored. */
const stored = new Map();

function icon(down) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  if (down) svg.setAttribute("class", "down");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", THUMB_PATH);
  svg.appendChild(path);
  return svg;
}

function render(group) {
  const value = stored.has(group.dataset.messageId) ? stored.get(group.dataset.messageId) : null;
  for (const b of group.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.value === value));
}

function renderAll(messageId) {
  for (const g of document.querySelectorAll(`.feedback[data-message-id="${messageId}"]`)) render(g);
}

/**
 * A rating widget. Without `messageId` it is disabled until `attach` gives it one (a live reply is rated
 * once the server says it is stored).
 */
export function feedbackWidget(messageId = null, current = null) {
  const group = document.createElement("div");
  group.className = "feedback";
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", "Rate this answer");
  for (const [value, label, down] of [
    ["positive", "Good answer", false],
    ["negative", "Bad answer", true],
  ]) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = `thumb ${value}`;
    b.value = value;
    b.title = label;
    b.setAttribute("aria-label", label);
    b.setAttribute("aria-pressed", "false");
    b.disabled = true;
    b.appendChild(icon(down));
    b.addEventListener("click", () => rate(group, value));
    group.appendChild(b);
  }
  const status = document.createElement("span");
  status.className = "feedback-status";
  status.setAttribute("aria-live", "polite");
  group.appendChild(status);
  if (messageId !== null) attach(group, messageId, current);
  return group;
}

/** Makes a widget rate `messageId`; `current` is the stored value when known (from /api/history). */
export function attach(group, messageId, current) {
  group.dataset.messageId = String(messageId);
  if (current !== undefined) stored.set(String(messageId), current);
  for (const b of group.querySelectorAll("button")) b.disabled = false;
  render(group);
}

async function rate(group, value) {
  const id = group.dataset.messageId;
  if (!id) return;
  const next = stored.get(id) === value ? null : value; // pressing the lit thumb again clears the rating
  const status = group.querySelector(".feedback-status");
  const buttons = group.querySelectorAll("button");
  for (const b of buttons) b.disabled = true;
  status.textContent = "";
  try {
    stored.set(id, await setFeedback(Number(id), next));
    renderAll(id);
    status.textContent = next === null ? "Rating cleared" : "Thanks!";
  } catch (e) {
    const refusal = explainRefusal(e.code);
    status.textContent = refusal ? `Not saved. ${refusal.message}` : `Not saved: ${e.message}. Try again.`;
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

/** The stored rating of a message as this page knows it (for the page's state). */
export function ratingOf(messageId) {
  return stored.has(String(messageId)) ? stored.get(String(messageId)) : null;
}
