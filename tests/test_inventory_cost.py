"""The inventory command's own cost, part 5 (docs/performance/inventory-cost.md): each cut gives the same bytes.

A fresh page's items are encoded to JSON once (``marked_json``), and both the cache file's compact
text and the file sink's record text are taken from that one encoding; the texts around them (the
cache's envelope, the record's head) are written field by field. Every text here must be the one
``plain_json`` / ``to_json`` gave before, for any value ``jsonable`` can return.
"""

from __future__ import annotations

import json

from _cache_rows import cache_rows
from _inventory_runs import small_run
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfetch._jsonable import jsonable, marked_json, plain_json, to_json
from greenfetch.inventory._cache import _MARK, _VERSION, _envelope
from greenfetch.inventory._sinks import _dumps

# strings that would break a text built by hand: separators, quotes, escapes, NUL, non-ASCII, surrogates
_odd = st.sampled_from(
    ["", ",", ":", ", ", ": ", '"', "\\", "\0", "a\0b", "\n", "\x7f", "caf\u00e9", "\ud800", "\u2028"]
)
_text = st.text(max_size=8) | _odd
_leaves = st.none() | st.booleans() | st.integers() | st.floats() | _text
_trees = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=25,
).map(jsonable)


@settings(deadline=None)  # a loaded machine: the first example imports and warms up
@given(_trees)
def test_marked_json_gives_the_cache_text_and_the_file_text(value):
    """One encoding, both texts: NUL removed is the cache's compact text, NUL as a space the files'."""
    marked = marked_json(value)
    assert marked.replace("\0", "") == plain_json(value, compact=True)
    assert marked.replace("\0", " ") == plain_json(value)


@settings(deadline=None)  # a loaded machine: the first example imports and warms up
@given(
    key=_text,
    stored_at=st.floats() | st.integers() | st.sampled_from([1765000000.123, 0.1, 1e22, -0.0]),
    ttl=st.floats() | st.integers(),
    value=_trees,
)
def test_the_cache_envelope_is_plain_json_of_the_envelope(key, stored_at, ttl, value):
    """The envelope written around the value's text is ``plain_json`` of the whole envelope (a
    non-finite or non-float time takes the encoder's own path)."""
    whole = {_MARK: _VERSION, "key": key, "stored_at": stored_at, "ttl": ttl, "value": value}
    assert _envelope(key, stored_at, ttl, plain_json(value, compact=True)) == plain_json(whole, compact=True)


_records = st.fixed_dictionaries(
    {
        "resource_type": st.sampled_from(["ssm.parameters", "caf\u00e9.x"]),
        "account": _text,
        "region": st.sampled_from(["eu-west-1", "global", "*"]),
        "items": st.lists(_trees, max_size=4),
        "status": st.sampled_from(["ok", "denied"]),
        "error": st.none() | _text | st.integers() | st.floats(),
    }
)


@settings(deadline=None)  # a loaded machine: the first example imports and warms up
@given(_records)
def test_a_record_written_around_its_items_text_is_to_json(rec):
    """The file sink's record from the cache's encoding of its items is ``to_json(rec)``, for any head
    (ASCII text or None field by field; anything else through ``jsonable``)."""
    plain = jsonable(rec["items"])
    assert _dumps(rec, plain, marked_json(plain)) == _dumps(rec, plain) == to_json(rec)


def test_a_fresh_page_is_encoded_once_and_its_files_are_the_same(tmp_path, monkeypatch):
    """``greenfetch inventory --out DIR``: each fresh page's items go through the JSON encoder once (the
    cache's envelope and the json file's record used to encode them twice), and the json files and
    cache files are what the run writes when each is encoded on its own."""
    from greenfetch import _jsonable as J
    from greenfetch.testing import inventory_server

    encoded = []

    def spy(name):
        real = getattr(J, name)

        def encode(value):
            items = value.get("items", value.get("value")) if isinstance(value, dict) else value
            if isinstance(items, list) and items and all(isinstance(item, dict) for item in items):
                encoded.append(name)  # a page's items, alone or inside a record or an envelope
            return real(value)

        monkeypatch.setattr(J, name, encode)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    with inventory_server(items=3) as server:
        for name in ("_COMPACT", "_UNSORTED", "_SORTED", "_MARKED", "_MARKED_ONCE"):
            spy(name)
        report = small_run(server.url, tmp_path / "once", tmp_path / "cache-once")
        pages = report.summary["records"]
        assert pages == 8 and len(encoded) == pages, encoded
        monkeypatch.setattr("greenfetch.inventory._fetch.Inventory.items_json", lambda self, rec: None)
        small_run(server.url, tmp_path / "twice", tmp_path / "cache-twice")
    assert len(encoded) == 3 * pages  # the same run with each encoded on its own: twice a page
    for name in ("ssm.parameters.json", "kms.keys.json"):
        assert (tmp_path / "once" / name).read_bytes() == (tmp_path / "twice" / name).read_bytes()
    once, twice = cache_rows(tmp_path / "cache-once"), cache_rows(tmp_path / "cache-twice")
    assert sorted(once) == sorted(twice)
    for key, text in once.items():
        assert text == plain_json(json.loads(text), compact=True)
        mine, theirs = json.loads(text), json.loads(twice[key])
        mine.pop("stored_at"), theirs.pop("stored_at")
        assert mine == theirs


# -- the cache key: Request.signature ------------------------------------------------------------------


def _old_signature(request):
    """``Request.signature`` as it was: the whole canonical list through the encoder (the oracle)."""
    import hashlib

    from greenfetch._models import _canonical

    canon = _canonical(
        [
            request.service,
            request.operation,
            jsonable(dict(request.params)),
            request.region,
            request.identity,
            request.endpoint_url,
            jsonable(request.paginate),
        ]
    )
    return f"{request.service}:{request.operation}:{hashlib.sha256(canon.encode()).hexdigest()[:24]}"


@settings(deadline=None)
@given(
    service=_text,
    operation=_text,
    params=st.dictionaries(_text, _trees, max_size=3),
    region=st.none() | _text,
    account=st.none() | _text,
    role=st.none() | _text,
    profile=st.none() | _text,
    endpoint=st.none() | _text,
    paginate=st.booleans() | st.integers(0, 1) | st.dictionaries(_text, _trees, max_size=2),
)
def test_a_signature_is_what_the_whole_list_encoded_gave(
    service, operation, params, region, account, role, profile, endpoint, paginate
):
    """The canonical text written field by field is the encoder's, so every cache file keeps its name
    and dedupe its keys (unicode, quotes, NUL, None, a paginate config or a number)."""
    from greenfetch._models import Request

    request = Request(
        service,
        operation,
        params,
        region=region,
        account=account,
        role=role,
        profile=profile,
        endpoint_url=endpoint,
        paginate=paginate,
    )
    assert request.signature == _old_signature(request)


# -- the progress line ---------------------------------------------------------------------------------


def test_a_hidden_progress_line_counts_no_record(tmp_path, monkeypatch):
    """``--no-progress`` (or stderr not a terminal): no record goes through ``Progress.record``, whose
    counts only a drawn line shows; ``--progress`` still counts every record and draws its line."""
    from click.testing import CliRunner

    from greenfetch.cli import _progress, load_commands
    from greenfetch.testing import inventory_server

    counted = []
    real = _progress.Progress.record
    monkeypatch.setattr(
        _progress.Progress, "record", lambda self, rec: counted.append(rec) or real(self, rec)
    )
    with inventory_server(items=2) as server:
        for flag in ("--no-progress", "--progress"):
            cmd = ["--endpoint-url", server.url, "--region", "us-east-1", "inventory", "--accounts"]
            cmd += ["111111111111", "--role-name", "R", "--regions", "us-east-1,eu-west-1", "--types"]
            cmd += ["sqs.queues", flag, "--out", str(tmp_path / flag)]
            result = CliRunner().invoke(load_commands(), cmd, env={"GREENFETCH_CACHE_DIR": str(tmp_path)})
            assert result.exit_code == 0, result.output
            assert len(counted) == (0 if flag == "--no-progress" else 2), flag
    assert "sqs.queues: 4 items, 0 errors | 2 fetches" in result.output


def test_a_plain_signature_does_not_call_the_encoder(monkeypatch):
    """An inventory page's request (text fields, no params, paginated) is keyed without the encoder's
    call; params still go through it (and give the same text as before, above)."""
    from greenfetch import _models
    from greenfetch._models import Request

    plain = Request("kms", "ListKeys", {}, region="eu-west-1", account="111111111111", paginate=True)
    with_params = Request("ssm", "DescribeParameters", {"MaxResults": 50}, region="eu-west-1")
    expected = (_old_signature(plain), _old_signature(with_params))
    calls = []
    real = _models._canonical
    monkeypatch.setattr(_models, "_canonical", lambda value: calls.append(value) or real(value))
    assert plain.signature == expected[0]
    assert calls == []
    assert with_params.signature == expected[1]
    assert calls == [{"MaxResults": 50}]


# -- the fair feed's key -----------------------------------------------------------------------------


def test_the_feed_keys_each_unit_by_its_scope_without_a_python_call(monkeypatch):
    """part 6: each unit carries ``Limits.scope_of(unit.request)`` from when it is made, and the fair
    feed reads it (``attrgetter``) rather than calling a lambda that built the string again per unit."""
    import types as pytypes

    from greenfetch import Config, Engine
    from greenfetch._adaptive import Limits
    from greenfetch.inventory import _fetch as F
    from greenfetch.inventory import accounts_from_list
    from greenfetch.inventory._catalog import resolve_types
    from greenfetch.testing import inventory_server

    fed = []

    class Spy(F.FairFeed):
        def __init__(self, items, scope_of, cap):
            items = list(items)
            fed.append((items, scope_of))
            super().__init__(items, scope_of, cap)

    monkeypatch.setattr(F, "FairFeed", Spy)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    with inventory_server(items=2) as server:
        engine = Engine(Config.resolve({"endpoint_url": server.url, "region": "us-east-1"}, environ={}))
        try:
            inv = F.Inventory(
                engine,
                accounts_from_list(["111111111111", "222222222222"], role="InventoryReader"),
                resolve_types(["ssm.parameters", "kms.keys", "iam.users", "lambda.functions"]),
                regions=["us-east-1", "eu-west-1"],
                filter_offered=False,
            )
            records = list(inv.run())
        finally:
            engine.close()
    assert len(records) == 2 * (3 * 2 + 1)
    [(units, scope_of)] = fed
    assert len(units) == len(records)
    assert not isinstance(scope_of, pytypes.FunctionType)  # the old feed's lambda: a frame a unit
    scopes = [scope_of(u) for u in units]
    assert scopes == [Limits.scope_of(u.request) for u in units]
    assert "iam/us-east-1/111111111111" in scopes and "kms/eu-west-1/222222222222" in scopes


def test_the_plan_looks_each_accounts_role_up_once(monkeypatch):
    """part 6: the plan asks the credentials for an account's role once per account (it used to ask
    once per unit: every region and type), and every request still carries that account's role."""
    from greenfetch import Config, Engine
    from greenfetch.inventory import _fetch as F
    from greenfetch.inventory import accounts_from_list
    from greenfetch.inventory._catalog import resolve_types
    from greenfetch.inventory._credentials import AccountCredentials
    from greenfetch.inventory._plan import Plan
    from greenfetch.testing import inventory_server

    asked, units = [], []
    real_status, real_units = AccountCredentials.status, Plan.units

    def status(self, account):
        asked.append(account.account_id)
        return real_status(self, account)

    def planned(self, ready, candidates):
        for unit in real_units(self, ready, candidates):
            units.append(unit)
            yield unit

    monkeypatch.setattr(AccountCredentials, "status", status)
    monkeypatch.setattr(Plan, "units", planned)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    accounts = ["111111111111", "222222222222"]
    with inventory_server(items=1) as server:
        engine = Engine(Config.resolve({"endpoint_url": server.url, "region": "us-east-1"}, environ={}))
        try:
            inv = F.Inventory(
                engine,
                accounts_from_list(accounts, role="InventoryReader"),
                resolve_types(["ssm.parameters", "kms.keys"]),
                regions=["us-east-1", "eu-west-1", "eu-west-2"],
                filter_offered=False,
            )
            records = list(inv.run())
        finally:
            engine.close()
    assert len(records) == len(units) == 2 * 3 * 2
    assert all(r["status"] == "ok" for r in records)
    assert len(asked) <= 2 * len(accounts), asked  # the run's check and the plan's, per account
    for unit in units:
        assert unit.request.role == f"arn:aws:iam::{unit.account}:role/InventoryReader"
        assert unit.request.account == unit.account


_maybe = st.none() | st.text(max_size=6)


@settings(deadline=None, max_examples=60)
@given(
    service=st.text(min_size=1, max_size=6),
    operation=st.text(min_size=1, max_size=6),
    params=st.dictionaries(st.text(max_size=4), st.integers() | st.text(max_size=4), max_size=3),
    region=_maybe,
    account=_maybe,
    role=_maybe,
    profile=_maybe,
    endpoint_url=_maybe,
    paginate=st.booleans() | st.just({"MaxItems": 5}),
    id=st.none() | st.integers(),
    credentials=st.none() | st.just(object()),
)
def test_request_built_is_the_dataclass_init(service, operation, params, **rest):
    """part 6: ``Request.built`` gives what ``Request(...)`` gives: equal, the same fields in the same
    order, the same repr and signature, and still frozen."""
    import dataclasses

    import pytest

    from greenfetch import Request

    made, built = (
        Request(service, operation, params, **rest),
        Request.built(service, operation, params, **rest),
    )
    assert type(built) is Request and built == made
    assert list(built.__dict__.items()) == list(made.__dict__.items())
    assert repr(built) == repr(made) and built.signature == made.signature
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.region = "x"  # type: ignore[misc]


def test_the_plan_makes_its_requests_without_the_frozen_init(monkeypatch):
    """parts 6 and 14: the inventory's plan builds each unit's Request with ``Request.listed`` (no
    frozen ``__init__``, no keywords) and each unit with its slots' plain ``__init__``; the requests and
    units are the ones ``Request(...)`` and ``_Fetch(...)`` give, their fields in order."""
    import dataclasses

    from greenfetch import Config, Engine, Request
    from greenfetch.inventory import _fetch as F
    from greenfetch.inventory import accounts_from_list
    from greenfetch.inventory._catalog import resolve_types
    from greenfetch.testing import inventory_server

    inits, real_init = [], Request.__init__

    def counted(self, *args, **kwargs):
        inits.append(type(self).__name__)
        real_init(self, *args, **kwargs)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    with inventory_server(items=1) as server:
        engine = Engine(Config.resolve({"endpoint_url": server.url, "region": "us-east-1"}, environ={}))
        try:
            inv = F.Inventory(
                engine,
                accounts_from_list(["111111111111", "222222222222"], role="InventoryReader"),
                resolve_types(["ssm.parameters", "iam.users"]),
                regions=["us-east-1", "eu-west-1"],
                filter_offered=False,
            )
            creds = inv.credentials.prefetch(inv.accounts)
            ready = [(a, creds.get(a.account_id)) for a in inv.accounts]
            monkeypatch.setattr(Request, "__init__", counted)
            units = list(inv._plan.units(ready, inv._plan.candidate_regions(ready)))
            monkeypatch.setattr(Request, "__init__", real_init)
        finally:
            engine.close()
    assert inits == [] and len(units) == 2 * (2 + 1)
    names = [f.name for f in dataclasses.fields(Request)]
    for unit in units:
        request = unit.request
        made = Request(
            unit.rtype.service,
            unit.rtype.operation,
            request.params,
            region=request.region,
            account=unit.account,
            role=f"arn:aws:iam::{unit.account}:role/InventoryReader",
            credentials=request.credentials,
            paginate=unit.rtype.paginate,
        )
        assert request == made and type(request) is Request
        # every field, the dataclass's order (a worker process's copy, ``coerce``'s copy read it)
        assert list(request.__dict__) == names
        assert list(request.__dict__.values()) == [getattr(made, n) for n in names]
        assert request.credentials is creds.get(unit.account)
        fields = [getattr(unit, f.name) for f in dataclasses.fields(F._Fetch)]
        assert unit == F._Fetch(*fields) and type(unit) is F._Fetch and unit.shown and unit.offered
