"""Standard mode's "no retry" shortcut (``_botocore_fast._response.needs_retry``) takes botocore's whole
handler wherever the handler's chain of checkers is not exactly standard mode's: each checker's place
taken by one that always retries, the special checkers one more or one less. An answer without an
error is then retried as botocore's own handler retries it (docs/performance/engine-call.md, issue 24
parts 6 and 9: the chain's types are checked one by one, without a tuple of them a call).
"""

from __future__ import annotations

from typing import Any

import botocore.awsrequest
import botocore.config
import botocore.session
import pytest
from botocore.retries.standard import RetryHandler

from greenfetch import _botocore_fast as fast

pytestmark = pytest.mark.usefixtures("fast_installed")


class Always:
    """A checker that retries everything."""

    def is_retryable(self, context: Any) -> bool:
        return True


OPERATIONS = {"dynamodb": "ListTables", "sqs": "ListQueues"}


def handler_of(service: str) -> tuple[RetryHandler, Any]:
    client = botocore.session.Session().create_client(
        service,
        region_name="us-east-1",
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 3}),
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret/example",
    )
    handlers = client.meta.events._emitter._handlers.prefix_search(
        f"needs-retry.{service}.{OPERATIONS[service]}"
    )
    retry = next(h.__self__ for h in handlers if isinstance(getattr(h, "__self__", None), RetryHandler))
    return retry, client.meta.service_model.operation_model(OPERATIONS[service])


def replaced(position: str) -> Any:
    """A change to a handler's chain: a checker's place taken by ``Always``, or the specials' list
    one longer or one shorter."""

    def change(retry: RetryHandler) -> None:
        conditions = retry._retry_policy._retry_checker
        checkers = conditions._additional_checkers._checkers
        specials = checkers[3]._checkers
        if position.startswith("checker"):
            checkers[int(position[-1])] = Always()
        elif position.startswith("special"):
            specials[int(position[-1])] = Always()
        elif position == "one more special":
            specials.append(Always())
        elif position == "one less special":
            del specials[0]
        elif position == "one more checker":
            checkers.append(Always())

    return change


@pytest.mark.parametrize(
    "position",
    [
        "checker0",
        "checker1",
        "checker2",
        "checker3",
        "special0",
        "special1",
        "one more special",
        "one less special",
        "one more checker",
        "none",
    ],
)
@pytest.mark.parametrize("service", ["dynamodb", "sqs"])
def test_an_answer_without_error_is_decided_as_botocore_decides_it_for_any_chain(
    service: str, position: str
) -> None:
    decisions = []
    for decide in (fast.needs_retry, fast._needs_retry):
        retry, operation = handler_of(service)
        replaced(position)(retry)
        http = botocore.awsrequest.AWSResponse("https://h/", 200, {"x-amzn-RequestId": "r"}, None)
        http._content = b"{}"
        delay = decide(
            retry,
            response=(http, {"ResponseMetadata": {}}),
            endpoint=None,
            operation=operation,
            attempts=1,
            caught_exception=None,
            request_dict={"context": {}},
        )
        decisions.append(delay is not None)
    assert decisions[0] == decisions[1]
    assert decisions[1] == (position not in ("none", "one less special"))  # an Always in the chain retries
