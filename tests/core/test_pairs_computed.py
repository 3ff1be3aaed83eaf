"""Computed comparisons (`pairs.computed`): safety counts without a posted analysis, labelled by a Fisher exact test."""

import json

import pytest
from scipy.stats import fisher_exact

from deepimagine_core.pairs.computed import (
    COMPUTED_METHOD,
    is_safety_outcome,
    may_be_independent,
)
from deepimagine_core.pairs.contracts import question_evidence_problems
from deepimagine_core.pairs.historical import build_question_tables, build_questions
from tests.core.test_pairs_fixtures import TrialTables, analysis

AE = "Number of Participants With Serious Adverse Events"
ARMS = [("Drug A", "EXPERIMENTAL"), ("Placebo", "PLACEBO_COMPARATOR")]


def safety_trial(nct_id="NCT00000010", counts=((4, 50), (18, 50)), *, title=AE, analyses=(), arms=ARMS,
                 param_type="NUMBER", unit="participants", groups=None, **trial_fields) -> TrialTables:
    t = TrialTables().trial(nct_id, arms, interventions=[(a, a) for a, _ in arms], **trial_fields)
    groups = groups or [(f"O{i + 1}", arm, value, n) for i, ((arm, _), (value, n)) in enumerate(zip(arms, counts))]
    return t.outcome(nct_id, 0, title, groups, analyses=list(analyses), param_type=param_type, unit=unit)


def build(t: TrialTables, **kw) -> list[dict]:
    return build_questions(t.tables(), **kw)[0].to_pylist()


def test_fewer_serious_events_on_the_drug_is_a_significant_benefit():
    rows = build(safety_trial())  # 4/50 vs 18/50: Fisher p ≈ 0.0008, fewer harmful events on Drug A
    assert [r["kind"] for r in rows] == ["superiority", "comparative"]  # explicit only: no "endpoint met"
    sup, comp = rows
    p = fisher_exact([[4, 46], [18, 32]])[1]
    assert sup["p_value"] == pytest.approx(p) and p < 0.05
    assert sup["significance_source"] == comp["significance_source"] == "computed"
    assert sup["method"] == COMPUTED_METHOD and sup["analysis_index"] is None
    assert sup["polarity"] is False and sup["x_better"] is True
    assert sup["answer"] == 0 and comp["answer"] == 0  # X (Drug A) significantly better
    values = json.loads(comp["group_values"])
    assert (values["x"]["value"], values["x"]["n"], values["y"]["value"]) == (4.0, 50, 18.0)
    assert question_evidence_problems(build_questions(safety_trial().tables())[0]) == {}


@pytest.mark.parametrize("counts,answer3,answer2", [
    (((18, 50), (4, 50)), 1, 1),  # more harm on the drug: Y (placebo) significantly better
    (((6, 50), (9, 50)), 2, 1),  # p ≈ 0.58: no significant difference
])
def test_the_three_way_answer_reads_the_test_and_the_side(counts, answer3, answer2):
    sup, comp = build(safety_trial(counts=counts))
    assert (comp["answer"], sup["answer"]) == (answer3, answer2)
    assert comp["significant"] is (answer3 != 2)


def test_the_old_rule_and_a_posted_analysis_leave_no_computed_question():
    assert build(safety_trial(), computed="none") == []
    posted = build(safety_trial(analyses=[analysis(p=0.4)]))  # the sponsor's own test decides, not ours
    assert {r["significance_source"] for r in posted} == {"p-value"}
    assert [r["answer"] for r in posted if r["kind"] == "comparative"] == [2]
    with pytest.raises(ValueError, match="computed must be one of safety, none"):
        build(safety_trial(), computed="all")


@pytest.mark.parametrize("trial", [
    safety_trial(title="Number of Participants With HbA1c Below 7%"),  # not a safety outcome
    safety_trial(param_type="MEAN", unit="events"),  # not a count of participants
    safety_trial(counts=((4.5, 50), (18, 50))),  # not a whole number
    safety_trial(counts=((60, 50), (18, 50))),  # more than were analysed
    safety_trial(counts=((4, None), (18, 50))),  # no denominator
    safety_trial(groups=[("O1", "Drug A", 4, 25), ("O2", "Drug A", 5, 25), ("O3", "Placebo", 18, 50)]),  # subgroups
    safety_trial(groups=[("O1", "Drug A", 4, 50), ("O2", None, 18, 50)]),  # a group that maps to no arm
])
def test_outcomes_that_do_not_qualify_get_no_computed_question(trial):
    assert build(trial) == []


def test_three_arms_give_one_question_per_pair_and_no_skip_rows():
    arms = [("Low dose", "EXPERIMENTAL"), ("High dose", "EXPERIMENTAL"), ("Placebo", "PLACEBO_COMPARATOR")]
    t = safety_trial(arms=arms, counts=((5, 40), (20, 40), (6, 40)))
    questions, skips, counts = build_question_tables(t.tables())
    rows = questions.to_pylist()
    comparative = [(r["arm_x"], r["arm_y"], r["answer"]) for r in rows if r["kind"] == "comparative"]
    assert comparative == [("Low dose", "High dose", 0), ("Low dose", "Placebo", 2), ("High dose", "Placebo", 1)]
    assert [(r["arm_x"], r["arm_y"]) for r in rows if r["kind"] == "superiority"] == [("Low dose", "Placebo"),
                                                                                      ("High dose", "Placebo")]
    assert skips.num_rows == 0 and counts == {}  # skip rows and counts stand for what yields no question


def test_safety_wording():
    assert is_safety_outcome({"title": "Incidence of Treatment-Emergent Adverse Events (TEAEs)"})
    assert is_safety_outcome({"title": "Dose-limiting Toxicities"})
    assert not is_safety_outcome({"title": "Overall Survival"})


@pytest.mark.parametrize("title,description", [
    ("Number of Patients With Adverse Events, Serious Adverse Events and Discontinuations Due to Adverse Events", None),
    ("Number of Participants With Adverse Events (AEs) and Serious Adverse Events (SAEs)", None),
    ("Number of Adverse Events", None),
    ("Unsolicited Adverse Events", "Number of unsolicited AEs within four weeks after each vaccination"),
])
def test_a_value_that_may_count_several_things_or_events_gets_no_question(title, description):
    t = safety_trial(title=title)
    t.rows["outcome_measures"][0]["description"] = description
    assert build(t) == []
    assert build(safety_trial(title="Number of Participants With Discontinuations Due to Adverse Events"))  # one thing


def test_equal_shares_are_no_difference_whichever_arm_is_better():
    rows = build(safety_trial(counts=((0, 30), (0, 28))))  # no serious adverse event in either arm: Fisher p = 1
    assert [(r["kind"], r["answer"], r["x_better"], r["p_value"]) for r in rows] == [
        ("superiority", 1, None, 1.0), ("comparative", 2, None, 1.0)]
    assert question_evidence_problems(build_questions(safety_trial(counts=((0, 30), (0, 28))).tables())[0]) == {}
    unknown = safety_trial(counts=((0, 30), (0, 28)), title="Safety Outcome Measure")  # polarity unknown: none
    assert build(unknown) == []


@pytest.mark.parametrize("fields, kept", [
    ({"enrollment": 50, "intervention_model": "CROSSOVER"}, False),  # the same 50 people in both periods
    ({"enrollment": 60, "intervention_model": "SINGLE_GROUP"}, False),  # 100 analysed of 60: some in both groups
    ({"enrollment": None, "intervention_model": "CROSSOVER"}, False),  # a crossover that cannot be checked
    ({"enrollment": 100, "intervention_model": "CROSSOVER"}, True),  # crossover on failure: randomised arms apart
    ({"enrollment": 100, "intervention_model": "SINGLE_GROUP"}, True),  # two cohorts of 50
    ({"enrollment": None, "intervention_model": "SINGLE_GROUP"}, True),  # cohorts that cannot be checked
    ({"enrollment": 60, "intervention_model": "CROSSOVER", "enrollment_type": "ESTIMATED"}, False),  # no actual figure
    ({"enrollment": 60}, True),  # parallel arms are randomised apart, whatever the enrollment figure says
])
def test_groups_that_share_participants_get_no_computed_question(fields, kept):
    """Fisher's test is for independent samples: in a crossover or single-group design, groups whose participants
    analysed outnumber the enrolled are the same people in several periods."""
    rows = build(safety_trial(**fields))
    assert (len(rows) == 2) is kept, rows
    assert may_be_independent({"enrollment": 12, "intervention_model": "CROSSOVER"}, 12, 12) is False
