"""Historical questions from hand-made tables: labels, CT Open wording, evidence, and every counted skip."""

import json

import pytest

from deepimagine_core.pairs.comparisons import named_pair
from deepimagine_core.pairs.historical import (
    SKIP_REASONS,
    build_question_tables,
    build_questions,
    questions_from_table,
    significance,
)
from deepimagine_core.questions import Question
from tests.core.test_pairs_fixtures import TrialTables, analysis, two_arm_trial


def build(t: TrialTables, **kw):
    table, skips = build_questions(t.tables(), **kw)
    return table.to_pylist(), skips


def by_kind(rows, kind):
    return [r for r in rows if r["kind"] == kind]


def test_significant_improvement_gives_all_labels_and_evidence():
    rows, skips = build(two_arm_trial(TrialTables(), "NCT00000001", ana=analysis(p=0.01)))
    sup, = by_kind(rows, "superiority")
    assert sup["options"] == [
        "The study arm Drug A has achieved statistically significant improvements over the study arm Placebo with "
        "respect to this specific endpoint.",
        "The study arm Drug A has not achieved statistically significant improvements over the study arm Placebo with "
        "respect to this specific endpoint, either because of no statistical effect or worse effect.",
    ]
    assert sup["answer"] == 0 and sup["label_kind"] == "direction" and sup["meta_label"] == "single_arm"
    assert sup["category"] == "2-way_explicit" and sup["polarity"] is False and sup["x_better"] is True
    assert sup["p_value"] == 0.01 and sup["analysis_index"] == 0 and "HbA1c" in sup["polarity_rule"]
    assert json.loads(sup["group_values"])["x"]["value"] == -1.0
    met, = by_kind(rows, "endpoint_met")
    assert met["options"] == ["This endpoint is met.", "This endpoint is not met."]
    assert met["answer"] == 0 and met["label_kind"] == "benefit" and met["category"] == "2-way_implicit"
    assert sup["arm_match_methods"] == met["arm_match_methods"] == ["exact"]
    comp, = by_kind(rows, "comparative")  # the 3-way question of the same comparison: X significantly better
    assert comp["options"][0] == "Study Arm Placebo is statistically significantly worse than Study Arm Drug A."
    assert comp["answer"] == 0 and comp["category"] == "3-way_explicit" and comp["analysis_index"] == 0
    assert [r["kind"] for r in rows] == ["superiority", "comparative", "endpoint_met"]
    old, _ = build(two_arm_trial(TrialTables(), "NCT00000001", ana=analysis(p=0.01)), comparative="head_to_head")
    assert [r["kind"] for r in old] == ["superiority", "endpoint_met"]  # the earlier rule: no 3-way against placebo
    assert {r["question_id"] for r in rows} == {"NCT00000001|outcome:0|0", "NCT00000001|outcome:0|1",
                                                "NCT00000001|outcome:0|2"}
    assert json.loads(sup["arms"])[0] == {"label": "Drug A", "type": "EXPERIMENTAL",
                                          "description": "Participants receive Drug A.",
                                          "interventionNames": ["Drug: Drug A"],
                                          "interventions": [{"type": "DRUG", "name": "Drug A",
                                                             "description": "Drug A tablets", "otherNames": []}]}
    assert json.loads(sup["endpoint"])["outcome_type"] == "primaryOutcomes"
    assert skips == {}


@pytest.mark.parametrize("ana,significant", [
    (analysis(p=0.2), False),
    (analysis(p=0.001, raw="<0.001", rel="<"), True),
    (analysis(p=0.05, raw="0.05", rel="="), False),  # p = alpha is not significant
    (analysis(p=0.05, raw=">0.05", rel=">"), False),
    (analysis(param_type="Hazard Ratio (HR)", ci_pct=95.0, ci_lower=0.6, ci_upper=0.9), True),  # CI only, ratio
    (analysis(param_type="Hazard Ratio (HR)", ci_pct=95.0, ci_lower=0.8, ci_upper=1.2), False),
    (analysis(param_type="Mean Difference (Final Values)", ci_pct=95.0, ci_lower=-2.0, ci_upper=-1.0), True),
])
def test_significance_decides_labels(ana, significant):
    rows, _ = build(two_arm_trial(TrialTables(), "NCT00000002", ana=ana))
    sup, = by_kind(rows, "superiority")
    met, = by_kind(rows, "endpoint_met")
    assert sup["significant"] is significant
    assert sup["answer"] == (0 if significant else 1) and met["answer"] == (0 if significant else 1)


@pytest.mark.parametrize("ana,reason", [
    (analysis(p=0.1, raw="<0.1", rel="<"), "p_inconclusive"),
    (analysis(p=0.05, raw="<=0.05", rel="<="), "p_inconclusive"),
    (analysis(), "no_p_no_ci"),
    (analysis(param_type="Other", ci_pct=95.0, ci_lower=-0.1, ci_upper=0.4), "ci_null_unknown"),  # 0 in, 1 out
    (analysis(param_type="Odds Ratio (OR)", ci_pct=90.0, ci_lower=1.1, ci_upper=2.0), "ci_inconclusive"),
    (analysis(p=0.001, non_inferiority_type="NON_INFERIORITY"), "not_superiority"),
    (analysis(p=0.001, non_inferiority_type="EQUIVALENCE"), "not_superiority"),
    (analysis(p=0.001, non_inferiority_type="NON_INFERIORITY_OR_EQUIVALENCE"), "not_superiority"),
    (analysis(p=0.001, non_inferiority_type="NON_INFERIORITY_OR_EQUIVALENCE_LEGACY"), "not_superiority"),
    (analysis(p=0.001, non_inferiority_type="Non-Inferiority or Equivalence"), "not_superiority"),
    (analysis(group_ids=(), p=0.01), "no_group_ids"),
    (analysis(group_ids=("O1",), p=0.01), "within_group_analysis"),
    (analysis(group_ids=("O1", "O9"), p=0.01), "unknown_group_id"),
])
def test_unusable_analyses_are_counted_not_guessed(ana, reason):
    t = two_arm_trial(TrialTables(), "NCT00000003", ana=ana)
    questions, skip_table, skips = build_question_tables(t.tables())
    assert questions.num_rows == 0 and skips == {reason: 1}
    assert skip_table.to_pylist() == [{"nct_id": "NCT00000003", "outcome_index": 0, "analysis_index": 0,
                                       "reason": reason, "detail": skip_table.column("detail")[0].as_py()}]
    assert reason in SKIP_REASONS


def test_three_way_questions_of_placebo_comparisons_read_each_side():
    """Not significant → "no difference" (2); significant with placebo better → "Y better" (1)."""
    rows, _ = build(two_arm_trial(TrialTables(), "NCT00000002", ana=analysis(p=0.3)))
    assert [r["answer"] for r in by_kind(rows, "comparative")] == [2]
    worse = two_arm_trial(TrialTables(), "NCT00000003", values=(-0.2, -1.0), ana=analysis(p=0.003))
    rows, _ = build(worse)
    sup, = by_kind(rows, "superiority")
    comp, = by_kind(rows, "comparative")
    assert sup["answer"] == 1 and comp["answer"] == 1 and comp["x_better"] is False


def test_an_unknown_comparative_scope_is_refused():
    with pytest.raises(ValueError, match="comparative must be one of all, head_to_head"):
        build(two_arm_trial(TrialTables(), "NCT00000004"), comparative="placebo")


def test_significance_relations():
    assert significance({"p_value": 0.049, "p_value_relation": "="}) == (True, "p-value")
    assert significance({"p_value": 0.01, "p_value_relation": "<"}, alpha=0.01) == (True, "p-value")
    assert significance({"p_value": 0.01, "p_value_relation": "="}, alpha=0.01) == (False, "p-value")
    assert significance({"p_value": 0.2, "p_value_relation": ">"})[0] is False
    assert significance({"p_value": 0.01, "p_value_relation": ">"})[0] is None
    assert significance({"ci_lower": 0.1, "ci_upper": 0.3, "ci_pct": 95, "ci_n_sides": "ONE_SIDED",
                         "param_type": "Mean Difference"})[0] is None
    log_hr = {"ci_lower": -0.1, "ci_upper": 0.3, "ci_pct": 99, "param_type": "Log hazard ratio"}  # null 0
    cox = {"ci_lower": 0.63, "ci_upper": 0.97, "ci_pct": 95, "param_type": "Cox Proportional Hazard"}  # an HR
    assert significance(cox) == (True, "CI")
    # a "hazard" interval below zero is no ratio; it contains both 0 and 1, so it is not significant either way
    assert significance({**cox, "ci_lower": -7.2, "ci_upper": 4.6}) == (False, "CI")
    assert significance({"ci_lower": 85.0, "ci_upper": 110.0, "ci_pct": 95, "param_type": "Ratio in %"}) == \
        (False, "CI")  # null 100
    assert significance({"ci_lower": 0.88, "ci_upper": 13.7, "ci_pct": 95, "param_type": "Diff of rates"}) == \
        (True, "CI")
    assert significance(log_hr) == (None, "CI level inconclusive at alpha")


def test_unknown_polarity_gives_no_direction_or_benefit_label():
    rows, skips = build(two_arm_trial(TrialTables(), "NCT00000004", title="Change From Baseline in VEGF"))
    assert rows == []  # "met" means a benefit: an unknown direction decides nothing
    assert skips == {"superiority: unknown polarity": 1, "comparative: unknown polarity": 1,
                     "endpoint_met: direction unknown": 1, "direction_unknown": 1}


def test_pk_outcome_gives_no_question():
    rows, skips = build(two_arm_trial(TrialTables(), "NCT00000005", title="Cmax of Drug A"))
    assert rows == []
    assert skips == {"superiority: unknown polarity": 1, "comparative: unknown polarity": 1,
                     "endpoint_met: pharmacokinetic, ECG or dose-finding outcome": 1, "excluded_outcome": 1}


def test_one_arm_trial_and_unmapped_groups_are_skipped():
    t = TrialTables().trial("NCT00000006", [("Drug A", "EXPERIMENTAL")])
    t.outcome("NCT00000006", 0, "Change in pain score", [("O1", "Drug A", 1.0, 10), ("O2", None, 2.0, 10)],
              analyses=[analysis(p=0.01)])
    two_arm_trial(t, "NCT00000007")
    t.rows["outcome_groups"][-1]["arm_label"] = "Not an arm"
    rows, skips = build(t)
    assert rows == [] and skips == {"one_arm_multi_group": 1, "group_unmapped": 1}


def test_non_numeric_and_multi_class_values_skip_direction_only():
    t = two_arm_trial(TrialTables(), "NCT00000008", values=("NA", -0.2))
    rows, skips = build(t)
    assert rows == [] and skips == {"superiority: non-numeric group value": 1,
                                    "comparative: non-numeric group value": 1, "endpoint_met: direction unknown": 1,
                                    "direction_unknown": 1}
    t = TrialTables().trial("NCT00000009", [("Drug A", "EXPERIMENTAL"), ("Placebo", "PLACEBO_COMPARATOR")])
    t.outcome("NCT00000009", 0, "Change in pain score",
              [("O1", "Drug A", [1.0, 2.0], 9), ("O2", "Placebo", [3.0, 4.0], 9)],
              analyses=[analysis(p=0.01)], classes=["Week 4", "Week 8"])
    rows, skips = build(t)
    assert rows == []
    assert skips == {"superiority: several values per group (classes or categories)": 1,
                     "comparative: several values per group (classes or categories)": 1,
                     "endpoint_met: direction unknown": 1, "direction_unknown": 1}


def test_significant_but_worse_against_active_comparator():
    t = two_arm_trial(TrialTables(), "NCT00000010", values=(-0.2, -1.0), ana=analysis(p=0.003),
                      arms=(("New drug", "EXPERIMENTAL"), ("Metformin", "ACTIVE_COMPARATOR")))
    rows, _ = build(t)
    sup, = by_kind(rows, "superiority")
    comp, = by_kind(rows, "comparative")
    met, = by_kind(rows, "endpoint_met")
    assert sup["answer"] == 1 and sup["x_better"] is False
    assert comp["options"] == ["Study Arm Metformin is statistically significantly worse than Study Arm New drug.",
                               "Study Arm New drug is statistically significantly worse than Study Arm Metformin.",
                               "No statistically significant difference between Study Arm New drug and Study Arm "
                               "Metformin."]
    assert comp["answer"] == 1 and comp["category"] == "3-way_explicit"
    assert met["answer"] == 1 and met["x_better"] is False  # a significant harm is not "met"
    assert met["label_kind"] == "benefit"


def test_two_experimental_arms_against_placebo():
    t = TrialTables().trial("NCT00000011", [("Low dose", "EXPERIMENTAL"), ("High dose", "EXPERIMENTAL"),
                                            ("Placebo", "PLACEBO_COMPARATOR")])
    t.outcome("NCT00000011", 0, "Percentage of Participants With Clinical Response",
              [("O1", "Low dose", 12, 40), ("O2", "High dose", 30, 40), ("O3", "Placebo", 10, 20)],
              param_type="COUNT_OF_PARTICIPANTS", unit="participants",
              analyses=[analysis(("O1", "O3"), p=0.4), analysis(("O2", "O3"), p=0.02), analysis(("O1", "O2"), p=0.3)])
    rows, skips = build(t)
    sup = by_kind(rows, "superiority")
    assert [(r["arm_x"], r["answer"], r["meta_label"]) for r in sup] == [
        ("Low dose", 1, "distinguishable_arm"), ("High dose", 0, "distinguishable_arm")]
    # counts are compared as shares: 12/40 = 0.30 is not better than 10/20 = 0.50
    assert sup[0]["x_better"] is False
    comp = by_kind(rows, "comparative")  # each comparison, the two experimental arms head to head among them
    assert [(r["arm_x"], r["arm_y"], r["answer"]) for r in comp] == [
        ("Low dose", "Placebo", 2), ("High dose", "Placebo", 0), ("Low dose", "High dose", 2)]
    met, = by_kind(rows, "endpoint_met")
    assert met["options"] == ["At least one arm listed here met this endpoint.",
                              "No arm listed here met this endpoint."]
    assert met["answer"] == 0 and met["meta_label"] == "no_distinguishable_arm" and met["analysis_index"] == 1
    assert json.loads(met["extra"])["listed_arms"] == ["High dose", "Low dose"]
    assert [q["question_index"] for q in rows] == [0, 1, 2, 3, 4, 5] and skips == {}


def test_repeated_analysis_of_one_pair_is_counted():
    t = two_arm_trial(TrialTables(), "NCT00000012")
    t.rows["outcome_analyses"].append({**t.rows["outcome_analyses"][0], "analysis_index": 1, "p_value": 0.9})
    rows, skips = build(t)
    assert all(r["analysis_index"] == 0 for r in rows) and skips == {"repeated_pair": 1}


def test_questions_from_table_and_split():
    table, _ = build_questions(two_arm_trial(TrialTables(), "NCT00000013").tables(), splits={"NCT00000013": "test"})
    questions = questions_from_table(table)
    assert {q.category for q in questions} == {"2-way_explicit", "2-way_implicit", "3-way_explicit"}
    assert all(q.extra["split"] == "test" and q.answer in (0, 1, 2) for q in questions)
    assert set(table.column("split").to_pylist()) == {"test"}


def test_rows_carry_exactly_question_to_row():
    table, _ = build_questions(two_arm_trial(TrialTables(), "NCT00000014").tables())
    for row in table.to_pylist():
        expected = Question.from_row(row).to_row()
        assert {k: row[k] for k in expected} == expected


def test_one_experimental_arm_against_two_controls_is_one_endpoint():
    t = TrialTables().trial("NCT00000015", [("Outlook", "EXPERIMENTAL"), ("Attention control", "ACTIVE_COMPARATOR"),
                                            ("Usual care", "NO_INTERVENTION")])
    t.outcome("NCT00000015", 0, "Quality of Life", [("O1", "Outlook", 5.0, 30), ("O2", "Attention control", 4.0, 30),
                                                     ("O3", "Usual care", 3.0, 30)],
              analyses=[analysis(("O1", "O2"), p=0.3), analysis(("O1", "O3"), p=0.01)])
    rows, _ = build(t)
    met, = by_kind(rows, "endpoint_met")
    assert met["options"] == ["This endpoint is met.", "This endpoint is not met."] and met["meta_label"] == "no_arm"
    assert met["answer"] == 0 and met["analysis_index"] == 1 and met["analysis_indices"] == [0, 1]


def test_all_experimental_arms_get_an_implicit_question_from_significance():
    t = TrialTables().trial("NCT00000016", [("Drug 10 mg", "EXPERIMENTAL"), ("Drug 20 mg", "EXPERIMENTAL")])
    t.outcome("NCT00000016", 0, "Change From Baseline in VEGF", [("O1", "Drug 10 mg", 1.0, 30),
                                                                ("O2", "Drug 20 mg", 2.0, 30)],
              analyses=[analysis(p=0.01)])
    rows, skips = build(t)
    met, = by_kind(rows, "endpoint_met")  # polarity unknown: no comparative question, but "met" needs none here
    assert met["options"] == ["This endpoint is met.", "This endpoint is not met."] and met["meta_label"] == "no_arm"
    assert met["answer"] == 0 and met["label_kind"] == "significance"
    assert skips == {"comparative: unknown polarity": 1}


def test_one_arm_trial_with_a_hypothesis_test():
    t = TrialTables().trial("NCT00000017", [("Drug A", "EXPERIMENTAL")])
    t.outcome("NCT00000017", 0, "Change in pain score", [("O1", "Drug A", -2.0, 30)],
              analyses=[analysis(("O1",), p=0.2)])
    t.outcome("NCT00000017", 1, "Cmax of Drug A", [("O1", "Drug A", 5.0, 30)], analyses=[analysis(("O1",), p=0.01)])
    rows, skips = build(t)
    met, = rows
    assert (met["kind"], met["label_kind"], met["meta_label"], met["answer"]) == ("endpoint_met", "significance",
                                                                                 "no_arm", 1)
    assert met["arm_x"] == "Drug A" and met["arm_y"] is None
    assert skips == {"endpoint_met: pharmacokinetic, ECG or dose-finding outcome": 1, "excluded_outcome": 1}


def test_many_group_analysis_used_by_the_two_groups_its_description_names():
    t = TrialTables().trial("NCT00000018", [("Drug 10 mg", "EXPERIMENTAL"), ("Drug 20 mg", "EXPERIMENTAL"),
                                            ("Placebo", "PLACEBO_COMPARATOR")])
    t.outcome("NCT00000018", 0, "Change From Baseline in HbA1c",
              [("O1", "Drug 10 mg", -0.5, 30), ("O2", "Drug 20 mg", -0.9, 30), ("O3", "Placebo", -0.1, 30)],
              analyses=[analysis(("O1", "O2", "O3"), p=0.001, groups_description="Drug 20 mg versus placebo"),
                        analysis(("O1", "O2", "O3"), p=0.001, groups_description="Overall treatment effect (ANOVA)")])
    rows, skips = build(t)
    sup, = by_kind(rows, "superiority")
    assert (sup["arm_x"], sup["arm_y"], sup["answer"]) == ("Drug 20 mg", "Placebo", 0)
    assert skips == {"multi_group_no_pair": 1}


def test_named_pair_consumes_longer_names_first():
    groups = {"O1": {"title": "Drug", "arm_label": "Drug"}, "O2": {"title": "Drug plus Placebo", "arm_label": None},
              "O3": {"title": "Placebo", "arm_label": "Placebo"}}
    assert named_pair({"group_ids": ["O1", "O2", "O3"], "groups_description": "Drug plus Placebo vs Placebo"},
                      groups) == ["O2", "O3"]
    assert named_pair({"group_ids": ["O1", "O2", "O3"], "groups_description": "all groups"}, groups) is None


def test_a_hazard_ratio_against_the_medians_leaves_the_direction_unclear():
    arms = (("New drug", "EXPERIMENTAL"), ("Old drug", "ACTIVE_COMPARATOR"))
    agree = analysis(param_type="Hazard Ratio (HR)", ci_pct=95.0, ci_lower=0.5, ci_upper=0.9)  # favours X
    rows, _ = build(two_arm_trial(TrialTables(), "NCT00000019", title="Overall Survival", values=(9.0, 7.0),
                                  arms=arms, ana=agree))
    assert by_kind(rows, "superiority")[0]["answer"] == 0
    against = analysis(param_type="Hazard Ratio (HR)", ci_pct=95.0, ci_lower=1.1, ci_upper=1.9)  # favours Y
    rows, skips = build(two_arm_trial(TrialTables(), "NCT00000020", title="Overall Survival", values=(9.0, 7.0),
                                      arms=arms, ana=against))
    assert rows == [] and skips["superiority: hazard ratio and group values disagree"] == 1


def test_the_category_an_analysis_names_gives_the_values():
    t = TrialTables().trial("NCT00000021", [("Drug A", "EXPERIMENTAL"), ("Placebo", "PLACEBO_COMPARATOR")])
    t.outcome("NCT00000021", 0, "Clinical Response", [("O1", "Drug A", [80, 20], 100), ("O2", "Placebo", [60, 40], 100)],
              param_type="COUNT_OF_PARTICIPANTS", unit="participants", classes=["Clinical cure", "Clinical failure"],
              analyses=[analysis(p=0.01, groups_description="Difference of clinical cure rates"),
                        analysis(p=0.01, groups_description="all categories")])
    t.outcome("NCT00000021", 1, "Clinical Response", [("O1", "Drug A", [80, 20], 100), ("O2", "Placebo", [60, 40], 100)],
              param_type="COUNT_OF_PARTICIPANTS", unit="participants", classes=["Clinical cure", "Clinical failure"],
              analyses=[analysis(p=0.01, groups_description="Difference of clinical failure rates")])
    rows, skips = build(t)
    sup = by_kind(rows, "superiority")
    assert [(r["outcome_index"], r["answer"]) for r in sup] == [(0, 0)]
    assert json.loads(sup[0]["group_values"])["x"]["row"] == "Clinical cure"
    assert skips["superiority: the named category changes the polarity"] == 1
