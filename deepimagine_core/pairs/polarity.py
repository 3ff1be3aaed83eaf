"""Outcome polarity: is a higher value of this outcome better for the participant? An explicit, auditable rule set.

A direction label ("arm X achieved a significant *improvement* over arm Y") needs to know which way is better. We decide
it from the outcome's wording only, with rules a person can read, and we say which rule fired. When the wording does
not settle it, the answer is ``None`` and the question is excluded: a wrong polarity silently flips a label, which is
worse than a smaller data set (GUIDE §5: lexicon polarity was wrong often enough to hurt).

How a decision is made (``outcome_polarity``):

1. **Not an efficacy direction** → ``None``: pharmacokinetics (Cmax, AUC, half-life, concentrations, ng/mL units ...),
   ECG intervals, vital signs in general, dose-finding endpoints (MTD), anything measured in ambiguous ways
   (body weight, "change in weight"), global-impression scales whose sign varies by instrument version.
2. **Frame** — what kind of quantity the title describes:
   - ``time_to``: "time to <event>" — a bad event (death, relapse, progression) later is better → higher better;
     a good event (response, relief, healing) sooner is better → lower better.
   - ``duration``: "duration of <state>" — longer response is better, longer symptoms are worse.
   - ``proportion``: "number / percentage / proportion of participants with ...", "... rate", responders, or a count
     unit ("participants") — higher is better exactly when the event is good.
   - ``count``: "number / rate / incidence / frequency of <events>" — as for ``proportion``.
   - ``level``: anything else — a level or a change of a measured quantity ("change from baseline in HbA1c").
3. **Event or quantity** — the text is matched against a lexicon of *good* concepts (more is better: response,
   remission, survival, quality of life, FEV1, HDL ...) and *bad* concepts (more is worse: pain, HbA1c, LDL, adverse
   events, death, relapse ...). Multi-word concepts are matched first and consumed, so "glycated haemoglobin" is not
   read as "haemoglobin" and "loss of response" is not read as "response". *Operators* change the reading: good
   operators (improvement, response, remission, cure, achieving, normalisation) make the event good; flip operators
   (reduction, decrease, free of, without, absence of, no) turn a bad concept into a good event. Conflicting concepts
   with no operator give ``None``.
4. **Guards** — in the ``level`` frame a flip operator ("reduction in HbA1c") gives ``None``: registries report such
   reductions with either sign. In the ``proportion`` frame a threshold without an operator ("participants with
   HbA1c < 7%") gives ``None``: "< 7%" turns a bad quantity into a good event, and reading that reliably is beyond a
   lexicon. In the ``level`` frame, only improvement-type operators ("improvement in", "relief") decide; others
   ("controlled", "normalised") do not say which way the measure moves → ``None``. The description is consulted
   only when the title names no known concept, and then only its concepts decide.

The result is a `Polarity`: ``higher_is_better`` (True / False / None), the ``rule`` that decided (e.g.
``"proportion: good event 'response'"``) and the ``frame``. Tests in ``tests/core/test_pairs_polarity.py`` are the
specification, one row per rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Polarity", "outcome_polarity"]


@dataclass(frozen=True)
class Polarity:
    higher_is_better: bool | None  # None: unknown, the question must be excluded
    rule: str  # which rule decided, in words a person can audit
    frame: str  # time_to | duration | proportion | count | level | excluded | unknown


def _rx(*patterns: str) -> re.Pattern:
    return re.compile(r"(?:" + "|".join(patterns) + r")", re.IGNORECASE)


# 1. Outcomes whose "better" direction is not an efficacy question at all.
_EXCLUDED: list[tuple[str, re.Pattern]] = [
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
                               r"laboratory (?:values|parameters|tests)",
                               r"hematology|haematology|clinical chemistry|urinalysis")),
]

# 3. Lexicon. Order matters inside each list only through length: longer (more specific) patterns are consumed first.
_GOOD_OPERATORS = [
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
    r"\bclear(?:ed)?\b", r"almost clear", r"\bminimal\b",
]
_FLIP_OPERATORS = [
    r"reduc(?:tion|tions|ed|ing)", r"decreas(?:e|es|ed|ing)", r"declin(?:e|ed)", r"\blowering\b",
    r"[- ]free\b", r"free (?:of|from)", r"freedom from", r"\bfreedom\b", r"\bwithout\b", r"absence of", r"\bno\b",
    r"\bnot\b",
    r"avoid(?:ed|ance)?", r"prevent(?:ed|ion)", r"\bsuppress(?:ion|ed)",
]
_BAD_OPERATORS = [  # phrases that make a good concept a bad event
    r"loss of response", r"non[- ]?respon(?:se|der|ders)", r"fail(?:ure|ed)? to respond",
    r"lack of (?:response|efficacy)",
    r"treatment failure", r"virologic(?:al)? failure", r"clinical failure", r"\bfailure\b", r"worsening",
    r"deteriorat(?:ion|ed)",
    r"\bprogress(?:ion|ed|ive disease)\b", r"\brelaps(?:e|ed|es)\b", r"recurren(?:ce|t)", r"breakthrough", r"rebound",
]
_GOOD_CONCEPTS = [
    r"overall survival", r"progression[- ]free survival", r"disease[- ]free survival", r"event[- ]free survival",
    r"relapse[- ]free survival", r"graft survival", r"\bsurvival\b", r"\bsurviv(?:ed|ing|ors?)\b", r"\balive\b",
    r"quality of life", r"\bqol\b", r"\bhrqol\b", r"\bsf[- ]?36\b", r"\bsf[- ]?12\b", r"\beq[- ]?5d\b",
    r"\bfact[- ]\w+", r"\bfacit\b",
    r"\baqlq\b", r"\bibdq\b", r"\bpedsql\b", r"\bkdqol\b", r"\bfev1\b", r"\bfev\(?1\)?", r"forced expiratory volume",
    r"\bfvc\b",
    r"forced vital capacity", r"peak (?:expiratory )?flow", r"\bpef\b", r"6[- ]?minute walk", r"six[- ]minute walk",
    r"\b6mwd?\b",
    r"walk(?:ing)? distance", r"exercise (?:capacity|tolerance|duration)", r"\bvo2", r"peak oxygen",
    r"bone mineral density",
    r"\bbmd\b", r"\bhdl\b(?![- ]?c?\s*ratio)", r"high[- ]density lipoprotein", r"\bcd4\b", r"ejection fraction",
    r"\blvef\b",
    r"\bmmse\b", r"mini[- ]mental", r"\bmoca\b", r"visual acuity", r"\bbcva\b", r"letters? (?:read|gained)",
    r"sleep (?:time|efficiency|quality)",
    r"total sleep", r"adherence", r"compliance", r"satisfaction", r"seroconversion", r"seroprotection",
    r"(?:geometric mean )?(?:antibody )?titers?\b", r"\bgmts?\b", r"\bgmcs?\b", r"neutrali[sz]ing antibod",
    r"immunogenicity",
    r"time in range", r"\"?on\"? time", r"well[- ]being", r"\bfunction(?:ing|al)?\b(?! test)", r"mobility",
    r"\bstrength\b",
    r"hemoglobin(?! a1c)", r"haemoglobin(?! a1c)", r"egfr\b", r"glomerular filtration", r"creatinine clearance",
    r"transition(?:al)? dyspn(?:o)?ea index", r"pain intensity difference", r"\bspid\b", r"\btotpar\b",
    r"pain relief", r"volume voided(?: per (?:micturition|void))?", r"\btdi\b", r"asthma control test",
    r"\bdays? alive", r"engraftment", r"patency", r"fertiliz", r"pregnan(?:cy|cies) rate", r"live birth",
]
_BAD_CONCEPTS = [
    r"glycated h(?:a)?emoglobin", r"glycosylated h(?:a)?emoglobin", r"h(?:a)?emoglobin a1c", r"\bhba1c\b", r"\ba1c\b",
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
    r"weight gain", r"norfolk qol[- ]dn", r"\bqol[- ]dn\b", r"anti[- ]drug antibod(?:y|ies)", r"\bglucose\b",
    r"leak(?:age|s)?\b", r"dysfunction",
    # quality-of-life instruments scored as impairment (higher = worse), longer than "quality of life" so they win
    r"rhinoconjunctivitis quality of life(?: questionnaire)?", r"\brqlq\b", r"dermatology life quality index",
    r"\bdlqi\b", r"minnesota living with heart failure(?: questionnaire)?", r"\bmlhfq?\b",
    r"sharp(?:[- ]genant)? score", r"\bmtss\b",
    r"radiographic progression", r"\bpain\b", r"painful", r"\bache\b", r"headache", r"migraine", r"tenderness",
    r"stiffness", r"swelling",
    r"\bedema\b", r"oedema", r"symptoms?\b", r"severity", r"disease activity", r"\bdas[- ]?28\b", r"\bcdai\b",
    r"\bsdai\b",
    r"\bbasdai\b", r"\bpasi\b", r"\beasi\b", r"\bscorad\b", r"\bham[- ]?d\b", r"\bhamd(?:-?17)?\b", r"\bham[- ]?a\b",
    r"\bhama\b",
    r"hamilton", r"\bmadrs\b", r"montgomery", r"\bpanss\b", r"\bymrs\b", r"\bbprs\b", r"\bbdi\b", r"beck depression",
    r"\bphq[- ]?\d*\b", r"\bgad[- ]?7\b", r"\badas[- ]?cog\b", r"\bedss\b", r"\bipss\b", r"\bwomac\b", r"\bodi\b",
    r"oswestry",
    r"disability", r"depressi(?:on|ve)", r"anxiety", r"fatigue", r"nausea", r"vomiting", r"emesis", r"itch(?:ing)?",
    r"prurit(?:us|ic)",
    r"adhd[- ]rs", r"\by[- ]?bocs\b", r"\bcaps\b", r"\bpsqi\b", r"insomnia", r"sleep latency", r"awakenings?",
    r"\bsgrq\b",
    r"st\.? george", r"\bcat score\b", r"\bacq\b", r"asthma control questionnaire", r"\bhit[- ]?6\b", r"\bmidas\b",
    r"\bnihss\b",
    r"modified rankin", r"\bmrs\b", r"adverse (?:events?|reactions?|effects?)", r"\baes?\b", r"\bsaes?\b",
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
    r"\bahi\b", r"epworth", r"sleepiness", r"length of (?:hospital )?stay", r"hospital stay",
    r"(?:opioid|morphine|analgesic) (?:consumption|use|requirement)",
    r"flares?\b", r"\bsores?\b", r"ulcers?\b", r"caries", r"gingivitis", r"bleeding on probing", r"inflammation",
    r"fibrosis",
    r"stenosis", r"restenosis", r"thrombo(?:sis|tic|embolism)", r"\bvte\b", r"\bdvt\b", r"embolism", r"amputation",
    r"readmission",
    r"intubation", r"mechanical ventilation", r"\bdelirium\b", r"agitation", r"aggression", r"irritability",
    r"cognitive impairment",
    r"\bpain intensity", r"\bvas\b(?=.{0,30}\bpain)", r"colonization", r"bacteri(?:a|al) (?:count|load)",
    r"parasit(?:a)?emia", r"fever",
    r"\brisk\b", r"\bevents?\b(?=.{0,3}$)", r"major adverse cardiovascular", r"\bmace\b", r"morbidity",
]

_THRESHOLD = re.compile(r"(?:<|>|≤|≥|=<|>=|<=|less than|greater than|more than|fewer than|at least|or more|"
                        r"or less|below|above|under\s+\d|over\s+\d|\bexceed)", re.IGNORECASE)

_TIME_TO = re.compile(r"\btime (?:to|until|till)\b\s*(?P<rest>.*)", re.IGNORECASE)
_DURATION = re.compile(r"\b(?:duration|length) of\b\s*(?P<rest>.*)", re.IGNORECASE)
_PEOPLE = (r"(?:participants|subjects|patients|people|persons|individuals|women|men|children|infants|adults|"
           r"volunteers|eyes|responders)")
_PROPORTION = re.compile(
    r"(?:\b(?:number|numbers|percentage|percent|%|proportion|fraction|rate|count)\s+of\s+(?:\w+\s+){0,3}?"
    + _PEOPLE + r"\b"
    r"|\b(?:participants|subjects|patients)\s+(?:with|without|who|achieving|experiencing|having|reporting|in)\b"
    r"|\bresponders?\b"
    r"|\b(?:response|remission|cure|success|relapse|failure|survival|mortality|seroconversion|abstinence|healing)"
    r"\s+rates?\b"
    r"|\bincidence\b|\boccurrence\b|\brates?\s*$)",
    re.IGNORECASE,
)
_COUNT = re.compile(r"\b(?:number|rate|frequency|incidence|count|occurrence)s? of\b\s*(?P<rest>.*)", re.IGNORECASE)
_COUNT_UNIT = re.compile(r"^\s*(?:(?:percent(?:age)?|proportion) of )?(?:participants|subjects|patients|people|persons|"
                         r"eyes)\s*$", re.IGNORECASE)
_MASS = r"(?:ng|pg|µg|ug|mcg|mg|nmol|pmol|µmol|umol)"
_TIMES = r"(?:\*|\.|·|x)"
_PK_UNIT = re.compile(
    _MASS + r"\s*" + _TIMES + r"?\s*h(?:r|ours?)?\s*/\s*(?:ml|l|dl)"  # ng*h/mL
    r"|h(?:r|ours?)?\s*" + _TIMES + r"\s*" + _MASS + r"\s*/\s*(?:ml|l)"  # h*ng/mL
    r"|^\s*(?:ng|pg)\s*/\s*ml\s*$"  # a concentration alone
    r"|l\s*/\s*h(?:r|our)?\b|\bml\s*/\s*min(?:ute)?\b(?!.*1\.73)",  # clearance (not eGFR per 1.73 m2)
    re.IGNORECASE)


_KIND_ORDER = {"bad_op": 0, "good_concept": 1, "bad_concept": 2, "good_op": 3, "flip_op": 4}


def _required_literal(pattern: str) -> str:
    """A lower-case substring every match of ``pattern`` contains ("" when none can be read off safely).

    Groups, character classes, escapes and optional characters are removed; the longest remaining plain run is
    mandatory because the patterns have no top-level alternation. Used only as a fast pre-check before the regex.
    """
    text = pattern
    while True:  # innermost groups first
        reduced = re.sub(r"\((?:[^()\\]|\\.)*\)[?*+]?", "\x00", text)
        if reduced == text:
            break
        text = reduced
    text = re.sub(r"\[(?:[^\]\\]|\\.)*\][?*+]?", "\x00", text)
    text = re.sub(r"\\[bBsSdDwW][?*+]?", "\x00", text)
    text = re.sub(r"\\(.)", r"\1", text)
    text = re.sub(r".[?*]", "\x00", text)
    if "|" in text:
        return ""
    runs = [run for run in re.split(r"[\x00^$.+{}]", text) if run]
    return max(runs, key=len).lower() if runs else ""


_COMPILED: list[tuple[str, str, re.Pattern]] = [
    (kind, _required_literal(p), re.compile(p, re.IGNORECASE))
    for kind, patterns in (("bad_op", _BAD_OPERATORS), ("good_concept", _GOOD_CONCEPTS), ("bad_concept", _BAD_CONCEPTS),
                           ("good_op", _GOOD_OPERATORS), ("flip_op", _FLIP_OPERATORS))
    for p in patterns
]


def _hits(text: str) -> dict[str, list[str]]:
    """Lexicon hits by kind. Overlapping matches are resolved longest span first (ties by kind order), so
    "progression-free survival" is one good concept, not the bad operator "progression"."""
    lower = text.lower()
    spans = [(m.start(), m.end(), kind, m.group(0).strip())
             for kind, literal, pat in _COMPILED if literal in lower
             for m in pat.finditer(text) if m.group(0).strip()]
    spans.sort(key=lambda s: (s[0] - s[1], _KIND_ORDER[s[2]], s[0]))
    taken = [False] * (len(text) + 1)
    found: dict[str, list[tuple[int, str]]] = {kind: [] for kind in _KIND_ORDER}
    for start, end, kind, words in spans:
        if any(taken[start:end]):
            continue
        taken[start:end] = [True] * (end - start)
        found[kind].append((start, words))
    return {kind: [w for _, w in sorted(hits)] for kind, hits in found.items()}


def _event_value(text: str, *, allow_flip: bool, require_operator: bool) -> tuple[int | None, str]:
    """+1 if the described event or quantity is good (more is better), -1 if bad, None if undecided; and why."""
    h = _hits(text)
    bad_op, good_op, flip = h["bad_op"], h["good_op"], h["flip_op"]
    good_c, bad_c = h["good_concept"], h["bad_concept"]
    if flip and not allow_flip:
        return None, f"reported {flip[0]!r} may carry either sign"
    if bad_op and good_op:
        return None, f"conflicting operators {good_op[0]!r} and {bad_op[0]!r}"
    if bad_op:
        if flip:
            return +1, f"{flip[0]!r} of bad event {bad_op[0]!r}"
        return -1, f"bad event {bad_op[0]!r}"
    concept = None
    if good_c and not bad_c:
        concept = (+1, good_c[0])
    elif bad_c and not good_c:
        concept = (-1, bad_c[0])
    if flip:
        if concept is None:
            return None, f"operator {flip[0]!r} without one known concept"
        if good_op and concept[0] > 0:
            return None, f"conflicting {good_op[0]!r} and {flip[0]!r} of {concept[1]!r}"
        return -concept[0], f"{flip[0]!r} of {'good' if concept[0] > 0 else 'bad'} concept {concept[1]!r}"
    if good_op:
        return +1, f"good event {good_op[0]!r}"
    if require_operator:
        return None, "threshold without an operator"
    if concept is None:
        if good_c and bad_c:
            return None, f"conflicting concepts {good_c[0]!r} and {bad_c[0]!r}"
        return None, "no known concept"
    return concept[0], f"{'good' if concept[0] > 0 else 'bad'} concept {concept[1]!r}"


_LEVEL_OPERATOR = re.compile(r"improv|relief", re.IGNORECASE)  # in a level measure only these fix the sign
_NOT_PK_AUC = re.compile(r"fev|glucose|pain|symptom|score|effect", re.IGNORECASE)


def _decide(text: str, unit: str, param_type: str) -> Polarity:
    for name, pat in _EXCLUDED:
        m = pat.search(text)
        if m and m.group(0).lower().startswith("auc") and _NOT_PK_AUC.search(text):
            continue  # an area under a clinical curve (FEV1 AUC, glucose AUC) is not pharmacokinetics
        if m:
            return Polarity(None, f"excluded: {name} ({m.group(0).strip()!r})", "excluded")
    m = _TIME_TO.search(text)
    if m:
        value, why = _event_value(m.group("rest"), allow_flip=True, require_operator=False)
        if value is None:
            return Polarity(None, f"time_to: {why}", "time_to")
        return Polarity(value < 0, f"time_to: {why} ({'later' if value < 0 else 'sooner'} is better)", "time_to")
    m = _DURATION.search(text)
    if m:
        value, why = _event_value(m.group("rest"), allow_flip=True, require_operator=False)
        return Polarity(None if value is None else value > 0, f"duration: {why}", "duration")
    is_proportion = (bool(_PROPORTION.search(text)) or bool(_COUNT_UNIT.match(unit))
                     or param_type == "COUNT_OF_PARTICIPANTS")
    if is_proportion or _COUNT.search(text):
        frame = "proportion" if is_proportion else "count"
        threshold = bool(_THRESHOLD.search(text))
        value, why = _event_value(text, allow_flip=True, require_operator=threshold)
        return Polarity(None if value is None else value > 0, f"{frame}: {why}", frame)
    value, why = _event_value(text, allow_flip=False, require_operator=False)
    if value is not None and why.startswith("good event") and not _LEVEL_OPERATOR.search(why):
        return Polarity(None, f"level: {why} does not say which way the measure moves", "level")
    return Polarity(None if value is None else value > 0, f"level: {why}", "level")


@lru_cache(maxsize=65536)
def outcome_polarity(
    title: str | None, description: str | None = None, unit: str | None = None, param_type: str | None = None
) -> Polarity:
    """Whether a higher value of the outcome is better, and the rule that decided (see the module docstring).

    ``title`` decides; ``description`` is read only when the title alone gives no known concept; ``unit`` marks PK units
    (→ None) and participant-count units (proportion frame); ``param_type`` COUNT_OF_PARTICIPANTS marks a proportion.
    """
    title = (title or "").strip()
    unit = (unit or "").strip()
    param_type = (param_type or "").strip().upper()
    if unit and _PK_UNIT.search(unit):
        return Polarity(None, f"excluded: pharmacokinetic unit {unit!r}", "excluded")
    if not title and not description:
        return Polarity(None, "unknown: no title", "unknown")
    result = _decide(title, unit, param_type)
    if result.higher_is_better is None and result.frame != "excluded" and description:
        if result.rule.endswith("no known concept"):
            from_description = _decide(f"{title}. {description}", unit, param_type)
            # descriptions decide through concepts only: their operators ("improvement", "normalized") describe
            # the study, not the sign of the measure
            if from_description.higher_is_better is not None and "concept" in from_description.rule:
                return Polarity(from_description.higher_is_better, f"{from_description.rule} [from description]",
                                from_description.frame)
            if from_description.frame == "excluded":
                return from_description
    return result
