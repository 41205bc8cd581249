"""Events handed to the emitter's ``_emit`` without a second copy of their arguments
(:func:`aliaser_emit`, :func:`aliaser_emit_until_response`); docs/performance/engine-call.md, issue 24 part 6.
A call's parameter events emitted only where a handler may hear them or act (:func:`emit_api_params`, part 11)."""

from __future__ import annotations

import logging
from typing import Any

import botocore.client
import botocore.handlers
import botocore.hooks
import botocore.model

from .._kept import kept

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
_DEFAULT_ALIASES = dict(botocore.hooks.EVENT_ALIASES)  # botocore's table as it was when greenfetch started


def _aliased(self: Any, event_name: str) -> Any:
    cache = self._alias_name_cache
    if event_name in cache:  # as _alias_event_name begins
        return cache[event_name]
    return self._alias_event_name(event_name)


def _own_aliasing(aliaser: Any) -> bool:
    """Whether an aliaser's class brings its own ``_alias_event_name`` (neither botocore's nor ours)."""
    method = type(aliaser)._alias_event_name
    return method is not alias_event_name and method is not _alias_event_name


def aliaser_emit(self: Any, event_name: str, **kwargs: Any) -> Any:
    """``EventAliaser.emit`` in front of a ``HierarchicalEmitter`` whose ``emit`` is botocore's:
    ``_emit`` called with this call's own copy of the arguments (it adds ``event_name`` to it)."""
    emitter = self._emitter
    if type(emitter).emit is not _emitter_emit or _own_aliasing(self):
        return _aliaser_emit(self, event_name, **kwargs)
    name = self._alias_name_cache.get(event_name)  # _aliased, inline: a name's alias is a str
    if name is None:
        name = self._alias_event_name(event_name)
    return emitter._emit(name, kwargs)


def aliaser_emit_until_response(self: Any, event_name: str, **kwargs: Any) -> Any:
    """``EventAliaser.emit_until_response`` likewise: the emitter's ``_emit`` stopping at the first
    answer, then the last (handler, answer) or (None, None), as its ``emit_until_response`` does."""
    emitter = self._emitter
    if type(emitter).emit_until_response is not _emitter_until or _own_aliasing(self):
        return _aliaser_until(self, event_name, **kwargs)
    name = self._alias_name_cache.get(event_name)  # _aliased, inline
    if name is None:
        name = self._alias_event_name(event_name)
    responses = emitter._emit(name, kwargs, stop_on_response=True)
    if responses:
        return responses[-1]
    return (None, None)


# -- an event name's alias, once a process (breadth) ------------------------------------------------
#
# Each client has its own aliaser, and each aliaser its own name cache, so the first time a client
# emits or registers a name, botocore walks its ~65 ``EVENT_ALIASES`` (a ``split`` and a ``list.index``
# each: ~20 µs). An inventory of every type makes ~1,300 clients for 1 account x 4 regions, each for
# ~5 calls of a service of its own, so nearly every name a call emits was a miss: 54,000 walks in
# 6,100 calls. The answer depends only on the name and the alias table, and every client's aliaser
# holds a copy of botocore's ``EVENT_ALIASES`` (``EventAliaser.__copy__`` copies the table): the
# aliasers whose table equals botocore's (as greenfetch first saw it) share one memory of answers. An
# aliaser whose table differs walks its own as botocore does. Only the debug line "Changing event
# name" is said once a process rather than once a client.

_ALIASES_KEPT = 8192  # names remembered; all dropped when full (every service's events fit)
_aliases_seen: dict[str, str] = {}

# botocore's walk, as tables: the table's entries without a dot by their text (a name's part is looked
# up, not searched for), those with one in the table's order. The first entry in the table's order
# that botocore's walk would stop at wins: one without a dot when it is a whole part of the name (its
# first occurrence is replaced), one with a dot when it is anywhere in the name's text (the parts it
# spans are replaced, if it spans whole parts; the walk stops there either way).
_PLAIN = {old: (at, new) for at, (old, new) in enumerate(_DEFAULT_ALIASES.items()) if "." not in old}
_DOTTED = [(at, old, new) for at, (old, new) in enumerate(_DEFAULT_ALIASES.items()) if "." in old]
_NOWHERE = len(_DEFAULT_ALIASES)


def _alias_of(aliaser: Any, event_name: str) -> str:
    """What botocore's ``_alias_event_name`` answers for ``event_name`` under botocore's own table
    (``_DEFAULT_ALIASES``), found in one pass over the name's parts instead of one per table entry."""
    parts = event_name.split(".")
    at, old, new = _NOWHERE, "", ""
    for part in parts:
        hit = _PLAIN.get(part)
        if hit is not None and hit[0] < at:
            (at, new), old = hit, part
    spanned = None
    for dotted_at, dotted, dotted_new in _DOTTED:
        if dotted_at > at:
            break
        if dotted in event_name:
            spanned = dotted, dotted_new
            break
    if spanned is not None:
        aliaser._replace_subsection(parts, spanned[0].split("."), spanned[1])  # as botocore's walk does
    elif at == _NOWHERE:
        return event_name
    else:
        parts[parts.index(old)] = new
    alias = ".".join(parts)
    botocore.hooks.logger.debug("Changing event name from %s to %s", event_name, alias)
    return alias


def alias_event_name(self: Any, event_name: str) -> Any:
    """``EventAliaser._alias_event_name``: under botocore's own table, its answer found by
    ``_alias_of`` once a process and shared by every aliaser holding that table (and kept in the
    aliaser's own cache, as botocore keeps it); under any other table, botocore's walk."""
    cache = self._alias_name_cache
    found = cache.get(event_name)
    if found is not None:
        return found
    if self._event_aliases != _DEFAULT_ALIASES:  # ~1 µs against a walk's 20-40
        return _alias_event_name(self, event_name)
    found = _aliases_seen.get(event_name)
    if found is None:
        found = kept(_aliases_seen, event_name, _alias_of(self, event_name), _ALIASES_KEPT)
    cache[event_name] = found
    return found


# -- the debug line before each handler (issue 24, part 7b) ----------------------------------------
#
# ``HierarchicalEmitter._emit`` calls ``logger.debug('Event %s: calling handler %s', ...)`` before each
# handler, about 25 a call, each two Python frames that end in ``Logger._cache[DEBUG]``. ``Logger``
# keeps that answer in ``_cache`` until any level or ``logging.disable`` changes (it then clears every
# logger's ``_cache``), and ``disabled`` only ever makes the answer False: so where the cache already
# says False, ``logger.debug`` would log nothing, and the replacement skips the call; anywhere else
# (True, not yet known, a handler that changed a level mid-emit) it calls ``logger.debug`` as botocore
# does. A logger that is not exactly ``logging.Logger``, or one with its own ``debug`` or ``isEnabledFor``,
# takes botocore's.

_emitter_inner = _Emitter._emit
_DEBUG = logging.DEBUG
_Logger = logging.Logger


def emitter_emit(self: Any, event_name: str, kwargs: dict[str, Any], stop_on_response: bool = False) -> Any:
    """``HierarchicalEmitter._emit`` with its debug line asked for only where ``Logger`` does not
    already know it would log nothing (see above); the same handlers, order, arguments and answers."""
    handlers_to_call = self._lookup_cache.get(event_name)
    if handlers_to_call is not None and not handlers_to_call:
        return []  # as botocore's: no handler, nothing logged
    logger = botocore.hooks.logger
    own = logger.__dict__
    if type(logger) is not _Logger or "debug" in own or "isEnabledFor" in own:
        return _emitter_inner(self, event_name, kwargs, stop_on_response)
    responses: list[Any] = []
    if handlers_to_call is None:
        handlers_to_call = self._handlers.prefix_search(event_name)
        self._lookup_cache[event_name] = handlers_to_call
    kwargs["event_name"] = event_name
    known = logger._cache  # type: ignore[attr-defined]  # Logger's answer per level
    for handler in handlers_to_call:
        if known.get(_DEBUG) is not False:
            logger.debug("Event %s: calling handler %s", event_name, handler)
        response = handler(**kwargs)
        responses.append((handler, response))
        if stop_on_response and response is not None:
            return responses
    return responses


def unheard(aliaser: Any, event_name: str) -> bool:
    """Whether ``aliaser.emit(event_name, ...)`` is known to call no handler and do nothing but answer
    ``[]``: ``aliaser_emit`` in front of ``emitter_emit``, the name's alias in the aliaser's cache and
    the emitter's cache holding no handler for the alias (it is emptied whenever a handler is
    registered or removed). False is "not known": the caller emits. An emitter's first sight of a
    name is always emitted (that fills both caches, as botocore's emit does)."""
    handlers = _known_handlers(aliaser, event_name)
    return handlers is not None and not handlers


def _known_handlers(aliaser: Any, event_name: str) -> Any:
    """The handlers ``aliaser.emit(event_name, ...)`` is known to call, in order, from the emitter's
    cache (``aliaser_emit`` in front of ``emitter_emit``, the name's alias already cached); None where
    not known."""
    emitter = _plain_emitter(aliaser)
    if emitter is None:  # then _cached's reads, inline: a frame less on every attempt's path
        return None
    name = aliaser._alias_name_cache.get(event_name)
    return None if name is None else emitter._lookup_cache.get(name)


def _plain_emitter(aliaser: Any) -> Any:
    """The aliaser's emitter, where an emit is ``aliaser_emit`` in front of ``emitter_emit``
    (botocore's aliasing or greenfetch's, with any table); None where an emit may run other code."""
    kind = type(aliaser)
    if kind.emit is not aliaser_emit:
        return None
    aliasing = kind._alias_event_name
    if aliasing is not alias_event_name and aliasing is not _alias_event_name:  # _own_aliasing, inline
        return None
    emitter = aliaser._emitter
    kind = type(emitter)
    if kind.emit is not _emitter_emit or kind._emit is not emitter_emit:
        return None
    return emitter


def _cached(aliaser: Any, emitter: Any, event_name: str) -> Any:
    """The handlers the emitter's cache holds for the name's cached alias; None where either is not
    cached, or the emitter is not ``_plain_emitter``'s answer (None)."""
    if emitter is None:
        return None
    name = aliaser._alias_name_cache.get(event_name)
    return None if name is None else emitter._lookup_cache.get(name)


def sole_handler(aliaser: Any, event_name: str) -> Any:
    """The one handler ``aliaser.emit(event_name, ...)`` is known to call, where calling it directly
    with the event's arguments is all the emit would do: no other handler, and the emitter's debug
    line before it known to log nothing (``emitter_emit`` skips it then too). None: emit."""
    handlers = _known_handlers(aliaser, event_name)
    if handlers is None or len(handlers) != 1 or not _debug_off():
        return None
    return handlers[0]


def _debug_off() -> bool:
    """Whether the emitter's debug line before each handler is known to log nothing (see above)."""
    logger = botocore.hooks.logger
    own = logger.__dict__
    if type(logger) is not _Logger or "debug" in own or "isEnabledFor" in own:
        return False
    return logger._cache.get(_DEBUG) is False  # type: ignore[attr-defined]


# -- a call's parameter events (issue 24, part 11) -------------------------------------------------
#
# ``BaseClient._emit_api_params`` emits two events on every call. ``provide-client-params`` lets a
# handler hand back other parameters, and botocore registers no handler for it: where ``unheard``
# knows the emit would call none (it would answer ``[]``, so the parameters stay the caller's), it is
# not made. ``before-parameter-build`` calls botocore's two handlers for every service without its own
# (~18k instructions: the emit, the debug line's checks and two calls with the arguments as
# ``**kwargs``), and for most operations neither does anything: ``generate_idempotent_uuid`` fills
# the model's idempotency tokens missing from the parameters (none in a model without them), and
# ``_handle_request_validation_mode_member`` sets the trait's validation mode member (none without
# one). Where the emitter is known to call exactly those two, in that order, its debug line is known
# off, and the model has neither, the emit is not made (``_emit_api_params`` discards its answer); the
# reads the second handler makes on the way (the client config's ``response_checksum_validation``, the
# trait) are made alike, so a config without the setting fails as it does. A user's handler at any
# level, another service's own handlers (S3's, EC2's...), an emitter's first sight of a name, debug
# logging: the emit, as botocore makes it.

_BaseClient = botocore.client.BaseClient
_emit_api_params = _BaseClient._emit_api_params
_OperationModel = botocore.model.OperationModel
_IDEMPOTENCY = botocore.handlers.generate_idempotent_uuid
_VALIDATION_MODE = botocore.handlers._handle_request_validation_mode_member


def emit_api_params(self: Any, api_params: Any, operation_model: Any, context: Any) -> Any:
    """``BaseClient._emit_api_params``: each event emitted unless known to change nothing."""
    operation_name = operation_model.name
    service_id = self._service_model.service_id.hyphenize()
    events = self.meta.events
    emitter = _plain_emitter(events)  # read once for both names
    event_name = f"provide-client-params.{service_id}.{operation_name}"
    handlers = _cached(events, emitter, event_name)
    if handlers is None or handlers:  # not known to call no handler (``unheard``'s answer)
        responses = events.emit(event_name, params=api_params, model=operation_model, context=context)
        api_params = botocore.client.first_non_none_response(responses, default=api_params)
    event_name = f"before-parameter-build.{service_id}.{operation_name}"
    if not _parameters_kept(_cached(events, emitter, event_name), operation_model, context):
        events.emit(event_name, params=api_params, model=operation_model, context=context)
    return api_params


def _parameters_kept(handlers: Any, model: Any, context: Any) -> bool:
    """Whether emitting ``before-parameter-build`` to ``handlers`` (the emitter's, known; None where
    not) calls botocore's two handlers alone, each changing nothing for ``model`` (see above), with
    nothing logged."""
    if (
        handlers is None
        or len(handlers) != 2
        or type(model) is not _OperationModel
        or type(context) is not dict
    ):
        return False
    idempotency, validation_mode = handlers
    if idempotency is not _IDEMPOTENCY or validation_mode is not _VALIDATION_MODE or not _debug_off():
        return False
    if model.idempotent_members:
        return False
    config = context.get("client_config")
    if config is not None:
        config.response_checksum_validation  # noqa: B018 - read first, as the handler reads it
        if model.http_checksum.get("requestValidationModeMember") is not None:
            return False
    return True


# -- event names (issue 24, part 7b) ---------------------------------------------------------------
#
# Every event name a call emits is built from ``ServiceId.hyphenize()`` (``hyphenize_service_id``:
# ``replace(' ', '-').lower()``), about ten times a call, two Python frames each. The answer is a pure
# function of the service id's text, so it is remembered per service id.

_ServiceId = botocore.model.ServiceId
_hyphenize = _ServiceId.hyphenize
_hyphenize_service_id = botocore.model.hyphenize_service_id
_hyphenized: dict[str, str] = {}
_HYPHENIZED = 256  # service ids kept; all dropped when full


def hyphenize(self: Any) -> Any:
    """``ServiceId.hyphenize``, remembered per service id (while ``botocore.model``'s
    ``hyphenize_service_id`` is botocore's own)."""
    if botocore.model.hyphenize_service_id is not _hyphenize_service_id:
        return _hyphenize(self)
    found = _hyphenized.get(self)
    if found is None:
        found = kept(_hyphenized, self, _hyphenize_service_id(self), _HYPHENIZED)
    return found
