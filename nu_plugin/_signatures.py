"""The commands as nu sees them (docs/nushell.md): names, flags, types, help and examples.

nu caches these at ``plugin add`` time; after changing them, run ``plugin add`` again.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SIGNATURES", "signatures"]

_HELP = {
    "long": "help",
    "short": "h",
    "arg": None,
    "required": False,
    "desc": "Display the help message for this command",
}
_CATEGORY = {"Custom": "aws"}
_REQUEST_LIST = {"List": "Any"}
_TABLE: dict[str, Any] = {"Table": []}
_NAMES = {"OneOf": [{"List": "String"}, "String"]}  # a comma list, or a Nushell list of names


def _flag(long: str, shape: Any, desc: str, short: str | None = None) -> dict[str, Any]:
    return {"long": long, "short": short, "arg": shape, "required": False, "desc": desc}


def _pos(name: str, shape: Any, desc: str) -> dict[str, Any]:
    return {"name": name, "desc": desc, "shape": shape}


# aws catalog's and aws inventory's --catalog, as the CLI's
_CATALOG_FLAG = _flag(
    "catalog",
    "String",
    "your own overlay file (the format of greenfetch's docs/inventory.md) merged over the "
    "shipped catalog (default: $env.GREENFETCH_CATALOG as the plugin started)",
)


def _sig(
    name: str,
    description: str,
    extra: str,
    *,
    required: list[Any] | None = None,
    optional: list[Any] | None = None,
    named: list[Any] | None = None,
    io: list[Any] | None = None,
    search: list[str] | None = None,
    examples: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    sig = {
        "name": name,
        "description": description,
        "extra_description": extra,
        "search_terms": search or [],
        "required_positional": required or [],
        "optional_positional": optional or [],
        "rest_positional": None,
        "named": [_HELP, *(named or [])],
        "input_output_types": io or [["Any", "Any"]],
        "allow_variants_without_examples": True,
        "is_filter": False,
        "creates_scope": False,
        "allows_unknown_args": False,
        "category": _CATEGORY,
    }
    return {
        "sig": sig,
        "examples": [{"example": ex, "description": desc, "result": None} for ex, desc in (examples or [])],
    }


_REQUESTS_ARG = _pos(
    "requests",
    _REQUEST_LIST,
    "the requests: records {service, operation, params?, region?, profile?, ...}; "
    "or give them as pipeline input",
)
_REQUESTS_EXTRA = (
    "Each request is a record: service and operation are required (operation as the API name, ListBuckets, "
    "or the boto3 name, list_buckets); params defaults to {}; region, profile, account/role, endpoint_url, "
    "paginate and id are optional. Every request gets one result record: index, request, result, error, "
    "error_code, retryable, guidance, request_id, duration_ms, duration, attempts. A failed request is a record "
    "whose error names the service, operation and AWS error code; the others still run."
)

SIGNATURES = [
    _sig(
        "batch-requests",
        "Run many AWS API calls at once; one result record per request, in request order.",
        _REQUESTS_EXTRA + " Results stream out as they are ready, so `| first 3` does not wait for the rest. "
        "With --fail-fast true the first failure stops the batch with an error whose msg starts with "
        "'Batch failed'.",
        optional=[_REQUESTS_ARG],
        named=[
            _flag("concurrency", "Int", "how many requests run at once (default 10)", "c"),
            _flag("fail-fast", "Boolean", "true: stop at the first failure with an error (default false)"),
        ],
        io=[["Nothing", _TABLE], [_REQUEST_LIST, _TABLE], ["Any", _TABLE]],
        search=["aws", "boto", "parallel", "concurrent", "fan-out"],
        examples=[
            (
                "batch-requests [{service: s3, operation: ListBuckets} {service: ec2, operation: DescribeRegions}]",
                "Two calls at once",
            ),
            (
                "[{service: s3, operation: ListBuckets}] | batch-requests --concurrency 2 | where error == null",
                "Requests from the pipeline; keep the successes",
            ),
            (
                "try { batch-requests $reqs --fail-fast true } catch {|err| $err.msg }",
                "Stop at the first failure and catch it",
            ),
        ],
    ),
    _sig(
        "adaptive-batch",
        "Like batch-requests, while the concurrency adapts to latency and throttling.",
        _REQUESTS_EXTRA + " Each result also carries `concurrency`, the limit in force when it was sent: it "
        "rises while responses stay under --target-latency and falls on slow responses or throttling.",
        optional=[_REQUESTS_ARG],
        named=[
            _flag("initial-concurrency", "Int", "the starting limit (default 5)"),
            _flag("target-latency", "Duration", "the per-attempt latency to stay under (default 500ms)"),
            _flag("min-concurrency", "Int", "the limit never goes below this (default 1)"),
            _flag("max-concurrency", "Int", "the limit never goes above this (default 256)"),
        ],
        io=[["Nothing", _TABLE], [_REQUEST_LIST, _TABLE], ["Any", _TABLE]],
        search=["aws", "adaptive", "throttle", "concurrency"],
        examples=[
            (
                "0..99 | each {|i| {service: s3, operation: HeadBucket, params: {Bucket: $'b($i)'}}} | "
                "adaptive-batch --initial-concurrency 5 --target-latency 500ms | get concurrency | math max",
                "How high the limit went",
            ),
        ],
    ),
    _sig(
        "dedupe-request",
        "Run a closure once per signature: concurrent callers share one run, and its value "
        "is reused within the window.",
        "Calls with the same signature while one is running wait for it and get its value (or its error). "
        "A value is reused for --window after it completes; then the next call runs the closure afresh. "
        "Errors are never cached. The table lives in the plugin process, as long as nu keeps it running.",
        required=[
            _pos("signature", "String", "the key: calls with the same signature share one run"),
            _pos("operation", {"Closure": None}, "the closure to run (no arguments)"),
        ],
        named=[_flag("window", "Duration", "how long a completed value is reused (default 5sec)")],
        io=[["Any", "Any"]],
        search=["dedupe", "singleflight", "cache", "memoize"],
        examples=[
            (
                "1..4 | par-each {|i| dedupe-request regions {|| aws ec2 describe-regions | from json } }",
                "Four concurrent callers, one run",
            ),
            ("dedupe-request k {|| date now} --window 100ms", "Reuse a value for 100ms"),
        ],
    ),
    _sig(
        "aws perf stats",
        "Latency and error statistics per service:operation, for the calls this plugin made.",
        "Columns: operation (service:Operation), count, errors, throttles, avg_duration, p50, p90, p99, max "
        "(durations). The plugin keeps them while nu keeps it running (see plugin_gc); aws perf reset clears them.",
        io=[["Nothing", _TABLE]],
        search=["metrics", "latency", "performance"],
        examples=[
            ("aws perf stats | where operation =~ 's3:'", "Statistics of the S3 calls"),
            ("aws perf stats | where avg_duration > 1sec", "Slow operations"),
        ],
    ),
    _sig(
        "aws perf reset",
        "Clear the statistics shown by aws perf stats.",
        "",
        io=[["Nothing", "Nothing"]],
        search=["metrics", "clear"],
        examples=[("aws perf reset", "Start counting afresh")],
    ),
    _sig(
        "aws catalog",
        "The resource types aws inventory knows: the rows of `greenfetch catalog -o json`.",
        "One record per type: name (what --types takes), service, operation, scope (regional or global), items, "
        "id_field, resource_id, tier (core, generated or denied), deny_reason, paginate, params, api_region, "
        "details. Denied rows are never called; they say why in deny_reason (`where tier != denied` hides them).",
        named=[
            _flag("service", "String", "only this service's types (a botocore service name, e.g. efs)"),
            _flag("types", _NAMES, "only the types --types would select (core, all, efs, 'ec2.*', ...)"),
            _CATALOG_FLAG,
            _flag(
                "all",
                None,
                "accepted as the CLI's: the rows always include the denied ones, as "
                "greenfetch catalog -o json does",
            ),
        ],
        io=[["Nothing", _TABLE]],
        search=["aws", "inventory", "resource types", "catalog"],
        examples=[
            ("aws catalog --service efs | select name operation", "The EFS types"),
            ("aws catalog | where tier != denied | length", "How many types aws inventory can fetch"),
            ("aws catalog --types 'ec2.*' | get name", "What a pattern selects"),
        ],
    ),
    _sig(
        "aws inventory",
        "Fetch resources across accounts, regions and types: one record per (type, account, "
        "region), streamed as each completes.",
        "Records: resource_type, account, region (global for global types), items (the resources, dates as "
        "Nushell dates), status (ok, not_offered, unavailable, denied, expired, throttled, error) and error. "
        "The flags are greenfetch inventory's; comma lists may also be Nushell lists. Records stream into the "
        "pipeline as they complete, so `| where status != ok` shows failures while the run goes on, and "
        "`| first 5` stops it. Ctrl-C cancels the run. A bad type or region is an error before any call.",
        named=[
            _flag(
                "types",
                _NAMES,
                "core (the curated types, the default), all, service names (efs), type "
                "names (ec2.vpcs) or patterns (ec2.*, *.clusters): see aws catalog",
            ),
            _flag("exclude-types", _NAMES, "types to leave out, in the forms --types takes"),
            _CATALOG_FLAG,
            _flag(
                "tags",
                None,
                "join every item's tags from the Resource Groups Tagging API (one paginated call per "
                "account and region) as a `tags` record",
            ),
            _flag(
                "regions",
                _NAMES,
                "'enabled' (default), 'active' (skip regions found empty/denied "
                "recently), or region names; * wildcards",
            ),
            _flag("exclude-regions", _NAMES, "regions (wildcards allowed) to leave out"),
            _flag(
                "accounts",
                _NAMES,
                "'org' (AWS Organizations, ACTIVE members), 'dynamodb:TABLE', or "
                "account ids (default: your own)",
            ),
            _flag("exclude-accounts", _NAMES, "account ids to leave out"),
            _flag("org-ou", _NAMES, "with --accounts org: only accounts under these OU ids"),
            _flag("role-name", "String", "role (name or ARN) to assume in each account"),
            _flag("external-id", "String", "external id for AssumeRole"),
            _flag(
                "cache-ttl",
                "Duration",
                "serve pages fetched within this long from the cache (default "
                "1hr, GREENFETCH_CACHE_TTL); 0sec fetches every page afresh",
            ),
            _flag("status-store", "String", "region status store: a JSON path or dynamodb:TABLE"),
            _flag("concurrency", "Int", "calls in flight at once (default 64)", "c"),
            _flag("max-attempts", "Int", "attempts per call, retries included (GREENFETCH_MAX_ATTEMPTS)"),
            _flag(
                "region",
                "String",
                "region for account discovery, STS and global APIs (default: $env.AWS_REGION)",
            ),
            _flag("profile", "String", "AWS profile (default: $env.AWS_PROFILE)"),
            _flag(
                "endpoint-url",
                "String",
                "send every call here, a test endpoint (default: $env.AWS_ENDPOINT_URL)",
            ),
        ],
        io=[["Nothing", _TABLE]],
        search=["aws", "inventory", "resources", "accounts", "regions"],
        examples=[
            (
                "aws inventory --types efs | where status == ok | get items | flatten | select FileSystemId",
                "Every EFS file system of your account, in its enabled regions",
            ),
            (
                "aws inventory --accounts org --role-name Reader --types 'ec2.*' --regions 'eu-*'",
                "EC2 across an organization's accounts in the European regions",
            ),
            (
                "aws inventory --types [s3 iam] | where status != ok | select resource_type region error",
                "What could not be fetched, and why",
            ),
        ],
    ),
]


def signatures() -> list[dict[str, Any]]:
    return SIGNATURES
