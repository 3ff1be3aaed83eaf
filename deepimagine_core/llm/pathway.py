"""The stepwise imagination pathway: DeepImagine's prediction procedure.

For a target question: retrieve k anchors (default 7 historical questions whose result is known, each from another
trial), and for each anchor
1. list the factors whose value differs between the anchor's configuration and the target's, in a configurable order
   (default intervention → arm → outcome → population → geography → design; matching or unknown factors skipped);
2. chain local counterfactual steps in the shared step format (`llm.steps`, the format the operators are trained
   on): each changes ONE factor and asks the model for the new result, carried forward as the next step's (imagined)
   current result; a factor's step uses its family's operator (`factors.factor_adapters`) when one is given;
3. ask the target question given the imagined path (`DECISION` probabilities).
The anchors' probabilities are aggregated (mean by default, or weighted by similarity). Every trajectory — each
step's factor, input and output — is returned as a plain dict so callers store it.

Generation is batched across all questions and anchors: step t of every trajectory goes to the backend in one call per
adapter (per-factor LoRA operators, when given, are applied to their factor's steps).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tqdm.auto import tqdm

from deepimagine_core.llm.backends import Backend, SamplingParams
from deepimagine_core.llm.factors import DEFAULT_ORDER, configuration_of, plan_changes
from deepimagine_core.llm.parsing import ParseCounter, parse_decision, parse_step
from deepimagine_core.llm.prompts import answer_messages, clip, direct_messages, known_result, template_id
from deepimagine_core.llm.steps import StepInput, result_numbers, step_messages
from deepimagine_core.questions import Question


class AnchorRetriever(Protocol):
    def retrieve_many(self, questions: Sequence[Question], k: int) -> list[list[Question]]: ...


def anchor_text(q: Question) -> str:
    """What anchors are matched on: title, endpoint and arms (with interventions: a similar drug is a short path)."""
    ep = q.endpoint or {}
    arms = " ".join(
        f"{a.get('label', '')} {a.get('type', '')} {' '.join(map(str, a.get('interventionNames') or []))}"
        for a in q.arms
    )
    return f"{q.brief_title} . {ep.get('measure', '')} {ep.get('timeFrame', '')} . {arms}"


class IndexAnchorRetriever:
    """Anchors = questions with known answers, searched with a text index of interface `fit(ids, texts)`,
    `search(texts, k) -> [[(id, similarity), ...]]` (the pairs retrieval index by default, via the evaluation's
    `default_text_index`). Never
    returns an anchor from the target's own trial, and at most one question per anchor trial (the most similar), so k
    anchors are k different trials; `similarities` holds each returned anchor's similarity to its target."""

    def __init__(self, anchors: Sequence[Question], index: Any = None, overfetch: int = 20):
        self.anchors = [a for a in anchors if a.answer is not None]
        if not self.anchors:
            raise ValueError("no anchors with a known answer to retrieve from")
        if index is None:
            from deepimagine_core.pairs.retrieval import TextIndex

            index = TextIndex()
        self.index = index
        self.overfetch = overfetch
        self.similarities: dict[tuple, list[float]] = {}
        self.index.fit([str(i) for i in range(len(self.anchors))], [anchor_text(a) for a in self.anchors])

    def retrieve_many(self, questions: Sequence[Question], k: int) -> list[list[Question]]:
        if not questions:
            return []
        texts = [anchor_text(q) for q in questions]
        fetch = min(len(self.anchors), k * 4 + self.overfetch)
        found: list[tuple[list[Question], list[float]]] = [([], [])] * len(questions)
        todo = list(range(len(questions)))
        while todo:  # many questions share a trial: search deeper until k distinct trials (or every anchor) are seen
            hits = self.index.search([texts[i] for i in todo], fetch)
            found_now = {i: self._distinct(questions[i], row, k) for i, row in zip(todo, hits)}
            found = [found_now.get(i, f) for i, f in enumerate(found)]
            if fetch >= len(self.anchors):
                break
            todo = [i for i in todo if len(found[i][0]) < k]
            fetch = min(len(self.anchors), fetch * 4)
        for q, (_, sims) in zip(questions, found):
            self.similarities[q.key] = sims
        return [chosen for chosen, _ in found]

    def _distinct(self, q: Question, row, k: int) -> tuple[list[Question], list[float]]:
        """The first k hits from k different trials, none the target's own, with their similarities."""
        chosen, sims, trials = [], [], {q.nct_id}
        for item in row:
            i, sim = (item[0], item[1]) if isinstance(item, (tuple, list)) else (getattr(item, "id", item), 1.0)
            anchor = self.anchors[int(i)]
            if anchor.nct_id not in trials:
                trials.add(anchor.nct_id)
                chosen.append(anchor)
                sims.append(float(sim))
            if len(chosen) == k:
                break
        return chosen, sims


def mean_probabilities(probs: list[list[float]], weights: list[float] | None = None) -> list[float]:
    return [sum(col) / len(probs) for col in zip(*probs)]


def similarity_weighted(probs: list[list[float]], weights: list[float] | None = None) -> list[float]:
    """Anchors count in proportion to their similarity to the target (the plain mean when none is positive)."""
    w = [max(0.0, x) for x in (weights or [])]
    if len(w) != len(probs) or sum(w) <= 0:
        return mean_probabilities(probs)
    return [sum(p * x for p, x in zip(col, w)) / sum(w) for col in zip(*probs)]


AGGREGATORS: dict[str, Callable[[list[list[float]], list[float] | None], list[float]]] = {
    "mean": mean_probabilities,
    "similarity": similarity_weighted,
}
DEFAULT_K = 7


@dataclass
class PathwayConfig:
    k: int = DEFAULT_K
    order: tuple[str, ...] = DEFAULT_ORDER
    step_params: SamplingParams = field(default_factory=lambda: SamplingParams(temperature=0.0, max_new_tokens=160))
    answer_params: SamplingParams = field(default_factory=lambda: SamplingParams(temperature=0.0, max_new_tokens=160))
    adapters: dict[str, str] = field(default_factory=dict)  # factor -> LoRA folder (`factors.factor_adapters`)
    answer_adapter: str | None = None
    aggregate: str = "mean"  # mean | similarity (weighted by each anchor's similarity)

    def __post_init__(self):
        if self.aggregate not in AGGREGATORS:
            raise ValueError(f"unknown aggregate {self.aggregate!r}; choose from {sorted(AGGREGATORS)}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")


@dataclass
class PathwayResult:
    question: Question
    probabilities: list[float]
    parsed: bool  # at least one anchor's final answer parsed
    text: str  # the final answers, one per anchor
    trajectories: list[dict[str, Any]]


def _ref(q: Question) -> dict[str, Any]:
    return {"nct_id": q.nct_id, "endpoint_key": q.endpoint_key, "question_index": q.question_index}


def _unknown_reason(factor: str, config: dict, q: Question, trials) -> str | None:
    if config.get(factor) is not None:
        return None
    where = "its trials row lacks it" if q.nct_id in trials else "not in the trials table"
    return f"{factor} of {q.nct_id} unknown ({where}, and its question does not give it)"


def _start_trajectory(target: Question, anchor: Question, order, trials, similarity: float | None) -> dict[str, Any]:
    source = configuration_of(anchor, trials.get(anchor.nct_id))
    goal = configuration_of(target, trials.get(target.nct_id))
    changes, skipped = plan_changes(source, goal, order)
    for s in skipped:
        if s["reason"] == "unknown":
            reasons = [_unknown_reason(s["factor"], c, q, trials) for c, q in ((goal, target), (source, anchor))]
            s["why"] = "; ".join(r for r in reasons if r)
    return {
        "question": _ref(target),
        "anchor": _ref(anchor),
        "anchor_similarity": similarity,
        "anchor_result": known_result(anchor),
        "target_in_trials": target.nct_id in trials,
        "planned": changes,
        "skipped": skipped,
        "steps": [],
        "_config": dict(source),
        "_goal": goal,
        "_current": known_result(anchor),
        "_numbers": result_numbers(anchor),
        "_imagined": False,
    }


def _step_input(traj: dict[str, Any], factor: str) -> StepInput:
    """The next step of a path in the shared format: from the current (observed, then imagined) result."""
    return StepInput(factor, traj["_config"][factor], traj["_goal"][factor], traj["_current"],
                     "" if traj["_imagined"] else traj["_numbers"], observed=not traj["_imagined"])


def _carry_forward(traj: dict[str, Any], step_input: StepInput, text: str, counter) -> None:
    step = parse_step(text)
    counter.add("step", step.parsed)
    if step.result:
        new_result = step.result
    elif step.parsed:
        new_result = f"{traj['_current']} (then moved {step.direction}{', ' + step.size if step.size else ''})"
    else:
        new_result = traj["_current"]  # an unparsed step leaves the result where it was (and is flagged)
    factor = step_input.factor
    traj["steps"].append(
        {
            "factor": factor,
            "input": {**step_input.fields(), "from": step_input.old_value, "to": step_input.new_value},
            "output": text,
            "parsed": step.parsed,
            "direction": step.direction,
            "size": step.size,
            "result": new_result,
            "explanation": step.explanation,
        }
    )
    traj["_config"][factor] = traj["_goal"][factor]
    traj["_current"] = new_result
    traj["_imagined"] = True


def _path_lines(traj: dict[str, Any]) -> list[str]:
    a = traj["anchor"]
    lines = [f"Start: historical trial {a['nct_id']} (observed result): {traj['anchor_result']}"]
    for i, s in enumerate(traj["steps"], 1):
        move = f"{s['direction'] or 'unclear'}{', ' + s['size'] if s['size'] else ''}"
        lines.append(
            f"Step {i} ({s['factor']}: {clip(s['input']['from'], 120)} → {clip(s['input']['to'], 120)}): "
            f"{move}. Imagined result: {clip(s['result'], 300)}"
        )
    return lines


def run_pathway(
    questions: Sequence[Question],
    retriever: AnchorRetriever,
    backend: Backend,
    config: PathwayConfig | None = None,
    trials: Mapping[str, Mapping[str, Any]] | None = None,
    counter: ParseCounter | None = None,
) -> list[PathwayResult]:
    """Predict every question by imagination from k anchors. `trials` maps nct_id → `trials` table row (optional;
    population, geography and design are only compared when both sides are known)."""
    config = config or PathwayConfig()
    counter = counter if counter is not None else ParseCounter()
    trials = trials or {}
    anchors = retriever.retrieve_many(questions, config.k)
    sims = getattr(retriever, "similarities", {})
    trajs = [
        [_start_trajectory(q, a, config.order, trials, _nth(sims.get(q.key), i)) for i, a in enumerate(found)]
        for q, found in zip(questions, anchors)
    ]
    flat = [t for ts in trajs for t in ts]

    max_steps = max((len(t["planned"]) for t in flat), default=0)
    for index in tqdm(range(max_steps), desc="imagination steps", disable=None if flat else True):
        by_adapter: dict[str | None, list[tuple[dict, str]]] = defaultdict(list)
        for t in flat:
            if index < len(t["planned"]):
                factor = t["planned"][index]
                by_adapter[config.adapters.get(factor)].append((t, factor))
        for adapter, items in by_adapter.items():
            inputs = [_step_input(t, f) for t, f in items]
            outputs = backend.generate([step_messages(x) for x in inputs], config.step_params, adapter=adapter)
            for (t, _), step_input, gens in zip(items, inputs, outputs):
                _carry_forward(t, step_input, gens[0].text, counter)

    final_prompts = [answer_messages(q, _path_lines(t)) for q, ts in zip(questions, trajs) for t in ts]
    finals = backend.generate(final_prompts, config.answer_params, adapter=config.answer_adapter) if flat else []
    results, cursor = [], 0
    for q, ts in zip(questions, trajs):
        probs, texts, weights = [], [], []
        for t in ts:
            text = finals[cursor][0].text
            cursor += 1
            decision = parse_decision(text, len(q.options))
            counter.add("decision", decision.parsed)
            t["final"] = {"text": text, "probabilities": decision.probabilities, "parsed": decision.parsed,
                          "error": decision.error}
            t["templates"] = {"step": template_id("step"), "answer": template_id("answer")}
            for key in [k for k in t if k.startswith("_")]:
                del t[key]
            if decision.parsed:
                probs.append(decision.probabilities)
                weights.append(t["anchor_similarity"] if t["anchor_similarity"] is not None else 1.0)
            texts.append(text)
        parsed = bool(probs)
        uniform = [1.0 / len(q.options)] * len(q.options)
        probabilities = AGGREGATORS[config.aggregate](probs, weights) if parsed else uniform
        results.append(PathwayResult(q, probabilities, parsed, "\n---\n".join(texts), ts))
    _fill_without_anchors(results, backend, config, counter)
    return results


def _nth(values: list[float] | None, i: int) -> float | None:
    return values[i] if values and i < len(values) else None


def _fill_without_anchors(results: list[PathwayResult], backend: Backend, config: PathwayConfig, counter) -> None:
    """A question with no anchor at all gets the direct prompt, and its trajectory says so."""
    empty = [r for r in results if not r.trajectories]
    if not empty:
        return
    outputs = backend.generate([direct_messages(r.question) for r in empty], config.answer_params,
                               adapter=config.answer_adapter)
    for r, gens in zip(empty, outputs):
        decision = parse_decision(gens[0].text, len(r.question.options))
        counter.add("decision", decision.parsed)
        r.probabilities, r.parsed, r.text = decision.probabilities, decision.parsed, gens[0].text
        r.trajectories = [{"question": _ref(r.question), "anchor": None, "note": "no anchor found: direct prompt",
                           "steps": [], "final": {"text": gens[0].text, "probabilities": decision.probabilities,
                                                  "parsed": decision.parsed, "error": decision.error},
                           "templates": {"direct": template_id("direct")}}]


def trajectory_steps(trajectories: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The anchor paths of one question as one flat list of steps (start, skips, changes, answer), each naming its
    anchor: what `Prediction.trajectory` holds, so a report can list it step by step."""
    out: list[dict[str, Any]] = []
    for traj in trajectories:
        anchor = (traj.get("anchor") or {}).get("nct_id")
        if anchor is None:
            out.append({"anchor": None, "factor": "direct", "note": traj.get("note")})
        else:
            out.append({"anchor": anchor, "factor": "start", "result": traj["anchor_result"], "observed": True,
                        "similarity": traj.get("anchor_similarity")})
            out += [{"anchor": anchor, "factor": s["factor"], "skipped": s["reason"], "why": s.get("why")}
                    for s in traj["skipped"]]
            for s in traj["steps"]:
                out.append({"anchor": anchor, "factor": s["factor"], "from": s["input"]["from"], "to": s["input"]["to"],
                            "input_result": s["input"]["current_result"], "direction": s["direction"],
                            "size": s["size"], "result": s["result"], "parsed": s["parsed"], "output": s["output"],
                            "template": s["input"]["template"]})
        final = traj["final"]
        out.append({"anchor": anchor, "factor": "answer", "probabilities": final["probabilities"],
                    "parsed": final["parsed"], "output": final["text"]})
    return out


def render_trajectory(traj: dict[str, Any]) -> str:
    """A trajectory step by step, in markdown (for reports and asset metadata)."""
    q = traj["question"]
    lines = [f"**{q['nct_id']}** `{q['endpoint_key']}` question {q['question_index']}"]
    if traj.get("anchor") is None:
        lines.append(f"- {traj.get('note', 'no anchor')}")
    else:
        a = traj["anchor"]
        lines.append(f"- start from anchor **{a['nct_id']}** (observed): {clip(traj['anchor_result'], 200)}")
        for s in traj.get("skipped", []):
            lines.append(f"- skip *{s['factor']}* ({s.get('why') or s['reason']})")
        for i, s in enumerate(traj["steps"], 1):
            flag = "" if s["parsed"] else " ⚠ unparsed"
            lines.append(
                f"- step {i} *{s['factor']}*: {clip(s['input']['from'], 80)} → {clip(s['input']['to'], 80)}: "
                f"direction {s['direction']}, size {s['size']}{flag}; imagined: {clip(s['result'], 160)}"
            )
    final = traj["final"]
    probs = ", ".join(f"{p:.2f}" for p in final["probabilities"])
    lines.append(f"- answer: ({probs}){'' if final['parsed'] else ' ⚠ unparsed (uniform)'}")
    return "\n".join(lines)

