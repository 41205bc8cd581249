"""The plugin's commands (docs/nushell.md) on top of greenfetch's public API only.

Argument checks that need a span (to point at the user's flag or value) live here; everything about
running requests is greenfetch's job. Per-request problems (a record without ``service``, a
non-record item) come back as error records from the engine, so the other requests still run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import greenfetch
from greenfetch import inventory

from . import _codec as codec
from ._codec import Duration, LabeledError, NuValue, Span
from ._context import CallContext

__all__ = [
    "COMMANDS",
    "Args",
    "handle",
    "in_request_order",
    "requests_of_value",
    "result_value",
    "session_defaults",
    "stats_value",
    "with_defaults",
]


@dataclass
class Args:
    """A Run call's arguments: positionals, and flags by long name with the span of each value."""

    head: Span
    positional: list[NuValue] = field(default_factory=list)
    named: dict[str, NuValue | None] = field(default_factory=dict)
    flag_spans: dict[str, Span] = field(default_factory=dict)

    @classmethod
    def parse(cls, call: dict[str, Any]) -> Args:
        args = cls(call["head"], list(call.get("positional") or []))
        for name, value in call.get("named") or []:
            args.named[name["item"]] = value
            args.flag_spans[name["item"]] = name["span"]
        return args

    def span(self, flag: str) -> Span:
        """The span of a flag's value (or of the flag itself for a switch), else the command head."""
        value = self.named.get(flag)
        return (codec.span_of(value) if value else None) or self.flag_spans.get(flag) or self.head

    def int_flag(self, flag: str, minimum: int = 1) -> int | None:
        if flag not in self.named:
            return None
        value = self.named[flag]
        number = value.get("Int", {}).get("val") if value else None
        if not isinstance(number, int) or number < minimum:
            shown = codec.decode_value(value) if value else "nothing"
            raise LabeledError(
                f"--{flag} {shown} is not allowed: use a whole number of {minimum} or more",
                [(f"expected an int >= {minimum}", self.span(flag))],
                help=f"e.g. --{flag} 10",
                code="nu_plugin_greenfetch::invalid_flag",
            )
        return number

    def duration_flag(self, flag: str, *, allow_zero: bool = False) -> float | None:
        if flag not in self.named:
            return None
        value = self.named[flag]
        nanos = value.get("Duration", {}).get("val") if value else None
        if not isinstance(nanos, int) or nanos < 0 or (nanos == 0 and not allow_zero):
            shown = f"{nanos / 1e9:g}sec" if isinstance(nanos, int) else "nothing"
            need = "0sec or more" if allow_zero else "more than 0sec"
            raise LabeledError(
                f"--{flag} {shown} is not allowed: use a duration of {need}",
                [(f"expected a duration of {need}", self.span(flag))],
                help=f"e.g. --{flag} 500ms",
                code="nu_plugin_greenfetch::invalid_flag",
            )
        return nanos / codec.NS_PER_SECOND

    def text_flag(self, flag: str) -> str | None:
        """A string flag, or a list of strings joined with commas (the CLI's comma lists)."""
        given = self.named.get(flag)
        if given is None:
            return None
        value = codec.decode_value(given)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ",".join(value)
        if not isinstance(value, str):
            raise LabeledError(
                f"--{flag} takes a string or a list of strings, not {codec.type_name(given)}",
                [("expected a string", self.span(flag))],
                code="nu_plugin_greenfetch::invalid_flag",
            )
        return value

    def bool_flag(self, flag: str) -> bool:
        """Present as a bare switch (null) or `--flag true` means true; absent or `false` means false."""
        if flag not in self.named:
            return False
        value = self.named[flag]
        return value is None or bool(value.get("Bool", {}).get("val", True))


# -- request input ---------------------------------------------------------------------------------


def request_source(ctx: CallContext, args: Args, header: Any) -> Iterable[Any]:
    """The requests, from the positional list or else the pipeline (a list stream is read lazily, acked).

    Unread input is dropped by the server when the call ends."""
    has_input = isinstance(header, dict) and not ("Value" in header and "Nothing" in header["Value"][0])
    if args.positional:  # wins over input: inside `each {|i| ...}` the item is the implicit input
        return requests_of_value(args.positional[0], args.head)
    if isinstance(header, dict) and "ListStream" in header:
        return (codec.decode_value(item) for item in ctx.stream_items(header))
    if isinstance(header, dict) and "ByteStream" in header:
        raise LabeledError(
            "got raw bytes or text, not a list of request records",
            [("this command", args.head)],
            help="parse it first, e.g. `open requests.json | batch-requests` or "
            "`... | from json | batch-requests`",
            code="nu_plugin_greenfetch::invalid_input",
        )
    if has_input:
        return requests_of_value(header["Value"][0], args.head)
    raise LabeledError(
        "no requests given",
        [("expects a list of request records", args.head)],
        help="e.g. batch-requests [{service: s3, operation: ListBuckets}]",
        code="nu_plugin_greenfetch::invalid_input",
    )


def requests_of_value(value: NuValue, head: Span) -> list[Any]:
    """A list value as raw requests; anything else is a LabeledError that says what would be valid."""
    if "List" in value:
        return [codec.decode_value(item) for item in value["List"]["vals"]]
    kind = codec.type_name(value)
    hint = {
        "record": "a single record: wrap it in a list, e.g. [$request] | batch-requests",
        "range": "a range: build requests from it, e.g. 0..9 | each {|i| {service: s3, operation: "
        "HeadObject, params: {Bucket: b, Key: $'k($i)'}}} | batch-requests",
    }.get(kind, "give a list of records like [{service: s3, operation: ListBuckets, params: {}}]")
    raise LabeledError(
        f"expected a list of request records, got {kind}",
        [(f"this is a {kind}", (codec.span_of(value, head) or head))],
        help=hint,
        code="nu_plugin_greenfetch::invalid_input",
    )


# nu starts the plugin with its environment of that moment and keeps the process: a later
# `$env.AWS_REGION = ...` reaches us only through the engine. These request fields follow it.
_FOLLOWED = {
    "region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "profile": ("AWS_PROFILE",),
    "endpoint_url": ("AWS_ENDPOINT_URL",),
}


def session_defaults(current: Mapping[str, Any], started: Mapping[str, str]) -> dict[str, str]:
    """Request fields whose environment variable nu has now differs from the plugin's own (pure)."""
    out = {}
    for name, variables in _FOLLOWED.items():
        now = next((str(current[v]) for v in variables if current.get(v)), None)
        then = next((started[v] for v in variables if started.get(v)), None)
        if now and now != then:
            out[name] = now
    return out


def current_env(ctx: CallContext) -> dict[str, Any]:
    response = ctx.engine_call("GetEnvVars")
    values = response.get("ValueMap", {}) if isinstance(response, dict) else {}
    wanted = {v for variables in _FOLLOWED.values() for v in variables}
    return {k: codec.decode_value(v) for k, v in values.items() if k in wanted}


def with_defaults(requests: Iterable[Any], defaults: Mapping[str, str]) -> Iterable[Any]:
    """Fill the followed fields a request leaves out; requests that set them keep theirs."""
    if not defaults:
        return requests
    return ({**defaults, **raw} if isinstance(raw, dict) else raw for raw in requests)


def requests_for(ctx: CallContext, args: Args, header: Any) -> Iterable[Any]:
    return with_defaults(request_source(ctx, args, header), session_defaults(current_env(ctx), os.environ))


# -- results ---------------------------------------------------------------------------------------


def result_value(result: greenfetch.Result, span: Span) -> NuValue:
    """A Result as the §2 record, plus `duration`; the response keeps its dates as Nushell dates."""
    record: dict[str, Any] = {}
    for key, value in result.to_dict().items():
        record[key] = result.result if key == "result" else value
        if key == "duration_ms":
            record["duration"] = Duration.from_seconds(result.duration_ms / 1000.0)
    return codec.to_value(record, span)


def in_request_order(results: Iterable[greenfetch.Result]) -> Iterator[greenfetch.Result]:
    """Results arrive in completion order; hand them on in request order as soon as that is possible."""
    waiting: dict[int, greenfetch.Result] = {}
    following = 0
    for result in results:
        waiting[result.index] = result
        while following in waiting:
            yield waiting.pop(following)
            following += 1
    yield from (waiting[i] for i in sorted(waiting))


def stats_value(rows: list[dict[str, Any]], span: Span) -> NuValue:
    seconds = ("avg_duration", "p50", "p90", "p99", "max")
    table = [
        {
            k: Duration.from_seconds(v) if k in seconds and isinstance(v, (int, float)) else v
            for k, v in row.items()
        }
        for row in rows
    ]
    return codec.to_value(table, span)


# -- the commands ----------------------------------------------------------------------------------


def batch_requests(ctx: CallContext, args: Args, header: Any) -> Any:
    concurrency = args.int_flag("concurrency")
    fail_fast = args.bool_flag("fail-fast")
    requests = requests_for(ctx, args, header)
    options = {} if concurrency is None else {"concurrency": concurrency}
    results = ctx.interruptible(greenfetch.iter_results(requests, fail_fast=fail_fast, **options))
    if not fail_fast:
        return (result_value(r, args.head) for r in in_request_order(results))
    done: list[greenfetch.Result] = []
    for result in results:
        done.append(result)
        if result.error is not None:
            raise _batch_failed(result, done, args)
    return (
        codec.to_value([], args.head)
        if not done
        else {
            "List": {
                "vals": [result_value(r, args.head) for r in sorted(done, key=lambda r: r.index)],
                "span": args.head,
            }
        }
    )


def _batch_failed(failure: greenfetch.Result, done: list[greenfetch.Result], args: Args) -> LabeledError:
    error = greenfetch.BatchFailed(failure, sorted(done, key=lambda r: r.index))
    return LabeledError(
        str(error),
        [(f"request {failure.index} failed: {failure.error_code}", args.head)],
        help=failure.guidance
        or "run with --fail-fast false to get every result, failed ones as records with `error`",
        code="nu_plugin_greenfetch::batch_failed",
    )


def adaptive_batch(ctx: CallContext, args: Args, header: Any) -> Any:
    options: dict[str, Any] = {}
    for flag in ("initial-concurrency", "min-concurrency", "max-concurrency"):
        value = args.int_flag(flag)
        if value is not None:
            options[flag.replace("-", "_")] = value
    latency = args.duration_flag("target-latency")
    if latency is not None:
        options["target_latency"] = latency
    _check_bounds(args, options)
    requests = requests_for(ctx, args, header)
    # streamed: records reach nu as soon as request order allows, not when the whole batch ends
    results = greenfetch.default_engine().iter_adaptive(requests, **options)
    return (result_value(r, args.head) for r in in_request_order(ctx.interruptible(results)))


def _check_bounds(args: Args, options: dict[str, Any]) -> None:
    low, high = options.get("min_concurrency", 1), options.get("max_concurrency", 256)
    if low > high:
        raise LabeledError(
            f"--min-concurrency {low} is above --max-concurrency {high}",
            [("must be <= --max-concurrency", args.span("min-concurrency"))],
            code="nu_plugin_greenfetch::invalid_flag",
        )
    initial = options.get("initial_concurrency")
    if initial is not None and not low <= initial <= high:
        raise LabeledError(
            f"--initial-concurrency {initial} is outside [{low}, {high}]",
            [(f"must be between {low} and {high}", args.span("initial-concurrency"))],
            code="nu_plugin_greenfetch::invalid_flag",
        )


def dedupe_request(ctx: CallContext, args: Args, header: Any) -> Any:
    signature_value, closure_value = args.positional[0], args.positional[1]
    signature = codec.decode_value(signature_value)
    closure = codec.decode_value(closure_value)
    if not isinstance(signature, str) or not isinstance(closure, codec.Closure):
        raise LabeledError(
            "usage: dedupe-request <signature: string> <operation: closure>",
            [("here", args.head)],
            code="nu_plugin_greenfetch::invalid_input",
        )
    window = args.duration_flag("window", allow_zero=True)
    return greenfetch.dedupe_request(
        signature, lambda: ctx.eval_closure(closure), window=5.0 if window is None else window
    )


def perf_stats(ctx: CallContext, args: Args, header: Any) -> Any:
    return stats_value(greenfetch.perf_stats(), args.head)


def perf_reset(ctx: CallContext, args: Args, header: Any) -> Any:
    greenfetch.reset_stats()
    return None


# -- the catalog and the inventory ------------------------------------------------------------------

# Which flag an InventoryError is about, by what its message names (the most specific first).
_FLAG_WORDS = [
    ("exclude-types", "--exclude-types"),
    ("exclude-regions", "--exclude-regions"),
    ("regions", "--regions"),
    ("service", "--service"),
    ("role-name", "--role-name"),
    ("accounts", "--accounts"),
    ("status-store", "--status-store"),
    ("types", "resource type"),
    ("types", "--types"),
]


def _invalid(exc: Exception, args: Args) -> LabeledError:
    """greenfetch's one-line error for bad input, labelled on the flag it is about (else the command)."""
    msg = str(exc)
    overlay = args.text_flag("catalog") if "catalog" in args.named else None
    flag = (
        "catalog"  # a bad overlay file's error starts with the file's name
        if overlay and msg.startswith(overlay)
        else next((f for f, word in _FLAG_WORDS if word in msg and f in args.named), None)
    )
    return LabeledError(
        msg,
        [(f"invalid --{flag}" if flag else "invalid input", args.span(flag) if flag else args.head)],
        code="nu_plugin_greenfetch::invalid_input",
    )


def aws_catalog(ctx: CallContext, args: Args, header: Any) -> Any:
    try:
        kinds = (
            inventory.catalog(args.text_flag("catalog")) if "catalog" in args.named else inventory.catalog()
        )
        rows = kinds.listing(service=args.text_flag("service"), types=args.text_flag("types"))
    except inventory.InventoryError as exc:
        raise _invalid(exc, args) from None
    return (codec.to_value(t.describe(), args.head) for t in rows)


def aws_inventory(ctx: CallContext, args: Args, header: Any) -> Any:
    concurrency = args.int_flag("concurrency") or 64
    ttl = args.duration_flag("cache-ttl", allow_zero=True)
    followed = session_defaults(current_env(ctx), os.environ)
    settings = {
        "region": args.text_flag("region") or followed.get("region"),
        "profile": args.text_flag("profile") or followed.get("profile"),
        "endpoint_url": args.text_flag("endpoint-url") or followed.get("endpoint_url"),
        "max_attempts": args.int_flag("max-attempts"),
        "concurrency": concurrency,
        # as the CLI's: an LRU of clients twice the concurrency keeps them hot, bounded
        "max_clients": min(512, max(64, 2 * concurrency)),
    }
    engine = greenfetch.Engine(
        greenfetch.Config.resolve({k: v for k, v in settings.items() if v is not None})
    )
    try:
        # resolving the accounts makes calls (STS, Organizations): Ctrl-C stops them too
        plan = ctx.interruptible_call(
            lambda: inventory.plan_inventory(
                engine,
                accounts=args.text_flag("accounts"),
                role_name=args.text_flag("role-name"),
                external_id=args.text_flag("external-id"),
                regions=args.text_flag("regions") or "enabled",
                exclude_regions=args.text_flag("exclude-regions"),
                types=args.text_flag("types"),
                exclude_types=args.text_flag("exclude-types"),
                cache_ttl=ttl,
                status_store=args.text_flag("status-store"),
                concurrency=concurrency,
                exclude_accounts=args.text_flag("exclude-accounts"),
                org_ous=args.text_flag("org-ou"),
                catalog_file=args.text_flag("catalog"),
                tags=args.bool_flag("tags"),
            )
        )
    except inventory.InventoryError as exc:
        engine.close()
        raise _invalid(exc, args) from None
    except BaseException:
        engine.close()
        raise
    return _records(ctx, engine, plan, args.head)


def _records(ctx: CallContext, engine: Any, plan: Any, head: Span) -> Iterator[NuValue]:
    """The run's records as they complete; closing this (Drop, Ctrl-C, the end) stops the run, then the engine."""
    records = ctx.interruptible(plan.run())
    try:
        for rec in records:
            yield codec.to_value(rec, head)
    finally:
        records.close()
        engine.close()


COMMANDS: dict[str, Callable[[CallContext, Args, Any], Any]] = {
    "batch-requests": batch_requests,
    "adaptive-batch": adaptive_batch,
    "dedupe-request": dedupe_request,
    "aws perf stats": perf_stats,
    "aws perf reset": perf_reset,
    "aws catalog": aws_catalog,
    "aws inventory": aws_inventory,
}


def handle(ctx: CallContext, name: str, call: dict[str, Any], header: Any) -> Any:
    """The Server's handler: one Run call to its reply (None, a value, or an iterator of values)."""
    command = COMMANDS.get(name)
    if command is None:
        raise LabeledError(
            f"nu_plugin_greenfetch has no command {name!r}; it has {', '.join(COMMANDS)}",
            [("unknown command", call["head"])],
        )
    try:
        return command(ctx, Args.parse(call), header)
    except greenfetch.ConfigError as exc:
        raise LabeledError(
            str(exc), [("invalid setting", call["head"])], code="nu_plugin_greenfetch::invalid_flag"
        ) from exc
