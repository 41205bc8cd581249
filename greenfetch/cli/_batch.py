"""``greenfetch batch``: requests in, one result per request out."""

from __future__ import annotations

import errno
import sys
from typing import IO, Any

import click
import jmespath
import jmespath.exceptions
import jmespath.functions

from .._exceptions import BatchFailed
from .._models import Result
from .._storage_errors import storage_error
from ._app import EXIT_BATCH_FAILED, EXIT_FAILED, EXIT_OK, CliState, main, pass_state
from ._input import read_requests
from ._output import OUTPUTS, compile_query, discard_stdout, emit, emit_one
from ._progress import Progress
from ._signals import exit_code

__all__ = ["batch", "output_options", "request_options", "run_and_emit"]


def output_options(fn: Any) -> Any:
    """The output flags every result-producing command shares."""
    fn = click.option(
        "--progress/--no-progress",
        default=None,
        help="Progress on stderr (default: only when stderr is a terminal).",
    )(fn)
    fn = click.option("--query", help="JMESPath applied to the results, as the AWS CLI does.")(fn)
    fn = click.option("--output", "-o", type=click.Choice(OUTPUTS), default="json", show_default=True)(fn)
    return fn


def request_options(fn: Any) -> Any:
    """The flags of commands that run a requests file: fail-fast, and defaults for requests that name none."""
    fn = click.option("--endpoint-url", help="Endpoint for requests that name none.")(fn)
    fn = click.option("--profile", help="Profile for requests that name none.")(fn)
    fn = click.option("--region", help="Region for requests that name none.")(fn)
    fn = click.option(
        "--fail-fast/--no-fail-fast",
        default=False,
        show_default=True,
        help="Stop at the first failure (exit 3) instead of running everything.",
    )(fn)
    return fn


@main.command()
@click.argument("file", type=click.File("r"), default="-")
@click.option(
    "--concurrency", "-c", type=click.IntRange(min=1), help="Requests in flight at once [default: 10]."
)
@request_options
@output_options
@pass_state
def batch(
    state: CliState,
    file: IO[str],
    concurrency: int | None,
    fail_fast: bool,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    output: str,
    query: str | None,
    progress: bool | None,
) -> None:
    """Run the requests in FILE (a JSON array or JSON Lines; - for stdin) concurrently."""
    engine = state.engine(region=region, profile=profile, endpoint_url=endpoint_url, concurrency=concurrency)
    requests = read_requests(file, "-" if file is sys.stdin else file.name)
    run_and_emit(
        lambda reqs: engine.iter_results(reqs, fail_fast=fail_fast),
        requests,
        output,
        query,
        progress,
        fail_fast=fail_fast,
    )


def run_and_emit(
    run: Any, requests: Any, output: str, query: str | None, progress: bool | None, fail_fast: bool = False
) -> None:
    """Drive ``run(requests)`` (an iterator of Results), report progress, write output, exit with the
    contract's code. JSON Lines stream as results complete; JSON and tables are written in request order
    at the end, or on Ctrl-C with whatever completed. Stdout that refuses (a full disk, /dev/full) stops
    the run: one line on stderr, exit 1, never exit 0 with a cut-off file."""
    expr = compile_query(query)
    _check_functions(expr, query)
    bar = Progress(enabled=progress)
    done: list[Result] = []
    failure: Result | None = None
    interrupted: KeyboardInterrupt | None = None
    refused: _StdoutRefused | None = None
    written = 0
    try:
        for result in run(requests):
            bar.update(result.ok)
            if output == "jsonl":
                _to_stdout(emit_one, result, expr)
                written += 1
            else:
                done.append(result)
            failure = failure or (None if result.ok else result)
    except _StdoutRefused as exc:  # nothing more can be delivered: stop sending
        refused = exc
    except BatchFailed as exc:
        done, failure = exc.results, exc.failure
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP (see _signals)
        interrupted = exc
    except jmespath.exceptions.JMESPathError as exc:  # a query that fails on the data (jsonl)
        raise _query_failed(query, exc) from None
    finally:  # whatever ends the stream (a signal, a failing query, a read error), what completed is written
        bar.close()
        if output != "jsonl" and refused is None:
            try:
                _to_stdout(emit, sorted(done, key=lambda r: r.index), output, query)
            except jmespath.exceptions.JMESPathError as exc:
                raise _query_failed(query, exc) from None
            except _StdoutRefused as exc:
                refused = exc
    if refused is not None:
        _stdout_failed(refused.cause, output, written)
    if interrupted is not None:
        click.echo(f"Interrupted: {bar.done} results written.", err=True)
        sys.exit(exit_code(interrupted))
    if failure is not None and fail_fast:
        click.echo(f"Batch failed at request {failure.index}: {failure.error}", err=True)
        sys.exit(EXIT_BATCH_FAILED)
    sys.exit(EXIT_FAILED if failure is not None else EXIT_OK)


class _StdoutRefused(Exception):
    """A write to stdout failed; carries the OSError (kept apart from OSErrors of the input or the run)."""

    def __init__(self, cause: OSError):
        super().__init__(str(cause))
        self.cause = cause


def _to_stdout(write: Any, *args: Any) -> None:
    try:
        write(*args)
    except OSError as exc:
        raise _StdoutRefused(exc) from None


def _stdout_failed(exc: OSError, output: str, written: int) -> None:
    """Exit 1 for output that did not all arrive: one line saying what was kept. A reader that went
    away (``| head``) gets no line: it asked for no more."""
    discard_stdout()
    if exc.errno != errno.EPIPE:
        kept = (
            f"the {'table' if output == 'table' else 'JSON'} output is cut off"
            if output != "jsonl"
            else f"the first {written} results are whole lines, the rest are missing"
            if written
            else "no result was written"
        )
        click.echo(f"Error: {storage_error(exc, 'cannot write the results to stdout', kept)}", err=True)
    sys.exit(EXIT_FAILED)


_FUNCTIONS = frozenset(jmespath.functions.Functions.FUNCTION_TABLE)


def _check_functions(expr: Any, query: str | None) -> None:
    """An unknown function is found only when the search runs, after every call was made: name it
    before any call instead (exit 2)."""
    if expr is None:
        return
    stack = [expr.parsed]
    while stack:
        node = stack.pop()
        if node.get("type") == "function_expression" and node.get("value") not in _FUNCTIONS:
            raise click.BadParameter(
                f"{query!r}: unknown function {node['value']}(); JMESPath functions are "
                f"{', '.join(sorted(_FUNCTIONS))}",
                param_hint="--query",
            )
        stack.extend(child for child in node.get("children", ()) if isinstance(child, dict))


def _query_failed(query: str | None, exc: Exception) -> click.ClickException:
    return click.BadParameter(f"{query!r} failed on the results: {exc}", param_hint="--query")
