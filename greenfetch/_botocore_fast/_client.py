"""A client's creation without its repeated work: the event emitter's copy (:func:`trie_copy`: the
session's handler trie shared until a client writes, :func:`recursive_copy` where a whole copy is made),
each handler's keyword check (:func:`verify_accept_kwargs`), the proxies read from the environment
(:func:`get_proxies`); docs/performance/client-and-parse.md, issue 24, "a botocore client's creation".

An inventory of every resource type makes one client per (service, region), ~1,300 for 4 regions, and
each client's creation repeated the same work: a copy of the session's handler trie (~375 nodes, each
``NodeList`` through ``copy.copy``), ``inspect.getfullargspec`` on each handler it registers, and four
walks of the whole ``os.environ`` for the proxies of its endpoint (two from Python 3.12).
"""

from __future__ import annotations

import copy
import os
import socket
import types
import urllib.request
import weakref
from typing import Any

import botocore.configprovider
import botocore.endpoint
import botocore.hooks
import botocore.utils

_Trie = botocore.hooks._PrefixTrie
_NodeList = botocore.hooks.NodeList
_Hooks = botocore.hooks.BaseEventHooks
_Creator = botocore.endpoint.EndpointCreator
_recursive_copy = _Trie._recursive_copy
_nodelist_copy = _NodeList.__copy__
_verify_accept_kwargs = _Hooks._verify_accept_kwargs
_get_proxies = _Creator._get_proxies
_accepts_kwargs = botocore.hooks.accepts_kwargs

# -- the handler trie's copy ------------------------------------------------------------------------
#
# Each client gets a copy of its session's emitter (``EventAliaser.__copy__`` ->
# ``HierarchicalEmitter.__copy__`` -> ``_PrefixTrie.__copy__``), so that a handler registered on one
# client never reaches another. botocore's ``_recursive_copy`` copies each node dict and each
# ``NodeList`` (its three lists) through ``isinstance`` tests and ``copy.copy``'s dispatch. This one
# makes the same dicts, with the same keys in the same order, and the same ``NodeList`` of new lists
# holding the same handlers in the same order: every list is new (nothing shared between the two
# tries), every handler the same object.


def recursive_copy(self: Any, node: dict[Any, Any]) -> Any:
    """``_PrefixTrie._recursive_copy`` for botocore's own trie and ``NodeList``; anything else (a
    subclass, a replaced ``NodeList.__copy__``) is copied by botocore's code."""
    if type(self) is not _Trie or _NodeList.__copy__ is not _nodelist_copy:
        return _recursive_copy(self, node)
    return _copy_node(node)


def _copy_node(node: dict[Any, Any]) -> dict[Any, Any]:
    copied = node.copy()  # the node's keys in its order; a value other than a node or NodeList is kept
    try:  # a trie node as append_item makes it (these three keys, nothing else): two values replaced
        chunk, values, children = copied["chunk"], copied["values"], copied["children"]
    except KeyError:
        chunk = children = None
    if len(copied) == 3 and type(children) is dict and (type(chunk) is str or chunk is None):
        if values is None:
            copied["children"] = {part: _copy_node(child) for part, child in children.items()}
            return copied
        if type(values) is _NodeList:
            first, middle, last = values
            if type(first) is list and type(middle) is list and type(last) is list:
                copied["values"] = _new(_NodeList, (first[:], middle[:], last[:]))
                copied["children"] = {part: _copy_node(child) for part, child in children.items()}
                return copied
    for key, value in copied.items():  # any other dict: values replaced in place (it keeps its size)
        kind = type(value)
        if kind is dict:
            copied[key] = _copy_node(value)
        elif kind is _NodeList:
            first, middle, last = value
            if type(first) is list and type(middle) is list and type(last) is list:
                copied[key] = _new(_NodeList, (first[:], middle[:], last[:]))
            else:
                copied[key] = copy.copy(value)
        elif isinstance(value, _NodeList):
            copied[key] = copy.copy(value)
        elif isinstance(value, dict):
            copied[key] = _copy_node(dict(value.items()))  # a plain dict of its items, as botocore makes
    return copied


_new = tuple.__new__  # what NodeList(a, b, c) does, without its Python-level __new__
_RECURSIVE_COPIES = (_recursive_copy, recursive_copy)
_prefix_search = _Trie.prefix_search


# -- the trie shared until written (copy on write) -----------------------------------------------
#
# The copy above still made every node of the trie for each client (~190 nodes, 1.6M instructions a
# client: 40% of its creation), and then the client changed three of them (it registers its signer's
# two handlers and its retry handler). ``trie_copy`` hands the copy the same root, and from then on
# neither trie changes a node the other can reach: ``append_item`` and ``remove_item`` first copy the
# nodes on the key's path that the trie does not own (each a new dict, a new children dict holding the
# same child nodes, a new ``NodeList`` of new lists), which from then on it owns, and change those. A
# trie owns every node until it is copied or made by a copy (``_owned`` has no entry for it: botocore's
# own code runs); afterwards, only the nodes it copied or made since. Reads (``prefix_search``) walk
# whatever nodes a trie reaches, shared or not: what each trie holds is what botocore's copies would
# hold (the same dicts by value, keys in the same order, the same handlers in the same order).

_trie_copy = _Trie.__copy__
_append_item = _Trie.append_item
_remove_item = _Trie.remove_item
# a copied or copying trie -> the nodes it owns (by id; the node kept, so no id is reused meanwhile)
_owned: weakref.WeakKeyDictionary[Any, dict[int, dict[str, Any]]] = weakref.WeakKeyDictionary()


def _ours(trie: Any) -> bool:
    """botocore's own trie, its own node lists and methods, holding nothing but its root."""
    cls = type(trie)
    return (
        cls is _Trie
        and _NodeList.__copy__ is _nodelist_copy
        and cls._recursive_copy in _RECURSIVE_COPIES
        and cls.prefix_search is _prefix_search
        and trie.__dict__.keys() == {"_root"}
    )


def trie_copy(self: Any) -> Any:
    """``_PrefixTrie.__copy__``: a trie on the same root, which from now on neither trie writes."""
    if not _ours(self):
        return _trie_copy(self)
    copied = object.__new__(_Trie)
    copied.__dict__["_root"] = self._root
    _owned[self] = {}
    _owned[copied] = {}
    return copied


def append_item(self: Any, key: str, value: Any, section: int = botocore.hooks._MIDDLE) -> None:
    """``_PrefixTrie.append_item``, the key's path first made the trie's own."""
    owned = _owning(self)
    if owned is None:
        return _append_item(self, key, value, section)  # type: ignore[no-any-return]
    node = _own_path(self, owned, key, make=True)
    if node["values"] is None:
        node["values"] = _NodeList([], [], [])
    node["values"][section].append(value)
    return None


def remove_item(self: Any, key: str, value: Any) -> None:
    """``_PrefixTrie.remove_item``, the key's path (as far as the trie holds it) first made the
    trie's own; then botocore's removal, which changes only that path."""
    owned = _owning(self)
    if owned is not None:
        _own_path(self, owned, key, make=False)
    return _remove_item(self, key, value)  # type: ignore[no-any-return]


def _owning(trie: Any) -> dict[int, dict[str, Any]] | None:
    """The nodes a sharing trie owns; None for a trie that owns every node it reaches (botocore's code
    changes it), which a sharing trie changed by hand becomes first (``_unshare``)."""
    owned = _owned.get(trie)
    if owned is not None and not _ours(trie):
        _unshare(trie)
        return None
    return owned


def _own_path(trie: Any, owned: dict[int, dict[str, Any]], key: str, *, make: bool) -> dict[str, Any]:
    """The trie's own copy of each node on ``key``'s path, from the root (a missing one made with
    ``make``, else the walk stops there); the last node reached."""
    node = _own_root(trie, owned)
    for part in key.split("."):
        children = node["children"]
        child = children.get(part)
        if child is None:
            if not make:
                break
            child = children[part] = {"chunk": part, "values": None, "children": {}}
            owned[id(child)] = child
        elif id(child) not in owned:
            child = children[part] = _own(owned, child)
        node = child
    return node


def _unshare(trie: Any) -> None:
    """The trie's own copy of every node it reaches (botocore's code, which changes nodes in place,
    runs on it from now on: a trie changed by hand, or ``unshare`` at ``uninstall()``)."""
    trie.__dict__["_root"] = _copy_node(trie.__dict__["_root"])
    _owned.pop(trie, None)


def unshare() -> None:
    """Every trie that shares nodes made the owner of all it reaches (``uninstall()``: botocore's
    ``append_item`` and ``remove_item`` change nodes in place)."""
    for trie in list(_owned.keys()):
        _unshare(trie)


def _own_root(trie: Any, owned: dict[int, dict[str, Any]]) -> dict[str, Any]:
    root: dict[str, Any] = trie._root
    if id(root) not in owned:
        root = trie.__dict__["_root"] = _own(owned, root)
    return root


def _own(owned: dict[int, dict[str, Any]], node: dict[str, Any]) -> dict[str, Any]:
    """A node the trie may change: its keys in their order, a children dict of its own holding the same
    child nodes, a ``NodeList`` of new lists holding the same handlers."""
    copied = node.copy()
    copied["children"] = dict(node["children"])
    values = node["values"]
    if values is not None:
        first, middle, last = values
        copied["values"] = _new(_NodeList, (first[:], middle[:], last[:]))
    owned[id(copied)] = copied
    return copied


# -- a handler's keyword check ----------------------------------------------------------------------
#
# ``register`` checks that each handler accepts ``**kwargs`` with ``inspect.getfullargspec``
# (~10 µs), for every handler every client registers, most of them the same functions each time. The
# answer "accepts" is remembered per function (a bound method's: its function's, which is what
# ``getfullargspec`` reads for it) with the code object it was found for, and used while the function
# has that code and none of the attributes ``inspect`` reads before it (``__signature__``,
# ``_partialmethod``, ``__text_signature__``). Any other callable, a function that does not accept
# them (botocore's ``ValueError``) or a replaced ``accepts_kwargs`` goes through botocore's code.

_ACCEPTS: weakref.WeakKeyDictionary[types.FunctionType, types.CodeType] = weakref.WeakKeyDictionary()
_READ_FIRST = frozenset({"__signature__", "_partialmethod", "__text_signature__"})


def verify_accept_kwargs(self: Any, func: Any) -> Any:
    """``BaseEventHooks._verify_accept_kwargs``, botocore's answer remembered per handler function."""
    function = func.__func__ if type(func) is types.MethodType else func
    if type(function) is not types.FunctionType or botocore.hooks.accepts_kwargs is not _accepts_kwargs:
        return _verify_accept_kwargs(self, func)
    code = function.__code__
    if _ACCEPTS.get(function) is code and _READ_FIRST.isdisjoint(function.__dict__):
        return None
    answer = _verify_accept_kwargs(self, func)  # raises if it does not accept them
    if answer is None and function.__code__ is code and _READ_FIRST.isdisjoint(function.__dict__):
        _ACCEPTS[function] = code  # None: accepts_kwargs answered (False is inspect's TypeError)
    return answer


# -- the proxies of an endpoint ---------------------------------------------------------------------
#
# ``EndpointCreator._get_proxies`` asks ``get_environ_proxies(url)``: whether the URL's host bypasses
# the proxies (``should_bypass_proxies``: ``proxy_bypass_environment`` on the URL's netloc, which
# reads the proxy variables with ``getproxies_environment``), then the proxies (``getproxies``, the
# same function again): two walks of ``os.environ`` each, reading every variable (~290 reads of it a
# client; from Python 3.12 one walk of its names each, reading the ``*_proxy`` ones). The variables'
# answer depends on the environment alone, so it is remembered while the environment is the one it
# was read from: every name and value, in the same order (a proxy variable given in two cases is
# decided by order). The bypass is asked of ``proxy_bypass_environment`` itself with those proxies (its
# ``proxies`` argument, read as it reads its own), on ``urlparse(url).netloc`` as botocore asks, with
# the same errors caught; each caller gets a dict of its own, as from ``getproxies``. Outside
# botocore's reading of the environment (another ``os.environ``, a replaced function on the way, a
# platform whose proxies are not read from the environment), botocore's code runs.


class _Proxies:
    # (the environment's store as read, its names in order, the proxies read from it): one attribute,
    # replaced whole, so a thread never sees one environment's names with another's proxies.
    read: tuple[dict[Any, Any], list[Any], dict[str, str]] | None = None


_get_environ_proxies = botocore.utils.get_environ_proxies
_should_bypass_proxies = botocore.utils.should_bypass_proxies
_urlparse = botocore.utils.urlparse
_bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # POSIX, untyped
_read = urllib.request.getproxies_environment


def _environment_only() -> bool:
    utils = botocore.utils
    return (
        type(os.environ) is os._Environ
        and botocore.endpoint.get_environ_proxies is _get_environ_proxies
        and utils.should_bypass_proxies is _should_bypass_proxies
        and utils.urlparse is _urlparse
        and utils.getproxies is _read
        and utils.proxy_bypass is _bypass
        and urllib.request.getproxies_environment is _read
    )


def _environment_proxies() -> dict[str, str]:
    """``getproxies_environment()``, read again only when the environment changed."""
    data = os.environ._data  # type: ignore[attr-defined]  # os._Environ's store: encoded names and values
    read = _Proxies.read
    if read is not None and read[0] == data and read[1] == list(data):
        return read[2]
    environ, names = dict(data), list(data)
    proxies = _read()
    if data == environ and list(data) == names:  # not changed by another thread while it was read
        _Proxies.read = (environ, names, proxies)
    return proxies


def get_proxies(self: Any, url: Any) -> Any:
    """``EndpointCreator._get_proxies``: the environment's proxy variables read once while it is
    unchanged, the URL's bypass asked of urllib with them."""
    if type(self)._get_proxies is not get_proxies or not _environment_only():
        return _get_proxies(self, url)
    proxies = _environment_proxies()
    try:
        if _bypass(_urlparse(url).netloc, proxies):  # should_bypass_proxies, with the proxies read
            return {}
    except (TypeError, socket.gaierror):
        pass
    return dict(proxies)


# -- a configuration variable from the environment --------------------------------------------------
#
# A client's creation asks botocore's config chain ~130 times for a variable (region, retries, the
# endpoint's and checksum's settings...), each asking ``name in os.environ`` first, and for a name that
# is not set (nearly all) ``os.environ``'s ``__contains__`` (``Mapping``'s) raises and catches a
# ``KeyError`` in ``__getitem__``: ~1.5 µs. For ``os.environ`` itself (its class's own ``__getitem__``)
# and a str name, ``provide`` below looks the encoded name up in its store as ``__getitem__`` does and
# decodes the value it finds as ``__getitem__`` does: the same value or None. Any other mapping or
# name goes through botocore's code. The encoded name (``encodekey``: a Python function, the codec's
# lookup, ~40% of a lookup) is remembered per name while ``os.environ.encodekey`` is the function it
# was found with (it encodes with the file system encoding it was made with: a pure function of the
# name); botocore asks ~60 names.

_EnvProvider = botocore.configprovider.EnvironmentProvider
_env_provide = _EnvProvider.provide
_environ_getitem = os._Environ.__getitem__
_environ_contains = os._Environ.__contains__
_ENCODED: dict[str, bytes] = {}  # name -> _encodekey(name)
_encodekey = os.environ.encodekey  # os._Environ's, set when it is made


def env_provide(self: Any) -> Any:
    """``EnvironmentProvider.provide``: ``os.environ``'s value for the name, or None."""
    env, name = self._env, self._name
    if (
        type(env) is not os._Environ
        or type(name) is not str
        or os._Environ.__getitem__ is not _environ_getitem
        or os._Environ.__contains__ is not _environ_contains
    ):
        return _env_provide(self)
    encode = env.encodekey
    key = _ENCODED.get(name) if encode is _encodekey else None
    if key is None:
        key = encode(name)
        if encode is _encodekey and len(_ENCODED) < 4096:
            _ENCODED[name] = key
    value = env._data.get(key)  # type: ignore[attr-defined]  # as os._Environ.__getitem__
    if value is None:
        return None
    return env.decodevalue(value)


__all__ = ["env_provide", "get_proxies", "recursive_copy", "verify_accept_kwargs"]
