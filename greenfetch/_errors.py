"""The error classifier: an AWS error code (or exception) to what it means and what to do.

Pure: it takes plain values and returns a frozen record, so the engine, the inventory's region
status store and the DRS pipeline all share one table instead of each writing their own ladder of
``except`` clauses.

    GreenfetchError
     ├── BatchFailed        fail-fast stopped a batch (carries the results so far)
     └── (ConfigError, RequestError are ValueErrors for bad input, see _config and _models)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["BatchFailed", "Classification", "GreenfetchError", "classify", "THROTTLE_CODES"]


class GreenfetchError(Exception):
    """Base of the errors greenfetch raises on purpose."""


class BatchFailed(GreenfetchError):
    """Fail-fast mode saw a failure: ``.failure`` is the first failed Result, ``.results`` what completed."""

    def __init__(self, failure: Any, results: list[Any]):
        self.failure = failure
        self.results = results
        super().__init__(f"Batch failed at request {failure.index}: {failure.error}")


# botocore's standard retry mode treats these as throttling (botocore/retries/standard.py).
THROTTLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
    "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
})
_TRANSIENT = frozenset({
    "RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure", "InternalServerError",
    "InternalServerException", "ServiceUnavailable", "ServiceUnavailableException", "ServiceException",
    # botocore's connection-level exceptions, by class name (the engine reports type(exc).__name__)
    "ConnectionError", "EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError",
    "ConnectTimeoutError", "ProxyConnectionError", "HTTPClientError",
})
_DENIED = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException",
    "InvalidClientTokenId", "AuthFailure", "ExpiredToken", "ExpiredTokenException", "AuthorizationError",
    "UnauthorizedException", "NoCredentials", "SignatureDoesNotMatch", "InvalidAccessKeyId",
})
_UNAVAILABLE = frozenset({
    "OptInRequired", "InvalidRequestException", "UninitializedAccountException",
    "SubscriptionRequiredException", "UnsupportedOperation", "ServiceNotAvailable",
})
_QUOTA = frozenset({"ServiceQuotaExceededException", "QuotaExceededException"})
_INVALID = frozenset({
    "UnknownService", "UnknownOperation", "ParamValidation", "InvalidRequest", "MissingField",
    "NoRegion", "ValidationException", "ValidationError", "InvalidParameterValue",
})


@dataclass(frozen=True)
class Classification:
    """What an error means. ``status`` is one of: throttled, transient, denied, unavailable,
    quota, invalid, not_found, error."""

    code: str
    status: str
    retryable: bool
    throttle: bool
    guidance: str | None


def classify(code: str | None, *, http_status: int | None = None, service: str = "", operation: str = "",
             identity: str = "") -> Classification:
    """Classify an AWS error code (or an exception class name when there is no code)."""
    code = code or (f"HTTP{http_status}" if http_status else "Unknown")
    call = f"{service}:{operation}" if service else "the operation"
    if code in THROTTLE_CODES or http_status == 429:
        return Classification(code, "throttled", True, True,
                              "AWS is throttling these calls: back off and retry, or lower the concurrency "
                              "(adaptive-batch does this by itself)")
    if code in _QUOTA:
        return Classification(code, "quota", False, False,
                              "a service quota is exhausted: request a quota increase in Service Quotas "
                              "for this account and region, or free some capacity")
    if code in _DENIED:
        who = f" for {identity}" if identity and identity != "default" else ""
        return Classification(code, "denied", False, False,
                              f"permission missing: allow {call}{who} in its IAM policy (and check SCPs and "
                              "the credentials' validity)")
    if code in _UNAVAILABLE:
        return Classification(code, "unavailable", False, False,
                              "the service is not enabled or not initialized in this account and region "
                              "(opt-in region, or the service was never set up there)")
    if code in _TRANSIENT or (http_status is not None and http_status >= 500):
        return Classification(code, "transient", True, False,
                              "a transient AWS or network failure: retrying later usually succeeds")
    if code in _INVALID:
        return Classification(code, "invalid", False, False, None)
    if code.startswith("NoSuch") or code.endswith(("NotFound", "NotFoundException")) or http_status == 404:
        return Classification(code, "not_found", False, False, None)
    return Classification(code, "error", False, False, None)
