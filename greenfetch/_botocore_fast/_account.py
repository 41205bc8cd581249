"""The endpoint ruleset evaluated once per parameters but the account's value (:func:`evaluate`;
docs/performance/client-and-parse.md, "Issue 24: the endpoint ruleset per account").

An account's credentials carry its id, and DynamoDB's, Kinesis's and EventBridge's rulesets take it as a
parameter (``AccountId``, the builtin ``AWS::Auth::AccountId``; S3 Control's takes it from the input).
botocore's provider remembers an answer per parameters, so each account is a miss: the whole ruleset
walked again (350k-590k instructions for DynamoDB's), for every (account, region) of an inventory. Yet
the account's value decides little: whether it is a valid host label (``isValidHostLabel``), and the
host in the answer's URL (``https://{AccountId}.ddb.{Region}.amazonaws.com``).

So the walk is recorded. Its key is every parameter but the account's value, and whether the account is
set. While walking, every condition that is handed the account's value directly (a predicate:
``isSet``, ``isValidHostLabel``, ``stringEquals``, ...; a pure function of its arguments that answers a
``bool``) is written down with its other arguments and its answer; any other use of the value in a
condition (another function, a template) marks the walk as not replayable. The matched endpoint rule
and its scope (its variables before its URL, properties and headers are resolved) are kept.

For another account with the same key, the predicates are asked again with its value, in order. If
each answers as it did, the walk would take the same path: the value reaches a condition only through
those predicates, every other variable is a function of the key and of their answers, and the library's
functions are pure. The answer is then the same rule's: each of its URL, properties and headers that read
the account resolved again in that scope with the new value (botocore's own resolution), the others the
recorded answer's (the very answer object when none read it, as botocore's own memory hands out one
object per parameters; no caller in botocore changes an answer's properties). If any predicate
answers otherwise, or nothing was recorded for the key: botocore's walk, recorded in turn. An error
(an error rule, a bad parameter) is never remembered: each such call walks as botocore does.

The guard: only botocore's own ``RuleSet`` with botocore's own library, every rule of the tree one of
botocore's three rule classes, an account parameter that is a string without a default and nothing
deprecated (botocore logs a deprecated parameter on each walk), every value a ``str`` or a ``bool`` (the
key tells them apart). Anything else: botocore's ``RuleSet.evaluate``. The walk below restates
botocore's ``RuleSet.evaluate``, ``TreeRule.evaluate``, ``EndpointRule.evaluate`` and
``ErrorRule.evaluate`` over botocore's rule objects and library (identical in botocore 1.36 and 1.43).
"""

from __future__ import annotations

from string import Formatter
from typing import Any

import botocore.endpoint_provider as _provider
from botocore.exceptions import EndpointResolutionError

from .._kept import kept

_RuleSet = _provider.RuleSet
_evaluate = _RuleSet.evaluate
_Library = _provider.RuleSetStandardLibrary
_TreeRule = _provider.TreeRule
_EndpointRule = _provider.EndpointRule
_ErrorRule = _provider.ErrorRule
_Endpoint = _provider.RuleSetEndpoint
_new_endpoint = tuple.__new__  # what a NamedTuple's __new__ returns: tuple.__new__(cls, fields)
_ACCOUNT_BUILTIN = "AWS::Auth::AccountId"
_STATE = "_greenfetch_account"
_KEYS = 256  # keys remembered per ruleset; all dropped when full
_VARIANTS = 4  # walks remembered per key (an account that is a host label, one that is not, ...)
# The library's functions that are pure, answer a bool and whose answer about the account can be asked
# again: the predicates a replay re-asks. Any other function handed the account makes a walk opaque.
_PREDICATES = frozenset(
    {
        "is_set",
        "is_valid_host_label",
        "string_equals",
        "is_ascii",
        "_not",
        "aws_is_virtual_hostable_s3_bucket",
    }
)
_FORMATTER = Formatter()


def _rules_are_botocores(rules: Any) -> bool:
    for rule in rules:
        kind = type(rule)
        if kind is _TreeRule:
            if not _rules_are_botocores(rule.rules):
                return False
        elif kind is not _EndpointRule and kind is not _ErrorRule:
            return False
    return True


def _state(ruleset: Any) -> Any:
    """(the account parameter's name, the memory) for a ruleset this module can stand in for, else False."""
    names = [
        name
        for name, spec in ruleset.parameters.items()
        if name == "AccountId" or spec.builtin == _ACCOUNT_BUILTIN
    ]
    if len(names) != 1:
        return False
    spec = ruleset.parameters[names[0]]
    if (
        spec.parameter_type is not str
        or spec.default is not None
        or any(other.deprecated is not None for other in ruleset.parameters.values())
        or not _rules_are_botocores(ruleset.rules)
    ):
        return False
    return (names[0], {})


def evaluate(self: Any, input_parameters: Any) -> Any:
    """``RuleSet.evaluate``, walked once per (every parameter but the account's value, whether it is
    set) and replayed for another account (see above)."""
    if type(self) is not _RuleSet or type(self.rule_lib) is not _Library:
        return _evaluate(self, input_parameters)
    state = self.__dict__.get(_STATE)
    if state is None:
        state = self.__dict__[_STATE] = _state(self)
    if state is False:
        return _evaluate(self, input_parameters)
    account, memory = state
    key = _key(account, input_parameters)
    if key is None:
        return _evaluate(self, input_parameters)
    value = input_parameters.get(account)
    variants = memory.get(key, ())
    for variant in variants:
        answer = _replay(variant, account, value, self.rule_lib)
        if answer is not None:
            return answer
    answer, variant = _record(self, input_parameters, account)
    if variant is not None and len(variants) < _VARIANTS:
        kept(memory, key, (*variants, variant), _KEYS)
    return answer


def _key(account: str, input_parameters: Any) -> Any:
    """The memory's key: every parameter but the account's value, and whether it is set; None where a
    value is neither a ``str`` nor a ``bool`` (then botocore's walk, unremembered)."""
    value = input_parameters.get(account)
    if value is not None and type(value) is not str:
        return None
    items = []
    for name, given in input_parameters.items():
        if type(given) is not str and type(given) is not bool:
            return None
        if name != account:
            items.append((name, given))
    return (tuple(items), value is not None)


def blind(ruleset: Any, input_parameters: Any) -> Any:
    """The answer ``evaluate`` gives for ``input_parameters`` when it needs no walk and no account:
    the key's one recorded walk handed the account to no condition and read it in no part of its
    answer (with an endpoint URL, DynamoDB's walk never reaches the account), so every account's answer
    is that walk's very answer object, as ``_replay`` hands it out. None otherwise (nothing walks here)."""
    if type(ruleset) is not _RuleSet or type(ruleset.rule_lib) is not _Library:
        return None
    state = ruleset.__dict__.get(_STATE)
    if not state:  # not seen by ``evaluate`` yet, or not one it stands in for
        return None
    account, memory = state
    key = _key(account, input_parameters)
    variants: Any = memory.get(key, ()) if key is not None else ()
    if len(variants) == 1:
        checks, _, _, reads, answer = variants[0]
        if not checks and reads is None:
            return answer
    return None


def _replay(variant: Any, account: str, value: Any, library: Any) -> Any:
    """The answer for the account ``value`` if each recorded predicate answers it as it did, else None."""
    checks, rule, scope, reads, answer = variant
    for name, args, positions, said in checks:
        asked = list(args)
        for position in positions:
            asked[position] = value
        try:
            if getattr(library, name)(*asked) is not said:
                return None
        except Exception:  # noqa: BLE001 - not the recorded path: botocore's walk will say what happens
            return None
    if reads is None:  # resolving the answer did not read the account
        return answer
    url, properties_read, headers_read = reads
    if type(url) is tuple:  # the URL's template in pieces, None where the account goes
        url = "".join([value if piece is None else piece for piece in url])
    elif url is True:
        url = None
    else:
        url = answer.url
    if url is not None and not properties_read and not headers_read:
        return _new_endpoint(_Endpoint, (url, answer.properties, answer.headers))
    scope = dict(scope)
    scope[account] = value
    endpoint = rule.endpoint
    return _Endpoint(
        url=library.resolve_value(endpoint["url"], scope) if url is None else url,
        properties=(
            rule.resolve_properties(endpoint.get("properties", {}), scope, library)
            if properties_read
            else answer.properties
        ),
        headers=rule.resolve_headers(scope, library) if headers_read else answer.headers,
    )


def _pieces(template: Any, scope: Any, account: str) -> Any:
    """A URL template that reads the account as ``{AccountId}`` (no path into it), in pieces: each literal,
    and each other reference's text as ``resolve_template_string`` writes it from ``scope`` (the same in
    a replay: only the account differs), None for the account. True where the URL is anything else (it
    is resolved again as botocore resolves it)."""
    if type(template) is not str:
        return True
    pieces: list[str | None] = []
    for literal, reference, _, _ in _FORMATTER.parse(template):
        pieces.append(literal)
        if reference is None:
            continue
        path = reference.split("#")
        if path[0] == account:
            if len(path) > 1:
                return True
            pieces.append(None)
            continue
        text = scope  # botocore's resolve_template_string, one reference
        for param in path:
            text = text[param]
        pieces.append(f"{text}")
    return tuple(pieces)


def _record(ruleset: Any, params: Any, account: str) -> Any:
    """botocore's ``RuleSet.evaluate`` with a recording library: (its answer, the variant to keep or None)."""
    ruleset.process_input_parameters(params)
    library = _Recorder(ruleset.rule_lib.partitions_data, account)
    for rule in ruleset.rules:
        found = _walk(rule, params.copy(), library)
        if found is not None:
            break
    else:
        return None, None  # botocore's provider raises "No endpoint found" for it
    rule, scope = found
    before = dict(scope)
    output = _Output(library.partitions_data, account)
    reads = []
    endpoint = rule.endpoint
    # what EndpointRule.evaluate returns once its conditions held, noting which part read the account
    url = output.resolve_value(endpoint["url"], scope)
    reads.append(output.take_read() and _pieces(endpoint["url"], before, account))
    properties = rule.resolve_properties(endpoint.get("properties", {}), scope, output)
    reads.append(output.take_read())
    headers = rule.resolve_headers(scope, output)
    reads.append(output.take_read())
    answer = _Endpoint(url=url, properties=properties, headers=headers)
    if library.opaque or len(scope) != len(before):  # a part assigned a variable: the parts are not apart
        return answer, None
    return answer, (tuple(library.checks), rule, before, tuple(reads) if any(reads) else None, answer)


def _walk(rule: Any, scope: Any, library: Any) -> Any:
    """``rule.evaluate(scope, library)`` as botocore's rules do it, but an endpoint rule whose conditions
    hold gives (the rule, its scope) and is resolved by the caller (nothing runs in between)."""
    if not rule.evaluate_conditions(scope, library):
        return None
    kind = type(rule)
    if kind is _TreeRule:
        for sub in rule.rules:
            found = _walk(sub, scope.copy(), library)  # botocore: no scope shared between rules
            if found:
                return found
        return None
    if kind is _EndpointRule:
        return (rule, scope)
    raise EndpointResolutionError(msg=library.resolve_value(rule.error, scope))  # an error rule


def _names(template: str) -> list[str]:
    return [
        reference.split("#")[0] for _, reference, _, _ in _FORMATTER.parse(template) if reference is not None
    ]


class _Recorder(_provider.RuleSetStandardLibrary):  # type: ignore[misc]  # botocore ships no types
    """botocore's library for the walk's conditions, noting how they use the account's value: ``checks``
    (the predicates handed it directly, with their other arguments and answers), ``opaque`` (any other
    use: another function handed it, a template of it handed to a function). A condition reads a
    variable only through a function's arguments, so ``call_function`` sees each read (an error rule's
    message too, which raises: nothing is kept)."""

    def __init__(self, partitions_data: Any, account: str) -> None:
        super().__init__(partitions_data)
        self.account = account
        self.checks: list[tuple[str, tuple[Any, ...], tuple[int, ...], bool]] = []
        self.opaque = False

    def call_function(self, func_signature: Any, scope_vars: Any) -> Any:
        account = self.account
        for argument in func_signature["argv"]:  # _is_ref, inline: most arguments are not the account
            if isinstance(argument, dict) and argument.get("ref") == account and "fn" not in argument:
                return self._handed(func_signature, scope_vars)
        return super().call_function(func_signature, scope_vars)

    def _handed(self, func_signature: Any, scope_vars: Any) -> Any:
        """botocore's ``call_function``, the account's value handed over as ``resolve_value`` reads it."""
        argv = func_signature["argv"]
        positions = tuple(i for i, argument in enumerate(argv) if _is_ref(argument, self.account))
        args = [
            scope_vars.get(self.account) if i in positions else self.resolve_value(argument, scope_vars)
            for i, argument in enumerate(argv)
        ]
        name = self.convert_func_name(func_signature["fn"])
        result = getattr(self, name)(*args)
        if name in _PREDICATES and type(result) is bool:
            self.checks.append((name, tuple(args), positions, result))
        else:
            self.opaque = True
        if "assign" in func_signature:
            assign = func_signature["assign"]
            if assign in scope_vars:
                raise EndpointResolutionError(
                    msg=f"Assignment {assign} already exists in scoped variables and cannot be overwritten"
                )
            scope_vars[assign] = result
        return result

    def resolve_template_string(self, value: Any, scope_vars: Any) -> Any:
        if self.account in value and self.account in _names(value):
            self.opaque = True
        return super().resolve_template_string(value, scope_vars)


class _Output(_provider.RuleSetStandardLibrary):  # type: ignore[misc]  # botocore ships no types
    """botocore's library for the matched rule's URL, properties and headers, noting whether the account
    was read (``take_read``): a reference to it, or a template of it, anywhere in them."""

    def __init__(self, partitions_data: Any, account: str) -> None:
        super().__init__(partitions_data)
        self.account = account
        self.read = False

    def take_read(self) -> bool:
        """Whether the account was read since the last time this was asked."""
        read, self.read = self.read, False
        return read

    def resolve_value(self, value: Any, scope_vars: Any) -> Any:
        if _is_ref(value, self.account):
            self.read = True
        return super().resolve_value(value, scope_vars)

    def resolve_template_string(self, value: Any, scope_vars: Any) -> Any:
        if self.account in value and self.account in _names(value):
            self.read = True
        return super().resolve_template_string(value, scope_vars)


def _is_ref(argument: Any, account: str) -> bool:
    """Whether botocore's ``resolve_value`` reads ``argument`` as a reference to the account."""
    return (
        isinstance(argument, dict)
        and "fn" not in argument
        and "ref" in argument
        and argument["ref"] == account
    )
