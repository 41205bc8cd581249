"""An answer read off the socket for the gevent session: the plain answer's body read whole (``_plain``,
after ``_wire.plain_answer`` read its head), everything else through geventhttpclient's parser
(``_Response``), and the raw stream botocore reads either from (``_Body``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.awsrequest
import botocore.exceptions as bex
import gevent.socket
from gevent import getcurrent
from geventhttpclient.response import HTTPParseError, HTTPSocketPoolResponse

from ._pool import _Pool

_RESPONSE_BLOCK = 65536


class _Response(HTTPSocketPoolResponse):
    """geventhttpclient's pooled response, except that an interim 1xx (``100 Continue``, which servers
    send for botocore's ``Expect: 100-continue`` uploads) does not hand the socket back to the pool:
    upstream releases it at the end of *any* message, so the final response would be read from a socket
    the pool had already given to another request."""

    def _on_message_complete(self) -> None:
        if self.get_code() < 200:
            self.message_complete = True
            return
        super()._on_message_complete()


def _plain(
    url: str,
    sock: Any,
    pool: _Pool,
    data: bytes,
    status: int,
    headers: dict[str, str],
    length: int,
    keep: bool,
    start: int,
) -> botocore.awsrequest.AWSResponse:
    """The answer :func:`plain_answer` read the head of: its body read whole (the socket's read timeout
    on each read), the connection back to the pool (or closed, for ``Connection: close``). A body cut
    short or bytes past its end raise (the caller releases the socket)."""
    body = data[start:]
    if len(body) < length:
        parts = [body]
        size = len(body)
        while size < length:
            more = sock.recv(_RESPONSE_BLOCK)
            if not more:
                raise HTTPParseError("connection closed before the end of the body")
            parts.append(more)
            size += len(more)
        body = b"".join(parts)
    if len(body) > length:
        raise HTTPParseError("bytes past the end of the answer")
    http = botocore.awsrequest.AWSResponse(url, status, headers, _READ_OUT)
    http._content = body
    if keep:
        pool.return_socket(sock)
    else:
        pool.release_socket(sock)
    return http


def _await_answer(sock: Any) -> None:
    """Park until the answer starts to arrive, then read it (asyncio's order). Reading first, as a socket's
    recv does, costs a system call that fails with EAGAIN and an exception on every request (for TLS, a
    failed SSL_read), since an answer is never there the moment its request is written. The wait is the
    socket's own read watcher, with the socket's timeout: what ``sock._wait`` does, with a bare libev
    timer where it makes a ``gevent.Timeout`` (an exception object, a timer and five Python calls;
    ~15k instructions a call) and raising what it raises, a TimeoutError, if the timer fires first."""
    kind = type(sock)
    pending = getattr(kind, "pending", None)  # TLS: bytes already decrypted need no wait. Looked up
    if pending is not None and pending(sock):  # on the class: a plain socket's miss would raise inside
        return
    if not issubclass(kind, gevent.socket.socket):  # anything else reads as before
        return
    hub = sock.hub
    timeout = sock.timeout
    if timeout is None:
        hub.wait(sock._read_event)
        return
    timer = hub.loop.timer(timeout)
    timer.start(_time_out, getcurrent(), update=True)  # update: from now, not the loop's last look
    try:
        hub.wait(sock._read_event)
    finally:
        timer.close()


def _time_out(waiting: Any) -> None:
    waiting.throw(TimeoutError("timed out"))


class _SocketRef:
    """``raw._fp.fp.raw._sock``: the path ``StreamingBody.set_socket_timeout`` walks (urllib3's shape)."""

    def __init__(self, response: HTTPSocketPoolResponse):
        self.fp = self.raw = self
        self._response = response

    @property
    def _sock(self) -> Any:
        return self._response._sock


class _Body:
    """The raw stream under ``AWSResponse``/``StreamingBody``: read, readinto, stream, readlines, tell,
    close. Failures surface as botocore's streaming errors, as they do through urllib3."""

    def __init__(self, response: HTTPSocketPoolResponse, url: str):
        self._response = response
        self._url = url
        self._read = 0
        self._fp = _SocketRef(response)

    def read(self, amt: int | None = None) -> bytes:
        try:
            data = self._response.read(amt)
        except TimeoutError as exc:
            raise bex.ReadTimeoutError(endpoint_url=self._url, error=exc) from None
        except (OSError, HTTPParseError) as exc:
            raise bex.ResponseStreamingError(error=exc) from None
        self._read += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def stream(self, amt: int = 2**16, decode_content: bool | None = None) -> Iterator[bytes]:
        del decode_content
        while data := self.read(amt):
            yield data

    def readlines(self) -> list[bytes]:
        return self.read().splitlines(keepends=True)

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._read

    def close(self) -> None:
        self._response.release()  # back to the pool if fully read, else the socket is closed


class _ReadOut:
    """A response with nothing left to read: the raw stream under an answer read whole."""

    _sock = None

    def read(self, amt: int | None = None) -> bytes:
        return b""

    def release(self) -> None:
        pass


_READ_OUT = _Body(_ReadOut(), "")  # type: ignore[arg-type]  # one for every plain answer: it holds nothing
