"""Historical questions from local ClinicalTrials.gov archives: the input of the whole-corpus evaluation.

    store = Store("/tmp/corpus")
    info = build_corpus(["/work/shared/data/ctgov/legacy_xml/ctgov_legacy_xml_sample.tar.gz",
                         "/work/shared/data/ctgov/legacy_xml/ctgov_legacy_xml_rest.tar.gz"], store,
                        exclude_nct_ids=ct_open.benchmark_nct_ids(ct_open_folder))
    train, test = corpus_questions(store)

Every archive is ingested into one set of trial tables (`ctgov.ingest`), trials get their temporal side
(`pairs.split`: the latest ~15% by results-first-posted date are `test`; trials of a CT Open file are `benchmark`
and never used) and the historical questions are built (`pairs.questions`). A store that already holds the
questions of the same archives and settings is reused (`reuse=True`), so re-running the evaluation skips ingest.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from deepimagine_core.evaluation.weighting import question_with_date
from deepimagine_core.questions import Question
from deepimagine_core.store import Store, atomic_path
from deepimagine_core.tables import HISTORICAL_QUESTIONS_TABLE

QUESTIONS_TABLE = HISTORICAL_QUESTIONS_TABLE
MANIFEST = "corpus_manifest.json"
#: The code each layer of the store is built by (paths under `deepimagine_core/`): the trial tables by the parsers, the
#: questions by the label rules. Their digests are part of the store key, so a store built by other code is rebuilt
#: (only its questions when only the label rules changed), never silently reused.
INGEST_CODE = ("ctgov",)
QUESTIONS_CODE = ("pairs", "questions.py")
_PACKAGE = Path(__file__).resolve().parents[1]


def code_digest(*parts: str, root: Path = _PACKAGE) -> str:
    """A short digest of the Python sources under `parts` (folders, searched recursively, or files) of `root`."""
    digest = hashlib.sha256()
    for part in parts:
        path = root / part
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def legacy_archives(ctgov_dir: str | Path) -> list[Path]:
    """The legacy XML archives of a shared ctgov data folder (`legacy_xml/*.tar.gz`), sorted by name."""
    found = sorted((Path(ctgov_dir) / "legacy_xml").glob("*.tar.gz"))
    if not found:
        raise FileNotFoundError(f"{ctgov_dir}: no legacy_xml/*.tar.gz archives")
    return found


def build_corpus(
    archives: Sequence[str | Path],
    store: Store,
    *,
    exclude_nct_ids: Iterable[str] = (),
    test_fraction: float = 0.15,
    alpha: float = 0.05,
    comparative: str = "all",
    computed: str = "safety",
    reuse: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Ingest `archives`, split trials in time, build the historical questions into `store`; returns a manifest
    (archives, counts, cutoff, seconds) also written to `store.path(MANIFEST)`. With `reuse`, a store built with the
    same settings and code is returned as it is, and one built from the same archives by the same parsers with other
    question settings (`alpha`, `comparative`, `computed`, `test_fraction`, excluded trials) or label rules
    (`QUESTIONS_CODE`) keeps its trial tables: only the questions are built again."""
    from deepimagine_core.ctgov.archives import iter_source
    from deepimagine_core.ctgov.ingest import ingest
    from deepimagine_core.pairs.computed import check_computed_scope
    from deepimagine_core.pairs.historical import (
        HISTORICAL_QUESTIONS,
        build_questions,
        check_comparative_scope,
    )
    from deepimagine_core.pairs.split import assign_splits, split_map
    from deepimagine_core.pairs.trialdata import TRIAL_TABLES

    check_comparative_scope(comparative)  # before the ingest, not after it
    check_computed_scope(computed)
    exclude = sorted(set(exclude_nct_ids))
    key = {"archives": [str(Path(a).resolve()) for a in archives], "test_fraction": test_fraction, "alpha": alpha,
           "excluded": len(exclude), "comparative": comparative, "computed": computed,
           "ingest_code": code_digest(*INGEST_CODE), "questions_code": code_digest(*QUESTIONS_CODE)}
    manifest_path = store.path(MANIFEST)
    previous = json.loads(manifest_path.read_text()) if reuse and manifest_path.exists() else {}
    if previous.get("key") == key and store.has_table(QUESTIONS_TABLE):
        log(f"corpus: reusing {previous['questions']} questions in {store.table_path(QUESTIONS_TABLE)}")
        return previous
    started = time.monotonic()
    same_tables = {k: previous.get("key", {}).get(k) for k in ("archives", "ingest_code")} == \
        {k: key[k] for k in ("archives", "ingest_code")}
    if same_tables and all(map(store.has_table, TRIAL_TABLES)):
        trials, quarantined = previous["trials"], previous["quarantined"]  # only the question settings or rules changed
        log(f"corpus: reusing the {trials} trials ingested from the same archives by the same parsers; building the "
            "questions again")
    else:
        manifest_path.unlink(missing_ok=True)  # an ingest stopped half-way must not look like the old corpus
        summary = ingest(chain.from_iterable(iter_source(a) for a in archives), store,
                         source="+".join(key["archives"]))
        trials, quarantined = summary.trials, summary.quarantined
        log(f"corpus: ingested {trials} trials in {summary.seconds:.0f}s ({quarantined} quarantined)")
    splits, cutoff = assign_splits(store.read_table("trials", columns=["nct_id", "results_first_posted"]),
                                   None, test_fraction, exclude)
    tables = {name: store.read_table(name) for name in TRIAL_TABLES}
    table, skips = build_questions(tables, alpha=alpha, splits=split_map(splits), comparative=comparative,
                                   computed=computed)
    store.write_table(QUESTIONS_TABLE, table, HISTORICAL_QUESTIONS)
    sides = table.column("split").to_pylist()
    manifest = {
        "key": key, "trials": trials, "quarantined": quarantined, "questions": table.num_rows,
        "questions_by_split": {s: sides.count(s) for s in sorted(set(sides))},
        "trials_with_questions": len(set(table.column("nct_id").to_pylist())),
        "cutoff": cutoff.isoformat() if cutoff else None, "skips": skips,
        "seconds": round(time.monotonic() - started, 1),
    }
    with atomic_path(manifest_path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"corpus: {table.num_rows} questions {manifest['questions_by_split']} in {manifest['seconds']:.0f}s")
    return manifest


def corpus_questions(store: Store) -> tuple[list[Question], list[Question]]:
    """(train, test) historical questions of a built corpus, each with `extra['results_first_posted']` (ISO date)
    for ordering in time. Questions of other sides (benchmark) are left out."""
    table = store.read_table(QUESTIONS_TABLE)
    train: list[Question] = []
    test: list[Question] = []
    for row in table.to_pylist():
        q = question_with_date(row)
        q.extra["kind"] = row.get("kind")
        {"train": train, "test": test}.get(row.get("split"), []).append(q)
    return train, test
