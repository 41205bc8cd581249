"""The inventory command's own cost, part 7 (docs/performance/inventory-cost.md): a fresh page's JSON in one encoder pass.

``marked_json_of(value)`` must give ``marked_json(jsonable(value))``'s text (and so the cache's compact
text and the file sink's spaced text) for any value, or raise as that did: the one pass where it is
exact, today's two steps where it is not. The values here are what ``jsonable`` treats specially:
keys that are not str, tuples, sets, Decimals, NaN and the infinities, bytes, datetimes (``tzlocal``
among them), subclasses of str, int, float, list and dict, bodies, unknown objects.
"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import enum
import json

from _cache_rows import cache_rows
from _inventory_runs import small_run
from dateutil import tz
from hypothesis import example, given, settings
from hypothesis import strategies as st

from greenfetch import _jsonable as J
from greenfetch._jsonable import jsonable, marked_json, marked_json_of, plain_json, to_json
from greenfetch.inventory._cache import InventoryCache
from greenfetch.inventory._sinks import _dumps


class Text(str):
    pass


class Num(int):
    def __str__(self) -> str:  # jsonable's key is str(key); the encoder writes int.__repr__
        return "num"


class Color(enum.IntEnum):
    RED = 7


class Real(float):
    def __repr__(self) -> str:
        return "real"


class Seq(list):
    pass


class Map(dict):
    pass


class When(dt.datetime):
    pass


class Thing:
    def __str__(self) -> str:
        return "a thing"


class Body:
    """A streaming body that gives the same bytes at every read (so both paths can read it); counts reads."""

    def __init__(self, data: bytes) -> None:
        self.data, self.reads = data, 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        return self.data if size < 0 else self.data[:size]

    def close(self) -> None:
        pass


def _huge() -> int:
    """An int past the 4,300-digit str limit: both paths raise ValueError (a function: no repr of it)."""
    return 10**5000


_odd = st.sampled_from(
    ["", ",", ":", '"', "\\", "\0", "a\0b", "\n", "caf\u00e9", "\ud800", "x\udfffy", "\u2028", "\ufffd"]
)
_looks_non_str = st.sampled_from(["true", "false", "null", "1", "-2", "2.5", "1e+16", "NaN", "True", "None"])
_text = st.text(max_size=6) | _odd | _looks_non_str
_zones = st.sampled_from(
    [None, dt.timezone.utc, tz.tzlocal(), tz.tzoffset(None, 19800), dt.timezone(dt.timedelta(hours=-5))]
)
_decimals = st.decimals(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [decimal.Decimal(x) for x in ("sNaN", "-NaN", "1E+400", "1" * 320 + ".5", "-0", "0.1", "3")]
)
_safe_decimals = st.decimals(allow_nan=False, allow_infinity=True) | st.sampled_from(
    [decimal.Decimal(x) for x in ("NaN", "1E+400", "-0", "0.1")]
)  # a signaling NaN cannot be hashed: no key
_hashable = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | _text
    | st.builds(Text, _text)
    | st.builds(Num, st.integers(-5, 5))
    | st.sampled_from(Color)
    | st.builds(Real, st.floats())
    | _safe_decimals
    | st.binary(max_size=6)
    | st.datetimes(timezones=_zones)
    | st.dates()
    | st.times()
    | st.tuples(st.integers(), _text)
    | st.frozensets(st.integers(), max_size=3)
)
_leaves = (
    _hashable
    | _decimals
    | st.builds(bytearray, st.binary(max_size=6))
    | st.builds(memoryview, st.binary(max_size=6))
    | st.builds(When, st.integers(2000, 2030), st.integers(1, 12), st.integers(1, 28))
    | st.builds(Thing)
    | st.builds(Body, st.binary(max_size=6))
    | st.builds(_huge)
    | st.sets(st.integers() | _text | st.floats(), max_size=3)
)
_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.lists(inner, max_size=3).map(Seq)
        | st.dictionaries(_text, inner, max_size=4)
        | st.dictionaries(_hashable, inner, max_size=3)
        | st.dictionaries(_text, inner, max_size=3).map(Map)
        | st.dictionaries(_text, inner, max_size=3).map(collections.OrderedDict)
    ),
    max_leaves=20,
)


def _outcome(fn, value):
    try:
        return fn(value), None
    except Exception as exc:  # noqa: BLE001 - the same exception type either way
        return None, type(exc)


@settings(deadline=None, max_examples=400)  # a loaded machine: the first example imports and warms up
@given(_values)
@example({True: 1, "x": dt.datetime(2026, 3, 29, 1, 30, tzinfo=tz.tzlocal())})
@example({None: 1, 1.5: 2, Num(3): 3, Real(2.0): 4, Color.RED: 5})
@example({"1": "a", 1: "b"})  # one key to jsonable, two to the encoder
@example({1e16: 1, -2: 2, 5e-324: 3, "CodeSha256": 4, "e": 5, "1e+16": 6})
@example({1e16: 1, "1e+16": 2})  # an exponent's key: one key to jsonable
@example({Real(1e-07): 1})  # repr "1e-07" to the encoder, "real" to jsonable
@example(dict([("\ud800", 1), ("\ufffd", 2)]))  # two keys to the encoder, one to jsonable
@example([float("nan"), float("inf"), -float("inf")])
@example({float("nan"): 1})
@example({(1, 2): 1, dt.date(2026, 1, 1): 2})
@example([decimal.Decimal("1" * 320 + ".5")])  # a float past the double's range: "Infinity", both ways
def test_one_pass_gives_the_two_step_text(value):
    """``marked_json_of(v)`` is ``marked_json(jsonable(v))``: the marked text, and so the cache's compact
    text and the file sink's spaced text; or the same exception. ``plain`` is ``jsonable(v)`` or None."""
    (old, old_error) = _outcome(lambda v: marked_json(jsonable(v)), value)
    (new, new_error) = _outcome(marked_json_of, value)
    assert new_error is old_error
    if old_error is not None:
        return
    text, plain = new
    assert text == old
    assert text.replace("\0", "") == plain_json(jsonable(value), compact=True)
    if "Infinity" not in text:  # jsonable makes a Decimal past a double's range a float inf (both ways)
        assert text.replace("\0", " ") == plain_json(jsonable(value))
    assert plain is None or plain == jsonable(value)


def _botocore_page():
    """What botocore's parsers build for a page: dicts, lists, str, int, float, bool, None, datetimes
    (``tzlocal`` for a JSON protocol's epoch timestamps), bytes (a blob), and what ``jsonable`` takes
    besides: a Decimal, a set, a tuple."""
    when = dt.datetime(2026, 12, 7, 8, 0, 0, 123000, tzinfo=tz.tzlocal())
    return [
        {
            "KeyId": f"k-{i}",
            "Arn": f"arn:aws:kms:eu-west-1:111111111111:key/k-{i}",
            "CreationDate": when,
            "Enabled": True,
            "Size": 3.5,
            "Blob": b"\x00\xffblob",
            "Text": b"text",
            "Tags": [{"Key": "env", "Value": "caf\u00e9"}],
            "Due": dt.date(2027, 1, 1),
            "Count": decimal.Decimal("12"),
            "Kinds": {"a"},
            "Pair": (1, None),
        }
        for i in range(5)
    ]


def test_a_botocore_page_is_written_in_one_pass_without_jsonable(monkeypatch):
    """Such a page never goes through ``jsonable`` (fails on the old code: no ``marked_json_of``; with
    the fallback taken every time, jsonable would be called): the text is the two steps' all the same."""
    page = _botocore_page()
    expected = marked_json(jsonable(page))
    walked = []
    monkeypatch.setattr(J, "jsonable", lambda value, *a: walked.append(value) or jsonable(value, *a))
    text, plain = marked_json_of(page)
    assert (text, plain, walked) == (expected, None, [])


def test_a_str_key_that_ends_in_a_digit_takes_the_one_pass(monkeypatch):
    """Lambda's ``CodeSha256``, a tag key ``"v2"``: str keys that end in a digit are told from a number's
    (which only the fallback writes as ``jsonable`` does) and keep the one pass."""
    page = [{"FunctionName": f"fn-{i}", "CodeSha256": "abc=", "Tags": {"v2": "1"}} for i in range(3)]
    expected = marked_json(jsonable(page))
    walked = []
    monkeypatch.setattr(J, "jsonable", lambda value, *a: walked.append(value) or jsonable(value, *a))
    assert marked_json_of(page) == (expected, None) and walked == []
    assert marked_json_of([{"2": 1}])[1] == [{"2": 1}]  # a str key that is a number: the fallback


def test_a_body_is_read_once_and_only_by_jsonable():
    """A streaming body sends the page to ``jsonable`` before anything reads it: read once, as before."""
    body = Body(b"payload")
    text, plain = marked_json_of([{"Body": body, "When": dt.datetime(2026, 1, 1)}])
    assert body.reads == 1
    assert plain == [{"Body": "payload", "When": "2026-01-01T00:00:00"}]
    assert text == marked_json(plain)


def test_a_cache_with_ttl_0_writes_the_same_file_without_a_plain_value(tmp_path, monkeypatch):
    """``store`` with a TTL of 0 writes the envelope a TTL above 0 writes (its memory tier makes
    ``jsonable``'s value; the entries differ only in their ttl) without making that value."""
    page = _botocore_page()
    with InventoryCache(60, tmp_path / "ttl") as cache:
        plain_ttl, marked_ttl = cache.store("k", page, stored_at=1.5)
    walked = []
    monkeypatch.setattr(
        "greenfetch.inventory._cache.jsonable", lambda v, *a: walked.append(v) or jsonable(v, *a)
    )
    with InventoryCache(0, tmp_path / "zero") as cache:
        plain, marked = cache.store("k", page, stored_at=1.5)
    assert (plain, walked) == (None, [])
    assert marked == marked_ttl and plain_ttl == jsonable(page)
    zero, ttl = cache_rows(tmp_path / "zero"), cache_rows(tmp_path / "ttl")
    assert list(zero) == list(ttl) == ["k"]
    assert zero["k"] == ttl["k"].replace('"ttl":60.0,', '"ttl":0.0,')


_records = st.fixed_dictionaries(
    {
        "resource_type": st.sampled_from(["ssm.parameters", "caf\u00e9.x"]),
        "account": _text,
        "region": st.sampled_from(["eu-west-1", "*"]),
        "items": st.lists(_values, max_size=3),
        "status": st.sampled_from(["ok", "denied"]),
        "error": st.none() | _text | st.floats(),
    }
)


@settings(deadline=None)
@given(_records)
def test_a_record_from_the_one_pass_text_is_to_json(rec):
    """The file sink's record from the one pass's text alone (no plain items) is ``to_json(rec)``."""
    try:
        expected = to_json(rec)
    except ValueError:  # an int past the str limit: to_json raises, and so does the one pass
        return
    marked, _ = marked_json_of(rec["items"])
    assert _dumps(rec, None, marked) == expected


def test_a_run_with_ttl_0_walks_no_page_and_writes_the_same_files(tmp_path, monkeypatch):
    """``greenfetch inventory --cache-ttl 0 --out DIR``: no fresh page's items go through ``jsonable``
    (fails on the old code: 8 of 8 pages), and the json files and cache entries are the ones the two
    steps write (the one pass refused everywhere: today's path)."""
    from greenfetch.testing import inventory_server

    pages = []

    def spy(value, *a):
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            pages.append(value)
        return jsonable(value, *a)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    with inventory_server(items=3) as server:
        with monkeypatch.context() as patched:
            patched.setattr(J, "jsonable", spy)
            patched.setattr("greenfetch.inventory._cache.jsonable", spy)
            report = small_run(server.url, tmp_path / "one", tmp_path / "cache-one")
        assert report.summary["records"] == 8 and pages == []

        def refused(value):
            raise J._NotOnePass

        monkeypatch.setattr(J, "_MARKED_ONCE", refused)
        small_run(server.url, tmp_path / "two", tmp_path / "cache-two")
    for name in ("ssm.parameters.json", "kms.keys.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    one, two = cache_rows(tmp_path / "cache-one"), cache_rows(tmp_path / "cache-two")
    assert len(one) == 10 and sorted(one) == sorted(two)  # 8 pages, 2 services' region lists
    for key, mine in one.items():
        stamp = json.loads(mine)["stored_at"], json.loads(two[key])["stored_at"]
        assert mine.replace(repr(stamp[0]), "T") == two[key].replace(repr(stamp[1]), "T")


def test_a_decimal_beyond_a_doubles_range_is_its_text_everywhere():
    """A non-integral Decimal too large for a float was ``inf``: the cache wrote ``Infinity`` (not JSON)
    and ``to_json`` raised. Now its text, as NaN's and the infinities' are, in every path."""
    from greenfetch._jsonable import jsonable, marked_json_of, to_json

    huge = decimal.Decimal("1" + "0" * 400 + ".5")
    page = [{"Size": huge, "Small": decimal.Decimal("1.25"), "Whole": decimal.Decimal("1E+400")}]
    plain = jsonable(page)
    assert plain == [{"Size": str(huge), "Small": 1.25, "Whole": 10**400}]
    marked, _ = marked_json_of(page)
    assert json.loads(marked.replace("\0", "")) == plain
    assert json.loads(to_json({"items": page}))["items"] == plain


# -- part 12: a botocore answer's page skips the key check -----------------------------------------

_str_keyed = st.recursive(  # every dict key an exact str, as botocore's parsers make them
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(_text, inner, max_size=4)
        | st.dictionaries(_text, inner, max_size=3).map(Map)
        | st.dictionaries(_text, inner, max_size=3).map(collections.OrderedDict)
    ),
    max_leaves=20,
)


@settings(deadline=None, max_examples=300)
@given(_str_keyed)
@example({"true": 1, "1": [{"2.5": None, "null": "x"}], "CodeSha256": {"-2": 1}})  # keys that look non-str
@example({"\ud800": 1, "caf\u00e9": 2})
def test_str_keys_gives_the_two_step_text_where_every_key_is_a_str(value):
    """``marked_json_of(v, str_keys=True)`` is ``marked_json(jsonable(v))`` (or its exception) for any value
    whose keys are all str, keys that look like numbers or words included: the key check it skips finds
    only keys that are not str."""
    (old, old_error) = _outcome(lambda v: marked_json(jsonable(v)), value)
    (new, new_error) = _outcome(lambda v: marked_json_of(v, str_keys=True), value)
    assert new_error is old_error
    if old_error is None:
        assert new[0] == old and (new[1] is None or new[1] == jsonable(value))


def _count_key_checks(monkeypatch) -> list[str]:
    checked: list[str] = []
    real = J._maybe_non_str_key
    monkeypatch.setattr(J, "_maybe_non_str_key", lambda text: checked.append(text) or real(text))
    return checked


def test_a_botocore_answered_run_makes_no_key_check(tmp_path, monkeypatch):
    """``greenfetch inventory --cache-ttl 0``: the pages botocore parsed (through ``BotocoreCaller``) are
    written without the key check (fails on the old code: 8 checks for 8 pages of objects)."""
    from greenfetch.testing import inventory_server

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    checked = _count_key_checks(monkeypatch)
    with inventory_server(items=3) as server:
        report = small_run(server.url, tmp_path / "out", tmp_path / "cache")
    pages = [text for text in checked if "{" in text]  # the region lists the plan caches hold no key
    assert report.summary["records"] == 8 and pages == []


def _mock_run(tmp_path, answer, types=("kms.keys",)):
    """An ``Inventory`` on an engine whose caller is a ``MockCaller`` answering ``answer``; its cache rows."""
    from greenfetch import Config, Engine
    from greenfetch.inventory import accounts_from_list
    from greenfetch.inventory._catalog import resolve_types
    from greenfetch.inventory._fetch import Inventory
    from greenfetch.testing import MockCaller

    sts = {
        "Credentials": {
            "AccessKeyId": "AKIDEXAMPLE",
            "SecretAccessKey": "secret",
            "SessionToken": "token",
            "Expiration": dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1),
        }
    }
    caller = MockCaller(lambda request: sts if request.operation == "AssumeRole" else answer)
    engine = Engine(Config.resolve({"region": "us-east-1"}, environ={}), caller=caller)
    try:
        with InventoryCache(0, tmp_path / "cache") as cache:
            inv = Inventory(
                engine,
                accounts_from_list(["111111111111"], role="InventoryReader"),
                resolve_types(list(types)),
                regions=["us-east-1"],
                cache=cache,
                filter_offered=False,
            )
            records = list(inv.run())
    finally:
        engine.close()
    return records, cache_rows(tmp_path / "cache")


def test_another_callers_answer_keeps_the_key_check(tmp_path, monkeypatch):
    """An answer that did not come through botocore's parsers (here ``MockCaller``'s) may hold any key:
    the check is made, and the cache row is ``jsonable``'s (``True`` as ``"True"``, not ``true``)."""
    checked = _count_key_checks(monkeypatch)
    items = [{"KeyId": "k", "Odd": {True: 1, 2: "x"}}]
    records, rows = _mock_run(tmp_path, {"Keys": items})
    assert [r["status"] for r in records] == ["ok"] and len(checked) == 1
    [row] = rows.values()
    assert json.loads(row)["value"] == [{"KeyId": "k", "Odd": {"True": 1, "2": "x"}}]
    assert row.endswith('"value":' + plain_json(jsonable(items), compact=True) + "}")


# -- part 12: a fixed zone's datetime without dateutil's Python utcoffset --------------------------

_TZ_NAMES = ["UTC", "Asia/Kolkata", "America/New_York", "Australia/Lord_Howe", "Etc/GMT+5", "ABC-5:30:15"]


def _tzlocal_under(name):
    from _zones import in_zone

    with in_zone(name):
        return tz.tzlocal()


@settings(deadline=None, max_examples=300)
@given(
    naive=st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 30)),
    made=st.sampled_from(_TZ_NAMES),
    now=st.sampled_from(_TZ_NAMES),
    fold=st.sampled_from([0, 1]),
    other=st.sampled_from([None, tz.tzutc(), dt.timezone.utc, tz.tzoffset(None, -3600), "local"]),
)
def test_a_datetimes_text_is_its_isoformat(naive, made, now, fold, other):
    """A datetime's text, alone and in the one pass, is ``isoformat``'s: ``tzlocal`` made under zones with
    and without DST (an offset with seconds among them) and used under another, either fold; ``tzutc``,
    the standard library's zones, none. Years below 1000 and microseconds or none."""
    from _zones import in_zone

    zone = _tzlocal_under(made) if other == "local" else other
    with in_zone(now):
        value = naive.replace(tzinfo=zone, fold=fold)
        assert J._datetime_text(value) == value.isoformat()
        assert marked_json_of([{"T": value}], str_keys=True)[0] == marked_json(jsonable([{"T": value}]))
        assert jsonable(value) == value.isoformat()


def test_a_tzlocal_without_dst_is_written_without_its_utcoffset(monkeypatch):
    """A page's ``tzlocal`` datetimes made where there is no DST (this machine's UTC) and ``tzutc`` ones
    never call dateutil's Python ``utcoffset`` (fails on the old code: one call a datetime); a
    ``tzlocal`` with DST still does, and every text is ``isoformat``'s."""
    calls = []
    for kind in (tz.tzlocal, tz.tzutc):
        real = kind.utcoffset
        monkeypatch.setattr(kind, "utcoffset", lambda self, d, real=real: calls.append(d) or real(self, d))
    fixed = [dt.datetime(2026, 12, 7, 8, 0, s, s * 1000, tzinfo=_tzlocal_under("UTC")) for s in range(3)]
    fixed.append(dt.datetime(2026, 12, 7, 8, 0, tzinfo=tz.tzutc()))
    text = marked_json_of([{"T": value} for value in fixed], str_keys=True)[0]
    assert calls == []
    assert text.replace("\0", "") == json.dumps(
        [{"T": value.isoformat()} for value in fixed], separators=(",", ":")
    )
    calls.clear()
    summer = dt.datetime(2024, 7, 1, 12, 0, tzinfo=_tzlocal_under("America/New_York"))
    assert J._datetime_text(summer) == summer.isoformat() and len(calls) == 2  # ours, and isoformat's


# -- part 12: the compact text through bytes ---------------------------------------------------------


@settings(deadline=None, max_examples=300)
@given(st.lists(st.text(max_size=8) | _odd | st.just("\0"), max_size=12).map("".join))
@example("[\0{\0}\0]")
@example("caf\u00e9\0x")
@example("\ud800\0")  # not ASCII: str's replace (a lone surrogate has no UTF-8)
def test_the_compact_text_is_the_marked_text_without_its_nuls(marked):
    """``compact_of_marked`` is ``replace("\\0", "")`` for any text: through bytes for an ASCII one."""
    assert J.compact_of_marked(marked) == marked.replace("\0", "")


def test_a_cache_entry_is_its_marked_texts_compact_form(tmp_path):
    """The cache's entry holds the compact text of the page's marked text: an ASCII page (the bytes path)
    and one that is not, each ``plain_json(jsonable(page), compact=True)``."""
    pages = {
        "ascii": [{"KeyId": "k", "Tags": [{"Key": "a", "Value": "b"}]}],
        "other": [{"Name": "caf\u00e9"}],
    }
    with InventoryCache(0, tmp_path / "cache") as cache:
        for key, page in pages.items():
            cache.store(key, page, stored_at=1.5, str_keys=True)
    rows = cache_rows(tmp_path / "cache")
    for key, page in pages.items():
        assert rows[key].endswith('"value":' + plain_json(jsonable(page), compact=True) + "}")
