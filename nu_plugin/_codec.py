"""Nushell's plugin protocol (JSON, 0.115.x) as pure functions: values, messages, framing.

No I/O here, so every shape can be tested without a nu process. The wire shapes follow
docs/nushell-protocol.md (verified against nu 0.115.1), which wins over the
contributor book where they differ (``{"Value": [value, metadata]}``, spanned flag names, ...).
"""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ENCODING_PREAMBLE",
    "PROTOCOL_VERSION",
    "Closure",
    "Duration",
    "LabeledError",
    "MessageTooDeep",
    "ProtocolError",
    "call_response",
    "decode_message",
    "decode_value",
    "encode_message",
    "engine_call",
    "error_response",
    "hello",
    "is_compatible",
    "kind_of",
    "list_stream_header",
    "pipeline_value",
    "span_of",
    "to_value",
    "type_name",
]

PROTOCOL_VERSION = "0.115.1"
ENCODING_PREAMBLE = b"\x04json"
I64_MAX = (1 << 63) - 1
NS_PER_SECOND = 1_000_000_000

Span = dict[str, int]
NuValue = dict[str, Any]


class ProtocolError(ValueError):
    """A message that is not valid protocol JSON: the plugin cannot go on talking to nu."""


class MessageTooDeep(ProtocolError):
    """A well-framed message too deeply nested to decode: that message is dropped, the rest served."""


@dataclass(frozen=True)
class Duration:
    """A Nushell duration (nanoseconds), kept apart from plain numbers so it encodes as a Duration."""

    nanoseconds: int

    @classmethod
    def from_seconds(cls, seconds: float) -> Duration:
        return cls(round(seconds * NS_PER_SECOND))

    @property
    def seconds(self) -> float:
        return self.nanoseconds / NS_PER_SECOND


@dataclass(frozen=True)
class Closure:
    """A closure argument, passed back to nu untouched (EvalClosure wants it unwrapped and spanned)."""

    val: Any
    span: Span

    def spanned(self) -> dict[str, Any]:
        return {"item": self.val, "span": self.span}


class LabeledError(Exception):
    """An error nu renders with labels under the user's source text (only spans nu gave us)."""

    def __init__(
        self,
        msg: str,
        labels: Iterable[tuple[str, Span]] = (),
        *,
        help: str | None = None,
        code: str | None = "nu_plugin_greenfetch::error",
        inner: Iterable[Mapping[str, Any]] = (),
    ):
        super().__init__(msg)
        self.msg = msg
        self.labels = list(labels)
        self.help = help
        self.code = code
        self.inner = list(inner)
        self.wire: dict[str, Any] | None = None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> LabeledError:
        """Keep an error nu sent us (e.g. a failing closure) so it can go back with its own spans."""
        err = cls(str(data.get("msg") or "error"), code=data.get("code"), help=data.get("help"))
        err.wire = dict(data)
        return err

    def to_wire(self) -> dict[str, Any]:
        if self.wire is not None:
            return dict(self.wire)
        return {
            "msg": self.msg,
            "labels": [{"text": text, "span": span} for text, span in self.labels],
            "code": self.code,
            "url": None,
            "help": self.help,
            "inner": list(self.inner),
        }


# -- messages ------------------------------------------------------------------------------------


def encode_message(message: Any) -> bytes:
    """One compact JSON message per line. NaN/Infinity are not JSON: callers map them first."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode() + b"\n"


def decode_message(line: bytes | str) -> Any:
    """One protocol message. MessageTooDeep for JSON nested past what the decoder can recurse into
    (the line itself was framed correctly, so the connection is still good); ProtocolError for
    anything that is not JSON at all."""
    try:
        return json.loads(line)
    except RecursionError:
        raise MessageTooDeep(f"ignored a message nested too deep to decode ({len(line)} bytes)") from None
    except ValueError as exc:
        raise ProtocolError(f"not a JSON protocol message: {line[:120]!r}") from exc


def hello(version: str = PROTOCOL_VERSION) -> dict[str, Any]:
    # No features: LocalSocket would make nu relaunch us with --local-socket.
    return {"Hello": {"protocol": "nu-plugin", "version": version, "features": []}}


def is_compatible(ours: str, theirs: str) -> bool:
    """nu's rule: for 0.x versions the minor must match (pre-release tags ignored)."""

    def parts(version: str) -> tuple[int, ...]:
        core = version.split("-", 1)[0].split("+", 1)[0]
        return tuple(int(p) for p in (core.split(".") + ["0", "0"])[:3])

    a, b = parts(ours), parts(theirs)
    return a[:2] == b[:2] if a[0] == 0 else a[0] == b[0]


def call_response(call_id: int, response: Any) -> dict[str, Any]:
    return {"CallResponse": [call_id, response]}


def error_response(call_id: int, error: LabeledError) -> dict[str, Any]:
    return call_response(call_id, {"Error": error.to_wire()})


def pipeline_value(value: NuValue) -> dict[str, Any]:
    """A PipelineData header holding one value: a 2-element array (value, metadata)."""
    return {"PipelineData": {"Value": [value, None]}}


def list_stream_header(stream_id: int, span: Span) -> dict[str, Any]:
    return {"PipelineData": {"ListStream": {"id": stream_id, "span": span, "metadata": None}}}


def engine_call(context: int, call_id: int, call: Any) -> dict[str, Any]:
    return {"EngineCall": {"context": context, "id": call_id, "call": call}}


def kind_of(message: Any) -> str:
    """The variant name of a message: ``"Goodbye"`` or the single key of its object."""
    if isinstance(message, str):
        return message
    if isinstance(message, dict) and len(message) == 1:
        kind: str = next(iter(message))  # a JSON object's key
        return kind
    raise ProtocolError(f"unexpected message shape: {str(message)[:120]}")


# -- values: Nushell -> Python --------------------------------------------------------------------


def type_name(value: NuValue) -> str:
    """The Nushell type name users know (``record``, ``list``, ``int``, ...)."""
    kind = next(iter(value)) if isinstance(value, dict) and value else "unknown"
    return {"Nothing": "nothing", "List": "list", "Record": "record", "CellPath": "cell-path"}.get(
        kind, kind.lower()
    )


def span_of(value: NuValue, default: Span | None = None) -> Span | None:
    try:
        return dict(next(iter(value.values()))["span"])
    except (AttributeError, KeyError, StopIteration, TypeError):
        return default


def decode_value(value: NuValue) -> Any:
    """A Nushell value as plain Python, as a botocore parameter would want it."""
    kind, body = next(iter(value.items()))
    if kind == "Record":
        return {k: decode_value(v) for k, v in body["val"].items()}
    if kind == "List":
        return [decode_value(v) for v in body["vals"]]
    if kind in ("Int", "Bool", "String", "Filesize", "Range", "CellPath", "Glob"):
        return body["val"]
    if kind == "Float":
        return math.nan if body["val"] is None else float(body["val"])
    if kind == "Nothing":
        return None
    if kind == "Duration":
        return Duration(int(body["val"]))
    if kind == "Date":
        return _date(body["val"])
    if kind == "Binary":
        return bytes(body["val"])
    if kind == "Closure":
        return Closure(body["val"], body["span"])
    if kind == "Error":
        raise LabeledError.from_wire(body["error"])
    return body.get("val")


# A Nushell date is chrono's RFC 3339 text: "Z" for a zero offset, and 0, 3, 6 or 9 digits of a second
# (``date now`` has nanoseconds). ``fromisoformat`` reads all of it from Python 3.11 (the fraction cut to
# microseconds); 3.10's reads only ``isoformat``'s own form, so the text is given in that form first.
_RFC3339 = re.compile(r"(.+T\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)?")


def _date(text: str) -> _dt.datetime:
    found = _RFC3339.fullmatch(text)
    if found is None:  # another form: fromisoformat's answer, or its error
        return _dt.datetime.fromisoformat(text)
    head, fraction, zone = found.groups()
    micro = f".{fraction[:6].ljust(6, '0')}" if fraction else ""
    return _dt.datetime.fromisoformat(head + micro + ("+00:00" if zone in ("Z", "z") else zone or ""))


# -- values: Python -> Nushell --------------------------------------------------------------------


def to_value(obj: Any, span: Span) -> NuValue:
    """Any Python value (botocore responses included) as a Nushell value; never fails."""
    if obj is None:
        return {"Nothing": {"span": span}}
    if isinstance(obj, bool):
        return {"Bool": {"val": obj, "span": span}}
    if isinstance(obj, int):
        if -I64_MAX - 1 <= obj <= I64_MAX:
            return {"Int": {"val": obj, "span": span}}
        return {"String": {"val": str(obj), "span": span}}
    if isinstance(obj, float):
        if math.isfinite(obj):
            return {"Float": {"val": obj, "span": span}}
        return {"String": {"val": str(obj), "span": span}}
    if isinstance(obj, str):
        return {"String": {"val": obj, "span": span}}
    if isinstance(obj, Duration):
        return {"Duration": {"val": obj.nanoseconds, "span": span}}
    if isinstance(obj, Mapping):
        return {"Record": {"val": {str(k): to_value(v, span) for k, v in obj.items()}, "span": span}}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return {"List": {"vals": [to_value(v, span) for v in obj], "span": span}}
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return {"Date": {"val": _rfc3339(obj), "span": span}}
    if isinstance(obj, decimal.Decimal):
        return to_value(int(obj) if obj == obj.to_integral_value() else float(obj), span)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _bytes_value(bytes(obj), span)
    if isinstance(obj, Closure):
        return {"Closure": {"val": obj.val, "span": obj.span}}
    return {"String": {"val": str(obj), "span": span}}


def _rfc3339(when: _dt.date) -> str:
    if not isinstance(when, _dt.datetime):
        when = _dt.datetime(when.year, when.month, when.day)
    if when.tzinfo is None:  # botocore dates are aware; a naive one is taken as UTC
        when = when.replace(tzinfo=_dt.timezone.utc)
    return when.isoformat()


def _bytes_value(data: bytes, span: Span) -> NuValue:
    """Text stays text (as in the JSON output); other bytes become a Nushell binary."""
    try:
        return {"String": {"val": data.decode("utf-8"), "span": span}}
    except UnicodeDecodeError:
        return {"Binary": {"val": list(data), "span": span}}
