/**
 * event-gateway browser client — `GET /client.js`, dependency-free, no build step.
 *
 *   import { EventGatewayClient } from "/client.js";      // ES module
 *   // or, after <script type="module" src="/client.js">: globalThis.EventGatewayClient
 *   const client = new EventGatewayClient("/ws/events", {   // or a list of nodes' URLs
 *     types: "task.*", entity: "task:abc", token: "…",
 *     onEvent: (event) => …, onGap: (gap) => …, onState: (state, detail) => …,
 *   });
 *   const rttMs = await client.ping();
 *
 * Guarantees (the gateway's SPEC, seen from the browser):
 * - Reconnects by itself with exponential backoff and jitter (`backoffDelay`).
 * - Given several URLs (the nodes of a cluster, which share `seq` and `epoch`), each
 *   reconnect goes to the next one (`failoverUrl`): a node that dies is left for the next
 *   at once, and the backoff grows only once every node has been tried.
 * - Resumes with `since`/`epoch`: the cursor is the last seq accounted for (an event
 *   delivered, or the end of a gap), so a reconnect loses nothing the ring still holds.
 * - Never hands the app the same event twice: de-duplicated by `seq` within an epoch and
 *   by `id` (bounded memory of recent ids) across epochs and re-sends.
 * - Whatever it could not recover is reported through `onGap` (`gateway.gap`).
 * - The token travels as the `bearer.<token>` subprotocol, never in the URL.
 *
 * The pure parts (`backoffDelay`, `failoverUrl`, `ResumeCursor`, `buildUrl`, `parseList`) take values and
 * return values, so they are unit-tested without sockets.
 */

/** Backoff defaults: first retry after ≤ 0.5 s, doubling, capped at 30 s, up to half of it random. */
export const DEFAULT_BACKOFF = Object.freeze({ initial: 500, max: 30000, factor: 2, jitter: 0.5 });

/**
 * Delay in ms before reconnect attempt `attempt` (0 = first retry): the exponential
 * ceiling `min(max, initial · factor^attempt)` reduced by a random share of at most
 * `jitter`, so a restarted gateway is not hit by every browser at the same instant.
 * Always within `[ceiling · (1 − jitter), ceiling]`.
 */
export function backoffDelay(attempt, options = {}, random = Math.random) {
  const { initial, max, factor, jitter } = { ...DEFAULT_BACKOFF, ...options };
  const exponent = Math.min(Math.max(0, attempt | 0), 64);
  const ceiling = Math.min(max, initial * Math.pow(factor, exponent));
  return Math.round(ceiling * (1 - jitter * random()));
}

/**
 * Which of `urls` reconnect attempt `attempt` (0 = first retry) uses after a connection
 * to `urls[current]`, and its backoff step: the next node in turn, the backoff step
 * counting whole rounds over the nodes (every node is tried before waiting longer).
 */
export function failoverUrl(urls, current, attempt) {
  const n = Math.max(1, urls.length);
  return { index: (current + 1) % n, step: Math.floor(Math.max(0, attempt) / n) };
}

/** `"a, b,,c"` or `["a", "b"]` → `["a", "b", "c"]`; null/empty → `[]`. */
export function parseList(value) {
  if (value == null) return [];
  const parts = Array.isArray(value) ? value : String(value).split(",");
  return parts.map((part) => String(part).trim()).filter(Boolean);
}

/**
 * The WebSocket URL for `base` (absolute, or relative to `pageUrl`; http(s) becomes
 * ws(s)) with the query `params` set; null/empty values are left out, lists joined by ",".
 */
export function buildUrl(base, params = {}, pageUrl = globalThis.location?.href) {
  const url = new URL(base, pageUrl);
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  for (const [key, value] of Object.entries(params)) {
    const text = Array.isArray(value) ? value.join(",") : value == null ? "" : String(value);
    if (text === "") url.searchParams.delete(key);
    else url.searchParams.set(key, text);
  }
  return url.toString();
}

/**
 * Where to resume and what was already seen.  Pure: feed it every message the gateway
 * sends, in order, with `accept()`; it answers what the message is for the app:
 *
 * - `"event"`: a new event (the cursor advanced to its seq);
 * - `"duplicate"`: already seen (seq ≤ cursor in this epoch, or an id seen before);
 * - `"gap"`: a `gateway.gap` (the cursor moves to its `to`; reason `epoch` resets it);
 * - `"hello"`, `"pong"`, `"control"`: protocol messages.
 *
 * `resumeParams()` gives the `since`/`epoch` query for the next connection.  Memory is
 * bounded: at most `idMemory` recent ids are remembered.
 */
export class ResumeCursor {
  constructor({ since = null, epoch = null, idMemory = 4096 } = {}) {
    /** Last seq accounted for in `epoch` (null: start live at the head). */
    this.seq = since;
    this.epoch = epoch;
    this.idMemory = idMemory;
    this._ids = new Set();
  }

  resumeParams() {
    if (this.seq === null) return {};
    return this.epoch === null ? { since: this.seq } : { since: this.seq, epoch: this.epoch };
  }

  accept(msg) {
    if (msg === null || typeof msg !== "object") return "control";
    switch (msg.type) {
      case "gateway.hello":
        if (this.epoch !== null && msg.epoch !== this.epoch) {
          // The old epoch's seqs mean nothing here: the gateway replays its whole ring
          // (after an epoch gap ending just before the oldest seq it holds).
          this.seq = (msg.oldest ?? msg.seq + 1) - 1;
        } else if (this.seq === null || msg.seq < this.seq) {
          // Live from the head when starting fresh; a head behind the cursor in the same epoch
          // means the gateway lost its tail, so its next seqs are new events (ids still dedupe).
          this.seq = msg.seq;
        }
        this.epoch = msg.epoch;
        return "hello";
      case "gateway.gap":
        if (typeof msg.to === "number") {
          if (msg.reason === "epoch" || this.seq === null) this.seq = msg.to;
          else this.seq = Math.max(this.seq, msg.to);
        }
        return "gap";
      case "pong":
        return "pong";
      default:
        break;
    }
    if (typeof msg.seq !== "number" || typeof msg.type !== "string" || msg.type.startsWith("gateway.")) {
      return "control";
    }
    if (this.seq !== null && msg.seq <= this.seq) return "duplicate";
    if (typeof msg.id === "string") {
      if (this._ids.has(msg.id)) {
        this.seq = msg.seq; // accounted for, just not new
        return "duplicate";
      }
      this._remember(msg.id);
    }
    this.seq = msg.seq;
    return "event";
  }

  _remember(id) {
    this._ids.add(id);
    if (this._ids.size > this.idMemory) {
      this._ids.delete(this._ids.values().next().value); // Sets iterate in insertion order
    }
  }
}

/**
 * Why a connection ended, from its close code and reason (pure), so an app can tell a
 * gateway that is full from one that is down:
 * - `"full"`: over capacity (1013 with a reason starting `over capacity`, sent right after
 *   the upgrade and before any hello): the gateway is up, retry later;
 * - `"slow"`: closed 1013 for falling behind; the reconnect resumes from the ring;
 * - `"restarting"`: 1001, the gateway is shutting down;
 * - `"refused"`: 1008, policy (credential expired or revoked, abusive client);
 * - `"down"`: no close frame (1006: gateway down or unreachable, the connection lost,
 *   or an HTTP refusal of the upgrade, whose status a browser never shows) or no pong;
 * - `"closed"`: any other close.
 */
export function closeCause(code, reason = "") {
  if (code === 1013) return String(reason).startsWith("over capacity") ? "full" : "slow";
  if (code === 1001 || code === 1012) return "restarting"; // 1012: a cluster's stream was re-created
  if (code === 1008) return "refused";
  if (code === 1006 || code === 4000) return "down";
  return "closed";
}

const SILENCE_PROBE_MS = 30000; // ping after this long without any message …
const PING_TIMEOUT_MS = 10000; //  … and reconnect if no pong comes back in time

/**
 * A WebSocket subscription that survives gateway restarts and network trouble.
 *
 * States reported through `onState(state, detail)`: `"connecting"`, `"open"` (hello
 * received), `"reconnecting"` (`detail.delay` ms until the next attempt), `"closed"`
 * (after `close()`).  `detail` also carries `attempt`, `epoch`, `seq`, and for the
 * close that caused a reconnect `code`, `reason` and `cause` (`closeCause`: `"full"`
 * when the gateway is over capacity, `"down"` when it cannot be reached, …).
 *
 * `url`: one WebSocket URL, or several (an array or "a,b"): the nodes of a cluster.
 * Options: `types`, `entity` (string "a,b" or array), `token`, `since`/`epoch` (start
 * point), `onEvent`, `onGap`, `onState`, `onError` (a `gateway.error` message),
 * `backoff` (see `DEFAULT_BACKOFF`), `autoConnect` (default true), `WebSocket` (an
 * implementation, for non-browser use).
 */
export class EventGatewayClient {
  constructor(url = "/ws/events", options = {}) {
    this.urls = parseList(url);
    if (this.urls.length === 0) this.urls = ["/ws/events"];
    this.urlIndex = 0;
    this.options = options;
    this.types = parseList(options.types);
    this.entity = parseList(options.entity);
    this.token = options.token || null;
    this.cursor = new ResumeCursor({ since: options.since ?? null, epoch: options.epoch ?? null });
    this.state = "idle";
    this.attempt = 0;
    /** `resumes`: connections opened with a resume point (`since`) that got their hello. */
    this.stats = { events: 0, duplicates: 0, gaps: 0, connects: 0, resumes: 0 };
    this._resuming = false;
    this._ws = null;
    this._retryTimer = null;
    this._probeTimer = null;
    this._lastMessageAt = 0;
    this._pings = [];
    if (options.autoConnect !== false) this.connect();
  }

  /** The node the next connection goes to (one of the URLs given). */
  get url() {
    return this.urls[this.urlIndex];
  }

  /** The URL the next connection uses (filter plus resume point). */
  currentUrl() {
    return buildUrl(this.url, { types: this.types, entity: this.entity, ...this.cursor.resumeParams() });
  }

  /** Connect now (cancelling a pending retry); resumes from the cursor. */
  connect() {
    this._clearRetry();
    this._drop();
    const Impl = this.options.WebSocket ?? globalThis.WebSocket;
    const protocols = this.token ? [`bearer.${this.token}`] : [];
    let ws;
    try {
      ws = new Impl(this.currentUrl(), protocols);
    } catch (err) {
      this._scheduleReconnect({ reason: String(err), cause: "down" });
      return;
    }
    this._ws = ws;
    this._resuming = this.cursor.seq !== null;
    this._setState("connecting");
    ws.onmessage = (ev) => ws === this._ws && this._onMessage(ev.data);
    ws.onclose = (ev) => ws === this._ws && this._onClose(ev.code, ev.reason);
    ws.onerror = () => {}; // always followed by close, handled there
  }

  /** Stop for good: no reconnect until `connect()` is called again. */
  close() {
    this._clearRetry();
    this._drop();
    this._setState("closed");
  }

  /**
   * Change the filter and reconnect with it.  By default the new filter starts live at
   * the head (events the old filter excluded are not replayed); with `{ resume: true }`
   * it replays what the ring holds after the cursor that matches the new filter.
   */
  setFilter({ types = this.types, entity = this.entity } = {}, { resume = false } = {}) {
    this.types = parseList(types);
    this.entity = parseList(entity);
    if (!resume) this.cursor.seq = null;
    this.connect();
  }

  /** Round trip of `{"type":"ping"}` → `pong`, in ms; rejects when not connected or no pong in time. */
  ping(timeoutMs = PING_TIMEOUT_MS) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return Promise.reject(new Error("not connected"));
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject, started: now(), timer: null };
      entry.timer = setTimeout(() => {
        this._pings = this._pings.filter((p) => p !== entry);
        reject(new Error("no pong"));
      }, timeoutMs);
      this._pings.push(entry);
      ws.send(JSON.stringify({ type: "ping" }));
    });
  }

  _onMessage(data) {
    this._lastMessageAt = now();
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    const kind = this.cursor.accept(msg);
    if (kind === "event") {
      this.stats.events += 1;
      this.options.onEvent?.(msg);
    } else if (kind === "duplicate") {
      this.stats.duplicates += 1;
    } else if (kind === "gap") {
      this.stats.gaps += 1;
      this.options.onGap?.(msg);
    } else if (kind === "hello") {
      this.attempt = 0;
      this.stats.connects += 1;
      if (this._resuming) this.stats.resumes += 1;
      this._setState("open", { hello: msg });
      this._startProbe();
    } else if (kind === "pong") {
      const entry = this._pings.shift();
      if (entry) {
        clearTimeout(entry.timer);
        entry.resolve(now() - entry.started);
      }
    } else if (msg?.type === "gateway.error") {
      this.options.onError?.(msg);
    }
  }

  _onClose(code, reason) {
    this._drop();
    this._scheduleReconnect({ code, reason, cause: closeCause(code, reason) });
  }

  _scheduleReconnect(detail) {
    const { index, step } = failoverUrl(this.urls, this.urlIndex, this.attempt);
    this.urlIndex = index;
    const delay = backoffDelay(step, this.options.backoff);
    this.attempt += 1;
    this._setState("reconnecting", { ...detail, delay });
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this.connect();
    }, delay);
  }

  /** Forget the current socket (its late callbacks are ignored) and fail pending pings. */
  _drop() {
    const ws = this._ws;
    this._ws = null;
    clearInterval(this._probeTimer);
    this._probeTimer = null;
    for (const entry of this._pings.splice(0)) {
      clearTimeout(entry.timer);
      entry.reject(new Error("connection closed"));
    }
    if (ws && ws.readyState <= 1) {
      try {
        ws.close(1000);
      } catch {
        /* already closing */
      }
    }
  }

  /** A silent connection may be dead (no TCP reset seen): probe it, reconnect if it does not answer. */
  _startProbe() {
    clearInterval(this._probeTimer);
    this._probeTimer = setInterval(() => {
      if (now() - this._lastMessageAt < SILENCE_PROBE_MS) return;
      const ws = this._ws;
      this.ping().catch(() => ws === this._ws && this._onClose(4000, "no pong"));
    }, SILENCE_PROBE_MS / 2);
  }

  _clearRetry() {
    if (this._retryTimer !== null) clearTimeout(this._retryTimer);
    this._retryTimer = null;
  }

  _setState(state, detail = {}) {
    this.state = state;
    this.options.onState?.(state, {
      attempt: this.attempt,
      epoch: this.cursor.epoch,
      seq: this.cursor.seq,
      ...detail,
    });
  }
}

function now() {
  return globalThis.performance?.now?.() ?? Date.now();
}

globalThis.EventGatewayClient = EventGatewayClient;
globalThis.EventGateway = {
  EventGatewayClient,
  ResumeCursor,
  backoffDelay,
  failoverUrl,
  buildUrl,
  closeCause,
  parseList,
  DEFAULT_BACKOFF,
};
