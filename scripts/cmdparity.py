"""The ``greenfetch inventory`` command with two source trees on one loopback server: the same output?

    python scripts/cmdparity.py TREE_A TREE_B [TZ...]

Each TREE (a source tree put first on PYTHONPATH, such as a checkout of the code before a change and one after) runs the command
over 3 accounts x 4 regions x 12 types (the 6 JSON ones, EC2's five, Lambda's) with ``--cache-ttl 0``,
as ``--format json``, ``--format jsonl`` and records on stdout, under each TZ (default UTC and
America/New_York). Compared: the exit code, the json files byte for byte, the jsonl lines and stdout
records sorted (completion order differs), the cache entries (key and text with ``stored_at`` masked),
the cache directory's names and modes, and stderr with its times masked. ``CMDPARITY_SERVER`` (JSON)
sets the server's pages (``greenfetch.testing.inventory_server``: e.g. ``{"deny_assume":
["222222222222"], "deny_regions": ["eu-west-1"], "throttle_regions": ["us-west-2"]}``). Exits 1 when
any run differs. The children run in a temporary directory, so neither tree is shadowed by the caller's.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from typing import Any

import greenfetch  # noqa: F401  (first: it patches)
from greenfetch.inventory._pagefile import NAME
from greenfetch.testing import inventory_server

TYPES = (
    "dynamodb.tables,sqs.queues,kms.keys,ssm.parameters,secretsmanager.secrets,logs.log_groups,"
    "ec2.instances,ec2.vpcs,ec2.subnets,ec2.security_groups,ec2.volumes,lambda.functions"
)
ACCOUNTS = "111111111111,222222222222,333333333333"
REGIONS = "us-east-1,eu-west-1,us-west-2,ap-south-1"
_TIMES = re.compile(r"\d+(\.\d+)?s\b|/tmp/\S+")


def _run(tree: str, url: str, tmp: str, tag: str, fmt: str, tz: str) -> tuple[Any, ...]:
    out = os.path.join(tmp, f"out-{tag}")
    cache = os.path.join(tmp, f"cache-{tag}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GREENFETCH_"))}
    env.update(
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="y",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        GREENFETCH_CACHE_DIR=cache,
        PYTHONPATH=tree,
        TZ=tz,
    )
    command = [
        *(sys.executable, "-m", "greenfetch.cli", "--endpoint-url", url, "--region", "us-east-1"),
        *("inventory", "--accounts", ACCOUNTS, "--role-name", "InventoryReader", "--regions", REGIONS),
        *("--types", TYPES, "--cache-ttl", "0", "--no-progress"),
    ]
    if fmt != "stdout":
        command += ["--out", out, "--format", fmt]
    done = subprocess.run(command, env=env, cwd=tmp, capture_output=True, text=True, timeout=900, check=False)
    files: dict[str, Any] = {}
    for name in sorted(os.listdir(out)) if os.path.isdir(out) else []:
        with open(os.path.join(out, name), "rb") as handle:
            data = handle.read()
        files[name] = data if fmt == "json" else sorted(data.splitlines())
    rows: dict[str, str] = {}
    path = os.path.join(cache, NAME)
    if os.path.exists(path):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            for key, body in conn.execute("SELECT key, body FROM entries"):
                rows[key] = re.sub(r'"stored_at":[^,]*,', "", body)
        conn.close()
    modes = sorted((n, oct(os.stat(os.path.join(cache, n)).st_mode)) for n in os.listdir(cache))
    return done.returncode, files, sorted(done.stdout.splitlines()), rows, modes, _TIMES.sub("T", done.stderr)


def main() -> int:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    a_tree, b_tree, *zones = sys.argv[1:]
    server = json.loads(os.environ.get("CMDPARITY_SERVER") or "{}")
    names = ["exit", "files", "stdout", "cache", "cache modes", "stderr"]
    differs = False
    with (
        inventory_server(**server) as srv,
        tempfile.TemporaryDirectory(prefix="greenfetch-cmdparity-") as tmp,
    ):
        for tz in zones or ["UTC", "America/New_York"]:
            for fmt in ("json", "jsonl", "stdout"):
                a = _run(a_tree, srv.url, tmp, f"a-{fmt}-{tz.replace('/', '_')}", fmt, tz)
                b = _run(b_tree, srv.url, tmp, f"b-{fmt}-{tz.replace('/', '_')}", fmt, tz)
                diff = [n for n, x, y in zip(names, a, b, strict=True) if x != y]
                differs = differs or bool(diff)
                print(
                    f"{tz} {fmt}: exit {a[0]}/{b[0]}, {len(a[1])} files, {len(a[2])} stdout lines, "
                    f"{len(a[3])} cache entries: "
                    + ("the same" if not diff else "DIFFERENT: " + ", ".join(diff))
                )
    return 1 if differs else 0


if __name__ == "__main__":
    sys.exit(main())
