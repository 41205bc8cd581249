"""processes=N: a request whose send to a worker process failed never reached it (the package docstring
of greenfetch._processes, "A child that dies..."), with real children against the real loopback server.

Both children are killed before the parent handles either death, and the order in which it then sees
them is made, not waited for: the test holds the run between two results (the parent handles its
children's messages only while the caller takes results), and under gevent the parent's sender runs
before its readers see a socket's end in the same turn of the loop. Waits poll a condition with a
deadline; no sleep makes the race happen.
"""

import os
import signal

import gevent.queue
import pytest

from greenfetch import Config, Engine
from greenfetch._processes import ProcessPool
from greenfetch._processes._state import UNREACHABLE
from greenfetch._processes._wire import Gone
from greenfetch.testing import wait_until

pytestmark = pytest.mark.skipif(not hasattr(os, "waitid"), reason="waits for a child's exit with waitid")

HELD = "DynamoDB_20120810.DescribeEndpoints"
READ = {"service": "dynamodb", "operation": "DescribeEndpoints"}  # held by the server until set free
QUICK = {"service": "dynamodb", "operation": "ListTables"}
WRITE = {"service": "dynamodb", "operation": "DeleteTable", "params": {"TableName": "t"}}


def _per_target(loopback) -> dict[str, int]:
    return loopback.stats()["per_target"]


def _gone_queued(pool: ProcessPool, child) -> bool:
    """The child's reader has reported its end (the feeder's own end may be queued too: not a pair)."""
    return any(
        item[0] is child and isinstance(item[1], Gone) for item in pool.inbox.queue if isinstance(item, tuple)
    )


def _exited(pid: int) -> None:
    """Block this whole process (gevent's hub included) until ``pid`` has exited, without reaping it:
    its end of the channel is closed by then, and no reader of the parent has run to see it."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


def test_a_request_whose_send_failed_is_sent_on_as_never_sent(loopback):
    """Child A is killed with a read in flight; a write routed to it before its death is handled fails
    to send. Child B is killed with a read in flight too. Handling A's death sends its read and the
    write to B, whose send fails (B is dead, its death not yet handled). They never reached a child:
    once B's death is handled a replacement runs all three and B's own read, each exactly once. They
    came back WorkerLost: the read as "sent again once, and this one was", the write as "may have run"."""
    loopback.control(latency=0.01, targets={HELD: {"latency": 60.0}})
    engine = Engine(
        Config.resolve(
            {"region": "us-east-1", "endpoint_url": loopback.url, "max_attempts": 1, "processes": 2}
        )
    )
    pool = ProcessPool(engine, 2)
    later = gevent.queue.Queue()

    def requests():
        yield from ({**READ, "id": 0}, {**READ, "id": 1}, {**QUICK, "id": 2})
        yield later.get()  # the input is slow, as a pipe into `greenfetch batch -` may be

    try:
        stream = pool.run(requests(), 4)
        results = [next(stream)]  # the quick one; the parent handles nothing more until the next take
        a, b = pool.children
        assert results[0].index == 2 and results[0].ok
        assert (a.outstanding, b.outstanding) == ({0}, {1})  # the least loaded took each read
        wait_until(lambda: _per_target(loopback).get(HELD) == 2, 20, "both reads held by the server")
        loopback.control(targets={})  # what comes after them is answered at once

        os.kill(a.proc.pid, signal.SIGKILL)
        wait_until(lambda: a.proc.poll() is not None and _gone_queued(pool, a), 20, "A's end reported")
        later.put({**WRITE, "id": 3})  # routed to A (the least loaded, its death not yet handled)
        wait_until(lambda: a.state is UNREACHABLE, 20, "the write's send to A failed")
        assert _per_target(loopback).get("DynamoDB_20120810.DeleteTable") is None

        os.kill(b.proc.pid, signal.SIGKILL)
        _exited(b.proc.pid)
        assert not _gone_queued(pool, b)
        results += list(stream)
    finally:
        pool.close()
        engine.close()

    assert sorted(r.index for r in results) == [0, 1, 2, 3]
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert [r.request.id for r in sorted(results, key=lambda r: r.index)] == [0, 1, 2, 3]
    calls = _per_target(loopback)
    assert calls["DynamoDB_20120810.DeleteTable"] == 1  # the write ran once, in the replacement
    assert calls[HELD] == 4  # each read in A or B, then once again in the replacement
    replacement = (pool.answered.keys() - {a.proc.pid, b.proc.pid}).pop()
    assert pool.answered == {a.proc.pid: 1, replacement: 3}  # A ran the quick one before it was killed
