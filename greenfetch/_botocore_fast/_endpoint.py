"""The endpoint ruleset's parameters from a plan made once per operation (docs/performance.md, issue 24
part 4): :func:`provider_params`."""

from __future__ import annotations

from typing import Any

import botocore.regions

# -- endpoint ruleset parameters (issue 24, part 4) ----------------------------------------------
#
# The endpoint ruleset's answer is cached by botocore (``EndpointProvider.resolve_endpoint`` is an LRU
# keyed by the parameters), but the parameters are gathered again for every call: for each of the
# ruleset's parameters (9 for DynamoDB, 20 for S3) four instance-cached lookups (static context,
# operation member, operation context path, client context) and a builtin name checked against the
# enum's members. What each lookup reads from the operation and the client is the same every call, so
# it is worked out once per operation (a plan) and the call reads only the values.

_Resolver = botocore.regions.EndpointRulesetResolver
_get_provider_params = _Resolver._get_provider_params
_BUILTINS = frozenset(member.value for member in botocore.regions.EndpointResolverBuiltins)
_PLAN = "greenfetch-provider-plan"


def _plan(resolver: Any, operation_model: Any) -> Any:
    """Per ruleset parameter, in the ruleset's order: (name, static value, operation member,
    operation context path (present or not), client context name, builtin), each None where
    botocore finds none;
    or False where the plan cannot stand for botocore (a builtin botocore would refuse)."""
    static = resolver._get_static_context_params(operation_model)
    dynamic = resolver._get_dynamic_context_params(operation_model)
    paths = operation_model.operation_context_parameters
    client = resolver._get_client_context_params()
    plan = []
    for name, definition in resolver._param_definitions.items():
        builtin = definition.builtin
        if builtin is not None and builtin not in _BUILTINS:
            return False  # botocore raises when it gets there: let it
        plan.append(
            (
                name,
                static.get(name),
                dynamic[name] if name in dynamic else None,
                paths[name]["path"] if name in paths else None,
                client[name] if name in client else None,
                builtin,
            )
        )
    return tuple(plan)


def provider_params(self: Any, operation_model: Any, call_args: Any, request_context: Any) -> Any:
    """``EndpointRulesetResolver._get_provider_params`` from a plan made once per operation: the
    same order (static context, operation member, operation context path, client context, then the
    builtin), a value that is None falling through to the next, as botocore's lookups do."""
    if type(self) is not _Resolver:
        return _get_provider_params(self, operation_model, call_args, request_context)
    cache = self._instance_cache
    plan = cache.get((_PLAN, operation_model))
    if plan is None:
        plan = cache[(_PLAN, operation_model)] = _plan(self, operation_model)
    if plan is False:
        return _get_provider_params(self, operation_model, call_args, request_context)
    builtins = self._get_customized_builtins(operation_model, call_args, request_context)
    params = {}
    for name, value, member, path, client_name, builtin in plan:
        if value is None:
            if member is not None:
                value = call_args.get(member)
            if value is None and path is not None:  # botocore's own: a JMESPath search of the input
                value = self._resolve_param_as_operation_context_param(name, operation_model, call_args)
            if value is None and client_name is not None:
                value = self._client_context.get(client_name)
            if value is None and builtin is not None:
                value = builtins.get(builtin)
                if callable(value):
                    value = value()
        if value is not None:
            params[name] = value
            self._register_endpoint_feature_ids(name, value)
    return params
