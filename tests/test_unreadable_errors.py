"""An error answer whose body is not the service's error format (a crashed server's HTML page, a proxy's
page): a 500, 502, 503 or 504 is retried under the one retry policy, a 4xx is not, and what still fails
says its status and that the body was not the service's format, quoting a short, masked excerpt.

What botocore does without greenfetch is pinned first (pure, no socket): it recognizes only a 5xx body
that starts with exactly ``<html>``. Then the loopback server's ``html_count``/``html_rate`` faults answer
with moto's own crash page, through botocore via the engine, in the JSON, query and EC2 protocols
(``inventory_server`` answers all three). Budget: ~6 s (one server; eight retries, each after
botocore's backoff of rand(0, 1) s).
"""

import json

import botocore.model
import botocore.parsers
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from greenfetch import Config, Engine, classify
from greenfetch._unreadable_errors import UNREADABLE_EXCERPT, unreadable_error
from greenfetch.testing import inventory_server
from greenfetch.testing._loopback_faults import PROTOCOLS, Faults, error_body, html_page

# The policy's attempt limit for these tests: 2 keeps one backoff per retried call (botocore's standard
# mode sleeps rand(0, 1) s before a 2nd attempt, rand(0, 2) s before a 3rd)
ATTEMPTS = 2
CALLS = {
    "json": {"service": "dynamodb", "operation": "ListTables"},
    "query": {"service": "sts", "operation": "GetCallerIdentity"},
    "ec2": {"service": "ec2", "operation": "DescribeVpcs"},
}
NOT_THE_FORMAT = "not the service's error format"
PAGE_TAIL = "there is an error in the application"  # the end of moto's page: never quoted whole


# -- what botocore does on its own ---------------------------------------------------------------


def _botocore_parse(protocol, status, headers, body):
    parser = botocore.parsers.create_parser(protocol)
    shape = botocore.model.StructureShape("Out", {"type": "structure", "members": {}})
    return parser.parse({"status_code": status, "headers": headers, "body": body}, shape)


@pytest.mark.parametrize("protocol", ["query", "ec2"])
@pytest.mark.parametrize("status", [500, 503, 400])
def test_botocore_cannot_parse_the_page_in_the_xml_rpc_protocols(protocol, status):
    """Raised from the parse, before botocore's retry handler sees the answer: never retried."""
    headers, body = html_page(status)
    with pytest.raises(botocore.parsers.ResponseParserError, match="Further retries may succeed"):
        _botocore_parse(protocol, status, headers, body)


@pytest.mark.parametrize("protocol", ["json", "rest-json"])
def test_botocore_takes_the_whole_page_for_the_message_in_json(protocol):
    headers, body = html_page(500)
    error = _botocore_parse(protocol, 500, headers, body)["Error"]
    assert (error["Code"], error["Message"]) == ("500", body.decode())


def test_botocore_reads_a_5xx_body_only_when_it_starts_with_exactly_html():
    headers, _ = html_page(503)
    assert _botocore_parse("query", 503, headers, b"<html><body>down</body></html>")["Error"]["Code"] == "503"


# -- the rule (pure) -----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
@pytest.mark.parametrize("status", [400, 403, 500, 502, 503, 504])
def test_an_aws_error_in_its_own_protocol_is_readable(protocol, status):
    headers, body = error_body(protocol, "InternalFailure", "boom", "rid-1")
    assert unreadable_error(protocol, status, body, headers["content-type"]) is None


@pytest.mark.parametrize("protocol", ["json", "rest-json", "query", "ec2", "rest-xml", "smithy-rpc-v2-cbor"])
def test_the_page_is_unreadable_in_every_protocol_and_says_so_briefly(protocol):
    headers, body = html_page(502)
    code, message = unreadable_error(protocol, 502, body, headers["content-type"])
    assert code == "HTTP502"
    assert message.startswith("HTTP 502 Bad Gateway, and its body is " + NOT_THE_FORMAT)
    assert "text/html" in message and f"{len(body)} bytes" in message
    assert "<title>502 Bad Gateway</title>" in message and PAGE_TAIL not in message


# A CBOR error answer as a smithy-rpc-v2-cbor service sends it: a map (major type 5) of two text strings
CBOR_ERROR = (
    bytes([0xA2, 0x66])
    + b"__type"
    + bytes([0x6F])
    + b"InternalFailure"
    + bytes([0x67])
    + b"message"
    + bytes([0x64])
    + b"boom"
)


def test_a_cbor_error_map_is_readable_and_anything_else_in_cbor_is_not():
    # botocore's own parser reads the map as the error it is: the bytes are a real CBOR error answer
    parsed = _botocore_parse("smithy-rpc-v2-cbor", 500, {"smithy-protocol": "rpc-v2-cbor"}, CBOR_ERROR)
    assert parsed["Error"] == {"Code": "InternalFailure", "Message": "boom"}
    assert unreadable_error("smithy-rpc-v2-cbor", 500, CBOR_ERROR, "application/cbor") is None
    # a CBOR array (major type 4) or text string (major type 3) is CBOR, but no error answer
    for not_a_map in (bytes([0x81, 0x01]), bytes([0x64]) + b"boom"):
        code, message = unreadable_error("smithy-rpc-v2-cbor", 500, not_a_map, "application/cbor")
        assert code == "HTTP500" and "CBOR expected" in message


def test_nothing_to_say_for_an_empty_body_a_success_or_a_protocol_it_does_not_know():
    assert unreadable_error("json", 500, b"") is None  # botocore reads an empty body by its status
    assert unreadable_error("query", 503, b"  \n") is None
    assert unreadable_error("query", 200, b"<html>") is None
    assert unreadable_error("soap", 500, b"<html>") is None


BODY = st.binary(max_size=600) | st.text(max_size=600).map(str.encode)


@settings(max_examples=100, deadline=None)
@given(BODY, st.integers(400, 599), st.sampled_from(["json", "query", "rest-xml", "smithy-rpc-v2-cbor"]))
def test_a_message_is_one_short_line_whatever_the_body(body, status, protocol):
    found = unreadable_error(protocol, status, body, "text/plain")
    if found is not None:
        code, message = found
        assert code == f"HTTP{status}" and "\n" not in message
        assert len(message) < 180 + UNREADABLE_EXCERPT * 4  # the excerpt's repr escapes at most 4:1


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/+", min_size=8, max_size=40), st.text(max_size=30)
)
def test_a_credential_near_the_start_of_a_body_is_masked(secret, before):
    assume(secret not in before)
    for body in (
        f'{before}{{"SecretAccessKey": "{secret}"}}',
        f"<html>{before}<SecretAccessKey>{secret}</SecretAccessKey>",
        f"{before}\nAuthorization: AWS4-HMAC-SHA256 Credential={secret}",
    ):
        _, message = unreadable_error("query", 500, body.encode())
        assert secret not in message.partition("bytes): ")[2], body


def test_a_code_that_is_only_a_status_is_classified_by_it():
    """What the engine's failed Result and the inventory store read with the code alone."""
    assert classify("HTTP502").status == classify("503").status == "transient"
    assert classify("HTTP502").retryable and not classify("HTTP400").retryable
    assert classify("HTTP404").status == "not_found" and classify("HTTP429").status == "throttled"


def test_html_count_answers_the_next_n_requests_with_the_page():
    faults = Faults({"html_count": 2, "error_rate": 0.0})
    assert [faults.decide("t", 1)[1] for _ in range(4)] == ["html", "html", "ok", "ok"]
    assert {Faults({"html_rate": 1.0}).decide("t", 1)[1] for _ in range(5)} == {"html"}


# -- through botocore via the engine, against the loopback server ------------------------------------


@pytest.fixture(scope="module")
def server():
    with inventory_server() as srv:
        yield srv


@pytest.fixture(scope="module")
def engine(server):
    eng = Engine(
        Config.resolve(
            {"region": "us-east-1", "endpoint_url": server.url, "max_attempts": ATTEMPTS}, environ={}
        )
    )
    yield eng
    eng.close()


@pytest.fixture
def page(server):
    server.control(html_count=0, html_rate=0.0, html_status=500)
    server.reset_stats()
    return server


@pytest.mark.parametrize("protocol", sorted(CALLS))
def test_one_html_500_then_an_answer_is_retried_to_ok(engine, page, protocol):
    page.control(html_count=1)
    result = engine.execute(CALLS[protocol])
    assert result.ok, result.error
    assert result.attempts == 2
    stats = page.stats()
    assert (stats["html"], stats["requests"]) == (1, 2)


@pytest.mark.parametrize(
    ("protocol", "status"),
    [(protocol, 500) for protocol in sorted(CALLS)] + [("query", 503)],
)
def test_an_html_5xx_every_time_fails_after_the_policy_s_attempts_naming_it(engine, page, protocol, status):
    page.control(html_rate=1.0, html_status=status)
    result = engine.execute(CALLS[protocol])
    assert (result.error_code, result.retryable, result.attempts) == (f"HTTP{status}", True, ATTEMPTS)
    assert f"HTTP {status}" in result.error and NOT_THE_FORMAT in result.error
    assert PAGE_TAIL not in result.error and len(result.error) < 300
    assert page.stats()["requests"] == ATTEMPTS


@pytest.mark.parametrize("protocol", sorted(CALLS))
def test_an_html_400_is_not_retried(engine, page, protocol):
    page.control(html_rate=1.0, html_status=400)
    result = engine.execute(CALLS[protocol])
    assert (result.error_code, result.retryable, result.attempts) == ("HTTP400", False, 1)
    assert "HTTP 400" in result.error and NOT_THE_FORMAT in result.error
    assert page.stats()["requests"] == 1


def test_the_status_counts_as_one_attempt_each_in_the_metrics(engine, page):
    """Every attempt was seen by botocore's retry handler (and so by the gate and the metrics)."""
    page.control(html_count=1)
    before = _retries(engine)
    assert engine.execute(CALLS["query"]).attempts == 2
    assert _retries(engine) - before == 1


def _retries(engine):
    return sum(
        sample.value
        for metric in engine.metrics.registry.collect()
        if metric.name == "greenfetch_retries"
        for sample in metric.samples
        if sample.name == "greenfetch_retries_total"
    )


def test_the_page_is_what_moto_s_server_answers_when_it_crashes():
    """The fault is moto's (Flask's) crash page byte for byte, so these tests are CI's failure."""
    werkzeug = pytest.importorskip("werkzeug.exceptions")
    response = werkzeug.InternalServerError().get_response()
    assert html_page(500)[1] == response.get_data()
    assert json.dumps(html_page(500)[0]) == json.dumps({"content-type": response.headers["content-type"]})
