"""event-gateway: carries live events from Core processes to browsers.

Floors, each importing only the ones below it (checked by ``import-linter``
contracts in ``pyproject.toml``, run by ``make lint``)::

    process   config (a leaf), daemon (the one wiring place), notify, logs, main
    http      app, subscription, ws, sse, status/metrics, page and static files
    ports     ZeroMQ ingest + CURVE, the state log   | policy  auth, origins, limits
    engine    the stream (validate → sequence → persist → ring → fan-out), the hub
    core      pure values: entries, ring, sequencer, resume, filters, protocol, tools

``ctl`` (``gatewayctl``) stands beside them and talks to a gateway over HTTP/ZeroMQ.
"""

__version__ = "0.1.0"
