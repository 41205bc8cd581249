"""A response's timestamps (``_botocore_fast._timestamps.parse_timestamp``) against botocore's own
``parse_timestamp``: the same datetime (fields, fold, the kind and value of its tzinfo) or the same
error, for ISO 8601 strings and epoch numbers, in zones with and without daylight saving time."""

from __future__ import annotations

import datetime as dt
import pickle

import botocore.parsers
import botocore.utils
import pytest
from _zones import in_zone
from dateutil.tz import tzlocal, tzutc
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfetch import _botocore_fast
from greenfetch._botocore_fast import _timestamps
from greenfetch._botocore_fast._timestamps import parse_timestamp

_ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Etc/GMT+5",
    "GMT0UTC",
]


def _outcome(parse, value):
    try:
        got = parse(value)
    except Exception as exc:  # noqa: BLE001 - the error is the outcome compared
        return ("error", type(exc), str(exc))
    if not isinstance(got, dt.datetime):
        return ("value", got)
    zone = got.tzinfo
    try:  # a zone dateutil made but Python refuses to use (an offset of 24 hours) is compared by repr
        used = (
            zone is not None and zone.utcoffset(got),
            zone is not None and zone.tzname(got),
            got.utcoffset(),
        )
    except ValueError as exc:
        used = ("unusable", str(exc))
    return (got.replace(tzinfo=None), got.fold, type(zone), repr(zone), used)


def _same(value):
    assert _outcome(parse_timestamp, value) == _outcome(botocore.utils.parse_timestamp, value), value


_fraction = st.one_of(
    st.just(""), st.integers(1, 9).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n))
)
_offset = st.one_of(
    st.sampled_from(["Z", "z", "+00:00", "-00:00"]),
    st.builds(
        lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
        st.sampled_from("+-"),
        st.integers(0, 30),
        st.integers(0, 70),
    ),
)
_iso = st.builds(
    lambda when, fraction, offset, sep: (
        when.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + (f".{fraction}" if fraction else "") + offset
    ),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 12, 31)),
    _fraction,
    _offset,
    st.sampled_from(["T", "T", "T", " "]),
)
_odd = st.sampled_from(
    [
        "2024-02-30T10:00:00Z",  # no such day
        "2024-05-01T24:00:00Z",
        "2024-05-01T10:00:60Z",
        "2024-05-01T10:00:00",  # no zone
        "2024-05-01T10:00:00.Z",
        "2024-05-01T10:00:00+0530",
        "2024-05-01T10:00:00+05",
        "Wed, 01 May 2024 10:00:00 GMT",
        "1714557600",
        "1714557600.25",
        "not a time",
        "",
    ]
)
_epoch = st.one_of(
    st.integers(-(2**31), 2**33),
    st.floats(-(2.0**31), 2.0**33, allow_nan=False),
    st.sampled_from(
        [0, 0.5, -0.5, 1e-7, 1714557600.5, 1714557600.0000005, float("nan"), float("inf"), 1e300, True]
    ),
)


@pytest.mark.parametrize("zone", _ZONES)
@settings(max_examples=150, deadline=None)
@given(value=st.one_of(_iso, _odd, _epoch))
def test_a_timestamp_is_what_botocore_parses(zone, value):
    with in_zone(zone):
        _same(value)


def test_a_zone_changed_while_running_is_learned_again():
    """The zone is read when the process's zone changes (``time.tzset``), not once: a zero offset is
    ``tzlocal()`` in UTC and ``tzutc()`` in New York, an epoch in New York's local time."""
    with in_zone("UTC"):
        assert type(parse_timestamp("2024-05-01T10:00:00Z").tzinfo).__name__ == "tzlocal"
        _same(1714557600.5)
    with in_zone("America/New_York"):
        assert parse_timestamp("2024-05-01T10:00:00Z").tzinfo is tzutc()
        _same(1714557600.5)
        _same("2024-11-03T01:30:00Z")


def test_aws_forms_take_the_fast_path_in_a_zone_without_daylight_saving(monkeypatch):
    """In UTC (and any zone without DST) neither form reaches botocore's parse: the point of it."""
    calls = []
    real = _timestamps._parse_timestamp
    with in_zone("UTC"):
        parse_timestamp("2000-01-01T00:00:00Z")  # the zone learned (one call of botocore's, the probe)
        monkeypatch.setattr(_timestamps, "_parse_timestamp", lambda v: calls.append(v) or real(v))
        for value in ("2024-05-01T10:00:00.123Z", "2024-05-01T10:00:00+05:30", 1714557600.5, 1714557600):
            parse_timestamp(value)
    assert calls == []


def test_installed_as_the_parsers_default_where_checked():
    if not _botocore_fast.checked():
        pytest.skip("botocore outside the checked range")
    _botocore_fast.install()
    try:
        assert botocore.parsers.DEFAULT_TIMESTAMP_PARSER is parse_timestamp
        parser = botocore.parsers.create_parser("query")
        assert parser._timestamp_parser is parse_timestamp
        _botocore_fast.uninstall()
        assert botocore.parsers.DEFAULT_TIMESTAMP_PARSER is botocore.utils.parse_timestamp
    finally:
        _botocore_fast.install()


def _seen(values):
    """What a caller can do with parsed timestamps without asking for identity: order, equality,
    differences, hashes, text, UTC, a pickle's round trip."""
    pairs = [(a, b) for a in values for b in values]
    return (
        [a.isoformat() for a in values],
        [a.astimezone(dt.timezone.utc) for a in values],
        [(a == b, a < b, a - b, hash(a) == hash(b)) for a, b in pairs],
        sorted(range(len(values)), key=values.__getitem__),
        [(a.isoformat(), a.utcoffset()) for a in pickle.loads(pickle.dumps(values))],
        pickle.loads(pickle.dumps(values)) == values,
    )


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "Etc/GMT+5", "Australia/Lord_Howe"])
@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.integers(-(2**31), 2**33),
            st.floats(-(2.0**31), 2.0**33, allow_nan=False).map(lambda f: round(f, 3)),
            _iso.filter(lambda s: s[-1] in "Zz" or s.endswith("00:00")),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_timestamps_sharing_a_zone_behave_as_botocores(zone, values):
    """Where this parse hands out the zone's one ``tzlocal`` (an epoch, or a zero offset where the zone
    is named UTC, without daylight saving time) and botocore a new one per value, every use of the
    datetimes but identity comes out the same: same-``tzinfo`` comparisons and differences skip
    ``utcoffset``, which a fixed offset makes equal."""
    with in_zone(zone):
        assert _seen([parse_timestamp(v) for v in values]) == _seen(
            [botocore.utils.parse_timestamp(v) for v in values]
        )


def test_a_zone_without_daylight_saving_gives_its_timestamps_one_tzlocal():
    """One ``tzlocal`` per zone, not one per timestamp (~12k instructions each), and a new one, the new
    zone's, when the zone changes."""
    with in_zone("Asia/Kolkata"):
        first = parse_timestamp(1714557600.5).tzinfo
        assert type(first) is tzlocal
        assert parse_timestamp(1714557601).tzinfo is first
    with in_zone("UTC"):
        utc = parse_timestamp(1714557600.5).tzinfo
        assert utc is not first and utc == tzlocal() and utc != first
        assert parse_timestamp("2024-05-01T10:00:00Z").tzinfo is utc
        assert parse_timestamp("2024-05-01T10:00:00+00:00").tzinfo is utc
        assert parse_timestamp(1714557600.5).utcoffset() == dt.timedelta(0)
