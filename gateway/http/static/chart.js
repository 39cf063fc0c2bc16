/**
 * Events per second by domain, drawn on a canvas: the monitor page's live chart.
 * Dependency-free (no CDN, no build step), like client.js.
 *
 * - `RateWindow` (pure: time passed in) counts events into one-second buckets per domain
 *   and keeps only the last `seconds` of them, so memory is bounded by
 *   `seconds × domains seen in that window`.
 * - `drawRates(canvas, series, colorOf)` draws the completed seconds as stacked areas,
 *   one colour per domain, with a scale that fits the highest second, and a legend.
 */

/** Per-second event counts by domain over a sliding window. */
export class RateWindow {
  constructor(seconds = 60) {
    this.seconds = seconds;
    /** second (integer, ms / 1000) → Map(domain → count) */
    this.buckets = new Map();
  }

  /** Count `n` events of `domain` at `nowMs`; drops buckets that left the window. */
  add(domain, nowMs, n = 1) {
    const second = Math.floor(nowMs / 1000);
    let bucket = this.buckets.get(second);
    if (!bucket) {
      bucket = new Map();
      this.buckets.set(second, bucket);
      this._trim(second);
    }
    bucket.set(domain, (bucket.get(domain) ?? 0) + n);
  }

  /**
   * The completed seconds before `nowMs`, oldest first: `{ domains, rates }` where
   * `rates[domain]` has one count per second of the window (0 where none came).
   */
  series(nowMs) {
    const last = Math.floor(nowMs / 1000) - 1; // the current second is still filling
    this._trim(last + 1);
    const first = last - this.seconds + 1;
    const domains = [];
    for (const bucket of this.buckets.values()) {
      for (const domain of bucket.keys()) if (!domains.includes(domain)) domains.push(domain);
    }
    domains.sort();
    const rates = {};
    for (const domain of domains) {
      rates[domain] = Array.from({ length: this.seconds }, (_, i) => this.buckets.get(first + i)?.get(domain) ?? 0);
    }
    return { domains, rates, seconds: this.seconds };
  }

  clear() {
    this.buckets.clear();
  }

  _trim(currentSecond) {
    for (const second of this.buckets.keys()) {
      if (second <= currentSecond - this.seconds - 1) this.buckets.delete(second);
    }
  }
}

/** The smallest of 1, 2, 5 × 10^k that is ≥ `value` (a readable top of the scale). */
export function niceCeiling(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/** Draw `series` (from `RateWindow.series`) on `canvas`; `colorOf(domain)` gives a CSS colour. */
export function drawRates(canvas, series, colorOf) {
  const ratio = globalThis.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const pad = { left: 44, right: 8, top: 18, bottom: 16 };
  const plotW = Math.max(1, width - pad.left - pad.right);
  const plotH = Math.max(1, height - pad.top - pad.bottom);
  const n = series.seconds;
  const totals = Array.from({ length: n }, (_, i) => series.domains.reduce((sum, d) => sum + series.rates[d][i], 0));
  const top = niceCeiling(Math.max(...totals, 0));
  const x = (i) => pad.left + (plotW * i) / Math.max(1, n - 1);
  const y = (v) => pad.top + plotH - (plotH * v) / top;

  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = ctx.strokeStyle = "rgba(140, 150, 170, 0.9)";
  ctx.lineWidth = 1;
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  for (const v of [0, top / 2, top]) {
    ctx.globalAlpha = v === 0 ? 0.8 : 0.3;
    ctx.beginPath();
    ctx.moveTo(pad.left, Math.round(y(v)) + 0.5);
    ctx.lineTo(pad.left + plotW, Math.round(y(v)) + 0.5);
    ctx.stroke();
    ctx.globalAlpha = 1;
    ctx.fillText(`${v}/s`, pad.left - 6, y(v));
  }
  ctx.textBaseline = "alphabetic";
  ctx.textAlign = "left";
  ctx.fillText(`−${n} s`, pad.left, height - 3);
  ctx.textAlign = "right";
  ctx.fillText("now", pad.left + plotW, height - 3);

  // Stacked areas, first domain at the bottom.
  const base = new Array(n).fill(0);
  for (const domain of series.domains) {
    const values = series.rates[domain];
    const upper = base.map((b, i) => b + values[i]);
    ctx.beginPath();
    ctx.moveTo(x(0), y(upper[0]));
    for (let i = 1; i < n; i++) ctx.lineTo(x(i), y(upper[i]));
    for (let i = n - 1; i >= 0; i--) ctx.lineTo(x(i), y(base[i]));
    ctx.closePath();
    ctx.fillStyle = colorOf(domain);
    ctx.fill();
    for (let i = 0; i < n; i++) base[i] = upper[i];
  }

  // Legend, top right: a swatch and the domain's last completed second.
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  let right = pad.left + plotW;
  for (const domain of [...series.domains].reverse()) {
    const label = `${domain} ${series.rates[domain][n - 1]}/s`;
    ctx.fillStyle = "rgba(200, 205, 215, 0.95)";
    ctx.fillText(label, right, 8);
    right -= ctx.measureText(label).width + 14;
    ctx.fillStyle = colorOf(domain);
    ctx.fillRect(right + 2, 4, 9, 9);
    right -= 8;
  }
}
