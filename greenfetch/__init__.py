"""greenfetch: run many AWS API calls at once, fast and safely.

Importing greenfetch sets up gevent first (see ``_patch``): import it before boto3, botocore or ssl,
or set ``GREENFETCH_ENGINE=threads``.
"""

from ._patch import EngineImportError
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
from ._config import Config, ConfigError, parse_duration  # noqa: E402
from ._engine import Engine  # noqa: E402
from ._errors import BatchFailed, Classification, GreenfetchError, classify  # noqa: E402
from ._exposition import ExpositionError  # noqa: E402
from ._models import Request, RequestError, Result  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AdaptiveResults",
    "BatchFailed",
    "Classification",
    "Config",
    "ConfigError",
    "Engine",
    "EngineImportError",
    "ExpositionError",
    "GreenfetchError",
    "Request",
    "RequestError",
    "Result",
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
