"""The stored summary of a whole-corpus evaluation (`corpus_eval.evaluate_corpus`): `summary.md` + `summary.json`.

It names the reference predictor and gives its figures on every benchmark (weighted accuracy, macro-F1,
cross-entropy, 2-way explicit AUC with trial-bootstrap intervals, top-label calibration error, per category), the
other predictors beside it, what the adaptation estimated on each benchmark, the covariate shift between the
historical questions and each benchmark (`covariates`, designs only), the selection tables (every candidate
and its CV figures) and the reliability plots. The header says when, from which commit and with which command.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from deepimagine_core.evaluation.calibration import expected_calibration_error
from deepimagine_core.evaluation.corpus_eval import save_json
from deepimagine_core.evaluation.covariates import shift_lines
from deepimagine_core.evaluation.report import markdown_table
from deepimagine_core.evaluation.run import BenchmarkRun, safe_name
from deepimagine_core.evaluation.selection import SELECTION_METRIC
from deepimagine_core.questions import CATEGORIES


def _f(value: Any, interval: list[float] | None = None) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    text = f"{value:.3f}"
    return f"{text} [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else text


def run_ece(run: BenchmarkRun) -> float:
    conf = [max(p.probabilities) for p in run.predictions]
    ok = [int(np.argmax(p.probabilities)) == q.answer for q, p in zip(run.questions, run.predictions)]
    return expected_calibration_error(conf, ok)


def figures_row(run: BenchmarkRun) -> dict[str, Any]:
    s = run.scores
    row = {"n_questions": s["n_questions"], "weighted_accuracy": s["overall"]["weighted_accuracy"],
           "weighted_accuracy_interval": s["intervals"]["weighted_accuracy"],
           "macro_f1": s["overall"]["macro_f1"], "macro_f1_interval": s["intervals"]["macro_f1"],
           "cross_entropy": s["overall"]["cross_entropy"], "cross_entropy_interval": s["intervals"]["cross_entropy"],
           "auc_2way_explicit": s["auc_2way_explicit"], "auc_2way_explicit_interval": s["auc_2way_explicit_interval"],
           "ece": run_ece(run), "trial_balanced_weighted_accuracy": s["trial_balanced"]["weighted_accuracy"],
           "trial_balanced_weighted_accuracy_interval": s["trial_balanced_intervals"]["weighted_accuracy"]}
    for cat, entry in s["categories"].items():
        row[f"wacc:{cat}"] = entry["weighted_accuracy"]
        row[f"wacc:{cat}:interval"] = entry["intervals"]["weighted_accuracy"]
        row[f"n:{cat}"] = entry["n_questions"]
    return row


def _benchmark_table(runs: dict[str, BenchmarkRun]) -> tuple[list[str], list[list[str]]]:
    cats = [c for c in CATEGORIES if any(c in r.scores["categories"] for r in runs.values())]
    first = next(iter(runs.values())).scores["categories"]
    header = ["predictor", "weighted acc.", "macro-F1", "cross-entropy", "AUC 2-way expl.", "ECE",
              "trial-balanced w. acc.", *[f"{c} (n={first.get(c, {}).get('n_questions', 0)})" for c in cats]]
    rows = []
    for label, run in runs.items():
        r = figures_row(run)
        rows.append([label, _f(r["weighted_accuracy"], r["weighted_accuracy_interval"]),
                     _f(r["macro_f1"], r["macro_f1_interval"]), _f(r["cross_entropy"], r["cross_entropy_interval"]),
                     _f(r["auc_2way_explicit"], r["auc_2way_explicit_interval"]), _f(r["ece"]),
                     _f(r["trial_balanced_weighted_accuracy"], r["trial_balanced_weighted_accuracy_interval"]),
                     *[_f(r.get(f"wacc:{c}"), r.get(f"wacc:{c}:interval")) for c in cats]])
    return header, rows


def _selection_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = ["candidate", "CV trial-balanced w. acc.", "folds", "CV weighted acc.", "macro-F1", "cross-entropy",
              "AUC 2-way expl.", *[f"{c}" for c in CATEGORIES[:3]], "seconds"]
    out = []
    for r in rows:
        m = r["mean"]
        out.append([r["candidate"], _f(m.get(SELECTION_METRIC)),
                    " / ".join(_f(f.get(SELECTION_METRIC)) for f in r["folds"]), _f(m.get("weighted_accuracy")),
                    _f(m.get("macro_f1")),
                    _f(m.get("cross_entropy")), _f(m.get("auc_2way_explicit")),
                    *[_f(m.get(f"wacc:{c}")) for c in CATEGORIES[:3]], str(r["seconds"])])
    return header, out


def write_summary(outcome: dict[str, Any], out_dir: Path, reports_dir: Path, header: dict[str, Any]) -> Path:
    """summary.md, summary.json and the reliability/category plots under `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results, selection, ref = outcome["results"], outcome["selection"], outcome["reference_label"]
    m = outcome["manifest"]
    lines = ["# Whole-corpus evaluation", "",
             f"- Date: {header['date']}; code: commit `{header['commit']}`{header.get('dirty', '')}",
             f"- Command: `{header['command']}`",
             f"- Machine: {header['machine']}; load average before/after: {header['load']}",
             "- Time (wall): " + ", ".join(f"{k} {v:.0f}s" for k, v in outcome["timings"].items())
             + (f"; CPU of the main process and its workers: {header['cpu_seconds']}s"
                if "cpu_seconds" in header else ""),
             f"- Corpus: {m['trials']} trials ({len(m['key']['archives'])} archives), {m['questions']} questions "
             f"{m['questions_by_split']}, temporal cutoff {m['cutoff']}; {m['key']['excluded']} CT Open trial ids "
             "kept out of every training set.", "",
             f"## Reference predictor: `{selection['reference_name']}` {selection['reference_options']}", "",
             f"Chosen by the {selection['metric']} ({selection['n_blocks'] - 1} forward-chaining folds of "
             "the historical training questions, grouped by trial, ordered in time; see Selection). No CT Open file "
             "was read before the selection was fixed. For CT Open the predictors are refitted on all historical "
             "questions (train + test); for the historical test split they are fitted on train only. Brackets: 95% "
             "bootstrap intervals over trials. ECE: top-label expected calibration error (10 bins). Trial-balanced: the "
             "official figure with each trial's questions weighing 1 in all (not part of the official metric).", ""]
    ref_rows = [[bench, *r[1:]] for bench, runs in results.runs.items() for r in [_benchmark_table({ref: runs[ref]})[1][0]]]
    ref_header = ["benchmark", *_benchmark_table({ref: next(iter(results.runs.values()))[ref]})[0][1:7]]
    lines += [markdown_table(ref_header, [r[:7] for r in ref_rows]), ""]
    payload: dict[str, Any] = {"header": header, "manifest": m, "timings": outcome["timings"],
                               "selection": selection, "benchmarks": {}}
    for bench, runs in results.runs.items():
        lines += [f"## {bench}", "", markdown_table(*_benchmark_table(runs)), ""]
        payload["benchmarks"][bench] = {label: figures_row(run) for label, run in runs.items()}
        for label, run in runs.items():
            target = (run.scores.get("predictor") or {}).get("target")
            if target:
                lines.append(f"Adaptation of {label} on {bench}: " + "; ".join(
                    f"{c}: {_adapt_text(v)}" for c, v in target.items()))
        for key in ("reliability", "categories"):
            src = reports_dir / "figures" / safe_name(bench) / f"{key}.png"
            if src.exists():
                dst = out_dir / "figures" / f"{safe_name(bench)}_{key}.png"
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                lines += ["", f"![{bench} {key}](figures/{dst.name})"]
        lines.append("")
    lines += shift_lines(outcome.get("covariates") or {})
    payload["covariates"] = outcome.get("covariates") or {}
    lines += ["## Selection", "", f"Metric: {selection['metric']}. Stage 1 (plain candidates):", "",
              markdown_table(*_selection_table(selection["stage1"])), "",
              f"Stage 2 (adaptation methods of the best plain candidate, `{selection['best_plain']}`; each fold's "
              "validation block is the unlabelled target):", "", markdown_table(*_selection_table(selection["stage2"])),
              ""]
    save_json(out_dir / "summary.json", payload)
    path = out_dir / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _adapt_text(v: dict[str, Any]) -> str:
    if v.get("method") == "calibrated":
        return f"calibrated only (n={v.get('n')})"
    if v.get("method") == "importance":
        return (f"importance-weighted refit (n={v['n']}; effective training size {v['effective_train']:.0f} of "
                f"{v['n_train']}, weights {v['weight_min']:.2f}-{v['weight_max']:.2f})")
    prior = v.get("target_prior")
    prior_text = "" if prior is None or not np.isfinite(prior) else f"prior {prior:.2f} (source {v['source_prior']:.2f}), "
    return f"{prior_text}positive rate {v['positive_rate']:.2f} (n={v['n']})"
