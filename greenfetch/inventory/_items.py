"""What the fetch does to a type's parameters and items: ``{account}`` in a type's parameters, a
detail call's parameters from an item, a detail's answer merged into its item, tags joined onto items."""

from __future__ import annotations

from typing import Any

import jmespath

from .._models import Result
from ._catalog import ACCOUNT_PLACEHOLDER, Detail, ResourceType
from ._overlay import template_fields


def _params(params: Any, account: str) -> Any:
    """A type's parameters for one account: ``{account}`` anywhere becomes its id (QuickSight,
    S3 Control and Budgets take the account id as a parameter)."""
    if type(params) is dict and not params:  # most list calls: a new empty dict, as the walk below makes
        return {}
    if params == ACCOUNT_PLACEHOLDER:
        return account
    if isinstance(params, dict):
        return {k: _params(v, account) for k, v in params.items()}
    if isinstance(params, list):
        return [_params(v, account) for v in params]
    return params


_COMPILED: dict[str, Any] = {}


def _search(expression: str, data: Any) -> Any:
    compiled = _COMPILED.get(expression)
    if compiled is None:
        compiled = _COMPILED[expression] = jmespath.compile(expression)
    return compiled.search(data)


def _detail_param(spec: str, item: Any, where: dict[str, Any]) -> Any:
    """A detail parameter from the item: a JMESPath (``Name``, ``@``), or a template of them
    (``arn:aws:s3:::{Name}``; ``{account}`` and ``{region}`` are the record's unless the item has
    such a field). None when the item lacks a field the parameter needs (the call then fails for
    that item alone, if the parameter is required)."""
    fields = template_fields(spec)
    if fields is None:
        return _search(spec, item)
    out = spec
    for name in fields:
        value = _search(name, item)
        if value is None:
            value = where.get(name)
        if value is None:
            return None
        out = out.replace("{" + name + "}", str(value))
    return out


_TAG_FIELDS = ("Tags", "tags", "TagList", "TagSet", "tagList")


def _tag_map(tags: Any) -> dict[str, str]:
    """``[{"Key": k, "Value": v}]`` (any case), or a ``{k: v}`` map, as one ``{k: v}`` map."""
    if isinstance(tags, dict):
        return {str(k): "" if v is None else str(v) for k, v in tags.items()}
    out: dict[str, str] = {}
    for tag in tags if isinstance(tags, list) else ():
        if isinstance(tag, dict):
            key = tag.get("Key", tag.get("key"))
            if key is not None:
                value = tag.get("Value", tag.get("value"))
                out[str(key)] = "" if value is None else str(value)
    return out


def _join_tags(rtype: ResourceType, items: list[Any], tagged: dict[str, dict[str, str]] | None) -> None:
    """Each object item gets ``tags``: its own tags (where its API returns them) with the tagging
    API's for its ARN over them. An item with neither an ARN nor tags of its own is left as it is
    (nothing is known about its tags); one with an ARN the tagging API does not list gets ``{}``."""
    for item in items:
        if not isinstance(item, dict):
            continue
        own = next((item[f] for f in _TAG_FIELDS if f in item), None)
        rid = str(item.get(rtype.arn) or "") if rtype.id_per_parent else rtype.resource_id(item)
        arn = rid if rid.startswith("arn:") else None
        if own is None and arn is None:
            continue
        item["tags"] = {**_tag_map(own), **((tagged or {}).get(arn, {}) if arn else {})}


def _merge(item: dict[str, Any], detail: Detail, result: Result) -> None:
    if result.ok:
        value = True if detail.pick is None else jmespath.search(detail.pick, result.result)
        item[detail.into] = detail.default if value is None else value
    else:
        item[detail.into] = detail.fail_value
        item[f"{detail.into}Error"] = result.error_code
