"""What the worker and the coordinator share: the queue, the broker settings and their checks, the
abandoned-shard sweep, and ``redact`` (the only form in which a broker URL is ever printed).

Both sides import this module at the top; neither imports the other. The coordinator sends shards by
task name (``greenfetch.shard``), as Celery producers do, through an app of its own.
"""

# ruff: noqa: I001
from __future__ import annotations

import greenfetch  # noqa: F401  (first: patches for gevent before celery, kombu or redis import ssl)

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from celery import Celery

from .._config import ConfigError, parse_duration
from .._redact import redact_url

__all__ = [
    "QUEUE",
    "TASK",
    "check_broker_url",
    "configure",
    "new_app",
    "redact",
    "redeliver_after",
    "restore_abandoned",
    "sweep_interval",
]

TASK = "greenfetch.shard"
QUEUE = "greenfetch"


def redact(text: str | None) -> str:
    """``text`` with the password of every URL in it replaced by ``***`` (``greenfetch._redact.redact_url``)."""
    return redact_url(text)


def check_broker_url(url: str | None) -> str:
    """A ``redis://`` or ``rediss://`` URL, or ConfigError naming it (redacted) and what is valid."""
    if not url or not url.strip():
        raise ConfigError("no broker: give --broker redis://HOST:PORT/DB or set GREENFETCH_BROKER_URL")
    url = url.strip()
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("redis", "rediss") and bool(parts.hostname) and (parts.port or 0) >= 0
    except ValueError:  # a port that is not a number
        valid = False
    if not valid:
        raise ConfigError(
            f"broker {redact(url)!r} is not a Redis URL; use redis://HOST:PORT/DB "
            "(redis://:PASSWORD@HOST:PORT/DB with a password)"
        )
    return url


def redeliver_after(environ: Mapping[str, str] | None = None) -> float:
    """``GREENFETCH_REDELIVER_AFTER`` in seconds (default 1h): read by workers and the coordinator."""
    env = os.environ if environ is None else environ
    seconds = parse_duration(env.get("GREENFETCH_REDELIVER_AFTER") or "1h", "GREENFETCH_REDELIVER_AFTER")
    if seconds < 2:
        raise ConfigError(
            f"GREENFETCH_REDELIVER_AFTER: {seconds:g}s is too short; use 2s or more (default 1h)"
        )
    return seconds


def sweep_interval(redeliver: float) -> float:
    """How often abandoned shards are looked for: a quarter of the redelivery delay, 1-30 s."""
    return min(30.0, max(1.0, redeliver / 4))


def configure(celery_app: Celery, broker_url: str | None, redeliver: float | None = None) -> Celery:
    """Broker, at-least-once delivery and time limits on ``celery_app``; returns it."""
    redeliver = redeliver_after() if redeliver is None else redeliver
    limit = max(1.0, redeliver / 2)
    transport = {
        "visibility_timeout": redeliver,
        # sweep for abandoned shards on every idle poll, not every 10th
        "unacked_restore_throttle": 1,
        "unacked_restore_interval": sweep_interval(redeliver),
        "socket_timeout": 15,
        "socket_connect_timeout": 5,
    }
    celery_app.conf.update(
        broker_url=broker_url,
        result_backend=None,
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_time_limit=limit,
        broker_transport_options=transport,
        visibility_timeout=redeliver,
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_enable_remote_control=False,
        task_publish_retry_policy={
            "max_retries": 3,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 2,
        },
    )
    return celery_app


def new_app(broker_url: str | None, redeliver: float | None = None, name: str = "greenfetch") -> Celery:
    """A Celery app configured by :func:`configure`, never set as the process's current app."""
    return configure(Celery(name, set_as_current=False), broker_url, redeliver)


def restore_abandoned(celery_app: Celery) -> None:
    """Put shards whose delivery is older than the visibility timeout back on the queue.

    kombu does this sweep itself only on some paths: a gevent worker polls with BRPOP, and an empty
    BRPOP ends the poll before kombu's sweep (kombu 5.7, ``MultiChannelPoller.get``), so an idle
    gevent worker never restores a dead worker's shards. Workers and the coordinator call this
    instead; kombu's Redis mutex keeps concurrent sweeps from restoring one shard twice."""
    with celery_app.connection_for_read() as conn:
        channel = conn.default_channel
        channel.qos.restore_visible(num=channel.unacked_restore_limit, interval=1)
