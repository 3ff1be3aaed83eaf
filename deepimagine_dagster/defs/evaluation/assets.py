"""Assets `ct_open_benchmark` and `evaluation_report`. Thin: the work is in `deepimagine_core.evaluation`."""


import json
from collections import Counter, defaultdict

import dagster as dg
import pyarrow as pa

from deepimagine_core.evaluation.ct_open import load_benchmarks
from deepimagine_core.evaluation.predictors import available_predictors, load_plugins
from deepimagine_core.evaluation.report import markdown_table, run_predictors, summary_table, write_report
from deepimagine_core.questions import CATEGORIES, Question
from deepimagine_core.store import Store
from deepimagine_core.tables import CT_OPEN_TABLE, HISTORICAL_QUESTIONS_TABLE
from deepimagine_dagster.resources import ENV_CT_OPEN, CTOpenResource, LLMBackendResource, StoreResource

GROUP = "evaluation"
HISTORICAL_TEST = "historical_test"

#: One row per CT Open question (Question.to_row() plus the file's benchmark name and its role).
CT_OPEN_QUESTIONS = pa.schema(
    [
        ("benchmark", pa.string()),
        ("role", pa.string()),  # benchmark | training (files the user marks as training data)
        ("nct_id", pa.string()),
        ("endpoint_key", pa.string()),
        ("question_index", pa.int64()),
        ("brief_title", pa.string()),
        ("endpoint", pa.string()),
        ("arms", pa.string()),
        ("meta_label", pa.string()),
        ("options", pa.list_(pa.string())),
        ("answer", pa.int64()),
        ("extra", pa.string()),
        ("category", pa.string()),
    ],
    metadata={"doc": "CT Open questions loaded from the configured files (never copied into the project)."},
)


def _category_counts(questions: list[Question]) -> dict[str, int]:
    counts = Counter(q.category for q in questions)
    return {c: counts[c] for c in CATEGORIES if counts[c]}


@dg.asset(group_name=GROUP, kinds={"parquet"})
def ct_open_benchmark(context: dg.AssetExecutionContext, store: StoreResource, ct_open: CTOpenResource):
    """The CT Open questions of the files named by the `ct_open` resource ($DEEPIMAGINE_CT_OPEN: a file, a
    comma-separated list or a folder), one row per question in table `ct_open_questions`; files marked as training
    (`training_paths`) are kept with role `training`. Empty (and saying so) when no file is configured."""
    st = store.get()
    rows, per_file = [], {}
    for role, spec in (("benchmark", ct_open.paths), ("training", ct_open.training_paths)):
        for name, questions in load_benchmarks(spec or []).items():
            per_file[f"{role}:{name}"] = {
                "questions": len(questions),
                "trials": len({q.nct_id for q in questions}),
                **_category_counts(questions),
            }
            context.log.info(f"CT Open {role} file {name!r}: {per_file[f'{role}:{name}']}")
            rows.extend({**q.to_row(), "benchmark": name, "role": role} for q in questions)
    path = st.write_table(CT_OPEN_TABLE, pa.Table.from_pylist(rows, schema=CT_OPEN_QUESTIONS))
    metadata = {"dagster/row_count": len(rows), "path": dg.MetadataValue.path(str(path))}
    if not per_file:
        note = (
            f"No CT Open files configured: set ${ENV_CT_OPEN} (a file, a comma-separated list or a folder) or the "
            "`ct_open` resource's `paths`. The evaluation report will score the historical test split only."
        )
        context.log.warning(note)
        metadata["note"] = dg.MetadataValue.md(note)
    else:
        header = ["file", "questions", "trials", *CATEGORIES]
        table = [[k, *(str(v.get(c, 0)) for c in header[1:])] for k, v in per_file.items()]
        metadata["files"] = dg.MetadataValue.md(markdown_table(header, table))
    return dg.MaterializeResult(metadata=metadata)


BASELINES = ["majority", "logreg", "random_forest", "knn_history", "ensemble"]
LLM_PREDICTORS = ["llm_direct", "llm_rag", "deepimagine"]
TINY_LLM_MAX_QUESTIONS = 48  # the tiny model's answers are noise: score it on a sample, so the default run stays quick
TINY_PATHWAY_MAX_QUESTIONS = 16  # the pathway asks 7 anchors x up to 7 steps per question: a smaller sample still


class EvaluationConfig(dg.Config):
    predictors: list[str] = BASELINES + LLM_PREDICTORS
    trained_predictors: bool = True  # add deepimagine_sft / llm_direct_grpo when their adapters are published
    llm_max_questions: int = 0  # LLM predictors score at most this many questions per benchmark; 0 = all
    bootstrap_samples: int = 1000
    seed: int = 0
    alpha: float = 0.05
    predictor_options: str = ""  # JSON {predictor: {keyword: value}}, e.g. {"knn_history": {"k": 30}}


def historical_split(st: Store) -> tuple[list[Question], list[Question], dict[str, int]]:
    """(train, test, counts per split) of `historical_questions` by its `split` column (other sides, e.g.
    `benchmark`, are not used); a clear Failure when the table is absent or has no training questions."""
    if not st.has_table(HISTORICAL_QUESTIONS_TABLE):
        raise dg.Failure(
            "no historical questions: table `historical_questions` has not been built "
            f"(expected {st.table_path(HISTORICAL_QUESTIONS_TABLE)}); materialise it first (job build_pairs)"
        )
    table = st.read_table(HISTORICAL_QUESTIONS_TABLE)
    if table.num_rows == 0:
        raise dg.Failure("no historical questions: table `historical_questions` is empty (the trial tables hold no "
                         "two-group analyses to ask about?)")
    split_of = table.column("split").to_pylist() if "split" in table.column_names else [None] * table.num_rows
    train, test = [], []
    for row, split in zip(table.to_pylist(), split_of):
        q = Question.from_row(row)
        split = split or q.extra.get("split")
        (train if split == "train" else test if split == "test" else []).append(q)
    if not train:
        raise dg.Failure(f"no historical questions in split 'train' ({dict(Counter(split_of))})")
    return train, test, dict(Counter(split_of))


def ct_open_from_table(st: Store) -> tuple[dict[str, list[Question]], list[Question]]:
    """({benchmark: questions}, CT Open training questions) from `ct_open_questions`."""
    benchmarks: dict[str, list[Question]] = defaultdict(list)
    training: list[Question] = []
    if not st.has_table(CT_OPEN_TABLE):
        return {}, []
    for row in st.read_table(CT_OPEN_TABLE).to_pylist():
        q = Question.from_row(row)
        (benchmarks[row["benchmark"]] if row["role"] == "benchmark" else training).append(q)
    return dict(benchmarks), training


@dg.asset(
    group_name=GROUP,
    # the trained operators are optional inputs: the report uses whatever adapters are published when it runs
    deps=[HISTORICAL_QUESTIONS_TABLE, ct_open_benchmark, "sft_operators", "rl_operators", "grpo_policy"],
    kinds={"python"},
    op_tags={"deepimagine/gpu": "true"},
    pool="gpu",
)
def evaluation_report(
    context: dg.AssetExecutionContext, config: EvaluationConfig, store: StoreResource, llm: LLMBackendResource
):
    """Every predictor on every benchmark (each CT Open file, and the historical test split), scored with CT Open's
    official metric and trial-bootstrap intervals: reports/evaluation.json, report.md/html, figures, predictions."""
    st = store.get()
    train, test, split_counts = historical_split(st)
    context.log.info(f"historical questions per split: {split_counts} (train fits the predictors, test is a benchmark)")
    benchmarks, ct_train = ct_open_from_table(st)
    if test:
        benchmarks[HISTORICAL_TEST] = test
    if not benchmarks:
        raise dg.Failure("nothing to evaluate: no CT Open benchmark configured and no historical test questions")
    try:
        options = json.loads(config.predictor_options) if config.predictor_options.strip() else {}
    except json.JSONDecodeError as exc:
        raise dg.Failure(f"predictor_options is not valid JSON: {exc}") from exc
    load_plugins()
    predictors = list(config.predictors)
    if config.trained_predictors and any(p in LLM_PREDICTORS for p in predictors):
        from deepimagine_core.training.adapters import trained_predictor_options

        for name, kwargs in trained_predictor_options(st).items():
            options.setdefault(name, {}).update(kwargs)
            predictors += [name] if name not in predictors else []
    llm_names = [p for p in predictors if p in LLM_PREDICTORS or p in ("deepimagine_sft", "llm_direct_grpo")]
    limits = {}
    if llm_names:
        backend = llm.get(st)
        for name in llm_names:  # one backend (one loaded model) for every LLM predictor
            options.setdefault(name, {}).update(backend=backend, store=st)
        from deepimagine_core.llm.backends import is_tiny

        cap = config.llm_max_questions or (TINY_LLM_MAX_QUESTIONS if is_tiny(backend) else 0)
        limits = {name: cap for name in llm_names} if cap else {}
        if is_tiny(backend) and not config.llm_max_questions:
            limits.update({n: TINY_PATHWAY_MAX_QUESTIONS for n in llm_names if n.startswith("deepimagine")})
    unknown = [p for p in predictors if p not in available_predictors()]
    if unknown:
        raise dg.Failure(f"unknown predictors {unknown}; registered: {available_predictors()}")
    exclude = {q.nct_id for name, qs in benchmarks.items() if name != HISTORICAL_TEST for q in qs}
    context.log.info(
        f"evaluating {predictors} on {[(k, len(v)) for k, v in benchmarks.items()]}; "
        f"training on {len(train)} historical questions" + (f" and separately {len(ct_train)} CT Open" if ct_train else "")
    )
    results = run_predictors(
        benchmarks,
        train,
        predictors,
        extra_training={"ct_open_train": ct_train} if ct_train else None,
        predictor_kwargs=options,
        exclude_nct_ids=exclude,
        n_bootstrap=config.bootstrap_samples,
        seed=config.seed,
        alpha=config.alpha,
        log=context.log.info,
        question_limits=limits,
    )
    files = write_report(st.path("reports"), results)
    context.log.info(f"report written to {files.root}: {len(files.predictions)} prediction files, {len(files.figures)} figures")
    tables = []
    for bench, scores in results.as_json().items():
        header, rows = summary_table(scores)
        tables.append(f"**{bench}**\n\n" + markdown_table(header, rows))
    metadata: dict = {
        "figures": dg.MetadataValue.md("\n\n".join(tables)),
        "report": dg.MetadataValue.md(files.markdown_embedded),
        "evaluation_json": dg.MetadataValue.path(str(files.evaluation_json)),
        "report_markdown": dg.MetadataValue.path(str(files.markdown)),
        "report_html": dg.MetadataValue.path(str(files.html)),
        "predictions": dg.MetadataValue.path(str(files.root / "predictions")),
        "training_questions": len(train),
    }
    for bench, scores in results.as_json().items():
        for label, s in scores.items():
            metadata[f"{bench}/{label}/weighted_accuracy"] = float(s["overall"]["weighted_accuracy"])
    return dg.MaterializeResult(metadata=metadata)
