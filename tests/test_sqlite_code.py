"""SQLite's result code of a sqlite3 error (``_storage_errors.sqlite_code``) on every Python: 3.11's
errors carry it, 3.10's do not (there a damaged database was not told from a full disk, and reading one
raised AttributeError). Real errors SQLite raised, each the code it says; where the error carries the
code, the same error without it (its class and message only, as 3.10 raises it) gets the same code."""

import sqlite3

import pytest

from greenfetch._storage_errors import sqlite_code, storage_error


def _not_a_database(path):
    path.write_bytes(b"not a database at all, " * 100)
    sqlite3.connect(path).execute("SELECT * FROM sqlite_master").fetchall()


def _malformed(path):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 50)
    conn.commit()
    conn.close()
    data = bytearray(path.read_bytes())
    data[4096 : 2 * 4096] = b"\xff" * 4096  # the table's root page: garbage under a valid header
    path.write_bytes(bytes(data))
    sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchall()


def _read_only(path):
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True).execute("INSERT INTO t VALUES (1)")


def _full(path):
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA max_page_count = 4")
    conn.execute("CREATE TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,)] * 100)


@pytest.mark.parametrize(
    ("provoke", "code"),
    [(_not_a_database, 26), (_malformed, 11), (_read_only, 8), (_full, 13)],
    ids=["NOTADB", "CORRUPT", "READONLY", "FULL"],
)
def test_a_sqlite_errors_code_is_sqlites_with_or_without_the_code_on_it(tmp_path, provoke, code):
    with pytest.raises(sqlite3.Error) as caught:
        provoke(tmp_path / "x.db")
    exc = caught.value
    assert sqlite_code(exc) == code, exc
    if hasattr(exc, "sqlite_errorcode"):  # Python 3.11 on: the code it carries, and its words alone
        assert exc.sqlite_errorcode & 0xFF == code
        bare = type(exc)(*exc.args)
        assert not hasattr(bare, "sqlite_errorcode")
        assert sqlite_code(bare) == code, exc


def test_anything_else_has_no_sqlite_code():
    assert sqlite_code(OSError(28, "No space left on device")) == 0
    assert sqlite_code(ValueError("database or disk is full")) == 0  # SQLite's words, not its error
    assert sqlite_code(sqlite3.OperationalError("no such table: t")) == 0


def test_a_damaged_database_is_exit_2_on_every_python():
    damaged = storage_error(sqlite3.DatabaseError("file is not a database"), "cannot write --out 'x.db'")
    full = storage_error(sqlite3.OperationalError("database or disk is full"), "cannot write --out 'x.db'")
    assert damaged.exit_code == 2 and "damaged" in str(damaged)
    assert full.exit_code == 1 and "free some space" in str(full)
