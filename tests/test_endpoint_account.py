"""greenfetch._botocore_fast._account (the endpoint ruleset walked once per parameters but the account's
value) against botocore's own evaluation: every ruleset with an account parameter, random parameters and
accounts (AWS's endpoints and a custom one, account-id endpoint mode preferred, required, disabled, unset
or wrong), the provider alone and a client's whole endpoint resolution, installed and not."""

import botocore.config
import botocore.endpoint_provider
import botocore.session
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from greenfetch import _botocore_fast as fast
from greenfetch._botocore_fast import _account

ACCOUNT = "AWS::Auth::AccountId"
MODE = "AWS::Auth::AccountIdEndpointMode"


pytestmark = pytest.mark.usefixtures("fast_installed")


SESSION = botocore.session.get_session()
LOADER = SESSION.get_component("data_loader")
PARTITIONS = LOADER.load_data("partitions")


def _rulesets():
    found = {}
    for service in SESSION.get_available_services():
        try:
            data = LOADER.load_service_model(service, "endpoint-rule-set-1")
        except Exception:  # noqa: BLE001 - a service without a ruleset
            continue
        if {"AccountId", "AccountIdEndpointMode"} & set(data["parameters"]):
            found[service] = data
    return found


RULESETS = (
    _rulesets()
)  # DynamoDB, Kinesis, EventBridge's v2, S3 Control on botocore 1.43; DynamoDB, S3 Control on 1.36


def provider(service):
    """A provider with a ruleset of its own: a copy of the ruleset's data (providers made from the same
    data object share one parsed ruleset, and its memory, under greenfetch._botocore_fast._ruleset)."""
    return botocore.endpoint_provider.EndpointProvider(dict(RULESETS[service]), PARTITIONS)


def test_the_services_with_an_account_parameter_are_all_replayable():
    """Every such ruleset is one the memo stands in for (else the parity below would check nothing)."""
    assert {"dynamodb", "s3control"} <= set(RULESETS)
    for service in RULESETS:
        state = _account._state(provider(service).ruleset)
        assert state is not False and state[0] == "AccountId", service


def outcome(evaluate, ruleset, params):
    """An answer's url, properties and headers, or the error's kind and message."""
    try:
        got = evaluate(ruleset, dict(params))
    except Exception as exc:  # noqa: BLE001 - compared: both must fail alike
        return ("error", type(exc).__name__, str(exc))
    if got is None:
        return ("none",)
    return ("ok", got.url, got.properties, got.headers)


REGIONS = ["us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1", "us-iso-east-1", "bad region!", ""]
ENDPOINTS = ["http://127.0.0.1:9", "https://example.com/base", "https://10.0.0.1:8443", "ftp://x"]
MODES = ["preferred", "required", "disabled", "Preferred", ""]
accounts = st.one_of(
    st.integers(0, 10**12 - 1).map("{:012d}".format),
    st.sampled_from(["bad.label", "-x", "a" * 64, "ÄÖ", "", "x_y", "123456789012.x"]),
    st.text(alphabet="0123456789abz-.", max_size=14),
)
ARNS = [
    "arn:aws:dynamodb:us-east-1:123456789012:table/t",
    "arn:aws:dynamodb:us-east-1::table/t",
    "arn:aws:kinesis:us-east-1:123456789012:stream/s",
    "arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1",
    "arn:aws:events:us-east-1:123456789012:event-bus/b",
    "arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-01234567890123456/bucket/b",
    "arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-01234567890123456/accesspoint/a",
    "arn:aws-cn:s3:cn-north-1:123456789012:accesspoint/a",
    "arn:aws:s3::123456789012:accesspoint/mrap.mrap",
    "not-an-arn",
]
STRINGS = {
    "Region": REGIONS,
    "Endpoint": ENDPOINTS,
    "AccountIdEndpointMode": MODES,
    "OperationType": ["control", "data", "frontend", "x"],
    "OutpostId": ["op-01234567890123456", "bad.id", ""],
    "Bucket": ["bucket", "my.bucket", *ARNS[5:8]],
    "AccessPointName": ["ap", "my.ap", "mrap.mrap", *ARNS[6:9]],
}


def value_for(name, spec):
    if name == "AccountId":
        return accounts
    if spec.parameter_type is bool:
        return st.booleans()
    if spec.parameter_type is tuple:  # a string array: a list, which the memo leaves to botocore
        return st.lists(st.sampled_from(ARNS), max_size=2)
    return st.sampled_from(STRINGS.get(name, ARNS + ["x"]))


@st.composite
def walks(draw):
    """A ruleset, then a few parameter sets each asked for several accounts: the memo's key repeats."""
    service = draw(st.sampled_from(sorted(RULESETS)))
    specs = provider(service).ruleset.parameters
    runs = []
    for _ in range(draw(st.integers(1, 3))):
        base = {}
        for name, spec in specs.items():
            if name != "AccountId" and draw(st.booleans()):
                base[name] = draw(value_for(name, spec))
        if draw(st.booleans()):  # the common shape: a region, no FIPS, no dual stack
            base.update(Region=draw(st.sampled_from(REGIONS[:4])), UseFIPS=False, UseDualStack=False)
            base.pop("Endpoint", None) if draw(st.booleans()) else base.update(Endpoint=ENDPOINTS[0])
        for account in draw(st.lists(st.none() | accounts, min_size=1, max_size=6)):
            params = dict(base)
            if account is not None:
                params["AccountId"] = account
            runs.append(params)
    return service, runs


THEIRS: dict = {}  # botocore's evaluation keeps nothing between calls: one ruleset serves
OURS: dict = {}  # one long-lived provider per service: the memo carries over from example to example


@settings(max_examples=200, deadline=None)
@given(walks())
@example(
    (
        "dynamodb",
        [
            {"Region": "us-east-1", "AccountIdEndpointMode": m, "UseFIPS": f, "AccountId": a}
            for m in ("preferred", "required", "disabled")
            for f in (False, True)
            for a in ("111111111111", "bad.label", "222222222222")
        ],
    )
)
@example(
    (
        "s3control",
        [
            {"Region": "us-west-2", "RequiresAccountId": True, "AccountId": a, "OutpostId": o}
            for o in ("op-01234567890123456", "bad.id")
            for a in ("111111111111", "-x", "222222222222")
        ],
    )
)
def test_the_answer_is_botocores_for_any_parameters_and_accounts(walk):
    """Each answer (url, properties, headers) or error equals botocore's own evaluation of a fresh
    ruleset, with the memo on one ruleset for the whole run (other keys, earlier accounts)."""
    service, runs = walk
    if service not in OURS:
        OURS[service] = provider(service).ruleset
    ours = OURS[service]
    theirs = THEIRS.setdefault(service, provider(service).ruleset)
    for params in runs:
        assert outcome(_account.evaluate, ours, params) == outcome(_account._evaluate, theirs, params), (
            service,
            params,
        )


def test_dynamodb_is_walked_once_per_region_not_per_account(monkeypatch):
    """Sixty accounts in two regions, mode preferred against AWS and a custom endpoint: one walk per
    (region, endpoint) and the rest replayed, each answer botocore's (the account in AWS's host)."""
    walked = []
    record = _account._record

    def counted(ruleset, params, account):
        walked.append(params.get("Region"))
        return record(ruleset, params, account)

    monkeypatch.setattr(_account, "_record", counted)
    ours = provider("dynamodb").ruleset
    theirs = provider("dynamodb").ruleset
    for endpoint in (None, "http://127.0.0.1:9"):
        for region in ("us-east-1", "eu-west-1"):
            for number in range(60):
                params = {"Region": region, "UseFIPS": False, "UseDualStack": False}
                params.update(AccountId=f"{number:012d}", AccountIdEndpointMode="preferred")
                if endpoint:
                    params["Endpoint"] = endpoint
                got = outcome(_account.evaluate, ours, params)
                assert got == outcome(_account._evaluate, theirs, params)
                if endpoint is None:
                    assert got[1] == f"https://{number:012d}.ddb.{region}.amazonaws.com"
    assert walked == ["us-east-1", "eu-west-1"] * 2


def test_an_account_the_predicates_answer_otherwise_is_walked_again(monkeypatch):
    """A recorded walk is replayed only where each predicate answers as it did: an account that is no
    host label gets botocore's error (not the valid account's URL), and a valid one after it the URL."""
    ours = provider("dynamodb").ruleset
    theirs = provider("dynamodb").ruleset
    base = {
        "Region": "us-east-1",
        "UseFIPS": False,
        "UseDualStack": False,
        "AccountIdEndpointMode": "required",
    }
    for account in ("111111111111", "bad.label", "222222222222", "bad.label", None, "333333333333"):
        params = dict(base) if account is None else dict(base, AccountId=account)
        assert outcome(_account.evaluate, ours, params) == outcome(_account._evaluate, theirs, params), (
            account
        )
    assert outcome(_account.evaluate, ours, dict(base, AccountId="bad.label"))[0] == "error"


def test_what_the_memo_leaves_to_botocore():
    """Not this module's to replay: a list value, a non-str account, a ruleset of another class or with a
    library of its own, a ruleset without an account parameter; each gets botocore's own answer."""
    params = {"Region": "us-east-1", "AccountId": "111111111111", "AccountIdEndpointMode": "preferred"}
    ruleset = provider("dynamodb").ruleset
    listed = dict(params, ResourceArnList=["arn:aws:dynamodb:us-east-1:123456789012:table/t"])
    assert outcome(_account.evaluate, ruleset, listed) == outcome(_account._evaluate, ruleset, listed)
    assert outcome(_account.evaluate, ruleset, dict(params, AccountId=1))[0] == "error"
    assert _account._STATE not in ruleset.__dict__ or not ruleset.__dict__[_account._STATE][1]

    class Library(botocore.endpoint_provider.RuleSetStandardLibrary):
        pass

    own = provider("dynamodb").ruleset
    own.rule_lib = Library(own.rule_lib.partitions_data)
    assert outcome(_account.evaluate, own, params) == outcome(_account._evaluate, ruleset, params)
    assert _account._STATE not in own.__dict__
    sqs = botocore.endpoint_provider.EndpointProvider(
        LOADER.load_service_model("sqs", "endpoint-rule-set-1"), PARTITIONS
    )
    assert (
        _account.evaluate(sqs.ruleset, {"Region": "us-east-1"}).url == "https://sqs.us-east-1.amazonaws.com"
    )
    assert sqs.ruleset.__dict__[_account._STATE] is False


# -- a client's whole endpoint resolution, installed and not ----------------------------------------

CLIENTS: dict = {}


def client(service, region, mode, url, installed):
    key = (service, region, mode, url, installed)
    if key not in CLIENTS:
        try:
            config = botocore.config.Config(account_id_endpoint_mode=mode) if mode else None
        except TypeError:  # botocore 1.36: no such setting, and no account builtins; set as 1.43 sets them
            config = None
        made = CLIENTS[key] = SESSION.create_client(
            service,
            region_name=region,
            endpoint_url=url,
            config=config,
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="secret/example",
        )
        if MODE not in made._ruleset_resolver._builtins:  # botocore 1.36: plain values (it calls no builtin)
            made._ruleset_resolver._builtins[MODE] = mode
            made._ruleset_resolver._builtins[ACCOUNT] = None
    return CLIENTS[key]


OPERATIONS = {"dynamodb": "ListTables", "kinesis": "ListStreams", "eventbridgev2": None, "s3control": None}


def resolved(made, operation, account):
    """``construct_endpoint`` for the call, the client's account builtin set as greenfetch's view sets it
    (a function; a plain value on botocore 1.36, whose builtins are values)."""
    resolver = made._ruleset_resolver
    deferred = resolver._builtins[ACCOUNT] is not None and not isinstance(resolver._builtins[ACCOUNT], str)
    resolver._builtins[ACCOUNT] = (lambda: account) if deferred else account
    model = made.meta.service_model.operation_model(operation)
    context = {"client_region": made.meta.region_name, "client_config": made.meta.config}
    try:
        got = resolver.construct_endpoint(model, {}, context)
    except Exception as exc:  # noqa: BLE001 - compared: both must fail alike
        return ("error", type(exc).__name__, str(exc))
    return ("ok", got.url, got.properties, got.headers)


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(sorted(s for s in ("dynamodb", "kinesis") if s in RULESETS)),
    st.sampled_from(["us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"]),
    st.sampled_from(["preferred", "required", "disabled", None]),
    st.sampled_from([None, "http://127.0.0.1:9"]),
    st.lists(st.none() | accounts, min_size=1, max_size=5),
)
@example("dynamodb", "us-east-1", "preferred", None, ["111111111111", "bad.label", "222222222222"])
def test_a_clients_endpoint_is_botocores_installed_or_not(service, region, mode, url, seen):
    """A client's endpoint for each account in turn (the account as a builtin, like an account's view of a
    shared client): with greenfetch's adaptations, the same url, properties and headers, or the same
    error, as a client of the same settings with botocore's own code."""
    operation = OPERATIONS[service]
    for account in seen:
        ours = resolved(client(service, region, mode, url, True), operation, account)
        fast.uninstall()
        try:
            theirs = resolved(client(service, region, mode, url, False), operation, account)
        finally:
            assert fast.install()
        assert ours == theirs, (service, region, mode, url, account)
        if (service, region, mode, url, account) == (
            "dynamodb",
            "us-east-1",
            "preferred",
            None,
            "222222222222",
        ):
            assert ours[1] == "https://222222222222.ddb.us-east-1.amazonaws.com"  # the account reached it


# -- the uses no shipped ruleset makes of the account (yet) -------------------------------------------


def _ref(name):
    return {"ref": name}


def _fn(name, *argv, assign=None):
    made = {"fn": name, "argv": list(argv)}
    if assign:
        made["assign"] = assign
    return made


def _mode(mode, *rules):
    return {"type": "tree", "conditions": [_fn("stringEquals", _ref("Mode"), mode)], "rules": list(rules)}


def _endpoint(url, conditions=(), properties=None, headers=None):
    return {
        "type": "endpoint",
        "conditions": list(conditions),
        "endpoint": {"url": url, "properties": properties or {}, "headers": headers or {}},
    }


def _error(message, conditions=()):
    return {"type": "error", "conditions": list(conditions), "error": message}


SET = _fn("isSet", _ref("AccountId"))
SYNTHETIC = {
    "version": "1.0",
    "parameters": {
        "Region": {"type": "String", "builtIn": "AWS::Region"},
        "AccountId": {"type": "String", "builtIn": ACCOUNT},
        "Mode": {"type": "String"},
        "Flag": {"type": "Boolean", "default": False, "required": True},
    },
    "rules": [
        _mode(  # another function of the account, assigned: opaque
            "opaque",
            _endpoint(
                "https://{Prefix}.opaque.example.com",
                [SET, _fn("substring", _ref("AccountId"), 0, 3, False, assign="Prefix")],
            ),
            _error("short account {AccountId}"),
        ),
        _mode(  # the account inside a template handed to a function: opaque
            "template-arg",
            _endpoint("https://one.example.com", [SET, _fn("stringEquals", "{AccountId}", "111111111111")]),
            _endpoint("https://other.example.com"),
        ),
        _mode(  # a predicate's answer assigned; the account in properties and a header, not the URL
            "parts",
            _endpoint(
                "https://{Region}.example.com",
                [_fn("isValidHostLabel", _ref("AccountId"), False, assign="Valid")],
                properties={"authSchemes": [{"name": "sigv4", "signingName": "x-{AccountId}"}], "plain": "p"},
                headers={"x-account": [_ref("AccountId")], "x-static": ["s"]},
            ),
            _endpoint("https://flagged.example.com", [_fn("booleanEquals", _ref("Flag"), True)]),
            _error("bad account"),
        ),
        _mode("unchecked", _endpoint("https://{AccountId}.unchecked.example.com")),  # no isSet: unset fails
        _mode(
            "not",
            _endpoint("https://none.example.com", [_fn("not", SET)]),
            _endpoint(
                "https://{AccountId}.sub.example.com", [_fn("isValidHostLabel", _ref("AccountId"), True)]
            ),
            _endpoint(
                "https://{AccountId}.eq.example.com", [_fn("stringEquals", _ref("Region"), _ref("AccountId"))]
            ),
            _error("Invalid account: {AccountId}"),
        ),
        _endpoint("https://{Region}.default.example.com"),
    ],
}
SYNTHETIC_OURS: list = []


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "Region": st.sampled_from(["us-east-1", "eu-west-1", "111111111111"]),
                "Mode": st.sampled_from(["opaque", "template-arg", "parts", "unchecked", "not", "other"]),
            },
            optional={
                "AccountId": st.sampled_from(["111111111111", "us-east-1", "a.b", "-x"]) | accounts,
                "Flag": st.booleans(),
            },
        ),
        min_size=1,
        max_size=10,
    )
)
def test_a_synthetic_rulesets_uses_of_the_account_are_botocores(runs):
    """A ruleset that uses the account as no shipped one does yet: another function of it (assigned),
    a template of it handed to a function, a predicate's answer assigned, the account in properties and
    headers, a template without isSet (unset: botocore's KeyError), ``not`` over isSet, the account
    compared with another parameter: each answer or error botocore's."""
    if not SYNTHETIC_OURS:
        SYNTHETIC_OURS.append(botocore.endpoint_provider.RuleSet(**SYNTHETIC, partitions=PARTITIONS))
    ours = SYNTHETIC_OURS[0]
    theirs = botocore.endpoint_provider.RuleSet(**SYNTHETIC, partitions=PARTITIONS)
    assert _account._state(ours) is not False
    for params in runs:
        assert outcome(_account.evaluate, ours, params) == outcome(_account._evaluate, theirs, params), params


def test_a_new_account_whose_answer_it_does_not_reach_misses_nothing(monkeypatch):
    """With an endpoint URL DynamoDB's walk never reaches the account: a client's endpoint for a new
    account is the region's recorded answer (botocore's provider, its LRU and the replay never asked),
    botocore's own answer for it; against AWS's endpoints (the account in the host) each new account
    still goes to the replay, which resolves its host."""
    if "dynamodb" not in RULESETS:
        pytest.skip("no DynamoDB ruleset with an account parameter")
    asked = []
    theirs = fast._endpoint._resolve_endpoint  # botocore's own

    def counted(self, **params):
        asked.append(params.get("AccountId"))
        return theirs(self, **params)

    monkeypatch.setattr(fast._endpoint, "_resolve_endpoint", counted)
    # accounts no other test resolves: the provider's memo outlives a test, and Hypothesis's accounts
    # elsewhere in this module (small numbers first) once left 000000000005 resolved in eu-west-1
    fresh = ["381926457103", "592837461029", "703948572130", "814059683241", "925160794352"]
    for url in ("http://127.0.0.1:9", None):
        asked.clear()
        made = client("dynamodb", "eu-west-1", "preferred", url, True)
        got = [resolved(made, "ListTables", account) for account in fresh]
        fast.uninstall()
        try:
            plain = client("dynamodb", "eu-west-1", "preferred", url, False)
            want = [resolved(plain, "ListTables", account) for account in fresh]
        finally:
            assert fast.install()
        assert got == want
        if url:
            assert len(asked) <= 1  # the first account's walk only (none if an earlier test recorded it)
        else:
            assert asked == fresh


def test_blind_answers_only_for_a_walk_that_never_reached_the_account():
    """``blind``: the recorded answer object for a key whose one walk asked no predicate of the account
    and read it nowhere; None for an unseen key, a walk that asked (AWS's endpoints), a bad value."""
    ruleset = provider("dynamodb").ruleset
    custom = {"Region": "us-east-1", "UseFIPS": False, "UseDualStack": False, "Endpoint": "http://h:1"}
    custom.update(AccountIdEndpointMode="preferred")
    assert _account.blind(ruleset, {**custom, "AccountId": "111111111111"}) is None  # nothing walked yet
    first = _account.evaluate(ruleset, {**custom, "AccountId": "111111111111"})
    assert _account.blind(ruleset, {**custom, "AccountId": "222222222222"}) is first
    assert _account.blind(ruleset, {**custom}) is None  # the account unset: another key
    assert _account.blind(ruleset, {**custom, "AccountId": 7}) is None
    aws = {k: v for k, v in custom.items() if k != "Endpoint"}
    _account.evaluate(ruleset, {**aws, "AccountId": "111111111111"})
    assert _account.blind(ruleset, {**aws, "AccountId": "222222222222"}) is None  # the host reads it


def test_blind_never_answers_for_a_walk_that_asked_about_the_account():
    """A walk whose answer reads no account but that asked a predicate of it (here: a host label or
    not) is no account's answer: another account may answer the predicate otherwise."""
    label = _fn("isValidHostLabel", _ref("AccountId"), False)
    data = {
        "version": "1.0",
        "parameters": {"AccountId": {"type": "String", "builtIn": ACCOUNT}},
        "rules": [
            _endpoint("https://plain.example.com", [SET, _fn("not", label)]),
            _endpoint("https://{AccountId}.example.com", [SET]),
        ],
    }
    ruleset = botocore.endpoint_provider.RuleSet(**data, partitions=PARTITIONS)
    assert _account.evaluate(ruleset, {"AccountId": "a.b"}).url == "https://plain.example.com"
    assert _account.blind(ruleset, {"AccountId": "111111111111"}) is None
    assert _account.evaluate(ruleset, {"AccountId": "111111111111"}).url == "https://111111111111.example.com"
