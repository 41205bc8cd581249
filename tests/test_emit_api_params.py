"""A call's parameter events emitted only where a handler may hear them or act (``_botocore_fast._events.
emit_api_params``, docs/performance/engine-call.md, issue 24 part 11) against botocore's own
``BaseClient._emit_api_params``: ``provide-client-params`` unheard, and ``before-parameter-build`` where
botocore's two handlers would change nothing. The same calls, the same parameters, the same ends, and a
user's listener registered at any level of either name, at any time, hearing the same events with the
same arguments. No socket: the client's HTTP session answers from a script (``test_attempts_endpoint``).
"""

from __future__ import annotations

import collections
import logging
import uuid
from typing import Any

import botocore.client
import botocore.config
import botocore.handlers
import botocore.model
import botocore.session
import pytest
from hypothesis import example, given, settings
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


@pytest.mark.parametrize("own", ["emit", "_alias_event_name", "_emit"])
def test_an_aliaser_or_emitter_of_its_own_takes_both_emits(session: Any, own: str) -> None:
    """An aliaser whose class brings its own ``emit`` or aliasing, or an emitter whose class brings its
    own ``_emit``: the caches are not known to say what an emit does, both events are emitted."""
    made = client(session, [], hooks=False)
    made.list_tables()
    heard: list[str] = []
    target = made.meta.events if own != "_emit" else made.meta.events._emitter
    base = type(target)
    method = getattr(base, own)

    def spy(self: Any, event_name: str, *args: Any, **kwargs: Any) -> Any:
        heard.append(event_name)
        return method(self, event_name, *args, **kwargs)

    target.__class__ = type("Own", (base,), {own: spy})
    made.list_tables()
    names = {name.partition(".")[0] for name in heard}
    assert {"provide-client-params", "before-parameter-build"} <= names


# -- before-parameter-build: botocore's two handlers, each known to change nothing ------------------

VALIDATED = {"requestValidationModeMember": "ExclusiveStartTableName"}
BUILD_LEVELS = [
    None,
    "before-parameter-build",
    "before-parameter-build.dynamodb",
    "before-parameter-build.dynamodb.ListTables",
    "before-parameter-build.sqs",
]


class Unset:
    """A client config without ``response_checksum_validation``: botocore's handler fails reading it."""


def operation(made: Any, name: str, trait: Any) -> Any:
    model = made.meta.service_model.operation_model(name)
    if trait is None:
        return model
    raw = dict(model._operation_model, httpChecksum=trait)
    return botocore.model.OperationModel(raw, model.service_model, model.name)


def built(made: Any, model: Any, params: dict[str, Any], context: Any, level: str | None) -> Any:
    """``_emit_api_params`` twice (the emitter's caches filled by the first), a listener for ``level``
    registered before the second: (each answer, the parameters afterwards, what the listener heard)."""
    heard: list[Any] = []

    def listener(**kwargs: Any) -> None:
        heard.append((kwargs["event_name"], dict(kwargs["params"])))

    ends = []
    for call in range(2):
        if call == 1 and level is not None:
            made.meta.events.register(level, listener)
        given = dict(params)
        tokens = iter(range(100))
        with pytest.MonkeyPatch.context() as patched:
            patched.setattr(uuid, "uuid4", lambda tokens=tokens: f"token-{next(tokens)}")
            try:
                answer: Any = ("ok", made._emit_api_params(given, model, context))
            except Exception as exc:  # noqa: BLE001 - compared: both ways must fail alike
                answer = ("error", type(exc).__name__, str(exc))
        ends.append((answer, given))
    if level is not None:
        made.meta.events.unregister(level, listener)
    return ends, heard


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(["ListTables", "TransactWriteItems", "CreateTable", "DescribeTable"]),
    st.sampled_from([None, VALIDATED, {}]),
    st.sampled_from([{}, {"ClientRequestToken": "mine"}, {"ExclusiveStartTableName": "t1"}]),
    st.sampled_from(["when_supported", "when_required", None, "unset", "context"]),
    st.sampled_from(BUILD_LEVELS),
)
@example("ListTables", None, {}, "unset", None)
@example("ListTables", None, {}, "context", None)
@example("ListTables", VALIDATED, {}, "when_supported", None)
@example("TransactWriteItems", None, {}, "when_supported", None)
def test_parameters_are_built_as_by_botocores_emit_api_params(
    session: Any, name: str, trait: Any, params: dict[str, Any], validation: Any, level: str | None
) -> None:
    """Operations with and without idempotency tokens, with and without a validation mode member, given
    or not, either validation setting, no client config, a config without the setting or a context that
    is not a dict, and a ``before-parameter-build`` listener at any level (or another service's, or
    none): the same answer or error, the same parameters, and the listener hears the same, as under
    botocore's own ``_emit_api_params``."""
    made = client(session, [], hooks=False)
    model = operation(made, name, trait)
    config = {
        None: None,
        "unset": Unset(),
        "context": None,
    }.get(validation, botocore.config.Config(response_checksum_validation=validation))
    context: Any = {"client_region": "us-east-1", "client_config": config}
    if validation == "context":
        context = collections.UserDict(context)
    ours = built(made, model, params, context, level)
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(botocore.client.BaseClient, "_emit_api_params", _events._emit_api_params)
        theirs = built(client(session, [], hooks=False), model, params, context, level)
    assert ours == theirs


def test_without_a_listener_the_build_is_not_emitted_where_nothing_would_change(session: Any) -> None:
    """ListTables (no token, no trait): only the first call emits ``before-parameter-build`` (on main's
    code every call does); TransactWriteItems (a token to fill) emits each call and gets its token."""
    made = client(session, [], hooks=False)
    emitted = counted_emits(made, "before-parameter-build")
    for _ in range(3):
        made.list_tables()
    assert emitted == ["before-parameter-build.dynamodb.ListTables"]
    model = made.meta.service_model.operation_model("TransactWriteItems")
    context = {"client_config": made.meta.config}
    for _ in range(2):
        params = made._emit_api_params({"TransactItems": []}, model, context)
        assert set(params) == {"TransactItems", "ClientRequestToken"}
    assert emitted[1:] == ["before-parameter-build.dynamodb.TransactWriteItems"] * 2


def test_debug_logging_on_takes_the_build_emit(session: Any) -> None:
    """With botocore's debug logging on, the emitter logs a line before each handler: the emit is made."""
    made = client(session, [], hooks=False)
    emitted = counted_emits(made, "before-parameter-build")
    made.list_tables()
    logger = logging.getLogger("botocore.hooks")
    was = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        made.list_tables()
    finally:
        logger.setLevel(was)
    assert len(emitted) == 2


def test_two_handlers_that_are_not_botocores_two_take_the_emit(session: Any) -> None:
    """botocore's idempotency handler replaced on the client by a listener (two handlers still): the
    emit is made and the listener hears every call."""
    made = client(session, [], hooks=False)
    heard: list[str] = []
    made.meta.events.unregister("before-parameter-build", botocore.handlers.generate_idempotent_uuid)
    made.meta.events.register("before-parameter-build", lambda **kwargs: heard.append(kwargs["event_name"]))
    for _ in range(3):
        made.list_tables()
    assert heard == ["before-parameter-build.dynamodb.ListTables"] * 3
