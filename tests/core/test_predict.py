"""Ask about a planned trial (`deepimagine_core.predict`): designs from drafts, registrations, tables and the API;
the standard questions; the guarantee that no result of the target reaches a predictor or the report; the CLI."""

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from deepimagine_core.ctgov.api import CTGovClient
from deepimagine_core.ctgov.ingest import ApiSettings
from deepimagine_core.evaluation.predictors import MajorityPredictor, register_predictor
from deepimagine_core.pairs.historical import (
    ANY_ARM_MET_OPTIONS,
    ENDPOINT_MET_OPTIONS,
    build_questions,
    comparative_options,
    superiority_options,
)
from deepimagine_core.pairs.trialdata import TRIAL_TABLES
from deepimagine_core.predict import (
    DesignError,
    PredictSettings,
    design_questions,
    load_design,
    predict_trial,
    reference_predictor,
    strip_results,
    write_prediction_report,
)
from deepimagine_core.predict.__main__ import main
from deepimagine_core.predict.design import design_from_registration, draft_from_text
from deepimagine_core.predict.sources import fetch_registration
from deepimagine_core.store import Store

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_V2 = ROOT / "deepimagine_core" / "ctgov" / "sample" / "v2_json_studies.jsonl.gz"
SENTINEL = "ZQXSENTINEL"

DRAFT = """
title: Drug X in type 2 diabetes
conditions: [Type 2 Diabetes]
phase: Phase 2
enrollment: 240
countries: [Germany, Spain]
arms:
  - label: Drug X 10 mg
    type: experimental
    interventions: [{name: Drug X, type: drug, dose: 10 mg once daily}]
  - label: Drug X 20 mg
    type: EXPERIMENTAL
    interventions: [{name: Drug X, type: DRUG, dose: 20 mg once daily}]
  - label: Placebo
    type: Placebo Comparator
    interventions: [{name: Placebo, type: DRUG}]
outcomes:
  - measure: Change from baseline in HbA1c at week 24
    time_frame: Baseline, week 24
  - measure: Change in body weight
    type: secondary
"""

TWO_ARM = """
title: Drug Y against placebo
arms:
  - {label: Drug Y, type: EXPERIMENTAL, interventions: [{name: Drug Y, dose: 5 mg}]}
  - {label: Placebo, type: PLACEBO_COMPARATOR}
outcomes:
  - measure: Change in LDL cholesterol
    time_frame: 12 weeks
"""


def sample_studies() -> dict[str, dict]:
    with gzip.open(SAMPLE_V2, "rt", encoding="utf-8") as fh:
        studies = [json.loads(line) for line in fh]
    return {s["protocolSection"]["identificationModule"]["nctId"]: s for s in studies}


@pytest.fixture(scope="module")
def history_store(sample_store, tmp_path_factory):
    """A copy of the sample store with `historical_questions` built from the sample's results."""
    store = Store(tmp_path_factory.mktemp("ask_store"))
    shutil.copytree(sample_store.path("tables"), store.path("tables"))
    table, _ = build_questions({t: store.read_table(t) for t in TRIAL_TABLES})
    store.write_table("historical_questions", table)
    return store


@pytest.fixture(scope="module")
def target(history_store) -> str:
    """The API v2 sample trial (two arms or more) with the most historical questions: its results exist in the store."""
    counts: dict[str, int] = {}
    for nct_id in history_store.read_table("historical_questions").column("nct_id").to_pylist():
        counts[nct_id] = counts.get(nct_id, 0) + 1
    studies = sample_studies()
    two_arm = [n for n, s in studies.items()
               if len(s["protocolSection"].get("armsInterventionsModule", {}).get("armGroups", [])) >= 2]
    best = max(two_arm, key=lambda n: counts.get(n, 0))
    assert counts.get(best, 0) >= 5
    return best


def _norm(text) -> str:
    return " ".join(str(text).split()).casefold()


def _matches(design_qs, hist_rows) -> list:
    """Historical questions (built from results) that the design's questions do not cover: same endpoint, same kind,
    same arms (endpoint met: the arms the results list are among the design's singled-out arms)."""
    explicit = {(_norm(q.endpoint["measure"]), q.extra["kind"], q.extra["arm_x"], q.extra["arm_y"])
                for q in design_qs if q.extra["kind"] != "endpoint_met"}
    met = {_norm(q.endpoint["measure"]): set(q.extra["listed_arms"]) for q in design_qs
           if q.extra["kind"] == "endpoint_met"}
    missing = []
    for r in hist_rows:
        ep = _norm(json.loads(r["endpoint"])["measure"])
        if r["kind"] == "endpoint_met":
            if not set(json.loads(r["extra"])["listed_arms"]) <= met.get(ep, set()):
                missing.append((r["nct_id"], ep, "endpoint_met"))
        elif (ep, r["kind"], r["arm_x"], r["arm_y"]) not in explicit:
            missing.append((r["nct_id"], ep, r["kind"], r["arm_x"], r["arm_y"]))
    return missing


def test_registration_without_results_gives_the_questions_its_results_give(history_store):
    rows = [r for r in history_store.read_table("historical_questions").to_pylist()
            if json.loads(r["endpoint"])["outcome_type"] != "otherOutcomes"]  # a design asks primary/secondary only
    by_trial: dict[str, list] = {}
    for r in rows:
        by_trial.setdefault(r["nct_id"], []).append(r)
    checked = 0
    for nct_id, study in sample_studies().items():
        if nct_id not in by_trial:
            continue
        design = design_from_registration(study)  # resultsSection stripped before anything is read
        qs = design_questions(design, secondary=True)
        assert _matches(qs, by_trial[nct_id]) == []
        assert {a.label for a in design.arms} >= {r["arm_x"] for r in by_trial[nct_id]}
        checked += 1
    assert checked >= 20  # 25 API v2 sample trials have historical questions


def test_every_sample_registration_with_arms_gives_questions():
    studies = sample_studies()
    for nct_id, study in studies.items():
        study = json.loads(json.dumps(study))
        study["protocolSection"].setdefault("designModule", {})["enrollmentInfo"] = {"count": 0}  # 0 = no size
        if study["protocolSection"].get("armsInterventionsModule", {}).get("armGroups"):
            design = design_from_registration(study)
            assert design.enrollment is None and design_questions(design, secondary=True), nct_id
        else:
            with pytest.raises(DesignError, match="arms: List should have at least 1 item"):
                design_from_registration(study)


def test_trial_tables_give_the_same_questions_for_legacy_trials(history_store):
    rows = [r for r in history_store.read_table("historical_questions").to_pylist()
            if json.loads(r["endpoint"])["outcome_type"] != "otherOutcomes"]
    legacy = sorted({r["nct_id"] for r in rows} - set(sample_studies()))[:8]
    for nct_id in legacy:
        qs = design_questions(load_design(nct_id, history_store), secondary=True)
        assert _matches(qs, [r for r in rows if r["nct_id"] == nct_id]) == []


def test_history_questions_carry_their_dates_for_recency_weights(history_store, target):
    from deepimagine_core.predict.run import load_history

    history, rows, excluded = load_history(history_store, target)
    assert excluded > 0 and len(history) == len(rows)
    dated = [(q.extra.get("results_first_posted"), r["results_first_posted"]) for q, r in zip(history, rows)]
    assert any(row is not None for _, row in dated)
    assert all(q == (row.isoformat() if row is not None else None) for q, row in dated)


def test_draft_questions_use_ct_open_sentences():
    design = draft_from_text(DRAFT, "draft.yaml")
    assert design.phase == ["PHASE2"] and design.arms[2].type == "PLACEBO_COMPARATOR"
    assert design.arms_json()[0]["interventions"][0]["description"] == "10 mg once daily"
    qs = design_questions(design)
    assert {q.endpoint["measure"] for q in qs} == {"Change from baseline in HbA1c at week 24"}
    sup = [q for q in qs if q.extra["kind"] == "superiority"]
    comp = [q for q in qs if q.extra["kind"] == "comparative"]
    met = [q for q in qs if q.extra["kind"] == "endpoint_met"]
    assert [q.options for q in sup] == [superiority_options("Drug X 10 mg", "Placebo"),
                                        superiority_options("Drug X 20 mg", "Placebo")]
    assert [q.options for q in comp] == [comparative_options("Drug X 10 mg", "Drug X 20 mg"),
                                         comparative_options("Drug X 10 mg", "Placebo"),
                                         comparative_options("Drug X 20 mg", "Placebo")]
    assert [q.options for q in met] == [list(ANY_ARM_MET_OPTIONS)] and met[0].category == "2-way_implicit"
    assert {q.category for q in sup} == {"2-way_explicit"} and {q.category for q in comp} == {"3-way_explicit"}
    assert all(q.answer is None for q in qs)
    assert len(design_questions(design, secondary=True)) == 2 * len(qs)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("title: Drug X in type 2 diabetes\n", ""), r"title: required field is missing"),
    (lambda t: t.replace("type: Placebo Comparator", "type: placebo arm"), r"arms\[2\]\.type: unknown arm type"),
    (lambda t: t.replace("enrollment: 240", "enrollment: -5"), r"enrollment: Input should be greater than"),
    (lambda t: t.replace("phase: Phase 2", "phase: Phase 7"), r"phase: unknown phase"),
    (lambda t: t.replace("    time_frame:", "    timeframe:"), r"outcomes\[0\]\.timeframe: unknown field"),
    (lambda t: t.replace("type: drug, dose", "type: pill, dose"), r"arms\[0\]\.interventions\[0\]\.type: unknown"),
    (lambda t: t.replace("label: Drug X 20 mg", "label: Drug X 10 mg"), r"arms\[1\]\.label: 'Drug X 10 mg' is used"),
    (lambda t: t.split("outcomes:")[0], r"outcomes: required field is missing"),
    (lambda t: "- just a list", r"a trial draft is a mapping"),
    (lambda t: "title: [unclosed", r"not valid YAML"),
])
def test_bad_drafts_fail_naming_the_field(edit, message):
    with pytest.raises(DesignError, match=message):
        draft_from_text(edit(DRAFT), "draft.yaml")


def test_one_arm_and_one_rank_designs_get_the_implicit_question_only_where_history_asks_it():
    one_arm = draft_from_text(TWO_ARM.split("  - {label: Placebo")[0] + TWO_ARM.split("PLACEBO_COMPARATOR}\n")[1])
    assert [(q.extra["kind"], q.options) for q in design_questions(one_arm)] == [
        ("endpoint_met", list(ENDPOINT_MET_OPTIONS))]
    two_doses = draft_from_text(TWO_ARM.replace("{label: Placebo, type: PLACEBO_COMPARATOR}",
                                                "{label: Drug Y 10 mg, type: EXPERIMENTAL}"))
    assert [(q.extra["kind"], q.category) for q in design_questions(two_doses)] == [
        ("comparative", "3-way_explicit"), ("endpoint_met", "2-way_implicit")]
    assert design_questions(two_doses)[1].options == list(ENDPOINT_MET_OPTIONS)
    pk = draft_from_text(TWO_ARM.replace("Change in LDL cholesterol", "Maximum plasma concentration (Cmax) of Drug Y"))
    assert [q.extra["kind"] for q in design_questions(pk)] == ["superiority", "comparative"]


def test_a_draft_without_arms_or_primary_outcome_says_which_field():
    with pytest.raises(DesignError, match="arms: List should have at least 1 item"):
        draft_from_text("title: T\narms: []\noutcomes: [{measure: M}]")
    secondary_only = draft_from_text(TWO_ARM.replace("time_frame: 12 weeks", "type: secondary"))
    with pytest.raises(DesignError, match="outcomes: no primary outcome"):
        design_questions(secondary_only)
    assert len(design_questions(secondary_only, secondary=True)) == 3


def _plant_results(study: dict) -> dict:
    """A copy of a study whose every non-registration section is full of the sentinel."""
    planted = json.loads(json.dumps(study))
    planted.setdefault("resultsSection", {})
    for module in planted["resultsSection"].values():
        if isinstance(module, dict):
            module["sentinel"] = SENTINEL
    outcomes = planted["resultsSection"].get("outcomeMeasuresModule", {}).get("outcomeMeasures", [])
    for o in outcomes:
        o["title"] = f"{SENTINEL} {o.get('title')}"
        for a in o.get("analyses", []):
            a["pValue"] = SENTINEL
    planted["annotationSection"] = {"sentinel": SENTINEL}
    planted["derivedSection"] = {"sentinel": SENTINEL}
    planted["hasResults"] = SENTINEL
    return planted


class SpyPredictor(MajorityPredictor):
    """The majority baseline, recording everything it is given."""

    name = "spy"
    seen: list[str] = []

    def fit(self, train):
        SpyPredictor.seen.append(json.dumps([q.to_row() for q in train], default=str))
        super().fit(train)

    def predict(self, questions):
        SpyPredictor.seen.append(json.dumps([q.to_row() for q in questions], default=str))
        return super().predict(questions)


register_predictor("spy", SpyPredictor, replace=True)


def _poison_store(history_store: Store, tmp_path: Path, nct_id: str) -> Store:
    """A copy of the store where the target's results and answers hold the sentinel, and the result tables are not
    even readable (any read of them would fail)."""
    store = Store(tmp_path / "poisoned")
    shutil.copytree(history_store.path("tables"), store.path("tables"))
    for name in ("outcome_groups", "outcome_results", "outcome_analyses", "locations", "quarantine"):
        store.table_path(name).write_text(f"{SENTINEL}: not a Parquet file")
    rows = store.read_table("historical_questions").to_pylist()
    for r in rows:
        if r["nct_id"] == nct_id:
            r.update(options=[f"{SENTINEL} {o}" for o in r["options"]], p_value_raw=SENTINEL,
                     group_values=SENTINEL, extra=json.dumps({"sentinel": SENTINEL}))
    store.write_table("historical_questions", pa.Table.from_pylist(rows, schema=store.read_table(
        "historical_questions").schema))
    return store


@pytest.mark.parametrize("source", ["registration", "tables"])
def test_no_result_of_the_target_reaches_the_predictor_or_the_report(history_store, target, tmp_path, source):
    nct_id = target  # a v2 sample trial with posted results and historical questions
    store = _poison_store(history_store, tmp_path, nct_id)
    if source == "registration":
        path = tmp_path / "registration.json"
        path.write_text(json.dumps(_plant_results(sample_studies()[nct_id])))
        assert set(strip_results(json.loads(path.read_text()))) == {"protocolSection"}
        design = load_design(str(path), store)
    else:
        design = load_design(nct_id, store)
    SpyPredictor.seen = []
    result = predict_trial(design, store, PredictSettings(predictors=["spy"], llm="off"), log=lambda _m: None)
    files = write_prediction_report(store, result)
    assert len(SpyPredictor.seen) == 2 and len(result.questions) >= 3
    assert all(SENTINEL not in text for text in SpyPredictor.seen)
    for path in (files.markdown, files.html, files.json):
        assert SENTINEL not in path.read_text()
    assert nct_id not in {n["nct_id"] for near in result.neighbours for n in near}
    assert result.training["n_target_questions_left_out"] > 0
    assert "https://clinicaltrials.gov/study/NCT" in files.markdown.read_text()
    assert '<a href="https://clinicaltrials.gov/study/NCT' in files.html.read_text()


def test_an_nct_id_is_fetched_through_the_api_client_without_its_results():
    nct_id = "NCT00655629"
    study = _plant_results(sample_studies()[nct_id])
    requests = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"studies": [study]})

    client = CTGovClient("https://ctgov.test/api/v2", requests_per_second=0, transport=httpx.MockTransport(handler))
    design = fetch_registration(nct_id.lower(), ApiSettings(base_url="https://ctgov.test/api/v2"), client=client)
    assert design.nct_id == nct_id and SENTINEL not in design.model_dump_json()
    params = dict(requests[0].url.params)
    assert params["filter.ids"] == nct_id and "aggFilters" not in params


def test_deepimagine_trajectories_are_reported_as_tables(history_store, tmp_path):
    from tests.scripted_backend import ScriptedBackend

    backend = ScriptedBackend(lambda messages, i: "The effect grows. DECISION: (0.7, 0.3)")
    design = draft_from_text(TWO_ARM)
    settings = PredictSettings(predictors=["majority"], llm="deepimagine", neighbours=2,
                               predictor_kwargs={"deepimagine": {"k": 2}})
    result = predict_trial(design, history_store, settings, backend=backend, log=lambda _m: None)
    assert list(result.predictions) == ["majority", "deepimagine"]
    assert all(p.trajectory for p in result.predictions["deepimagine"])
    store = Store(tmp_path / "reports_home")
    text = write_prediction_report(store, result).markdown.read_text()
    assert "deepimagine trajectories (one row per anchor)" in text
    assert "| anchor | factors changed | imagined result | answer |" in text
    from deepimagine_core.evaluation.trajectory_tables import trajectory_rows

    assert all(len(trajectory_rows(p.trajectory)) == 2 for p in result.predictions["deepimagine"])  # k = 2 anchors
    assert text.count("(0.70, 0.30) |") >= len(result.questions)  # each anchor's scripted answer, in its row


def test_cli_on_a_sample_trial_prints_a_table_and_writes_the_report(history_store, target, capsys):
    assert main([target, "--home", str(history_store.root), "--quiet"]) == 0  # --llm auto: no adapters here
    out = capsys.readouterr().out.splitlines()
    design = load_design(target, history_store)
    questions = design_questions(design)
    reference = reference_predictor()[0]
    assert out[0] == f"{target}: {design.title}" and out[1].split() == ["#", "endpoint", "question", reference]
    assert len([line for line in out if line[:1].isdigit()]) == len(questions)
    report = history_store.path("reports", "ask", target)
    data = json.loads((report / "prediction.json").read_text())
    assert data["reference_predictor"] == reference and len(data["questions"]) == len(questions)
    if reference.endswith("_adapted"):  # one trial is no benchmark to adapt to: its calibrated scores answer
        assert data["predictors"][reference]["method"] == "calibrated"
    for q in data["questions"]:
        assert abs(sum(q["predictions"][reference]["probabilities"]) - 1) < 1e-6
        assert len(q["nearest_trials"]) == 5 and target not in {n["nct_id"] for n in q["nearest_trials"]}
    assert (report / "report.html").exists() and (report / "report.md").exists()


def test_cli_module_reports_a_bad_draft_with_exit_status_2(tmp_path):
    draft = tmp_path / "draft.yaml"
    draft.write_text(DRAFT.replace("type: Placebo Comparator", "type: placebo arm"))
    proc = subprocess.run([sys.executable, "-m", "deepimagine_core.predict", str(draft), "--home", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert "arms[2].type: unknown arm type 'placebo arm'" in proc.stderr

