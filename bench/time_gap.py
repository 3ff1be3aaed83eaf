"""`python -m bench.time_gap`: the reference predictor's figures against the years between its training trials and the
trials it is asked about, on ClinicalTrials.gov records only (no CT Open answer is read).

    nice -n 10 python -m bench.time_gap --ctgov ../shared/data/ctgov --ct-open ../shared/data/ct_open \
        --work /tmp/deepimagine-corpus --out docs/results/time_gap

1. Forward: the whole-corpus test split (results posted from the corpus cutoff, March 2015, to March 2016) is scored
   by the reference trained on `--n-trials` trials drawn from a `--width`-year window ending `gap` years before it.
2. Backward: the trials posted before `--backward-before` are scored by the reference trained on windows after them.
3. Newer records: the API v2 JSON studies under `--ctgov` (results posted up to 2025), or the `--recent-source` given
   (e.g. a current ClinicalTrials.gov bulk download), trials in the legacy archives or in a CT Open file left out, are
   scored by the reference trained on all historical questions, by period.

The store under `--work` is the one `python -m bench.predict_corpus` builds (reused when its settings match).
`--ct-open` is read only for its trial ids, which are kept out of every set. Writes summary.md, summary.json and a
plot under `--out`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import time
from pathlib import Path

from bench import common
from bench.predict_corpus import corpus_inputs
from deepimagine_core.evaluation.corpus import build_corpus, corpus_questions
from deepimagine_core.evaluation.ct_open import benchmark_nct_ids
from deepimagine_core.evaluation.selection import REFERENCE, reference_predictor
from deepimagine_core.evaluation.time_gap import (
    figures_by_period,
    gap_curve,
    gap_trend,
    iso,
    trial_years,
)
from deepimagine_core.evaluation.weighting import date_years
from deepimagine_core.store import Store

PERIODS = (("2016-04-01", "2019-01-01"), ("2019-01-01", "2022-01-01"), ("2022-01-01", "2026-01-01"))


def _gaps(text: str) -> list[float]:
    return [float(g) for g in text.split(",") if g.strip()]


def _recent_questions(sources: list[Path], work: Path, exclude: set[str], legacy_ids: set[str], log) -> list:
    """Questions of the newer sources' trials (every split), without the trials the legacy archives also hold."""
    if not sources:
        log("newer records: no --recent-source and no v2_json/studies.jsonl.gz under --ctgov; skipped")
        return []
    store = Store(work / "recent")
    build_corpus(sources, store, exclude_nct_ids=exclude, log=log)
    train, test = corpus_questions(store)
    return [q for q in train + test if q.nct_id not in legacy_ids]


def _mean(rows: list[dict], key: str) -> str:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return f"{sum(vals) / len(vals):.3f} ({min(vals):.3f}–{max(vals):.3f})" if vals else "—"


def _table(rows: list[dict], trend_f: dict, trend_b: dict) -> list[str]:
    lines = [("| direction | gap (years) | training window | trials in window | seeds scored | trial-balanced w. acc. "
              "| weighted acc. | AUC 2-way expl. |"), "|---|---|---|---|---|---|---|---|"]
    keyed: dict[tuple, list[dict]] = {}
    for r in rows:
        keyed.setdefault((r["direction"], r["gap"]), []).append(r)
    for (direction, gap), group in keyed.items():
        scored = [r for r in group if "skipped" not in r]
        lines.append(f"| {direction} | {gap:g} | {group[0]['window'][0]} – {group[0]['window'][1]} | "
                     f"{group[0]['pool_trials']} | {len(scored)} | {_mean(scored, 'trial_balanced')} | "
                     f"{_mean(scored, 'weighted_accuracy')} | {_mean(scored, 'auc_2way_explicit')} |")
    lines.append("")
    for name, t in (("forward", trend_f), ("backward", trend_b)):
        if t["slope"] is not None:
            lines.append(f"- {name} trend of the trial-balanced figure: {t['slope']:+.4f} per year of gap "
                         f"(at gap 0: {t['intercept']:.3f}; r = {t['r']:.2f}; {t['n']} fits)")
    return lines


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for direction, marker in (("forward", "o"), ("backward", "s")):
        pts = [(r["gap"], r["trial_balanced"]) for r in rows if r["direction"] == direction and "skipped" not in r]
        if pts:
            ax.scatter(*zip(*pts), marker=marker, label=direction, alpha=0.7)
    ax.set_xlabel("years between training window and validation trials")
    ax.set_ylabel("trial-balanced weighted accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.time_gap", description=__doc__.split("\n\n")[0])
    common.add_corpus_arguments(parser, "docs/results/time_gap", "CT Open files, for their trial ids only")
    parser.add_argument("--n-trials", type=int, default=300)
    parser.add_argument("--width", type=float, default=2.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--forward-gaps", default="0,1,2,3,4,5")
    parser.add_argument("--backward-gaps", default="0,1,2,3")
    parser.add_argument("--backward-before", default="2010-07-01")
    parser.add_argument("--recent-source", type=Path, action="append", default=[], metavar="PATH",
                        help="newer trial records to score by period: any path DEEPIMAGINE_TRIALS_SOURCE takes (e.g. a "
                             "current ClinicalTrials.gov bulk download); repeatable. Default: CTGOV/v2_json/"
                             "studies.jsonl.gz")
    args = parser.parse_args(argv)
    try:
        recent_sources = common.check_exist(
            args.recent_source or sorted((args.ctgov / "v2_json").glob("studies.jsonl.gz")), "--recent-source")
        archives, store_dir = corpus_inputs(args.ctgov, args.work)  # the store bench.predict_corpus builds
    except FileNotFoundError as exc:
        parser.error(str(exc))
    started, commit = time.monotonic(), common.git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = " (with uncommitted changes)" if common.git("status", "--porcelain", "--untracked-files=no") else ""

    def log(message: str) -> None:
        print(message, flush=True)

    exclude = benchmark_nct_ids(args.ct_open) if args.ct_open else set()
    store = Store(store_dir)
    build_corpus(archives, store, exclude_nct_ids=exclude, log=log)
    train, test = corpus_questions(store)
    history = train + test
    seeds = tuple(range(args.seeds))
    options = {"width": args.width, "n_trials": args.n_trials, "seeds": seeds, "log": log}
    forward = gap_curve(history, {q.nct_id for q in test}, reference_predictor, gaps=_gaps(args.forward_gaps),
                        direction="forward", **options)
    before = date_years(args.backward_before)
    old_ids = {t for t, y in trial_years(history).items() if y < before}
    backward = gap_curve(history, old_ids, reference_predictor, gaps=_gaps(args.backward_gaps),
                         direction="backward", **options)
    legacy_ids = set(store.read_table("trials", columns=["nct_id"]).column("nct_id").to_pylist())
    recent = _recent_questions(recent_sources, args.work, exclude, legacy_ids, log)
    periods = []
    if recent:
        predictor = reference_predictor()
        predictor.fit(history)
        periods = figures_by_period(predictor, recent, PERIODS)
    rows = forward + backward
    trend_f, trend_b = gap_trend(forward), gap_trend(backward)
    newest = max(trial_years(history).values())

    args.out.mkdir(parents=True, exist_ok=True)
    _plot(rows, args.out / "time_gap.png")
    header = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit,
              "command": "python -m bench.time_gap " + shlex.join(argv if argv is not None else sys.argv[1:]),
              "machine": f"{os.cpu_count()} CPUs", "seconds": round(time.monotonic() - started),
              "reference": REFERENCE.label}
    (args.out / "summary.json").write_text(json.dumps(
        {"header": header, "rows": rows, "trend": {"forward": trend_f, "backward": trend_b}, "periods": periods},
        indent=2, default=str) + "\n")
    lines = ["# Figures against the time gap (historical records only)", "",
             f"- Date: {header['date']}; code: commit `{commit}`{dirty}; {header['seconds']} s on {header['machine']}",
             f"- Command: `{header['command']}`",
             (f"- Predictor: the reference, {header['reference']}; each fit on {args.n_trials} trials drawn from a "
              f"{args.width:g}-year window (seeds {list(seeds)}); no CT Open answer is read."), ""]
    lines += _table(rows, trend_f, trend_b)
    lines += ["", (f"Newer records ({', '.join(p.name for p in recent_sources) or 'none'}; trials in the legacy archives "
                   f"or a CT Open file left out), scored by the "
                   f"reference trained on all {len(history)} historical questions (newest results posted "
                   f"{iso(newest)}):"), "",
              ("| results posted | trials | questions | weighted acc. [95%] | trial-balanced | AUC 2-way expl. | "
               "by category |"), "|---|---|---|---|---|---|---|"]
    for p in periods:
        if not p["n_questions"]:
            lines.append(f"| {p['period'][0]} – {p['period'][1]} | 0 | 0 | — | — | — | — |")
            continue
        lo, hi = p["weighted_accuracy_interval"] or (float("nan"), float("nan"))
        auc = "—" if p["auc_2way_explicit"] is None else f"{p['auc_2way_explicit']:.3f}"
        lines.append(f"| {p['period'][0]} – {p['period'][1]} | {p['n_trials']} | {p['n_questions']} | "
                     f"{p['weighted_accuracy']:.3f} [{lo:.3f}, {hi:.3f}] | {p['trial_balanced']:.3f} | {auc} | "
                     f"{p['categories']} |")
    lines += ["", "![figures against the time gap](time_gap.png)", ""]
    (args.out / "summary.md").write_text("\n".join(lines))
    print(f"summary: {args.out / 'summary.md'} ({header['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
