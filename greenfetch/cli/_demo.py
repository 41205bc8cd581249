"""``greenfetch demo``: the main job against an embedded AWS endpoint, for a newcomer with no account.

It seeds three accounts in two regions of moto's server (through greenfetch itself), then shows the
two things greenfetch is for: one batch of raw API calls across accounts (assumed roles), and an
inventory of the whole estate.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from ._app import CliState, main, pass_state
from ._output import render_stats, render_summary, render_table

__all__ = ["demo"]

_DEMO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo",
    "AWS_SESSION_TOKEN": "demo",
}


@main.command()
@click.option(
    "--endpoint-url",
    help="Use this AWS endpoint instead of starting moto's server (it must be a "
    "test endpoint: the demo creates resources).",
)
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=32, show_default=True)
@click.option(
    "--keep",
    is_flag=True,
    help="Keep the inventory's files, and moto's server running until Ctrl-C, "
    "for your next commands (printed, with the environment they need).",
)
@pass_state
def demo(state: CliState, endpoint_url: str | None, concurrency: int, keep: bool) -> None:
    """Start moto's server on loopback, seed a small multi-account estate, fetch it all at once."""
    try:
        import moto  # noqa: F401

        from ..testing import MotoServer
        from ._demo_estate import DEMO_ACCOUNTS, DEMO_REGIONS, DEMO_ROLE, run_demo_inventory, seed_demo
    except ImportError:
        raise click.ClickException(
            "the demo needs moto's server: pip install 'greenfetch[demo]' (from a checkout: "
            "pip install -e '.[demo]', or run scripts/demo)"
        ) from None
    os.environ.update(_DEMO_CREDENTIALS)  # moto accepts any; the demo never talks to real AWS
    server: MotoServer | None = None
    if endpoint_url:
        url = endpoint_url
    else:
        server = MotoServer()
        url = server.start()
    out = tempfile.mkdtemp(prefix="greenfetch-demo-")
    try:
        engine = state.engine(endpoint_url=url, concurrency=concurrency, region="us-east-1")
        _title(f"1. An embedded AWS endpoint: {url} (moto's server)")
        started = time.perf_counter()
        seeded = seed_demo(url, engine=engine)
        click.echo(
            f"seeded {seeded['resources']} resources in {len(seeded['accounts'])} accounts x "
            f"{', '.join(DEMO_REGIONS)} in {time.perf_counter() - started:.1f}s, through greenfetch itself"
        )
        engine.metrics.reset()

        _title("2. One batch of raw API calls across accounts and regions (each account by its role)")
        requests = batch_requests(list(DEMO_ACCOUNTS), DEMO_REGIONS, DEMO_ROLE)
        started = time.perf_counter()
        results = engine.batch_requests(requests, concurrency)
        wall = time.perf_counter() - started
        click.echo(render_table(r.to_dict() for r in results))
        failed = sum(1 for r in results if not r.ok)
        click.echo(
            f"\n{len(results)} calls in {wall:.2f}s at concurrency {concurrency}; {failed} failed on purpose "
            "(a missing bucket: the error stays tied to its request)"
        )
        click.echo("\n" + render_stats(engine.metrics.perf_stats()))

        _title("3. An inventory of every account x region x resource type")
        report = run_demo_inventory(url, engine=engine, out=out, concurrency=concurrency)
        click.echo(render_summary(report.summary))
        click.echo(
            f"\n{len(report.files)} JSON files written (one per resource type) to {out}"
            + ("" if keep else " (removed when the demo ends; scripts/demo --keep keeps them)")
        )
        bin_dir = _bin_dir()
        on_path = f"export PATH={shlex.quote(bin_dir)}:$PATH"
        if (Path(bin_dir) / "activate").is_file():
            on_path += f"   # or: source {shlex.quote(str(Path(bin_dir) / 'activate'))}"
        if not keep:
            click.echo(
                f"\nNext: put the commands on PATH in your shell:\n  {on_path}\nthen `greenfetch batch --help`, "
                "`greenfetch inventory --help`, docs/nushell.md; `scripts/demo --keep` (or `greenfetch demo "
                "--keep`) keeps moto's server and these files for your next commands"
            )
            return
        env = " ".join(
            f"{k}={v}"
            for k, v in {"AWS_ENDPOINT_URL": url, **_DEMO_CREDENTIALS, "AWS_REGION": "us-east-1"}.items()
        )
        again = (
            f"greenfetch inventory --accounts {','.join(DEMO_ACCOUNTS)} --role-name {DEMO_ROLE} "
            f"--regions {','.join(DEMO_REGIONS)} --types ec2.vpcs,sqs.queues --out "
            f"{shlex.quote(os.path.join(out, 'inventory.db'))}"
        )
        _title("Kept for your next commands" + (", until you stop this one (Ctrl-C)" if server else ""))
        click.echo(
            f"moto's server: {url}\nthe inventory's files: {out}\n"
            f"{'In another terminal' if server else 'Next'}, as printed:\n"
            f"  {on_path}\n  export {env}\n  {again}"
        )
        if server is not None:
            _wait_for_a_stop()
            click.echo(f"stopped moto's server at {url}; the files stay in {out}", err=True)
    finally:
        if server is not None:
            server.stop()
        if not keep:
            shutil.rmtree(out, ignore_errors=True)


def _bin_dir() -> str:
    """Where this greenfetch's commands are (a venv's bin directory, usually)."""
    found = shutil.which("greenfetch")
    return str(Path(found).parent) if found else str(Path(sys.executable).parent)


def _wait_for_a_stop() -> None:
    """Until Ctrl-C, SIGTERM or SIGHUP (the CLI raises them in the main greenlet)."""
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def _title(text: str) -> None:
    click.secho(f"\n{text}", fg="green", bold=True)


def batch_requests(accounts: list[str], regions: tuple[str, ...], role_name: str) -> list[dict[str, Any]]:
    """What an inventory script asks of every account and region, plus one call that fails on purpose."""
    calls = [
        ("ec2", "DescribeInstances", True),
        ("ec2", "describe_vpcs", False),
        ("lambda", "ListFunctions", True),
        ("dynamodb", "ListTables", False),
    ]
    requests: list[dict[str, Any]] = []
    for account in accounts:
        role = f"arn:aws:iam::{account}:role/{role_name}"
        requests.append({"service": "s3", "operation": "ListBuckets", "role": role})
        requests += [
            {"service": service, "operation": operation, "region": region, "role": role, "paginate": paginate}
            for region in regions
            for service, operation, paginate in calls
        ]
    requests.append(
        {
            "service": "s3",
            "operation": "GetObject",
            "params": {"Bucket": "nonexistent-bucket", "Key": "nonexistent-key"},
        }
    )
    return requests
