"""Write ``gold.jsonl`` from the reader's judgements below and the counts in ``records.tar.gz`` (deterministic).

    python tests/data/gold_computed/label.py

The judgements (which protocol arm each result group belongs to, whether the counted thing is a harm, and which pairs
cannot be told, each with the words of the record that decide it) were written by reading each drawn outcome's record
(``sample.py --fields``); the project's rules were not read. This script only does the arithmetic: it reads the counts
(the outcome's one measurement per group) and the participants analysed (the legacy "Number of Participants" measure)
from the cut records, orders each pair (arm X = the arm of lower rank: Experimental < Other < Active Comparator <
Placebo / Sham / No Intervention; same rank: protocol order), and computes the two-sided Fisher exact p with
``scipy.stats.fisher_exact`` (a calculator only).
"""

from __future__ import annotations

import io
import itertools
import json
import tarfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ALPHA = 0.05
RANK = {"Experimental": 0, "Other": 1, "Active Comparator": 2, "Placebo Comparator": 3, "Sham Comparator": 3,
        "No Intervention": 3}

# nct_id -> judgements. "arms": result group -> protocol arm label (None: the group is no single arm, see "no_arm");
# "harm": the record's words saying what is counted (every drawn outcome counts a harm); "outcome_untellable": the
# whole outcome cannot be labelled (reason); "pair_untellable": {(g1, g2): reason}; "notes": what else a reader saw.
J: dict[str, dict] = {
    "NCT00911144": {"arms": {"O1": "Synflorix Group", "O2": "Prevenar Group"},
                    "harm": "Number of Subjects Reporting Grade 3 Adverse Events"},
    "NCT01673620": {"arms": {"O1": "Montelukast 10 mg/loratadine 10 mg", "O2": "Placebo"},
                    "harm": "Number of Participants Experiencing at Least One Adverse Event (AE)"},
    "NCT01590771": {"arms": {"O1": "Sitagliptin", "O2": "Placebo"},
                    "harm": "Number of Participants Who Experienced an Adverse Event"},
    "NCT00736099": {"arms": {"O1": None, "O2": None},
                    "no_arm": "groups are by prior trial treatment ('Patients pre-treated with linagliptin' / 'with "
                              "placebo'), arms are 'linagliptin 5 mg' / 'linagliptin 5 mg and pioglitazone 30 mg'",
                    "harm": "Patients With Investigator-defined Hypoglycaemic Adverse Events"},
    "NCT00112385": {"arms": {"O1": "Etanercept", "O2": "Placebo"},
                    "harm": "Subjects With Treatment Emergent, Clinically Significant, Abnormal Creatine Kinase"},
    "NCT01349907": {"arms": {"O1": "Asenapine/Asenapine", "O2": "Placebo/Asenapine"},
                    "harm": "Number of Participants Who Experienced Clinical or Laboratory Adverse Events",
                    "notes": "open-label extension: both arms received asenapine; arms differ by base-trial treatment"},
    "NCT00662818": {"arms": {"O1": None, "O2": None},
                    "no_arm": "arms are treatment sequences ('Telcagepant 300 mg→Acetaminophen/Paracetamol 1000 mg', "
                              "'Placebo and APAP 1000 mg→Telcagepant 300 mg'); groups are 'Participants receiving "
                              "telcagepant' / 'receiving APAP' across both sequences",
                    "harm": "Number of Participants Who Experienced an Adverse Event (AE) Within 14 Days Post-dose"},
    "NCT01123941": {"arms": {"O1": "NVGH Vi-CRM197 conjugate vaccine", "O2": "Vi-polysaccharide vaccine"},
                    "harm": "Number of Subjects Reporting Serious Adverse Events (SAEs)"},
    "NCT01586312": {"arms": {"O1": "Allogenic mesenchymal stromal cells injection", "O2": "Hyaluronic acid (Durolane)"},
                    "harm": "Number of Participants With Adverse Events as a Measure of Safety and Tolerability"},
    "NCT01005706": {"arms": {"O1": "Tacrolimus Withdrawal Arm", "O2": "Tacrolimus Minimization Arm"},
                    "harm": "Number of Participants with Kidney Rejections"},
    "NCT01770743": {"arms": {"O1": "AV7909 (Day 0 and 14)", "O2": "AV7909 (Day 0 and 28)",
                             "O3": "AV7909 (Day 0, 14, and 28)", "O4": "AV7909 Reduced Dose", "O5": "BioThrax"},
                    "harm": "Incidence of Adverse Events"},
    "NCT00055471": {"arms": {"O1": "ZD4054 10 mg", "O2": "ZD4054 15 mg", "O3": "ZD4054 22.5 mg"},
                    "harm": "The numbers of patients with a DLT are reported"},
    "NCT02292433": {"arms": {"O1": "PF-04937319", "O2": "PF-04937319", "O3": "Placebo"},
                    "harm": "Number of Participants With Protocol Defined Hypoglycaemic Adverse Events (HAEs)",
                    "notes": "both dose groups (100 mg, 250 mg) belong to the one arm 'PF-04937319'; the population "
                             "('received ... in at least 1 period') suggests a crossover, so groups may share "
                             "participants"},
    "NCT01173211": {"arms": {"O1": "Arm 2: Agriflu®", "O2": "Arm 1: Fluarix®", "O3": "Arm 3: Fluzone®",
                             "O4": "Arm 2: Agriflu®", "O5": "Arm 1: Fluarix®", "O6": "Arm 3: Fluzone®"},
                    "population": {"O1": "pregnant", "O2": "pregnant", "O3": "pregnant", "O4": "non-pregnant",
                                   "O5": "non-pregnant", "O6": "non-pregnant"},
                    "harm": "Number of Participants Reporting Vaccine-associated Serious Adverse Events (SAEs)",
                    "notes": "each arm holds '60 pregnant women and 20 non-pregnant women'; groups split arms by "
                             "pregnancy"},
    "NCT01385566": {"arms": {"O1": "Full Dose Subcutaneous", "O2": "1/3 Dose Subcutaneous",
                             "O3": "Full Dose Intradermal", "O4": "1/3 Dose Intradermal", "O5": "1/10 Dose Intradermal",
                             "O6": "1/27 Dose Intradermal"},
                    "harm": "Number of Participants Reporting a Serious Adverse Experience"},
    "NCT01190085": {"arms": {"O1": "Ghrelin (1 microg/kg)", "O2": "Ghrelin (3 microg/kg)", "O3": "Saline Solution"},
                    "harm": "Number of Participants With Adverse Events (AEs) as a Measure of Safety and Tolerability."},
    "NCT01245764": {"arms": {"O1": "GARDASIL™ 9 to 12 Years Old", "O2": None, "O3": "GARDASIL™ 16 to 26 Years Old",
                             "O4": "Placebo 9 to 12 Years Old"},
                    "no_arm": "group O2 is titled 'Placebo 13 to 15 Years Old' but described as 'GARDASIL™ 0.5 mL "
                              "injection'; the protocol has no placebo 13-15 arm",
                    "harm": "Number of Participants With Serious Adverse Experiences",
                    "notes": "arms are age strata; O1 vs O3 compares ages, O1/O3 vs O4 compares GARDASIL with placebo"},
    "NCT01537185": {"arms": {"O1": "Cohort 1 SPWCV+Alum 100 mcg", "O2": "Normal Saline Injection",
                             "O3": "Cohort 2 SPWCV+Alum 300 mcg", "O4": "Cohort 3 SPWCV+Alum 600 mcg"},
                    "outcome_untellable": "not clearly a count of participants: the description says 'Number of "
                                          "unsolicited AEs within four weeks after each vaccination' (events, and a "
                                          "4-week window) while the time frame says 'within 1 week' and the unit "
                                          "'participants'",
                    "harm": "Unsolicited Adverse Event Reports"},
    "NCT01037309": {"arms": {f"O{i}": f"PRO044, cohort {i}" for i in range(1, 10)},
                    "harm": "number of subjects with 1 or more treatment emergent adverse events"},
    "NCT01181323": {"arms": {"O1": "Group 1: LAIV", "O2": "Group 2: TIV", "O3": "Group 1: LAIV",
                             "O4": "Group 2: TIV"},
                    "population": {"O1": "mothers", "O2": "mothers", "O3": "infants", "O4": "infants"},
                    "harm": "Number of Participating Reporting Non-serious Unsolicited Adverse Events Related to "
                            "Vaccination",
                    "notes": "infant groups: 'Infants of women enrolled to receive LAIV/TIV', not vaccinated themselves"},
    "NCT00396630": {"arms": {"O1": "Group A", "O2": "Group B"},
                    "harm": "Number of Subjects Reporting Any Serious Adverse Events (SAEs).",
                    "notes": "arms 'Group A' (Experimental) / 'Group B' (Placebo Comparator) have no description; "
                             "mapped by type to 'Rotarix Group' / 'Placebo Group'"},
    "NCT00860067": {"arms": {"O1": "Q/LAIV (MEDI3250)", "O2": None},
                    "no_arm": "group O2 'All FluMist': 'Data from both the FluMist/B/Yamagata arm and the "
                              "FluMist/B/Victoria arm were combined.'",
                    "harm": "Number of Participants Reporting Any Serious Adverse Event"},
    "NCT00326183": {"arms": {"O1": "1", "O2": "2"},
                    "harm": "Participants With 1 or More Systemic Adverse Experiences"},
    "NCT01409837": {"arms": {"O1": "Lisinopril", "O2": "Sugar pill"},
                    "harm": "Adverse Events Monitoring ... patients were encouraged to report every event",
                    "notes": "crossover: arms are sequences ('Started with Lisinopril until the crossover'); both "
                             "groups received both treatments"},
    "NCT01153893": {"arms": {"O1": "Synflorix/Infanrix primed Group", "O2": "Synflorix/Infanrix unprimed Group"},
                    "harm": "Number of Subjects Reporting Serious Adverse Events (SAEs)."},
    "NCT01024972": {"arms": {"O1": "Dantrolene", "O2": "Placebo"},
                    "harm": "Number of subjects who developed liver toxicity"},
    "NCT00328861": {"arms": {"O1": "NK Cells + IL-2: Melanoma", "O2": "NK Cells + IL-2: Renal Cell"},
                    "harm": "Here is the number of participants with adverse events.",
                    "notes": "arms are disease cohorts with the same treatment"},
    "NCT00604695": {"arms": {"O1": "1", "O2": "2"},
                    "harm": "Safety Endpoint: Number of Deaths",
                    "notes": "'Of the 20 patients randomized to the placebo arm, 4 patients did not receive the first "
                             "bolus'"},
    "NCT00249821": {"arms": {"O1": "Saizen® 0.057 mg/kg/day", "O2": "Saizen® 0.035 mg/kg/day"},
                    "harm": "Number of Participants With Treatment Emergent Adverse Events (TEAEs)"},
    "NCT01090453": {"arms": {"O1": "GSK2202083A Group", "O2": "Infanrix hexa Group"},
                    "harm": "Number of Subjects Reporting Any Unsolicited Adverse Events (AEs)."},
    "NCT01453998": {"arms": {"O1": "GSK217744 Group 1", "O2": "GSK217744 Group 2", "O3": "Infanrix hexa Group"},
                    "harm": "Number of Subjects Reporting Any Serious Adverse Events (SAEs)"},
    "NCT00578227": {"arms": {"O1": "Cervarix™ & Twinrix™ Group", "O2": "Cervarix™ Group", "O3": "Twinrix™ Group"},
                    "harm": "Number of Subjects Reporting Serious Adverse Events (SAE)"},
    "NCT02142153": {"arms": {"O1": "F901318 0.25 mg/kg", "O2": "0.25 mg/kg placebo", "O3": "F901318 0.75 mg/kg",
                             "O4": "Placebo 0.75 mg/kg", "O5": "F901318 1.5 mg/kg", "O6": "Placebo 1.5 mg/kg",
                             "O7": "F901318 mg/kg", "O8": "Placebo 3 mg/kg", "O9": None, "O10": None},
                    "no_arm": "groups 'F901318 4 mg/kg' / 'Placebo 4 mg/kg' match no arm (the arms list 5 mg/kg)",
                    "outcome_untellable": "the count equals the participants analysed in every group, placebo "
                                          "included (6/6, 2/2): it reads as the number assessed, not the number with "
                                          "'significant Clinical safety labs and ECG abnormalities'",
                    "harm": "Number of Subjects With Significant Clinical Safety Labs and ECG Abnormalities"},
    "NCT01956097": {"arms": {"O1": "HX106 590mg", "O2": "HX106 1180mg", "O3": "Placebo"},
                    "harm": "Number of Participants With Adverse Events"},
    "NCT01196026": {"arms": {"O1": "Fluarix 6-11 months Group", "O2": "Fluarix 12-35 months Group",
                             "O3": "Fluarix 3-9 years Group", "O4": "Havrix Junior 6-11 months Group",
                             "O5": "Havrix Junior 12-35 months Group", "O6": "Havrix Junior 3-9 years Group"},
                    "harm": "Number of Subjects Reporting Serious Adverse Events (SAEs)",
                    "notes": "arms are vaccine x age stratum; cross-age pairs compare ages as well as vaccines"},
    "NCT00947115": {"arms": {"O1": "Cervarix 15-25 years group", "O2": "Cervarix 26-45 years group",
                             "O3": "Cervarix 46-55 years group"},
                    "harm": "Number of Subjects With Any Fatal or Vaccine-related Serious Adverse Events (SAEs)"},
    "NCT01143077": {"arms": {"O1": "Lurasidone Open-Label Arm A", "O2": "Lurasidone Open-Label Arm B",
                             "O3": "Lurasidone Open-Label Arm C"},
                    "outcome_untellable": "the count equals the participants analysed in every group (72/72, 87/87, "
                                          "81/81) and the description mixes two counts ('Number of participants with "
                                          "Treatment Emergent Adverse Events and Serious Adverse Events')",
                    "harm": "Tolerability and Safety",
                    "notes": "arms A/B/C have no description; mapped to groups 40/40, 40/80, 80/80 by order only"},
    "NCT01808339": {"arms": {"O1": "FF AM dose", "O2": "FF PM dose", "O3": "Placebo"},
                    "harm": "Number of Participants With Any Adverse Event (AE)",
                    "notes": "three-way crossover ('All the subjects in this study will take part in 3 treatment "
                             "periods and will receive all three treatments'): the groups share participants, so "
                             "Fisher's independence assumption does not hold"},
    "NCT00771615": {"arms": {f"O{i}": f"A/turkey H5N1 influenza Formulation {f} Group"
                             for i, f in enumerate(("A", "B1", "B2", "C1", "C2", "D1", "D2", "E1", "E2"), 1)},
                    "harm": "Number of Subjects With Medically-attended Adverse Events (MAEs)."},
    "NCT01048333": {"arms": {"O1": None, "O2": None, "O3": None},
                    "no_arm": "arms are six treatment sequences ('Formoterol, then Salmeterol, then Placebo', ...); "
                              "groups are the treatments pooled over sequences",
                    "harm": "Number of participants with at least 1 AE."},
    "NCT01243177": {"arms": {"O1": "Lacosamide", "O2": "Carbamazepine-Controlled Release (CBZ-CR)"},
                    "harm": "Number of Subjects Who Withdraw From the Study Due to a Treatment-emergent Adverse Event"},
    "NCT00408200": {"arms": {"O1": "AAD:NO", "O2": "AAD:YES"},
                    "harm": "Composite Endpoint: Atrial Arrhythmias Lasting >24 Hrs or Requiring Antiarrhythmic Drug "
                            "Therapy; Need for Cardioversion/Repeat Ablation ...; Adverse Outcome/Intolerance",
                    "notes": "every component is an unwanted event (recurrence, repeat procedure, drug intolerance), "
                             "so the composite counts a harm"},
    "NCT01774045": {"arms": {"O1": "PDC-1421", "O2": "Placebo control"},
                    "harm": "Number of Dose Limiting Toxicity of Laboratory Values",
                    "notes": "title says 'Number of Dose Limiting Toxicity', the unit says participants; read as "
                             "participants"},
    "NCT01734239": {"arms": {"O1": "Pneumovax™ 23: Participants Between 2 and 49 Years",
                             "O2": "Pneumovax™ 23: Participants >=50 Years"},
                    "harm": "Number of Participants Reporting an Injection-site or Systemic Adverse Experience",
                    "notes": "arms are age strata with the same vaccine"},
    "NCT00312858": {"arms": {"O1": "1", "O2": "2"},
                    "harm": "Participants With 1 or More Systemic Adverse Experience."},
    "NCT00159874": {"arms": {"O1": "Sildenafil Low dose", "O2": "Sildenafil medium dose", "O3": "Sildenafil high dose",
                             "O4": "Sildenafil Low dose", "O5": "Sildenafil medium dose", "O6": "Sildenafil high dose",
                             "O7": None},
                    "population": {"O1": "sildenafil in the base study", "O2": "sildenafil in the base study",
                                   "O3": "sildenafil in the base study", "O4": "placebo in the base study",
                                   "O5": "placebo in the base study", "O6": "placebo in the base study",
                                   "O7": "placebo in the base study, not randomized"},
                    "no_arm": "group O7 'Placebo Non-randomized': participants 'not randomly assigned to a sildenafil "
                              "dose group'",
                    "harm": "Number of Participants Reporting at Least One Adverse Event",
                    "notes": "extension: arms are sildenafil doses; groups split each dose arm by base-study treatment"},
    "NCT00446511": {"arms": {"O1": "CKD patients: Valsartan+enalapril", "O2": "CKD patients: Enalapril",
                             "O3": "Non-CKD patients: Valsartan", "O4": "Non-CKD patients: Enalapril"},
                    "harm": "Number of Patients With Adverse Events",
                    "notes": "arms are CKD / non-CKD strata; cross-stratum pairs compare populations as well"},
    "NCT00580788": {"arms": {"O1": "PTHrP(1-36) 2 pmol/kg/hr", "O2": "PTHrP (1-36) 4 pmol/kg/hr",
                             "O3": "PTHrP(1-36) 5 pmol/kg/hr", "O4": "PTHrP(1-36) 6 pmol/kg/hr"},
                    "harm": "Dose Limiting Toxicity (DLT)",
                    "notes": "groups titled 'Group 1'..'Group 4', mapped to arms by the dose in their description"},
    "NCT00518622": {"arms": {f"O{i}": str(i) for i in range(1, 9)},
                    "harm": "Number of participants who reported adverse experiences",
                    "notes": "arms are labelled '1'..'8' and all typed Experimental, arm '8' being 'Placebo'; mapped "
                             "by the dose in the description"},
    "NCT02549014": {"arms": {"O1": "Panel A: MK-1064 5 mg", "O2": "Panel B: MK-1064 10 mg",
                             "O3": "Panel A: MK-1064 25 mg", "O4": "Panel B: MK-1064 50 mg",
                             "O5": "Panel A: MK-1064 100 mg", "O6": "Panel B: MK-1064 150 mg",
                             "O7": "Panel A: MK-1064 200 mg", "O8": "Panel B: MK-1064 250 mg",
                             "O9": "Panel A: MK-1064 25 mg (Fed)", "O10": "Panel B: MK-1064 50 mg (Night)",
                             "O11": "Panels A & B: Placebo"},
                    "harm": "Number of Participants Who Experienced One or More Adverse Events (AEs)",
                    "notes": "alternating panels over periods ('Within each of up to 4 treatment periods, 6 "
                             "participants were randomly assigned'): groups of one panel share participants"},
    "NCT00122460": {"arms": {"O1": "Cetuximab Plus Chemotherapy", "O2": "Chemotherapy alone"},
                    "harm": "Safety - Number of Patients Experiencing Any Adverse Event"},
    "NCT00600756": {"arms": {"O1": "Quetiapine XR", "O2": "Risperidone"},
                    "harm": "Number of Participants Who Had at Least 1 Extra-pyramidal TEAE"},
    "NCT00980798": {"arms": {"O1": "002", "O2": "001"},
                    "harm": "The Number of Patients Discontinuing From the Trial Due to the Occurrence of an Adverse "
                            "Event",
                    "notes": "arms labelled '001' (OROS hydromorphone, Experimental) and '002' (placebo); result group "
                             "O1 is the placebo"},
    "NCT00322452": {"arms": {"O1": "1", "O2": "2"},
                    "harm": "Number of patients with a leukopenia event ... CTC grade 3 or above"},
    "NCT01547130": {"arms": {"O1": "BLS and Yoga exercise", "O2": "PEG (HalfLytely)"},
                    "harm": "Patient-reported Adverse Events."},
    "NCT01371006": {"arms": {f"O{i}": None for i in range(1, 6)},
                    "no_arm": "groups are treatment periods within 'sequence group B' (Midazolam, Faldaprevir, ...) "
                              "plus 'Total On-treatment'; the arms are 'BI201335 low dose Efavirenz' / 'high dose "
                              "Efavirenz' and the record does not say which one group B is",
                    "harm": "Group B - Number of Participants With Drug Related Adverse Events"},
    "NCT00506415": {"arms": {"O1": "Open label: Rivastigmine (5 cm^2 / 10 cm^2)",
                             "O2": "Double blind: Rivastigmine (10 cm^2)", "O3": "Double blind: Rivastigmine (15 cm^2)",
                             "O4": "Extended open label Rivastigmine (10 cm^2)"},
                    "outcome_untellable": "one value per group for a title naming three counts ('Number of Patients "
                                          "With Adverse Events, Serious Adverse Events and Discontinuations Due to "
                                          "Adverse Events'): which one is counted cannot be told",
                    "harm": "Number of Patients With Adverse Events, Serious Adverse Events and Discontinuations Due "
                            "to Adverse Events",
                    "notes": "arms are study phases; the initial open-label group (1582) holds the participants of "
                             "the later phases"},
    "NCT00614991": {"arms": {f"O{i}": f"Group {c}" for i, c in enumerate("ABCDEF", 1)},
                    "harm": "Number of Participants Who Experienced Adverse Events",
                    "notes": "arms are treatment sequences; 'The intent was to compare adverse events for each "
                             "sequence and not for each regimen.'"},
    "NCT00764465": {"arms": {f"O{i}": f"Group {c}" for i, c in enumerate("ABCDEF", 1)},
                    "harm": "Number of Participants Who Experienced an Adverse Event",
                    "notes": "arms are treatment sequences; 'The intent was to compare adverse events for each "
                             "sequence and not for each regimen.'"},
    "NCT00101686": {"arms": {"O1": "Infusional 5-FU/LV with Irinotecan", "O2": "Modified Bolus 5-FU/LV with Irinotecan",
                             "O3": "Oral Capecitabine with Irinotecan", "O4": "FOLFIRI + bevacizumab",
                             "O5": "miFL + bevacizumab"},
                    "harm": "Number of subjects that had at least one Treatment-Emergent Adverse Event (TEAE) that "
                            "led to a dose reduction"},
}


def _text(el, tag: str) -> str | None:
    found = el.find(tag)
    return found.text.strip() if found is not None and found.text else None


def read_records() -> dict[str, ET.Element]:
    with tarfile.open(HERE / "records.tar.gz") as tar:
        return {Path(m.name).stem: ET.parse(io.BytesIO(tar.extractfile(m).read())).getroot()
                for m in tar.getmembers() if m.isfile()}


def counts(outcome) -> dict[str, tuple[int, int]]:
    """group id -> (participants with the event, participants analysed)."""
    measures = outcome.findall("measure_list/measure")
    assert _text(measures[0], "title") == "Number of Participants" and len(measures) == 2
    n = {v.get("group_id"): int(v.get("value")) for v in measures[0].iter("measurement")}
    k = {v.get("group_id"): int(v.get("value")) for v in measures[1].iter("measurement")}
    return {g: (k[g], n[g]) for g in k}


def pair_rows(nct_id: str, root, sample: dict) -> list[dict]:
    from scipy.stats import fisher_exact

    j = J[nct_id]
    outcome = root.find("clinical_results/outcome_list/outcome")
    arms = [(_text(a, "arm_group_label"), _text(a, "arm_group_type")) for a in root.findall("arm_group")]
    arm_pos = {label: (RANK[typ], i, typ) for i, (label, typ) in enumerate(arms)}
    titles = {g.get("group_id"): _text(g, "title") for g in outcome.findall("group_list/group")}
    c = counts(outcome)
    assert set(j["arms"]) == set(titles) == set(c), nct_id
    rows = []
    for g1, g2 in itertools.combinations(list(titles), 2):
        a1, a2 = j["arms"][g1], j["arms"][g2]
        if a1 is not None and a2 is not None and arm_pos[a2][:2] < arm_pos[a1][:2]:
            g1, g2, a1, a2 = g2, g1, a2, a1
        (kx, nx), (ky, ny) = c[g1], c[g2]
        p = float(fisher_exact([[kx, nx - kx], [ky, ny - ky]])[1])
        share_x, share_y = kx / nx if nx else None, ky / ny if ny else None
        pops = j.get("population", {})
        untellable = None
        if a1 is None or a2 is None:
            untellable = "no_arm: " + j["no_arm"]
        elif a1 == a2:
            untellable = f"same_arm: both groups belong to arm '{a1}'"
        elif pops and pops[g1] != pops[g2]:
            untellable = (f"population: the groups differ in population ({pops[g1]} vs {pops[g2]}) as well as arm")
        elif "outcome_untellable" in j:
            untellable = "measure: " + j["outcome_untellable"]
        significant = p < ALPHA
        if share_x == share_y:
            better = "none"
        else:
            better = g1 if share_x < share_y else g2  # every drawn outcome counts a harm: the smaller share is better
        label = ("untellable" if untellable else
                 "no_difference" if not significant else "x_better" if better == g1 else "y_better")
        reason = (f"harm: \"{j['harm']}\"; {kx}/{nx} vs {ky}/{ny}, Fisher two-sided p={p:.4g}"
                  + ("" if not untellable else f"; cannot be told ({untellable.split(':')[0]})"))
        rows.append({
            "nct_id": nct_id, "source": {"archive": sample["archive"], "member": sample["member"]},
            "stratum": sample["stratum"], "outcome_type": sample["outcome_type"],
            "outcome_index_full": sample["outcome_index"], "outcome_index": 0,
            "outcome_title": _text(outcome, "title"),
            "units": _text(outcome.findall("measure_list/measure")[1], "units"),
            "param": _text(outcome.findall("measure_list/measure")[1], "param"),
            "x": {"group_id": g1, "title": titles[g1], "arm_label": a1,
                  "arm_type": arm_pos[a1][2] if a1 else None, "count": kx, "n": nx},
            "y": {"group_id": g2, "title": titles[g2], "arm_label": a2,
                  "arm_type": arm_pos[a2][2] if a2 else None, "count": ky, "n": ny},
            "counted": "harm", "counted_reason": j["harm"], "fisher_p": float(f"{p:.6g}"), "significant": significant,
            "better_group": better, "tellable": untellable is None, "untellable_reason": untellable,
            "label": label, "superiority": None if untellable else ("yes" if label == "x_better" else "no"),
            "reason": reason, "notes": j.get("notes"),
        })
    return rows


def main() -> None:
    records = read_records()
    with open(HERE / "sample.jsonl", encoding="utf-8") as fh:
        samples = [json.loads(line) for line in fh]
    assert {s["nct_id"] for s in samples} == set(J) == set(records)
    rows = [r for s in samples for r in pair_rows(s["nct_id"], records[s["nct_id"]], s)]
    with open(HERE / "gold.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"gold_id": f"C{i:03d}", **r}, ensure_ascii=False) + "\n" for i, r in enumerate(rows))
    print(json.dumps({"outcomes": len(samples), "pairs": len(rows),
                      "labels": Counter(r["label"] for r in rows),
                      "untellable": Counter(r["untellable_reason"].split(":")[0] for r in rows if r["untellable_reason"]),
                      "significant_tellable": sum(r["significant"] for r in rows if r["tellable"])}, indent=1))


if __name__ == "__main__":
    main()
