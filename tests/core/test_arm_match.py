"""Result groups → arms: each method, and the cases where no arm must be given."""

from deepimagine_core.ctgov.arm_match import ArmMatcher


def matcher(arms: list[tuple[str, str, str]], interventions: list[tuple[str, str]] = (),
            crossover: bool = False) -> ArmMatcher:
    """arms: (label, type, description); interventions: (arm label, name); crossover: the trial's design."""
    m = ArmMatcher([label for label, _, _ in arms], crossover=crossover)
    m.bind([{"label": label, "type": t, "description": d, "intervention_names": []} for label, t, d in arms],
           [{"arm_label": label, "name": name, "other_names": [], "dose_text": None} for label, name in interventions])
    return m


def groups(*titles, descriptions=None):
    return [(f"O{i}", title, (descriptions or {}).get(title)) for i, title in enumerate(titles, 1)]


def test_label_methods():
    m = matcher([("Drug A 10 mg", "EXPERIMENTAL", ""), ("Placebo", "PLACEBO_COMPARATOR", "")])
    assert m.match_groups(groups("Drug A 10 mg", "PLACEBO")) == [("Drug A 10 mg", "exact"), ("Placebo", "normalised")]
    assert m.match_groups(groups("Drug A 30 mg")) == [(None, None)]  # another dose is another arm


def test_evidence_from_descriptions_doses_and_interventions():
    m = matcher([("1", "EXPERIMENTAL", "Ticagrelor 90 mg twice daily"), ("2", "EXPERIMENTAL", "Ticagrelor 60 mg twice "
                 "daily"), ("3", "PLACEBO_COMPARATOR", "Matching tablets")], [("3", "Placebo")])
    assert m.match_groups(groups("Ticagrelor 60 mg", "Ticagrelor 90 mg", "Placebo")) == [
        ("2", "evidence"), ("1", "evidence"), ("3", "evidence")]


def test_position_only_for_opaque_titles_in_order():
    m = matcher([("Drug A", "EXPERIMENTAL", ""), ("Drug B", "ACTIVE_COMPARATOR", "")])
    assert m.match_groups(groups("Group 1", "Group 2")) == [("Drug A", "position"), ("Drug B", "position")]
    assert m.match_groups(groups("Group 1", "Group 2", "Group 3")) == [(None, None)] * 3  # counts differ
    m = matcher([("Drug A", "EXPERIMENTAL", ""), ("Drug B", "PLACEBO_COMPARATOR", "")])
    assert m.match_groups(groups("Group 1", "Group 2")) == [("Drug A", "position"), ("Drug B", "position")]
    m = matcher([("Drug A", "EXPERIMENTAL", ""), ("Drug B", "EXPERIMENTAL", "")])
    assert m.match_groups(groups("Arm A", "Arm B")) == [("Drug A", "tokens"), ("Drug B", "tokens")]  # not position


def test_no_arm_for_pooled_groups_crossovers_and_weak_ties():
    m = matcher([("1", "EXPERIMENTAL", "Tocilizumab 8 mg/kg"), ("2", "PLACEBO_COMPARATOR", "Placebo")],
                [("1", "Tocilizumab")])
    assert m.match_groups(groups("All Participants Treated With Tocilizumab")) == [(None, None)]
    m = matcher([("Sequence 1", "EXPERIMENTAL", "alendronate then vitamin D"),
                 ("Sequence 2", "EXPERIMENTAL", "vitamin D then alendronate 2800 IU")])
    assert m.match_groups(groups("Vitamin D 2800 IU")) == [(None, None)]
    m = matcher([("1", "EXPERIMENTAL", "Drug X 10 mg"), ("2", "EXPERIMENTAL", "Drug X 20 mg"),
                 ("3", "PLACEBO_COMPARATOR", "Placebo")])
    assert m.match_groups(groups("Drug X", "Drug X low")) == [(None, None), (None, None)]  # no distinctive word


def test_a_weak_mapping_never_takes_an_arm_a_stronger_one_holds():
    m = matcher([("Active", "EXPERIMENTAL", "Genotropin 0.035 mg/kg"), ("Control", "NO_INTERVENTION", "untreated")],
                [("Active", "Genotropin")])
    assert m.match_groups(groups("Active", "Genotropin")) == [("Active", "exact"), (None, None)]


def test_elimination_and_numbers_a_label_states():
    m = matcher([("Nicotine Nasal Spray", "EXPERIMENTAL", ""), ("Placebo nasal spray", "PLACEBO_COMPARATOR", "")])
    assert m.match_groups(groups("NNS Active", "Placebo")) == [("Nicotine Nasal Spray", "elimination"),
                                                                ("Placebo nasal spray", "contained")]
    m = matcher([("Drug A", "EXPERIMENTAL", ""), ("Placebo", "PLACEBO_COMPARATOR", "")])
    assert m.match_groups(groups("Drug A", "Drug B 5 mg")) == [("Drug A", "exact"), (None, None)]  # drug vs control
    m = matcher([("Safety part: EMD 525797 250 mg + Standard of Care (SoC)", "EXPERIMENTAL", ""),
                 ("Randomized Part: SoC", "OTHER", ""), ("Randomized Part: EMD 525797 500 mg + SoC", "EXPERIMENTAL", "")])
    assert m.match_groups(groups("Standard of Care (SoC)"))[0][0] != "Safety part: EMD 525797 250 mg + Standard of " \
                                                                      "Care (SoC)"


def test_no_elimination_for_two_visits_of_one_arm():
    m = matcher([("1", "EXPERIMENTAL", "Subjects received Prevnar"), ("2", "EXPERIMENTAL", "Subjects received MnCC")],
                [("1", "13vPnC")])
    found = m.match_groups(groups("Prevnar / 13vPnC Visit 3", "Prevnar / 13vPnC Visit 4"))
    assert "elimination" not in {method for _, method in found}


def test_placebo_word_abbreviations_and_sequences():
    m = matcher([("Tiotropium 18 µg", "ACTIVE_COMPARATOR", "tiotropium versus placebo"),
                 ("2", "PLACEBO_COMPARATOR", "placebo to tiotropium")])
    assert m.match_groups(groups("Placebo", "Tiotropium")) == [("2", "evidence"), ("Tiotropium 18 µg", "elimination")]
    crossed = groups("Placebo", "Tiotropium", descriptions={"Placebo": "placebo first, then tiotropium"})
    assert m.match_groups(crossed)[0] == (None, None)
    m = matcher([("linagliptin low dose", "EXPERIMENTAL", "linagliptin low dose twice daily"),
                 ("placebo", "PLACEBO_COMPARATOR", "placebo matching linagliptin"),
                 ("linagliptin medium dose", "EXPERIMENTAL", "linagliptin medium dose once daily")])
    assert m.match_groups(groups("Placebo", "Lina 2.5 Twice Daily (Bid)", "Lina 5 Once Daily (qd)")) == [
        ("placebo", "normalised"), ("linagliptin low dose", "evidence"), ("linagliptin medium dose", "evidence")]
    m = matcher([("12027-027", "EXPERIMENTAL", "mouth rinse"), ("310158077046", "ACTIVE_COMPARATOR", "Sensodyne"),
                 ("037000003212", "PLACEBO_COMPARATOR", "Crest")])
    assert m.match_groups(groups("Negative Control (Crest)", "Positive Control (Sensodyne Toothpaste)"))[1] == \
        ("310158077046", "evidence")


def test_no_arm_that_adds_a_component_the_group_does_not_name():
    m = matcher([("Modified Bolus 5-FU/LV with Irinotecan", "EXPERIMENTAL", ""),
                 ("FOLFIRI + bevacizumab", "EXPERIMENTAL", ""), ("miFL + bevacizumab", "EXPERIMENTAL", ""),
                 ("Infusional 5-FU/LV with Irinotecan", "EXPERIMENTAL", "")])
    plain = groups("FOLFIRI", "mIFL", descriptions={"FOLFIRI": "Irinotecan + infusional 5-FU/LV with celecoxib",
                                                    "mIFL": "Irinotecan + modified-bolus 5-FU/LV"})
    assert m.match_groups(plain) == [(None, None), (None, None)]  # may be the arms without bevacizumab
    named = groups("FOLFIRI", descriptions={"FOLFIRI": "Bevacizumab + irinotecan + infusional 5-FU/LV"})
    assert m.match_groups(named) == [("FOLFIRI + bevacizumab", "contained")]
    m = matcher([("Drug A + placebo B", "EXPERIMENTAL", ""), ("Placebo A + Drug B", "EXPERIMENTAL", ""),
                 ("Placebo A + placebo B", "PLACEBO_COMPARATOR", "")])
    assert m.match_groups(groups("Drug A"))[0] == ("Drug A + placebo B", "contained")  # a placebo is a dummy


def test_a_group_number_is_no_dose():
    m = matcher([(f"PTHrP(1-36) {d} pmol/kg/hr", "EXPERIMENTAL", f"PTHrP(1-36) at {d} picomoles/kg/hr for one week.")
                 for d in (2, 4, 5, 6)])
    descriptions = {f"Group {i}": f"PTHrP(1-36) {d} picomoles/kg/hr for one week" for i, d in ((2, 4), (4, 6))}
    assert m.match_groups(groups("Group 2", "Group 4", descriptions=descriptions)) == [(None, None)] * 2
    assert [label for label, _ in m.match_groups(groups("Group 1", "Group 2", "Group 3", "Group 4"))] == m.labels


def test_no_arm_for_a_title_that_orders_a_treatment_and_placebo():
    m = matcher([("Sugar pill", "PLACEBO_COMPARATOR", "Started with Placebo until the crossover."),
                 ("Lisinopril", "EXPERIMENTAL", "Started with Lisinopril until the crossover")],
                [("Lisinopril", "Lisinopril")])
    crossed = groups("Group B (Lisinopril First, Then Placebo)", "Group A (Placebo First, Then Lisinopril)")
    assert m.match_groups(crossed) == [(None, None), (None, None)]


def test_no_sequence_arm_for_a_treatment_group_of_a_crossover():
    # arms are sequences, groups the treatments pooled over both periods: no group is an arm (by contained, position)
    m = matcher([("Part 1: Drug First, Then Placebo", "EXPERIMENTAL", "drug 8 weeks, then placebo 8 weeks"),
                 ("Part 1: Placebo First, Then Drug", "EXPERIMENTAL", "placebo 8 weeks, then drug 8 weeks")],
                crossover=True)
    assert m.match_groups(groups("Part 1: Drug", "Part 1: Placebo")) == [(None, None)] * 2
    assert m.match_groups(groups("Treatment A", "Treatment B")) == [(None, None)] * 2
    assert m.match_groups(groups("Part 1: Drug First, Then Placebo")) == [("Part 1: Drug First, Then Placebo",
                                                                           "exact")]  # a sequence group is its arm
    m = matcher([("Grape Juice First", "ACTIVE_COMPARATOR", "grape juice, washout, then apple juice"),
                 ("Apple Juice First", "ACTIVE_COMPARATOR", "apple juice, washout, then grape juice")], crossover=True)
    assert m.match_groups(groups("Grape Juice", "Apple Juice")) == [(None, None)] * 2
    # ... unless the group names the arm, or (opaque titles, by position) its description orders the treatments
    m = matcher([("Drug then Placebo (Arm A)", "EXPERIMENTAL", ""), ("Placebo then Drug (Arm B)", "EXPERIMENTAL", "")],
                crossover=True)
    assert m.match_groups(groups("Drug (Arm A)", "Placebo (Arm B)")) == [
        ("Drug then Placebo (Arm A)", "tokens"), ("Placebo then Drug (Arm B)", "tokens")]
    m = matcher([("Drug then placebo", "EXPERIMENTAL", ""), ("Placebo then drug", "EXPERIMENTAL", "")], crossover=True)
    described = groups("1", "2", descriptions={"1": "Drug then placebo", "2": "Placebo then drug"})
    assert m.match_groups(described) == [("Drug then placebo", "position"), ("Placebo then drug", "position")]
    assert m.match_groups(groups("Arm 1", "Arm 2")) == [("Drug then placebo", "position"),
                                                        ("Placebo then drug", "position")]


def test_crossover_treatment_arms_and_parallel_delayed_starts_keep_their_groups():
    # a crossover whose arms are named as treatments maps its treatment groups as any trial
    m = matcher([("C-1266-7", "EXPERIMENTAL", "C-1266-7, then after a washout placebo"),
                 ("Placebo", "EXPERIMENTAL", "placebo, then after a washout C-1266-7")], crossover=True)
    assert m.match_groups(groups("C-1266-7", "Placebo")) == [("C-1266-7", "exact"), ("Placebo", "exact")]
    # not a crossover design: "Drug 2 mg then placebo" is its arm while on drug
    m = matcher([("Drug 2 mg then placebo", "EXPERIMENTAL", ""), ("Drug 6 mg then placebo", "EXPERIMENTAL", "")])
    assert m.match_groups(groups("Drug 2 mg Daily", "Drug 6 mg Daily")) == [
        ("Drug 2 mg then placebo", "tokens"), ("Drug 6 mg then placebo", "tokens")]
    # one sequence arm beside a treatment arm is a delayed start: its placebo phase is its group
    m = matcher([("Drug X", "EXPERIMENTAL", ""), ("Placebo followed by Drug X", "PLACEBO_COMPARATOR", "")],
                crossover=True)
    assert m.match_groups(groups("Drug X", "Placebo")) == [("Drug X", "exact"), ("Placebo followed by Drug X",
                                                                                 "contained")]
