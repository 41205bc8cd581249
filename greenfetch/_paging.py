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

import copy
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jmespath
from botocore.utils import merge_dicts, set_value_from_jmespath

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
        """botocore's ``ClientContext`` with a deep copy that copies what it holds (its ``features``, a set
        of strings) instead of ``copy.deepcopy``'s walk of a dataclass: botocore copies the context at
        every call made inside one (``_make_api_call``), and the walk was most of what a one-page call
        still cost (~40k instructions a call)."""

        def __deepcopy__(self, memo: dict[int, Any]) -> _PagedContext:
            return _PagedContext(features=set(self.features))

    # the copy above is the whole of a ClientContext only while ``features`` is all it has
    _CHEAP_COPY = [f.name for f in dataclasses.fields(_context.ClientContext)] == ["features"]


def _page(method: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """One request as botocore's ``PageIterator._make_request`` makes it: in a context of its own (a
    copy of the current one, or a new one) with the ``PAGINATOR`` feature registered, put back after;
    on a botocore without feature contexts, as that botocore's iterator makes it: a plain call."""
    if _context is None:
        return method(**kwargs)
    current = _context.get_context()
    if current is not None:
        made = copy.deepcopy(current)
    else:
        made = _PagedContext() if _CHEAP_COPY else _context.ClientContext()
    token = _context.set_context(made)
    try:
        register_feature_id("PAGINATOR")
        return method(**kwargs)
    finally:
        _context.reset_context(token)


def _getter(expression: str) -> tuple[str, Callable[[Any], Any]]:
    """``expression`` and a function that searches a value with it, as ``jmespath.compile(e).search``
    does: a chain of plain fields is ``.get`` after ``.get`` (a value without ``.get`` gives None)."""
    compiled = jmespath.compile(expression)
    node = compiled.parsed
    nodes = node["children"] if node["type"] == "subexpression" else [node]
    if not all(n["type"] == "field" and not n["children"] for n in nodes):
        return expression, compiled.search
    names = tuple(n["value"] for n in nodes)

    def get(value: Any) -> Any:
        for name in names:
            try:
                value = value.get(name)
            except AttributeError:
                return None
        return value

    return expression, get


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class Plan:
    """One paginator config, read as botocore's ``Paginator`` reads it, its expressions made once."""

    __slots__ = ("_input", "_more", "_non_aggregate", "_output", "_results")

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
        page = _page(method, dict(params))
        if self._only_page(page, max_items):
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
        if self._more is not None and not self._more(page):
            return True
        return not any(get(page) for get in self._output)

    def _one_page_result(self, page: dict[str, Any]) -> dict[str, Any]:
        """``build_full_result`` over one page, no resume token."""
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
        non_aggregate: dict[str, Any] = {}
        for expression, get in self._non_aggregate:
            set_value_from_jmespath(non_aggregate, expression, get(page))
        merge_dicts(result, non_aggregate)
        return result
