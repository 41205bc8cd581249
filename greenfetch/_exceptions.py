"""Every exception greenfetch raises on purpose, in one tree (as httpx keeps its own in one module).

    GreenfetchError                  catch this to catch them all
     ├── ConfigError (ValueError)     a setting greenfetch cannot use (flag, environment, keyword)
     ├── RequestError (ValueError)    a request that cannot be built; becomes that request's failed Result
     ├── InventoryError (ValueError)  bad inventory input (account, role, region, type, output)
     ├── BodyTooLarge                 a response body over Config.body_limit; becomes that request's failed Result
     ├── BatchFailed                  fail-fast stopped a batch; carries the results so far
     ├── ExpositionError              metrics could not be served, pushed or written
     ├── BrokerError (RuntimeError)   inventory --broker: the broker could not be reached, or stopped answering
     ├── StorageError                 output the disk refused (full, read-only, no permission) or a damaged file
     ├── EngineImportError (ImportError)  gevent could not be set up safely for this process
     │
     │   defined beside the code that raises them (they need its names), in the tree all the same:
     ├── JSONInputError (ValueError)  input that is not strict JSON (_jsonable)
     └── UploadSweepError             the start-of-run sweep of incomplete S3 uploads failed (inventory)

Pure standard library, so ``_patch`` can import it before gevent patches anything. The messages
name the bad value and say what would be valid: they are shown to users as they are.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BatchFailed",
    "BodyTooLarge",
    "BrokerError",
    "ConfigError",
    "EngineImportError",
    "ExpositionError",
    "GreenfetchError",
    "InventoryError",
    "RequestError",
    "StorageError",
]


class GreenfetchError(Exception):
    """Base of the errors greenfetch raises on purpose."""


class ConfigError(GreenfetchError, ValueError):
    """A setting has a value greenfetch cannot use; the message names it and what would be valid."""


class RequestError(GreenfetchError, ValueError):
    """A request that cannot be built; the message names the bad value and what would be valid."""

    def __init__(self, message: str, code: str = "InvalidRequest", guidance: str | None = None):
        super().__init__(message)
        self.code = code
        self.guidance = guidance


class InventoryError(GreenfetchError, ValueError):
    """Bad inventory input (account, role, region, type, output): the message names the bad value
    and what would be valid. Raised before any API call wherever that is possible."""


class BodyTooLarge(GreenfetchError):
    """A response body (S3 GetObject's ``Body``, any streaming member) longer than ``Config.body_limit``.

    The caller reads one byte past the limit to know: a body cut at the limit must never pass for the
    whole object (a reader parsing it sees a broken document, or worse, a plausible one). Nothing of
    the body is kept; the engine turns this into the request's failed Result, code ``BodyTooLarge``."""

    code = "BodyTooLarge"

    def __init__(self, member: str, limit: int, size: int | None = None):
        self.member, self.limit, self.size = member, limit, size
        what = f"{size:,} bytes" if size is not None and size > limit else f"more than {limit:,} bytes"
        super().__init__(
            f"the response's {member} is {what}, over the body limit of {limit:,} bytes "
            f"(GREENFETCH_BODY_LIMIT); none of it was kept"
        )


class BatchFailed(GreenfetchError):
    """Fail-fast mode saw a failure: ``.failure`` is the first failed Result, ``.results`` what completed."""

    def __init__(self, failure: Any, results: list[Any]):
        self.failure = failure
        self.results = results
        super().__init__(f"Batch failed at request {failure.index}: {failure.error}")


class ExpositionError(GreenfetchError):
    """Metrics could not be served, pushed or written; the message names the port, URL or path."""


class BrokerError(GreenfetchError, RuntimeError):
    """The broker could not be reached, or stopped answering mid-run (``inventory --broker``). The
    message names the broker with its password redacted."""


class StorageError(GreenfetchError):
    """Storage refused: a full disk, read-only media, no permission, a file size limit, a file that
    cannot be opened, a damaged SQLite database. The message is one line naming the path (or stdout),
    why, and what was kept; ``_storage_errors.storage_error`` builds it, the one place that maps an
    OSError or a sqlite3 error to words. ``exit_code`` is the command line's: 2 for a damaged file (the same
    answer every time: bad input), 1 otherwise (the run ran; its output is incomplete)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class EngineImportError(GreenfetchError, ImportError):
    """gevent could not be set up safely for this process."""
