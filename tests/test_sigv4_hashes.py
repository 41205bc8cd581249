"""SigV4's hashes without their repeated OpenSSL set-up (``_botocore_fast._sigv4``): the signature's
HMAC from the signing key's padded states and the payload hash, against ``hmac`` and botocore's own
``SigV4Auth.payload``. The signing key's derivation is tests/test_botocore_fast_parity.py's."""

from __future__ import annotations

import hashlib
import hmac
import io

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from greenfetch._botocore_fast import _sigv4 as sigv4


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=130), st.text(max_size=200), st.integers(1, 3))
@example(b"k" * 64, "at the block size", 2)
@example(b"k" * 65, "a key longer than the block is hashed first", 2)
def test_the_signatures_hmac_is_hmacs(key, text, uses):
    """``hex_hmac`` from a key's padded states is ``hmac.new(key, text, sha256).hexdigest()`` for any
    key (shorter, as long as and longer than SHA-256's block) and any text, each time the states are
    used (a copy each: the kept states never see a text)."""
    states = sigv4._hmac_states(key)
    for n in range(uses):

        def ours(t=text + str(n)):
            return sigv4.hex_hmac(states, t)

        def theirs(t=text + str(n)):
            return hmac.new(key, t.encode("utf-8"), hashlib.sha256).hexdigest()

        try:
            expected = theirs()
        except UnicodeEncodeError:
            with pytest.raises(UnicodeEncodeError):
                ours()
            continue
        assert ours() == expected


_bodies = st.one_of(
    st.sampled_from([b"{}", b"", None, "", "{}", b"{} ", b"{ }", {}, {"Action": "List"}, b"x" * 70000]),
    st.binary(max_size=40),
    st.text(max_size=20),
    st.binary(max_size=40).map(io.BytesIO),
)


@settings(max_examples=200, deadline=None)
@given(
    _bodies,
    st.sampled_from(["https://h.example/", "http://h.example/"]),
    st.sampled_from(
        [{}, {"payload_signing_enabled": False}, {"checksum": {"request_algorithm": {"in": "trailer"}}}]
    ),
    st.sampled_from([botocore.auth.SigV4Auth, botocore.auth.S3SigV4Auth]),
)
@example(b"{}", "https://h.example/", {}, botocore.auth.SigV4Auth)
def test_the_payload_hash_is_botocores(body, url, context, signer_cls):
    """``payload`` for any body (bytes, ``{}``, none, text, a form, a file at an offset), over HTTP
    and HTTPS, signed or not, a streaming checksum: botocore's answer, the file left where it was."""

    def made():
        made = botocore.awsrequest.AWSRequest(method="POST", url=url, data=body, headers={})
        made.context.update(context)
        if isinstance(body, io.BytesIO):
            body.seek(min(3, len(body.getvalue())))
        return made

    signer = signer_cls(botocore.credentials.Credentials("AKID", "s"), "dynamodb", "us-east-1")
    ours, theirs = made(), made()
    assert sigv4.payload(signer, ours) == sigv4._payload(signer, theirs)
    if isinstance(body, io.BytesIO):
        assert body.tell() == min(3, len(body.getvalue()))
