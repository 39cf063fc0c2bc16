/**
 * The live monitor page (`GET /`), built on client.js.
 *
 * Page URL parameters: `?types=…&entity=…` preset the filter, `?max=N` sets the row cap
 * (default 1000), `#token=…` passes a token (as the WebSocket subprotocol; the fragment
 * never reaches a server).
 *
 * Bounded for long runs: at most `max` rows stay in the DOM (the oldest are removed), and
 * the queues of rows waiting to be drawn (held while paused, or between two frames) keep
 * only the newest `max`.  Counters count every event, shown or not.  Rows are drawn in
 * batches at most every 40 ms, so a burst costs one DOM update.  The chart (chart.js) keeps
 * one-second counts per domain for the last 60 s and is redrawn once a second.
 *
 * Connection health: resumes (reconnects that resumed from the cursor, client.js
 * `stats.resumes`), gaps this page was told about (by reason), and the round trip of a
 * `ping` sent every `HEALTH_PING_MS` while connected (and on the Ping button).
 */
import { drawRates, RateWindow } from "./chart.js";
import { EventGatewayClient, parseList } from "./client.js";

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);
const fragment = new URLSearchParams(location.hash.slice(1));
const ROW_CAP = Math.min(Math.max(parseInt(query.get("max"), 10) || 1000, 10), 20000);
const DOMAIN_HUES = { task: 210, provider: 275, selfcheck: 160, gateway: 40 };
const SEED_DOMAINS = ["task", "provider", "selfcheck"];
const FLUSH_MS = 40;
const HEALTH_PING_MS = 10000;
// What the gateway accepts (gateway/core/filters.py); anything else would be refused with HTTP 400.
const TYPE_GLOB = /^[a-z0-9_.*?[\]!-]{1,200}$/;
const ENTITY_SELECTOR = /^[^:,]+:[^,]+$/;

const view = {
  paused: false,
  held: [], // rows received while paused
  pending: [], // rows waiting for the next flush
  total: 0,
  gaps: 0,
  gapsByReason: new Map(),
  rtt: null,
  byDomain: new Map(),
  rates: new RateWindow(60),
  rateCount: 0,
  flushTimer: null,
};

// -- counters ---------------------------------------------------------------------------

const domainCounters = new Map(); // domain → its counter's number node

function counterFor(domain) {
  let node = domainCounters.get(domain);
  if (!node) {
    const box = el("div", "counter");
    box.dataset.domain = domain;
    box.style.setProperty("--hue", String(hueOf(domain)));
    node = el("span", "n", "0");
    box.append(node, el("span", "label", domain));
    $("counters").insertBefore(box, $("gaps-box"));
    domainCounters.set(domain, node);
  }
  return node;
}

function renderCounters() {
  $("count-total").textContent = String(view.total);
  for (const [domain, n] of view.byDomain) counterFor(domain).textContent = String(n);
  $("gaps-box").hidden = view.gaps === 0;
  $("count-gaps").textContent = String(view.gaps);
}

function resetCounters() {
  view.total = 0;
  view.gaps = 0;
  view.gapsByReason.clear();
  view.rates.clear();
  for (const domain of view.byDomain.keys()) view.byDomain.set(domain, 0);
  for (const domain of SEED_DOMAINS) view.byDomain.set(domain, 0);
}

// -- rows -------------------------------------------------------------------------------

function hueOf(domain) {
  if (domain in DOMAIN_HUES) return DOMAIN_HUES[domain];
  let h = 0;
  for (const ch of domain) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return h % 360;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function clockTime(ts) {
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return ts;
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

function eventRow(event) {
  const dot = event.type.indexOf(".");
  const domain = event.type.slice(0, dot);
  const action = event.type.slice(dot + 1);
  const li = el("li", `event dom-${domain} act-${action}`);
  li.style.setProperty("--hue", String(hueOf(domain)));
  li.dataset.seq = String(event.seq);
  li.dataset.type = event.type;
  li.dataset.id = event.id;
  const head = el("div", "head");
  head.append(el("span", "type", event.type));
  if (event.entity) head.append(el("span", "entity", `${event.entity.kind}: ${event.entity.id}`));
  if (event.source && event.source !== "core") head.append(el("span", "source", `from ${event.source}`));
  head.append(el("span", "seq", `#${event.seq}`));
  const time = el("time", "", clockTime(event.ts));
  time.dateTime = event.ts;
  time.title = `${event.ts} · id ${event.id}`;
  head.append(time);
  li.append(head);
  const payload = event.payload ?? {};
  if (typeof payload.progress === "number") {
    const bar = el("div", "bar");
    const fill = el("i");
    fill.style.width = `${Math.min(Math.max(payload.progress, 0), 100)}%`;
    bar.append(fill);
    li.append(bar);
  }
  if (Object.keys(payload).length) li.append(payloadBlock(payload));
  return li;
}

/** Pretty, highlighted JSON built as DOM text (never parsed as HTML); one line when it is short. */
function payloadBlock(payload) {
  const pre = el("pre", "payload");
  const inline = JSON.stringify(payload).length <= 90;
  const parts = [];
  const push = (cls, text) => parts.push(cls ? el("span", cls, text) : document.createTextNode(text));
  const walk = (value, depth) => {
    if (value === null || typeof value !== "object") {
      const cls = value === null ? "j-null" : `j-${typeof value === "string" ? "str" : typeof value === "number" ? "num" : "bool"}`;
      push(cls, JSON.stringify(value));
      return;
    }
    const isArray = Array.isArray(value);
    const keys = isArray ? value.map((_, i) => i) : Object.keys(value);
    const [open, close] = isArray ? ["[", "]"] : ["{", "}"];
    if (!keys.length) return push("j-punct", open + close);
    const pad = inline ? " " : "\n" + "  ".repeat(depth + 1);
    push("j-punct", open);
    keys.forEach((key, i) => {
      push("", pad);
      if (!isArray) {
        push("j-key", JSON.stringify(key));
        push("j-punct", ": ");
      }
      walk(value[key], depth + 1);
      if (i < keys.length - 1) push("j-punct", ",");
    });
    push("", inline ? " " : "\n" + "  ".repeat(depth));
    push("j-punct", close);
  };
  walk(payload, 0);
  pre.append(...parts);
  return pre;
}

function describeGap(gap) {
  const range = gap.to >= gap.from ? `seq ${gap.from}–${gap.to}` : null;
  switch (gap.reason) {
    case "evicted":
      return `missed ${range}: they left the gateway's replay ring before this page resumed`;
    case "epoch":
      return range
        ? `gateway restarted with a new epoch: ${range} of the new stream are no longer held`
        : "gateway restarted with a new epoch: resumed from the start of its stream";
    case "slow_client":
      return `missed ${range}: this page fell behind the stream`;
    case "upstream":
      return `${gap.missed} event(s) from producer ${gap.producer} lost before reaching the gateway (before seq ${gap.seq})`;
    default:
      return `gap: ${JSON.stringify(gap)}`;
  }
}

function gapRow(gap) {
  const li = el("li", `gap ${gap.reason}`, `⚠ ${describeGap(gap)}`);
  li.dataset.reason = gap.reason;
  return li;
}

function enqueue(item) {
  const queue = view.paused ? view.held : view.pending;
  queue.push(item);
  if (queue.length > ROW_CAP) queue.splice(0, queue.length - ROW_CAP);
  scheduleFlush();
}

function scheduleFlush() {
  if (view.flushTimer === null) view.flushTimer = setTimeout(flush, FLUSH_MS);
}

function flush() {
  view.flushTimer = null;
  renderCounters();
  $("seq").textContent = client.cursor.seq ?? "–";
  const items = view.pending.splice(0);
  const list = $("events");
  if (items.length) {
    const fragment = document.createDocumentFragment();
    const animate = items.length <= 20;
    for (let i = items.length - 1; i >= 0; i--) {
      const item = items[i];
      const row = item.gap ? gapRow(item.gap) : eventRow(item.event);
      if (animate) row.classList.add("fresh");
      fragment.append(row);
    }
    list.prepend(fragment);
    while (list.childElementCount > ROW_CAP) list.lastElementChild.remove();
  }
  $("empty").hidden = list.childElementCount > 0;
  const rows = list.childElementCount;
  const held = view.held.length;
  $("shown").textContent =
    `${rows} row${rows === 1 ? "" : "s"} shown (cap ${ROW_CAP})` + (view.paused ? ` · ${held} held` : "");
  $("pause").textContent = view.paused ? `Resume (${held} new)` : "Pause";
}

// -- the client -------------------------------------------------------------------------

function onEvent(event) {
  view.total += 1;
  view.rateCount += 1;
  const domain = event.type.slice(0, event.type.indexOf("."));
  view.byDomain.set(domain, (view.byDomain.get(domain) ?? 0) + 1);
  view.rates.add(domain, Date.now());
  enqueue({ event });
}

function onGap(gap) {
  view.gaps += 1;
  view.gapsByReason.set(gap.reason, (view.gapsByReason.get(gap.reason) ?? 0) + 1);
  renderHealth();
  $("notice-text").textContent = `⚠ ${describeGap(gap)}` + (view.gaps > 1 ? ` (${view.gaps} gaps so far)` : "");
  $("notice").hidden = false;
  enqueue({ gap });
}

/** How the page names the cause of a reconnect (client.js `closeCause`). */
const CLOSE_CAUSES = {
  full: "gateway full (over capacity)",
  down: "gateway unreachable",
  restarting: "gateway restarting",
  slow: "fell behind the stream",
  refused: "refused by policy",
};

function onState(state, detail) {
  const { hello, ...rest } = detail;
  console.info(`event-gateway: ${state}`, JSON.stringify(hello ?? rest));
  const conn = $("conn");
  conn.dataset.state = state;
  let text = state;
  if (state === "open") text = "connected";
  else if (state === "connecting") text = detail.attempt ? `connecting… (attempt ${detail.attempt + 1})` : "connecting…";
  else if (state === "reconnecting") {
    const why = CLOSE_CAUSES[detail.cause] ?? "connection lost";
    text = `${why} · reconnecting in ${(detail.delay / 1000).toFixed(1)} s`;
  } else if (state === "closed") text = "disconnected";
  conn.dataset.cause = state === "reconnecting" ? (detail.cause ?? "") : "";
  $("conn-text").textContent = text;
  if (hello) $("epoch").textContent = hello.epoch;
  if (state === "open") {
    // (never during the constructor's "connecting": `client` is not assigned yet)
    renderHealth();
    measureRtt();
  }
  $("connect").textContent = state === "closed" ? "Connect" : "Disconnect";
}

const client = new EventGatewayClient("ws/events", {
  types: query.get("types"),
  entity: query.get("entity"),
  token: fragment.get("token"),
  onEvent,
  onGap,
  onState,
});

// -- controls ---------------------------------------------------------------------------

function clearView() {
  view.pending = [];
  view.held = [];
  resetCounters();
  $("events").replaceChildren();
  $("notice").hidden = true;
  scheduleFlush();
}

function showFilter() {
  const parts = [];
  if (client.types.length) parts.push(`types=${client.types.join(",")}`);
  if (client.entity.length) parts.push(`entity=${client.entity.join(",")}`);
  $("filter-active").textContent = parts.length ? `filter: ${parts.join(" ")}` : "all events";
  $("filter-types").value = client.types.join(",");
  $("filter-entity").value = client.entity.join(",");
}

$("filter").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const types = parseList($("filter-types").value);
  const entity = parseList($("filter-entity").value);
  const bad = types.find((t) => !TYPE_GLOB.test(t)) ?? entity.find((e) => !ENTITY_SELECTOR.test(e));
  if (bad !== undefined) {
    $("notice-text").textContent = `filter not applied: ${JSON.stringify(bad)} is not a type glob (task.*) or kind:id`;
    $("notice").hidden = false;
    return;
  }
  const url = new URL(location.href);
  for (const [key, value] of [["types", types], ["entity", entity]]) {
    if (value.length) url.searchParams.set(key, value.join(","));
    else url.searchParams.delete(key);
  }
  history.replaceState(null, "", url);
  clearView();
  client.setFilter({ types, entity });
  showFilter();
});

$("pause").addEventListener("click", () => {
  view.paused = !view.paused;
  $("pause").setAttribute("aria-pressed", String(view.paused));
  if (!view.paused) {
    view.pending.push(...view.held.splice(0));
    if (view.pending.length > ROW_CAP) view.pending.splice(0, view.pending.length - ROW_CAP);
  }
  scheduleFlush();
});

$("clear").addEventListener("click", clearView);

// -- chart and health -------------------------------------------------------------------

function formatMs(ms) {
  return `${ms < 10 ? ms.toFixed(2) : Math.round(ms)} ms`;
}

/** One ping; its round trip is shown in the header and the health panel. */
function measureRtt() {
  $("rtt").textContent = "…";
  return client.ping().then(
    (ms) => {
      view.rtt = ms;
      $("rtt").textContent = formatMs(ms);
      renderHealth();
    },
    (err) => ($("rtt").textContent = `failed: ${err.message}`),
  );
}

function renderHealth() {
  $("health-resumes").textContent = String(client.stats.resumes);
  const reasons = [...view.gapsByReason].map(([reason, n]) => `${n} ${reason}`).join(", ");
  $("health-gaps").textContent = view.gaps ? `${view.gaps} (${reasons})` : "0";
  $("health-gaps").dataset.count = String(view.gaps);
  $("health-rtt").textContent = view.rtt === null ? "–" : formatMs(view.rtt);
  if (view.rtt !== null) $("health-rtt").dataset.ms = String(view.rtt);
}

function drawChart() {
  drawRates($("rate-chart"), view.rates.series(Date.now()), (domain) => `hsl(${hueOf(domain)} 70% 58%)`);
}

$("ping").addEventListener("click", measureRtt);

setInterval(() => client.state === "open" && measureRtt(), HEALTH_PING_MS);

$("connect").addEventListener("click", () => (client.state === "closed" ? client.connect() : client.close()));

$("notice-close").addEventListener("click", () => ($("notice").hidden = true));

setInterval(() => {
  $("rate").textContent = `${view.rateCount}/s`;
  view.rateCount = 0;
  drawChart();
}, 1000);

resetCounters();
showFilter();
flush();
drawChart();
renderHealth();
globalThis.monitor = { client, view, drawChart, hueOf };
