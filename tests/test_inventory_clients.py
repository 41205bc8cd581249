"""An inventory over many accounts makes each botocore client once and reuses its connections.

Clients are shared across accounts (one per service and region; an account's credentials ride on each
request), and the engine keeps them in an LRU (``max_clients``; ``greenfetch inventory`` sets it to twice
the concurrency). The plan cuts its (region, type) pairs into windows of at most half the LRU's clients
and runs each window account by account (``Plan.units``):
- planned account by account over every pair, a client stayed hot only while one account's pairs fitted
  the LRU, and ``--types all`` has ~1,300 in 4 regions: every account made every client again (~3 ms of
  CPU each);
- planned region, then type, then account, each client was made once, but every account's call of it
  ran at once: a connection each (against AWS, a TLS handshake each), used once.
"""

from __future__ import annotations

import pytest

from greenfetch import Config, Engine
from greenfetch.inventory import run_inventory
from greenfetch.testing._inventory_pages import inventory_server

ACCOUNTS = ["111111111111", "222222222222", "333333333333", "444444444444"]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1"]
TYPES = ["sqs.queues", "kms.keys", "dynamodb.tables", "logs.log_groups"]


@pytest.fixture(scope="module")
def pages():
    with inventory_server(items=1) as server:
        yield server


def _run(pages, tmp_path, monkeypatch, **config):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    engine = Engine(Config.resolve({"endpoint_url": pages.url, "region": "us-east-1", **config}, environ={}))
    pages.reset_stats()
    try:
        report = run_inventory(
            engine,
            accounts=",".join(ACCOUNTS),
            role_name="InventoryReader",
            regions=",".join(REGIONS),
            types=",".join(TYPES),
            out=str(tmp_path / "out"),
            cache_ttl=0,
            cache_dir=str(tmp_path / "cache"),
            concurrency=config.get("concurrency"),
        )
        created = engine.clients.created
    finally:
        engine.close()
    assert report.summary["records"] == len(ACCOUNTS) * len(REGIONS) * len(TYPES)
    assert all(
        counts == {"ok": len(ACCOUNTS) * len(REGIONS)} for counts in report.summary["statuses"].values()
    )
    return created, pages.stats()["connections"]


def test_each_client_is_made_once_for_every_account(pages, tmp_path, monkeypatch):
    """4 accounts x 3 regions x 4 services through an LRU of 6 clients: each (service, region)
    client is made once (12, and STS's for the roles)."""
    created, _ = _run(pages, tmp_path, monkeypatch, max_clients=6)
    pairs = len(REGIONS) * len(TYPES)
    assert pairs <= created <= pairs + 2, created  # + STS (AssumeRole) and its region's identity check


def test_a_clients_connections_serve_every_account(pages, tmp_path, monkeypatch):
    """3 calls in flight, 12 clients, 4 accounts each: the calls in flight are spread over a window's
    clients, so each client's connection is reused from account to account, not one opened for each
    account's call (48)."""
    created, connections = _run(pages, tmp_path, monkeypatch, max_clients=6, concurrency=3)
    assert connections <= 2 * created, (created, connections)
