"""The runnable recipes of README.md and docs/ run as written, so a recipe that stops working fails CI.

A fenced ``sh`` or ``python`` block is a recipe when the line before it is a marker::

    <!-- doc-test -->
    <!-- doc-test: group=jwt -->
    <!-- doc-test: group=jwt gateway="--auth jwt --jwt-key-file jwt-hs256.key" -->

Blocks of one ``group`` (per file) run in document order in one temporary directory
(the current directory of every block); a block without a group runs alone.
``gateway="ARGS"`` starts a ``gatewayd ARGS`` on free loopback ports before the block and
stops it after; the block finds it where operators' tools look by default:
``EVENT_GATEWAY_URL`` and ``EVENT_GATEWAY_INGEST`` (``gatewayctl``, the SDK).
``file=NAME`` saves the block as ``NAME`` instead of running it (a script the reader saves).
``sub="OLD=>NEW"`` replaces text in that block for the test only (say, a ``chown`` to
a user this machine does not have); the marker shows every such difference to readers.
Every block runs with this checkout's venv first on ``PATH`` (``python``, ``gatewayd``,
``gatewayctl``), the installed paths mapped into the temporary directory
(``/opt/event-gateway/venv/bin/`` → the venv, ``/etc/event-gateway/`` → ``./etc/event-gateway/``),
``sh -eu`` for shell, and in its own session that is killed when the block ends.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import BIN, ROOT, Gateway

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"^<!-- doc-test(?::(.*))? -->$")
FENCE = re.compile(r"^```(sh|python)\s*$")


@dataclass
class Block:
    path: Path
    line: int
    lang: str
    code: str
    options: dict[str, list[str]]


@dataclass
class Recipe:
    name: str
    blocks: list[Block] = field(default_factory=list)


def recipes() -> list[Recipe]:
    found: dict[str, Recipe] = {}
    for path in DOCS:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines[:-1]):
            marker = MARKER.match(line.strip())
            fence = FENCE.match(lines[i + 1].strip())
            if not marker:
                continue
            assert fence, f"{path.name}:{i + 1}: a doc-test marker must be right above a ```sh or ```python fence"
            end = next(j for j in range(i + 2, len(lines)) if lines[j].strip().startswith("```"))
            options: dict[str, list[str]] = {}
            for word in shlex.split(marker[1] or ""):
                key, _, value = word.partition("=")
                options.setdefault(key, []).append(value)
            code = textwrap.dedent("\n".join(lines[i + 2 : end])) + "\n"  # blocks inside list items are indented
            block = Block(path, i + 2, fence[1], code, options)
            name = f"{path.name}:{options.get('group', [str(block.line)])[0]}"
            found.setdefault(name, Recipe(name)).blocks.append(block)
    return list(found.values())


RECIPES = recipes()


def test_the_docs_have_recipes() -> None:
    assert len(RECIPES) >= 5, [r.name for r in RECIPES]


def installed_paths(text: str, tmp_path: Path) -> str:
    text = text.replace("/opt/event-gateway/venv/bin/", f"{BIN}/")
    return text.replace("/etc/event-gateway/", f"{tmp_path}/etc/event-gateway/")


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.name for r in RECIPES])
def test_recipe_runs_as_written(recipe: Recipe, gateway_factory, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENT_GATEWAY_")}
    env["PATH"] = f"{BIN}:{env['PATH']}"
    (tmp_path / "etc" / "event-gateway").mkdir(parents=True)  # what install.sh creates
    for block in recipe.blocks:
        code = block.code
        for sub in block.options.get("sub", []):
            old, new = sub.split("=>", 1)
            assert old in code, f"{block.path.name}:{block.line}: sub {old!r} not in the block"
            code = code.replace(old, new)
        code = installed_paths(code, tmp_path)
        if "file" in block.options:  # a file the reader saves, used by later blocks
            (tmp_path / block.options["file"][0]).write_text(code)
            continue
        gw: Gateway | None = None
        block_env = dict(env)
        if "gateway" in block.options:
            args = shlex.split(installed_paths(block.options["gateway"][0], tmp_path))
            gw = gateway_factory(*args, start=False, env={"PATH": env["PATH"]})
            gw.proc = subprocess.Popen(
                gw.command(), stdout=gw.log_path.open("ab"), stderr=subprocess.STDOUT, env=gw.env, cwd=tmp_path
            )
            gw.wait_healthy()
            block_env.update(EVENT_GATEWAY_URL=gw.url, EVENT_GATEWAY_INGEST=gw.ingest)
        command = ["sh", "-eu", "-c", code] if block.lang == "sh" else [str(BIN / "python"), "-c", code]
        proc = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=block_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            output, _ = proc.communicate(timeout=60)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # whatever the block left running
            except ProcessLookupError:
                pass
            proc.wait()
        where = f"{block.path.relative_to(ROOT)}:{block.line}"
        logs = gw.logs()[-1500:] if gw is not None else ""
        assert proc.returncode == 0, f"{where} exited {proc.returncode}:\n{output}\n{logs}"
        if gw is not None:
            assert gw.stop() == 0, logs
