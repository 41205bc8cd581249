"""Scale-out benchmark (issue 12): the same inventory in one process, with ``--processes 2``, and on two
``greenfetch worker`` processes over a real Redis.

    scripts/bench --only scale [--quick] [--write]      (or: python scripts/bench_scale.py [--quick])

Every peer is the real CLI in its own interpreter against one ``LoopbackServer`` child serving
``greenfetch.testing._inventory_pages`` (the inventory section's server: realistic pages of 5 records,
50 ms latency), so all three do the same calls:

- ``greenfetch inventory`` in one process;
- ``greenfetch --processes 2 inventory``;
- ``greenfetch inventory --broker`` (the coordinator) with two ``greenfetch worker -c 8`` processes on a
  ``redis-server`` started here on a free loopback port, all sharing one ``--out`` directory.

One round each (a full run takes ~3 minutes on 2 cores). The wall time of a run is its command's, from
spawn to exit, imports included; the workers are long-lived services, so they are started and ready
before the coordinator's clock starts (their start-to-ready time is reported apart). The three runs'
JSON files are read back and their (type, account, region) records compared: scale-out must not lose
or duplicate a shard. The issue's target: workers' wall time <= 1.3x the ``--processes 2`` run's.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_inventory import HANDLER, REGIONS, TYPES  # the same inventory as the inventory section

SECTION = "scale"
LATENCY, CONCURRENCY, WORKERS, WORKER_CONCURRENCY = 0.05, 64, 2, 8
TARGET = 1.3
ROLE = "InventoryReader"
Record = tuple[str, str, str]


def _sizes(quick: bool) -> tuple[list[str], list[str], list[str]]:
    """(accounts, regions, types): the ad hoc measurement's 100 x 16 x 10, or a tiny smoke inventory."""
    accounts = [f"7{n:011d}" for n in range(4 if quick else 100)]
    return accounts, REGIONS[:2] if quick else REGIONS, TYPES[:3] if quick else TYPES


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GREENFETCH_"))}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        GREENFETCH_CACHE_DIR=str(tmp / "cache"),
        **extra,
    )
    return env


def _proc_cpu(pid: int) -> float:
    """User + system seconds of a live process (a worker, which is killed rather than reaped normally)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def _records(out: Path) -> tuple[set[Record], int, int, int]:
    """(the set of (type, account, region), records, resources, records not ok) in a run's JSON files."""
    keys: set[Record] = set()
    records = resources = failed = 0
    for path in sorted(out.glob("*.json")):
        for rec in json.loads(path.read_text(encoding="utf-8")):
            keys.add((rec["resource_type"], rec["account"], rec["region"]))
            records += 1
            resources += len(rec.get("items") or [])
            failed += rec.get("status", "ok") != "ok"
    return keys, records, resources, failed


def _inventory(
    url: str, out: Path, accounts: list[str], regions: list[str], types: list[str], processes: int = 1
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "greenfetch.cli",
        "--endpoint-url",
        url,
        "--region",
        "us-east-1",
        "--processes",
        str(processes),
        "inventory",
        "--accounts",
        ",".join(accounts),
        "--role-name",
        ROLE,
        "--regions",
        ",".join(regions),
        "--types",
        ",".join(types),
        "--out",
        str(out),
        "--cache-ttl",
        "0",
        "--no-progress",
        "-c",
        str(CONCURRENCY),
    ]


def _timed(cmd: list[str], env: dict[str, str], extra_pids: list[int] = []) -> dict[str, float]:  # noqa: B006
    """Run one inventory command to completion: its wall time and CPU (with ``extra_pids``' CPU)."""
    cpu_before = _children_cpu() + sum(_proc_cpu(pid) for pid in extra_pids)
    began = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, check=False)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[3:6])}... exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return {"wall": wall, "cpu": _children_cpu() + sum(_proc_cpu(pid) for pid in extra_pids) - cpu_before}


def _start_worker(name: str, tmp: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], float]:
    """A real ``greenfetch worker`` and its spawn-to-ready seconds ('ready.' in its log)."""
    from greenfetch.testing import start_worker

    began = time.perf_counter()
    proc = start_worker(env, tmp / f"worker-{name}.log", name=f"bench-{name}", concurrency=WORKER_CONCURRENCY)
    return proc, time.perf_counter() - began


def _workers_run(url: str, tmp: Path, sizes: tuple[list[str], list[str], list[str]]) -> dict[str, Any]:
    """Redis, two workers, then the timed coordinator; everything started here is killed by pid after."""
    from greenfetch.testing import RedisServer, stop_processes

    redis_server = RedisServer(tmp)
    env = _env(tmp, GREENFETCH_BROKER_URL=redis_server.url)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        ready = []
        for name in "ab"[:WORKERS]:
            proc, seconds = _start_worker(name, tmp, env)
            workers.append(proc)
            ready.append(seconds)
        m = _timed(_inventory(url, tmp / "workers", *sizes), env, [w.pid for w in workers])
        return {**m, "ready_s": ready}
    finally:
        stop_processes(workers)
        redis_server.close()


def run(quick: bool = False) -> str:
    from greenfetch.testing import LoopbackServer

    if shutil.which("redis-server") is None:
        raise RuntimeError(
            "redis-server is not installed; scripts/install-redis installs Debian's redis-server"
        )
    sizes = accounts, regions, types = _sizes(quick)
    calls = len(accounts) * len(regions) * len(types)
    os.environ["GREENFETCH_INVENTORY_PAGES"] = json.dumps({"items": 5})  # read by the server child at start
    load_before = os.getloadavg()
    results: dict[str, dict[str, Any]] = {}
    server_cpu: dict[str, float] = {}
    server = LoopbackServer(handler=HANDLER, latency=LATENCY)
    with tempfile.TemporaryDirectory(prefix="greenfetch-bench-scale-") as name, server as url:
        tmp = Path(name)
        plan = [
            ("one process", lambda: _timed(_inventory(url, tmp / "one", *sizes), _env(tmp))),
            (
                "--processes 2",
                lambda: _timed(_inventory(url, tmp / "processes", *sizes, processes=2), _env(tmp)),
            ),
            (f"--broker + {WORKERS} workers", lambda: _workers_run(url, tmp, sizes)),
        ]
        for key, go in plan:
            before = server.stats()["cpu_seconds"]
            results[key] = go()
            server_cpu[key] = server.stats()["cpu_seconds"] - before
            print(f"bench: scale {key}: {results[key]['wall']:.1f} s", file=sys.stderr, flush=True)
        found = {
            key: _records(tmp / out)
            for key, out in zip(results, ("one", "processes", "workers"), strict=True)
        }
    load_after = os.getloadavg()
    return _markdown(quick, sizes, calls, results, server_cpu, found, load_before, load_after)


def _markdown(
    quick: bool,
    sizes: tuple[list[str], list[str], list[str]],
    calls: int,
    results: dict[str, dict[str, Any]],
    server_cpu: dict[str, float],
    found: dict[str, tuple[set[Record], int, int, int]],
    load_before: tuple[float, ...],
    load_after: tuple[float, ...],
) -> str:
    accounts, regions, types = sizes
    one, two, workers = (results[k]["wall"] for k in results)
    ratio = workers / two
    expected = {(t, a, r) for t in types for a in accounts for r in regions}
    reference = found["one process"][0]
    rows = [
        f"| `{key}` | {m['wall']:.1f} | {calls / m['wall']:,.0f} | {m['wall'] / two:.2f}x | "
        f"{1000 * m['cpu'] / calls:.2f} | {1000 * server_cpu[key] / calls:.2f} | {found[key][1]:,} | "
        f"{found[key][2]:,} | {found[key][3]} | {'yes' if found[key][0] == reference else '**no**'} |"
        for key, m in results.items()
    ]
    same = all(keys == reference for keys, *_ in found.values())
    once = all(n == len(keys) for keys, n, *_ in found.values())
    ready = ", ".join(f"{s:.1f}" for s in results[f"--broker + {WORKERS} workers"]["ready_s"])
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return "\n".join(
        [
            "## Scale-out: one process, `--processes 2`, two `greenfetch worker`s",
            "",
            f"{len(accounts)} accounts x {len(regions)} regions x {len(types)} resource types = {calls:,} list calls "
            f"(+ {len(accounts)} AssumeRole) on the loopback server (`greenfetch.testing._inventory_pages`, pages of "
            f"5 records, {LATENCY * 1000:.0f} ms latency), `greenfetch inventory -c {CONCURRENCY}` each time; the "
            f"workers run `greenfetch worker -c {WORKER_CONCURRENCY}` on a redis-server on loopback and share the "
            "coordinator's `--out` directory. One round per peer, one after another. Reproduce with "
            "`scripts/bench --only scale`." + (" **Quick run: numbers meaningless.**" if quick else ""),
            "",
            f"_Measured {when} on {os.cpu_count()} cores; load average {' '.join(f'{x:.2f}' for x in load_before)} "
            f"before, {' '.join(f'{x:.2f}' for x in load_after)} after (`/proc/loadavg`; the machine was shared)._",
            "",
            "| run | wall s | calls/s | vs `--processes 2` | client CPU ms/call | server CPU ms/call | records "
            "| resources | records not ok | same records as one process |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
            *rows,
            "",
            f"- Workers / `--processes 2`: **{ratio:.2f}x** wall time (target ≤ {TARGET}x: "
            f"{'met' if ratio <= TARGET else '**missed**'}); workers / one process {workers / one:.2f}x, "
            f"`--processes 2` / one process {two / one:.2f}x.",
            f"- Records: the three runs wrote {'the same' if same else '**different**'} set of (type, account, region) "
            f"records ({len(reference):,}; the plan has {len(expected):,}: "
            f"{'all there' if reference == expected else '**not all there**'}), "
            f"{'each exactly once' if once else '**some more than once**'}.",
            "- Wall time is the `greenfetch inventory` command's, spawn to exit (imports, AssumeRole and writing the "
            "files included). The workers were started and ready before the coordinator's clock started "
            f"(spawn-to-ready {ready} s each, not counted). Client CPU: the command and its children, plus the two "
            "workers' CPU over the run; the server (its own process) shares the same 2 cores.",
        ]
    )


if __name__ == "__main__":
    import greenfetch  # noqa: F401  (first: the parent starts LoopbackServer, which imports greenfetch)

    markdown = run("--quick" in sys.argv)
    print(markdown)
    if "--write" in sys.argv:
        sys.path.insert(0, str(Path(__file__).parent))
        from bench import write_section

        write_section(SECTION, markdown)
