"""The pure adaptive controller in simulated time, against a family of server models, and its rules.

Servers (``_simservers``): flat (no knee), a cliff knee (the loopback server's latency x (n/C)^2, and C
FIFO workers), a linear plateau, token buckets, latency that drifts during the run, a noisy server,
and a CPU-bound client. Each run is 20 simulated seconds with infinite demand (steady state from 5 s)
unless it is a finite batch; the asserted ranges are issue 13's targets. Budget: ~5 s.
"""

import pytest
from _simservers import Bucket, Clock, Drifting, FifoKnee, Flat, LinearPlateau, Noisy, SquareKnee, simulate
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfetch._controller import Controller, RateCap, Settings

S = 0.05  # the simulated servers' no-load latency
JITTER = 1.1  # their own +-10% latency jitter


# -- the family of servers ---------------------------------------------------------------------------


@pytest.mark.parametrize("server, share", [(SquareKnee, 0.9), (FifoKnee, 0.92), (LinearPlateau, 0.92)])
def test_knee_and_plateau_servers_hold_near_the_knee(server, share):
    """Past a cliff (SquareKnee) throughput *falls*, so the queue the controller holds to see the
    knee costs more there: 0.90-0.93 of the best fixed in simulation, 0.97-0.99 on the others."""
    best = simulate(server(), fixed=32)  # the best fixed concurrency (the knee, C=32)
    run = simulate(server())
    assert run.ok_rate(5, 20) >= share * best.ok_rate(5, 20)
    assert run.p99(5) <= 2 * S * JITTER  # within 2x the no-load latency
    mean, cv = run.limit_stats(5)
    assert 30 <= mean <= 40 and cv <= 0.2  # near C, not probing past it
    assert run.windows_to(0.9 * run.ok_rate(5, 20)) <= 20


def test_fixed_concurrency_past_the_knee_only_adds_latency():
    """What the plateau controller must tell apart: past C, more in flight gives no more throughput."""
    at_knee, beyond = simulate(LinearPlateau(), fixed=32), simulate(LinearPlateau(), fixed=128)
    assert beyond.ok_rate(5, 20) <= at_knee.ok_rate(5, 20) * 1.02
    assert beyond.p99(5) > 3 * at_knee.p99(5)


@pytest.mark.parametrize("rate, burst", [(200, None), (200, 5), (50, None), (1000, None)])
def test_token_bucket_keeps_throttles_under_5_percent_at_85_percent_of_the_rate(rate, burst):
    run = simulate(Bucket(rate=rate, burst=burst))
    assert run.ok_rate(5, 20) >= 0.85 * rate
    assert run.throttled(5) <= 0.05
    assert (
        run.controller.rate is not None and 0.8 * rate <= run.controller.rate <= 1.3 * rate
    )  # mid-probe at the end


def test_a_raised_quota_is_found_again():
    server = Bucket(rate=100)
    first = simulate(server, duration=10)
    server.rate = server.burst = 300  # the quota went up: no more throttles until the rate finds it
    run = simulate(server, duration=20, controller=first.controller)
    assert run.ok_rate(10, 20) >= 0.85 * 300
    assert run.throttled(10) <= 0.05


def test_flat_server_reaches_max_in_a_few_round_trips():
    fixed_max = simulate(Flat(), fixed=256, duration=8)
    run = simulate(Flat(), duration=8)
    assert run.ok_rate(2, 8) >= 0.95 * fixed_max.ok_rate(2, 8)
    assert run.windows_to(0.9 * fixed_max.ok_rate(2, 8)) <= 8  # slow start: doubling per round trip


def test_drifting_latency_is_followed():
    """Service time 50 -> 100 ms over 20 s on a plateau of C=32: the knee stays at 32 in flight, the
    baseline has to follow (re-measured every few seconds) or the limit sinks with the drift."""
    fixed = simulate(Drifting(), fixed=32)
    run = simulate(Drifting())
    assert run.ok_rate(5, 20) >= 0.9 * fixed.ok_rate(5, 20)
    assert run.p99(5) <= 1.5 * fixed.p99(5)


def test_noisy_server_does_not_chase_its_own_noise():
    """Log-normal latency (sigma 0.3): a baseline from the luckiest window would read every other
    window as queueing and sink the limit."""
    fixed = simulate(Noisy(), fixed=32)
    run = simulate(Noisy())
    assert run.ok_rate(5, 20) >= 0.85 * fixed.ok_rate(5, 20)
    assert run.p99(5) <= 1.5 * fixed.p99(5)


def test_latency_doubling_does_not_pin_the_limit_at_the_floor():
    """A slower service (not our load) is re-measured: throughput comes back to the new C / S."""
    server = FifoKnee()
    first = simulate(server, duration=10)
    server.s = 0.1
    run = simulate(server, duration=30, controller=first.controller)
    assert run.ok_rate(10, 20) >= 0.9 * 32 / 0.1


def test_capacity_drop_then_recovery():
    server = FifoKnee()
    first = simulate(server, duration=10)
    server.free = sorted(server.free)[:8]  # 32 workers -> 8
    run = simulate(server, duration=20, controller=first.controller)
    assert run.ok_rate(5, 20) >= 0.9 * 8 / S
    assert run.p99(5) <= 2.2 * S


@pytest.mark.parametrize("cpu", [0.001, 0.002])
def test_short_batch_on_a_cpu_bound_client(cpu):
    """1,500 calls against a fast server from 5 (max 128), the client spending ``cpu`` s per answer:
    cold, slow start pays a few round trips; warm (the learned limit carried over), nothing."""
    fixed = simulate(Flat(), fixed=128, calls=1500, cpu=cpu)
    clock = Clock()
    ctl = Controller(Settings(max=128), clock)
    cold = simulate(Flat(), calls=1500, cpu=cpu, controller=ctl, clock=clock)
    warm = simulate(Flat(), calls=1500, cpu=cpu, controller=ctl, clock=clock)
    assert fixed.finished / cold.finished >= 0.9
    assert fixed.finished / warm.finished >= 0.97


# -- the rules -------------------------------------------------------------------------------------


def test_slow_start_doubles_per_round_trip_and_stops_at_the_first_rise():
    clock = Clock()
    ctl = Controller(Settings(initial=4, max=1000), clock)
    for _ in range(3):  # three round trips of answers at no load, each sent after the last
        limit = int(ctl.limit)
        clock.now += 0.05
        for _ in range(limit):
            ctl.sample(0.05, inflight=limit)
    assert ctl.limit == 32 and ctl.slow_start
    for _ in range(3):
        clock.now += 0.08
        for _ in range(40):
            ctl.sample(0.08, inflight=int(ctl.limit))  # latency rose 60%: leave slow start, cut
    assert not ctl.slow_start and ctl.limit < 64


def test_slow_start_never_grows_on_answers_slower_than_the_target():
    """A server that is flat but already over the target (200 ms against 100 ms): the limit must not
    grow first and come down later, or a short batch is dispatched whole above the target."""
    clock = Clock()
    ctl = Controller(Settings(initial=20, target_latency=0.1, min=10, max=256), clock)
    for _ in range(3):
        clock.now += 0.2
        for _ in range(20):
            ctl.sample(0.2, inflight=20)
    assert max(p.limit for p in ctl.trace) <= 20 and ctl.limit < 20


def test_timeouts_cut_concurrency_once_per_window_and_never_below_min():
    clock = Clock()
    ctl = Controller(Settings(initial=40, min=4, max=100), clock)
    clock.now = 1.0
    ctl.sample(0.01, dropped=True, inflight=40)
    assert ctl.limit == pytest.approx(40 * 0.85)
    ctl.sample(0.5, dropped=True, inflight=40)  # sent at 0.5, before the cut at 1.0: ignored
    assert ctl.limit == pytest.approx(40 * 0.85)
    for _ in range(50):
        clock.now += 1
        ctl.sample(0.01, dropped=True, inflight=40)
    assert ctl.limit == 4


def test_a_throttle_paces_at_90_percent_of_the_accepted_rate_then_holds():
    clock = Clock()
    ctl = Controller(Settings(initial=20, max=100), clock)
    for _ in range(100):  # 200 answers/s for 0.5 s
        clock.now += 0.005
        ctl.sample(0.05, inflight=10)
    assert ctl.rate is None and ctl.reserve() == 0.0
    ctl.sample(0.002, throttled=True, inflight=10)
    assert ctl.rate == pytest.approx(0.9 * 200, rel=0.03)
    assert ctl.limit <= 2 * ctl.rate * 0.05 + 1  # concurrency capped near what the rate needs
    ctl.sample(0.002, throttled=True, inflight=10)  # the same round trip: no second cut
    assert ctl.rate == pytest.approx(0.9 * 200, rel=0.03)
    waits = [ctl.reserve() for _ in range(30)]  # back to back: a small catch-up burst (50 ms of sends),
    assert waits[0] == 0.0 and sum(w == 0 for w in waits) <= 0.05 * ctl.rate + 1  # then one turn every 1/rate
    assert waits[-1] - waits[-2] == pytest.approx(1 / ctl.rate)
    clock.now += 0.5  # within the hold: no probing
    rate = ctl.rate
    ctl.reserve()
    assert ctl.rate == rate


def test_the_rate_cap_alone_holds_then_probes_only_while_it_binds():
    """``RateCap`` without the controller: a throttle sets 0.9x the accepted rate; it holds for
    ``rate_hold``; past it, a cap that binds (sends wait their turn) grows, an idle one does not."""
    clock = Clock()
    cap = RateCap(Settings(), clock)
    for _ in range(50):  # 100 answers/s for 0.5 s
        clock.now += 0.01
        cap.answered(clock.now, clock.now - 0.05)
    assert cap.throttled(clock.now, clock.now - 0.01, rtt=0.05)
    assert cap.rate == pytest.approx(0.9 * 100, rel=0.05)
    assert not cap.throttled(clock.now + 0.01, clock.now, rtt=0.05)  # within a round trip: no second cut
    held = cap.rate
    clock.now += 2.0  # past the hold, idle: sends do not wait, so the cap does not bind
    assert cap.reserve() == 0.0 and cap.rate == held
    for _ in range(200):  # back to back: every send waits, the cap binds and grows
        cap.reserve()
        clock.now += 0.005
    assert cap.rate > 1.1 * held


def test_growth_stops_at_max_and_needs_the_limit_in_use():
    clock = Clock()
    ctl = Controller(Settings(initial=5, min=1, max=20), clock)
    for _ in range(200):
        clock.now += 0.01
        ctl.sample(0.01, inflight=1)  # app-limited: only 1 of 5 in use
    assert ctl.limit == 5
    for _ in range(200):
        clock.now += 0.01
        ctl.sample(0.01, inflight=int(ctl.limit))
    assert ctl.limit == 20


def test_target_latency_is_a_ceiling():
    clock = Clock()
    ctl = Controller(Settings(initial=50, target_latency=0.1, max=100), clock)
    for _ in range(60):
        clock.now += 0.05
        ctl.sample(0.4, inflight=50)
    assert ctl.trace[-1].limit < 50 and ctl.trace[-1].latency == pytest.approx(0.4)


def _feed(ctl, clock, latency, delay, n=200):
    for _ in range(n):
        clock.now += 0.01
        ctl.sample(latency, inflight=int(ctl.limit), client_delay=delay)


def test_a_rise_our_own_hub_delay_explains_does_not_cut():
    """The fast-server case: the client is CPU-bound, responses wait for the hub, the server is fine."""
    clock = Clock()
    ours = Controller(Settings(initial=20, max=100), clock)
    _feed(ours, clock, 0.05, 0.0, 50)  # learn the 50 ms baseline
    before = ours.limit
    _feed(ours, clock, 0.08, 0.03)  # +30 ms, all of it our own scheduling delay
    assert ours.limit > before
    clock = Clock()
    theirs = Controller(Settings(initial=20, max=100), clock)
    _feed(theirs, clock, 0.05, 0.0, 50)
    before = theirs.limit
    _feed(theirs, clock, 0.08, 0.002)  # +30 ms, hardly any of it ours: the server queues
    assert theirs.limit < before


def test_learned_limit_and_rate_carry_over_a_reconfigure_clamped():
    clock = Clock()
    ctl = Controller(Settings(initial=5, max=100), clock)
    _feed(ctl, clock, 0.01, 0.0, 300)
    ctl.sample(0.002, throttled=True, inflight=10)
    learned, rate = ctl.limit, ctl.rate
    ctl.reconfigure(Settings(initial=5, max=100))
    assert ctl.limit == learned and ctl.rate == rate
    ctl.reconfigure(Settings(initial=2, min=1, max=3))
    assert ctl.limit == min(learned, 3)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 0.5),
            st.floats(0, 2),
            st.sampled_from(["ok", "throttled", "dropped"]),
            st.integers(0, 300),
        ),
        max_size=200,
    ),
    st.integers(1, 50),
    st.integers(0, 50),
)
def test_limit_and_rate_always_within_bounds(samples, lo, spread):
    clock = Clock()
    config = Settings.checked(lo, 0.5, lo, lo + spread)
    ctl = Controller(config, clock)
    for advance, latency, kind, inflight in samples:
        clock.now += advance
        ctl.sample(latency, throttled=kind == "throttled", dropped=kind == "dropped", inflight=inflight)
        assert config.min <= ctl.limit <= config.max
        assert ctl.rate is None or ctl.rate >= config.min_rate
        assert ctl.reserve() >= 0.0
