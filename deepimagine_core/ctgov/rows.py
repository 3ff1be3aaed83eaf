"""What both parsers share: value conversion that records field issues, result-group rows (mapped to arms by
`arm_match`), dose columns.

A parser walks its own format and hands raw strings to a `StudyRows`; it returns the typed value and, when a
non-blank value cannot be used, appends ``{"stage": "value", "reason": ..., "column": ...}`` to its issues. The
study is never rejected for a value: the value stays null and its raw string is kept where the schema has a column.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from deepimagine_core.ctgov.arm_match import ArmMatcher
from deepimagine_core.ctgov.columns import Buffers
from deepimagine_core.ctgov.doses import Dose, dose_for, parse_dose
from deepimagine_core.ctgov.enums import map_enum, map_phases
from deepimagine_core.ctgov.records import ParsedStudy
from deepimagine_core.ctgov.schemas import KEYS
from deepimagine_core.ctgov.values import (
    is_missing,
    parse_date,
    parse_number,
    parse_number_relation,
    parse_p_value,
)
from deepimagine_core.tables import (
    ARM_GROUPS_TABLE,
    INTERVENTIONS_TABLE,
    OUTCOME_GROUPS_TABLE,
    OUTCOME_RESULTS_TABLE,
    TRIALS_TABLE,
)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# the tables whose key a record can repeat (a result group or a measurement listed twice); the parsers number the rows
# of the others (arms, interventions per distinct arm label, outcomes, analyses, locations) as they add them
_REPEATABLE_KEYS = tuple((name, KEYS[name]) for name in (OUTCOME_GROUPS_TABLE, OUTCOME_RESULTS_TABLE))
_NO_DOSE = {"dose_values": None, "dose_unit": None, "dose_frequency": None, "dose_route": None, "dose_text": None,
            "dose_source": None}


def as_count(raw: Any) -> int | None:
    """A participant count as an int: None unless it is a finite whole number within int64."""
    try:
        x = float(raw)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(x) or x != int(x) or not INT64_MIN <= x <= INT64_MAX:
        return None
    return int(x)


class StudyRows:
    """Rows of one study under construction, appended to the column buffers of its batch (`t`: table name ->
    `Columns`; the study's rows start at `start`), plus its field issues."""

    def __init__(self, nct_id: str, buffers: Buffers | None = None):
        self.nct_id = nct_id
        self.buffers = buffers if buffers is not None else Buffers()
        self.t = self.buffers.tables
        self.start = self.buffers.mark()
        self.issues: list[dict[str, Any]] = []

    def own_rows(self, table: str) -> list[dict[str, Any]]:
        """This study's rows of one table as dicts (few: arms and interventions for the arm matcher)."""
        return self.t[table].rows(self.start[table])

    def arm_matcher(self, labels: list[str]) -> ArmMatcher:
        """The study's result-group -> arm matcher (`arm_match`), told the design (a crossover?) and bound to its arm
        and intervention rows: call it once the trial, arms and interventions are added (arms and interventions are
        read when an outcome first needs them, before the next study's rows come)."""
        matcher = ArmMatcher(labels, crossover=any(
            trial.get("intervention_model") == "CROSSOVER" for trial in self.own_rows(TRIALS_TABLE)))
        matcher.bind(lambda: (self.own_rows(ARM_GROUPS_TABLE), self.own_rows(INTERVENTIONS_TABLE)))
        return matcher

    def issue(self, column: str, reason: str) -> None:
        self.issues.append({"stage": "value", "reason": reason, "column": column})

    def enum(self, field: str, raw: str | None, column: str | None = None) -> str | None:
        value, known = map_enum(field, raw)
        if not known:
            self.issue(column or field, f"unknown {column or field} value '{raw}'")
        return value

    def phases(self, raw: str | tuple[str, ...] | None) -> list[str]:
        phases, known = map_phases(raw)
        if not known:
            self.issue("phases", f"unknown phases value '{raw if isinstance(raw, str) else '/'.join(raw)}'")
        return list(phases)

    def number(self, column: str, raw: str | None) -> float | None:
        if raw is None:
            return None
        if "_" not in raw:  # the clean case first, as `parse_number` does: it runs for every value of every result
            try:
                x = float(raw)
                if x - x == 0.0:  # finite
                    return x
            except ValueError:
                pass
        x = parse_number(raw)
        if x is None and not is_missing(raw):
            self.issue(column, f"unparsable {column} '{raw}'")
        return x

    def integer(self, column: str, raw: str | int | None) -> int | None:
        if raw is None:
            return None
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            self.issue(column, f"unparsable {column} '{str(raw)[:80]}'")
            return None
        x = float(raw) if isinstance(raw, (int, float)) else parse_number(raw)
        if x is None or not math.isfinite(x) or x != int(x) or not INT64_MIN <= x <= INT64_MAX:
            if not (isinstance(raw, str) and is_missing(raw)):
                self.issue(column, f"unparsable {column} '{str(raw)[:80]}' (not an integer in range)")
            return None
        return int(raw) if isinstance(raw, int) else int(x)

    def p_value(self, raw: str | None) -> tuple[float | None, str | None]:
        value, relation, issue = _p_value(raw)
        if issue is not None:
            self.issue("p_value", issue)
        return value, relation

    def date(self, column: str, raw: str | None):
        d = parse_date(raw)
        if d is None and raw and raw.strip():
            self.issue(column, f"unparsable {column} '{raw}'")
        return d

    def add_intervention(
        self, index: int, type_raw: str | None, name: str | None, description: str | None, other_names: list[str],
        labels: list[str], arm_description: dict, per_arm: dict,
    ) -> None:
        """One `interventions` row per arm the intervention belongs to (one row without an arm when it names none),
        each with the dose read from the most specific text stating it."""
        kind = self.enum("intervention_type", type_raw, "interventions.type")
        add = self.t[INTERVENTIONS_TABLE].add
        aliases = tuple(other_names)
        for label in labels or [None]:
            add(self.nct_id, index, label, kind, name, description, other_names,
                *_intervention_dose_values(name, aliases, label, arm_description.get(label), description,
                                           per_arm.get(label, 0) == 1))

    def add_outcome_groups(
        self, outcome_index: int, groups: list[tuple], matcher: ArmMatcher, participants: dict
    ) -> None:
        """`outcome_groups` rows of one outcome: groups are (group_id, title, description), mapped to arm labels with
        the method that mapped them (`deepimagine_core.ctgov.arm_match`)."""
        add = self.t[OUTCOME_GROUPS_TABLE].add
        for group_index, ((group_id, title, description), (label, method)) in enumerate(
                zip(groups, matcher.match_groups(groups))):
            add(self.nct_id, outcome_index, group_id, group_index, title, description, label, method,
                participants.get(group_id), *_group_dose_values(title, description))

    def done(self, last_update) -> ParsedStudy:
        """The parsed study, with rows repeating a table's key (a result group or measurement listed twice) dropped
        after the first and reported as field issues: keys stay unique, and nothing is dropped silently."""
        for name, key in _REPEATABLE_KEYS:
            columns, start = self.t[name], self.start[name]
            if len(columns) - start < 2:
                continue
            keys = list(zip(*(columns.column(c, start) for c in key)))
            if len(set(keys)) == len(keys):
                continue
            seen: set[tuple] = set()
            dropped = []
            for offset, k in enumerate(keys):
                if k in seen:
                    self.issue(name, f"duplicate {name} row for {dict(zip(key[1:], k[1:]))} dropped (first kept)")
                    dropped.append(start + offset)
                    continue
                seen.add(k)
            columns.delete(dropped)
        return ParsedStudy(nct_id=self.nct_id, last_update=last_update, field_issues=self.issues,
                           buffers=self.buffers)


def clean_text(s: str | None) -> str | None:
    """Strip a text; None when blank."""
    if s is None:
        return None
    s = s.strip()
    return s or None


def clean_block(s: str | None) -> str | None:
    """A legacy textblock without its XML indentation (each line stripped, line breaks kept)."""
    if s is None:
        return None
    s = "\n".join(map(str.strip, s.strip().split("\n")))
    return s or None


def dose_tuple(columns: dict[str, Any]) -> tuple:
    """The DOSE_FIELDS values of `dose_columns`, in schema order."""
    return (columns["dose_values"], columns["dose_unit"], columns["dose_frequency"], columns["dose_route"],
            columns["dose_text"], columns["dose_source"])


def dose_columns(dose: Dose | None, source: str | None) -> dict[str, Any]:
    """The DOSE_FIELDS columns of a row."""
    if dose is None:
        return dict(_NO_DOSE)
    return {
        "dose_values": list(dose.values),
        "dose_unit": dose.unit,
        "dose_frequency": dose.frequency,
        "dose_route": dose.route,
        "dose_text": dose.text,
        "dose_source": source,
    }


def intervention_dose(
    name: str | None,
    other_names: list[str],
    arm_label: str | None,
    arm_description: str | None,
    description: str | None,
    arm_has_one_intervention: bool,
) -> dict[str, Any]:
    """Dose columns of one (intervention, arm) row, from the most specific text that states it: the arm label, the
    intervention name, the arm description, then the intervention description. An arm text counts when it names the
    intervention, or when the arm has this one intervention only (so its dose is necessarily this one's)."""
    name = name or ""
    for text, source in ((arm_label, "arm_label"), (None, "intervention_name"), (arm_description, "arm_description"),
                         (description, "intervention_description")):
        if source == "intervention_name":
            dose = parse_dose(name)
        elif source == "intervention_description":
            dose = parse_dose(description)
        else:
            dose = dose_for(name, text, aliases=other_names)
            if dose is None and arm_has_one_intervention:
                dose = parse_dose(text)
        if dose is not None:
            return dose_columns(dose, source)
    return dict(_NO_DOSE)


@lru_cache(maxsize=8192)
def _p_value(raw: str | None) -> tuple[float | None, str | None, str | None]:
    """(p, relation, field issue or None) of a p-value text (the same few texts recur across analyses and studies)."""
    parsed = parse_p_value(raw)
    if parsed is not None:
        return (*parsed, None)
    if is_missing(raw):
        return None, None, None
    what = "p_value out of range" if parse_number_relation(raw) is not None else "unparsable p_value"
    return None, None, f"{what} '{raw}'"


@lru_cache(maxsize=4096)
def _intervention_dose_values(name: str | None, other_names: tuple[str, ...], arm_label: str | None,
                              arm_description: str | None, description: str | None, alone: bool) -> tuple:
    """`intervention_dose` as the DOSE_FIELDS values in schema order (a pure function of its texts, cached)."""
    return dose_tuple(intervention_dose(name, list(other_names), arm_label, arm_description, description, alone))


@lru_cache(maxsize=8192)
def _group_dose(title: str | None, description: str | None) -> tuple[Dose | None, str | None]:
    dose = parse_dose(title)
    if dose is not None:
        return dose, "group_title"
    dose = parse_dose(description)
    return (dose, "group_description") if dose is not None else (None, None)


@lru_cache(maxsize=8192)
def _group_dose_values(title: str | None, description: str | None) -> tuple:
    """`group_dose` as the DOSE_FIELDS values in schema order (result-group titles repeat across outcomes)."""
    return dose_tuple(dose_columns(*_group_dose(title, description)))


def group_dose(title: str | None, description: str | None) -> dict[str, Any]:
    """Dose columns of a result group: from its title, else its description."""
    return dose_columns(*_group_dose(title, description))
