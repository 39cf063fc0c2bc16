"""Every daemon option explains itself, from one place (``gateway.process.options.DESCRIPTIONS``).

``gatewayd --help`` shows each description with its default and environment variable,
numbers are typed, choices are listed; ``deploy/gateway.toml`` carries each description
verbatim in the option's comment paragraph.  Adding a Config field without a description
fails here, naming the field.
"""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from gateway.process.config import FIELDS, ConfigError, load, option_name
from gateway.process.main import click_type, main
from gateway.process.options import DESCRIPTIONS
from tests.conftest import ROOT


def test_every_option_has_one_description_of_one_line() -> None:
    missing = [f for f in FIELDS if f not in DESCRIPTIONS]
    assert not missing, f"add a one-line description for {missing} to gateway/process/options.py DESCRIPTIONS"
    unknown = set(DESCRIPTIONS) - set(FIELDS)
    assert not unknown, f"DESCRIPTIONS names options Config does not have: {sorted(unknown)}"
    for field, text in DESCRIPTIONS.items():
        assert "\n" not in text and 10 < len(text) <= 110 and text.endswith("."), (field, text)


def help_records() -> dict[str, tuple[str, str]]:
    """``--option`` → (its declaration with metavar, its help), as ``gatewayd --help`` prints them."""
    ctx = click.Context(main)
    records = {}
    for param in main.params:
        record = param.get_help_record(ctx)
        if record is not None and isinstance(param, click.Option):
            records[param.opts[0]] = record
    return records


def test_help_shows_description_default_and_env_for_every_option() -> None:
    records = help_records()
    for field in FIELDS:
        _decl, text = records[option_name(field)]
        assert text.startswith(DESCRIPTIONS[field]), (field, text)
        assert "(default: " in text and f"env EVENT_GATEWAY_{field.upper()}" in text, (field, text)
    out = CliRunner().invoke(main, ["--help"], terminal_width=100).output
    assert "EVENT_GATEWAY_<OPTION>" in out and "deploy/gateway.toml" in out


@pytest.mark.parametrize(
    ("field", "metavar", "accepted", "refused"),
    [
        ("ring_size", "INTEGER", "5000", "many"),
        ("max_clients_per_ip", "INTEGER", "0", "-1"),
        ("fsync_interval", "FLOAT", "0.25", "soon"),
        ("auth", "[none|token|jwt]", "TOKEN", "ldap"),
        ("slow_client", "[disconnect|drop-oldest|coalesce]", "drop-oldest", "ignore"),
        ("log_format", "[json|console]", "console", "xml"),
        ("log_level", "[debug|info|warning|error|critical]", "WARNING", "loud"),
        ("compression", "[on|off]", "Off", "gzip"),
    ],
)
def test_numbers_are_typed_and_choices_listed(field: str, metavar: str, accepted: str, refused: str) -> None:
    param_type = click_type(field)
    assert param_type is not None
    decl = help_records()[option_name(field)][0]
    if metavar.startswith("["):
        assert isinstance(param_type, click.Choice)
        assert sorted(decl.split(" ", 1)[1].strip("[]").split("|")) == sorted(metavar.strip("[]").split("|"))
        assert param_type.convert(accepted, None, None) == accepted.lower()
    else:
        assert decl.endswith(metavar)
        assert param_type.convert(accepted, None, None) == float(accepted)
    with pytest.raises(click.BadParameter):
        param_type.convert(refused, None, None)


def test_a_bad_flag_is_one_line_naming_the_option() -> None:
    result = CliRunner().invoke(main, ["--ring-size", "zero"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "'--ring-size'" in result.output


@pytest.mark.parametrize("raw", ["maybe", "2", "enabled"])
def test_a_bool_env_with_an_unknown_value_is_an_error_naming_the_option(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        load({}, environ={"EVENT_GATEWAY_INSECURE": raw})
    text = str(info.value)
    assert "--insecure" in text and "EVENT_GATEWAY_INSECURE" in text and repr(raw) in text and "\n" not in text


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("Yes", True), ("on", True), ("0", False), ("off", False)])
def test_a_bool_env_with_a_known_value(raw: str, value: bool) -> None:
    listen = {"listen": "0.0.0.0:8765"} if value else {}
    assert load(listen, environ={"EVENT_GATEWAY_INSECURE": raw}).insecure is value


def test_log_level_is_case_insensitive_from_env_too() -> None:
    assert load({}, environ={"EVENT_GATEWAY_LOG_LEVEL": "DEBUG"}).log_level == "debug"


def toml_paragraphs() -> list[list[str]]:
    text = (ROOT / "deploy" / "gateway.toml").read_text()
    return [block.splitlines() for block in re.split(r"\n\s*\n", text)]


def test_the_annotated_toml_carries_each_description_verbatim() -> None:
    seen = set()
    for lines in toml_paragraphs():
        for line in lines:
            match = re.match(r"^# ([a-z_]+) = ", line)
            if match and match.group(1) in DESCRIPTIONS:
                field = match.group(1)
                seen.add(field)
                assert f"# {DESCRIPTIONS[field]}" in lines, (
                    f"deploy/gateway.toml: the paragraph of {field} must contain the line "
                    f"'# {DESCRIPTIONS[field]}' (gateway/process/options.py)"
                )
    assert seen == set(FIELDS)


def test_no_help_shows_a_bare_click_type_name_as_metavar() -> None:
    """Ranges and paths get a word saying what is wanted (SECONDS, N), not click's ``FLOAT RANGE``."""
    from gateway.ctl.cli import main as gatewayctl

    commands = {"gatewayd": main, **{f"gatewayctl {n}": c for n, c in gatewayctl.commands.items()}}
    for name, command in commands.items():
        ctx = click.Context(command)
        for param in command.params:
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
            assert record is None or "RANGE" not in record[0], (name, record)
