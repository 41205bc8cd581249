"""S3 uploads in bounded memory (issue 15 item 11), on moto's server over real HTTP.

moto enforces S3's 5 MiB minimum for every part but the last (EntityTooSmall on completion), so the
multipart tests use real 5 MiB parts: what passes here is what S3 accepts. Failures are injected by a
forwarding proxy (``ScriptedServer`` in front of moto) that answers chosen UploadParts with S3's
InternalError, so the engine's own retry policy is what retries them. Account ids start with 5557.
"""

import hashlib
import json
import os
import random
import signal
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenfetch import Config, Engine, Request
from greenfetch.cli import load_commands
from greenfetch.cli._signals import Terminated
from greenfetch.inventory import (
    FileSink,
    InventoryError,
    RunSummary,
    S3Upload,
    abort_incomplete_uploads,
    run_inventory,
    upload_file,
    upload_to_s3,
)
from greenfetch.inventory._s3_upload import MIN_PART_SIZE
from greenfetch.testing import Reply, ScriptedServer, http_response, wait_until

PART = MIN_PART_SIZE


def _engine(url, **extra):
    # body_limit: GetObject bodies are read whole here, so the tests can compare every byte
    return Engine(
        Config.resolve(
            {"endpoint_url": url, "region": "us-east-1", "max_attempts": 2, "body_limit": 64 << 20, **extra},
            environ={},
        )
    )


@pytest.fixture(scope="module")
def engine(moto_server):
    eng = _engine(moto_server.url)
    yield eng
    eng.close()


@pytest.fixture
def bucket(engine):
    name = f"upload-{uuid.uuid4().hex[:10]}"
    assert engine.execute(Request("s3", "CreateBucket", {"Bucket": name})).ok
    return name


def _s3(engine, operation, **params):
    result = engine.execute(Request("s3", operation, params))
    assert result.ok, result.error
    return result.result


def _body(engine, bucket, key):
    return _s3(engine, "GetObject", Bucket=bucket, Key=key)["Body"]


def _keys(engine, bucket):
    return [o["Key"] for o in _s3(engine, "ListObjectsV2", Bucket=bucket).get("Contents") or ()]


def _uploads(engine, bucket):
    return [
        (u["Key"], u["UploadId"])
        for u in _s3(engine, "ListMultipartUploads", Bucket=bucket).get("Uploads") or ()
    ]


def _lines(total, seed=7):
    """JSON Lines of varied length (some longer than a part would be if it were tiny), ``total`` bytes or more."""
    rng, size, out = random.Random(seed), 0, []
    while size < total:
        line = (
            json.dumps({"n": len(out), "pad": "é" * rng.randint(0, 40_000)}, ensure_ascii=False) + "\n"
        ).encode()
        out.append(line)
        size += len(line)
    return out


# -- S3Upload --------------------------------------------------------------------------------------


def test_a_small_object_is_one_put_object(engine, bucket):
    upload = S3Upload(engine, bucket, "run/small.jsonl", content_type="application/x-ndjson")
    upload.write(b'{"a": 1}\n')
    upload.write(b'{"b": "\xc3\xa9"}\n')
    assert upload.complete() is None
    assert dict(upload.calls) == {"PutObject": 1}
    assert _body(engine, bucket, "run/small.jsonl") == b'{"a": 1}\n{"b": "\xc3\xa9"}\n'
    assert _uploads(engine, bucket) == []


def test_exactly_one_part_is_still_one_put_and_empty_is_an_empty_object(engine, bucket):
    upload = S3Upload(engine, bucket, "one-part", part_size=PART)
    upload.write(b"x" * PART)  # full, but no byte beyond it: not a multipart upload of one part
    assert upload.complete() is None and dict(upload.calls) == {"PutObject": 1}
    empty = S3Upload(engine, bucket, "empty")
    assert empty.complete() is None and _body(engine, bucket, "empty") == b""


def test_a_stream_of_three_parts_is_byte_identical_and_holds_one_part(engine, bucket):
    lines = _lines(2 * PART + 300_000)
    upload = S3Upload(engine, bucket, "run/inventory.jsonl", part_size=PART)
    for line in lines:
        upload.write(line)
        assert upload.buffered <= PART
    assert upload.calls["UploadPart"] == 2  # two full parts went out while the stream was written
    assert upload.complete() is None
    assert upload.calls == {"CreateMultipartUpload": 1, "UploadPart": 3, "CompleteMultipartUpload": 1}
    assert upload.peak_buffered == PART  # the memory bound: one part (filled, then sent), never more
    body = _body(engine, bucket, "run/inventory.jsonl")
    assert hashlib.sha256(body).digest() == hashlib.sha256(b"".join(lines)).digest()
    assert _s3(engine, "HeadObject", Bucket=bucket, Key="run/inventory.jsonl")["ETag"].endswith('-3"')
    assert _uploads(engine, bucket) == []


_DATA = os.urandom(2 * PART + 2)
_SIZES = st.one_of(
    st.sampled_from([0, 1, PART - 1, PART, PART + 1, 2 * PART, 2 * PART + 1]), st.integers(0, len(_DATA))
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(total=_SIZES, chunks=st.lists(st.integers(1, 3) | st.integers(1, PART + 3), min_size=1, max_size=6))
def test_any_chunking_gives_the_same_object_one_part_held_and_the_fewest_calls(engine, bucket, total, chunks):
    data, key, start, n = _DATA[:total], f"prop/{uuid.uuid4().hex}", 0, 0
    upload = S3Upload(engine, bucket, key, part_size=PART)
    # The drawn cycle's writes run through each part's edge and the end; far from both, one write
    # skips ahead to ``span`` before the next (1-byte writes over 5-10 MB were millions of calls, 38 s
    # once), which is what lets the cycle draw writes of 1-3 bytes often: those land on a part's edge.
    span = 200 * sum(chunks)
    while start < total:
        edge = min(total, (start // PART + 1) * PART)
        if edge - start > 2 * span:
            size = edge - span - start
        else:
            size, n = chunks[n % len(chunks)], n + 1
        upload.write(data[start : start + size])
        start += size
        assert upload.buffered <= PART
    assert upload.complete() is None
    assert upload.peak_buffered == min(total, PART)
    parts = -(-total // PART)
    assert upload.calls == (
        {"PutObject": 1}
        if parts <= 1
        else {"CreateMultipartUpload": 1, "UploadPart": parts, "CompleteMultipartUpload": 1}
    )
    assert _body(engine, bucket, key) == data


def test_abort_leaves_no_object_and_no_upload(engine, bucket):
    upload = S3Upload(engine, bucket, "aborted", part_size=PART)
    upload.write(os.urandom(2 * PART + 1))
    assert upload.calls["UploadPart"] == 2 and len(_uploads(engine, bucket)) == 1
    assert upload.abort() is None
    assert upload.abort() is None  # idempotent
    assert _uploads(engine, bucket) == [] and _keys(engine, bucket) == []
    assert "aborted" in upload.complete()
    with pytest.raises(ValueError, match="after the upload was aborted"):
        upload.write(b"more")


def test_a_part_size_s3_would_refuse_is_refused_up_front(engine):
    with pytest.raises(ValueError, match="5 MiB"):
        S3Upload(engine, "b", "k", part_size=1 << 20)


def test_upload_file_sends_a_file_part_by_part(engine, bucket, tmp_path):
    big, small = tmp_path / "big.db", tmp_path / "small.json"
    big.write_bytes(os.urandom(PART + 4321))
    small.write_text("[]\n", encoding="utf-8")
    assert upload_file(engine, big, bucket, "files/big.db", part_size=PART) is None
    assert upload_file(engine, small, bucket, "files/small.json") is None
    assert _body(engine, bucket, "files/big.db") == big.read_bytes()
    assert _s3(engine, "HeadObject", Bucket=bucket, Key="files/big.db")["ETag"].endswith('-2"')
    assert _body(engine, bucket, "files/small.json") == b"[]\n"
    missing = upload_file(engine, tmp_path / "gone.json", bucket, "files/gone.json")
    assert missing.startswith(f"s3://{bucket}/files/gone.json: cannot read") and "No such file" in missing


def test_upload_to_s3_names_the_key_of_each_failed_file(engine, tmp_path):
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path in paths:
        path.write_text("[]\n", encoding="utf-8")
    errors = upload_to_s3(engine, paths, "s3://no-such-bucket-5557/run")
    assert sorted(e.split(":")[0] + ":" + e.split(":")[1] for e in errors) == [
        "s3://no-such-bucket-5557/run/a.json",
        "s3://no-such-bucket-5557/run/b.json",
    ]
    assert all("NoSuchBucket" in e for e in errors)


# -- failures, through a proxy that fails chosen parts ------------------------------------------------


class _FailingParts:
    """Forwards every request to moto, except that UploadPart number ``part`` gets S3's InternalError
    (HTTP 500) ``times`` times. Runs on gevent in this process, on a real socket."""

    def __init__(self, moto_url, part, times, deny_list=False, hold=None):
        import http.client

        self._connect = lambda: http.client.HTTPConnection(urlsplit(moto_url).netloc, timeout=30)
        self.part, self.times, self.failed, self.deny_list = str(part), times, 0, deny_list
        self.hold, self.holding = hold, False  # hold: an Event; part ``part`` waits for it before its answer

    def __call__(self, seen):
        method, target, _ = seen.request_line.split(" ", 2)
        query = parse_qs(urlsplit(target).query, keep_blank_values=True)
        if self.deny_list and method == "GET" and "uploads" in query:  # no s3:ListBucketMultipartUploads
            return Reply(
                http_response(
                    403,
                    b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
                    [("Content-Type", "application/xml")],
                    reason="Forbidden",
                )
            )
        if self.hold is not None and method == "PUT" and query.get("partNumber") == [self.part]:
            self.holding = True
            self.hold.wait()
        if method == "PUT" and query.get("partNumber") == [self.part] and self.failed < self.times:
            self.failed += 1
            return Reply(
                http_response(
                    500,
                    b"<Error><Code>InternalError</Code><Message>We encountered an "
                    b"internal error. Please try again.</Message></Error>",
                    [("Content-Type", "application/xml")],
                    reason="Internal Server Error",
                )
            )
        conn = self._connect()
        skip = {"host", "content-length", "transfer-encoding", "expect", "connection"}
        conn.request(
            method, target, body=seen.body, headers={k: v for k, v in seen.headers if k.lower() not in skip}
        )
        answer = conn.getresponse()
        body = answer.read()
        conn.close()
        headers = [
            (k, v)
            for k, v in answer.getheaders()
            if k.lower() not in ("content-length", "transfer-encoding", "connection")
        ]
        return Reply(http_response(answer.status, body, headers, reason=answer.reason))


@pytest.fixture
def failing_part(moto_server):
    """``failing_part(part, times) -> engine`` whose calls pass through the failing proxy."""
    servers, engines = [], []

    def make(part, times, deny_list=False, hold=None):
        server = ScriptedServer(_FailingParts(moto_server.url, part, times, deny_list, hold))
        servers.append(server)
        engines.append(_engine(server.start()))
        return engines[-1], server.default

    yield make
    for eng in engines:
        eng.close()
    for server in servers:
        server.stop()


def test_a_part_that_keeps_failing_aborts_the_upload_and_reports_the_key(engine, bucket, failing_part):
    proxied, proxy = failing_part(part=2, times=99)
    upload = S3Upload(proxied, bucket, "run/inventory.jsonl", part_size=PART)
    upload.write(os.urandom(2 * PART + 10))  # part 1 goes up; part 2 fails on every attempt
    assert proxy.failed == 2  # the engine's retry policy (max_attempts 2) tried it twice
    assert upload.state == "failed" and upload.buffered == 0
    upload.write(b"dropped after the failure")  # the local file goes on; the upload stays failed
    error = upload.complete()
    assert error.startswith(f"s3://{bucket}/run/inventory.jsonl: s3.UploadPart: InternalError")
    assert "aborted" in error and "testing" not in error  # no credential in the error
    assert upload.calls["AbortMultipartUpload"] == 1
    assert _uploads(engine, bucket) == [] and _keys(engine, bucket) == []  # no orphan parts, no half object


def test_a_part_that_fails_once_is_retried_by_the_engine(engine, bucket, failing_part):
    proxied, proxy = failing_part(part=1, times=1)
    data = os.urandom(PART + 99)
    upload = S3Upload(proxied, bucket, "retried", part_size=PART)
    upload.write(data)
    assert upload.complete() is None and proxy.failed == 1 and upload.calls["UploadPart"] == 2
    assert _body(engine, bucket, "retried") == data


class _Stop(BaseException):
    """Stands for Ctrl-C/SIGTERM (which the CLI raises in the running greenlet) without the test
    runner taking a KeyboardInterrupt for the user's."""


def test_a_stop_in_the_middle_of_a_part_leaves_nothing_and_refuses_to_complete(engine, bucket, failing_part):
    import gevent
    from gevent.event import Event

    hold = Event()
    proxied, proxy = failing_part(part=2, times=0, hold=hold)
    upload = S3Upload(proxied, bucket, "stopped", part_size=PART)
    writer = gevent.spawn(upload.write, os.urandom(2 * PART + 1))
    wait_until(lambda: proxy.holding, what="part 2 in flight")
    writer.kill(_Stop, block=True)
    hold.set()
    assert upload.state == "interrupted" and "UploadPart was interrupted" in upload.complete()
    assert upload.abort() is None
    assert _uploads(engine, bucket) == [] and _keys(engine, bucket) == []


# -- the sweep of what a killed run left --------------------------------------------------------------


def test_sweep_aborts_incomplete_uploads_of_exactly_these_keys(engine, bucket):
    def left(key):
        upload_id = _s3(engine, "CreateMultipartUpload", Bucket=bucket, Key=key)["UploadId"]
        _s3(engine, "UploadPart", Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"killed")
        return key, upload_id

    mine = [left("run/inventory.jsonl"), left("run/inventory.jsonl")]
    others = [left("run/inventory.jsonl.bak"), left("other/run/inventory.jsonl"), left("run/ec2.vpcs.json")]
    assert abort_incomplete_uploads(engine, bucket, ["run/inventory.jsonl"]) == 2
    assert sorted(_uploads(engine, bucket)) == sorted(others)
    assert abort_incomplete_uploads(engine, bucket, ["run/ec2.vpcs.json", "run/iam.roles.json"]) == 1
    assert sorted(_uploads(engine, bucket)) == sorted(others[:2]) and mine


# -- the inventory run: jsonl streamed to S3 ---------------------------------------------------------


def _records(count, size=40_000):
    return [
        {
            "resource_type": "iam.roles",
            "account": "555700000001",
            "region": "global",
            "items": [{"RoleName": f"r{n}", "Doc": "ü" * size}],
            "status": "ok",
            "error": None,
        }
        for n in range(count)
    ]


def test_file_sink_tees_the_jsonl_stream_byte_for_byte(engine, bucket, tmp_path):
    upload = S3Upload(engine, bucket, "tee/inventory.jsonl", part_size=PART)
    with FileSink(tmp_path / "out", "jsonl") as sink:
        sink.tee_to(upload)
        for rec in _records(160):  # ~12.8 MB: three parts
            sink.add(rec)
        assert (
            upload.calls["UploadPart"] == 2 and _keys(engine, bucket) == []
        )  # up while written, not published
        (path,) = sink.close()
    assert upload.error is None and upload.peak_buffered <= PART
    assert _body(engine, bucket, "tee/inventory.jsonl") == path.read_bytes()
    with pytest.raises(InventoryError, match="only the jsonl stream"):
        FileSink(tmp_path / "j", "json").tee_to(upload)


@pytest.mark.parametrize(
    "stop",
    [Terminated(signal.SIGTERM), KeyboardInterrupt("Ctrl-C"), RuntimeError("bug")],
    ids=["sigterm", "ctrl-c", "error"],
)
def test_a_stopped_run_aborts_its_upload(engine, bucket, tmp_path, stop):
    def fetch(on_record, **_plan):
        for rec in _records(240):  # ~19 MB: two 8 MiB parts are up when the run stops
            on_record(rec)
        assert len(_uploads(engine, bucket)) == 1
        raise stop  # what the CLI's signal routing raises in the main greenlet, or an error

    with pytest.raises(type(stop)):
        run_inventory(
            engine,
            accounts="555700000001",
            regions="us-east-1",
            types="iam.roles",
            out=tmp_path / "out",
            fmt="jsonl",
            s3_uri=f"s3://{bucket}/run",
            fetch=fetch,
        )
    assert _uploads(engine, bucket) == [] and _keys(engine, bucket) == []
    assert list((tmp_path / "out").iterdir()) == []


def test_a_run_whose_upload_fails_keeps_its_file_and_reports_the_key(engine, bucket, tmp_path, failing_part):
    proxied, proxy = failing_part(part=1, times=99)

    def fetch(on_record, **_plan):
        for rec in _records(120):  # ~9.6 MB: part 1 goes out (and fails) while the run goes on
            on_record(rec)
        return RunSummary()

    report = run_inventory(
        proxied,
        accounts="555700000002",
        regions="us-east-1",
        types="iam.roles",
        out=tmp_path / "out",
        fmt="jsonl",
        s3_uri=f"s3://{bucket}/run",
        fetch=fetch,
    )
    assert proxy.failed == 2 and report.failed
    (error,) = report.s3_errors
    assert (
        error.startswith(f"s3://{bucket}/run/inventory.jsonl: s3.UploadPart: InternalError")
        and "aborted" in error
    )
    assert len((tmp_path / "out" / "inventory.jsonl").read_bytes().splitlines()) == 120  # the file is whole
    assert _uploads(engine, bucket) == [] and _keys(engine, bucket) == []


def test_a_role_that_may_not_list_uploads_gets_a_warning_and_its_upload(
    engine, bucket, tmp_path, failing_part, caplog
):
    proxied, _ = failing_part(part=0, times=0, deny_list=True)

    def fetch(on_record, **_plan):
        for rec in _records(2, size=10):
            on_record(rec)
        return RunSummary()

    report = run_inventory(
        proxied,
        accounts="555700000003",
        regions="us-east-1",
        types="iam.roles",
        out=tmp_path / "out",
        fmt="jsonl",
        s3_uri=f"s3://{bucket}/run",
        fetch=fetch,
    )
    assert report.s3_errors == [] and not report.failed
    assert _body(engine, bucket, "run/inventory.jsonl") == (tmp_path / "out" / "inventory.jsonl").read_bytes()
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "greenfetch.inventory"]
    assert "AccessDenied" in warning and "AbortIncompleteMultipartUpload" in warning


# -- the command line ----------------------------------------------------------------------------------

ROLE = "InventoryReader"


@pytest.fixture
def cli_args(moto_server):
    return ["--endpoint-url", moto_server.url, "--region", "us-east-1", "--max-attempts", "1"]


def _inventory(cli_args, out, uri, *extra):
    return CliRunner().invoke(
        load_commands(),
        [
            *cli_args,
            "inventory",
            "--accounts",
            "555700000011,555700000012",
            "--role-name",
            ROLE,
            "--regions",
            "us-east-1",
            "--types",
            "sns.topics,iam.roles",
            "--out",
            str(out),
            "--cache-ttl",
            "0",
            "--s3-uri",
            uri,
            *extra,
        ],
    )


def test_cli_jsonl_to_s3_matches_the_local_file_and_sweeps_a_killed_runs_upload(
    engine, bucket, cli_args, tmp_path
):
    killed = _s3(engine, "CreateMultipartUpload", Bucket=bucket, Key="nightly/inventory.jsonl")["UploadId"]
    _s3(
        engine,
        "UploadPart",
        Bucket=bucket,
        Key="nightly/inventory.jsonl",
        UploadId=killed,
        PartNumber=1,
        Body=b'{"half": ',
    )
    unrelated = _s3(engine, "CreateMultipartUpload", Bucket=bucket, Key="nightly/other.bin")["UploadId"]
    out = _inventory(cli_args, tmp_path / "o", f"s3://{bucket}/nightly", "--format", "jsonl")
    assert out.exit_code == 0, out.output
    local = (tmp_path / "o" / "inventory.jsonl").read_bytes()
    assert len(local.splitlines()) == 4  # 2 accounts x (sns.topics in us-east-1, iam.roles global)
    assert _body(engine, bucket, "nightly/inventory.jsonl") == local
    head = _s3(engine, "HeadObject", Bucket=bucket, Key="nightly/inventory.jsonl")
    assert head["ContentType"] == "application/x-ndjson"
    assert _uploads(engine, bucket) == [("nightly/other.bin", unrelated)]  # the killed run's upload is gone


def test_cli_json_files_to_s3_and_a_missing_bucket_is_exit_2_before_any_fetch(
    engine, bucket, cli_args, tmp_path
):
    out = _inventory(cli_args, tmp_path / "o", f"s3://{bucket}/daily")
    assert out.exit_code == 0, out.output
    assert sorted(_keys(engine, bucket)) == ["daily/iam.roles.json", "daily/sns.topics.json"]
    assert _body(engine, bucket, "daily/iam.roles.json") == (tmp_path / "o" / "iam.roles.json").read_bytes()
    missing = _inventory(cli_args, tmp_path / "m", "s3://no-such-bucket-5557/daily", "--format", "jsonl")
    assert missing.exit_code == 2, missing.output
    assert (
        "bucket 'no-such-bucket-5557' does not exist" in missing.stderr and "Traceback" not in missing.output
    )
    assert not (tmp_path / "m").exists() or list((tmp_path / "m").iterdir()) == []
