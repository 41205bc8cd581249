"""``_jsonable``'s rules at their edges: what goes out is strict JSON whatever came in, what comes in is
refused with a line that says where and why. Each test here failed on a one-line change to
``_jsonable.py`` that the rest of the suite let through (the mutation audit, docs/testing.md).

Budget: well under a second.
"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import io
import json

import pytest

from greenfetch._jsonable import MAX_DEPTH, JSONInputError, jsonable, loads_strict, to_json

# -- out: jsonable and to_json -------------------------------------------------------------------


def test_keys_of_any_mapping_become_valid_strings():
    when = dt.datetime(2026, 12, 7, tzinfo=dt.timezone.utc)
    for mapping in (
        {when: 1, 2: "b", "k\ud800": 3},
        collections.OrderedDict({when: 1, 2: "b", "k\ud800": 3}),
    ):
        assert jsonable(mapping) == {"2026-12-07T00:00:00+00:00": 1, "2": "b", "k\ufffd": 3}


def test_tuples_and_sets_are_lists():
    assert jsonable({"t": (1, "a"), "s": {3}, "f": frozenset({4})}) == {"t": [1, "a"], "s": [3], "f": [4]}


@pytest.mark.parametrize(
    ("value", "out"), [(decimal.Decimal("Infinity"), "Infinity"), (decimal.Decimal("NaN"), "NaN")]
)
def test_a_decimal_that_is_not_finite_is_its_text(value, out):
    assert jsonable([value]) == [out] and json.dumps(jsonable([value]), allow_nan=False)


def test_a_whole_decimal_is_an_exact_integer():
    """DynamoDB's numbers come as Decimals: a whole one is written as an integer, every digit kept
    (a float would print 2 as 2.0 and lose the last digits of a 20-digit id)."""
    assert (
        to_json([decimal.Decimal("2"), decimal.Decimal("12345678901234567890")])
        == "[2, 12345678901234567890]"
    )
    assert to_json([decimal.Decimal("2.5")]) == "[2.5]"


class _Body(io.BytesIO):
    closed_by_us = False

    def close(self):
        self.closed_by_us = True
        super().close()


def test_a_body_at_exactly_the_limit_is_whole_and_every_body_is_closed():
    exact, over = _Body(b"abcd"), _Body(b"abcde")
    assert jsonable(exact, body_limit=4) == "abcd" and jsonable(over, body_limit=4) == "abcd…[truncated]"
    assert exact.closed_by_us and over.closed_by_us  # the connection goes back to the pool


def test_a_body_that_cannot_be_read_is_a_value_not_an_exception():
    class Broken:
        def read(self, size):
            raise ConnectionResetError("peer went away")

    assert jsonable({"Body": Broken()}) == {"Body": "<unreadable body: ConnectionResetError>"}


def test_to_json_sorts_keys_when_asked_and_keeps_non_ascii_either_way():
    assert to_json({"b": 1, "a": "é"}, sort_keys=True) == '{"a": "é", "b": 1}'
    assert to_json({"b": 1, "a": "é"}, indent=1) == '{\n "b": 1,\n "a": "é"\n}'


# -- in: loads_strict ----------------------------------------------------------------------------


def test_a_byte_order_mark_is_not_part_of_the_text():
    assert loads_strict('\ufeff{"a": 1}') == {"a": 1} == loads_strict('\ufeff{"a": 1}'.encode())


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_up_to_the_limit_is_read_and_one_more_is_refused():
    assert loads_strict(_nested(MAX_DEPTH)) is not None
    wide = "[" + "[], " * 5 + _nested(MAX_DEPTH - 1) + "]"  # more brackets than levels: the tree is walked
    assert loads_strict(wide)[0] == []
    with pytest.raises(JSONInputError, match=f"nested deeper than {MAX_DEPTH} levels"):
        loads_strict(_nested(MAX_DEPTH + 1))


@pytest.mark.parametrize("text", ['"\\ud800"', '"\\udc80"', '{"\\udfff": 1}', '[1, {"a": "x\\uDB00"}]'])
def test_a_lone_surrogate_anywhere_is_refused_naming_it(text):
    with pytest.raises(JSONInputError, match="lone UTF-16 surrogate"):
        loads_strict(text)


@pytest.mark.parametrize("text", ["1e400", "[-1e999]"])
def test_a_number_past_a_double_is_refused(text):
    with pytest.raises(JSONInputError, match="out of range for a double"):
        loads_strict(text)
