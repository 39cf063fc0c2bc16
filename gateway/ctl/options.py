"""The options every ``gatewayctl`` command shares (flag, then environment, then default)."""

from __future__ import annotations

import os

import click

DEFAULT_URL = "http://127.0.0.1:8765"
DEFAULT_INGEST = "tcp://127.0.0.1:5556"

url_option = click.option(
    "--url",
    default=lambda: os.environ.get("EVENT_GATEWAY_URL", DEFAULT_URL),
    help=f"the gateway's HTTP address (default: $EVENT_GATEWAY_URL, else {DEFAULT_URL})",
)
token_option = click.option(
    "--token",
    default=lambda: os.environ.get("EVENT_GATEWAY_TOKEN"),
    help="credential for a gateway with --auth token|jwt, sent as a Bearer header (default: $EVENT_GATEWAY_TOKEN)",
)
ingest_option = click.option(
    "--ingest",
    default=lambda: os.environ.get("EVENT_GATEWAY_INGEST", DEFAULT_INGEST),
    help=f"the gateway's ZeroMQ ingest endpoint to publish to (default: $EVENT_GATEWAY_INGEST, else {DEFAULT_INGEST})",
)
