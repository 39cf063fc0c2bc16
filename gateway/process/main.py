"""``gatewayd``: the command line over :func:`gateway.daemon.run`.

One long option per :class:`~gateway.config.Config` field, generated from it,
so flags, env variables and TOML keys never drift apart.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from gateway import __version__
from gateway.process.config import FIELDS, Config, ConfigError, load, option_name


def _options(func: Any) -> Any:
    defaults = Config()
    for field in reversed(FIELDS):
        default = getattr(defaults, field)
        name = option_name(field)
        help_text = f"(default: {default!r}; env EVENT_GATEWAY_{field.upper()})"
        if isinstance(default, bool):
            func = click.option(f"{name}/--no-{name[2:]}", field, default=None, help=help_text)(func)
        elif isinstance(default, list):
            func = click.option(name, field, multiple=True, help=help_text + " repeatable")(func)
        else:
            func = click.option(name, field, default=None, help=help_text)(func)
    return func


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", default=None, help="TOML file (env EVENT_GATEWAY_CONFIG)")
@_options
@click.version_option(__version__, prog_name="gatewayd")
def main(config_file: str | None, **flags: Any) -> None:
    """Carry live events from Core (ZeroMQ) to browsers (WebSocket, SSE)."""
    try:
        config = load(flags, config_file=config_file)
    except ConfigError as exc:
        click.echo(f"gatewayd: {exc}", err=True)
        sys.exit(2)
    from gateway.process.daemon import run

    sys.exit(run(config, lambda: load(flags, config_file=config_file)))
