"""processes=2 against processes=1 and aiobotocore: 20,000 calls at concurrency 200, 50 ms loopback.

    scripts/bench --only processes [--quick] [--write]      (or: python scripts/bench_processes.py)
    scripts/bench --only processes_instructions [--quick] [--write]   (callgrind; minutes)

``processes``: one run per peer, one after another, each in its own interpreter against one
``LoopbackServer`` child (DynamoDB ListTables, 50 ms). Each peer warms up first, untimed: one call, then
a 600-call batch (for processes=2 it starts the engine's pool, kept for the engine's life, and warms
one client per child). That start-up is measured and stated separately: a first 2-call batch's wall
time, and each child's spawn-to-ready time on a second pool. CPU is read from ``/proc`` for every
process over the timed window, user + system: the peer itself and, for processes=2, the parent and
each child apart (a child's calls are the results it answered in the window), so a child's CPU per
call stands beside a lone process's. A fourth peer runs two processes=1 engines side by side (two
interpreters, half the calls each at half the concurrency, started together): the same sharing of
the cores with the server and each other that the two children have, with no pool between them. The
server's CPU is reported too, since on 2 cores the server, the parent and both children share them.

``processes_instructions``: the same requests counted in instructions (callgrind), which the load of a
shared machine does not change: the lone process, each child, and the parent, per call. valgrind's
``callgrind_control`` switches the counting on for the timed batch only.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SECTION = "processes"
LIST = {"service": "dynamodb", "operation": "ListTables"}
CALLS, CONCURRENCY, LATENCY, WARM = 20_000, 200, 0.05, 600
INSTRUCTION_CALLS = 2_000
HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")


def proc_times(pid: int) -> tuple[float, int]:
    """(user + system seconds, involuntary context switches) of one live process, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    with open(f"/proc/{pid}/status") as status:
        switches = next(
            int(line.split()[1]) for line in status if line.startswith("nonvoluntary_ctxt_switches")
        )
    return (int(fields[11]) + int(fields[12])) / TICK, switches


def greenfetch_peer(opts: dict[str, Any]) -> dict[str, Any]:
    import greenfetch  # noqa: F401  (first: patches gevent before botocore)
    from greenfetch import Config, Engine
    from greenfetch._processes import ProcessPool

    processes, counted = opts["processes"], opts.get("callgrind")
    if counted == "children":  # each child runs under callgrind: the pool spawns sys.executable
        sys.executable = _callgrind_wrapper(opts["outdir"])
    engine = Engine(
        Config.resolve(
            {"region": "us-east-1", "endpoint_url": opts["url"], "max_attempts": 3, "processes": processes}
        )
    )
    engine.execute(LIST)
    out: dict[str, Any] = {}
    if processes > 1 and not counted:  # the pool alone: a 2-call batch on a warm engine, and spawn-to-ready
        began = time.perf_counter()
        engine.batch_requests([LIST, LIST], 2)
        out["startup_batch_s"] = time.perf_counter() - began
        pool = ProcessPool(engine, processes)
        try:
            list(pool.run([LIST] * processes, processes))
            out["ready_s"] = sorted(pool.ready_seconds)
        finally:
            pool.close()
    engine.batch_requests([LIST] * opts.get("warm", WARM), opts["concurrency"])
    kept = engine.pools.idle(processes)
    children = [child.proc.pid for child in kept.children] if kept else []
    if opts.get("barrier"):  # side by side: every peer starts its timed window at once
        print("ready", flush=True)
        sys.stdin.readline()
    counting = [os.getpid()] if counted == "self" else children if counted == "children" else []
    _callgrind_control(counting, "-i", "on")
    answered = dict(kept.answered) if kept else {}
    before = {pid: proc_times(pid) for pid in [os.getpid(), *children]}
    began = time.perf_counter()
    ok = sum(r.ok for r in engine.batch_requests([LIST] * opts["calls"], opts["concurrency"]))
    wall = time.perf_counter() - began
    after = {pid: proc_times(pid) for pid in before}
    _callgrind_control(counting, "-i", "off")
    _callgrind_control(counting, "-d")  # the counts so far, written before the children are stopped
    procs = []
    for pid in before:
        role = "child" if pid in children else "parent" if children else "process"
        calls = (
            kept.answered.get(pid, 0) - answered.get(pid, 0) if kept and role == "child" else opts["calls"]
        )
        procs.append(
            {
                "pid": pid,
                "role": role,
                "calls": calls,
                "cpu": after[pid][0] - before[pid][0],
                "switches": after[pid][1] - before[pid][1],
            }
        )
    engine.close()
    return {
        **out,
        "calls": opts["calls"],
        "ok": ok,
        "wall": wall,
        "procs": procs,
        "cpu": sum(p["cpu"] for p in procs),
    }


def _callgrind_wrapper(outdir: str) -> str:
    path = os.path.join(outdir, "python-under-callgrind")
    with open(path, "w") as script:
        script.write(
            f"#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no -q "
            f'--callgrind-out-file={outdir}/callgrind.%p {sys.executable} "$@"\n'
        )
    os.chmod(path, 0o755)
    return path


def _callgrind_control(pids: list[int], *args: str) -> None:
    for pid in pids:
        subprocess.run(["callgrind_control", *args, str(pid)], check=True, stdout=subprocess.DEVNULL)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GREENFETCH_"))}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def _argv(kind: str, url: str, opts: dict[str, Any]) -> list[str]:
    if kind == "aiobotocore":
        return [sys.executable, str(HERE / "_bench_peers.py"), kind, json.dumps({"url": url, **opts})]
    return [sys.executable, str(Path(__file__).resolve()), "--peer", json.dumps({"url": url, **opts})]


def _result(
    kind: str, proc: subprocess.Popen[str] | subprocess.CompletedProcess[str], out: str, err: str
) -> dict[str, Any]:
    if proc.returncode != 0 or not out.strip():
        raise RuntimeError(f"bench peer {kind} failed ({proc.returncode}): {err.strip()[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def peer(kind: str, url: str, prefix: tuple[str, ...] = (), **opts: Any) -> dict[str, Any]:
    proc = subprocess.run(
        [*prefix, *_argv(kind, url, opts)], capture_output=True, text=True, env=_env(), timeout=3600
    )
    return _result(kind, proc, proc.stdout, proc.stderr)


def side_by_side(url: str, count: int, **opts: Any) -> list[dict[str, Any]]:
    """``count`` greenfetch peers at once: each warms up, then all start their timed window together."""
    procs = [
        subprocess.Popen(
            _argv("greenfetch", url, {**opts, "barrier": True}),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for _ in range(count)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdin is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"bench peer failed to start: {proc.communicate()[1].strip()[-2000:]}")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        return [_result("greenfetch", proc, *proc.communicate(timeout=3600)) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def _per_call(procs: list[dict[str, Any]], role: str) -> list[float]:
    return [1000 * p["cpu"] / p["calls"] for p in procs if p["role"] == role and p["calls"]]


def _mean_per_call(procs: list[dict[str, Any]], role: str) -> float:
    """ms of CPU per call over every process of ``role`` together (each weighted by its calls)."""
    chosen = [p for p in procs if p["role"] == role]
    return 1000 * sum(p["cpu"] for p in chosen) / max(1, sum(p["calls"] for p in chosen))


def run(quick: bool = False) -> str:
    from greenfetch.testing import LoopbackServer

    calls = 300 if quick else CALLS
    warm = 50 if quick else WARM
    load_before = os.getloadavg()
    results: dict[str, dict[str, Any]] = {}
    server_cpu: dict[str, float] = {}
    server = LoopbackServer(latency=LATENCY)
    with server as url:
        for key in ("processes=1", "processes=2", "2 x processes=1", "aiobotocore"):
            before = server.stats()["cpu_seconds"]
            if key == "2 x processes=1":
                together = side_by_side(
                    url, 2, processes=1, calls=calls // 2, concurrency=CONCURRENCY // 2, warm=warm
                )
                results[key] = {
                    "calls": sum(m["calls"] for m in together),
                    "ok": sum(m["ok"] for m in together),
                    "wall": max(m["wall"] for m in together),
                    "cpu": sum(m["cpu"] for m in together),
                    "procs": [p for m in together for p in m["procs"]],
                }
            elif key == "aiobotocore":
                results[key] = peer("aiobotocore", url, calls=calls, concurrency=CONCURRENCY)
            else:
                results[key] = peer(
                    "greenfetch", url, processes=int(key[-1]), calls=calls, concurrency=CONCURRENCY, warm=warm
                )
            server_cpu[key] = server.stats()["cpu_seconds"] - before
    load_after = os.getloadavg()
    rate = {k: m["calls"] / m["wall"] for k, m in results.items()}
    rows = []
    for key, m in results.items():
        procs = m.get("procs", [])
        running = [p for p in procs if p["role"] in ("process", "child")]
        each = ", ".join(f"{ms:.3f}" for ms in _per_call(procs, "child") + _per_call(procs, "process")) or "—"
        parent = ", ".join(f"{ms:.3f}" for ms in _per_call(procs, "parent")) or "—"
        switches = (
            f"{sum(p['switches'] for p in running) / max(1, sum(p['calls'] for p in running)):.2f}"
            if running
            else "—"
        )
        rows.append(
            f"| {key} | {rate[key]:,.0f} | {m['wall']:.1f} | {each} | {parent} | "
            f"{1000 * m['cpu'] / m['calls']:.3f} | {switches} | {1000 * server_cpu[key] / m['calls']:.3f} | "
            f"{m['calls'] - m['ok']} |"
        )
    two, one, aio = rate["processes=2"], rate["processes=1"], rate["aiobotocore"]
    lone = _mean_per_call(results["processes=1"]["procs"], "process")
    child = _mean_per_call(results["processes=2"]["procs"], "child")
    worst = max(_per_call(results["processes=2"]["procs"], "child"))
    pair = _mean_per_call(results["2 x processes=1"]["procs"], "process")
    startup = results["processes=2"]
    ready = ", ".join(f"{s:.2f}" for s in startup.get("ready_s", []))
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return "\n".join(
        [
            f"### Every core: {calls:,} DynamoDB ListTables calls, concurrency {CONCURRENCY}, "
            f"{LATENCY * 1000:.0f} ms loopback",
            "",
            f"_Measured {when} on {os.cpu_count()} cores, one run per peer; load average "
            f"{' '.join(f'{x:.2f}' for x in load_before)} before, {' '.join(f'{x:.2f}' for x in load_after)} after "
            f"(`/proc/loadavg`; the machine was shared)._",
            "",
            "| peer | calls/s | wall s | CPU ms/call of each process running calls (children; a lone process) | "
            "parent CPU ms/call | client CPU ms/call, all processes | involuntary switches/call | "
            "server CPU ms/call | failed |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"- processes=2 / processes=1: **{two / one:.2f}x** (target ≥ 1.5x: "
            f"{'met' if two / one >= 1.5 else '**missed**'}); processes=2 / aiobotocore: **{two / aio:.2f}x** "
            f"(target ≥ 1.6x: {'met' if two / aio >= 1.6 else '**missed**'}).",
            f"- A child's CPU per call / the lone process's: **{child / lone:.2f}x** (both children together; the "
            f"busier one {worst / lone:.2f}x; target ≤ 1.05x: {'met' if child / lone <= 1.05 else '**missed**'}). "
            f"/ a process's in `2 x processes=1`: **{child / pair:.2f}x**. Those two share the 2 cores with the server and "
            "with each other as the children do, with no pool between them: the second ratio bounds what the pool "
            "itself costs a child, the rest of the first is the machine's (busy processes time-sharing 2 cores: "
            "switches, cold caches). One run each: on a shared machine either ratio moves by 10% between runs.",
            f"- Pool start-up (once per engine; the pool then stays for later calls): the first 2-call "
            f"`batch_requests` with processes=2 takes {startup.get('startup_batch_s', 0):.2f} s; each child is "
            f"ready (spawned, gevent patched, greenfetch imported, engine built) after {ready} s. The processes=2 "
            f"row is timed on the warm pool; with its start-up counted, it would be "
            f"{startup['calls'] / (startup['wall'] + startup.get('startup_batch_s', 0)):,.0f} calls/s.",
            f"- Ceiling at this latency: {CONCURRENCY / LATENCY:,.0f} calls/s. What bounds it here: 2 cores shared "
            "by the parent (routing, decoding results), two children (botocore's per-call work), the loopback "
            "server (its own process, CPU per call above) and the rest of the machine's load.",
        ]
    )


def _instructions(outdir: str, pid: int) -> int:
    """The instructions callgrind counted in ``pid`` while counting was on (its dumps, summed)."""
    total = 0
    for path in glob.glob(os.path.join(outdir, f"callgrind.{pid}*")):
        with open(path) as dump:
            total += sum(int(line.split()[1]) for line in dump if line.startswith("totals:"))
    return total


def instructions(quick: bool = False) -> str:
    """Instructions per call (callgrind): the lone process, each child and the parent of processes=2."""
    from greenfetch.testing import LoopbackServer

    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        return "### Instructions per call\n\n_Not measured: valgrind is not installed._"
    calls = 200 if quick else INSTRUCTION_CALLS
    warm = 50 if quick else WARM
    load_before = os.getloadavg()
    counted: dict[str, list[tuple[int, int]]] = {}  # peer -> (instructions, calls) per process
    with (
        tempfile.TemporaryDirectory(prefix="greenfetch-callgrind-") as outdir,
        LoopbackServer(latency=LATENCY) as url,
    ):
        vg = (
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "-q",
            f"--callgrind-out-file={outdir}/callgrind.%p",
        )
        opts: dict[str, Any] = {"calls": calls, "concurrency": CONCURRENCY, "warm": warm, "outdir": outdir}
        lone = peer("greenfetch", url, vg, processes=1, callgrind="self", **opts)
        counted["processes=1: the process"] = [
            (_instructions(outdir, p["pid"]), p["calls"]) for p in lone["procs"]
        ]
        kids = peer("greenfetch", url, processes=2, callgrind="children", **opts)
        counted["processes=2: each child"] = [
            (_instructions(outdir, p["pid"]), p["calls"]) for p in kids["procs"] if p["role"] == "child"
        ]
        parent = peer("greenfetch", url, vg, processes=2, callgrind="self", **opts)
        counted["processes=2: the parent"] = [
            (_instructions(outdir, p["pid"]), p["calls"]) for p in parent["procs"] if p["role"] == "parent"
        ]
    base = counted["processes=1: the process"][0][0] / calls
    rows = []
    for key, per in counted.items():
        each = [n / c for n, c in per if c]
        rows.append(
            f"| {key} | {', '.join(f'{x / 1000:,.1f}k' for x in each)} | "
            f"{', '.join(f'{x / base:.3f}' for x in each)} |"
        )
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return "\n".join(
        [
            f"### Instructions per call: {calls:,} ListTables at concurrency {CONCURRENCY}, {LATENCY * 1000:.0f} ms "
            "loopback (callgrind)",
            "",
            f"_Measured {when}; load average {' '.join(f'{x:.2f}' for x in load_before)} at the start (instruction "
            "counts do not depend on it). Counted over the timed batch only (`callgrind_control -i on/off`), "
            "user space only (the kernel's share, syscalls and switches, is not in them)._",
            "",
            "| process | instructions per call | / the lone process |",
            "|---|---|---|",
            *rows,
        ]
    )


SECTIONS = {"processes_instructions": instructions}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--peer":
        print(json.dumps(greenfetch_peer(json.loads(sys.argv[2]))), flush=True)
    else:
        import greenfetch  # noqa: F401  (first: the parent starts LoopbackServer)

        print(
            instructions("--quick" in sys.argv)
            if "--instructions" in sys.argv
            else run("--quick" in sys.argv)
        )
