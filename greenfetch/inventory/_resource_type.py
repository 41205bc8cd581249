"""A resource type: the catalog's row (``ResourceType``) and its detail steps (``Detail``).

A row says which call lists the type, where the items sit in the response (a JMESPath expression),
whether it is regional or global, which field identifies an item, and optional detail steps (one
call per item, run in parallel, merged into the item: S3 buckets get their region and an access
check). Adding a type is adding a row; nothing branches on type names.

Two more columns serve the SQLite sink and ``greenfetch diff``: ``arn`` names the field holding the
ARN where the API returns one (the resource id is then the ARN, else the ``id_field``), and
``volatile`` names fields that change between two fetches of an unchanged resource (a restore
window that moves every five minutes, bytes stored, an alarm's last evaluation), which a diff ignores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._paging import _getter

__all__ = ["ACCOUNT_PLACEHOLDER", "Detail", "GLOBAL", "ResourceType", "TIERS"]

GLOBAL = "global"
ACCOUNT_PLACEHOLDER = "{account}"  # a parameter value the fetch replaces with the account's id
TIERS = ("core", "generated", "denied")


@dataclass(frozen=True)
class Detail:
    """One call per item: each ``params`` value is a JMESPath into the item (``{"Bucket": "Name"}``)
    or a template of them (``"arn:aws:s3:::{Name}"``; ``{account}`` and ``{region}`` are the
    record's where the item has no such field). On success the item gets ``into`` = the response
    at JMESPath ``pick`` (or True when ``pick`` is None); on failure ``into`` = ``fail_value`` and
    ``<into>Error`` = the AWS error code. ``region_from`` names an item field holding the region to
    call (S3 objects live in theirs); ``paginate`` follows the operation's paginator."""

    operation: str
    params: Mapping[str, str]
    into: str
    pick: str | None = None
    default: Any = None
    fail_value: Any = None
    region_from: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    paginate: bool = False


# a type's ``items`` expression -> ``jmespath.search`` with it (a chain of plain fields read with
# ``dict.get``, as JMESPath reads it; any other expression compiled once)
_SEARCHES: dict[str, Any] = {}


@dataclass(frozen=True)
class ResourceType:
    name: str
    service: str
    operation: str
    items: str  # JMESPath into the (merged) response
    id_field: str | None  # None: the item itself is the id (a name or URL string); "": no id field
    params: Mapping[str, Any] = field(default_factory=dict)
    paginate: bool = True
    scope: str = "regional"  # or GLOBAL: called once per account, recorded as region "global"
    api_region: str = "us-east-1"  # where a global type's API is called
    keep: tuple[str, ...] = ()  # when set, only these fields are kept (Secrets Manager: names only)
    details: tuple[Detail, ...] = ()
    ssm_service: str | None = None  # name in SSM's global-infrastructure parameters, if not ``service``
    arn: str | None = None  # the item's ARN field, where the API returns one (see resource_id)
    volatile: tuple[str, ...] = ()  # dotted paths a diff ignores: they move without the resource changing
    tier: str = "core"  # core, generated, or denied (never called; see deny_reason)
    deny_reason: str | None = None
    parent: str | None = None  # a child type: listed once per item of this type (same account and region)
    each: Mapping[str, str] = field(default_factory=dict)  # child parameter -> JMESPath into a parent item
    parent_type: ResourceType | None = field(default=None, compare=False, repr=False)  # the parent, resolved
    id_per_parent: bool = False  # the id is unique only among one parent's items: see resource_id

    @property
    def is_global(self) -> bool:
        return self.scope == GLOBAL

    @property
    def depth(self) -> int:
        """How many parent types this type has above it (0: none)."""
        return 0 if self.parent_type is None else 1 + self.parent_type.depth

    @property
    def denied(self) -> bool:
        return self.tier == "denied"

    def extract(self, response: Any) -> list[Any]:
        search = _SEARCHES.get(self.items)  # jmespath.search parses and makes an interpreter per call
        if search is None:
            search = _SEARCHES.setdefault(self.items, _getter(self.items)[1])
        found = search(response) or []
        keep = self.keep
        if keep:  # loops, not a dict comprehension an item (a function made and called each: ~4k)
            kept = []
            for item in found:
                fields = {}
                for k in keep:
                    if k in item:
                        fields[k] = item[k]
                kept.append(fields)
            found = kept
        return list(found)

    def id_of(self, item: Any) -> str:
        if self.id_field is None or not isinstance(item, Mapping):
            return str(item)
        own = str(item.get(self.id_field, ""))
        return f"{item.get('parent')}/{own}" if self.id_per_parent else own

    def resource_id(self, item: Any) -> str:
        """The stable id of an item in the SQLite sink: its ARN where the type declares one and the
        item carries it, else ``id_of`` (the id field, or the item itself for name/URL lists). A child
        type whose ids are unique only within a parent (a policy attached to two roles) prefixes the
        parent's: ``<parent resource id>/<id>``."""
        if self.arn is not None and isinstance(item, Mapping) and item.get(self.arn):
            own = str(item[self.arn])
            return f"{item.get('parent')}/{own}" if self.id_per_parent else own
        return self.id_of(item)

    def describe(self) -> dict[str, Any]:
        id_field = "(item)" if self.id_field is None else (self.id_field or "(none)")
        return {
            "name": self.name,
            "service": self.service,
            "operation": self.operation,
            "scope": self.scope,
            "items": self.items,
            "id_field": id_field,
            "resource_id": ("parent/" if self.id_per_parent else "") + (self.arn or id_field),
            "tier": self.tier,
            "deny_reason": self.deny_reason,
            "paginate": self.paginate,
            "params": dict(self.params),
            "api_region": self.api_region,
            "details": ",".join(d.operation for d in self.details),
            "parent": self.parent,
            "each": dict(self.each),
        }
