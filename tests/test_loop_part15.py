"""The fetch's records on their way to the file sink, part 15 (docs/performance/inventory-cost.md): the
run hands ``FileSink.add`` the cache's texts by position, and a record's text is written in one frame
(``_sinks._dumps``, no ``_dumps_around``). The files are the same (``test_page_write_cost.py`` and
``test_page_json.py`` hold ``_dumps``' parity with ``to_json``)."""

import sys
from collections import Counter

from _inventory_runs import small_run
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfetch._jsonable import jsonable, marked_json, to_json
from greenfetch.inventory import _sinks
from greenfetch.inventory._types import record

_TEXT = st.one_of(st.none(), st.text(max_size=8))
_ITEMS = st.lists(
    st.one_of(st.text(max_size=6), st.dictionaries(st.text(max_size=4), st.integers(), max_size=3)),
    max_size=3,
)


def _frames(call):
    """The Python functions ``call()`` runs, counted by name."""
    seen: Counter[str] = Counter()

    def profile(frame, event, arg):
        if event == "call":
            seen[frame.f_code.co_name] += 1

    sys.setprofile(profile)
    try:
        result = call()
    finally:
        sys.setprofile(None)
    return result, seen


def test_a_records_text_from_the_caches_is_one_frame():
    """``_dumps`` with the cache's text writes the record itself (main: a second frame, ``_dumps_around``,
    a record), the first time (the loop) and again (the kept fields)."""
    for _ in range(2):
        rec = record("ssm.parameters", "000000000001", "us-east-1", [{"Name": "a"}])
        text, seen = _frames(lambda rec=rec: _sinks._dumps(rec, None, marked_json(jsonable(rec["items"]))))
        assert text == to_json(rec)
        assert seen["_dumps"] == 1 and seen["_dumps_around"] == 0, seen


@settings(max_examples=200, deadline=None)
@given(
    kind=st.text(max_size=8),
    account=_TEXT,
    region=_TEXT,
    items=_ITEMS,
    status=_TEXT,
    error=_TEXT,
    plain=st.booleans(),
)
def test_a_records_text_is_to_jsons_from_either_text_of_its_items(
    kind, account, region, items, status, error, plain
):
    """Whatever the head (text, None, non-ASCII), from ``marked_json`` or from ``jsonable``'s items alone:
    the text ``to_json`` writes of the record."""
    rec = {"resource_type": kind, "account": account, "region": region, "items": items}
    rec.update(status=status, error=error)
    given_text = (jsonable(items), None) if plain else (None, marked_json(jsonable(items)))
    assert _sinks._dumps(rec, *given_text) == to_json(rec)
    assert _sinks._dumps(rec) == to_json(rec)


def test_the_run_hands_the_file_sink_its_texts_by_position(tmp_path, monkeypatch):
    """``run_inventory`` passes ``FileSink.add`` the cache's texts by position (main: two keywords a
    record, each matched by name), and the files are what a sink that takes them as keywords writes."""
    from greenfetch.testing import inventory_server

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    real = _sinks.FileSink.add
    calls: list[tuple[int, tuple[str, ...]]] = []

    def add(self, rec, *args, **kwargs):
        calls.append((len(args), tuple(sorted(kwargs))))
        return real(self, rec, *args, **kwargs)

    with inventory_server(items=3) as server:
        small_run(server.url, tmp_path / "before", tmp_path / "cache")
        monkeypatch.setattr(_sinks.FileSink, "add", add)
        report = small_run(server.url, tmp_path / "after", tmp_path / "cache")
    assert report.summary["records"] == 8
    assert calls == [(3, ())] * 8, calls
    for name in ("ssm.parameters.json", "kms.keys.json"):
        assert (tmp_path / "before" / name).read_bytes() == (tmp_path / "after" / name).read_bytes()


def test_a_record_seen_before_is_read_by_key_not_through_values():
    """A record of ``record``'s shape whose fields were all seen is read by key (main unpacked
    ``rec.values()``: a dict iterator a record); its text is ``to_json``'s."""
    rec = record("kms.keys", "000000000002", "eu-west-1", [{"KeyId": "k"}])
    marked = marked_json(jsonable(rec["items"]))
    _sinks._dumps(rec, None, marked)  # its fields kept
    seen: Counter[str] = Counter()

    def profile(frame, event, arg):
        if event == "c_call":
            seen[arg.__name__] += 1

    sys.setprofile(profile)
    try:
        text = _sinks._dumps(rec, None, marked)
    finally:
        sys.setprofile(None)
    assert text == to_json(rec)
    assert seen["values"] == 0 and seen["items"] == 0, seen


def test_a_file_sink_alone_gets_each_record_without_on_each(tmp_path, monkeypatch):
    """With a file sink alone (no table, nothing kept, no ``on_record``) each record goes straight to
    ``FileSink.add`` (main: through ``on_each``, a frame a record), and ``plain_items`` is not asked
    when the cache's text is there (main: asked every record); ``keep_records`` still goes through
    ``on_each`` and keeps every record. The files are the same either way."""
    import greenfetch.inventory as inventory
    from greenfetch.testing import inventory_server

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    plain = inventory.run_inventory

    def run(out, **extra):
        monkeypatch.setattr(inventory, "run_inventory", lambda engine, **kw: plain(engine, **kw, **extra))
        return _frames(lambda: small_run(server.url, out, tmp_path / "cache"))

    with inventory_server(items=3) as server:
        report, alone = run(tmp_path / "alone")
        kept, through = run(tmp_path / "kept", keep_records=True)
    assert report.summary["records"] == 8
    assert alone["on_each"] == 0 and alone["plain_items"] == 0 and alone["items_json"] == 8, alone
    assert alone["add"] >= 8 and alone["_dumps"] == 8, alone
    assert through["on_each"] == 8 and len(kept.records) == 8, through
    for name in ("ssm.parameters.json", "kms.keys.json"):
        assert (tmp_path / "alone" / name).read_bytes() == (tmp_path / "kept" / name).read_bytes()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["111111111111", "222222222222", "0", "A", "a", "\u00e9"]),
            st.sampled_from(["us-east-1", "eu-west-1", "global", "*", "us-east-1 ", ""]),
            st.sampled_from(["ssm.parameters", "kms.keys"]),
            st.integers(0, 3),
        ),
        max_size=30,
    )
)
def test_a_json_file_is_sorted_by_account_and_region_ties_in_arrival(tmp_path_factory, arrivals):
    """Each type's file holds its records by (account, region), records of one pair in the order they
    came (the stable sort by the pair, as before), though no key function makes a pair a record (main:
    ``sorted(..., key=itemgetter(0, 1))``)."""
    out = tmp_path_factory.mktemp("sorted")
    sink = _sinks.FileSink(out, "json")
    recs = [record(kind, account, region, list(range(n))) for account, region, kind, n in arrivals]
    for rec in recs:
        sink.add(rec, 1.0, plain_items=jsonable(rec["items"]), items_json=marked_json(jsonable(rec["items"])))
    keys = []
    real = sorted

    def spy(values, **kwargs):
        keys.append(kwargs.get("key"))
        return real(values, **kwargs)

    _sinks.sorted = spy  # the module's own name: the builtin for every other caller
    try:
        written = sink.close()
    finally:
        del _sinks.sorted
    for path in written:
        kind = path.name[: -len(".json")]
        mine = [r for r in recs if r["resource_type"] == kind]
        expected = real(mine, key=lambda r: (r["account"], r["region"]))
        assert path.read_text() == "[\n" + ",\n".join(map(to_json, expected)) + "\n]\n"
    assert all(key is None for key in keys), keys
