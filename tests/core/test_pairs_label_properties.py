"""Properties of the labels: swapping the two groups' results flips every direction label and never the significance;
listing the analysis' groups in the other order changes nothing."""

from hypothesis import given, settings
from hypothesis import strategies as st

from deepimagine_core.pairs.historical import build_questions
from tests.core.test_pairs_fixtures import TrialTables, analysis, two_arm_trial

TITLES = ["Change From Baseline in HbA1c", "Change in FEV1 From Baseline", "Percentage of Participants With Response",
          "Time to Disease Progression", "Number of Participants With Adverse Events"]
ARMS = [(("Drug A", "EXPERIMENTAL"), ("Placebo", "PLACEBO_COMPARATOR")),
        (("Drug A", "EXPERIMENTAL"), ("Metformin", "ACTIVE_COMPARATOR")),
        (("Drug A 10 mg", "EXPERIMENTAL"), ("Drug A 20 mg", "EXPERIMENTAL"))]
values = st.floats(min_value=-50, max_value=50, allow_nan=False).filter(lambda v: abs(v) > 1e-6)
p_values = st.floats(min_value=1e-6, max_value=0.99, allow_nan=False)


def _labels(vx: float, vy: float, p: float, title: str, arms, group_ids=("O1", "O2")) -> dict[str, dict]:
    t = two_arm_trial(TrialTables(), "NCT00000099", title=title, values=(vx, vy), arms=arms,
                      ana=analysis(group_ids, p=p))
    table, _ = build_questions(t.tables())
    return {row["kind"]: row for row in table.to_pylist()}


@settings(max_examples=60, deadline=None)
@given(vx=values, vy=values, p=p_values, title=st.sampled_from(TITLES), arms=st.sampled_from(ARMS))
def test_swapping_the_groups_flips_direction_never_significance(vx, vy, p, title, arms):
    if vx == vy:
        return
    before, after = _labels(vx, vy, p, title, arms), _labels(vy, vx, p, title, arms)
    assert before.keys() == after.keys() and before  # the same questions are asked either way
    for kind, b in before.items():
        a = after[kind]
        assert a["significant"] == b["significant"]
        if kind == "endpoint_met" and b["label_kind"] == "significance":
            assert a["answer"] == b["answer"]
            continue
        assert a["x_better"] is (not b["x_better"])
        if kind == "comparative":
            assert a["answer"] == {0: 1, 1: 0, 2: 2}[b["answer"]]
        elif b["significant"]:  # superiority, and endpoint met as a benefit: 0 <-> 1
            assert a["answer"] == 1 - b["answer"]
        else:
            assert a["answer"] == b["answer"] == 1


@settings(max_examples=30, deadline=None)
@given(vx=values, vy=values, p=p_values, title=st.sampled_from(TITLES), arms=st.sampled_from(ARMS))
def test_the_order_groups_are_listed_in_changes_nothing(vx, vy, p, title, arms):
    assert _labels(vx, vy, p, title, arms) == _labels(vx, vy, p, title, arms, group_ids=("O2", "O1"))
