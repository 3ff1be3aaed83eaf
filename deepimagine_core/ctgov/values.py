"""Tolerant parsers of the scalar values found in registry records: numbers, p-values, dates and ages.

Registry text is typed by hand: "1,234", "NA", "< 0.001", "p<.0001", "0,03", "April 13, 2016", "6 Months". These
functions return ``None`` for anything they cannot read with certainty (they never guess and never raise), so the
caller keeps the raw string beside a null value and records why. Each has a fast path for the common clean case,
because they run once per measurement of every study.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from functools import lru_cache

#: Spellings that mean "no value" (not a parse failure): callers store null without recording an issue.
MISSING_MARKERS = frozenset(
    {"", "na", "n/a", "n.a.", "nr", "nd", "ne", "nc", "none", "null", "nan", "-", "--", "—", "–", "not applicable",
     "not available", "not reported", "not estimable", "not calculated", "dne", "ns", "n.s.", "not significant"}
)

_RELATIONS = {
    "": "=", "=": "=", "==": "=", "<": "<", ">": ">", "<=": "<=", "=<": "<=", ">=": ">=", "=>": ">=",
    "≤": "<=", "≥": ">=", "≦": "<=", "≧": ">=", "<<": "<", ">>": ">",
}
_DASHES = str.maketrans({"−": "-", "–": "-", "—": "-", "\u00a0": " ", "\u2009": " ", "\u202f": " "})
# Thousands separators: "1,234", "-12,345.6" (groups of exactly three digits).
_THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?")
# Decimal comma, only when the integer part is zero ("0,03", "-0,733"): "12,5" is ambiguous and is not guessed.
_ZERO_DECIMAL_COMMA = re.compile(r"[+-]?0,\d+")
# "1.2 x 10^-5", "1.2×10-5", "3*10^6"
_TIMES_TEN = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*[x×*]\s*10\s*(?:\^|\*\*)?\s*([+-]?\d+)")
# An optional relation, then the number: "<= 5", "≤5", "p < .001", "P-value = 0.03".
_RELATION_NUMBER = re.compile(
    r"(?:p(?:[\s-]*value)?\s*[:]?\s*)?(<=|=<|>=|=>|==|<<|>>|[<>=≤≥≦≧])?\s*(.+)", re.IGNORECASE
)


def is_missing(s: str | None) -> bool:
    """True for None, blanks and the usual "not available" markers ("NA", "NR", "N/A", "—" ...)."""
    return s is None or s.strip().lower() in MISSING_MARKERS


def parse_number(s: str | None) -> float | None:
    """A plain finite number, or None. "1,234" -> 1234.0; "0,5" -> 0.5; "NA", "NR", "" -> None; "<5" -> None
    (a bound is not a value: see `parse_number_relation`)."""
    if s is None:
        return None
    try:
        if "_" not in s:
            x = float(s)
            return x if math.isfinite(x) else None
    except ValueError:
        pass
    return _parse_plain(s.translate(_DASHES).strip())


def _parse_plain(t: str) -> float | None:
    if not t or t.lower() in MISSING_MARKERS:
        return None
    if _THOUSANDS.fullmatch(t):
        t = t.replace(",", "")
    elif _ZERO_DECIMAL_COMMA.fullmatch(t):
        t = t.replace(",", ".")
    else:
        m = _TIMES_TEN.fullmatch(t)
        if m:
            try:
                x = float(m.group(1)) * 10.0 ** int(m.group(2))
            except (ValueError, OverflowError):
                return None
            return x if math.isfinite(x) else None
    if "_" in t:
        return None
    try:
        x = float(t)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def parse_number_relation(s: str | None) -> tuple[float, str] | None:
    """A number with its relation: "≤ 5" -> (5.0, "<="), "<5" -> (5.0, "<"), "5" -> (5.0, "="), "NA" -> None."""
    if s is None:
        return None
    x = parse_number(s)
    if x is not None:
        return x, "="
    t = s.translate(_DASHES).strip()
    if not t or t.lower() in MISSING_MARKERS:
        return None
    m = _RELATION_NUMBER.fullmatch(t)
    if m is None:
        return None
    relation = _RELATIONS.get(m.group(1) or "")
    x = _parse_plain(m.group(2).strip())
    if relation is None or x is None:
        return None
    return x, relation


def parse_p_value(s: str | None) -> tuple[float, str] | None:
    """(p, relation) with p in [0, 1]: "<0.001" -> (0.001, "<"); "≤ 0.05" -> (0.05, "<="); "p<.0001" ->
    (0.0001, "<"); "0,03" -> (0.03, "="); "NS", "1.3", "-0.06", "" -> None."""
    if s is None:
        return None
    try:
        x = float(s)
        return (x, "=") if 0.0 <= x <= 1.0 else None
    except ValueError:
        pass
    parsed = parse_number_relation(s)
    if parsed is None or not 0.0 <= parsed[0] <= 1.0:
        return None
    return parsed


_MONTHS = {
    name: i
    for i, names in enumerate(
        [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
         ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"),
         ("november", "nov"), ("december", "dec")],
        start=1,
    )
    for name in names
}
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})(?:-(\d{1,2}))?")
_LEGACY_DATE = re.compile(r"([A-Za-z]+)\.?\s+(?:(\d{1,2}),?\s+)?(\d{4})")


@lru_cache(maxsize=8192)
def parse_date(s: str | None) -> dt.date | None:
    """ISO "2010-10-28" / "2010-10", or legacy "April 13, 2016" / "April 2016"; month-only dates give the first of
    the month. Anything else -> None."""
    if not s:
        return None
    t = s.strip()
    m = _ISO_DATE.fullmatch(t)
    if m:
        year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
    else:
        m = _LEGACY_DATE.fullmatch(t)
        if m is None:
            return None
        month = _MONTHS.get(m.group(1).lower())
        if month is None:
            return None
        year, day = int(m.group(3)), int(m.group(2) or 1)
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]+)")
_AGE_UNIT_YEARS = {
    "year": 1.0, "years": 1.0, "yr": 1.0, "yrs": 1.0, "y": 1.0,
    "month": 1 / 12, "months": 1 / 12, "mo": 1 / 12, "mos": 1 / 12,
    "week": 7 / 365.25, "weeks": 7 / 365.25, "wk": 7 / 365.25, "wks": 7 / 365.25,
    "day": 1 / 365.25, "days": 1 / 365.25,
    "hour": 1 / (24 * 365.25), "hours": 1 / (24 * 365.25),
    "minute": 1 / (1440 * 365.25), "minutes": 1 / (1440 * 365.25),
}


@lru_cache(maxsize=1024)
def parse_age_years(s: str | None) -> float | None:
    """An eligibility age in years: "18 Years" -> 18.0, "6 Months" -> 0.5, "N/A" -> None."""
    if not s:
        return None
    m = _AGE.fullmatch(s.strip())
    if m is None:
        return None
    factor = _AGE_UNIT_YEARS.get(m.group(2).lower())
    return None if factor is None else float(m.group(1)) * factor
