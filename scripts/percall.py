"""CPU and instructions per call on the loopback server, layer by layer: the A/B tool of docs/performance.md.

    python scripts/percall.py cpu  [--calls N] [--rounds R] VARIANT...   interleaved CPU-time rounds, nice'd
    python scripts/percall.py ir   [--calls N] VARIANT...                 callgrind instructions per call
    python scripts/percall.py strace [--calls N] VARIANT...               system calls per call (strace -c)

A VARIANT is ``what:scheme[@tree]``: ``what`` is one of the child's runs below, ``scheme`` ``http`` or
``https``, ``tree`` a source tree put first on PYTHONPATH (a git worktree of the code before a change;
default: this one). Each child warms up (client, models, and ``--warm`` calls at the concurrency, so the
pool holds its connections: the handshakes are then outside the timed window unless ``--cold``), then
times ``--calls`` ListTables at ``--concurrency``. Instructions are callgrind's count inside the timed window
only (``--instr-atstart=no``; the child switches instrumentation on and off with callgrind's client
requests), divided by N: deterministic up to the hub's scheduling, so the figure to use when the machine
is loaded. CPU is the process's user+system time over the timed window.

Children (``what``):

- ``engine``: ``Engine.batch_requests`` (the bench's greenfetch peer).
- ``canned_http``: the same with every client's HTTP session answering a canned ListTables response
  (no socket): greenfetch and botocore, without the HTTP session, TLS and the hub's I/O.
- ``canned_caller``: the same with ``BotocoreCaller.call`` answering a canned dict: greenfetch alone.
- ``aiobotocore``: aiobotocore, ``gather`` behind a Semaphore (the bench's peer).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LIST = {"service": "dynamodb", "operation": "ListTables"}
CANNED = b'{"TableNames": ["t0", "t1", "t2"]}'


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


_TOGGLE_C = """#include <valgrind/callgrind.h>
void gf_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void gf_stop(const char *name) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT(name); }
"""


class _Window:
    """The timed window: CPU time, and under callgrind (``--instr-atstart=no``) the only instrumented
    stretch, switched on and off with callgrind's client requests (no-ops outside valgrind)."""

    def __init__(self, name: str = "window") -> None:
        self.name = name
        self._lib: Any = None
        if os.environ.get("PERCALL_CALLGRIND"):
            import ctypes
            import hashlib

            digest = hashlib.sha256(_TOGGLE_C.encode()).hexdigest()[:12]
            build = Path(tempfile.gettempdir()) / f"percall-toggle-{os.getuid()}-{digest}.so"
            if not build.exists():
                source = build.with_suffix(".c")
                source.write_text(_TOGGLE_C)
                subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(build), str(source)], check=True)
            self._lib = ctypes.CDLL(str(build))

    def __enter__(self) -> _Window:
        self.cpu = _cpu()
        if self._lib is not None:
            self._lib.gf_start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lib is not None:
            self._lib.gf_stop(self.name.encode())
        self.cpu = _cpu() - self.cpu


# -- children -----------------------------------------------------------------------------------


def _engine(opts: dict[str, Any]) -> Any:
    from greenfetch import Config, Engine

    if opts.get("ca"):
        os.environ["AWS_CA_BUNDLE"] = opts["ca"]
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


class _CannedSession:
    """An HTTP session that answers every request with the same ListTables response, without a socket."""

    def send(self, request: Any) -> Any:
        import botocore.awsrequest

        headers = {
            "x-amzn-RequestId": "r",
            "Content-Type": "application/x-amz-json-1.0",
            "Content-Length": str(len(CANNED)),
            "Date": "Thu, 01 Jan 2026 00:00:00 GMT",
        }
        response = botocore.awsrequest.AWSResponse(request.url, 200, headers, None)
        response._content = CANNED
        return response

    def close(self) -> None:
        pass


def engine_child(opts: dict[str, Any]) -> dict[str, Any]:
    import greenfetch  # noqa: F401  (first: patches)

    engine = _engine(opts)
    if opts["what"] == "canned_http":
        import greenfetch._clients as clients

        original = clients.install_http_session

        def canned(client: Any, config: Any) -> None:
            original(client, config)
            client._endpoint.http_session = _CannedSession()

        clients.install_http_session = canned  # type: ignore[assignment]
    elif opts["what"] == "canned_caller":
        from greenfetch._caller import BotocoreCaller

        class CannedCaller(BotocoreCaller):
            def call(self, request: Any, client: Any = None) -> dict[str, Any]:
                return {"TableNames": [], "ResponseMetadata": {"RequestId": "r", "HTTPStatusCode": 200}}

        engine.caller = CannedCaller(engine.clients)
    engine.execute(LIST)
    if opts["warm"]:
        engine.batch_requests([LIST] * opts["warm"], opts["concurrency"])
    counts = _count_reads() if opts.get("count") else None
    with _Window() as window:
        results = engine.batch_requests([LIST] * opts["calls"], opts["concurrency"])
    ok = sum(r.ok for r in results)
    engine.close()
    return {
        "cpu": window.cpu,
        "calls": opts["calls"],
        "ok": ok,
        **({"counts": dict(counts)} if counts else {}),
    }


def _count_reads() -> dict[str, int]:
    """Counts of the socket-level calls the HTTP session makes (recv on plain sockets, SSL reads)."""
    import collections

    import gevent._socket3 as gsock
    import gevent.ssl as gssl
    from geventhttpclient.connectionpool import ConnectionPool

    counts: collections.Counter[str] = collections.Counter()
    for cls, names in (
        (gsock.socket, ("recv", "recv_into", "sendall", "send")),
        (gssl.SSLSocket, ("recv", "recv_into", "read", "sendall", "send", "write", "do_handshake")),
        (ConnectionPool, ("_create_socket", "_is_socket_alive")),
    ):
        for name in names:
            original = getattr(cls, name)

            def wrapped(
                self: Any, *args: Any, _o: Any = original, _k: str = f"{cls.__name__}.{name}", **kwargs: Any
            ) -> Any:
                counts[_k] += 1
                return _o(self, *args, **kwargs)

            setattr(cls, name, wrapped)
    return counts


def aiobotocore_child(opts: dict[str, Any]) -> dict[str, Any]:
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
            gate = asyncio.Semaphore(opts["concurrency"])

            async def one() -> bool:
                async with gate:
                    await client.list_tables()
                    return True

            await client.list_tables()
            if opts["warm"]:
                await asyncio.gather(*(one() for _ in range(opts["warm"])))
            with _Window() as window:
                ok = sum(await asyncio.gather(*(one() for _ in range(opts["calls"]))))
            return {"cpu": window.cpu, "calls": opts["calls"], "ok": ok}

    return asyncio.run(main())


def steps_child(opts: dict[str, Any]) -> dict[str, Any]:
    """botocore's steps for one ListTables, each in its own window of ``calls`` repetitions, on the
    engine's client (its hooks, its User-Agent memo), one after another: no hub, no socket."""
    engine = _engine(opts)  # imports greenfetch first (it patches)

    import botocore.awsrequest
    import botocore.endpoint

    client = engine.clients.client(engine.prepare(LIST))
    client._endpoint.http_session = _CannedSession()
    op = client.meta.service_model.operation_model("ListTables")
    endpoint = client._endpoint
    url = endpoint.host
    context = {
        "client_region": "us-east-1",
        "client_config": client.meta.config,
        "has_streaming_input": False,
        "auth_type": None,
    }

    def request_dict() -> dict[str, Any]:
        return client._convert_to_request_dict({}, op, endpoint_url=url, context=dict(context), headers={})

    def signed() -> Any:
        request = botocore.awsrequest.create_request_object(request_dict())
        client._request_signer.sign("ListTables", request)
        return request

    response = _CannedSession().send(endpoint.create_request(request_dict(), op))
    steps = {
        "serialize": lambda: client._serializer.serialize_to_request({}, op),
        "request_dict": request_dict,
        "aws_request": lambda: botocore.awsrequest.create_request_object(request_dict()),
        "signed": signed,
        "prepared": lambda: signed().prepare(),
        "create_request": lambda: endpoint.create_request(request_dict(), op),
        "response_dict": lambda: botocore.endpoint.convert_to_response_dict(response, op),
        "parse": lambda: client._response_parser.parse(
            botocore.endpoint.convert_to_response_dict(response, op), op.output_shape
        ),
        "api_call": lambda: client.list_tables(),
    }
    for fn in steps.values():  # warm every path once
        fn()
    out: dict[str, Any] = {"calls": opts["calls"], "ok": opts["calls"], "cpu": 0.0, "steps": {}}
    for name, fn in steps.items():
        with _Window(name) as window:
            for _ in range(opts["calls"]):
                fn()
        out["steps"][name] = window.cpu / opts["calls"] * 1e6
    engine.close()
    return out


def child(opts: dict[str, Any]) -> dict[str, Any]:
    if opts["what"] == "aiobotocore":
        return aiobotocore_child(opts)
    if opts["what"] == "steps":
        return steps_child(opts)
    return engine_child(opts)


# -- the parent ---------------------------------------------------------------------------------


def _env(tree: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GREENFETCH_"))}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONPATH=tree or str(ROOT),
    )
    return env


def _variant(text: str) -> tuple[str, str, str | None]:
    what, _, rest = text.partition(":")
    scheme, _, tree = rest.partition("@")
    return what, scheme or "http", tree or None


def _run(
    variant: str,
    calls: int,
    args: argparse.Namespace,
    urls: dict[str, str],
    ca: str,
    prefix: list[str],
    **env: str,
) -> dict[str, Any]:
    what, scheme, tree = _variant(variant)
    opts = {
        "what": what,
        "url": urls[scheme],
        "ca": ca if scheme == "https" else None,
        "calls": calls,
        "concurrency": args.concurrency,
        "warm": 0 if args.cold else args.warm,
        "count": args.count,
    }
    proc = subprocess.run(
        [*prefix, sys.executable, __file__, "--child", json.dumps(opts)],
        capture_output=True,
        text=True,
        env={**_env(tree), **env},
        timeout=3600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} failed: {proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["ok"] != calls:
        raise RuntimeError(f"{variant}: {out['ok']} of {calls} calls ok")
    return out


def _dump_name(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("desc: Trigger: Client Request: "):
            return line.split(": ")[-1]
    return path.name


def _callgrind_total(path: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no total in {path}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["cpu", "ir", "strace"])
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--warm", type=int, default=300)
    parser.add_argument("--cold", action="store_true", help="no warm-up batch: the handshakes are timed")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--count", action="store_true", help="count socket reads and writes per call")
    parser.add_argument("--keep", help="directory for callgrind output files")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    import greenfetch  # noqa: F401
    from greenfetch.testing import LoopbackServer, throwaway_ca

    workdir = tempfile.mkdtemp(prefix="percall-")
    ca = throwaway_ca(Path(workdir) / "ca")
    print(f"load {os.getloadavg()} at {time.strftime('%H:%M:%S')}", flush=True)
    with (
        LoopbackServer(latency=args.latency) as http_url,
        LoopbackServer(latency=args.latency, tls=ca) as https_url,
    ):
        urls = {"http": http_url, "https": https_url}
        if args.mode == "cpu":
            per: dict[str, list[float]] = {v: [] for v in args.variants}
            for round_ in range(args.rounds):
                for variant in args.variants:
                    out = _run(variant, args.calls, args, urls, ca.ca, ["nice", "-n", "5"])
                    per[variant].append(out["cpu"] / args.calls * 1e6)
                    extra = f" {out['counts']}" if "counts" in out else ""
                    if "steps" in out:
                        extra = " " + ", ".join(f"{k} {v:.1f}" for k, v in out["steps"].items())
                    print(
                        f"round {round_ + 1} {variant}: {per[variant][-1]:.1f} µs CPU/call{extra}", flush=True
                    )
            for variant, values in per.items():
                print(
                    f"{variant}: median {statistics.median(values):.1f} min {min(values):.1f} µs CPU/call "
                    f"({', '.join(f'{v:.0f}' for v in values)})"
                )
        elif args.mode == "ir":
            keep = Path(args.keep or workdir)
            keep.mkdir(parents=True, exist_ok=True)
            for round_ in range(args.rounds if args.rounds != 5 else 1):
                for variant in args.variants:
                    out_file = str(keep / (re.sub(r"[^\w.-]+", "_", variant) + f".r{round_ + 1}.out"))
                    _run(
                        variant,
                        args.calls,
                        args,
                        urls,
                        ca.ca,
                        [
                            "nice",
                            "-n",
                            "5",
                            "valgrind",
                            "--tool=callgrind",
                            "--instr-atstart=no",
                            "-q",
                            f"--callgrind-out-file={out_file}",
                        ],
                        PERCALL_CALLGRIND="1",
                    )
                    if _variant(variant)[0] == "steps":
                        parts = sorted(
                            Path(out_file).parent.glob(Path(out_file).name + ".*"),
                            key=lambda p: int(p.suffix[1:]),
                        )
                        for part in parts:
                            name = _dump_name(part)
                            print(
                                f"{variant} {name}: {_callgrind_total(str(part)) / args.calls / 1000:.1f}k "
                                "instructions/call",
                                flush=True,
                            )
                        continue
                    per_call = _callgrind_total(out_file + ".1") / args.calls
                    print(
                        f"{variant}: {per_call / 1000:.1f}k instructions/call ({args.calls} calls; "
                        f"{out_file}.1)",
                        flush=True,
                    )
        else:
            for variant in args.variants:
                counts = []
                for calls in (args.calls, 0):
                    out_file = f"{workdir}/strace.{calls}"
                    _run(variant, calls, args, urls, ca.ca, ["strace", "-f", "-c", "-o", out_file])
                    counts.append(_strace_counts(out_file))
                print(f"{variant}: system calls per call ({args.calls} calls less 0):")
                for name in sorted(counts[0], key=lambda n: -counts[0][n]):
                    per_call = (counts[0][name] - counts[1].get(name, 0)) / args.calls
                    if per_call >= 0.01:
                        print(f"  {name:16} {per_call:6.2f}")


def _strace_counts(path: str) -> dict[str, int]:
    counts = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            counts[parts[-1]] = int(parts[3])
    return counts


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(json.loads(sys.argv[2]))), flush=True)
    else:
        main()
