"""PNG charts of a ``make bench`` run, written next to its JSON.

``<run>-deliveries.png`` (deliveries/s) and ``<run>-p99.png`` (p99 latency, ms): bars per
fan-out scenario (N clients × rate): the reference run (``bench/results/reference.json``),
this run, and Nchan where it ran beside it (each the median of its repetitions), on a log
scale so the max-rate and fixed-rate scenarios share an axis.  Drawn on a ``<canvas>`` in
Debian's Chromium (the browser the test suite already uses, driven by playwright) and
screenshotted: no plotting library.

    python -m bench.charts bench/results/<run>.json [--reference FILE] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "bench" / "results" / "reference.json"

#: (JSON field, chart file suffix, title, unit)
METRICS = (
    ("deliveries_ps", "deliveries", "deliveries/s by scenario (higher is better)", "/s"),
    ("p99_ms", "p99", "p99 latency, emit() → client, ms (lower is better)", " ms"),
)

PAGE = """<!doctype html><meta charset="utf-8"><body style="margin:0;background:#0d1117">
<canvas id="c" width="860" height="420"></canvas><script>
const spec = %s;
const c = document.getElementById("c"), ctx = c.getContext("2d");
const W = c.width, H = c.height, pad = {l: 70, r: 20, t: 56, b: 70};
const vals = spec.groups.flatMap(g => g.bars.map(b => b.value)).filter(v => v > 0);
const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...vals))));
const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...vals)) + 0.05));
const y = v => pad.t + (H - pad.t - pad.b) * (1 - (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)));
const fmt = v => v >= 1e6 ? (v / 1e6).toFixed(2) + "M" : v >= 1e3 ? (v / 1e3).toFixed(v >= 1e5 ? 0 : 1) + "k"
  : v >= 10 ? v.toFixed(1) : v.toFixed(2);
ctx.fillStyle = "#0d1117"; ctx.fillRect(0, 0, W, H);
ctx.font = "600 16px DejaVu Sans, sans-serif"; ctx.fillStyle = "#d6dde6"; ctx.fillText(spec.title, pad.l, 26);
ctx.font = "12px DejaVu Sans, sans-serif"; ctx.fillStyle = "#8a96a3"; ctx.fillText(spec.subtitle, pad.l, 44);
ctx.textAlign = "right"; ctx.textBaseline = "middle";
for (let d = lo; d <= hi * 1.0001; d *= 10) {
  ctx.strokeStyle = "#27313d"; ctx.beginPath(); ctx.moveTo(pad.l, Math.round(y(d)) + .5);
  ctx.lineTo(W - pad.r, Math.round(y(d)) + .5); ctx.stroke();
  ctx.fillStyle = "#8a96a3"; ctx.fillText(fmt(d) + spec.unit, pad.l - 8, y(d));
}
const most = Math.max(...spec.groups.map(g => g.bars.length));
const gw = (W - pad.l - pad.r) / spec.groups.length, bw = Math.min(56, (gw - 24) / most - 6);
ctx.textAlign = "center";
spec.groups.forEach((g, i) => {
  const cx = pad.l + gw * (i + .5);
  g.bars.forEach((b, j) => {
    const x = cx + (j - g.bars.length / 2) * (bw + 6) + 3;
    if (!(b.value > 0)) return;
    ctx.fillStyle = b.color; ctx.fillRect(x, y(b.value), bw, H - pad.b - y(b.value));
    ctx.fillStyle = "#d6dde6"; ctx.textBaseline = "bottom"; ctx.fillText(fmt(b.value), x + bw / 2, y(b.value) - 3);
  });
  ctx.fillStyle = "#d6dde6"; ctx.textBaseline = "top";
  g.label.split(" (").forEach((line, k) => ctx.fillText(k ? "(" + line : line, cx, H - pad.b + 8 + 15 * k));
});
ctx.textAlign = "left"; ctx.textBaseline = "middle"; let lx = W - pad.r - 120 * spec.legend.length - 60;
for (const [name, color] of spec.legend) {
  ctx.fillStyle = color; ctx.fillRect(lx, H - 20, 12, 12); ctx.fillStyle = "#d6dde6";
  ctx.fillText(name, lx + 18, H - 14); lx += ctx.measureText(name).width + 40;
}
</script>"""

THIS_RUN, REF_RUN, PEER = "#4fb3ff", "#5b6573", "#f0a040"


def label(n: int, rate: float, reps: int) -> str:
    return f"N={n} · {'max' if not rate else f'{rate:g} ev/s'}" + (f" (median of {reps})" if reps > 1 else "")


def medians(run: dict[str, Any], field: str) -> dict[tuple[int, float], dict[str, tuple[float, int]]]:
    """(N, rate) → system → (median of ``field`` over its reps, reps), scenarios in run order.

    Runs before side-by-side systems existed have no ``system``: they are the gateway."""
    values: dict[tuple[int, float], dict[str, list[float]]] = {}
    for scenario in run.get("fanout", []):
        key = (scenario["n"], scenario["rate"])
        values.setdefault(key, {}).setdefault(scenario.get("system", "gateway"), []).append(scenario[field])
    return {
        key: {system: (sorted(v)[len(v) // 2], len(v)) for system, v in systems.items()}
        for key, systems in values.items()
    }


def chart_spec(run: dict[str, Any], reference: dict[str, Any], field: str, title: str, unit: str) -> dict[str, Any]:
    """What one chart shows: per scenario of ``run``, the reference run's gateway, this run's
    gateway and, where it ran beside it, Nchan (each the median of its reps)."""
    ref = medians(reference, field)
    groups = []
    peers = False
    for (n, rate), systems in medians(run, field).items():
        value, reps = systems.get("gateway", (0.0, 0))
        bars = [
            {"value": ref.get((n, rate), {}).get("gateway", (0.0, 0))[0], "color": REF_RUN},
            {"value": value, "color": THIS_RUN},
        ]
        if "nchan" in systems:
            peers = True
            bars.append({"value": systems["nchan"][0], "color": PEER})
        groups.append({"label": label(n, rate, reps), "bars": bars})
    noise = max((s.get("other_cpu_pct", 0.0) for s in run.get("fanout", [])), default=0.0)
    legend = [[f"reference {reference.get('time', '?')[:10]}", REF_RUN], ["this run", THIS_RUN]]
    return {
        "title": title,
        "subtitle": f"this run {run.get('time', '?')} · reference {reference.get('time', '?')} · log scale"
        f" · other processes' CPU up to {noise:.0f} %",
        "unit": unit,
        "groups": groups,
        "legend": legend + ([["Nchan, same run", PEER]] if peers else []),
    }


def write_charts(run: dict[str, Any], reference: dict[str, Any], stem: Path) -> list[Path]:
    """Render ``<stem>-deliveries.png`` and ``<stem>-p99.png``; returns the paths ([] without fan-out results)."""
    if not run.get("fanout"):
        return []
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    written = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            for field, suffix, title, unit in METRICS:
                page = browser.new_page(viewport={"width": 860, "height": 420})
                page.set_content(PAGE % json.dumps(chart_spec(run, reference, field, title, unit)))
                path = stem.with_name(f"{stem.name}-{suffix}.png")
                page.locator("#c").screenshot(path=str(path))
                page.close()
                written.append(path)
        finally:
            browser.close()
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a bench/results/<run>.json")
    ap.add_argument("--reference", type=Path, default=REFERENCE)
    ap.add_argument("--out-dir", type=Path, default=None, help="default: next to the run's JSON")
    a = ap.parse_args()
    stem = (a.out_dir or a.run.parent) / a.run.stem
    for path in write_charts(json.loads(a.run.read_text()), json.loads(a.reference.read_text()), stem):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
