"""botocore's ``paginate(...).build_full_result()``, without its page iterator when one page is all there is.

Most calls an inventory pages through answer in one page. For those botocore still builds a
``Paginator`` (a JMESPath expression compiled per token and result key), a ``PageIterator`` (token
encoder and decoder) and a generator, and searches each page with a fresh JMESPath interpreter per
expression: about as much work again as the engine's own path for the call. A ``Plan`` is made once per
paginator config (botocore's loader hands every client the same dict): its expressions compiled once,
the plain ones (``Foo``, ``Foo.Bar``: JMESPath fields, nothing else) read with ``dict.get`` as
JMESPath's field lookup does, any other kept as JMESPath.

The first page is asked for as botocore's page iterator asks (the same keyword arguments, under the
same ``PAGINATOR`` user-agent feature context). When it is the whole result (no next token, or
``more_results`` false, and ``MaxItems`` not exceeded), the result is built as ``build_full_result``
builds it from one page (the result keys, the non-aggregate keys, no ``NextToken``), with botocore's own
``set_value_from_jmespath`` and ``merge_dicts``. Otherwise botocore's iterator takes over, handed the
page already fetched in place of its first request: every later page, ``MaxItems`` truncation and the
resume token are botocore's.
"""

from __future__ import annotations

import contextvars
import copy
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jmespath
from botocore.utils import merge_dicts, set_value_from_jmespath, validate_jmespath_for_set

try:
    from botocore import context as _context
    from botocore.useragent import register_feature_id
except ImportError:  # a botocore without user-agent feature contexts (1.36): its page iterator sets none
    _context = None

__all__ = ["Plan", "plan"]

_plans: dict[int, tuple[Mapping[str, Any], Plan | None]] = {}  # id(config) -> (config, its plan)


def plan(config: Mapping[str, Any]) -> Plan | None:
    """The plan for one operation's paginator config (None: a config this module does not read; the
    caller then uses botocore's paginator). Kept per config object, which botocore's loader shares."""
    found = _plans.get(id(config))
    if found is not None and found[0] is config:
        return found[1]
    try:
        made: Plan | None = Plan(config)
    except Exception:  # a config botocore may read differently: leave it all to botocore  # noqa: BLE001
        made = None
    _plans[id(config)] = (config, made)  # the config is held, so its id is not reused while cached
    return made


if _context is not None:

    class _PagedContext(_context.ClientContext):  # type: ignore[misc]  # botocore ships no types
        """The context of one paginated request, made for it alone (``_page``) and dropped after it.
        botocore copies the current context at every call made inside one (``_make_api_call``), so
        that what the call registers does not reach its caller's; this one has no other user, so the
        call takes it as its own: its first copy is itself. (``copy.deepcopy``'s walk of the dataclass,
        then a copy of its ``features``, were most of what a one-page call still cost.) A call made
        inside that one (an AssumeRole as the credentials refresh) copies it, as botocore would."""

        _taken = False  # the first copy (the call's own) handed out

        def __deepcopy__(self, memo: dict[int, Any]) -> _PagedContext:
            if not self._taken:
                self._taken = True
                return self
            return _PagedContext(set(self.features))

    def _paginator_features() -> frozenset[str]:
        """The feature ids ``register_feature_id("PAGINATOR")`` puts in a new context (botocore maps
        the name to its short id), found once by doing it."""
        token = _context.set_context(_context.ClientContext())
        try:
            register_feature_id("PAGINATOR")
            return frozenset(_context.get_context().features)
        finally:
            _context.reset_context(token)

    _PAGINATOR = _paginator_features()
    # a fresh context of the ``PAGINATOR`` feature is the whole of what ``_page`` makes only while
    # ``features`` is all a ClientContext has (else: a new ClientContext and botocore's registration)
    _CHEAP_COPY = [f.name for f in dataclasses.fields(_context.ClientContext)] == ["features"]
    # the variable botocore's get_context, set_context and reset_context read and set (each a Python
    # call around one method of it); botocore's own functions where it is not one
    _var: Any = getattr(_context, "_context", None)
    if not isinstance(_var, contextvars.ContextVar):
        _CHEAP_COPY = False


def _page(method: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    """One request as botocore's ``PageIterator._make_request`` makes it: in a context of its own (a
    copy of the current one, or a new one) with the ``PAGINATOR`` feature registered, put back after;
    on a botocore without feature contexts, as that botocore's iterator makes it: a plain call."""
    if _context is None:
        return method(**kwargs)
    current = _var.get(None)  # get_context()
    if current is None and _CHEAP_COPY:  # the common case: a new context holding the feature
        token = _var.set(_PagedContext(set(_PAGINATOR)))  # set_context
        try:
            return method(**kwargs)
        finally:
            _var.reset(token)  # reset_context
    made = copy.deepcopy(current) if current is not None else _context.ClientContext()
    token = _context.set_context(made)
    try:
        register_feature_id("PAGINATOR")
        return method(**kwargs)
    finally:
        _context.reset_context(token)


def _fields(expression: str) -> tuple[str, ...] | None:
    """The names of a chain of plain fields (``Foo``, ``Foo.Bar``), as JMESPath parses it; else None."""
    node = jmespath.compile(expression).parsed
    nodes = node["children"] if node["type"] == "subexpression" else [node]
    if not all(n["type"] == "field" and not n["children"] for n in nodes):
        return None
    return tuple(n["value"] for n in nodes)


def _getter(expression: str) -> tuple[str, Callable[[Any], Any]]:
    """``expression`` and a function that searches a value with it, as ``jmespath.compile(e).search``
    does: a chain of plain fields is ``.get`` after ``.get`` (a value without ``.get`` gives None)."""
    names = _fields(expression)
    if names is None:
        return expression, jmespath.compile(expression).search

    def get(value: Any) -> Any:
        for name in names:
            try:
                value = value.get(name)
            except AttributeError:
                return None
        return value

    return expression, get


def _settable(expression: str) -> bool:
    """Whether botocore's ``set_value_from_jmespath`` takes ``expression`` (it refuses some names)."""
    try:
        validate_jmespath_for_set(expression)
    except Exception:  # noqa: BLE001  (botocore's InvalidExpressionError: its general path raises it)
        return False
    return True


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class Plan:
    """One paginator config, read as botocore's ``Paginator`` reads it, its expressions made once."""

    __slots__ = ("_input", "_more", "_non_aggregate", "_only", "_output", "_results")

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._output = [_getter(e)[1] for e in _listed(config["output_token"])]
        self._input = _listed(config["input_token"])
        more = config.get("more_results")
        self._more = _getter(more)[1] if more is not None else None
        self._non_aggregate = [_getter(e) for e in config.get("non_aggregate_keys", [])]
        results = config.get("result_key")
        if results is None:  # botocore's iterator fails on such a config; let it
            raise ValueError("no result_key")
        self._results = [_getter(e) for e in _listed(results)]
        # one result key that is one plain field (``TableNames``), no non-aggregate keys: the one page's
        # result is that field alone, as ``set_value_from_jmespath`` of a plain name sets it (most configs)
        self._only: str | None = None
        if len(self._results) == 1 and not self._non_aggregate:
            expression = self._results[0][0]
            if _fields(expression) == (expression,) and _settable(expression):
                self._only = expression  # read with ``page.get``, set as ``result[expression]``

    def full_result(
        self,
        method: Callable[..., Any],
        params: Mapping[str, Any],
        max_items: int | None,
        paginator: Callable[[], Any],
    ) -> dict[str, Any]:
        """``paginator().paginate(**params, PaginationConfig=...).build_full_result()``, the same value
        (``paginator`` is called only when the first page is not the whole result)."""
        if max_items is not None:
            max_items = int(max_items)
        page = _page(method, params)
        only = self._only
        if only is not None and isinstance(page, dict):  # _only_page and _one_page_result for one name
            found = page.get(only)
            if found is None:
                if (max_items is None or max_items >= 0) and self._ends(page):
                    return {}
            elif isinstance(found, list) and (max_items is None or len(found) <= max_items):
                if self._ends(page):
                    return {only: found}
        elif self._only_page(page, max_items):
            return self._one_page_result(page)
        pages = paginator().paginate(
            **params, PaginationConfig={"MaxItems": max_items} if max_items is not None else {}
        )
        first: list[Any] = [page]

        def make_request(kwargs: dict[str, Any], _later: Callable[..., Any] = pages._make_request) -> Any:
            return first.pop() if first else _later(kwargs)

        pages._make_request = make_request  # the page fetched above stands for the iterator's first request
        return pages.build_full_result()  # type: ignore[no-any-return]  # botocore ships no types

    def _only_page(self, page: Any, max_items: int | None) -> bool:
        """Whether botocore's iterator would stop after this first page without cutting it."""
        if not isinstance(page, dict):
            return False
        found = self._results[0][1](page)
        if found is None:
            found = []
        elif not isinstance(found, list):  # len() of a string or a map: botocore's to judge
            return False
        if max_items is not None and len(found) > max_items:
            return False  # truncated, with a resume token
        return self._ends(page)

    def _ends(self, page: dict[str, Any]) -> bool:
        """Whether botocore's iterator would ask for no page after this one (no more results, or no
        next token)."""
        if self._more is not None and not self._more(page):
            return True
        for get in self._output:
            if get(page):
                return False
        return True

    def _one_page_result(self, page: dict[str, Any]) -> dict[str, Any]:
        """``build_full_result`` over one page, no resume token."""
        # the non-aggregate keys first: botocore's iterator records them as it yields the first page,
        # before ``build_full_result`` reads the result keys (an error in either raises the first one)
        non_aggregate: dict[str, Any] = {}
        for expression, get in self._non_aggregate:
            set_value_from_jmespath(non_aggregate, expression, get(page))
        result: dict[str, Any] = {}
        for expression, get in self._results:
            value = get(page)
            if value is None:
                continue
            existing = get(result)
            if existing is None:
                set_value_from_jmespath(result, expression, value)
            elif isinstance(value, list):
                existing.extend(value)
            elif isinstance(value, (int, float, str)):
                set_value_from_jmespath(result, expression, existing + value)
        merge_dicts(result, non_aggregate)
        return result
