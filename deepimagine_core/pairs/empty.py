"""Why a table built from the trial tables is empty, in words a user can act on.

A small source (one condition, one sponsor, a handful of trials) is a normal case: its questions, pairs or traces can
be empty. The assets still succeed, write empty tables with their schema, and put these reasons in their metadata
(and the evaluation report says why it scored nothing), so an empty table is never a silent surprise.
Each function returns {} (or "") when there is nothing to explain.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["why_no_questions", "why_no_natural_pairs", "why_no_approximate_pairs", "why_no_traces"]

APPROXIMATE_FACTORS = ("intervention", "population", "geography", "design")


def why_no_questions(n_questions: int, n_trials: int, skips: Mapping[str, int]) -> str:
    if n_questions:
        return ""
    if not n_trials:
        return "no historical questions: the trial tables are empty"
    top = ", ".join(f"{reason} ({n})" for reason, n in sorted(skips.items(), key=lambda kv: -kv[1])[:3])
    return (f"no historical questions: none of the {n_trials} trials posts a two-group analysis with a p-value or CI "
            f"that a question can be asked about" + (f"; analyses skipped for: {top}" if top else ""))


def why_no_natural_pairs(stats: Mapping[str, int], n_trials: int) -> dict[str, str]:
    """{factor: reason} for `arm` and `outcome` when they have no pair."""
    reasons = {}
    if not stats.get("arm"):
        reasons["arm"] = (f"no arm pairs: none of the {n_trials} trials has two result groups on one outcome")
    if not stats.get("outcome"):
        reasons["outcome"] = (f"no outcome pairs: none of the {n_trials} trials has one group measured on two "
                              "comparable outcomes")
    return reasons


def why_no_approximate_pairs(stats: Mapping[str, int], n_trials: int,
                             factors: tuple[str, ...] = APPROXIMATE_FACTORS) -> dict[str, str]:
    """{factor: reason} for each factor with no approximate pair."""
    reasons = {}
    for factor in factors:
        if stats.get(factor):
            continue
        if n_trials < 2:
            reasons[factor] = f"no approximate pairs: fewer than 2 trials ({n_trials}) to pair"
        elif stats.get(f"{factor}_spanning_dropped"):
            reasons[factor] = (f"no approximate pairs: the {stats[f'{factor}_spanning_dropped']} candidate pairs "
                               "all join a training trial to a test trial (dropped: no leakage across the split)")
        else:
            reasons[factor] = (f"no approximate pairs: no two of the {n_trials} trials are alike in every other "
                               f"factor and differ in {factor} (within the pairing tolerances; more trials find more)")
    return reasons


def why_no_traces(counts: Mapping[str, int], n_new: int) -> str:
    """Why a trace run added nothing (`counts`: `deepimagine_core.llm.traces.PairSelection.counts()`)."""
    if n_new:
        return ""
    if counts.get("pairs_to_trace"):
        return "no new traces: the teacher returned no output for the selected pairs"
    parts = [f"{counts.get(k, 0)} {label}" for k, label in (
        ("pairs_not_train", "not on the training split"), ("pairs_done_before", "already traced"),
        ("pairs_invalid", "unreadable (no observed change)")) if counts.get(k)]
    return "no new traces: no training-split natural pair left to trace" + (f" ({', '.join(parts)})" if parts else "")
