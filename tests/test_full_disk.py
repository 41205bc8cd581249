"""Full disks and bad media (issue 19): every write path says what went wrong in one line, exits 1 (2
for a damaged database), keeps what was complete, and never exits 0 with a cut file.

The media are real: a small tmpfs this test mounts (skipped, with the reason, where mounting is not
allowed), the same tmpfs remounted read-only, ``/dev/full``, and, everywhere, a file size limit
(``RLIMIT_FSIZE``: the kernel refuses writes past it with EFBIG, as a full disk refuses with ENOSPC).
The matrices run in this process (a fresh interpreter costs about a second); each path also runs once
as a user would, through the real ``greenfetch`` command."""

import contextlib
import io
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys

import pytest
from click.testing import CliRunner

from greenfetch.cli import load_commands
from greenfetch.inventory import RunSummary
from greenfetch.inventory._shard import DirectoryShardSink, merge_shard
from greenfetch.inventory._sqlite import SQLiteSink
from greenfetch.testing import inventory_server

cli = load_commands()
CLI_CMD = (
    [shutil.which("greenfetch")] if shutil.which("greenfetch") else [sys.executable, "-m", "greenfetch.cli"]
)
NO_SPACE = "No space left on device"


# -- the media -------------------------------------------------------------------------------------


def _mount(path, size):
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({proc.stderr.strip() or 'mount failed'}); the RLIMIT_FSIZE "
            "and /dev/full cases cover the same paths"
        )


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(size)``: a tmpfs of that size (the kernel's own ENOSPC), unmounted afterwards."""
    mounted = []

    def make(size="16k", name="disk"):
        path = tmp_path / name
        _mount(path, size)
        mounted.append(path)
        return path

    yield make
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def read_only_disk(small_disk):
    """``read_only_disk(fill)``: a tmpfs where ``fill(path)`` puts files, then remounted read-only."""

    def make(fill):
        path = small_disk("4m", "ro")
        fill(path)
        proc = subprocess.run(["mount", "-o", "remount,ro", str(path)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot remount a tmpfs read-only here ({proc.stderr.strip()})")
        return path

    return make


def _size_limit(nbytes):
    """For a child process: writes past ``nbytes`` in any file fail with EFBIG (SIGXFSZ ignored, so
    the write fails instead of killing the process): a full disk that needs no mount."""

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))

    return apply


def greenfetch(*args, stdout=subprocess.PIPE, preexec_fn=None, **env):
    """The real command in a child process: (returncode, stdout or None, stderr lines)."""
    proc = subprocess.run(
        [*CLI_CMD, *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        timeout=120,
        preexec_fn=preexec_fn,
        env={**os.environ, "GREENFETCH_MAX_ATTEMPTS": "1", **env},
    )
    return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace").splitlines()


def one_line(lines, *needles):
    """stderr is exactly one line, no traceback, and it says each of ``needles``."""
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# -- batch and adaptive: results to stdout ----------------------------------------------------------


@pytest.fixture(scope="module")
def requests_file(tmp_path_factory):
    """150 requests that all succeed on the loopback server: about 100 KB of JSON results, 20 KB of table."""
    path = tmp_path_factory.mktemp("requests") / "requests.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {
                    "service": "dynamodb",
                    "operation": "ListTables",
                    "region": "us-east-1",
                    "id": f"{n:04d}" + "x" * 200,
                }
            )
            + "\n"
            for n in range(150)
        )
    )
    return path


def run_in_process(args, stdout_path, capsys):
    """The CLI in this process with stdout on ``stdout_path`` (a real file descriptor, as a shell
    redirection gives it): (exit code, stderr lines)."""
    capsys.readouterr()
    with open(stdout_path, "w", encoding="utf-8") as out:
        saved, sys.stdout = sys.stdout, out
        try:
            cli.main(args, prog_name="greenfetch")
            code = 0
        except SystemExit as exc:
            code = exc.code
        finally:
            sys.stdout = saved
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("output", ["json", "jsonl", "table"])
@pytest.mark.parametrize("command", ["batch", "adaptive"])
@pytest.mark.parametrize("target", ["/dev/full", "tmpfs"])
def test_stdout_that_refuses_is_exit_1_and_one_line(
    loopback, requests_file, small_disk, capsys, tmp_path, command, output, target
):
    path = "/dev/full" if target == "/dev/full" else small_disk("8k") / "results.out"
    code, err = run_in_process(
        ["--endpoint-url", loopback.url, command, str(requests_file), "-o", output], path, capsys
    )
    assert code == 1, err
    line = one_line(err, f"Error: cannot write the results to stdout: {NO_SPACE}")
    if target == "tmpfs" and output == "jsonl":  # the lines said to be whole are whole results
        whole = int(line.split("the first ")[1].split(" ")[0])
        rows = [json.loads(text) for text in open(path, encoding="utf-8").read().split("\n")[:whole]]
        assert whole > 0 and all(row["error"] is None for row in rows)
        assert len({row["index"] for row in rows}) == whole
    elif target == "tmpfs":
        assert "output is cut off" in line


def test_batch_json_to_a_full_disk_is_exit_1_not_a_cut_file_and_exit_0(loopback, requests_file, small_disk):
    """The probe's 4b, as a user runs it: ``greenfetch batch -o json > file`` on a full disk exited 0
    with nothing on stderr and the JSON cut mid-string (Python's unbuffered stdout drops the rest of a
    short write)."""
    disk = small_disk("16k")
    with open(disk / "b.json", "wb") as out:
        rc, _, err = greenfetch(
            "--endpoint-url",
            loopback.url,
            "batch",
            str(requests_file),
            "-o",
            "json",
            stdout=out,
            PYTHONUNBUFFERED="1",
        )
    assert rc == 1
    one_line(err, NO_SPACE, "the JSON output is cut off")


def test_batch_to_dev_full_is_one_line_not_a_traceback(loopback, requests_file, output="jsonl"):
    with open("/dev/full", "wb") as out:
        rc, _, err = greenfetch(
            "--endpoint-url", loopback.url, "batch", str(requests_file), "-o", output, stdout=out
        )
    assert rc == 1
    one_line(err, NO_SPACE)


def test_batch_over_a_file_size_limit_is_exit_1_everywhere(loopback, requests_file, tmp_path):
    """No mount needed: the kernel refuses writes past RLIMIT_FSIZE (EFBIG) as a full disk does."""
    with open(tmp_path / "b.json", "wb") as out:
        rc, _, err = greenfetch(
            "--endpoint-url",
            loopback.url,
            "batch",
            str(requests_file),
            "-o",
            "json",
            stdout=out,
            preexec_fn=_size_limit(16384),
            PYTHONUNBUFFERED="1",
            COVERAGE_PROCESS_CONFIG="",  # coverage.py could not save its data under the limit either
        )
    assert rc == 1
    one_line(err, "File too large", "ulimit -f")
    assert os.path.getsize(tmp_path / "b.json") == 16384


def test_every_command_s_stdout_is_checked_before_it_exits(tmp_path):
    """click.echo (catalog) and plain writes left in the buffer (diff -o json) to a full device: one
    line and exit 1, not a traceback, Python's exit 120, or exit 0."""
    database = _database(tmp_path / "inv.db", resources=200)
    for args in (["catalog", "-o", "json"], ["diff", str(database), "-o", "json"]):
        with open("/dev/full", "wb") as out:
            rc, _, err = greenfetch(*args, stdout=out)
        assert rc == 1, (args, err)
        assert [line for line in err if line.startswith(("Error", "Traceback", "Exception"))] == [
            f"Error: cannot write the output: {NO_SPACE}; what was written is incomplete; free some space, "
            "or write elsewhere"
        ]


def test_a_reader_that_goes_away_stops_the_batch_quietly(loopback, requests_file):
    """``| head``: a closed pipe is not a disk error; no line, no traceback, exit 1 (as before)."""
    proc = subprocess.Popen(
        [*CLI_CMD, "--endpoint-url", loopback.url, "batch", str(requests_file), "-o", "jsonl"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=60) == 1
    assert proc.stderr.read() == b""


# -- inventory --out: JSON, JSON Lines, SQLite -----------------------------------------------------

ACCOUNTS = "111111111111,222222222222,333333333333"


@pytest.fixture(scope="module")
def pages():
    with inventory_server(items=100) as server:
        yield server


def inventory_args(pages, out, *extra, accounts=ACCOUNTS, regions="us-east-1,eu-west-1", cache_ttl="0"):
    """1,800 resources by default (3 accounts, 2 regions, 3 types, 100 items a page)."""
    return [
        "--endpoint-url",
        pages.url,
        "--region",
        "us-east-1",
        "inventory",
        "--accounts",
        accounts,
        "--role-name",
        "Reader",
        "--regions",
        regions,
        "--types",
        "ec2.vpcs,ec2.subnets,sqs.queues",
        "--no-progress",
        "--cache-ttl",
        cache_ttl,
        "--out",
        str(out),
        *extra,
    ]


def invoke(args, **env):
    result = CliRunner().invoke(cli, args, env={"GREENFETCH_MAX_ATTEMPTS": "1", **env})
    return result.exit_code, result.stderr.splitlines(), result


@pytest.mark.parametrize(("fmt", "leftover"), [("json", "ec2.subnets.json"), ("jsonl", "inventory.jsonl")])
def test_json_and_jsonl_out_on_a_full_disk_is_one_line_and_no_partial_file(pages, small_disk, fmt, leftover):
    out = small_disk("64k") / "inv"
    code, err, _ = invoke(inventory_args(pages, out, "--format", fmt))
    assert code == 1
    one_line(err, "Error: cannot write --out", NO_SPACE, f"no partial {leftover} is left")
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())  # no temporary file left behind
    for path in out.iterdir():  # what is there is whole
        assert json.loads(path.read_text()) if fmt == "json" else path.read_text() == ""


def _runs(path):
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT run_id, finished_at IS NOT NULL FROM runs ORDER BY run_id").fetchall()


def _resources(path, run_id):
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT count(*) FROM resources WHERE run_id = ?", (run_id,)).fetchone()[0]


def test_sqlite_out_on_a_full_disk_keeps_the_run_unfinished_and_diff_refuses_it(pages, small_disk):
    """The probe's 3e: a traceback. The first batch fits (at most 1000 rows), the run does not."""
    out = small_disk("768k") / "inv.db"
    code, err, _ = invoke(inventory_args(pages, out))
    assert code == 1
    line = one_line(err, "Error: cannot write --out", "database or disk is full", "run 1 is kept unfinished")
    assert _runs(out) == [(1, 0)]
    written = int(line.split("with the ")[1].split(" ")[0])
    assert 0 < written == _resources(out, 1) < 1800  # what the line says is what the file holds
    code, err, _ = invoke(["diff", str(out)])
    assert code == 2
    one_line(err, "no finished run")


def test_sqlite_run_that_cannot_write_its_first_batch_leaves_no_row(pages, small_disk):
    """The run's row commits with its first batch: a disk too full for that leaves no unfinished run."""
    disk = small_disk("1m")
    _database(disk / "inv.db", runs=1, resources=100)
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    (disk / "filler").write_bytes(b"\0" * (free - 48 * 1024))  # room for SQLite's -shm file, not for a batch
    code, err, _ = invoke(inventory_args(pages, disk / "inv.db"))
    assert code == 1
    one_line(err, "database or disk is full", "this run was not recorded")
    assert _runs(disk / "inv.db") == [(1, 1)]


def test_inventory_over_a_file_size_limit_is_one_line_everywhere(pages, tmp_path):
    """The real command under RLIMIT_FSIZE (no mount needed): SQLite's "disk is full", one line."""
    out = tmp_path / "inv.db"
    rc, _, err = greenfetch(*inventory_args(pages, out), preexec_fn=_size_limit(700_000))
    assert rc == 1
    one_line(err, "Error: cannot write --out", "run 1 is kept unfinished")
    assert _runs(out) == [(1, 0)]


def _database(path, runs=2, resources=3000):
    """A greenfetch database with ``runs`` finished runs, written by the sink itself."""
    for _ in range(runs):
        sink = SQLiteSink(path)
        for n in range(resources // 100):
            sink.add(
                {
                    "resource_type": "sqs.queues",
                    "account": "111111111111",
                    "region": f"r-{n}",
                    "items": [
                        {"QueueUrl": f"https://sqs.example/{n}/queue-{i:03d}" + "-q" * 40} for i in range(100)
                    ],
                    "status": "ok",
                }
            )
        sink.close({"records": resources // 100})
    return path


def test_sqlite_out_with_damaged_pages_is_exit_2_one_line_and_adds_no_run(pages, tmp_path):
    """The probe's 3c: a valid header with damaged pages in the middle (the writes reach them)."""
    path = _database(tmp_path / "damaged.db")
    size = path.stat().st_size
    # The middle of the file, in whole pages: b-tree pages that cannot parse.
    with open(path, "r+b") as handle:
        handle.seek(size // 8 // 4096 * 4096)
        handle.write(b"\xa5" * (size * 3 // 4 // 4096 * 4096))
    before = _runs(path)
    code, err, _ = invoke(inventory_args(pages, path))
    assert code == 2
    one_line(err, "database disk image is malformed", "this run was not recorded", ".recover")
    assert _runs(path) == before


def test_diff_reads_a_database_on_read_only_media(read_only_disk, tmp_path):
    """The probe's 3d: read-only media gave 'is not a SQLite database (unable to open database file)'."""
    source = _database(tmp_path / "inv.db", resources=200)
    disk = read_only_disk(lambda path: shutil.copy(source, path / "inv.db"))
    code, err, result = invoke(["diff", str(disk / "inv.db")])
    assert code == 0, err
    assert "run 1" in err[-1] and "200 unchanged" in err[-1]
    code, err, _ = invoke(["inventory", "--accounts", "111111111111", "--out", str(disk / "inv.db")])
    assert code == 2
    one_line(err, "is not writable: Read-only file system")


# -- the cache directory, shard files ----------------------------------------------------------------


def _cache_warnings(caplog):
    return [r.getMessage() for r in caplog.records if "cache directory" in r.getMessage()]


@pytest.mark.parametrize("medium", ["full", "read-only", "a file in the way"])
def test_a_cache_directory_that_cannot_be_written_is_said_once_and_the_run_goes_on(
    pages, small_disk, read_only_disk, tmp_path, caplog, medium
):
    if medium == "full":
        cache, reason = small_disk("8k", "cache") / "c", NO_SPACE
    elif medium == "read-only":
        cache, reason = read_only_disk(lambda path: None) / "c", "Read-only file system"
    else:  # runs everywhere: the cache directory's parent is a file
        (tmp_path / "file").write_text("x")
        cache, reason = tmp_path / "file" / "c", "Not a directory"
    args = inventory_args(
        pages, tmp_path / "out", accounts="111111111111", regions="us-east-1", cache_ttl="10min"
    )
    code, err, _ = invoke(args, GREENFETCH_CACHE_DIR=str(cache))
    assert code == 0, err
    (warning,) = _cache_warnings(caplog)
    assert reason in warning and "the run goes on without caching" in warning
    assert [len(r["items"]) for r in json.loads((tmp_path / "out" / "sqs.queues.json").read_text())] == [100]


def test_the_cache_warning_reaches_a_user_on_stderr(pages, tmp_path):
    (tmp_path / "file").write_text("x")
    args = inventory_args(
        pages, tmp_path / "out", accounts="111111111111", regions="us-east-1", cache_ttl="10min"
    )
    rc, _, err = greenfetch(*args, GREENFETCH_CACHE_DIR=str(tmp_path / "file" / "c"))
    assert rc == 0
    assert sum("cache directory" in line for line in err) == 1


def test_a_shard_file_the_coordinator_cannot_read_is_a_failed_shard(tmp_path):
    """The probe's 2i: a directory where a shard file should be raised IsADirectoryError out of the
    coordinator (a traceback, nothing written). Now that shard fails, with one line; the others stay."""
    sink = DirectoryShardSink(tmp_path)
    record = {
        "resource_type": "sqs.queues",
        "account": "111111111111",
        "region": "us-east-1",
        "items": [{"QueueUrl": "q"}],
        "status": "ok",
        "error": None,
    }
    sink.put("run1", "111111111111", [record], {"accounts_ok": ["111111111111"]})
    (tmp_path / ".greenfetch-shards" / "run1" / "222222222222.json" / "x").mkdir(parents=True)
    (tmp_path / ".greenfetch-shards" / "run1" / "333333333333.json").write_text("{not json")
    total = RunSummary()
    for key in ("111111111111", "222222222222", "333333333333"):
        merge_shard(total, *sink.get("run1", key))
    assert total.records == 1 and total.accounts_ok == {"111111111111"}
    assert set(total.accounts_failed) == {"222222222222", "333333333333"}
    assert "Is a directory" in total.accounts_failed["222222222222"]
    assert "is not a shard file" in total.accounts_failed["333333333333"]
    assert all("\n" not in why for why in total.accounts_failed.values())
    assert sink.get("run1", "444444444444") is None  # not there yet: the coordinator waits or re-sends


def test_a_worker_that_cannot_write_its_shard_says_why_in_one_line(small_disk):
    sink = DirectoryShardSink(small_disk("8k"))
    with pytest.raises(Exception) as caught:
        sink.put("run1", "111111111111", [{"items": ["x" * 100_000]}], {})
    assert type(caught.value).__name__ == "StorageError"
    assert NO_SPACE in str(caught.value) and "shard file" in str(caught.value)
    assert io.StringIO(str(caught.value)).read().count("\n") == 0
