"""greenfetch on Celery: the app, the shard task and the run's state in Redis (the ``celery`` extra).

Start a worker with ``greenfetch worker --broker URL`` or, the same thing run Celery's own way,
``celery -A greenfetch.distributed worker -P gevent`` (broker from ``GREENFETCH_BROKER_URL`` or
``-b``). Both patch the standard library for gevent before anything imports ssl: the ``celery``
command does so when it sees ``-P gevent`` (write it as two words, never ``-Pgevent``), and
``greenfetch`` does so first thing.

"A killed worker loses nothing" is configuration: the task is acknowledged only after it ran
(``task_acks_late``), a worker reserves one shard per slot (prefetch 1), and Redis hands an
unacknowledged shard to another worker after ``GREENFETCH_REDELIVER_AFTER`` (the visibility timeout,
default 1h). A shard's hard time limit is half of that, so a live shard is never delivered twice for
being slow. Shards are idempotent (``greenfetch.inventory._shard``): a second run overwrites.

The package: ``_broker`` (what both sides share: settings, checks, the sweep), ``_coordinator``
(``inventory --broker``; it sends shards by task name and never imports this module) and
``_runstate`` (a run's keys in Redis). This module is the worker side and the package's face.

There is no result backend and no chord. The coordinator fans in through the sink plus a Redis set
of pending shard keys: a worker removes its key after the shard's records are in the sink.
"""

# ruff: noqa: I001
from __future__ import annotations

import greenfetch  # noqa: F401  (first: patches for gevent before celery, kombu or redis import ssl)

import dataclasses
import json
import logging
import os
import socket
import time
from collections.abc import Mapping
from typing import Any

import redis
from celery import signals
from celery.worker.request import Request
from kombu.transport.virtual.base import QoS as VirtualQoS

from .._exceptions import BrokerError, ConfigError
from ._broker import (
    QUEUE,
    TASK,
    check_broker_url,
    configure,
    new_app,
    redact,
    redeliver_after,
    restore_abandoned,
    sweep_interval,
)
from ._coordinator import Coordinator, broker_fetch
from ._runstate import RunState, redis_client
from .._kept import kept

__all__ = [
    "QUEUE",
    "TASK",
    "BrokerError",
    "Coordinator",
    "RunState",
    "app",
    "broker_fetch",
    "check_broker_url",
    "configure",
    "redact",
    "redeliver_after",
    "redis_client",
    "restore_abandoned",
    "shard_task",
]

_log = logging.getLogger("greenfetch.worker")
_BROKER_DOWN = (redis.ConnectionError, redis.TimeoutError)


try:
    app = new_app(os.environ.get("GREENFETCH_BROKER_URL") or None)
except ConfigError as exc:  # a bad GREENFETCH_REDELIVER_AFTER: say so once, use the default
    _log.warning("%s; using 1h", exc)
    app = new_app(os.environ.get("GREENFETCH_BROKER_URL") or None, 3600.0)


# -- the worker side ------------------------------------------------------------------------------

_engines: dict[tuple[Any, ...], Any] = {}
_redis: dict[str, Any] = {}


def _engine(options: Mapping[str, Any]) -> Any:
    """One engine per distinct engine options per worker process: clients and sessions are reused."""
    key = tuple(sorted((k, v) for k, v in options.items() if v is not None))
    if key not in _engines:
        from .._config import Config
        from .._engine import Engine

        _engines[key] = Engine(Config.resolve(dict(key)))
    return _engines[key]


def _state(run_id: str) -> RunState:
    url = app.conf.broker_url
    if url not in _redis:
        _redis[url] = redis_client(url)
    return RunState(_redis[url], run_id)


class _ShardRequest(Request):  # type: ignore[misc]  # Celery ships no types: its Request is Any
    """Celery's request, plus: an acknowledgement that fails because Redis went away frees the
    worker's slot anyway. kombu drops the delivery from its local bookkeeping only after Redis
    confirmed the ack, so with prefetch 1 a single failed ack leaves the worker waiting forever for
    a slot it never gets back (kombu 5.7). The shard itself stays unacknowledged in Redis (it is
    delivered again after the visibility timeout) or was lost with a restarted Redis (the coordinator
    re-sends what the sink lacks): either way it runs again, and a second run overwrites."""

    acknowledged: bool  # Celery's own flag (a class attribute there, False until acknowledged or rejected)

    def acknowledge(self) -> None:
        from celery.worker import state

        if state.should_terminate and not self.acknowledged:  # a cold shutdown (SIGQUIT, second Ctrl-C)
            # killed this shard. Celery's gevent pool reports a killed task as a success, and the ack
            # would drop a shard that never finished: hand it back to the queue instead (a shard that
            # did finish in this instant runs once more, and a second run overwrites).
            self.reject(requeue=True)
            return
        message = self._message
        if not self.acknowledged:
            try:
                message.ack()
            except (
                *self._connection_errors,
                *_BROKER_DOWN,
                OSError,
            ) as exc:  # one line, not kombu's traceback
                _log.warning(
                    "a shard's delivery could not be acknowledged: the broker is not answering (%s); Redis "
                    "hands it out again after GREENFETCH_REDELIVER_AFTER unless it lost it",
                    redact(str(exc)),
                )
            self.acknowledged = True
        if not message.acknowledged:
            qos = getattr(message.channel, "qos", None)
            if qos is not None:
                # local bookkeeping only, no Redis call (kombu leaves QoS.ack unannotated)
                VirtualQoS.ack(qos, message.delivery_tag)  # type: ignore[no-untyped-call]


def _retry(call: Any, what: str, seconds: float = 30.0) -> Any:
    """``call()``, retried while Redis is unreachable for up to ``seconds`` (a restart, a failover),
    and not at all once the worker is stopping: a stop waits for nothing that needs the broker."""
    deadline = time.monotonic() + seconds
    delay = 0.2
    while True:
        try:
            return call()
        except _BROKER_DOWN as exc:
            if time.monotonic() + delay > deadline or _stopping():
                raise
            _log.warning("%s: the broker is not answering (%s); trying again", what, redact(str(exc)))
            until = time.monotonic() + delay
            while time.monotonic() < until and not _stopping():  # a stop ends the wait too
                time.sleep(min(0.1, delay))
            delay = min(delay * 2, 5.0)


# Celery ships no types: its task object is Any, as every Celery name
@app.task(name=TASK, bind=True, acks_late=True, ignore_result=True, Request=_ShardRequest)  # type: ignore[untyped-decorator]
def shard_task(self: Any, payload: dict[str, Any]) -> None:
    """Run one shard (``payload``: shard, sink, engine options) and tell the run it is done.

    The message carries no credentials and no broker URL: the worker assumes roles with its own AWS
    credentials and reaches Redis through its own configuration."""
    from gevent import Timeout

    from ..inventory._shard import Shard, run_shard
    from ..inventory._shard_s3 import open_shard_sink

    shard = Shard.from_dict(payload["shard"])
    state = _state(shard.run_id)
    if not _retry(state.live, f"shard {shard.key}"):
        _log.info("shard %s of run %s: skipped, the run is over", shard.key, shard.run_id)
        return
    me = f"{socket.gethostname()}:{os.getpid()}"
    runs = _retry(lambda: state.start(shard.key, me), f"shard {shard.key}")
    started = time.perf_counter()
    try:
        shard = _with_catalog(state, shard)
        engine = _engine(payload.get("engine") or {})
        summary = run_shard(engine, shard, open_shard_sink(payload["sink"], engine))
    except Timeout:
        _fail(
            state, shard, runs, started, "the shard hit its time limit (half of GREENFETCH_REDELIVER_AFTER)"
        )
        raise
    except Exception as exc:  # one shard's failure is reported and re-sent by the coordinator
        _fail(state, shard, runs, started, f"{type(exc).__name__}: {exc}")
        return
    try:
        _retry(lambda: state.done(shard.key, me), f"shard {shard.key}")
    except _BROKER_DOWN as exc:  # the records are in the sink; the coordinator's reconcile finds them there
        _log.error(
            "shard %s of run %s: records written, but the broker is not answering to record it done (%s)",
            shard.key,
            shard.run_id,
            redact(str(exc)),
        )
        return
    failed = len(summary.get("accounts_failed", {}))
    _log.info(
        "shard %s of run %s: %d records, %d calls, %s in %.1fs%s",
        shard.key,
        shard.run_id,
        summary["records"],
        summary["calls"],
        "account failed" if failed else "ok",
        time.perf_counter() - started,
        f" (run {runs} of this shard)" if runs > 1 else "",
    )


_overlays: dict[str, Any] = {}  # the runs' catalogs this worker read, by SHA-256


def _with_catalog(state: RunState, shard: Any) -> Any:
    """``shard`` with the catalog it names by SHA-256 (kept once in the run's state) in its options.
    InventoryError when the run's state has no catalog by that digest: the shard fails with that line
    (the coordinator keeps the catalog again and re-sends it), never listed with the shipped catalog."""
    user = shard.options.get("catalog")
    if not isinstance(user, dict) or "sha256" not in user or "overlay" in user:
        return shard  # the shipped catalog alone, or the catalog itself in the shard (an older coordinator)
    digest, source = str(user["sha256"]), str(user.get("source"))
    overlay = _overlays.get(digest)
    if overlay is None:
        text = _retry(lambda: state.catalog(digest), f"shard {shard.key}")
        if text is None:
            from ..inventory._types import InventoryError

            raise InventoryError(
                f"the run's catalog file {source!r} (sha256 {digest[:12]}) is not in the broker's state "
                "for this run (the run is over, or Redis lost it); the shard is not listed with the shipped "
                "catalog in its place"
            )
        overlay = kept(_overlays, digest, json.loads(text), 8)
    return dataclasses.replace(
        shard, options={**shard.options, "catalog": {"source": source, "sha256": digest, "overlay": overlay}}
    )


def _stopping() -> bool:
    """A warm or cold shutdown was asked for (SIGTERM, Ctrl-C, SIGQUIT). The flags hold the exit
    code, so a warm shutdown's is 0: set means neither None nor False (as ``state.maybe_shutdown``)."""
    from celery.worker import state

    return any(flag is not None and flag is not False for flag in (state.should_stop, state.should_terminate))


def _fail(state: RunState, shard: Any, runs: int, started: float, error: str) -> None:
    _log.error(
        "shard %s of run %s: failed after %.1fs: %s%s",
        shard.key,
        shard.run_id,
        time.perf_counter() - started,
        error,
        f" (run {runs} of this shard)" if runs > 1 else "",
    )
    try:
        state.fail(shard.key, error)
    except Exception as exc:  # the broker is gone too: redelivery or the coordinator's reconcile covers it
        _log.error(
            "shard %s of run %s: could not record the failure: %s",
            shard.key,
            shard.run_id,
            type(exc).__name__,
        )


def _start_janitor(**_: Any) -> None:
    import gevent

    def sweep() -> None:
        every = sweep_interval(float(app.conf.visibility_timeout or 3600))
        while True:
            gevent.sleep(every)
            try:
                restore_abandoned(app)
            except Exception as exc:  # the broker is away: the consumer reconnects; sweep again later
                _log.debug("restoring abandoned shards failed: %s", redact(str(exc)))

    gevent.spawn(sweep)


# Celery ships no types, so its decorators are Any to mypy: the receivers are connected by calls
# instead (``connect`` returns the function it was given). Celery holds them by weak reference; the
# module's names keep them alive.
signals.worker_ready.connect(_start_janitor)


def _one_line_per_shard(loglevel: Any = None, **_: Any) -> None:
    """Celery logs 'received' and 'succeeded' for every task, and botocore one "Found endpoint for
    ... via: ..." line per client at INFO (half of a worker's log); the shard's own line says more.
    At DEBUG they all stay."""
    level = logging.getLevelName(loglevel) if isinstance(loglevel, str) else loglevel
    if isinstance(level, int) and level <= logging.DEBUG:
        return
    for name in ("celery.worker.strategy", "celery.app.trace", "botocore", "boto3"):
        logging.getLogger(name).setLevel(logging.WARNING)


signals.after_setup_logger.connect(_one_line_per_shard)
