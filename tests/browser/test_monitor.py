"""The live monitor page (``GET /``) in real Chromium against a real gateway.

What a user sees: ``gatewayctl demo``'s events newest first with the right counters,
the filter box narrowing the stream, pause holding the list while counting, the row
cap, gap notices when the page resumes older than the ring, and — the point of the
client — a page that rides out a gateway kill and restart (``--state-dir``) with every
seq exactly once.  The suite leaves ``test-output/monitor.png`` behind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page

from tests.browser.conftest import (
    OUTPUT,
    counter,
    emitter,
    finish,
    open_monitor,
    page_errors,
    row_seqs,
    state_dir,
    wait_js,
)
from tests.conftest import Gateway, run_cli

DEMO_TOTAL = 11  # task.started, 5 × task.progress, task.completed, provider READY, 3 × selfcheck


def demo(gw: Gateway) -> None:
    result = run_cli("gatewayctl", "demo", "--url", gw.url, "--ingest", gw.ingest, "--delay", "0.01")
    assert result.returncode == 0, result.stderr


def wait_total(page: Page, total: int) -> None:
    wait_js(page, f"document.getElementById('count-total').textContent === '{total}'", f"total counter = {total}")


def wait_rows(page: Page, rows: int) -> None:
    wait_js(page, f"document.querySelectorAll('#events .event').length === {rows}", f"{rows} event rows")


def wait_resubscribed(page: Page, query: str) -> None:
    expression = (
        f"monitor.client.state === 'open' && decodeURIComponent(monitor.client.currentUrl()).includes('{query}')"
    )
    wait_js(page, expression, f"the page resubscribed with {query}")


def test_demo_events_newest_first_with_counters_and_screenshot(page: Page, gateway: Gateway) -> None:
    open_monitor(page, gateway)
    demo(gateway)
    wait_total(page, DEMO_TOTAL)
    wait_rows(page, DEMO_TOTAL)
    assert (counter(page, "task"), counter(page, "provider"), counter(page, "selfcheck")) == (7, 1, 3)
    assert row_seqs(page) == list(range(DEMO_TOTAL, 0, -1))
    top = page.locator("#events .event").first
    assert top.get_attribute("data-type") == "selfcheck.completed"
    assert top.locator(".entity").inner_text() == "selfcheck: demo"
    provider = page.locator('#events .event[data-type="provider.status_changed"]')
    assert provider.locator(".entity").inner_text() == "provider: ollama"
    assert '"state": "READY"' in provider.locator(".payload").inner_text()
    assert "act-completed" in (page.locator('#events .event[data-type="task.completed"]').get_attribute("class") or "")
    page.click("#ping")
    wait_js(page, "/^[0-9.]+ ms$/.test(document.getElementById('rtt').textContent)", "ping RTT")
    assert page.inner_text("#conn-text") == "connected"
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "monitor.png"), animations="disabled")
    assert (OUTPUT / "monitor.png").stat().st_size > 10_000
    assert page_errors(page) == []


def test_filter_box_narrows_the_stream(page: Page, gateway: Gateway) -> None:
    open_monitor(page, gateway)
    demo(gateway)
    wait_total(page, DEMO_TOTAL)

    page.fill("#filter-types", "task.*")
    page.click("#filter-apply")
    wait_js(page, "document.querySelectorAll('#events .event').length === 0", "the list cleared for the new filter")
    wait_resubscribed(page, "types=task.*")
    received_before = page.evaluate("monitor.client.stats.events")
    demo(gateway)
    wait_total(page, 7)
    wait_rows(page, 7)
    assert {t for t in page.eval_on_selector_all("#events .event", "rs => rs.map(r => r.dataset.type)")} == {
        "task.started",
        "task.progress",
        "task.completed",
    }
    assert (counter(page, "provider"), counter(page, "selfcheck")) == (0, 0)
    # the gateway filtered: the client was sent the 7 task events, not all 11
    assert page.evaluate("monitor.client.stats.events") - received_before == 7
    assert page.inner_text("#filter-active") == "filter: types=task.*"
    assert "types=task.*" in page.url  # a reload keeps the filter

    page.fill("#filter-types", "")
    page.fill("#filter-entity", "provider:*")
    page.press("#filter-entity", "Enter")
    wait_resubscribed(page, "entity=provider:*")
    demo(gateway)
    wait_total(page, 1)
    wait_rows(page, 1)
    assert page.locator("#events .event").first.get_attribute("data-type") == "provider.status_changed"

    page.fill("#filter-types", "Not A Glob")  # the gateway would refuse it: not applied, said so
    page.click("#filter-apply")
    wait_js(page, "!document.getElementById('notice').hidden", "the refusal notice")
    assert "filter not applied" in page.inner_text("#notice-text")
    assert page.evaluate("monitor.client.state") == "open"
    assert page.inner_text("#filter-active") == "filter: entity=provider:*"


def test_pause_holds_the_list_while_counting_then_clear(page: Page, gateway: Gateway) -> None:
    open_monitor(page, gateway)
    demo(gateway)
    wait_rows(page, DEMO_TOTAL)
    page.click("#pause")
    demo(gateway)
    wait_total(page, 2 * DEMO_TOTAL)
    wait_js(page, "document.getElementById('pause').textContent === 'Resume (11 new)'", "held count on the button")
    assert row_seqs(page) == list(range(DEMO_TOTAL, 0, -1))  # the list did not move
    assert counter(page, "task") == 14
    page.click("#pause")
    wait_rows(page, 2 * DEMO_TOTAL)
    assert row_seqs(page) == list(range(2 * DEMO_TOTAL, 0, -1))
    page.click("#clear")
    wait_total(page, 0)
    assert row_seqs(page) == []
    assert counter(page, "task") == 0


def test_row_cap_bounds_the_dom_not_the_counters(page: Page, gateway: Gateway) -> None:
    open_monitor(page, gateway, "?max=10")
    demo(gateway)
    wait_total(page, DEMO_TOTAL)
    wait_rows(page, 10)
    assert row_seqs(page) == list(range(DEMO_TOTAL, 1, -1))  # the oldest row went


def test_gap_notice_when_the_page_resumes_older_than_the_ring(
    page: Page, gateway_factory: Callable[..., Gateway]
) -> None:
    gw = gateway_factory("--ring-size", "5")
    open_monitor(page, gw)
    demo(gw)
    wait_rows(page, DEMO_TOTAL)
    assert page.is_hidden("#notice")
    page.click("#connect")  # Disconnect
    wait_js(page, "document.getElementById('conn').dataset.state === 'closed'", "disconnected")
    demo(gw)  # seqs 12..22; the ring keeps 18..22
    page.click("#connect")  # Connect: resumes with since=11
    wait_js(page, "!document.getElementById('notice').hidden", "the gap notice")
    assert "missed seq 12–17" in page.inner_text("#notice-text")
    wait_rows(page, DEMO_TOTAL + 5)
    assert page.locator("#events .gap").count() == 1
    assert page.inner_text("#count-gaps") == "1"
    assert row_seqs(page)[:5] == [22, 21, 20, 19, 18]
    # the gap row sits between what came before and after it
    kinds = page.eval_on_selector_all(
        "#events > li", "rs => rs.map(r => r.classList.contains('gap') ? 'gap' : 'event')"
    )
    assert kinds.index("gap") == 5


def test_page_rides_out_gateway_kill_and_restart_with_every_seq_once(
    page: Page, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    count = 300
    gw = gateway_factory("--state-dir", state_dir(tmp_path))
    open_monitor(page, gw)
    proc = emitter(gw.ingest, count, rate=60)
    try:
        wait_js(page, "document.querySelectorAll('#events .event').length >= 60", "events flowing")
        gw.kill9()
        wait_js(page, "document.getElementById('conn').dataset.state !== 'open'", "the page noticing")
        gw.start()
        wait_js(page, "document.getElementById('conn').dataset.state === 'open'", "the page reconnected by itself")
        wait_total(page, count)
        finish(proc)
    finally:
        proc.kill()
    seqs = row_seqs(page)
    assert sorted(seqs) == list(range(1, count + 1)), "every seq exactly once"
    payloads = page.eval_on_selector_all("#events .event .payload", "ps => ps.map(p => JSON.parse(p.textContent).i)")
    assert sorted(payloads) == list(range(count))
    assert page.locator("#events .gap").count() == 0
    assert page.is_hidden("#notice")
    assert page.evaluate("monitor.client.stats.connects") >= 2


def test_token_from_the_page_fragment_travels_as_subprotocol_and_scopes_the_stream(
    page: Page, gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    token = "monitor-token-0123456789abcdef"
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{token} task.*\n")
    gw = gateway_factory("--auth", "token", "--tokens-file", str(tokens))
    open_monitor(page, gw, f"#token={token}")
    assert token not in page.evaluate("monitor.client.currentUrl()")
    demo(gw)
    wait_total(page, 7)  # the token may see task.* only
    wait_rows(page, 7)
    assert token not in gw.logs()
