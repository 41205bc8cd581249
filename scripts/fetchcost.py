"""Instructions per list call of the inventory's fetch path, piece by piece (callgrind windows).

    python scripts/fetchcost.py [--accounts N] [--modes M,...] [--types T,...] [--profile PATH] [TREE...]

Each TREE (a source tree put first on PYTHONPATH; default this one) runs a child under ``valgrind
--tool=callgrind --instr-atstart=no`` on the inventory loopback server (the 6 JSON types x 8 regions,
pages of 5 items, concurrency 64), its clients warm, every account's role assumed before any window.
The child counts the same list calls made several ways, each in its own window, each over accounts of
its own (a scope's limiter is new in every window, as the command's are):

- ``raw``: ``batch_requests`` of the calls as plain dicts (the raw engine's row of ``inventory_instructions``)
- ``paged``: the inventory's requests (``Request.built``, ``paginate=True``), no account
- ``account``: the inventory's requests with the account, role and credentials, not paginated
- ``engine``: the inventory's requests as the plan makes them (account and pagination), ungated
- ``gated``: the same through the inventory's gate and fair feed (``iter_results`` as ``_fetch`` runs it)
- ``inventory``: ``Inventory.run`` whole (plan, feed, gate, records, summary; no cache, no sink)
- ``plan``: ``Plan.units`` alone (the units of the same accounts, regions and types), a unit
- ``records``: ``Inventory._fetched`` alone over the answers of a gated run (a record, its summary), a record

Counted, the child reads a monotonic clock slowed as callgrind slows it (``bench_inventory.SLOW_CLOCK``),
so a limiter's windows close as in a native run. Each figure is the window's instructions over its list
calls; the differences place the inventory's own cost per list call (pagination, the account view, the
gate, the records). ``--profile PATH`` writes a cProfile of each window to ``PATH.MODE`` instead (no
valgrind): the Python calls a window makes, to set against another's. ``--keep DIR`` copies each
window's callgrind dump to ``DIR/TREE_NAME.MODE.callgrind`` (for ``callgrind_annotate``: the C
functions a window's instructions go to).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

_CHILD = r"""
import json, sys
opts = json.loads(sys.argv[1])
import greenfetch
from greenfetch import Config, Engine
from greenfetch._models import Request
from greenfetch._adaptive import open_gate
from greenfetch.inventory import accounts_from_list
from greenfetch.inventory._catalog import resolve_types
from greenfetch.inventory._credentials import AccountCredentials
from greenfetch.inventory._fetch import Inventory, _scope_of_unit
from greenfetch.inventory._pacing import FairFeed
from greenfetch.inventory._items import _params
sys.path.insert(0, opts["scripts"])
from percall import _Window
if opts.get("profile"):
    import cProfile, contextlib, pstats
    @contextlib.contextmanager
    def _Window(name):
        prof = cProfile.Profile()
        prof.enable()
        try:
            yield
        finally:
            prof.disable()
            prof.dump_stats(f"{opts['profile']}.{name}")

engine = Engine(Config.resolve({"endpoint_url": opts["url"], "region": "us-east-1",
                                "concurrency": 64, "max_clients": 256}))
types = resolve_types(opts["types"])
regions = opts["regions"]
n = opts["accounts"]
modes = opts["modes"]
names = [f"{1 + m}{a:011d}" for m in range(len(modes)) for a in range(n)]
accounts = accounts_from_list(names, role="InventoryReader")
creds = AccountCredentials(engine)
got = creds.prefetch(accounts)
calls = [{"service": t.service, "operation": t.operation, "params": dict(t.params), "region": r}
         for t in types for r in regions]
assert all(r.ok for r in engine.batch_requests(calls, 64))

def requests(accs, *, account=True, paginate=True):
    out = []
    for a in accs:
        role = creds.status(a).role_arn
        for r in regions:
            for t in types:
                out.append(Request.built(t.service, t.operation, _params(t.params, a.account_id), region=r,
                    account=a.account_id if account else None, role=role if account else None,
                    credentials=got[a.account_id] if account else None,
                    paginate=t.paginate if paginate else False))
    return out

# every path warm once (an account of its own)
warm = accounts_from_list(["699999999999"], role="InventoryReader")
creds.prefetch(warm)
got.update({a.account_id: creds.get(a) for a in warm})
for rq in (requests(warm), requests(warm, account=False), requests(warm, paginate=False)):
    assert all(r.ok for r in engine.batch_requests(rq, 64))
list(Inventory(engine, warm, types, regions=regions, filter_offered=False, concurrency=64,
               credentials=creds).run())

out, gcs = {}, {}
import gc
for m, mode in enumerate(modes):
    accs = accounts[m * n:(m + 1) * n]
    gc.collect()
    gc.freeze()  # no window walks what the process held before it (the models, the earlier windows)
    if mode == "raw":
        work = calls * n
        with _Window(mode) as win:
            results = engine.batch_requests(work, 64)
    elif mode in ("paged", "account", "engine"):
        work = requests(accs, account=mode != "paged", paginate=mode != "account")
        with _Window(mode) as win:
            results = engine.batch_requests(work, 64)
    elif mode == "gated":
        inv = Inventory(engine, accs, types, regions=regions, filter_offered=False, concurrency=64,
                        credentials=creds)
        units = list(inv._plan.units([(a, got[a.account_id]) for a in accs], {a.account_id: regions for a in accs}))
        work = units
        with _Window(mode) as win:
            limits = engine.limits
            gate = open_gate(limits, 5, 5.0, 1, 64)
            feed = FairFeed(units, _scope_of_unit, lambda scope: limits.limiter(scope).limit)
            results = []
            for result in engine.iter_results((u.request for u in feed), 64, gate=gate):
                feed.done(feed.sent[result.index])
                results.append(result)
            feed.close()
    elif mode == "plan":
        inv = Inventory(engine, accs, types, regions=regions, filter_offered=False, concurrency=64,
                        credentials=creds)
        ready = [(a, got[a.account_id]) for a in accs]
        with _Window(mode) as win:
            units = list(inv._plan.units(ready, {a.account_id: regions for a in accs}))
        results = [type("R", (), {"ok": True})() for _ in units]
    elif mode == "records":
        inv = Inventory(engine, accs, types, regions=regions, filter_offered=False, concurrency=64,
                        credentials=creds)
        units = list(inv._plan.units([(a, got[a.account_id]) for a in accs], {a.account_id: regions for a in accs}))
        answers = list(engine.iter_results((u.request for u in units), 64))
        pairs = [(units[r.index], r) for r in answers]
        with _Window(mode) as win:
            made = [inv._fetched(unit, result) for unit, result in pairs]
        results = [type("R", (), {"ok": rec["status"] == "ok"})() for rec, _ in made]
    elif mode == "inventory":
        inv = Inventory(engine, accs, types, regions=regions, filter_offered=False, concurrency=64,
                        credentials=creds)
        with _Window(mode) as win:
            results = list(inv.run())
        results = [type("R", (), {"ok": r["status"] == "ok"})() for r in results]
    assert all(r.ok for r in results), mode
    out[mode] = len(results)
    gcs[mode] = getattr(win, "gc", None)
print(json.dumps(gcs), file=sys.stderr)
print(json.dumps(out))
"""


def main() -> None:
    sys.path.insert(0, str(HERE))
    import bench_inventory as inv
    from percall import _callgrind_total

    import greenfetch  # noqa: F401
    from greenfetch.testing import LoopbackServer

    modes = ["raw", "paged", "account", "engine", "gated", "inventory", "plan", "records"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", default=[str(ROOT)])
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--modes", default=",".join(modes))
    parser.add_argument("--types", default=",".join(inv.JSON_TYPES))
    parser.add_argument("--profile", help="cProfile each window into PROFILE.MODE instead (no valgrind)")
    parser.add_argument("--keep", help="copy each window's callgrind dump into this directory")
    opts = parser.parse_args()
    os.environ["GREENFETCH_INVENTORY_PAGES"] = json.dumps({"items": 5})
    with (
        LoopbackServer(handler=inv.HANDLER, latency=inv.LATENCY) as url,
        tempfile.TemporaryDirectory(prefix="greenfetch-fetchcost-") as tmp,
    ):
        for t, tree in enumerate(opts.trees):
            child = {
                "url": url,
                "types": opts.types.split(","),
                "regions": inv.REGIONS[:8],
                "accounts": opts.accounts,
                "modes": opts.modes.split(","),
                "scripts": str(HERE),
                "profile": opts.profile,
            }
            env = {**inv._cli_env(tmp), "PERCALL_CALLGRIND": "1", "PYTHONPATH": tree}
            tag = f"t{t}"
            valgrind = [] if opts.profile else inv._valgrind(tmp, tag, window=True)
            clock = "" if opts.profile else inv.SLOW_CLOCK  # counted: the clock slowed as callgrind slows it
            done = subprocess.run(
                [*valgrind, sys.executable, "-c", clock + _CHILD, json.dumps(child)],
                env=env,
                cwd=tmp,  # not the caller's: a source tree there would come before PYTHONPATH's
                capture_output=True,
                text=True,
                timeout=3600,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"{tree}: child failed: {done.stderr[-3000:]}")
            lists = json.loads(done.stdout.strip().splitlines()[-1])
            if opts.profile:
                continue
            dumps = sorted(
                (p for p in Path(tmp).glob(f"callgrind.{tag}.*") if p.suffix[1:].isdigit()),
                key=lambda p: int(p.suffix[1:]),
            )
            counts = [_callgrind_total(str(p)) for p in dumps][-len(lists) :]
            print(tree, done.stderr.strip().splitlines()[-1])
            for (mode, calls), count in zip(lists.items(), counts, strict=True):
                print(f"  {mode:10} {count / calls / 1000:9,.1f}k a list call ({calls} calls)")
            if opts.keep:
                Path(opts.keep).mkdir(parents=True, exist_ok=True)
                for mode, dump in zip(lists, dumps[-len(lists) :], strict=True):
                    shutil.copyfile(dump, Path(opts.keep) / f"{Path(tree).name}.{mode}.callgrind")


if __name__ == "__main__":
    main()
