"""Events handed to the emitter's ``_emit`` without a second copy of their arguments
(:func:`aliaser_emit`, :func:`aliaser_emit_until_response`); docs/performance.md, issue 24 part 6."""

from __future__ import annotations

from typing import Any

import botocore.hooks

# -- event emission (issue 24, part 6) -----------------------------------------------------------
#
# A client's events go through an ``EventAliaser`` (old event names to new) in front of a
# ``HierarchicalEmitter``; a call emits about a dozen events, each through four Python frames and two
# copies of its keyword arguments (``EventAliaser.emit`` -> ``_alias_event_name`` ->
# ``HierarchicalEmitter.emit`` -> ``_emit``), most of them to no handler or one. The aliaser's
# ``emit`` below reads its own name cache and calls the emitter's ``_emit`` with the arguments it
# was given, which is what the emitter's ``emit`` does with its copy of them.

_Aliaser = botocore.hooks.EventAliaser
_Emitter = botocore.hooks.HierarchicalEmitter
_aliaser_emit = _Aliaser.emit
_aliaser_until = _Aliaser.emit_until_response
_alias_event_name = _Aliaser._alias_event_name
_emitter_emit = _Emitter.emit
_emitter_until = _Emitter.emit_until_response


def _aliased(self: Any, event_name: str) -> Any:
    cache = self._alias_name_cache
    if event_name in cache:  # as _alias_event_name begins
        return cache[event_name]
    return self._alias_event_name(event_name)


def aliaser_emit(self: Any, event_name: str, **kwargs: Any) -> Any:
    """``EventAliaser.emit`` in front of a ``HierarchicalEmitter`` whose ``emit`` is botocore's:
    ``_emit`` called with this call's own copy of the arguments (it adds ``event_name`` to it)."""
    emitter = self._emitter
    if type(emitter).emit is not _emitter_emit or type(self)._alias_event_name is not _alias_event_name:
        return _aliaser_emit(self, event_name, **kwargs)
    return emitter._emit(_aliased(self, event_name), kwargs)


def aliaser_emit_until_response(self: Any, event_name: str, **kwargs: Any) -> Any:
    """``EventAliaser.emit_until_response`` likewise: the emitter's ``_emit`` stopping at the first
    answer, then the last (handler, answer) or (None, None), as its ``emit_until_response`` does."""
    emitter = self._emitter
    if (
        type(emitter).emit_until_response is not _emitter_until
        or type(self)._alias_event_name is not _alias_event_name
    ):
        return _aliaser_until(self, event_name, **kwargs)
    responses = emitter._emit(_aliased(self, event_name), kwargs, stop_on_response=True)
    if responses:
        return responses[-1]
    return (None, None)
