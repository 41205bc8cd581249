"""A call's checksum context (``_botocore_fast._checksum.resolve_checksum_context``, docs/performance/
engine-call.md, issue 24 part 11) against botocore's own ``resolve_checksum_context``: for the request
every operation of every protocol builds (the sweep of tests/test_headers_parity.py), and for those
requests with checksum headers, a checksum context, checksum parameters and configurations drawn by
Hypothesis, the same request and context afterwards, the same error, and the same feature ids
registered (botocore 1.43; 1.36 registers none). An operation without a checksum trait is answered
without botocore's function; one with it (S3's PutObject, GetObject...) is botocore's.
"""

from __future__ import annotations

import collections
import copy
import re
import sys
from typing import Any

import botocore.client
import botocore.config
import botocore.httpchecksum
import botocore.model
import botocore.utils
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_headers_parity import client_for, sweep

from greenfetch._botocore_fast import _checksum

try:
    import botocore.context as botocore_context  # 1.43: feature ids
except ImportError:  # 1.36: no feature ids
    botocore_context = None

pytestmark = pytest.mark.usefixtures("fast_installed")

OURS = _checksum.resolve_checksum_context
BOTOCORES = _checksum._resolve_checksum_context


class Captured(Exception):
    """Raised in ``resolve_checksum_context``'s place: the call's arguments are kept, nothing goes on."""


def capture(client: Any, operation: str, params: dict[str, Any]) -> Any:
    """The (request dict, operation model, parameters) botocore hands ``resolve_checksum_context`` for
    this call, or None where the call fails before it (a parameter the model refuses)."""
    seen: list[Any] = []

    def keep(request: Any, operation_model: Any, api_params: Any) -> None:
        seen.append((request, operation_model, api_params))
        raise Captured

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(botocore.client, "resolve_checksum_context", keep)
        try:
            getattr(client, botocore.xform_name(operation))(**params)
        except Captured:
            return seen[0]
        except Exception:  # noqa: BLE001 - a call the sweep's sample cannot make: not in the corpus
            return None
    return None


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, Any]]:
    """(service, captured call) for every operation of the sweep that gets as far as the checksum."""
    session = botocore.session.Session()
    clients: dict[str, Any] = {}
    found = []
    for service, name, params in sweep(session):
        client = clients.get(service) or clients.setdefault(
            service, client_for(session, service, url="https://example.invalid")
        )
        got = capture(client, name, params)
        if got is not None:
            found.append((service, got))
    return found


def config_of(request: Any) -> Any:
    try:
        return request["context"]["client_config"]
    except Exception:  # noqa: BLE001 - a request without one
        return None


def copied(request: Any) -> Any:
    """A deep copy of a request dict sharing its client config (read, never written)."""
    config = config_of(request)
    return copy.deepcopy(request, {id(config): config})


def shown(value: Any) -> Any:
    """A value as plain data, each client config as a marker (compared, not shown by address)."""
    if isinstance(value, botocore.config.Config):
        return "<config>"
    if isinstance(value, (dict, collections.UserDict)):
        return (type(value).__name__, [(shown(k), shown(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [shown(v) for v in value])
    return value


def resolved(fn: Any, request: Any, operation_model: Any, params: Any) -> Any:
    """``fn`` on a copy of the request: (its answer or error, the request afterwards, the feature ids
    registered, the parameters afterwards)."""
    request = copied(request)
    params = copy.deepcopy(params)
    features: Any = None
    try:
        if botocore_context is None:
            outcome: Any = ("ok", fn(request, operation_model, params))
        else:
            with botocore_context.start_as_current_context():
                try:
                    outcome = ("ok", fn(request, operation_model, params))
                finally:
                    features = sorted(botocore_context.get_context().features)
    except Exception as exc:  # noqa: BLE001 - compared: both must fail alike
        outcome = ("error", type(exc).__name__, str(exc))
    return outcome, shown(request), features, shown(params)


def botocores_taken(monkeypatch: Any) -> list[Any]:
    """The operation models for which ours handed the call to botocore's function."""
    taken: list[Any] = []

    def counted(request: Any, operation_model: Any, params: Any) -> Any:
        taken.append(operation_model)
        return BOTOCORES(request, operation_model, params)

    monkeypatch.setattr(_checksum, "_resolve_checksum_context", counted)
    return taken


def test_every_operation_of_every_protocol_resolves_as_botocore_does(corpus, monkeypatch):
    """Every operation's request, as botocore builds it: the same outcome, request, context and feature
    ids; the operations without a checksum trait (and no checksum header) without botocore's function,
    those with one (S3's PutObject among them) through it."""
    taken = botocores_taken(monkeypatch)
    protocols: collections.Counter[str] = collections.Counter()
    for _service, (request, operation_model, params) in corpus:
        mine = resolved(OURS, request, operation_model, params)
        theirs = resolved(BOTOCORES, request, operation_model, params)
        assert mine == theirs, operation_model.name
        protocols[operation_model.service_model.protocol] += 1
    assert {"json", "query", "ec2", "rest-json", "rest-xml"} <= set(protocols), protocols
    assert len(corpus) > 700

    def key(op: Any) -> tuple[str, str]:
        return op.service_model.service_name, op.name

    with_trait = {key(op) for _, (_, op, _) in corpus if op.http_checksum or op.http_checksum_required}
    assert {("s3", name) for name in ("PutObject", "GetObject", "DeleteObjects", "UploadPart")} <= with_trait
    fell_back = {key(op) for op in taken}
    assert with_trait <= fell_back
    # the rest: S3 calls whose sample sets a header the pattern matches (CompleteMultipartUpload's
    # x-amz-checksum-crc32, HeadObject's x-amz-checksum-mode...)
    others = fell_back - with_trait
    assert others and all(
        any(botocore.utils.CHECKSUM_HEADER_PATTERN.match(name) for name in request["headers"])
        for _, (request, op, _) in corpus
        if key(op) in others
    ), others
    assert len(taken) < len(corpus) / 10


# -- Hypothesis: the corpus's requests with checksum headers, context, parameters, configurations --

CHECKSUM_NAMES = [
    "x-amz-checksum-crc32",
    "X-Amz-Checksum-SHA256",
    "X-AMZ-CHECKSUM-CRC64NVME",
    "x-amz-checksum-mode",
    "x-amz-checksum-algorithm",
    "x-amz-checksum-type",
    "x-amz-checksum-",
    "x-amz-checksum-crc32\n",  # the pattern's $ matches before a final newline
    "x-amz-checksum-crc-32",
    "x-amz-chec\u212asum-crc32",  # the Kelvin sign: k under re.IGNORECASE
    "x-amz-check\u017fum-sha1",  # the long s: s under re.IGNORECASE
    "x-amz-checksum-\u0130",
    " x-amz-checksum-crc32",
    "x-amz-meta-checksum",
    "Content-MD5",
]
header_names = st.one_of(st.sampled_from(CHECKSUM_NAMES), st.text(max_size=20))
contexts = st.sampled_from(
    [
        None,
        {},
        {"request_algorithm": {"algorithm": "crc32", "in": "header", "name": "x-amz-checksum-crc32"}},
        {"request_algorithm": {"algorithm": "sha256", "in": "trailer", "name": "x-amz-checksum-sha256"}},
        {"request_algorithm": "conditional-md5"},
        {"response_algorithms": ["crc32"]},
    ]
)
params_added = st.sampled_from(
    [{}, {"ChecksumAlgorithm": "CRC32"}, {"ChecksumAlgorithm": "sha256"}, {"ChecksumMode": "ENABLED"}]
)
calculations = st.sampled_from([None, "when_supported", "when_required", "drop"])


def varied(request: Any, names: list[str], checksum: Any, calculation: Any, presign: bool) -> Any:
    request = copied(request)
    for name in names:
        request["headers"][name] = "AAAAAA=="
    context = request["context"]
    if checksum is not None:
        context["checksum"] = copy.deepcopy(checksum)
    if calculation == "drop":
        del context["client_config"]
    elif calculation is not None:
        context["client_config"] = context["client_config"].merge(
            botocore.config.Config(request_checksum_calculation=calculation)
        )
    if presign:
        context["is_presign_request"] = True
    return request


@settings(max_examples=400, deadline=None)
@given(
    st.data(),
    st.lists(header_names, max_size=3),
    contexts,
    params_added,
    calculations,
    st.booleans(),
)
@example(None, ["x-amz-checksum-crc32"], None, {}, None, False)
@example(None, [], {"request_algorithm": {"algorithm": "crc32"}}, {}, None, False)
@example(None, [], None, {}, "drop", False)
def test_any_checksum_header_context_parameter_or_setting_resolves_as_botocore_does(
    corpus, data, names, checksum, added, calculation, presign
):
    """A corpus request (any protocol; S3 often, where the traits are) with checksum-like header names
    (the pattern's letters in other cases and their Unicode case equivalents, a final newline, near
    misses, any text), a checksum context already there, checksum parameters, either checksum setting
    or no client config, a presigned request: the same outcome, request, context and feature ids."""
    if data is None:  # an @example: ListTables, then S3's CompleteMultipartUpload
        picks = [c for c in corpus if c[1][1].name in ("ListTables", "CompleteMultipartUpload")]
    else:
        s3 = [c for c in corpus if c[0] == "s3"]
        picks = [data.draw(st.sampled_from(s3 if data.draw(st.booleans()) else corpus))]
    for _service, (request, operation_model, params) in picks:
        request = varied(request, names, checksum, calculation, presign)
        params = dict(params, **added)
        assert resolved(OURS, request, operation_model, params) == resolved(
            BOTOCORES, request, operation_model, params
        ), operation_model.name


def test_a_header_name_once_seen_unmatched_stays_decided_by_the_pattern(corpus, monkeypatch):
    """Names remembered as not matching the pattern stay so; the memory is bounded and refilled; a
    name that matches is never remembered (the next call with it is botocore's again)."""
    monkeypatch.setattr(_checksum, "_UNMATCHED_KEPT", 4)
    taken = botocores_taken(monkeypatch)
    request, operation_model, params = next(c for s, c in corpus if c[1].name == "ListTables")
    for _round in range(3):
        for index in range(6):
            for name in (f"x-custom-{index}", "x-amz-checksum-crc32"):
                varied_request = varied(request, [name], None, None, False)
                assert resolved(OURS, varied_request, operation_model, params) == resolved(
                    BOTOCORES, varied_request, operation_model, params
                )
            assert len(_checksum._UNMATCHED) <= 4
    assert len(taken) == 18  # every call with the matching name, none of the others
    assert not any(botocore.utils.CHECKSUM_HEADER_PATTERN.match(name) for name in _checksum._UNMATCHED)


@pytest.mark.parametrize(
    "trait",
    [
        {"httpChecksumRequired": True},
        {"httpChecksum": {"requestChecksumRequired": True}},
        {"httpChecksum": {"requestValidationModeMember": "ChecksumMode", "responseAlgorithms": ["CRC32"]}},
        {"httpChecksum": None},
    ],
    ids=["required", "trait-as-dict", "response-trait-as-dict", "none"],
)
def test_an_operation_with_a_trait_in_any_form_is_botocores(corpus, monkeypatch, trait):
    """``httpChecksumRequired`` alone (older models' form), a trait held in a plain ``dict`` (the
    loader's are ``OrderedDict``s) or a null one: botocore's function, which sets the default
    algorithm or the response's, or fails."""
    taken = botocores_taken(monkeypatch)
    request, operation_model, params = next(c for s, c in corpus if c[1].name == "ListTables")
    raw = dict(operation_model._operation_model, **trait)
    model = botocore.model.OperationModel(raw, operation_model.service_model, operation_model.name)
    params = dict(params, ChecksumMode="ENABLED")
    mine = resolved(OURS, request, model, params)
    assert mine == resolved(BOTOCORES, request, model, params)
    assert ("algorithm" in repr(mine[1]) or mine[0][0] == "error") and taken == [model]


# -- the premises: botocore's own types and functions ---------------------------------------------

REACHED = [
    (botocore.httpchecksum, name)
    for name in (
        "resolve_request_checksum_algorithm",
        "resolve_response_checksum_algorithms",
        "has_checksum_header",
        "_register_checksum_feature_ids",
        "get_checksum_algorithm_headers",
    )
    if hasattr(botocore.httpchecksum, name)
] + [(botocore.utils, name) for name in ("get_checksum_algorithm_headers",) if hasattr(botocore.utils, name)]


@pytest.mark.parametrize(("module", "name"), REACHED, ids=lambda v: getattr(v, "__name__", v))
def test_a_replaced_function_botocore_reaches_is_called(corpus, monkeypatch, module, name):
    """Any function botocore's resolve_checksum_context reaches, replaced: ours calls botocore's, which
    calls the replacement."""
    own = getattr(module, name)
    calls: list[Any] = []

    def replaced(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return own(*args, **kwargs)

    monkeypatch.setattr(module, name, replaced)
    request, operation_model, params = next(c for s, c in corpus if c[1].name == "ListTables")
    mine = resolved(OURS, request, operation_model, params)
    assert calls
    assert mine == resolved(BOTOCORES, request, operation_model, params)


def test_a_replaced_pattern_or_other_types_are_botocores(corpus, monkeypatch):
    """botocore's pattern replaced (every name a checksum header), an operation model, request, headers
    or context of another type: botocore's function, with its outcome."""
    taken = botocores_taken(monkeypatch)
    request, operation_model, params = next(c for s, c in corpus if c[1].name == "ListTables")
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(botocore.utils, "CHECKSUM_HEADER_PATTERN", re.compile(".*"))
        assert resolved(OURS, request, operation_model, params) == resolved(
            BOTOCORES, request, operation_model, params
        )
    assert len(taken) == 1

    class Model(botocore.model.OperationModel):
        pass

    model = Model(operation_model._operation_model, operation_model.service_model, operation_model.name)
    odd = [
        (collections.OrderedDict(request), operation_model),
        (dict(request, headers=collections.OrderedDict(request["headers"])), operation_model),
        (dict(request, context=collections.UserDict(request["context"])), operation_model),
        (dict(request, headers={b"X-Amz-Target": "x"}), operation_model),
        (dict(request, headers={1: "x"}), operation_model),
        ({"headers": request["headers"]}, operation_model),
        (request, model),
    ]
    for odd_request, odd_model in odd:
        assert resolved(OURS, odd_request, odd_model, params) == resolved(
            BOTOCORES, odd_request, odd_model, params
        )
    assert len(taken) == 1 + len(odd)


# -- a call: botocore's checksum functions not run for an operation without the trait -------------


def checksum_frames(call: Any) -> collections.Counter[str]:
    """The functions of botocore's ``httpchecksum`` (and ``utils``' header scans) that ``call`` runs."""
    codes = {
        getattr(module, name).__code__: name
        for module, name in [*REACHED, (botocore.httpchecksum, "resolve_checksum_context")]
    }
    ran: collections.Counter[str] = collections.Counter()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in codes:
            ran[codes[frame.f_code]] += 1

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return ran


class Sent(Exception):
    """Raised from ``before-send``: the request is built and signed, nothing goes out."""


def test_a_call_without_the_trait_runs_none_of_botocores_checksum_functions():
    """ListTables, SQS's ListQueues, EC2's DescribeInstances: none of botocore's checksum functions runs
    (on main's code each runs once or twice a call); S3's PutObject runs them."""
    session = botocore.session.Session()

    def call(service: str, operation: str, **params: Any) -> Any:
        client = client_for(session, service, url="https://example.invalid")

        def stop(**_: Any) -> None:
            raise Sent

        client.meta.events.register_first("before-send", stop)

        def made() -> None:
            with pytest.raises(Sent):
                getattr(client, operation)(**params)

        made()  # the first call fills the caches (the emitter's, the names seen)
        return made

    for service, operation in (
        ("dynamodb", "list_tables"),
        ("sqs", "list_queues"),
        ("ec2", "describe_instances"),
    ):
        assert checksum_frames(call(service, operation)) == {}, service
    put = checksum_frames(call("s3", "put_object", Bucket="bucket-1", Key="k", Body=b"x"))
    assert put["resolve_checksum_context"] == 1 and put["resolve_request_checksum_algorithm"] == 1
