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

The smaller CPU part (issues 10, 24): 60 accounts x 8 regions x 6 JSON-protocol types, the CPU per list
call of ``Inventory`` in-process and of the ``greenfetch inventory`` command (its process, spawn to exit,
minus a measured start-up: the same command over one account) next to the raw engine's on the same server
and the same (service, region) mix, each in its own process, in interleaved rounds.

    scripts/bench --only inventory_instructions [--quick] [--write]   (or: ... --instructions; callgrind)

The same rows counted in instructions, which the machine's load does not move.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
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
window = None
if opts.get("scripts"):  # counted under callgrind: the timed part is the only instrumented stretch
    sys.path.insert(0, opts["scripts"])
    from percall import _Window
    window = _Window("window").__enter__()
created, cpu0, t0 = engine.clients.created, cpu(), time.perf_counter()
if opts["mode"] == "raw":
    if opts["warm_regions"]:
        if window is not None:
            window.__exit__()  # the region warm-up is not counted
        engine.batch_requests(calls, opts["concurrency"])
        if window is not None:
            window.__enter__()
        created, cpu0, t0 = engine.clients.created, cpu(), time.perf_counter()
    batch = calls * len(opts["accounts"])
    results = engine.batch_requests(batch, opts["concurrency"])
    lists, errors, resources = len(batch), sum(not r.ok for r in results), 0
elif opts["mode"] == "raw_accounts":  # the same calls, each account's as its assumed role (assumed before)
    from greenfetch import Request
    from greenfetch.inventory._credentials import AccountCredentials
    if window is not None:
        window.__exit__()
    accounts = accounts_from_list(opts["accounts"], role="InventoryReader")
    assumed = AccountCredentials(engine)
    creds = assumed.prefetch(accounts)
    batch = [Request.built(c["service"], c["operation"], c["params"], region=c["region"],
                           account=a.account_id, role=assumed.status(a).role_arn,
                           credentials=creds[a.account_id]) for a in accounts for c in calls]
    engine.batch_requests(batch[:len(calls)], opts["concurrency"])  # the regions' clients, warm
    if window is not None:
        window.__enter__()
    created, cpu0, t0 = engine.clients.created, cpu(), time.perf_counter()
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
if window is not None:
    window.__exit__()
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


CLI_ROLE = "InventoryReader"


def _cli_command(url: str, out: str, accounts: list[str], regions: list[str], concurrency: int) -> list[str]:
    """``greenfetch inventory`` as a user runs it: files into ``--out`` (json, one per type), every page
    written to the cache (``--cache-ttl 0``: fetched afresh, cached all the same), no progress line."""
    return [
        sys.executable,
        "-m",
        "greenfetch.cli",
        "--endpoint-url",
        url,
        "--region",
        "us-east-1",
        "inventory",
        "--accounts",
        ",".join(accounts),
        "--role-name",
        CLI_ROLE,
        "--regions",
        ",".join(regions),
        "--types",
        ",".join(JSON_TYPES),
        "--out",
        out,
        "--cache-ttl",
        "0",
        "--no-progress",
        "-c",
        str(concurrency),
    ]


def _cli_env(tmp: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GREENFETCH_"))}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        GREENFETCH_CACHE_DIR=os.path.join(tmp, "cache"),
    )
    return env


def _cli_run(url: str, tmp: str, accounts: list[str], regions: list[str], concurrency: int) -> dict[str, Any]:
    """One ``greenfetch inventory`` process, spawn to exit: its CPU (user + system, from the kernel's
    accounting of the reaped child: what /proc/PID/stat said at its exit) and wall time."""
    out = tempfile.mkdtemp(dir=tmp, prefix="out-")
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(
        _cli_command(url, out, accounts, regions, concurrency),
        env=_cli_env(tmp),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"greenfetch inventory exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    records = sum(len(json.loads(Path(out, f).read_text())) for f in os.listdir(out))
    cpu = (after.ru_utime - kids.ru_utime) + (after.ru_stime - kids.ru_stime)
    return {"cpu": cpu, "wall": wall, "lists": records, "rss_mb": after.ru_maxrss / 1024}


def run_cpu(quick: bool = False, rounds: int | None = None) -> str:
    """Inventory CPU per list call next to the raw engine's (issue 24 target: within 1.2x), for
    ``Inventory`` in-process and for the ``greenfetch inventory`` command a user runs."""
    accounts = [f"7{n:011d}" for n in range(6 if quick else 60)]
    regions = REGIONS[: 2 if quick else 8]
    concurrency = 64
    rounds = rounds or (1 if quick else 3)
    os.environ["GREENFETCH_INVENTORY_PAGES"] = json.dumps({"items": 5})
    base = {
        "accounts": accounts,
        "regions": regions,
        "types": JSON_TYPES,
        "concurrency": concurrency,
        "max_clients": MAX_CLIENTS,
    }
    runs: dict[str, list[dict[str, Any]]] = {}
    load_before = os.getloadavg()
    with (
        LoopbackServer(handler=HANDLER, latency=LATENCY) as url,
        tempfile.TemporaryDirectory(prefix="greenfetch-bench-invcpu-") as tmp,
    ):
        for n in range(rounds):  # interleaved rounds: a load spike hits one round of every row
            for key, extra in (
                ("raw", {"mode": "raw", "warm_regions": True}),
                ("raw_cold", {"mode": "raw", "warm_regions": False}),
                ("raw_accounts", {"mode": "raw_accounts"}),
                ("inventory", {"mode": "inventory"}),
            ):
                runs.setdefault(key, []).append(child(_CPU_CHILD, {**base, "url": url, **extra}))
            whole = _cli_run(url, tmp, accounts, regions, concurrency)
            start = _cli_run(url, tmp, accounts[:1], regions, concurrency)  # the start-up, measured
            runs.setdefault("cli", []).append(
                {
                    "cpu": whole["cpu"] - start["cpu"],
                    "lists": whole["lists"] - start["lists"],
                    "wall": whole["wall"] - start["wall"],
                    "rss_mb": whole["rss_mb"],
                    "errors": 0,
                    "clients": "-",
                    "whole_cpu": whole["cpu"],
                    "whole_lists": whole["lists"],
                    "start_cpu": start["cpu"],
                }
            )
            print(f"bench: inventory_cpu round {n + 1} of {rounds} done", file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    per_call = {k: _median([1000 * m["cpu"] / max(1, m["lists"]) for m in ms]) for k, ms in runs.items()}
    ratio = per_call["inventory"] / per_call["raw"]
    cli_ratio = per_call["cli"] / per_call["raw"]
    cli_accounts = per_call["cli"] / per_call["raw_accounts"]
    labels = {
        "raw": "raw engine: `batch_requests` of the same calls, one account, clients warm",
        "raw_cold": f"raw engine, the same, its clients for the {len(regions)} regions created in the timed window",
        "raw_accounts": f"raw engine, the same calls for each of the {len(accounts)} accounts as its assumed role "
        "(assumed before the window: each account's secret and session token, clients warm)",
        "inventory": f"`Inventory` in-process over {len(accounts)} accounts (AssumeRole + every list)",
        "cli": f"`greenfetch inventory --out DIR` over {len(accounts)} accounts, its start-up taken out",
    }
    rows = []
    for k, ms in runs.items():
        m = ms[-1]
        rounds_text = " / ".join(f"{1000 * r['cpu'] / max(1, r['lists']):.2f}" for r in ms)
        rows.append(
            f"| {labels[k]} | {m['lists']:,} | **{per_call[k]:.2f}** | {rounds_text} | "
            f"{per_call[k] / per_call['raw']:.2f}x | {m['clients']} | {m['wall']:.1f} | {m['errors']} | "
            f"{m['rss_mb']:.0f} |"
        )
    cli = runs["cli"][-1]
    load = ", ".join(f"{x:.2f}" for x in load_before)
    load_end = ", ".join(f"{x:.2f}" for x in load_after)
    return "\n".join(
        [
            "### Inventory CPU per list call (issues 10, 24)",
            "",
            f"_Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores, "
            f"{rounds} interleaved round(s); load average {load} before, {load_end} after (a shared machine "
            "moves CPU per call by ±15%; the next section counts instructions instead)._"
            + (" **Quick run: numbers meaningless.**" if quick else ""),
            "",
            f"{len(accounts)} accounts x {len(regions)} regions x {len(JSON_TYPES)} JSON-protocol types "
            f"({', '.join(JSON_TYPES)}) = {len(accounts) * len(regions) * len(JSON_TYPES):,} list calls on the "
            f"inventory loopback server (pages of 5 records, {LATENCY * 1000:.0f} ms latency), concurrency "
            f"{concurrency}, one process each; the server's AssumeRole gives each account a secret and a "
            "session token of its own, of an AWS token's length, as AWS does. CPU is user + system time. The "
            "raw engine and `Inventory` rows "
            "time a window inside their process, after a warm-up call per service (model loading not "
            f"timed); `Inventory`'s window includes its {len(accounts)} AssumeRole calls and every client it "
            "creates. The command's row is what a user runs: the `greenfetch inventory` process from spawn "
            "to exit (json files into `--out`, every page into the cache, records, summary), minus a "
            f"measured start-up: the same command over 1 account ({len(regions) * len(JSON_TYPES)} list "
            "calls: imports, catalog, models, a client per service and region), divided by the list calls "
            "between the two. Reproduce with `scripts/bench --only inventory_cpu`.",
            "",
            "| run | list calls | CPU ms per list call (median) | rounds | vs raw engine | botocore clients "
            "created | wall s | errors | peak RSS MB |",
            "|---|---:|---:|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"- The command / raw engine CPU per list call: **{cli_ratio:.2f}x** (issue 24 target ≤ 1.2x: "
            f"{'met' if cli_ratio <= 1.2 else '**missed**'}); `Inventory` in-process / raw engine: "
            f"**{ratio:.2f}x**.",
            f"- The command / the raw engine on the same calls as each account's role: **{cli_accounts:.2f}x**: "
            "what the inventory adds to calling AWS as those accounts (each account's secret makes a signing "
            "key per account, region and service, and its session token is signed in every call: the "
            "raw engine pays those too when it calls as many accounts).",
            f"- The command whole (last round): {cli['whole_cpu']:.2f} s CPU for {cli['whole_lists']:,} list "
            f"calls, of which the measured start-up {cli['start_cpu']:.2f} s.",
        ]
    )


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# Under callgrind a process runs some 50 times slower than natively while the wall clock does not, so
# what greenfetch decides by the clock happens in a counted run where a native one's never would: an
# inventory's one-call scope answered more than a limiter window (1 s) after its limiter was made makes the
# controller a native run never makes (~50-75k instructions each; 0 of 960 scopes natively, 365-739 under
# callgrind, more the busier the machine), and the cache file's 0.5 s transaction bound cuts more
# transactions. A counted process therefore reads ``time.monotonic`` (the clock those decisions read)
# slowed by this factor, set before greenfetch is imported; wall times, signing and records read other
# clocks. Counts with 50 and with 100 agree within 0.1%: nothing the runs decide lies between the two.
CLOCK_SLOWDOWN = 50

SLOW_CLOCK = f"""
import time as _time
_native, _start = _time.monotonic, _time.monotonic()
_time.monotonic = lambda: _start + (_native() - _start) / {CLOCK_SLOWDOWN}
del _time
"""


def counted(command: list[str]) -> list[str]:
    """``python -m greenfetch.cli ARGS`` (``_cli_command``) as a counted run makes it: the same command
    with ``SLOW_CLOCK`` first."""
    python, flag, module, *args = command
    assert (flag, module) == ("-m", "greenfetch.cli"), command
    run = (
        SLOW_CLOCK + "import runpy\nrunpy.run_module('greenfetch.cli', run_name='__main__', alter_sys=True)\n"
    )
    return [python, "-c", run, *args]


def _valgrind(tmp: str, name: str, *, window: bool) -> list[str]:
    return [
        "valgrind",
        "--tool=callgrind",
        "-q",
        *(["--instr-atstart=no"] if window else []),
        f"--callgrind-out-file={tmp}/callgrind.{name}",
    ]


def _counted(tmp: str, name: str) -> int:
    """Instructions in the run's dumps: the window's (the last dump) or the whole process's."""
    from percall import _callgrind_total

    found = sorted(Path(tmp).glob(f"callgrind.{name}*"), key=lambda p: (len(p.name), p.name))
    return _callgrind_total(str(found[-1]))


def count_command(
    tmp: str, tag: str, command: list[str], out_dir: str, env: dict[str, str]
) -> tuple[int, int]:
    """(instructions, list calls) of one ``greenfetch inventory`` process counted whole under callgrind,
    its clock slowed as callgrind slows it (``counted``): its list calls are the records of the json files
    it wrote into ``out_dir``, where it runs (not the caller's directory: ``python -c`` puts the working
    directory before PYTHONPATH)."""
    done = subprocess.run(
        [*_valgrind(tmp, tag, window=False), *counted(command)],
        env=env,
        cwd=out_dir,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"greenfetch inventory exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    lists = sum(len(json.loads(Path(out_dir, f).read_text())) for f in os.listdir(out_dir))
    return _counted(tmp, tag), lists


def run_instructions(quick: bool = False) -> str:
    """The inventory CPU rows counted in instructions (callgrind): the figure to A/B on a loaded machine.
    Fewer accounts than the CPU part (instructions per call barely move with the count); minutes."""
    if not shutil.which("valgrind"):
        raise RuntimeError("valgrind is not installed (apt-get install valgrind)")
    accounts = [f"7{n:011d}" for n in range(3 if quick else 20)]
    regions = REGIONS[: 2 if quick else 8]
    concurrency = 64
    scripts = str(Path(__file__).resolve().parent)
    sys.path.insert(0, scripts)
    os.environ["GREENFETCH_INVENTORY_PAGES"] = json.dumps({"items": 5})
    counts: dict[str, tuple[int, int]] = {}  # row -> (instructions, list calls)
    with (
        LoopbackServer(handler=HANDLER, latency=LATENCY) as url,
        tempfile.TemporaryDirectory(prefix="greenfetch-bench-invir-") as tmp,
    ):
        opts = {
            "accounts": accounts,
            "regions": regions,
            "types": JSON_TYPES,
            "concurrency": concurrency,
            "max_clients": MAX_CLIENTS,
            "url": url,
            "scripts": scripts,
        }
        env = {**_cli_env(tmp), "PERCALL_CALLGRIND": "1"}
        for key, extra in (
            ("raw", {"mode": "raw", "warm_regions": True}),
            ("raw_accounts", {"mode": "raw_accounts"}),
            ("inventory", {"mode": "inventory"}),
        ):
            out = subprocess.run(
                [
                    *_valgrind(tmp, key, window=True),
                    sys.executable,
                    "-c",
                    SLOW_CLOCK + _CPU_CHILD,
                    json.dumps({**opts, **extra}),
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=3600,
                check=False,
            )
            if out.returncode != 0:
                raise RuntimeError(f"benchmark child failed: {out.stderr[-2000:]}")
            counts[key] = (_counted(tmp, key), json.loads(out.stdout.strip().splitlines()[-1])["lists"])
            print(f"bench: inventory_instructions {key} counted", file=sys.stderr, flush=True)
        whole: dict[str, tuple[int, int]] = {}
        for key, who in (("whole", accounts), ("start", accounts[:1])):
            out_dir = tempfile.mkdtemp(dir=tmp, prefix="out-")
            command = _cli_command(url, out_dir, who, regions, concurrency)
            whole[key] = count_command(tmp, key, command, out_dir, _cli_env(tmp))
            print(
                f"bench: inventory_instructions command ({len(who)} accounts) counted",
                file=sys.stderr,
                flush=True,
            )
        counts["cli"] = (whole["whole"][0] - whole["start"][0], whole["whole"][1] - whole["start"][1])
    per = {k: ir / max(1, n) for k, (ir, n) in counts.items()}
    labels = {
        "raw": "raw engine: `batch_requests` of the same calls, one account, clients warm",
        "raw_accounts": f"raw engine, the same calls for each of the {len(accounts)} accounts as its assumed role "
        "(assumed before the window)",
        "inventory": f"`Inventory` in-process over {len(accounts)} accounts (AssumeRole + every list)",
        "cli": f"`greenfetch inventory --out DIR` over {len(accounts)} accounts, minus the same over 1",
    }
    rows = [
        f"| {labels[k]} | {counts[k][1]:,} | {per[k] / 1000:,.0f}k | {per[k] / per['raw']:.2f}x | "
        f"{per[k] / per['raw_accounts']:.2f}x |"
        for k in per
    ]
    return "\n".join(
        [
            "### Inventory instructions per list call (callgrind)",
            "",
            f"_Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; instruction counts do not depend "
            "on the machine's load (user space only: the kernel's share, such as the cache's file writes, is "
            "not in them)._" + (" **Quick run: numbers meaningless.**" if quick else ""),
            "",
            f"The CPU part's calls on {len(accounts)} accounts x {len(regions)} regions x {len(JSON_TYPES)} types "
            "(each account's secret and session token its own). "
            "The raw engine and `Inventory` are counted over their timed window only (`--instr-atstart=no`, "
            "switched on and off from inside); the command is counted whole, twice (all the accounts, then 1), "
            "and the difference divided by the list calls between the two. Every counted process reads a "
            f"monotonic clock slowed {CLOCK_SLOWDOWN} times, as callgrind slows the process, so what greenfetch "
            "decides by that clock (a limiter's window, the cache file's transaction bound) happens as in a "
            "native run (`bench_inventory.SLOW_CLOCK`). Reproduce with "
            "`scripts/bench --only inventory_instructions`.",
            "",
            "| run | list calls | instructions per list call | vs raw engine | vs raw engine as the accounts |",
            "|---|---:|---:|---:|---:|",
            *rows,
        ]
    )


SECTIONS = {
    "inventory_cpu": run_cpu,
    "inventory_instructions": run_instructions,
}  # scripts/bench runs it as its own section


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
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="the CPU part counted in instructions (callgrind; minutes)",
    )
    args = parser.parse_args()
    if args.instructions:
        markdown = run_instructions(args.quick)
    elif args.cpu:
        markdown = run_cpu(args.quick)
    else:
        markdown = run(args.quick, args.accounts, args.rows.split(",") if args.rows else None)
    print(markdown)
    if args.write:
        sys.path.insert(0, str(Path(__file__).parent))
        from bench import write_section

        name = "inventory_instructions" if args.instructions else "inventory_cpu" if args.cpu else SECTION
        write_section(name, markdown)  # (the SECTIONS name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
