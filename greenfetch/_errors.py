"""Every rule about errors, in one home: what an exception says, what an error code means, what
to do about it, and the nearest valid name when a name is wrong.

``describe`` is the one boundary where botocore's exceptions become plain values (as httpx maps
httpcore's exceptions in one place); ``classify`` is pure: it takes plain values and returns a
frozen record, so the engine, the metrics, the adaptive controller, the inventory's region status
store and the DRS pipeline share one table instead of each writing their own ladder of ``except``
clauses. The exception tree itself is drawn in ``_exceptions``.
"""

from __future__ import annotations

import difflib
import errno
import http
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import botocore.exceptions

from ._exceptions import BodyTooLarge, RequestError, StorageError
from ._redact import redact

__all__ = [
    "BODY_TOO_LARGE",
    "DISK_ERRNOS",
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
    "storage_error",
    "suggest",
    "unreadable_error",
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


# The error format of each protocol botocore speaks: an AWS error answer is a JSON object, an XML
# document or a CBOR map. An error answer whose body is none of these came from something in front of
# the service or from a service that crashed (a proxy's or load balancer's page, a server's own HTML
# crash page): botocore recognizes only a 5xx body that starts with exactly ``<html>``, and otherwise
# its query, EC2 and CBOR parsers raise ResponseParserError before its retry handler sees the answer
# (never retried), its JSON parsers take the whole page for the message, and its REST-XML parser the
# status's reason phrase. ``unreadable_error`` is the rule the client applies to every error answer
# before botocore parses it (``_clients``), so each is one error that botocore's standard retry mode
# retries when its status is 500, 502, 503 or 504, like any other 5xx, and never when it is a 4xx.
_FORMATS = {
    "json": "JSON",
    "rest-json": "JSON",
    "query": "XML",
    "ec2": "XML",
    "rest-xml": "XML",
    "smithy-rpc-v2-cbor": "CBOR",
}
UNREADABLE_EXCERPT = 80  # characters of the body an unreadable error's message quotes, at most


def unreadable_error(
    protocol: str, status: int, body: bytes, content_type: str = ""
) -> tuple[str, str] | None:
    """(code, message) for an error answer (``status`` >= 400) whose ``body`` is not ``protocol``'s
    error format, else None (an empty body, a protocol this does not know, a body in the format).
    The code is ``HTTP<status>``; the message names the status, says the body was not the service's
    error format and quotes at most ``UNREADABLE_EXCERPT`` characters of it, secrets masked."""
    expected = _FORMATS.get(protocol)
    if status < 400 or expected is None or not body.strip() or _in_format(expected, body):
        return None
    try:
        reason = f" {http.HTTPStatus(status).phrase}"
    except ValueError:
        reason = ""
    got = " ".join(content_type.split())[:60] or "no content type"
    return (
        f"HTTP{status}",
        f"HTTP {status}{reason}, and its body is not the service's error format ({expected} expected; "
        f"got {got}, {len(body)} bytes): {_excerpt(body)}",
    )


def _in_format(expected: str, body: bytes) -> bool:
    if expected == "JSON":
        try:
            return isinstance(json.loads(body), dict)
        except ValueError:  # UnicodeDecodeError included
            return False
    if expected == "XML":
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            return False
        return root.tag.rpartition("}")[2].lower() != "html"  # an XHTML page parses, and is no AWS error
    return body[0] >> 5 == 5  # CBOR: major type 5, a map


def _excerpt(body: bytes) -> str:
    """The body's start on one line, secrets masked before it is cut (a cut could hide a key's name)."""
    text = redact(" ".join(body[: UNREADABLE_EXCERPT * 8].decode("utf-8", "replace").split()))
    return repr(text if len(text) <= UNREADABLE_EXCERPT else text[: UNREADABLE_EXCERPT - 3] + "...")


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


# What to do when storage refuses, by errno (an OSError) or by SQLite's primary result code (a sqlite3
# error carries it as ``sqlite_errorcode``): the one table behind every "cannot write" line.
_FULL = "free some space, or write elsewhere"
_STORAGE_HINTS = {
    errno.ENOSPC: _FULL,
    errno.EDQUOT: _FULL,
    errno.EROFS: "the file system is mounted read-only: write elsewhere",
    errno.EACCES: "write elsewhere, or fix its permissions",
    errno.EPERM: "write elsewhere, or fix its permissions",
    errno.EFBIG: "the file size limit (ulimit -f) is reached: raise it, or write elsewhere",
    errno.EIO: "the device failed (see dmesg): write elsewhere",
}
# A write refused by the storage under it, whatever the file: no space, no quota, a read-only mount, a
# file size limit, a failing device (a missing permission is usually an open, named by its caller).
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO})
_SQLITE_ERRNO = {
    13: errno.ENOSPC,
    8: errno.EROFS,
    3: errno.EACCES,
    23: errno.EACCES,
    10: errno.EIO,
}  # FULL, READONLY, PERM, AUTH, IOERR
_SQLITE_DAMAGED = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB


def storage_error(exc: BaseException, what: str, kept: str = "") -> StorageError:
    """The one line for storage that refused: ``what`` (``cannot write --out 'x'``), why (the OS's or
    SQLite's own words), ``kept`` (what the run kept, if anything) and what would do. ``exc`` is an
    OSError or a sqlite3 error; a damaged database is exit 2 (bad input), everything else exit 1."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        reason, number = str(exc), _SQLITE_ERRNO.get(code & 0xFF)
        damaged = code & 0xFF in _SQLITE_DAMAGED
    else:
        reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) or type(
            exc
        ).__name__
        number, damaged = getattr(exc, "errno", None), False
    hint = (
        "the database is damaged: recover what it holds with sqlite3's .recover, or use another file"
        if damaged
        else _STORAGE_HINTS.get(number or 0, "")
    )
    return StorageError(
        "; ".join(part for part in (f"{what}: {reason}", kept, hint) if part), exit_code=2 if damaged else 1
    )
