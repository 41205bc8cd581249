"""The plain answer read without geventhttpclient's parser (``_wire.plain_answer``): whatever it takes, it
reads as that parser reads it (status, header fields, body, whether the connection is kept), and on real
sockets over HTTP and TLS the clients see what botocore's urllib3 session gives them."""

import _needs_geventhttpclient  # noqa: F401  (skips this module where geventhttpclient is not installed)
import botocore.awsrequest
import botocore.config
import botocore.exceptions
import botocore.session
import pytest
from _dynamodb_clients import dynamodb_client
from geventhttpclient.response import HTTPParseError
from hypothesis import example, given
from hypothesis import strategies as st

from greenfetch._http import _gevent
from greenfetch._http._wire import Fields, joined, plain_answer
from greenfetch.testing import Reply, ScriptedServer, http_response, throwaway_ca

JSON = [("x-amzn-RequestId", "req-1"), ("Content-Type", "application/x-amz-json-1.0")]
AWS_HEAD = (
    b"HTTP/1.1 200 OK\r\nx-amzn-RequestId: r\r\nContent-Type: application/x-amz-json-1.0\r\n"
    b"Content-Length: 2\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n{}"
)


class _Socket:
    """Hands out ``data`` on the first read, then end of file."""

    def __init__(self, data):
        self.reads = [data]

    def recv(self, _size):
        return self.reads.pop(0) if self.reads else b""

    def close(self):
        pass


class _Pool:
    def __init__(self):
        self.kept = None

    def return_socket(self, _sock):
        self.kept = True

    def release_socket(self, _sock):
        self.kept = False


def parsed(data, method):
    """What geventhttpclient's parser (the session's other path) makes of ``data``."""
    pool = _Pool()
    response = _gevent._Response(_Socket(data), pool, block_size=65536, method=method, headers_type=Fields)
    return response.status_code, joined(response._headers_index), response.read(), pool.kept


_plain_names = [
    "x-amz-meta",
    "X-Amz-Meta",
    "Content-Type",
    "ETag",
    "x-amzn-RequestId",
    "Date",
    "a!#$%&'*+.^_`|~",
]
_names = st.one_of(
    st.sampled_from(_plain_names),
    st.sampled_from(["Content-Length", "content-length", "Transfer-Encoding", "Connection", "connection"]),
    st.sampled_from(["Bad Name", "X\x01", "", "é"]),
)
_visible = st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f")
_values = st.one_of(
    st.text(_visible, max_size=10),
    st.text(st.sampled_from(" \tab,"), max_size=5),
    st.sampled_from(["close", "keep-alive", "Close", "keep-alive, close", "upgrade", "chunked", "identity"]),
    st.sampled_from(["0", "2", "02 ", " 2", "2\t", "+2", "2_0", "-1", "\xb2", "", "a, b"]),
    st.text(st.characters(min_codepoint=0, max_codepoint=0xFF), max_size=10),
)
_separators = st.sampled_from([":", ": ", ":\t ", ":  ", " :"])
_status_lines = st.one_of(
    st.sampled_from(["HTTP/1.1 200 OK", "HTTP/1.1 200", "HTTP/1.1 400 Bad Request", "HTTP/1.1 500 x"]),
    st.sampled_from(["HTTP/1.0 200 OK", "HTTP/1.1 100 Continue", "HTTP/1.1 204 No Content"]),
    st.sampled_from(["HTTP/1.1 304 Not Modified", "HTTP/1.1 999 Odd", "HTTP/1.1 20 OK", "HTTP/2 200 OK"]),
    st.builds(
        "HTTP/1.1 200 {}".format, st.text(st.characters(min_codepoint=0, max_codepoint=0xFF), max_size=6)
    ),
)


_plain_fields = st.tuples(
    st.sampled_from(_plain_names), st.sampled_from([":", ": ", ":\t "]), st.text(_visible, max_size=10)
)
_any_fields = st.tuples(_names, _separators, _values)


@st.composite
def answers(draw):
    """A response: a third plain, a third with one odd line, a third anything; a body of the length its
    Content-Length states, if it has one."""
    body = draw(st.binary(max_size=20))
    mode = draw(st.sampled_from(["plain", "one odd line", "anything"]))
    fields = draw(st.lists(_any_fields if mode == "anything" else _plain_fields, max_size=5))
    if mode == "one odd line":
        fields.insert(draw(st.integers(0, len(fields))), draw(_any_fields))
    lines = [draw(st.just("HTTP/1.1 200 OK") if mode == "plain" else _status_lines)]
    lines += [f"{name}{separator}{value}" for name, separator, value in fields]
    if mode != "anything" or draw(st.booleans()):
        lines.insert(draw(st.integers(1, len(lines))), f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@given(answers(), st.sampled_from(["POST", "GET", "HEAD", "PUT"]))
@example(AWS_HEAD, "POST")
@example(AWS_HEAD.replace(b"Date", b"Connection: close\r\nDate"), "POST")
@example(AWS_HEAD.replace(b"Date", b"Transfer-Encoding: chunked\r\nDate"), "POST")
@example(AWS_HEAD.replace(b"Date: ", b"X:  spaced  \r\nx-amzn-requestid:\tagain\r\nDate: "), "POST")
@example(AWS_HEAD.replace(b"Date: Thu", b"Date: \xe9t\xe9"), "POST")
def test_a_plain_answer_reads_as_the_parser_reads_it(data, method):
    ours = plain_answer(data, method)
    if ours is None:  # for the parser
        return
    status, headers, length, keep, start = ours
    if (
        len(data) - start != length
    ):  # the session raises (a body cut short, bytes past its end); so does the parser
        with pytest.raises(HTTPParseError):
            parsed(data, method)
        return
    assert parsed(data, method) == (status, headers, data[start:], keep)
    assert list(headers) == list(parsed(data, method)[1])  # names in the same order and spelling


def test_what_aws_answers_is_plain_and_the_rest_is_not():
    assert plain_answer(AWS_HEAD, "POST") is not None
    for other in (
        AWS_HEAD.replace(b"Content-Length: 2", b"Transfer-Encoding: chunked"),  # chunked
        AWS_HEAD.replace(b"Content-Length: 2\r\n", b""),  # no length: read to the end
        AWS_HEAD.replace(b"HTTP/1.1", b"HTTP/1.0"),
        AWS_HEAD.replace(b"200 OK", b"100 Continue"),
        AWS_HEAD.replace(b"200 OK", b"204 No Content"),
        AWS_HEAD[:40],  # the head not whole in the first read
        AWS_HEAD.replace(b"Date:", b"Date :"),
        AWS_HEAD.replace(b"Date:", b" Date:"),  # a folded line
        AWS_HEAD.replace(b"Date:", b"Bad Date:"),
        AWS_HEAD.replace(b"Date: Thu", b"X: a\nDate: Thu"),  # a bare LF
        AWS_HEAD.replace(b"Date: Thu", b"X: a\rDate: Thu"),  # a bare CR
    ):
        assert plain_answer(other, "POST") is None, other
    assert plain_answer(AWS_HEAD, "HEAD") is None


# -- on real sockets ------------------------------------------------------------------------------


def outcome(call):
    try:
        value = call()
    except botocore.exceptions.BotoCoreError as exc:
        return (type(exc).__name__,)
    meta = value.pop("ResponseMetadata")
    return ("ok", value, meta["HTTPStatusCode"], meta["HTTPHeaders"])


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return throwaway_ca(tmp_path_factory.mktemp("tls") / "ca")


@pytest.fixture
def plain_only(monkeypatch):
    """Fails a test if an answer went to geventhttpclient's parser: these are all plain ones."""

    def other_path(*args, **kwargs):
        raise AssertionError("not read as a plain answer")

    monkeypatch.setattr(_gevent, "_Response", other_path)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_body_over_many_reads(scheme, ca, plain_only):
    names = [f"table-{i:06d}-ü" for i in range(20000)]  # ~0.4 MB: many reads, many TLS records
    big = ('{"TableNames": [' + ", ".join(f'"{n}"' for n in names) + "]}").encode()
    tls = ca if scheme == "https" else None
    with ScriptedServer(lambda _: Reply(http_response(200, big, JSON)), tls=tls) as url:
        verify = ca.ca if tls else None
        stock, green = (
            dynamodb_client(url, green=False, verify=verify),
            dynamodb_client(url, green=True, verify=verify),
        )
        assert outcome(green.list_tables) == outcome(stock.list_tables)
        assert outcome(green.list_tables)[1]["TableNames"] == names


@pytest.mark.parametrize("connection", ["close", "keep-alive", None])
def test_connection_close_is_honoured(connection, plain_only):
    extra = [("Connection", connection)] if connection else []
    answer = Reply(http_response(200, b'{"TableNames": []}', [*JSON, *extra]))
    scripted = ScriptedServer(lambda _: answer)  # never hangs up itself
    with scripted as url:
        green = dynamodb_client(url, green=True)
        for _ in range(3):
            assert outcome(green.list_tables)[:2] == ("ok", {"TableNames": []})
        assert scripted.connections == (3 if connection == "close" else 1)


def test_bytes_past_the_end_of_an_answer_drop_the_connection():
    trailing = Reply(http_response(200, b'{"TableNames": []}', JSON) + b"HTTP/1.1 200 OK\r\n")
    ok = Reply(http_response(200, b'{"TableNames": ["b"]}', JSON))
    scripted = ScriptedServer(lambda _: ok)
    with scripted as url:
        green = dynamodb_client(url, green=True)
        scripted.script(trailing)
        assert outcome(green.list_tables) == ("ConnectionClosedError",)
        assert outcome(green.list_tables)[:2] == ("ok", {"TableNames": ["b"]})
        assert scripted.connections == 2


# -- the request head -----------------------------------------------------------------------------


def reference_head(request, target, host_lines):
    """The head through the headers' own ``items`` and ``get``: what ``_wire.head`` wrote before it read
    a ``HeadersDict``'s storage (urllib3's order and framing; tests/test_http_session.py checks that)."""
    method, body, headers = request.method, request.body, request.headers
    lines = [method, " ", target, " HTTP/1.1\r\n", host_lines]
    names = {name.lower() for name in headers}
    if isinstance(body, str):
        body = body.encode("utf-8")
    te = headers.get("Transfer-Encoding")
    chunked = (
        te is not None and (te.lower() if isinstance(te, str) else te.lower().decode("latin-1")) == "chunked"
    )
    if "content-length" not in names and "transfer-encoding" not in names:
        if isinstance(body, (bytes, bytearray)):
            lines.append(f"Content-Length: {len(body)}\r\n")
        elif body is None and method in ("POST", "PUT", "PATCH"):
            lines.append("Content-Length: 0\r\n")
        elif body is not None:
            chunked = True
            lines.append("Transfer-Encoding: chunked\r\n")
    for name, value in headers.items():
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if "\n" in text or "\r" in text:
            raise ValueError(f"invalid header value for {name!r}")
        lines.append(f"{name}: {text}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1"), body, chunked


def _either(fn, *args):
    """The head, or the error: a ValueError (CR or LF in a value, text that is not Latin-1) becomes the
    session's HTTPClientError whichever of the two is found first."""
    try:
        return fn(*args)
    except ValueError:
        return ValueError
    except Exception as exc:  # noqa: BLE001  (a name that is not text, a value with no lower case)
        return type(exc)


_header_names = st.sampled_from(
    ["X-Amz-Date", "x-amz-date", "Content-Type", "Content-Length", "content-length", "Transfer-Encoding"]
    + ["transfer-encoding", "Authorization", "X-Amz-Meta-ü", "Expect", b"X-Bytes", "X-Split\r\nName"]
)
_header_values = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=8),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=6),
    st.sampled_from(["chunked", "Chunked", "identity", "100-continue", "a\r\nX-Injected: 1"]),
    st.binary(max_size=8),
    st.sampled_from([b"chunked", b"ab\n", b"a\rb", b"\r\n", "a\r", 12, None]),
)


@given(
    st.lists(st.tuples(_header_names, _header_values), max_size=8),
    st.sampled_from(["GET", "POST", "PUT", "HEAD", "DELETE"]),
    st.sampled_from([None, b"", b"{}", "ü", b"x" * 100, iter([b"a"])]),
    st.sampled_from(["original", "installed", "dict"]),
)
@example([("Transfer-Encoding", b"chunked"), ("X-Amz-Date", b"20260101T000000Z")], "PUT", b"{}", "installed")
@example([("transfer-encoding", "Chunked")], "POST", None, "original")
@example([("Content-Length", b"2")], "POST", b"{}", "installed")
def test_the_request_head_is_the_listing_of_its_headers(pairs, method, body, kind):
    from greenfetch._http import _wire

    headers_type = {"original": _wire._ORIGINAL, "installed": botocore.awsrequest.HeadersDict, "dict": dict}[
        kind
    ]
    headers = headers_type()
    for name, value in pairs:
        headers[name] = value
    request = botocore.awsrequest.AWSPreparedRequest(method, "https://h/p", headers, body, False)
    host = "Host: h\r\nAccept-Encoding: identity\r\n"
    assert _either(_wire.head, request, "/p?a=b", host) == _either(reference_head, request, "/p?a=b", host)


# -- the wait for the answer ----------------------------------------------------------------------


def test_the_read_timeout_of_each_request_fires_on_a_kept_connection():
    slow = Reply(http_response(200, b"{}", JSON), delay=0.4)
    scripted = ScriptedServer(lambda _: slow)
    with scripted as url:
        session = _gevent.GeventHTTPSession(timeout=0.2)
        request = botocore.awsrequest.AWSPreparedRequest(
            "POST", url + "/", botocore.awsrequest.HeadersDict(), b"{}", False
        )
        request.context = {"read_timeout": 5.0}  # this request's own: longer than the answer takes
        assert session.send(request).status_code == 200
        request.context = {}  # the session's 0.2 s again, on the same connection
        with pytest.raises(botocore.exceptions.ReadTimeoutError):
            session.send(request)
        request.context = {"read_timeout": 5.0}
        assert session.send(request).content == b"{}"
        assert scripted.connections == 2  # the connection that timed out was dropped
        session.close()


def test_the_last_origin_is_remembered_until_the_session_closes():
    session = _gevent.GeventHTTPSession()
    first, target = session._origin("http://a.example:1/x?q#f")
    assert session._origin("http://a.example:1/x?q#f") == (first, target) and target == "/x?q"
    assert session._origin("http://a.example:1/y")[0] is first
    session.close()
    again, _ = session._origin("http://a.example:1/y")
    assert again is not first and list(session._origins.values()) == [again]
    session.close()
