"""The inventory's per-page work made cheaper must give the same values and the same files.

``jsonable`` has a fast path for the exact types botocore's parsers build (str, dict, list, int, bool,
None); it must return what the general path returns for every value, subclasses and odd keys included.
The cache writes each page with a few system calls instead of ``atomic_open``'s text file: the same
file, mode and content, no temporary file left, a missing directory made again.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import decimal
import enum
import json
import math
import os
import stat

from hypothesis import given
from hypothesis import strategies as st

from greenfetch._jsonable import jsonable
from greenfetch.inventory._cache import InventoryCache


def _reference(value, body_limit=1 << 20):
    """jsonable as it was before the fast path (the oracle)."""
    from greenfetch._jsonable import _key, _text_or_base64, _valid_text

    def key(k):
        return _key(k)

    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, str):
        return value if value.isascii() else _valid_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {key(k): _reference(v, body_limit) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_reference(v, body_limit) for v in value]
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _text_or_base64(bytes(value))
    return str(value)


class _Color(enum.IntEnum):
    RED = 1


class _Text(str):
    pass


_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.text().map(_Text)
    | st.sampled_from(["\ud800", "caf\u00e9", "a\udfffb", _Color.RED])
    | st.binary(max_size=8)
    | st.datetimes()
    | st.decimals()
)
_keys = (
    st.text(max_size=6) | st.integers() | st.booleans() | st.none() | st.sampled_from(["\udc80", "\u00e9"])
)
_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(_keys, inner, max_size=4)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3).map(collections.OrderedDict)
    ),
    max_leaves=25,
)


def _same(a, b):
    """Equal, with the same types all the way down (1 == 1.0 == True would hide a change)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


@given(_values)
def test_jsonable_fast_path_is_the_general_path(value):
    _same(jsonable(value), _reference(value))


def test_jsonable_fast_path_on_a_botocore_page():
    page = {
        "Parameters": [
            {"Name": "/p", "LastModifiedDate": dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc), "Version": 1},
            {"Name": "caf\u00e9", "Blob": b"\xff\x00", "Size": decimal.Decimal("1.5"), "Ok": True, "X": None},
        ],
        1: "int key",
        "nan": float("nan"),
    }
    _same(jsonable(page), _reference(page))
    assert jsonable(page)["Parameters"][1]["Blob"] == "base64:" + base64.b64encode(b"\xff\x00").decode()


def _entries(directory):
    return sorted(os.listdir(directory))


def test_cache_write_same_file_mode_and_no_temporary(tmp_path):
    cache = InventoryCache(60, tmp_path / "cache", clock=lambda: 1000.0)
    items = [{"Name": "caf\u00e9", "When": dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)}]
    cache.set("inv1:k", items, stored_at=999.5)
    (name,) = _entries(tmp_path / "cache")
    path = tmp_path / "cache" / name
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "cache").st_mode) == 0o700
    text = path.read_bytes().decode("utf-8")
    assert text == json.dumps(
        {
            "greenfetch-cache": 1,
            "key": "inv1:k",
            "stored_at": 999.5,
            "ttl": 60.0,
            "value": [{"Name": "caf\u00e9", "When": "2024-05-01T00:00:00+00:00"}],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    cache.set("inv1:k", [1], stored_at=999.9)  # replaced in place, never a second file
    assert _entries(tmp_path / "cache") == [name]
    fresh = InventoryCache(60, tmp_path / "cache", clock=lambda: 1000.0)
    assert fresh.lookup("inv1:k") == ([1], 999.9)


def test_cache_write_makes_the_directory_again(tmp_path):
    cache = InventoryCache(0, tmp_path / "cache")
    cache.set("a", [1])
    for name in _entries(tmp_path / "cache"):
        os.unlink(tmp_path / "cache" / name)
    os.rmdir(tmp_path / "cache")  # removed under a running inventory (cache clear)
    cache.set("b", [2])
    assert len(_entries(tmp_path / "cache")) == 1
    assert stat.S_IMODE(os.stat(tmp_path / "cache").st_mode) == 0o700
