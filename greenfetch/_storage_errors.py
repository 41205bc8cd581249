"""Storage that refused (an OSError, a sqlite3 error) as one line and an exit code: ``storage_error``, the
one place that maps them to words (it builds ``_exceptions.StorageError``).
"""

from __future__ import annotations

import errno
import sys

from ._exceptions import StorageError

__all__ = ["DISK_ERRNOS", "sqlite_code", "sqlite_damaged", "storage_error"]


# What to do when storage refuses, by errno (an OSError) or by SQLite's primary result code (a sqlite3
# error's: ``sqlite_code``): the one table behind every "cannot write" line.
_FULL = "free some space, or write elsewhere"
_STORAGE_HINTS = {
    errno.ENOSPC: _FULL,
    errno.EDQUOT: _FULL,
    errno.EROFS: "the file system is mounted read-only: write elsewhere",
    errno.EACCES: "write elsewhere, or fix its permissions",
    errno.EPERM: "write elsewhere, or fix its permissions",
    errno.EFBIG: "the file size limit (ulimit -f) is reached: raise it, or write elsewhere",
    errno.EIO: "the device failed (see dmesg): write elsewhere",
}
# A write refused by the storage under it, whatever the file: no space, no quota, a read-only mount, a
# file size limit, a failing device (a missing permission is usually an open, named by its caller).
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO})
_SQLITE_ERRNO = {
    13: errno.ENOSPC,
    8: errno.EROFS,
    3: errno.EACCES,
    23: errno.EACCES,
    10: errno.EIO,
}  # FULL, READONLY, PERM, AUTH, IOERR
_SQLITE_DAMAGED = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB
# SQLite's own words for the codes told apart here (``sqlite3_errstr``; a damaged schema's ``malformed
# database schema (name)`` is SQLITE_CORRUPT too): a sqlite3 error's message begins with them.
_SQLITE_WORDS = (
    ("database or disk is full", 13),
    ("attempt to write a readonly database", 8),
    ("access permission denied", 3),
    ("authorization denied", 23),
    ("disk I/O error", 10),
    ("database disk image is malformed", 11),
    ("malformed database schema", 11),
    ("file is not a database", 26),
)


def sqlite_code(exc: BaseException) -> int:
    """SQLite's primary result code of a sqlite3 error (``SQLITE_FULL`` is 13), 0 for anything else. From
    Python 3.11 the error carries it (``sqlite_errorcode``); 3.10's does not, so there the code is read
    from SQLite's words that begin its message, for the codes ``_SQLITE_WORDS`` knows (0 for others)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    sqlite = sys.modules.get("sqlite3")  # a sqlite3 error was made by an imported sqlite3
    if sqlite is None or not isinstance(exc, sqlite.Error):
        return 0
    message = str(exc)
    return next((code for words, code in _SQLITE_WORDS if message.startswith(words)), 0)


def sqlite_damaged(exc: BaseException) -> bool:
    """Whether a sqlite3 error says the file is damaged or not a database (SQLITE_CORRUPT, SQLITE_NOTADB)."""
    return sqlite_code(exc) in _SQLITE_DAMAGED


def storage_error(exc: BaseException, what: str, kept: str = "") -> StorageError:
    """The one line for storage that refused: ``what`` (``cannot write --out 'x'``), why (the OS's or
    SQLite's own words), ``kept`` (what the run kept, if anything) and what would do. ``exc`` is an
    OSError or a sqlite3 error; a damaged database is exit 2 (bad input), everything else exit 1."""
    sqlite = sys.modules.get("sqlite3")
    if sqlite is not None and isinstance(exc, sqlite.Error):
        code = sqlite_code(exc)
        reason, number = str(exc) or type(exc).__name__, _SQLITE_ERRNO.get(code)
        damaged = code in _SQLITE_DAMAGED
    else:
        reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) or type(
            exc
        ).__name__
        number, damaged = getattr(exc, "errno", None), False
    hint = (
        "the database is damaged: recover what it holds with sqlite3's .recover, or use another file"
        if damaged
        else _STORAGE_HINTS.get(number or 0, "")
    )
    return StorageError(
        "; ".join(part for part in (f"{what}: {reason}", kept, hint) if part), exit_code=2 if damaged else 1
    )
