"""``docs/wire.md`` names every rejection reason the gateway counts (a producer's only feedback)."""

from __future__ import annotations

import re

from gateway.core.codec import REJECT_REASONS
from tests.conftest import ROOT


def documented_reasons() -> set[str]:
    """The rejection reasons named in docs/wire.md's table (rows like ``| `decode` | …``)."""
    text = (ROOT / "docs" / "wire.md").read_text()
    return set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE))


def test_every_rejection_reason_the_gateway_counts_is_documented() -> None:
    missing = set(REJECT_REASONS) - documented_reasons()
    assert not missing, f"docs/wire.md does not name rejection reasons {sorted(missing)}"
