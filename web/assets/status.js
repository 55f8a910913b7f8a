// The status page (/status): the voice figures an operator looks at first (sessions, per-stage latency
// percentiles and voice-to-voice, provider errors, recordings waiting, the database) from parley's own
// Prometheus exposition (`GET /metrics`, parsed by status-figures.js) and `GET /readyz`, and the machine's
// figures from `GET /api/metrics`, refreshed every 5 seconds. `/api/metrics` is sent with a token of this
// tab's credential (auth.js: the main page kept it in sessionStorage, so /status opened from it in the same
// tab works); without one, or with a refused one, the page says what to do and asks nothing else.
// `window.parleyStatus` is the page's state, for tests and the console.

import { Credentials } from "./auth.js";
import { explainRefusal } from "./errors.js";
import { byLabel, observations, parseMetrics, quantile, total } from "./status-figures.js";

const EVERY_MS = 5000;
/**
 * The user a development token is asked for: any will do (the figures are the server's, no one's data), and
 * a name of its own keeps the status page from touching the conversations of the id on the main page.
 */
const STATUS_USER = "status-page";

const MACHINE = [
  ["cpu_usage_percent", "Process CPU", (v) => v.toFixed(1) + " %"],
  ["system_cpu_usage_percent", "Machine CPU", (v) => v.toFixed(1) + " %"],
  ["process_memory_bytes", "Resident memory", bytes],
  ["allocated_memory_bytes", "Heap allocated", bytes],
  ["system_memory_usage_percent", "Machine memory used", (v) => v.toFixed(1) + " %"],
  ["threads", "Threads", (v) => v],
  ["uptime_seconds", "Uptime", duration],
];

/** The latency histograms, in the order a turn goes through them. */
const STAGES = [
  ["stt", "parley_stt_finalization_seconds", "Speech recognition"],
  ["llm", "parley_llm_first_token_seconds", "LLM first token"],
  ["tts", "parley_tts_first_byte_seconds", "TTS first audio"],
  ["firstAudio", "parley_first_audio_seconds", "First audio sent"],
  ["voiceToVoice", "parley_voice_to_voice_seconds", "Voice-to-voice"],
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

const ms = (seconds) => (seconds === null ? "—" : `${Math.round(seconds * 1000)} ms`);

/** Details such as "completed 3 · failed 1", leaving out zeros. */
function parts(counts) {
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k.replaceAll("_", " ")} ${n}`)
    .join(" · ");
}

const status = { state: "loading", code: null, updates: 0, voice: null };
window.parleyStatus = status;

const auth = Credentials.fromPage();
const line = document.getElementById("state");

/** Fills a `<dl>` with rows `[key, label, value, detail?, tone?]`; each value carries `data-key`. */
function rows(id, list) {
  const dl = document.getElementById(id);
  dl.replaceChildren();
  for (const [key, label, value, detail, tone] of list) {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.dataset.key = key;
    dd.textContent = String(value);
    if (tone) dd.className = tone;
    if (detail) {
      const d = document.createElement("span");
      d.className = "detail";
      d.textContent = detail;
      dd.appendChild(d);
    }
    dl.append(dt, dd);
  }
}

/** Fetches the machine's figures; a development token the server no longer takes is replaced once. */
async function machineFigures(renewed = false) {
  const token = await auth.token(STATUS_USER);
  const res = await fetch("/api/metrics", { cache: "no-store", headers: { authorization: `Bearer ${token}` } });
  const body = await res.json().catch(() => null);
  if (res.status === 401 && auth.renewable && !renewed) {
    auth.discard();
    return machineFigures(true);
  }
  if (!res.ok) throw Object.assign(new Error((body && body.message) || `HTTP ${res.status}`), { code: body && body.error });
  return body;
}

/** The voice figures, from /metrics and /readyz. */
async function voiceFigures() {
  const [metrics, ready] = await Promise.all([
    fetch("/metrics", { cache: "no-store" }).then((r) => {
      if (!r.ok) throw new Error(`/metrics answered HTTP ${r.status}`);
      return r.text();
    }),
    fetch("/readyz", { cache: "no-store" }).then((r) => r.ok, () => false),
  ]);
  const m = parseMetrics(metrics);
  const latency = {};
  for (const [key, name] of STAGES) {
    latency[key] = {
      p50: quantile(m, name, 0.5),
      p95: quantile(m, name, 0.95),
      p99: quantile(m, name, 0.99),
      count: observations(m, name),
    };
  }
  const providers = {};
  for (const p of Object.keys({ ...byLabel(m, "parley_provider_reconnects_total", "provider"), ...byLabel(m, "parley_provider_errors_total", "provider") })) {
    const kinds = {};
    for (const s of m.get("parley_provider_errors_total") || []) {
      if (s.labels.provider === p) kinds[s.labels.kind] = (kinds[s.labels.kind] || 0) + s.value;
    }
    providers[p] = {
      errors: total(m, "parley_provider_errors_total", { provider: p }),
      kinds,
      reconnects: total(m, "parley_provider_reconnects_total", { provider: p }),
    };
  }
  return {
    live: total(m, "parley_connections_active"),
    sessionsTotal: total(m, "parley_connections_total"),
    turns: total(m, "parley_turns_total"),
    turnsByOutcome: byLabel(m, "parley_turns_total", "outcome"),
    interruptions: total(m, "parley_interruptions_total"),
    fallbacks: total(m, "parley_llm_fallbacks_total"),
    latency,
    providers,
    recordings: {
      pending: total(m, "parley_recordings_pending"),
      uploaded: total(m, "parley_recording_uploads_total", { outcome: "uploaded" }),
      failedAttempts: total(m, "parley_recording_uploads_total", { outcome: "failed" }),
      lost: total(m, "parley_recordings_lost_total"),
    },
    database: {
      ready,
      pool: byLabel(m, "parley_db_pool_connections", "state"),
      pendingWrites: total(m, "parley_persist_pending_writes"),
      journalWrites: total(m, "parley_journal_pending_writes"),
      writesLost: total(m, "parley_persist_writes_lost_total"),
    },
  };
}

function showVoice(v) {
  rows("sessions", [
    ["sessions.live", "Live now", v.live],
    ["sessions.total", "Since start", v.sessionsTotal],
    ["sessions.turns", "Turns", v.turns, parts(v.turnsByOutcome)],
    ["sessions.interruptions", "Interruptions", v.interruptions],
    ["sessions.fallbacks", "LLM fallbacks", v.fallbacks],
  ]);
  const body = document.getElementById("latency");
  body.replaceChildren();
  for (const [key, , label] of STAGES) {
    const l = v.latency[key];
    const tr = document.createElement("tr");
    tr.dataset.stage = key;
    const th = document.createElement("td");
    th.textContent = label;
    tr.appendChild(th);
    for (const cell of [ms(l.p50), ms(l.p95), ms(l.p99), String(l.count)]) {
      const td = document.createElement("td");
      td.textContent = cell;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  const providers = Object.entries(v.providers).map(([p, f]) => {
    const detail = [parts(f.kinds), f.reconnects ? `reconnects ${f.reconnects}` : ""].filter(Boolean).join(" · ");
    return [`providers.${p}`, p, f.errors, detail, f.errors ? "bad" : ""];
  });
  rows("providers", providers.length ? providers : [["providers.none", "No provider figures", "—"]]);
  const r = v.recordings;
  rows("recordings", [
    ["recordings.pending", "Waiting to be stored", r.pending, "", r.pending ? "" : "ok"],
    ["recordings.uploaded", "Stored", r.uploaded],
    ["recordings.failed", "Failed attempts", r.failedAttempts, "", r.failedAttempts ? "bad" : ""],
    ["recordings.lost", "Lost", r.lost, "", r.lost ? "bad" : ""],
  ]);
  const d = v.database;
  const pool = d.pool;
  rows("database", [
    ["database.ready", "State", d.ready ? "reachable" : "unreachable", "", d.ready ? "ok" : "bad"],
    ["database.pool", "Connections", `${pool.open ?? 0} of ${pool.max ?? "?"}`, `idle ${pool.idle ?? 0} · waiting ${pool.waiting ?? 0}`],
    ["database.pending", "Writes queued", d.pendingWrites],
    ["database.journal", "Writes in the journal", d.journalWrites, "", d.journalWrites ? "bad" : ""],
    ["database.lost", "Writes lost", d.writesLost, "", d.writesLost ? "bad" : ""],
  ]);
}

let timer = null;
async function refresh() {
  let machine;
  try {
    machine = await machineFigures();
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
    return;
  }
  rows(
    "machine",
    MACHINE.map(([key, label, fmt]) => [key, label, typeof machine[key] === "number" ? fmt(machine[key]) : "—"]),
  );
  try {
    status.voice = await voiceFigures();
    showVoice(status.voice);
  } catch (e) {
    line.className = "down";
    line.textContent = `voice figures unavailable (${e.message}); retrying`;
    Object.assign(status, { state: "down", code: null });
    return;
  }
  line.textContent = "updated " + new Date(machine.last_collection_time).toLocaleTimeString();
  line.className = "";
  Object.assign(status, { state: "ok", code: null, updates: status.updates + 1 });
}

refresh();
timer = setInterval(refresh, EVERY_MS);
