"""The loopback server: its pure fault policy, and every knob observed through botocore via the engine.

Budget: ~6 s (the session's loopback server, reset before each test by conftest's ``loopback``; calls at
0-20 ms latency; no botocore retries except where counted).
"""

import json
import textwrap
import urllib.error
import urllib.request

import botocore.model
import botocore.parsers
import pytest

from greenfetch import Config, Engine
from greenfetch.testing import LoopbackServer, throwaway_ca
from greenfetch.testing._loopback_faults import PROTOCOLS, Faults, TokenBucket, check_knobs, error_body

LIST = {"service": "dynamodb", "operation": "ListTables"}
DESCRIBE = {"service": "dynamodb", "operation": "DescribeTable", "params": {"TableName": "t"}}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- pure policy ---------------------------------------------------------------------------------


def test_token_bucket_allows_rate_per_second_with_a_one_second_burst():
    clock = FakeClock()
    bucket = TokenBucket(2, clock)
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.now += 0.5
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now += 60
    assert sum(bucket.take() for _ in range(5)) == 2  # refills up to the burst, no further


def test_knee_keeps_latency_flat_up_to_c_then_grows_with_the_square():
    faults = Faults({"latency": 0.1, "knee": 4})
    assert faults.decide("t", 1)[0] == pytest.approx(0.1)
    assert faults.decide("t", 4)[0] == pytest.approx(0.1)
    assert faults.decide("t", 8)[0] == pytest.approx(0.4)


def test_seed_makes_the_fault_sequence_reproducible():
    knobs = {"error_rate": 0.3, "throttle_rate": 0.2, "drop_rate": 0.1, "jitter": 0.01, "seed": 7}
    runs = []
    for _ in range(2):
        faults = Faults(knobs)
        runs.append([faults.decide("t", 1) for _ in range(50)])
    assert runs[0] == runs[1]
    assert {outcome for _, outcome in runs[0]} == {"ok", "error", "throttle", "drop"}


@pytest.mark.parametrize("rate", ["error_rate", "throttle_rate", "drop_rate", "http429_rate"])
def test_a_rate_of_one_always_gives_its_outcome(rate):
    outcome = {
        "error_rate": "error",
        "throttle_rate": "throttle",
        "drop_rate": "drop",
        "http429_rate": "http429",
    }[rate]
    faults = Faults({rate: 1.0, "seed": 1})
    assert {faults.decide("t", 1)[1] for _ in range(20)} == {outcome}


def test_target_overrides_apply_to_their_target_only():
    faults = Faults({"latency": 0.05, "targets": {"slow": {"latency": 2.0, "error_rate": 1.0}}})
    assert faults.decide("slow", 1) == (2.0, "error")
    assert faults.decide("other", 1) == (0.05, "ok")


@pytest.mark.parametrize(
    "knobs, named",
    [
        ({"latencyy": 1}, "latencyy"),
        ({"error_rate": 1.5}, "error_rate"),
        ({"latency": -1}, "latency"),
        ({"knee": 0}, "knee"),
        ({"protocol": "soap"}, "soap"),
        ({"html_status": 200}, "html_status"),
        ({"html_count": -1}, "html_count"),
        ({"html_rate": 2}, "html_rate"),
    ],
)
def test_bad_knobs_are_named_with_what_would_be_valid(knobs, named):
    with pytest.raises(ValueError, match=named):
        check_knobs(knobs)


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_injected_errors_parse_as_aws_errors_in_each_protocol(protocol):
    code, status = PROTOCOLS[protocol][1]
    headers, body = error_body(protocol, code, "Rate exceeded", "rid-1")
    parser = botocore.parsers.create_parser(protocol)
    shape = botocore.model.StructureShape("Out", {"type": "structure", "members": {}})
    parsed = parser.parse({"status_code": status, "headers": headers, "body": body}, shape)
    assert parsed["Error"]["Code"] == code
    assert parsed["Error"]["Message"] == "Rate exceeded"


# -- the server, through botocore via the engine --------------------------------------------------


def engine_for(server, **config):
    return Engine(
        Config.resolve({"region": "us-east-1", "endpoint_url": server.url, "max_attempts": 1, **config})
    )


def test_list_tables_answers_the_tables_knob_and_counts_per_target(loopback):
    loopback.control(tables=["alpha", "beta"])
    results = engine_for(loopback).batch_requests([LIST, LIST, DESCRIBE], concurrency=3)
    assert results[0].result == {"TableNames": ["alpha", "beta"]}
    assert results[2].result == {}
    assert results[0].request_id and results[0].request_id.endswith("-loopback")
    stats = loopback.stats()
    assert stats["per_target"] == {"DynamoDB_20120810.ListTables": 2, "DynamoDB_20120810.DescribeTable": 1}
    assert (stats["requests"], stats["ok"], stats["inflight"]) == (3, 3, 0)


def test_latency_and_jitter_are_applied_per_request(loopback):
    loopback.control(latency=0.01, jitter=0.01, seed=3)
    results = engine_for(loopback).batch_requests([LIST] * 20, concurrency=5)
    assert all(r.ok for r in results)
    stats = loopback.stats()
    assert 0.01 <= stats["delay_min"] < stats["delay_max"] <= 0.02


@pytest.mark.parametrize(
    "knob, code, counter",
    [
        ("throttle_rate", "ThrottlingException", "throttled"),
        ("error_rate", "InternalServerError", "errors"),
        ("http429_rate", "429", "http429"),
    ],
)
def test_injected_errors_surface_as_retryable_results(loopback, knob, code, counter):
    loopback.control(**{knob: 1.0})
    results = engine_for(loopback).batch_requests([LIST] * 4, concurrency=4)
    assert {(r.error_code, r.retryable, r.attempts) for r in results} == {(code, True, 1)}
    assert loopback.stats()[counter] == 4


def test_dropped_connections_become_connection_error_results(loopback):
    loopback.control(drop_rate=1.0)
    results = engine_for(loopback).batch_requests([LIST] * 3, concurrency=3)
    assert {r.error_code for r in results} == {"ConnectionClosedError"}
    assert all(r.result is None and "dynamodb.ListTables" in r.error for r in results)
    assert loopback.stats()["dropped"] == 3


def test_token_bucket_throttles_above_its_rate(loopback):
    loopback.control(token_bucket=3)
    results = engine_for(loopback).batch_requests([LIST] * 30, concurrency=30)
    throttled = [r for r in results if r.error_code == "ThrottlingException"]
    stats = loopback.stats()
    assert len(throttled) == stats["throttled"] >= 1
    assert stats["ok"] == 30 - len(throttled) >= 3  # the burst always passes


def test_knee_raises_latency_only_when_inflight_exceeds_it(loopback):
    loopback.control(latency=0.02, knee=2)
    engine_for(loopback).batch_requests([LIST] * 12, concurrency=6)
    stats = loopback.stats()
    assert stats["inflight_max"] > 2
    assert stats["delay_max"] > 0.02 * 1.5
    loopback.control(knee=100)
    loopback.reset_stats()
    engine_for(loopback).batch_requests([LIST] * 12, concurrency=6)
    assert loopback.stats()["delay_max"] == pytest.approx(0.02)


def test_target_overrides_and_runtime_control(loopback):
    loopback.control(targets={"DynamoDB_20120810.DescribeTable": {"error_rate": 1.0}})
    engine = engine_for(loopback)
    first = engine.batch_requests([LIST, DESCRIBE], concurrency=2)
    assert [r.error_code for r in first] == [None, "InternalServerError"]
    loopback.control(targets={})
    assert all(r.ok for r in engine.batch_requests([LIST, DESCRIBE], concurrency=2))


def test_control_rejects_bad_knobs_on_both_sides(loopback):
    with pytest.raises(ValueError, match="error_rate"):
        loopback.control(error_rate=2)
    req = urllib.request.Request(
        loopback.url + "/_control", data=json.dumps({"nope": 1}).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 400 and "nope" in err.value.read().decode()


HANDLER = textwrap.dedent('''
    """An STS GetCallerIdentity answer in the query protocol, for the handler-hook test."""
    def sts(target, headers, body):
        if b"Action=GetCallerIdentity" not in body:
            return None, {}, b""  # anything else: drop the connection
        xml = ("<GetCallerIdentityResponse><GetCallerIdentityResult><Account>123456789012</Account>"
               "<Arn>arn:aws:iam::123456789012:user/me</Arn><UserId>AID</UserId>"
               "</GetCallerIdentityResult></GetCallerIdentityResponse>")
        return 200, {"content-type": "text/xml"}, xml
''')


def test_handler_hook_serves_other_protocols_with_faults_in_that_protocol(tmp_path, monkeypatch):
    (tmp_path / "gf_loopback_sts.py").write_text(HANDLER)
    monkeypatch.syspath_prepend(str(tmp_path))
    srv = LoopbackServer(handler="gf_loopback_sts:sts", latency=0.0)
    with srv:
        engine = engine_for(srv)
        ok = engine.execute({"service": "sts", "operation": "GetCallerIdentity"})
        assert ok.result["Account"] == "123456789012"
        dropped = engine.execute({"service": "sts", "operation": "GetSessionToken"})
        assert dropped.error_code == "ConnectionClosedError"
        srv.control(throttle_rate=1.0)
        throttled = engine.execute({"service": "sts", "operation": "GetCallerIdentity"})
        assert (throttled.error_code, throttled.retryable) == ("Throttling", True)
        stats = srv.stats()
    assert stats["per_target"] == {"GetCallerIdentity": 2, "GetSessionToken": 1}
    assert (stats["ok"], stats["dropped"], stats["throttled"]) == (1, 1, 1)


def test_tls_mode_serves_a_greenfetch_call_over_https_to_a_client_trusting_the_ca(tmp_path, monkeypatch):
    ca = throwaway_ca(tmp_path / "ca")
    with LoopbackServer(tls=ca, latency=0.0, tables=["secure"]) as url:
        assert url.startswith("https://127.0.0.1:")
        monkeypatch.setenv("AWS_CA_BUNDLE", throwaway_ca(tmp_path / "other").ca)
        untrusted = engine_for(_Url(url)).execute(LIST)
        monkeypatch.setenv("AWS_CA_BUNDLE", ca.ca)
        trusted = engine_for(_Url(url)).execute(LIST)
        stats = _Url(url, ca).stats()
    assert trusted.result == {"TableNames": ["secure"]}
    assert not untrusted.ok and "SSL" in f"{untrusted.error_code} {untrusted.error}"
    assert (stats["requests"], stats["ok"]) == (1, 1)  # the untrusted client never got past the handshake


class _Url(LoopbackServer):
    """A handle on a running server (the `with` block owns the process)."""

    def __init__(self, url: str, tls=None) -> None:
        super().__init__(tls=tls)
        self.url = url


def test_a_handler_that_cannot_be_imported_stops_start_with_its_name():
    with pytest.raises(RuntimeError, match="no_such_module_xyz"):
        LoopbackServer(handler="no_such_module_xyz:f").start()


def test_stats_before_start_says_how_to_start():
    with pytest.raises(RuntimeError, match="with LoopbackServer"):
        LoopbackServer().stats()
