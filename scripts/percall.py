"""CPU and instructions per call on the loopback server, layer by layer: the A/B tool of docs/performance.md.

    python scripts/percall.py cpu  [--calls N] [--rounds R] VARIANT...   interleaved CPU-time rounds, nice'd
    python scripts/percall.py ir   [--calls N] VARIANT...                 callgrind instructions per call
    python scripts/percall.py strace [--calls N] VARIANT...               system calls per call (strace -c)
    python scripts/percall.py sys  [--calls N] [--rounds R] VARIANT...   user vs system CPU, context switches,
                                                                         GC runs, greenlet switches per call
    python scripts/percall.py perf [--calls N] VARIANT...                 where CPU time goes, kernel included
                                                                         (perf record -e cpu-clock, N less 0)
    python scripts/percall.py wake [--calls N] [--rounds R] VARIANT...  event-loop turns and system calls per
                                                                         call, calls/s and a core's share

A VARIANT is ``what:scheme[@tree]``: ``what`` is one of the child's runs below, ``scheme`` ``http`` or
``https``, ``tree`` a source tree put first on PYTHONPATH (a git worktree of the code before a change;
default: this one); a ``%C`` suffix sets that variant's concurrency, then a ``#POLICY`` suffix its ``--gc``. Each child warms up (client, models, and ``--warm`` calls at the concurrency, so the
pool holds its connections: the handshakes are then outside the timed window unless ``--cold``), then
times ``--calls`` ListTables at ``--concurrency``. Instructions are callgrind's count inside the timed window
only (``--instr-atstart=no``; the child switches instrumentation on and off with callgrind's client
requests), divided by N: deterministic up to the hub's scheduling, so the figure to use when the machine
is loaded. CPU is the process's user+system time over the timed window.

``sys`` splits that CPU time: interleaved rounds as ``cpu``, each child reporting user and system seconds,
voluntary and involuntary context switches and minor page faults (getrusage over the window), and the
garbage collector's runs per generation (``gc.callbacks``); every ratio is taken round by round against
the first variant and the medians printed. One more run per variant, not timed, counts hub hand-offs:
greenlet switches (``greenlet.settrace``) for the engine, event-loop callbacks run (``Handle._run``, each
a task step or a transport callback) for aiobotocore.

``wake`` runs interleaved rounds with each child under ``perf stat`` counting only the timed window
(``--control``; system-call tracepoints, so unlike ``strace`` the client is not slowed down and answers
batch per turn as they do untraced): per call, CPU (user, system), event-loop turns (gevent: libev's
iteration counter; asyncio: ``_run_once`` calls) and the calls one turn answers, system calls by kind;
per round calls/s and the share of a core the child used. A question it answers: whether a peer pays per
wake-up (docs/performance/engine-call.md, "CPU per call beyond instructions, by window").

``perf`` samples the child with ``perf record -e cpu-clock`` (a software timer: this VM exposes no hardware
counters, so no cycles, instructions or cache misses) in a run of N calls and a run of 0, and prints the
difference per call by kernel and user space, by object and by symbol: CPU time where callgrind has
instructions, so a symbol's µs over its instructions shows what costs more than its count.

Children (``what``):

- ``engine``: ``Engine.batch_requests`` (the bench's greenfetch peer).
- ``canned_http``: the same with every client's HTTP session answering a canned ListTables response
  (no socket): greenfetch and botocore, without the HTTP session, TLS and the hub's I/O.
- ``canned_caller``: the same with ``BotocoreCaller.call`` answering a canned dict: greenfetch alone.
- ``adaptive``: ``Engine.adaptive_batch`` started at the concurrency with the concurrency as its max (no
  ramp; the warm-up through it too, so the timed window is the scope's steady state): beside ``engine``,
  what the adaptive gate costs a call.
- ``canned_adaptive``: ``adaptive`` with ``canned_caller``'s caller: the gate's cost a call without the
  HTTP call's noise.
- ``aiobotocore``: aiobotocore, ``gather`` behind a Semaphore (the bench's peer).
- ``steps``: botocore's steps for one ListTables, each in its own window (no hub, no socket).
- ``engine_steps``: the engine's own pieces around a canned call (``Request.coerce``, the resolve, the
  client lookup, the attempt recorder, the Result, its metrics, ``execute`` whole), each in its own window.
- ``session``: the HTTP session's pieces (URL to pool, request head, checkout, the answer's parse, the
  whole ``send`` with its one wait in the hub), each in its own window, one greenlet (``--latency 0``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


def callgrind_toggle() -> Any:
    """A small C library whose ``gf_start()`` and ``gf_stop(name)`` switch callgrind's counting on and
    off (zeroed, then dumped under ``name``) from inside the process, built once per source text."""
    import ctypes
    import hashlib

    digest = hashlib.sha256(_TOGGLE_C.encode()).hexdigest()[:12]
    build = Path(tempfile.gettempdir()) / f"percall-toggle-{os.getuid()}-{digest}.so"
    if not build.exists():
        source = build.with_suffix(".c")
        source.write_text(_TOGGLE_C)
        subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(build), str(source)], check=True)
    return ctypes.CDLL(str(build))


_USAGE = ("ru_utime", "ru_stime", "ru_nvcsw", "ru_nivcsw", "ru_minflt")


def _usage() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {name: float(getattr(usage, name)) for name in _USAGE}


class _Window:
    """The timed window: CPU time, and under callgrind (``--instr-atstart=no``) the only instrumented
    stretch, switched on and off with callgrind's client requests (no-ops outside valgrind). Also the
    window's getrusage deltas (``usage``) and the collector's runs per generation (``gc``)."""

    def __init__(self, name: str = "window") -> None:
        self.name = name
        self._lib: Any = None
        self.gc = [0, 0, 0]
        self.gc_cpu = [0.0, 0.0, 0.0]  # CPU seconds inside the collector, per generation
        self._gc_start = 0.0
        self.usage: dict[str, float] = {}
        self.loops: dict[str, int] = {}
        self._perf = os.environ.get("PERCALL_PERFCTL", "")
        if os.environ.get("PERCALL_CALLGRIND"):
            self._lib = callgrind_toggle()

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.gc[info["generation"]] += 1
            self._gc_start = time.thread_time()
        else:
            self.gc_cpu[info["generation"]] += time.thread_time() - self._gc_start

    def __enter__(self) -> _Window:
        import gc

        _gc_policy(os.environ.get("PERCALL_GC", ""))
        gc.callbacks.append(self._on_gc)
        self._perf_control("enable")
        self.loops = _loop_counts()
        self.usage = _usage()
        self.cpu = _cpu()
        self.wall = time.monotonic()
        if self._lib is not None:
            self._lib.gf_start()
        return self

    def _perf_control(self, command: str) -> None:
        """``perf stat --control fifo:CTL,ACK -D -1`` (``wake``): count only the timed window."""
        if self._perf:
            ctl, ack = self._perf.split(",")
            with open(ctl, "w") as out:
                out.write(command + "\n")
            with open(ack) as answer:
                answer.readline()

    def __exit__(self, *exc: object) -> None:
        import gc

        if self._lib is not None:
            self._lib.gf_stop(self.name.encode())
        self.cpu = _cpu() - self.cpu
        self.wall = time.monotonic() - self.wall
        after = _usage()
        loops = _loop_counts()
        self._perf_control("disable")
        self.usage = {name: after[name] - self.usage[name] for name in _USAGE}
        self.loops = {name: loops[name] - self.loops.get(name, 0) for name in loops}
        gc.callbacks.remove(self._on_gc)

    def report(self, calls: int, ok: int) -> dict[str, Any]:
        return {
            "cpu": self.cpu,
            "calls": calls,
            "ok": ok,
            "usage": self.usage,
            "gc": self.gc,
            "gc_cpu": self.gc_cpu,
            "loops": self.loops,
            "wall": self.wall,
        }


_ASYNCIO_LOOPS = {"iterations": 0, "events": 0, "counting": 0}


def _loop_counts() -> dict[str, int]:
    """Event-loop turns so far: gevent's libev iterations (its own counter, one epoll_wait each), or
    asyncio's ``_run_once`` calls and the events its selector returned (counted by ``_count_turns``)."""
    if not _ASYNCIO_LOOPS["counting"] and "gevent" in sys.modules:
        from gevent import get_hub

        return {"iterations": get_hub().loop.iteration}
    return {k: v for k, v in _ASYNCIO_LOOPS.items() if k != "counting"}


def _count_turns() -> None:
    """asyncio's turns: ``_run_once`` (one selector poll each) and the events each poll returned."""
    import asyncio.base_events
    import selectors

    _ASYNCIO_LOOPS["counting"] = 1
    loop_class: Any = asyncio.base_events.BaseEventLoop
    run_once = loop_class._run_once
    select = selectors.EpollSelector.select

    def counted_run_once(self: Any) -> None:
        _ASYNCIO_LOOPS["iterations"] += 1
        run_once(self)

    def counted_select(self: Any, timeout: float | None = None) -> Any:
        ready = select(self, timeout)
        _ASYNCIO_LOOPS["events"] += len(ready)
        return ready

    loop_class._run_once = counted_run_once
    selectors.EpollSelector.select = counted_select  # type: ignore[method-assign]


def _gc_policy(policy: str) -> None:
    """``--gc``, applied as the timed window opens (after the warm-up): ``freeze`` (collect, then
    ``gc.freeze()``), ``T0[,T1,T2]`` thresholds, or both (``freeze+T0``)."""
    import gc

    for part in filter(None, policy.split("+")):
        if part == "freeze":
            gc.collect()
            gc.freeze()
        else:
            gc.set_threshold(*(int(t) for t in part.split(",")))


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
    elif opts["what"] in ("canned_caller", "canned_adaptive"):
        from greenfetch._caller import BotocoreCaller

        class CannedCaller(BotocoreCaller):
            def call(self, request: Any, client: Any = None) -> dict[str, Any]:
                return {"TableNames": [], "ResponseMetadata": {"RequestId": "r", "HTTPStatusCode": 200}}

        engine.caller = CannedCaller(engine.clients)
    engine.execute(LIST)
    c = opts["concurrency"]
    if opts["what"] in (
        "adaptive",
        "canned_adaptive",
    ):  # started at its max: no ramp; a target that never binds here

        def batch(requests: list[Any], concurrency: int) -> Any:
            return engine.adaptive_batch(requests, c, 30.0, 1, c)

    else:
        batch = engine.batch_requests
    if opts["warm"]:
        batch([LIST] * opts["warm"], c)
    counts = _count_reads() if opts.get("count") else None
    switches = _count_switches() if opts.get("switches") else None
    with _Window() as window:
        results = batch([LIST] * opts["calls"], c)
    if switches is not None:
        import greenlet

        greenlet.settrace(None)
        counts = switches
    ok = sum(r.ok for r in results)
    engine.close()
    return {**window.report(opts["calls"], ok), **({"counts": dict(counts)} if counts else {})}


def _count_switches() -> dict[str, int]:
    """Greenlet switches (and throws) from here on, by kind: to the hub, from the hub, other."""
    import collections

    import greenlet
    from gevent import get_hub

    hub = get_hub()
    counts: collections.Counter[str] = collections.Counter()

    def trace(event: str, args: Any) -> None:
        origin, target = args
        kind = "to_hub" if target is hub else "from_hub" if origin is hub else "other"
        counts[f"{event}.{kind}"] += 1

    greenlet.settrace(trace)
    return counts


def _count_callbacks() -> dict[str, int]:
    """asyncio's counterpart of greenlet switches: event-loop callbacks run (task steps, transports)."""
    import asyncio.events
    import collections

    counts: collections.Counter[str] = collections.Counter()
    original = asyncio.events.Handle._run

    def run(self: Any) -> None:
        counts["callbacks"] += 1
        original(self)

    asyncio.events.Handle._run = run  # type: ignore[method-assign]
    return counts


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

    _count_turns()

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
            counts = _count_callbacks() if opts.get("switches") else None
            with _Window() as window:
                ok = sum(await asyncio.gather(*(one() for _ in range(opts["calls"]))))
            return {**window.report(opts["calls"], ok), **({"counts": dict(counts)} if counts else {})}

    return asyncio.run(main())


def _time_steps(steps: dict[str, Callable[[], Any]], calls: int) -> dict[str, Any]:
    """Each step warmed once, then ``calls`` repetitions of it in its own window: the child's answer,
    a step's figure per repetition (µs of CPU, or its instructions under callgrind)."""
    for fn in steps.values():
        fn()
    out: dict[str, Any] = {"calls": calls, "ok": calls, "cpu": 0.0, "steps": {}}
    for name, fn in steps.items():
        with _Window(name) as window:
            for _ in range(calls):
                fn()
        out["steps"][name] = window.cpu / calls * 1e6
    return out


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
    out = _time_steps(steps, opts["calls"])
    engine.close()
    return out


def engine_steps_child(opts: dict[str, Any]) -> dict[str, Any]:
    """The engine's own path around a call (``canned_caller`` without the hub and the scheduler), piece
    by piece, each in its own window of ``calls`` repetitions: what ``Engine.execute`` does for one
    ListTables whose caller answers a canned dict."""
    engine = _engine(opts)  # imports greenfetch first (it patches)

    from greenfetch._attempts import Attempt, AttemptRecorder, recording
    from greenfetch._caller import BotocoreCaller
    from greenfetch._engine import _pop_request_id
    from greenfetch._models import Request, Result

    class CannedCaller(BotocoreCaller):
        def call(self, request: Any, client: Any = None) -> dict[str, Any]:
            return {"TableNames": [], "ResponseMetadata": {"RequestId": "r", "HTTPStatusCode": 200}}

    engine.caller = CannedCaller(engine.clients)
    request, client = engine._resolve(LIST)
    done = Result(0, request, result={"TableNames": []}, request_id="r", duration_ms=1.0, attempts=1)
    attempt = Attempt(0.001, 200, None)

    def recorder_step() -> None:
        rec = AttemptRecorder()
        with recording(rec):
            pass

    from greenfetch._attempts import _before_send, _needs_retry

    class _Status:
        status_code = 200

    answer = (_Status(), {"TableNames": [], "ResponseMetadata": {}})

    def hooks() -> None:  # botocore's before-send and needs-retry events, as they call greenfetch's handlers
        rec = AttemptRecorder()
        rec.on_attempt = functools.partial(engine.metrics.attempt, request)  # the ungated observer
        with recording(rec):
            _before_send(request=None, event_name="before-send.dynamodb.ListTables")
            _needs_retry(
                response=answer,
                endpoint=None,
                operation=None,
                attempts=1,
                caught_exception=None,
                request_dict={},
                event_name="needs-retry.dynamodb.ListTables",
            )

    def attempts() -> None:
        rec = AttemptRecorder()
        rec.on_attempt = functools.partial(engine.metrics.attempt, request)  # the ungated observer
        with recording(rec):
            rec.attempts.append(attempt)
            rec.on_attempt(attempt)

    steps = {
        "coerce": lambda: Request.coerce(LIST),
        "resolve": lambda: engine._resolve(LIST),
        "client": lambda: engine.clients.client(request),
        "api_name": lambda: engine.caller._api_name(request, client),
        "recorder": recorder_step,
        "attempts": attempts,
        "hooks": hooks,
        "result_object": lambda: Result(
            0, request, result={}, concurrency=None, request_id=_pop_request_id({"ResponseMetadata": {}})
        ),
        "metrics_result": lambda: engine.metrics.result(done),
        "execute": lambda: engine.execute(LIST),
    }
    out = _time_steps(steps, opts["calls"])
    engine.close()
    return out


def session_child(opts: dict[str, Any]) -> dict[str, Any]:
    """The HTTP session's pieces for one ListTables, each in its own window of ``calls`` repetitions, on
    the engine's client and its session against the loopback server: one greenlet, no engine, so the whole
    ``send`` includes one wait in the hub and nothing else's (use ``--latency 0``)."""
    engine = _engine(opts)  # imports greenfetch first (it patches)

    import botocore.awsrequest

    from greenfetch._http import _wire

    client = engine.clients.client(engine.prepare(LIST))
    session = client._endpoint.http_session
    sent: list[Any] = []
    send = type(session).send
    type(session).send = lambda self, request: sent.append(request) or send(self, request)  # type: ignore[method-assign]
    client.list_tables()
    type(session).send = send  # type: ignore[method-assign]
    request = sent[-1]
    origin, target = session._origin(request.url)
    pool = origin.pool
    sock = pool.get_socket()
    sock.settimeout(60.0)
    _wire.write(sock, *_wire.head(request, target, origin.head))
    answer = sock.recv(65536)  # one whole answer from the loopback server
    pool.return_socket(sock)

    def checkout() -> None:
        pool.return_socket(pool.get_socket())

    def parse() -> Any:  # the answer's head and body into botocore's AWSResponse, as send makes it
        parsed = _wire.plain_answer(answer, "POST")
        if parsed is None:
            return None
        status, headers, _length, _keep, start = parsed
        response = botocore.awsrequest.AWSResponse(request.url, status, headers, None)
        response._content = answer[start:]
        return response

    steps = {
        "origin": lambda: session._origin(request.url),
        "head": lambda: _wire.head(request, target, origin.head),
        "checkout": checkout,
        "alive": lambda: pool._is_socket_alive(sock),
        "answer": parse,
        "send": lambda: session.send(request),
    }
    if not hasattr(_wire, "plain_answer"):  # a tree from before the plain answer: its parse is not here
        del steps["answer"]
    out = _time_steps(steps, opts["calls"])
    engine.close()
    return out


def child(opts: dict[str, Any]) -> dict[str, Any]:
    if opts["what"] == "aiobotocore":
        return aiobotocore_child(opts)
    if opts["what"] == "steps":
        return steps_child(opts)
    if opts["what"] == "engine_steps":
        return engine_steps_child(opts)
    if opts["what"] == "session":
        return session_child(opts)
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
    env.pop("PERCALL_GC", None)
    return env


def _variant(text: str) -> tuple[str, str, str | None]:
    what, _, rest = text.partition("#")[0].partition("%")[0].partition(":")
    scheme, _, tree = rest.partition("@")
    return what, scheme or "http", tree or None


def _run(
    variant: str,
    calls: int,
    args: argparse.Namespace,
    urls: dict[str, str],
    ca: str,
    prefix: list[str],
    switches: bool = False,
    **env: str,
) -> dict[str, Any]:
    variant, _, policy = variant.partition("#")
    variant, _, concurrency = variant.partition("%")
    policy = policy or args.gc
    what, scheme, tree = _variant(variant)
    opts = {
        "what": what,
        "url": urls[scheme],
        "ca": ca if scheme == "https" else None,
        "calls": calls,
        "concurrency": int(concurrency or args.concurrency),
        "warm": 0 if args.cold else args.warm,
        "count": args.count,
        "switches": switches,
    }
    proc = subprocess.run(
        [*prefix, sys.executable, __file__, "--child", json.dumps(opts)],
        capture_output=True,
        text=True,
        env={**_env(tree), **env, **({"PERCALL_GC": policy} if policy else {})},
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
    parser.add_argument("mode", choices=["cpu", "ir", "strace", "sys", "perf", "wake"])
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--warm", type=int, default=300)
    parser.add_argument("--cold", action="store_true", help="no warm-up batch: the handshakes are timed")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--count", action="store_true", help="count socket reads and writes per call")
    parser.add_argument("--keep", help="directory for callgrind output files")
    parser.add_argument(
        "--gc", default="", help="GC policy in the timed window: freeze, T0[,T1,T2], freeze+T0"
    )
    parser.add_argument("--top", type=int, default=15, help="symbols listed per profile (perf)")
    parser.add_argument("--nice", default="5", help="the children's nice value (cpu, sys)")
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
                    out = _run(variant, args.calls, args, urls, ca.ca, ["nice", "-n", args.nice])
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
        elif args.mode == "sys":
            _sys_rounds(args, urls, ca.ca)
        elif args.mode == "wake":
            _wake_rounds(args, urls, ca.ca, workdir)
        elif args.mode == "perf":
            _perf_profiles(args, urls, ca.ca, workdir)
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
                    if _variant(variant)[0] in ("steps", "engine_steps", "session"):
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


def _sys_rounds(args: argparse.Namespace, urls: dict[str, str], ca: str) -> None:
    """Interleaved rounds; per call: user and system µs, context switches, faults, GC runs; ratios to the
    first variant round by round (medians); then one untimed run per variant counting hub hand-offs."""
    rows: dict[str, list[dict[str, float]]] = {v: [] for v in args.variants}
    for round_ in range(args.rounds):
        for variant in args.variants:
            out = _run(variant, args.calls, args, urls, ca, ["nice", "-n", args.nice])
            usage, n = out["usage"], args.calls
            row = {
                "user": usage["ru_utime"] / n * 1e6,
                "sys": usage["ru_stime"] / n * 1e6,
                "cpu": (usage["ru_utime"] + usage["ru_stime"]) / n * 1e6,
                "vcsw": usage["ru_nvcsw"] / n,
                "ivcsw": usage["ru_nivcsw"] / n,
                "minflt": usage["ru_minflt"] / n,
                **{f"gc{g}": out["gc"][g] / n * 1000 for g in range(3)},
                "gc_us": sum(out["gc_cpu"]) / n * 1e6,
                **{f"gc{g}_ms": out["gc_cpu"][g] / max(out["gc"][g], 1) * 1e3 for g in range(3)},
            }
            rows[variant].append(row)
            print(
                f"round {round_ + 1} {variant}: user {row['user']:.0f} sys {row['sys']:.0f} µs/call, "
                f"csw {row['vcsw']:.2f}+{row['ivcsw']:.2f}, minflt {row['minflt']:.2f}, "
                f"gc/1k {row['gc0']:.1f}/{row['gc1']:.2f}/{row['gc2']:.2f}, in gc {row['gc_us']:.1f} µs/call "
                f"(ms per run {row['gc0_ms']:.2f}/{row['gc1_ms']:.2f}/{row['gc2_ms']:.1f})  "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    keys = ("user", "sys", "cpu", "vcsw", "ivcsw", "minflt", "gc0", "gc1", "gc2", "gc_us", "gc2_ms")
    print("medians per call (context switches, faults per call; GC runs per 1,000 calls):")
    print("variant | " + " | ".join(keys))
    for variant, values in rows.items():
        print(f"{variant} | " + " | ".join(f"{statistics.median(r[k] for r in values):.2f}" for k in keys))
    for variant in args.variants:  # against the first variant of the same scheme
        base = next(v for v in args.variants if _variant(v)[1] == _variant(variant)[1])
        if base == variant:
            continue
        ratios = []
        for key in ("user", "sys", "cpu"):
            per_round = [b[key] / a[key] for a, b in zip(rows[base], rows[variant], strict=True) if a[key]]
            ratios.append(
                f"{key} {statistics.median(per_round):.2f}x ({', '.join(f'{r:.2f}' for r in per_round)})"
            )
        print(f"{variant} / {base}, round by round, median: " + "; ".join(ratios))
    for variant in args.variants:
        out = _run(variant, args.calls, args, urls, ca, ["nice", "-n", args.nice], switches=True)
        counts = out.get("counts", {})
        print(
            f"{variant} hand-offs per call: "
            + ", ".join(f"{k} {v / args.calls:.2f}" for k, v in sorted(counts.items()))
        )


_WAKE_EVENTS = {
    "task-clock": "task_ms",
    "context-switches": "csw",
    "raw_syscalls:sys_enter": "syscalls",
    "syscalls:sys_enter_epoll_wait": "epoll_wait",
    "syscalls:sys_enter_epoll_ctl": "epoll_ctl",
    "syscalls:sys_enter_pselect6": "pselect6",
    "syscalls:sys_enter_poll": "poll",
    "syscalls:sys_enter_recvfrom": "recvfrom",
    "syscalls:sys_enter_sendto": "sendto",
    "syscalls:sys_enter_read": "read",
    "syscalls:sys_enter_write": "write",
    "syscalls:sys_enter_futex": "futex",
    "syscalls:sys_enter_getpid": "getpid",
}


def _wake_rounds(args: argparse.Namespace, urls: dict[str, str], ca: str, workdir: str) -> None:
    """Interleaved rounds, each child under ``perf stat`` counting only its timed window (``--control``):
    per call, CPU (user, system), wall, calls/s, share of a core, event-loop turns and the calls each
    turn answers, and system calls by kind (tracepoints: no strace slowing the client down)."""
    rows: dict[str, list[dict[str, float]]] = {v: [] for v in args.variants}
    keys = ["cps", "core", "cpu", "user", "sys", "turns", "per_turn", "events", "syscalls", "csw"]
    keys += [v for v in _WAKE_EVENTS.values() if v not in ("task_ms", "csw", "syscalls")]
    for round_ in range(args.rounds):
        for variant in args.variants:
            ctl, ack, stat = (f"{workdir}/{name}.{round_}" for name in ("ctl", "ack", "stat"))
            for fifo in (ctl, ack):
                if not os.path.exists(fifo):
                    os.mkfifo(fifo)
            events = ",".join(_WAKE_EVENTS)
            prefix = ["perf", "stat", "-x", ",", "-o", stat, "-D", "-1", f"--control=fifo:{ctl},{ack}"]
            prefix += ["-e", events, "nice", "-n", args.nice]
            out = _run(variant, args.calls, args, urls, ca, prefix, PERCALL_PERFCTL=f"{ctl},{ack}")
            counts: dict[str, float] = {}
            for line in Path(stat).read_text().splitlines():
                parts = line.split(",")
                if len(parts) > 2 and parts[2] in _WAKE_EVENTS and parts[0] not in ("", "<not counted>"):
                    counts[_WAKE_EVENTS[parts[2]]] = float(parts[0])
            n, usage = args.calls, out["usage"]
            turns = out["loops"].get("iterations", 0)
            row = {
                "user": usage["ru_utime"] / n * 1e6,
                "sys": usage["ru_stime"] / n * 1e6,
                "cpu": out["cpu"] / n * 1e6,
                "cps": n / out["wall"],
                "core": out["cpu"] / out["wall"],
                "turns": turns / n,
                "per_turn": n / max(turns, 1),
                "events": out["loops"].get("events", 0) / n,
                **{k: v / n for k, v in counts.items() if k != "task_ms"},
            }
            rows[variant].append(row)
            print(
                f"round {round_ + 1} {variant}: "
                + ", ".join(f"{k} {row.get(k, 0):.3g}" for k in keys)
                + f"  load {os.getloadavg()[0]:.1f} {time.strftime('%H:%M:%S')}",
                flush=True,
            )
    print("medians per call (cps: calls/s; core: CPU s per wall s; turns: event-loop turns a call; per_turn:")
    print("calls a turn; events: asyncio selector events a call; the rest system calls a call):")
    print("variant | " + " | ".join(keys))
    for variant, values in rows.items():
        print(
            f"{variant} | "
            + " | ".join(f"{statistics.median(r.get(k, 0) for r in values):.3g}" for k in keys)
        )
    first = args.variants[0]
    for variant in args.variants[1:]:
        for key in ("cpu", "user", "sys"):
            per_round = [b[key] / a[key] for a, b in zip(rows[first], rows[variant], strict=True) if a[key]]
            print(
                f"{variant} / {first} {key}, round by round: "
                + ", ".join(f"{r:.2f}" for r in per_round)
                + f" (median {statistics.median(per_round):.2f})"
            )


_SAMPLE = re.compile(r"\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$")


def _bucket(frames: list[tuple[str, str]]) -> str:
    """Where one sampled stack (leaf first) spends its time: a kernel sample by how the kernel was entered
    (the system call, a page fault, an interrupt or a preemption), a user one by what it is inside."""
    dso, sym = frames[0]
    if dso.startswith("[kernel"):
        for _, name in frames:
            match = re.match(r"(?:__x64_sys|__do_sys|__se_sys|__sys|ksys)_(\w+)", name)
            if match:
                return f"kernel: {match.group(1)}"
            if name in ("exc_page_fault", "asm_exc_page_fault"):
                return "kernel: page fault"
        if any(name.startswith(("asm_sysvec", "asm_common_interrupt")) for _, name in frames):
            return "kernel: interrupt"
        return "kernel: other (scheduling, return to user)"
    names = {name for _, name in frames}
    if "gc_collect_main" in names:
        return "user: garbage collector"
    for needle, label in (
        ("_greenlet", "user: greenlet switch"),
        ("corecext", "user: gevent's libev loop"),
        ("libssl", "user: OpenSSL"),
        ("libcrypto", "user: OpenSSL"),
    ):
        if needle in dso:
            return label
    return f"user: {Path(dso).name}"


def _per_call(counters: list[Any], calls: int) -> dict[Any, float]:
    """µs per call from sampled ns: the run of N calls less the run of 0."""
    return {k: (counters[0][k] - counters[1].get(k, 0)) / calls / 1000 for k in counters[0]}


def _perf_profiles(args: argparse.Namespace, urls: dict[str, str], ca: str, workdir: str) -> None:
    """cpu-clock samples of a run of N calls less a run of 0, per call: kernel/user, objects, symbols,
    and (with call graphs) kernel time by how it was entered and user time inside the collector."""
    import collections

    for variant in args.variants:
        totals = []
        buckets = []
        for calls in (args.calls, 0):
            data = f"{workdir}/perf.{calls}.data"
            record = ["perf", "record", "-q", "-e", "cpu-clock", "-g", "-F", "2999", "-o", data, "--"]
            _run(variant, calls, args, urls, ca, record)
            script = subprocess.run(
                ["perf", "script", "-i", data, "-F", "period,ip,sym,dso"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            by: collections.Counter[tuple[str, str]] = collections.Counter()
            bucket: collections.Counter[str] = collections.Counter()
            for block in script.split("\n\n"):
                lines = block.strip("\n").splitlines()
                if not lines or not lines[0].strip().isdigit():
                    continue
                period = int(lines[0])
                frames = [
                    (Path(m.group(3)).name, m.group(2) or "?") for m in map(_SAMPLE.match, lines[1:]) if m
                ]
                if frames:
                    by[frames[0]] += period
                    bucket[_bucket(frames)] += period
            totals.append(by)
            buckets.append(bucket)
        n = args.calls
        diff = _per_call(totals, n)
        kernel = sum(v for (dso, _), v in diff.items() if dso.startswith("[kernel"))
        print(f"{variant}: {sum(diff.values()):.1f} µs/call sampled, kernel {kernel:.1f} ({n} calls less 0)")
        print(
            "  by where: "
            + ", ".join(
                f"{k} {v:.1f}"
                for k, v in sorted(_per_call(buckets, n).items(), key=lambda kv: -kv[1])
                if v >= 0.3
            )
        )
        for title, keep in (("kernel", True), ("user", False)):
            top = sorted(
                ((v, d, s) for (d, s), v in diff.items() if d.startswith("[kernel") == keep), reverse=True
            )[: args.top]
            print(f"  top {title} symbols (µs/call): " + ", ".join(f"{s} {v:.1f}" for v, d, s in top))


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
