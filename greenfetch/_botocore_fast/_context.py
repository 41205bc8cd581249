"""What every call adds to its context and headers, without the general-purpose detours (docs/performance/engine-call.md,
issue 24 part 7b): the invocation id (:data:`uuid_module`) and the recursion-detection header
(:func:`add_recursion_detection_header`).

**The invocation id.** ``Endpoint._update_retries_context`` sets ``str(uuid.uuid4())`` once per call
(``amz-sdk-invocation-id``): ``uuid4`` is ``UUID(bytes=os.urandom(16), version=4)``, an object made and
formatted through ``UUID.__init__``'s checks to be turned straight into text. :data:`uuid_module` stands for
``uuid`` in ``botocore.endpoint`` (the one name it reads there): its ``uuid4`` is the same 16 bytes from
``os.urandom`` with the same version and variant bits, formatted as ``str(UUID)`` formats them
(:func:`format_uuid4`), handed out as that ``str`` (``str()`` of a ``str`` is itself). Whenever
``uuid.uuid4`` is not the standard library's own (a caller replaced it, a test that freezes ids), its
``uuid4`` is called, as botocore would.

**The recursion-detection header.** botocore's ``before-call`` handler asks ``'AWS_LAMBDA_FUNCTION_NAME'
in os.environ`` and ``os.environ.get('_X_AMZN_TRACE_ID')`` on every call; each absent name raises and
catches a ``KeyError`` inside ``os.environ`` (a ``Mapping`` over ``encodekey``'d bytes). The header is
only added inside Lambda (both set), so :func:`add_recursion_detection_header` reads the one name that
decides it from ``os.environ``'s own store, with the key ``os.environ.encodekey`` makes for it; with that
name set, or ``os.environ`` not the object it was at import, botocore's handler runs. It is registered in
botocore's place in ``botocore.handlers.BUILTIN_HANDLERS``, which a session reads when it is made.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import botocore.endpoint
import botocore.handlers

# -- the invocation id -----------------------------------------------------------------------------

_uuid4 = uuid.uuid4
_urandom = os.urandom
_VERSION_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))  # as UUID(..., version=4) clears and sets them
_VERSION_SET = (0x8000 << 48) | (4 << 76)


def format_uuid4(raw: bytes) -> str:
    """``str(uuid.UUID(bytes=raw, version=4))`` for 16 bytes ``raw``."""
    text = "%032x" % (int.from_bytes(raw, "big") & _VERSION_CLEAR | _VERSION_SET)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class _UUIDModule:
    """``uuid`` as ``botocore.endpoint`` uses it (``str(uuid.uuid4())``); any other name is ``uuid``'s."""

    __slots__ = ()

    @staticmethod
    def uuid4() -> Any:
        if uuid.uuid4 is not _uuid4:  # replaced (a test freezing ids): that one, as botocore calls it
            return uuid.uuid4()
        return format_uuid4(_urandom(16))

    def __getattr__(self, name: str) -> Any:
        return getattr(uuid, name)


uuid_module = _UUIDModule()
_endpoint_uuid = botocore.endpoint.uuid

# -- the recursion-detection header ----------------------------------------------------------------

_add_recursion_detection_header = botocore.handlers.add_recursion_detection_header
_ENVIRON = os.environ
_LAMBDA_KEY = _ENVIRON.encodekey("AWS_LAMBDA_FUNCTION_NAME") if type(_ENVIRON) is os._Environ else None


def add_recursion_detection_header(params: Any, **kwargs: Any) -> Any:
    """botocore's ``add_recursion_detection_header``: nothing to add unless ``AWS_LAMBDA_FUNCTION_NAME``
    is set, read from ``os.environ``'s store; set, or ``os.environ`` replaced: botocore's handler."""
    environ = os.environ
    if environ is _ENVIRON and _LAMBDA_KEY is not None and _LAMBDA_KEY not in environ._data:  # type: ignore[attr-defined]  # os._Environ's store
        return None
    return _add_recursion_detection_header(params, **kwargs)
