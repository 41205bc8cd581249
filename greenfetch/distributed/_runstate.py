"""A run's state in Redis, shared by the coordinator and the workers (no Celery here).

Keys live under ``greenfetch:run:RUN_ID:`` and expire after 7 days, so a crashed coordinator leaves
nothing behind for long. The state is a fan-in aid, never the record of truth: the sink is. A
restarted Redis that lost it costs re-sent shards, not records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

__all__ = ["RunState", "catalog_digest", "redis_client"]

_KEY_TTL = 7 * 86400  # run state outlives a crashed coordinator, but not forever


class RunState:
    """The run's state in Redis, under ``greenfetch:run:RUN_ID:``. ``plan`` exists while the run is
    live; ``pending`` holds the shard keys not yet in the sink; ``started``, ``runs`` and ``finished``
    say who ran what, how often, and who last finished it; ``failed`` holds the last error of a shard
    that raised; ``catalog`` holds the user's catalog overlay (a JSON text), once per run, by its
    SHA-256, for the shards that name it."""

    def __init__(self, client: Any, run_id: str):
        self.client, self.run_id = client, run_id
        self._prefix = f"greenfetch:run:{run_id}:"

    def key(self, name: str) -> str:
        return self._prefix + name

    def begin(self, keys: Iterable[str], catalog: str | None = None) -> None:
        """The run planned: its shard keys pending and, when given, the catalog text its shards name."""
        self.again(keys, None, catalog)

    def again(self, keys: Iterable[str], planned: int | None, catalog: str | None = None) -> None:
        """Pending once more (and the run live again, its catalog kept again: a restarted Redis may have
        lost everything)."""
        keys = list(keys)
        pipe = self.client.pipeline()
        pipe.set(self.key("plan"), len(keys) if planned is None else planned, ex=_KEY_TTL)
        if keys:
            pipe.sadd(self.key("pending"), *keys)
            pipe.hdel(self.key("failed"), *keys)
        pipe.expire(self.key("pending"), _KEY_TTL)
        if catalog is not None:
            pipe.hset(self.key("catalog"), catalog_digest(catalog), catalog)
            pipe.expire(self.key("catalog"), _KEY_TTL)
        pipe.execute()

    def catalog(self, digest: str) -> str | None:
        """The catalog text kept under ``digest``; None when the run has none by that digest (the run
        ended, or Redis lost its keys) or what it has does not hash to it."""
        text = self.client.hget(self.key("catalog"), digest)
        if text is None:
            return None
        text = _text(text)
        return text if catalog_digest(text) == digest else None

    def live(self) -> bool:
        return bool(self.client.exists(self.key("plan")))

    def pending(self) -> int:
        return int(self.client.scard(self.key("pending")))

    def start(self, key: str, worker: str) -> int:
        """Mark a shard started by ``worker``; returns how many times it has been started."""
        pipe = self.client.pipeline()
        pipe.hset(self.key("started"), key, worker)
        pipe.hincrby(self.key("runs"), key, 1)
        for name in ("started", "runs"):
            pipe.expire(self.key(name), _KEY_TTL)
        return int(pipe.execute()[1])

    def done(self, key: str, worker: str | None = None) -> None:
        """The shard's records are in the sink (as ``worker`` sees it)."""
        pipe = self.client.pipeline()
        pipe.srem(self.key("pending"), key)
        if worker is not None:
            pipe.hset(self.key("finished"), key, worker)
            pipe.expire(self.key("finished"), _KEY_TTL)
        pipe.execute()

    def finished(self) -> dict[str, str]:
        """Shard key -> the worker that last finished it."""
        return {_text(k): _text(v) for k, v in self.client.hgetall(self.key("finished")).items()}

    def started(self) -> int:
        """How many shards a worker has taken so far."""
        return int(self.client.hlen(self.key("started")))

    def fail(self, key: str, error: str) -> None:
        pipe = self.client.pipeline()
        pipe.hset(self.key("failed"), key, error)
        pipe.expire(self.key("failed"), _KEY_TTL)
        pipe.srem(self.key("pending"), key)
        pipe.execute()

    def failures(self) -> dict[str, str]:
        return {_text(k): _text(v) for k, v in self.client.hgetall(self.key("failed")).items()}

    def runs(self) -> dict[str, int]:
        return {_text(k): int(v) for k, v in self.client.hgetall(self.key("runs")).items()}

    def end(self) -> None:
        self.client.delete(
            *(self.key(n) for n in ("plan", "pending", "started", "runs", "failed", "finished", "catalog"))
        )


def catalog_digest(text: str) -> str:
    """The SHA-256 (hex) a shard names a run's catalog text by."""
    return hashlib.sha256(text.encode()).hexdigest()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30)
