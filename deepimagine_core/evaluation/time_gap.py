"""How a predictor's figures change with the years between the trials it learns from and the trials it is asked about.

The whole-corpus history ends in March 2016 (results first posted); CT Open Winter 2025 asks about trials posted
about nine years later, while the selection's forward folds put at most ~2 years between training and validation.
On historical questions only (no CT Open file), `gap_curve` trains a predictor on trial windows of equal width and
an equal number of trials, placed `gap` years before a fixed validation block (`forward`) or after it (`backward`,
a check that the loss comes from the distance and not from older records being worse), and scores the block each
time; `gap_trend` fits a line to a figure against the gap. `figures_by_period` scores one fitted predictor on newer
trials grouped by period (e.g. API v2 records posted years after the history ends).

    rows = gap_curve(questions, validation_ids, lambda: make_predictor("logreg"), gaps=(0, 1, 2), width=2.0,
                     n_trials=300, seeds=(0, 1))
    trend = gap_trend(rows, "trial_balanced")   # {"slope": per year, "intercept": at gap 0, "r": ..., "n": ...}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from deepimagine_core.evaluation.scoring import evaluate
from deepimagine_core.evaluation.weighting import DAYS_PER_YEAR, date_years
from deepimagine_core.questions import Question

DIRECTIONS = ("forward", "backward")
FIGURES = ("weighted_accuracy", "trial_balanced", "auc_2way_explicit")


def trial_years(questions: Iterable[Question]) -> dict[str, float]:
    """nct_id -> results-first-posted date in fractional years (trials without a readable date are left out)."""
    years: dict[str, float] = {}
    for q in questions:
        y = date_years(q.extra.get("results_first_posted"))
        if y is not None:
            years.setdefault(q.nct_id, y)
    return years


def iso(years: float) -> str:
    """Fractional years (as `trial_years` gives them) back to an ISO date."""
    return dt.date.fromordinal(round(years * DAYS_PER_YEAR)).isoformat()


def gap_window(validation_years: Sequence[float], gap: float, width: float, direction: str) -> tuple[float, float]:
    """[start, end) of the training window `gap` years before the validation block's first trial (`forward`) or
    after its last one (`backward`: (end of block + gap, + width])."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if gap < 0 or width <= 0:
        raise ValueError(f"gap must be >= 0 and width > 0, got gap={gap}, width={width}")
    if direction == "forward":
        end = min(validation_years) - gap
        return end - width, end
    start = max(validation_years) + gap
    return start, start + width


def _figures(result: dict[str, Any]) -> dict[str, float | None]:
    """The `FIGURES` of one `scoring.evaluate` result (an AUC that cannot be computed is None)."""
    auc = result.get("auc_2way_explicit")
    return {"weighted_accuracy": result["overall"]["weighted_accuracy"],
            "trial_balanced": result["trial_balanced"]["weighted_accuracy"],
            "auc_2way_explicit": None if auc is None or not np.isfinite(auc) else float(auc)}


def gap_curve(
    questions: Sequence[Question],
    validation_ids: Iterable[str],
    make_predictor: Callable[[], Any],
    *,
    gaps: Sequence[float] = (0, 1, 2, 3, 4),
    width: float = 2.0,
    n_trials: int = 300,
    seeds: Sequence[int] = (0, 1, 2),
    direction: str = "forward",
    log: Callable[[str], None] = lambda _m: None,
) -> list[dict[str, Any]]:
    """One row per (gap, seed): a fresh predictor fitted on the questions of `n_trials` trials drawn at random (seeded)
    from the training window at that gap, scored on the questions of `validation_ids`. A window holding fewer than
    `n_trials` dated trials gives one row per seed with `skipped` saying so (no figures), so every scored row learns
    from the same number of trials. Validation trials are never in a training window."""
    validation_ids = set(validation_ids)
    years = trial_years(questions)
    validation = [q for q in questions if q.nct_id in validation_ids]
    val_years = [years[t] for t in validation_ids if t in years]
    if not validation or not val_years:
        raise ValueError("gap_curve: no dated validation questions")
    by_trial: dict[str, list[Question]] = {}
    for q in questions:
        if q.nct_id not in validation_ids:
            by_trial.setdefault(q.nct_id, []).append(q)
    rows = []
    for gap in gaps:
        lo, hi = gap_window(val_years, gap, width, direction)
        pool = sorted(t for t in by_trial if t in years and
                      (lo <= years[t] < hi if direction == "forward" else lo < years[t] <= hi))
        for seed in seeds:
            row: dict[str, Any] = {"direction": direction, "gap": gap, "seed": seed, "window": [iso(lo), iso(hi)],
                                   "pool_trials": len(pool)}
            if len(pool) < n_trials:
                row["skipped"] = f"only {len(pool)} trials in the window, {n_trials} needed"
                rows.append(row)
                continue
            chosen = np.random.default_rng(seed).choice(len(pool), size=n_trials, replace=False)
            train = [q for i in sorted(chosen) for q in by_trial[pool[i]]]
            predictor = make_predictor()
            predictor.fit(train)
            row.update(n_trials=n_trials, n_questions=len(train),
                       **_figures(evaluate(validation, predictor.predict(validation), n_bootstrap=0)))
            log(f"time gap {direction} {gap}y seed {seed}: trained on {len(train)} questions {row['window']}, "
                f"trial-balanced {row['trial_balanced']:.3f}")
            rows.append(row)
    return rows


def gap_trend(rows: Sequence[dict[str, Any]], figure: str = "trial_balanced") -> dict[str, Any]:
    """Least-squares line of `figure` against the gap over the scored rows: slope (per year), intercept (at gap 0),
    Pearson r, number of rows, and the mean figure at each gap."""
    if figure not in FIGURES:
        raise ValueError(f"figure must be one of {FIGURES}, got {figure!r}")
    pts = [(float(r["gap"]), float(r[figure])) for r in rows if r.get(figure) is not None]
    means: dict[float, list[float]] = {}
    for g, v in pts:
        means.setdefault(g, []).append(v)
    out: dict[str, Any] = {"figure": figure, "n": len(pts),
                           "by_gap": {g: float(np.mean(v)) for g, v in sorted(means.items())}}
    if len(means) < 2:
        out.update(slope=None, intercept=None, r=None)
        return out
    x, y = np.array(pts).T
    slope, intercept = np.polyfit(x, y, 1)
    r = float(np.corrcoef(x, y)[0, 1]) if np.std(y) > 0 else 0.0
    out.update(slope=float(slope), intercept=float(intercept), r=r)
    return out


def figures_by_period(predictor: Any, questions: Sequence[Question], periods: Sequence[tuple[str, str]],
                      n_bootstrap: int = 1000) -> list[dict[str, Any]]:
    """Figures (with trial-bootstrap intervals) of a fitted predictor on the questions whose trials were posted in
    each [start, end) period (ISO dates); a period without questions gets a row with n_questions 0."""
    years = trial_years(questions)
    rows = []
    for start, end in periods:
        lo, hi = date_years(start), date_years(end)
        qs = [q for q in questions if q.nct_id in years and lo <= years[q.nct_id] < hi]
        row: dict[str, Any] = {"period": [start, end], "n_questions": len(qs), "n_trials": len({q.nct_id for q in qs})}
        if qs:
            result = evaluate(qs, predictor.predict(qs), n_bootstrap=n_bootstrap)
            row.update(_figures(result), weighted_accuracy_interval=result["intervals"]["weighted_accuracy"],
                       categories={c: round(v["weighted_accuracy"], 4) for c, v in result["categories"].items()})
        rows.append(row)
    return rows
