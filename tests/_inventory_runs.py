"""A small inventory run the cost tests repeat with and without a cut: 2 accounts x 2 regions x 2 types
(8 pages) on the inventory loopback server, every page fetched afresh and cached."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def small_run(url: str, out: Path, cache_dir: Path) -> Any:
    """``run_inventory`` into ``out`` (json files) with its cache in ``cache_dir``; its report."""
    from greenfetch import Config, Engine
    from greenfetch.inventory import run_inventory

    engine = Engine(Config.resolve({"endpoint_url": url, "region": "us-east-1"}, environ={}))
    try:
        return run_inventory(
            engine,
            accounts="111111111111,222222222222",
            role_name="InventoryReader",
            regions="us-east-1,eu-west-1",
            types="ssm.parameters,kms.keys",
            out=str(out),
            cache_ttl=0,
            cache_dir=str(cache_dir),
        )
    finally:
        engine.close()
