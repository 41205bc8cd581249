"""An attempt timed in botocore's ``Endpoint._get_response`` (``_botocore_fast._response.get_response``,
docs/performance/engine-call.md, issue 24 part 9) against the two event handlers that timed it before
(``before-send``, ``needs-retry``), and ``response-received`` emitted only where a handler may hear it,
against botocore's own ``_get_response``. No socket: each client's HTTP session answers from a script
(answers, throttles, 5xx, dropped connections), and botocore's backoff sleeps are skipped.
"""

from __future__ import annotations

import itertools
from typing import Any

import botocore.awsrequest
import botocore.config
import botocore.endpoint
import botocore.exceptions
import botocore.session
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfetch import _attempts
from greenfetch import _botocore_fast as fast
from greenfetch._attempts import AttemptRecorder, install_attempt_hooks, recording

pytestmark = pytest.mark.usefixtures("fast_installed")

URL = "https://dynamodb.us-east-1.amazonaws.com"
_THROTTLE = b'{"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "slow"}'
_MISSING = b'{"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", "message": "no"}'
ANSWERS = {
    "ok": (200, b'{"TableNames": ["a"]}'),
    "throttle": (400, _THROTTLE),
    "missing": (400, _MISSING),  # an error botocore does not retry
    "bare429": (429, b""),
    "error500": (500, b'{"__type": "InternalServerError"}'),
    "unavailable503": (503, b"<html>down</html>"),
    "dropped": botocore.exceptions.ConnectionClosedError,
    "unreachable": botocore.exceptions.EndpointConnectionError,
}


class Scripted:
    """An HTTP session that answers each request with the next of its script, or raises it."""

    def __init__(self, script: list[str]):
        self.script = iter(itertools.chain(script, itertools.repeat("ok")))

    def send(self, request: Any) -> Any:
        answer = ANSWERS[next(self.script)]
        if not isinstance(answer, tuple):
            raise answer(endpoint_url=request.url)
        status, body = answer
        headers = {"x-amzn-RequestId": "r", "Content-Length": str(len(body))}
        response = botocore.awsrequest.AWSResponse(request.url, status, headers, None)
        response._content = body
        return response

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def session() -> Any:
    return botocore.session.Session()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: Any) -> None:
    """botocore sleeps between attempts (``Endpoint._needs_retry``): not here."""

    class Time:
        @staticmethod
        def sleep(seconds: float) -> None:
            pass

    monkeypatch.setattr(botocore.endpoint, "time", Time)


def client(session: Any, script: list[str], hooks: bool = True) -> Any:
    made = session.create_client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=URL,
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 3}),
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret/example",
    )
    made._endpoint.http_session = Scripted(script)
    if hooks:
        install_attempt_hooks(made)
    return made


class Ticks:
    """A clock that moves one second each time it is read: an attempt read twice lasts one second."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def recorded(made: Any) -> tuple[Any, list[tuple[str, Any]]]:
    """One ListTables in a recording: (its answer or error, what the recorder's hooks saw in order)."""
    seen: list[tuple[str, Any]] = []
    rec = AttemptRecorder(clock=Ticks())
    rec.on_attempt = lambda attempt: seen.append(("attempt", attempt))
    rec.on_sample = lambda attempt: seen.append(("sample", attempt))
    with recording(rec):
        try:
            outcome: Any = made.list_tables()
            outcome["ResponseMetadata"].pop("HTTPHeaders", None)
        except Exception as exc:  # noqa: BLE001 - compared: both ways must fail alike
            outcome = (type(exc).__name__, str(exc))
    assert [attempt for kind, attempt in seen if kind == "attempt"] == rec.attempts
    return outcome, seen


def counted_emits(made: Any, prefix: str) -> list[str]:
    """The names of the events ``made``'s emitter is asked to emit from now on that start with ``prefix``
    (each emit that reaches the emitter's ``_emit``, whatever it calls)."""
    emitter = made.meta.events._emitter
    emitted: list[str] = []
    inner = emitter._emit

    def counted(event_name: str, kwargs: Any, stop_on_response: bool = False) -> Any:
        if event_name.startswith(prefix):
            emitted.append(event_name)
        return inner(event_name, kwargs, stop_on_response)

    emitter._emit = counted
    return emitted


scripts = st.lists(st.sampled_from(sorted(ANSWERS)), min_size=1, max_size=3)


@settings(max_examples=60, deadline=None)
@given(scripts)
def test_each_attempt_is_recorded_as_the_event_handlers_recorded_it(session: Any, script: list[str]) -> None:
    """Any script of answers, errors and dropped connections (retried up to three attempts): a client
    timed in ``_get_response`` records the same attempts (seconds, status, code), observed in the same
    order (``on_attempt`` then ``on_sample``, each attempt), and the call ends the same as a client
    timed by the ``before-send`` and ``needs-retry`` handlers, with botocore's ``_get_response`` or
    greenfetch's under them."""
    timed = client(session, script)
    assert _attempts._TIMED in vars(timed._endpoint)
    fast.uninstall()
    try:
        by_events = client(session, script)
        theirs = recorded(by_events)
    finally:
        fast.install()
    assert _attempts._TIMED not in vars(by_events._endpoint)
    ours = recorded(timed)
    by_events._endpoint.http_session = Scripted(script)
    assert ours == theirs == recorded(by_events)  # the handlers alone, under greenfetch's _get_response
    assert [kind for kind, _ in ours[1]] == ["attempt", "sample"] * len(ours[1][::2])


def test_a_timed_client_has_no_handler_for_either_event_and_makes_one_response_dict(
    session: Any, monkeypatch: Any
) -> None:
    """The client's attempts are timed without the event handlers (each an emitter's handler call),
    and an attempt makes its response dict once (for the parse), not again for a ``response-received``
    nothing listens to."""
    made = client(session, ["throttle", "ok"])
    handlers = made.meta.events._emitter._handlers
    for event in ("before-send.dynamodb.ListTables", "needs-retry.dynamodb.ListTables"):
        assert not [
            h for h in handlers.prefix_search(event) if getattr(h, "__module__", "") == _attempts.__name__
        ]
    made.list_tables()  # the emitter's first sight of each name
    made._endpoint.http_session = Scripted(["throttle", "ok"])
    convert = botocore.endpoint.convert_to_response_dict
    made_dicts: list[int] = []

    def counted(*args: Any) -> Any:
        made_dicts.append(1)
        return convert(*args)

    monkeypatch.setattr(botocore.endpoint, "convert_to_response_dict", counted)
    outcome, seen = recorded(made)
    assert [(a.http_status, a.error_code) for kind, a in seen if kind == "attempt"] == [
        (400, "ThrottlingException"),
        (200, None),
    ]
    assert len(made_dicts) == 2  # one an attempt


def test_a_call_of_another_client_inside_a_recorded_call_is_not_its_attempt(session: Any) -> None:
    """A client nobody marked (the AssumeRole of a credential refresh, made on the same greenlet
    inside a recorded call) adds nothing to the recording; a marked one does."""
    other = client(session, ["ok"], hooks=False)
    rec = AttemptRecorder()
    with recording(rec):
        other.list_tables()
    assert rec.attempts == []
    marked = client(session, ["dropped", "throttle", "ok"])
    with recording(rec):
        marked.list_tables()
    assert [(a.http_status, a.error_code) for a in rec.attempts] == [
        (None, "ConnectionClosedError"),  # no answer: the exception's class name
        (400, "ThrottlingException"),
        (200, None),
    ]


def _heard(made: Any) -> list[tuple[str, Any]]:
    """A listener's view of each ``response-received`` it is called with: the arguments, comparable."""
    heard: list[tuple[str, Any]] = []

    def listener(event_name: str, **kwargs: Any) -> None:
        response = kwargs["response_dict"]
        if response is not None:
            response = (dict(response["headers"].items()), response["status_code"], response["body"])
        heard.append(
            (
                event_name,
                (
                    response,
                    kwargs["parsed_response"],
                    sorted(kwargs["context"]),
                    type(kwargs["exception"]).__name__,
                    sorted(kwargs),
                ),
            )
        )

    made._greenfetch_listener = listener
    return heard


@settings(max_examples=40, deadline=None)
@given(
    script=scripts,
    event=st.sampled_from(
        [
            "response-received",
            "response-received.dynamodb",
            "response-received.dynamodb.ListTables",
            "response-received.dynamodb.DescribeTable",
            "response-received.sqs",
        ]
    ),
    calls_before=st.integers(0, 2),
    removed_after=st.sampled_from([None, 0, 1]),
)
def test_response_received_is_heard_as_from_botocores_get_response(
    session: Any, script: list[str], event: str, calls_before: int, removed_after: int | None
) -> None:
    """A listener registered (at any level of the name, for this operation or another) after any
    number of calls, and maybe removed again: it hears the same events with the same arguments, and
    the calls end the same, from greenfetch's ``_get_response`` as from botocore's."""

    def run(installed: bool) -> Any:
        fast.install() if installed else fast.uninstall()
        try:
            made = client(session, script, hooks=False)
            heard = _heard(made)
            calls = []
            for _ in range(calls_before):
                calls.append(recorded(made)[0])
            made.meta.events.register(event, made._greenfetch_listener, unique_id="listener")
            for number in range(2):
                made._endpoint.http_session = Scripted(script)
                calls.append(recorded(made)[0])
                if removed_after == number:
                    made.meta.events.unregister(event, unique_id="listener")
            return calls, heard
        finally:
            fast.install()

    assert run(True) == run(False)


def test_unheard_answers_only_where_the_emitter_would_call_nobody(session: Any) -> None:
    """Not known before the emitter saw the name; known after; not known again once any handler is
    registered (the emitter's cache emptied), nor for an emitter or aliaser with its own ``emit``."""
    from greenfetch._botocore_fast._events import unheard

    made = client(session, [], hooks=False)
    events = made.meta.events
    name = "response-received.dynamodb.ListTables"
    assert not unheard(events, name)
    assert events.emit(name) == []
    assert unheard(events, name)
    events.register("response-received.sqs", lambda **_: None)
    assert not unheard(events, name)
    events.emit(name)
    assert unheard(events, name)

    class OwnEmit(type(events)):  # type: ignore[misc]
        def emit(self, event_name: str, **kwargs: Any) -> Any:
            return super().emit(event_name, **kwargs)

    events.__class__ = OwnEmit
    try:
        assert not unheard(events, name)
    finally:
        events.__class__ = OwnEmit.__mro__[1]
