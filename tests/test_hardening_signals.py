"""Ctrl-C, SIGTERM and SIGHUP stop a CLI run cleanly (what completed is written, exit 128 + signal, no
traceback); no temporary file outlives a run, and `cache clear` removes only the cache's own files."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _cache_rows import cache_rows

from greenfetch.testing import inventory_server, wait_until

N = 400


@pytest.fixture
def slow_server(loopback):
    """The session's loopback server at 0.3 s a call."""
    loopback.control(latency=0.3)
    return loopback


def _batch(url, command, output, *extra):
    requests = [{"service": "dynamodb", "operation": "ListTables", "id": i} for i in range(N)]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "greenfetch.cli",
            "--endpoint-url",
            url,
            "--region",
            "us-east-1",
            command,
            "-o",
            output,
            *extra,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    proc.stdin.write(json.dumps(requests))
    proc.stdin.close()
    return proc


@pytest.mark.parametrize(
    ("command", "extra", "signum", "code"),
    [
        ("batch", ["-c", "10"], signal.SIGTERM, 143),
        ("batch", ["-c", "10"], signal.SIGHUP, 129),
        ("adaptive", ["--initial-concurrency", "10"], signal.SIGTERM, 143),
    ],
)
def test_sigterm_json_run_writes_what_completed(slow_server, command, extra, signum, code):
    before = slow_server.stats()["ok"]
    proc = _batch(slow_server.url, command, "json", *extra)
    wait_until(lambda: slow_server.stats()["ok"] >= before + 20, 30, "20 answers")
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    rows = json.loads(out)
    assert 0 < len(rows) < N
    assert all(r["error"] is None for r in rows)
    assert "Interrupted" in err and "Traceback" not in err


def test_interrupt_streaming_run_keeps_what_completed(slow_server):
    proc = _batch(slow_server.url, "batch", "jsonl", "-c", "10")
    first = proc.stdout.readline()  # a result has been written: the run is under way
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    lines = [first, *rest.splitlines()]
    assert proc.returncode == 130, err
    assert 1 <= len(lines) < 400
    assert all(json.loads(line)["error"] is None for line in lines)
    assert "Interrupted" in err and "Traceback" not in err


def test_interrupt_json_run_flushes_completed_results(slow_server):
    before = slow_server.stats()["ok"]
    proc = _batch(slow_server.url, "batch", "json", "-c", "10")
    wait_until(lambda: slow_server.stats()["ok"] >= before + 20, 20, "20 answers")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    rows = json.loads(out)
    assert 0 < len(rows) < 400
    assert [r["index"] for r in rows] == sorted(r["index"] for r in rows)


def test_sigterm_streaming_run_keeps_complete_lines(slow_server):
    proc = _batch(slow_server.url, "batch", "jsonl", "-c", "10")
    first = proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    lines = [first, *rest.splitlines()]
    assert all(json.loads(line)["error"] is None for line in lines)
    assert "Interrupted" in err and "Traceback" not in err


# -- inventory: temporary files ------------------------------------------------------------------

ACCOUNTS = ",".join(f"{n}" * 12 for n in range(1, 7))


@pytest.fixture(scope="module")
def pages():
    with inventory_server(latency=0.2, items=3) as server:
        yield server


def _inventory(url, out, *, concurrency=2, cache_dir=None):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "PYTHONUNBUFFERED": "1"}
    if cache_dir:
        env["GREENFETCH_CACHE_DIR"] = str(cache_dir)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "greenfetch.cli",
            "inventory",
            "--accounts",
            ACCOUNTS,
            "--role-name",
            "Reader",
            "--regions",
            "us-east-1,eu-west-1,eu-west-2",
            "--types",
            "ec2.vpcs,dynamodb.tables,lambda.functions",
            "--out",
            str(out),
            "--format",
            "jsonl",
            "--endpoint-url",
            url,
            "--cache-ttl",
            "0",
            "-c",
            str(concurrency),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _temps(out):
    return sorted(p.name for p in Path(out).glob(".*.tmp"))


def _writing(out):
    return any(p.stat().st_size > 0 for p in Path(out).glob(".inventory.jsonl.*.tmp"))


def test_sigterm_inventory_exits_143_and_leaves_no_temp_file(pages, tmp_path):
    proc = _inventory(pages.url, tmp_path)
    wait_until(lambda: _writing(tmp_path), 30, "records being written")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "interrupted" in err and "Traceback" not in err
    assert _temps(tmp_path) == []
    assert not (tmp_path / "inventory.jsonl").exists()


def test_after_sigkill_the_next_run_sweeps_the_orphan(pages, tmp_path):
    proc = _inventory(pages.url, tmp_path)
    wait_until(lambda: _writing(tmp_path), 30, "records being written")
    proc.kill()
    proc.wait(timeout=10)
    assert len(_temps(tmp_path)) == 1  # what SIGKILL leaves: nothing can run in a killed process
    (tmp_path / "keep.tmp").write_text("not ours")
    rerun = _inventory(pages.url, tmp_path, concurrency=16)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert _temps(tmp_path) == []
    assert (tmp_path / "keep.tmp").exists()
    assert len((tmp_path / "inventory.jsonl").read_text().splitlines()) == 6 * 3 * 3


# -- cache clear -----------------------------------------------------------------------------------


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_cache_clear_removes_only_the_caches_own_files(tmp_path):
    """The cache's entries (its SQLite file), an earlier version's entry files (40 hex digits, our
    marker inside) and their temporary files a killed writer left; nothing else."""
    from greenfetch.inventory._cache import InventoryCache, _name

    with InventoryCache(3600, tmp_path) as cache:
        cache.set("s3:ListBuckets:abc", {"Buckets": []})
    ours = tmp_path / _name("s3:ListBuckets:old")  # what an earlier version wrote
    ours.write_text(
        json.dumps({"greenfetch-cache": 1, "key": "s3:ListBuckets:old", "stored_at": 1.0, "value": 1})
    )
    others = {
        "ec2.vpcs.json": "[1, 2]",
        "notes.json": "x",
        "settings.json": '{"a": 1}',
        "0" * 40 + ".json": '{"not": "a cache entry"}',
    }
    for name, text in others.items():
        (tmp_path / name).write_text(text)
    orphan = tmp_path / f".{ours.name}.{_dead_pid()}.abcd1234.tmp"
    orphan.write_text("{half")
    live = tmp_path / f".{ours.name}.{os.getppid()}.abcd1234.tmp"  # a writer that still runs
    live.write_text("{half")
    foreign = tmp_path / ".ec2.vpcs.json.1.abcd1234.tmp"
    foreign.write_text("x")

    proc = subprocess.run(
        [sys.executable, "-m", "greenfetch.cli", "cache", "clear", "--cache-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "removed 2 cache entries"  # the entry, the old file (the orphan went first)
    assert cache_rows(tmp_path) == {}
    assert not ours.exists() and not orphan.exists()
    assert live.exists() and foreign.exists()
    assert {name: (tmp_path / name).read_text() for name in others} == others


def test_a_command_without_its_own_handler_still_exits_128_plus_signal(loopback):
    """`stats --url` waiting on a server (as drs-sync waits on AWS): SIGTERM ends it with 143, not click's 1."""
    loopback.control(latency=30.0)
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenfetch.cli", "stats", "--url", f"{loopback.url}/metrics"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: loopback.stats()["inflight"] >= 1, 30, "the request to be waiting")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
