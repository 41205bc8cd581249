"""The session's profile read once per client creation: ``Session.get_scoped_config`` (the profile's
section of the config file) asks the config chain for the variable ``profile`` first, every time, and a
client's creation asks for the scoped config ~50 times (each variable's chain ends in it): ~14k
instructions each, ~700k a client. docs/performance/client-and-parse.md, issue 24, "a botocore client's creation",
part 2.

While ``Session.create_client`` runs (:func:`create_client`, in the calling thread or greenlet only),
:func:`get_scoped_config` remembers the ``profile`` variable's answer per session, the first time it is
asked, and computes the rest as botocore does (the profile map, the profile's section, or
``ProfileNotFound``) each time. botocore reads the chain at no defined moment during a creation: one
read at the first ask is one of the orders botocore itself could read in, as long as nothing in the
creation itself changes the ``profile`` variable (the session's instance variable, ``AWS_PROFILE``,
``AWS_DEFAULT_PROFILE``, the session's config store): botocore's creation does not; a handler of the
creation's events that did would see its change after the creation. Outside a creation, for a session
of another class, or when ``get_config_variable`` is not botocore's: botocore's code.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import botocore.exceptions
import botocore.session

_Session = botocore.session.Session
_create_client = _Session.create_client
_get_scoped_config = _Session.get_scoped_config
_get_config_variable = _Session.get_config_variable

_creating = threading.local()  # .profiles: {id(session): (session, profile)} while a creation runs


@functools.wraps(_create_client, assigned=())  # its signature (__wrapped__), our name and module
def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
    """``Session.create_client``, with the profile read at most once per session while it runs."""
    if getattr(_creating, "profiles", None) is not None:  # a creation inside a creation: the outer's
        return _create_client(self, *args, **kwargs)
    _creating.profiles = {}
    try:
        return _create_client(self, *args, **kwargs)
    finally:
        _creating.profiles = None


def get_scoped_config(self: Any) -> Any:
    """``Session.get_scoped_config``; during a creation, the ``profile`` variable read once."""
    profiles = getattr(_creating, "profiles", None)
    if (
        profiles is None
        or type(self) is not _Session
        or _Session.get_config_variable is not _get_config_variable
    ):
        return _get_scoped_config(self)
    found = profiles.get(id(self))
    if found is not None and found[0] is self:
        profile_name = found[1]
    else:
        profile_name = self.get_config_variable("profile")
        profiles[id(self)] = (self, profile_name)
    profile_map = self._build_profile_map()  # as botocore's, from here
    if profile_name is None:
        return profile_map.get("default", {})
    elif profile_name not in profile_map:
        raise botocore.exceptions.ProfileNotFound(profile=profile_name)
    else:
        return profile_map[profile_name]


__all__ = ["create_client", "get_scoped_config"]
