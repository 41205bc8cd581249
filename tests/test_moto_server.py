"""greenfetch.testing.MotoServer: a port it picked and lost before moto bound it (another process took
it: seven test lanes start servers at once) is picked again, not a failed session."""

from __future__ import annotations

import socket
import urllib.request

from greenfetch.testing import _moto


def test_a_picked_port_taken_before_moto_binds_it_is_picked_again(monkeypatch):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)  # another process's server: moto cannot bind here
    ports = [taken.getsockname()[1]]
    real = _moto.free_port
    monkeypatch.setattr(_moto, "free_port", lambda: ports.pop(0) if ports else real())
    try:
        with _moto.MotoServer() as url:
            assert url != f"http://127.0.0.1:{taken.getsockname()[1]}"
            urllib.request.urlopen(f"{url}/moto-api/", timeout=5).close()
    finally:
        taken.close()


def test_a_port_the_caller_gave_is_not_changed(monkeypatch):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        server = _moto.MotoServer(port=taken.getsockname()[1], startup_timeout=20)
        try:
            server.start()
        except RuntimeError as exc:
            assert "exited" in str(exc) and str(taken.getsockname()[1]) in str(exc)
        else:
            raise AssertionError("moto started on a port another socket holds")
        finally:
            server.stop()
    finally:
        taken.close()
