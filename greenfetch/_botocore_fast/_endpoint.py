"""The endpoint: the ruleset's parameters from a plan made once per operation (docs/performance/engine-call.md, issue 24
part 4: :func:`provider_params`; part 7b: the builtins read without an event nobody listens to, the
provider's answer remembered per parameters, :func:`resolve_endpoint`, and the URL joined once per
endpoint and path, :func:`urljoin`)."""

from __future__ import annotations

import functools
from typing import Any

import botocore.awsrequest
import botocore.endpoint_provider
import botocore.hooks
import botocore.regions

from .._kept import kept
from ._account import blind
from ._events import _aliased, _Aliaser, _Emitter, _own_aliasing

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
_EVENT = "greenfetch-builtins-event"
_get_customized_builtins = _Resolver._get_customized_builtins


def _builtins(resolver: Any, operation_model: Any, call_args: Any, request_context: Any) -> Any:
    """``_get_customized_builtins``: a copy of the client's builtins handed to the
    ``before-endpoint-resolution`` handlers to change in place. Where the client's emitter is botocore's
    aliaser over botocore's emitter and has already found no handler for that event (its lookup cache
    holds an empty list: ``_emit`` would return at once), no handler can change the copy, so the
    client's own builtins are read, not copied. Anything else: botocore's own."""
    emitter = resolver._event_emitter
    if (
        type(resolver)._get_customized_builtins is not _get_customized_builtins
        or type(emitter) is not _Aliaser
        or type(emitter._emitter) is not _Emitter
        or _own_aliasing(emitter)
    ):
        return resolver._get_customized_builtins(operation_model, call_args, request_context)
    cache = resolver._instance_cache
    event = cache.get(_EVENT)
    if event is None:
        event = cache[_EVENT] = f"before-endpoint-resolution.{resolver._service_model.service_id.hyphenize()}"
    handlers = emitter._emitter._lookup_cache.get(_aliased(emitter, event))
    if handlers is None or handlers:
        return resolver._get_customized_builtins(operation_model, call_args, request_context)
    return resolver._builtins


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
    builtins = _builtins(self, operation_model, call_args, request_context)
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


# -- the provider's answer (issue 24, part 7b) -----------------------------------------------------
#
# ``EndpointProvider.resolve_endpoint`` is botocore's LRU over the ruleset's evaluation, keyed by the
# parameters (through ``lru_cache_weakref``: two Python frames, a weak reference, the keyword arguments
# flattened into a key): 19k instructions a call. The evaluation is a pure function of the parameters,
# so the provider remembers its answer per parameters itself, the same object botocore's LRU hands out,
# in a dict on the provider keyed by the parameters in order where every value is a ``str`` or a
# ``bool`` (no two such values are equal across types); anything else, a provider class of its own or
# a miss: botocore's ``resolve_endpoint``. A miss that is only a new account (an account's credentials
# carry its id, a parameter of DynamoDB's ruleset) whose answer the account does not reach takes the
# region's recorded answer from ``_account.blind`` instead: botocore's LRU missing (~19k) and the
# ruleset's replay (~14k) spared once per (account, region).

_Provider = botocore.endpoint_provider.EndpointProvider
_resolve_endpoint = _Provider.resolve_endpoint
_ANSWERS = 256  # parameter sets kept per provider; all dropped when full


def resolve_endpoint(self: Any, **input_parameters: Any) -> Any:
    """``EndpointProvider.resolve_endpoint`` remembered per parameters (see above)."""
    if type(self) is not _Provider:
        return _resolve_endpoint(self, **input_parameters)
    for value in input_parameters.values():
        if type(value) is not str and type(value) is not bool:
            return _resolve_endpoint(self, **input_parameters)
    key = tuple(input_parameters.items())
    answers = self.__dict__.get("_greenfetch_answers")
    if answers is None:
        answers = self._greenfetch_answers = {}
    found = answers.get(key)
    if found is None:
        excluded = getattr(self, "_excluded_params", None)  # botocore 1.43 drops these before its LRU
        asked = input_parameters
        if excluded:
            asked = {k: v for k, v in input_parameters.items() if k not in excluded}
        found = blind(self.ruleset, asked)
        if found is None:
            found = _resolve_endpoint(self, **input_parameters)
        found = kept(answers, key, found, _ANSWERS)
    return found


# -- the request's URL (issue 24, part 7b) ----------------------------------------------------------
#
# ``prepare_request_dict`` joins the endpoint's URL and the operation's path with ``_urljoin``
# (``urlsplit``, then ``urlunsplit``: 12k instructions), a pure function of its three strings.

_urljoin = botocore.awsrequest._urljoin


@functools.lru_cache(maxsize=256)
def _cached_urljoin(endpoint_url: str, url_path: str, host_prefix: str | None) -> str:
    return _urljoin(endpoint_url, url_path, host_prefix)  # type: ignore[no-any-return]  # botocore ships no types


def urljoin(endpoint_url: Any, url_path: Any, host_prefix: Any) -> Any:
    """botocore's ``_urljoin``, remembered per (endpoint URL, path, host prefix) when all are ``str``
    (or the prefix None)."""
    if (
        type(endpoint_url) is str
        and type(url_path) is str
        and (host_prefix is None or type(host_prefix) is str)
    ):
        return _cached_urljoin(endpoint_url, url_path, host_prefix)
    return _urljoin(endpoint_url, url_path, host_prefix)
