"""Covariate shift between two sets of questions, read from their designs only (never an answer).

A predictor selected by cross-validation on historical questions transfers to a benchmark only as far as the two look
alike. This module says how far they do, per category:

- `feature_rates`: the share of questions carrying each structured feature (`features.structured_features`, string
  values as ``name=value``) and the mean word counts of the text blocks the predictors read;
- `largest_differences`: the features whose shares differ most between a source and a target;
- `domain_auc`: how well a logistic regression on the structured features tells target questions from source ones
  (cross-validated ROC AUC; 0.5 = the two sets look alike, 1.0 = told apart every time).

`covariate_shift` bundles them for a report. The same figures for the historical train split against its later test
split say how much shift the forward-chaining selection already simulates.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from deepimagine_core.evaluation import features
from deepimagine_core.evaluation.report import markdown_table
from deepimagine_core.questions import Question

#: Numeric features that are not presence flags (their share would say nothing).
_CONTINUOUS = frozenset({"log_n_arms", "log_weeks"})
#: Mean word counts reported beside the feature shares, by text block.
TEXT_LENGTHS = {"endpoint_words": features.endpoint_text, "arms_words": lambda q: features.arms_texts([q])[0]}
ALL = "all"


def feature_keys(question: Question) -> list[str]:
    """The question's structured features as presence keys (``name=value`` for strings, ``name`` for flags)."""
    keys = []
    for name, value in features.structured_features(question).items():
        if name in _CONTINUOUS or name == "category":
            continue
        keys.append(f"{name}={value}" if isinstance(value, str) else name)
    return keys


def feature_rates(questions: Sequence[Question]) -> dict[str, dict[str, Any]]:
    """{category (and "all"): {"n": count, "rates": {feature key: share}, "text": {block: mean words}}}."""
    counts: dict[str, Counter] = defaultdict(Counter)
    words: dict[str, Counter] = defaultdict(Counter)
    sizes: Counter = Counter()
    for q in questions:
        keys = feature_keys(q)
        lengths = {name: len(text(q).split()) for name, text in TEXT_LENGTHS.items()}
        for cat in (q.category, ALL):
            sizes[cat] += 1
            counts[cat].update(keys)
            words[cat].update(lengths)
    return {cat: {"n": n, "rates": {k: c / n for k, c in counts[cat].items()},
                  "text": {k: words[cat][k] / n for k in TEXT_LENGTHS}}
            for cat, n in sizes.items()}


def largest_differences(source: dict[str, dict[str, Any]], target: dict[str, dict[str, Any]], top: int = 8
                        ) -> list[dict[str, Any]]:
    """The `top` features per category (categories present in both) whose shares differ most, largest first."""
    rows = []
    for cat in sorted(set(source) & set(target)):
        s, t = source[cat]["rates"], target[cat]["rates"]
        diffs = sorted(((t.get(k, 0.0) - s.get(k, 0.0), k) for k in set(s) | set(t)), key=lambda d: (-abs(d[0]), d[1]))
        rows += [{"category": cat, "feature": k, "source": s.get(k, 0.0), "target": t.get(k, 0.0), "difference": d}
                 for d, k in diffs[:top]]
    return rows


def domain_auc(source: Sequence[Question], target: Sequence[Question], folds: int = 5, seed: int = 0,
               max_source: int = 20000) -> float | None:
    """Cross-validated ROC AUC of a logistic regression telling `target` questions from `source` ones by their
    structured features (balanced classes; `source` subsampled to `max_source`). None when either side is too small
    for `folds` stratified folds."""
    import numpy as np
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    if len(source) < folds or len(target) < folds:
        return None
    rng = np.random.default_rng(seed)
    if len(source) > max_source:
        source = [source[i] for i in sorted(rng.choice(len(source), max_source, replace=False))]
    rows = [dict.fromkeys(feature_keys(q), 1.0) | {"category=" + q.category: 1.0} for q in (*source, *target)]
    x = DictVectorizer().fit_transform(rows)
    y = np.r_[np.zeros(len(source)), np.ones(len(target))]
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(model, x, y, cv=cv, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, scores))


def covariate_shift(source: Sequence[Question], target: Sequence[Question], top: int = 8) -> dict[str, Any]:
    """Domain AUC, per-category sizes and text lengths, and the largest feature-share differences."""
    s, t = feature_rates(source), feature_rates(target)
    return {
        "domain_auc": domain_auc(source, target),
        "categories": {cat: {"source_n": s.get(cat, {}).get("n", 0), "target_n": t[cat]["n"],
                             "source_text": s.get(cat, {}).get("text"), "target_text": t[cat]["text"]}
                       for cat in sorted(t)},
        "largest_differences": largest_differences(s, t, top),
    }


def corpus_shifts(train: Sequence[Question], test: Sequence[Question], benchmarks: dict[str, Sequence[Question]],
                  historical_name: str = "historical_test") -> dict[str, dict[str, Any]]:
    """The shifts a whole-corpus evaluation faces: historical train → its test split (what the forward folds
    simulate), and all historical questions → each benchmark (what the refitted predictors face)."""
    with features.cached():
        shifts = {historical_name: covariate_shift(train, test)} if test else {}
        for name, questions in benchmarks.items():
            shifts[name] = covariate_shift([*train, *test], questions)
    return shifts


def shift_lines(shifts: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown for a report: one table of sizes, text lengths and domain AUC, then the largest differences."""
    if not shifts:
        return []
    lines = ["## Covariate shift (question designs only; no answer is read)", "",
             "How far each benchmark's questions look like the questions the predictors learn from. Domain AUC: a "
             "logistic regression on the structured features telling benchmark questions from historical ones "
             "(5-fold cross-validated; 0.5 = alike). historical_test compares the training split with the later test "
             "split, the kind of shift the forward-chaining selection simulates.", ""]
    rows = []
    for name, s in shifts.items():
        auc = "n/a" if s["domain_auc"] is None else f"{s['domain_auc']:.3f}"
        for cat, c in s["categories"].items():
            st, tt = c["source_text"] or {}, c["target_text"]
            rows.append([name, auc if cat == ALL else "", cat, str(c["source_n"]), str(c["target_n"]),
                         f"{st.get('endpoint_words', 0):.0f} → {tt['endpoint_words']:.0f}",
                         f"{st.get('arms_words', 0):.0f} → {tt['arms_words']:.0f}"])
    lines += [markdown_table(["target", "domain AUC", "category", "source n", "target n", "endpoint words",
                              "arm words"], rows), ""]
    for name, s in shifts.items():
        diff_rows = [[d["category"], f"`{d['feature']}`", f"{d['source']:.3f}", f"{d['target']:.3f}",
                      f"{d['difference']:+.3f}"] for d in s["largest_differences"] if d["category"] != ALL]
        lines += [f"Largest feature-share differences, {name}:", "",
                  markdown_table(["category", "feature", "source share", "target share", "difference"], diff_rows), ""]
    return lines
