"""Smoothed, out-of-fold target encodings ("priors") of what a question's trial tests and treats.

Keys of a question (from its design only, never from its answer):
- `intervention:`: the intervention types of arm X (explicit questions with matched arms) or of every arm (implicit),
  and drug-name classes read from common nomenclature stems (-mab antibody, -tinib kinase inhibitor, -gliptin,
  -statin, vaccine, insulin, ...);
- `condition:`: the words of the brief title (the condition and population words; this trial's own intervention and
  arm names removed).

A key's prior is the mean, over the training *trials* carrying it, of the trial's mean residual y − P(positive | its
category), shrunk toward 0 with `strength` pseudo-trials: (sum of trial residuals) / (n trials + strength). A
question's features are, per family, the mean and the most extreme prior of its keys. Training questions get
out-of-fold values (their trial's own answers never enter their encoding: trials are split into `n_splits` groups
and each group is encoded from the others), new questions the values from all training trials. The encoding is
kept only if time-ordered cross-validation says so (`selection`; candidate "... + priors").

CT Open records carry no conditions list, phase or enrollment, so those are not features here: only what a
benchmark question also has (title, arms, interventions, endpoint) is.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from deepimagine_core.evaluation import features
from deepimagine_core.questions import Question

#: Drug-name stems (USAN/INN conventions) -> class.
STEMS = {
    "mab": "antibody", "cept": "fusion_protein", "tinib": "kinase_inhibitor", "ciclib": "cdk_inhibitor",
    "parib": "parp_inhibitor", "gliptin": "dpp4", "gliflozin": "sglt2", "glutide": "glp1", "glitazone": "tzd",
    "statin": "statin", "sartan": "arb", "pril": "ace_inhibitor", "olol": "beta_blocker", "dipine": "ccb",
    "azole": "azole", "vir": "antiviral", "cycline": "tetracycline", "floxacin": "quinolone", "cillin": "penicillin",
    "cef": "cephalosporin", "parin": "heparin", "xaban": "xa_inhibitor", "prazole": "ppi", "setron": "5ht3",
    "lukast": "leukotriene", "platin": "platinum", "taxel": "taxane", "rubicin": "anthracycline", "triptan": "triptan",
    "oxetine": "ssri", "apine": "antipsychotic", "idone": "antipsychotic", "sone": "steroid", "olone": "steroid",
    "terol": "beta_agonist", "tropium": "antimuscarinic", "caine": "anaesthetic", "profen": "nsaid",
    "coxib": "nsaid", "dronate": "bisphosphonate", "vaccin": "vaccine", "insulin": "insulin", "vitamin": "vitamin",
}
_STEM = re.compile(r"[a-z]+")
_STOP = frozenset("""a an the of in on for and or with without to by at from as vs versus study trial trials phase
randomized randomised controlled double blind open label placebo efficacy safety evaluate evaluation effect effects
effectiveness compare comparing comparison patients subjects participants adult adults children healthy volunteers
treatment therapy using use after during between two three single multiple dose doses pilot multicenter multicentre
clinical long term short""".split())
FAMILIES = ("intervention", "condition")


_PREFIXES = ("cef", "vaccin", "insulin", "vitamin")  # stems that start or sit inside a name, not end it


def _stem_classes(name: str) -> set[str]:
    out = set()
    for word in _STEM.findall(name.lower()):
        for stem, cls in STEMS.items():
            if stem in _PREFIXES:
                hit = word.startswith(stem) if stem == "cef" else stem in word
            else:
                hit = word.endswith(stem) and len(word) >= len(stem) + 3
            if hit:
                out.add(cls)
    return out


def question_keys(question: Question) -> dict[str, set[str]]:
    """The question's keys per family (see the module text)."""
    arms = features.compared_arms(question) if question.category.endswith("explicit") else []
    source = arms[:1] if len(arms) >= 2 else [a for a in question.arms if isinstance(a, dict)]
    inter: set[str] = set()
    for arm in source:
        for iv in arm.get("interventions") or []:
            if isinstance(iv, dict):
                inter.add(f"type={str(iv.get('type') or 'OTHER').upper()}")
                inter |= {f"class={c}" for c in _stem_classes(str(iv.get("name") or ""))}
        for name in arm.get("interventionNames") or []:
            inter |= {f"class={c}" for c in _stem_classes(str(name))}
    names = features.trial_names(question)
    words = {w for w in re.findall(r"[a-z][a-z0-9\-]{3,}", (question.brief_title or "").lower())
             if w not in _STOP and w not in names}
    return {"intervention": inter, "condition": words}


class TargetPriors:
    """`fit_transform(train, y)` (out-of-fold) and `transform(questions)`: 2 columns per family (mean, extreme)."""

    def __init__(self, strength: float = 10.0, n_splits: int = 5):
        self.strength, self.n_splits = strength, n_splits
        self.tables: dict[str, dict[str, float]] = {}

    @staticmethod
    def _keys(questions: Sequence[Question]) -> list[dict[str, set[str]]]:
        return [features.memo("prior_keys", q, question_keys) for q in questions]

    def _table(self, keys, residual: np.ndarray, trials: Sequence[str], rows: np.ndarray) -> dict[str, dict[str, float]]:
        per_trial: dict[str, dict[str, list[float]]] = {f: defaultdict(list) for f in FAMILIES}
        for i in rows:
            for family in FAMILIES:
                for k in sorted(keys[i][family]):  # sorted: sums in an order that no hash seed changes
                    per_trial[family][(k, trials[i])].append(residual[i])
        tables = {}
        for family in FAMILIES:
            sums: dict[str, float] = defaultdict(float)
            counts: dict[str, int] = defaultdict(int)
            for (k, _), values in per_trial[family].items():
                sums[k] += float(np.mean(values))
                counts[k] += 1
            tables[family] = {k: sums[k] / (counts[k] + self.strength) for k in sums}
        return tables

    @staticmethod
    def _encode(keys, tables) -> np.ndarray:
        out = np.zeros((len(keys), 2 * len(FAMILIES)))
        for i, k in enumerate(keys):
            for j, family in enumerate(FAMILIES):
                values = [tables[family].get(key, 0.0) for key in sorted(k[family])]
                if values:
                    out[i, 2 * j] = float(np.mean(values))
                    out[i, 2 * j + 1] = max(values, key=abs)
        return out

    @staticmethod
    def _residual(y: np.ndarray, cats: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """y − the positive rate of the question's category, rates counted on `rows` only."""
        out = np.zeros_like(y)
        for c in np.unique(cats[rows]):
            mine = rows[cats[rows] == c]
            out[mine] = y[mine] - y[mine].mean()
        return out

    def fit_transform(self, questions: Sequence[Question], y: Sequence[int]) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        cats = np.array([q.category for q in questions])
        keys = self._keys(questions)
        trials = [q.nct_id for q in questions]
        group = np.array([zlib.crc32(t.encode()) % self.n_splits for t in trials])
        out = np.zeros((len(questions), 2 * len(FAMILIES)))
        for g in range(self.n_splits):
            held, rest = np.flatnonzero(group == g), np.flatnonzero(group != g)
            if held.size and rest.size:
                table = self._table(keys, self._residual(y, cats, rest), trials, rest)
                out[held] = self._encode([keys[i] for i in held], table)
        everything = np.arange(len(questions))
        self.tables = self._table(keys, self._residual(y, cats, everything), trials, everything)
        return out

    def transform(self, questions: Sequence[Question]) -> np.ndarray:
        return self._encode(self._keys(questions), self.tables)
