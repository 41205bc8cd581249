"""The inventory command's own cost, part 17 (docs/performance/inventory-cost.md): a page's cache write
and record inside the command.

- a new fetch time of whole milliseconds is written from its second's text, kept (a second's pages share
  it), and its milliseconds, in floats (no ``int()`` or ``str()``, a type's call each, and no integer
  division): ``repr``'s text, whatever times came before (Hypothesis over runs of times);
- the envelope asks ``_float_text`` whether the time is finite (None) rather than ``math.isfinite`` a
  page, and writes a plain key into its template's quotes: the text ``plain_json`` gives.

Each test fails on the code before (or on the mutation its docstring names).
"""

from __future__ import annotations

import builtins
import math
import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from greenfetch._jsonable import plain_json
from greenfetch.inventory import _cache
from greenfetch.inventory._cache import _MARK, _VERSION, _envelope, _float_text

# -- a fetch time's text: its second's kept ------------------------------------------------------------

# whole milliseconds around a few seconds (so runs share seconds and cross them), anywhere in the range,
# and the doubles next to them (not whole milliseconds: ``repr``)
_NEAR = st.integers(min_value=1796636849000, max_value=1796636852000)
_ANY = st.integers(min_value=0, max_value=10**13)
_TIME = st.tuples(_NEAR | _ANY, st.sampled_from([0, 0, 0, 1, -1]), st.sampled_from([1.0, 1.0, -1.0]))


def _value(ms: int, nudge: int, sign: float) -> float:
    value = ms / 1000
    if nudge:
        value = math.nextafter(value, math.inf if nudge > 0 else -math.inf)
    return sign * value


@settings(deadline=None, max_examples=500)
@given(times=st.lists(_TIME, min_size=1, max_size=40))
@example(times=[(1796636850000, 0, 1.0), (1796636850999, 0, 1.0), (1796636851000, 0, 1.0)])
@example(times=[(1796636850123, 0, 1.0), (1796636850123, 1, 1.0), (1796636850124, 0, 1.0)])
@example(times=[(1000, 0, 1.0), (999, 0, 1.0), (1001, 0, 1.0), (10**15 - 1, 0, 1.0)])
def test_a_run_of_fetch_times_is_written_as_repr_writes_them(times):
    """Each time of a run, after whichever came before (the kept millisecond and second carried from
    one to the next): ``repr``'s text. Fails when the kept second is used for another second (its
    check dropped), or when the milliseconds are taken from the kept second's text wrongly."""
    for ms, nudge, sign in times:
        value = _value(ms, nudge, sign)
        assert _float_text(value) == repr(value)


def test_a_seconds_pages_write_its_text_once(monkeypatch):
    """New whole-millisecond times in one second make the second's text once and call no ``int``: fails
    on the code before (``int()`` and ``str()`` at each new time, ~1.6k instructions of type calls)."""
    calls: list[object] = []

    def counted(kind):
        return lambda *args: calls.append((kind.__name__, *args)) or kind(*args)

    monkeypatch.setattr(_cache, "str", counted(builtins.str), raising=False)
    monkeypatch.setattr(_cache, "int", counted(builtins.int), raising=False)
    second = 1796636860
    texts = [_float_text((second * 1000 + ms) / 1000) for ms in (1, 20, 300, 999, 0)]
    assert texts == [f"{second}.001", f"{second}.02", f"{second}.3", f"{second}.999", f"{second}.0"]
    assert calls == [("str", second)]
    assert _float_text(second + 1.5) == f"{second + 1}.5" and calls[-1] == ("str", second + 1)


# -- the envelope -------------------------------------------------------------------------------------

_KEYS = st.sampled_from(
    ["inv1:ssm.parameters:ssm:DescribeParameters:0123456789abcdef01234567@http://127.0.0.1:1", ""]
) | st.text(max_size=12)
_FLOATS = st.floats() | _TIME.map(lambda t: _value(*t)) | st.sampled_from([0.0, -0.0, math.inf, math.nan])


@settings(deadline=None, max_examples=500)
@given(key=_KEYS, stored_at=_FLOATS | st.integers() | st.none(), ttl=_FLOATS | st.integers() | st.none())
@example(key='a"b\\c\x00', stored_at=1796636850.123, ttl=0.0)
@example(key="k", stored_at=math.inf, ttl=0.0)
@example(key="k", stored_at=1796636850.123, ttl=math.nan)
def test_an_envelope_is_plain_jsons(key, stored_at, ttl):
    """The envelope's text is ``plain_json``'s of the envelope (NaN and the infinities as it writes them,
    through its fallback), with the key escaped, or written as it is when the caller says it needs no
    escape. Fails when a plain key's quotes are dropped, or an escaped key's kept twice."""
    expected = plain_json(
        {_MARK: _VERSION, "key": key, "stored_at": stored_at, "ttl": ttl, "value": [1]}, compact=True
    )
    assert _envelope(key, stored_at, ttl, "[1]") == expected
    if plain_json(key) == f'"{key}"':  # a key JSON writes as it is (what ``Plan.plain_keys`` vouches for)
        assert _envelope(key, stored_at, ttl, "[1]", True) == expected


def test_an_envelope_with_a_finite_time_asks_no_isfinite(monkeypatch):
    """A page's envelope (a TTL seen before, a finite fetch time) calls no ``math.isfinite``: fails on the
    code before (one a page). A time that is not finite still goes to ``plain_json``'s text."""
    ttl = 0.0
    _envelope("k", 1.5, ttl, "[]")  # the TTL's text kept
    calls: list[float] = []
    real = math.isfinite
    monkeypatch.setattr(math, "isfinite", lambda v: calls.append(v) or real(v))
    for n in range(5):
        text = _envelope(f"k{n}", 1796636850.125 + n, ttl, "[]", True)
        assert (
            text
            == f'{{"{_MARK}":{_VERSION},"key":"k{n}","stored_at":{1796636850.125 + n!r},"ttl":0.0,"value":[]}}'
        )
    assert calls == []
    assert '"stored_at":Infinity,' in _envelope("k", math.inf, ttl, "[]") and calls == [math.inf]


# -- the cache's write, by position --------------------------------------------------------------------


def test_the_fetch_hands_the_cache_its_page_by_position(tmp_path, monkeypatch):
    """``Inventory._complete`` passes ``InventoryCache.store`` the fetch time and its two flags by position
    (main: three keywords a page, each matched by name), and ``store`` passes ``marked_json_of`` its flag
    the same way; the rows are a run's through the keywords."""
    from _cache_rows import cache_rows
    from _inventory_runs import small_run

    from greenfetch import _jsonable
    from greenfetch.inventory import _cache as cache_module
    from greenfetch.inventory import _plan
    from greenfetch.testing import inventory_server

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    real_store, real_marked = cache_module.InventoryCache.store, _jsonable.marked_json_of
    stores: list[tuple[int, tuple[str, ...]]] = []
    marks: list[tuple[int, tuple[str, ...]]] = []

    def store(self, key, value, *args, **kwargs):
        if key.startswith(_plan._CACHE_VERSION + ":"):  # a page's (``set`` of a region list: a keyword)
            stores.append((len(args), tuple(sorted(kwargs))))
        return real_store(self, key, value, *args, **kwargs)

    def marked_json_of(value, *args, **kwargs):
        marks.append((len(args), tuple(sorted(kwargs))))
        return real_marked(value, *args, **kwargs)

    def keywords(self, key, value, stored_at=None, str_keys=False, plain_key=False):
        return real_store(self, key, value, stored_at=stored_at, str_keys=str_keys, plain_key=plain_key)

    with inventory_server(items=3) as server:
        monkeypatch.setattr(cache_module.InventoryCache, "store", keywords)
        small_run(server.url, tmp_path / "before", tmp_path / "cache-before")
        monkeypatch.setattr(cache_module.InventoryCache, "store", store)
        monkeypatch.setattr(cache_module, "marked_json_of", marked_json_of)
        report = small_run(server.url, tmp_path / "after", tmp_path / "cache-after")
    assert report.summary["records"] == 8
    assert stores == [(3, ())] * 8, stores
    assert len(marks) >= 8 and set(marks) == {(1, ())}, marks  # the pages and the region lists
    masked = [
        {key: re.sub('"stored_at":[^,]*,', "", text) for key, text in cache_rows(tmp_path / name).items()}
        for name in ("cache-before", "cache-after")
    ]
    assert masked[0] == masked[1] and len(masked[0]) == 10  # 8 pages, 2 region lists
