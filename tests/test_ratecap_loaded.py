"""The rate cap (``_ratecap.RateCap``) against a token bucket on a loaded machine, in simulated time
(``_simservers.simulate_client``: the client's hub as one CPU with a run queue, neighbours' stalls).

Two ways the cap read the bucket's rate low and sat there (docs/performance/adaptive.md, "A loaded machine"),
each reproduced on fixed seeds that fail on the rules before: a cut read over the answers the client
processed while a stall of its own held them in its run queue; and a cut made blind (the first
throttles come back before any answer) that no later throttle raises when throttles are not retried.
Budget: ~1 s.
"""

import pytest
from _simservers import PROFILES, Bucket, CpuClient, simulate_client

from greenfetch._controller import Settings


def _bucket(rate, seed, profile, attempts=3, initial=5):
    """The bench's token-bucket case (50 ms answers, from 5 at most 128) as ``five_cases`` runs it."""
    client = CpuClient(seed=seed, **PROFILES[profile])
    config = Settings(initial=initial, max=128)
    return simulate_client(Bucket(rate=rate, seed=seed), client, config, duration=6, attempts=attempts)


def test_a_stall_of_the_client_is_no_drop_in_the_accepted_rate():
    """Loaded seed 33: a second cut 0.1 s after the first read the answers processed since it, and a
    stall of the client's CPU (30 ms) had held the later ones in its run queue, behind the throttle:
    238 -> 120/s, 0.83x R from 2 s. The accepted rate is now read over the time the client was not
    held (the throttle's own ``held``)."""
    run = _bucket(200, 33, "loaded")
    assert run.ok_rate(2, 6) >= 0.9 * 200 and run.throttled(2) <= 0.05


@pytest.mark.parametrize("profile", ["quiet", "loaded"])
def test_a_blind_cut_that_no_throttle_follows_is_raised_by_the_answers(profile):
    """A 30/s bucket met at 64 in flight with no retries: the 34 throttles come back 2 ms in, before
    any answer, and the cap is set blind at 0.5/s. With retries, their throttles set it again a round
    trip later; without, none came and it stayed there for 12 s (0.017x R from 2 s to 6 s, every
    seed). Now every answer accepted after a blind cut raises it to ``rate_backoff`` x the answers
    since, over a second at least."""
    run = _bucket(30, 1, profile, attempts=1, initial=64)
    assert run.ok_rate(2, 6) >= 0.9 * 30 and run.throttled(2) <= 0.1
