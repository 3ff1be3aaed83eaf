"""The polarity rule set, one row per rule: (title, description, unit, param_type) → higher is better?, frame."""

import pytest

from deepimagine_core.pairs.polarity import outcome_polarity

CASES = [
    # level frame: a measured quantity or its change follows the concept
    ("Change From Baseline in Pain Score at Week 12", None, None, None, False, "level"),
    ("Change From Baseline in HbA1c at Week 24", None, "percent", None, False, "level"),
    ("Change From Baseline in Glycosylated Hemoglobin", None, None, None, False, "level"),  # not "hemoglobin"
    ("Percent Change From Baseline in LDL-C", None, None, None, False, "level"),
    ("Change in FEV1 From Baseline", None, "L", None, True, "level"),
    ("Quality of Life (SF-36 Physical Component)", None, None, None, True, "level"),
    ("Lumbar Spine Bone Mineral Density Percent Change From Baseline", None, None, None, True, "level"),
    ("Overall Survival", None, "months", "MEDIAN", True, "level"),
    ("Progression-free Survival", None, "months", "MEDIAN", True, "level"),  # not the bad event "progression"
    ("Mortality", None, None, None, False, "level"),
    ("Mahler Transitional Dyspnea Index Focal Score", None, None, None, True, "level"),  # not "dyspnea"
    ("Norfolk QOL-DN Total Score", None, None, None, False, "level"),  # higher = worse neuropathy
    ("Improvement in Left Ventricular Ejection Fraction", None, "%", None, True, "level"),
    # proportion frame: share of participants with a good / bad event
    ("Percentage of Participants Achieving ACR20 Response", None, "percentage of participants", None, True,
     "proportion"),
    ("Response Rate", None, "percentage of participants", None, True, "proportion"),
    ("Number of Participants With Adverse Events", None, "participants", None, False, "proportion"),
    ("Percentage of Participants With >=50% Reduction in Pain", None, None, None, True, "proportion"),
    ("Percentage of participants relapse-free at week 52", None, None, None, True, "proportion"),
    ("Clinical Remission at Week 8", None, "participants", "COUNT_OF_PARTICIPANTS", True, "proportion"),
    ("Number of Participants Who Died", None, "participants", None, False, "proportion"),
    ("Number of participants with non-fatal myocardial infarction", None, None, None, False, "proportion"),
    # having an event at all is no threshold on a quantity ("at least one", "1 or more", ">= 1")
    ("Number of Participants Who Experienced at Least One Adverse Event", None, "participants", None, False,
     "proportion"),
    ("Participants With 1 or More Injection-site Adverse Experiences", None, "participants", None, False,
     "proportion"),
    ("Number of participants with >= 1 hypoglycemic episode", None, None, None, False, "proportion"),
    ("Percentage of participants with at least 2 adverse events", None, None, None, None, "proportion"),
    # a dose lowered for toxicity is a harm, not a "reduction" of the adverse events that follow
    ("Dose Reduction Due to Treatment Emergent Adverse Events", None, "participants", None, False, "proportion"),
    # count frame: number of events
    ("Number of Exacerbations", None, "exacerbations per year", None, False, "count"),
    ("Rate of decline in FEV1", None, "mL/year", None, False, "count"),
    # time-to-event: later bad events are better, sooner good events are better
    ("Time to Relapse", None, "days", "MEDIAN", True, "time_to"),
    ("Time to Death", None, "months", "MEDIAN", True, "time_to"),
    ("Time to Disease Progression", None, "months", "MEDIAN", True, "time_to"),
    ("Time to First Exacerbation", None, "days", None, True, "time_to"),
    ("Time to Onset of Pain Relief", None, "minutes", "MEDIAN", False, "time_to"),
    ("Duration of Response", None, "months", None, True, "duration"),
    ("Duration of Hospital Stay", None, "days", None, False, "duration"),
    # unknown → None (the question is excluded, never guessed)
    ("Maximum Plasma Concentration (Cmax) of Drug X", None, "ng/mL", "GEOMETRIC_MEAN", None, "excluded"),
    ("AUC(0-inf) of Drug X", None, None, None, None, "excluded"),
    ("Plasma exposure", None, "ng*h/mL", None, None, "excluded"),  # PK unit alone decides
    ("Change From Baseline in QTcF", None, "msec", None, None, "excluded"),
    ("Maximum Tolerated Dose", None, "mg", None, None, "excluded"),
    ("Change From Baseline in Body Weight", None, "kg", None, None, "excluded"),  # loss or gain wanted: unknown
    ("Percentage of participants with HbA1c < 7%", None, None, None, True, "proportion"),  # below a bad quantity
    ("Number of participants with ALT > 3 x ULN", None, None, None, False, "proportion"),
    ("Percentage of participants with CD4 count < 200 cells", None, None, None, False, "proportion"),
    ("Percentage of participants with HbA1c < 7% and no hypoglycemia", None, None, None, None, "proportion"),
    ("Percentage of participants with values < 7%", None, None, None, None, "proportion"),  # no quantity named
    ("Reduction in HbA1c From Baseline", None, None, None, None, "level"),  # sign of a "reduction" varies
    ("Stool Frequency", None, None, None, None, "level"),
    ("Change From Baseline in VEGF", None, None, None, None, "level"),
    # clinical AUC is not pharmacokinetics
    ("FEV1 AUC (0-3h) Change From Baseline", None, "L", None, True, "level"),
]


@pytest.mark.parametrize("title,description,unit,param_type,expected,frame", CASES)
def test_polarity_rules(title, description, unit, param_type, expected, frame):
    p = outcome_polarity(title, description, unit, param_type)
    assert (p.higher_is_better, p.frame) == (expected, frame), p.rule
    assert p.rule  # every decision names its rule


def test_description_is_read_only_when_title_decides_nothing():
    from_title = outcome_polarity("Primary Efficacy Endpoint", None)
    assert from_title.higher_is_better is None
    p = outcome_polarity("Primary Efficacy Endpoint", "Change from baseline in pain intensity on an 11-point NRS")
    assert p.higher_is_better is False and "[from description]" in p.rule
    # a decided title is not overridden by its description
    assert outcome_polarity("Overall Survival", "deaths from any cause").higher_is_better is True


def test_empty_input_is_unknown():
    assert outcome_polarity(None).higher_is_better is None
    assert outcome_polarity("").rule.startswith("unknown")


@pytest.mark.parametrize("title,description,unit,expected", [
    ("Number of Patients Reporting Pain Freedom at 2 Hours Postdose", None, "participants", True),
    ("Percentage of Participants With PGA of Cleared or Minimal", "severity of psoriasis", None, True),
    ("Time-Weighted Summed Pain Intensity Difference (SPID-24)", None, None, True),
    ("Change From Baseline in Mean Volume Voided Per Micturition", None, "mL", True),
    ("Change From Baseline in Modified Total Sharp Score", None, None, False),
    ("Percent Change in Affected Body Surface Area (Controlled Period)", None, None, None),  # operator in a level
    ("Change in dizziness score", None, None, None),  # no concept; ...
    ("Change in dizziness score", "improvement from baseline", None, None),  # ... and a description operator is not one
])
def test_refinements_from_the_audit(title, description, unit, expected):
    p = outcome_polarity(title, description, unit)
    assert p.higher_is_better is expected, p.rule


@pytest.mark.parametrize("title,expected", [
    ("Change From Baseline in Rhinoconjunctivitis Quality of Life Questionnaire (RQLQ)", False),
    ("Change in Dermatology Life Quality Index (DLQI)", False),
    ("Minnesota Living With Heart Failure Questionnaire Score", False),
    ("Change in Asthma Quality of Life Questionnaire (AQLQ)", True),
])
def test_impairment_scored_quality_of_life(title, expected):
    p = outcome_polarity(title)
    assert p.higher_is_better is expected, p.rule


@pytest.mark.parametrize("title,description,expected,frame", [
    # negation scope: every negator counts, and a good event stays good under a decrement that defines it
    ("Percentage of participants whose pain did not improve", None, False, "proportion"),
    ("Number of participants with no reduction in seizures", None, False, "proportion"),
    ("Percentage of Participants Achieving >=50% Reduction in Pain", None, True, "proportion"),
    ("Number of participants not pain-free at 2 hours", None, False, "proportion"),  # double negation
    ("Number of participants who did not relapse", None, True, "proportion"),
    ("No. of Participants With Adverse Events", None, False, "proportion"),  # "No." is "number", not a negator
    ("Percentage of participants not achieving remission", None, False, "proportion"),
    # minimal residual disease is disease left over
    ("Minimal Residual Disease", None, False, "level"),
    ("Percentage of participants with MRD negativity", None, True, "proportion"),
    # time to an event by the event's valence
    ("Time to Recovery", None, False, "time_to"),
    ("Time to Hospital Discharge", None, False, "time_to"),
    ("Number of Days Until Discharge", "days from surgery until the patient met discharge criteria", False, "time_to"),
    ("Days to stopping assistive devices", None, False, "time_to"),
    ("Time to Progression or Death", None, True, "time_to"),
    ("Time to extubation", None, False, "time_to"),
    # curated scales decide before generic concepts
    ("Change From Baseline in Oswestry Disability Index (ODI)", None, False, "level"),
    ("Change in HAQ-DI", None, False, "level"),
    ("Change From Baseline in PANSS Total Score", None, False, "level"),
    ("Change From Baseline in MADRS Total Score at Week 6", None, False, "level"),
    ("Change in SF-36 Bodily Pain Domain", None, True, "level"),  # scored so that higher = less pain
    ("Change From Baseline in FACIT-Fatigue Score", None, True, "level"),
    # the description: a stated sign convention first, its concepts only when the title names none
    ("Change in Pain Score", "Change was calculated as baseline minus week 12 score.", True, "level"),
    ("Change From Baseline in Pain Score", "Change = baseline − week 12; 0-10 NRS", True, "level"),
    ("Change From Baseline in XYZ Score", "Negative values indicate improvement.", False, "level"),
    ("Change From Baseline in XYZ Score", "A positive change indicates improvement.", True, "level"),
    ("XYZ Total Score", "Scores range 0-50; higher scores indicate better function.", True, "level"),
    ("XYZ Total Score", "Higher scores indicate more severe symptoms.", False, "level"),
    ("Change in FEV1", "Participants with adverse events were excluded", True, "level"),  # title decides
    ("Change in Walking Speed Score", None, None, "level"),
])
def test_issue_20_rules(title, description, expected, frame):
    p = outcome_polarity(title, description)
    assert (p.higher_is_better, p.frame) == (expected, frame), p.rule


def test_every_scale_has_a_source_and_a_direction():
    from deepimagine_core.pairs.scales import SCALES
    for pattern, higher, name, source in SCALES:
        assert isinstance(higher, bool) and name and len(source) > 10, name
        p = outcome_polarity(f"Change From Baseline in {name} Score")
        assert p.higher_is_better is higher and name in p.rule, (name, p.rule)


@pytest.mark.parametrize("title,description,expected", [
    # a negator bears on the event it precedes (or a "-free" right after it), not on a later clause
    ("Number of Participants Without Radiographic Progression (Participants Without Erosions)", None, True),
    ("Percentage of Participants Who Experienced Catheter Related Thrombi Not Resulting in Complications", None, False),
    ("Seizure Free Rate", None, True),
    # descriptions decide by plain concepts only, never by their negations or the events of a time-to title
    ("Percentage of Participants Who Became Dry at Week 12", "participants with no UUI episode, no UUI at a visit",
     True),
    ("Number of Participants With Severe (Grade 3 and 4) Acute GVHD", "graded weekly; severity without biopsy", False),
    ("Time to Reach 90% IBW", "The mean survival time was underestimated (Kaplan-Meier)", None),
])
def test_negation_scope_and_description_limits(title, description, expected):
    p = outcome_polarity(title, description)
    assert p.higher_is_better is expected, p.rule


def test_sleep_latency_of_a_sleepiness_test_is_higher_better():
    p = outcome_polarity("Mean Sleep Latency (Minutes) From the Multiple Sleep Latency Tests (MSLT) at Day 1")
    assert p.higher_is_better is True and "MSLT" in p.rule
    assert outcome_polarity("Change in Sleep Latency (Insomnia)").higher_is_better is False


@pytest.mark.parametrize("title,description,expected", [
    ("Summary of Subject Preference Assessments", "whether subjects would switch pens", None),  # not "itch"
    ("Sodium Count at Baseline", "the balance of sodium is important for kidney function", None),  # weak concept
    ("Mean Baseline Liver Function Parameters", None, None),
    ("Primary Efficacy Endpoint", "Change from baseline in pain intensity on an 11-point NRS", False),
])
def test_weak_words_decide_nothing(title, description, expected):
    assert outcome_polarity(title, description).higher_is_better is expected


@pytest.mark.parametrize("title,description,expected", [
    ("Pain Intensity Difference (PID) at 120 Minutes", "PID = baseline pain intensity minus pain intensity at 120 min",
     True),  # defined that way, and read as such: no second reversal
    ("Change From Baseline in Pain Score", "change = baseline minus week 12", True),
    ("Mean Tactile Sensitivity Score at Week 4", "tooth sensitivity measured with a Yeaple probe in grams", None),
])
def test_arithmetic_reverses_change_scores_only(title, description, expected):
    assert outcome_polarity(title, description).higher_is_better is expected


@pytest.mark.parametrize("title,expected", [
    ("Trough FEV1 Response at Week 18", True),
    ("Geometric Mean Titer of the Serotype 22F Antibody Response", True),
    ("FEV1, Late Asthmatic Response (LAR) 1 Week After Last Dose", None),  # a fall in FEV1 after a challenge
    ("HbA1c Response at Week 24", None),  # a response of a bad quantity: which way?
    ("Mean Latency to Persistent Sleep (LPS) Via Polysomnography", False),
    ("Percent Change From Baseline in Lumbar Spine BMC (Bone Mineral Content)", True),
])
def test_responses_of_good_quantities_and_sleep(title, expected):
    assert outcome_polarity(title).higher_is_better is expected


@pytest.mark.parametrize("title,expected", [
    ("Change in the fMRI Response of the Functional Magnetic Resonance Imaging Signal", None),
    ("Area Under the Percent Drop in FEV1 Curve From 0 to 3 Hours", None),
    ("Number of Falls", False),
])
def test_words_that_looked_like_concepts(title, expected):
    assert outcome_polarity(title).higher_is_better is expected


@pytest.mark.parametrize("title,description,expected", [
    ("Percentage of Participants Who Remained in the Study", "Kaplan-Meier; participants who discontinued were "
     "censored", True),
    ("Cortisol (ug/dL)", "Cortisol was measured in the blood throughout the hyperinsulinemic-hypoglycemic clamp.", None),
    ("Endometrial Biopsy Classification Results", "A subset of study participants agreed to have baseline and "
     "endpoint (Week 51/Early Withdrawal) biopsies", None),
    ("Outcomes for VF Patients", "Survival and neurologically-intact survival of patients admitted", True),
])
def test_descriptions_name_the_measure_in_their_first_words(title, description, expected):
    assert outcome_polarity(title, description).higher_is_better is expected


@pytest.mark.parametrize("title,description,expected", [
    ("Change From Baseline in Exercise Capacity Assessed by 6-minute Walk Test",
     "Change from Baseline was calculated as the post-Baseline value minus the Baseline value.", True),
    ("Percent Change in Peak Exercise SVI", "Stroke volume - the volume of blood ejected at each beat", None),
    ("Number of Subjects With Normal and Abnormal Biochemical Parameters", "ALT, AST, bilirubin", None),
])
def test_post_baseline_minus_baseline_is_the_usual_change(title, description, expected):
    assert outcome_polarity(title, description).higher_is_better is expected


@pytest.mark.parametrize("title,description,expected", [
    ("Percentage Change From Baseline in Total Cholesterol", "Baseline was defined as the average of the screening "
     "and Study Day 1 (pre-treatment) assessments.", False),  # "pre-treatment" is no subtraction
    ("Change of AST From Baseline at Week 12", "Change = (Baseline Level - Week 12 Level).", True),
    ("Changes in Platelet Function in Response to Clopidogrel", "Baseline minus post clopidogrel PRP", None),
])
def test_subtractions_are_read_only_when_stated(title, description, expected):
    assert outcome_polarity(title, description).higher_is_better is expected


@pytest.mark.parametrize("title,description,expected,rule", [
    # a scale named after what it rates: the description's convention wins over the title's concept (audit of the
    # 206 conflicts on the whole snapshot: the description was right in nearly all)
    ("SKAMP Compliance Subscale Score Over 12 Hours", ("SKAMP compliance subscale ... with a total possible score of 0 "
     "to 12; higher score indicates worst impairment."), False, "over title"),
    ("Best Corrected Visual Acuity", "Measured in logMAR. A lower logMAR value indicates better visual acuity.", False,
     "over title"),
    ("Change in CFQ-R Respiratory Symptoms Scale (RSS) Score", ("range of scores: 0-100; higher scores indicate fewer "
     "symptoms"), True, "over title"),
    # the same convention as the title's concept: unchanged
    ("Change in Quality of Life", "Higher scores indicate better quality of life.", True,
     "good concept 'Quality of Life'"),
    # statements that disagree (a description of several scales) leave the title's reading
    ("Change in Quality of Life - EQ-5D Index", ("a) EQ-5D on a 0-2 scale with lower scores indicating improvement, "
     "and b) a VAS on a 0-100 scale with higher scores indicating improvement."), True, "scale 'EQ-5D'"),
    # a title decided by an event it reports ("improvement in ...") may be the measure itself: the conflict is unknown
    ("Improvement in Pain Severity Determined by Visual Analog Scale (VAS)", ("The score ranges from 0 to 100, with "
     "higher values indicating greater pain."), None, "conflicts with description"),
    # "greater pain relief" is good, not "greater pain"; "a more positive rating" is good
    ("Sum of Pain Intensity Difference (SPID) Over 48 Hours", "A higher value of SPID indicates greater pain relief.",
     True, "Pain Intensity Difference"),
    ("XYZ Attitude Score", "Higher scores indicated more positive views.", True, "scale convention"),
])
def test_scale_convention_in_conflict_with_the_title(title, description, expected, rule):
    p = outcome_polarity(title, description, "units on a scale")
    assert p.higher_is_better is expected and rule in p.rule, p.rule
