"""Outcome polarity: is a higher value of this outcome better for the participant? An explicit, auditable rule set.

A direction label ("arm X achieved a significant *improvement* over arm Y") needs to know which way is better. We decide
it from the outcome's wording only, with rules a person can read, and we say which rule fired (`Polarity.rule`, stored
as ``polarity_rule``). When the wording does not settle it the answer is ``None`` and no direction label is made: a
wrong polarity silently flips a label, which is worse than a smaller data set.

How a decision is made (``outcome_polarity``); the word lists are in `polarity_lexicon`, the scales in `scales`:

1. **Not an efficacy direction** → ``None``: pharmacokinetics (Cmax, AUC, half-life, concentrations, ng/mL units ...),
   ECG intervals and vital signs, dose-finding endpoints (MTD), quantities wanted either way (body weight, BMI),
   global-impression scales whose sign varies by instrument version.
2. **The title decides.** Its *frame* says what kind of quantity it is:
   - ``time_to``: "time to <event>", "(number of) days until <event>" — by the event's valence: a bad event
     (death, progression, relapse) later is better; a good one (recovery, response, discharge, extubation, stopping
     assistive devices) sooner is better.
   - ``duration``: "duration of <state>" — longer response is better, longer symptoms are worse.
   - ``proportion``: share or number of participants with an event — higher is better exactly when the event is good.
   - ``count``: "number / rate / frequency of <events>" — as for ``proportion``.
   - ``level``: anything else — a level or a change of a measured quantity ("change from baseline in HbA1c").
3. **The event's valence.** Good events (improvement, response, remission, relief, recovery, achieving a goal ...) are
   good whatever concept they are about; bad events (failure, progression, relapse, worsening) are bad; otherwise the
   *concept* decides: a curated rating scale (`scales.SCALES`: ODI, HAQ, PANSS, MADRS, HbA1c ... with sources) first,
   then the generic good / bad concepts (survival, FEV1 / pain, LDL, death ...). A *decrement* (reduction, decrease,
   prevention) turns a concept's valence ("reduction in seizures" is good) but only defines a good event ("response:
   >= 50 % reduction in pain"). Every *negator* (not, no, without, free of, -free, absence of, did not) negates the
   event, so negation scope and double negation come out right: "participants whose pain did not improve" and "no
   reduction in seizures" are bad events (lower is better); "not pain-free" is bad.
4. **Guards.** In the ``level`` frame a decrement or negator gives ``None`` ("reduction in HbA1c" is reported with
   either sign) and only improvement-type events ("improvement in", "relief") decide. In the ``proportion`` frame a
   threshold right after the one quantity named decides by its side: "HbA1c < 7 %" is good, "ALT > 3 x ULN" bad,
   "CD4 < 200" bad; any other threshold without an operator gives ``None`` ("at least one adverse event" is no
   threshold: it is having the event at all). Conflicting concepts, or a good
   and a bad event together, give ``None``.
5. **The description** is read in two ways only. A stated sign convention of a level measure comes first and wins:
   a statement about the reported value ("negative values indicate improvement", "a decrease indicates
   improvement"), a statement about the scale ("higher scores indicate worse symptoms": when the title names no
   concept; against a concept or scale the title names it wins — "SKAMP Compliance", "Visual Acuity" in logMAR are
   named after what they rate — unless the description's statements disagree; against an event the title names,
   "improvement in pain", the answer is ``None``), and arithmetic ("change = baseline − week 12", which reverses
   the direction of a change score: a title with "change", not a measure such as PID that is defined that way and
   already read as such). Its
   concepts are read only when the title names no concept at all, only in its first eight words (where it names the
   measure; later words describe methods and procedures: "... participants who discontinued were censored"), never
   its operators, and never the most general ones ("function", "symptoms", "events").

The result is a `Polarity`: ``higher_is_better`` (True / False / None), the ``rule`` that decided (e.g.
``"proportion: good event 'response'"``, ``"level: scale 'ODI' (...)"``, ``"level: description convention ..."``) and
the ``frame``. Tests in ``tests/core/test_pairs_polarity.py`` are the specification, one row per rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from deepimagine_core.pairs import polarity_lexicon as lx
from deepimagine_core.pairs.scales import SCALES

__all__ = ["Polarity", "outcome_polarity"]


@dataclass(frozen=True)
class Polarity:
    higher_is_better: bool | None  # None: unknown, the question must be excluded
    rule: str  # which rule decided, in words a person can audit
    frame: str  # time_to | duration | proportion | count | level | excluded | unknown


_KIND_ORDER = {"bad_op": 0, "scale": 1, "good_concept": 2, "bad_concept": 3, "good_op": 4, "negator": 5, "decrement": 6}


def _split_top(pattern: str) -> list[str]:
    """A pattern's top-level alternatives (so each gets its own fast pre-check literal)."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        depth += c == "("
        depth -= c == ")"
        if c == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    return parts + [pattern[start:]]


def _required_literal(pattern: str) -> str:
    """A lower-case substring every match of ``pattern`` contains ("" when none can be read off safely).

    Groups, character classes, escapes and optional characters are removed; the longest remaining plain run is
    mandatory because the patterns have no top-level alternation. Used only as a fast pre-check before the regex.
    """
    text = pattern
    while True:  # innermost groups first
        reduced = re.sub(r"\((?:[^()\\]|\\.)*\)[?*+]?", "\x00", text)
        if reduced == text:
            break
        text = reduced
    text = re.sub(r"\[(?:[^\]\\]|\\.)*\][?*+]?", "\x00", text)
    text = re.sub(r"\\[bBsSdDwW][?*+]?", "\x00", text)
    text = re.sub(r"\\(.)", r"\1", text)
    text = re.sub(r".[?*]", "\x00", text)
    if "|" in text:
        return ""
    runs = [run for run in re.split(r"[\x00^$.+{}]", text) if run]
    return max(runs, key=len).lower() if runs else ""


_COMPILED: list[tuple[str, str, re.Pattern, tuple | None]] = [
    (kind, _required_literal(p), re.compile(p, re.IGNORECASE), None)
    for kind, patterns in (("bad_op", lx.BAD_OPERATORS), ("good_concept", lx.GOOD_CONCEPTS),
                           ("bad_concept", lx.BAD_CONCEPTS), ("good_op", lx.GOOD_OPERATORS),
                           ("negator", lx.NEGATORS), ("decrement", lx.DECREMENTS))
    for p in patterns
] + [("scale", _required_literal(alt), re.compile(alt, re.IGNORECASE), (higher, name, source))
     for pattern, higher, name, source in SCALES for alt in _split_top(pattern)]


def _hits(text: str) -> dict[str, list]:
    """Lexicon hits by kind, in text order. Overlapping matches are resolved longest span first (ties by kind order),
    so "progression-free survival" is one good concept, not the bad event "progression". Scale hits are
    (words, higher_is_better, name, source); the others are the matched words."""
    lower = text.lower()
    spans = [(m.start(), m.end(), kind, m.group(0).strip(), tag)
             for kind, literal, pat, tag in _COMPILED if literal in lower
             for m in pat.finditer(text) if m.group(0).strip()]
    spans.sort(key=lambda s: (s[0] - s[1], _KIND_ORDER[s[2]], s[0]))
    taken = [False] * (len(text) + 1)
    found: dict[str, list] = {kind: [] for kind in _KIND_ORDER}
    for start, end, kind, words, tag in spans:
        if any(taken[start:end]):
            continue
        taken[start:end] = [True] * (end - start)
        found[kind].append((start, end, (words, *tag) if tag else words))
    out: dict[str, list] = {kind: [w for _, _, w in sorted(hits, key=lambda h: h[0])] for kind, hits in found.items()}
    out["spans"] = sorted((start, end, kind, w) for kind, hits in found.items() for start, end, w in hits)
    return out


def _concept(h: dict[str, list]) -> tuple[int | None, str]:
    """The valence of the named concept: a curated scale first, then the generic concepts."""
    if h["scale"]:
        valences = {higher for _, higher, _, _ in h["scale"]}
        if len(valences) > 1:
            return None, f"conflicting scales {h['scale'][0][2]!r} and {h['scale'][1][2]!r}"
        _, higher, name, source = h["scale"][0]
        return (1 if higher else -1), f"scale {name!r} ({source})"
    good_c, bad_c = h["good_concept"], h["bad_concept"]
    if good_c and bad_c:
        return None, f"conflicting concepts {good_c[0]!r} and {bad_c[0]!r}"
    if good_c:
        return 1, f"good concept {good_c[0]!r}"
    if bad_c:
        return -1, f"bad concept {bad_c[0]!r}"
    return None, "no known concept"


def _in_scope(h: dict[str, list], head_kinds: set[str]) -> tuple[list[str], list[str]]:
    """The negators and decrements that bear on the head event (the first of ``head_kinds`` in the text): those
    before it, and a "-free" / "free" right after it ("seizure-free"). A negator later in the text belongs to
    another clause ("thrombi not resulting in complications" are still thrombi)."""
    spans = h["spans"]
    head = next(((start, end) for start, end, kind, _ in spans if kind in head_kinds), None)
    if head is None:
        return [], []
    negators = [w for start, end, kind, w in spans
                if kind == "negator" and (end <= head[0] or (0 <= start - head[1] <= 1 and "free" in w.lower()))]
    decrements = [w for start, end, kind, w in spans if kind == "decrement" and end <= head[0]]
    return negators, decrements


def _event_value(text: str, *, allow_flip: bool, require_operator: bool) -> tuple[int | None, str]:
    """+1 if the described event or quantity is good (more is better), -1 if bad, None if undecided; and why."""
    h = _hits(text)
    bad_op, good_op = h["bad_op"], h["good_op"]
    if (h["negator"] or h["decrement"]) and not allow_flip:
        return None, f"reported {(h['negator'] + h['decrement'])[0]!r} may carry either sign"
    if bad_op and good_op:
        return None, f"conflicting operators {good_op[0]!r} and {bad_op[0]!r}"
    quantities = [sp for sp in h["spans"] if sp[2] in ("scale", "good_concept", "bad_concept")]
    if require_operator and len(quantities) > 1:  # "HbA1c < 7% and no hypoglycaemia": a composite
        return None, f"threshold with several quantities ({quantities[0][3]!r}, {quantities[1][3]!r})"
    if good_op:  # a good event: decrements only define it ("response: >= 50% reduction in pain")
        negators, _ = _in_scope(h, {"good_op"})
        value, why = 1, f"good event {good_op[0]!r}"
    else:
        if bad_op:
            negators, decrements = _in_scope(h, {"bad_op"})
            value, why = -1, f"bad event {bad_op[0]!r}"
        else:
            value, why = _concept(h)
            if value is None:
                if (h["negator"] or h["decrement"]) and why == "no known concept":
                    return None, f"operator {(h['negator'] + h['decrement'])[0]!r} without one known concept"
                return None, why
            if require_operator and not (h["negator"] or h["decrement"]):
                return _below_or_above(text, h, value, why)
            negators, decrements = _in_scope(h, {"scale", "good_concept", "bad_concept"})
        if decrements:
            value *= (-1) ** len(decrements)
            why = f"{decrements[0]!r} of {why}"
    if negators:
        value *= (-1) ** len(negators)
        why = f"{why}, negated by {', '.join(repr(n) for n in negators)}"
    return value, why


_BOUND = re.compile(r"^\W{0,3}(?:[\w.%-]+\W+){0,3}?(?P<op><=|=<|>=|<|>|≤|≥|less than|lower than|below|under|"
                    r"greater than|higher than|more than|above|over|at least)", re.IGNORECASE)
_BELOW = ("<", "≤", "less", "lower", "below", "under")


def _below_or_above(text: str, h: dict[str, list], value: int, why: str) -> tuple[int | None, str]:
    """A share of participants whose one named quantity is below or above a threshold ("HbA1c < 7 %" is good,
    "ALT > 3 x ULN" is bad, "CD4 < 200" is bad), when the threshold follows the quantity closely; else None."""
    spans = [sp for sp in h["spans"] if sp[2] in ("scale", "good_concept", "bad_concept")]
    if len(spans) != 1:
        return None, "threshold without an operator"
    m = _BOUND.match(text[spans[0][1]:spans[0][1] + 40])
    if not m:
        return None, "threshold without an operator"
    below = m.group("op").lower().startswith(_BELOW)
    return (-value if below else value), f"{why} {m.group('op')} a threshold"


def names_concept(text: str) -> bool:
    """Whether the text names any known concept, scale or event (then its description is not read for concepts)."""
    h = _hits(text)
    return any(h[k] for k in ("bad_op", "scale", "good_concept", "bad_concept", "good_op"))


# what a description may decide by: a plain concept or scale of a level, proportion or count measure; never a
# negation, a decrement or an event (they describe the study's procedures as often as the measure)
_PLAIN_CONCEPT = re.compile(r"^(?:level|proportion|count): (?:good concept|bad concept|scale) '(?P<word>[^']*)'"
                            r"(?: \([^)]*\))?$")
_LEAD_WORDS = 8  # a description names the measure in its first words; later words describe the study (audit)
_RESPONSE = re.compile(r"'respon", re.IGNORECASE)
_LEVEL_OPERATOR = re.compile(r"improv|relief", re.IGNORECASE)  # in a level measure only these fix the sign
_NOT_PK_AUC = re.compile(r"fev|glucose|pain|symptom|score|effect", re.IGNORECASE)


def _decide(text: str, unit: str, param_type: str) -> Polarity:
    for name, pat in lx.EXCLUDED:
        m = pat.search(text)
        if m and m.group(0).lower().startswith("auc") and _NOT_PK_AUC.search(text):
            continue  # an area under a clinical curve (FEV1 AUC, glucose AUC) is not pharmacokinetics
        if m:
            return Polarity(None, f"excluded: {name} ({m.group(0).strip()!r})", "excluded")
    m = lx.TIME_TO.search(text)
    if m:
        value, why = _event_value(m.group("rest"), allow_flip=True, require_operator=False)
        if value is None:
            return Polarity(None, f"time_to: {why}", "time_to")
        return Polarity(value < 0, f"time_to: {why} ({'later' if value < 0 else 'sooner'} is better)", "time_to")
    m = lx.DURATION.search(text)
    if m:
        value, why = _event_value(m.group("rest"), allow_flip=True, require_operator=False)
        return Polarity(None if value is None else value > 0, f"duration: {why}", "duration")
    is_proportion = (bool(lx.PROPORTION.search(text)) or bool(lx.COUNT_UNIT.match(unit))
                     or param_type == "COUNT_OF_PARTICIPANTS")
    if is_proportion or lx.COUNT.search(text):
        frame = "proportion" if is_proportion else "count"
        threshold = bool(lx.THRESHOLD.search(lx.AT_LEAST_ONE_EVENT.sub(" ", text)))
        value, why = _event_value(text, allow_flip=True, require_operator=threshold)
        return Polarity(None if value is None else value > 0, f"{frame}: {why}", frame)
    value, why = _event_value(text, allow_flip=False, require_operator=False)
    if value is not None and why.startswith("good event") and not _LEVEL_OPERATOR.search(why):
        concept, what = _concept(_hits(text))
        if concept == 1 and _RESPONSE.search(why):  # "trough FEV1 response": more of a good quantity
            return Polarity(True, f"level: {what} (its response)", "level")
        return Polarity(None, f"level: {why} does not say which way the measure moves", "level")
    return Polarity(None if value is None else value > 0, f"level: {why}", "level")


_VERB = r"(?:indicat\w*|represent\w*|reflect\w*|mean\w*|denot\w*|signif\w*|suggest\w*|correspond\w*|=|equals?)"
_GOOD_WORDS = re.compile(r"^(?:an? |the )?(?:greater |more |larger |better |clinical |an )?(?:improv\w*|better|benefit"
                         r"|less (?:sever|impair|disab|symptom|pain|depress|anxi)\w*|fewer|milder|healthier|(?:pain )?"
                         r"relief|(?<=more )positive|reduction in (?:symptoms|severity|pain|disease))", re.IGNORECASE)
_BAD_WORDS = re.compile(r"^(?:an? |the )?(?:greater |more |larger |clinical )?(?:wors\w*|deteriorat\w*|poorer|"
                        r"(?:more|greater|increased) (?:sever|impair|disab|symptom|pain(?! relief)|depress|anxi)\w*|"
                        r"severe|impairment|disability)", re.IGNORECASE)
_VALUE_CONVENTION = re.compile(
    r"\b(?P<dir>negative|positive|an? (?:increase|decrease|reduction|rise|fall|drop))\b[^.;:]{0,60}?\b" + _VERB
    + r"\s+(?P<what>[^.;,]{1,60})", re.IGNORECASE)
_SCALE_CONVENTION = re.compile(
    r"\b(?P<dir>higher|lower|greater|larger|smaller)\s+(?:\w+\s+){0,4}?(?:scores?|values?|numbers?|ratings?|"
    r"points?|totals?|levels?)\b[^.;:]{0,40}?\b(?:" + _VERB[3:-1] + r"|are associated with)\s+(?P<what>[^.;,]{1,60})",
    re.IGNORECASE)
_UP = re.compile(r"positive|increase|rise|higher|greater|larger", re.IGNORECASE)
_BASELINE_MINUS = re.compile(
    r"(?:(?:=|\bas\b|\bis\b)\s*|\()(?:the\s+)?(?:baseline|pre[- ]?(?:treatment|dose|operative|intervention)?)"
    r"(?:\s+(?:value|score|measurement|level))?(?:\s*(?:minus|−|–)\s*|\s+-\s+)(?:the\s+)?(?:value\s+|score\s+)?"
    r"(?:at\s+)?"
    r"(?:week|day|month|visit|post|follow|final|end|endpoint|last|treatment|time ?point|the (?:value|score))"
    r"|(?<!post-)(?<!post )\bbaseline\s+(?:value\s+|score\s+)?minus\b", re.IGNORECASE)
_MINUS_BASELINE = re.compile(r"(?:minus|−|–)\s*(?:the\s+)?baseline", re.IGNORECASE)  # the usual convention


_CHANGE_SCORE = re.compile(r"\bchange|\breduction\b|\bdecrease\b", re.IGNORECASE)
# measures defined as baseline minus follow-up whose direction the lexicon already gives (more relief is better)
_DIFFERENCE_DEFINED = re.compile(r"pain intensity difference|\bs?pid\b|\btotpar\b|\brelief\b", re.IGNORECASE)


def _statement(pattern: re.Pattern, text: str, agreed: bool = False) -> tuple[bool | None, str]:
    """Higher is better? from an explicit statement "<direction> ... indicates <good | bad>", and the phrase: the
    first one; with ``agreed`` None when two disagree (a description of several scales: "EQ-5D ... lower scores
    indicating improvement ... VAS ... higher scores indicating improvement")."""
    found: tuple[bool | None, str] = (None, "")
    for m in pattern.finditer(text):
        what = m.group("what").strip()
        good = bool(_GOOD_WORDS.match(what))
        bad = bool(_BAD_WORDS.match(what))
        if good != bad:
            value = bool(_UP.search(m.group("dir"))) == good
            if found[0] is not None and found[0] != value:
                return None, ""
            found = found if found[0] is not None else (value, m.group(0).strip()[:100])
            if not agreed:
                return found
    return found


# a title decided by a concept or scale it names (not by an event such as "improvement in ...", which may be the
# reported value itself: "percent PASI improvement")
_CONCEPT_RULE = re.compile(r"^level: (?:good concept|bad concept|scale) ")


def _with_conventions(result: Polarity, title: str, description: str) -> Polarity:
    """A level measure under the sign conventions its description states (docstring, step 5)."""
    value, phrase = _statement(_VALUE_CONVENTION, description)
    if value is not None:
        return Polarity(value, f"level: description convention {phrase!r} [from description]", "level")
    higher, rule = result.higher_is_better, result.rule
    if higher is None and not names_concept(title):
        higher, phrase = _statement(_SCALE_CONVENTION, description)
        rule = f"level: description scale convention {phrase!r} [from description]"
    elif higher is not None:  # a scale named after what it rates ("SKAMP Compliance", "Visual Acuity" in logMAR)
        scale, phrase = _statement(_SCALE_CONVENTION, description, agreed=True)
        if scale is not None and scale != higher:
            if not _CONCEPT_RULE.match(rule):
                return Polarity(None, f"{rule}; conflicts with description scale convention {phrase!r}", "level")
            higher = scale
            rule = f"level: description scale convention {phrase!r} over title {rule[7:]!r} [from description]"
    m = _BASELINE_MINUS.search(description)
    if higher is not None and m and _CHANGE_SCORE.search(title) and not _DIFFERENCE_DEFINED.search(title) \
            and not _MINUS_BASELINE.search(description):
        return Polarity(not higher, f"{rule}; reversed: change defined as {m.group(0).strip()!r} [from description]",
                        "level")
    return Polarity(higher, rule, "level") if higher is not None else result


@lru_cache(maxsize=65536)
def outcome_polarity(
    title: str | None, description: str | None = None, unit: str | None = None, param_type: str | None = None
) -> Polarity:
    """Whether a higher value of the outcome is better, and the rule that decided (see the module docstring).

    ``title`` decides; ``description`` is read for stated sign conventions of a level measure, and for concepts only
    when the title names none; ``unit`` marks PK units (→ None) and participant-count units (proportion frame);
    ``param_type`` COUNT_OF_PARTICIPANTS marks a proportion.
    """
    title = (title or "").strip()
    unit = (unit or "").strip()
    param_type = (param_type or "").strip().upper()
    description = (description or "").strip()
    if unit and lx.PK_UNIT.search(unit):
        return Polarity(None, f"excluded: pharmacokinetic unit {unit!r}", "excluded")
    if not title and not description:
        return Polarity(None, "unknown: no title", "unknown")
    result = _decide(title, unit, param_type)
    if result.frame == "excluded" or not description:
        return result
    if result.frame == "level":
        result = _with_conventions(result, title, description)
    if result.higher_is_better is None and not names_concept(title):
        lead = " ".join(re.split(r"(?<=[.;:])\s", description, maxsplit=1)[0].split()[:_LEAD_WORDS])
        from_description = _decide(f"{title}. {lead}", unit, param_type)
        # descriptions decide through concepts only: their operators ("improvement", "normalized") describe
        # the study, not the sign of the measure
        m = _PLAIN_CONCEPT.match(from_description.rule)
        if from_description.higher_is_better is not None and m and m.group("word").lower() not in \
                lx.WEAK_IN_DESCRIPTION:
            return Polarity(from_description.higher_is_better, f"{from_description.rule} [from description]",
                            from_description.frame)
        if from_description.frame == "excluded":
            return from_description
    return result
