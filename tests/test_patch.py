"""The gevent patching story, each case in a fresh interpreter."""

import subprocess
import sys

import pytest


def run(code, **env):
    import os

    full = {**os.environ, **env}
    full.pop("GREENFETCH_ENGINE", None)
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=60)


def test_import_first_patches_the_standard_library():
    out = run("import greenfetch, socket, gevent.socket; print(socket.socket is gevent.socket.socket)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


@pytest.mark.parametrize("first", ["ssl", "botocore.session", "boto3"])
def test_import_after_ssl_fails_with_a_clear_message_not_a_recursion_error(first):
    out = run(f"import {first}\nimport greenfetch")
    assert out.returncode != 0
    assert "EngineImportError" in out.stderr and "GREENFETCH_ENGINE=threads" in out.stderr
    assert "RecursionError" not in out.stderr


def test_program_that_patched_itself_is_fine():
    out = run(
        "from gevent import monkey; monkey.patch_all()\nimport ssl, boto3\nimport greenfetch\nprint('ok')"
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_threads_engine_never_patches_and_still_runs_batches():
    code = (
        "import boto3, socket\nimport greenfetch\n"
        "import gevent.socket\nassert socket.socket is not gevent.socket.socket\n"
        "e = greenfetch.Engine()\nassert e.backend.name == 'threads'\n"
        "rs = e.batch_requests([{'service': 'nope', 'operation': 'X'}] * 5, concurrency=2)\n"
        "print(len(rs), [r.index for r in rs])"
    )
    out = run(code, GREENFETCH_ENGINE="threads")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "5 [0, 1, 2, 3, 4]"


def test_cli_patches_first_and_runs():
    out = subprocess.run([sys.executable, "-m", "greenfetch.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "batch" in out.stdout
