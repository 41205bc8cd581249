"""botocore's model files read without an ``OrderedDict`` per object (``_botocore_fast._loader``): the
model files of the installed botocore (every 8th service's, and the shared ones) give the same keys in the same order with the same values, both
ways; a missing file is None; a client made over the loaded models makes botocore's request."""

from __future__ import annotations

import gzip
import json
import os
from collections import OrderedDict

import botocore
import botocore.loaders
import botocore.session
import pytest

from greenfetch import _botocore_fast
from greenfetch._botocore_fast._loader import _load_file, load_file

_DATA = os.path.join(os.path.dirname(botocore.__file__), "data")


def _model_files() -> list[tuple[str, object]]:
    """Every file of every 8th service (by name: all kinds of model, every protocol among them) and
    every file outside a service's folder (endpoints, partitions, the retry and default config)."""
    services = sorted(d for d in os.listdir(_DATA) if os.path.isdir(os.path.join(_DATA, d)))
    chosen = {os.path.join(_DATA, d) for d in services[::8]}
    found = []
    for folder, _, names in os.walk(_DATA):
        if folder != _DATA and not any(folder.startswith(c) for c in chosen):
            continue
        for name in sorted(names):
            if name.endswith(".json"):
                found.append((os.path.join(folder, name), open))
            elif name.endswith(".json.gz"):
                found.append((os.path.join(folder, name), gzip.open))
    return sorted(found, key=lambda pair: pair[0])


def test_model_files_read_the_same_keys_in_the_same_order():
    """The same JSON text written back (keys in the order read, every value as it was), in plain
    ``dict``s: json.loads without a hook makes nothing else."""
    loader = botocore.loaders.JSONFileLoader()
    files = _model_files()
    assert len(files) > 100  # botocore's data, not an empty walk
    for path, open_method in files:
        theirs, ours = _load_file(loader, path, open_method), load_file(loader, path, open_method)
        assert isinstance(theirs, OrderedDict) and type(ours) is dict, path
        assert json.dumps(ours) == json.dumps(theirs), path


def test_a_missing_file_is_none_both_ways(tmp_path):
    loader = botocore.loaders.JSONFileLoader()
    for read in (_load_file, load_file):
        assert read(loader, str(tmp_path / "nothing.json"), open) is None


def test_installed_where_checked_and_botocores_own_after_uninstall():
    if not _botocore_fast.checked():
        pytest.skip(f"botocore {botocore.__version__} is outside the checked range")
    _botocore_fast.install()
    try:
        assert botocore.loaders.JSONFileLoader._load_file is load_file
        _botocore_fast.uninstall()
        assert botocore.loaders.JSONFileLoader._load_file is _load_file
    finally:
        _botocore_fast.install()


@pytest.mark.parametrize(
    ("service", "operation", "params"),
    [
        ("dynamodb", "ListTables", {"Limit": 3}),  # JSON
        ("sqs", "ListQueues", {"QueueNamePrefix": "a"}),  # query (JSON on new botocore)
        ("ec2", "DescribeVpcs", {"VpcIds": ["vpc-1"]}),  # EC2
        ("lambda", "ListFunctions", {"MaxItems": 5}),  # REST-JSON
        ("s3", "ListObjectsV2", {"Bucket": "b", "Prefix": "p/"}),  # REST-XML
    ],
)
def test_a_client_over_models_read_either_way_makes_botocores_request(service, operation, params):
    """A fresh session's loader under each reader; the request each client prepares (method, URL,
    headers but the signature's time-dependent ones, body) is the same."""

    def prepared(reader):
        original = botocore.loaders.JSONFileLoader._load_file
        botocore.loaders.JSONFileLoader._load_file = reader
        try:
            session = botocore.session.Session()
            client = session.create_client(
                service,
                region_name="eu-west-1",
                aws_access_key_id="AKIDEXAMPLE",
                aws_secret_access_key="secret",
            )
            seen = {}

            def keep(request, **_):
                seen["request"] = request
                raise _Stop

            client.meta.events.register_first("before-send", keep)
            with pytest.raises(_Stop):
                getattr(client, botocore.xform_name(operation))(**params)
            request = seen["request"]
            volatile = {"authorization", "x-amz-date", "amz-sdk-invocation-id"}
            headers = {k: v for k, v in request.headers.items() if k.lower() not in volatile}
            return request.method, request.url, headers, request.body
        finally:
            botocore.loaders.JSONFileLoader._load_file = original

    assert prepared(load_file) == prepared(_load_file)


class _Stop(Exception):
    pass
