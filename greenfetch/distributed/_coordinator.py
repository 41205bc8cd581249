"""``greenfetch inventory --broker URL``: plan shards, send them to Celery workers, fan in, reconcile.

The coordinator is a ``fetch`` for ``run_inventory``: the checks before the fetch, and the files,
summary, DynamoDB, S3 and exit codes after it, are the local run's own. In between it:

1. plans one shard per account and marks every shard key pending in Redis;
2. sends the shards (ids, options and the sink's location: the ``--out`` directory or ``--shards
   s3://BUCKET/PREFIX``; never credentials or the broker URL). The user's catalog file (``--catalog``,
   ``run_inventory(catalog_file=...)``) is read once and kept in the run's state in Redis; each shard
   names it by its SHA-256 and the worker merges it over the shipped catalog;
3. shows progress from the pending set while workers remove keys as their records reach the sink;
4. when nothing is pending, reconciles the plan against the sink and re-sends what is missing (a
   shard that raised, or a queue lost with a Redis restart), up to ``max_rounds`` times in all;
5. reads every shard back in plan order. A shard still missing becomes error records (region ``*``)
   and a failed account, so the run exits 1 rather than leaving a silent gap.

If Redis stops answering for longer than ``grace`` (default: GREENFETCH_REDELIVER_AFTER, at most
30 s), or no shard finishes for twice the redelivery delay (no worker is working), the run stops with
BrokerError; no output files are written.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .._engine import Engine
from .._exceptions import BrokerError
from ..inventory._fetch import RunSummary
from ..inventory._postgres import is_postgres_url
from ..inventory._resource_type import ResourceType
from ..inventory._shard import DirectoryShardSink, Shard, ShardSink, merge_shard, user_catalog
from ..inventory._shard_s3 import S3ShardSink, sink_spec
from ..inventory._sinks import shard_root
from ..inventory._types import Account, InventoryError, Record, record
from ._broker import (
    QUEUE,
    TASK,
    check_broker_url,
    new_app,
    redact,
    redeliver_after,
    restore_abandoned,
    sweep_interval,
)
from ._runstate import RunState, catalog_digest, redis_client

__all__ = ["Coordinator", "broker_fetch"]

T = TypeVar("T")


class Coordinator:
    """``fetch(**plan) -> RunSummary`` over Celery workers; see the module docstring."""

    def __init__(
        self,
        broker_url: str,
        sink_root: str | Path | ShardSink,
        *,
        engine_options: dict[str, Any] | None = None,
        redeliver: float | None = None,
        progress: Callable[[int, int], None] | None = None,
        max_rounds: int = 3,
        poll: float = 0.25,
        grace: float | None = None,
        log: Callable[[str], None] | None = None,
    ):
        self.url = check_broker_url(broker_url)
        self.redeliver = redeliver_after() if redeliver is None else redeliver
        self.sink: ShardSink = (
            DirectoryShardSink(Path(sink_root).resolve()) if isinstance(sink_root, (str, Path)) else sink_root
        )
        self.engine_options = dict(engine_options or {})
        self.progress, self.max_rounds, self.poll, self.log = progress, max_rounds, poll, log
        self.grace = min(30.0, self.redeliver) if grace is None else grace
        # a killed worker's shard is back after the redelivery delay plus a sweep, and a shard runs at
        # most half that delay; no progress for longer than this means no worker is working
        self.stall = 2 * self.redeliver + 2 * sweep_interval(self.redeliver)
        # a run no worker has touched by then says so once, and keeps waiting
        self.notice = min(10.0, self.stall / 3)
        self.rounds = 0
        self._catalog: str | None = None  # the run's catalog text (its state keeps it; shards name it)
        self.reruns = 0
        self.run_id = ""
        self.app = new_app(
            self.url, self.redeliver, name="greenfetch-coordinator"
        )  # its own: the worker's is untouched

    # -- the plan ---------------------------------------------------------------------------------

    def plan(
        self,
        accounts: Sequence[Account],
        types: Sequence[ResourceType],
        regions: str | Sequence[str],
        exclude: Sequence[str],
        role_name: str | None,
        external_id: str | None,
        options: dict[str, Any],
    ) -> list[Shard]:
        names = tuple(t.name for t in types)
        where = regions if isinstance(regions, str) else tuple(regions)
        return [
            Shard(
                self.run_id,
                a.account_id,
                names,
                where,
                tuple(exclude),
                role=a.role or role_name,
                account_name=a.name,
                external_id=external_id,
                options=options,
            )
            for a in accounts
        ]

    def fetch(
        self,
        *,
        accounts: Sequence[Account],
        types: Sequence[ResourceType],
        regions: str | Sequence[str],
        exclude: Sequence[str],
        role_name: str | None = None,
        external_id: str | None = None,
        cache_ttl: float | None = None,
        cache_not_before: float | None = None,
        status_store: str | None = None,
        concurrency: int | None = None,
        filter_offered: bool = True,
        tags: bool = False,
        on_record: Callable[[Record, float | None], None] | None = None,
        sink: Any = None,
        catalog_file: str | None = None,
    ) -> RunSummary:
        """``sink``: the run's own sink when workers can write it directly (PostgreSQL): they do, and
        only records no worker wrote (a shard that never completed) go to ``on_record``.
        ``catalog_file``: the user's overlay file the run was planned with (None: the shipped catalog
        alone); kept once in the run's state, each shard names it by digest."""
        self.run_id = uuid.uuid4().hex[:16]
        if sink is not None:
            self.sink = sink.shard_sink()
        summary = RunSummary()
        self._catalog, reference = _catalog_text(catalog_file)
        options = {
            "cache_ttl": cache_ttl,
            "cache_not_before": cache_not_before,
            "status_store": status_store,
            "concurrency": concurrency,
            "filter_offered": filter_offered,
            "tags": tags,
            "catalog": reference,
        }
        shards = self.plan(accounts, types, regions, exclude, role_name, external_id, options)
        state = RunState(redis_client(self.url), self.run_id)
        self._broker(state.client.ping, "cannot reach the broker")
        try:
            self._broker(
                lambda: state.begin((s.key for s in shards), self._catalog), "cannot reach the broker"
            )
            self._send(shards)
            failures = self._wait(state, shards)
            finished: dict[str, str] | None = None
            for shard in shards:
                got = self.sink.get(self.run_id, shard.key)
                written = got is not None and getattr(self.sink, "direct", False)  # in the run's sink already
                if got is None:
                    if finished is None:  # who finished what: only to explain a missing shard, so best effort
                        finished = {}
                        with contextlib.suppress(Exception):
                            finished = state.finished()
                    got = self._missing(shard, types, failures.get(shard.key), finished.get(shard.key))
                records, shard_summary = got
                times = merge_shard(summary, records, shard_summary)
                if on_record is not None and not written:
                    for rec, fetched_at in zip(records, times, strict=True):
                        on_record(rec, fetched_at)
            with contextlib.suppress(Exception):
                self.reruns = sum(1 for n in state.runs().values() if n > 1)
            if self.log is not None:
                self.log(
                    f"shards: {len(shards)} sent to workers in {self.rounds} round(s); {self.reruns} ran more "
                    "than once (a worker lost or slow; records are written once)"
                )
        finally:
            with contextlib.suppress(Exception):
                state.end()
            self.sink.discard(self.run_id)
        summary.wall_seconds = time.perf_counter() - summary.started
        return summary

    # -- sending and waiting ----------------------------------------------------------------------

    def _send(self, shards: Sequence[Shard]) -> None:
        sink = sink_spec(self.sink)  # the location only: workers reach it with their own credentials

        def send() -> None:
            with self.app.producer_or_acquire() as producer:
                for shard in shards:
                    self.app.send_task(
                        TASK,
                        args=[{"shard": shard.to_dict(), "sink": sink, "engine": self.engine_options}],
                        queue=QUEUE,
                        producer=producer,
                    )

        self._broker(send, "cannot send shards to the broker")

    def _wait(self, state: RunState, shards: Sequence[Shard]) -> dict[str, str]:
        """Until every planned shard is in the sink or ``max_rounds`` deliveries are spent; returns
        the last error of each shard that raised."""
        total, self.rounds = len(shards), 1
        down_since: float | None = None
        next_sweep = time.monotonic() + sweep_interval(self.redeliver)
        last, changed = -1, time.monotonic()
        notice_at: float | None = time.monotonic() + self.notice
        while True:
            try:
                pending = state.pending()
                down_since = None
                if pending != last:
                    last, changed = pending, time.monotonic()
                elif pending and time.monotonic() - changed > self.stall:
                    self._stalled(pending, total)
                if notice_at is not None and time.monotonic() >= notice_at:
                    notice_at = None
                    if pending == total and not state.started():
                        self._say(
                            f"waiting: no worker has taken a shard yet; start `greenfetch worker` with "
                            f"--broker {redact(self.url)} (or GREENFETCH_BROKER_URL) where it reaches this "
                            f"broker and AWS; the run stops after {self.stall:g}s without progress"
                        )
                if pending and time.monotonic() >= next_sweep:  # a killed worker's shards, back on the queue
                    next_sweep = time.monotonic() + sweep_interval(self.redeliver)
                    restore_abandoned(self.app)
            except Exception as exc:
                if not _connection_error(exc):
                    raise
                now = time.monotonic()
                down_since = down_since or now
                if now - down_since > self.grace:
                    self._lost(exc, state, shards)
                time.sleep(self.poll)
                continue
            if self.progress is not None:
                self.progress(total - pending, total)
            if pending == 0:
                have = self.sink.keys(self.run_id)
                missing = [s for s in shards if s.key not in have]
                failures = self._broker(state.failures, "lost the broker")
                if not missing or self.rounds >= self.max_rounds:
                    return failures
                self.rounds += 1
                self._broker(
                    functools.partial(state.again, [s.key for s in missing], total, self._catalog),
                    "lost the broker",
                )
                self._send(missing)
                last, changed = -1, time.monotonic()
            time.sleep(self.poll)

    def _lost(self, exc: BaseException, state: RunState, shards: Sequence[Shard]) -> None:
        done = len(self.sink.keys(self.run_id))
        raise BrokerError(
            f"the broker at {redact(self.url)} stopped answering for {self.grace:g}s "
            f"({_reason(exc)}); {done} of {len(shards)} shards had finished; no files were "
            "written. Start Redis again and re-run the inventory"
        ) from None

    def _stalled(self, pending: int, total: int) -> None:
        raise BrokerError(
            f"no shard finished for {self.stall:g}s ({pending} of {total} still pending): check "
            f"that `greenfetch worker`s are running and reach {redact(self.url)}; no files were "
            "written"
        )

    def _broker(self, call: Callable[[], T], what: str) -> T:
        try:
            return call()
        except Exception as exc:
            if not _connection_error(exc):
                raise
            raise BrokerError(f"{what} at {redact(self.url)}: {_reason(exc)}") from None

    def _say(self, line: str) -> None:
        if self.log is not None:
            self.log(line)

    def _missing(
        self, shard: Shard, types: Sequence[ResourceType], failure: str | None, finished_by: str | None = None
    ) -> tuple[list[Record], dict[str, Any]]:
        """A shard no worker completed: one error record per type, and the account counts as failed.
        A shard a worker did finish, absent from the sink, was written where this coordinator cannot
        see: the error names the place."""
        if failure is None and finished_by is not None:
            where = sink_spec(self.sink)
            if where.get("kind") == "s3":
                why = (
                    f"worker {finished_by} finished it, but it is not under {where['uri']}: do the workers and "
                    "this coordinator reach the same bucket (same endpoint and account)?"
                )
            else:
                why = (
                    f"worker {finished_by} finished it, but it is not in {where['root']}: do the workers see "
                    "--out at this same path (one machine, or a shared filesystem)? Or give --shards "
                    "s3://BUCKET/PREFIX"
                )
        else:
            why = failure or "no worker finished it"
        error = f"shard {shard.key} did not complete in {self.rounds} deliveries: {why}"
        records = [record(t.name, shard.account, "*", [], "error", error) for t in types]
        return records, {"accounts_failed": {shard.account: error}}


def _catalog_text(path: str | None) -> tuple[str | None, dict[str, str] | None]:
    """The user's overlay file as the text the run's state keeps, and the shard's ``catalog`` option
    that names it (its source and SHA-256); (None, None) for the shipped catalog alone."""
    user = user_catalog(path)
    if user is None:
        return None, None
    text = json.dumps(user["overlay"], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text, {"source": str(user["source"]), "sha256": catalog_digest(text)}


def _connection_error(exc: BaseException) -> bool:
    import redis
    from kombu.exceptions import OperationalError

    return isinstance(
        exc,
        (
            redis.ConnectionError,
            redis.TimeoutError,
            redis.AuthenticationError,
            OperationalError,
            ConnectionError,
            TimeoutError,
        ),
    )


def _reason(exc: BaseException) -> str:
    """The error's own words, any URL in them redacted (redis-py and kombu name host and port)."""
    return redact(str(exc).strip() or type(exc).__name__)


def broker_fetch(
    broker_url: str,
    out: str | None,
    config: Any,
    *,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    shards: str | None = None,
    engine: Engine | None = None,
) -> Callable[..., RunSummary]:
    """The ``fetch`` that ``run_inventory`` calls for ``--broker``: InventoryError (exit 2) for a bad
    URL, a bad GREENFETCH_REDELIVER_AFTER, a run without ``--out`` or a ``--shards`` that is not
    ``s3://BUCKET/PREFIX``. Without ``shards`` workers write into ``--out`` (a shared directory);
    with it they write to S3 and ``engine`` (the coordinator's) reads the shards back."""
    from .._config import ConfigError
    from ..inventory._cache import parse_s3_uri

    if out is None:
        raise InventoryError(
            "--broker needs --out DIR, a directory every worker can also see (workers write "
            "their shards there), or --out DIR with --shards s3://BUCKET/PREFIX; records on "
            "stdout are for runs without --broker"
        )
    sink: str | Path | S3ShardSink = shard_root(out)
    if shards is not None and is_postgres_url(out):
        raise InventoryError(
            "--shards is where workers leave shards for a run's files; with --out postgresql://... "
            "each worker writes its shards into the database: drop --shards"
        )
    if shards is not None:
        try:
            parse_s3_uri(shards)
        except InventoryError:
            raise InventoryError(
                f"--shards {shards!r} is not an S3 URI; use s3://BUCKET/PREFIX (a bucket every "
                "worker can write), or leave --shards out to share the --out directory"
            ) from None
        if engine is None:
            raise InventoryError("--shards on S3 needs an engine to read the shards back")
        sink = S3ShardSink(engine, shards)
        sink.check()
    engine_options = {
        "region": config.region,
        "endpoint_url": config.endpoint_url,
        "max_attempts": config.max_attempts,
        "concurrency": config.concurrency,
    }
    line = _ProgressLine() if progress else None
    if line is not None and log is not None:
        log = line.above(log)
    try:
        coordinator = Coordinator(broker_url, sink, engine_options=engine_options, progress=line, log=log)
    except ConfigError as exc:
        raise InventoryError(str(exc)) from None
    return coordinator.fetch


class _ProgressLine:
    """``shards: 3/12 done`` on stderr, redrawn when it changes."""

    def __init__(self) -> None:
        self._last: tuple[int, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        if (done, total) != self._last:
            self._last = (done, total)
            end = "\n" if done == total else ""
            sys.stderr.write(f"\rshards: {done}/{total} done{end}")
            sys.stderr.flush()

    def above(self, log: Callable[[str], None]) -> Callable[[str], None]:
        """``log``, its lines kept off the progress line (which is drawn again on its next change)."""

        def say(text: str) -> None:
            if self._last is not None and self._last[0] != self._last[1]:
                sys.stderr.write("\n")
                self._last = None
            log(text)

        return say
