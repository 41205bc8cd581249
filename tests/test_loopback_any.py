"""The loopback server's any-protocol mode: every operation answered with a valid, empty, final page.

Budget: ~5 s (9 s at load 7 on 2 cores). The pure part renders and routes every listing operation
(List*/Describe* with no required input) of a few services per protocol through botocore's own
serializers and parsers, no sockets; the served part sends about 60 of them through greenfetch's engine to
a real ``any_server`` over HTTP.
"""

import json
from urllib.parse import urlencode

import botocore.loaders
import botocore.model
import botocore.parsers
import botocore.serialize
import jmespath
import pytest

from greenfetch import Config, Engine, Request
from greenfetch.testing import any_server
from greenfetch.testing._loopback_any_answers import ACCOUNT, render
from greenfetch.testing._loopback_any_routes import build

# A few services per wire protocol (botocore picks JSON over CBOR when a service offers both, so the
# CBOR ones are the services that offer nothing else).
SERVICES = {
    "json": ["dynamodb", "logs", "kms", "ecs", "sqs", "timestream-write"],
    "query": ["iam", "cloudformation", "elbv2", "elb", "rds", "docdb", "sdb"],
    "ec2": ["ec2"],
    "rest-json": ["lambda", "eks", "efs", "lexv2-models", "lex-models"],
    "rest-xml": ["s3", "route53", "cloudfront"],
    "smithy-rpc-v2-cbor": ["eventbridgev2"],
}
PER_PROTOCOL = 10  # listing operations per protocol sent over HTTP (fewer where the services have fewer)
_LOADER = botocore.loaders.create_loader()


def _model(service: str) -> botocore.model.ServiceModel:
    return botocore.model.ServiceModel(_LOADER.load_service_model(service, "service-2"), service_name=service)


def _listings(service: str) -> list[botocore.model.OperationModel]:
    """Its List*/Describe* operations with no required input but a page size."""
    model = _model(service)
    ops = [
        model.operation_model(name) for name in model.operation_names if name.startswith(("List", "Describe"))
    ]
    return [
        op
        for op in ops
        if not set(op.input_shape.required_members if op.input_shape else ()) - {"MaxResults"}
    ]


def _params(op: botocore.model.OperationModel) -> dict[str, int]:
    return {"MaxResults": 10} if op.input_shape and "MaxResults" in op.input_shape.required_members else {}


def _paginator(service: str, op: str) -> dict | None:
    try:
        pages = _LOADER.load_service_model(service, "paginators-1")["pagination"]
    except botocore.exceptions.DataNotFoundError:
        return None
    return pages.get(op)


def _tokens(service: str, op: str) -> list[str]:
    config = _paginator(service, op) or {}
    token = config.get("output_token", [])
    return [t.split("||")[0].strip() for t in ([token] if isinstance(token, str) else token)]


def _items_paths(service: str, op: botocore.model.OperationModel) -> list[tuple[str, bool]]:
    """(JMESPath of the page's items, whether the wire can carry it empty): the paginator's result keys,
    else the output's one list member. A flattened XML list has no empty form (left out of the page)."""
    config = _paginator(service, op.name)
    out = op.output_shape
    xml = op.metadata["protocol"] in ("query", "ec2", "rest-xml")
    if config and "result_key" in config:
        keys = config["result_key"]
        keys = [keys] if isinstance(keys, str) else keys
    else:
        keys = [name for name, m in (out.members.items() if out else ()) if m.type_name == "list"][:1]
    paths = []
    for key in keys:
        shape, empty = out, True
        for part in key.split("."):
            shape = shape.members[part] if shape is not None and part in shape.members else None
            if shape is None or "location" in shape.serialization:
                empty = False  # a key in a header or deeper than the page's lists: not sent
                break
            if shape.type_name == "list" and shape.serialization.get("flattened") and xml:
                empty = False
        paths.append((key, empty))
    return paths


def _corpus() -> list[tuple[str, str, botocore.model.OperationModel]]:
    found = []
    for protocol, services in SERVICES.items():
        ops = [(protocol, s, op) for s in services for op in _listings(s)]
        found += ops[:: max(1, len(ops) // PER_PROTOCOL)][:PER_PROTOCOL]
    return found


@pytest.fixture(scope="module")
def table():
    return build([s for services in SERVICES.values() for s in services])


# -- pure: rendering and routing, through botocore's own serializers and parsers --------------------


def test_every_listing_answer_parses_empty_and_final_and_routes_back_to_its_operation(table):
    checked = 0
    for protocol, services in SERVICES.items():
        for service in services:
            model = _model(service)
            assert model.resolved_protocol == protocol, service
            parser = botocore.parsers.create_parser(protocol)
            serializer = botocore.serialize.create_serializer(protocol, include_validation=False)
            for op in _listings(service):
                status, headers, body = render(protocol, op)
                parsed = parser.parse(
                    {"status_code": status, "headers": headers, "body": body}, op.output_shape
                )
                for path, empty in _items_paths(service, op):
                    assert jmespath.search(path, parsed) == ([] if empty else None), (
                        service,
                        op.name,
                        path,
                        body,
                    )
                assert not [t for t in _tokens(service, op.name) if jmespath.search(t, parsed)], (
                    service,
                    op.name,
                )
                request = _wire(serializer.serialize_to_request(_params(op), op), model)
                answer = table.lookup(*request)
                assert answer is not None, (service, op.name, request[:2])
                if op.is_endpoint_discovery_operation:  # names the server instead (see the next test)
                    continue
                got = parser.parse(
                    {"status_code": answer[0], "headers": answer[1], "body": answer[2]}, op.output_shape
                )
                assert got == parsed, (service, op.name, request[:2], answer[2][:200])
                checked += 1
    assert checked > 250


def _wire(request: dict, model: botocore.model.ServiceModel) -> tuple[str, str, dict[str, str], bytes]:
    """(method, path, headers, body) as the loopback child hands them to the handler."""
    query = request["query_string"]
    path = request["url_path"] + (f"?{urlencode(query, doseq=True)}" if query else "")
    headers = {k.lower(): v for k, v in request["headers"].items()}
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/{model.signing_name}/"
        "aws4_request, SignedHeaders=host, Signature=0"
    )
    body = request["body"]
    if isinstance(body, dict):
        body = urlencode(body, doseq=True)
    return request["method"], path, headers, body.encode() if isinstance(body, str) else body or b""


def test_a_flattened_xml_list_is_left_out_rather_than_sent_as_one_empty_item():
    """S3's Contents are repeated <Contents> elements with no wrapper: an empty <Contents/> would read as
    one object with no fields."""
    op = _model("s3").operation_model("ListObjectsV2")
    status, headers, body = render("rest-xml", op)
    parsed = botocore.parsers.create_parser("rest-xml").parse(
        {"status_code": status, "headers": headers, "body": body}, op.output_shape
    )
    assert "Contents" not in parsed and "CommonPrefixes" not in parsed and not parsed.get("IsTruncated")


def test_endpoint_discovery_finds_the_server_itself(table):
    _, _, body = table.lookup(
        "POST",
        "/",
        {"x-amz-target": "Timestream_20181101.DescribeEndpoints", "host": "127.0.0.1:4321"},
        b"{}",
    )
    assert json.loads(body) == {
        "Endpoints": [{"Address": "http://127.0.0.1:4321", "CachePeriodInMinutes": 1440}]
    }


def test_get_caller_identity_names_an_account(served):
    """An empty page would leave a caller that checks whose credentials it holds with no account."""
    _, engine = served
    got = engine.execute(Request("sts", "GetCallerIdentity", region="us-east-1"))
    assert got.ok and got.result["Account"] == ACCOUNT and got.result["Arn"].endswith(":user/loopback")


def test_operations_no_request_can_tell_apart_share_one_answer_with_both_lists(table):
    """lex-models' StartImport and lexv2-models' ListImports are both POST /imports/ (AWS tells them apart
    by host); rds and docdb share their query API version."""
    _, _, body = table.lookup(
        "POST", "/imports/", {"authorization": "Credential=A/20240101/us-east-1/lex/aws4_request"}, b"{}"
    )
    assert b'"importSummaries": []' in body and b'"tags": []' in body
    _, _, body = table.lookup("POST", "/", {}, b"Action=DescribeDBClusters&Version=2014-10-31")
    assert b"<DBClusters />" in body or b"<DBClusters/>" in body


def test_an_unknown_service_name_is_refused_with_the_names_it_resembles():
    with pytest.raises(ValueError, match=r"unknown service\(s\) \['dynamodbb'\].*did you mean dynamodb"):
        build(["dynamodbb"])
    with pytest.raises(ValueError, match="dynamodbb"), any_server(services=["dynamodbb"]):
        pass


# -- served: botocore through greenfetch over HTTP ------------------------------------------------------


@pytest.fixture(scope="module")
def served(monkeypatch_module):
    monkeypatch_module.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")  # else data.127.0.0.1 and such
    with any_server(
        latency=0.002, services=[s for services in SERVICES.values() for s in services] + ["sts"]
    ) as server:
        # AWS_ENDPOINT_URL, as the breadth benchmark points both tools (an explicit endpoint_url turns
        # botocore's endpoint discovery off)
        monkeypatch_module.setenv("AWS_ENDPOINT_URL", server.url)
        engine = Engine(Config.resolve({"region": "us-east-1", "concurrency": 32, "max_attempts": 1}))
        yield server, engine
        engine.close()


@pytest.fixture(scope="module")
def monkeypatch_module():
    patch = pytest.MonkeyPatch()
    yield patch
    patch.undo()


def test_listings_of_every_protocol_come_back_ok_with_empty_items_and_one_page_each(served):
    server, engine = served
    corpus = _corpus()
    assert {protocol for protocol, _, _ in corpus} == set(SERVICES) and len(corpus) >= 50
    server.reset_stats()
    results = engine.batch_requests(
        [{"service": s, "operation": op.name, "params": _params(op), "paginate": True} for _, s, op in corpus]
    )
    failed = [(r.request.service, r.request.operation, r.error_code, r.error) for r in results if not r.ok]
    assert not failed
    for (protocol, service, op), result in zip(corpus, results, strict=True):
        if op.is_endpoint_discovery_operation:
            assert result.result["Endpoints"][0]["Address"] == server.url
            continue
        for path, empty in _items_paths(service, op):
            assert jmespath.search(path, result.result) == ([] if empty else None), (
                protocol,
                service,
                op.name,
            )
    stats = server.stats()
    assert stats["requests"] == stats["ok"] == len(corpus)  # one page each: every paginator stopped at once
    assert stats["delay_min"] == pytest.approx(0.002)  # the configured latency applies to every answer


def test_a_role_in_each_account_is_assumed_and_its_calls_are_that_account(served):
    """STS answers as the inventory's loopback server does, so an inventory over many accounts runs
    here: AssumeRole gives credentials whose key carries the role's account, and GetCallerIdentity
    signed with them names that account (with the caller's own key: ``ACCOUNT``, as before)."""
    from greenfetch.inventory import AccountCredentials

    _, engine = served
    accounts = ["111111111111", "222222222222"]
    creds = AccountCredentials(engine, "Reader")
    for account in accounts:
        got = creds.get(account)
        assert got is not None, creds.status(account)
        who = engine.execute(Request("sts", "GetCallerIdentity", region="us-east-1", credentials=got))
        assert who.ok and who.result["Account"] == account, who
    mine = engine.execute(Request("sts", "GetCallerIdentity", region="us-east-1"))
    assert mine.result["Account"] == ACCOUNT


def test_calls_that_need_more_than_the_model_says_reach_their_operation(served):
    """S3's directory buckets sign as s3express (the endpoint rules say so); Timestream's clients first
    discover their endpoint."""
    _, engine = served
    results = engine.batch_requests(
        [
            {"service": "s3", "operation": "ListDirectoryBuckets"},
            {"service": "timestream-write", "operation": "ListDatabases"},
        ]
    )
    assert [(r.ok, r.error) for r in results] == [(True, None), (True, None)]
    assert results[0].result["Buckets"] == [] and results[1].result["Databases"] == []


def test_an_operation_of_a_service_not_served_is_a_clear_failed_result_in_its_protocol(served):
    _, engine = served
    results = engine.batch_requests(
        [
            {"service": "sns", "operation": "ListTopics"},  # query
            {"service": "glue", "operation": "GetDatabases"},  # json
            {"service": "apigateway", "operation": "GetRestApis"},  # rest-json
        ]
    )
    for result in results:
        assert not result.ok and result.error_code == "UnknownOperationException", result
        assert "no operation of the served services matches" in result.error
