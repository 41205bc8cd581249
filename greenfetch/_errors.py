"""The one classifier: what an exception says, what an error code means, what to do about it, and the
nearest valid name when a name is wrong.

``describe`` is the one boundary where botocore's exceptions become plain values (as httpx maps
httpcore's exceptions in one place); ``classify`` is pure: it takes plain values and returns a
frozen record, so the engine, the metrics, the adaptive controller, the inventory's region status
store and the DRS pipeline share one table instead of each writing their own ladder of ``except``
clauses. The exception tree itself is drawn in ``_exceptions``; an error answer that is not the
service's error format is ``_unreadable_errors``', storage that refused ``_storage_errors``'.
"""

from __future__ import annotations

import difflib
import errno
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from ._exceptions import BodyTooLarge, RequestError

__all__ = [
    "BODY_TOO_LARGE",
    "EXPIRED_CODES",
    "IDENTITY_MISMATCH",
    "THROTTLE_CODES",
    "TOO_MANY_OPEN_FILES",
    "UNBUILT_CODES",
    "UNNAMED_CODES",
    "Classification",
    "classify",
    "describe",
    "is_throttle",
    "suggest",
]


TOO_MANY_OPEN_FILES = (
    "TooManyOpenFiles"  # EMFILE/ENFILE anywhere in the chain: not transient, not a connect error
)
BODY_TOO_LARGE = BodyTooLarge.code  # a response body over Config.body_limit: the same answer on every retry

# botocore's standard retry mode treats these as throttling (botocore/retries/standard.py).
THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
_TRANSIENT = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ServiceException",
        # botocore's connection-level exceptions, by class name (the engine reports type(exc).__name__)
        "ConnectionError",
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "ProxyConnectionError",
        "HTTPClientError",
    }
)
_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "AuthFailure",
        "AuthorizationError",
        "UnauthorizedException",
        "NoCredentials",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
    }
)
# The call's session token had expired when AWS received it (EC2 says RequestExpired, for an expired
# token as for a clock behind). Role credentials greenfetch assumed are refreshed before they expire
# and once more when AWS says this, so it stands only after a refresh (or for temporary credentials
# greenfetch cannot renew): status ``expired``, never ``denied``.
EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
# AWS refused the call's timestamp: this machine's clock is off.
_SKEW = frozenset({"RequestTimeTooSkewed", "RequestInTheFuture"})
# The identity a call ran as was refused (not a permission on an operation): an account whose fetches
# fail with one of these is not reported ok. IdentityMismatch: greenfetch refused to sign one account's
# request with another account's credentials (``_clients.ClientCache.check_identity``).
IDENTITY_MISMATCH = "IdentityMismatch"
_CREDENTIALS = (
    EXPIRED_CODES
    | _SKEW
    | frozenset(
        {
            "UnrecognizedClientException",
            "InvalidClientTokenId",
            "AuthFailure",
            "NoCredentials",
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId",
            IDENTITY_MISMATCH,
        }
    )
)
# The service is not enabled, subscribed, opted into or set up for this account there (status
# ``unavailable``: nothing for a user to fix in a permission). By the code alone where the code says so.
_UNAVAILABLE = frozenset(
    {
        "OptInRequired",
        "InvalidRequestException",
        "UninitializedAccountException",
        "SubscriptionRequiredException",
        "UnsupportedOperation",
        "ServiceNotAvailable",
        "OptInRequiredException",  # Compute Optimizer: the account is not opted in
        "AWSOrganizationsNotInUseException",  # Organizations (and the services built on it): no organization
        "OrganizationsNotInUseException",
        "CloudTrailAccessNotEnabledException",  # CloudTrail, organization trails
        "ServiceAccessNotEnabledException",  # IAM: trusted access for IAM not enabled in Organizations
    }
)
# A code that means "not enabled" only in one service (elsewhere it may be a permission or bad input):
# Security Hub answers InvalidAccessException "Account ... is not subscribed to AWS Security Hub".
_UNAVAILABLE_IN = frozenset({("securityhub", "InvalidAccessException")})
# A code that is a plain denial except with one message in one service: Macie answers
# AccessDeniedException "Macie is not enabled" until it is enabled in the account and region. Only
# an exact phrase counts (Organizations in a member account answers the same AccessDeniedException as
# a missing permission does, so that stays ``denied``).
_UNAVAILABLE_SAYING = {("macie2", "AccessDeniedException"): "Macie is not enabled"}
_QUOTA = frozenset({"ServiceQuotaExceededException", "QuotaExceededException"})
_TIMEOUTS = frozenset(
    {"ReadTimeoutError", "ConnectTimeoutError", "RequestTimeout", "RequestTimeoutException"}
)

# A request whose service or operation is not a known name: whatever the user typed, so it never
# becomes a metric label. InvalidInput: an input line that was not even JSON (``UnreadableInput``).
UNNAMED_CODES = frozenset(
    {"UnknownService", "UnknownOperation", "InvalidRequest", "MissingField", "InvalidInput"}
)
# A request that failed before anything was sent: it used no attempt.
UNBUILT_CODES = UNNAMED_CODES | frozenset(
    {
        "NoRegion",
        "ParamValidation",
        "InvalidCredentials",
        "ProfileNotFound",
        "InvalidRole",
        IDENTITY_MISMATCH,
        # botocore's endpoint rules refused the call's parameters (e.g. a table name that is not a
        # string): raised while choosing where to send it, before anything is sent
        "EndpointResolutionError",
    }
)
_INVALID = UNBUILT_CODES | frozenset({"ValidationException", "ValidationError", "InvalidParameterValue"})
# The code of an error answer that carried no AWS error code, only its HTTP status: greenfetch's
# ``HTTP503`` (``describe``, ``unreadable_error``) or botocore's bare ``503``. Classified by the status.
_STATUS_ONLY = re.compile(r"(?:HTTP)?([1-5][0-9][0-9])")


@dataclass(frozen=True)
class Classification:
    """What an error means. ``status`` is one of: throttled, transient, denied, expired, unavailable,
    quota, invalid, not_found, error. ``timeout``: a transient failure that is a timeout (the
    adaptive controller reads it as overload and lowers the concurrency). ``credentials``: AWS (or
    greenfetch's guard) refused the identity the call ran as, not a permission: expired, invalid or
    mis-signed credentials, a clock off, another account's credentials."""

    code: str
    status: str
    retryable: bool
    throttle: bool
    guidance: str | None
    timeout: bool = False
    credentials: bool = False


def classify(
    code: str | None,
    *,
    http_status: int | None = None,
    service: str = "",
    operation: str = "",
    identity: str = "",
    message: str = "",
) -> Classification:
    """Classify an AWS error code (or an exception class name when there is no code). ``service``
    (and for a few codes ``message``, AWS's text) decide the codes whose meaning depends on them."""
    code = code or (f"HTTP{http_status}" if http_status else "Unknown")
    if http_status is None and (only := _STATUS_ONLY.fullmatch(code)):
        http_status = int(only[1])  # an answer with no AWS code: its status is all it says
    call = f"{service}:{operation}" if service else "the operation"
    if (service, code) in _UNAVAILABLE_IN or (
        (phrase := _UNAVAILABLE_SAYING.get((service, code))) is not None and phrase in message
    ):
        return _unavailable(code)
    if code in _CREDENTIALS:
        return _credentials(code, call, identity)
    if code == TOO_MANY_OPEN_FILES:
        return Classification(
            code,
            "error",
            False,
            False,
            "this process ran out of file descriptors (EMFILE): raise the limit (`ulimit -n`, "
            "LimitNOFILE= under systemd) or lower the concurrency",
        )
    if code == BODY_TOO_LARGE:
        return Classification(
            code,
            "error",
            False,
            False,
            'ask for the object in parts with the Range parameter (e.g. "Range": '
            '"bytes=0-1048575"), or raise the limit (GREENFETCH_BODY_LIMIT=BYTES, Config(body_limit=...))',
        )
    if code in THROTTLE_CODES or http_status == 429:
        return Classification(
            code,
            "throttled",
            True,
            True,
            "AWS is throttling these calls: back off and retry, or lower the concurrency "
            "(adaptive-batch does this by itself)",
        )
    if code in _QUOTA:
        return Classification(
            code,
            "quota",
            False,
            False,
            "a service quota is exhausted: request a quota increase in Service Quotas "
            "for this account and region, or free some capacity",
        )
    if code in _DENIED:
        return _denied(code, call, identity)
    if code in _UNAVAILABLE:
        return _unavailable(code)
    if code in _TRANSIENT or (http_status is not None and http_status >= 500):
        return Classification(
            code,
            "transient",
            True,
            False,
            "a transient AWS or network failure: retrying later usually succeeds",
            timeout=code in _TIMEOUTS,
        )
    if code in _INVALID:
        return Classification(code, "invalid", False, False, None)
    if code.startswith("NoSuch") or code.endswith(("NotFound", "NotFoundException")) or http_status == 404:
        return Classification(code, "not_found", False, False, None)
    return Classification(code, "error", False, False, None)


def _unavailable(code: str) -> Classification:
    return Classification(
        code,
        "unavailable",
        False,
        False,
        "the service is not enabled, subscribed or initialized in this account and region "
        "(an opt-in, a subscription or a first set-up it never had there)",
    )


def _denied(code: str, call: str, identity: str, *, credentials: bool = False) -> Classification:
    who = f" for {identity}" if identity and identity != "default" else ""
    return Classification(
        code,
        "denied",
        False,
        False,
        f"permission missing: allow {call}{who} in its IAM policy (and check SCPs and "
        "the credentials' validity)",
        credentials=credentials,
    )


def _credentials(code: str, call: str, identity: str) -> Classification:
    if code in EXPIRED_CODES:
        return Classification(
            code,
            "expired",
            False,
            False,
            "the credentials had expired when AWS received the call: greenfetch renews the roles "
            "it assumes before they expire and once more on this error, so either these "
            "temporary credentials came from outside (renew them: aws sso login, a new STS "
            "session) or this machine's clock is behind (sync it: timedatectl, chrony)",
            credentials=True,
        )
    if code in _SKEW:
        return Classification(
            code,
            "error",
            False,
            False,
            "AWS refused the call's timestamp: this machine's clock is off from AWS's by more "
            "than the 5 (EC2: 15) minutes allowed; sync the system clock (timedatectl "
            "set-ntp true, chrony or ntpd; in a container, the host's clock) and run again",
            credentials=True,
        )
    if code == IDENTITY_MISMATCH:
        return Classification(
            code,
            "error",
            False,
            False,
            "greenfetch refused to run one account's request with another account's "
            "credentials: give a role to assume in that account (--role-name, or roleName in "
            "the accounts table), or the credentials assumed for it",
            credentials=True,
        )
    return _denied(code, call, identity, credentials=True)


def is_throttle(error_code: str | None, http_status: int | None = None) -> bool:
    """Throttled means botocore's throttling codes, or HTTP 429 whatever the code says."""
    return error_code in THROTTLE_CODES or http_status == 429


def describe(exc: BaseException) -> tuple[str, str, int | None, str | None]:
    """(code, message, http status, request id) for anything a call can raise."""
    if isinstance(exc, (RequestError, BodyTooLarge)):
        return exc.code, str(exc), None, None
    if (exhausted := _fd_exhausted(exc)) is not None:  # before the wrapper's "could not connect"
        return TOO_MANY_OPEN_FILES, f"{exhausted.strerror or exhausted} (while: {exc})", None, None
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode")
        code = err.get("Code") or (f"HTTP{status}" if status else "ClientError")
        return code, err.get("Message") or str(exc), status, meta.get("RequestId")
    if isinstance(exc, botocore.exceptions.ParamValidationError):
        return "ParamValidation", str(exc).replace("\n", " "), None, None
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return (
            "NoCredentials",
            "no AWS credentials found (set AWS_PROFILE, AWS_ACCESS_KEY_ID, or a role)",
            None,
            None,
        )
    return type(exc).__name__, str(exc) or repr(exc), None, None


def _fd_exhausted(exc: BaseException) -> OSError | None:
    """The EMFILE/ENFILE OSError somewhere in ``exc``'s chain (``__cause__``, ``__context__``, and the
    ``error``/``reason`` botocore and urllib3 keep), or None."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo and len(seen) < 32:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, OSError) and item.errno in (errno.EMFILE, errno.ENFILE):
            return item
        kwargs = getattr(item, "kwargs", None)
        todo += [
            item.__cause__,
            item.__context__,
            getattr(item, "reason", None),
            kwargs.get("error") if isinstance(kwargs, dict) else None,
        ]
    return None


def suggest(name: str, valid: Iterable[str], *, n: int = 5, cutoff: float = 0.5) -> list[str]:
    """The valid names nearest to ``name``, best first: the one "did you mean" rule."""
    return difflib.get_close_matches(name, sorted(valid), n=n, cutoff=cutoff)
