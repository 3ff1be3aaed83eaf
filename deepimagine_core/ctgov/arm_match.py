"""Result groups → protocol arms, by evidence, each mapping with the method that made it.

A result group of an outcome (``outcome_groups``) names the arm it reports in its own words: "Placebo", "Empagliflozin
25 mg", "Group A", "Sham tDCS". Questions need the arm, so the parser maps every group, and records how
(``outcome_groups.arm_match_method``), strongest first:

- ``exact``: the title is an arm label; ``normalised``: equal after case, punctuation and digit/letter splitting;
- ``contained``: one contains the other as whole words; ``tokens``: Jaccard >= 0.5 over non-generic words, unique
  best — both only when the title names no word that only another label has, and never across differing doses;
- ``single_arm``: the study has one arm and the outcome one group;
- ``evidence``: the title's distinctive words (drug names, doses, "placebo", "sham", "control") found in one arm's
  *profile* — its label, description and intervention names (with other names and doses) — more than in any other,
  covering at least half of the title's words that any arm states, with no title word that only another arm's
  profile has (nor a number other than the arm's own, when it states numbers); a title that says "placebo" / "sham" /
  "vehicle" and names nothing else is the one placebo or sham arm; then the same with the group's description added
  (two distinctive words needed), when the title alone decides nothing. Never for a pooled group ("All
  participants", "Combined", "Total"), in a crossover (arms that are sequences) or for a group whose description
  speaks of sequences ("placebo first, then ...");
- ``elimination``: as many groups as arms and every other group mapped to a distinct arm: the last group is the
  last arm, unless it pools arms, says "placebo" / "control" where the arm is none (or the reverse), or differs from
  another group's title only in numbers and time words (two visits of one arm);
- ``position``: the titles are opaque ("1", "Group A", "Arm 2" with no letter an arm label shares) and the outcome
  has exactly as many groups as the study has arms: group *i* ↔ arm *i*, and only when no group title says "placebo"
  / "sham" / "control" against a non-control arm.

No arm, too: by the label rules, for a title ordering treatments ("then", "followed by", "->") that says placebo /
control ("Lisinopril First, Then Placebo", a crossover sequence) unless the label does too; by no rule, in a crossover
design (``trials.intervention_model``) with two arms or more that are sequences ("Apple Juice First", "Drug first,
then placebo"), for a group that orders no treatments ("Drug", "Treatment A": one treatment, mostly pooled over
periods) to a sequence, unless both name one arm ("Drug (Arm A)"; for ``position`` also "Arm 2", or a description that
orders treatments); by ``contained`` or ``evidence``, for a combination label ("FOLFIRI + bevacizumab": parts at "+",
"&", "plus", "with", "and") with a part, no placebo, that neither the group's title nor description names and that
some other labels have but not all (the group may be an arm without it). An opaque title ("Group 2") gives
``evidence`` no words: its number is no dose.

A weaker mapping never takes an arm a stronger one of the same outcome has taken; two weak mappings to one arm are
both dropped. Ambiguity gives no arm (null), never a guess. Users who want only the strongest mappings filter on
``arm_match_method``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from deepimagine_core.ctgov.doses import parse_dose

# the runs of ASCII digits and of ASCII lower-case letters: a text's words and numbers once lower-cased
_RUNS = re.compile(r"[0-9]+|[a-z]+")
# Words that say nothing about which arm a result group is (ignored by the token rules).
_GENERIC = frozenset((
    "group groups arm arms treatment treatments treated cohort participants subjects patients the of and with plus "
    "then all").split())
_STOP = _GENERIC | frozenset((
    "a an in on or to for by at as from per was were is be are who received receive receiving given administered "
    "dose doses dosing day days week weeks month months period phase part study drug "
    "randomized randomised assigned population analysis set itt mitt pp total overall").split())
_NUMBER = re.compile(r"(?<![\w-])\d+(?:[.,]\d+)?(?![\w-]*\d)")
_CONTROL = re.compile(r"\b(placebo|sham|vehicle|(?<!positive )(?<!active )control|usual care|standard care|"
                      r"no treatment|no intervention)\b")
_PLACEBO = re.compile(r"\b(?:placebo|sham|vehicle)\b")
_TIME_WORDS = frozenset("visit week weeks day days month months year years time point timepoint dose period "
                        "baseline follow up".split())
_CONTROL_TYPES = frozenset({"PLACEBO_COMPARATOR", "SHAM_COMPARATOR", "NO_INTERVENTION"})
_OPAQUE = re.compile(r"^(?:(?:arm|group|cohort|part|panel|regimen|treatment|sequence|population)\s*)?"
                     r"(?:[a-z]|\d{1,2}|[ivx]{1,4})$")
# a pooled group is no single arm; the arms of a crossover are sequences, its groups treatments
_POOLED = re.compile(r"\b(?:pooled|combined|all (?:participants|patients|pts|subjects|treated|randomi[sz]ed|enrolled|"
                     r"arms|groups|cohorts|doses)|total|overall)\b", re.IGNORECASE)
_ORDERS = r"\bsequences?\b|\bthen\b|→|->|\bfollowed by\b|\b(?!the\b|or\b|and\b|a\b)\w+\)?[ -]\(?first\b"
_SEQUENCE = re.compile(_ORDERS + r"|\bcross[- ]?over\b|\bperiod\b", re.IGNORECASE)
_SEQUENCE_ARM = re.compile(_ORDERS, re.IGNORECASE)  # an arm that orders treatments: "Drug first, then placebo"
_ARM_ID = re.compile(r"\b(?:arm|group) ([a-z]|\d{1,2})\b")  # "Arm A" in a normalised title
# a title that orders treatments ("Lisinopril First, Then Placebo") and says placebo is a crossover sequence
_ORDERED = re.compile(r"\bthen\b|→|->|\bfollowed by\b", re.IGNORECASE)
# the components of a combination label ("FOLFIRI + bevacizumab")
_COMBINED = re.compile(r"\+|&|\bplus\b|\bwith\b|\band\b", re.IGNORECASE)
_SEQUENCE_TEXT = re.compile(r"\bthen\b|\bfollowed by\b|\bcross[- ]?(?:over|ed)\b|\bsequences?\b|\bwashout\b|"
                            r"\b\w+ first\b|\breceived? both\b", re.IGNORECASE)
WEAK = frozenset({"evidence", "elimination", "position"})
_STRENGTH = {"exact": 0, "normalised": 1, "contained": 2, "tokens": 3, "single_arm": 4, "evidence": 5,
             "elimination": 6, "position": 7}


@lru_cache(maxsize=4096)
def _norm(s: str) -> str:
    """Lower case, words and numbers only, digits split from letters ("50mg/Day" -> "50 mg day")."""
    return " ".join(_RUNS.findall(s.lower()))  # one pass (a sub of non-words, then of digit/letter edges: 2x slower)


@lru_cache(maxsize=4096)
def _dose_key(text: str) -> tuple | None:
    dose = parse_dose(text)
    return None if dose is None else (dose.values, dose.unit)


@lru_cache(maxsize=4096)
def _numbers(text: str | None) -> frozenset[str]:
    """The numbers of a text that can name a dose or a regimen: not a single digit (which numbers groups), not a
    product or compound code of five digits or more. (Pure functions of a string, cached: titles and labels repeat
    across the outcomes of a study.)"""
    return frozenset({n.replace(",", ".") for n in _NUMBER.findall(text or "") if 1 < len(n.split(".")[0].split(",")[0]) < 5
            or (len(n) > 1 and not n.isdigit())})


@lru_cache(maxsize=4096)
def _words(text: str | None) -> frozenset[str]:
    return frozenset([w for w in _norm(text or "").split() if w not in _STOP])


class ArmMatcher:
    """Maps result-group titles to protocol arm labels (module docstring). `match` reads labels only; `match_groups`
    maps one outcome's groups with every method, once `bind` has given it the study's arm and intervention rows."""

    def __init__(self, labels: list[str], crossover: bool = False):
        self.labels = [label for label in labels if label]
        self.exact = set(self.labels)
        self.norm: dict[str, list[str]] = {}
        for label in self.labels:
            self.norm.setdefault(_norm(label), []).append(label)
        self.tokens = {label: set(_norm(label).split()) - _GENERIC for label in self.labels}
        self.doses = {label: _dose_key(label) for label in self.labels}
        self.cache: dict[str, tuple[str | None, str | None]] = {}
        self.evidence_cache: dict[tuple, tuple[str | None, str | None]] = {}
        self.groups_cache: dict[tuple, list[tuple[str | None, str | None]]] = {}
        self.profiles: dict[str, set[str]] | None = None
        self.types: dict[str, str | None] = {}
        self.spread: Counter[str] = Counter()
        self.crossover = any(_SEQUENCE.search(label) for label in self.labels)
        sequences = {label for label in self.labels if _SEQUENCE_ARM.search(label)} if crossover else set()
        self.sequences = sequences if len(sequences) > 1 else set()  # the arms of a crossover design (trials table)
        self.rows: tuple[list, list] | Callable[[], tuple[list, list]] | None = None

    def bind(self, arm_rows: list[dict[str, Any]] | Callable[[], tuple[list, list]],
             intervention_rows: list[dict[str, Any]] | None = None) -> None:
        """The study's arm and intervention rows (or a function returning both), for the rules past the labels'
        (evidence, position, elimination). Arm profiles are built on the first outcome that needs them
        (`_profiled`): most outcomes' groups are all mapped by their labels."""
        if self.rows is None:
            self.rows = arm_rows if callable(arm_rows) else (arm_rows, intervention_rows or [])

    def _profiled(self) -> None:
        """Arm profiles (label, description, intervention names, other names, doses) for the evidence rule."""
        if self.profiles is not None or self.rows is None:
            return
        arm_rows, intervention_rows = self.rows() if callable(self.rows) else self.rows
        profiles: dict[str, set[str]] = {label: set(_words(label)) for label in self.labels}
        for arm in arm_rows:
            label = arm.get("label")
            if label in profiles:
                self.types[label] = arm.get("type")
                profiles[label] |= _words(arm.get("description"))
                for name in arm.get("intervention_names") or []:
                    profiles[label] |= _words(name.split(":", 1)[-1])
        for iv in intervention_rows:
            label = iv.get("arm_label")
            if label in profiles:
                profiles[label] |= _words(iv.get("name")) | _words(" ".join(iv.get("other_names") or []))
                profiles[label] |= _words(iv.get("dose_text"))
        self.profiles = profiles
        self.spread = Counter(w for profile in profiles.values() for w in profile)  # word -> arms whose profile has it

    def match(self, title: str | None, n_groups: int) -> str | None:
        """The arm label of one title by the label rules only (exact ... tokens, single_arm), or None."""
        return self._by_label(title, n_groups)[0]

    def match_groups(self, groups: list[tuple]) -> list[tuple[str | None, str | None]]:
        """(arm label, method) for each (group_id, title, description) of one outcome (outcomes of a study mostly
        list the same groups: computed once per list)."""
        key = tuple((title, description) for _, title, description in groups)
        if key not in self.groups_cache:
            self.groups_cache[key] = self._match_groups(groups)
        return self.groups_cache[key]

    def _match_groups(self, groups: list[tuple]) -> list[tuple[str | None, str | None]]:
        n = len(groups)
        found = [self._unless_component_unnamed(self._by_label(title, n), title, description)
                 for _, title, description in groups]
        if self.rows is not None and any(label is None for label, _ in found):
            self._profiled()
            for i, (_, title, description) in enumerate(groups):
                if found[i][0] is None:
                    found[i] = self._unless_component_unnamed(self._by_evidence(title, description), title,
                                                              description)
            found = self._by_position(groups, found)
            found = self._by_elimination(groups, found)
        return _one_arm_per_group(found)

    def _by_label(self, title: str | None, n_groups: int) -> tuple[str | None, str | None]:
        if not title or not self.labels:
            return None, None
        if title in self.exact:
            return title, "exact"
        if title not in self.cache:
            self.cache[title] = self._match(title)
        found = self.cache[title]
        if found[0] is None and len(self.labels) == 1 and n_groups == 1:
            return self.labels[0], "single_arm"
        return found

    def _match(self, title: str) -> tuple[str | None, str | None]:
        nt = _norm(title)
        same = self.norm.get(nt)
        if same:
            return (same[0], "normalised") if len(same) == 1 else (None, None)
        dose = _dose_key(title)
        crossed = bool(_ORDERED.search(title)) and _says_control(title)
        allowed = [lb for lb in self.labels if (dose is None or self.doses[lb] is None or self.doses[lb] == dose)
                   and (not crossed or _says_control(lb) or _ORDERED.search(lb)) and self._may_be_sequence(title, lb)]
        padded = f" {nt} "
        contained = []
        numbers = _numbers(title)
        for label in allowed:
            if _numbers(label) - numbers:
                continue  # "Standard of Care" is not "EMD 525797 250 mg + Standard of Care"
            nl = _norm(label)
            if nl and (f" {nl} " in padded or padded in f" {nl} "):
                contained.append(label)
        tokens = set(nt.split()) - _GENERIC
        in_title = [label for label in contained if f" {_norm(label)} " in padded]
        if in_title:  # labels the title names: the most specific ("Drug A 10 mg plus B" over "Drug A")
            return self._unless_other_named(_most_specific(in_title), tokens), "contained"
        if contained:  # labels that name the title: the closest ("Naproxen" is "naproxen sodium", not the combination)
            return self._unless_other_named(_closest(contained), tokens), "contained"
        if not tokens:
            return None, None
        scored = sorted(
            ((len(tokens & self.tokens[lb]) / len(tokens | self.tokens[lb]), lb) for lb in allowed if self.tokens[lb]),
            reverse=True,
        )
        if scored and scored[0][0] >= 0.5 and (len(scored) == 1 or scored[0][0] > scored[1][0]):
            return self._unless_other_named(scored[0][1], tokens), "tokens"
        return None, None

    def _may_be_sequence(self, title: str, label: str, description: str | None = None) -> bool:
        """Not a crossover's sequence arm for a treatment: a group ordering nothing, naming no arm the label names."""
        return label not in self.sequences or bool(_SEQUENCE_ARM.search(f"{title or ''} {description or ''}")) or bool(
            set(_ARM_ID.findall(_norm(title or ""))) & set(_ARM_ID.findall(_norm(label))))

    def _unless_component_unnamed(self, found: tuple[str | None, str | None], title: str | None,
                                  description: str | None) -> tuple[str | None, str | None]:
        """No arm when a `contained` or `evidence` combination label has a part (no placebo) that other labels, but
        not all, have and neither the title nor the group's description names: "FOLFIRI" is not "FOLFIRI +
        bevacizumab" when "bevacizumab" is a component some arms lack (the group may be an arm without it)."""
        label, method = found
        if label is None or method not in ("contained", "evidence"):
            return found
        named = set(_norm(title or "").split()) | _words(description)
        parts = _parts(label)
        for part in parts if len(parts) > 1 else ():  # a placebo part is a dummy, no component
            words = set(part.split()) - _GENERIC
            if any(len(w) > 2 and not w.isdigit() for w in words) and not words & named and not _PLACEBO.search(
                    part) and 1 < sum(words <= self.tokens[other] for other in self.labels) < len(self.labels):
                return None, None
        return found

    def _unless_other_named(self, label: str | None, title_tokens: set[str]) -> str | None:
        """None when the title also names a word that only another arm's label has ("Sham-treated; LED-treated"
        is not the "LED-treated" arm when another arm is "Sham light")."""
        if label is None or any(title_tokens & self.tokens[o] - self.tokens[label] for o in self.labels if o != label):
            return None
        return label

    def _by_evidence(self, title: str | None, description: str | None) -> tuple[str | None, str | None]:
        if (title, description) not in self.evidence_cache:
            self.evidence_cache[(title, description)] = self._evidence(title, description)
        return self.evidence_cache[(title, description)]

    def _evidence(self, title: str | None, description: str | None) -> tuple[str | None, str | None]:
        if not title or _POOLED.search(title) or self.crossover or _SEQUENCE_TEXT.search(description or ""):
            return None, None
        placebo = self._only_placebo_arm(title)
        if placebo is not None:
            return placebo, "evidence"
        if _OPAQUE.match(_norm(title)):  # "Group 2": a number or letter that numbers the group, not a dose
            title = ""
        for text, need in ((title, 1), (f"{title} {description}" if description else None, 2)):
            label = self._best_profile(_words(text), need, _numbers(title)) if text else None
            if label is not None:
                return label, "evidence"
        return None, None

    def _only_placebo_arm(self, title: str) -> str | None:
        """A title that says placebo / sham / vehicle, and names nothing else, is the one placebo or sham arm."""
        if not _PLACEBO.search(title.lower()):
            return None
        rest = {w for w in _words(title) if not _PLACEBO.match(w) and not w.isdigit()} - _TIME_WORDS
        arms = [lb for lb in self.labels if self.types.get(lb) in ("PLACEBO_COMPARATOR", "SHAM_COMPARATOR")]
        return arms[0] if len(arms) == 1 and not rest - (self.profiles or {}).get(arms[0], set()) else None

    def _best_profile(self, words: set[str], need: int, numbers: set[str]) -> str | None:
        if not words or not self.profiles or len(self.profiles) < 2:
            return None
        known = sum(1 for w in words if self.spread.get(w, 0))  # words no arm states tell nothing either way
        if not known:
            return None
        scored = []
        for label, profile in self.profiles.items():
            if _numbers(label) - numbers:
                continue  # the label states a dose or regimen number the title does not
            mine = words & profile
            stated = any(w.isdigit() for w in profile)
            if len(mine) < len(words) and any(self.spread.get(w, 0) or (stated and w.isdigit())
                                              for w in words - profile):
                continue  # a word only other arms have, or a number (dose) other than this arm's: not this arm
            own = sum(self.spread[w] == 1 for w in mine)  # distinctive of this arm
            scored.append((own, len(mine) / known, label))
        scored.sort(reverse=True)
        if not scored or scored[0][0] < need or scored[0][1] < 0.5 or scored[1:] and scored[1][:2] == scored[0][:2]:
            return None
        return scored[0][2]

    def _by_elimination(self, groups: list[tuple], found: list) -> list:
        """As many groups as arms, every group but one mapped to distinct arms: the last group is the last arm,
        unless its title says placebo / sham / control against a non-control arm (or the reverse) or pools arms."""
        missing = [i for i, f in enumerate(found) if f[0] is None]
        taken = {f[0] for f in found if f[0] is not None}
        free = [label for label in self.labels if label not in taken]
        if len(groups) != len(self.labels) or len(missing) != 1 or len(free) != 1 or len(taken) != len(groups) - 1:
            return found
        i, label = missing[0], free[0]
        title = groups[i][1]
        is_control = self.types.get(label) in _CONTROL_TYPES or _says_control(label)
        if not title or _POOLED.search(title) or self.crossover or _says_control(title) != is_control or \
                _SEQUENCE_TEXT.search(groups[i][2] or ""):
            return found
        words = _words(title)
        for j, (_, other, _) in enumerate(groups):  # "Drug A, visit 4" beside "Drug A, visit 3": one arm, two visits
            if j != i and all(w.isdigit() or w in _TIME_WORDS for w in words - _words(other)):
                return found
        return found[:i] + [(label, "elimination")] + found[i + 1:]

    def _by_position(self, groups: list[tuple], found: list) -> list:
        n = len(groups)
        if n != len(self.labels) or n < 2 or all(f[0] is not None for f in found) or not all(
                _OPAQUE.match(_norm(title or "")) for _, title, _ in groups):
            return found
        out = list(found)
        for i, (_, title, description) in enumerate(groups):
            label = self.labels[i]
            if _says_control(title) and self.types.get(label) not in _CONTROL_TYPES or not (  # "Arm 2" is an arm
                    _ARM_ID.match(_norm(title or "")) or self._may_be_sequence(title, label, description)):
                return found
            if out[i][0] is None:
                out[i] = (label, "position")
            elif out[i][0] != label:
                return found  # a title that names an arm out of order: the order is not the arms' order
        return out


@lru_cache(maxsize=4096)
def _parts(label: str) -> tuple[str, ...]:
    """The components of a combination label, normalised ("FOLFIRI + bevacizumab" -> "folfiri", "bevacizumab")."""
    return tuple(_norm(part) for part in _COMBINED.split(label))


def _says_control(title: str | None) -> bool:
    return bool(_CONTROL.search((title or "").lower()))


def _one_arm_per_group(found: list[tuple[str | None, str | None]]) -> list[tuple[str | None, str | None]]:
    """A weak mapping never takes an arm a stronger mapping of the same outcome has; weak ties are both dropped."""
    by_arm: dict[str, list[int]] = {}
    for i, (label, _) in enumerate(found):
        if label is not None:
            by_arm.setdefault(label, []).append(i)
    out = list(found)
    for indices in by_arm.values():
        if len(indices) < 2:
            continue
        strongest = min(_STRENGTH[found[i][1]] for i in indices)
        for i in indices:
            if found[i][1] in WEAK and (_STRENGTH[found[i][1]] > strongest or
                                        sum(found[j][1] == found[i][1] for j in indices) > 1):
                out[i] = (None, None)
    return out


def _closest(candidates: list[str]) -> str | None:
    """The one shortest candidate when every other contains it; else None (ambiguous)."""
    shortest = min(candidates, key=len)
    ns = f" {_norm(shortest)} "
    if sum(len(c) == len(shortest) for c in candidates) == 1 and all(ns in f" {_norm(c)} " for c in candidates):
        return shortest
    return None


def _most_specific(candidates: list[str]) -> str | None:
    """One candidate, or the longest when it contains all the others; else None (ambiguous)."""
    if len(candidates) == 1:
        return candidates[0]
    longest = max(candidates, key=len)
    nl = f" {_norm(longest)} "
    if sum(len(c) == len(longest) for c in candidates) == 1 and all(f" {_norm(c)} " in nl for c in candidates):
        return longest
    return None
