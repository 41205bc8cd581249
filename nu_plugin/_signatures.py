"""The five commands as nu sees them (docs/contract.md, section 5): names, flags, types, help and examples.

nu caches these at ``plugin add`` time; after changing them, run ``plugin add`` again.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SIGNATURES", "signatures"]

_HELP = {"long": "help", "short": "h", "arg": None, "required": False, "desc": "Display the help message for this command"}
_CATEGORY = {"Custom": "aws"}
_REQUEST_LIST = {"List": "Any"}
_TABLE: dict[str, Any] = {"Table": []}


def _flag(long: str, shape: Any, desc: str, short: str | None = None) -> dict[str, Any]:
    return {"long": long, "short": short, "arg": shape, "required": False, "desc": desc}


def _pos(name: str, shape: Any, desc: str) -> dict[str, Any]:
    return {"name": name, "desc": desc, "shape": shape}


def _sig(name: str, description: str, extra: str, *, required: list[Any] | None = None,
         optional: list[Any] | None = None, named: list[Any] | None = None,
         io: list[Any] | None = None, search: list[str] | None = None,
         examples: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    sig = {
        "name": name, "description": description, "extra_description": extra, "search_terms": search or [],
        "required_positional": required or [], "optional_positional": optional or [], "rest_positional": None,
        "named": [_HELP, *(named or [])], "input_output_types": io or [["Any", "Any"]],
        "allow_variants_without_examples": True, "is_filter": False, "creates_scope": False,
        "allows_unknown_args": False, "category": _CATEGORY,
    }
    return {"sig": sig, "examples": [{"example": ex, "description": desc, "result": None}
                                     for ex, desc in (examples or [])]}


_REQUESTS_ARG = _pos("requests", _REQUEST_LIST,
                     "the requests: records {service, operation, params?, region?, profile?, ...}; "
                     "or give them as pipeline input")
_REQUESTS_EXTRA = (
    "Each request is a record: service and operation are required (operation as the API name, ListBuckets, "
    "or the boto3 name, list_buckets); params defaults to {}; region, profile, account/role, endpoint_url, "
    "paginate and id are optional. Every request gets one result record: index, request, result, error, "
    "error_code, retryable, guidance, request_id, duration_ms, duration, attempts. A failed request is a record "
    "whose error names the service, operation and AWS error code; the others still run.")

SIGNATURES = [
    _sig("batch-requests", "Run many AWS API calls at once; one result record per request, in request order.",
         _REQUESTS_EXTRA + " Results stream out as they are ready, so `| first 3` does not wait for the rest. "
         "With --fail-fast true the first failure stops the batch with an error whose msg starts with "
         "'Batch failed'.",
         optional=[_REQUESTS_ARG],
         named=[_flag("concurrency", "Int", "how many requests run at once (default 10)", "c"),
                _flag("fail-fast", "Boolean", "true: stop at the first failure with an error (default false)")],
         io=[["Nothing", _TABLE], [_REQUEST_LIST, _TABLE], ["Any", _TABLE]],
         search=["aws", "boto", "parallel", "concurrent", "fan-out"],
         examples=[
             ("batch-requests [{service: s3, operation: ListBuckets} {service: ec2, operation: DescribeRegions}]",
              "Two calls at once"),
             ("[{service: s3, operation: ListBuckets}] | batch-requests --concurrency 2 | where error == null",
              "Requests from the pipeline; keep the successes"),
             ("try { batch-requests $reqs --fail-fast true } catch {|err| $err.msg }",
              "Stop at the first failure and catch it"),
         ]),
    _sig("adaptive-batch", "Like batch-requests, while the concurrency adapts to latency and throttling.",
         _REQUESTS_EXTRA + " Each result also carries `concurrency`, the limit in force when it was sent: it "
         "rises while responses stay under --target-latency and falls on slow responses or throttling.",
         optional=[_REQUESTS_ARG],
         named=[_flag("initial-concurrency", "Int", "the starting limit (default 5)"),
                _flag("target-latency", "Duration", "the per-attempt latency to stay under (default 500ms)"),
                _flag("min-concurrency", "Int", "the limit never goes below this (default 1)"),
                _flag("max-concurrency", "Int", "the limit never goes above this (default 256)")],
         io=[["Nothing", _TABLE], [_REQUEST_LIST, _TABLE], ["Any", _TABLE]],
         search=["aws", "adaptive", "throttle", "concurrency"],
         examples=[
             ("0..99 | each {|i| {service: s3, operation: HeadBucket, params: {Bucket: $'b($i)'}}} | "
              "adaptive-batch --initial-concurrency 5 --target-latency 500ms | get concurrency | math max",
              "How high the limit went"),
         ]),
    _sig("dedupe-request", "Run a closure once per signature: concurrent callers share one run, and its value "
         "is reused within the window.",
         "Calls with the same signature while one is running wait for it and get its value (or its error). "
         "A value is reused for --window after it completes; then the next call runs the closure afresh. "
         "Errors are never cached. The table lives in the plugin process, as long as nu keeps it running.",
         required=[_pos("signature", "String", "the key: calls with the same signature share one run"),
                   _pos("operation", {"Closure": None}, "the closure to run (no arguments)")],
         named=[_flag("window", "Duration", "how long a completed value is reused (default 5sec)")],
         io=[["Any", "Any"]], search=["dedupe", "singleflight", "cache", "memoize"],
         examples=[
             ("1..4 | par-each {|i| dedupe-request regions {|| aws ec2 describe-regions | from json } }",
              "Four concurrent callers, one run"),
             ("dedupe-request k {|| date now} --window 100ms", "Reuse a value for 100ms"),
         ]),
    _sig("aws perf stats", "Latency and error statistics per service:operation, for the calls this plugin made.",
         "Columns: operation (service:Operation), count, errors, throttles, avg_duration, p50, p90, p99, max "
         "(durations). The plugin keeps them while nu keeps it running (see plugin_gc); aws perf reset clears them.",
         io=[["Nothing", _TABLE]], search=["metrics", "latency", "performance"],
         examples=[("aws perf stats | where operation =~ 's3:'", "Statistics of the S3 calls"),
                   ("aws perf stats | where avg_duration > 1sec", "Slow operations")]),
    _sig("aws perf reset", "Clear the statistics shown by aws perf stats.", "",
         io=[["Nothing", "Nothing"]], search=["metrics", "clear"],
         examples=[("aws perf reset", "Start counting afresh")]),
]


def signatures() -> list[dict[str, Any]]:
    return SIGNATURES
