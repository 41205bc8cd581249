"""The inventory cache's local file (``inventory._pagefile``): one SQLite file of entries, written in
short transactions; what a killed process, a second process, a fork, a damaged file or another
program's database under its name do to it."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap

from _cache_rows import cache_file, cache_rows

from greenfetch.inventory._cache import InventoryCache
from greenfetch.inventory._pagefile import BATCH, NAME, WAIT, PageFile


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _refusals() -> tuple[list[BaseException], object]:
    seen: list[BaseException] = []
    return seen, seen.append


def test_an_entry_is_the_envelopes_json_and_replaced_in_place(tmp_path):
    cache = InventoryCache(60, tmp_path / "cache", clock=lambda: 1000.0)
    items = [{"Name": "caf\u00e9", "When": dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)}]
    cache.set("inv1:k", items, stored_at=999.5)
    cache.flush()
    assert cache_rows(tmp_path / "cache") == {
        "inv1:k": json.dumps(
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
    }
    cache.set("inv1:k", [1], stored_at=999.9)  # replaced in place, never a second entry
    cache.close()
    assert list(cache_rows(tmp_path / "cache")) == ["inv1:k"]
    assert InventoryCache(60, tmp_path / "cache", clock=lambda: 1000.0).lookup("inv1:k") == ([1], 999.9)
    assert sorted(os.listdir(tmp_path / "cache")) == [NAME]  # closed: no log left beside it


def test_entries_wait_for_a_batch_or_a_while_and_never_longer(tmp_path):
    """A transaction holds ``BATCH`` entries, or fewer once the first has waited ``WAIT`` seconds; a
    reader in another connection sees them only then (one transaction, not one per entry)."""
    ticks = Ticks()
    seen, refused = _refusals()
    pages = PageFile(str(tmp_path), refused, clock=ticks)
    for n in range(BATCH - 1):
        pages.put(f"k{n}", "{}")
    assert cache_rows(tmp_path) == {} and pages.get("k0") == "{}"  # waiting, and read from where it waits
    pages.put(f"k{BATCH - 1}", "{}")
    assert len(cache_rows(tmp_path)) == BATCH
    pages.put("late", "{}")
    ticks.now += WAIT - 0.01
    pages.put("later", "{}")
    assert len(cache_rows(tmp_path)) == BATCH
    ticks.now += 0.01
    pages.put("last", "{}")  # the first waiting one has waited WAIT: all three go
    assert len(cache_rows(tmp_path)) == BATCH + 3 and seen == []


def test_the_directory_removed_under_a_run_is_made_again(tmp_path):
    """``rm -rf`` of the cache directory while a run writes: the next transaction makes the directory
    (0700) and a new file, rather than writing into the removed one."""
    cache = InventoryCache(0, tmp_path / "cache")
    cache.set("a", [1])
    cache.flush()
    for name in os.listdir(tmp_path / "cache"):
        os.unlink(tmp_path / "cache" / name)
    os.rmdir(tmp_path / "cache")
    cache.set("b", [2])
    cache.flush()
    assert list(cache_rows(tmp_path / "cache")) == ["b"]
    assert stat.S_IMODE(os.stat(tmp_path / "cache").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(cache_file(tmp_path / "cache")).st_mode) == 0o600


def test_a_damaged_file_is_made_again(tmp_path):
    with open(cache_file(tmp_path), "wb") as handle:
        handle.write(b"not a database, and long enough to look like one's header" * 20)
    seen, refused = _refusals()
    pages = PageFile(str(tmp_path), refused)
    assert pages.get("k") is None
    pages.put("k", "{}")
    pages.close()
    assert cache_rows(tmp_path) == {"k": "{}"} and seen == []


def test_another_programs_database_under_the_name_is_left_alone(tmp_path, caplog):
    with sqlite3.connect(cache_file(tmp_path)) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('mine')")
    before = open(cache_file(tmp_path), "rb").read()
    cache = InventoryCache(60, tmp_path)
    with caplog.at_level(logging.WARNING, logger="greenfetch.inventory"):
        for n in range(3):
            cache.set(f"k{n}", n)
            cache.flush()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "another program's database" in warnings[0] and NAME in warnings[0]
    assert cache.get("k1") == 1  # from memory: the run goes on without the local file
    assert InventoryCache(60, tmp_path).get("k1") is None
    assert open(cache_file(tmp_path), "rb").read() == before


_WRITER = textwrap.dedent(
    """
    import sys
    from greenfetch.inventory._pagefile import BATCH, PageFile

    pages = PageFile(sys.argv[1], print)
    for n in range(3 * BATCH + 10):  # three whole transactions, then ten entries waiting
        pages.put(f"{sys.argv[2]}{n}", '{"n": %d}' % n)
    print("ready", flush=True)
    sys.stdin.read()
    pages.close()
    """
)


def test_a_killed_writer_loses_only_what_waited_and_leaves_a_whole_file(tmp_path):
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path), "k"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline().strip() == "ready"
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    rows = cache_rows(tmp_path)
    assert len(rows) == 3 * BATCH and rows["k0"] == '{"n": 0}'
    with sqlite3.connect(cache_file(tmp_path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    pages = PageFile(str(tmp_path), print)  # and a later run writes on
    pages.put("after", "{}")
    pages.close()
    assert len(cache_rows(tmp_path)) == 3 * BATCH + 1


def test_processes_writing_one_file_at_once_lose_nothing(tmp_path):
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path), prefix],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for prefix in ("a", "b", "c")
    ]
    for writer in writers:
        assert writer.stdout.readline().strip() == "ready"
    for writer in writers:
        writer.stdin.close()  # each closes its file (its waiting entries written) and exits
        assert writer.wait(timeout=60) == 0
    rows = cache_rows(tmp_path)
    assert len(rows) == 3 * (3 * BATCH + 10)
    assert {key[0] for key in rows} == {"a", "b", "c"}


def test_a_forked_child_writes_through_a_connection_of_its_own(tmp_path):
    pages = PageFile(str(tmp_path), print)
    pages.put("parent-written", "{}")
    pages.flush()  # the parent's connection is open now
    pages.put("parent-waiting", "{}")
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        try:
            pages.put("child", "{}")
            pages.close()
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    assert set(cache_rows(tmp_path)) == {"parent-written", "child"}  # the parent's waiting entry is its own
    pages.close()
    assert set(cache_rows(tmp_path)) == {"parent-written", "parent-waiting", "child"}
    with sqlite3.connect(cache_file(tmp_path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_cache_let_go_without_close_writes_what_waited(tmp_path):
    """The Python API's ``Inventory(cache=InventoryCache(...))`` never closes its cache: the entries
    waiting for a transaction are written when the cache goes (or when the interpreter exits)."""
    cache = InventoryCache(60, tmp_path)
    cache.set("k", 1)
    del cache
    assert list(cache_rows(tmp_path)) == ["k"]
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from greenfetch.inventory import InventoryCache;"
            "keep = InventoryCache(60, sys.argv[1]); keep.set('exit', 2)",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert set(cache_rows(tmp_path)) == {"k", "exit"}


def test_entries_written_ask_the_kernel_for_no_pid(tmp_path):
    """The fork check compares a PID kept per process (refreshed in a forked child), not ``getpid``
    per entry: a system call each (the fork test above holds the child's refresh)."""
    pages = PageFile(str(tmp_path), print)
    asked = []

    def profile(frame, event, arg):
        if event == "c_call" and arg is os.getpid:
            asked.append(1)

    sys.setprofile(profile)
    try:
        for n in range(2 * BATCH + 1):
            pages.put(f"k{n}", "{}")
    finally:
        sys.setprofile(None)
    pages.close()
    assert asked == [] and len(cache_rows(tmp_path)) == 2 * BATCH + 1
