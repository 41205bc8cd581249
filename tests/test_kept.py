"""``_kept.kept``: the one rule for the memos of what a run repeats (bounded by emptying when full)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from greenfetch._kept import kept


@given(st.lists(st.integers(0, 50)), st.integers(1, 8))
def test_a_memo_never_holds_more_than_most_and_always_holds_the_last_value(keys, most):
    memo: dict[int, str] = {}
    for key in keys:
        assert kept(memo, key, f"v{key}", most) == f"v{key}"
        assert memo[key] == f"v{key}" and len(memo) <= most


def test_a_full_memo_is_emptied_before_the_new_entry():
    memo = {1: "a", 2: "b"}
    kept(memo, 3, "c", 2)
    assert memo == {3: "c"}
    kept(memo, 3, "d", 2)  # a key held again: replaced, nothing emptied below most
    assert memo == {3: "d"}
