"""The inventory command's own cost, part 14 (docs/performance/inventory-cost.md): a page's cache write
and record after its fetch.

- a new fetch time of whole milliseconds is written from its integer milliseconds, not through
  ``repr``'s shortest-digits search: the text ``repr`` gives (Hypothesis over the whole range, its
  edges and the floats next to whole milliseconds);
- a json run's close sweeps each file's stale temporary files without compiling a glob pattern for
  each new file name: the entries the glob found (Hypothesis over directories of near-miss names).

Each test fails on the code before (or on the mutation its docstring names).
"""

from __future__ import annotations

import fnmatch
import math
import os
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from greenfetch.inventory import _cache
from greenfetch.inventory._cache import _float_text
from greenfetch.inventory._fileio import _temporaries, sweep_stale
from greenfetch.inventory._sinks import FileSink
from greenfetch.inventory._types import record

# -- a fetch time's text from its whole milliseconds ---------------------------------------------------

_MS = st.integers(min_value=0, max_value=10**16) | st.sampled_from(
    [999, 1000, 1001, 1010, 1100, 10**12, 10**15 - 1, 10**15, 10**15 + 1, 1796636850000, 1796636850120]
)


@settings(deadline=None, max_examples=2000)
@given(ms=_MS, nudge=st.sampled_from([0, 1, -1]))
@example(ms=10**15 - 1, nudge=0)  # the last of 15 digits: 999999999999.999
@example(ms=1000, nudge=-1)  # just below a second
@example(ms=9000000000000021, nudge=0)  # 16 digits: the double is also 9000000000000.022's
def test_a_new_fetch_times_text_is_its_repr(ms, nudge):
    """A time of whole milliseconds (``ms / 1000``) and the doubles next to it (not whole: ``repr``),
    each written afresh (the kept text cleared): ``repr``'s text. Fails when ``_MILLIS`` drops the
    trailing zeros of none (``.100``), when the check of whole milliseconds is dropped, or when the 1e12
    bound is raised to 1e13 (16 digits: two milliseconds can share a double)."""
    value = ms / 1000
    if nudge:
        value = math.nextafter(value, math.inf if nudge > 0 else -math.inf)
    for sign in (1.0, -1.0):
        _cache._last = (0.0, "0.0")
        assert _float_text(sign * value) == repr(sign * value)


def test_a_new_whole_millisecond_time_is_written_without_repr(monkeypatch):
    """Each page of a run fetched in its own millisecond writes its time without ``repr`` (~6k
    instructions of ``_Py_dg_dtoa`` a page in the command, where few pages share one): fails on the code
    before, which called ``repr`` at every new time. A time that is not whole milliseconds still does."""
    calls: list[float] = []
    monkeypatch.setattr(_cache, "repr", lambda v: calls.append(v) or float.__repr__(v), raising=False)
    times = [1796636850.0, 1796636850.001, 1796636850.01, 1796636850.12, 1796636850.999, 1.0]
    texts = [_float_text(t) for t in times]
    assert texts == [
        "1796636850.0",
        "1796636850.001",
        "1796636850.01",
        "1796636850.12",
        "1796636850.999",
        "1.0",
    ]
    assert calls == []
    assert _float_text(1796636850.0005) == "1796636850.0005" and calls == [1796636850.0005]
    assert _float_text(1e12) == "1000000000000.0" and calls[-1] == 1e12  # past the bound: repr's


# -- a file's stale temporary files, found without a glob pattern --------------------------------------

_NAME_CHARS = st.sampled_from(list("ab.-_json0123456789"))
_NAMES = st.text(_NAME_CHARS, min_size=0, max_size=8)


def _near(name: str) -> st.SearchStrategy[str]:
    """Entry names around ``.NAME.*.tmp``: matches, and the misses next to them."""
    middle = st.text(st.sampled_from(list("ab.1")), max_size=4)
    return st.one_of(
        middle.map(lambda m: f".{name}.{m}.tmp"),
        middle.map(lambda m: f".{name}{m}.tmp"),
        middle.map(lambda m: f"{name}.{m}.tmp"),
        middle.map(lambda m: f".{name}.{m}.tm"),
        st.sampled_from([f".{name}.tmp", f".{name}..tmp", f".{name}.", ".tmp", f".{name}.x.tmp.tmp"]),
        _NAMES,
    )


@settings(deadline=None, max_examples=300)
@given(data=st.data(), name=_NAMES)
def test_the_temporaries_are_what_the_glob_found(tmp_path_factory, data, name):
    """``_temporaries(directory, name)`` yields the paths ``Path(directory).glob(f".{name}.*.tmp")``
    yields (files and directories alike), for a name as text and for a pattern (``*``): fails when the
    length bound lets ``.NAME.tmp`` in (the star's dot taken twice) or when the prefix drops its dot."""
    directory = tmp_path_factory.mktemp("sweep")
    entries = data.draw(st.lists(_near(name), max_size=12, unique=True))
    for entry in entries:
        if entry in ("", ".", ".."):
            continue
        if entry.endswith("1.tmp"):
            (directory / entry).mkdir()
        else:
            (directory / entry).write_text("x")
    for pattern in (name, "*"):
        found = sorted(map(str, _temporaries(directory, pattern)))
        assert found == sorted(map(str, Path(directory).glob(f".{pattern}.*.tmp")))


def test_no_directory_has_no_temporaries(tmp_path):
    """A directory missing, or a file where it should be: no entries, as the glob finds none."""
    (tmp_path / "file").write_text("x")
    for where in (tmp_path / "missing", tmp_path / "file"):
        assert (
            list(_temporaries(where, "ec2.vpcs.json")) == list(Path(where).glob(".ec2.vpcs.json.*.tmp")) == []
        )


def test_a_json_runs_close_compiles_no_glob_pattern(tmp_path, monkeypatch):
    """A json run's close writes a file for each resource type, each name new to the process: its
    sweep of stale temporary files compiles no pattern (fnmatch's regular expression, ~0.5M
    instructions a file). Fails on the code before: one a file."""
    translated: list[str] = []
    translate = fnmatch.translate
    monkeypatch.setattr(fnmatch, "translate", lambda pat: translated.append(pat) or translate(pat))
    sink = FileSink(tmp_path / "out", "json")
    for kind in ("part14.one", "part14.two", "part14.three"):
        sink.add(record(kind, "111111111111", "eu-west-1", [{"a": 1}]))
    dead = tmp_path / "out" / ".part14.one.json.999999999.abcd.tmp"  # a killed writer's (no such PID)
    dead.write_text("{half")
    written = sink.close()
    assert [p.name for p in written] == ["part14.one.json", "part14.three.json", "part14.two.json"]
    assert translated == []
    assert not dead.exists()  # still swept


def test_the_sweep_keeps_a_live_writers_file_and_others(tmp_path):
    """``sweep_stale`` through the text match removes a dead writer's file only: this process's own,
    another name's and a look-alike without the dot stay."""
    dead = tmp_path / ".x.json.999999999.abcd.tmp"
    mine = tmp_path / f".x.json.{os.getpid()}.abcd.tmp"
    other = tmp_path / ".y.json.999999999.abcd.tmp"
    alike = tmp_path / ".x.jsonl.999999999.abcd.tmp"
    for path in (dead, mine, other, alike):
        path.write_text("x")
    assert sweep_stale(tmp_path, "x.json") == 1
    assert not dead.exists() and mine.exists() and other.exists() and alike.exists()
