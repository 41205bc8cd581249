"""The inventory command's own cost, part 11 (docs/performance/inventory-cost.md): a fetched page's cache row and file
record cost less to write, and are the same rows and bytes.

- the cache file's transaction is one ``INSERT`` of its rows (a statement run per row before): the same
  rows, in the same order, as ``executemany`` of the rows gives;
- the envelope's fetch time is written without ``repr``'s shortest-digits search when the page before
  had the same one: the text ``repr`` gives, for any float;
- the file sink's record head is written from fields kept by (name, value), around the items' text
  copied once: ``to_json(rec)``'s text, for any record.
"""

from __future__ import annotations

import itertools
import os
import sqlite3

from _cache_rows import cache_file
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfetch._jsonable import json_string, jsonable, marked_json, plain_json, to_json
from greenfetch.inventory import _cache, _pagefile, _sinks
from greenfetch.inventory._cache import _float_text
from greenfetch.inventory._pagefile import BATCH, PageFile
from greenfetch.inventory._sinks import _dumps


def _rows(directory) -> list[tuple[str, str]]:
    """The file's entries: (key, text), by key."""
    if not os.path.exists(cache_file(directory)):
        return []
    with sqlite3.connect(cache_file(directory)) as conn:
        return list(conn.execute("SELECT key, body FROM entries ORDER BY key"))


def _executemany(conn: sqlite3.Connection, rows: list[tuple[str, str]]) -> None:
    """The transaction's insert as it was: a statement run per row, a replaced row deleted first."""
    conn.executemany("INSERT OR REPLACE INTO entries (key, body) VALUES (?, ?)", rows)


def _raise(exc: BaseException) -> None:
    raise exc


_keys = st.sampled_from(["inv1:a", "inv1:b", "k\u00e9", "", "x" * 300]) | st.text(max_size=6)
_bodies = st.text(max_size=40) | st.sampled_from(["", "\0", '{"a":1}', "caf\u00e9 \ud7ff", "x" * 5000])
# a run of writes: (key, text) puts with a flush now and then (None), more than a batch in all
_writes = st.lists(st.tuples(_keys, _bodies) | st.none(), min_size=1, max_size=2 * BATCH + 10)


def _written(directory, writes, statements) -> list[tuple[str, str]]:
    saved = _pagefile._INSERTS
    _pagefile._INSERTS = statements
    try:
        pages = PageFile(str(directory), _raise)
        for write in writes:
            if write is None:
                pages.flush()
            else:
                pages.put(*write)
        pages.close()
    finally:
        _pagefile._INSERTS = saved
    return _rows(directory)


@settings(deadline=None, max_examples=25)  # three SQLite files an example: ~0.1 s
@given(writes=_writes)
def test_a_transaction_of_one_insert_writes_the_rows_executemany_wrote(tmp_path_factory, writes):
    """Any run of puts and flushes leaves the file holding the entries ``executemany`` of each
    transaction's rows left (the same keys and texts, replaced keys included), through the upsert and
    through the replace an older SQLite gets."""
    saved = _pagefile._insert
    _pagefile._insert = _executemany
    try:
        before = _written(tmp_path_factory.mktemp("pages"), writes, _pagefile._INSERTS)
    finally:
        _pagefile._insert = saved
    for upsert in (True, False):
        statements = _pagefile._statements(upsert)
        assert _written(tmp_path_factory.mktemp("pages"), writes, statements) == before, upsert


def test_a_replaced_entry_is_updated_in_its_row(tmp_path):
    """An entry written again keeps its row (rowid): updated in place, not deleted and inserted again
    (the code before gave it a new row, which dirtied the key's index page and two table pages)."""
    pages = PageFile(str(tmp_path), _raise)
    for n in range(10):
        pages.put(f"k{n}", "{}")
    pages.flush()
    assert pages._conn is not None
    first = dict(pages._conn.execute("SELECT key, rowid FROM entries"))
    pages.put("k3", '{"again":1}')
    pages.put("k7", "[]")
    pages.close()
    with sqlite3.connect(cache_file(tmp_path)) as conn:
        assert dict(conn.execute("SELECT key, rowid FROM entries")) == first
        assert conn.execute("SELECT body FROM entries WHERE key = 'k3'").fetchone() == ('{"again":1}',)


def test_a_transaction_runs_one_insert_statement(tmp_path):
    """A batch of entries is one ``INSERT`` statement run (``executemany`` ran it once a row)."""
    pages = PageFile(str(tmp_path), lambda exc: None)
    pages.put("first", "{}")
    pages.flush()
    assert pages._conn is not None
    statements: list[str] = []
    pages._conn.set_trace_callback(statements.append)
    for n in range(BATCH):
        pages.put(f"k{n}", "{}")
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert len(inserts) == 1, len(inserts)
    assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT"
    pages.close()
    assert len(_rows(tmp_path)) == BATCH + 1


_whole_ms = st.integers(min_value=1, max_value=10**16).map(lambda ms: ms / 1000)


@settings(deadline=None)
@given(
    st.floats(allow_nan=False, allow_infinity=False)
    | _whole_ms
    | st.sampled_from([1.0, 1e12, 999999999999.999])
)
def test_a_fetch_times_text_is_its_repr(value):
    """``_float_text`` gives ``repr`` of any finite float, whole milliseconds or not, whatever it wrote
    last (the kept text is only used for the same double)."""
    assert _float_text(value) == repr(value)
    assert _float_text(value) == repr(value)  # now the kept one
    assert _float_text(-value) == repr(-value)


def test_a_fetch_time_the_page_before_had_is_written_without_repr(monkeypatch):
    """Pages fetched in one millisecond (a burst of answers) write their time through one ``repr``
    (``_Py_dg_dtoa``): fails on the code before, whose envelope wrote ``{stored_at!r}`` every time."""
    calls: list[float] = []
    ttl = 0.0
    _cache._envelope("inv1", 1.5, ttl, "[]")  # the TTL's text kept (see the test after this one)
    monkeypatch.setattr(_cache, "repr", lambda v: calls.append(v) or float.__repr__(v), raising=False)
    # not whole milliseconds: those skip ``repr`` anyway (tests/test_page_part14.py)
    texts = [_cache._envelope(f"inv1:{n}", 1796636850.7365, ttl, "[]") for n in range(5)]
    assert all('"stored_at":1796636850.7365,' in text for text in texts)
    assert calls == [1796636850.7365]  # once, whichever time was written before
    assert _float_text(0.0) == "0.0" and _float_text(-0.0) == "-0.0"  # equal, but two texts
    assert _float_text(1796636850.7375) == "1796636850.7375" and calls[-1] == 1796636850.7375


def test_a_caches_ttl_is_written_through_repr_once(monkeypatch):
    """The TTL every page of a cache is written with (its own float object) goes through ``repr`` once
    (~2k instructions even for ``0.0``): fails on the code before, whose envelope wrote ``{ttl!r}`` at
    every page. The zeros, equal but two doubles, keep their two texts."""
    calls: list[float] = []
    monkeypatch.setattr(_cache, "repr", lambda v: calls.append(v) or float.__repr__(v), raising=False)
    ttl = float("3600")
    texts = [_cache._envelope(f"inv1:{n}", 1796636850.5 + n, ttl, "[]") for n in range(5)]
    assert all('"ttl":3600.0,' in text for text in texts)
    assert [c for c in calls if c == ttl] == [ttl]
    zero, minus = float("0"), -float("0")
    assert '"ttl":-0.0,' in _cache._envelope("k", 1.5, minus, "[]")
    assert '"ttl":0.0,' in _cache._envelope("k", 1.5, zero, "[]")
    assert '"ttl":-0.0,' in _cache._envelope("k", 1.5, minus, "[]")


_head_names = st.sampled_from(["resource_type", "account", "region", "status", "error", "caf\u00e9", ""])
_head_values = (
    st.none()
    | st.sampled_from(["ok", "denied", "eu-west-1", "700000000000", "caf\u00e9", '"', "\\", "\0", "\ud800"])
    | st.text(max_size=5)
    | st.integers()
    | st.floats()
)
_items = st.lists(
    st.dictionaries(st.text(max_size=4), st.text(max_size=4) | st.integers(), max_size=3), max_size=3
)


@st.composite
def _any_records(draw):
    """A record's fields in any order around its items, with names that are not text."""
    head = draw(
        st.dictionaries(_head_names | st.integers(min_value=0, max_value=2), _head_values, max_size=6)
    )
    fields = list(head.items())
    fields.insert(draw(st.integers(min_value=0, max_value=len(fields))), ("items", draw(_items)))
    return dict(fields)


def _around_before(rec, items_text: str) -> str:
    """The record's text as ``_sinks._dumps_around`` wrote it before part 9 (the reference)."""
    parts = []
    for key, value in rec.items():
        if key == "items":
            parts.append('"items": ' + items_text)
        elif type(key) is str and key.isascii() and (value is None or type(value) is str and value.isascii()):
            parts.append(json_string(key) + (": null" if value is None else ": " + json_string(value)))
        else:
            break
    else:
        return "{" + ", ".join(parts) + "}"
    before: dict = {}
    after: dict = {}
    part = before
    for key, value in rec.items():
        if key == "items":
            part = after
        else:
            part[key] = value
    before, after = jsonable(before), jsonable(after)
    head = plain_json(before)[:-1] + (", " if before else "") + '"items": ' + items_text
    return head + (", " + plain_json(after)[1:] if after else "}")


@settings(deadline=None)
@given(st.lists(_any_records(), min_size=1, max_size=4))
def test_a_record_from_kept_fields_is_what_it_was(records):
    """Records written one after another (the kept fields of one used by the next) are the text the
    code before wrote, whatever their fields' order, names and values; ``to_json``'s where the names
    are text (two names that meet as text are ``jsonable``'s to merge, as before)."""
    for rec in records:
        marked = marked_json(jsonable(rec["items"]))
        text = _dumps(rec, None, marked)
        assert text == _around_before(rec, marked.replace("\0", " "))
        if all(type(key) is str for key in rec):
            assert text == to_json(rec)


class Text(str):
    pass


_shaped_values = _head_values | st.builds(Text, st.sampled_from(["ok", "eu-west-1", "x"]))


@st.composite
def _shaped_records(draw):
    """Records in ``record``'s shape (its keys in its order) whose head values repeat, so the fields of
    one are kept when the next is written: text, None, non-ASCII, numbers, a str subclass."""
    head = [draw(st.sampled_from(["kms.keys", "caf\u00e9.x"]) | _shaped_values) for _ in range(5)]
    rec = dict(zip(("resource_type", "account", "region", "status", "error"), head, strict=True))
    return {**dict(list(rec.items())[:3]), "items": draw(_items), **dict(list(rec.items())[3:])}


@settings(deadline=None)
@given(st.lists(_shaped_records(), min_size=1, max_size=6).flatmap(lambda rs: st.permutations(rs + rs)))
def test_a_record_in_records_shape_is_what_it_was(records):
    """Records of ``record``'s shape, each written twice in any order (the second time from its kept
    fields, without the loop), are the text the code before wrote, and ``to_json``'s."""
    for rec in records:
        marked = marked_json(jsonable(rec["items"]))
        text = _dumps(rec, None, marked)
        assert text == _around_before(rec, marked.replace("\0", " ")) == to_json(rec)


def _forget_fields(monkeypatch) -> None:
    """The kept fields' tables emptied for a test (and their entries put back after)."""
    for name, table in _sinks._FIELDS.items():
        monkeypatch.setitem(_sinks._FIELDS, name, table)  # the same table, restored as it was
        for value in list(table):
            monkeypatch.delitem(table, value)


def test_a_record_seen_before_is_written_from_its_fields_values(monkeypatch):
    """A record of ``record``'s shape whose head was seen before is written from each field's text found
    by its value (one table a name: no (name, value) tuple made, hashed and compared a field), without
    the loop over its fields (fails on the code before: five tuples looked up in ``_FIELDS``)."""

    class Spy(dict):
        def get(self, key, *default):
            looked.append(key)
            return super().get(key, *default)

    rec = {"resource_type": "kms.keys", "account": "7" * 12, "region": "eu-west-1", "items": []}
    rec |= {"status": "ok", "error": None}
    first = _dumps(rec, None, "[]")
    looked: list = []
    monkeypatch.setattr(_sinks, "_FIELDS", Spy(_sinks._FIELDS), raising=False)
    assert _dumps(dict(rec), None, "[]") == first == to_json(rec)
    assert looked == []
    assert _sinks._ACCOUNTS["7" * 12] == '"account": "777777777777"'


def test_a_head_seen_before_is_not_encoded_again(monkeypatch):
    """A record whose head fields a record before it had encodes none of them again (the code before
    encoded its five fields' names and values at every record)."""
    _forget_fields(monkeypatch)
    calls = []
    encode = _sinks.json_string
    monkeypatch.setattr(_sinks, "json_string", lambda text: calls.append(text) or encode(text))
    rec = {
        "resource_type": "kms.keys",
        "account": "7" * 12,
        "region": "eu-west-1",
        "items": [],
        "status": "ok",
        "error": None,
    }
    first = _dumps(rec, None, marked_json([{"KeyId": "k"}]))
    assert len(calls) == 9  # five names, four values (None is written as null)
    calls.clear()
    assert _dumps(rec, None, marked_json([{"KeyId": "j"}])) == first.replace('"k"', '"j"')
    assert calls == []


def test_kept_fields_are_bounded(monkeypatch):
    """The kept fields never grow past their bound (a caller with endless distinct values), and a name
    that is not ``record``'s is not kept at all (a caller with endless distinct names)."""
    _forget_fields(monkeypatch)
    for n in itertools.islice(itertools.count(), _sinks._FIELDS_KEPT + 10):
        _dumps({"account": str(n), "items": []}, None, "[]")
    assert 0 < len(_sinks._FIELDS["account"]) <= _sinks._FIELDS_KEPT
    for n in range(10):
        assert _dumps({f"name{n}": "x", "items": []}, None, "[]") == f'{{"name{n}": "x", "items": []}}'
    assert list(_sinks._FIELDS) == ["resource_type", "account", "region", "status", "error"]


def test_a_signatures_strings_seen_before_are_not_encoded_again(monkeypatch):
    """A page's cache key: the service, operation, region, identity and endpoint a signature before had
    are not encoded again (the code before encoded its five strings at every signature), and the
    signature is the one the code before gave (``tests/test_inventory_cost.py`` holds the formula)."""
    from test_inventory_cost import _old_signature as old_signature

    from greenfetch import _models
    from greenfetch._models import Request

    monkeypatch.setattr(_models, "_TEXTS", {}, raising=False)  # (the code before had none)
    calls: list[str] = []
    real = _models._ascii
    monkeypatch.setattr(_models, "_ascii", lambda text: calls.append(text) or real(text))
    role = "arn:aws:iam::111111111111:role/R"
    first = Request(
        "kms", "ListKeys", {}, region="eu-west-1", role=role, endpoint_url="http://h:1", paginate=True
    )
    assert first.signature == old_signature(first) and len(calls) == 5
    calls.clear()
    second = Request(
        "kms", "ListKeys", {}, region="eu-west-1", role=role, endpoint_url="http://h:1", paginate=False
    )
    assert second.signature == old_signature(second) != first.signature
    assert calls == []
