"""``greenfetch worker``: a Celery worker on the gevent pool that runs inventory shards.

The ``greenfetch`` entry point patched the standard library before anything imported ssl, so the
worker starts from an already patched process (Celery's own ``celery`` command patches when it sees
``-P gevent``; a custom entry point that starts the gevent pool unpatched hangs, celery#8168).
The broker URL goes into the app's configuration, never into an argv Celery could print; prefer
``GREENFETCH_BROKER_URL`` to ``--broker`` when it holds a password (argv shows in ``ps``).

SIGTERM and SIGHUP are Celery's warm shutdown: no new shard is taken, the running ones finish and are
acknowledged (``task_acks_late``), then exit 0; nothing of a busy worker's shard is lost
(tests/test_worker_signals.py). Only a kill before they finish leaves a shard to redelivery.
SIGQUIT and a second Ctrl-C are Celery's cold shutdown (run from a greenlet here, see
``_cold_shutdown_in_a_greenlet``): the worker stops at once and its running shards go back to the
queue for another worker (``distributed._ShardRequest.acknowledge``). So is a second SIGTERM or SIGHUP
(Celery itself ignores a second SIGTERM).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .. import _patch
from .._config import ConfigError
from ._app import EXIT_FAILED, EXIT_USAGE, fail_usage, main

__all__ = ["CELERY_INSTALL", "worker"]

# the one way to say how to get the celery extra (in a checkout, the package index has nothing to offer)
CELERY_INSTALL = "pip install 'greenfetch[celery]' (from a checkout: pip install -e '.[celery]')"


@main.command()
@click.option(
    "--broker",
    envvar="GREENFETCH_BROKER_URL",
    metavar="URL",
    help="redis://HOST:PORT/DB [GREENFETCH_BROKER_URL; use it for URLs with a password].",
)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Shards in flight in this worker (each runs its own pool of calls).",
)
@click.option(
    "--loglevel",
    "-l",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
)
@click.option("--hostname", "-n", help="Celery node name [default: greenfetch@HOST].")
def worker(broker: str | None, concurrency: int, loglevel: str, hostname: str | None) -> None:
    """Run inventory shards sent by `greenfetch inventory --broker` (Celery, gevent pool)."""
    try:
        from .. import distributed
    except ImportError as exc:
        fail_usage(f"greenfetch worker needs the celery extra ({exc}); install it with {CELERY_INSTALL}")
        return
    try:
        url = distributed.check_broker_url(broker)
        redeliver = distributed.redeliver_after()
    except ConfigError as exc:
        fail_usage(str(exc))
        return
    if not _patch.is_patched():
        click.echo("Error: greenfetch worker runs on gevent; unset GREENFETCH_ENGINE=threads", err=True)
        sys.exit(EXIT_USAGE)
    _refuse_a_wrong_password(url)
    from celery import concurrency as pools

    pools.get_implementation("gevent")  # what `celery -P gevent` sets up before loading the app
    distributed.configure(distributed.app, url, redeliver)
    _warm_then_cold()
    _cold_shutdown_in_a_greenlet()
    # --without-heartbeat: Celery's event heartbeat (for monitors; nothing here reads it) publishes
    # every 2 s holding the event dispatcher's lock, and with Redis gone it retries forever; the
    # consumer's restart then waits for that lock to send "worker-offline", and no signal ended the
    # worker (a stop became a kill). Gossip and mingle are off for the same reason: nothing uses them.
    argv = [
        "worker",
        "-P",
        "gevent",
        "-c",
        str(concurrency),
        "-Q",
        distributed.QUEUE,
        "-l",
        loglevel.upper(),
        "-n",
        hostname or "greenfetch@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    distributed.app.worker_main(argv)


def _refuse_a_wrong_password(url: str) -> None:
    """A broker that refuses the credentials (wrong password, no password, an ACL user that may not
    connect) is one line and exit 1, where Celery would retry it 100 times. A broker that does not
    answer yet is left to Celery's retries: a worker may start before Redis does."""
    import redis

    from ..distributed import redact, redis_client

    client = redis_client(url)
    try:
        client.ping()
    except (redis.AuthenticationError, redis.exceptions.NoPermissionError) as exc:
        click.echo(
            f"Error: the broker at {redact(url)} refused the credentials: {redact(str(exc))} "
            "(check the password in --broker or GREENFETCH_BROKER_URL)",
            err=True,
        )
        sys.exit(EXIT_FAILED)
    except redis.RedisError:
        pass
    finally:
        client.close()


def _warm_then_cold() -> None:
    """SIGTERM and SIGHUP: the first is Celery's warm shutdown (running shards finish, exit 0), a
    second is its cold shutdown, as a second Ctrl-C already is (issue 15: a second signal exits at
    once; the shards it stops go back to the queue, see ``_cold_shutdown_in_a_greenlet``).

    Celery ignores a second SIGTERM, and its own SIGHUP handler (installed when stdout is not a
    terminal, i.e. under a service manager) restarts the worker by re-executing ``sys.executable``
    with ``sys.argv`` at exit: from ``python -m greenfetch.cli`` that runs ``cli/__main__.py`` as a
    script, which dies on its relative import, and anywhere it starts a worker nobody asked for.
    ``install_platform_tweaks`` looks the installers up in their module at start, so replacing them
    there (in this worker process only) is enough."""
    from functools import partial

    from celery.apps import worker as celery_worker

    def warm_then_cold(sig: str) -> Any:
        def arm_cold(worker: Any) -> None:  # as Celery's on_SIGINT does for a second Ctrl-C
            celery_worker.install_worker_term_hard_handler(worker, sig=sig)

        return partial(celery_worker._shutdown_handler, sig=sig, how="Warm", callback=arm_cold)

    celery_worker.install_worker_term_handler = warm_then_cold("SIGTERM")
    celery_worker.install_worker_restart_handler = warm_then_cold("SIGHUP")


def _cold_shutdown_in_a_greenlet() -> None:
    """Celery's cold shutdown (SIGQUIT, or a second Ctrl-C) cancels the running shards, then joins
    the pool inside the signal handler. gevent runs signal handlers as hub callbacks, where nothing
    may block: the join died with BlockingSwitchOutError ("Unrecoverable error", a traceback).
    Run from a greenlet, the same handler works; the shards it kills go back to the queue
    (``distributed._ShardRequest.acknowledge``).

    A cold shutdown is a promise to stop at once, so it also starts a deadline: a worker still running
    ``COLD_DEADLINE`` seconds later (something in Celery or kombu blocked on a broker that is gone)
    says so in one line and exits 1. Its unacknowledged shards return after the redelivery delay, as
    a killed worker's do."""
    import signal
    from functools import wraps

    import gevent
    from celery.apps import worker as celery_worker

    install = celery_worker.install_worker_term_hard_handler

    @wraps(install)
    def install_in_a_greenlet(worker: Any, sig: str = "SIGQUIT", **options: Any) -> None:
        install(worker, sig=sig, **options)
        handler = signal.getsignal(getattr(signal, sig))
        if callable(handler):

            def cold(*args: Any) -> None:
                gevent.spawn(handler, *args)
                gevent.spawn(_exit_after, COLD_DEADLINE)

            signal.signal(getattr(signal, sig), cold)

    celery_worker.install_worker_term_hard_handler = install_in_a_greenlet


COLD_DEADLINE = 5.0  # seconds a cold shutdown may take before the worker exits by itself


def _exit_after(seconds: float) -> None:
    import os

    import gevent

    gevent.sleep(seconds)
    os.write(2, f"worker: still running {seconds:g}s into a cold shutdown; exiting now\n".encode())
    os._exit(EXIT_FAILED)
