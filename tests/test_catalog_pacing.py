"""Issue 20, pacing: an inventory's calls are paced per (account, region, service), so one hot service
throttles only itself and the others finish at their own speed (docs/inventory.md, "Pacing").

The loopback server answers every operation with an empty page (``test_catalog_status``'s ``scripted``
handler), with a token bucket per (service, region) on the hot service. ``FairFeed``, the feeder
under the fetch, is checked against a model with Hypothesis.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_catalog_status import ACCOUNT, _engine, _server

from greenfetch.inventory import Account, Inventory, resolve_types
from greenfetch.inventory._pacing import FairFeed

HOT = "waf-regional"
OTHERS = ("events",)
REGIONS = ["us-east-1", "us-west-2"]
RATE = 2  # calls/s per region the hot service accepts (burst: one second's worth)
HOT_TYPES = 6  # per region: three times what its bucket holds


@pytest.fixture(scope="module")
def paced_server():
    with _server([HOT, *OTHERS, "ssm", "ec2"], buckets={HOT: RATE}) as url:
        yield url


def _throttles(engine, service):
    return sum(
        int(row.get("throttles", 0))
        for row in engine.metrics.perf_stats()
        if row["operation"].startswith(f"{service}:")
    )


def test_a_hot_service_is_paced_and_throttles_only_itself(paced_server):
    """The hot service's types come first in the plan (as they would hold the run's slots first): its
    calls are paced, a call whose retries ran out is sent again behind the pacer so every record ends
    ok, and the other service does not wait for it: more than half of the hot records complete after
    the last of its records. Every (type, region) once."""
    hot = resolve_types(HOT)[:HOT_TYPES]
    types = [*hot, *resolve_types(",".join(OTHERS))]
    engine = _engine(paced_server, concurrency=4)
    try:
        inv = Inventory(engine, [Account(ACCOUNT)], types, regions=REGIONS)
        done = [(r["resource_type"], r["region"], r["status"]) for r in inv.run()]
        hot_throttles = _throttles(engine, HOT)
        other_throttles = sum(_throttles(engine, service) for service in OTHERS)
    finally:
        engine.close()
    assert sorted((t, r) for t, r, _ in done) == sorted((t.name, r) for t in types for r in REGIONS)
    assert {(t, s) for t, _, s in done if s != "ok"} == set()
    is_hot = [t.startswith(f"{HOT}.") for t, _, _ in done]
    last_other = max(i for i, h in enumerate(is_hot) if not h)
    hot_after = sum(is_hot[last_other:])
    assert hot_after > len(hot) * len(REGIONS) / 2, done  # today 8 of 12; unpaced 2-3, gate alone 1-3
    # the pacer's work: botocore's retries (not paced) may each be throttled, up to 2 per call unpaced
    assert hot_throttles <= 2 * len(hot) * len(REGIONS), hot_throttles
    assert other_throttles == 0


# -- the feeder, against a model --------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    scopes=st.lists(st.sampled_from("abcde"), min_size=1, max_size=40),
    caps=st.dictionaries(st.sampled_from("abcde"), st.integers(1, 3)),
    steps=st.lists(st.tuples(st.booleans(), st.integers(0, 1000), st.booleans()), max_size=200),
    spawns=st.lists(st.lists(st.sampled_from("cdefg"), max_size=3), max_size=30),
)
def test_fair_feed_hands_out_least_busy_first_within_caps(scopes, caps, steps, spawns):
    """Driven one step at a time: take the next item (when one may go) or finish one in flight
    (sometimes to be sent again; sometimes adding items first, as a parent adds its child type's
    calls, in scopes old or new). Never more in flight for a scope than its cap; the item handed out
    is from a scope with the fewest in flight among those that may send (ties: the first in the plan);
    every item is done exactly once and the iteration then ends."""
    items = [(i, s) for i, s in enumerate(scopes)]
    feed = FairFeed(items, lambda item: item[1], lambda scope: caps.get(scope, 2))
    order = list(dict.fromkeys(scopes))
    queued = {s: [it for it in items if it[1] == s] for s in order}
    inflight: list = []
    finished: list = []
    stream = iter(feed)
    spawns = list(spawns)

    def add_before_done():
        added = [(len(items) + i, s) for i, s in enumerate(spawns.pop() if spawns else [])]
        feed.add(added)
        items.extend(added)
        for item in added:
            if item[1] not in queued:
                order.append(item[1])
                queued[item[1]] = []
            queued[item[1]].append(item)

    def may_send():
        busy = {s: sum(1 for it in inflight if it[1] == s) for s in order}
        return [s for s in order if queued[s] and busy[s] < caps.get(s, 2)], busy

    def take():
        ready, busy = may_send()
        item = next(stream)
        fewest = min(busy[s] for s in ready)
        assert item[1] == next(s for s in ready if busy[s] == fewest)
        assert item == queued[item[1]].pop(0)
        inflight.append(item)
        assert busy[item[1]] + 1 <= caps.get(item[1], 2)
        assert feed.inflight(item[1]) == busy[item[1]] + 1

    for pull, pick, again in steps:
        if pull and may_send()[0] or not inflight:
            if not may_send()[0]:
                break
            take()
        else:
            item = inflight.pop(pick % len(inflight))
            if not again:
                add_before_done()
            feed.done(item, again=again)
            if again:
                queued[item[1]].insert(0, item)
            else:
                finished.append(item)
    while inflight or any(queued.values()):  # drain
        if may_send()[0]:
            take()
        else:
            item = inflight.pop(0)
            feed.done(item)
            finished.append(item)
    assert next(stream, None) is None
    assert sorted(finished) == sorted(items)


def test_fair_feed_close_ends_a_waiting_iteration():
    feed = FairFeed([1, 2], lambda item: "one", lambda scope: 1)
    stream = iter(feed)
    assert next(stream) == 1
    feed.close()  # the scope is at its cap: without close the next pull would wait for done(1)
    assert next(stream, None) is None
