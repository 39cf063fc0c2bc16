"""The monitor page's live chart and connection health, in real Chromium against a real gateway.

After events of two domains flow, the chart's canvas holds pixels of each domain's
colour inside the plot; the health panel counts exactly the upstream gap and the resume
the test caused, and shows the round trip of the ping it asked for.  The suite leaves
``test-output/monitor-chart.png`` behind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page

from tests.browser.conftest import OUTPUT, emitter, finish, open_monitor, state_dir, wait_js
from tests.conftest import Gateway
from tests.rawingest import RawProducer

#: Counts the pixels of ``domain``'s chart colour below the legend (canvas pixels, any device ratio).
PLOT_PIXELS = """
(domain) => {
  const canvas = document.getElementById("rate-chart");
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = `hsl(${monitor.hueOf(domain)} 70% 58%)`;
  const hex = ctx.fillStyle;  // the browser's own #rrggbb for that colour
  const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const top = Math.ceil(20 * (window.devicePixelRatio || 1));
  const { data } = ctx.getImageData(0, top, canvas.width, canvas.height - top);
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 200 && want.every((v, k) => Math.abs(data[i + k] - v) <= 3)) n += 1;
  }
  return n;
}
"""


def plot_pixels(page: Page, domain: str) -> int:
    pixels: int = page.evaluate(PLOT_PIXELS, domain)
    return pixels


def test_chart_draws_each_domain_and_health_counts_what_the_test_caused(
    page: Page, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = gateway_factory("--state-dir", state_dir(tmp_path))
    open_monitor(page, gw)
    assert plot_pixels(page, "load") == 0 and plot_pixels(page, "task") == 0  # nothing drawn before events
    assert page.inner_text("#health-resumes") == "0" and page.inner_text("#health-gaps") == "0"
    load = emitter(gw.ingest, 120, rate=40, event_type="load.tick")
    try:
        # An upstream gap the test makes: producer "chart" sends pseq 1, then 3.
        raw = RawProducer(gw.ingest, producer="chart")
        try:
            raw.send(1)
            raw.send(3)
        finally:
            raw.close()
        wait_js(page, "document.getElementById('count-total').textContent === '122'", "every event counted")
        finish(load)
    finally:
        load.kill()
    page.evaluate("monitor.drawChart()")  # the completed seconds so far, without waiting for the 1 s tick
    wait_js(page, "(monitor.drawChart(), true) && monitor.view.rates.series(Date.now()).domains.length === 2", "both")
    assert plot_pixels(page, "load") > 100, "the load.* area is drawn"
    assert plot_pixels(page, "task") > 0, "the task.* area is drawn"
    assert page.get_attribute("#health-gaps", "data-count") == "1"
    assert page.inner_text("#health-gaps") == "1 (1 upstream)"
    # A resume the test causes: the gateway restarts (same epoch, --state-dir) and the page resumes.
    assert gw.stop() == 0
    gw.start()
    wait_js(page, "document.getElementById('health-resumes').textContent === '1'", "one resume")
    wait_js(page, "document.getElementById('conn').dataset.state === 'open'", "reconnected")
    assert page.evaluate("monitor.client.stats.resumes") == 1
    # The round trip of a ping the test asks for.
    page.evaluate("monitor.view.rtt = null")
    page.click("#ping")
    wait_js(page, "document.getElementById('health-rtt').dataset.ms !== undefined && monitor.view.rtt !== null", "rtt")
    rtt = float(page.get_attribute("#health-rtt", "data-ms") or "nan")
    assert 0 < rtt < 5000 and page.inner_text("#health-rtt").endswith(" ms")
    assert page.get_attribute("#health-gaps", "data-count") == "1", "the restart cost no gap"
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "monitor-chart.png"))
