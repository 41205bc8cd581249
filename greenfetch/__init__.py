"""greenfetch: run many AWS API calls at once, fast and safely.

Importing greenfetch sets up gevent first (see ``_patch``): import it before boto3, botocore or ssl,
or set ``GREENFETCH_ENGINE=threads``.

General layout, by floor. A module imports only from its own floor or the ones below it; faces use
only public names (this module's, ``greenfetch.inventory``'s, ``greenfetch.testing``'s). The floors
are enforced by import-linter (``[tool.importlinter]`` in pyproject.toml, run by ``scripts/test``).

    faces        cli/ (click), aws_lambda (a Lambda handler), nu_plugin/ (a top-level package)
    scale-out    distributed/ (the Celery app and shard task; _coordinator: inventory --broker;
                 _runstate: a run's keys in Redis)
    inventory    inventory/ (accounts, credentials, regions, catalog, cache, sinks, shards), drs/ (a
                 pipeline on inventory); both use the engine through its public methods only
    api          _api: the module-level functions on one process-wide default engine; _exposition
                 (Prometheus /metrics, Pushgateway, textfile: the faces start it)
    engine       _process_child (a worker process's entry) on _engine (the composition root) on
                 _processes/ (processes=N: _pool, the pool, on _router, which child takes a request,
                 and _wire, what crosses the pipe) on _adaptive
                 (the adaptive limiters per scope) on _scheduler (one bounded fan-out, no AWS) and
                 _caller (the AWS seam: BotocoreCaller; testing.MockCaller; _paging, a one-page
                 paginated call without botocore's page iterator) on _clients (botocore
                 clients) on _signing (an account's view of a shared client) and _http/ (the seam below
                 botocore; _gevent on _answer on _pool and _wire: the geventhttpclient session) and
                 _botocore_fast (botocore's request headers without email.message, version-guarded)
    parts        _dedupe, _metrics + _sketch, _controller (the pure adaptive controller), _attempts,
                 _backends: pure or small, each tested without sockets
    foundation   _models (Request, Result), _errors (describe, classify, suggest), _unreadable_errors
                 and _storage_errors (what is not classification), _jsonable, _redact (secrets out of
                 logs), _patch, _config (Config: the one home of settings), _exceptions (the exception
                 tree)

The test kit, greenfetch.testing (loopback and moto servers, MockCaller), is for tests, benchmarks
and the demo; nothing in the engine imports it.
"""

from ._exceptions import EngineImportError
from ._patch import ensure_patched as _ensure_patched

try:
    _ensure_patched()
except EngineImportError as _exc:
    import sys as _sys

    # The command line imports this package before its own code runs: one line and exit 2 there
    # (argv[0] is "-m" while `python -m greenfetch.…` locates its module).
    if _sys.argv[:1] == ["-m"] or _sys.argv[0].rsplit("/", 1)[-1] in ("greenfetch", "nu_plugin_greenfetch"):
        _sys.stderr.write(f"Error: {_exc}\n")
        raise SystemExit(2) from None
    raise

from ._adaptive import AdaptiveResults, TracePoint  # noqa: E402
from ._api import (  # noqa: E402
    adaptive_batch,
    batch_requests,
    dedupe_request,
    default_engine,
    iter_results,
    perf_stats,
    reset_stats,
)
from ._caller import BotocoreCaller, Caller  # noqa: E402
from ._config import Config, parse_duration  # noqa: E402
from ._engine import Engine  # noqa: E402
from ._errors import Classification, classify  # noqa: E402
from ._exceptions import (  # noqa: E402
    BatchFailed,
    BodyTooLarge,
    BrokerError,
    ConfigError,
    ExpositionError,
    GreenfetchError,
    InventoryError,
    RequestError,
    StorageError,
)
from ._models import Request, Result  # noqa: E402
from ._redact import install as _install_redaction  # noqa: E402

_install_redaction()  # botocore logs credentials at DEBUG: mask them in every record

__version__ = "0.1.0"

__all__ = [
    "AdaptiveResults",
    "BatchFailed",
    "BodyTooLarge",
    "BotocoreCaller",
    "BrokerError",
    "Caller",
    "Classification",
    "Config",
    "ConfigError",
    "Engine",
    "EngineImportError",
    "ExpositionError",
    "GreenfetchError",
    "InventoryError",
    "Request",
    "RequestError",
    "Result",
    "StorageError",
    "TracePoint",
    "adaptive_batch",
    "batch_requests",
    "classify",
    "dedupe_request",
    "default_engine",
    "iter_results",
    "parse_duration",
    "perf_stats",
    "reset_stats",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("greenfetch."):
        try:
            _obj.__module__ = "greenfetch"
        except (AttributeError, TypeError):
            pass
