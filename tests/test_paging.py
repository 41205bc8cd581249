"""A paginated call's one-page path (``greenfetch._paging``) against botocore's paginator.

Over generated paginator configs and pages (one page, many, ``MaxItems`` truncation, nested and
non-plain result keys, ``more_results``, non-aggregate keys, odd values where a list belongs) the plan
must give what ``Paginator(...).paginate(...).build_full_result()`` gives (or raise what it raises),
make the same requests with the same arguments under the same ``PAGINATOR`` user-agent feature, and
take botocore's iterator only when the first page is not the whole answer. Then a few real operations
over moto's server, through the engine, against boto's own paginator.
"""

from __future__ import annotations

import copy

import botocore.session
import pytest
from botocore.paginate import Paginator
from hypothesis import example, given, settings
from hypothesis import strategies as st

from greenfetch import Config, Engine, Request, _paging
from greenfetch._paging import Plan, plan

try:
    from botocore.context import get_context
except ImportError:  # botocore 1.36: no feature contexts, its paginator sets none, neither does _paging

    def get_context():
        return None


HAS_CONTEXT = _paging._context is not None

_FIELDS = ["Items", "Outer.Items", "Reservations", "Count", "Extra.Names"]
_ODD = ["Reservations[].Instances", "Items[0]"]  # searched by JMESPath itself (botocore cannot set them)
_TOKENS = ["NextToken", "Page.Marker", "Items[-1]"]


@st.composite
def _case(draw):
    results = draw(st.lists(st.sampled_from(_FIELDS + _ODD), min_size=1, max_size=3, unique=True))
    if draw(st.booleans()):
        results = [r for r in results if r not in _ODD] or ["Items"]
    n_tokens = draw(st.integers(1, 2))
    outputs = draw(st.lists(st.sampled_from(_TOKENS), min_size=n_tokens, max_size=n_tokens, unique=True))
    config = {
        "input_token": [f"In{i}" for i in range(n_tokens)] if n_tokens > 1 else "In0",
        "output_token": outputs if n_tokens > 1 else outputs[0],
        "result_key": results if len(results) > 1 or draw(st.booleans()) else results[0],
        "limit_key": "Limit",
    }
    if draw(st.booleans()):
        config["more_results"] = draw(st.sampled_from(["IsTruncated", "Page.More"]))
    if draw(st.booleans()):
        config["non_aggregate_keys"] = draw(
            st.lists(st.sampled_from(["Owner", "Meta.Region", "Meta"]), max_size=2, unique=True)
        )
    n_pages = draw(st.sampled_from([1, 1, 2, 3]))
    pages = []
    for i in range(n_pages):
        last = i == n_pages - 1
        page = {}
        for key in results + ["Owner", "Meta.Region"]:
            value = draw(
                st.one_of(
                    st.lists(st.integers(0, 99), max_size=6),
                    st.lists(st.lists(st.integers(0, 9), max_size=2), max_size=3),
                    st.integers(0, 5),
                    st.text("ab", max_size=3),
                    st.none(),
                    st.just({"Instances": [1]}),
                )
            )
            if value is None and draw(st.booleans()):
                continue
            _put(page, key, value)
        for token in outputs:
            if not last:
                _put(page, token, f"t{i}-{token}")
            elif draw(st.integers(0, 4)) == 0:
                _put(page, token, draw(st.sampled_from(["", None, "late"])))
        if "more_results" in config:
            _put(page, config["more_results"], not last if draw(st.integers(0, 5)) else last)
        pages.append(page)
    max_items = draw(st.one_of(st.none(), st.integers(0, 12)))
    params = draw(st.sampled_from([{}, {"Filter": "x"}]))
    return config, pages, max_items, params


def _put(page, path, value):
    if "[" in path:  # a token found by a non-plain expression: make the list it reads
        name = path.split("[")[0]
        if not isinstance(page.get(name), list):
            page[name] = []
        page[name].append(value)
        return
    *parents, last = path.split(".")
    for name in parents:
        page = page.setdefault(name, {}) if isinstance(page.get(name, {}), dict) else {}
    page[last] = value


class _Server:
    """The pages in order, a copy each time; what each request carried and its user-agent features."""

    def __init__(self, pages):
        self.pages = pages
        self.calls = []

    def __call__(self, **kwargs):
        ctx = get_context()
        self.calls.append((copy.deepcopy(kwargs), sorted(ctx.features) if ctx else None))
        if len(self.calls) > len(self.pages):
            return {}
        return copy.deepcopy(self.pages[len(self.calls) - 1])


def _outcome(run):
    try:
        return ("ok", run())
    except Exception as exc:  # noqa: BLE001  (the same exception both ways is parity too)
        return ("raised", type(exc).__name__, str(exc))


@settings(max_examples=150, deadline=None)
@given(_case())
# two the generator rarely makes (the mutation audit, docs/testing.md): a field under a value that is
# not a map (JMESPath finds None there); two result keys over one number (botocore adds them up)
@example(
    (
        {
            "input_token": "In0",
            "output_token": "NextToken",
            "result_key": "Items",
            "non_aggregate_keys": ["Meta.Region"],
        },
        [{"Items": [1], "Meta": 3}],
        None,
        {},
    )
)
@example(
    (
        {"input_token": "In0", "output_token": "NextToken", "result_key": ["Items", "Items[0]"]},
        [{"Items": [3, 4]}],
        None,
        {},
    )
)
# the non-aggregate keys are recorded before the result keys are read, as botocore's iterator does:
# here both fail, and botocore's error is the non-aggregate keys' (Hypothesis found it)
@example(
    (
        {
            "input_token": "In0",
            "output_token": "NextToken",
            "result_key": ["Reservations[].Instances", "Items"],
            "non_aggregate_keys": ["Meta", "Meta.Region"],
        },
        [{"Reservations": [[]], "Items": [], "NextToken": ""}],
        None,
        {},
    )
)
def test_plan_gives_what_botocore_paginator_gives(case):
    config, pages, max_items, params = case
    theirs, ours = _Server(pages), _Server(pages)
    made = []

    def paginator():
        made.append(True)
        return Paginator(ours, config, None)

    expected = _outcome(
        lambda: (
            Paginator(theirs, config, None)
            .paginate(**params, PaginationConfig={} if max_items is None else {"MaxItems": max_items})
            .build_full_result()
        )
    )
    got = _outcome(lambda: Plan(config).full_result(ours, params, max_items, paginator))
    assert got == expected
    assert ours.calls == theirs.calls  # the same requests, the same arguments, the PAGINATOR feature
    if HAS_CONTEXT:
        assert all(features for _, features in ours.calls)  # made inside botocore's feature context
    if len(theirs.calls) > 1:
        assert made  # more pages: botocore's iterator went on from the first


def test_one_page_never_builds_botocore_paginator():
    config = {"input_token": "NextToken", "output_token": "NextToken", "result_key": "TableNames"}
    page = {"TableNames": ["a", "b"], "ResponseMetadata": {"HTTPStatusCode": 200}}

    def paginator():
        raise AssertionError("a one-page answer went through botocore's iterator")

    assert Plan(config).full_result(_Server([page]), {}, None, paginator) == {"TableNames": ["a", "b"]}
    assert Plan(config).full_result(_Server([page]), {}, 2, paginator) == {"TableNames": ["a", "b"]}
    # an empty answer whose list botocore's parser left out (EC2's query protocol does): one page too
    empty = {"ResponseMetadata": {"HTTPStatusCode": 200}}
    expected = Paginator(_Server([empty]), config, None).paginate().build_full_result()
    assert Plan(config).full_result(_Server([empty]), {}, None, paginator) == expected
    with pytest.raises(AssertionError, match="went through"):  # cut by MaxItems: botocore's resume token
        Plan(config).full_result(_Server([page]), {}, 1, paginator)


def test_plan_is_kept_per_config_and_an_unread_config_is_botocores():
    config = {"input_token": "A", "output_token": "A", "result_key": "R"}
    assert plan(config) is plan(config)
    assert plan(dict(config)) is not plan(config)
    assert plan({"input_token": "A", "output_token": "A"}) is None  # no result key
    assert plan({"input_token": "A", "output_token": "][", "result_key": "R"}) is None  # not JMESPath


@pytest.fixture(scope="module")
def moto(moto_server):
    moto_server.reset()
    engine = Engine(
        Config.resolve({"region": "us-east-1", "endpoint_url": moto_server.url, "max_attempts": 1})
    )
    session = botocore.session.get_session()

    def client(service):
        return session.create_client(
            service,
            region_name="us-east-1",
            endpoint_url=moto_server.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    for n in range(5):
        client("dynamodb").create_table(
            TableName=f"table-{n}",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client("sqs").create_queue(QueueName=f"q{n}")
    client("ec2").run_instances(ImageId="ami-12c6146b", MinCount=3, MaxCount=3)
    client("ec2").run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)
    yield engine, client
    engine.close()


@pytest.mark.parametrize(
    ("service", "operation", "params", "max_items"),
    [
        ("dynamodb", "ListTables", {}, None),  # one page
        ("dynamodb", "ListTables", {"Limit": 2}, None),  # three pages
        ("dynamodb", "ListTables", {"Limit": 2}, 3),  # cut inside the second page: NextToken
        ("dynamodb", "ListTables", {}, 4),  # cut inside the only page
        ("sqs", "ListQueues", {}, None),
        ("sqs", "ListQueues", {"MaxResults": 2}, 4),  # cut on a page boundary
        ("ec2", "DescribeInstances", {}, None),  # Reservations[].Instances, one page
        ("ec2", "DescribeInstances", {"MaxResults": 5}, 1),
    ],
)
def test_real_operations_over_moto_match_botocore(moto, service, operation, params, max_items):
    engine, client = moto
    paginate = {"max_items": max_items} if max_items else True
    got = engine.execute(Request(service, operation, params, paginate=paginate)).result
    config = {"MaxItems": max_items} if max_items else {}
    method = botocore.xform_name(operation)
    expected = (
        client(service).get_paginator(method).paginate(**params, PaginationConfig=config).build_full_result()
    )
    assert got == expected
    assert got  # something came back


def _recording_user_agents(moto):
    """A DynamoDB client whose requests' User-Agents are kept (in order), and ListTables' page config."""
    _, client = moto
    dynamodb = client("dynamodb")
    agents = []
    dynamodb.meta.events.register(
        "before-send", lambda request, **_: agents.append(request.headers["User-Agent"])
    )
    config = dynamodb._cache["page_config"]["ListTables"] if dynamodb.can_paginate("list_tables") else None
    return dynamodb, agents, config


def test_the_user_agent_says_paginator_as_botocores_does(moto):
    """The page is asked for in a context of ``_paging``'s own (cheap to copy): botocore's request
    carries the same User-Agent, its ``PAGINATOR`` feature id included, as through its own paginator."""
    dynamodb, agents, config = _recording_user_agents(moto)
    ours = Plan(config).full_result(dynamodb.list_tables, {}, None, lambda: None)
    theirs = dynamodb.get_paginator("list_tables").paginate().build_full_result()
    dynamodb.list_tables()  # a plain call: no PAGINATOR feature
    assert ours == theirs
    if HAS_CONTEXT:
        assert agents[0] == agents[1] != agents[2]  # the feature id is there, as botocore's puts it
    else:
        assert agents[0] == agents[1] == agents[2]  # no feature ids in this botocore
    assert get_context() is None  # put back


@pytest.mark.skipif(not HAS_CONTEXT, reason="a botocore without user-agent feature contexts")
def test_inside_a_callers_context_the_user_agent_keeps_its_features_as_botocores_does(moto):
    """Called inside a context that already carries a feature (a waiter's, say), the page's request
    carries that feature and ``PAGINATOR``, as through botocore's own paginator: the context is copied,
    not replaced."""
    from botocore.context import start_as_current_context
    from botocore.useragent import register_feature_id

    dynamodb, agents, config = _recording_user_agents(moto)
    with start_as_current_context():
        register_feature_id("WAITER")
        Plan(config).full_result(dynamodb.list_tables, {}, None, lambda: None)
        dynamodb.get_paginator("list_tables").paginate().build_full_result()
    with start_as_current_context():
        dynamodb.get_paginator("list_tables").paginate().build_full_result()  # without the waiter's
    assert agents[0] == agents[1] != agents[2]
