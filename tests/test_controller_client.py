"""The controller against a CPU-bound client in simulated time (``_simservers.CpuClient``): the bench's
primitives section (issue 24), and the rules that let a fast server's batches keep up with fixed 128.

``CpuClient`` is gevent's hub as one CPU with a run queue (0.5 ms of CPU a call: about 2,000 calls/s,
the loopback fast server's client), its load read by the real ``ClientLoad``. ``python
tests/_simservers.py 5`` prints the five cases for seeds 1-5 and five machine profiles; the numbers
before and after the rule changes are in docs/performance/adaptive.md. Budget: ~3 s.
"""

import pytest
from _simservers import (
    PROFILES,
    Bucket,
    Clock,
    CpuClient,
    Flat,
    LinearPlateau,
    SquareKnee,
    five_cases,
    simulate,
    simulate_client,
)

from greenfetch._controller import Controller, Settings


def test_the_benchs_five_cases_on_a_cpu_bound_client():
    """Fresh: 5,000 calls from 5 can reach 0.94x fixed 128 at 2,000 calls/s (a ramp that doubles per
    round trip spends ~3.5 round trips under the client's own limit); after a slower run, 1,500 calls:
    0.87-0.93x before a faster period was found a round trip in (0.92-0.93 now); and no loss on the
    plateau, cliff and token bucket."""
    got = five_cases(CpuClient(**PROFILES["quiet"]))
    assert got["fresh"] >= 0.93
    assert got["after"] >= 0.92
    assert got["plateau"] >= 0.97 and got["plateau p99"] <= 2.0
    assert got["cliff"] >= 0.92 and got["cliff p99"] <= 2.0 and got["cliff peak"] <= 2.6
    assert got["bucket"] >= 0.85 and got["throttled"] <= 0.05


def _rounds(ctl, clock, latency, rounds, load=0.0):
    """Round trips at ``latency``, each a full limit of answers sent after the last came back."""
    for _ in range(rounds):
        limit = int(ctl.limit)
        clock.now += latency
        for _ in range(limit):
            ctl.sample(latency, inflight=limit, load=load)


def _after_a_slower_period():
    """A scope that learned a slower server (100 ms, a plateau at 32): its limit, baseline and knee;
    the last window still open with answers of that server in it, when the next batch begins."""
    clock = Clock()
    ctl = Controller(Settings(max=128), clock)
    simulate(LinearPlateau(s=0.1), duration=5, controller=ctl)
    assert not ctl.slow_start and ctl.baseline >= 0.09 and ctl.limit <= 48
    clock.now += 0.1
    for _ in range(19):  # a window's worth but for one, sent in it
        ctl.sample(0.1, inflight=int(ctl.limit))
    ctl.reconfigure(Settings(max=128))  # the next batch (``Limits.open``)
    return ctl, clock


def test_a_faster_period_is_found_a_round_trip_in():
    """The next batch meets a 50 ms server. Its first 20 answers say the period is faster: slow start
    resumes from the learned limit at once. Before, the window they fell in was the last batch's (19
    answers of the slower server in it) and at least a baseline long (100 ms: two round trips here)."""
    ctl, clock = _after_a_slower_period()
    learned = ctl.limit
    clock.now += 0.05
    for _ in range(20):
        ctl.sample(0.05, inflight=int(ctl.limit))
    assert ctl.slow_start and ctl.baseline == pytest.approx(0.05)
    _rounds(ctl, clock, 0.05, 1)
    assert ctl.limit >= 1.9 * learned


def test_a_saturated_client_finds_a_faster_period_too():
    """The same, with the client saturated (load 1: on a loaded machine its hub is always runnable).
    Saturation only adds latency, so answers well under the baseline still say "faster". Before, a
    saturated window never looked, and grew 10% a window up to the knee the slower server showed:
    the limit stayed where that server's knee was (the bench's 0.67-0.70x after a slower run)."""
    ctl, clock = _after_a_slower_period()
    learned = ctl.limit
    _rounds(ctl, clock, 0.05, 4, load=1.0)
    assert ctl.limit >= 3 * learned and ctl.baseline == pytest.approx(0.05)


def _feed(ctl, clock, latency, seconds):
    """An answer every ms at ``latency``, the limit in flight."""
    for _ in range(int(seconds / 0.001)):
        clock.now += 0.001
        ctl.sample(latency, inflight=int(ctl.limit))


def test_slow_start_outlasts_one_window_of_its_own_burst():
    """In slow start every answer sends two requests, in bursts a round trip apart: near its own limit
    the client queues its own answers for a window (+12% here) and the next window is flat again.
    Before, that first rise ended slow start (at 66-68 of the 128 fixed runs at, 1.3% of a 5,000-call
    batch); now it ends on a rise that lasts two windows (or on slow answers past 1.5x, as before)."""
    clock = Clock()
    ctl = Controller(Settings(initial=40, max=1000), clock)
    _feed(ctl, clock, 0.05, 0.3)
    assert ctl.slow_start
    _feed(ctl, clock, 0.056, 0.06)  # one window
    _feed(ctl, clock, 0.05, 0.3)
    assert ctl.slow_start and ctl.trace[-5].latency == pytest.approx(0.056)
    grown = ctl.limit
    _feed(ctl, clock, 0.056, 0.3)  # a rise that lasts: the server's
    assert not ctl.slow_start and ctl.limit < grown + 0.2 / 0.001


def test_a_short_stall_is_held_but_does_not_make_an_answer_ours():
    """The watcher woke 10 ms late (a neighbour held the CPU): ``held`` counts it for a 50 ms answer
    (slow start reads the answer less it), ``stalled`` does not (load 1 needs a stall of an interval
    or more: the watcher is a few ms late whenever the hub has work queued). Before, ``held`` too
    counted only stalls of 25 ms or more."""
    from greenfetch._clientload import ClientLoad

    clock = Clock(10.0)
    load = ClientLoad(interval=0.025, clock=clock)
    load.measured(began=9.965, wall=0.035, used=0.035, ran=0.0)  # due at 9.99, woke at 10.0
    load._due = 10.025
    assert load.held(10.02, 0.05) == pytest.approx(0.010)
    assert not load.stalled(10.02, 0.05) and load.held(10.02, 0.05, load.interval) == 0.0
    load.measured(began=10.0, wall=0.06, used=0.06, ran=0.0)  # 35 ms late: a stall
    assert load.stalled(10.07, 0.05)


def test_a_stall_under_a_fifth_of_a_round_trip_does_not_end_the_ramp():
    """A loaded machine (neighbours hold the CPU 30% of the time, stalls of 15 ms on average): one of
    20-25 ms in the ramp's third round trip made three 50 ms answers 75 ms. Not counted as a stall
    (under 25 ms), it ended slow start at 12 with that as the knee: 0.57x fixed 128 on 5,000 calls."""
    client = CpuClient(seed=7, **PROFILES["loaded"])
    fixed = simulate_client(Flat(seed=7), client, fixed=128, calls=5000)
    run = simulate_client(Flat(seed=7), client, Settings(max=128), calls=5000)
    assert fixed.finished / run.finished >= 0.9


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_slow_server_on_a_crowded_machine_is_cut(seed):
    """The Nushell "adaptive slow falls" scenario on a machine whose neighbours hold the CPU (load
    0.95-1.0 at a CPU share of 0.03-0.2): 150 calls of a 200 ms server from 20 against a 100 ms
    target, min 10. Before, every window read saturated and the limit never left 20."""
    client = CpuClient(seed=seed, **PROFILES["crowded"])
    config = Settings(initial=20, target_latency=0.1, min=10)
    run = simulate_client(Flat(s=0.2, seed=seed), client, config, calls=150)
    assert max(p.load for p in run.controller.trace) >= 0.95  # the profile is what it says
    assert min(limit for _, limit in run.limits) < 20


def test_the_target_is_a_ceiling_on_a_crowded_machine_too():
    """The 100 ms cliff (C=32) on the ``crowded`` profile: slow start overshoots to 128 (4x C, latency
    1.6 s), and the windows read saturated (load 1) at CPU 0.03-0.1: the target (0.5 s) cuts them
    two windows running. Before, nothing but a timeout cut: 0.26x the best fixed, p99 17x the no-load
    latency; now 0.47x, and the answers of the last 2 s under the target (a Vegas cut needs an idle
    or busy window: a load of 1 at a small CPU share is also what a CPU-bound client at its fair share
    of a CPU reads, and cutting that on Vegas cost the fast server half its throughput)."""
    client = CpuClient(**PROFILES["crowded"])
    run = simulate_client(SquareKnee(s=0.1), client, Settings(max=128), duration=6)
    assert (
        max(p.cpu for p in list(run.controller.trace)[5:]) < 0.5 < min(p.load for p in run.controller.trace)
    )
    assert run.p99(4) <= 0.5 and run.ok_rate(2, 6) >= 0.4 * 320


@pytest.mark.parametrize("seed", [1, 2])
def test_a_low_token_bucket_does_not_collapse_the_rate(seed):
    """A 20/s bucket met at 64 in flight (a limit carried over), throttles retried as botocore does:
    the first throttles come back before any accepted answer (2 ms against 50 ms) and each brings an
    unpaced retry. Before, the cap read "0 accepted, ~28 retries to come", fell to 0.5/s, and each
    later throttle (of an unpaced retry) held it there for 12-14 s: 0.65-0.71x R from 5 s. Now a cut
    made with nothing accepted is no ceiling for the next one (a round trip later), the retries
    still to come are the throttles not yet retried, the accepted rate is read over a second when a
    round trip holds under 10 answers, and the cap never falls under half the accepted rate."""
    config = Settings(initial=64, max=128)
    run = simulate_client(Bucket(rate=20, seed=seed), CpuClient(seed=seed), config, duration=15)
    low = [p.time for p in run.controller.trace if p.rate is not None and p.rate < 0.2 * 20]
    assert not low or max(low) - min(low) < 0.5  # the cut made blind (raised by the answers that come)
    assert run.ok_rate(5, 15) >= 0.85 * 20 and run.throttled(5) <= 0.06


@pytest.mark.parametrize(
    ("profile", "seed"), [("loaded", 1), ("loaded", 20), ("loaded", 33), ("runnable", 24)]
)
def test_the_cliff_on_a_loaded_machine_is_not_overshot_past_the_warm_up(profile, seed):
    """The bench's knee server (100 ms, C=32), 6 s counted from 2 s, on a machine whose neighbours
    stall the client: one run in four read mean limit 30.7 at 0.77x the best fixed and p99 5x. The
    seeds that did it here, before: 0.85x / p99 6.9x (a 48 ms stall while the requests sat at the
    server made their slow answers "ours": slow start ran on to 125), 0.82x / 4.7x (the answers a
    63 ms stall held came at once: 40 -> 80 in flight, and slow start's exit took 72), 0.36x / 17x
    and 0.62x / 16x (stalls made every window of the ramp saturated, so no baseline was set and
    slow start ran to 128; the first baseline read 0.9 s)."""
    client = CpuClient(seed=seed, **PROFILES[profile])
    best = simulate_client(SquareKnee(s=0.1, seed=seed), client, fixed=32, duration=6).ok_rate(2, 6)
    run = simulate_client(SquareKnee(s=0.1, seed=seed), client, Settings(max=128), duration=6)
    assert run.ok_rate(2, 6) >= 0.9 * best
    assert run.p99(2) <= 2.6 * 0.1


def test_a_faster_periods_slow_start_does_not_end_on_the_slower_periods_answers():
    """After 600 calls on the slower plateau (100 ms, C=32), 1,500 on the fast server (loaded seed 12):
    answers sent before the faster period was found came back slow against its new baseline, and
    ended the new slow start at the flat answers of the slower period's round trip (32, a knee
    the saturated windows then never grew past: 0.55x fixed 128, on the rules before this check)."""
    client = CpuClient(seed=12, **PROFILES["loaded"])
    clock = Clock()
    ctl = Controller(Settings(max=128), clock)
    simulate_client(LinearPlateau(s=0.1, seed=12), client, controller=ctl, clock=clock, calls=600)
    fixed = simulate_client(Flat(seed=12), client, fixed=128, calls=1500)
    ctl.reconfigure(Settings(max=128))
    after = simulate_client(Flat(seed=12), client, controller=ctl, clock=clock, calls=1500)
    assert fixed.finished >= 0.85 * after.finished


def test_a_cuts_draining_queue_does_not_cut_again():
    """The plateau (100 ms, C=32) on a neighbour-loaded machine (runnable seed 31): slow start ran
    to 128, its exit went back to 38, and the answer of a request sent then, while the 128 were
    still at the server (400 ms), read by Little's law with the 38 in flight at its return gave a
    knee of 12: three seconds of regrowth, 0.84x the best fixed. A window that saw more in flight
    than the limit reads a queue a cut already removed: it holds."""
    client = CpuClient(seed=31, **PROFILES["runnable"])
    best = simulate_client(LinearPlateau(s=0.1, seed=31), client, fixed=32, duration=6).ok_rate(2, 6)
    run = simulate_client(LinearPlateau(s=0.1, seed=31), client, Settings(max=128), duration=6)
    assert run.ok_rate(2, 6) >= 0.95 * best
