"""The engine's own CPU per call, with botocore's HTTP call taken out.

    scripts/bench --only engine_path [--quick] [--write]      (or: python scripts/bench_engine_path.py)

Everything greenfetch adds around a call (coercing the request, run defaults, the client lookup,
scheduling, attempts, metrics, the Result) with the call itself replaced by a canned answer:
``BotocoreCaller`` whose ``call`` returns it (the client is looked up once, in ``resolve``). What is left is what greenfetch costs
over botocore; the throughput section measures the whole call. Each figure is the best of 7 rounds in
one interpreter (CPU time, not wall), so a busy machine moves it less than a throughput figure; the
pieces are timed alone with ``timeit`` and do not add up to the total (scheduling and greenlet
switches are only in the total).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

SECTION = "engine_path"
HERE = Path(__file__).resolve().parent
LIST = {"service": "dynamodb", "operation": "ListTables", "params": {}}


def child(calls: int, backend: str) -> dict[str, Any]:
    import os
    import time
    import timeit

    import greenfetch  # noqa: F401  (first: patches gevent before botocore)
    from greenfetch import Config, Engine, Request, Result
    from greenfetch._caller import BotocoreCaller
    from greenfetch._metrics import Metrics

    class CannedAnswer(BotocoreCaller):
        def call(self, request: Request, client: Any = None) -> dict[str, Any]:
            return {"TableNames": [], "ResponseMetadata": {"RequestId": "r", "HTTPStatusCode": 200}}

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "example")
    engine = Engine(
        Config.resolve({"region": "us-east-1", "endpoint_url": "http://127.0.0.1:9", "backend": backend})
    )
    engine.caller = CannedAnswer(engine.clients)
    engine.batch_requests([LIST] * 200, 100)
    best = float("inf")
    for _ in range(7):
        began = time.process_time()
        engine.batch_requests([LIST] * calls, 100)
        best = min(best, time.process_time() - began)
    out = {"total_us": best / calls * 1e6}
    if backend == "gevent":
        metrics = Metrics()
        result = Result(0, engine.prepare(LIST), result={}, duration_ms=5.0, attempts=1)
        metrics.result(result)  # the first one takes the slow path; the rest are what a batch sees
        pieces = {
            "coerce": lambda: Request.coerce(LIST),
            "prepare": lambda: engine.prepare(LIST),
            "metrics": lambda: metrics.result(result),
        }
        for name, fn in pieces.items():
            out[f"{name}_us"] = min(timeit.repeat(fn, number=2000, repeat=5)) / 2000 * 1e6
    engine.close()
    return out


def run(quick: bool = False) -> str:
    sys.path.insert(0, str(HERE))
    from bench import measured_note, table

    calls = 300 if quick else 10_000
    rows = []
    for backend in ("gevent", "threads"):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(calls), backend],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append((backend, json.loads(proc.stdout.strip().splitlines()[-1])))
    gevent = rows[0][1]
    body = [
        "### The engine's own path: CPU per call with the HTTP call taken out (issue 10)",
        "",
        measured_note(),
        "",
        f"{calls:,} DynamoDB ListTables through `batch_requests` at concurrency 100, `BotocoreCaller` answering "
        "from a canned dict (its client looked up in `resolve`): what greenfetch costs around botocore. "
        "Best of 7 rounds, CPU time. Reproduce with `scripts/bench --only engine_path`.",
        "",
        table(["backend", "µs CPU per call"], [[b, f"{m['total_us']:.1f}"] for b, m in rows]),
        "",
        "Pieces on the gevent backend, each alone (`timeit`, best of 5):",
        "",
        table(
            ["piece", "µs per call"],
            [
                ["`Request.coerce` (a dict to a Request)", f"{gevent['coerce_us']:.1f}"],
                [
                    "`Engine.prepare` (coerce, run defaults, the client lookup, the API name)",
                    f"{gevent['prepare_us']:.1f}",
                ],
                ["`Metrics.result` (a first-attempt success)", f"{gevent['metrics_us']:.1f}"],
            ],
        ),
    ]
    return "\n".join(body)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(int(sys.argv[2]), sys.argv[3])))
    else:
        print(run("--quick" in sys.argv))
