"""One configuration object: a flag beats the environment, the environment beats the default."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "MAX_CONCURRENCY",
    "Config",
    "ConfigError",
    "check_whole",
    "format_duration",
    "parse_backend",
    "parse_duration",
    "parse_processes",
]


from ._exceptions import ConfigError

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
}


def parse_duration(value: Any, name: str = "duration") -> float:
    """Seconds from ``0.5``, ``"500ms"``, ``"2s"``, ``"1min"``; a ConfigError naming ``name`` otherwise."""
    if isinstance(value, bool):
        raise ConfigError(
            f"{name}: {value!r} is not a duration; use seconds (0.5) or a unit (500ms, 2s, 1min)"
        )
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().lower()
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(number) :] or "s"
    try:
        return float(number) * _UNITS[unit]
    except (KeyError, ValueError):
        raise ConfigError(
            f"{name}: {value!r} is not a duration; use seconds (0.5) or a number with one of the units "
            f"{', '.join(_UNITS)} (500ms, 2s, 1min)"
        ) from None


def format_duration(seconds: float) -> str:
    """``parse_duration`` the other way, to three significant digits: ``1h``, ``14min``, ``1.5s``, ``0s``."""
    for unit, size in (("h", 3600.0), ("min", 60.0), ("s", 1.0)):
        if seconds >= size:
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds * 1000:.3g}ms" if seconds > 0 else "0s"


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {value!r} is not a whole number") from None


def check_whole(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` if it is a whole number of at least ``minimum``; a ConfigError naming it otherwise.
    The one check behind every count greenfetch takes (concurrency, attempts, bounds, processes)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}: {value!r} is not allowed; use a whole number of {minimum} or more")
    return value


MAX_CONCURRENCY = 10_000
"""The most requests a run may keep in flight: past it, memory and file descriptors go before any
speed is gained (one socket and one greenlet per request in flight; 2 cores answer ~1,000 at once)."""
_FD_MARGIN = 64  # descriptors a run needs besides its sockets: stdio, epoll, the thread pool, files


def open_file_limit() -> int | None:
    """The soft RLIMIT_NOFILE (None where the OS has none)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else int(soft)


def raise_open_file_limit(ceiling: int = 65536) -> None:
    """Raise the soft RLIMIT_NOFILE toward the hard one (as far as ``ceiling``): the soft default
    (often 1024) is what a busy run hits first, and any process may raise it up to the hard limit."""
    try:
        import resource
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = ceiling if hard == resource.RLIM_INFINITY else min(hard, ceiling)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass  # then the concurrency check below names the limit


def _check_limits(config: Config) -> None:
    """Concurrency and ports within what this process can use: a clear error, not a hang or EMFILE."""
    if config.concurrency > MAX_CONCURRENCY:
        raise ConfigError(
            f"concurrency: {config.concurrency} is above the maximum of {MAX_CONCURRENCY}; "
            f"use a whole number from 1 to {MAX_CONCURRENCY}"
        )
    files = open_file_limit()
    if files is not None and config.concurrency > files - _FD_MARGIN:
        raise_open_file_limit(max(65536, config.concurrency + _FD_MARGIN))  # only when needed: may help
        files = open_file_limit()
    if files is not None and config.concurrency > files - _FD_MARGIN:
        raise ConfigError(
            f"concurrency: {config.concurrency} needs about {config.concurrency + _FD_MARGIN} open "
            f"files and this process may open {files} (ulimit -n); raise `ulimit -n` or use a "
            f"concurrency of at most {max(1, files - _FD_MARGIN)}"
        )
    problem = bad_port(config.metrics_port) if config.metrics_port is not None else None
    if problem is not None:
        raise ConfigError(f"metrics_port: {problem}")


def bad_port(port: object) -> str | None:
    """Why ``port`` is not a metrics port, or None: a number from 0 to 65535 (0 picks a free port)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        return f"{port!r} is not a port; use a number from 0 to 65535 (0: any free port), e.g. 9464"
    return None


BACKENDS = ("gevent", "threads")


def parse_backend(value: Any, name: str = "GREENFETCH_ENGINE") -> str:
    """The backend kind, parsed the one way both the import-time patch and Config use."""
    kind = str(value).strip().lower()
    if kind not in BACKENDS:
        raise ConfigError(f"{name}: {value!r} is not an engine; valid values are {', '.join(BACKENDS)}")
    return kind


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def parse_processes(value: Any, name: str = "processes") -> int:
    """``auto`` (the usable CPUs) or a whole number of 1 or more."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return usable_cpus()
    if isinstance(value, bool):
        raise ConfigError(f"{name}: {value!r} is not allowed; use a whole number of 1 or more, or auto")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name}: {value!r} is not allowed; use a whole number of 1 or more, or auto"
        ) from None
    if number < 1:
        raise ConfigError(f"{name}: {value!r} is too small; use a whole number of 1 or more, or auto")
    return number


# Older names still accepted by Config.resolve: ``engine`` was the backend kind.
_ALIASES = {"engine": "backend"}


@dataclass(frozen=True)
class Config:
    """Everything a run can be told. Build it with :meth:`resolve`, never by reading os.environ elsewhere."""

    concurrency: int = 10
    max_attempts: int = 3
    retry_mode: str = "standard"
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    backend: str = "gevent"
    processes: int = 1
    cache_dir: str = field(
        default_factory=lambda: os.path.join(os.path.expanduser("~"), ".cache", "greenfetch")
    )
    cache_ttl: float = 3600.0
    metrics_port: int | None = None
    max_clients: int = 512
    body_limit: int = 1 << 20
    catalog: str | None = None  # a user's overlay file, merged over the shipped catalog (docs/inventory.md)

    # flag name -> (environment variable, converter)
    # AWS_ENDPOINT_URL is left to botocore, which also honours AWS_ENDPOINT_URL_<SERVICE>.
    _ENV: ClassVar[dict[str, tuple[str, Callable[..., Any]]]] = {
        "concurrency": ("GREENFETCH_CONCURRENCY", _int),
        "max_attempts": ("GREENFETCH_MAX_ATTEMPTS", _int),
        "cache_dir": ("GREENFETCH_CACHE_DIR", str),
        "cache_ttl": ("GREENFETCH_CACHE_TTL", parse_duration),
        "metrics_port": ("GREENFETCH_METRICS_PORT", _int),
        "backend": ("GREENFETCH_ENGINE", parse_backend),
        "processes": ("GREENFETCH_PROCESSES", parse_processes),
        "max_clients": ("GREENFETCH_MAX_CLIENTS", _int),
        "body_limit": ("GREENFETCH_BODY_LIMIT", _int),
        "catalog": ("GREENFETCH_CATALOG", str),
        "region": ("AWS_REGION", str),
        "profile": ("AWS_PROFILE", str),
    }

    @classmethod
    def resolve(
        cls, flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Config:
        """Flags (None means 'not given') over environment over defaults, validated."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get("AWS_LAMBDA_FUNCTION_NAME"):
            values.update(cls.lambda_profile())
        if not env.get("AWS_REGION") and env.get("AWS_DEFAULT_REGION"):
            values["region"] = env["AWS_DEFAULT_REGION"]
        for name, (var, convert) in cls._ENV.items():
            if env.get(var):
                values[name] = env[var] if convert is str else convert(env[var], var)
        given = {_ALIASES.get(k, k): v for k, v in (flags or {}).items() if v is not None}
        if name_conflict := set(given) - {f.name for f in dataclasses.fields(cls)}:
            raise ConfigError(f"unknown settings {sorted(name_conflict)}")
        if "processes" in given:
            given["processes"] = parse_processes(given["processes"])
        if "backend" in given:
            given["backend"] = parse_backend(given["backend"], "backend")
        values.update(given)
        return cls(**values).validated()

    @staticmethod
    def lambda_profile() -> dict[str, Any]:
        """Lambda: only /tmp is writable, and one invocation should fan out wider than a laptop."""
        return {"cache_dir": "/tmp/greenfetch-cache", "concurrency": 50, "read_timeout": 30.0}

    def validated(self) -> Config:
        for name in ("concurrency", "max_attempts", "processes", "max_clients", "body_limit"):
            check_whole(name, getattr(self, name))
        if self.retry_mode not in ("standard", "adaptive", "legacy"):
            raise ConfigError(f"retry_mode: {self.retry_mode!r}; valid values are standard, adaptive, legacy")
        if self.backend not in BACKENDS:
            raise ConfigError(
                f"backend: {self.backend!r} is not a backend; valid values are {', '.join(BACKENDS)}"
            )
        if not self.cache_ttl >= 0:  # also NaN
            raise ConfigError(f"cache_ttl: {self.cache_ttl} is negative; use 0 (no cache) or more seconds")
        _check_limits(self)
        return self

    @property
    def home_region(self) -> str:
        """Where a call that names no region goes when the run names none either (STS, Organizations,
        region discovery, global APIs): the run's region, else us-east-1, as the AWS CLI's global
        endpoints do. The one place that fallback is written."""
        return self.region or "us-east-1"

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None}).validated()
