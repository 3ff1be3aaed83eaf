"""The living benchmark's time series: at each refresh, every predictor snapshot scored on the questions posted after
its own training cutoff (`prospective.py`), one row per (refresh, predictor, category) in table `benchmark_history`,
and a plot of it.

    outcome = update_history(store, refresh="run-id-of-the-refresh", refresh_time=datetime.now(timezone.utc))

Snapshots are scored by default; callers add other contenders (a cutoff and a fitted predictor), e.g. the fine-tuned
LLM predictors, which the Dagster layer lends when asked (they need the model).

Re-running the same refresh replaces that refresh's rows (idempotent); a new refresh appends. Categories are CT Open's
four plus `overall`; figures are CT Open's official metric with trial-bootstrap intervals (`scoring.evaluate`).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from deepimagine_core.evaluation.base import Predictor
from deepimagine_core.evaluation.prospective import load_snapshot, questions_after, snapshot_cards
from deepimagine_core.evaluation.run import sample_questions
from deepimagine_core.evaluation.scoring import evaluate
from deepimagine_core.questions import CATEGORIES
from deepimagine_core.store import Store
from deepimagine_core.tables import BENCHMARK_HISTORY_TABLE, PROSPECTIVE_QUESTIONS_TABLE

OVERALL = "overall"
HISTORY_FIGURE = "benchmark_history.png"

BENCHMARK_HISTORY = pa.schema(
    [
        ("refresh", pa.string()),  # what identifies the refresh (the run that last wrote the trial tables)
        ("refresh_date", pa.timestamp("s", tz="UTC")),
        ("predictor", pa.string()),
        ("cutoff", pa.date32()),  # the predictor's training cutoff
        ("category", pa.string()),  # one of CT Open's four, or `overall`
        ("n", pa.int64()),  # questions scored (0: nothing posted after the cutoff yet; the figures are null)
        ("n_trials", pa.int64()),
        ("weighted_accuracy", pa.float64()),
        ("macro_f1", pa.float64()),
        ("cross_entropy", pa.float64()),
        ("ci_low", pa.float64()),  # bootstrap interval of the weighted accuracy (over trials)
        ("ci_high", pa.float64()),
    ],
    metadata={"doc": "Each refresh's prospective score of every predictor snapshot, per CT Open category."},
)


@dataclass
class HistoryOutcome:
    table: pa.Table  # the whole history
    rows: list[dict[str, Any]]  # this refresh's rows
    figure: Path | None
    markdown: str  # the latest refresh's figures and the plot (embedded PNG)


def history_rows(refresh: str, refresh_time: dt.datetime, predictor: str, cutoff: dt.date | None,
                 scores: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per category present and one `overall` row; `scores=None` (nothing to score) gives one n=0 row."""
    base = {"refresh": refresh, "refresh_date": refresh_time, "predictor": predictor, "cutoff": cutoff}
    if scores is None:
        return [{**base, "category": OVERALL, "n": 0, "n_trials": 0}]
    rows = [{**base, "category": OVERALL, "n": scores["n_questions"], "n_trials": scores["n_trials"],
             **scores["overall"], **_interval(scores["intervals"])}]
    for category in CATEGORIES:
        entry = scores["categories"].get(category)
        if entry:
            figures = {m: entry[m] for m in ("weighted_accuracy", "macro_f1", "cross_entropy")}
            rows.append({**base, "category": category, "n": entry["n_questions"], "n_trials": None, **figures,
                         **_interval(entry["intervals"])})
    return rows


def _interval(intervals: dict[str, Any]) -> dict[str, float | None]:
    ci = intervals.get("weighted_accuracy")
    return {"ci_low": ci[0] if ci else None, "ci_high": ci[1] if ci else None}


@dataclass
class Contender:
    """A predictor to score prospectively: its training cutoff and how to get it ready (fitted)."""

    cutoff: dt.date | None
    ready: Callable[[], Predictor]
    max_questions: int = 0  # costly predictors (LLMs) score a seeded sample of at most this many; 0 = all


def snapshot_contenders(store: Store) -> dict[str, Contender]:
    """Every saved predictor snapshot (prospective.py), loaded when scored."""
    return {name: Contender(card.cutoff_date, functools.partial(load_snapshot, store, name))
            for name, card in snapshot_cards(store).items()}


def score_contenders(store: Store, contenders: dict[str, Contender], refresh: str, refresh_time: dt.datetime, *,
                     n_bootstrap: int = 1000, seed: int = 0, alpha: float = 0.05,
                     log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Every contender on the prospective questions of its own cutoff: this refresh's history rows."""
    table = store.read_table(PROSPECTIVE_QUESTIONS_TABLE) if store.has_table(PROSPECTIVE_QUESTIONS_TABLE) else None
    rows = []
    for name, contender in contenders.items():
        questions = questions_after(table, contender.cutoff) if table is not None else []
        if contender.max_questions and len(questions) > contender.max_questions:
            questions = sample_questions(questions, contender.max_questions, seed)
        scores = None
        if questions:
            predictions = contender.ready().predict(questions)
            scores = evaluate(questions, predictions, n_bootstrap=n_bootstrap, seed=seed, alpha=alpha)
        log(f"{name} (cutoff {contender.cutoff}): {len(questions)} prospective questions"
            + (f", weighted accuracy {scores['overall']['weighted_accuracy']:.3f}" if scores else ""))
        rows += history_rows(refresh, refresh_time, name, contender.cutoff, scores)
    return rows


def append_history(store: Store, rows: list[dict[str, Any]], refresh: str) -> pa.Table:
    """The history with this refresh's rows replaced by `rows` (a re-run of one refresh never adds a second copy)."""
    old = store.read_table(BENCHMARK_HISTORY_TABLE) if store.has_table(BENCHMARK_HISTORY_TABLE) else None
    old = BENCHMARK_HISTORY.empty_table() if old is None else old.select(BENCHMARK_HISTORY.names).cast(BENCHMARK_HISTORY)
    kept = old.filter(pc.not_equal(old.column("refresh"), refresh))
    table = pa.concat_tables([kept, pa.Table.from_pylist(rows, schema=BENCHMARK_HISTORY)])
    table = table.sort_by([("refresh_date", "ascending"), ("predictor", "ascending"), ("category", "ascending")])
    store.write_table(BENCHMARK_HISTORY_TABLE, table, BENCHMARK_HISTORY)
    return table


def plot_history(table: pa.Table, path: Path) -> Path | None:
    """Weighted accuracy (with its bootstrap interval) at each refresh, one panel per category, one line per
    predictor (refreshes evenly spaced, labelled with their date)."""
    scored = [r for r in table.to_pylist() if r["n"] and r["weighted_accuracy"] is not None]
    if not scored:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    categories = [c for c in (OVERALL, *CATEGORIES) if any(r["category"] == c for r in scored)]
    refreshes = sorted({r["refresh_date"] for r in scored})
    predictors = sorted({r["predictor"] for r in scored})
    fig, axes = plt.subplots(1, len(categories), figsize=(4.2 * len(categories), 3.6), squeeze=False, sharey=True)
    for ax, category in zip(axes[0], categories):
        for k, predictor in enumerate(predictors):
            points = [r for r in scored if r["category"] == category and r["predictor"] == predictor]
            if not points:
                continue
            x = [refreshes.index(r["refresh_date"]) + (k - (len(predictors) - 1) / 2) * 0.08 for r in points]
            y = [r["weighted_accuracy"] for r in points]
            low = [v - (r["ci_low"] if r["ci_low"] is not None else v) for r, v in zip(points, y)]
            high = [(r["ci_high"] if r["ci_high"] is not None else v) - v for r, v in zip(points, y)]
            ax.errorbar(x, y, yerr=[low, high], marker="o", markersize=4, capsize=2, linewidth=1.2, label=predictor)
        ax.set_xticks(range(len(refreshes)), [d.strftime("%Y-%m-%d\n%H:%M") for d in refreshes], fontsize=7)
        ax.set_xlim(-0.5, len(refreshes) - 0.5)
        ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(f"{category} (n = {points_n(scored, category)})", fontsize=9)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("weighted accuracy (prospective)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle("Prospective score at each refresh (questions posted after each predictor's cutoff)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def points_n(rows: list[dict[str, Any]], category: str) -> int:
    """Questions in a category at the latest refresh (the largest n among its predictors)."""
    latest = max(r["refresh_date"] for r in rows)
    return max((r["n"] for r in rows if r["category"] == category and r["refresh_date"] == latest), default=0)


def history_markdown(rows: list[dict[str, Any]], figure: Path | None) -> str:
    """This refresh's figures as a markdown table, then the plot embedded as a data URI (visible in the Dagster UI)."""
    def fmt(v):
        return "—" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| predictor | cutoff | category | n | weighted accuracy | CI | macro-F1 | cross-entropy |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ci = f"[{fmt(r.get('ci_low'))}, {fmt(r.get('ci_high'))}]" if r.get("ci_low") is not None else "—"
        lines.append(f"| {r['predictor']} | {r['cutoff']} | {r['category']} | {r['n']} | "
                     f"{fmt(r.get('weighted_accuracy'))} | {ci} | {fmt(r.get('macro_f1'))} | "
                     f"{fmt(r.get('cross_entropy'))} |")
    text = "\n".join(lines) if rows else "_(no predictor snapshot yet: materialise `predictor_snapshots`)_"
    if figure is not None:
        data = base64.b64encode(figure.read_bytes()).decode()
        text += f"\n\n![benchmark history](data:image/png;base64,{data})"
    return text


def update_history(store: Store, refresh: str, refresh_time: dt.datetime, *,
                   extra: dict[str, Contender] | None = None, n_bootstrap: int = 1000, seed: int = 0,
                   alpha: float = 0.05, log: Callable[[str], None] = print) -> HistoryOutcome:
    """Score every snapshot (and any `extra` contenders, e.g. fine-tuned LLM predictors) prospectively, record this
    refresh in `benchmark_history`, redraw the plot."""
    contenders = {**snapshot_contenders(store), **(extra or {})}
    rows = score_contenders(store, contenders, refresh, refresh_time, n_bootstrap=n_bootstrap, seed=seed, alpha=alpha,
                            log=log)
    table = append_history(store, rows, refresh)
    figure = plot_history(table, store.path("reports", "history", HISTORY_FIGURE))
    log(f"benchmark history: {table.num_rows} rows over {len(set(table.column('refresh').to_pylist()))} refreshes")
    return HistoryOutcome(table, rows, figure, history_markdown(rows, figure))
