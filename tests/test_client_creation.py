"""A client's creation, part 2 (docs/performance/client-and-parse.md, issue 24): greenfetch._botocore_fast's adaptations
of it against botocore's own code, both ways.

The HTTP session's pool manager built on its first read (``_httpsession``): a session made either way
is botocore's once its manager is read (the same attributes, a manager with the same pool settings and
an SSL context of the same settings), for any arguments; closing builds nothing; over the real HTTPS
loopback server botocore's urllib3 session checks certificates (the right CA, a wrong one, none, the
default bundle) and sends a client certificate and through a proxy alike both ways; and a client
greenfetch makes for the gevent backend builds no SSL context at all (botocore's code: one a client).
"""

import ssl

import botocore.config
import botocore.configprovider
import botocore.exceptions
import botocore.httpsession
import botocore.session
import pytest
from _by_python import GEVENT_KIND, needs_geventhttpclient
from _dynamodb_clients import OK, dynamodb_client, masked
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfetch import Config, Engine, Request
from greenfetch import _botocore_fast as fast
from greenfetch._botocore_fast import _httpsession, _ruleset, _scoped
from greenfetch._http import session_kind
from greenfetch.testing import ScriptedServer


@pytest.fixture(autouse=True)
def _installed():
    was = fast.installed()
    assert fast.install()
    yield
    way(True)
    if not was:
        fast.uninstall()


MODULES = {_httpsession.__name__}
PATCHES = [patch for patch in fast._PATCHES if getattr(patch[3], "__module__", None) in MODULES]


def way(installed):
    """This module's adaptations (the others stay installed) or botocore's code."""
    assert len(PATCHES) == 3
    for owner, name, theirs, ours in PATCHES:
        setattr(owner, name, ours if installed else theirs)


def outcome(fn, *args, **kwargs):
    try:
        return ("ok", fn(*args, **kwargs))
    except Exception as exc:  # noqa: BLE001 - compared: both must fail alike
        return ("error", type(exc).__name__, str(exc))


@pytest.fixture
def counted(monkeypatch):
    """How many SSL contexts and pool managers botocore's session code makes."""
    made = {"contexts": 0, "managers": 0}
    context, manager = botocore.httpsession.create_urllib3_context, botocore.httpsession.PoolManager

    def counting_context(*args, **kwargs):
        made["contexts"] += 1
        return context(*args, **kwargs)

    def counting_manager(*args, **kwargs):
        made["managers"] += 1
        return manager(*args, **kwargs)

    monkeypatch.setattr(botocore.httpsession, "create_urllib3_context", counting_context)
    monkeypatch.setattr(botocore.httpsession, "PoolManager", counting_manager)
    return made


# -- the pool manager, built on its first read --------------------------------------------------------


def test_a_client_greenfetch_makes_for_gevent_builds_no_ssl_context(counted, monkeypatch):
    """The saving itself: greenfetch replaces botocore's session of each client (gevent backend) and
    closes it, or keeps it where geventhttpclient is not installed (Python 3.10), unused so far; botocore's
    code made a pool manager and its SSL context for each, now none is made."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    services = ["dynamodb", "sqs", "ec2", "s3"]
    made = {}
    for installed in (True, False):
        engine = Engine(Config.resolve({"backend": "gevent", "endpoint_url": "http://127.0.0.1:9"}))
        way(installed)  # after the engine: its client cache installs every adaptation
        counted.update(contexts=0, managers=0)
        for service in services:
            client = engine.clients.client(Request(service, "X", {}, region="eu-west-1"))
            assert session_kind(client) == GEVENT_KIND
        made[installed] = dict(counted)
        engine.close()
    # botocore's code: one of each a client at least (S3's client makes more sessions of its own)
    assert made[False]["contexts"] == made[False]["managers"] >= len(services)
    assert made[True] == {"contexts": 0, "managers": 0}


verifies = st.sampled_from([True, False, None, "/etc/ssl/certs/ca-certificates.crt", "/nonexistent"])
proxy_maps = st.sampled_from([None, {}, {"https": "http://proxy.test:3128"}, {"http": "http://u:p@proxy:1"}])
timeouts = st.sampled_from([None, 5, 2.5, (1, 2), (None, 3), "x"])
pool_sizes = st.sampled_from([1, 10, 256])
socket_options = st.sampled_from([None, [], [(6, 1, 1)]])
client_certs = st.sampled_from([None, "c.pem", ("c.pem", "k.pem"), 7])
proxy_configs = st.sampled_from([None, {}, {"proxy_use_forwarding_for_https": True, "proxy_ca_bundle": "ca"}])


def context_settings(context):
    return (
        type(context),
        context.protocol,
        context.options,
        context.verify_mode,
        context.check_hostname,
        [cipher["name"] for cipher in context.get_ciphers()],
        context.post_handshake_auth,
        context.keylog_filename,
        context.minimum_version,
        context.maximum_version,
    )


def described(session):
    """A session as botocore's code reads it: every attribute, its manager's settings (its SSL context
    by its settings), its proxy configuration's."""
    fields = dict(vars(session))
    fields["_manager"] = manager = session._manager
    assert "_manager" in vars(session)
    fields["_manager"] = (
        type(manager),
        manager.pool_classes_by_scheme,
        {k: timed(v) for k, v in manager.connection_pool_kw.items() if k != "ssl_context"},
        context_settings(manager.connection_pool_kw["ssl_context"]),
        manager.proxy,
        len(manager.pools),
    )
    fields["_proxy_config"] = (vars(session._proxy_config), session._proxy_config.settings)
    fields["_timeout"] = timed(session._timeout)
    return fields


def timed(value):
    """A urllib3 Timeout by its settings (it has no equality of its own)."""
    if type(value).__name__ == "Timeout":
        return ("Timeout", value.connect_timeout, value.read_timeout, value.total)
    return value


@settings(max_examples=120, deadline=None)
@given(verifies, proxy_maps, timeouts, pool_sizes, socket_options, client_certs, proxy_configs)
def test_a_session_is_botocores_once_its_manager_is_read(
    verify, proxies, timeout, size, options, cert, pconf
):
    """Any arguments, positional or by name: the session made with its manager deferred is, once the
    manager is read, the session botocore makes (or fails as botocore fails)."""
    kwargs = {
        "verify": verify,
        "proxies": proxies,
        "timeout": timeout,
        "max_pool_connections": size,
        "socket_options": options,
        "client_cert": cert,
        "proxies_config": pconf,
    }
    got = {}
    for installed in (True, False):
        way(installed)
        session = outcome(botocore.httpsession.URLLib3Session, **kwargs)
        got[installed, "named"] = session if session[0] == "error" else described(session[1])
        if installed and session[0] == "ok":
            assert "_manager" not in vars(botocore.httpsession.URLLib3Session(**kwargs))  # deferred
        positional = outcome(botocore.httpsession.URLLib3Session, *kwargs.values())
        got[installed, "positional"] = positional if positional[0] == "error" else described(positional[1])
    assert got[True, "named"] == got[False, "named"]
    assert got[True, "positional"] == got[False, "positional"] == got[True, "named"]


def test_defaults_and_a_subclass_are_botocores():
    way(True)
    deferred = botocore.httpsession.URLLib3Session()
    assert "_manager" not in vars(deferred)

    class Mine(botocore.httpsession.URLLib3Session):
        pass

    assert "_manager" in vars(Mine())  # botocore's own __init__ for anything but URLLib3Session itself
    way(False)
    assert described(deferred) == described(botocore.httpsession.URLLib3Session())
    # uninstalled, the descriptor stays: a session made deferred still builds its manager when read
    assert "_manager" in vars(deferred) and deferred._manager is deferred._manager


def test_close_builds_nothing_and_clears_what_was_built(counted):
    way(True)
    session = botocore.httpsession.URLLib3Session(proxies={"https": "http://proxy.test:3128"})
    proxy = session._get_proxy_manager("http://proxy.test:3128")  # a proxy manager, cleared by close
    proxy.connection_from_url("https://example.test")
    counted.update(contexts=0, managers=0)
    session.close()
    assert counted == {"contexts": 0, "managers": 0} and "_manager" not in vars(session)
    assert len(proxy.pools) == 0
    used = botocore.httpsession.URLLib3Session()
    used._manager.connection_from_url("https://example.test")
    assert len(used._manager.pools) == 1
    used.close()
    assert len(used._manager.pools) == 0


# -- botocore's urllib3 session over the real HTTPS loopback server, both ways ------------------------


def call(made):
    try:
        return ("ok", made.list_tables()["TableNames"], type(made._endpoint.http_session).__name__)
    except botocore.exceptions.BotoCoreError as exc:
        return (type(exc).__name__,)


def test_urllib3_sessions_tls_is_botocores(cas):
    """What botocore's urllib3 session does over TLS (kept where greenfetch's session cannot serve a
    client's config, and for any other botocore client in the process) is the same both ways: the right
    CA, a wrong one, none, the default bundle; a client certificate sent (a missing one fails alike);
    the same bytes on the wire."""
    ca, other = cas
    scripted = ScriptedServer(lambda _: OK, tls=ca)
    got = {}
    with scripted as url:
        for installed in (True, False):
            way(installed)
            got[installed] = [
                call(dynamodb_client(url, verify=verify, green=False))
                for verify in (ca.ca, other.ca, False, None)
            ] + [
                call(dynamodb_client(url, verify=ca.ca, green=False, client_cert=(ca.cert, ca.key))),
                call(dynamodb_client(url, verify=ca.ca, green=False, client_cert="/nonexistent.pem")),
            ]
        half = len(scripted.seen) // 2
        assert half and [masked(s) for s in scripted.seen[:half]] == [masked(s) for s in scripted.seen[half:]]
    assert got[True] == got[False]
    ok = ("ok", ["tls"], "URLLib3Session")
    assert got[True] == [ok, ("SSLError",), ok, ("SSLError",), ok, got[True][-1]]
    assert got[True][-1] != ok  # the missing certificate is read, and fails


def test_urllib3_session_through_a_proxy_is_botocores():
    """A proxy (greenfetch keeps botocore's session for it): the request goes to the proxy in absolute
    form, the same both ways, and no pool manager for direct connections is built."""
    scripted = ScriptedServer(lambda _: OK)
    with scripted as url:
        for installed in (True, False):
            way(installed)
            made = dynamodb_client("http://dynamodb.example.test", green=False, proxies={"http": url})
            assert call(made) == ("ok", ["tls"], "URLLib3Session")
            assert ("_manager" in vars(made._endpoint.http_session)) is not installed
        first, second = scripted.seen
        assert first.request_line == "POST http://dynamodb.example.test/ HTTP/1.1"
        assert masked(first) == masked(second)


@needs_geventhttpclient
def test_the_shared_tls_context_is_unchanged(cas):
    """greenfetch's own session takes its settings from botocore's, made either way."""
    ca, _ = cas
    with ScriptedServer(lambda _: OK, tls=ca) as url:
        for installed in (True, False):
            way(installed)
            assert call(dynamodb_client(url, verify=ca.ca)) == ("ok", ["tls"], "GeventHTTPSession")
            made = dynamodb_client(url, verify=False)
            assert call(made) == ("ok", ["tls"], "GeventHTTPSession")
            (origin,) = made._endpoint.http_session._origins.values()
            assert origin.pool._tls.verify_mode == ssl.CERT_NONE


# -- one parsed endpoint ruleset per ruleset ----------------------------------------------------------

RULESET_PATCHES = [p for p in fast._PATCHES if getattr(p[3], "__module__", None) == _ruleset.__name__]


def ruleset_way(installed):
    assert len(RULESET_PATCHES) == 1
    for owner, name, theirs, ours in RULESET_PATCHES:
        setattr(owner, name, ours if installed else theirs)


def parsed(value, seen=None):
    """A parsed ruleset as data: each object by its class and attributes (greenfetch's own marks left
    out), lists, tuples and dicts by their items."""
    if isinstance(value, (list, tuple)):
        return [parsed(v) for v in value]
    if isinstance(value, dict):
        return {k: parsed(v) for k, v in value.items()}
    if hasattr(value, "__dict__") and not callable(value):
        fields = {k: v for k, v in vars(value).items() if not k.startswith("_greenfetch")}
        return (type(value).__qualname__, parsed(fields))
    return value


RULESET_SAMPLE = ["s3", "s3control", "dynamodb", "ec2", "sts", "lambda", "iam", "sqs", "route53"]
PARAMETERS = [
    {"Region": "us-east-1"},
    {"Region": "eu-west-1", "UseFIPS": True},
    {"Region": "us-gov-west-1", "UseDualStack": True},
    {"Region": "cn-north-1"},
    {"Region": "us-east-1", "Endpoint": "https://example.test"},
]


def endpoint(provider, params):
    try:
        found = provider.resolve_endpoint(**params)
        return ("ok", found.url, found.properties, found.headers)
    except Exception as exc:  # noqa: BLE001 - compared: both must fail alike
        return ("error", type(exc).__name__, str(exc))


def test_a_providers_ruleset_is_botocores_and_shared_by_the_clients_of_its_service():
    """Clients of a service in two regions: each provider is botocore's (the same attributes, the same
    parsed ruleset, the same endpoints for parameters of every partition, FIPS, dual-stack, a custom
    endpoint); with the adaptation the two share one parse, with botocore's code each has its own."""
    session = botocore.session.get_session()
    got = {}
    for installed in (True, False):
        ruleset_way(installed)
        for service in RULESET_SAMPLE:
            east, west = (
                session.create_client(
                    service, region_name=region, aws_access_key_id="a", aws_secret_access_key="b"
                )
                for region in ("us-east-1", "eu-west-1")
            )
            providers = [client._ruleset_resolver._provider for client in (east, west)]
            assert (providers[0].ruleset is providers[1].ruleset) is installed, service
            got[installed, service] = [
                parsed({k: v for k, v in vars(provider).items() if k != "_greenfetch_answers"})
                for provider in providers
            ] + [[endpoint(provider, params) for params in PARAMETERS] for provider in providers]
    for service in RULESET_SAMPLE:
        assert got[True, service] == got[False, service], service
        assert any(answer[0] == "ok" for answer in got[True, service][-1]), service


def test_a_shared_ruleset_goes_with_its_last_client():
    import gc
    import weakref

    session = botocore.session.get_session()
    east, west = (
        session.create_client("sqs", region_name=r, aws_access_key_id="a", aws_secret_access_key="b")
        for r in ("us-east-1", "eu-west-1")
    )
    ruleset = weakref.ref(east._ruleset_resolver._provider.ruleset)
    assert ruleset() is west._ruleset_resolver._provider.ruleset
    del east
    gc.collect()
    assert ruleset() is west._ruleset_resolver._provider.ruleset
    del west
    gc.collect()
    assert ruleset() is None


def test_a_provider_of_its_own_class_or_another_ruleset_class_parses_its_own(monkeypatch):
    import botocore.endpoint_provider as ep

    loader = botocore.session.get_session().get_component("data_loader")
    data, partitions = loader.load_service_model("sqs", "endpoint-rule-set-1"), loader.load_data("partitions")
    first = ep.EndpointProvider(ruleset_data=data, partition_data=partitions)
    assert ep.EndpointProvider(ruleset_data=data, partition_data=partitions).ruleset is first.ruleset

    class Mine(ep.EndpointProvider):
        pass

    assert Mine(ruleset_data=data, partition_data=partitions).ruleset is not first.ruleset

    class Rules(ep.RuleSet):
        pass

    monkeypatch.setattr(ep, "RuleSet", Rules)
    assert type(ep.EndpointProvider(ruleset_data=data, partition_data=partitions).ruleset) is Rules


# -- a variable from the environment: its name encoded once -------------------------------------------


def test_an_environment_variables_name_is_encoded_once(monkeypatch):
    """``EnvironmentProvider.provide`` encodes a name once while ``os.environ.encodekey`` is the same
    function (botocore's code: each lookup), and still reads the variable's value each time."""
    import os

    from greenfetch._botocore_fast import _client

    calls = []
    encode = os.environ.encodekey

    def counting(name):
        calls.append(name)
        return encode(name)

    monkeypatch.setattr(os.environ, "encodekey", counting)
    monkeypatch.setattr(_client, "_encodekey", counting)
    monkeypatch.setattr(_client, "_ENCODED", {})
    provider = botocore.configprovider.EnvironmentProvider("GREENFETCH_TEST_VARIABLE", os.environ)
    values, encoded = [], 0
    for value in ("one", "two", None, "three"):
        if value is None:
            monkeypatch.delenv("GREENFETCH_TEST_VARIABLE", raising=False)
        else:
            monkeypatch.setenv("GREENFETCH_TEST_VARIABLE", value)
        before = len(calls)
        values.append(provider.provide())
        encoded += len(calls) - before
    assert values == ["one", "two", None, "three"]
    assert encoded == 1


# -- the profile read once per client creation ---------------------------------------------------------

SCOPED_PATCHES = [p for p in fast._PATCHES if getattr(p[3], "__module__", None) == _scoped.__name__]


def scoped_way(installed):
    assert len(SCOPED_PATCHES) == 2
    for owner, name, theirs, ours in SCOPED_PATCHES:
        setattr(owner, name, ours if installed else theirs)


CONFIG = """[default]
region = eu-west-1
max_attempts = 7
s3 =
  addressing_style = path
[profile other]
region = ap-south-1
retry_mode = adaptive
use_fips_endpoint = true
s3 =
  use_accelerate_endpoint = true
"""


def made(service, profile=None):
    session = botocore.session.Session(profile=profile)
    try:
        client = session.create_client(service, aws_access_key_id="a", aws_secret_access_key="b")
    except botocore.exceptions.BotoCoreError as exc:
        return ("error", type(exc).__name__, str(exc))
    config = client.meta.config
    return (
        client.meta.region_name,
        client.meta.endpoint_url,
        {k: v for k, v in vars(config).items() if k != "_user_provided_options"},
        sorted(config._user_provided_options),
        session.get_scoped_config(),
    )


def test_a_client_from_a_profile_is_botocores(tmp_path, monkeypatch):
    """Clients made in the default profile, a named one (by the session, by AWS_PROFILE, by
    AWS_DEFAULT_PROFILE) and a missing one: the same region, endpoint and config both ways (or the same
    ProfileNotFound), and the scoped config read after the creation follows the environment."""
    path = tmp_path / "config"
    path.write_text(CONFIG)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    got = {}
    for installed in (True, False):
        scoped_way(installed)
        rows = [made("s3"), made("s3", "other"), made("dynamodb", "missing")]
        monkeypatch.setenv("AWS_PROFILE", "other")
        rows += [made("s3"), made("dynamodb", "missing")]
        monkeypatch.delenv("AWS_PROFILE")
        monkeypatch.setenv("AWS_DEFAULT_PROFILE", "other")
        rows.append(made("sqs"))
        monkeypatch.delenv("AWS_DEFAULT_PROFILE")
        session = botocore.session.Session()
        before = session.get_scoped_config()
        monkeypatch.setenv("AWS_PROFILE", "other")
        rows.append((before, session.get_scoped_config()))
        monkeypatch.delenv("AWS_PROFILE")
        got[installed] = rows
    assert got[True] == got[False]
    assert got[True][0][0] == "eu-west-1" and got[True][1][0] == "ap-south-1"
    assert got[True][2][:2] == ("error", "ProfileNotFound")
    assert got[True][-1][0] != got[True][-1][1]


def test_the_profile_is_read_once_per_client_creation(monkeypatch):
    """The saving itself: one read of the ``profile`` variable a creation (botocore's code: one per
    scoped config, ~50 a client)."""
    reads = []
    ask = botocore.configprovider.ConfigValueStore.get_config_variable

    def counting(store, name):
        if name == "profile":
            reads.append(name)
        return ask(store, name)

    monkeypatch.setattr(botocore.configprovider.ConfigValueStore, "get_config_variable", counting)
    session = botocore.session.Session()
    session.create_client("sqs", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    counts = {}  # (the session's first client also reads it making the session's token resolver)
    for installed in (True, False):
        scoped_way(installed)
        reads.clear()
        session.create_client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
        )
        counts[installed] = len(reads)
    assert counts[True] == 1 and counts[False] > 20
