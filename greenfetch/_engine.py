"""The engine: requests in, exactly one Result per request out, over a bounded pool.

Flow of one request: ``Request.coerce`` -> defaults applied -> the shared client from the
ClientCache -> operation name resolved against the service model -> (gate: the adaptive limiter, if
any) -> botocore call or paginator, with per-attempt timing -> Result. Every failure on that path,
including requests that cannot be built, becomes a failed Result; nothing escapes to the batch.
"""

from __future__ import annotations

import contextlib
import difflib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager as ContextManager
from dataclasses import replace
from typing import Any

import botocore.exceptions
from botocore import xform_name

from ._attempts import AttemptRecorder, recording
from ._backends import Backend, backend_for
from ._clients import ClientCache
from ._config import Config, ConfigError
from ._dedupe import Singleflight, check_window
from ._errors import BatchFailed, classify
from ._metrics import Metrics
from ._models import Request, RequestError, Result

__all__ = ["Engine", "Gate"]

Gate = Callable[[Request], ContextManager[int | None]]
RawRequest = Request | Mapping[str, Any]


@contextlib.contextmanager
def _no_gate(_: Request) -> Iterator[None]:
    yield None


class _End:
    """Sentinel the feeder puts on the results queue: how many requests it started."""

    __slots__ = ("started", "error")

    def __init__(self, started: int, error: BaseException | None = None):
        self.started, self.error = started, error


class Engine:
    """Clients, connection pools, metrics and dedupe state for one set of runs."""

    def __init__(self, config: Config | None = None, *, registry: Any = None, backend: Backend | None = None):
        self.config = config or Config.resolve()
        self.backend = backend or backend_for(self.config.backend, max_workers=1024)
        self.clients = ClientCache(self.config)
        self.metrics = Metrics(registry)
        self.dedupe = Singleflight(metrics=self.metrics, backend=self.backend)
        self._operations: dict[str, tuple[frozenset[str], dict[str, str]]] = {}
        self._regions: dict[str | None, str | None] = {}

    # -- one request -------------------------------------------------------------------------

    def prepare(self, raw: RawRequest) -> tuple[Request, Any]:
        """The normalized request (API operation name, defaults applied) and its client."""
        request = Request.coerce(raw)
        profile = request.profile or self.config.profile
        request = replace(request, profile=profile,
                          region=request.region or self.config.region or self._profile_region(profile),
                          endpoint_url=request.endpoint_url or self.config.endpoint_url)
        client = self.clients.client(request)
        return replace(request, operation=self._api_name(request, client)), client

    def execute(self, raw: RawRequest, index: int = 0, *, gate: Gate | None = None,
                dedupe_window: Any = None) -> Result:
        """Run one request to its Result; never raises for anything the request or AWS did.

        With ``dedupe_window`` (seconds; 0 = only while in flight) the call goes through ``self.dedupe``
        keyed by the request's signature: identical requests share one call (``deduped=True``)."""
        started = time.perf_counter()
        recorder = AttemptRecorder()
        request: Any = raw
        shared: list[bool] = []
        try:
            request, client = self.prepare(raw)
            recorder.on_attempt = self._attempt_observer(request, gate)
            queued = time.perf_counter()
            with (gate or _no_gate)(request) as limit:
                started += time.perf_counter() - queued  # waiting for a gate slot is not the request's time
                with recording(recorder), self.metrics.inflight():
                    value = self._call_shared(client, request, recorder, dedupe_window, shared)
            result = Result(index, request, result=value, concurrency=limit,
                            request_id=_pop_request_id(value))
        except Exception as exc:  # noqa: BLE001 - every failure becomes this request's Result
            result = self._failure(index, request, exc)
        result.deduped = any(shared)
        result.duration_ms = (time.perf_counter() - started) * 1000.0
        result.attempts = len(recorder.attempts) or (1 if result.error_code not in _UNBUILT else 0)
        self.metrics.result(result)
        return result

    def _attempt_observer(self, request: Request, gate: Gate | None) -> Callable[[Any], None]:
        on_gate = getattr(gate, "attempt", None)

        def observe(attempt: Any) -> None:
            self.metrics.attempt(request, attempt)
            if on_gate is not None:
                on_gate(request, attempt)

        return observe

    def _call_shared(self, client: Any, request: Request, recorder: AttemptRecorder, window: Any,
                     shared: list[bool]) -> Any:
        """The call, or with a dedupe window a share of an identical request's call (a shallow copy,
        so popping ResponseMetadata from one Result does not touch the others)."""
        if window is None:
            return self._call(client, request)

        def call() -> Any:  # runs in the dedupe's own greenlet: attempts still go to this recorder
            with recording(recorder):
                return self._call(client, request)

        value = self.dedupe.do(request.signature, call, window,
                               on_outcome=lambda outcome: shared.append(outcome != "executed"))
        return dict(value) if isinstance(value, dict) else value

    def _call(self, client: Any, request: Request) -> Any:
        method = xform_name(request.operation)
        if request.paginate and client.can_paginate(method):
            config = {"MaxItems": request.max_items} if request.max_items else {}
            pages = client.get_paginator(method).paginate(**request.params, PaginationConfig=config)
            return pages.build_full_result()
        try:
            value = getattr(client, method)(**request.params)
        except TypeError:  # some botocore handlers run before validation and trip on wrong types
            _validate_params(client, request)
            raise
        for key, item in value.items():  # read streaming bodies now: they hold a pooled connection
            if hasattr(item, "read"):
                value[key] = _read_body(item, self.config.body_limit)
        return value

    def _api_name(self, request: Request, client: Any) -> str:
        names = self._operations.get(request.service)
        if names is None:
            api = frozenset(client.meta.service_model.operation_names)
            names = self._operations[request.service] = (api, {xform_name(n): n for n in api})
        api_names, by_method = names
        if request.operation in api_names:
            return request.operation
        if request.operation in by_method:
            return by_method[request.operation]
        near = difflib.get_close_matches(request.operation, sorted(api_names | set(by_method)), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise RequestError(
            f"unknown operation {request.operation!r} for service {request.service!r}{hint} "
            f"(it has {len(api_names)} operations, e.g. {', '.join(sorted(api_names)[:3])})",
            code="UnknownOperation", guidance=f"nearest valid names: {', '.join(near)}" if near else None)

    def _profile_region(self, profile: str | None) -> str | None:
        """The profile's configured region, read once per profile: botocore's config chain is too
        slow to consult on every request that names no region."""
        if profile not in self._regions:
            region = self.clients.session(profile).get_config_variable("region")
            self._regions[profile] = str(region) if region else None
        return self._regions[profile]

    def _failure(self, index: int, request: Any, exc: Exception) -> Result:
        code, message, status, request_id = _describe(exc)
        service = getattr(request, "service", None) or (request.get("service") if isinstance(request, Mapping) else None)
        operation = getattr(request, "operation", None) or (
            request.get("operation") if isinstance(request, Mapping) else None)
        where = f"{service}.{operation}: " if service and operation else ""
        identity = request.identity if isinstance(request, Request) else ""
        info = classify(code, http_status=status, service=service or "", operation=operation or "", identity=identity)
        guidance = getattr(exc, "guidance", None) or info.guidance
        if not isinstance(request, (Request, Mapping)):
            request = {"invalid": repr(request)[:200]}
        return Result(index, request, error=f"{where}{code}: {message}", error_code=code,
                      retryable=info.retryable, guidance=guidance, request_id=request_id)

    # -- many requests -----------------------------------------------------------------------

    def iter_results(self, requests: Iterable[RawRequest], concurrency: int | None = None, *,
                     fail_fast: bool = False, gate: Gate | None = None,
                     dedupe_window: Any = None) -> Iterator[Result]:
        """Results as they complete. Requests are pulled lazily: a slot frees only when its result
        has been taken, so memory is bounded by the concurrency, not by the number of requests."""
        limit = _check_concurrency(self.config.concurrency if concurrency is None else concurrency)
        if dedupe_window is not None:
            dedupe_window = check_window(dedupe_window)
        backend = self.backend
        slots, done, stopping = backend.semaphore(limit), backend.queue(), backend.event()
        tasks: dict[int, Any] = {}

        def run(index: int, raw: RawRequest) -> None:
            try:
                done.put(self.execute(raw, index, gate=gate, dedupe_window=dedupe_window))
            finally:
                tasks.pop(index, None)

        def feed() -> None:
            started = 0
            try:
                for index, raw in enumerate(requests):
                    slots.acquire()
                    if stopping.is_set():
                        break
                    tasks[index] = backend.spawn(run, index, raw)
                    started += 1
            except Exception as exc:  # a failing input iterator ends the run; the consumer re-raises it
                done.put(_End(started, exc))
                return
            done.put(_End(started))

        feeder = backend.spawn(feed)
        received, end = 0, None
        try:
            while end is None or received < end.started:
                item = done.get()
                if isinstance(item, _End):
                    end = item
                    continue
                received += 1
                yield item
                slots.release()
                if fail_fast and item.error is not None:
                    return
            if end.error is not None:  # bad input: raised after the results that came before it
                raise end.error
        finally:
            stopping.set()
            slots.release()  # wake the feeder if it waits for a slot, so it sees `stopping`
            feeder.kill()
            for task in list(tasks.values()):
                task.kill()

    def batch_requests(self, requests: Iterable[RawRequest], concurrency: int | None = None, *,
                       fail_fast: bool = False, gate: Gate | None = None,
                       dedupe_window: Any = None) -> list[Result]:
        """All results in request order; fail-fast raises BatchFailed at the first failure."""
        results: list[Result] = []
        for result in self.iter_results(requests, concurrency, fail_fast=fail_fast, gate=gate,
                                        dedupe_window=dedupe_window):
            results.append(result)
            if fail_fast and result.error is not None:
                results.sort(key=lambda r: r.index)
                raise BatchFailed(result, results)
        results.sort(key=lambda r: r.index)
        return results

    def adaptive_batch(self, requests: Iterable[RawRequest], **options: Any) -> list[Result]:
        """See greenfetch.adaptive_batch; the controller lives in _adaptive."""
        from ._adaptive import adaptive_batch

        return adaptive_batch(self, requests, **options)

    def dedupe_request(self, signature: str, fn: Callable[[], Any], window: Any = 5.0) -> Any:
        """See greenfetch.dedupe_request; the table lives in _dedupe."""
        return self.dedupe.do(signature, fn, window=window)

    def close(self) -> None:
        self.clients.close()
        self.backend.shutdown()


_UNBUILT = frozenset({"UnknownService", "UnknownOperation", "InvalidRequest", "MissingField", "NoRegion",
                      "ParamValidation", "InvalidCredentials", "ProfileNotFound"})


def _check_concurrency(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"concurrency: {value!r} is not allowed; use a whole number of 1 or more (e.g. 10)")
    return value


def _describe(exc: Exception) -> tuple[str, str, int | None, str | None]:
    """(code, message, http status, request id) for anything a call can raise."""
    if isinstance(exc, RequestError):
        return exc.code, str(exc), None, None
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode")
        code = err.get("Code") or (f"HTTP{status}" if status else "ClientError")
        return code, err.get("Message") or str(exc), status, meta.get("RequestId")
    if isinstance(exc, botocore.exceptions.ParamValidationError):
        return "ParamValidation", str(exc).replace("\n", " "), None, None
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "NoCredentials", "no AWS credentials found (set AWS_PROFILE, AWS_ACCESS_KEY_ID, or a role)", None, None
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return "EndpointConnectionError", str(exc), None, None
    return type(exc).__name__, str(exc) or repr(exc), None, None


def _validate_params(client: Any, request: Request) -> None:
    """Raise botocore's ParamValidationError (which names the bad parameter) if the params are invalid."""
    from botocore.validate import validate_parameters

    model = client.meta.service_model.operation_model(request.operation)
    validate_parameters(dict(request.params), model.input_shape)


def _pop_request_id(value: Any) -> str | None:
    if isinstance(value, dict):
        meta = value.pop("ResponseMetadata", None) or {}
        return meta.get("RequestId") or meta.get("HTTPHeaders", {}).get("x-amzn-requestid")
    return None


def _read_body(body: Any, limit: int) -> bytes:
    try:
        return bytes(body.read(limit))
    finally:
        body.close()


