"""Instructions a page of the inventory command's own write path (callgrind): the cache entry, its key, the
file sink's record, counted alone, for several source trees side by side.

    python scripts/pagecost.py PAGES.pickle [--reps R] [TREE...]
    python scripts/pagecost.py --command N TREE...

``PAGES.pickle`` holds what a real command run gave ``InventoryCache.store`` (key, items, fetched_at) and
``FileSink.add`` (the record, fetched_at) (``--capture`` makes it: the section's command, 2 accounts x 2
regions x the 6 JSON types on the inventory loopback server). Each TREE (put first on PYTHONPATH; default
this one) runs a child under ``valgrind --tool=callgrind --instr-atstart=no``; each piece runs in its own
window (``percall._Window``) over the pages repeated R times (each repetition its own keys, so rows are
new, as in a first run), and the count is divided by the pages. Pieces:

- ``signature``: ``Request.signature`` of each page's request (the cache key's hash).
- ``store``: ``InventoryCache.store`` with a TTL of 0 into a fresh directory, told that the items' keys
  are all text where the tree's ``store`` takes it (``str_keys``: the command's fetch says so of
  botocore's answers) (its flushes included: a
  transaction every 64 pages, and the last at the end).
- ``store, replacing``: the same again, every key written before (a rerun, an expired page).
- ``store, no directory``: the same without the local tier: the entry's text alone.
- ``add``: ``FileSink.add`` (json) of each record with the cache's text of its items.
- ``close``: the json files written from the kept records.

``--command N``: the same pieces inside the command instead (every positional argument a TREE): the
section's command (N accounts x 8 regions x the 6 JSON types, pages of 5 items, ``--out DIR --cache-ttl
0 --no-progress -c 64``, the clock slowed as ``cmdcost.py`` slows it, ``PYTHONHASHSEED=0``) under
``valgrind --tool=callgrind --collect-atstart=no``, counting switched on (``CALLGRIND_TOGGLE_COLLECT``)
only inside ``Inventory._fetched`` (the record, the cache key, the cache row, the summary), each unit
``Plan.units`` makes, ``FileSink.add``/``close`` and ``InventoryCache.close`` (the last transaction),
divided by the records written: what a page costs the command after its fetch, with what the pieces
cost the rest of the run (a young collection they trigger) and without the hub's scheduling, which
moves the command whole by tens of thousands of instructions a list call. It says the cache
transactions the run made (64 pages or 0.5 s of the slowed clock, which callgrind's speed moves) and the
collector's runs inside the pieces: a young collection that lands inside them adds ~4-7k a page to that
run (the command's young generation is large), so compare runs with the same collections; with them,
a tree's runs repeat to ~0.5k.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PIECES = ("signature", "store", "store, replacing", "store, no directory", "add", "close")


def _child(pages_path: str, reps: int) -> None:
    import inspect

    import greenfetch  # noqa: F401
    from greenfetch._models import Request
    from greenfetch.inventory._cache import InventoryCache
    from greenfetch.inventory._sinks import FileSink

    sys.path.insert(0, str(HERE))
    from percall import _Window

    caught = pickle.loads(Path(pages_path).read_bytes())
    adds = caught["add"]
    stores = [s for s in caught["store"] if s[2] is not None]  # the pages (not the region lists)
    requests = [
        Request(
            key.split(":")[2],
            key.split(":")[3],
            {},
            region=rec["region"],
            role=f"arn:aws:iam::{rec['account']}:role/InventoryReader",
        )
        for (key, _, _), (rec, _, _) in zip(stores, adds, strict=False)
    ]
    tmp = tempfile.mkdtemp(prefix="pagecost-")
    said = {"str_keys": True} if "str_keys" in inspect.signature(InventoryCache.store).parameters else {}
    n_store = len(stores) * reps
    n_add = len(adds) * reps

    def window(name: str, n: int):
        print(f"{name}\t{n}", flush=True)
        return _Window(name)

    with window("signature", len(requests) * reps):
        for _ in range(reps):
            for req in requests:
                req.signature  # noqa: B018
    cache = InventoryCache(0, os.path.join(tmp, "cache"))
    with window("store", n_store):
        for r in range(reps):
            for key, items, at in stores:
                cache.store(f"{r}:{key}", items, stored_at=at, **said)
        cache.flush()
    with window("store, replacing", n_store):  # the same keys again: every row replaced
        for r in range(reps):
            for key, items, at in stores:
                cache.store(f"{r}:{key}", items, stored_at=at, **said)
        cache.flush()
    cache.close()
    bare = InventoryCache(0, None)
    marked = []
    with window("store, no directory", n_store):
        for r in range(reps):
            for key, items, at in stores:
                marked.append(bare.store(f"{r}:{key}", items, stored_at=at, **said)[1])
    texts = [bare.store(key, rec["items"], stored_at=at, **said)[1] for rec, at, _ in adds]
    sink = FileSink(os.path.join(tmp, "out"), "json")
    with window("add", n_add):
        for _ in range(reps):
            for (rec, at, _), text in zip(adds, texts, strict=True):
                sink.add(rec, at, items_json=text)
    with window("close", n_add):
        sink.close()


def _capture(out: str) -> None:
    """Run the section's command (2 accounts x 2 regions) with ``store`` and ``add`` recorded."""
    import json

    import greenfetch  # noqa: F401
    from greenfetch.testing import LoopbackServer

    sys.path.insert(0, str(HERE))
    import bench_inventory as inv

    code = f"""
import copy, pickle, sys
import greenfetch
from greenfetch.inventory import _cache, _sinks
caught = {{"store": [], "add": []}}
store, add = _cache.InventoryCache.store, _sinks.FileSink.add
def _store(self, key, value, stored_at=None, *rest, **kw):
    caught["store"].append((key, copy.deepcopy(value), stored_at))
    return store(self, key, value, stored_at, *rest, **kw)
def _add(self, rec, fetched_at=None, **kw):
    caught["add"].append((copy.deepcopy(rec), fetched_at, None))
    return add(self, rec, fetched_at, **kw)
_cache.InventoryCache.store, _sinks.FileSink.add = _store, _add
from greenfetch.cli import run
sys.argv = ["greenfetch", *sys.argv[1:]]
try:
    run()
except SystemExit:
    pass
open({out!r}, "wb").write(pickle.dumps(caught))
"""
    os.environ["GREENFETCH_INVENTORY_PAGES"] = json.dumps({"items": 5})
    with LoopbackServer(handler=inv.HANDLER, latency=0.001) as url, tempfile.TemporaryDirectory() as tmp:
        command = inv._cli_command(url, tmp + "/out", ["700000000000", "700000000001"], inv.REGIONS[:2], 64)
        subprocess.run([sys.executable, "-c", code, *command[3:]], env=inv._cli_env(tmp), check=True)


_TOGGLE_C = "#include <valgrind/callgrind.h>\nvoid gf_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }\n"

# run first in the command's process: the pieces wrapped so that callgrind counts only inside them
_COUNTED = """
import ctypes, functools
from greenfetch.inventory import _cache, _fetch, _plan, _sinks
import gc
_switch = ctypes.CDLL({lib!r}).gf_toggle
_inside, _collections = [False], [0, 0, 0]
def _on():
    _inside[0] = True
    _switch()
def _off():
    _switch()
    _inside[0] = False
def _collected(phase, info):
    if phase == "start" and _inside[0]:
        _collections[info["generation"]] += 1
gc.callbacks.append(_collected)
def _counted(cls, name):
    real = getattr(cls, name)
    @functools.wraps(real)
    def counted(*args, **kwargs):
        _on()
        try:
            return real(*args, **kwargs)
        finally:
            _off()
    setattr(cls, name, counted)
for _cls, _name in ((_fetch.Inventory, "_fetched"), (_sinks.FileSink, "add"), (_sinks.FileSink, "close"),
                    (_cache.InventoryCache, "close")):
    _counted(_cls, _name)
_units = _plan.Plan.units
def units(self, *args):
    made = _units(self, *args)
    while True:
        _on()
        try:
            unit = next(made)
        except StopIteration:
            _off()
            return
        _off()
        yield unit
_plan.Plan.units = units
import atexit, sys
from greenfetch.inventory import _pagefile
_flush, _transactions = _pagefile.PageFile.flush, []
def flush(self):
    _transactions.append(len(self._pending))
    return _flush(self)
_pagefile.PageFile.flush = flush
atexit.register(lambda: print("pagecost-transactions", sum(1 for n in _transactions if n), file=sys.stderr))
atexit.register(lambda: print("pagecost-collections", "/".join(map(str, _collections)), file=sys.stderr))
"""


def _in_command(trees: list[str], accounts: int) -> None:
    """``--command``: each tree's pieces counted inside the command (see the module's docstring)."""
    import glob
    import json

    import greenfetch  # noqa: F401
    from greenfetch.testing import LoopbackServer

    sys.path.insert(0, str(HERE))
    import bench_inventory as inv
    from percall import _callgrind_total

    os.environ["GREENFETCH_INVENTORY_PAGES"] = json.dumps({"items": 5})
    names = [f"7{n:011d}" for n in range(accounts)]
    with (
        LoopbackServer(handler=inv.HANDLER, latency=inv.LATENCY) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        lib = Path(tmp) / "toggle.so"
        Path(tmp, "toggle.c").write_text(_TOGGLE_C)
        subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(lib), f"{tmp}/toggle.c"], check=True)
        for t, tree in enumerate(trees):
            out = f"{tmp}/out-{t}"
            command = inv._cli_command(url, out, names, inv.REGIONS[:8], 64)
            code = (
                inv.SLOW_CLOCK
                + _COUNTED.format(lib=str(lib))
                + ("import runpy\nrunpy.run_module('greenfetch.cli', run_name='__main__', alter_sys=True)\n")
            )
            # each run its own cache directory (new rows): a directory shared by the trees' runs would
            # have the later runs replace the earlier's rows, ~4k instructions a page cheaper
            env = {
                **inv._cli_env(tmp),
                "GREENFETCH_CACHE_DIR": f"{tmp}/cache-{t}",
                "PYTHONPATH": tree,
                "PYTHONHASHSEED": "0",
            }
            dump = f"{tmp}/callgrind.{t}"
            done = subprocess.run(
                ["valgrind", "--tool=callgrind", "-q", "--collect-atstart=no", f"--callgrind-out-file={dump}"]
                + [sys.executable, "-c", code, *command[3:]],
                env=env,
                cwd=tmp,  # not the caller's: a source tree there would come before PYTHONPATH's
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"{tree}: the command failed: {done.stderr[-3000:]}")
            records = sum(len(json.loads(Path(p).read_text())) for p in glob.glob(f"{out}/*.json"))
            total = _callgrind_total(dump)
            said = dict(line.split()[:2] for line in done.stderr.splitlines() if line.startswith("pagecost-"))
            print(
                f"{tree}: {total / records / 1000:,.1f}k a page inside the pieces ({records} records, "
                f"{said.get('pagecost-transactions', '?')} cache transactions, collections inside the pieces "
                f"by generation {said.get('pagecost-collections', '?')})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages")
    parser.add_argument("trees", nargs="*")  # default: this tree (with --command: the trees given only)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--capture", action="store_true")
    parser.add_argument("--command", type=int, metavar="N", help="count inside the command (N accounts)")
    opts = parser.parse_args()
    if opts.command:
        _in_command([opts.pages, *opts.trees], opts.command)
        return
    opts.trees = opts.trees or [str(HERE.parent)]
    if opts.capture:
        _capture(opts.pages)
        return
    if opts.child:
        _child(opts.pages, opts.reps)
        return
    sys.path.insert(0, str(HERE))
    from percall import _callgrind_total

    results: dict[str, dict[str, float]] = {}
    for tree in opts.trees:
        with tempfile.TemporaryDirectory(prefix="pagecost-") as tmp:
            out = f"{tmp}/callgrind.out"
            env = {**os.environ, "PYTHONPATH": tree, "PERCALL_CALLGRIND": "1"}
            done = subprocess.run(
                [
                    "valgrind",
                    "--tool=callgrind",
                    "--instr-atstart=no",
                    "-q",
                    f"--callgrind-out-file={out}",
                    sys.executable,
                    __file__,
                    opts.pages,
                    "--child",
                    "--reps",
                    str(opts.reps),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            counts = [line.split("\t") for line in done.stdout.splitlines() if "\t" in line]
            dumps = sorted(Path(tmp).glob("callgrind.out.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
            results[tree] = {
                name: _callgrind_total(str(dump)) / int(n)
                for (name, n), dump in zip(counts, dumps, strict=True)
            }
    width = max(len(p) for p in PIECES)
    print(f"{'piece':{width}}  " + "  ".join(f"{t[-24:]:>24}" for t in opts.trees))
    for piece in PIECES:
        row = "  ".join(f"{results[t].get(piece, float('nan')) / 1000:23,.1f}k" for t in opts.trees)
        print(f"{piece:{width}}  {row}")


if __name__ == "__main__":
    main()
