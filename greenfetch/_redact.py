"""Secrets out of log records: botocore logs them at DEBUG, greenfetch masks them.

At DEBUG botocore writes the canonical request it signs (``x-amz-security-token:...``), the headers
it sends (``Authorization``, ``X-Amz-Security-Token``) and every response body, including STS's and
SSO's credentials (``<SecretAccessKey>``, ``"sessionToken"``). Anyone who turns on DEBUG to chase a
bug would paste those into a ticket. ``install()`` (called when greenfetch is imported) masks them
in every record from the libraries greenfetch drives, whoever configured the handlers.

Why a record factory and not only ``Logger.addFilter``: a logger's filters see only the records
logged on that very logger, not on its children (``botocore.auth``, ``botocore.parsers``, ...), and
those are created lazily. The factory runs only for records that will be emitted (after the level
check), so it costs nothing when DEBUG is off. ``RedactingFilter`` is the same rule as a filter, for
a handler of one's own.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["NAMESPACES", "REDACTED", "RedactingFilter", "install", "redact", "redact_url"]

REDACTED = "<redacted>"
NAMESPACES = ("botocore", "boto3", "s3transfer", "urllib3", "geventhttpclient", "greenfetch", "nu_plugin")

_KEYS = (
    r"SecretAccessKey|SessionToken|secretAccessKey|sessionToken|accessToken|aws_secret_access_key"
    r"|aws_session_token|secret_key|refreshToken|clientSecret|password"
)
_RULES = [
    # XML bodies: <SecretAccessKey>...</SecretAccessKey>
    (re.compile(rf"(<({_KEYS})>)[^<]*(</\2>)", re.IGNORECASE), rf"\1{REDACTED}\3"),
    # header lines, dict reprs and query strings: x-amz-security-token:..., 'Authorization': '...'
    (
        re.compile(
            r"((?:x-amz-security-token|authorization)[\"']?\s*[:=]\s*(?:b?[\"'])?)([^\s\"',}&]"
            r"(?:[^\"'\n,}&]*[^\s\"',}&])?)",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"((?:X-Amz-Signature|Signature)=)[0-9a-fA-F]+"), rf"\1{REDACTED}"),
    # JSON bodies and dict reprs: "secretAccessKey": "...", 'SessionToken': '...'
    (re.compile(rf"([\"']?(?:{_KEYS})[\"']?\s*[:=]\s*b?[\"'])([^\"']+)", re.IGNORECASE), rf"\1{REDACTED}"),
]


_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)\S*@", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)[^&\s'\"]*", re.IGNORECASE)


def redact_url(text: str | None) -> str:
    """``text`` with the password of every URL in it replaced by ``***`` (``scheme://user:***@host``,
    and a ``?password=`` parameter): the only form in which a broker or database URL, or an error
    quoting one, is ever printed."""
    return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", str(text)))


def redact(text: str) -> str:
    """``text`` with every credential-shaped value replaced by ``<redacted>``."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message (formats it once, then keeps the masked text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is logging's to report, not ours
            return True
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_FILTER = RedactingFilter()
_installed = False


def install() -> None:
    """Mask secrets in every record of ``NAMESPACES`` from now on (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(name: str, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(name, *args, **kwargs)
        if name.partition(".")[0] in NAMESPACES:
            _FILTER.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
