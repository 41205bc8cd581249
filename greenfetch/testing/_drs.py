"""A small AWS Elastic Disaster Recovery (DRS) endpoint on loopback, for tests and benchmarks.

moto has no DRS, so this serves ``DescribeSourceServers`` in DRS's REST-JSON protocol
(``POST /DescribeSourceServers``, body ``{"maxResults", "nextToken", "filters"}``, answer
``{"items": [...], "nextToken": ...}``), in a child process so it never shares the client's GIL.
botocore reaches it through ``AWS_ENDPOINT_URL_DRS`` or ``endpoint_url``.

Who is asking comes from the SigV4 ``Authorization`` header: the region from the credential scope,
the account from the access key (a seeded key -> account map, else asked of moto's STS with
``GetCallerIdentity``, which knows which account each assumed-role key belongs to). A key nobody
knows gets ``UnrecognizedClientException``, as AWS answers.

State is seeded over HTTP (``DrsServer.seed``), so one server serves a whole test session:

    servers   {account: {region: [SourceServer records]}}
    errors    {account or "*": {region: error class}}  one of ERROR_CLASSES
    latency   seconds per request (``region_latency`` {region: seconds} overrides it)
    keys      {access key id: account}

Control endpoints: ``POST /drs-api/seed`` (merge), ``POST /drs-api/reset``, ``GET /drs-api/calls``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ._child import ChildServer, server_environ
from ._moto import free_port

__all__ = ["DrsEstate", "DrsServer", "ERROR_CLASSES", "source_server"]

# error class -> (HTTP status, x-amzn-ErrorType, message); "ConnectionFailure" closes the socket unanswered.
ERROR_CLASSES: dict[str, tuple[int, str, str]] = {
    "AccessDeniedException": (
        403,
        "AccessDeniedException",
        "User is not authorized to perform: drs:DescribeSourceServers",
    ),
    "UnrecognizedClientException": (
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    ),
    "InvalidRequestException": (
        400,
        "InvalidRequestException",
        "Account not initialized for DRS in this region",
    ),
    "ThrottlingException": (429, "ThrottlingException", "Rate exceeded"),
    "ServiceQuotaExceededException": (402, "ServiceQuotaExceededException", "Source server quota exceeded"),
    "InternalServerException": (500, "InternalServerException", "Internal service error"),
    "ClientError": (409, "ConflictException", "The request conflicts with the current state"),
    "ConnectionFailure": (0, "", ""),
}
_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_DEFAULT_PAGE = 50


def source_server(
    server_id: str,
    account: str,
    region: str,
    *,
    instance_id: str | None = None,
    origin_account: str | None = None,
    origin_region: str | None = None,
    hostname: str | None = None,
) -> dict[str, Any]:
    """A realistic SourceServer record, the shape DescribeSourceServers returns."""
    record: dict[str, Any] = {
        "sourceServerID": server_id,
        "arn": f"arn:aws:drs:{region}:{account}:source-server/{server_id}",
        "tags": {"Name": hostname or server_id},
        "dataReplicationInfo": {"dataReplicationState": "CONTINUOUS", "lagDuration": "PT0S"},
        "lifeCycle": {"addedToServiceDateTime": "2026-01-01T00:00:00Z"},
        "replicationDirection": "FAILOVER",
        "sourceProperties": {
            "identificationHints": {"hostname": hostname or server_id},
            "recommendedInstanceType": "m5.large",
            "ramBytes": 8589934592,
            "os": {"fullString": "Amazon Linux 2"},
        },
    }
    if instance_id:
        record["sourceProperties"]["identificationHints"]["awsInstanceID"] = instance_id
        record["sourceCloudProperties"] = {
            "originAccountID": origin_account or account,
            "originRegion": origin_region or region,
            "originAvailabilityZone": f"{origin_region or region}a",
        }
    return record


def _server_id(account: str, region: str, index: int) -> str:
    """A stable DRS-shaped id (s- and 17 hex digits), unique per account, region and index."""
    return "s-" + hashlib.sha256(f"{account}/{region}/{index}".encode()).hexdigest()[:17]


class _State:
    """The seeded data and the call log; one lock guards all of it."""

    def __init__(self, sts_url: str | None):
        self.sts_url = sts_url
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.servers: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.errors: dict[str, dict[str, str]] = {}
        self.keys: dict[str, str] = {}
        self.latency = 0.0
        self.region_latency: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def seed(self, spec: dict[str, Any]) -> None:
        unknown = {c for regions in spec.get("errors", {}).values() for c in regions.values()} - set(
            ERROR_CLASSES
        )
        if unknown:
            raise ValueError(f"unknown error class(es) {sorted(unknown)}; valid: {', '.join(ERROR_CLASSES)}")
        with self.lock:
            for account, regions in spec.get("servers", {}).items():
                self.servers.setdefault(account, {}).update(regions)
            for account, regions in spec.get("errors", {}).items():
                self.errors.setdefault(account, {}).update(regions)
            self.keys.update(spec.get("keys", {}))
            self.region_latency.update(spec.get("region_latency", {}))
            if "latency" in spec:
                self.latency = float(spec["latency"])

    def account_for(self, access_key: str) -> str | None:
        """The account an access key belongs to: seeded, else moto's STS, else unknown."""
        with self.lock:
            known = self.keys.get(access_key)
        if known or not self.sts_url:
            return known
        account = _sts_account(self.sts_url, access_key)
        if account:
            with self.lock:
                self.keys[access_key] = account
        return account


def _sts_account(sts_url: str, access_key: str) -> str | None:
    """Ask moto's STS which account an access key is in (moto does not check signatures)."""
    auth = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, "
        "Signature=0"
    )
    req = urllib.request.Request(
        f"{sts_url}/",
        data=b"Action=GetCallerIdentity&Version=2011-06-15",
        method="POST",
        headers={"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            found = re.search(rb"<Account>(\d{12})</Account>", resp.read())
    except (urllib.error.URLError, OSError):
        return None
    return found.group(1).decode() if found else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: with Nagle on, the body waits for the client's delayed ACK
    # (40 ms on Linux), which measured as +46 ms on every call
    disable_nagle_algorithm = True
    state: _State

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: tests read stats, not logs
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", f"drs-{time.monotonic_ns()}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw.strip() else {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/drs-api/calls":
            with self.state.lock:
                calls = dict(self.state.calls)
            return self._send(200, {"total": sum(calls.values()), "by_scope": calls})
        self._send(404, {"message": f"no such path {self.path}"})

    def do_POST(self) -> None:  # noqa: N802
        try:
            body = self._body()
        except ValueError:
            return self._send(
                400, {"message": "body is not JSON"}, {"x-amzn-ErrorType": "ValidationException"}
            )
        if self.path == "/drs-api/seed":
            try:
                self.state.seed(body)
            except ValueError as exc:
                return self._send(400, {"message": str(exc)})
            return self._send(200, {"ok": True})
        if self.path == "/drs-api/reset":
            with self.state.lock:
                self.state.reset()
            return self._send(200, {"ok": True})
        if self.path == "/DescribeSourceServers":
            return self._describe(body)
        self._send(
            404,
            {"message": f"unknown operation {self.path}"},
            {"x-amzn-ErrorType": "UnknownOperationException"},
        )

    def _describe(self, body: dict[str, Any]) -> None:
        scope = _SCOPE.search(self.headers.get("Authorization", ""))
        if not scope:
            return self._error("UnrecognizedClientException")
        access_key, region = scope.group(1), scope.group(2)
        account = self.state.account_for(access_key)
        with self.state.lock:
            self.state.calls[f"{account}/{region}"] = self.state.calls.get(f"{account}/{region}", 0) + 1
            latency = self.state.region_latency.get(region, self.state.latency)
            failure = self.state.errors.get(account or "", {}).get(region) or self.state.errors.get(
                "*", {}
            ).get(region)
            items = list(self.state.servers.get(account or "", {}).get(region, []))
        if latency:
            time.sleep(latency)
        if account is None:
            return self._error("UnrecognizedClientException")
        if failure:
            return self._error(failure)
        wanted = set((body.get("filters") or {}).get("sourceServerIDs") or [])
        if wanted:
            items = [s for s in items if s["sourceServerID"] in wanted]
        start = int(body.get("nextToken") or 0)
        size = int(body.get("maxResults") or _DEFAULT_PAGE)
        page: dict[str, Any] = {"items": items[start : start + size]}
        if start + size < len(items):
            page["nextToken"] = str(start + size)
        self._send(200, page)

    def _error(self, kind: str) -> None:
        status, code, message = ERROR_CLASSES[kind]
        if not status:  # a connection failure: close without answering
            self.close_connection = True
            return
        self._send(status, {"message": message}, {"x-amzn-ErrorType": code})


def serve(port: int, sts_url: str | None) -> None:
    """Run the endpoint in this process until killed."""
    handler = type("Handler", (_Handler,), {"state": _State(sts_url)})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    server.serve_forever()


class DrsServer(ChildServer):
    """``with DrsServer(sts_url=moto.url) as url:`` runs the DRS endpoint in a child process."""

    def __init__(self, port: int | None = None, *, sts_url: str | None = None, startup_timeout: float = 30.0):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sts_url = sts_url
        self._timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        env = server_environ({k: v for k, v in os.environ.items() if not k.startswith("GREENFETCH_")})
        args = [sys.executable, "-m", "greenfetch.testing._drs", str(self.port)]
        self._proc = subprocess.Popen(
            args + ([self.sts_url] if self.sts_url else []),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"DRS endpoint exited with code {self._proc.returncode}")
            try:
                self.calls()
                return self.url
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"DRS endpoint did not answer on {self.url} within {self._timeout}s")

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise ValueError(json.loads(exc.read()).get("message", str(exc))) from None

    def seed(
        self,
        servers: dict[str, dict[str, list[dict[str, Any]]]] | None = None,
        errors: dict[str, dict[str, str]] | None = None,
        *,
        latency: float | None = None,
        region_latency: dict[str, float] | None = None,
        keys: dict[str, str] | None = None,
    ) -> None:
        """Merge data in: servers per account and region, error classes per region, latency, key map."""
        spec: dict[str, Any] = {
            "servers": servers or {},
            "errors": errors or {},
            "keys": keys or {},
            "region_latency": region_latency or {},
        }
        if latency is not None:
            spec["latency"] = latency
        self._post("/drs-api/seed", spec)

    def reset(self) -> None:
        self._post("/drs-api/reset", {})

    def calls(self) -> dict[str, Any]:
        """``{"total": n, "by_scope": {"account/region": n}}``: how many DescribeSourceServers calls arrived."""
        with urllib.request.urlopen(f"{self.url}/drs-api/calls", timeout=5) as resp:
            return dict(json.loads(resp.read()))


class DrsEstate:
    """Builds a DRS sync's world in moto (targets table, inventory table, EC2 instances in many
    accounts) and in a DrsServer (source servers, injected errors). Test and benchmark setup only:
    it talks to moto with plain boto3 clients, which the library itself never does."""

    def __init__(
        self,
        moto_url: str,
        drs: DrsServer,
        *,
        role_name: str = "DRSInventoryReader",
        region: str = "us-east-1",
    ):
        import boto3

        self.moto_url, self.drs, self.role_name, self.region = moto_url, drs, role_name, region
        self._boto3: Any = boto3
        self._creds: dict[str, dict[str, str]] = {}

    def client(self, service: str, account: str | None = None, region: str | None = None) -> Any:
        """A boto3 client in ``account`` (assumed-role into it; moto gives each account its own backend)."""
        keys: dict[str, str] = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        if account and account != "123456789012":
            if account not in self._creds:
                sts = self.client("sts")
                arn = f"arn:aws:iam::{account}:role/{self.role_name}"
                self._creds[account] = sts.assume_role(RoleArn=arn, RoleSessionName="estate")["Credentials"]
            c = self._creds[account]
            keys = {
                "aws_access_key_id": c["AccessKeyId"],
                "aws_secret_access_key": c["SecretAccessKey"],
                "aws_session_token": c["SessionToken"],
            }
        return self._boto3.client(
            service, endpoint_url=self.moto_url, region_name=region or self.region, **keys
        )

    def targets_table(self, name: str, accounts: list[tuple[str, ...]]) -> None:
        """A targets table with one row per (accountId, accountName[, roleName])."""
        ddb = self.client("dynamodb")
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "accountId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "accountId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for account, label, *role in accounts:
            item = {"accountId": {"S": account}, "accountName": {"S": label}}
            if role:
                item["roleName"] = {"S": role[0]}
            ddb.put_item(TableName=name, Item=item)

    def inventory_table(self, name: str) -> None:
        """An inventory table keyed by sourceServerID, as docs/drs-sync.md describes."""
        self.client("dynamodb").create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "sourceServerID", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "sourceServerID", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    def scan(self, table: str) -> list[dict[str, Any]]:
        """Every item of a table, sorted by sourceServerID."""
        pages = self.client("dynamodb").get_paginator("scan").paginate(TableName=table)
        items = [item for page in pages for item in page["Items"]]
        return sorted(items, key=lambda i: i["sourceServerID"]["S"])

    def instances(
        self,
        account: str,
        region: str,
        count: int,
        *,
        tags: dict[str, str] | None = None,
        profile: str | None = None,
    ) -> list[str]:
        """``count`` EC2 instances in the account and region (optionally tagged, with an instance profile)."""
        ec2 = self.client("ec2", account, region)
        extra: dict[str, Any] = {}
        if tags:
            extra["TagSpecifications"] = [
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ]
        if profile:
            iam = self.client("iam", account)
            iam.create_instance_profile(InstanceProfileName=profile)
            extra["IamInstanceProfile"] = {"Name": profile}
        # moto associates an instance profile with the first instance of a launch only: launch one by one then
        launches = [1] * count if profile else [count]
        return [
            i["InstanceId"]
            for n in launches
            for i in ec2.run_instances(
                ImageId="ami-12c6146b", MinCount=n, MaxCount=n, InstanceType="t3.micro", **extra
            )["Instances"]
        ]

    def servers(
        self,
        account: str,
        region: str,
        count: int,
        *,
        instance_ids: list[str] | None = None,
        origin_account: str | None = None,
        origin_region: str | None = None,
    ) -> list[dict[str, Any]]:
        """``count`` DRS source servers in the DrsServer, the i-th replicating instance_ids[i] if given."""
        ids = instance_ids or []
        records = [
            source_server(
                _server_id(account, region, i),
                account,
                region,
                instance_id=ids[i] if i < len(ids) else None,
                origin_account=origin_account,
                origin_region=origin_region,
                hostname=f"host-{account[-4:]}-{region}-{i}",
            )
            for i in range(count)
        ]
        self.drs.seed({account: {region: records}})
        return records


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)
