"""Benchmarks: greenfetch against its peers on the loopback server, as markdown for docs/performance.md.

    scripts/bench [--quick] [--only NAME] [--write] [--doc PATH]

Sections: ``engine`` (its parts ``throughput``, ``tls`` (the same over HTTPS), ``latency``, ``streaming``, ``isolation``, ``profile``) and
every ``scripts/bench_*.py`` module that defines ``SECTION = "name"`` and ``run(quick: bool) -> str``
(markdown), plus any it lists in ``SECTIONS = {"name": run}``. ``--only`` runs one section or one engine part; ``--write`` puts each result between its
``<!-- bench:NAME:start -->`` / ``<!-- bench:NAME:end -->`` markers (engine parts are ``engine.PART``,
nested inside ``engine``) with :func:`write_section`, which other benchmarks reuse. Every peer runs in its
own child process (``_bench_peers.py``) against a ``LoopbackServer`` child, so gevent's patching never
touches the thread or asyncio peers and the server never shares a GIL with a client.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import greenfetch  # noqa: F401  (first: the parent starts LoopbackServer, which imports greenfetch)
from greenfetch.testing import LoopbackServer, ThrowawayCA, throwaway_ca

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
PEERS = Path(__file__).with_name("_bench_peers.py")
LABELS = {
    "greenfetch": "greenfetch (`batch_requests`, gevent)",
    "threads": "boto3 + ThreadPoolExecutor (one shared client)",
    "aiobotocore": "aiobotocore (`gather` + Semaphore)",
}


@dataclass(frozen=True)
class Sizes:
    quick: bool = False
    repeat: int = 3
    throughput: int = 10_000
    latency: int = 1_000
    streaming: int = 100_000
    isolation: int = 400
    profile: int = 3_000


FULL, QUICK = Sizes(), Sizes(True, throughput=100, latency=100, streaming=200, isolation=5, profile=50)


# -- plumbing ------------------------------------------------------------------------------------


def peer(kind: str, url: str, **opts: Any) -> dict[str, Any]:
    """Run one peer in its own interpreter and return its JSON measurement."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GREENFETCH_"))}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    proc = subprocess.run(
        [sys.executable, str(PEERS), kind, json.dumps({"url": url, **opts})],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"bench peer {kind} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def peers(url: str, runs: dict[str, tuple[str, dict[str, Any]]], sizes: Sizes) -> dict[str, Any]:
    """Several peers: ``sizes.repeat`` rounds, one peer after another, keeping each peer's fastest run
    (best of N damps the other load on a shared machine); ``--quick`` runs them all at once instead."""
    if sizes.quick:
        with ThreadPoolExecutor(len(runs)) as pool:  # greenlets (the parent is patched): they wait on pipes
            futures = {key: pool.submit(peer, kind, url, **opts) for key, (kind, opts) in runs.items()}
            return {key: future.result() for key, future in futures.items()}
    best: dict[str, Any] = {}
    for round_ in range(sizes.repeat):
        for key, (kind, opts) in runs.items():
            m = peer(kind, url, **opts)
            print(
                f"bench:   round {round_ + 1} {key}: {m['calls'] / m['wall']:,.0f} calls/s, "
                f"{1000 * m['cpu'] / m['calls']:.2f} ms CPU/call, run-queue wait {m['runqueue_wait']:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            if key not in best or m["wall"] < best[key]["wall"]:
                best[key] = {**m, "rounds": sizes.repeat}
    return best


def measured_note(sizes: Sizes | None = None) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    best = (
        f"; best of {sizes.repeat} interleaved rounds per peer"
        if sizes and not sizes.quick and sizes.repeat > 1
        else ""
    )
    return (
        f"_Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores "
        f"(load average {load} at the start; the machine was shared, so treat numbers as ±15%){best}._"
    )


def server_cost(server: LoopbackServer, before: dict[str, Any]) -> str:
    after = server.stats()
    requests = max(1, after["requests"] - before["requests"])
    return f"{1e6 * (after['cpu_seconds'] - before['cpu_seconds']) / requests:.0f} µs CPU per request"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def rates(m: dict[str, Any]) -> tuple[float, float]:
    """(calls per second, CPU milliseconds per call)."""
    return m["calls"] / m["wall"], 1000.0 * m["cpu"] / m["calls"]


def unstarved(m: dict[str, Any]) -> float:
    """Calls per second with the time spent waiting for a CPU taken out (see the run-queue note)."""
    return m["calls"] / max(m["wall"] - m["runqueue_wait"], 1e-9)


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


# -- engine parts ----------------------------------------------------------------------------------


def bench_throughput(sizes: Sizes) -> str:
    calls, conc = sizes.throughput, 100
    accounts = 60
    wide = 400  # the ceiling out of the way (8,000 calls/s at 50 ms): both peers CPU-bound
    labels = {
        **LABELS,
        "urllib3": "greenfetch on botocore's urllib3 session (before issue 10)",
        "accounts": f"greenfetch, calls interleaved over {accounts} accounts' credentials",
        "greenfetch_wide": f"greenfetch at concurrency {wide} (CPU-bound)",
        "aiobotocore_wide": f"aiobotocore at concurrency {wide} (CPU-bound)",
    }
    variants = {
        "urllib3": ("greenfetch", {"http": "urllib3"}),
        "accounts": ("greenfetch", {"accounts": accounts}),
        "greenfetch_wide": ("greenfetch", {"concurrency": wide}),
        "aiobotocore_wide": ("aiobotocore", {"concurrency": wide}),
    }
    with LoopbackServer(latency=0.05) as url:
        server = _server_of(url)
        before = server.stats()
        runs = peers(
            url,
            {
                **{kind: (kind, {"calls": calls, "concurrency": conc}) for kind in LABELS},
                **{
                    key: (kind, {"calls": calls, "concurrency": conc, **extra})
                    for key, (kind, extra) in variants.items()
                },
            },
            sizes,
        )
        cost = server_cost(server, before)
    rows = []
    for kind, m in runs.items():
        per_s, cpu = rates(m)
        rows.append(
            [
                labels[kind],
                f"{per_s:,.0f}",
                f"{unstarved(m):,.0f}",
                f"{cpu:.2f}",
                f"{1000 / cpu:,.0f}",
                f"{m['rss_mb']:.0f}",
                f"{m['wall']:.1f}",
                f"{m['runqueue_wait']:.1f}",
                m["calls"] - m["ok"],
            ]
        )
    (g, g_cpu), (a, a_cpu), (t, _) = (rates(runs[k]) for k in ("greenfetch", "aiobotocore", "threads"))
    gu, au, tu = (unstarved(runs[k]) for k in ("greenfetch", "aiobotocore", "threads"))
    (gw, gw_cpu), (aw, aw_cpu) = (rates(runs[k]) for k in ("greenfetch_wide", "aiobotocore_wide"))
    return "\n".join(
        [
            f"### Throughput: {calls:,} DynamoDB ListTables calls, concurrency {conc}, 50 ms server latency",
            "",
            measured_note(sizes),
            "",
            table(
                [
                    "peer",
                    "calls/s",
                    "calls/s less run-queue wait",
                    "CPU ms/call",
                    "calls per CPU-second",
                    "peak RSS MB",
                    "wall s",
                    "run-queue wait s",
                    "failed",
                ],
                rows,
            ),
            "",
            f"- greenfetch / aiobotocore: **{g / a:.2f}x** calls/s as measured, {gu / au:.2f}x less run-queue "
            f"wait (target ≥ 1.0x: {verdict(min(g / a, gu / au) >= 1.0)}); CPU per call {g_cpu / a_cpu:.2f}x "
            f"(target ≤ 1.0x: {verdict(g_cpu <= a_cpu)})",
            f"- greenfetch / threads: **{g / t:.2f}x** calls/s as measured, {gu / tu:.2f}x less run-queue wait "
            f"(target ≥ 1.4x: {verdict(min(g / t, gu / tu) >= 1.4)})",
            f"- Issue 10 targets (one process): calls/s ≥ 1.15x aiobotocore: {verdict(g / a >= 1.15)}; CPU per call "
            f"≤ 0.85x aiobotocore's: {verdict(g_cpu <= 0.85 * a_cpu)}. The geventhttpclient session against botocore's "
            f"urllib3 session: CPU per call {g_cpu / rates(runs['urllib3'])[1]:.2f}x. {accounts} accounts interleaved "
            f"against one: CPU per call {rates(runs['accounts'])[1] / g_cpu:.2f}x (one client, one pool for all).",
            f"- Where neither peer meets the ceiling (concurrency {wide}, both CPU-bound): greenfetch / aiobotocore "
            f"**{gw / aw:.2f}x** calls/s at **{gw_cpu / aw_cpu:.2f}x** CPU per call (issue 24 targets ≥ 1.5x: "
            f"{verdict(gw / aw >= 1.5)}; ≤ 0.55x: {verdict(gw_cpu <= 0.55 * aw_cpu)}). At concurrency {conc} the "
            f"ceiling binds first: 1.5x aiobotocore's calls/s there would exceed it.",
            f"- Ceiling at this latency: {conc / 0.05:,.0f} calls/s. Loopback server: {cost} (its own process).",
            "- CPU is the process's user+system time over the timed window (client creation excluded); RSS is "
            "the process's peak. Run-queue wait is the time the peer's threads were ready to run while another "
            "process had the CPU; 'less run-queue wait' is calls / (wall - wait). The thread peer's wait is "
            "summed over its threads, which overstates it and so flatters its adjusted figure.",
        ]
    )


def bench_tls(sizes: Sizes) -> str:
    """The throughput workload over HTTPS (a throwaway CA every peer trusts) next to plain HTTP, same run."""
    calls, conc = sizes.throughput, 100
    wide = 400  # the ceiling (2,000 calls/s at concurrency 100) out of the way: both peers CPU-bound
    labels = {
        **LABELS,
        **{f"{k}_wide": f"{LABELS[k]} at concurrency {wide}" for k in ("greenfetch", "aiobotocore")},
    }
    runs: dict[str, dict[str, Any]] = {}
    costs = {}
    with tempfile.TemporaryDirectory(prefix="greenfetch-bench-tls-") as tmp:
        ca = throwaway_ca(tmp)
        for scheme, tls in (("http", None), ("https", ca)):
            with LoopbackServer(latency=0.05, tls=tls) as url:
                server = _server_of(url, tls)
                before = server.stats()
                opts = {"calls": calls, "concurrency": conc, **({"ca": ca.ca} if tls else {})}
                wide_opts = {**opts, "concurrency": wide}
                got = peers(
                    url,
                    {
                        **{kind: (kind, opts) for kind in LABELS},
                        **{f"{kind}_wide": (kind, wide_opts) for kind in ("greenfetch", "aiobotocore")},
                    },
                    sizes,
                )
                costs[scheme] = server_cost(server, before)
            runs.update({f"{scheme}:{kind}": m for kind, m in got.items()})
    rows = []
    for key, m in runs.items():
        scheme, kind = key.split(":")
        per_s, cpu = rates(m)
        rows.append(
            [
                scheme.upper(),
                labels[kind],
                f"{per_s:,.0f}",
                f"{unstarved(m):,.0f}",
                f"{cpu:.2f}",
                f"{m['rss_mb']:.0f}",
                f"{m['wall']:.1f}",
                f"{m['runqueue_wait']:.1f}",
                m["calls"] - m["ok"],
            ]
        )

    def ratios(scheme: str) -> tuple[float, float, float]:
        (g, g_cpu), (a, a_cpu), (t, _) = (
            rates(runs[f"{scheme}:{k}"]) for k in ("greenfetch", "aiobotocore", "threads")
        )
        return g / a, g_cpu / a_cpu, g / t

    (hs, hc, ht), (ts, tc, tt) = ratios("http"), ratios("https")

    def wide_ratios(scheme: str) -> tuple[float, float]:
        (g, g_cpu), (a, a_cpu) = (rates(runs[f"{scheme}:{k}_wide"]) for k in ("greenfetch", "aiobotocore"))
        return g / a, g_cpu / a_cpu

    (hws, hwc), (tws, twc) = wide_ratios("http"), wide_ratios("https")
    tls_cost = {k: rates(runs[f"https:{k}"])[1] - rates(runs[f"http:{k}"])[1] for k in LABELS}
    return "\n".join(
        [
            f"### Over TLS: {calls:,} DynamoDB ListTables calls, concurrency {conc}, 50 ms server latency, "
            "HTTPS loopback vs plain HTTP in one run",
            "",
            measured_note(sizes),
            "",
            "The HTTPS server is `LoopbackServer(tls=throwaway_ca(dir))`; every peer trusts that CA's bundle "
            "(botocore and aiobotocore `verify=ca.pem`, greenfetch's clients through `AWS_CA_BUNDLE`). Each peer "
            f"opens up to {conc} keep-alive connections, so the timed window includes up to {conc} TLS handshakes "
            "(the warm-up call made one).",
            "",
            table(
                [
                    "scheme",
                    "peer",
                    "calls/s",
                    "calls/s less run-queue wait",
                    "CPU ms/call",
                    "peak RSS MB",
                    "wall s",
                    "run-queue wait s",
                    "failed",
                ],
                rows,
            ),
            "",
            f"- greenfetch / aiobotocore over HTTPS: **{ts:.2f}x** calls/s, CPU per call **{tc:.2f}x** "
            f"(plain HTTP in this run: {hs:.2f}x calls/s, {hc:.2f}x CPU per call). Issue 10 target, the same ratios "
            f"as plain HTTP or better: calls/s {verdict(ts >= hs * 0.97)}, CPU per call {verdict(tc <= hc * 1.03)} "
            "(3% allowed for noise); against the absolute targets (≥ 1.15x, ≤ 0.85x): "
            f"{verdict(ts >= 1.15)}, {verdict(tc <= 0.85)}.",
            f"- Issue 24 targets (≥ 1.5x calls/s, ≤ 0.55x CPU per call), where the ceiling does not bind first "
            f"(concurrency {wide}: at {conc} in flight and 50 ms, {conc / 0.05:,.0f} calls/s is the most any peer "
            f"can do, and 1.5x aiobotocore's rate there would exceed it): over HTTPS **{tws:.2f}x** calls/s "
            f"({verdict(tws >= 1.5)}), **{twc:.2f}x** CPU per call ({verdict(twc <= 0.55)}); plain HTTP {hws:.2f}x "
            f"({verdict(hws >= 1.5)}), {hwc:.2f}x ({verdict(hwc <= 0.55)}). At concurrency {conc}: CPU per call "
            f"{verdict(tc <= 0.55)} over HTTPS, {verdict(hc <= 0.55)} over HTTP.",
            f"- greenfetch / threads over HTTPS: {tt:.2f}x calls/s (plain HTTP: {ht:.2f}x).",
            "- What TLS adds per call (HTTPS minus HTTP CPU ms/call): "
            + ", ".join(f"{k} {v:+.3f}" for k, v in tls_cost.items())
            + ".",
            f"- Loopback server: {costs['http']} over HTTP, {costs['https']} over HTTPS (its own process).",
        ]
    )


def bench_latency(sizes: Sizes) -> str:
    calls, conc, latency = sizes.latency, 100, 0.2
    floor = math.ceil(calls / conc) * latency
    with LoopbackServer(latency=latency) as url:
        runs = peers(url, {kind: (kind, {"calls": calls, "concurrency": conc}) for kind in LABELS}, sizes)
    rows = [
        [
            LABELS[k],
            f"{m['wall']:.3f}",
            f"{m['wall'] / floor:.3f}x",
            f"{1000 * m['cpu'] / m['calls']:.2f}",
            f"{m['runqueue_wait']:.2f}",
            m["calls"] - m["ok"],
        ]
        for k, m in runs.items()
    ]
    ratio = runs["greenfetch"]["wall"] / floor
    return "\n".join(
        [
            f"### Latency-bound: {calls:,} calls, 200 ms server latency, concurrency {conc} (floor {floor:.1f} s)",
            "",
            measured_note(sizes),
            "",
            table(["peer", "wall s", "vs floor", "CPU ms/call", "run-queue wait s", "failed"], rows),
            "",
            f"- greenfetch: {ratio:.3f}x the floor (target ≤ 1.05x: {verdict(ratio <= 1.05)})",
        ]
    )


def bench_streaming(sizes: Sizes) -> str:
    calls, conc, latency = sizes.streaming, 200, 0.005
    with LoopbackServer(latency=latency) as url:
        m = peer("stream", url, calls=calls, concurrency=conc)
    per_s, cpu = rates(m)
    return "\n".join(
        [
            f"### Streaming: {calls:,} calls via `iter_results` over a lazy generator, concurrency {conc}, "
            f"{latency * 1000:.0f} ms server latency",
            "",
            measured_note(),
            "",
            table(
                ["calls/s", "CPU ms/call", "RSS before the stream MB", "peak RSS MB", "failed"],
                [
                    [
                        f"{per_s:,.0f}",
                        f"{cpu:.2f}",
                        f"{m['rss_before_mb']:.0f}",
                        f"{m['rss_mb']:.0f}",
                        m["calls"] - m["ok"],
                    ]
                ],
            ),
            "",
            f"- Peak RSS {m['rss_mb']:.0f} MB (target < 100 MB: {verdict(m['rss_mb'] < 100)}); growth over the "
            f"stream {m['rss_mb'] - m['rss_before_mb']:.0f} MB for {calls:,} results.",
        ]
    )


def bench_isolation(sizes: Sizes) -> str:
    calls, conc = sizes.isolation, 50  # (c) holds ~30 MB per live session: keep it bounded
    modes = {
        "shared": "(a) one shared client (`engine.clients.client(req)`)",
        "isolated": "(b) fresh client per greenlet (`client(req, isolated=True)`, shared session/loader)",
        "session": "(c) new botocore session + client per greenlet",
    }
    with LoopbackServer(latency=0.05) as url:
        runs = peers(
            url,
            {mode: ("isolation", {"calls": calls, "concurrency": conc, "mode": mode}) for mode in modes},
            replace(sizes, repeat=1),
        )
    rows = []
    for mode, m in runs.items():
        per_s, cpu = rates(m)
        rows.append([modes[mode], f"{per_s:,.0f}", f"{cpu:.2f}", f"{m['rss_mb']:.0f}", m["calls"] - m["ok"]])
    return "\n".join(
        [
            f"### Client isolation: {calls:,} calls, concurrency {conc}, 50 ms server latency "
            "(one call per greenlet)",
            "",
            measured_note(),
            "",
            table(["mode", "calls/s", "CPU ms/call", "peak RSS MB", "failed"], rows),
        ]
    )


def bench_profile(sizes: Sizes) -> str:
    calls = sizes.profile
    with LoopbackServer(latency=0.05) as url:
        m = peer("greenfetch", url, calls=calls, concurrency=100, profile=True, top=15)
    top = [
        [
            f"`{row['function']}`",
            f"{row['own_pct']:.1f}",
            f"{row['cum_pct']:.1f}",
            f"{row['calls_per_call']:.1f}",
        ]
        for row in m["top"]
    ]
    areas = [[area, f"{pct:.1f}"] for area, pct in m["areas"] if pct >= 0.5]
    return "\n".join(
        [
            f"### Where greenfetch's CPU per call goes (cProfile, {calls:,} calls, concurrency 100)",
            "",
            measured_note(),
            "",
            "Own time by package (% of profiled CPU):",
            "",
            table(["package", "% own time"], areas),
            "",
            "Top functions by own time:",
            "",
            table(["function", "% own", "% cumulative", "calls per API call"], top),
            "",
            "_cProfile adds overhead (roughly 2x) and greenlet switches blur cumulative times; own-time shares "
            "are the reliable part._",
        ]
    )


def _server_of(url: str, tls: ThrowawayCA | None = None) -> LoopbackServer:
    """A handle on a running server for stats() (the `with` block owns the process)."""
    handle = LoopbackServer(tls=tls)
    handle.url = url
    return handle


ENGINE: dict[str, Callable[[Sizes], str]] = {
    "throughput": bench_throughput,
    "tls": bench_tls,
    "latency": bench_latency,
    "streaming": bench_streaming,
    "isolation": bench_isolation,
    "profile": bench_profile,
}


# -- sections and the doc ------------------------------------------------------------------------


def markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def write_section(name: str, markdown: str, doc: Path = DOC) -> None:
    """Replace the text between ``<!-- bench:NAME:start -->`` and ``<!-- bench:NAME:end -->`` in ``doc``
    (appending a new marked section when there is none), atomically."""
    start, end = markers(name)
    text = doc.read_text() if doc.exists() else "# Performance\n"
    block = f"{start}\n{markdown.strip()}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=doc.parent, prefix=f".{doc.name}.")
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, doc)


def plugins() -> dict[str, Callable[[bool], str]]:
    """Other benchmarks: ``scripts/bench_*.py`` modules with ``SECTION`` and ``run(quick) -> markdown``
    (and ``SECTIONS``, more of them by name).
    One that fails to import is reported and skipped, so it cannot stop the others."""
    found = {}
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(f"_bench_plugin_{path.stem}", path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses and pickle look modules up there
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - someone else's benchmark; say so and go on
            print(f"bench: skipping {path.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        if hasattr(module, "SECTION") and hasattr(module, "run"):
            found[module.SECTION] = module.run
        found.update(getattr(module, "SECTIONS", {}))  # more parts of one module: {name: run(quick)}
    return found


def engine_section(sizes: Sizes, parts: list[str]) -> str:
    header = (
        f"## Engine\n\nPython {platform.python_version()}, botocore {version('botocore')}, "
        f"gevent {version('gevent')}, aiobotocore {version('aiobotocore')}. "
        "Reproduce with `scripts/bench --only engine`."
    )

    def run(part: str) -> str:
        start, end, began = *markers(f"engine.{part}"), time.monotonic()
        markdown = ENGINE[part](sizes).strip()
        print(f"bench: engine.{part} took {time.monotonic() - began:.1f} s", file=sys.stderr, flush=True)
        return f"{start}\n{markdown}\n{end}"

    if sizes.quick:  # smoke run: all parts at once (greenlets in this patched parent), numbers meaningless
        with ThreadPoolExecutor(len(parts)) as pool:
            return "\n\n".join([header, *pool.map(run, parts)])
    return "\n\n".join([header, *map(run, parts)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke-sized run (seconds, numbers meaningless)")
    parser.add_argument("--only", metavar="NAME", help="one section (engine, a plugin) or engine part")
    parser.add_argument(
        "--write", action="store_true", help=f"write the sections into {DOC.relative_to(ROOT)}"
    )
    parser.add_argument("--doc", type=Path, default=DOC, help="the markdown file --write updates")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    extra = {} if args.only in ("engine", *ENGINE) else plugins()  # engine runs need no plugin imports
    names = ["engine", *extra]
    if args.only and args.only not in (*names, *ENGINE):
        parser.error(f"--only {args.only!r} is not a section; valid: {', '.join([*names, *ENGINE])}")

    def produce(name: str) -> str:
        if name.startswith("engine."):
            return ENGINE[name.removeprefix("engine.")](sizes)
        return engine_section(sizes, list(ENGINE)) if name == "engine" else extra[name](args.quick)

    selected = [f"engine.{args.only}"] if args.only in ENGINE else [args.only] if args.only else names
    for name in selected:  # each section is written as soon as it is done
        markdown = produce(name)
        print(markdown, end="\n\n", flush=True)
        if args.write:
            write_section(name, markdown, args.doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
