"""Cross-account AWS Elastic Disaster Recovery (DRS) inventory sync, built on greenfetch.

The scheduled job of seeds 001/002 as a pipeline of small steps (``_steps``) and one orchestrator
(``sync_source_server_inventory``): target accounts from DynamoDB, a role assumed in each, DRS
``DescribeSourceServers`` in every active region at once, each server enriched from its EC2
instance in its own account, the inventory written to DynamoDB. ``GREENFETCH_ENGINE=threads`` runs
the same pipeline on threads. See docs/drs-sync.md.
"""

from ._pipeline import (
    SyncInterrupted,
    SyncOptions,
    SyncResult,
    build_response,
    client_budget,
    parse_regions,
    resolve_regions,
    sync_source_server_inventory,
)
from ._records import RegionOutcome, enrich_server, instance_summary, region_outcome, to_dynamodb_item
from ._steps import (
    account_credentials,
    collect_accounts,
    enrich_servers,
    query_all_regions,
    query_ec2_instances,
    query_region,
    write_inventory,
)

__all__ = [
    "RegionOutcome",
    "SyncInterrupted",
    "SyncOptions",
    "SyncResult",
    "account_credentials",
    "build_response",
    "client_budget",
    "collect_accounts",
    "enrich_server",
    "enrich_servers",
    "instance_summary",
    "parse_regions",
    "query_all_regions",
    "query_ec2_instances",
    "query_region",
    "region_outcome",
    "resolve_regions",
    "sync_source_server_inventory",
    "to_dynamodb_item",
    "write_inventory",
]
