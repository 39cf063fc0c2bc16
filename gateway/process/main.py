"""``gatewayd``: the command line over :func:`gateway.daemon.run`.

One long option per :class:`~gateway.process.config.Config` field, generated from it, so
flags, env variables and TOML keys never drift apart: its description comes from
:data:`gateway.process.options.DESCRIPTIONS`, its click type from the field's type
(integers and floats with their bounds, ``Literal`` fields as a case-insensitive
``click.Choice``).  Every usage error is one line naming the option.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click
import msgspec

from gateway import __version__
from gateway.process.config import ENV_PREFIX, FIELDS, Config, ConfigError, env_name, load, option_name
from gateway.process.keys import load_keys
from gateway.process.options import DESCRIPTIONS


def _field_types() -> dict[str, msgspec.inspect.Type]:
    info = msgspec.inspect.type_info(Config)
    assert isinstance(info, msgspec.inspect.StructType)
    return {field.name: field.type for field in info.fields}


_FIELD_TYPES = _field_types()


def click_type(field: str) -> click.ParamType[Any, Any] | None:
    """The click type of ``field``'s option (``None``: a plain string)."""
    kind = _FIELD_TYPES[field]
    if isinstance(kind, msgspec.inspect.UnionType):  # ``X | None``: None means "unset", not a value
        kind = next(t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType))
    if isinstance(kind, msgspec.inspect.IntType):
        return _Int(min=kind.ge, max=kind.le)
    if isinstance(kind, msgspec.inspect.FloatType):
        return _Float(min=kind.ge, max=kind.le)
    if isinstance(kind, msgspec.inspect.LiteralType):
        return click.Choice([str(v) for v in kind.values], case_sensitive=False)
    return None


class _Int(click.IntRange):
    """An integer with the field's bounds, shown and named as plain INTEGER."""

    name = "integer"

    def get_metavar(self, *args: Any, **kwargs: Any) -> str:
        return "INTEGER"


class _Float(click.FloatRange):
    name = "float"

    def get_metavar(self, *args: Any, **kwargs: Any) -> str:
        return "FLOAT"


def _shown(default: object) -> str:
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, list):
        return ",".join(default) or "empty"
    return str(default)


def help_text(field: str) -> str:
    """The description, then the default and the environment variable."""
    default = getattr(Config(), field)
    shown = _shown(default)
    repeat = "; repeatable, env comma-separated" if isinstance(default, list) else ""
    return f"{DESCRIPTIONS[field]}  (default: {shown}; env {env_name(field)}{repeat})"


def _options(func: Any) -> Any:
    defaults = Config()
    for field in reversed(FIELDS):
        default = getattr(defaults, field)
        name = option_name(field)
        if isinstance(default, bool):
            func = click.option(f"{name}/--no-{name[2:]}", field, default=None, help=help_text(field))(func)
        elif isinstance(default, list):
            func = click.option(name, field, multiple=True, help=help_text(field))(func)
        else:
            func = click.option(name, field, type=click_type(field), default=None, help=help_text(field))(func)
    return func


class OneLineErrors(click.Command):
    """Usage errors as one line on stderr (``gatewayd: Invalid value for '--ring-size': …``), exit 2."""

    def main(  # type: ignore[override]  # always standalone_mode=False underneath, so one signature
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> Any:
        try:
            return super().main(args, prog_name, standalone_mode=False, **extra)
        except click.ClickException as exc:
            click.echo(f"gatewayd: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            sys.exit(1)


@click.command(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_file", default=None, help=f"TOML file of options  (env {ENV_PREFIX}CONFIG)")
@_options
@click.version_option(__version__, prog_name="gatewayd")
def main(config_file: str | None, **flags: Any) -> None:
    """Carry live events from Core (ZeroMQ) to browsers (WebSocket, SSE).

    Every option is also an EVENT_GATEWAY_<OPTION> environment variable and a
    top-level key of the --config TOML file (ring_size = 5000); flags > env >
    file > defaults.  An annotated file: deploy/gateway.toml.
    """
    try:
        sources: dict[str, str] = {}
        config = load(flags, config_file=config_file, sources=sources)
        keys = load_keys(config, sources)
    except ConfigError as exc:
        click.echo(f"gatewayd: {exc}", err=True)
        sys.exit(2)
    from gateway.process.daemon import StartupError, run

    try:
        code = run(config, keys, lambda: load(flags, config_file=config_file))
    except StartupError as exc:
        click.echo(f"gatewayd: {exc}", err=True)
        code = 1
    sys.exit(code)
