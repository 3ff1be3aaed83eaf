"""Predictor snapshots that remember their training cutoff, and the prospective questions posted after it.

A snapshot is a CPU predictor fitted once on the training side of the historical questions and saved under
`<store>/models/predictors/<name>/` (`predictor.pkl` and `card.json`). Its card records the training cutoff: the latest
`results_first_posted` among the questions it was fitted on. Later refreshes bring questions whose results were first
posted after that date: no snapshot has seen them, so they score it prospectively, the way CT Open does.

    cards, skipped = train_snapshots(store, ["majority", "logreg_adapted"])
    table = prospective_questions(store.read_table("historical_questions"), {n: c.cutoff for n, c in cards.items()})

A snapshot is retrained only when asked (materialise `predictor_snapshots`): retraining moves its cutoff to the latest
data, so it starts a new prospective series (the history keeps each row's cutoff).
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from deepimagine_core.evaluation.base import Predictor
from deepimagine_core.evaluation.predictors import make_predictor
from deepimagine_core.evaluation.selection import default_options, reference_predictor_name
from deepimagine_core.evaluation.weighting import question_with_date
from deepimagine_core.pairs.historical import HISTORICAL_QUESTIONS
from deepimagine_core.questions import Question
from deepimagine_core.store import Store, atomic_path
from deepimagine_core.tables import HISTORICAL_QUESTIONS_TABLE, PROSPECTIVE_QUESTIONS_TABLE, TRIALS_TABLE

# The reference predictor (`selection.REFERENCE`) is one of them, listed once whatever its name.
SNAPSHOT_PREDICTORS = tuple(dict.fromkeys(("majority", "logreg", "knn_history", reference_predictor_name)))
CARD_FILE = "card.json"
MODEL_FILE = "predictor.pkl"

#: The historical questions posted after a cutoff, once per distinct cutoff, with the predictors having that cutoff.
PROSPECTIVE_QUESTIONS = pa.schema(
    [*HISTORICAL_QUESTIONS, ("cutoff", pa.date32()), ("predictors", pa.list_(pa.string()))],
    metadata={"doc": "Historical questions whose results were first posted after a predictor's training cutoff: "
                     "questions that predictor has never seen (one copy per distinct cutoff)."},
)


@dataclass
class SnapshotCard:
    """What a snapshot says about itself (card.json)."""

    name: str
    cutoff: str | None  # ISO date: the latest results_first_posted it was fitted on
    n_questions: int
    n_trials: int
    trained_at: str  # ISO timestamp (UTC)
    options: dict[str, Any] = field(default_factory=dict)
    split: str = "train"

    @property
    def cutoff_date(self) -> dt.date | None:
        return dt.date.fromisoformat(self.cutoff) if self.cutoff else None


def snapshots_dir(store: Store) -> Path:
    return store.path("models", "predictors")


def latest_date(dates: Iterable[dt.date | None]) -> dt.date | None:
    """The training cutoff of a set of questions: their latest results_first_posted (None when none is dated)."""
    known = [d for d in dates if d is not None]
    return max(known) if known else None


def training_rows(table: pa.Table, split: str = "train") -> pa.Table:
    """Answered, dated questions on `split`: what a snapshot is fitted on (undated ones have no place in time)."""
    keep = pc.and_(pc.equal(table.column("split"), split),
                   pc.and_(pc.is_valid(table.column("answer")), pc.is_valid(table.column("results_first_posted"))))
    return table.filter(keep)


def train_snapshots(store: Store, names: Sequence[str] = SNAPSHOT_PREDICTORS,
                    options: dict[str, dict[str, Any]] | None = None,
                    log: Callable[[str], None] = print) -> tuple[dict[str, SnapshotCard], dict[str, str]]:
    """Fit each predictor on the training side of `historical_questions`, save it with its card. Returns ({name:
    card}, {name: why not trained}): a small source can leave nothing (or one class only) to fit, which is said, not
    raised; an unknown predictor name is an error."""
    rows = training_rows(store.read_table(HISTORICAL_QUESTIONS_TABLE))
    if rows.num_rows == 0:
        why = "no answered, dated training-split historical question to fit on"
        return {}, {name: why for name in names}
    questions = [question_with_date(r) for r in rows.to_pylist()]  # dated, for recency weights
    cutoff = latest_date(rows.column("results_first_posted").to_pylist())
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    cards, skipped = {}, {}
    for name in names:
        opts = dict((options or {}).get(name, default_options(name)))  # the reference: its selected settings
        predictor = make_predictor(name, **opts)
        try:
            predictor.fit(questions)
        except ValueError as exc:  # e.g. every training answer in one class
            skipped[name] = f"could not be fitted on {len(questions)} questions: {exc}"
            log(f"snapshot {name} not trained: {skipped[name]}")
            continue
        card = SnapshotCard(name, cutoff.isoformat() if cutoff else None, len(questions),
                            len({q.nct_id for q in questions}), now, opts)
        save_snapshot(store, predictor, card)
        log(f"snapshot {name}: fitted on {card.n_questions} questions ({card.n_trials} trials), cutoff {card.cutoff}")
        cards[name] = card
    return cards, skipped


def save_snapshot(store: Store, predictor: Predictor, card: SnapshotCard) -> Path:
    folder = snapshots_dir(store) / card.name
    import cloudpickle  # the fitted predictors keep their model factories (closures), which plain pickle refuses

    with atomic_path(folder / MODEL_FILE) as tmp:
        tmp.write_bytes(cloudpickle.dumps(predictor))
    with atomic_path(folder / CARD_FILE) as tmp:
        tmp.write_text(json.dumps(asdict(card), indent=2, sort_keys=True))
    return folder


def snapshot_cards(store: Store) -> dict[str, SnapshotCard]:
    """The cards of every saved snapshot, by name."""
    root = snapshots_dir(store)
    cards = {}
    for path in sorted(root.glob(f"*/{CARD_FILE}")) if root.is_dir() else []:
        data = json.loads(path.read_text())
        cards[data["name"]] = SnapshotCard(**data)
    return cards


def load_snapshot(store: Store, name: str) -> Predictor:
    """A saved snapshot (a pickle this project wrote into its own store; never load one from elsewhere)."""
    return pickle.loads((snapshots_dir(store) / name / MODEL_FILE).read_bytes())


def prospective_questions(questions: pa.Table, cutoffs: dict[str, dt.date | None]) -> pa.Table:
    """The answered questions with results first posted after each distinct cutoff (predictors without a cutoff are
    skipped: nothing says what they saw), tagged with the cutoff and the predictors sharing it."""
    by_cutoff: dict[dt.date, list[str]] = {}
    for name, cutoff in sorted(cutoffs.items()):
        if cutoff is not None:
            by_cutoff.setdefault(cutoff, []).append(name)
    parts = [PROSPECTIVE_QUESTIONS.empty_table()]
    questions = questions.select(HISTORICAL_QUESTIONS.names).cast(HISTORICAL_QUESTIONS)
    posted = questions.column("results_first_posted")
    for cutoff, names in sorted(by_cutoff.items()):
        after = questions.filter(pc.and_(pc.greater(posted, pa.scalar(cutoff, pa.date32())),
                                         pc.is_valid(questions.column("answer"))))
        after = after.append_column("cutoff", pa.array([cutoff] * after.num_rows, pa.date32()))
        after = after.append_column("predictors", pa.array([names] * after.num_rows, pa.list_(pa.string())))
        parts.append(after)
    return pa.concat_tables(parts).cast(PROSPECTIVE_QUESTIONS)


def questions_after(table: pa.Table, cutoff: dt.date | None) -> list[Question]:
    """The prospective questions of one cutoff (from a `prospective_questions` table) as `Question`s."""
    if cutoff is None or table.num_rows == 0:
        return []
    rows = table.filter(pc.equal(table.column("cutoff"), pa.scalar(cutoff, pa.date32())))
    return [Question.from_row(r) for r in rows.to_pylist()]


def write_prospective_questions(store: Store, extra_cutoffs: dict[str, dt.date | None] | None = None) -> pa.Table:
    """Table `prospective_questions` for every saved snapshot's cutoff and any `extra_cutoffs` (e.g. adapters')."""
    cutoffs = {name: card.cutoff_date for name, card in snapshot_cards(store).items()}
    table = prospective_questions(store.read_table(HISTORICAL_QUESTIONS_TABLE), {**cutoffs, **(extra_cutoffs or {})})
    store.write_table(PROSPECTIVE_QUESTIONS_TABLE, table, PROSPECTIVE_QUESTIONS)
    return table


def latest_posted(store: Store, nct_ids: Iterable[str]) -> dt.date | None:
    """The latest results_first_posted among these trials (from the `trials` table): their training cutoff. None
    when none is dated, or when the store has no trial table with results dates (the cutoff is unknown)."""
    wanted = set(nct_ids)
    if not wanted or not store.has_table(TRIALS_TABLE):
        return None
    try:
        trials = store.read_table(TRIALS_TABLE, ["nct_id", "results_first_posted"]).to_pylist()
    except (pa.ArrowInvalid, KeyError):  # a trial table without results dates (hand-made): the cutoff is unknown
        return None
    return latest_date(r["results_first_posted"] for r in trials if r["nct_id"] in wanted)
