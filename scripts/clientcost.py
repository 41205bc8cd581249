"""The cost of a botocore client's creation, with greenfetch._botocore_fast's client-creation adaptations or without.

Each child makes one client per service for N services in a first region (models loaded, adaptations
installed), then sets the pieces asked for (the others get botocore's own code), makes them all again
in a second region (the environment's proxy variables read, the handlers seen, each service's ruleset
parsed, as a long run has), and measures a third region's N clients. Variants: ``A`` (botocore's code
for every piece), ``P1`` (part 1's pieces: ``recursive_copy``, ``verify_accept_kwargs``,
``get_proxies``, ``env_provide``), ``B`` (all of them: part 1's and part 2's ``deferred_manager``, the
HTTP session's pool manager built on first use, ``shared_ruleset``, one parsed endpoint ruleset per
service, ``scoped_profile``, the profile read once per creation, and part 3's ``shared_trie``, the
session's handler trie shared until a client writes), or a comma list of pieces on.

    python scripts/clientcost.py cpu --services 300 --rounds 6 A P1 B   # CPU per client, interleaved
    python scripts/clientcost.py ir --services 60 A B get_proxies       # instructions per client (callgrind)

``ir`` runs each child under ``valgrind --tool=callgrind --instr-atstart=no`` and counts only the
third region's window (callgrind's client requests switch instrumentation on and off around it), so
imports and model loading are left out. A collection runs just before the window; the collector's own
runs inside it count (fewer objects made, fewer runs), so a variant's count can move by a full
collection's ~100M instructions when one falls in its window and not in another's: compare the pieces'
sums with B. docs/performance/client-and-parse.md, issue 24, "a botocore client's creation".
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PIECES = (
    "recursive_copy",
    "verify_accept_kwargs",
    "get_proxies",
    "env_provide",
    "deferred_manager",
    "shared_ruleset",
    "scoped_profile",
    "shared_trie",
)
_MODULES = {
    "greenfetch._botocore_fast._client": None,
    "greenfetch._botocore_fast._httpsession": "deferred_manager",
    "greenfetch._botocore_fast._ruleset": "shared_ruleset",
    "greenfetch._botocore_fast._scoped": "scoped_profile",
}


# The named variants: botocore's code, part 1's pieces (the session of 2026-12-07 05:55), all of them.
_VARIANTS = {"A": set(), "P1": set(PIECES[:4]), "B": set(PIECES)}


def _piece(ours: object) -> str | None:
    """The piece a patch of ``_PATCHES`` belongs to: a ``_client`` function by its name, every patch of
    another module here by its module's piece; None for the request path's patches."""
    module = getattr(ours, "__module__", "")
    if module not in _MODULES:
        return None
    name = getattr(ours, "__name__", None)
    if name in _SHARED_TRIE:
        return "shared_trie"
    return _MODULES[module] or name


_SHARED_TRIE = {"trie_copy", "append_item", "remove_item"}  # part 3: one piece


_ENV = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_CONFIG_FILE": "/dev/null"}


def _toggle() -> tuple[object, object]:
    from percall import callgrind_toggle  # (scripts/: this script's own directory)

    lib = callgrind_toggle()
    return lib.gf_start, lib.gf_stop


def child(variant: str, services: int, callgrind: bool) -> None:
    import greenfetch  # noqa: F401 - first: it patches the standard library
    from greenfetch import Config, Engine, Request
    from greenfetch import _botocore_fast as fast

    config = Config.resolve(
        {"region": "us-east-1", "max_clients": 50000, "endpoint_url": "http://127.0.0.1:9"}
    )
    engine = Engine(config)
    names = sorted(engine.clients.session(None).get_available_services())[:services]

    def make(region: str) -> None:
        for name in names:
            engine.clients.client(Request(name, "X", {}, region=region))

    make("us-east-1")
    on = _VARIANTS[variant] if variant in _VARIANTS else set(variant.split(","))
    if "shared_trie" not in on:
        fast._client.unshare()  # botocore's code changes a trie's nodes in place
    for owner, name, theirs, ours in fast._PATCHES:
        piece = _piece(ours)
        if piece is not None:
            setattr(owner, name, ours if piece in on else theirs)
    make("eu-west-1")
    gc.collect()  # each variant's window starts from an empty young generation
    start, stop = _toggle() if callgrind else (None, None)
    cpu = time.process_time()
    if start is not None:
        start()  # type: ignore[operator]
    make("us-west-2")
    if stop is not None:
        stop(b"window")  # type: ignore[operator]
    print(f"{(time.process_time() - cpu) / len(names) * 1e6:.1f}")


def _run(variant: str, services: int, prefix: list[str]) -> float:
    env = {**os.environ, **_ENV}
    command = [*prefix, sys.executable, __file__, "child", variant, str(services)]
    if prefix:
        command.append("--callgrind")
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return float(out.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["cpu", "ir", "child"])
    parser.add_argument("variants", nargs="*")
    parser.add_argument("--services", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callgrind", action="store_true")
    args = parser.parse_intermixed_args()
    if args.mode == "child":
        child(args.variants[0], int(args.variants[1]), args.callgrind)
        return
    variants = args.variants or ["A", "B"]
    for variant in variants:
        if variant not in _VARIANTS and not set(variant.split(",")) <= set(PIECES):
            parser.exit(
                2,
                f"clientcost: unknown variant {variant!r}: A, P1, B or a comma list of {', '.join(PIECES)}\n",
            )
    got: dict[str, list[float]] = {variant: [] for variant in variants}
    for round_ in range(args.rounds):
        for variant in variants:
            if args.mode == "cpu":
                value = _run(variant, args.services, [])
                unit = "µs CPU"
            else:
                with tempfile.TemporaryDirectory() as workdir:
                    out = f"{workdir}/callgrind.out"
                    valgrind = ["nice", "-n", "5", "valgrind", "--tool=callgrind", "--instr-atstart=no", "-q"]
                    _run(variant, args.services, [*valgrind, f"--callgrind-out-file={out}"])
                    totals = [
                        line
                        for line in Path(out + ".1").read_text().splitlines()
                        if line.startswith("totals:")
                    ]
                    value = int(totals[0].split()[1]) / args.services / 1000
                    unit = "k instructions"
            got[variant].append(value)
            load = os.getloadavg()[0]
            print(
                f"round {round_ + 1} {variant}: {value:.1f} {unit} per client (load {load:.2f})", flush=True
            )
    for variant, values in got.items():
        print(f"{variant}: median {statistics.median(values):.1f} over {len(values)} rounds")


if __name__ == "__main__":
    main()
