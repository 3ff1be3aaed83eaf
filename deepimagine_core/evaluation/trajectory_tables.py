"""An imagination trajectory as a small table for the report: one row per anchor, anchor → factors changed →
imagined result → answer, with every model text whitespace-normalised and clipped (a table cell holds one line).

A trajectory is the flat list of steps a `deepimagine` prediction carries (`Prediction.trajectory`): per anchor a
`start` step (its observed result), `skipped` factors, the changed factors with the imagined `result`, and an `answer`
step with the probabilities. Predictions of other shapes (a direct prompt, a baseline) give no rows.
"""

from __future__ import annotations

from typing import Any

HEADER = ["anchor", "factors changed", "imagined result", "answer"]
MAX_CELL = 160


def one_line(value: Any, limit: int = MAX_CELL) -> str:
    """Text on one line: whitespace runs collapsed, table pipes escaped, clipped to `limit` characters."""
    text = " ".join(str(value if value is not None else "").split()).replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _probabilities(values: Any) -> str:
    if not isinstance(values, (list, tuple)):
        return ""
    return "(" + ", ".join(f"{float(v):.2f}" for v in values) + ")"


def trajectory_rows(steps: list[dict[str, Any]] | None) -> list[list[str]]:
    """One row per anchor of a flat trajectory (see the module docstring); [] when it has no anchor paths."""
    rows: list[list[str]] = []
    current: dict[str, Any] | None = None
    for step in steps or []:
        if not isinstance(step, dict):
            continue
        factor = step.get("factor")
        if factor == "start":
            similarity = step.get("similarity")
            label = step.get("anchor") or "?"
            current = {"anchor": f"{label} (sim {similarity:.2f})" if isinstance(similarity, (int, float)) else label,
                       "changed": [], "result": f"observed: {step.get('result')}", "answer": ""}
            rows.append(current)  # type: ignore[arg-type]
        elif current is not None and factor == "answer":
            flag = "" if step.get("parsed", True) else " unparsed"
            current["answer"] = _probabilities(step.get("probabilities")) + flag
            current = None
        elif current is not None and "skipped" not in step and factor not in (None, "direct"):
            move = step.get("direction") or "?"
            current["changed"].append(f"{factor} ({move})" if step.get("parsed", True) else f"{factor} (unparsed)")
            current["result"] = step.get("result")
    return [[one_line(r["anchor"], 40), one_line(" → ".join(r["changed"]) or "(none: same or unknown)"),
             one_line(r["result"]), one_line(r["answer"], 40)] for r in rows]
