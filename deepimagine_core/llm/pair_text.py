"""Natural pairs as text: one `natural_pairs` row read into a `PairView` whose `step` is the shared step format.

A natural pair is one trial, one measured result cell, two configurations that differ in one factor: another arm
(dose-ranging included) or another outcome. Its step (`llm.steps.StepInput`) shows the factor's value before and after
(the arm with its dose and group, or the outcome with its time frame and result cell) and the measured value before
the change as a result sentence that names what stays fixed; the observed value after it, in the same form, is what a
trace must explain and what an answer-only SFT example answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deepimagine_core.llm.prompts import clip, describe_arm
from deepimagine_core.llm.steps import StepInput, step_messages, trace_messages

DIRECTIONS = ("up", "down", "same")
# line prefixes of a described context that make up each factor's value (the rest stays fixed in a pair)
_FACTOR_LINES = {"arm": ("Arm:", "Group:", "Dose:"), "outcome": ("Outcome:", "Result cell:")}
# natural pairs' change_band -> the step format's SIZE; "same" has no size to check
_SIZE_BANDS = {"negligible": "small", "small": "small", "moderate": "moderate", "large": "large"}


@dataclass(frozen=True)
class PairView:
    """What a trace prompt needs from one `natural_pairs` row."""

    pair_id: str
    factor: str
    split: str
    source: str  # configuration C, described
    target: str  # configuration C'
    change: str  # the one thing that differs, in plain words
    source_result: str
    target_result: str
    direction: str  # observed: up | down | same
    size: str | None  # observed size band in the step format's words (small | moderate | large), when known
    negligible: bool  # the change is under 5%: "same" is an acceptable answer too
    step: StepInput  # the step shown to the operator (and, with the observed result, to the teacher)
    target_sentence: str  # the observed result after the change, in the step's result form


def _first(row: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    for name in names:
        value = row.get(name)
        if value not in (None, ""):
            return value
    return default


def _loads(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _flat(value: Any) -> str:
    """Any leftover value as readable text: dicts as `key: value; ...`, lists comma-joined, empties dropped."""
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flat(v)}" for k, v in value.items() if v not in (None, "", [], {}))
    if isinstance(value, (list, tuple)):
        return ", ".join(_flat(v) for v in value if v not in (None, "", [], {}))
    return str(value)


def describe_pair_context(value: Any) -> str:
    """A natural-pair context (JSON of `deepimagine_core.pairs.natural`: trial, arm, group, dose, outcome,
    class/category) as prompt lines; plain text is returned as it is."""
    ctx = _loads(value)
    if not isinstance(ctx, dict):
        return _flat(ctx)
    lines = []
    trial = " ".join(x for x in (clip(ctx.get("brief_title"), 200), f"({ctx['nct_id']})" if ctx.get("nct_id") else "")
                     if x)
    extras = [f"conditions: {_flat(ctx['conditions'])}" if ctx.get("conditions") else "",
              f"phases: {_flat(ctx['phases'])}" if ctx.get("phases") else ""]
    if trial or any(extras):
        lines.append("; ".join(x for x in [f"Trial: {trial}" if trial else "", *extras] if x))
    if isinstance(arm := ctx.get("arm"), dict):
        lines.append("Arm: " + describe_arm(arm).removeprefix("- "))
    if isinstance(group := ctx.get("group"), dict) and (group.get("title") or group.get("description")):
        lines.append("Group: " + "; ".join(clip(x, 200) for x in (group.get("title"), group.get("description")) if x))
    if isinstance(dose := ctx.get("dose"), dict):
        text = dose.get("text") or " ".join(
            x for x in (_flat(dose.get("values")), dose.get("unit"), dose.get("frequency"), dose.get("route")) if x)
        if text:
            lines.append(f"Dose: {text}")
    if isinstance(outcome := ctx.get("outcome"), dict):
        head = " ".join(x for x in (clip(outcome.get("title"), 200),
                                    f"[{outcome['time_frame']}]" if outcome.get("time_frame") else "") if x)
        kind = ", ".join(x for x in (outcome.get("type"), outcome.get("param_type"),
                                     f"unit {outcome['unit']}" if outcome.get("unit") else "") if x)
        desc = clip(outcome.get("description"), 200)
        lines.append("Outcome: " + "; ".join(x for x in (head, f"({kind})" if kind else "", desc) if x))
    cell = " / ".join(str(x) for x in (ctx.get("class_title"), ctx.get("category_title")) if x)
    if cell:
        lines.append(f"Result cell: {cell}")
    known = {"nct_id", "brief_title", "conditions", "phases", "arm", "group", "dose", "outcome", "class_title",
             "category_title"}
    if rest := _flat({k: v for k, v in ctx.items() if k not in known}):
        lines.append(rest)
    return "\n".join(lines)


def describe_pair_result(value: Any) -> str:
    """A natural-pair result (JSON: value, dispersion, limits, n, param type, unit) as one line."""
    res = _loads(value)
    if not isinstance(res, dict):
        return _flat(res)
    if res.get("value") is None:
        return _flat(res)
    value = f"{res['value']:g}" if isinstance(res["value"], (int, float)) else res["value"]
    text = " ".join(str(x) for x in (res.get("param_type"), value, res.get("unit")) if x not in (None, ""))
    spread = []
    if res.get("dispersion") is not None:
        spread.append(f"{res.get('dispersion_type') or 'dispersion'} {res['dispersion']:g}")
    if res.get("lower") is not None and res.get("upper") is not None:
        spread.append(f"limits {res['lower']:g} to {res['upper']:g}")
    if res.get("n") is not None:
        spread.append(f"n = {res['n']}")
    return f"{text} ({'; '.join(spread)})" if spread else text


def normalise_direction(value: Any) -> str | None:
    direction = str(value or "").strip().lower()
    return direction if direction in DIRECTIONS else None


def _factor_value(described: str, factor: str, fallback: str) -> tuple[str, str]:
    """(the factor's value, what stays fixed) from a described context."""
    lines = [line for line in described.splitlines() if line.strip()]
    prefixes = _FACTOR_LINES.get(factor, ())
    value = [line for line in lines if line.startswith(prefixes)]
    fixed = [line for line in lines if not line.startswith(prefixes) and not line.startswith("Trial:")]
    return ("; ".join(value) or fallback), "; ".join(fixed)


def _sentence(fixed: str, result: str) -> str:
    return f"{fixed}: {result}" if fixed else result


def pair_view(row: Mapping[str, Any]) -> PairView:
    """Read one natural pair; raises ValueError naming the missing fields (the caller counts it as skipped)."""
    fields = {
        "pair_id": _first(row, "pair_id"),
        "factor": _first(row, "factor"),
        "source": _first(row, "source_context"),
        "target": _first(row, "target_context"),
        "change": _first(row, "difference"),
        "source_result": _first(row, "source_result"),
        "target_result": _first(row, "target_result"),
        "change_direction": normalise_direction(row.get("change_direction")),
    }
    missing = sorted(k for k, v in fields.items() if v is None)
    if missing:
        raise ValueError(f"natural pair {fields['pair_id'] or '?'} lacks {', '.join(missing)}")
    band = str(row.get("change_band") or "").strip().lower()
    factor, change = str(fields["factor"]), str(fields["change"])
    source, target = describe_pair_context(fields["source"]), describe_pair_context(fields["target"])
    before, after = change.split(" → ", 1) if " → " in change else (change, change)
    old_value, fixed = _factor_value(source, factor, before)
    new_value, _ = _factor_value(target, factor, after)
    source_result = describe_pair_result(fields["source_result"])
    target_result = describe_pair_result(fields["target_result"])
    return PairView(
        pair_id=str(fields["pair_id"]),
        factor=factor,
        split=str(_first(row, "split", default="")),
        source=source,
        target=target,
        change=change,
        source_result=source_result,
        target_result=target_result,
        direction=fields["change_direction"],
        size=_SIZE_BANDS.get(band),
        negligible=band == "negligible",
        step=StepInput(factor, old_value, new_value, _sentence(fixed, source_result), source_result, observed=True),
        target_sentence=_sentence(fixed, target_result),
    )


def verdict(stated_direction: str | None, stated_size: str | None, pair: PairView) -> tuple[str, bool | None]:
    """(verdict, size_match): accepted only when the direction matches, and the size band too when it is known.
    "same" has no size to check; it also matches a negligible (< 5%) observed change."""
    if stated_direction is None:
        return "unparsed", None
    if stated_direction == "same" and pair.negligible:
        return "accepted", None
    if stated_direction != pair.direction:
        return "wrong_direction", None
    if pair.size is None or pair.direction == "same":
        return "accepted", None
    size_match = stated_size == pair.size
    return ("accepted" if size_match else "wrong_size"), size_match


def trace_prompts(pair: PairView) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(teacher prompt: the step plus the observed result after it, operator prompt: the step alone)."""
    return trace_messages(pair.step, pair.target_sentence), step_messages(pair.step)


def pair_step_messages(row: Mapping[str, Any]) -> list[dict[str, str]]:
    """The operator's step prompt for one natural pair (no observed result after the change): what SFT trains on,
    worded exactly as the trace it is paired with."""
    return step_messages(pair_view(row).step)
