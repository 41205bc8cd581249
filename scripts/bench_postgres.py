"""The PostgreSQL sink beside the SQLite sink: 100,000 resources of about 1 KB, and diff of 100,000 against
100,000 with 1,000 changed.

    scripts/bench --only postgres [--quick] [--write]      (or: python scripts/bench_postgres.py [--quick])

Each measurement runs in its own interpreter (``--child``), so one sink's imports and allocations never
count against the other's. Writes: 1,000 records of 100 resources (an ``ec2.instances`` item with a
900-character tag, ~1 KB as JSON) through ``SQLiteSink`` / ``PostgresSink`` as ``run_inventory`` would
give them; rows per second, the writer's CPU per row, PostgreSQL's CPU per row (every process of the
throwaway cluster, from /proc) and the writer's RSS growth, then Python's peak (tracemalloc) in a run of
its own of at most 20,000 resources (tracemalloc slows allocation several times over; the peak is one
batch, whatever the run's size). Diff: two runs
written first (not timed), then ``diff_runs`` consumed to the end, timed, with its peak. The cluster is
``greenfetch.testing.PostgresServer(durable=True)``: PostgreSQL's defaults (fsync and synchronous commit on)
on a loopback port.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SECTION = "postgres"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FULL, QUICK = 100_000, 5_000
N_OVERRIDE = int(os.environ.get("BENCH_POSTGRES_N", "0"))
PER_RECORD = 100


def _records(n: int, changed: int = 0) -> Any:
    """``n`` resources in records of 100; the first ``changed`` (spread over the run) get a new state."""
    every = max(1, n // changed) if changed else 0
    for r in range(n // PER_RECORD):
        items = []
        for k in range(PER_RECORD):
            i = r * PER_RECORD + k
            state = "stopped" if every and i % every == 0 and i // every < changed else "running"
            items.append(
                {
                    "InstanceId": f"i-{i:08d}",
                    "InstanceType": "m5.large",
                    "State": {"Name": state},
                    "Tags": [{"Key": "Name", "Value": "x" * 900}, {"Key": "team", "Value": f"t{i % 7}"}],
                }
            )
        yield {
            "resource_type": "ec2.instances",
            "account": f"{r % 100:012d}",
            "region": f"r-{r // 100}",
            "items": items,
            "status": "ok",
            "error": None,
        }


_RESIDENT = ("checkpointer", "background writer", "walwriter", "autovacuum launcher", "logical replication")


def _cluster(pid: int) -> tuple[float, int]:
    """CPU seconds (user + system) of the PostgreSQL cluster so far, and how many of its children come
    and go (backends, autovacuum and parallel workers): the postmaster with the children it has
    reaped, plus every live child. PostgreSQL puts each child in a session of its own, so the cluster's
    process group is the postmaster alone."""
    total, transient, tick = 0.0, 0, os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    title = cmdline.read().decode(errors="replace")
        except OSError:
            continue
        if int(entry) == pid:
            total += sum(int(f) for f in fields[11:15]) / tick  # its own and its reaped children's
        elif int(fields[1]) == pid:
            total += sum(int(f) for f in fields[11:13]) / tick
            transient += not any(name in title for name in _RESIDENT)
    return total, transient


def _server_cpu(pid: int | None) -> float:
    """``_cluster``'s CPU once no child comes or goes (a backend whose client has closed is still
    exiting: read between its exit and its reaping, its CPU would count twice or not at all), waiting
    10 s at most."""
    if pid is None:
        return 0.0
    deadline = time.monotonic() + 10
    while True:
        total, transient = _cluster(pid)
        if not transient or time.monotonic() > deadline:
            return total
        time.sleep(0.02)


def _sink(kind: str, target: str) -> Any:
    from greenfetch.inventory import PostgresSink, SQLiteSink

    return SQLiteSink(target) if kind == "sqlite" else PostgresSink(target)


def child(opts: dict[str, Any]) -> dict[str, Any]:
    """One measurement, in this interpreter: ``write`` or ``diff`` with one sink."""
    import tracemalloc

    import greenfetch  # noqa: F401  (first: patches for gevent)
    from greenfetch.inventory import InventoryDB, PostgresDB, diff_runs

    if opts["kind"] == "postgres":
        import psycopg  # noqa: F401  (the driver's import is not the sink's memory)
    n, target, pgpid = opts["n"], opts["target"], opts.get("pgpid")
    if opts["what"] == "diff":
        for changed in (0, opts["changed"]):  # two runs, not timed
            with _sink(opts["kind"], target) as sink:
                for rec in _records(n, changed):
                    sink.add(rec)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if opts.get("traced"):  # a run of its own: tracemalloc slows every allocation several times over
        tracemalloc.start()
    server, cpu, began = _server_cpu(pgpid), time.process_time(), time.perf_counter()
    if opts["what"] == "write":
        with _sink(opts["kind"], target) as sink:
            for rec in _records(n):
                sink.add(rec)
        count = n
    else:
        reader = InventoryDB(target) if opts["kind"] == "sqlite" else PostgresDB(target)
        with reader:
            result = diff_runs(reader)
            count = sum(1 for _ in result.changes)
            assert (count, result.counts.unchanged) == (opts["changed"], n - opts["changed"]), result.counts
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    server = _server_cpu(pgpid) - server
    return {
        "wall": wall,
        "cpu": cpu,
        "server_cpu": server,
        "count": count,
        "peak": tracemalloc.get_traced_memory()[1] if opts.get("traced") else None,
        "rss_growth_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline,
    }


def _run_child(opts: dict[str, Any]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GREENFETCH_", "PG"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(opts)],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench_postgres child failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(quick: bool = False) -> str:
    import greenfetch  # noqa: F401
    from greenfetch.testing import PostgresServer

    sys.path.insert(0, str(HERE))
    from bench import measured_note, table

    n = N_OVERRIDE or (QUICK if quick else FULL)
    changed = n // 100
    rows, diffs = [], []
    with (
        tempfile.TemporaryDirectory(prefix="greenfetch-bench-pg-") as tmp,
        PostgresServer(durable=True) as server,
    ):
        pgpid = server.proc.pid if server.proc is not None else None
        for what in ("write", "diff"):
            for kind in ("sqlite", "postgres"):
                name = f"{what}_{kind}"
                target = str(Path(tmp) / f"{name}.db") if kind == "sqlite" else server.create_database(name)
                opts = {
                    "what": what,
                    "kind": kind,
                    "n": n,
                    "changed": changed,
                    "target": target,
                    "pgpid": pgpid if kind == "postgres" else None,
                }
                m = _run_child(opts)
                if kind == "sqlite":
                    target = str(Path(tmp) / f"{name}-traced.db")
                else:
                    target = server.create_database(f"{name}_traced")
                m["peak"] = _run_child(
                    {
                        **opts,
                        "target": target,
                        "traced": True,
                        "n": min(n, 20_000),
                        "changed": min(n, 20_000) // 100,
                    }
                )["peak"]
                peak, rss = f"{m['peak'] / 1e6:.1f} MB", f"+{m['rss_growth_kb'] / 1024:.0f} MB"
                if what == "write":
                    server_cpu = f"{1e6 * m['server_cpu'] / n:.0f}" if kind == "postgres" else "(in process)"
                    rows.append(
                        [
                            kind,
                            f"{n:,}",
                            f"{n / m['wall']:,.0f}",
                            f"{1e6 * m['cpu'] / n:.0f}",
                            server_cpu,
                            peak,
                            rss,
                        ]
                    )
                else:
                    diffs.append(
                        [
                            kind,
                            f"{n:,} vs {n:,}, {changed:,} changed",
                            f"{m['wall']:.2f} s",
                            f"{m['cpu']:.2f} s",
                            f"{m['server_cpu']:.2f} s" if kind == "postgres" else "-",
                            peak,
                        ]
                    )
    write = table(
        [
            "sink",
            "resources (~1 KB)",
            "rows/s",
            "writer CPU µs/row",
            "PostgreSQL CPU µs/row",
            "Python peak",
            "RSS growth",
        ],
        rows,
    )
    diff = table(["database", "runs", "diff wall", "client CPU", "PostgreSQL CPU", "Python peak"], diffs)
    size = (
        f"_A quick run ({n:,} resources), to check the benchmark works; the numbers that count come from "
        "`scripts/bench --only postgres --write` on a quiet machine._\n\n"
        if n != FULL
        else ""
    )
    return (
        f"## PostgreSQL sink beside SQLite (issue 22)\n\n{size}{measured_note()}\n\n{write}\n\n{diff}\n\n"
        "Reproduce with `scripts/bench --only postgres` (PostgreSQL from `scripts/install-postgres`, a "
        "throwaway cluster with PostgreSQL's default durability). Writes go through `SQLiteSink` / "
        "`PostgresSink` in records of 100 resources; each run in its own interpreter."
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
    else:
        print(run(quick="--quick" in sys.argv))
