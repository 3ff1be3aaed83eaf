"""The word lists behind `polarity.outcome_polarity`: excluded outcome kinds, operators, concepts, frames.

Kinds of words (how `polarity` combines them is in its docstring):

- *good events* (``GOOD_OPERATORS``): improvement, response, remission, achieving a goal ... — the event is good
  whatever concept it is about ("improvement in pain", "achieving >= 50% reduction in pain");
- *bad events* (``BAD_OPERATORS``): treatment failure, progression, relapse, worsening ...;
- *negators* (``NEGATORS``): not, no, without, free of, -free, absence of — each one negates the event;
- *decrements* (``DECREMENTS``): reduction, decrease, prevention ... — they turn a bad concept into a good event
  ("reduction in seizures") and a good one into a bad event; inside a good event they only define it;
- *concepts*: quantities or events that are good (survival, FEV1) or bad (pain, LDL, death) when there is more of them;
  curated rating scales (`scales.SCALES`) are concepts that win over the generic ones.
"""

from __future__ import annotations

import re


def _rx(*patterns: str) -> re.Pattern:
    return re.compile(r"(?:" + "|".join(patterns) + r")", re.IGNORECASE)


# Outcomes whose "better" direction is not an efficacy question at all.
EXCLUDED: list[tuple[str, re.Pattern]] = [
    ("pharmacokinetics", _rx(
        r"\bc[ _-]?max\b", r"\bc[ _-]?min\b", r"\bc[ _-]?trough\b", r"\bcss\b", r"\bt[ _-]?max\b",
        r"\bauc\s*[\(\[]?\s*(?:0|inf|tau|last|t\b)",
        r"\bauc\b", r"area under the (?:plasma |serum |blood )?concentration",
        r"pharmacokinetic", r"\bpk\b", r"half[- ]life", r"\bt\s*1/2\b",
        r"\bclearance\b(?!.{0,30}\b(?:virus|viral|bacteri|infection|lesion|creatinine|parasit))",
        r"volume of distribution", r"bioavailability", r"bioequivalen",
        r"(?:plasma|serum|blood|trough|peak) (?:drug )?concentration",
        r"concentrations? of\b", r"\bexposure\b(?!.{0,20}\b(?:to (?:smoke|tobacco|allergen)))", r"accumulation ratio",
        r"elimination rate", r"excretion")),
    ("ecg_or_vital_signs", _rx(r"\bqtc?\b", r"\bqtc[bfi]?\b", r"\becg\b", r"electrocardiogra", r"\bpr interval",
                               r"\bqrs\b",
                               r"vital signs?", r"heart rate", r"pulse rate", r"body temperature")),
    ("dose_finding", _rx(r"maximum tolerated dose", r"\bmtd\b", r"recommended phase (?:2|ii) dose", r"\brp2d\b",
                         r"dose[- ]limiting", r"optimal dose")),
    ("ambiguous_quantity", _rx(r"body weight", r"\bweight\b(?! gain| loss)", r"\bbmi\b", r"body mass index",
                               r"global impression", r"\bcgi\b", r"\bpgi\b", r"\bpgic\b",
                               r"laboratory (?:values|parameters|tests)", r"liver function",
                               r"(?:early|late|dual) (?:phase )?asthmatic response", r"allergic response",
                               r"stroke volume", r"normal (?:and|or|/) abnormal", r"abnormal (?:and|or|/) normal",
                               r"platelet (?:function|aggregation|reactivity|inhibition)",
                               # a force threshold: higher is better, against the word "sensitivity"
                               r"tactile (?:sensitivity|threshold)", r"\byeaple\b",
                               r"hematology|haematology|clinical chemistry|urinalysis")),
]

# Lexicon. Order matters inside each list only through length: longer (more specific) patterns are consumed first.
GOOD_OPERATORS = [
    r"improve(?:ment|d|s)?", r"respon(?:se|ses|der|ders|ding)", r"remission", r"\bcured?\b", r"\bcure rate",
    r"success(?:ful)?",
    r"\bheal(?:ed|ing)?\b", r"recover(?:y|ed)", r"achiev(?:e|ed|ing|ement)", r"attain(?:ed|ing|ment)?",
    r"normali[sz](?:ation|ed)",
    r"resolution", r"resolved", r"eradicat(?:ion|ed)", r"abstinen(?:ce|t)", r"\bquit(?:ting)?\b",
    r"seroconver(?:sion|ted)",
    r"seroprotect(?:ion|ed)", r"seroresponse", r"\bcontrolled\b", r"\bcontrol of\b", r"sustained virologic",
    r"\b(?:level|pressure|bp|acid|urate|asthma|symptom|seizure|pain|disease) control\b",
    r"\bsvr\d*\b", r"relief", r"\bbenefit\b", r"goal", r"\btarget (?:level|range|value)", r"\bclearance of\b",
    r"(?:viral|virologic(?:al)?|bacteriologic(?:al)?|parasitologic(?:al)?|microbiologic(?:al)?) clearance",
    r"\bclear(?:ed)?\b", r"almost clear", r"\bminimal\b(?! residual)",
    r"\bdischarge(?:d)?\b(?! (?:of|from the (?:eye|ear|wound)))",
    r"return to (?:work|normal|usual|baseline|daily|full)",
    r"\bextubation\b", r"\bambulat(?:ion|e|ing)\b", r"independent (?:walking|ambulation)",
    r"(?:stop(?:ping)?|discontinu\w*|cessation of|wean\w*|independen\w*) (?:of |from |the |use of |using )*"
    r"(?:assistive|walking|crutch|cane|walker|supplemental oxygen|oxygen|ventilat|mechanical ventilation|opioid|"
    r"analgesic|parenteral|dialysis)",
    r"first (?:flatus|bowel movement|defecation|stool)", r"onset of (?:action|analgesia|effect|pain relief)",
    r"(?:mrd|minimal residual disease)[- ]negativ\w*", r"negativ\w* (?:for )?(?:mrd|minimal residual disease)",
    r"complete (?:wound )?closure", r"\bepithelializ\w*", r"\bunion\b",
    r"\b(?:became|become|becoming|completely|remain(?:ed|ing)?|were|was) dry\b", r"\bdry (?:nights?|days?)\b",
]
NEGATORS = [  # each negates the event it stands in
    r"[- ]free\b", r"free (?:of|from)", r"freedom from", r"\bfreedom\b", r"\bwithout\b", r"absence of",
    r"\bno\b(?!\.)", r"\bnot\b", r"\bnever\b", r"\bfail(?:ed|ure|s)? to\b(?! respond)", r"\bdid ?n[o']t\b",
]
DECREMENTS = [  # turn a concept's valence; inside a good event they only define it
    r"reduc(?:tion|tions|ed|ing)", r"decreas(?:e|es|ed|ing)", r"declin(?:e|ed)", r"\blowering\b",
    r"\bdrops?\b", r"\bfall (?:in|of)\b",
    r"avoid(?:ed|ance)?", r"prevent(?:ed|ion)", r"\bsuppress(?:ion|ed)",
]
BAD_OPERATORS = [  # phrases that make a good concept a bad event
    r"loss of response", r"non[- ]?respon(?:se|der|ders)", r"fail(?:ure|ed)? to respond",
    r"lack of (?:response|efficacy)",
    r"treatment failure", r"virologic(?:al)? failure", r"clinical failure", r"\bfailure\b", r"worsening",
    r"deteriorat(?:ion|ed)",
    r"\bprogress(?:ion|ed|ive disease)\b", r"\brelaps(?:e|ed|es)\b", r"recurren(?:ce|t)", r"breakthrough", r"rebound",
]
GOOD_CONCEPTS = [
    r"overall survival", r"progression[- ]free survival", r"disease[- ]free survival", r"event[- ]free survival",
    r"relapse[- ]free survival", r"graft survival", r"\bsurvival\b", r"\bsurviv(?:ed|ing|ors?)\b", r"\balive\b",
    r"quality of life", r"\bqol\b", r"\bhrqol\b", 
    
    r"\bkdqol\b", r"\bfev1\b", r"\bfev\(?1\)?", r"forced expiratory volume",
    r"\bfvc\b",
    r"forced vital capacity", r"peak (?:expiratory )?flow", r"\bpef\b", r"6[- ]?minute walk", r"six[- ]minute walk",
    r"\b6mwd?\b",
    r"walk(?:ing)? distance", r"exercise (?:capacity|tolerance|duration)", r"\bvo2", r"peak oxygen",
    r"bone mineral density",
    r"\bbmd\b", r"bone mineral content", r"\bbmc\b", r"\bhdl\b(?![- ]?c?\s*ratio)", r"high[- ]density lipoprotein", r"\bcd4\b", r"ejection fraction",
    r"\blvef\b",
    r"visual acuity", r"\bbcva\b", r"letters? (?:read|gained)",
    r"sleep (?:time|efficiency|quality)",
    r"total sleep", r"adherence", r"compliance", r"satisfaction", r"seroconversion", r"seroprotection",
    r"(?:geometric mean )?(?:antibody )?titers?\b", r"\bgmts?\b", r"\bgmcs?\b", r"neutrali[sz]ing antibod",
    r"immunogenicity",
    r"time in range", r"\"?on\"? time", r"well[- ]being", r"\bfunction(?:ing|al)?\b(?! test| magnetic| mri)", r"mobility",
    r"\bstrength\b",
    r"hemoglobin(?! a1c)", r"haemoglobin(?! a1c)", r"egfr\b", r"glomerular filtration", r"creatinine clearance",
    r"pain intensity difference", r"\bspid\b", r"\btotpar\b",
    r"pain relief", r"volume voided(?: per (?:micturition|void))?",
    r"\bretain(?:ed)? in (?:treatment|care|the study)\b", r"\btreatment retention\b",
    r"\bremain(?:ed|ing)? (?:in|on) (?:the )?(?:study|treatment|therapy)\b",
    r"\bdays? alive", r"engraftment", r"patency", r"fertiliz", r"pregnan(?:cy|cies) rate", r"live birth",
]
BAD_CONCEPTS = [
    
    r"fasting (?:plasma |serum |blood )?glucose", r"\bfpg\b", r"blood glucose", r"post[- ]?prandial glucose",
    r"\bppg\b",
    r"non[- ]?hdl", r"\bldl\b", r"low[- ]density lipoprotein", r"total cholesterol", r"triglycerides?",
    r"apolipoprotein b",
    r"\bapo ?b\b", r"lipoprotein\s*\(a\)", r"\blp\(a\)", r"blood pressure", r"\bsbp\b", r"\bdbp\b", r"systolic",
    r"diastolic",
    r"hypertension", r"c[- ]reactive protein", r"\bcrp\b", r"viral load", r"\bhiv[- ]?1? rna\b", r"\bhbv dna\b",
    r"\bhcv rna\b",
    r"uric acid", r"\burate\b", r"intraocular pressure", r"\biop\b", r"proteinuria", r"albuminuria", r"\buacr\b",
    r"\bupcr\b",
    r"serum creatinine", r"bilirubin", r"\balt\b", r"\bast\b", r"homa[- ]?ir", r"insulin resistance",
    r"waist circumference",
    r"weight gain", r"anti[- ]drug antibod(?:y|ies)", r"\bglucose\b",
    r"leak(?:age|s)?\b", r"dysfunction",
    
    
    
    r"radiographic progression", r"\bpain\b", r"painful", r"\bache\b", r"headache", r"migraine", r"tenderness",
    r"stiffness", r"swelling",
    r"\bedema\b", r"oedema", r"symptoms?\b", r"severity", r"disease activity",
    
    
    
    
    
    r"disability", r"depressi(?:on|ve)", r"anxiety", r"fatigue", r"nausea", r"vomiting", r"emesis",
    r"\bitch(?:ing|y)?\b",
    r"prurit(?:us|ic)",
    r"insomnia", r"sleep latency", r"awakenings?", r"latency to (?:persistent )?sleep",
    r"sleep onset latency", r"wake after sleep onset", r"\bwaso\b", r"sleep disturbances?",
    
    
    r"adverse (?:events?|reactions?|effects?|experiences?)", r"\baes?\b", r"\bsaes?\b",
    r"side effects?",
    r"toxicit(?:y|ies)", r"complications?", r"infections?", r"\bdeaths?\b", r"\bdied\b", r"mortality", r"fatal",
    r"exacerbations?", r"hospitali[sz](?:ation|ations|ed)", r"rescue (?:medication|therapy|analgesi\w*|treatment)",
    r"rescue",
    r"bleeding", r"h(?:a)?emorrhag(?:e|ic)", r"blood loss", r"\bstrokes?\b", r"myocardial infarction", r"fractures?",
    r"seizures?",
    r"attacks?\b", r"episodes?\b", r"incontinence", r"urgency", r"nocturia", r"micturitions?",
    r"discontinu(?:ation|ed)",
    r"withdrawals?", r"dropouts?", r"diarrh(?:o)?ea", r"constipation", r"hypoglyc(?:a)?emi(?:a|c)", r"lesions?",
    r"tumou?r (?:size|burden|volume)",
    r"plaques?\b", r"wheez(?:e|ing)", r"\bcough\b", r"dyspn(?:o)?ea", r"breathlessness", r"craving", r"cigarettes",
    r"heavy drinking",
    r"drinks per", r"hot (?:flash|flush)(?:es)?", r"spasticity", r"tremor", r"dyskinesia", r"\"?off\"? time",
    r"apn(?:o)?ea[- ]hypopn(?:o)?ea",
    r"\bahi\b", r"sleepiness", r"length of (?:hospital )?stay", r"hospital stay",
    r"(?:opioid|morphine|analgesic) (?:consumption|use|requirement)",
    r"flares?\b", r"\bsores?\b", r"ulcers?\b", r"caries", r"gingivitis", r"bleeding on probing", r"inflammation",
    r"fibrosis",
    r"stenosis", r"restenosis", r"thrombo(?:sis|tic|embolism)", r"\bvte\b", r"\bdvt\b", r"embolism", r"amputation",
    r"readmission",
    r"intubation", r"mechanical ventilation", r"\bdelirium\b", r"agitation", r"aggression", r"irritability",
    r"cognitive impairment",
    r"\bpain intensity", r"\bvas\b(?=.{0,30}\bpain)", r"colonization", r"bacteri(?:a|al) (?:count|load)",
    r"parasit(?:a)?emia", r"fever",
    r"(?:tooth|teeth|dentin(?:e|al)?) hypersensitivity", r"\bhypersensitivity\b(?! reaction)",
    r"\bfalls\b", r"minimal residual disease", r"\bmrd\b", r"graft[- ]versus[- ]host", r"\bgvhd\b", r"thromb(?:i|us)\b",
    r"\brisk\b", r"\bevents?\b(?=.{0,3}$)",
    r"major adverse cardiovascular", r"\bmace\b", r"morbidity",
    # a dose lowered, paused or changed (for toxicity) is a harm; longest span first keeps "reduction" from reading
    # as a decrement of what follows ("Dose Reduction Due to Adverse Events" is not fewer adverse events)
    r"\bdose (?:reductions?|interruptions?|modifications?|delays?)\b",
]

# "at least one adverse event", "1 or more SAEs", ">= 1 TEAE": having the event at all, not a threshold on a quantity
AT_LEAST_ONE_EVENT = re.compile(
    r"(?:\bat least (?:one|1)|(?:≥|>=)\s*1|\b(?:one|1) or more)\b(?=\s+(?:\(?[\w-]+\)?\s+){0,3}?"
    r"(?:adverse|serious|side effects?\b|aes?\b|saes?\b|teaes?\b|events?\b|episodes?\b|toxicit|infections?\b|"
    r"complications?\b|exacerbations?\b|hospitali|reactions?\b|dose\b))", re.IGNORECASE)
THRESHOLD = re.compile(r"(?:<|>|≤|≥|=<|>=|<=|less than|greater than|more than|fewer than|at least|or more|"
                        r"or less|below|above|under\s+\d|over\s+\d|\bexceed)", re.IGNORECASE)

TIME_TO = re.compile(
    r"(?:\btime|^\s*(?:(?:mean|median|the) )?(?:number of )?(?:days?|hours?|weeks?|months?|minutes?))\s+"
    r"(?:to|until|till|before)\b\s*(?!\d|week|day|month|visit|end\b|baseline)(?P<rest>.*)", re.IGNORECASE)
DURATION = re.compile(r"\b(?:duration|length) of\b\s*(?P<rest>.*)", re.IGNORECASE)
_PEOPLE = (r"(?:participants|subjects|patients|people|persons|individuals|women|men|children|infants|adults|"
           r"volunteers|eyes|responders)")
PROPORTION = re.compile(
    r"(?:\b(?:number|numbers|percentage|percent|%|proportion|fraction|rate|count)\s+of\s+(?:\w+\s+){0,3}?"
    + _PEOPLE + r"\b"
    r"|\b(?:participants|subjects|patients)\s+(?:with|without|who|achieving|experiencing|having|reporting|in)\b"
    r"|\bresponders?\b"
    r"|\b(?:response|remission|cure|success|relapse|failure|survival|mortality|seroconversion|abstinence|healing)"
    r"\s+rates?\b"
    r"|\bincidence\b|\boccurrence\b|\brates?\s*$)",
    re.IGNORECASE,
)
COUNT = re.compile(r"\b(?:number|rate|frequency|incidence|count|occurrence)s? of\b\s*(?P<rest>.*)", re.IGNORECASE)
COUNT_UNIT = re.compile(r"^\s*(?:(?:percent(?:age)?|proportion) of )?(?:participants|subjects|patients|people|persons|"
                         r"eyes)\s*$", re.IGNORECASE)
_MASS = r"(?:ng|pg|µg|ug|mcg|mg|nmol|pmol|µmol|umol)"
_TIMES = r"(?:\*|\.|·|x)"
PK_UNIT = re.compile(
    _MASS + r"\s*" + _TIMES + r"?\s*h(?:r|ours?)?\s*/\s*(?:ml|l|dl)"  # ng*h/mL
    r"|h(?:r|ours?)?\s*" + _TIMES + r"\s*" + _MASS + r"\s*/\s*(?:ml|l)"  # h*ng/mL
    r"|^\s*(?:ng|pg)\s*/\s*ml\s*$"  # a concentration alone
    r"|l\s*/\s*h(?:r|our)?\b|\bml\s*/\s*min(?:ute)?\b(?!.*1\.73)",  # clearance (not eGFR per 1.73 m2)
    re.IGNORECASE)

# Concepts too general to decide from a description, where they describe the study more often than the measure.
WEAK_IN_DESCRIPTION = frozenset(
    "function functional functioning mobility strength symptom symptoms severity risk event events complication "
    "complications inflammation disability satisfaction compliance adherence lesion lesions episode episodes attack "
    "attacks rescue infection infections well-being".split())
