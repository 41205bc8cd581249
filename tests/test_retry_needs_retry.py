"""``needs-retry`` asked of standard mode's handler without the emit (``_botocore_fast._response.
endpoint_needs_retry``, docs/performance/engine-call.md, issue 24 part 10) against botocore's own
``Endpoint._needs_retry``: the same attempts, the same end, and any other handler registered for the
event (a user's, at any level of its name) called with the same arguments as botocore calls it. No
socket: the client's HTTP session answers from a script (``test_attempts_endpoint``).
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import botocore.awsrequest
import botocore.endpoint
import botocore.session
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_attempts_endpoint import URL, client, counted_emits, no_backoff, scripts  # noqa: F401 - no_backoff: a fixture

from greenfetch._botocore_fast import _response

pytestmark = pytest.mark.usefixtures("fast_installed")

LEVELS = [None, "needs-retry", "needs-retry.dynamodb", "needs-retry.dynamodb.ListTables", "needs-retry.sqs"]
# A handler's "no retry": None, and False where botocore reads it so (1.36's ``_needs_retry`` sleeps
# False seconds and retries, for ever with a handler that always answers False, its own code as ours)
NO_RETRY = [None, False] if "is False" in inspect.getsource(_response._endpoint_needs_retry) else [None]


@pytest.fixture(scope="module")
def session() -> Any:
    return botocore.session.Session()


@pytest.fixture(autouse=True)
def debug_off() -> None:
    """The emitter's debug line known to log nothing, as in a program that does not log botocore's debug."""
    logger = logging.getLogger("botocore.hooks")
    assert not logger.isEnabledFor(logging.DEBUG)


def run(session: Any, script: list[str], level: str | None, answer: Any, calls: int) -> Any:
    """``calls`` ListTables on a client answering ``script`` (then "ok"), a listener registered for
    ``level`` (none where None) after the first call: (each call's end, the emitted ``needs-retry``
    names, what the listener heard)."""
    made = client(session, script, hooks=False)
    emitted = counted_emits(made, "needs-retry")
    heard: list[Any] = []

    def listener(**kwargs: Any) -> Any:
        response = kwargs["response"]
        heard.append(
            (
                kwargs["event_name"],
                kwargs["attempts"],
                kwargs["operation"].name,
                kwargs["endpoint"] is made._endpoint,
                response and (response[0].status_code, sorted(response[1])),
                type(kwargs["caught_exception"]).__name__,
            )
        )
        return answer

    ends = []
    for call in range(calls):
        if call == 1 and level is not None:
            made.meta.events.register(level, listener)
        try:
            outcome: Any = made.list_tables()
            outcome["ResponseMetadata"].pop("HTTPHeaders", None)
        except Exception as exc:  # noqa: BLE001 - compared: both ways must fail alike
            outcome = (type(exc).__name__, str(exc))
        ends.append(outcome)
    return ends, emitted, heard


@settings(max_examples=60, deadline=None)
@given(scripts, st.sampled_from(LEVELS), st.sampled_from(NO_RETRY), st.integers(1, 3))
def test_needs_retry_ends_and_is_heard_as_from_botocores_needs_retry(
    session: Any, script: list[str], level: str | None, answer: Any, calls: int
) -> None:
    """Any script of answers, throttles, errors and dropped connections, retried up to three attempts,
    and a listener for ``needs-retry`` at any level of the name (or for another service, or none)
    registered after the first call and answering "no retry" in any of its forms: each call ends the
    same, and the listener hears the same events with the same arguments, as under botocore's own
    ``Endpoint._needs_retry``."""
    ours = run(session, script, level, answer, calls)
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(botocore.endpoint.Endpoint, "_needs_retry", _response._endpoint_needs_retry)
        theirs = run(session, script, level, answer, calls)
    assert ours[0] == theirs[0]
    assert ours[2] == theirs[2]


def test_an_answer_kept_by_standard_mode_is_decided_without_the_emit(session: Any) -> None:
    """An answer without an error, with standard mode's handler the event's only one, once the emitter
    knows that: no ``needs-retry`` emitted (the first call fills the caches, as botocore's emit does).
    A throttle still emits (and is retried), and a listener registered later hears every attempt."""
    ends, emitted, heard = run(session, [], None, None, 3)
    assert [end["TableNames"] for end in ends] == [["a"]] * 3
    assert emitted == ["needs-retry.dynamodb.ListTables"]
    ends, emitted, heard = run(session, ["ok", "throttle"], "needs-retry.dynamodb", None, 2)
    assert len(emitted) == 3 and len(heard) == 2  # the first call's, then both attempts of the second
    assert [(attempts, response[0]) for _, attempts, _, _, response, _ in heard] == [(1, 400), (2, 200)]


def test_debug_logging_on_takes_the_emit(session: Any) -> None:
    """With botocore's debug logging on, the emitter logs a line before the handler: the emit is made."""
    logger = logging.getLogger("botocore.hooks")
    was = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        _, emitted, _ = run(session, [], None, None, 2)
    finally:
        logger.setLevel(was)
    assert emitted == ["needs-retry.dynamodb.ListTables"] * 2


def test_the_direct_path_asks_standard_mode_without_the_events_arguments_as_a_dict(
    session: Any, monkeypatch: Any
) -> None:
    """Once the emitter's caches know standard mode's handler is the event's only one, ``Endpoint.
    _needs_retry`` asks ``_keeps`` with the arguments one by one: the handler's ``**kwargs`` form
    (``_kept``, a dict of six arguments) only on the first call's emit (issue 24, part 12)."""
    asked: list[int] = []
    kept = _response._kept
    monkeypatch.setattr(_response, "_kept", lambda retry, kwargs: asked.append(1) or kept(retry, kwargs))
    ends, emitted, _ = run(session, [], None, None, 3)
    assert [end["TableNames"] for end in ends] == [["a"]] * 3
    assert emitted == ["needs-retry.dynamodb.ListTables"]
    assert asked == [1]


def test_the_handlers_form_without_attempts_or_request_dict_is_botocores(session: Any) -> None:
    """``_kept`` for the event's arguments without the attempts or the request dict: not known, so
    botocore's handler decides (and raises KeyError as it does)."""
    made = client(session, [], hooks=False)
    retry = next(
        h.__self__
        for h in made.meta.events._emitter._handlers.prefix_search("needs-retry.dynamodb.ListTables")
        if type(getattr(h, "__self__", None)) is _response._RetryHandler
    )
    http = botocore.awsrequest.AWSResponse(URL, 200, {}, None)
    http._content = b"{}"
    operation = made.meta.service_model.operation_model("ListTables")
    full = {
        "response": (http, {}),
        "endpoint": None,
        "operation": operation,
        "attempts": 1,
        "caught_exception": None,
        "request_dict": {"context": {}},
    }
    assert _response._kept(retry, full)
    for missing in ("attempts", "request_dict"):
        partial = {key: value for key, value in full.items() if key != missing}
        assert not _response._kept(retry, partial)
        with pytest.raises(KeyError):
            _response.needs_retry(retry, **partial)
