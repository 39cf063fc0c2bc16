"""The soak's PNG: RSS (MiB), open fds and the worst loop lag (ms) per minute, three panels.

Drawn on a ``<canvas>`` in Debian's Chromium and screenshotted, as ``bench/charts.py``
does (the browser the tests already use; no plotting library).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

PAGE = """<!doctype html><meta charset="utf-8"><body style="margin:0;background:#0d1117">
<canvas id="c" width="900" height="600"></canvas><script>
const spec = %s;
const c = document.getElementById("c"), ctx = c.getContext("2d");
ctx.fillStyle = "#0d1117"; ctx.fillRect(0, 0, c.width, c.height);
ctx.fillStyle = "#e6edf3"; ctx.font = "16px sans-serif"; ctx.fillText(spec.title, 20, 26);
const panels = [["rss_mib", "RSS, MiB", "#58a6ff"], ["fds", "open fds", "#3fb950"],
                ["loop_lag_max_ms", "loop lag max, ms", "#f0883e"]];
const xs = spec.samples.map(s => s.minute), n = xs.length;
panels.forEach(([key, label, colour], i) => {
  const top = 44 + i * 185, h = 150, left = 70, w = 800;
  const vs = spec.samples.map(s => s[key]);
  const lo = Math.min(0, ...vs), hi = Math.max(...vs) * 1.1 || 1;
  const x = m => left + (n > 1 ? (m - xs[0]) / (xs[n - 1] - xs[0]) : 0.5) * w;
  const y = v => top + h - (v - lo) / (hi - lo) * h;
  ctx.strokeStyle = "#30363d"; ctx.strokeRect(left, top, w, h);
  ctx.fillStyle = "#8b949e"; ctx.font = "12px sans-serif";
  ctx.fillText(label, left + 6, top + 14);
  ctx.fillText(hi.toFixed(1), 8, top + 10); ctx.fillText(lo.toFixed(1), 8, top + h);
  xs.forEach(m => ctx.fillText(String(m), x(m) - 4, top + h + 14));
  ctx.strokeStyle = colour; ctx.lineWidth = 2; ctx.beginPath();
  vs.forEach((v, j) => j ? ctx.lineTo(x(xs[j]), y(v)) : ctx.moveTo(x(xs[j]), y(v))); ctx.stroke();
  ctx.fillStyle = colour; vs.forEach((v, j) => { ctx.beginPath(); ctx.arc(x(xs[j]), y(v), 3, 0, 7); ctx.fill(); });
});
ctx.fillStyle = "#8b949e"; ctx.fillText("minute", 440, 596);
</script>"""


def write_chart(samples: list[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Render ``path``; None when there is nothing to draw or no Chromium."""
    if not samples:
        return None
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 900, "height": 600})
            page.set_content(PAGE % json.dumps({"title": f"{title}: per minute", "samples": samples}))
            page.locator("#c").screenshot(path=str(path))
        finally:
            browser.close()
    return path
