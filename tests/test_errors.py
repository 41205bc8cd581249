"""The one error classifier: pure, table-driven."""

import errno

import botocore.exceptions
import pytest
from _by_python import GEVENTHTTPCLIENT

from greenfetch import classify
from greenfetch._errors import TOO_MANY_OPEN_FILES, describe, is_throttle, suggest
from greenfetch._exceptions import RequestError

# The eight error classes of the DRS seed, plus the engine's own codes.
CASES = [
    ("AccessDeniedException", None, "denied", False),
    ("UnrecognizedClientException", None, "denied", False),
    ("InvalidRequestException", None, "unavailable", False),
    ("ThrottlingException", None, "throttled", True),
    ("ServiceQuotaExceededException", None, "quota", False),
    ("InternalServerException", None, "transient", True),
    ("NoSuchBucket", 404, "not_found", False),
    ("SomethingElse", 400, "error", False),
    ("EndpointConnectionError", None, "transient", True),
    ("ConnectionClosedError", None, "transient", True),
    ("ReadTimeoutError", None, "transient", True),
    (None, 429, "throttled", True),
    (None, 503, "transient", True),
    ("UnknownService", None, "invalid", False),
]


@pytest.mark.parametrize(("code", "status", "expected", "retryable"), CASES)
def test_classes(code, status, expected, retryable):
    info = classify(code, http_status=status, service="drs", operation="DescribeSourceServers")
    assert (info.status, info.retryable) == (expected, retryable)


def test_guidance_for_the_well_known_classes():
    assert "concurrency" in classify("ThrottlingException").guidance
    assert "quota increase" in classify("ServiceQuotaExceededException").guidance
    denied = classify("AccessDenied", service="s3", operation="ListBuckets", identity="arn:aws:iam::1:role/r")
    assert "s3:ListBuckets" in denied.guidance and "arn:aws:iam::1:role/r" in denied.guidance
    assert classify("SomethingElse").guidance is None


def test_a_bare_429_gets_a_code_that_says_so():
    assert classify(None, http_status=429).code == "HTTP429"


def test_the_drs_sync_error_table_is_the_classifier_s():
    """docs/drs-sync.md's table of DRS answers says what `classify` decides; it said a dropped
    connection was `error` and had no `invalid` row. Every code in the first column must get the
    row's status and retryable; 'any other AWS error' stands for a code classify does not know."""
    import re
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "drs-sync.md").read_text(encoding="utf-8")
    section = text.split("## Errors, per region", 1)[1].split("\n## ", 1)[0]
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| DRS answer")
    ]
    checked = set()
    for answer, status, retryable, *_ in rows:
        codes = re.findall(r"`(\w+)`", answer) or (
            ["SomeOtherDrsError"] if answer == "any other AWS error" else []
        )
        assert codes, f"a row of the table names no code: {answer!r}"
        for code in codes:
            got = classify(code, service="drs", operation="DescribeSourceServers")
            assert (got.status, got.retryable) == (status, retryable.startswith("yes")), (code, got)
            checked.add(code)
    assert {"ConnectionClosedError", "ValidationException", "ThrottlingException"} <= checked


def test_every_exception_greenfetch_defines_is_in_the_one_tree():
    """One exception tree: catching GreenfetchError catches every error greenfetch raises on purpose.
    Left out on purpose: private signals (``_Name``) that never leave their module, and the CLI's click
    exceptions, which must be click's for click to print them."""
    import importlib
    import inspect
    import pkgutil

    import click

    import greenfetch
    from greenfetch import GreenfetchError

    outside = []
    for info in pkgutil.walk_packages(greenfetch.__path__, "greenfetch."):
        if info.name.startswith(("greenfetch.testing", "greenfetch.cli.__main__", "greenfetch.drs.__main__")):
            continue  # the test kit's own servers and the entry scripts
        try:
            module = importlib.import_module(info.name)
        except ModuleNotFoundError as exc:  # the gevent session's modules, where it is not installed
            if exc.name == "geventhttpclient" and not GEVENTHTTPCLIENT:
                continue
            raise
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, Exception)
                and obj.__module__ == info.name
                and not name.startswith("_")
                and not issubclass(obj, (GreenfetchError, click.ClickException))
            ):
                outside.append(f"{info.name}.{name}")
    assert not outside, f"exceptions outside GreenfetchError's tree: {outside}"


# -- the mutation audit (docs/testing.md): each test below failed on a one-line change to _errors.py
# that the tests above let through


@pytest.mark.parametrize(
    ("code", "status", "credentials"),
    [
        ("UnrecognizedClientException", "denied", True),  # the identity refused, not a permission
        ("InvalidClientTokenId", "denied", True),
        ("ExpiredToken", "expired", True),
        ("RequestExpired", "expired", True),
        ("RequestTimeTooSkewed", "error", True),
        ("IdentityMismatch", "error", True),
        ("AccessDenied", "denied", False),  # a permission: the identity itself is fine
        ("ThrottlingException", "throttled", False),
    ],
)
def test_which_refusals_are_of_the_identity(code, status, credentials):
    """``credentials`` is what keeps an account whose every fetch failed so from being reported ok."""
    info = classify(code, service="ec2", operation="DescribeVpcs")
    assert (info.status, info.credentials) == (status, credentials)


@pytest.mark.parametrize(
    "code", ["NoSuchBucket", "NoSuchEntity", "ResourceNotFoundException", "DBClusterNotFound"]
)
def test_not_found_by_the_code_alone(code):
    assert classify(code).status == "not_found"  # no status given: many SDK errors carry 400


def test_the_guidance_names_an_identity_but_not_the_default_one():
    assert (
        "for default"
        not in classify("AccessDenied", service="s3", operation="ListBuckets", identity="default").guidance
    )
    assert "for arn:aws:iam::1:role/r" in classify("AccessDenied", identity="arn:aws:iam::1:role/r").guidance


def test_is_throttle_is_a_throttling_code_or_a_429():
    assert is_throttle(None, 429) and is_throttle("SlowDown") and is_throttle("Throttling", 400)
    assert not is_throttle("AccessDenied", 403) and not is_throttle(None, 503)


def _client_error(error, meta):
    return botocore.exceptions.ClientError({"Error": error, "ResponseMetadata": meta}, "ListTables")


def test_describe_turns_botocore_errors_into_plain_values():
    full = _client_error(
        {"Code": "ThrottlingException", "Message": "Rate exceeded"},
        {"HTTPStatusCode": 400, "RequestId": "r1"},
    )
    assert describe(full) == ("ThrottlingException", "Rate exceeded", 400, "r1")
    assert describe(_client_error({}, {"HTTPStatusCode": 503}))[:1] + describe(_client_error({}, {}))[:1] == (
        "HTTP503",
        "ClientError",
    )
    invalid = botocore.exceptions.ParamValidationError(report="Invalid type for parameter Limit,\nvalue: ten")
    code, message, _, _ = describe(invalid)
    assert code == "ParamValidation" and "\n" not in message and "Limit" in message
    assert describe(RequestError("unknown operation 'X'", code="UnknownOperation"))[0] == "UnknownOperation"


def _emfile(number=errno.EMFILE):
    return OSError(number, "Too many open files")


def _caused(inner):
    try:
        try:
            raise inner
        except OSError as exc:
            raise RuntimeError("connect failed") from exc
    except RuntimeError as outer:
        return outer


def _context(inner):
    try:
        try:
            raise inner
        except OSError:
            raise RuntimeError("while handling it")  # noqa: B904 - the implicit chain is the point
    except RuntimeError as outer:
        return outer


class _WithReason(Exception):  # urllib3's MaxRetryError keeps the cause in ``reason``
    def __init__(self, reason):
        super().__init__("max retries")
        self.reason = reason


@pytest.mark.parametrize(
    "exc",
    [
        _emfile(),
        _emfile(errno.ENFILE),  # the system-wide table, not this process's
        _caused(_emfile()),
        _context(_emfile()),
        _WithReason(_emfile()),
        botocore.exceptions.EndpointConnectionError(endpoint_url="https://x", error=_emfile()),
    ],
)
def test_fd_exhaustion_is_found_anywhere_in_the_chain(exc):
    assert describe(exc)[0] == TOO_MANY_OPEN_FILES


def test_suggest_gives_the_nearest_valid_names_best_first():
    """Best first, up to 5, down to a similarity of 0.5 (ListStreams and ListBackups are 0.57 from the
    typo: a user still sees them)."""
    names = [
        "ListTables",
        "ListTags",
        "ListBackups",
        "ListExports",
        "ListImports",
        "ListStreams",
        "DeleteTable",
    ]
    assert suggest("ListTabels", names) == ["ListTables", "ListTags", "ListStreams", "ListBackups"]
    assert suggest("ListTabels", names, n=1) == ["ListTables"] and suggest("zzz", names) == []
