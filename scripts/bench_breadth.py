"""Breadth benchmark (issue 20): every listing operation, 1 account x 4 regions, greenfetch next to aws_list_all.

    scripts/bench --only breadth [--quick] [--write]
    python scripts/bench_breadth.py [--quick] [--ala-services FRACTION] [--ala-regions N] [--write]

The operations: every List*/Describe* operation in botocore's models whose only required input, if any,
is ``MaxResults`` (filled with 10, as aws_list_all fills it), about 2,100 in 430 services, each called
in 4 regions, on the any-protocol loopback server (``greenfetch.testing.any_server``: a valid, empty,
final page in each operation's own protocol after ``LATENCY``), so every call is one request.

- greenfetch: ``greenfetch inventory --types all`` (``VIA = "inventory"``, the default), and the operations
  both sides call are the catalog's callable rows (``greenfetch catalog -o json``, deny-list left out);
  ``--via engine`` runs botocore's listing operations as one ``batch_requests`` instead.
- aws_list_all (``aws-list-all`` from PyPI, in its own venv, ``PEERS`` below, made on first use with the
  same boto3 and botocore as ours): its own per-call path (``query.acquire_listing``: a boto3 client per
  service and region, a boto3 session for its parameter table on every call, no pagination) on a
  ``ThreadPool`` of ``CONCURRENCY``, as its ``query`` command runs them, over exactly the same
  (service, region, operation) list. It spends ~0.2 s of CPU per call (1,684 s and 11.8 GB for the full 4
  regions), so by default it runs on a sample of the services (``--ala-services``, ``--ala-regions``);
  greenfetch runs the full set and the same sample, and the section says which numbers are measured and
  which are scaled from the sample.

Both point at the server with ``AWS_ENDPOINT_URL`` and ``AWS_DISABLE_HOST_PREFIX_INJECTION=true`` (else
operations with a host prefix would call data.127.0.0.1). Wall time, CPU (user + system) and peak RSS
are each whole process's, taken by ``os.wait4``: imports, model loading and client creation included.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import greenfetch  # noqa: F401  (first: patches gevent before botocore)
from greenfetch.testing import any_server

SECTION = "breadth"
ROOT = Path(__file__).resolve().parent.parent
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1"]
LATENCY = 0.05
CONCURRENCY = 32  # both sides: aws_list_all's default --parallel
PAGE_SIZE = 10  # what aws_list_all sends when MaxResults is required
ALA = "aws-list-all==0.9.2"
PEERS = Path(os.environ.get("GREENFETCH_BENCH_PEERS") or ROOT / ".peers")  # aws_list_all's own venv

# The catalog hook: "inventory" runs `greenfetch inventory --types all` on the operations of `greenfetch
# catalog -o json` (its callable rows); `--via engine` runs botocore's listing operations as one batch.
VIA = "inventory"
ACCOUNT = "123456789012"  # the inventory's --accounts: the server's GetCallerIdentity names it
# The many-accounts row: the same calls in each of these accounts, a role assumed in each (the server's
# STS answers as the inventory loopback server's): what each account beyond the first costs.
MANY_ACCOUNTS = ["111111111111", "222222222222", "333333333333"]
ROLE = "InventoryReader"


@dataclass(frozen=True)
class Op:
    service: str
    operation: str
    params: tuple[tuple[str, Any], ...] = ()
    scope: str = "regional"
    name: str = ""  # the catalog's type name (the inventory hook's --types)


@dataclass(frozen=True)
class Plan:
    full: list[Op]
    regions: list[str]
    sample: list[Op]
    sample_regions: list[str]

    def calls(self, ops: list[Op], regions: list[str]) -> list[tuple[Op, str]]:
        return [(op, region) for op in ops for region in (regions[:1] if op.scope == "global" else regions)]


# -- which operations ------------------------------------------------------------------------------------


# Operations no client can point at a test server with AWS credentials alone, left out on both sides.
UNREACHABLE = {
    ("signin", "ListResourcePermissionStatements"): "its endpoint rules ignore a configured endpoint"
}


def listing_operations() -> list[Op]:
    """Every List*/Describe* operation whose required input is at most ``MaxResults``, from botocore, less
    ``UNREACHABLE`` and services that take a bearer token instead of SigV4 (CodeCatalyst)."""
    import botocore.loaders
    import botocore.model

    loader = botocore.loaders.create_loader()
    found = []
    for service in loader.list_available_services("service-2"):
        model = botocore.model.ServiceModel(loader.load_service_model(service, "service-2"), service)
        if model.signature_version == "bearer":
            continue
        for name in model.operation_names:
            if not name.startswith(("List", "Describe")) or (service, name) in UNREACHABLE:
                continue
            shape = model.operation_model(name).input_shape
            required = set(shape.required_members) if shape is not None else set()
            if required - {"MaxResults"}:
                continue
            params: tuple[tuple[str, Any], ...] = ()
            if required:  # aws_list_all sends MaxResults=10; leave out the few where 10 is out of range
                limits = shape.members["MaxResults"].metadata
                if not limits.get("min", 0) <= PAGE_SIZE <= limits.get("max", PAGE_SIZE):
                    continue
                params = (("MaxResults", PAGE_SIZE),)
            found.append(Op(service, name, params))
    return found


def catalog_operations() -> list[Op]:
    """THE CATALOG HOOK: the operations of ``greenfetch inventory --types all``, from ``greenfetch catalog``."""
    out = subprocess.run(
        [sys.executable, "-m", "greenfetch.cli", "catalog", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    rows = json.loads(out.stdout)
    return [
        Op(
            t["service"],
            t["operation"],
            tuple(sorted((k, _for_account(v)) for k, v in (t.get("params") or {}).items())),
            "global" if t.get("scope") == "global" else "regional",
            t["name"],
        )
        for t in rows
        if t.get("tier") != "denied"  # never called: the deny-list's rows carry a reason, not a call
    ]


def _for_account(value: Any) -> Any:
    """A catalog parameter with the inventory's ``{account}`` filled in, as the fetch does."""
    return value.replace("{account}", ACCOUNT) if isinstance(value, str) else value


def sampled(ops: list[Op], fraction: float) -> list[Op]:
    """Every operation of every k-th service (sorted by name), k = round(1 / fraction)."""
    services = sorted({op.service for op in ops})
    step = max(1, round(1 / fraction))
    keep = set(services[min(step // 2, len(services) - 1) :: step])
    return [op for op in ops if op.service in keep]


# -- the runs --------------------------------------------------------------------------------------------

# Runs one side and reports what os.wait4 says about it: a plain interpreter, because the gevent-patched
# parent reaps its children itself (and their rusage with them).
_MEASURE = r"""
import json, os, subprocess, sys, time
began = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)
out = proc.stdout.read()
_, status, usage = os.wait4(proc.pid, 0)
lines = out.decode(errors="replace").strip().splitlines()
print(json.dumps({"status": os.waitstatus_to_exitcode(status), "wall": time.perf_counter() - began,
                  "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
                  "last": lines[-1] if lines else ""}))
"""


def measure(cmd: list[str], env: dict[str, str], timeout: float = 7200.0) -> dict[str, Any]:
    """Run ``cmd``: its last stdout line (JSON) with the wall time, CPU (user + system) and peak RSS of it
    and its children."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *cmd],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
        timeout=timeout,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    got = json.loads(lines[-1]) if done.returncode == 0 and lines else {"status": done.returncode, "last": ""}
    if got["status"] != 0 or not got["last"]:
        raise RuntimeError(
            f"benchmark child {cmd[:3]} failed (status {got['status']}): {done.stderr[-2000:]}"
        )
    return {**json.loads(got["last"]), "wall": got["wall"], "cpu": got["cpu"], "rss_mb": got["rss_mb"]}


def child_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GREENFETCH_"))}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL=url,
        AWS_DISABLE_HOST_PREFIX_INJECTION="true",
    )
    return env


_ENGINE_CHILD = r"""
import json, sys
import greenfetch
from greenfetch import Config, Engine
opts = json.load(open(sys.argv[1]))
engine = Engine(Config.resolve({"concurrency": opts["concurrency"], "max_clients": opts["max_clients"]}))
calls = [{"service": s, "operation": o, "params": dict(p), "region": r, "paginate": True}
         for s, o, p, r in opts["calls"]]
errors = [f"{r.request.service} {r.request.region} {r.request.operation}: {r.error_code}: {r.error}"[:300]
          for r in engine.batch_requests(calls, opts["concurrency"]) if not r.ok]
print(json.dumps({"calls": len(calls), "ok": len(calls) - len(errors), "errors": errors[:5],
                  "failed": len(errors), "clients": engine.clients.created}))
"""

_ALA_CHILD = r"""
import contextlib, json, random, sys
from functools import partial
from multiprocessing.pool import ThreadPool
from aws_list_all.query import RESULT_ERROR, RESULT_NO_ACCESS, acquire_listing
opts = json.load(open(sys.argv[1]))
to_run = [[s, r, o, None] for s, o, _, r in opts["calls"]]
random.Random(0).shuffle(to_run)  # as its do_query does, to spread the calls over endpoints
kinds, errors = {}, []
with contextlib.closing(ThreadPool(opts["concurrency"])) as pool:
    for result in pool.imap_unordered(partial(acquire_listing, 0), to_run):
        kinds[result[0]] = kinds.get(result[0], 0) + 1
        if result[0] in (RESULT_ERROR, RESULT_NO_ACCESS):
            errors.append(" ".join(map(str, result[1:]))[:300])
print(json.dumps({"calls": len(to_run), "ok": len(to_run) - len(errors), "errors": errors[:5],
                  "failed": len(errors), "kinds": kinds}))
"""

_INVENTORY_CHILD = r"""
import json, subprocess, sys
opts = json.load(open(sys.argv[1]))
# --accounts: the server's GetCallerIdentity is an empty page too; --cache-ttl 0: every call reaches the server
cmd = [sys.executable, "-m", "greenfetch.cli", "inventory", "--types", opts["types"], "--regions", ",".join(opts["regions"]),
       "--accounts", opts["account"], "--cache-ttl", "0", "--concurrency", str(opts["concurrency"]),
       "--out", opts["out"], "--format", "jsonl", "--no-progress", *(["--role-name", opts["role"]] if opts["role"] else [])]
done = subprocess.run(cmd, capture_output=True, text=True)
records = [json.loads(line) for line in open(opts["out"] + "/inventory.jsonl")] if done.returncode in (0, 1) else []
bad = [f"{r.get('resource_type')} {r.get('region')}: {r.get('status')}: {r.get('error')}"[:300]
       for r in records if r.get("status") != "ok"]
if not records:
    sys.exit(f"greenfetch inventory wrote no records (exit {done.returncode}): {done.stderr[-1500:]}")
print(json.dumps({"calls": len(records), "ok": len(records) - len(bad), "errors": bad[:5], "failed": len(bad)}))
"""


def run_greenfetch(
    url: str,
    calls: list[tuple[Op, str]],
    regions: list[str],
    tmp: Path,
    types: str = "all",
    accounts: list[str] | None = None,
) -> dict[str, Any]:
    """greenfetch over ``calls`` (the inventory hook: ``--types`` in ``regions``), in ``ACCOUNT`` with the
    caller's own credentials, or in each of ``accounts`` with ``ROLE`` assumed in each."""
    opts = {
        "calls": [(op.service, op.operation, list(op.params), region) for op, region in calls],
        "types": types,
        "concurrency": CONCURRENCY,
        "max_clients": len({(op.service, r) for op, r in calls}) + 64,
        "regions": regions,
        "out": str(tmp / "inventory"),
        "account": ",".join(accounts) if accounts else ACCOUNT,
        "role": ROLE if accounts else None,
    }
    spec = tmp / "greenfetch.json"
    spec.write_text(json.dumps(opts))
    code = _INVENTORY_CHILD if VIA == "inventory" else _ENGINE_CHILD
    return measure([sys.executable, "-c", code, str(spec)], child_env(url))


def run_aws_list_all(url: str, calls: list[tuple[Op, str]], tmp: Path) -> dict[str, Any]:
    spec = tmp / "aws_list_all.json"
    spec.write_text(
        json.dumps(
            {
                "calls": [(op.service, op.operation, list(op.params), r) for op, r in calls],
                "concurrency": CONCURRENCY,
            }
        )
    )
    return measure([str(peers_python()), "-c", _ALA_CHILD, str(spec)], child_env(url))


def peers_python() -> Path:
    """aws_list_all's venv (``PEERS``), made on first use with our boto3 and botocore pinned."""
    python = PEERS / "bin" / "python"
    stamp = PEERS / ".greenfetch-peers"
    want = f"{ALA} boto3=={version('boto3')} botocore=={version('botocore')}"
    if python.exists() and stamp.exists() and stamp.read_text() == want:
        return python
    print(f"bench: breadth: installing {want} into {PEERS}", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *want.split()], check=True
    )
    stamp.write_text(want)
    return python


# -- the section -----------------------------------------------------------------------------------------


def plan(quick: bool, ala_services: float | None, ala_regions: int | None) -> Plan:
    ops = catalog_operations() if VIA == "inventory" else listing_operations()
    if quick:  # smoke run: a tenth of the services in one region; aws_list_all on a fifth of those
        some = sampled(ops, 0.1)
        return Plan(some, REGIONS[:1], sampled(some, 0.2), REGIONS[:1])
    return Plan(ops, REGIONS, sampled(ops, ala_services or 0.05), REGIONS[: ala_regions or len(REGIONS)])


def run(quick: bool = False, ala_services: float | None = None, ala_regions: int | None = None) -> str:
    the_plan = plan(quick, ala_services, ala_regions)
    full = the_plan.calls(the_plan.full, the_plan.regions)
    sample = the_plan.calls(the_plan.sample, the_plan.sample_regions)
    whole = sample == full
    runs: dict[str, dict[str, Any]] = {}
    began = time.monotonic()
    print(
        f"bench: breadth: starting the server for {len({op.service for op, _ in full})} services",
        file=sys.stderr,
        flush=True,
    )
    services = None if VIA == "inventory" or not quick else sorted({op.service for op, _ in full})
    with (
        any_server(latency=LATENCY, services=services) as server,
        tempfile.TemporaryDirectory(prefix="greenfetch-bench-breadth-") as tmp,
    ):
        print(
            f"bench: breadth: server ready in {time.monotonic() - began:.1f} s", file=sys.stderr, flush=True
        )
        every = "all" if not quick else ",".join(sorted({op.name for op in the_plan.full}))  # (the hook's)
        jobs = [
            ("greenfetch", full, lambda c: run_greenfetch(server.url, c, the_plan.regions, Path(tmp), every))
        ]
        if not whole:
            types = ",".join(sorted({op.name for op in the_plan.sample}))  # (the inventory hook's sample)
            jobs.append(
                (
                    "greenfetch_sample",
                    sample,
                    lambda c: run_greenfetch(server.url, c, the_plan.sample_regions, Path(tmp), types),
                )
            )
        if VIA == "inventory":
            many = full * len(MANY_ACCOUNTS)
            jobs.append(
                (
                    "greenfetch_accounts",
                    many,
                    lambda c: run_greenfetch(
                        server.url, c, the_plan.regions, Path(tmp), every, MANY_ACCOUNTS
                    ),
                )
            )
        jobs.append(("aws_list_all", sample, lambda c: run_aws_list_all(server.url, c, Path(tmp))))
        for key, calls, job in jobs:
            server.reset_stats()
            began, cpu = time.monotonic(), server.stats()["cpu_seconds"]  # (the child's CPU since it started)
            m = job(calls)
            stats = server.stats()
            m.update(requests=stats["requests"], served_ok=stats["ok"], server_cpu=stats["cpu_seconds"] - cpu)
            runs[key] = m
            print(
                f"bench: breadth: {key}: {m['calls']:,} calls in {m['wall']:.1f} s, {m['failed']} failed, "
                f"server saw {m['requests']:,} ({time.monotonic() - began:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return section(the_plan, runs, full, sample, quick)


def section(
    the_plan: Plan, runs: dict[str, dict[str, Any]], full: list[Any], sample: list[Any], quick: bool
) -> str:
    gf, ala = runs["greenfetch"], runs["aws_list_all"]
    gfs = runs.get("greenfetch_sample", gf)
    n_services = len({op.service for op in the_plan.full})
    s_services = len({op.service for op in the_plan.sample})
    via = (
        "`greenfetch inventory --types all`"
        if VIA == "inventory"
        else "the engine (`batch_requests`, `paginate=True`; the catalog's `--types all` replaces it)"
    )

    def row(label: str, what: str, m: dict[str, Any], measured: str = "measured") -> list[str]:
        return [
            label,
            what,
            f"{m['calls']:,}",
            f"{m['wall']:,.1f}",
            f"{m['calls'] / max(m['wall'], 1e-9):,.0f}",
            f"{1000 * m['cpu'] / max(1, m['calls']):,.2f}",
            f"{m['rss_mb']:,.0f}",
            f"{m['failed']:,}",
            f"{m['requests']:,}" if "requests" in m else "-",
            measured,
        ]

    full_what = f"all: {n_services} services x {len(the_plan.regions)} region(s)"
    sample_what = f"sample: {s_services} services x {len(the_plan.sample_regions)} region(s)"
    rows = [row("greenfetch", full_what, gf)]
    many = runs.get("greenfetch_accounts")
    if many is not None:
        rows.append(row(f"greenfetch, {len(MANY_ACCOUNTS)} accounts (a role in each)", full_what, many))
    if gfs is not gf:
        rows.append(row("greenfetch", sample_what, gfs))
    rows.append(row("aws_list_all", sample_what, ala))
    scale = len(full) / len(sample)
    same = ala["wall"] / gfs["wall"]
    lines = [
        "## Breadth: every listing operation, 1 account x 4 regions (and 3 accounts), next to aws_list_all",
        "",
        _measured_note(quick),
        "",
        (
            "The operations: the catalog's types (`greenfetch catalog -o json`; global ones in one region), "
            if VIA == "inventory"
            else f"The operations: every List*/Describe* operation of botocore {version('botocore')} whose only required "
            f"input is at most `MaxResults` ({PAGE_SIZE}), "
        )
        + f"{len(the_plan.full):,} operations in {n_services} services, "
        f"each in every region = **{len(full):,} calls**, on the any-protocol loopback server "
        f"(`greenfetch.testing.any_server`: an empty, final page in each operation's own protocol after "
        f"{LATENCY * 1000:.0f} ms, so one request per call). Concurrency {CONCURRENCY} on both sides "
        f"(aws_list_all's default). greenfetch: {via}. aws_list_all {ALA.split('==')[1]}: its own per-call "
        f"path (`acquire_listing` on a `ThreadPool`, as its `query` runs) over the same (service, region, "
        f"operation) list. Wall, CPU and peak RSS are each whole process's (imports, models and clients "
        "included). Reproduce with `scripts/bench --only breadth`.",
        "",
        _table(
            [
                "client",
                "operations",
                "calls",
                "wall s",
                "calls/s",
                "CPU ms/call",
                "peak RSS MB",
                "failed",
                "server requests",
                "numbers",
            ],
            rows,
        ),
        "",
        f"- Same operations, measured: aws_list_all / greenfetch wall time on the sample ({len(sample):,} calls): "
        f"**{same:.1f}x** (goal ≥ 5x: {'met' if same >= 5 else '**missed**'}); CPU per call "
        f"{ala['cpu'] / max(gfs['cpu'], 1e-9):.1f}x.",
    ]
    if gfs is not gf:
        est = ala["wall"] * scale
        lines.append(
            f"- All {len(full):,} calls: aws_list_all **scaled from the sample, not measured** (its wall time per "
            f"call x {scale:.1f}) = {est:,.0f} s, against greenfetch's measured {gf['wall']:,.1f} s: "
            f"**{est / gf['wall']:.0f}x** (goal ≥ 5x: {'met' if est / gf['wall'] >= 5 else '**missed**'}). It is "
            "CPU-bound, so its time grows with the calls; greenfetch's fixed costs (imports, ~430 service models) "
            "weigh more on the small sample, so the measured ratio there is the conservative one."
        )
    if many is not None:
        extra = max(1, many["calls"] - gf["calls"])
        lines.append(
            f"- Each account beyond the first: **{1000 * (many['cpu'] - gf['cpu']) / extra:,.2f} ms CPU per call** "
            f"((CPU of {len(MANY_ACCOUNTS)} accounts - CPU of 1) / the {extra:,} calls between them: start-up, "
            "the models and each (service, region) client are paid once a run; clients are shared across "
            f"accounts), against {1000 * gf['cpu'] / max(1, gf['calls']):,.2f} ms a call for the 1-account run whole."
        )
    lines.append(
        f"- Every call one page: the server saw {gf['requests']:,} requests for greenfetch's "
        f"{gf['calls']:,} calls ({gf['served_ok']:,} answered ok); loopback server CPU "
        f"{1e6 * gf['server_cpu'] / max(1, gf['requests']):.0f} µs per request (its own process)."
    )
    failures = [f"{k}: {e}" for k, m in runs.items() for e in m.get("errors", [])[:3]]
    if failures:
        lines.append("- Failed calls (first few): " + "; ".join(f"`{f}`" for f in failures))
    return "\n".join(lines)


def _measured_note(quick: bool) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    note = (
        f"_Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores (load "
        f"average {load} at the end; a shared machine reads slow)._"
    )
    return note + (" **Quick run: numbers meaningless.**" if quick else "")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 < number <= 1:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a fraction of the services; use a number in (0, 1], "
            "e.g. 0.05 (1 for all of them)"
        )
    return number


def main() -> int:
    global VIA
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run (a minute or two, numbers meaningless)"
    )
    parser.add_argument(
        "--ala-services",
        type=_fraction,
        metavar="FRACTION",
        help="share of the services aws_list_all runs on (default 0.05; 1: all, ~30 min per region)",
    )
    parser.add_argument(
        "--ala-regions",
        type=int,
        choices=range(1, len(REGIONS) + 1),
        help=f"how many of the {len(REGIONS)} regions aws_list_all runs in (default all)",
    )
    parser.add_argument(
        "--via",
        choices=["engine", "inventory"],
        default=VIA,
        help="greenfetch's side: the engine on botocore's listing operations, or `greenfetch "
        "inventory --types all` on the catalog's types (the hook for issue 20's catalog)",
    )
    parser.add_argument("--write", action="store_true", help="write the section into docs/performance.md")
    args = parser.parse_args()
    VIA = args.via
    markdown = run(args.quick, args.ala_services, args.ala_regions)
    print(markdown)
    if args.write:
        sys.path.insert(0, str(Path(__file__).parent))
        from bench import write_section

        write_section(SECTION, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
