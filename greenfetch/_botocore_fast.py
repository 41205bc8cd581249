"""botocore's request-side header objects without email.message's policy machinery: a guarded adaptation.

botocore keeps an ``AWSRequest``'s headers in ``botocore.compat.HTTPHeaders``, an
``http.client.HTTPMessage``, i.e. an ``email.message.Message`` with the compat32 policy, and builds a
second one for every SigV4 signature (``SigV4Auth.headers_to_sign``). Each set, get and listing goes
through the policy (``header_max_count``, ``header_store_parse``, ``header_fetch_parse``,
``_sanitize_header``, ``_has_surrogates``): about 11% of a call's own time in the engine's profile
(docs/performance.md, "botocore's request headers").

:class:`Headers` is a subclass of that class (``isinstance`` holds for any handler), on the same storage
(``_headers``: the (name, value) pairs in the order they were set) and with compat32's meaning, written
out: ``h[name] = value`` appends (a name may repeat); ``h[name]`` and ``get`` give the first value of that
name in any case, or None / the default; ``del h[name]`` removes every one (absent: no error); ``in`` is
case-insensitive; ``items``, ``values`` and ``get_all`` list in order. A value goes through the policy
only where the policy could change it: a ``str`` that is not ASCII (one with surrogate-escaped bytes
comes back as an ``email.header.Header``, as from botocore's own class). Every other method
(``keys``, ``replace_header``, ``as_string``...) is Message's own, on the same storage.

The guard: :func:`install` makes botocore build these (the ``HTTPHeaders`` names in
``botocore.awsrequest`` and ``botocore.auth``, the only places botocore makes one) for the botocore
versions in ``CHECKED``, the range tests/test_headers_parity.py was run on: the same method, URL,
headers and body, byte for byte, over operations of every protocol, and SigV4 signatures a server
recomputes. Outside that range botocore keeps its own class, said once in the log. It acts from the
first client greenfetch makes, not at import, for the whole process (the class is botocore's in all
but speed, so other botocore users in the process see the same requests).
"""

from __future__ import annotations

import logging
from email._policybase import compat32
from typing import TYPE_CHECKING, Any

import botocore
import botocore.auth
import botocore.awsrequest

if TYPE_CHECKING:  # botocore ships no types; its HTTPHeaders is this class with nothing added
    from http.client import HTTPMessage as HTTPHeaders
else:
    from botocore.compat import HTTPHeaders

__all__ = ["CHECKED", "Headers", "install", "installed", "uninstall"]

log = logging.getLogger("greenfetch")

# botocore versions (major, minor) the parity suite passed on, inclusive. A new minor is added here
# after tests/test_headers_parity.py passes on it.
CHECKED = ((1, 36), (1, 43))

_MODULES = (botocore.awsrequest, botocore.auth)
_said = False


class Headers(HTTPHeaders):
    """``botocore.compat.HTTPHeaders`` with compat32's semantics written out (see the module docstring)."""

    _headers: list[tuple[str, Any]]

    def __new__(cls, policy: Any = compat32) -> Any:
        if policy is not compat32:  # only compat32 is written out here; any other policy: botocore's own
            return HTTPHeaders(policy)
        return super().__new__(cls)

    def __setitem__(self, name: str, val: Any) -> None:
        self._headers.append((name, val))  # compat32: no header_max_count, header_store_parse is (name, val)

    def get(self, name: str, failobj: Any = None) -> Any:
        name = name.lower()
        for key, value in self._headers:
            if key.lower() == name:
                if isinstance(value, str) and not value.isascii():
                    return self.policy.header_fetch_parse(key, value)
                return value
        return failobj

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        name = name.lower()  # type: ignore[attr-defined]  # as Message: a name that is not a str raises
        for key, _ in self._headers:
            if key.lower() == name:
                return True
        return False

    def __delitem__(self, name: str) -> None:
        name = name.lower()
        self._headers = [pair for pair in self._headers if pair[0].lower() != name]

    def items(self) -> list[tuple[str, Any]]:
        fetch = self.policy.header_fetch_parse
        return [
            (key, fetch(key, value) if isinstance(value, str) and not value.isascii() else value)
            for key, value in self._headers
        ]

    def values(self) -> list[Any]:
        return [value for _, value in self.items()]

    def get_all(self, name: str, failobj: Any = None) -> Any:
        name = name.lower()
        fetch = self.policy.header_fetch_parse
        found = [
            fetch(key, value) if isinstance(value, str) and not value.isascii() else value
            for key, value in self._headers
            if key.lower() == name
        ]
        return found or failobj


def _version() -> tuple[int, int]:
    major, minor = botocore.__version__.split(".")[:2]
    return int(major), int(minor)


def checked(version: tuple[int, int] | None = None) -> bool:
    """Whether this botocore (or ``version``) is one the parity suite passed on."""
    low, high = CHECKED
    return low <= (version or _version()) <= high


def install() -> bool:
    """Make botocore build :class:`Headers` where this botocore was checked; True if it does."""
    global _said
    if installed():
        return True
    if not checked():
        if not _said:
            _said = True
            log.info(
                "greenfetch: botocore %s is outside the versions its request-header adaptation was "
                "checked on (%d.%d-%d.%d): botocore's own header class is used",
                botocore.__version__,
                *CHECKED[0],
                *CHECKED[1],
            )
        return False
    for module in _MODULES:
        module.HTTPHeaders = Headers
    return True


def installed() -> bool:
    return all(getattr(module, "HTTPHeaders", None) is Headers for module in _MODULES)


def uninstall() -> None:
    """botocore's own class again (the parity suite runs both ways)."""
    for module in _MODULES:
        module.HTTPHeaders = HTTPHeaders
