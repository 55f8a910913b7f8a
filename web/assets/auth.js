// This tab's credential, and the user tokens the page sends with every request (see README, "The web client").
//
// Two ways in:
// - development: opened as `/?dev=CREDENTIAL` (the address a parley without PARLEY_AUTH_SECRET prints at
//   start-up), the page exchanges the credential for a token of the user id in use (`POST /api/dev/token`),
//   again before that token expires and whenever the user id changes;
// - embedded: an app backend minted a token for its user and hands it over as `/?token=TOKEN` or through
//   `window.parley.setToken(token)`. The page cannot renew such a token; the app calls setToken again.
// Either is kept in sessionStorage (a reload and /status in the same tab still work; another tab does not
// inherit it) and removed from the address bar, so that it travels in no copied link and no screenshot.
// `state` never holds a secret: it is what window.parley shows.

const DEV_KEY = "parley.dev";
const TOKEN_KEY = "parley.token";
/** A development token is renewed this long before it expires, and after at most a quarter of its life. */
const RENEW_BEFORE_MS = 5 * 60 * 1000;
/** A renewal that failed for a passing reason (network, busy server) is tried again after this. */
const RENEW_RETRY_MS = 10 * 1000;

/**
 * A credential problem: `code` is the server's (`credential_invalid`, …) or the page's (`credential_missing`,
 * `unreachable`); `status` the HTTP status of the refusal (0 when nothing was refused over HTTP).
 */
export class AuthError extends Error {
  constructor(code, message = code, status = 0, retryAfterMs = null) {
    super(message);
    this.code = code;
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

/** `Retry-After` (seconds) of a response, in milliseconds; null when absent or unreadable. */
export function retryAfterMs(res) {
  const s = Number(res.headers.get("retry-after"));
  return Number.isFinite(s) && s >= 0 ? s * 1000 : null;
}

/** The claims of a token, read without checking it (the server does): `{sub, exp}`, or null. */
export function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "=")), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

function stored(key) {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null; // storage blocked: the credential lives as long as the page
  }
}

function store(key, value) {
  try {
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, value);
  } catch {
    // Kept in memory only: a reload will need the address again.
  }
}

export class Credentials {
  /**
   * Takes `?dev=` or `?token=` out of the address (into sessionStorage), else whatever this tab stored.
   * @param {{onProblem?:(e:AuthError)=>void}} hooks onProblem: a background renewal failed for good
   */
  static fromPage(hooks = {}) {
    const url = new URL(location.href);
    const dev = url.searchParams.get("dev");
    const token = url.searchParams.get("token");
    if (url.searchParams.has("dev") || url.searchParams.has("token")) {
      store(DEV_KEY, token ? null : dev);
      store(TOKEN_KEY, token || null);
      url.searchParams.delete("dev");
      url.searchParams.delete("token");
      history.replaceState(history.state, "", url.pathname + url.search + url.hash);
    }
    return new Credentials(token ? null : dev || stored(DEV_KEY), token || stored(TOKEN_KEY), hooks);
  }

  constructor(dev, token, hooks) {
    this.dev = token ? null : dev;
    this.fixed = token || null;
    this.hooks = hooks;
    /** The development token in use: {userId, token, renewAt, expiresAt} (local clock, from its ttl). */
    this.current = null;
    /** userId → the promise of a development token being fetched, so that callers share one request. */
    this.fetching = new Map();
    this.renewTimer = null;
    this.state = { mode: "none", userId: null, obtained: 0, renewAt: null, expiresAt: null, problem: null };
    this.describe();
  }

  describe() {
    const s = this.state;
    s.mode = this.fixed ? "token" : this.dev ? "development" : "none";
    if (this.fixed) {
      const claims = claimsOf(this.fixed);
      s.userId = claims && typeof claims.sub === "string" ? claims.sub : null;
      s.expiresAt = claims && Number.isFinite(claims.exp) ? claims.exp * 1000 : null;
      s.renewAt = null;
    }
  }

  get mode() {
    return this.state.mode;
  }

  /** The user a token from the app names (the page must use that id); null in development mode. */
  get fixedUser() {
    return this.fixed ? this.state.userId : null;
  }

  /** Whether the page can get itself a new token (development mode). */
  get renewable() {
    return this.dev !== null;
  }

  /** A token from the app (`window.parley.setToken`): replaces whatever the tab had. */
  setToken(token) {
    if (typeof token !== "string" || !token.trim()) throw new TypeError("setToken needs the token as a string");
    this.fixed = token.trim();
    this.dev = null;
    this.discard();
    store(TOKEN_KEY, this.fixed);
    store(DEV_KEY, null);
    this.state.problem = null;
    this.describe();
  }

  /** Forgets the development token in use (the server refused it): the next request gets a new one. */
  discard() {
    clearTimeout(this.renewTimer);
    this.current = null;
  }

  /** A token for `userId` to send now; rejects with an AuthError when there is none to be had. */
  async token(userId) {
    if (this.fixed) return this.fixed;
    if (!this.dev) throw new AuthError("credential_missing");
    const c = this.current;
    if (c && c.userId === userId && Date.now() < c.renewAt) return c.token;
    return this.fetchFor(userId);
  }

  fetchFor(userId) {
    if (!this.fetching.has(userId)) {
      const p = this.exchange(userId).finally(() => this.fetching.delete(userId));
      this.fetching.set(userId, p);
    }
    return this.fetching.get(userId);
  }

  /** `POST /api/dev/token`: the development credential for a token of `userId`. */
  async exchange(userId) {
    const dev = this.dev;
    let res;
    try {
      res = await fetch("/api/dev/token", {
        method: "POST",
        cache: "no-store",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ credential: dev, userId }),
      });
    } catch {
      throw new AuthError("unreachable", "the server cannot be reached");
    }
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      const code = res.status === 404 ? "development_off" : (body && body.error) || `http_${res.status}`;
      if ((code === "credential_invalid" || code === "development_off") && this.dev === dev) {
        // It will not work again: forget it, so that a reload says how to open the page.
        this.dev = null;
        store(DEV_KEY, null);
        this.discard();
        this.describe();
      }
      this.state.problem = code;
      throw new AuthError(code, (body && body.message) || `HTTP ${res.status}`, res.status, retryAfterMs(res));
    }
    if (!body || typeof body.token !== "string") throw new AuthError("no_token", "the server's answer had no token", res.status);
    if (this.dev !== dev) return this.token(userId); // setToken came meanwhile
    // The lifetime, not `expiresAt`: this machine's clock may disagree with the server's.
    const ttlMs = Math.max(1, Number(body.ttlSeconds) || 60) * 1000;
    const now = Date.now();
    const renewAt = now + ttlMs - Math.min(RENEW_BEFORE_MS, ttlMs * 0.75);
    this.current = { userId, token: body.token, renewAt, expiresAt: now + ttlMs };
    Object.assign(this.state, { userId, renewAt, expiresAt: now + ttlMs, problem: null });
    this.state.obtained++;
    this.schedule(renewAt - now);
    return body.token;
  }

  /** Renews the token in use in the background, so that it never expires under a request. */
  schedule(delayMs) {
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(async () => {
      const c = this.current;
      if (!c || !this.dev) return;
      try {
        await this.fetchFor(c.userId);
      } catch (e) {
        if (e.code === "unreachable" || e.code === "rate_limited" || e.status >= 500) {
          // The current token still works until it expires; try again shortly.
          if (this.current === c && Date.now() + RENEW_RETRY_MS < c.expiresAt) this.schedule(e.retryAfterMs ?? RENEW_RETRY_MS);
        } else if (this.hooks.onProblem) this.hooks.onProblem(e);
      }
    }, Math.max(0, delayMs));
  }
}
