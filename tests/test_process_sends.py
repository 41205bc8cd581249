"""processes=N: a request whose send to a worker process failed never reached it (the package docstring
of greenfetch._processes, "A child that dies..."), with real children against the real loopback server.

Both children are killed before the parent handles either death, and the order in which it then sees
them is made, not waited for: the test holds the run between two results (the parent handles its
children's messages only while the caller takes results), and under gevent the parent's sender runs
before its readers see a socket's end in the same turn of the loop. Waits poll a condition with a
deadline; no sleep makes the race happen.

What a real process cannot be made to do on cue (die while a batch to it is half sent, take a cut frame
alive) is tested at the pool's seam: a ``_Seam`` pool's children are the test's ends of real
socketpairs. There too, the rule as a Hypothesis property over any order of routing, sending, running,
killing and handling.
"""

import itertools
import os
import signal
import socket

import gevent
import gevent.queue
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from greenfetch import Config, Engine
from greenfetch._processes import ProcessPool, Router
from greenfetch._processes._state import LOST, RUNNING, UNREACHABLE, _Child, _Pending, _Run
from greenfetch._processes._wire import Begin, Channel, Gone, Took, reads_only
from greenfetch.testing import wait_until

# The held ones wait at the server until the test has killed the child that sent them.
HELD_READ = {"service": "dynamodb", "operation": "DescribeEndpoints"}
HELD_WRITE = {"service": "dynamodb", "operation": "UpdateTable", "params": {"TableName": "t"}}
QUICK = {"service": "dynamodb", "operation": "ListTables"}
LATE = {  # what the slow input gives last: routed to A after A died, before its death is handled
    "read": {"service": "dynamodb", "operation": "DescribeLimits"},
    "write": {"service": "dynamodb", "operation": "DeleteTable", "params": {"TableName": "t"}},
}


def _target(request) -> str:
    return f"DynamoDB_20120810.{request['operation']}"


def _per_target(loopback) -> dict[str, int]:
    return loopback.stats()["per_target"]


def _gone_queued(pool: ProcessPool, child) -> bool:
    """The child's reader has reported its end (the feeder's own end may be queued too: not a pair)."""
    return any(
        item[0] is child and isinstance(item[1], Gone) for item in pool.inbox.queue if isinstance(item, tuple)
    )


def _id(request) -> object:
    """A result's request: the Request a child built, or the caller's own mapping (a parent's answer)."""
    return request["id"] if isinstance(request, dict) else request.id


def _exited(pid: int) -> None:
    """Block this whole process (gevent's hub included) until ``pid`` has exited, without reaping it:
    its end of the channel is closed by then, and no reader of the parent has run to see it."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


@pytest.mark.skipif(not hasattr(os, "waitid"), reason="waits for a child's exit with waitid")
@pytest.mark.parametrize("late", ["write", "read"])
@pytest.mark.parametrize("a_holds", ["read", "write"])
def test_a_request_whose_send_failed_is_sent_on_as_never_sent(loopback, a_holds, late):
    """Children A and B are killed, each with a call held at the server (B's a read), and a late
    request is routed to A after its death, before the parent handles it: its send fails. Handling A's
    death routes what it holds (a read) and the late one to B, dead too: that send fails as well. Only
    then is B's death handled. The late request never reached a child, nor did A's read a second time:
    a replacement runs them and B's read, each once, all OK. A write A held may have run: WorkerLost.

    main's code answered the late write "may have run" and the late read (or A's) "sent again once,
    and this one was": a failed send counted as a send."""
    held = {"read": HELD_READ, "write": HELD_WRITE}[a_holds]
    loopback.control(latency=0.01, targets={_target(r): {"latency": 60.0} for r in (held, HELD_READ)})
    engine = Engine(
        Config.resolve(
            {"region": "us-east-1", "endpoint_url": loopback.url, "max_attempts": 1, "processes": 2}
        )
    )
    pool = ProcessPool(engine, 2)
    handled = []  # each child's state as the parent began to handle its death
    handle = pool._child_lost
    pool._child_lost = lambda run, child: (handled.append((child, child.state)), handle(run, child))[1]
    more = gevent.queue.Queue()

    def requests():
        yield from ({**held, "id": 0}, {**HELD_READ, "id": 1}, {**QUICK, "id": 2})
        yield more.get()  # the input is slow, as a pipe into `greenfetch batch -` may be

    try:
        stream = pool.run(requests(), 4)
        results = [next(stream)]  # the quick one; the parent handles nothing more until the next take
        a, b = pool.children
        assert results[0].index == 2 and results[0].ok
        assert (a.outstanding, b.outstanding) == ({0}, {1})  # the least loaded took each
        wait_until(lambda: sum(_per_target(loopback).values()) == 3, 20, "both held by the server")
        loopback.control(targets={})  # whatever comes after them is answered at once

        os.kill(a.proc.pid, signal.SIGKILL)
        wait_until(lambda: a.proc.poll() is not None and _gone_queued(pool, a), 20, "A's end reported")
        more.put({**LATE[late], "id": 3})  # the least loaded is A still
        wait_until(lambda: a.state is UNREACHABLE, 20, "the late request's send to A failed")

        os.kill(b.proc.pid, signal.SIGKILL)
        _exited(b.proc.pid)
        assert not _gone_queued(pool, b)
        results += list(stream)
    finally:
        pool.close()
        engine.close()

    assert [r.index for r in sorted(results, key=lambda r: r.index)] == [0, 1, 2, 3]
    assert [_id(r.request) for r in sorted(results, key=lambda r: r.index)] == [0, 1, 2, 3]
    failed = {r.index: r.error for r in results if not r.ok}
    if a_holds == "read":
        assert failed == {}
    else:
        assert list(failed) == [0] and "the request may have run, so it was not sent again" in failed[0]
    calls = _per_target(loopback)
    assert calls[_target(LATE[late])] == 1  # it ran once, in the replacement
    assert calls[_target(HELD_READ)] == (4 if a_holds == "read" else 2)  # in A or B, then once again
    replacement = (pool.answered.keys() - {a.proc.pid, b.proc.pid}).pop()
    assert pool.answered == {a.proc.pid: 1, replacement: 3 if a_holds == "read" else 2}  # A ran the quick one
    assert handled == [(a, UNREACHABLE), (b, UNREACHABLE)]  # B's send failed before its death was handled


def test_a_resend_a_dying_child_never_read_is_not_its_resend(loopback):
    """A is killed with a read in flight; its resend is written into B's socket while B is stopped
    (SIGSTOP: it cannot read), then B is killed. The send succeeded, but B never acknowledged the frame
    (``Took``, sent before a child queues a frame's rows), so the read never ran there: a replacement
    runs it. Without the acknowledgement it came back WorkerLost ("sent again once, and this one was").
    Two children killed at once hit this whenever the resend lands before the second one's socket
    closes (a killed process closes its files last, after its memory)."""
    loopback.control(latency=0.01, targets={_target(HELD_READ): {"latency": 60.0}})
    engine = Engine(
        Config.resolve(
            {"region": "us-east-1", "endpoint_url": loopback.url, "max_attempts": 1, "processes": 2}
        )
    )
    pool = ProcessPool(engine, 2)
    try:
        stream = pool.run([{**HELD_READ, "id": 0}, {**HELD_READ, "id": 1}], 4)
        taking = gevent.spawn(list, stream)
        wait_until(
            lambda: len(pool.children) == 2 and _per_target(loopback).get(_target(HELD_READ)) == 2,
            20,
            "both reads held by the server",
        )
        a, b = pool.children
        loopback.control(targets={})
        os.kill(b.proc.pid, signal.SIGSTOP)
        os.kill(a.proc.pid, signal.SIGKILL)
        wait_until(lambda: 0 in b.outstanding and not b.buffer, 20, "A's read sent on to B")
        os.kill(b.proc.pid, signal.SIGKILL)
        results = taking.get(timeout=60)
    finally:
        pool.close()
        engine.close()
    assert sorted(r.index for r in results) == [0, 1]
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]


# -- at the pool's seam: a child is the other end of a real socketpair, held by the test ---------------

_pids = itertools.count(-1, -1)  # the stand-ins' pids: no real process has one


class _Process:
    """What the pool reads of a child's process: its pid, and that it has ended (or not yet)."""

    def __init__(self):
        self.pid, self.returncode = next(_pids), None

    def poll(self):
        return self.returncode

    def wait(self, timeout=None):
        return self.returncode

    def kill(self):
        self.returncode = -9


class _Seam(ProcessPool):
    """The pool, each child's process replaced by the test holding the other end of its channel
    (``far``, by the stand-in's pid); the test's own greenlet ships, reads and handles deaths."""

    def _spawn(self, slot: int) -> _Child:
        parent, far = socket.socketpair()
        child = _Child(slot, _Process(), Channel(parent), self.backend.semaphore(1), state=RUNNING)
        self.far = {**getattr(self, "far", {}), child.proc.pid: far}
        child.reader = self.backend.spawn(self._read, child)
        return child

    def kill(self, child: _Child) -> None:
        self.far[child.proc.pid].close()
        child.proc.kill()

    def close(self) -> None:
        for far in self.far.values():
            far.close()
        super().close()


@pytest.fixture(scope="module")
def seam_engine():
    engine = Engine(Config.resolve({"region": "us-east-1", "processes": 2}))
    yield engine
    engine.close()


@pytest.fixture
def seam(seam_engine):
    pool = _Seam(seam_engine, 2)
    yield pool
    pool.close()


def _queue_big(pool: _Seam, operation: str) -> tuple[_Run, _Pending]:
    """A run with one request routed to child A, too big for the socket's buffer: its send to A blocks
    part way (the test's end does not read) until that end reads or closes."""
    run = _Run(Router(2, 4), Begin(2), None, respawns=0)
    raw = {"service": "dynamodb", "operation": operation, "params": {"TableName": "t" * 4_000_000}}
    run.pending[0] = pending = _Pending(raw)
    pool._dispatch(run, 0, pending)
    assert pending.child is pool.children[0] and pending.sends == 1
    return run, pending


def _answers(pool: _Seam) -> list:
    """The parent's own answers (WorkerLost, no worker left), queued for the run's loop."""
    return [item[1] for item in list(pool.inbox.queue) if isinstance(item, tuple) and item[0] is None]


@pytest.mark.parametrize("operation", ["DescribeTable", "DeleteTable"])
def test_a_childs_death_handled_mid_send_waits_for_the_sends_verdict(seam, operation):
    """A dies while a batch to it is half sent, and the parent handles its death before the sender has
    seen the send fail. The batch never reached A: it goes to B once, as never sent (no resend used,
    no "may have run"). Without waiting for the send, the death's handling counted the row as sent
    (resent a read, failed a write) and the failed send then sent it on again: a read queued twice in
    B, a write failed as WorkerLost and sent to B all the same."""
    a, b = seam.children
    run, pending = _queue_big(seam, operation)
    sender = gevent.spawn(seam._send_batch, run, a)
    wait_until(lambda: not a.buffer, 10, "the sender to take A's batch")  # and block part way through it
    seam.kill(a)  # A dies with its frame cut
    seam._child_lost(run, a)  # at once: the sender has not run since
    sender.get(timeout=10)  # it ended cleanly: what it sent and what was handled agree
    assert [row[0] for row in b.buffer] == [0]
    assert (pending.child, pending.sends) == (b, 1)
    assert _answers(seam) == []


def test_a_send_cut_short_to_a_live_child_ends_its_channel(seam):
    """A send that fails with the child alive (here its socket's timeout; the test's end never reads)
    leaves it a cut frame, which it never unpickles, so it ran nothing of the batch; its channel is
    ended, so the child sees end of file (a real child exits on it) and its death is handled as any."""
    a, b = seam.children
    run, pending = _queue_big(seam, "DeleteTable")
    a.channel.sock.settimeout(0.05)
    seam._send_batch(run, a)
    assert a.state is UNREACHABLE and a.outstanding == {0}
    far, got = seam.far[a.proc.pid], b""
    far.settimeout(10)  # bounds a failing test: a timeout here is a channel never ended
    while chunk := far.recv(1 << 20):
        got += chunk
    assert 0 < len(got) < 4_000_000  # part of the frame, then the end: nothing to unpickle, nothing run
    seam._child_lost(run, a)
    assert [row[0] for row in b.buffer] == [0] and (pending.child, pending.sends) == (b, 1)
    assert _answers(seam) == []


# -- the rule as a property, at the seam ---------------------------------------------------------------

_KINDS = {"read": QUICK, "write": LATE["write"]}
_STEPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["add", "ship"]), st.sampled_from(sorted(_KINDS))),
        st.tuples(st.sampled_from(["run", "kill", "die", "handle"]), st.integers(0, 3)),
    ),
    max_size=40,
)


def _run_frames(
    pool: _Seam, run: _Run, child: _Child, ran: dict[int, list[int]], readers: dict[int, Channel]
) -> None:
    """The child reads every whole frame it was sent, acknowledges it (the parent handles its
    ``Took``), then runs its rows; a part of a frame stays unread."""
    far = pool.far[child.proc.pid]
    far.settimeout(0)
    channel = readers.setdefault(child.proc.pid, Channel(far))
    while True:
        try:
            rows = channel.recv().items
        except EOFError:  # nothing more whole for now, or its channel was ended
            return
        pool._handle(run, child, Took())
        for row in rows:
            ran.setdefault(row[0], []).append(child.proc.pid)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_STEPS)
# a read run by A, then by B, both killed: it used its one resend (WorkerLost, not a third run)
@example(
    steps=[
        ("add", "read"),
        ("ship", ""),
        ("kill", 0),
        ("handle", 0),
        ("ship", ""),
        ("kill", 0),
        ("handle", 0),
    ]
)
# a write A took, then A killed: it may have run (WorkerLost, never sent on)
@example(steps=[("add", "write"), ("ship", ""), ("kill", 0), ("handle", 0), ("ship", ""), ("run", 0)])
def test_no_request_runs_more_than_its_kind_allows_and_none_is_lost(seam_engine, steps):
    """Requests (reads, writes) routed, shipped, read (acknowledged, then run) by their children,
    children killed (after reading all they were sent: the most they can have run) or dying (reading
    nothing more), and their deaths handled, in any order.
    Then a write ran in at most one child, a read in at most two; each parent's answer is given once,
    and WorkerLost says as many runs as there were ("may have run": one, a read "sent again once":
    two); every request not answered is held by exactly one child not given up on, the one it was last
    routed to; and its sends count the children that ran it, plus one while its latest send is to come
    (queued, or failed: never received)."""
    pool = _Seam(seam_engine, 2)
    run = _Run(Router(2, 4), Begin(2), None, respawns=2)
    ran: dict[int, list[int]] = {}
    readers: dict[int, Channel] = {}
    try:
        for action, arg in steps:
            if action == "add":
                index = len(run.pending)
                run.pending[index] = pending = _Pending({**_KINDS[arg], "id": index})
                pool._dispatch(run, index, pending)
                continue
            if action == "ship":  # as the sender does, each child that has some queued
                for child in [c for c in pool.children if c.buffer]:
                    pool._send_batch(run, child)
                continue
            everyone = pool.children + pool.retired
            alive = [c for c in everyone if c.proc.returncode is None]
            unhandled = [c for c in everyone if c.proc.returncode is not None and c.state is not LOST]
            candidates = unhandled if action == "handle" else alive  # the i-th that the step can act on
            if not candidates:
                continue
            child = candidates[arg % len(candidates)]
            if action == "handle":
                pool._child_lost(run, child)
                continue
            if action != "die":  # "kill": it reads (and runs) all it was sent first; "die": nothing more
                _run_frames(pool, run, child, ran, readers)
            if action != "run":
                pool.kill(child)
        everyone = pool.children + pool.retired
        queued = [row[0] for c in everyone for row in c.buffer] + [i for c in everyone for i in c.unsent]
        assert len(queued) == len(set(queued)), queued  # a request waits to be sent in one place at most
        answers = _answers(pool)
        answered = {r.index: r.error for r in answers}
        assert len(answered) == len(answers)
        for index, pending in run.pending.items():
            runs = ran.get(index, [])
            assert len(runs) <= (2 if reads_only(pending.raw) else 1), (index, ran)
            assert len(runs) == len(set(runs)), (index, ran)  # no child got it twice
            assert pending.sends <= (2 if reads_only(pending.raw) else 1), (index, pending.sends)
            if index in answered:
                why = answered[index]
                if "no worker process is left" in why:  # never sent, or a read's resend
                    assert len(runs) == (1 if reads_only(pending.raw) and pending.sends == 1 else 0), why
                else:
                    assert len(runs) == (1 if "may have run" in why else 2), why
                continue
            holders = [c for c in everyone if c.state is not LOST and index in c.outstanding]
            assert holders == [pending.child], (index, holders)
            received = pending.child.proc.pid in runs
            assert pending.sends == len(runs) + (0 if received else 1), (index, pending.sends, runs)
    finally:
        pool.close()
