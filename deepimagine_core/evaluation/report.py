"""The evaluation report (the render side): files, tables, figures, markdown and HTML from `run.EvaluationResults`.

    results = run.run_predictors(benchmarks, train, ["majority", "logreg"])
    files = write_report(store.path("reports"), results)

Layout under `reports/` (every file written atomically):
    evaluation.json                         {benchmark: {predictor: {overall, categories, n_questions, intervals, ...}}}
    report.md, report.html                  tables, plots, and a step-by-step sample of LLM trajectories
    figures/<benchmark>/*.png               per-category bars, reliability diagram, confusion matrices
    predictions/<benchmark>/<predictor>.jsonl   {nct_id, endpoint_key, question_index, probabilities, parsed}
    trajectories/<benchmark>/<predictor>.jsonl  predictions that carry model text or trajectories
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepimagine_core.evaluation.figures import write_figures
from deepimagine_core.evaluation.run import EvaluationResults, fmt_interval, safe_name
from deepimagine_core.evaluation.scoring import METRICS
from deepimagine_core.evaluation.trajectory_tables import HEADER as TRAJECTORY_HEADER
from deepimagine_core.evaluation.trajectory_tables import trajectory_rows
from deepimagine_core.store import atomic_path

TRAJECTORY_SAMPLE = 3  # questions shown step by step per trajectory file
TRAJECTORY_CHARS = 300  # characters shown of a model output or step field (the JSONL holds all of it)


# ---- files --------------------------------------------------------------------------------------------------------


@dataclass
class ReportFiles:
    root: Path
    evaluation_json: Path
    markdown: Path
    html: Path
    predictions: list[Path]
    trajectories: list[Path]
    figures: list[Path]
    markdown_text: str  # image links relative to root
    markdown_embedded: str  # images as data URIs (for Dagster metadata)


def _write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o644)  # readable by the webserver and other users, like any report
    return path


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    return _write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def write_predictions(reports_dir: Path, results: EvaluationResults) -> tuple[list[Path], list[Path]]:
    """predictions/<benchmark>/<predictor>.jsonl for every run; trajectories/... when predictions carry text or steps."""
    preds, trajs = [], []
    for bench, runs in results.runs.items():
        for label, run in runs.items():
            rows, traj_rows = [], []
            for q, p in zip(run.questions, run.predictions):
                row = {
                    "nct_id": q.nct_id,
                    "endpoint_key": q.endpoint_key,
                    "question_index": q.question_index,
                    "probabilities": [float(x) for x in p.probabilities],
                    "parsed": bool(p.parsed),
                }
                rows.append(row)
                if p.trajectory is not None or p.text is not None:
                    traj_rows.append({**row, "text": p.text, "trajectory": p.trajectory})
            preds.append(_write_jsonl(reports_dir / "predictions" / safe_name(bench) / f"{safe_name(label)}.jsonl", rows))
            if traj_rows:
                trajs.append(
                    _write_jsonl(reports_dir / "trajectories" / safe_name(bench) / f"{safe_name(label)}.jsonl", traj_rows)
                )
    return preds, trajs


# ---- markdown / html ----------------------------------------------------------------------------------------------



def _fmt(value: float | None, interval: list[float] | None = None) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{value:.3f} {fmt_interval(interval)}" if interval is not None else f"{value:.3f}"


def summary_table(runs: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the overall figures of one benchmark's predictors (scores dicts)."""
    header = ["predictor", "weighted accuracy", "macro-F1", "cross-entropy", "AUC 2-way explicit",
              "trial-balanced w. acc.", "questions", "unparsed"]
    rows = []
    for label, s in runs.items():
        rows.append(
            [
                label,
                *(_fmt(s["overall"][m], s["intervals"][m]) for m in METRICS),
                _fmt(s.get("auc_2way_explicit"), s.get("auc_2way_explicit_interval")),
                _fmt((s.get("trial_balanced") or {}).get("weighted_accuracy"),
                     (s.get("trial_balanced_intervals") or {}).get("weighted_accuracy")),
                str(s["n_questions"]),
                str(s["n_unparsed"]),
            ]
        )
    return header, rows


def category_table(runs: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = ["predictor", "category", "questions", "weighted accuracy", "macro-F1", "cross-entropy", "AUC"]
    rows = []
    for label, s in runs.items():
        for cat, c in s["categories"].items():
            rows.append(
                [
                    label,
                    cat,
                    str(c["n_questions"]),
                    *(_fmt(c[m], c["intervals"][m]) for m in METRICS),
                    _fmt(c.get("auc"), c.get("auc_interval")) if "auc" in c else "",
                ]
            )
    return header, rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(lines)


def find_trajectory_files(reports_dir: Path) -> list[Path]:
    """Every JSON Lines file under reports/ whose path mentions `trajectories` (ours and any written by LLM runs)."""
    if not reports_dir.exists():
        return []
    return sorted(
        p for p in reports_dir.rglob("*.jsonl") if "trajectories" in str(p.relative_to(reports_dir)) and p.is_file()
    )


def _clip(text: Any, limit: int = TRAJECTORY_CHARS) -> str:
    """One line: whitespace collapsed (model output is often mostly blank lines), cut at `limit` characters (the
    trajectory JSONL, linked next to it, holds the full text)."""
    text = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False, default=str)
    text, raw = " ".join(text.split()), text
    if raw and not text:
        return f"(whitespace only: {len(raw)} characters)"
    return text if len(text) <= limit else text[:limit].rstrip() + f" … (+{len(text) - limit} characters)"


def trajectory_blocks(path: Path, reports_dir: Path, sample: int = TRAJECTORY_SAMPLE) -> list[tuple]:
    """Blocks showing the first `sample` records of a trajectory file step by step."""
    blocks: list[tuple] = [("h3", str(path.relative_to(reports_dir)))]
    shown = 0
    with open(path, encoding="utf-8") as fh:
        n_lines = 0
        for line in fh:
            n_lines += 1
            if shown >= sample or not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                blocks.append(("p", f"line {n_lines}: not valid JSON"))
                continue
            shown += 1
            head = f"{rec.get('nct_id')} / question {rec.get('question_index')}: probabilities {rec.get('probabilities')}"
            blocks.append(("p", head))
            steps = rec.get("trajectory") or []
            if not isinstance(steps, list):
                steps = [steps]
            if rows := trajectory_rows(steps):  # an imagination pathway: one row per anchor
                blocks.append(("table", TRAJECTORY_HEADER, rows))
                continue
            items = []
            for i, step in enumerate(steps, start=1):
                if isinstance(step, dict):
                    items.append(f"step {i}: " + "; ".join(f"{k}: {_clip(v, 160)}" for k, v in step.items()))
                else:
                    items.append(f"step {i}: {_clip(step)}")
            if rec.get("text"):
                items.append(f"final output: {_clip(rec['text'])}")
            blocks.append(("ol", items or ["(no steps recorded)"]))
    rel = path.relative_to(reports_dir).as_posix()
    blocks[1:1] = [("p", f"{n_lines} records; the first {shown} shown step by step, whitespace collapsed and cut "
                         f"short; every record in full:"), ("a", rel, rel)]
    return blocks


def report_blocks(results: EvaluationResults, figures: dict[str, dict[str, Path]], reports_dir: Path) -> list[tuple]:
    """The report as a list of blocks (heading, paragraph, table, image, list), rendered to markdown and HTML."""
    blocks: list[tuple] = [("h1", "DeepImagine evaluation report")]
    blocks.append(
        (
            "p",
            "Official CT Open metric: per category ({2,3}-way, implicit/explicit) class-balanced accuracy, macro-F1 "
            "and cross-entropy of the true option (3-way explicit collapsed to significant / not significant for "
            "accuracy and F1); overall = mean over the categories present. Brackets: bootstrap intervals "
            "resampling trials. Majority scores 0.50 weighted accuracy by construction. Trial-balanced weighted "
            "accuracy (not part of the official metric): each trial's questions weigh 1 in all, so trials with many "
            "questions do not dominate.",
        )
    )
    if results.notes:
        blocks.append(("h2", "Nothing evaluated" if not results.runs else "Notes"))
        blocks.append(("ul", list(results.notes)))
        if not results.runs:
            return blocks
    train_rows = [[k, *(str(v[c]) for c in ("n_questions", "n_trials", "n_dropped_benchmark_trials"))] for k, v in results.training.items()]
    blocks.append(("h2", "Reference predictor"))
    blocks.append(("p", reference_paragraph()))
    blocks.append(("h2", "Training data"))
    blocks.append(("table", ["setting", "questions", "trials", "dropped (trial in a benchmark)"], train_rows))
    for bench, runs in results.runs.items():
        scores = {label: run.scores for label, run in runs.items()}
        any_run = next(iter(runs.values()))
        counts = {c: v["n_questions"] for c, v in any_run.scores["categories"].items()}
        blocks.append(("h2", f"Benchmark: {bench}"))
        blocks.append(("p", f"{any_run.scores['n_questions']} questions over {any_run.scores['n_trials']} trials; per category: {counts}."))
        blocks.append(("table", *summary_table(scores)))
        for label, s in scores.items():
            note = (s.get("predictor") or {}).get("note")
            if note:
                blocks.append(("p", f"Note on {label}: {note}"))
        blocks.append(("h3", "Per category"))
        blocks.append(("table", *category_table(scores)))
        figs = figures.get(bench, {})
        for key in ("categories", "reliability"):
            if key in figs:
                blocks.append(("img", figs[key], f"{bench} {key}"))
        blocks.append(("h3", "Confusion matrices"))
        for label in runs:
            if f"confusion:{label}" in figs:
                blocks.append(("img", figs[f"confusion:{label}"], f"{bench} {label} confusion"))
    blocks.append(("h2", "Predictor settings"))
    settings = {}
    for runs in results.runs.values():
        for label, run in runs.items():
            settings.setdefault(label, run.scores.get("predictor"))
    blocks.append(("ul", [f"{label}: {json.dumps(desc, default=str) if desc else '(no description)'}" for label, desc in settings.items()]))
    traj_files = find_trajectory_files(reports_dir)
    blocks.append(("h2", "LLM trajectories"))
    if not traj_files:
        blocks.append(("p", "No predictor in this run recorded model output or trajectories."))
    for path in traj_files:
        blocks.extend(trajectory_blocks(path, reports_dir))
    return blocks


def reference_paragraph() -> str:
    """Which predictor is the reference, and where the selection that chose it is stored."""
    from deepimagine_core.evaluation.selection import REFERENCE

    return (f"`{REFERENCE.name}` ({REFERENCE.label}) is the project's reference predictor. It was chosen by "
            "forward-chaining cross-validation on historical questions grouped by trial and ordered in time, never on "
            "a CT Open file; the candidates and their CV scores are in docs/results/whole_corpus/summary.md "
            "(command `python -m bench.predict_corpus`, README).")


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_markdown(blocks: list[tuple], reports_dir: Path, embed_images: bool = False) -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + block[1])
        elif kind == "p":
            out.append(block[1])
        elif kind == "table":
            out.append(markdown_table(block[1], block[2]))
        elif kind == "img":
            src = _data_uri(block[1]) if embed_images else block[1].relative_to(reports_dir).as_posix()
            out.append(f"![{block[2]}]({src})")
        elif kind == "a":
            out.append(f"[{block[2]}]({block[1]})")
        elif kind == "ol":
            out.append("\n".join(f"{i}. {item}" for i, item in enumerate(block[1], start=1)))
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in block[1]))
    return "\n\n".join(out) + "\n"


def render_html(blocks: list[tuple], reports_dir: Path) -> str:
    esc = html.escape
    body = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{esc(block[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{esc(block[1])}</p>")
        elif kind == "table":
            head = "".join(f"<th>{esc(h)}</th>" for h in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in block[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img":
            body.append(f'<img src="{esc(block[1].relative_to(reports_dir).as_posix())}" alt="{esc(block[2])}">')
        elif kind == "a":
            body.append(f'<p><a href="{esc(block[1])}">{esc(block[2])}</a></p>')
        elif kind in ("ol", "ul"):
            body.append(f"<{kind}>" + "".join(f"<li>{esc(i)}</li>" for i in block[1]) + f"</{kind}>")
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}img{max-width:100%;display:block;margin:1em 0}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>DeepImagine evaluation</title><style>{style}</style>"
        f"</head><body>{''.join(body)}</body></html>\n"
    )


def write_report(reports_dir: str | Path, results: EvaluationResults) -> ReportFiles:
    """Write evaluation.json, predictions, trajectories, figures, report.md and report.html under `reports_dir`."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    evaluation_json = _write_text(reports_dir / "evaluation.json", json.dumps(results.as_json(), indent=2) + "\n")
    preds, trajs = write_predictions(reports_dir, results)
    figures = write_figures(reports_dir, results)
    blocks = report_blocks(results, figures, reports_dir)
    markdown_text = render_markdown(blocks, reports_dir)
    return ReportFiles(
        root=reports_dir,
        evaluation_json=evaluation_json,
        markdown=_write_text(reports_dir / "report.md", markdown_text),
        html=_write_text(reports_dir / "report.html", render_html(blocks, reports_dir)),
        predictions=preds,
        trajectories=trajs,
        figures=[p for figs in figures.values() for p in figs.values()],
        markdown_text=markdown_text,
        markdown_embedded=render_markdown(blocks, reports_dir, embed_images=True),
    )

