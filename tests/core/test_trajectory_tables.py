"""The report shows an imagination trajectory as a small table: one row per anchor, anchor → factors changed →
imagined result → answer, model text on one line."""

from __future__ import annotations

import json

from deepimagine_core.evaluation.report import render_markdown, trajectory_blocks
from deepimagine_core.evaluation.trajectory_tables import HEADER, one_line, trajectory_rows
from deepimagine_core.llm.pathway import PathwayConfig, run_pathway, trajectory_steps
from tests.core.test_llm_pathway import A1, A2, TARGET, FixedRetriever
from tests.scripted_backend import ScriptedBackend


def respond(messages, i):
    if "Factor changed:" in messages[-1]["content"]:
        return "DIRECTION: up\nSIZE: small\nRESULT:   better\n\n\n   than   before | really\nEXPLANATION: x"
    return "DECISION: (0.8, 0.2)"


def pathway_steps():
    [result] = run_pathway([TARGET], FixedRetriever({"NCT9": [A1, A2]}), ScriptedBackend(respond), PathwayConfig(k=2))
    return trajectory_steps(result.trajectories)


def test_one_row_per_anchor_with_collapsed_text():
    rows = trajectory_rows(pathway_steps())
    assert [r[0] for r in rows] == ["NCT1", "NCT2"] and len(rows[0]) == len(HEADER)
    assert rows[0][1] == "intervention (up)" and rows[1][1] == "intervention (up) → arm (up) → outcome (up)"
    assert rows[1][2] == "better" and rows[0][3] == "(0.80, 0.20)"  # RESULT is the first line of the field
    assert one_line("a\n\n  b | c") == "a b / c" and len(one_line("x" * 500)) == 160
    assert trajectory_rows([{"anchor": None, "factor": "direct"}]) == [] and trajectory_rows(None) == []


def test_report_renders_the_table(tmp_path):
    folder = tmp_path / "trajectories" / "bench"
    folder.mkdir(parents=True)
    record = {"nct_id": "NCT9", "question_index": 0, "probabilities": [0.8, 0.2], "trajectory": pathway_steps()}
    (folder / "deepimagine.jsonl").write_text(json.dumps(record) + "\n")
    blocks = trajectory_blocks(folder / "deepimagine.jsonl", tmp_path)
    assert ("table", HEADER, trajectory_rows(record["trajectory"])) in blocks
    text = render_markdown(blocks, tmp_path)
    assert "| anchor | factors changed | imagined result | answer |" in text
    assert "| NCT2 | intervention (up) → arm (up) → outcome (up) | better | (0.80, 0.20) |" in text
