"""Botocore values to JSON-ready values, without ever failing."""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import math
from typing import Any

__all__ = ["jsonable"]


def jsonable(value: Any, body_limit: int = 1 << 20) -> Any:
    """Datetimes become ISO-8601, bytes UTF-8 text (base64 when not text), Decimals numbers,
    streaming bodies their first ``body_limit`` bytes; anything else unknown becomes ``str``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v, body_limit) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, body_limit) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _text_or_base64(bytes(value))
    if hasattr(value, "read"):  # botocore StreamingBody and friends
        try:
            data = value.read(body_limit + 1)
        except Exception as exc:  # noqa: BLE001 - a body we cannot read still gets a value
            return f"<unreadable body: {type(exc).__name__}>"
        finally:
            close = getattr(value, "close", None)
            if close:
                close()
        text = _text_or_base64(data[:body_limit])
        return text + "…[truncated]" if len(data) > body_limit else text
    return str(value)


def _text_or_base64(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(data).decode("ascii")
