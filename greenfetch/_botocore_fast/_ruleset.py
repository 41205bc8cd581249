"""One parsed endpoint ruleset per ruleset: a client's ``EndpointProvider`` parses its service's ruleset
(``RuleSet``: a rule object per rule and condition, a parameter definition per parameter, ~400k
instructions a client, 8% of its creation) from the same data every client of the service is given.
docs/performance/client-and-parse.md, issue 24, "a botocore client's creation", part 2.

botocore's loader hands every client of a service the same ruleset dict and every client the same
partitions dict (its instance cache), and a ``RuleSet`` is a pure function of the two: botocore never
changes one after it is made (its evaluation writes only to copies of the call's parameters). So an
``EndpointProvider`` made from the same two objects as an earlier, still alive, one gets that one's
``RuleSet``: the clients of a service in four regions share one parse (and its memory) instead of
four. The ruleset is held weakly (``_SHARED``), keyed by the two objects' ids; it holds the two
itself (``_greenfetch_source``), so neither id can be reused while the entry lives, and each hit is
checked against them by identity. The premise, as for the service model greenfetch already shares per
service (``greenfetch/_clients.py``): nobody changes the loader's data in place (botocore's other
clients would see that change half-way).

Only ``EndpointProvider`` itself, with botocore's ``RuleSet`` (its class and ``__init__``), is made
so: anything else runs botocore's ``__init__``.
"""

from __future__ import annotations

import inspect
import weakref
from typing import Any

import botocore.endpoint_provider

_Provider = botocore.endpoint_provider.EndpointProvider
_RuleSet = botocore.endpoint_provider.RuleSet
_provider_init = _Provider.__init__
_ruleset_init = _RuleSet.__init__
# Whether this botocore's provider takes the parameters S3 resolves without (``excluded_params``:
# 1.43 does, 1.36 does not): the one argument it may be given past the two.
_EXCLUDES = "excluded_params" in inspect.signature(_provider_init).parameters

_SHARED: weakref.WeakValueDictionary[tuple[int, int], Any] = weakref.WeakValueDictionary()


def provider_init(self: Any, ruleset_data: Any, partition_data: Any, *args: Any, **kwargs: Any) -> None:
    """``EndpointProvider.__init__``, its ``RuleSet`` shared with providers of the same data."""
    if (
        type(self) is not _Provider
        or botocore.endpoint_provider.RuleSet is not _RuleSet
        or _RuleSet.__init__ is not _ruleset_init
        or len(args) + len(kwargs) > _EXCLUDES
        or (kwargs and "excluded_params" not in kwargs)
    ):
        _provider_init(self, ruleset_data, partition_data, *args, **kwargs)
        return
    self.ruleset = shared_ruleset(ruleset_data, partition_data)
    if _EXCLUDES:  # as botocore's, from here
        excluded_params = args[0] if args else kwargs.get("excluded_params")
        self._excluded_params = excluded_params or frozenset()


def shared_ruleset(ruleset_data: Any, partition_data: Any) -> Any:
    """``RuleSet(**ruleset_data, partitions=partition_data)``, or the one made from these two objects
    while it lives."""
    key = (id(ruleset_data), id(partition_data))
    ruleset = _SHARED.get(key)
    if ruleset is not None:
        source = ruleset.__dict__.get("_greenfetch_source")
        if source is not None and source[0] is ruleset_data and source[1] is partition_data:
            return ruleset
    ruleset = _RuleSet(**ruleset_data, partitions=partition_data)
    ruleset._greenfetch_source = (ruleset_data, partition_data)
    _SHARED[key] = ruleset
    return ruleset


__all__ = ["provider_init", "shared_ruleset"]
