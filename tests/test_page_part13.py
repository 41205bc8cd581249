"""The inventory command's own cost, part 13 (docs/performance/inventory-cost.md): a page's cost after the
fetch: a fixed zone's datetime written from its fields, the plan's units, a fetched page's record.

Each cut writes the same text or makes the same objects as the code before: Hypothesis parity with the
old way (``isoformat``; the plan and record as they were made), and a test that fails on the code before
(or on the mutation its docstring names).
"""

from __future__ import annotations

import datetime as dt
import sys

from _zones import in_zone
from dateutil import tz
from hypothesis import example, given, settings
from hypothesis import strategies as st

from greenfetch import _jsonable as J
from greenfetch._jsonable import jsonable, marked_json, marked_json_of

# -- a fixed zone's datetime: its text from its fields ------------------------------------------------


def _fixed_zones() -> list[object]:
    """The zones whose datetimes take the fields' path: ``tzutc``, and ``tzlocal`` made where there is no
    DST (UTC, India's +05:30, a -05:30:15 offset with seconds)."""
    zones: list[object] = [tz.tzutc()]
    for name in ("UTC", "Asia/Kolkata", "ABC-5:30:15"):
        with in_zone(name):
            zones.append(tz.tzlocal())
    return zones


_FIXED = _fixed_zones()


@settings(deadline=None, max_examples=400)
@given(
    naive=st.datetimes(
        min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
    ),
    zone=st.sampled_from(_FIXED),
    fold=st.sampled_from([0, 1]),
)
@example(naive=dt.datetime(1, 1, 1), zone=_FIXED[0], fold=0)  # the year's four digits: 0001
@example(naive=dt.datetime(999, 12, 31, 23, 59, 59, 1), zone=_FIXED[1], fold=0)  # 0999, .000001
@example(naive=dt.datetime(1000, 1, 1, 0, 0, 0, 999999), zone=_FIXED[2], fold=1)
@example(naive=dt.datetime(9999, 12, 31, 23, 59, 59, 999999), zone=_FIXED[3], fold=0)
@example(naive=dt.datetime(2024, 5, 1, 10, 0), zone=_FIXED[1], fold=0)  # SSM's pages: no microseconds
def test_a_fixed_zones_datetime_text_is_its_isoformat(naive, zone, fold):
    """A ``tzutc`` or no-DST ``tzlocal`` datetime's text, alone, in the one pass and through ``jsonable``,
    is ``isoformat``'s: years 1-9999 (below 1000 padded to four digits), microseconds or none, either
    fold. Fails with the year's padding dropped, with ``.%06d`` written without microseconds, or a
    two-digit table one short."""
    value = naive.replace(tzinfo=zone, fold=fold)
    assert J._datetime_text(value) == value.isoformat()
    page = [{"T": value, "U": [value]}]
    assert marked_json_of(page, str_keys=True)[0] == marked_json(jsonable(page))
    assert jsonable(value) == value.isoformat()


def test_a_fixed_zones_datetime_calls_no_isoformat():
    """A page's ``tzutc`` and no-DST ``tzlocal`` datetimes are written without ``date()``, ``time()`` or
    ``isoformat`` (``PyUnicode_FromFormat``'s ``sprintf``: ~4.5k instructions each; fails on the code
    before: ``date``, ``isoformat``, ``time``, ``isoformat`` a datetime); another zone's still calls
    ``isoformat``."""
    called: list[str] = []

    def seen(frame, event, arg):
        if event == "c_call":
            called.append(arg.__name__)

    values = [dt.datetime(2026, 12, 7, 8, 0, s, s * 1000, tzinfo=zone) for s in range(2) for zone in _FIXED]
    sys.setprofile(seen)
    try:
        texts = [J._datetime_text(value) for value in values]
    finally:
        sys.setprofile(None)
    assert not {"date", "time", "isoformat"} & set(called)
    assert texts == [value.isoformat() for value in values]
    other = dt.datetime(2026, 12, 7, 8, 0, tzinfo=tz.tzoffset(None, 3600))
    sys.setprofile(seen)
    try:
        assert J._datetime_text(other) == other.isoformat()
    finally:
        sys.setprofile(None)
    assert "isoformat" in called


# -- a record's items: a type's kept fields without a comprehension an item -----------------------------


def _kept_before(keep, found):
    """What ``ResourceType.extract`` kept of each item before this part (the reference)."""
    return [{k: item[k] for k in keep if k in item} for item in found]


_item_values = st.none() | st.integers() | st.text(max_size=4) | st.lists(st.integers(), max_size=2)
_names = st.sampled_from(["Name", "ARN", "Arn", "", "caf\u00e9", "Tags"])


@settings(deadline=None, max_examples=300)
@given(
    keep=st.lists(_names, min_size=1, max_size=4).map(tuple),  # repeats too: the first one's place
    found=st.lists(
        st.dictionaries(_names, _item_values, max_size=5) | st.text(max_size=6) | st.integers(),
        max_size=5,
    ),
)
def test_a_types_kept_fields_are_what_the_comprehension_kept(keep, found):
    """``extract`` of a type with ``keep`` gives what the dict comprehension gave: the same fields in the
    same order (``keep``'s, a repeated name at its first place), items without some or all of them, and
    the same error for an item that is not a mapping (a str's ``in`` is a substring test, its ``[]`` a
    TypeError; an int's ``in`` a TypeError)."""
    from greenfetch.inventory._resource_type import ResourceType

    rtype = ResourceType("x.y", "x", "ListY", "Items", None, keep=keep)
    try:
        expected = _kept_before(keep, found)
    except TypeError as exc:
        import pytest

        with pytest.raises(type(exc), match="^" + __import__("re").escape(str(exc)) + "$"):
            rtype.extract({"Items": found})
        return
    got = rtype.extract({"Items": found})
    assert got == expected
    assert [list(item) for item in got] == [list(item) for item in expected]


def test_a_types_kept_fields_make_no_function_an_item():
    """Secrets Manager's ``keep`` (``Name``, ``ARN``) over a page of 5 makes no comprehension an item (fails on
    the code before: a ``<dictcomp>`` called for each item, ~4k instructions each)."""
    from greenfetch.inventory._catalog import resolve_types

    [secrets] = resolve_types(["secretsmanager.secrets"])
    assert secrets.keep
    page = {
        "SecretList": [
            {"Name": f"s-{n}", "ARN": f"arn:aws:secretsmanager:us-east-1:1:secret:s-{n}", "Other": n}
            for n in range(5)
        ]
    }
    called: list[str] = []

    def seen(frame, event, arg):
        if event == "call":
            called.append(frame.f_code.co_name)

    sys.setprofile(seen)
    try:
        items = secrets.extract(page)
    finally:
        sys.setprofile(None)
    assert "<dictcomp>" not in called and "<listcomp>" not in called
    assert items == [
        {"Name": f"s-{n}", "ARN": f"arn:aws:secretsmanager:us-east-1:1:secret:s-{n}"} for n in range(5)
    ]
