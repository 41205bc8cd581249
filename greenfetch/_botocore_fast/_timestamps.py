"""A response's timestamps parsed without dateutil's general parser (:func:`parse_timestamp`).

botocore's parsers turn every timestamp of a response into a ``datetime`` with ``parse_timestamp``:
an ISO 8601 string (every query, EC2 and REST-XML protocol's: an instance's ``LaunchTime``, a role's
``CreateDate``, an S3 object's ``LastModified``) first fails ``float()`` and then goes through
``dateutil.parser.parse``, 45 us each here; an epoch number (the JSON protocols') through dateutil's
``tzlocal().fromutc`` in Python, 12 us. A listing of 1,000 S3 objects or IAM roles spent 45 ms on
them, ten times its call.

This one reads the two forms AWS writes, ``YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`` and an
int or float, and builds what botocore builds: the same fields (a fraction cut to microseconds, as
dateutil cuts it), the same kind of ``tzinfo`` and fold. Which ``tzinfo`` a zero offset gets depends
on the process's time zone (dateutil gives ``tzlocal()`` where ``UTC`` is one of ``time.tzname``, else
``tzutc()``): it is learned from botocore's own answer for one such string, again whenever the zone
changes (``time.tzset``). Where botocore's answer depends on the date (an epoch's local time in a zone
with daylight saving time; a zero offset where ``UTC`` names such a zone), and for anything else (an
invalid date, another form, a numeric string, a value out of range), botocore's ``parse_timestamp``
answers as before. A ``tzlocal`` this parse gives is one per zone, not one per timestamp (``_Zone``
says why that is the same value). tests/test_timestamps.py holds both to the same result under several
zones.
"""

from __future__ import annotations

import datetime
import re
import time
from typing import Any

import botocore.parsers
import botocore.utils
from dateutil import tz  # type: ignore[import-untyped]  # botocore's dependency, untyped

_parse_timestamp = botocore.parsers.DEFAULT_TIMESTAMP_PARSER  # botocore.utils.parse_timestamp
_ISO = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):(\d\d))\Z"
)
_UTC = datetime.timezone.utc
_datetime = datetime.datetime
_fromtimestamp = datetime.datetime.fromtimestamp
_tzoffset = tz.tzoffset
_tzlocal = tz.tzlocal


class _Zone:
    """What botocore's parse gives in the process's time zone as it is now: the ``tzinfo`` for a zero
    offset (None: not learned, use botocore's), the zone's offset for an epoch (None: it has daylight
    saving time, or botocore would not use ``tzlocal``), and the zone's one ``tzlocal`` both share.

    botocore makes a ``tzlocal()`` per timestamp (~12k instructions). Where the zone has no daylight
    saving time one made once per zone is the same value: ``tzlocal()`` reads only the zone's names and
    offsets when made (this zone's key; a new zone is a new ``_Zone``) and then answers its standard
    offset for any date, so equality, ``utcoffset``, ``isoformat``, hashes of the datetimes, sorting and
    arithmetic come out the same. What differs is identity: the datetimes of a zone now share one
    ``tzinfo`` object (``a.tzinfo is b.tzinfo``; pickle writes it once), as botocore's ``tzutc()`` and
    ``tzoffset`` values already do (dateutil hands those out from caches)."""

    __slots__ = ("key", "zero", "epoch_offset", "local")

    def __init__(self, key: tuple[Any, ...]):
        self.key = key
        probe = _parse_timestamp("2000-01-01T00:00:00Z").tzinfo
        self.local = local = _tzlocal()
        # dateutil names a zero offset "UTC": where that is one of the zone's names it tries the local
        # zone (whose name, with daylight saving time, depends on the date), else it is tzutc()
        dated = local._hasdst and "UTC" in time.tzname
        self.zero: Any = None
        if probe is tz.UTC and not dated:
            self.zero = tz.UTC
        elif type(probe) is _tzlocal and not local._hasdst:
            self.zero = local
        options = botocore.utils.get_tzinfo_options()
        plain = len(options) == 1 and options[0] is _tzlocal and not local._hasdst
        self.epoch_offset: datetime.timedelta | None = local._std_offset if plain else None


_zone: _Zone | None = None


def _now_zone() -> _Zone:
    global _zone
    key = (time.tzname, time.timezone, time.altzone, time.daylight)
    zone = _zone
    if zone is None or zone.key != key:
        zone = _zone = _Zone(key)
    return zone


def parse_timestamp(value: Any) -> Any:
    """``botocore.utils.parse_timestamp``: the same ``datetime`` (fields, ``tzinfo`` kind and value,
    fold), or the same error."""
    try:
        kind = type(value)
        if kind is str:
            found = _ISO.match(value)
            if found is not None:
                year, month, day, hour, minute, second, fraction, zulu, sign, oh, om = found.groups()
                micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
                naive = _datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro)
                offset = 0 if zulu else (int(oh) * 3600 + int(om) * 60) * (1 if sign == "+" else -1)
                if offset == 0:
                    zero = _now_zone().zero
                    if zero is not None:
                        return naive.replace(tzinfo=zero)
                elif int(oh) < 24 and int(om) < 60:
                    return naive.replace(tzinfo=_tzoffset(None, offset))
        elif kind is float or kind is int:
            zone = _now_zone()
            shift = zone.epoch_offset
            if shift is not None:
                return (_fromtimestamp(value, _UTC) + shift).replace(tzinfo=zone.local)
    except (ValueError, OverflowError, OSError):
        pass  # botocore's path says what is wrong with it, or finds another way
    return _parse_timestamp(value)
