"""The root click group, its global options, and the import of every command module."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import click

from .. import _patch
from .._exceptions import ConfigError, StorageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BATCH_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

# Command modules, imported when the group is built. Each defines commands with @main.command().
_COMMAND_MODULES = ["_batch", "_demo", "_primitives", "_inventory", "_drs", "_diff", "_worker"]


@dataclass
class CliState:
    """What every command gets as ``ctx.obj``: the global flags, where metrics go, and the engine,
    built on first use. (Not a botocore Session: the CLI's own state for one invocation.)"""

    flags: dict[str, Any]
    exposition: dict[str, Any] = field(default_factory=dict)  # pushgateway URL, textfile path
    _engine: Any = None

    def config(self, **overrides: Any) -> Any:
        from .._config import Config

        return Config.resolve({**self.flags, **{k: v for k, v in overrides.items() if v is not None}})

    def engine(self, **overrides: Any) -> Any:
        if self._engine is None:
            from .. import Engine

            self._engine = Engine(self.config(**overrides))
            _start_exposition(self)
        return self._engine


pass_state = click.make_pass_decorator(CliState)


class _ErrorLine(click.ClickException):
    """An error already worded for the user: ``Error: MESSAGE``, one line, and its exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class; ours varies


class UsageLine(click.UsageError):
    """``fail_usage``'s error: the message already says what would be valid, so no pointer to --help."""


@contextlib.contextmanager
def _one_line() -> Iterator[None]:
    """Every error a user can cause, as one line on stderr: click's usage errors print three (usage,
    "Try --help", the error); a setting greenfetch cannot use (exit 2) and storage that refused (a full
    disk, read-only media, a damaged database: exit 1, or 2 for a damaged file) print their own line."""
    try:
        yield
    except UsageLine as exc:
        raise _ErrorLine(exc.format_message(), EXIT_USAGE) from None
    except click.UsageError as exc:
        message = exc.format_message()
        if exc.ctx is not None and (
            not isinstance(exc, click.BadParameter) or isinstance(exc, click.MissingParameter)
        ):
            message = (
                f"{message.rstrip('.')} (see '{exc.ctx.command_path} --help')"  # click's own parse errors
            )
        raise _ErrorLine(message, EXIT_USAGE) from None
    except ConfigError as exc:
        raise _ErrorLine(str(exc), EXIT_USAGE) from None
    except StorageError as exc:
        raise _ErrorLine(str(exc), exc.exit_code) from None
    except OSError as exc:  # a write no command words itself (click.echo to a full disk): still one line
        from .._storage_errors import DISK_ERRNOS, storage_error

        if exc.errno not in DISK_ERRNOS:
            raise
        if not exc.filename:  # a descriptor: stdout, as good as always
            from ._output import discard_stdout

            discard_stdout()
        what = f"cannot write {exc.filename!r}" if exc.filename else "cannot write the output"
        raise _ErrorLine(
            str(storage_error(exc, what, "what was written is incomplete")), EXIT_FAILED
        ) from None


class _Group(click.Group):
    """The root group: parsing (``make_context``) and running a command (``invoke``) under ``_one_line``."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        with _one_line():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _one_line():
            return super().invoke(ctx)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--region", help="Default region for requests that name none (else AWS_REGION).")
@click.option("--profile", help="Default AWS profile (else AWS_PROFILE).")
@click.option("--endpoint-url", help="Send every call to this endpoint (else AWS_ENDPOINT_URL*).")
@click.option(
    "--max-attempts", type=int, help="Attempts per call, retries included (GREENFETCH_MAX_ATTEMPTS)."
)
@click.option("--metrics-port", type=int, help="Serve Prometheus /metrics on this port while running.")
@click.option(
    "--pushgateway",
    metavar="URL",
    callback=lambda _c, _p, v: _url_flag(v),
    help="Push metrics to this Pushgateway when the run ends.",
)
@click.option(
    "--metrics-textfile", metavar="PATH", help="Write metrics here for node_exporter's textfile collector."
)
@click.option(
    "--processes",
    metavar="N|auto",
    callback=lambda _c, _p, v: _processes_flag(v),
    help="Worker processes (auto = the usable CPUs; GREENFETCH_PROCESSES) [default: 1].",
)
@click.version_option(package_name="greenfetch")
@click.pass_context
def main(
    ctx: click.Context,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    max_attempts: int | None,
    metrics_port: int | None,
    pushgateway: str | None,
    metrics_textfile: str | None,
    processes: int | None,
) -> None:
    """Run many AWS API calls at once, fast and safely."""
    flags = {
        "region": region,
        "profile": profile,
        "endpoint_url": endpoint_url,
        "max_attempts": max_attempts,
        "metrics_port": metrics_port,
        "processes": processes,
    }
    state = CliState(
        flags={k: v for k, v in flags.items() if v is not None},
        exposition={"pushgateway": pushgateway, "textfile": metrics_textfile},
    )
    ctx.obj = state
    ctx.call_on_close(lambda: _finish_exposition(state))


def _url_flag(value: str | None) -> str | None:
    from .._exposition import ExpositionError, check_url

    try:
        return None if value is None else check_url(value)
    except ExpositionError as exc:
        raise click.BadParameter(str(exc)) from None


def _processes_flag(value: str | None) -> int | None:
    from .._config import ConfigError, parse_processes

    try:
        return None if value is None else parse_processes(value, "--processes")
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix("--processes: ")) from None


def _start_exposition(state: CliState) -> None:
    port = state._engine.config.metrics_port
    if port:
        from .._config import ConfigError
        from .._exposition import ExpositionError, serve

        try:
            serve(state._engine.metrics.registry, port)
        except ExpositionError as exc:  # a port in use is a setting error: one line, exit 2, before any call
            raise ConfigError(str(exc)) from None


def _finish_exposition(state: CliState) -> None:
    """Textfile and Pushgateway after the run; a failure here is reported, never a traceback, and
    leaves the run's own exit code alone (the data was already written)."""
    if state._engine is None:
        return
    from .._exposition import ExpositionError, push, write_textfile

    registry = state._engine.metrics.registry
    try:
        if state.exposition.get("textfile"):
            write_textfile(registry, state.exposition["textfile"])
        if state.exposition.get("pushgateway"):
            push(registry, state.exposition["pushgateway"])
    except ExpositionError as exc:
        click.echo(f"greenfetch: warning: {exc}", err=True)


def fail_usage(message: str) -> None:
    """Bad usage or input: one clear line on stderr, exit 2, no traceback."""
    raise UsageLine(message)


def load_commands() -> click.Group:
    """Import every command module (each registers itself on ``main``) and return the group."""
    for name in _COMMAND_MODULES:
        importlib.import_module(f"greenfetch.cli.{name}")
    return main


def run() -> None:
    """Console entry point: patch first, then build and run the group."""
    try:
        _patch.ensure_patched()
    except _patch.EngineImportError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    from .._config import raise_open_file_limit
    from ._output import whole_stdout
    from ._signals import received, route_to_main

    route_to_main()  # SIGINT, SIGTERM, SIGHUP: write what completed, exit 128 + signal
    raise_open_file_limit()
    whole_stdout()  # a write to a full disk raises instead of dropping what did not fit
    try:
        load_commands()(prog_name="greenfetch")
    except ConfigError as exc:  # every bad setting, flag or environment, wherever it is found
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except SystemExit as exc:  # a command without its own handler (click's "Aborted!" is exit 1): same code
        if (signum := received()) is not None:
            sys.exit(128 + signum)
        _check_stdout(exc.code)
        raise


def _check_stdout(code: Any) -> None:
    """What a command left in stdout's buffer goes out now, and a refusal is one line and exit 1 (a
    reader that went away, ``| head``, exit 1 and no line), never exit 0 with a cut-off file."""
    import errno

    from .._storage_errors import storage_error
    from ._output import flush_stdout

    refused = flush_stdout()
    if refused is None:
        return
    if refused.errno != errno.EPIPE:
        click.echo(
            f"Error: {storage_error(refused, 'cannot write the output', 'what was written is incomplete')}",
            err=True,
        )
    sys.exit(code if isinstance(code, int) and code != EXIT_OK else EXIT_FAILED)
