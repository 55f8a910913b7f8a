// The status page (/status): the server's live figures from `GET /api/metrics`, refreshed every 5 seconds,
// sent with a token of this tab's credential (auth.js: the main page kept it in sessionStorage, so /status
// opened from it in the same tab works). Without one, or with a refused one, it says what to do instead.
// `window.parleyStatus` is the page's state, for tests and the console.

import { Credentials } from "./auth.js";
import { explainRefusal } from "./errors.js";

const EVERY_MS = 5000;
/**
 * The user a development token is asked for: any will do (the figures are the server's, no one's data), and
 * a name of its own keeps the status page from touching the conversations of the id on the main page.
 */
const STATUS_USER = "status-page";

const FIELDS = [
  ["active_connections", "Live sessions", (v) => v],
  ["total_connections", "Sessions since start", (v) => v],
  ["cpu_usage_percent", "Process CPU", (v) => v.toFixed(1) + " %"],
  ["system_cpu_usage_percent", "Machine CPU", (v) => v.toFixed(1) + " %"],
  ["process_memory_bytes", "Resident memory", bytes],
  ["allocated_memory_bytes", "Heap allocated", bytes],
  ["system_memory_usage_percent", "Machine memory used", (v) => v.toFixed(1) + " %"],
  ["threads", "Threads", (v) => v],
  ["uptime_seconds", "Uptime", duration],
];

function bytes(v) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return v.toFixed(i ? 1 : 0) + " " + units[i];
}

function duration(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + (s % 60) + "s";
}

const status = { state: "loading", code: null, updates: 0 };
window.parleyStatus = status;

const auth = Credentials.fromPage();
const cards = document.getElementById("cards");
const line = document.getElementById("state");
for (const [key, label] of FIELDS) {
  const card = document.createElement("div");
  card.className = "card";
  const name = document.createElement("div");
  name.className = "label";
  name.textContent = label;
  const value = document.createElement("div");
  value.className = "value";
  value.dataset.key = key;
  value.textContent = "–";
  card.append(name, value);
  cards.appendChild(card);
}

/** Fetches the figures; a development token the server no longer takes is replaced once. */
async function figures(renewed = false) {
  const token = await auth.token(STATUS_USER);
  const res = await fetch("/api/metrics", { cache: "no-store", headers: { authorization: `Bearer ${token}` } });
  const body = await res.json().catch(() => null);
  if (res.status === 401 && auth.renewable && !renewed) {
    auth.discard();
    return figures(true);
  }
  if (!res.ok) throw Object.assign(new Error((body && body.message) || `HTTP ${res.status}`), { code: body && body.error });
  return body;
}

let timer = null;
async function refresh() {
  try {
    const m = await figures();
    for (const [key, , fmt] of FIELDS) document.querySelector(`[data-key="${key}"]`).textContent = fmt(m[key]);
    line.textContent = "updated " + new Date(m.last_collection_time).toLocaleTimeString();
    line.className = "";
    Object.assign(status, { state: "ok", code: null, updates: status.updates + 1 });
  } catch (e) {
    const refusal = explainRefusal(e.code);
    line.className = "down";
    if (refusal) {
      line.textContent = `${refusal.message} ${refusal.advice}`;
      Object.assign(status, { state: "refused", code: e.code });
      // Nothing changes by itself, except a rate limit.
      if (e.code !== "rate_limited") clearInterval(timer);
    } else {
      line.textContent = `server unreachable (${e.message}); retrying`;
      Object.assign(status, { state: "down", code: e.code || null });
    }
  }
}

refresh();
timer = setInterval(refresh, EVERY_MS);
