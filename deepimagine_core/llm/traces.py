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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
from tqdm.auto import tqdm

from deepimagine_core.llm.backends import Backend, SamplingParams
from deepimagine_core.llm.parsing import parse_step
from deepimagine_core.llm.prompts import clip, describe_arm, step_messages, template_id, trace_messages

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

DIRECTIONS = ("up", "down", "same")
# what a natural pair's change_direction measures: target value minus source value, whatever the outcome's polarity
PAIR_QUANTITY = "the reported value of the outcome (the number itself, not whether it is better)"
# natural pairs' change_band -> the step format's SIZE; "same" has no size to check
_SIZE_BANDS = {"negligible": "small", "small": "small", "moderate": "moderate", "large": "large"}


@dataclass(frozen=True)
class PairView:
    """What a trace prompt needs from one `natural_pairs` row."""

    pair_id: str
    factor: str
    split: str
    source: str  # configuration C, described
    target: str  # configuration C'
    change: str  # the one thing that differs, in plain words
    source_result: str
    target_result: str
    direction: str  # observed: up | down | same
    size: str | None  # observed size band in the step format's words (small | moderate | large), when known
    negligible: bool  # the change is under 5%: "same" is an acceptable answer too
    quantity: str  # what DIRECTION refers to


def _first(row: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    for name in names:
        value = row.get(name)
        if value not in (None, ""):
            return value
    return default


def _loads(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _flat(value: Any) -> str:
    """Any leftover value as readable text: dicts as `key: value; ...`, lists comma-joined, empties dropped."""
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flat(v)}" for k, v in value.items() if v not in (None, "", [], {}))
    if isinstance(value, (list, tuple)):
        return ", ".join(_flat(v) for v in value if v not in (None, "", [], {}))
    return str(value)


def describe_pair_context(value: Any) -> str:
    """A natural-pair context (JSON of `deepimagine_core.pairs.natural`: trial, arm, group, dose, outcome,
    class/category) as prompt lines; plain text is returned as it is."""
    ctx = _loads(value)
    if not isinstance(ctx, dict):
        return _flat(ctx)
    lines = []
    trial = " ".join(x for x in (clip(ctx.get("brief_title"), 200), f"({ctx['nct_id']})" if ctx.get("nct_id") else "")
                     if x)
    extras = [f"conditions: {_flat(ctx['conditions'])}" if ctx.get("conditions") else "",
              f"phases: {_flat(ctx['phases'])}" if ctx.get("phases") else ""]
    if trial or any(extras):
        lines.append("; ".join(x for x in [f"Trial: {trial}" if trial else "", *extras] if x))
    if isinstance(arm := ctx.get("arm"), dict):
        lines.append("Arm: " + describe_arm(arm).removeprefix("- "))
    if isinstance(group := ctx.get("group"), dict) and (group.get("title") or group.get("description")):
        lines.append("Group: " + "; ".join(clip(x, 200) for x in (group.get("title"), group.get("description")) if x))
    if isinstance(dose := ctx.get("dose"), dict):
        text = dose.get("text") or " ".join(
            x for x in (_flat(dose.get("values")), dose.get("unit"), dose.get("frequency"), dose.get("route")) if x)
        if text:
            lines.append(f"Dose: {text}")
    if isinstance(outcome := ctx.get("outcome"), dict):
        head = " ".join(x for x in (clip(outcome.get("title"), 200),
                                    f"[{outcome['time_frame']}]" if outcome.get("time_frame") else "") if x)
        kind = ", ".join(x for x in (outcome.get("type"), outcome.get("param_type"),
                                     f"unit {outcome['unit']}" if outcome.get("unit") else "") if x)
        desc = clip(outcome.get("description"), 200)
        lines.append("Outcome: " + "; ".join(x for x in (head, f"({kind})" if kind else "", desc) if x))
    cell = " / ".join(str(x) for x in (ctx.get("class_title"), ctx.get("category_title")) if x)
    if cell:
        lines.append(f"Result cell: {cell}")
    known = {"nct_id", "brief_title", "conditions", "phases", "arm", "group", "dose", "outcome", "class_title",
             "category_title"}
    if rest := _flat({k: v for k, v in ctx.items() if k not in known}):
        lines.append(rest)
    return "\n".join(lines)


def describe_pair_result(value: Any) -> str:
    """A natural-pair result (JSON: value, dispersion, limits, n, param type, unit) as one line."""
    res = _loads(value)
    if not isinstance(res, dict):
        return _flat(res)
    if res.get("value") is None:
        return _flat(res)
    value = f"{res['value']:g}" if isinstance(res["value"], (int, float)) else res["value"]
    text = " ".join(str(x) for x in (res.get("param_type"), value, res.get("unit")) if x not in (None, ""))
    spread = []
    if res.get("dispersion") is not None:
        spread.append(f"{res.get('dispersion_type') or 'dispersion'} {res['dispersion']:g}")
    if res.get("lower") is not None and res.get("upper") is not None:
        spread.append(f"limits {res['lower']:g} to {res['upper']:g}")
    if res.get("n") is not None:
        spread.append(f"n = {res['n']}")
    return f"{text} ({'; '.join(spread)})" if spread else text


def normalise_direction(value: Any) -> str | None:
    direction = str(value or "").strip().lower()
    return direction if direction in DIRECTIONS else None


def pair_view(row: Mapping[str, Any]) -> PairView:
    """Read one natural pair; raises ValueError naming the missing fields (the caller counts it as skipped)."""
    fields = {
        "pair_id": _first(row, "pair_id"),
        "factor": _first(row, "factor"),
        "source": _first(row, "source_context"),
        "target": _first(row, "target_context"),
        "change": _first(row, "difference"),
        "source_result": _first(row, "source_result"),
        "target_result": _first(row, "target_result"),
        "change_direction": normalise_direction(row.get("change_direction")),
    }
    missing = sorted(k for k, v in fields.items() if v is None)
    if missing:
        raise ValueError(f"natural pair {fields['pair_id'] or '?'} lacks {', '.join(missing)}")
    band = str(row.get("change_band") or "").strip().lower()
    return PairView(
        pair_id=str(fields["pair_id"]),
        factor=str(fields["factor"]),
        split=str(_first(row, "split", default="")),
        source=describe_pair_context(fields["source"]),
        target=describe_pair_context(fields["target"]),
        change=str(fields["change"]),
        source_result=describe_pair_result(fields["source_result"]),
        target_result=describe_pair_result(fields["target_result"]),
        direction=fields["change_direction"],
        size=_SIZE_BANDS.get(band),
        negligible=band == "negligible",
        quantity=PAIR_QUANTITY,
    )


def verdict(stated_direction: str | None, stated_size: str | None, pair: PairView) -> tuple[str, bool | None]:
    """(verdict, size_match): accepted only when the direction matches, and the size band too when it is known.
    "same" has no size to check; it also matches a negligible (< 5%) observed change."""
    if stated_direction is None:
        return "unparsed", None
    if stated_direction == "same" and pair.negligible:
        return "accepted", None
    if stated_direction != pair.direction:
        return "wrong_direction", None
    if pair.size is None or pair.direction == "same":
        return "accepted", None
    size_match = stated_size == pair.size
    return ("accepted" if size_match else "wrong_size"), size_match


def trace_prompts(pair: PairView) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(teacher prompt with the observed result of C', operator step prompt without it)."""
    common = dict(factor=pair.factor, source=pair.source, current_result=pair.source_result, change=pair.change,
                  target=pair.target, quantity=pair.quantity)
    return (
        trace_messages(observed_result=pair.target_result, **common),
        step_messages(imagined=False, **common),
    )


def pair_step_messages(row: Mapping[str, Any]) -> list[dict[str, str]]:
    """The operator's step prompt for one natural pair (no observed result of C'): what SFT trains on, worded
    exactly as the trace it is paired with."""
    return trace_prompts(pair_view(row))[1]


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
    for start in tqdm(range(0, len(pairs), chunk_pairs), desc="reasoning traces", disable=not pairs):
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
