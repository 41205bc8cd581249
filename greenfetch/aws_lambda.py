"""AWS Lambda entry point: ``greenfetch.aws_lambda.handler``.

The event names an action; options come from the event (top level or ``detail``, camelCase or
snake_case), then from environment variables, so one deployment serves scheduled rules with
different inputs:

    {"action": "sync_source_server_inventory", "targetsTable": "...", "inventoryTable": "...",
     "roleName": "...", "regions": "active" | ["us-east-1", ...], "externalId": ..., "statusTable": ...}
        environment fallbacks: GREENFETCH_DRS_TARGETS_TABLE, GREENFETCH_DRS_INVENTORY_TABLE,
        GREENFETCH_DRS_ROLE_NAME, GREENFETCH_DRS_REGIONS, GREENFETCH_DRS_STATUS_TABLE
    {"action": "inventory", "accounts": "org" | "dynamodb:TABLE" | [ids], "roleName": ...,
     "regions": "enabled" | "active" | [...], "types": "core" | "all" | [...], "excludeTypes": ..., "dynamodbTable": ...,
     "s3Uri": ..., "excludeRegions": ..., "statusStore": ...}    (greenfetch.inventory.run_inventory)

Responses are plain dicts with a ``statusCode`` (200 all good, 207 partial, 400 bad event, 500 the
run could not happen); the DRS response is documented in ``greenfetch.drs._pipeline``. The engine
(clients, connection pools) is built once per container and reused by warm invocations; its
config is ``Config.resolve()``, which applies ``Config.lambda_profile()`` inside Lambda (/tmp cache
dir, wider fan-out) and honours ``GREENFETCH_ENGINE``, so switching to the threads engine is an
environment change, not a deploy.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from . import Engine, default_engine
from ._config import Config, ConfigError, check_whole
from .drs import client_budget

__all__ = ["handler"]

log = logging.getLogger("greenfetch.aws_lambda")


def engine() -> Engine:
    """The process-wide default engine, made with the Lambda profile on the first invocation and
    reused while the container is warm."""
    return default_engine(_lambda_config)


def _lambda_config() -> Config:
    environ = dict(os.environ)
    environ.setdefault("AWS_LAMBDA_FUNCTION_NAME", "greenfetch")  # the Lambda profile, also when run locally
    config = Config.resolve(environ=environ)
    # each sync or inventory uses a client per (service, account, region) once: keep few (docs/drs-sync.md)
    return config.replace(max_clients=client_budget(config.concurrency))


class _Options:
    """Event option lookup: ``detail`` over the top level, camelCase or snake_case, then environment."""

    def __init__(self, event: Mapping[str, Any]):
        detail = event.get("detail")
        self.values = {**event, **(detail if isinstance(detail, Mapping) else {})}

    def get(self, camel: str, env: str | None = None, default: Any = None) -> Any:
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
        for key in (camel, snake):
            if self.values.get(key) not in (None, ""):
                return self.values[key]
        return os.environ.get(env) or default if env else default


def _bad_event(message: str) -> dict[str, Any]:
    return {"statusCode": 400, "errors": [{"code": "BadEvent", "message": message}]}


def _positive(value: Any) -> int | None:
    """A concurrency from an event (number or numeric string); ConfigError naming it otherwise."""
    if value is None:
        return None
    return check_whole(
        "concurrency", int(value) if isinstance(value, str) and value.strip().isdigit() else value
    )


def sync_source_server_inventory(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """The DRS inventory sync (greenfetch.drs) with options from the event and environment."""
    from .drs import SyncOptions, parse_regions
    from .drs import sync_source_server_inventory as sync
    from .inventory import InventoryError, RegionStatusStore

    opts = _Options(event)
    targets = opts.get("targetsTable", "GREENFETCH_DRS_TARGETS_TABLE")
    inventory = opts.get("inventoryTable", "GREENFETCH_DRS_INVENTORY_TABLE")
    if not targets or not inventory:
        return _bad_event(
            "targetsTable and inventoryTable are required (in the event or as "
            "GREENFETCH_DRS_TARGETS_TABLE / GREENFETCH_DRS_INVENTORY_TABLE)"
        )
    try:
        regions = parse_regions(opts.get("regions", "GREENFETCH_DRS_REGIONS", "active"))
    except InventoryError as exc:
        return _bad_event(str(exc))
    run_engine = engine()
    status_table = opts.get("statusTable", "GREENFETCH_DRS_STATUS_TABLE")
    store = RegionStatusStore(engine=run_engine, table=status_table) if status_table else None
    options = SyncOptions(
        targets_table=targets,
        inventory_table=inventory,
        role_name=opts.get("roleName", "GREENFETCH_DRS_ROLE_NAME"),
        regions=regions,
        external_id=opts.get("externalId"),
        concurrency=_positive(opts.get("concurrency")),
    )
    response = sync(run_engine, options, store=store).response
    log.info("drs sync: status %s, totals %s", response["statusCode"], response["totals"])
    for error in response["errors"]:
        log.warning(
            "drs sync: %s/%s %s: %s", error["account"], error["region"], error["code"], error["message"]
        )
    return response


def _comma(value: Any) -> str | None:
    """An event list or string as the comma list the inventory API takes."""
    if value is None or isinstance(value, str):
        return value
    return ",".join(str(v) for v in value)


def inventory(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """The generic multi-account inventory (``greenfetch.inventory.run_inventory``, what
    ``greenfetch inventory`` runs): counts and failures in the response, files only under /tmp."""
    from .inventory import InventoryError, run_inventory

    opts = _Options(event)
    run_engine = engine()
    s3_uri = opts.get("s3Uri")
    try:
        report = run_inventory(
            run_engine,
            accounts=_comma(opts.get("accounts")),
            role_name=opts.get("roleName"),
            external_id=opts.get("externalId"),
            regions=_comma(opts.get("regions", default="enabled")) or "enabled",
            exclude_regions=_comma(opts.get("excludeRegions")),
            types=_comma(opts.get("types", default="core")) or "core",
            exclude_types=_comma(opts.get("excludeTypes")),
            dynamodb_table=opts.get("dynamodbTable"),
            s3_uri=s3_uri,
            status_store=opts.get("statusStore"),
            out=os.path.join(run_engine.config.cache_dir, "inventory-out") if s3_uri else None,
            concurrency=_positive(opts.get("concurrency")),
            dead_letter_path=os.path.join(run_engine.config.cache_dir, "inventory-dead-letter.jsonl"),
        )
    except InventoryError as exc:
        return _bad_event(str(exc))
    errors = [
        {"account": account, "code": "AssumeRoleFailed", "message": message}
        for account, message in report.summary["accounts_failed"].items()
    ]
    errors += [{"code": "S3UploadFailed", "message": message} for message in report.s3_errors]
    written = (
        {
            "written": report.dynamodb.written,
            "failed": report.dynamodb.failed,
            "deadLetterPath": report.dynamodb.dead_letter_path,
        }
        if report.dynamodb
        else None
    )
    return {
        "statusCode": 207 if report.failed else 200,
        "engine": run_engine.config.backend,
        "summary": report.summary,
        "dynamodb": written,
        "errors": errors,
    }


ACTIONS: dict[str, Callable[[Mapping[str, Any], Any], dict[str, Any]]] = {
    "sync_source_server_inventory": sync_source_server_inventory,
    "inventory": inventory,
}


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Lambda entry point: route ``event["action"]``; never raises for a bad event or AWS trouble."""
    if not isinstance(event, Mapping):
        return _bad_event(f"the event must be a JSON object with an 'action', not {type(event).__name__}")
    action = event.get("action") or (event.get("detail") or {}).get("action")
    run = ACTIONS.get(str(action))
    if run is None:
        return _bad_event(f"unknown action {action!r}; valid actions: {', '.join(ACTIONS)}")
    try:
        return run(event, context)
    except ConfigError as exc:
        return _bad_event(str(exc))
    except Exception as exc:  # noqa: BLE001 - the scheduler gets a response it can log, with the reason
        log.exception("greenfetch %s failed", action)
        return {"statusCode": 500, "errors": [{"code": type(exc).__name__, "message": str(exc)}]}
