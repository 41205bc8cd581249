"""``provide-client-params`` emitted only where a handler may hear it (``_botocore_fast._events.
emit_api_params``, docs/performance/engine-call.md, issue 24 part 11) against botocore's own
``BaseClient._emit_api_params``: the same calls, the same ends, and a user's listener registered at any
level of the name, at any time, answering nothing or other parameters, hearing the same events with
the same arguments. No socket: the client's HTTP session answers from a script (``test_attempts_endpoint``).
"""

from __future__ import annotations

from typing import Any

import botocore.client
import botocore.session
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_attempts_endpoint import client, counted_emits, no_backoff  # noqa: F401 - no_backoff: a fixture

from greenfetch._botocore_fast import _events

pytestmark = pytest.mark.usefixtures("fast_installed")

LEVELS = [
    None,
    "provide-client-params",
    "provide-client-params.dynamodb",
    "provide-client-params.dynamodb.ListTables",
    "provide-client-params.dynamodb.DescribeTable",
    "provide-client-params.sqs",
]
ANSWERS = [None, {}, {"Limit": 5}, {"ExclusiveStartTableName": "b"}]


@pytest.fixture(scope="module")
def session() -> Any:
    return botocore.session.Session()


def run(session: Any, level: str | None, answer: Any, register_at: int, remove_at: int, calls: int) -> Any:
    """``calls`` ListTables (with ``Limit=2``), a listener for ``level`` registered before call
    ``register_at`` and removed before ``remove_at``: (each call's end and the parameters it sent, the
    ``provide-client-params`` names emitted, what the listener heard)."""
    made = client(session, [], hooks=False)
    emitted = counted_emits(made, "provide-client-params")
    heard: list[Any] = []
    sent: list[Any] = []

    def listener(**kwargs: Any) -> Any:
        heard.append(
            (kwargs["event_name"], dict(kwargs["params"]), kwargs["model"].name, sorted(kwargs["context"]))
        )
        return None if answer is None else dict(answer)

    def keep(params: Any, **_: Any) -> None:
        sent.append(dict(params))

    made.meta.events.register("before-parameter-build", keep)
    ends = []
    for call in range(calls):
        if call == register_at and level is not None:
            made.meta.events.register(level, listener)
        if call == remove_at and level is not None:
            made.meta.events.unregister(level, listener)
        try:
            outcome: Any = made.list_tables(Limit=2)
            outcome["ResponseMetadata"].pop("HTTPHeaders", None)
        except Exception as exc:  # noqa: BLE001 - compared: both ways must fail alike
            outcome = (type(exc).__name__, str(exc))
        ends.append(outcome)
    return ends, sent, emitted, heard


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(LEVELS),
    st.sampled_from(ANSWERS),
    st.integers(0, 2),
    st.integers(0, 4),
    st.integers(1, 4),
)
def test_calls_end_and_listeners_hear_as_from_botocores_emit_api_params(
    session: Any, level: str | None, answer: Any, register_at: int, remove_at: int, calls: int
) -> None:
    """A listener for ``provide-client-params`` at any level of the name (or another operation's,
    another service's, or none), registered before any call and maybe removed later, answering nothing
    or other parameters: each call ends the same, sends the same parameters, and the listener hears the
    same events with the same arguments, as under botocore's own ``_emit_api_params``."""
    ours = run(session, level, answer, register_at, remove_at, calls)
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(botocore.client.BaseClient, "_emit_api_params", _events._emit_api_params)
        theirs = run(session, level, answer, register_at, remove_at, calls)
    assert ours[0] == theirs[0]
    assert ours[1] == theirs[1]
    assert ours[3] == theirs[3]


def test_without_a_listener_the_event_is_not_emitted_once_the_caches_know(session: Any) -> None:
    """No listener: the first call emits (it fills the emitter's caches, as botocore's emit does), the
    next ones do not; a listener registered later hears every later call and changes what is sent."""
    ends, sent, emitted, heard = run(session, None, None, 0, 0, 3)
    assert emitted == ["provide-client-params.dynamodb.ListTables"]
    assert sent == [{"Limit": 2}] * 3
    ends, sent, emitted, heard = run(session, "provide-client-params.dynamodb", {"Limit": 7}, 2, 9, 4)
    assert len(emitted) == 3 and len(heard) == 2
    assert sent == [{"Limit": 2}, {"Limit": 2}, {"Limit": 7}, {"Limit": 7}]


def test_an_emitter_of_its_own_takes_the_emit(session: Any, monkeypatch: Any) -> None:
    """An aliaser whose class brings its own ``emit``: ``unheard`` does not know it, the event is emitted."""
    made = client(session, [], hooks=False)
    made.list_tables()
    heard: list[str] = []

    class Own(type(made.meta.events)):  # type: ignore[misc]
        def emit(self, event_name: str, **kwargs: Any) -> Any:
            heard.append(event_name)
            return super().emit(event_name, **kwargs)

    made.meta.events.__class__ = Own
    made.list_tables()
    assert "provide-client-params.dynamodb.ListTables" in heard
