"""Inventory benchmark: 100 accounts x 16 regions x 10 resource types on the loopback server.

    scripts/bench --only inventory [--quick] [--write]     (or: python scripts/bench_inventory.py [--quick] [--write])

The loopback server (``greenfetch.testing._inventory_pages``) answers AssumeRole, EC2 (query/XML),
Lambda (REST-JSON), DynamoDB, SQS, KMS and SSM (JSON) with realistic pages of 5 records after a 50 ms
latency. Three clients do the same work (100 AssumeRole, then 16,000 list calls) each in its own child
process, which reports wall time, calls/s, resources found and peak RSS:

- greenfetch: ``Inventory`` over the engine (gevent), at two concurrency limits;
- the seed-script way (seed 000): boto3 + ThreadPoolExecutor, a boto3 client created inside each task
  ("clients created within the worker function") from a boto3 Session per account, one retry config;
- tuned threads: the same pool, with one shared boto3 client per (account, region, service).

    scripts/bench --only inventory_cpu [--quick] [--write]     (or: python scripts/bench_inventory.py --cpu ...)

The smaller CPU part (issue 10): 60 accounts x 8 regions x 6 JSON-protocol types, the CPU ``Inventory``
spends per list call next to the raw engine's on the same server and the same (service, region) mix,
each in its own process, both after a warm-up that loads the six service models (not timed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import greenfetch  # noqa: F401  (first: the parent starts LoopbackServer, which imports greenfetch)
from greenfetch.testing import LoopbackServer

SECTION = "inventory"
HANDLER = "greenfetch.testing._inventory_pages:handle"
TYPES = [
    "ec2.instances",
    "ec2.vpcs",
    "ec2.subnets",
    "ec2.security_groups",
    "ec2.volumes",
    "lambda.functions",
    "dynamodb.tables",
    "sqs.queues",
    "kms.keys",
    "ssm.parameters",
]
REGIONS = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "sa-east-1",
]
LATENCY = 0.05
MAX_CLIENTS = 256  # the engine's client LRU: bounds memory; account-major ordering keeps it hot

_GREENFETCH_CHILD = r"""
import json, resource, sys, time
opts = json.loads(sys.argv[1])
t0 = time.perf_counter()
import greenfetch
from greenfetch import Config, Engine
from greenfetch.inventory import accounts_from_list
from greenfetch.inventory._catalog import resolve_types
from greenfetch.inventory._fetch import Inventory
engine = Engine(Config.resolve({"endpoint_url": opts["url"], "region": "us-east-1",
                                "concurrency": opts["concurrency"], "max_clients": opts["max_clients"]}))
accounts = accounts_from_list(opts["accounts"], role="InventoryReader")
inv = Inventory(engine, accounts, resolve_types(opts["types"]), regions=opts["regions"], filter_offered=False,
                concurrency=opts["concurrency"])
resources = errors = 0
for rec in inv.run():
    resources += len(rec["items"])
    errors += rec["status"] != "ok"
wall = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "resources": resources, "errors": errors, "clients": engine.clients.created,
                  "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024}))
"""

_THREADS_CHILD = r"""
import json, resource, sys, threading, time
from concurrent.futures import ThreadPoolExecutor, as_completed
opts = json.loads(sys.argv[1])
t0 = time.perf_counter()
import boto3
from botocore.config import Config
# The catalog the seed scripts hand-write: type -> (service, method, result key path).
CATALOG = {
    "ec2.instances": ("ec2", "describe_instances", ("Reservations", "Instances")),
    "ec2.vpcs": ("ec2", "describe_vpcs", ("Vpcs",)), "ec2.subnets": ("ec2", "describe_subnets", ("Subnets",)),
    "ec2.security_groups": ("ec2", "describe_security_groups", ("SecurityGroups",)),
    "ec2.volumes": ("ec2", "describe_volumes", ("Volumes",)),
    "lambda.functions": ("lambda", "list_functions", ("Functions",)),
    "dynamodb.tables": ("dynamodb", "list_tables", ("TableNames",)),
    "sqs.queues": ("sqs", "list_queues", ("QueueUrls",)), "kms.keys": ("kms", "list_keys", ("Keys",)),
    "ssm.parameters": ("ssm", "describe_parameters", ("Parameters",)),
}
RETRY = Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=opts["concurrency"])
url, shared = opts["url"], opts["mode"] == "tuned"
clients, lock = {}, threading.Lock()

def sessions_for(accounts):
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=url, config=RETRY)
    def one(account):
        c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/InventoryReader",
                            RoleSessionName="bench")["Credentials"]
        return account, boto3.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                                      aws_session_token=c["SessionToken"])
    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(one, accounts))

def client(session, account, service, region):
    if not shared:  # the seed way: a client created inside the worker function
        return session.client(service, region_name=region, endpoint_url=url, config=RETRY)
    key = (account, service, region)
    with lock:
        if key not in clients:
            clients[key] = session.client(service, region_name=region, endpoint_url=url, config=RETRY)
        return clients[key]

def fetch(session, account, region, rtype):
    service, method, path = CATALOG[rtype]
    try:
        c = client(session, account, service, region)
        items = []
        pages = c.get_paginator(method).paginate() if c.can_paginate(method) else [getattr(c, method)()]
        for page in pages:
            found = page.get(path[0], [])
            if len(path) == 2:
                found = [i for r in found for i in r.get(path[1], [])]
            items += found
        return {"resource_type": rtype, "items": items, "error": None}
    except Exception as exc:
        return {"resource_type": rtype, "items": [], "error": str(exc)}

sessions = sessions_for(opts["accounts"])
resources = errors = 0
with ThreadPoolExecutor(opts["concurrency"]) as pool:
    futures = [pool.submit(fetch, sessions[a], a, r, t) for t in opts["types"] for a in opts["accounts"]
               for r in opts["regions"]]
    for future in as_completed(futures):
        out = future.result()
        resources += len(out["items"])
        errors += out["error"] is not None
wall = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "resources": resources, "errors": errors, "clients": len(clients),
                  "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024}))
"""


JSON_TYPES = [
    "dynamodb.tables",
    "sqs.queues",
    "kms.keys",
    "ssm.parameters",
    "secretsmanager.secrets",
    "logs.log_groups",
]

# CPU per list call: "raw" runs the same (service, region) calls through engine.batch_requests under one
# account; "inventory" runs Inventory over every account (AssumeRole, clients, pages, records). Both warm
# the service models first with one call per service, so what is timed is the per-call and per-account cost.
_CPU_CHILD = r"""
import json, resource, sys, time
opts = json.loads(sys.argv[1])
import greenfetch
from greenfetch import Config, Engine
from greenfetch.inventory import accounts_from_list
from greenfetch.inventory._catalog import resolve_types
from greenfetch.inventory._fetch import Inventory

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

engine = Engine(Config.resolve({"endpoint_url": opts["url"], "region": "us-east-1",
                                "concurrency": opts["concurrency"], "max_clients": opts["max_clients"]}))
types = resolve_types(opts["types"])
calls = [{"service": t.service, "operation": t.operation, "params": dict(t.params), "region": r}
         for t in types for r in opts["regions"]]
warm = engine.batch_requests([{**c, "region": "us-east-1"} for c in calls[::len(opts["regions"])]])
assert all(r.ok for r in warm), [r.error for r in warm if not r.ok]
created, cpu0, t0 = engine.clients.created, cpu(), time.perf_counter()
if opts["mode"] == "raw":
    if opts["warm_regions"]:
        engine.batch_requests(calls, opts["concurrency"])
        created, cpu0, t0 = engine.clients.created, cpu(), time.perf_counter()
    batch = calls * len(opts["accounts"])
    results = engine.batch_requests(batch, opts["concurrency"])
    lists, errors, resources = len(batch), sum(not r.ok for r in results), 0
else:
    accounts = accounts_from_list(opts["accounts"], role="InventoryReader")
    inv = Inventory(engine, accounts, types, regions=opts["regions"], filter_offered=False,
                    concurrency=opts["concurrency"])
    lists = resources = errors = 0
    for rec in inv.run():
        lists += 1
        resources += len(rec["items"])
        errors += rec["status"] != "ok"
print(json.dumps({"cpu": cpu() - cpu0, "wall": time.perf_counter() - t0, "lists": lists, "errors": errors,
                  "resources": resources, "clients": engine.clients.created - created,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def child(code: str, opts: dict[str, Any]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GREENFETCH_"))}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(opts)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(quick: bool = False, n_accounts: int | None = None, rows_wanted: list[str] | None = None) -> str:
    accounts = [f"7{n:011d}" for n in range(n_accounts or (10 if quick else 100))]
    regions = REGIONS[:4] if quick else REGIONS
    calls = len(accounts) * len(regions) * len(TYPES)
    plan = [
        ("greenfetch", "greenfetch `Inventory` (gevent)", _GREENFETCH_CHILD, 64),
        ("greenfetch", "greenfetch `Inventory` (gevent)", _GREENFETCH_CHILD, 256),
        ("seed", "boto3 + ThreadPoolExecutor, client per task (seed way)", _THREADS_CHILD, 64),
        ("tuned", "boto3 + ThreadPoolExecutor, shared client per account/region/service", _THREADS_CHILD, 64),
    ]
    plan = [p for p in plan if not rows_wanted or f"{p[0]}:{p[3]}" in rows_wanted or p[0] in rows_wanted]
    os.environ["GREENFETCH_INVENTORY_PAGES"] = json.dumps({"items": 5})
    rows = []
    with LoopbackServer(handler=HANDLER, latency=LATENCY) as url:
        for mode, label, code, concurrency in plan:
            opts = {
                "url": url,
                "accounts": accounts,
                "regions": regions,
                "types": TYPES,
                "concurrency": concurrency,
                "mode": mode,
                "max_clients": MAX_CLIENTS,
            }
            began = time.monotonic()
            m = child(code, opts)
            print(
                f"bench: inventory {mode} c={concurrency} took {time.monotonic() - began:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            rows.append((label, concurrency, m))
    base = next((m["wall"] for label, _, m in rows if "seed way" in label), rows[-1][2]["wall"])
    lines = [
        "## Inventory",
        "",
        f"{len(accounts)} accounts x {len(regions)} regions x {len(TYPES)} resource types = {calls:,} list calls "
        f"(+ {len(accounts)} AssumeRole) on the loopback server (`greenfetch.testing._inventory_pages`: realistic "
        f"EC2 XML, Lambda REST-JSON and JSON pages of 5 records, {LATENCY * 1000:.0f} ms latency). Each client in "
        "its own process; wall time includes imports and credential set-up. Reproduce with "
        "`scripts/bench --only inventory`." + (" **Quick run: numbers meaningless.**" if quick else ""),
        "",
        "| client | concurrency | wall (s) | calls/s | CPU ms per list call | resources | errors | botocore clients "
        f"| peak RSS (MB) | vs {'seed way' if any('seed way' in r[0] for r in rows) else 'last row'} |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, concurrency, m in rows:
        rate = (calls + len(accounts)) / m["wall"]
        clients = m["clients"] if m["clients"] else "one per call"
        lines.append(
            f"| {label} | {concurrency} | {m['wall']:.1f} | {rate:,.0f} | {m['cpu'] / calls * 1000:.2f} | "
            f"{m['resources']:,} | {m['errors']} | {clients} | {m['rss_mb']:.0f} | {base / m['wall']:.2f}x |"
        )
    lines += [
        "",
        "CPU is the whole process's (imports, AssumeRole, client creation, every page); the raw engine's "
        "CPU per list call is in the next section. Measured on a 2-core machine: compare rows of one run.",
    ]
    return "\n".join(lines)


def run_cpu(quick: bool = False) -> str:
    """Inventory CPU per list call next to the raw engine's (issue 10 target: within 1.5x)."""
    accounts = [f"7{n:011d}" for n in range(6 if quick else 60)]
    regions = REGIONS[: 2 if quick else 8]
    concurrency = 64
    os.environ["GREENFETCH_INVENTORY_PAGES"] = json.dumps({"items": 5})
    base = {
        "accounts": accounts,
        "regions": regions,
        "types": JSON_TYPES,
        "concurrency": concurrency,
        "max_clients": MAX_CLIENTS,
    }
    runs = {}
    with LoopbackServer(handler=HANDLER, latency=LATENCY) as url:
        for key, extra in (
            ("raw", {"mode": "raw", "warm_regions": True}),
            ("raw_cold", {"mode": "raw", "warm_regions": False}),
            ("inventory", {"mode": "inventory"}),
        ):
            began = time.monotonic()
            runs[key] = child(_CPU_CHILD, {**base, "url": url, **extra})
            print(
                f"bench: inventory_cpu {key} took {time.monotonic() - began:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    per_call = {k: 1000 * m["cpu"] / max(1, m["lists"]) for k, m in runs.items()}
    ratio = per_call["inventory"] / per_call["raw"]
    labels = {
        "raw": "raw engine: `batch_requests` of the same calls, one account, clients warm",
        "raw_cold": f"raw engine, the same, its clients for the {len(regions)} regions created in the timed window",
        "inventory": f"`Inventory` over {len(accounts)} accounts (AssumeRole + every list)",
    }
    rows = [
        f"| {labels[k]} | {m['lists']:,} | {per_call[k]:.2f} | {per_call[k] / per_call['raw']:.2f}x | "
        f"{m['clients']} | {m['wall']:.1f} | {m['lists'] / m['wall']:,.0f} | {m['errors']} | {m['rss_mb']:.0f} |"
        for k, m in runs.items()
    ]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return "\n".join(
        [
            "### Inventory CPU per list call (issue 10)",
            "",
            f"_Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores (load average "
            f"{load} at the start; shared machine, ±15%)._"
            + (" **Quick run: numbers meaningless.**" if quick else ""),
            "",
            f"{len(accounts)} accounts x {len(regions)} regions x {len(JSON_TYPES)} JSON-protocol types "
            f"({', '.join(JSON_TYPES)}) = {len(accounts) * len(regions) * len(JSON_TYPES):,} list calls on the "
            f"inventory loopback server (pages of 5 records, {LATENCY * 1000:.0f} ms latency), concurrency "
            f"{concurrency}, one process each. CPU is the process's user+system time over the timed window, after "
            "a warm-up call per service (model loading not timed); for `Inventory` the window includes its "
            f"{len(accounts)} AssumeRole calls and every client it creates. Reproduce with "
            "`scripts/bench --only inventory_cpu`.",
            "",
            "| run | list calls | CPU ms per list call | vs raw engine | botocore clients created | wall s | "
            "calls/s | errors | peak RSS MB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"- `Inventory` / raw engine CPU per list call: **{ratio:.2f}x** (issue 10 target ≤ 1.5x: "
            f"{'met' if ratio <= 1.5 else '**missed**'}); before issue 10 it was 6.5x (8.1 ms against 1.24 ms).",
        ]
    )


SECTIONS = {"inventory_cpu": run_cpu}  # scripts/bench runs it as its own section


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--write", action="store_true", help="write the table into docs/performance.md")
    parser.add_argument("--accounts", type=int, help="number of accounts (default 100, 10 with --quick)")
    parser.add_argument("--rows", help="comma list of rows: greenfetch, greenfetch:64, seed, tuned")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="the CPU part instead: 60 accounts x 8 regions x 6 JSON types vs the raw engine",
    )
    args = parser.parse_args()
    if args.cpu:
        markdown = run_cpu(args.quick)
    else:
        markdown = run(args.quick, args.accounts, args.rows.split(",") if args.rows else None)
    print(markdown)
    if args.write:
        sys.path.insert(0, str(Path(__file__).parent))
        from bench import write_section

        write_section("inventory_cpu" if args.cpu else SECTION, markdown)  # (the SECTIONS name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
