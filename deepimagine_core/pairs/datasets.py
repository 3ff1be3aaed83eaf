"""Export the questions and pair tables as Hugging Face datasets, each with a dataset card.

For every table ``<name>`` the folder ``<store>/datasets/<name>/`` gets:
- ``data/<name>.parquet`` — the table as it is (loadable with ``datasets.load_dataset("parquet", data_files=...)``);
- ``hf/`` — ``datasets.Dataset.from_parquet(...).save_to_disk(...)`` (``datasets.load_from_disk``), when the optional
  ``datasets`` package is installed (the ``train`` extra); otherwise only the Parquet file, and the card says so;
- ``README.md`` — the dataset card: what it is, counts (rows, per split, per kind or factor, label balance), the
  fields, provenance and licence.

The folder is built beside the old one and renamed over it, so a failed export leaves the previous one readable.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from deepimagine_core.store import Store
from deepimagine_core.tables import (
    APPROXIMATE_PAIRS_TABLE, HISTORICAL_QUESTIONS_TABLE, NATURAL_PAIRS_TABLE, TRIALS_TABLE,
)

__all__ = ["export_datasets", "dataset_card"]

TITLES = {
    HISTORICAL_QUESTIONS_TABLE: "CT Open-style questions from posted ClinicalTrials.gov results",
    NATURAL_PAIRS_TABLE: "Natural counterfactual pairs (same trial, one factor changed)",
    APPROXIMATE_PAIRS_TABLE: "Approximate counterfactual pairs (two trials alike except in one factor)",
}
DESCRIPTIONS = {
    HISTORICAL_QUESTIONS_TABLE: (
        "Questions in the option sentences of the CT Open benchmark, answered by the statistical analyses posted on "
        "ClinicalTrials.gov: `superiority` and `comparative` questions (label_kind `direction`: significance and the "
        "better arm, from the outcome's polarity) and `endpoint_met` questions (label_kind `benefit`: a significant "
        "benefit of an experimental arm over its comparator; `significance` where no arm is a control). Each row "
        "keeps its evidence (analysis index, p-value as posted, CI, group values, polarity rule) for audit. Built by "
        "`deepimagine_core.pairs.historical`."),
    NATURAL_PAIRS_TABLE: (
        "Pairs of observed results of one trial that differ in one factor: `arm` (another result group on the same "
        "outcome cell; dose-ranging pairs ordered low → high dose) or `outcome` (another outcome measure, time point "
        "or category of the same group). Each holds both contexts, both results and the observed change. Built by "
        "`deepimagine_core.pairs.natural`."),
    APPROXIMATE_PAIRS_TABLE: (
        "Pairs of trials retrieved with a TF-IDF index that are alike in every factor but one (`intervention`, "
        "`population`, `geography`, `design`), with the similarity and the attributes that differ. Built by "
        "`deepimagine_core.pairs.approximate`."),
}
FIELD_DOCS = {
    "question_id": "unique id: nct_id|endpoint_key|question_index",
    "nct_id": "ClinicalTrials.gov id of the trial",
    "endpoint_key": "outcome:<outcome_index> within the trial",
    "question_index": "position of the question among the endpoint's questions",
    "brief_title": "trial title",
    "endpoint": "JSON {measure, description, timeFrame, outcome_type} (CT Open's endpoint shape)",
    "arms": "JSON list of the trial's arms in the ClinicalTrials.gov API v2 armGroups shape",
    "meta_label": "single_arm | distinguishable_arm (explicit) or no_arm | no_distinguishable_arm (implicit)",
    "options": "the answer options (CT Open sentences)",
    "answer": "index of the right option",
    "extra": "JSON: kind, label_kind, arm_x, arm_y, listed_arms, split, alpha",
    "category": "CT Open category {2,3}-way_{explicit,implicit}",
    "split": "train | test | benchmark (temporal split; benchmark trials never train)",
    "kind": "superiority | comparative | endpoint_met",
    "label_kind": "direction (needs polarity and values) | benefit (endpoint met: significant and better) | "
                  "significance (needs the test only)",
    "arm_match_methods": "how the compared result groups were mapped to arms (exact ... evidence, position)",
    "results_first_posted": "date the trial's results were first posted",
    "significant": "the deciding analysis is significant at alpha",
    "significance_source": "p-value | CI | computed (Fisher exact from posted safety counts; no posted analysis)",
    "x_better": "arm X has the better value given the outcome's polarity (null when unknown, or for equal shares of "
                "a computed test)",
    "polarity": "higher value is better (null when unknown)",
    "polarity_rule": "the rule that decided the polarity",
    "group_values": "JSON: the compared groups' values, dispersion and n",
    "pair_id": "unique id of the pair",
    "factor": "the factor that differs",
    "source_nct_id": "trial of the source (anchor) side",
    "target_nct_id": "trial of the target side",
    "is_dose_ranging": "same intervention at two parsed doses (source = lower dose)",
    "difference": "the one thing that differs, in plain words",
    "source_context": "JSON context of the source: trial, arm, group, dose, outcome, class/category",
    "target_context": "JSON context of the target",
    "source_result": "JSON observed result of the source: value, dispersion, n, unit",
    "target_result": "JSON observed result of the target",
    "comparable": "same unit and parameter type: the change is meaningful",
    "change_direction": "up | down | same from source to target",
    "change_band": "same | negligible (<5%) | small (<20%) | moderate (<50%) | large",
    "similarity": "cosine similarity in the factor's retrieval view",
    "rank": "0 = the source's nearest accepted neighbour for the factor",
    "differing_attributes": "every attribute that is not identical (e.g. design.phase)",
    "differing_factors": "factors different beyond tolerance (always exactly the pair's factor)",
}
LICENCE = (
    "Derived from ClinicalTrials.gov records (U.S. National Library of Medicine): U.S.-government public-domain data "
    "under the ClinicalTrials.gov terms (a submitter may mark individual text as copyrighted). The labels and pairs "
    "are derived facts; no CT Open benchmark content is included (benchmark trials are only marked `benchmark`).")


def _counts(table: pa.Table, column: str) -> dict:
    if column not in table.schema.names or table.num_rows == 0:
        return {}
    return dict(sorted(Counter(map(str, table.column(column).to_pylist())).items()))


def dataset_card(name: str, table: pa.Table, provenance: dict, hf_saved: bool) -> str:
    """The README.md of one exported dataset."""
    lines = ["---", "license: other", f"pretty_name: {TITLES.get(name, name)}", "---", "",
             f"# {name}", "", TITLES.get(name, ""), "", DESCRIPTIONS.get(name, ""), "",
             "## Counts", "", f"- rows: {table.num_rows}"]
    if not table.num_rows:
        lines.append(f"- empty, with its schema: the source held nothing to build it from (a small source often has "
                     f"no such rows); the `{name}` asset's `why_empty` metadata says why")
    for column in ("split", "kind", "label_kind", "category", "factor", "is_dose_ranging"):
        counts = _counts(table, column)
        if counts:
            lines.append(f"- by {column}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if "answer" in table.schema.names and table.num_rows:
        balance = Counter(zip(table.column("kind").to_pylist(), table.column("answer").to_pylist()))
        lines.append("- label balance (kind, answer): "
                     + ", ".join(f"{k}/{a} {n}" for (k, a), n in sorted(balance.items())))
    lines += ["", "## Files", "", f"- `data/{name}.parquet`: the table"]
    lines.append("- `hf/`: `datasets.load_from_disk(...)`" if hf_saved else
                 "- `hf/` was not written: the optional `datasets` package is not installed; load the Parquet file")
    lines += ["", "## Fields", "", "| field | type | meaning |", "|---|---|---|"]
    lines += ["| {} | {} | {} |".format(f.name, f.type, FIELD_DOCS.get(f.name, "").replace("|", "\\|"))
              for f in table.schema]
    lines += ["", "## Provenance", ""] + [f"- {k}: {v}" for k, v in provenance.items()]
    lines += ["", "## Licence", "", LICENCE, ""]
    return "\n".join(lines)


def _provenance(store: Store, name: str) -> dict:
    info = {"built": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "source table": str(store.table_path(name)), "builder": f"deepimagine_core.pairs ({name})"}
    if store.has_table(TRIALS_TABLE):
        trials = store.read_table(TRIALS_TABLE, columns=["source_format", "source_ref"])
        info["trial records"] = ", ".join(f"{k}: {v}" for k, v in _counts(trials, "source_format").items())
        refs = {str(r).split("!")[0] for r in trials.column("source_ref").to_pylist()[:1000] if r}
        info["trial sources"] = ", ".join(sorted(refs)[:5])
    return info


def export_datasets(store: Store, names: Iterable[str], log: Callable[[str], None] | None = None) -> dict[str, dict]:
    """Export each table in ``names`` to ``<store>/datasets/<name>/``; returns what was written per name."""
    written = {}
    for name in names:
        table = store.read_table(name)
        final = store.path("datasets", name)
        final.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=final.parent))
        try:
            parquet = work / "data" / f"{name}.parquet"
            parquet.parent.mkdir()
            pq.write_table(table, parquet, compression="zstd")
            hf_saved = _save_hf(parquet, work / "hf", work / ".cache")
            (work / "README.md").write_text(dataset_card(name, table, _provenance(store, name), hf_saved))
            old = final.with_name(f".{name}.old")
            if final.exists():
                final.rename(old)
            work.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        written[name] = {"rows": table.num_rows, "path": str(final), "hf_saved": hf_saved}
        if log:
            log(f"dataset {name}: {table.num_rows} rows → {final}{'' if hf_saved else ' (Parquet only)'}")
    return written


def _save_hf(parquet: Path, target: Path, cache: Path) -> bool:
    try:
        import datasets
    except ImportError:
        return False
    if pq.ParquetFile(parquet).metadata.num_rows == 0:
        # an empty table: from_parquet cannot read zero batches, and save_to_disk of zero rows writes zero shards
        # (which load_from_disk refuses), so build it in memory and write one empty shard with the schema
        ds = datasets.Dataset(datasets.table.InMemoryTable(pq.read_table(parquet)))
        ds.save_to_disk(str(target), num_shards=1)
        return True
    ds = datasets.Dataset.from_parquet(str(parquet), cache_dir=str(cache))
    ds.save_to_disk(str(target))
    del ds
    shutil.rmtree(cache, ignore_errors=True)
    return True
