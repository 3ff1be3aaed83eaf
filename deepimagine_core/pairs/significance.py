"""Is a posted statistical analysis significant, and is it a superiority test at all?

Significance (`significance`): from the p-value, relation-aware at level ``alpha`` — "<0.05" is significant, "=0.05"
and ">0.05" are not, "<0.1" or "<=0.05" decide nothing; without a p-value, from a two-sided CI of level >= 1 − α that
excludes the null (1 for ratios, 0 for differences), or one of level <= 1 − α that contains it. When the parameter
type does not tell the null (or a "ratio" interval reaches below zero), the CI still decides when it says the same for
a null of 0 and of 1 (both inside, or both outside), unless the parameter is a percentage.

Non-inferiority and equivalence analyses answer another question than superiority: every spelling of both formats
(``NON_INFERIORITY``, ``EQUIVALENCE``, ``NON_INFERIORITY_OR_EQUIVALENCE``, ``NON_INFERIORITY_OR_EQUIVALENCE_LEGACY``,
the legacy "Yes" and any free-text variant such as "Non-Inferiority or Equivalence") is `is_superiority_test` False.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["is_superiority_test", "significance"]

_RATIO = re.compile(r"ratio|\bhr\b|\bor\b|\brr\b|\bgmr\b|fold", re.IGNORECASE)
_LOG = re.compile(r"\blog\b", re.IGNORECASE)
_DIFFERENCE = re.compile(r"differ|\bdiff\b|\bmean\b|median|slope|change|effect size|\brd\b|\bmd\b|\bdelta\b|"
                         r"risk reduction", re.IGNORECASE)
_HAZARD = re.compile(r"hazard|\bcox\b", re.IGNORECASE)
_PERCENT = re.compile(r"%|percent", re.IGNORECASE)
_NOT_SUPERIORITY = re.compile(r"NON[\s_-]*INFERIORITY|EQUIVALEN", re.IGNORECASE)


def is_superiority_test(non_inferiority_type: str | None) -> bool:
    """False for every non-inferiority or equivalence spelling; True for superiority, "other" and unstated."""
    return not _NOT_SUPERIORITY.search(non_inferiority_type or "")


def _p_significant(p: float, relation: str | None, alpha: float) -> bool | None:
    relation = relation or "="
    if relation == "=":
        return p < alpha
    if relation == "<":
        return True if p <= alpha else None
    if relation == "<=":
        return True if p < alpha else None
    if relation in (">", ">="):
        return False if p >= alpha else None
    return None


def _null_value(param_type: str | None) -> float | None:
    text = (param_type or "").replace("_", " ")
    if _LOG.search(text):
        return 0.0
    if _RATIO.search(text) or _HAZARD.search(text):
        return 100.0 if _PERCENT.search(text) else 1.0  # a ratio in percent (e.g. a GMR of 85-110 %) has null 100
    if _DIFFERENCE.search(text):
        return 0.0
    return None


def significance(analysis: Mapping[str, Any], alpha: float = 0.05) -> tuple[bool | None, str]:
    """Whether an analysis is statistically significant at ``alpha``, and from what (``"p-value"``, ``"CI"``), or
    None and why not."""
    p = analysis.get("p_value")
    if p is not None:
        sig = _p_significant(float(p), analysis.get("p_value_relation"), alpha)
        if sig is None:
            return None, "p-value bound inconclusive at alpha"
        return sig, "p-value"
    lo, hi = analysis.get("ci_lower"), analysis.get("ci_upper")
    if lo is None or hi is None:
        return None, "no p-value and no two-sided CI"
    if (analysis.get("ci_n_sides") or "TWO_SIDED") != "TWO_SIDED":
        return None, "one-sided CI without p-value"
    param_type = analysis.get("param_type") or ""
    null = _null_value(param_type)
    if null == 1.0 and lo <= 0:
        null = None  # a "ratio" whose interval reaches below zero is no ratio: its null is not known
    if null is None:
        excludes0, excludes1 = lo > 0 or hi < 0, lo > 1 or hi < 1
        if excludes0 != excludes1 or _PERCENT.search(param_type):
            return None, "CI without a known null value (parameter type)"
        excludes = excludes0  # the same whether the null is 0 (difference) or 1 (ratio)
    else:
        excludes = lo > null or hi < null
    pct = analysis.get("ci_pct")
    if pct is None:
        return None, "CI level not stated"
    level = 100.0 * (1.0 - alpha)
    if excludes and pct >= level - 1e-9:
        return True, "CI"
    if not excludes and pct <= level + 1e-9:
        return False, "CI"
    return None, "CI level inconclusive at alpha"
