"""botocore's request path without its repeated work: guarded adaptations, each computing what botocore computes.

Each family reads alone: the request's and the response's header objects (``_request``: the request
header class without ``email.message``'s policy walk, ``HeadersDict``, the prepared headers, the request
body), SigV4 signing and its timestamp (``_sigv4``), the endpoint: its parameters, the provider's
answer, the URL (``_endpoint``), the ruleset walked once per parameters but the account's value
(``_account``), a call's checksum context for an operation without the trait (``_checksum``), the
response parse, the retry decision and an attempt's end (``_response``), event emission, its debug line,
event names and a call's parameter events emitted only where heard or acted on (``_events``), what every call adds to its context and headers: the invocation id, the
recursion-detection header (``_context``), a client's creation: the event emitter's copy, each handler's
keyword check, the endpoint's proxies, a configuration variable read from the environment (``_client``),
the HTTP session's pool manager built on first use (``_httpsession``), one parsed endpoint ruleset per
ruleset (``_ruleset``), the profile read once per client creation (``_scoped``).
docs/performance/engine-call.md (issue 24 parts 4, 6 and 7b) and docs/performance/client-and-parse.md
("a botocore client's creation", "the endpoint ruleset per account") measure and explain each.

The guard, here: :func:`install` puts these in botocore's place (the ``HTTPHeaders`` names in
``botocore.awsrequest`` and ``botocore.auth``, the only places botocore makes one, and each function
where botocore looks it up) for the botocore versions in ``CHECKED`` (a patch checked on
fewer names its first version in ``_SINCE``), the range tests/test_headers_parity.py and
tests/test_botocore_fast_parity.py were run on: the same method, URL, headers and body, byte for byte,
over operations of every protocol, SigV4 signatures a server recomputes, the same endpoint parameters
and the same parsed responses. Outside that range botocore keeps its own code, said once in the log. It
acts from the first client greenfetch makes, not at import, for the whole process (the code is
botocore's in all but speed, so other botocore users in the process see the same requests).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import botocore
import botocore.auth
import botocore.awsrequest
import botocore.client
import botocore.endpoint
import botocore.handlers
import botocore.parsers
import botocore.session

if TYPE_CHECKING:  # botocore ships no types; its HTTPHeaders is this class with nothing added
    from http.client import HTTPMessage as HTTPHeaders
else:
    from botocore.compat import HTTPHeaders

from ._account import _evaluate, _RuleSet, evaluate
from ._checksum import _resolve_checksum_context, resolve_checksum_context
from ._client import (
    _append_item,
    _Creator,
    _env_provide,
    _EnvProvider,
    _get_proxies,
    _Hooks,
    _recursive_copy,
    _remove_item,
    _Trie,
    _trie_copy,
    _verify_accept_kwargs,
    append_item,
    env_provide,
    get_proxies,
    recursive_copy,
    remove_item,
    trie_copy,
    unshare,
    verify_accept_kwargs,
)
from ._context import (
    _add_recursion_detection_header,
    _endpoint_uuid,
    add_recursion_detection_header,
    uuid_module,
)
from ._endpoint import (
    _get_provider_params,
    _Provider,
    _resolve_endpoint,
    _Resolver,
    _urljoin,
    provider_params,
    resolve_endpoint,
    urljoin,
)
from ._events import (
    _alias_event_name,
    _Aliaser,
    _aliaser_emit,
    _aliaser_until,
    _BaseClient,
    _emit_api_params,
    _Emitter,
    _emitter_inner,
    _hyphenize,
    _ServiceId,
    alias_event_name,
    aliaser_emit,
    aliaser_emit_until_response,
    emit_api_params,
    emitter_emit,
    hyphenize,
)
from ._httpsession import (
    DEFERRED_MANAGER,
    _Session,
    _session_close,
    _session_init,
    session_close,
    session_init,
)
from ._json import _handle_structure as _json_structure
from ._json import _JSONParser
from ._json import handle_structure as json_structure
from ._loader import _load_file, _Loader, load_file
from ._request import (
    Headers,
    HeadersDict,
    _body,
    _encode_headers,
    _Endpoint,
    _HeadersDict,
    _lowercase_dict,
    _prepare_headers,
    _Preparer,
    _Preparer_body,
    _response_init,
    encode_headers,
    lowercase_dict,
    prepare_body,
    prepare_headers,
    request_body,
    response_init,
)
from ._response import (
    _endpoint_needs_retry,
    _get_response,
    _needs_retry,
    _parse_shape,
    _RetryHandler,
    endpoint_needs_retry,
    get_response,
    needs_retry,
    parse_shape,
)
from ._ruleset import _Provider as _RulesetProvider
from ._ruleset import _provider_init, provider_init
from ._scoped import _create_client, _get_scoped_config, create_client, get_scoped_config
from ._sigv4 import (
    CLOCK,
    _add_auth,
    _canonical_headers,
    _headers_to_sign,
    _host_from_url,
    _payload,
    _signature,
    _signed_headers,
    add_auth,
    canonical_headers,
    headers_to_sign,
    host_from_url,
    payload,
    signature,
    signed_headers,
)
from ._timestamps import _parse_timestamp, parse_timestamp
from ._xml import _handle_structure, _node_tag, _XMLParser, handle_structure, node_tag

__all__ = ["CHECKED", "Headers", "HeadersDict", "install", "installed", "uninstall"]

log = logging.getLogger("greenfetch")

# botocore versions (major, minor) the parity suite passed on, inclusive. A new minor is added here
# after tests/test_headers_parity.py passes on it.
CHECKED = ((1, 36), (1, 43))

_said = False

# -- what install() sets: (object, attribute, botocore's own, greenfetch's) ------------------------

_PATCHES: tuple[tuple[Any, str, Any, Any], ...] = (
    *((module, "HTTPHeaders", HTTPHeaders, Headers) for module in (botocore.awsrequest, botocore.auth)),
    (botocore.awsrequest, "HeadersDict", _HeadersDict, HeadersDict),
    (botocore.parsers, "lowercase_dict", _lowercase_dict, lowercase_dict),
    (_Endpoint, "_encode_headers", _encode_headers, encode_headers),
    (_Preparer, "_prepare_headers", _prepare_headers, prepare_headers),
    (botocore.auth, "_host_from_url", _host_from_url, host_from_url),
    (botocore.auth.SigV4Auth, "headers_to_sign", _headers_to_sign, headers_to_sign),
    (botocore.auth.SigV4Auth, "signature", _signature, signature),
    (botocore.auth.SigV4Auth, "payload", _payload, payload),
    (botocore.auth.SigV4Auth, "canonical_headers", _canonical_headers, canonical_headers),
    (botocore.auth.SigV4Auth, "signed_headers", _signed_headers, signed_headers),
    (botocore.auth.SigV4Auth, "add_auth", _add_auth, add_auth),
    (botocore.awsrequest.AWSRequest, "body", _body, request_body),
    (botocore.awsrequest.AWSRequestPreparer, "_prepare_body", _Preparer_body, prepare_body),
    (_Resolver, "_get_provider_params", _get_provider_params, provider_params),
    (botocore.parsers.ResponseParser, "_parse_shape", _parse_shape, parse_shape),
    (_RetryHandler, "needs_retry", _needs_retry, needs_retry),
    (_Endpoint, "_get_response", _get_response, get_response),
    (_Endpoint, "_needs_retry", _endpoint_needs_retry, endpoint_needs_retry),
    (botocore.client, "resolve_checksum_context", _resolve_checksum_context, resolve_checksum_context),
    (_Aliaser, "emit", _aliaser_emit, aliaser_emit),
    (_BaseClient, "_emit_api_params", _emit_api_params, emit_api_params),
    (_Aliaser, "emit_until_response", _aliaser_until, aliaser_emit_until_response),
    (_Aliaser, "_alias_event_name", _alias_event_name, alias_event_name),
    (_Emitter, "_emit", _emitter_inner, emitter_emit),
    (_ServiceId, "hyphenize", _hyphenize, hyphenize),
    (botocore.endpoint, "uuid", _endpoint_uuid, uuid_module),
    (_Provider, "resolve_endpoint", _resolve_endpoint, resolve_endpoint),
    (botocore.awsrequest, "_urljoin", _urljoin, urljoin),
    (botocore.awsrequest.AWSResponse, "__init__", _response_init, response_init),
    (
        botocore.handlers,
        "add_recursion_detection_header",
        _add_recursion_detection_header,
        add_recursion_detection_header,
    ),
    (_Trie, "_recursive_copy", _recursive_copy, recursive_copy),
    (_Trie, "__copy__", _trie_copy, trie_copy),
    (_Trie, "append_item", _append_item, append_item),
    (_Trie, "remove_item", _remove_item, remove_item),
    (_Hooks, "_verify_accept_kwargs", _verify_accept_kwargs, verify_accept_kwargs),
    (_Creator, "_get_proxies", _get_proxies, get_proxies),
    (_EnvProvider, "provide", _env_provide, env_provide),
    (_Loader, "_load_file", _load_file, load_file),
    (botocore.parsers, "DEFAULT_TIMESTAMP_PARSER", _parse_timestamp, parse_timestamp),
    (_XMLParser, "_handle_structure", _handle_structure, handle_structure),
    (_XMLParser, "_node_tag", _node_tag, node_tag),
    (_JSONParser, "_handle_structure", _json_structure, json_structure),
    (_RuleSet, "evaluate", _evaluate, evaluate),
    # A session's pool manager built on its first read: the descriptor first, and left in place by
    # uninstall() (botocore's own __init__ fills the instance's _manager, which the descriptor never
    # shadows), so a session made while installed still builds its manager after.
    (_Session, "_manager", DEFERRED_MANAGER, DEFERRED_MANAGER),
    (_Session, "__init__", _session_init, session_init),
    (_Session, "close", _session_close, session_close),
    (_RulesetProvider, "__init__", _provider_init, provider_init),
    (botocore.session.Session, "create_client", _create_client, create_client),
    (botocore.session.Session, "get_scoped_config", _get_scoped_config, get_scoped_config),
)
# Handlers botocore registers by function when a session is made, from ``BUILTIN_HANDLERS``: (the
# list, botocore's handler, greenfetch's), swapped in the list's entries (a session made before
# install() keeps botocore's).
_HANDLERS: tuple[tuple[list[Any], Any, Any], ...] = (
    (botocore.handlers.BUILTIN_HANDLERS, _add_recursion_detection_header, add_recursion_detection_header),
)
# A patch checked on fewer versions than CHECKED: its first version. The endpoint plan follows
# botocore 1.40+, which calls a builtin that is callable and registers endpoint feature ids (1.36 does
# neither); checked on 1.40.0 and 1.43.117.
_SINCE = {provider_params: (1, 40)}
# A patch whose premise this botocore does not meet, whatever its version: add_auth restates botocore's
# with its clock, found in botocore's own add_auth (``_sigv4.CLOCK``).
_UNMET = frozenset() if CLOCK is not None else frozenset({add_auth})


def _applicable() -> list[tuple[Any, str, Any, Any]]:
    version = _version()
    return [
        patch for patch in _PATCHES if _SINCE.get(patch[3], CHECKED[0]) <= version and patch[3] not in _UNMET
    ]


def _version() -> tuple[int, int]:
    major, minor = botocore.__version__.split(".")[:2]
    return int(major), int(minor)


def checked(version: tuple[int, int] | None = None) -> bool:
    """Whether this botocore (or ``version``) is one the parity suite passed on."""
    low, high = CHECKED
    return low <= (version or _version()) <= high


def install() -> bool:
    """Make botocore use the adaptations where this botocore was checked; True if it does."""
    global _said
    if installed():
        return True
    if not checked():
        if not _said:
            _said = True
            log.info(
                "greenfetch: botocore %s is outside the versions its request-path adaptations were "
                "checked on (%d.%d-%d.%d): botocore's own code is used",
                botocore.__version__,
                *CHECKED[0],
                *CHECKED[1],
            )
        return False
    for owner, name, _, ours in _applicable():
        setattr(owner, name, ours)
    for entries, theirs, ours in _HANDLERS:
        _swap(entries, theirs, ours)
    return True


def _swap(entries: list[Any], old: Any, new: Any) -> None:
    for index, spec in enumerate(entries):
        if spec[1] is old:
            entries[index] = (spec[0], new, *spec[2:])


def installed() -> bool:
    return all(owner.__dict__.get(name) is ours for owner, name, _, ours in _applicable()) and all(
        any(spec[1] is ours for spec in entries) for entries, _, ours in _HANDLERS
    )


def uninstall() -> None:
    """botocore's own code again (the parity suite runs both ways)."""
    for owner, name, theirs, _ in _PATCHES:
        setattr(owner, name, theirs)
    for entries, theirs, ours in _HANDLERS:
        _swap(entries, ours, theirs)
    unshare()  # the tries copied while installed share nodes, which botocore's code would change
