"""Dates as people write them, parsed with python-dateutil, never guessed.

dateutil fills any part missing from the text with a default (today's year, say).
We parse every string twice with two different defaults: a part that differs between
the two results was not in the text. That tells the precision the writer gave
("2020" is a year, "Dec 2020" a month, "2020-12-29" a day) and lets us refuse a date
with no year instead of inventing one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from dateutil import parser as dateutil_parser
from dateutil import tz
from dateutil.relativedelta import relativedelta

from searchsvc.errors import InvalidDate

# Ordered from coarse to fine; the precision is the finest part the text gave.
PRECISIONS = ("year", "month", "day", "hour", "minute", "second", "microsecond")

_DEFAULT_A = datetime(2000, 1, 1, 0, 0, 0, 0)
_DEFAULT_B = datetime(2004, 2, 2, 1, 1, 1, 1)

# Year first ("2020-12-11", "2020/12/11"): ISO order, whatever --dayfirst says.
_YEAR_FIRST = re.compile(r"^\s*\d{4}[-/.]")
_ISO = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?\Z", re.ASCII)
# A year before 1 ("-0001-01-01", ISO 8601's expanded years): dateutil drops the sign and reads year 1.
_NEGATIVE = re.compile(r"^\s*[-\u2212]\s*\d")
# The listing's "12/29/2020 - 13:24": dateutil reads the lone dash as a sign.
_LISTING_DASH = re.compile(r"^(\s*\d{1,2}/\d{1,2}/\d{4})\s+-\s+(\d{1,2}:\d{2})\s*$")


# Zone names read as their offsets (hours). dateutil knows only UTC, GMT and Z by itself: any other
# name it drops, keeping the time as if no zone were written (10:00 CET stored as 10:00), or reads
# as the server's own local zone when the name matches it. RFC 822's names first (RSS dates are
# RFC 822 dates, and they say CST is US Central), then names that mean one offset the world over.
# A name not here (IST: India, Israel or Ireland; BST: British Summer or Bangladesh) is an
# invalid date, never a guess.
RFC822_ZONES = {"UT": 0, "GMT": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6,
                "PST": -8, "PDT": -7}
ZONE_OFFSETS = {
    **RFC822_ZONES, "UTC": 0,
    "WET": 0, "WEST": 1, "CET": 1, "CEST": 2, "MET": 1, "MEST": 2, "EET": 2, "EEST": 3, "MSK": 3, "TRT": 3,
    "PKT": 5, "ICT": 7, "WIB": 7, "HKT": 8, "SGT": 8, "AWST": 8, "JST": 9, "KST": 9, "ACST": 9.5,
    "AEST": 10, "AEDT": 11, "NZST": 12, "NZDT": 13, "HST": -10, "AKST": -9, "AKDT": -8,
}


# "UTC+3", "GMT-05:00": people mean the offset as written; dateutil reads it the POSIX way, UTC+3
# as -03:00 (three hours the wrong way, six hours off). The offset alone is read as written.
_UTC_PLUS = re.compile(r"\b(?:UTC|GMT|UT)\s*(?=[+-]\d)", re.IGNORECASE)


# A year written with leading zeros ("Jan 1, 0050"): dateutil reads some forms of it as a
# two-digit year and moves it to 2050 (the ISO forms it keeps); the year is kept as written.
_PADDED_YEAR = re.compile(r"(?<![\d:.])0\d{3}(?![\d:])")


def _year_as_written(parsed: datetime, text: str) -> datetime:
    written = [int(found) for found in _PADDED_YEAR.findall(text)]
    if len(written) == 1 and parsed.year != written[0] and parsed.year % 100 == written[0] % 100:
        return parsed.replace(year=written[0])  # ValueError for 29 February of a year that has none
    return parsed


class _UnknownZone(Exception):
    """A zone name not in ZONE_OFFSETS (raised through dateutil, which lets it pass)."""


def _zone(name: str | None, offset: int | None) -> Any:
    """dateutil's `tzinfos`: every zone it finds comes here, so none is read as the server's own."""
    if offset is not None and (name is None or name.upper() not in ZONE_OFFSETS):
        return tz.tzoffset(name, offset)  # "+01:00", and a name dateutil read with its offset ("UTC+3")
    if name is None:
        return None
    hours = ZONE_OFFSETS.get(name.upper())
    if hours is None:
        raise _UnknownZone(name)
    return tz.UTC if hours == 0 else tz.tzoffset(name, int(hours * 3600))


@dataclass(frozen=True)
class ParsedDate:
    """A parsed date: `value` is naive UTC when the text had an offset, else as written."""

    value: datetime
    precision: str
    utc: bool = False

    def isoformat(self) -> str:
        """The canonical text of this date, keeping the precision it was given with."""
        if self.precision == "year":
            return f"{self.value.year:04d}"
        if self.precision == "month":
            return f"{self.value.year:04d}-{self.value.month:02d}"
        if self.precision == "day":
            return self.value.date().isoformat()
        # dateutil reports "13:24:00" as microsecond-precise; show fractions only when present.
        return self.value.isoformat(timespec="auto") + ("Z" if self.utc else "")


_PERIOD = {
    "year": relativedelta(years=1),
    "month": relativedelta(months=1),
    "day": relativedelta(days=1),
    "hour": relativedelta(hours=1),
    "minute": relativedelta(minutes=1),
    "second": relativedelta(seconds=1),
    "microsecond": relativedelta(microseconds=1),
}


def period_end(date: ParsedDate) -> datetime:
    """The last microsecond of the period the date names: `to=2020-12` runs through
    2020-12-31 23:59:59.999999, so a range "to" a day includes all of that day."""
    return date.value + _PERIOD[date.precision] - timedelta(microseconds=1)


# A search looks up to the last microsecond of `to`'s period, which for any date in 9999 can
# be past datetime.max: filters stop at 9998, and so do posts' dates (a year facet must link).
LATEST_YEAR = 9998


def utc_timestamp(moment: datetime | None = None) -> str:
    """"2026-12-01T17:13:25Z": `moment` (an aware datetime; default now) in UTC, to the second."""
    return (moment or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def reads_as_date(text: str | None, *, finest_required: str = "day") -> bool:
    """Whether `text` is a date `parse_date` reads, to `finest_required` at least: a value found in a
    page or a feed is taken only then."""
    if not text or not text.strip():
        return False
    try:
        parse_date(text.strip(), finest_required=finest_required)
    except InvalidDate:
        return False
    return True


def parse_date(text: str, *, dayfirst: bool = False, finest_required: str = "year") -> ParsedDate:
    """Parse `text` as a date; raise InvalidDate if it is not one, or is vaguer than required.

    `finest_required` is the coarsest precision accepted: "day" for a post's date,
    "year" for a search filter like `from=2020`.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidDate("date is empty")
    original = text.strip()
    if _NEGATIVE.match(original):
        raise InvalidDate(f"invalid date {original!r}: a negative year (before year 1) cannot be stored")
    # Our own canonical forms (and the commonest in archives) without dateutil's two parses,
    # which were a fifth of ingest time; dateutil also reads "0001" as having no year.
    iso = _ISO.match(original)
    if iso:
        year, month, day = (int(part) if part else None for part in iso.groups())
        precision = "year" if month is None else "month" if day is None else "day"
        if PRECISIONS.index(precision) >= PRECISIONS.index(finest_required):
            try:
                value = datetime(year, 1 if month is None else month, 1 if day is None else day)
                return ParsedDate(value, precision)
            except ValueError:
                pass  # dateutil's message says what is wrong
    text = _UTC_PLUS.sub("", _LISTING_DASH.sub(r"\1 \2", original))
    yearfirst = bool(_YEAR_FIRST.match(text))
    try:
        a = dateutil_parser.parse(
            text, default=_DEFAULT_A, dayfirst=dayfirst and not yearfirst, yearfirst=yearfirst, tzinfos=_zone
        )
        b = dateutil_parser.parse(
            text, default=_DEFAULT_B, dayfirst=dayfirst and not yearfirst, yearfirst=yearfirst, tzinfos=_zone
        )
        a, b = _year_as_written(a, text), _year_as_written(b, text)
    except _UnknownZone as e:
        raise InvalidDate(f"invalid date {original!r}: the time zone {e.args[0]!r} is not one searchsvc reads "
                          "(several zones share the name, or it is not a zone); write its offset, +05:30") from None
    except (ValueError, OverflowError) as e:
        raise InvalidDate(f"invalid date {original!r}: {_reason(e)}") from None

    missing = [part for part in PRECISIONS if getattr(a, part) != getattr(b, part)]
    if "year" in missing:
        raise InvalidDate(f"invalid date {original!r}: it has no year")
    precision = "microsecond"
    for part in PRECISIONS:
        if part in missing:
            precision = PRECISIONS[PRECISIONS.index(part) - 1]
            given_after = [p for p in PRECISIONS[PRECISIONS.index(part) + 1 :] if p not in missing]
            if given_after and given_after != ["microsecond"]:
                # "2040 00:01": a time without a day cannot be kept at any precision.
                article = "an" if given_after[0] == "hour" else "a"
                raise InvalidDate(f"invalid date {original!r}: it has {article} {given_after[0]} but no {part}")
            break
    given, needed = PRECISIONS.index(precision), PRECISIONS.index(finest_required)
    if given < needed:
        absent = " or ".join(PRECISIONS[given + 1 : needed + 1])
        raise InvalidDate(f"invalid date {original!r}: it has no {absent}")

    utc = a.tzinfo is not None
    try:
        value = a.astimezone(timezone.utc).replace(tzinfo=None) if utc else a
    except (ValueError, OverflowError):  # an offset of a day or more, or before year 1 in UTC
        raise InvalidDate(f"invalid date {original!r}: its time zone offset cannot be converted to UTC") from None
    return ParsedDate(value, precision, utc)


def _reason(error: Exception) -> str:
    """dateutil's message without its echo of the input ("... : 2021-13-45")."""
    message = str(error.args[0]) if error.args else str(error)
    message = message.split(": ")[0]
    if message.startswith("Unknown string format"):
        return "not a date dateutil understands"
    return message
