"""``node_kit.jsonable`` (a tool's output and a plan's findings as plain JSON types) gives
what the standard library's ``json.loads(json.dumps(value, default=str))`` gives, but for NaN,
the infinities and plain ``Enum`` members (pinned below)."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebound.engine.node_kit import jsonable


def _stdlib(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_json)
def test_plain_json_is_the_same(value: Any) -> None:
    assert jsonable(value) == _stdlib(value)


@dataclasses.dataclass
class _Point:
    x: int


@pytest.mark.parametrize(
    "value",
    [
        {"at": datetime(2026, 12, 5, 9, 30, tzinfo=UTC), "on": date(2026, 12, 5)},
        {"amount": Decimal("12.50"), "tags": {"b"}, "raw": b"x"},
        {2: "int key", True: "bool key", None: "none key"},
        {"point": _Point(3)},
        {"big": 2**70, "tuple": (1, 2)},
    ],
)
def test_values_json_cannot_hold_are_the_same(value: Any) -> None:
    assert jsonable(value) == _stdlib(value)


class _Kind(enum.Enum):
    FAX = "fax"
    MAIL = 2


class _Channel(enum.StrEnum):
    FAX = "fax"


def test_what_standard_json_cannot_write_becomes_json() -> None:
    """NaN and the infinities become None (JSON has no such numbers; the standard library
    wrote ``NaN``), a plain Enum member its value (the standard library gave
    ``str(member)``); a str or int Enum is its value either way."""
    assert jsonable({"x": math.nan, "up": math.inf, "down": -math.inf}) == {
        "x": None, "up": None, "down": None,
    }  # fmt: skip
    assert math.isnan(_stdlib(math.nan))  # what the standard library gave instead
    assert jsonable([_Kind.FAX, _Kind.MAIL]) == ["fax", 2]
    assert _stdlib([_Kind.FAX]) == ["_Kind.FAX"]
    assert jsonable({"via": _Channel.FAX}) == _stdlib({"via": _Channel.FAX}) == {"via": "fax"}
