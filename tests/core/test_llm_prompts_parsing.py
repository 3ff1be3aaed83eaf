"""Prompt templates render with versions; DECISION and step parsing survive markdown noise and count failures."""

from __future__ import annotations

import pytest

from deepimagine_core.llm import prompts
from deepimagine_core.llm.parsing import ParseCounter, parse_decision, parse_step
from deepimagine_core.questions import Question


def _question(answer=None, n=2, nct="NCT00000001"):
    options = ["X significantly better than placebo", "X not significantly better", "no difference"][:n]
    return Question(
        nct_id=nct,
        endpoint_key="outcome:0",
        question_index=0,
        brief_title="Drug X versus placebo in asthma",
        endpoint={"measure": "FEV1 change", "description": "Litres", "timeFrame": "Week 12"},
        arms=[
            {"label": "X 10 mg", "type": "EXPERIMENTAL", "interventionNames": ["Drug: X"], "description": "X daily"},
            {"label": "Placebo", "type": "PLACEBO_COMPARATOR", "interventions": [{"type": "DRUG", "name": "placebo"}]},
        ],
        meta_label="single_arm",
        options=options,
        answer=answer,
    )


def test_every_template_has_a_version_and_renders():
    q = _question(n=3)
    direct = prompts.direct_messages(q)
    assert [m["role"] for m in direct] == ["system", "user"]
    user = direct[1]["content"]
    assert "FEV1 change" in user and "Week 12" in user and "X 10 mg [EXPERIMENTAL]" in user
    assert "Option 3: no difference" in user and "DECISION: (p1, p2, p3)" in user
    assert "Drug: X" in user and "DRUG: placebo" in user  # interventions from either API v2 field
    for name in prompts.VERSIONS:
        assert prompts.template_id(name) == f"{name}.{prompts.VERSIONS[name]}"
        assert (prompts.TEMPLATES_DIR / f"{name}.{prompts.VERSIONS[name]}.txt").is_file()


def test_rag_shows_anchor_results_and_refuses_unknown_ones():
    anchor = _question(answer=1, nct="NCT00000009")
    user = prompts.rag_messages(_question(), [anchor])[1]["content"]
    assert "[1] Trial:" in user and "Known result: X not significantly better" in user
    assert "(none found)" in prompts.rag_messages(_question(), [])[1]["content"]
    with pytest.raises(ValueError, match="no known answer"):
        prompts.rag_messages(_question(), [_question()])


def test_step_and_trace_prompts():
    from deepimagine_core.llm.steps import StepInput, step_messages, trace_messages

    imagined = StepInput("arm", "10 mg", "20 mg", "HbA1c -0.5%", observed=False)
    step = step_messages(imagined)[1]["content"]
    assert "(imagined)" in step and "Factor changed: arm" in step and "Before: 10 mg\nAfter: 20 mg" in step
    assert "DIRECTION: up|down|same" in step and "SIZE: small|moderate|large" in step
    assert "Numbers before the change: (not reported)" in step
    trace = trace_messages(StepInput("outcome", "Week 4", "Week 12", "-0.2", "-0.2 (SD 1)"), "-0.6")[1]["content"]
    assert "The observed result after the change was: -0.6" in trace and "(observed): -0.2" in trace
    with pytest.raises(KeyError):
        prompts.load_template("step").render(factor="arm")  # a missing placeholder is an error, never blank


@pytest.mark.parametrize(
    "text, n, expected",
    [
        ("DECISION: (0.7, 0.3)", 2, [0.7, 0.3]),
        ("**DECISION:** (0.2, 0.8)", 2, [0.2, 0.8]),
        ("Reasoning...\n```\nDecision: (0.1,0.6,0.3)\n```", 3, [0.1, 0.6, 0.3]),
        ("## Decision\nDECISION: [70%, 30%]", 2, [0.7, 0.3]),
        ("decision = ( 3 , 1 )", 2, [0.75, 0.25]),
        ("DECISION: (0.9, 0.1) wait, no.\nDECISION: (0.4, 0.6)", 2, [0.4, 0.6]),  # the last one wins
        ("<think>DECISION: (1, 0)</think>\n**DECISION: (0.5, 0.5)**", 2, [0.5, 0.5]),
        ("- DECISION: (50%, 0.5)", 2, [0.5, 0.5]),
    ],
)
def test_decision_parsing_tolerates_noise(text, n, expected):
    d = parse_decision(text, n)
    assert d.parsed, d.error
    assert d.probabilities == pytest.approx(expected)


@pytest.mark.parametrize(
    "text, n, reason",
    [
        ("I think option 1.", 2, "no DECISION"),
        ("DECISION: (0.5, 0.3, 0.2)", 2, "3 numbers for 2 options"),
        ("DECISION: (0, 0)", 2, "sum to 0"),
        ("DECISION: (-0.2, 1.2)", 2, "negative"),
        ("", 3, "no DECISION"),
    ],
)
def test_decision_failures_are_flagged_uniform(text, n, reason):
    d = parse_decision(text, n)
    assert not d.parsed and reason in d.error
    assert d.probabilities == pytest.approx([1 / n] * n)


def test_step_parsing():
    s = parse_step("Because the dose doubles...\n**DIRECTION:** Up\n**SIZE**: moderate\nRESULT: HbA1c falls 0.8%\n"
                   "EXPLANATION: more drug, more effect.")
    assert (s.direction, s.size, s.result, s.parsed, s.missing) == ("up", "moderate", "HbA1c falls 0.8%", True, ())
    s = parse_step("```\nDirection - decreased\nSize: slight\n```")
    assert (s.direction, s.size, s.parsed, s.missing) == ("down", "small", True, ("result", "explanation"))
    s = parse_step("- direction: no change\n- size: none")
    assert (s.direction, s.size) == ("same", "small")


def test_step_failures_are_not_hidden():
    echo = parse_step("DIRECTION: up|down|same\nSIZE: small|moderate|large")  # the format echoed back, no answer
    assert not echo.parsed and echo.direction is None and echo.size is None
    assert not parse_step("the result goes up").parsed
    counter = ParseCounter()
    for text in ("DIRECTION: up", "nothing", "DIRECTION: sideways"):
        counter.add("step", parse_step(text).parsed)
    assert counter.as_dict()["step"] == {"parsed": 1, "failed": 2, "parse_rate": pytest.approx(1 / 3)}
