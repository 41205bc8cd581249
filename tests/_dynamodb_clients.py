"""A DynamoDB botocore client for the HTTP session's tests: stock (botocore's urllib3 session) or with
greenfetch's gevent session installed, against a test server's URL."""

import botocore.config
import botocore.session

from greenfetch import Config
from greenfetch._http import install_http_session, session_kind
from greenfetch.testing import Reply, http_response

GEVENT = Config(backend="gevent")
# a DynamoDB answer's headers, and ListTables' answer, as the TLS tests' scripted server gives them
JSON = [("x-amzn-RequestId", "req-1"), ("Content-Type", "application/x-amz-json-1.0")]
OK = Reply(http_response(200, b'{"TableNames": ["tls"]}', JSON))


def dynamodb_client(url, *, verify=None, green=True, attempts=1, **cfg):
    config = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": attempts}, **cfg)
    made = botocore.session.get_session().create_client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=url,
        config=config,
        verify=verify,
        aws_access_key_id="AKID",
        aws_secret_access_key="secret",
    )
    if green:
        install_http_session(made, GEVENT)
        assert session_kind(made) == "geventhttpclient"
    return made


def masked(seen):
    """A request a scripted server saw, its time- and signature-dependent headers masked: what two
    clients sending the same call must agree on byte for byte."""
    volatile = {"x-amz-date", "authorization", "amz-sdk-invocation-id"}
    return seen.request_line, [(k, "*" if k.lower() in volatile else v) for k, v in seen.headers], seen.body
