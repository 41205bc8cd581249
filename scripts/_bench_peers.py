"""One benchmark peer per child process: ``python scripts/_bench_peers.py KIND JSON_OPTIONS``.

Each peer runs in its own interpreter so gevent's patching (greenfetch) never touches the thread and
asyncio peers. It warms its client with one call (client creation and model loading are not timed),
then times ``calls`` DynamoDB ListTables calls at ``concurrency`` against ``url``, and prints one JSON
line: calls, ok, wall seconds, CPU seconds of the process over the timed window, peak RSS (ru_maxrss,
whole process life) and, for ``stream``, the RSS before the stream started. With ``ca`` (a PEM path) the
peers trust that CA bundle, for the HTTPS loopback (botocore/aiobotocore ``verify=``, the engine through
``AWS_CA_BUNDLE``).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

LIST = {"service": "dynamodb", "operation": "ListTables"}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _runqueue_wait() -> float:
    """Seconds this process's threads spent runnable but not running (Linux schedstat): how much the
    other processes on a shared machine starved this peer."""
    total = 0
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/schedstat") as stat:
                total += int(stat.read().split()[1])
    except (OSError, ValueError, IndexError):
        return float("nan")
    return total / 1e9


def _window(start: tuple[float, float, float], calls: int, ok: int) -> dict[str, Any]:
    cpu, wall, waited = start
    return {
        "calls": calls,
        "ok": ok,
        "wall": time.perf_counter() - wall,
        "cpu": _cpu() - cpu,
        "rss_mb": _rss_mb(),
        "runqueue_wait": _runqueue_wait() - waited,
    }


def _start() -> tuple[float, float, float]:
    return _cpu(), time.perf_counter(), _runqueue_wait()


def _timed(run: Callable[[], int], calls: int) -> dict[str, Any]:
    start = _start()
    ok = run()
    return _window(start, calls, ok)


def _engine(opts: dict[str, Any]) -> Any:
    from greenfetch import Config, Engine

    if opts.get("ca"):  # HTTPS loopback: trust its throwaway CA (the engine's clients read AWS_CA_BUNDLE)
        os.environ["AWS_CA_BUNDLE"] = opts["ca"]

    if opts.get("http") == "urllib3":  # "before" of issue 10: botocore's own HTTP session
        import greenfetch._clients

        greenfetch._clients.install_http_session = lambda client, config: None  # type: ignore[assignment]

    return Engine(
        Config.resolve(
            {
                "region": "us-east-1",
                "endpoint_url": opts["url"],
                "max_attempts": 3,
                "concurrency": opts["concurrency"],
            }
        )
    )


def greenfetch_peer(opts: dict[str, Any]) -> dict[str, Any]:
    import greenfetch  # noqa: F401  (first: patches gevent before botocore)

    engine = _engine(opts)
    engine.execute(LIST)
    requests = [LIST] * opts["calls"]
    if opts.get("accounts"):  # the same calls, interleaved over N accounts' credentials
        accounts = [
            {
                "account": f"{i:012d}",
                "credentials": {"AccessKeyId": f"AKIA{i:016d}", "SecretAccessKey": f"secret-{i}"},
            }
            for i in range(opts["accounts"])
        ]
        requests = [{**LIST, **accounts[i % len(accounts)]} for i in range(opts["calls"])]
        for account in accounts:
            engine.execute({**LIST, **account})

    def run() -> int:
        return sum(r.ok for r in engine.batch_requests(requests, opts["concurrency"]))

    if opts.get("profile"):
        return _profiled(run, opts)
    return _timed(run, opts["calls"])


def stream_peer(opts: dict[str, Any]) -> dict[str, Any]:
    """iter_results over a lazy generator: memory must stay bounded by the concurrency."""
    import greenfetch  # noqa: F401

    engine = _engine(opts)
    engine.execute(LIST)
    before = _rss_mb()

    def run() -> int:
        lazy = (
            {"service": "dynamodb", "operation": "ListTables", "id": str(i)} for i in range(opts["calls"])
        )
        return sum(r.ok for r in engine.iter_results(lazy, opts["concurrency"]))

    return {**_timed(run, opts["calls"]), "rss_before_mb": before}


def threads_peer(opts: dict[str, Any]) -> dict[str, Any]:
    """The fair thread version: one shared client, a pool as wide as the concurrency."""
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from botocore.config import Config

    cfg = Config(
        max_pool_connections=opts["concurrency"], retries={"mode": "standard", "total_max_attempts": 3}
    )
    client = boto3.session.Session().client(
        "dynamodb", region_name="us-east-1", endpoint_url=opts["url"], config=cfg, verify=opts.get("ca")
    )
    client.list_tables()

    def one(_: int) -> bool:
        try:
            client.list_tables()
            return True
        except Exception:  # noqa: BLE001 - counted as not ok
            return False

    def run() -> int:
        with ThreadPoolExecutor(opts["concurrency"]) as pool:
            return sum(pool.map(one, range(opts["calls"])))

    return _timed(run, opts["calls"])


def aiobotocore_peer(opts: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    async def main() -> dict[str, Any]:
        cfg = AioConfig(
            max_pool_connections=opts["concurrency"], retries={"mode": "standard", "total_max_attempts": 3}
        )
        async with get_session().create_client(
            "dynamodb", region_name="us-east-1", endpoint_url=opts["url"], config=cfg, verify=opts.get("ca")
        ) as client:
            await client.list_tables()
            gate = asyncio.Semaphore(opts["concurrency"])

            async def one() -> bool:
                async with gate:
                    try:
                        await client.list_tables()
                        return True
                    except Exception:  # noqa: BLE001 - counted as not ok
                        return False

            start = _start()
            ok = sum(await asyncio.gather(*(one() for _ in range(opts["calls"]))))
            return _window(start, opts["calls"], ok)

    return asyncio.run(main())


def isolation_peer(opts: dict[str, Any]) -> dict[str, Any]:
    """Client isolation: shared client, a fresh client per greenlet, or a new session + client per greenlet."""
    engine = _engine(opts)  # imports greenfetch first, so gevent patches before botocore

    import botocore.session
    import gevent.pool

    request = engine.prepare(LIST)
    shared = engine.clients.client(request)
    shared.list_tables()
    mode = opts["mode"]

    def client() -> Any:
        if mode == "shared":
            return shared
        if mode == "isolated":
            return engine.clients.client(request, isolated=True)
        return botocore.session.Session().create_client(
            "dynamodb", region_name="us-east-1", endpoint_url=opts["url"]
        )

    def one(_: int) -> bool:
        mine = client()
        try:
            mine.list_tables()
            return True
        except Exception:  # noqa: BLE001 - counted as not ok
            return False
        finally:
            if mine is not shared:
                mine.close()  # its own connection pool: close it, or sockets pile up until GC

    def run() -> int:
        return sum(gevent.pool.Pool(opts["concurrency"]).imap_unordered(one, range(opts["calls"])))

    return _timed(run, opts["calls"])


def _profiled(run: Callable[[], int], opts: dict[str, Any]) -> dict[str, Any]:
    """cProfile around the timed run; top functions by own time, and own time by package."""
    import cProfile
    import pstats

    profile = cProfile.Profile(time.process_time)  # CPU time: hub idle time is not anyone's cost
    result = _timed(lambda: profile.runcall(run), opts["calls"])
    stats = pstats.Stats(profile)
    total = sum(row[2] for row in stats.stats.values()) or 1.0  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    top = [
        {
            "function": f"{_short(file)}:{line}({name})",
            "own_pct": 100 * st[2] / total,
            "cum_pct": 100 * st[3] / total,
            "calls_per_call": st[1] / opts["calls"],
        }
        for (file, line, name), st in rows[: opts.get("top", 20)]
    ]
    areas: dict[str, float] = {}
    for (file, _, _), st in rows:
        areas[_area(file)] = areas.get(_area(file), 0.0) + 100 * st[2] / total
    return {**result, "top": top, "areas": sorted(areas.items(), key=lambda kv: -kv[1])}


def _short(path: str) -> str:
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path.rsplit("/", 2)[-1] if "/" in path else path


_AREAS = (
    ("botocore/", "botocore"),
    ("urllib3/", "urllib3"),
    ("http/client", "http.client"),
    ("gevent/", "gevent"),
    ("greenfetch/", "greenfetch"),
    ("json/", "json"),
    ("ssl", "ssl"),
    ("email/", "email (header parsing)"),
    ("dateutil/", "dateutil"),
    ("jmespath/", "jmespath"),
)


def _area(path: str) -> str:
    for needle, area in _AREAS:
        if needle in path:
            return area
    return "builtins" if path == "~" else "other stdlib/python"


PEERS = {
    "greenfetch": greenfetch_peer,
    "threads": threads_peer,
    "aiobotocore": aiobotocore_peer,
    "stream": stream_peer,
    "isolation": isolation_peer,
}

if __name__ == "__main__":
    print(json.dumps(PEERS[sys.argv[1]](json.loads(sys.argv[2]))), flush=True)
