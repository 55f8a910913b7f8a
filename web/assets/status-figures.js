// The voice figures of the status page, read from parley's Prometheus exposition (`GET /metrics`): a small
// parser of the text format and the quantile of a histogram the way Prometheus's `histogram_quantile`
// computes it (linear within the bucket the rank falls in), so the page and a Grafana panel agree. Pure
// functions: no DOM, no network.

/**
 * Parses the text exposition format into `name → [{labels, value}]` (comments and malformed lines skipped).
 * @param {string} text
 * @returns {Map<string, {labels: Record<string,string>, value: number}[]>}
 */
export function parseMetrics(text) {
  const out = new Map();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    const value = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    if (Number.isNaN(value) && m[3] !== "NaN") continue;
    if (!out.has(m[1])) out.set(m[1], []);
    out.get(m[1]).push({ labels, value });
  }
  return out;
}

/** The sum of a family's samples whose labels include `match` (0 when there are none). */
export function total(metrics, name, match = {}) {
  let sum = 0;
  for (const s of metrics.get(name) || []) {
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}

/** A family's samples summed by one label: `{value of label → sum}`. */
export function byLabel(metrics, name, label) {
  const out = {};
  for (const s of metrics.get(name) || []) {
    const key = s.labels[label] ?? "";
    out[key] = (out[key] || 0) + s.value;
  }
  return out;
}

/**
 * The `q` quantile (0–1) of histogram `name` (its `_bucket` samples), in the histogram's unit, or null with
 * no observations. Like Prometheus: a rank in the +Inf bucket answers the highest finite bound.
 */
export function quantile(metrics, name, q) {
  const buckets = (metrics.get(`${name}_bucket`) || [])
    .map((s) => ({ le: s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), count: s.value }))
    .filter((b) => !Number.isNaN(b.le))
    .sort((a, b) => a.le - b.le);
  if (!buckets.length) return null;
  const count = buckets[buckets.length - 1].count;
  if (!(count > 0)) return null;
  const rank = q * count;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lowerBound;
      const inBucket = b.count - lowerCount;
      return inBucket > 0 ? lowerBound + ((b.le - lowerBound) * (rank - lowerCount)) / inBucket : b.le;
    }
    lowerBound = b.le;
    lowerCount = b.count;
  }
  return lowerBound;
}

/** Observations of histogram `name` (its `_count`). */
export function observations(metrics, name) {
  return total(metrics, `${name}_count`);
}
