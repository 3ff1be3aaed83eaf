"""Verified reasoning traces: a teacher model explains observed natural-pair transitions; only consistent ones count.

For each TRAINING-split natural pair (table `natural_pairs`) the teacher sees configuration C with its observed result,
the one change, C' and its observed result, and writes a causal explanation ending in the step format (DIRECTION,
SIZE, RESULT, EXPLANATION). A trace is `accepted` only if its stated direction matches the observed change, and its
size band too where the pair has one. Every row keeps the prompt, the trace, the verdict, the model id, the sampling
parameters and the template version; `step_messages` is the same step WITHOUT the observed result of C' (what an
operator is trained to answer), so SFT pairs it with the accepted trace.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
from tqdm.auto import tqdm

from deepimagine_core.llm.backends import Backend, SamplingParams
from deepimagine_core.llm.parsing import parse_step
from deepimagine_core.llm.pair_text import PairView, pair_view, trace_prompts, verdict
from deepimagine_core.llm.prompts import template_id
from deepimagine_core.tables import NATURAL_PAIRS_TABLE, REASONING_TRACES_TABLE

TRACES_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),  # "<pair_id>#<sample>"
        ("pair_id", pa.string()),
        ("factor", pa.string()),
        ("split", pa.string()),
        ("sample_index", pa.int64()),
        ("model_id", pa.string()),
        ("adapter", pa.string()),
        ("template", pa.string()),
        ("sampling_params", pa.string()),  # JSON of SamplingParams
        ("prompt", pa.string()),  # JSON chat messages shown to the teacher
        ("step_messages", pa.string()),  # JSON chat messages of the step without the observed answer (for SFT)
        ("trace", pa.string()),
        ("parsed", pa.bool_()),
        ("stated_direction", pa.string()),
        ("stated_size", pa.string()),
        ("observed_direction", pa.string()),
        ("observed_size", pa.string()),
        ("direction_match", pa.bool_()),
        ("size_match", pa.bool_()),  # null when the pair has no size band
        ("accepted", pa.bool_()),
        ("verdict", pa.string()),  # accepted | wrong_direction | wrong_size | unparsed
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("finish_reason", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)

@dataclass
class PairSelection:
    """The training-split pairs still to trace, and how many others were left out and why."""

    todo: list[PairView]
    pairs_done_before: int = 0
    pairs_not_train: int = 0
    pairs_over_limit: int = 0
    pairs_invalid: dict[str, int] = field(default_factory=dict)  # missing fields -> count

    def counts(self) -> dict[str, Any]:
        return {
            "pairs_to_trace": len(self.todo),
            "pairs_done_before": self.pairs_done_before,
            "pairs_not_train": self.pairs_not_train,
            "pairs_over_limit": self.pairs_over_limit,
            "pairs_invalid": sum(self.pairs_invalid.values()),
            "pairs_invalid_reasons": dict(self.pairs_invalid),
        }


def select_pairs(pairs_table: pa.Table, done_ids: Iterable[str] = (), max_pairs: int | None = None) -> PairSelection:
    """Training-split pairs not in `done_ids`, at most `max_pairs`; unreadable pairs are counted by reason."""
    done = set(map(str, done_ids))
    sel = PairSelection(todo=[])
    invalid: Counter[str] = Counter()
    for row in pairs_table.to_pylist():
        if str(row.get("split")) != "train":
            sel.pairs_not_train += 1
        elif str(row.get("pair_id")) in done:
            sel.pairs_done_before += 1
        else:
            try:
                sel.todo.append(pair_view(row))
            except ValueError as err:
                invalid[str(err).split(" lacks ", 1)[-1]] += 1
    if max_pairs is not None and len(sel.todo) > max_pairs:
        sel.pairs_over_limit = len(sel.todo) - max_pairs
        sel.todo = sel.todo[:max_pairs]
    sel.pairs_invalid = dict(invalid)
    return sel


def trace_pairs(
    pairs: list[PairView],
    backend: Backend,
    n_samples: int,
    params: SamplingParams,
    *,
    chunk_pairs: int = 32,
    adapter: str | None = None,
) -> pa.Table:
    """`n_samples` teacher traces per pair, with their verdicts (rows of `TRACES_SCHEMA`). A data-parallel backend
    (`llm.sharding`) gets `chunk_pairs` pairs per replica per call, split across its workers."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    params = SamplingParams(**{**params.to_dict(), "n": n_samples})
    rows: list[dict[str, Any]] = []
    params_json = json.dumps(params.to_dict(), sort_keys=True)
    now = datetime.now(timezone.utc)
    chunk_pairs *= getattr(backend, "data_parallel_size", 1)
    for start in tqdm(range(0, len(pairs), chunk_pairs), desc="reasoning traces", disable=None if pairs else True):
        chunk = pairs[start : start + chunk_pairs]
        prompts = [trace_prompts(p) for p in chunk]
        outputs = backend.generate([teacher for teacher, _ in prompts], params, adapter=adapter)
        for pair, (teacher, step), gens in zip(chunk, prompts, outputs):
            for i, gen in enumerate(gens):
                rows.append(_trace_row(pair, i, gen, teacher, step, backend.model_id, adapter, params_json, now))
    return pa.Table.from_pylist(rows, schema=TRACES_SCHEMA)


def _trace_row(pair: PairView, i: int, gen, teacher, step, model_id, adapter, params_json, now) -> dict[str, Any]:
    stated = parse_step(gen.text)
    label, size_match = verdict(stated.direction, stated.size, pair)
    return {
        "trace_id": f"{pair.pair_id}#{i}",
        "pair_id": pair.pair_id,
        "factor": pair.factor,
        "split": pair.split,
        "sample_index": i,
        "model_id": model_id,
        "adapter": adapter,
        "template": template_id("trace"),
        "sampling_params": params_json,
        "prompt": json.dumps(teacher),
        "step_messages": json.dumps(step),
        "trace": gen.text,
        "parsed": stated.parsed,
        "stated_direction": stated.direction,
        "stated_size": stated.size,
        "observed_direction": pair.direction,
        "observed_size": pair.size,
        "direction_match": label in ("accepted", "wrong_size"),  # "same" also matches a negligible change
        "size_match": size_match,
        "accepted": label == "accepted",
        "verdict": label,
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "finish_reason": gen.finish_reason,
        "created_at": now,
    }


TRACE_KEY = ("trace_id", "model_id", "adapter", "template")  # one trace: pair#sample, by one teacher and template


def merge_traces(existing: pa.Table, new: pa.Table) -> tuple[pa.Table, int]:
    """`existing` followed by the rows of `new` whose `TRACE_KEY` it does not hold yet (nor an earlier row of `new`),
    and how many rows were dropped as duplicates: merging the same traces twice, or the overlapping outputs of two
    workers or of a re-run, never duplicates a trace. Both tables are brought to `TRACES_SCHEMA`."""
    tables = [t.select(TRACES_SCHEMA.names).cast(TRACES_SCHEMA) for t in (existing, new)]
    combined = pa.concat_tables(tables)
    seen: set[tuple] = set()
    keep = []
    for i, key in enumerate(zip(*(combined[c].to_pylist() for c in TRACE_KEY))):
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return combined.take(pa.array(keep, pa.int64())), combined.num_rows - len(keep)  # typed: `keep` may be empty


def generate_traces(
    pairs_table: pa.Table,
    backend: Backend,
    n_samples: int,
    params: SamplingParams,
    done_ids: Iterable[str] = (),
    *,
    max_pairs: int | None = None,
    adapter: str | None = None,
) -> pa.Table:
    """Traces for the training-split pairs of `pairs_table` not in `done_ids` (see `select_pairs`, which also
    reports what was left out and why)."""
    selection = select_pairs(pairs_table, done_ids, max_pairs)
    return trace_pairs(selection.todo, backend, n_samples, params, adapter=adapter)


def acceptance_by_factor(table: pa.Table) -> dict[str, dict[str, float]]:
    """Per factor: traces, accepted, acceptance rate, parse rate, and pairs with at least one accepted trace."""
    stats: dict[str, dict[str, Any]] = defaultdict(lambda: {"traces": 0, "accepted": 0, "parsed": 0, "pairs": set(),
                                                            "pairs_accepted": set()})
    for row in table.select(["factor", "pair_id", "accepted", "parsed"]).to_pylist():
        s = stats[row["factor"]]
        s["traces"] += 1
        s["accepted"] += bool(row["accepted"])
        s["parsed"] += bool(row["parsed"])
        s["pairs"].add(row["pair_id"])
        if row["accepted"]:
            s["pairs_accepted"].add(row["pair_id"])
    return {
        factor: {
            "traces": s["traces"],
            "accepted": s["accepted"],
            "acceptance_rate": s["accepted"] / s["traces"],
            "parse_rate": s["parsed"] / s["traces"],
            "pairs": len(s["pairs"]),
            "pairs_with_accepted_trace": len(s["pairs_accepted"]),
        }
        for factor, s in sorted(stats.items())
    }


def contract_violations(traces: pa.Table, pairs: pa.Table) -> dict[str, int]:
    """Counts of rows breaking the table's contracts (all 0 when sound): traces of pairs that are not in the
    training split now (a leak into training data), of pairs that no longer exist, and accepted traces whose stated
    direction does not match the observed one."""
    split = dict(zip(pairs["pair_id"].to_pylist(), pairs["split"].to_pylist()))
    rows = traces.select(["pair_id", "accepted", "direction_match"]).to_pylist()
    return {
        "traces_of_non_train_pairs": sum(1 for r in rows if split.get(r["pair_id"], "train") != "train"),
        "traces_of_unknown_pairs": sum(1 for r in rows if r["pair_id"] not in split),
        "accepted_without_direction_match": sum(1 for r in rows if r["accepted"] and not r["direction_match"]),
    }


# ---- one run of the `reasoning_traces` asset ------------------------------------------------------------------------

TINY_MAX_NEW_TOKENS = 32  # the tiny teacher writes noise: longer traces would only cost time
TINY_MAX_PAIRS = 64  # likewise, a tiny teacher traces a few pairs per run (the offline default stays quick)


@dataclass
class TracesRun:
    """What one `extend_traces` call did: the whole table now, the new rows, the pair counts and the settings used."""

    table: pa.Table
    new: pa.Table
    counts: dict[str, Any]
    params: SamplingParams
    duplicates: int
    notes: list[str] = field(default_factory=list)


def extend_traces(store, backend: Backend, params: SamplingParams, n_samples: int, max_pairs: int | None, *,
                  tiny: bool = False, log=None) -> TracesRun:
    """Trace the training-split natural pairs not yet traced by this teacher and template, append them to table
    `reasoning_traces` (never duplicating a trace) and return what was done. A `tiny` teacher traces at most
    `TINY_MAX_PAIRS` pairs with at most `TINY_MAX_NEW_TOKENS` tokens (its text is noise)."""
    log = log or (lambda _line: None)
    pairs = store.read_table(NATURAL_PAIRS_TABLE)
    existing = (store.read_table(REASONING_TRACES_TABLE) if store.has_table(REASONING_TRACES_TABLE)
                else TRACES_SCHEMA.empty_table()).select(TRACES_SCHEMA.names).cast(TRACES_SCHEMA)
    notes = []
    if tiny and not 0 < (max_pairs or 0) <= TINY_MAX_PAIRS:
        max_pairs = TINY_MAX_PAIRS
        notes.append(f"tiny teacher: at most {TINY_MAX_PAIRS} new pairs per run")
    if tiny and params.max_new_tokens > TINY_MAX_NEW_TOKENS:
        params = SamplingParams(**{**params.to_dict(), "max_new_tokens": TINY_MAX_NEW_TOKENS})
        notes.append(f"tiny teacher: max_new_tokens capped at {TINY_MAX_NEW_TOKENS}")
    done = {r["pair_id"] for r in existing.select(["pair_id", "model_id", "template"]).to_pylist()
            if r["model_id"] == backend.model_id and r["template"] == template_id("trace")}
    selection = select_pairs(pairs, done, max_pairs or None)
    counts = selection.counts()
    for line in notes + [f"natural_pairs: {pairs.num_rows} rows; {counts}"]:
        log(line)
    new = trace_pairs(selection.todo, backend, n_samples, params)
    log(f"{new.num_rows} new traces for {len(selection.todo)} pairs with {backend.model_id}")
    table, duplicates = merge_traces(existing, new)  # a re-run or overlapping workers never duplicate a trace
    store.write_table(REASONING_TRACES_TABLE, table, TRACES_SCHEMA)
    return TracesRun(table, new, counts, SamplingParams(**{**params.to_dict(), "n": n_samples}), duplicates, notes)
