"""The one error classifier: pure, table-driven."""

import pytest

from greenfetch import classify

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
        module = importlib.import_module(info.name)
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
