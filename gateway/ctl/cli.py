"""``gatewayctl``: ask a running gateway how it is, watch and publish events.

Exit codes: ``status`` 0 healthy, 1 degraded, 2 unreachable (with ``--watch``:
those of the last refresh); ``check`` 0/1; others 0 on success, 1 on failure.
Every command takes ``--url``; those that publish take ``--ingest``.  One module
per command: ``status``, ``tail``, ``publish`` (``emit``, ``demo``), ``check``.
"""

from __future__ import annotations

import click

from gateway import __version__
from gateway.ctl.check import check
from gateway.ctl.publish import demo, emit
from gateway.ctl.status import status
from gateway.ctl.tail import tail


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gatewayctl")
def main() -> None:
    """Operate and probe an event-gateway.

    Every command takes --url, the gateway's HTTP address (default
    $EVENT_GATEWAY_URL, else http://127.0.0.1:8765); those that publish (emit,
    check, demo) also --ingest (default $EVENT_GATEWAY_INGEST, else
    tcp://127.0.0.1:5556).  status, tail and check take --token (default
    $EVENT_GATEWAY_TOKEN) for a gateway with --auth token|jwt.
    """


for command in (status, tail, emit, demo, check):
    main.add_command(command)
