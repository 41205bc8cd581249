"""What the tests must know that differs by Python.

The HTTP session the gevent backend gives a client: geventhttpclient's where greenfetch depends on it
(pyproject.toml's marker: Python 3.11 on, as geventhttpclient 2.6 needs), else botocore's own urllib3
session. Read from the installed package's requirements, so the marker stays the one home of the rule;
where it is a dependency and missing, its tests fail, not skip.

A function's qualified name from its code object (``co_qualname``, Python 3.11 on), for the tests that
count the calls a path makes by name.
"""

import gc
import importlib.metadata
import types
from collections.abc import Iterable

import pytest
from packaging.requirements import Requirement


def _depends_on(name: str) -> bool:
    for text in importlib.metadata.requires("greenfetch") or []:
        requirement = Requirement(text)
        if requirement.name == name and (
            requirement.marker is None or requirement.marker.evaluate({"extra": ""})
        ):
            return True
    return False


GEVENTHTTPCLIENT = _depends_on("geventhttpclient")
GEVENT_KIND = "geventhttpclient" if GEVENTHTTPCLIENT else "urllib3"  # as _http.session_kind says it
WITHOUT = "greenfetch does not install geventhttpclient on this Python (pyproject.toml's marker)"
needs_geventhttpclient = pytest.mark.skipif(not GEVENTHTTPCLIENT, reason=WITHOUT)


def qualnames(codes: Iterable[types.CodeType]) -> dict[types.CodeType, str]:
    """Each code object's ``co_qualname``; on Python 3.10, which has none, the ``__qualname__`` of a
    function made of it (one walk of the heap for those not named yet; a code whose function is gone:
    its name)."""
    codes = set(codes)
    if all(hasattr(code, "co_qualname") for code in codes):
        return {code: code.co_qualname for code in codes}
    unnamed = codes.difference(_NAMED)
    if unnamed:
        for function in gc.get_referrers(*unnamed):
            if isinstance(function, types.FunctionType) and function.__code__ in unnamed:
                _NAMED.setdefault(function.__code__, function.__qualname__)
    return {code: _NAMED.get(code, code.co_name) for code in codes}


_NAMED: dict[types.CodeType, str] = {}  # Python 3.10: each code's qualified name, once found
