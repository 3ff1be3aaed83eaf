"""Training-question weights against the time shift between history (2008–2016 results) and new trials.

Three kinds, all multiplied into the class-balanced weights of a pipeline model (`models.PipelinePredictor`):

- **Recency** (`recency_weights`, option `half_life` of `logreg`, `random_forest`, `hgb`): a training question weighs
  0.5 ** (age / half_life), its age being the years between its trial's `results_first_posted` and the newest such
  date in the training set (undated trials count as the newest). Forward CV validates on later blocks, so it measures
  exactly whether leaning on newer trials helps.
- **Trial balance** (`trial_weights`, option `trial_balance` of `logreg`, `random_forest`, `hgb`): a question of a
  trial with n training questions weighs n ** -trial_balance (0: every question alike; 1: every trial alike). Half the
  historical questions come from the 11% of trials with more than 20 questions each (up to 361), while a CT Open file
  asks about 2 per trial: unweighted, a few large trials dominate what the model learns.
- **Covariate-shift importance** (`importance_weights`, `domain_weights`; adaptation method `importance` of
  `<name>_adapted`, `shift.AdaptedPredictor`): a domain classifier — logistic regression on the structured "full"
  features, source (training) questions against the unlabelled target questions, classes balanced — gives
  P(target | x); the weight of a training question is the density-ratio estimate w = p / (1 − p), clipped to
  `clip` and rescaled to mean 1. Only the target's features are read, never its answers.

Weights are per question; the class balance within each category is restored afterwards (`base.balanced_weights`),
so a reweighted model's 0.5 threshold still sits where the class-balanced metric wants it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence

import numpy as np

from deepimagine_core.evaluation import features
from deepimagine_core.questions import Question

DAYS_PER_YEAR = 365.25
IMPORTANCE_CLIP = (0.1, 10.0)


def date_years(date: object) -> float | None:
    """An ISO date ("2014-03-02", "2014-03", "2014") as fractional years since year 0; None when unreadable."""
    text = str(date or "").strip()
    parts = text.split("-")
    try:
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 else 7
        day = int(parts[2][:2]) if len(parts) > 2 else 1
        ordinal = dt.date(year, month, day).toordinal()
    except (ValueError, IndexError):
        return None
    if year >= 9000:  # the "undated sorts last" placeholder
        return None
    return ordinal / DAYS_PER_YEAR


def recency_weights(questions: Sequence[Question], half_life: float) -> np.ndarray:
    """0.5 ** (years before the newest training trial / half_life) per question (undated: 1)."""
    if half_life <= 0:
        raise ValueError(f"half_life must be positive, got {half_life}")
    years = [date_years(q.extra.get("results_first_posted")) for q in questions]
    known = [y for y in years if y is not None]
    if not known:
        return np.ones(len(questions))
    newest = max(known)
    age = np.array([0.0 if y is None else newest - y for y in years])
    return np.power(0.5, age / half_life)


def trial_weights(questions: Sequence[Question], power: float) -> np.ndarray:
    """n ** -power per question, n being the number of questions of its trial in `questions`; rescaled to mean 1."""
    if power < 0:
        raise ValueError(f"trial_balance must be >= 0, got {power}")
    counts = Counter(q.nct_id for q in questions)
    if not counts:
        return np.ones(0)
    w = np.array([counts[q.nct_id] for q in questions], dtype=float) ** -float(power)
    return w / w.mean()


def importance_weights(X_source, X_target, C: float = 0.1, clip: tuple[float, float] = IMPORTANCE_CLIP,
                       seed: int = 0) -> np.ndarray:
    """Density-ratio weights p(target | x) / p(source | x) of the source rows from a class-balanced logistic domain
    classifier (dense or sparse matrices with the same columns); clipped to `clip`, then rescaled to mean 1."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    n_s, n_t = X_source.shape[0], X_target.shape[0]
    if n_s == 0 or n_t == 0:
        return np.ones(n_s)
    stack = sparse.vstack if sparse.issparse(X_source) or sparse.issparse(X_target) else np.vstack
    X = stack([X_source, X_target])
    d = np.r_[np.zeros(n_s), np.ones(n_t)]
    clf = LogisticRegression(C=C, class_weight="balanced", solver="liblinear", max_iter=1000, random_state=seed)
    clf.fit(X, d)
    p = np.clip(clf.predict_proba(X_source)[:, 1], 1e-6, 1 - 1e-6)
    w = np.clip(p / (1 - p), *clip)
    return w / w.mean()


def domain_weights(source: Sequence[Question], target: Sequence[Question], C: float = 0.1,
                   clip: tuple[float, float] = IMPORTANCE_CLIP) -> np.ndarray:
    """`importance_weights` of the source questions against the target questions, over their structured "full"
    features (`features.structured_dicts`; the vectoriser is fitted on both sets' features, answers unused)."""
    from sklearn.feature_extraction import DictVectorizer

    vectoriser = DictVectorizer()
    vectoriser.fit(features.structured_dicts(source, "full") + features.structured_dicts(target, "full"))
    return importance_weights(vectoriser.transform(features.structured_dicts(source, "full")),
                              vectoriser.transform(features.structured_dicts(target, "full")), C, clip)


def question_with_date(row: dict) -> Question:
    """`Question.from_row(row)` with the row's `results_first_posted` (a date column of the question tables, not part
    of the `extra` JSON) copied into `extra`, where recency weights, the forward folds and the adaptation's time
    holdout read it."""
    q = Question.from_row(row)
    posted = row.get("results_first_posted")
    if posted is not None and not q.extra.get("results_first_posted"):
        q.extra["results_first_posted"] = posted.isoformat() if hasattr(posted, "isoformat") else str(posted)
    return q
