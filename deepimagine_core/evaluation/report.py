"""The evaluation report: every predictor on every benchmark, scored the official way, with intervals and plots.

    results = run_predictors(benchmarks, train, ["majority", "logreg"])
    files = write_report(store.path("reports"), results)

Layout under `reports/` (every file written atomically):
    evaluation.json                         {benchmark: {predictor: {overall, categories, n_questions, intervals, ...}}}
    report.md, report.html                  tables, plots, and a step-by-step sample of LLM trajectories
    figures/<benchmark>/*.png               per-category bars, reliability diagram, confusion matrices
    predictions/<benchmark>/<predictor>.jsonl   {nct_id, endpoint_key, question_index, probabilities, parsed}
    trajectories/<benchmark>/<predictor>.jsonl  predictions that carry model text or trajectories

Predictors train on the historical training questions; CT Open files the user marks as training are a separate
setting, reported under `<predictor>@<setting>`. Training questions of trials that appear in an evaluated CT Open
benchmark are dropped (and counted) so a benchmark trial never leaks into training.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepimagine_core.evaluation.predictors import Prediction, make_predictor
from deepimagine_core.evaluation.scoring import METRICS, evaluate
from deepimagine_core.questions import CATEGORIES, Question
from deepimagine_core.store import atomic_path

HISTORICAL_SETTING = "historical"
TRAJECTORY_SAMPLE = 3  # questions shown step by step per trajectory file


@dataclass
class BenchmarkRun:
    """One predictor on one benchmark: its predictions and official figures."""

    questions: list[Question]
    predictions: list[Prediction]
    scores: dict[str, Any]


@dataclass
class EvaluationResults:
    runs: dict[str, dict[str, BenchmarkRun]] = field(default_factory=dict)  # benchmark -> predictor -> run
    training: dict[str, dict[str, Any]] = field(default_factory=dict)  # setting -> {n_questions, n_dropped, ...}
    notes: list[str] = field(default_factory=list)  # why a part is empty (evaluation.inputs.empty_reasons)

    def as_json(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {b: {p: run.scores for p, run in preds.items()} for b, preds in self.runs.items()}


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@+-]+", "_", name) or "unnamed"


def run_predictors(
    benchmarks: dict[str, list[Question]],
    train: Sequence[Question],
    predictors: Sequence[str],
    *,
    extra_training: dict[str, Sequence[Question]] | None = None,
    predictor_kwargs: dict[str, dict[str, Any]] | None = None,
    exclude_nct_ids: set[str] | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    log: Callable[[str], None] = print,
    question_limits: dict[str, int] | None = None,
) -> EvaluationResults:
    """Fit each predictor on each training setting and score it on every benchmark.

    `question_limits` caps costly predictors (LLMs on a CPU): predictor name -> at most that many questions per
    benchmark, a seeded sample that is the same for every capped predictor; its `n_questions` says how many were scored.

    `train` is the historical training split (setting "historical"); `extra_training` maps further setting names
    (e.g. "ct_open_train") to their questions. Questions whose trial is in `exclude_nct_ids` are dropped from every
    training set. Errors are raised with the predictor's name, never turned into a zero score.
    """
    if not benchmarks or not any(benchmarks.values()):
        raise ValueError("no benchmark questions to evaluate")
    if not predictors:
        raise ValueError("no predictors named")
    exclude = exclude_nct_ids or set()
    settings = {HISTORICAL_SETTING: list(train), **{k: list(v) for k, v in (extra_training or {}).items()}}
    results = EvaluationResults(runs={name: {} for name in benchmarks if benchmarks[name]})
    for setting, questions in settings.items():
        kept = [q for q in questions if q.nct_id not in exclude and q.answer is not None]
        results.training[setting] = {
            "n_questions": len(kept),
            "n_trials": len({q.nct_id for q in kept}),
            "n_dropped_benchmark_trials": sum(1 for q in questions if q.nct_id in exclude),
            "n_dropped_unanswered": sum(1 for q in questions if q.nct_id not in exclude and q.answer is None),
        }
        log(f"training setting {setting!r}: {len(kept)} questions ({results.training[setting]})")
        if not kept:
            raise ValueError(f"training setting {setting!r} has no usable questions")
        for name in predictors:
            label = name if setting == HISTORICAL_SETTING else f"{name}@{setting}"
            started = time.monotonic()
            try:
                predictor = make_predictor(name, **(predictor_kwargs or {}).get(name, {}))
                predictor.fit(kept)
            except Exception as exc:
                raise RuntimeError(f"predictor {label!r} failed to train: {type(exc).__name__}: {exc}") from exc
            log(f"{label}: trained on {len(kept)} questions in {time.monotonic() - started:.1f}s")
            for bench, questions_b in benchmarks.items():
                if not questions_b:
                    continue
                limit = (question_limits or {}).get(name)
                if limit and len(questions_b) > limit:
                    questions_b = sample_questions(questions_b, limit, seed)
                    log(f"{label} on {bench}: scored on a seeded sample of {limit} questions")
                started = time.monotonic()
                try:
                    predictions = predictor.predict(list(questions_b))
                except Exception as exc:
                    raise RuntimeError(f"predictor {label!r} failed on {bench!r}: {type(exc).__name__}: {exc}") from exc
                scores = evaluate(questions_b, predictions, n_bootstrap=n_bootstrap, seed=seed, alpha=alpha)
                scores["training"] = {"setting": setting, **results.training[setting]}
                if callable(getattr(predictor, "describe", None)):  # provenance (model, adapter, parse counts, note)
                    scores["predictor"] = json.loads(json.dumps(predictor.describe(), default=str))
                results.runs[bench][label] = BenchmarkRun(list(questions_b), predictions, scores)
                o = scores["overall"]
                log(
                    f"{label} on {bench}: weighted accuracy {o['weighted_accuracy']:.3f} "
                    f"{_fmt_interval(scores['intervals']['weighted_accuracy'])}, macro-F1 {o['macro_f1']:.3f}, "
                    f"cross-entropy {o['cross_entropy']:.3f}, {scores['n_unparsed']} unparsed "
                    f"({len(questions_b)} questions, {time.monotonic() - started:.1f}s)"
                )
    return results


def sample_questions(questions: Sequence[Question], n: int, seed: int) -> list[Question]:
    """A seeded sample of n questions in their original order (the same sample for the same inputs)."""
    import random

    keep = sorted(random.Random(seed).sample(range(len(questions)), n))
    return [questions[i] for i in keep]


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


def _pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display; safe in Dagster workers and tests)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_png(fig, path: Path) -> Path:
    plt = _pyplot()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=80)
        os.chmod(tmp, 0o644)
    plt.close(fig)
    return path


def plot_categories(runs: dict[str, BenchmarkRun], title: str):
    """Grouped bars: weighted accuracy per category and overall, one bar per predictor, bootstrap interval whiskers."""
    plt = _pyplot()

    groups = [c for c in CATEGORIES if any(c in r.scores["categories"] for r in runs.values())] + ["overall"]
    labels = list(runs)
    width = 0.8 / max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(groups) + 0.3 * len(labels)), 3.8), layout="constrained")
    for i, label in enumerate(labels):
        s = runs[label].scores
        values, lows, highs = [], [], []
        for g in groups:
            entry = s["overall"] if g == "overall" else s["categories"].get(g)
            interval = (s["intervals"] if g == "overall" else (entry or {}).get("intervals", {})).get("weighted_accuracy")
            v = entry["weighted_accuracy"] if entry else np.nan
            values.append(v)
            lows.append(v - interval[0] if interval else 0)
            highs.append(interval[1] - v if interval else 0)
        x = np.arange(len(groups)) + (i - (len(labels) - 1) / 2) * width
        ax.bar(x, values, width, yerr=[lows, highs], capsize=2, label=label)
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_ylim(0, 1)
    ax.set_ylabel("weighted accuracy")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    return fig


def plot_reliability(runs: dict[str, BenchmarkRun], title: str, n_bins: int = 10):
    """Top-label reliability: accuracy of the argmax against its probability, in equal-width bins."""
    plt = _pyplot()

    fig, ax = plt.subplots(figsize=(4.8, 4.2), layout="constrained")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    edges = np.linspace(0, 1, n_bins + 1)
    for label, run in runs.items():
        conf = np.array([max(p.probabilities) for p in run.predictions])
        correct = np.array([int(np.argmax(p.probabilities)) == q.answer for q, p in zip(run.questions, run.predictions)])
        bins = np.clip(np.digitize(conf, edges) - 1, 0, n_bins - 1)
        xs, ys, ns = [], [], []
        for b in range(n_bins):
            mask = bins == b
            if mask.any():
                xs.append(conf[mask].mean())
                ys.append(correct[mask].mean())
                ns.append(mask.sum())
        ax.plot(xs, ys, marker="o", markersize=3, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("probability of the chosen option")
    ax.set_ylabel("fraction correct")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return fig


def plot_confusions(run: BenchmarkRun, title: str):
    """One confusion matrix per category (original options; rows = truth, columns = argmax)."""
    plt = _pyplot()

    cats = list(run.scores["categories"])
    fig, axes = plt.subplots(1, len(cats), figsize=(3.2 * len(cats), 3.2), squeeze=False, layout="constrained")
    for ax, cat in zip(axes[0], cats):
        m = np.array(run.scores["categories"][cat]["confusion"])
        ax.imshow(m, cmap="Blues")
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, str(v), ha="center", va="center", color="black" if v <= m.max() / 2 else "white")
        ax.set_xticks(range(m.shape[1]))
        ax.set_yticks(range(m.shape[0]))
        ax.set_xlabel("predicted option")
        ax.set_ylabel("true option")
        ax.set_title(cat, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def write_figures(reports_dir: Path, results: EvaluationResults) -> dict[str, dict[str, Path]]:
    """{benchmark: {figure key: path}}: `categories`, `reliability` and `confusion:<predictor>`."""
    figures: dict[str, dict[str, Path]] = {}
    for bench, runs in results.runs.items():
        folder = reports_dir / "figures" / safe_name(bench)
        figs = {
            "categories": _save_png(plot_categories(runs, f"{bench}: weighted accuracy per category"), folder / "categories.png"),
            "reliability": _save_png(plot_reliability(runs, f"{bench}: reliability"), folder / "reliability.png"),
        }
        for label, run in runs.items():
            figs[f"confusion:{label}"] = _save_png(
                plot_confusions(run, f"{bench} / {label}"), folder / f"confusion_{safe_name(label)}.png"
            )
        figures[bench] = figs
    return figures


# ---- markdown / html ----------------------------------------------------------------------------------------------


def _fmt_interval(interval: list[float] | None) -> str:
    return f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "[n/a]"


def _fmt(value: float | None, interval: list[float] | None = None) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{value:.3f} {_fmt_interval(interval)}" if interval is not None else f"{value:.3f}"


def summary_table(runs: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the overall figures of one benchmark's predictors (scores dicts)."""
    header = ["predictor", "weighted accuracy", "macro-F1", "cross-entropy", "AUC 2-way explicit", "questions", "unparsed"]
    rows = []
    for label, s in runs.items():
        rows.append(
            [
                label,
                *(_fmt(s["overall"][m], s["intervals"][m]) for m in METRICS),
                _fmt(s.get("auc_2way_explicit"), s.get("auc_2way_explicit_interval")),
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


def _clip(text: Any, limit: int = 600) -> str:
    text = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + f" ... [{len(text) - limit} more characters]"


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
            items = []
            for i, step in enumerate(steps, start=1):
                if isinstance(step, dict):
                    items.append(f"step {i}: " + "; ".join(f"{k}: {_clip(v, 300)}" for k, v in step.items()))
                else:
                    items.append(f"step {i}: {_clip(step)}")
            if rec.get("text"):
                items.append(f"final output: {_clip(rec['text'])}")
            blocks.append(("ol", items or ["(no steps recorded)"]))
    blocks.insert(1, ("p", f"{n_lines} records; the first {shown} shown step by step."))
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
            "resampling trials. Majority scores 0.50 weighted accuracy by construction.",
        )
    )
    if results.notes:
        blocks.append(("h2", "Nothing evaluated" if not results.runs else "Notes"))
        blocks.append(("ul", list(results.notes)))
        if not results.runs:
            return blocks
    train_rows = [[k, *(str(v[c]) for c in ("n_questions", "n_trials", "n_dropped_benchmark_trials"))] for k, v in results.training.items()]
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

