"""An inventory over many accounts creates each botocore client once, whatever the number of accounts.

Clients are shared across accounts (one per service and region; an account's credentials ride on each
request), and the engine keeps them in an LRU (``max_clients``; ``greenfetch inventory`` sets it to twice
the concurrency). The plan orders the calls so that a client's calls for every account run together:
when one account's (service, region) pairs outnumber the LRU, as they do for ``--types all`` (some
1,300 pairs in 4 regions), a plan that went account by account created every client again for each
account (~3 ms of CPU each).
"""

from __future__ import annotations

from greenfetch import Config, Engine
from greenfetch.inventory import run_inventory
from greenfetch.testing._inventory_pages import inventory_server

ACCOUNTS = ["111111111111", "222222222222", "333333333333", "444444444444"]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1"]
TYPES = ["sqs.queues", "kms.keys", "dynamodb.tables", "logs.log_groups"]


def test_each_client_is_created_once_for_every_account(monkeypatch, tmp_path):
    """4 accounts x 3 regions x 4 services through an LRU of 6 clients: each (service, region)
    client is created once (12, and STS's for the roles), every page fetched."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    with inventory_server(items=1) as server:
        engine = Engine(
            Config.resolve({"endpoint_url": server.url, "region": "us-east-1", "max_clients": 6}, environ={})
        )
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
            )
            created = engine.clients.created
        finally:
            engine.close()
    assert report.summary["records"] == len(ACCOUNTS) * len(REGIONS) * len(TYPES)
    assert all(
        counts == {"ok": len(ACCOUNTS) * len(REGIONS)} for counts in report.summary["statuses"].values()
    )
    pairs = len(REGIONS) * len(TYPES)
    assert pairs <= created <= pairs + 2, created  # + STS (AssumeRole) and its region's identity check
