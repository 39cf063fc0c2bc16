"""Browser fixtures: Debian's Chromium driven by Playwright, and evidence kept when a test fails.

Chromium runs headless with a fresh profile per test module (``--user-data-dir`` in a
temporary directory).  A failed test leaves ``test-output/<test>/screenshot.png`` and
``console.log`` (the page's console messages and uncaught errors) behind.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from tests.conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, Gateway

OUTPUT = ROOT / "test-output"
#: Browser-side waits (ms): generous, the machine is shared.
WAIT_MS = 20_000


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """One headless Chromium per test module, with a fresh profile.

    Module scope (not session): Playwright's sync API owns an event loop while it runs,
    which must be gone before other modules' asyncio tests start.
    """
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


@pytest.fixture
def page(
    chromium: BrowserContext, gateway_factory: Callable[..., Gateway], request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A new tab; its console is recorded in ``page.console_lines`` and saved if the test fails.

    Depends on ``gateway_factory`` so the evidence is taken before the test's gateways are killed.
    """
    tab = chromium.new_page()
    lines: list[str] = []
    tab.on("console", lambda msg: lines.append(f"{msg.type}: {msg.text}"))
    tab.on("pageerror", lambda exc: lines.append(f"pageerror: {exc}"))
    tab.console_lines = lines  # type: ignore[attr-defined]
    yield tab
    reports = [getattr(request.node, f"report_{when}", None) for when in ("setup", "call")]
    if any(report is not None and report.failed for report in reports):
        out = OUTPUT / re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        out.mkdir(parents=True, exist_ok=True)
        try:
            tab.screenshot(path=str(out / "screenshot.png"))
        except Exception as exc:
            lines.append(f"(screenshot failed: {exc})")
        (out / "console.log").write_text("\n".join(lines) + "\n")
    tab.close()


def page_errors(page: Page) -> list[str]:
    return [line for line in page.console_lines if line.startswith(("pageerror", "error"))]  # type: ignore[attr-defined]


def open_monitor(page: Page, gw: Gateway, query: str = "") -> None:
    """Load the monitor page and wait until its client has the gateway's hello."""
    page.goto(f"{gw.url}/{query}")
    page.wait_for_selector('#conn[data-state="open"]', timeout=WAIT_MS)


def wait_js(page: Page, expression: str, what: str) -> Any:
    """Wait (in the browser) until ``expression`` is truthy; fail naming ``what``.

    Passed as a function: Playwright polls a bare expression with ``eval``, which the
    page's Content-Security-Policy (rightly) forbids.
    """
    try:
        return page.wait_for_function(f"() => ({expression})", timeout=WAIT_MS).json_value()
    except Exception as exc:
        raise AssertionError(f"timed out waiting for {what}: {expression}") from exc


def counter(page: Page, domain: str | None = None) -> int:
    selector = "#count-total" if domain is None else f'.counter[data-domain="{domain}"] .n'
    return int(page.inner_text(selector))


def row_seqs(page: Page) -> list[int]:
    """The seqs of the event rows in the list, top (newest) first."""
    seqs: list[int] = page.eval_on_selector_all("#events .event", "rows => rows.map(r => Number(r.dataset.seq))")
    return seqs


def emitter(ingest: str, count: int, rate: float, event_type: str = "load.tick") -> subprocess.Popen[str]:
    """A separate Core-like process emitting ``count`` events at ``rate``/s (payload ``{"i": n}``).

    It keeps emitting while the gateway is down (the SDK re-sends on reconnect), and
    stays up, ready to re-send, until :func:`finish` says the test has seen everything
    (its stdin closes); then it prints its stats.
    """
    code = textwrap.dedent(
        f"""
        import sys, time
        from emitter_sdk import Emitter
        em = Emitter({ingest!r})
        assert em.wait_subscribed(15), "gateway never subscribed"
        start = time.monotonic()
        for i in range({count}):
            em.emit({event_type!r}, entity=("load", "t"), payload={{"i": i}})
            time.sleep(max(0.0, start + (i + 1) / {rate} - time.monotonic()))
        assert em.flush(30)
        sys.stdin.read()  # until the test has every event: a resubscribing gateway still gets the re-send
        print(em.stats)
        em.close()
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60.0) -> str:
    """Release an :func:`emitter` once the test has seen its events; its stats line."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def state_dir(tmp_path: Path) -> str:
    path = tmp_path / "state"
    path.mkdir()
    return str(path)
