"""Doses read from arm labels, intervention names and descriptions, and result-group titles.

    parse_dose("Avanafil 100 mg")          -> Dose(values=(100.0,), unit="mg", ...)
    parse_dose("0.5 mg/kg IV q2w")         -> Dose(values=(0.5,), unit="mg/kg", frequency="Q2W", route="IV", ...)
    parse_dose("Fluticasone/Vilanterol 200/25 mcg")  -> values (200.0, 25.0), unit "mcg"
    dose_for("Mirabegron", "Solifenacin 5 mg + Mirabegron 25 mg")  -> values (25.0,), unit "mg"

A dose is a number (or numbers joined by "-", "/", "to", "or") followed by a known unit. The values of a text are
those of its first dose expression plus every later expression with the same unit ("2.5 mg/5 mg" -> [2.5, 5];
"Drug 5 mg + Other 25 mg" -> [5, 25] as the group's dose; use `dose_for` for one drug's share). Frequency and route
are taken only from the sentence(s) holding the dose, within `_WINDOW` characters of it. A number without a known
unit ("Duloxetine 40", "Dose level 2", "12-35 months") is not a dose: nothing is guessed, the result is None.
Results are cached (`lru_cache`): the same titles recur across a study's outcomes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Dose:
    """A parsed dose (immutable: results are cached and shared)."""

    values: tuple[float, ...]  # every number of the dose expression(s), in order, without repeats
    unit: str  # normalised: mg, g, mcg, ng, mg/kg, mg/m2, IU, U, mL, %, Gy, mmol, mEq, cells, vp, PFU, ...
    frequency: str | None  # QD BID TID QID QW BIW TIW Q2W Q3W Q4W Q6W Q8W Q12W QM Q3M QOD PRN ONCE (see _FREQUENCIES)
    route: str | None  # ORAL, IV, SC, IM, TOPICAL, INHALED, INTRANASAL, ... (see _ROUTES)
    text: str  # the span of the text the dose was read from


_SUP = "⁰¹²³⁴⁵⁶⁷⁸⁹"
_SUP_TABLE = str.maketrans({**{c: str(i) for i, c in enumerate(_SUP)}, "⁻": "-"})
_SUP_RUN = re.compile(rf"⁻?[{_SUP}]+")
_NUM = r"(?:[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?|\d*\.\d+|\d+)"
_EXP = rf"(?:\s*[x×X*]\s*10\s*(?:\^|\*\*|[eE])?\s*[-−⁻]?(?:\d+|[{_SUP}]+)|[eE]\+?\d+)"
_VALUE = rf"(?:10\s*(?:\^|\*\*)\s*\d+|10[{_SUP}]+|{_NUM}{_EXP}?)(?:\s*(?:million|billion|thousand)\b)?"
_VALUES = rf"{_VALUE}(?:(?:\s*[-–—/~]\s*|\s+(?:to|or)\s+){_VALUE})*"

# (pattern, normalised unit); matched case-insensitively unless the pattern says otherwise.
_UNITS = [
    (r"mg|milligrams?", "mg"),
    (r"mcg|[µμ]g|ug|micrograms?", "mcg"),
    (r"ng|nanograms?", "ng"),
    (r"g|gm|grams?", "g"),
    (r"ml|milli-?lit(?:er|re)s?", "mL"),
    (r"[µμu]l|micro-?lit(?:er|re)s?", "uL"),
    (r"iu|i\.u\.|international\s+units?", "IU"),
    (r"(?-i:U)|units?", "U"),
    (r"%", "%"),
    (r"cgy", "cGy"),
    (r"gy", "Gy"),
    (r"mmol", "mmol"),
    (r"[µμu]mol", "umol"),
    (r"meq", "mEq"),
    (r"(?:viable\s+)?cells?", "cells"),
    (r"vp|v\.p\.|vir(?:al|us)\s+particles?", "vp"),
    (r"pfu|plaque[\s-]forming\s+units?", "PFU"),
    (r"tcid50", "TCID50"),
    (r"ccid50", "CCID50"),
    (r"mbq", "MBq"),
    (r"mci", "mCi"),
]
_PER = [
    (r"kg", "kg"), (r"m\s*\^?\s*2|m²", "m2"), (r"ml", "mL"), (r"24\s*h(?:ours?|rs?)?|days?|d", "day"),
    (r"weeks?|wk", "week"), (r"h|hrs?|hours?", "h"), (r"min", "min"), (r"dose", "dose"),
]
_UNIT_GROUPS = "|".join(f"(?P<u{i}>{p})" for i, (p, _) in enumerate(_UNITS))
_UNIT_ALTERNATIVES = "|".join(f"(?:{p})" for p, _ in _UNITS)
_PER_GROUPS = "|".join(f"(?P<p{i}>{p})" for i, (p, _) in enumerate(_PER))
# A dose expression, matched at the start of a run of digits (see `_dose_matches`).
_DOSE = re.compile(
    rf"(?P<values>{_VALUES})\s*(?P<unit>{_UNIT_ALTERNATIVES})"
    rf"(?P<per>(?:\s*(?:/|\bper\s+)\s*(?:{_PER_GROUPS})(?![A-Za-z0-9]))*)(?![A-Za-z0-9µμ])",
    re.IGNORECASE,
)
_NUMBER_RUN = re.compile(r"[\d.]+")  # starts a regex scan only where a number can start: cheap on long texts
_NOT_BEFORE_NUMBER = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,^-")
_UNIT_ONE = re.compile(_UNIT_GROUPS, re.IGNORECASE)
_PER_ONE = re.compile(rf"\s*(?:/|\bper\s+)\s*(?:{_PER_GROUPS})(?![A-Za-z0-9])", re.IGNORECASE)
_VALUE_RE = re.compile(_VALUE, re.IGNORECASE)
_MANTISSA_EXP = re.compile(rf"({_NUM})?\s*(?:[x×X*]\s*)?(?:10\s*(?:\^|\*\*|[eE])?\s*([-−]?\d+)|[eE]\+?(\d+))?")
_MULTIPLIER = {"million": 1e6, "billion": 1e9, "thousand": 1e3}

_FREQUENCIES = [
    (r"once[\s-]+(?:a[\s-]+|per[\s-]+|each[\s-]+)?(?:daily|day)|every[\s-]+day|daily|q\.?d\.?"
     r"|q\s*24\s*h(?:ours?|rs?)?", "QD"),
    (r"twice[\s-]+(?:a[\s-]+|per[\s-]+)?(?:daily|day)"
     r"|(?:two|2)[\s-]*(?:times|x)[\s-]+(?:a[\s-]+|per[\s-]+)?(?:daily|day)"
     r"|b\.?i\.?d\.?|q\s*12\s*h(?:ours?|rs?)?|every\s+12\s+hours", "BID"),
    (r"(?:three|3)[\s-]*(?:times|x)[\s-]+(?:a[\s-]+|per[\s-]+)?(?:daily|day)|t\.?i\.?d\.?|q\s*8\s*h(?:ours?|rs?)?"
     r"|every\s+8\s+hours", "TID"),
    (r"(?:four|4)[\s-]*(?:times|x)[\s-]+(?:a[\s-]+|per[\s-]+)?(?:daily|day)|q\.?i\.?d\.?|q\s*6\s*h(?:ours?|rs?)?"
     r"|every\s+6\s+hours", "QID"),
    (r"twice[\s-]+(?:a[\s-]+|per[\s-]+)?week(?:ly)?|(?:two|2)[\s-]*times[\s-]+(?:a[\s-]+|per[\s-]+)?week|biw", "BIW"),
    (r"(?:three|3)[\s-]*times[\s-]+(?:a[\s-]+|per[\s-]+)?week|tiw", "TIW"),
    (r"once[\s-]+(?:a[\s-]+|per[\s-]+|each[\s-]+)?week(?:ly)?|every[\s-]+week|weekly|q\.?w(?:k|eek)?\.?", "QW"),
    (r"every[\s-]+other[\s-]+week|every\s+(?:two|2)\s+weeks|fortnightly|q\s*2\s*w(?:ks?|eeks?)?", "Q2W"),
    (r"every\s+(?:three|3)\s+weeks|q\s*3\s*w(?:ks?|eeks?)?", "Q3W"),
    (r"every\s+(?:four|4)\s+weeks|q\s*4\s*w(?:ks?|eeks?)?", "Q4W"),
    (r"every\s+(?:six|6)\s+weeks|q\s*6\s*w(?:ks?|eeks?)?", "Q6W"),
    (r"every\s+(?:eight|8)\s+weeks|q\s*8\s*w(?:ks?|eeks?)?", "Q8W"),
    (r"every\s+(?:twelve|12)\s+weeks|q\s*12\s*w(?:ks?|eeks?)?", "Q12W"),
    (r"once[\s-]+(?:a[\s-]+|per[\s-]+|each[\s-]+)?month(?:ly)?|every[\s-]+month|monthly|q\.?m\.?", "QM"),
    (r"every\s+(?:three|3)\s+months|quarterly|q\s*3\s*m(?:onths?)?", "Q3M"),
    (r"every[\s-]+other[\s-]+day|alternate[\s-]+days?|q\.?o\.?d\.?|every\s+(?:two|2)\s+days|q\s*48\s*h", "QOD"),
    (r"as[\s-]+needed|p\.?r\.?n\.?|on[\s-]+demand", "PRN"),
    (r"single[\s-]+(?:oral[\s-]+|iv[\s-]+|sc[\s-]+)?(?:dose|administration|injection|infusion)"
     r"|one[\s-]+time|once", "ONCE"),
]
_ROUTES = [
    (r"orally|oral|by\s+mouth|p\.o\.?|(?-i:po|PO)", "ORAL"),
    (r"intravenous(?:ly)?|i\.v\.?|(?<!Phase )(?<!Stage )(?<!Arm )(?<!Part )(?<!Group )(?<!Cohort )(?<!Grade )"
     r"(?<!Type )(?<!Class )(?<!Period )(?<!Step )(?<!Level )(?-i:IV)", "IV"),
    (r"sub-?cutaneous(?:ly)?|s\.c\.?|s\.q\.?|subq|(?-i:SC|sc)", "SC"),
    (r"intramuscular(?:ly)?|i\.m\.?|(?-i:IM)", "IM"),
    (r"intradermal(?:ly)?", "INTRADERMAL"),
    (r"intravitreal(?:ly)?", "INTRAVITREAL"),
    (r"transdermal(?:ly)?", "TRANSDERMAL"),
    (r"topical(?:ly)?", "TOPICAL"),
    (r"inhaled|inhalation|inhaler|nebuli[sz]ed", "INHALED"),
    (r"intranasal(?:ly)?|nasal(?:ly|\s+spray)", "INTRANASAL"),
    (r"ophthalmic|eye\s+drops?", "OPHTHALMIC"),
    (r"sublingual(?:ly)?", "SUBLINGUAL"),
    (r"rectal(?:ly)?", "RECTAL"),
    (r"(?:intra)?vaginal(?:ly)?", "VAGINAL"),
    (r"intrathecal(?:ly)?", "INTRATHECAL"),
    (r"intravesical(?:ly)?", "INTRAVESICAL"),
    (r"intra-?articular(?:ly)?", "INTRA_ARTICULAR"),
    (r"intratumou?ral(?:ly)?", "INTRATUMORAL"),
    (r"epidural(?:ly)?", "EPIDURAL"),
]
_FREQ_LOOKBEHIND, _ROUTE_LOOKBEHIND, _WORD_END = r"(?<![\w./-])", r"(?<![\w.])", r"(?![\w])"
_FREQ_RE = re.compile(
    _FREQ_LOOKBEHIND + "(?:" + "|".join(f"(?P<f{i}>{p})" for i, (p, _) in enumerate(_FREQUENCIES)) + ")" + _WORD_END,
    re.IGNORECASE,
)
_ROUTE_RE = re.compile(
    _ROUTE_LOOKBEHIND + "(?:" + "|".join(f"(?P<r{i}>{p})" for i, (p, _) in enumerate(_ROUTES)) + ")" + _WORD_END,
    re.IGNORECASE,
)


def _lower_case_superset(table: list, lookbehind: str) -> re.Pattern:
    """A pattern that, run on the lower-cased text of an ASCII string, finds a match wherever the case-insensitive
    pattern of `table` finds one in the string (and maybe more): the same alternatives in lower case, case-sensitive
    (it reads lower-cased text), without groups. Its parts that are case-sensitive in `table` ("IV", "PO") match in
    any case, and its look-behinds ("not after Phase") exclude what they exclude in any case: a superset. Without
    IGNORECASE and groups it searches about twice as fast (measured); a text it finds nothing in is settled by it."""
    source = lookbehind + "(?:" + "|".join(f"(?:{p})" for p, _ in table) + ")" + _WORD_END
    if re.search(r"\\[A-Z]", source):
        raise ValueError("lower-casing would turn an escape into another one (\\S, \\W)")
    return re.compile(source.lower())


_FREQ_SUPERSET = _lower_case_superset(_FREQUENCIES, _FREQ_LOOKBEHIND)
_ROUTE_SUPERSET = _lower_case_superset(_ROUTES, _ROUTE_LOOKBEHIND)
_DIGIT = re.compile(r"\d")
_WINDOW = 80  # frequency and route are looked for at most this many characters before or after the dose
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)\]])\.\s+(?=[A-Z])|[;\n]")
# Where one drug's part of a multi-drug text ends.
_SEGMENT_SPLIT = re.compile(
    r"\s*(?:\+|&|;|\n|,\s+(?=[A-Za-z])|\s(?:plus|and|with|followed\s+by|then|vs\.?|versus)\s)\s*", re.IGNORECASE
)
_NAME_STOPWORDS = frozenset(
    "tablet tablets capsule capsules injection injections solution suspension oral dose doses high higher low lower "
    "drug drugs matching matched hydrochloride sodium potassium calcium acetate sulfate sulphate mesylate maleate "
    "tartrate citrate fumarate phosphate bromide chloride extended release delayed modified immediate film coated "
    "cream ointment spray nasal ophthalmic vaccine therapy treatment standard care group control active study "
    "combination fixed infusion intravenous subcutaneous inhalation powder inhaler formulation regimen level".split()
)


def _to_float(token: str) -> float | None:
    """One value of a dose expression: "1,000" -> 1000.0, "1x10^9" -> 1e9, "2.4 million" -> 2.4e6; None unless
    finite."""
    token = _SUP_RUN.sub(lambda m: "^" + m.group(0).translate(_SUP_TABLE), token).strip()
    factor = 1.0
    word = token.rsplit(None, 1)[-1].lower() if " " in token else ""
    if word in _MULTIPLIER:
        factor = _MULTIPLIER[word]
        token = token[: -len(word)].strip()
    token = token.replace(",", "").replace("−", "-")
    try:
        x = float(token) * factor
    except ValueError:
        m = _MANTISSA_EXP.fullmatch(token)
        if m is None or (not m.group(1) and not (m.group(2) or m.group(3))):
            return None
        mantissa = float(m.group(1)) if m.group(1) else 1.0
        try:
            x = mantissa * 10.0 ** int(m.group(2) or m.group(3) or "0") * factor
        except (ValueError, OverflowError):
            return None
    return x if math.isfinite(x) else None


def _unit_of(m: re.Match) -> str:
    return _unit_name(m.group("unit"), m.group("per"))


@lru_cache(maxsize=1024)
def _unit_name(unit: str, per: str) -> str:
    """Normalised unit of a matched unit text and its "/kg", "per day" ... suffixes."""
    name = _UNITS[int(_UNIT_ONE.fullmatch(unit).lastgroup[1:])][1]
    for pm in _PER_ONE.finditer(per):
        name += "/" + _PER[int(pm.lastgroup[1:])][1]
    return name


@lru_cache(maxsize=4096)
def _values_of(values: str) -> tuple[float, ...]:
    """The numbers of a matched values text ("5-10", "200/25", "1x10^9")."""
    return tuple(x for x in (_to_float(vm.group(0)) for vm in _VALUE_RE.finditer(values)) if x is not None)


def _first_named(regex: re.Pattern, superset: re.Pattern, table: list, text: str) -> str | None:
    """The normalised name of the first alternative of `regex` found in `text`. An ASCII text is first searched,
    lower-cased, with `superset` (`_lower_case_superset`): no match there is none in `text`; else `regex` searches
    from the superset's first match on, where its own first match cannot be before."""
    pos = 0
    if text.isascii():
        first = superset.search(text.lower())
        if first is None:
            return None
        pos = first.start()
    m = regex.search(text, pos)
    return None if m is None else table[int(m.lastgroup[1:])][1]


@lru_cache(maxsize=16384)
def parse_dose(text: str | None) -> Dose | None:
    """The dose stated in a short text (label, name, title, description), or None when none is stated."""
    if not text or _DIGIT.search(text) is None:
        return None
    matches = _dose_matches(text)
    if not matches:
        return None
    unit = _unit_of(matches[0])
    values: list[float] = []
    start, end = matches[0].start(), matches[0].end()
    for m in matches:
        if m is not matches[0] and _unit_of(m) != unit:
            continue
        for x in _values_of(m.group("values")):
            if x not in values:
                values.append(x)
        end = m.end()
    if not values:
        return None
    clause = text[max(_sentence_start(text, start), start - _WINDOW): min(_sentence_end(text, end), end + _WINDOW)]
    return Dose(
        values=tuple(values),
        unit=unit,
        frequency=_first_named(_FREQ_RE, _FREQ_SUPERSET, _FREQUENCIES, clause),
        route=_first_named(_ROUTE_RE, _ROUTE_SUPERSET, _ROUTES, clause),
        text=text[start:end],
    )


def _dose_matches(text: str) -> list[re.Match]:
    """Dose expressions of a text, left to right, each starting a number (not inside a word or code such as
    "GSK573719" or "DU-176")."""
    out = []
    pos = 0
    while True:
        run = _NUMBER_RUN.search(text, pos)
        if run is None:
            return out
        start = run.start()
        if start and text[start - 1] in _NOT_BEFORE_NUMBER:
            pos = run.end()
            continue
        m = _DOSE.match(text, start)
        if m is None:
            pos = run.end()
        else:
            out.append(m)
            pos = m.end()


def _sentence_start(text: str, pos: int) -> int:
    start = 0
    for m in _SENTENCE_END.finditer(text, 0, pos):
        start = m.end()
    return start


def _sentence_end(text: str, pos: int) -> int:
    m = _SENTENCE_END.search(text, pos)
    return m.start() if m else len(text)


@lru_cache(maxsize=4096)
def _name_keys(name: str, aliases: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Lower-case strings whose presence in a text means the text talks about this intervention."""
    keys = []
    for full in (name, *aliases):
        full = (full or "").strip().lower()
        if not full:
            continue
        keys.append(full)
        keys.extend(t for t in re.split(r"[^\w-]+", full) if len(t) >= 4 and t not in _NAME_STOPWORDS)
    return tuple(dict.fromkeys(keys))


def dose_for(name: str, *texts: str | None, aliases: Iterable[str] = ()) -> Dose | None:
    """The dose stated next to an intervention's name: the first text (in the order given, most specific first)
    with a part ("Drug A 10 mg + Drug B 5 mg" is split at +, "and", "with", ";" ...) that names the intervention
    (its full name, a distinctive word of it, or one of `aliases`) and states a dose. None when no text does."""
    keys = _name_keys(name or "", tuple(aliases))
    if not keys:
        return None
    for text in texts:
        if not text or _DIGIT.search(text) is None:
            continue
        low = text.lower()
        if not any(k in low for k in keys):
            continue
        for segment in _SEGMENT_SPLIT.split(text):
            seg_low = segment.lower()
            if any(k in seg_low for k in keys):
                dose = parse_dose(segment)
                if dose is not None:
                    return dose
    return None
