"""`python -m bench.predict_corpus`: the whole-corpus evaluation of the CPU predictors, stored with date and commit.

    nice -n 10 python -m bench.predict_corpus --ctgov ../shared/data/ctgov --ct-open ../shared/data/ct_open \
        --work /tmp/deepimagine-corpus --out docs/results/whole_corpus

Builds the historical questions from every legacy XML archive under `--ctgov` and any `--extra-source` (reused from
`--work` when already built from the same sources), selects the reference predictor by time-ordered CV on the
historical training questions, scores the reference and the baselines on the historical test split and on the CT
Open files, and writes `summary.md`/`summary.json` (+ plots) under `--out` and the full report under `--work/reports`.
`--sample` uses only the 3,000-study sample archive (for development).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pickle
import platform
import shlex
import sys
from pathlib import Path

from bench import common
from deepimagine_core.evaluation.corpus import legacy_archives
from deepimagine_core.evaluation.corpus_eval import CorpusSettings, evaluate_corpus
from deepimagine_core.evaluation.corpus_summary import write_summary
from deepimagine_core.evaluation.report import write_report
from deepimagine_core.pairs.computed import COMPUTED_SCOPES
from deepimagine_core.pairs.historical import COMPARATIVE_SCOPES


def corpus_inputs(ctgov: Path, work: Path, sample: bool = False, extra: list[Path] = ()) -> tuple[list[Path], Path]:
    """(the trial sources to ingest, the store folder): the legacy XML archives under `ctgov` (only the 3,000-study
    sample with `sample`), then the `extra` sources; a missing extra source is a FileNotFoundError naming it. A
    corpus with extra sources has its own store, so the stored whole-corpus build is not rebuilt over."""
    archives = legacy_archives(ctgov)
    if sample:
        archives = [a for a in archives if "sample" in a.name]
    extra = common.check_exist(extra, "--extra-source")
    name = ("sample" if sample else "full") + ("+extra" if extra else "")
    return [*archives, *extra], work / name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.predict_corpus", description=__doc__.split("\n\n")[0])
    common.add_corpus_arguments(parser, "docs/results/whole_corpus", "CT Open files ('' for none)")
    parser.add_argument("--sample", action="store_true", help="only the 3,000-study sample archive")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--comparative", choices=COMPARATIVE_SCOPES, default="all",
                        help="which comparisons get a 3-way historical question (head_to_head: the rule before "
                             "2026-12-07)")
    parser.add_argument("--computed", choices=COMPUTED_SCOPES, default="safety",
                        help="safety counts without a posted analysis get questions labelled by a computed Fisher "
                             "test (none: the rule before 2026-12-07)")
    parser.add_argument("--extra-source", type=Path, action="append", default=[], metavar="PATH",
                        help="another trial source ingested with the archives: any path DEEPIMAGINE_TRIALS_SOURCE "
                             "takes (e.g. a newer ClinicalTrials.gov bulk download); repeatable. The store is then "
                             "WORK/full+extra (or sample+extra)")
    args = parser.parse_args(argv)
    try:
        archives, work = corpus_inputs(args.ctgov, args.work, args.sample, args.extra_source)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    load_before = os.getloadavg()
    commit = common.git("rev-parse", "--short", "HEAD") or "unknown"  # the code that runs, read before it runs
    dirty = " (with uncommitted changes)" if common.git("status", "--porcelain", "--untracked-files=no") else ""
    cpu_before = os.times()
    settings = CorpusSettings(ctgov_dir=args.ctgov, ct_open=args.ct_open or None, work_dir=work, out_dir=args.out,
                              reports_dir=work / "reports", archives=archives, n_bootstrap=args.bootstrap,
                              comparative=args.comparative, computed=args.computed)
    outcome = evaluate_corpus(settings, log=lambda m: print(m, flush=True))
    with open(work / "outcome.pkl", "wb") as fh:  # to re-render the summary without re-running
        pickle.dump(outcome, fh)
    write_report(settings.reports_dir, outcome["results"])
    # joblib keeps its worker processes for reuse; their CPU time counts (os.times' children) once they are reaped
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)
    header = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "dirty": dirty,
        "cpu_seconds": round(sum(os.times()[:4]) - sum(cpu_before[:4])),
        "command": "python -m bench.predict_corpus " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, Python "
                   f"{platform.python_version()}",
        "load": f"{load_before[0]:.1f} / {os.getloadavg()[0]:.1f}",
    }
    path = write_summary(outcome, args.out, settings.reports_dir, header)
    print(f"summary: {path}; full report: {settings.reports_dir / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
