"""Instructions per list call of the ``greenfetch inventory`` command (callgrind): the A/B tool for its own cost.

    python scripts/cmdcost.py [--accounts N] [--rounds R] [--types T,...] [--cache-ttl TTL] [TREE...]

What ``scripts/bench --only inventory_instructions`` counts for its command row, for several source trees
side by side: each TREE (a source tree put first on PYTHONPATH, such as a worktree of the code before a
change; default this one) runs the command under ``valgrind --tool=callgrind`` over N accounts and over 1
(the 6 JSON types x 8 regions, pages of 5 items, ``--out DIR --cache-ttl 0 --no-progress -c 64``, every
account through AssumeRole, a new cache directory each run), and the difference is divided by the list calls between the two: the
command's cost a list call with its start-up (imports, the catalog, models, a client per service and
region) taken out. Rounds interleave the trees on one loopback server (single runs of one tree differ by
up to ~1%: the hub's scheduling), and the medians are printed with each round's figure.

The command runs with its monotonic clock slowed as callgrind slows it (``bench_inventory.counted``), so
what it decides by the clock (a limiter's window, the cache file's transaction bound) happens as in a
native run; without that, the count moved by tens of thousands of instructions a list call with the
machine's load. Instruction counts do not move with the machine's load, so this runs beside other work; what it leaves out
is the kernel's share (the cache's and the sink's file writes) and memory stalls, which the CPU benchmark
(``scripts/bench --only inventory_cpu``) measures on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import greenfetch  # noqa: F401  (first: LoopbackServer imports greenfetch, which patches)
from greenfetch.testing import LoopbackServer

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_inventory as inv  # noqa: E402


def _count(
    tree: str, url: str, tmp: str, accounts: list[str], ttl: str, types: list[str], tag: str
) -> tuple[int, int]:
    """(instructions, list calls) of one command run under callgrind, ``tree`` first on PYTHONPATH."""
    out_dir = tempfile.mkdtemp(dir=tmp, prefix="out-")
    command = inv._cli_command(url, out_dir, accounts, inv.REGIONS[:8], 64)
    command[command.index("--cache-ttl") + 1] = ttl
    command[command.index("--types") + 1] = ",".join(types)
    # a cache of its own: with one shared, a later run replaced the earlier's rows (~4k a page cheaper
    # than a new row's) or, with a TTL over 0, read them instead of fetching
    env = {
        **inv._cli_env(tmp),
        "PYTHONPATH": tree,
        "GREENFETCH_CACHE_DIR": tempfile.mkdtemp(dir=tmp, prefix="cache-"),
    }
    try:
        return inv.count_command(tmp, tag, command, out_dir, env)
    except RuntimeError as exc:
        raise SystemExit(f"{tree}: {exc}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", default=[str(Path(__file__).resolve().parent.parent)])
    parser.add_argument("--accounts", type=int, default=20, help="accounts of the whole run (default 20)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (default 1)")
    parser.add_argument(
        "--types", default=",".join(inv.JSON_TYPES), help="the types (default the 6 JSON ones)"
    )
    parser.add_argument("--cache-ttl", default="0", help="the command's --cache-ttl (default 0)")
    opts = parser.parse_args()
    os.environ["GREENFETCH_INVENTORY_PAGES"] = json.dumps({"items": 5})
    accounts = [f"7{n:011d}" for n in range(opts.accounts)]
    types = opts.types.split(",")
    per: dict[str, list[float]] = {tree: [] for tree in opts.trees}
    with (
        LoopbackServer(handler=inv.HANDLER, latency=inv.LATENCY) as url,
        tempfile.TemporaryDirectory(prefix="greenfetch-cmdcost-") as tmp,
    ):
        for r in range(opts.rounds):
            for t, tree in enumerate(opts.trees):
                tag = f"r{r}t{t}"
                whole, lists = _count(tree, url, tmp, accounts, opts.cache_ttl, types, tag + "whole")
                start, first = _count(tree, url, tmp, accounts[:1], opts.cache_ttl, types, tag + "start")
                per[tree].append((whole - start) / max(1, lists - first))
                print(
                    f"round {r + 1} {tree}: {per[tree][-1] / 1000:,.1f}k a list call",
                    file=sys.stderr,
                    flush=True,
                )
    for tree, counts in per.items():
        ordered = sorted(counts)
        mid = len(ordered) // 2
        median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
        rounds = " / ".join(f"{c / 1000:,.1f}k" for c in counts)
        print(f"{median / 1000:9,.1f}k a list call (rounds {rounds})  {tree}")


if __name__ == "__main__":
    main()
