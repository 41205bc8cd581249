"""Shared fixtures. greenfetch is imported first so gevent patches before anything imports ssl."""

import greenfetch  # noqa: F401  (must come first: see greenfetch/_patch.py)

import os

import pytest

from greenfetch.testing import MotoServer

_AWS_VARS = [k for k in os.environ if k.startswith(("AWS_", "GREENFETCH_"))]


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch, tmp_path_factory):
    """No test ever sees real credentials, a real profile or the user's ~/.aws."""
    for name in _AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.getbasetemp() / "aws-home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def moto_server():
    """moto's server over real HTTP for the whole session: use ``moto.url``; reset via ``moto.reset()``."""
    server = MotoServer()
    server.start()
    yield server
    server.stop()
