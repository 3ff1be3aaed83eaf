"""The prediction report of one trial: markdown, HTML and JSON under `reports/ask/<nct_id>/`, and a compact text table.

Per question: each predictor's probabilities and decision, the nearest historical trials with their known results
(linked to clinicaltrials.gov), and for the LLM pathway its trajectories as small tables (anchor → factor changed →
imagined result → answer). Blocks are rendered with the evaluation report's renderers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepimagine_core.evaluation.report import render_html, render_markdown
from deepimagine_core.evaluation.trajectory_tables import HEADER as TRAJECTORY_HEADER
from deepimagine_core.evaluation.trajectory_tables import trajectory_rows
from deepimagine_core.predict.questions import option_names, question_label
from deepimagine_core.predict.run import PredictionResult, PredictSettings
from deepimagine_core.questions import Question
from deepimagine_core.store import Store, atomic_path

REPORTS_SUBDIR = "ask"
_LINK = re.compile(r"\[(NCT\d{8})\]\((https://clinicaltrials\.gov/study/NCT\d{8})\)")


@dataclass
class PredictionFiles:
    root: Path
    markdown: Path
    html: Path
    json: Path
    markdown_text: str


def _decision(q: Question, prediction: Any) -> str:
    """The most probable option's short name and probability; "unparsed" when the model's answer was unreadable."""
    probabilities = prediction.probabilities
    if not getattr(prediction, "parsed", True):
        return "unparsed (uniform)"
    best = max(range(len(probabilities)), key=lambda i: probabilities[i])
    return f"{option_names(q)[best]} ({probabilities[best]:.2f})"


def _probs(probabilities: list[float]) -> str:
    return " / ".join(f"{p:.2f}" for p in probabilities)


def _link(nct_id: str) -> str:
    return f"[{nct_id}](https://clinicaltrials.gov/study/{nct_id})"


def _clip(text: Any, limit: int = 140) -> str:
    text = " ".join(str(text if text is not None else "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _design_blocks(result: PredictionResult) -> list[tuple]:
    d = result.design
    facts = [f"source: {d.source}", f"phase: {', '.join(d.phase) or 'not given'}",
             f"enrollment: {d.enrollment or 'not given'}", f"conditions: {', '.join(d.conditions) or 'not given'}",
             f"countries: {', '.join(d.countries) or 'not given'}"]
    arms = [[a["label"], a["type"], _clip("; ".join(i["name"] + (f" ({i['description']})" if i.get("description")
                                                                  else "") for i in a["interventions"]), 120)]
            for a in d.arms_json()]
    return [("h1", f"Prediction report: {d.nct_id} — {d.title}"), ("ul", facts),
            ("table", ["arm", "type", "interventions (dose)"], arms)]


def report_blocks(result: PredictionResult) -> list[tuple]:
    names = list(result.predictions)
    ref = result.reference if result.reference in names else names[0]
    blocks = _design_blocks(result)
    t = result.training
    method = (result.predictors.get(ref) or {}).get("method")
    how = f" ({method} scores: one trial is not a benchmark to adapt to)" if method == "calibrated" else ""
    blocks.append(("p", f"Reference predictor: {ref}{how}. Predictors learnt from {t['n_questions']} historical questions "
                        f"over {t['n_trials']} trials with known results ({t['n_target_questions_left_out']} questions "
                        "of this trial itself were left out). Nothing about this trial's own results was read."))
    for name, desc in result.predictors.items():
        if desc.get("note"):
            blocks.append(("p", f"Note on {name}: {desc['note']}"))
    header = ["#", "endpoint", "question", *[f"{n} decision" for n in names], f"{ref} probabilities"]
    rows = []
    for i, q in enumerate(result.questions):
        rows.append([str(i + 1), _clip(q.endpoint.get("measure"), 60), question_label(q),
                     *[_decision(q, result.predictions[n][i]) for n in names],
                     _probs(result.predictions[ref][i].probabilities)])
    blocks += [("h2", "Summary"), ("table", header, rows)]
    for i, q in enumerate(result.questions):
        ep = q.endpoint
        blocks.append(("h2", f"{i + 1}. {question_label(q)} — {_clip(ep.get('measure'), 100)}"))
        blocks.append(("p", f"Endpoint ({ep.get('outcome_type')}): {_clip(ep.get('measure'), 300)} "
                            f"[time frame: {_clip(ep.get('timeFrame'), 100) or 'not given'}]. Category {q.category}."))
        prob_rows = [[o, *[f"{result.predictions[n][i].probabilities[j]:.3f}" for n in names]]
                     for j, o in enumerate(q.options)]
        blocks.append(("table", ["option", *names], prob_rows))
        near = result.neighbours[i] if i < len(result.neighbours) else []
        if near:
            blocks.append(("h3", f"Nearest historical trials ({len(near)})"))
            blocks.append(("table", ["trial", "similarity", "endpoint", "arms", "known result", "p"],
                           [[_link(n["nct_id"]), f"{n['similarity']:.2f}", _clip(n["endpoint"], 70),
                             f"{n['arm_x']} vs {n['arm_y']}", f"{n['kind']}: {n['known_result']}", str(n["p_value"] or "")]
                            for n in near]))
        for n in names:
            rows = trajectory_rows(result.predictions[n][i].trajectory)
            if rows:
                blocks.append(("h3", f"{n} trajectories (one row per anchor)"))
                blocks.append(("table", TRAJECTORY_HEADER, rows))
    return blocks


def report_json(result: PredictionResult) -> dict[str, Any]:
    names = list(result.predictions)
    return {
        "trial": {**result.design.model_dump(), "source": result.design.source},
        "reference_predictor": result.reference, "predictors": result.predictors, "training": result.training,
        "questions": [
            {"nct_id": q.nct_id, "endpoint_key": q.endpoint_key, "question_index": q.question_index,
             "kind": q.extra.get("kind"), "category": q.category, "label": question_label(q), "endpoint": q.endpoint,
             "meta_label": q.meta_label, "options": q.options, "option_names": option_names(q),
             "predictions": {n: {"probabilities": result.predictions[n][i].probabilities,
                                 "parsed": result.predictions[n][i].parsed,
                                 "decision": _decision(q, result.predictions[n][i]),
                                 "trajectory": result.predictions[n][i].trajectory} for n in names},
             "nearest_trials": result.neighbours[i] if i < len(result.neighbours) else []}
            for i, q in enumerate(result.questions)],
    }


def _write(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def report_id(design: Any) -> str:
    """The report folder's name: the NCT id, or for a draft without one `draft-<title words>`."""
    name = design.nct_id if design.nct_id != "DRAFT" else "draft-" + "-".join(design.title.lower().split()[:8])
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80] or "trial"


def write_prediction_report(store: Store, result: PredictionResult) -> PredictionFiles:
    """reports/ask/<report_id>/report.md, report.html and prediction.json (each written atomically)."""
    root = store.path("reports", REPORTS_SUBDIR, report_id(result.design))
    blocks = report_blocks(result)
    markdown_text = render_markdown(blocks, root)
    html_text = _LINK.sub(r'<a href="\2">\1</a>', render_html(blocks, root)).replace(
        "<title>DeepImagine evaluation</title>", f"<title>DeepImagine prediction: {report_id(result.design)}</title>")
    return PredictionFiles(
        root=root,
        markdown=_write(root / "report.md", markdown_text),
        html=_write(root / "report.html", html_text),
        json=_write(root / "prediction.json", json.dumps(report_json(result), indent=2, default=str) + "\n"),
        markdown_text=markdown_text,
    )


def compact_table(result: PredictionResult) -> str:
    """The summary as a plain-text table for the terminal."""
    names = list(result.predictions)
    header = ["#", "endpoint", "question", *names]
    rows = [[str(i + 1), _clip(q.endpoint.get("measure"), 38), _clip(question_label(q), 44),
             *[_clip(_decision(q, result.predictions[n][i]), 40) for n in names]]
            for i, q in enumerate(result.questions)]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    line = lambda r: "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def ask(spec: str, store: Store, settings: PredictSettings | None = None, *, api: Any = None, draft_text: str = "",
        backend: Any = None, log: Any = print) -> tuple[PredictionResult, PredictionFiles]:
    """Load the design `spec` names (see `sources.load_design`), predict it and write its report: the one call the
    CLI and the `predict_trial` asset make."""
    from deepimagine_core.predict.run import predict_trial
    from deepimagine_core.predict.sources import load_design

    design = load_design(spec, store, api=api, draft_text=draft_text)
    result = predict_trial(design, store, settings, backend=backend, log=log)
    return result, write_prediction_report(store, result)
