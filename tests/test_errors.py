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
