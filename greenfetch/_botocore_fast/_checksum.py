"""A call's checksum context for an operation without a checksum trait (docs/performance/engine-call.md,
issue 24 part 11): :func:`resolve_checksum_context`.

``BaseClient._make_api_call`` calls ``resolve_checksum_context(request_dict, operation_model, params)``
on every call, before ``before-call``. For an operation whose model has neither ``httpChecksum`` nor
``httpChecksumRequired`` it changes nothing, but finding that out costs ~19k instructions a call:
``has_checksum_header`` matches every header name against ``CHECKSUM_HEADER_PATTERN`` (and 1.43's
``_register_checksum_feature_ids`` does it again, to register a feature id per ``x-amz-checksum-*``
header or for an algorithm already in the context), then the request side reads the client's
``request_checksum_calculation`` and the trait, the response side the trait, through five Python
frames. Without the trait, what each version does depends only on:

- a header whose name matches the pattern (the request side returns at once; 1.43 registers feature
  ids for it): each name is matched once with botocore's own pattern, and the names that did not match
  are remembered (a bounded set: the names a model's operations send), so a call whose every header
  name is known takes one set lookup per name;
- a ``checksum`` entry already in the context (1.43 registers a feature id for its algorithm);
- the context's ``client_config``, whose ``request_checksum_calculation`` the request side reads
  (read here alike, so a context without it raises as botocore's does).

Where none of those holds, botocore's function returns None having changed nothing, in both versions
(1.36 registers no feature ids at all), and so does this one. Anything else (the trait, a header that
might match, a ``checksum`` context, an operation model, request, headers or context that is not
botocore's own type, any function or pattern botocore's would reach replaced): botocore's own function.
"""

from __future__ import annotations

from typing import Any

import botocore.client
import botocore.httpchecksum
import botocore.model
import botocore.utils

_resolve_checksum_context = botocore.client.resolve_checksum_context  # httpchecksum's, as client imports it
_OperationModel = botocore.model.OperationModel

# What botocore's resolve_checksum_context reaches for an operation without the trait, as each module
# holds it now (a name this version lacks is None: 1.36 has no feature ids and one header scan).
_httpchecksum = botocore.httpchecksum.__dict__
_utils = botocore.utils.__dict__
_REQUEST_SIDE = _httpchecksum["resolve_request_checksum_algorithm"]
_RESPONSE_SIDE = _httpchecksum["resolve_response_checksum_algorithms"]
_HAS_HEADER = _httpchecksum["has_checksum_header"]
_FEATURE_IDS = _httpchecksum.get("_register_checksum_feature_ids")
_HEADERS = _httpchecksum.get("get_checksum_algorithm_headers")
_UTILS_HEADERS = _utils.get("get_checksum_algorithm_headers")
_PATTERN = _utils["CHECKSUM_HEADER_PATTERN"]


_UNMATCHED: set[str] = set()  # header names botocore's pattern did not match
_UNMATCHED_KEPT = 1024  # names remembered; all dropped when full


def _no_checksum_header(headers: dict[Any, Any]) -> bool:
    """Whether no name in ``headers`` matches botocore's ``CHECKSUM_HEADER_PATTERN``, each name not yet
    known matched with it and remembered (a name that is not a ``str``: not known, as botocore's match
    of it would raise)."""
    for name in headers:
        if name in _UNMATCHED:
            continue
        if type(name) is not str or _PATTERN.match(name) is not None:
            return False
        if len(_UNMATCHED) >= _UNMATCHED_KEPT:
            _UNMATCHED.clear()
        _UNMATCHED.add(name)
    return True


def resolve_checksum_context(request: Any, operation_model: Any, params: Any) -> Any:
    """``botocore.httpchecksum.resolve_checksum_context``: nothing to do, known without its header scans,
    for an operation without a checksum trait (see above); botocore's own function for anything else."""
    if type(operation_model) is not _OperationModel or type(request) is not dict:
        return _resolve_checksum_context(request, operation_model, params)
    trait = operation_model.http_checksum
    headers = request.get("headers")
    context = request.get("context")
    if (
        type(trait) is not dict
        or trait
        or operation_model.http_checksum_required
        or type(headers) is not dict
        or type(context) is not dict
        or "checksum" in context
        # every function and the pattern botocore's resolve_checksum_context reaches: still its own
        or _httpchecksum["resolve_request_checksum_algorithm"] is not _REQUEST_SIDE
        or _httpchecksum["resolve_response_checksum_algorithms"] is not _RESPONSE_SIDE
        or _httpchecksum["has_checksum_header"] is not _HAS_HEADER
        or _httpchecksum.get("_register_checksum_feature_ids") is not _FEATURE_IDS
        or _httpchecksum.get("get_checksum_algorithm_headers") is not _HEADERS
        or _utils.get("get_checksum_algorithm_headers") is not _UTILS_HEADERS
        or _utils["CHECKSUM_HEADER_PATTERN"] is not _PATTERN
        or not (headers.keys() <= _UNMATCHED or _no_checksum_header(headers))
    ):
        return _resolve_checksum_context(request, operation_model, params)
    # the request side's one read past the header scan: a context without it fails as botocore's does
    context["client_config"].request_checksum_calculation  # noqa: B018
    return None
