"""Small conversions between Python values and protobuf well-known types."""

from __future__ import annotations

import datetime as dt
import time

from google.protobuf import duration_pb2, timestamp_pb2


def duration(seconds: float) -> duration_pb2.Duration:
    """A Duration of `seconds` (nanosecond precision)."""
    value = duration_pb2.Duration()
    value.FromNanoseconds(round(seconds * 1e9))
    return value


def timestamp(moment: dt.datetime | dt.date | None = None) -> timestamp_pb2.Timestamp:
    """A Timestamp of `moment` (a date means its midnight UTC); now when None."""
    value = timestamp_pb2.Timestamp()
    if moment is None:
        value.FromNanoseconds(time.time_ns())  # GetCurrentTime goes through datetime: slower
    elif isinstance(moment, dt.datetime):
        value.FromDatetime(moment)
    else:
        value.FromDatetime(dt.datetime(moment.year, moment.month, moment.day, tzinfo=dt.UTC))
    return value
