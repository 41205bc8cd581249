"""Issue 15: a SIGTERM'd ``greenfetch drs-sync`` (a real process) writes what completed and exits 143.

Against moto and the loopback DRS endpoint: us-east-1 answers at once, eu-west-1 hangs (injected
latency). With ``-c 1`` the eu-west-1 call is only dispatched once the us-east-1 result has been
taken, so the endpoint seeing it is the condition that us-east-1 completed: no sleep, no race.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from greenfetch.testing import wait_until
from greenfetch.testing._drs import DrsEstate, DrsServer

ACCOUNT, TARGETS, INVENTORY = "330000000001", "drs-signals-targets", "drs-signals-inventory"


@pytest.fixture(scope="module")
def estate(moto_server):
    drs = DrsServer(sts_url=moto_server.url)
    drs.start()
    try:
        world = DrsEstate(moto_server.url, drs)
        world.targets_table(TARGETS, [(ACCOUNT, "Production")])
        world.inventory_table(INVENTORY)
        ids = world.instances(ACCOUNT, "us-east-1", 2)
        world.servers(ACCOUNT, "us-east-1", 2, instance_ids=ids)
        world.servers(ACCOUNT, "eu-west-1", 1)
        drs.seed(region_latency={"eu-west-1": 60.0})
        yield world
    finally:
        drs.stop()


def _calls(drs, scope):
    return drs.calls()["by_scope"].get(scope, 0)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_drs_sync_writes_what_completed(estate, tmp_path, signum, code):
    out, status = tmp_path / "sync.json", tmp_path / "status.json"
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": estate.moto_url,
        "AWS_ENDPOINT_URL_DRS": estate.drs.url,
        "AWS_REGION": "us-east-1",
        "GREENFETCH_MAX_ATTEMPTS": "1",
        "GREENFETCH_CACHE_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    slow_before = _calls(estate.drs, f"{ACCOUNT}/eu-west-1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "greenfetch.cli",
            "drs-sync",
            "--targets-table",
            TARGETS,
            "--inventory-table",
            INVENTORY,
            "--role-name",
            "DRSInventoryReader",
            "--regions",
            "us-east-1,eu-west-1",
            "-c",
            "1",
            "--status-file",
            str(status),
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_until(
            lambda: _calls(estate.drs, f"{ACCOUNT}/eu-west-1") > slow_before or proc.poll() is not None,
            60,
            "the slow region's call (us-east-1 is done)",
        )
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signum)
        stdout, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert f"interrupted by {signal.Signals(signum).name} during the drs step" in err

    response = json.loads(stdout)
    assert response["statusCode"] == 207
    assert response["errors"][-1]["code"] == "Interrupted"
    assert response["totals"]["regions"] == 1 and response["totals"]["written"] == 0
    assert set(response["accounts"][0]["regions"]) == {"us-east-1"}

    document = json.loads(out.read_text())
    assert document["response"] == response
    assert [(s["region"], s["status"]) for s in document["statuses"]] == [("us-east-1", "ok")]
    assert len(document["records"]) == 2 and document["items"] == []
    stored = json.loads(status.read_text())["regions"]
    assert {(r["account"], r["region"], r["status"]) for r in stored} == {(ACCOUNT, "us-east-1", "ok")}
    assert estate.scan(INVENTORY) == []  # a stopped sync writes no half-built inventory


def test_interrupted_write_step_knows_which_items_were_sent(tmp_path, loopback):
    """Stopped in the write step, the sync knows the leading items whose windows were sent.

    The real engine against a loopback DynamoDB with 2 s per call: the first window (200 items, 8
    calls of 25) is answered, the second is in flight when the stop lands in the main greenlet the
    way cli._signals delivers SIGTERM."""
    import gevent
    import greenlet

    from greenfetch import Config, Engine
    from greenfetch.drs import write_inventory

    items = [{"sourceServerID": {"S": f"s-{n:05d}"}} for n in range(450)]
    progress: dict[str, int] = {}
    main = greenlet.getcurrent()
    loopback.control(latency=2.0)
    engine = Engine(Config.resolve({"endpoint_url": loopback.url, "region": "us-east-1", "max_attempts": 1}))

    def stop_in_second_window() -> None:
        wait_until(
            lambda: loopback.stats()["ok"] >= 8 and loopback.stats()["inflight"] >= 1,
            60,
            "the first window answered, the second in flight",
        )
        gevent.get_hub().loop.run_callback(main.throw, KeyboardInterrupt("SIGTERM"))

    watcher = gevent.spawn(stop_in_second_window)
    try:
        with pytest.raises(KeyboardInterrupt):
            write_inventory(
                engine, "drs-signals-write", items, dead_letter_dir=str(tmp_path), progress=progress
            )
    finally:
        watcher.kill()
        engine.close()
    assert progress["sent"] == 200
