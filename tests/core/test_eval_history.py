"""Predictor snapshots, prospective questions and the benchmark history on a small hand-made store."""

import datetime as dt
import json

import pyarrow as pa
import pytest

from deepimagine_core.evaluation import history, prospective
from deepimagine_core.pairs.historical import HISTORICAL_QUESTIONS
from deepimagine_core.questions import Question
from deepimagine_core.store import Store
from deepimagine_core.tables import BENCHMARK_HISTORY_TABLE, HISTORICAL_QUESTIONS_TABLE, TRIALS_TABLE
from deepimagine_core.training.cutoff import read_cutoff, record_cutoff, record_cutoffs, trials_of

ENDPOINT_MET = ["This endpoint is met.", "This endpoint is not met."]


def _row(i: int, posted: dt.date, split: str) -> dict:
    q = Question(f"NCT{i:08d}", "outcome:0", 0, f"trial {i}", {"measure": "HbA1c" if i % 2 else "death"},
                 [{"label": "A", "type": "EXPERIMENTAL"}], "single_arm", ENDPOINT_MET, answer=i % 2)
    return {**q.to_row(), "question_id": f"q{i}", "split": split, "results_first_posted": posted}


@pytest.fixture
def store(tmp_path):
    st = Store(tmp_path)
    start = dt.date(2020, 1, 1)
    rows = [_row(i, start + dt.timedelta(days=30 * i), "train" if i < 20 else "test") for i in range(30)]
    st.write_table(HISTORICAL_QUESTIONS_TABLE, pa.Table.from_pylist(rows, schema=HISTORICAL_QUESTIONS))
    trials = pa.table({"nct_id": [r["nct_id"] for r in rows], "results_first_posted": [r["results_first_posted"]
                                                                                        for r in rows]})
    st.write_table(TRIALS_TABLE, trials)
    return st


def test_snapshots_remember_their_cutoff_and_reload(store):
    cards, skipped = prospective.train_snapshots(store, ["majority", "logreg"], log=lambda *_: None)
    assert skipped == {}
    cutoff = dt.date(2020, 1, 1) + dt.timedelta(days=30 * 19)  # the latest training-side question
    assert {c.cutoff_date for c in cards.values()} == {cutoff}
    assert prospective.snapshot_cards(store)["logreg"].n_questions == 20
    reloaded = prospective.load_snapshot(store, "logreg")
    questions = [Question.from_row(r) for r in store.read_table(HISTORICAL_QUESTIONS_TABLE).to_pylist()]
    assert len(reloaded.predict(questions)) == 30


def test_the_reference_snapshot_is_fitted_with_its_selected_settings(store, monkeypatch):
    from deepimagine_core.evaluation import selection
    from deepimagine_core.evaluation.selection import Candidate

    # `selection.default_options` gives the reference its selected settings
    monkeypatch.setattr(selection, "REFERENCE", Candidate("ref", "logreg", {"C": 0.05, "min_df": 1}))
    cards, _ = prospective.train_snapshots(store, ["logreg", "majority"], log=lambda *_: None)
    assert cards["logreg"].options == {"C": 0.05, "min_df": 1} and cards["majority"].options == {}
    assert prospective.load_snapshot(store, "logreg").describe()["C"] == 0.05


def test_nothing_to_fit_is_said_not_raised(tmp_path):
    st = Store(tmp_path)
    rows = [_row(i, dt.date(2020, 1, 1), "test") for i in range(3)]
    st.write_table(HISTORICAL_QUESTIONS_TABLE, pa.Table.from_pylist(rows, schema=HISTORICAL_QUESTIONS))
    cards, skipped = prospective.train_snapshots(st, ["majority"], log=lambda *_: None)
    assert cards == {} and "no answered, dated training-split" in skipped["majority"]
    with pytest.raises(KeyError):  # a misspelt predictor is the user's error, not a small source
        prospective.train_snapshots(_one_class_store(tmp_path / "b"), ["no_such_predictor"], log=lambda *_: None)
    cards, skipped = prospective.train_snapshots(_one_class_store(tmp_path / "c"), ["logreg"], log=lambda *_: None)
    assert cards == {} and "could not be fitted" in skipped["logreg"]


def _one_class_store(root):
    st = Store(root)
    rows = [{**_row(i, dt.date(2020, 1, 1), "train"), "answer": 0} for i in range(6)]
    st.write_table(HISTORICAL_QUESTIONS_TABLE, pa.Table.from_pylist(rows, schema=HISTORICAL_QUESTIONS))
    return st


def test_prospective_questions_are_those_posted_after_each_cutoff(store):
    table = store.read_table(HISTORICAL_QUESTIONS_TABLE)
    early, late = dt.date(2020, 1, 1) + dt.timedelta(days=30 * 19), dt.date(2020, 1, 1) + dt.timedelta(days=30 * 25)
    out = prospective.prospective_questions(table, {"a": early, "b": early, "c": late, "undated": None})
    assert sorted(prospective.questions_after(out, early), key=lambda q: q.nct_id)[0].nct_id == "NCT00000020"
    assert len(prospective.questions_after(out, early)) == 10
    assert len(prospective.questions_after(out, late)) == 4
    assert {tuple(p) for p in out.column("predictors").to_pylist()} == {("a", "b"), ("c",)}
    assert prospective.questions_after(out, None) == []


def test_history_appends_per_refresh_and_replaces_a_rerun(store):
    prospective.train_snapshots(store, ["majority", "logreg"], log=lambda *_: None)
    prospective.write_prospective_questions(store)
    first = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)
    out = history.update_history(store, "refresh-1", first, n_bootstrap=50, log=lambda *_: None)
    n_first = out.table.num_rows
    assert {r["category"] for r in out.rows} == {"overall", "2-way_explicit"}
    assert all(r["n"] == 10 and r["ci_low"] <= r["weighted_accuracy"] <= r["ci_high"] for r in out.rows)
    again = history.update_history(store, "refresh-1", first, n_bootstrap=50, log=lambda *_: None)
    assert again.table.num_rows == n_first  # a re-run of one refresh does not add a point
    later = history.update_history(store, "refresh-2", first + dt.timedelta(days=7), n_bootstrap=50,
                                   log=lambda *_: None)
    assert later.table.num_rows == 2 * n_first
    assert store.read_table(BENCHMARK_HISTORY_TABLE).num_rows == 2 * n_first
    assert later.figure is not None and later.figure.read_bytes()[:4] == b"\x89PNG"
    assert "data:image/png;base64," in later.markdown and "| logreg |" in later.markdown


def test_a_snapshot_with_nothing_after_its_cutoff_gets_an_empty_row(store):
    rows = history.history_rows("r", dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), "p", None, None)
    assert rows == [{"refresh": "r", "refresh_date": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
                     "predictor": "p", "cutoff": None, "category": "overall", "n": 0, "n_trials": 0}]
    assert history.plot_history(pa.Table.from_pylist(rows, schema=history.BENCHMARK_HISTORY), store.path("x.png")) \
        is None


def test_adapter_cutoff_is_recorded_beside_the_adapter_and_in_its_card(store, tmp_path):
    adapter = tmp_path / "models" / "sft_arm" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "README.md").write_text("# sft_arm\n\n## Data\n\nsome rows\n")
    rows = [{"pair_id": "arm|NCT00000003|o0|g1>g2"}, {"id": "approximate:NCT00000001>NCT00000005"}]
    assert trials_of(rows) == {"NCT00000001", "NCT00000003", "NCT00000005"}
    info = record_cutoffs(store, rows, [adapter])
    assert info == {"training_cutoff": (dt.date(2020, 1, 1) + dt.timedelta(days=150)).isoformat(), "trials_seen": 3}
    assert read_cutoff(adapter) == dt.date(2020, 1, 1) + dt.timedelta(days=150)
    record_cutoff(adapter, dt.date(2021, 1, 1), 3)  # re-recording replaces the card's section
    card = (adapter / "README.md").read_text()
    assert card.count("## Training cutoff") == 1 and "2021-01-01" in card and "## Data" in card
    assert json.loads((adapter / "training_cutoff.json").read_text())["training_cutoff"] == "2021-01-01"


def test_each_contender_is_scored_after_its_own_cutoff(store):
    prospective.train_snapshots(store, ["majority"], log=lambda *_: None)
    late = dt.date(2020, 1, 1) + dt.timedelta(days=30 * 25)
    prospective.write_prospective_questions(store, {"late_one": late})

    def ready():
        from deepimagine_core.evaluation.predictors import make_predictor

        predictor = make_predictor("majority")
        predictor.fit([Question.from_row(r) for r in store.read_table(HISTORICAL_QUESTIONS_TABLE).to_pylist()])
        return predictor

    extra = {"late_one": history.Contender(late, ready, max_questions=3)}
    out = history.update_history(store, "r", dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), extra=extra,
                                 n_bootstrap=20, log=lambda *_: None)
    overall = {r["predictor"]: (r["n"], r["cutoff"]) for r in out.rows if r["category"] == "overall"}
    assert overall == {"majority": (10, dt.date(2020, 1, 1) + dt.timedelta(days=30 * 19)), "late_one": (3, late)}
