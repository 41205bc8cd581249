"""``greenfetch drs-sync``: the cross-account DRS inventory sync (docs/drs-sync.md) from a shell.

A thin face over ``greenfetch.drs.sync_source_server_inventory``: flags become ``SyncOptions``, the
response (the same one the Lambda handler returns) goes to stdout as JSON.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ._app import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliState, fail_usage, main, pass_state
from ._output import write_json
from ._signals import exit_code

__all__ = ["drs_sync"]


@main.command("drs-sync")
@click.option(
    "--targets-table",
    required=True,
    help="DynamoDB table of target accounts (accountId, accountName, roleName).",
)
@click.option(
    "--inventory-table",
    required=True,
    help="DynamoDB table the inventory is written to (partition key sourceServerID).",
)
@click.option("--role-name", help="Role assumed in each account (a roleName in the targets table wins).")
@click.option(
    "--regions",
    default="active",
    show_default=True,
    help="'active' (every DRS region the status store does not rule out) or a comma list.",
)
@click.option("--external-id", help="ExternalId for AssumeRole, if the roles require one.")
@click.option("--status-file", type=click.Path(dir_okay=False), help="Region status store as a JSON file.")
@click.option("--status-table", help="Region status store as a DynamoDB table (scope, region).")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), help="Calls in flight at once.")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Also write everything (response, records, DynamoDB items, region statuses) as JSON here.",
)
@pass_state
def drs_sync(
    state: CliState,
    targets_table: str,
    inventory_table: str,
    role_name: str | None,
    regions: str,
    external_id: str | None,
    status_file: str | None,
    status_table: str | None,
    concurrency: int | None,
    out_path: str | None,
) -> None:
    """Sync DRS source servers of every target account and region, enriched from EC2, into DynamoDB.

    Exit 0 when everything synced, 1 when some accounts or regions failed (the rest is written),
    2 when the sync could not run (bad flags, unreadable targets table)."""
    from ..drs import SyncInterrupted, SyncOptions, client_budget, parse_regions, sync_source_server_inventory
    from ..inventory import InventoryError, RegionStatusStore

    if status_file and status_table:
        fail_usage("--status-file and --status-table both given; choose one region status store")
    try:
        region_spec = parse_regions(regions)
    except InventoryError as exc:
        fail_usage(f"--regions: {exc}")
    engine = state.engine(
        concurrency=concurrency, max_clients=client_budget(concurrency or state.config().concurrency)
    )
    store = (
        RegionStatusStore(status_file)
        if status_file
        else (RegionStatusStore(engine=engine, table=status_table) if status_table else None)
    )
    options = SyncOptions(
        targets_table=targets_table,
        inventory_table=inventory_table,
        role_name=role_name,
        regions=region_spec,
        external_id=external_id,
        concurrency=concurrency,
    )
    try:
        result = sync_source_server_inventory(engine, options, store=store)
    except SyncInterrupted as exc:  # Ctrl-C, SIGTERM, SIGHUP: write what completed, exit 128 + signal
        _write(exc.result, out_path)
        click.echo(f"drs-sync: {exc}", err=True)
        sys.exit(exit_code(exc))
    _write(result, out_path)
    code = result.response["statusCode"]
    for error in result.response["errors"]:
        where = "/".join(str(p) for p in (error["account"], error["region"]) if p)
        click.echo(
            f"{where or 'sync'}: {error['message']}"
            + (f" ({error['guidance']})" if error["guidance"] else ""),
            err=True,
        )
    sys.exit(EXIT_OK if code == 200 else EXIT_FAILED if code == 207 else EXIT_USAGE)


def _write(result: Any, out_path: str | None) -> None:
    """The response to stdout; with ``--out``, everything behind it (a stopped sync: what completed)."""
    click.echo(json.dumps(result.response, indent=2, sort_keys=True))
    if out_path:
        write_json(
            out_path,
            {
                "response": result.response,
                "records": result.records,
                "items": result.items,
                "statuses": [o.status_record() for o in result.outcomes],
            },
        )
