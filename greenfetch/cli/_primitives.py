"""``greenfetch adaptive`` and ``greenfetch stats``: faces over adaptive_batch and the metrics.

``stats`` runs in a process of its own, so it cannot see another process's memory: it reads what a
run exposed, a ``--metrics-textfile`` it wrote (``--textfile``) or the ``/metrics`` page of a run that
is still going (``--url``), and rebuilds the perf-stats table from the histogram. Its percentiles are
therefore bucket-interpolated (as Prometheus's ``histogram_quantile``), and ``max`` is unknown (-).
"""

from __future__ import annotations

import json
import sys
import urllib.request
from typing import IO, Any

import click

from .._config import MAX_CONCURRENCY, ConfigError
from .._exposition import ExpositionError
from ._app import CliState, fail_usage, main, pass_state
from ._batch import output_options, request_options, run_and_emit
from ._exposition_stats import perf_stats_from_text
from ._input import read_requests
from ._output import render_stats, write_json

__all__ = ["adaptive", "stats"]

_LIMIT = click.IntRange(max=MAX_CONCURRENCY)  # the ceiling every concurrency shares (see _config)


@main.command()
@click.argument("file", type=click.File("r"), default="-")
@click.option("--initial-concurrency", type=_LIMIT, default=5, show_default=True, help="Limit to start from.")
@click.option(
    "--target-latency",
    default="500ms",
    show_default=True,
    help="Per-attempt latency above which the limit goes down (500ms, 1s, 0.5).",
)
@click.option(
    "--min-concurrency", type=_LIMIT, default=1, show_default=True, help="The limit never goes below."
)
@click.option(
    "--max-concurrency", type=_LIMIT, default=256, show_default=True, help="The limit never goes above."
)
@click.option(
    "--trace",
    "trace_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the controller's trace (per scope: time, limit, latency, throttles) as JSON here.",
)
@request_options
@output_options
@pass_state
def adaptive(
    state: CliState,
    file: IO[str],
    initial_concurrency: int,
    target_latency: str,
    min_concurrency: int,
    max_concurrency: int,
    fail_fast: bool,
    trace_path: str | None,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    output: str,
    query: str | None,
    progress: bool | None,
) -> None:
    """Run the requests in FILE (JSON array or JSON Lines; - for stdin) with an adaptive concurrency
    limit that follows per-attempt latency and AWS throttling (per service, region and account)."""
    options = {
        "initial_concurrency": initial_concurrency,
        "target_latency": target_latency,
        "min_concurrency": min_concurrency,
        "max_concurrency": max_concurrency,
        "fail_fast": fail_fast,
        "on_trace": (lambda trace: _write_trace(trace_path, trace)) if trace_path else None,
    }
    engine = state.engine(region=region, profile=profile, endpoint_url=endpoint_url)
    requests = read_requests(file, "-" if file is sys.stdin else file.name)  # lazy: nothing read yet
    try:  # streamed, not adaptive_batch: Ctrl-C or SIGTERM still writes what completed
        results = engine.iter_adaptive(requests, **options)
    except ConfigError as exc:  # bad numbers: exit 2 before any input is read
        fail_usage(str(exc))
    run_and_emit(lambda _: results, requests, output, query, progress, fail_fast=fail_fast)


def _write_trace(path: str, trace: dict[str, Any]) -> None:
    write_json(
        path, {scope: [p.to_dict() for p in points] for scope, points in trace.items()}, flag="--trace"
    )


@main.command()
@click.option("--textfile", type=click.File("r"), help="A file written by --metrics-textfile.")
@click.option("--url", help="A running greenfetch's metrics page, e.g. http://localhost:9464/metrics.")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
def stats(textfile: IO[str] | None, url: str | None, output: str) -> None:
    """The perf-stats table (per service:operation: count, errors, throttles, avg, p50/p90/p99 in
    seconds) of a run that wrote --metrics-textfile, or of one serving --metrics-port."""
    if (textfile is None) == (url is None):
        fail_usage(
            "stats needs exactly one source: --textfile PATH (written by `greenfetch --metrics-textfile "
            "PATH ...`) or --url http://HOST:PORT/metrics (a run started with --metrics-port)"
        )
    try:
        text = textfile.read() if textfile is not None else _fetch(str(url))
        rows = perf_stats_from_text(text)
    except ExpositionError as exc:
        fail_usage(str(exc))
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(render_stats(rows))


def _fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise ExpositionError(f"{url}: cannot read metrics: {getattr(exc, 'reason', None) or exc}") from None
