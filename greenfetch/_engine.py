"""The engine: requests in, exactly one Result per request out, over a bounded pool.

A composition root: the configuration, a backend (gevent or threads), the caller (the AWS seam,
``_caller``), the metrics and the dedupe table, put together once. One request flows through
``execute``, one concern per step, as httpx's ``send`` chain does::

    execute(raw)          Request.coerce, run defaults, caller.resolve; every failure -> a Result
      -> the gate         the adaptive limiter's slot, if a gate is given (its wait is not timed)
      -> _shared          with a dedupe window: one call for identical requests in flight
      -> caller.call      botocore (or a MockCaller), per-attempt timing recorded

Many requests go through ``_scheduler.iter_bounded``, which knows nothing about AWS.
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager as ContextManager
from typing import Any, TypeVar

from ._adaptive import AdaptiveResults, Limits, TracePoint, open_gate
from ._attempts import Attempt, AttemptRecorder, recording
from ._backends import Backend, backend_for
from ._caller import BotocoreCaller, Caller
from ._clients import ClientCache
from ._config import Config, check_whole, parse_processes
from ._dedupe import Singleflight, check_window
from ._errors import UNBUILT_CODES, classify, describe
from ._exceptions import BatchFailed
from ._metrics import Metrics
from ._models import Request, Result, failed_result, names_of
from ._processes import WorkerPools
from ._scheduler import iter_bounded

__all__ = ["Engine", "GateFn", "RawRequest"]

# A gate: entered around each call, yields the concurrency limit in force (None without a limiter).
# Each attempt of the call is observed by what the gate returned, if it has ``observe(attempt)``,
# else by ``gate.attempt(request, attempt)``, if the gate has one (``_gate_sample``).
GateFn = Callable[[Request], ContextManager[int | None]]
RawRequest = Request | Mapping[str, Any]
T = TypeVar("T")
perf_counter = time.perf_counter


class Engine:
    """Clients, connection pools, metrics, dedupe state, adaptive limits and worker processes for one
    set of runs: each made here, once, and owned by the engine."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        caller: Caller | None = None,
        registry: Any = None,
        backend: Backend | None = None,
    ):
        self.config = config or Config.resolve()
        self.backend = backend or backend_for(self.config.backend, max_workers=1024)
        self.clients = ClientCache(self.config)
        self.caller = caller or BotocoreCaller(self.clients)
        self.metrics = Metrics(registry)
        self.dedupe = Singleflight(metrics=self.metrics, backend=self.backend)
        # the adaptive limiters per scope: what they learn carries over to the engine's next batch
        self.limits = Limits(self.metrics, gevent=self.backend.name == "gevent")
        # processes=N: worker pools kept idle between calls; they stop with the engine, or when it is collected
        self.pools = WorkerPools(self)
        weakref.finalize(self, self.pools.close)

    # -- one request -------------------------------------------------------------------------

    def prepare(self, raw: RawRequest) -> Request:
        """The request as it will be called: the run defaults applied, its region and API name."""
        return self._resolve(raw)[0]

    def _resolve(self, raw: RawRequest) -> tuple[Request, Any]:
        """Normalized once (``Request.coerce``, the run defaults), resolved once (``caller.resolve``:
        region, client and API name together): the request and what ``caller.call`` needs."""
        config = self.config
        request = Request.coerce(raw, (config.profile, config.region, config.endpoint_url))
        return self.caller.resolve(request)

    def execute(
        self,
        raw: RawRequest,
        index: int = 0,
        *,
        gate: GateFn | None = None,
        dedupe_window: float | None = None,
    ) -> Result:
        """Run one request to its Result; never raises for anything the request or AWS did.

        With ``dedupe_window`` (seconds; 0 = only while in flight) identical requests share one call
        (``deduped=True``)."""
        started = perf_counter()
        recorder = AttemptRecorder()
        request: Any = raw
        limit = None
        try:
            request, client = self._resolve(raw)
            if gate is None and dedupe_window is None:  # the common path, written out
                recorder.on_attempt = functools.partial(self.metrics.attempt, request)
                inflight = self.metrics.inflight()
                inflight.calls.append(None)
                try:
                    with recording(recorder):
                        value, shared = self.caller.call(request, client), False
                finally:
                    inflight.calls.pop()
            elif gate is None:
                recorder.on_attempt = functools.partial(self.metrics.attempt, request)
                with self.metrics.inflight():
                    value, shared = self._shared(request, client, recorder, dedupe_window)
            else:
                queued = perf_counter()
                # each attempt: its metrics, then the gate's sample (``AttemptRecorder.on_sample``)
                recorder.on_attempt = functools.partial(self.metrics.attempt, request)
                try:
                    slot = gate(request)
                except Exception:  # no slot: an unseen attempt goes to ``gate.attempt``, as it would have
                    recorder.on_sample = _gate_sample(request, gate)
                    raise
                # through the slot the gate gave the request when it has ``observe`` (a ``Limiter``:
                # the gate found the request's scope once, at the slot)
                recorder.on_sample = getattr(slot, "observe", None) or _gate_sample(request, gate)
                with slot as limit:
                    started += perf_counter() - queued  # waiting for a gate slot is not the request's time
                    if dedupe_window is None:  # the gated path (an inventory's), written out as above
                        inflight = self.metrics.inflight()
                        inflight.calls.append(None)
                        try:
                            with recording(recorder):
                                value, shared = self.caller.call(request, client), False
                        finally:
                            inflight.calls.pop()
                    else:
                        with self.metrics.inflight():
                            value, shared = self._shared(request, client, recorder, dedupe_window)
            request_id = _pop_request_id(value)
        except Exception as exc:  # noqa: BLE001 - every failure becomes this request's Result
            result = self._failure(index, request, exc)
            result.concurrency = limit  # a call that failed was dispatched under a limit too
            if (
                isinstance(request, Request)
                and not recorder.attempts
                and result.error_code not in UNBUILT_CODES
            ):
                # a caller below botocore's events
                _record_unseen_attempt(recorder, started, result.error_code)
            result.duration_ms = (perf_counter() - started) * 1000.0
            result.attempts = len(recorder.attempts)
        else:
            if not recorder.attempts:
                _record_unseen_attempt(recorder, started, None)
            # every field at once, in Result's order: index, request, result, error, error_code,
            # retryable, guidance, request_id, duration_ms, attempts, concurrency, deduped
            result = Result(
                index,
                request,
                value,
                None,
                None,
                False,
                None,
                request_id,
                (perf_counter() - started) * 1000.0,
                len(recorder.attempts),
                limit,
                shared,
            )
        self.metrics.result(result)
        return result

    def _shared(
        self, request: Request, client: Any, recorder: AttemptRecorder, window: float | None
    ) -> tuple[Any, bool]:
        """(response, shared?): the call, or with a dedupe window a share of an identical request's
        call (a shallow copy, so popping ResponseMetadata from one Result does not touch the others)."""

        if window is None:
            with recording(recorder):
                return self.caller.call(request, client), False

        def call() -> Any:  # under dedupe this runs in its own greenlet: attempts still go to this recorder
            with recording(recorder):
                return self.caller.call(request, client)

        value, outcome = self.dedupe.do_outcome(request.signature, call, window)
        return (dict(value) if isinstance(value, dict) else value), outcome != "executed"

    def _failure(self, index: int, request: Any, exc: Exception) -> Result:
        code, message, status, request_id = describe(exc)
        service, operation = names_of(request)
        identity = request.identity if isinstance(request, Request) else ""
        info = classify(
            code, http_status=status, service=service or "", operation=operation or "", identity=identity
        )
        return failed_result(
            index,
            request,
            code,
            message,
            retryable=info.retryable,
            request_id=request_id,
            guidance=getattr(exc, "guidance", None) or info.guidance,
        )

    # -- many requests -----------------------------------------------------------------------

    def iter_results(
        self,
        requests: Iterable[RawRequest],
        concurrency: int | None = None,
        *,
        fail_fast: bool = False,
        gate: GateFn | None = None,
        dedupe_window: Any = None,
        processes: Any = None,
    ) -> Iterator[Result]:
        """Results as they complete. Requests are pulled lazily: a slot frees only when its result
        has been taken, so memory is bounded by the concurrency, not by the number of requests.
        ``processes`` (a whole number or ``auto``) overrides the Config's for this call."""
        limit = check_whole("concurrency", self.config.concurrency if concurrency is None else concurrency)
        window = None if dedupe_window is None else check_window(dedupe_window)
        workers = self.config.processes if processes is None else parse_processes(processes)
        if workers > 1:  # docs/contract.md, section 9: the same API over worker processes
            return self.pools.iter_results(
                workers, requests, limit, fail_fast=fail_fast, gate=gate, dedupe_window=window
            )

        def run(index: int, raw: RawRequest) -> Result:
            return self.execute(raw, index, gate=gate, dedupe_window=window)

        stop = (lambda result: result.error is not None) if fail_fast else None
        return iter_bounded(self.backend, requests, run, limit, stop=stop)

    def batch_requests(
        self,
        requests: Iterable[RawRequest],
        concurrency: int | None = None,
        *,
        fail_fast: bool = False,
        gate: GateFn | None = None,
        dedupe_window: Any = None,
        processes: Any = None,
    ) -> list[Result]:
        """All results in request order; fail-fast raises BatchFailed at the first failure."""
        results = list(
            self.iter_results(
                requests,
                concurrency,
                fail_fast=fail_fast,
                gate=gate,
                dedupe_window=dedupe_window,
                processes=processes,
            )
        )
        results.sort(key=lambda r: r.index)
        failure = next((r for r in results if r.error is not None), None) if fail_fast else None
        if failure is not None:
            raise BatchFailed(failure, results)
        return results

    def adaptive_batch(
        self,
        requests: Iterable[RawRequest],
        initial_concurrency: Any = 5,
        target_latency: Any = 0.5,
        min_concurrency: Any = 1,
        max_concurrency: Any = 256,
        *,
        fail_fast: bool = False,
        reset: Any = False,
        dedupe_window: Any = None,
        processes: Any = None,
    ) -> AdaptiveResults:
        """Like ``batch_requests`` with the limit set by the engine's adaptive limiters (``self.limits``).

        ``max_concurrency`` bounds the requests pulled at once; each request's scope limiter decides
        how many of those run. What a scope learned carries over to the engine's next batch;
        ``reset=True`` forgets it first. Bad numbers raise ConfigError before anything starts."""
        gate = open_gate(
            self.limits, initial_concurrency, target_latency, min_concurrency, max_concurrency, reset
        )
        results = AdaptiveResults()
        results.trace = {}
        try:
            results.extend(
                self.batch_requests(
                    requests,
                    gate.settings.max,
                    fail_fast=fail_fast,
                    gate=gate,
                    dedupe_window=dedupe_window,
                    processes=processes,
                )
            )
        finally:
            results.trace = gate.trace()
        return results

    def iter_adaptive(
        self,
        requests: Iterable[RawRequest],
        initial_concurrency: Any = 5,
        target_latency: Any = 0.5,
        min_concurrency: Any = 1,
        max_concurrency: Any = 256,
        *,
        fail_fast: bool = False,
        reset: Any = False,
        dedupe_window: Any = None,
        processes: Any = None,
        on_trace: Callable[[dict[str, list[TracePoint]]], None] | None = None,
    ) -> Iterator[Result]:
        """``adaptive_batch`` as a stream: results as they complete, so a caller stopped early (Ctrl-C,
        SIGTERM, fail-fast) still has what completed; ``on_trace`` gets the trace when the stream ends.
        Bad numbers raise ConfigError here, before anything starts."""
        gate = open_gate(
            self.limits, initial_concurrency, target_latency, min_concurrency, max_concurrency, reset
        )
        results = self.iter_results(
            requests,
            gate.settings.max,
            fail_fast=fail_fast,
            gate=gate,
            dedupe_window=dedupe_window,
            processes=processes,
        )

        def stream() -> Iterator[Result]:
            try:
                yield from results
            finally:
                if on_trace is not None:
                    on_trace(gate.trace())

        return stream()

    def dedupe_request(self, signature: str, fn: Callable[[], T], window: Any = 5.0) -> T:
        """See greenfetch.dedupe_request; the table lives in _dedupe."""
        # a signature's value is what the first fn for it returned: one signature, one kind of value
        value: T = self.dedupe.do(signature, fn, window=window)
        return value

    def close(self) -> None:
        self.pools.close()  # processes=N: the idle worker processes stop with the engine
        self.caller.close()
        self.clients.close()
        self.backend.shutdown()


def _record_unseen_attempt(recorder: AttemptRecorder, started: float, error_code: str | None) -> None:
    """A caller whose attempts botocore's events did not see (a MockCaller, a stub) made one attempt:
    record it, so metrics and the adaptive gate observe it like any other."""
    status = 429 if error_code is not None and classify(error_code).throttle else None
    attempt = Attempt(perf_counter() - started, status, error_code)
    recorder.attempts.append(attempt)
    if recorder.on_attempt is not None:
        recorder.on_attempt(attempt)
    if recorder.on_sample is not None:
        recorder.on_sample(attempt)


def _gate_sample(request: Request, gate: GateFn) -> Callable[[Attempt], None] | None:
    """A gated request's sample when its slot has no ``observe``: ``gate.attempt(request, attempt)``,
    if the gate has one."""
    on_gate = getattr(gate, "attempt", None)
    return None if on_gate is None else functools.partial(on_gate, request)


def _pop_request_id(value: Any) -> str | None:
    if isinstance(value, dict):
        meta = value.pop("ResponseMetadata", None) or {}
        request_id: str | None = meta.get("RequestId") or meta.get("HTTPHeaders", {}).get("x-amzn-requestid")
        return request_id
    return None
