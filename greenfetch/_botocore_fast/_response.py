"""The response side: the parse's handler found once per parser class (:func:`parse_shape`),
standard mode's "no retry" for an answer without an error read from the values that decide it
(:func:`needs_retry`), docs/performance/engine-call.md, issue 24 parts 4 and 6; an attempt's end,
timed for the engine and its ``response-received`` event's arguments made only where a handler may
hear them (:func:`get_response`, part 9)."""

from __future__ import annotations

import inspect
from binascii import crc32
from typing import Any

import botocore.endpoint
import botocore.parsers
import botocore.retries.special
import botocore.retries.standard

from .. import _attempts
from ._events import sole_handler, unheard

# -- the response parse (issue 24, part 4) --------------------------------------------------------
#
# Every node of a response (each member, each list item) goes through ``ResponseParser._parse_shape``,
# which builds the handler's name (``f"_handle_{type}"``) and looks it up with a default: for a type
# the parser has no handler for (a JSON string, integer or boolean) that lookup raises and catches an
# AttributeError inside ``getattr``, once per value. botocore makes a new parser for every response,
# so the replacement looks each type's handler up once per parser class and remembers it.

_parse_shape = botocore.parsers.ResponseParser._parse_shape
_handlers: dict[type, tuple[int, dict[str, Any]]] = {}


def _own_handler(attributes: dict[str, Any]) -> bool:
    return any(key.startswith("_handle_") or key == "_default_handle" for key in attributes)


def parse_shape(self: Any, shape: Any, node: Any) -> Any:
    """``ResponseParser._parse_shape`` with the handler of each type found once per parser class and
    remembered as a function. A parser with attributes of its own beyond those its class's first
    parser had (a handler set on the instance, say) is parsed by botocore's own code."""
    cls = type(self)
    attributes = self.__dict__
    known = _handlers.get(cls)
    if known is None:
        if _own_handler(attributes):
            return _parse_shape(self, shape, node)
        known = _handlers[cls] = (len(attributes), {})
    if len(attributes) != known[0]:
        return _parse_shape(self, shape, node)
    functions = known[1]
    function: Any = functions.get(shape.type_name)
    if function is None:
        found = getattr(cls, f"_handle_{shape.type_name}", None)
        if found is None:
            found = cls._default_handle
        function = functions[shape.type_name] = found if inspect.isfunction(found) else False
    if function is False:
        return _parse_shape(self, shape, node)
    return function(self, shape, node)


# -- standard mode's retry decision on an answer it keeps (issue 24, part 6) -----------------------
#
# After every attempt ``needs-retry`` asks ``RetryHandler.needs_retry``, which wraps the event's
# arguments in a ``RetryContext`` and walks the standard conditions: max attempts, then any of
# transient, throttled, modeled-retryable, STS's IDPCommunicationError and DynamoDB's CRC32 check.
# For an answer without an error every one of them is decided by a few values (the error code is
# None), so those values are checked directly; wherever any condition could hold, the whole
# handler is botocore's.

_RetryHandler = botocore.retries.standard.RetryHandler
_needs_retry = _RetryHandler.needs_retry
_std = botocore.retries.standard
_special = botocore.retries.special
_CHECKERS = (
    _std.TransientRetryableChecker,
    _std.ThrottledRetryableChecker,
    _std.ModeledRetryableChecker,
    _std.OrRetryChecker,
)
_SPECIAL = (_special.RetryIDPCommunicationError, _special.RetryDDBChecksumError)


def _kept(self: Any, kwargs: dict[str, Any]) -> bool:
    """:func:`_keeps` for the event's arguments as the handler takes them (``**kwargs``). Without the
    attempts or the request dict botocore's handler decides (its adapter reads both, and fails alike)."""
    if "attempts" not in kwargs or "request_dict" not in kwargs:
        return False
    return _keeps(
        self,
        kwargs.get("response"),
        kwargs.get("operation"),
        kwargs.get("caught_exception"),
        kwargs["attempts"],
        kwargs["request_dict"],
    )


def _keeps(
    self: Any, response: Any, operation: Any, caught_exception: Any, attempts: Any, request_dict: Any
) -> bool:
    """Whether standard mode's conditions say "no retry" for this ``needs-retry``, known without
    botocore's walk; with the one side effect the walk has on the way (the max attempts written into
    the request's retries context, which botocore's own walk writes again alike). False is "not
    known": botocore decides. The event's arguments one by one: ``Endpoint._needs_retry`` asks it
    without making them a dict."""
    if response is None or caught_exception is not None or operation is None:
        return False
    http, parsed = response
    if type(parsed) is not dict or "Error" in parsed:
        return False  # an error code (or one botocore's get_error_code could find): botocore decides
    if type(self._retry_event_adapter) is not _std.RetryEventAdapter:
        return False
    policy = self._retry_policy
    if type(policy) is not _std.RetryPolicy:
        return False
    conditions = policy._retry_checker
    if type(conditions) is not _std.StandardRetryConditions:
        return False
    checker = conditions._max_attempts_checker
    others = conditions._additional_checkers
    if type(checker) is not _std.MaxAttemptsChecker or type(others) is not _std.OrRetryChecker:
        return False
    checkers = others._checkers
    if len(checkers) != 4:
        return False
    transient, throttled, modeled, special = checkers  # each checked by its type (no tuple of types)
    if (
        type(transient) is not _CHECKERS[0]
        or type(throttled) is not _CHECKERS[1]
        or type(modeled) is not _CHECKERS[2]
        or type(special) is not _CHECKERS[3]
    ):
        return False
    specials = special._checkers
    if len(specials) != 2:
        return False
    idp, ddb = specials
    if type(idp) is not _SPECIAL[0] or type(ddb) is not _SPECIAL[1]:
        return False
    if not attempts < checker._max_attempts:
        return False  # botocore notes MaxAttemptsReached in the metadata
    context = request_dict["context"]
    retries = context.get("retries") if context is not None else None
    if retries:
        retries["max"] = max(retries.get("max", 0), checker._max_attempts)
    # the error code is None: transient and throttled look it up in their lists; modeled and STS's
    # check need a code; DynamoDB's compares the body's CRC32 with its header
    if None in transient._transient_error_codes or None in throttled._throttled_error_codes:
        return False
    if http is not None and http.status_code in transient._transient_status_codes:
        return False
    service = operation.service_model.service_name  # STS's check reads it first, whatever the answer
    if http is not None and service == ddb._SERVICE_NAME:
        checksum = http.headers.get(ddb._CHECKSUM_HEADER)
        if checksum is not None:
            try:
                if crc32(http.content) & 0xFFFFFFFF != int(checksum):
                    return False
            except Exception:  # noqa: BLE001 - botocore's walk raises it
                return False
    return True


def needs_retry(self: Any, **kwargs: Any) -> Any:
    """``RetryHandler.needs_retry`` (standard mode) for an answer its conditions would not retry:
    the same log line, the response's metadata made present as botocore's adapter makes it (with
    nothing to add) and no delay. Anything else: botocore's own handler."""
    if type(self) is not _RetryHandler or not _kept(self, kwargs):
        return _needs_retry(self, **kwargs)
    _not_retried(kwargs["response"])
    return None


def _not_retried(response: Any) -> None:
    """What botocore's handler does for an answer it does not retry: its log line, and the response's
    metadata made present as its adapter makes it (with nothing to add)."""
    _std.logger.debug("Not retrying request.")
    response[1].setdefault("ResponseMetadata", {})


# -- the needs-retry event asked of its one handler (issue 24, part 10) ------------------------------
#
# ``Endpoint._needs_retry`` emits ``needs-retry`` after every attempt with seven arguments (two frames
# and a copy of them), and the handler, ``needs_retry`` above, takes them as ``**kwargs`` (another
# copy). Where that handler, standard mode's, is the only one the emitter would call and the emitter's
# debug line is off, its "no retry" (``_kept``) is asked directly; any other handler (a user's,
# greenfetch's attempt handler, legacy mode's), a retry, or an answer ``_kept`` does not know: the emit.

_endpoint_needs_retry = botocore.endpoint.Endpoint._needs_retry


def endpoint_needs_retry(
    self: Any,
    attempts: Any,
    operation_model: Any,
    request_dict: Any,
    response: Any = None,
    caught_exception: Any = None,
) -> Any:
    """``Endpoint._needs_retry``: False without the emit where standard mode's handler is the event's
    only one and ``_kept`` says "no retry"; botocore's own otherwise."""
    service_id = operation_model.service_model.service_id.hyphenize()
    handler = sole_handler(self._event_emitter, f"needs-retry.{service_id}.{operation_model.name}")
    if handler is not None and getattr(handler, "__func__", None) is needs_retry:
        retry = handler.__self__
        if type(retry) is _RetryHandler and _keeps(
            retry, response, operation_model, caught_exception, attempts, request_dict
        ):
            _not_retried(response)
            return False
    return _endpoint_needs_retry(self, attempts, operation_model, request_dict, response, caught_exception)


# -- an attempt: its timing, and response-received (issue 24, part 9) ------------------------------
#
# ``Endpoint._get_response`` is one attempt: ``_do_get_response`` (the ``before-send`` event, the send,
# the parse), then ``response-received``, whose arguments include the response as a dict
# (``convert_to_response_dict``, ~4k instructions) and whose emission costs ~12k more, for an event
# nothing listens to unless a user registers a handler. The replacement emits it only where the
# client's emitter may call a handler (``unheard``: every argument it would be given is one
# ``_do_get_response`` already made or read, so not making them changes nothing), and times the
# attempt for the engine where the endpoint is marked (``_attempts.timed``/``record``), in place of
# the ``before-send`` and ``needs-retry`` handlers that did it through the emitter.

_get_response = botocore.endpoint.Endpoint._get_response


@_attempts.times_attempts
def get_response(self: Any, request: Any, operation_model: Any, context: Any) -> Any:
    """``Endpoint._get_response``: the attempt timed for the call being recorded on this greenlet
    (where ``_attempts.install_attempt_hooks`` marked the endpoint), and ``response-received`` emitted
    with botocore's arguments unless the emitter is known to call no handler for it."""
    rec = _attempts.timed(self)
    started = rec.clock() if rec is not None else 0.0
    success_response, exception = self._do_get_response(request, operation_model, context)
    service_id = operation_model.service_model.service_id.hyphenize()
    event_name = f"response-received.{service_id}.{operation_model.name}"
    emitter = self._event_emitter
    if not unheard(emitter, event_name):
        kwargs_to_emit = {
            "response_dict": None,
            "parsed_response": None,
            "context": context,
            "exception": exception,
        }
        if success_response is not None:
            http_response, parsed_response = success_response
            kwargs_to_emit["parsed_response"] = parsed_response
            kwargs_to_emit["response_dict"] = botocore.endpoint.convert_to_response_dict(
                http_response, operation_model
            )
        emitter.emit(event_name, **kwargs_to_emit)
    if rec is not None:
        _attempts.record(rec, rec.clock() - started, success_response, exception)
    return success_response, exception
