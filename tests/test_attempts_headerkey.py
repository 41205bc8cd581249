"""The header key ``_botocore_fast`` stores a prepared request's and a response's headers under
(``_request._Key``, hashed in C; docs/performance/engine-call.md, issue 24 part 9) against botocore's
``_HeaderKey``: for any names, the same hash, equality, order (none), text, truth and pickling, and
each found in a dict or set keyed by the other.
"""

from __future__ import annotations

import copy
import operator
import pickle
from typing import Any

import botocore.awsrequest
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from greenfetch._botocore_fast import _request

pytestmark = pytest.mark.usefixtures("fast_installed")

_HeaderKey = botocore.awsrequest._HeaderKey

names = st.one_of(
    st.sampled_from(
        ["Content-Length", "content-length", "CONTENT-LENGTH", "x-amzn-RequestId", "İ", "ß", "", "Σ"]
    ),
    st.text(max_size=6),
)


def outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # noqa: BLE001 - compared: both must fail alike
        return ("error", type(exc).__name__)


def behaviour(key: Any, others: list[Any]) -> Any:
    """What a key shows: hash, text, truth, and against each other value ``==``, ``!=``, ``<``, ``>=``
    (either side), a dict and a set lookup; and its pickled and copied forms."""
    compared = [
        (
            outcome(operator.eq, key, other),
            outcome(operator.eq, other, key),
            outcome(operator.ne, key, other),
            outcome(operator.ne, other, key),
            outcome(operator.lt, key, other),
            outcome(operator.ge, other, key),
            outcome(lambda a, b: b in {a: 1}, key, other),
            outcome(lambda a, b: a in {b}, key, other),
        )
        for other in others
    ]
    again = pickle.loads(pickle.dumps(key))
    return (
        hash(key),
        str(key),
        repr(key),
        bool(key),
        key._key,
        key._lower,
        compared,
        (again == key, str(again), again._key, again._lower),
        (copy.copy(key) == key, str(copy.deepcopy(key))),
    )


@settings(max_examples=300, deadline=None)
@given(names, names)
@example("Content-Length", "content-length")
@example("", "")
@example("İ", "i̇")
def test_a_key_behaves_as_botocores_header_key(name: str, other: str) -> None:
    others = [
        _HeaderKey(other),
        _request._Key(other),
        _HeaderKey(name),
        _request._Key(name),
        name,
        name.lower(),
        other.lower(),
        None,
        name.lower().encode("utf-8", "surrogatepass"),
    ]
    assert behaviour(_request._Key(name), others) == behaviour(_HeaderKey(name), others)
    assert isinstance(_request._Key(name), _HeaderKey)


def test_the_prepared_and_response_headers_are_stored_under_keys_hashed_in_c() -> None:
    """The stores' keys are the C-hashed kind (no Python ``__hash__`` run for a store or a lookup),
    and a lookup by any spelling finds them."""
    response = botocore.awsrequest.AWSResponse(
        "u", 200, {"x-amzn-RequestId": "r", "Content-Length": "2"}, None
    )
    request = botocore.awsrequest.AWSRequest(method="POST", url="https://x.example/", data=b"{}")
    request.headers["X-Amz-Target"] = "DynamoDB_20120810.ListTables"
    prepared = request.prepare()
    for headers in (response.headers, prepared.headers):
        assert headers._dict and all(type(key) is _request._Key for key in headers._dict)
    assert _request._Key.__hash__ is str.__hash__
    assert response.headers.get("X-AMZN-REQUESTID") == "r" and "content-length" in response.headers
    assert response.headers["CONTENT-LENGTH"] == "2" and prepared.headers["content-length"] == "2"
