"""A page's cache key written into its envelope without JSON's escape when the plan knows it needs none
(part 15, docs/performance/inventory-cost.md): ``Plan.plain_keys`` from the parts of every key a run makes
(the version, the types' and their parents' names, services and operations, ``+tags``, the endpoint), and
``InventoryCache.store(..., plain_key=True)`` writing the key between quotes. The rows are the same."""

import json
from types import SimpleNamespace

from _cache_rows import cache_rows
from _inventory_runs import small_run
from hypothesis import example, given, settings
from hypothesis import strategies as st

from greenfetch._jsonable import json_string, plain_json
from greenfetch.inventory import _cache, _plan

# texts JSON writes as they are, and the ones it escapes (quotes, backslashes, control characters)
_PART = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.sampled_from(
        ["ssm.parameters", "kms", "ListKeys", 'a"b', "a\\b", "tab\there", "\x00", "\u00e9\u2028"]
    ),
)


def _type(name, service, operation, parent=None):
    return SimpleNamespace(name=name, service=service, operation=operation, parent_type=parent)


@settings(max_examples=300, deadline=None)
@given(
    name=_PART,
    service=_PART,
    operation=_PART,
    parent=st.none() | st.tuples(_PART, _PART, _PART),
    endpoint=st.none() | _PART,
    tags=st.booleans(),
    digest=st.text(alphabet="0123456789abcdef", min_size=24, max_size=24),
)
@example(name='a"b', service="s", operation="o", parent=None, endpoint=None, tags=False, digest="0" * 24)
@example(
    name="n", service="s", operation="o", parent=("p\\", "s", "o"), endpoint=None, tags=False, digest="0" * 24
)
@example(
    name="n", service="s", operation="o", parent=None, endpoint="http://h/\n", tags=True, digest="0" * 24
)
def test_a_plain_plans_keys_are_their_own_json_text(name, service, operation, parent, endpoint, tags, digest):
    """When ``_plain_keys`` says so, every key the plan can make (the type's own and its parent's, as
    ``Plan.cache_key`` and ``Request.signature`` write them) is its JSON text between quotes; and the
    envelope written with ``plain_key`` is the one written with the escape."""
    above = _type(*parent) if parent is not None else None
    kind = _type(name, service, operation, above)
    plain = _plan._plain_keys([kind], endpoint)
    keys = []
    for owner, op in ((kind, operation), *(((above, above.operation),) if above is not None else ())):
        signature = f"{service}:{op}:{digest}"  # a hidden parent's request is the child's service's
        key = f"{_plan._CACHE_VERSION}:{owner.name}{'+tags' if tags else ''}:{signature}"
        keys.append(key + (f"@{endpoint}" if endpoint else ""))
    for key in keys:
        if plain:
            assert json_string(key) == f'"{key}"'
        escaped = _cache._envelope(key, 1700000000.123, 0.0, "[]")
        assert escaped == plain_json(
            {"greenfetch-cache": 1, "key": key, "stored_at": 1700000000.123, "ttl": 0.0, "value": []},
            compact=True,
        )
        if plain:
            assert _cache._envelope(key, 1700000000.123, 0.0, "[]", True) == escaped
    clean = all(
        json_string(p) == f'"{p}"' for p in (name, service, operation, endpoint or "", *(parent or ()))
    )
    assert plain == clean


def test_a_runs_pages_are_stored_without_the_keys_escape_and_the_rows_are_the_same(tmp_path, monkeypatch):
    """The inventory's cache rows with the key written as it is (no ``json_string`` a page: main escaped
    every key) are the rows of a run that escapes every key (``plain_keys`` False)."""
    from greenfetch.testing import inventory_server

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    escaped: list[str] = []
    real = _cache.json_string
    monkeypatch.setattr(_cache, "json_string", lambda text: escaped.append(text) or real(text))
    with inventory_server(items=3) as server:
        small_run(server.url, tmp_path / "plain", tmp_path / "cache-plain")
        pages = [key for key in escaped if key.startswith("inv1:")]  # (the regions' entries are escaped)
        assert pages == []
        monkeypatch.setattr(_plan, "_plain_keys", lambda types, endpoint: False)
        small_run(server.url, tmp_path / "escaped", tmp_path / "cache-escaped")
        assert len([key for key in escaped if key.startswith("inv1:")]) == 8
    plain, other = cache_rows(tmp_path / "cache-plain"), cache_rows(tmp_path / "cache-escaped")
    assert sorted(plain) == sorted(other) and len([k for k in plain if k.startswith("inv1:")]) == 8
    for key, text in plain.items():
        mine, theirs = json.loads(text), json.loads(other[key])
        assert mine["key"] == key and text.startswith('{"greenfetch-cache":1,"key":"' + key + '",')
        mine.pop("stored_at"), theirs.pop("stored_at")
        assert mine == theirs
