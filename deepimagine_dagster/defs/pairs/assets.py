"""Questions, pairs, retrieval index and their dataset export. Thin: the work is in deepimagine_core.pairs.

trial tables → trial_splits → historical_questions, natural_pairs
trial tables → question_skips (every analysis that yields no question, with its reason)
trial tables → retrieval_index → approximate_pairs (+ trial_splits)
historical_questions, natural_pairs, approximate_pairs → pair_datasets
"""

import dataclasses
import datetime as dt
import enum
import json
from collections import Counter

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from deepimagine_core.pairs.approximate import (APPROXIMATE_PAIRS, ApproxConfig, build_approximate_pairs,
                                                build_trial_index, render_pair, trial_profiles)
from deepimagine_core.pairs.computed import COMPUTED_SCOPES
from deepimagine_core.pairs.datasets import export_datasets
from deepimagine_core.pairs.empty import why_no_approximate_pairs, why_no_natural_pairs, why_no_questions
from deepimagine_core.pairs.natural import NATURAL_PAIRS, NaturalConfig, build_natural_pairs
from deepimagine_core.pairs.historical import (COMPARATIVE_SCOPES, HISTORICAL_QUESTIONS, QUESTION_SKIPS,
                                               SKIP_REASONS, build_question_tables, build_questions,
                                               render_question)
from deepimagine_core.pairs.retrieval import TextIndex
from deepimagine_core.evaluation.ct_open import benchmark_nct_ids, source_fingerprint
from deepimagine_core.pairs.split import (DEFAULT_TEST_FRACTION, assign_splits, counts_by_split, split_map,
                                          with_benchmark_record)
from deepimagine_core.pairs.trialdata import TRIAL_TABLES
from deepimagine_core.store import Store
from deepimagine_core.tables import (
    APPROXIMATE_PAIRS_TABLE, ARM_GROUPS_TABLE, HISTORICAL_QUESTIONS_TABLE, INTERVENTIONS_TABLE, NATURAL_PAIRS_TABLE,
    QUESTION_SKIPS_TABLE, TRIALS_TABLE, TRIAL_SPLITS_TABLE,
)
from deepimagine_dagster.metadata import table_metadata
from deepimagine_dagster.resources import CTOpenResource, StoreResource

GROUP = "pairs"
INDEX_NAME = "trials"  # the trial retrieval index lives in <store>/indexes/trials/


def index_path(store: Store):
    return store.path("indexes", INDEX_NAME)


class SplitConfig(dg.Config):
    cutoff: str = ""  # ISO date; empty = the date putting the latest `test_fraction` of trials on the test side
    test_fraction: float = DEFAULT_TEST_FRACTION


#: Which comparisons get a 3-way question: core's COMPARATIVE_SCOPES as an enum, so the Launchpad refuses any other
#: value — "all" (every comparison, placebo ones too, as CT Open asks them) or "head_to_head" (the rule before
#: 2026-12-07: Y an active comparator, or X and Y of one rank).
ComparativeScope = enum.Enum("ComparativeScope", {scope: scope for scope in COMPARATIVE_SCOPES})
#: Whether safety counts without a posted analysis get computed comparisons (core's COMPUTED_SCOPES: "safety", or
#: "none", the rule before 2026-12-07).
ComputedScope = enum.Enum("ComputedScope", {scope: scope for scope in COMPUTED_SCOPES})


class QuestionsConfig(dg.Config):
    alpha: float = 0.05
    comparative: ComparativeScope = ComparativeScope.all  # the Launchpad refuses any other value
    computed: ComputedScope = ComputedScope.safety


_NATURAL, _APPROX = NaturalConfig(), ApproxConfig()  # core's defaults


class NaturalPairsConfig(dg.Config):
    max_arm_pairs_per_trial: int = _NATURAL.max_arm_pairs_per_trial
    max_outcome_pairs_per_trial: int = _NATURAL.max_outcome_pairs_per_trial
    max_groups_per_cell: int = _NATURAL.max_groups_per_cell
    max_cells_per_group: int = _NATURAL.max_cells_per_group


class ApproximatePairsConfig(dg.Config):
    k: int = _APPROX.k
    candidates: int = _APPROX.candidates
    min_similarity: float = _APPROX.min_similarity
    intervention_alike: float = _APPROX.intervention_alike
    intervention_differ: float = _APPROX.intervention_differ
    condition_alike: float = _APPROX.condition_alike
    condition_differ: float = _APPROX.condition_differ
    age_tolerance_years: float = _APPROX.age_tolerance_years
    geography_alike: float = _APPROX.geography_alike
    geography_differ: float = _APPROX.geography_differ


def read_tables(store: Store, names=TRIAL_TABLES) -> dict[str, pa.Table]:
    return {name: store.read_table(name) for name in names}


def _md_counts(counts: dict) -> dg.MetadataValue:
    if not counts:
        return dg.MetadataValue.md("_(none)_")
    lines = ["| key | count |", "|---|---|"] + [f"| {k} | {v} |" for k, v in counts.items()]
    return dg.MetadataValue.md("\n".join(lines))


def _why_empty(reasons) -> dict:
    """Metadata `why_empty` (a sentence, or {factor: sentence}) when a table or part of it is empty."""
    return {"why_empty": dg.MetadataValue.json(reasons) if isinstance(reasons, dict) else reasons} if reasons else {}


@dg.asset(group_name=GROUP, deps=[TRIALS_TABLE], kinds={"parquet"})
def trial_splits(context: dg.AssetExecutionContext, config: SplitConfig, store: StoreResource,
                 ct_open: CTOpenResource) -> dg.MaterializeResult:
    """Each trial's side: train, test (results first posted on/after the cutoff, or undated) or benchmark (in a loaded
    CT Open file; never trained on). Questions and pairs inherit these sides."""
    st = store.get()
    bench = benchmark_nct_ids(ct_open.paths)
    cutoff = dt.date.fromisoformat(config.cutoff) if config.cutoff else None
    table, used = assign_splits(st.read_table(TRIALS_TABLE, columns=["nct_id", "results_first_posted"]), cutoff,
                                config.test_fraction, bench)
    path = st.write_table(TRIAL_SPLITS_TABLE, with_benchmark_record(table, bench, source_fingerprint(ct_open.paths)))
    counts = counts_by_split(table)
    undated = sum(d is None for d in table.column("results_first_posted").to_pylist())
    context.log.info(f"trial splits: {counts}, cutoff {used}, {len(bench)} benchmark NCT ids loaded, {undated} undated")
    return dg.MaterializeResult(metadata={
        **table_metadata(st, TRIAL_SPLITS_TABLE), "path": dg.MetadataValue.path(str(path)),
        "cutoff": str(used), "counts_by_split": _md_counts(counts), "benchmark_ids_loaded": len(bench),
        "undated_trials_on_test": undated})


def _balance(rows: list[dict]) -> dict[str, dict[str, int]]:
    out: dict[str, Counter] = {}
    for r in rows:
        out.setdefault(f"{r['kind']} / {r['category']}", Counter())[f"answer {r['answer']}"] += 1
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


@dg.asset(group_name=GROUP, deps=[*TRIAL_TABLES, trial_splits], kinds={"parquet"})
def historical_questions(context: dg.AssetExecutionContext, config: QuestionsConfig,
                         store: StoreResource) -> dg.MaterializeResult:
    """CT Open-style questions answered by posted analyses (safety counts without one: by a computed Fisher test,
    pairs.computed): superiority and comparative (label_kind direction) and
    endpoint met (label_kind benefit, or significance where no arm is a control), each with its evidence; every label
    is defined in deepimagine_core.pairs.historical and the README's "Labels" table."""
    st = store.get()
    splits = split_map(st.read_table(TRIAL_SPLITS_TABLE))
    table, skips = build_questions(read_tables(st), alpha=config.alpha, splits=splits, progress=True,
                                   comparative=config.comparative.value, computed=config.computed.value)
    path = st.write_table(HISTORICAL_QUESTIONS_TABLE, table, HISTORICAL_QUESTIONS)
    rows = table.select(["kind", "label_kind", "category", "answer", "split", "significance_source"]).to_pylist()
    by_kind = dict(Counter(f"{r['kind']} ({r['label_kind']})" for r in rows))
    context.log.info(f"historical questions: {table.num_rows} ({by_kind}); skipped {sum(skips.values())} by reason "
                     f"{skips}")
    examples = table.slice(0, min(table.num_rows, 2000)).to_pylist()[::max(1, min(table.num_rows, 2000) // 5)][:5]
    return dg.MaterializeResult(metadata={
        **table_metadata(st, HISTORICAL_QUESTIONS_TABLE), "path": dg.MetadataValue.path(str(path)),
        "alpha": config.alpha, "comparative": config.comparative.value, "computed": config.computed.value,
        "by_kind": _md_counts(by_kind),
        "by_evidence": _md_counts(dict(Counter(r["significance_source"] for r in rows))),  # p-value | CI | computed
        "by_split": _md_counts(counts_by_split(table)),
        "label_balance": dg.MetadataValue.json(_balance(rows)), "skip_counts": _md_counts(skips),
        "trials_with_questions": len(set(table.column("nct_id").to_pylist())),
        "examples": dg.MetadataValue.md("\n\n".join(render_question(r) for r in examples) or "_(none)_"),
        **_why_empty(why_no_questions(table.num_rows, len(splits), skips))})


@dg.asset(group_name=GROUP, deps=[*TRIAL_TABLES], kinds={"parquet"})
def question_skips(context: dg.AssetExecutionContext, config: QuestionsConfig,
                   store: StoreResource) -> dg.MaterializeResult:
    """Every posted analysis that yields no historical question, with a reason code (deepimagine_core.pairs.comparisons
    SKIP_REASONS) and detail, so coverage is auditable; the counts per reason are in the metadata."""
    st = store.get()
    questions, table, _ = build_question_tables(read_tables(st), alpha=config.alpha, progress=True,
                                                  comparative=config.comparative.value,
                                                  computed=config.computed.value)
    path = st.write_table(QUESTION_SKIPS_TABLE, table, QUESTION_SKIPS)
    counts = dict(Counter(table.column("reason").to_pylist()).most_common())
    used = len(set(zip(*(questions.column(c).to_pylist() for c in ("nct_id", "outcome_index")))))
    context.log.info(f"question skips: {table.num_rows} analyses yield no question, by reason {counts}")
    return dg.MaterializeResult(metadata={
        **table_metadata(st, QUESTION_SKIPS_TABLE), "path": dg.MetadataValue.path(str(path)),
        "counts_by_reason": _md_counts(counts), "outcomes_with_questions": used,
        "reasons": dg.MetadataValue.md("\n".join(f"- `{k}`: {v}" for k, v in SKIP_REASONS.items()))})


@dg.asset(group_name=GROUP, deps=[*TRIAL_TABLES, trial_splits], kinds={"parquet"})
def natural_pairs(context: dg.AssetExecutionContext, config: NaturalPairsConfig,
                  store: StoreResource) -> dg.MaterializeResult:
    """Same-trial pairs differing in one factor: arm (incl. dose-ranging, low → high) and outcome (see
    deepimagine_core.pairs.natural)."""
    st = store.get()
    splits = split_map(st.read_table(TRIAL_SPLITS_TABLE))
    cfg = NaturalConfig(**config.model_dump())
    table, stats = build_natural_pairs(read_tables(st), splits=splits, config=cfg, progress=True)
    path = st.write_table(NATURAL_PAIRS_TABLE, table, NATURAL_PAIRS)
    context.log.info(f"natural pairs: {stats}")
    sample = table.filter(table.column("is_dose_ranging")).slice(0, 3).to_pylist() if table.num_rows else []
    sample += table.slice(0, 2).to_pylist() + table.slice(max(0, table.num_rows - 2), 2).to_pylist()
    examples = "\n".join(f"- **{r['factor']}**{' (dose-ranging)' if r['is_dose_ranging'] else ''} {r['pair_id']}: "
                         f"{r['difference']} — {r['source_value']} → {r['target_value']} "
                         f"({r['change_direction']}, {r['change_band']})" for r in sample)
    return dg.MaterializeResult(metadata={
        **table_metadata(st, NATURAL_PAIRS_TABLE), "path": dg.MetadataValue.path(str(path)),
        "counts": _md_counts(stats), "by_split": _md_counts(counts_by_split(table)),
        "change_directions": _md_counts(dict(Counter(table.column("change_direction").to_pylist()))),
        **_why_empty(why_no_natural_pairs(stats, len(splits))),
        "examples": dg.MetadataValue.md(examples or "_(none)_")})


@dg.asset(group_name=GROUP, deps=[TRIALS_TABLE, INTERVENTIONS_TABLE, ARM_GROUPS_TABLE], kinds={"python"})
def retrieval_index(context: dg.AssetExecutionContext, store: StoreResource) -> dg.MaterializeResult:
    """TF-IDF index over trials (fields: title, conditions, interventions, eligibility, design tokens), saved to
    <store>/indexes/trials; load it with `deepimagine_core.pairs.retrieval.TextIndex.load`."""
    st = store.get()
    tables = read_tables(st, (TRIALS_TABLE, INTERVENTIONS_TABLE, ARM_GROUPS_TABLE))
    profiles = trial_profiles(tables, ApproxConfig().eligibility_chars)
    index = build_trial_index(profiles, ApproxConfig())
    path = index.save(index_path(st))
    context.log.info(f"retrieval index: {len(index)} trials, fields {index.fields}, saved to {path}")
    preview = ""
    if len(index) > 1:
        hits = index.search([profiles.docs[0]], k=3, exclude_ids=[profiles.ids[0]])[0]
        preview = f"neighbours of {profiles.ids[0]}: " + ", ".join(f"{i} ({s:.2f})" for i, s in hits)
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(path)), "documents": len(index), "fields": ", ".join(index.fields),
        "example": preview or "(too few trials)"})


@dg.asset(group_name=GROUP, deps=[retrieval_index, trial_splits, TRIALS_TABLE, INTERVENTIONS_TABLE, ARM_GROUPS_TABLE],
          kinds={"parquet"})
def approximate_pairs(context: dg.AssetExecutionContext, config: ApproximatePairsConfig,
                      store: StoreResource) -> dg.MaterializeResult:
    """Cross-trial pairs alike in everything but one factor (intervention, population, geography, design), from the
    retrieval index's top-k per factor view (see deepimagine_core.pairs.approximate)."""
    st = store.get()
    cfg = ApproxConfig(**config.model_dump())
    profiles = trial_profiles(read_tables(st, (TRIALS_TABLE, INTERVENTIONS_TABLE, ARM_GROUPS_TABLE)),
                              cfg.eligibility_chars)
    index = TextIndex.load(index_path(st))
    if index.ids != profiles.ids:
        raise dg.Failure("the retrieval index is older than the trial tables (its trial ids differ): "
                         "materialise retrieval_index again")
    table, stats = build_approximate_pairs(profiles, index, split_map(st.read_table(TRIAL_SPLITS_TABLE)), cfg,
                                           log=context.log.info)
    # the tolerances travel with the table, so the single-factor check recomputes with the same ones
    schema = APPROXIMATE_PAIRS.with_metadata({**APPROXIMATE_PAIRS.metadata,
                                              b"approx_config": json.dumps(dataclasses.asdict(cfg))})
    path = st.write_table(APPROXIMATE_PAIRS_TABLE, table, schema)
    context.log.info(f"approximate pairs: {stats}")
    examples = [table.filter(pc.equal(table.column("factor"), f)).slice(0, 1).to_pylist()
                for f in ("intervention", "population", "geography", "design")]
    return dg.MaterializeResult(metadata={
        **table_metadata(st, APPROXIMATE_PAIRS_TABLE), "path": dg.MetadataValue.path(str(path)),
        "counts": _md_counts(stats), "by_split": _md_counts(counts_by_split(table)),
        "examples": dg.MetadataValue.md("\n".join(render_pair(r[0]) for r in examples if r) or "_(none)_"),
        **_why_empty(why_no_approximate_pairs(stats, len(profiles.ids)))})


@dg.asset(group_name=GROUP, deps=[historical_questions, natural_pairs, approximate_pairs], kinds={"parquet"})
def pair_datasets(context: dg.AssetExecutionContext, store: StoreResource) -> dg.MaterializeResult:
    """Hugging Face dataset exports (Parquet, `datasets` save_to_disk folder and a dataset card each) of the questions
    and both pair tables, under <store>/datasets/."""
    st = store.get()
    written = export_datasets(st, (HISTORICAL_QUESTIONS_TABLE, NATURAL_PAIRS_TABLE, APPROXIMATE_PAIRS_TABLE),
                              log=context.log.info)
    return dg.MaterializeResult(metadata={
        "datasets": dg.MetadataValue.json({name: info for name, info in written.items()}),
        "path": dg.MetadataValue.path(str(st.path("datasets")))})
